//! The digest's numbers, computed in SQL: counts, sums and sums of squares grouped by period,
//! metric and role, so a digest over a million answers reads a few hundred rows. One SQL text
//! serves both databases (window functions, `CASE`, `CAST … AS BIGINT` agree).
//!
//! Nothing here applies the anonymity rules: it returns raw groups with the `k` their rounds
//! opened with, and `digest::numbers` decides what may be shown. Nothing here returns a name
//! next to an answer, nor an answer's time.

use chrono::{DateTime, Utc};

use super::{on_pool, on_tx, to_ms, Store, StoreResult, StoreTx};
use crate::domain::ids::ProgramId;
use crate::storage::outbox::NewOutboxMessage;

/// The period boundaries of one digest: `bounds[i]..bounds[i + 1]` is trend period `i`;
/// the last one (`bounds[TREND]..bounds[TREND + 1]`) is the digest's own period and the one
/// before it is the previous period.
pub const TREND: usize = 8;

#[derive(Debug, Clone)]
pub struct DigestQuery<'a> {
    pub program_id: &'a ProgramId,
    /// `TREND + 1` ascending instants.
    pub bounds: [DateTime<Utc>; TREND + 1],
    /// The first `baseline_rounds` rounds of each survey are the baseline.
    pub baseline_rounds: i64,
    /// `k` for rounds that have none stored (older rounds).
    pub default_k: i64,
}

/// Sums of one group of numeric answers.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct MetricSums {
    /// Trend period index `0..TREND` (`TREND - 1` is the digest's period); unused for the
    /// baseline.
    pub bucket: i64,
    pub metric_key: String,
    pub kind: String,
    /// `leader`, `participant`, or `folded` (an anonymous round sealed with roles folded).
    pub role: String,
    pub n: i64,
    pub sum: f64,
    pub sum_sq: f64,
    /// The largest `k` among the group's rounds.
    pub k: i64,
}

/// How many answers of one metric took one value in the digest's period.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ValueCount {
    pub metric_key: String,
    pub value: f64,
    pub n: i64,
}

/// Who was asked and who answered in one round, per role (`answered` is `None` for a sealed
/// round: the round keeps totals only, see [`RoundTotals`]).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RoleParticipation {
    pub round_id: i64,
    /// 1 for the digest's period, 0 for the previous one.
    pub current: i64,
    pub role: String,
    pub asked: i64,
    pub answered: i64,
    pub sealed: i64,
}

/// A round's own totals (sealed rounds keep them; open ones count deliveries).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RoundTotals {
    pub round_id: i64,
    pub current: i64,
    pub sealed: i64,
    pub asked: i64,
    pub answered: i64,
    pub k: i64,
}

/// Respondents per role of a sealed round, read from its answers (the most answers any one
/// question got from that role; a required question is answered by every respondent).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SealedRole {
    pub round_id: i64,
    pub role: String,
    pub answered: i64,
}

/// A text answer of the period and the round it belongs to (for the comment threshold).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CommentRow {
    pub round_id: i64,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct WinRow {
    pub text: String,
    pub consent: String,
    /// Only for `named` wins.
    pub author: Option<String>,
}

/// Everything the digest reads, raw.
#[derive(Debug, Clone, Default)]
pub struct DigestData {
    pub metrics: Vec<MetricSums>,
    pub baseline: Vec<MetricSums>,
    pub distribution: Vec<ValueCount>,
    pub roles: Vec<RoleParticipation>,
    pub rounds: Vec<RoundTotals>,
    pub sealed_roles: Vec<SealedRole>,
    pub comments: Vec<CommentRow>,
    pub wins: Vec<WinRow>,
    pub actions: Vec<String>,
}

/// The numeric kinds a mean means something for (a choice's number is an option index).
const NUMERIC: &str = "('scale', 'enps', 'yes_no')";

/// Per trend period, metric and role: n, sum, sum of squares. `$2..$10` are the bounds.
fn metrics_sql() -> String {
    format!(
        "SELECT CAST(CASE WHEN r.opened_at >= $9 THEN 7 WHEN r.opened_at >= $8 THEN 6
                     WHEN r.opened_at >= $7 THEN 5 WHEN r.opened_at >= $6 THEN 4
                     WHEN r.opened_at >= $5 THEN 3 WHEN r.opened_at >= $4 THEN 2
                     WHEN r.opened_at >= $3 THEN 1 ELSE 0 END AS BIGINT) AS bucket,
                x.metric_key, q.kind, x.role,
                COUNT(x.value_number) AS n, SUM(x.value_number) AS sum,
                SUM(x.value_number * x.value_number) AS sum_sq,
                MAX(COALESCE(r.anonymity_k, $11)) AS k
         FROM rounds r
         JOIN responses x ON x.round_id = r.id
         JOIN questions q ON q.program_id = r.program_id AND q.survey_id = r.survey_id
                         AND q.metric_key = x.metric_key
         WHERE r.program_id = $1 AND r.opened_at >= $2 AND r.opened_at < $10
           AND q.kind IN {NUMERIC} AND x.value_number IS NOT NULL
         GROUP BY 1, x.metric_key, q.kind, x.role"
    )
}

