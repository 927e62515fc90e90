//! Block Kit for pulses: the DM (open, answered, closed), the reminder and the survey modal.
//!
//! Every text that comes from configuration is cut to Slack's limits with an ellipsis, so a
//! long prompt or many options never make Slack answer `invalid_blocks`.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use std::collections::BTreeMap;

use crate::domain::program::{round_anonymity, Anonymity, Program, Question, QuestionKind, Survey};
use crate::storage::rounds::DeliveryRow;

pub const SECTION_MAX: usize = 3000;
pub const BUTTON_TEXT_MAX: usize = 75;
pub const OPTION_TEXT_MAX: usize = 75;
pub const LABEL_MAX: usize = 2000;
pub const CONTEXT_TEXT_MAX: usize = 3000;
pub const MODAL_TITLE_MAX: usize = 24;
pub const FALLBACK_MAX: usize = 3000;
pub const TEXT_ANSWER_MAX: usize = 3000;

/// Buttons or a menu: Slack allows 25 elements per actions block; above 5 choices a menu reads better.
const MAX_CHOICE_BUTTONS: usize = 5;

pub const MODAL_CALLBACK: &str = "pulse_modal";
pub const ACTION_OPEN_MODAL: &str = "open_modal";
pub const ACTION_OPTOUT_CONFIRM: &str = "optout_confirm";

/// Cuts `text` to at most `max` characters, ending with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn plain(text: &str, max: usize) -> Value {
    json!({ "type": "plain_text", "text": truncate(text, max), "emoji": true })
}

fn mrkdwn(text: &str, max: usize) -> Value {
    json!({ "type": "mrkdwn", "text": truncate(text, max) })
}

/// Slack mrkdwn needs &, < and > escaped in text we did not write.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Plainly, who will see what: every DM says it.
pub fn anonymity_statement(mode: Anonymity, k: u32) -> String {
    match mode {
        Anonymity::Anonymous => format!(
            ":lock: Anonymous: your answers are unlinked from your name when this pulse closes; \
             sponsors only see totals of {k} or more people."
        ),
        Anonymity::Confidential => format!(
            ":closed_lock_with_key: Confidential: only you see your own answers; \
             the program sees totals of {k} or more people."
        ),
        Anonymity::Attributed => {
            ":bust_in_silhouette: Attributed: program owners see your name next to your answers."
                .to_string()
        }
    }
}

pub fn format_local(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%a %-d %b, %H:%M %Z")
        .to_string()
}

/// What the DM needs to know about its delivery.
pub struct DmContext<'a> {
    pub program: &'a Program,
    pub survey: &'a Survey,
    pub delivery_id: i64,
    pub closes_at: DateTime<Utc>,
    pub timezone: Tz,
    /// The promise of the delivery's round (the mode it opened with), not today's file.
    pub anonymity: Anonymity,
    pub k: u32,
}

impl DmContext<'_> {
    fn context_block(&self, closed: bool) -> Value {
        let when = if closed {
            format!("Closed {}", format_local(self.closes_at, self.timezone))
        } else {
            format!("Closes {}", format_local(self.closes_at, self.timezone))
        };
        json!({
            "type": "context",
            "elements": [
                mrkdwn(&anonymity_statement(self.anonymity, self.k), CONTEXT_TEXT_MAX),
                mrkdwn(&format!("*{}* · {}", escape(&self.program.name), when), CONTEXT_TEXT_MAX),
            ]
        })
    }

    fn intro(&self) -> Value {
        json!({
            "type": "section",
            "text": mrkdwn(&format!("*{}* — {}", escape(&self.program.name), escape(&self.survey.name)), SECTION_MAX),
        })
    }

    /// block_id of a question's inline block: carries the delivery and the question.
    fn block_id(&self, question: &Question) -> String {
        truncate(&format!("pulse:{}:{}", self.delivery_id, question.key), 255)
    }
}

/// The DM context of a stored delivery (its zone is the one it was planned in).
pub fn dm_context<'a>(program: &'a Program, survey: &'a Survey, d: &DeliveryRow) -> DmContext<'a> {
    DmContext {
        program,
        survey,
        delivery_id: d.id,
        closes_at: d.closes_at(),
        timezone: d.timezone.parse().unwrap_or(program.timezone),
        anonymity: round_anonymity(d.round_anonymity, survey.anonymity),
        k: d.round_k
            .and_then(|k| u32::try_from(k).ok())
            .unwrap_or(program.anonymity_threshold),
    }
}

