//! Events API callbacks, after signature check. Effects are written in the caller's
//! transaction, the one that records the event id, so a failure rolls back both.

use super::Pulses;
use super::ServiceResult;
use crate::slack::incoming::payloads::SlackEvent;
use crate::storage::StoreTx;

pub async fn handle(
    state: &Pulses,
    tx: &mut StoreTx,
    team_id: Option<&slack_facts::ids::TeamId>,
    event: SlackEvent,
) -> ServiceResult<()> {
    match event {
        SlackEvent::UserChange { user } | SlackEvent::UserStatusChanged { user } => {
            apply_user_event(state, tx, &user).await?;
        }
        SlackEvent::Message {
            bot_id: Some(_), ..
        }
        | SlackEvent::Message {
            subtype: Some(_), ..
        } => {
            // Our own messages and edits echo back; never answer ourselves.
        }
        SlackEvent::AppUninstalled {} | SlackEvent::TokensRevoked { .. } => {
            tracing::warn!(?team_id, "the app was uninstalled or its tokens revoked");
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
