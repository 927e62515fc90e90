//! The ROI report's reads: one row per round (who was asked, who answered), the answers'
//! sums per round and metric (never single answers), wins shared with the author's name and
//! the "you said, we did" actions of a time range. The report (`digest::report`) combines
//! them and applies the anonymity rules.

use chrono::{DateTime, Utc};

use super::{on_pool, to_ms, Millis, Store, StoreResult};
use crate::domain::ids::ProgramId;

/// One round of the program.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRound {
    pub id: i64,
    pub survey_id: String,
    pub opened_at: DateTime<Utc>,
    /// The anonymity threshold the round opened with (older rounds: none stored).
    pub anonymity_k: Option<i64>,
    /// DMs that were posted (a sealed round keeps the count; otherwise counted now).
    pub asked: i64,
    /// Members who answered.
    pub answered: i64,
}

/// The answers to one numeric question in one round, as sums.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RoundMetric {
    pub round_id: i64,
    pub metric_key: String,
    /// The question's kind (`scale`, `enps`).
    pub kind: String,
    pub n: i64,
    pub sum: f64,
    pub sum_sq: f64,
    /// eNPS: answers of 9–10 and of 0–6.
    pub promoters: i64,
    pub detractors: i64,
}

/// A win its author agreed to share with their name.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct NamedWin {
    pub text: String,
    pub author: String,
    #[sqlx(try_from = "Millis")]
    pub created_at: DateTime<Utc>,
}

/// A "you said, we did" note.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ActionNote {
    pub text: String,
    #[sqlx(try_from = "Millis")]
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct RoundRow {
    id: i64,
    survey_id: String,
    opened_at: Millis,
    anonymity_k: Option<i64>,
    asked: i64,
    answered: i64,
}

impl Store {
    /// Every round of the program, oldest first, with its asked and answered counts.
    pub async fn report_rounds(&self, program: &ProgramId) -> StoreResult<Vec<ReportRound>> {
        let rows: Vec<RoundRow> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT r.id, r.survey_id, r.opened_at, r.anonymity_k,
                    COALESCE(r.asked_count, (SELECT COUNT(*) FROM deliveries d
                        WHERE d.round_id = r.id AND d.sent_at IS NOT NULL)) AS asked,
                    COALESCE(r.answered_count, (SELECT COUNT(*) FROM deliveries d
                        WHERE d.round_id = r.id AND d.state = 'answered')) AS answered
                 FROM rounds r WHERE r.program_id = $1
                 ORDER BY r.opened_at, r.id",
            )
            .bind(program)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| ReportRound {
                id: r.id,
                survey_id: r.survey_id,
                opened_at: r.opened_at.into(),
                anonymity_k: r.anonymity_k,
                asked: r.asked,
                answered: r.answered,
            })
            .collect())
    }

    /// Per round and numeric question (`scale`, `enps`) of the program: count, sum and sum of
    /// squares of the answers, and the eNPS counts.
    pub async fn report_round_metrics(&self, program: &ProgramId) -> StoreResult<Vec<RoundMetric>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT s.round_id, s.metric_key, q.kind, COUNT(*) AS n,
                    CAST(SUM(s.value_number) AS DOUBLE PRECISION) AS sum,
                    CAST(SUM(s.value_number * s.value_number) AS DOUBLE PRECISION) AS sum_sq,
                    SUM(CASE WHEN s.value_number >= 9 THEN 1 ELSE 0 END) AS promoters,
                    SUM(CASE WHEN s.value_number <= 6 THEN 1 ELSE 0 END) AS detractors
                 FROM responses s
                 JOIN rounds r ON r.id = s.round_id
                 JOIN questions q ON q.program_id = r.program_id AND q.survey_id = r.survey_id
                    AND q.metric_key = s.metric_key
                 WHERE r.program_id = $1 AND q.kind IN ('scale', 'enps')
                   AND s.value_number IS NOT NULL
                 GROUP BY s.round_id, s.metric_key, q.kind
                 ORDER BY s.round_id, s.metric_key",
            )
            .bind(program)
            .fetch_all(p)
            .await?
        }))
    }

    /// Wins whose author chose to be named, created in `[from, to)`, oldest first.
    pub async fn report_named_wins(
        &self,
        program: &ProgramId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<NamedWin>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT w.text, m.slack_user_id AS author, w.created_at
                 FROM wins w JOIN members m ON m.id = w.author_member_id
                 WHERE w.program_id = $1 AND w.consent = 'named'
                   AND w.created_at >= $2 AND w.created_at < $3
                 ORDER BY w.created_at, w.id",
            )
            .bind(program)
            .bind(to_ms(from))
            .bind(to_ms(to))
            .fetch_all(p)
            .await?
        }))
    }

    /// The program's actions recorded in `[from, to)`, oldest first.
    pub async fn report_actions(
        &self,
        program: &ProgramId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<ActionNote>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT text, created_at FROM actions
                 WHERE program_id = $1 AND created_at >= $2 AND created_at < $3
                 ORDER BY created_at, id",
            )
            .bind(program)
            .bind(to_ms(from))
            .bind(to_ms(to))
            .fetch_all(p)
            .await?
        }))
    }
}
