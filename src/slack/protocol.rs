//! The strings pulseloop puts into Slack and reads back: block ids, action ids, modal input
//! ids, a modal's `private_metadata`, and the keys of outbox rows and posted messages.
//!
//! Each string has one type here with `Display` (what goes out) and `FromStr` (what comes
//! back), so the format lives in one place. Ids are checked against Slack's 255-character
//! limit when they are made: an id over it is an error, never cut (a cut id would not parse).
//! The formats are the ones DMs already in Slack carry, so they must not change.

use std::fmt;
use std::str::FromStr;

use slack_facts::block_kit::{MAX_ID, PRIVATE_METADATA_MAX};

use crate::domain::ids::DeliveryId;
use crate::storage::outbox::{NewOutboxMessage, OutboxKind};

/// Why a protocol string could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("{what} would be {len} characters; Slack allows {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("'{key}' cannot be a question key in a {what}")]
    BadKey { what: &'static str, key: String },
    #[error("'{text}' is not a {what}")]
    Malformed { what: &'static str, text: String },
}

fn malformed(what: &'static str, text: &str) -> ProtocolError {
    ProtocolError::Malformed {
        what,
        text: text.to_string(),
    }
}

fn within(what: &'static str, text: &str, max: usize) -> Result<(), ProtocolError> {
    let len = text.chars().count();
    if len > max {
        return Err(ProtocolError::TooLong { what, len, max });
    }
    Ok(())
}

/// A question key as it travels inside an id: non-empty and without ':' (the separator).
fn check_key(what: &'static str, key: &str) -> Result<(), ProtocolError> {
    if key.is_empty() || key.contains(':') {
        return Err(ProtocolError::BadKey {
            what,
            key: key.to_string(),
        });
    }
    Ok(())
}

fn parse_number(what: &'static str, text: &str, n: &str) -> Result<i64, ProtocolError> {
    // Only plain digits: "+4" or " 4" would parse as a number but would not round-trip.
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(what, text));
    }
    n.parse().map_err(|_| malformed(what, text))
}

fn parse_delivery(what: &'static str, text: &str, id: &str) -> Result<DeliveryId, ProtocolError> {
    id.parse().map_err(|_| malformed(what, text))
}

/// What a DM block of a delivery holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockPart {
    /// A question answered inline.
    Question(String),
    /// The "Answer all" button of a longer survey.
    All,
    /// The "Change answer" button after an answer.
    Change,
}

impl BlockPart {
    /// The words that name the non-question parts; a question key may not be one of them
    /// (`check-config` refuses such keys).
    pub const RESERVED: [&'static str; 2] = ["all", "change"];
}

/// `pulse:{delivery}:{question key | all | change}`: the block_id of a DM's actions block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulseBlockId {
    delivery: DeliveryId,
    part: BlockPart,
}

impl PulseBlockId {
    const WHAT: &'static str = "pulse block_id";

    pub fn new(delivery: DeliveryId, part: BlockPart) -> Result<Self, ProtocolError> {
        if let BlockPart::Question(key) = &part {
            check_key(Self::WHAT, key)?;
            if BlockPart::RESERVED.contains(&key.as_str()) {
                return Err(ProtocolError::BadKey {
                    what: Self::WHAT,
                    key: key.clone(),
                });
            }
        }
        let id = Self { delivery, part };
        within(Self::WHAT, &id.to_string(), MAX_ID)?;
        Ok(id)
    }

    pub fn question(delivery: DeliveryId, key: &str) -> Result<Self, ProtocolError> {
        Self::new(delivery, BlockPart::Question(key.to_string()))
    }

    pub fn delivery(&self) -> DeliveryId {
        self.delivery
    }

    pub fn part(&self) -> &BlockPart {
        &self.part
    }
}

impl fmt::Display for PulseBlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let part = match &self.part {
            BlockPart::Question(key) => key.as_str(),
            BlockPart::All => "all",
            BlockPart::Change => "change",
        };
        write!(f, "pulse:{}:{part}", self.delivery)
    }
}

impl FromStr for PulseBlockId {
    type Err = ProtocolError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let rest = text
            .strip_prefix("pulse:")
            .ok_or_else(|| malformed(Self::WHAT, text))?;
        let (id, part) = rest
            .split_once(':')
            .ok_or_else(|| malformed(Self::WHAT, text))?;
        let delivery = parse_delivery(Self::WHAT, text, id)?;
        let part = match part {
            "all" => BlockPart::All,
            "change" => BlockPart::Change,
            key => BlockPart::Question(key.to_string()),
        };
        Self::new(delivery, part)
    }
}

