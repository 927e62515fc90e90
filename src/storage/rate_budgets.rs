//! Rate budgets shared by every replica through the database (table `rate_budgets`): with
//! three replicas each keeping its own limiter, Slack would see three times its limits.
//!
//! Each budget is a generic cell rate algorithm row: `tat_ms`, the theoretical arrival time of
//! the next call, and `ready_ms = tat_ms - tolerance`, from when a call may go. Taking a
//! budget is one conditional upsert; a call needing several budgets (a post: the method, the
//! workspace ceiling, the channel) takes them in one transaction, in key order (no deadlock
//! between replicas), all or none.

use chrono::{DateTime, Utc};

use super::{on_tx, to_ms, Store, StoreResult};

/// One budget a call draws from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub key: String,
    /// Milliseconds between calls at the allowed rate.
    pub interval_ms: i64,
    /// How many calls may go back to back from a full budget (at least 1).
    pub burst: i64,
}

impl Budget {
    fn tolerance_ms(&self) -> i64 {
        (self.burst.max(1) - 1) * self.interval_ms
    }
}

impl Store {
    /// Takes one call's worth of every budget in `budgets` at `now`, or none of them:
    /// `Err(ready_at)` says when all of them will have room.
    pub async fn take_budgets(
        &self,
        budgets: &[Budget],
        now: DateTime<Utc>,
    ) -> StoreResult<Result<(), DateTime<Utc>>> {
        if budgets.is_empty() {
            return Ok(Ok(()));
        }
        let mut sorted: Vec<&Budget> = budgets.iter().collect();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        let now_ms = to_ms(now);
        let mut tx = self.begin().await?;
        let mut denied_until: Option<i64> = None;
        for b in sorted {
            let taken: Option<i64> = on_tx!(tx, |c| {
                sqlx::query_scalar(
                    "INSERT INTO rate_budgets (budget_key, tat_ms, ready_ms) VALUES ($1, $2 + $3, $2 + $3 - $4)
                     ON CONFLICT (budget_key) DO UPDATE SET
                        tat_ms = (CASE WHEN rate_budgets.tat_ms > $2 THEN rate_budgets.tat_ms ELSE $2 END) + $3,
                        ready_ms = (CASE WHEN rate_budgets.tat_ms > $2 THEN rate_budgets.tat_ms ELSE $2 END) + $3 - $4
                     WHERE rate_budgets.ready_ms <= $2
                     RETURNING tat_ms",
                )
                .bind(&b.key)
                .bind(now_ms)
                .bind(b.interval_ms.max(1))
                .bind(b.tolerance_ms())
                .fetch_optional(c)
                .await?
            });
            if taken.is_none() {
                let ready: i64 = on_tx!(tx, |c| {
                    sqlx::query_scalar("SELECT ready_ms FROM rate_budgets WHERE budget_key = $1")
                        .bind(&b.key)
                        .fetch_one(c)
                        .await?
                });
                denied_until = Some(denied_until.map_or(ready, |d| d.max(ready)));
            }
        }
        match denied_until {
            Some(ready) => {
                drop(tx);
                Ok(Err(super::from_ms(ready.max(now_ms + 1))))
            }
            None => {
                tx.commit().await?;
                Ok(Ok(()))
            }
        }
    }

    /// Pushes a budget's next call to `until` at the earliest (Slack said 429: its pause
    /// holds for every replica).
    pub async fn pause_budget(&self, key: &str, until: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        on_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO rate_budgets (budget_key, tat_ms, ready_ms) VALUES ($1, $2, $2)
                 ON CONFLICT (budget_key) DO UPDATE SET
                    tat_ms = CASE WHEN rate_budgets.tat_ms > $2 THEN rate_budgets.tat_ms ELSE $2 END,
                    ready_ms = CASE WHEN rate_budgets.ready_ms > $2 THEN rate_budgets.ready_ms ELSE $2 END",
            )
            .bind(key)
            .bind(to_ms(until))
            .execute(c)
            .await?
            .rows_affected()
        });
        tx.commit().await
    }
}
