//! Applying `config/programs/` to the database (at start and on SIGHUP), and keeping
//! members' Slack details (time zone, deleted, bot, status) fresh.

use crate::domain::ids::ProgramId;
use chrono::Duration;
use serde_json::json;

use super::Pulses;
use crate::config::program::load_programs;
use crate::config::ConfigErrors;
use crate::domain::program::{Program, Survey};
use crate::domain::state::MemberState;
use crate::slack::outbound::client::SlackUser;
use crate::slack::outbound::SlackError;
use crate::storage::members::ProfileUpdate;
use crate::storage::programs::{
    DesiredMember, DesiredProgram, DesiredQuestion, DesiredSurvey, SyncReport,
};
use slack_facts::ids::UserId;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error("storage: {0}")]
    Store(#[from] crate::storage::StoreError),
}

/// Reads the programs folder, mirrors it into the database and swaps the catalog.
/// On a configuration error nothing changes and the previous configuration stays in force.
pub async fn apply_config(state: &Pulses) -> Result<Vec<(ProgramId, SyncReport)>, SyncError> {
    let mut programs = load_programs(&state.programs_dir)?;
    if state.teams.oauth_only() {
        let missing = crate::config::check::programs_without_workspace(&programs);
        if !missing.is_empty() {
            return Err(ConfigErrors(missing).into());
        }
    }
    for warning in programs.iter().flat_map(crate::config::program::warnings) {
        tracing::warn!(problem = %warning, "configuration warning");
    }
    let mut reports = Vec::new();
    for program in &mut programs {
        let report = apply_program(state, program).await?;
        reports.push((program.id.clone(), report));
    }
    state.catalog.replace(programs);
    let started = state.clock.now();
    // First sight of new members (and anyone not read for a day).
    refresh_profiles(state, state.profile_refresh).await;
    // Members Slack did not know last time are asked again on every reload: an ID fixed in
    // Slack (or a typo fixed in the file) should not wait for the daily refresh. Those the
    // refresh just read are not asked twice.
    recheck_problem_members(state, started).await;
    Ok(reports)
}

/// Applies one program read from its file: the run-time edits that hold are applied over
/// it (`program` is changed in place), those the file has changed since are dropped
/// (docs/config-precedence.md), and the result is mirrored into the database.
async fn apply_program(state: &Pulses, program: &mut Program) -> Result<SyncReport, SyncError> {
    let edits = state.store.overrides_of(&program.id).await?;
    let file = program.clone();
    let (kept, dropped) = super::admin::reconcile(program, edits);
    let mut desired = desired_program(state, program).await?;
    super::admin::apply_member_edits(&mut desired, &kept);
    let mut tx = state.store.begin().await?;
    for edit in &dropped {
        drop_edit(&mut tx, &file, edit, state.clock.now()).await?;
    }
    let report = tx.sync_program(&desired, state.clock.now()).await?;
    tx.set_program_team(program.id.as_str(), program.team_id.as_deref())
        .await?;
    tx.commit().await?;
    if report != SyncReport::default() {
        report.log(&program.id, "configuration applied");
    }
    Ok(report)
}

/// Re-reads one program from its file and its stored run-time edits, the same way as
/// [`apply_config`] does for all, and swaps it in the catalog: how a replica puts in force an
/// edit another replica made (docs/config-precedence.md, "Replicas"). The files are read
/// whole, so a broken file elsewhere leaves this program as it was (an error). `false`
/// when the files hold no such program (it stays as it is until a reload).
pub async fn reload_program(state: &Pulses, id: &ProgramId) -> Result<bool, SyncError> {
    let programs = load_programs(&state.programs_dir)?;
    let Some(mut program) = programs.into_iter().find(|p| &p.id == id) else {
        return Ok(false);
    };
    if state.teams.oauth_only() {
        let missing =
            crate::config::check::programs_without_workspace(std::slice::from_ref(&program));
        if !missing.is_empty() {
            return Err(ConfigErrors(missing).into());
        }
    }
    apply_program(state, &mut program).await?;
    super::admin::replace_in_catalog(state, program);
    Ok(true)
}

