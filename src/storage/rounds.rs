//! Rounds, deliveries and responses: the life of one pulse from schedule to seal.
//!
//! State changes are conditional updates (`… WHERE state = 'scheduled'`), so two scheduler
//! ticks or two replicas racing on the same delivery cannot both act on it.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{from_ms, on_pool, on_tx, to_ms, Store, StoreResult, StoreTx};

#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub member_id: i64,
    pub state: &'static str,
    pub scheduled_at: DateTime<Utc>,
    pub local_time: String,
    pub timezone: String,
    pub closes_at: DateTime<Utc>,
    pub remind_at: Option<DateTime<Utc>>,
}

/// A delivery with what is needed to render and judge it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: i64,
    pub round_id: i64,
    pub member_id: i64,
    pub state: String,
    pub scheduled_at: i64,
    pub local_time: String,
    pub timezone: String,
    pub closes_at: i64,
    pub remind_at: Option<i64>,
    pub sent_at: Option<i64>,
    pub reminded_at: Option<i64>,
    pub answered_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub channel_id: Option<String>,
    pub message_ts: Option<String>,
    pub failure_reason: Option<String>,
    pub program_id: String,
    pub survey_id: String,
    pub period_key: String,
    pub slack_user_id: String,
    pub role: String,
}

impl DeliveryRow {
    pub fn closes_at(&self) -> DateTime<Utc> {
        from_ms(self.closes_at)
    }
    pub fn scheduled_at(&self) -> DateTime<Utc> {
        from_ms(self.scheduled_at)
    }
    /// Answers are accepted while the window is open and the delivery was not cancelled.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        now < self.closes_at()
            && matches!(
                self.state.as_str(),
                "scheduled" | "queued" | "sent" | "answered"
            )
    }
}

/// (metric key, role, number, text, allow reply): an answer with nothing that points to a person.
type SealedAnswer = (String, String, Option<f64>, Option<String>, bool);

const RESPONSES_OF_DELIVERY: &str =
    "SELECT metric_key, value_number, value_text FROM responses WHERE delivery_id = $1 ORDER BY metric_key";

const DELIVERY_SELECT: &str =
    "SELECT d.id, d.round_id, d.member_id, d.state, d.scheduled_at, d.local_time,
        d.timezone, d.closes_at, d.remind_at, d.sent_at, d.reminded_at, d.answered_at, d.closed_at,
        d.channel_id, d.message_ts, d.failure_reason, r.program_id, r.survey_id, r.period_key,
        m.slack_user_id, m.role
     FROM deliveries d JOIN rounds r ON r.id = d.round_id JOIN members m ON m.id = d.member_id";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ResponseRow {
    pub metric_key: String,
    pub value_number: Option<f64>,
    pub value_text: Option<String>,
}

impl StoreTx {
    /// The round for (program, survey, period), created on first use; its closing time grows
    /// to cover every delivery.
    pub async fn ensure_round(
        &mut self,
        program_id: &str,
        survey_id: &str,
        period_key: &str,
        origin: &str,
        opened_at: DateTime<Utc>,
        closes_at: DateTime<Utc>,
    ) -> StoreResult<i64> {
        let id: i64 = on_tx!(self, |c| {
            sqlx::query_scalar(
                "INSERT INTO rounds (program_id, survey_id, period_key, origin, state, opened_at, closes_at)
                 VALUES ($1, $2, $3, $4, 'open', $5, $6)
                 ON CONFLICT (program_id, survey_id, period_key) DO UPDATE SET
                    opened_at = CASE WHEN rounds.opened_at > excluded.opened_at THEN excluded.opened_at ELSE rounds.opened_at END,
                    closes_at = CASE WHEN rounds.closes_at < excluded.closes_at THEN excluded.closes_at ELSE rounds.closes_at END
                 RETURNING id",
            )
            .bind(program_id)
            .bind(survey_id)
            .bind(period_key)
            .bind(origin)
            .bind(to_ms(opened_at))
            .bind(to_ms(closes_at))
            .fetch_one(c)
            .await?
        });
        Ok(id)
    }

    /// Creates the delivery unless this member already has one in this round.
    pub async fn insert_delivery(
        &mut self,
        round_id: i64,
        d: &NewDelivery,
    ) -> StoreResult<Option<i64>> {
        let closed_at = (d.state == "skipped").then(|| to_ms(d.scheduled_at));
        Ok(on_tx!(self, |c| {
            sqlx::query_scalar(
                "INSERT INTO deliveries (round_id, member_id, state, scheduled_at, local_time, timezone,
                    closes_at, remind_at, closed_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (round_id, member_id) DO NOTHING
                 RETURNING id",
            )
            .bind(round_id)
            .bind(d.member_id)
            .bind(d.state)
            .bind(to_ms(d.scheduled_at))
            .bind(&d.local_time)
            .bind(&d.timezone)
            .bind(to_ms(d.closes_at))
            .bind(d.remind_at.map(to_ms))
            .bind(closed_at)
            .fetch_optional(c)
            .await?
        }))
    }

