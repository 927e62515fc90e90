//! SQLite transactions: on a pooled connection, or on the group-commit writer's own one.
//!
//! The writer commits a batch every few milliseconds under load. On a pooled connection each
//! batch paid three trips to sqlx's connection thread besides its statements: `BEGIN
//! IMMEDIATE`, `COMMIT`, and the ping sqlx sends every connection given back to the pool
//! (sqlx-core 0.9, `return_to_pool`; see [`super::held`]). Each trip is a wake-up of another
//! thread and of the writer again, waiting for a core on a busy machine, and the answers
//! behind the batch wait with it. So the writer keeps one connection of its own
//! ([`WriterConnection`]: never given back, never pinged), and its transaction sends `BEGIN
//! IMMEDIATE` with its first statement: the batch's answers trip carries it
//! ([`SqliteTx::take_begin`]), so a batch of answers costs two trips, the answers and the
//! commit.
//!
//! A transaction on the writer's connection that ends without a commit (a job failed, the
//! batch is retried job by job) leaves the connection inside it; the next one rolls it back
//! first, and opens a new connection if that fails for any reason but "no transaction".

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Sqlite, Transaction};
use std::sync::{Arc, Mutex};

/// One SQLite write transaction.
pub(crate) enum SqliteTx {
    /// On a pooled connection, begun (`BEGIN IMMEDIATE`) when it was opened.
    Pooled(Transaction<'static, Sqlite>),
    /// On the writer's own connection.
    Writer(WriterTx),
}

impl SqliteTx {
    /// The connection, with the transaction begun: `BEGIN IMMEDIATE` is sent first if no
    /// statement has been yet.
    pub(crate) async fn conn(&mut self) -> Result<&mut SqliteConnection, sqlx::Error> {
        if self.take_begin() {
            sqlx::query("BEGIN IMMEDIATE")
                .execute(self.unbegun_conn())
                .await?;
        }
        Ok(self.unbegun_conn())
    }

    /// `true` once, when the transaction has not sent `BEGIN IMMEDIATE` yet: the caller
    /// sends it now, ahead of its first statement in the same trip, on
    /// [`SqliteTx::unbegun_conn`]. (Counted as sent from here on: if the trip fails, the
    /// next transaction rolls back whatever it began.)
    pub(crate) fn take_begin(&mut self) -> bool {
        match self {
            SqliteTx::Pooled(_) => false,
            SqliteTx::Writer(w) => {
                let unbegun = w.state == WriterTxState::Unbegun;
                if unbegun {
                    w.state = WriterTxState::Begun;
                }
                unbegun
            }
        }
    }

    /// The connection as it is, the transaction begun or not (see [`SqliteTx::take_begin`]).
    pub(crate) fn unbegun_conn(&mut self) -> &mut SqliteConnection {
        match self {
            SqliteTx::Pooled(t) => t,
            SqliteTx::Writer(w) => w.conn.as_mut().expect("present until dropped"),
        }
    }

    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            SqliteTx::Pooled(t) => t.commit().await,
            SqliteTx::Writer(mut w) => {
                if w.state == WriterTxState::Begun {
                    let conn = w.conn.as_mut().expect("present until dropped");
                    sqlx::query("COMMIT").execute(conn).await?;
                }
                w.state = WriterTxState::Ended;
                Ok(())
            }
        }
    }
}

/// The writer's connection, between its transactions.
struct Parked {
    conn: SqliteConnection,
    /// A transaction was left open on it (it ended without a commit).
    open: bool,
}

/// The group-commit writer's own SQLite connection, opened on first use with the pool's
/// options (WAL, `synchronous=FULL`, foreign keys, `secure_delete`, busy timeout).
pub(crate) struct WriterConnection {
    options: Arc<SqliteConnectOptions>,
    /// Told of every row the connection changes ([`super::delivery_cache`]).
    deliveries: Option<Arc<super::delivery_cache::DeliveryCache>>,
    parked: Arc<Mutex<Option<Parked>>>,
}

impl WriterConnection {
    pub(crate) fn new(
        options: Arc<SqliteConnectOptions>,
        deliveries: Option<Arc<super::delivery_cache::DeliveryCache>>,
    ) -> WriterConnection {
        WriterConnection {
            options,
            deliveries,
            parked: Arc::new(Mutex::new(None)),
        }
    }

