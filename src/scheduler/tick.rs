//! One scheduler tick, in four steps.

use crate::domain::ids::{DeliveryId, MemberId, ProgramId, RoundId};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use tokio::sync::watch;

use crate::clock::SharedClock;
use crate::config::settings::SchedulerSettings;
use crate::domain::planning::{is_out_of_office, member_firings, within_working_hours, PlanMember};
use crate::domain::program::{Anonymity, MisfirePolicy, OutOfOfficePolicy, Program, Survey};
use crate::domain::state::{DeliveryState, MemberState};
use crate::pulse::catalog::Catalog;
use crate::pulse::render::{self, dm_context};
use crate::pulse::Pulses;
use crate::slack::protocol::{MessageKey, OutboxKey};
use crate::storage::members::{plan_members, MemberControl, MemberRow};
use crate::storage::outbox::OutboxSubject;
use crate::storage::rounds::{DeliveryRow, NewDelivery, NewRound, OpenRound};
use crate::storage::{Store, StoreResult};

const BATCH: i64 = 500;

/// A firing about to become a delivery: its period key, its instant and the delivery.
type Pending = (String, DateTime<Utc>, NewDelivery);

/// What a tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickReport {
    pub planned: usize,
    pub skipped: usize,
    pub queued: usize,
    pub held: usize,
    pub reminded: usize,
    pub closed: usize,
    pub rounds_closed: usize,
    pub sealed: usize,
    /// Firings whose round had already closed: not delivered (see `round_closing_times`).
    pub late_dropped: usize,
    /// Pulses and reminders still queued when their window closed, cancelled.
    pub cancelled: usize,
    /// Firings before the service first ran against this database: no round is opened for
    /// them (a first start never catches up the past).
    pub before_first_start: usize,
    /// Late DMs (caught up after downtime or a hold) waiting for the member's working hours.
    pub waiting_for_hours: usize,
    /// Rounds this tick opened (each is logged with its survey, number and members).
    pub rounds_opened: usize,
    /// Held members whose Slack status was read again (users.info) before their window ran out.
    pub status_rechecked: usize,
    /// Digest posts queued (one per sponsor channel and period).
    pub digests: usize,
    /// Due DMs of programs whose workspace is not installed yet (OAuth-only mode): they wait.
    pub waiting_for_install: usize,
}

impl TickReport {
    fn record_metrics(&self) {
        for (what, n) in [
            ("planned", self.planned),
            ("skipped", self.skipped),
            ("queued", self.queued),
            ("reminded", self.reminded),
            ("closed", self.closed),
            ("sealed", self.sealed),
            ("cancelled", self.cancelled),
            ("late_dropped", self.late_dropped),
        ] {
            metrics::counter!("scheduler_deliveries_total", "outcome" => what).increment(n as u64);
        }
        metrics::gauge!("scheduler_held_deliveries").set(self.held as f64);
        metrics::counter!("scheduler_digests_total").increment(self.digests as u64);
    }

    /// One structured log line with a field per count (nothing when the tick did nothing).
    pub fn log(&self) {
        if *self == TickReport::default() {
            return;
        }
        tracing::info!(
            planned = self.planned,
            skipped = self.skipped,
            queued = self.queued,
            held = self.held,
            waiting_for_hours = self.waiting_for_hours,
            waiting_for_install = self.waiting_for_install,
            reminded = self.reminded,
            closed = self.closed,
            rounds_opened = self.rounds_opened,
            rounds_closed = self.rounds_closed,
            sealed = self.sealed,
            late_dropped = self.late_dropped,
            cancelled = self.cancelled,
            before_first_start = self.before_first_start,
            status_rechecked = self.status_rechecked,
            digests = self.digests,
            "scheduler tick"
        );
    }
}

/// How many held members' Slack status one tick re-reads with users.info (Tier 4, about 100 a
/// minute: a tick every 30 s stays well within it, beside the outbox's other calls).
const STATUS_RECHECKS_PER_TICK: usize = 20;

/// A held member's status is re-read when the stored one is older than this, so someone back
/// from vacation gets the pulse held for them within the hour, not at the daily refresh.
const HELD_STATUS_MAX_AGE_MINUTES: i64 = 30;

