//! Slack inbound: `POST /slack/events`, `/slack/interactions`, `/slack/commands`.
//!
//! Order of work on every request: size limit (tower), signature on the raw body
//! ([`verified::VerifiedSlackRequest`]), parse into typed payloads ([`payloads`]), then hand
//! over to the product logic in `crate::pulse`. Slack wants an answer within 3 seconds, so
//! anything slow goes to the outbox instead of being done inline.

pub mod commands;
pub mod payloads;
pub mod verified;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use crate::http::error::{ApiError, ApiResult};
use crate::state::AppState;
use payloads::{EventEnvelope, Interaction, SlashCommand};
use verified::VerifiedSlackRequest;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/slack/events", post(events))
        .route("/slack/interactions", post(interactions))
        .route("/slack/commands", post(slash_commands))
}

#[tracing::instrument(skip_all, fields(retry = req.retry_num))]
async fn events(State(state): State<AppState>, req: VerifiedSlackRequest) -> ApiResult<Response> {
    let envelope: EventEnvelope = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::BadRequest(format!("not a Slack event envelope: {e}")))?;
    match envelope {
        EventEnvelope::UrlVerification { challenge } => {
            Ok(Json(json!({ "challenge": challenge })).into_response())
        }
        EventEnvelope::EventCallback {
            event_id,
            team_id,
            event,
            ..
        } => {
            let now = state.clock.now();
            let fresh = state
                .store
                .record_event_once(&event_id, event.type_name(), team_id.as_deref(), now)
                .await?;
            if !fresh {
                tracing::debug!(%event_id, "duplicate event delivery ignored");
                return Ok(().into_response());
            }
            crate::pulse::events::handle(&state, team_id.as_deref(), event).await?;
            Ok(().into_response())
        }
        EventEnvelope::AppRateLimited {
            team_id,
            minute_rate_limited,
        } => {
            tracing::warn!(
                ?team_id,
                ?minute_rate_limited,
                "Slack is rate limiting our events"
            );
            Ok(().into_response())
        }
        EventEnvelope::Unknown => {
            tracing::debug!("ignored an event envelope of an unknown type");
            Ok(().into_response())
        }
    }
}

#[derive(serde::Deserialize)]
struct InteractionForm {
    payload: String,
}

#[tracing::instrument(skip_all)]
async fn interactions(
    State(state): State<AppState>,
    req: VerifiedSlackRequest,
) -> ApiResult<Response> {
    let form: InteractionForm = serde_urlencoded::from_bytes(&req.body)
        .map_err(|e| ApiError::BadRequest(format!("expected a form with a payload field: {e}")))?;
    let interaction: Interaction = serde_json::from_str(&form.payload)
        .map_err(|e| ApiError::BadRequest(format!("not a Slack interaction payload: {e}")))?;
    crate::pulse::interactions::handle(&state, interaction).await
}

#[tracing::instrument(skip_all)]
async fn slash_commands(
    State(state): State<AppState>,
    req: VerifiedSlackRequest,
) -> ApiResult<Response> {
    let command: SlashCommand = serde_urlencoded::from_bytes(&req.body)
        .map_err(|e| ApiError::BadRequest(format!("not a slash command form: {e}")))?;
    let reply = crate::pulse::commands::handle(&state, command).await?;
    Ok(Json(reply).into_response())
}
