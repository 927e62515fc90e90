//! Socket Mode envelopes, handled by the same code as `/slack/*` ([`super::slack`]): an
//! `events_api` envelope is an event callback, an `interactive` one an interaction, a
//! `slash_commands` one a command. The answer HTTP would send (a slash command's message, a
//! modal's `response_action`) becomes the ack's `payload`.
//!
//! An envelope is acted on once: its id is claimed in the same table as signed requests'
//! signatures (the replay guard, shared by replicas, kept 15 minutes), so an envelope Slack
//! delivers again after a reconnect (`retry_attempt` > 0) is acknowledged and does nothing.
//! Events are also de-duplicated by their `event_id`, for good. A failure on our side (what
//! HTTP answers with a 5xx) releases the claim and sends no ack, so Slack delivers it again;
//! a payload we cannot read is acknowledged (a retry would not read better) and logged.

use axum::response::Response;
use serde_json::Value;
use std::sync::Arc;

use super::error::{ApiError, ApiResult, REQUEST_ID};
use super::state::AppState;
use crate::slack::incoming::payloads::{EventEnvelope, Interaction, SlashCommand};
use crate::slack::socket::{Dispatch, Envelope, EnvelopeKind, Handled};
use crate::storage::group_commit::SignatureClaim;

/// Largest response body read back into an ack (Slack's own limits are far below).
const MAX_REPLY_BYTES: usize = 1024 * 1024;

/// The handler the Socket Mode connection loop calls for each envelope.
pub fn dispatcher(state: AppState) -> Dispatch {
    Arc::new(move |envelope: Envelope| {
        let state = state.clone();
        Box::pin(async move {
            let id = envelope.envelope_id.clone();
            // The envelope id stands in for the request id in logs and error bodies.
            REQUEST_ID.scope(id, handle(state, envelope)).await
        })
    })
}

#[tracing::instrument(skip_all, fields(envelope_id = %envelope.envelope_id, kind = envelope.kind.as_str(), retry = envelope.retry_attempt))]
async fn handle(state: AppState, envelope: Envelope) -> Handled {
    let now = state.clock.now();
    let claim = SignatureClaim {
        signature: format!("socket-envelope:{}", envelope.envelope_id),
        signed_at: now,
        now,
    };
    let result = match envelope.kind {
        EnvelopeKind::EventsApi => match parse::<EventEnvelope>(envelope.payload) {
            Ok(event) => {
                super::slack::once(&state, claim, super::slack::event(&state, event)).await
            }
            Err(e) => Err(e),
        },
        EnvelopeKind::Interactive => {
            let team = super::slack::team_of_interaction_value(&envelope.payload);
            match parse::<Interaction>(envelope.payload) {
                Ok(interaction) => {
                    super::slack::once_deferred(
                        &state,
                        claim,
                        super::slack::interaction_outcome(&state, team, interaction),
                    )
                    .await
                }
                Err(e) => Err(e),
            }
        }
        EnvelopeKind::SlashCommands => match parse::<SlashCommand>(envelope.payload) {
            Ok(command) => {
                super::slack::once(&state, claim, super::slack::command_reply(&state, command))
                    .await
            }
            Err(e) => Err(e),
        },
        EnvelopeKind::Other(kind) => {
            tracing::info!(%kind, "Socket Mode: an envelope of a type pulseloop does not handle; acknowledged");
            return Handled::Ack(None);
        }
    };
    match result {
        Ok(response) if response.status().is_server_error() => Handled::Failed,
        Ok(response) => Handled::Ack(reply_payload(response).await),
        Err(e) if e.status().is_server_error() => {
            // Logs the cause (with the envelope id) as the HTTP path does.
            let _ = axum::response::IntoResponse::into_response(e);
            Handled::Failed
        }
        Err(e) => {
            tracing::warn!(error = %e, "Socket Mode: envelope refused; acknowledged so that Slack does not send it again");
            Handled::Ack(None)
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(payload: Value) -> ApiResult<T> {
    serde_json::from_value(payload)
        .map_err(|e| ApiError::BadRequest(format!("unreadable envelope payload: {e}")))
}

/// The JSON body HTTP would have answered with, if any.
async fn reply_payload(response: Response) -> Option<Value> {
    let bytes = axum::body::to_bytes(response.into_body(), MAX_REPLY_BYTES)
        .await
        .ok()?;
    if bytes.is_empty() {
        return None;
    }
    serde_json::from_slice(&bytes).ok()
}
