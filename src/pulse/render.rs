//! Block Kit for pulses: the DM (open, answered, closed), the reminder and the survey modal.
//!
//! Every text that comes from configuration is cut to Slack's limits with an ellipsis, so a
//! long prompt or many options never make Slack answer `invalid_blocks`. Ids are never cut:
//! they come from `slack::protocol`, which refuses one over Slack's limit (a cut id would not
//! parse back), so the functions that place ids return a `Result`.

use crate::domain::ids::DeliveryId;
use crate::domain::state::Consent;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use std::collections::BTreeMap;

use crate::domain::program::{round_anonymity, Anonymity, Program, Question, QuestionKind, Survey};
use crate::slack::protocol::{
    AnswerActionId, BlockPart, ModalInputId, ModalMetadata, ModalView, ProtocolError, PulseBlockId,
    SlackMessage,
};
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
/// Blocks in one modal.
const MAX_VIEW_BLOCKS: usize = slack_facts::block_kit::MAX_VIEW_BLOCKS;

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

/// Plainly, who will see what: the ONE wording per anonymity mode. The DM, the survey modal,
/// App Home and the README's privacy section all say exactly this (the README copies it with
/// `k` = 5). One audience, "the program team" (the program's owners and sponsors), and each
/// line says whether comment text is shown word for word.
pub fn anonymity_statement(mode: Anonymity, k: u32) -> String {
    match mode {
        Anonymity::Anonymous => format!(
            ":lock: Anonymous: when this pulse closes, your answers are unlinked from your name for good. \
             The program team sees totals of {k} or more people, and comments word for word but never with your name."
        ),
        Anonymity::Confidential => format!(
            ":closed_lock_with_key: Confidential: only you see your own answers. \
             The program team sees totals of {k} or more people, never your comments."
        ),
        Anonymity::Attributed => {
            ":bust_in_silhouette: Attributed: the program team sees your name next to your answers, \
             and your comments word for word."
                .to_string()
        }
    }
}

/// What happens to a win, repeated back to its author right after they chose.
pub fn sharing_sentence(consent: Consent) -> &'static str {
    match consent {
        Consent::Named => {
            ":tada: Your win will be shared with the program team with your name on it."
        }
        Consent::Anonymous => {
            ":tada: Your win will be shared with the program team without your name."
        }
        Consent::Private => ":lock: Your win stays private: nobody else sees it.",
    }
}

/// The end of a pause, as the confirmation and `/pulse status` both say it: a pause "until
/// 2027-01-15" is stored as the first instant after that local day, and read back as "the end
/// of Fri 15 Jan 2027".
pub fn pause_end(until: DateTime<Utc>, tz: Tz) -> String {
    let last_moment = until - chrono::Duration::seconds(1);
    format!(
        "the end of {}",
        last_moment.with_timezone(&tz).format("%a %-d %b %Y")
    )
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
    pub delivery_id: DeliveryId,
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
                mrkdwn(&when, CONTEXT_TEXT_MAX),
            ]
        })
    }

    fn intro(&self) -> Value {
        json!({
            "type": "section",
            "text": mrkdwn(&format!("*{}* — {}", escape(&self.program.name), escape(&self.survey.name)), SECTION_MAX),
        })
    }

    /// block_id of one of the DM's actions blocks: carries the delivery and what the block is.
    fn block_id(&self, part: BlockPart) -> Result<String, ProtocolError> {
        Ok(PulseBlockId::new(self.delivery_id, part)?.to_string())
    }

    /// An actions block with one button that opens the survey modal.
    fn open_modal_block(
        &self,
        part: BlockPart,
        label: &str,
        primary: bool,
    ) -> Result<Value, ProtocolError> {
        let mut button = json!({
            "type": "button",
            "action_id": ACTION_OPEN_MODAL,
            "text": plain(label, BUTTON_TEXT_MAX),
            "value": self.delivery_id.to_string(),
        });
        if primary {
            button["style"] = json!("primary");
        }
        Ok(json!({ "type": "actions", "block_id": self.block_id(part)?, "elements": [button] }))
    }
}

