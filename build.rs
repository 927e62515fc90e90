// `sqlx::migrate!` embeds the migration folders at compile time; rebuild when a migration is
// added or changed (cargo does not see new files in them otherwise).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    pack_relative_relocations();
}

/// Links pulseloop's binaries with packed relative relocations (`DT_RELR`). The binary is
/// position-independent, so each of its ~50,000 pointers in read-only data has a relocation
/// that the loader reads at start: 1.2 MB of `.rela.dyn` (24 bytes each), all of it paged in
/// and counted in the process's RSS for its whole life. Packed, they take a few kilobytes.
/// Needs GNU ld ≥ 2.38 or lld to link and glibc ≥ 2.36 to run (Debian 12, the Dockerfile's
/// images); docs/performance.md, "Memory".
fn pack_relative_relocations() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
