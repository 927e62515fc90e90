//! `/pulse admin`: the admin view in Slack (a modal), and its buttons and forms.
//!
//! The root modal lists the programs the person administers: each survey's cadence in words,
//! its next sends, paused or running, where each value came from (file or run-time edit),
//! and the latest failed deliveries with Slack's reasons. Buttons pause, resume and send
//! now (then the root is redrawn with `views.update`), or push a form (`views.push`): the
//! cadence (validated on submit, errors next to the field with `response_action: errors`;
//! a valid cron is first shown with its next 5 sends via `response_action: update`, and
//! saved on the second submit), members (`multi_users_select`) and the sponsor channel
//! (`conversations_select`). Every change goes through [`super::admin`], which checks the
//! person is an admin of the program and audits it.
//!
//! Send-now belongs to the scheduler, a layer above this one: it is reached through the
//! [`SendNow`] port, which the HTTP layer fills with the scheduler.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::future::Future;

use super::admin::{self, Actor, AdminError, Source};
use super::commands::{ephemeral, CommandReply};
use super::{Pulses, ServiceResult};
use crate::domain::ids::ProgramId;
use crate::domain::program::{Program, Role, Survey};
use crate::domain::state::MemberState;
use crate::slack::incoming::payloads::{
    BlockActions, Interaction, SlashCommand, View, ViewSubmission,
};
use slack_facts::ids::UserId;

pub const ROOT_CALLBACK: &str = "admin:view";
pub const CADENCE_CALLBACK: &str = "admin:cadence";
pub const MEMBERS_CALLBACK: &str = "admin:members";
pub const SPONSOR_CALLBACK: &str = "admin:sponsor";

pub const ACTION_EDIT_CADENCE: &str = "admin:edit_cadence";
pub const ACTION_PAUSE: &str = "admin:pause";
pub const ACTION_RESUME: &str = "admin:resume";
pub const ACTION_SEND_NOW: &str = "admin:send_now";
pub const ACTION_MEMBERS: &str = "admin:members";
pub const ACTION_SPONSOR: &str = "admin:sponsor";

/// Input block ids of the forms (errors are keyed by them).
pub const BLOCK_CADENCE: &str = "cadence";
pub const BLOCK_EVERY_WEEKS: &str = "every_weeks";
pub const BLOCK_ADD: &str = "add";
pub const BLOCK_ROLE: &str = "role";
pub const BLOCK_REMOVE: &str = "remove";
pub const BLOCK_CHANNEL: &str = "channel";
/// Every input's action id.
const INPUT: &str = "v";

/// A modal holds at most 100 blocks (Block Kit); programs beyond what fits are named, not drawn.
const MAX_BLOCKS: usize = 100;
/// How many failed deliveries each program shows.
const FAILURES_SHOWN: i64 = 5;

/// Starts a survey round now; the scheduler does it (see the module docs).
pub trait SendNow: Sync {
    /// A sentence for the admin: what was sent, or why not.
    fn send_now(
        &self,
        program: &Program,
        survey: &Survey,
    ) -> impl Future<Output = Result<String, String>> + Send;
}

/// What Slack is told about an admin interaction.
#[derive(Debug, Clone, PartialEq)]
pub enum AdminOutcome {
    Ack,
    /// `response_action: errors`, by input block id.
    Errors(BTreeMap<String, String>),
    /// `response_action: update`: this view replaces the submitted one.
    Update(Value),
}

/// Is this interaction one of the admin view's?
pub fn is_admin_interaction(interaction: &Interaction) -> bool {
    match interaction {
        Interaction::BlockActions(ba) => {
            ba.actions.iter().any(|a| a.action_id.starts_with("admin:"))
        }
        Interaction::ViewSubmission(vs) => vs
            .view
            .callback_id
            .as_deref()
            .is_some_and(|c| c.starts_with("admin:")),
        _ => false,
    }
}

