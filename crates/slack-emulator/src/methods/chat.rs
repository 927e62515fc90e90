//! chat.postMessage, chat.update and chat.postEphemeral: where messages go, what they may
//! contain (Block Kit limits), and the message objects Slack answers with.

use serde_json::{json, Value};

use super::{fields, ApiError, Call, Reply};
use crate::blocks::{fill_block_ids, validate_message_blocks};
use crate::directory::{dm_channel_id, Conversation};
use crate::model::EmulatedMessage;
use crate::state::{Install, World};

/// Slack's cap on legacy attachments per message (`too_many_attachments` above it).
const MAX_ATTACHMENTS: usize = 100;

/// Slack truncates longer message text and says so in a warning (docs/slack-facts.md,
/// "Web API envelope and errors").
const MAX_TEXT_CHARS: usize = 40_000;

/// The `blocks` parameter, validated: `None` when absent.
fn blocks_param(c: &Call<'_>) -> Result<Option<Value>, ApiError> {
    match c.p.get("blocks") {
        None => Ok(None),
        // A form string that did not parse as JSON, or JSON that is not a list.
        Some(Value::String(_)) => Err(ApiError::new("invalid_blocks_format")),
        Some(blocks) if !blocks.is_array() => Err(ApiError::new("invalid_blocks_format")),
        Some(blocks) => {
            let errors = validate_message_blocks(blocks);
            if errors.is_empty() {
                // Slack gives every block without a block_id one of its own.
                let mut blocks = blocks.clone();
                fill_block_ids(&mut blocks);
                Ok(Some(blocks))
            } else {
                Err(ApiError::with_messages("invalid_blocks", errors))
            }
        }
    }
}

/// The `metadata` parameter, validated like Slack: a JSON object with a string `event_type`
/// and an object `event_payload`. `None` when absent.
fn metadata_param(c: &Call<'_>) -> Result<Option<Value>, ApiError> {
    let Some(metadata) = c.p.get("metadata") else {
        return Ok(None);
    };
    // A form string that did not parse as JSON, or JSON that is not an object.
    let Some(obj) = metadata.as_object() else {
        return Err(ApiError::new("invalid_metadata_format"));
    };
    let mut errors = Vec::new();
    match obj.get("event_type") {
        Some(Value::String(t)) if !t.is_empty() => {}
        Some(_) => errors.push("[ERROR] must be a non-empty string [json-pointer:/event_type]"),
        None => errors.push("[ERROR] missing required field: event_type"),
    }
    match obj.get("event_payload") {
        Some(Value::Object(_)) => {}
        Some(_) => errors.push("[ERROR] must be an object [json-pointer:/event_payload]"),
        None => errors.push("[ERROR] missing required field: event_payload"),
    }
    if errors.is_empty() {
        Ok(Some(metadata.clone()))
    } else {
        Err(ApiError::with_messages(
            "invalid_metadata_schema",
            errors.into_iter().map(String::from).collect(),
        ))
    }
}

/// The legacy `attachments` parameter: a JSON array of at most 100 objects. `None` when
/// absent or empty.
fn attachments_param(c: &Call<'_>) -> Result<Option<Value>, ApiError> {
    let Some(attachments) = c.p.get("attachments") else {
        return Ok(None);
    };
    let Some(items) = attachments.as_array() else {
        return Err(ApiError::new("invalid_attachments"));
    };
    if items.len() > MAX_ATTACHMENTS {
        return Err(ApiError::new("too_many_attachments"));
    }
    if items.iter().any(|a| !a.is_object()) {
        return Err(ApiError::new("invalid_attachments"));
    }
    Ok((!items.is_empty()).then(|| attachments.clone()))
}

/// Adds `bot_profile` (and the stored attachments) to a message object, as Slack's answers
/// carry them for a bot's message.
pub(crate) fn decorate(json: &mut Value, m: &EmulatedMessage, w: &World, install: &Install) {
    if let Some(attachments) = w.attachments.get(&(m.channel.clone(), m.ts.clone())) {
        json["attachments"] = attachments.clone();
    }
    let name = w
        .directory
        .user(&install.bot_user_id)
        .map_or_else(|| "bot".to_string(), |u| u.name.clone());
    let icon = |size: u32| format!("https://a.slack-edge.com/80588/img/plugins/app/bot_{size}.png");
    json["bot_profile"] = json!({
        "id": install.bot_id,
        "deleted": false,
        "name": name,
        "updated": 1_700_000_000,
        "app_id": w.config.app_id,
        "icons": { "image_36": icon(36), "image_48": icon(48), "image_72": icon(72) },
        "team_id": install.team_id,
    });
}

fn has_blocks(blocks: &Option<Value>) -> bool {
    blocks
        .as_ref()
        .and_then(Value::as_array)
        .is_some_and(|b| !b.is_empty())
}

