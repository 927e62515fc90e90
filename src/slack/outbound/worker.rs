//! Outbox workers: claim due rows, respect rate limits, call Slack, record the outcome.
//!
//! `run_once` is one step (claim a batch, process it) so tests drain the queue step by step;
//! `run` loops it until shutdown. On shutdown a worker stops claiming, finishes the request in
//! flight and hands the rest of its batch back as pending.
//!
//! Never twice: a claim is only a reservation. Right before each call the worker extends its
//! lease with a conditional update (`begin_outbox_attempt`) and skips the row if another
//! worker holds it now; that update also marks the attempt as started. Once Slack accepted a
//! call, the completion write is retried with back-off and never answered by posting again.
//! A post found with its attempt mark still set (timeout, connection dropped after sending,
//! process died mid-call) is looked up in the conversation by the key in its message metadata
//! and adopted if it is there; only otherwise is it posted again.

use chrono::{DateTime, Duration, Utc};
use futures_util::FutureExt;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::client::{
    delivery_key_of, delivery_metadata, posted, ErrorClass, Permit, PostedMessage, SlackClient,
    SlackError,
};
use super::rate_limit::{shared_budgets, team_budget_key};
use super::response_url;
use super::teams::{TeamRoute, Teams};
use crate::clock::SharedClock;
use crate::config::settings::OutboxSettings;
use crate::storage::outbox::OutboxRow;
use crate::storage::{Backend, Store, StoreResult};

/// How long a follower (chat.update, thread reply) waits for the message it refers to before
/// giving up.
const MAX_WAIT_FOR_TARGET: i64 = 24 * 3600;
const TARGET_RECHECK_SECONDS: i64 = 2;

/// How often the completion write is tried after Slack accepted a call, and the first pause
/// between tries (doubled each time): about 3 s in all, well inside the call's lease.
const COMPLETION_TRIES: u32 = 6;
const COMPLETION_FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// What a call's lease covers beyond the request timeout: the completion write and its
/// retries, and clock differences between replicas.
const CALL_LEASE_MARGIN_SECONDS: i64 = 30;

/// Messages posted this long before the first attempt are not looked at by the look-up (the
/// margin covers clock differences between us and Slack).
const LOOKUP_MARGIN_SECONDS: i64 = 300;
/// Pages of conversation history read when looking for a post with an unknown outcome.
const LOOKUP_MAX_PAGES: usize = 5;

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StepOutcome {
    pub claimed: usize,
    pub sent: usize,
    pub retried: usize,
    pub deferred: usize,
    pub failed: usize,
    pub released: usize,
    /// Rows skipped because their lease was lost before the call (another worker has them).
    pub lost: usize,
    /// Posts whose earlier outcome was unknown and that were found in the conversation
    /// (counted in `sent` too).
    pub adopted: usize,
    /// Calls Slack accepted whose completion could not be written; the row keeps its attempt
    /// mark, so whoever claims it next looks the message up instead of posting again.
    pub unconfirmed: usize,
}

impl StepOutcome {
    /// Adds what another part of the same step did.
    fn absorb(&mut self, other: StepOutcome) {
        self.claimed += other.claimed;
        self.sent += other.sent;
        self.retried += other.retried;
        self.deferred += other.deferred;
        self.failed += other.failed;
        self.released += other.released;
        self.lost += other.lost;
        self.adopted += other.adopted;
        self.unconfirmed += other.unconfirmed;
    }
}

/// The result recorded for a DM update a response_url took.
fn responded() -> Value {
    json!({ "via": "response_url" })
}

/// One line per message Slack accepted; never the text, never whom a reminder went to (that
/// would tell who had not answered an anonymous pulse).
fn log_sent(row: &OutboxRow) {
    tracing::info!(event = "dm_sent", method = %row.method, kind = row.kind.as_str(),
        outbox_id = row.id, attempts = row.attempts, "message sent to Slack");
}

/// A DM update that goes to a click's response_url first.
fn is_response_url_update(row: &OutboxRow) -> bool {
    row.method == "chat.update" && row.payload.get(response_url::FIELD).is_some()
}

#[derive(Clone)]
pub struct OutboxWorker {
    id: String,
    store: Store,
    /// Carries the process's rate limiter for this workspace: a clone of the one client.
    client: SlackClient,
    clock: SharedClock,
    settings: OutboxSettings,
    /// Every workspace's client: a row of an installed workspace goes out with its token.
    /// `None`: every row goes with `client`.
    teams: Option<Teams>,
    /// The workspace of the row being sent ('' for the default installation): its shared
    /// budgets are its own.
    team_id: String,
}

