//! Server settings: `config/pulseloop.toml`, then the environment variables the product
//! contract names (the environment wins). Secrets are `SecretString`s, so they never reach a
//! log line or a `Debug` print.

use secrecy::SecretString;
use serde::Deserialize;
use std::path::{Path, PathBuf};

use super::ConfigError;

pub const SETTINGS_FILE: &str = "pulseloop.toml";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/pulseloop.db";
pub const DEFAULT_SLACK_API_BASE_URL: &str = "https://slack.com/api";
pub const DEFAULT_BIND: &str = "127.0.0.1:3000";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Folder holding `pulseloop.toml` and `programs/`; not read from the file itself.
    #[serde(skip)]
    pub config_dir: PathBuf,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub slack: SlackSettings,
    pub outbox: OutboxSettings,
    pub scheduler: SchedulerSettings,
    pub admin: AdminSettings,
    /// Which environment variable set a field (`database.url` → `DATABASE_URL`), so an error
    /// names the source of the bad value, not the file it did not come from.
    #[serde(skip)]
    pub from_env: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: String,
    /// Larger request bodies get 413 before anything reads them.
    pub max_body_bytes: usize,
    /// How long graceful shutdown waits for in-flight work (open connections included;
    /// what is left after it is closed).
    pub shutdown_grace_seconds: u64,
    /// A client must send its request headers within this time.
    pub header_read_timeout_seconds: u64,
    /// A request (its body included) must be handled within this time, else 408.
    pub request_timeout_seconds: u64,
    /// Requests handled at once; more get 503 with Retry-After.
    pub max_concurrent_requests: usize,
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// May hold a password: print it with [`redact_url`], never as is.
    pub url: String,
    pub max_connections: u32,
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// A database URL without its password (in the user-info part or a `password=` parameter),
/// for messages, logs and `Debug`. A URL that does not parse shows only its scheme.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return match url.split_once(':') {
            Some((scheme, _)) => format!("{scheme}:<a URL that does not parse>"),
            None => "<a URL that does not parse>".to_string(),
        };
    };
    if parsed.password().is_some() {
        // Fails only for URLs without a host, which have no user-info to hide.
        let _ = parsed.set_password(Some("***"));
    }
    if let Some(query) = parsed.query() {
        let redacted: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        parsed.set_query(Some(&redacted.join("&")));
    }
    parsed.to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackSettings {
    pub api_base_url: String,
    pub bot_token: Option<SecretString>,
    pub signing_secret: Option<SecretString>,
    /// Workspace-wide ceiling for chat.postMessage (Slack does not publish one).
    pub max_posts_per_minute: u32,
    /// Slack allows about one message per second per channel.
    pub posts_per_second_per_channel: f64,
    pub request_timeout_seconds: u64,
    /// OAuth v2 install (`GET /slack/install`): the app's client id and secret
    /// (`SLACK_CLIENT_ID`, `SLACK_CLIENT_SECRET`). Both unset: installing is off.
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    /// Slack's authorize page (`SLACK_OAUTH_AUTHORIZE_URL`); unset: derived from
    /// `api_base_url` (`https://slack.com/api` → `https://slack.com/oauth/v2/authorize`).
    pub oauth_authorize_url: Option<String>,
    /// The callback registered with Slack (`SLACK_REDIRECT_URL`, e.g.
    /// `https://pulse.example.com/slack/oauth/callback`); unset: built from the request's Host
    /// (http for loopback hosts, https otherwise).
    pub redirect_url: Option<String>,
    /// An app-level token (`xapp-…`, scope `connections:write`): Slack's requests then come
    /// over a WebSocket (Socket Mode, docs/socket-mode.md) instead of to `/slack/*`.
    pub app_token: Option<SecretString>,
    /// Socket Mode: a ping is sent this often; Slack's frames (pongs included) must keep
    /// arriving within `socket_read_timeout_seconds`, else the connection is replaced.
    pub socket_ping_seconds: u64,
    pub socket_read_timeout_seconds: u64,
    /// Socket Mode: `/readyz` stays 200 while the connection is down for at most this long
    /// (a reconnect); longer, or before the first connection, it answers 503.
    pub socket_ready_grace_seconds: u64,
    /// Set at start when `serve` runs against the built-in sandbox (never read from a file).
    #[serde(skip)]
    pub sandbox: bool,
}

/// Which Slack setup `serve` runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlackMode {
    /// `SLACK_BOT_TOKEN` is set: its workspace is the default installation, serving any
    /// workspace without an installation of its own (and OAuth installs, if configured).
    DefaultInstallation,
    /// No bot token, OAuth configured: only workspaces installed with OAuth are served.
    OAuthOnly,
    /// Neither: the built-in sandbox Slack on this machine.
    Sandbox,
}

