//! The App Home tab, published with `views.publish` through the outbox when a member opens it
//! (`app_home_opened`) and after a control clicked on it.
//!
//! What a member sees is theirs alone: their open pulses, their OWN answers and personal trend
//! from confidential and attributed rounds, the wins that name them, their controls, and what
//! pulseloop collects. Anonymous answers are never shown, before or after the seal: the tab is
//! an outbox payload, which outlives the seal, so for an anonymous round it reads the same
//! whether or not the member answered ("Answer or change"). An owner also sees the headline
//! numbers of each owned program's latest digest and a "Preview digest" button.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use std::collections::BTreeMap;

use super::render::{self, escape, format_local, truncate, CONTEXT_TEXT_MAX, SECTION_MAX};
use super::{Pulses, ServiceResult};
use crate::domain::ids::ProgramId;
use crate::domain::planning::member_timezone;
use crate::domain::program::{round_anonymity, Anonymity, Program, QuestionKind};
use crate::domain::state::{Consent, MemberState};
use crate::slack::protocol::HomeAction;
use crate::storage::home::{LatestDigest, OwnAnswer, OwnWin};
use crate::storage::members::MemberRow;
use crate::storage::outbox::NewOutboxMessage;
use crate::storage::rounds::DeliveryRow;
use crate::storage::StoreTx;
use slack_facts::block_kit::MAX_VIEW_BLOCKS;
use slack_facts::ids::UserId;

/// Open pulses listed on the tab.
const MAX_OPEN: usize = 10;
/// Rounds of own answers listed (newest first).
const MAX_ROUNDS: usize = 5;
/// Own answers read for the list and the trend.
const ANSWERS_READ: i64 = 400;
/// Wins listed.
const MAX_WINS: i64 = 5;
/// Points of a personal trend.
const TREND_POINTS: usize = 8;
/// Metrics shown per digest headline.
const MAX_DIGEST_METRICS: usize = 5;

/// The start of the "preview digest" DM, before the digest's own text fallback.
pub const DIGEST_PREVIEW_PREFIX: &str = "Digest preview (only you see this; nothing was posted):";
pub const DIGEST_PREVIEW_REFUSED: &str = "Only the program's owners can preview its digest.";

/// Queues the member's Home tab in `tx` (the event's transaction). `nonce` makes the outbox
/// key unique per opening (the event id, or the click's action_ts).
pub async fn queue_publish(
    state: &Pulses,
    tx: &mut StoreTx,
    user: &UserId,
    nonce: &str,
) -> ServiceResult<()> {
    let row = publish_row(state, user, nonce).await?;
    tx.enqueue(&row, state.clock.now()).await?;
    Ok(())
}

/// Queues the member's Home tab on its own (after a control committed).
pub async fn publish_now(state: &Pulses, user: &UserId, nonce: &str) -> ServiceResult<()> {
    let row = publish_row(state, user, nonce).await?;
    state.store.enqueue(&row, state.clock.now()).await?;
    Ok(())
}

async fn publish_row(
    state: &Pulses,
    user: &UserId,
    nonce: &str,
) -> ServiceResult<NewOutboxMessage> {
    let view = home_view(state, user).await?;
    let mut row = NewOutboxMessage::new(
        format!("home:{user}:{nonce}"),
        "views.publish",
        json!({ "user_id": user, "view": view }),
    );
    row.channel_key = None;
    Ok(row)
}

/// A DM to `user` through the outbox (the answer to a click on the Home tab, which has no
/// channel for an ephemeral message).
pub fn dm_row(user: &UserId, key: String, text: &str) -> NewOutboxMessage {
    let mut row = NewOutboxMessage::new(
        key,
        "chat.postMessage",
        json!({ "channel": user, "text": text }),
    );
    row.channel_key = Some(user.to_string());
    row
}

/// The programs in force that this member belongs to (not deactivated), with their rows.
fn memberships(state: &Pulses, rows: Vec<MemberRow>) -> Vec<(MemberRow, std::sync::Arc<Program>)> {
    rows.into_iter()
        .filter(|m| m.state != MemberState::Deactivated)
        .filter_map(|m| {
            let p = state.catalog.program(&m.program_id)?;
            Some((m, p))
        })
        .collect()
}

