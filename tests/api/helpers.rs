//! Test harness: each test gets its own database (a SQLite file, or a fresh PostgreSQL
//! database when PULSELOOP_TEST_DATABASE_URL is set), its own Slack emulator on 127.0.0.1,
//! the real app on a random port, and a manual clock.

use chrono::{DateTime, Duration, TimeZone, Utc};
use pulseloop::clock::{ManualClock, SharedClock};
use pulseloop::config::Settings;
use pulseloop::http::state::AppState;
use pulseloop::scheduler::TickReport;
use pulseloop::slack::outbound::{OutboxWorker, StepOutcome};
use pulseloop::startup::Application;
use pulseloop::storage::outbox::NewOutboxMessage;
use pulseloop::storage::Store;
use secrecy::SecretString;
use serde_json::{json, Value};
use slack_emulator::{
    EmulatedMessage, EmulatedUser, Emulator, EmulatorConfig, RateLimits, SignOptions, SlackPeer,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SIGNING_SECRET: &str = "test-signing-secret-0123456789";
pub const BOT_TOKEN: &str = "xoxb-test-token";
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// A throw-away database, dropped with the last handle.
pub struct TestDb {
    pub url: String,
    postgres: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new() -> Arc<TestDb> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        match std::env::var("PULSELOOP_TEST_DATABASE_URL") {
            Ok(admin_url) if admin_url.starts_with("postgres") => {
                let name = format!("pulseloop_test_{}", uuid::Uuid::new_v4().simple());
                let admin = sqlx::PgPool::connect(&admin_url)
                    .await
                    .expect("PULSELOOP_TEST_DATABASE_URL must reach PostgreSQL");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&admin)
                    .await
                    .expect("create test database");
                admin.close().await;
                let base = admin_url
                    .rsplit_once('/')
                    .map(|(b, _)| b)
                    .unwrap_or(&admin_url);
                Arc::new(TestDb {
                    url: format!("{base}/{name}"),
                    postgres: Some((admin_url.clone(), name)),
                    _dir: None,
                })
            }
            _ => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Arc::new(TestDb {
                    url,
                    postgres: None,
                    _dir: Some(dir),
                })
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.postgres.take() {
            // Drop runs outside any runtime guarantee: use a thread with its own runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        if let Ok(admin) = sqlx::PgPool::connect(&admin_url).await {
                            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            )))
                            .execute(&admin)
                            .await;
                            admin.close().await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

/// Monday 2027-01-04 08:00 UTC: a fixed, ordinary instant.
pub fn default_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 4, 8, 0, 0).unwrap()
}

/// Sunday 2027-01-03 12:00 UTC, the day before the weekly pulse.
pub fn sunday_noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 3, 12, 0, 0).unwrap()
}

/// 10:00 Monday 4 January in Berlin, when the weekly pulse fires.
pub fn monday_ten_berlin() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 4, 9, 0, 0).unwrap()
}

type SettingsTweak = Box<dyn FnOnce(&mut Settings) + Send>;

pub struct TestAppBuilder {
    db: Option<Arc<TestDb>>,
    emulator: Option<Emulator>,
    programs: Vec<(String, String)>,
    users: Vec<EmulatedUser>,
    now: DateTime<Utc>,
    clock: Option<ManualClock>,
    workers: usize,
    max_attempts: u32,
    admin_token: bool,
    tweak: Option<SettingsTweak>,
}

impl Default for TestAppBuilder {
    fn default() -> Self {
        Self {
            db: None,
            emulator: None,
            programs: Vec::new(),
            users: Vec::new(),
            now: default_now(),
            clock: None,
            workers: 0,
            max_attempts: 8,
            admin_token: true,
            tweak: None,
        }
    }
}

