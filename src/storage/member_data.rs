//! A member's own data (issue 10, item 4; docs/my-data.md): what `/pulse my-data` reads, and
//! what `/pulse forget-me` erases or unlinks, table by table.
//!
//! Where a Slack user id is stored (every migration in `migrations/sqlite`, checked column by
//! column):
//! - `members.slack_user_id` (and, for that row, the profile mirror: zone, status, working
//!   days, pause) — the row is kept with a random placeholder id (`erased-…`), deactivated
//!   and emptied, because its `role` and its deliveries carry the program's totals
//!   (asked/answered per role);
//! - `deliveries.member_id` / `channel_id` / `message_ts` / `timezone` / `local_time` — kept
//!   for the totals under the placeholder, with the DM's location and the zone blanked; not
//!   yet posted ones are deleted; open ones are closed (no reminder, no update follows);
//! - `responses.delivery_id` — confidential and attributed answers: text answers (comments,
//!   wins typed into a survey) are deleted, numeric ones are kept unlinked (no delivery, the
//!   round's opening time), so the aggregates do not change. Anonymous rounds are untouched:
//!   once sealed nothing links them, and before the seal they point at the placeholder;
//! - `wins.author_member_id` (deleted), `wins.text` mentions (`<@U…>` rewritten),
//!   `win_requests.member_id` (deleted), `actions.author_slack_id` (deleted);
//! - `outbox` (`payload`, `result`, `channel_key`, `dedupe_key`, `message_key`, `target_key`,
//!   `last_error`, `delivery_id`): rows addressed to the member (DMs, `home:U…` tabs, the
//!   my-data file) are deleted; rows addressed to others that mention them are rewritten;
//! - `slack_messages` (their DMs' locations), `rate_budgets` (`ch:U…`/`ch:D…`): deleted;
//! - `audit_log` entries naming them: deleted (one entry "a member erased their data" is
//!   written, naming nobody); `digests.content`: mentions and their texts rewritten;
//! - `installations.installed_by`: set to NULL;
//! - `reply_mailboxes.sealed` (encrypted): the relay opens the mailboxes (pulse layer) and
//!   passes the lookups of theirs to delete.
//!
//! `programs.settings` names owners and sponsors from the configuration files: a member named
//! there is refused until the file no longer names them (the file is the source of truth).
//! After the erasure every text column of every table is scanned for the id; what is left is
//! reported (`residue`), so a table added later that names people is noticed, not missed.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;

use super::{on_pool, on_tx, to_ms, Millis, OptMillis, Pool, Store, StoreResult, StoreTx};
use slack_facts::ids::UserId;

/// What replaces a mention of an erased member in text that is not theirs.
pub const FORMER_MEMBER: &str = "a former member";
/// What replaces an erased member's own words inside text kept for others (a digest).
pub const ERASED_TEXT: &str = "[erased]";
/// The audit actor of an erasure: it names nobody.
pub const ERASED_ACTOR: &str = "member:forgotten";

/// One membership, as the member's file shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct OwnMembership {
    pub program_id: String,
    pub program_name: String,
    pub role: String,
    pub source: String,
    pub state: String,
    #[sqlx(try_from = "OptMillis")]
    pub paused_until: Option<DateTime<Utc>>,
    pub timezone_override: Option<String>,
    pub slack_tz: Option<String>,
    pub working_days: Option<String>,
    pub status_text: Option<String>,
    pub status_emoji: Option<String>,
    pub slack_deleted: bool,
    pub slack_problem: Option<String>,
    #[sqlx(try_from = "Millis")]
    pub added_at: DateTime<Utc>,
}

/// One pulse sent (or planned) to the member.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct OwnDelivery {
    pub program_id: String,
    pub survey_id: String,
    pub period_key: String,
    pub anonymity: String,
    pub state: String,
    #[sqlx(try_from = "Millis")]
    pub scheduled_at: DateTime<Utc>,
    pub local_time: String,
    pub timezone: String,
    #[sqlx(try_from = "OptMillis")]
    pub sent_at: Option<DateTime<Utc>>,
    #[sqlx(try_from = "OptMillis")]
    pub reminded_at: Option<DateTime<Utc>>,
    #[sqlx(try_from = "OptMillis")]
    pub answered_at: Option<DateTime<Utc>>,
    #[sqlx(try_from = "Millis")]
    pub closes_at: DateTime<Utc>,
    pub failure_reason: Option<String>,
}

/// One answer of a confidential or attributed round, with its question.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct OwnAnswerRow {
    pub program_id: String,
    pub survey_id: String,
    pub period_key: String,
    pub anonymity: String,
    pub question_key: String,
    pub question: Option<String>,
    pub kind: Option<String>,
    pub value_number: Option<f64>,
    pub value_text: Option<String>,
    pub allow_reply: bool,
    #[sqlx(try_from = "Millis")]
    pub answered_at: DateTime<Utc>,
}

/// A win the member authored, or one whose text mentions them.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct WinRow {
    pub program_id: String,
    pub text: String,
    pub consent: String,
    pub shoutout_channel: Option<String>,
    #[sqlx(try_from = "Millis")]
    pub created_at: DateTime<Utc>,
}

