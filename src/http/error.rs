//! The one place where service results and errors become HTTP responses.
//!
//! One error type for every HTTP handler, mapped once to a status and a JSON body
//! `{"error": "...", "detail": "..."}`. Internal causes (database text included) are logged
//! with the request id, never sent: a 500 says `internal error` and carries the request id,
//! so an operator can find the cause in the log. The services' own errors
//! ([`ServiceError`], [`SendNowError`]) and results ([`InteractionOutcome`],
//! [`CommandReply`]) are turned into responses here too.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::digest::DigestError;
use crate::pulse::admin_view::AdminOutcome;
use crate::pulse::commands::CommandReply;
use crate::pulse::interactions::InteractionOutcome;
use crate::pulse::ServiceError;
use crate::scheduler::SendNowError;
use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The body of every error response: `{"error": "...", "detail": "..."}` (and the request id
/// on a 500). Also the `ErrorBody` schema of the OpenAPI document.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable code: `bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `unprocessable`, `payload_too_large`, `unavailable` or `internal`.
    #[schema(example = "not_found")]
    pub error: &'static str,
    /// What went wrong, in a sentence (never internal causes).
    #[schema(example = "no program 'leadership-2027'")]
    pub detail: String,
    /// On a 500 only: the request id, to find the cause in the log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("no such record".into()),
            // The database's own words name tables and constraints: logged, not sent.
            StoreError::Conflict(m) => {
                tracing::info!(detail = %m, "a write conflicted with an existing record");
                ApiError::Conflict("the request conflicts with an existing record".into())
            }
            // Overload is a designed state: shed at once with a clear status (see
            // docs/performance.md for what Slack does with it).
            StoreError::Busy => ApiError::Unavailable(
                "too many answers are waiting to be written; try again in a second".into(),
            ),
            other => ApiError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Store(e) => e.into(),
        }
    }
}

impl From<DigestError> for ApiError {
    fn from(e: DigestError) -> Self {
        match e {
            DigestError::NoPeriod(_) | DigestError::NoChannels(_) => {
                ApiError::Unprocessable(e.to_string())
            }
            DigestError::Store(e) => e.into(),
        }
    }
}

impl From<SendNowError> for ApiError {
    fn from(e: SendNowError) -> Self {
        match e {
            e @ SendNowError::AlreadyOpen { .. } => {
                ApiError::Conflict(format!("{e}; wait until it closes"))
            }
            SendNowError::Store(e) => e.into(),
        }
    }
}

/// Slack's reply to an interaction: an empty 200, or the modal's field errors.
impl IntoResponse for InteractionOutcome {
    fn into_response(self) -> Response {
        match self {
            InteractionOutcome::Ack => ().into_response(),
            InteractionOutcome::ViewErrors(errors) => {
                Json(json!({ "response_action": "errors", "errors": errors })).into_response()
            }
        }
    }
}

/// Slack's reply to an admin view interaction: empty, field errors, or a replacing view.
impl IntoResponse for AdminOutcome {
    fn into_response(self) -> Response {
        match self {
            AdminOutcome::Ack => ().into_response(),
            AdminOutcome::Errors(errors) => {
                Json(json!({ "response_action": "errors", "errors": errors })).into_response()
            }
            AdminOutcome::Update(view) => {
                Json(json!({ "response_action": "update", "view": view })).into_response()
            }
        }
    }
}

/// A slash command's reply as Slack reads it (`response_type`, `text`, `blocks`).
impl IntoResponse for CommandReply {
    fn into_response(self) -> Response {
        let response_type = if self.ephemeral {
            "ephemeral"
        } else {
            "in_channel"
        };
        let mut body = json!({ "response_type": response_type, "text": self.text });
        if let Some(blocks) = self.blocks {
            body["blocks"] = blocks;
        }
        Json(body).into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let detail = match &self {
            ApiError::Internal(cause) => {
                let request_id = current_request_id();
                tracing::error!(error = ?cause, request_id = %request_id.as_deref().unwrap_or("-"), "request failed");
                return (
                    status,
                    Json(ErrorBody {
                        error: code,
                        detail: "internal error".into(),
                        request_id: Some(request_id.unwrap_or_else(|| "-".into())),
                    }),
                )
                    .into_response();
            }
            ApiError::PayloadTooLarge => "the request body exceeds the size limit".to_string(),
            ApiError::BadRequest(d)
            | ApiError::Unauthorized(d)
            | ApiError::Forbidden(d)
            | ApiError::NotFound(d)
            | ApiError::Conflict(d)
            | ApiError::Unprocessable(d)
            | ApiError::Unavailable(d) => d.clone(),
        };
        let body = ErrorBody {
            error: code,
            detail,
            request_id: None,
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

tokio::task_local! {
    /// The `x-request-id` of the request being handled (set by the HTTP layer).
    pub static REQUEST_ID: String;
}

fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}
