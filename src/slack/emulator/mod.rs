//! A local Slack Web API: a real HTTP server on 127.0.0.1 that the tests, the sandbox and the
//! demo talk to instead of slack.com. It checks the bearer token, enforces rate limits with
//! `429` + `Retry-After`, validates Block Kit like Slack, answers in Slack's shapes (HTTP 200,
//! `{"ok": false, "error": …}`), can inject faults, and records every call. Its [`SlackPeer`]
//! plays Slack's other side: signed events, interactions and slash commands to the bot.

pub mod blocks;
mod methods;
mod peer;
mod rate_limit;
mod server;

pub use peer::{SignOptions, SlackPeer};
pub use rate_limit::RateLimits;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub team_id: String,
    pub team_name: String,
    pub bot_token: String,
    pub bot_user_id: String,
    pub bot_id: String,
    pub app_id: String,
    pub limits: RateLimits,
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
        }
    }
}

/// A person in the emulated workspace.
#[derive(Debug, Clone, Serialize)]
pub struct EmulatedUser {
    pub id: String,
    pub name: String,
    pub real_name: String,
    pub tz: String,
    pub deleted: bool,
    pub is_bot: bool,
    pub is_restricted: bool,
    pub status_text: String,
    pub status_emoji: String,
}

impl EmulatedUser {
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
        }
    }

    pub fn bot(mut self) -> Self {
        self.is_bot = true;
        self
    }

    pub fn named(mut self, real_name: &str) -> Self {
        self.real_name = real_name.to_string();
        self
    }
}

/// A message as it stands now (after any chat.update).
#[derive(Debug, Clone, Serialize)]
pub struct EmulatedMessage {
    pub channel: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    pub text: String,
    pub blocks: Value,
    pub edits: u32,
    /// For chat.postEphemeral: the only user who sees it.
    pub ephemeral_for: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EmulatedView {
    pub id: String,
    pub user: Option<String>,
    pub kind: String,
    pub view: Value,
    pub hash: String,
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EmulatedFile {
    pub id: String,
    pub filename: String,
    pub title: Option<String>,
    #[serde(skip)]
    pub bytes: Vec<u8>,
    pub shared_to: Vec<String>,
}

/// One request to the emulator, as received and as answered.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedCall {
    pub method: String,
    pub params: Value,
    pub token: Option<String>,
    pub http_status: u16,
    pub response: Value,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub enum FaultKind {
    /// An HTTP status (500, 503…) with a short body.
    Http(u16),
    /// `ok: false` with this error code.
    Error(String),
    RateLimited {
        retry_after_secs: u64,
    },
    /// Wait, then answer normally.
    Delay(Duration),
    /// Close the connection without any HTTP response.
    DropConnection,
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub method: Option<String>,
    /// A user or channel id found in the call's `channel`, `user`, `users` or `user_id`.
    pub target: Option<String>,
    pub kind: FaultKind,
    /// How many calls it hits; `None` until cleared.
    pub times: Option<u32>,
}

#[derive(Debug, Default)]
pub(crate) struct Channel {
    pub bot_is_member: bool,
}

pub(crate) struct World {
    pub config: EmulatorConfig,
    /// token → team id
    pub tokens: HashMap<String, String>,
    pub users: BTreeMap<String, EmulatedUser>,
    pub usergroups: HashMap<String, Vec<String>>,
    pub channels: HashMap<String, Channel>,
    pub messages: Vec<EmulatedMessage>,
    pub views: Vec<EmulatedView>,
    pub files: Vec<EmulatedFile>,
    pub triggers: HashMap<String, (Instant, bool)>,
    pub oauth_codes: HashMap<String, (String, String, bool)>,
    pub oauth_client: Option<(String, String)>,
    pub faults: Vec<Fault>,
    pub calls: Vec<RecordedCall>,
    pub limiter: rate_limit::Limiter,
    pub counter: u64,
    pub base_ts: i64,
    pub addr: SocketAddr,
}

impl World {
    pub fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}{:08X}", self.counter)
    }

    /// Message timestamps: `<seconds>.<6 digits>`, strictly increasing.
    pub fn next_ts(&mut self) -> String {
        self.counter += 1;
        let now = Utc::now().timestamp().max(self.base_ts);
        self.base_ts = now;
        format!("{now}.{:06}", self.counter % 1_000_000)
    }
}

/// The DM channel between the bot and a user: deterministic, so tests can predict it.
pub fn dm_channel_id(user_id: &str) -> String {
    format!("D{}", user_id.trim_start_matches(['U', 'W']))
}

#[derive(Clone)]
pub struct Emulator {
    world: Arc<Mutex<World>>,
    addr: SocketAddr,
    stop: Arc<watch::Sender<bool>>,
}

