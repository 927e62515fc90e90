//! Socket Mode: `apps.connections.open` hands an app-level token (`xapp-…`) a single-use
//! WebSocket URL; on that socket the emulator says `hello`, pushes envelopes
//! (`events_api`, `interactive`, `slash_commands`) and expects each to be acknowledged with
//! `{"envelope_id": …}` (plus an optional `payload`) within 3 seconds.
//!
//! As at Slack:
//! - an envelope that was delivered on a connection that closed before its ack is delivered
//!   again on the next connection, with `retry_attempt` one higher and `retry_reason`
//!   `timeout`; an envelope injected while no connection is open waits for one;
//! - new envelopes go to the newest connection that was not told to `disconnect`;
//! - a `disconnect` (`refresh_requested`, `warning`, `link_disabled`) leaves the connection
//!   open for a grace period, so the app can connect again and finish what is in flight; then
//!   the emulator closes it.
//!
//! Tests drive it with [`crate::Emulator`]'s `socket_*` methods or over `/_control/socket/*`.
//! Acks record how long after their delivery they came and whether that was within 3 s.

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

use super::control::{Click, Submission};
use super::directory::dm_channel_id;
use super::model::RecordedCall;
use super::peer::SlackPeer;
use super::state::Shared;
use super::Emulator;

/// Slack wants an envelope acknowledged within this time.
pub const ACK_DEADLINE: Duration = Duration::from_secs(3);
/// A URL from apps.connections.open must be used within this time (and only once).
const TICKET_TTL: Duration = Duration::from_secs(30);
/// After a `disconnect` message the connection stays open this long, then Slack closes it.
const DISCONNECT_GRACE: Duration = Duration::from_secs(10);

/// What one connection's task is told to do.
enum Out {
    Frame(String),
    /// A `disconnect` message: sent, then the connection closes after the grace period.
    Disconnect(String),
    /// Close the TCP connection without a close frame (a network failure).
    Drop,
    /// Send a close frame and end.
    Close,
}

struct Conn {
    tx: mpsc::UnboundedSender<Out>,
    /// Told to disconnect: it gets no new envelopes.
    draining: bool,
}

/// One delivery of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SocketDelivery {
    pub connection: u64,
    pub retry_attempt: u32,
}

/// One acknowledgement of an envelope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SocketAck {
    pub connection: u64,
    /// The ack's `payload` (a slash command's reply, a modal's `response_action`), if any.
    pub payload: Option<Value>,
    /// Time from the delivery it answers to the ack.
    pub millis: u64,
    /// Within Slack's 3 seconds.
    pub in_time: bool,
}

/// An envelope as the emulator tracks it.
#[derive(Debug, Clone, Serialize)]
pub struct SocketEnvelope {
    pub envelope_id: String,
    /// `events_api`, `interactive` or `slash_commands`.
    #[serde(rename = "type")]
    pub kind: String,
    pub payload: Value,
    pub deliveries: Vec<SocketDelivery>,
    pub acks: Vec<SocketAck>,
    /// Waiting to be delivered or acknowledged.
    pub pending: bool,
    #[serde(skip)]
    in_flight: Option<(u64, Instant)>,
}

#[derive(Default)]
struct Inner {
    app_tokens: HashSet<String>,
    tickets: HashMap<String, Instant>,
    next_conn: u64,
    conns: BTreeMap<u64, Conn>,
    envelopes: Vec<SocketEnvelope>,
    /// Drop the connection right after the next delivery, before its ack can arrive.
    drop_after_next_delivery: bool,
    /// Acks for envelopes that were not waiting for one.
    stray_acks: u64,
    next_envelope: u64,
}

/// Socket Mode's state, beside the world (its own lock; never held across an `.await`).
pub(crate) struct SocketMode {
    inner: Mutex<Inner>,
    /// Bumped on every change, so waiters wake up instead of polling.
    changed: watch::Sender<u64>,
}

impl Default for SocketMode {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            changed: watch::channel(0).0,
        }
    }
}

