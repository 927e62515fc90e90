//! `GET /api/v1/programs/{id}/export?format=csv|json[&survey=ID]`: a program's answers as
//! the anonymity rules allow (docs/api.md, "Export"; docs/anonymity.md).
//!
//! - Anonymous and confidential rounds (the mode each round **opened with**) export
//!   aggregates only: one cell per closed round and metric, with the number of answers and,
//!   for the numeric kinds (`scale`, `enps`, `yes_no`), the mean. A cell under `k` (the
//!   largest of the program's `anonymity_threshold` and the round's own `k`) is suppressed:
//!   no count, no mean, and a note saying "fewer than k answers". Open rounds are left out
//!   (their numbers still move, and two exports would tell what one late answer was). No
//!   text is exported from these rounds: comments reach the program team through the digest,
//!   which shuffles them and applies `comment_threshold`.
//! - Attributed rounds export rows: member, round, question, answer, time.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult, ErrorBody};
use super::state::AppState;
use crate::domain::ids::ProgramId;
use crate::domain::program::Program;
use crate::storage::export::{ExportAnswer, ExportCell};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `json` (the default) or `csv`.
    #[param(example = "csv")]
    pub format: Option<String>,
    /// Only this survey of the program.
    pub survey: Option<String>,
}

/// The export as JSON. The CSV carries the same records, one per line (see docs/api.md).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Export {
    pub program: String,
    pub exported_at: String,
    /// The program's `anonymity_threshold` (a round that opened with a higher `k` keeps it).
    pub anonymity_threshold: u32,
    /// Anonymous and confidential rounds, closed ones only: one cell per round and metric.
    pub aggregates: Vec<AggregateCell>,
    /// Attributed rounds: one row per answer.
    pub answers: Vec<AnswerRow>,
}

/// One metric of one closed anonymous or confidential round.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AggregateCell {
    pub survey: String,
    /// The round's number within its survey.
    pub round: Option<i64>,
    /// The round's period key: the cadence's nominal local time ("2027-01-04T10:00"), or
    /// "now:" and the UTC instant for a send-now round.
    pub period: String,
    /// `anonymous` or `confidential` (the mode the round opened with).
    pub anonymity: String,
    pub metric: String,
    pub kind: Option<String>,
    /// Answers to this metric in this round; `null` when suppressed.
    pub n: Option<i64>,
    /// The mean of the numeric kinds; `null` for other kinds or when suppressed.
    pub mean: Option<f64>,
    pub suppressed: bool,
    /// Why a cell is suppressed ("fewer than 5 answers").
    pub note: Option<String>,
}

/// One answer of an attributed round.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AnswerRow {
    pub survey: String,
    pub round: Option<i64>,
    pub period: String,
    /// The member's Slack user id.
    pub member: String,
    pub role: String,
    /// The question's metric key.
    pub question: String,
    pub kind: Option<String>,
    /// The answer: the text (a comment, a choice's option) or the number.
    pub answer: String,
    /// When the answer was last given (RFC 3339, UTC).
    pub answered_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

fn format_of(q: &ExportQuery) -> ApiResult<Format> {
    match q.format.as_deref() {
        None | Some("json") => Ok(Format::Json),
        Some("csv") => Ok(Format::Csv),
        Some(other) => Err(ApiError::BadRequest(format!(
            "format must be 'json' or 'csv', not '{other}'"
        ))),
    }
}

