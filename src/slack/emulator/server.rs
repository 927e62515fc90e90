//! The emulator's HTTP side: a manual accept loop (so a fault can drop a connection without
//! answering), parameter decoding as Slack accepts it (JSON, form or query), auth, faults,
//! rate limits, then the method itself; every call is recorded.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::{json, Map, Value};
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use super::methods::{self, ApiError};
use super::{FaultKind, RecordedCall, World};

type Shared = Arc<Mutex<World>>;

/// Closing this notifies the connection's task to drop the socket.
#[derive(Clone)]
struct Kill(Arc<Notify>);

pub(crate) async fn serve(listener: TcpListener, world: Shared, mut stop: watch::Receiver<bool>) {
    let app = Router::new()
        .route("/api/{method}", post(api).get(api))
        .route("/upload/{file_id}", post(upload))
        .with_state(world);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
            _ = stop.changed() => return,
        };
        let kill = Arc::new(Notify::new());
        let service = TowerToHyperService::new(app.clone().layer(Extension(Kill(kill.clone()))));
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = kill.notified() => {}
                _ = stop.changed() => {}
            }
        });
    }
}

fn lock(world: &Shared) -> std::sync::MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keys whose form value is JSON text (Slack accepts `blocks=[…]` in forms).
const JSON_KEYS: &[&str] = &["blocks", "view", "files", "attachments", "metadata"];

fn decode_params(
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<Map<String, Value>, &'static str> {
    let mut params = Map::new();
    let mut add_pairs = |text: &str| -> Result<(), &'static str> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(text).map_err(|_| "invalid_form_data")?;
        for (k, v) in pairs {
            let value = if JSON_KEYS.contains(&k.as_str()) {
                serde_json::from_str(&v).unwrap_or(Value::String(v))
            } else {
                Value::String(v)
            };
            params.insert(k, value);
        }
        Ok(())
    };
    if let Some(q) = query {
        add_pairs(q)?;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if body.is_empty() {
        return Ok(params);
    }
    if content_type.starts_with("application/json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(obj)) => params.extend(obj),
            _ => return Err("invalid_json"),
        }
    } else {
        let text = std::str::from_utf8(body).map_err(|_| "invalid_form_data")?;
        add_pairs(text)?;
    }
    Ok(params)
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

/// The user or channel a call is about, for faults and per-channel limits.
fn target_of(params: &Map<String, Value>) -> Option<String> {
    ["channel", "user", "users", "user_id"]
        .iter()
        .find_map(|k| params.get(*k).and_then(Value::as_str).map(str::to_string))
}

fn slack_json(
    status: StatusCode,
    body: &Value,
    extra: Option<(header::HeaderName, String)>,
) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response();
    if let Some((name, value)) = extra {
        if let Ok(v) = value.parse() {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

async fn api(
    State(world): State<Shared>,
    Extension(kill): Extension<Kill>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let decoded = decode_params(&headers, query.as_deref(), &body);
    let params = decoded.clone().unwrap_or_default();
    let token = bearer(&headers).or_else(|| {
        params
            .get("token")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let record = |world: &Shared, status: u16, response: &Value| {
        lock(world).calls.push(RecordedCall {
            method: method.clone(),
            params: Value::Object(params.clone()),
            token: token.clone(),
            http_status: status,
            response: response.clone(),
            at: chrono::Utc::now(),
        });
    };
    let fail = |world: &Shared, code: &str| {
        let body = json!({ "ok": false, "error": code });
        record(world, 200, &body);
        slack_json(StatusCode::OK, &body, None)
    };

    if !methods::is_known(&method) {
        let body = json!({ "ok": false, "error": "unknown_method", "req_method": method });
        record(&world, 404, &body);
        return slack_json(StatusCode::NOT_FOUND, &body, None);
    }
    if let Err(code) = decoded {
        return fail(&world, code);
    }
    // Auth: oauth.v2.access is authenticated by client credentials instead.
    if method != "oauth.v2.access" {
        match &token {
            None => return fail(&world, "not_authed"),
            Some(t) if !lock(&world).tokens.contains_key(t) => return fail(&world, "invalid_auth"),
            Some(_) => {}
        }
    }

    // Faults, matched after auth like Slack's own failures would be.
    let target = target_of(&params);
    let fault = {
        let mut w = lock(&world);
        let found = w.faults.iter().position(|f| {
            f.method.as_deref().is_none_or(|m| m == method)
                && f.target
                    .as_deref()
                    .is_none_or(|t| target.as_deref() == Some(t))
                && f.times != Some(0)
        });
        found.map(|i| {
            if let Some(n) = w.faults[i].times.as_mut() {
                *n -= 1;
            }
            w.faults[i].kind.clone()
        })
    };
    match fault {
        Some(FaultKind::Http(status)) => {
            let body = json!({ "ok": false, "error": "fatal_error", "emulated_status": status });
            record(&world, status, &body);
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return slack_json(status, &body, None);
        }
        Some(FaultKind::Error(code)) => return fail(&world, &code),
        Some(FaultKind::RateLimited { retry_after_secs }) => {
            let body = json!({ "ok": false, "error": "ratelimited" });
            record(&world, 429, &body);
            return slack_json(
                StatusCode::TOO_MANY_REQUESTS,
                &body,
                Some((header::RETRY_AFTER, retry_after_secs.max(1).to_string())),
            );
        }
        Some(FaultKind::Delay(d)) => tokio::time::sleep(d).await,
        Some(FaultKind::DropConnection) => {
            record(&world, 0, &json!({ "dropped": true }));
            kill.0.notify_one();
            // Never answer: the connection task drops the socket.
            std::future::pending::<()>().await;
        }
        None => {}
    }

    // Rate limits.
    let channel = if method == "chat.postMessage" {
        target.clone()
    } else {
        None
    };
    let limited = {
        let mut w = lock(&world);
        let t = token.clone().unwrap_or_default();
        w.limiter.check(&t, &method, channel.as_deref())
    };
    if let Err(wait) = limited {
        let body = json!({ "ok": false, "error": "ratelimited" });
        record(&world, 429, &body);
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        return slack_json(
            StatusCode::TOO_MANY_REQUESTS,
            &body,
            Some((header::RETRY_AFTER, secs.to_string())),
        );
    }

    let result = {
        let mut w = lock(&world);
        methods::call(&mut w, &method, &params, token.as_deref())
    };
    let body = match result {
        Ok(Value::Object(mut obj)) => {
            obj.insert("ok".into(), Value::Bool(true));
            Value::Object(obj)
        }
        Ok(other) => json!({ "ok": true, "result": other }),
        Err(ApiError { code, messages }) => {
            let mut body = json!({ "ok": false, "error": code });
            if !messages.is_empty() {
                body["response_metadata"] = json!({ "messages": messages });
            }
            body
        }
    };
    record(&world, 200, &body);
    slack_json(StatusCode::OK, &body, None)
}

/// The upload URL of files.getUploadURLExternal: takes the bytes, answers `OK - <n>`.
async fn upload(State(world): State<Shared>, Path(file_id): Path<String>, body: Bytes) -> Response {
    let mut w = lock(&world);
    match w.files.iter_mut().find(|f| f.id == file_id) {
        Some(file) => {
            file.bytes = body.to_vec();
            (StatusCode::OK, format!("OK - {}", body.len())).into_response()
        }
        None => (StatusCode::NOT_FOUND, "file_not_found").into_response(),
    }
}
