//! `pulseloop demo`: the whole loop in one process, in about a minute, with no Slack token.
//!
//! A fresh SQLite database in the output folder, the Slack emulator (the crate the sandbox and
//! the tests use) on 127.0.0.1, the service itself on a random port, and a [`ManualClock`]
//! that the demo moves forward in half-hour steps, running the scheduler's tick and the
//! outbox at each step, for a few weeks of the example program (`cast`).
//!
//! Simulated people answer through the real paths: they click the buttons of the DMs the
//! emulator received and submit the survey modal, as signed `block_actions` and
//! `view_submission` POSTs to the service's own `/slack/interactions`; some answer late
//! (after the reminder), some never. A member's message is celebrated with the "Celebrate as
//! a small win" shortcut, the owner records an action with `/pulse action`, and the weekly
//! digest goes to the sponsor channel with its chart. Everything the emulator received is
//! written to the folder (docs/demo.md).

mod cast;
mod people;
mod record;

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use secrecy::SecretString;
use serde_json::{json, Value};
use slack_emulator::{
    EmulatedUser, Emulator, EmulatorConfig, RateLimits, RecordedCall, SlackPeer, ViewKind,
};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::clock::{Clock, ManualClock};
use crate::config::Settings;
use crate::http::state::AppState;
use crate::scheduler::TickReport;
use crate::slack::outbound::OutboxWorker;
use crate::startup::Application;
use cast::{Person, OWNER, PEOPLE, SPONSOR_CHANNEL, SPONSOR_CHANNEL_NAME};
use record::{Kind, Payload, Transcript};

/// How far the clock moves between two scheduler ticks.
const STEP_MINUTES: i64 = 30;

/// The most weeks one demo simulates.
pub const MAX_WEEKS: u32 = 12;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot use {} as the demo's output folder: {reason}", path.display())]
    Folder { path: PathBuf, reason: String },
    #[error("cannot write {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
    #[error("the demo could not start pulseloop: {0:#}")]
    Start(anyhow::Error),
    #[error("the demo stopped: {0}")]
    Step(String),
    #[error("the demo ran, but {0}; see the transcript in {1}")]
    Incomplete(String, PathBuf),
}

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The folder to write into (created; must be empty). `None`: `./pulseloop-demo-<timestamp>`.
    pub out: Option<PathBuf>,
    pub weeks: u32,
    pub seed: u64,
    /// Print the transcript while it happens.
    pub echo: bool,
}

/// What a finished demo wrote.
#[derive(Debug, Clone)]
pub struct DemoReport {
    pub folder: PathBuf,
    /// `(file, what it is)`, in the order the README lists them.
    pub files: Vec<(String, String)>,
    pub elapsed: std::time::Duration,
}

/// How many of each thing happened (the transcript's closing lines and the demo's checks).
#[derive(Debug, Default, Clone)]
struct Tally {
    pulses: usize,
    answers: usize,
    reminders: usize,
    win_asks: usize,
    shoutouts: usize,
    action_dms: usize,
    digests: usize,
    charts: usize,
    refused: usize,
}

