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
//! trip to the connection's thread ([`SQLITE_ANSWERS`]), ordered so that none depends on
//! another's outcome, and they take every answer of a grouped commit at once (one per
//! delivery): each statement is a hop between the writer and sqlx's SQLite worker thread,
//! and those hops, not the statements, were the writer's time, and half of an answer's CPU.
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

/// SQLite: the answers of one trip (`$1`, a JSON array: [`sqlite_answer_json`]) as rows.
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
            "+", $d, ".closes_at > a.now AND ", $d, ".closed_at IS NULL
             AND +", $d, ".state IN ('scheduled', 'queued', 'sent', 'answered')
             AND ", $d, ".answer_revision = a.revision
             AND EXISTS (SELECT 1 FROM rounds r WHERE r.id = ", $d, ".round_id
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
const SQLITE_ANSWERS: &str = concat!(
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
);

/// One answer as element `index` of [`SQLITE_ANSWERS`]'s `$1`, for workspace `team`.
fn sqlite_answer_json(index: usize, a: &OneTripAnswer<'_>, team: &str) -> serde_json::Value {
    let update = a.update;
    let (subject_kind, subject_id) = match update.and_then(|u| u.subject) {
        Some(OutboxSubject::Delivery(id)) => (Some("delivery"), Some(id.0)),
        None => (None, None),
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
        // No update: the answer read is the one clicked again (a double click). The trip
        // then only marks the delivery answered and claims the signature; the step-by-step
        // writes store the answer anyway, as PostgreSQL's statement does, so an answer
        // removed meanwhile without a revision bump is not lost; rare enough to cost nothing.
        "values": if update.is_some() { a.values } else { &[] },
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
    /// Writes one answer in one trip: one statement on PostgreSQL, five in one trip on SQLite; [`OneTrip::NotApplied`]
    /// (nothing written but the signature claim) when the delivery closed or its revision moved.
    pub async fn answer_in_one_trip(&mut self, a: &OneTripAnswer<'_>) -> StoreResult<OneTrip> {
        if matches!(self.inner, TxInner::Postgres(_)) {
            self.answer_in_one_statement(a).await
        } else {
            let team = super::installations::current_team();
            let outcome = self.answers_together(&[(*a, team.as_str())]).await?;
            Ok(outcome.first().copied().unwrap_or(OneTrip::NotApplied))
        }
    }

    /// SQLite: answers written together in one trip ([`SQLITE_ANSWERS`]), each with the
    /// workspace its DM update is sent for; what became of each, in order. At most one
    /// answer per delivery and per signature: the statements see the state from before the
    /// trip, so a second answer to the same delivery must come in a later trip.
    pub async fn answers_together(
        &mut self,
        answers: &[(OneTripAnswer<'_>, &str)],
    ) -> StoreResult<Vec<OneTrip>> {
        let TxInner::Sqlite(c) = &mut self.inner else {
            return Err(super::StoreError::Corrupt(
                "answers written together on a backend other than SQLite".into(),
            ));
        };
        let batch: Vec<serde_json::Value> = answers
            .iter()
            .enumerate()
            .map(|(i, (a, team))| sqlite_answer_json(i, a, team))
            .collect();
        // The payloads as one JSON array, each written once as it is (not as an escaped
        // string inside another document).
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
        let outcome: Vec<String> = sqlx::query_scalar(SQLITE_ANSWERS)
            .bind(serde_json::Value::Array(batch).to_string())
            .bind(payloads)
            .fetch_all(&mut **c)
            .await?;
        // SQLite's truth values are the integers 0 and 1.
        let flags: Vec<(usize, i64, i64)> = outcome
            .first()
            .map(|o| serde_json::from_str(o))
            .transpose()
            .map_err(|e| super::StoreError::Corrupt(format!("an answer batch's outcome: {e}")))?
            .unwrap_or_default();
        let mut outcomes = vec![OneTrip::NotApplied; answers.len()];
        for (index, applies, replay) in flags {
            let Some(((a, _), slot)) = answers.get(index).zip(outcomes.get_mut(index)) else {
                continue;
            };
            *slot = if a.claim.is_some() && replay != 0 {
                OneTrip::Replay
            } else if applies != 0 && a.update.is_some() {
                OneTrip::Stored
            } else {
                OneTrip::NotApplied
            };
        }
        if outcomes.contains(&OneTrip::Stored) {
            self.enqueued = true;
        }
        Ok(outcomes)
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
