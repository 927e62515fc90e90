//! The `/_control` HTTP API: everything a test in any language needs besides the Web API.
//! The workspace (members, channels, user groups, apps), trigger ids and OAuth codes, faults,
//! rate limits, the recorded calls, what was posted, signed requests to the bot (events,
//! interactions, slash commands) and a reset. JSON in, JSON out; errors are
//! `{"error": "...", "detail": "..."}` with a 4xx status. Documented with curl examples in the
//! crate's README. Like the sandbox page, it has no login: the emulator listens on loopback,
//! and requests from another site (a browser's `Origin`/`Sec-Fetch-Site`) are refused.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::directory::{dm_channel_id, Channel};
use super::faults::{Fault, FaultKind};
use super::peer::SlackPeer;
use super::rate_limit::{Limiter, RateLimits};
use super::state::{Install, OAuthCode, Shared, World, TRIGGER_TTL};
use super::workspace::{App, Target, Workspace, WorkspaceGroup, WorkspaceUser};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_control", get(index))
        .route("/_control/workspace", get(workspace).post(add_workspace))
        .route("/_control/users", post(add_user))
        .route("/_control/users/{id}", post(edit_user))
        .route("/_control/usergroups", post(add_usergroup))
        .route("/_control/trigger_ids", post(trigger_id))
        .route("/_control/trigger_ids/{id}/expire", post(expire_trigger))
        .route("/_control/oauth_codes", post(oauth_code))
        .route("/_control/teams", post(crate::oauth::add_team))
        .route(
            "/_control/teams/{id}/revoke",
            post(crate::oauth::revoke_team),
        )
        .route("/_control/faults", post(add_fault).delete(clear_faults))
        .route("/_control/limits", get(limits).put(set_limits))
        .route("/_control/calls", get(calls).delete(clear_calls))
        .route("/_control/messages", get(messages))
        .route("/_control/views", get(views))
        .route("/_control/send/event", post(send_event))
        .route("/_control/send/interaction", post(send_interaction))
        .route("/_control/send/command", post(send_command))
        .route("/_control/reset", post(reset_route))
}

/// A refusal: `{"error", "detail"}` with its status.
pub(crate) fn refuse(status: StatusCode, error: &str, detail: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": error, "detail": detail.into() })),
    )
        .into_response()
}

fn bad_request(detail: impl Into<String>) -> Response {
    refuse(StatusCode::BAD_REQUEST, "bad_request", detail)
}

/// The body as `T`, or a 400 naming what is wrong. An empty body reads as `{}`.
pub(crate) fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, Box<Response>> {
    let bytes: &[u8] = if bytes.is_empty() { b"{}" } else { bytes };
    serde_json::from_slice(bytes).map_err(|e| Box::new(bad_request(format!("the JSON body: {e}"))))
}

/// Browsers on another site must not drive the control API (no login, like the sandbox): a
/// browser's `Sec-Fetch-Site` must say same-origin, and its `Origin` must be the host it
/// asked, which must be this emulator's address or a loopback name (so a DNS-rebound name
/// is refused too). Clients that send neither header (curl, tests) are not browsers.
pub(crate) fn cross_site(headers: &HeaderMap, shared: &Shared) -> Option<Response> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let site_ok = header("sec-fetch-site").is_none_or(|s| matches!(s, "same-origin" | "none"));
    let origin_ok = header("origin").is_none_or(|origin| {
        let Some(host) = header("host") else {
            return false;
        };
        let asked = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let loopback = host.eq_ignore_ascii_case(&shared.addr.to_string())
            || ["localhost:", "127.0.0.1:", "[::1]:"]
                .iter()
                .any(|p| host.to_ascii_lowercase().starts_with(p));
        loopback && asked.is_some_and(|a| a.eq_ignore_ascii_case(host))
    });
    (!(site_ok && origin_ok)).then(|| {
        refuse(
            StatusCode::FORBIDDEN,
            "cross_site",
            "the control API only answers its own origin",
        )
    })
}

