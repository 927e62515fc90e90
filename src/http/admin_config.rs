//! The admin API's writes to program configuration, behind the same bearer token as the rest
//! of `/api/v1` (actor `api` in the audit log): a survey's cadence, pause and resume,
//! members, the sponsor channel, and where each current value came from. The changes
//! themselves are `pulse::admin`'s (stored as run-time edits; docs/config-precedence.md).
//!
//! The routes are registered, token check and OpenAPI document included, in
//! [`super::admin::api`]. Also the scheduler behind the admin view's "Send now" button
//! ([`SendNow`]).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::state::AppState;
use crate::domain::ids::ProgramId;
use crate::domain::program::{Program, Role, Survey};
use crate::pulse::admin::{self, Actor, AdminError};
use crate::pulse::admin_view::SendNow;
use crate::scheduler::Scheduler;

/// An admin change's error as a response: a bad value is 422 and names its field.
fn refused(e: AdminError) -> Response {
    match e {
        AdminError::Invalid { field, message } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "error": "unprocessable", "detail": message, "field": field })),
        )
            .into_response(),
        AdminError::NotFound(m) => ApiError::NotFound(m).into_response(),
        AdminError::Forbidden(m) => ApiError::Forbidden(m).into_response(),
        AdminError::Conflict(m) => ApiError::Conflict(m).into_response(),
        AdminError::Store(e) => ApiError::from(e).into_response(),
    }
}

/// 404 for an unknown program (or survey of it), checked before the body is read: the
/// resource decides the status before its input does, as on every other `/api/v1` route.
fn known(state: &AppState, id: &ProgramId, survey: Option<&str>) -> Result<(), ApiError> {
    let program = state
        .catalog
        .program(id)
        .ok_or_else(|| ApiError::NotFound(format!("no program '{id}'")))?;
    match survey {
        Some(survey) if program.survey(survey).is_none() => Err(ApiError::NotFound(format!(
            "no survey '{survey}' in program '{id}'"
        ))),
        _ => Ok(()),
    }
}

/// The body of an edit of a known program (or survey): 404 first, then a 400 that says what
/// is wrong with the JSON.
fn input<T: DeserializeOwned>(
    state: &AppState,
    id: &ProgramId,
    survey: Option<&str>,
    bytes: &Bytes,
) -> Result<T, ApiError> {
    known(state, id, survey)?;
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be JSON like the documented shape: {e}"
        ))
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CadenceBody {
    cadence: String,
    every_weeks: Option<u32>,
}

/// `PUT …/cadence` `{"cadence": "0 10 * * MON", "every_weeks": 2}`: 200 with the cadence
/// now in force and its next 5 sends; 422 naming the field on a bad cron.
#[utoipa::path(put, path = "/api/v1/programs/{id}/surveys/{survey}/cadence", tag = "surveys",
    params(("id" = String, Path, description = "The program's id"),
           ("survey" = String, Path, description = "The survey's id")),
    request_body = CadenceBody,
    responses(
        (status = 200, description = "The cadence now in force, in words, with its next 5 sends", body = Object),
        (status = 400, description = "A body that is not the documented JSON", body = ErrorBody),
        (status = 403, description = "The change is not allowed", body = ErrorBody),
        (status = 404, description = "No such program or survey", body = ErrorBody),
        (status = 422, description = "A bad cron or every_weeks; `field` names it", body = ErrorBody),
    ))]
pub(super) async fn set_cadence(
    State(state): State<AppState>,
    Path((id, survey)): Path<(ProgramId, String)>,
    bytes: Bytes,
) -> Response {
    let b: CadenceBody = match input(&state, &id, Some(&survey), &bytes) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let every_weeks = match (b.every_weeks, state.catalog.program(&id)) {
        (Some(n), _) => n,
        // Absent: the survey keeps its rhythm.
        (None, Some(p)) => p.survey(&survey).map_or(1, |s| s.every_weeks),
        (None, None) => 1,
    };
    match admin::set_cadence(
        &state.pulses,
        &Actor::Api,
        &id,
        &survey,
        &b.cadence,
        every_weeks,
    )
    .await
    {
        Ok(v) => Json(json!(v)).into_response(),
        Err(e) => refused(e),
    }
}

#[utoipa::path(post, path = "/api/v1/programs/{id}/surveys/{survey}/pause", tag = "surveys",
    params(("id" = String, Path, description = "The program's id"),
           ("survey" = String, Path, description = "The survey's id")),
    responses(
        (status = 200, description = "The survey is paused: nothing is sent until it is resumed", body = Object),
        (status = 404, description = "No such program or survey", body = ErrorBody),
    ))]
pub(super) async fn pause(
    State(state): State<AppState>,
    Path((id, survey)): Path<(ProgramId, String)>,
) -> Response {
    paused(&state, &id, &survey, true).await
}

#[utoipa::path(post, path = "/api/v1/programs/{id}/surveys/{survey}/resume", tag = "surveys",
    params(("id" = String, Path, description = "The program's id"),
           ("survey" = String, Path, description = "The survey's id")),
    responses(
        (status = 200, description = "The survey runs again on its cadence", body = Object),
        (status = 404, description = "No such program or survey", body = ErrorBody),
    ))]
pub(super) async fn resume(
    State(state): State<AppState>,
    Path((id, survey)): Path<(ProgramId, String)>,
) -> Response {
    paused(&state, &id, &survey, false).await
}

