//! An answer in one statement (PostgreSQL): the replay claim, the "still open?" check, the
//! answer, the revision bump, dropping the DM's pending update and queueing the new one, all
//! in ONE data-modifying CTE, so an answer costs one round trip inside its grouped
//! transaction instead of seven.
//!
//! The DM update is rendered from every answer of the delivery, which a statement cannot do.
//! So the caller renders it beforehand from what it read (the delivery's answer revision and
//! its answers) plus the new values, and the statement applies only if the delivery's
//! revision is still the one read: every change of a delivery's answers bumps its revision in
//! the same transaction, so an unchanged revision means the rendered update is exact. When
//! the revision moved (another answer to the same delivery got in between) or the delivery
//! closed, the statement writes nothing but the signature claim and says so
//! ([`OneTrip::NotApplied`]): the caller goes on with the step-by-step writes in the same
//! transaction, which decide between "closed" and "stored".
//!
//! SQLite has no data-modifying CTEs. There the same writes are five statements sent as ONE
//! trip to the connection's thread ([`SQLITE_ONE_TRIP`]), ordered so that none depends on
//! another's outcome: each statement is a hop between the async task and sqlx's SQLite
//! worker thread, and those hops, not the statements, were half of an answer's CPU.
//!
//! Both backends give the DM update's outbox row the workspace [`StoreTx::enqueue`] would give
//! it ([`outbox_team!`]), so an answer in an OAuth-installed workspace is updated with that
//! workspace's token.

use chrono::{DateTime, Utc};

use super::group_commit::SignatureClaim;
use super::outbox::{NewOutboxMessage, OutboxSubject};
use super::{to_ms, StoreResult, StoreTx, TxInner};
use crate::domain::ids::{DeliveryId, RoundId};

/// One answer to write in one statement.
pub struct OneTripAnswer<'a> {
    pub delivery_id: DeliveryId,
    pub round_id: RoundId,
    pub role: &'a str,
    /// The delivery's answer revision the update was rendered from.
    pub expected_revision: i64,
    /// `(question key, number, text)`, for questions that take no reply (not comments).
    pub values: &'a [(String, Option<f64>, Option<String>)],
    /// The DM update to queue (keyed by revision `expected_revision + 1`), when the answer
    /// changes something; `None`: the answer is the same as stored (a double click).
    pub update: Option<&'a NewOutboxMessage>,
    /// The request's signature, when the answer claims it (the replay guard).
    pub claim: Option<&'a SignatureClaim>,
    pub now: DateTime<Utc>,
}

/// What the statement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneTrip {
    /// Stored (and the update queued, if there was one).
    Stored,
    /// The signature was claimed before: nothing written.
    Replay,
    /// The delivery closed or its revision moved (or, on SQLite, the answer changes nothing):
    /// nothing written but the claim (if any); the step-by-step writes decide.
    NotApplied,
}

/// The workspace an outbox row is sent for, as [`StoreTx::enqueue`] decides it: the workspace
/// of the work that writes the row when it is installed, else the workspace of the
/// delivery's program when that one is installed, else the default installation (`''`).
/// `$team` and `$delivery` are the statement's parameters for the two.
macro_rules! outbox_team {
    ($team:literal, $delivery:literal) => {
        concat!(
            "COALESCE((SELECT i.team_id FROM installations i WHERE i.team_id = ",
            $team,
            "), (SELECT i.team_id FROM deliveries d JOIN rounds r ON r.id = d.round_id
                 JOIN programs p ON p.id = r.program_id
                 JOIN installations i ON i.team_id = p.team_id WHERE d.id = ",
            $delivery,
            "), '')"
        )
    };
}
pub(crate) use outbox_team;

/// What an answer to a question already answered does: replaces the stored values, and
/// counts as a change only when they differ (every answer write uses it).
macro_rules! response_upsert {
    () => {
        " ON CONFLICT (delivery_id, metric_key) DO UPDATE SET value_number = excluded.value_number,
            value_text = excluded.value_text, allow_reply = excluded.allow_reply,
            updated_at = excluded.updated_at
          WHERE responses.value_number IS DISTINCT FROM excluded.value_number
             OR responses.value_text IS DISTINCT FROM excluded.value_text
             OR responses.allow_reply <> excluded.allow_reply"
    };
}
pub(crate) use response_upsert;