/// `/pulse admin`: opens the root view for a program admin; anyone else gets a polite
/// refusal, and the refusal is audited.
pub async fn open(state: &Pulses, command: &SlashCommand) -> ServiceResult<CommandReply> {
    let user = &command.user_id;
    if admin::programs_administered(state, user).is_empty() {
        refuse(state, user, None, "open the admin view").await?;
        return Ok(ephemeral(
            "Sorry, the admin view is for program admins only. If you think you should be one, \
             ask whoever looks after your program's configuration to add you to its `admins`.",
        ));
    }
    let Some(trigger) = command.trigger_id.as_deref() else {
        return Ok(ephemeral(
            "Slack sent no trigger for this command, so the admin view cannot open. Try again.",
        ));
    };
    let view = root_view(state, user, None).await?;
    match state.slack.views_open(trigger, &view).await {
        Ok(_) => {
            tracing::info!(member = %user, "admin view opened");
            Ok(ephemeral("Opening the admin view…"))
        }
        Err(e) => {
            tracing::warn!(error = %e, "views.open failed for the admin view");
            Ok(ephemeral(format!(
                "The admin view could not open ({e}). Please try `/pulse admin` again."
            )))
        }
    }
}

async fn refuse(
    state: &Pulses,
    user: &UserId,
    program: Option<&ProgramId>,
    what: &str,
) -> ServiceResult<()> {
    match admin::audit_refusal(state, &Actor::Slack(user.clone()), program, what).await {
        Ok(()) => Ok(()),
        Err(AdminError::Store(e)) => Err(e.into()),
        Err(_) => Ok(()),
    }
}

/// Handles a click or a form of the admin view.
pub async fn handle<S: SendNow>(
    state: &Pulses,
    scheduler: &S,
    interaction: Interaction,
) -> ServiceResult<AdminOutcome> {
    match interaction {
        Interaction::BlockActions(ba) => {
            for action in ba
                .actions
                .iter()
                .filter(|a| a.action_id.starts_with("admin:"))
            {
                on_click(
                    state,
                    scheduler,
                    &ba,
                    &action.action_id,
                    action.value.as_deref(),
                )
                .await?;
            }
            Ok(AdminOutcome::Ack)
        }
        Interaction::ViewSubmission(vs) => on_submit(state, vs).await,
        _ => Ok(AdminOutcome::Ack),
    }
}

/// A button's value: `program` or `program|survey`.
fn target(value: Option<&str>) -> Option<(ProgramId, String)> {
    let value = value?;
    let (program, survey) = value.split_once('|').unwrap_or((value, ""));
    Some((ProgramId::from(program), survey.to_string()))
}