/// The values a question accepts, with their labels: (value, label).
pub fn choices(q: &Question) -> Vec<(String, String)> {
    match q.kind {
        QuestionKind::Scale => (1..=5)
            .map(|v| {
                let label = match (v, &q.low_label, &q.high_label) {
                    (1, Some(low), _) => format!("1 · {low}"),
                    (5, _, Some(high)) => format!("5 · {high}"),
                    _ => v.to_string(),
                };
                (v.to_string(), label)
            })
            .collect(),
        QuestionKind::Enps => (0..=10).map(|v| (v.to_string(), v.to_string())).collect(),
        QuestionKind::YesNo => vec![("yes".into(), "Yes".into()), ("no".into(), "No".into())],
        QuestionKind::Choice => q
            .options
            .iter()
            .enumerate()
            .map(|(i, o)| (i.to_string(), o.clone()))
            .collect(),
        QuestionKind::Text | QuestionKind::Win => Vec::new(),
    }
}

/// How an answer reads back to its author.
pub fn describe_answer(q: &Question, number: Option<f64>, text: Option<&str>) -> String {
    match q.kind {
        QuestionKind::Text | QuestionKind::Win => text
            .map(|t| format!("“{}”", truncate(t, 200)))
            .unwrap_or_default(),
        _ => {
            let value = match (q.kind, number) {
                (QuestionKind::YesNo, Some(n)) => if n >= 1.0 { "yes" } else { "no" }.to_string(),
                (_, Some(n)) => format!("{}", n as i64),
                (_, None) => return String::new(),
            };
            choices(q)
                .into_iter()
                .find(|(v, _)| *v == value)
                .map(|(_, label)| label)
                .unwrap_or(value)
        }
    }
}

/// A question's inline answer elements (buttons or a menu) for the DM.
fn inline_question(ctx: &DmContext, q: &Question) -> Vec<Value> {
    let mut blocks = vec![json!({
        "type": "section",
        "text": mrkdwn(&format!("*{}*", escape(&q.prompt)), SECTION_MAX),
    })];
    let block_id = ctx.block_id(q);
    match q.kind {
        QuestionKind::Text | QuestionKind::Win => {
            let label = if q.kind == QuestionKind::Win {
                "Share a win"
            } else {
                "Write an answer"
            };
            blocks.push(json!({
                "type": "actions",
                "block_id": block_id,
                "elements": [{
                    "type": "button",
                    "action_id": ACTION_OPEN_MODAL,
                    "text": plain(label, BUTTON_TEXT_MAX),
                    "value": ctx.delivery_id.to_string(),
                }]
            }));
        }
        QuestionKind::Choice if q.options.len() > MAX_CHOICE_BUTTONS => {
            let options: Vec<Value> = choices(q)
                .into_iter()
                .take(100)
                .map(|(v, label)| json!({ "text": plain(&label, OPTION_TEXT_MAX), "value": v }))
                .collect();
            blocks.push(json!({
                "type": "actions",
                "block_id": block_id,
                "elements": [{
                    "type": "static_select",
                    "action_id": "answer",
                    "placeholder": plain("Choose…", 150),
                    "options": options,
                }]
            }));
        }
        _ => {
            let buttons: Vec<Value> = choices(q)
                .into_iter()
                .take(25)
                .map(|(v, label)| {
                    // Scale buttons show the number; the end labels go in a context line.
                    let text = if q.kind == QuestionKind::Scale {
                        v.clone()
                    } else {
                        label
                    };
                    json!({
                        "type": "button",
                        "action_id": format!("answer:{v}"),
                        "text": plain(&text, BUTTON_TEXT_MAX),
                        "value": v,
                    })
                })
                .collect();
            blocks.push(json!({ "type": "actions", "block_id": block_id, "elements": buttons }));
            if q.kind == QuestionKind::Scale || q.kind == QuestionKind::Enps {
                let (lo, hi) = if q.kind == QuestionKind::Scale {
                    ("1", "5")
                } else {
                    ("0", "10")
                };
                let low = q.low_label.clone().unwrap_or_else(|| {
                    if q.kind == QuestionKind::Enps {
                        "Not at all likely".into()
                    } else {
                        "Low".into()
                    }
                });
                let high = q.high_label.clone().unwrap_or_else(|| {
                    if q.kind == QuestionKind::Enps {
                        "Extremely likely".into()
                    } else {
                        "High".into()
                    }
                });
                blocks.push(json!({
                    "type": "context",
                    "elements": [mrkdwn(&format!("{lo} = {} · {hi} = {}", escape(&low), escape(&high)), CONTEXT_TEXT_MAX)]
                }));
            }
        }
    }
    blocks
}

