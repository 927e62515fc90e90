//! Rounds, deliveries and responses: the life of one pulse from schedule to seal.
//!
//! State changes are conditional updates (`… WHERE state = 'scheduled'`), so two scheduler
//! ticks or two replicas racing on the same delivery cannot both act on it.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::outbox::OutboxKind;
use crate::domain::ids::{DeliveryId, MemberId, ProgramId, RoundId};
use crate::domain::program::Anonymity;
use crate::domain::state::{Consent, DeliveryState};
use slack_facts::ids::{ChannelId, MessageTs, UserId};

use super::{on_pool, on_reader, on_tx, to_ms, Millis, OptMillis, Store, StoreResult, StoreTx};

#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub member_id: MemberId,
    pub state: DeliveryState,
    pub scheduled_at: DateTime<Utc>,
    pub local_time: String,
    pub timezone: String,
    pub closes_at: DateTime<Utc>,
    pub remind_at: Option<DateTime<Utc>>,
}

/// A delivery with what is needed to render and judge it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: DeliveryId,
    pub round_id: RoundId,
    pub member_id: MemberId,
    pub state: DeliveryState,
    #[sqlx(try_from = "Millis")]
    pub scheduled_at: DateTime<Utc>,
    pub local_time: String,
    pub timezone: String,
    #[sqlx(try_from = "Millis")]
    pub closes_at: DateTime<Utc>,
    #[sqlx(try_from = "OptMillis")]
    pub remind_at: Option<DateTime<Utc>>,
    #[sqlx(try_from = "OptMillis")]
    pub sent_at: Option<DateTime<Utc>>,
    #[sqlx(try_from = "OptMillis")]
    pub reminded_at: Option<DateTime<Utc>>,
    #[sqlx(try_from = "OptMillis")]
    pub answered_at: Option<DateTime<Utc>>,
    #[sqlx(try_from = "OptMillis")]
    pub closed_at: Option<DateTime<Utc>>,
    pub channel_id: Option<ChannelId>,
    pub message_ts: Option<MessageTs>,
    pub failure_reason: Option<String>,
    pub answer_revision: i64,
    pub program_id: ProgramId,
    pub survey_id: String,
    pub period_key: String,
    /// The anonymity mode the round opened with (NULL for rounds older than this column).
    pub round_anonymity: Option<Anonymity>,
    pub round_k: Option<i64>,
    pub slack_user_id: UserId,
    pub role: String,
    /// The answers stored for this delivery, when they were read in the same statement
    /// ([`Store::delivery_with_answers`]); `None` when not read.
    #[sqlx(skip)]
    pub answers_read: Option<AnswersRead>,
}

/// The answers of one delivery read with it. Its `Debug` says how many, never what: a
/// delivery row may be logged, and an anonymous round's answers must not be.
#[derive(Clone, Default)]
pub struct AnswersRead(pub Vec<ResponseRow>);

impl std::fmt::Debug for AnswersRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AnswersRead({} answers)", self.0.len())
    }
}

impl DeliveryRow {
    /// Answers are accepted while the window is open and the delivery was not cancelled.
    /// A hint for the UI only: the answer write itself re-checks this, atomically.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        now < self.closes_at && self.closed_at.is_none() && self.state.is_answerable()
    }
}

const RESPONSES_OF_DELIVERY: &str =
    "SELECT metric_key, value_number, value_text FROM responses WHERE delivery_id = $1 ORDER BY metric_key";

pub(super) const DELIVERY_SELECT: &str =
    "SELECT d.id, d.round_id, d.member_id, d.state, d.scheduled_at, d.local_time,
        d.timezone, d.closes_at, d.remind_at, d.sent_at, d.reminded_at, d.answered_at, d.closed_at,
        d.channel_id, d.message_ts, d.failure_reason, d.answer_revision, r.program_id, r.survey_id,
        r.period_key, r.anonymity AS round_anonymity, r.anonymity_k AS round_k,
        m.slack_user_id, m.role
     FROM deliveries d JOIN rounds r ON r.id = d.round_id JOIN members m ON m.id = d.member_id";

/// Why a pulse DM that was never posted is not sent any more.
pub const CANCELLED_AT_CLOSE: &str = "cancelled: the pulse closed before this was sent";