/// The Home view (`type: home`).
pub async fn home_view(state: &Pulses, user: &UserId) -> ServiceResult<Value> {
    let now = state.clock.now();
    let member_of = memberships(state, state.store.memberships_of(user).await?);
    let owned: Vec<std::sync::Arc<Program>> = state
        .catalog
        .programs()
        .iter()
        .filter(|p| p.owners.iter().any(|o| o == user.as_str()))
        .cloned()
        .collect();
    let mut blocks = Vec::new();

    for program in &owned {
        let digest = state.store.latest_digest(&program.id).await?;
        blocks.extend(owner_blocks(program, digest.as_ref()));
    }

    let tz = member_of
        .first()
        .map(|(m, p)| member_timezone(p, m.timezone_override.as_deref(), m.slack_tz.as_deref()))
        .unwrap_or(Tz::UTC);
    if member_of.is_empty() {
        if owned.is_empty() {
            blocks.push(section(
                "You are not in any pulseloop program yet. Ask your program owner to add you.",
            ));
        }
    } else {
        blocks.push(header("Your pulses"));
        blocks.extend(standing_blocks(&member_of, now, tz));
        blocks.push(json!({ "type": "divider" }));
        let open = state.store.open_deliveries_of(user, now).await?;
        blocks.extend(open_blocks(state, &open));
        blocks.push(json!({ "type": "divider" }));
        let answers = state.store.own_answers(user, ANSWERS_READ).await?;
        blocks.extend(answer_blocks(state, &answers, tz));
        blocks.push(json!({ "type": "divider" }));
        let wins = state.store.own_wins(user, MAX_WINS).await?;
        blocks.extend(win_blocks(state, &wins));
    }
    blocks.push(json!({ "type": "divider" }));
    let k = member_of
        .first()
        .map(|(_, p)| p.anonymity_threshold)
        .or_else(|| owned.first().map(|p| p.anonymity_threshold))
        .unwrap_or(crate::domain::program::MIN_THRESHOLD.max(5));
    blocks.extend(privacy_blocks(k));
    blocks.truncate(MAX_VIEW_BLOCKS);
    Ok(json!({ "type": "home", "blocks": blocks }))
}

fn header(text: &str) -> Value {
    json!({ "type": "header", "text": { "type": "plain_text", "text": truncate(text, 150), "emoji": true } })
}

fn section(text: &str) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": truncate(text, SECTION_MAX) } })
}

fn context(text: &str) -> Value {
    json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": truncate(text, CONTEXT_TEXT_MAX) }] })
}

fn button(action: HomeAction, text: &str, value: &str) -> Value {
    json!({
        "type": "button",
        "action_id": action.as_str(),
        "text": { "type": "plain_text", "text": text, "emoji": true },
        "value": value,
    })
}

/// Each program's standing (getting pulses, paused, opted out) and the controls.
fn standing_blocks(
    member_of: &[(MemberRow, std::sync::Arc<Program>)],
    now: DateTime<Utc>,
    tz: Tz,
) -> Vec<Value> {
    let mut lines = Vec::new();
    let (mut any_active, mut any_stopped) = (false, false);
    for (m, p) in member_of {
        let name = escape(&p.name);
        let standing = match m.state {
            MemberState::OptedOut => {
                any_stopped = true;
                "you opted out; `/pulse resume` or Resume brings you back.".to_string()
            }
            MemberState::Paused if m.is_paused(now) => {
                any_stopped = true;
                match m.paused_until {
                    Some(until) => format!("paused until {}.", render::pause_end(until, tz)),
                    None => "paused until you resume.".to_string(),
                }
            }
            _ => {
                any_active = true;
                "you get its pulses.".to_string()
            }
        };
        lines.push(format!("*{name}*: {standing}"));
    }
    let mut buttons = Vec::new();
    if any_active {
        buttons.push(button(HomeAction::Pause, "Pause", "pause"));
    }
    if any_stopped {
        let mut resume = button(HomeAction::Resume, "Resume", "resume");
        resume["style"] = json!("primary");
        buttons.push(resume);
    }
    if member_of
        .iter()
        .any(|(m, _)| m.state != MemberState::OptedOut)
    {
        let mut optout = button(HomeAction::OptOut, "Opt out", "optout");
        optout["style"] = json!("danger");
        optout["confirm"] = json!({
            "title": { "type": "plain_text", "text": "Opt out of all pulses?" },
            "text": { "type": "mrkdwn", "text": "Your past answers stay in the program's totals; you can come back with `/pulse resume`." },
            "confirm": { "type": "plain_text", "text": "Yes, opt me out" },
            "deny": { "type": "plain_text", "text": "Cancel" },
            "style": "danger",
        });
        buttons.push(optout);
    }
    vec![
        section(&lines.join("\n")),
        json!({ "type": "actions", "elements": buttons }),
    ]
}

