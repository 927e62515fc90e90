//! Building and running the service: database, Slack client (or the built-in sandbox), HTTP
//! server, outbox workers and scheduler, with graceful shutdown.

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::http::state::{AppInner, AppState};
use crate::pulse::catalog::Catalog;
use crate::pulse::Pulses;
use crate::scheduler::Scheduler;
use crate::slack::outbound::{OutboxWorker, RateLimitConfig, SlackClient};
use crate::slack::socket::{OpenError, SocketHealth, SocketModeClient, SocketTimings};
use crate::storage::Store;
use slack_emulator::{EmulatedUser, Emulator, EmulatorConfig};

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    sandbox: Option<Emulator>,
    /// Socket Mode's client and the URL its start-up check got (used for the first connection).
    socket: Option<(SocketModeClient, Option<String>)>,
    /// The stored run-time edits when the configuration was applied (see `pulse::replicas`).
    edits_seen: std::collections::BTreeMap<crate::domain::ids::ProgramId, u64>,
}

impl Application {
    /// Connects and migrates the database, binds the listener (port 0 picks a free one) and,
    /// without a bot token, starts the sandbox Slack. Nothing runs until `run_until_stopped`.
    pub async fn build(mut settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        crate::config::check::require_folder(&settings.config_dir).map_err(anyhow::Error::msg)?;
        if settings.is_sandbox() {
            if settings.socket_mode() {
                anyhow::bail!(
                    "SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not, and OAuth is not \
                     configured: Socket Mode needs a bot token to send with, either \
                     SLACK_BOT_TOKEN or workspaces installed with OAuth (SLACK_CLIENT_ID, \
                     SLACK_CLIENT_SECRET and PULSELOOP_ENCRYPTION_KEY)"
                );
            }
            sandbox_refuses_settings(&settings)?;
        }
        let (store, migrations) = open_store(&settings).await?;
        let sandbox = if settings.is_sandbox() {
            Some(open_sandbox(&store, &mut settings).await?)
        } else {
            None
        };
        // After the sandbox's warning, which must be the first line a newcomer reads.
        tracing::info!(
            mode = %settings.slack_mode().describe(),
            "Slack mode"
        );
        for migration in &migrations {
            tracing::info!(%migration, "database migration applied");
        }
        let first_start = store
            .record_first_start(clock.now())
            .await
            .context("cannot record the first start")?;
        tracing::info!(
            first_start = %first_start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "firings before the first start are never caught up"
        );
        refuse_sealed_tokens_without_key(&store, &settings).await?;
        let (slack, signing_secret) = slack_client(&settings, &clock)?;
        let socket = match &settings.slack.app_token {
            Some(token) => Some(socket_mode(&settings, token.clone()).await?),
            None => None,
        };
        let socket_health = socket.as_ref().map(|_| SocketHealth::new(clock.clone()));
        let socket = socket.map(|(client, url)| {
            let health = socket_health.clone().expect("made with the client");
            (client.with_health(health), url)
        });
        if sandbox.is_none() && slack.has_token() {
            remember_workspace(&store, &slack, clock.now()).await;
        }
        let listener = TcpListener::bind(&settings.server.bind)
            .await
            .with_context(|| format!("cannot listen on {}", settings.server.bind))?;
        let addr = listener.local_addr()?;

        let state = app_state(store, clock, slack, signing_secret, settings, socket_health);
        let edits_seen = crate::pulse::replicas::edits_seen(&state.pulses).await;
        crate::pulse::sync::apply_config(&state.pulses)
            .await
            .map_err(|e| anyhow::anyhow!("cannot apply config/programs:\n{e}"))?;
        log_loaded_programs(&state).await;
        if let Some(emulator) = &sandbox {
            emulator.connect_bot(
                &format!("http://{addr}"),
                state.signing_secret.expose_secret(),
            );
            reset_with_the_sandbox(emulator, &state);
        }
        Ok(Self {
            listener,
            addr,
            state,
            sandbox,
            socket,
            edits_seen,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn sandbox(&self) -> Option<&Emulator> {
        self.sandbox.as_ref()
    }

    /// A worker sharing this process's rate limits; tests call `run_once` on it.
    pub fn outbox_worker(&self) -> OutboxWorker {
        OutboxWorker::new(
            self.state.store.clone(),
            self.state.pulses.slack.clone(),
            self.state.clock.clone(),
            self.state.settings.outbox.clone(),
        )
        .with_teams(self.state.pulses.teams.clone())
    }

    /// Serves until `shutdown` resolves, then stops claiming work, lets in-flight requests
    /// and Slack calls finish (up to the grace period) and leaves the rest pending.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut background = JoinSet::new();
        for _ in 0..self.state.settings.outbox.workers {
            background.spawn(self.outbox_worker().run(stop_rx.clone()));
        }
        if self.state.settings.scheduler.enabled {
            background.spawn(self.state.scheduler.clone().run(stop_rx.clone()));
        }
        background.spawn(reload_on_sighup(self.state.pulses.clone(), stop_rx.clone()));
        // PostgreSQL: edits made on other replicas are put in force here too.
        background.spawn(crate::pulse::replicas::follow_edits(
            self.state.pulses.clone(),
            self.edits_seen,
            Duration::from_secs(self.state.settings.scheduler.config_check_seconds),
            stop_rx.clone(),
        ));
        if let Some((client, first_url)) = self.socket {
            let dispatch = crate::http::socket::dispatcher(self.state.clone());
            background.spawn(client.run(first_url, dispatch, stop_rx.clone()));
        }
        let grace = Duration::from_secs(self.state.settings.server.shutdown_grace_seconds);
        let router = crate::http::router(self.state.clone());
        tracing::info!(addr = %self.addr, workers = self.state.settings.outbox.workers, "pulseloop is listening");
        crate::memory::release_freed_memory();

        let stop_signal = {
            let stop_tx = stop_tx.clone();
            async move {
                shutdown.await;
                tracing::info!(
                    "shutting down: no new work is claimed; finishing what is in flight"
                );
                let _ = stop_tx.send(true);
            }
        };
        let header_timeout =
            Duration::from_secs(self.state.settings.server.header_read_timeout_seconds);
        crate::http::server::serve(self.listener, router, header_timeout, grace, stop_signal).await;
        let _ = stop_tx.send(true);
        if tokio::time::timeout(grace, async {
            while background.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            tracing::warn!("background work did not finish within the grace period; leases will expire and another process will pick it up");
            background.abort_all();
        }
        if let Some(emulator) = self.sandbox {
            emulator.shutdown().await;
        }
        self.state.store.close().await;
        Ok(())
    }
}

/// Step of `build`: the database, connected and migrated, with the migrations applied now.
async fn open_store(settings: &Settings) -> anyhow::Result<(Store, Vec<String>)> {
    let store = Store::connect(&settings.database.url, settings.database.max_connections)
        .await
        .with_context(|| {
            format!(
                "cannot open the database at {}",
                redact_url(&settings.database.url)
            )
        })?;
    let applied = store
        .migrate_reporting()
        .await
        .context("database migration failed")?;
    Ok((store, applied))
}

/// Step of `build`: the sandbox Slack, once the database is known to be safe for it; says
/// loudly that nothing reaches Slack and prints a generated admin token.
async fn open_sandbox(store: &Store, settings: &mut Settings) -> anyhow::Result<Emulator> {
    sandbox_refuses_database(store).await?;
    let generated_token = settings.admin.token.is_none();
    let emulator = start_sandbox(settings).await?;
    tracing::warn!(
        slack_api = %emulator.base_url(),
        sandbox_page = %emulator.sandbox_url(),
        "SANDBOX MODE: no SLACK_BOT_TOKEN is set, so pulseloop talks to its built-in Slack \
         emulator on this machine; nothing reaches a real Slack workspace. Open the sandbox \
         page to see the DMs members receive and to answer them"
    );
    if generated_token {
        if let Some(token) = &settings.admin.token {
            // Standard output, not the log: logs are often shipped elsewhere.
            println!("sandbox admin token: {}", token.expose_secret());
            tracing::warn!("sandbox: a random admin API token was generated and printed on standard output (set PULSELOOP_ADMIN_TOKEN to choose one)");
        }
    }
    Ok(emulator)
}

/// Step of `build`: the Slack Web API client and the secret Slack signs requests with.
/// One client per bot token: its rate limiter is shared by the outbox workers and every
/// inline call. In Socket Mode nothing arrives signed over HTTP (`/slack/*` is not served),
/// so the signing secret may be left out; a random one then stands in.
fn slack_client(
    settings: &Settings,
    clock: &SharedClock,
) -> anyhow::Result<(SlackClient, SecretString)> {
    let signing_secret = match settings.slack.signing_secret.clone() {
        Some(secret) => secret,
        None if settings.socket_mode() => SecretString::from(format!(
            "unused-in-socket-mode-{}",
            uuid::Uuid::new_v4().simple()
        )),
        None => anyhow::bail!(
            "SLACK_SIGNING_SECRET is required when SLACK_BOT_TOKEN or OAuth is set (Slack signs every request with it); \
             or set SLACK_APP_TOKEN to receive Slack's requests over Socket Mode instead"
        ),
    };
    let timeout = Duration::from_secs(settings.slack.request_timeout_seconds);
    // OAuth-only mode: no default installation, so a client that sends nothing; each
    // installed workspace's client is made from it with its own token (`Teams`).
    let slack = match settings.slack.bot_token.clone() {
        Some(token) => SlackClient::new(&settings.slack.api_base_url, token, timeout)?,
        None if settings.oauth_only() => {
            SlackClient::without_token(&settings.slack.api_base_url, timeout)?
        }
        None => anyhow::bail!("no Slack bot token"),
    }
    .with_limits(RateLimitConfig {
        posts_per_minute: settings.slack.max_posts_per_minute,
        posts_per_second_per_channel: settings.slack.posts_per_second_per_channel,
    })
    .with_clock(clock.clone());
    Ok((slack, signing_secret))
}

/// Step of `build`: workspaces installed with OAuth keep their bot tokens sealed with a key
/// from PULSELOOP_ENCRYPTION_KEY. Without the key they could not be served, and starting
/// would look healthy while every send for them fails: refuse, and say why.
async fn refuse_sealed_tokens_without_key(
    store: &Store,
    settings: &Settings,
) -> anyhow::Result<()> {
    if settings.admin.encryption_key.is_some() {
        return Ok(());
    }
    let installed: Vec<String> = store
        .installations()
        .await
        .context("cannot read the installed workspaces")?
        .into_iter()
        .filter(|i| i.revoked_at.is_none())
        .map(|i| i.team_id)
        .collect();
    if !installed.is_empty() {
        anyhow::bail!(
            "refusing to start: this database holds workspaces installed with OAuth ({}) whose \
             bot tokens are encrypted with PULSELOOP_ENCRYPTION_KEY, and it is not set. Set it \
             to the key used when they were installed (see docs/install.md)",
            installed.join(", ")
        );
    }
    Ok(())
}

/// Step of `build`: the Socket Mode client, with its app-level token checked against Slack now
/// (a refused token stops the start with the reason; Slack being unreachable does not: the
/// connection loop keeps trying).
async fn socket_mode(
    settings: &Settings,
    app_token: SecretString,
) -> anyhow::Result<(SocketModeClient, Option<String>)> {
    let timings = SocketTimings {
        ping_every: Duration::from_secs(settings.slack.socket_ping_seconds),
        read_timeout: Duration::from_secs(settings.slack.socket_read_timeout_seconds),
        max_in_flight: (settings.database.max_connections as usize / 2).max(1),
        ..SocketTimings::default()
    };
    let client = SocketModeClient::new(
        &settings.slack.api_base_url,
        app_token,
        Duration::from_secs(settings.slack.request_timeout_seconds),
        timings,
    )?;
    match client.open_url().await {
        Ok(url) => {
            tracing::info!("Socket Mode: the app-level token was accepted; Slack's requests come over a WebSocket, /slack/* is not served");
            Ok((client, Some(url)))
        }
        Err(OpenError::Refused(code)) => anyhow::bail!(
            "Slack refused SLACK_APP_TOKEN for Socket Mode (apps.connections.open: {code}). {}",
            match code.as_str() {
                "invalid_auth" | "not_authed" | "token_revoked" | "account_inactive" =>
                    "The token is unknown or revoked: create an app-level token with the connections:write scope (app settings → Basic Information → App-Level Tokens)",
                "not_allowed_token_type" =>
                    "That is not an app-level token: SLACK_APP_TOKEN takes the xapp- token, SLACK_BOT_TOKEN the xoxb- one",
                "missing_scope" =>
                    "The app-level token needs the connections:write scope",
                _ => "Check that Socket Mode is turned on in the app's settings (Settings → Socket Mode)",
            }
        ),
        Err(e @ OpenError::Unavailable(_)) => {
            tracing::warn!(error = %e, "Socket Mode: Slack is not reachable at start; the connection is retried in the background");
            Ok((client, None))
        }
    }
}

/// Step of `build`: the services, and the state the HTTP layer shares.
fn app_state(
    store: Store,
    clock: SharedClock,
    slack: SlackClient,
    signing_secret: SecretString,
    settings: Settings,
    socket: Option<SocketHealth>,
) -> AppState {
    let catalog = Catalog::default();
    let teams = crate::slack::outbound::Teams::new(
        slack.clone(),
        store.clone(),
        settings
            .admin
            .encryption_key
            .as_ref()
            .map(crate::slack::oauth::OAuthKeys::from_secret),
    );
    let pulses = Pulses {
        store: store.clone(),
        clock: clock.clone(),
        slack,
        catalog: catalog.clone(),
        programs_dir: settings.programs_dir(),
        profile_refresh: chrono::Duration::hours(settings.scheduler.profile_refresh_hours as i64),
        relay: settings
            .admin
            .encryption_key
            .as_ref()
            .map(crate::pulse::relay::RelayKeys::from_secret),
        teams,
    };
    let scheduler = Scheduler::new(pulses.clone(), settings.scheduler.clone());
    AppState::new(AppInner {
        pulses,
        scheduler,
        store,
        clock,
        catalog,
        settings,
        signing_secret,
        metrics: crate::telemetry::metrics_handle(),
        socket,
    })
}

/// The start log: one line per program loaded, with its surveys and member counts, and a
/// warning when there is none (the folder has no program file).
async fn log_loaded_programs(state: &AppState) {
    let programs = state.catalog.programs();
    if programs.is_empty() {
        tracing::warn!(
            folder = %state.settings.programs_dir().display(),
            "no program is configured: nothing will be sent. Add a file to this folder and send SIGHUP"
        );
        return;
    }
    for program in programs.iter() {
        let rows = state
            .store
            .members_of(&program.id)
            .await
            .unwrap_or_default();
        let active = rows
            .iter()
            .filter(|m| m.state != crate::domain::state::MemberState::Deactivated)
            .count();
        let reachable = crate::storage::members::plan_members(program, &rows).len();
        let problems = rows.iter().filter(|m| m.slack_problem.is_some()).count();
        let surveys: Vec<String> = program
            .surveys
            .iter()
            .map(|s| format!("{} ({})", s.id, s.cadence.source()))
            .collect();
        tracing::info!(
            program = %program.id,
            name = %program.name,
            surveys = %surveys.join(", "),
            members = active,
            reachable,
            member_problems = problems,
            "program loaded"
        );
    }
}

/// `kill -HUP` re-reads config/programs; a broken file leaves the running configuration as it was.
async fn reload_on_sighup(pulses: Pulses, mut stop: watch::Receiver<bool>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    match crate::pulse::sync::apply_config(&pulses).await {
                        Ok(reports) => tracing::info!(programs = reports.len(), "configuration reloaded"),
                        Err(e) => tracing::error!(error = %e, "configuration NOT reloaded; the previous one stays in force"),
                    }
                }
                _ = stop.changed() => return,
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (pulses, stop.changed().await);
}

/// The sandbox is for trying pulseloop on one machine. It refuses settings that look like a
/// deployment: PostgreSQL (replicas, a shared production database) or an address other
/// machines can reach (its admin token and page would be open to them).
fn sandbox_refuses_settings(settings: &Settings) -> anyhow::Result<()> {
    let url = &settings.database.url;
    if !url.starts_with("sqlite:") {
        anyhow::bail!(
            "refusing to start the sandbox (no SLACK_BOT_TOKEN is set) on the PostgreSQL database \
             {}: the sandbox runs only on a SQLite file. Set SLACK_BOT_TOKEN and \
             SLACK_SIGNING_SECRET to run against Slack, or point DATABASE_URL at a sqlite: file",
            redact_url(url)
        );
    }
    let bind = &settings.server.bind;
    if !settings.binds_loopback() {
        anyhow::bail!(
            "refusing to start the sandbox (no SLACK_BOT_TOKEN is set) on {bind}: other machines \
             could reach it. Bind a loopback address (PULSELOOP_BIND=127.0.0.1:3000), or set \
             SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET to run against Slack"
        );
    }
    Ok(())
}

/// A database that has served a real workspace holds real members: the sandbox would mark
/// their DMs as sent to the emulator.
async fn sandbox_refuses_database(store: &Store) -> anyhow::Result<()> {
    let seen = store
        .known_workspaces()
        .await
        .context("cannot read the workspaces this database has served")?;
    if !seen.is_empty() {
        anyhow::bail!(
            "refusing to start the sandbox (no SLACK_BOT_TOKEN is set): this database has served \
             the Slack workspace {} with a real bot token. Set SLACK_BOT_TOKEN, or point \
             DATABASE_URL at another file for the sandbox",
            seen.join(", ")
        );
    }
    Ok(())
}

/// Remembers the workspace behind a real bot token, so a sandbox is never started on this
/// database later. Best effort: Slack being unreachable at start does not stop the service
/// (the team id of the first event is recorded too).
async fn remember_workspace(
    store: &Store,
    slack: &SlackClient,
    now: chrono::DateTime<chrono::Utc>,
) {
    let team = match tokio::time::timeout(Duration::from_secs(10), slack.auth_test()).await {
        Ok(Ok(reply)) => reply["team_id"]
            .as_str()
            .map(slack_facts::ids::TeamId::from),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "auth.test failed at start; the workspace is recorded with the first event");
            None
        }
        Err(_) => {
            tracing::warn!(
                "auth.test timed out at start; the workspace is recorded with the first event"
            );
            None
        }
    };
    if let Some(team) = team {
        if let Err(e) = store.record_workspace(&team, "auth.test", now).await {
            tracing::warn!(error = %e, "could not record the workspace");
        }
    }
}

