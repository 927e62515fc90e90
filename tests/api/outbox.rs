use crate::helpers::*;
use chrono::Duration;
use pulseloop::clock::ManualClock;
use pulseloop::storage::outbox::{NewOutboxMessage, OutboxStatus};
use serde_json::json;
use slack_emulator::{EmulatedUser, Fault, FaultKind};

fn fault(method: &str, kind: FaultKind, times: u32) -> Fault {
    Fault {
        method: Some(method.into()),
        target: None,
        kind,
        times: Some(times),
    }
}

fn posted_to(app: &TestApp, user: &str) -> usize {
    app.emulator
        .calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.params["channel"] == user && c.response["ok"] == true)
        .count()
}

#[tokio::test]
async fn a_500_then_success_is_retried_and_sent_once() {
    let app = spawn_app().await;
    app.add_user("U0RETRY1", "Europe/Berlin");
    app.emulator
        .inject(fault("chat.postMessage", FaultKind::Http(500), 1));
    app.enqueue_dm("k-500", "U0RETRY1", "hello").await;

    let first = app.step().await;
    assert_eq!((first.claimed, first.retried, first.sent), (1, 1, 0));
    let row = app.store.outbox_row("k-500").await.unwrap().unwrap();
    assert_eq!(row.status, OutboxStatus::Pending);
    assert_eq!(row.attempts, 1);
    assert!(
        row.last_error.as_deref().unwrap_or("").contains("500"),
        "{:?}",
        row.last_error
    );
    assert!(row.next_attempt_at > app.now(), "backs off before retrying");

    assert_eq!(
        app.step().await.claimed,
        0,
        "not due again before the back-off ends"
    );
    app.advance(Duration::seconds(5));
    let second = app.step().await;
    assert_eq!(second.sent, 1);
    let row = app.store.outbox_row("k-500").await.unwrap().unwrap();
    assert_eq!(row.status, OutboxStatus::Sent);
    assert_eq!(posted_to(&app, "U0RETRY1"), 1);
    assert_eq!(app.emulator.calls_to("chat.postMessage").len(), 2);
    // The location is kept for later updates.
    let (channel, ts) = app.store.message_location("k-500").await.unwrap().unwrap();
    assert!(channel.starts_with('D'));
    assert!(!ts.is_empty());
}

#[tokio::test]
async fn a_429_with_retry_after_2_waits_at_least_2_seconds() {
    let app = spawn_app().await;
    app.add_user("U0LIMIT1", "Europe/Berlin");
    app.emulator.inject(fault(
        "chat.postMessage",
        FaultKind::RateLimited {
            retry_after_secs: 2,
        },
        1,
    ));
    app.enqueue_dm("k-429", "U0LIMIT1", "hello").await;
    let start = app.now();

    let first = app.step().await;
    assert_eq!(first.deferred, 1);
    let row = app.store.outbox_row("k-429").await.unwrap().unwrap();
    assert_eq!(row.attempts, 0, "a 429 is not a failed attempt");
    assert!(row.next_attempt_at >= start + Duration::seconds(2));

    app.advance(Duration::milliseconds(1900));
    assert_eq!(app.step().await.sent, 0, "still inside Retry-After");
    assert_eq!(app.emulator.calls_to("chat.postMessage").len(), 1);

    app.advance(Duration::milliseconds(100));
    assert_eq!(app.step().await.sent, 1);
    let calls = app.emulator.calls_to("chat.postMessage");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].http_status, 429);
    assert_eq!(posted_to(&app, "U0LIMIT1"), 1);
}

