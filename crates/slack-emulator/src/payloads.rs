//! Realistic payloads for the peer to send, shaped like Slack's (docs/slack-facts.md, "Events
//! API" and "Interactions and views"): event envelopes, button clicks, modal submissions and slash
//! commands, with fresh trigger_ids and working response_urls from the emulator.

use serde_json::{json, Map, Value};

use super::blocks::ViewKind;
use super::directory::dm_channel_id;
use super::methods::message_json;
use super::peer::SlackPeer;
use super::respond;
use super::state::{Install, World};

/// Slack's deprecated verification token; present in every payload, checked by no one.
const LEGACY_TOKEN: &str = "emulated-verification-token";

impl SlackPeer {
    /// `<epoch>.<6 digits>` at the peer's time, as `event_ts`/`action_ts` look.
    fn slack_ts(&self) -> String {
        let now = self.now();
        format!("{}.{:06}", now.timestamp(), now.timestamp_subsec_micros())
    }

    fn user_json(&self, user_id: &str) -> Value {
        let w = self.shared.world();
        let name = w
            .directory
            .user(user_id)
            .map_or_else(|| user_id.to_lowercase(), |u| u.name.clone());
        json!({ "id": user_id, "username": name, "name": name, "team_id": w.config.team_id })
    }

    /// An `event_callback` envelope around `event` (docs/slack-facts.md, "Events API").
    pub fn event_callback(&self, event_id: &str, event: Value) -> Value {
        let c = self.shared.config();
        json!({
            "token": LEGACY_TOKEN,
            "team_id": c.team_id,
            "api_app_id": c.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": self.now().timestamp(),
            "authorizations": [{
                "enterprise_id": null, "team_id": c.team_id, "user_id": c.bot_user_id,
                "is_bot": true, "is_enterprise_install": false,
            }],
            "is_ext_shared_channel": false,
            "event_context": format!("4-emulated-{event_id}"),
        })
    }

    /// The inner event of a DM from `user_id` to the bot (`message.im`).
    pub fn message_im(&self, user_id: &str, text: &str) -> Value {
        let ts = self.slack_ts();
        json!({
            "type": "message", "channel": dm_channel_id(user_id), "user": user_id, "text": text,
            "ts": ts, "event_ts": ts, "channel_type": "im",
            "client_msg_id": uuid::Uuid::new_v4().to_string(),
        })
    }

    /// The inner event when `user_id` opens the bot's Home tab.
    pub fn app_home_opened(&self, user_id: &str) -> Value {
        json!({
            "type": "app_home_opened", "user": user_id, "channel": dm_channel_id(user_id),
            "tab": "home", "event_ts": self.slack_ts(),
        })
    }

    /// A click on `action_id` in a message the bot posted, with a fresh trigger_id (bound to
    /// the user) and a response_url that works against the emulator. The action's shape
    /// (`value` or `selected_option(s)`) follows the element type found in the message.
    pub fn block_actions(
        &self,
        user_id: &str,
        channel_id: &str,
        message_ts: &str,
        action_id: &str,
        block_id: &str,
        value: &str,
    ) -> Value {
        let user = self.user_json(user_id);
        let action_ts = self.slack_ts();
        let mut w = self.shared.world();
        let c = w.config.clone();
        let trigger_id = w.issue_trigger(Some(user_id));
        let response_url = respond::issue(&mut w, channel_id, Some(message_ts), user_id);
        let install = Install {
            team_id: c.team_id.clone(),
            team_name: c.team_name.clone(),
            bot_user_id: c.bot_user_id.clone(),
            bot_id: c.bot_id.clone(),
        };
        let stored = w
            .messages
            .iter()
            .find(|m| m.channel == channel_id && m.ts == message_ts);
        let element = stored.and_then(|m| find_element(&m.blocks, action_id));
        let message = stored.map_or_else(
            || json!({ "type": "message", "ts": message_ts, "user": c.bot_user_id, "bot_id": c.bot_id, "text": "" }),
            |m| message_json(m, &install, &c.app_id),
        );
        let is_ephemeral = stored.is_some_and(|m| m.ephemeral_for.is_some());
        let channel_name = channel_name(&w, channel_id);
        drop(w);
        json!({
            "type": "block_actions",
            "user": user,
            "api_app_id": c.app_id,
            "token": LEGACY_TOKEN,
            "container": { "type": "message", "message_ts": message_ts, "channel_id": channel_id, "is_ephemeral": is_ephemeral },
            "trigger_id": trigger_id,
            "team": { "id": c.team_id, "domain": c.team_name.to_lowercase() },
            "enterprise": null,
            "is_enterprise_install": false,
            "channel": { "id": channel_id, "name": channel_name },
            "message": message,
            "state": { "values": {} },
            "response_url": response_url,
            "actions": [action_json(element.as_ref(), action_id, block_id, value, &action_ts)],
        })
    }