/// The action_id of an answer element: `answer:{value}` on a button (each button of a block
/// needs an id of its own), plain `answer` on a menu (the value is the selected option).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerActionId {
    value: Option<String>,
}

impl AnswerActionId {
    const WHAT: &'static str = "answer action_id";

    pub fn button(value: &str) -> Result<Self, ProtocolError> {
        let id = Self {
            value: Some(value.to_string()),
        };
        within(Self::WHAT, &id.to_string(), MAX_ID)?;
        Ok(id)
    }

    pub fn menu() -> Self {
        Self { value: None }
    }

    /// The value a button carries in its id (`None` for a menu).
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }
}

impl fmt::Display for AnswerActionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "answer:{v}"),
            None => f.write_str("answer"),
        }
    }
}

impl FromStr for AnswerActionId {
    type Err = ProtocolError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "answer" {
            return Ok(Self::menu());
        }
        let value = text
            .strip_prefix("answer:")
            .ok_or_else(|| malformed(Self::WHAT, text))?;
        Self::button(value)
    }
}

/// The block_id of a modal input: `q:{key}` for a question, `consent:{key}` for the "who may
/// see this win" choice under a win question, `reply:{key}` for "the owners may reply" under
/// a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModalInputId {
    Question(String),
    Consent(String),
    AllowReply(String),
}

impl ModalInputId {
    const WHAT: &'static str = "modal input block_id";

    pub fn question(key: &str) -> Result<Self, ProtocolError> {
        Self::checked(Self::Question(key.to_string()))
    }

    pub fn consent(key: &str) -> Result<Self, ProtocolError> {
        Self::checked(Self::Consent(key.to_string()))
    }

    pub fn allow_reply(key: &str) -> Result<Self, ProtocolError> {
        Self::checked(Self::AllowReply(key.to_string()))
    }

    fn checked(id: Self) -> Result<Self, ProtocolError> {
        let (ModalInputId::Question(key)
        | ModalInputId::Consent(key)
        | ModalInputId::AllowReply(key)) = &id;
        check_key(Self::WHAT, key)?;
        within(Self::WHAT, &id.to_string(), MAX_ID)?;
        Ok(id)
    }
}

impl fmt::Display for ModalInputId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModalInputId::Question(key) => write!(f, "q:{key}"),
            ModalInputId::Consent(key) => write!(f, "consent:{key}"),
            ModalInputId::AllowReply(key) => write!(f, "reply:{key}"),
        }
    }
}

impl FromStr for ModalInputId {
    type Err = ProtocolError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(key) = text.strip_prefix("q:") {
            Self::question(key)
        } else if let Some(key) = text.strip_prefix("consent:") {
            Self::consent(key)
        } else if let Some(key) = text.strip_prefix("reply:") {
            Self::allow_reply(key)
        } else {
            Err(malformed(Self::WHAT, text))
        }
    }
}

/// The survey modal's `private_metadata`: the delivery it answers, as JSON
/// (`{"delivery":42}`), so fields can be added without breaking open modals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModalMetadata {
    pub delivery: DeliveryId,
}

impl ModalMetadata {
    const WHAT: &'static str = "modal private_metadata";
}

impl fmt::Display for ModalMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&json)
    }
}

impl FromStr for ModalMetadata {
    type Err = ProtocolError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        within(Self::WHAT, text, PRIVATE_METADATA_MAX)?;
        serde_json::from_str(text).map_err(|_| malformed(Self::WHAT, text))
    }
}

/// The action_ids of the App Home tab's buttons (and the owner's "Preview digest").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HomeAction {
    /// `home_pause`: pause every pulse until `/pulse resume` (or the Resume button).
    Pause,
    /// `home_resume`: start again, also after opting out.
    Resume,
    /// `home_optout`: opt out (Slack asks for confirmation first: the button carries a
    /// `confirm` dialog).
    OptOut,
    /// `digest_preview`: an owner asks for a preview of the program's digest; the value is
    /// the program id.
    PreviewDigest,
}

impl HomeAction {
    const WHAT: &'static str = "home action_id";
    pub const ALL: [HomeAction; 4] = [
        HomeAction::Pause,
        HomeAction::Resume,
        HomeAction::OptOut,
        HomeAction::PreviewDigest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HomeAction::Pause => "home_pause",
            HomeAction::Resume => "home_resume",
            HomeAction::OptOut => "home_optout",
            HomeAction::PreviewDigest => "digest_preview",
        }
    }
}

