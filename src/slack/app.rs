//! What the Slack app must be configured with, as the code needs it: the bot scopes, the
//! scope each Web API method and event needs, the shortcuts and the slash command.
//!
//! `deploy/slack-app-manifest.yaml` (HTTP) and `deploy/slack-app-manifest.socket.yaml`
//! (Socket Mode) declare the same things for Slack; `tests/deploy.rs` compares them with these
//! lists both ways, checks the lists against the code (every Web API method named in `src/`
//! has its scopes here, every event `pulse::events` handles has its scopes here) and against
//! the scopes in Slack's own API specs, so the manifest, the code and Slack cannot drift apart.
//! docs/deploy.md explains each scope.

use crate::slack::incoming::payloads::SlackEvent;
use crate::slack::protocol::CELEBRATE_WIN_CALLBACK;

/// The bot token scopes the app asks for: exactly the union of what the methods the code
/// calls ([`METHOD_SCOPES`]) and the events it handles ([`EVENT_SCOPES`]) need, plus
/// `commands` for the slash command and the shortcuts. Sorted.
pub const BOT_SCOPES: &[&str] = &[
    "channels:history",
    "chat:write",
    "commands",
    "files:write",
    "groups:history",
    "im:history",
    "im:write",
    "usergroups:read",
    "users:read",
];

/// The scope the slash command and the shortcuts need.
pub const COMMANDS_SCOPE: &str = "commands";

/// Each Web API method pulseloop calls, with every bot scope it needs for the way pulseloop
/// calls it. Methods that need no scope are listed too, so that a new method must be added
/// here (with its scopes) before the manifest test passes.
pub const METHOD_SCOPES: &[(&str, &[&str])] = &[
    ("auth.test", &[]),
    // Pulses and their updates go to the member's DM (the app's Messages tab, by user id),
    // digests and shout-outs to channels the bot was invited to.
    ("chat.postMessage", &["chat:write"]),
    ("chat.update", &["chat:write"]),
    ("chat.postEphemeral", &["chat:write"]),
    // The outbox opens a member's DM to look up a post whose outcome is unknown.
    ("conversations.open", &["im:write"]),
    // That look-up reads the conversation it posted to: a DM, or a public or private channel
    // (sponsor channel, shout-outs).
    (
        "conversations.history",
        &["im:history", "channels:history", "groups:history"],
    ),
    (
        "conversations.replies",
        &["im:history", "channels:history", "groups:history"],
    ),
    ("users.info", &["users:read"]),
    ("users.list", &["users:read"]),
    ("usergroups.users.list", &["usergroups:read"]),
    ("views.open", &[]),
    ("views.publish", &[]),
    ("views.update", &[]),
    ("views.push", &[]),
    // Not in Slack's 2020 OpenAPI snapshot; the scope is from the methods' reference pages.
    ("files.getUploadURLExternal", &["files:write"]),
    ("files.completeUploadExternal", &["files:write"]),
    // The install exchanges its code with the client id and secret, no token.
    ("oauth.v2.access", &[]),
    // Socket Mode: called with the app-level token (`xapp-…`, scope `connections:write`),
    // which is not a bot scope and is not declared in the manifest.
    ("apps.connections.open", &[]),
];

/// Each Events API subscription pulseloop may handle, with the bot scopes Slack requires
/// for it (from Slack's AsyncAPI spec of the Events API; `user_status_changed` is newer than
/// that snapshot and needs `users:read` like `user_change`).
pub const EVENT_SCOPES: &[(&str, &[&str])] = &[
    ("app_home_opened", &[]),
    ("app_uninstalled", &[]),
    ("message.im", &["im:history"]),
    ("tokens_revoked", &[]),
    ("user_change", &["users:read"]),
    ("user_status_changed", &["users:read"]),
];

/// The scopes `method` needs, or `None` for a method this table does not know.
pub fn method_scopes(method: &str) -> Option<&'static [&'static str]> {
    METHOD_SCOPES
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, scopes)| *scopes)
}

/// The scopes the subscription `event` needs, or `None` for an event this table does not
/// know.
pub fn event_scopes(event: &str) -> Option<&'static [&'static str]> {
    EVENT_SCOPES
        .iter()
        .find(|(e, _)| *e == event)
        .map(|(_, scopes)| *scopes)
}

/// The one slash command.
pub const SLASH_COMMAND: &str = "/pulse";

/// Where a shortcut shows up in Slack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShortcutKind {
    /// On a message's "More actions" menu (a `message_action` payload).
    Message,
    /// In the shortcuts menu of the composer (a `shortcut` payload).
    Global,
}

impl ShortcutKind {
    /// The manifest's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ShortcutKind::Message => "message",
            ShortcutKind::Global => "global",
        }
    }
}

/// A shortcut the app declares and `pulse::interactions` acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortcut {
    pub kind: ShortcutKind,
    pub callback_id: &'static str,
    /// The name people see (Slack allows 24 characters).
    pub name: &'static str,
}

/// Every shortcut the app declares.
pub const SHORTCUTS: &[Shortcut] = &[Shortcut {
    kind: ShortcutKind::Message,
    callback_id: CELEBRATE_WIN_CALLBACK,
    name: "Celebrate as a small win",
}];

/// The Events API subscription an event arrived through (`message.im` for a DM, the type
/// itself for the others), or `None` for an event type pulseloop does not parse.
pub fn subscription_of(event: &SlackEvent) -> Option<&'static str> {
    Some(match event {
        SlackEvent::AppHomeOpened { .. } => "app_home_opened",
        SlackEvent::Message { channel_type, .. } => match channel_type.as_deref() {
            Some("im") => "message.im",
            Some("channel") => "message.channels",
            Some("group") => "message.groups",
            Some("mpim") => "message.mpim",
            Some("app_home") => "message.app_home",
            _ => return None,
        },
        SlackEvent::AppUninstalled {} => "app_uninstalled",
        SlackEvent::TokensRevoked { .. } => "tokens_revoked",
        SlackEvent::MemberJoinedChannel { .. } => "member_joined_channel",
        SlackEvent::UserChange { .. } => "user_change",
        SlackEvent::UserStatusChanged { .. } => "user_status_changed",
        SlackEvent::Other => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_bot_scopes_are_sorted_and_unique() {
        let mut sorted = BOT_SCOPES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, BOT_SCOPES);
    }

    #[test]
    fn every_scope_a_method_or_event_needs_is_asked_for() {
        let asked: BTreeSet<&str> = BOT_SCOPES.iter().copied().collect();
        for (name, scopes) in METHOD_SCOPES.iter().chain(EVENT_SCOPES) {
            for scope in *scopes {
                assert!(
                    asked.contains(scope),
                    "{name} needs {scope}, which BOT_SCOPES lacks"
                );
            }
        }
        assert!(asked.contains(COMMANDS_SCOPE));
    }

    #[test]
    fn shortcut_names_fit_slack() {
        for s in SHORTCUTS {
            assert!(
                !s.name.is_empty() && s.name.chars().count() <= 24,
                "{}",
                s.name
            );
        }
    }

    #[test]
    fn a_dm_arrives_through_message_im() {
        let event: SlackEvent = serde_json::from_value(serde_json::json!({
            "type": "message", "channel_type": "im", "user": "U1", "text": "4", "ts": "1.2"
        }))
        .unwrap();
        assert_eq!(subscription_of(&event), Some("message.im"));
        let other: SlackEvent =
            serde_json::from_value(serde_json::json!({ "type": "reaction_added" })).unwrap();
        assert_eq!(subscription_of(&other), None);
    }
}