/// A win waiting for the member's consent.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct WinRequestRow {
    pub program_id: String,
    pub text: String,
    pub origin: String,
    #[sqlx(try_from = "Millis")]
    pub created_at: DateTime<Utc>,
}

/// A "you said, we did" note the member wrote.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ActionRow {
    pub program_id: String,
    pub text: String,
    pub period_key: Option<String>,
    #[sqlx(try_from = "Millis")]
    pub created_at: DateTime<Utc>,
}

/// An audit entry naming the member.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRowOut {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub program_id: Option<String>,
    pub subject: Option<String>,
    pub detail: Value,
}

/// Everything `/pulse my-data` reads about one member (never an anonymous answer).
#[derive(Debug, Clone, Serialize)]
pub struct MemberData {
    pub memberships: Vec<OwnMembership>,
    pub deliveries: Vec<OwnDelivery>,
    pub answers: Vec<OwnAnswerRow>,
    pub wins_authored: Vec<WinRow>,
    pub wins_mentioning: Vec<WinRow>,
    pub win_requests: Vec<WinRequestRow>,
    pub actions: Vec<ActionRow>,
    pub audit: Vec<AuditRowOut>,
    pub messages_waiting: i64,
}

/// What an erasure did, by table (counts only: the audit entry holds this).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ErasureReport {
    pub memberships_unlinked: u64,
    pub deliveries_deleted: u64,
    pub deliveries_unlinked: u64,
    pub answers_deleted: u64,
    pub answers_unlinked: u64,
    pub wins_deleted: u64,
    pub wins_rewritten: u64,
    pub win_requests_deleted: u64,
    pub actions_deleted: u64,
    pub outbox_deleted: u64,
    pub outbox_rewritten: u64,
    pub slack_messages_deleted: u64,
    pub rate_budgets_deleted: u64,
    pub audit_deleted: u64,
    pub digests_rewritten: u64,
    pub mailboxes_deleted: u64,
    pub installations_unlinked: u64,
    pub overrides_deleted: u64,
    pub overrides_unlinked: u64,
    /// `table.column` still naming the member after the erasure (should stay empty).
    pub residue: Vec<String>,
}

/// Why an erasure was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErasureOutcome {
    Erased(ErasureReport),
    /// These programs' configuration (owners, sponsors) names the member.
    NamedInConfiguration(Vec<String>),
}

/// Whether `hay` holds `id` as a whole identifier (not inside a longer one).
pub fn names(hay: &str, id: &str) -> bool {
    !id.is_empty() && find_whole(hay, id, 0).is_some()
}

