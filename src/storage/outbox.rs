//! The durable outbox: rows in, leased by workers, marked sent/failed/retried.
//!
//! Claiming is safe with several workers and several processes: PostgreSQL uses
//! `FOR UPDATE SKIP LOCKED`; SQLite runs one `UPDATE … WHERE id IN (SELECT … LIMIT n)
//! RETURNING` statement, which is atomic because SQLite has one writer at a time. A row whose
//! lease expired (its process died mid-send) is claimed again.
//!
//! A lease protects the call, not only the claim: each claim writes a token of its own into
//! `leased_by`, and right before each Slack call the worker extends the lease with a
//! conditional update that succeeds only while that token still holds the row
//! ([`Store::begin_outbox_attempt`]). The same update sets `attempt_started_at`; the write that
//! records the outcome clears it. A row claimed with the mark still set had an unknown outcome.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::domain::ids::DeliveryId;
use crate::domain::state::DeliveryState;

use super::group_commit::job;
use super::{
    on_pool, on_tx, to_ms, Millis, OptMillis, Pool, Store, StoreError, StoreResult, StoreTx,
};

/// The PostgreSQL channel a commit that queued outbox work notifies (every replica's workers
/// listen on it).
pub const NOTIFY_CHANNEL: &str = "pulseloop_outbox";

/// What a successful or failed send changes besides the outbox row itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxSubject {
    /// The first DM of a delivery: on success the delivery becomes `sent`, on failure `failed`.
    Delivery(DeliveryId),
}

impl OutboxSubject {
    fn parts(self) -> (&'static str, i64) {
        match self {
            OutboxSubject::Delivery(id) => ("delivery", id.0),
        }
    }

    /// The delivery named by a row's stored `subject_kind` and `subject_id`, if any.
    fn delivery(kind: Option<&str>, id: Option<DeliveryId>) -> Option<DeliveryId> {
        match (kind, id) {
            (Some("delivery"), Some(id)) => Some(id),
            _ => None,
        }
    }
}

/// What an outbox row is, stored as text in `outbox.kind`: storage matches rows by their
/// kind, never by the text of their dedupe key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxKind {
    /// A pulse DM (`chat.postMessage`).
    Pulse,
    /// The reminder, a reply in the DM's thread.
    Reminder,
    /// The DM redrawn after an answer (`chat.update`).
    AnswerUpdate,
    /// The DM redrawn when its window closed (`chat.update`).
    ClosedUpdate,
    /// The ephemeral note for a click after the close.
    LateNotice,
    /// A write about no pulse (operator tools, tests).
    Other,
}

impl OutboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::Pulse => "pulse",
            OutboxKind::Reminder => "reminder",
            OutboxKind::AnswerUpdate => "answer_update",
            OutboxKind::ClosedUpdate => "closed_update",
            OutboxKind::LateNotice => "late_notice",
            OutboxKind::Other => "other",
        }
    }

    fn parse(s: &str) -> StoreResult<Self> {
        Ok(match s {
            "pulse" => Self::Pulse,
            "reminder" => Self::Reminder,
            "answer_update" => Self::AnswerUpdate,
            "closed_update" => Self::ClosedUpdate,
            "late_notice" => Self::LateNotice,
            "other" => Self::Other,
            other => return Err(StoreError::Corrupt(format!("outbox kind {other}"))),
        })
    }
}

/// A Slack write to perform.
#[derive(Debug, Clone)]
pub struct NewOutboxMessage {
    /// Idempotency: a second row with the same key is ignored. Keys of pulse writes are made
    /// by `slack::protocol::OutboxKey`; they never hold an answer.
    pub dedupe_key: String,
    pub kind: OutboxKind,
    pub method: String,
    pub payload: serde_json::Value,
    /// Channel (or user id for DMs) the write lands in, for per-channel rate limits.
    pub channel_key: Option<String>,
    /// Set on a post whose location (`channel`, `ts`) later rows refer to.
    pub message_key: Option<String>,
    /// The posted message this row updates (chat.update) or replies to in a thread.
    pub target_key: Option<String>,
    pub subject: Option<OutboxSubject>,
    /// The pulse delivery this write belongs to: sealing an anonymous round blanks them.
    pub delivery_id: Option<DeliveryId>,
}

