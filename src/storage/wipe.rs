//! Emptying a sandbox database: the sandbox's "reset" clears what pulseloop stored together
//! with the emulated workspace, so the two never disagree (a round open in the database with
//! no DM on the sandbox page answers `send-now` with 409 for up to 48 hours).

use super::{Pool, Store, StoreError, StoreResult};

impl Store {
    /// Deletes every row of every table except the migrations' bookkeeping, in one
    /// transaction (foreign keys are checked at commit, when every table is empty). SQLite
    /// only: the sandbox refuses PostgreSQL, and nothing else may wipe a database.
    pub async fn wipe_sandbox_data(&self) -> StoreResult<usize> {
        let Pool::Sqlite(pool, _) = &self.pool else {
            return Err(StoreError::Conflict(
                "only a SQLite sandbox database can be wiped".into(),
            ));
        };
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("PRAGMA defer_foreign_keys = ON")
            .execute(&mut *tx)
            .await?;
        let tables: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
        )
        .fetch_all(&mut *tx)
        .await?;
        for (table,) in &tables {
            let quoted = table.replace('"', "\"\"");
            // The names come from sqlite_master, not from anyone outside.
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM \"{quoted}\"")))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(tables.len())
    }
}
