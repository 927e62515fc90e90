//! The admin API under `/api/v1`, behind `Authorization: Bearer $PULSELOOP_ADMIN_TOKEN`.
//!
//! Every route is registered in [`api`] with `.routes(routes!(handler))`, which adds it to
//! the router **and** to the OpenAPI document (`GET /api/v1/openapi.json`, built in
//! [`super::openapi`]) from the handler's `#[utoipa::path]` attribute. A route registered
//! with a plain `.route(...)` is served but missing from the document, and
//! `tests/api/openapi.rs` fails until it is annotated (docs/api.md, "Adding a route").

use crate::domain::ids::ProgramId;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::state::AppState;
use super::{admin_config, export, kpis, openapi};
use crate::digest;
use crate::scheduler::preview::{preview_bounded, PreviewEntry, MAX_API_ROWS, MAX_DAYS};
use crate::storage::audit::AuditEntry;
use crate::storage::members::plan_members;

/// The admin API's routes: behind the bearer token, and in the OpenAPI document.
pub fn api(state: AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(list_programs))
        .routes(routes!(audit))
        .routes(routes!(failures))
        .routes(routes!(member_problems))
        .routes(routes!(schedule))
        .routes(routes!(send_now))
        .routes(routes!(kpis::get, kpis::put))
        .routes(routes!(digest_preview))
        .routes(routes!(digest_send))
        .routes(routes!(export::export))
        .routes(routes!(admin_config::set_cadence))
        .routes(routes!(admin_config::pause))
        .routes(routes!(admin_config::resume))
        .routes(routes!(admin_config::edit_members))
        .routes(routes!(admin_config::set_sponsor))
        .routes(routes!(admin_config::config_sources))
        .route_layer(middleware::from_fn_with_state(state, require_admin))
}

/// The admin API, the OpenAPI document (served without the token: it describes the API and
/// reveals no data) and a JSON 404 for any other path under `/api/v1`.
pub fn router(state: AppState) -> Router<AppState> {
    let (routes, doc) = api(state).merge(openapi::routes()).split_for_parts();
    let doc = std::sync::Arc::new(openapi::finish(doc));
    routes
        .route("/api/v1/{*rest}", axum::routing::any(no_such_route))
        .layer(axum::Extension(doc))
        .layer(middleware::map_response(json_method_not_allowed))
}

async fn no_such_route(req: Request) -> ApiError {
    ApiError::NotFound(format!(
        "no admin API route {} {} (see /api/v1/openapi.json)",
        req.method(),
        req.uri().path()
    ))
}

/// axum answers a known path with an unknown method with an empty 405: give it the JSON
/// error body too.
async fn json_method_not_allowed(response: Response) -> Response {
    if response.status() != StatusCode::METHOD_NOT_ALLOWED
        || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let mut json = (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(ErrorBody {
            error: "method_not_allowed",
            detail: format!(
                "this route does not take that method; it takes {}",
                allow
                    .as_ref()
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("other methods")
            ),
            request_id: None,
        }),
    )
        .into_response();
    if let Some(allow) = allow {
        json.headers_mut().insert(header::ALLOW, allow);
    }
    json
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

/// A program as the API lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgramSummary {
    pub id: String,
    pub name: String,
    pub timezone: String,
    pub start_date: chrono::NaiveDate,
    pub anonymity_threshold: u32,
    pub surveys: Vec<SurveySummary>,
    /// The workspace it runs in, and whether it is installed (docs/install.md).
    pub workspace: crate::pulse::admin::WorkspaceStatus,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SurveySummary {
    pub id: String,
    pub name: String,
    /// The cron expression, as written (in each member's local time).
    pub cadence: String,
    pub every_weeks: u32,
    /// `anonymous`, `confidential` or `attributed`.
    pub anonymity: String,
    /// How many questions the survey has.
    pub questions: usize,
}

/// The programs in force (from `config/programs/`), with their surveys.
#[utoipa::path(get, path = "/api/v1/programs", tag = "programs",
    responses((status = 200, description = "The programs", body = [ProgramSummary])))]