impl SocketMode {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Waits until `done` holds for the state, or `timeout` passes; the last check's result.
    async fn wait_until<T>(
        &self,
        timeout: Duration,
        done: impl Fn(&Inner) -> Option<T>,
    ) -> Option<T> {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(found) = done(&self.lock()) {
                return Some(found);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => return done(&self.lock()),
            }
        }
    }

    fn open_connection(&self, tx: mpsc::UnboundedSender<Out>, app_id: &str) -> u64 {
        let id = {
            let mut s = self.lock();
            s.next_conn += 1;
            let id = s.next_conn;
            let hello = json!({
                "type": "hello",
                "num_connections": s.conns.len() + 1,
                "debug_info": { "host": "emulator", "approximate_connection_time": 18060 },
                "connection_info": { "app_id": app_id },
            });
            let _ = tx.send(Out::Frame(hello.to_string()));
            s.conns.insert(
                id,
                Conn {
                    tx,
                    draining: false,
                },
            );
            pump(&mut s);
            id
        };
        self.bump();
        id
    }

    fn close_connection(&self, id: u64) {
        {
            let mut s = self.lock();
            s.conns.remove(&id);
            for e in s.envelopes.iter_mut() {
                if e.in_flight.is_some_and(|(c, _)| c == id) {
                    e.in_flight = None;
                }
            }
            pump(&mut s);
        }
        self.bump();
    }

    /// A text frame from the app: an ack (anything else is ignored, as Slack does).
    fn on_text(&self, conn: u64, text: &str) {
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            tracing::debug!("emulator: a socket frame that is not JSON");
            return;
        };
        let Some(id) = frame.get("envelope_id").and_then(Value::as_str) else {
            return;
        };
        {
            let mut s = self.lock();
            let found = s
                .envelopes
                .iter_mut()
                .find(|e| e.envelope_id == id && e.pending);
            match found {
                Some(e) => {
                    let since = e.in_flight.map(|(_, at)| at.elapsed()).unwrap_or_default();
                    e.acks.push(SocketAck {
                        connection: conn,
                        payload: frame.get("payload").cloned(),
                        millis: since.as_millis() as u64,
                        in_time: since <= ACK_DEADLINE,
                    });
                    e.pending = false;
                    e.in_flight = None;
                }
                None => s.stray_acks += 1,
            }
        }
        self.bump();
    }

    fn inject(&self, kind: &str, payload: Value) -> String {
        let id = {
            let mut s = self.lock();
            s.next_envelope += 1;
            let id = format!(
                "{:08x}-{:04x}-4{:03x}-emul-{:012x}",
                fastrand::u32(..),
                fastrand::u16(..),
                s.next_envelope & 0xfff,
                s.next_envelope
            );
            s.envelopes.push(SocketEnvelope {
                envelope_id: id.clone(),
                kind: kind.to_string(),
                payload,
                deliveries: Vec::new(),
                acks: Vec::new(),
                pending: true,
                in_flight: None,
            });
            pump(&mut s);
            id
        };
        self.bump();
        id
    }

    fn redeliver(&self, envelope_id: &str) -> bool {
        let found = {
            let mut s = self.lock();
            let found = match s
                .envelopes
                .iter_mut()
                .find(|e| e.envelope_id == envelope_id)
            {
                Some(e) => {
                    e.pending = true;
                    e.in_flight = None;
                    true
                }
                None => false,
            };
            pump(&mut s);
            found
        };
        self.bump();
        found
    }

    /// Sends `disconnect` with `reason` on every open connection; returns how many.
    fn disconnect(&self, reason: &str) -> usize {
        let n = {
            let mut s = self.lock();
            let frame = json!({
                "type": "disconnect",
                "reason": reason,
                "debug_info": { "host": "emulator" },
            })
            .to_string();
            let mut n = 0;
            for conn in s.conns.values_mut().filter(|c| !c.draining) {
                conn.draining = true;
                let _ = conn.tx.send(Out::Disconnect(frame.clone()));
                n += 1;
            }
            n
        };
        self.bump();
        n
    }

    /// Drops every open connection without a close frame; returns how many.
    fn drop_all(&self) -> usize {
        let s = self.lock();
        for conn in s.conns.values() {
            let _ = conn.tx.send(Out::Drop);
        }
        s.conns.len()
    }

    pub(crate) fn close_all(&self) {
        let s = self.lock();
        for conn in s.conns.values() {
            let _ = conn.tx.send(Out::Close);
        }
    }

    fn ticket_for(&self, token: &str) -> Result<String, &'static str> {
        let mut s = self.lock();
        if !token.starts_with("xapp-") {
            return Err("not_allowed_token_type");
        }
        if !s.app_tokens.contains(token) {
            return Err("invalid_auth");
        }
        s.tickets.retain(|_, at| at.elapsed() < TICKET_TTL);
        let ticket = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        s.tickets.insert(ticket.clone(), Instant::now());
        Ok(ticket)
    }

    fn take_ticket(&self, ticket: &str) -> bool {
        self.lock()
            .tickets
            .remove(ticket)
            .is_some_and(|at| at.elapsed() < TICKET_TTL)
    }

    fn status(&self) -> Value {
        let s = self.lock();
        json!({
            "connections_open": s.conns.len(),
            "connections_opened": s.next_conn,
            "stray_acks": s.stray_acks,
            "envelopes": s.envelopes,
        })
    }
}