async fn on_click<S: SendNow>(
    state: &Pulses,
    scheduler: &S,
    ba: &BlockActions,
    action_id: &str,
    value: Option<&str>,
) -> ServiceResult<()> {
    let user = &ba.user.id;
    let actor = Actor::Slack(user.clone());
    let Some((program_id, survey_id)) = target(value) else {
        return Ok(());
    };
    let program = match admin::program_for(state, &actor, &program_id).await {
        Ok(p) => p,
        Err(AdminError::Store(e)) => return Err(e.into()),
        Err(e) => {
            tracing::info!(member = %user, error = %e, "admin click refused");
            return Ok(());
        }
    };
    let root_id = ba.view.as_ref().and_then(|v| v.id.clone());
    let trigger = ba.trigger_id.as_deref();
    let note = match action_id {
        ACTION_PAUSE | ACTION_RESUME => {
            let pause = action_id == ACTION_PAUSE;
            match admin::set_paused(state, &actor, &program_id, &survey_id, pause).await {
                Ok(v) => Some(format!(
                    "{} *{}*.",
                    if pause {
                        ":double_vertical_bar: Paused"
                    } else {
                        ":arrow_forward: Resumed"
                    },
                    v.survey
                )),
                Err(AdminError::Store(e)) => return Err(e.into()),
                Err(e) => Some(format!(":warning: {e}")),
            }
        }
        ACTION_SEND_NOW => match program.survey(&survey_id) {
            Some(survey) => {
                let result = scheduler.send_now(&program, survey).await;
                let detail = match &result {
                    Ok(m) | Err(m) => m.clone(),
                };
                let mut tx = state.store.begin().await?;
                tx.audit(
                    state.clock.now(),
                    &actor.audit_name(),
                    if result.is_ok() {
                        "admin.send_now"
                    } else {
                        "admin.send_now.refused"
                    },
                    Some(&program_id),
                    Some(&survey_id),
                    &json!({ "result": detail }),
                )
                .await?;
                tx.commit().await?;
                Some(match result {
                    Ok(m) => format!(":outbox_tray: {m}"),
                    Err(m) => format!(":warning: {m}"),
                })
            }
            None => None,
        },
        ACTION_EDIT_CADENCE => {
            if let (Some(trigger), Some(survey)) = (trigger, program.survey(&survey_id)) {
                let meta = FormMeta::new(&program_id, &survey_id, root_id.clone());
                let view = cadence_form(state, &program, survey, &meta, None, None);
                push(state, trigger, &view).await;
            }
            None
        }
        ACTION_MEMBERS => {
            if let Some(trigger) = trigger {
                let meta = FormMeta::new(&program_id, "", root_id.clone());
                let view = members_form(state, &program, &meta).await?;
                push(state, trigger, &view).await;
            }
            None
        }
        ACTION_SPONSOR => {
            if let Some(trigger) = trigger {
                let meta = FormMeta::new(&program_id, "", root_id.clone());
                push(state, trigger, &sponsor_form(&program, &meta)).await;
            }
            None
        }
        _ => None,
    };
    if let (Some(note), Some(root)) = (note, root_id) {
        redraw_root(state, user, &root, Some(&note)).await?;
    }
    Ok(())
}

async fn push(state: &Pulses, trigger: &str, view: &Value) {
    if let Err(e) = state.slack.views_push(trigger, view).await {
        tracing::warn!(error = %e, "views.push failed for an admin form");
    }
}

async fn redraw_root(
    state: &Pulses,
    user: &UserId,
    root_id: &str,
    note: Option<&str>,
) -> ServiceResult<()> {
    let view = root_view(state, user, note).await?;
    if let Err(e) = state.slack.views_update(root_id, &view).await {
        tracing::warn!(error = %e, "views.update failed for the admin view");
    }
    Ok(())
}

/// What a pushed form carries in `private_metadata`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct FormMeta {
    program: String,
    #[serde(default)]
    survey: String,
    /// The root view, redrawn after a save.
    #[serde(default)]
    root: Option<String>,
    /// The cadence whose next sends were shown (the second submit saves it).
    #[serde(default)]
    previewed: Option<(String, u32)>,
}

impl FormMeta {
    fn new(program: &ProgramId, survey: &str, root: Option<String>) -> Self {
        Self {
            program: program.to_string(),
            survey: survey.to_string(),
            root,
            previewed: None,
        }
    }
    fn of(view: &View) -> Option<Self> {
        serde_json::from_str(view.private_metadata.as_deref()?).ok()
    }
}

fn input_text(view: &View, block: &str) -> Option<String> {
    view.state
        .as_ref()?
        .values
        .get(block)?
        .get(INPUT)?
        .value
        .clone()
}

fn errors_of(e: AdminError, fallback_block: &str) -> ServiceResult<AdminOutcome> {
    let (block, message) = match e {
        AdminError::Invalid { field, message } => {
            let block = match field {
                "cadence" => BLOCK_CADENCE,
                "every_weeks" => BLOCK_EVERY_WEEKS,
                "add" | "members" => BLOCK_ADD,
                "remove" => BLOCK_REMOVE,
                "channel" => BLOCK_CHANNEL,
                _ => fallback_block,
            };
            (block, message)
        }
        AdminError::Store(e) => return Err(e.into()),
        other => (fallback_block, other.to_string()),
    };
    Ok(AdminOutcome::Errors(BTreeMap::from([(
        block.to_string(),
        message,
    )])))
}

