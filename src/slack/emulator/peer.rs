//! Slack's side of the conversation: signed requests to the bot's endpoints, shaped like
//! the real thing (FACTS.md §1, §6).

use chrono::Utc;
use serde_json::{json, Value};

use super::Emulator;
use crate::slack::signature::{compute_signature, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// How to sign one request; the defaults sign correctly at the current time.
#[derive(Debug, Clone, Default)]
pub struct SignOptions {
    /// Unix seconds; `None` means now.
    pub timestamp: Option<i64>,
    pub secret_override: Option<String>,
    /// Sent instead of the computed signature.
    pub signature_override: Option<String>,
    /// Send neither signature header.
    pub omit_headers: bool,
    /// Adds `X-Slack-Retry-Num` (and a retry reason), as Slack's retries carry.
    pub retry_num: Option<u32>,
}

#[derive(Clone)]
pub struct SlackPeer {
    emulator: Emulator,
    http: reqwest::Client,
    bot_base_url: String,
    secret: String,
}

impl SlackPeer {
    pub(crate) fn new(emulator: Emulator, bot_base_url: &str, secret: &str) -> Self {
        crate::tls::install_crypto_provider();
        Self {
            emulator,
            http: reqwest::Client::new(),
            bot_base_url: bot_base_url.trim_end_matches('/').to_string(),
            secret: secret.to_string(),
        }
    }

    pub async fn send_signed(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        opts: SignOptions,
    ) -> reqwest::Result<reqwest::Response> {
        let ts = opts
            .timestamp
            .unwrap_or_else(|| Utc::now().timestamp())
            .to_string();
        let secret = opts.secret_override.as_deref().unwrap_or(&self.secret);
        let signature = opts
            .signature_override
            .clone()
            .unwrap_or_else(|| compute_signature(secret.as_bytes(), &ts, &body));
        let mut request = self
            .http
            .post(format!("{}{path}", self.bot_base_url))
            .header("content-type", content_type);
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
        request.body(body).send().await
    }

    pub async fn send_event(
        &self,
        body: &Value,
        opts: SignOptions,
    ) -> reqwest::Result<reqwest::Response> {
        self.send_signed(
            "/slack/events",
            "application/json",
            body.to_string().into_bytes(),
            opts,
        )
        .await
    }

    pub async fn send_interaction(
        &self,
        payload: &Value,
        opts: SignOptions,
    ) -> reqwest::Result<reqwest::Response> {
        let form =
            serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap_or_default();
        self.send_signed(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            form.into_bytes(),
            opts,
        )
        .await
    }

    pub async fn send_command(
        &self,
        fields: &[(&str, &str)],
        opts: SignOptions,
    ) -> reqwest::Result<reqwest::Response> {
        let form = serde_urlencoded::to_string(fields).unwrap_or_default();
        self.send_signed(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            form.into_bytes(),
            opts,
        )
        .await
    }

    /// An `event_callback` envelope around `event`.
    pub fn event_callback(&self, event_id: &str, event: Value) -> Value {
        let c = self.emulator.config();
        json!({
            "token": "legacy-verification-token", "team_id": c.team_id, "api_app_id": c.app_id,
            "event": event, "type": "event_callback", "event_id": event_id,
            "event_time": Utc::now().timestamp(),
            "authorizations": [{ "enterprise_id": null, "team_id": c.team_id, "user_id": c.bot_user_id,
                                 "is_bot": true, "is_enterprise_install": false }],
            "is_ext_shared_channel": false,
        })
    }

    /// A click on a button of a message in `channel`, with a fresh `trigger_id`.
    pub fn block_actions(
        &self,
        user: &str,
        channel: &str,
        message_ts: &str,
        block_id: &str,
        action_id: &str,
        value: &str,
    ) -> Value {
        let c = self.emulator.config();
        json!({
            "type": "block_actions",
            "user": { "id": user, "username": user.to_lowercase(), "name": user.to_lowercase(), "team_id": c.team_id },
            "api_app_id": c.app_id, "token": "legacy-verification-token",
            "container": { "type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": false },
            "trigger_id": self.emulator.issue_trigger_id(),
            "team": { "id": c.team_id, "domain": c.team_name.to_lowercase() },
            "channel": { "id": channel, "name": "directmessage" },
            "message": { "type": "message", "ts": message_ts, "user": c.bot_user_id, "bot_id": c.bot_id },
            "response_url": "https://hooks.slack.com/actions/T0/1/emulated",
            "state": { "values": {} },
            "actions": [{ "action_id": action_id, "block_id": block_id, "type": "button",
                          "value": value, "action_ts": format!("{}.{:06}", Utc::now().timestamp(), fastrand::u32(..1_000_000)) }],
        })
    }

    /// A modal submission: `view` is the view as opened, `values` its `state.values`.
    pub fn view_submission(&self, user: &str, view: &Value, values: Value) -> Value {
        let c = self.emulator.config();
        let mut view = view.clone();
        view["state"] = json!({ "values": values });
        json!({
            "type": "view_submission",
            "team": { "id": c.team_id, "domain": c.team_name.to_lowercase() },
            "user": { "id": user, "username": user.to_lowercase(), "name": user.to_lowercase(), "team_id": c.team_id },
            "api_app_id": c.app_id, "token": "legacy-verification-token",
            "trigger_id": self.emulator.issue_trigger_id(),
            "view": view,
        })
    }
}
