//! Slack request signing (`v0` HMAC-SHA256 over `v0:{timestamp}:{raw body}`).
//!
//! The same code signs (the emulator playing Slack) and verifies (the bot's inbound routes),
//! so the two sides can never drift apart.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Slack rejects requests whose timestamp is further than this from now, in either direction.
pub const MAX_SKEW_SECONDS: i64 = 300;

pub const SIGNATURE_HEADER: &str = "x-slack-signature";
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";

/// `v0=` + lowercase hex HMAC-SHA256 of `v0:{timestamp}:{body}` keyed with the signing secret.
pub fn compute_signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// Why a request was not accepted as coming from Slack. Every variant becomes a 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Slack-Signature or X-Slack-Request-Timestamp header")]
    MissingHeaders,
    #[error("malformed request timestamp")]
    MalformedTimestamp,
    #[error("request timestamp is more than 5 minutes away from now")]
    Stale,
    #[error("malformed signature (expected v0=<64 hex digits>)")]
    MalformedSignature,
    #[error("signature does not match")]
    Mismatch,
}

/// The signature headers, checked for presence, shape and freshness. This runs before the
/// body is read, so an unsigned or stale request is refused without waiting for its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// The timestamp as sent (trimmed): it is part of the signed text.
    pub timestamp: String,
    /// Seconds since the epoch, as parsed from `timestamp`.
    pub unix_seconds: i64,
    /// `v0=` + 64 lowercase hex digits.
    pub signature: String,
}

/// Checks everything about a request that does not need its body.
pub fn check_headers(
    timestamp: Option<&str>,
    signature: Option<&str>,
    now: DateTime<Utc>,
) -> Result<SignedHeaders, SignatureError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(SignatureError::MissingHeaders);
    };
    let timestamp = timestamp.trim();
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| SignatureError::MalformedTimestamp)?;
    // abs_diff: no overflow whatever the header says (i64::MIN included).
    if now.timestamp().abs_diff(ts) > MAX_SKEW_SECONDS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let hex_part = signature
        .strip_prefix("v0=")
        .ok_or(SignatureError::MalformedSignature)?;
    if hex_part.len() != 64 || !hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SignatureError::MalformedSignature);
    }
    Ok(SignedHeaders {
        timestamp: timestamp.to_string(),
        unix_seconds: ts,
        signature: format!("v0={}", hex_part.to_ascii_lowercase()),
    })
}

/// Checks the raw body against headers that passed [`check_headers`].
pub fn verify_body(
    secret: &[u8],
    headers: &SignedHeaders,
    body: &[u8],
) -> Result<(), SignatureError> {
    let expected = compute_signature(secret, &headers.timestamp, body);
    if expected
        .as_bytes()
        .ct_eq(headers.signature.as_bytes())
        .into()
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Checks a request's headers and raw body against the signing secret at the instant `now`.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let headers = check_headers(timestamp, signature, now)?;
    verify_body(secret, &headers, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";

    fn at(ts: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(ts, 0).unwrap()
    }

    #[test]
    fn a_signature_made_here_verifies() {
        let sig = compute_signature(SECRET, "1531420618", b"token=x&team_id=T1");
        assert!(sig.starts_with("v0=") && sig.len() == 67);
        assert_eq!(
            verify(
                SECRET,
                Some("1531420618"),
                Some(&sig),
                b"token=x&team_id=T1",
                at(1531420618)
            ),
            Ok(())
        );
    }

    #[test]
    fn window_is_five_minutes_both_ways() {
        let sig = compute_signature(SECRET, "1000000", b"{}");
        let check = |now| verify(SECRET, Some("1000000"), Some(&sig), b"{}", at(now));
        assert_eq!(check(1000000 + 299), Ok(()));
        assert_eq!(check(1000000 - 299), Ok(()));
        assert_eq!(check(1000000 + 301), Err(SignatureError::Stale));
        assert_eq!(check(1000000 - 301), Err(SignatureError::Stale));
    }

    #[test]
    fn other_versions_and_garbage_are_rejected() {
        let sig = compute_signature(SECRET, "1000000", b"{}");
        let v1 = sig.replacen("v0=", "v1=", 1);
        let now = at(1000000);
        assert_eq!(
            verify(SECRET, Some("1000000"), Some(&v1), b"{}", now),
            Err(SignatureError::MalformedSignature)
        );
        assert_eq!(
            verify(SECRET, Some("soon"), Some(&sig), b"{}", now),
            Err(SignatureError::MalformedTimestamp)
        );
        assert_eq!(
            verify(SECRET, None, Some(&sig), b"{}", now),
            Err(SignatureError::MissingHeaders)
        );
        assert_eq!(
            verify(b"other", Some("1000000"), Some(&sig), b"{}", now),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn extreme_timestamps_are_stale_not_an_overflow() {
        let now = at(1_000_000);
        for ts in ["-9223372036854775808", "9223372036854775807"] {
            let sig = compute_signature(SECRET, ts, b"{}");
            assert_eq!(
                verify(SECRET, Some(ts), Some(&sig), b"{}", now),
                Err(SignatureError::Stale),
                "{ts}"
            );
        }
        assert_eq!(
            check_headers(Some("1"), Some("v0=00"), DateTime::<Utc>::MIN_UTC),
            Err(SignatureError::Stale)
        );
    }
}