impl OutboxWorker {
    pub fn new(
        store: Store,
        client: SlackClient,
        clock: SharedClock,
        settings: OutboxSettings,
    ) -> Self {
        Self {
            id: format!("worker-{}", uuid::Uuid::new_v4().simple()),
            store,
            client,
            clock,
            settings,
            teams: None,
            team_id: String::new(),
        }
    }

    /// Sends each row with its workspace's token (see [`Teams`]).
    pub fn with_teams(mut self, teams: Teams) -> Self {
        self.teams = Some(teams);
        self
    }

    /// This worker for a row of workspace `team_id`: its client, or `None` when nothing may
    /// be sent for that workspace (the row is failed with the reason, no call is made).
    async fn for_team(
        &self,
        l: Leased<'_>,
        outcome: &mut StepOutcome,
    ) -> StoreResult<Option<OutboxWorker>> {
        let Some(teams) = &self.teams else {
            return Ok(Some(self.clone()));
        };
        let reason = match teams.route(&l.row.team_id).await? {
            TeamRoute::Default => return Ok(Some(self.clone())),
            TeamRoute::Installed { team_id, client } => {
                return Ok(Some(OutboxWorker {
                    client,
                    team_id,
                    ..self.clone()
                }))
            }
            TeamRoute::Revoked { team_id, reason } => {
                format!("workspace_revoked: {team_id} ({reason}); not sent")
            }
            TeamRoute::Unusable { team_id, reason } => {
                format!("workspace_token_unusable: {team_id} ({reason}); not sent")
            }
            TeamRoute::NotInstalled { team_id } if team_id.is_empty() => {
                "workspace_not_installed: the row names no workspace and there is no default \
                 installation (OAuth-only mode); not sent"
                    .to_string()
            }
            TeamRoute::NotInstalled { team_id } => format!(
                "workspace_not_installed: {team_id} has no installation (OAuth-only mode); not sent"
            ),
        };
        tracing::warn!(method = %l.row.method, team = %l.row.team_id, %reason, "outbox row not sent");
        self.fail(l, self.clock.now(), &reason, false, outcome)
            .await?;
        Ok(None)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Claims one batch and processes it. `stop` is checked between rows.
    pub async fn run_once(&self) -> StoreResult<StepOutcome> {
        self.step(None).await
    }

    /// How long the lease must last from right before a call: the request timeout plus the
    /// completion write and a margin.
    fn call_lease(&self) -> Duration {
        Duration::from_std(self.client.timeout()).unwrap_or(Duration::seconds(10))
            + Duration::seconds(CALL_LEASE_MARGIN_SECONDS)
    }

    async fn step(&self, stop: Option<&watch::Receiver<bool>>) -> StoreResult<StepOutcome> {
        let now = self.clock.now();
        let lease = Duration::seconds(self.settings.lease_seconds as i64);
        // A token per claim: after this lease expires and another worker takes a row, no
        // conditional update of ours can match it again.
        let token = format!("{}:{}", self.id, uuid::Uuid::new_v4().simple());
        // Only rows that can go now: not of a method this process's limiter holds back, and
        // (through the shared budgets) not of a method or channel without budget.
        let blocked = self.client.blocked_methods();
        let batch = self
            .store
            .claim_outbox_with_budget(
                &token,
                now,
                lease,
                i64::from(self.settings.batch_size),
                &blocked,
            )
            .await?;
        let mut outcome = StepOutcome {
            claimed: batch.len(),
            ..Default::default()
        };
        // The DM updates after clicks go out together: each waits for its response_url post
        // and then for the grouped commit of its completion, so one at a time a worker
        // would update a few hundred DMs a second while members answer thousands. They are
        // idempotent and under no Web API tier (a fallback to chat.update still asks the
        // shared limiter). Posts stay one at a time, in claim order.
        let (updates, batch): (Vec<OutboxRow>, Vec<OutboxRow>) =
            batch.into_iter().partition(is_response_url_update);
        if !updates.is_empty() && !stop.is_some_and(|s| *s.borrow()) {
            // The updates the response_urls took are recorded together: one write for the
            // batch instead of one per answer.
            let responded = std::sync::Mutex::new(Vec::with_capacity(updates.len()));
            let each = updates.iter().map(|row| async {
                let mut one = StepOutcome::default();
                let leased = Leased {
                    row,
                    token: &token,
                    until: now + lease,
                    responded: Some(&responded),
                };
                self.process_routed(leased, &mut one).await.map(|()| one)
            });
            let mut failed = None;
            for one in futures_util::future::join_all(each).await {
                match one {
                    Ok(one) => outcome.absorb(one),
                    Err(e) => failed = Some(e),
                }
            }
            let responded = responded.into_inner().expect("responded lock");
            let responded: Vec<&OutboxRow> = updates
                .iter()
                .filter(|r| responded.contains(&r.id))
                .collect();
            self.record_responded(&responded, &token, &mut outcome)
                .await;
            if let Some(e) = failed {
                return Err(e);
            }
        } else {
            for row in &updates {
                self.release(row, &token, &mut outcome).await?;
            }
        }
        for row in batch {
            if stop.is_some_and(|s| *s.borrow()) {
                self.release(&row, &token, &mut outcome).await?;
                continue;
            }
            let leased = Leased {
                row: &row,
                token: &token,
                until: now + lease,
                responded: None,
            };
            self.process_routed(leased, &mut outcome).await?;
        }
        Ok(outcome)
    }

    /// Gives a claimed row back untouched (the worker is stopping).
    async fn release(
        &self,
        row: &OutboxRow,
        token: &str,
        outcome: &mut StepOutcome,
    ) -> StoreResult<()> {
        self.store
            .retry_outbox(row.id, token, self.clock.now(), None, false, false)
            .await?;
        outcome.released += 1;
        Ok(())
    }

    /// [`Self::process`] by the worker of the row's workspace.
    async fn process_routed(&self, l: Leased<'_>, outcome: &mut StepOutcome) -> StoreResult<()> {
        // In OAuth-only mode a row of the default installation ('') has nowhere to go.
        if l.row.team_id.is_empty() && !self.teams.as_ref().is_some_and(Teams::oauth_only) {
            self.process(l, outcome).await
        } else if let Some(worker) = self.for_team(l, outcome).await? {
            worker.process(l, outcome).await
        } else {
            Ok(())
        }
    }

    /// One row: find what it refers to, settle an earlier unknown outcome, get a permit from
    /// the limiter, renew the lease, call Slack, record what happened.
    async fn process(&self, l: Leased<'_>, outcome: &mut StepOutcome) -> StoreResult<()> {
        let mut payload = l.row.payload.clone();
        // A DM update through the click's response_url first: Slack knows which message the
        // URL replaces, so the DM's location is looked up only if it falls back.
        if let Some(url) = response_url::take(&mut payload, self.clock.now()) {
            if let Responded::Done = self.respond(l, &url, &payload, outcome).await? {
                return Ok(());
            }
        }
        let Some(payload) = self.payload(l, payload, outcome).await? else {
            return Ok(());
        };
        if l.is_post() && l.row.outcome_unknown() {
            if let Settled::Done = self.settle_unknown_outcome(l, &payload, outcome).await? {
                return Ok(());
            }
        }
        let Some(permit) = self.permit(l, &payload, outcome).await? else {
            return Ok(());
        };
        // The lease must still be ours right before the call, and must outlast it.
        if !self
            .store
            .begin_outbox_attempt(l.row.id, l.token, self.clock.now(), self.call_lease())
            .await?
        {
            tracing::info!(method = %l.row.method, "lease lost before the call; skipped");
            outcome.lost += 1;
            return Ok(());
        }
        self.send(l, permit, &payload, outcome).await
    }

    /// The payload to send: a follower gets the location of the message it refers to (or
    /// waits for it, or fails when it never came), a post gets its delivery metadata. `None`
    /// when the row was dealt with here.
    async fn payload(
        &self,
        l: Leased<'_>,
        mut payload: Value,
        outcome: &mut StepOutcome,
    ) -> StoreResult<Option<Value>> {
        let row = l.row;
        if let Some(target) = &row.target_key {
            let Some((channel, ts)) = self.store.message_location(target).await? else {
                self.target_missing(l, target, outcome).await?;
                return Ok(None);
            };
            fill_target(&row.method, &mut payload, &channel, &ts);
        }
        if l.is_post() {
            if let Some(obj) = payload.as_object_mut() {
                obj.insert("metadata".into(), delivery_metadata(&row.dedupe_key));
            }
        }
        Ok(Some(payload))
    }

    /// A DM update through the click's response_url (no tier applies). `Fallback` when the
    /// URL was refused or failed: the caller sends the same update with `chat.update`.
    ///
    /// No attempt mark while the claim's lease outlasts the call: the mark exists to find out
    /// whether a *post* went out (and not post it twice); an update replaces the message with
    /// the same content however often it arrives, and no other worker can claim the row
    /// before the lease ends. That saves a write per answer; a lease too short to cover the
    /// call is renewed (and checked) first, as for any other call.
    async fn respond(
        &self,
        l: Leased<'_>,
        url: &str,
        payload: &Value,
        outcome: &mut StepOutcome,
    ) -> StoreResult<Responded> {
        let now = self.clock.now();
        let covered = now + self.call_lease() <= l.until;
        if !covered
            && !self
                .store
                .begin_outbox_attempt(l.row.id, l.token, now, self.call_lease())
                .await?
        {
            outcome.lost += 1;
            return Ok(Responded::Done);
        }
        match self
            .client
            .respond_background(url, &response_url::body_of(payload))
            .await
        {
            Ok(()) => {
                if let Some(responded) = l.responded {
                    responded.lock().expect("responded lock").push(l.row.id);
                    return Ok(Responded::Done);
                }
                if self.record_sent(l, &responded(), None).await {
                    outcome.sent += 1;
                } else {
                    outcome.unconfirmed += 1;
                }
                Ok(Responded::Done)
            }
            Err(e) => {
                tracing::info!(error = %e, "the response_url refused the DM update; sending it with chat.update");
                Ok(Responded::Fallback)
            }
        }
    }

    /// A follower whose message is not posted yet: check again shortly, or fail when that
    /// message failed or a day has passed.
    async fn target_missing(
        &self,
        l: Leased<'_>,
        target: &str,
        outcome: &mut StepOutcome,
    ) -> StoreResult<()> {
        let now = self.clock.now();
        let gave_up = now - l.row.created_at > Duration::seconds(MAX_WAIT_FOR_TARGET);
        if gave_up || self.store.message_post_failed(target).await? {
            let reason = format!("target_not_posted: {target} was never posted");
            self.fail(l, now, &reason, false, outcome).await
        } else {
            let later = now + Duration::seconds(TARGET_RECHECK_SECONDS);
            self.defer(l, later, outcome).await
        }
    }

    /// A post whose earlier attempt has an unknown outcome is looked up first: adopted when
    /// found, posted when absent (or when history cannot be read at all).
    async fn settle_unknown_outcome(
        &self,
        l: Leased<'_>,
        payload: &Value,
        outcome: &mut StepOutcome,
    ) -> StoreResult<Settled> {
        let method = &l.row.method;
        let resolved = |resolution: &'static str| {
            metrics::counter!("outbox_outcome_unknown_total", "resolution" => resolution)
                .increment(1);
        };
        match self.look_up(l, payload).await? {
            Lookup::Found(location) => {
                resolved("adopted");
                tracing::info!(%method, "post with an unknown outcome found in the conversation; adopted");
                let result =
                    json!({ "channel": location.channel, "ts": location.ts, "adopted": true });
                if self.record_sent(l, &result, Some(&location)).await {
                    outcome.sent += 1;
                    outcome.adopted += 1;
                } else {
                    outcome.unconfirmed += 1;
                }
            }
            Lookup::Absent => {
                resolved("reposted");
                tracing::info!(%method, "post with an unknown outcome not found in the conversation; posting");
                return Ok(Settled::Post);
            }
            Lookup::Lost => outcome.lost += 1,
            Lookup::NotYet(ready_at) => self.defer(l, ready_at, outcome).await?,
            Lookup::Failed(err) if err.class() == ErrorClass::Permanent => {
                // History cannot be read (a missing scope, say): rather than never
                // delivering, post, and count it so the operator sees it.
                resolved("unverified");
                tracing::warn!(%method, error = %err, "post with an unknown outcome could not be looked up; posting");
                return Ok(Settled::Post);
            }
            Lookup::Failed(err) => {
                // The earlier outcome stays unknown: the mark is kept whatever happens.
                self.on_error(l, err, false, self.clock.now(), outcome)
                    .await?;
            }
        }
        Ok(Settled::Done)
    }