fn is_id_char(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

fn find_whole(hay: &str, id: &str, from: usize) -> Option<usize> {
    let bytes = hay.as_bytes();
    let mut start = from;
    while let Some(pos) = hay.get(start..).and_then(|h| h.find(id)) {
        let at = start + pos;
        let end = at + id.len();
        let before_ok = at == 0 || !is_id_char(bytes[at - 1]);
        let after_ok = end >= bytes.len() || !is_id_char(bytes[end]);
        if before_ok && after_ok {
            return Some(at);
        }
        start = at + 1;
    }
    None
}

/// `text` with mentions of `id` (`<@id>`, or the bare id) replaced by [`FORMER_MEMBER`], and
/// the member's own `words` replaced by [`ERASED_TEXT`]: an exact match always, a match
/// inside longer text only for words of 12 characters or more (shorter ones would hit other
/// people's words), in plain and in Slack-escaped form (`&`, `<`, `>`).
pub fn scrub_text(text: &str, id: &str, words: &[String]) -> String {
    if words.iter().any(|w| !w.is_empty() && (w == text)) {
        return ERASED_TEXT.to_string();
    }
    let mut out = text.replace(&format!("<@{id}>"), FORMER_MEMBER);
    while let Some(at) = find_whole(&out, id, 0) {
        out.replace_range(at..at + id.len(), FORMER_MEMBER);
    }
    for w in words.iter().filter(|w| w.chars().count() >= 12) {
        let escaped = w
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        out = out.replace(w.as_str(), ERASED_TEXT);
        out = out.replace(&escaped, ERASED_TEXT);
    }
    out
}

/// [`scrub_text`] over every string of a JSON document; `true` when something changed.
pub fn scrub_json(v: &mut Value, id: &str, words: &[String]) -> bool {
    match v {
        Value::String(s) => {
            let new = scrub_text(s, id, words);
            if new != *s {
                *s = new;
                true
            } else {
                false
            }
        }
        Value::Array(items) => {
            // Every element, not only up to the first change.
            let mut changed = false;
            for x in items.iter_mut() {
                changed |= scrub_json(x, id, words);
            }
            changed
        }
        Value::Object(map) => {
            let mut changed = false;
            for x in map.values_mut() {
                changed |= scrub_json(x, id, words);
            }
            changed
        }
        _ => false,
    }
}

/// A stored text that may hold JSON, scrubbed; `None` when nothing changed.
fn scrub_stored(text: &str, id: &str, words: &[String]) -> Option<String> {
    let new = match serde_json::from_str::<Value>(text) {
        Ok(mut v) if v.is_object() || v.is_array() => {
            if !scrub_json(&mut v, id, words) {
                return None;
            }
            v.to_string()
        }
        _ => scrub_text(text, id, words),
    };
    (new != text).then_some(new)
}

/// `%needle%` for LIKE with `\` as the escape character.
fn like_pattern(needle: &str) -> String {
    let escaped = needle
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

fn id_list(ids: &[i64]) -> String {
    if ids.is_empty() {
        "NULL".to_string()
    } else {
        ids.iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The stored Slack answer's or payload's target conversation, if it is one of `targets`.
fn addressed_to(payload: &Value, targets: &[String]) -> bool {
    ["channel", "channel_id", "user_id", "user", "users"]
        .iter()
        .filter_map(|k| payload.get(*k).and_then(Value::as_str))
        .any(|v| targets.iter().any(|t| t == v))
}

#[derive(sqlx::FromRow)]
struct AuditCandidate {
    id: i64,
    #[sqlx(try_from = "Millis")]
    at: DateTime<Utc>,
    actor: String,
    action: String,
    program_id: Option<String>,
    subject: Option<String>,
    detail: String,
}

impl AuditCandidate {
    fn names(&self, id: &str) -> bool {
        names(&self.actor, id)
            || self.subject.as_deref().is_some_and(|s| names(s, id))
            || names(&self.detail, id)
    }
}

#[derive(sqlx::FromRow)]
struct OutboxCandidate {
    id: i64,
    dedupe_key: String,
    payload: String,
    channel_key: Option<String>,
    message_key: Option<String>,
    target_key: Option<String>,
    result: Option<String>,
    last_error: Option<String>,
}

const AUDIT_CANDIDATES: &str = "SELECT id, at, actor, action, program_id, subject, detail
     FROM audit_log
     WHERE actor LIKE $1 ESCAPE '\\' OR subject LIKE $1 ESCAPE '\\' OR detail LIKE $1 ESCAPE '\\'
     ORDER BY id";

impl Store {
    /// Everything stored about `user` that is theirs to see: never an anonymous answer.
    pub async fn member_data(&self, user: &UserId) -> StoreResult<MemberData> {
        let uid = user.as_str();
        let pattern = like_pattern(uid);
        let memberships: Vec<OwnMembership> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT m.program_id, COALESCE(p.name, m.program_id) AS program_name, m.role,
                        m.source, m.state, m.paused_until, m.timezone_override, m.slack_tz,
                        m.working_days, m.status_text, m.status_emoji, m.slack_deleted,
                        m.slack_problem, m.created_at AS added_at
                 FROM members m LEFT JOIN programs p ON p.id = m.program_id
                 WHERE m.slack_user_id = $1 ORDER BY m.program_id",
            )
            .bind(uid)
            .fetch_all(p)
            .await?
        });
        let deliveries: Vec<OwnDelivery> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT r.program_id, r.survey_id, r.period_key,
                        COALESCE(r.anonymity, 'anonymous') AS anonymity, d.state,
                        d.scheduled_at, d.local_time, d.timezone, d.sent_at, d.reminded_at,
                        d.answered_at, d.closes_at, d.failure_reason
                 FROM deliveries d
                 JOIN members m ON m.id = d.member_id
                 JOIN rounds r ON r.id = d.round_id
                 WHERE m.slack_user_id = $1
                 ORDER BY d.scheduled_at, d.id",
            )
            .bind(uid)
            .fetch_all(p)
            .await?
        });
        let answers: Vec<OwnAnswerRow> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT r.program_id, r.survey_id, r.period_key, r.anonymity,
                        s.metric_key AS question_key, q.prompt AS question, q.kind,
                        s.value_number, s.value_text, s.allow_reply, s.updated_at AS answered_at
                 FROM responses s
                 JOIN deliveries d ON d.id = s.delivery_id
                 JOIN members m ON m.id = d.member_id
                 JOIN rounds r ON r.id = d.round_id
                 LEFT JOIN questions q ON q.program_id = r.program_id
                      AND q.survey_id = r.survey_id AND q.metric_key = s.metric_key
                 WHERE m.slack_user_id = $1 AND r.anonymity IN ('confidential', 'attributed')
                 ORDER BY r.opened_at, r.id, q.position, s.metric_key",
            )
            .bind(uid)
            .fetch_all(p)
            .await?
        });
        let wins_authored: Vec<WinRow> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT w.program_id, w.text, w.consent, w.shoutout_channel, w.created_at
                 FROM wins w JOIN members m ON m.id = w.author_member_id
                 WHERE m.slack_user_id = $1 ORDER BY w.created_at, w.id",
            )
            .bind(uid)
            .fetch_all(p)
            .await?
        });
        let mention = like_pattern(&format!("<@{uid}>"));
        let wins_mentioning: Vec<WinRow> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT w.program_id, w.text, w.consent, w.shoutout_channel, w.created_at
                 FROM wins w LEFT JOIN members m ON m.id = w.author_member_id
                 WHERE w.text LIKE $2 ESCAPE '\\' AND w.consent <> 'private'
                   AND (m.slack_user_id IS NULL OR m.slack_user_id <> $1)
                 ORDER BY w.created_at, w.id",
            )
            .bind(uid)
            .bind(&mention)
            .fetch_all(p)
            .await?
        });
        let win_requests: Vec<WinRequestRow> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT wr.program_id, wr.text, wr.origin, wr.created_at
                 FROM win_requests wr JOIN members m ON m.id = wr.member_id
                 WHERE m.slack_user_id = $1 ORDER BY wr.created_at",
            )
            .bind(uid)
            .fetch_all(p)
            .await?
        });
        let actions: Vec<ActionRow> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT program_id, text, period_key, created_at FROM actions
                 WHERE author_slack_id = $1 ORDER BY created_at, id",
            )
            .bind(uid)
            .fetch_all(p)
            .await?
        });
        let audit: Vec<AuditCandidate> = on_pool!(self, |p| {
            sqlx::query_as(AUDIT_CANDIDATES)
                .bind(&pattern)
                .fetch_all(p)
                .await?
        });
        let messages_waiting: i64 = on_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM outbox WHERE channel_key = $1 AND status IN ('pending', 'in_flight')",
            )
            .bind(uid)
            .fetch_one(p)
            .await?
        });
        Ok(MemberData {
            memberships,
            deliveries,
            answers,
            wins_authored,
            wins_mentioning,
            win_requests,
            actions,
            audit: audit
                .into_iter()
                .filter(|a| a.names(uid))
                .map(|a| AuditRowOut {
                    at: a.at,
                    actor: a.actor,
                    action: a.action,
                    program_id: a.program_id,
                    subject: a.subject,
                    detail: serde_json::from_str(&a.detail).unwrap_or(Value::Null),
                })
                .collect(),
            messages_waiting,
        })
    }

    /// The member's DM with the bot (`D…`) as Slack reported it for their latest pulse, if any.
    pub async fn dm_channel_of(&self, user: &UserId) -> StoreResult<Option<String>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT d.channel_id FROM deliveries d JOIN members m ON m.id = d.member_id
                 WHERE m.slack_user_id = $1 AND d.channel_id LIKE 'D%'
                 ORDER BY d.id DESC LIMIT 1",
            )
            .bind(user)
            .fetch_optional(p)
            .await?
        }))
    }

    /// Every stored tombstone (a handful: one per member who asked to be forgotten).
    pub async fn tombstones(&self) -> StoreResult<std::collections::HashSet<String>> {
        let rows: Vec<String> = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT tombstone FROM forgotten_members")
                .fetch_all(p)
                .await?
        });
        Ok(rows.into_iter().collect())
    }

    /// Deletes `my-data` files already sent to anyone before `before` (their payload holds a
    /// copy of someone's data; Slack has the file now).
    pub async fn prune_sent_files(
        &self,
        key_prefix: &str,
        before: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let pattern = format!("{}%", key_prefix.replace('%', "\\%").replace('_', "\\_"));
        Ok(on_pool!(self, |p| {
            sqlx::query(
                "DELETE FROM outbox WHERE dedupe_key LIKE $1 ESCAPE '\\'
                   AND status IN ('sent', 'failed', 'cancelled') AND created_at < $2",
            )
            .bind(&pattern)
            .bind(to_ms(before))
            .execute(p)
            .await?
            .rows_affected()
        }))
    }

    /// SQLite: copies the WAL into the database file and truncates it, so the pages from
    /// before an erasure do not linger in the `-wal` file (deleted rows are zeroed in the
    /// database file by `secure_delete`). PostgreSQL: nothing (see docs/my-data.md).
    pub async fn truncate_wal(&self) -> StoreResult<bool> {
        if let Pool::Sqlite(p, _) = &self.pool {
            let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(p)
                .await?;
            return Ok(busy == 0);
        }
        Ok(true)
    }
}