/// Names for the sandbox's people, in the order the configured members come.
const SANDBOX_NAMES: [&str; 16] = [
    "Amara Okafor",
    "Ben Fischer",
    "Chloé Martin",
    "Daniel Kim",
    "Elena Rossi",
    "Farid Haddad",
    "Grace Lee",
    "Hugo Silva",
    "Ines Weber",
    "Jonas Berg",
    "Keiko Tanaka",
    "Liam Walsh",
    "Maya Patel",
    "Noah Cohen",
    "Olivia Brown",
    "Pavel Novak",
];

/// Every configured member becomes a user of the sandbox workspace, in their zone. Broken
/// files are skipped here; applying the configuration reports them.
fn seed_sandbox(emulator: &Emulator, settings: &Settings) {
    let programs =
        crate::config::program::load_programs(&settings.programs_dir()).unwrap_or_default();
    let mut named = 0usize;
    let mut seen = std::collections::HashSet::new();
    for program in &programs {
        for m in &program.members {
            if !seen.insert(m.slack_id.clone()) {
                continue; // a member of several programs is one person
            }
            let tz = m.timezone.unwrap_or(program.timezone);
            // A person's name, as a real workspace would show, rather than "User U0…": the
            // same member gets the same name at every start (the page's state is kept).
            let name = SANDBOX_NAMES[named % SANDBOX_NAMES.len()];
            named += 1;
            let handle = name.split(' ').next().unwrap_or(name).to_lowercase();
            emulator.add_user(
                EmulatedUser::new(&m.slack_id, tz.name())
                    .named(name)
                    .handle(&handle),
            );
        }
        for channel in &program.sponsor_channels {
            emulator.add_channel(channel, "sponsors", true);
        }
    }
}