const ONE_TRIP: &str = concat!(
    "
WITH sig AS (
    INSERT INTO seen_signatures (signature, request_ts)
    SELECT $5::text, $6::bigint WHERE $5::text IS NOT NULL
    ON CONFLICT (signature) DO NOTHING
    RETURNING 1
), open AS (
    UPDATE deliveries SET state = 'answered', answered_at = COALESCE(answered_at, $2),
        answer_revision = answer_revision + CASE WHEN $4 THEN 1 ELSE 0 END
    WHERE id = $1 AND closes_at > $2 AND closed_at IS NULL
      AND state IN ('scheduled', 'queued', 'sent', 'answered')
      AND answer_revision = $3
      AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM sig))
      AND EXISTS (SELECT 1 FROM rounds r WHERE r.id = deliveries.round_id
                  AND r.state = 'open' AND r.sealed_at IS NULL)
    RETURNING id
), put AS (
    INSERT INTO responses (round_id, delivery_id, metric_key, role, value_number, value_text,
        allow_reply, created_at, updated_at)
    SELECT $7, open.id, v.k, $8, v.n, v.t, FALSE, $2, $2
    FROM open, unnest($9::text[], $10::float8[], $11::text[]) AS v(k, n, t)
    ",
    response_upsert!(),
    "
    RETURNING 1
), superseded AS (
    DELETE FROM outbox
    WHERE $4 AND target_key = $17 AND method = 'chat.update' AND status = 'pending'
      AND EXISTS (SELECT 1 FROM open)
    RETURNING 1
), queued AS (
    INSERT INTO outbox (dedupe_key, method, payload, channel_key, message_key, target_key,
        subject_kind, subject_id, delivery_id, kind, status, attempts, next_attempt_at, created_at,
        team_id)
    SELECT $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, 'pending', 0, $2, $2, ",
    outbox_team!("$22", "$1"),
    "
    FROM open WHERE $4
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING 1
)
SELECT (SELECT COUNT(*) FROM sig), (SELECT COUNT(*) FROM open), (SELECT COUNT(*) FROM queued)"
);

/// SQLite: whether the answer applies, evaluated by every statement of [`SQLITE_ONE_TRIP`]
/// against the same state: the delivery is open at the revision read, its round is open,
/// and the request's signature (`$5`) was not claimed before. The statements that use it
/// change neither the delivery nor the signatures, so they all see the answer apply, or all
/// see it not apply.
macro_rules! sqlite_answer_applies {
    () => {
        "EXISTS (SELECT 1 FROM deliveries d JOIN rounds r ON r.id = d.round_id
                 WHERE d.id = $1 AND d.closes_at > $2 AND d.closed_at IS NULL
                   AND d.state IN ('scheduled', 'queued', 'sent', 'answered')
                   AND d.answer_revision = $3
                   AND r.state = 'open' AND r.sealed_at IS NULL)
         AND ($5 IS NULL OR NOT EXISTS (SELECT 1 FROM seen_signatures WHERE signature = $5))"
    };
}

/// SQLite, in ONE trip to the connection's thread: the answers (`$9`: a JSON array of
/// `[key, number, text]`), dropping the DM's pending update and queueing the new one (these
/// three only when the answer changes something, `$4`), then the "still open?" write that
/// marks the delivery answered and bumps its revision, then the replay claim.
///
/// SQLite has no data-modifying CTEs, and a statement cannot see whether an earlier one of
/// the same trip wrote. So the order does the work: every write is conditioned on
/// [`sqlite_answer_applies!`], and the two statements that change what it reads (the
/// revision bump, the claim) come last. Each statement returns a row naming itself when it
/// wrote something.
const SQLITE_ONE_TRIP: &str = concat!(
    "
INSERT INTO responses (round_id, delivery_id, metric_key, role, value_number, value_text,
    allow_reply, created_at, updated_at)
SELECT $7, $1, v.value ->> 0, $8, v.value ->> 1, v.value ->> 2, 0, $2, $2
FROM json_each($9) AS v WHERE $4 AND ",
    sqlite_answer_applies!(),
    "
",
    response_upsert!(),
    ";
DELETE FROM outbox WHERE $4 AND target_key = $10 AND method = 'chat.update' AND status = 'pending'
  AND ",
    sqlite_answer_applies!(),
    ";
INSERT INTO outbox (dedupe_key, method, payload, channel_key, message_key, target_key,
    subject_kind, subject_id, delivery_id, kind, status, attempts, next_attempt_at, created_at,
    team_id)
SELECT $11, $12, $13, $14, $15, $10, $16, $17, $18, $19, 'pending', 0, $2, $2, ",
    outbox_team!("$20", "$1"),
    "
WHERE $4 AND ",
    sqlite_answer_applies!(),
    "
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING 'queued';
UPDATE deliveries SET state = 'answered', answered_at = COALESCE(answered_at, $2),
    answer_revision = answer_revision + $4
WHERE id = $1 AND closes_at > $2 AND closed_at IS NULL
  AND state IN ('scheduled', 'queued', 'sent', 'answered')
  AND answer_revision = $3
  AND ($5 IS NULL OR NOT EXISTS (SELECT 1 FROM seen_signatures WHERE signature = $5))
  AND EXISTS (SELECT 1 FROM rounds r WHERE r.id = deliveries.round_id
              AND r.state = 'open' AND r.sealed_at IS NULL)
RETURNING 'open';
INSERT INTO seen_signatures (signature, request_ts)
SELECT $5, $6 WHERE $5 IS NOT NULL
ON CONFLICT (signature) DO NOTHING
RETURNING 'sig'"
);