impl Emulator {
    /// Binds 127.0.0.1 on a free port and serves in the background.
    pub async fn start(config: EmulatorConfig) -> std::io::Result<Emulator> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut tokens = HashMap::new();
        tokens.insert(config.bot_token.clone(), config.team_id.clone());
        let limits = config.limits.clone();
        let world = Arc::new(Mutex::new(World {
            config,
            tokens,
            users: BTreeMap::new(),
            usergroups: HashMap::new(),
            channels: HashMap::new(),
            messages: Vec::new(),
            views: Vec::new(),
            files: Vec::new(),
            triggers: HashMap::new(),
            oauth_codes: HashMap::new(),
            oauth_client: None,
            faults: Vec::new(),
            calls: Vec::new(),
            limiter: rate_limit::Limiter::new(limits),
            counter: 0,
            base_ts: Utc::now().timestamp(),
            addr,
        }));
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(server::serve(listener, world.clone(), stop_rx));
        Ok(Emulator {
            world,
            addr,
            stop: Arc::new(stop),
        })
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    pub fn config(&self) -> EmulatorConfig {
        self.world().config.clone()
    }

    pub fn add_user(&self, user: EmulatedUser) {
        self.world().users.insert(user.id.clone(), user);
    }

    pub fn users(&self) -> Vec<EmulatedUser> {
        self.world().users.values().cloned().collect()
    }

    pub fn set_user_status(&self, user_id: &str, text: &str, emoji: &str) {
        if let Some(u) = self.world().users.get_mut(user_id) {
            u.status_text = text.to_string();
            u.status_emoji = emoji.to_string();
        }
    }

    pub fn set_user_deleted(&self, user_id: &str, deleted: bool) {
        if let Some(u) = self.world().users.get_mut(user_id) {
            u.deleted = deleted;
        }
    }

    pub fn set_usergroup(&self, group_id: &str, members: &[&str]) {
        self.world().usergroups.insert(
            group_id.to_string(),
            members.iter().map(|m| m.to_string()).collect(),
        );
    }

    /// A channel (C…/G…); `_name` is for readability at call sites only.
    pub fn add_channel(&self, channel_id: &str, _name: &str, bot_is_member: bool) {
        self.world()
            .channels
            .insert(channel_id.to_string(), Channel { bot_is_member });
    }

    pub fn set_limits(&self, limits: RateLimits) {
        self.world().limiter = rate_limit::Limiter::new(limits);
    }

    pub fn inject(&self, fault: Fault) {
        self.world().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.world().faults.clear();
    }

    pub fn calls(&self) -> Vec<RecordedCall> {
        self.world().calls.clone()
    }

    pub fn calls_to(&self, method: &str) -> Vec<RecordedCall> {
        self.world()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    pub fn messages(&self) -> Vec<EmulatedMessage> {
        self.world().messages.clone()
    }

    /// Messages in a user's DM with the bot (thread replies included), oldest first.
    pub fn dm_messages(&self, user_id: &str) -> Vec<EmulatedMessage> {
        let channel = dm_channel_id(user_id);
        self.world()
            .messages
            .iter()
            .filter(|m| m.channel == channel)
            .cloned()
            .collect()
    }

    pub fn views(&self) -> Vec<EmulatedView> {
        self.world().views.clone()
    }

    pub fn files(&self) -> Vec<EmulatedFile> {
        self.world().files.clone()
    }

    pub fn dm_channel_for(&self, user_id: &str) -> String {
        dm_channel_id(user_id)
    }

    /// A `trigger_id` as Slack puts in interactions: single use, valid for 3 seconds.
    pub fn issue_trigger_id(&self) -> String {
        let mut w = self.world();
        let id = format!(
            "{}.{}.{}",
            w.counter + 1,
            fastrand::u64(..),
            fastrand::u32(..)
        );
        w.counter += 1;
        w.triggers.insert(id.clone(), (Instant::now(), false));
        id
    }

    pub fn issue_oauth_code(&self, team_id: &str, team_name: &str) -> String {
        let mut w = self.world();
        let code = w.next_id("code-");
        w.oauth_codes.insert(
            code.clone(),
            (team_id.to_string(), team_name.to_string(), false),
        );
        code
    }

    pub fn set_oauth_client(&self, client_id: &str, client_secret: &str) {
        self.world().oauth_client = Some((client_id.to_string(), client_secret.to_string()));
    }

    pub fn peer(&self, bot_base_url: &str, signing_secret: &str) -> SlackPeer {
        SlackPeer::new(self.clone(), bot_base_url, signing_secret)
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
    }
}
