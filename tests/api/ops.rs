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
