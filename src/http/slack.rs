//! Slack's endpoints: `POST /slack/events`, `/slack/interactions`, `/slack/commands`.
//!
//! Order of work on every request: size limit (tower), signature headers, then the signature
//! on the raw body ([`super::verified::VerifiedSlackRequest`]), the replay guard ([`once`]: a
//! signed request is acted on once), parse into typed payloads
//! ([`crate::slack::incoming::payloads`]), then hand over to the services in `crate::pulse`.
//! Slack wants an answer within 3 seconds, so anything slow goes to the outbox instead of
//! being done inline.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use super::state::AppState;
use super::verified::VerifiedSlackRequest;
use crate::http::error::{ApiError, ApiResult};
use crate::slack::incoming::payloads::{EventEnvelope, Interaction, SlashCommand};
use crate::storage::group_commit::{with_deferred_claim, SignatureClaim};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/slack/events", post(events))
        .route("/slack/interactions", post(interactions))
        .route("/slack/commands", post(slash_commands))
}

/// Acts on a signed request once. The signature (an HMAC over timestamp and body) is claimed
/// in the database, shared by every replica; a second arrival of the same signed request
/// within Slack's window is a replay (a captured click or command sent again): it gets a 200
/// and does nothing. When the work fails on our side (5xx) the claim is released, so that a
/// retry of the same request is handled. The claim is a grouped write
/// ([`crate::storage::group_commit`]): concurrent requests share its commit.
async fn once<F>(state: &AppState, req: &VerifiedSlackRequest, work: F) -> ApiResult<Response>
where
    F: std::future::Future<Output = ApiResult<Response>>,
{
    if !state
        .store
        .claim_signature_grouped(claim_of(state, req))
        .await?
    {
        return Ok(replay());
    }
    let result = work.await;
    release(state, req, failed(&result)).await;
    result
}

/// [`once`] for interactions, with one commit per answer instead of two: the claim is left to
/// the answer's own grouped write, which claims it in the same transaction as the answer (a
/// replay stores nothing). Work that writes no answer (a modal opened, an opt-out, a late
/// click) is idempotent or single-use (a trigger_id), so its claim is taken after it.
async fn once_deferred<F>(
    state: &AppState,
    req: &VerifiedSlackRequest,
    work: F,
) -> ApiResult<Response>
where
    F: std::future::Future<Output = ApiResult<Response>>,
{
    let (result, left) = with_deferred_claim(claim_of(state, req), work).await;
    let failed = failed(&result);
    release(state, req, failed).await;
    if failed {
        return result;
    }
    if let Some(claim) = left {
        if !state.store.claim_signature_grouped(claim).await? {
            return Ok(replay());
        }
    }
    result
}

fn claim_of(state: &AppState, req: &VerifiedSlackRequest) -> SignatureClaim {
    let now = state.clock.now();
    SignatureClaim {
        signature: req.signature.clone(),
        signed_at: chrono::DateTime::from_timestamp(req.timestamp_seconds, 0).unwrap_or(now),
        now,
    }
}

fn replay() -> Response {
    metrics::counter!("slack_replays_ignored_total").increment(1);
    tracing::warn!("a signed request arrived a second time (a replay); acknowledged, ignored");
    StatusCode::OK.into_response()
}

fn failed(result: &ApiResult<Response>) -> bool {
    match result {
        Ok(response) => response.status().is_server_error(),
        Err(e) => e.status().is_server_error(),
    }
}

async fn release(state: &AppState, req: &VerifiedSlackRequest, failed: bool) {
    if failed {
        if let Err(e) = state.store.forget_signature(&req.signature).await {
            tracing::warn!(error = %e, "could not release the signature of a failed request");
        }
    }
}

#[tracing::instrument(skip_all, fields(retry = req.retry_num))]
async fn events(State(state): State<AppState>, req: VerifiedSlackRequest) -> ApiResult<Response> {
    once(&state, &req, handle_event(&state, &req)).await
}

async fn handle_event(state: &AppState, req: &VerifiedSlackRequest) -> ApiResult<Response> {
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
            // The event id and the event's effects commit together: a failure rolls back
            // both, so Slack's retry is handled instead of dropped as a duplicate.
            let mut tx = state.store.begin().await?;
            let fresh = tx
                .record_event_once(&event_id, event.type_name(), team_id.as_ref(), now)
                .await?;
            if !fresh {
                tracing::debug!(%event_id, "duplicate event delivery ignored");
                return Ok(().into_response());
            }
            if let (Some(team), false) = (team_id.as_ref(), state.settings.slack.sandbox) {
                tx.record_workspace(team, "event", now).await?;
            }
            crate::pulse::events::handle(&state.pulses, &mut tx, team_id.as_ref(), event).await?;
            tx.commit().await?;
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
    once_deferred(&state, &req, handle_interaction(&state, &req)).await
}

async fn handle_interaction(state: &AppState, req: &VerifiedSlackRequest) -> ApiResult<Response> {
    let form: InteractionForm = serde_urlencoded::from_bytes(&req.body)
        .map_err(|e| ApiError::BadRequest(format!("expected a form with a payload field: {e}")))?;
    let interaction: Interaction = serde_json::from_str(&form.payload)
        .map_err(|e| ApiError::BadRequest(format!("not a Slack interaction payload: {e}")))?;
    if crate::pulse::admin_view::is_admin_interaction(&interaction) {
        let outcome =
            crate::pulse::admin_view::handle(&state.pulses, &state.scheduler, interaction).await?;
        return Ok(outcome.into_response());
    }
    let outcome = crate::pulse::interactions::handle(&state.pulses, interaction).await?;
    Ok(outcome.into_response())
}

#[tracing::instrument(skip_all)]
async fn slash_commands(
    State(state): State<AppState>,
    req: VerifiedSlackRequest,
) -> ApiResult<Response> {
    once(&state, &req, handle_command(&state, &req)).await
}

async fn handle_command(state: &AppState, req: &VerifiedSlackRequest) -> ApiResult<Response> {
    let command: SlashCommand = serde_urlencoded::from_bytes(&req.body)
        .map_err(|e| ApiError::BadRequest(format!("not a slash command form: {e}")))?;
    let reply = crate::pulse::commands::handle(&state.pulses, command).await?;
    Ok(reply.into_response())
}
