//! Workspaces the app was installed into with OAuth v2 (table `installations`), the OAuth
//! states already used (`oauth_states`), and which workspace the outbox rows being written
//! belong to.
//!
//! The bot token is stored sealed (see `slack::oauth::TokenCipher`); this module only moves
//! the sealed text. A workspace's rows in the outbox carry its `team_id`; '' is the default
//! installation (`SLACK_BOT_TOKEN` or the sandbox). Which workspace a write is for is set
//! around the work done for it ([`for_team`]): an inbound request routed to an installation,
//! a program's work. [`current_team`] reads it where the row is written, and a grouped write
//! carries its caller's workspace to the writer task (`group_commit`). A DM of a delivery
//! falls back to the workspace of its program (`programs.team_id`) in SQL.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::{on_pool, on_tx, to_ms, Millis, OptMillis, Store, StoreResult, StoreTx};

tokio::task_local! {
    static CURRENT_TEAM: String;
}

/// Runs `work` with the outbox rows it writes belonging to `team_id` ('' or `None`: the
/// default installation).
pub async fn for_team<F: Future>(team_id: Option<String>, work: F) -> F::Output {
    CURRENT_TEAM.scope(team_id.unwrap_or_default(), work).await
}

/// The workspace the current work writes for; '' for the default installation.
pub fn current_team() -> String {
    CURRENT_TEAM.try_with(String::clone).unwrap_or_default()
}

/// A new or renewed installation.
#[derive(Debug, Clone)]
pub struct NewInstallation {
    pub team_id: String,
    pub team_name: String,
    pub app_id: Option<String>,
    pub bot_user_id: String,
    pub scopes: String,
    /// The sealed bot token, never the token itself.
    pub token_sealed: String,
    pub installer_id: Option<String>,
}

/// A stored installation.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Installation {
    pub team_id: String,
    pub team_name: String,
    pub app_id: Option<String>,
    pub bot_user_id: String,
    pub scopes: String,
    pub token_sealed: String,
    pub installer_id: Option<String>,
    #[sqlx(try_from = "Millis")]
    pub installed_at: DateTime<Utc>,
    #[sqlx(try_from = "OptMillis")]
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<String>,
}

/// The table is the first migration's (`bot_token_enc`, `installed_by`, nullable details).
const COLUMNS: &str = "team_id, COALESCE(team_name, team_id) AS team_name, app_id, \
    COALESCE(bot_user_id, '') AS bot_user_id, COALESCE(scopes, '') AS scopes, \
    bot_token_enc AS token_sealed, installed_by AS installer_id, installed_at, revoked_at, \
    revoked_reason";

/// What routing a request needs of a workspace's installation: the sealed token, and
/// whether (and why) it was revoked.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InstallationRoute {
    pub token_sealed: String,
    #[sqlx(try_from = "OptMillis")]
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<String>,
}

/// Workspaces' [`InstallationRoute`]s (or the absence of an installation) already read, so
/// that a request naming its workspace costs no read on SQLite (docs/performance.md).
///
/// Exact on SQLite: one process writes the database, and every installation write in it
/// goes through a [`StoreTx`] whose commit calls [`RouteCache::invalidate`]. An entry holds
/// the epoch taken *before* its read, so a read that raced a commit is never trusted. Not
/// used on PostgreSQL, where another replica may install or revoke a workspace.
#[derive(Default)]
pub struct RouteCache {
    epoch: AtomicU64,
    entries: Mutex<HashMap<String, (u64, Option<InstallationRoute>)>>,
}

/// Workspaces remembered at most; past it the cache starts again (signed requests only
/// reach it, so this bounds memory, not an attack).
const ROUTE_CACHE_MAX: usize = 4096;