impl StoreTx {
    /// Writes one answer in one trip: one statement on PostgreSQL, five in one trip on SQLite; [`OneTrip::NotApplied`]
    /// (nothing written but the signature claim) when the delivery closed or its revision moved.
    pub async fn answer_in_one_trip(&mut self, a: &OneTripAnswer<'_>) -> StoreResult<OneTrip> {
        if matches!(self.inner, TxInner::Postgres(_)) {
            self.answer_in_one_statement(a).await
        } else {
            self.answer_in_one_sqlite_trip(a).await
        }
    }

    async fn answer_in_one_sqlite_trip(&mut self, a: &OneTripAnswer<'_>) -> StoreResult<OneTrip> {
        let TxInner::Sqlite(c) = &mut self.inner else {
            return Ok(OneTrip::NotApplied);
        };
        let update = a.update;
        // No update: the answer read is the one clicked again (a double click). The trip
        // then only marks the delivery answered and claims the signature; the step-by-step
        // writes store the answer anyway, as PostgreSQL's statement does, so an answer
        // removed meanwhile without a revision bump is not lost; rare enough to cost nothing.
        let values = match update {
            Some(_) => Some(
                serde_json::to_string(a.values)
                    .map_err(|e| super::StoreError::Corrupt(format!("an answer as JSON: {e}")))?,
            ),
            None => None,
        };
        let (subject_kind, subject_id) = match update.and_then(|u| u.subject) {
            Some(OutboxSubject::Delivery(id)) => (Some("delivery"), Some(id.0)),
            None => (None, None),
        };
        let tags: Vec<String> = sqlx::query_scalar(SQLITE_ONE_TRIP)
            .bind(a.delivery_id)
            .bind(to_ms(a.now))
            .bind(a.expected_revision)
            .bind(i64::from(update.is_some()))
            .bind(a.claim.map(|c| c.signature.as_str()))
            .bind(a.claim.map(|c| to_ms(c.signed_at)))
            .bind(a.round_id)
            .bind(a.role)
            .bind(values)
            .bind(update.and_then(|u| u.target_key.as_deref()))
            .bind(update.map(|u| u.dedupe_key.as_str()))
            .bind(update.map(|u| u.method.as_str()))
            .bind(update.map(|u| u.payload.to_string()))
            .bind(update.and_then(|u| u.channel_key.as_deref()))
            .bind(update.and_then(|u| u.message_key.as_deref()))
            .bind(subject_kind)
            .bind(subject_id)
            .bind(update.and_then(|u| u.delivery_id))
            .bind(update.map(|u| u.kind.as_str()))
            .bind(super::installations::current_team())
            .fetch_all(&mut **c)
            .await?;
        let tagged = |name: &str| tags.iter().any(|t| t == name);
        if tagged("queued") {
            self.enqueued = true;
        }
        Ok(if a.claim.is_some() && !tagged("sig") {
            OneTrip::Replay
        } else if !tagged("open") || update.is_none() {
            OneTrip::NotApplied
        } else {
            OneTrip::Stored
        })
    }

    async fn answer_in_one_statement(&mut self, a: &OneTripAnswer<'_>) -> StoreResult<OneTrip> {
        let TxInner::Postgres(c) = &mut self.inner else {
            return Ok(OneTrip::NotApplied);
        };
        let keys: Vec<&str> = a.values.iter().map(|(k, _, _)| k.as_str()).collect();
        let numbers: Vec<Option<f64>> = a.values.iter().map(|(_, n, _)| *n).collect();
        let texts: Vec<Option<&str>> = a.values.iter().map(|(_, _, t)| t.as_deref()).collect();
        let update = a.update;
        let (subject_kind, subject_id) = match update.and_then(|u| u.subject) {
            Some(OutboxSubject::Delivery(id)) => (Some("delivery"), Some(id.0)),
            None => (None, None),
        };
        let (claimed, opened, queued): (i64, i64, i64) = sqlx::query_as(ONE_TRIP)
            .bind(a.delivery_id)
            .bind(to_ms(a.now))
            .bind(a.expected_revision)
            .bind(update.is_some())
            .bind(a.claim.map(|c| c.signature.as_str()))
            .bind(a.claim.map(|c| to_ms(c.signed_at)))
            .bind(a.round_id)
            .bind(a.role)
            .bind(&keys)
            .bind(&numbers)
            .bind(&texts)
            .bind(update.map(|u| u.dedupe_key.as_str()))
            .bind(update.map(|u| u.method.as_str()))
            .bind(update.map(|u| u.payload.to_string()))
            .bind(update.and_then(|u| u.channel_key.as_deref()))
            .bind(update.and_then(|u| u.message_key.as_deref()))
            .bind(update.and_then(|u| u.target_key.as_deref()))
            .bind(subject_kind)
            .bind(subject_id)
            .bind(update.and_then(|u| u.delivery_id))
            .bind(update.map(|u| u.kind.as_str()))
            .bind(super::installations::current_team())
            .fetch_one(&mut **c)
            .await?;
        if queued > 0 {
            self.enqueued = true;
        }
        Ok(if a.claim.is_some() && claimed == 0 {
            OneTrip::Replay
        } else if opened == 0 {
            OneTrip::NotApplied
        } else {
            OneTrip::Stored
        })
    }
}
