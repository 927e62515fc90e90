//! What Slack sent us, remembered: event ids (de-duplication, recorded in the same
//! transaction as the event's effects), signatures of signed requests (replays), and the
//! workspaces this database has served (the sandbox refuses such a database).

use chrono::{DateTime, Utc};

use slack_facts::ids::{TeamId, UserId};

use super::members::ProfileUpdate;
use super::{on_pool, on_tx, to_ms, Store, StoreResult, StoreTx};

/// How long a seen signature is kept after its signed timestamp: Slack's 5-minute window in
/// either direction, plus a margin for clock skew between replicas.
const SIGNATURE_RETENTION_MS: i64 = 15 * 60 * 1000;
/// Expired signatures are pruned at most this often per process (on a claim).
const SIGNATURE_PRUNE_EVERY_MS: i64 = 60 * 1000;

impl StoreTx {
    /// Records an event id; `true` when it is new, `false` for a retry of one already seen.
    /// The caller applies the event's effects in this same transaction: if they fail, the
    /// record rolls back with them and Slack's retry is handled.
    pub async fn record_event_once(
        &mut self,
        event_id: &str,
        event_type: &str,
        team_id: Option<&TeamId>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO slack_events (event_id, event_type, team_id, received_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(event_id)
            .bind(event_type)
            .bind(team_id)
            .bind(to_ms(now))
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// A `user_change` event's effect: the member's Slack profile as the event carries it.
    pub async fn apply_profile_update(
        &mut self,
        slack_user_id: &UserId,
        u: &ProfileUpdate,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        on_tx!(self, |c| {
            sqlx::query(
                "UPDATE members SET slack_tz = $1, slack_deleted = $2, is_bot = $3, is_restricted = $4,
                    status_text = $5, status_emoji = $6, profile_refreshed_at = $7, slack_problem = NULL
                 WHERE slack_user_id = $8",
            )
            .bind(&u.tz)
            .bind(u.deleted)
            .bind(u.is_bot)
            .bind(u.is_restricted)
            .bind(&u.status_text)
            .bind(&u.status_emoji)
            .bind(to_ms(now))
            .bind(slack_user_id)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Remembers a workspace served with a real token (idempotent).
    pub async fn record_workspace(
        &mut self,
        team_id: &TeamId,
        source: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO workspaces (team_id, source, first_seen_at) VALUES ($1, $2, $3)
                 ON CONFLICT (team_id) DO NOTHING",
            )
            .bind(team_id)
            .bind(source)
            .bind(to_ms(now))
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }
}

impl Store {
    /// Remembers a workspace served with a real token (idempotent).
    pub async fn record_workspace(
        &self,
        team_id: &TeamId,
        source: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.record_workspace(team_id, source, now).await?;
        tx.commit().await
    }

    /// The workspaces this database has served with a real token.
    pub async fn known_workspaces(&self) -> StoreResult<Vec<TeamId>> {
        let rows: Vec<(TeamId,)> = on_pool!(self, |p| {
            sqlx::query_as("SELECT team_id FROM workspaces ORDER BY first_seen_at")
                .fetch_all(p)
                .await?
        });
        Ok(rows.into_iter().map(|(t,)| t).collect())
    }

    /// Claims a verified request signature. `true` the first time; `false` when the same
    /// signed request was seen before (a replay). One statement, so two replicas receiving
    /// the same replay at once cannot both accept it.
    pub async fn claim_signature(
        &self,
        signature: &str,
        signed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.prune_signatures_now_and_then(now).await?;
        let done = on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO seen_signatures (signature, request_ts) VALUES ($1, $2)
                 ON CONFLICT (signature) DO NOTHING",
            )
            .bind(signature)
            .bind(to_ms(signed_at))
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Releases a claimed signature whose request failed, so Slack's retry of the very same
    /// request (or the user's second click) is not mistaken for a replay.
    pub async fn forget_signature(&self, signature: &str) -> StoreResult<()> {
        on_pool!(self, |p| {
            sqlx::query("DELETE FROM seen_signatures WHERE signature = $1")
                .bind(signature)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Drops signatures too old to be replayed (their timestamp is outside the window). An
    /// indexed range delete that usually finds a row or two, so it runs with every claim.
    /// Deletes signatures past their retention, at most once a minute per process, so a
    /// signed request costs one write (its claim), not two.
    pub(crate) async fn prune_signatures_now_and_then(
        &self,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        use std::sync::atomic::Ordering;
        let now_ms = to_ms(now);
        let last = self.signatures_pruned_at.load(Ordering::Relaxed);
        if (now_ms - last).abs() < SIGNATURE_PRUNE_EVERY_MS
            || self
                .signatures_pruned_at
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return Ok(());
        }
        on_pool!(self, |p| {
            sqlx::query("DELETE FROM seen_signatures WHERE request_ts < $1")
                .bind(now_ms - SIGNATURE_RETENTION_MS)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(())
    }
}
