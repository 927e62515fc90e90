//! What every request handler shares: the service handles (pulses, scheduler) and what only
//! HTTP needs (the signing secret, the metrics handle, the settings).

use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::SecretString;
use std::ops::Deref;
use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::pulse::catalog::Catalog;
use crate::pulse::Pulses;
use crate::scheduler::Scheduler;
use crate::storage::Store;

#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

pub struct AppInner {
    /// The pulse services (answers, clicks, `/pulse`, events, config sync).
    pub pulses: Pulses,
    /// The scheduler service (send-now from the admin API; ticks run in the background).
    pub scheduler: Scheduler,
    pub store: Store,
    pub clock: SharedClock,
    /// The programs in force (config/programs), swapped on reload; the same as `pulses.catalog`.
    pub catalog: Catalog,
    pub settings: Settings,
    pub signing_secret: SecretString,
    pub metrics: PrometheusHandle,
    /// Socket Mode's connection state (`/readyz`); `None` when Socket Mode is off.
    pub socket: Option<crate::slack::socket::SocketHealth>,
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
