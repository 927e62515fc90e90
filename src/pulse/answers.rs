//! Storing answers: a button in the DM, or the survey modal. Insert first, keyed by
//! delivery and question, so double clicks and Slack retries store one answer; a later
//! answer replaces the earlier one while the window is open; after it, nothing is stored.

use crate::domain::ids::DeliveryId;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

use super::Pulses;
use super::ServiceResult;
use crate::domain::planning::member_timezone;
use crate::domain::program::{Program, Question, QuestionKind, Survey};
use crate::domain::state::{Consent, DeliveryState};
use crate::pulse::render;
use crate::slack::outbound::response_url;
use crate::slack::protocol::{MessageKey, OutboxKey, SlackMessage, WinAnswerKey};
use crate::storage::answer_write::{OneTrip, OneTripAnswer};
use crate::storage::group_commit::{take_deferred_claim, JobFuture, SignatureClaim, WriteJob};
use crate::storage::outbox::NewOutboxMessage;
use crate::storage::rounds::{AnswersRead, DeliveryRow, ResponseRow};
use crate::storage::{StoreError, StoreResult, StoreTx};
use slack_facts::ids::UserId;

pub type Answers = BTreeMap<String, (Option<f64>, Option<String>)>;

/// One answer, validated against its question.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerValue {
    pub number: Option<f64>,
    pub text: Option<String>,
}

/// Why an answer cannot be taken, in words for the member.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("Please choose an answer.")]
    Missing,
    #[error("That is not one of the choices.")]
    NotAChoice,
    #[error("Please keep it under {0} characters.")]
    TooLong(usize),
}

/// Checks a raw value (button value, option value or typed text) for a question.
pub fn parse_answer(q: &Question, raw: Option<&str>) -> Result<Option<AnswerValue>, AnswerError> {
    let raw = raw.map(str::trim).filter(|s| !s.is_empty());
    let Some(raw) = raw else {
        return if q.required {
            Err(AnswerError::Missing)
        } else {
            Ok(None)
        };
    };
    let number = |lo: i64, hi: i64| -> Result<Option<AnswerValue>, AnswerError> {
        match raw.parse::<i64>() {
            Ok(v) if (lo..=hi).contains(&v) => Ok(Some(AnswerValue {
                number: Some(v as f64),
                text: None,
            })),
            _ => Err(AnswerError::NotAChoice),
        }
    };
    match q.kind {
        QuestionKind::Scale => number(1, 5),
        QuestionKind::Enps => number(0, 10),
        QuestionKind::Choice => {
            let v = number(0, q.options.len() as i64 - 1)?;
            // The option text is kept too, so exports stay readable if options are reordered.
            Ok(v.map(|mut a| {
                a.text = a.number.and_then(|n| q.options.get(n as usize).cloned());
                a
            }))
        }
        QuestionKind::YesNo => match raw {
            "yes" => Ok(Some(AnswerValue {
                number: Some(1.0),
                text: None,
            })),
            "no" => Ok(Some(AnswerValue {
                number: Some(0.0),
                text: None,
            })),
            _ => Err(AnswerError::NotAChoice),
        },
        QuestionKind::Text | QuestionKind::Win => {
            if raw.chars().count() > render::TEXT_ANSWER_MAX {
                Err(AnswerError::TooLong(render::TEXT_ANSWER_MAX))
            } else {
                Ok(Some(AnswerValue {
                    number: None,
                    text: Some(raw.to_string()),
                }))
            }
        }
    }
}

/// The delivery a click refers to, if it belongs to the person who clicked.
pub enum Lookup {
    Found(Box<(DeliveryRow, std::sync::Arc<Program>)>),
    /// Unknown id, someone else's delivery, or a survey gone from the configuration.
    NotYours,
}