/// Drops a run-time edit the file has overridden, audited as such (actor `config`).
async fn drop_edit(
    tx: &mut crate::storage::StoreTx,
    file: &Program,
    edit: &crate::storage::overrides::Override,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), SyncError> {
    if !tx.delete_override(edit).await? {
        return Ok(());
    }
    let file_now = super::admin::field_value(file, &edit.survey_id, &edit.field);
    let subject = if edit.survey_id.is_empty() {
        edit.field.as_str()
    } else {
        edit.survey_id.as_str()
    };
    tx.audit(
        now,
        "config",
        "override.dropped",
        Some(&file.id),
        Some(subject),
        &json!({
            "field": edit.field,
            "reason": "the file's value changed since the run-time edit; the file wins",
            "before": edit.value,
            "after": file_now,
            "file_value_at_edit": edit.file_value,
            "edited_by": edit.actor,
        }),
    )
    .await?;
    tracing::info!(program = %file.id, survey = %edit.survey_id, field = %edit.field, edited_by = %edit.actor,
        "a run-time edit was dropped: the file's value changed since");
    Ok(())
}

/// Re-reads every member whose last users.info answered an error (`user_not_found`).
/// Returns how many are still unknown to Slack.
pub async fn recheck_problem_members(
    state: &Pulses,
    checked_before: chrono::DateTime<chrono::Utc>,
) -> usize {
    let users = match state.store.users_with_problems(checked_before).await {
        Ok(users) => users,
        Err(e) => {
            tracing::warn!(error = %e, "could not list members with a Slack problem");
            return 0;
        }
    };
    let mut still = 0;
    for user in users.iter().take(BULK_REFRESH_THRESHOLD) {
        match fetch_profile(state, user).await {
            Fetched::Stored => {}
            Fetched::NotFound => still += 1,
            Fetched::Limited => break,
            Fetched::Failed => {}
        }
    }
    still
}

/// What one users.info call came to.
enum Fetched {
    Stored,
    NotFound,
    Limited,
    Failed,
}

/// One users.info call, stored: the profile, or the member marked unknown to Slack (and
/// logged, so an operator sees a wrong Slack ID instead of a member who silently vanishes).
async fn fetch_profile(state: &Pulses, user_id: &UserId) -> Fetched {
    let now = state.clock.now();
    let team = for_member(state, user_id).await;
    let stored = match team.slack.users_info(user_id).await {
        Ok(user) => state
            .store
            .update_profile(user_id, &profile_of(&user), now)
            .await
            .map(|()| Fetched::Stored),
        Err(SlackError::Api { code, .. }) if code == "user_not_found" => {
            log_unknown_member(state, user_id).await;
            state
                .store
                .mark_profile_missing(user_id, now)
                .await
                .map(|()| Fetched::NotFound)
        }
        Err(e @ (SlackError::RateLimited { .. } | SlackError::LocallyLimited { .. })) => {
            tracing::info!(error = %e, "users.info rate limited; the rest waits for the next refresh");
            return Fetched::Limited;
        }
        Err(SlackError::Api { code, .. })
            if code == crate::slack::outbound::client::NOT_INSTALLED =>
        {
            // OAuth-only mode, the member's workspace is not installed yet: read once it is.
            tracing::debug!(user = %user_id, "users.info waits for the member's workspace to be installed");
            return Fetched::Failed;
        }
        Err(e) => {
            tracing::warn!(user = %user_id, error = %e, "users.info failed");
            return Fetched::Failed;
        }
    };
    stored.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "could not store a profile");
        Fetched::Failed
    })
}

/// The services for the workspace `user_id` is a member of: the `team_id` of their first
/// active program that has one, else the default installation.
async fn for_member(state: &Pulses, user_id: &UserId) -> Pulses {
    if state.catalog.programs().iter().all(|p| p.team_id.is_none()) {
        return state.clone();
    }
    let team = state
        .store
        .memberships_of(user_id)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.state != MemberState::Deactivated)
        .find_map(|m| {
            state
                .catalog
                .program(&m.program_id)
                .and_then(|p| p.team_id.clone())
        });
    state.for_team(team.as_deref()).await
}

