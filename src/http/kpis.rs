//! `PUT` and `GET /api/v1/programs/{id}/kpis` (behind the admin token, routed in `admin`):
//! owners record business KPIs and their values per period; the answer shows each KPI's
//! latest value against its baseline, as the digest does.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult, ErrorBody};
use super::state::AppState;
use crate::domain::ids::ProgramId;
use crate::storage::kpis::{summarize, KpiBatch};

/// Adds or replaces the KPI definitions and values in the body
/// (`{"kpis": [{"key", "label", "unit", "direction"}], "values": [{"kpi", "period_start", "value"}]}`),
/// all or nothing. A bad body is a 400 naming the first problem.
#[utoipa::path(put, path = "/api/v1/programs/{id}/kpis", tag = "kpis",
    params(("id" = String, Path, description = "The program's id")),
    request_body(content = Object, content_type = "application/json",
        description = "`{\"kpis\": [{\"key\", \"label\", \"unit\", \"direction\"}], \"values\": [{\"kpi\", \"period_start\", \"value\"}]}`"),
    responses(
        (status = 200, description = "The program's KPIs after the change (as GET)", body = Object),
        (status = 400, description = "The body is not a KPI document, or names an unknown KPI", body = ErrorBody),
        (status = 404, description = "No such program", body = ErrorBody),
    ))]
pub async fn put(
    State(state): State<AppState>,
    Path(id): Path<ProgramId>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    if state.catalog.program(&id).is_none() {
        return Err(ApiError::NotFound(format!("no program '{id}'")));
    }
    let batch: KpiBatch = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not a KPI document: {e}")))?;
    let known = state.store.kpi_keys(&id).await?;
    batch.check(&known).map_err(ApiError::BadRequest)?;
    state.store.put_kpis(&id, &batch, state.clock.now()).await?;
    tracing::info!(program = %id, kpis = batch.kpis.len(), values = batch.values.len(), "KPIs stored");
    get(State(state), Path(id)).await
}

/// The program's KPIs, their values and each one's latest value against its baseline.
#[utoipa::path(get, path = "/api/v1/programs/{id}/kpis", tag = "kpis",
    params(("id" = String, Path, description = "The program's id")),
    responses(
        (status = 200, description = "`{\"program\", \"kpis\": [… with \"summary\"]}`", body = Object),
        (status = 404, description = "No such program", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<ProgramId>,
) -> ApiResult<Json<Value>> {
    let program = state
        .catalog
        .program(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no program '{id}'")))?;
    let today = state
        .clock
        .now()
        .with_timezone(&program.timezone)
        .date_naive();
    let kpis: Vec<Value> = state
        .store
        .kpis(&id)
        .await?
        .iter()
        .map(|k| {
            let mut v = json!(k);
            v["summary"] = json!(summarize(k, program.baseline_rounds, today));
            v
        })
        .collect();
    Ok(Json(json!({ "program": id, "kpis": kpis })))
}