impl SlackMode {
    /// How the start log and `check-config` name the mode.
    pub fn describe(self) -> &'static str {
        match self {
            SlackMode::DefaultInstallation => {
                "default installation (SLACK_BOT_TOKEN), plus any workspace installed with OAuth"
            }
            SlackMode::OAuthOnly => {
                "OAuth-only: workspaces installed through /slack/install, no default installation"
            }
            SlackMode::Sandbox => "sandbox: the built-in Slack emulator, nothing reaches Slack",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxSettings {
    /// Concurrent delivery workers in this process; 0 disables them (tests drive them by hand).
    pub workers: usize,
    pub batch_size: u32,
    /// Transient failures (5xx, timeouts) before a message is failed for good.
    pub max_attempts: u32,
    /// A claimed row whose lease runs out (its process died) is claimed again.
    pub lease_seconds: u64,
    pub poll_interval_ms: u64,
    pub backoff_base_ms: u64,
    pub backoff_max_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerSettings {
    pub enabled: bool,
    pub tick_seconds: u64,
    /// Member details from users.info are refreshed when older than this.
    pub profile_refresh_hours: u64,
    /// PostgreSQL: how often each replica compares the stored run-time edits, to catch an
    /// edit whose notification it missed (docs/config-precedence.md, "Replicas").
    pub config_check_seconds: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    pub token: Option<SecretString>,
    pub encryption_key: Option<SecretString>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            config_dir: PathBuf::from("config"),
            server: ServerSettings::default(),
            database: DatabaseSettings::default(),
            slack: SlackSettings::default(),
            outbox: OutboxSettings::default(),
            scheduler: SchedulerSettings::default(),
            admin: AdminSettings::default(),
            from_env: Default::default(),
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: DEFAULT_BIND.into(),
            max_body_bytes: 256 * 1024,
            shutdown_grace_seconds: 20,
            header_read_timeout_seconds: 5,
            request_timeout_seconds: 10,
            max_concurrent_requests: 128,
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: DEFAULT_DATABASE_URL.into(),
            max_connections: 10,
        }
    }
}

impl Default for SlackSettings {
    fn default() -> Self {
        Self {
            api_base_url: DEFAULT_SLACK_API_BASE_URL.into(),
            bot_token: None,
            signing_secret: None,
            max_posts_per_minute: 600,
            posts_per_second_per_channel: 1.0,
            request_timeout_seconds: 10,
            client_id: None,
            client_secret: None,
            oauth_authorize_url: None,
            redirect_url: None,
            app_token: None,
            socket_ping_seconds: 10,
            socket_read_timeout_seconds: 30,
            socket_ready_grace_seconds: 30,
            sandbox: false,
        }
    }
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            workers: 2,
            batch_size: 8,
            max_attempts: 8,
            lease_seconds: 60,
            poll_interval_ms: 250,
            backoff_base_ms: 1000,
            backoff_max_seconds: 600,
        }
    }
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            tick_seconds: 30,
            profile_refresh_hours: 24,
            config_check_seconds: 30,
        }
    }
}