/// The warning an operator needs: which member, in which programs, and what to do.
async fn log_unknown_member(state: &Pulses, user_id: &UserId) {
    let programs: Vec<String> = state
        .store
        .memberships_of(user_id)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.state != MemberState::Deactivated)
        .map(|m| m.program_id.to_string())
        .collect();
    tracing::warn!(
        member = %user_id,
        programs = %programs.join(","),
        problem = "user_not_found",
        "Slack does not know this member: no pulses are sent to them. Check the slack_id in the \
         program file; it is checked again on every reload (SIGHUP) and listed by \
         GET /api/v1/programs/{{id}}/member-problems"
    );
}

/// Re-reads one member's Slack profile now (a held member's status). True when something
/// was stored (the profile, or that Slack does not know them).
pub async fn refresh_profile(state: &Pulses, user_id: &UserId) -> bool {
    matches!(
        fetch_profile(state, user_id).await,
        Fetched::Stored | Fetched::NotFound
    )
}

/// Re-reads Slack user groups for programs that use them, so people who join or leave a
/// group join or leave the program without a restart. The files are not re-read (that is
/// what SIGHUP is for).
pub async fn resync_usergroups(state: &Pulses) -> Result<usize, SyncError> {
    let mut changed = 0;
    for program in state
        .catalog
        .programs()
        .iter()
        .filter(|p| !p.usergroups.is_empty())
    {
        let mut desired = desired_program(state, program).await?;
        // The catalog's programs carry the other edits already; members are applied here.
        let edits = state.store.overrides_of(&program.id).await?;
        super::admin::apply_member_edits(&mut desired, &edits);
        let mut tx = state.store.begin().await?;
        let report = tx.sync_program(&desired, state.clock.now()).await?;
        tx.commit().await?;
        if report != SyncReport::default() {
            report.log(&program.id, "user groups re-read");
            changed += 1;
        }
    }
    Ok(changed)
}

async fn desired_program(state: &Pulses, p: &Program) -> Result<DesiredProgram, SyncError> {
    let mut members: Vec<DesiredMember> = p
        .members
        .iter()
        .map(|m| DesiredMember {
            slack_user_id: m.slack_id.clone().into(),
            role: m.role.as_str().to_string(),
            source: "file".into(),
            timezone_override: m.timezone.map(|tz| tz.name().to_string()),
            working_days: m
                .working_days
                .as_ref()
                .map(|w| json!(w.names()).to_string()),
        })
        .collect();
    let team = state.for_team(p.team_id.as_deref()).await;
    for group in &p.usergroups {
        match team.slack.usergroup_members(&group.usergroup).await {
            Ok(ids) => members.extend(ids.into_iter().map(|id| DesiredMember {
                slack_user_id: id,
                role: group.role.as_str().to_string(),
                source: "usergroup".into(),
                timezone_override: None,
                working_days: None,
            })),
            Err(e) => {
                // Without Slack's answer, keep whom we had from this group rather than
                // deactivating them all.
                tracing::warn!(program = %p.id, usergroup = %group.usergroup, error = %e,
                    "could not read a user group; keeping its current members");
                let current = state.store.members_of(&p.id).await?;
                members.extend(
                    current
                        .into_iter()
                        .filter(|m| m.source == "usergroup" && m.state != MemberState::Deactivated)
                        .map(|m| DesiredMember {
                            slack_user_id: m.slack_user_id,
                            role: m.role,
                            source: m.source,
                            timezone_override: None,
                            working_days: None,
                        }),
                );
            }
        }
    }
    super::my_data::drop_forgotten(state, &p.id, &mut members).await?;
    Ok(DesiredProgram {
        id: p.id.clone(),
        name: p.name.clone(),
        timezone: p.timezone.name().to_string(),
        start_date: p.start_date.to_string(),
        settings: program_settings(p),
        members,
        surveys: p.surveys.iter().map(desired_survey).collect(),
    })
}

pub(super) fn program_settings(p: &Program) -> serde_json::Value {
    json!({
        "working_days": p.working_days.names(),
        "working_hours": [p.working_hours.0.format("%H:%M").to_string(), p.working_hours.1.format("%H:%M").to_string()],
        "holidays": p.holidays.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "sponsor_channels": p.sponsor_channels,
        "owners": p.owners,
        "admins": p.admins,
        "anonymity_threshold": p.anonymity_threshold,
        "comment_threshold": p.comment_threshold,
        "baseline_rounds": p.baseline_rounds,
        "on_non_working_day": format!("{:?}", p.on_non_working_day),
        "misfire": p.misfire,
        "out_of_office": p.out_of_office,
        "usergroups": p.usergroups.iter().map(|g| json!({"usergroup": g.usergroup, "role": g.role})).collect::<Vec<_>>(),
        "digest": { "cadence": p.digest.cadence.source(), "chart": p.digest.chart },
    })
}