/// Pulses still open to answers, each with a button that opens the survey modal. An
/// anonymous round's line and button read the same whether or not the member answered.
fn open_blocks(state: &Pulses, open: &[DeliveryRow]) -> Vec<Value> {
    let mut blocks = vec![section("*Waiting for you*")];
    let mut listed = 0;
    for d in open {
        let Some(program) = state.catalog.program(&d.program_id) else {
            continue;
        };
        let Some(survey) = program.survey(&d.survey_id) else {
            continue;
        };
        if listed == MAX_OPEN {
            break;
        }
        listed += 1;
        let tz = d.timezone.parse().unwrap_or(program.timezone);
        let anonymity = round_anonymity(d.round_anonymity, survey.anonymity);
        let answered = d.state == crate::domain::state::DeliveryState::Answered;
        let (note, label, primary) = match anonymity {
            Anonymity::Anonymous => (
                "You can answer or change your answer until then.",
                "Answer or change",
                true,
            ),
            _ if answered => ("You answered.", "Change answer", false),
            _ => ("Not answered yet.", "Answer", true),
        };
        let mut b = json!({
            "type": "button",
            "action_id": render::ACTION_OPEN_MODAL,
            "text": { "type": "plain_text", "text": label, "emoji": true },
            "value": d.id.to_string(),
        });
        if primary {
            b["style"] = json!("primary");
        }
        let mut block = section(&format!(
            "*{}* ({}), closes {}\n{note}",
            escape(&survey.name),
            escape(&program.name),
            format_local(d.closes_at, tz)
        ));
        block["accessory"] = b;
        blocks.push(block);
    }
    if listed == 0 {
        blocks.push(section("Nothing is waiting for you right now."));
    }
    blocks
}

/// The member's own answers, newest round first, and a trend per numeric question.
fn answer_blocks(state: &Pulses, answers: &[OwnAnswer], tz: Tz) -> Vec<Value> {
    let mut blocks = vec![
        section("*Your answers*"),
        context("From confidential and attributed pulses only. Answers to anonymous pulses are never shown, not even to you: once a pulse closes, nothing links them to you."),
    ];
    // Rounds in the order read (newest first), each with its answers.
    let mut rounds: Vec<(crate::domain::ids::RoundId, Vec<&OwnAnswer>)> = Vec::new();
    for a in answers {
        match rounds.last_mut() {
            Some((id, list)) if *id == a.round_id => list.push(a),
            _ => rounds.push((a.round_id, vec![a])),
        }
    }
    for (_, list) in rounds.iter().take(MAX_ROUNDS) {
        let first = list[0];
        let Some(program) = state.catalog.program(&first.program_id) else {
            continue;
        };
        let Some(survey) = program.survey(&first.survey_id) else {
            continue;
        };
        let mut lines = vec![format!(
            "*{}*, {}",
            escape(&survey.name),
            first.opened_at.with_timezone(&tz).format("%a %-d %b %Y")
        )];
        for q in &survey.questions {
            if let Some(a) = list.iter().find(|a| a.metric_key == q.key) {
                lines.extend(render::answer_line(
                    q,
                    a.value_number,
                    a.value_text.as_deref(),
                ));
            }
        }
        blocks.push(section(&lines.join("\n")));
    }
    if rounds.is_empty() {
        blocks.push(section(
            "No answers to confidential or attributed pulses yet.",
        ));
        return blocks;
    }
    let trend = trend_lines(state, answers);
    if !trend.is_empty() {
        blocks.push(section(&format!("*Your trend*\n{}", trend.join("\n"))));
    }
    blocks
}