#[tokio::test]
async fn account_inactive_fails_for_good_with_the_reason_kept() {
    let app = spawn_app().await;
    app.emulator
        .add_user(EmulatedUser::new("U0GONE01", "Europe/Berlin"));
    app.emulator.set_user_deleted("U0GONE01", true);
    app.add_user("U0ALIVE1", "Europe/Berlin");
    app.enqueue_dm("k-gone", "U0GONE01", "hello").await;
    app.enqueue_dm("k-alive", "U0ALIVE1", "hello").await;

    let out = app.drain_outbox().await;
    assert_eq!((out.sent, out.failed), (1, 1));
    let row = app.store.outbox_row("k-gone").await.unwrap().unwrap();
    assert_eq!(row.status, OutboxStatus::Failed);
    assert!(row.last_error.unwrap().contains("account_inactive"));
    app.advance(Duration::hours(1));
    assert_eq!(app.step().await.claimed, 0, "a failed row is never retried");
    assert_eq!(
        app.store
            .outbox_row("k-alive")
            .await
            .unwrap()
            .unwrap()
            .status,
        OutboxStatus::Sent
    );
}

#[tokio::test]
async fn transient_errors_give_up_after_the_attempt_limit() {
    let app = TestAppBuilder::default().max_attempts(3).spawn().await;
    app.add_user("U0FLAKY1", "Europe/Berlin");
    app.emulator
        .inject(fault("chat.postMessage", FaultKind::Http(503), 10));
    app.enqueue_dm("k-flaky", "U0FLAKY1", "hello").await;
    for _ in 0..3 {
        app.step().await;
        app.advance(Duration::minutes(5));
    }
    let row = app.store.outbox_row("k-flaky").await.unwrap().unwrap();
    assert_eq!(row.status, OutboxStatus::Failed);
    assert_eq!(row.attempts, 3);
    assert!(row.last_error.unwrap().contains("gave up after 3 attempts"));
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let app = spawn_app().await;
    app.add_user("U0DROP01", "Europe/Berlin");
    app.emulator
        .inject(fault("chat.postMessage", FaultKind::DropConnection, 1));
    app.enqueue_dm("k-drop", "U0DROP01", "hello").await;
    assert_eq!(app.step().await.retried, 1);
    app.advance(Duration::seconds(5));
    assert_eq!(app.step().await.sent, 1);
    assert_eq!(posted_to(&app, "U0DROP01"), 1);
}

