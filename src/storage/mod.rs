//! Storage: one `Store` over SQLite (embedded default) or PostgreSQL (several replicas).
//!
//! Queries are runtime-checked sqlx queries. Where the dialects agree (most of the time:
//! SQLite accepts `$1` placeholders, `ON CONFLICT`, `RETURNING`) one SQL text serves both
//! through the [`on_pool!`]/[`on_tx!`] macros, which expand the same code once per backend.
//! Callers see domain types and [`StoreError`], never sqlx types.

pub mod actions;
pub mod answer_write;
pub mod audit;
pub mod delivery_cache;
pub mod digest;
pub mod events;
pub mod export;
pub mod group_commit;
mod held;
pub mod home;
pub mod installations;
pub mod kpis;
pub mod member_data;
pub mod members;
pub mod outbox;
pub mod overrides;
pub mod programs;
pub mod rate_budgets;
pub mod relay;
pub mod report;
pub mod rounds;
mod sqlite_tx;
pub mod wins;
mod wipe;

use chrono::{DateTime, TimeZone, Utc};
use sqlite_tx::SqliteTx;
pub(crate) use sqlite_tx::WriterConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, SqlitePool, Transaction};
use std::str::FromStr;
use std::time::Duration;

/// Expands `$body` once for each backend with `$p` bound to that backend's pool.
macro_rules! on_pool {
    ($store:expr, |$p:ident| $body:expr) => {
        match &$store.pool {
            $crate::storage::Pool::Sqlite($p, _) => $body,
            $crate::storage::Pool::Postgres($p) => $body,
        }
    };
}

/// Expands `$body` once for each backend with `$c` bound to the transaction's connection.
macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match &mut $tx.inner {
            $crate::storage::TxInner::Sqlite(t) => {
                let $c = t.conn().await?;
                $body
            }
            $crate::storage::TxInner::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

/// Expands `$body` once for each backend with `$c` bound to an executor for a read on a
/// click's path: on SQLite one of the store's held connections ([`held`]: no ping when it is
/// given back), on PostgreSQL the pool. `?` in `$body` is on `sqlx::Error`.
macro_rules! on_reader {
    ($store:expr, |$c:ident| $body:expr) => {
        match &$store.pool {
            $crate::storage::Pool::Sqlite(_, held) => {
                let mut held = held.acquire().await?;
                let result: Result<_, sqlx::Error> = async {
                    let $c = &mut *held;
                    Ok($body)
                }
                .await;
                if let Err(e) = &result {
                    held.discard_if_broken(e);
                }
                result?
            }
            $crate::storage::Pool::Postgres($c) => {
                let result: Result<_, sqlx::Error> = async { Ok($body) }.await;
                result?
            }
        }
    };
}

pub(crate) use {on_pool, on_reader, on_tx};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("migration failed: {0}")]
    Migration(String),
    /// The queue in front of the writer is full: the write was refused at once, not queued.
    #[error("too many writes are waiting; try again shortly")]
    Busy,
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_string())
            }
            other => StoreError::Database(Box::new(other)),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub(crate) enum Pool {
    /// The pool, and the connections a click's read takes ([`held`]).
    Sqlite(SqlitePool, std::sync::Arc<held::HeldConnections>),
    Postgres(PgPool),
}

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: Pool,
    /// When this process last pruned expired request signatures (Unix ms), shared by clones:
    /// pruning is housekeeping, not something every signed request should pay a write for.
    pub(crate) signatures_pruned_at: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// The queue of the group-commit writer(s) ([`group_commit`]); `None` in the writers' own
    /// handle.
    pub(crate) group: Option<group_commit::GroupCommit>,
    /// Wakes this process's outbox workers when a transaction that queued work commits.
    pub(crate) outbox_wake: std::sync::Arc<tokio::sync::Notify>,
    /// The installations' routing facts already read ([`installations::RouteCache`]).
    pub(crate) install_routes: std::sync::Arc<installations::RouteCache>,
    /// The deliveries clicks read, on SQLite ([`delivery_cache`]); `None` on PostgreSQL.
    pub(crate) deliveries: Option<std::sync::Arc<delivery_cache::DeliveryCache>>,
}