async fn list_programs(State(state): State<AppState>) -> ApiResult<Json<Vec<ProgramSummary>>> {
    let catalog = state.catalog.programs();
    let mut workspaces = Vec::with_capacity(catalog.len());
    for p in catalog.iter() {
        workspaces.push(crate::pulse::admin::workspace_status(&state.pulses, p).await);
    }
    let programs = catalog
        .iter()
        .zip(workspaces)
        .map(|(p, workspace)| ProgramSummary {
            id: p.id.to_string(),
            name: p.name.clone(),
            timezone: p.timezone.name().to_string(),
            start_date: p.start_date,
            anonymity_threshold: p.anonymity_threshold,
            surveys: p
                .surveys
                .iter()
                .map(|s| SurveySummary {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    cadence: s.cadence.source().to_string(),
                    every_weeks: s.every_weeks,
                    anonymity: s.anonymity.as_str().to_string(),
                    questions: s.questions.len(),
                })
                .collect(),
            workspace,
        })
        .collect();
    Ok(Json(programs))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ScheduleQuery {
    /// Days ahead, 1 to 366 (default 14).
    #[param(value_type = Option<u32>, example = 14)]
    days: Option<String>,
}

/// The upcoming deliveries in [now, now + days), with each member's local time and UTC.
#[utoipa::path(get, path = "/api/v1/programs/{id}/schedule", tag = "programs",
    params(("id" = String, Path, description = "The program's id"), ScheduleQuery),
    responses(
        (status = 200, description = "Upcoming deliveries in time order", body = [PreviewEntry]),
        (status = 400, description = "A bad `days`", body = ErrorBody),
        (status = 404, description = "No such program", body = ErrorBody),
    ))]
async fn schedule(
    State(state): State<AppState>,
    Path(id): Path<ProgramId>,
    Query(q): Query<ScheduleQuery>,
) -> ApiResult<Json<Vec<PreviewEntry>>> {
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
    Ok(Json(entries))
}

/// What `send-now` started.
#[derive(Debug, Serialize, ToSchema)]
pub struct SentRound {
    /// The round's id.
    pub round: String,
    /// The round's number within its survey.
    pub number: i64,
    /// How many deliveries it created.
    pub deliveries: usize,
}

/// Starts a round of the survey now; 409 while one is open.
#[utoipa::path(post, path = "/api/v1/programs/{id}/surveys/{survey}/send-now", tag = "surveys",
    params(("id" = String, Path, description = "The program's id"),
           ("survey" = String, Path, description = "The survey's id")),
    responses(
        (status = 202, description = "The round was started", body = SentRound),
        (status = 404, description = "No such program or survey", body = ErrorBody),
        (status = 409, description = "A round of this survey is still open", body = ErrorBody),
    ))]
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
        Json(SentRound {
            round: sent.round.to_string(),
            number: sent.number,
            deliveries: sent.deliveries,
        }),
    )
        .into_response())
}

/// The digest of the current period so far, as the PRODUCT.md preview shape (nothing is
/// posted).
#[utoipa::path(get, path = "/api/v1/programs/{id}/digest/preview", tag = "digest",
    params(("id" = String, Path, description = "The program's id")),
    responses(
        (status = 200, description = "The digest preview (the shape in PRODUCT.md: program, \
period, participation, metrics, enps, comments, wins, actions, blocks…)", body = Object),
        (status = 404, description = "No such program", body = ErrorBody),
        (status = 422, description = "The program has no digest period yet", body = ErrorBody),
    ))]
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
#[utoipa::path(post, path = "/api/v1/programs/{id}/digest/send", tag = "digest",
    params(("id" = String, Path, description = "The program's id")),
    responses(
        (status = 202, description = "Queued for the channels that lack it", body = Object),
        (status = 404, description = "No such program", body = ErrorBody),
        (status = 409, description = "Every sponsor channel already has it", body = ErrorBody),
        (status = 422, description = "No period or no sponsor channel", body = ErrorBody),
    ))]
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Only this program's entries.
    program: Option<String>,
    /// Entries per page, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>, example = 100)]
    limit: Option<String>,
    /// Where the page starts: the `next_cursor` of the previous page (`X-Next-Cursor`, or
    /// the `Link: rel="next"` URL). Opaque.
    cursor: Option<String>,
}

/// The cursor of the page after the one that ended with entry `id`.
fn cursor_after(id: i64) -> String {
    format!("a{id}")
}

fn parse_cursor(c: &str) -> Option<i64> {
    c.strip_prefix('a')?
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
}

/// The audit log, newest first: who changed what and when (never answers). One page per
/// request; when there are more, `X-Next-Cursor` and `Link: <…>; rel="next"` say where the
/// next page starts. Cursors are entry ids: pages do not shift when entries are added.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "One page of entries, newest first", body = [AuditEntry],
            headers(
                ("X-Next-Cursor" = String, description = "The cursor of the next page, when there is one"),
                ("Link" = String, description = "`<…/api/v1/audit?…&cursor=…>; rel=\"next\"`, when there is a next page"),
            )),
        (status = 400, description = "A bad `limit` or `cursor`", body = ErrorBody),
        (status = 404, description = "No such program", body = ErrorBody),
    ))]