impl NewOutboxMessage {
    /// A write of kind [`OutboxKind::Other`]; pulse writes come from `OutboxKey::message`.
    pub fn new(dedupe_key: impl Into<String>, method: &str, payload: serde_json::Value) -> Self {
        Self {
            dedupe_key: dedupe_key.into(),
            kind: OutboxKind::Other,
            method: method.to_string(),
            payload,
            channel_key: None,
            message_key: None,
            target_key: None,
            subject: None,
            delivery_id: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    Pending,
    InFlight,
    Sent,
    Failed,
    /// Must no longer go out (the reason is in `last_error`).
    Cancelled,
}

impl OutboxStatus {
    fn parse(s: &str) -> StoreResult<Self> {
        Ok(match s {
            "pending" => Self::Pending,
            "in_flight" => Self::InFlight,
            "sent" => Self::Sent,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            other => return Err(StoreError::Corrupt(format!("outbox status {other}"))),
        })
    }
}

/// A stored outbox row.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub dedupe_key: String,
    pub kind: OutboxKind,
    pub method: String,
    pub payload: serde_json::Value,
    pub channel_key: Option<String>,
    pub message_key: Option<String>,
    pub target_key: Option<String>,
    pub status: OutboxStatus,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub result: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// Set while a call is (or was, if never cleared) under way: the outcome is unknown.
    pub attempt_started_at: Option<DateTime<Utc>>,
    pub first_attempt_at: Option<DateTime<Utc>>,
    /// The workspace whose token sends it; '' for the default installation.
    pub team_id: String,
}

impl OutboxRow {
    /// A previous call may have reached Slack without its outcome being recorded.
    pub fn outcome_unknown(&self) -> bool {
        self.attempt_started_at.is_some()
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    dedupe_key: String,
    kind: String,
    method: String,
    payload: String,
    channel_key: Option<String>,
    message_key: Option<String>,
    target_key: Option<String>,
    status: String,
    attempts: i64,
    #[sqlx(try_from = "Millis")]
    next_attempt_at: DateTime<Utc>,
    last_error: Option<String>,
    result: Option<String>,
    #[sqlx(try_from = "Millis")]
    created_at: DateTime<Utc>,
    #[sqlx(try_from = "OptMillis")]
    sent_at: Option<DateTime<Utc>>,
    #[sqlx(try_from = "OptMillis")]
    attempt_started_at: Option<DateTime<Utc>>,
    #[sqlx(try_from = "OptMillis")]
    first_attempt_at: Option<DateTime<Utc>>,
    team_id: String,
}

const COLUMNS: &str =
    "id, dedupe_key, kind, method, payload, channel_key, message_key, target_key, \
    status, attempts, next_attempt_at, last_error, result, created_at, sent_at, \
    attempt_started_at, first_attempt_at, team_id";

impl TryFrom<Row> for OutboxRow {
    type Error = StoreError;
    fn try_from(r: Row) -> StoreResult<Self> {
        Ok(OutboxRow {
            id: r.id,
            dedupe_key: r.dedupe_key,
            kind: OutboxKind::parse(&r.kind)?,
            method: r.method,
            payload: serde_json::from_str(&r.payload)
                .map_err(|e| StoreError::Corrupt(format!("outbox payload: {e}")))?,
            channel_key: r.channel_key,
            message_key: r.message_key,
            target_key: r.target_key,
            status: OutboxStatus::parse(&r.status)?,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            result: r.result.and_then(|s| serde_json::from_str(&s).ok()),
            created_at: r.created_at,
            sent_at: r.sent_at,
            attempt_started_at: r.attempt_started_at,
            first_attempt_at: r.first_attempt_at,
            team_id: r.team_id,
        })
    }
}

fn rows(rows: Vec<Row>) -> StoreResult<Vec<OutboxRow>> {
    rows.into_iter().map(OutboxRow::try_from).collect()
}

/// Outbox depth for /metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutboxStats {
    pub pending: i64,
    pub in_flight: i64,
    pub failed: i64,
    pub oldest_pending_age_seconds: f64,
}

impl StoreTx {
    /// Adds a row unless one with the same dedupe key exists; `true` when added.
    pub async fn enqueue(
        &mut self,
        msg: &NewOutboxMessage,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (kind, id) = msg.subject.map(|s| s.parts()).unzip();
        let payload = msg.payload.to_string();
        // The workspace the work writing this row is for (see `outbox_team!`).
        let team = super::installations::current_team();
        let n = on_tx!(self, |c| {
            sqlx::query(concat!(
                "INSERT INTO outbox (dedupe_key, method, payload, channel_key, message_key,
                    target_key, subject_kind, subject_id, delivery_id, kind, status, attempts,
                    next_attempt_at, created_at, team_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $10, $11, 'pending', 0, $9, $9, ",
                super::answer_write::outbox_team!("$12", "$10"),
                ") ON CONFLICT (dedupe_key) DO NOTHING",
            ))
            .bind(&msg.dedupe_key)
            .bind(&msg.method)
            .bind(&payload)
            .bind(&msg.channel_key)
            .bind(&msg.message_key)
            .bind(&msg.target_key)
            .bind(kind)
            .bind(id)
            .bind(to_ms(now))
            .bind(msg.delivery_id)
            .bind(msg.kind.as_str())
            .bind(&team)
            .execute(c)
            .await?
            .rows_affected()
        });
        if n == 1 {
            self.enqueued = true;
        }
        Ok(n == 1)
    }
}

impl StoreTx {
    /// Cancels the pulse DMs and reminders (`chat.postMessage`) still waiting in the outbox
    /// for the deliveries matching `which`, a fixed condition on `deliveries` whose one
    /// parameter is `$1` (bound to `key`), keeping `reason`. Rows already in flight are left
    /// to finish: their call may have reached Slack. Returns the deliveries whose own DM was
    /// cancelled (never posted).
    pub(super) async fn cancel_queued_posts(
        &mut self,
        which: &'static str,
        key: i64,
        reason: &str,
    ) -> StoreResult<Vec<DeliveryId>> {
        let sql = format!(
            "UPDATE outbox SET status = 'cancelled', last_error = $2, lease_until = NULL, leased_by = NULL
             WHERE status = 'pending' AND method = 'chat.postMessage'
               AND delivery_id IN (SELECT id FROM deliveries WHERE {which})
             RETURNING subject_kind, subject_id"
        );
        let cancelled: Vec<(Option<String>, Option<DeliveryId>)> = on_tx!(self, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(key)
                .bind(reason)
                .fetch_all(c)
                .await?
        });
        Ok(cancelled
            .into_iter()
            .filter_map(|(kind, id)| OutboxSubject::delivery(kind.as_deref(), id))
            .collect())
    }
}

