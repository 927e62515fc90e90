//! Program admins' run-time changes, shared by `/pulse admin` (Slack) and the admin API:
//! a survey's cadence, pausing and resuming a survey, adding and removing members, and the
//! sponsor channel. Each change is checked (only a program's `admins` may change it; the
//! admin token counts as one), stored as a run-time edit (`storage::overrides`), mirrored
//! into the configuration tables, audited with actor, before and after, and put in force at
//! once by swapping the program in the catalog.
//!
//! The precedence rule lives here too ([`reconcile`], called by `sync` on every reload): an
//! edit holds until the file's value for the same field changes; then the file wins and the
//! edit is dropped, audited as such (docs/config-precedence.md).

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;

use super::Pulses;
use crate::domain::cadence::{firings_between, Cadence};
use crate::domain::ids::ProgramId;
use crate::domain::planning::rules;
use crate::domain::program::{Program, Role, Survey};
use crate::domain::state::MemberState;
use crate::storage::overrides::Override;
use crate::storage::programs::{DesiredMember, DesiredProgram};
use crate::storage::{Store, StoreError};
use slack_facts::ids::UserId;

/// The fields a run-time edit may change.
pub const FIELD_CADENCE: &str = "cadence";
pub const FIELD_PAUSED: &str = "paused";
pub const FIELD_SPONSOR: &str = "sponsor_channels";
const MEMBER_PREFIX: &str = "member:";

/// How many upcoming sends the admin view and the API show.
pub const NEXT_SENDS: usize = 5;

/// The workspace a program runs in, as the admin view and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WorkspaceStatus {
    /// The program's `team_id`; `None`: the default installation.
    pub team_id: Option<String>,
    /// `default`, `installed`, `not_installed` (OAuth-only mode: its sends wait), `revoked`
    /// or `unusable`.
    pub status: String,
    /// In words.
    pub detail: String,
}

/// Where the sends of `program` go now (docs/install.md).
pub async fn workspace_status(state: &Pulses, program: &Program) -> WorkspaceStatus {
    use crate::slack::outbound::TeamRoute;
    let team = program.team_id.clone();
    let route = state.teams.route(team.as_deref().unwrap_or_default()).await;
    let (status, detail) = match route {
        Ok(TeamRoute::Default) => (
            "default",
            "the default installation (SLACK_BOT_TOKEN)".to_string(),
        ),
        Ok(TeamRoute::Installed { team_id, .. }) => {
            ("installed", format!("workspace {team_id}, installed"))
        }
        Ok(TeamRoute::NotInstalled { team_id }) => (
            "not_installed",
            format!(
                "workspace not installed: its sends wait until {} installs pulseloop \
                 (/slack/install)",
                if team_id.is_empty() {
                    "the workspace"
                } else {
                    team_id.as_str()
                }
            ),
        ),
        Ok(TeamRoute::Revoked { team_id, reason }) => (
            "revoked",
            format!("workspace {team_id} uninstalled or revoked ({reason}): nothing is sent"),
        ),
        Ok(TeamRoute::Unusable { team_id, reason }) => (
            "unusable",
            format!("workspace {team_id}'s token cannot be used ({reason}): nothing is sent"),
        ),
        Err(e) => {
            tracing::warn!(error = %e, program = %program.id, "cannot read the program's installation");
            ("unknown", "cannot read the installation now".to_string())
        }
    };
    WorkspaceStatus {
        team_id: team,
        status: status.to_string(),
        detail,
    }
}

/// Who asks for a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// Someone in Slack (`/pulse admin`); allowed when listed in the program's `admins`.
    Slack(UserId),
    /// The admin API, behind the admin token.
    Api,
}

impl Actor {
    /// As written in the audit log and shown as an edit's author.
    pub fn audit_name(&self) -> String {
        match self {
            Actor::Slack(u) => format!("admin:{u}"),
            Actor::Api => "api".to_string(),
        }
    }

    /// May this actor change `program`?
    pub fn may_change(&self, program: &Program) -> bool {
        match self {
            Actor::Api => true,
            Actor::Slack(u) => program.admins.iter().any(|a| a == u.as_str()),
        }
    }
}

/// Why a change was not made.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    NotFound(String),
    /// Not an admin of the program (the refusal is audited).
    #[error("{0}")]
    Forbidden(String),
    /// A bad value, with the field it belongs to (`cadence`, `every_weeks`, `members`, …).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type AdminResult<T> = Result<T, AdminError>;

