//! The Slack Web API client: reqwest, a base URL from configuration (slack.com in production,
//! the local emulator in tests and the sandbox), the bot token, and Slack's answers mapped to
//! typed errors.
//!
//! Every call passes the client's rate limiter; there is no way around it. Each method the
//! client knows declares its Web API name once ([`Method`]), and its tier comes from the one
//! table in `slack_facts::rate_tiers` at compile time. A call needs a [`Permit`], which only
//! the limiter hands out:
//! - the outbox asks for one without waiting ([`SlackClient::permit_now`]) and reschedules the
//!   row at the limiter's `ready_at` when refused (no attempt counted, no sleeping);
//! - the client's own methods (profile and user-group reads, views.open on a click) wait for
//!   one up to a bound ([`Patience`]): views.open never waits past 2 s, since its trigger_id is
//!   valid 3 s; background reads wait up to a minute, which paces users.list pages (Tier 2,
//!   one every 3 s after a burst of 2). Past the bound they return
//!   [`SlackError::LocallyLimited`], which callers treat like Slack's 429.
//!
//! A 429 from Slack pauses the method in the limiter for everyone until `Retry-After` ends.
//! Waits are real time but bounded, and measured from the limiter's own now, so a test's manual
//! clock that stands still never hangs a call.

/// Members per users.list page: Slack's maximum. The method is Tier 2 (a burst of 2, then one
/// every 3 s here), and the start-up reads the whole directory before the server listens, so
/// the page size decides how long a large workspace takes to start: 10,000 members are ten
/// pages (about 25 s) at 1,000, fifty (about three minutes) at 200. Pages are read straight
/// into [`SlackUser`]s, never as JSON values, so a large page costs no lasting heap (a page
/// of 1,000 as values left about 6 MB behind: `loadgen memory`). Slack may return fewer
/// than asked; the cursor carries on.
pub const USERS_LIST_PAGE: usize = 1000;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

use super::rate_limit::{RateLimitConfig, RateLimiter};
use crate::clock::{SharedClock, SystemClock};
use slack_facts::ids::{ChannelId, MessageTs, UserId};
use slack_facts::rate_tiers::{tier_of, Tier};

/// A Web API method: its name, and its rate tier from the one table, looked up once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Method {
    pub name: &'static str,
    pub tier: Tier,
}

impl Method {
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            tier: tier_of(name),
        }
    }
}

/// The methods the client calls itself (the outbox calls whatever its rows name).
pub mod methods {
    use super::Method;

    pub const AUTH_TEST: Method = Method::new("auth.test");
    pub const OAUTH_V2_ACCESS: Method = Method::new("oauth.v2.access");
    pub const USERS_INFO: Method = Method::new("users.info");
    pub const USERS_LIST: Method = Method::new("users.list");
    pub const USERGROUPS_USERS_LIST: Method = Method::new("usergroups.users.list");
    pub const CHAT_POST_MESSAGE: Method = Method::new("chat.postMessage");
    pub const VIEWS_OPEN: Method = Method::new("views.open");
    pub const VIEWS_PUSH: Method = Method::new("views.push");
    pub const VIEWS_UPDATE: Method = Method::new("views.update");
    pub const FILES_GET_UPLOAD_URL_EXTERNAL: Method = Method::new("files.getUploadURLExternal");
    pub const FILES_COMPLETE_UPLOAD_EXTERNAL: Method = Method::new("files.completeUploadExternal");
}

/// How long the client's own calls may wait for the local limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// Calls made while someone waits on a click (views.open): the trigger_id is valid 3 s.
    pub interactive: Duration,
    /// Background reads (profiles, user groups, uploads): long enough to pace Tier 2 pages
    /// and to sit out a typical `Retry-After`.
    pub background: Duration,
}

impl Default for Patience {
    fn default() -> Self {
        Self {
            interactive: Duration::from_secs(2),
            background: Duration::from_secs(60),
        }
    }
}

/// Leave from the limiter to call one method once. Only [`SlackClient`] makes them, so no
/// request leaves without one.
#[derive(Debug)]
#[must_use = "a permit is a rate-limit token already spent"]
pub struct Permit {
    method: String,
    tier: Tier,
}

/// Slack error codes worth retrying with back-off. Every other code is permanent: retrying an
/// unexplained refusal only burns rate limit, and the reason is kept for admins.
const TRANSIENT: &[&str] = &[
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "ratelimited",
];