pub(crate) enum TxInner {
    Sqlite(sqlite_tx::SqliteTx),
    Postgres(Transaction<'static, Postgres>),
}

/// A write transaction: a domain change and the outbox rows it causes commit together.
pub struct StoreTx {
    pub(crate) inner: TxInner,
    /// Set when this transaction queued outbox work: its commit wakes the workers.
    pub(crate) enqueued: bool,
    pub(crate) outbox_wake: std::sync::Arc<tokio::sync::Notify>,
    /// Set when this transaction wrote an installation: its commit drops what
    /// [`installations::RouteCache`] holds.
    pub(crate) installations_changed: bool,
    pub(crate) install_routes: std::sync::Arc<installations::RouteCache>,
    /// The delivery cache and its epoch when the transaction began (SQLite).
    pub(crate) deliveries: Option<(std::sync::Arc<delivery_cache::DeliveryCache>, u64)>,
}

/// How long the first connection to PostgreSQL may take before start-up gives up.
const FIRST_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One connection before the pool is built, so an unreachable server is reported at once
/// and by its address ("connection refused at db:5432"), not as a pool timeout 15 s later.
async fn first_connect(options: &PgConnectOptions) -> StoreResult<()> {
    use sqlx::{ConnectOptions, Connection};
    let target = format!("{}:{}", options.get_host(), options.get_port());
    let unreachable = |what: String| {
        StoreError::Database(Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            what,
        )))
    };
    match tokio::time::timeout(FIRST_CONNECT_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(sqlx::Error::Io(e))) => Err(unreachable(match e.kind() {
            std::io::ErrorKind::ConnectionRefused => format!("connection refused at {target}"),
            _ => format!("cannot reach {target}: {e}"),
        })),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(unreachable(format!(
            "no answer from {target} within {} s",
            FIRST_CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Whether the linked SQLite keeps a statement's plan when its parameters are bound again
/// (the query planner stability guarantee, compiled in by `.cargo/config.toml`). Without it,
/// SQLite 3.51 re-prepares any statement with a `LIMIT $n` or `LIKE $n` on every execution.
pub(crate) async fn sqlite_plans_are_stable(pool: &sqlx::SqlitePool) -> StoreResult<bool> {
    let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options")
        .fetch_all(pool)
        .await?;
    Ok(options.iter().any(|o| o == "ENABLE_QPSG"))
}

impl Store {
    /// Connects to `url` (`sqlite:…` or `postgres://…`). A SQLite file and its folder are
    /// created on first start; WAL, foreign keys, a busy timeout and `synchronous=FULL`
    /// (every committed answer is on disk before Slack gets its acknowledgement).
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Store> {
        let (pool, deliveries) = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                // Deleted rows are overwritten, not left in free space: sealing an anonymous
                // round must remove the linked originals from the file.
                .pragma("secure_delete", "ON")
                // Statement journals and temporary b-trees in memory, never in a temporary
                // file: the batch's statements dirtied more than the 64 KB a statement journal
                // keeps in memory, so each batch opened, wrote and deleted a file of copies of
                // answer pages outside the database, where `secure_delete` does not reach
                // (docs/performance.md §6, "No temporary files").
                .pragma("temp_store", "MEMORY")
                .busy_timeout(Duration::from_secs(10));
            if let Some(parent) = options.get_filename().parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| StoreError::Database(Box::new(e)))?;
                }
            }
            // No ping before each use: a connection to a local file cannot go stale, and the
            // ping is one more hop to the connection's thread (about a fifth of an answer's
            // statements). PostgreSQL keeps it: there it finds connections a restart broke.
            let cache = std::sync::Arc::new(delivery_cache::DeliveryCache::default());
            let watched = cache.clone();
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections.max(1))
                .test_before_acquire(false)
                .after_connect(move |conn, _| {
                    let cache = watched.clone();
                    Box::pin(async move {
                        delivery_cache::watch(conn, cache, false)
                            .await
                            .map_err(|e| sqlx::Error::Protocol(e.to_string()))
                    })
                })
                .acquire_timeout(Duration::from_secs(15))
                .connect_with(options)
                .await?;
            if !sqlite_plans_are_stable(&pool).await? {
                tracing::warn!(
                    "this build's SQLite lacks SQLITE_ENABLE_QPSG (.cargo/config.toml sets it): \
                     statements with a bound LIMIT are re-planned on every execution, which \
                     costs several times the CPU per answer"
                );
            }
            let held = held::HeldConnections::new(pool.connect_options());
            (Pool::Sqlite(pool, std::sync::Arc::new(held)), Some(cache))
        } else {
            // Each statement is prepared once per connection and run again and again with new
            // values. Left to choose, PostgreSQL plans it afresh for each run's values (a
            // custom plan): the answers' and the outbox claim's CTEs were planned on every
            // execution, a quarter of the server's CPU at 200 answers/s. Ours find rows by
            // key whatever the values, so one generic plan per statement does.
            let options = PgConnectOptions::from_str(url)?
                .options([("plan_cache_mode", "force_generic_plan")]);
            first_connect(&options).await?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(Duration::from_secs(15))
                .connect_with(options)
                .await?;
            (Pool::Postgres(pool), None)
        };
        let mut store = Store {
            pool,
            signatures_pruned_at: Default::default(),
            group: None,
            outbox_wake: Default::default(),
            install_routes: Default::default(),
            deliveries,
        };
        store.group = Some(group_commit::GroupCommit::start(store.clone()));
        Ok(store)
    }

    /// Applies pending migrations and names each one it applied ("20261202000500
    /// first_start_and_round_numbers"); empty when the database was up to date.
    pub async fn migrate_reporting(&self) -> StoreResult<Vec<String>> {
        let before: Vec<i64> = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_all(p)
                .await
                .unwrap_or_default()
        });
        self.migrate().await?;
        Ok(self
            .migrator()
            .iter()
            .filter(|m| !before.contains(&m.version))
            .map(|m| format!("{} {}", m.version, m.description))
            .collect())
    }

    /// How many migrations this build knows.
    pub fn migrations_known(&self) -> usize {
        self.migrator().iter().count()
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(..) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies pending migrations. Safe with several replicas starting at once: PostgreSQL's
    /// migrator takes an advisory lock; SQLite has one writer.
    pub async fn migrate(&self) -> StoreResult<usize> {
        let result = match &self.pool {
            Pool::Sqlite(p, _) => SQLITE_MIGRATIONS.run(p).await,
            Pool::Postgres(p) => POSTGRES_MIGRATIONS.run(p).await,
        };
        result.map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(self.migrator().iter().count())
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self.pool {
            Pool::Sqlite(..) => &SQLITE_MIGRATIONS,
            Pool::Postgres(_) => &POSTGRES_MIGRATIONS,
        }
    }

    /// Readiness: the database answers and every embedded migration is applied.
    pub async fn readiness(&self) -> Result<(), String> {
        let applied: Result<Vec<(i64, bool)>, sqlx::Error> = on_pool!(self, |p| {
            sqlx::query_as("SELECT version, success FROM _sqlx_migrations")
                .fetch_all(p)
                .await
        });
        let applied = applied.map_err(|e| format!("database unreachable or not migrated: {e}"))?;
        for m in self.migrator().iter() {
            if !applied.iter().any(|(v, ok)| *v == m.version && *ok) {
                return Err(format!(
                    "migration {} ({}) not applied",
                    m.version, m.description
                ));
            }
        }
        Ok(())
    }

    /// Begins a write transaction. On SQLite it is `BEGIN IMMEDIATE`, so it takes the write
    /// lock up front (waiting with the busy timeout) instead of failing on upgrade.
    pub async fn begin(&self) -> StoreResult<StoreTx> {
        let inner = match &self.pool {
            Pool::Sqlite(p, _) => {
                TxInner::Sqlite(SqliteTx::Pooled(p.begin_with("BEGIN IMMEDIATE").await?))
            }
            Pool::Postgres(p) => TxInner::Postgres(p.begin().await?),
        };
        Ok(self.tx(inner))
    }

    /// Begins a write transaction on the writer's own SQLite connection; `BEGIN IMMEDIATE`
    /// goes with its first statement ([`sqlite_tx`]).
    pub(crate) async fn begin_on(&self, own: &WriterConnection) -> StoreResult<StoreTx> {
        Ok(self.tx(TxInner::Sqlite(SqliteTx::Writer(own.begin().await?))))
    }

    fn tx(&self, inner: TxInner) -> StoreTx {
        StoreTx {
            inner,
            enqueued: false,
            outbox_wake: self.outbox_wake.clone(),
            installations_changed: false,
            install_routes: self.install_routes.clone(),
            deliveries: self.deliveries.as_ref().map(|c| (c.clone(), c.epoch())),
        }
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p, held) => {
                held.close().await;
                p.close().await
            }
            Pool::Postgres(p) => p.close().await,
        }
    }
}

