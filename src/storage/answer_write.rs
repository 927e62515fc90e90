//! The answers of a grouped commit in one trip: the replay claim, the "still open?" check,
//! the answer, the revision bump, dropping the DM's pending update and queueing the new one,
//! for every answer of the batch at once (at most one per delivery and per signature; a
//! second one goes in the next trip, [`super::group_commit`]). On PostgreSQL it is ONE
//! data-modifying CTE ([`POSTGRES_ANSWERS`]); an answer used to cost one such statement, a
//! round trip to the server each, and the writers spent their time waiting on them.
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
//! trip to the connection's thread ([`SQLITE_ANSWERS`]), ordered so that none depends on
//! another's outcome: each statement is a hop between the writer and sqlx's SQLite worker
//! thread, and those hops, not the statements, were the writer's time, and half of an
//! answer's CPU.
//!
//! Both backends give the DM update's outbox row the workspace [`StoreTx::enqueue`] would give
//! it ([`outbox_team!`]), so an answer in an OAuth-installed workspace is updated with that
//! workspace's token.

use chrono::{DateTime, Utc};

use super::group_commit::SignatureClaim;
use super::outbox::{NewOutboxMessage, OutboxSubject};
use super::{to_ms, Backend, StoreResult, StoreTx, TxInner};
use crate::domain::ids::{DeliveryId, RoundId};

/// One answer to write in one statement.
#[derive(Clone, Copy)]
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

/// PostgreSQL, the answers of a batch in ONE statement (`$1`, a JSON array:
/// [`answer_json`]; `$2`, the DM updates' payloads, `index` + 1 into it). The claim comes
/// first, and the delivery's "still open?" write (`open`) takes only answers whose signature
/// it claimed; everything else is written for the answers `open` returned. All the CTEs see
/// the same snapshot, so an answer applies or not as a whole. A double click (no `update`)
/// still stores its values (the upsert changes nothing) and marks the delivery answered.
/// The answers come sorted by delivery, so concurrent writers lock deliveries in one order.
///
/// `$3` (the batch's delivery ids), the `|| ''`s and the round's check as a scalar subquery
/// are for the planner: without them it read every delivery of the open round per batch
/// (from the round, through the indexes on `round_id` and `state`) and found the superseded
/// updates through the index on `status` (every pending message per answer). Now the only
/// way in is by key.
const POSTGRES_ANSWERS: &str = concat!(
    "
WITH a AS (
    SELECT (x ->> 'index')::int AS idx, (x ->> 'delivery')::bigint AS delivery,
        (x ->> 'round')::bigint AS round, x ->> 'role' AS role,
        (x ->> 'revision')::bigint AS revision, (x ->> 'update')::int = 1 AS has_update,
        x ->> 'signature' AS signature, (x ->> 'signed_at')::bigint AS signed_at,
        (x ->> 'now')::bigint AS now, x -> 'values' AS vals, x ->> 'target' AS target,
        x ->> 'dedupe' AS dedupe, x ->> 'method' AS method, x ->> 'channel' AS channel,
        x ->> 'message' AS message, x ->> 'subject_kind' AS subject_kind,
        (x ->> 'subject_id')::bigint AS subject_id,
        (x ->> 'update_delivery')::bigint AS update_delivery, x ->> 'kind' AS kind,
        x ->> 'team' AS team
    FROM jsonb_array_elements($1::jsonb) AS x
), sig AS (
    INSERT INTO seen_signatures (signature, request_ts)
    SELECT a.signature, a.signed_at FROM a WHERE a.signature IS NOT NULL
    ON CONFLICT (signature) DO NOTHING
    RETURNING signature
), open AS (
    UPDATE deliveries SET state = 'answered', answered_at = COALESCE(answered_at, a.now),
        answer_revision = answer_revision + CASE WHEN a.has_update THEN 1 ELSE 0 END
    FROM a
    WHERE deliveries.id = ANY($3::bigint[]) AND deliveries.id = a.delivery
      AND deliveries.closes_at > a.now AND deliveries.closed_at IS NULL
      AND deliveries.state || '' IN ('scheduled', 'queued', 'sent', 'answered')
      AND deliveries.answer_revision = a.revision
      AND (a.signature IS NULL OR a.signature IN (SELECT signature FROM sig))
      AND (SELECT r.state = 'open' AND r.sealed_at IS NULL FROM rounds r
           WHERE r.id = deliveries.round_id)
    RETURNING a.idx
), put AS (
    INSERT INTO responses (round_id, delivery_id, metric_key, role, value_number, value_text,
        allow_reply, created_at, updated_at)
    SELECT a.round, a.delivery, v ->> 0, a.role, (v ->> 1)::float8, v ->> 2, FALSE, a.now, a.now
    FROM open JOIN a ON a.idx = open.idx, jsonb_array_elements(a.vals) AS v
    ",
    response_upsert!(),
    "
    RETURNING 1
), superseded AS (
    DELETE FROM outbox
    WHERE method || '' = 'chat.update' AND status || '' = 'pending'
      AND target_key IN (SELECT a.target FROM open JOIN a ON a.idx = open.idx
                         WHERE a.has_update)
    RETURNING 1
), queued AS (
    INSERT INTO outbox (dedupe_key, method, payload, channel_key, message_key, target_key,
        subject_kind, subject_id, delivery_id, kind, status, attempts, next_attempt_at, created_at,
        team_id)
    SELECT a.dedupe, a.method, ($2::text[])[a.idx + 1], a.channel, a.message, a.target,
        a.subject_kind, a.subject_id, a.update_delivery, a.kind, 'pending', 0, a.now, a.now, ",
    outbox_team!("a.team", "a.delivery"),
    "
    FROM open JOIN a ON a.idx = open.idx WHERE a.has_update
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING 1
)
SELECT COALESCE(json_agg(json_build_array(a.idx,
    (a.idx IN (SELECT idx FROM open))::int,
    (a.signature IS NOT NULL AND a.signature NOT IN (SELECT signature FROM sig))::int))::text,
    '[]')
FROM a"
);

