//! The sandbox's window: an HTML page on the emulator's address that shows each member's DM
//! with the bot as their Slack client would, with buttons, menus, open modals and a composer.
//! A click becomes a correctly signed `block_actions` (a submit, a `view_submission`; a typed
//! line, a slash command or a `message.im` event) to the bot, exactly as Slack would send.
//!
//! - `page`: the page, its styles and its script (live updates by polling a version);
//! - `blocks`: Block Kit in messages and modals; `mrkdwn` (+ `emoji`): text as Slack draws it.

mod blocks;
mod emoji;
mod mrkdwn;
mod page;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

use super::directory::dm_channel_id;
use super::model::EmulatedMessage;
use super::peer::SlackPeer;
use super::state::Shared;
use blocks::ModalState;
use page::{Pending, SLACKBOT};

pub(crate) async fn page(State(shared): State<Arc<Shared>>) -> Html<String> {
    Html(page::page(&shared.world(), None))
}

/// The page's version: it changes whenever something the page shows changes.
pub(crate) async fn version(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        page::version(&shared.world()).to_string(),
    )
        .into_response()
}

/// A peer towards the bot connected with `Emulator::connect_bot`, if any, on the workspace's
/// clock (a test's manual clock, so the bot accepts the signatures' timestamps).
fn peer_of(shared: &Arc<Shared>) -> Option<SlackPeer> {
    let (bot, clock) = {
        let w = shared.world();
        (w.sandbox_bot.clone()?, w.clock.clone())
    };
    let peer = SlackPeer::new(shared.clone(), &bot.0, &bot.1);
    Some(match clock {
        Some(clock) => peer.with_clock(move || clock()),
        None => peer,
    })
}

/// The peer a sandbox form POST goes through, or the refusal: 403 for a cross-origin POST,
/// 409 when no bot is connected.
fn peer_for_post(shared: &Arc<Shared>, headers: &HeaderMap) -> Result<SlackPeer, Refusal> {
    if let Some(refused) = cross_origin(headers) {
        return Err(refused);
    }
    peer_of(shared).ok_or((StatusCode::CONFLICT, "no bot connected to this sandbox"))
}

/// A status and the sentence that explains it.
type Refusal = (StatusCode, &'static str);

/// The sandbox page's forms post to the emulator's own address. A POST from another site (a
/// page the operator happens to visit making their browser click or submit for them) is
/// refused: browsers name the requesting site in `Sec-Fetch-Site` and `Origin`. A client that
/// sends neither (curl, a test) is not a browser that could be tricked, and is let through.
fn cross_origin(headers: &HeaderMap) -> Option<Refusal> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let refuse = |why: &str| {
        tracing::warn!(reason = why, "sandbox: refused a cross-origin POST");
        Some((StatusCode::FORBIDDEN, "cross-origin requests are refused"))
    };
    if let Some(site) = header("sec-fetch-site") {
        if !matches!(site, "same-origin" | "none") {
            return refuse("sec-fetch-site");
        }
    }
    if let Some(origin) = header("origin") {
        let same = header("host").is_some_and(|host| {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .is_some_and(|o| o.eq_ignore_ascii_case(host))
        });
        if !same {
            return refuse("origin");
        }
    }
    None
}

/// The page's script sends its forms with `x-sandbox: fetch` and wants a fragment (or
/// nothing) back; a browser without scripts gets the page again.
fn from_script(headers: &HeaderMap) -> bool {
    headers.get("x-sandbox").is_some()
}

fn done(headers: &HeaderMap) -> Response {
    if from_script(headers) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        Redirect::to("/").into_response()
    }
}

#[derive(Deserialize)]
pub(crate) struct Click {
    user: String,
    channel: String,
    ts: String,
    block_id: String,
    action_id: String,
    #[serde(default)]
    value: String,
}

pub(crate) async fn click(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(c): Form<Click>,
) -> Response {
    let peer = match peer_for_post(&shared, &headers) {
        Ok(peer) => peer,
        Err(refused) => return refused.into_response(),
    };
    let payload = peer.block_actions(
        &c.user,
        &c.channel,
        &c.ts,
        &c.action_id,
        &c.block_id,
        &c.value,
    );
    match peer.send_interaction(&payload).await {
        Ok(r) if !r.status().is_success() => {
            tracing::debug!(status = %r.status(), "sandbox: the bot refused the click");
        }
        Err(e) => tracing::debug!(error = %e, "sandbox: the bot did not take the click"),
        Ok(_) => {}
    }
    done(&headers)
}

