//! Replies to anonymous comments (docs/anonymity.md, "Replies to anonymous comments").
//!
//! When a member leaves a comment and ticks "the program owner may reply", the answer
//! transaction gives the comment a random handle (`responses.reply_handle`) and writes a
//! mailbox row: `lookup = HMAC-SHA256(K_lookup, handle)` and `sealed = nonce ‖
//! AES-256-GCM(K_handle, author's Slack id padded to a fixed length)`, where `K_lookup` and
//! `K_handle = HMAC-SHA256(K_seal, handle)` come from the server secret
//! (`PULSELOOP_ENCRYPTION_KEY`), which is never stored in the database. The seal copies the
//! handle with the comment and keeps nothing else. A copy of the database therefore holds
//! comments with handles and mailboxes it can neither pair with them (the lookup is a keyed
//! hash) nor read (the recipient is encrypted). With the server secret the relay finds the
//! mailbox and the author, and sends the owner's reply straight to Slack: a stored outbox row
//! would name the recipient next to the reply's words.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::collections::BTreeMap;

use super::interactions::InteractionOutcome;
use super::{Pulses, ServiceResult};
use crate::domain::ids::{DeliveryId, RoundId};
use crate::domain::program::{QuestionKind, Survey};
use crate::slack::incoming::payloads::{BlockActions, ViewSubmission};
use crate::slack::protocol::{
    ModalInputId, ProtocolError, ReplyHandle, ReplyModalMetadata, REPLY_INPUT_BLOCK,
    REPLY_MODAL_CALLBACK,
};
use crate::storage::{StoreResult, StoreTx};

/// Recipients are padded to this many bytes before sealing, so every mailbox row has the
/// same length whoever it reaches (Slack ids are 9–11 characters; 32 leaves room).
const PADDED_RECIPIENT: usize = 32;
/// How long a comment can be replied to, counted from its round's opening: older mailboxes
/// are deleted (a reply to such a comment is refused like one whose author said no).
pub const MAILBOX_DAYS: i64 = 90;
/// The longest reply an owner may send.
pub const REPLY_MAX: usize = 2000;

/// The relay's keys, derived from the server secret.
#[derive(Clone)]
pub struct RelayKeys {
    lookup: hmac::Key,
    seal: hmac::Key,
}

impl RelayKeys {
    /// Keys from the server secret (`admin.encryption_key` / `PULSELOOP_ENCRYPTION_KEY`).
    pub fn from_secret(secret: &SecretString) -> Self {
        let derive = |label: &[u8]| {
            hmac::Key::new(
                hmac::HMAC_SHA256,
                &crate::config::keys::derive_key(secret, label),
            )
        };
        Self {
            lookup: derive(b"pulseloop reply relay: lookup"),
            seal: derive(b"pulseloop reply relay: seal"),
        }
    }

    /// A keyed hash of `data` for another use of the server secret (`label` separates the
    /// uses; a NUL keeps it apart from every reply handle): the forget-me tombstone.
    pub fn tag(&self, label: &str, data: &str) -> String {
        hex::encode(hmac::sign(
            &self.lookup,
            format!("{label}\0{data}").as_bytes(),
        ))
    }

    /// Where the mailbox of `handle` is stored.
    pub fn lookup(&self, handle: &ReplyHandle) -> String {
        hex::encode(hmac::sign(&self.lookup, handle.as_str().as_bytes()))
    }

    fn cipher(&self, handle: &ReplyHandle) -> Option<LessSafeKey> {
        let key = hmac::sign(&self.seal, handle.as_str().as_bytes());
        UnboundKey::new(&AES_256_GCM, key.as_ref())
            .ok()
            .map(LessSafeKey::new)
    }

