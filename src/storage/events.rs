//! Slack event de-duplication: the first delivery of an `event_id` wins.

use chrono::{DateTime, Utc};

use super::{on_pool, to_ms, Store, StoreResult};

impl Store {
    /// Records an event id; `true` when it is new, `false` for a retry of one already seen.
    pub async fn record_event_once(
        &self,
        event_id: &str,
        event_type: &str,
        team_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO slack_events (event_id, event_type, team_id, received_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(event_id)
            .bind(event_type)
            .bind(team_id)
            .bind(to_ms(now))
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }
}