async fn on_submit(state: &Pulses, vs: ViewSubmission) -> ServiceResult<AdminOutcome> {
    let user = vs.user.id.clone();
    let actor = Actor::Slack(user.clone());
    let callback = vs.view.callback_id.clone().unwrap_or_default();
    let fallback = match callback.as_str() {
        CADENCE_CALLBACK => BLOCK_CADENCE,
        MEMBERS_CALLBACK => BLOCK_ADD,
        SPONSOR_CALLBACK => BLOCK_CHANNEL,
        _ => return Ok(AdminOutcome::Ack),
    };
    let Some(meta) = FormMeta::of(&vs.view) else {
        return Ok(AdminOutcome::Errors(BTreeMap::from([(
            fallback.to_string(),
            "this form lost its context; close it and open `/pulse admin` again".to_string(),
        )])));
    };
    let program_id = ProgramId::from(meta.program.as_str());
    // Checked (and a refusal audited) before anything is read from the form.
    let program = match admin::program_for(state, &actor, &program_id).await {
        Ok(p) => p,
        Err(e) => return errors_of(e, fallback),
    };
    let result = match callback.as_str() {
        CADENCE_CALLBACK => submit_cadence(state, &actor, &program, &vs.view, meta.clone()).await,
        MEMBERS_CALLBACK => submit_members(state, &actor, &program_id, &vs.view).await,
        _ => submit_sponsor(state, &actor, &program_id, &vs.view).await,
    };
    match result {
        Ok(Some(outcome)) => Ok(outcome),
        Ok(None) => {
            if let Some(root) = &meta.root {
                redraw_root(state, &user, root, Some(":white_check_mark: Saved.")).await?;
            }
            Ok(AdminOutcome::Ack)
        }
        Err(e) => errors_of(e, fallback),
    }
}

/// The cadence form: the first valid submit shows the next 5 sends (`update`), the second
/// with the same values saves. `Ok(None)` when saved.
async fn submit_cadence(
    state: &Pulses,
    actor: &Actor,
    program: &Program,
    view: &View,
    mut meta: FormMeta,
) -> Result<Option<AdminOutcome>, AdminError> {
    let cron = input_text(view, BLOCK_CADENCE).unwrap_or_default();
    let weeks_text = input_text(view, BLOCK_EVERY_WEEKS);
    let every_weeks = admin::parse_every_weeks(weeks_text.as_deref())?;
    let preview =
        admin::preview_cadence(program, &meta.survey, &cron, every_weeks, state.clock.now())?;
    let typed = (preview.cadence.clone(), every_weeks);
    if meta.previewed.as_ref() == Some(&typed) {
        admin::set_cadence(
            state,
            actor,
            &program.id,
            &meta.survey,
            &typed.0,
            every_weeks,
        )
        .await?;
        return Ok(None);
    }
    meta.previewed = Some(typed);
    let Some(survey) = program.survey(&meta.survey) else {
        return Err(AdminError::NotFound(format!("no survey '{}'", meta.survey)));
    };
    Ok(Some(AdminOutcome::Update(cadence_form(
        state,
        program,
        survey,
        &meta,
        Some((&cron, weeks_text.as_deref().unwrap_or("1"))),
        Some(&preview),
    ))))
}

async fn submit_members(
    state: &Pulses,
    actor: &Actor,
    program_id: &ProgramId,
    view: &View,
) -> Result<Option<AdminOutcome>, AdminError> {
    let values = view
        .state
        .as_ref()
        .map(|s| s.values.clone())
        .unwrap_or_default();
    let users = |block: &str| -> Vec<String> {
        values
            .get(block)
            .and_then(|b| b.get(INPUT))
            .and_then(|v| v.selected_users.clone())
            .unwrap_or_default()
    };
    let role = values
        .get(BLOCK_ROLE)
        .and_then(|b| b.get(INPUT))
        .and_then(|v| v.chosen_value())
        .and_then(Role::parse)
        .unwrap_or(Role::Participant);
    admin::edit_members(
        state,
        actor,
        program_id,
        &users(BLOCK_ADD),
        &users(BLOCK_REMOVE),
        role,
    )
    .await?;
    Ok(None)
}