/// Something a simulated person does at a given moment.
#[derive(Debug, Clone)]
enum Act {
    /// Opens the survey modal from the DM at (`channel`, `ts`) and submits it.
    Answer {
        person: &'static Person,
        channel: String,
        ts: String,
        survey: &'static str,
    },
    /// Clicks "Share it with my name" in the consent ask at (`channel`, `ts`).
    Consent {
        person: &'static Person,
        channel: String,
        ts: String,
    },
    /// Uses the "Celebrate as a small win" shortcut on `author`'s message in #general.
    Shortcut {
        invoker: &'static Person,
        author: &'static Person,
        text: &'static str,
    },
    /// The owner types `/pulse action <text>`.
    Action { text: &'static str },
}

#[derive(Debug, Clone)]
struct Planned {
    at: DateTime<Utc>,
    seq: u64,
    act: Act,
}

struct Demo {
    state: AppState,
    worker: OutboxWorker,
    clock: ManualClock,
    emulator: Emulator,
    peer: SlackPeer,
    tz: Tz,
    rng: fastrand::Rng,
    week0: DateTime<Utc>,
    weeks: u32,
    plans: Vec<Planned>,
    seq: u64,
    /// DMs someone has planned to answer (channel, ts): a reminder does not plan it twice.
    planned_dms: HashSet<(String, String)>,
    transcript: Transcript,
    payloads: Vec<Payload>,
    tally: Tally,
    /// Reads the digests the service recorded (the same SQLite file, read-only).
    reader: sqlx::SqlitePool,
    digests: Vec<Value>,
}

/// Runs the demo; the transcript goes to standard output as it happens when `echo` is set.
pub async fn run(options: DemoOptions) -> Result<DemoReport, DemoError> {
    let started = std::time::Instant::now();
    let weeks = options.weeks.clamp(1, MAX_WEEKS);
    let folder = record::prepare_folder(options.out.as_deref(), Utc::now())?;
    let tz = chrono_tz::Europe::Berlin;
    let start_day = cast::start_date();
    record::write(
        &folder
            .join("config")
            .join("programs")
            .join(cast::PROGRAM_FILE),
        cast::program_toml(start_day),
    )?;
    let week0 = tz
        .from_local_datetime(&start_day.and_time(chrono::NaiveTime::MIN))
        .single()
        .ok_or_else(|| DemoError::Step("the start date has no midnight in Berlin".into()))?
        .with_timezone(&Utc);
    // Sunday noon before the first Monday: the service's first start (nothing before it is
    // caught up), before Auckland's Monday 10:00.
    let clock = ManualClock::new(week0 - Duration::hours(12));

    let emulator = start_emulator(&clock).await?;
    let secret = format!("demo-{}", uuid::Uuid::new_v4().simple());
    let db_path = folder.join("pulseloop-demo.db");
    let db_url = format!("sqlite://{}", db_path.display());
    let settings = demo_settings(&folder, &db_url, &emulator, &secret);
    let app = Application::build(settings, Arc::new(clock.clone()))
        .await
        .map_err(DemoError::Start)?;
    let state = app.state().clone();
    let worker = app.outbox_worker();
    let base_url = app.base_url();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stop_rx.await;
    }));
    let peer = {
        let clock = clock.clone();
        emulator
            .peer(&base_url, &secret)
            .with_clock(move || clock.now())
    };
    let reader = open_reader(&db_url).await?;
    let mut demo = Demo {
        state,
        worker,
        clock,
        emulator: emulator.clone(),
        peer,
        tz,
        rng: fastrand::Rng::with_seed(options.seed),
        week0,
        weeks,
        plans: Vec::new(),
        seq: 0,
        planned_dms: HashSet::new(),
        transcript: Transcript::new(tz, options.echo),
        payloads: Vec::new(),
        tally: Tally::default(),
        reader,
        digests: Vec::new(),
    };
    let outcome = demo.simulate(options.seed).await;
    // The reader goes first: the service's last connection then checkpoints the database
    // and removes its -wal and -shm files.
    demo.reader.close().await;
    let _ = stop_tx.send(());
    let _ = server.await;
    let outcome = outcome.and_then(|()| demo.check(&folder));
    let files = demo.write_outputs(&folder, &emulator, started)?;
    emulator.shutdown().await;
    outcome?;
    Ok(DemoReport {
        folder,
        files,
        elapsed: started.elapsed(),
    })
}

/// The emulated workspace: every member with a name in their zone, the owner, the admin,
/// the sponsor channel and #general. Timestamps follow the demo's clock; no rate limits (the
/// service's own limiter still paces its posts, on the demo's clock).
async fn start_emulator(clock: &ManualClock) -> Result<Emulator, DemoError> {
    let config = EmulatorConfig {
        team_id: "T0DEMO".into(),
        team_name: "Demo".into(),
        bot_token: format!("xoxb-demo-{}", uuid::Uuid::new_v4().simple()),
        limits: RateLimits::unlimited(),
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config)
        .await
        .map_err(|e| DemoError::Start(anyhow::anyhow!("cannot start the Slack emulator: {e}")))?;
    {
        let clock = clock.clone();
        emulator.set_clock(move || clock.now());
    }
    for p in PEOPLE.iter().chain([&cast::OWNER, &cast::ADMIN]) {
        let handle = p.name.split(' ').next().unwrap_or(p.name).to_lowercase();
        emulator.add_user(EmulatedUser::new(p.id, p.tz).named(p.name).handle(&handle));
    }
    emulator.add_channel(SPONSOR_CHANNEL, SPONSOR_CHANNEL_NAME, true);
    emulator.add_channel(cast::GENERAL_CHANNEL, cast::GENERAL_CHANNEL_NAME, true);
    Ok(emulator)
}

/// The service's settings: loopback on a random port, the demo's database and program, the
/// emulator as Slack; no background workers or scheduler (the demo runs both at each step).
fn demo_settings(folder: &Path, db_url: &str, emulator: &Emulator, secret: &str) -> Settings {
    let mut settings = Settings {
        config_dir: folder.join("config"),
        ..Settings::default()
    };
    settings.server.bind = "127.0.0.1:0".into();
    settings.server.shutdown_grace_seconds = 5;
    settings.database.url = db_url.to_string();
    settings.database.max_connections = 4;
    settings.slack.api_base_url = emulator.base_url();
    settings.slack.bot_token = Some(SecretString::from(emulator.config().bot_token));
    settings.slack.signing_secret = Some(SecretString::from(secret.to_string()));
    settings.slack.request_timeout_seconds = 5;
    settings.outbox.workers = 0;
    settings.scheduler.enabled = false;
    settings.admin.token = None;
    settings
}