/// How an outbox worker should treat an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Wait `Retry-After`, then try again; not a failed attempt.
    RateLimited,
    /// Retry with exponential back-off, up to the attempt limit.
    Transient,
    /// Never retry; keep the reason.
    Permanent,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SlackError {
    /// `{"ok": false, "error": code}` from Slack.
    #[error("slack error: {code}{}", details(.messages))]
    Api { code: String, messages: Vec<String> },
    /// HTTP 429; Slack says when to come back.
    #[error("rate limited: retry after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// Our own limiter held the call back longer than the caller may wait; Slack was not
    /// asked. Handled like a 429.
    #[error("held back by the local rate limit of {method} until {ready_at}")]
    LocallyLimited {
        method: String,
        ready_at: DateTime<Utc>,
    },
    /// A 5xx or other non-200 status.
    #[error("slack answered HTTP {0}")]
    Http(u16),
    /// The connection could not be made: the request never left, nothing happened at Slack.
    #[error("connection failed: {0}")]
    Connect(String),
    /// Timeout or a connection dropped after the request was sent: Slack may have acted on it.
    #[error("transport error: {0}")]
    Transport(String),
    /// A 200 whose body is not Slack's envelope.
    #[error("unreadable slack response: {0}")]
    Decode(String),
}

fn details(messages: &[String]) -> String {
    if messages.is_empty() {
        String::new()
    } else {
        format!(" ({})", messages.join("; "))
    }
}

impl SlackError {
    pub fn class(&self) -> ErrorClass {
        match self {
            SlackError::RateLimited { .. } | SlackError::LocallyLimited { .. } => {
                ErrorClass::RateLimited
            }
            SlackError::Http(_)
            | SlackError::Connect(_)
            | SlackError::Transport(_)
            | SlackError::Decode(_) => ErrorClass::Transient,
            SlackError::Api { code, .. } if TRANSIENT.contains(&code.as_str()) => {
                ErrorClass::Transient
            }
            SlackError::Api { .. } => ErrorClass::Permanent,
        }
    }

    /// Whether Slack may have carried out the call although it did not say so: a timeout, a
    /// connection dropped after sending, an unreadable answer, a 5xx, or Slack's own
    /// `internal_error`/`fatal_error`/`request_timeout` ("some aspect of the operation may have
    /// succeeded"). A post with such an outcome is looked up before it is sent again.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            SlackError::Transport(_) | SlackError::Decode(_) => true,
            SlackError::Http(status) => *status >= 500,
            SlackError::Api { code, .. } => {
                matches!(
                    code.as_str(),
                    "internal_error" | "fatal_error" | "request_timeout"
                )
            }
            SlackError::Connect(_)
            | SlackError::RateLimited { .. }
            | SlackError::LocallyLimited { .. } => false,
        }
    }

    /// The Slack error code, or a short label for non-API failures (metrics, stored reasons).
    pub fn code(&self) -> String {
        match self {
            SlackError::Api { code, .. } => code.clone(),
            SlackError::RateLimited { .. } => "ratelimited".into(),
            SlackError::LocallyLimited { .. } => "locally_limited".into(),
            SlackError::Http(s) => format!("http_{s}"),
            SlackError::Connect(_) => "connect".into(),
            SlackError::Transport(_) => "transport".into(),
            SlackError::Decode(_) => "decode".into(),
        }
    }
}

/// The error of every call of a client without a token ([`SlackClient::without_token`]).
pub const NOT_INSTALLED: &str = "not_installed";

/// Methods Slack only accepts form-encoded (see `consumes` in Slack's OpenAPI spec).
const FORM_METHODS: &[&str] = &[
    "users.info",
    "users.list",
    "usergroups.users.list",
    "files.getUploadURLExternal",
    "conversations.history",
    "conversations.replies",
];

/// A client for one workspace token. Clones share its limiter: the process builds one client
/// per token (at start-up) and hands clones to the outbox workers and the services.
#[derive(Clone)]
pub struct SlackClient {
    http: reqwest::Client,
    base_url: String,
    /// `None`: a client of no workspace (OAuth-only mode has no default installation); every
    /// call fails with `not_installed` before anything is sent.
    token: Option<SecretString>,
    timeout: Duration,
    limiter: Arc<RateLimiter>,
    clock: SharedClock,
    patience: Patience,
}

