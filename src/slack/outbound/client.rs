//! The Slack Web API client: reqwest, a base URL from configuration (slack.com in production,
//! the local emulator in tests and the sandbox), the bot token, and Slack's answers mapped to
//! typed errors.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

/// Slack error codes that will never succeed on retry: the message is failed for good.
const PERMANENT: &[&str] = &[
    "user_not_found",
    "account_inactive",
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_blocks",
    "invalid_arguments",
    "invalid_auth",
    "not_authed",
    "token_revoked",
    "token_expired",
    "missing_scope",
    "no_text",
    "msg_too_long",
    "invalid_json",
    "cannot_dm_bot",
    "user_not_visible",
    "user_disabled",
    "message_not_found",
    "cant_update_message",
    "edit_window_closed",
    "restricted_action",
    "team_access_not_granted",
    "invalid_trigger_id",
    "expired_trigger_id",
    "exchanged_trigger_id",
    "unknown_method",
];

/// Slack error codes worth retrying with back-off.
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
            SlackError::RateLimited { .. } => ErrorClass::RateLimited,
            SlackError::Http(_)
            | SlackError::Connect(_)
            | SlackError::Transport(_)
            | SlackError::Decode(_) => ErrorClass::Transient,
            SlackError::Api { code, .. } if TRANSIENT.contains(&code.as_str()) => {
                ErrorClass::Transient
            }
            // Unknown codes are treated as permanent: retrying an unexplained refusal only
            // burns rate limit, and the reason is kept for admins.
            SlackError::Api { code, .. } if PERMANENT.contains(&code.as_str()) => {
                ErrorClass::Permanent
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
            SlackError::Connect(_) | SlackError::RateLimited { .. } => false,
        }
    }

    /// The Slack error code, or a short label for non-API failures (metrics, stored reasons).
    pub fn code(&self) -> String {
        match self {
            SlackError::Api { code, .. } => code.clone(),
            SlackError::RateLimited { .. } => "ratelimited".into(),
            SlackError::Http(s) => format!("http_{s}"),
            SlackError::Connect(_) => "connect".into(),
            SlackError::Transport(_) => "transport".into(),
            SlackError::Decode(_) => "decode".into(),
        }
    }
}

/// Methods Slack only accepts form-encoded (see `consumes` in Slack's OpenAPI spec).
const FORM_METHODS: &[&str] = &[
    "users.info",
    "users.list",
    "usergroups.users.list",
    "oauth.v2.access",
    "files.getUploadURLExternal",
];

#[derive(Clone)]
pub struct SlackClient {
    http: reqwest::Client,
    base_url: String,
    token: SecretString,
    timeout: Duration,
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
    pub id: String,
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
    pub channel: String,
    pub ts: String,
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
            token,
            timeout,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// How long one call may take before it is abandoned (its outcome is then unknown).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Calls `method` with `args`; `Ok` carries the whole `ok: true` body.
    #[tracing::instrument(skip_all, fields(method = method))]
    pub async fn call(&self, method: &str, args: &Value) -> Result<Value, SlackError> {
        let result = self.call_inner(method, args, true).await;
        let outcome = match &result {
            Ok(_) => "ok".to_string(),
            Err(e) => e.code(),
        };
        metrics::counter!("slack_api_calls_total", "method" => method.to_string(), "outcome" => outcome)
            .increment(1);
        if matches!(result, Err(SlackError::RateLimited { .. })) {
            metrics::counter!("slack_api_ratelimited_total", "method" => method.to_string())
                .increment(1);
        }
        result
    }