impl Store {
    /// Enqueues one message in its own (grouped) transaction.
    pub async fn enqueue(&self, msg: &NewOutboxMessage, now: DateTime<Utc>) -> StoreResult<bool> {
        let msg = msg.clone();
        self.write(job(move |tx| {
            let msg = msg.clone();
            Box::pin(async move { tx.enqueue(&msg, now).await })
        }))
        .await
    }

    /// Leases up to `limit` due rows to the claim `token` until `now + lease`. Each claim should
    /// use a token of its own (see [`Store::begin_outbox_attempt`]).
    pub async fn claim_outbox(
        &self,
        token: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
    ) -> StoreResult<Vec<OutboxRow>> {
        self.claim_outbox_with_budget(token, now, lease, limit, &[])
            .await
    }

    /// Like [`Store::claim_outbox`], but only rows that can be sent now: none of a method in
    /// `blocked_methods` (this process's limiter has no token for it), and none whose shared
    /// budget ([`super::rate_budgets`]) for its method, the workspace's posts or its channel
    /// is not ready. Workers do not claim rows only to give them back.
    pub async fn claim_outbox_with_budget(
        &self,
        token: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
        blocked_methods: &[String],
    ) -> StoreResult<Vec<OutboxRow>> {
        let now_ms = to_ms(now);
        let until = to_ms(now + lease);
        // A workspace's budgets are its own: keys of an installation start `t:<team>:`.
        let team =
            "(CASE WHEN outbox.team_id = '' THEN '' ELSE 't:' || outbox.team_id || ':' END) || ";
        let mut filter = format!(
            " AND NOT EXISTS (SELECT 1 FROM rate_budgets b WHERE b.ready_ms > $1
                AND (b.budget_key = {team}'m:' || outbox.method
                     OR (outbox.method = 'chat.postMessage'
                         AND (b.budget_key = {team}'posts'
                              OR b.budget_key = {team}'ch:' || outbox.channel_key))))",
        );
        if !blocked_methods.is_empty() {
            let list = (0..blocked_methods.len())
                .map(|i| format!("${}", i + 5))
                .collect::<Vec<_>>()
                .join(", ");
            filter.push_str(&format!(" AND outbox.method NOT IN ({list})"));
        }
        let token = token.to_string();
        let blocked = blocked_methods.to_vec();
        let backend = self.backend();
        let claimed: Vec<Row> = self
            .write(job(move |tx| {
                let (token, blocked, filter) = (token.clone(), blocked.clone(), filter.clone());
                Box::pin(async move {
                    // Two walks, each in the order of the `outbox_due` index and stopping at
                    // the limit: due pending rows, and in-flight rows whose lease ran out (a
                    // handful); then the first of both. One `OR` made either database collect,
                    // check and sort every due row first: under a backlog each claim took
                    // milliseconds, inside the writer every answer waits for.
                    let walk = |due: &str| {
                        format!(
                            "SELECT id, next_attempt_at FROM outbox WHERE {due}{filter}
                             ORDER BY next_attempt_at, id LIMIT $2"
                        )
                    };
                    let pending = walk("status = 'pending' AND next_attempt_at <= $1");
                    let lapsed = walk("status = 'in_flight' AND lease_until <= $1");
                    let sql = match backend {
                        // PostgreSQL skips rows another writer has locked; `FOR UPDATE` is
                        // not allowed in a `UNION`, hence the CTEs.
                        super::Backend::Postgres => format!(
                            "WITH pending AS ({pending} FOR UPDATE SKIP LOCKED),
                             lapsed AS ({lapsed} FOR UPDATE SKIP LOCKED),
                             due AS (
                                SELECT id FROM (SELECT * FROM pending UNION ALL SELECT * FROM lapsed) c
                                ORDER BY next_attempt_at, id LIMIT $2)
                             UPDATE outbox SET status = 'in_flight', lease_until = $3, leased_by = $4
                             FROM due WHERE outbox.id = due.id
                             RETURNING {}",
                            COLUMNS
                                .split(", ")
                                .map(|c| format!("outbox.{}", c.trim()))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        super::Backend::Sqlite => format!(
                            "UPDATE outbox SET status = 'in_flight', lease_until = $3, leased_by = $4
                             WHERE id IN (
                                SELECT id FROM (
                                  SELECT * FROM ({pending})
                                  UNION ALL
                                  SELECT * FROM ({lapsed}))
                                ORDER BY next_attempt_at, id LIMIT $2)
                             RETURNING {COLUMNS}"
                        ),
                    };
                    let rows: Vec<Row> = on_tx!(tx, |c| {
                        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                            .bind(now_ms)
                            .bind(limit)
                            .bind(until)
                            .bind(&token);
                        for m in &blocked {
                            q = q.bind(m);
                        }
                        q.fetch_all(c).await?
                    });
                    Ok(rows)
                })
            }))
            .await?;
        let mut claimed = rows(claimed)?;
        claimed.sort_by_key(|r| (r.next_attempt_at, r.id));
        Ok(claimed)
    }