impl fmt::Display for HomeAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HomeAction {
    type Err = ProtocolError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == text)
            .ok_or_else(|| malformed(Self::WHAT, text))
    }
}

/// A posted message that later rows update or reply to: `delivery:{id}` is a delivery's DM.
/// Stored as the outbox's `message_key`/`target_key` and in `slack_messages`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKey {
    Delivery(DeliveryId),
}

impl fmt::Display for MessageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageKey::Delivery(id) => write!(f, "delivery:{id}"),
        }
    }
}

impl FromStr for MessageKey {
    type Err = ProtocolError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const WHAT: &str = "message key";
        let id = text
            .strip_prefix("delivery:")
            .ok_or_else(|| malformed(WHAT, text))?;
        Ok(MessageKey::Delivery(parse_delivery(WHAT, text, id)?))
    }
}

/// The dedupe key of an outbox row about a delivery's DM. It names the write and, for
/// updates, a revision number: never an answer (issue 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxKey {
    /// `delivery:{id}:post`: the DM itself.
    Pulse(DeliveryId),
    /// `delivery:{id}:remind`: the reminder in its thread.
    Reminder(DeliveryId),
    /// `delivery:{id}:answer:{revision}`: the DM redrawn after an answer.
    AnswerUpdate { delivery: DeliveryId, revision: i64 },
    /// `delivery:{id}:closed`: the DM redrawn when its window closed.
    ClosedUpdate(DeliveryId),
    /// `delivery:{id}:late:{action_ts}`: the ephemeral "this pulse closed" for a late click.
    LateNotice {
        delivery: DeliveryId,
        action_ts: String,
    },
    /// `delivery:{id}:typed:{message_ts}`: the reply to a number typed in the bot's DM while
    /// this delivery was open. It says what was taken (or why not), so it is an answer update
    /// by kind: the seal deletes it, whatever its status.
    TypedReply {
        delivery: DeliveryId,
        message_ts: String,
    },
}

impl OutboxKey {
    const WHAT: &'static str = "outbox key";

    pub fn delivery(&self) -> DeliveryId {
        match self {
            OutboxKey::Pulse(d)
            | OutboxKey::Reminder(d)
            | OutboxKey::ClosedUpdate(d)
            | OutboxKey::AnswerUpdate { delivery: d, .. }
            | OutboxKey::LateNotice { delivery: d, .. }
            | OutboxKey::TypedReply { delivery: d, .. } => *d,
        }
    }

    /// The kind stored beside the key, which storage matches instead of the key's text.
    pub fn kind(&self) -> OutboxKind {
        match self {
            OutboxKey::Pulse(_) => OutboxKind::Pulse,
            OutboxKey::Reminder(_) => OutboxKind::Reminder,
            OutboxKey::AnswerUpdate { .. } | OutboxKey::TypedReply { .. } => {
                OutboxKind::AnswerUpdate
            }
            OutboxKey::ClosedUpdate(_) => OutboxKind::ClosedUpdate,
            OutboxKey::LateNotice { .. } => OutboxKind::LateNotice,
        }
    }

    /// An outbox row for this key: its dedupe key, kind and delivery set in one place.
    pub fn message(&self, method: &str, payload: serde_json::Value) -> NewOutboxMessage {
        let mut msg = NewOutboxMessage::new(self.to_string(), method, payload);
        msg.kind = self.kind();
        msg.delivery_id = Some(self.delivery());
        msg
    }
}

impl fmt::Display for OutboxKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.delivery();
        match self {
            OutboxKey::Pulse(_) => write!(f, "delivery:{d}:post"),
            OutboxKey::Reminder(_) => write!(f, "delivery:{d}:remind"),
            OutboxKey::AnswerUpdate { revision, .. } => write!(f, "delivery:{d}:answer:{revision}"),
            OutboxKey::ClosedUpdate(_) => write!(f, "delivery:{d}:closed"),
            OutboxKey::LateNotice { action_ts, .. } => write!(f, "delivery:{d}:late:{action_ts}"),
            OutboxKey::TypedReply { message_ts, .. } => {
                write!(f, "delivery:{d}:typed:{message_ts}")
            }
        }
    }
}

