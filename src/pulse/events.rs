//! Events API callbacks, after signature check. Effects are written in the caller's
//! transaction, the one that records the event id, so a failure rolls back both, and a retried
//! event (same id) does nothing twice.

use super::answers::{self, parse_answer, Stored, Submission};
use super::Pulses;
use super::ServiceResult;
use crate::domain::program::{Question, QuestionKind};
use crate::pulse::render;
use crate::slack::incoming::payloads::SlackEvent;
use crate::slack::protocol::OutboxKey;
use crate::storage::outbox::NewOutboxMessage;
use crate::storage::StoreTx;
use serde_json::json;
use slack_facts::ids::UserId;

/// The Events API subscriptions [`handle`] acts on; any other event is acknowledged and
/// ignored. The Slack app manifests in `deploy/` subscribe to exactly these (tests/deploy.rs),
/// and `slack::app::EVENT_SCOPES` gives the scopes each needs.
pub const HANDLED_EVENTS: &[&str] = &[
    "app_home_opened",
    "app_uninstalled",
    "message.im",
    "tokens_revoked",
    "user_change",
    "user_status_changed",
];

pub async fn handle(
    state: &Pulses,
    tx: &mut StoreTx,
    team_id: Option<&slack_facts::ids::TeamId>,
    event: SlackEvent,
) -> ServiceResult<()> {
    let subscription = crate::slack::app::subscription_of(&event);
    if !subscription.is_some_and(|s| HANDLED_EVENTS.contains(&s)) {
        tracing::debug!(
            kind = event.type_name(),
            ?subscription,
            "event not subscribed to; ignored"
        );
        return Ok(());
    }
    match event {
        SlackEvent::UserChange { user } | SlackEvent::UserStatusChanged { user } => {
            apply_user_event(state, tx, &user).await?;
        }
        SlackEvent::AppHomeOpened {
            user,
            tab,
            event_ts,
            ..
        } => {
            // The Messages tab opens this event too; only the Home tab is ours to draw.
            if tab.as_deref().is_none_or(|t| t == "home") {
                let nonce =
                    event_ts.unwrap_or_else(|| state.clock.now().timestamp_micros().to_string());
                super::home::queue_publish(state, tx, &user, &nonce).await?;
            }
        }
        SlackEvent::Message {
            bot_id: Some(_), ..
        }
        | SlackEvent::Message {
            subtype: Some(_), ..
        } => {
            // Our own messages and edits echo back; never answer ourselves.
        }
        SlackEvent::Message {
            user: Some(user),
            text,
            channel_type: Some(kind),
            ts: Some(ts),
            ..
        } if kind == "im" => {
            direct_message(state, tx, &user, text.as_deref().unwrap_or(""), &ts).await?;
        }
        SlackEvent::AppUninstalled {} => {
            revoke(state, tx, team_id, "app_uninstalled").await?;
        }
        SlackEvent::TokensRevoked { tokens } if !tokens.bot.is_empty() => {
            revoke(state, tx, team_id, "tokens_revoked").await?;
        }
        SlackEvent::TokensRevoked { .. } => {
            tracing::info!(?team_id, "user tokens revoked; pulseloop holds none");
        }
        other => tracing::debug!(kind = other.type_name(), "event received"),
    }
    Ok(())
}

/// `user_change` and `user_status_changed`: the member's profile and status (out of office)
/// take effect at once, so a held pulse goes out on the next tick after someone is back.
async fn apply_user_event(
    state: &Pulses,
    tx: &mut StoreTx,
    user: &crate::slack::outbound::client::SlackUser,
) -> ServiceResult<()> {
    let profile = crate::pulse::sync::profile_of(user);
    tx.apply_profile_update(&user.id, &profile, state.clock.now())
        .await?;
    tracing::info!(
        event = "profile_changed",
        member = %user.id,
        away = crate::domain::planning::is_out_of_office(
            profile.status_text.as_deref(),
            profile.status_emoji.as_deref()
        ),
        "member profile updated from a Slack event"
    );
    Ok(())
}

/// The question a typed number answers: the first unanswered required question of the
/// delivery, else its first unanswered one.
fn current_question<'a>(
    survey: &'a crate::domain::program::Survey,
    answers: &answers::Answers,
) -> Option<&'a Question> {
    let open = |q: &&Question| !answers.contains_key(&q.key);
    let questions = &survey.questions;
    questions
        .iter()
        .filter(|q| q.required)
        .find(open)
        .or_else(|| questions.iter().find(open))
}