async fn open_reader(db_url: &str) -> Result<sqlx::SqlitePool, DemoError> {
    use std::str::FromStr;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(db_url)
        .map_err(|e| DemoError::Start(e.into()))?
        .read_only(true);
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|e| DemoError::Start(anyhow::anyhow!("cannot read the demo database: {e}")))
}

fn failed(what: &str) -> impl FnOnce(String) -> DemoError + '_ {
    move |e| DemoError::Step(format!("{what}: {e}"))
}

impl Demo {
    async fn simulate(&mut self, seed: u64) -> Result<(), DemoError> {
        let last = self.week0 + Duration::days(i64::from(self.weeks) * 7 - 2);
        self.transcript.note(format!(
            "pulseloop demo: {} weeks of the Leadership Coaching Pilot on an accelerated clock (seed {seed}).",
            self.weeks
        ));
        self.transcript.note(format!(
            "{} members in Berlin, New York, Kolkata, London and Auckland; owner {}; sponsors in #{}.",
            PEOPLE.len(),
            OWNER.name,
            SPONSOR_CHANNEL_NAME
        ));
        self.transcript.note(
            "Slack is the built-in emulator: nothing leaves this machine. Times are Berlin time (the program's zone); a member's own time is in brackets.",
        );
        self.transcript.note(
            "Answers are shown as each simulated person gives them; pulseloop itself unlinks the weekly pulse's anonymous answers from names when a round closes.",
        );
        self.plan_story();
        let step = Duration::minutes(STEP_MINUTES);
        let mut next_tick = self.clock.now();
        loop {
            if let Some(i) = self.next_plan().filter(|&i| self.plans[i].at <= next_tick) {
                let planned = self.plans.swap_remove(i);
                if planned.at > self.clock.now() {
                    self.clock.set(planned.at);
                }
                self.perform(planned.act).await?;
                self.settle().await?;
                continue;
            }
            if next_tick > last {
                break;
            }
            self.clock.set(next_tick);
            let report = self
                .state
                .scheduler
                .clone()
                .tick()
                .await
                .map_err(|e| failed("the scheduler's tick failed")(e.to_string()))?;
            self.on_tick(&report);
            self.settle().await?;
            next_tick += step;
        }
        self.closing_lines();
        Ok(())
    }

    /// The moments that are not answers: a win celebrated on the first Tuesday, and the
    /// owner's action on the first Thursday, after the first weekly round closed.
    fn plan_story(&mut self) {
        let at = |day: i64, hour: u32, minute: u32| {
            let local = (self.week0.with_timezone(&self.tz) + Duration::days(day))
                .date_naive()
                .and_hms_opt(hour, minute, 0)
                .unwrap_or_default();
            self.tz
                .from_local_datetime(&local)
                .single()
                .map_or(self.week0, |t| t.with_timezone(&Utc))
        };
        let (tuesday, thursday) = (at(1, 14, 10), at(3, 11, 0));
        self.plan(
            tuesday,
            Act::Shortcut {
                invoker: &PEOPLE[2],
                author: &PEOPLE[5],
                text: "Ran my first skip-level 1:1s this week: three people said it was the first time anyone asked about their goals.",
            },
        );
        self.plan(
            thursday,
            Act::Action {
                text: "We moved the group sessions to Tuesday mornings and added a 15-minute delegation clinic, as many of you asked.",
            },
        );
    }

    fn plan(&mut self, at: DateTime<Utc>, act: Act) {
        self.seq += 1;
        self.plans.push(Planned {
            at,
            seq: self.seq,
            act,
        });
    }

    /// The index of the earliest planned act (ties: the first planned).
    fn next_plan(&self) -> Option<usize> {
        self.plans
            .iter()
            .enumerate()
            .min_by_key(|(_, p)| (p.at, p.seq))
            .map(|(i, _)| i)
    }

    /// Sends what the outbox holds now; a post paced by the per-channel limit goes a
    /// couple of seconds later. Then reads what the emulator received.
    async fn settle(&mut self) -> Result<(), DemoError> {
        // A post the rate budget holds back is due a few seconds later: move the clock on
        // by seconds until nothing is held back (two minutes at most).
        for _ in 0..60 {
            let mut deferred = 0;
            for _ in 0..1000 {
                let step = self
                    .worker
                    .run_once()
                    .await
                    .map_err(|e| failed("the outbox failed")(e.to_string()))?;
                deferred += step.deferred;
                if step.claimed == 0 || step.claimed == step.deferred {
                    break;
                }
            }
            if deferred == 0 {
                break;
            }
            self.clock.advance(Duration::seconds(2));
        }
        self.observe().await
    }