/// One upcoming send: the local time in the program's zone (each member gets it at the same
/// wall-clock time in their own zone) and its UTC instant there.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NextSend {
    pub local_time: String,
    pub utc: String,
    /// "Mon 11 Jan 2027, 10:00"
    pub label: String,
}

/// What a cadence edit did (or would do, for a preview).
#[derive(Debug, Clone, Serialize)]
pub struct CadenceView {
    pub program: ProgramId,
    pub survey: String,
    pub cadence: String,
    pub every_weeks: u32,
    pub described: String,
    pub timezone: String,
    pub paused: bool,
    pub next_sends: Vec<NextSend>,
}

/// Where a current value came from.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Source {
    File,
    Edit {
        by: String,
        at: DateTime<Utc>,
        file_value: Value,
    },
}

impl Source {
    /// "file" or "run-time edit by admin:U0ADMIN01 on 2027-01-04 08:00 UTC".
    pub fn describe(&self) -> String {
        match self {
            Source::File => "file".to_string(),
            Source::Edit { by, at, .. } => {
                format!(
                    "run-time edit by {by} on {}",
                    at.format("%Y-%m-%d %H:%M UTC")
                )
            }
        }
    }
}

/// Finds a program in force, and checks that `actor` may change it. A refusal is audited.
pub async fn program_for(
    state: &Pulses,
    actor: &Actor,
    program_id: &ProgramId,
) -> AdminResult<Arc<Program>> {
    let program = state
        .catalog
        .program(program_id)
        .ok_or_else(|| AdminError::NotFound(format!("no program '{program_id}'")))?;
    if !actor.may_change(&program) {
        audit_refusal(state, actor, Some(program_id), "change the program").await?;
        return Err(AdminError::Forbidden(format!(
            "only the admins of '{program_id}' may change it"
        )));
    }
    Ok(program)
}

/// Records that `actor` was refused (`admin.refused`).
pub async fn audit_refusal(
    state: &Pulses,
    actor: &Actor,
    program_id: Option<&ProgramId>,
    what: &str,
) -> AdminResult<()> {
    let who = match actor {
        Actor::Slack(u) => format!("slack:{u}"),
        Actor::Api => "api".to_string(),
    };
    let mut tx = state.store.begin().await?;
    tx.audit(
        state.clock.now(),
        &who,
        "admin.refused",
        program_id,
        None,
        &json!({ "wanted": what, "reason": "not a program admin" }),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(actor = %who, wanted = what, "an admin change was refused: not a program admin");
    Ok(())
}

/// The programs `user` is an admin of.
pub fn programs_administered(state: &Pulses, user: &UserId) -> Vec<Arc<Program>> {
    let actor = Actor::Slack(user.clone());
    state
        .catalog
        .programs()
        .iter()
        .filter(|p| actor.may_change(p))
        .cloned()
        .collect()
}

fn survey_of<'a>(program: &'a Program, survey_id: &str) -> AdminResult<&'a Survey> {
    program.survey(survey_id).ok_or_else(|| {
        AdminError::NotFound(format!(
            "no survey '{survey_id}' in program '{}'",
            program.id
        ))
    })
}

/// A cadence as typed: checked with the project's cron parser and the rules a program file
/// must meet (a round must close before the next firing; it must fire at some point).
pub fn validate_cadence(survey: &Survey, cron: &str, every_weeks: u32) -> AdminResult<Cadence> {
    if !(1..=52).contains(&every_weeks) {
        return Err(AdminError::Invalid {
            field: "every_weeks",
            message: format!("every_weeks must be a whole number from 1 to 52, not {every_weeks}"),
        });
    }
    let cadence = Cadence::parse(cron).map_err(|e| AdminError::Invalid {
        field: "cadence",
        message: e.to_string(),
    })?;
    if !cadence.fires_ever() {
        return Err(AdminError::Invalid {
            field: "cadence",
            message: format!("'{}' never fires (no date matches it)", cadence.source()),
        });
    }
    let window = Duration::hours(i64::from(survey.window_hours));
    if let Some(gap) = cadence.gap_shorter_than(window, every_weeks > 1) {
        return Err(AdminError::Invalid {
            field: "cadence",
            message: format!(
                "'{}' fires again after {}, but a round stays open {} hours: fire at most once per window",
                cadence.source(),
                crate::domain::cadence::describe_gap(gap),
                survey.window_hours
            ),
        });
    }
    Ok(cadence)
}