    /// When the outbox next has something to do: the earliest pending row's time or in-flight
    /// row's lease end (`None`: nothing queued). Idle workers sleep until then.
    pub async fn next_outbox_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let next: Option<i64> = on_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT MIN(t) FROM (
                    SELECT MIN(next_attempt_at) AS t FROM outbox WHERE status = 'pending'
                    UNION ALL
                    SELECT MIN(lease_until) AS t FROM outbox WHERE status = 'in_flight'
                 ) due",
            )
            .fetch_one(p)
            .await?
        });
        Ok(next.map(super::from_ms))
    }

    /// Woken when a transaction of this process that queued outbox work commits.
    pub fn outbox_wake(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.outbox_wake.clone()
    }

    /// On PostgreSQL, a listener for commits of any replica that queued outbox work.
    pub async fn outbox_listener(&self) -> StoreResult<Option<OutboxListener>> {
        match &self.pool {
            Pool::Postgres(p) => {
                let mut listener = sqlx::postgres::PgListener::connect_with(p).await?;
                listener.listen(NOTIFY_CHANNEL).await?;
                Ok(Some(OutboxListener(listener)))
            }
            Pool::Sqlite(..) => Ok(None),
        }
    }

    /// Right before a Slack call that may change something: extends the lease to
    /// `now + lease` and marks the attempt as started, only while `token` still holds the row.
    /// `false` means the lease was lost (it expired and another worker claimed the row, or
    /// the row was cancelled): the caller must not make the call.
    pub async fn begin_outbox_attempt(
        &self,
        id: i64,
        token: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> StoreResult<bool> {
        let token = token.to_string();
        let until = to_ms(now + lease);
        self.write(job(move |tx| {
            let token = token.clone();
            Box::pin(async move {
                let n = on_tx!(tx, |c| {
                    sqlx::query(
                        "UPDATE outbox SET lease_until = $1, attempt_started_at = $2,
                            first_attempt_at = COALESCE(first_attempt_at, $2)
                         WHERE id = $3 AND leased_by = $4 AND status = 'in_flight'",
                    )
                    .bind(until)
                    .bind(to_ms(now))
                    .bind(id)
                    .bind(&token)
                    .execute(c)
                    .await?
                    .rows_affected()
                });
                Ok(n == 1)
            })
        }))
        .await
    }

    /// Extends the lease to `now + lease` while `token` still holds the row (before a
    /// read-only call, or while retrying a completion write); `false` when it was lost.
    pub async fn hold_outbox(
        &self,
        id: i64,
        token: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> StoreResult<bool> {
        let token = token.to_string();
        let until = to_ms(now + lease);
        self.write(job(move |tx| {
            let token = token.clone();
            Box::pin(async move {
                let n = on_tx!(tx, |c| {
                    sqlx::query(
                        "UPDATE outbox SET lease_until = $1
                         WHERE id = $2 AND leased_by = $3 AND status = 'in_flight'",
                    )
                    .bind(until)
                    .bind(id)
                    .bind(&token)
                    .execute(c)
                    .await?
                    .rows_affected()
                });
                Ok(n == 1)
            })
        }))
        .await
    }

    /// Marks a row sent, remembers where its message landed, clears the attempt mark and
    /// applies its subject. Slack accepted the call, so this does not require the lease: a row
    /// taken over by another worker meanwhile is still recorded as what it is (sent), and that
    /// worker's next conditional update fails instead of posting again. Returns `false` when
    /// the row was already recorded (for instance by the worker that took it over).
    pub async fn complete_outbox(
        &self,
        id: i64,
        now: DateTime<Utc>,
        result: &serde_json::Value,
        location: Option<(&str, &str)>,
    ) -> StoreResult<bool> {
        let result_text = result.to_string();
        let location = location.map(|(c, t)| (c.to_string(), t.to_string()));
        self.write(job(move |tx| {
            let (result_text, location) = (result_text.clone(), location.clone());
            Box::pin(async move {
                let location = location.as_ref().map(|(c, t)| (c.as_str(), t.as_str()));
                complete_in(tx, id, now, &result_text, location).await
            })
        }))
        .await
    }
}

impl Store {
    /// [`Store::complete_outbox`] for many rows with the same result and no location (the
    /// DM updates a batch's response_urls took), in one statement: one write for the batch.
    pub async fn complete_outbox_many(
        &self,
        ids: &[i64],
        now: DateTime<Utc>,
        result: &serde_json::Value,
    ) -> StoreResult<()> {
        let result_text = result.to_string();
        let ids = ids.to_vec();
        self.write(job(move |tx| {
            let (result_text, ids) = (result_text.clone(), ids.clone());
            Box::pin(async move { complete_many_in(tx, &ids, now, &result_text).await })
        }))
        .await
    }
}

/// What marking a row sent sets (`$1` the time, `$2` the result), shared by the one-row and
/// the many-row completion.
macro_rules! mark_sent {
    () => {
        "UPDATE outbox SET status = 'sent', sent_at = $1, result = $2, lease_until = NULL, \
         last_error = NULL, attempt_started_at = NULL"
    };
}

/// The writes of [`Store::complete_outbox_many`], in its grouped transaction.
async fn complete_many_in(
    tx: &mut StoreTx,
    ids: &[i64],
    now: DateTime<Utc>,
    result_text: &str,
) -> StoreResult<()> {
    const SET: &str = mark_sent!();
    // The ids travel as one JSON array on both backends. PostgreSQL's generic plan guesses
    // a hundred ids out of the array and read every unsent row through the index on `status`
    // instead (9 ms for eight rows under a backlog): the ids as an array and `status || ''`
    // leave it the primary key.
    let sql = match tx.backend() {
        super::Backend::Sqlite => format!(
            "{SET} WHERE id IN (SELECT value FROM json_each($3))
             AND status IN ('in_flight', 'pending') RETURNING subject_kind, subject_id"
        ),
        super::Backend::Postgres => format!(
            "{SET} WHERE id = ANY (ARRAY(SELECT jsonb_array_elements_text($3::jsonb)::bigint))
             AND status || '' IN ('in_flight', 'pending') RETURNING subject_kind, subject_id"
        ),
    };
    let ids = serde_json::to_string(ids).expect("ids serialize");
    let subjects: Vec<(Option<String>, Option<DeliveryId>)> = on_tx!(tx, |c| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(to_ms(now))
            .bind(result_text)
            .bind(&ids)
            .fetch_all(c)
            .await?
    });
    for (kind, subject_id) in subjects {
        if let Some(delivery_id) = OutboxSubject::delivery(kind.as_deref(), subject_id) {
            mark_delivery_sent(tx, delivery_id, now, None).await?;
        }
    }
    Ok(())
}