pub async fn find_delivery(
    state: &Pulses,
    delivery_id: DeliveryId,
    user_id: &UserId,
) -> StoreResult<Lookup> {
    let d = match state
        .store
        .delivery_for_click(delivery_id, state.clock.now())
        .await
    {
        Ok(d) => d,
        Err(StoreError::NotFound) => return Ok(Lookup::NotYours),
        Err(e) => return Err(e),
    };
    if d.slack_user_id != *user_id {
        tracing::warn!(
            delivery = delivery_id.0,
            "a click on someone else's pulse was ignored"
        );
        return Ok(Lookup::NotYours);
    }
    match state.catalog.program(&d.program_id) {
        Some(p) if p.survey(&d.survey_id).is_some() => Ok(Lookup::Found(Box::new((d, p)))),
        _ => Ok(Lookup::NotYours),
    }
}

pub async fn answers_of(state: &Pulses, delivery_id: DeliveryId) -> StoreResult<Answers> {
    Ok(to_answers(
        state.store.responses_of_delivery(delivery_id).await?,
    ))
}

fn to_answers(rows: impl IntoIterator<Item = ResponseRow>) -> Answers {
    rows.into_iter()
        .map(|r| (r.metric_key, (r.value_number, r.value_text)))
        .collect()
}

/// A win typed into a survey, with the author's consent for how it may be shown.
#[derive(Clone)]
pub struct WinAnswer {
    pub key: String,
    pub text: String,
    pub consent: Consent,
}

/// What one click or one modal submission answers.
#[derive(Default, Clone)]
pub struct Submission {
    pub values: Vec<(String, AnswerValue)>,
    /// Optional questions the member emptied.
    pub cleared: Vec<String>,
    pub wins: Vec<WinAnswer>,
    /// Comment questions whose author allows the owners to reply (the modal's checkbox).
    pub allow_reply: Vec<String>,
}

/// What became of a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Written (or identical to what was there).
    Yes,
    /// The pulse had closed (window over, closed, or its round sealed): nothing was written
    /// and no update queued.
    Closed,
}

/// Stores answers for one delivery, marks it answered and queues the DM update, in one
/// grouped transaction ([`crate::storage::group_commit`]) whose first statement for this
/// answer is the conditional "still open?" write ([`StoreTx::claim_answer`]): a click racing
/// the close either lands before it (and is sealed with the rest) or stores nothing. Returns
/// once the transaction is committed: durable before Slack gets its acknowledgement.
///
/// When the request's signature was left for the answer to claim
/// ([`crate::storage::group_commit::with_deferred_claim`]), it is claimed in the same
/// transaction: a replay of an answer stores nothing and comes back as [`Stored::Yes`] (the
/// first arrival did the work).
pub async fn store_answers(
    state: &Pulses,
    d: &DeliveryRow,
    program: &Program,
    survey: &Survey,
    submission: &Submission,
    now: DateTime<Utc>,
) -> ServiceResult<Stored> {
    store_answers_via(state, d, program, survey, submission, None, now).await
}

/// [`store_answers`] for a button click that came with a `response_url`: the DM update goes
/// there (outside Slack's Web API tiers) instead of `chat.update`.
pub async fn store_answers_via(
    state: &Pulses,
    d: &DeliveryRow,
    program: &Program,
    survey: &Survey,
    submission: &Submission,
    response_url: Option<&str>,
    now: DateTime<Utc>,
) -> ServiceResult<Stored> {
    // The job owns its inputs: the program in force (shared, not copied) when it is the one
    // given, which it is unless the configuration was reloaded a moment ago.
    let in_force = match state.catalog.program(&program.id) {
        Some(p) if p.survey(&survey.id).is_some() => p,
        _ => std::sync::Arc::new(program.clone()),
    };
    let mut one_trip =
        prepare_one_trip(state, d, &in_force, survey, submission, response_url, now).await?;
    let after = one_trip.as_mut().and_then(|p| p.after.take());
    let epoch = state.store.deliveries_epoch();
    let job = AnswerJob {
        delivery: d.clone(),
        program: in_force,
        survey_id: survey.id.clone(),
        submission: submission.clone(),
        relay: state.relay.clone(),
        response_url: response_url.map(str::to_string),
        claim: take_deferred_claim(),
        one_trip,
        batched: None,
        now,
    };
    let written = state.store.write(job).await?;
    if let (Written::StoredInOneTrip, Some(after)) = (&written, after) {
        state.store.remember_answered(after, epoch);
    }
    Ok(match written {
        Written::Stored | Written::StoredInOneTrip => {
            // Counts only: never a value, and neither the member nor the delivery (an
            // anonymous round's log must not tell who answered).
            tracing::info!(
                event = "answer_stored",
                program = %program.id,
                survey = %survey.id,
                round_id = d.round_id.0,
                questions = submission.values.len(),
                cleared = submission.cleared.len(),
                wins = submission.wins.len(),
                "answer stored"
            );
            Stored::Yes
        }
        Written::Closed => Stored::Closed,
        Written::Replay => {
            metrics::counter!("slack_replays_ignored_total").increment(1);
            tracing::warn!(
                "a signed request arrived a second time (a replay); acknowledged, ignored"
            );
            Stored::Yes
        }
    })
}