fn fallback_text(ctx: &DmContext, lead: &str) -> String {
    truncate(
        &format!(
            "{lead} {}: {} (closes {})",
            ctx.program.name,
            ctx.survey
                .questions
                .first()
                .map(|q| q.prompt.as_str())
                .unwrap_or(""),
            format_local(ctx.closes_at, ctx.timezone)
        ),
        FALLBACK_MAX,
    )
}

/// The DM as first sent: the first question inline, plus "Answer all" for longer surveys.
pub fn open_message(ctx: &DmContext) -> Value {
    let mut blocks = vec![ctx.intro()];
    if let Some(first) = ctx.survey.questions.first() {
        blocks.extend(inline_question(ctx, first));
    }
    let n = ctx.survey.questions.len();
    if n > 1 {
        let minutes = n.div_ceil(4).max(1);
        blocks.push(json!({
            "type": "actions",
            "block_id": truncate(&format!("pulse:{}:all", ctx.delivery_id), 255),
            "elements": [{
                "type": "button",
                "style": "primary",
                "action_id": ACTION_OPEN_MODAL,
                "text": plain(&format!("Answer all ({n} questions, ~{minutes} min)"), BUTTON_TEXT_MAX),
                "value": ctx.delivery_id.to_string(),
            }]
        }));
    }
    blocks.push(ctx.context_block(false));
    json!({ "text": fallback_text(ctx, "New pulse from"), "blocks": blocks })
}

/// After an answer: what was answered, and a button to change it while the window is open.
pub fn answered_message(
    ctx: &DmContext,
    answers: &BTreeMap<String, (Option<f64>, Option<String>)>,
) -> Value {
    let mut lines = Vec::new();
    for q in &ctx.survey.questions {
        if let Some((number, text)) = answers.get(&q.key) {
            let said = describe_answer(q, *number, text.as_deref());
            if !said.is_empty() {
                lines.push(format!("• {}: *{}*", escape(&q.prompt), escape(&said)));
            }
        }
    }
    let answered = lines.len();
    let total = ctx.survey.questions.len();
    let mut summary = format!(
        ":white_check_mark: Thanks, your answer is in ({answered}/{total}).\n{}",
        lines.join("\n")
    );
    summary = truncate(&summary, SECTION_MAX);
    let label = if answered < total {
        "Answer the rest or change"
    } else {
        "Change answer"
    };
    let blocks = vec![
        ctx.intro(),
        json!({ "type": "section", "text": mrkdwn(&summary, SECTION_MAX) }),
        json!({
            "type": "actions",
            "block_id": truncate(&format!("pulse:{}:change", ctx.delivery_id), 255),
            "elements": [{
                "type": "button",
                "action_id": ACTION_OPEN_MODAL,
                "text": plain(label, BUTTON_TEXT_MAX),
                "value": ctx.delivery_id.to_string(),
            }]
        }),
        ctx.context_block(false),
    ];
    json!({ "text": fallback_text(ctx, "You answered the pulse from"), "blocks": blocks })
}

/// Window over: no buttons left. In an anonymous round the closed DM is the same whether or
/// not the member answered: it is stored in the outbox after the seal, and must not say who
/// responded.
pub fn closed_message(ctx: &DmContext, answered: bool) -> Value {
    let text = if ctx.anonymity == Anonymity::Anonymous {
        ":lock: This pulse is closed. Its answers are now unlinked from everyone's names."
    } else if answered {
        ":white_check_mark: This pulse is closed. Thank you for answering."
    } else {
        ":hourglass: This pulse closed without an answer from you. The next one will come as scheduled."
    };
    let first = ctx
        .survey
        .questions
        .first()
        .map(|q| q.prompt.as_str())
        .unwrap_or("");
    let blocks = vec![
        ctx.intro(),
        json!({ "type": "section", "text": mrkdwn(&format!("~{}~\n{text}", escape(first)), SECTION_MAX) }),
        ctx.context_block(true),
    ];
    json!({ "text": fallback_text(ctx, "Closed: pulse from"), "blocks": blocks })
}