    /// The Web API calls the emulator received since the last look, in order.
    async fn observe(&mut self) -> Result<(), DemoError> {
        // Nothing calls Slack outside the demo's own awaits (no workers, no scheduler loop),
        // so reading then clearing loses nothing.
        let calls = self.emulator.calls();
        self.emulator.clear_calls();
        let mut action_recipients = Vec::new();
        for call in calls {
            if let Some(recipient) = self.on_call(call).await? {
                action_recipients.push(recipient);
            }
        }
        if !action_recipients.is_empty() {
            self.transcript.at(
                self.clock.now(),
                format!(
                    "→ “You said, we did” DM to {} members: {}",
                    action_recipients.len(),
                    action_recipients.join(", ")
                ),
            );
        }
        Ok(())
    }

    /// Records one call; returns the recipient's name for a "you said, we did" DM (those are
    /// listed together).
    async fn on_call(&mut self, call: RecordedCall) -> Result<Option<String>, DemoError> {
        const KEPT: [&str; 8] = [
            "chat.postMessage",
            "chat.update",
            "chat.postEphemeral",
            "views.open",
            "views.update",
            "views.push",
            "views.publish",
            "files.completeUploadExternal",
        ];
        if !KEPT.contains(&call.method.as_str()) {
            return Ok(None);
        }
        let p = &call.params;
        let ok = call.response["ok"] == json!(true);
        let kind = classify(&call.method, p);
        let channel = p["channel"]
            .as_str()
            .or_else(|| p["channel_id"].as_str())
            .or_else(|| p["user_id"].as_str())
            .unwrap_or_default()
            .to_string();
        self.payloads.push(Payload {
            kind,
            method: call.method.clone(),
            at: call.at,
            channel: channel.clone(),
            params: p.clone(),
            ok,
        });
        if !ok {
            self.tally.refused += 1;
            self.transcript.at(
                call.at,
                format!(
                    "! Slack refused {} to {channel}: {}",
                    call.method,
                    call.response["error"].as_str().unwrap_or("unknown error")
                ),
            );
            return Ok(None);
        }
        let conversation = call.response["channel"]
            .as_str()
            .unwrap_or(&channel)
            .to_string();
        let ts = call.response["ts"].as_str().unwrap_or_default().to_string();
        // DMs are posted to a user id or to their DM conversation (`D…`).
        let person = PEOPLE
            .iter()
            .find(|m| m.id == channel || slack_emulator::dm_channel_id(m.id) == channel);
        match (kind, person) {
            (Kind::Pulse, Some(person)) => {
                self.tally.pulses += 1;
                let survey = cast::survey_of_text(p["text"].as_str().unwrap_or(""));
                self.transcript.at(
                    call.at,
                    format!(
                        "→ {} {}: {survey} DM",
                        person.name,
                        self.their_time(person, call.at)
                    ),
                );
                if let Some(minutes) = people::answers_the_dm(&mut self.rng, person) {
                    self.plan_answer(person, &conversation, &ts, survey, call.at, minutes);
                }
            }
            (Kind::Reminder, Some(person)) => {
                self.tally.reminders += 1;
                self.transcript.at(
                    call.at,
                    format!(
                        "↻ reminder → {} {}",
                        person.name,
                        self.their_time(person, call.at)
                    ),
                );
                let dm_ts = p["thread_ts"].as_str().unwrap_or_default().to_string();
                let survey = self.survey_of_dm(&conversation, &dm_ts);
                if !self
                    .planned_dms
                    .contains(&(conversation.clone(), dm_ts.clone()))
                {
                    if let Some(minutes) = people::answers_the_reminder(&mut self.rng, person) {
                        self.plan_answer(person, &conversation, &dm_ts, survey, call.at, minutes);
                    }
                }
            }
            (Kind::WinAsk, Some(person)) => {
                self.tally.win_asks += 1;
                self.transcript.at(
                    call.at,
                    format!(
                        "→ {}: “May we celebrate your message as a small win?” (consent asked by DM)",
                        person.name
                    ),
                );
                let minutes = self.rng.i64(10..=60);
                self.plan(
                    call.at + Duration::minutes(minutes),
                    Act::Consent {
                        person,
                        channel: conversation,
                        ts,
                    },
                );
            }
            (Kind::Action, Some(person)) => {
                self.tally.action_dms += 1;
                return Ok(Some(person.name.to_string()));
            }
            (Kind::Win, _) => {
                self.tally.shoutouts += 1;
                let text = readable(p["text"].as_str().unwrap_or(""));
                self.transcript
                    .at(call.at, format!("★ #{SPONSOR_CHANNEL_NAME}: {text}"));
            }
            (Kind::Digest, _) => {
                self.tally.digests += 1;
                self.on_digest(call.at).await?;
            }
            (Kind::Chart, _) => {
                self.tally.charts += 1;
                let title = p["files"][0]["title"]
                    .as_str()
                    .or_else(|| p["files"].as_str())
                    .unwrap_or("trend chart");
                self.transcript.at(
                    call.at,
                    format!("▣ chart uploaded to #{SPONSOR_CHANNEL_NAME}: {title}"),
                );
            }
            _ => {}
        }
        Ok(None)
    }