impl TestAppBuilder {
    /// Another instance of an app: the same database, Slack and clock (a second replica).
    pub fn sharing(db: &Arc<TestDb>, emulator: &Emulator, clock: &ManualClock) -> Self {
        Self::default()
            .db(db.clone())
            .emulator(emulator.clone())
            .clock(clock.clone())
    }
    pub fn db(mut self, db: Arc<TestDb>) -> Self {
        self.db = Some(db);
        self
    }
    pub fn emulator(mut self, e: Emulator) -> Self {
        self.emulator = Some(e);
        self
    }
    pub fn program(mut self, file: &str, toml: &str) -> Self {
        self.programs.push((file.to_string(), toml.to_string()));
        self
    }
    /// A user of the emulated workspace, added before the app starts.
    pub fn user(mut self, id: &str, tz: &str) -> Self {
        self.users.push(EmulatedUser::new(id, tz));
        self
    }
    pub fn now(mut self, at: DateTime<Utc>) -> Self {
        self.now = at;
        self
    }
    pub fn clock(mut self, clock: ManualClock) -> Self {
        self.clock = Some(clock);
        self
    }
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }
    /// Changes settings after the harness set its own (timeouts, limits…).
    pub fn settings(mut self, f: impl FnOnce(&mut Settings) + Send + 'static) -> Self {
        self.tweak = Some(Box::new(f));
        self
    }
    pub fn without_admin_token(mut self) -> Self {
        self.admin_token = false;
        self
    }

    pub async fn spawn(self) -> TestApp {
        let db = match self.db {
            Some(db) => db,
            None => TestDb::new().await,
        };
        let emulator = match self.emulator {
            Some(e) => e,
            None => start_emulator().await,
        };
        for user in self.users {
            emulator.add_user(user);
        }
        let config_dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(config_dir.path().join("programs")).unwrap();
        for (file, text) in &self.programs {
            std::fs::write(config_dir.path().join("programs").join(file), text).unwrap();
        }
        let mut settings = Settings {
            config_dir: config_dir.path().to_path_buf(),
            ..Settings::default()
        };
        settings.server.bind = "127.0.0.1:0".into();
        settings.server.shutdown_grace_seconds = 5;
        settings.database.url = db.url.clone();
        settings.database.max_connections = 5;
        settings.slack.api_base_url = emulator.base_url();
        settings.slack.bot_token = Some(SecretString::from(BOT_TOKEN));
        settings.slack.signing_secret = Some(SecretString::from(SIGNING_SECRET));
        settings.slack.request_timeout_seconds = 2;
        settings.outbox.workers = self.workers;
        settings.outbox.max_attempts = self.max_attempts;
        settings.outbox.backoff_base_ms = 200;
        settings.outbox.poll_interval_ms = 20;
        settings.scheduler.enabled = false;
        if self.admin_token {
            settings.admin.token = Some(SecretString::from(ADMIN_TOKEN));
        }
        if let Some(tweak) = self.tweak {
            tweak(&mut settings);
        }
        let clock = self.clock.unwrap_or_else(|| ManualClock::new(self.now));
        let shared: SharedClock = Arc::new(clock.clone());
        let app = Application::build(settings, shared)
            .await
            .expect("app builds");
        let addr = app.addr();
        let state = app.state().clone();
        let worker = app.outbox_worker();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = stop_rx.await;
            })
            .await
        });
        let base_url = format!("http://{addr}");
        let peer = emulator.peer(&base_url, SIGNING_SECRET);
        TestApp {
            base_url,
            store: state.store.clone(),
            state,
            clock,
            emulator,
            peer,
            worker,
            db,
            config_dir,
            http: reqwest::Client::new(),
            stop: Some(stop_tx),
            handle: Some(handle),
        }
    }
}

/// Two instances made by `builder`, spawned one after the other.
pub async fn spawn_two(builder: impl Fn() -> TestAppBuilder) -> (TestApp, TestApp) {
    let a = builder().spawn().await;
    let b = builder().spawn().await;
    (a, b)
}

pub async fn start_emulator() -> Emulator {
    let config = EmulatorConfig {
        bot_token: BOT_TOKEN.to_string(),
        limits: RateLimits::unlimited(),
        ..EmulatorConfig::default()
    };
    Emulator::start(config).await.expect("emulator starts")
}

pub const FORM: &str = "application/x-www-form-urlencoded";

/// The form body Slack posts for `/pulse <text>` typed by `user`.
pub fn command_form(user: &str, text: &str, trigger_id: Option<&str>) -> Vec<u8> {
    let mut fields = vec![
        ("command", "/pulse"),
        ("text", text),
        ("user_id", user),
        ("team_id", "T0TEST"),
        ("channel_id", "D0TEST"),
        ("response_url", "https://hooks.slack.com/commands/T0/1/x"),
    ];
    if let Some(trigger_id) = trigger_id {
        fields.push(("trigger_id", trigger_id));
    }
    serde_urlencoded::to_string(fields).unwrap().into_bytes()
}

