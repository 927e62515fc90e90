use crate::helpers::*;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let _ = app.send_command("U0X", "help").await;
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("http_request_duration_seconds"), "{text}");
    assert!(text.contains("route=\"/slack/commands\""), "{text}");
    assert!(text.contains("outbox_pending"), "{text}");
    assert!(text.contains("outbox_oldest_pending_age_seconds"), "{text}");
}

#[tokio::test]
async fn responses_carry_a_request_id() {
    let app = spawn_app().await;
    let r = app.get("/healthz").await;
    assert!(r.headers().get("x-request-id").is_some());
}

#[tokio::test]
async fn the_admin_api_is_closed_without_a_configured_token() {
    let app = TestAppBuilder::default()
        .without_admin_token()
        .spawn()
        .await;
    let r = app.admin_get("/api/v1/programs").await;
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("PULSELOOP_ADMIN_TOKEN"),
        "{body}"
    );
}

#[tokio::test]
async fn background_workers_deliver_without_help_and_stop_cleanly() {
    let app = TestAppBuilder::default().workers(2).spawn().await;
    app.add_user("U0BG", "Europe/Berlin");
    let msg = pulseloop::storage::outbox::NewOutboxMessage::new(
        "k-bg",
        "chat.postMessage",
        serde_json::json!({ "channel": "U0BG", "text": "hello" }),
    );
    app.store.enqueue(&msg, app.now()).await.unwrap();
    for _ in 0..100 {
        if !app.emulator.calls_to("chat.postMessage").is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(app.emulator.calls_to("chat.postMessage").len(), 1);
    let store = app.store.clone();
    app.stop().await;
    assert!(
        store.outbox_row("k-bg").await.is_err(),
        "the pool is closed after shutdown"
    );
}
