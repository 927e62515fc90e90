use crate::helpers::*;
use chrono::Duration;
use pulseloop::slack::signature::compute_signature;
use serde_json::json;
use slack_emulator::SignOptions;

fn event(id: &str) -> serde_json::Value {
    json!({
        "token": "legacy", "team_id": "T0TEST", "api_app_id": "A0TEST", "type": "event_callback",
        "event_id": id, "event_time": 1_800_000_000,
        "event": { "type": "app_home_opened", "user": "U0LEADER1", "channel": "D0TEST", "tab": "home", "event_ts": "1800000000.000100" }
    })
}

async fn stored_events(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM slack_events").await
}

#[tokio::test]
async fn a_validly_signed_event_is_accepted_and_stored() {
    let app = spawn_app().await;
    let r = app.send_event(&event("Ev0001")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(stored_events(&app).await, 1);
}

#[tokio::test]
async fn wrong_secret_is_rejected_and_nothing_is_stored() {
    let app = spawn_app().await;
    let opts = SignOptions {
        secret_override: Some("not-the-secret".into()),
        ..app.sign_now()
    };
    let r = app.send_event_with(&event("Ev0002"), opts).await;
    assert_eq!(r.status(), 401);
    assert_eq!(stored_events(&app).await, 0);
}

#[tokio::test]
async fn a_body_changed_by_one_byte_is_rejected() {
    let app = spawn_app().await;
    let body = event("Ev0003").to_string();
    let ts = app.now().timestamp().to_string();
    let signature = compute_signature(SIGNING_SECRET.as_bytes(), &ts, body.as_bytes());
    let tampered = body.replacen("Ev0003", "Ev0004", 1);
    assert_eq!(tampered.len(), body.len());
    let opts = SignOptions {
        signature_override: Some(signature),
        ..app.sign_now()
    };
    let r = app
        .post_signed(
            "/slack/events",
            "application/json",
            tampered.as_bytes(),
            opts,
        )
        .await;
    assert_eq!(r.status(), 401);
    assert_eq!(stored_events(&app).await, 0);
}

#[tokio::test]
async fn timestamps_outside_five_minutes_are_rejected_both_ways() {
    let app = spawn_app().await;
    let now = app.now();
    for (offset, expected, id) in [
        (-301, 401, "EvOld"),
        (301, 401, "EvFuture"),
        (-299, 200, "EvRecent"),
        (299, 200, "EvSoon"),
    ] {
        let opts = SignOptions {
            timestamp: Some((now + Duration::seconds(offset)).timestamp()),
            ..SignOptions::default()
        };
        let r = app.send_event_with(&event(id), opts).await;
        assert_eq!(r.status().as_u16(), expected, "offset {offset}s");
    }
    assert_eq!(stored_events(&app).await, 2);
}

#[tokio::test]
async fn missing_headers_and_other_versions_are_rejected() {
    let app = spawn_app().await;
    let opts = SignOptions {
        omit_headers: true,
        ..app.sign_now()
    };
    let r = app.send_event_with(&event("Ev0005"), opts).await;
    assert_eq!(r.status(), 401);

    let body = event("Ev0006").to_string();
    let ts = app.now().timestamp().to_string();
    let v1 = compute_signature(SIGNING_SECRET.as_bytes(), &ts, body.as_bytes())
        .replacen("v0=", "v1=", 1);
    let opts = SignOptions {
        signature_override: Some(v1),
        ..app.sign_now()
    };
    let r = app
        .post_signed("/slack/events", "application/json", body.as_bytes(), opts)
        .await;
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");
    assert_eq!(stored_events(&app).await, 0);
}

#[tokio::test]
async fn unsigned_interactions_and_commands_are_rejected_too() {
    let app = spawn_app().await;
    let opts = SignOptions {
        secret_override: Some("wrong".into()),
        ..app.sign_now()
    };
    for path in ["/slack/interactions", "/slack/commands"] {
        let r = app
            .post_signed(
                path,
                "application/x-www-form-urlencoded",
                b"payload=%7B%7D",
                opts.clone(),
            )
            .await;
        assert_eq!(r.status(), 401, "{path}");
    }
}

#[tokio::test]
async fn url_verification_is_answered_only_when_signed() {
    let app = spawn_app().await;
    let body = json!({ "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification" });
    let r = app.send_event(&body).await;
    assert_eq!(r.status(), 200);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer["challenge"], body["challenge"]);

    let opts = SignOptions {
        secret_override: Some("wrong".into()),
        ..app.sign_now()
    };
    let r = app.send_event_with(&body, opts).await;
    assert_eq!(r.status(), 401);
    assert!(!r.text().await.unwrap().contains("3eZbrw1aBm2r"));
}