/// The baseline: the first `$2` rounds of each survey of the program.
fn baseline_sql() -> String {
    format!(
        "WITH ranked AS (
             SELECT id, ROW_NUMBER() OVER (PARTITION BY survey_id ORDER BY opened_at, id) AS rn
             FROM rounds WHERE program_id = $1)
         SELECT CAST(0 AS BIGINT) AS bucket, x.metric_key, q.kind, x.role,
                COUNT(x.value_number) AS n, SUM(x.value_number) AS sum,
                SUM(x.value_number * x.value_number) AS sum_sq,
                MAX(COALESCE(r.anonymity_k, $3)) AS k
         FROM ranked b
         JOIN rounds r ON r.id = b.id
         JOIN responses x ON x.round_id = r.id
         JOIN questions q ON q.program_id = r.program_id AND q.survey_id = r.survey_id
                         AND q.metric_key = x.metric_key
         WHERE b.rn <= $2 AND q.kind IN {NUMERIC} AND x.value_number IS NOT NULL
         GROUP BY x.metric_key, q.kind, x.role"
    )
}

fn distribution_sql() -> String {
    format!(
        "SELECT x.metric_key, x.value_number AS value, COUNT(*) AS n
         FROM rounds r
         JOIN responses x ON x.round_id = r.id
         JOIN questions q ON q.program_id = r.program_id AND q.survey_id = r.survey_id
                         AND q.metric_key = x.metric_key
         WHERE r.program_id = $1 AND r.opened_at >= $2 AND r.opened_at < $3
           AND q.kind IN {NUMERIC} AND x.value_number IS NOT NULL
         GROUP BY x.metric_key, x.value_number"
    )
}

/// Deliveries that were posted, per round of the digest's and the previous period, and role.
const ROLES_SQL: &str = "SELECT r.id AS round_id,
        CAST(CASE WHEN r.opened_at >= $3 THEN 1 ELSE 0 END AS BIGINT) AS current,
        m.role, COUNT(*) AS asked,
        SUM(CASE WHEN d.state = 'answered' THEN 1 ELSE 0 END) AS answered,
        CAST(CASE WHEN r.sealed_at IS NULL THEN 0 ELSE 1 END AS BIGINT) AS sealed
     FROM rounds r
     JOIN deliveries d ON d.round_id = r.id
     JOIN members m ON m.id = d.member_id
     WHERE r.program_id = $1 AND r.opened_at >= $2 AND r.opened_at < $4 AND d.sent_at IS NOT NULL
     GROUP BY r.id, r.opened_at, r.sealed_at, m.role";

/// A round's totals: stored counts once sealed, counted deliveries before.
const ROUNDS_SQL: &str = "SELECT r.id AS round_id,
        CAST(CASE WHEN r.opened_at >= $3 THEN 1 ELSE 0 END AS BIGINT) AS current,
        CAST(CASE WHEN r.sealed_at IS NULL THEN 0 ELSE 1 END AS BIGINT) AS sealed,
        CASE WHEN r.sealed_at IS NULL
             THEN (SELECT COUNT(*) FROM deliveries d WHERE d.round_id = r.id AND d.sent_at IS NOT NULL)
             ELSE COALESCE(r.asked_count, 0) END AS asked,
        CASE WHEN r.sealed_at IS NULL
             THEN (SELECT COUNT(*) FROM deliveries d WHERE d.round_id = r.id AND d.state = 'answered')
             ELSE COALESCE(r.answered_count, 0) END AS answered,
        COALESCE(r.anonymity_k, $5) AS k
     FROM rounds r
     WHERE r.program_id = $1 AND r.opened_at >= $2 AND r.opened_at < $4";

const SEALED_ROLES_SQL: &str = "SELECT round_id, role, MAX(n) AS answered FROM (
        SELECT x.round_id, x.role, x.metric_key, COUNT(*) AS n
        FROM rounds r JOIN responses x ON x.round_id = r.id
        WHERE r.program_id = $1 AND r.opened_at >= $2 AND r.opened_at < $3
          AND r.sealed_at IS NOT NULL
        GROUP BY x.round_id, x.role, x.metric_key) per_question
     GROUP BY round_id, role";