    /// Seals `recipient` (a Slack user id) for the mailbox of `handle`.
    pub fn seal(&self, handle: &ReplyHandle, recipient: &str) -> Option<String> {
        if recipient.len() > PADDED_RECIPIENT {
            return None;
        }
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        let mut data = recipient.as_bytes().to_vec();
        data.resize(PADDED_RECIPIENT, b' ');
        let lookup = self.lookup(handle);
        self.cipher(handle)?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(lookup.as_bytes()),
                &mut data,
            )
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Some(hex::encode(out))
    }

    /// The recipient sealed in a mailbox of `handle`; `None` if it was not sealed for it.
    pub fn open(&self, handle: &ReplyHandle, sealed: &str) -> Option<String> {
        let bytes = hex::decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = rest.to_vec();
        let lookup = self.lookup(handle);
        let plain = self
            .cipher(handle)?
            .open_in_place(nonce, Aad::from(lookup.as_bytes()), &mut data)
            .ok()?;
        let text = std::str::from_utf8(plain).ok()?.trim_end();
        (!text.is_empty()).then(|| text.to_string())
    }
}

/// Inside the answer transaction: gives the comment `metric_key` of delivery `delivery` a
/// handle and a mailbox when its author allows replies, or takes them away when they no
/// longer do. Without relay keys (no server secret configured) replies cannot be offered and
/// `allow_reply` stays false.
pub async fn attach(
    tx: &mut StoreTx,
    keys: Option<&RelayKeys>,
    delivery: DeliveryId,
    round: RoundId,
    metric_key: &str,
    author: &str,
    allow: bool,
) -> StoreResult<()> {
    let existing = tx
        .reply_handle_of(delivery, metric_key)
        .await?
        .and_then(|h| h.parse::<ReplyHandle>().ok());
    match (allow, keys, existing) {
        (true, Some(_), Some(handle)) => {
            tx.set_reply_handle(delivery, metric_key, Some(handle.as_str()))
                .await
        }
        (true, Some(keys), None) => {
            let handle = ReplyHandle::new();
            let Some(sealed) = keys.seal(&handle, author) else {
                tracing::warn!("a comment's author could not be sealed for replies");
                return tx.set_reply_handle(delivery, metric_key, None).await;
            };
            // The round's opening time, as the sealed responses carry: never the answer's.
            let opened_at = tx.round_opened_at(round).await?;
            // Mailboxes are not kept forever: those of rounds long past go now.
            let days_ms = MAILBOX_DAYS * 24 * 3600 * 1000;
            tx.prune_mailboxes(opened_at - days_ms).await?;
            tx.put_mailbox(&keys.lookup(&handle), &sealed, opened_at)
                .await?;
            tx.set_reply_handle(delivery, metric_key, Some(handle.as_str()))
                .await
        }
        (_, keys, existing) => {
            if let (Some(keys), Some(handle)) = (keys, existing) {
                tx.delete_mailbox(&keys.lookup(&handle)).await?;
            }
            tx.set_reply_handle(delivery, metric_key, None).await
        }
    }
}

/// Under each comment question of the survey modal: "the program owners may reply", ticked
/// when the member allowed it before (`allowed`). Only offered when the relay can work.
pub fn add_reply_choices(
    blocks: &mut Vec<Value>,
    survey: &Survey,
    allowed: &[String],
) -> Result<(), ProtocolError> {
    let max = slack_facts::block_kit::MAX_VIEW_BLOCKS;
    for q in survey
        .questions
        .iter()
        .filter(|q| q.kind == QuestionKind::Text)
    {
        let question = ModalInputId::question(&q.key)?.to_string();
        let Some(at) = blocks.iter().position(|b| b["block_id"] == json!(question)) else {
            continue;
        };
        if blocks.len() >= max {
            break;
        }
        let option = json!({
            "text": { "type": "plain_text", "text": "A program owner may reply to my comment" },
            "description": { "type": "plain_text", "text": "Relayed to you by DM. They never learn who you are." },
            "value": ALLOW_REPLY_VALUE,
        });
        let mut element =
            json!({ "type": "checkboxes", "action_id": "value", "options": [option] });
        if allowed.contains(&q.key) {
            element["initial_options"] = json!([option]);
        }
        blocks.insert(
            at + 1,
            json!({
                "type": "input",
                "block_id": ModalInputId::allow_reply(&q.key)?.to_string(),
                "label": { "type": "plain_text", "text": "Replies" },
                "optional": true,
                "element": element,
            }),
        );
    }
    Ok(())
}