    /// A permit from the limiter, or the row is rescheduled for when there is one (a local
    /// denial is not an attempt, and nobody sleeps).
    async fn permit(
        &self,
        l: Leased<'_>,
        payload: &Value,
        outcome: &mut StepOutcome,
    ) -> StoreResult<Option<Permit>> {
        let channel = l.row.channel_key.clone().or_else(|| {
            payload
                .get("channel")
                .and_then(Value::as_str)
                .map(String::from)
        });
        let permit = match self.client.permit_now(&l.row.method, channel.as_deref()) {
            Ok(permit) => permit,
            Err(ready_at) => {
                self.defer(l, ready_at, outcome).await?;
                return Ok(None);
            }
        };
        if self.store.backend() == Backend::Postgres {
            // Replicas share Slack's limits through the database.
            let budgets: Vec<_> =
                shared_budgets(self.client.limits(), &l.row.method, channel.as_deref())
                    .into_iter()
                    .map(|mut b| {
                        b.key = team_budget_key(&self.team_id, &b.key);
                        b
                    })
                    .collect();
            if let Err(ready_at) = self.store.take_budgets(&budgets, self.clock.now()).await? {
                metrics::counter!("outbox_shared_budget_waits_total").increment(1);
                self.defer(l, ready_at, outcome).await?;
                return Ok(None);
            }
        }
        Ok(Some(permit))
    }