/// Parses `every_weeks` as typed in a form (empty means 1).
pub fn parse_every_weeks(text: Option<&str>) -> AdminResult<u32> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(1),
        Some(t) => t.parse::<u32>().map_err(|_| AdminError::Invalid {
            field: "every_weeks",
            message: format!("every_weeks must be a whole number from 1 to 52, not '{t}'"),
        }),
    }
}

/// The next `n` sends of `survey` after `now`, in the program's zone and working days
/// (members in other zones get the same local time in theirs). None while paused.
pub fn next_sends(
    program: &Program,
    survey: &Survey,
    now: DateTime<Utc>,
    n: usize,
) -> Vec<NextSend> {
    if survey.paused {
        return Vec::new();
    }
    let rules = rules(program, survey, program.working_days);
    let mut out = Vec::new();
    let mut from = now;
    // Windows of 60 days, up to about two years ahead (a yearly cadence shows two sends).
    for _ in 0..13 {
        let to = from + Duration::days(60);
        for f in firings_between(&rules, program.timezone, from, to) {
            out.push(NextSend {
                local_time: f.local.to_rfc3339_opts(SecondsFormat::Secs, false),
                utc: f.utc.to_rfc3339_opts(SecondsFormat::Secs, true),
                label: f.local.format("%a %-d %b %Y, %H:%M").to_string(),
            });
            if out.len() == n {
                return out;
            }
        }
        from = to;
    }
    out
}

/// A cadence in words: "Mondays 10:00, every 2 weeks, each member's local time".
pub fn describe_cadence(cadence: &Cadence, every_weeks: u32) -> String {
    let fields: Vec<&str> = cadence.source().split_whitespace().collect();
    let (dom, month) = match fields.as_slice() {
        [_, _, dom, month, _] | [_, _, _, dom, month, _] => (*dom, *month),
        _ => ("*", "*"),
    };
    let open = |f: &str| f == "*" || f == "?";
    // The first date (from a fixed Monday) that fires gives the time(s) of day.
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default();
    let times: Vec<String> = (0..800)
        .filter_map(|i| start.checked_add_signed(Duration::days(i)))
        .map(|d| cadence.times_on(d))
        .find(|t| !t.is_empty())
        .unwrap_or_default()
        .iter()
        .map(|t| t.format("%H:%M").to_string())
        .collect();
    let time = match times.len() {
        0 => "never".to_string(),
        1..=3 => times.join(" and "),
        n => format!("{n} times a day from {}", times[0]),
    };
    let days = if open(dom) && open(month) {
        let week: Vec<chrono::NaiveDate> = (0..7)
            .filter_map(|i| start.checked_add_signed(Duration::days(i)))
            .collect();
        let hit: Vec<&str> = week
            .iter()
            .filter(|d| cadence.matches_date(**d))
            .map(|d| plural_day(d.format("%a").to_string()))
            .collect();
        match hit.len() {
            7 => "Every day".to_string(),
            5 if !hit.contains(&"Saturdays") && !hit.contains(&"Sundays") => "Weekdays".to_string(),
            _ => hit.join(" and "),
        }
    } else if !open(dom) && open(month) && fields.len() >= 5 && open(fields[fields.len() - 1]) {
        format!("Day {dom} of each month")
    } else {
        format!("On the days of `{}`", cadence.source())
    };
    let rhythm = match every_weeks {
        0 | 1 => String::new(),
        n => format!(", every {n} weeks"),
    };
    format!("{days} {time}{rhythm}, each member's local time")
}

fn plural_day(short: String) -> &'static str {
    match short.as_str() {
        "Mon" => "Mondays",
        "Tue" => "Tuesdays",
        "Wed" => "Wednesdays",
        "Thu" => "Thursdays",
        "Fri" => "Fridays",
        "Sat" => "Saturdays",
        _ => "Sundays",
    }
}

/// The survey's cadence, its words and its next sends, as now in force.
pub fn cadence_view(program: &Program, survey: &Survey, now: DateTime<Utc>) -> CadenceView {
    CadenceView {
        program: program.id.clone(),
        survey: survey.id.clone(),
        cadence: survey.cadence.source().to_string(),
        every_weeks: survey.every_weeks,
        described: describe_cadence(&survey.cadence, survey.every_weeks),
        timezone: program.timezone.name().to_string(),
        paused: survey.paused,
        next_sends: next_sends(program, survey, now, NEXT_SENDS),
    }
}

