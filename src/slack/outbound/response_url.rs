//! DM updates through an interaction's `response_url` instead of `chat.update`.
//!
//! `chat.update` is Tier 3 (about 50 a minute per workspace): with thousands of members
//! answering within the hour, "thanks, your answer is in" would lag by hours. A click's
//! `response_url` (`replace_original`) is not under the Web API tiers. It may be used 5 times
//! within 30 minutes; pulseloop uses each click's URL once (for the update that click caused)
//! and only within [`USABLE_FOR_MINUTES`], so neither limit is reached.
//!
//! The outbox row stays a `chat.update` of the DM (so a newer update still supersedes a pending
//! one, and the DM's location is still known); the URL rides in its payload under [`FIELD`],
//! which the worker removes before any call. When the URL has expired or is refused, the
//! worker sends the very same update with `chat.update`: an update is idempotent, so trying
//! one way and then the other cannot show the member anything twice.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::storage::outbox::NewOutboxMessage;

/// Where the URL rides in a `chat.update` row's payload (never sent to Slack).
pub const FIELD: &str = "_response_url";

/// Slack honours a response_url for 30 minutes; we stop a minute short (clock differences,
/// the time the post takes).
pub const USABLE_FOR_MINUTES: i64 = 29;

/// Makes a `chat.update` row go to `url` first (the click happened at `now`).
pub fn route_via(msg: &mut NewOutboxMessage, url: &str, now: DateTime<Utc>) {
    if let Some(obj) = msg.payload.as_object_mut() {
        let until = now + Duration::minutes(USABLE_FOR_MINUTES);
        obj.insert(
            FIELD.into(),
            json!({ "url": url, "until_ms": until.timestamp_millis() }),
        );
    }
}

/// Removes the URL from a payload; returns it while it is still usable at `now`.
pub fn take(payload: &mut Value, now: DateTime<Utc>) -> Option<String> {
    let routed = payload.as_object_mut()?.remove(FIELD)?;
    let until = routed.get("until_ms").and_then(Value::as_i64)?;
    if now.timestamp_millis() >= until {
        metrics::counter!("slack_response_url_expired_total").increment(1);
        return None;
    }
    routed.get("url").and_then(Value::as_str).map(String::from)
}

/// What is posted to the URL: the update's message, replacing the original.
pub fn body_of(update: &Value) -> Value {
    let mut body = json!({ "replace_original": true });
    for key in ["text", "blocks"] {
        if let Some(v) = update.get(key) {
            body[key] = v.clone();
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_url_is_used_only_within_its_time() {
        let t = Utc.with_ymd_and_hms(2027, 1, 4, 9, 0, 0).unwrap();
        let mut msg = NewOutboxMessage::new("k", "chat.update", json!({ "text": "t" }));
        route_via(&mut msg, "https://hooks.example/actions/1", t);
        let mut early = msg.payload.clone();
        assert_eq!(
            take(&mut early, t + Duration::minutes(28)).as_deref(),
            Some("https://hooks.example/actions/1")
        );
        assert!(early.get(FIELD).is_none(), "the URL is never sent on");
        let mut late = msg.payload.clone();
        assert_eq!(
            take(&mut late, t + Duration::minutes(USABLE_FOR_MINUTES)),
            None
        );
        assert!(late.get(FIELD).is_none());
        assert_eq!(
            body_of(&json!({ "text": "t", "channel": "C", "ts": "1.2" })),
            json!({ "replace_original": true, "text": "t" })
        );
    }
}