/// The role a sealed answer keeps when its role group is below `k` (or its complement is).
pub const FOLDED_ROLE: &str = "folded";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ResponseRow {
    pub metric_key: String,
    pub value_number: Option<f64>,
    pub value_text: Option<String>,
}

/// A round the close step closed, with the promise it opened with.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClosedRound {
    pub id: RoundId,
    pub program_id: ProgramId,
    pub survey_id: String,
    pub anonymity: Option<Anonymity>,
    pub anonymity_k: Option<i64>,
}

/// A delivery the close step closed.
#[derive(Debug, Clone)]
pub struct ClosedDelivery {
    pub id: DeliveryId,
    pub answered: bool,
    /// Its DM was posted (or is being posted right now): it gets a closed-state update.
    pub posted: bool,
    /// Its DM was still queued and is now cancelled.
    pub cancelled: bool,
}

/// What a seal did, in counts only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SealReport {
    pub answers: u64,
    pub asked: i64,
    pub answered: i64,
    pub roles_folded: bool,
}

/// A round the planner or send-now opened or joined: its id (the API's), its number within
/// its survey (what people read) and whether this call created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenedRound {
    pub id: RoundId,
    pub number: i64,
    pub created: bool,
}

/// An open round of a survey, as send-now reports it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OpenRound {
    pub id: RoundId,
    /// Its number within its survey (0 only for a round older than numbering).
    pub number: i64,
    #[sqlx(try_from = "Millis")]
    pub opened_at: DateTime<Utc>,
    #[sqlx(try_from = "Millis")]
    pub closes_at: DateTime<Utc>,
}

/// A new round: where it comes from and the promise it opens with.
#[derive(Debug, Clone)]
pub struct NewRound<'a> {
    pub program_id: &'a ProgramId,
    pub survey_id: &'a str,
    pub period_key: &'a str,
    pub origin: &'a str,
    pub opened_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub anonymity: Anonymity,
    pub k: i64,
}

