//! Typed Slack payloads: what arrives at /slack/events, /slack/interactions and
//! /slack/commands, parsed at the edge so the core never handles raw JSON maps.
//! Unknown fields are ignored (Slack adds fields); unknown `type`s parse to `Unknown`. A field
//! Slack may leave out is an `Option`, which serde reads as `None` when it is missing.

use serde::Deserialize;
use slack_facts::ids::{ChannelId, MessageTs, TeamId, UserId};
use std::collections::BTreeMap;

// ---------- Events API ----------

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventEnvelope {
    UrlVerification {
        challenge: String,
    },
    EventCallback {
        event_id: String,
        team_id: Option<TeamId>,
        event_time: Option<i64>,
        event: SlackEvent,
    },
    AppRateLimited {
        team_id: Option<TeamId>,
        minute_rate_limited: Option<i64>,
    },
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SlackEvent {
    AppHomeOpened {
        user: UserId,
        channel: Option<ChannelId>,
        tab: Option<String>,
        event_ts: Option<String>,
    },
    Message {
        user: Option<UserId>,
        text: Option<String>,
        channel: Option<ChannelId>,
        channel_type: Option<String>,
        bot_id: Option<String>,
        subtype: Option<String>,
        ts: Option<String>,
    },
    AppUninstalled {},
    TokensRevoked {
        #[serde(default)]
        tokens: RevokedTokens,
    },
    MemberJoinedChannel {
        user: UserId,
        channel: ChannelId,
    },
    /// A profile or status changed: how we learn that someone went on vacation.
    UserChange {
        user: crate::slack::outbound::client::SlackUser,
    },
    /// A user's status changed (vacation on or off): sent with the same user object.
    UserStatusChanged {
        user: crate::slack::outbound::client::SlackUser,
    },
    #[serde(other)]
    Other,
}

impl SlackEvent {
    pub fn type_name(&self) -> &'static str {
        match self {
            SlackEvent::AppHomeOpened { .. } => "app_home_opened",
            SlackEvent::Message { .. } => "message",
            SlackEvent::AppUninstalled {} => "app_uninstalled",
            SlackEvent::TokensRevoked { .. } => "tokens_revoked",
            SlackEvent::MemberJoinedChannel { .. } => "member_joined_channel",
            SlackEvent::UserChange { .. } => "user_change",
            SlackEvent::UserStatusChanged { .. } => "user_status_changed",
            SlackEvent::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RevokedTokens {
    #[serde(default)]
    pub oauth: Vec<String>,
    #[serde(default)]
    pub bot: Vec<String>,
}

// ---------- Interactivity ----------

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Interaction {
    BlockActions(BlockActions),
    ViewSubmission(ViewSubmission),
    ViewClosed(ViewClosed),
    Shortcut(Shortcut),
    MessageAction(MessageAction),
    #[serde(other)]
    Unknown,
}

/// What is read of an interaction payload before its body: the type, which picks the struct,
/// and the workspace (`team.id`, else `user.team_id`). Unknown fields are skipped without being
/// kept.
#[derive(Deserialize)]
struct InteractionHead {
    #[serde(rename = "type")]
    kind: Option<String>,
    team: Option<HeadTeam>,
    user: Option<HeadUser>,
}

#[derive(Deserialize)]
struct HeadTeam {
    id: Option<String>,
}

#[derive(Deserialize)]
struct HeadUser {
    team_id: Option<String>,
}

impl Interaction {
    /// Parses a payload (the form's `payload` field) into the interaction and its workspace.
    ///
    /// Same result as deserializing [`Interaction`] (a test holds them together), but cheaper:
    /// an internally tagged enum first copies the whole payload (with the message and all its
    /// blocks, which Slack sends back on every click) into a buffer of owned values to find
    /// its tag. Here one pass reads the tag and the workspace, skipping the rest, and a second
    /// reads the one struct, skipping what it does not keep.
    pub fn from_payload(payload: &str) -> serde_json::Result<(Interaction, Option<String>)> {
        let head: InteractionHead = serde_json::from_str(payload)?;
        let team = head
            .team
            .and_then(|t| t.id)
            .or_else(|| head.user.and_then(|u| u.team_id));
        let Some(kind) = head.kind else {
            return Err(serde::de::Error::missing_field("type"));
        };
        let interaction = match kind.as_str() {
            "block_actions" => Interaction::BlockActions(serde_json::from_str(payload)?),
            "view_submission" => Interaction::ViewSubmission(serde_json::from_str(payload)?),
            "view_closed" => Interaction::ViewClosed(serde_json::from_str(payload)?),
            "shortcut" => Interaction::Shortcut(serde_json::from_str(payload)?),
            "message_action" => Interaction::MessageAction(serde_json::from_str(payload)?),
            _ => Interaction::Unknown,
        };
        Ok((interaction, team))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct UserRef {
    pub id: UserId,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TeamRef {
    pub id: TeamId,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChannelRef {
    pub id: ChannelId,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MessageRef {
    pub ts: MessageTs,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BlockActions {
    pub user: UserRef,
    pub team: Option<TeamRef>,
    pub trigger_id: Option<String>,
    pub channel: Option<ChannelRef>,
    pub message: Option<MessageRef>,
    pub response_url: Option<String>,
    pub view: Option<View>,
    #[serde(default)]
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Action {
    pub action_id: String,
    pub block_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub value: Option<String>,
    pub selected_option: Option<SelectedOption>,
    pub action_ts: Option<String>,
}

impl Action {
    /// The chosen value whatever the element (button value or selected option).
    pub fn chosen_value(&self) -> Option<&str> {
        chosen_value(&self.value, &self.selected_option)
    }
}

/// An element's value: its own (a button's, a text input's) or its selected option's.
fn chosen_value<'a>(
    value: &'a Option<String>,
    option: &'a Option<SelectedOption>,
) -> Option<&'a str> {
    value
        .as_deref()
        .or(option.as_ref().map(|o| o.value.as_str()))
}

#[derive(Debug, Clone, Deserialize)]
pub struct SelectedOption {
    pub value: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct View {
    pub id: Option<String>,
    /// `modal` or `home` (a click on the App Home tab carries its view).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub callback_id: Option<String>,
    pub private_metadata: Option<String>,
    pub hash: Option<String>,
    pub state: Option<ViewState>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ViewState {
    /// block_id → action_id → value
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, InputValue>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InputValue {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub value: Option<String>,
    pub selected_option: Option<SelectedOption>,
    pub selected_options: Option<Vec<SelectedOption>>,
    /// `users_select` / `multi_users_select`.
    pub selected_user: Option<String>,
    pub selected_users: Option<Vec<String>>,
    /// `conversations_select`.
    pub selected_conversation: Option<String>,
}

impl InputValue {
    /// The chosen value whatever the element (text input value or selected option).
    pub fn chosen_value(&self) -> Option<&str> {
        chosen_value(&self.value, &self.selected_option)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ViewSubmission {
    pub user: UserRef,
    pub team: Option<TeamRef>,
    pub trigger_id: Option<String>,
    pub view: View,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ViewClosed {
    pub user: UserRef,
    pub view: View,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Shortcut {
    pub user: UserRef,
    pub callback_id: Option<String>,
    pub trigger_id: Option<String>,
}

/// A message shortcut (`message_action`): someone picked a message and chose one of our
/// shortcuts from its menu.
#[derive(Debug, Clone, Deserialize)]
pub struct MessageAction {
    pub user: UserRef,
    pub callback_id: Option<String>,
    pub trigger_id: Option<String>,
    pub response_url: Option<String>,
    pub channel: Option<ChannelRef>,
    pub message: Option<PickedMessage>,
}

/// The message a shortcut was used on.
#[derive(Debug, Clone, Deserialize)]
pub struct PickedMessage {
    /// Its author; absent on bot messages.
    pub user: Option<UserId>,
    pub text: Option<String>,
    pub ts: Option<MessageTs>,
    pub bot_id: Option<String>,
}

// ---------- Slash commands (form fields) ----------

#[derive(Debug, Clone, Deserialize)]
pub struct SlashCommand {
    pub command: String,
    #[serde(default)]
    pub text: String,
    pub user_id: UserId,
    pub team_id: Option<TeamId>,
    pub channel_id: Option<ChannelId>,
    pub response_url: Option<String>,
    pub trigger_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slack's own payloads, kept in the repository (tests/fixtures/slack/SOURCE.md).
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/slack");

    fn fixture(path: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}/{path}"))
            .unwrap_or_else(|e| panic!("fixture {FIXTURES}/{path}: {e}"))
    }

    #[test]
    fn optional_fields_slack_leaves_out_read_as_none() {
        let event: EventEnvelope = serde_json::from_str(
            r#"{"type":"event_callback","event_id":"Ev1","event":{"type":"app_home_opened","user":"U1"}}"#,
        )
        .unwrap();
        match event {
            EventEnvelope::EventCallback {
                team_id,
                event_time,
                ..
            } => assert_eq!((team_id, event_time), (None, None)),
            other => panic!("{other:?}"),
        }
        let action: Action = serde_json::from_str(r#"{"action_id":"answer:4"}"#).unwrap();
        assert_eq!(action.block_id, None);
        assert_eq!(action.chosen_value(), None);
        let input: InputValue =
            serde_json::from_str(r#"{"selected_option":{"value":"3"}}"#).unwrap();
        assert_eq!(
            (input.kind.as_deref(), input.chosen_value()),
            (None, Some("3"))
        );
    }

    #[test]
    fn parses_url_verification_fixture() {
        let text = fixture("events/url_verification.json");
        match serde_json::from_str::<EventEnvelope>(&text).unwrap() {
            EventEnvelope::UrlVerification { challenge } => assert!(!challenge.is_empty()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn shape_samples_parse() {
        // SHAPE fixtures merge every field Slack ever sent: our structs must accept them all.
        for path in [
            "events/shape.AppHomeOpenedPayload.json",
            "events/shape.MessagePayload.json",
            "events/shape.AppUninstalledPayload.json",
            "events/shape.TokensRevokedPayload.json",
            "events/shape.MemberJoinedChannelPayload.json",
        ] {
            let text = fixture(path);
            let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
            // Shape samples blank the envelope type; the inner event keeps its own.
            v["type"] = "event_callback".into();
            let parsed = serde_json::from_value::<EventEnvelope>(v)
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            match parsed {
                EventEnvelope::EventCallback { event, .. } => {
                    assert!(!matches!(event, SlackEvent::Other), "{path}")
                }
                other => panic!("{path}: {other:?}"),
            }
        }
        for path in [
            "interactivity/shape.BlockActionPayload.json",
            "interactivity/shape.ViewSubmissionPayload.json",
            "interactivity/shape.ViewClosedPayload.json",
            "interactivity/message_action.json",
        ] {
            let text = fixture(path);
            serde_json::from_str::<Interaction>(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        }
    }

    #[test]
    fn the_fast_parse_agrees_with_the_tagged_enum() {
        let mut payloads: Vec<String> = std::fs::read_dir(format!("{FIXTURES}/interactivity"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        payloads.push(r#"{"type":"workflow_step_edit","team":{"id":"T1"}}"#.into());
        payloads.push(
            r#"{"type":"view_closed","team":null,"user":{"id":"U1","team_id":"T2"},"view":{}}"#
                .into(),
        );
        assert!(payloads.len() > 4, "the fixtures are there");
        for text in &payloads {
            let tagged = serde_json::from_str::<Interaction>(text);
            let fast = Interaction::from_payload(text);
            match (tagged, fast) {
                (Ok(a), Ok((b, team))) => {
                    assert_eq!(format!("{a:?}"), format!("{b:?}"), "{text}");
                    let v: serde_json::Value = serde_json::from_str(text).unwrap();
                    let expected = v
                        .pointer("/team/id")
                        .or_else(|| v.pointer("/user/team_id"))
                        .and_then(|t| t.as_str())
                        .map(String::from);
                    assert_eq!(team, expected, "{text}");
                }
                (Err(_), Err(_)) => {}
                (a, b) => panic!("they disagree on {text}: {a:?} / {b:?}"),
            }
        }
        assert!(Interaction::from_payload(r#"{"no":"type"}"#).is_err());
        assert!(serde_json::from_str::<Interaction>(r#"{"no":"type"}"#).is_err());
    }

    #[test]
    fn unknown_types_are_not_errors() {
        let e: EventEnvelope = serde_json::from_str(r#"{"type":"brand_new"}"#).unwrap();
        assert!(matches!(e, EventEnvelope::Unknown));
        let i: Interaction = serde_json::from_str(r#"{"type":"workflow_step_edit"}"#).unwrap();
        assert!(matches!(i, Interaction::Unknown));
        assert!(serde_json::from_str::<EventEnvelope>(r#"{"no":"type"}"#).is_err());
    }

    #[test]
    fn a_message_shortcut_names_the_message_and_its_author() {
        let text = fixture("interactivity/message_action.json");
        match serde_json::from_str::<Interaction>(&text).unwrap() {
            Interaction::MessageAction(a) => {
                assert_eq!(a.callback_id.as_deref(), Some("celebrate_win"));
                let m = a.message.unwrap();
                assert_eq!(m.user.unwrap(), "U0AUTHOR1");
                assert_eq!(m.text.as_deref(), Some("We shipped the onboarding guide!"));
                assert!(a.response_url.is_some());
            }
            other => panic!("{other:?}"),
        }
    }
}