    /// Gives the row back until `ready_at`, without counting an attempt.
    async fn defer(
        &self,
        l: Leased<'_>,
        ready_at: DateTime<Utc>,
        outcome: &mut StepOutcome,
    ) -> StoreResult<()> {
        if self
            .store
            .retry_outbox(l.row.id, l.token, ready_at, None, false, false)
            .await?
        {
            outcome.deferred += 1;
        } else {
            // Another worker holds the row now (our lease ran out): it is theirs.
            outcome.lost += 1;
        }
        Ok(())
    }

    /// Fails the row for good (`attempted`: a call was made, and counts as an attempt).
    async fn fail(
        &self,
        l: Leased<'_>,
        now: DateTime<Utc>,
        reason: &str,
        attempted: bool,
        outcome: &mut StepOutcome,
    ) -> StoreResult<()> {
        self.store
            .fail_outbox(l.row.id, l.token, now, reason, attempted)
            .await?;
        outcome.failed += 1;
        Ok(())
    }

    /// The call itself, and its outcome recorded.
    async fn send(
        &self,
        l: Leased<'_>,
        permit: Permit,
        payload: &Value,
        outcome: &mut StepOutcome,
    ) -> StoreResult<()> {
        let result = if super::upload::is_upload(&l.row.method) {
            super::upload::send(&self.client, permit, payload).await
        } else {
            self.client.call(permit, payload).await
        };
        let now = self.clock.now();
        match result {
            Ok(body) => {
                let location = if l.is_post() {
                    posted(&body).ok()
                } else {
                    None
                };
                let stored = compact_result(&body);
                if self.record_sent(l, &stored, location.as_ref()).await {
                    outcome.sent += 1;
                } else {
                    outcome.unconfirmed += 1;
                }
            }
            Err(err) => {
                let unknown = err.outcome_unknown();
                self.on_error(l, err, !unknown, now, outcome).await?
            }
        }
        Ok(())
    }

