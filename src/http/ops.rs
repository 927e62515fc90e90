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

/// The database answers and its migrations are applied.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.readiness().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
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