async fn paused(state: &AppState, id: &ProgramId, survey: &str, paused: bool) -> Response {
    match admin::set_paused(&state.pulses, &Actor::Api, id, survey, paused).await {
        Ok(v) => Json(json!(v)).into_response(),
        Err(e) => refused(e),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct MembersBody {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
    role: Option<String>,
}

/// `POST …/members` `{"add": ["U…"], "remove": ["U…"], "role": "participant"}`.
#[utoipa::path(post, path = "/api/v1/programs/{id}/members", tag = "programs",
    params(("id" = String, Path, description = "The program's id")),
    request_body = MembersBody,
    responses(
        (status = 200, description = "The members added and removed", body = Object),
        (status = 400, description = "A body that is not the documented JSON", body = ErrorBody),
        (status = 404, description = "No such program", body = ErrorBody),
        (status = 422, description = "A bad member id or role; `field` names it", body = ErrorBody),
    ))]
pub(super) async fn edit_members(
    State(state): State<AppState>,
    Path(id): Path<ProgramId>,
    bytes: Bytes,
) -> Response {
    let b: MembersBody = match input(&state, &id, None, &bytes) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let role = match b.role.as_deref() {
        None => Role::Participant,
        Some(r) => match Role::parse(r) {
            Some(role) => role,
            None => {
                return refused(AdminError::Invalid {
                    field: "role",
                    message: format!("role must be 'leader' or 'participant', not '{r}'"),
                })
            }
        },
    };
    match admin::edit_members(&state.pulses, &Actor::Api, &id, &b.add, &b.remove, role).await {
        Ok(change) => Json(json!(change)).into_response(),
        Err(e) => refused(e),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SponsorBody {
    channel: String,
}

/// `PUT …/sponsor-channel` `{"channel": "C…"}`.
#[utoipa::path(put, path = "/api/v1/programs/{id}/sponsor-channel", tag = "programs",
    params(("id" = String, Path, description = "The program's id")),
    request_body = SponsorBody,
    responses(
        (status = 200, description = "The sponsor channels now in force", body = Object),
        (status = 400, description = "A body that is not the documented JSON", body = ErrorBody),
        (status = 404, description = "No such program", body = ErrorBody),
        (status = 422, description = "A bad channel id; `field` names it", body = ErrorBody),
    ))]
pub(super) async fn set_sponsor(
    State(state): State<AppState>,
    Path(id): Path<ProgramId>,
    bytes: Bytes,
) -> Response {
    let b: SponsorBody = match input(&state, &id, None, &bytes) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    match admin::set_sponsor_channel(&state.pulses, &Actor::Api, &id, &b.channel).await {
        Ok(channels) => Json(json!({ "sponsor_channels": channels })).into_response(),
        Err(e) => refused(e),
    }
}

/// `GET …/config`: each value a run-time edit may change, with where it came from (the
/// file, or an edit: by whom, when, and the file value it was made against).
#[utoipa::path(get, path = "/api/v1/programs/{id}/config", tag = "programs",
    params(("id" = String, Path, description = "The program's id")),
    responses(
        (status = 200, description = "Each value a run-time edit may change, and where it came from", body = Object),
        (status = 404, description = "No such program", body = ErrorBody),
    ))]
pub(super) async fn config_sources(
    State(state): State<AppState>,
    Path(id): Path<ProgramId>,
) -> Response {
    let Some(program) = state.catalog.program(&id) else {
        return ApiError::NotFound(format!("no program '{id}'")).into_response();
    };
    let sources = admin::sources(&state.store, &program).await;
    let now = state.clock.now();
    let surveys: Vec<_> = program
        .surveys
        .iter()
        .map(|s| {
            let key = |f: &str| format!("{}.{f}", s.id);
            json!({
                "id": s.id,
                "cadence": admin::cadence_view(&program, s, now),
                "cadence_source": admin::source_of(&sources, &key(admin::FIELD_CADENCE)),
                "paused": s.paused,
                "paused_source": admin::source_of(&sources, &key(admin::FIELD_PAUSED)),
            })
        })
        .collect();
    let members: Vec<_> = sources
        .iter()
        .filter_map(|(k, s)| {
            k.strip_prefix("member:")
                .map(|u| json!({ "member": u, "source": s }))
        })
        .collect();
    let workspace = admin::workspace_status(&state.pulses, &program).await;
    Json(json!({
        "program": program.id,
        "workspace": workspace,
        "sponsor_channels": program.sponsor_channels,
        "sponsor_channels_source": admin::source_of(&sources, admin::FIELD_SPONSOR),
        "surveys": surveys,
        "member_edits": members,
    }))
    .into_response()
}

/// The admin view's "Send now" is the scheduler's send-now (the layer above `pulse`).
impl SendNow for Scheduler {
    async fn send_now(&self, program: &Program, survey: &Survey) -> Result<String, String> {
        match Scheduler::send_now(self, program, survey).await {
            Ok(sent) => Ok(format!(
                "Sent {} now: round {}, {} deliveries queued.",
                survey.name, sent.number, sent.deliveries
            )),
            Err(crate::scheduler::SendNowError::Store(e)) => {
                tracing::warn!(error = %e, "send-now from the admin view failed");
                Err("Sending failed on our side; try again in a moment.".to_string())
            }
            Err(e) => Err(format!("Not sent: {e}.")),
        }
    }
}
