//! Events API callbacks, after signature check and de-duplication.

use crate::http::error::ApiResult;
use crate::slack::inbound::payloads::SlackEvent;
use crate::state::AppState;

pub async fn handle(state: &AppState, team_id: Option<&str>, event: SlackEvent) -> ApiResult<()> {
    match event {
        SlackEvent::UserChange { user } => {
            let profile = crate::pulse::sync::profile_of(&user);
            state
                .store
                .update_profile(&user.id, &profile, state.clock.now())
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