/// One line per numeric question with at least two of the member's answers: a sparkline of
/// the last few, oldest first, and the latest value.
fn trend_lines(state: &Pulses, answers: &[OwnAnswer]) -> Vec<String> {
    // (program, survey, key) → values newest first.
    let mut series: BTreeMap<(ProgramId, String, String), Vec<f64>> = BTreeMap::new();
    for a in answers {
        if let Some(v) = a.value_number {
            series
                .entry((
                    a.program_id.clone(),
                    a.survey_id.clone(),
                    a.metric_key.clone(),
                ))
                .or_default()
                .push(v);
        }
    }
    let mut lines = Vec::new();
    for ((program_id, survey_id, key), newest_first) in series {
        if newest_first.len() < 2 {
            continue;
        }
        let Some(program) = state.catalog.program(&program_id) else {
            continue;
        };
        let Some(q) = program.survey(&survey_id).and_then(|s| s.question(&key)) else {
            continue;
        };
        let (lo, hi) = match q.kind {
            QuestionKind::Scale => (1.0, 5.0),
            QuestionKind::Enps => (0.0, 10.0),
            QuestionKind::YesNo => (0.0, 1.0),
            _ => continue,
        };
        let mut points: Vec<f64> = newest_first.into_iter().take(TREND_POINTS).collect();
        points.reverse();
        let latest = points.last().copied().unwrap_or_default();
        lines.push(format!(
            "• {} {} latest: *{}* ({} pulses)",
            escape(&q.prompt),
            sparkline(&points, lo, hi),
            render::describe_answer(q, Some(latest), None),
            points.len()
        ));
    }
    lines
}

/// ▁▂▃▄▅▆▇█ for values on [lo, hi].
pub fn sparkline(values: &[f64], lo: f64, hi: f64) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    values
        .iter()
        .map(|v| {
            let span = (hi - lo).max(f64::EPSILON);
            let i = (((v - lo) / span) * 7.0).round().clamp(0.0, 7.0) as usize;
            BARS[i]
        })
        .collect()
}

fn win_blocks(state: &Pulses, wins: &[OwnWin]) -> Vec<Value> {
    let mut lines = vec!["*Your wins*".to_string()];
    for w in wins {
        let how = match w.consent {
            Consent::Named => "shared with your name",
            Consent::Anonymous => "shared without your name",
            Consent::Private => "private",
        };
        let program = state
            .catalog
            .program(&w.program_id)
            .map(|p| format!(" ({})", escape(&p.name)))
            .unwrap_or_default();
        lines.push(format!(
            "• “{}” — {how}{program}",
            escape(&truncate(&w.text, 300))
        ));
    }
    if wins.is_empty() {
        lines.push("No wins yet. Share one any time with `/pulse win …`.".to_string());
    }
    vec![
        section(&lines.join("\n")),
        context(
            "Wins you shared without your name are not listed: nothing stored links them to you.",
        ),
    ]
}

/// What pulseloop collects and who sees it, in the same words as every DM.
fn privacy_blocks(k: u32) -> Vec<Value> {
    vec![
        section("*What we collect and who sees it*\n\
            We keep your answers to each pulse, when you were asked, your Slack time zone and status \
            (to reach you at your local time and hold pulses while you are away), and the wins you share. \
            Each pulse says which of these promises it makes:"),
        section(&[Anonymity::Anonymous, Anonymity::Confidential, Anonymity::Attributed]
            .map(|m| render::anonymity_statement(m, k))
            .join("\n")),
        context("\"The program team\" is the program's owners and sponsors. Nobody, admins included, can read through pulseloop who gave an anonymous answer, or anyone's confidential answers."),
    ]
}

