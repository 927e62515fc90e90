//! Small wins: `/pulse win <text>`, the "Celebrate as a small win" message shortcut, the
//! author's consent, and the shoutouts to the sponsor channels.
//!
//! Nothing is posted before the author chose how the win may be shared. The choice arrives
//! as a click on one of the consent buttons; the waiting request is deleted in the
//! transaction that stores the win and queues its shoutouts (so a double click stores one
//! win). An anonymous win keeps no author, its shoutout row names only the win and the
//! channel, and the confirmation to the author goes straight to the click's `response_url`
//! instead of a stored row (docs/anonymity.md, "Small wins").

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::commands::{ephemeral, CommandReply};
use super::{Pulses, ServiceResult};
use crate::domain::ids::RoundId;
use crate::domain::program::Program;
use crate::domain::state::{Consent, MemberState};
use crate::pulse::catalog::Catalog;
use crate::slack::incoming::payloads::{BlockActions, MessageAction, SlashCommand};
use crate::slack::protocol::{new_token, LoopKey, WinConsentAction, WinConsentBlockId};
use crate::storage::outbox::NewOutboxMessage;
use crate::storage::wins::{WinOrigin, WinRequest, WinToShout};
use crate::storage::{StoreResult, StoreTx};

/// The longest win, in characters (a shoutout stays one readable message).
pub const WIN_TEXT_MAX: usize = 1000;

/// Slack's three control characters in user text, so a win cannot ping `@channel` or fake
/// a link.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Checks a win's text: the trimmed text, or a sentence saying what is wrong.
pub fn check_text(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(
            "A win needs a few words: `/pulse win Closed the Q3 plan with my team`.".into(),
        );
    }
    let n = text.chars().count();
    if n > WIN_TEXT_MAX {
        return Err(format!(
            "That win is {n} characters long; please keep it to {WIN_TEXT_MAX} characters or fewer."
        ));
    }
    Ok(text.to_string())
}

/// `/pulse win <text>`: stores the request and asks its author how it may be shared.
pub async fn command(
    state: &Pulses,
    command: &SlashCommand,
    text: &str,
) -> ServiceResult<CommandReply> {
    let text = match check_text(text) {
        Ok(text) => text,
        Err(problem) => return Ok(ephemeral(problem)),
    };
    let Some((member, program)) = membership(state, command.user_id.as_ref()).await? else {
        return Ok(ephemeral(
            "You are not a member of any pulseloop program, so there is nowhere to share a win. Ask your program owner to add you.",
        ));
    };
    let request = WinRequest {
        token: new_token(),
        program_id: program.id.clone(),
        member_id: member,
        text,
        origin: WinOrigin::Command,
    };
    let mut tx = state.store.begin().await?;
    tx.create_win_request(&request, state.clock.now()).await?;
    tx.commit().await?;
    let blocks = consent_blocks(&program, &request, None);
    Ok(CommandReply {
        text: "How may we share your win?".into(),
        blocks: Some(Value::Array(blocks)),
        ephemeral: true,
    })
}

/// The author's membership a win belongs to: their first program they have not left.
async fn membership(
    state: &Pulses,
    user: &str,
) -> StoreResult<Option<(crate::domain::ids::MemberId, std::sync::Arc<Program>)>> {
    let memberships = state.store.memberships_of(&user.into()).await?;
    Ok(memberships
        .into_iter()
        .filter(|m| !matches!(m.state, MemberState::Deactivated | MemberState::OptedOut))
        .find_map(|m| state.catalog.program(&m.program_id).map(|p| (m.id, p))))
}

fn channels_text(program: &Program) -> String {
    if program.sponsor_channels.is_empty() {
        "the program's digest".to_string()
    } else {
        program
            .sponsor_channels
            .iter()
            .map(|c| format!("<#{c}>"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The question and its buttons. `asked_by` is set when someone else picked the message.
fn consent_blocks(program: &Program, request: &WinRequest, asked_by: Option<&str>) -> Vec<Value> {
    let block_id = WinConsentBlockId {
        token: request.token.clone(),
    }
    .to_string();
    let lead = match asked_by {
        Some(by) => format!("<@{by}> would like to celebrate your message as a small win in *{}*. Nothing is posted unless you agree.", escape(&program.name)),
        None => format!("Your small win for *{}*:", escape(&program.name)),
    };
    let quote = quote(&request.text);
    let button = |action: WinConsentAction, label: &str| {
        json!({ "type": "button", "action_id": action.to_string(), "value": request.token,
                "text": { "type": "plain_text", "text": label } })
    };
    let mut buttons = vec![
        button(
            WinConsentAction::Share(Consent::Named),
            "Share with my name",
        ),
        button(
            WinConsentAction::Share(Consent::Anonymous),
            "Share anonymously",
        ),
        button(WinConsentAction::Share(Consent::Private), "Keep it private"),
    ];
    if asked_by.is_some() {
        buttons.push(button(WinConsentAction::Decline, "No, thanks"));
    }
    vec![
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": lead } }),
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": quote } }),
        json!({ "type": "actions", "block_id": block_id, "elements": buttons }),
        json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": format!(
            "*With my name*: posted in {ch} with your name. *Anonymously*: posted in {ch} with no name; pulseloop keeps nothing that ties it to you. *Private*: kept for you only, posted nowhere.",
            ch = channels_text(program)) }] }),
    ]
}