/// Delivers every pending envelope that is not on a connection to the newest connection
/// that was not told to disconnect.
fn pump(s: &mut Inner) {
    let Some((&conn_id, _)) = s.conns.iter().rev().find(|(_, c)| !c.draining) else {
        return;
    };
    let mut drop_after = false;
    let tx = s.conns[&conn_id].tx.clone();
    for e in s.envelopes.iter_mut() {
        if !e.pending || e.in_flight.is_some() {
            continue;
        }
        let retry_attempt = e.deliveries.len() as u32;
        let frame = json!({
            "envelope_id": e.envelope_id,
            "payload": e.payload,
            "type": e.kind,
            "accepts_response_payload": e.kind != "events_api",
            "retry_attempt": retry_attempt,
            "retry_reason": if retry_attempt == 0 { "" } else { "timeout" },
        });
        if tx.send(Out::Frame(frame.to_string())).is_err() {
            return;
        }
        e.deliveries.push(SocketDelivery {
            connection: conn_id,
            retry_attempt,
        });
        e.in_flight = Some((conn_id, Instant::now()));
        if s.drop_after_next_delivery {
            s.drop_after_next_delivery = false;
            drop_after = true;
            break;
        }
    }
    if drop_after {
        let _ = tx.send(Out::Drop);
        // No more deliveries on a connection about to drop.
        if let Some(c) = s.conns.get_mut(&conn_id) {
            c.draining = true;
        }
    }
}

/// `POST /api/apps.connections.open`: an app-level token gets a WebSocket URL.
pub(crate) async fn connections_open(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (arrived, seq, app_id) = {
        let mut w = shared.world();
        (w.now(), w.arrive(), w.config.app_id.clone())
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .or_else(|| {
            serde_urlencoded::from_bytes::<HashMap<String, String>>(&body)
                .ok()
                .and_then(|f| f.get("token").cloned())
        });
    let response = match token.as_deref() {
        None => json!({ "ok": false, "error": "not_authed" }),
        Some(t) => match shared.socket.ticket_for(t) {
            Ok(ticket) => json!({
                "ok": true,
                "url": format!("ws://{}/link/?ticket={ticket}&app_id={app_id}", shared.addr),
            }),
            Err(code) => json!({ "ok": false, "error": code }),
        },
    };
    shared.world().record(
        seq,
        RecordedCall {
            method: "apps.connections.open".into(),
            params: json!({}),
            token,
            http_status: 200,
            response: response.clone(),
            at: arrived,
        },
    );
    Json(response).into_response()
}

#[derive(Deserialize)]
pub(crate) struct LinkQuery {
    ticket: Option<String>,
}

/// `GET /link/?ticket=…`: the WebSocket itself.
pub(crate) async fn link(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<LinkQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let valid = query
        .ticket
        .as_deref()
        .is_some_and(|t| shared.socket.take_ticket(t));
    if !valid {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_ticket",
            "the ticket is unknown, used or expired; call apps.connections.open again",
        );
    }
    let app_id = shared.config().app_id;
    ws.on_upgrade(move |socket| connection(shared, socket, app_id))
}

