//! Rate limits shared by replicas through the database: three processes of the real binary
//! on one PostgreSQL send no faster, together, than Slack allows one app.

use crate::group_commit::serve_binary_with;
use crate::helpers::*;
use pulseloop::storage::Store;
use slack_emulator::{EmulatedUser, Emulator, EmulatorConfig, RateLimits};

const USER: &str = "U0SHARED";
/// The per-channel pace both Slack (the emulator) and pulseloop use here: 4 a second, so the
/// test takes seconds, not minutes (Slack's own is 1 a second; only the scale differs).
const PER_SECOND: f64 = 4.0;
const POSTS: usize = 24;

#[tokio::test]
async fn three_replicas_share_one_channel_pace_without_a_429_storm() {
    let db = TestDb::new().await;
    if !db.url.starts_with("postgres") {
        // Replicas need PostgreSQL; SQLite has one process, whose limiter is already shared
        // by all its workers (tests/api/limiter.rs).
        return;
    }
    let emulator = Emulator::start(EmulatorConfig {
        bot_token: BOT_TOKEN.to_string(),
        limits: RateLimits {
            posts_per_second_per_channel: Some(PER_SECOND),
            posts_burst_per_channel: 3,
            posts_per_minute_per_workspace: None,
            ..RateLimits::default()
        },
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    emulator.add_user(EmulatedUser::new(USER, "Europe/Berlin"));
    let settings = format!(
        "[slack]\nposts_per_second_per_channel = {PER_SECOND}\nmax_posts_per_minute = 6000\n\
         [outbox]\nworkers = 2\npoll_interval_ms = 50\n[scheduler]\nenabled = false\n"
    );
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut replicas: Vec<_> = dirs
        .iter()
        .map(|d| serve_binary_with(d.path(), &db.url, &emulator.base_url(), &settings))
        .collect();

    // Work for all three at once, all to one channel (their LISTEN wakes them).
    let store = Store::connect(&db.url, 2).await.unwrap();
    let now = chrono::Utc::now();
    for i in 0..POSTS {
        store
            .enqueue(&outbox_dm(&format!("k-shared-{i}"), USER, "hello"), now)
            .await
            .unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while emulator.dm_messages(USER).len() < POSTS && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    for r in &mut replicas {
        let _ = r.child.kill();
        let _ = r.child.wait();
    }

    let calls = emulator.calls_to("chat.postMessage");
    let limited = calls.iter().filter(|c| c.http_status == 429).count();
    let mut ok: Vec<i64> = calls
        .iter()
        .filter(|c| c.http_status == 200 && c.response["ok"] == true)
        .map(|c| c.at.timestamp_millis())
        .collect();
    ok.sort_unstable();
    assert_eq!(emulator.dm_messages(USER).len(), POSTS, "each DM once");
    assert_eq!(ok.len(), POSTS);
    assert!(
        limited <= 1,
        "{limited} answers of 429: the replicas did not share the pace"
    );
    // Never faster than allowed over any one-second window: 4 a second, plus the one that may
    // sit on the window's edge.
    let mut lo = 0;
    for hi in 0..ok.len() {
        while ok[hi] - ok[lo] >= 1000 {
            lo += 1;
        }
        assert!(
            hi - lo < PER_SECOND as usize + 1,
            "{} posts within one second",
            hi - lo + 1
        );
    }
}