    /// The digest just posted, as the service recorded it: headline and numbers.
    async fn on_digest(&mut self, at: DateTime<Utc>) -> Result<(), DemoError> {
        let content: Option<String> = sqlx::query_scalar(
            "SELECT content FROM digests WHERE program_id = $1 ORDER BY period_start DESC LIMIT 1",
        )
        .bind(cast::PROGRAM_ID)
        .fetch_optional(&self.reader)
        .await
        .map_err(|e| failed("cannot read the digest")(e.to_string()))?;
        let Some(digest) = content.and_then(|c| serde_json::from_str::<Value>(&c).ok()) else {
            return Ok(());
        };
        let mut numbers = vec![format!("answered {}", record::participation(&digest))];
        for m in digest["metrics"].as_array().into_iter().flatten() {
            let label = m["label"].as_str().unwrap_or("");
            match (m["mean"].as_f64(), m["n"].as_i64().unwrap_or(0)) {
                (Some(mean), _) => numbers.push(format!("{label} {mean:.1}")),
                (None, 0) => numbers.push(format!("{label}: not asked this week")),
                (None, _) => numbers.push(format!("{label} hidden (fewer than {})", digest["k"])),
            }
        }
        if let Some(score) = digest["enps"]["score"].as_f64() {
            numbers.push(format!("eNPS {score:+.0}"));
        }
        let wins = digest["wins"].as_array().map_or(0, Vec::len);
        let actions = digest["actions"].as_array().map_or(0, Vec::len);
        numbers.push(format!("{wins} win(s), {actions} action(s)"));
        self.transcript.at(
            at,
            format!(
                "▣ weekly digest → #{SPONSOR_CHANNEL_NAME} ({})\n“{}”\n{}",
                digest["period"]["label"].as_str().unwrap_or(""),
                digest["headline"].as_str().unwrap_or(""),
                numbers.join(" · ")
            ),
        );
        self.digests.push(digest);
        Ok(())
    }

    fn on_tick(&mut self, report: &TickReport) {
        let now = self.clock.now();
        if report.closed > 0 || report.rounds_closed > 0 {
            let mut text = format!(
                "■ window over: {} pulse DM(s) closed, buttons removed",
                report.closed
            );
            if report.rounds_closed > 0 {
                text.push_str(&format!("; {} round(s) closed", report.rounds_closed));
            }
            if report.sealed > 0 {
                text.push_str(&format!(
                    "; {} anonymous round(s) sealed (answers unlinked from names)",
                    report.sealed
                ));
            }
            self.transcript.at(now, text);
        }
    }

    fn plan_answer(
        &mut self,
        person: &'static Person,
        channel: &str,
        ts: &str,
        survey: &'static str,
        from: DateTime<Utc>,
        minutes: i64,
    ) {
        self.planned_dms
            .insert((channel.to_string(), ts.to_string()));
        self.plan(
            from + Duration::minutes(minutes),
            Act::Answer {
                person,
                channel: channel.to_string(),
                ts: ts.to_string(),
                survey,
            },
        );
    }

