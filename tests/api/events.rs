use crate::helpers::*;
use serde_json::json;
use slack_emulator::SignOptions;

fn user_change(id: &str, status: &str) -> serde_json::Value {
    json!({
        "team_id": "T0TEST", "api_app_id": "A0TEST", "type": "event_callback", "event_id": id, "event_time": 1_800_000_000,
        "event": { "type": "user_change", "event_ts": "1800000000.000200",
            "user": { "id": "U0NOBODY", "tz": "Europe/Paris", "deleted": false, "is_bot": false,
                      "profile": { "status_text": status, "status_emoji": ":palm_tree:" } } }
    })
}

#[tokio::test]
async fn the_same_event_delivered_three_times_is_handled_once() {
    let app = spawn_app().await;
    let body = user_change("Ev0RETRY", "On vacation");
    let first = app.send_event(&body).await;
    assert_eq!(first.status(), 200);
    for retry in 1..=3 {
        let opts = SignOptions {
            retry_num: Some(retry),
            ..app.sign_now()
        };
        let r = app.send_event_with(&body, opts).await;
        assert_eq!(r.status(), 200, "retry {retry} is acknowledged");
    }
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM slack_events", 1),
        (
            "SELECT COUNT(*) FROM slack_events WHERE event_id = 'Ev0RETRY'",
            1,
        ),
    ])
    .await;
}

#[tokio::test]
async fn malformed_bodies_get_400_and_unknown_types_200() {
    let app = spawn_app().await;
    let r = app
        .post_signed(
            "/slack/events",
            "application/json",
            b"{not json",
            app.sign_now(),
        )
        .await;
    assert_eq!(r.status(), 400);
    let r = app
        .post_signed(
            "/slack/events",
            "application/json",
            br#"{"no":"type"}"#,
            app.sign_now(),
        )
        .await;
    assert_eq!(r.status(), 400);
    let r = app
        .send_event(&json!({ "type": "something_new", "x": 1 }))
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .post_signed(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            b"payload=%7Bbroken",
            app.sign_now(),
        )
        .await;
    assert_eq!(r.status(), 400);
    let r = app
        .post_signed(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            b"nopayload=1",
            app.sign_now(),
        )
        .await;
    assert_eq!(r.status(), 400);
    let r = app
        .send_interaction(&json!({ "type": "brand_new_interaction" }))
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .post_signed(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            b"text=help",
            app.sign_now(),
        )
        .await;
    assert_eq!(r.status(), 400, "a command without user_id is malformed");
    app.assert_count("SELECT COUNT(*) FROM slack_events", 0)
        .await;
}

#[tokio::test]
async fn oversized_requests_are_refused_before_anything_runs() {
    let app = spawn_app().await;
    let big = format!(
        r#"{{"type":"event_callback","event_id":"EvBig","event":{{"type":"message","text":"{}"}}}}"#,
        "x".repeat(300 * 1024)
    );
    let r = app
        .post_signed(
            "/slack/events",
            "application/json",
            big.as_bytes(),
            app.sign_now(),
        )
        .await;
    assert_eq!(r.status(), 413);
    app.assert_count("SELECT COUNT(*) FROM slack_events", 0)
        .await;
}

#[tokio::test]
async fn pulse_help_and_unknown_input_answer_with_help() {
    let app = spawn_app().await;
    for text in ["help", "", "make me a sandwich"] {
        let r = app.send_command("U0SOMEONE", text).await;
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["response_type"], "ephemeral");
        let reply = body["text"].as_str().unwrap();
        assert!(reply.contains("/pulse status"), "{text:?} → {reply}");
        if text == "make me a sandwich" {
            assert!(
                reply.contains("I don't know `make me a sandwich`"),
                "{reply}"
            );
        }
    }
}

fn user_change_of(id: &str, user: &str, status: &str) -> serde_json::Value {
    let mut body = user_change(id, status);
    body["event"]["user"]["id"] = json!(user);
    body
}

#[tokio::test]
async fn an_event_whose_handling_failed_is_handled_when_slack_retries() {
    let app =
        crate::pulses::pilot_at(&["U0EVT"], "", crate::pulses::ONE_SCALE, default_now()).await;
    let body = user_change_of("Ev0FAIL", "U0EVT", "On vacation");
    break_member_updates(&app.db.url).await;
    let r = app.send_event(&body).await;
    assert_eq!(r.status(), 500);
    let text = r.text().await.unwrap();
    assert!(!text.contains("injected"), "database text leaked: {text}");
    assert!(!text.contains("members"), "database text leaked: {text}");
    app.assert_count_because(
        "SELECT COUNT(*) FROM slack_events",
        0,
        "a failed event is not remembered as seen",
    )
    .await;
    heal_members(&app.db.url).await;

    // Slack retries a minute later, signed anew.
    app.advance(chrono::Duration::minutes(1));
    let opts = SignOptions {
        retry_num: Some(1),
        ..app.sign_now()
    };
    let r = app.send_event_with(&body, opts).await;
    assert_eq!(r.status(), 200);
    app.assert_count_because("SELECT COUNT(*) FROM members WHERE slack_user_id = 'U0EVT' AND status_text = 'On vacation'", 1, "the retry was handled").await;
    app.assert_count("SELECT COUNT(*) FROM slack_events", 1)
        .await;
}

#[tokio::test]
async fn a_database_error_is_a_generic_500_with_a_request_id() {
    let app =
        crate::pulses::pilot_at(&["U0ERR"], "", crate::pulses::ONE_SCALE, default_now()).await;
    break_member_updates(&app.db.url).await;
    let r = app
        .send_event(&user_change_of("Ev0ERR", "U0ERR", "Away"))
        .await;
    assert_eq!(r.status(), 500);
    let header_id = r
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("a request id header");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "internal");
    assert_eq!(body["detail"], "internal error");
    assert_eq!(body["request_id"], json!(header_id));
    let printed = body.to_string().to_lowercase();
    for leak in [
        "injected", "members", "sqlite", "postgres", "trigger", "database",
    ] {
        assert!(!printed.contains(leak), "{leak} in {printed}");
    }
}

#[tokio::test]
async fn a_real_token_records_its_workspace_so_no_sandbox_starts_on_this_database() {
    let app = spawn_app().await;
    app.assert_count_because(
        "SELECT COUNT(*) FROM workspaces WHERE source = 'auth.test'",
        1,
        "auth.test at start",
    )
    .await;
    let mut event = user_change("Ev0TEAM", "Here");
    event["team_id"] = json!("T0OTHER");
    assert_eq!(app.send_event(&event).await.status(), 200);
    app.assert_count_because(
        "SELECT COUNT(*) FROM workspaces WHERE team_id = 'T0OTHER' AND source = 'event'",
        1,
        "the team of an event",
    )
    .await;
}
