//! Interactivity: button clicks (`block_actions`), modal submissions and closes.
//! Everything here answers well inside Slack's 3 seconds: answers are one transaction, and
//! Slack writes go to the outbox, except `views.open`, which must use the click's
//! `trigger_id` at once.

use crate::domain::ids::DeliveryId;
use std::collections::BTreeMap;

use super::answers::{self, find_delivery, parse_answer, Lookup, Submission, WinAnswer};
use super::render;
use super::Pulses;
use super::ServiceResult;
use crate::domain::program::{Program, QuestionKind, Survey};
use crate::domain::state::Consent;
use crate::slack::incoming::payloads::{Action, BlockActions, Interaction, ViewSubmission};
use crate::slack::protocol::{
    AnswerActionId, BlockPart, HomeAction, ModalInputId, ModalMetadata, PulseBlockId,
    WinConsentAction, ACTION_REPLY_TO_COMMENT, CELEBRATE_WIN_CALLBACK, REPLY_MODAL_CALLBACK,
};
use crate::storage::members::MemberControl;
use crate::storage::rounds::DeliveryRow;
use slack_facts::ids::UserId;
use std::sync::Arc;

/// What Slack is told about an interaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InteractionOutcome {
    /// Acknowledged with nothing to say (a modal closes, a click is taken).
    Ack,
    /// The modal stays open with these messages, by the `block_id` they belong to.
    ViewErrors(BTreeMap<String, String>),
}

pub async fn handle(state: &Pulses, interaction: Interaction) -> ServiceResult<InteractionOutcome> {
    match interaction {
        Interaction::BlockActions(ba) => {
            for action in &ba.actions {
                on_action(state, &ba, action).await?;
            }
            Ok(InteractionOutcome::Ack)
        }
        Interaction::ViewSubmission(vs) => Box::pin(on_submission(state, vs)).await,
        Interaction::ViewClosed(_) => Ok(InteractionOutcome::Ack),
        Interaction::MessageAction(a)
            if a.callback_id.as_deref() == Some(CELEBRATE_WIN_CALLBACK) =>
        {
            Box::pin(super::wins::on_shortcut(state, &a)).await?;
            Ok(InteractionOutcome::Ack)
        }
        Interaction::MessageAction(a) => {
            tracing::debug!(callback = ?a.callback_id, "message shortcut ignored");
            Ok(InteractionOutcome::Ack)
        }
        Interaction::Shortcut(s) => {
            tracing::debug!(callback = ?s.callback_id, "shortcut ignored");
            Ok(InteractionOutcome::Ack)
        }
        Interaction::Unknown => {
            tracing::debug!("ignored an interaction of an unknown type");
            Ok(InteractionOutcome::Ack)
        }
    }
}