impl std::fmt::Debug for SlackClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SlackUser {
    pub id: UserId,
    #[serde(default)]
    pub tz: Option<String>,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub is_bot: bool,
    #[serde(default)]
    pub is_restricted: bool,
    #[serde(default)]
    pub is_ultra_restricted: bool,
    #[serde(default)]
    pub profile: SlackProfile,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SlackProfile {
    #[serde(default)]
    pub status_text: Option<String>,
    #[serde(default)]
    pub status_emoji: Option<String>,
    #[serde(default)]
    pub real_name: Option<String>,
}

/// Where a posted message landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedMessage {
    pub channel: ChannelId,
    pub ts: MessageTs,
}

impl SlackClient {
    pub fn new(base_url: &str, token: SecretString, timeout: Duration) -> Result<Self, SlackError> {
        crate::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(32)
            .build()
            .map_err(|e| SlackError::Transport(e.to_string()))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            token: Some(token),
            timeout,
            limiter: Arc::new(RateLimiter::new(RateLimitConfig::default())),
            clock: Arc::new(SystemClock),
            patience: Patience::default(),
        })
    }

    /// A client with no token, for OAuth-only mode (no default installation): it carries the
    /// base URL, timeout, limits and clock the installed workspaces' clients copy, and
    /// refuses every call itself ([`NOT_INSTALLED`]), so nothing is ever sent for a workspace
    /// without an installation, with any token.
    pub fn without_token(base_url: &str, timeout: Duration) -> Result<Self, SlackError> {
        let mut client = Self::new(base_url, SecretString::from(String::new()), timeout)?;
        client.token = None;
        Ok(client)
    }

    /// True when this client has a token (see [`SlackClient::without_token`]).
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// A client for another workspace's token: the same HTTP pool, base URL, timeout, clock
    /// and post limits, and a limiter of its own (Slack's limits are per workspace).
    pub fn for_token(&self, token: SecretString) -> Self {
        Self {
            http: self.http.clone(),
            base_url: self.base_url.clone(),
            token: Some(token),
            timeout: self.timeout,
            limiter: Arc::new(RateLimiter::new(self.limiter.config())),
            clock: self.clock.clone(),
            patience: self.patience,
        }
    }

    /// The post limits of this workspace (a fresh limiter: call before cloning the client).
    pub fn with_limits(mut self, config: RateLimitConfig) -> Self {
        self.limiter = Arc::new(RateLimiter::new(config));
        self
    }

    /// The clock the limiter reads (the injected one; a manual clock in tests).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_patience(mut self, patience: Patience) -> Self {
        self.patience = patience;
        self
    }

    /// The post limits this client applies.
    pub fn limits(&self) -> RateLimitConfig {
        self.limiter.config()
    }

    /// Methods this process's limiter would hold back right now (see
    /// [`RateLimiter::blocked_methods`]).
    pub fn blocked_methods(&self) -> Vec<String> {
        self.limiter.blocked_methods(self.clock.now())
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// How long one call may take before it is abandoned (its outcome is then unknown).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A permit for `method` (to `channel`, for posts) if the limiter has a token now, or
    /// when to come back. For the outbox, which reschedules instead of waiting.
    pub fn permit_now(&self, method: &str, channel: Option<&str>) -> Result<Permit, DateTime<Utc>> {
        let tier = tier_of(method);
        self.limiter
            .try_acquire(method, tier, channel, self.clock.now())
            .map(|()| Permit {
                method: method.to_string(),
                tier,
            })
            .map_err(|denial| denial.ready_at)
    }

    /// A permit for `method`, waiting for it up to `patience` (real time). The limiter's own
    /// now moves with the wait, so a clock that stands still cannot keep the call waiting
    /// beyond the bound.
    async fn permit_within(
        &self,
        method: Method,
        channel: Option<&str>,
        patience: Duration,
    ) -> Result<Permit, SlackError> {
        let mut waited = Duration::ZERO;
        let mut at = self.clock.now();
        loop {
            let now = at.max(self.clock.now());
            let denial = match self
                .limiter
                .try_acquire(method.name, method.tier, channel, now)
            {
                Ok(()) => {
                    return Ok(Permit {
                        method: method.name.to_string(),
                        tier: method.tier,
                    })
                }
                Err(denial) => denial,
            };
            let wait = denial.wait.to_std().unwrap_or_default();
            if waited + wait > patience {
                metrics::counter!("slack_api_locally_limited_total", "method" => method.name)
                    .increment(1);
                return Err(SlackError::LocallyLimited {
                    method: method.name.to_string(),
                    ready_at: denial.ready_at,
                });
            }
            tokio::time::sleep(wait).await;
            waited += wait;
            at = denial.ready_at;
        }
    }

    /// Calls a method the client knows, waiting for the limiter up to `patience`.
    async fn call_within<T: DeserializeOwned>(
        &self,
        method: Method,
        args: &Value,
        patience: Duration,
    ) -> Result<T, SlackError> {
        let permit = self.permit_within(method, None, patience).await?;
        self.call_as(permit, args).await
    }

    /// Calls the method `permit` was given for; `Ok` carries the whole `ok: true` body. A 429
    /// pauses the method for every user of this client until `Retry-After` has passed.
    #[tracing::instrument(skip_all, fields(method = %permit.method))]
    pub async fn call(&self, permit: Permit, args: &Value) -> Result<Value, SlackError> {
        self.call_as(permit, args).await
    }

    /// [`Self::call`], with the `ok: true` body read straight into `T` (no JSON tree first:
    /// a users.list page of 1,000 profiles is megabytes as `Value`s).
    async fn call_as<T: DeserializeOwned>(
        &self,
        permit: Permit,
        args: &Value,
    ) -> Result<T, SlackError> {
        let method = permit.method.as_str();
        let result = self.send(method, args).await;
        let outcome = match &result {
            Ok(_) => "ok".to_string(),
            Err(e) => e.code(),
        };
        metrics::counter!("slack_api_calls_total", "method" => method.to_string(), "outcome" => outcome)
            .increment(1);
        if let Err(SlackError::RateLimited { retry_after }) = &result {
            metrics::counter!("slack_api_ratelimited_total", "method" => method.to_string())
                .increment(1);
            let wait =
                chrono::Duration::from_std(*retry_after).unwrap_or(chrono::Duration::seconds(1));
            self.limiter
                .pause(method, permit.tier, self.clock.now() + wait);
        }
        result
    }

    async fn send<T: DeserializeOwned>(&self, method: &str, args: &Value) -> Result<T, SlackError> {
        let Some(token) = &self.token else {
            return Err(SlackError::Api {
                code: NOT_INSTALLED.into(),
                messages: vec![
                    "no workspace installation to send with (OAuth-only mode); nothing was sent"
                        .into(),
                ],
            });
        };
        let url = format!("{}/{}", self.base_url, method);
        let request = self.http.post(url).bearer_auth(token.expose_secret());
        let request = if FORM_METHODS.contains(&method) {
            request.form(&form_fields(args))
        } else {
            request.json(args)
        };
        let response = request.send().await.map_err(send_error)?;
        read_envelope(response).await
    }

    /// `oauth.v2.access`: exchanges an install's `code` for the workspace's bot token. It is
    /// authenticated by the app's client id and secret (form fields), not by a token; its
    /// answer holds the new token, so it is never logged.
    #[tracing::instrument(skip_all)]
    pub async fn oauth_v2_access(
        &self,
        client_id: &str,
        client_secret: &SecretString,
        code: &str,
        redirect_uri: &str,
    ) -> Result<Value, SlackError> {
        let _permit = self
            .permit_within(methods::OAUTH_V2_ACCESS, None, self.patience.interactive)
            .await?;
        let form = [
            ("client_id", client_id),
            ("client_secret", client_secret.expose_secret()),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ];
        let response = self
            .http
            .post(format!("{}/oauth.v2.access", self.base_url))
            .form(&form)
            .send()
            .await
            .map_err(send_error)?;
        let result = read_envelope(response).await;
        let outcome = match &result {
            Ok(_) => "ok".to_string(),
            Err(e) => e.code(),
        };
        metrics::counter!("slack_api_calls_total", "method" => "oauth.v2.access", "outcome" => outcome)
            .increment(1);
        result
    }
}

