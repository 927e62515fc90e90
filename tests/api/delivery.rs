//! Delivery that never doubles: leases that cover the call, completion writes that are
//! retried, posts with an unknown outcome looked up (by their message metadata) instead of
//! being sent again, and opting out cancelling what is still queued.

use crate::helpers::*;
use crate::pulses::{pilot_at, ONE_SCALE};
use chrono::Duration;
use pulseloop::clock::{Clock, ManualClock};
use pulseloop::config::settings::OutboxSettings;
use pulseloop::slack::outbound::client::delivery_metadata;
use pulseloop::slack::outbound::{OutboxWorker, SlackClient};
use pulseloop::storage::outbox::{NewOutboxMessage, OutboxStatus};
use secrecy::SecretString;
use serde_json::json;
use slack_emulator::{EmulatedUser, Fault, FaultKind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const BERLIN: &str = "Europe/Berlin";

fn posts_to(app: &TestApp, user: &str) -> usize {
    app.emulator
        .dm_messages(user)
        .iter()
        .filter(|m| m.ephemeral_for.is_none())
        .count()
}

/// A worker of its own, on the app's store and clock, with a short claim lease.
fn worker_with_lease(app: &TestApp, lease_seconds: u64) -> OutboxWorker {
    let client = SlackClient::new(
        &app.emulator.base_url(),
        SecretString::from(BOT_TOKEN),
        std::time::Duration::from_secs(2),
    )
    .unwrap()
    .with_clock(Arc::new(app.clock.clone()));
    OutboxWorker::new(
        app.store.clone(),
        client,
        Arc::new(app.clock.clone()),
        OutboxSettings {
            lease_seconds,
            backoff_base_ms: 200,
            ..OutboxSettings::default()
        },
    )
}

/// Makes the database refuse to mark an outbox row sent while `refuse_completion.n > 0`. Each
/// time the worker renews the lease of a row whose call has started (it does so between
/// completion tries), `n` goes down by one: `n = 1` refuses the first completion only.
async fn refuse_completions(app: &TestApp, n: i64) {
    let create = "CREATE TABLE refuse_completion (n BIGINT NOT NULL)";
    let insert = format!("INSERT INTO refuse_completion VALUES ({n})");
    if app.db.url.starts_with("postgres") {
        exec_all(
            &app.db.url,
            &[
                create,
                &insert,
                "CREATE FUNCTION refuse_completion() RETURNS trigger AS $$
                 BEGIN
                   IF NEW.status = 'sent' AND (SELECT n FROM refuse_completion) > 0 THEN
                     RAISE EXCEPTION 'completion refused by the test';
                   END IF;
                   RETURN NEW;
                 END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER refuse_completion BEFORE UPDATE ON outbox
                 FOR EACH ROW EXECUTE FUNCTION refuse_completion()",
                "CREATE FUNCTION relent() RETURNS trigger AS $$
                 BEGIN
                   IF NEW.status = 'in_flight' AND OLD.attempt_started_at IS NOT NULL
                      AND NEW.attempt_started_at IS NOT NULL THEN
                     UPDATE refuse_completion SET n = n - 1;
                   END IF;
                   RETURN NEW;
                 END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER relent AFTER UPDATE OF lease_until ON outbox
                 FOR EACH ROW EXECUTE FUNCTION relent()",
            ],
        )
        .await;
    } else {
        exec_all(
            &app.db.url,
            &[
                create,
                &insert,
                "CREATE TRIGGER refuse_completion BEFORE UPDATE ON outbox
                 WHEN NEW.status = 'sent' AND (SELECT n FROM refuse_completion) > 0
                 BEGIN SELECT RAISE(ABORT, 'completion refused by the test'); END",
                "CREATE TRIGGER relent AFTER UPDATE OF lease_until ON outbox
                 WHEN NEW.status = 'in_flight' AND OLD.attempt_started_at IS NOT NULL
                   AND NEW.attempt_started_at IS NOT NULL
                 BEGIN UPDATE refuse_completion SET n = n - 1; END",
            ],
        )
        .await;
    }
}

#[tokio::test]
async fn a_lease_lost_between_claim_and_send_is_not_sent() {
    let app = spawn_app().await;
    app.add_user("U0LEASE1", BERLIN);
    app.add_user("U0LEASE2", BERLIN);
    app.enqueue_dm("k-lease-1", "U0LEASE1", "first").await;
    app.enqueue_dm("k-lease-2", "U0LEASE2", "second").await;
    // Worker A leases both rows for 5 s. Its first post is slow; while it is in flight, 10 s
    // pass on the shared clock (A's lease on the second row runs out) and worker B claims
    // and sends the second row.
    app.emulator.inject(
        Fault::on(
            "chat.postMessage",
            FaultKind::Delay(std::time::Duration::from_millis(1500)),
        )
        .for_target("U0LEASE1")
        .times(1),
    );
    let start = app.now();
    let jumped = Arc::new(AtomicBool::new(false));
    {
        let clock = app.clock.clone();
        let jumped = jumped.clone();
        app.emulator.set_clock(move || {
            if !jumped.swap(true, Ordering::SeqCst) {
                clock.advance(Duration::seconds(10));
            }
            clock.now()
        });
    }
    let a = worker_with_lease(&app, 5);
    let b = worker_with_lease(&app, 5);
    let a_step = tokio::spawn(async move { a.run_once().await.unwrap() });
    // A's first call has reached Slack once the clock moved.
    while app.now() == start {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let by_b = b.run_once().await.unwrap();
    assert_eq!((by_b.claimed, by_b.sent), (1, 1), "B took the expired row");
    let by_a = a_step.await.unwrap();
    assert_eq!(by_a.claimed, 2);
    assert_eq!(by_a.sent, 1, "A sent only the row it still held");
    assert_eq!(by_a.lost, 1, "A skipped the row B took over");
    assert_eq!(posts_to(&app, "U0LEASE1"), 1);
    assert_eq!(posts_to(&app, "U0LEASE2"), 1, "the second DM went out once");
    assert_eq!(app.emulator.calls_to("chat.postMessage").len(), 2);
    for key in ["k-lease-1", "k-lease-2"] {
        let row = app.store.outbox_row(key).await.unwrap().unwrap();
        assert_eq!(row.status, OutboxStatus::Sent);
        assert!(
            row.attempt_started_at.is_none(),
            "the attempt mark is cleared"
        );
    }
}

#[tokio::test]
async fn a_completion_the_database_refuses_once_is_retried() {
    let app = spawn_app().await;
    app.add_user("U0COMPL1", BERLIN);
    app.enqueue_dm("k-compl", "U0COMPL1", "hello").await;
    refuse_completions(&app, 1).await;

    let out = app.step().await;
    assert_eq!((out.sent, out.unconfirmed), (1, 0), "{out:?}");
    app.assert_count_because(
        "SELECT COUNT(*) FROM refuse_completion WHERE n = 0",
        1,
        "the first completion was refused, the retry went through",
    )
    .await;
    let row = app.store.outbox_row("k-compl").await.unwrap().unwrap();
    assert_eq!(row.status, OutboxStatus::Sent);
    assert!(row.attempt_started_at.is_none());
    assert_eq!(posts_to(&app, "U0COMPL1"), 1);
    assert_eq!(app.emulator.calls_to("chat.postMessage").len(), 1);
    assert!(app
        .store
        .message_location("k-compl")
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn a_completion_the_database_keeps_refusing_is_looked_up_later_not_resent() {
    let app = spawn_app().await;
    app.slack_shares_clock();
    app.add_user("U0COMPL2", BERLIN);
    app.enqueue_dm("k-compl-2", "U0COMPL2", "hello").await;
    refuse_completions(&app, 1_000).await;

    let out = app.step().await;
    assert_eq!((out.sent, out.unconfirmed), (0, 1), "{out:?}");
    let row = app.store.outbox_row("k-compl-2").await.unwrap().unwrap();
    assert_eq!(row.status, OutboxStatus::InFlight);
    assert!(row.outcome_unknown(), "the attempt mark survives");
    assert_eq!(app.step().await.claimed, 0, "the call's lease still holds");

    // The database recovers; once the lease runs out the row is looked up, not re-posted.
    exec_all(&app.db.url, &["UPDATE refuse_completion SET n = 0"]).await;
    app.advance(Duration::minutes(2));
    let out = app.step().await;
    assert_eq!((out.sent, out.adopted), (1, 1), "{out:?}");
    assert_eq!(posts_to(&app, "U0COMPL2"), 1);
    assert_eq!(app.emulator.calls_to("chat.postMessage").len(), 1);
    let posted = &app.emulator.dm_messages("U0COMPL2")[0];
    let row = app.store.outbox_row("k-compl-2").await.unwrap().unwrap();
    assert_eq!(row.status, OutboxStatus::Sent);
    assert_eq!(row.result.as_ref().unwrap()["ts"], posted.ts.as_str());
    assert_eq!(
        app.store.message_location("k-compl-2").await.unwrap(),
        Some((posted.channel.clone(), posted.ts.clone()))
    );
}

#[tokio::test]
async fn every_post_carries_its_key_in_message_metadata() {
    let app = spawn_app().await;
    app.add_user("U0META01", BERLIN);
    app.enqueue_dm("k-meta", "U0META01", "hello").await;
    assert_eq!(app.step().await.sent, 1);
    let message = &app.emulator.dm_messages("U0META01")[0];
    assert_eq!(
        message.metadata,
        Some(json!({ "event_type": "pulseloop_delivery", "event_payload": { "key": "k-meta" } }))
    );
}

#[tokio::test]
async fn a_pulse_posted_then_dropped_is_adopted_not_sent_twice() {
    let app = pilot_at(&["U0DROPPD"], "", ONE_SCALE, sunday_noon()).await;
    app.slack_shares_clock();
    app.clock.set(monday_ten_berlin());
    app.emulator.inject(
        Fault::on("chat.postMessage", FaultKind::PostThenDrop)
            .for_target("U0DROPPD")
            .times(1),
    );
    app.tick().await;
    let first = app.step().await;
    assert_eq!(first.retried, 1, "{first:?}");
    assert_eq!(
        posts_to(&app, "U0DROPPD"),
        1,
        "Slack stored it; the bot never heard"
    );
    app.assert_count("SELECT COUNT(*) FROM deliveries WHERE state = 'queued'", 1)
        .await;

    app.advance(Duration::seconds(5));
    let second = app.step().await;
    assert_eq!((second.sent, second.adopted), (1, 1), "{second:?}");
    assert_eq!(posts_to(&app, "U0DROPPD"), 1, "one message in the DM");
    assert_eq!(app.emulator.calls_to("chat.postMessage").len(), 1);
    let history = app.emulator.calls_to("conversations.history");
    assert_eq!(history.len(), 1);
    // conversations.history reads only a form (Slack's spec): booleans go as "true".
    assert_eq!(history[0].params["include_all_metadata"], "true");
    assert!(history[0].params["oldest"].is_string(), "a bounded look-up");

    let posted = &app.emulator.dm_messages("U0DROPPD")[0];
    let id = app.count("SELECT MAX(id) FROM deliveries").await;
    let delivery = app
        .store
        .delivery(pulseloop::domain::ids::DeliveryId(id))
        .await
        .unwrap();
    assert_eq!(delivery.state.as_str(), "sent");
    assert_eq!(
        (delivery.channel_id, delivery.message_ts),
        (
            Some(posted.channel.as_str().into()),
            Some(posted.ts.as_str().into())
        ),
        "the delivery points at the adopted message"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("outbox_outcome_unknown_total{resolution=\"adopted\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_dropped_post_that_never_arrived_is_posted_again() {
    let app = spawn_app().await;
    app.slack_shares_clock();
    app.add_user("U0NEVER1", BERLIN);
    app.emulator.inject(
        Fault::on("chat.postMessage", FaultKind::DropConnection)
            .for_target("U0NEVER1")
            .times(1),
    );
    app.enqueue_dm("k-never", "U0NEVER1", "hello").await;
    assert_eq!(app.step().await.retried, 1);
    assert!(app
        .store
        .outbox_row("k-never")
        .await
        .unwrap()
        .unwrap()
        .outcome_unknown());
    app.advance(Duration::seconds(5));
    let out = app.step().await;
    assert_eq!((out.sent, out.adopted), (1, 0), "{out:?}");
    assert_eq!(posts_to(&app, "U0NEVER1"), 1);
    assert_eq!(app.emulator.calls_to("conversations.history").len(), 1);
}

#[tokio::test]
async fn a_process_that_died_after_slack_accepted_does_not_cause_a_second_post() {
    let app = spawn_app().await;
    app.slack_shares_clock();
    app.add_user("U0DIED01", BERLIN);
    app.enqueue_dm("k-died", "U0DIED01", "hello").await;
    // The dead process: claimed, marked its attempt, posted (Slack accepted), then died
    // before writing the completion.
    let claimed = app
        .store
        .claim_outbox("dead-claim", app.now(), Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(app
        .store
        .begin_outbox_attempt(
            claimed[0].id,
            "dead-claim",
            app.now(),
            Duration::seconds(40)
        )
        .await
        .unwrap());
    let client = SlackClient::new(
        &app.emulator.base_url(),
        SecretString::from(BOT_TOKEN),
        std::time::Duration::from_secs(2),
    )
    .unwrap();
    client
        .post_message(&json!({
            "channel": "U0DIED01",
            "text": "hello",
            "metadata": delivery_metadata("k-died"),
        }))
        .await
        .unwrap();

    assert_eq!(app.step().await.claimed, 0, "its lease still holds");
    app.advance(Duration::seconds(61));
    let out = app.step().await;
    assert_eq!((out.sent, out.adopted), (1, 1), "{out:?}");
    assert_eq!(posts_to(&app, "U0DIED01"), 1, "no second post");
    assert_eq!(app.emulator.calls_to("chat.postMessage").len(), 1);
    let row = app.store.outbox_row("k-died").await.unwrap().unwrap();
    assert_eq!(row.status, OutboxStatus::Sent);
    assert!(row.attempt_started_at.is_none());
}

#[tokio::test]
async fn a_reminder_with_an_unknown_outcome_is_found_in_its_thread() {
    let app = spawn_app().await;
    app.slack_shares_clock();
    app.add_user("U0THREAD", BERLIN);
    app.enqueue_dm("k-parent", "U0THREAD", "pulse").await;
    assert_eq!(app.step().await.sent, 1);
    let mut reply =
        NewOutboxMessage::new("k-reply", "chat.postMessage", json!({ "text": "reminder" }));
    reply.channel_key = Some("U0THREAD".into());
    reply.target_key = Some("k-parent".into());
    app.store.enqueue(&reply, app.now()).await.unwrap();
    app.emulator.inject(
        Fault::on("chat.postMessage", FaultKind::PostThenDrop)
            .for_target(&app.emulator.dm_channel_for("U0THREAD"))
            .times(1),
    );
    app.advance(Duration::seconds(2));
    assert_eq!(app.step().await.retried, 1);
    app.advance(Duration::seconds(5));
    let out = app.step().await;
    assert_eq!((out.sent, out.adopted), (1, 1), "{out:?}");
    let replies: Vec<_> = app
        .emulator
        .dm_messages("U0THREAD")
        .into_iter()
        .filter(|m| m.thread_ts.is_some())
        .collect();
    assert_eq!(replies.len(), 1, "one reminder in the thread");
    assert_eq!(app.emulator.calls_to("conversations.replies").len(), 1);
}

#[tokio::test]
async fn opting_out_cancels_dms_already_queued() {
    let app = pilot_at(&["U0OPTQ01", "U0OPTQ02"], "", ONE_SCALE, sunday_noon()).await;
    app.clock.set(monday_ten_berlin());
    // The pulse is queued for both, but no worker has sent it yet.
    app.tick().await;
    app.assert_count("SELECT COUNT(*) FROM outbox WHERE status = 'pending'", 2)
        .await;
    app.confirm_optout("U0OPTQ01", "D0OPTQ01").await;
    app.assert_counts(&[
        (
            "SELECT COUNT(*) FROM deliveries d JOIN members m ON m.id = d.member_id
             WHERE m.slack_user_id = 'U0OPTQ01' AND d.state = 'skipped'
               AND d.failure_reason = 'opted out'",
            1,
        ),
        (
            "SELECT COUNT(*) FROM outbox WHERE status = 'cancelled'
               AND last_error = 'cancelled: member opted out'",
            1,
        ),
    ])
    .await;
    app.drain_outbox().await;
    assert_eq!(posts_to(&app, "U0OPTQ01"), 0, "the queued pulse never left");
    assert_eq!(posts_to(&app, "U0OPTQ02"), 1, "others are untouched");
}

#[tokio::test]
async fn opting_out_cancels_a_queued_reminder() {
    let app = pilot_at(&["U0OPTR01"], "", ONE_SCALE, sunday_noon()).await;
    app.clock.set(monday_ten_berlin());
    app.tick().await;
    app.drain_outbox().await;
    assert_eq!(posts_to(&app, "U0OPTR01"), 1);
    // A day later the reminder is queued; the member opts out before it is sent.
    app.clock.set(monday_ten_berlin() + Duration::hours(24));
    app.tick().await;
    app.assert_count_because(
        "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND method = 'chat.postMessage'",
        1,
        "the reminder waits in the outbox",
    )
    .await;
    app.confirm_optout("U0OPTR01", "D0OPTR01").await;
    app.drain_outbox().await;
    assert_eq!(
        posts_to(&app, "U0OPTR01"),
        1,
        "no reminder after opting out"
    );
    app.assert_count("SELECT COUNT(*) FROM outbox WHERE status = 'cancelled'", 1)
        .await;
    // The pulse itself was sent: that delivery keeps its state.
    app.assert_count("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'", 1)
        .await;
}

#[tokio::test]
async fn a_second_worker_on_the_same_clock_never_posts_a_row_twice_after_a_drop() {
    // Two workers share one queue; every first post is stored then dropped. Each row's
    // outcome is unknown once, and whichever worker picks it up next adopts it.
    let db = TestDb::new().await;
    let emulator = start_emulator().await;
    let clock = ManualClock::new(default_now());
    emulator_follows(&emulator, &clock);
    let (a, b) = spawn_two(|| TestAppBuilder::sharing(&db, &emulator, &clock)).await;
    let n = 12;
    for i in 0..n {
        let user = format!("U0TWO{i:04}");
        emulator.add_user(EmulatedUser::new(&user, BERLIN));
        a.enqueue_dm(&format!("k-two-{i}"), &user, "hi").await;
    }
    emulator.inject(Fault::on("chat.postMessage", FaultKind::PostThenDrop).times(n as u32));
    let sent = || a.count("SELECT COUNT(*) FROM outbox WHERE status = 'sent'");
    for _ in 0..60 {
        let (x, y) = tokio::join!(a.worker.run_once(), b.worker.run_once());
        x.unwrap();
        y.unwrap();
        if sent().await == n as i64 {
            break;
        }
        clock.advance(Duration::seconds(2));
    }
    assert_eq!(emulator.messages().len(), n, "one message per row");
    assert_eq!(emulator.calls_to("chat.postMessage").len(), n);
    a.assert_count(
        "SELECT COUNT(*) FROM outbox WHERE status = 'sent'",
        n as i64,
    )
    .await;
}

#[tokio::test]
async fn a_look_up_slack_refuses_for_good_falls_back_to_posting() {
    // Without history access (a missing scope) the DM is still delivered rather than lost;
    // the metric tells the operator that this post could not be verified.
    let app = spawn_app().await;
    app.slack_shares_clock();
    app.add_user("U0NOSCOP", BERLIN);
    app.emulator.inject(
        Fault::on("chat.postMessage", FaultKind::DropConnection)
            .for_target("U0NOSCOP")
            .times(1),
    );
    app.emulator.inject(Fault::on(
        "conversations.history",
        FaultKind::Error("missing_scope".into()),
    ));
    app.enqueue_dm("k-noscope", "U0NOSCOP", "hello").await;
    assert_eq!(app.step().await.retried, 1);
    app.advance(Duration::seconds(5));
    let out = app.step().await;
    assert_eq!((out.sent, out.adopted, out.failed), (1, 0, 0), "{out:?}");
    assert_eq!(posts_to(&app, "U0NOSCOP"), 1);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("outbox_outcome_unknown_total{resolution=\"unverified\"}"),
        "{metrics}"
    );
}