/// The text, cut to Slack's maximum; the flag says whether it was cut.
fn text_param(c: &Call<'_>) -> (String, bool) {
    let text = c.p.str("text").unwrap_or_default();
    if text.chars().count() > MAX_TEXT_CHARS {
        (text.chars().take(MAX_TEXT_CHARS).collect(), true)
    } else {
        (text, false)
    }
}

/// A message object as Slack returns it from chat.postMessage/chat.update.
pub(crate) fn message_json(m: &EmulatedMessage, install: &Install, app_id: &str) -> Value {
    let mut message = json!({
        "type": "message",
        "user": m.user,
        "bot_id": install.bot_id,
        "app_id": app_id,
        "text": m.text,
        "team": install.team_id,
        "ts": m.ts,
    });
    if !m.blocks.is_null() {
        message["blocks"] = m.blocks.clone();
    }
    if let Some(thread_ts) = &m.thread_ts {
        message["thread_ts"] = json!(thread_ts);
    }
    if m.edits > 0 {
        message["edited"] = json!({ "user": m.user, "ts": m.ts });
    }
    message
}

fn with_truncation_warning(
    mut reply: serde_json::Map<String, Value>,
    truncated: bool,
) -> serde_json::Map<String, Value> {
    if truncated {
        reply.insert("warning".into(), json!("message_truncated"));
        reply.insert(
            "response_metadata".into(),
            json!({ "warnings": ["message_truncated"] }),
        );
    }
    reply
}

pub(super) fn post_message(c: &mut Call<'_>) -> Reply {
    let channel = c.p.str("channel").ok_or("channel_not_found")?;
    let conversation = c.w.directory.resolve(&channel)?;
    let blocks = blocks_param(c)?;
    let metadata = metadata_param(c)?;
    let attachments = attachments_param(c)?;
    let (text, truncated) = text_param(c);
    if text.is_empty() && !has_blocks(&blocks) && attachments.is_none() {
        return Err(ApiError::new("no_text"));
    }
    let install = c.install();
    let message = EmulatedMessage {
        channel: conversation.id().to_string(),
        ts: c.w.next_ts(c.now),
        thread_ts: c.p.str("thread_ts"),
        user: install.bot_user_id.clone(),
        text,
        blocks: blocks.unwrap_or(Value::Null),
        edits: 0,
        ephemeral_for: None,
        files: Vec::new(),
        metadata,
    };
    tracing::debug!(channel = %message.channel, ts = %message.ts, "emulator: message posted");
    if let Some(attachments) = attachments {
        c.w.attachments
            .insert((message.channel.clone(), message.ts.clone()), attachments);
    }
    let mut json = message_json(&message, &install, &c.w.config.app_id);
    decorate(&mut json, &message, c.w, &install);
    let reply = fields([
        ("channel", json!(message.channel)),
        ("ts", json!(message.ts)),
        ("message", json),
    ]);
    c.w.messages.push(message);
    Ok(with_truncation_warning(reply, truncated))
}

pub(super) fn update(c: &mut Call<'_>) -> Reply {
    let channel = c.p.str("channel").ok_or("channel_not_found")?;
    // Updating only needs the conversation to exist: a user who left or was deactivated
    // since does not stop the bot from editing what it already sent.
    let channel = if channel.starts_with(['U', 'W']) {
        dm_channel_id(&channel)
    } else {
        c.w.directory.channel_named(&channel).unwrap_or(channel)
    };
    let known =
        c.w.directory.channels.contains_key(&channel) || c.w.directory.dm_user(&channel).is_some();
    if !known {
        return Err(ApiError::new("channel_not_found"));
    }
    let ts = c.p.str("ts").ok_or("message_not_found")?;
    let blocks = blocks_param(c)?;
    let metadata = metadata_param(c)?;
    let attachments = attachments_param(c)?;
    let (text, truncated) = text_param(c);
    if text.is_empty() && blocks.is_none() && attachments.is_none() {
        return Err(ApiError::new("no_text"));
    }
    let install = c.install();
    let app_id = c.w.config.app_id.clone();
    let author =
        c.w.message_mut(&channel, &ts)
            .ok_or("message_not_found")?
            .user
            .clone();
    if author != install.bot_user_id {
        return Err(ApiError::new("cant_update_message"));
    }
    if let Some(attachments) = attachments {
        c.w.attachments
            .insert((channel.clone(), ts.clone()), attachments);
    }
    let message = c.w.message_mut(&channel, &ts).ok_or("message_not_found")?;
    if !text.is_empty() || c.p.get("text").is_some() {
        message.text = text;
    }
    // Slack keeps the old blocks when `blocks` is absent; an empty list removes them.
    if let Some(blocks) = blocks {
        message.blocks = if has_blocks(&Some(blocks.clone())) {
            blocks
        } else {
            Value::Null
        };
    }
    // Metadata stays unless the update brings new metadata.
    if metadata.is_some() {
        message.metadata = metadata;
    }
    message.edits += 1;
    let message = message.clone();
    let mut json = message_json(&message, &install, &app_id);
    decorate(&mut json, &message, c.w, &install);
    let reply = fields([
        ("channel", json!(channel)),
        ("ts", json!(ts)),
        ("text", json!(message.text)),
        ("message", json),
    ]);
    Ok(with_truncation_warning(reply, truncated))
}