impl std::fmt::Debug for RouteCache {
    // Not the entries: they hold sealed tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteCache")
            .field("epoch", &self.epoch.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl RouteCache {
    fn get(&self, team_id: &str) -> Result<Option<InstallationRoute>, u64> {
        let epoch = self.epoch.load(Ordering::Acquire);
        let entries = self.entries.lock().expect("route cache lock");
        match entries.get(team_id) {
            Some((at, route)) if *at == epoch => Ok(route.clone()),
            _ => Err(epoch),
        }
    }

    fn put(&self, team_id: &str, read_at: u64, route: Option<InstallationRoute>) {
        let mut entries = self.entries.lock().expect("route cache lock");
        if entries.len() >= ROUTE_CACHE_MAX {
            entries.clear();
        }
        entries.insert(team_id.to_string(), (read_at, route));
    }

    /// Forgets everything read so far: an installation was written and committed.
    pub fn invalidate(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.lock().expect("route cache lock").clear();
    }
}

impl Store {
    /// The routing facts of `team_id`'s installation (`None`: not installed). Served from
    /// [`RouteCache`] on SQLite; read each time on PostgreSQL.
    pub async fn installation_route(
        &self,
        team_id: &str,
    ) -> StoreResult<Option<InstallationRoute>> {
        const SQL: &str = "SELECT bot_token_enc AS token_sealed, revoked_at, revoked_reason \
                           FROM installations WHERE team_id = $1";
        match &self.pool {
            super::Pool::Sqlite(p, _) => {
                let epoch = match self.install_routes.get(team_id) {
                    Ok(route) => return Ok(route),
                    Err(epoch) => epoch,
                };
                let route: Option<InstallationRoute> =
                    sqlx::query_as(SQL).bind(team_id).fetch_optional(p).await?;
                self.install_routes.put(team_id, epoch, route.clone());
                Ok(route)
            }
            super::Pool::Postgres(p) => {
                Ok(sqlx::query_as(SQL).bind(team_id).fetch_optional(p).await?)
            }
        }
    }

    /// Stores an installation, replacing an earlier one of the same workspace (a reinstall:
    /// new token, new scopes, no longer revoked).
    pub async fn save_installation(
        &self,
        i: &NewInstallation,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        on_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO installations (team_id, team_name, app_id, bot_user_id, scopes,
                    bot_token_enc, installed_by, installed_at, revoked_at, revoked_reason)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL)
                 ON CONFLICT (team_id) DO UPDATE SET team_name = $2, app_id = $3,
                    bot_user_id = $4, scopes = $5, bot_token_enc = $6, installed_by = $7,
                    installed_at = $8, revoked_at = NULL, revoked_reason = NULL",
            )
            .bind(&i.team_id)
            .bind(&i.team_name)
            .bind(&i.app_id)
            .bind(&i.bot_user_id)
            .bind(&i.scopes)
            .bind(&i.token_sealed)
            .bind(&i.installer_id)
            .bind(to_ms(now))
            .execute(c)
            .await?
            .rows_affected()
        });
        tx.installations_changed = true;
        tx.commit().await
    }

    /// The installation of `team_id`, revoked or not.
    pub async fn installation(&self, team_id: &str) -> StoreResult<Option<Installation>> {
        let sql = format!("SELECT {COLUMNS} FROM installations WHERE team_id = $1");
        Ok(on_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(team_id)
                .fetch_optional(p)
                .await?
        }))
    }

    /// Every installation, oldest first.
    pub async fn installations(&self) -> StoreResult<Vec<Installation>> {
        let sql = format!("SELECT {COLUMNS} FROM installations ORDER BY installed_at, team_id");
        Ok(on_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .fetch_all(p)
                .await?
        }))
    }

    /// Uses the OAuth state `nonce` once: `true` the first time, `false` for a replay.
    /// States expired for a day are pruned on the way.
    pub async fn use_oauth_state(
        &self,
        nonce: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        on_tx!(tx, |c| {
            sqlx::query("DELETE FROM oauth_states WHERE expires_at < $1")
                .bind(to_ms(now - chrono::Duration::days(1)))
                .execute(c)
                .await?
                .rows_affected()
        });
        let n = on_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO oauth_states (nonce, expires_at) VALUES ($1, $2)
                 ON CONFLICT (nonce) DO NOTHING",
            )
            .bind(nonce)
            .bind(to_ms(expires_at))
            .execute(c)
            .await?
            .rows_affected()
        });
        tx.commit().await?;
        Ok(n == 1)
    }
}

impl StoreTx {
    /// Records the workspace a program runs in (`team_id` in its file; `None`: the default
    /// installation). A DM of its deliveries goes out with that workspace's token.
    pub async fn set_program_team(
        &mut self,
        program_id: &str,
        team_id: Option<&str>,
    ) -> StoreResult<()> {
        on_tx!(self, |c| {
            sqlx::query("UPDATE programs SET team_id = $1 WHERE id = $2")
                .bind(team_id)
                .bind(program_id)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Marks the installation of `team_id` revoked for `reason` (`app_uninstalled`,
    /// `tokens_revoked`) and parks its workspace's pending outbox rows as cancelled, saying so. Rows in flight finish
    /// (the worker refuses to call with a revoked installation's token). Returns whether an
    /// installation was revoked now (`false`: none, or revoked already) and how many rows were
    /// parked.
    pub async fn revoke_installation(
        &mut self,
        team_id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<(bool, u64)> {
        self.installations_changed = true;
        let revoked = on_tx!(self, |c| {
            sqlx::query(
                "UPDATE installations SET revoked_at = $1, revoked_reason = $2
                 WHERE team_id = $3 AND revoked_at IS NULL",
            )
            .bind(to_ms(now))
            .bind(reason)
            .bind(team_id)
            .execute(c)
            .await?
            .rows_affected()
        });
        let parked = self
            .park_team_outbox(
                team_id,
                &format!("workspace_revoked: {team_id} ({reason}); not sent"),
            )
            .await?;
        Ok((revoked == 1, parked))
    }

    /// Cancels the pending outbox rows of `team_id`, keeping `reason`.
    pub async fn park_team_outbox(&mut self, team_id: &str, reason: &str) -> StoreResult<u64> {
        Ok(on_tx!(self, |c| {
            sqlx::query(
                "UPDATE outbox SET status = 'cancelled', last_error = $1, lease_until = NULL,
                    leased_by = NULL
                 WHERE team_id = $2 AND status = 'pending'",
            )
            .bind(reason)
            .bind(team_id)
            .execute(c)
            .await?
            .rows_affected()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(token: &str) -> Option<InstallationRoute> {
        Some(InstallationRoute {
            token_sealed: token.into(),
            revoked_at: None,
            revoked_reason: None,
        })
    }

    #[test]
    fn a_read_that_raced_an_installation_commit_is_not_trusted() {
        let cache = RouteCache::default();
        let Err(before) = cache.get("T1") else {
            panic!("nothing read yet")
        };
        // A commit lands while the read is in flight: what it read may be the old row.
        cache.invalidate();
        cache.put("T1", before, route("old"));
        assert!(cache.get("T1").is_err(), "read again, not served");

        let Err(now) = cache.get("T1") else {
            panic!("still not trusted")
        };
        cache.put("T1", now, route("new"));
        assert_eq!(cache.get("T1"), Ok(route("new")));
        cache.put("T2", now, None);
        assert_eq!(cache.get("T2"), Ok(None), "not installed is remembered too");
        cache.invalidate();
        assert!(cache.get("T1").is_err() && cache.get("T2").is_err());
    }
}
