//! Socket Mode: Slack's requests over a WebSocket the bot opens, for installs without a
//! public URL (docs/socket-mode.md).
//!
//! - `protocol`: the messages (`hello`, `disconnect`, envelopes) and the ack;
//! - here: [`SocketModeClient`], which asks `apps.connections.open` for a URL with the
//!   app-level token, connects, keeps the connection alive (pings, a read timeout) and
//!   connects again when Slack says `disconnect` or the connection is lost, with back-off.
//!
//! What an envelope means is not decided here: each one goes to a [`Dispatch`] given by the
//! layer above (the same service calls as `/slack/*`), in its own task, and its answer is
//! sent back as the ack. An envelope whose handling failed is not acknowledged, so Slack
//! delivers it again.
//!
//! A `refresh_requested` or `warning` disconnect opens the next connection first; the old
//! one stays open until the envelopes it delivered are acknowledged on it, then closes.

pub mod health;
pub mod protocol;

use futures_util::{SinkExt, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use health::{SocketHealth, SocketStatus};
pub use protocol::{DisconnectReason, Envelope, EnvelopeKind, Frame};

/// What handling an envelope came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    /// Acknowledge, with this response payload if any.
    Ack(Option<Value>),
    /// Handling failed on our side: no ack, so Slack delivers the envelope again.
    Failed,
}

/// Handles one envelope (the layer above decides what it means).
pub type Dispatch =
    Arc<dyn Fn(Envelope) -> Pin<Box<dyn Future<Output = Handled> + Send>> + Send + Sync>;

/// Why `apps.connections.open` gave no URL.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OpenError {
    /// Slack answered `ok: false` (`invalid_auth`, `not_allowed_token_type`, …): the token or
    /// the app's settings are wrong; trying again will not help until they are fixed.
    #[error("Slack refused apps.connections.open: {0}")]
    Refused(String),
    /// Slack could not be reached, or answered with something else: try again later.
    #[error("apps.connections.open failed: {0}")]
    Unavailable(String),
}

/// Timings of the connection loop.
#[derive(Debug, Clone)]
pub struct SocketTimings {
    /// A WebSocket ping is sent this often.
    pub ping_every: Duration,
    /// No frame from Slack (a pong counts) for this long: the connection is replaced.
    pub read_timeout: Duration,
    /// Back-off after a failed connection: doubles from `backoff_base` up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How long an old connection may take to acknowledge what it delivered.
    pub drain: Duration,
    /// Envelopes handled at once, at most. A handler may hold a write transaction while it
    /// reads on another connection, so a burst must not take every database connection
    /// (start-up sets half the pool).
    pub max_in_flight: usize,
}

impl Default for SocketTimings {
    fn default() -> Self {
        Self {
            ping_every: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            drain: Duration::from_secs(5),
            max_in_flight: 4,
        }
    }
}

/// The Socket Mode side of the Slack client: the app-level token and where the Web API is.
#[derive(Clone)]
pub struct SocketModeClient {
    http: reqwest::Client,
    api_base_url: String,
    app_token: SecretString,
    timings: SocketTimings,
    /// Told of each connection opened and ended (`/readyz`).
    health: Option<SocketHealth>,
}

impl std::fmt::Debug for SocketModeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketModeClient")
            .field("api_base_url", &self.api_base_url)
            .finish_non_exhaustive()
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a connection ended.
enum End {
    /// Slack asked us to reconnect; the connection is handed back to be drained.
    Disconnect(DisconnectReason, Box<Connection>),
    Lost(String),
    Stopped,
}

impl SocketModeClient {
    pub fn new(
        api_base_url: &str,
        app_token: SecretString,
        request_timeout: Duration,
        timings: SocketTimings,
    ) -> anyhow::Result<Self> {
        crate::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(request_timeout)
            .build()?;
        Ok(Self {
            http,
            api_base_url: api_base_url.trim_end_matches('/').to_string(),
            app_token,
            timings,
            health: None,
        })
    }

    /// Reports the connection's state to `health` (read by `/readyz`).
    pub fn with_health(mut self, health: SocketHealth) -> Self {
        self.health = Some(health);
        self
    }

    /// Asks Slack for a WebSocket URL (single use, valid for a short time).
    pub async fn open_url(&self) -> Result<String, OpenError> {
        let response = self
            .http
            .post(format!("{}/apps.connections.open", self.api_base_url))
            .bearer_auth(self.app_token.expose_secret())
            .send()
            .await
            .map_err(|e| OpenError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| OpenError::Unavailable(format!("HTTP {status}, unreadable body: {e}")))?;
        if body["ok"].as_bool() == Some(true) {
            return body["url"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| OpenError::Unavailable("an answer without a url".into()));
        }
        let code = body["error"]
            .as_str()
            .unwrap_or("unknown_error")
            .to_string();
        if status.is_server_error() || status.as_u16() == 429 || code == "ratelimited" {
            return Err(OpenError::Unavailable(code));
        }
        Err(OpenError::Refused(code))
    }

