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
use super::methods::{self, ApiError, Call, Method};
use super::model::RecordedCall;
use super::params::{self, Params};
use super::rate_limit::retry_after_secs;
use super::state::{Install, Shared, World};
use super::{control, directory, respond, sandbox, socket, uploads};

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
        .route("/sandbox/close", post(sandbox::close))
        .route("/sandbox/compose", post(sandbox::compose))
        .route("/sandbox/version", get(sandbox::version))
        .route("/oauth/v2/authorize", get(crate::oauth::authorize))
        .merge(control::routes())
        .merge(socket::routes())
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
                .serve_connection(TokioIo::new(stream), service)
                // Socket Mode's WebSocket is an upgraded connection.
                .with_upgrades();
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
    let json_body = params::is_json(content_type) && !body.is_empty();
    // Slack does not read a JSON body for form-only methods: their arguments are missing.
    let body: &[u8] = if json_body && params::FORM_ONLY.contains(&method.as_str()) {
        b""
    } else {
        &body
    };
    let decoded = Params::decode(query.as_deref(), content_type, body);
    let params = match &decoded {
        Ok(p) => p.clone(),
        // Record what can still be read (the query) for a body that does not parse.
        Err(_) => Params::decode(query.as_deref(), "", b"").unwrap_or_default(),
    };
    // A token inside a JSON body does not count at Slack (`not_authed`): JSON calls carry it
    // in the Authorization header.
    let token = bearer(&headers).or_else(|| {
        if json_body {
            Params::decode(query.as_deref(), "", b"")
                .ok()
                .and_then(|q| q.str("token"))
        } else {
            params.str("token")
        }
    });

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

/// Decode → auth → faults → rate limits → method; the world stays locked from the rate check
/// to the end of the method, as one Slack call is one step of the world.
async fn pipeline(
    shared: &Shared,
    method: &str,
    decoded: Result<Params, super::params::ParamError>,
    params: &Params,
    token: Option<&str>,
) -> Outcome {
    let Some(spec) = methods::find(method) else {
        return unknown_method(method);
    };
    if let Err(e) = decoded {
        return Outcome::ok_false(e.code());
    }
    let install = match authenticate(shared, spec, token) {
        Ok(install) => install,
        Err(refused) => return refused,
    };
    let drop_after = match apply_fault(shared, method, params).await {
        Ok(drop_after) => drop_after,
        Err(faulted) => return faulted,
    };

    let mut w = shared.world();
    let now = Instant::now();
    if spec.needs_token {
        if let Err(missing) = check_scope(&w, method, params, token) {
            return missing;
        }
        if let Err(limited) = check_rate(&mut w, method, params, token, now) {
            return limited;
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
    let body = reply_body(spec.run(&mut call));
    if drop_after {
        return Outcome::Drop;
    }
    Outcome::Answer {
        status: StatusCode::OK,
        body,
        retry_after: None,
    }
}

fn unknown_method(method: &str) -> Outcome {
    Outcome::Answer {
        status: StatusCode::NOT_FOUND,
        body: json!({ "ok": false, "error": "unknown_method", "req_method": method }),
        retry_after: None,
    }
}

/// The token's installation, or the refusal: `not_authed` without a token, `invalid_auth` for
/// an unknown one (only for methods that need a token).
fn authenticate(
    shared: &Shared,
    spec: &Method,
    token: Option<&str>,
) -> Result<Option<Install>, Outcome> {
    if token.is_some_and(|t| shared.world().revoked_tokens.contains(t)) {
        return Err(Outcome::ok_false("token_revoked"));
    }
    let install = token.and_then(|t| shared.world().tokens.get(t).cloned());
    if spec.needs_token {
        match (token, &install) {
            (None, _) => return Err(Outcome::ok_false("not_authed")),
            (Some(_), None) => return Err(Outcome::ok_false("invalid_auth")),
            _ => {}
        }
    }
    Ok(install)
}

/// Takes the fault queued for this call, if any. `Err` is the faulted answer; `Ok(true)` means
/// the call runs and then its connection is dropped; a delay is waited out here (unlocked).
async fn apply_fault(shared: &Shared, method: &str, params: &Params) -> Result<bool, Outcome> {
    let fault = shared.world().faults.take(method, &fault_targets(params));
    match fault {
        Some(FaultKind::Http(code)) => Err(http_fault(code)),
        Some(FaultKind::Error(code)) => Err(Outcome::ok_false(&code)),
        Some(FaultKind::RateLimited { retry_after_secs }) => {
            Err(Outcome::rate_limited(retry_after_secs))
        }
        Some(FaultKind::DropConnection) => Err(Outcome::Drop),
        Some(FaultKind::Delay(d)) => {
            tokio::time::sleep(d).await;
            Ok(false)
        }
        Some(FaultKind::PostThenDrop) => Ok(true),
        None => Ok(false),
    }
}

fn http_fault(code: u16) -> Outcome {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let error = if code == 503 {
        "service_unavailable"
    } else {
        "fatal_error"
    };
    Outcome::Answer {
        status,
        body: error_body(error),
        retry_after: None,
    }
}

/// `missing_scope` with `needed` and `provided`, as Slack answers, when the token was granted
/// scopes (workspace file, `EmulatorConfig::scopes`) and not the one this call needs.
fn check_scope(
    w: &World,
    method: &str,
    params: &Params,
    token: Option<&str>,
) -> Result<(), Outcome> {
    let Some(granted) = token.and_then(|t| w.token_scopes.get(t)) else {
        return Ok(());
    };
    let Some(needed) = methods::required_scope(method, params, w) else {
        return Ok(());
    };
    if granted.contains(&needed) {
        return Ok(());
    }
    let provided: Vec<&str> = granted.iter().map(String::as_str).collect();
    Err(Outcome::Answer {
        status: StatusCode::OK,
        body: json!({
            "ok": false,
            "error": "missing_scope",
            "needed": needed,
            "provided": provided.join(","),
        }),
        retry_after: None,
    })
}

/// The rate limiter's verdict for one call by `token`.
fn check_rate(
    w: &mut World,
    method: &str,
    params: &Params,
    token: Option<&str>,
    now: Instant,
) -> Result<(), Outcome> {
    // chat.postMessage is paced per conversation, so `U…` and its `D…` share a bucket.
    let channel = params.str("channel").map(|c| {
        if c.starts_with(['U', 'W']) {
            directory::dm_channel_id(&c)
        } else {
            // `#name` shares the bucket of the channel it names.
            w.directory.channel_named(&c).unwrap_or(c)
        }
    });
    let token = token.unwrap_or_default();
    w.limiter
        .check(token, method, channel.as_deref(), now)
        .map_err(|wait| Outcome::rate_limited(retry_after_secs(wait)))
}

/// A method's reply as Slack's JSON: `ok: true` plus its fields, or the error body with
/// `response_metadata.messages` when the error carries any.
fn reply_body(reply: methods::Reply) -> Value {
    match reply {
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
    }
}