impl Settings {
    /// Reads `<config_dir>/pulseloop.toml` (optional) and applies the environment over it.
    /// `env` is a lookup so tests can pass a map instead of touching the process environment.
    pub fn load(
        config_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let path = config_dir.join(SETTINGS_FILE);
        let mut settings = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str::<Settings>(&text)
                .map_err(|e| ConfigError::from_toml(&path, &text, &e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Settings::default(),
            Err(e) => return Err(ConfigError::io(&path, &e)),
        };
        settings.config_dir = config_dir.to_path_buf();
        settings.apply_env(env);
        settings.validate(&path)?;
        Ok(settings)
    }

    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let secret = |name: &str| get(name).map(SecretString::from);
        for (var, field) in [
            ("DATABASE_URL", "database.url"),
            ("SLACK_API_BASE_URL", "slack.api_base_url"),
            ("PULSELOOP_BIND", "server.bind"),
            ("SLACK_APP_TOKEN", "slack.app_token"),
        ] {
            if get(var).is_some() {
                self.from_env.insert(field.to_string(), var.to_string());
            }
        }
        if let Some(v) = get("DATABASE_URL") {
            self.database.url = v;
        }
        if let Some(v) = secret("SLACK_BOT_TOKEN") {
            self.slack.bot_token = Some(v);
        }
        if let Some(v) = secret("SLACK_APP_TOKEN") {
            self.slack.app_token = Some(v);
        }
        if let Some(v) = secret("SLACK_SIGNING_SECRET") {
            self.slack.signing_secret = Some(v);
        }
        if let Some(v) = get("SLACK_API_BASE_URL") {
            self.slack.api_base_url = v;
        }
        if let Some(v) = get("SLACK_CLIENT_ID") {
            self.slack.client_id = Some(v);
        }
        if let Some(v) = secret("SLACK_CLIENT_SECRET") {
            self.slack.client_secret = Some(v);
        }
        if let Some(v) = get("SLACK_OAUTH_AUTHORIZE_URL") {
            self.slack.oauth_authorize_url = Some(v);
        }
        if let Some(v) = get("SLACK_REDIRECT_URL") {
            self.slack.redirect_url = Some(v);
        }
        if let Some(v) = get("PULSELOOP_BIND") {
            self.server.bind = v;
        }
        if let Some(v) = secret("PULSELOOP_ADMIN_TOKEN") {
            self.admin.token = Some(v);
        }
        if let Some(v) = secret("PULSELOOP_ENCRYPTION_KEY") {
            self.admin.encryption_key = Some(v);
        }
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        // A value from the environment is blamed on its variable, not on the file.
        let field = |f: &str, msg: String| {
            Err(match self.from_env.get(f) {
                Some(var) => {
                    ConfigError::field(Path::new(&format!("environment variable {var}")), f, msg)
                }
                None => ConfigError::field(path, f, msg),
            })
        };
        if !is_bind_address(&self.server.bind) {
            return field(
                "server.bind",
                format!(
                    "'{}' is not an address like 127.0.0.1:3000 or localhost:3000",
                    self.server.bind
                ),
            );
        }
        if self.server.header_read_timeout_seconds == 0
            || self.server.request_timeout_seconds == 0
            || self.server.max_concurrent_requests == 0
        {
            return field(
                "server",
                "header_read_timeout_seconds, request_timeout_seconds and max_concurrent_requests must be at least 1".to_string(),
            );
        }
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return field(
                "database.url",
                format!(
                    "must start with sqlite: or postgres://, not '{}'",
                    redact_url(url)
                ),
            );
        }
        if !(self.slack.api_base_url.starts_with("http://")
            || self.slack.api_base_url.starts_with("https://"))
        {
            return field("slack.api_base_url", "must be an http(s) URL".to_string());
        }
        if let Some(token) = &self.slack.app_token {
            use secrecy::ExposeSecret;
            if !token.expose_secret().starts_with("xapp-") {
                return field(
                    "slack.app_token",
                    "must be an app-level token starting with xapp- (Basic Information → App-Level Tokens, scope connections:write); a bot token (xoxb-) goes in SLACK_BOT_TOKEN".to_string(),
                );
            }
        }
        if self.slack.socket_ping_seconds == 0
            || self.slack.socket_read_timeout_seconds <= self.slack.socket_ping_seconds
        {
            return field(
                "slack.socket_read_timeout_seconds",
                "socket_ping_seconds must be at least 1 and socket_read_timeout_seconds longer than it".to_string(),
            );
        }
        if self.slack.max_posts_per_minute == 0 {
            return field(
                "slack.max_posts_per_minute",
                "must be at least 1".to_string(),
            );
        }
        if self.slack.posts_per_second_per_channel <= 0.0 {
            return field(
                "slack.posts_per_second_per_channel",
                "must be greater than 0".to_string(),
            );
        }
        if self.outbox.max_attempts == 0 || self.outbox.batch_size == 0 {
            return field(
                "outbox",
                "max_attempts and batch_size must be at least 1".to_string(),
            );
        }
        if self.scheduler.tick_seconds == 0 {
            return field("scheduler.tick_seconds", "must be at least 1".to_string());
        }
        if self.scheduler.config_check_seconds == 0 {
            return field(
                "scheduler.config_check_seconds",
                "must be at least 1".to_string(),
            );
        }
        if let Some(message) = self.half_configured_oauth() {
            return Err(ConfigError::field(Path::new("settings"), "slack", message));
        }
        Ok(())
    }

    /// True when the listen address is a loopback one (127.0.0.1, ::1, localhost).
    pub fn binds_loopback(&self) -> bool {
        bind_is_loopback(&self.server.bind)
    }

    /// Which Slack setup `serve` runs with (docs/install.md, "Three modes").
    pub fn slack_mode(&self) -> SlackMode {
        if self.slack.bot_token.is_some() {
            SlackMode::DefaultInstallation
        } else if self.oauth_configured() {
            SlackMode::OAuthOnly
        } else {
            SlackMode::Sandbox
        }
    }

    /// True when no bot token and no OAuth app is configured: `serve` then runs against the
    /// built-in sandbox.
    pub fn is_sandbox(&self) -> bool {
        self.slack_mode() == SlackMode::Sandbox
    }

    /// True when workspaces are served only through their OAuth installations (no
    /// `SLACK_BOT_TOKEN`, OAuth configured): there is no default installation.
    pub fn oauth_only(&self) -> bool {
        self.slack_mode() == SlackMode::OAuthOnly
    }

    /// OAuth install is fully configured: client id, client secret and the encryption key.
    pub fn oauth_configured(&self) -> bool {
        self.slack.client_id.is_some()
            && self.slack.client_secret.is_some()
            && self.admin.encryption_key.is_some()
    }

    /// Without a bot token, OAuth set up in part (a client id or secret, but not the id, the
    /// secret and the key together) is a mistake: refused, naming what is missing. With a bot
    /// token it is not (installing answers 503 until it is complete, docs/install.md).
    fn half_configured_oauth(&self) -> Option<String> {
        if self.slack.bot_token.is_some()
            || (self.slack.client_id.is_none() && self.slack.client_secret.is_none())
            || self.oauth_configured()
        {
            return None;
        }
        let missing: Vec<&str> = [
            (self.slack.client_id.is_none(), "SLACK_CLIENT_ID"),
            (self.slack.client_secret.is_none(), "SLACK_CLIENT_SECRET"),
            (
                self.admin.encryption_key.is_none(),
                "PULSELOOP_ENCRYPTION_KEY",
            ),
        ]
        .into_iter()
        .filter_map(|(missing, name)| missing.then_some(name))
        .collect();
        Some(format!(
            "OAuth is only half configured: {} {} not set. Without SLACK_BOT_TOKEN pulseloop \
             serves only workspaces installed with OAuth, which needs SLACK_CLIENT_ID, \
             SLACK_CLIENT_SECRET and PULSELOOP_ENCRYPTION_KEY together (or set SLACK_BOT_TOKEN \
             for one workspace; or none of them for the sandbox)",
            missing.join(" and "),
            if missing.len() == 1 { "is" } else { "are" }
        ))
    }

    /// True when an app-level token is set: Slack's requests come over Socket Mode.
    pub fn socket_mode(&self) -> bool {
        self.slack.app_token.is_some()
    }

    pub fn programs_dir(&self) -> PathBuf {
        self.config_dir.join("programs")
    }

    /// Slack's OAuth authorize page: `slack.oauth_authorize_url`, else the API base without
    /// its `/api` and with `/oauth/v2/authorize` (the emulator serves it there too).
    pub fn oauth_authorize_url(&self) -> String {
        if let Some(url) = &self.slack.oauth_authorize_url {
            return url.clone();
        }
        let base = self.slack.api_base_url.trim_end_matches('/');
        let base = base.strip_suffix("/api").unwrap_or(base);
        format!("{base}/oauth/v2/authorize")
    }
}

