//! An extractor that only yields a body Slack signed. The signature is checked on the raw
//! bytes before any parsing; a failure is a 401 and nothing downstream runs.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use secrecy::ExposeSecret;

use crate::http::error::ApiError;
use crate::slack::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::state::AppState;

pub struct VerifiedSlackRequest {
    pub body: Bytes,
    /// `X-Slack-Retry-Num`, present when Slack retries an event.
    pub retry_num: Option<u32>,
}

impl FromRequest<AppState> for VerifiedSlackRequest {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let body = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest(rejection.body_text())
            }
        })?;
        signature::verify(
            state.signing_secret.expose_secret().as_bytes(),
            header(TIMESTAMP_HEADER),
            header(SIGNATURE_HEADER),
            &body,
            state.clock.now(),
        )
        .map_err(|e| {
            metrics::counter!("slack_signature_rejected_total").increment(1);
            tracing::warn!(reason = %e, "rejected a request not signed by Slack");
            ApiError::Unauthorized(e.to_string())
        })?;
        let retry_num = header("x-slack-retry-num").and_then(|v| v.parse().ok());
        Ok(Self { body, retry_num })
    }
}