macro_rules! guard {
    ($headers:expr, $shared:expr) => {
        if let Some(refused) = cross_site(&$headers, &$shared) {
            return refused;
        }
    };
}

macro_rules! parse {
    ($bytes:expr) => {
        match body(&$bytes) {
            Ok(v) => v,
            Err(refused) => return *refused,
        }
    };
}

async fn index() -> Json<Value> {
    Json(json!({
        "endpoints": [
            "GET /_control/workspace", "POST /_control/workspace", "POST /_control/users",
            "POST /_control/users/{id}", "POST /_control/usergroups",
            "POST /_control/trigger_ids", "POST /_control/trigger_ids/{id}/expire",
            "POST /_control/oauth_codes", "POST /_control/teams", "POST /_control/teams/{id}/revoke", "POST /_control/faults", "DELETE /_control/faults",
            "GET /_control/limits", "PUT /_control/limits", "GET /_control/calls",
            "DELETE /_control/calls", "GET /_control/messages", "GET /_control/views",
            "POST /_control/send/event", "POST /_control/send/interaction",
            "POST /_control/send/command", "POST /_control/reset",
        ],
        "docs": "crates/slack-emulator/README.md",
    }))
}

/// Adds a workspace (file or control call) to the world.
pub(crate) fn load_workspace(w: &mut World, ws: &Workspace) {
    for u in &ws.users {
        w.add_user(u.to_user());
    }
    for c in &ws.channels {
        let channel = w.directory.channels.entry(c.id.clone()).or_default();
        *channel = Channel {
            name: c.name.clone(),
            bot_is_member: c.bot_is_member,
            members: c.members.iter().cloned().collect(),
            is_private: c.is_private,
        };
    }
    for g in &ws.usergroups {
        w.directory
            .usergroups
            .insert(g.id.clone(), g.members.clone());
    }
    for app in &ws.apps {
        add_app(w, app);
    }
}

fn add_app(w: &mut World, app: &App) {
    w.tokens.insert(
        app.token.clone(),
        Install {
            team_id: w.config.team_id.clone(),
            team_name: w.config.team_name.clone(),
            bot_user_id: app.bot_user_id.clone(),
            bot_id: app.bot_id.clone(),
        },
    );
    match &app.scopes {
        Some(scopes) => {
            w.token_scopes
                .insert(app.token.clone(), scopes.iter().cloned().collect());
        }
        None => {
            w.token_scopes.remove(&app.token);
        }
    }
    if !w.directory.users.contains_key(&app.bot_user_id) {
        let name = app
            .name
            .clone()
            .unwrap_or_else(|| app.app_id.to_lowercase());
        let bot = super::model::EmulatedUser::new(&app.bot_user_id, "UTC")
            .handle(&name)
            .named(&name)
            .bot();
        w.add_user(bot);
    }
    if let (Some(id), Some(secret)) = (&app.client_id, &app.client_secret) {
        w.oauth_client = Some((id.clone(), secret.clone()));
    }
    w.apps.retain(|a| a.app_id != app.app_id);
    w.apps.push(app.clone());
}

async fn workspace(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let w = shared.world();
    let now = w.now();
    let users: Vec<Value> = w
        .directory
        .users
        .values()
        .map(|u| w.directory.user_json(u, &w.config.team_id, now))
        .collect();
    let mut channels: Vec<Value> = w
        .directory
        .channels
        .iter()
        .map(|(id, c)| {
            json!({ "id": id, "name": c.name, "members": c.members, "bot_is_member": c.bot_is_member,
                    "is_private": c.is_private })
        })
        .collect();
    channels.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let mut groups: Vec<Value> = w
        .directory
        .usergroups
        .iter()
        .map(|(id, m)| json!({ "id": id, "members": m }))
        .collect();
    groups.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    // Secrets are not echoed; tokens are what the caller gave.
    let apps: Vec<Value> = w
        .apps
        .iter()
        .map(|a| {
            json!({ "app_id": a.app_id, "name": a.name, "bot_user_id": a.bot_user_id,
                    "bot_id": a.bot_id, "token": a.token, "scopes": a.scopes,
                    "events_url": a.url_for(Target::Events),
                    "interactivity_url": a.url_for(Target::Interactions),
                    "commands_url": a.url_for(Target::Commands) })
        })
        .collect();
    Json(json!({
        "team_id": w.config.team_id, "team_name": w.config.team_name,
        "users": users, "channels": channels, "usergroups": groups, "apps": apps,
    }))
}

