//! The admin API under `/api/v1`, behind `Authorization: Bearer $PULSELOOP_ADMIN_TOKEN`.

use crate::domain::ids::ProgramId;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::error::{ApiError, ApiResult};
use super::kpis;
use super::state::AppState;
use crate::digest;
use crate::scheduler::preview::{preview_bounded, MAX_API_ROWS, MAX_DAYS};
use crate::storage::members::plan_members;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/v1/programs", get(list_programs))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/programs/{id}/failures", get(failures))
        .route(
            "/api/v1/programs/{id}/member-problems",
            get(member_problems),
        )
        .route("/api/v1/programs/{id}/schedule", get(schedule))
        .route(
            "/api/v1/programs/{id}/surveys/{survey}/send-now",
            post(send_now),
        )
        .route("/api/v1/programs/{id}/kpis", get(kpis::get).put(kpis::put))
        .route("/api/v1/programs/{id}/digest/preview", get(digest_preview))
        .route("/api/v1/programs/{id}/digest/send", post(digest_send))
        .route_layer(middleware::from_fn_with_state(state, require_admin))
}

async fn require_admin(
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

async fn list_programs(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let programs: Vec<_> = state
        .catalog
        .programs()
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "name": p.name,
                "timezone": p.timezone.name(),
                "start_date": p.start_date,
                "anonymity_threshold": p.anonymity_threshold,
                "surveys": p.surveys.iter().map(|s| json!({
                    "id": s.id, "name": s.name, "cadence": s.cadence.source(),
                    "every_weeks": s.every_weeks, "anonymity": s.anonymity,
                    "questions": s.questions.len(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!(programs)))
}

#[derive(Deserialize)]
struct ScheduleQuery {
    days: Option<String>,
}

async fn schedule(
    State(state): State<AppState>,
    Path(id): Path<ProgramId>,
    Query(q): Query<ScheduleQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let days = match q.days.as_deref() {
        None => 14,
        Some(d) => match d.parse::<u32>() {
            Ok(n) if (1..=MAX_DAYS).contains(&n) => n,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "days must be a whole number from 1 to {MAX_DAYS}, not '{d}'"
                )))
            }
        },
    };
    let program = state
        .catalog
        .program(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no program '{id}'")))?;
    let rows = state.store.members_of(&id).await?;
    let entries = preview_bounded(
        &program,
        &plan_members(&program, &rows),
        state.clock.now(),
        days,
        MAX_API_ROWS,
    )
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(Json(json!(entries)))
}

async fn send_now(
    State(state): State<AppState>,
    Path((id, survey_id)): Path<(ProgramId, String)>,
) -> ApiResult<Response> {
    let program = state
        .catalog
        .program(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no program '{id}'")))?;
    let survey = program
        .survey(&survey_id)
        .ok_or_else(|| ApiError::NotFound(format!("no survey '{survey_id}' in program '{id}'")))?;
    let sent = state.scheduler.send_now(&program, survey).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "round": sent.round.to_string(),
            "number": sent.number,
            "deliveries": sent.deliveries,
        })),
    )
        .into_response())
}

/// The digest of the current period so far, as the PRODUCT.md preview shape (nothing is
/// posted).
async fn digest_preview(
    State(state): State<AppState>,
    Path(id): Path<ProgramId>,
) -> ApiResult<Json<serde_json::Value>> {
    let program = state
        .catalog
        .program(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no program '{id}'")))?;
    let d = digest::service::preview(&state.store, &program, state.clock.now()).await?;
    Ok(Json(json!(d)))
}

/// Posts the current period's digest to every sponsor channel now (202); 409 when every
/// channel already has this period's digest.
async fn digest_send(
    State(state): State<AppState>,
    Path(id): Path<ProgramId>,
) -> ApiResult<Response> {
    let program = state
        .catalog
        .program(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no program '{id}'")))?;
    let now = state.clock.now();
    let periods = digest::service::current_periods(&program, now)?;
    let outcome = digest::service::send(&state.store, &program, &periods, now).await?;
    if outcome.queued.is_empty() {
        return Err(ApiError::Conflict(format!(
            "the digest of the period starting {} was already posted to {}",
            outcome.period_start,
            outcome.already_posted.join(", ")
        )));
    }
    Ok((StatusCode::ACCEPTED, Json(json!(outcome))).into_response())
}

#[derive(Deserialize)]
struct AuditQuery {
    program: Option<ProgramId>,
    limit: Option<String>,
}

/// The audit log, newest first: who changed what and when (never answers).
async fn audit(
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "limit must be a whole number from 1 to 1000, not '{l}'"
                )))
            }
        },
    };
    let entries = state.store.audit_entries(q.program.as_ref(), limit).await?;
    Ok(Json(json!(entries)))
}

/// Deliveries that failed for good (with Slack's reason, e.g. `account_inactive`) or were
/// skipped (opted out, deactivated, missed while down), newest first.
async fn failures(
    State(state): State<AppState>,
    Path(id): Path<ProgramId>,
) -> ApiResult<Json<serde_json::Value>> {
    if state.catalog.program(&id).is_none() {
        return Err(ApiError::NotFound(format!("no program '{id}'")));
    }
    let rows = state.store.failed_deliveries(&id, 500).await?;
    let rows: Vec<_> = rows
        .into_iter()
        .map(|f| {
            json!({
                "member": f.member, "survey": f.survey, "period": f.period, "state": f.state,
                "reason": f.reason,
                "scheduled_at": f.scheduled_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            })
        })
        .collect();
    Ok(Json(json!(rows)))
}

/// Members Slack could not tell us about (`user_not_found`: a wrong or deleted Slack ID):
/// they get no pulses until Slack knows them again (re-checked on every reload).
async fn member_problems(
    State(state): State<AppState>,
    Path(id): Path<ProgramId>,
) -> ApiResult<Json<serde_json::Value>> {
    if state.catalog.program(&id).is_none() {
        return Err(ApiError::NotFound(format!("no program '{id}'")));
    }
    let rows = state.store.member_problems(&id).await?;
    let rows: Vec<_> = rows
        .into_iter()
        .map(|p| {
            json!({
                "member": p.member, "role": p.role, "source": p.source, "problem": p.problem,
                "checked_at": p.checked_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                "effect": "no pulses are sent to this member",
            })
        })
        .collect();
    Ok(Json(json!(rows)))
}
