//! Every Slack call passes the one limiter of its workspace token: inline calls are paced or
//! held back locally before Slack would answer 429, views.open never waits past its bound, and
//! a 429 on any call pauses the method for the outbox too.

use crate::helpers::*;
use chrono::{DateTime, Duration, TimeZone, Utc};
use pulseloop::clock::ManualClock;
use pulseloop::slack::outbound::client::USERS_LIST_PAGE;
use pulseloop::slack::outbound::{Patience, SlackClient, SlackError};
use pulseloop::storage::outbox::{NewOutboxMessage, OutboxStatus};
use secrecy::SecretString;
use serde_json::json;
use slack_emulator::{EmulatedUser, Emulator, Fault, FaultKind, RateLimits};
use std::sync::Arc;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 3, 9, 0, 0).unwrap()
}

fn client(emulator: &Emulator, clock: &ManualClock, patience: Patience) -> SlackClient {
    SlackClient::new(
        &emulator.base_url(),
        SecretString::from(BOT_TOKEN),
        std::time::Duration::from_secs(5),
    )
    .unwrap()
    .with_clock(Arc::new(clock.clone()))
    .with_patience(patience)
}

fn once(method: &str, kind: FaultKind) -> Fault {
    Fault {
        method: Some(method.into()),
        target: None,
        kind,
        times: Some(1),
    }
}

fn statuses(emulator: &Emulator, method: &str) -> (usize, usize) {
    let calls = emulator.calls_to(method);
    let limited = calls.iter().filter(|c| c.http_status == 429).count();
    (calls.len(), limited)
}