impl FromStr for OutboxKey {
    type Err = ProtocolError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || malformed(Self::WHAT, text);
        let rest = text.strip_prefix("delivery:").ok_or_else(bad)?;
        let (id, what) = rest.split_once(':').ok_or_else(bad)?;
        let d = parse_delivery(Self::WHAT, text, id)?;
        let key = match what.split_once(':') {
            None if what == "post" => OutboxKey::Pulse(d),
            None if what == "remind" => OutboxKey::Reminder(d),
            None if what == "closed" => OutboxKey::ClosedUpdate(d),
            Some(("answer", rev)) => OutboxKey::AnswerUpdate {
                delivery: d,
                revision: parse_number(Self::WHAT, text, rev)?,
            },
            Some(("late", ts)) if !ts.is_empty() => OutboxKey::LateNotice {
                delivery: d,
                action_ts: ts.to_string(),
            },
            Some(("typed", ts)) if !ts.is_empty() => OutboxKey::TypedReply {
                delivery: d,
                message_ts: ts.to_string(),
            },
            _ => return Err(bad()),
        };
        Ok(key)
    }
}

/// The key that ties a win to the answer it came from while its round is open
/// (`delivery:{id}:{question key}`); sealing an anonymous round blanks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinAnswerKey {
    pub delivery: DeliveryId,
    pub question: String,
}

impl fmt::Display for WinAnswerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "delivery:{}:{}", self.delivery, self.question)
    }
}

impl FromStr for WinAnswerKey {
    type Err = ProtocolError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const WHAT: &str = "win answer key";
        let rest = text
            .strip_prefix("delivery:")
            .ok_or_else(|| malformed(WHAT, text))?;
        let (id, key) = rest.split_once(':').ok_or_else(|| malformed(WHAT, text))?;
        check_key(WHAT, key)?;
        Ok(WinAnswerKey {
            delivery: parse_delivery(WHAT, text, id)?,
            question: key.to_string(),
        })
    }
}

/// A message as pulseloop renders it: the notification text and its Block Kit blocks (none
/// for a plain-text message such as the reminder).
#[derive(Debug, Clone, PartialEq)]
pub struct SlackMessage {
    pub text: String,
    pub blocks: Vec<serde_json::Value>,
}

impl SlackMessage {
    /// The arguments of `chat.postMessage` / `chat.update` for this message. `channel` is the
    /// member for a new DM; updates and thread replies get theirs from the message they follow.
    pub fn payload(&self, channel: Option<&str>) -> serde_json::Value {
        let mut args = serde_json::Map::new();
        if let Some(channel) = channel {
            args.insert("channel".into(), channel.into());
        }
        args.insert("text".into(), self.text.as_str().into());
        if !self.blocks.is_empty() {
            args.insert("blocks".into(), self.blocks.clone().into());
        }
        serde_json::Value::Object(args)
    }

    /// The arguments of `chat.postEphemeral`: the text, seen only by `user` in `channel`.
    pub fn ephemeral_payload(&self, channel: &str, user: &str) -> serde_json::Value {
        let mut args = self.payload(Some(channel));
        args["user"] = user.into();
        args
    }
}

/// A modal as `views.open` takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModalView {
    pub callback_id: &'static str,
    pub private_metadata: ModalMetadata,
    /// Block Kit `plain_text` objects.
    pub title: serde_json::Value,
    pub submit: serde_json::Value,
    pub close: serde_json::Value,
    pub blocks: Vec<serde_json::Value>,
}

impl ModalView {
    /// The `view` argument of `views.open`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "modal",
            "callback_id": self.callback_id,
            "private_metadata": self.private_metadata.to_string(),
            "title": self.title,
            "submit": self.submit,
            "close": self.close,
            "blocks": self.blocks,
        })
    }
}

/// A random token: 32 lowercase hex digits (128 bits), as the win consent buttons and the
/// comment reply handles carry it. Checked on the way back in, so no other text reaches SQL.
fn check_token(what: &'static str, text: &str, token: &str) -> Result<(), ProtocolError> {
    if token.len() == 32
        && token
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        Ok(())
    } else {
        Err(malformed(what, text))
    }
}

/// A new random token for [`WinConsentBlockId`] or [`ReplyHandle`].
pub fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The callback_id of the message shortcut "Celebrate as a small win".
pub const CELEBRATE_WIN_CALLBACK: &str = "celebrate_win";

/// What the author of a win answers to "how may we share it?": the `action_id` of each
/// button is `win_consent:{named|anonymous|private|decline}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WinConsentAction {
    Share(crate::domain::state::Consent),
    /// Only offered when someone else picked the author's message (the shortcut).
    Decline,
}