/// A click. The buttons other than an answer are boxed: an async fn's future is as large as
/// its largest branch and is copied each time it moves, and the answer click, by far the
/// most frequent, should not carry (and copy) the state of a `views.open` or a data export.
async fn on_action(state: &Pulses, ba: &BlockActions, action: &Action) -> ServiceResult<()> {
    let user = &ba.user.id;
    if action.action_id == render::ACTION_OPTOUT_CONFIRM {
        return Box::pin(async {
            let n = apply_control(state, user, MemberControl::OptOut).await?;
            tracing::info!(event = "opt_out", member = %user, memberships = n, source = "button", "member opted out");
            confirm_in_place(state, ba, &super::commands::optout_reply(n)).await;
            Ok(())
        })
        .await;
    }
    if action.action_id == super::my_data::ACTION_FORGET_ME_CONFIRM {
        return Box::pin(super::my_data::on_forget_me_confirm(state, ba)).await;
    }
    if let Ok(home_action) = action.action_id.parse::<HomeAction>() {
        return Box::pin(on_home_action(state, ba, action, home_action)).await;
    }
    if let Ok(choice) = action.action_id.parse::<WinConsentAction>() {
        return Box::pin(super::wins::on_consent(
            state,
            ba,
            choice,
            action.block_id.as_deref(),
        ))
        .await;
    }
    if action.action_id == ACTION_REPLY_TO_COMMENT {
        return Box::pin(super::relay::on_reply_button(
            state,
            ba,
            action.value.as_deref(),
        ))
        .await;
    }
    if action.action_id == render::ACTION_OPEN_MODAL {
        let Some(delivery_id) = action.value.as_deref().and_then(|v| v.parse().ok()) else {
            return Ok(());
        };
        return Box::pin(open_modal(state, ba, delivery_id)).await;
    }
    if action.action_id.parse::<AnswerActionId>().is_err() {
        tracing::debug!(action = %action.action_id, "unknown action ignored");
        return Ok(());
    }
    let Some(block) = action
        .block_id
        .as_deref()
        .and_then(|b| b.parse::<PulseBlockId>().ok())
    else {
        return Ok(());
    };
    let (delivery_id, BlockPart::Question(key)) = (block.delivery(), block.part()) else {
        return Ok(());
    };
    let Some((d, program)) =
        open_delivery(state, delivery_id, user, action.action_ts.as_deref()).await?
    else {
        return Ok(());
    };
    let Some(survey) = program.survey(&d.survey_id) else {
        return Ok(());
    };
    let now = state.clock.now();
    let Some(question) = survey.question(key) else {
        return Ok(());
    };
    match parse_answer(question, action.chosen_value()) {
        Ok(Some(value)) => {
            let submission = Submission {
                values: vec![(key.to_string(), value)],
                ..Submission::default()
            };
            // The DM update goes through this click's response_url (outside the Web API tiers).
            let via = ba.response_url.as_deref();
            let stored =
                answers::store_answers_via(state, &d, &program, survey, &submission, via, now)
                    .await?;
            if stored == answers::Stored::Closed {
                Box::pin(closed_notice(
                    state,
                    &d,
                    &program,
                    action.action_ts.as_deref(),
                ))
                .await?;
            }
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => {
            tracing::warn!(delivery = d.id.0, error = %e, "a button carried an invalid answer");
            Ok(())
        }
    }
}

async fn apply_control(
    state: &Pulses,
    user: &UserId,
    control: MemberControl,
) -> ServiceResult<u64> {
    let mut tx = state.store.begin().await?;
    let n = tx
        .apply_member_control(user, control, state.clock.now())
        .await?;
    tx.commit().await?;
    Ok(n)
}

/// Replaces the message that held the clicked button (the ephemeral "Opt out of all
/// pulses?") with `text`, through the click's `response_url`; a click on the Home tab redraws
/// the tab instead.
async fn confirm_in_place(state: &Pulses, ba: &BlockActions, text: &str) {
    if is_home(ba) {
        republish_home(state, ba).await;
        return;
    }
    let Some(url) = ba.response_url.as_deref() else {
        return;
    };
    let body = serde_json::json!({ "replace_original": true, "text": text });
    if let Err(e) = state.slack.respond(url, &body).await {
        tracing::warn!(error = %e, "could not confirm the click in place");
    }
}

fn is_home(ba: &BlockActions) -> bool {
    ba.view.as_ref().and_then(|v| v.kind.as_deref()) == Some("home")
}

/// Queues the clicking member's Home tab again (after a control changed it).
async fn republish_home(state: &Pulses, ba: &BlockActions) {
    let nonce = ba
        .actions
        .first()
        .and_then(|a| a.action_ts.clone())
        .unwrap_or_else(|| state.clock.now().timestamp_micros().to_string());
    if let Err(e) = super::home::publish_now(state, &ba.user.id, &nonce).await {
        tracing::warn!(error = %e, "could not queue the Home tab");
    }
}

/// A button of the App Home tab: pause, resume, opt out (Slack asked to confirm), or an
/// owner's "Preview digest".
async fn on_home_action(
    state: &Pulses,
    ba: &BlockActions,
    action: &Action,
    home_action: HomeAction,
) -> ServiceResult<()> {
    let user = &ba.user.id;
    let control = match home_action {
        HomeAction::Pause => MemberControl::Pause { until: None },
        HomeAction::Resume => MemberControl::Resume,
        HomeAction::OptOut => MemberControl::OptOut,
        HomeAction::PreviewDigest => return preview_digest(state, ba, action).await,
    };
    apply_control(state, user, control).await?;
    republish_home(state, ba).await;
    Ok(())
}

/// "Preview digest": owners only. The current period's digest so far, as the sponsors would
/// read it, by DM (a Home tab has no channel for an ephemeral); nothing is posted to the
/// sponsor channel.
async fn preview_digest(state: &Pulses, ba: &BlockActions, action: &Action) -> ServiceResult<()> {
    let user = &ba.user.id;
    let program = action
        .value
        .as_deref()
        .map(|v| crate::domain::ids::ProgramId(v.to_string()))
        .and_then(|id| state.catalog.program(&id));
    let nonce = action
        .action_ts
        .clone()
        .unwrap_or_else(|| state.clock.now().timestamp_micros().to_string());
    let key = format!("digest-preview:{user}:{nonce}");
    let owned = program.filter(|p| p.owners.iter().any(|o| o == user.as_str()));
    let row = match owned {
        None => super::home::dm_row(user, key, super::home::DIGEST_PREVIEW_REFUSED),
        Some(program) => {
            let now = state.clock.now();
            match crate::digest::service::preview(&state.store, &program, now).await {
                Ok(d) => {
                    let text = format!("{} {}", super::home::DIGEST_PREVIEW_PREFIX, d.text);
                    let mut row = super::home::dm_row(user, key, &text);
                    row.payload["blocks"] = serde_json::Value::Array(d.blocks);
                    row
                }
                Err(crate::digest::DigestError::Store(e)) => return Err(e.into()),
                Err(e) => {
                    super::home::dm_row(user, key, &format!("The digest cannot be built: {e}."))
                }
            }
        }
    };
    state.store.enqueue(&row, state.clock.now()).await?;
    Ok(())
}

/// The member's own delivery, if its window is still open; after it closes the member is
/// told so (privately) and `None` comes back.
async fn open_delivery(
    state: &Pulses,
    delivery_id: DeliveryId,
    user: &UserId,
    action_ts: Option<&str>,
) -> ServiceResult<Option<(DeliveryRow, Arc<Program>)>> {
    let Lookup::Found(found) = find_delivery(state, delivery_id, user).await? else {
        return Ok(None);
    };
    let (d, program) = *found;
    let now = state.clock.now();
    if d.is_open(now) {
        return Ok(Some((d, program)));
    }
    closed_notice(state, &d, &program, action_ts).await?;
    Ok(None)
}

/// The ephemeral "closed on …" for a click that came too late.
async fn closed_notice(
    state: &Pulses,
    d: &DeliveryRow,
    program: &Program,
    action_ts: Option<&str>,
) -> ServiceResult<()> {
    let now = state.clock.now();
    let ts = action_ts.map_or_else(|| now.timestamp_millis().to_string(), str::to_string);
    answers::queue_closed_notice(state, d, program, &ts).await?;
    Ok(())
}

/// The modal's answer to a submission that came after the close: the notice by the first
/// question, nothing stored.
fn closed_errors(program: &Program, survey: &Survey, d: &DeliveryRow) -> InteractionOutcome {
    let first = survey
        .questions
        .first()
        .and_then(|q| ModalInputId::question(&q.key).ok())
        .map(|id| id.to_string())
        .unwrap_or_default();
    let tz = crate::domain::planning::member_timezone(program, Some(&d.timezone), None);
    InteractionOutcome::ViewErrors(BTreeMap::from([(
        first,
        render::closed_notice(d.closes_at, tz),
    )]))
}

async fn open_modal(
    state: &Pulses,
    ba: &BlockActions,
    delivery_id: DeliveryId,
) -> ServiceResult<()> {
    let Some((d, program)) = open_delivery(state, delivery_id, &ba.user.id, None).await? else {
        return Ok(());
    };
    let Some(survey) = program.survey(&d.survey_id) else {
        return Ok(());
    };
    let Some(trigger) = ba.trigger_id.as_deref() else {
        return Ok(());
    };
    let prior = answers::answers_of(state, d.id).await?;
    let allowed = match state.relay {
        Some(_) => Some(state.store.replies_allowed(d.id).await?),
        None => None,
    };
    let view = render::survey_modal(&render::dm_context(&program, survey, &d), &prior).and_then(
        |mut view| {
            if let Some(allowed) = &allowed {
                super::relay::add_reply_choices(&mut view.blocks, survey, allowed)?;
            }
            Ok(view)
        },
    );
    let view = match view {
        Ok(view) => view.to_json(),
        Err(e) => {
            tracing::error!(delivery = d.id.0, error = %e, "cannot render the survey modal");
            return Ok(());
        }
    };
    if let Err(e) = state.slack.views_open(trigger, &view).await {
        tracing::warn!(delivery = d.id.0, error = %e, "could not open the survey modal");
    }
    Ok(())
}

async fn on_submission(state: &Pulses, vs: ViewSubmission) -> ServiceResult<InteractionOutcome> {
    if vs.view.callback_id.as_deref() == Some(REPLY_MODAL_CALLBACK) {
        return super::relay::on_reply_submission(state, &vs).await;
    }
    if vs.view.callback_id.as_deref() != Some(render::MODAL_CALLBACK) {
        return Ok(InteractionOutcome::Ack);
    }
    let delivery_id = vs
        .view
        .private_metadata
        .as_deref()
        .and_then(|m| m.parse::<ModalMetadata>().ok())
        .map(|m| m.delivery);
    let Some(delivery_id) = delivery_id else {
        return Ok(InteractionOutcome::Ack);
    };
    let Lookup::Found(found) = find_delivery(state, delivery_id, &vs.user.id).await? else {
        return Ok(InteractionOutcome::Ack);
    };
    let (d, program) = *found;
    let Some(survey) = program.survey(&d.survey_id) else {
        return Ok(InteractionOutcome::Ack);
    };
    let now = state.clock.now();
    let values = vs.view.state.clone().unwrap_or_default().values;
    let value_of = |block: &str| -> Option<String> {
        values
            .get(block)
            .and_then(|actions| actions.values().next())
            .and_then(|v| v.chosen_value().map(str::to_string))
    };

    if !d.is_open(now) {
        return Ok(closed_errors(&program, survey, &d));
    }

    let mut errors = BTreeMap::new();
    let mut submission = Submission::default();
    for q in &survey.questions {
        let (Ok(block), Ok(consent)) = (
            ModalInputId::question(&q.key),
            ModalInputId::consent(&q.key),
        ) else {
            continue;
        };
        let block = block.to_string();
        if q.kind == QuestionKind::Text {
            let ticked = ModalInputId::allow_reply(&q.key)
                .ok()
                .and_then(|id| values.get(&id.to_string()))
                .and_then(|actions| actions.values().next())
                .and_then(|v| v.selected_options.as_ref())
                .is_some_and(|o| o.iter().any(|o| o.value == super::relay::ALLOW_REPLY_VALUE));
            if ticked {
                submission.allow_reply.push(q.key.clone());
            }
        }
        match parse_answer(q, value_of(&block).as_deref()) {
            Ok(Some(v)) => {
                if q.kind == QuestionKind::Win {
                    let consent = value_of(&consent.to_string())
                        .and_then(|c| c.parse::<Consent>().ok())
                        .unwrap_or(Consent::Private);
                    if let Some(text) = &v.text {
                        submission.wins.push(WinAnswer {
                            key: q.key.clone(),
                            text: text.clone(),
                            consent,
                        });
                    }
                }
                submission.values.push((q.key.clone(), v));
            }
            Ok(None) => submission.cleared.push(q.key.clone()),
            Err(e) => {
                errors.insert(block, e.to_string());
            }
        }
    }
    if !errors.is_empty() {
        return Ok(InteractionOutcome::ViewErrors(errors));
    }
    match answers::store_answers(state, &d, &program, survey, &submission, now).await? {
        answers::Stored::Yes => Ok(InteractionOutcome::Ack),
        answers::Stored::Closed => Ok(closed_errors(&program, survey, &d)),
    }
}
