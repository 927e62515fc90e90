//! The Web API methods, one module per family. Each handler gets the decoded parameters,
//! the caller's installation and the world (locked), and returns the success fields or a
//! Slack error; the server adds `ok` and maps the outcome to HTTP.
//!
//! - `auth`: auth.test, oauth.v2.access
//! - `chat`: chat.postMessage, chat.update, chat.postEphemeral, chat.delete, chat.getPermalink
//! - `users`: users.info, users.list, users.lookupByEmail, usergroups.users.list,
//!   conversations.open
//! - `conversations`: conversations.history, conversations.replies, conversations.info
//! - `views`: views.open, views.push, views.update, views.publish
//! - `files`: files.getUploadURLExternal, files.completeUploadExternal

mod auth;
mod chat;
mod conversations;
mod files;
mod users;
mod views;

pub(crate) use chat::message_json;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::time::Instant;

use super::params::Params;
use super::state::{Install, World};

/// A Slack error answer: `{"ok": false, "error": code}` plus optional
/// `response_metadata.messages`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub code: String,
    pub messages: Vec<String>,
}

impl ApiError {
    pub fn new(code: &str) -> Self {
        Self {
            code: code.to_string(),
            messages: Vec::new(),
        }
    }

    pub fn with_messages(code: &str, messages: Vec<String>) -> Self {
        Self {
            code: code.to_string(),
            messages,
        }
    }

    /// `invalid_arguments` for a missing parameter, worded like Slack's schema errors.
    pub fn missing(field: &str) -> Self {
        Self::with_messages(
            "invalid_arguments",
            vec![format!("[ERROR] missing required field: {field}")],
        )
    }
}

impl From<&'static str> for ApiError {
    fn from(code: &'static str) -> Self {
        ApiError::new(code)
    }
}

/// The success fields of a method (without `ok`).
pub(crate) type Reply = Result<Map<String, Value>, ApiError>;

/// One method invocation.
pub(crate) struct Call<'a> {
    pub w: &'a mut World,
    pub p: &'a Params,
    /// The token's installation; `None` only for methods that need no token.
    pub install: Option<Install>,
    pub now: DateTime<Utc>,
    pub instant: Instant,
}

impl Call<'_> {
    /// The caller's installation (methods that require a token always have one).
    pub fn install(&self) -> Install {
        self.install.clone().unwrap_or_else(|| Install {
            team_id: self.w.config.team_id.clone(),
            team_name: self.w.config.team_name.clone(),
            bot_user_id: self.w.config.bot_user_id.clone(),
            bot_id: self.w.config.bot_id.clone(),
        })
    }
}

type Handler = fn(&mut Call<'_>) -> Reply;

/// A method the emulator implements.
pub(crate) struct Method {
    pub name: &'static str,
    /// Whether a bearer token is required (oauth.v2.access authenticates by client secret).
    pub needs_token: bool,
    handler: Handler,
}

impl Method {
    pub fn run(&self, call: &mut Call<'_>) -> Reply {
        (self.handler)(call)
    }
}

const fn m(name: &'static str, handler: Handler) -> Method {
    Method {
        name,
        needs_token: true,
        handler,
    }
}

const METHODS: &[Method] = &[
    m("auth.test", auth::test),
    Method {
        name: "oauth.v2.access",
        needs_token: false,
        handler: auth::oauth_v2_access,
    },
    m("chat.postMessage", chat::post_message),
    m("chat.update", chat::update),
    m("chat.postEphemeral", chat::post_ephemeral),
    m("chat.delete", chat::delete),
    m("chat.getPermalink", chat::get_permalink),
    m("users.info", users::info),
    m("users.list", users::list),
    m("users.lookupByEmail", users::lookup_by_email),
    m("usergroups.users.list", users::usergroup_members),
    m("conversations.open", users::conversations_open),
    m("conversations.history", conversations::history),
    m("conversations.replies", conversations::replies),
    m("conversations.info", conversations::info),
    m("views.open", views::open),
    m("views.push", views::push),
    m("views.update", views::update),
    m("views.publish", views::publish),
    m("files.getUploadURLExternal", files::get_upload_url),
    m("files.completeUploadExternal", files::complete_upload),
];

pub(crate) fn find(name: &str) -> Option<&'static Method> {
    METHODS.iter().find(|m| m.name == name)
}

/// Builds a JSON object from `(key, value)` pairs.
pub(crate) fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The scope a bot token needs for this call (Slack's method pages; the 2020 spec lists the
/// same, with the old `chat:write:bot` name for `chat:write`). Reading a conversation needs the
/// scope of its kind: `im:` for a DM, `channels:` for a public channel, `groups:` for a private
/// one, `mpim:` for a group DM.
pub(crate) fn required_scope(method: &str, p: &Params, w: &World) -> Option<String> {
    let kind = || {
        let channel = p.str("channel").unwrap_or_default();
        match channel.chars().next() {
            Some('D') => "im",
            Some('G') if !w.directory.channels.contains_key(&channel) => "mpim",
            Some('G') => "groups",
            _ => match w.directory.channels.get(&channel) {
                Some(c) if c.is_private => "groups",
                _ => "channels",
            },
        }
    };
    let scope = match method {
        "chat.postMessage" | "chat.update" | "chat.postEphemeral" | "chat.delete" => {
            "chat:write".to_string()
        }
        "users.info" | "users.list" => "users:read".to_string(),
        "users.lookupByEmail" => "users:read.email".to_string(),
        "usergroups.users.list" => "usergroups:read".to_string(),
        "conversations.open" => {
            let users = p.str("users").unwrap_or_default();
            if users.split(',').filter(|u| !u.trim().is_empty()).count() > 1 {
                "mpim:write".to_string()
            } else {
                "im:write".to_string()
            }
        }
        "conversations.history" | "conversations.replies" => format!("{}:history", kind()),
        "conversations.info" => format!("{}:read", kind()),
        "files.getUploadURLExternal" | "files.completeUploadExternal" => "files:write".to_string(),
        _ => return None,
    };
    Some(scope)
}
