//! Slack's side of the conversation with the bot: signed HTTP requests to its
//! `/slack/events`, `/slack/interactions` and `/slack/commands` (docs/slack-facts.md,
//! "Request signing"), with knobs to sign wrongly on purpose.
//! Payload builders live in `payloads`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

use super::state::Shared;
use slack_facts::signature::{compute_signature, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// How to sign one request; the default signs correctly at the peer's current time.
#[derive(Debug, Clone, Default)]
pub struct SignOptions {
    /// Unix seconds for `X-Slack-Request-Timestamp`; `None` means the peer's clock.
    pub timestamp: Option<i64>,
    /// Sign with this secret instead of the real one.
    pub secret_override: Option<String>,
    /// Send this `X-Slack-Signature` instead of the computed one.
    pub signature_override: Option<String>,
    /// Send neither signature header.
    pub omit_headers: bool,
    /// Mark the request as Slack's n-th retry (`X-Slack-Retry-Num`, reason `http_timeout`).
    pub retry_num: Option<u32>,
}

/// Where the peer's "now" comes from.
pub type PeerClock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Plays Slack towards the bot at `bot_base_url`. Cheap to clone.
#[derive(Clone)]
pub struct SlackPeer {
    pub(super) shared: Arc<Shared>,
    http: reqwest::Client,
    bot_base_url: String,
    secret: String,
    clock: Option<PeerClock>,
}

impl std::fmt::Debug for SlackPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The signing secret stays out of debug output.
        f.debug_struct("SlackPeer")
            .field("bot_base_url", &self.bot_base_url)
            .finish_non_exhaustive()
    }
}

impl SlackPeer {
    pub(super) fn new(shared: Arc<Shared>, bot_base_url: &str, secret: &str) -> Self {
        install_crypto_provider();
        Self {
            shared,
            http: reqwest::Client::new(),
            bot_base_url: bot_base_url.trim_end_matches('/').to_string(),
            secret: secret.to_string(),
            clock: None,
        }
    }

    /// Uses `clock` for signatures and payload timestamps (e.g. the bot's test clock).
    pub fn with_clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// A copy of this peer whose clock stands still at `now`: `peer.at(t).send_event(&e)`.
    pub fn at(&self, now: DateTime<Utc>) -> Self {
        self.clone().with_clock(move || now)
    }

    /// The peer's current time (the system clock unless overridden).
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.as_ref().map_or_else(Utc::now, |c| c())
    }

    /// POSTs `body` to `{bot}{path}`, signed as `opts` says.
    pub async fn send_signed(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        opts: SignOptions,
    ) -> reqwest::Result<reqwest::Response> {
        let ts = opts
            .timestamp
            .unwrap_or_else(|| self.now().timestamp())
            .to_string();
        let secret = opts.secret_override.as_deref().unwrap_or(&self.secret);
        let signature = opts
            .signature_override
            .clone()
            .unwrap_or_else(|| compute_signature(secret.as_bytes(), &ts, &body));
        let mut request = self
            .http
            .post(format!("{}{path}", self.bot_base_url))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header(
                reqwest::header::USER_AGENT,
                "Slackbot 1.0 (+https://api.slack.com/robots)",
            );
        if !opts.omit_headers {
            request = request
                .header(TIMESTAMP_HEADER, &ts)
                .header(SIGNATURE_HEADER, signature);
        }
        if let Some(n) = opts.retry_num {
            request = request
                .header("x-slack-retry-num", n.to_string())
                .header("x-slack-retry-reason", "http_timeout");
        }
        tracing::debug!(path, "emulator peer: sending signed request");
        request.body(body).send().await
    }

    /// An Events API delivery (JSON), correctly signed.
    pub async fn send_event(&self, body: &Value) -> reqwest::Result<reqwest::Response> {
        self.send_event_with(body, SignOptions::default()).await
    }

    pub async fn send_event_with(
        &self,
        body: &Value,
        opts: SignOptions,
    ) -> reqwest::Result<reqwest::Response> {
        let bytes = body.to_string().into_bytes();
        self.send_signed("/slack/events", "application/json", bytes, opts)
            .await
    }

    /// An interaction: form-encoded `payload=<json>`, correctly signed.
    pub async fn send_interaction(&self, payload: &Value) -> reqwest::Result<reqwest::Response> {
        self.send_interaction_with(payload, SignOptions::default())
            .await
    }

    pub async fn send_interaction_with(
        &self,
        payload: &Value,
        opts: SignOptions,
    ) -> reqwest::Result<reqwest::Response> {
        let form = form_encode(&[("payload", payload.to_string())]);
        self.send_signed(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            form,
            opts,
        )
        .await
    }

    /// A slash command: form fields, correctly signed (see [`SlackPeer::slash_command`]).
    pub async fn send_command<K: Serialize, V: Serialize>(
        &self,
        fields: &[(K, V)],
    ) -> reqwest::Result<reqwest::Response> {
        self.send_command_with(fields, SignOptions::default()).await
    }

    pub async fn send_command_with<K: Serialize, V: Serialize>(
        &self,
        fields: &[(K, V)],
        opts: SignOptions,
    ) -> reqwest::Result<reqwest::Response> {
        self.send_signed(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            form_encode(fields),
            opts,
        )
        .await
    }
}

/// reqwest is built with `rustls-no-provider`: the first TLS client panics unless a process-wide
/// provider is chosen. Idempotent; every client constructor here calls it first.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Form-encodes string pairs; these always serialise, so failure is only logged.
fn form_encode<K: Serialize, V: Serialize>(fields: &[(K, V)]) -> Vec<u8> {
    serde_urlencoded::to_string(fields)
        .inspect_err(|e| tracing::debug!(error = %e, "emulator peer: cannot form-encode"))
        .unwrap_or_default()
        .into_bytes()
}