impl fmt::Display for WinConsentAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WinConsentAction::Share(c) => write!(f, "win_consent:{}", c.as_str()),
            WinConsentAction::Decline => f.write_str("win_consent:decline"),
        }
    }
}

impl FromStr for WinConsentAction {
    type Err = ProtocolError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const WHAT: &str = "win consent action_id";
        match text.strip_prefix("win_consent:") {
            Some("decline") => Ok(WinConsentAction::Decline),
            Some(c) => c
                .parse()
                .map(WinConsentAction::Share)
                .map_err(|_| malformed(WHAT, text)),
            None => Err(malformed(WHAT, text)),
        }
    }
}

/// `win:{token}`: the block_id of the consent buttons; the token names the waiting request
/// (`win_requests`), nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinConsentBlockId {
    pub token: String,
}

impl fmt::Display for WinConsentBlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "win:{}", self.token)
    }
}

impl FromStr for WinConsentBlockId {
    type Err = ProtocolError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const WHAT: &str = "win consent block_id";
        let token = text
            .strip_prefix("win:")
            .ok_or_else(|| malformed(WHAT, text))?;
        check_token(WHAT, text, token)?;
        Ok(Self {
            token: token.to_string(),
        })
    }
}

/// The action_id of the digest's "Reply" button under an anonymous comment; its `value` is
/// the comment's [`ReplyHandle`].
pub const ACTION_REPLY_TO_COMMENT: &str = "reply_to_comment";
/// The callback_id of the reply modal.
pub const REPLY_MODAL_CALLBACK: &str = "reply_to_comment";
/// The block_id of the reply modal's text input.
pub const REPLY_INPUT_BLOCK: &str = "reply";

/// The opaque handle of a comment whose author allowed replies: 32 hex digits, random. It is
/// stored on the comment's response row and travels in the digest's button; it names no
/// person (docs/anonymity.md, "Replies to anonymous comments").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ReplyHandle(String);

impl ReplyHandle {
    pub fn new() -> Self {
        Self(new_token())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ReplyHandle {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ReplyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ReplyHandle {
    type Err = ProtocolError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        check_token("comment reply handle", text, text)?;
        Ok(Self(text.to_string()))
    }
}

impl TryFrom<String> for ReplyHandle {
    type Error = ProtocolError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<ReplyHandle> for String {
    fn from(h: ReplyHandle) -> String {
        h.0
    }
}

/// The "Reply" button the digest puts beside an anonymous comment whose author allowed
/// replies (`Store::reply_handle_of_response` gives the handle): an accessory or an actions
/// element. It carries only the handle.
pub fn reply_button(handle: &ReplyHandle) -> serde_json::Value {
    serde_json::json!({
        "type": "button",
        "action_id": ACTION_REPLY_TO_COMMENT,
        "value": handle.as_str(),
        "text": { "type": "plain_text", "text": "Reply" },
    })
}

/// The reply modal's `private_metadata`: `{"handle":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplyModalMetadata {
    pub handle: ReplyHandle,
}

impl fmt::Display for ReplyModalMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&json)
    }
}

impl FromStr for ReplyModalMetadata {
    type Err = ProtocolError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const WHAT: &str = "reply modal private_metadata";
        within(WHAT, text, PRIVATE_METADATA_MAX)?;
        serde_json::from_str(text).map_err(|_| malformed(WHAT, text))
    }
}

/// Dedupe keys of the outbox rows about wins, actions and replies. None names a member of an
/// anonymous win: a shoutout is keyed by the win's row id and the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoopKey {
    /// `win:{id}:shoutout:{channel}`
    Shoutout { win: i64, channel: String },
    /// `winask:{token}`: the DM asking a message's author for consent (the shortcut).
    ConsentAsk { token: String },
    /// `action:{id}:member:{member}`: the "you said, we did" DM.
    ActionDm { action: i64, member: i64 },
    /// `relay:{token}`: a reply relayed to a comment's author (a fresh random token).
    Relay { token: String },
}

