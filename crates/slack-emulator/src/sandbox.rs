//! The sandbox's window: an HTML page on the emulator's address that shows every DM the bot
//! sent, with its buttons and open modals as forms. A click becomes a correctly signed
//! `block_actions` (a submit, a `view_submission`) to the bot, exactly as Slack would send.

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

use super::blocks::ViewKind;
use super::directory::dm_channel_id;
use super::peer::SlackPeer;
use super::state::Shared;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn text_of(v: &Value) -> String {
    v.get("text")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn render_blocks(out: &mut String, blocks: &Value, user: &str, channel: &str, ts: &str) {
    for block in blocks.as_array().into_iter().flatten() {
        let block_id = block.get("block_id").and_then(Value::as_str).unwrap_or("");
        match block.get("type").and_then(Value::as_str) {
            Some("section") | Some("header") => {
                out.push_str(&format!(
                    "<p>{}</p>",
                    esc(&text_of(block.get("text").unwrap_or(&Value::Null))).replace('\n', "<br>")
                ));
            }
            Some("context") => {
                let parts: Vec<String> = block["elements"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| esc(&text_of(e)))
                    .collect();
                out.push_str(&format!("<p class=ctx>{}</p>", parts.join(" · ")));
            }
            Some("actions") => {
                out.push_str("<div class=actions>");
                for e in block["elements"].as_array().into_iter().flatten() {
                    let action_id = e.get("action_id").and_then(Value::as_str).unwrap_or("");
                    let options: Vec<(String, String)> = match e.get("type").and_then(Value::as_str)
                    {
                        Some("button") => vec![(
                            e.get("value")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                            text_of(e.get("text").unwrap_or(&Value::Null)),
                        )],
                        _ => e["options"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|o| {
                                (
                                    o["value"].as_str().unwrap_or("").to_string(),
                                    text_of(&o["text"]),
                                )
                            })
                            .collect(),
                    };
                    for (value, label) in options {
                        out.push_str(&format!(
                            "<form method=post action=/sandbox/click><input type=hidden name=user value=\"{}\"><input type=hidden name=channel value=\"{}\">\
                             <input type=hidden name=ts value=\"{}\"><input type=hidden name=block_id value=\"{}\"><input type=hidden name=action_id value=\"{}\">\
                             <input type=hidden name=value value=\"{}\"><button>{}</button></form>",
                            esc(user), esc(channel), esc(ts), esc(block_id), esc(action_id), esc(&value), esc(&label)
                        ));
                    }
                }
                out.push_str("</div>");
            }
            _ => {}
        }
    }
}

fn render_modal(out: &mut String, view_id: &str, user: &str, view: &Value) {
    out.push_str(&format!(
        "<form class=modal method=post action=/sandbox/submit><h3>{}</h3><input type=hidden name=__view value=\"{}\"><input type=hidden name=__user value=\"{}\">",
        esc(&text_of(&view["title"])), esc(view_id), esc(user)
    ));
    for block in view["blocks"].as_array().into_iter().flatten() {
        if block["type"] != "input" {
            continue;
        }
        let id = block["block_id"].as_str().unwrap_or("");
        out.push_str(&format!(
            "<label>{}</label>",
            esc(&text_of(&block["label"]))
        ));
        let element = &block["element"];
        match element["type"].as_str() {
            Some("plain_text_input") => {
                let initial = element["initial_value"].as_str().unwrap_or("");
                out.push_str(&format!(
                    "<textarea name=\"{}\">{}</textarea>",
                    esc(id),
                    esc(initial)
                ));
            }
            _ => {
                let initial = element["initial_option"]["value"].as_str().unwrap_or("");
                out.push_str(&format!(
                    "<select name=\"{}\"><option value=\"\">—</option>",
                    esc(id)
                ));
                for o in element["options"].as_array().into_iter().flatten() {
                    let v = o["value"].as_str().unwrap_or("");
                    let sel = if v == initial { " selected" } else { "" };
                    out.push_str(&format!(
                        "<option value=\"{}\"{sel}>{}</option>",
                        esc(v),
                        esc(&text_of(&o["text"]))
                    ));
                }
                out.push_str("</select>");
            }
        }
    }
    out.push_str(&format!(
        "<button>{}</button></form>",
        esc(&text_of(&view["submit"]))
    ));
}

pub(crate) async fn page(State(shared): State<Arc<Shared>>) -> Html<String> {
    let w = shared.world();
    let mut out = String::from(
        "<!doctype html><meta charset=utf-8><title>pulseloop sandbox</title><style>\
         body{font:15px system-ui;max-width:900px;margin:2em auto;color:#1d1c1d}\
         .dm{border:1px solid #ddd;border-radius:8px;padding:.5em 1em;margin:1em 0}\
         .msg{border-left:3px solid #4a154b;padding-left:.8em;margin:.8em 0}.thread{margin-left:2em;border-color:#aaa}\
         .ctx{color:#616061;font-size:13px}.actions form{display:inline}button{margin:2px;padding:4px 10px}\
         .modal{background:#f8f8f8;padding:1em;border-radius:8px}.modal label{display:block;margin-top:.6em;font-weight:600}\
         textarea,select{width:100%}</style>\
         <h1>pulseloop sandbox workspace</h1><p>Every DM the bot sent, as each member sees it. Buttons send signed \
         interactions to the bot, like Slack. <a href=/>Refresh</a></p>",
    );
    for user in w.directory.users.values().filter(|u| !u.is_bot) {
        let channel = dm_channel_id(&user.id);
        let msgs: Vec<_> = w.messages.iter().filter(|m| m.channel == channel).collect();
        let modals: Vec<_> = w
            .views
            .iter()
            .filter(|v| v.kind == ViewKind::Modal && v.user.as_deref() == Some(user.id.as_str()))
            .collect();
        if msgs.is_empty() && modals.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "<div class=dm><h2>{} <small>({}, {})</small></h2>",
            esc(&user.real_name),
            esc(&user.id),
            esc(&user.tz)
        ));
        for m in msgs {
            if m.ephemeral_for.as_deref().is_some_and(|u| u != user.id) {
                continue;
            }
            let class = if m.thread_ts.is_some() {
                "msg thread"
            } else {
                "msg"
            };
            out.push_str(&format!("<div class=\"{class}\">"));
            if m.blocks.as_array().is_some_and(|b| !b.is_empty()) {
                render_blocks(&mut out, &m.blocks, &user.id, &m.channel, &m.ts);
            } else {
                out.push_str(&format!("<p>{}</p>", esc(&m.text)));
            }
            if m.edits > 0 {
                out.push_str(&format!("<p class=ctx>(edited {} times)</p>", m.edits));
            }
            out.push_str("</div>");
        }
        if let Some(view) = modals.last() {
            render_modal(&mut out, &view.id, &user.id, &view.view);
        }
        out.push_str("</div>");
    }
    Html(out)
}

