//! Outbox workers: claim due rows, respect rate limits, call Slack, record the outcome.
//!
//! `run_once` is one step (claim a batch, process it) so tests drain the queue step by step;
//! `run` loops it until shutdown. On shutdown a worker stops claiming, finishes the request in
//! flight and hands the rest of its batch back as pending.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::watch;

use super::client::{posted, ErrorClass, SlackClient, SlackError};
use super::rate_limit::RateLimiter;
use crate::clock::SharedClock;
use crate::config::settings::OutboxSettings;
use crate::storage::outbox::OutboxRow;
use crate::storage::{Store, StoreResult};

/// How long a follower (chat.update, thread reply) waits for the message it refers to before
/// giving up.
const MAX_WAIT_FOR_TARGET: i64 = 24 * 3600;
const TARGET_RECHECK_SECONDS: i64 = 2;

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StepOutcome {
    pub claimed: usize,
    pub sent: usize,
    pub retried: usize,
    pub deferred: usize,
    pub failed: usize,
    pub released: usize,
}

#[derive(Clone)]
pub struct OutboxWorker {
    id: String,
    store: Store,
    client: SlackClient,
    limiter: Arc<RateLimiter>,
    clock: SharedClock,
    settings: OutboxSettings,
}

impl OutboxWorker {
    pub fn new(
        store: Store,
        client: SlackClient,
        limiter: Arc<RateLimiter>,
        clock: SharedClock,
        settings: OutboxSettings,
    ) -> Self {
        Self {
            id: format!("worker-{}", uuid::Uuid::new_v4().simple()),
            store,
            client,
            limiter,
            clock,
            settings,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Claims one batch and processes it. `stop` is checked between rows.
    pub async fn run_once(&self) -> StoreResult<StepOutcome> {
        self.step(None).await
    }

    async fn step(&self, stop: Option<&watch::Receiver<bool>>) -> StoreResult<StepOutcome> {
        let now = self.clock.now();
        let lease = Duration::seconds(self.settings.lease_seconds as i64);
        let batch = self
            .store
            .claim_outbox(&self.id, now, lease, i64::from(self.settings.batch_size))
            .await?;
        let mut outcome = StepOutcome {
            claimed: batch.len(),
            ..Default::default()
        };
        for row in batch {
            if stop.is_some_and(|s| *s.borrow()) {
                self.store
                    .retry_outbox(row.id, &self.id, self.clock.now(), None, false)
                    .await?;
                outcome.released += 1;
                continue;
            }
            self.process(row, &mut outcome).await?;
        }
        Ok(outcome)
    }

    async fn process(&self, row: OutboxRow, outcome: &mut StepOutcome) -> StoreResult<()> {
        let now = self.clock.now();
        let mut payload = row.payload.clone();

        if let Some(target) = &row.target_key {
            match self.store.message_location(target).await? {
                Some((channel, ts)) => fill_target(&row.method, &mut payload, &channel, &ts),
                None => {
                    let gave_up = now - row.created_at > Duration::seconds(MAX_WAIT_FOR_TARGET);
                    if gave_up || self.store.message_post_failed(target).await? {
                        let reason = format!("target_not_posted: {target} was never posted");
                        self.store
                            .fail_outbox(row.id, &self.id, now, &reason, false)
                            .await?;
                        outcome.failed += 1;
                    } else {
                        let later = now + Duration::seconds(TARGET_RECHECK_SECONDS);
                        self.store
                            .retry_outbox(row.id, &self.id, later, None, false)
                            .await?;
                        outcome.deferred += 1;
                    }
                    return Ok(());
                }
            }
        }

        let channel = row.channel_key.clone().or_else(|| {
            payload
                .get("channel")
                .and_then(Value::as_str)
                .map(String::from)
        });
        if let Err(ready_at) = self
            .limiter
            .try_acquire(&row.method, channel.as_deref(), now)
        {
            self.store
                .retry_outbox(row.id, &self.id, ready_at, None, false)
                .await?;
            outcome.deferred += 1;
            return Ok(());
        }

        let result = self.client.call(&row.method, &payload).await;
        let now = self.clock.now();
        match result {
            Ok(body) => {
                let location = if row.method == "chat.postMessage" {
                    posted(&body).ok()
                } else {
                    None
                };
                let stored = compact_result(&body);
                self.store
                    .complete_outbox(
                        row.id,
                        &self.id,
                        now,
                        &stored,
                        location
                            .as_ref()
                            .map(|l| (l.channel.as_str(), l.ts.as_str())),
                    )
                    .await?;
                outcome.sent += 1;
            }
            Err(err) => self.on_error(&row, err, now, outcome).await?,
        }
        Ok(())
    }

    async fn on_error(
        &self,
        row: &OutboxRow,
        err: SlackError,
        now: DateTime<Utc>,
        outcome: &mut StepOutcome,
    ) -> StoreResult<()> {
        match err.class() {
            ErrorClass::RateLimited => {
                let wait = match &err {
                    SlackError::RateLimited { retry_after } => {
                        Duration::from_std(*retry_after).unwrap_or(Duration::seconds(1))
                    }
                    _ => Duration::seconds(1),
                };
                let until = now + wait;
                self.limiter.pause(&row.method, until);
                tracing::warn!(method = %row.method, retry_after_s = wait.num_seconds(), "slack rate limited; rescheduled");
                self.store
                    .retry_outbox(row.id, &self.id, until, Some("ratelimited"), false)
                    .await?;
                outcome.deferred += 1;
            }
            ErrorClass::Transient => {
                let attempts = row.attempts + 1;
                if attempts >= i64::from(self.settings.max_attempts) {
                    let reason = format!("gave up after {attempts} attempts: {err}");
                    tracing::error!(method = %row.method, key = %row.dedupe_key, %reason, "outbox message failed");
                    self.store
                        .fail_outbox(row.id, &self.id, now, &reason, true)
                        .await?;
                    outcome.failed += 1;
                } else {
                    let next = now + self.backoff(attempts);
                    tracing::warn!(method = %row.method, attempts, error = %err, "slack call failed; will retry");
                    self.store
                        .retry_outbox(row.id, &self.id, next, Some(&err.to_string()), true)
                        .await?;
                    outcome.retried += 1;
                }
            }
            ErrorClass::Permanent => {
                tracing::warn!(method = %row.method, key = %row.dedupe_key, error = %err, "slack refused; failed for good");
                self.store
                    .fail_outbox(row.id, &self.id, now, &err.to_string(), true)
                    .await?;
                outcome.failed += 1;
            }
        }
        Ok(())
    }

    /// Exponential back-off with jitter: between half and all of `base * 2^(n-1)`, capped.
    fn backoff(&self, attempts: i64) -> Duration {
        let base = self.settings.backoff_base_ms.max(1) as f64;
        let cap = (self.settings.backoff_max_seconds.max(1) * 1000) as f64;
        let exp = base * 2f64.powi((attempts - 1).clamp(0, 30) as i32);
        let full = exp.min(cap);
        let jittered = full / 2.0 + fastrand::f64() * full / 2.0;
        Duration::milliseconds(jittered as i64)
    }

    /// Loops `step` until `shutdown` turns true; sleeps `poll_interval` when idle.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let idle = std::time::Duration::from_millis(self.settings.poll_interval_ms.max(10));
        tracing::debug!(worker = %self.id, "outbox worker started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            match self.step(Some(&shutdown)).await {
                Ok(outcome) if outcome.claimed > 0 && outcome.deferred < outcome.claimed => {
                    continue
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "outbox step failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(idle) => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::debug!(worker = %self.id, "outbox worker stopped");
    }
}

/// A follower row gets the location of the message it refers to.
fn fill_target(method: &str, payload: &mut Value, channel: &str, ts: &str) {
    if let Some(obj) = payload.as_object_mut() {
        obj.insert("channel".into(), json!(channel));
        if method == "chat.postMessage" {
            obj.insert("thread_ts".into(), json!(ts));
        } else {
            obj.insert("ts".into(), json!(ts));
        }
    }
}

/// What is worth keeping of Slack's answer: ids and locations, not the echoed message.
fn compact_result(body: &Value) -> Value {
    let mut kept = serde_json::Map::new();
    for key in ["channel", "ts", "message_ts", "file_id"] {
        if let Some(v) = body.get(key) {
            kept.insert(key.into(), v.clone());
        }
    }
    if let Some(id) = body.pointer("/view/id") {
        kept.insert("view_id".into(), id.clone());
    }
    Value::Object(kept)
}
