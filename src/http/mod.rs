//! The HTTP surface, the layer above the services: Slack's endpoints (`slack`, with the
//! `verified` extractor and the replay guard), operations endpoints (`ops`) and the admin API
//! (`admin`, with `export`, `kpis` and its OpenAPI document in `openapi`), the shared
//! [`state::AppState`], and `error`, where every service result and error becomes a response.
//! Every request goes through the layers below (request id, tracing span, metrics, body size
//! limit, timeout, concurrency cap).

pub mod admin;
pub mod admin_config;
pub mod error;
pub mod export;
pub mod kpis;
pub mod openapi;
pub mod ops;
pub mod server;
pub mod slack;
pub mod state;
pub mod verified;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use state::AppState;

const REQUEST_ID: &str = "x-request-id";

pub fn router(state: AppState) -> Router {
    let max_body = state.settings.server.max_body_bytes;
    let request_timeout = Duration::from_secs(state.settings.server.request_timeout_seconds);
    let permits = Arc::new(Semaphore::new(
        state.settings.server.max_concurrent_requests,
    ));
    let header = axum::http::HeaderName::from_static(REQUEST_ID);
    Router::new()
        .merge(slack::router())
        .merge(ops::router())
        .merge(admin::router(state.clone()))
        .merge(admin_config::router(state.clone()))
        .layer(DefaultBodyLimit::max(max_body))
        // A client that sends its body slowly is cut off with 408 (the body is read inside
        // the handler's future, so the timeout covers it).
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(middleware::from_fn_with_state(permits, limit_concurrency))
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

/// At most `server.max_concurrent_requests` requests are handled at once; beyond that a
/// request is refused at once with 503 and `Retry-After` (Slack retries events; a flood does
/// not queue up behind the database).
async fn limit_concurrency(
    State(permits): State<Arc<Semaphore>>,
    req: Request,
    next: Next,
) -> Response {
    match permits.try_acquire_owned() {
        Ok(_permit) => next.run(req).await,
        Err(_) => {
            metrics::counter!("http_requests_shed_total").increment(1);
            let mut response =
                error::ApiError::Unavailable("too many requests in progress; retry shortly".into())
                    .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
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