#[tokio::test]
async fn an_inline_users_info_burst_is_held_back_before_slack_answers_429() {
    let emulator = start_emulator().await;
    // Slack's own tiers: users.info is Tier 4, 100 a minute.
    emulator.set_limits(RateLimits::default());
    emulator.add_user(EmulatedUser::new("U0BURST1", "Europe/Berlin"));
    let clock = ManualClock::new(t0());
    let patience = Patience {
        interactive: std::time::Duration::from_secs(1),
        background: std::time::Duration::from_secs(1),
    };
    let client = client(&emulator, &clock, patience);

    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..150 {
        let client = client.clone();
        burst.spawn(async move { client.users_info(&"U0BURST1".into()).await });
    }
    let (mut read, mut held) = (0, 0);
    while let Some(result) = burst.join_next().await {
        match result.unwrap() {
            Ok(user) => {
                assert_eq!(user.id, "U0BURST1");
                read += 1;
            }
            Err(SlackError::LocallyLimited { method, .. }) => {
                assert_eq!(method, "users.info");
                held += 1;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    let (calls, limited) = statuses(&emulator, "users.info");
    assert_eq!(limited, 0, "Slack never had to say 429");
    assert_eq!(calls, read, "every call that left was answered");
    assert!(
        (10..=20).contains(&read),
        "a tenth of a minute's budget at once, then paced: {read}"
    );
    assert_eq!(read + held, 150);
}

#[tokio::test]
async fn views_open_waits_out_a_short_pause_but_never_past_its_bound() {
    let emulator = start_emulator().await;
    emulator.add_user(EmulatedUser::new("U0CLICK1", "Europe/Berlin"));
    let clock = ManualClock::new(t0());
    let client = client(&emulator, &clock, Patience::default());
    let view = json!({ "type": "modal", "title": { "type": "plain_text", "text": "Pulse" },
        "blocks": [] });

    // A 429 with Retry-After 1 s pauses views.open; the next click waits it out (1 s < 2 s).
    emulator.inject(once(
        "views.open",
        FaultKind::RateLimited {
            retry_after_secs: 1,
        },
    ));
    let trigger = emulator.issue_trigger_id_for("U0CLICK1");
    match client.views_open(&trigger, &view).await.unwrap_err() {
        SlackError::RateLimited { .. } => {}
        other => panic!("{other:?}"),
    }
    let trigger = emulator.issue_trigger_id_for("U0CLICK1");
    client
        .views_open(&trigger, &view)
        .await
        .expect("opened after the pause");
    assert_eq!(statuses(&emulator, "views.open"), (2, 1));

    // Retry-After 30 s: the click is answered at once with a local refusal, never after 2 s
    // (the trigger_id would have expired), and Slack is not asked.
    emulator.inject(once(
        "views.open",
        FaultKind::RateLimited {
            retry_after_secs: 30,
        },
    ));
    let trigger = emulator.issue_trigger_id_for("U0CLICK1");
    client.views_open(&trigger, &view).await.unwrap_err();
    let trigger = emulator.issue_trigger_id_for("U0CLICK1");
    match client.views_open(&trigger, &view).await.unwrap_err() {
        SlackError::LocallyLimited { ready_at, .. } => {
            assert!(ready_at >= t0() + Duration::seconds(30), "{ready_at}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        statuses(&emulator, "views.open"),
        (3, 2),
        "the last click never left"
    );
}

#[tokio::test]
async fn a_429_on_an_inline_call_pauses_the_outbox_for_that_method() {
    let app = spawn_app().await;
    app.add_user("U0PAUSE1", "Europe/Berlin");
    app.add_user("U0PAUSE2", "Europe/Berlin");
    app.emulator.inject(once(
        "chat.postMessage",
        FaultKind::RateLimited {
            retry_after_secs: 5,
        },
    ));
    // An inline post (the app's own client, the one its workers share) meets Slack's 429.
    match app
        .state
        .pulses
        .slack
        .post_message(&json!({ "channel": "U0PAUSE1", "text": "inline" }))
        .await
        .unwrap_err()
    {
        SlackError::RateLimited { .. } => {}
        other => panic!("{other:?}"),
    }

    let mut msg = NewOutboxMessage::new(
        "k-paused",
        "chat.postMessage",
        json!({ "channel": "U0PAUSE2", "text": "queued" }),
    );
    msg.channel_key = Some("U0PAUSE2".into());
    app.store.enqueue(&msg, app.now()).await.unwrap();
    let out = app.step().await;
    // Rows of a paused method are not even claimed (claimed only to be given back, they
    // would cost two writes each and a busy loop).
    assert_eq!((out.claimed, out.sent), (0, 0), "{out:?}");
    let row = app.store.outbox_row("k-paused").await.unwrap().unwrap();
    assert_eq!(row.attempts, 0, "a local hold is not an attempt");
    assert_eq!(row.status, OutboxStatus::Pending);
    assert_eq!(
        app.emulator.calls_to("chat.postMessage").len(),
        1,
        "the outbox did not ask Slack during the pause"
    );

    app.advance(Duration::seconds(5));
    assert_eq!(app.step().await.sent, 1);
    let row = app.store.outbox_row("k-paused").await.unwrap().unwrap();
    assert_eq!(row.status, OutboxStatus::Sent);
}

#[tokio::test]
async fn users_list_sits_out_a_429_and_reads_every_page() {
    let emulator = start_emulator().await;
    emulator.set_limits(RateLimits::default());
    // More than one page.
    let members = USERS_LIST_PAGE + 50;
    for i in 0..members {
        emulator.add_user(EmulatedUser::new(&format!("U0PAGE{i:04}"), "Asia/Tokyo"));
    }
    emulator.inject(once(
        "users.list",
        FaultKind::RateLimited {
            retry_after_secs: 1,
        },
    ));
    let clock = ManualClock::new(t0());
    let client = client(&emulator, &clock, Patience::default());

    let users = client.users_list().await.expect("every page read");
    assert!(users.len() >= members, "{}", users.len());
    // The refused page asked again after the pause, then the second page: no 429 from the
    // emulator's own Tier 2 limit.
    assert_eq!(statuses(&emulator, "users.list"), (3, 1));
}
