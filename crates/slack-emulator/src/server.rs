//! The HTTP side: a manual accept loop (hyper, one task per connection) so a fault can close
//! a connection without answering, the router, and the Web API pipeline every call goes
//! through: decode → auth → faults → rate limits → method → record.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Extension, Router};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tower::ServiceExt;

use super::faults::FaultKind;
use super::methods::{self, ApiError, Call};
use super::model::RecordedCall;
use super::params::Params;
use super::rate_limit::retry_after_secs;
use super::state::Shared;
use super::{directory, respond, sandbox, uploads};

/// Notified by a handler to make its connection's task drop the socket unanswered.
#[derive(Clone)]
pub(crate) struct DropSignal(Arc<Notify>);

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/{method}", any(api))
        .route("/upload/{file_id}", post(uploads::receive))
        .route("/files-pri/{file_id}/{*name}", get(uploads::download))
        .route("/actions/{id}", post(respond::response_url))
        .route("/", get(sandbox::page))
        .route("/sandbox/click", post(sandbox::click))
        .route("/sandbox/submit", post(sandbox::submit))
        .with_state(shared)
}

/// Accepts connections until `stop` fires or every [`super::Emulator`] handle is gone.
pub(crate) async fn serve(listener: TcpListener, router: Router, mut stop: watch::Receiver<bool>) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::debug!(error = %e, "emulator: accept failed");
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let drop_signal = Arc::new(Notify::new());
        let router = router.clone();
        let signal = DropSignal(drop_signal.clone());
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(signal.clone());
            router.clone().oneshot(req)
        });
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                result = connection => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "emulator: connection ended with an error");
                    }
                }
                // Dropping the connection future closes the socket without a response.
                _ = drop_signal.notified() => tracing::debug!("emulator: connection dropped by fault"),
                _ = stop.changed() => {}
            }
        });
    }
}

fn json_response(status: StatusCode, body: &Value, retry_after: Option<u64>) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn error_body(code: &str) -> Value {
    json!({ "ok": false, "error": code })
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?
        .trim();
    (!token.is_empty()).then(|| token.to_string())
}

/// The ids a call is about, with users also as their DM, so a fault on `D…` hits a post to `U…`.
fn fault_targets(params: &Params) -> Vec<String> {
    let mut targets = params.targets();
    let dms: Vec<String> = targets
        .iter()
        .filter(|t| t.starts_with(['U', 'W']))
        .map(|u| directory::dm_channel_id(u))
        .collect();
    targets.extend(dms);
    targets
}

/// The outcome of the pipeline before it is recorded and sent.
enum Outcome {
    Answer {
        status: StatusCode,
        body: Value,
        retry_after: Option<u64>,
    },
    Drop,
}

impl Outcome {
    fn ok_false(code: &str) -> Self {
        Outcome::Answer {
            status: StatusCode::OK,
            body: error_body(code),
            retry_after: None,
        }
    }

    fn rate_limited(secs: u64) -> Self {
        Outcome::Answer {
            status: StatusCode::TOO_MANY_REQUESTS,
            body: error_body("ratelimited"),
            retry_after: Some(secs.max(1)),
        }
    }
}

async fn api(
    State(shared): State<Arc<Shared>>,
    Extension(drop_signal): Extension<DropSignal>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (arrived, seq) = {
        let mut w = shared.world();
        (w.now(), w.arrive())
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let decoded = Params::decode(query.as_deref(), content_type, &body);
    let params = match &decoded {
        Ok(p) => p.clone(),
        // Record what can still be read (the query) for a body that does not parse.
        Err(_) => Params::decode(query.as_deref(), "", b"").unwrap_or_default(),
    };
    let token = bearer(&headers).or_else(|| params.str("token"));

    let outcome = pipeline(&shared, &method, decoded, &params, token.as_deref()).await;

    let (status, response, reply) = match outcome {
        Outcome::Answer {
            status,
            body,
            retry_after,
        } => {
            let reply = json_response(status, &body, retry_after);
            (status.as_u16(), body, Some(reply))
        }
        Outcome::Drop => (0, Value::Null, None),
    };
    let error = response.get("error").and_then(|e| e.as_str()).unwrap_or("");
    tracing::debug!(%method, status, error, "emulator: call");
    shared.world().record(
        seq,
        RecordedCall {
            method,
            params: Value::Object(params.0),
            token,
            http_status: status,
            response,
            at: arrived,
        },
    );
    match reply {
        Some(reply) => reply,
        None => {
            drop_signal.0.notify_one();
            // The connection task drops this future together with the socket.
            std::future::pending::<Response>().await
        }
    }
}

async fn pipeline(
    shared: &Shared,
    method: &str,
    decoded: Result<Params, super::params::ParamError>,
    params: &Params,
    token: Option<&str>,
) -> Outcome {
    let Some(spec) = methods::find(method) else {
        return Outcome::Answer {
            status: StatusCode::NOT_FOUND,
            body: json!({ "ok": false, "error": "unknown_method", "req_method": method }),
            retry_after: None,
        };
    };
    if let Err(e) = decoded {
        return Outcome::ok_false(e.code());
    }

    let install = {
        let w = shared.world();
        match token {
            Some(t) => w.tokens.get(t).cloned(),
            None => None,
        }
    };
    if spec.needs_token {
        match (token, &install) {
            (None, _) => return Outcome::ok_false("not_authed"),
            (Some(_), None) => return Outcome::ok_false("invalid_auth"),
            _ => {}
        }
    }

    let fault = shared.world().faults.take(method, &fault_targets(params));
    match fault {
        Some(FaultKind::Http(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let error = if code == 503 {
                "service_unavailable"
            } else {
                "fatal_error"
            };
            return Outcome::Answer {
                status,
                body: error_body(error),
                retry_after: None,
            };
        }
        Some(FaultKind::Error(code)) => return Outcome::ok_false(&code),
        Some(FaultKind::RateLimited { retry_after_secs }) => {
            return Outcome::rate_limited(retry_after_secs)
        }
        Some(FaultKind::DropConnection) => return Outcome::Drop,
        Some(FaultKind::Delay(d)) => tokio::time::sleep(d).await,
        Some(FaultKind::PostThenDrop) | None => {}
    }
    let drop_after = fault == Some(FaultKind::PostThenDrop);

    let mut w = shared.world();
    let now = Instant::now();
    if spec.needs_token {
        // chat.postMessage is paced per conversation, so `U…` and its `D…` share a bucket.
        let channel = params.str("channel").map(|c| {
            if c.starts_with(['U', 'W']) {
                directory::dm_channel_id(&c)
            } else {
                c
            }
        });
        let token = token.unwrap_or_default();
        if let Err(wait) = w.limiter.check(token, method, channel.as_deref(), now) {
            return Outcome::rate_limited(retry_after_secs(wait));
        }
    }
    let at = w.now();
    let mut call = Call {
        w: &mut w,
        p: params,
        install,
        now: at,
        instant: now,
    };
    let body = match spec.run(&mut call) {
        Ok(mut fields) => {
            let mut body = serde_json::Map::new();
            body.insert("ok".into(), Value::Bool(true));
            body.append(&mut fields);
            Value::Object(body)
        }
        Err(ApiError { code, messages }) => {
            let mut body = error_body(&code);
            if !messages.is_empty() {
                body["response_metadata"] = json!({ "messages": messages });
            }
            body
        }
    };
    if drop_after {
        return Outcome::Drop;
    }
    Outcome::Answer {
        status: StatusCode::OK,
        body,
        retry_after: None,
    }
}