/// Text answers of the period, in random order (never in answer order), with no time and no
/// delivery.
const COMMENTS_SQL: &str = "SELECT x.round_id, x.value_text AS text
     FROM rounds r
     JOIN responses x ON x.round_id = r.id
     JOIN questions q ON q.program_id = r.program_id AND q.survey_id = r.survey_id
                     AND q.metric_key = x.metric_key
     WHERE r.program_id = $1 AND r.opened_at >= $2 AND r.opened_at < $3
       AND q.kind = 'text' AND x.value_text IS NOT NULL AND x.value_text <> ''
     ORDER BY random()";

/// Wins of the period that may be shared; the author only when they agreed to be named.
const WINS_SQL: &str = "SELECT w.text, w.consent,
        CASE WHEN w.consent = 'named' THEN m.slack_user_id ELSE NULL END AS author
     FROM wins w LEFT JOIN members m ON m.id = w.author_member_id
     WHERE w.program_id = $1 AND w.created_at >= $2 AND w.created_at < $3
       AND w.consent <> 'private'
     ORDER BY w.created_at, w.id";

const ACTIONS_SQL: &str = "SELECT text FROM actions
     WHERE program_id = $1 AND created_at >= $2 AND created_at < $3
     ORDER BY created_at, id";

impl Store {
    /// Reads every number of one digest (see [`DigestData`]).
    #[tracing::instrument(skip_all, fields(program = %q.program_id))]
    pub async fn digest_data(&self, q: &DigestQuery<'_>) -> StoreResult<DigestData> {
        let b: Vec<i64> = q.bounds.iter().map(|t| to_ms(*t)).collect();
        let (start, end) = (b[TREND - 1], b[TREND]);
        let previous = b[TREND - 2];
        let metrics_sql = metrics_sql();
        let baseline_sql = baseline_sql();
        let distribution_sql = distribution_sql();
        let data = on_pool!(self, |p| {
            let mut query = sqlx::query_as::<_, MetricSums>(sqlx::AssertSqlSafe(metrics_sql))
                .bind(q.program_id);
            for bound in &b {
                query = query.bind(*bound);
            }
            let metrics = query.bind(q.default_k).fetch_all(p).await?;
            let baseline = sqlx::query_as::<_, MetricSums>(sqlx::AssertSqlSafe(baseline_sql))
                .bind(q.program_id)
                .bind(q.baseline_rounds)
                .bind(q.default_k)
                .fetch_all(p)
                .await?;
            let distribution =
                sqlx::query_as::<_, ValueCount>(sqlx::AssertSqlSafe(distribution_sql))
                    .bind(q.program_id)
                    .bind(start)
                    .bind(end)
                    .fetch_all(p)
                    .await?;
            let roles = sqlx::query_as::<_, RoleParticipation>(ROLES_SQL)
                .bind(q.program_id)
                .bind(previous)
                .bind(start)
                .bind(end)
                .fetch_all(p)
                .await?;
            let rounds = sqlx::query_as::<_, RoundTotals>(ROUNDS_SQL)
                .bind(q.program_id)
                .bind(previous)
                .bind(start)
                .bind(end)
                .bind(q.default_k)
                .fetch_all(p)
                .await?;
            let sealed_roles = sqlx::query_as::<_, SealedRole>(SEALED_ROLES_SQL)
                .bind(q.program_id)
                .bind(previous)
                .bind(end)
                .fetch_all(p)
                .await?;
            let comments = sqlx::query_as::<_, CommentRow>(COMMENTS_SQL)
                .bind(q.program_id)
                .bind(start)
                .bind(end)
                .fetch_all(p)
                .await?;
            let wins = sqlx::query_as::<_, WinRow>(WINS_SQL)
                .bind(q.program_id)
                .bind(start)
                .bind(end)
                .fetch_all(p)
                .await?;
            let actions: Vec<String> = sqlx::query_scalar(ACTIONS_SQL)
                .bind(q.program_id)
                .bind(start)
                .bind(end)
                .fetch_all(p)
                .await?;
            DigestData {
                metrics,
                baseline,
                distribution,
                roles,
                rounds,
                sealed_roles,
                comments,
                wins,
                actions,
            }
        });
        Ok(data)
    }

    /// Whether the digest of this period was already recorded for this channel.
    pub async fn digest_posted(
        &self,
        program_id: &ProgramId,
        period_start: DateTime<Utc>,
        channel: &str,
    ) -> StoreResult<bool> {
        let n: i64 = on_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM digests
                 WHERE program_id = $1 AND period_start = $2 AND channel_id = $3",
            )
            .bind(program_id)
            .bind(to_ms(period_start))
            .bind(channel)
            .fetch_one(p)
            .await?
        });
        Ok(n > 0)
    }
}

