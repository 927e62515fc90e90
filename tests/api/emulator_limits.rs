use crate::helpers::*;
use pulseloop::slack::outbound::{SlackClient, SlackError};
use pulseloop::storage::outbox::{NewOutboxMessage, OutboxStatus};
use secrecy::SecretString;
use serde_json::json;
use std::time::Duration;

fn section(text: &str) -> serde_json::Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } })
}

#[tokio::test]
async fn the_emulator_rejects_51_blocks_and_a_3001_character_section() {
    let emulator = start_emulator().await;
    emulator.add_user(slack_emulator::EmulatedUser::new(
        "U0BLOCKS",
        "Europe/Berlin",
    ));
    let client = SlackClient::new(
        &emulator.base_url(),
        SecretString::from(BOT_TOKEN),
        Duration::from_secs(5),
    )
    .unwrap();

    let fifty_one: Vec<_> = (0..51).map(|i| section(&format!("block {i}"))).collect();
    let err = client
        .post_message(&json!({ "channel": "U0BLOCKS", "text": "t", "blocks": fifty_one }))
        .await
        .unwrap_err();
    match err {
        SlackError::Api { code, .. } => assert_eq!(code, "invalid_blocks"),
        other => panic!("{other:?}"),
    }

    let long = "x".repeat(3001);
    let err = client
        .post_message(&json!({ "channel": "U0BLOCKS", "text": "t", "blocks": [section(&long)] }))
        .await
        .unwrap_err();
    match err {
        SlackError::Api { code, messages } => {
            assert_eq!(code, "invalid_blocks");
            assert!(
                messages.iter().any(|m| m.contains("/blocks/0/text/text")),
                "{messages:?}"
            );
        }
        other => panic!("{other:?}"),
    }

    let fifty: Vec<_> = (0..50).map(|i| section(&format!("block {i}"))).collect();
    client
        .post_message(&json!({ "channel": "U0BLOCKS", "text": "t", "blocks": fifty }))
        .await
        .expect("50 blocks are fine");
    client
        .post_message(
            &json!({ "channel": "U0BLOCKS", "text": "t", "blocks": [section(&"y".repeat(3000))] }),
        )
        .await
        .expect("3000 characters are fine");
}

#[tokio::test]
async fn the_outbox_fails_invalid_blocks_for_good() {
    let app = spawn_app().await;
    app.add_user("U0BLOCKS", "Europe/Berlin");
    let blocks: Vec<_> = (0..51).map(|i| section(&format!("block {i}"))).collect();
    let msg = NewOutboxMessage::new(
        "k-blocks",
        "chat.postMessage",
        json!({ "channel": "U0BLOCKS", "text": "t", "blocks": blocks }),
    );
    app.store.enqueue(&msg, app.now()).await.unwrap();
    assert_eq!(app.step().await.failed, 1);
    let row = app.store.outbox_row("k-blocks").await.unwrap().unwrap();
    assert_eq!(row.status, OutboxStatus::Failed);
    assert!(row.last_error.unwrap().contains("invalid_blocks"));
}

#[tokio::test]
async fn a_wrong_token_is_invalid_auth() {
    let emulator = start_emulator().await;
    let client = SlackClient::new(
        &emulator.base_url(),
        SecretString::from("xoxb-wrong"),
        Duration::from_secs(5),
    )
    .unwrap();
    match client.auth_test().await.unwrap_err() {
        SlackError::Api { code, .. } => assert_eq!(code, "invalid_auth"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn files_upload_in_two_steps_and_share_to_a_channel() {
    let emulator = start_emulator().await;
    emulator.add_channel("C0SPONSOR", "sponsors", true);
    let client = SlackClient::new(
        &emulator.base_url(),
        SecretString::from(BOT_TOKEN),
        Duration::from_secs(5),
    )
    .unwrap();
    let png = vec![0x89, b'P', b'N', b'G', 1, 2, 3];
    let done = client
        .upload_file(
            "trend.png",
            "Trend",
            png.clone(),
            Some("C0SPONSOR"),
            Some("This week"),
        )
        .await
        .expect("upload");
    assert_eq!(done["files"][0]["title"], "Trend");
    let files = emulator.files();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].bytes, png);
}