    /// scheduled → queued (the DM is in the outbox). False if someone else got there first.
    pub async fn mark_queued(&mut self, delivery_id: i64, now: DateTime<Utc>) -> StoreResult<bool> {
        self.transition(delivery_id, "scheduled", "queued", "queued_at", now)
            .await
    }

    /// scheduled → skipped, with a reason (opted out, deleted in Slack…).
    pub async fn mark_skipped(
        &mut self,
        delivery_id: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |c| {
            sqlx::query(
                "UPDATE deliveries SET state = 'skipped', failure_reason = $1, closed_at = $2
                 WHERE id = $3 AND state = 'scheduled'",
            )
            .bind(reason)
            .bind(to_ms(now))
            .bind(delivery_id)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Records that a reminder went out; only the first call for a delivery succeeds.
    pub async fn mark_reminded(
        &mut self,
        delivery_id: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |c| {
            sqlx::query(
                "UPDATE deliveries SET reminded_at = $1
                 WHERE id = $2 AND state = 'sent' AND reminded_at IS NULL",
            )
            .bind(to_ms(now))
            .bind(delivery_id)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// First answer: the delivery counts as answered (and will not be reminded).
    pub async fn mark_answered(&mut self, delivery_id: i64, now: DateTime<Utc>) -> StoreResult<()> {
        on_tx!(self, |c| {
            sqlx::query(
                "UPDATE deliveries SET state = 'answered', answered_at = $1
                 WHERE id = $2 AND state IN ('scheduled', 'queued', 'sent')",
            )
            .bind(to_ms(now))
            .bind(delivery_id)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    async fn transition(
        &mut self,
        delivery_id: i64,
        from: &str,
        to: &str,
        stamp: &'static str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let sql =
            format!("UPDATE deliveries SET state = $1, {stamp} = $2 WHERE id = $3 AND state = $4");
        let n = on_tx!(self, |c| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(to)
                .bind(to_ms(now))
                .bind(delivery_id)
                .bind(from)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Stores one answer: insert first, a later answer to the same question replaces it.
    /// Returns true when something changed (a double click changes nothing).
    #[allow(clippy::too_many_arguments)]
    pub async fn upsert_response(
        &mut self,
        round_id: i64,
        delivery_id: i64,
        metric_key: &str,
        role: &str,
        value_number: Option<f64>,
        value_text: Option<&str>,
        allow_reply: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO responses (round_id, delivery_id, metric_key, role, value_number, value_text,
                    allow_reply, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
                 ON CONFLICT (delivery_id, metric_key) DO UPDATE SET value_number = excluded.value_number,
                    value_text = excluded.value_text, allow_reply = excluded.allow_reply,
                    updated_at = excluded.updated_at
                 WHERE responses.value_number IS DISTINCT FROM excluded.value_number
                    OR responses.value_text IS DISTINCT FROM excluded.value_text
                    OR responses.allow_reply <> excluded.allow_reply",
            )
            .bind(round_id)
            .bind(delivery_id)
            .bind(metric_key)
            .bind(role)
            .bind(value_number)
            .bind(value_text)
            .bind(allow_reply)
            .bind(to_ms(now))
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// An optional answer the member emptied.
    pub async fn delete_response(&mut self, delivery_id: i64, metric_key: &str) -> StoreResult<()> {
        on_tx!(self, |c| {
            sqlx::query("DELETE FROM responses WHERE delivery_id = $1 AND metric_key = $2")
                .bind(delivery_id)
                .bind(metric_key)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    pub async fn responses_of_delivery(
        &mut self,
        delivery_id: i64,
    ) -> StoreResult<Vec<ResponseRow>> {
        Ok(on_tx!(self, |c| {
            sqlx::query_as(RESPONSES_OF_DELIVERY)
                .bind(delivery_id)
                .fetch_all(c)
                .await?
        }))
    }

    /// A small win, once per source (a survey answer or a slash command); a changed answer
    /// updates it. The author is kept only when they agreed to be named.
    pub async fn upsert_win(
        &mut self,
        program_id: &str,
        author_member_id: Option<i64>,
        text: &str,
        consent: &str,
        source_key: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO wins (program_id, author_member_id, text, consent, source_key, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (source_key) DO UPDATE SET author_member_id = excluded.author_member_id,
                    text = excluded.text, consent = excluded.consent",
            )
            .bind(program_id)
            .bind(author_member_id)
            .bind(text)
            .bind(consent)
            .bind(source_key)
            .bind(to_ms(now))
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Window over: unanswered deliveries expire; every open one gets `closed_at`.
    /// Returns the deliveries whose DM must be updated to its closed state.
    /// Each row: (delivery id, new state, whether a DM had been queued for it).
    pub async fn close_due_deliveries(
        &mut self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<(i64, String, bool)>> {
        let at = to_ms(now);
        Ok(on_tx!(self, |c| {
            sqlx::query_as(
                "UPDATE deliveries SET
                    state = CASE WHEN state = 'answered' THEN 'answered' ELSE 'expired' END,
                    closed_at = $1
                 WHERE id IN (SELECT id FROM deliveries
                              WHERE closed_at IS NULL AND closes_at <= $1
                                AND state IN ('scheduled', 'queued', 'sent', 'answered')
                              ORDER BY closes_at LIMIT $2)
                 RETURNING id, state, queued_at IS NOT NULL",
            )
            .bind(at)
            .bind(limit)
            .fetch_all(c)
            .await?
        }))
    }

    /// Closes rounds whose every delivery is closed; returns (round id, program, survey).
    pub async fn close_due_rounds(
        &mut self,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<(i64, String, String)>> {
        let at = to_ms(now);
        Ok(on_tx!(self, |c| {
            sqlx::query_as(
                "UPDATE rounds SET state = 'closed', closed_at = $1
                 WHERE state = 'open' AND closes_at <= $1
                   AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.round_id = rounds.id
                                   AND d.closed_at IS NULL AND d.state IN ('scheduled', 'queued', 'sent', 'answered'))
                 RETURNING id, program_id, survey_id",
            )
            .bind(at)
            .fetch_all(c)
            .await?
        }))
    }

    /// Anonymous surveys: after close nothing may tie an answer to a person. Responses are
    /// re-inserted in random order with no delivery and round-level timestamps (so neither
    /// ids nor times line up with deliveries), answer times are dropped from deliveries,
    /// and the DM payloads that echoed answers are blanked in the outbox.
    pub async fn seal_round(&mut self, round_id: i64, now: DateTime<Utc>) -> StoreResult<usize> {
        let opened_at: i64 = on_tx!(self, |c| {
            sqlx::query_scalar("SELECT opened_at FROM rounds WHERE id = $1")
                .bind(round_id)
                .fetch_one(c)
                .await?
        });
        let mut answers: Vec<SealedAnswer> = on_tx!(self, |c| {
            sqlx::query_as(
                "SELECT metric_key, role, value_number, value_text, allow_reply FROM responses WHERE round_id = $1",
            )
            .bind(round_id)
            .fetch_all(c)
            .await?
        });
        fastrand::shuffle(&mut answers);
        on_tx!(self, |c| {
            sqlx::query("DELETE FROM responses WHERE round_id = $1")
                .bind(round_id)
                .execute(c)
                .await?
                .rows_affected()
        });
        for (key, role, number, text, allow_reply) in &answers {
            on_tx!(self, |c| {
                sqlx::query(
                    "INSERT INTO responses (round_id, delivery_id, metric_key, role, value_number, value_text,
                        allow_reply, created_at, updated_at)
                     VALUES ($1, NULL, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(round_id)
                .bind(key)
                .bind(role)
                .bind(number)
                .bind(text)
                .bind(allow_reply)
                .bind(opened_at)
                .execute(c)
                .await?
                .rows_affected()
            });
        }
        on_tx!(self, |c| {
            sqlx::query("UPDATE deliveries SET answered_at = NULL WHERE round_id = $1")
                .bind(round_id)
                .execute(c)
                .await?
                .rows_affected()
        });
        // Outbox rows of this round's DMs carry rendered answers next to the member's channel:
        // an answer update not yet sent is superseded by the closed state and dropped; what
        // was sent keeps its status but loses its payload.
        on_tx!(self, |c| {
            sqlx::query(
                "DELETE FROM outbox WHERE status = 'pending' AND dedupe_key LIKE 'delivery:%:answer:%'
                   AND delivery_id IN (SELECT id FROM deliveries WHERE round_id = $1)",
            )
            .bind(round_id)
            .execute(c)
            .await?
            .rows_affected()
        });
        on_tx!(self, |c| {
            sqlx::query(
                "UPDATE outbox SET payload = '{}', result = NULL
                 WHERE status <> 'pending' AND delivery_id IN (SELECT id FROM deliveries WHERE round_id = $1)",
            )
            .bind(round_id)
            .execute(c)
            .await?
            .rows_affected()
        });
        on_tx!(self, |c| {
            sqlx::query("UPDATE rounds SET sealed_at = $1 WHERE id = $2")
                .bind(to_ms(now))
                .bind(round_id)
                .execute(c)
                .await?
                .rows_affected()
        });
        self.audit(
            now,
            "system",
            "round.sealed",
            None,
            Some(&round_id.to_string()),
            &json!({ "answers": answers.len() }),
        )
        .await?;
        Ok(answers.len())
    }
}

impl Store {
    pub async fn delivery(&self, id: i64) -> StoreResult<DeliveryRow> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{DELIVERY_SELECT} WHERE d.id = $1"
            )))
            .bind(id)
            .fetch_one(p)
            .await?
        }))
    }

    /// Scheduled deliveries whose time has come and whose window is still open.
    /// Paged by id (`after_id`), so deliveries held back (paused, away) never crowd out the
    /// ones behind them.
    pub async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<DeliveryRow>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{DELIVERY_SELECT} WHERE d.state = 'scheduled' AND d.scheduled_at <= $1 AND d.closes_at > $1
                   AND d.id > $2
                 ORDER BY d.id LIMIT $3"
            )))
            .bind(to_ms(now))
            .bind(after_id)
            .bind(limit)
            .fetch_all(p)
            .await?
        }))
    }

    /// Sent, unanswered, not yet reminded, reminder time reached, window open.
    pub async fn deliveries_to_remind(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<DeliveryRow>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{DELIVERY_SELECT} WHERE d.state = 'sent' AND d.reminded_at IS NULL
                   AND d.remind_at IS NOT NULL AND d.remind_at <= $1 AND d.closes_at > $1
                 ORDER BY d.remind_at, d.id LIMIT $2"
            )))
            .bind(to_ms(now))
            .bind(limit)
            .fetch_all(p)
            .await?
        }))
    }

    /// (period, member) of every delivery in this survey's rounds still closing after `since`:
    /// what the planner must not create again. One query per survey and tick.
    pub async fn planned_keys(
        &self,
        program_id: &str,
        survey_id: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, i64)>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT r.period_key, d.member_id FROM deliveries d JOIN rounds r ON r.id = d.round_id
                 WHERE r.program_id = $1 AND r.survey_id = $2 AND r.closes_at >= $3",
            )
            .bind(program_id)
            .bind(survey_id)
            .bind(to_ms(since))
            .fetch_all(p)
            .await?
        }))
    }

    /// Open (not closed, not cancelled) deliveries of a Slack user, soonest closing first.
    pub async fn pending_deliveries_of(
        &self,
        slack_user_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<DeliveryRow>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{DELIVERY_SELECT} WHERE m.slack_user_id = $1 AND d.closes_at > $2
                   AND d.state IN ('scheduled', 'queued', 'sent')
                 ORDER BY d.closes_at"
            )))
            .bind(slack_user_id)
            .bind(to_ms(now))
            .fetch_all(p)
            .await?
        }))
    }

    pub async fn answered_count(&self, round_id: i64) -> StoreResult<i64> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM deliveries WHERE round_id = $1 AND state = 'answered'",
            )
            .bind(round_id)
            .fetch_one(p)
            .await?
        }))
    }

    pub async fn responses_of_delivery(&self, delivery_id: i64) -> StoreResult<Vec<ResponseRow>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(RESPONSES_OF_DELIVERY)
                .bind(delivery_id)
                .fetch_all(p)
                .await?
        }))
    }

    /// An open round of this survey (send-now refuses to start a second one).
    pub async fn open_round(
        &self,
        program_id: &str,
        survey_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<i64>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT id FROM rounds WHERE program_id = $1 AND survey_id = $2 AND state = 'open'
                   AND closes_at > $3 AND EXISTS (SELECT 1 FROM deliveries d WHERE d.round_id = rounds.id)
                 ORDER BY opened_at DESC LIMIT 1",
            )
            .bind(program_id)
            .bind(survey_id)
            .bind(to_ms(now))
            .fetch_optional(p)
            .await?
        }))
    }
}

/// A delivery that could not be made, for admins.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct FailedDelivery {
    pub member: String,
    pub survey: String,
    pub period: String,
    pub state: String,
    pub reason: Option<String>,
    pub scheduled_at: i64,
}

impl Store {
    /// Failed and skipped deliveries of a program, newest first.
    pub async fn failed_deliveries(
        &self,
        program_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<FailedDelivery>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT m.slack_user_id AS member, r.survey_id AS survey, r.period_key AS period,
                        d.state, d.failure_reason AS reason, d.scheduled_at
                 FROM deliveries d JOIN rounds r ON r.id = d.round_id JOIN members m ON m.id = d.member_id
                 WHERE r.program_id = $1 AND d.state IN ('failed', 'skipped')
                 ORDER BY d.scheduled_at DESC, d.id DESC LIMIT $2",
            )
            .bind(program_id)
            .bind(limit)
            .fetch_all(p)
            .await?
        }))
    }
}
