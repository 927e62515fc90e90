//! What every request handler and background task shares.

use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::SecretString;
use std::ops::Deref;
use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::pulse::catalog::Catalog;
use crate::slack::outbound::SlackClient;
use crate::storage::Store;

#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

pub struct AppInner {
    pub store: Store,
    pub clock: SharedClock,
    pub settings: Settings,
    pub slack: SlackClient,
    pub signing_secret: SecretString,
    pub metrics: PrometheusHandle,
    /// The programs in force (config/programs), swapped on reload.
    pub catalog: Catalog,
}

impl AppState {
    pub fn new(inner: AppInner) -> Self {
        Self(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}