/// The text as a quote that fits one section block (escaping can lengthen it: `&` is 5
/// characters once escaped).
fn quote(text: &str) -> String {
    let max = slack_facts::block_kit::SECTION_TEXT_MAX - 1;
    let quoted = format!(">{}", escape(text).replace('\n', "\n>"));
    if quoted.chars().count() <= max {
        return quoted;
    }
    let mut cut: String = quoted.chars().take(max - 1).collect();
    // Never end inside an escape such as `&amp;`.
    if let Some(amp) = cut.rfind('&') {
        if !cut[amp..].contains(';') {
            cut.truncate(amp);
        }
    }
    cut.push('…');
    cut
}

/// The shortcut "Celebrate as a small win" on someone's message: the message's author is
/// asked by DM; the person who used the shortcut is told so. Nothing is posted yet.
pub async fn on_shortcut(state: &Pulses, action: &MessageAction) -> ServiceResult<()> {
    let invoker = action.user.id.as_ref();
    let tell = |text: String| async move {
        if let Some(url) = action.response_url.as_deref() {
            let note = json!({ "response_type": "ephemeral", "text": text });
            if let Err(e) = state.slack.respond(url, &note).await {
                tracing::warn!(error = %e, "could not answer a shortcut");
            }
        }
    };
    let Some(message) = action.message.as_ref() else {
        return Ok(());
    };
    let Some(author) = message.user.as_ref().map(|u| u.as_ref().to_string()) else {
        tell("Only a person's message can be celebrated as a small win.".into()).await;
        return Ok(());
    };
    let text = match check_text(message.text.as_deref().unwrap_or("")) {
        Ok(text) => text,
        Err(_) if message.text.as_deref().unwrap_or("").trim().is_empty() => {
            tell("That message has no text to celebrate.".into()).await;
            return Ok(());
        }
        Err(_) => {
            tell(format!(
                "That message is too long for a small win (the limit is {WIN_TEXT_MAX} characters)."
            ))
            .await;
            return Ok(());
        }
    };
    let Some((member, program)) = membership(state, &author).await? else {
        tell(format!("<@{author}> is not in a pulseloop program, so their message cannot be shared as a win.")).await;
        return Ok(());
    };
    let request = WinRequest {
        token: new_token(),
        program_id: program.id.clone(),
        member_id: member,
        text,
        origin: WinOrigin::Shortcut,
    };
    let blocks = consent_blocks(&program, &request, Some(invoker));
    let key = LoopKey::ConsentAsk {
        token: request.token.clone(),
    };
    let mut ask = NewOutboxMessage::new(
        key.to_string(),
        "chat.postMessage",
        json!({ "channel": author, "text": "May we celebrate your message as a small win?", "blocks": blocks }),
    );
    ask.channel_key = Some(author.clone());
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    tx.create_win_request(&request, now).await?;
    tx.enqueue(&ask, now).await?;
    tx.commit().await?;
    tell(format!(
        "I asked <@{author}> for consent by DM. Nothing is posted unless they agree."
    ))
    .await;
    Ok(())
}

