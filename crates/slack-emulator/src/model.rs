//! The emulator's public data: its configuration, the workspace's people, and what the bot
//! did there (messages, views, files, calls), as tests read them back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;

use super::blocks::ViewKind;
use super::rate_limit::RateLimits;

/// The workspace the emulator pretends to be, and the bot installed in it.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub team_id: String,
    pub team_name: String,
    /// The bearer token the emulator accepts (more appear through oauth.v2.access).
    pub bot_token: String,
    pub bot_user_id: String,
    pub bot_id: String,
    pub app_id: String,
    pub limits: RateLimits,
    /// The bot token's scopes; `None` grants every scope (no `missing_scope` ever).
    pub scopes: Option<Vec<String>>,
    /// Where the workspace's state (messages, views, users' statuses) is kept across restarts:
    /// loaded at start, written atomically (temp file + rename) after changes. `None`: memory only.
    pub state_file: Option<PathBuf>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            team_id: "T0SANDBOX".into(),
            team_name: "Sandbox".into(),
            bot_token: "xoxb-sandbox".into(),
            bot_user_id: "U0PULSEBOT".into(),
            bot_id: "B0PULSEBOT".into(),
            app_id: "A0PULSELOOP".into(),
            limits: RateLimits::default(),
            scopes: None,
            state_file: None,
        }
    }
}

/// A member of the emulated workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmulatedUser {
    pub id: String,
    pub name: String,
    pub real_name: String,
    /// IANA zone name, echoed exactly in `users.info`.
    pub tz: String,
    /// Deactivated: DMs to them fail with `account_inactive`.
    pub deleted: bool,
    pub is_bot: bool,
    /// A guest account.
    pub is_restricted: bool,
    pub status_text: String,
    pub status_emoji: String,
    /// `profile.email` (found by users.lookupByEmail); empty: none.
    #[serde(default)]
    pub email: String,
    /// `profile.title`.
    #[serde(default)]
    pub title: String,
}

impl EmulatedUser {
    /// An active, full member; the name is derived from the id.
    pub fn new(id: &str, tz: &str) -> Self {
        Self {
            id: id.to_string(),
            name: id.to_lowercase(),
            real_name: format!("User {id}"),
            tz: tz.to_string(),
            deleted: false,
            is_bot: false,
            is_restricted: false,
            status_text: String::new(),
            status_emoji: String::new(),
            email: String::new(),
            title: String::new(),
        }
    }

    pub fn named(mut self, real_name: &str) -> Self {
        self.real_name = real_name.to_string();
        self
    }

    /// The handle (`name`), e.g. "ada".
    pub fn handle(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    pub fn bot(mut self) -> Self {
        self.is_bot = true;
        self
    }

    pub fn guest(mut self) -> Self {
        self.is_restricted = true;
        self
    }

    pub fn deleted(mut self) -> Self {
        self.deleted = true;
        self
    }

    pub fn email(mut self, email: &str) -> Self {
        self.email = email.to_string();
        self
    }

    pub fn status(mut self, text: &str, emoji: &str) -> Self {
        self.status_text = text.to_string();
        self.status_emoji = emoji.to_string();
        self
    }
}

/// A message as it stands now (after every chat.update).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmulatedMessage {
    /// Always the conversation id (a DM is `D…` even when posted to a `U…` id).
    pub channel: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    /// The bot user that posted it.
    pub user: String,
    pub text: String,
    /// `null` when the message has no blocks.
    pub blocks: Value,
    /// How many chat.update calls (or `replace_original` responses) changed it.
    pub edits: u32,
    /// For chat.postEphemeral and ephemeral `response_url` replies: the only user who sees it.
    pub ephemeral_for: Option<String>,
    /// Files shared with this message (files.completeUploadExternal).
    pub files: Vec<String>,
    /// Message metadata (`event_type` + `event_payload`), invisible to people; returned by
    /// conversations.history/replies with `include_all_metadata`.
    pub metadata: Option<Value>,
}

/// A modal or Home tab the bot opened or published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmulatedView {
    pub id: String,
    pub user: Option<String>,
    /// The view object as Slack returns it (id, hash, blocks, …).
    pub view: Value,
    pub hash: String,
    pub kind: ViewKind,
    pub external_id: Option<String>,
}

/// A file uploaded through files.getUploadURLExternal + files.completeUploadExternal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmulatedFile {
    pub id: String,
    pub filename: String,
    pub title: Option<String>,
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// Conversations it was shared to.
    pub shared_to: Vec<String>,
}

/// One Web API request, as received and as answered (rejected ones included).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedCall {
    pub method: String,
    /// Query, form and JSON parameters merged; JSON-in-string fields parsed.
    pub params: Value,
    pub token: Option<String>,
    /// 0 when the connection was dropped without a response.
    pub http_status: u16,
    pub response: Value,
    /// When the request arrived.
    pub at: DateTime<Utc>,
}
