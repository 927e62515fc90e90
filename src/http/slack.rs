//! Slack's endpoints: `POST /slack/events`, `/slack/interactions`, `/slack/commands`.
//!
//! Order of work on every request: size limit (tower), signature headers, then the signature
//! on the raw body ([`super::verified::VerifiedSlackRequest`]), the replay guard ([`once`]: a
//! signed request is acted on once), parse into typed payloads
//! ([`crate::slack::incoming::payloads`]), route by the request's `team_id` to its workspace's
//! installation ([`route`]: its token, or nothing for a revoked one; docs/install.md), then
//! hand over to the services in `crate::pulse`.
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
/// ([`crate::storage::group_commit`]): concurrent requests share its commit. Socket Mode
/// claims its envelope ids the same way (`super::socket`).
pub(super) async fn once<F>(state: &AppState, claim: SignatureClaim, work: F) -> ApiResult<Response>
where
    F: std::future::Future<Output = ApiResult<Response>>,
{
    let key = claim.signature.clone();
    if !state.store.claim_signature_grouped(claim).await? {
        return Ok(replay());
    }
    let result = work.await;
    release(state, &key, failed(&result)).await;
    result
}

/// [`once`] for interactions, with one commit per answer instead of two: the claim is left to
/// the answer's own grouped write, which claims it in the same transaction as the answer (a
/// replay stores nothing). Work that writes no answer (a modal opened, an opt-out, a late
/// click) is idempotent or single-use (a trigger_id), so its claim is taken after it.
pub(super) async fn once_deferred<F>(
    state: &AppState,
    claim: SignatureClaim,
    work: F,
) -> ApiResult<Response>
where
    F: std::future::Future<Output = ApiResult<Response>>,
{
    let key = claim.signature.clone();
    let (result, left) = with_deferred_claim(claim, work).await;
    let failed = failed(&result);
    release(state, &key, failed).await;
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

async fn release(state: &AppState, key: &str, failed: bool) {
    if failed {
        if let Err(e) = state.store.forget_signature(key).await {
            tracing::warn!(error = %e, "could not release the signature of a failed request");
        }
    }
}

#[tracing::instrument(skip_all, fields(retry = req.retry_num))]
async fn events(State(state): State<AppState>, req: VerifiedSlackRequest) -> ApiResult<Response> {
    once(
        &state,
        claim_of(&state, &req),
        Box::pin(handle_event(&state, &req)),
    )
    .await
}

async fn handle_event(state: &AppState, req: &VerifiedSlackRequest) -> ApiResult<Response> {
    let envelope: EventEnvelope = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::BadRequest(format!("not a Slack event envelope: {e}")))?;
    event(state, envelope).await
}

/// An Events API envelope, from `/slack/events` or a Socket Mode envelope.
pub(super) async fn event(state: &AppState, envelope: EventEnvelope) -> ApiResult<Response> {
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
            let (pulses, team) = match route(state, team_id.as_ref().map(|t| t.as_str())).await? {
                Routed::Serve(pulses, team) => (pulses, team),
                Routed::Refuse(reason) => {
                    // Acknowledged (Slack retries anything else), never acted on.
                    tracing::warn!(%event_id, kind = event.type_name(), %reason, "event of a workspace pulseloop does not serve; ignored");
                    return Ok(().into_response());
                }
                Routed::NotInstalled(team) => {
                    tracing::warn!(%event_id, kind = event.type_name(), %team, "event of a workspace pulseloop is not installed in (OAuth-only mode); acknowledged and ignored");
                    return Ok(().into_response());
                }
            };
            // The event id and the event's effects commit together: a failure rolls back
            // both, so Slack's retry is handled instead of dropped as a duplicate.
            crate::storage::installations::for_team(team, async move {
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
                crate::pulse::events::handle(&pulses, &mut tx, team_id.as_ref(), event).await?;
                tx.commit().await?;
                Ok(().into_response())
            })
            .await
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
    // Boxed: the handler's future is moved through several wrappers (claim, workspace), and
    // each move of an unboxed future copies all of it.
    once_deferred(
        &state,
        claim_of(&state, &req),
        Box::pin(handle_interaction(&state, &req)),
    )
    .await
}

async fn handle_interaction(state: &AppState, req: &VerifiedSlackRequest) -> ApiResult<Response> {
    let form: InteractionForm = serde_urlencoded::from_bytes(&req.body)
        .map_err(|e| ApiError::BadRequest(format!("expected a form with a payload field: {e}")))?;
    let (interaction, team) = Interaction::from_payload(&form.payload)
        .map_err(|e| ApiError::BadRequest(format!("not a Slack interaction payload: {e}")))?;
    interaction_outcome(state, team, interaction).await
}

/// An interaction, from `/slack/interactions` or a Socket Mode envelope, routed by its
/// workspace (`team`, read from the raw payload: not every interaction type carries it in
/// the same place).
pub(super) async fn interaction_outcome(
    state: &AppState,
    team: Option<String>,
    interaction: Interaction,
) -> ApiResult<Response> {
    let (pulses, team) = match route(state, team.as_deref()).await? {
        Routed::Serve(pulses, team) => (pulses, team),
        Routed::Refuse(reason) => {
            tracing::warn!(%reason, "interaction from a workspace pulseloop does not serve; ignored");
            return Ok(().into_response());
        }
        Routed::NotInstalled(team) => {
            tracing::warn!(%team, "interaction from a workspace pulseloop is not installed in (OAuth-only mode); acknowledged and ignored");
            return Ok(().into_response());
        }
    };
    if crate::pulse::admin_view::is_admin_interaction(&interaction) {
        let outcome = crate::storage::installations::for_team(
            team,
            Box::pin(crate::pulse::admin_view::handle(
                &pulses,
                &state.scheduler,
                interaction,
            )),
        )
        .await?;
        return Ok(outcome.into_response());
    }
    let outcome = crate::storage::installations::for_team(
        team,
        Box::pin(crate::pulse::interactions::handle(&pulses, interaction)),
    )
    .await?;
    Ok(outcome.into_response())
}

