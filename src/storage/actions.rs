//! "You said, we did": the actions owners record, the period each refers to, and who is told.

use chrono::{DateTime, Utc};

use super::{on_pool, on_tx, to_ms, Store, StoreResult, StoreTx};
use crate::domain::ids::{MemberId, ProgramId, RoundId};

/// The period an action refers to: the program's latest closed round.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClosedPeriod {
    pub round_id: RoundId,
    pub survey_id: String,
    pub period_key: String,
    /// The mode the round opened with (NULL on older rounds means anonymous).
    pub anonymity: Option<String>,
    pub anonymity_k: Option<i64>,
    /// Set for sealed (anonymous) rounds: who answered is only a count then.
    pub answered_count: Option<i64>,
    pub sealed: bool,
}

/// A member an action DM goes to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Recipient {
    pub member_id: MemberId,
    pub slack_user_id: String,
}

/// A stored action, as the digest reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActionRow {
    pub id: i64,
    pub text: String,
    pub period_key: Option<String>,
    pub notified_count: i64,
}

impl Store {
    /// The program's most recently closed round, if any.
    pub async fn latest_closed_period(
        &self,
        program_id: &ProgramId,
    ) -> StoreResult<Option<ClosedPeriod>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT id AS round_id, survey_id, period_key, anonymity, anonymity_k,
                        answered_count, sealed_at IS NOT NULL AS sealed
                 FROM rounds WHERE program_id = $1 AND state = 'closed'
                 ORDER BY closed_at DESC, id DESC LIMIT 1",
            )
            .bind(program_id)
            .fetch_optional(p)
            .await?
        }))
    }

    /// Who gets the action DM for a round, among members still in the program (not opted
    /// out, not removed). Before a seal (confidential and attributed rounds are never
    /// sealed): the members who answered. After a seal nobody knows who answered, by design:
    /// every member the pulse was posted to.
    pub async fn period_recipients(
        &self,
        round_id: RoundId,
        sealed: bool,
    ) -> StoreResult<Vec<Recipient>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT m.id AS member_id, m.slack_user_id
                 FROM deliveries d JOIN members m ON m.id = d.member_id
                 WHERE d.round_id = $1
                   AND m.state IN ('active', 'paused') AND NOT m.slack_deleted
                   AND ((NOT $2 AND d.state = 'answered')
                        OR ($2 AND d.sent_at IS NOT NULL))
                 ORDER BY m.slack_user_id",
            )
            .bind(round_id)
            .bind(sealed)
            .fetch_all(p)
            .await?
        }))
    }

    /// The program's actions, newest first.
    pub async fn actions_of_program(&self, program_id: &ProgramId) -> StoreResult<Vec<ActionRow>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT id, text, period_key, notified_count FROM actions
                 WHERE program_id = $1 ORDER BY created_at DESC, id DESC",
            )
            .bind(program_id)
            .fetch_all(p)
            .await?
        }))
    }
}

impl StoreTx {
    /// Stores an action; returns its id.
    pub async fn insert_action(
        &mut self,
        program_id: &ProgramId,
        author: &str,
        text: &str,
        period: Option<&ClosedPeriod>,
        now: DateTime<Utc>,
    ) -> StoreResult<i64> {
        Ok(on_tx!(self, |c| {
            sqlx::query_scalar(
                "INSERT INTO actions (program_id, author_slack_id, text, created_at, round_id, period_key)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(program_id)
            .bind(author)
            .bind(text)
            .bind(to_ms(now))
            .bind(period.map(|p| p.round_id))
            .bind(period.map(|p| p.period_key.as_str()))
            .fetch_one(c)
            .await?
        }))
    }

    pub async fn set_action_notified(&mut self, action_id: i64, n: i64) -> StoreResult<()> {
        on_tx!(self, |c| {
            sqlx::query("UPDATE actions SET notified_count = $2 WHERE id = $1")
                .bind(action_id)
                .bind(n)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(())
    }
}