/// The author clicked a consent button.
pub async fn on_consent(
    state: &Pulses,
    ba: &BlockActions,
    choice: WinConsentAction,
    block_id: Option<&str>,
) -> ServiceResult<()> {
    let Some(block) = block_id.and_then(|b| b.parse::<WinConsentBlockId>().ok()) else {
        return Ok(());
    };
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let Some(request) = tx
        .take_win_request(&block.token, ba.user.id.as_ref())
        .await?
    else {
        drop(tx);
        confirm(
            state,
            ba,
            "This win was already answered, or waited more than 7 days and was forgotten; nothing more was done.",
        )
        .await;
        return Ok(());
    };
    if request.origin == WinOrigin::Shortcut {
        // The ask DM named the author beside the text: it goes once answered.
        tx.forget_sent_consent_ask(
            &LoopKey::ConsentAsk {
                token: request.token.clone(),
            }
            .to_string(),
        )
        .await?;
    }
    let consent = match choice {
        WinConsentAction::Decline => {
            tx.commit().await?;
            confirm(state, ba, "Understood: nothing was shared or kept.").await;
            return Ok(());
        }
        WinConsentAction::Share(consent) => consent,
    };
    let author = (consent == Consent::Named).then_some(request.member_id);
    let program = state.catalog.program(&request.program_id);
    let id = tx
        .insert_win(&request.program_id, author, &request.text, consent, now)
        .await?;
    let channels = match (&program, consent) {
        (Some(p), Consent::Named | Consent::Anonymous) => p.sponsor_channels.clone(),
        _ => Vec::new(),
    };
    let shout = WinToShout {
        id,
        program_id: request.program_id.clone(),
        text: request.text.clone(),
        consent,
        author_slack_id: author.map(|_| ba.user.id.to_string()),
    };
    if let Some(p) = &program {
        queue_shoutouts(&mut tx, p, &shout, now).await?;
    }
    tx.commit().await?;
    let where_ = program
        .as_deref()
        .map(channels_text)
        .unwrap_or_else(|| "the program's digest".into());
    let text = match consent {
        Consent::Named if !channels.is_empty() => format!(":tada: Shared with your name in {where_}."),
        Consent::Anonymous if !channels.is_empty() => format!(":tada: Shared anonymously in {where_}: no name is shown, and pulseloop keeps nothing that ties it to you."),
        Consent::Named | Consent::Anonymous => "Stored for the program's digest; the program has no sponsor channel, so nothing was posted.".into(),
        Consent::Private => ":lock: Kept private: stored for you only and posted nowhere.".into(),
    };
    confirm(state, ba, &text).await;
    Ok(())
}

/// Replaces the consent question with `text`, through the click's `response_url`.
async fn confirm(state: &Pulses, ba: &BlockActions, text: &str) {
    let Some(url) = ba.response_url.as_deref() else {
        return;
    };
    let reply = json!({ "replace_original": true, "text": text });
    if let Err(e) = state.slack.respond(url, &reply).await {
        tracing::warn!(error = %e, "could not confirm a win to its author");
    }
}

/// Queues one shoutout per sponsor channel (none for a private win) and records it.
async fn queue_shoutouts(
    tx: &mut StoreTx,
    program: &Program,
    win: &WinToShout,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    if win.consent == Consent::Private || program.sponsor_channels.is_empty() {
        return Ok(());
    }
    let by = match (&win.consent, &win.author_slack_id) {
        (Consent::Named, Some(user)) => format!("<@{user}>"),
        _ => "a member (shared anonymously)".to_string(),
    };
    let text = format!(
        ":tada: *Small win* in {} from {by}:\n>{}",
        escape(&program.name),
        escape(&win.text).replace('\n', "\n>")
    );
    for channel in &program.sponsor_channels {
        let key = LoopKey::Shoutout {
            win: win.id,
            channel: channel.clone(),
        };
        let mut msg = NewOutboxMessage::new(
            key.to_string(),
            "chat.postMessage",
            json!({ "channel": channel, "text": text }),
        );
        msg.channel_key = Some(channel.clone());
        tx.enqueue(&msg, now).await?;
    }
    tx.mark_shoutout_queued(win.id, &program.sponsor_channels.join(","), now)
        .await
}

/// At a round's close: the wins typed into its survey with consent to share are shouted out
/// (once). Called by the scheduler in the transaction that closes (and seals) the round, so
/// the post comes after the answers are final and is not timed by any one answer.
pub async fn queue_round_shoutouts(
    tx: &mut StoreTx,
    catalog: &Catalog,
    round: RoundId,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    for win in tx.survey_wins_to_shout(round).await? {
        match catalog.program(&win.program_id) {
            Some(program) => queue_shoutouts(tx, &program, &win, now).await?,
            None => continue,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_win_quote_fits_a_section_however_much_escaping_it_needs() {
        assert_eq!(quote("a <b>\nc"), ">a &lt;b&gt;\n>c");
        let worst = quote(&"&".repeat(WIN_TEXT_MAX));
        assert!(worst.chars().count() < slack_facts::block_kit::SECTION_TEXT_MAX);
        assert!(worst.ends_with("&amp;…"), "{}", &worst[worst.len() - 12..]);
    }

    #[test]
    fn win_text_limits_are_stated() {
        assert!(check_text("  ").unwrap_err().contains("needs a few words"));
        assert_eq!(check_text(" ok ").unwrap(), "ok");
        let long = "é".repeat(WIN_TEXT_MAX + 1);
        assert!(check_text(&long).unwrap_err().contains("1001 characters"));
        assert!(check_text(&"é".repeat(WIN_TEXT_MAX)).is_ok());
    }
}
