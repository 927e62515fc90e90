//! The DM update after a click goes through the click's response_url (outside the Web API
//! tiers), falls back to chat.update when the URL expired or is refused, and repeated
//! updates of one DM collapse into the latest.

use crate::helpers::*;
use crate::pulses::{pilot_at, ONE_SCALE};
use chrono::Duration;
use serde_json::{json, Value};

fn click_payload(app: &TestApp, user: &str, value: u8) -> Value {
    let dm = app.first_dm(user);
    let want = format!("answer:{value}");
    for block in dm.blocks.as_array().unwrap() {
        for e in block["elements"].as_array().into_iter().flatten() {
            let action = e["action_id"].as_str().unwrap_or("");
            if action.starts_with(&want) {
                return app.peer.block_actions(
                    user,
                    &dm.channel,
                    &dm.ts,
                    action,
                    block["block_id"].as_str().unwrap(),
                    e["value"].as_str().unwrap_or(""),
                );
            }
        }
    }
    panic!("no {want} button");
}

async fn pilot_one(user: &str) -> TestApp {
    let app = pilot_at(&[user], "", ONE_SCALE, monday_ten_berlin()).await;
    app.send_monday_pulse().await;
    app
}

fn shows_answer_in(app: &TestApp, user: &str) -> bool {
    app.first_dm(user)
        .blocks
        .to_string()
        .contains("your answer is in")
}

#[tokio::test]
async fn a_click_updates_the_dm_through_its_response_url_not_chat_update() {
    let app = pilot_one("U0RU1").await;
    let click = click_payload(&app, "U0RU1", 4);
    assert_eq!(app.send_interaction(&click).await.status(), 200);
    let row: Vec<_> = rows(
        &app.db.url,
        "SELECT method, payload FROM outbox WHERE kind = 'answer_update'",
    )
    .await;
    assert_eq!(row.len(), 1);
    assert_eq!(
        row[0]["method"],
        json!("chat.update"),
        "chat.update stays the fallback"
    );
    app.drain_outbox().await;
    assert!(shows_answer_in(&app, "U0RU1"));
    assert_eq!(app.first_dm("U0RU1").edits, 1);
    assert!(
        app.emulator.calls_to("chat.update").is_empty(),
        "no Tier 3 call for a click's update"
    );
    let key = rows(
        &app.db.url,
        "SELECT dedupe_key FROM outbox WHERE kind = 'answer_update'",
    )
    .await[0]["dedupe_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let sent = app.store.outbox_row(&key).await.unwrap().unwrap();
    assert_eq!(sent.result, Some(json!({ "via": "response_url" })));
}

#[tokio::test]
async fn an_update_sent_after_the_url_expired_goes_by_chat_update() {
    let app = pilot_one("U0RU2").await;
    app.send_interaction(&click_payload(&app, "U0RU2", 2)).await;
    // The outbox is late: 30 minutes later the URL is no longer usable.
    app.advance(Duration::minutes(30));
    app.drain_outbox().await;
    assert!(shows_answer_in(&app, "U0RU2"));
    let updates = app.emulator.calls_to("chat.update");
    assert_eq!(updates.len(), 1);
    assert!(
        updates[0].params.get("_response_url").is_none(),
        "the URL is never sent to Slack: {}",
        updates[0].params
    );
}

#[tokio::test]
async fn a_refused_url_falls_back_to_chat_update() {
    let app = pilot_one("U0RU3").await;
    let click = click_payload(&app, "U0RU3", 5);
    let url = click["response_url"].as_str().unwrap().to_string();
    // Someone used the URL's five uses up (Slack refuses the sixth).
    for _ in 0..5 {
        let r = app
            .http
            .post(&url)
            .json(&json!({ "text": "elsewhere" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    app.send_interaction(&click).await;
    app.drain_outbox().await;
    assert!(shows_answer_in(&app, "U0RU3"));
    assert_eq!(app.emulator.calls_to("chat.update").len(), 1);
}

#[tokio::test]
async fn repeated_updates_of_one_dm_collapse_into_the_latest() {
    let app = pilot_one("U0RU4").await;
    for value in [1, 3, 5] {
        app.send_interaction(&click_payload(&app, "U0RU4", value))
            .await;
    }
    app.assert_count(
        "SELECT COUNT(*) FROM outbox WHERE kind = 'answer_update' AND status = 'pending'",
        1,
    )
    .await;
    app.drain_outbox().await;
    let dm = app.first_dm("U0RU4");
    assert_eq!(dm.edits, 1, "one update for three clicks");
    assert!(shows_answer_in(&app, "U0RU4"));
    let stored: Vec<_> = rows(&app.db.url, "SELECT value_number FROM responses").await;
    assert_eq!(stored[0]["value_number"], json!(5.0));
}
