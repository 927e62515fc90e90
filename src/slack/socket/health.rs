//! Whether Socket Mode is connected, for `/readyz` (docs/socket-mode.md, "Readiness").
//!
//! The connection loop reports each `hello` (connected) and each connection that ends (lost,
//! or replaced on Slack's `disconnect`). A replica is ready once connected, and stays ready
//! through a short outage (a routine refresh, a reconnect) for a grace period; past it, or
//! before its first connection, it is not ready: nothing from Slack reaches it.

use chrono::{DateTime, Duration, Utc};
use std::sync::{Arc, Mutex};

use crate::clock::SharedClock;

/// Shared by the connection loop (which reports) and the readiness probe (which reads).
#[derive(Clone)]
pub struct SocketHealth {
    state: Arc<Mutex<State>>,
    clock: SharedClock,
}

#[derive(Debug, Clone, Copy, Default)]
struct State {
    /// Connections open now that received Slack's `hello`.
    open: usize,
    /// Whether a connection was ever open.
    ever: bool,
    /// When the last open connection ended (while none is open).
    down_since: Option<DateTime<Utc>>,
}

/// What the probe makes of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketStatus {
    Connected,
    /// Down for less than the grace period: still ready.
    Reconnecting {
        down_seconds: i64,
    },
    /// Not ready: never connected, or down for longer than the grace period.
    NotConnected {
        detail: String,
    },
}

impl SocketHealth {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            state: Arc::default(),
            clock,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// A connection received `hello`.
    pub fn connected(&self) {
        self.with(|s| {
            s.open += 1;
            s.ever = true;
            s.down_since = None;
        });
    }

    /// A connection that had received `hello` ended.
    pub fn ended(&self) {
        let now = self.clock.now();
        self.with(|s| {
            s.open = s.open.saturating_sub(1);
            if s.open == 0 {
                s.down_since = Some(now);
            }
        });
    }

    /// The status now, with `grace`: how long an outage may last before the replica is no
    /// longer ready.
    pub fn status(&self, grace: Duration) -> SocketStatus {
        let now = self.clock.now();
        let state = self.with(|s| *s);
        if state.open > 0 {
            return SocketStatus::Connected;
        }
        if !state.ever {
            return SocketStatus::NotConnected {
                detail: "socket mode not connected yet: the WebSocket to Slack is not open \
                         (apps.connections.open refused or unreachable?)"
                    .into(),
            };
        }
        let down = state.down_since.map_or(Duration::zero(), |at| now - at);
        if down > grace {
            SocketStatus::NotConnected {
                detail: format!(
                    "socket mode not connected for {} s (longer than {} s); reconnecting",
                    down.num_seconds(),
                    grace.num_seconds()
                ),
            }
        } else {
            SocketStatus::Reconnecting {
                down_seconds: down.num_seconds(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use chrono::TimeZone;

    #[test]
    fn ready_once_connected_and_through_a_short_outage_only() {
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2027, 1, 4, 8, 0, 0).unwrap());
        let health = SocketHealth::new(Arc::new(clock.clone()));
        let grace = Duration::seconds(30);
        assert!(matches!(
            health.status(grace),
            SocketStatus::NotConnected { detail } if detail.contains("not connected yet")
        ));
        health.connected();
        assert_eq!(health.status(grace), SocketStatus::Connected);
        // Two connections with hello; one ends: still connected.
        health.connected();
        health.ended();
        assert_eq!(health.status(grace), SocketStatus::Connected);
        health.ended();
        clock.advance(Duration::seconds(30));
        assert_eq!(
            health.status(grace),
            SocketStatus::Reconnecting { down_seconds: 30 }
        );
        clock.advance(Duration::seconds(1));
        assert!(matches!(
            health.status(grace),
            SocketStatus::NotConnected { detail } if detail.contains("for 31 s")
        ));
        health.connected();
        assert_eq!(health.status(grace), SocketStatus::Connected);
    }
}