    /// Connects, serves and reconnects until `stop` turns true. `first_url` (from a check at
    /// start) is used for the first connection when given.
    pub async fn run(
        self,
        first_url: Option<String>,
        dispatch: Dispatch,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut next_url = first_url;
        let mut failures: u32 = 0;
        let mut draining = JoinSet::new();
        let outcomes = Outcomes::new(self.timings.max_in_flight);
        while !*stop.borrow() {
            let url = match next_url.take() {
                Some(url) => url,
                None => match self.open_url().await {
                    Ok(url) => url,
                    Err(e) => {
                        metrics::counter!("slack_socket_open_failures_total").increment(1);
                        tracing::error!(error = %e, "Socket Mode: cannot get a connection URL; trying again");
                        failures += 1;
                        if !self.back_off(failures, &mut stop).await {
                            break;
                        }
                        continue;
                    }
                },
            };
            let connection =
                match Connection::open(&url, self.timings.clone(), outcomes.clone()).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "Socket Mode: cannot connect; trying again");
                        failures += 1;
                        if !self.back_off(failures, &mut stop).await {
                            break;
                        }
                        continue;
                    }
                };
            metrics::counter!("slack_socket_connections_total").increment(1);
            let served = connection
                .serve(dispatch.clone(), &mut stop, self.health.as_ref())
                .await;
            if let (Some(health), true) = (&self.health, served.1) {
                health.ended();
            }
            match served {
                (End::Stopped, _) => break,
                (End::Disconnect(reason, old), hello) => {
                    if hello {
                        failures = 0;
                    }
                    tracing::info!(
                        reason = reason.as_str(),
                        "Socket Mode: Slack asked for a new connection; opening it, the old one finishes its envelopes"
                    );
                    draining.spawn(old.drain(dispatch.clone()));
                    if reason == DisconnectReason::LinkDisabled {
                        tracing::error!("Socket Mode was turned off for this app in Slack's settings; pulseloop keeps trying to connect");
                    }
                    // Reasons other than a routine refresh (`link_disabled`,
                    // `too_many_websockets`, new ones) are not answered by reconnecting at once.
                    if !matches!(
                        reason,
                        DisconnectReason::RefreshRequested | DisconnectReason::Warning
                    ) {
                        failures += 1;
                        if !self.back_off(failures, &mut stop).await {
                            break;
                        }
                    }
                }
                (End::Lost(why), hello) => {
                    if hello {
                        failures = 0;
                    }
                    tracing::warn!(%why, "Socket Mode: connection lost; connecting again");
                    if !self.back_off(failures, &mut stop).await {
                        break;
                    }
                    failures += 1;
                }
            }
            // Reap old connections that finished draining.
            while draining.try_join_next().is_some() {}
        }
        while draining.join_next().await.is_some() {}
    }

    /// Waits before the next attempt: nothing after the first failure, then doubling with
    /// jitter up to the maximum. `false` when stopped meanwhile.
    async fn back_off(&self, failures: u32, stop: &mut watch::Receiver<bool>) -> bool {
        let wait = backoff(failures, &self.timings);
        if wait.is_zero() {
            return !*stop.borrow();
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => !*stop.borrow(),
            _ = stop.changed() => false,
        }
    }
}

/// The wait before reconnecting after `failures` failures in a row: 0 for the first (a
/// dropped connection is replaced at once), then base·2ⁿ⁻¹ up to the maximum, with ±25 %
/// jitter so that replicas do not reconnect in step.
fn backoff(failures: u32, t: &SocketTimings) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let exp = t
        .backoff_base
        .saturating_mul(1u32 << (failures - 1).min(16))
        .min(t.backoff_max);
    exp.mul_f64(0.75 + fastrand::f64() * 0.5)
}

/// One open WebSocket and the envelopes it delivered that are still being handled.
struct Connection {
    socket: Socket,
    timings: SocketTimings,
    outcomes: Outcomes,
    acks_tx: mpsc::UnboundedSender<String>,
    acks: mpsc::UnboundedReceiver<String>,
    handlers: JoinSet<()>,
}

/// How many envelope outcomes this process remembers (a redelivery comes within minutes;
/// the database claim covers what falls out of this window, and other replicas).
const REMEMBERED_OUTCOMES: usize = 2048;

/// The outcome of each envelope handled (or being handled) in this process, shared by its
/// connections: a redelivery on a new connection finds the first delivery's.
#[derive(Clone)]
struct Outcomes(
    Arc<std::sync::Mutex<OutcomeMap>>,
    Arc<tokio::sync::Semaphore>,
);