/// Slack's answer: the `ok: true` body, or the error it stands for (429, other statuses,
/// `ok: false`, an unreadable body).
async fn read_envelope<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, SlackError> {
    let status = response.status().as_u16();
    if status == 429 {
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(1);
        return Err(SlackError::RateLimited {
            retry_after: Duration::from_secs(retry_after.max(1)),
        });
    }
    if status != 200 {
        return Err(SlackError::Http(status));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| SlackError::Decode(transport_reason(e)))?;
    // Two passes over the bytes: the envelope's few fields first (the rest skipped, not
    // built), then, when `ok` is true, the body as the caller's type.
    let head: EnvelopeHead =
        serde_json::from_slice(&bytes).map_err(|e| SlackError::Decode(e.to_string()))?;
    match head.ok {
        Some(true) => serde_json::from_slice(&bytes).map_err(|e| SlackError::Decode(e.to_string())),
        Some(false) => Err(SlackError::Api {
            code: head.error.unwrap_or_else(|| "unknown_error".to_string()),
            messages: head.response_metadata.messages,
        }),
        None => Err(SlackError::Decode("no `ok` field".into())),
    }
}

/// The fields every Web API answer shares; the rest of the body is skipped.
#[derive(Deserialize)]
struct EnvelopeHead {
    ok: Option<bool>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    response_metadata: ResponseMetadata,
}