/// What a cadence edit would give, without saving it (the modal's preview step).
pub fn preview_cadence(
    program: &Program,
    survey_id: &str,
    cron: &str,
    every_weeks: u32,
    now: DateTime<Utc>,
) -> AdminResult<CadenceView> {
    let survey = survey_of(program, survey_id)?;
    let cadence = validate_cadence(survey, cron, every_weeks)?;
    let mut edited = survey.clone();
    edited.cadence = cadence;
    edited.every_weeks = every_weeks;
    Ok(cadence_view(program, &edited, now))
}

/// Sets a survey's cadence (and `every_weeks`). Returns the cadence now in force.
pub async fn set_cadence(
    state: &Pulses,
    actor: &Actor,
    program_id: &ProgramId,
    survey_id: &str,
    cron: &str,
    every_weeks: u32,
) -> AdminResult<CadenceView> {
    let program = program_for(state, actor, program_id).await?;
    let survey = survey_of(&program, survey_id)?;
    let cadence = validate_cadence(survey, cron, every_weeks)?;
    let after = json!({ "cadence": cadence.source(), "every_weeks": every_weeks });
    let mut edited = (*program).clone();
    if let Some(s) = edited.surveys.iter_mut().find(|s| s.id == survey_id) {
        s.cadence = cadence;
        s.every_weeks = every_weeks;
    }
    let edited = commit_edit(
        state,
        actor,
        &program,
        edited,
        survey_id,
        FIELD_CADENCE,
        after,
    )
    .await?;
    let survey = survey_of(&edited, survey_id)?;
    Ok(cadence_view(&edited, survey, state.clock.now()))
}

/// Pauses (`true`) or resumes a survey: a paused survey opens no new rounds.
pub async fn set_paused(
    state: &Pulses,
    actor: &Actor,
    program_id: &ProgramId,
    survey_id: &str,
    paused: bool,
) -> AdminResult<CadenceView> {
    let program = program_for(state, actor, program_id).await?;
    survey_of(&program, survey_id)?;
    let mut edited = (*program).clone();
    if let Some(s) = edited.surveys.iter_mut().find(|s| s.id == survey_id) {
        s.paused = paused;
    }
    let edited = commit_edit(
        state,
        actor,
        &program,
        edited,
        survey_id,
        FIELD_PAUSED,
        json!(paused),
    )
    .await?;
    let survey = survey_of(&edited, survey_id)?;
    Ok(cadence_view(&edited, survey, state.clock.now()))
}

/// Sets the sponsor channel (the digest goes there) to one channel.
pub async fn set_sponsor_channel(
    state: &Pulses,
    actor: &Actor,
    program_id: &ProgramId,
    channel: &str,
) -> AdminResult<Vec<String>> {
    let channel = channel.trim();
    let valid = channel.len() >= 9
        && channel.len() <= 20
        && matches!(channel.as_bytes()[0], b'C' | b'G')
        && channel
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !valid {
        return Err(AdminError::Invalid {
            field: "channel",
            message: format!("'{channel}' is not a Slack channel id (like C0123456789)"),
        });
    }
    let program = program_for(state, actor, program_id).await?;
    let mut edited = (*program).clone();
    edited.sponsor_channels = vec![channel.to_string()];
    let after = json!(edited.sponsor_channels);
    let edited = commit_edit(state, actor, &program, edited, "", FIELD_SPONSOR, after).await?;
    Ok(edited.sponsor_channels.clone())
}

/// What a members edit did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct MembersChange {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

fn slack_user(id: &str) -> AdminResult<UserId> {
    let id = id.trim();
    let valid = id.len() >= 9
        && id.len() <= 20
        && matches!(id.as_bytes()[0], b'U' | b'W')
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if valid {
        Ok(UserId::from(id))
    } else {
        Err(AdminError::Invalid {
            field: "members",
            message: format!("'{id}' is not a Slack user id (like U0123456789)"),
        })
    }
}