/// The form's fields by name, repeated names (checkboxes) kept together.
fn grouped(fields: Vec<(String, String)>) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in fields {
        out.entry(k).or_default().push(v);
    }
    out
}

fn field<'a>(fields: &'a HashMap<String, Vec<String>>, name: &str) -> Option<&'a str> {
    fields.get(name).and_then(|v| v.first()).map(String::as_str)
}

pub(crate) async fn submit(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let peer = match peer_for_post(&shared, &headers) {
        Ok(peer) => peer,
        Err(refused) => return refused.into_response(),
    };
    let mut entered = grouped(fields);
    let (Some(view_id), Some(user)) = (
        field(&entered, "__view").map(str::to_string),
        field(&entered, "__user").map(str::to_string),
    ) else {
        return (StatusCode::BAD_REQUEST, "missing view").into_response();
    };
    entered.retain(|k, _| !k.starts_with("__"));
    let found = shared
        .world()
        .views
        .iter()
        .find(|v| v.id == view_id)
        .cloned();
    let Some(view) = found else {
        return (StatusCode::NOT_FOUND, "no such view").into_response();
    };
    let submitted = json!({
        "id": view.id,
        "state": { "values": blocks::state_values(&view.view, &entered) },
    });
    let payload = peer.view_submission(&user, &submitted);
    let answer = match peer.send_interaction(&payload).await {
        Ok(r) if r.status().is_success() => Ok(r.json::<Value>().await.unwrap_or(Value::Null)),
        Ok(r) => Err(format!("The app answered HTTP {}.", r.status().as_u16())),
        Err(_) => Err("We had some trouble connecting. Try again?".to_string()),
    };
    let mut state = ModalState {
        values: entered,
        errors: HashMap::new(),
    };
    match answer {
        Ok(reply) if reply["response_action"] == "errors" => {
            for (block, message) in reply["errors"].as_object().into_iter().flatten() {
                let text = message.as_str().unwrap_or("").to_string();
                state.errors.insert(block.clone(), text);
            }
        }
        Ok(reply) if reply["response_action"] == "update" => {
            let mut w = shared.world();
            let now = w.now();
            let hash = w.next_hash(now);
            if let Some(stored) = w.views.iter_mut().find(|v| v.id == view_id) {
                let mut updated = reply["view"].clone();
                updated["id"] = json!(stored.id);
                updated["hash"] = json!(hash);
                stored.view = updated;
                stored.hash = hash;
            }
            state = ModalState::default();
        }
        Ok(_) => {
            // Accepted (or cleared): the modal closes, as in Slack.
            shared.world().views.retain(|v| v.id != view_id);
            state = ModalState::default();
        }
        Err(why) => {
            state.errors.insert(String::new(), why);
        }
    }
    let pending = Pending {
        view_id: &view_id,
        state: &state,
    };
    let w = shared.world();
    if from_script(&headers) {
        Html(page::modal_slot(&w, &user, Some(&pending))).into_response()
    } else {
        Html(page::page(&w, Some(pending))).into_response()
    }
}

/// Cancel (or ×) on a modal: it closes; the bot hears `view_closed` when it asked to.
pub(crate) async fn close(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let peer = match peer_for_post(&shared, &headers) {
        Ok(peer) => peer,
        Err(refused) => return refused.into_response(),
    };
    let fields = grouped(fields);
    let (Some(view_id), Some(user)) = (field(&fields, "__view"), field(&fields, "__user")) else {
        return (StatusCode::BAD_REQUEST, "missing view").into_response();
    };
    let closed = {
        let mut w = shared.world();
        let found = w.views.iter().position(|v| v.id == view_id);
        found.map(|i| w.views.remove(i))
    };
    let Some(closed) = closed else {
        return done(&headers);
    };
    if closed.view["notify_on_close"] == true {
        let c = shared.config();
        let payload = json!({
            "type": "view_closed",
            "team": { "id": c.team_id, "domain": c.team_name.to_lowercase() },
            "user": { "id": user, "team_id": c.team_id },
            "api_app_id": c.app_id,
            "view": closed.view,
            "is_cleared": false,
        });
        if let Err(e) = peer.send_interaction(&payload).await {
            tracing::debug!(error = %e, "sandbox: the bot did not take view_closed");
        }
    }
    if from_script(&headers) {
        Html("<div class=modal-slot data-view=\"\"></div>").into_response()
    } else {
        Redirect::to("/").into_response()
    }
}