/// A DM typed to the bot. A number, while a pulse is open whose current question takes one,
/// is that answer (stored once: the event id is recorded in this transaction). Anything else
/// gets the help. The text is never logged.
///
/// Replies that say anything about an open pulse (taken, or not a valid answer) are keyed to
/// its delivery as an answer update ([`OutboxKey::TypedReply`]): an anonymous round's seal
/// deletes them, so nothing stored afterwards tells who answered.
async fn direct_message(
    state: &Pulses,
    tx: &mut StoreTx,
    user: &UserId,
    text: &str,
    ts: &str,
) -> ServiceResult<()> {
    let now = state.clock.now();
    let number = text.trim();
    let is_number =
        !number.is_empty() && number.len() <= 3 && number.bytes().all(|b| b.is_ascii_digit());
    let open = if is_number {
        state.store.open_deliveries_of(user, now).await?
    } else {
        Vec::new()
    };
    for d in &open {
        let Some(program) = state.catalog.program(&d.program_id) else {
            continue;
        };
        let Some(survey) = program.survey(&d.survey_id) else {
            continue;
        };
        let prior = answers::answers_of(state, d.id).await?;
        let Some(q) = current_question(survey, &prior) else {
            continue;
        };
        if !matches!(q.kind, QuestionKind::Scale | QuestionKind::Enps) {
            continue;
        }
        let reply = match parse_answer(q, Some(number)) {
            Ok(Some(value)) => {
                let said = render::describe_answer(q, value.number, None);
                let submission = Submission {
                    values: vec![(q.key.clone(), value)],
                    ..Submission::default()
                };
                match answers::store_answers_in(
                    tx,
                    state.relay.as_ref(),
                    d,
                    &program,
                    survey,
                    &submission,
                    now,
                )
                .await?
                {
                    Stored::Yes => render::typed_answer_taken(&q.prompt, &said),
                    Stored::Closed => continue,
                }
            }
            _ => render::typed_answer_refused(q, number),
        };
        let key = OutboxKey::TypedReply {
            delivery: d.id,
            message_ts: ts.to_string(),
        };
        tx.enqueue(
            &dm(key.message("chat.postMessage", json!({})), user, &reply),
            now,
        )
        .await?;
        // No ids here: a log line must not tell who answered an anonymous pulse.
        tracing::debug!("a number typed in the bot's DM was handled as an answer");
        return Ok(());
    }
    // A number that answers nothing still says something about open pulses (their current
    // question is not a number, perhaps because it was answered): keyed to one of them, so
    // the seal deletes it. Other text gets the same help whatever was answered.
    let help = render::dm_help(is_number);
    let row = match open.first() {
        Some(d) => OutboxKey::TypedReply {
            delivery: d.id,
            message_ts: ts.to_string(),
        }
        .message("chat.postMessage", json!({})),
        None => NewOutboxMessage::new(format!("im:{user}:{ts}"), "chat.postMessage", json!({})),
    };
    tx.enqueue(&dm(row, user, &help), now).await?;
    Ok(())
}

/// A plain DM to `user` in the row's payload.
fn dm(mut row: NewOutboxMessage, user: &UserId, text: &str) -> NewOutboxMessage {
    row.payload = json!({ "channel": user, "text": text });
    row.channel_key = Some(user.to_string());
    row
}

/// `app_uninstalled`, `tokens_revoked` (of the bot): the workspace's installation is marked
/// revoked and its queued Slack writes are parked, in the event's transaction; its client is
/// dropped, so no call is made with the dead token. The default installation has no row to
/// mark: its token is the operator's (`SLACK_BOT_TOKEN`), and the log says what to do.
async fn revoke(
    state: &Pulses,
    tx: &mut StoreTx,
    team_id: Option<&slack_facts::ids::TeamId>,
    reason: &str,
) -> ServiceResult<()> {
    let Some(team) = team_id else {
        tracing::warn!(reason, "an uninstall without a team id; nothing to revoke");
        return Ok(());
    };
    let (revoked, parked) = tx
        .revoke_installation(team.as_str(), reason, state.clock.now())
        .await?;
    state.teams.forget(team.as_str());
    if revoked {
        tracing::warn!(team = %team, reason, parked, "installation revoked: nothing more is sent to this workspace");
    } else {
        tracing::error!(team = %team, reason,
            "the default installation's token was revoked or the app uninstalled: sends will \
             fail until SLACK_BOT_TOKEN is replaced (or the app is installed again)");
    }
    Ok(())
}