#[derive(Deserialize, Default)]
struct ResponseMetadata {
    #[serde(default)]
    messages: Vec<String>,
    #[serde(default)]
    next_cursor: Option<String>,
}

/// One page of users.list, read without a JSON tree in between.
#[derive(Deserialize)]
struct UsersListPage {
    #[serde(default)]
    members: Vec<SlackUser>,
    #[serde(default)]
    response_metadata: ResponseMetadata,
}

impl SlackClient {
    /// Answers an interaction through its `response_url` (no token: the URL is the
    /// credential). Not a Web API method, so no tier applies; Slack allows 5 uses within 30
    /// minutes. Only Slack's own hooks host, or the host of the configured API base (the
    /// emulator), is ever called: the URL comes from a payload, and a signed payload is still
    /// no reason to post elsewhere. Bounded by the interactive patience, since someone waits.
    /// Slack answers such a post with a plain `ok` or a JSON envelope; a non-200 status (404
    /// `expired_url`, say) is an error.
    pub async fn respond(&self, url: &str, body: &Value) -> Result<(), SlackError> {
        self.respond_within(url, body, self.patience.interactive)
            .await
    }

    /// [`Self::respond`] for the outbox worker's DM updates: nobody waits on an HTTP request,
    /// so the background patience bounds it.
    pub async fn respond_background(&self, url: &str, body: &Value) -> Result<(), SlackError> {
        self.respond_within(url, body, self.patience.background)
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn respond_within(
        &self,
        url: &str,
        body: &Value,
        patience: Duration,
    ) -> Result<(), SlackError> {
        if !self.is_response_url(url) {
            metrics::counter!("slack_response_url_posts_total", "outcome" => "invalid_response_url")
                .increment(1);
            return Err(SlackError::Api {
                code: "invalid_response_url".into(),
                messages: vec![],
            });
        }
        let response = self
            .http
            .post(url)
            .timeout(patience)
            .json(body)
            .send()
            .await
            .map_err(send_error);
        let result = match response {
            Err(e) => Err(e),
            Ok(response) if response.status().as_u16() == 429 => Err(SlackError::RateLimited {
                retry_after: Duration::from_secs(1),
            }),
            Ok(response) if response.status().is_success() => {
                let text = response.text().await.unwrap_or_default();
                match serde_json::from_str::<Value>(&text) {
                    Ok(v) if v.get("ok") == Some(&Value::Bool(false)) => Err(SlackError::Api {
                        code: v["error"].as_str().unwrap_or("unknown_error").to_string(),
                        messages: Vec::new(),
                    }),
                    _ => Ok(()),
                }
            }
            Ok(response) => Err(SlackError::Http(response.status().as_u16())),
        };
        let outcome = match &result {
            Ok(()) => "ok".to_string(),
            Err(e) => e.code(),
        };
        metrics::counter!("slack_response_url_posts_total", "outcome" => outcome).increment(1);
        result
    }

    pub async fn auth_test(&self) -> Result<Value, SlackError> {
        let patience = self.patience.interactive;
        self.call_within(methods::AUTH_TEST, &json!({}), patience)
            .await
    }

    pub async fn users_info(&self, user: &UserId) -> Result<SlackUser, SlackError> {
        let args = json!({ "user": user });
        let body: Value = self
            .call_within(methods::USERS_INFO, &args, self.patience.background)
            .await?;
        serde_json::from_value(body.get("user").cloned().unwrap_or(Value::Null))
            .map_err(|e| SlackError::Decode(e.to_string()))
    }

    /// Every user of a workspace, following `next_cursor`, [`USERS_LIST_PAGE`] to a page.
    /// Pages are paced by the limiter (Tier 2), and a page Slack answers with 429 is asked
    /// again once its pause is over, so a large workspace is read to the end rather than
    /// failing halfway.
    pub async fn users_list(&self) -> Result<Vec<SlackUser>, SlackError> {
        let mut users = Vec::new();
        let mut cursor = String::new();
        loop {
            let args = json!({ "limit": USERS_LIST_PAGE, "cursor": cursor });
            let page: UsersListPage = self.page(methods::USERS_LIST, &args).await?;
            users.extend(page.members);
            cursor = page.response_metadata.next_cursor.unwrap_or_default();
            if cursor.is_empty() {
                return Ok(users);
            }
        }
    }

    /// One page of a paged read: a 429 paused the method, so the next permit waits it out
    /// (within the background patience); a few such refusals in a row end the read.
    async fn page<T: DeserializeOwned>(
        &self,
        method: Method,
        args: &Value,
    ) -> Result<T, SlackError> {
        const TRIES_PER_PAGE: u32 = 3;
        let mut tries = 0;
        loop {
            tries += 1;
            match self
                .call_within(method, args, self.patience.background)
                .await
            {
                Err(SlackError::RateLimited { .. }) if tries < TRIES_PER_PAGE => continue,
                other => return other,
            }
        }
    }

    pub async fn usergroup_members(&self, usergroup: &str) -> Result<Vec<UserId>, SlackError> {
        let args = json!({ "usergroup": usergroup });
        let body: Value = self
            .call_within(
                methods::USERGROUPS_USERS_LIST,
                &args,
                self.patience.background,
            )
            .await?;
        serde_json::from_value(body.get("users").cloned().unwrap_or(json!([])))
            .map_err(|e| SlackError::Decode(e.to_string()))
    }

    /// Posts at once if the limiter allows (to the `channel` in `args`), else waits like a
    /// background call. The outbox does not use this: it posts with [`Self::permit_now`].
    pub async fn post_message(&self, args: &Value) -> Result<PostedMessage, SlackError> {
        let channel = args.get("channel").and_then(Value::as_str);
        let permit = self
            .permit_within(
                methods::CHAT_POST_MESSAGE,
                channel,
                self.patience.background,
            )
            .await?;
        let body = self.call(permit, args).await?;
        posted(&body)
    }

    /// Opens a modal for a click. Never waits past the interactive bound: the trigger_id
    /// expires 3 s after the click.
    pub async fn views_open(&self, trigger_id: &str, view: &Value) -> Result<Value, SlackError> {
        let args = json!({ "trigger_id": trigger_id, "view": view });
        self.call_within(methods::VIEWS_OPEN, &args, self.patience.interactive)
            .await
    }

    /// Pushes a modal on top of the one a click came from (same 3 s trigger_id bound).
    pub async fn views_push(&self, trigger_id: &str, view: &Value) -> Result<Value, SlackError> {
        let args = json!({ "trigger_id": trigger_id, "view": view });
        self.call_within(methods::VIEWS_PUSH, &args, self.patience.interactive)
            .await
    }

    /// Replaces an open modal's content (by its view id), while someone looks at it.
    pub async fn views_update(&self, view_id: &str, view: &Value) -> Result<Value, SlackError> {
        let args = json!({ "view_id": view_id, "view": view });
        self.call_within(methods::VIEWS_UPDATE, &args, self.patience.interactive)
            .await
    }

    /// `https://hooks.slack.com/…`, or a URL on the same origin as the API base.
    fn is_response_url(&self, url: &str) -> bool {
        let origin = |u: &str| -> Option<String> {
            let (scheme, rest) = u.split_once("://")?;
            let host = rest.split('/').next()?;
            Some(format!("{scheme}://{host}/"))
        };
        match origin(url) {
            Some(o) => o == "https://hooks.slack.com/" || origin(&self.base_url) == Some(o),
            None => false,
        }
    }

    /// The middle step of an upload: the bytes, POSTed to the URL files.getUploadURLExternal
    /// handed out (not a Web API method, so no permit; the URL is never logged).
    pub async fn post_upload_bytes(
        &self,
        upload_url: &str,
        bytes: Vec<u8>,
    ) -> Result<(), SlackError> {
        let response = self
            .http
            .post(upload_url)
            .body(bytes)
            .send()
            .await
            .map_err(send_error)?;
        if !response.status().is_success() {
            return Err(SlackError::Http(response.status().as_u16()));
        }
        Ok(())
    }

    /// Uploads a file with Slack's two-step flow and shares it into `channel`.
    pub async fn upload_file(
        &self,
        filename: &str,
        title: &str,
        bytes: Vec<u8>,
        channel: Option<&str>,
        initial_comment: Option<&str>,
    ) -> Result<Value, SlackError> {
        let patience = self.patience.background;
        let args = json!({ "filename": filename, "length": bytes.len() });
        let ticket: Value = self
            .call_within(methods::FILES_GET_UPLOAD_URL_EXTERNAL, &args, patience)
            .await?;
        let (Some(upload_url), Some(file_id)) = (
            ticket.get("upload_url").and_then(Value::as_str),
            ticket.get("file_id").and_then(Value::as_str),
        ) else {
            return Err(SlackError::Decode("no upload_url/file_id".into()));
        };
        self.post_upload_bytes(upload_url, bytes).await?;
        let mut args = json!({ "files": [{ "id": file_id, "title": title }] });
        if let Some(channel) = channel {
            args["channel_id"] = json!(channel);
        }
        if let Some(comment) = initial_comment {
            args["initial_comment"] = json!(comment);
        }
        self.call_within(methods::FILES_COMPLETE_UPLOAD_EXTERNAL, &args, patience)
            .await
    }
}

/// The `event_type` of the message metadata every post from the outbox carries.
pub const DELIVERY_EVENT_TYPE: &str = "pulseloop_delivery";

/// Message metadata naming the outbox row that posted a message, so a post whose outcome is
/// unknown can be found in the conversation instead of being sent twice. Only the key: no
/// answer content.
pub fn delivery_metadata(key: &str) -> Value {
    json!({ "event_type": DELIVERY_EVENT_TYPE, "event_payload": { "key": key } })
}

/// The outbox key in a message's metadata, if it carries ours.
pub fn delivery_key_of(message: &Value) -> Option<&str> {
    let metadata = message.get("metadata")?;
    if metadata.get("event_type")?.as_str()? != DELIVERY_EVENT_TYPE {
        return None;
    }
    metadata.pointer("/event_payload/key")?.as_str()
}

/// Extracts `channel` and `ts` from a chat.postMessage answer.
pub fn posted(body: &Value) -> Result<PostedMessage, SlackError> {
    match (
        body.get("channel").and_then(Value::as_str),
        body.get("ts").and_then(Value::as_str),
    ) {
        (Some(channel), Some(ts)) => Ok(PostedMessage {
            channel: ChannelId::from(channel),
            ts: MessageTs::from(ts),
        }),
        _ => Err(SlackError::Decode(
            "chat.postMessage answer without channel/ts".into(),
        )),
    }
}

/// Form encoding flattens nested values to JSON strings, as Slack expects (`blocks=[…]`).
fn form_fields(args: &Value) -> Vec<(String, String)> {
    args.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A failed send: `Connect` when the request never left, else `Transport` (outcome unknown).
fn send_error(e: reqwest::Error) -> SlackError {
    if e.is_connect() {
        SlackError::Connect(transport_reason(e))
    } else {
        SlackError::Transport(transport_reason(e))
    }
}

fn transport_reason(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        // Without the URL: it may carry the upload ticket.
        e.without_url().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_errors_for_the_outbox() {
        let api = |c: &str| SlackError::Api {
            code: c.into(),
            messages: vec![],
        };
        assert_eq!(api("account_inactive").class(), ErrorClass::Permanent);
        assert_eq!(api("invalid_blocks").class(), ErrorClass::Permanent);
        assert_eq!(api("internal_error").class(), ErrorClass::Transient);
        assert_eq!(SlackError::Http(503).class(), ErrorClass::Transient);
        assert_eq!(
            SlackError::RateLimited {
                retry_after: Duration::from_secs(2)
            }
            .class(),
            ErrorClass::RateLimited
        );
    }
}