/// SQLite: the answers of one trip (`$1`, a JSON array: [`answer_json`]) as rows.
/// `jsonb_each` hands each answer over as binary JSON, which `->>` reads in place: with
/// `json_each` every `->>` parsed the answer's text again, twenty times per answer and
/// statement. The DM updates' payloads, the bulk of the bytes, come apart in `$2` (an array,
/// `index` into it), read by the one statement that stores them.
macro_rules! sqlite_answers {
    () => {
        "WITH a AS (
    SELECT value ->> 'delivery' AS delivery, value ->> 'round' AS round, value ->> 'role' AS role,
        value ->> 'revision' AS revision, value ->> 'update' AS has_update,
        value ->> 'signature' AS signature, value ->> 'signed_at' AS signed_at,
        value ->> 'now' AS now, jsonb_extract(value, '$.values') AS vals,
        value ->> 'target' AS target,
        value ->> 'dedupe' AS dedupe, value ->> 'method' AS method, value ->> 'index' AS idx,
        value ->> 'channel' AS channel, value ->> 'message' AS message,
        value ->> 'subject_kind' AS subject_kind, value ->> 'subject_id' AS subject_id,
        value ->> 'update_delivery' AS update_delivery, value ->> 'kind' AS kind,
        value ->> 'team' AS team
    FROM jsonb_each($1)
)"
    };
}

/// SQLite: whether the delivery row `$d` is still open for answer `a`: open at the revision
/// read, and its round open. The one place the rule is written: [`sqlite_answer_applies!`]
/// reads it for a looked-up row, and the revision bump of [`SQLITE_ANSWERS`] for the row it
/// updates. The unary `+`s keep SQLite from planning around the indexes on `state` and
/// `closes_at` instead of looking the row up by key.
macro_rules! sqlite_delivery_open {
    ($d:literal) => {
        concat!(
            "+",
            $d,
            ".closes_at > a.now AND ",
            $d,
            ".closed_at IS NULL
             AND +",
            $d,
            ".state IN ('scheduled', 'queued', 'sent', 'answered')
             AND ",
            $d,
            ".answer_revision = a.revision
             AND EXISTS (SELECT 1 FROM rounds r WHERE r.id = ",
            $d,
            ".round_id
                         AND r.state = 'open' AND r.sealed_at IS NULL)"
        )
    };
}

/// SQLite: answer `a`'s request signature was not claimed before (or it has none).
macro_rules! sqlite_signature_unclaimed {
    () => {
        "(a.signature IS NULL
          OR NOT EXISTS (SELECT 1 FROM seen_signatures s WHERE s.signature = a.signature))"
    };
}