impl StoreTx {
    /// Programs whose stored settings (owners, sponsors: from the files) name `user`.
    pub async fn programs_naming(&mut self, user: &UserId) -> StoreResult<Vec<String>> {
        let rows: Vec<(String, String)> = on_tx!(self, |c| {
            sqlx::query_as(
                "SELECT id, settings FROM programs WHERE settings LIKE $1 ESCAPE '\\' ORDER BY id",
            )
            .bind(like_pattern(user.as_str()))
            .fetch_all(c)
            .await?
        });
        Ok(rows
            .into_iter()
            .filter(|(_, s)| names(s, user.as_str()))
            .map(|(id, _)| id)
            .collect())
    }

    /// Every reply mailbox with the handle of its comment: `(handle, lookup, sealed)` pairs
    /// are formed by the relay, which alone can compute lookups.
    pub async fn reply_handles(&mut self) -> StoreResult<Vec<String>> {
        Ok(on_tx!(self, |c| {
            sqlx::query_scalar(
                "SELECT DISTINCT reply_handle FROM responses WHERE reply_handle IS NOT NULL",
            )
            .fetch_all(c)
            .await?
        }))
    }

    /// The sealed recipient of a mailbox.
    pub async fn sealed_mailbox(&mut self, lookup: &str) -> StoreResult<Option<String>> {
        Ok(on_tx!(self, |c| {
            sqlx::query_scalar("SELECT sealed FROM reply_mailboxes WHERE lookup = $1")
                .bind(lookup)
                .fetch_optional(c)
                .await?
        }))
    }