async fn submit_sponsor(
    state: &Pulses,
    actor: &Actor,
    program_id: &ProgramId,
    view: &View,
) -> Result<Option<AdminOutcome>, AdminError> {
    let channel = view
        .state
        .as_ref()
        .and_then(|s| s.values.get(BLOCK_CHANNEL))
        .and_then(|b| b.get(INPUT))
        .and_then(|v| v.selected_conversation.clone().or_else(|| v.value.clone()))
        .unwrap_or_default();
    admin::set_sponsor_channel(state, actor, program_id, &channel).await?;
    Ok(None)
}

fn plain(text: &str) -> Value {
    json!({ "type": "plain_text", "text": clip(text, 150), "emoji": true })
}

fn mrkdwn(text: &str) -> Value {
    json!({ "type": "mrkdwn", "text": clip(text, 3000) })
}

/// At most `max` characters (Block Kit counts characters).
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}

fn button(text: &str, action_id: &str, value: &str) -> Value {
    json!({ "type": "button", "text": plain(text), "action_id": action_id, "value": value })
}

fn source_text(source: &Source) -> String {
    match source {
        Source::File => "_from the file_".to_string(),
        Source::Edit { by, at, .. } => format!(
            "_run-time edit by {} on {}_",
            by.strip_prefix("admin:")
                .map_or_else(|| by.clone(), |u| format!("<@{u}>")),
            at.format("%Y-%m-%d %H:%M UTC")
        ),
    }
}

/// The root modal for `user`: the programs they administer.
pub async fn root_view(state: &Pulses, user: &UserId, note: Option<&str>) -> ServiceResult<Value> {
    let now = state.clock.now();
    let mut blocks: Vec<Value> = Vec::new();
    if let Some(note) = note {
        blocks.push(json!({ "type": "context", "elements": [mrkdwn(note)] }));
    }
    let programs = admin::programs_administered(state, user);
    let mut left_out = Vec::new();
    for program in &programs {
        let program_blocks = program_blocks(state, program, now).await?;
        if blocks.len() + program_blocks.len() + 1 > MAX_BLOCKS {
            left_out.push(program.id.to_string());
            continue;
        }
        blocks.extend(program_blocks);
    }
    if !left_out.is_empty() {
        blocks.push(json!({ "type": "context", "elements": [mrkdwn(&format!(
            "Not shown (the view is full): {}. Use the admin API for these.", left_out.join(", ")
        ))] }));
    }
    Ok(json!({
        "type": "modal",
        "callback_id": ROOT_CALLBACK,
        "title": plain("pulseloop admin"),
        "close": plain("Close"),
        "blocks": blocks,
    }))
}