/// SQLite: whether answer `a` applies, evaluated by every statement of [`SQLITE_ANSWERS`]
/// against the same state: its delivery is open at the revision read
/// ([`sqlite_delivery_open!`]) and its request's signature was not claimed before. The
/// statements that use it change neither the deliveries nor the signatures, so they all see
/// an answer apply, or all see it not apply.
macro_rules! sqlite_answer_applies {
    () => {
        concat!(
            "EXISTS (SELECT 1 FROM deliveries d WHERE d.id = a.delivery AND ",
            sqlite_delivery_open!("d"),
            ") AND ",
            sqlite_signature_unclaimed!()
        )
    };
}

/// SQLite: the batch's answers ([`sqlite_answers!`]) and, as `ok`, those that apply and
/// change something: the ones whose values are stored and whose DM update is queued.
macro_rules! sqlite_applying_updates {
    () => {
        concat!(
            sqlite_answers!(),
            ", ok AS (SELECT * FROM a WHERE a.has_update AND ",
            sqlite_answer_applies!(),
            ")"
        )
    };
}

/// SQLite, the answers of a batch in ONE trip to the connection's thread (at most one per
/// delivery and per signature). First, what will become of each answer: `[index, applies,
/// replay]`, one row for the whole batch. Then the writes: the answers' values (`values`:
/// `[key, number, text]` each), dropping each DM's pending update and queueing the new one
/// (these three only for an answer that changes something, `update`), the "still open?"
/// write that marks each delivery answered and bumps its revision, and the replay claims.
///
/// SQLite has no data-modifying CTEs, and a statement cannot see whether an earlier one of
/// the same trip wrote. So the order does the work: every write is conditioned on
/// [`sqlite_answer_applies!`], the two statements that change what it reads (the revision
/// bump, the claim) come last, and the outcome read first is therefore what every write saw.
/// A unary `+` keeps SQLite from planning a statement around an index on `state` or
/// `status` (walking every open delivery or pending message) instead of looking each
/// answer's rows up by key. The writes return no rows: sqlx hands each row over to the
/// waiting task on its own, and a row per answer per statement woke the writer dozens of
/// times per trip.
macro_rules! sqlite_answers_trip {
    () => { concat!(
    sqlite_answers!(),
    "
SELECT json_group_array(json_array(a.idx, ",
    sqlite_answer_applies!(),
    ", a.signature IS NOT NULL
        AND EXISTS (SELECT 1 FROM seen_signatures s WHERE s.signature = a.signature)))
FROM a;
",
    sqlite_applying_updates!(),
    "
INSERT INTO responses (round_id, delivery_id, metric_key, role, value_number, value_text,
    allow_reply, created_at, updated_at)
SELECT ok.round, ok.delivery, v.value ->> 0, ok.role, v.value ->> 1, v.value ->> 2, 0, ok.now,
    ok.now
FROM ok, json_each(ok.vals) AS v WHERE true
",
    response_upsert!(),
    ";
",
    sqlite_applying_updates!(),
    "
DELETE FROM outbox WHERE +method = 'chat.update' AND +status = 'pending'
  AND target_key IN (SELECT target FROM ok);
",
    sqlite_applying_updates!(),
    "
INSERT INTO outbox (dedupe_key, method, payload, channel_key, message_key, target_key,
    subject_kind, subject_id, delivery_id, kind, status, attempts, next_attempt_at, created_at,
    team_id)
SELECT ok.dedupe, ok.method, json_extract($2, '$[' || ok.idx || ']'), ok.channel, ok.message, ok.target, ok.subject_kind,
    ok.subject_id, ok.update_delivery, ok.kind, 'pending', 0, ok.now, ok.now, ",
    outbox_team!("ok.team", "ok.delivery"),
    "
FROM ok WHERE true
ON CONFLICT (dedupe_key) DO NOTHING;
",
    sqlite_answers!(),
    "
UPDATE deliveries SET state = 'answered', answered_at = COALESCE(answered_at, a.now),
    answer_revision = answer_revision + a.has_update
FROM a
WHERE deliveries.id = a.delivery AND ",
    sqlite_delivery_open!("deliveries"),
    " AND ",
    sqlite_signature_unclaimed!(),
    ";
",
    sqlite_answers!(),
    "
INSERT INTO seen_signatures (signature, request_ts)
SELECT a.signature, a.signed_at FROM a WHERE a.signature IS NOT NULL
ON CONFLICT (signature) DO NOTHING"
) };
}