    /// Erases what names `user` (module docs), in this transaction. `mailboxes` are the
    /// `(handle, lookup)` pairs of reply mailboxes that reach them (found by the relay);
    /// `tombstone` keeps them from being added back; `placeholder` makes the ids that replace
    /// theirs. Refused when a program's configuration names them.
    pub async fn erase_member(
        &mut self,
        user: &UserId,
        mailboxes: &[(String, String)],
        tombstone: (&str, bool),
        placeholder: &mut (dyn FnMut() -> String + Send),
        now: DateTime<Utc>,
    ) -> StoreResult<ErasureOutcome> {
        let uid = user.as_str();
        let naming = self.programs_naming(user).await?;
        if !naming.is_empty() {
            return Ok(ErasureOutcome::NamedInConfiguration(naming));
        }
        let mut report = ErasureReport::default();
        let at = to_ms(now);

        // Who they are in the tables: membership rows and deliveries.
        let members: Vec<(i64,)> = on_tx!(self, |c| {
            sqlx::query_as("SELECT id FROM members WHERE slack_user_id = $1 ORDER BY id")
                .bind(uid)
                .fetch_all(c)
                .await?
        });
        let member_ids: Vec<i64> = members.into_iter().map(|(id,)| id).collect();
        let mlist = id_list(&member_ids);
        let deliveries: Vec<(i64, Option<String>)> = on_tx!(self, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT id, channel_id FROM deliveries WHERE member_id IN ({mlist}) ORDER BY id"
            )))
            .fetch_all(c)
            .await?
        });
        let delivery_ids: Vec<i64> = deliveries.iter().map(|(id, _)| *id).collect();
        let dlist = id_list(&delivery_ids);
        let message_keys: Vec<String> = delivery_ids
            .iter()
            .map(|id| format!("delivery:{id}"))
            .collect();

        // Their DM channels (D…): where their deliveries landed, and Slack's answers to
        // rows addressed to them.
        let mut targets: Vec<String> = vec![uid.to_string()];
        for (_, ch) in &deliveries {
            if let Some(ch) = ch {
                if !targets.contains(ch) {
                    targets.push(ch.clone());
                }
            }
        }
        let results: Vec<(Option<String>,)> = on_tx!(self, |c| {
            sqlx::query_as(
                "SELECT result FROM outbox WHERE channel_key = $1 AND result IS NOT NULL",
            )
            .bind(uid)
            .fetch_all(c)
            .await?
        });
        for (r,) in results {
            let ch = r
                .and_then(|r| serde_json::from_str::<Value>(&r).ok())
                .and_then(|v| v.get("channel").and_then(Value::as_str).map(String::from));
            if let Some(ch) = ch.filter(|c| c.starts_with('D')) {
                if !targets.contains(&ch) {
                    targets.push(ch);
                }
            }
        }
        for key in &message_keys {
            let ch: Option<String> = on_tx!(self, |c| {
                sqlx::query_scalar("SELECT channel_id FROM slack_messages WHERE message_key = $1")
                    .bind(key)
                    .fetch_optional(c)
                    .await?
            });
            if let Some(ch) = ch.filter(|c| c.starts_with('D')) {
                if !targets.contains(&ch) {
                    targets.push(ch);
                }
            }
        }

        // Their own words, to take out of text kept for others (digests, sponsor posts).
        let mut words: Vec<String> = on_tx!(self, |c| {
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT s.value_text FROM responses s JOIN rounds r ON r.id = s.round_id
                 WHERE s.delivery_id IN ({dlist}) AND s.value_text IS NOT NULL AND s.value_text <> ''
                   AND r.anonymity IN ('confidential', 'attributed')"
            )))
            .fetch_all(c)
            .await?
        });
        let more: Vec<String> = on_tx!(self, |c| {
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT text FROM wins WHERE author_member_id IN ({mlist})
                 UNION ALL SELECT text FROM win_requests WHERE member_id IN ({mlist})"
            )))
            .fetch_all(c)
            .await?
        });
        words.extend(more);
        words.retain(|w| !w.trim().is_empty());
        words.sort();
        words.dedup();

        // Reply mailboxes that reach them.
        for (handle, lookup) in mailboxes {
            report.mailboxes_deleted += on_tx!(self, |c| {
                sqlx::query("DELETE FROM reply_mailboxes WHERE lookup = $1")
                    .bind(lookup)
                    .execute(c)
                    .await?
                    .rows_affected()
            });
            on_tx!(self, |c| {
                sqlx::query(
                    "UPDATE responses SET reply_handle = NULL, allow_reply = FALSE WHERE reply_handle = $1",
                )
                .bind(handle)
                .execute(c)
                .await?
                .rows_affected()
            });
        }

        // Answers of confidential and attributed rounds: words go, numbers stay unlinked.
        let own_rounds = "SELECT id FROM rounds WHERE anonymity IN ('confidential', 'attributed')";
        report.answers_deleted = on_tx!(self, |c| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM responses
                 WHERE delivery_id IN ({dlist}) AND round_id IN ({own_rounds})
                   AND (value_number IS NULL OR EXISTS (
                        SELECT 1 FROM rounds r JOIN questions q ON q.program_id = r.program_id
                             AND q.survey_id = r.survey_id AND q.metric_key = responses.metric_key
                        WHERE r.id = responses.round_id AND q.kind IN ('text', 'win')))"
            )))
            .execute(c)
            .await?
            .rows_affected()
        });
        report.answers_unlinked = on_tx!(self, |c| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE responses SET delivery_id = NULL, allow_reply = FALSE, reply_handle = NULL,
                    created_at = (SELECT r.opened_at FROM rounds r WHERE r.id = responses.round_id),
                    updated_at = (SELECT r.opened_at FROM rounds r WHERE r.id = responses.round_id)
                 WHERE delivery_id IN ({dlist}) AND round_id IN ({own_rounds})"
            )))
            .execute(c)
            .await?
            .rows_affected()
        });

        // The outbox: rows of their deliveries, rows addressed to them, and rows that
        // mention them or their words while addressed to others.
        report.outbox_deleted += on_tx!(self, |c| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM outbox WHERE delivery_id IN ({dlist})
                    OR (subject_kind = 'delivery' AND subject_id IN ({dlist}))"
            )))
            .execute(c)
            .await?
            .rows_affected()
        });
        let mut needles: Vec<String> = targets.clone();
        needles.extend(words.iter().cloned());
        let mut seen = std::collections::BTreeSet::new();
        for needle in &needles {
            let pattern = like_pattern(needle);
            let rows: Vec<OutboxCandidate> = on_tx!(self, |c| {
                sqlx::query_as(
                    "SELECT id, dedupe_key, payload, channel_key, message_key, target_key, result, last_error
                     FROM outbox
                     WHERE payload LIKE $1 ESCAPE '\\' OR dedupe_key LIKE $1 ESCAPE '\\'
                        OR channel_key LIKE $1 ESCAPE '\\' OR message_key LIKE $1 ESCAPE '\\'
                        OR target_key LIKE $1 ESCAPE '\\' OR result LIKE $1 ESCAPE '\\'
                        OR last_error LIKE $1 ESCAPE '\\'",
                )
                .bind(&pattern)
                .fetch_all(c)
                .await?
            });
            for row in rows {
                if !seen.insert(row.id) {
                    continue;
                }
                let payload: Value = serde_json::from_str(&row.payload).unwrap_or(Value::Null);
                let keyed = [
                    Some(&row.dedupe_key),
                    row.channel_key.as_ref(),
                    row.message_key.as_ref(),
                    row.target_key.as_ref(),
                ]
                .into_iter()
                .flatten()
                .any(|k| targets.iter().any(|t| names(k, t)));
                if keyed || addressed_to(&payload, &targets) {
                    report.outbox_deleted += on_tx!(self, |c| {
                        sqlx::query("DELETE FROM outbox WHERE id = $1")
                            .bind(row.id)
                            .execute(c)
                            .await?
                            .rows_affected()
                    });
                    continue;
                }
                let new_payload = scrub_stored(&row.payload, uid, &words);
                let new_result = row
                    .result
                    .as_deref()
                    .and_then(|r| scrub_stored(r, uid, &words));
                let new_error = row
                    .last_error
                    .as_deref()
                    .and_then(|r| scrub_stored(r, uid, &words));
                if new_payload.is_none() && new_result.is_none() && new_error.is_none() {
                    continue;
                }
                report.outbox_rewritten += on_tx!(self, |c| {
                    sqlx::query(
                        "UPDATE outbox SET payload = COALESCE($2, payload),
                            result = COALESCE($3, result), last_error = COALESCE($4, last_error)
                         WHERE id = $1",
                    )
                    .bind(row.id)
                    .bind(&new_payload)
                    .bind(&new_result)
                    .bind(&new_error)
                    .execute(c)
                    .await?
                    .rows_affected()
                });
            }
        }

        // Where their DMs landed, and their channels' rate budgets.
        for key in &message_keys {
            report.slack_messages_deleted += on_tx!(self, |c| {
                sqlx::query("DELETE FROM slack_messages WHERE message_key = $1")
                    .bind(key)
                    .execute(c)
                    .await?
                    .rows_affected()
            });
        }
        for t in &targets {
            let pattern = like_pattern(t);
            let keys: Vec<(String, String, String)> = on_tx!(self, |c| {
                sqlx::query_as(
                    "SELECT message_key, channel_id, 'slack_messages' FROM slack_messages
                     WHERE message_key LIKE $1 ESCAPE '\\' OR channel_id LIKE $1 ESCAPE '\\'
                     UNION ALL
                     SELECT budget_key, budget_key, 'rate_budgets' FROM rate_budgets
                     WHERE budget_key LIKE $1 ESCAPE '\\'",
                )
                .bind(&pattern)
                .fetch_all(c)
                .await?
            });
            for (key, channel, table) in keys {
                if !(names(&key, t) || names(&channel, t)) {
                    continue;
                }
                if table == "slack_messages" {
                    report.slack_messages_deleted += on_tx!(self, |c| {
                        sqlx::query("DELETE FROM slack_messages WHERE message_key = $1")
                            .bind(&key)
                            .execute(c)
                            .await?
                            .rows_affected()
                    });
                } else {
                    report.rate_budgets_deleted += on_tx!(self, |c| {
                        sqlx::query("DELETE FROM rate_budgets WHERE budget_key = $1")
                            .bind(&key)
                            .execute(c)
                            .await?
                            .rows_affected()
                    });
                }
            }
        }

        // Deliveries: never posted ones go; the others stay for the totals, closed, with
        // nothing of where or in which zone they landed.
        report.deliveries_deleted = on_tx!(self, |c| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM deliveries WHERE id IN ({dlist}) AND sent_at IS NULL
                   AND NOT EXISTS (SELECT 1 FROM responses s WHERE s.delivery_id = deliveries.id)"
            )))
            .execute(c)
            .await?
            .rows_affected()
        });
        let kept: Vec<(i64, i64)> = on_tx!(self, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT id, scheduled_at FROM deliveries WHERE id IN ({dlist}) ORDER BY id"
            )))
            .fetch_all(c)
            .await?
        });
        for (id, scheduled_at) in kept {
            let local = super::from_ms(scheduled_at).to_rfc3339_opts(SecondsFormat::Secs, true);
            report.deliveries_unlinked += on_tx!(self, |c| {
                sqlx::query(
                    "UPDATE deliveries SET
                        state = CASE WHEN state IN ('scheduled', 'queued', 'sent') THEN 'expired' ELSE state END,
                        closed_at = COALESCE(closed_at, $2), remind_at = NULL,
                        channel_id = NULL, message_ts = NULL, failure_reason = NULL,
                        timezone = 'UTC', local_time = $3, answer_revision = 0
                     WHERE id = $1",
                )
                .bind(id)
                .bind(at)
                .bind(&local)
                .execute(c)
                .await?
                .rows_affected()
            });
        }

        // Wins they authored (named or private) and their pending requests; mentions of
        // them in other wins.
        report.wins_deleted = on_tx!(self, |c| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM wins WHERE author_member_id IN ({mlist})"
            )))
            .execute(c)
            .await?
            .rows_affected()
        });
        report.win_requests_deleted = on_tx!(self, |c| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM win_requests WHERE member_id IN ({mlist})"
            )))
            .execute(c)
            .await?
            .rows_affected()
        });
        let mentioning: Vec<(i64, String)> = on_tx!(self, |c| {
            sqlx::query_as("SELECT id, text FROM wins WHERE text LIKE $1 ESCAPE '\\'")
                .bind(like_pattern(uid))
                .fetch_all(c)
                .await?
        });
        for (id, text) in mentioning {
            if !names(&text, uid) {
                continue;
            }
            let new = scrub_text(&text, uid, &[]);
            report.wins_rewritten += on_tx!(self, |c| {
                sqlx::query("UPDATE wins SET text = $2 WHERE id = $1")
                    .bind(id)
                    .bind(&new)
                    .execute(c)
                    .await?
                    .rows_affected()
            });
        }
        report.actions_deleted = on_tx!(self, |c| {
            sqlx::query("DELETE FROM actions WHERE author_slack_id = $1")
                .bind(uid)
                .execute(c)
                .await?
                .rows_affected()
        });

        // The membership rows become placeholders: deactivated, with nothing of theirs.
        for id in &member_ids {
            let stand_in = placeholder();
            report.memberships_unlinked += on_tx!(self, |c| {
                sqlx::query(
                    "UPDATE members SET slack_user_id = $2, state = 'deactivated', source = 'file',
                        timezone_override = NULL, slack_tz = NULL, working_days = NULL,
                        paused_until = NULL, slack_deleted = FALSE, is_bot = FALSE,
                        is_restricted = FALSE, status_text = NULL, status_emoji = NULL,
                        profile_refreshed_at = NULL, slack_problem = NULL,
                        created_at = $3, updated_at = $3
                     WHERE id = $1",
                )
                .bind(id)
                .bind(&stand_in)
                .bind(at)
                .execute(c)
                .await?
                .rows_affected()
            });
        }

        // The audit log: entries naming them go.
        let audit: Vec<AuditCandidate> = on_tx!(self, |c| {
            sqlx::query_as(AUDIT_CANDIDATES)
                .bind(like_pattern(uid))
                .fetch_all(c)
                .await?
        });
        for a in audit.into_iter().filter(|a| a.names(uid)) {
            report.audit_deleted += on_tx!(self, |c| {
                sqlx::query("DELETE FROM audit_log WHERE id = $1")
                    .bind(a.id)
                    .execute(c)
                    .await?
                    .rows_affected()
            });
        }

        // Digests kept for the sponsors: mentions and their words rewritten.
        let mut digest_rows: Vec<(i64, String)> = Vec::new();
        for needle in std::iter::once(uid.to_string()).chain(words.iter().cloned()) {
            let rows: Vec<(i64, String)> = on_tx!(self, |c| {
                sqlx::query_as("SELECT id, content FROM digests WHERE content LIKE $1 ESCAPE '\\'")
                    .bind(like_pattern(&needle))
                    .fetch_all(c)
                    .await?
            });
            for r in rows {
                if !digest_rows.iter().any(|(id, _)| *id == r.0) {
                    digest_rows.push(r);
                }
            }
        }
        for (id, content) in digest_rows {
            let Some(new) = scrub_stored(&content, uid, &words) else {
                continue;
            };
            report.digests_rewritten += on_tx!(self, |c| {
                sqlx::query("UPDATE digests SET content = $2 WHERE id = $1")
                    .bind(id)
                    .bind(&new)
                    .execute(c)
                    .await?
                    .rows_affected()
            });
        }

        // Run-time edits (issue 10, item 3): an admin's "add this member" names them; an edit
        // they made as an admin keeps the edit but not their id.
        report.overrides_deleted = on_tx!(self, |c| {
            sqlx::query("DELETE FROM config_overrides WHERE field = $1")
                .bind(format!("member:{uid}"))
                .execute(c)
                .await?
                .rows_affected()
        });
        report.overrides_unlinked = on_tx!(self, |c| {
            sqlx::query("UPDATE config_overrides SET actor = $2 WHERE actor = $1")
                .bind(uid)
                .bind(FORMER_MEMBER)
                .execute(c)
                .await?
                .rows_affected()
        });

        self.installations_changed = true;
        report.installations_unlinked = on_tx!(self, |c| {
            sqlx::query("UPDATE installations SET installed_by = NULL WHERE installed_by = $1")
                .bind(uid)
                .execute(c)
                .await?
                .rows_affected()
        });

        // The tombstone, which names nobody.
        on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO forgotten_members (tombstone, keyed, forgotten_at) VALUES ($1, $2, $3)
                 ON CONFLICT (tombstone) DO NOTHING",
            )
            .bind(tombstone.0)
            .bind(tombstone.1)
            .bind(at)
            .execute(c)
            .await?
            .rows_affected()
        });

        report.residue = self.columns_naming(&targets).await?;
        let detail = serde_json::to_value(&report).unwrap_or(Value::Null);
        self.audit(now, ERASED_ACTOR, "member.erased", None, None, &detail)
            .await?;
        Ok(ErasureOutcome::Erased(report))
    }

    /// Every text column of every table (migrations' bookkeeping aside) holding one of
    /// `ids` as a whole identifier, as `table.column`.
    pub async fn columns_naming(&mut self, ids: &[String]) -> StoreResult<Vec<String>> {
        let columns: Vec<(String, String)> = match self.backend() {
            super::Backend::Sqlite => {
                let tables: Vec<String> = on_tx!(self, |c| {
                    sqlx::query_scalar(
                        "SELECT name FROM sqlite_master WHERE type = 'table'
                         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
                    )
                    .fetch_all(c)
                    .await?
                });
                let mut out = Vec::new();
                for t in tables {
                    let cols: Vec<(String, String)> = on_tx!(self, |c| {
                        sqlx::query_as("SELECT name, type FROM pragma_table_info($1)")
                            .bind(&t)
                            .fetch_all(c)
                            .await?
                    });
                    for (name, ty) in cols {
                        let ty = ty.to_ascii_uppercase();
                        if ty.is_empty() || ty.contains("TEXT") || ty.contains("CHAR") {
                            out.push((t.clone(), name));
                        }
                    }
                }
                out
            }
            super::Backend::Postgres => on_tx!(self, |c| {
                sqlx::query_as(
                    "SELECT table_name::text, column_name::text FROM information_schema.columns
                     WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'
                       AND data_type IN ('text', 'character varying', 'json', 'jsonb')
                     ORDER BY table_name, column_name",
                )
                .fetch_all(c)
                .await?
            }),
        };
        let mut out = Vec::new();
        for (table, column) in columns {
            if table == "forgotten_members" {
                continue;
            }
            let t = table.replace('"', "\"\"");
            let col = column.replace('"', "\"\"");
            for id in ids {
                // Names come from the catalog, not from anyone outside.
                let sql = format!(
                    "SELECT CAST(\"{col}\" AS TEXT) FROM \"{t}\" WHERE CAST(\"{col}\" AS TEXT) LIKE $1 ESCAPE '\\'"
                );
                let hits: Vec<Option<String>> = on_tx!(self, |c| {
                    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
                        .bind(like_pattern(id))
                        .fetch_all(c)
                        .await?
                });
                if hits.iter().flatten().any(|h| names(h, id)) {
                    out.push(format!("{table}.{column}"));
                    break;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_id_is_found_whole_only() {
        assert!(names("ch:U0AMY", "U0AMY"));
        assert!(names("<@U0AMY> shipped", "U0AMY"));
        assert!(names("{\"channel\":\"U0AMY\"}", "U0AMY"));
        assert!(!names("U0AMYX", "U0AMY"));
        assert!(!names("XU0AMY", "U0AMY"));
        assert!(names("U0AMYX U0AMY", "U0AMY"));
        assert!(!names("anything", ""));
    }

    #[test]
    fn scrubbing_rewrites_mentions_and_the_members_own_words() {
        let words = vec!["Our standups run long lately".to_string(), "ok".to_string()];
        assert_eq!(
            scrub_text("Kudos <@U0AMY> and U0AMY!", "U0AMY", &words),
            "Kudos a former member and a former member!"
        );
        assert_eq!(scrub_text("ok", "U0AMY", &words), ERASED_TEXT);
        assert_eq!(scrub_text("took", "U0AMY", &words), "took");
        let mut v = json!({"comments": ["Our standups run long lately", "keep"],
                            "text": "> Our standups run long lately & more"});
        assert!(scrub_json(&mut v, "U0AMY", &words));
        assert_eq!(v["comments"], json!([ERASED_TEXT, "keep"]));
        assert_eq!(v["text"], json!(format!("> {ERASED_TEXT} & more")));
        let escaped = "x Fish &amp; chips &lt;3 for everyone y";
        assert_eq!(
            scrub_text(escaped, "U0AMY", &["Fish & chips <3 for everyone".into()]),
            format!("x {ERASED_TEXT} y")
        );
        assert_eq!(scrub_stored("{\"a\":\"b\"}", "U0AMY", &words), None);
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_a\\"), "%50\\%\\_a\\\\%");
    }
}
