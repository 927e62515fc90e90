//! The HTTP surface: Slack's endpoints, operations endpoints and the admin API, with the
//! layers every request goes through (request id, tracing span, metrics, body size limit).

pub mod admin;
pub mod error;
pub mod ops;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use std::time::Instant;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::state::AppState;

const REQUEST_ID: &str = "x-request-id";

pub fn router(state: AppState) -> Router {
    let max_body = state.settings.server.max_body_bytes;
    let header = axum::http::HeaderName::from_static(REQUEST_ID);
    Router::new()
        .merge(crate::slack::inbound::router())
        .merge(ops::router())
        .merge(admin::router(state.clone()))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(record_metrics))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(header.clone(), MakeRequestUuid))
                .layer(middleware::from_fn(with_request_id))
                .layer(
                    TraceLayer::new_for_http().make_span_with(|req: &Request| {
                        let route = req
                            .extensions()
                            .get::<MatchedPath>()
                            .map(|p| p.as_str().to_owned())
                            .unwrap_or_else(|| req.uri().path().to_owned());
                        let id = req
                            .headers()
                            .get(REQUEST_ID)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-");
                        tracing::info_span!("http", method = %req.method(), route = %route, request_id = %id)
                    }),
                )
                .layer(PropagateRequestIdLayer::new(header)),
        )
        .with_state(state)
}

/// Makes the request id known to error responses (a 500 names it; the log line too).
async fn with_request_id(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    error::REQUEST_ID.scope(id, next.run(req)).await
}

/// HTTP latency histogram labelled by route template (never by raw path: ids would explode
/// the label set).
async fn record_metrics(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().to_string();
    let start = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route, "status" => status)
        .record(start.elapsed().as_secs_f64());
    response
}