async fn program_blocks(
    state: &Pulses,
    program: &Program,
    now: chrono::DateTime<chrono::Utc>,
) -> ServiceResult<Vec<Value>> {
    let sources = admin::sources(&state.store, program).await;
    let members = state.store.members_of(&program.id).await?;
    let active = members
        .iter()
        .filter(|m| m.state != MemberState::Deactivated)
        .count();
    let channels = if program.sponsor_channels.is_empty() {
        "none".to_string()
    } else {
        program
            .sponsor_channels
            .iter()
            .map(|c| format!("<#{c}>"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let workspace = admin::workspace_status(state, program).await;
    let workspace_line = match workspace.status.as_str() {
        "default" | "installed" => String::new(),
        _ => format!("\n:warning: {}", workspace.detail),
    };
    let mut blocks = vec![
        json!({ "type": "header", "text": plain(&program.name) }),
        json!({ "type": "section", "text": mrkdwn(&format!(
            "`{}` · {} members · time zone {}\n*Sponsor channel:* {channels} {}{workspace_line}",
            program.id, active, program.timezone.name(),
            source_text(&admin::source_of(&sources, admin::FIELD_SPONSOR))
        )) }),
        json!({ "type": "actions", "elements": [
            button("Add or remove members", ACTION_MEMBERS, program.id.as_str()),
            button("Set sponsor channel", ACTION_SPONSOR, program.id.as_str()),
        ] }),
    ];
    for survey in &program.surveys {
        let v = admin::cadence_view(program, survey, now);
        let key = |field: &str| format!("{}.{field}", survey.id);
        let next = if v.paused {
            "none while paused".to_string()
        } else if v.next_sends.is_empty() {
            "none in the next two years".to_string()
        } else {
            v.next_sends
                .iter()
                .map(|s| s.label.clone())
                .collect::<Vec<_>>()
                .join(" · ")
        };
        blocks.push(json!({ "type": "section", "text": mrkdwn(&format!(
            "*{}* (`{}`) — {}\n{} {}\n`{}`{}\n*Next {} sends* ({} time): {}",
            survey.name, survey.id,
            if v.paused { format!(":double_vertical_bar: paused {}", source_text(&admin::source_of(&sources, &key(admin::FIELD_PAUSED)))) } else { ":arrow_forward: running".to_string() },
            v.described, source_text(&admin::source_of(&sources, &key(admin::FIELD_CADENCE))),
            v.cadence, if v.every_weeks > 1 { format!(", every_weeks = {}", v.every_weeks) } else { String::new() },
            admin::NEXT_SENDS, v.timezone, next
        )) }));
        let value = format!("{}|{}", program.id, survey.id);
        let toggle = if v.paused {
            button("Resume", ACTION_RESUME, &value)
        } else {
            button("Pause", ACTION_PAUSE, &value)
        };
        let mut send = button("Send now", ACTION_SEND_NOW, &value);
        send["confirm"] = json!({
            "title": plain("Send now?"),
            "text": plain(&format!("Everyone in the audience of {} gets it now.", survey.name)),
            "confirm": plain("Send"),
            "deny": plain("Cancel"),
        });
        blocks.push(json!({ "type": "actions", "elements": [
            button("Edit cadence", ACTION_EDIT_CADENCE, &value), toggle, send,
        ] }));
    }
    let failures = state
        .store
        .failed_deliveries(&program.id, FAILURES_SHOWN)
        .await?;
    let text = if failures.is_empty() {
        "*Failed deliveries:* none".to_string()
    } else {
        let lines: Vec<String> = failures
            .iter()
            .map(|f| {
                format!(
                    "• <@{}> · {} · {} · {}: {}",
                    f.member,
                    f.survey,
                    f.scheduled_at.format("%Y-%m-%d"),
                    f.state.as_str(),
                    f.reason.as_deref().unwrap_or("no reason given")
                )
            })
            .collect();
        format!(
            "*Failed deliveries* (latest {FAILURES_SHOWN}):\n{}",
            lines.join("\n")
        )
    };
    blocks.push(json!({ "type": "section", "text": mrkdwn(&text) }));
    blocks.push(json!({ "type": "divider" }));
    Ok(blocks)
}

fn meta_text(meta: &FormMeta) -> String {
    serde_json::to_string(meta).unwrap_or_default()
}

/// The cadence form; `typed` keeps what was typed, `preview` shows its next sends.
fn cadence_form(
    state: &Pulses,
    program: &Program,
    survey: &Survey,
    meta: &FormMeta,
    typed: Option<(&str, &str)>,
    preview: Option<&admin::CadenceView>,
) -> Value {
    let now_in_force = admin::cadence_view(program, survey, state.clock.now());
    let weeks = survey.every_weeks.to_string();
    let (cron, weeks) = typed.unwrap_or((survey.cadence.source(), &weeks));
    let mut blocks = vec![
        json!({ "type": "section", "text": mrkdwn(&format!(
            "*{}* now: {} (`{}`)", survey.name, now_in_force.described, now_in_force.cadence
        )) }),
        json!({
            "type": "input", "block_id": BLOCK_CADENCE,
            "label": plain("Cron: minute hour day-of-month month day-of-week"),
            "hint": plain("In each member's local time. Example: 0 10 * * MON (Mondays 10:00)"),
            "element": { "type": "plain_text_input", "action_id": INPUT, "initial_value": clip(cron, 150), "max_length": 150 },
        }),
        json!({
            "type": "input", "block_id": BLOCK_EVERY_WEEKS,
            "label": plain("Every how many weeks (1 = every week)"),
            "element": { "type": "plain_text_input", "action_id": INPUT, "initial_value": clip(weeks, 2), "max_length": 2 },
        }),
    ];
    let submit = match preview {
        Some(p) => {
            let next = if p.next_sends.is_empty() {
                "none in the next two years".to_string()
            } else {
                p.next_sends
                    .iter()
                    .map(|s| format!("• {}", s.label))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            blocks.push(json!({ "type": "section", "text": mrkdwn(&format!(
                "*With this cadence:* {}\n*Next {} sends* ({} time):\n{}\nSubmit again to save, or change the fields to preview another.",
                p.described, admin::NEXT_SENDS, p.timezone, next
            )) }));
            "Save"
        }
        None => "Preview",
    };
    json!({
        "type": "modal",
        "callback_id": CADENCE_CALLBACK,
        "title": plain("Edit cadence"),
        "submit": plain(submit),
        "close": plain("Back"),
        "private_metadata": meta_text(meta),
        "blocks": blocks,
    })
}

async fn members_form(state: &Pulses, program: &Program, meta: &FormMeta) -> ServiceResult<Value> {
    let members = state.store.members_of(&program.id).await?;
    let active: Vec<String> = members
        .iter()
        .filter(|m| m.state != MemberState::Deactivated)
        .map(|m| format!("<@{}>", m.slack_user_id))
        .collect();
    let shown = if active.len() > 40 {
        format!("{} and {} more", active[..40].join(", "), active.len() - 40)
    } else if active.is_empty() {
        "nobody yet".to_string()
    } else {
        active.join(", ")
    };
    let role_option = |r: Role| json!({ "text": plain(r.as_str()), "value": r.as_str() });
    Ok(json!({
        "type": "modal",
        "callback_id": MEMBERS_CALLBACK,
        "title": plain("Members"),
        "submit": plain("Save"),
        "close": plain("Back"),
        "private_metadata": meta_text(meta),
        "blocks": [
            { "type": "section", "text": mrkdwn(&format!("*{}* members: {shown}", program.name)) },
            { "type": "input", "block_id": BLOCK_ADD, "optional": true, "label": plain("Add"),
              "element": { "type": "multi_users_select", "action_id": INPUT, "placeholder": plain("People to add") } },
            { "type": "input", "block_id": BLOCK_ROLE, "optional": true, "label": plain("Role of those added"),
              "element": { "type": "static_select", "action_id": INPUT,
                           "initial_option": role_option(Role::Participant),
                           "options": [role_option(Role::Participant), role_option(Role::Leader)] } },
            { "type": "input", "block_id": BLOCK_REMOVE, "optional": true, "label": plain("Remove"),
              "element": { "type": "multi_users_select", "action_id": INPUT, "placeholder": plain("People to remove") } },
        ],
    }))
}

fn sponsor_form(program: &Program, meta: &FormMeta) -> Value {
    let mut element = json!({ "type": "conversations_select", "action_id": INPUT,
        "placeholder": plain("A channel"), "filter": { "include": ["public", "private"] } });
    if let Some(c) = program.sponsor_channels.first() {
        element["initial_conversation"] = json!(c);
    }
    json!({
        "type": "modal",
        "callback_id": SPONSOR_CALLBACK,
        "title": plain("Sponsor channel"),
        "submit": plain("Save"),
        "close": plain("Back"),
        "private_metadata": meta_text(meta),
        "blocks": [
            { "type": "section", "text": mrkdwn("The digest is posted here. Invite the app to the channel too.") },
            { "type": "input", "block_id": BLOCK_CHANNEL, "label": plain("Sponsor channel"), "element": element },
        ],
    })
}