pub(super) fn post_ephemeral(c: &mut Call<'_>) -> Reply {
    let channel = c.p.str("channel").ok_or("channel_not_found")?;
    let user = c.p.str("user").ok_or("user_not_found")?;
    if c.w.directory.user(&user).is_none() {
        return Err(ApiError::new("user_not_found"));
    }
    let conversation = c.w.directory.resolve(&channel)?;
    let user_is_there = match &conversation {
        Conversation::Dm { user: other, .. } => *other == user,
        Conversation::Channel { id } => {
            c.w.directory
                .channels
                .get(id)
                .is_some_and(|ch| ch.members.contains(&user))
        }
    };
    if !user_is_there {
        return Err(ApiError::new("user_not_in_channel"));
    }
    let blocks = blocks_param(c)?;
    let attachments = attachments_param(c)?;
    let (text, _) = text_param(c);
    if text.is_empty() && !has_blocks(&blocks) && attachments.is_none() {
        return Err(ApiError::new("no_text"));
    }
    let install = c.install();
    let ts = c.w.next_ts(c.now);
    if let Some(attachments) = attachments {
        c.w.attachments
            .insert((conversation.id().to_string(), ts.clone()), attachments);
    }
    c.w.messages.push(EmulatedMessage {
        channel: conversation.id().to_string(),
        ts: ts.clone(),
        thread_ts: c.p.str("thread_ts"),
        user: install.bot_user_id,
        text,
        blocks: blocks.unwrap_or(Value::Null),
        edits: 0,
        ephemeral_for: Some(user),
        files: Vec::new(),
        metadata: None,
    });
    Ok(fields([("message_ts", json!(ts))]))
}

/// chat.delete: the bot's own message (and, for a thread parent, only the parent, as Slack
/// keeps the replies).
pub(super) fn delete(c: &mut Call<'_>) -> Reply {
    let channel = c.p.str("channel").ok_or("channel_not_found")?;
    let channel = match c.w.directory.resolve(&channel) {
        Ok(conversation) => conversation.id().to_string(),
        Err(_) if c.w.directory.dm_user(&channel).is_some() => channel,
        Err(code) => return Err(ApiError::new(code)),
    };
    let ts = c.p.str("ts").ok_or("message_not_found")?;
    let install = c.install();
    let message = c.w.message_mut(&channel, &ts).ok_or("message_not_found")?;
    if message.user != install.bot_user_id {
        return Err(ApiError::new("cant_delete_message"));
    }
    c.w.messages
        .retain(|m| !(m.channel == channel && m.ts == ts && m.ephemeral_for.is_none()));
    c.w.attachments.remove(&(channel.clone(), ts.clone()));
    Ok(fields([("channel", json!(channel)), ("ts", json!(ts))]))
}

/// chat.getPermalink: `https://<domain>.slack.com/archives/<channel>/p<ts without the dot>`,
/// with `thread_ts` and `cid` for a reply, as Slack builds it.
pub(super) fn get_permalink(c: &mut Call<'_>) -> Reply {
    let channel = c.p.str("channel").ok_or("channel_not_found")?;
    let channel = c.w.directory.channel_named(&channel).unwrap_or(channel);
    let known =
        c.w.directory.channels.contains_key(&channel) || c.w.directory.dm_user(&channel).is_some();
    if !known {
        return Err(ApiError::new("channel_not_found"));
    }
    let ts = c.p.str("message_ts").ok_or("message_not_found")?;
    let message = c.w.message_mut(&channel, &ts).ok_or("message_not_found")?;
    let thread_ts = message.thread_ts.clone().filter(|t| *t != ts);
    let domain = c.install().team_name.to_lowercase().replace(' ', "-");
    let mut permalink = format!(
        "https://{domain}.slack.com/archives/{channel}/p{}",
        ts.replace('.', "")
    );
    if let Some(thread_ts) = thread_ts {
        permalink.push_str(&format!("?thread_ts={thread_ts}&cid={channel}"));
    }
    Ok(fields([
        ("channel", json!(channel)),
        ("permalink", json!(permalink)),
    ]))
}