fn is_top_level_dm(m: &EmulatedMessage) -> bool {
    m.thread_ts.is_none() && m.ephemeral_for.is_none()
}

/// The emulator reads `clock` for its timestamps from now on.
pub fn emulator_follows(emulator: &Emulator, clock: &ManualClock) {
    let clock = clock.clone();
    emulator.set_clock(move || {
        use pulseloop::clock::Clock;
        clock.now()
    });
}

/// A DM to `user` for the outbox, keyed `key` (its message key too).
pub fn outbox_dm(key: &str, user: &str, text: &str) -> NewOutboxMessage {
    let mut msg = NewOutboxMessage::new(
        key,
        "chat.postMessage",
        json!({ "channel": user, "text": text }),
    );
    msg.channel_key = Some(user.to_string());
    msg.message_key = Some(key.to_string());
    msg
}

pub struct TestApp {
    pub base_url: String,
    pub store: Store,
    pub state: AppState,
    pub clock: ManualClock,
    pub emulator: Emulator,
    pub peer: SlackPeer,
    pub worker: OutboxWorker,
    pub db: Arc<TestDb>,
    pub config_dir: tempfile::TempDir,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    TestAppBuilder::default().spawn().await
}

impl TestApp {
    pub fn now(&self) -> DateTime<Utc> {
        use pulseloop::clock::Clock;
        self.clock.now()
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// Sets the clock, runs the scheduler and sends what is due.
    pub async fn run_at(&self, at: DateTime<Utc>) {
        self.clock.set(at);
        self.tick().await;
        self.drain_outbox().await;
    }

    /// Runs the scheduler at 10:00 Monday Berlin and sends the DMs (the weekly pulse).
    pub async fn send_monday_pulse(&self) {
        self.run_at(monday_ten_berlin()).await;
    }

    /// The emulator stamps messages with the app's clock, as Slack and a production bot share
    /// wall-clock time.
    pub fn slack_shares_clock(&self) {
        emulator_follows(&self.emulator, &self.clock);
    }

    /// The first DM posted to `user` (not a thread reply, not an ephemeral notice).
    pub fn first_dm(&self, user: &str) -> EmulatedMessage {
        self.emulator
            .dm_messages(user)
            .into_iter()
            .find(is_top_level_dm)
            .expect("a DM was posted")
    }

    /// How many DMs `user` got (not thread replies, not ephemeral notices).
    pub fn dm_count(&self, user: &str) -> usize {
        self.emulator
            .dm_messages(user)
            .iter()
            .filter(|m| is_top_level_dm(m))
            .count()
    }

    /// Asserts that a COUNT query over what is stored gives `expected`.
    pub async fn assert_count(&self, sql: &'static str, expected: i64) {
        assert_eq!(self.count(sql).await, expected, "{sql}");
    }

    /// Asserts each `(COUNT query, expected)` in turn.
    pub async fn assert_counts(&self, expected: &[(&'static str, i64)]) {
        for (sql, n) in expected {
            self.assert_count(sql, *n).await;
        }
    }

    /// Like [`TestApp::assert_count`], saying why `expected` is right.
    pub async fn assert_count_because(&self, sql: &'static str, expected: i64, why: &str) {
        assert_eq!(self.count(sql).await, expected, "{why} ({sql})");
    }

    /// Signed with the app's clock, as Slack would at that instant.
    pub fn sign_now(&self) -> SignOptions {
        SignOptions {
            timestamp: Some(self.now().timestamp()),
            ..SignOptions::default()
        }
    }

    pub async fn post_signed(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
        opts: SignOptions,
    ) -> reqwest::Response {
        self.peer
            .send_signed(path, content_type, body.to_vec(), opts)
            .await
            .expect("request reaches the app")
    }

    /// An event signed as `opts` says (wrong secrets, old timestamps, retries…).
    pub async fn send_event_with(&self, body: &Value, opts: SignOptions) -> reqwest::Response {
        self.post_signed(
            "/slack/events",
            "application/json",
            body.to_string().as_bytes(),
            opts,
        )
        .await
    }

    pub async fn send_event(&self, body: &Value) -> reqwest::Response {
        self.post_signed(
            "/slack/events",
            "application/json",
            body.to_string().as_bytes(),
            self.sign_now(),
        )
        .await
    }

    pub async fn send_interaction(&self, payload: &Value) -> reqwest::Response {
        let form = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        self.post_signed(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            form.as_bytes(),
            self.sign_now(),
        )
        .await
    }

    /// `user` clicks "confirm" on the opt-out question in `channel`; Slack gets a 200.
    pub async fn confirm_optout(&self, user: &str, channel: &str) {
        let click = self.peer.block_actions(
            user,
            channel,
            "1700000000.000100",
            "optout_confirm",
            "optout",
            "confirm",
        );
        assert_eq!(self.send_interaction(&click).await.status(), 200);
    }

    pub async fn send_command(&self, user: &str, text: &str) -> reqwest::Response {
        self.post_signed(
            "/slack/commands",
            FORM,
            &command_form(
                user,
                text,
                Some("13345224609.738474920.8088930838d88f008e0"),
            ),
            self.sign_now(),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base_url))
            .send()
            .await
            .expect("GET")
    }

    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base_url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("GET")
    }

    pub async fn admin_post(&self, path: &str) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("POST")
    }