#[derive(Deserialize)]
pub(crate) struct Compose {
    user: String,
    text: String,
}

/// Slack's escaping of a typed message: `&`, `<` and `>` travel as entities.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Adds a message to a DM as it stands in the page (and in the Web API's history).
fn post(
    shared: &Shared,
    channel: &str,
    user: &str,
    text: &str,
    blocks: Value,
    ephemeral_for: Option<&str>,
) -> String {
    let mut w = shared.world();
    let now = w.now();
    let ts = w.next_ts(now);
    w.messages.push(EmulatedMessage {
        channel: channel.to_string(),
        ts: ts.clone(),
        thread_ts: None,
        user: user.to_string(),
        text: text.to_string(),
        blocks,
        edits: 0,
        ephemeral_for: ephemeral_for.map(str::to_string),
        files: Vec::new(),
        metadata: None,
    });
    ts
}

/// A line typed in a member's composer: `/pulse …` goes to the bot as a signed slash
/// command (its answer shown as Slack shows it, ephemeral unless `in_channel`); anything else
/// is a DM to the bot, delivered as a signed `message.im` event.
pub(crate) async fn compose(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(c): Form<Compose>,
) -> Response {
    let peer = match peer_for_post(&shared, &headers) {
        Ok(peer) => peer,
        Err(refused) => return refused.into_response(),
    };
    let text = c.text.trim();
    if text.is_empty() {
        return (StatusCode::BAD_REQUEST, "type a message or a /command").into_response();
    }
    let known = shared.world().directory.user(&c.user).is_some();
    if !known {
        return (StatusCode::NOT_FOUND, "no such member").into_response();
    }
    let channel = dm_channel_id(&c.user);
    if let Some(command) = text.strip_prefix('/') {
        let (name, rest) = command.split_once(' ').unwrap_or((command, ""));
        if name != "pulse" {
            let notice = format!(
                "/{name} is not a valid command. In Slack, all messages that start with the \"/\" character are interpreted as commands."
            );
            post(
                &shared,
                &channel,
                SLACKBOT,
                &notice,
                Value::Null,
                Some(&c.user),
            );
            return done(&headers);
        }
        let fields = peer.slash_command(&c.user, &channel, rest.trim());
        let reply = peer.send_command(&fields).await;
        show_command_reply(&shared, &channel, &c.user, reply).await;
        return done(&headers);
    }
    let escaped = slack_escape(text);
    let ts = post(&shared, &channel, &c.user, &escaped, Value::Null, None);
    let mut event = peer.message_im(&c.user, &escaped);
    event["ts"] = json!(ts);
    event["event_ts"] = json!(ts);
    let event_id = shared.world().next_id("Ev");
    let envelope = peer.event_callback(&event_id, event);
    if let Err(e) = peer.send_event(&envelope).await {
        tracing::debug!(error = %e, "sandbox: the bot did not take the message");
    }
    done(&headers)
}

/// The synchronous answer to a slash command, shown as Slack shows it: JSON with `text` /
/// `blocks` (ephemeral unless `response_type` is `in_channel`), plain text, or nothing; a
/// failure becomes Slackbot's notice.
async fn show_command_reply(
    shared: &Shared,
    channel: &str,
    user: &str,
    reply: reqwest::Result<reqwest::Response>,
) {
    let bot = shared.config().bot_user_id;
    let failed = |why: String| {
        post(
            shared,
            channel,
            SLACKBOT,
            &format!("/pulse failed: {why}"),
            Value::Null,
            Some(user),
        );
    };
    let response = match reply {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(error = %e, "sandbox: the bot did not take the command");
            return failed("the app did not answer (dispatch_failed).".into());
        }
    };
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    if !status.is_success() {
        return failed(format!("the app answered HTTP {}.", status.as_u16()));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(json) => {
            let text = json["text"].as_str().unwrap_or("");
            let blocks = json.get("blocks").cloned().unwrap_or(Value::Null);
            let ephemeral = json["response_type"] != "in_channel";
            post(
                shared,
                channel,
                &bot,
                text,
                blocks,
                ephemeral.then_some(user),
            );
        }
        Err(_) => {
            let text = String::from_utf8_lossy(&body).to_string();
            post(shared, channel, &bot, &text, Value::Null, Some(user));
        }
    }
}