/// A delivery whose DM Slack accepted is `sent` (if it was still `queued`).
async fn mark_delivery_sent(
    tx: &mut StoreTx,
    delivery_id: DeliveryId,
    now: DateTime<Utc>,
    location: Option<(&str, &str)>,
) -> StoreResult<()> {
    let (channel, ts) = location.unzip();
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE deliveries SET state = 'sent', sent_at = $1, channel_id = $2, message_ts = $3
             WHERE id = $4 AND state = 'queued'",
        )
        .bind(to_ms(now))
        .bind(channel)
        .bind(ts)
        .bind(delivery_id)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// The writes of [`Store::complete_outbox`], in its grouped transaction.
async fn complete_in(
    tx: &mut StoreTx,
    id: i64,
    now: DateTime<Utc>,
    result_text: &str,
    location: Option<(&str, &str)>,
) -> StoreResult<bool> {
    {
        let subject: Option<(Option<String>, Option<String>, Option<DeliveryId>)> =
            on_tx!(tx, |c| {
                sqlx::query_as(concat!(
                    mark_sent!(),
                    " WHERE id = $3 AND status IN ('in_flight', 'pending')
                     RETURNING message_key, subject_kind, subject_id"
                ))
                .bind(to_ms(now))
                .bind(result_text)
                .bind(id)
                .fetch_optional(c)
                .await?
            });
        let Some((message_key, kind, subject_id)) = subject else {
            return Ok(false);
        };
        if let (Some(key), Some((channel, ts))) = (&message_key, location) {
            on_tx!(tx, |c| {
                sqlx::query(
                    "INSERT INTO slack_messages (message_key, channel_id, ts, posted_at)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (message_key) DO UPDATE SET channel_id = excluded.channel_id,
                        ts = excluded.ts, posted_at = excluded.posted_at",
                )
                .bind(key)
                .bind(channel)
                .bind(ts)
                .bind(to_ms(now))
                .execute(c)
                .await?
                .rows_affected()
            });
        }
        if let Some(delivery_id) = OutboxSubject::delivery(kind.as_deref(), subject_id) {
            mark_delivery_sent(tx, delivery_id, now, location).await?;
        }
        Ok(true)
    }
}

