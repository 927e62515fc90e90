//! An extractor that only yields a body Slack signed. The signature headers and the timestamp
//! are checked before the body is read (an unsigned or stale request is refused at once, even
//! if it announces a large body that never comes); the signature is then checked on the raw
//! bytes before any parsing. A failure is a 401 and nothing downstream runs.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use secrecy::ExposeSecret;

use super::state::AppState;
use crate::http::error::ApiError;
use crate::slack::signature::{self, SignatureError, SIGNATURE_HEADER, TIMESTAMP_HEADER};

pub struct VerifiedSlackRequest {
    pub body: Bytes,
    /// `X-Slack-Retry-Num`, present when Slack retries an event.
    pub retry_num: Option<u32>,
    /// The verified signature and the request timestamp it covers (replay protection).
    pub signature: String,
    pub timestamp_seconds: i64,
}

fn rejected(e: SignatureError) -> ApiError {
    metrics::counter!("slack_signature_rejected_total").increment(1);
    tracing::warn!(reason = %e, "rejected a request not signed by Slack");
    ApiError::Unauthorized(e.to_string())
}

impl FromRequest<AppState> for VerifiedSlackRequest {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let headers = req.headers();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (timestamp, sig) = (header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER));
        let retry_num = header("x-slack-retry-num").and_then(|v| v.parse().ok());
        let signed =
            signature::check_headers(timestamp.as_deref(), sig.as_deref(), state.clock.now())
                .map_err(rejected)?;
        let body = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest(rejection.body_text())
            }
        })?;
        signature::verify_body(
            state.signing_secret.expose_secret().as_bytes(),
            &signed,
            &body,
        )
        .map_err(rejected)?;
        Ok(Self {
            body,
            retry_num,
            signature: signed.signature,
            timestamp_seconds: signed.unix_seconds,
        })
    }
}
