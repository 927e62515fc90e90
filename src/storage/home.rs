//! What the App Home tab reads: a member's open pulses, their OWN answers in confidential and
//! attributed rounds (never an anonymous round's: before the seal they are linked but not
//! shown, after it nothing links them), the wins they are named as author of, and the latest
//! digest of a program. Reads only; the tab is published through the outbox.

use chrono::{DateTime, Utc};

use super::rounds::{DeliveryRow, DELIVERY_SELECT};
use super::{on_pool, on_tx, to_ms, Millis, Store, StoreResult, StoreTx};
use crate::domain::ids::{ProgramId, RoundId};
use crate::domain::program::Anonymity;
use crate::domain::state::Consent;
use slack_facts::ids::UserId;

/// One answer of the member's own, from a confidential or attributed round.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OwnAnswer {
    pub program_id: ProgramId,
    pub survey_id: String,
    pub round_id: RoundId,
    #[sqlx(try_from = "Millis")]
    pub opened_at: DateTime<Utc>,
    pub anonymity: Anonymity,
    pub metric_key: String,
    pub value_number: Option<f64>,
    pub value_text: Option<String>,
}

/// A win whose stored author is the member (only wins shared with their name, or kept
/// private, name an author; an anonymous win names nobody).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OwnWin {
    pub program_id: ProgramId,
    pub text: String,
    pub consent: Consent,
    #[sqlx(try_from = "Millis")]
    pub created_at: DateTime<Utc>,
}

/// The newest stored digest of a program: its rendered JSON and its period.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LatestDigest {
    pub content: String,
    #[sqlx(try_from = "Millis")]
    pub period_start: DateTime<Utc>,
    #[sqlx(try_from = "Millis")]
    pub period_end: DateTime<Utc>,
}

impl Store {
    /// The member's deliveries that can still be answered (posted, window open, round open
    /// and unsealed), answered or not, soonest closing first.
    pub async fn open_deliveries_of(
        &self,
        slack_user_id: &UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<DeliveryRow>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{DELIVERY_SELECT} WHERE m.slack_user_id = $1 AND d.closes_at > $2
                   AND d.closed_at IS NULL AND d.state IN ('sent', 'answered')
                   AND r.state = 'open' AND r.sealed_at IS NULL
                 ORDER BY d.closes_at, d.id"
            )))
            .bind(slack_user_id)
            .bind(to_ms(now))
            .fetch_all(p)
            .await?
        }))
    }

    /// The member's own answers in confidential and attributed rounds, newest round first, at
    /// most `limit` answers. A round with no stored mode is an anonymous one (older rounds):
    /// never listed.
    pub async fn own_answers(
        &self,
        slack_user_id: &UserId,
        limit: i64,
    ) -> StoreResult<Vec<OwnAnswer>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT r.program_id, r.survey_id, r.id AS round_id, r.opened_at, r.anonymity,
                        s.metric_key, s.value_number, s.value_text
                 FROM responses s
                 JOIN deliveries d ON d.id = s.delivery_id
                 JOIN rounds r ON r.id = d.round_id
                 JOIN members m ON m.id = d.member_id
                 WHERE m.slack_user_id = $1 AND r.anonymity IN ('confidential', 'attributed')
                 ORDER BY r.opened_at DESC, r.id DESC, s.metric_key
                 LIMIT $2",
            )
            .bind(slack_user_id)
            .bind(limit)
            .fetch_all(p)
            .await?
        }))
    }

    /// Wins that name the member as their author, newest first.
    pub async fn own_wins(&self, slack_user_id: &UserId, limit: i64) -> StoreResult<Vec<OwnWin>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT w.program_id, w.text, w.consent, w.created_at
                 FROM wins w JOIN members m ON m.id = w.author_member_id
                 WHERE m.slack_user_id = $1
                 ORDER BY w.created_at DESC, w.id DESC
                 LIMIT $2",
            )
            .bind(slack_user_id)
            .bind(limit)
            .fetch_all(p)
            .await?
        }))
    }

    /// The program's newest digest (any channel: each channel gets the same content).
    pub async fn latest_digest(&self, program_id: &ProgramId) -> StoreResult<Option<LatestDigest>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT content, period_start, period_end FROM digests
                 WHERE program_id = $1 ORDER BY period_start DESC, id DESC LIMIT 1",
            )
            .bind(program_id)
            .fetch_optional(p)
            .await?
        }))
    }
}

impl StoreTx {
    /// How the author of a win typed into a survey chose to share it, by the win's answer key
    /// (`delivery:{id}:{question}`, which exists only while the round is open).
    pub async fn win_consent(&mut self, answer_key: &str) -> StoreResult<Option<Consent>> {
        Ok(on_tx!(self, |c| {
            sqlx::query_scalar("SELECT consent FROM wins WHERE answer_key = $1")
                .bind(answer_key)
                .fetch_optional(c)
                .await?
        }))
    }
}