    /// Puts a DM to `user` in the outbox now (see [`outbox_dm`]).
    pub async fn enqueue_dm(&self, key: &str, user: &str, text: &str) {
        self.store
            .enqueue(&outbox_dm(key, user, text), self.now())
            .await
            .expect("enqueued");
    }

    /// One outbox step.
    pub async fn step(&self) -> StepOutcome {
        self.worker.run_once().await.expect("outbox step")
    }

    /// Runs outbox steps until nothing is due at the current instant.
    pub async fn drain_outbox(&self) -> StepOutcome {
        let mut total = StepOutcome::default();
        for _ in 0..1000 {
            let o = self.step().await;
            total.claimed += o.claimed;
            total.sent += o.sent;
            total.failed += o.failed;
            total.retried += o.retried;
            total.deferred += o.deferred;
            if o.claimed == 0 || o.claimed == o.deferred {
                break;
            }
        }
        total
    }

    pub async fn tick(&self) -> TickReport {
        self.state
            .scheduler
            .clone()
            .tick()
            .await
            .expect("scheduler tick")
    }

    pub fn add_user(&self, id: &str, tz: &str) {
        self.emulator.add_user(EmulatedUser::new(id, tz));
    }

    pub fn programs_dir(&self) -> PathBuf {
        self.config_dir.path().join("programs")
    }

    /// Stops the app like SIGTERM would.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        count(&self.db.url, sql).await
    }
}

/// Runs `$body` with `$pool` bound to a fresh pool on the test database (a `PgPool` or a
/// `SqlitePool`, as the URL says), closes the pool and yields what `$body` gave. The body is
/// written once and compiled for each database.
macro_rules! with_test_pool {
    ($url:expr, |$pool:ident| $body:expr) => {{
        let url: &str = $url;
        if url.starts_with("postgres") {
            let $pool = sqlx::PgPool::connect(url).await.unwrap();
            let out = $body;
            $pool.close().await;
            out
        } else {
            let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
            let $pool = sqlx::SqlitePool::connect_with(opts.create_if_missing(true))
                .await
                .unwrap();
            let out = $body;
            $pool.close().await;
            out
        }
    }};
}
pub(crate) use with_test_pool;

/// Runs a COUNT query directly against the test database (assertions see what is stored,
/// not what the app reports).
pub async fn count(url: &str, sql: &'static str) -> i64 {
    with_test_pool!(url, |pool| {
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        n
    })
}

/// Runs one SQL statement directly against the test database (to inject faults).
pub async fn exec(url: &str, sql: &'static str) {
    exec_all(url, &[sql]).await
}

/// Runs statements in order, straight against the test database (test-only tables and
/// triggers, rows written as an older version would have).
pub async fn exec_all(url: &str, statements: &[&str]) {
    with_test_pool!(url, |pool| {
        for s in statements {
            sqlx::query(sqlx::AssertSqlSafe(s.to_string()))
                .execute(&pool)
                .await
                .unwrap();
        }
    })
}

