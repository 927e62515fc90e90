//! Which token a workspace's calls go out with: the default installation (`SLACK_BOT_TOKEN`,
//! or the sandbox) or a workspace installed with OAuth (its sealed token from the
//! `installations` table, opened with the key from `PULSELOOP_ENCRYPTION_KEY`).
//!
//! Each installed workspace gets a client of its own, so its own rate limiter: Slack's limits
//! are per workspace. Clients are made on first use and kept while the stored token is the
//! same. A revoked installation gets no client: nothing is ever called with its token.

use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::client::SlackClient;
use crate::slack::oauth::OAuthKeys;
use crate::storage::{Store, StoreResult};

/// Where the calls of one workspace go.
#[derive(Debug, Clone)]
pub enum TeamRoute {
    /// The default installation: the workspace of `SLACK_BOT_TOKEN` (or the sandbox), and
    /// any workspace with no installation of its own.
    Default,
    /// A workspace installed with OAuth, with its own token and limits.
    Installed {
        team_id: String,
        client: SlackClient,
    },
    /// Uninstalled or its tokens revoked: nothing may be sent for it.
    Revoked { team_id: String, reason: String },
    /// Installed, but its token cannot be opened (no key, or another key): nothing is sent.
    Unusable { team_id: String, reason: String },
    /// OAuth-only mode (no default installation) and the workspace has no installation
    /// (`team_id` '' when the request named none): nothing is sent or served for it.
    NotInstalled { team_id: String },
}

/// The clients of every workspace this process serves; cheap to clone.
#[derive(Clone)]
pub struct Teams(Arc<Inner>);

struct Inner {
    default: SlackClient,
    /// No default installation (OAuth-only mode): a workspace without an installation routes
    /// to [`TeamRoute::NotInstalled`] instead of [`TeamRoute::Default`].
    oauth_only: bool,
    store: Store,
    keys: Option<OAuthKeys>,
    /// Installed workspaces' clients, with the sealed token they were made from.
    clients: Mutex<HashMap<String, (String, SlackClient)>>,
}

impl Teams {
    /// `default` is the client of the default installation; installed workspaces' clients
    /// copy its base URL, timeout, post limits and clock. A `default` without a token
    /// ([`SlackClient::without_token`]) means OAuth-only mode: no default route.
    pub fn new(default: SlackClient, store: Store, keys: Option<OAuthKeys>) -> Self {
        Self(Arc::new(Inner {
            oauth_only: !default.has_token(),
            default,
            store,
            keys,
            clients: Mutex::new(HashMap::new()),
        }))
    }

    pub fn default_client(&self) -> &SlackClient {
        &self.0.default
    }

    pub fn keys(&self) -> Option<&OAuthKeys> {
        self.0.keys.as_ref()
    }

    /// True in OAuth-only mode: there is no default installation.
    pub fn oauth_only(&self) -> bool {
        self.0.oauth_only
    }

    /// The route of a workspace with no installation of its own: the default installation,
    /// or nowhere in OAuth-only mode.
    fn uninstalled(&self, team_id: &str) -> TeamRoute {
        if self.0.oauth_only {
            TeamRoute::NotInstalled {
                team_id: team_id.to_string(),
            }
        } else {
            TeamRoute::Default
        }
    }

    /// Where the calls of `team_id` go ('' is the default installation).
    pub async fn route(&self, team_id: &str) -> StoreResult<TeamRoute> {
        if team_id.is_empty() {
            return Ok(self.uninstalled(team_id));
        }
        let Some(install) = self.0.store.installation_route(team_id).await? else {
            return Ok(self.uninstalled(team_id));
        };
        if install.revoked_at.is_some() {
            self.forget(team_id);
            return Ok(TeamRoute::Revoked {
                team_id: team_id.to_string(),
                reason: install
                    .revoked_reason
                    .unwrap_or_else(|| "app_uninstalled".into()),
            });
        }
        if let Some((sealed, client)) = self.cached(team_id) {
            if sealed == install.token_sealed {
                return Ok(TeamRoute::Installed {
                    team_id: team_id.to_string(),
                    client,
                });
            }
        }
        let Some(keys) = &self.0.keys else {
            return Ok(TeamRoute::Unusable {
                team_id: team_id.to_string(),
                reason:
                    "PULSELOOP_ENCRYPTION_KEY is not set: the workspace's token cannot be opened"
                        .into(),
            });
        };
        let token = match keys.open_token(team_id, &install.token_sealed) {
            Ok(token) => token,
            Err(e) => {
                return Ok(TeamRoute::Unusable {
                    team_id: team_id.to_string(),
                    reason: e.to_string(),
                })
            }
        };
        let client = self.client_with(token);
        self.0
            .clients
            .lock()
            .expect("teams lock")
            .insert(team_id.to_string(), (install.token_sealed, client.clone()));
        Ok(TeamRoute::Installed {
            team_id: team_id.to_string(),
            client,
        })
    }

    /// True when the sends of a program in workspace `team_id` wait: OAuth-only mode and that
    /// workspace is not installed (yet). Revoked or unusable installations do not wait: their
    /// sends fail with the reason, as in every mode.
    pub async fn waits_for_install(&self, team_id: Option<&str>) -> StoreResult<bool> {
        if !self.0.oauth_only {
            return Ok(false);
        }
        Ok(matches!(
            self.route(team_id.unwrap_or_default()).await?,
            TeamRoute::NotInstalled { .. }
        ))
    }

    fn cached(&self, team_id: &str) -> Option<(String, SlackClient)> {
        self.0
            .clients
            .lock()
            .expect("teams lock")
            .get(team_id)
            .cloned()
    }

    /// Drops the client of `team_id` (revoked): its token is no longer held in memory.
    pub fn forget(&self, team_id: &str) {
        self.0.clients.lock().expect("teams lock").remove(team_id);
    }

    fn client_with(&self, token: SecretString) -> SlackClient {
        self.0.default.for_token(token)
    }
}