/// The scheduler service: what it reads and writes, and its settings; nothing of HTTP.
#[derive(Clone)]
pub struct Scheduler {
    store: Store,
    clock: SharedClock,
    catalog: Catalog,
    /// For re-reading user groups and refreshing profiles between ticks.
    pulses: Pulses,
    settings: SchedulerSettings,
}

impl Scheduler {
    pub fn new(pulses: Pulses, settings: SchedulerSettings) -> Self {
        Self {
            store: pulses.store.clone(),
            clock: pulses.clock.clone(),
            catalog: pulses.catalog.clone(),
            pulses,
            settings,
        }
    }

    /// Runs the four steps once at the clock's now.
    pub async fn tick(&self) -> StoreResult<TickReport> {
        let now = self.clock.now();
        let mut report = TickReport::default();
        self.plan(now, &mut report).await?;
        self.dispatch(now, &mut report).await?;
        self.remind(now, &mut report).await?;
        self.close(now, &mut report).await?;
        let waiting = self.waiting_for_install().await?;
        report.digests =
            super::digest::post_due_digests(&self.store, &self.catalog, &waiting, now).await?;
        report.record_metrics();
        report.log();
        Ok(report)
    }

    /// Step 1: create rounds and deliveries for firings whose time has come (looking back one
    /// window, so firings missed while the service was down are still caught).
    pub async fn plan(&self, now: DateTime<Utc>, report: &mut TickReport) -> StoreResult<()> {
        let grace = self.grace();
        // Before the first start is recorded (a scheduler run outside `serve`), now counts.
        let first_start = self.store.first_start().await?.unwrap_or(now);
        for program in self.catalog.programs().iter() {
            let rows = self.store.members_of(&program.id).await?;
            let members = plan_members(program, &rows);
            // A paused survey opens no rounds (an admin's pause, or the file's `paused`).
            for survey in program.surveys.iter().filter(|s| !s.paused) {
                let pending = self
                    .new_firings(program, survey, &members, now, grace, first_start, report)
                    .await?;
                if !pending.is_empty() {
                    self.open_deliveries(program, survey, &members, &pending, now, report)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// The programs whose sends wait for their workspace to be installed (OAuth-only mode;
    /// empty in the other modes).
    pub async fn waiting_for_install(&self) -> StoreResult<HashSet<ProgramId>> {
        let mut waiting = HashSet::new();
        if !self.pulses.teams.oauth_only() {
            return Ok(waiting);
        }
        for program in self.catalog.programs().iter() {
            if self
                .pulses
                .teams
                .waits_for_install(program.team_id.as_deref())
                .await?
            {
                waiting.insert(program.id.clone());
            }
        }
        Ok(waiting)
    }

    /// How late a firing may be handled and still count as on time (a tick or two).
    fn grace(&self) -> Duration {
        Duration::seconds((self.settings.tick_seconds as i64 * 2).max(300))
    }

    /// The firings of one survey within the last window that have no delivery yet, each as
    /// the delivery it becomes (skipped when it is late and the program skips misfires).
    /// Firings before `first_start` are left alone: they happened before the service ever
    /// ran here, so nobody expects them (issue 11, item 1).
    #[allow(clippy::too_many_arguments)]
    async fn new_firings(
        &self,
        program: &Program,
        survey: &Survey,
        members: &[PlanMember],
        now: DateTime<Utc>,
        grace: Duration,
        first_start: DateTime<Utc>,
        report: &mut TickReport,
    ) -> StoreResult<Vec<Pending>> {
        let window = Duration::hours(i64::from(survey.window_hours));
        let from = now - window;
        let existing = self.existing_keys(&program.id, &survey.id, from).await?;
        let mut pending = Vec::new();
        for member in members {
            for firing in member_firings(program, survey, member, from, now + Duration::seconds(1))
            {
                let period = firing.period_key();
                if existing.contains(&(period.clone(), member.member_id)) {
                    continue;
                }
                if firing.utc < first_start {
                    report.before_first_start += 1;
                    continue;
                }
                let late = firing.utc < now - grace;
                let state = if late && program.misfire == MisfirePolicy::Skip {
                    DeliveryState::Skipped
                } else {
                    DeliveryState::Scheduled
                };
                let delivery = NewDelivery {
                    member_id: member.member_id,
                    state,
                    scheduled_at: firing.utc,
                    local_time: firing.local.to_rfc3339_opts(SecondsFormat::Secs, false),
                    timezone: member.timezone.name().to_string(),
                    closes_at: firing.utc + window,
                    remind_at: survey
                        .remind_after_hours
                        .map(|h| firing.utc + Duration::hours(i64::from(h))),
                };
                pending.push((period, firing.utc, delivery));
            }
        }
        Ok(pending)
    }

    /// Opens (or joins) the round of each pending firing's period and inserts its delivery,
    /// in one transaction. A round stays open until every member's firing of the period has
    /// had its window ([`round_closing_times`]).
    async fn open_deliveries(
        &self,
        program: &Program,
        survey: &Survey,
        members: &[PlanMember],
        pending: &[Pending],
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> StoreResult<()> {
        let round_closes = round_closing_times(program, survey, members, pending, now);
        // Rounds this call created, with the members it gave a delivery, for the log.
        let mut opened: Vec<(i64, RoundId, String, Vec<String>)> = Vec::new();
        let slack_ids: HashMap<MemberId, &str> = members
            .iter()
            .map(|m| (m.member_id, m.slack_user_id.as_str()))
            .collect();
        let mut tx = self.store.begin().await?;
        for (period, at, delivery) in pending {
            let closes_at = round_closes
                .get(period)
                .copied()
                .unwrap_or(delivery.closes_at)
                .max(delivery.closes_at);
            let round = NewRound {
                program_id: &program.id,
                survey_id: &survey.id,
                period_key: period,
                origin: "schedule",
                opened_at: *at,
                closes_at,
                anonymity: survey.anonymity,
                k: i64::from(program.anonymity_threshold),
            };
            let Some(opened_round) = tx.ensure_round(&round).await? else {
                // The round of this period already closed (a firing later than every
                // firing foreseen when it opened): it is not joined, ever.
                tracing::debug!(program = %program.id, survey = %survey.id, %period,
                    "a firing after its round closed was not delivered");
                report.late_dropped += 1;
                continue;
            };
            let round_id = opened_round.id;
            if opened_round.created {
                opened.push((opened_round.number, round_id, period.clone(), Vec::new()));
            }
            match tx.insert_delivery(round_id, delivery).await? {
                Some(_) if delivery.state == DeliveryState::Skipped => report.skipped += 1,
                Some(_) => {
                    report.planned += 1;
                    if let Some((.., who)) = opened.iter_mut().find(|o| o.1 == round_id) {
                        who.push(
                            slack_ids.get(&delivery.member_id).map_or_else(
                                || delivery.member_id.0.to_string(),
                                |s| s.to_string(),
                            ),
                        );
                    }
                }
                None => {}
            }
        }
        tx.commit().await?;
        for (number, round_id, period, who) in opened {
            report.rounds_opened += 1;
            tracing::info!(
                program = %program.id,
                survey = %survey.id,
                round = number,
                round_id = round_id.0,
                period = %period,
                origin = "schedule",
                members = who.len(),
                member_ids = %who.join(","),
                "round opened"
            );
        }
        Ok(())
    }

    async fn existing_keys(
        &self,
        program_id: &ProgramId,
        survey_id: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<HashSet<(String, MemberId)>> {
        let keys = self
            .store
            .planned_keys(program_id, survey_id, since)
            .await?;
        Ok(keys.into_iter().collect())
    }

    /// Step 2: hand due DMs to the outbox, unless the member is paused or away (then the
    /// delivery waits) or can no longer be messaged (then it is skipped).
    pub async fn dispatch(&self, now: DateTime<Utc>, report: &mut TickReport) -> StoreResult<()> {
        let mut members: HashMap<MemberId, MemberRow> = HashMap::new();
        let waiting = self.waiting_for_install().await?;
        let mut after = DeliveryId(0);
        loop {
            let due = self.store.due_deliveries(now, after, BATCH).await?;
            let page = due.len();
            for d in due {
                after = d.id;
                if waiting.contains(&d.program_id) {
                    // OAuth-only mode, the program's workspace is not installed: its DM waits
                    // (scheduled) until it is, or until its window closes.
                    report.waiting_for_install += 1;
                    continue;
                }
                self.dispatch_one(d, now, &mut members, report).await?;
            }
            if (page as i64) < BATCH {
                return Ok(());
            }
        }
    }

    async fn dispatch_one(
        &self,
        d: DeliveryRow,
        now: DateTime<Utc>,
        members: &mut HashMap<MemberId, MemberRow>,
        report: &mut TickReport,
    ) -> StoreResult<()> {
        let mut member = match members.get(&d.member_id) {
            Some(m) => m.clone(),
            None => {
                let m = self.store.member(d.member_id).await?;
                members.insert(d.member_id, m.clone());
                m
            }
        };
        let Some(program) = self.catalog.program(&d.program_id) else {
            self.skip(&d, "program removed from the configuration", now)
                .await?;
            report.skipped += 1;
            return Ok(());
        };
        let Some(survey) = program.survey(&d.survey_id) else {
            self.skip(&d, "survey removed from the configuration", now)
                .await?;
            report.skipped += 1;
            return Ok(());
        };
        if !member.can_receive() {
            self.skip(&d, why_not_receiving(&member), now).await?;
            report.skipped += 1;
            return Ok(());
        }
        let away = |m: &MemberRow| {
            program.out_of_office == OutOfOfficePolicy::Wait
                && is_out_of_office(m.status_text.as_deref(), m.status_emoji.as_deref())
        };
        if member.state == MemberState::Paused && !member.is_paused(now) {
            // The pause has run out: resume them on the spot.
            let mut tx = self.store.begin().await?;
            tx.apply_member_control(&member.slack_user_id, MemberControl::Resume, now)
                .await?;
            tx.commit().await?;
            members.remove(&d.member_id);
        } else if member.is_paused(now) {
            report.held += 1;
            return Ok(());
        } else if away(&member) {
            // Held for an away status: read it again from Slack when ours is not fresh, so
            // someone back from vacation gets this pulse within the hour (issue 11, item 5).
            match self.recheck_status(&member, now, report).await? {
                Some(fresh) if !away(&fresh) => {
                    tracing::info!(member = %fresh.slack_user_id, delivery = d.id.0,
                        "status no longer away: the held pulse is sent");
                    members.insert(d.member_id, fresh.clone());
                    member = fresh;
                }
                Some(fresh) => {
                    members.insert(d.member_id, fresh);
                    report.held += 1;
                    return Ok(());
                }
                None => {
                    report.held += 1;
                    return Ok(());
                }
            }
        }
        if !member.can_receive() {
            self.skip(&d, why_not_receiving(&member), now).await?;
            report.skipped += 1;
            return Ok(());
        }
        // A late DM (caught up after downtime, or released from a hold) waits for the
        // member's working hours, as reminders do: nobody gets a pulse at 01:00 because the
        // service came back at 01:00 (issue 11, item 2).
        if now - d.scheduled_at > self.grace() {
            if let Some(pm) = plan_members(&program, std::slice::from_ref(&member)).pop() {
                if !within_working_hours(&program, &pm, now) {
                    report.waiting_for_hours += 1;
                    return Ok(());
                }
            }
        }
        let message = match render::open_message(&dm_context(&program, survey, &d)) {
            Ok(message) => message,
            Err(e) => {
                // check-config keeps question keys short and plain, so this needs a file
                // that bypassed it; the delivery waits for a fixed configuration.
                tracing::error!(delivery = d.id.0, error = %e, "cannot render the pulse DM");
                return Ok(());
            }
        };
        let mut tx = self.store.begin().await?;
        if tx.mark_queued(d.id, now).await? {
            let mut post = OutboxKey::Pulse(d.id).message(
                "chat.postMessage",
                message.payload(Some(d.slack_user_id.as_ref())),
            );
            post.channel_key = Some(d.slack_user_id.to_string());
            post.message_key = Some(MessageKey::Delivery(d.id).to_string());
            post.subject = Some(OutboxSubject::Delivery(d.id));
            tx.enqueue(&post, now).await?;
            report.queued += 1;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Re-reads a held member's Slack profile with users.info when the stored one is older
    /// than [`HELD_STATUS_MAX_AGE_MINUTES`], at most [`STATUS_RECHECKS_PER_TICK`] a tick.
    /// Returns the member as stored afterwards, or `None` when nothing was re-read.
    async fn recheck_status(
        &self,
        member: &MemberRow,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> StoreResult<Option<MemberRow>> {
        let fresh_enough = member
            .profile_refreshed_at
            .is_some_and(|t| now - t < Duration::minutes(HELD_STATUS_MAX_AGE_MINUTES));
        if fresh_enough || report.status_rechecked >= STATUS_RECHECKS_PER_TICK {
            return Ok(None);
        }
        report.status_rechecked += 1;
        if !crate::pulse::sync::refresh_profile(&self.pulses, &member.slack_user_id).await {
            return Ok(None);
        }
        Ok(Some(self.store.member(member.id).await?))
    }

    async fn skip(&self, d: &DeliveryRow, reason: &str, now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.store.begin().await?;
        tx.mark_skipped(d.id, reason, now).await?;
        tx.commit().await
    }

    /// Step 3: one reminder, to non-responders only, inside their working hours, as a thread
    /// reply; the count of colleagues who answered is shown only when it reaches `k`.
    pub async fn remind(&self, now: DateTime<Utc>, report: &mut TickReport) -> StoreResult<()> {
        for d in self.store.deliveries_to_remind(now, BATCH).await? {
            let Some(program) = self.catalog.program(&d.program_id) else {
                continue;
            };
            let Some(survey) = program.survey(&d.survey_id) else {
                continue;
            };
            let member = self.store.member(d.member_id).await?;
            let Some(plan_member) = plan_members(&program, std::slice::from_ref(&member)).pop()
            else {
                continue;
            };
            if !within_working_hours(&program, &plan_member, now)
                || member.is_paused(now)
                || is_out_of_office(
                    member.status_text.as_deref(),
                    member.status_emoji.as_deref(),
                )
            {
                continue;
            }
            let answered = self.store.answered_count(d.round_id).await?;
            let shown = (answered >= i64::from(program.anonymity_threshold)).then_some(answered);
            let message = render::reminder_message(&dm_context(&program, survey, &d), shown);
            let mut tx = self.store.begin().await?;
            if tx.mark_reminded(d.id, now).await? {
                let mut reply =
                    OutboxKey::Reminder(d.id).message("chat.postMessage", message.payload(None));
                reply.channel_key = Some(d.slack_user_id.to_string());
                reply.target_key = Some(MessageKey::Delivery(d.id).to_string());
                tx.enqueue(&reply, now).await?;
                report.reminded += 1;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    /// Step 4: windows that ended. Unanswered deliveries expire, DMs still queued are
    /// cancelled, posted DMs lose their buttons, and rounds whose window ended with every
    /// delivery closed close too; anonymous ones are sealed, by the mode the round opened
    /// with (never by today's configuration).
    pub async fn close(&self, now: DateTime<Utc>, report: &mut TickReport) -> StoreResult<()> {
        loop {
            let mut tx = self.store.begin().await?;
            let closed = tx.close_due_deliveries(now, BATCH).await?;
            report.cancelled += closed.iter().filter(|c| c.cancelled).count();
            let posted: Vec<_> = closed.iter().filter(|c| c.posted).map(|c| c.id).collect();
            let answered: HashSet<_> = closed.iter().filter(|c| c.answered).map(|c| c.id).collect();
            for d in tx.deliveries(&posted).await? {
                let Some(program) = self.catalog.program(&d.program_id) else {
                    continue;
                };
                let Some(survey) = program.survey(&d.survey_id) else {
                    continue;
                };
                let message = render::closed_message(
                    &dm_context(&program, survey, &d),
                    answered.contains(&d.id),
                );
                let target = MessageKey::Delivery(d.id).to_string();
                tx.supersede_pending_updates(&target).await?;
                let mut update =
                    OutboxKey::ClosedUpdate(d.id).message("chat.update", message.payload(None));
                update.target_key = Some(target);
                tx.enqueue(&update, now).await?;
            }
            report.closed += closed.len();
            tx.commit().await?;
            if (closed.len() as i64) < BATCH {
                break;
            }
        }
        let mut tx = self.store.begin().await?;
        let rounds = tx.close_due_rounds(now).await?;
        let mut sealed = 0;
        for round in &rounds {
            let configured = self.catalog.program(&round.program_id).and_then(|p| {
                p.survey(&round.survey_id)
                    .map(|s| (s.anonymity, p.anonymity_threshold))
            });
            // The stored promise; a round from before it was stored follows the file, and a
            // survey gone from the configuration keeps the strongest promise.
            let mode = crate::domain::program::round_anonymity(
                round.anonymity,
                configured.map_or(Anonymity::Anonymous, |(a, _)| a),
            );
            if let Some((current, _)) = configured {
                if current != mode {
                    tracing::info!(round = round.id.0, opened_with = mode.as_str(), configured = current.as_str(),
                        "round closed under the anonymity mode it opened with; the configured mode applies to later rounds");
                }
            }
            if mode == Anonymity::Anonymous {
                let k = round
                    .anonymity_k
                    .or(configured.map(|(_, k)| i64::from(k)))
                    .unwrap_or(5)
                    .max(i64::from(crate::domain::program::MIN_THRESHOLD));
                tx.seal_round(round.id, k, now).await?;
                sealed += 1;
            }
            // Wins typed into the round, final now, go to the sponsor channels.
            crate::pulse::wins::queue_round_shoutouts(&mut tx, &self.catalog, round.id, now)
                .await?;
        }
        report.rounds_closed += rounds.len();
        report.sealed += sealed;
        tx.commit().await?;
        if sealed > 0 {
            if let Err(e) = self.store.checkpoint_after_seal().await {
                tracing::warn!(error = %e, "WAL checkpoint after a seal failed");
            }
        }
        Ok(())
    }

    /// Ticks every `tick_seconds` until shutdown, with the hourly directory refresh
    /// ([`Self::refresh_directory`]) running beside it.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let every = std::time::Duration::from_secs(self.settings.tick_seconds.max(1));
        // Directory reads are paced by Slack's tiers (a big workspace takes minutes), so they
        // run beside the ticks instead of holding them up.
        let directory = tokio::spawn(self.clone().refresh_directory(shutdown.clone()));
        loop {
            if *shutdown.borrow() {
                break;
            }
            match self.tick().await {
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "scheduler tick failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => {}
            }
        }
        let _ = directory.await;
    }

    /// Once an hour: re-reads user groups and refreshes Slack profiles older than
    /// `profile_refresh_hours`, until shutdown.
    async fn refresh_directory(self, mut shutdown: watch::Receiver<bool>) {
        let max_age = Duration::hours(self.settings.profile_refresh_hours as i64);
        // Start-up has just read the user groups and every profile (`apply_config`): the
        // first pass is an hour from now, so nobody is asked about twice at start.
        let mut last_refresh: Option<DateTime<Utc>> = Some(self.clock.now());
        loop {
            if *shutdown.borrow() {
                break;
            }
            let now = self.clock.now();
            if last_refresh.is_none_or(|t| now - t >= Duration::hours(1)) {
                if let Err(e) = crate::pulse::sync::resync_usergroups(&self.pulses).await {
                    tracing::warn!(error = %e, "could not re-read user groups");
                }
                crate::pulse::sync::refresh_profiles(&self.pulses, max_age).await;
                last_refresh = Some(now);
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// Why a member cannot be sent a DM, as `GET …/failures` shows it.
fn why_not_receiving(member: &MemberRow) -> &'static str {
    if member.slack_problem.as_deref() == Some("user_not_found") {
        "Slack does not know this member (user_not_found); see GET …/member-problems"
    } else if member.slack_deleted {
        "deactivated in Slack"
    } else if member.is_bot {
        "a bot"
    } else {
        "not an active member"
    }
}

/// Why a send-now did not start a round.
#[derive(Debug, thiserror::Error)]
pub enum SendNowError {
    /// `round.number` is the survey's own round number (what people read).
    #[error("round {} of survey '{survey}' is still open (opened {}, closes {})",
        round.number,
        round.opened_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        round.closes_at.to_rfc3339_opts(SecondsFormat::Secs, true))]
    AlreadyOpen { round: OpenRound, survey: String },
    #[error(transparent)]
    Store(#[from] crate::storage::StoreError),
}

/// What a send-now started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentNow {
    /// The round's id (the API's identifier).
    pub round: RoundId,
    /// The round's number within its survey (1 for its first round).
    pub number: i64,
    pub deliveries: usize,
}

impl Scheduler {
    /// Starts a round now for every eligible member of the survey's audience and hands the
    /// DMs to the outbox at once. Refused while another round of the survey is open.
    pub async fn send_now(
        &self,
        program: &Program,
        survey: &Survey,
    ) -> Result<SentNow, SendNowError> {
        let now = self.clock.now();
        let rows = self.store.members_of(&program.id).await?;
        let members: Vec<_> = plan_members(program, &rows)
            .into_iter()
            .filter(|m| survey.audience.contains(&m.role))
            .collect();
        let window = Duration::hours(i64::from(survey.window_hours));
        let period = format!("now:{}", now.to_rfc3339_opts(SecondsFormat::Millis, true));
        let mut tx = self.store.begin().await?;
        let round = NewRound {
            program_id: &program.id,
            survey_id: &survey.id,
            period_key: &period,
            origin: "send_now",
            opened_at: now,
            closes_at: now + window,
            anonymity: survey.anonymity,
            k: i64::from(program.anonymity_threshold),
        };
        // The open-round check and the insert are one atomic step (see open_send_now_round).
        let opened = match tx.open_send_now_round(&round, now).await {
            Ok(Ok(opened)) => opened,
            Ok(Err(round)) => {
                return Err(SendNowError::AlreadyOpen {
                    round,
                    survey: survey.id.clone(),
                })
            }
            Err(crate::storage::StoreError::Conflict(_)) => {
                return Err(SendNowError::AlreadyOpen {
                    round: OpenRound {
                        id: RoundId(0),
                        number: 0,
                        opened_at: now,
                        closes_at: now + window,
                    },
                    survey: survey.id.clone(),
                })
            }
            Err(e) => return Err(e.into()),
        };
        let mut created = 0;
        for m in &members {
            let delivery = NewDelivery {
                member_id: m.member_id,
                state: DeliveryState::Scheduled,
                scheduled_at: now,
                local_time: now
                    .with_timezone(&m.timezone)
                    .to_rfc3339_opts(SecondsFormat::Secs, false),
                timezone: m.timezone.name().to_string(),
                closes_at: now + window,
                remind_at: survey
                    .remind_after_hours
                    .map(|h| now + Duration::hours(i64::from(h))),
            };
            if tx.insert_delivery(opened.id, &delivery).await?.is_some() {
                created += 1;
            }
        }
        tx.audit(
            now,
            "admin",
            "survey.send_now",
            Some(&program.id),
            Some(&survey.id),
            &json!({ "round": opened.id, "number": opened.number, "deliveries": created }),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(
            program = %program.id,
            survey = %survey.id,
            round = opened.number,
            round_id = opened.id.0,
            origin = "send_now",
            members = created,
            "round opened"
        );
        let mut report = TickReport::default();
        self.dispatch(now, &mut report).await?;
        tracing::info!(
            event = "send_now",
            program = %program.id,
            survey = %survey.id,
            round = opened.number,
            deliveries = created,
            queued = report.queued,
            held = report.held,
            "send-now started a round"
        );
        Ok(SentNow {
            round: opened.id,
            number: opened.number,
            deliveries: created,
        })
    }
}

/// How far ahead the planner looks for other members' firings of a period (time zones up to
/// a day apart, a firing moved to the next working day over a weekend and a run of holidays).
const ROUND_LOOKAHEAD_DAYS: i64 = 14;

/// The rule that keeps late deliveries out of sealed rounds: a round does not close before
/// every audience member's firing of its period (in their own zone, moved to their next
/// working day) plus the window. For each period about to get deliveries this returns the
/// latest such instant, over the members known now. A firing later still (a member added
/// afterwards, or moved beyond the look-ahead) finds its round closed and is not delivered.
fn round_closing_times(
    program: &Program,
    survey: &Survey,
    members: &[PlanMember],
    pending: &[Pending],
    now: DateTime<Utc>,
) -> HashMap<String, DateTime<Utc>> {
    let window = Duration::hours(i64::from(survey.window_hours));
    let periods: HashSet<&str> = pending.iter().map(|(p, _, _)| p.as_str()).collect();
    let mut latest: HashMap<String, DateTime<Utc>> = HashMap::new();
    let from = now - window - Duration::days(1);
    let to = now + Duration::days(ROUND_LOOKAHEAD_DAYS);
    for member in members {
        for firing in member_firings(program, survey, member, from, to) {
            let period = firing.period_key();
            if !periods.contains(period.as_str()) {
                continue;
            }
            let closes = firing.utc + window;
            latest
                .entry(period)
                .and_modify(|t| *t = (*t).max(closes))
                .or_insert(closes);
        }
    }
    latest
}
