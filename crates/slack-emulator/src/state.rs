//! The emulated workspace's state behind one mutex. Every request takes the lock briefly
//! (never across an `.await`), so calls see a consistent world and are recorded in order.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::directory::Directory;
use super::faults::Faults;
use super::model::{
    EmulatedFile, EmulatedMessage, EmulatedUser, EmulatedView, EmulatorConfig, RecordedCall,
};
use super::rate_limit::Limiter;

/// Slack's trigger_id lifetime.
pub(crate) const TRIGGER_TTL: Duration = Duration::from_secs(3);
/// How long an OAuth code stays exchangeable (about 10 minutes at Slack).
pub(crate) const OAUTH_CODE_TTL: Duration = Duration::from_secs(600);

/// A workspace installation a token belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Install {
    pub team_id: String,
    pub team_name: String,
    pub bot_user_id: String,
    pub bot_id: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Trigger {
    pub issued: Instant,
    pub used: bool,
    /// The user whose click produced it; views opened with it belong to them.
    pub user: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct OAuthCode {
    pub team_id: String,
    pub team_name: String,
    pub issued: Instant,
    pub used: bool,
    /// The `redirect_uri` the authorize page was given: oauth.v2.access must name the same
    /// one (`bad_redirect_uri`). `None` for codes made through the control API.
    pub redirect_uri: Option<String>,
    /// The bot scopes asked for on the authorize page (comma-separated); `None`: the default set.
    pub scopes: Option<String>,
}

/// A file between files.getUploadURLExternal and files.completeUploadExternal.
#[derive(Debug, Clone)]
pub(crate) struct Upload {
    pub file: EmulatedFile,
    pub declared_length: u64,
    pub uploaded: bool,
    pub completed: bool,
}

/// Where a `response_url` posts to, and how often it may still be used.
#[derive(Debug, Clone)]
pub(crate) struct ResponseUrl {
    pub channel: String,
    pub message_ts: Option<String>,
    pub user: String,
    pub issued: Instant,
    pub uses: u32,
}

pub(crate) struct World {
    pub config: EmulatorConfig,
    pub addr: SocketAddr,
    pub tokens: HashMap<String, Install>,
    pub directory: Directory,
    pub messages: Vec<EmulatedMessage>,
    pub views: Vec<EmulatedView>,
    pub uploads: Vec<Upload>,
    pub triggers: HashMap<String, Trigger>,
    pub oauth_client: Option<(String, String)>,
    pub oauth_codes: HashMap<String, OAuthCode>,
    /// The redirect URL registered for the OAuth client; the authorize page refuses others.
    /// `None`: any http(s) URL.
    pub oauth_redirect_url: Option<String>,
    /// Workspaces besides the configured one that the app can be installed into (id → name).
    pub teams: BTreeMap<String, String>,
    /// Tokens revoked (uninstall, `tokens_revoked`): Slack answers `token_revoked`.
    pub revoked_tokens: BTreeSet<String>,
    pub response_urls: HashMap<String, ResponseUrl>,
    pub faults: Faults,
    pub limiter: Limiter,
    /// (arrival sequence, call): calls are listed in arrival order even if answered out of order.
    calls: Vec<(u64, RecordedCall)>,
    arrivals: u64,
    pub(crate) counter: u64,
    pub(crate) last_ts_micros: i64,
    /// Scopes per token; a token not listed has every scope.
    pub token_scopes: HashMap<String, BTreeSet<String>>,
    /// Legacy attachments of a message, by (channel, ts).
    pub attachments: HashMap<(String, String), Value>,
    /// Members as they were added (workspace file, `add_user`), before any status change:
    /// what a reset goes back to.
    pub user_baseline: BTreeMap<String, EmulatedUser>,
    /// Apps from the workspace file, for signed requests sent through the control API.
    pub apps: Vec<crate::workspace::App>,
    /// What `POST /_control/reset` also runs (the bot's own reset, e.g. its database).
    pub reset_hook: Option<ResetHook>,
    /// Keeps the state file, when there is one.
    pub persister: Option<std::sync::Arc<crate::persist::Persister>>,
    /// The bot the sandbox page sends interactions to: (base URL, signing secret).
    pub sandbox_bot: Option<(String, String)>,
    /// Where message timestamps and call times come from; the system clock when `None`.
    pub clock: Option<WorldClock>,
}

/// A reset the embedding program adds to `POST /_control/reset`.
pub type ResetHook = std::sync::Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>
        + Send
        + Sync,
>;

/// A clock the emulator can follow instead of the system's (a test's manual clock).
pub type WorldClock = std::sync::Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

impl World {
    pub fn new(config: EmulatorConfig, addr: SocketAddr) -> Self {
        let mut tokens = HashMap::new();
        tokens.insert(
            config.bot_token.clone(),
            Install {
                team_id: config.team_id.clone(),
                team_name: config.team_name.clone(),
                bot_user_id: config.bot_user_id.clone(),
                bot_id: config.bot_id.clone(),
            },
        );
        let mut directory = Directory::default();
        let bot = EmulatedUser::new(&config.bot_user_id, "America/Los_Angeles")
            .handle("pulseloop")
            .named("Pulseloop")
            .bot();
        directory.users.insert(bot.id.clone(), bot.clone());
        let mut token_scopes = HashMap::new();
        if let Some(scopes) = &config.scopes {
            token_scopes.insert(config.bot_token.clone(), scopes.iter().cloned().collect());
        }
        Self {
            limiter: Limiter::new(config.limits.clone()),
            config,
            addr,
            tokens,
            directory,
            messages: Vec::new(),
            views: Vec::new(),
            uploads: Vec::new(),
            triggers: HashMap::new(),
            oauth_client: None,
            oauth_codes: HashMap::new(),
            oauth_redirect_url: None,
            teams: BTreeMap::new(),
            revoked_tokens: BTreeSet::new(),
            response_urls: HashMap::new(),
            faults: Faults::default(),
            calls: Vec::new(),
            arrivals: 0,
            counter: 0,
            last_ts_micros: 0,
            token_scopes,
            attachments: HashMap::new(),
            user_baseline: BTreeMap::from([(bot.id.clone(), bot)]),
            apps: Vec::new(),
            reset_hook: None,
            persister: None,
            sandbox_bot: None,
            clock: None,
        }
    }

    /// The emulated workspace's current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.as_ref().map_or_else(Utc::now, |clock| clock())
    }

    /// A fresh Slack-looking id such as `V0000000001` (unique within this emulator).
    pub fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}{:010X}", self.counter)
    }

    /// A message timestamp `<epoch>.<6 digits>`: the current microsecond, strictly increasing.
    pub fn next_ts(&mut self, now: DateTime<Utc>) -> String {
        let micros = now.timestamp_micros().max(self.last_ts_micros + 1);
        self.last_ts_micros = micros;
        format!(
            "{}.{:06}",
            micros.div_euclid(1_000_000),
            micros.rem_euclid(1_000_000)
        )
    }

    /// A view hash like Slack's `156772938.1827394`.
    pub fn next_hash(&mut self, now: DateTime<Utc>) -> String {
        self.counter += 1;
        format!(
            "{}.{}{:04}",
            now.timestamp(),
            self.counter,
            fastrand::u32(..10_000)
        )
    }

    pub fn issue_trigger(&mut self, user: Option<&str>) -> String {
        self.counter += 1;
        let id = format!(
            "{}.{}.{:032x}",
            self.counter,
            fastrand::u64(1_000_000_000..10_000_000_000),
            fastrand::u128(..)
        );
        self.triggers.insert(
            id.clone(),
            Trigger {
                issued: Instant::now(),
                used: false,
                user: user.map(str::to_string),
            },
        );
        id
    }

    /// Claims a slot in the call log at arrival time.
    pub fn arrive(&mut self) -> u64 {
        self.arrivals += 1;
        self.arrivals
    }

    pub fn record(&mut self, seq: u64, call: RecordedCall) {
        let at = self.calls.partition_point(|(s, _)| *s < seq);
        self.calls.insert(at, (seq, call));
    }

    pub fn calls(&self) -> impl Iterator<Item = &RecordedCall> {
        self.calls.iter().map(|(_, c)| c)
    }

    pub fn clear_calls(&mut self) {
        self.calls.clear();
    }

    /// Adds (or replaces) a member, also as the state a reset returns to.
    /// A member added again as before (at the next start) keeps the state it had.
    pub fn add_user(&mut self, user: EmulatedUser) {
        let known = crate::persist::keeps_state(&self.user_baseline, &user)
            && self.directory.users.contains_key(&user.id);
        self.user_baseline.insert(user.id.clone(), user.clone());
        if !known {
            self.directory.users.insert(user.id.clone(), user);
        }
    }

    /// Empties what happened in the workspace (messages, views, files, calls, triggers, open
    /// DMs, faults) and puts every member back as added. The directory itself (members,
    /// channels, groups, apps, tokens) stays.
    pub fn reset(&mut self) {
        self.messages.clear();
        self.views.clear();
        self.uploads.clear();
        self.attachments.clear();
        self.triggers.clear();
        self.oauth_codes.clear();
        self.response_urls.clear();
        self.faults.clear();
        self.calls.clear();
        self.directory.open_dms.clear();
        self.directory.users = self.user_baseline.clone();
        self.limiter = Limiter::new(self.config.limits.clone());
    }

    /// The message (not ephemeral) at `ts` in `channel`.
    pub fn message_mut(&mut self, channel: &str, ts: &str) -> Option<&mut EmulatedMessage> {
        self.messages
            .iter_mut()
            .find(|m| m.channel == channel && m.ts == ts && m.ephemeral_for.is_none())
    }

    pub fn base_http(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn file_json(&self, upload: &Upload, now: DateTime<Utc>) -> Value {
        let f = &upload.file;
        let base = self.base_http();
        serde_json::json!({
            "id": f.id, "created": now.timestamp(), "timestamp": now.timestamp(),
            "name": f.filename, "title": f.title.clone().unwrap_or_else(|| f.filename.clone()),
            "mimetype": "", "filetype": "", "pretty_type": "",
            "user": self.config.bot_user_id, "user_team": self.config.team_id,
            "editable": false, "size": f.bytes.len(), "mode": "hosted", "is_external": false,
            "external_type": "", "is_public": false, "public_url_shared": false,
            "display_as_bot": false, "username": "",
            "url_private": format!("{base}/files-pri/{}/{}", f.id, f.filename),
            "url_private_download": format!("{base}/files-pri/{}/download/{}", f.id, f.filename),
            "media_display_type": "unknown",
            "permalink": format!("{base}/files/{}/{}", f.id, f.filename),
            "comments_count": 0, "is_starred": false, "shares": {},
            "channels": f.shared_to.iter().filter(|c| !c.starts_with('D')).collect::<Vec<_>>(),
            "groups": [],
            "ims": f.shared_to.iter().filter(|c| c.starts_with('D')).collect::<Vec<_>>(),
            "has_more_shares": false, "has_rich_preview": false, "file_access": "visible",
        })
    }
}