/// [`store_answers`] inside the caller's transaction (a typed DM is stored in the transaction
/// that records its event id). Nothing is written when it answers [`Stored::Closed`].
/// `relay` is the reply relay's keys (`None`: replies to comments are not offered).
///
/// It does not go through the group-commit writer: the caller's transaction is the write.
/// On SQLite the caller must not call a Store-level write (one that goes through the writer)
/// while `tx` is open: `tx` holds the write lock the writer waits for.
pub async fn store_answers_in(
    tx: &mut StoreTx,
    relay: Option<&super::relay::RelayKeys>,
    d: &DeliveryRow,
    program: &Program,
    survey: &Survey,
    submission: &Submission,
    now: DateTime<Utc>,
) -> ServiceResult<Stored> {
    let stored = write_answers(tx, relay, d, program, survey, submission, None, now).await?;
    Ok(if stored { Stored::Yes } else { Stored::Closed })
}

/// What an answer's grouped write did.
enum Written {
    Stored,
    /// Stored by the one-trip write, exactly as prepared (the delivery's row after it is
    /// known without a read).
    StoredInOneTrip,
    Closed,
    /// The request's signature was claimed before: nothing written.
    Replay,
}

/// One answer as a unit of the group commit: everything it needs, owned.
struct AnswerJob {
    delivery: DeliveryRow,
    program: std::sync::Arc<Program>,
    survey_id: String,
    submission: Submission,
    relay: Option<super::relay::RelayKeys>,
    response_url: Option<String>,
    claim: Option<SignatureClaim>,
    /// The answer as one trip (one statement on PostgreSQL, five in one trip on SQLite),
    /// prepared from what was read before.
    one_trip: Option<OneTripPrepared>,
    /// What the writer's trip for the whole batch did with `one_trip`, if it did.
    batched: Option<OneTrip>,
    now: DateTime<Utc>,
}

impl AnswerJob {
    fn one_trip_answer(&self) -> Option<OneTripAnswer<'_>> {
        let p = self.one_trip.as_ref()?;
        Some(OneTripAnswer {
            delivery_id: self.delivery.id,
            round_id: self.delivery.round_id,
            role: &self.delivery.role,
            expected_revision: self.delivery.answer_revision,
            values: &p.values,
            update: p.update.as_ref(),
            claim: self.claim.as_ref(),
            now: self.now,
        })
    }
}

impl WriteJob for AnswerJob {
    type Output = Written;

