//! A local Slack Web API: a real HTTP server on 127.0.0.1 that the tests and the sandbox talk
//! to instead of slack.com. It checks bearer tokens, enforces Slack's rate limits with `429` +
//! `Retry-After`, validates Block Kit like Slack, answers in Slack's shapes (HTTP 200 with
//! `{"ok": false, "error": …}`), injects faults (down to dropped connections) and records
//! every call. [`SlackPeer`] plays Slack's other side: signed events, interactions and slash
//! commands to the bot.
//!
//! The tour:
//! - `model`: the public data (config, users, messages, views, files, recorded calls);
//! - `state`: the world behind one mutex, id and timestamp generation;
//! - `server`: accept loop, router and the per-call pipeline;
//! - `params`: query/form/JSON parameter decoding;
//! - `methods/`: one module per Web API family;
//! - `blocks`: Block Kit validation; `rate_limit`: tiers and buckets; `faults`: injection;
//! - `directory` (+ `tz`): users, groups, channels, DMs;
//! - `uploads`, `respond`: the upload URL and response_url endpoints;
//! - `peer`, `payloads`: Slack → bot requests; `sandbox`: the HTML window onto it all;
//! - `workspace`: the workspace file; `control`: the `/_control` HTTP API;
//! - `persist`: the workspace's state across restarts (`EmulatorConfig::state_file`);
//! - `socket`: Socket Mode (apps.connections.open, the WebSocket, envelopes and acks).

pub mod blocks;
mod control;
mod directory;
mod faults;
mod methods;
mod model;
mod oauth;
mod params;
mod payloads;
mod peer;
mod persist;
pub mod rate_limit;
mod respond;
mod sandbox;
mod server;
mod socket;
mod state;
mod tz;
mod uploads;
pub mod workspace;

pub use blocks::ViewKind;
pub use directory::dm_channel_id;
pub use faults::{Fault, FaultKind};
pub use model::{
    EmulatedFile, EmulatedMessage, EmulatedUser, EmulatedView, EmulatorConfig, RecordedCall,
};
pub use peer::{install_crypto_provider, PeerClock, SignOptions, SlackPeer};
pub use rate_limit::RateLimits;
pub use socket::{SocketAck, SocketDelivery, SocketEnvelope, ACK_DEADLINE};
pub use workspace::Workspace;

use chrono::{DateTime, Utc};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use state::{OAuthCode, Shared, World, TRIGGER_TTL};

