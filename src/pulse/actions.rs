//! `/pulse action <text>`: an owner records what the program changed in response to
//! feedback ("you said, we did"). The action is stored for the program's digest and sent by
//! DM, through the outbox, to the members who answered in the period it refers to.
//!
//! The period is the program's most recently closed round (of any survey) when the action is
//! recorded: that is the feedback an owner can have read. Who receives the DM:
//! * confidential and attributed rounds: the members who answered it;
//! * anonymous rounds: nobody knows who answered after the seal, by design, so the DM goes to
//!   every member the pulse was posted to, and only when at least `k` answered (the round's
//!   own `k`): a smaller group is not written to, and the owner is told so.
//!
//! Members who opted out or left are never written to.

use serde_json::json;

use super::commands::{ephemeral, CommandReply};
use super::wins::escape;
use super::{Pulses, ServiceResult};
use crate::domain::program::{Anonymity, Program};
use crate::slack::incoming::payloads::SlashCommand;
use crate::slack::protocol::LoopKey;
use crate::storage::outbox::NewOutboxMessage;
use std::sync::Arc;

/// The longest action, in characters.
pub const ACTION_TEXT_MAX: usize = 1000;

/// The programs `user` owns; when `text` starts with one of their program ids, that program
/// alone and the rest of the text.
fn owned<'a>(state: &Pulses, user: &str, text: &'a str) -> (Vec<Arc<Program>>, &'a str) {
    let programs: Vec<Arc<Program>> = state
        .catalog
        .programs()
        .iter()
        .filter(|p| p.owners.iter().any(|o| o == user))
        .cloned()
        .collect();
    let first = text.split_whitespace().next().unwrap_or("");
    if let Some(p) = programs.iter().find(|p| p.id.0 == first) {
        let rest = text.trim_start()[first.len()..].trim_start();
        return (vec![p.clone()], rest);
    }
    (programs, text)
}

pub async fn command(
    state: &Pulses,
    command: &SlashCommand,
    text: &str,
) -> ServiceResult<CommandReply> {
    let user = command.user_id.as_ref();
    let (programs, text) = owned(state, user, text);
    let program = match programs.as_slice() {
        [] => {
            return Ok(ephemeral(
                "Only a program's owners can record what the program changed. If that is you, ask an admin to add you to `owners` in the program's file.",
            ))
        }
        [one] => one.clone(),
        many => {
            let ids: Vec<String> = many.iter().map(|p| format!("`{}`", p.id)).collect();
            return Ok(ephemeral(format!(
                "You own several programs; name one first: `/pulse action {} <what you changed>` (one of {}).",
                many[0].id,
                ids.join(", ")
            )));
        }
    };
    let text = text.trim();
    if text.is_empty() {
        return Ok(ephemeral(
            "Tell me what changed: `/pulse action We moved coaching sessions to Tuesday mornings`.",
        ));
    }
    let n = text.chars().count();
    if n > ACTION_TEXT_MAX {
        return Ok(ephemeral(format!(
            "That action is {n} characters long; please keep it to {ACTION_TEXT_MAX} characters or fewer."
        )));
    }
    let now = state.clock.now();
    let period = state.store.latest_closed_period(&program.id).await?;
    let mut tx = state.store.begin().await?;
    let id = tx
        .insert_action(&program.id, user, text, period.as_ref(), now)
        .await?;
    let Some(period) = period else {
        tx.commit().await?;
        return Ok(ephemeral(format!(
            "Recorded for *{}*'s next digest. No round has closed yet, so nobody was sent a DM.",
            escape(&program.name)
        )));
    };
    let mode = period
        .anonymity
        .as_deref()
        .and_then(|a| a.parse::<Anonymity>().ok())
        .unwrap_or(Anonymity::Anonymous);
    let k = period
        .anonymity_k
        .unwrap_or(i64::from(program.anonymity_threshold))
        .max(i64::from(crate::domain::program::MIN_THRESHOLD));
    let recipients = state
        .store
        .period_recipients(period.round_id, period.sealed)
        .await?;
    let answered = if period.sealed {
        period.answered_count.unwrap_or(0)
    } else {
        recipients.len() as i64
    };
    if mode == Anonymity::Anonymous && answered < k {
        tx.commit().await?;
        return Ok(ephemeral(format!(
            "Recorded for *{}*'s next digest. It was not sent by DM: fewer than {k} people answered the period it refers to ({}), and so small a group could be told apart.",
            escape(&program.name),
            period.period_key
        )));
    }
    let message = format!(
        ":speech_balloon: *You said, we did* — {}\nThanks for your answers in the pulse of {}. Here is what the program changed:\n>{}",
        escape(&program.name),
        period.period_key.replace('T', " "),
        escape(text).replace('\n', "\n>")
    );
    for r in &recipients {
        let key = LoopKey::ActionDm {
            action: id,
            member: r.member_id.0,
        };
        let mut dm = NewOutboxMessage::new(
            key.to_string(),
            "chat.postMessage",
            json!({ "channel": r.slack_user_id, "text": message }),
        );
        dm.channel_key = Some(r.slack_user_id.clone());
        tx.enqueue(&dm, now).await?;
    }
    tx.set_action_notified(id, recipients.len() as i64).await?;
    tx.commit().await?;
    let who = if period.sealed {
        "everyone the anonymous pulse went to (who answered is not kept)"
    } else {
        "the members who answered"
    };
    Ok(ephemeral(format!(
        "Recorded for *{}*'s next digest and sent by DM to {} people: {who} in the period of {}.",
        escape(&program.name),
        recipients.len(),
        period.period_key
    )))
}