#[derive(Deserialize)]
pub(crate) struct Click {
    user: String,
    channel: String,
    ts: String,
    block_id: String,
    action_id: String,
    value: String,
}

/// A peer towards the bot connected with `Emulator::connect_bot`, if any.
fn peer_of(shared: &Arc<Shared>) -> Option<SlackPeer> {
    let (url, secret) = shared.world().sandbox_bot.clone()?;
    Some(SlackPeer::new(shared.clone(), &url, &secret))
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
    if let Err(e) = peer.send_interaction(&payload).await {
        tracing::debug!(error = %e, "sandbox: the bot did not take the click");
    }
    Redirect::to("/").into_response()
}

pub(crate) async fn submit(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(fields): Form<BTreeMap<String, String>>,
) -> Response {
    let peer = match peer_for_post(&shared, &headers) {
        Ok(peer) => peer,
        Err(refused) => return refused.into_response(),
    };
    let (Some(view_id), Some(user)) = (fields.get("__view"), fields.get("__user")) else {
        return (axum::http::StatusCode::BAD_REQUEST, "missing view").into_response();
    };
    let found = shared
        .world()
        .views
        .iter()
        .find(|v| &v.id == view_id)
        .cloned();
    let Some(view) = found else {
        return (axum::http::StatusCode::NOT_FOUND, "no such view").into_response();
    };
    let mut values = Map::new();
    for block in view.view["blocks"].as_array().into_iter().flatten() {
        let Some(id) = block["block_id"].as_str() else {
            continue;
        };
        let given = fields.get(id).cloned().unwrap_or_default();
        let state = match block["element"]["type"].as_str() {
            Some("plain_text_input") => json!({ "type": "plain_text_input", "value": given }),
            Some(kind) if given.is_empty() => json!({ "type": kind, "selected_option": null }),
            Some(kind) => json!({ "type": kind, "selected_option": { "value": given } }),
            None => continue,
        };
        values.insert(id.to_string(), json!({ "value": state }));
    }
    let submitted = json!({ "id": view.id, "state": { "values": Value::Object(values) } });
    let payload = peer.view_submission(user, &submitted);
    let response = peer.send_interaction(&payload).await;
    let errors = match response {
        Ok(r) => r
            .json::<Value>()
            .await
            .ok()
            .filter(|v| v["response_action"] == "errors"),
        Err(_) => None,
    };
    match errors {
        Some(e) => Html(format!(
            "<p>Slack would show these errors next to the fields:</p><pre>{}</pre><a href=/>Back</a>",
            esc(&e["errors"].to_string())
        ))
        .into_response(),
        None => {
            // A submission the bot accepted closes the modal, as in Slack.
            shared.world().views.retain(|v| &v.id != view_id);
            Redirect::to("/").into_response()
        }
    }
}
