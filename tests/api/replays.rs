//! Replays: a captured signed request sent again within Slack's 5-minute window is
//! acknowledged and does nothing.

use crate::helpers::*;
use crate::pulses::{pilot_at, ONE_SCALE};
use chrono::Duration;
use serde_json::Value;
use slack_emulator::SignOptions;

async fn stored_answer(app: &TestApp) -> Vec<f64> {
    let sql = "SELECT value_number FROM responses WHERE value_number IS NOT NULL";
    with_test_pool!(&app.db.url, |pool| sqlx::query_scalar(sql)
        .fetch_all(&pool)
        .await
        .unwrap())
}

/// The form body of a click on the DM's button whose action id starts with `prefix`.
fn click_form(app: &TestApp, user: &str, prefix: &str) -> Vec<u8> {
    let msg = app.first_dm(user);
    for block in msg.blocks.as_array().unwrap() {
        for e in block["elements"].as_array().into_iter().flatten() {
            let id = e["action_id"].as_str().unwrap_or("");
            if id.starts_with(prefix) {
                let payload = app.peer.block_actions(
                    user,
                    &msg.channel,
                    &msg.ts,
                    id,
                    block["block_id"].as_str().unwrap(),
                    e["value"].as_str().unwrap_or(""),
                );
                let form = serde_urlencoded::to_string([("payload", payload.to_string())]);
                return form.unwrap().into_bytes();
            }
        }
    }
    panic!("no action {prefix}");
}

#[tokio::test]
async fn a_replayed_click_does_not_revert_a_changed_answer() {
    let app = pilot_at(
        &["U0RPL"],
        "anonymity = \"anonymous\"",
        ONE_SCALE,
        default_now(),
    )
    .await;
    app.send_monday_pulse().await;

    let first = click_form(&app, "U0RPL", "answer:2");
    let captured = app.sign_now();
    let r = app
        .post_signed("/slack/interactions", FORM, &first, captured.clone())
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(stored_answer(&app).await, vec![2.0]);

    app.advance(Duration::seconds(30));
    let second = click_form(&app, "U0RPL", "answer:5");
    let r = app
        .post_signed("/slack/interactions", FORM, &second, app.sign_now())
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(stored_answer(&app).await, vec![5.0]);

    // The attacker replays the first click, byte for byte, within the window.
    app.advance(Duration::seconds(60));
    let r = app
        .post_signed("/slack/interactions", FORM, &first, captured)
        .await;
    assert_eq!(r.status(), 200, "a replay is acknowledged");
    assert_eq!(stored_answer(&app).await, vec![5.0], "and changes nothing");
}

#[tokio::test]
async fn a_replayed_pause_does_not_undo_a_resume() {
    let app = pilot_at(&["U0RPP"], "", ONE_SCALE, sunday_noon()).await;
    let pause = command_form("U0RPP", "pause", None);
    let captured = app.sign_now();
    let r = app
        .post_signed("/slack/commands", FORM, &pause, captured.clone())
        .await;
    assert_eq!(r.status(), 200);
    let reply: Value = r.json().await.unwrap();
    assert!(
        reply["text"].as_str().unwrap().contains("Paused"),
        "{reply}"
    );

    app.advance(Duration::seconds(20));
    let r = app
        .post_signed(
            "/slack/commands",
            FORM,
            &command_form("U0RPP", "resume", None),
            app.sign_now(),
        )
        .await;
    assert_eq!(r.status(), 200);

    app.advance(Duration::seconds(20));
    let r = app
        .post_signed("/slack/commands", FORM, &pause, captured)
        .await;
    assert_eq!(r.status(), 200, "a replay is acknowledged");
    app.assert_count_because(
        "SELECT COUNT(*) FROM members WHERE slack_user_id = 'U0RPP' AND state = 'active'",
        1,
        "the member stays resumed",
    )
    .await;
    app.assert_count(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'member.paused'",
        1,
    )
    .await;
}

#[tokio::test]
async fn a_replay_is_recognised_by_another_replica_on_the_same_database() {
    let db = TestDb::new().await;
    let one = TestAppBuilder::default().db(db.clone()).spawn().await;
    let two = TestAppBuilder::default().db(db.clone()).spawn().await;
    two.clock.set(one.now());
    let form = command_form("U0ANY", "pause", None);
    let captured = one.sign_now();
    let r = one
        .post_signed("/slack/commands", FORM, &form, captured.clone())
        .await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(!body.is_empty());
    let r = two
        .post_signed("/slack/commands", FORM, &form, captured)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        "",
        "the second replica does nothing"
    );
}

#[tokio::test]
async fn old_signatures_are_pruned_after_the_window() {
    let app = spawn_app().await;
    let opts = SignOptions {
        timestamp: Some(app.now().timestamp()),
        ..SignOptions::default()
    };
    let r = app
        .post_signed(
            "/slack/commands",
            FORM,
            &command_form("U0X", "help", None),
            opts,
        )
        .await;
    assert_eq!(r.status(), 200);
    app.assert_count("SELECT COUNT(*) FROM seen_signatures", 1)
        .await;
    app.advance(Duration::hours(1));
    let r = app
        .post_signed(
            "/slack/commands",
            FORM,
            &command_form("U0X", "status", None),
            app.sign_now(),
        )
        .await;
    assert_eq!(r.status(), 200);
    app.assert_count_because(
        "SELECT COUNT(*) FROM seen_signatures",
        1,
        "the hour-old signature is gone, the new one kept",
    )
    .await;
}
