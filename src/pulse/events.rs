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
        SlackEvent::UserChange { user } => {
            let profile = crate::pulse::sync::profile_of(&user);
            tx.apply_profile_update(&user.id, &profile, state.clock.now())
                .await?;
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