    fn answer(&self) -> Option<OneTripAnswer<'_>> {
        self.one_trip_answer()
    }

    fn answered(&mut self, outcome: Option<OneTrip>) {
        self.batched = outcome;
    }

    fn run<'a>(&'a mut self, tx: &'a mut StoreTx) -> JobFuture<'a, Written> {
        Box::pin(async move {
            let mut claim = self.claim.as_ref();
            if let Some(one) = self.one_trip_answer() {
                let outcome = match self.batched {
                    Some(outcome) => outcome,
                    None => tx.answer_in_one_trip(&one).await?,
                };
                match outcome {
                    OneTrip::Stored => {
                        metrics::counter!("answer_one_trip_total").increment(1);
                        return Ok(Written::StoredInOneTrip);
                    }
                    OneTrip::Replay => return Ok(Written::Replay),
                    // Closed, or another answer to this delivery got in first: the
                    // step-by-step writes below decide (the signature is claimed already).
                    OneTrip::NotApplied => {
                        metrics::counter!("answer_one_trip_fallback_total").increment(1);
                        claim = None;
                    }
                }
            }
            if let Some(claim) = claim {
                if !tx.claim_signature(claim).await? {
                    return Ok(Written::Replay);
                }
            }
            let Some(survey) = self.program.survey(&self.survey_id) else {
                return Ok(Written::Closed);
            };
            let stored = write_answers(
                tx,
                self.relay.as_ref(),
                &self.delivery,
                &self.program,
                survey,
                &self.submission,
                self.response_url.as_deref(),
                self.now,
            )
            .await?;
            Ok(if stored {
                Written::Stored
            } else {
                Written::Closed
            })
        })
    }
}

/// The writes of one answer inside a transaction; `false` when the pulse had closed.
#[allow(clippy::too_many_arguments)]
async fn write_answers(
    tx: &mut StoreTx,
    relay: Option<&super::relay::RelayKeys>,
    d: &DeliveryRow,
    program: &Program,
    survey: &Survey,
    submission: &Submission,
    response_url: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    if !tx.claim_answer(d.id, now).await? {
        return Ok(false);
    }
    let mut changed = d.state != DeliveryState::Answered;
    for (key, v) in &submission.values {
        let is_comment = survey
            .question(key)
            .is_some_and(|q| q.kind == QuestionKind::Text);
        let allow_reply = is_comment && relay.is_some() && submission.allow_reply.contains(key);
        changed |= tx
            .upsert_response(
                d.round_id,
                d.id,
                key,
                &d.role,
                v.number,
                v.text.as_deref(),
                allow_reply,
                now,
            )
            .await?;
        if is_comment {
            let author = d.slack_user_id.as_ref();
            super::relay::attach(tx, relay, d.id, d.round_id, key, author, allow_reply).await?;
        }
    }
    for key in &submission.cleared {
        let author = d.slack_user_id.as_ref();
        super::relay::attach(tx, relay, d.id, d.round_id, key, author, false).await?;
        changed |= tx.delete_response(d.id, key).await?;
    }
    for win in &submission.wins {
        let author = (win.consent == Consent::Named).then_some(d.member_id);
        let answer_key = WinAnswerKey {
            delivery: d.id,
            question: win.key.clone(),
        }
        .to_string();
        changed |= tx
            .upsert_survey_win(
                &program.id,
                d.round_id,
                author,
                &win.text,
                win.consent,
                &answer_key,
                now,
            )
            .await?;
    }
    if changed {
        queue_answered_update(tx, d, program, survey, response_url, now).await?;
    }
    Ok(true)
}