impl StoreTx {
    /// The open round for (program, survey, period), created on first use with the anonymity
    /// mode and threshold in force now and the survey's next round number; its closing time
    /// grows to cover every delivery. `None` when that round exists but is closed: nothing
    /// may join it any more.
    pub async fn ensure_round(&mut self, r: &NewRound<'_>) -> StoreResult<Option<OpenedRound>> {
        // Round numbers are MAX + 1 per survey: two replicas opening rounds of one survey at
        // once take turns (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers).
        if let super::TxInner::Postgres(t) = &mut self.inner {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(format!("pulseloop:rounds:{}:{}", r.program_id, r.survey_id))
                .execute(&mut **t)
                .await?;
        }
        let existing: Option<RoundId> = on_tx!(self, |c| {
            sqlx::query_scalar(
                "SELECT id FROM rounds WHERE program_id = $1 AND survey_id = $2 AND period_key = $3",
            )
            .bind(r.program_id)
            .bind(r.survey_id)
            .bind(r.period_key)
            .fetch_optional(c)
            .await?
        });
        let row: Option<(RoundId, Option<i64>)> = on_tx!(self, |c| {
            sqlx::query_as(
                "INSERT INTO rounds (program_id, survey_id, period_key, origin, state, opened_at, closes_at,
                    anonymity, anonymity_k, number)
                 VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8,
                    (SELECT COALESCE(MAX(number), 0) + 1 FROM rounds WHERE program_id = $1 AND survey_id = $2))
                 ON CONFLICT (program_id, survey_id, period_key) DO UPDATE SET
                    opened_at = CASE WHEN rounds.opened_at > excluded.opened_at THEN excluded.opened_at ELSE rounds.opened_at END,
                    closes_at = CASE WHEN rounds.closes_at < excluded.closes_at THEN excluded.closes_at ELSE rounds.closes_at END
                 WHERE rounds.state = 'open' AND rounds.sealed_at IS NULL
                 RETURNING id, number",
            )
            .bind(r.program_id)
            .bind(r.survey_id)
            .bind(r.period_key)
            .bind(r.origin)
            .bind(to_ms(r.opened_at))
            .bind(to_ms(r.closes_at))
            .bind(r.anonymity)
            .bind(r.k)
            .fetch_optional(c)
            .await?
        });
        Ok(row.map(|(id, number)| OpenedRound {
            id,
            number: number.unwrap_or(0),
            created: existing.is_none(),
        }))
    }

    /// Send-now: opens a round unless one of this survey is open, atomically. Two concurrent
    /// calls serialise on the write lock (SQLite's `BEGIN IMMEDIATE`) or on a transaction-
    /// scoped advisory lock per survey (PostgreSQL), and the second sees the first's round.
    /// `Err(round)` names the round that is still open.
    pub async fn open_send_now_round(
        &mut self,
        r: &NewRound<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<OpenedRound, OpenRound>> {
        if let super::TxInner::Postgres(t) = &mut self.inner {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(format!(
                    "pulseloop:send_now:{}:{}",
                    r.program_id, r.survey_id
                ))
                .execute(&mut **t)
                .await?;
        }
        let open: Option<OpenRound> = on_tx!(self, |c| {
            sqlx::query_as(OPEN_ROUND)
                .bind(r.program_id)
                .bind(r.survey_id)
                .bind(to_ms(now))
                .fetch_optional(c)
                .await?
        });
        if let Some(open) = open {
            return Ok(Err(open));
        }
        match self.ensure_round(r).await? {
            Some(round) => Ok(Ok(round)),
            // Same survey, same millisecond, and already closed: report it as the open one.
            None => Err(super::StoreError::Conflict("round already closed".into())),
        }
    }

    /// Creates the delivery unless this member already has one in this round, and only while
    /// the round is open (checked in the same statement): no delivery ever joins a closed or
    /// sealed round.
    pub async fn insert_delivery(
        &mut self,
        round_id: RoundId,
        d: &NewDelivery,
    ) -> StoreResult<Option<RoundId>> {
        let closed_at = (d.state == DeliveryState::Skipped).then(|| to_ms(d.scheduled_at));
        Ok(on_tx!(self, |c| {
            sqlx::query_scalar(
                "INSERT INTO deliveries (round_id, member_id, state, scheduled_at, local_time, timezone,
                    closes_at, remind_at, closed_at)
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
                 WHERE EXISTS (SELECT 1 FROM rounds r WHERE r.id = $1 AND r.state = 'open' AND r.sealed_at IS NULL)
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
    pub async fn mark_queued(
        &mut self,
        delivery_id: DeliveryId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.transition(
            delivery_id,
            DeliveryState::Scheduled,
            DeliveryState::Queued,
            "queued_at",
            now,
        )
        .await
    }

    /// scheduled → skipped, with a reason (opted out, deleted in Slack…).
    pub async fn mark_skipped(
        &mut self,
        delivery_id: DeliveryId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let which = "id = $4 AND state = 'scheduled'";
        let n = self
            .mark_unsent(which, delivery_id.0, DeliveryState::Skipped, reason, now)
            .await?;
        Ok(n == 1)
    }

    /// Closes the deliveries whose DM was never sent as `failed` or `skipped`, keeping the
    /// reason: those matching `which`, a fixed condition on `deliveries` whose one parameter
    /// is `$4` (bound to `key`). Returns how many changed.
    pub(super) async fn mark_unsent(
        &mut self,
        which: &'static str,
        key: i64,
        state: DeliveryState,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let sql = format!(
            "UPDATE deliveries SET state = $1, failure_reason = $2, closed_at = $3 WHERE {which}"
        );
        Ok(on_tx!(self, |c| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(state)
                .bind(reason)
                .bind(to_ms(now))
                .bind(key)
                .execute(c)
                .await?
                .rows_affected()
        }))
    }

    /// Records that a reminder went out; only the first call for a delivery succeeds.
    pub async fn mark_reminded(
        &mut self,
        delivery_id: DeliveryId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |c| {
            sqlx::query(
                "UPDATE deliveries SET reminded_at = $1
                 WHERE id = $2 AND state = 'sent' AND reminded_at IS NULL AND closed_at IS NULL",
            )
            .bind(to_ms(now))
            .bind(delivery_id)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// The first statement of every answer transaction: marks the delivery answered if, and
    /// only if, it is still open — its window has not ended, it was not closed, and its round
    /// is open and not sealed — in one conditional statement. On PostgreSQL it also locks the
    /// delivery row, so the close step (which updates the same row) waits for this answer or
    /// this answer sees the close; on SQLite the transaction holds the write lock. `false`:
    /// closed, write nothing.
    pub async fn claim_answer(
        &mut self,
        delivery_id: DeliveryId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |c| {
            sqlx::query(
                "UPDATE deliveries SET state = 'answered', answered_at = COALESCE(answered_at, $1)
                 WHERE id = $2 AND closes_at > $1 AND closed_at IS NULL
                   AND state IN ('scheduled', 'queued', 'sent', 'answered')
                   AND EXISTS (SELECT 1 FROM rounds r WHERE r.id = deliveries.round_id
                               AND r.state = 'open' AND r.sealed_at IS NULL)",
            )
            .bind(to_ms(now))
            .bind(delivery_id)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Next answer revision of a delivery: what keys its DM update (never the answers).
    pub async fn bump_answer_revision(&mut self, delivery_id: DeliveryId) -> StoreResult<i64> {
        Ok(on_tx!(self, |c| {
            sqlx::query_scalar(
                "UPDATE deliveries SET answer_revision = answer_revision + 1 WHERE id = $1
                 RETURNING answer_revision",
            )
            .bind(delivery_id)
            .fetch_one(c)
            .await?
        }))
    }

    /// Drops the still-pending `chat.update` rows of one message: a newer update supersedes
    /// them, so updates are never sent out of order. Rows already leased or sent stay.
    pub async fn supersede_pending_updates(&mut self, target_key: &str) -> StoreResult<u64> {
        Ok(on_tx!(self, |c| {
            sqlx::query(
                "DELETE FROM outbox WHERE target_key = $1 AND method = 'chat.update' AND status = 'pending'",
            )
            .bind(target_key)
            .execute(c)
            .await?
            .rows_affected()
        }))
    }

    async fn transition(
        &mut self,
        delivery_id: DeliveryId,
        from: DeliveryState,
        to: DeliveryState,
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
    /// Returns true when something changed (a double click changes nothing). Call only after
    /// [`StoreTx::claim_answer`] said the delivery is open, in the same transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn upsert_response(
        &mut self,
        round_id: RoundId,
        delivery_id: DeliveryId,
        metric_key: &str,
        role: &str,
        value_number: Option<f64>,
        value_text: Option<&str>,
        allow_reply: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |c| {
            sqlx::query(concat!(
                "INSERT INTO responses (round_id, delivery_id, metric_key, role, value_number, value_text,
                    allow_reply, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                super::answer_write::response_upsert!()
            ))
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

    /// An optional answer the member emptied; true when there was one.
    pub async fn delete_response(
        &mut self,
        delivery_id: DeliveryId,
        metric_key: &str,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |c| {
            sqlx::query("DELETE FROM responses WHERE delivery_id = $1 AND metric_key = $2")
                .bind(delivery_id)
                .bind(metric_key)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }

    pub async fn responses_of_delivery(
        &mut self,
        delivery_id: DeliveryId,
    ) -> StoreResult<Vec<ResponseRow>> {
        Ok(on_tx!(self, |c| {
            sqlx::query_as(RESPONSES_OF_DELIVERY)
                .bind(delivery_id)
                .fetch_all(c)
                .await?
        }))
    }

    /// A small win typed into a survey. Its `source_key` is a random token (nothing in it
    /// names a person or says what was written); `answer_key` ties re-answers to the same win
    /// while the round is open and is cleared when the round closes. The author is kept only
    /// when they agreed to be named. True when something changed.
    #[allow(clippy::too_many_arguments)]
    pub async fn upsert_survey_win(
        &mut self,
        program_id: &ProgramId,
        round_id: RoundId,
        author_member_id: Option<MemberId>,
        text: &str,
        consent: Consent,
        answer_key: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let source_key = format!("win:{}", uuid::Uuid::new_v4().simple());
        let n = on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO wins (program_id, author_member_id, text, consent, source_key, round_id,
                    answer_key, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (answer_key) DO UPDATE SET author_member_id = excluded.author_member_id,
                    text = excluded.text, consent = excluded.consent
                 WHERE wins.text <> excluded.text OR wins.consent <> excluded.consent",
            )
            .bind(program_id)
            .bind(author_member_id)
            .bind(text)
            .bind(consent)
            .bind(&source_key)
            .bind(round_id)
            .bind(answer_key)
            .bind(to_ms(now))
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Window over: unanswered deliveries expire; every open one gets `closed_at`. The DMs
    /// and reminders of these deliveries still waiting in the outbox are cancelled (a pulse
    /// must not arrive after its window), and a delivery whose DM was thus never posted says
    /// why. Returns the closed deliveries; `posted` tells which DMs exist to be updated.
    pub async fn close_due_deliveries(
        &mut self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<ClosedDelivery>> {
        let at = to_ms(now);
        let closed: Vec<(DeliveryId, DeliveryState, bool, bool)> = on_tx!(self, |c| {
            sqlx::query_as(
                "UPDATE deliveries SET
                    state = CASE WHEN state = 'answered' THEN 'answered' ELSE 'expired' END,
                    closed_at = $1
                 WHERE id IN (SELECT id FROM deliveries
                              WHERE closed_at IS NULL AND closes_at <= $1
                                AND state IN ('scheduled', 'queued', 'sent', 'answered')
                              ORDER BY closes_at LIMIT $2)
                 RETURNING id, state, message_ts IS NOT NULL, queued_at IS NOT NULL",
            )
            .bind(at)
            .bind(limit)
            .fetch_all(c)
            .await?
        });
        if closed.is_empty() {
            return Ok(Vec::new());
        }
        let never_posted: std::collections::HashSet<DeliveryId> = self
            .cancel_queued_posts("closed_at = $1", at, CANCELLED_AT_CLOSE)
            .await?
            .into_iter()
            .collect();
        if !never_posted.is_empty() {
            on_tx!(self, |c| {
                sqlx::query(
                    "UPDATE deliveries SET failure_reason = $2
                     WHERE closed_at = $1 AND message_ts IS NULL AND failure_reason IS NULL
                       AND EXISTS (SELECT 1 FROM outbox o WHERE o.subject_kind = 'delivery'
                                   AND o.subject_id = deliveries.id AND o.last_error = $2)",
                )
                .bind(at)
                .bind(CANCELLED_AT_CLOSE)
                .execute(c)
                .await?
                .rows_affected()
            });
        }
        Ok(closed
            .into_iter()
            .map(|(id, state, has_ts, queued)| ClosedDelivery {
                id,
                answered: state == DeliveryState::Answered,
                posted: has_ts || (queued && !never_posted.contains(&id)),
                cancelled: never_posted.contains(&id),
            })
            .collect())
    }

    /// Closes rounds whose window ended and whose every delivery is closed.
    pub async fn close_due_rounds(&mut self, now: DateTime<Utc>) -> StoreResult<Vec<ClosedRound>> {
        let at = to_ms(now);
        let rounds: Vec<ClosedRound> = on_tx!(self, |c| {
            sqlx::query_as(
                "UPDATE rounds SET state = 'closed', closed_at = $1
                 WHERE state = 'open' AND closes_at <= $1
                   AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.round_id = rounds.id
                                   AND d.closed_at IS NULL AND d.state IN ('scheduled', 'queued', 'sent', 'answered'))
                 RETURNING id, program_id, survey_id, anonymity, anonymity_k",
            )
            .bind(at)
            .fetch_all(c)
            .await?
        });
        for r in &rounds {
            // Wins are no longer re-answerable: forget which answer they came from.
            on_tx!(self, |c| {
                sqlx::query("UPDATE wins SET answer_key = NULL WHERE round_id = $1")
                    .bind(r.id)
                    .execute(c)
                    .await?
                    .rows_affected()
            });
        }
        Ok(rounds)
    }

    /// Anonymous rounds: after close nothing may tie an answer to a person (docs/anonymity.md,
    /// "The seal"). Set-based, so 10,000 answers seal in one pass:
    /// * responses are re-inserted in random order with no delivery and the round's opening
    ///   time, and the linked originals deleted (`secure_delete` on SQLite zeroes them);
    ///   a role is kept only when every role group that answered reaches `k` (so no group is
    ///   below `k`, nor its complement), else every role becomes `folded`;
    /// * who answered becomes counts on the round; deliveries lose answered/expired, answer
    ///   and reminder times and their answer revision (reminders only went to non-responders);
    /// * wins of the round lose their time (the round's opening time instead);
    /// * outbox: answer updates and reminders of the round are deleted whatever their status;
    ///   what was sent keeps its status but loses its payload and Slack's reply.
    pub async fn seal_round(
        &mut self,
        round_id: RoundId,
        k: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<SealReport> {
        if let super::TxInner::Sqlite(t) = &mut self.inner {
            sqlx::query("PRAGMA secure_delete = ON")
                .execute(t.conn().await?)
                .await?;
        }
        let opened_at: i64 = on_tx!(self, |c| {
            sqlx::query_scalar("SELECT opened_at FROM rounds WHERE id = $1")
                .bind(round_id)
                .fetch_one(c)
                .await?
        });
        let (asked, answered, fold) = self.seal_counts(round_id, k).await?;
        let answers = self.unlink_responses(round_id, fold, opened_at).await?;
        self.unlink_deliveries(round_id).await?;
        self.unlink_wins_and_outbox(round_id, opened_at).await?;
        let report = SealReport {
            answers,
            asked,
            answered,
            roles_folded: fold,
        };
        self.record_seal(round_id, report, now).await?;
        Ok(report)
    }

    /// Who was asked and who answered, as counts, and whether any role group that answered
    /// is below `k` (then every role folds).
    async fn seal_counts(&mut self, round_id: RoundId, k: i64) -> StoreResult<(i64, i64, bool)> {
        let by_role: Vec<(String, i64)> = on_tx!(self, |c| {
            sqlx::query_as(
                "SELECT role, COUNT(DISTINCT delivery_id) FROM responses
                 WHERE round_id = $1 AND delivery_id IS NOT NULL GROUP BY role",
            )
            .bind(round_id)
            .fetch_all(c)
            .await?
        });
        let answered: i64 = by_role.iter().map(|(_, n)| n).sum();
        let fold = by_role.iter().any(|(_, n)| *n < k);
        let asked: i64 = on_tx!(self, |c| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM deliveries WHERE round_id = $1 AND sent_at IS NOT NULL",
            )
            .bind(round_id)
            .fetch_one(c)
            .await?
        });
        Ok((asked, answered, fold))
    }

    /// Re-inserts the round's responses in random order with no delivery and the round's
    /// opening time (roles folded if `fold`), then deletes the linked originals.
    async fn unlink_responses(
        &mut self,
        round_id: RoundId,
        fold: bool,
        opened_at: i64,
    ) -> StoreResult<u64> {
        let answers = on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO responses (round_id, delivery_id, metric_key, role, value_number, value_text,
                    allow_reply, reply_handle, created_at, updated_at)
                 SELECT round_id, NULL, metric_key, CASE WHEN $2 THEN $3 ELSE role END, value_number,
                    value_text, allow_reply, reply_handle, $4, $4
                 FROM responses WHERE round_id = $1 AND delivery_id IS NOT NULL
                 ORDER BY random()",
            )
            .bind(round_id)
            .bind(fold)
            .bind(FOLDED_ROLE)
            .bind(opened_at)
            .execute(c)
            .await?
            .rows_affected()
        });
        self.run_for_round(
            "DELETE FROM responses WHERE round_id = $1 AND delivery_id IS NOT NULL",
            round_id,
        )
        .await?;
        Ok(answers)
    }

    /// Deliveries forget who answered: answered/expired become `closed`, and no delivery
    /// keeps an answer or reminder time or an answer revision.
    async fn unlink_deliveries(&mut self, round_id: RoundId) -> StoreResult<()> {
        self.run_for_round(
            "UPDATE deliveries SET state = 'closed', answered_at = NULL, reminded_at = NULL,
                answer_revision = 0
             WHERE round_id = $1 AND state IN ('answered', 'expired')",
            round_id,
        )
        .await?;
        // Deliveries of other states (failed, skipped) never had an answer; their times go too.
        self.run_for_round(
            "UPDATE deliveries SET answered_at = NULL, reminded_at = NULL, answer_revision = 0
             WHERE round_id = $1",
            round_id,
        )
        .await
    }

    /// Wins lose their time; the outbox loses the round's answer updates and reminders, and
    /// what was sent loses its payload and Slack's reply.
    async fn unlink_wins_and_outbox(
        &mut self,
        round_id: RoundId,
        opened_at: i64,
    ) -> StoreResult<()> {
        on_tx!(self, |c| {
            sqlx::query("UPDATE wins SET created_at = $2, answer_key = NULL WHERE round_id = $1")
                .bind(round_id)
                .bind(opened_at)
                .execute(c)
                .await?
                .rows_affected()
        });
        on_tx!(self, |c| {
            sqlx::query(
                "DELETE FROM outbox
                 WHERE kind IN ($2, $3)
                   AND delivery_id IN (SELECT id FROM deliveries WHERE round_id = $1)",
            )
            .bind(round_id)
            .bind(OutboxKind::AnswerUpdate.as_str())
            .bind(OutboxKind::Reminder.as_str())
            .execute(c)
            .await?
            .rows_affected()
        });
        self.run_for_round(
            "UPDATE outbox SET payload = '{}', result = NULL
             WHERE status <> 'pending' AND delivery_id IN (SELECT id FROM deliveries WHERE round_id = $1)",
            round_id,
        )
        .await
    }

    /// The round keeps the counts and its seal time; the audit log keeps counts only.
    async fn record_seal(
        &mut self,
        round_id: RoundId,
        r: SealReport,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        on_tx!(self, |c| {
            sqlx::query(
                "UPDATE rounds SET sealed_at = $1, asked_count = $2, answered_count = $3 WHERE id = $4",
            )
            .bind(to_ms(now))
            .bind(r.asked)
            .bind(r.answered)
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
            &json!({ "answers": r.answers, "asked": r.asked, "answered": r.answered,
                     "roles_folded": r.roles_folded }),
        )
        .await
    }

    /// Runs one statement whose only parameter is the round id.
    async fn run_for_round(&mut self, sql: &'static str, round_id: RoundId) -> StoreResult<()> {
        on_tx!(self, |c| {
            sqlx::query(sql)
                .bind(round_id)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(())
    }
}

const OPEN_ROUND: &str =
    "SELECT id, COALESCE(number, 0) AS number, opened_at, closes_at FROM rounds
     WHERE program_id = $1 AND survey_id = $2 AND state = 'open'
       AND closes_at > $3 AND EXISTS (SELECT 1 FROM deliveries d WHERE d.round_id = rounds.id)
     ORDER BY opened_at DESC LIMIT 1";

impl Store {
    /// SQLite, after a seal committed: copies the WAL into the database file and truncates
    /// it, so pages from before the seal do not linger in the `-wal` file (the database file
    /// itself has no stale copies: every connection runs with `secure_delete`). Outside any
    /// transaction. PostgreSQL keeps dead tuples until VACUUM and its WAL per its own
    /// settings; the README says what an operator must do.
    pub async fn checkpoint_after_seal(&self) -> StoreResult<()> {
        if !self.truncate_wal().await? {
            tracing::warn!("the WAL could not be truncated after a seal (readers active); the next seal retries");
        }
        Ok(())
    }
}

impl StoreTx {
    /// These deliveries, read in this transaction with one query (the close step renders a
    /// closed DM for each of a batch).
    pub async fn deliveries(&mut self, ids: &[DeliveryId]) -> StoreResult<Vec<DeliveryRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "{DELIVERY_SELECT} WHERE d.id IN ({}) ORDER BY d.id",
            placeholders.join(", ")
        );
        Ok(on_tx!(self, |c| {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
            for id in ids {
                q = q.bind(*id);
            }
            q.fetch_all(c).await?
        }))
    }
}

impl Store {
    /// A delivery and the answers stored for it, read in one statement (one consistent
    /// snapshot, one trip): what a click needs to tell whether it changes anything.
    /// The answers travel as JSON (a number keeps 15 significant digits on SQLite), which is
    /// enough to compare a click's value and to render the DM; nothing is stored from it.
    pub async fn delivery_with_answers(&self, id: DeliveryId) -> StoreResult<DeliveryRow> {
        use sqlx::{FromRow, Row};
        const SQLITE: &str = "(SELECT json_group_array(json_array(metric_key, value_number, \
             value_text)) FROM responses WHERE delivery_id = d.id)";
        const POSTGRES: &str = "(SELECT COALESCE(json_agg(json_build_array(metric_key, \
             value_number, value_text)), '[]')::text FROM responses WHERE delivery_id = d.id)";
        static SQL: std::sync::LazyLock<[String; 2]> = std::sync::LazyLock::new(|| {
            [SQLITE, POSTGRES].map(|answers| {
                DELIVERY_SELECT.replacen(
                    "\n     FROM deliveries d",
                    &format!(", {answers} AS answers_json\n     FROM deliveries d"),
                    1,
                ) + " WHERE d.id = $1"
            })
        });
        let sql = match self.backend() {
            super::Backend::Sqlite => SQL[0].as_str(),
            super::Backend::Postgres => SQL[1].as_str(),
        };
        let (mut d, answers) = on_reader!(self, |c| {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_one(c)
                .await?;
            (
                DeliveryRow::from_row(&row)?,
                row.try_get::<String, _>("answers_json")?,
            )
        });
        let rows: Vec<(String, Option<f64>, Option<String>)> = serde_json::from_str(&answers)
            .map_err(|e| {
                super::StoreError::Corrupt(format!("answers of delivery {}: {e}", id.0))
            })?;
        d.answers_read = Some(AnswersRead(
            rows.into_iter()
                .map(|(metric_key, value_number, value_text)| ResponseRow {
                    metric_key,
                    value_number,
                    value_text,
                })
                .collect(),
        ));
        Ok(d)
    }

    /// [`Store::delivery_with_answers`] for a click: on SQLite served from the
    /// [`super::delivery_cache`] when it holds the delivery open at `now`, else read and
    /// remembered.
    pub async fn delivery_for_click(
        &self,
        id: DeliveryId,
        now: DateTime<Utc>,
    ) -> StoreResult<DeliveryRow> {
        let Some(cache) = &self.deliveries else {
            return self.delivery_with_answers(id).await;
        };
        if let Some(d) = cache.get(id.0).filter(|d| d.is_open(now)) {
            metrics::counter!("delivery_cache_reads_total", "result" => "hit").increment(1);
            return Ok(d);
        }
        metrics::counter!("delivery_cache_reads_total", "result" => "miss").increment(1);
        let epoch = cache.epoch();
        let d = self.delivery_with_answers(id).await?;
        cache.put(d.clone(), epoch);
        Ok(d)
    }

    /// Whether clicks' deliveries are remembered in this process (SQLite).
    pub fn remembers_deliveries(&self) -> bool {
        self.deliveries.is_some()
    }

    /// Where the delivery cache stands before an answer is written (`None`: no cache).
    pub fn deliveries_epoch(&self) -> Option<u64> {
        self.deliveries.as_ref().map(|c| c.epoch())
    }

    /// The row of a delivery as the answer this process just stored left it, for the next
    /// click ([`super::delivery_cache::DeliveryCache::put`]; `epoch` from
    /// [`Store::deliveries_epoch`] before the write).
    pub fn remember_answered(&self, row: DeliveryRow, epoch: Option<u64>) {
        if let (Some(cache), Some(epoch)) = (&self.deliveries, epoch) {
            cache.put(row, epoch);
        }
    }

    pub async fn delivery(&self, id: DeliveryId) -> StoreResult<DeliveryRow> {
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
        after_id: DeliveryId,
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

    /// Sent, unanswered, not yet reminded, reminder time reached, window open. The reminder
    /// time counts from when the DM was actually sent: a DM sent late (after downtime, a
    /// hold, a wait for working hours) gets its reminder as long after the send as the survey
    /// says (`remind_at - scheduled_at`), never seconds later.
    pub async fn deliveries_to_remind(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<DeliveryRow>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{DELIVERY_SELECT} WHERE d.state = 'sent' AND d.reminded_at IS NULL
                   AND d.remind_at IS NOT NULL AND d.remind_at <= $1 AND d.closes_at > $1
                   AND d.sent_at IS NOT NULL AND d.sent_at + (d.remind_at - d.scheduled_at) <= $1
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
        program_id: &ProgramId,
        survey_id: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, MemberId)>> {
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
        slack_user_id: &UserId,
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

    pub async fn answered_count(&self, round_id: RoundId) -> StoreResult<i64> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM deliveries WHERE round_id = $1 AND state = 'answered'",
            )
            .bind(round_id)
            .fetch_one(p)
            .await?
        }))
    }

    pub async fn responses_of_delivery(
        &self,
        delivery_id: DeliveryId,
    ) -> StoreResult<Vec<ResponseRow>> {
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
        program_id: &ProgramId,
        survey_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<OpenRound>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(OPEN_ROUND)
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
    pub state: DeliveryState,
    pub reason: Option<String>,
    #[sqlx(try_from = "Millis")]
    pub scheduled_at: DateTime<Utc>,
}

impl Store {
    /// Failed and skipped deliveries of a program, newest first.
    pub async fn failed_deliveries(
        &self,
        program_id: &ProgramId,
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
