//! A member's own data (issue 10, item 4; docs/my-data.md).
//!
//! - `/pulse my-data` puts a JSON file in the member's DM (through the outbox's file upload,
//!   like the digest's chart) with what pulseloop holds about them: memberships and settings,
//!   the pulses sent to them, their confidential and attributed answers with the questions,
//!   their wins, the comments the reply relay can reach them for, the audit entries naming
//!   them. Never an anonymous answer: nothing links those to anyone (the file says so).
//! - `/pulse forget-me` asks to confirm (a danger button with Slack's confirm dialog); the
//!   click erases or unlinks everything that names them (`storage::member_data`), in one
//!   transaction, keeps the program's totals as they were, and leaves a tombstone (a keyed
//!   hash) so the next configuration sync does not add them back.
//!
//! Both are audited: my-data and the forget-me question with the member as actor (never the
//! content); the erasure itself as "a member erased their data", naming nobody, after the
//! entries that named them were deleted.

use chrono::{DateTime, Duration, Utc};
use ring::digest::{digest, SHA256};
use serde_json::{json, Value};

use super::commands::{ephemeral, CommandReply};
use super::{Pulses, ServiceResult};
use crate::domain::ids::ProgramId;
use crate::slack::incoming::payloads::{BlockActions, SlashCommand};
use crate::slack::outbound::upload::FileUpload;
use crate::slack::protocol::ReplyHandle;
use crate::storage::member_data::{ErasureOutcome, MemberData, ERASED_ACTOR};
use crate::storage::programs::DesiredMember;
use crate::storage::StoreError;
use slack_facts::ids::UserId;

/// The forget-me button (ephemeral message, danger style, with a confirm dialog).
pub const ACTION_FORGET_ME_CONFIRM: &str = "forget_me_confirm";
/// The outbox key of a my-data file: `my-data:<random>` (the key names nobody).
pub const FILE_KEY_PREFIX: &str = "my-data:";
/// The file's name in Slack.
pub const FILE_NAME: &str = "pulseloop-my-data.json";
/// The ephemeral answer to `/pulse my-data`.
pub const PREPARING: &str = "I'm preparing your data; it will arrive as a DM.";
/// Sent my-data files are deleted from the outbox after this long (the next request of
/// anyone prunes them): the payload is a copy of someone's data, and Slack has the file.
const FILE_KEPT_MINUTES: i64 = 60;
/// Label of the keyed tombstone hash.
const TOMBSTONE_LABEL: &str = "pulseloop forgotten member";

/// Why anonymous answers are not in the file, and what else the reader should know.
pub const NOTES: &[&str] = &[
    "Answers to anonymous pulses are not in this file. When an anonymous pulse closes, its answers are unlinked from everyone's name for good, so nothing in pulseloop can tell which answers were yours. Before it closes they are linked only so you can change them, and they are not shown even to you.",
    "For pulses of anonymous rounds, this file lists only when the pulse was sent and when it closed: whether you answered or were reminded is left out for the same reason.",
    "Confidential answers are seen only by you; the program team sees totals of enough people. Attributed answers are seen by the program team with your name.",
    "Replies to your comments are relayed to you by DM and never stored.",
    "`/pulse forget-me` erases what names you. Your answers to anonymous pulses, and the numbers (not the words) of your confidential and attributed answers, stay in the program's totals, linked to nobody.",
];

/// The member as the audit log names them (before any erasure).
fn actor(user: &UserId) -> String {
    format!("member:{user}")
}