/// Adds members (with `role`) and removes others, in one transaction; each is audited.
/// Adding someone already in, or removing someone not in, is refused and changes nothing.
pub async fn edit_members(
    state: &Pulses,
    actor: &Actor,
    program_id: &ProgramId,
    add: &[String],
    remove: &[String],
    role: Role,
) -> AdminResult<MembersChange> {
    let add: Vec<UserId> = add
        .iter()
        .map(|u| slack_user(u))
        .collect::<Result<_, _>>()?;
    let remove: Vec<UserId> = remove
        .iter()
        .map(|u| slack_user(u))
        .collect::<Result<_, _>>()?;
    if add.is_empty() && remove.is_empty() {
        return Err(AdminError::Invalid {
            field: "members",
            message: "name at least one member to add or remove".into(),
        });
    }
    if let Some(both) = add.iter().find(|u| remove.contains(u)) {
        return Err(AdminError::Invalid {
            field: "members",
            message: format!("{both} is both added and removed"),
        });
    }
    let program = program_for(state, actor, program_id).await?;
    let now = state.clock.now();
    let rows = state.store.members_of(program_id).await?;
    let active = |u: &UserId| {
        rows.iter()
            .any(|m| &m.slack_user_id == u && m.state != MemberState::Deactivated)
    };
    if let Some(u) = add.iter().find(|u| active(u)) {
        return Err(AdminError::Invalid {
            field: "add",
            message: format!("{u} is already a member of '{program_id}'"),
        });
    }
    if let Some(u) = remove.iter().find(|u| !active(u)) {
        return Err(AdminError::Invalid {
            field: "remove",
            message: format!("{u} is not a member of '{program_id}'"),
        });
    }
    let in_file = |u: &UserId| program.members.iter().any(|m| m.slack_id == u.as_str());
    let mut tx = state.store.begin().await?;
    let mut change = MembersChange::default();
    for (user, present) in add
        .iter()
        .map(|u| (u, true))
        .chain(remove.iter().map(|u| (u, false)))
    {
        let field = format!("{MEMBER_PREFIX}{user}");
        let existing = tx.override_of(program_id, "", &field).await?;
        let file_value = json!({ "present": in_file(user) });
        let file_value = existing.map_or(file_value, |o| o.file_value);
        let after = if present {
            json!({ "present": true, "role": role.as_str() })
        } else {
            json!({ "present": false })
        };
        let written = if present {
            tx.admin_add_member(program_id, user, role.as_str(), now)
                .await?
        } else {
            tx.admin_remove_member(program_id, user, now).await?
        };
        if !written {
            return Err(AdminError::Conflict(format!(
                "{user} changed meanwhile; look again and retry"
            )));
        }
        store_or_clear(
            &mut tx,
            program_id,
            "",
            &field,
            &after,
            &file_value,
            actor,
            now,
        )
        .await?;
        let (action, before) = if present {
            ("admin.member.added", json!({ "present": false }))
        } else {
            ("admin.member.removed", json!({ "present": true }))
        };
        tx.audit(
            now,
            &actor.audit_name(),
            action,
            Some(program_id),
            Some(user.as_str()),
            &json!({ "field": field, "before": before, "after": after, "file_value": file_value }),
        )
        .await?;
        if present {
            change.added.push(user.to_string());
        } else {
            change.removed.push(user.to_string());
        }
    }
    tx.notify_config_changed(program_id).await?;
    tx.commit().await?;
    // New members' Slack details (zone) are read now rather than at the daily refresh.
    for user in &add {
        super::sync::refresh_profile(state, user).await;
    }
    Ok(change)
}