impl Outcomes {
    fn new(max_in_flight: usize) -> Self {
        Self(
            Arc::default(),
            Arc::new(tokio::sync::Semaphore::new(max_in_flight.max(1))),
        )
    }
}

#[derive(Default)]
struct OutcomeMap {
    by_id: std::collections::HashMap<String, watch::Receiver<Option<Handled>>>,
    order: std::collections::VecDeque<String>,
}

impl Outcomes {
    /// The envelope's outcome channel, and the sender when this delivery is the first (it
    /// then handles the envelope and publishes the outcome).
    fn claim(
        &self,
        id: &str,
    ) -> (
        watch::Receiver<Option<Handled>>,
        Option<watch::Sender<Option<Handled>>>,
    ) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rx) = map.by_id.get(id) {
            return (rx.clone(), None);
        }
        let (tx, rx) = watch::channel(None);
        map.by_id.insert(id.to_string(), rx.clone());
        map.order.push_back(id.to_string());
        while map.order.len() > REMEMBERED_OUTCOMES {
            if let Some(old) = map.order.pop_front() {
                map.by_id.remove(&old);
            }
        }
        (rx, Some(tx))
    }

    fn forget(&self, id: &str) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.by_id.remove(id);
        map.order.retain(|o| o != id);
    }
}

/// Handlers still running when a connection goes away (lost, or past its drain time) are
/// left to finish: their work commits or releases its claim, only the ack is lost (Slack
/// delivers the envelope again, and the claim makes that a no-op). Aborting them could stop
/// one between its claim and its work.
impl Drop for Connection {
    fn drop(&mut self) {
        self.handlers.detach_all();
    }
}

impl Connection {
    async fn open(url: &str, timings: SocketTimings, outcomes: Outcomes) -> anyhow::Result<Self> {
        let connector = if url.starts_with("wss://") {
            use rustls_platform_verifier::ConfigVerifierExt;
            crate::tls::install_crypto_provider();
            let config = rustls::ClientConfig::with_platform_verifier()?;
            tokio_tungstenite::Connector::Rustls(Arc::new(config))
        } else {
            tokio_tungstenite::Connector::Plain
        };
        let (socket, _) = tokio::time::timeout(
            timings.read_timeout,
            tokio_tungstenite::connect_async_tls_with_config(url, None, true, Some(connector)),
        )
        .await
        .map_err(|_| anyhow::anyhow!("the WebSocket handshake timed out"))??;
        let (acks_tx, acks) = mpsc::unbounded_channel();
        Ok(Self {
            socket,
            timings,
            outcomes,
            acks_tx,
            acks,
            handlers: JoinSet::new(),
        })
    }

