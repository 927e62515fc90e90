//! The deliveries clicks read, remembered in the process (SQLite only).
//!
//! Every click reads its delivery and the answers stored for it ([`Store::delivery_for_click`]):
//! who it belongs to, whether it is open, what the DM shows. On SQLite that read was a trip to
//! a connection's thread and back for every click, about a tenth of the CPU per answer at
//! 2,000 answers a second and, on a busy machine, a wait for a core on each side. Here the
//! row of the last read (or of the last answer this process stored) is kept instead.
//!
//! Exact by construction rather than by discipline: every SQLite connection the store opens
//! reports each row it changes (SQLite's update hook, [`watch`]), so no write path can forget
//! to invalidate. A change to a delivery drops that delivery; a change to an answer, a round
//! or a member (which the cached row joins) drops everything. The one exception is the
//! group-commit writer's answers trip: its changes are the answers whose callers put the new
//! row back ([`DeliveryCache::put`]), so the hook only drops the deliveries it touches.
//!
//! Races are closed by an epoch, as for installations ([`super::installations::RouteCache`]):
//! a row is put only if no change outside the answers trip was seen since before it was read,
//! and never over a row of a later answer revision. A transaction that changed something
//! drops everything again after its commit ([`super::StoreTx::commit`]), so a read that ran
//! between its statement and its commit is not trusted either.
//!
//! What a stale row could do is bounded anyway: the answer's write re-checks the revision it
//! was prepared from and that the delivery is still open, in the same statement, and a row
//! that says closed is never served from here (it is read again). Not used on PostgreSQL,
//! where other replicas write.
//!
//! Privacy: the cache holds what the database holds for open deliveries, in memory, and no
//! longer than the database does: sealing a round, forgetting a member or wiping data change
//! those rows, which drops them here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::rounds::DeliveryRow;
use super::StoreResult;

/// Deliveries remembered at most; past it the cache starts again. 4,096 rows of about a
/// kilobyte: a few megabytes at most.
pub const DELIVERY_CACHE_MAX: usize = 4096;

/// The tables a cached row is made of ([`super::rounds::DELIVERY_SELECT`] and the answers).
const JOINED: [&str; 3] = ["responses", "rounds", "members"];

#[derive(Default)]
pub struct DeliveryCache {
    /// Moves with every change seen outside the writer's answers trip.
    epoch: AtomicU64,
    /// Set while the group-commit writer's answers trip runs on its connection.
    answers_trip: AtomicBool,
    entries: Mutex<HashMap<i64, DeliveryRow>>,
}

impl std::fmt::Debug for DeliveryCache {
    // Never the rows: they hold answers.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryCache")
            .field("epoch", &self.epoch())
            .field("rows", &self.len())
            .finish_non_exhaustive()
    }
}