/// Queues the DM update that shows what is answered. Keyed by the delivery's answer revision,
/// never by the answers (a key must not tell what was answered), so every change queues a
/// new update — A, then B, then A again is three updates — and the older updates of this DM
/// still pending are dropped in the same transaction: repeated updates of one message collapse
/// into the latest, and they cannot be sent out of order.
///
/// After a click the update goes to the click's `response_url` (`replace_original`), which is
/// not under the Web API tiers; the worker falls back to `chat.update` when the URL has
/// expired (30 minutes) or is refused. Modal submissions (no response_url) use `chat.update`.
async fn queue_answered_update(
    tx: &mut StoreTx,
    d: &DeliveryRow,
    program: &Program,
    survey: &Survey,
    response_url: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let answers: Answers = tx
        .responses_of_delivery(d.id)
        .await?
        .into_iter()
        .map(|r| (r.metric_key, (r.value_number, r.value_text)))
        .collect();
    let mut consents = BTreeMap::new();
    for q in survey
        .questions
        .iter()
        .filter(|q| q.kind == QuestionKind::Win)
    {
        let key = WinAnswerKey {
            delivery: d.id,
            question: q.key.clone(),
        };
        if let Some(consent) = tx.win_consent(&key.to_string()).await? {
            consents.insert(q.key.clone(), consent);
        }
    }
    let ctx = render::dm_context(program, survey, d);
    let message = match render::answered_message(&ctx, &answers, &consents) {
        Ok(message) => message,
        Err(e) => {
            // The answer is stored; only the redrawn DM cannot be made (see check-config).
            tracing::error!(delivery = d.id.0, error = %e, "cannot render the answered DM");
            return Ok(());
        }
    };
    let revision = tx.bump_answer_revision(d.id).await?;
    let update = answered_update(d.id, revision, &message, response_url, now);
    tx.supersede_pending_updates(update.target_key.as_deref().unwrap_or_default())
        .await?;
    tx.enqueue(&update, now).await?;
    Ok(())
}

/// The outbox row of a DM update at answer revision `revision`.
fn answered_update(
    delivery: DeliveryId,
    revision: i64,
    message: &SlackMessage,
    response_url: Option<&str>,
    now: DateTime<Utc>,
) -> NewOutboxMessage {
    let key = OutboxKey::AnswerUpdate { delivery, revision };
    let mut update = key.message("chat.update", message.payload(None));
    update.target_key = Some(MessageKey::Delivery(delivery).to_string());
    if let Some(url) = response_url {
        response_url::route_via(&mut update, url, now);
    }
    update
}

/// An answer made ready to be written in one trip (one statement on PostgreSQL, five sent
/// together on SQLite; [`StoreTx::answer_in_one_trip`]).
struct OneTripPrepared {
    values: Vec<(String, Option<f64>, Option<String>)>,
    /// The DM update at the next revision; `None` when the answer changes nothing.
    update: Option<NewOutboxMessage>,
    /// The delivery's row once this is stored (with `update`), for the delivery cache.
    after: Option<DeliveryRow>,
}

