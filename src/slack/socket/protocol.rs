//! Socket Mode's messages: what Slack sends on the WebSocket (`hello`, `disconnect`, and
//! envelopes carrying an Events API callback, an interaction or a slash command) and the ack
//! we send back. Pure serde, no I/O.

use serde::Deserialize;
use serde_json::{json, Value};

/// What an envelope carries; the payload is what would otherwise be POSTed to `/slack/*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeKind {
    /// An `event_callback` (as the body of `/slack/events`).
    EventsApi,
    /// An interaction payload (as the `payload` field of `/slack/interactions`).
    Interactive,
    /// A slash command's fields as a JSON object (as the form of `/slack/commands`).
    SlashCommands,
    /// A type this version does not know; acknowledged and ignored.
    Other(String),
}

impl EnvelopeKind {
    pub fn as_str(&self) -> &str {
        match self {
            EnvelopeKind::EventsApi => "events_api",
            EnvelopeKind::Interactive => "interactive",
            EnvelopeKind::SlashCommands => "slash_commands",
            EnvelopeKind::Other(kind) => kind,
        }
    }
}

/// One envelope: acknowledge `envelope_id` within 3 seconds, or Slack delivers it again.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub envelope_id: String,
    pub kind: EnvelopeKind,
    pub payload: Value,
    /// 0 on the first delivery; Slack counts redeliveries of an unacknowledged envelope.
    pub retry_attempt: u32,
    pub retry_reason: Option<String>,
    /// Whether Slack reads a `payload` in the ack (interactions and commands).
    pub accepts_response_payload: bool,
}

/// Why Slack asks us to reconnect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The connection is about to be recycled (routinely, every few hours).
    RefreshRequested,
    /// The connection will be closed in about 10 seconds.
    Warning,
    /// Socket Mode was turned off for the app: connecting again will fail until it is on.
    LinkDisabled,
    Other(String),
}

impl DisconnectReason {
    fn parse(reason: &str) -> Self {
        match reason {
            "refresh_requested" => DisconnectReason::RefreshRequested,
            "warning" => DisconnectReason::Warning,
            "link_disabled" => DisconnectReason::LinkDisabled,
            other => DisconnectReason::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            DisconnectReason::RefreshRequested => "refresh_requested",
            DisconnectReason::Warning => "warning",
            DisconnectReason::LinkDisabled => "link_disabled",
            DisconnectReason::Other(reason) => reason,
        }
    }
}

/// A text frame from Slack.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Hello {
        num_connections: Option<u32>,
    },
    Disconnect(DisconnectReason),
    Envelope(Envelope),
    /// Anything else (new message types): logged and ignored.
    Unknown(String),
}

#[derive(Deserialize)]
struct RawFrame {
    #[serde(rename = "type")]
    kind: String,
    envelope_id: Option<String>,
    payload: Option<Value>,
    reason: Option<String>,
    #[serde(default)]
    retry_attempt: u32,
    retry_reason: Option<String>,
    #[serde(default)]
    accepts_response_payload: bool,
    num_connections: Option<u32>,
}

/// Reads a text frame. An envelope without an id cannot be acknowledged: an error.
pub fn parse_frame(text: &str) -> Result<Frame, String> {
    let raw: RawFrame =
        serde_json::from_str(text).map_err(|e| format!("not a Socket Mode message: {e}"))?;
    match raw.kind.as_str() {
        "hello" => Ok(Frame::Hello {
            num_connections: raw.num_connections,
        }),
        "disconnect" => Ok(Frame::Disconnect(DisconnectReason::parse(
            raw.reason.as_deref().unwrap_or(""),
        ))),
        kind => {
            let Some(envelope_id) = raw.envelope_id else {
                return Ok(Frame::Unknown(kind.to_string()));
            };
            let kind = match kind {
                "events_api" => EnvelopeKind::EventsApi,
                "interactive" => EnvelopeKind::Interactive,
                "slash_commands" => EnvelopeKind::SlashCommands,
                other => EnvelopeKind::Other(other.to_string()),
            };
            Ok(Frame::Envelope(Envelope {
                envelope_id,
                kind,
                payload: raw.payload.unwrap_or(Value::Null),
                retry_attempt: raw.retry_attempt,
                retry_reason: raw.retry_reason.filter(|r| !r.is_empty()),
                accepts_response_payload: raw.accepts_response_payload,
            }))
        }
    }
}

/// The ack of an envelope, with the response body when there is one (a slash command's
/// message, a modal's `response_action`).
pub fn ack(envelope_id: &str, payload: Option<Value>) -> String {
    match payload {
        Some(payload) => json!({ "envelope_id": envelope_id, "payload": payload }),
        None => json!({ "envelope_id": envelope_id }),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_events_api_envelope_reads_with_its_retry_fields() {
        let frame = parse_frame(
            r#"{"envelope_id":"57d6a792-4d35-4d0b-b6aa-3361493e1caf","payload":{"type":"event_callback","event_id":"Ev1"},"type":"events_api","accepts_response_payload":false,"retry_attempt":1,"retry_reason":"timeout"}"#,
        )
        .unwrap();
        let Frame::Envelope(e) = frame else {
            panic!("an envelope: {frame:?}")
        };
        assert_eq!(e.envelope_id, "57d6a792-4d35-4d0b-b6aa-3361493e1caf");
        assert_eq!(e.kind, EnvelopeKind::EventsApi);
        assert_eq!(e.payload["event_id"], "Ev1");
        assert_eq!(e.retry_attempt, 1);
        assert_eq!(e.retry_reason.as_deref(), Some("timeout"));
        assert!(!e.accepts_response_payload);
    }

    #[test]
    fn hello_and_each_disconnect_reason_read() {
        assert_eq!(
            parse_frame(r#"{"type":"hello","num_connections":2,"debug_info":{}}"#).unwrap(),
            Frame::Hello {
                num_connections: Some(2)
            }
        );
        for (text, reason) in [
            ("refresh_requested", DisconnectReason::RefreshRequested),
            ("warning", DisconnectReason::Warning),
            ("link_disabled", DisconnectReason::LinkDisabled),
            (
                "something_new",
                DisconnectReason::Other("something_new".into()),
            ),
        ] {
            let frame = format!(r#"{{"type":"disconnect","reason":"{text}"}}"#);
            assert_eq!(
                parse_frame(&frame).unwrap(),
                Frame::Disconnect(reason.clone())
            );
            assert_eq!(reason.as_str(), text);
        }
    }

    #[test]
    fn unknown_types_and_broken_frames_are_told_apart() {
        assert_eq!(
            parse_frame(r#"{"type":"brand_new"}"#).unwrap(),
            Frame::Unknown("brand_new".into())
        );
        let Frame::Envelope(e) =
            parse_frame(r#"{"type":"brand_new","envelope_id":"x","payload":{}}"#).unwrap()
        else {
            panic!("an envelope of an unknown type is still acknowledged")
        };
        assert_eq!(e.kind, EnvelopeKind::Other("brand_new".into()));
        assert!(parse_frame("not json").is_err());
        assert!(parse_frame(r#"{"no":"type"}"#).is_err());
    }

    #[test]
    fn an_ack_carries_the_payload_only_when_there_is_one() {
        let plain: Value = serde_json::from_str(&ack("e1", None)).unwrap();
        assert_eq!(plain, json!({ "envelope_id": "e1" }));
        let with: Value = serde_json::from_str(&ack("e2", Some(json!({ "text": "hi" })))).unwrap();
        assert_eq!(
            with,
            json!({ "envelope_id": "e2", "payload": { "text": "hi" } })
        );
    }
}