/// Stores the edit of one field, or clears it when the new value is the file's own.
#[allow(clippy::too_many_arguments)]
async fn store_or_clear(
    tx: &mut crate::storage::StoreTx,
    program_id: &ProgramId,
    survey_id: &str,
    field: &str,
    after: &Value,
    file_value: &Value,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AdminResult<()> {
    let present = tx.override_of(program_id, survey_id, field).await?;
    let matches_file = match (field.starts_with(MEMBER_PREFIX), after, file_value) {
        (true, a, f) => a.get("present") == f.get("present"),
        (false, a, f) => a == f,
    };
    if matches_file {
        if let Some(o) = present {
            tx.delete_override(&o).await?;
        }
    } else {
        tx.put_override(&Override {
            program_id: program_id.clone(),
            survey_id: survey_id.to_string(),
            field: field.to_string(),
            value: after.clone(),
            file_value: file_value.clone(),
            actor: actor.audit_name(),
            set_at: now,
        })
        .await?;
    }
    Ok(())
}

/// One edit of a survey or program field: stored (with the file value it was made
/// against), mirrored, audited with before and after, then put in force in the catalog.
async fn commit_edit(
    state: &Pulses,
    actor: &Actor,
    before_program: &Program,
    edited: Program,
    survey_id: &str,
    field: &str,
    after: Value,
) -> AdminResult<Program> {
    let before = field_value(before_program, survey_id, field);
    if before == after {
        // Nothing changes: nothing stored, nothing audited.
        return Ok(edited);
    }
    let now = state.clock.now();
    let program_id = &before_program.id;
    let mut tx = state.store.begin().await?;
    // With no edit stored, the value in force is the file's own.
    let file_value = tx
        .override_of(program_id, survey_id, field)
        .await?
        .map_or_else(|| before.clone(), |o| o.file_value);
    store_or_clear(
        &mut tx,
        program_id,
        survey_id,
        field,
        &after,
        &file_value,
        actor,
        now,
    )
    .await?;
    if survey_id.is_empty() {
        tx.set_program_settings(program_id, &super::sync::program_settings(&edited), now)
            .await?;
    } else if let Some(s) = edited.survey(survey_id) {
        tx.set_survey_definition(
            program_id,
            survey_id,
            &super::sync::desired_survey(s).definition,
            now,
        )
        .await?;
    }
    let action = match (field, &after) {
        (FIELD_PAUSED, Value::Bool(true)) => "admin.survey.paused",
        (FIELD_PAUSED, _) => "admin.survey.resumed",
        (FIELD_CADENCE, _) => "admin.cadence.set",
        _ => "admin.sponsor_channel.set",
    };
    let subject = if survey_id.is_empty() {
        program_id.as_str()
    } else {
        survey_id
    };
    tx.audit(
        now,
        &actor.audit_name(),
        action,
        Some(program_id),
        Some(subject),
        &json!({ "field": field, "before": before, "after": after, "file_value": file_value }),
    )
    .await?;
    // Every replica reloads the program once this commits (docs/config-precedence.md).
    tx.notify_config_changed(program_id).await?;
    tx.commit().await?;
    tracing::info!(program = %program_id, survey = survey_id, field, actor = %actor.audit_name(), "configuration edited at run time");
    replace_in_catalog(state, edited.clone());
    Ok(edited)
}

/// Swaps one program in the catalog (the others stay as they are; a program not in it is
/// not added).
pub(super) fn replace_in_catalog(state: &Pulses, program: Program) {
    let programs: Vec<Program> = state
        .catalog
        .programs()
        .iter()
        .map(|p| {
            if p.id == program.id {
                program.clone()
            } else {
                (**p).clone()
            }
        })
        .collect();
    state.catalog.replace(programs);
}

/// A field's value in `program` (`survey_id` empty for a program field), as stored in an
/// edit; `null` when the survey does not exist.
pub fn field_value(program: &Program, survey_id: &str, field: &str) -> Value {
    if let Some(user) = field.strip_prefix(MEMBER_PREFIX) {
        return json!({ "present": program.members.iter().any(|m| m.slack_id == user) });
    }
    if survey_id.is_empty() {
        return match field {
            FIELD_SPONSOR => json!(program.sponsor_channels),
            _ => Value::Null,
        };
    }
    let Some(s) = program.survey(survey_id) else {
        return Value::Null;
    };
    match field {
        FIELD_CADENCE => json!({ "cadence": s.cadence.source(), "every_weeks": s.every_weeks }),
        FIELD_PAUSED => json!(s.paused),
        _ => Value::Null,
    }
}

/// Applies one edit to a program read from its file. False when the value cannot be applied
/// (then the edit is treated like one the file overrode).
fn apply(program: &mut Program, o: &Override) -> bool {
    if o.field.starts_with(MEMBER_PREFIX) {
        // Members are applied to the desired member list ([`apply_member_edits`]).
        return true;
    }
    if o.survey_id.is_empty() {
        return match (
            o.field.as_str(),
            serde_json::from_value::<Vec<String>>(o.value.clone()),
        ) {
            (FIELD_SPONSOR, Ok(channels)) => {
                program.sponsor_channels = channels;
                true
            }
            _ => false,
        };
    }
    let Some(s) = program.surveys.iter_mut().find(|s| s.id == o.survey_id) else {
        return false;
    };
    match o.field.as_str() {
        FIELD_CADENCE => {
            let cron = o.value.get("cadence").and_then(Value::as_str);
            let weeks = o.value.get("every_weeks").and_then(Value::as_u64);
            match (cron.map(Cadence::parse), weeks) {
                (Some(Ok(c)), Some(w)) => {
                    s.cadence = c;
                    s.every_weeks = w as u32;
                    true
                }
                _ => false,
            }
        }
        FIELD_PAUSED => match o.value.as_bool() {
            Some(p) => {
                s.paused = p;
                true
            }
            None => false,
        },
        _ => false,
    }
}

/// The edits of one program, split by the precedence rule against the program as its file
/// now says: those that hold are applied to `program`; the others (the file's value changed
/// since the edit, or the edit no longer applies) are returned, to be dropped.
pub fn reconcile(program: &mut Program, edits: Vec<Override>) -> (Vec<Override>, Vec<Override>) {
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for o in edits {
        let file_now = field_value(program, &o.survey_id, &o.field);
        if file_now == o.file_value && apply(program, &o) {
            kept.push(o);
        } else {
            dropped.push(o);
        }
    }
    (kept, dropped)
}

/// Member edits that hold, applied to the member list a sync wants: an added member is
/// wanted (as a configured member, source `file`), a removed one is not.
pub fn apply_member_edits(desired: &mut DesiredProgram, kept: &[Override]) {
    for o in kept {
        let Some(user) = o.field.strip_prefix(MEMBER_PREFIX) else {
            continue;
        };
        let present = o
            .value
            .get("present")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        desired.members.retain(|m| m.slack_user_id.as_str() != user);
        if present {
            let role = o
                .value
                .get("role")
                .and_then(Value::as_str)
                .unwrap_or("participant");
            desired.members.push(DesiredMember {
                slack_user_id: UserId::from(user),
                role: role.to_string(),
                source: "file".into(),
                timezone_override: None,
                working_days: None,
            });
        }
    }
}

/// One line per value a run-time edit may change: where it came from (`check-config`, the
/// admin view). `edits` are the stored edits of `program` (empty without a database);
/// `program` is as its file says.
pub fn provenance(program: &Program, edits: &[Override]) -> Vec<(String, String, String)> {
    let mut file_program = program.clone();
    let (kept, dropped) = reconcile(&mut file_program, edits.to_vec());
    let source = |survey: &str, field: &str| -> String {
        if let Some(o) = kept
            .iter()
            .find(|o| o.survey_id == survey && o.field == field)
        {
            Source::Edit {
                by: o.actor.clone(),
                at: o.set_at,
                file_value: o.file_value.clone(),
            }
            .describe()
                + &format!(" (file says {})", o.file_value)
        } else if let Some(o) = dropped
            .iter()
            .find(|o| o.survey_id == survey && o.field == field)
        {
            format!(
                "file (the file changed since {}'s edit, which the next reload drops)",
                o.actor
            )
        } else {
            "file".to_string()
        }
    };
    let mut lines = Vec::new();
    lines.push((
        format!("{}.sponsor_channels", program.id),
        json!(file_program.sponsor_channels).to_string(),
        source("", FIELD_SPONSOR),
    ));
    for s in &file_program.surveys {
        lines.push((
            format!("{}/{}.cadence", program.id, s.id),
            format!("{} every {} week(s)", s.cadence.source(), s.every_weeks),
            source(&s.id, FIELD_CADENCE),
        ));
        lines.push((
            format!("{}/{}.paused", program.id, s.id),
            s.paused.to_string(),
            source(&s.id, FIELD_PAUSED),
        ));
    }
    for o in kept.iter().chain(dropped.iter()) {
        if let Some(user) = o.field.strip_prefix(MEMBER_PREFIX) {
            let present = o.value.get("present").and_then(Value::as_bool) == Some(true);
            lines.push((
                format!("{}.members.{user}", program.id),
                if present { "member" } else { "not a member" }.to_string(),
                source("", &o.field),
            ));
        }
    }
    lines
}

/// Where the sponsor channel, each cadence and each paused state of `program` come from, as
/// the admin view shows it: field → source.
pub async fn sources(store: &Store, program: &Program) -> Vec<(String, Source)> {
    let edits = store.overrides_of(&program.id).await.unwrap_or_default();
    edits
        .into_iter()
        .map(|o| {
            let key = if o.survey_id.is_empty() {
                o.field.clone()
            } else {
                format!("{}.{}", o.survey_id, o.field)
            };
            (
                key,
                Source::Edit {
                    by: o.actor,
                    at: o.set_at,
                    file_value: o.file_value,
                },
            )
        })
        .collect()
}

/// The source of one value, from [`sources`].
pub fn source_of(sources: &[(String, Source)], key: &str) -> Source {
    sources
        .iter()
        .find(|(k, _)| k == key)
        .map_or(Source::File, |(_, s)| s.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::program::parse_program;
    use std::path::Path;

    fn program(cadence: &str, every_weeks: u32) -> Program {
        let text = format!(
            "id = \"p\"\nname = \"P\"\ntimezone = \"Europe/Berlin\"\nstart_date = \"2027-01-04\"\n\
             admins = [\"U0ADMIN01\"]\nsponsor_channels = [\"C0SPONSOR1\"]\n\
             [[members]]\nslack_id = \"U0A000001\"\nrole = \"participant\"\n\
             [[surveys]]\nid = \"weekly\"\ncadence = \"{cadence}\"\nevery_weeks = {every_weeks}\n\
             [[surveys.questions]]\nkey = \"v\"\nkind = \"scale\"\nprompt = \"How?\"\n"
        );
        parse_program(Path::new("p.toml"), &text).expect("valid program")
    }

    #[test]
    fn cadences_read_as_words() {
        let c = |e: &str| Cadence::parse(e).unwrap();
        assert_eq!(
            describe_cadence(&c("0 10 * * MON"), 2),
            "Mondays 10:00, every 2 weeks, each member's local time"
        );
        assert_eq!(
            describe_cadence(&c("30 9 * * 1-5"), 1),
            "Weekdays 09:30, each member's local time"
        );
        assert_eq!(
            describe_cadence(&c("0 9 1 * *"), 1),
            "Day 1 of each month 09:00, each member's local time"
        );
        assert_eq!(
            describe_cadence(&c("0 9 * * TUE,THU"), 1),
            "Tuesdays and Thursdays 09:00, each member's local time"
        );
    }

    #[test]
    fn next_sends_follow_the_cadence_and_none_while_paused() {
        let p = program("0 10 * * MON", 2);
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2027, 1, 4, 8, 0, 0).unwrap();
        let sends = next_sends(&p, &p.surveys[0], now, 5);
        let utc: Vec<&str> = sends.iter().map(|s| s.utc.as_str()).collect();
        assert_eq!(
            utc,
            [
                "2027-01-04T09:00:00Z",
                "2027-01-18T09:00:00Z",
                "2027-02-01T09:00:00Z",
                "2027-02-15T09:00:00Z",
                "2027-03-01T09:00:00Z"
            ]
        );
        let mut paused = p.surveys[0].clone();
        paused.paused = true;
        assert!(next_sends(&p, &paused, now, 5).is_empty());
    }

    #[test]
    fn a_bad_cron_names_its_field() {
        let p = program("0 10 * * MON", 1);
        match validate_cadence(&p.surveys[0], "0 25 * * MON", 1) {
            Err(AdminError::Invalid { field, message }) => {
                assert_eq!(field, "cadence");
                assert!(message.contains("hour"), "{message}");
            }
            other => panic!("expected a field error, got {other:?}"),
        }
        assert!(matches!(
            validate_cadence(&p.surveys[0], "0 10 * * MON", 0),
            Err(AdminError::Invalid {
                field: "every_weeks",
                ..
            })
        ));
    }

    fn edit(field: &str, survey: &str, value: Value, file_value: Value) -> Override {
        Override {
            program_id: ProgramId::from("p"),
            survey_id: survey.into(),
            field: field.into(),
            value,
            file_value,
            actor: "admin:U0ADMIN01".into(),
            set_at: Utc::now(),
        }
    }

    #[test]
    fn an_edit_holds_until_the_file_value_changes() {
        let cadence_edit = edit(
            FIELD_CADENCE,
            "weekly",
            json!({ "cadence": "0 9 * * TUE", "every_weeks": 1 }),
            json!({ "cadence": "0 10 * * MON", "every_weeks": 1 }),
        );
        let mut same_file = program("0 10 * * MON", 1);
        let (kept, dropped) = reconcile(&mut same_file, vec![cadence_edit.clone()]);
        assert_eq!((kept.len(), dropped.len()), (1, 0));
        assert_eq!(same_file.surveys[0].cadence.source(), "0 9 * * TUE");

        let mut changed_file = program("0 11 * * MON", 1);
        let (kept, dropped) = reconcile(&mut changed_file, vec![cadence_edit]);
        assert_eq!((kept.len(), dropped.len()), (0, 1));
        assert_eq!(changed_file.surveys[0].cadence.source(), "0 11 * * MON");
    }

    #[test]
    fn only_listed_admins_may_change_a_program() {
        let p = program("0 10 * * MON", 1);
        assert!(Actor::Slack(UserId::from("U0ADMIN01")).may_change(&p));
        assert!(!Actor::Slack(UserId::from("U0A000001")).may_change(&p));
        assert!(Actor::Api.may_change(&p));
    }
}
