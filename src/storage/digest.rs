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
    /// The relay's random handle when the author allowed an owner to reply (no person).
    pub reply_handle: Option<String>,
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

/// Sums per round, metric and role of the rounds that `rounds` (a query of `id`s) selects
/// (numbers only): the inner aggregate reads the covering index `responses_digest` round by
/// round, and only its few rows are joined to rounds and questions.
fn per_round_sums(rounds: &str) -> String {
    format!(
        "SELECT x.round_id, x.metric_key, x.role, COUNT(x.value_number) AS n,
                SUM(x.value_number) AS s, SUM(x.value_number * x.value_number) AS ss
         FROM ({rounds}) chosen
         JOIN responses x ON x.round_id = chosen.id
         WHERE x.value_number IS NOT NULL
         GROUP BY x.round_id, x.metric_key, x.role"
    )
}

/// Per trend period, metric and role: n, sum, sum of squares. `$2..$10` are the bounds.
fn metrics_sql() -> String {
    let inner = per_round_sums(
        "SELECT id FROM rounds WHERE program_id = $1 AND opened_at >= $2 AND opened_at < $10",
    );
    format!(
        "SELECT CAST(CASE WHEN r.opened_at >= $9 THEN 7 WHEN r.opened_at >= $8 THEN 6
                     WHEN r.opened_at >= $7 THEN 5 WHEN r.opened_at >= $6 THEN 4
                     WHEN r.opened_at >= $5 THEN 3 WHEN r.opened_at >= $4 THEN 2
                     WHEN r.opened_at >= $3 THEN 1 ELSE 0 END AS BIGINT) AS bucket,
                g.metric_key, q.kind, g.role,
                CAST(SUM(g.n) AS BIGINT) AS n, SUM(g.s) AS sum, SUM(g.ss) AS sum_sq,
                MAX(COALESCE(r.anonymity_k, $11)) AS k
         FROM ({inner}) g
         JOIN rounds r ON r.id = g.round_id
         JOIN questions q ON q.program_id = r.program_id AND q.survey_id = r.survey_id
                         AND q.metric_key = g.metric_key
         WHERE q.kind IN {NUMERIC}
         GROUP BY 1, g.metric_key, q.kind, g.role"
    )
}

/// The baseline rounds: the first `$2` rounds of each survey of the program. Read first (a
/// handful of ids), so the planner sees the short list instead of guessing at a window filter.
const BASELINE_ROUNDS_SQL: &str = "SELECT id FROM (
        SELECT id, ROW_NUMBER() OVER (PARTITION BY survey_id ORDER BY opened_at, id) AS rn
        FROM rounds WHERE program_id = $1) ranked
     WHERE rn <= $2 ORDER BY id";

/// Sums of the baseline rounds `$2…` (`count` of them); `$1` is the default `k`.
fn baseline_sql(count: usize) -> String {
    let ids: Vec<String> = (0..count).map(|i| format!("${}", i + 2)).collect();
    let inner = per_round_sums(&format!(
        "SELECT id FROM rounds WHERE id IN ({})",
        ids.join(", ")
    ));
    format!(
        "SELECT CAST(0 AS BIGINT) AS bucket, g.metric_key, q.kind, g.role,
                CAST(SUM(g.n) AS BIGINT) AS n, SUM(g.s) AS sum, SUM(g.ss) AS sum_sq,
                MAX(COALESCE(r.anonymity_k, $1)) AS k
         FROM ({inner}) g
         JOIN rounds r ON r.id = g.round_id
         JOIN questions q ON q.program_id = r.program_id AND q.survey_id = r.survey_id
                         AND q.metric_key = g.metric_key
         WHERE q.kind IN {NUMERIC}
         GROUP BY g.metric_key, q.kind, g.role"
    )
}

fn distribution_sql() -> String {
    format!(
        "SELECT g.metric_key, g.value, CAST(SUM(g.n) AS BIGINT) AS n
         FROM (SELECT x.round_id, x.metric_key, x.value_number AS value, COUNT(*) AS n
               FROM responses x
               WHERE x.round_id IN (SELECT id FROM rounds WHERE program_id = $1
                                      AND opened_at >= $2 AND opened_at < $3)
                 AND x.value_number IS NOT NULL
               GROUP BY x.round_id, x.metric_key, x.value_number) g
         JOIN rounds r ON r.id = g.round_id
         JOIN questions q ON q.program_id = r.program_id AND q.survey_id = r.survey_id
                         AND q.metric_key = g.metric_key
         WHERE q.kind IN {NUMERIC}
         GROUP BY g.metric_key, g.value"
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
const COMMENTS_SQL: &str = "SELECT x.round_id, x.value_text AS text, x.reply_handle
     FROM rounds r
     JOIN responses x ON x.round_id = r.id
     JOIN questions q ON q.program_id = r.program_id AND q.survey_id = r.survey_id
                     AND q.metric_key = x.metric_key
     WHERE r.program_id = $1 AND r.opened_at >= $2 AND r.opened_at < $3
       AND q.kind = 'text' AND x.value_text IS NOT NULL AND x.value_text <> ''
       AND r.anonymity IN ('anonymous', 'attributed')
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
        let distribution_sql = distribution_sql();
        let data = on_pool!(self, |p| {
            let mut query = sqlx::query_as::<_, MetricSums>(sqlx::AssertSqlSafe(metrics_sql))
                .bind(q.program_id);
            for bound in &b {
                query = query.bind(*bound);
            }
            let metrics = query.bind(q.default_k).fetch_all(p).await?;
            let baseline_ids: Vec<i64> = sqlx::query_scalar(BASELINE_ROUNDS_SQL)
                .bind(q.program_id)
                .bind(q.baseline_rounds)
                .fetch_all(p)
                .await?;
            let baseline = if baseline_ids.is_empty() {
                Vec::new()
            } else {
                let sql = baseline_sql(baseline_ids.len());
                let mut query =
                    sqlx::query_as::<_, MetricSums>(sqlx::AssertSqlSafe(sql)).bind(q.default_k);
                for id in &baseline_ids {
                    query = query.bind(*id);
                }
                query.fetch_all(p).await?
            };
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
    /// For the benchmark's bulk load only, on a store of one connection: SQLite stops
    /// waiting for fsync (a generated history can be generated again; answers never pass
    /// here). Outside any transaction, where SQLite allows the change.
    pub async fn bulk_load_mode(&self) -> StoreResult<()> {
        if let super::Pool::Sqlite(p, _) = &self.pool {
            sqlx::query("PRAGMA synchronous = OFF").execute(p).await?;
        }
        Ok(())
    }

    /// After the benchmark's bulk load: statistics for the planner (and, on PostgreSQL, the
    /// visibility map that index-only scans need), as autovacuum would leave them.
    pub async fn after_bulk_load(&self) -> StoreResult<()> {
        match &self.pool {
            super::Pool::Sqlite(p, _) => {
                sqlx::query("ANALYZE").execute(p).await?;
            }
            super::Pool::Postgres(p) => {
                sqlx::query("VACUUM ANALYZE").execute(p).await?;
            }
        }
        Ok(())
    }

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
