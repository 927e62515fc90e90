//! The reply relay's rows: the random handle on a comment's response row, and the mailbox
//! that holds the author's Slack id sealed (docs/anonymity.md, "Replies to anonymous
//! comments"). Storage only moves opaque text here; the keys and the sealing live in
//! `pulse::relay`.

use super::{on_pool, on_tx, Store, StoreResult, StoreTx};
use crate::domain::ids::{DeliveryId, ProgramId, RoundId};

/// The comment a reply handle names.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HandledComment {
    pub program_id: ProgramId,
    pub round_id: RoundId,
    pub allow_reply: bool,
}

impl StoreTx {
    /// The reply handle of a member's answer to `metric_key`, if it has one.
    pub async fn reply_handle_of(
        &mut self,
        delivery_id: DeliveryId,
        metric_key: &str,
    ) -> StoreResult<Option<String>> {
        let handle: Option<Option<String>> = on_tx!(self, |c| {
            sqlx::query_scalar(
                "SELECT reply_handle FROM responses WHERE delivery_id = $1 AND metric_key = $2",
            )
            .bind(delivery_id)
            .bind(metric_key)
            .fetch_optional(c)
            .await?
        });
        Ok(handle.flatten())
    }

    /// Sets (or clears) the reply handle of a member's answer, with `allow_reply` to match.
    pub async fn set_reply_handle(
        &mut self,
        delivery_id: DeliveryId,
        metric_key: &str,
        handle: Option<&str>,
    ) -> StoreResult<()> {
        on_tx!(self, |c| {
            sqlx::query(
                "UPDATE responses SET reply_handle = $3, allow_reply = $4
                 WHERE delivery_id = $1 AND metric_key = $2",
            )
            .bind(delivery_id)
            .bind(metric_key)
            .bind(handle)
            .bind(handle.is_some())
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// The opening time of a round: a mailbox row carries it instead of the answer's time.
    pub async fn round_opened_at(&mut self, round_id: RoundId) -> StoreResult<i64> {
        Ok(on_tx!(self, |c| {
            sqlx::query_scalar("SELECT opened_at FROM rounds WHERE id = $1")
                .bind(round_id)
                .fetch_one(c)
                .await?
        }))
    }

    pub async fn put_mailbox(
        &mut self,
        lookup: &str,
        sealed: &str,
        created_at: i64,
    ) -> StoreResult<()> {
        on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO reply_mailboxes (lookup, sealed, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (lookup) DO UPDATE SET sealed = excluded.sealed",
            )
            .bind(lookup)
            .bind(sealed)
            .bind(created_at)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Deletes mailboxes made for rounds opened before `before_ms` (Unix milliseconds).
    pub async fn prune_mailboxes(&mut self, before_ms: i64) -> StoreResult<u64> {
        Ok(on_tx!(self, |c| {
            sqlx::query("DELETE FROM reply_mailboxes WHERE created_at < $1")
                .bind(before_ms)
                .execute(c)
                .await?
                .rows_affected()
        }))
    }

    pub async fn delete_mailbox(&mut self, lookup: &str) -> StoreResult<()> {
        on_tx!(self, |c| {
            sqlx::query("DELETE FROM reply_mailboxes WHERE lookup = $1")
                .bind(lookup)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(())
    }
}

impl Store {
    /// The questions of a delivery whose answers allow replies.
    pub async fn replies_allowed(&self, delivery_id: DeliveryId) -> StoreResult<Vec<String>> {
        Ok(on_pool!(self, |c| {
            sqlx::query_scalar(
                "SELECT metric_key FROM responses WHERE delivery_id = $1 AND allow_reply
                 ORDER BY metric_key",
            )
            .bind(delivery_id)
            .fetch_all(c)
            .await?
        }))
    }

    /// The comment that carries `handle` (any round, sealed or not).
    pub async fn comment_by_handle(&self, handle: &str) -> StoreResult<Option<HandledComment>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT r.program_id, r.id AS round_id, s.allow_reply
                 FROM responses s JOIN rounds r ON r.id = s.round_id
                 WHERE s.reply_handle = $1 LIMIT 1",
            )
            .bind(handle)
            .fetch_optional(p)
            .await?
        }))
    }

    /// The sealed recipient of a mailbox, found by its lookup.
    pub async fn mailbox(&self, lookup: &str) -> StoreResult<Option<String>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar("SELECT sealed FROM reply_mailboxes WHERE lookup = $1")
                .bind(lookup)
                .fetch_optional(p)
                .await?
        }))
    }

    /// The reply handle of a stored comment (a `responses` row), for the digest's "Reply"
    /// button: `None` unless its author allowed replies.
    pub async fn reply_handle_of_response(&self, response_id: i64) -> StoreResult<Option<String>> {
        let handle: Option<Option<String>> = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT reply_handle FROM responses WHERE id = $1 AND allow_reply")
                .bind(response_id)
                .fetch_optional(p)
                .await?
        });
        Ok(handle.flatten())
    }
}