impl Store {
    /// Fails a leased row for good, keeping the reason; a delivery subject becomes `failed`.
    pub async fn fail_outbox(
        &self,
        id: i64,
        token: &str,
        now: DateTime<Utc>,
        reason: &str,
        attempted: bool,
    ) -> StoreResult<bool> {
        let token = token.to_string();
        let reason = reason.to_string();
        self.write(job(move |tx| {
            let (token, reason) = (token.clone(), reason.clone());
            Box::pin(async move { fail_in(tx, id, &token, now, &reason, attempted).await })
        }))
        .await
    }
}

/// The writes of [`Store::fail_outbox`], in its grouped transaction.
async fn fail_in(
    tx: &mut StoreTx,
    id: i64,
    token: &str,
    now: DateTime<Utc>,
    reason: &str,
    attempted: bool,
) -> StoreResult<bool> {
    {
        let subject: Option<(Option<String>, Option<DeliveryId>)> = on_tx!(tx, |c| {
            sqlx::query_as(
                "UPDATE outbox SET status = 'failed', last_error = $1, lease_until = NULL,
                    attempts = attempts + $2, sent_at = NULL, next_attempt_at = $3,
                    attempt_started_at = NULL
                 WHERE id = $4 AND leased_by = $5 AND status = 'in_flight'
                 RETURNING subject_kind, subject_id",
            )
            .bind(reason)
            .bind(i64::from(attempted))
            .bind(to_ms(now))
            .bind(id)
            .bind(token)
            .fetch_optional(c)
            .await?
        });
        let Some((kind, subject_id)) = subject else {
            return Ok(false);
        };
        if let Some(delivery_id) = OutboxSubject::delivery(kind.as_deref(), subject_id) {
            let which = "id = $4 AND state IN ('queued', 'scheduled')";
            tx.mark_unsent(which, delivery_id.0, DeliveryState::Failed, reason, now)
                .await?;
        }
        Ok(true)
    }
}

