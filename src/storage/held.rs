//! SQLite connections the store holds itself, for the read on every click's path.
//!
//! sqlx's pool pings a connection each time it is given back: dropping a `PoolConnection`
//! spawns a task that sends a `Ping` to the connection's thread and waits for it (sqlx-core
//! 0.9, `pool/connection.rs`, `return_to_pool`). On SQLite that ping is one more round trip
//! to the connection's thread, as dear as the query itself: a pooled read is two hops and a
//! spawned task. The ping is there to find connections a dropped future left mid-transaction;
//! a read-only statement on a local file leaves nothing behind (a cancelled query's result
//! channel closes and sqlx's worker resets the statement), so these connections go back to
//! the set as they are.
//!
//! Opened on first use with the pool's own options (WAL, `synchronous`, foreign keys, busy
//! timeout), at most [`HELD_READERS`]; only reads go through them ([`on_reader!`]).

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::Connection;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::{StoreError, StoreResult};

/// Connections held at most: the readers of concurrent clicks on a 2-core machine are few,
/// and each open connection keeps its own page cache.
pub const HELD_READERS: usize = 4;

#[derive(Debug)]
pub(crate) struct HeldConnections {
    options: Arc<SqliteConnectOptions>,
    idle: Mutex<Vec<SqliteConnection>>,
    permits: Semaphore,
}

/// One held connection, given back to the set when dropped (no ping, no task).
pub(crate) struct Held<'a> {
    /// Always `Some` until dropped.
    conn: Option<SqliteConnection>,
    /// Set when a query failed in a way that may have broken the connection.
    broken: bool,
    home: &'a HeldConnections,
    _permit: SemaphorePermit<'a>,
}

impl HeldConnections {
    pub(crate) fn new(options: Arc<SqliteConnectOptions>) -> HeldConnections {
        HeldConnections {
            options,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(HELD_READERS),
        }
    }

    /// A connection: an idle one, else a new one while fewer than [`HELD_READERS`] are out,
    /// else the next one given back.
    pub(crate) async fn acquire(&self) -> StoreResult<Held<'_>> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Database("the store is closed".into()))?;
        let idle = self.idle_pop();
        let conn = match idle {
            Some(c) => c,
            None => sqlx::ConnectOptions::connect(&*self.options).await?,
        };
        Ok(Held {
            conn: Some(conn),
            broken: false,
            home: self,
            _permit: permit,
        })
    }

    fn idle_pop(&self) -> Option<SqliteConnection> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    /// Closes the idle connections and refuses new acquisitions.
    pub(crate) async fn close(&self) {
        self.permits.close();
        while let Some(c) = self.idle_pop() {
            let _ = c.close().await;
        }
    }
}

impl Held<'_> {
    /// Marks the connection to be closed instead of given back when the query failed in a
    /// way that may have broken it (its thread gone, an I/O error): the next acquisition
    /// opens a new one.
    pub(crate) fn discard_if_broken(&mut self, e: &sqlx::Error) {
        self.broken |= matches!(
            e,
            sqlx::Error::WorkerCrashed | sqlx::Error::Io(_) | sqlx::Error::Protocol(_)
        );
    }
}

impl Deref for Held<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        self.conn
            .as_ref()
            .expect("a held connection is present until dropped")
    }
}

impl DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn
            .as_mut()
            .expect("a held connection is present until dropped")
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        // A broken connection, or one of a closed store, is dropped (its thread stops).
        if !self.broken && !self.home.permits.is_closed() {
            self.home
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;
    use std::time::Duration;

    fn set(dir: &tempfile::TempDir) -> HeldConnections {
        let url = format!("sqlite:{}", dir.path().join("held.db").display());
        let options = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true);
        HeldConnections::new(Arc::new(options))
    }

    fn idle(set: &HeldConnections) -> usize {
        set.idle.lock().unwrap().len()
    }

    #[tokio::test]
    async fn a_connection_given_back_is_the_one_taken_next() {
        let dir = tempfile::tempdir().unwrap();
        let set = set(&dir);
        {
            let mut c = set.acquire().await.unwrap();
            // A temporary table lives only on the connection that made it.
            sqlx::query("CREATE TEMP TABLE mark (x INTEGER)")
                .execute(&mut *c)
                .await
                .unwrap();
        }
        assert_eq!(idle(&set), 1);
        let mut c = set.acquire().await.unwrap();
        assert_eq!(idle(&set), 0);
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM temp.mark")
            .fetch_one(&mut *c)
            .await
            .unwrap();
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn no_more_than_the_limit_are_out_and_the_next_waits_for_one_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let set = set(&dir);
        let mut out = Vec::new();
        for _ in 0..HELD_READERS {
            out.push(set.acquire().await.unwrap());
        }
        let waiting = tokio::time::timeout(Duration::from_millis(100), set.acquire()).await;
        assert!(
            waiting.is_err(),
            "a connection beyond the limit was handed out"
        );
        out.pop();
        let next = tokio::time::timeout(Duration::from_secs(10), set.acquire()).await;
        assert!(next.is_ok_and(|c| c.is_ok()));
    }

    #[tokio::test]
    async fn a_broken_connection_is_not_given_back_and_a_closed_set_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let set = set(&dir);
        {
            let mut c = set.acquire().await.unwrap();
            c.discard_if_broken(&sqlx::Error::RowNotFound);
        }
        assert_eq!(
            idle(&set),
            1,
            "a query's ordinary error does not break the connection"
        );
        {
            let mut c = set.acquire().await.unwrap();
            c.discard_if_broken(&sqlx::Error::WorkerCrashed);
        }
        assert_eq!(idle(&set), 0);
        set.close().await;
        assert!(set.acquire().await.is_err());
    }
}