async fn connection(shared: Arc<Shared>, mut socket: WebSocket, app_id: String) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = shared.socket.open_connection(tx, &app_id);
    tracing::debug!(connection = id, "emulator: socket mode connection opened");
    let mut closing_at: Option<tokio::time::Instant> = None;
    loop {
        let grace = async {
            match closing_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            out = rx.recv() => match out {
                Some(Out::Frame(text)) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Out::Disconnect(text)) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                    closing_at.get_or_insert(tokio::time::Instant::now() + DISCONNECT_GRACE);
                }
                Some(Out::Drop) | None => break,
                Some(Out::Close) => {
                    let _ = socket.send(Message::Close(None)).await;
                    break;
                }
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => shared.socket.on_text(id, text.as_str()),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                // Pings are answered by the WebSocket layer itself.
                Some(Ok(_)) => {}
            },
            _ = grace => {
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
        }
    }
    shared.socket.close_connection(id);
    tracing::debug!(connection = id, "emulator: socket mode connection closed");
}

// --- the control API ---

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/apps.connections.open", post(connections_open))
        .route("/link/", get(link))
        .route("/link", get(link))
        .route("/_control/socket", get(status))
        .route(
            "/_control/socket/app_tokens",
            post(add_app_token).delete(remove_app_token),
        )
        .route("/_control/socket/envelopes", post(inject))
        .route("/_control/socket/envelopes/{id}/redeliver", post(redeliver))
        .route("/_control/socket/disconnect", post(disconnect))
        .route("/_control/socket/drop", post(drop_connections))
}

fn refuse(status: StatusCode, error: &str, detail: &str) -> Response {
    (status, Json(json!({ "error": error, "detail": detail }))).into_response()
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, Box<Response>> {
    let bytes: &[u8] = if bytes.is_empty() { b"{}" } else { bytes };
    serde_json::from_slice(bytes).map_err(|e| {
        Box::new(refuse(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &format!("the JSON body: {e}"),
        ))
    })
}

async fn status(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(shared.socket.status())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppToken {
    token: String,
}

async fn add_app_token(State(shared): State<Arc<Shared>>, bytes: Bytes) -> Response {
    let request: AppToken = match parse(&bytes) {
        Ok(r) => r,
        Err(refused) => return *refused,
    };
    if !request.token.starts_with("xapp-") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "an app-level token starts with xapp-",
        );
    }
    shared.socket.lock().app_tokens.insert(request.token);
    Json(json!({ "ok": true })).into_response()
}

/// `DELETE /_control/socket/app_tokens {"token"}`: the token is revoked; apps.connections.open
/// answers `invalid_auth` for it (open connections stay open: drop them to see a reconnect
/// fail).
async fn remove_app_token(State(shared): State<Arc<Shared>>, bytes: Bytes) -> Response {
    let request: AppToken = match parse(&bytes) {
        Ok(r) => r,
        Err(refused) => return *refused,
    };
    let removed = shared.socket.lock().app_tokens.remove(&request.token);
    Json(json!({ "ok": true, "removed": removed })).into_response()
}

/// An envelope to push: exactly one of `event` (an inner event, wrapped in an
/// `event_callback`), `payload` (with `type` naming the envelope type), `block_actions`,
/// `view_submission` or `command`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InjectRequest {
    #[serde(rename = "type")]
    kind: Option<String>,
    payload: Option<Value>,
    event: Option<Value>,
    event_id: Option<String>,
    block_actions: Option<Click>,
    view_submission: Option<Submission>,
    command: Option<Command>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Command {
    user: String,
    channel: Option<String>,
    #[serde(default)]
    text: String,
}