    /// A transaction on the connection; nothing is sent until its first statement. One at a
    /// time: the writer runs its batches one after the other.
    pub(crate) async fn begin(&self) -> Result<WriterTx, sqlx::Error> {
        let parked = self.parked.lock().unwrap_or_else(|p| p.into_inner()).take();
        let conn = match parked {
            Some(Parked { conn, open: false }) => conn,
            Some(Parked {
                mut conn,
                open: true,
            }) => {
                match sqlx::query("ROLLBACK").execute(&mut conn).await {
                    // "cannot rollback - no transaction is active": nothing was begun.
                    Ok(_) | Err(sqlx::Error::Database(_)) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "the writer's connection failed; it opens a new one");
                        let _ = conn.close_hard().await;
                        self.connect().await?
                    }
                }
            }
            None => self.connect().await?,
        };
        Ok(WriterTx {
            conn: Some(conn),
            state: WriterTxState::Unbegun,
            home: self.parked.clone(),
        })
    }

    async fn connect(&self) -> Result<SqliteConnection, sqlx::Error> {
        let mut conn: SqliteConnection = sqlx::ConnectOptions::connect(&*self.options).await?;
        if let Some(cache) = &self.deliveries {
            super::delivery_cache::watch(&mut conn, cache.clone(), true)
                .await
                .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
        }
        Ok(conn)
    }
}

/// A transaction on the writer's connection; the connection goes back to the writer when it
/// is dropped, committed or not.
pub(crate) struct WriterTx {
    /// Always `Some` until dropped.
    conn: Option<SqliteConnection>,
    state: WriterTxState,
    home: Arc<Mutex<Option<Parked>>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WriterTxState {
    /// `BEGIN IMMEDIATE` not sent yet: nothing to commit or roll back.
    Unbegun,
    /// Begun (or its `BEGIN` sent with a trip that may have failed): open until committed.
    Begun,
    /// Committed.
    Ended,
}

impl Drop for WriterTx {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let open = self.state == WriterTxState::Begun;
            *self.home.lock().unwrap_or_else(|p| p.into_inner()) = Some(Parked { conn, open });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    async fn writer(dir: &tempfile::TempDir) -> (WriterConnection, String) {
        let url = format!("sqlite:{}", dir.path().join("w.db").display());
        let options = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        let w = WriterConnection::new(Arc::new(options), None);
        let mut tx = SqliteTx::Writer(w.begin().await.unwrap());
        exec(&mut tx, "CREATE TABLE t (x INTEGER)").await;
        tx.commit().await.unwrap();
        (w, url)
    }

    /// Runs `sql` in `tx` (beginning it first if need be).
    async fn exec(tx: &mut SqliteTx, sql: &'static str) {
        sqlx::query(sql)
            .execute(tx.conn().await.unwrap())
            .await
            .unwrap();
    }

    /// What table `t` holds, as another connection sees it.
    async fn stored(url: &str) -> Vec<i64> {
        let mut c = SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar("SELECT x FROM t")
            .fetch_all(&mut c)
            .await
            .unwrap()
    }

    /// The writer's transaction begins with its first statement, holds the write lock from
    /// there to its commit, and what it wrote is seen by others only once committed.
    #[tokio::test]
    async fn the_first_statement_begins_the_transaction_and_the_commit_ends_it() {
        let dir = tempfile::tempdir().unwrap();
        let (w, url) = writer(&dir).await;
        let mut tx = SqliteTx::Writer(w.begin().await.unwrap());
        assert!(tx.take_begin(), "nothing sent yet: the caller begins");
        sqlx::raw_sql("BEGIN IMMEDIATE; INSERT INTO t VALUES (1)")
            .execute(tx.unbegun_conn())
            .await
            .unwrap();
        assert!(!tx.take_begin(), "begun once");
        exec(&mut tx, "INSERT INTO t VALUES (2)").await;

        let mut other = SqliteConnection::connect(&format!("{url}?mode=rw"))
            .await
            .unwrap();
        sqlx::query("PRAGMA busy_timeout = 0")
            .execute(&mut other)
            .await
            .unwrap();
        assert!(
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut other)
                .await
                .is_err(),
            "the writer's open transaction holds the write lock"
        );
        assert_eq!(
            stored(&url).await.len(),
            0,
            "nothing visible before the commit"
        );
        tx.commit().await.unwrap();
        assert_eq!(stored(&url).await.len(), 2);
    }

    /// A transaction dropped without a commit (a failed batch) leaves nothing behind: the
    /// next one rolls it back, and its own writes commit.
    #[tokio::test]
    async fn a_transaction_dropped_uncommitted_is_rolled_back_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let (w, url) = writer(&dir).await;
        {
            let mut tx = SqliteTx::Writer(w.begin().await.unwrap());
            exec(&mut tx, "INSERT INTO t VALUES (1)").await;
        }
        {
            // Dropped before any statement: nothing was begun, nothing to roll back.
            let _tx = w.begin().await.unwrap();
        }
        let mut tx = SqliteTx::Writer(w.begin().await.unwrap());
        exec(&mut tx, "INSERT INTO t VALUES (2)").await;
        tx.commit().await.unwrap();
        assert_eq!(stored(&url).await, vec![2]);
    }
}
