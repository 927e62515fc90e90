//! The process's own memory: glibc's allocator set for a small idle footprint
//! (docs/performance.md, "Memory"). Nothing here on other platforms.

/// One malloc arena for every thread, unless `MALLOC_ARENA_MAX` says otherwise (glibc reads
/// it itself). glibc gives each thread that allocates an arena of its own, up to eight per
/// core, and each keeps the pages its peak needed: about 1.5 MB of pulseloop's idle RSS. The
/// threads keep their own caches of small blocks (tcache), so sharing one arena cost about
/// 2 % CPU per answer at 1,000 answers a second (`loadgen inbound`, alternated runs). Call it
/// first thing in `main`, before any thread starts.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: `mallopt` only sets a parameter of glibc's allocator; no thread has
        // allocated yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// Gives the memory start-up used and freed (the members' profiles read page by page, the
/// migrations, the configuration) back to the system: glibc keeps freed memory in its
/// arenas, and would otherwise carry start-up's peak for the process's whole life.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only walks glibc's own arenas, takes their locks itself and has
    // no precondition.
    unsafe {
        libc::malloc_trim(0);
    }
}