impl Store {
    /// Puts a leased row back to pending until `next_attempt_at`. `attempted` counts the try
    /// (a 5xx or timeout does; a 429 or waiting for another message does not).
    /// `known_not_sent` clears the attempt mark: Slack answered, so this call did not post.
    /// Leave it `false` when the outcome is unknown (timeout, dropped connection) or when no
    /// call was made (the mark of an earlier unknown attempt must survive).
    pub async fn retry_outbox(
        &self,
        id: i64,
        token: &str,
        next_attempt_at: DateTime<Utc>,
        error: Option<&str>,
        attempted: bool,
        known_not_sent: bool,
    ) -> StoreResult<bool> {
        let token = token.to_string();
        let error = error.map(str::to_string);
        self.write(job(move |tx| {
            let (token, error) = (token.clone(), error.clone());
            Box::pin(async move {
                let n = on_tx!(tx, |c| {
                    sqlx::query(
                        "UPDATE outbox SET status = 'pending', lease_until = NULL, leased_by = NULL,
                            next_attempt_at = $1, attempts = attempts + $2,
                            last_error = COALESCE($3, last_error),
                            attempt_started_at = CASE WHEN $6 THEN NULL ELSE attempt_started_at END
                         WHERE id = $4 AND leased_by = $5 AND status = 'in_flight'",
                    )
                    .bind(to_ms(next_attempt_at))
                    .bind(i64::from(attempted))
                    .bind(&error)
                    .bind(id)
                    .bind(&token)
                    .bind(known_not_sent)
                    .execute(c)
                    .await?
                    .rows_affected()
                });
                Ok(n == 1)
            })
        }))
        .await
    }