    /// A modal submission. `view` carries `state.values`; when it names an open view by
    /// `id` (or the user has one open), the stored view fills in id, hash, callback_id, …
    pub fn view_submission(&self, user_id: &str, view: &Value) -> Value {
        let user = self.user_json(user_id);
        let mut w = self.shared.world();
        let c = w.config.clone();
        let by_id = view.get("id").and_then(Value::as_str);
        let stored = w
            .views
            .iter()
            .rev()
            .find(|v| match by_id {
                Some(id) => v.id == id,
                None => v.kind == ViewKind::Modal && v.user.as_deref() == Some(user_id),
            })
            .map(|v| v.view.clone());
        let mut merged = stored.unwrap_or_else(|| json!({ "type": "modal" }));
        if let (Some(base), Some(overlay)) = (merged.as_object_mut(), view.as_object()) {
            for (k, v) in overlay {
                base.insert(k.clone(), v.clone());
            }
        }
        if merged.get("state").is_none() {
            merged["state"] = json!({ "values": {} });
        }
        let trigger_id = w.issue_trigger(Some(user_id));
        drop(w);
        json!({
            "type": "view_submission",
            "team": { "id": c.team_id, "domain": c.team_name.to_lowercase() },
            "user": user,
            "api_app_id": c.app_id,
            "token": LEGACY_TOKEN,
            "trigger_id": trigger_id,
            "view": merged,
            "response_urls": [],
            "enterprise": null,
            "is_enterprise_install": false,
        })
    }

    /// The form fields of `/pulse <text>` typed by `user_id` in `channel_id`.
    pub fn slash_command(
        &self,
        user_id: &str,
        channel_id: &str,
        text: &str,
    ) -> Vec<(String, String)> {
        let user_name = self.user_json(user_id)["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut w = self.shared.world();
        let c = w.config.clone();
        let trigger_id = w.issue_trigger(Some(user_id));
        let response_url = respond::issue(&mut w, channel_id, None, user_id);
        let channel_name = channel_name(&w, channel_id);
        drop(w);
        [
            ("token", LEGACY_TOKEN.to_string()),
            ("team_id", c.team_id),
            ("team_domain", c.team_name.to_lowercase()),
            ("channel_id", channel_id.to_string()),
            ("channel_name", channel_name),
            ("user_id", user_id.to_string()),
            ("user_name", user_name),
            ("command", "/pulse".to_string()),
            ("text", text.to_string()),
            ("api_app_id", c.app_id),
            ("is_enterprise_install", "false".to_string()),
            ("response_url", response_url),
            ("trigger_id", trigger_id),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// The interactive element with `action_id` anywhere in `blocks`.
fn find_element(blocks: &Value, action_id: &str) -> Option<Value> {
    let matches = |e: &Value| e.get("action_id").and_then(Value::as_str) == Some(action_id);
    blocks.as_array()?.iter().find_map(|b| {
        let in_elements = b
            .get("elements")
            .and_then(Value::as_array)
            .and_then(|els| els.iter().find(|e| matches(e)));
        let accessory = b.get("accessory").filter(|a| matches(a));
        in_elements.or(accessory).cloned()
    })
}

fn find_option(element: &Value, value: &str) -> Option<Value> {
    let options = element.get("options").and_then(Value::as_array)?;
    options
        .iter()
        .find(|o| o.get("value").and_then(Value::as_str) == Some(value))
        .cloned()
}

fn action_json(
    element: Option<&Value>,
    action_id: &str,
    block_id: &str,
    value: &str,
    action_ts: &str,
) -> Value {
    let kind = element
        .and_then(|e| e.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("button");
    let mut action = Map::new();
    action.insert("action_id".into(), json!(action_id));
    action.insert("block_id".into(), json!(block_id));
    action.insert("type".into(), json!(kind));
    action.insert("action_ts".into(), json!(action_ts));
    let option = || {
        element.and_then(|e| find_option(e, value)).unwrap_or_else(
            || json!({ "text": { "type": "plain_text", "text": value }, "value": value }),
        )
    };
    match kind {
        "static_select" | "radio_buttons" | "overflow" => {
            action.insert("selected_option".into(), option());
        }
        "checkboxes" | "multi_static_select" => {
            action.insert("selected_options".into(), json!([option()]));
        }
        _ => {
            action.insert("value".into(), json!(value));
            if let Some(text) = element.and_then(|e| e.get("text")) {
                action.insert("text".into(), text.clone());
            }
        }
    }
    Value::Object(action)
}

/// A channel's name as payloads carry it; DMs are `directmessage`.
fn channel_name(w: &World, channel_id: &str) -> String {
    w.directory
        .channels
        .get(channel_id)
        .map_or_else(|| "directmessage".to_string(), |ch| ch.name.clone())
}