    /// Reads frames, hands envelopes to `dispatch`, sends acks and pings, until the
    /// connection ends. The flag says whether Slack's `hello` arrived.
    async fn serve(
        mut self,
        dispatch: Dispatch,
        stop: &mut watch::Receiver<bool>,
        health: Option<&SocketHealth>,
    ) -> (End, bool) {
        let mut hello = false;
        let mut ping = tokio::time::interval(self.timings.ping_every);
        ping.tick().await;
        let mut deadline = tokio::time::Instant::now() + self.timings.read_timeout;
        loop {
            tokio::select! {
                frame = self.socket.next() => {
                    deadline = tokio::time::Instant::now() + self.timings.read_timeout;
                    match frame {
                        Some(Ok(Message::Text(text))) => match protocol::parse_frame(text.as_str()) {
                            Ok(Frame::Hello { num_connections }) => {
                                if !hello {
                                    if let Some(health) = health {
                                        health.connected();
                                    }
                                }
                                hello = true;
                                tracing::info!(?num_connections, "Socket Mode: connected");
                            }
                            Ok(Frame::Disconnect(reason)) => {
                                return (End::Disconnect(reason, Box::new(self)), hello);
                            }
                            Ok(Frame::Envelope(envelope)) => self.handle(envelope, &dispatch),
                            Ok(Frame::Unknown(kind)) => {
                                tracing::debug!(%kind, "Socket Mode: ignored a message of an unknown type");
                            }
                            Err(e) => tracing::warn!(error = %e, "Socket Mode: unreadable message ignored"),
                        },
                        Some(Ok(Message::Close(frame))) => {
                            return (End::Lost(format!("closed by Slack ({frame:?})")), hello);
                        }
                        // Pings are answered by the WebSocket layer; pongs only prove life.
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return (End::Lost(e.to_string()), hello),
                        None => return (End::Lost("the connection ended".into()), hello),
                    }
                }
                Some(ack) = self.acks.recv() => {
                    if let Err(e) = self.socket.send(Message::Text(ack.into())).await {
                        return (End::Lost(format!("cannot send an ack: {e}")), hello);
                    }
                }
                _ = ping.tick() => {
                    if let Err(e) = self.socket.send(Message::Ping(Vec::new().into())).await {
                        return (End::Lost(format!("cannot send a ping: {e}")), hello);
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return (End::Lost(format!(
                        "nothing from Slack for {} s", self.timings.read_timeout.as_secs()
                    )), hello);
                }
                Some(_) = self.handlers.join_next(), if !self.handlers.is_empty() => {}
                _ = stop.changed() => {
                    self.finish().await;
                    return (End::Stopped, hello);
                }
            }
        }
    }

    /// Handles one envelope in its own task; its ack comes back through the channel. An
    /// envelope delivered again while (or shortly after) this process handled it is not
    /// handled twice: the second delivery waits for the first one's outcome and is
    /// acknowledged with the same payload.
    fn handle(&mut self, envelope: Envelope, dispatch: &Dispatch) {
        metrics::counter!("slack_socket_envelopes_total", "type" => envelope.kind.as_str().to_owned())
            .increment(1);
        let acks = self.acks_tx.clone();
        let dispatch = dispatch.clone();
        let id = envelope.envelope_id.clone();
        let outcomes = self.outcomes.clone();
        let (mut outcome, first) = outcomes.claim(&id);
        self.handlers.spawn(async move {
            let handled = match first {
                Some(publish) => {
                    let handled = match outcomes.1.clone().acquire_owned().await {
                        Ok(_permit) => dispatch(envelope).await,
                        Err(_) => Handled::Failed,
                    };
                    if handled == Handled::Failed {
                        // A later delivery is handled afresh.
                        outcomes.forget(&id);
                    }
                    let _ = publish.send(Some(handled.clone()));
                    handled
                }
                None => {
                    tracing::debug!(envelope_id = %id, retry = envelope.retry_attempt, "Socket Mode: an envelope delivered again; answering with the first delivery's outcome");
                    match outcome.wait_for(Option::is_some).await {
                        Ok(done) => done.clone().unwrap_or(Handled::Failed),
                        Err(_) => Handled::Failed,
                    }
                }
            };
            match handled {
                Handled::Ack(payload) => {
                    let _ = acks.send(protocol::ack(&id, payload));
                }
                Handled::Failed => {
                    tracing::warn!(envelope_id = %id, "Socket Mode: envelope not acknowledged (handling failed); Slack will deliver it again");
                }
            }
        });
    }

    /// After a `disconnect`: keeps reading (an envelope may still come) and acknowledging
    /// until everything delivered here is answered, or the drain time is up; then closes.
    async fn drain(mut self: Box<Self>, dispatch: Dispatch) {
        let until = tokio::time::Instant::now() + self.timings.drain;
        loop {
            if self.handlers.is_empty() {
                while let Ok(ack) = self.acks.try_recv() {
                    let _ = self.socket.send(Message::Text(ack.into())).await;
                }
                if self.handlers.is_empty() {
                    break;
                }
            }
            tokio::select! {
                Some(ack) = self.acks.recv() => {
                    if self.socket.send(Message::Text(ack.into())).await.is_err() {
                        break;
                    }
                }
                Some(_) = self.handlers.join_next(), if !self.handlers.is_empty() => {}
                frame = self.socket.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        if let Ok(Frame::Envelope(envelope)) = protocol::parse_frame(text.as_str()) {
                            self.handle(envelope, &dispatch);
                        }
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                _ = tokio::time::sleep_until(until) => {
                    tracing::warn!(in_flight = self.handlers.len(), "Socket Mode: the old connection closed with envelopes unacknowledged; Slack delivers them again");
                    break;
                }
            }
        }
        let _ = self.socket.close(None).await;
    }

    /// On shutdown: lets the envelopes in flight finish and acknowledges them (bounded by
    /// the drain time), then closes.
    async fn finish(&mut self) {
        let until = tokio::time::Instant::now() + self.timings.drain;
        while !self.handlers.is_empty() {
            tokio::select! {
                Some(_) = self.handlers.join_next() => {}
                _ = tokio::time::sleep_until(until) => break,
            }
        }
        while let Ok(ack) = self.acks.try_recv() {
            let _ = self.socket.send(Message::Text(ack.into())).await;
        }
        let _ = self.socket.close(None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_immediate_first_then_doubles_to_the_cap() {
        let t = SocketTimings::default();
        assert_eq!(backoff(0, &t), Duration::ZERO);
        for (failures, nominal) in [(1, 500), (2, 1000), (3, 2000), (8, 30_000), (40, 30_000)] {
            let wait = backoff(failures, &t).as_millis() as f64;
            let nominal = nominal as f64;
            assert!(
                wait >= nominal * 0.75 && wait <= nominal * 1.25,
                "{failures} failures: {wait} ms, nominal {nominal} ms"
            );
        }
    }
}