pub(super) fn desired_survey(s: &Survey) -> DesiredSurvey {
    let mut definition = json!({
        "name": s.name,
        "audience": s.audience,
        "cadence": s.cadence.source(),
        "every_weeks": s.every_weeks,
        "window_hours": s.window_hours,
        "remind_after_hours": s.remind_after_hours,
        "anonymity": s.anonymity,
        // Whole questions, so a reworded prompt counts as a change (and is audited).
        "questions": s.questions,
    });
    // Only when set, so surveys stored before pausing existed read as unchanged.
    if s.paused {
        definition["paused"] = json!(true);
    }
    DesiredSurvey {
        id: s.id.clone(),
        definition,
        questions: s
            .questions
            .iter()
            .map(|q| DesiredQuestion {
                metric_key: q.key.clone(),
                kind: q.kind.as_str().to_string(),
                prompt: q.prompt.clone(),
                definition: json!(q),
            })
            .collect(),
    }
}

pub fn profile_of(user: &SlackUser) -> ProfileUpdate {
    ProfileUpdate {
        tz: user.tz.clone().filter(|tz| !tz.is_empty()),
        deleted: user.deleted,
        is_bot: user.is_bot,
        is_restricted: user.is_restricted || user.is_ultra_restricted,
        status_text: user.profile.status_text.clone().filter(|s| !s.is_empty()),
        status_emoji: user.profile.status_emoji.clone().filter(|s| !s.is_empty()),
    }
}

/// Above this many stale profiles one paged users.list (Tier 2, 200 users a page) is far
/// cheaper than one users.info (Tier 4) each.
const BULK_REFRESH_THRESHOLD: usize = 50;

/// Reads Slack profiles of members never read, or read longer than `max_age` ago.
/// Returns how many profiles were refreshed.
pub async fn refresh_profiles(state: &Pulses, max_age: Duration) -> usize {
    let now = state.clock.now();
    let stale = match state.store.stale_profiles(now - max_age, 1_000_000).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "could not list members to refresh");
            return 0;
        }
    };
    // users.list reads the default workspace only: with programs in other workspaces, their
    // members would look absent from it, so profiles are read one by one.
    let one_workspace = state.catalog.programs().iter().all(|p| p.team_id.is_none());
    if one_workspace && stale.len() > BULK_REFRESH_THRESHOLD {
        match state.slack.users_list().await {
            Ok(users) => return apply_user_list(state, &stale, users).await,
            Err(e) => {
                tracing::warn!(error = %e, "users.list failed; falling back to users.info for a few")
            }
        }
    }
    let mut refreshed = 0;
    for user_id in stale.iter().take(BULK_REFRESH_THRESHOLD) {
        match fetch_profile(state, user_id).await {
            Fetched::Stored | Fetched::NotFound => refreshed += 1,
            Fetched::Limited => break,
            Fetched::Failed => {}
        }
    }
    refreshed
}

async fn apply_user_list(state: &Pulses, stale: &[UserId], users: Vec<SlackUser>) -> usize {
    let now = state.clock.now();
    let by_id: std::collections::HashMap<&str, &SlackUser> =
        users.iter().map(|u| (u.id.as_str(), u)).collect();
    let mut refreshed = 0;
    for user_id in stale {
        // users.list includes deactivated accounts; someone absent from it does not exist.
        let result = match by_id.get(user_id.as_str()) {
            Some(user) => {
                state
                    .store
                    .update_profile(user_id, &profile_of(user), now)
                    .await
            }
            None => {
                log_unknown_member(state, user_id).await;
                state.store.mark_profile_missing(user_id, now).await
            }
        };
        match result {
            Ok(()) => refreshed += 1,
            Err(e) => tracing::warn!(error = %e, "could not store a profile"),
        }
    }
    refreshed
}