impl StoreTx {
    /// Commits; when outbox work was queued, wakes the workers: this process's through its
    /// notify, the other replicas' through PostgreSQL's `NOTIFY` (delivered at commit).
    pub async fn commit(self) -> StoreResult<()> {
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(mut t) => {
                if self.enqueued {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "NOTIFY {}",
                        outbox::NOTIFY_CHANNEL
                    )))
                    .execute(&mut *t)
                    .await?;
                }
                t.commit().await?
            }
        }
        if let Some((cache, began)) = &self.deliveries {
            // After the commit: a click's read that ran between a change's statement and
            // this commit saw the row from before; the hook dropped it too early.
            if cache.epoch() != *began {
                cache.forget_all();
            }
        }
        if self.installations_changed {
            // After the commit: a read that began before it is cached under the old epoch,
            // so it is read again.
            self.install_routes.invalidate();
        }
        if self.enqueued {
            // One worker is enough to look; one that finds a full batch rings for another
            // (a permit is kept when nobody waits, so a busy worker's next look sees it).
            self.outbox_wake.notify_one();
        }
        Ok(())
    }

    /// On the writer's own SQLite connection: marks its answers trip for the delivery
    /// cache while the guard lives ([`delivery_cache`]).
    pub(crate) fn answers_trip(&self) -> Option<delivery_cache::AnswersTrip> {
        match (&self.inner, &self.deliveries) {
            (TxInner::Sqlite(SqliteTx::Writer(_)), Some((cache, _))) => Some(cache.answers_trip()),
            _ => None,
        }
    }

    pub fn backend(&self) -> Backend {
        match self.inner {
            TxInner::Sqlite(_) => Backend::Sqlite,
            TxInner::Postgres(_) => Backend::Postgres,
        }
    }
}