impl fmt::Display for LoopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoopKey::Shoutout { win, channel } => write!(f, "win:{win}:shoutout:{channel}"),
            LoopKey::ConsentAsk { token } => write!(f, "winask:{token}"),
            LoopKey::ActionDm { action, member } => write!(f, "action:{action}:member:{member}"),
            LoopKey::Relay { token } => write!(f, "relay:{token}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys a config may hold and keys no config holds but a protocol type must survive.
    const AWKWARD_KEYS: &[&str] = &[
        "k",
        "coaching_value",
        "a-b",
        "_",
        "-",
        "42",
        "0",
        "q",
        "consent",
        "pulse",
        "answer",
        "post",
        "all_of_it",
        "changed",
        "ALL",
        "ünïcødé",
        "emoji_🎉",
        "with space",
        "tab\there",
        "new\nline",
        "percent%s",
        "{braces}",
        "quote\"s",
    ];

    fn long_key(n: usize) -> String {
        "x".repeat(n)
    }

    #[test]
    fn pulse_block_ids_round_trip() {
        for delivery in [0, 1, 42, i64::MAX].map(DeliveryId) {
            for key in AWKWARD_KEYS {
                let id = PulseBlockId::question(delivery, key).unwrap();
                let text = id.to_string();
                assert_eq!(text, format!("pulse:{delivery}:{key}"));
                assert_eq!(text.parse::<PulseBlockId>().unwrap(), id, "{text}");
            }
            for part in [BlockPart::All, BlockPart::Change] {
                let id = PulseBlockId::new(delivery, part).unwrap();
                assert_eq!(id.to_string().parse::<PulseBlockId>().unwrap(), id);
            }
        }
        assert_eq!(
            PulseBlockId::new(DeliveryId(7), BlockPart::All)
                .unwrap()
                .to_string(),
            "pulse:7:all"
        );
        assert_eq!(
            PulseBlockId::new(DeliveryId(7), BlockPart::Change)
                .unwrap()
                .to_string(),
            "pulse:7:change"
        );
    }

    #[test]
    fn pulse_block_ids_that_are_not_ours_do_not_parse() {
        for text in [
            "",
            "pulse:",
            "pulse:42",
            "pulse:42:",
            "pulse:x:y",
            "pulse:-1:y",
            "pulse:+1:y",
            "pulse: 1:y",
            "pulse::y",
            "pulse:99999999999999999999:y",
            "q:coaching_value",
            "Pulse:1:k",
        ] {
            assert!(text.parse::<PulseBlockId>().is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn question_keys_cannot_be_mistaken_for_other_parts() {
        for key in BlockPart::RESERVED {
            assert!(matches!(
                PulseBlockId::question(DeliveryId(1), key),
                Err(ProtocolError::BadKey { .. })
            ));
        }
        assert!(PulseBlockId::question(DeliveryId(1), "").is_err());
        assert!(PulseBlockId::question(DeliveryId(1), "a:b").is_err());
        // check-config refuses the same words.
        for key in BlockPart::RESERVED {
            assert!(crate::config::program::RESERVED_QUESTION_KEYS.contains(&key));
        }
    }

    #[test]
    fn ids_over_slacks_limit_are_refused_not_cut() {
        let prefix = "pulse:1:".len();
        let fits = long_key(MAX_ID - prefix);
        let id = PulseBlockId::question(DeliveryId(1), &fits).unwrap();
        assert_eq!(id.to_string().chars().count(), MAX_ID);
        assert_eq!(id.to_string().parse::<PulseBlockId>().unwrap(), id);
        let over = long_key(MAX_ID - prefix + 1);
        assert_eq!(
            PulseBlockId::question(DeliveryId(1), &over),
            Err(ProtocolError::TooLong {
                what: "pulse block_id",
                len: MAX_ID + 1,
                max: MAX_ID
            })
        );
        assert!(format!("pulse:1:{over}").parse::<PulseBlockId>().is_err());
        // Characters, not bytes, as Slack counts them.
        let wide = "é".repeat(MAX_ID - prefix);
        assert!(PulseBlockId::question(DeliveryId(1), &wide).is_ok());

        assert!(ModalInputId::question(&long_key(MAX_ID - 2)).is_ok());
        assert!(ModalInputId::question(&long_key(MAX_ID - 1)).is_err());
        assert!(ModalInputId::consent(&long_key(MAX_ID - 8)).is_ok());
        assert!(ModalInputId::consent(&long_key(MAX_ID - 7)).is_err());
        assert!(AnswerActionId::button(&long_key(MAX_ID - 7)).is_ok());
        assert!(AnswerActionId::button(&long_key(MAX_ID - 6)).is_err());
        for n in 1..=MAX_ID + 2 {
            let key = long_key(n);
            // Every id is either refused or whole: never over the limit, never cut.
            let made = [
                PulseBlockId::question(DeliveryId(3), &key).map(|i| i.to_string()),
                ModalInputId::question(&key).map(|i| i.to_string()),
                ModalInputId::consent(&key).map(|i| i.to_string()),
                AnswerActionId::button(&key).map(|i| i.to_string()),
            ];
            let fits = made.iter().filter(|m| m.is_ok()).count();
            for text in made.into_iter().flatten() {
                assert!(text.chars().count() <= MAX_ID, "{n}: {text}");
                assert!(text.ends_with(&key), "{n}: cut");
            }
            // The longest prefix is "consent:" (8), the shortest "q:" (2).
            let expected = if n <= MAX_ID - 8 {
                4
            } else if n > MAX_ID - 2 {
                0
            } else {
                fits
            };
            assert_eq!(fits, expected, "{n}");
        }
    }

    #[test]
    fn answer_action_ids_round_trip() {
        assert_eq!(AnswerActionId::menu().to_string(), "answer");
        assert_eq!("answer".parse::<AnswerActionId>().unwrap().value(), None);
        for value in ["0", "10", "yes", "no", "a:b", "", "ünï"]
            .into_iter()
            .chain(AWKWARD_KEYS.iter().copied())
        {
            let id = AnswerActionId::button(value).unwrap();
            assert_eq!(id.to_string(), format!("answer:{value}"));
            let back: AnswerActionId = id.to_string().parse().unwrap();
            assert_eq!(back.value(), Some(value));
        }
        for text in ["", "answers", "answer_1", "open_modal", "Answer:1"] {
            assert!(text.parse::<AnswerActionId>().is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn modal_input_ids_round_trip() {
        for key in AWKWARD_KEYS {
            for id in [
                ModalInputId::question(key).unwrap(),
                ModalInputId::consent(key).unwrap(),
            ] {
                assert_eq!(id.to_string().parse::<ModalInputId>().unwrap(), id);
            }
        }
        assert_eq!(ModalInputId::question("k").unwrap().to_string(), "q:k");
        assert_eq!(ModalInputId::consent("k").unwrap().to_string(), "consent:k");
        for text in ["", "q:", "consent:", "k", "pulse:1:k", "q:a:b"] {
            assert!(text.parse::<ModalInputId>().is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn modal_metadata_round_trips_as_json() {
        for delivery in [0, 1, 42, i64::MAX].map(DeliveryId) {
            let m = ModalMetadata { delivery };
            assert_eq!(m.to_string(), format!("{{\"delivery\":{delivery}}}"));
            assert_eq!(m.to_string().parse::<ModalMetadata>().unwrap(), m);
        }
        assert_eq!(
            r#"{ "delivery": 9, "later": true }"#.parse::<ModalMetadata>().unwrap(),
            ModalMetadata {
                delivery: DeliveryId(9)
            }
        );
        for text in ["", "{}", "42", r#"{"delivery":"9"}"#, "not json"] {
            assert!(text.parse::<ModalMetadata>().is_err(), "{text:?} parsed");
        }
        let huge = format!(
            "{{\"delivery\":1,\"pad\":\"{}\"}}",
            "x".repeat(PRIVATE_METADATA_MAX)
        );
        assert!(matches!(
            huge.parse::<ModalMetadata>(),
            Err(ProtocolError::TooLong { .. })
        ));
    }

    #[test]
    fn message_keys_round_trip() {
        for id in [0, 1, 42, i64::MAX].map(DeliveryId) {
            let key = MessageKey::Delivery(id);
            assert_eq!(key.to_string(), format!("delivery:{id}"));
            assert_eq!(key.to_string().parse::<MessageKey>().unwrap(), key);
        }
        for text in ["", "delivery:", "delivery:x", "delivery:1:post", "k-orig"] {
            assert!(text.parse::<MessageKey>().is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn outbox_keys_round_trip_and_name_their_kind() {
        for d in [0, 1, 42, i64::MAX].map(DeliveryId) {
            let keys = [
                (
                    OutboxKey::Pulse(d),
                    format!("delivery:{d}:post"),
                    OutboxKind::Pulse,
                ),
                (
                    OutboxKey::Reminder(d),
                    format!("delivery:{d}:remind"),
                    OutboxKind::Reminder,
                ),
                (
                    OutboxKey::AnswerUpdate {
                        delivery: d,
                        revision: 3,
                    },
                    format!("delivery:{d}:answer:3"),
                    OutboxKind::AnswerUpdate,
                ),
                (
                    OutboxKey::ClosedUpdate(d),
                    format!("delivery:{d}:closed"),
                    OutboxKind::ClosedUpdate,
                ),
                (
                    OutboxKey::LateNotice {
                        delivery: d,
                        action_ts: "1700000000.123456".into(),
                    },
                    format!("delivery:{d}:late:1700000000.123456"),
                    OutboxKind::LateNotice,
                ),
                (
                    OutboxKey::TypedReply {
                        delivery: d,
                        message_ts: "1700000000.000200".into(),
                    },
                    format!("delivery:{d}:typed:1700000000.000200"),
                    OutboxKind::AnswerUpdate,
                ),
            ];
            for (key, text, kind) in keys {
                assert_eq!(key.to_string(), text);
                assert_eq!(text.parse::<OutboxKey>().unwrap(), key);
                assert_eq!(key.kind(), kind);
                assert_eq!(key.delivery(), d);
                let msg = key.message("chat.update", serde_json::json!({}));
                assert_eq!(msg.dedupe_key, text);
                assert_eq!(msg.kind, kind);
                assert_eq!(msg.delivery_id, Some(d));
            }
        }
        for text in [
            "",
            "delivery:1",
            "delivery:1:",
            "delivery:1:answer:",
            "delivery:1:answer:x",
            "delivery:1:late:",
            "delivery:1:reminder",
            "delivery:x:post",
            "win:abc",
            "k-upd",
        ] {
            assert!(text.parse::<OutboxKey>().is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn a_message_becomes_its_payload_in_one_place() {
        use serde_json::json;
        let m = SlackMessage {
            text: "hi".into(),
            blocks: vec![json!({ "type": "divider" })],
        };
        assert_eq!(
            m.payload(Some("U1")),
            json!({ "channel": "U1", "text": "hi", "blocks": [{ "type": "divider" }] })
        );
        assert_eq!(
            m.payload(None),
            json!({ "text": "hi", "blocks": [{ "type": "divider" }] })
        );
        let plain = SlackMessage {
            text: "ping".into(),
            blocks: Vec::new(),
        };
        assert_eq!(plain.payload(None), json!({ "text": "ping" }));
        assert_eq!(
            plain.ephemeral_payload("D1", "U1"),
            json!({ "channel": "D1", "user": "U1", "text": "ping" })
        );
    }

    #[test]
    fn home_actions_round_trip() {
        for a in HomeAction::ALL {
            assert_eq!(a.to_string().parse::<HomeAction>().unwrap(), a);
        }
        assert_eq!(HomeAction::PreviewDigest.to_string(), "digest_preview");
        for text in ["", "home", "home_", "open_modal", "answer:1", "Home_pause"] {
            assert!(text.parse::<HomeAction>().is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn win_answer_keys_round_trip() {
        for key in AWKWARD_KEYS {
            let k = WinAnswerKey {
                delivery: DeliveryId(5),
                question: key.to_string(),
            };
            assert_eq!(k.to_string().parse::<WinAnswerKey>().unwrap(), k);
        }
        assert!("delivery:5:".parse::<WinAnswerKey>().is_err());
    }

    #[test]
    fn loop_ids_round_trip_and_refuse_other_text() {
        use crate::domain::state::Consent;
        for a in [
            WinConsentAction::Share(Consent::Named),
            WinConsentAction::Share(Consent::Anonymous),
            WinConsentAction::Share(Consent::Private),
            WinConsentAction::Decline,
        ] {
            assert_eq!(a.to_string().parse::<WinConsentAction>(), Ok(a));
        }
        assert!("win_consent:loud".parse::<WinConsentAction>().is_err());
        let token = new_token();
        let block = WinConsentBlockId {
            token: token.clone(),
        };
        assert_eq!(block.to_string().parse::<WinConsentBlockId>(), Ok(block));
        for bad in [
            "win:",
            "win:xyz",
            "win:' OR 1=1 --",
            &format!("win:{}", token.to_uppercase()),
        ] {
            assert!(bad.parse::<WinConsentBlockId>().is_err(), "{bad}");
        }
        let handle = ReplyHandle::new();
        let meta = ReplyModalMetadata {
            handle: handle.clone(),
        };
        assert_eq!(meta.to_string().parse::<ReplyModalMetadata>(), Ok(meta));
        assert!(r#"{"handle":"U0ALICE"}"#.parse::<ReplyModalMetadata>().is_err());
        assert_eq!(handle.as_str().parse::<ReplyHandle>(), Ok(handle));
    }
}