/// Prepares the one-trip answer (one statement on PostgreSQL, one trip of five on SQLite):
/// the DM update rendered from the answers stored at the delivery's revision
/// `d.answer_revision` with this submission's values put in. The statement applies only
/// while the revision is still that one, so the update is exactly what the step-by-step
/// writes would queue. `None` (the step-by-step writes) for what one statement does not
/// cover: cleared answers, wins (their consents), comments (the reply relay), and a DM that
/// cannot be rendered.
async fn prepare_one_trip(
    state: &Pulses,
    d: &DeliveryRow,
    program: &Program,
    survey: &Survey,
    submission: &Submission,
    response_url: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<Option<OneTripPrepared>> {
    let simple = |kind: QuestionKind| !matches!(kind, QuestionKind::Text | QuestionKind::Win);
    let covered = !submission.values.is_empty()
        && submission.cleared.is_empty()
        && submission.wins.is_empty()
        && survey.questions.iter().all(|q| q.kind != QuestionKind::Win)
        && submission
            .values
            .iter()
            .all(|(k, _)| survey.question(k).is_some_and(|q| simple(q.kind)));
    if !covered {
        return Ok(None);
    }
    // Every stored answer marks its delivery answered: before that there is nothing to read.
    let mut answers: Answers = match &d.answers_read {
        _ if d.state != DeliveryState::Answered => Answers::new(),
        Some(read) => to_answers(read.0.iter().cloned()),
        None => answers_of(state, d.id).await?,
    };
    let mut changed = d.state != DeliveryState::Answered;
    let mut values = Vec::with_capacity(submission.values.len());
    for (key, v) in &submission.values {
        let new = (v.number, v.text.clone());
        changed |= answers.get(key) != Some(&new);
        values.push((key.clone(), v.number, v.text.clone()));
        answers.insert(key.clone(), new);
    }
    if !changed {
        return Ok(Some(OneTripPrepared {
            values,
            update: None,
            after: None,
        }));
    }
    let ctx = render::dm_context(program, survey, d);
    let Ok(message) = render::answered_message(&ctx, &answers, &BTreeMap::new()) else {
        return Ok(None);
    };
    let revision = d.answer_revision + 1;
    let update = answered_update(d.id, revision, &message, response_url, now);
    // What the one-trip write makes of the row (answer_write.rs: answered, the first answer's
    // time kept, the revision moved on, these answers), for the delivery cache if there is one.
    let after = state.store.remembers_deliveries().then(|| DeliveryRow {
        state: DeliveryState::Answered,
        answered_at: d.answered_at.or(Some(now)),
        answer_revision: revision,
        answers_read: Some(AnswersRead(
            answers
                .into_iter()
                .map(|(metric_key, (value_number, value_text))| ResponseRow {
                    metric_key,
                    value_number,
                    value_text,
                })
                .collect(),
        )),
        ..d.clone()
    });
    Ok(Some(OneTripPrepared {
        values,
        update: Some(update),
        after,
    }))
}

/// Tells the member, privately in the DM, that the pulse is closed.
pub async fn queue_closed_notice(
    state: &Pulses,
    d: &DeliveryRow,
    program: &Program,
    action_ts: &str,
) -> StoreResult<()> {
    let now = state.clock.now();
    let tz = member_timezone(program, Some(&d.timezone), None);
    let text = render::closed_notice(d.closes_at, tz);
    let Some(channel) = d.channel_id.clone() else {
        return Ok(());
    };
    let key = OutboxKey::LateNotice {
        delivery: d.id,
        action_ts: action_ts.to_string(),
    };
    let message = SlackMessage {
        text,
        blocks: Vec::new(),
    };
    let notice = key.message(
        "chat.postEphemeral",
        message.ephemeral_payload(channel.as_ref(), d.slack_user_id.as_ref()),
    );
    state.store.enqueue(&notice, now).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(kind: QuestionKind, required: bool) -> Question {
        Question {
            key: "k".into(),
            kind,
            prompt: "p".into(),
            low_label: None,
            high_label: None,
            options: vec!["a".into(), "b".into(), "c".into()],
            required,
        }
    }

    #[test]
    fn answers_are_checked_against_their_question() {
        let scale = q(QuestionKind::Scale, true);
        assert_eq!(
            parse_answer(&scale, Some("4")).unwrap().unwrap().number,
            Some(4.0)
        );
        assert_eq!(
            parse_answer(&scale, Some("6")),
            Err(AnswerError::NotAChoice)
        );
        assert_eq!(parse_answer(&scale, None), Err(AnswerError::Missing));
        let enps = q(QuestionKind::Enps, true);
        assert_eq!(
            parse_answer(&enps, Some("0")).unwrap().unwrap().number,
            Some(0.0)
        );
        let choice = q(QuestionKind::Choice, true);
        let c = parse_answer(&choice, Some("2")).unwrap().unwrap();
        assert_eq!((c.number, c.text.as_deref()), (Some(2.0), Some("c")));
        assert_eq!(
            parse_answer(&choice, Some("3")),
            Err(AnswerError::NotAChoice)
        );
        let yes_no = q(QuestionKind::YesNo, true);
        assert_eq!(
            parse_answer(&yes_no, Some("no")).unwrap().unwrap().number,
            Some(0.0)
        );
        let text = q(QuestionKind::Text, false);
        assert_eq!(parse_answer(&text, Some("   ")), Ok(None));
        let long = "x".repeat(3001);
        assert_eq!(
            parse_answer(&text, Some(&long)),
            Err(AnswerError::TooLong(3000))
        );
    }
}