/// Unix milliseconds, the storage form of every instant.
fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// An instant as the database keeps it: BIGINT Unix milliseconds on both backends. Row
/// structs decode a column straight into `DateTime<Utc>` with `#[sqlx(try_from = "Millis")]`
/// (or [`OptMillis`] for a nullable one), so no caller outside storage sees the integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, sqlx::Type)]
#[sqlx(transparent)]
pub(crate) struct Millis(i64);

/// A nullable instant column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(transparent)]
pub(crate) struct OptMillis(Option<i64>);

impl From<DateTime<Utc>> for Millis {
    fn from(t: DateTime<Utc>) -> Self {
        Millis(to_ms(t))
    }
}

impl From<Millis> for DateTime<Utc> {
    fn from(m: Millis) -> Self {
        from_ms(m.0)
    }
}

impl From<Option<DateTime<Utc>>> for OptMillis {
    fn from(t: Option<DateTime<Utc>>) -> Self {
        OptMillis(t.map(to_ms))
    }
}

impl From<OptMillis> for Option<DateTime<Utc>> {
    fn from(m: OptMillis) -> Self {
        m.0.map(from_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_carry_an_instant_to_the_millisecond_and_back() {
        let t = Utc.with_ymd_and_hms(2027, 3, 28, 1, 30, 0).unwrap()
            + chrono::Duration::milliseconds(7);
        assert_eq!(Millis::from(t), Millis(t.timestamp_millis()));
        assert_eq!(DateTime::<Utc>::from(Millis::from(t)), t);
        assert_eq!(
            Option::<DateTime<Utc>>::from(OptMillis::from(Some(t))),
            Some(t)
        );
        assert_eq!(Option::<DateTime<Utc>>::from(OptMillis::from(None)), None);
    }

    /// The build flag of `.cargo/config.toml` reaches the bundled SQLite: a statement with a
    /// bound LIMIT keeps its plan (it was re-planned on every execution, 39 % of an answer's
    /// instructions).
    #[tokio::test]
    async fn sqlite_is_built_with_the_query_planner_stability_guarantee() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        assert!(
            sqlite_plans_are_stable(&pool).await.unwrap(),
            "SQLITE_ENABLE_QPSG is missing: build from the repository root so .cargo/config.toml applies"
        );
    }
}
