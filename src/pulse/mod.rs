//! The pulse services: what happens when people answer, click or type `/pulse`, when Slack
//! sends an event, and when `config/programs/` is applied. They take a [`Pulses`] (the store,
//! the clock, the Slack client and the catalog, nothing of HTTP), and return their own typed
//! results ([`interactions::InteractionOutcome`], [`commands::CommandReply`]) and errors
//! ([`ServiceError`]); `http` turns those into responses in one place.

pub mod actions;
pub mod admin;
pub mod admin_view;
pub mod answers;
pub mod catalog;
pub mod commands;
pub mod events;
pub mod home;
pub mod interactions;
pub mod my_data;
pub mod relay;
pub mod render;
pub mod replicas;
pub mod sync;
pub mod wins;

use std::path::PathBuf;

use crate::clock::SharedClock;
use crate::slack::outbound::{SlackClient, Teams};
use crate::storage::{Store, StoreError};
use catalog::Catalog;

/// What the pulse services need, cheap to clone (every field is a handle).
#[derive(Clone)]
pub struct Pulses {
    pub store: Store,
    pub clock: SharedClock,
    pub slack: SlackClient,
    /// The programs in force (config/programs), swapped on reload.
    pub catalog: Catalog,
    /// Where program files are read from on start and on reload.
    pub programs_dir: PathBuf,
    /// Member details from Slack are refreshed when older than this.
    pub profile_refresh: chrono::Duration,
    /// The reply relay's keys, from the server secret; `None` (no secret configured) means
    /// comments cannot be replied to.
    pub relay: Option<relay::RelayKeys>,
    /// Every workspace's Slack client (the default installation and those installed with
    /// OAuth); `slack` is the one of the workspace being served.
    pub teams: Teams,
}

impl Pulses {
    /// The same services speaking to Slack with `client` (an installed workspace's).
    pub fn with_client(&self, client: SlackClient) -> Pulses {
        Pulses {
            slack: client,
            ..self.clone()
        }
    }

    /// The services for the workspace of a program (`team_id` from its file): its own
    /// client when that workspace is installed with OAuth and not revoked, else these.
    pub async fn for_team(&self, team_id: Option<&str>) -> Pulses {
        use crate::slack::outbound::TeamRoute;
        let Some(team_id) = team_id else {
            return self.clone();
        };
        match self.teams.route(team_id).await {
            Ok(TeamRoute::Installed { client, .. }) => self.with_client(client),
            Ok(_) => self.clone(),
            Err(e) => {
                tracing::warn!(error = %e, team = team_id, "cannot read the installation; using the default token");
                self.clone()
            }
        }
    }
}

/// Why a pulse service could not do its work. The HTTP layer maps it (http/error.rs).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type ServiceResult<T> = Result<T, ServiceError>;