/// The token anyone else may use against the sandbox (an SDK, curl): it has its own rate
/// budget, so outside calls never slow pulseloop's scheduler down, and the reverse.
pub const SANDBOX_OUTSIDE_TOKEN: &str = "xoxb-sandbox";

/// The sandbox workspace's state file, beside the SQLite database: `data/pulseloop.db` keeps
/// its DMs, views and members' states in `data/pulseloop.sandbox.json`. `None` for an
/// in-memory database.
pub fn sandbox_state_file(database_url: &str) -> Option<std::path::PathBuf> {
    let rest = database_url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(":memory:") || path.starts_with("file::memory:") {
        return None;
    }
    Some(std::path::Path::new(path).with_extension("sandbox.json"))
}

/// `POST /_control/reset` (the page's "Reset sandbox") empties pulseloop's database too, then
/// applies the configuration again, so the page and the database start over together.
fn reset_with_the_sandbox(emulator: &Emulator, state: &AppState) {
    let store = state.store.clone();
    let pulses = state.pulses.clone();
    let clock = state.clock.clone();
    emulator.on_reset(move || {
        let store = store.clone();
        let pulses = pulses.clone();
        let clock = clock.clone();
        async move {
            let tables = store
                .wipe_sandbox_data()
                .await
                .map_err(|e| format!("cannot empty the sandbox database: {e}"))?;
            // The wipe took the first start with it; without one, every firing would count as
            // "before the service first ran" and the scheduler would never open a round.
            store
                .record_first_start(clock.now())
                .await
                .map_err(|e| format!("cannot record the sandbox's new start: {e}"))?;
            crate::pulse::sync::apply_config(&pulses)
                .await
                .map_err(|e| format!("cannot apply config/programs again: {e}"))?;
            tracing::info!(
                tables,
                "sandbox reset: the workspace and the database were emptied"
            );
            Ok(())
        }
    });
}