async fn add_workspace(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    guard!(headers, shared);
    let ws: Workspace = parse!(bytes);
    if let Err(e) = ws.check() {
        return bad_request(e);
    }
    load_workspace(&mut shared.world(), &ws);
    StatusCode::NO_CONTENT.into_response()
}

async fn add_user(State(shared): State<Arc<Shared>>, headers: HeaderMap, bytes: Bytes) -> Response {
    guard!(headers, shared);
    let user: WorkspaceUser = parse!(bytes);
    let ws = Workspace {
        users: vec![user.clone()],
        ..Workspace::default()
    };
    if let Err(e) = ws.check() {
        return bad_request(e);
    }
    shared.world().add_user(user.to_user());
    StatusCode::NO_CONTENT.into_response()
}

/// A change to a member's state: their status, or deactivation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEdit {
    status_text: Option<String>,
    status_emoji: Option<String>,
    deleted: Option<bool>,
    tz: Option<String>,
}

async fn edit_user(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    guard!(headers, shared);
    let edit: UserEdit = parse!(bytes);
    if let Some(tz) = &edit.tz {
        if tz.parse::<chrono_tz::Tz>().is_err() {
            return bad_request(format!("'{tz}' is not an IANA time zone"));
        }
    }
    let mut w = shared.world();
    let Some(user) = w.directory.users.get_mut(&id) else {
        return refuse(
            StatusCode::NOT_FOUND,
            "user_not_found",
            format!("no member {id}"),
        );
    };
    if let Some(v) = edit.status_text {
        user.status_text = v;
    }
    if let Some(v) = edit.status_emoji {
        user.status_emoji = v;
    }
    if let Some(v) = edit.deleted {
        user.deleted = v;
    }
    if let Some(v) = edit.tz {
        user.tz = v;
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn add_usergroup(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    guard!(headers, shared);
    let group: WorkspaceGroup = parse!(bytes);
    let ws = Workspace {
        usergroups: vec![group],
        ..Workspace::default()
    };
    if let Err(e) = ws.check() {
        return bad_request(e);
    }
    load_workspace(&mut shared.world(), &ws);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TriggerRequest {
    /// The member whose click it stands for; views opened with it belong to them.
    user: Option<String>,
}

async fn trigger_id(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    guard!(headers, shared);
    let request: TriggerRequest = parse!(bytes);
    let id = shared.world().issue_trigger(request.user.as_deref());
    (
        StatusCode::CREATED,
        Json(json!({ "trigger_id": id, "expires_in_seconds": TRIGGER_TTL.as_secs() })),
    )
        .into_response()
}

async fn expire_trigger(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    guard!(headers, shared);
    let mut w = shared.world();
    let Some(t) = w.triggers.get_mut(&id) else {
        return refuse(
            StatusCode::NOT_FOUND,
            "trigger_not_found",
            "no such trigger_id",
        );
    };
    if let Some(past) = Instant::now().checked_sub(TRIGGER_TTL + Duration::from_millis(1)) {
        t.issued = past;
    }
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OAuthRequest {
    team_id: Option<String>,
    team_name: Option<String>,
}

async fn oauth_code(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    guard!(headers, shared);
    let request: OAuthRequest = parse!(bytes);
    let mut w = shared.world();
    if w.oauth_client.is_none() {
        return refuse(
            StatusCode::CONFLICT,
            "no_oauth_client",
            "no app has client_id and client_secret: oauth.v2.access would refuse any code",
        );
    }
    let team_id = request.team_id.unwrap_or_else(|| w.config.team_id.clone());
    let team_name = request
        .team_name
        .unwrap_or_else(|| w.config.team_name.clone());
    let code = format!(
        "{}.{}.{:016x}",
        fastrand::u64(1_000_000_000..10_000_000_000),
        fastrand::u64(1_000_000_000..10_000_000_000),
        fastrand::u64(..)
    );
    w.oauth_codes.insert(
        code.clone(),
        OAuthCode {
            team_id,
            team_name,
            issued: Instant::now(),
            used: false,
            redirect_uri: None,
            scopes: None,
        },
    );
    (StatusCode::CREATED, Json(json!({ "code": code }))).into_response()
}

/// A fault as JSON: `kind` is one of `error` (+`error`), `http` (+`status`), `ratelimited`
/// (+`retry_after`), `delay` (+`delay_ms`), `drop_connection`, `post_then_drop`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultRequest {
    method: Option<String>,
    target: Option<String>,
    times: Option<u32>,
    kind: String,
    error: Option<String>,
    status: Option<u16>,
    retry_after: Option<u64>,
    delay_ms: Option<u64>,
}

impl FaultRequest {
    fn kind(&self) -> Result<FaultKind, String> {
        Ok(match self.kind.as_str() {
            "error" => FaultKind::Error(
                self.error
                    .clone()
                    .filter(|e| !e.is_empty())
                    .ok_or("kind \"error\" needs \"error\": the Slack error code")?,
            ),
            "http" => {
                let status = self.status.ok_or("kind \"http\" needs \"status\"")?;
                if !(400..=599).contains(&status) {
                    return Err(format!("status {status} is not an HTTP error status"));
                }
                FaultKind::Http(status)
            }
            "ratelimited" => FaultKind::RateLimited {
                retry_after_secs: self.retry_after.unwrap_or(1),
            },
            "delay" => FaultKind::Delay(Duration::from_millis(
                self.delay_ms.ok_or("kind \"delay\" needs \"delay_ms\"")?,
            )),
            "drop_connection" => FaultKind::DropConnection,
            "post_then_drop" => FaultKind::PostThenDrop,
            other => {
                return Err(format!(
                    "unknown kind '{other}': error, http, ratelimited, delay, drop_connection or post_then_drop"
                ))
            }
        })
    }
}

async fn add_fault(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    guard!(headers, shared);
    let request: FaultRequest = parse!(bytes);
    let kind = match request.kind() {
        Ok(kind) => kind,
        Err(e) => return bad_request(e),
    };
    shared.world().faults.push(Fault {
        method: request.method,
        target: request.target,
        kind,
        times: request.times,
    });
    StatusCode::CREATED.into_response()
}

async fn clear_faults(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    guard!(headers, shared);
    shared.world().faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn limits(State(shared): State<Arc<Shared>>) -> Json<RateLimits> {
    Json(shared.world().config.limits.clone())
}

/// Replaces the limits (fields left out take Slack's defaults); every bucket starts full.
async fn set_limits(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    guard!(headers, shared);
    let limits: RateLimits = parse!(bytes);
    if limits.per_channel.values().any(|r| r.is_nan() || *r <= 0.0) {
        return bad_request("per_channel rates must be positive posts per second");
    }
    let mut w = shared.world();
    w.config.limits = limits.clone();
    w.limiter = Limiter::new(limits.clone());
    (StatusCode::OK, Json(limits)).into_response()
}

async fn calls(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    let w = shared.world();
    let calls: Vec<Value> = w
        .calls()
        .filter(|c| q.get("method").is_none_or(|m| *m == c.method))
        .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
        .collect();
    Json(json!({ "calls": calls }))
}

async fn clear_calls(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    guard!(headers, shared);
    shared.world().clear_calls();
    StatusCode::NO_CONTENT.into_response()
}

/// Messages as they stand, optionally of one conversation (`channel=D…`, or `user=U…` for
/// their DM with the bot).
async fn messages(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    let w = shared.world();
    let channel = q
        .get("channel")
        .cloned()
        .or_else(|| q.get("user").map(|u| dm_channel_id(u)));
    let messages: Vec<Value> = w
        .messages
        .iter()
        .filter(|m| channel.as_ref().is_none_or(|c| *c == m.channel))
        .map(|m| serde_json::to_value(m).unwrap_or(Value::Null))
        .collect();
    Json(json!({ "messages": messages }))
}

async fn views(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let w = shared.world();
    Json(json!({ "views": w.views }))
}

/// The bot a signed request goes to: the app named by `app_id`, else the first app with a
/// URL for `target`, else the bot the sandbox is connected to.
fn destination(
    shared: &Arc<Shared>,
    app_id: Option<&str>,
    target: Target,
) -> Result<(SlackPeer, String, Option<App>), Box<Response>> {
    let w = shared.world();
    let app = w
        .apps
        .iter()
        .filter(|a| app_id.is_none_or(|id| a.app_id == id))
        .find(|a| a.url_for(target).is_some());
    if let Some(app) = app {
        let url = app.url_for(target).unwrap_or_default();
        let secret = app.signing_secret.clone().unwrap_or_default();
        return Ok((
            SlackPeer::new(shared.clone(), &url, &secret),
            String::new(),
            Some(app.clone()),
        ));
    }
    if app_id.is_some() {
        return Err(Box::new(refuse(
            StatusCode::NOT_FOUND,
            "app_not_found",
            "no app with that app_id and a request URL",
        )));
    }
    match &w.sandbox_bot {
        Some((base, secret)) => {
            let path = match target {
                Target::Events => "/slack/events",
                Target::Interactions => "/slack/interactions",
                Target::Commands => "/slack/commands",
            };
            Ok((
                SlackPeer::new(shared.clone(), base, secret),
                path.into(),
                None,
            ))
        }
        None => Err(Box::new(refuse(
            StatusCode::CONFLICT,
            "no_bot",
            "no app has a request URL (workspace file `apps`), and no bot is connected",
        ))),
    }
}

/// What the bot answered, passed back to the caller.
async fn relay(result: reqwest::Result<reqwest::Response>) -> Response {
    match result {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            let body = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
            Json(json!({ "status": status, "body": body })).into_response()
        }
        Err(e) => refuse(
            StatusCode::BAD_GATEWAY,
            "bot_unreachable",
            format!("the bot did not answer: {e}"),
        ),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventRequest {
    app_id: Option<String>,
    /// The inner event (`{"type": "message", …}`), wrapped in an `event_callback` envelope;
    /// or a whole envelope (`"type": "event_callback"` / `"url_verification"`), sent as is.
    event: Value,
    event_id: Option<String>,
}

async fn send_event(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    guard!(headers, shared);
    let request: EventRequest = parse!(bytes);
    if !request.event.is_object() || request.event.get("type").is_none() {
        return bad_request("\"event\" must be an object with a \"type\"");
    }
    let (peer, path, app) = match destination(&shared, request.app_id.as_deref(), Target::Events) {
        Ok(d) => d,
        Err(refused) => return *refused,
    };
    let is_envelope = matches!(
        request.event["type"].as_str(),
        Some("event_callback" | "url_verification")
    );
    let body = if is_envelope {
        request.event
    } else {
        let id = request
            .event_id
            .unwrap_or_else(|| format!("Ev{:010X}", fastrand::u64(..1 << 40)));
        let mut envelope = peer.event_callback(&id, request.event);
        // The envelope names the app it is for, and that app's bot.
        if let Some(app) = &app {
            envelope["api_app_id"] = json!(app.app_id);
            envelope["authorizations"][0]["user_id"] = json!(app.bot_user_id);
        }
        envelope
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    relay(
        peer.send_signed(&path, "application/json", bytes, Default::default())
            .await,
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InteractionRequest {
    app_id: Option<String>,
    /// A whole interaction payload, sent as is (form field `payload`).
    payload: Option<Value>,
    /// A click on a message's element: `{user, channel, ts, action_id, block_id, value}`.
    block_actions: Option<Click>,
    /// A modal submitted: `{user, view}` (`view` may carry `id` and `state`).
    view_submission: Option<Submission>,
}

/// A button click to send as a member (over HTTP here, or as a Socket Mode envelope).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Click {
    user: String,
    channel: Option<String>,
    ts: String,
    action_id: String,
    block_id: String,
    #[serde(default)]
    value: String,
}

impl Click {
    /// The `block_actions` payload; the channel is the member's DM when left out.
    pub(crate) fn payload(self, peer: &SlackPeer) -> Value {
        let channel = self.channel.unwrap_or_else(|| dm_channel_id(&self.user));
        peer.block_actions(
            &self.user,
            &channel,
            &self.ts,
            &self.action_id,
            &self.block_id,
            &self.value,
        )
    }
}

/// A modal submitted as a member.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Submission {
    user: String,
    #[serde(default)]
    view: Value,
}

impl Submission {
    /// The `view_submission` payload (an empty view when none is given).
    pub(crate) fn payload(self, peer: &SlackPeer) -> Value {
        let view = if self.view.is_null() {
            json!({})
        } else {
            self.view
        };
        peer.view_submission(&self.user, &view)
    }
}

async fn send_interaction(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    guard!(headers, shared);
    let request: InteractionRequest = parse!(bytes);
    let (peer, path, app) =
        match destination(&shared, request.app_id.as_deref(), Target::Interactions) {
            Ok(d) => d,
            Err(refused) => return *refused,
        };
    let payload = match (
        request.payload,
        request.block_actions,
        request.view_submission,
    ) {
        (Some(p), None, None) => p,
        (None, Some(c), None) => c.payload(&peer),
        (None, None, Some(s)) => s.payload(&peer),
        _ => {
            return bad_request(
                "give exactly one of \"payload\", \"block_actions\" or \"view_submission\"",
            )
        }
    };
    let mut payload = payload;
    if let (Some(app), true) = (&app, payload.get("api_app_id").is_some()) {
        payload["api_app_id"] = json!(app.app_id);
    }
    let form = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap_or_default();
    relay(
        peer.send_signed(
            &path,
            "application/x-www-form-urlencoded",
            form.into_bytes(),
            Default::default(),
        )
        .await,
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandRequest {
    app_id: Option<String>,
    user: String,
    /// Where it was typed; the member's DM with the bot when left out.
    channel: Option<String>,
    #[serde(default = "slash")]
    command: String,
    #[serde(default)]
    text: String,
}

fn slash() -> String {
    "/pulse".into()
}

async fn send_command(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    guard!(headers, shared);
    let request: CommandRequest = parse!(bytes);
    if !request.command.starts_with('/') {
        return bad_request("\"command\" must start with '/'");
    }
    let (peer, path, app) = match destination(&shared, request.app_id.as_deref(), Target::Commands)
    {
        Ok(d) => d,
        Err(refused) => return *refused,
    };
    let channel = request
        .channel
        .unwrap_or_else(|| dm_channel_id(&request.user));
    let mut fields = peer.slash_command(&request.user, &channel, &request.text);
    for (k, v) in fields.iter_mut() {
        if k == "command" {
            *v = request.command.clone();
        }
        if let (Some(app), "api_app_id") = (&app, k.as_str()) {
            *v = app.app_id.clone();
        }
    }
    let form = serde_urlencoded::to_string(&fields).unwrap_or_default();
    relay(
        peer.send_signed(
            &path,
            "application/x-www-form-urlencoded",
            form.into_bytes(),
            Default::default(),
        )
        .await,
    )
    .await
}

/// Empties the workspace's history, runs the reset hook, then writes the state file.
pub(crate) async fn reset(shared: &Shared) -> Result<(), String> {
    let hook = {
        let mut w = shared.world();
        w.reset();
        w.reset_hook.clone()
    };
    let outcome = match hook {
        Some(hook) => hook().await,
        None => Ok(()),
    };
    let persister = shared.world().persister.clone();
    if let Some(p) = persister {
        p.flush(true)
            .map_err(|e| format!("cannot write the state file: {e}"))?;
    }
    outcome
}

async fn reset_route(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    guard!(headers, shared);
    match reset(&shared).await {
        Ok(()) => Json(json!({ "ok": true })).into_response(),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "reset_failed", e),
    }
}