async fn audit(State(state): State<AppState>, Query(q): Query<AuditQuery>) -> ApiResult<Response> {
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
    let before = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(parse_cursor(c).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "cursor '{c}' is not one this API gave out; use the next_cursor of the previous page"
            ))
        })?),
    };
    let program = match q.program {
        None => None,
        Some(p) => {
            let id = ProgramId(p.clone());
            if state.catalog.program(&id).is_none() {
                return Err(ApiError::NotFound(format!("no program '{p}'")));
            }
            Some(id)
        }
    };
    // One more than asked: tells whether a next page exists without a second query.
    let mut entries = state
        .store
        .audit_page(program.as_ref(), before, limit + 1)
        .await?;
    let next = if entries.len() as i64 > limit {
        entries.truncate(limit as usize);
        entries.last().map(|e| cursor_after(e.id))
    } else {
        None
    };
    let mut response = Json(&entries).into_response();
    if let Some(next) = next {
        let mut query: Vec<(&str, String)> = vec![("limit", limit.to_string())];
        if let Some(p) = &program {
            query.push(("program", p.to_string()));
        }
        query.push(("cursor", next.clone()));
        let link = format!(
            "</api/v1/audit?{}>; rel=\"next\"",
            serde_urlencoded::to_string(&query).unwrap_or_default()
        );
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&next) {
            headers.insert("x-next-cursor", v);
        }
        if let Ok(v) = HeaderValue::from_str(&link) {
            headers.insert(header::LINK, v);
        }
    }
    Ok(response)
}

/// A delivery that failed or was skipped.
#[derive(Debug, Serialize, ToSchema)]
pub struct Failure {
    pub member: String,
    pub survey: String,
    pub period: String,
    /// `failed` or `skipped`.
    pub state: String,
    /// Slack's error (`account_inactive`…) or why it was skipped.
    pub reason: Option<String>,
    pub scheduled_at: String,
}

/// Deliveries that failed for good (with Slack's reason, e.g. `account_inactive`) or were
/// skipped (opted out, deactivated, missed while down), newest first.
#[utoipa::path(get, path = "/api/v1/programs/{id}/failures", tag = "programs",
    params(("id" = String, Path, description = "The program's id")),
    responses(
        (status = 200, description = "Up to 500, newest first", body = [Failure]),
        (status = 404, description = "No such program", body = ErrorBody),
    ))]
async fn failures(
    State(state): State<AppState>,
    Path(id): Path<ProgramId>,
) -> ApiResult<Json<Vec<Failure>>> {
    if state.catalog.program(&id).is_none() {
        return Err(ApiError::NotFound(format!("no program '{id}'")));
    }
    let rows = state.store.failed_deliveries(&id, 500).await?;
    let rows: Vec<_> = rows
        .into_iter()
        .map(|f| Failure {
            member: f.member,
            survey: f.survey,
            period: f.period,
            state: f.state.to_string(),
            reason: f.reason,
            scheduled_at: f
                .scheduled_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })
        .collect();
    Ok(Json(rows))
}

/// A member Slack could not tell us about.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberProblem {
    pub member: String,
    pub role: String,
    pub source: String,
    /// Slack's error, e.g. `user_not_found`.
    pub problem: String,
    pub checked_at: Option<String>,
    /// What it means: "no pulses are sent to this member".
    pub effect: String,
}

/// Members Slack could not tell us about (`user_not_found`: a wrong or deleted Slack ID):
/// they get no pulses until Slack knows them again (re-checked on every reload).
#[utoipa::path(get, path = "/api/v1/programs/{id}/member-problems", tag = "programs",
    params(("id" = String, Path, description = "The program's id")),
    responses(
        (status = 200, description = "Members with a problem", body = [MemberProblem]),
        (status = 404, description = "No such program", body = ErrorBody),
    ))]
async fn member_problems(
    State(state): State<AppState>,
    Path(id): Path<ProgramId>,
) -> ApiResult<Json<Vec<MemberProblem>>> {
    if state.catalog.program(&id).is_none() {
        return Err(ApiError::NotFound(format!("no program '{id}'")));
    }
    let rows = state.store.member_problems(&id).await?;
    let rows: Vec<_> = rows
        .into_iter()
        .map(|p| MemberProblem {
            member: p.member.to_string(),
            role: p.role,
            source: p.source,
            problem: p.problem,
            checked_at: p
                .checked_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            effect: "no pulses are sent to this member".into(),
        })
        .collect();
    Ok(Json(rows))
}