/// Stops the server when the last [`Emulator`] handle goes away (or on `shutdown`).
struct Control {
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// A running emulator. Cheap to clone; every clone controls the same workspace.
#[derive(Clone)]
pub struct Emulator {
    shared: Arc<Shared>,
    control: Arc<Control>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.shared.addr)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Binds 127.0.0.1 on a free port and serves in a background task.
    pub async fn start(config: EmulatorConfig) -> std::io::Result<Emulator> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Binds `addr` (port 0: a free one) and serves in a background task. The emulator is a
    /// test double with no authentication of its sandbox page: bind it to loopback.
    pub async fn start_on(addr: SocketAddr, config: EmulatorConfig) -> std::io::Result<Emulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state_file = config.state_file.clone();
        let mut world = World::new(config, addr);
        if let Some(path) = &state_file {
            persist::load(&mut world, path);
        }
        let shared = Arc::new(Shared::new(world));
        let (stop, stop_rx) = watch::channel(false);
        let serve = server::serve(listener, server::router(shared.clone()), stop_rx.clone());
        let persister = state_file.map(|path| {
            let persister = persist::Persister::new(path, shared.clone());
            shared.world().persister = Some(persister.clone());
            persister
        });
        let task = tokio::spawn(async move {
            match persister {
                Some(p) => {
                    tokio::join!(serve, p.run(stop_rx));
                }
                None => serve.await,
            }
        });
        tracing::debug!(%addr, "emulator: listening");
        Ok(Emulator {
            shared,
            control: Arc::new(Control {
                stop,
                task: Mutex::new(Some(task)),
            }),
        })
    }

    /// Stops accepting, closes open connections and waits for the server task.
    pub async fn shutdown(self) {
        self.shared.socket.close_all();
        let _ = self.control.stop.send(true);
        let task = self
            .control
            .task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.shared.world()
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The Web API root: methods are at `{base_url}/{method}`.
    pub fn base_url(&self) -> String {
        format!("http://{}/api", self.shared.addr)
    }

    /// The sandbox page, showing what each member sees.
    pub fn sandbox_url(&self) -> String {
        format!("http://{}/", self.shared.addr)
    }

    /// Lets the sandbox page send signed interactions to the bot at `bot_base_url`.
    pub fn connect_bot(&self, bot_base_url: &str, signing_secret: &str) {
        self.world().sandbox_bot = Some((bot_base_url.to_string(), signing_secret.to_string()));
    }

    pub fn config(&self) -> EmulatorConfig {
        self.shared.config()
    }

    /// Message timestamps and call times follow `clock` instead of the system clock, so a
    /// bot on a manual clock and the emulator agree on when things happened (as the bot and
    /// Slack do in production).
    pub fn set_clock(&self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) {
        self.world().clock = Some(Arc::new(clock));
    }

    // --- the workspace ---

    /// Adds (or replaces) a member. One added again exactly as before keeps the state it had
    /// (status, deactivation) from the state file.
    pub fn add_user(&self, user: EmulatedUser) {
        self.world().add_user(user);
    }

    /// Adds a workspace file's members, channels, user groups and apps (tokens, scopes,
    /// request URLs, OAuth clients).
    pub fn load_workspace(&self, workspace: &Workspace) -> Result<(), String> {
        workspace.check()?;
        control::load_workspace(&mut self.world(), workspace);
        Ok(())
    }

    /// Runs `hook` after every reset (`POST /_control/reset` or [`Emulator::reset`]): the bot
    /// under test clears its own state there (pulseloop's sandbox empties its database).
    pub fn on_reset<F, Fut>(&self, hook: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        self.world().reset_hook = Some(Arc::new(move || Box::pin(hook())));
    }

    /// Empties the workspace's history (messages, views, files, calls, faults), puts members
    /// back as added, runs the reset hook and writes the state file.
    pub async fn reset(&self) -> Result<(), String> {
        control::reset(&self.shared).await
    }

    /// Writes the state file now (it is also written shortly after each change and at
    /// shutdown). `Ok(false)`: nothing to write, or no state file.
    pub fn flush_state(&self) -> std::io::Result<bool> {
        let persister = self.world().persister.clone();
        match persister {
            Some(p) => p.flush(true),
            None => Ok(false),
        }
    }

    /// Every member, the bot user included, ordered by id.
    pub fn users(&self) -> Vec<EmulatedUser> {
        self.world().directory.users.values().cloned().collect()
    }

    pub fn set_user_status(&self, user_id: &str, text: &str, emoji: &str) {
        if let Some(u) = self.world().directory.users.get_mut(user_id) {
            u.status_text = text.to_string();
            u.status_emoji = emoji.to_string();
        }
    }

    /// Deactivates (or reactivates) a member.
    pub fn set_user_deleted(&self, user_id: &str, deleted: bool) {
        if let Some(u) = self.world().directory.users.get_mut(user_id) {
            u.deleted = deleted;
        }
    }

    pub fn set_usergroup(&self, group_id: &str, members: &[&str]) {
        self.world().directory.usergroups.insert(
            group_id.to_string(),
            members.iter().map(|m| m.to_string()).collect(),
        );
    }

    /// A channel (`C…`/`G…`). Posting to it needs the bot to be a member.
    pub fn add_channel(&self, channel_id: &str, name: &str, bot_is_member: bool) {
        self.edit_channel(channel_id, |channel| {
            channel.name = name.to_string();
            channel.bot_is_member = bot_is_member;
        });
    }

    /// Who is in a channel (for chat.postEphemeral's `user_not_in_channel`).
    pub fn set_channel_members(&self, channel_id: &str, members: &[&str]) {
        self.edit_channel(channel_id, |channel| {
            channel.members = members.iter().map(|m| m.to_string()).collect();
        });
    }

    /// Changes a channel of the directory, created empty when it is not there yet.
    fn edit_channel(&self, channel_id: &str, edit: impl FnOnce(&mut directory::Channel)) {
        let mut w = self.world();
        edit(
            w.directory
                .channels
                .entry(channel_id.to_string())
                .or_default(),
        );
    }

    pub fn dm_channel_for(&self, user_id: &str) -> String {
        dm_channel_id(user_id)
    }

    // --- limits and faults ---

    /// Replaces the limits; every bucket starts full again.
    pub fn set_limits(&self, limits: RateLimits) {
        let mut w = self.world();
        w.config.limits = limits.clone();
        w.limiter = rate_limit::Limiter::new(limits);
    }

    pub fn inject(&self, fault: Fault) {
        self.world().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.world().faults.clear();
    }

    // --- what happened ---

    /// Every Web API request so far, in arrival order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.world().calls().cloned().collect()
    }

    /// Forgets the recorded calls.
    pub fn clear_calls(&self) {
        self.world().clear_calls();
    }

    /// The requests to one Web API method, in arrival order.
    pub fn calls_to(&self, method: &str) -> Vec<RecordedCall> {
        let mut calls = self.calls();
        calls.retain(|c| c.method == method);
        calls
    }

    /// Every message as it stands now, in posting order.
    pub fn messages(&self) -> Vec<EmulatedMessage> {
        self.world().messages.clone()
    }

    /// The messages in a user's DM with the bot (thread replies and ephemerals included).
    pub fn dm_messages(&self, user_id: &str) -> Vec<EmulatedMessage> {
        let channel = dm_channel_id(user_id);
        let mut messages = self.messages();
        messages.retain(|m| m.channel == channel);
        messages
    }

    pub fn views(&self) -> Vec<EmulatedView> {
        self.world().views.clone()
    }

    /// Files whose bytes arrived at the upload URL (completed or not).
    pub fn files(&self) -> Vec<EmulatedFile> {
        self.world()
            .uploads
            .iter()
            .filter(|u| u.uploaded)
            .map(|u| u.file.clone())
            .collect()
    }

    // --- credentials Slack would hand out ---

    /// A trigger_id as in an interaction payload: single use, valid for 3 seconds.
    pub fn issue_trigger_id(&self) -> String {
        self.world().issue_trigger(None)
    }

    /// A trigger_id from `user_id`'s click: views opened with it belong to that user.
    pub fn issue_trigger_id_for(&self, user_id: &str) -> String {
        self.world().issue_trigger(Some(user_id))
    }

    /// Ages a trigger_id past its 3 seconds, so tests need not sleep.
    pub fn expire_trigger_id(&self, trigger_id: &str) {
        if let Some(t) = self.world().triggers.get_mut(trigger_id) {
            let past = Instant::now().checked_sub(TRIGGER_TTL + Duration::from_millis(1));
            if let Some(past) = past {
                t.issued = past;
            }
        }
    }

    /// The client credentials oauth.v2.access accepts (none until this is called).
    pub fn set_oauth_client(&self, client_id: &str, client_secret: &str) {
        self.world().oauth_client = Some((client_id.to_string(), client_secret.to_string()));
    }

    /// The redirect URL registered for the OAuth client: the authorize page refuses a
    /// `redirect_uri` that does not start with it (`bad_redirect_uri`).
    pub fn set_oauth_redirect_url(&self, url: &str) {
        self.world().oauth_redirect_url = Some(url.to_string());
    }

    /// Slack's authorize page on this emulator (`…/oauth/v2/authorize`).
    pub fn oauth_authorize_url(&self) -> String {
        format!("http://{}/oauth/v2/authorize", self.addr())
    }

    /// A workspace besides the configured one that the app can be installed into (through
    /// the authorize page with `team=<id>`); its bot token comes from oauth.v2.access.
    pub fn add_team(&self, team_id: &str, team_name: &str) {
        self.world().add_team(team_id, team_name);
    }

    /// Revokes every token of `team_id` (an uninstall): calls with them get `token_revoked`.
    /// Returns how many tokens were revoked.
    pub fn revoke_team_tokens(&self, team_id: &str) -> usize {
        self.world().revoke_team(team_id)
    }

    /// A single-use code for oauth.v2.access installing the app into `team_id`.
    pub fn issue_oauth_code(&self, team_id: &str, team_name: &str) -> String {
        let mut w = self.world();
        let code = format!(
            "{}.{}.{:016x}",
            fastrand::u64(1_000_000_000..10_000_000_000),
            fastrand::u64(1_000_000_000..10_000_000_000),
            fastrand::u64(..)
        );
        w.oauth_codes.insert(
            code.clone(),
            OAuthCode {
                team_id: team_id.to_string(),
                team_name: team_name.to_string(),
                issued: Instant::now(),
                used: false,
                redirect_uri: None,
                scopes: None,
            },
        );
        code
    }

    /// Slack's side towards the bot at `bot_base_url`, signing with `signing_secret`.
    pub fn peer(&self, bot_base_url: &str, signing_secret: &str) -> SlackPeer {
        SlackPeer::new(self.shared.clone(), bot_base_url, signing_secret)
    }
}
