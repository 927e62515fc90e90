//! OAuth v2 install: the bot scopes pulseloop asks for (the one list; the app manifest is
//! checked against it), the signed `state` that carries an install from `/slack/install` to
//! the callback, and the cipher that keeps bot tokens sealed at rest.
//!
//! Keys come from the server secret (`PULSELOOP_ENCRYPTION_KEY`) through
//! [`crate::config::keys::derive_key`], each with its own label, apart from the reply relay's.
//! - `state` = `<expires_ms>.<nonce>.<hmac>`: HMAC-SHA256 over `<expires_ms>.<nonce>`. It is
//!   refused when the signature is wrong, when it has expired (10 minutes), and a second time
//!   (the nonce is used once, in the database).
//! - a sealed token = hex(nonce ‖ AES-256-GCM(token)) with the team id as associated data:
//!   a token sealed for one workspace does not open as another's.

use chrono::{DateTime, Duration, Utc};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};

use crate::config::keys::derive_key;

/// The bot scopes asked for at install: the app's one list, which the manifests in `deploy/`
/// declare and `tests/deploy.rs` derives from the methods called and events handled.
pub use crate::slack::app::BOT_SCOPES;

/// How long an install link's `state` stays good (Slack's code lives about as long).
pub const STATE_TTL_MINUTES: i64 = 10;

const STATE_LABEL: &[u8] = b"pulseloop oauth: state";
const TOKEN_LABEL: &[u8] = b"pulseloop oauth: bot tokens";

/// Why a `state` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the state is not one pulseloop made (malformed)")]
    Malformed,
    #[error("the state's signature does not match (not made by this server, or altered)")]
    BadSignature,
    #[error("the state expired at {0}; start the install again from /slack/install")]
    Expired(DateTime<Utc>),
}

/// A verified state: its nonce (to be used once) and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedState {
    pub nonce: String,
    pub expires_at: DateTime<Utc>,
}

/// A sealed token did not open (another key, another team, or altered).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the stored bot token does not open with this PULSELOOP_ENCRYPTION_KEY (was the key changed?)"
)]
pub struct SealError;

/// The OAuth keys derived from the server secret.
#[derive(Clone)]
pub struct OAuthKeys {
    state: hmac::Key,
    tokens: std::sync::Arc<LessSafeKey>,
}

impl std::fmt::Debug for OAuthKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OAuthKeys(..)")
    }
}

impl OAuthKeys {
    pub fn from_secret(secret: &SecretString) -> Self {
        let state = hmac::Key::new(hmac::HMAC_SHA256, &derive_key(secret, STATE_LABEL));
        let key = derive_key(secret, TOKEN_LABEL);
        let tokens = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &key).expect("a 32-byte key is an AES-256 key"),
        );
        Self {
            state,
            tokens: std::sync::Arc::new(tokens),
        }
    }

    /// A fresh state, good for [`STATE_TTL_MINUTES`] from `now`.
    pub fn new_state(&self, now: DateTime<Utc>) -> String {
        let mut nonce = [0u8; 16];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the system's random source works");
        let expires = (now + Duration::minutes(STATE_TTL_MINUTES)).timestamp_millis();
        let signed = format!("{expires}.{}", hex::encode(nonce));
        let tag = hmac::sign(&self.state, signed.as_bytes());
        format!("{signed}.{}", hex::encode(tag.as_ref()))
    }

    /// Checks a state's signature and expiry (single use is the caller's: the database).
    pub fn verify_state(
        &self,
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<VerifiedState, StateError> {
        let mut parts = state.splitn(3, '.');
        let (Some(expires), Some(nonce), Some(tag)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(StateError::Malformed);
        };
        let expires_ms: i64 = expires.parse().map_err(|_| StateError::Malformed)?;
        let tag = hex::decode(tag).map_err(|_| StateError::Malformed)?;
        if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StateError::Malformed);
        }
        hmac::verify(&self.state, format!("{expires}.{nonce}").as_bytes(), &tag)
            .map_err(|_| StateError::BadSignature)?;
        let expires_at =
            DateTime::from_timestamp_millis(expires_ms).ok_or(StateError::Malformed)?;
        if now >= expires_at {
            return Err(StateError::Expired(expires_at));
        }
        Ok(VerifiedState {
            nonce: nonce.to_string(),
            expires_at,
        })
    }

    /// Seals `token` for workspace `team_id`.
    pub fn seal_token(&self, team_id: &str, token: &SecretString) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the system's random source works");
        let mut data = token.expose_secret().as_bytes().to_vec();
        self.tokens
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(team_id.as_bytes()),
                &mut data,
            )
            .expect("AES-GCM seals a short token");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        hex::encode(out)
    }

    /// Opens a token sealed for `team_id`.
    pub fn open_token(&self, team_id: &str, sealed: &str) -> Result<SecretString, SealError> {
        let bytes = hex::decode(sealed).map_err(|_| SealError)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError);
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError)?;
        let mut data = rest.to_vec();
        let plain = self
            .tokens
            .open_in_place(nonce, Aad::from(team_id.as_bytes()), &mut data)
            .map_err(|_| SealError)?;
        let text = std::str::from_utf8(plain).map_err(|_| SealError)?;
        Ok(SecretString::from(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn keys(secret: &str) -> OAuthKeys {
        OAuthKeys::from_secret(&SecretString::from(secret))
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 1, 4, 9, 0, 0).unwrap()
    }

    #[test]
    fn a_state_verifies_until_it_expires_and_only_with_its_key() {
        let k = keys("server secret");
        let state = k.new_state(t0());
        let ok = k.verify_state(&state, t0() + Duration::minutes(9)).unwrap();
        assert_eq!(ok.expires_at, t0() + Duration::minutes(STATE_TTL_MINUTES));
        assert!(matches!(
            k.verify_state(&state, t0() + Duration::minutes(10)),
            Err(StateError::Expired(_))
        ));
        assert_eq!(
            keys("another secret").verify_state(&state, t0()),
            Err(StateError::BadSignature)
        );
        // A later expiry with the old signature is refused.
        let (_, rest) = state.split_once('.').unwrap();
        let forged = format!("{}.{rest}", (t0() + Duration::days(1)).timestamp_millis());
        assert_eq!(k.verify_state(&forged, t0()), Err(StateError::BadSignature));
        assert_eq!(k.verify_state("x.y", t0()), Err(StateError::Malformed));
        assert_ne!(k.new_state(t0()), state, "each state has its own nonce");
    }

    #[test]
    fn a_token_opens_only_for_its_team_and_key_and_is_not_in_the_sealed_text() {
        let k = keys("server secret");
        let token = SecretString::from("xoxb-1-2-abcdef");
        let sealed = k.seal_token("T1", &token);
        assert!(!sealed.contains("xoxb"));
        assert_eq!(
            k.open_token("T1", &sealed).unwrap().expose_secret(),
            "xoxb-1-2-abcdef"
        );
        assert_eq!(k.open_token("T2", &sealed).unwrap_err(), SealError);
        assert_eq!(
            keys("other").open_token("T1", &sealed).unwrap_err(),
            SealError
        );
        assert_ne!(
            k.seal_token("T1", &token),
            sealed,
            "a fresh nonce each time"
        );
    }
}