/// A program's answers as the anonymity rules allow: aggregates of anonymous and confidential
/// rounds, rows of attributed ones.
#[utoipa::path(
    get,
    path = "/api/v1/programs/{id}/export",
    tag = "export",
    params(("id" = String, Path, description = "The program's id"), ExportQuery),
    responses(
        (status = 200, description = "The export; `text/csv` when `format=csv`",
            content((Export = "application/json"), (String = "text/csv"))),
        (status = 400, description = "An unknown format", body = ErrorBody),
        (status = 404, description = "No such program or survey", body = ErrorBody),
    )
)]
pub async fn export(
    State(state): State<AppState>,
    Path(id): Path<ProgramId>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let format = format_of(&q)?;
    let program = state
        .catalog
        .program(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no program '{id}'")))?;
    if let Some(survey) = q.survey.as_deref() {
        if program.survey(survey).is_none() {
            return Err(ApiError::NotFound(format!(
                "no survey '{survey}' in program '{id}'"
            )));
        }
    }
    let cells = state.store.export_cells(&id, q.survey.as_deref()).await?;
    let answers = state.store.export_answers(&id, q.survey.as_deref()).await?;
    let export = build(&program, cells, answers, state.clock.now());
    tracing::info!(
        program = %id,
        aggregates = export.aggregates.len(),
        answers = export.answers.len(),
        "export served"
    );
    match format {
        Format::Json => Ok(Json(export).into_response()),
        Format::Csv => {
            let body = to_csv(&export).map_err(|e| ApiError::Internal(e.into()))?;
            let mut response = body.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            // Program ids are checked at config load ([a-z0-9-]); quote anyway.
            if let Ok(v) =
                HeaderValue::from_str(&format!("attachment; filename=\"{id}-export.csv\""))
            {
                headers.insert(header::CONTENT_DISPOSITION, v);
            }
            Ok(response)
        }
    }
}

fn is_numeric(kind: Option<&str>) -> bool {
    matches!(kind, Some("scale" | "enps" | "yes_no"))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Applies the rules to the raw rows (see the module docs).
pub fn build(
    program: &Program,
    cells: Vec<ExportCell>,
    answers: Vec<ExportAnswer>,
    now: DateTime<Utc>,
) -> Export {
    build_for(
        program.id.as_ref(),
        program.anonymity_threshold,
        cells,
        answers,
        now,
    )
}

/// [`build`] for a program id and its `anonymity_threshold`.
fn build_for(
    program_id: &str,
    anonymity_threshold: u32,
    cells: Vec<ExportCell>,
    answers: Vec<ExportAnswer>,
    now: DateTime<Utc>,
) -> Export {
    let program_k = i64::from(anonymity_threshold);
    let aggregates = cells
        .into_iter()
        .map(|c| {
            let k = program_k.max(c.round_k.unwrap_or(0));
            let shown = c.n >= k;
            let mean = match (shown, is_numeric(c.kind.as_deref()), c.sum) {
                (true, true, Some(sum)) if c.n > 0 => Some(round2(sum / c.n as f64)),
                _ => None,
            };
            AggregateCell {
                survey: c.survey_id,
                round: c.number,
                period: c.period_key,
                anonymity: c.anonymity,
                metric: c.metric_key,
                kind: c.kind,
                n: shown.then_some(c.n),
                mean,
                suppressed: !shown,
                note: (!shown).then(|| crate::digest::numbers::fewer_than(k as u32)),
            }
        })
        .collect();
    let answers = answers
        .into_iter()
        .map(|a| AnswerRow {
            survey: a.survey_id,
            round: a.number,
            period: a.period_key,
            member: a.member,
            role: a.role,
            question: a.metric_key,
            kind: a.kind,
            answer: match (a.value_text, a.value_number) {
                (Some(t), _) if !t.is_empty() => t,
                (_, Some(n)) if n.fract() == 0.0 => format!("{n:.0}"),
                (_, Some(n)) => n.to_string(),
                _ => String::new(),
            },
            answered_at: a.answered_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        })
        .collect();
    Export {
        program: program_id.to_string(),
        exported_at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        anonymity_threshold,
        aggregates,
        answers,
    }
}

/// The CSV columns: every record is one line, `record` says which kind it is (`aggregate`
/// or `answer`), and the columns that do not apply to it are empty.
pub const CSV_HEADER: [&str; 15] = [
    "record",
    "survey",
    "round",
    "period",
    "anonymity",
    "metric",
    "kind",
    "n",
    "mean",
    "suppressed",
    "note",
    "member",
    "role",
    "answer",
    "answered_at",
];

/// The export as CSV (RFC 4180 quoting by the `csv` crate).
pub fn to_csv(export: &Export) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    let opt = |v: Option<String>| v.unwrap_or_default();
    for c in &export.aggregates {
        w.write_record([
            "aggregate".to_string(),
            c.survey.clone(),
            opt(c.round.map(|r| r.to_string())),
            c.period.clone(),
            c.anonymity.clone(),
            c.metric.clone(),
            opt(c.kind.clone()),
            opt(c.n.map(|n| n.to_string())),
            opt(c.mean.map(|m| m.to_string())),
            c.suppressed.to_string(),
            opt(c.note.clone()),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ])?;
    }
    for a in &export.answers {
        w.write_record([
            "answer".to_string(),
            a.survey.clone(),
            opt(a.round.map(|r| r.to_string())),
            a.period.clone(),
            "attributed".to_string(),
            a.question.clone(),
            opt(a.kind.clone()),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            a.member.clone(),
            a.role.clone(),
            a.answer.clone(),
            a.answered_at.clone(),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(n: i64, round_k: Option<i64>, kind: &str, sum: Option<f64>) -> ExportCell {
        ExportCell {
            survey_id: "weekly".into(),
            number: Some(1),
            period_key: "2027-01-04T10:00".into(),
            anonymity: "anonymous".into(),
            round_k,
            metric_key: "m".into(),
            kind: Some(kind.into()),
            n,
            sum,
        }
    }

    #[test]
    fn a_cell_under_k_says_so_and_shows_no_count() {
        let e = build_for(
            "p",
            5,
            vec![
                cell(4, Some(5), "scale", Some(12.0)),
                cell(5, Some(5), "scale", Some(16.0)),
            ],
            vec![],
            Utc::now(),
        );
        assert_eq!(e.aggregates[0].n, None);
        assert_eq!(e.aggregates[0].mean, None);
        assert!(e.aggregates[0].suppressed);
        assert_eq!(
            e.aggregates[0].note.as_deref(),
            Some("fewer than 5 answers")
        );
        assert_eq!(e.aggregates[1].n, Some(5));
        assert_eq!(e.aggregates[1].mean, Some(3.2));
    }

    #[test]
    fn the_round_keeps_the_k_it_opened_with() {
        let e = build_for(
            "p",
            3,
            vec![cell(5, Some(7), "scale", Some(15.0))],
            vec![],
            Utc::now(),
        );
        assert!(e.aggregates[0].suppressed);
        assert_eq!(
            e.aggregates[0].note.as_deref(),
            Some("fewer than 7 answers")
        );
    }

    #[test]
    fn text_cells_count_but_have_no_mean() {
        let e = build_for(
            "p",
            3,
            vec![cell(4, None, "text", None)],
            vec![],
            Utc::now(),
        );
        assert_eq!(e.aggregates[0].n, Some(4));
        assert_eq!(e.aggregates[0].mean, None);
    }

    #[test]
    fn csv_quotes_commas_quotes_and_newlines() {
        let e = Export {
            program: "p".into(),
            exported_at: "2027-01-01T00:00:00Z".into(),
            anonymity_threshold: 5,
            aggregates: vec![],
            answers: vec![AnswerRow {
                survey: "s".into(),
                round: Some(1),
                period: "2027-01-04T10:00".into(),
                member: "U1".into(),
                role: "leader".into(),
                question: "comment".into(),
                kind: Some("text".into()),
                answer: "Yes, \"really\"\nnew line".into(),
                answered_at: "2027-01-04T10:00:00Z".into(),
            }],
        };
        let text = to_csv(&e).unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(&rows[0][13], "Yes, \"really\"\nnew line");
    }
}