    async fn call_inner(
        &self,
        method: &str,
        args: &Value,
        auth: bool,
    ) -> Result<Value, SlackError> {
        let url = format!("{}/{}", self.base_url, method);
        let mut request = self.http.post(url);
        if auth {
            request = request.bearer_auth(self.token.expose_secret());
        }
        request = if FORM_METHODS.contains(&method) {
            request.form(&form_fields(args))
        } else {
            request.json(args)
        };
        let response = request.send().await.map_err(send_error)?;
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
        let body: Value = response
            .json()
            .await
            .map_err(|e| SlackError::Decode(transport_reason(e)))?;
        match body.get("ok").and_then(Value::as_bool) {
            Some(true) => Ok(body),
            Some(false) => Err(SlackError::Api {
                code: body
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown_error")
                    .to_string(),
                messages: body
                    .pointer("/response_metadata/messages")
                    .and_then(Value::as_array)
                    .map(|m| {
                        m.iter()
                            .filter_map(|s| s.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            None => Err(SlackError::Decode("no `ok` field".into())),
        }
    }

    pub async fn auth_test(&self) -> Result<Value, SlackError> {
        self.call("auth.test", &json!({})).await
    }

    pub async fn users_info(&self, user: &str) -> Result<SlackUser, SlackError> {
        let body = self.call("users.info", &json!({ "user": user })).await?;
        serde_json::from_value(body.get("user").cloned().unwrap_or(Value::Null))
            .map_err(|e| SlackError::Decode(e.to_string()))
    }

    /// Every user of a workspace, following `next_cursor`.
    pub async fn users_list(&self) -> Result<Vec<SlackUser>, SlackError> {
        let mut users = Vec::new();
        let mut cursor = String::new();
        loop {
            let body = self
                .call("users.list", &json!({ "limit": 200, "cursor": cursor }))
                .await?;
            let page: Vec<SlackUser> =
                serde_json::from_value(body.get("members").cloned().unwrap_or(json!([])))
                    .map_err(|e| SlackError::Decode(e.to_string()))?;
            users.extend(page);
            cursor = body
                .pointer("/response_metadata/next_cursor")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if cursor.is_empty() {
                return Ok(users);
            }
        }
    }

    pub async fn usergroup_members(&self, usergroup: &str) -> Result<Vec<String>, SlackError> {
        let body = self
            .call("usergroups.users.list", &json!({ "usergroup": usergroup }))
            .await?;
        serde_json::from_value(body.get("users").cloned().unwrap_or(json!([])))
            .map_err(|e| SlackError::Decode(e.to_string()))
    }

    pub async fn post_message(&self, args: &Value) -> Result<PostedMessage, SlackError> {
        let body = self.call("chat.postMessage", args).await?;
        posted(&body)
    }

    pub async fn views_open(&self, trigger_id: &str, view: &Value) -> Result<Value, SlackError> {
        self.call(
            "views.open",
            &json!({ "trigger_id": trigger_id, "view": view }),
        )
        .await
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
        let ticket = self
            .call(
                "files.getUploadURLExternal",
                &json!({ "filename": filename, "length": bytes.len() }),
            )
            .await?;
        let (Some(upload_url), Some(file_id)) = (
            ticket.get("upload_url").and_then(Value::as_str),
            ticket.get("file_id").and_then(Value::as_str),
        ) else {
            return Err(SlackError::Decode("no upload_url/file_id".into()));
        };
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
        let mut args = json!({ "files": [{ "id": file_id, "title": title }] });
        if let Some(channel) = channel {
            args["channel_id"] = json!(channel);
        }
        if let Some(comment) = initial_comment {
            args["initial_comment"] = json!(comment);
        }
        self.call("files.completeUploadExternal", &args).await
    }

    /// Exchanges an OAuth code (no bot token: the client credentials authenticate).
    pub async fn oauth_v2_access(
        &self,
        client_id: &str,
        client_secret: &str,
        code: &str,
        redirect_uri: Option<&str>,
    ) -> Result<Value, SlackError> {
        let mut args =
            json!({ "client_id": client_id, "client_secret": client_secret, "code": code });
        if let Some(uri) = redirect_uri {
            args["redirect_uri"] = json!(uri);
        }
        self.call_inner("oauth.v2.access", &args, false).await
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
            channel: channel.to_string(),
            ts: ts.to_string(),
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