/// `/pulse my-data`: queues the file by DM, audits the request, and says so.
pub async fn command(state: &Pulses, command: &SlashCommand) -> ServiceResult<CommandReply> {
    let user = &command.user_id;
    let now = state.clock.now();
    let data = state.store.member_data(user).await?;
    let document = document(state, user, &data, now);
    let bytes = serde_json::to_vec_pretty(&document).unwrap_or_default();
    // files.completeUploadExternal shares into a conversation: their DM with the bot as Slack
    // named it for a pulse, else the user id (which opens that DM, as for chat.postMessage).
    let channel = match state.store.dm_channel_of(user).await? {
        Some(dm) => dm,
        None => user.to_string(),
    };
    let upload = FileUpload {
        channel,
        filename: FILE_NAME.to_string(),
        title: "What pulseloop holds about you".to_string(),
        initial_comment: Some(
            "Here is what pulseloop holds about you (JSON). `/pulse forget-me` erases it."
                .to_string(),
        ),
        thread_ts: None,
        bytes,
    };
    let key = format!("{FILE_KEY_PREFIX}{}", uuid::Uuid::new_v4().simple());
    // Older files already in Slack: their copies leave the outbox.
    state
        .store
        .prune_sent_files(FILE_KEY_PREFIX, now - Duration::minutes(FILE_KEPT_MINUTES))
        .await?;
    let mut tx = state.store.begin().await?;
    tx.enqueue(&upload.message(key), now).await?;
    tx.audit(
        now,
        &actor(user),
        "member.my_data",
        None,
        None,
        &json!({ "delivered_as": "file by DM" }),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(event = "my_data", member = %user, "member data file queued");
    Ok(ephemeral(PREPARING))
}

fn program_name(state: &Pulses, id: &str) -> Option<String> {
    state
        .catalog
        .program(&ProgramId(id.to_string()))
        .map(|p| p.name.clone())
}

fn survey_name(state: &Pulses, program: &str, survey: &str) -> Option<String> {
    state
        .catalog
        .program(&ProgramId(program.to_string()))
        .and_then(|p| p.survey(survey).map(|s| s.name.clone()))
}

/// The file's JSON.
pub fn document(state: &Pulses, user: &UserId, data: &MemberData, now: DateTime<Utc>) -> Value {
    let deliveries: Vec<Value> = data
        .deliveries
        .iter()
        .map(|d| {
            let mut v = json!({
                "program": d.program_id,
                "survey": d.survey_id,
                "survey_name": survey_name(state, &d.program_id, &d.survey_id),
                "period": d.period_key,
                "anonymity": d.anonymity,
                "scheduled_at": d.scheduled_at,
                "local_time": d.local_time,
                "timezone": d.timezone,
                "sent_at": d.sent_at,
                "closes_at": d.closes_at,
            });
            if d.anonymity != "anonymous" {
                v["state"] = json!(d.state);
                v["reminded_at"] = json!(d.reminded_at);
                v["answered_at"] = json!(d.answered_at);
                v["failure_reason"] = json!(d.failure_reason);
            }
            v
        })
        .collect();
    let answers: Vec<Value> = data
        .answers
        .iter()
        .map(|a| {
            json!({
                "program": a.program_id,
                "survey": a.survey_id,
                "survey_name": survey_name(state, &a.program_id, &a.survey_id),
                "period": a.period_key,
                "anonymity": a.anonymity,
                "question_key": a.question_key,
                "question": a.question,
                "kind": a.kind,
                "value": a.value_number,
                "text": a.value_text,
                "replies_allowed": a.allow_reply,
                "answered_at": a.answered_at,
            })
        })
        .collect();
    let relay: Vec<Value> = data
        .answers
        .iter()
        .filter(|a| a.allow_reply)
        .map(|a| {
            json!({
                "program": a.program_id,
                "survey": a.survey_id,
                "period": a.period_key,
                "question": a.question,
                "comment": a.value_text,
            })
        })
        .collect();
    let memberships: Vec<Value> = data
        .memberships
        .iter()
        .map(|m| {
            json!({
                "program": m.program_id,
                "program_name": program_name(state, &m.program_id).unwrap_or_else(|| m.program_name.clone()),
                "role": m.role,
                "added_by": m.source,
                "state": m.state,
                "paused": m.state == "paused",
                "paused_until": m.paused_until,
                "opted_out": m.state == "opted_out",
                "timezone_from_configuration": m.timezone_override,
                "timezone_from_slack": m.slack_tz,
                "working_days": m.working_days.as_deref().and_then(|w| serde_json::from_str::<Value>(w).ok()),
                "slack_status": { "text": m.status_text, "emoji": m.status_emoji },
                "slack_account_deleted": m.slack_deleted,
                "slack_problem": m.slack_problem,
                "added_at": m.added_at,
            })
        })
        .collect();
    json!({
        "about": "What pulseloop holds about you",
        "member": user,
        "generated_at": now,
        "notes": NOTES,
        "memberships": memberships,
        "pulses_sent_to_you": deliveries,
        "answers": answers,
        "wins_you_shared": data.wins_authored,
        "wins_naming_you": data.wins_mentioning,
        "wins_waiting_for_your_consent": data.win_requests,
        "actions_you_recorded": data.actions,
        "comments_the_reply_relay_can_reach_you_for": relay,
        "audit_entries_naming_you": data.audit,
        "messages_waiting_to_be_sent_to_you": data.messages_waiting,
    })
}

/// The tombstones of `user`: keyed with the server secret when one is configured, and the
/// plain hash (what is stored without a secret, or was before one was set).
fn tombstones(state: &Pulses, user: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    if let Some(keys) = &state.relay {
        out.push((keys.tag(TOMBSTONE_LABEL, user), true));
    }
    let plain = digest(&SHA256, format!("{TOMBSTONE_LABEL}\0{user}").as_bytes());
    out.push((hex::encode(plain.as_ref()), false));
    out
}

/// Configuration sync: leaves out file or user-group members who asked to be forgotten, with
/// a warning for the operator (the file should no longer list them).
pub async fn drop_forgotten(
    state: &Pulses,
    program: &ProgramId,
    members: &mut Vec<DesiredMember>,
) -> Result<(), StoreError> {
    let stored = state.store.tombstones().await?;
    if stored.is_empty() {
        return Ok(());
    }
    members.retain(|m| {
        let gone = tombstones(state, m.slack_user_id.as_str())
            .iter()
            .any(|(t, _)| stored.contains(t));
        if gone {
            tracing::warn!(program = %program, member = %m.slack_user_id, source = %m.source,
                "this member asked to be forgotten (/pulse forget-me) and is not added back; remove them from the configuration");
        }
        !gone
    });
    Ok(())
}

/// `/pulse forget-me`: the question, with a danger button behind Slack's confirm dialog.
pub async fn forget_me_command(
    state: &Pulses,
    command: &SlashCommand,
) -> ServiceResult<CommandReply> {
    let user = &command.user_id;
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let naming = tx.programs_naming(user).await?;
    if !naming.is_empty() {
        audit_named_refusal(&mut tx, now, user, &naming).await?;
        tx.commit().await?;
        return Ok(ephemeral(named_in_configuration(&naming)));
    }
    tx.audit(
        now,
        &actor(user),
        "member.forget_me_asked",
        None,
        None,
        &json!({}),
    )
    .await?;
    tx.commit().await?;
    let explain = "*Erase what pulseloop holds about you?*\n\
        • Your memberships, settings, pulses, confidential and attributed answers' words, wins, \
        win requests, notes and audit entries are erased or unlinked from you, and you get no more pulses.\n\
        • The numbers you answered stay in the program's totals, linked to nobody, so the totals do not change. \
        Anonymous answers were never linked to you and stay as they are.\n\
        • Messages already in Slack stay in Slack. `/pulse my-data` first if you want a copy.\n\
        This cannot be undone.";
    Ok(CommandReply {
        text: "Erase what pulseloop holds about you? This cannot be undone.".to_string(),
        blocks: Some(json!([
            { "type": "section", "text": { "type": "mrkdwn", "text": explain } },
            { "type": "actions", "elements": [{
                "type": "button", "style": "danger", "action_id": ACTION_FORGET_ME_CONFIRM,
                "text": { "type": "plain_text", "text": "Erase my data" }, "value": "confirm",
                "confirm": {
                    "title": { "type": "plain_text", "text": "Erase your data?" },
                    "text": { "type": "mrkdwn", "text": "pulseloop will erase or unlink everything that names you. This cannot be undone." },
                    "confirm": { "type": "plain_text", "text": "Erase" },
                    "deny": { "type": "plain_text", "text": "Keep my data" },
                    "style": "danger"
                }
            }] }
        ])),
        ephemeral: true,
    })
}

/// Audits a forget-me refused because a configuration file names the member (before the
/// confirmation, or found again at it).
async fn audit_named_refusal(
    tx: &mut crate::storage::StoreTx,
    now: DateTime<Utc>,
    user: &UserId,
    programs: &[String],
) -> crate::storage::StoreResult<()> {
    tx.audit(
        now,
        &actor(user),
        "member.forget_me_refused",
        None,
        None,
        &json!({ "reason": "named in the configuration", "programs": programs }),
    )
    .await
}

fn named_in_configuration(programs: &[String]) -> String {
    format!(
        "You are named in the configuration of {} (as an owner or sponsor), which pulseloop cannot change. \
         Ask an admin to remove you from the program file, then type `/pulse forget-me` again. Nothing was erased.",
        programs
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

pub const ERASED: &str = ":wastebasket: Done. pulseloop no longer holds anything that names you, and you will get no more pulses. \
    Your anonymous answers and the numbers of your other answers stay in the program's totals, linked to nobody.";

/// The confirmed click: erases, then replaces the question with the outcome (through the
/// click's `response_url`, not stored).
pub async fn on_forget_me_confirm(state: &Pulses, ba: &BlockActions) -> ServiceResult<()> {
    let user = &ba.user.id;
    let now = state.clock.now();
    let marks = tombstones(state, user.as_str());
    let mut tx = state.store.begin().await?;
    // Reply mailboxes that reach them: only the relay's keys can tell.
    let mut mailboxes = Vec::new();
    if let Some(keys) = &state.relay {
        for handle in tx.reply_handles().await? {
            let Ok(parsed) = handle.parse::<ReplyHandle>() else {
                continue;
            };
            let lookup = keys.lookup(&parsed);
            let Some(sealed) = tx.sealed_mailbox(&lookup).await? else {
                continue;
            };
            if keys.open(&parsed, &sealed).as_deref() == Some(user.as_str()) {
                mailboxes.push((handle, lookup));
            }
        }
    }
    let mut placeholder = || {
        format!(
            "erased-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        )
    };
    let (mark, keyed) = &marks[0];
    let outcome = tx
        .erase_member(user, &mailboxes, (mark, *keyed), &mut placeholder, now)
        .await?;
    let text = match &outcome {
        ErasureOutcome::Erased(report) => {
            tx.commit().await?;
            if !state.store.truncate_wal().await? {
                tracing::warn!("the WAL could not be truncated after an erasure (readers active)");
            }
            if !report.residue.is_empty() {
                tracing::error!(actor = ERASED_ACTOR, columns = ?report.residue,
                    "an erasure left columns naming the member; an operator must look");
            }
            tracing::info!(
                event = "member_erased",
                actor = ERASED_ACTOR,
                "a member erased their data"
            );
            ERASED.to_string()
        }
        ErasureOutcome::NamedInConfiguration(programs) => {
            audit_named_refusal(&mut tx, now, user, programs).await?;
            tx.commit().await?;
            named_in_configuration(programs)
        }
    };
    if let Some(url) = ba.response_url.as_deref() {
        let body = json!({ "replace_original": true, "text": text });
        if let Err(e) = state.slack.respond(url, &body).await {
            tracing::warn!(error = %e, "could not confirm the erasure in place");
        }
    }
    Ok(())
}
