//! `/pulse …` for members: help, status, pause, resume, opt out. Controls take effect at
//! once (the scheduler reads member state before every send) and are audited.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::Pulses;
use super::ServiceResult;
use crate::domain::planning::{member_firings, member_timezone};
use crate::domain::state::MemberState;
use crate::pulse::render::{self, format_local};
use crate::slack::incoming::commands::PulseCommand;
use crate::slack::incoming::payloads::SlashCommand;
use crate::storage::members::{plan_members, MemberControl, MemberRow};
use slack_facts::ids::UserId;

pub const HELP: &str = "*pulseloop* runs the short check-ins of your coaching program.\n\
• `/pulse help` — this help\n\
• `/pulse status` — what is waiting for you, and when the next pulse comes\n\
• `/pulse pause` or `/pulse pause until 2027-03-31` — stop pulses for a while\n\
• `/pulse resume` — start again (also after opting out)\n\
• `/pulse optout` — leave the program's pulses (asks you to confirm)\n\
• `/pulse win <text>` — share a small win (you choose: with your name, anonymously or private)\n\
• `/pulse action <text>` — owners: tell the people who answered what the program changed\n\
• `/pulse digest` — preview this period's digest (program owners)\n\
• `/pulse my-data` — get what pulseloop holds about you, as a file by DM\n\
• `/pulse forget-me` — erase what pulseloop holds about you (asks you to confirm)\n\
• `/pulse admin` — program admins: cadences, pauses, members, sponsor channel";

/// The reply to a slash command: its text, optional Block Kit blocks, and who sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandReply {
    pub text: String,
    pub blocks: Option<Value>,
    /// Only the person who typed the command sees it (every `/pulse` reply is so today).
    pub ephemeral: bool,
}

/// An ephemeral reply (only the person who typed the command sees it).
pub fn ephemeral(text: impl Into<String>) -> CommandReply {
    CommandReply {
        text: text.into(),
        blocks: None,
        ephemeral: true,
    }
}

pub async fn handle(state: &Pulses, command: SlashCommand) -> ServiceResult<CommandReply> {
    let user = &command.user_id;
    let parsed = PulseCommand::parse(&command.text);
    tracing::info!(event = "command", member = %user, command = command_name(&parsed), "/pulse command");
    match parsed {
        PulseCommand::Help => Ok(ephemeral(HELP)),
        PulseCommand::Unknown { input, problem } => {
            let lead = match problem {
                Some(p) => format!("I could not read `{input}`: {p}.\n"),
                None => format!("I don't know `{input}`.\n"),
            };
            Ok(ephemeral(format!("{lead}{HELP}")))
        }
        PulseCommand::Status => status(state, user).await,
        PulseCommand::Win { text } => super::wins::command(state, &command, &text).await,
        PulseCommand::Action { text } => super::actions::command(state, &command, &text).await,
        PulseCommand::Digest { program } => digest_preview(state, user, program.as_deref()).await,
        PulseCommand::MyData => super::my_data::command(state, &command).await,
        PulseCommand::ForgetMe => super::my_data::forget_me_command(state, &command).await,
        PulseCommand::Admin => super::admin_view::open(state, &command).await,
        PulseCommand::Pause { until } => {
            let memberships = active_memberships(state, user).await?;
            let Some(first) = memberships.first() else {
                return Ok(not_a_member());
            };
            let tz = zone_of(state, first);
            let until_at = match until {
                Some(date) => match end_of_day(date, tz) {
                    Some(at) if at > state.clock.now() => Some(at),
                    _ => {
                        return Ok(ephemeral(format!(
                            "{date} is already past; pick a later date."
                        )))
                    }
                },
                None => None,
            };
            control(state, user, MemberControl::Pause { until: until_at }).await?;
            Ok(ephemeral(match until_at {
                Some(at) => format!(":double_vertical_bar: Paused until {}. Pulses start again on their own after that; `/pulse resume` restarts them sooner.", render::pause_end(at, tz)),
                None => ":double_vertical_bar: Paused. No pulses until you type `/pulse resume`.".to_string(),
            }))
        }
        PulseCommand::Resume => {
            let n = control(state, user, MemberControl::Resume).await?;
            Ok(if n == 0 {
                not_a_member()
            } else {
                ephemeral(":arrow_forward: Resumed. Your next pulse comes as scheduled.")
            })
        }
        PulseCommand::OptOut { confirmed: false } => {
            if active_memberships(state, user).await?.is_empty() {
                return Ok(not_a_member());
            }
            Ok(CommandReply {
                text: "Opt out of all pulses? Your past answers stay in the program's totals."
                    .to_string(),
                blocks: Some(json!([
                    { "type": "section", "text": { "type": "mrkdwn", "text": "*Opt out of all pulses?* Your past answers stay in the program's totals; you can come back with `/pulse resume`." } },
                    { "type": "actions", "elements": [{
                        "type": "button", "style": "danger", "action_id": render::ACTION_OPTOUT_CONFIRM,
                        "text": { "type": "plain_text", "text": "Yes, opt me out" }, "value": "confirm"
                    }] }
                ])),
                ephemeral: true,
            })
        }
        PulseCommand::OptOut { confirmed: true } => {
            let n = control(state, user, MemberControl::OptOut).await?;
            Ok(if n == 0 {
                not_a_member()
            } else {
                ephemeral(optout_reply(n))
            })
        }
    }
}