    /// The survey of the DM at (`channel`, `ts`), from its text.
    fn survey_of_dm(&self, channel: &str, ts: &str) -> &'static str {
        let text = self
            .emulator
            .messages()
            .into_iter()
            .find(|m| m.channel == channel && m.ts == ts)
            .map(|m| m.text)
            .unwrap_or_default();
        cast::survey_of_text(&text)
    }

    /// "(Kolkata, 14:30)": where a member is and their local time at `at`.
    fn their_time(&self, person: &Person, at: DateTime<Utc>) -> String {
        let tz: Tz = person.tz.parse().unwrap_or(self.tz);
        let local = at.with_timezone(&tz);
        let ours = at.with_timezone(&self.tz);
        if local.date_naive() == ours.date_naive() {
            format!("({}, {})", person.city, local.format("%H:%M"))
        } else {
            format!("({}, {})", person.city, local.format("%a %H:%M"))
        }
    }

    async fn perform(&mut self, act: Act) -> Result<(), DemoError> {
        match act {
            Act::Answer {
                person,
                channel,
                ts,
                survey,
            } => self.answer(person, &channel, &ts, survey).await,
            Act::Consent {
                person,
                channel,
                ts,
            } => self.consent(person, &channel, &ts).await,
            Act::Shortcut {
                invoker,
                author,
                text,
            } => self.shortcut(invoker, author, text).await,
            Act::Action { text } => self.action(text).await,
        }
    }

    /// POSTs a signed interaction to the service; its answer body.
    async fn interact(&self, payload: &Value) -> Result<String, DemoError> {
        let response =
            self.peer.send_interaction(payload).await.map_err(|e| {
                failed("cannot reach pulseloop's /slack/interactions")(e.to_string())
            })?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(DemoError::Step(format!(
                "/slack/interactions answered {status}: {body}"
            )));
        }
        Ok(body)
    }

    /// A member clicks "Answer all" in their DM and submits the modal.
    async fn answer(
        &mut self,
        person: &'static Person,
        channel: &str,
        ts: &str,
        survey: &str,
    ) -> Result<(), DemoError> {
        let now = self.clock.now();
        let message = self
            .emulator
            .messages()
            .into_iter()
            .find(|m| m.channel == channel && m.ts == ts);
        let Some((block_id, value)) = message
            .as_ref()
            .and_then(|m| find_button(&m.blocks, crate::pulse::render::ACTION_OPEN_MODAL))
        else {
            self.transcript.at(
                now,
                format!(
                    "  {} went to answer the {survey}, but it had closed",
                    person.name
                ),
            );
            return Ok(());
        };
        let views_before = self.emulator.views().len();
        let click = self.peer.block_actions(
            person.id,
            channel,
            ts,
            crate::pulse::render::ACTION_OPEN_MODAL,
            &block_id,
            &value,
        );
        self.interact(&click).await?;
        let opened = self
            .emulator
            .views()
            .into_iter()
            .skip(views_before)
            .rev()
            .find(|v| v.kind == ViewKind::Modal && v.user.as_deref() == Some(person.id));
        let Some(opened) = opened else {
            self.transcript.at(
                now,
                format!(
                    "  {} clicked “Answer all”, but no survey opened (it had closed)",
                    person.name
                ),
            );
            return Ok(());
        };
        let mut view = opened.view.clone();
        view["id"] = json!(opened.id);
        let blocks = view["blocks"].as_array().cloned().unwrap_or_default();
        let week = ((now - self.week0).num_days().max(0) / 7) as u32;
        let (values, said) = people::fill_modal(&mut self.rng, person, &blocks, week, self.weeks);
        view["state"] = json!({ "values": values });
        let submission = self.peer.view_submission(person.id, &view);
        let body = self.interact(&submission).await?;
        if !body.trim().is_empty() {
            let answer: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            if answer["response_action"] == "errors" {
                return Err(DemoError::Step(format!(
                    "pulseloop refused {}'s answers: {}",
                    person.name, answer["errors"]
                )));
            }
        }
        self.tally.answers += 1;
        let said: Vec<String> = said
            .iter()
            .map(|s| format!("{} {}", s.key.replace('_', " "), s.shown))
            .collect();
        self.transcript.at(
            now,
            format!(
                "← {} answered the {survey}: {}",
                person.name,
                said.join(", ")
            ),
        );
        Ok(())
    }

    /// The author of a celebrated message agrees to share it with their name.
    async fn consent(
        &mut self,
        person: &'static Person,
        channel: &str,
        ts: &str,
    ) -> Result<(), DemoError> {
        let action = "win_consent:named";
        let message = self
            .emulator
            .messages()
            .into_iter()
            .find(|m| m.channel == channel && m.ts == ts);
        let Some((block_id, value)) = message.and_then(|m| find_button(&m.blocks, action)) else {
            return Err(DemoError::Step(format!(
                "the consent ask to {} has no “{action}” button",
                person.name
            )));
        };
        let click = self
            .peer
            .block_actions(person.id, channel, ts, action, &block_id, &value);
        self.interact(&click).await?;
        self.transcript.at(
            self.clock.now(),
            format!("← {} agrees: “Share it with my name”", person.name),
        );
        Ok(())
    }

    /// Someone uses "Celebrate as a small win" on a member's message in #general.
    async fn shortcut(
        &mut self,
        invoker: &'static Person,
        author: &'static Person,
        text: &str,
    ) -> Result<(), DemoError> {
        let now = self.clock.now();
        let form = self
            .peer
            .slash_command(invoker.id, cast::GENERAL_CHANNEL, "");
        let response_url = form
            .iter()
            .find(|(k, _)| k == "response_url")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let message_ts = format!("{}.000100", now.timestamp());
        let payload = json!({
            "type": "message_action",
            "callback_id": crate::slack::protocol::CELEBRATE_WIN_CALLBACK,
            "trigger_id": self.emulator.issue_trigger_id_for(invoker.id),
            "response_url": response_url,
            "message_ts": message_ts,
            "team": { "id": self.emulator.config().team_id, "domain": "demo" },
            "user": { "id": invoker.id, "name": invoker.name },
            "channel": { "id": cast::GENERAL_CHANNEL, "name": cast::GENERAL_CHANNEL_NAME },
            "message": { "type": "message", "ts": message_ts, "user": author.id, "text": text },
        });
        self.transcript.at(
            now,
            format!(
                "{} uses “Celebrate as a small win” on {}'s message in #{}:\n“{text}”",
                invoker.name,
                author.name,
                cast::GENERAL_CHANNEL_NAME
            ),
        );
        self.interact(&payload).await?;
        Ok(())
    }

    /// The owner records what the program changed.
    async fn action(&mut self, text: &str) -> Result<(), DemoError> {
        let typed = format!("action {text}");
        let form =
            self.peer
                .slash_command(OWNER.id, &self.emulator.dm_channel_for(OWNER.id), &typed);
        self.transcript.at(
            self.clock.now(),
            format!("{} types /pulse {typed}", OWNER.name),
        );
        let response = self
            .peer
            .send_command(&form)
            .await
            .map_err(|e| failed("cannot reach pulseloop's /slack/commands")(e.to_string()))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(DemoError::Step(format!(
                "/slack/commands answered {status}: {body}"
            )));
        }
        self.transcript.at(
            self.clock.now(),
            format!(
                "  pulseloop (only {} sees this): {}",
                OWNER.name,
                readable(body["text"].as_str().unwrap_or(""))
            ),
        );
        Ok(())
    }

    fn closing_lines(&mut self) {
        let t = &self.tally;
        let summary = format!(
            "In all: {} pulse DMs, {} answers, {} reminders, {} win consent ask(s), {} win shoutout(s), {} “you said, we did” DMs, {} digests with {} charts.",
            t.pulses, t.answers, t.reminders, t.win_asks, t.shoutouts, t.action_dms, t.digests, t.charts
        );
        self.transcript.note(String::new());
        self.transcript.note(summary);
    }

    /// The demo promises each part of the loop; a part that did not happen is an error.
    fn check(&self, folder: &Path) -> Result<(), DemoError> {
        let t = &self.tally;
        let missing = [
            (t.pulses, "no pulse DM was sent"),
            (t.answers, "nobody answered"),
            (t.reminders, "no reminder was sent"),
            (t.shoutouts, "no small win was posted"),
            (t.action_dms, "no “you said, we did” DM was sent"),
            (t.digests, "no digest was posted"),
            (t.charts, "no chart was uploaded"),
        ];
        if let Some((_, what)) = missing.iter().find(|(n, _)| *n == 0) {
            return Err(DemoError::Incomplete(
                what.to_string(),
                folder.to_path_buf(),
            ));
        }
        if t.refused > 0 {
            return Err(DemoError::Incomplete(
                format!("Slack refused {} call(s)", t.refused),
                folder.to_path_buf(),
            ));
        }
        Ok(())
    }

    /// The folder's files: messages/, the digest, the chart and the transcript.
    fn write_outputs(
        &mut self,
        folder: &Path,
        emulator: &Emulator,
        started: std::time::Instant,
    ) -> Result<Vec<(String, String)>, DemoError> {
        let mut files = Vec::new();
        let n = record::write_messages(folder, &self.payloads)?;
        files.push((
            "messages/".to_string(),
            format!("{n} Block Kit payloads, in the order the emulator received them"),
        ));
        let chart = emulator
            .files()
            .into_iter()
            .rev()
            .find(|f| f.filename.ends_with(".png") && !f.bytes.is_empty());
        if let Some(chart) = &chart {
            record::write(&folder.join("chart.png"), &chart.bytes)?;
        }
        if let Some(last) = self.digests.last() {
            let text = serde_json::to_string_pretty(last).unwrap_or_else(|_| last.to_string());
            record::write(&folder.join("digest.json"), text)?;
            record::write(
                &folder.join("digest.md"),
                record::digest_markdown(&self.digests, chart.as_ref().map(|_| "chart.png")),
            )?;
            files.push((
                "digest.md".into(),
                "the last digest as sponsors read it, and every week's headline".into(),
            ));
            files.push((
                "digest.json".into(),
                "the last digest as JSON (the shape of GET …/digest/preview)".into(),
            ));
        }
        if let Some(chart) = &chart {
            files.push((
                "chart.png".into(),
                format!("the trend chart uploaded with it ({})", chart.filename),
            ));
        }
        files.push(("transcript.txt".into(), "this transcript".into()));
        files.push((
            format!("config/programs/{}", cast::PROGRAM_FILE),
            "the program the demo ran".into(),
        ));
        files.push((
            "pulseloop-demo.db".into(),
            "the service's SQLite database".into(),
        ));
        self.transcript.note(String::new());
        self.transcript.note(format!(
            "Done in {:.1} s. Written to {}:",
            started.elapsed().as_secs_f64(),
            folder.display()
        ));
        let width = files.iter().map(|(f, _)| f.len()).max().unwrap_or(0);
        for (file, what) in &files {
            self.transcript.note(format!("  {file:<width$}  {what}"));
        }
        record::write(&folder.join("transcript.txt"), self.transcript.text())?;
        Ok(files)
    }
}