/// `IP:PORT`, `[IPv6]:PORT` or `localhost:PORT`: what `server.bind` accepts (no other host
/// names: a bind address must not depend on DNS).
pub fn is_bind_address(bind: &str) -> bool {
    bind.parse::<std::net::SocketAddr>().is_ok()
        || bind
            .strip_prefix("localhost:")
            .is_some_and(|port| port.parse::<u16>().is_ok())
}

/// A bind address only this machine can reach.
pub fn bind_is_loopback(bind: &str) -> bool {
    match bind.parse::<std::net::SocketAddr>() {
        Ok(addr) => addr.ip().is_loopback(),
        Err(_) => bind.starts_with("localhost:"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn environment_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(SETTINGS_FILE),
            "[server]\nbind = \"127.0.0.1:4000\"\n[database]\nurl = \"sqlite://x.db\"\n",
        )
        .unwrap();
        let s = Settings::load(
            dir.path(),
            &env_of(&[
                ("DATABASE_URL", "postgres://h/db"),
                ("SLACK_BOT_TOKEN", "xoxb-1"),
            ]),
        )
        .unwrap();
        assert_eq!(s.server.bind, "127.0.0.1:4000");
        assert_eq!(s.database.url, "postgres://h/db");
        assert_eq!(
            s.slack.bot_token.as_ref().unwrap().expose_secret(),
            "xoxb-1"
        );
        assert!(!s.is_sandbox());
    }

    #[test]
    fn the_slack_mode_follows_what_is_configured_and_half_oauth_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let load = |pairs: &[(&str, &str)]| Settings::load(dir.path(), &env_of(pairs));
        let oauth = [
            ("SLACK_CLIENT_ID", "1.2"),
            ("SLACK_CLIENT_SECRET", "s3cret-client"),
            ("PULSELOOP_ENCRYPTION_KEY", "k"),
        ];
        assert_eq!(load(&[]).unwrap().slack_mode(), SlackMode::Sandbox);
        assert_eq!(load(&oauth).unwrap().slack_mode(), SlackMode::OAuthOnly);
        let mut with_bot = oauth.to_vec();
        with_bot.push(("SLACK_BOT_TOKEN", "xoxb-1"));
        assert_eq!(
            load(&with_bot).unwrap().slack_mode(),
            SlackMode::DefaultInstallation
        );
        // Half configured without a bot token: refused, naming what is missing.
        let e = load(&oauth[..2]).unwrap_err().to_string();
        assert!(
            e.contains("OAuth is only half configured: PULSELOOP_ENCRYPTION_KEY is not set"),
            "{e}"
        );
        assert!(!e.contains("s3cret-client"), "{e}");
        let e = load(&oauth[1..]).unwrap_err().to_string();
        assert!(e.contains("SLACK_CLIENT_ID is not set"), "{e}");
        // The key alone is the relay's secret, not OAuth: still the sandbox.
        assert_eq!(load(&oauth[2..]).unwrap().slack_mode(), SlackMode::Sandbox);
        // With a bot token, partial OAuth only leaves installing off (as before).
        let partial = [("SLACK_BOT_TOKEN", "xoxb-1"), ("SLACK_CLIENT_ID", "1.2")];
        assert_eq!(
            load(&partial).unwrap().slack_mode(),
            SlackMode::DefaultInstallation
        );
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings::load(
            dir.path(),
            &env_of(&[
                ("SLACK_SIGNING_SECRET", "hunter2-signing"),
                ("PULSELOOP_ADMIN_TOKEN", "adm1n"),
            ]),
        )
        .unwrap();
        let printed = format!("{s:?}");
        assert!(!printed.contains("hunter2-signing"));
        assert!(!printed.contains("adm1n"));
    }

    #[test]
    fn a_database_password_never_shows_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings::load(
            dir.path(),
            &env_of(&[(
                "DATABASE_URL",
                "postgres://pulse:s3cr3t-pw@db.internal:5432/pulse?sslmode=require&password=other-pw",
            )]),
        )
        .unwrap();
        let printed = format!("{s:?}");
        assert!(!printed.contains("s3cr3t-pw"), "{printed}");
        assert!(!printed.contains("other-pw"), "{printed}");
        assert!(
            printed.contains("pulse:***@db.internal:5432/pulse"),
            "{printed}"
        );
        assert_eq!(
            redact_url("sqlite://data/p.db"),
            "sqlite://data/p.db",
            "nothing to hide"
        );
        assert_eq!(
            redact_url("postgres://u@h/db"),
            "postgres://u@h/db",
            "a user without a password"
        );
    }

    #[test]
    fn an_at_sign_in_the_password_is_hidden_too() {
        let printed = redact_url("postgres://pulse:p@ss:w@rd@db.internal/pulse");
        assert_eq!(printed, "postgres://pulse:***@db.internal/pulse");
        assert!(!printed.contains("rd@"), "{printed}");
    }

    #[test]
    fn a_url_without_a_password_is_unchanged() {
        for url in [
            "postgres://pulse@db.internal:5432/pulse?sslmode=require",
            "postgres://db.internal/pulse",
            "sqlite::memory:",
            "sqlite:data/pulseloop.db",
        ] {
            assert_eq!(redact_url(url), url);
        }
        assert_eq!(
            redact_url("postgres://h/db?user=u&PASSWORD=pw"),
            "postgres://h/db?user=u&PASSWORD=***"
        );
    }

    #[test]
    fn a_url_that_does_not_parse_shows_only_its_scheme() {
        assert_eq!(
            redact_url("postgres://u:pw@h:notaport/db"),
            "postgres:<a URL that does not parse>"
        );
    }

    #[test]
    fn unknown_keys_are_reported_with_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SETTINGS_FILE), "[server]\nbnd = \"x\"\n").unwrap();
        let err = Settings::load(dir.path(), &env_of(&[])).unwrap_err();
        let line = err.to_string();
        assert!(line.contains("pulseloop.toml"), "{line}");
        assert!(line.contains("bnd"), "{line}");
    }
}
