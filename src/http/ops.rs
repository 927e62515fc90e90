//! Operations endpoints: liveness, readiness and Prometheus metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
}

/// The process is up and serving.
async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// The database answers and its migrations are applied; in Socket Mode, the WebSocket to
/// Slack is connected too (or down for no longer than `slack.socket_ready_grace_seconds`).
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.readiness().await {
        Ok(()) => socket_readiness(&state),
        Err(reason) => {
            // The reason may quote the database; it goes to the log, not to the prober.
            tracing::warn!(%reason, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    json!({ "status": "not_ready", "detail": "the database is unreachable or not migrated" }),
                ),
            )
        }
    }
}

/// `/readyz` once the database is ready: as is without Socket Mode, else by its connection.
fn socket_readiness(state: &AppState) -> (StatusCode, Json<serde_json::Value>) {
    use crate::slack::socket::SocketStatus;
    let Some(health) = &state.socket else {
        return (StatusCode::OK, Json(json!({ "status": "ready" })));
    };
    let grace = chrono::Duration::seconds(state.settings.slack.socket_ready_grace_seconds as i64);
    match health.status(grace) {
        SocketStatus::Connected => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "socket": "connected" })),
        ),
        SocketStatus::Reconnecting { down_seconds } => (
            StatusCode::OK,
            Json(
                json!({ "status": "ready", "socket": "reconnecting", "down_seconds": down_seconds }),
            ),
        ),
        SocketStatus::NotConnected { detail } => {
            tracing::warn!(%detail, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": "unavailable", "detail": detail })),
            )
        }
    }
}

/// Prometheus text format. Outbox depth is read from the database at scrape time, so every
/// replica reports the shared queue.
async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.outbox_stats(state.clock.now()).await {
        Ok(stats) => {
            metrics::gauge!("outbox_pending").set(stats.pending as f64);
            metrics::gauge!("outbox_in_flight").set(stats.in_flight as f64);
            metrics::gauge!("outbox_failed").set(stats.failed as f64);
            metrics::gauge!("outbox_oldest_pending_age_seconds")
                .set(stats.oldest_pending_age_seconds);
        }
        Err(e) => tracing::warn!(error = %e, "could not read outbox depth for metrics"),
    }
    state.metrics.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