/// A stored cell as JSON, whatever its column type, on either database.
trait CellAsJson: sqlx::Row {
    fn cell(&self, i: usize) -> Value;

    fn as_json(&self) -> BTreeMap<String, Value> {
        use sqlx::Column;
        self.columns()
            .iter()
            .map(|c| (c.name().to_string(), self.cell(c.ordinal())))
            .collect()
    }
}

impl CellAsJson for sqlx::postgres::PgRow {
    fn cell(&self, i: usize) -> Value {
        use sqlx::Row;
        if let Ok(v) = self.try_get::<Option<i64>, _>(i) {
            return json!(v);
        }
        if let Ok(v) = self.try_get::<Option<i32>, _>(i) {
            return json!(v);
        }
        if let Ok(v) = self.try_get::<Option<f64>, _>(i) {
            return json!(v);
        }
        if let Ok(v) = self.try_get::<Option<bool>, _>(i) {
            return json!(v);
        }
        if let Ok(v) = self.try_get::<Option<String>, _>(i) {
            return json!(v);
        }
        json!("<undecodable>")
    }
}

impl CellAsJson for sqlx::sqlite::SqliteRow {
    fn cell(&self, i: usize) -> Value {
        use sqlx::Row;
        if let Ok(v) = self.try_get::<Option<i64>, _>(i) {
            return json!(v);
        }
        if let Ok(v) = self.try_get::<Option<f64>, _>(i) {
            return json!(v);
        }
        if let Ok(v) = self.try_get::<Option<String>, _>(i) {
            return json!(v);
        }
        if let Ok(v) = self.try_get::<Option<Vec<u8>>, _>(i) {
            return json!(v.map(|b| String::from_utf8_lossy(&b).to_string()));
        }
        json!("<undecodable>")
    }
}

/// Every row of a query, as JSON values (column name → value), on either database.
pub async fn rows(url: &str, sql: &str) -> Vec<BTreeMap<String, Value>> {
    with_test_pool!(url, |pool| sqlx::query(sqlx::AssertSqlSafe(
        sql.to_string()
    ))
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(CellAsJson::as_json)
    .collect::<Vec<_>>())
}

/// Makes every UPDATE of `members` fail with a database error, until [`heal_members`].
pub async fn break_member_updates(url: &str) {
    if url.starts_with("postgres") {
        exec(
            url,
            "CREATE FUNCTION injected_failure() RETURNS trigger AS $$ \
             BEGIN RAISE EXCEPTION 'injected failure in table members'; END $$ LANGUAGE plpgsql",
        )
        .await;
        exec(
            url,
            "CREATE TRIGGER injected_failure BEFORE UPDATE ON members \
             FOR EACH ROW EXECUTE FUNCTION injected_failure()",
        )
        .await;
    } else {
        exec(
            url,
            "CREATE TRIGGER injected_failure BEFORE UPDATE ON members \
             BEGIN SELECT RAISE(ABORT, 'injected failure in table members'); END",
        )
        .await;
    }
}

pub async fn heal_members(url: &str) {
    if url.starts_with("postgres") {
        exec(url, "DROP TRIGGER injected_failure ON members").await;
    } else {
        exec(url, "DROP TRIGGER injected_failure").await;
    }
}

/// What varies between two runs of the same scenario, folded so that nothing else may differ:
/// long hex runs (uuids, keys) become `#`, Slack timestamps `<ts>`, and with `fold_numbers`
/// any other run of 4+ digits (ports, elapsed times in logs) `<n>`.
pub fn normalise_run(s: &str, fold_numbers: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        // win:<32 hex> and other long hex runs (uuids) → '#'
        if chars[i].is_ascii_hexdigit() {
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_hexdigit() || chars[j] == '-') {
                j += 1;
            }
            if j - i >= 32 {
                out.push('#');
                i = j;
                continue;
            }
        }
        // Slack message timestamps ("1800000000.000100") come from the emulator's clock.
        if chars[i].is_ascii_digit() {
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
                j += 1;
            }
            let run: String = chars[i..j].iter().collect();
            if run.contains('.') && run.len() >= 12 {
                out.push_str("<ts>");
            } else if fold_numbers && run.len() >= 4 && !run.contains('.') {
                // ports, elapsed times and similar in logs
                out.push_str("<n>");
            } else {
                out.push_str(&run);
            }
            i = j;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}