/// The value of the ticked "may reply" box.
pub const ALLOW_REPLY_VALUE: &str = "allow";

/// Why a reply cannot be relayed, in words for the owner.
fn refusal(reason: Refusal) -> &'static str {
    match reason {
        Refusal::NotAllowed => "The author of this comment did not allow replies (or no longer does), so your reply cannot be relayed. Nothing was sent.",
        Refusal::NotOwner => "Only the program's owners can reply to its comments.",
        Refusal::NoRelay => "Replies are switched off on this pulseloop (no encryption key is configured). Nothing was sent.",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    NotAllowed,
    NotOwner,
    NoRelay,
}

/// The comment behind `handle`, if `user` owns its program and its author accepts replies.
async fn check(
    state: &Pulses,
    handle: &ReplyHandle,
    user: &str,
) -> ServiceResult<Result<String, Refusal>> {
    let Some(comment) = state.store.comment_by_handle(handle.as_str()).await? else {
        return Ok(Err(Refusal::NotAllowed));
    };
    let Some(program) = state.catalog.program(&comment.program_id) else {
        return Ok(Err(Refusal::NotOwner));
    };
    if !program.owners.iter().any(|o| o == user) {
        return Ok(Err(Refusal::NotOwner));
    }
    if !comment.allow_reply {
        return Ok(Err(Refusal::NotAllowed));
    }
    if state.relay.is_none() {
        return Ok(Err(Refusal::NoRelay));
    }
    Ok(Ok(program.name.clone()))
}

/// The owner clicked "Reply" under a comment in the digest: the reply modal opens, or the
/// owner is told (privately, in the channel) why not.
pub async fn on_reply_button(
    state: &Pulses,
    ba: &BlockActions,
    value: Option<&str>,
) -> ServiceResult<()> {
    let Some(handle) = value.and_then(|v| v.parse::<ReplyHandle>().ok()) else {
        return Ok(());
    };
    match check(state, &handle, ba.user.id.as_ref()).await? {
        Ok(program) => {
            let Some(trigger) = ba.trigger_id.as_deref() else {
                return Ok(());
            };
            let view = reply_modal(&program, handle);
            if let Err(e) = state.slack.views_open(trigger, &view).await {
                tracing::warn!(error = %e, "could not open the reply modal");
            }
        }
        Err(reason) => {
            if let Some(url) = ba.response_url.as_deref() {
                let note = json!({ "response_type": "ephemeral", "replace_original": false, "text": refusal(reason) });
                if let Err(e) = state.slack.respond(url, &note).await {
                    tracing::warn!(error = %e, "could not tell the owner why a reply is refused");
                }
            }
        }
    }
    Ok(())
}

fn reply_modal(program: &str, handle: ReplyHandle) -> Value {
    json!({
        "type": "modal",
        "callback_id": REPLY_MODAL_CALLBACK,
        "private_metadata": ReplyModalMetadata { handle }.to_string(),
        "title": { "type": "plain_text", "text": "Reply to a comment" },
        "submit": { "type": "plain_text", "text": "Send reply" },
        "close": { "type": "plain_text", "text": "Cancel" },
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": format!(
                "Your reply goes by DM to whoever wrote this comment in *{}*. You will not learn who that is, and they see only that a program owner replied. Please do not quote the comment.",
                crate::pulse::wins::escape(program)) } },
            { "type": "input", "block_id": REPLY_INPUT_BLOCK,
              "label": { "type": "plain_text", "text": "Your reply" },
              "element": { "type": "plain_text_input", "action_id": "text", "multiline": true, "max_length": REPLY_MAX } }
        ]
    })
}