/// Starts the emulator as a sandbox workspace and points the settings at it. pulseloop's token
/// is its own (random); outside clients use [`SANDBOX_OUTSIDE_TOKEN`].
async fn start_sandbox(settings: &mut Settings) -> anyhow::Result<Emulator> {
    let config = EmulatorConfig {
        bot_token: format!("xoxb-pulseloop-{}", uuid::Uuid::new_v4().simple()),
        state_file: sandbox_state_file(&settings.database.url),
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config.clone())
        .await
        .context("cannot start the sandbox Slack emulator")?;
    let outside = slack_emulator::workspace::App {
        app_id: config.app_id.clone(),
        name: Some("pulseloop".into()),
        bot_user_id: config.bot_user_id.clone(),
        bot_id: config.bot_id.clone(),
        token: SANDBOX_OUTSIDE_TOKEN.into(),
        scopes: None,
        signing_secret: None,
        request_url: None,
        events_url: None,
        interactivity_url: None,
        commands_url: None,
        client_id: None,
        client_secret: None,
    };
    emulator
        .load_workspace(&slack_emulator::Workspace {
            apps: vec![outside],
            ..Default::default()
        })
        .map_err(|e| anyhow::anyhow!("cannot set up the sandbox workspace: {e}"))?;
    seed_sandbox(&emulator, settings);
    settings.slack.api_base_url = emulator.base_url();
    settings.slack.sandbox = true;
    settings.slack.bot_token = Some(SecretString::from(config.bot_token.clone()));
    if settings.admin.token.is_none() {
        settings.admin.token = Some(SecretString::from(format!(
            "sbx-{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )));
    }
    if settings.slack.signing_secret.is_none() {
        settings.slack.signing_secret = Some(SecretString::from(format!(
            "sandbox-{}",
            uuid::Uuid::new_v4().simple()
        )));
    }
    Ok(emulator)
}

pub use crate::config::settings::redact_url;