/// [`sqlite_answers_trip!`] in a transaction already begun.
const SQLITE_ANSWERS: &str = sqlite_answers_trip!();

/// [`SQLITE_ANSWERS`] opening the transaction it runs in: the writer's own connection sends
/// `BEGIN IMMEDIATE` with the batch's first statements ([`super::sqlite_tx`]).
const SQLITE_BEGIN_AND_ANSWERS: &str = concat!("BEGIN IMMEDIATE;\n", sqlite_answers_trip!());

/// Whether the trip stores answer `a`'s values. Without an update the answer read is the one
/// clicked again (a double click): PostgreSQL's statement stores its values anyway (the
/// upsert changes nothing); SQLite's trip only marks the delivery answered and claims the
/// signature, and the step-by-step writes store the answer, so an answer removed meanwhile
/// without a revision bump is not lost (rare enough to cost nothing).
fn trip_stores(a: &OneTripAnswer<'_>, backend: Backend) -> bool {
    a.update.is_some() || backend == Backend::Postgres
}

/// One answer as element `index` of the batch statement's `$1`, for workspace `team`.
fn answer_json(
    index: usize,
    a: &OneTripAnswer<'_>,
    team: &str,
    backend: Backend,
) -> serde_json::Value {
    let update = a.update;
    let (subject_kind, subject_id) = match update.and_then(|u| u.subject) {
        Some(OutboxSubject::Delivery(id)) => (Some("delivery"), Some(id.0)),
        None => (None, None),
    };
    let values = if trip_stores(a, backend) {
        a.values
    } else {
        &[]
    };
    serde_json::json!({
        "index": index,
        "delivery": a.delivery_id.0,
        "round": a.round_id.0,
        "role": a.role,
        "revision": a.expected_revision,
        "update": i64::from(update.is_some()),
        "signature": a.claim.map(|c| c.signature.as_str()),
        "signed_at": a.claim.map(|c| to_ms(c.signed_at)),
        "now": to_ms(a.now),
        "values": values,
        "target": update.and_then(|u| u.target_key.as_deref()),
        "dedupe": update.map(|u| u.dedupe_key.as_str()),
        "method": update.map(|u| u.method.as_str()),
        "channel": update.and_then(|u| u.channel_key.as_deref()),
        "message": update.and_then(|u| u.message_key.as_deref()),
        "subject_kind": subject_kind,
        "subject_id": subject_id,
        "update_delivery": update.and_then(|u| u.delivery_id).map(|d| d.0),
        "kind": update.map(|u| u.kind.as_str()),
        "team": team,
    })
}

impl StoreTx {
    /// Writes one answer in one trip ([`StoreTx::answers_together`], a batch of one);
    /// [`OneTrip::NotApplied`] (nothing written but the signature claim) when the delivery
    /// closed or its revision moved.
    pub async fn answer_in_one_trip(&mut self, a: &OneTripAnswer<'_>) -> StoreResult<OneTrip> {
        let team = super::installations::current_team();
        let outcome = self.answers_together(&[(*a, team.as_str())]).await?;
        Ok(outcome.first().copied().unwrap_or(OneTrip::NotApplied))
    }