/// The DM context of a stored delivery (its zone is the one it was planned in).
pub fn dm_context<'a>(program: &'a Program, survey: &'a Survey, d: &DeliveryRow) -> DmContext<'a> {
    DmContext {
        program,
        survey,
        delivery_id: d.id,
        closes_at: d.closes_at,
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

/// How an answer reads back to its author: "4 out of 5", "8 out of 10", "Yes", an option's
/// label, or the text in quotes.
pub fn describe_answer(q: &Question, number: Option<f64>, text: Option<&str>) -> String {
    match (q.kind, number) {
        (QuestionKind::Text | QuestionKind::Win, _) => text
            .map(|t| format!("“{}”", truncate(t, 200)))
            .unwrap_or_default(),
        (QuestionKind::Scale, Some(n)) => {
            let label = match (n as i64, &q.low_label, &q.high_label) {
                (1, Some(low), _) => format!(" ({low})"),
                (5, _, Some(high)) => format!(" ({high})"),
                _ => String::new(),
            };
            format!("{} out of 5{label}", n as i64)
        }
        (QuestionKind::Enps, Some(n)) => format!("{} out of 10", n as i64),
        (QuestionKind::YesNo, Some(n)) => if n >= 1.0 { "Yes" } else { "No" }.to_string(),
        (QuestionKind::Choice, Some(n)) => q
            .options
            .get(n as usize)
            .cloned()
            .unwrap_or_else(|| (n as i64).to_string()),
        (_, None) => String::new(),
    }
}

/// One answered question as the DM and App Home list it: the prompt, a dash, the answer in
/// bold (never "week?: *4*").
pub fn answer_line(q: &Question, number: Option<f64>, text: Option<&str>) -> Option<String> {
    let said = describe_answer(q, number, text);
    (!said.is_empty()).then(|| format!("• {} — *{}*", escape(&q.prompt), escape(&said)))
}

/// A question's inline answer elements (buttons or a menu) for the DM.
fn inline_question(ctx: &DmContext, q: &Question) -> Result<Vec<Value>, ProtocolError> {
    let mut blocks = vec![json!({
        "type": "section",
        "text": mrkdwn(&format!("*{}*", escape(&q.prompt)), SECTION_MAX),
    })];
    let part = BlockPart::Question(q.key.clone());
    match q.kind {
        QuestionKind::Text | QuestionKind::Win => {
            let label = if q.kind == QuestionKind::Win {
                "Share a win"
            } else {
                "Write an answer"
            };
            blocks.push(ctx.open_modal_block(part, label, false)?);
        }
        QuestionKind::Choice if q.options.len() > MAX_CHOICE_BUTTONS => {
            blocks.push(choice_menu(q, ctx.block_id(part)?));
        }
        _ => {
            blocks.push(answer_buttons(q, ctx.block_id(part)?)?);
            blocks.extend(scale_legend(q));
        }
    }
    Ok(blocks)
}

/// A menu of a long choice question's options (action_id `answer`).
fn choice_menu(q: &Question, block_id: String) -> Value {
    json!({
        "type": "actions",
        "block_id": block_id,
        "elements": [{
            "type": "static_select",
            "action_id": AnswerActionId::menu().to_string(),
            "placeholder": plain("Choose…", 150),
            "options": options(q),
        }]
    })
}

/// One button per choice, each with its value in its action_id (`answer:{value}`).
fn answer_buttons(q: &Question, block_id: String) -> Result<Value, ProtocolError> {
    let buttons = choices(q)
        .into_iter()
        .take(25)
        .map(|(v, label)| {
            // Scale buttons show the number; the end labels go in a context line.
            let text = if q.kind == QuestionKind::Scale {
                v.clone()
            } else {
                label
            };
            Ok(json!({
                "type": "button",
                "action_id": AnswerActionId::button(&v)?.to_string(),
                "text": plain(&text, BUTTON_TEXT_MAX),
                "value": v,
            }))
        })
        .collect::<Result<Vec<Value>, ProtocolError>>()?;
    Ok(json!({ "type": "actions", "block_id": block_id, "elements": buttons }))
}

/// Under scale and eNPS buttons: what the two ends mean.
fn scale_legend(q: &Question) -> Option<Value> {
    let enps = match q.kind {
        QuestionKind::Scale => false,
        QuestionKind::Enps => true,
        _ => return None,
    };
    let (lo, hi) = if enps { ("0", "10") } else { ("1", "5") };
    let (low_default, high_default) = if enps {
        ("Not at all likely", "Extremely likely")
    } else {
        ("Low", "High")
    };
    let low = q.low_label.as_deref().unwrap_or(low_default);
    let high = q.high_label.as_deref().unwrap_or(high_default);
    Some(json!({
        "type": "context",
        "elements": [mrkdwn(&format!("{lo} = {} · {hi} = {}", escape(low), escape(high)), CONTEXT_TEXT_MAX)]
    }))
}

/// A question's choices as Block Kit options (at most Slack's 100).
fn options(q: &Question) -> Vec<Value> {
    choices(q)
        .into_iter()
        .take(100)
        .map(|(v, label)| json!({ "text": plain(&label, OPTION_TEXT_MAX), "value": v }))
        .collect()
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
pub fn open_message(ctx: &DmContext) -> Result<SlackMessage, ProtocolError> {
    let mut blocks = vec![ctx.intro()];
    if let Some(first) = ctx.survey.questions.first() {
        blocks.extend(inline_question(ctx, first)?);
    }
    let n = ctx.survey.questions.len();
    if n > 1 {
        let minutes = n.div_ceil(4).max(1);
        let label = format!("Answer all ({n} questions, ~{minutes} min)");
        blocks.push(ctx.open_modal_block(BlockPart::All, &label, true)?);
    }
    blocks.push(ctx.context_block(false));
    Ok(SlackMessage {
        text: fallback_text(ctx, "New pulse from"),
        blocks,
    })
}

/// Where a member stands after an answer. Only required questions count: optional ones are
/// never missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Required questions answered, of `required`.
    pub answered_required: usize,
    pub required: usize,
    /// Optional questions not answered yet (offered, never asked for).
    pub optional_left: usize,
}

impl Progress {
    pub fn of(survey: &Survey, answers: &BTreeMap<String, (Option<f64>, Option<String>)>) -> Self {
        let answered = |key: &str| {
            answers
                .get(key)
                .is_some_and(|(n, t)| n.is_some() || t.as_deref().is_some_and(|t| !t.is_empty()))
        };
        let required: Vec<&Question> = survey.questions.iter().filter(|q| q.required).collect();
        Progress {
            answered_required: required.iter().filter(|q| answered(&q.key)).count(),
            required: required.len(),
            optional_left: survey
                .questions
                .iter()
                .filter(|q| !q.required && !answered(&q.key))
                .count(),
        }
    }

    /// Every required question is answered: the pulse is done.
    pub fn done(&self) -> bool {
        self.answered_required >= self.required
    }

    /// The sentence at the top of the answered DM.
    pub fn headline(&self) -> String {
        if self.done() {
            ":white_check_mark: *Done.* Thank you, your answer is in.".to_string()
        } else {
            let left = self.required - self.answered_required;
            let questions = if left == 1 { "question" } else { "questions" };
            format!(
                ":hourglass_flowing_sand: *Saved, not finished yet:* {left} more {questions} to answer."
            )
        }
    }
}

/// After an answer: whether the pulse is done (every required question answered), what was
/// answered, and while the window is open a "Change answer" button, plus "Answer the rest"
/// when required questions remain or "Add more (optional)" when only optional ones do.
/// A win's line repeats how it will be shared (`consents`, by question key).
pub fn answered_message(
    ctx: &DmContext,
    answers: &BTreeMap<String, (Option<f64>, Option<String>)>,
    consents: &BTreeMap<String, Consent>,
) -> Result<SlackMessage, ProtocolError> {
    let progress = Progress::of(ctx.survey, answers);
    let lines: Vec<String> = ctx
        .survey
        .questions
        .iter()
        .filter_map(|q| {
            let (number, text) = answers.get(&q.key)?;
            let line = answer_line(q, *number, text.as_deref())?;
            Some(match consents.get(&q.key) {
                Some(consent) => format!("{line}\n{}", sharing_sentence(*consent)),
                None => line,
            })
        })
        .collect();
    let mut summary = progress.headline();
    if !lines.is_empty() {
        summary.push('\n');
        summary.push_str(&lines.join("\n"));
    }
    let mut blocks = vec![
        ctx.intro(),
        json!({ "type": "section", "text": mrkdwn(&summary, SECTION_MAX) }),
    ];
    if !progress.done() {
        let left = progress.required - progress.answered_required;
        let label = if left == 1 {
            "Answer the last question".to_string()
        } else {
            format!("Answer the other {left}")
        };
        blocks.push(ctx.open_modal_block(BlockPart::All, &label, true)?);
    } else if progress.optional_left > 0 {
        let more = if progress.optional_left == 1 {
            "1 optional question is left, if you want to add something.".to_string()
        } else {
            format!(
                "{} optional questions are left, if you want to add something.",
                progress.optional_left
            )
        };
        blocks.push(json!({ "type": "context", "elements": [mrkdwn(&more, CONTEXT_TEXT_MAX)] }));
        blocks.push(ctx.open_modal_block(BlockPart::All, "Add more (optional)", false)?);
    }
    blocks.push(ctx.open_modal_block(BlockPart::Change, "Change answer", false)?);
    blocks.push(ctx.context_block(false));
    let lead = if progress.done() {
        "Done: your answer is in for"
    } else {
        "Saved, not finished: your pulse from"
    };
    Ok(SlackMessage {
        text: fallback_text(ctx, lead),
        blocks,
    })
}

/// Window over: no buttons left. In an anonymous round the closed DM is the same whether or
/// not the member answered: it is stored in the outbox after the seal, and must not say who
/// responded.
pub fn closed_message(ctx: &DmContext, answered: bool) -> SlackMessage {
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
    SlackMessage {
        text: fallback_text(ctx, "Closed: pulse from"),
        blocks,
    }
}

/// The reminder, a thread reply under the DM. `answered_so_far` is shown only when it
/// reaches the anonymity threshold.
pub fn reminder_message(ctx: &DmContext, answered_so_far: Option<i64>) -> SlackMessage {
    let mut text = format!(
        "Friendly reminder: this pulse closes {}. It takes about a minute.",
        format_local(ctx.closes_at, ctx.timezone)
    );
    if let Some(n) = answered_so_far {
        text.push_str(&format!(" {n} colleagues have already answered."));
    }
    SlackMessage {
        text: truncate(&text, FALLBACK_MAX),
        blocks: Vec::new(),
    }
}

/// The reply to a number typed in the bot's DM and taken as an answer.
pub fn typed_answer_taken(prompt: &str, said: &str) -> String {
    format!(
        ":white_check_mark: Taken: *{}* for “{}”. The pulse above shows your answer.",
        escape(said),
        escape(prompt)
    )
}

/// The reply to a typed number that does not answer the current question.
pub fn typed_answer_refused(q: &Question, typed: &str) -> String {
    let range = match q.kind {
        QuestionKind::Enps => "0 to 10",
        _ => "1 to 5",
    };
    format!(
        "“{}” is not an answer to “{}”: type a number from {range}, or use the buttons in the pulse above.",
        escape(typed),
        escape(&q.prompt)
    )
}

/// The reply to anything else typed in the bot's DM.
pub fn dm_help(was_number: bool) -> String {
    let lead = if was_number {
        "No pulse waiting for you takes a number right now."
    } else {
        "Hi! I only understand a few things here."
    };
    format!(
        "{lead}\n\
         • Type a number to answer the question a pulse is waiting on (1 to 5, or 0 to 10).\n\
         • `/pulse status`: what is waiting for you, and when the next pulse comes\n\
         • `/pulse pause`, `/pulse resume`, `/pulse optout`: your controls\n\
         • `/pulse help`: everything else\n\
         Your answers, your wins and what we keep are in this app's Home tab."
    )
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
) -> Result<ModalView, ProtocolError> {
    let mut blocks = Vec::new();
    for q in &ctx.survey.questions {
        let prior = answers.get(&q.key);
        blocks.push(modal_question(q, prior)?);
        if q.kind == QuestionKind::Win {
            blocks.push(consent_input(q)?);
        }
    }
    blocks.push(ctx.context_block(false));
    blocks.truncate(MAX_VIEW_BLOCKS);
    Ok(ModalView {
        callback_id: MODAL_CALLBACK,
        private_metadata: ModalMetadata {
            delivery: ctx.delivery_id,
        },
        title: plain(&ctx.survey.name, MODAL_TITLE_MAX),
        submit: plain("Send", MODAL_TITLE_MAX),
        close: plain("Cancel", MODAL_TITLE_MAX),
        blocks,
    })
}

/// One question's input block (`q:{key}`), prefilled with `prior`.
fn modal_question(
    q: &Question,
    prior: Option<&(Option<f64>, Option<String>)>,
) -> Result<Value, ProtocolError> {
    let element = match q.kind {
        QuestionKind::Text | QuestionKind::Win => {
            text_input(prior.and_then(|(_, text)| text.as_deref()))
        }
        _ => choice_input(q, prior.and_then(|(n, _)| *n)),
    };
    let mut block = json!({
        "type": "input",
        "block_id": ModalInputId::question(&q.key)?.to_string(),
        "label": plain(&q.prompt, LABEL_MAX),
        "element": element,
        "optional": !q.required,
    });
    if let (Some(low), Some(high), QuestionKind::Scale) = (&q.low_label, &q.high_label, q.kind) {
        block["hint"] = plain(&format!("1 = {low}, 5 = {high}"), LABEL_MAX);
    }
    Ok(block)
}

/// A multi-line text input, holding the earlier answer if there is one.
fn text_input(prior: Option<&str>) -> Value {
    let mut e = json!({
        "type": "plain_text_input",
        "action_id": "value",
        "multiline": true,
        "max_length": TEXT_ANSWER_MAX,
    });
    if let Some(text) = prior {
        e["initial_value"] = json!(truncate(text, TEXT_ANSWER_MAX));
    }
    e
}

/// Radio buttons (up to 10 choices) or a menu, with the earlier answer selected.
fn choice_input(q: &Question, prior: Option<f64>) -> Value {
    let options = options(q);
    let current = prior.map(|n| match q.kind {
        QuestionKind::YesNo if n >= 1.0 => "yes".to_string(),
        QuestionKind::YesNo => "no".to_string(),
        _ => (n as i64).to_string(),
    });
    let initial = current.and_then(|v| options.iter().find(|o| o["value"] == json!(v)).cloned());
    let menu = options.len() > 10;
    let kind = if menu {
        "static_select"
    } else {
        "radio_buttons"
    };
    let mut e = json!({ "type": kind, "action_id": "value", "options": options });
    if menu {
        e["placeholder"] = plain("Choose…", 150);
    }
    if let Some(opt) = initial {
        e["initial_option"] = opt;
    }
    e
}

/// Under a win question: who may see the win (`consent:{key}`), private unless chosen.
fn consent_input(q: &Question) -> Result<Value, ProtocolError> {
    let option = |text: &str, consent: Consent| json!({ "text": plain(text, OPTION_TEXT_MAX), "value": consent.as_str() });
    let private = option("Keep it private", Consent::Private);
    Ok(json!({
        "type": "input",
        "block_id": ModalInputId::consent(&q.key)?.to_string(),
        "label": plain("Who may see this win?", LABEL_MAX),
        "optional": true,
        "element": {
            "type": "radio_buttons",
            "action_id": "value",
            "options": [
                option("Share it with my name", Consent::Named),
                option("Share it without my name", Consent::Anonymous),
                private,
            ],
            "initial_option": private,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn question(kind: QuestionKind, required: bool, key: &str) -> Question {
        Question {
            key: key.into(),
            kind,
            prompt: format!("{key}?"),
            low_label: Some("Low".into()),
            high_label: Some("High".into()),
            options: vec!["A".into(), "B".into()],
            required,
        }
    }

    #[test]
    fn answers_read_back_in_words() {
        let scale = question(QuestionKind::Scale, true, "s");
        assert_eq!(describe_answer(&scale, Some(4.0), None), "4 out of 5");
        assert_eq!(
            describe_answer(&scale, Some(5.0), None),
            "5 out of 5 (High)"
        );
        assert_eq!(describe_answer(&scale, Some(1.0), None), "1 out of 5 (Low)");
        let enps = question(QuestionKind::Enps, true, "e");
        assert_eq!(describe_answer(&enps, Some(9.0), None), "9 out of 10");
        let choice = question(QuestionKind::Choice, true, "c");
        assert_eq!(describe_answer(&choice, Some(1.0), None), "B");
        let yes_no = question(QuestionKind::YesNo, true, "y");
        assert_eq!(describe_answer(&yes_no, Some(0.0), None), "No");
        assert_eq!(
            answer_line(&scale, Some(3.0), None).unwrap(),
            "• s? — *3 out of 5*"
        );
    }

    #[test]
    fn a_pause_ends_at_the_end_of_the_day_it_names() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        // "until 2027-01-15" is stored as 16 Jan 00:00 Berlin.
        let stored = Utc.with_ymd_and_hms(2027, 1, 15, 23, 0, 0).unwrap();
        assert_eq!(pause_end(stored, tz), "the end of Fri 15 Jan 2027");
    }

    #[test]
    fn only_required_questions_count_as_missing() {
        let survey_of = |questions: Vec<Question>| Survey {
            id: "s".into(),
            name: "S".into(),
            audience: vec![],
            cadence: crate::domain::cadence::Cadence::parse("0 10 * * MON").unwrap(),
            every_weeks: 1,
            window_hours: 48,
            remind_after_hours: None,
            anonymity: Anonymity::Anonymous,
            questions,
            paused: false,
        };
        let survey = survey_of(vec![
            question(QuestionKind::Scale, true, "a"),
            question(QuestionKind::Text, false, "b"),
            question(QuestionKind::Win, false, "c"),
        ]);
        let answers = BTreeMap::from([("a".to_string(), (Some(3.0), None))]);
        let p = Progress::of(&survey, &answers);
        assert!(p.done());
        assert_eq!(p.optional_left, 2);
        assert_eq!(
            p.headline(),
            ":white_check_mark: *Done.* Thank you, your answer is in."
        );
        let none = Progress::of(&survey, &BTreeMap::new());
        assert!(!none.done());
        assert_eq!(
            none.headline(),
            ":hourglass_flowing_sand: *Saved, not finished yet:* 1 more question to answer."
        );
        // A survey of optional questions only is done after any answer.
        let optional = survey_of(vec![question(QuestionKind::Text, false, "b")]);
        assert!(Progress::of(&optional, &BTreeMap::new()).done());
    }
}