/// The owner sent the reply modal: the reply goes to the comment's author by DM.
pub async fn on_reply_submission(
    state: &Pulses,
    vs: &ViewSubmission,
) -> ServiceResult<InteractionOutcome> {
    let errors = |text: &str| {
        InteractionOutcome::ViewErrors(BTreeMap::from([(
            REPLY_INPUT_BLOCK.to_string(),
            text.to_string(),
        )]))
    };
    let Some(meta) = vs
        .view
        .private_metadata
        .as_deref()
        .and_then(|m| m.parse::<ReplyModalMetadata>().ok())
    else {
        return Ok(InteractionOutcome::Ack);
    };
    let reply = vs
        .view
        .state
        .as_ref()
        .and_then(|s| s.values.get(REPLY_INPUT_BLOCK))
        .and_then(|a| a.values().next())
        .and_then(|v| v.chosen_value())
        .map(str::trim)
        .unwrap_or("");
    if reply.is_empty() {
        return Ok(errors("Please write a reply."));
    }
    if reply.chars().count() > REPLY_MAX {
        return Ok(errors(&format!(
            "Please keep it to {REPLY_MAX} characters."
        )));
    }
    let program = match check(state, &meta.handle, vs.user.id.as_ref()).await? {
        Ok(program) => program,
        Err(reason) => return Ok(errors(refusal(reason))),
    };
    let Some(keys) = state.relay.as_ref() else {
        return Ok(errors(refusal(Refusal::NoRelay)));
    };
    let recipient = match state.store.mailbox(&keys.lookup(&meta.handle)).await? {
        Some(sealed) => keys.open(&meta.handle, &sealed),
        None => None,
    };
    let Some(recipient) = recipient else {
        return Ok(errors(refusal(Refusal::NotAllowed)));
    };
    let text = format!(
        "A program owner of *{}* replied to a comment you left (they do not know it was you):\n>{}",
        crate::pulse::wins::escape(&program),
        crate::pulse::wins::escape(reply).replace('\n', "\n>")
    );
    let args = json!({ "channel": recipient, "text": text });
    // Sent at once, not through the outbox: a stored row would name the recipient beside the
    // reply. A failure is shown to the owner, who can send again.
    let sent = tokio::time::timeout(
        std::time::Duration::from_millis(2500),
        state.slack.post_message(&args),
    )
    .await;
    match sent {
        Ok(Ok(_)) => {
            metrics::counter!("reply_relays_total", "outcome" => "sent").increment(1);
            Ok(InteractionOutcome::Ack)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "a reply could not be relayed");
            metrics::counter!("reply_relays_total", "outcome" => "failed").increment(1);
            Ok(errors(
                "Slack did not take the reply just now; please try again in a minute.",
            ))
        }
        Err(_) => {
            metrics::counter!("reply_relays_total", "outcome" => "timeout").increment(1);
            Ok(errors(
                "Slack is slow to answer; please check with a colleague before sending again.",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_recipient_opens_only_with_its_handle_and_the_server_secret() {
        let keys = RelayKeys::from_secret(&SecretString::from("server secret one"));
        let other = RelayKeys::from_secret(&SecretString::from("server secret two"));
        let handle = ReplyHandle::new();
        let sealed = keys.seal(&handle, "U0ALICE").unwrap();
        assert_eq!(keys.open(&handle, &sealed).as_deref(), Some("U0ALICE"));
        assert_eq!(keys.open(&ReplyHandle::new(), &sealed), None);
        assert_eq!(other.open(&handle, &sealed), None);
        // Same length whoever it reaches, and never the same twice.
        let bob = keys.seal(&handle, "U0BOBBY12345").unwrap();
        assert_eq!(sealed.len(), bob.len());
        assert_ne!(keys.seal(&handle, "U0ALICE").unwrap(), sealed);
        assert!(!sealed.contains(&hex::encode("U0ALICE")));
        assert_ne!(keys.lookup(&handle), other.lookup(&handle));
    }
}