async fn inject(State(shared): State<Arc<Shared>>, bytes: Bytes) -> Response {
    let request: InjectRequest = match parse(&bytes) {
        Ok(r) => r,
        Err(refused) => return *refused,
    };
    let emulator = Envelopes(SlackPeer::new(shared.clone(), "", ""));
    let given = [
        request.payload.is_some(),
        request.event.is_some(),
        request.block_actions.is_some(),
        request.view_submission.is_some(),
        request.command.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "give exactly one of \"payload\", \"event\", \"block_actions\", \"view_submission\" or \"command\"",
        );
    }
    let (kind, payload) = if let Some(payload) = request.payload {
        match request.kind.as_deref() {
            Some(k @ ("events_api" | "interactive" | "slash_commands")) => (k.to_string(), payload),
            _ => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "\"type\" must be events_api, interactive or slash_commands with \"payload\"",
                )
            }
        }
    } else if let Some(event) = request.event {
        if !event.is_object() || event.get("type").is_none() {
            return refuse(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "\"event\" must be an object with a \"type\"",
            );
        }
        let id = request
            .event_id
            .unwrap_or_else(|| format!("Ev{:010X}", fastrand::u64(..1 << 40)));
        ("events_api".into(), emulator.0.event_callback(&id, event))
    } else if let Some(c) = request.block_actions {
        ("interactive".into(), c.payload(&emulator.0))
    } else if let Some(s) = request.view_submission {
        ("interactive".into(), s.payload(&emulator.0))
    } else if let Some(c) = request.command {
        let channel = c.channel.unwrap_or_else(|| dm_channel_id(&c.user));
        (
            "slash_commands".into(),
            emulator.command(&c.user, &channel, &c.text),
        )
    } else {
        unreachable!("exactly one was given")
    };
    let envelope_id = shared.socket.inject(&kind, payload);
    Json(json!({ "envelope_id": envelope_id, "type": kind })).into_response()
}

/// Payload builders for envelopes (the same payloads as over HTTP, as Slack sends them).
struct Envelopes(SlackPeer);

impl Envelopes {
    /// A slash command's payload: over Socket Mode the form's fields come as a JSON object.
    fn command(&self, user: &str, channel: &str, text: &str) -> Value {
        let fields = self.0.slash_command(user, channel, text);
        Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        )
    }
}