    /// Records the DM updates the response_urls took as sent, in one write
    /// ([`Store::complete_outbox_many`]), with [`Self::record_sent`]'s retries.
    async fn record_responded(&self, rows: &[&OutboxRow], token: &str, outcome: &mut StepOutcome) {
        if rows.is_empty() {
            return;
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let result = responded();
        let written = with_retries(COMPLETION_TRIES, COMPLETION_FIRST_PAUSE, |tries| {
            let (ids, result) = (&ids, &result);
            async move {
                let now = self.clock.now();
                if tries > 0 {
                    metrics::counter!("outbox_completion_retries_total").increment(1);
                    for id in ids {
                        let _ = self
                            .store
                            .hold_outbox(*id, token, now, self.call_lease())
                            .await;
                    }
                }
                self.store.complete_outbox_many(ids, now, result).await
            }
        })
        .await;
        match written {
            Ok(()) => {
                for row in rows {
                    log_sent(row);
                }
                outcome.sent += rows.len();
            }
            Err(e) => {
                metrics::counter!("outbox_completion_failed_total").increment(rows.len() as u64);
                tracing::error!(method = "chat.update", rows = rows.len(), error = %e, tries = COMPLETION_TRIES,
                    "slack accepted the DM updates but their completion could not be written; they will be sent again (an update replaces the message with the same content)");
                outcome.unconfirmed += rows.len();
            }
        }
    }

    /// Records a call Slack accepted, retrying the write with back-off (the lease is renewed
    /// between tries). `false` when every try failed: the row keeps its attempt mark and is
    /// looked up, never re-posted blindly, once its lease expires.
    async fn record_sent(
        &self,
        l: Leased<'_>,
        result: &Value,
        location: Option<&PostedMessage>,
    ) -> bool {
        let location = location.map(|p| (p.channel.as_str(), p.ts.as_str()));
        let written = with_retries(
            COMPLETION_TRIES,
            COMPLETION_FIRST_PAUSE,
            |tries| async move {
                let now = self.clock.now();
                if tries > 0 {
                    metrics::counter!("outbox_completion_retries_total").increment(1);
                    // Keep the row ours while the database recovers; a failure here changes nothing.
                    let _ = self
                        .store
                        .hold_outbox(l.row.id, l.token, now, self.call_lease())
                        .await;
                }
                self.store
                    .complete_outbox(l.row.id, now, result, location)
                    .await
            },
        )
        .await;
        match written {
            Ok(_) => {
                log_sent(l.row);
                true
            }
            Err(e) => {
                metrics::counter!("outbox_completion_failed_total").increment(1);
                tracing::error!(method = %l.row.method, error = %e, tries = COMPLETION_TRIES,
                    "slack accepted the call but its completion could not be written; it will be looked up, not re-sent");
                false
            }
        }
    }

    /// Looks for a post whose earlier outcome is unknown in its conversation (its thread for
    /// a reply), by the key in its message metadata.
    async fn look_up(&self, l: Leased<'_>, payload: &Value) -> StoreResult<Lookup> {
        let row = l.row;
        let Some(channel) = payload.get("channel").and_then(Value::as_str) else {
            return Ok(Lookup::Absent);
        };
        let since = row
            .first_attempt_at
            .or(row.attempt_started_at)
            .unwrap_or(row.created_at)
            - Duration::seconds(LOOKUP_MARGIN_SECONDS);
        let oldest = slack_ts(since);
        let channel = match self.conversation_of(l, channel).await? {
            Ok(channel) => channel,
            Err(lookup) => return Ok(lookup),
        };
        let (method, mut args) = match payload.get("thread_ts").and_then(Value::as_str) {
            Some(thread_ts) => (
                "conversations.replies",
                json!({ "channel": channel, "ts": thread_ts }),
            ),
            None => ("conversations.history", json!({ "channel": channel })),
        };
        args["oldest"] = json!(oldest);
        args["include_all_metadata"] = json!(true);
        args["limit"] = json!(100);
        for _ in 0..LOOKUP_MAX_PAGES {
            let body = match self.read_call(l, method, &args).await? {
                Ok(body) => body,
                Err(lookup) => return Ok(lookup),
            };
            let messages = body
                .get("messages")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if let Some(found) = messages
                .iter()
                .find(|m| delivery_key_of(m) == Some(row.dedupe_key.as_str()))
            {
                if let Some(ts) = found.get("ts").and_then(Value::as_str) {
                    return Ok(Lookup::Found(PostedMessage {
                        channel: channel.into(),
                        ts: ts.into(),
                    }));
                }
            }
            let cursor = body
                .pointer("/response_metadata/next_cursor")
                .and_then(Value::as_str)
                .unwrap_or("");
            if cursor.is_empty() {
                break;
            }
            args["cursor"] = json!(cursor);
        }
        Ok(Lookup::Absent)
    }

    /// The conversation whose history holds a post to `channel`: itself, or for a DM posted
    /// to a user id, that user's IM (history is read by conversation id).
    async fn conversation_of(
        &self,
        l: Leased<'_>,
        channel: &str,
    ) -> StoreResult<Result<String, Lookup>> {
        if !channel.starts_with(['U', 'W']) {
            return Ok(Ok(channel.to_string()));
        }
        let opened = self
            .read_call(l, "conversations.open", &json!({ "users": channel }))
            .await?;
        Ok(opened.and_then(|body| {
            body.pointer("/channel/id")
                .and_then(Value::as_str)
                .map(String::from)
                .ok_or_else(|| {
                    Lookup::Failed(SlackError::Decode(
                        "conversations.open answer without channel.id".into(),
                    ))
                })
        }))
    }

    /// A read-only call made for a leased row: rate limited, and only while the lease holds.
    async fn read_call(
        &self,
        l: Leased<'_>,
        method: &str,
        args: &Value,
    ) -> StoreResult<Result<Value, Lookup>> {
        let permit = match self.client.permit_now(method, None) {
            Ok(permit) => permit,
            Err(ready_at) => return Ok(Err(Lookup::NotYet(ready_at))),
        };
        if !self
            .store
            .hold_outbox(l.row.id, l.token, self.clock.now(), self.call_lease())
            .await?
        {
            return Ok(Err(Lookup::Lost));
        }
        match self.client.call(permit, args).await {
            Ok(body) => Ok(Ok(body)),
            // The client paused the method for everyone; come back when the pause ends.
            Err(SlackError::RateLimited { retry_after }) => {
                let until = self.clock.now()
                    + Duration::from_std(retry_after).unwrap_or(Duration::seconds(1));
                Ok(Err(Lookup::NotYet(until)))
            }
            Err(e) => Ok(Err(Lookup::Failed(e))),
        }
    }

    /// `known_not_sent`: Slack answered, so this call posted nothing (the attempt mark goes).
    async fn on_error(
        &self,
        l: Leased<'_>,
        err: SlackError,
        known_not_sent: bool,
        now: DateTime<Utc>,
        outcome: &mut StepOutcome,
    ) -> StoreResult<()> {
        let row = l.row;
        match err.class() {
            ErrorClass::RateLimited => {
                let wait = match &err {
                    SlackError::RateLimited { retry_after } => {
                        Duration::from_std(*retry_after).unwrap_or(Duration::seconds(1))
                    }
                    _ => Duration::seconds(1),
                };
                // The client has paused the method for every caller of this process already;
                // the shared budget pauses it for the other replicas.
                let until = now + wait;
                if self.store.backend() == Backend::Postgres {
                    self.store
                        .pause_budget(
                            &team_budget_key(&self.team_id, &format!("m:{}", row.method)),
                            until,
                        )
                        .await?;
                }
                tracing::warn!(method = %row.method, retry_after_s = wait.num_seconds(), "slack rate limited; rescheduled");
                self.store
                    .retry_outbox(
                        row.id,
                        l.token,
                        until,
                        Some("ratelimited"),
                        false,
                        known_not_sent,
                    )
                    .await?;
                outcome.deferred += 1;
            }
            ErrorClass::Transient => {
                self.on_transient(l, err, known_not_sent, now, outcome)
                    .await?
            }
            ErrorClass::Permanent => {
                tracing::warn!(method = %row.method, error = %err, "slack refused; failed for good");
                self.fail(l, now, &err.to_string(), true, outcome).await?;
            }
        }
        Ok(())
    }

    /// A transient failure: back off and retry, or give up after the last attempt.
    async fn on_transient(
        &self,
        l: Leased<'_>,
        err: SlackError,
        known_not_sent: bool,
        now: DateTime<Utc>,
        outcome: &mut StepOutcome,
    ) -> StoreResult<()> {
        let row = l.row;
        let attempts = row.attempts + 1;
        if attempts >= i64::from(self.settings.max_attempts) {
            let reason = format!("gave up after {attempts} attempts: {err}");
            tracing::error!(method = %row.method, %reason, "outbox message failed");
            self.fail(l, now, &reason, true, outcome).await?;
        } else {
            let next = now + self.backoff(attempts);
            tracing::warn!(method = %row.method, attempts, error = %err, "slack call failed; will retry");
            let error = err.to_string();
            self.store
                .retry_outbox(row.id, l.token, next, Some(&error), true, known_not_sent)
                .await?;
            outcome.retried += 1;
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

    /// Loops `step` until `shutdown` turns true. Idle, it sleeps until the outbox next has
    /// something due (a pending row's time, a lease's end) or until new work is queued: this
    /// process's commits wake it through a notify, other replicas' through PostgreSQL's
    /// `LISTEN`. It never sleeps less than `poll_interval` (so a row held back by the limits
    /// cannot make it spin) nor more than [`MAX_IDLE`] (a safety net for a lost
    /// notification).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let floor = std::time::Duration::from_millis(self.settings.poll_interval_ms.max(10));
        let wake = self.store.outbox_wake();
        let mut listener = match self.store.outbox_listener().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for outbox notifications; relying on due times");
                None
            }
        };
        tracing::debug!(worker = %self.id, "outbox worker started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Overload: answers wait on the writer with Slack's 3 s running, DM updates and
            // posts can wait a moment. Back off until the writer catches up.
            if self.store.writer_is_behind() {
                metrics::counter!("outbox_yields_total").increment(1);
                tokio::select! {
                    _ = tokio::time::sleep(floor) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            // Registered before the step, so a commit during the step is not missed.
            let notified = wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.step(Some(&shutdown)).await {
                Ok(outcome) if outcome.deferred < outcome.claimed => {
                    if outcome.claimed >= self.settings.batch_size as usize {
                        // A full batch: there may be more, and another worker can take it.
                        wake.notify_one();
                        continue;
                    }
                    // The claim took everything due; work queued since rang the bell.
                    if notified.as_mut().now_or_never().is_some() {
                        self.linger(&mut shutdown).await;
                        continue;
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "outbox step failed"),
            }
            let idle = self.idle_for(floor).await;
            metrics::counter!("outbox_idle_sleeps_total").increment(1);
            let pg_notified = async {
                match listener.as_mut() {
                    Some(l) => {
                        if let Err(e) = l.recv().await {
                            tracing::warn!(error = %e, "outbox notification listener failed");
                            tokio::time::sleep(idle).await;
                        }
                    }
                    None => std::future::pending().await,
                }
            };
            let rung = tokio::select! {
                _ = tokio::time::sleep(idle) => false,
                _ = &mut notified => true,
                _ = pg_notified => true,
                _ = shutdown.changed() => false,
            };
            if rung {
                self.linger(&mut shutdown).await;
            }
        }
        tracing::debug!(worker = %self.id, "outbox worker stopped");
    }

    /// Waits [`LINGER`] after a commit rang, so that one claim takes what the commits of the
    /// next few milliseconds queue too. Under a stream of answers every commit rings: a
    /// worker that claimed at each ring took one DM update per claim, and each claim, each
    /// completion and each "when is the next row due?" was a write or a read of its own,
    /// as many as the answers themselves.
    async fn linger(&self, shutdown: &mut watch::Receiver<bool>) {
        tokio::select! {
            _ = tokio::time::sleep(LINGER) => {}
            _ = shutdown.changed() => {}
        }
    }

    /// How long to sleep: until the next due row (by the injected clock), between `floor`
    /// and [`MAX_IDLE`].
    async fn idle_for(&self, floor: std::time::Duration) -> std::time::Duration {
        let due = match self.store.next_outbox_due().await {
            Ok(Some(due)) => (due - self.clock.now()).to_std().unwrap_or_default(),
            Ok(None) => MAX_IDLE,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read when the outbox is next due");
                floor
            }
        };
        due.clamp(floor, MAX_IDLE.max(floor))
    }
}

/// Whether a response_url post dealt with the row.
enum Responded {
    Done,
    Fallback,
}

/// The longest an idle worker sleeps without a notification.
const MAX_IDLE: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a worker woken by new work waits before it claims ([`OutboxWorker::linger`]): a
/// DM update or a post a few milliseconds later is invisible to the person waiting for it.
const LINGER: std::time::Duration = std::time::Duration::from_millis(10);

/// A claimed row and the token of the claim that holds it.
#[derive(Clone, Copy)]
struct Leased<'a> {
    row: &'a OutboxRow,
    token: &'a str,
    /// When the claim's lease ends (nobody else can claim the row before).
    until: DateTime<Utc>,
    /// Where a DM update the response_url took is noted, to be recorded with the batch's
    /// others in one write ([`OutboxWorker::record_responded`]); `None`: recorded at once.
    responded: Option<&'a std::sync::Mutex<Vec<i64>>>,
}

impl Leased<'_> {
    fn is_post(&self) -> bool {
        self.row.method == "chat.postMessage"
    }
}

