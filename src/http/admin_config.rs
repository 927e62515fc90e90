//! The admin API's writes to program configuration, behind the same bearer token as the rest
//! of `/api/v1` (actor `api` in the audit log): a survey's cadence, pause and resume,
//! members, the sponsor channel, and where each current value came from. The changes
//! themselves are `pulse::admin`'s (stored as run-time edits; docs/config-precedence.md).
//!
//! Also the scheduler behind the admin view's "Send now" button ([`SendNow`]).

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::state::AppState;
use crate::domain::ids::ProgramId;
use crate::domain::program::{Program, Role, Survey};
use crate::pulse::admin::{self, Actor, AdminError};
use crate::pulse::admin_view::SendNow;
use crate::scheduler::Scheduler;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/programs/{id}/surveys/{survey}/cadence",
            put(set_cadence),
        )
        .route("/api/v1/programs/{id}/surveys/{survey}/pause", post(pause))
        .route(
            "/api/v1/programs/{id}/surveys/{survey}/resume",
            post(resume),
        )
        .route("/api/v1/programs/{id}/members", post(edit_members))
        .route("/api/v1/programs/{id}/sponsor-channel", put(set_sponsor))
        .route("/api/v1/programs/{id}/config", get(config_sources))
        .route_layer(middleware::from_fn_with_state(state, require_token))
}

/// The admin token, checked as `http::admin` checks it (constant-time compare).
async fn require_token(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(expected) = state.settings.admin.token.as_ref() else {
        return Err(ApiError::Unauthorized(
            "the admin API is disabled: set PULSELOOP_ADMIN_TOKEN".into(),
        ));
    };
    let given = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if given.is_empty() {
        return Err(ApiError::Unauthorized("missing bearer token".into()));
    }
    if !bool::from(given.as_bytes().ct_eq(expected.expose_secret().as_bytes())) {
        return Err(ApiError::Unauthorized("wrong bearer token".into()));
    }
    Ok(next.run(req).await)
}

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

/// A JSON body, or a 400 that says what is wrong with it.
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be JSON like the documented shape: {e}"
        ))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CadenceBody {
    cadence: String,
    every_weeks: Option<u32>,
}

/// `PUT …/cadence` `{"cadence": "0 10 * * MON", "every_weeks": 2}`: 200 with the cadence
/// now in force and its next 5 sends; 422 naming the field on a bad cron.
async fn set_cadence(
    State(state): State<AppState>,
    Path((id, survey)): Path<(ProgramId, String)>,
    bytes: Bytes,
) -> Response {
    let b: CadenceBody = match body(&bytes) {
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

async fn pause(
    State(state): State<AppState>,
    Path((id, survey)): Path<(ProgramId, String)>,
) -> Response {
    paused(&state, &id, &survey, true).await
}

async fn resume(
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MembersBody {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
    role: Option<String>,
}

/// `POST …/members` `{"add": ["U…"], "remove": ["U…"], "role": "participant"}`.
async fn edit_members(
    State(state): State<AppState>,
    Path(id): Path<ProgramId>,
    bytes: Bytes,
) -> Response {
    let b: MembersBody = match body(&bytes) {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SponsorBody {
    channel: String,
}

/// `PUT …/sponsor-channel` `{"channel": "C…"}`.
async fn set_sponsor(
    State(state): State<AppState>,
    Path(id): Path<ProgramId>,
    bytes: Bytes,
) -> Response {
    let b: SponsorBody = match body(&bytes) {
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
async fn config_sources(State(state): State<AppState>, Path(id): Path<ProgramId>) -> Response {
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
    Json(json!({
        "program": program.id,
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