#[tracing::instrument(skip_all)]
async fn slash_commands(
    State(state): State<AppState>,
    req: VerifiedSlackRequest,
) -> ApiResult<Response> {
    once(
        &state,
        claim_of(&state, &req),
        Box::pin(handle_command(&state, &req)),
    )
    .await
}

async fn handle_command(state: &AppState, req: &VerifiedSlackRequest) -> ApiResult<Response> {
    let command: SlashCommand = serde_urlencoded::from_bytes(&req.body)
        .map_err(|e| ApiError::BadRequest(format!("not a slash command form: {e}")))?;
    command_reply(state, command).await
}

/// A slash command, from `/slack/commands` or a Socket Mode envelope, routed by its workspace.
pub(super) async fn command_reply(state: &AppState, command: SlashCommand) -> ApiResult<Response> {
    let (pulses, team) = match route(state, command.team_id.as_ref().map(|t| t.as_str())).await? {
        Routed::Serve(pulses, team) => (pulses, team),
        Routed::Refuse(reason) => {
            tracing::warn!(%reason, "slash command from a workspace pulseloop does not serve");
            return Ok(Json(json!({
                "response_type": "ephemeral",
                "text": "pulseloop is no longer installed in this workspace (it was uninstalled \
                         or its access was revoked). Ask an admin to install it again.",
            }))
            .into_response());
        }
        Routed::NotInstalled(team) => {
            tracing::warn!(%team, "slash command from a workspace pulseloop is not installed in (OAuth-only mode); told how to install");
            return Ok(not_installed_reply(state));
        }
    };
    let reply = crate::storage::installations::for_team(
        team,
        crate::pulse::commands::handle(&pulses, command),
    )
    .await?;
    Ok(reply.into_response())
}

/// What serves a request of one workspace.
enum Routed {
    /// The services with the workspace's token, and the workspace its outbox rows belong to
    /// (`None`: the default installation).
    Serve(Box<crate::pulse::Pulses>, Option<String>),
    /// The workspace's installation is revoked or unusable: nothing is done for it.
    Refuse(String),
    /// OAuth-only mode and the workspace has no installation: nothing is done or stored for
    /// it; a slash command is told how to install (the team id, never a token, is logged).
    NotInstalled(String),
}

/// The ephemeral reply to a slash command from a workspace pulseloop is not installed in
/// (OAuth-only mode): the install link in full when `SLACK_REDIRECT_URL` gives pulseloop's
/// public address, else its path.
fn not_installed_reply(state: &AppState) -> Response {
    let link = state
        .settings
        .slack
        .redirect_url
        .as_deref()
        .and_then(|url| url.strip_suffix("/slack/oauth/callback"))
        .map_or_else(
            || "/slack/install on pulseloop's address".to_string(),
            |base| format!("{base}/slack/install"),
        );
    Json(json!({
        "response_type": "ephemeral",
        "text": format!(
            "pulseloop is not installed in this workspace. An admin of the workspace can \
             install it by opening {link}."
        ),
    }))
    .into_response()
}

/// Routes a request by its `team_id` (docs/install.md, "Routing"): an installed workspace to
/// its own token; a revoked one nowhere; any other (or none) to the default installation, or,
/// in OAuth-only mode, nowhere.
async fn route(state: &AppState, team_id: Option<&str>) -> ApiResult<Routed> {
    use crate::slack::outbound::TeamRoute;
    let team_id = team_id.filter(|t| !t.is_empty());
    let Some(team_id) = team_id else {
        if state.pulses.teams.oauth_only() {
            return Ok(Routed::NotInstalled("(none given)".into()));
        }
        return Ok(Routed::Serve(Box::new(state.pulses.clone()), None));
    };
    Ok(match state.pulses.teams.route(team_id).await? {
        TeamRoute::Default => Routed::Serve(Box::new(state.pulses.clone()), None),
        TeamRoute::Installed { team_id, client } => {
            Routed::Serve(Box::new(state.pulses.with_client(client)), Some(team_id))
        }
        TeamRoute::Revoked { team_id, reason } => {
            Routed::Refuse(format!("{team_id} was revoked ({reason})"))
        }
        TeamRoute::Unusable { team_id, reason } => {
            Routed::Refuse(format!("{team_id}'s token cannot be used: {reason}"))
        }
        TeamRoute::NotInstalled { team_id } => Routed::NotInstalled(team_id),
    })
}

/// The workspace of an interaction payload already parsed (a Socket Mode envelope's):
/// `team.id`, or `user.team_id`, as [`Interaction::from_payload`] reads it from text.
pub(super) fn team_of_interaction_value(v: &serde_json::Value) -> Option<String> {
    v.pointer("/team/id")
        .or_else(|| v.pointer("/user/team_id"))
        .and_then(|t| t.as_str())
        .map(String::from)
}
