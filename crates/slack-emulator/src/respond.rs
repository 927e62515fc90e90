//! `response_url`s handed out in block_actions and slash-command payloads: the bot POSTs JSON
//! there to reply ephemerally, in the channel, or to replace/delete the original message.
//! Usable 5 times within 30 minutes, as at Slack (docs/slack-facts.md, "Interactions and views").

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::model::EmulatedMessage;
use super::state::{ResponseUrl, Shared, World};

const MAX_USES: u32 = 5;
const TTL: Duration = Duration::from_secs(30 * 60);

/// Registers a response_url for a message (or a slash command, without `message_ts`).
pub(crate) fn issue(w: &mut World, channel: &str, message_ts: Option<&str>, user: &str) -> String {
    let id = w.next_id("R");
    w.response_urls.insert(
        id.clone(),
        ResponseUrl {
            channel: channel.to_string(),
            message_ts: message_ts.map(str::to_string),
            user: user.to_string(),
            issued: Instant::now(),
            uses: 0,
        },
    );
    format!("{}/actions/{id}", w.base_http())
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

pub(crate) async fn response_url(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({ "ok": false, "error": "invalid_json" }),
        );
    };
    let mut w = shared.world();
    let Some(target) = w.response_urls.get_mut(&id) else {
        return reply(
            StatusCode::NOT_FOUND,
            json!({ "ok": false, "error": "expired_url" }),
        );
    };
    if target.uses >= MAX_USES || target.issued.elapsed() > TTL {
        return reply(
            StatusCode::NOT_FOUND,
            json!({ "ok": false, "error": "expired_url" }),
        );
    }
    target.uses += 1;
    let target = target.clone();
    let text = payload
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let blocks = payload.get("blocks").cloned().unwrap_or(Value::Null);
    let is_true = |key: &str| payload.get(key).is_some_and(|v| v == true || v == "true");

    if let (true, Some(ts)) = (is_true("delete_original"), &target.message_ts) {
        w.messages
            .retain(|m| !(m.channel == target.channel && &m.ts == ts));
        return reply(StatusCode::OK, json!({ "ok": true }));
    }
    if let (true, Some(ts)) = (is_true("replace_original"), &target.message_ts) {
        // As at Slack, an ephemeral message can be replaced too, by the one who sees it.
        let found = w.messages.iter_mut().find(|m| {
            m.channel == target.channel
                && &m.ts == ts
                && m.ephemeral_for.as_ref().is_none_or(|u| *u == target.user)
        });
        return match found {
            Some(m) => {
                m.text = text;
                m.blocks = blocks;
                m.edits += 1;
                reply(StatusCode::OK, json!({ "ok": true }))
            }
            None => reply(
                StatusCode::NOT_FOUND,
                json!({ "ok": false, "error": "message_not_found" }),
            ),
        };
    }
    let in_channel = payload.get("response_type").and_then(Value::as_str) == Some("in_channel");
    let now = w.now();
    let ts = w.next_ts(now);
    let user = w.config.bot_user_id.clone();
    w.messages.push(EmulatedMessage {
        channel: target.channel.clone(),
        ts,
        thread_ts: payload
            .get("thread_ts")
            .and_then(Value::as_str)
            .map(str::to_string),
        user,
        text,
        blocks,
        edits: 0,
        ephemeral_for: (!in_channel).then(|| target.user.clone()),
        files: Vec::new(),
        metadata: None,
    });
    reply(StatusCode::OK, json!({ "ok": true }))
}