/// An owner's view of one program: the latest digest's headline numbers and the preview button.
fn owner_blocks(program: &Program, digest: Option<&LatestDigest>) -> Vec<Value> {
    let name = escape(&program.name);
    let mut blocks = vec![header(&format!("{}: program owner", program.name))];
    match digest {
        None => blocks.push(section(&format!("*{name}*: No digest yet."))),
        Some(d) => {
            let tz = program.timezone;
            let period = format!(
                "{} to {}",
                d.period_start.with_timezone(&tz).format("%a %-d %b"),
                (d.period_end - chrono::Duration::seconds(1))
                    .with_timezone(&tz)
                    .format("%a %-d %b %Y")
            );
            let content: Value = serde_json::from_str(&d.content).unwrap_or(Value::Null);
            let mut lines = vec![format!("*{name}*: last digest, {period}")];
            lines.extend(digest_headline(&content, program.anonymity_threshold));
            blocks.push(section(&lines.join("\n")));
        }
    }
    let mut preview = button(
        HomeAction::PreviewDigest,
        "Preview digest",
        program.id.as_str(),
    );
    preview["style"] = json!("primary");
    blocks.push(json!({ "type": "actions", "elements": [preview] }));
    blocks.push(json!({ "type": "divider" }));
    blocks
}

/// The headline numbers of a stored digest (the preview JSON shape): participation, the first
/// metrics, eNPS. A number the digest suppressed stays suppressed.
fn digest_headline(content: &Value, k: u32) -> Vec<String> {
    let mut lines = Vec::new();
    let p = &content["participation"];
    if let (Some(asked), Some(answered)) = (p["asked"].as_i64(), p["answered"].as_i64()) {
        let rate = p["rate"]
            .as_f64()
            .map(|r| format!(" ({:.0} %)", r * 100.0))
            .unwrap_or_default();
        lines.push(format!("• Participation: {answered} of {asked}{rate}"));
    }
    let metrics = content["metrics"].as_array().cloned().unwrap_or_default();
    for m in metrics.iter().take(MAX_DIGEST_METRICS) {
        let key = escape(m["key"].as_str().unwrap_or("metric"));
        let n = m["n"].as_i64().unwrap_or(0);
        let line = match m["mean"].as_f64() {
            Some(mean) if m["suppressed"].as_bool() != Some(true) => {
                let mut l = format!("• {key}: *{mean:.1}* (n = {n})");
                if let Some(delta) = m["delta_baseline"].as_f64() {
                    let noise = if m["within_noise"].as_bool() == Some(true) {
                        ", within noise"
                    } else {
                        ""
                    };
                    l.push_str(&format!(", {delta:+.1} on the baseline{noise}"));
                }
                l
            }
            _ => format!("• {key}: fewer than {k} answers, not shown"),
        };
        lines.push(line);
    }
    if metrics.len() > MAX_DIGEST_METRICS {
        lines.push(format!(
            "• and {} more in the digest",
            metrics.len() - MAX_DIGEST_METRICS
        ));
    }
    let e = &content["enps"];
    if e.is_object() {
        match e["score"].as_f64() {
            Some(score) => lines.push(format!(
                "• eNPS: *{score:+.0}* (n = {})",
                e["n"].as_i64().unwrap_or(0)
            )),
            None => lines.push(format!("• eNPS: fewer than {k} answers, not shown")),
        }
    }
    if lines.is_empty() {
        lines.push("The digest was posted to the sponsor channel.".to_string());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_span_the_scale() {
        assert_eq!(sparkline(&[1.0, 3.0, 5.0], 1.0, 5.0), "▁▅█");
        assert_eq!(sparkline(&[0.0, 10.0], 0.0, 10.0), "▁█");
    }

    #[test]
    fn digest_headlines_keep_suppressed_numbers_hidden() {
        let content = json!({
            "participation": { "asked": 10, "answered": 8, "rate": 0.8 },
            "metrics": [
                { "key": "coaching_value", "n": 8, "mean": 4.125, "suppressed": false,
                  "delta_baseline": 0.4, "within_noise": false },
                { "key": "confidence", "n": 2, "mean": null, "suppressed": true }
            ],
            "enps": { "n": 8, "score": 25.0 }
        });
        assert_eq!(
            digest_headline(&content, 5),
            vec![
                "• Participation: 8 of 10 (80 %)",
                "• coaching_value: *4.1* (n = 8), +0.4 on the baseline",
                "• confidence: fewer than 5 answers, not shown",
                "• eNPS: *+25* (n = 8)",
            ]
        );
    }
}