    /// Where the message with this key was posted, if it has been.
    pub async fn message_location(&self, key: &str) -> StoreResult<Option<(String, String)>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as("SELECT channel_id, ts FROM slack_messages WHERE message_key = $1")
                .bind(key)
                .fetch_optional(p)
                .await?
        }))
    }

    /// True when the row that would post `key` failed for good or was cancelled (so followers
    /// can never run).
    pub async fn message_post_failed(&self, key: &str) -> StoreResult<bool> {
        let n: i64 = on_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM outbox WHERE message_key = $1 AND status IN ('failed', 'cancelled')",
            )
            .bind(key)
            .fetch_one(p)
            .await?
        });
        Ok(n > 0)
    }

    pub async fn outbox_stats(&self, now: DateTime<Utc>) -> StoreResult<OutboxStats> {
        let (pending, in_flight, failed, oldest): (i64, i64, i64, Option<i64>) =
            on_pool!(self, |p| {
                sqlx::query_as(
                    "SELECT
                        COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0),
                        COALESCE(SUM(CASE WHEN status = 'in_flight' THEN 1 ELSE 0 END), 0),
                        COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0),
                        MIN(CASE WHEN status IN ('pending', 'in_flight') THEN created_at END)
                     FROM outbox",
                )
                .fetch_one(p)
                .await?
            });
        Ok(OutboxStats {
            pending,
            in_flight,
            failed,
            oldest_pending_age_seconds: oldest
                .map(|ms| ((to_ms(now) - ms).max(0)) as f64 / 1000.0)
                .unwrap_or(0.0),
        })
    }

    pub async fn outbox_row(&self, dedupe_key: &str) -> StoreResult<Option<OutboxRow>> {
        let row: Option<Row> = on_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM outbox WHERE dedupe_key = $1"
            )))
            .bind(dedupe_key)
            .fetch_optional(p)
            .await?
        });
        row.map(OutboxRow::try_from).transpose()
    }
}

/// Notifications of queued outbox work from every replica (PostgreSQL `LISTEN`).
pub struct OutboxListener(sqlx::postgres::PgListener);

impl OutboxListener {
    /// Waits for the next notification (several pending ones count as one).
    pub async fn recv(&mut self) -> StoreResult<()> {
        self.0.recv().await?;
        while self.0.next_buffered().is_some() {}
        Ok(())
    }
}