/// What an opt-out (typed, or the "Yes, opt me out" button) answers; `changed` memberships.
pub fn optout_reply(changed: u64) -> String {
    if changed == 0 {
        NOT_A_MEMBER.to_string()
    } else {
        OPTED_OUT.to_string()
    }
}

pub const OPTED_OUT: &str =
    ":wave: You have opted out. No more pulses will come; `/pulse resume` brings you back.";
const NOT_A_MEMBER: &str =
    "You are not a member of any pulseloop program. Ask your program owner to add you.";

/// `/pulse digest`: the digest of the current period so far, seen only by the owner who
/// asked. Anyone else is refused (the digest is for owners and sponsors).
async fn digest_preview(
    state: &Pulses,
    user: &UserId,
    wanted: Option<&str>,
) -> ServiceResult<CommandReply> {
    let owned: Vec<_> = state
        .catalog
        .programs()
        .iter()
        .filter(|p| p.owners.iter().any(|o| o == user.as_str()))
        .filter(|p| wanted.is_none_or(|w| p.id.as_str() == w))
        .cloned()
        .collect();
    let Some(program) = owned.first() else {
        return Ok(ephemeral(match wanted {
            Some(w) => format!("You are not an owner of a program '{w}'. Only program owners can preview its digest."),
            None => "Only program owners can preview the digest.".to_string(),
        }));
    };
    let now = state.clock.now();
    let built = crate::digest::service::preview(&state.store, program, now).await;
    let d = match built {
        Ok(d) => d,
        Err(crate::digest::DigestError::Store(e)) => return Err(e.into()),
        Err(e) => return Ok(ephemeral(format!("The digest cannot be built: {e}."))),
    };
    let mut text = format!("Preview (only you see this): {}", d.text);
    if owned.len() > 1 {
        let others: Vec<&str> = owned[1..].iter().map(|p| p.id.as_str()).collect();
        text.push_str(&format!(
            " Other programs: `/pulse digest {}`.",
            others.join("`, `/pulse digest ")
        ));
    }
    Ok(CommandReply {
        text,
        blocks: Some(Value::Array(d.blocks)),
        ephemeral: true,
    })
}

fn not_a_member() -> CommandReply {
    ephemeral(NOT_A_MEMBER)
}

async fn active_memberships(state: &Pulses, user: &UserId) -> ServiceResult<Vec<MemberRow>> {
    Ok(state
        .store
        .memberships_of(user)
        .await?
        .into_iter()
        .filter(|m| m.state != MemberState::Deactivated)
        .collect())
}

fn zone_of(state: &Pulses, m: &MemberRow) -> Tz {
    match state.catalog.program(&m.program_id) {
        Some(p) => member_timezone(&p, m.timezone_override.as_deref(), m.slack_tz.as_deref()),
        None => m
            .slack_tz
            .as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or(Tz::UTC),
    }
}

/// The last instant of `date` in `tz` (a pause "until" a date includes that whole day).
fn end_of_day(date: NaiveDate, tz: Tz) -> Option<DateTime<Utc>> {
    let next = date.succ_opt()?.and_hms_opt(0, 0, 0)?;
    Some(crate::domain::cadence::resolve_local(tz, next).with_timezone(&Utc))
}