/// The reminder, a thread reply under the DM. `answered_so_far` is shown only when it
/// reaches the anonymity threshold.
pub fn reminder_message(ctx: &DmContext, answered_so_far: Option<i64>) -> Value {
    let mut text = format!(
        "Friendly reminder: this pulse closes {}. It takes about a minute.",
        format_local(ctx.closes_at, ctx.timezone)
    );
    if let Some(n) = answered_so_far {
        text.push_str(&format!(" {n} colleagues have already answered."));
    }
    json!({ "text": truncate(&text, FALLBACK_MAX) })
}

/// An ephemeral note for a click that came after the window closed.
pub fn closed_notice(closes_at: DateTime<Utc>, tz: Tz) -> String {
    format!(
        "This pulse closed on {}; your click was not recorded.",
        format_local(closes_at, tz)
    )
}

/// The survey modal, prefilled with earlier answers.
pub fn survey_modal(
    ctx: &DmContext,
    answers: &BTreeMap<String, (Option<f64>, Option<String>)>,
) -> Value {
    let mut blocks = Vec::new();
    for q in &ctx.survey.questions {
        let block_id = truncate(&format!("q:{}", q.key), 255);
        let prior = answers.get(&q.key);
        let label = plain(&q.prompt, LABEL_MAX);
        let element = match q.kind {
            QuestionKind::Text | QuestionKind::Win => {
                let mut e = json!({
                    "type": "plain_text_input",
                    "action_id": "value",
                    "multiline": true,
                    "max_length": TEXT_ANSWER_MAX,
                });
                if let Some((_, Some(text))) = prior {
                    e["initial_value"] = json!(truncate(text, TEXT_ANSWER_MAX));
                }
                e
            }
            _ => {
                let options: Vec<Value> = choices(q)
                    .into_iter()
                    .take(100)
                    .map(|(v, label)| json!({ "text": plain(&label, OPTION_TEXT_MAX), "value": v }))
                    .collect();
                let current = prior.and_then(|(n, _)| *n).map(|n| {
                    if q.kind == QuestionKind::YesNo {
                        if n >= 1.0 {
                            "yes".to_string()
                        } else {
                            "no".to_string()
                        }
                    } else {
                        (n as i64).to_string()
                    }
                });
                let kind = if options.len() <= 10 {
                    "radio_buttons"
                } else {
                    "static_select"
                };
                let mut e = json!({ "type": kind, "action_id": "value", "options": options });
                if kind == "static_select" {
                    e["placeholder"] = plain("Choose…", 150);
                }
                if let Some(v) = current {
                    if let Some(opt) = e["options"]
                        .as_array()
                        .and_then(|o| o.iter().find(|o| o["value"] == json!(v)))
                        .cloned()
                    {
                        e["initial_option"] = opt;
                    }
                }
                e
            }
        };
        let mut block = json!({
            "type": "input",
            "block_id": block_id,
            "label": label,
            "element": element,
            "optional": !q.required,
        });
        if let (Some(low), Some(high), QuestionKind::Scale) = (&q.low_label, &q.high_label, q.kind)
        {
            block["hint"] = plain(&format!("1 = {low}, 5 = {high}"), LABEL_MAX);
        }
        blocks.push(block);
        if q.kind == QuestionKind::Win {
            blocks.push(json!({
                "type": "input",
                "block_id": truncate(&format!("consent:{}", q.key), 255),
                "label": plain("Who may see this win?", LABEL_MAX),
                "optional": true,
                "element": {
                    "type": "radio_buttons",
                    "action_id": "value",
                    "options": [
                        { "text": plain("Share it with my name", OPTION_TEXT_MAX), "value": "named" },
                        { "text": plain("Share it without my name", OPTION_TEXT_MAX), "value": "anonymous" },
                        { "text": plain("Keep it private", OPTION_TEXT_MAX), "value": "private" },
                    ],
                    "initial_option": { "text": plain("Keep it private", OPTION_TEXT_MAX), "value": "private" },
                }
            }));
        }
    }
    blocks.push(ctx.context_block(false));
    blocks.truncate(100);
    json!({
        "type": "modal",
        "callback_id": MODAL_CALLBACK,
        "private_metadata": json!({ "delivery": ctx.delivery_id }).to_string(),
        "title": plain(&ctx.survey.name, MODAL_TITLE_MAX),
        "submit": plain("Send", MODAL_TITLE_MAX),
        "close": plain("Cancel", MODAL_TITLE_MAX),
        "blocks": blocks,
    })
}