/// Whether settling an earlier unknown outcome dealt with the row, or it is to be posted.
enum Settled {
    Done,
    Post,
}

/// What looking up a post with an unknown outcome found.
enum Lookup {
    /// It is in the conversation: record it as sent there.
    Found(PostedMessage),
    /// It is not: post it.
    Absent,
    /// The lease was lost meanwhile: leave the row to its new holder.
    Lost,
    /// Rate limited: come back then.
    NotYet(DateTime<Utc>),
    /// The look-up itself failed.
    Failed(SlackError),
}

/// Runs `attempt` (given the number of earlier tries) until it succeeds or `tries` ran out,
/// pausing `first_pause`, then twice as long each time, between tries.
async fn with_retries<T, E, F, Fut>(
    tries: u32,
    first_pause: std::time::Duration,
    mut attempt: F,
) -> Result<T, E>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut pause = first_pause;
    let mut tried = 0;
    loop {
        match attempt(tried).await {
            Ok(v) => return Ok(v),
            Err(e) if tried + 1 >= tries.max(1) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, tried = tried + 1, "write failed; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
                tried += 1;
            }
        }
    }
}

/// A Slack message timestamp (`<seconds>.<microseconds>`) for an instant.
fn slack_ts(at: DateTime<Utc>) -> String {
    let micros = at.timestamp_micros();
    format!(
        "{}.{:06}",
        micros.div_euclid(1_000_000),
        micros.rem_euclid(1_000_000)
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn a_write_that_fails_once_is_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<u32, String> =
            with_retries(3, std::time::Duration::from_millis(1), |tried| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if tried == 0 {
                        Err("refused".to_string())
                    } else {
                        Ok(tried)
                    }
                }
            })
            .await;
        assert_eq!(result, Ok(1));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn retries_are_bounded() {
        let calls = AtomicU32::new(0);
        let result: Result<(), String> =
            with_retries(4, std::time::Duration::from_millis(1), |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err("down".to_string()) }
            })
            .await;
        assert_eq!(result, Err("down".to_string()));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn slack_timestamps_have_six_decimals() {
        let at = Utc.timestamp_opt(1_800_000_000, 42_000).single().unwrap();
        assert_eq!(slack_ts(at), "1800000000.000042");
    }
}