async fn control(state: &Pulses, user: &UserId, control: MemberControl) -> ServiceResult<u64> {
    let mut tx = state.store.begin().await?;
    let n = tx
        .apply_member_control(user, control, state.clock.now())
        .await?;
    tx.commit().await?;
    let event = match control {
        MemberControl::Pause { .. } => "pause",
        MemberControl::Resume => "resume",
        MemberControl::OptOut => "opt_out",
    };
    tracing::info!(event, member = %user, memberships = n, source = "command", "member control applied");
    Ok(n)
}

/// The subcommand's name for the log (never the free text typed).
fn command_name(c: &PulseCommand) -> &'static str {
    match c {
        PulseCommand::Help => "help",
        PulseCommand::Status => "status",
        PulseCommand::Pause { .. } => "pause",
        PulseCommand::Resume => "resume",
        PulseCommand::OptOut { confirmed: false } => "optout",
        PulseCommand::OptOut { confirmed: true } => "optout_confirm",
        PulseCommand::Digest { .. } => "digest",
        PulseCommand::Win { .. } => "win",
        PulseCommand::Action { .. } => "action",
        PulseCommand::MyData => "my_data",
        PulseCommand::ForgetMe => "forget_me",
        PulseCommand::Admin => "admin",
        PulseCommand::Unknown { .. } => "unknown",
    }
}

/// `/pulse status`: what waits for the member, and per program their standing and the next
/// pulse. Names only (program and survey names, never ids); a pause is honoured (no pulse is
/// announced before it ends) and its end reads as the confirmation said it.
async fn status(state: &Pulses, user: &UserId) -> ServiceResult<CommandReply> {
    let now = state.clock.now();
    let memberships = active_memberships(state, user).await?;
    if memberships.is_empty() {
        return Ok(not_a_member());
    }
    let mut lines = Vec::new();
    let pending = state.store.pending_deliveries_of(user, now).await?;
    for d in &pending {
        let tz = d.timezone.parse().unwrap_or(Tz::UTC);
        let (program, survey) = match state.catalog.program(&d.program_id) {
            Some(p) => {
                let survey = p
                    .survey(&d.survey_id)
                    .map_or_else(|| "a pulse".to_string(), |s| s.name.clone());
                (p.name.clone(), survey)
            }
            None => continue,
        };
        lines.push(format!(
            "• Waiting for you: *{}* ({}), closes {}",
            render::escape(&survey),
            render::escape(&program),
            format_local(d.closes_at, tz)
        ));
    }
    if lines.is_empty() {
        lines.push("• Nothing is waiting for you right now.".to_string());
    }
    for m in &memberships {
        let Some(program) = state.catalog.program(&m.program_id) else {
            continue;
        };
        let name = render::escape(&program.name);
        let tz = zone_of(state, m);
        // Pulses may come again from this instant (None: not before `/pulse resume`).
        let from = match m.state {
            MemberState::OptedOut => {
                lines.push(format!(
                    "• {name}: you opted out (`/pulse resume` to come back)."
                ));
                continue;
            }
            MemberState::Paused if m.is_paused(now) => match m.paused_until {
                Some(until) => {
                    lines.push(format!(
                        "• {name}: paused until {}.",
                        render::pause_end(until, tz)
                    ));
                    Some(until.max(now))
                }
                None => {
                    lines.push(format!(
                        "• {name}: paused, no pulses until you type `/pulse resume`."
                    ));
                    None
                }
            },
            _ => Some(now),
        };
        let Some(from) = from else {
            continue;
        };
        let plan = plan_members(&program, std::slice::from_ref(m));
        let next = plan.first().and_then(|pm| {
            program
                .surveys
                .iter()
                .filter_map(|s| {
                    member_firings(&program, s, pm, from, from + Duration::days(120))
                        .into_iter()
                        .find(|f| f.utc >= from && f.utc > now)
                        .map(|f| (f.utc, s.name.clone()))
                })
                .min_by_key(|(at, _)| *at)
        });
        match next {
            Some((at, survey)) => lines.push(format!(
                "• {name}: next pulse *{}* on {}.",
                render::escape(&survey),
                format_local(at, tz)
            )),
            None => lines.push(format!(
                "• {name}: no pulse is planned in the next 120 days."
            )),
        }
    }
    Ok(ephemeral(lines.join("\n")))
}