async fn redeliver(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    if shared.socket.redeliver(&id) {
        Json(json!({ "ok": true })).into_response()
    } else {
        refuse(
            StatusCode::NOT_FOUND,
            "not_found",
            "no envelope with that id",
        )
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisconnectRequest {
    reason: Option<String>,
}

async fn disconnect(State(shared): State<Arc<Shared>>, bytes: Bytes) -> Response {
    let request: DisconnectRequest = match parse(&bytes) {
        Ok(r) => r,
        Err(refused) => return *refused,
    };
    let reason = request.reason.unwrap_or_else(|| "refresh_requested".into());
    if !matches!(
        reason.as_str(),
        "refresh_requested" | "warning" | "link_disabled"
    ) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "\"reason\" must be refresh_requested, warning or link_disabled",
        );
    }
    let n = shared.socket.disconnect(&reason);
    Json(json!({ "ok": true, "connections": n })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DropRequest {
    /// Drop only after the next envelope is delivered (before its ack can arrive).
    #[serde(default)]
    after_next_delivery: bool,
}

async fn drop_connections(State(shared): State<Arc<Shared>>, bytes: Bytes) -> Response {
    let request: DropRequest = match parse(&bytes) {
        Ok(r) => r,
        Err(refused) => return *refused,
    };
    if request.after_next_delivery {
        shared.socket.lock().drop_after_next_delivery = true;
        return Json(json!({ "ok": true, "connections": 0 })).into_response();
    }
    let n = shared.socket.drop_all();
    Json(json!({ "ok": true, "connections": n })).into_response()
}

// --- the same, for tests in Rust ---

impl Emulator {
    /// Lets `token` (an app-level token, `xapp-…`) open Socket Mode connections.
    pub fn add_app_token(&self, token: &str) {
        self.shared
            .socket
            .lock()
            .app_tokens
            .insert(token.to_string());
    }

    /// Revokes an app-level token: apps.connections.open refuses it from now on
    /// (`invalid_auth`); open connections stay open. True when it was registered.
    pub fn remove_app_token(&self, token: &str) -> bool {
        self.shared.socket.lock().app_tokens.remove(token)
    }

    /// Pushes an `events_api` envelope carrying `event` (an inner event) in an
    /// `event_callback` with `event_id`; returns the envelope id.
    pub fn socket_send_event(&self, event_id: &str, event: Value) -> String {
        let peer = SlackPeer::new(self.shared.clone(), "", "");
        let payload = peer.event_callback(event_id, event);
        self.shared.socket.inject("events_api", payload)
    }

    /// Pushes an `interactive` envelope carrying `payload` (e.g. from
    /// [`SlackPeer::block_actions`]); returns the envelope id.
    pub fn socket_send_interaction(&self, payload: Value) -> String {
        self.shared.socket.inject("interactive", payload)
    }

    /// Pushes a `slash_commands` envelope: `/pulse <text>` typed by `user` in their DM with
    /// the bot; returns the envelope id.
    pub fn socket_send_command(&self, user: &str, text: &str) -> String {
        let envelopes = Envelopes(SlackPeer::new(self.shared.clone(), "", ""));
        let payload = envelopes.command(user, &dm_channel_id(user), text);
        self.shared.socket.inject("slash_commands", payload)
    }

    /// Delivers an envelope again (as Slack does when an ack was lost), acked or not.
    pub fn socket_redeliver(&self, envelope_id: &str) -> bool {
        self.shared.socket.redeliver(envelope_id)
    }

    /// Sends `{"type": "disconnect", "reason": …}` on every open connection.
    pub fn socket_disconnect(&self, reason: &str) -> usize {
        self.shared.socket.disconnect(reason)
    }

    /// Drops every open connection without a close frame (a network failure).
    pub fn socket_drop(&self) -> usize {
        self.shared.socket.drop_all()
    }

    /// Drops the connection right after the next envelope is delivered, before its ack.
    pub fn socket_drop_after_next_delivery(&self) {
        self.shared.socket.lock().drop_after_next_delivery = true;
    }

    /// Connections open now.
    pub fn socket_connections_open(&self) -> usize {
        self.shared.socket.lock().conns.len()
    }

    /// Connections opened so far (reconnections included).
    pub fn socket_connections_opened(&self) -> u64 {
        self.shared.socket.lock().next_conn
    }

    /// Every envelope pushed so far, with its deliveries and acks.
    pub fn socket_envelopes(&self) -> Vec<SocketEnvelope> {
        self.shared.socket.lock().envelopes.clone()
    }

    /// Acks for envelopes that were not waiting for one.
    pub fn socket_stray_acks(&self) -> u64 {
        self.shared.socket.lock().stray_acks
    }

    /// Waits up to `timeout` until at least `n` connections were opened and one is open.
    pub async fn socket_wait_connected(&self, n: u64, timeout: Duration) -> bool {
        self.shared
            .socket
            .wait_until(timeout, |s| {
                (s.next_conn >= n && s.conns.values().any(|c| !c.draining)).then_some(())
            })
            .await
            .is_some()
    }

    /// Waits up to `timeout` for the envelope's `n`-th ack (1 = the first).
    pub async fn socket_wait_ack(
        &self,
        envelope_id: &str,
        n: usize,
        timeout: Duration,
    ) -> Option<SocketAck> {
        self.shared
            .socket
            .wait_until(timeout, |s| {
                s.envelopes
                    .iter()
                    .find(|e| e.envelope_id == envelope_id)
                    .and_then(|e| e.acks.get(n.saturating_sub(1)).cloned())
            })
            .await
    }
}