/// What a Web API call carried, in the demo's words.
fn classify(method: &str, p: &Value) -> Kind {
    let text = p["text"].as_str().unwrap_or("");
    let blocks = p["blocks"].to_string();
    let channel = p["channel"].as_str().unwrap_or("");
    match method {
        "files.completeUploadExternal" => Kind::Chart,
        "views.open" | "views.update" | "views.push" | "views.publish" => Kind::Modal,
        "chat.postEphemeral" => Kind::Ephemeral,
        "chat.update" if blocks.contains("Closed") => Kind::Closed,
        "chat.update" => Kind::Answered,
        "chat.postMessage" if p["thread_ts"].is_string() => Kind::Reminder,
        "chat.postMessage" if channel == SPONSOR_CHANNEL && text.contains("Small win") => Kind::Win,
        "chat.postMessage" if channel == SPONSOR_CHANNEL => Kind::Digest,
        "chat.postMessage" if text.contains("You said, we did") => Kind::Action,
        "chat.postMessage" if text.contains("celebrate your message") => Kind::WinAsk,
        "chat.postMessage"
            if blocks.contains(&format!("\"{}\"", crate::pulse::render::ACTION_OPEN_MODAL))
                || blocks.contains("\"answer:") =>
        {
            Kind::Pulse
        }
        _ => Kind::Other,
    }
}