/// What the server tasks and every [`super::Emulator`] handle share.
pub(crate) struct Shared {
    world: Mutex<World>,
    pub addr: SocketAddr,
    /// Socket Mode's connections and envelopes (its own lock).
    pub socket: crate::socket::SocketMode,
}

impl Shared {
    pub fn new(world: World) -> Self {
        let addr = world.addr;
        Self {
            world: Mutex::new(world),
            addr,
            socket: Default::default(),
        }
    }

    /// The world, even if a panicking test thread poisoned the lock.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn config(&self) -> EmulatorConfig {
        self.world().config.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn world() -> World {
        World::new(
            EmulatorConfig::default(),
            "127.0.0.1:1".parse().expect("addr"),
        )
    }

    #[test]
    fn message_timestamps_are_strictly_increasing_even_at_the_same_instant() {
        let mut w = world();
        let now = Utc
            .timestamp_opt(1_800_000_000, 0)
            .single()
            .expect("instant");
        let a = w.next_ts(now);
        let b = w.next_ts(now);
        assert_eq!(a, "1800000000.000000");
        assert_eq!(b, "1800000000.000001");
    }

    #[test]
    fn calls_are_listed_in_arrival_order() {
        let mut w = world();
        let first = w.arrive();
        let second = w.arrive();
        let call = |m: &str| RecordedCall {
            method: m.into(),
            params: Value::Null,
            token: None,
            http_status: 200,
            response: Value::Null,
            at: Utc::now(),
        };
        w.record(second, call("b"));
        w.record(first, call("a"));
        let order: Vec<_> = w.calls().map(|c| c.method.clone()).collect();
        assert_eq!(order, ["a", "b"]);
    }
}
