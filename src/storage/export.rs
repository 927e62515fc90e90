//! What `GET /api/v1/programs/{id}/export` reads, raw (the rules of what may be shown are
//! applied above, in `http::export`).
//!
//! Two reads, split by the mode each round **opened with** (`rounds.anonymity`; `NULL`, an
//! older round, is anonymous):
//! - [`Store::export_cells`]: anonymous and confidential rounds that are closed, as counts
//!   (and sums of the numeric kinds) per round and metric. Nothing here joins a delivery or a
//!   member, and no answer's time is read: a cell is the same whoever answered.
//! - [`Store::export_answers`]: attributed rounds, one row per answer with its member.

use chrono::{DateTime, Utc};

use super::{on_pool, Millis, Store, StoreResult};
use crate::domain::ids::ProgramId;

/// One metric of one closed anonymous or confidential round: how many answered it, and the
/// sum of the numbers for the numeric kinds.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ExportCell {
    pub survey_id: String,
    /// The round's number within its survey.
    pub number: Option<i64>,
    pub period_key: String,
    /// `anonymous` or `confidential`.
    pub anonymity: String,
    /// The `k` the round opened with (`None` for older rounds).
    pub round_k: Option<i64>,
    pub metric_key: String,
    /// The question's kind (`None` if the question is no longer stored).
    pub kind: Option<String>,
    pub n: i64,
    /// Sum of the numbers (`None` when no answer carried one).
    pub sum: Option<f64>,
}

/// One answer of an attributed round, with who gave it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ExportAnswer {
    pub survey_id: String,
    pub number: Option<i64>,
    pub period_key: String,
    pub member: String,
    pub role: String,
    pub metric_key: String,
    pub kind: Option<String>,
    pub value_number: Option<f64>,
    pub value_text: Option<String>,
    #[sqlx(try_from = "Millis")]
    pub answered_at: DateTime<Utc>,
}

/// Closed anonymous/confidential rounds only: an open round's numbers still move as people
/// answer, and two exports a few minutes apart would tell what one late answer was.
const CELLS_SQL: &str = "SELECT r.survey_id, r.number, r.period_key,
        COALESCE(r.anonymity, 'anonymous') AS anonymity, r.anonymity_k AS round_k,
        x.metric_key, q.kind, CAST(COUNT(*) AS BIGINT) AS n, SUM(x.value_number) AS sum
     FROM rounds r
     JOIN responses x ON x.round_id = r.id
     LEFT JOIN questions q ON q.program_id = r.program_id AND q.survey_id = r.survey_id
                          AND q.metric_key = x.metric_key
     WHERE r.program_id = $1 AND ($2 IS NULL OR r.survey_id = $2)
       AND COALESCE(r.anonymity, 'anonymous') <> 'attributed'
       AND r.state = 'closed'
       AND (x.value_number IS NOT NULL OR (x.value_text IS NOT NULL AND x.value_text <> ''))
     GROUP BY r.id, r.survey_id, r.number, r.period_key, r.anonymity, r.anonymity_k,
              r.opened_at, x.metric_key, q.kind, q.position
     ORDER BY r.opened_at, r.id, q.position, x.metric_key";

const ANSWERS_SQL: &str = "SELECT r.survey_id, r.number, r.period_key,
        m.slack_user_id AS member, m.role, x.metric_key, q.kind,
        x.value_number, x.value_text, x.updated_at AS answered_at
     FROM rounds r
     JOIN responses x ON x.round_id = r.id
     JOIN deliveries d ON d.id = x.delivery_id
     JOIN members m ON m.id = d.member_id
     LEFT JOIN questions q ON q.program_id = r.program_id AND q.survey_id = r.survey_id
                          AND q.metric_key = x.metric_key
     WHERE r.program_id = $1 AND ($2 IS NULL OR r.survey_id = $2)
       AND r.anonymity = 'attributed'
       AND (x.value_number IS NOT NULL OR (x.value_text IS NOT NULL AND x.value_text <> ''))
     ORDER BY r.opened_at, r.id, m.slack_user_id, q.position, x.metric_key";

impl Store {
    /// Counts and sums per round and metric of the program's closed anonymous and
    /// confidential rounds (of one survey when `survey` is given), oldest round first.
    pub async fn export_cells(
        &self,
        program: &ProgramId,
        survey: Option<&str>,
    ) -> StoreResult<Vec<ExportCell>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as::<_, ExportCell>(CELLS_SQL)
                .bind(program)
                .bind(survey)
                .fetch_all(p)
                .await?
        }))
    }

    /// Every answer of the program's attributed rounds, with its member, oldest round first.
    pub async fn export_answers(
        &self,
        program: &ProgramId,
        survey: Option<&str>,
    ) -> StoreResult<Vec<ExportAnswer>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as::<_, ExportAnswer>(ANSWERS_SQL)
                .bind(program)
                .bind(survey)
                .fetch_all(p)
                .await?
        }))
    }
}