/// The (block_id, value) of the button `action_id` in `blocks`.
fn find_button(blocks: &Value, action_id: &str) -> Option<(String, String)> {
    for block in blocks.as_array()? {
        let elements = block["elements"].as_array().into_iter().flatten();
        for e in elements.chain(std::iter::once(&block["accessory"])) {
            if e["action_id"] == action_id {
                return Some((
                    block["block_id"].as_str().unwrap_or_default().to_string(),
                    e["value"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    None
}

/// Slack mrkdwn as a line of the transcript: mentions as names (`<@U0FARID>` → `@Farid
/// Haddad`, as Slack shows them), no emoji codes, bold marks or quote marks.
fn readable(text: &str) -> String {
    let mut out = text
        .replace(":tada: ", "")
        .replace(":speech_balloon: ", "")
        .replace('*', "")
        .replace("\n>", " ")
        .replace('\n', " ");
    for p in PEOPLE.iter().chain([&OWNER]) {
        out = out.replace(&format!("<@{}>", p.id), &format!("@{}", p.name));
    }
    out
}

/// The demo's logging: warnings only (RUST_LOG overrides), so the transcript stays readable.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_named_by_what_they_carry() {
        let reminder =
            json!({ "channel": "U0BEN", "thread_ts": "1.2", "text": "Friendly reminder" });
        assert_eq!(classify("chat.postMessage", &reminder), Kind::Reminder);
        let win = json!({ "channel": SPONSOR_CHANNEL, "text": ":tada: *Small win* in X" });
        assert_eq!(classify("chat.postMessage", &win), Kind::Win);
        let digest = json!({ "channel": SPONSOR_CHANNEL, "text": "Weekly digest", "blocks": [] });
        assert_eq!(classify("chat.postMessage", &digest), Kind::Digest);
        let pulse = json!({ "channel": "U0AMARA", "text": "New pulse", "blocks": [
            { "type": "actions", "elements": [{ "type": "button", "action_id": "open_modal" }] }
        ] });
        assert_eq!(classify("chat.postMessage", &pulse), Kind::Pulse);
        assert_eq!(
            classify("files.completeUploadExternal", &json!({})),
            Kind::Chart
        );
    }

    #[test]
    fn buttons_are_found_in_elements_and_accessories() {
        let blocks = json!([
            { "type": "actions", "block_id": "b1", "elements": [{ "action_id": "x", "value": "1" }] },
            { "type": "section", "block_id": "b2", "accessory": { "action_id": "y", "value": "2" } }
        ]);
        assert_eq!(find_button(&blocks, "y"), Some(("b2".into(), "2".into())));
        assert_eq!(find_button(&blocks, "x"), Some(("b1".into(), "1".into())));
        assert_eq!(find_button(&blocks, "z"), None);
    }

    #[test]
    fn mrkdwn_reads_as_plain_text_with_names() {
        assert_eq!(
            readable(":tada: *Small win* from <@U0FARID>:\n>Done"),
            "Small win from @Farid Haddad: Done"
        );
    }
}