impl DeliveryCache {
    /// Take this before reading what will be [`DeliveryCache::put`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub fn get(&self, id: i64) -> Option<DeliveryRow> {
        self.lock().get(&id).cloned()
    }

    /// Remembers `row`, read (or written) after [`DeliveryCache::epoch`] gave `epoch`: unless
    /// something changed since, or a later revision of it is here already.
    pub fn put(&self, row: DeliveryRow, epoch: u64) {
        let mut entries = self.lock();
        // Under the lock: a change that bumps the epoch takes the lock to drop rows after.
        if self.epoch() != epoch {
            return;
        }
        if entries
            .get(&row.id.0)
            .is_some_and(|held| held.answer_revision > row.answer_revision)
        {
            return;
        }
        if entries.len() >= DELIVERY_CACHE_MAX {
            entries.clear();
        }
        entries.insert(row.id.0, row);
    }

    /// Drops everything (a change the cache cannot pin to one delivery, or after a commit
    /// that changed something).
    pub fn forget_all(&self) {
        let mut entries = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A row of `table` changed on a connection (`writer`: the group-commit writer's own).
    fn changed(&self, table: &str, rowid: i64, writer: bool) {
        let in_trip = writer && self.answers_trip.load(Ordering::Acquire);
        if table == "deliveries" {
            let mut entries = self.lock();
            if !in_trip {
                self.epoch.fetch_add(1, Ordering::AcqRel);
            }
            entries.remove(&rowid);
        } else if JOINED.contains(&table) && !in_trip {
            self.forget_all();
        }
    }

    /// Marks the writer's answers trip for as long as the guard lives.
    pub(crate) fn answers_trip(self: &Arc<Self>) -> AnswersTrip {
        self.answers_trip.store(true, Ordering::Release);
        AnswersTrip(self.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, DeliveryRow>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// While it lives, the writer's connection is running the batch's answers trip.
pub(crate) struct AnswersTrip(Arc<DeliveryCache>);

impl Drop for AnswersTrip {
    fn drop(&mut self) {
        self.0.answers_trip.store(false, Ordering::Release);
    }
}

/// Reports every row `conn` changes to `cache` (`writer`: the group-commit writer's own
/// connection, whose answers trip the cache tells apart).
pub(crate) async fn watch(
    conn: &mut sqlx::SqliteConnection,
    cache: Arc<DeliveryCache>,
    writer: bool,
) -> StoreResult<()> {
    let mut handle = conn.lock_handle().await?;
    handle.set_update_hook(move |change| cache.changed(change.table, change.rowid, writer));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{DeliveryId, MemberId, ProgramId, RoundId};
    use crate::domain::state::DeliveryState;
    use chrono::{TimeZone, Utc};
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, SqliteConnection};
    use std::str::FromStr;

    fn row(id: i64, revision: i64) -> DeliveryRow {
        let at = Utc.with_ymd_and_hms(2027, 1, 4, 9, 0, 0).unwrap();
        DeliveryRow {
            id: DeliveryId(id),
            round_id: RoundId(1),
            member_id: MemberId(1),
            state: DeliveryState::Sent,
            scheduled_at: at,
            local_time: "10:00".into(),
            timezone: "Europe/Berlin".into(),
            closes_at: at + chrono::Duration::hours(48),
            remind_at: None,
            sent_at: Some(at),
            reminded_at: None,
            answered_at: None,
            closed_at: None,
            channel_id: Some("D0AMY".parse().unwrap()),
            message_ts: Some("1700000000.000100".parse().unwrap()),
            failure_reason: None,
            answer_revision: revision,
            program_id: ProgramId("pilot".into()),
            survey_id: "weekly".into(),
            period_key: "2027-W01".into(),
            round_anonymity: None,
            round_k: None,
            slack_user_id: "U0AMY".parse().unwrap(),
            role: "participant".into(),
            answers_read: None,
        }
    }

    /// A database with tables named like the ones the cache watches, and a connection to it
    /// reporting to `cache` (`writer`: as the group-commit writer's own).
    async fn watched(
        dir: &tempfile::TempDir,
        cache: &Arc<DeliveryCache>,
        writer: bool,
    ) -> SqliteConnection {
        let url = format!("sqlite://{}", dir.path().join("cache.db").display());
        let mut conn = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        for table in ["deliveries", "responses", "rounds", "members", "outbox"] {
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, x INTEGER);
                 INSERT OR IGNORE INTO {table} (id, x) VALUES (1, 0), (2, 0), (3, 0);"
            );
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        watch(&mut conn, cache.clone(), writer).await.unwrap();
        conn
    }

    async fn exec(conn: &mut SqliteConnection, sql: &'static str) {
        sqlx::query(sql).execute(conn).await.unwrap();
    }

    fn cached(cache: &DeliveryCache) -> Vec<i64> {
        let mut ids: Vec<i64> = cache.lock().keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    #[tokio::test]
    async fn a_changed_delivery_is_dropped_and_the_others_stay() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(DeliveryCache::default());
        let mut conn = watched(&dir, &cache, false).await;
        for id in [1, 2, 3] {
            cache.put(row(id, 0), cache.epoch());
        }
        exec(&mut conn, "UPDATE deliveries SET x = 1 WHERE id = 2").await;
        assert_eq!(cached(&cache), vec![1, 3]);
        // Tables a cached row is not made of change nothing.
        exec(&mut conn, "UPDATE outbox SET x = 1").await;
        assert_eq!(cached(&cache), vec![1, 3]);
    }

    #[tokio::test]
    async fn a_changed_answer_round_or_member_drops_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(DeliveryCache::default());
        let mut conn = watched(&dir, &cache, false).await;
        for sql in [
            "DELETE FROM responses WHERE id = 1",
            "UPDATE rounds SET x = 1 WHERE id = 2",
            "UPDATE members SET x = 1 WHERE id = 3",
        ] {
            cache.put(row(1, 0), cache.epoch());
            cache.put(row(2, 0), cache.epoch());
            exec(&mut conn, sql).await;
            assert!(cache.is_empty(), "{sql} left rows");
        }
    }

    /// The writer's answers trip: its callers put their rows back, so an answer's change
    /// does not drop the others, and a row put with the epoch from before the trip is kept.
    /// The same changes on the writer's connection outside the trip drop as anywhere else.
    #[tokio::test]
    async fn the_writers_answers_trip_drops_only_its_own_deliveries() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(DeliveryCache::default());
        let mut conn = watched(&dir, &cache, true).await;
        cache.put(row(1, 0), cache.epoch());
        cache.put(row(2, 0), cache.epoch());
        let before = cache.epoch();
        {
            let _trip = cache.answers_trip();
            exec(&mut conn, "INSERT INTO responses (id, x) VALUES (10, 4)").await;
            exec(&mut conn, "UPDATE deliveries SET x = 1 WHERE id = 1").await;
        }
        assert_eq!(cached(&cache), vec![2]);
        cache.put(row(1, 1), before);
        assert_eq!(cache.get(1).map(|d| d.answer_revision), Some(1));

        exec(&mut conn, "UPDATE responses SET x = 5 WHERE id = 10").await;
        assert!(cache.is_empty(), "outside the trip an answer drops all");
    }

    #[tokio::test]
    async fn a_read_that_raced_a_change_is_not_kept_nor_an_older_revision() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(DeliveryCache::default());
        let mut conn = watched(&dir, &cache, false).await;
        let read_at = cache.epoch();
        exec(&mut conn, "UPDATE deliveries SET x = 1 WHERE id = 3").await;
        cache.put(row(3, 0), read_at);
        assert!(cache.get(3).is_none(), "read before a change, put after it");

        cache.put(row(1, 5), cache.epoch());
        cache.put(row(1, 4), cache.epoch());
        assert_eq!(cache.get(1).map(|d| d.answer_revision), Some(5));
    }

    #[test]
    fn it_starts_again_when_full() {
        let cache = DeliveryCache::default();
        for id in 0..DELIVERY_CACHE_MAX as i64 {
            cache.put(row(id, 0), cache.epoch());
        }
        assert_eq!(cache.len(), DELIVERY_CACHE_MAX);
        cache.put(row(-1, 0), cache.epoch());
        assert_eq!(cache.len(), 1);
    }
}