#[tokio::test]
async fn rows_left_pending_by_a_stopped_process_are_sent_by_the_next_one() {
    let db = TestDb::new().await;
    let emulator = start_emulator().await;
    emulator.add_user(EmulatedUser::new("U0HANDOFF", "Europe/Berlin"));
    let clock = ManualClock::new(default_now());
    let first = TestAppBuilder::sharing(&db, &emulator, &clock)
        .spawn()
        .await;
    for i in 0..3 {
        first
            .store
            .enqueue(
                &outbox_dm(&format!("k-hand-{i}"), "U0HANDOFF", "hi"),
                first.now(),
            )
            .await
            .unwrap();
    }
    // The first process leases everything, then dies before sending.
    let leased = first
        .store
        .claim_outbox("dead-worker", first.now(), Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(leased.len(), 3);
    first.stop().await;

    let second = TestAppBuilder::sharing(&db, &emulator, &clock)
        .spawn()
        .await;
    assert_eq!(second.step().await.claimed, 0, "the lease still holds");
    clock.advance(Duration::seconds(61));
    let sent = second.drain_outbox().await;
    // Per-channel pacing (1/s) spreads the three posts to one DM over three seconds.
    let mut total = sent.sent;
    for _ in 0..5 {
        clock.advance(Duration::seconds(1));
        total += second.drain_outbox().await.sent;
    }
    assert_eq!(total, 3);
    assert_eq!(posted_to(&second, "U0HANDOFF"), 3);
}

#[tokio::test]
async fn two_workers_never_send_the_same_row() {
    let db = TestDb::new().await;
    let emulator = start_emulator().await;
    let clock = ManualClock::new(default_now());
    let (a, b) = spawn_two(|| TestAppBuilder::sharing(&db, &emulator, &clock)).await;
    let n = 40;
    for i in 0..n {
        let user = format!("U0PAR{i:04}");
        emulator.add_user(EmulatedUser::new(&user, "Europe/Berlin"));
        a.enqueue_dm(&format!("k-par-{i}"), &user, "hi").await;
    }
    let drive = |w: pulseloop::slack::outbound::OutboxWorker| async move {
        let mut sent = 0;
        for _ in 0..200 {
            let o = w.run_once().await.unwrap();
            sent += o.sent;
            if o.claimed == 0 {
                break;
            }
        }
        sent
    };
    // Both processes race for the same rows; the workspace ceiling (600/min) spreads the
    // sends over a few seconds of the shared clock.
    let (mut sa, mut sb) = (0, 0);
    for _ in 0..30 {
        let (x, y) = tokio::join!(drive(a.worker.clone()), drive(b.worker.clone()));
        sa += x;
        sb += y;
        if sa + sb >= n {
            break;
        }
        clock.advance(Duration::seconds(1));
    }
    assert_eq!(sa + sb, n, "every row sent exactly once ({sa} + {sb})");
    assert!(sa > 0 && sb > 0, "both processes took part ({sa} + {sb})");
    let posts = emulator.calls_to("chat.postMessage");
    let mut channels: Vec<String> = posts
        .iter()
        .map(|c| c.params["channel"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(channels.len(), n);
    channels.sort();
    channels.dedup();
    assert_eq!(channels.len(), n, "no user got two messages");
    a.assert_count(
        "SELECT COUNT(*) FROM outbox WHERE status = 'sent'",
        n as i64,
    )
    .await;
}

#[tokio::test]
async fn an_update_waits_for_the_message_it_refers_to() {
    let app = spawn_app().await;
    app.add_user("U0ORDER1", "Europe/Berlin");
    let mut update = NewOutboxMessage::new("k-upd", "chat.update", json!({ "text": "edited" }));
    update.target_key = Some("k-orig".into());
    // The update is queued first, yet must not run before its message exists.
    app.store.enqueue(&update, app.now()).await.unwrap();
    assert_eq!(app.step().await.deferred, 1);
    app.enqueue_dm("k-orig", "U0ORDER1", "original").await;
    app.drain_outbox().await;
    app.advance(Duration::seconds(3));
    app.drain_outbox().await;
    let msgs = app.emulator.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].text, "edited");
    assert_eq!(msgs[0].edits, 1);
}

#[tokio::test]
async fn a_claim_takes_due_rows_in_sending_order_lapsed_leases_among_them() {
    let db = TestDb::new().await;
    let store = pulseloop::storage::Store::connect(&db.url, 2)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let t = default_now();
    let lease = Duration::seconds(60);
    // Queued out of order: D is the oldest, A and B are due together (id order), C later.
    for (key, at) in [
        ("k-a", t),
        ("k-c", t + Duration::seconds(5)),
        ("k-b", t),
        ("k-d", t - Duration::seconds(10)),
    ] {
        store
            .enqueue(&outbox_dm(key, &format!("U0{key}"), "hi"), at)
            .await
            .unwrap();
    }
    let keys = |rows: Vec<pulseloop::storage::outbox::OutboxRow>| {
        rows.into_iter().map(|r| r.dedupe_key).collect::<Vec<_>>()
    };
    let claim = |token: &'static str, at, limit| store.claim_outbox(token, at, lease, limit);
    assert_eq!(keys(claim("w1", t, 1).await.unwrap()), ["k-d"]);
    assert_eq!(keys(claim("w2", t, 2).await.unwrap()), ["k-a", "k-b"]);
    assert!(claim("w3", t, 10).await.unwrap().is_empty(), "C is not due");
    // A minute on: the three leases ran out and C is due; one claim takes all four, in order.
    let later = t + Duration::seconds(61);
    assert_eq!(
        keys(claim("w4", later, 10).await.unwrap()),
        ["k-d", "k-a", "k-b", "k-c"]
    );
    // Another minute on, all four leases ran out: two claims split them, still in order.
    let much_later = later + Duration::seconds(61);
    assert_eq!(
        keys(claim("w5", much_later, 2).await.unwrap()),
        ["k-d", "k-a"]
    );
    assert_eq!(
        keys(claim("w6", much_later, 5).await.unwrap()),
        ["k-b", "k-c"]
    );
    store.close().await;
}