    /// Answers written together in one trip ([`POSTGRES_ANSWERS`], [`SQLITE_ANSWERS`]), each
    /// with the workspace its DM update is sent for; what became of each, in order. At most
    /// one answer per delivery and per signature: the statements see the state from before
    /// the trip, so a second answer to the same delivery must come in a later trip.
    pub async fn answers_together(
        &mut self,
        answers: &[(OneTripAnswer<'_>, &str)],
    ) -> StoreResult<Vec<OneTrip>> {
        let backend = self.backend();
        // PostgreSQL: sorted by delivery, so its concurrent writers lock the deliveries in one
        // order and two batches cannot wait for each other's rows. SQLite has one writer.
        let mut order: Vec<usize> = (0..answers.len()).collect();
        if backend == Backend::Postgres {
            order.sort_by_key(|&i| answers[i].0.delivery_id.0);
        }
        let batch: Vec<serde_json::Value> = order
            .iter()
            .map(|&i| answer_json(i, &answers[i].0, answers[i].1, backend))
            .collect();
        let batch = serde_json::Value::Array(batch).to_string();
        let outcome: String = match &mut self.inner {
            TxInner::Sqlite(c) => {
                // The payloads as one JSON array, each written once as it is (not as an
                // escaped string inside another document).
                let mut payloads = String::from("[");
                for (i, (a, _)) in answers.iter().enumerate() {
                    if i > 0 {
                        payloads.push(',');
                    }
                    match a.update {
                        Some(u) => payloads.push_str(&u.payload.to_string()),
                        None => payloads.push_str("null"),
                    }
                }
                payloads.push(']');
                // A transaction not begun yet (the writer's own) begins in this trip.
                let trip = if c.take_begin() {
                    SQLITE_BEGIN_AND_ANSWERS
                } else {
                    SQLITE_ANSWERS
                };
                sqlx::query_scalar(trip)
                    .bind(batch)
                    .bind(payloads)
                    .fetch_all(c.unbegun_conn())
                    .await?
                    .into_iter()
                    .next()
                    .unwrap_or_default()
            }
            TxInner::Postgres(c) => {
                let payloads: Vec<Option<String>> = answers
                    .iter()
                    .map(|(a, _)| a.update.map(|u| u.payload.to_string()))
                    .collect();
                let deliveries: Vec<i64> = answers.iter().map(|(a, _)| a.delivery_id.0).collect();
                sqlx::query_scalar(POSTGRES_ANSWERS)
                    .bind(batch)
                    .bind(payloads)
                    .bind(deliveries)
                    .fetch_one(&mut **c)
                    .await?
            }
        };
        // `[index, applies, replay]` per answer, the truth values as 0 and 1.
        let flags: Vec<(usize, i64, i64)> = serde_json::from_str(&outcome)
            .map_err(|e| super::StoreError::Corrupt(format!("an answer batch's outcome: {e}")))?;
        let mut outcomes = vec![OneTrip::NotApplied; answers.len()];
        for (index, applies, replay) in flags {
            let Some(((a, _), slot)) = answers.get(index).zip(outcomes.get_mut(index)) else {
                continue;
            };
            let stored = applies != 0 && trip_stores(a, backend);
            *slot = if a.claim.is_some() && replay != 0 {
                OneTrip::Replay
            } else if stored {
                OneTrip::Stored
            } else {
                OneTrip::NotApplied
            };
        }
        if answers
            .iter()
            .zip(&outcomes)
            .any(|((a, _), o)| *o == OneTrip::Stored && a.update.is_some())
        {
            self.enqueued = true;
        }
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Store;
    use sqlx::Row;

    /// Every statement of the batch trip finds its rows by key: walking the open deliveries
    /// or the pending messages would make each answer's cost grow with the tables (the first
    /// version of the trip did, and shed most answers at 1,000/s).
    #[tokio::test]
    async fn the_batch_trip_looks_its_rows_up_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("plan.db").display());
        let store = Store::connect(&url, 2).await.unwrap();
        store.migrate().await.unwrap();
        let super::super::Pool::Sqlite(pool, _) = &store.pool else {
            unreachable!("a SQLite URL gives a SQLite pool")
        };
        for statement in SQLITE_ANSWERS.split(";\nWITH") {
            let statement = if statement.starts_with("WITH") {
                statement.to_string()
            } else {
                format!("WITH{statement}")
            };
            let plan = sqlx::query(sqlx::AssertSqlSafe(format!(
                "EXPLAIN QUERY PLAN {statement}"
            )))
            .bind("[]")
            .bind("[]")
            .fetch_all(pool)
            .await
            .unwrap();
            let steps: Vec<String> = plan.iter().map(|r| r.get::<String, _>("detail")).collect();
            eprintln!("{statement}\n{}\n", steps.join("\n"));
            for step in &steps {
                let bad = (step.starts_with("SCAN ") && !step.contains("VIRTUAL TABLE"))
                    || (step.starts_with("SEARCH deliveries") && !step.contains("PRIMARY KEY"))
                    || (step.starts_with("SEARCH outbox") && !step.contains("outbox_by_target"));
                assert!(!bad, "not looked up by key: {step}\n{statement}");
            }
        }
    }
}