/// One digest to record and post to one channel.
#[derive(Debug, Clone)]
pub struct NewDigest<'a> {
    pub program_id: &'a ProgramId,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub channel_id: &'a str,
    /// JSON of the rendered digest (aggregates that passed the anonymity rules only).
    pub content: &'a str,
    /// The `chat.postMessage` row; its dedupe key names program, period and channel.
    pub post: NewOutboxMessage,
}

impl StoreTx {
    /// Records the digest of a period for a channel and queues its post, once: the row is
    /// inserted first (`UNIQUE (program_id, period_start, channel_id)`), and the outbox row
    /// only when that insert did something. False when it was already there.
    pub async fn record_digest(
        &mut self,
        d: &NewDigest<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let inserted = on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO digests (program_id, period_start, period_end, channel_id, content, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (program_id, period_start, channel_id) DO NOTHING",
            )
            .bind(d.program_id)
            .bind(to_ms(d.period_start))
            .bind(to_ms(d.period_end))
            .bind(d.channel_id)
            .bind(d.content)
            .bind(to_ms(now))
            .execute(c)
            .await?
            .rows_affected()
        });
        if inserted == 0 {
            return Ok(false);
        }
        self.enqueue(&d.post, now).await?;
        Ok(true)
    }
}

/// A cell of a generated row (the benchmark's synthetic history).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Int(i64),
    Real(f64),
    Text(String),
    /// Written as the SQL literal `NULL` (a bound NULL has no type on PostgreSQL).
    Null,
}

/// Rows per multi-row `INSERT` (under both databases' parameter limits for ~12 columns).
const SEED_CHUNK: usize = 1000;

impl StoreTx {
    /// Inserts `rows` into `table` with multi-row `INSERT`s, for the benchmark's generator
    /// (`digest::bench`). `table` and `columns` are fixed names from that code, never input.
    pub async fn insert_rows(
        &mut self,
        table: &'static str,
        columns: &'static [&'static str],
        rows: &[Vec<Cell>],
    ) -> StoreResult<u64> {
        let mut total = 0;
        for chunk in rows.chunks(SEED_CHUNK) {
            let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
            let mut n = 0;
            for (i, row) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                for (j, cell) in row.iter().enumerate() {
                    if j > 0 {
                        sql.push_str(", ");
                    }
                    if *cell == Cell::Null {
                        sql.push_str("NULL");
                    } else {
                        n += 1;
                        sql.push_str(&format!("${n}"));
                    }
                }
                sql.push(')');
            }
            total += on_tx!(self, |c| {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for cell in chunk.iter().flatten() {
                    q = match cell {
                        Cell::Int(v) => q.bind(*v),
                        Cell::Real(v) => q.bind(*v),
                        Cell::Text(v) => q.bind(v.clone()),
                        Cell::Null => q,
                    };
                }
                q.execute(c).await?.rows_affected()
            });
        }
        Ok(total)
    }

    /// Inserts one row and returns its id (`RETURNING id`), for the generator's parents.
    pub async fn insert_returning_id(
        &mut self,
        table: &'static str,
        columns: &'static [&'static str],
        row: Vec<Cell>,
    ) -> StoreResult<i64> {
        let mut sql = format!("INSERT INTO {table} ({}) VALUES (", columns.join(", "));
        let mut n = 0;
        for (j, cell) in row.iter().enumerate() {
            if j > 0 {
                sql.push_str(", ");
            }
            if *cell == Cell::Null {
                sql.push_str("NULL");
            } else {
                n += 1;
                sql.push_str(&format!("${n}"));
            }
        }
        sql.push_str(") RETURNING id");
        Ok(on_tx!(self, |c| {
            let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
            for cell in &row {
                q = match cell {
                    Cell::Int(v) => q.bind(*v),
                    Cell::Real(v) => q.bind(*v),
                    Cell::Text(v) => q.bind(v.clone()),
                    Cell::Null => q,
                };
            }
            q.fetch_one(c).await?
        }))
    }
}

impl Store {
    /// Rounds of the benchmark program's first survey (its weeks of history).
    pub async fn bench_weeks(&self, program_id: &ProgramId) -> StoreResult<i64> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM rounds WHERE program_id = $1
                   AND survey_id = (SELECT MIN(survey_id) FROM rounds WHERE program_id = $1)",
            )
            .bind(program_id)
            .fetch_one(p)
            .await?
        }))
    }

    /// Answers stored for a program (the benchmark reports it).
    pub async fn bench_answers(&self, program_id: &ProgramId) -> StoreResult<i64> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM responses x JOIN rounds r ON r.id = x.round_id
                 WHERE r.program_id = $1",
            )
            .bind(program_id)
            .fetch_one(p)
            .await?
        }))
    }
}
