//! pulseloop's benchmarks, one command each (build first: `cargo build --release --workspace`):
//!
//! ```text
//! target/release/loadgen inbound [--db sqlite|postgres] [--rates 200,500,1000,2000,3000] [--seconds 20] [--callgrind]
//! target/release/loadgen fanout  [--db sqlite|postgres] [--members 10000] [--processes 3] [--kill-one] [--scale 10]
//! target/release/loadgen memory
//! ```
//!
//! Each starts the real `pulseloop` binary (found next to this one) on a fresh database, with
//! the Slack emulator in this process standing in for Slack, and prints a report. `inbound` is
//! an open-loop generator: request i is due at start + i/rate and its latency is counted from
//! then (no coordinated omission: a slow answer does not delay the next request).
//! The defaults are the issue's runs (inbound: 2,000 members, five rates of 20 s each;
//! fan-out: 10,000 members at Slack's limits ×10 in time); `--seconds` and `--members` shorten
//! them.
//!
//! CPU per answer is measured two ways that do not depend on how loaded the machine is: the
//! process's CPU time (`/proc/<pid>/stat`) per acknowledged answer, always; and with
//! `--callgrind`, the instructions the process executed per acknowledged answer (pulseloop runs
//! under `valgrind --tool=callgrind`, its counters are zeroed before each rate and dumped after
//! it; valgrind runs code about 50 times slower, so use low rates, e.g. `--rates 5,10`). What
//! the idle process executes in the same time (timers, the outbox's sleep) is measured first
//! and subtracted, so the figure is the answers' own cost. The dumps are kept in
//! `./loadgen-callgrind/` for `callgrind_annotate`.
//!
//! After the table, `inbound` tells where each rate's time went by kind of pulseloop thread:
//! time on a CPU and time runnable but waiting for a core ([`threads`]).

mod client;
mod stored_check;
mod threads;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::Value;
use slack_emulator::{EmulatedUser, Emulator, EmulatorConfig, RateLimits};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "xoxb-bench";
const SECRET: &str = "bench-signing-secret";
const ADMIN: &str = "bench-admin-token";

#[derive(Parser)]
#[command(name = "loadgen", about = "pulseloop benchmarks")]
struct Args {
    #[command(subcommand)]
    bench: Bench,
    /// The pulseloop binary (default: next to this one).
    #[arg(long, global = true)]
    pulseloop: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Db::Sqlite, global = true)]
    db: Db,
    /// An admin URL of PostgreSQL: a throw-away database is created there (and dropped).
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        global = true
    )]
    pg_url: String,
    /// Run pulseloop under callgrind and report instructions per answer (slow: low rates).
    #[arg(long, global = true)]
    callgrind: bool,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Db {
    Sqlite,
    Postgres,
}

#[derive(Subcommand)]
enum Bench {
    /// Signed clicks on open deliveries of a round, open loop, at each rate in turn.
    Inbound {
        #[arg(long, default_value_t = 2000)]
        members: usize,
        #[arg(long, value_delimiter = ',', default_values_t = [200, 500, 1000, 2000, 3000])]
        rates: Vec<u64>,
        /// Seconds per rate (the issue's run: 20; shorten for a smoke run).
        #[arg(long, default_value_t = 20)]
        seconds: u64,
    },
    /// A round to every member at Slack's post limits (scaled in time by --scale).
    Fanout {
        #[arg(long, default_value_t = 10000)]
        members: usize,
        #[arg(long, default_value_t = 1)]
        processes: usize,
        /// SIGKILL one process when about half the DMs are out.
        #[arg(long)]
        kill_one: bool,
        /// Limits multiplied by this (1 = Slack's 600/min per workspace).
        #[arg(long, default_value_t = 10)]
        scale: u32,
    },
    /// Idle RSS, and RSS under 1,000 clicks/s on a 2,000-member round.
    Memory {
        #[arg(long, default_value_t = 2000)]
        members: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let bin = match &args.pulseloop {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no folder")?
            .join("pulseloop"),
    };
    if !bin.exists() {
        bail!(
            "{} not found: build it first (cargo build --release --workspace)",
            bin.display()
        );
    }
    let stamp = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    println!("# loadgen, {stamp}, {} cores", num_cpus());
    match &args.bench {
        Bench::Inbound {
            members,
            rates,
            seconds,
        } => inbound(&bin, &args, *members, rates, *seconds, false).await,
        Bench::Memory { members, seconds } => {
            inbound(&bin, &args, *members, &[1000], *seconds, true).await
        }
        Bench::Fanout {
            members,
            processes,
            kill_one,
            scale,
        } => fanout(&bin, &args, *members, *processes, *kill_one, *scale).await,
    }
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

// ------------------------------------------------------------------ set-up

/// A fresh database (a SQLite file in `dir`, or a PostgreSQL database dropped at the end).
struct BenchDb {
    url: String,
    pg: Option<(String, String)>,
}

impl BenchDb {
    async fn new(args: &Args, dir: &Path) -> anyhow::Result<BenchDb> {
        match args.db {
            Db::Sqlite => Ok(BenchDb {
                url: format!("sqlite://{}", dir.join("bench.db").display()),
                pg: None,
            }),
            Db::Postgres => {
                let name = format!("pulseloop_bench_{}", uuid::Uuid::new_v4().simple());
                let admin = sqlx::PgPool::connect(&args.pg_url).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&admin)
                    .await?;
                admin.close().await;
                let base = args.pg_url.rsplit_once('/').map(|(b, _)| b).unwrap();
                Ok(BenchDb {
                    url: format!("{base}/{name}"),
                    pg: Some((args.pg_url.clone(), name)),
                })
            }
        }
    }

    /// One number the benchmark reads from its own throw-away database.
    async fn scalar(&self, sql: &'static str) -> anyhow::Result<i64> {
        let rows: Vec<(i64,)> = self.rows(sql).await?;
        Ok(rows.first().map(|r| r.0).unwrap_or_default())
    }

    /// Each delivery's DM (channel, message ts) and answer revision.
    async fn revisions(&self) -> anyhow::Result<Vec<(String, String, i64)>> {
        self.rows(
            "SELECT channel_id, message_ts, CAST(answer_revision AS BIGINT)
             FROM deliveries WHERE channel_id IS NOT NULL AND message_ts IS NOT NULL",
        )
        .await
    }

    /// `sql`'s rows, on a connection opened for the read and closed after it.
    async fn rows<T>(&self, sql: &'static str) -> anyhow::Result<Vec<T>>
    where
        T: Send
            + Unpin
            + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        Ok(if self.url.starts_with("postgres") {
            let pool = sqlx::PgPool::connect(&self.url).await?;
            let rows = sqlx::query_as(sql).fetch_all(&pool).await;
            pool.close().await;
            rows?
        } else {
            let pool = sqlx::SqlitePool::connect(&self.url).await?;
            let rows = sqlx::query_as(sql).fetch_all(&pool).await;
            pool.close().await;
            rows?
        })
    }

    async fn drop_it(self) {
        if let Some((admin, name)) = self.pg {
            if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&pool)
                .await;
            }
        }
    }
}

fn member_id(i: usize) -> String {
    format!("U0B{i:05}")
}

/// config/: a program of `members` participants (UTC) with one scale question, and settings.
fn write_config(dir: &Path, members: usize, settings: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("programs"))?;
    let mut toml = String::from(
        "id = \"bench\"\nname = \"Bench\"\ntimezone = \"UTC\"\nstart_date = \"2026-01-05\"\n\
         anonymity_threshold = 3\ncomment_threshold = 3\n",
    );
    for i in 0..members {
        toml.push_str(&format!(
            "[[members]]\nslack_id = \"{}\"\nrole = \"participant\"\n",
            member_id(i)
        ));
    }
    toml.push_str(
        "[[surveys]]\nid = \"weekly\"\nname = \"Weekly\"\ncadence = \"0 10 * * MON\"\n\
         window_hours = 48\nremind_after_hours = 24\n\
         [[surveys.questions]]\nkey = \"value\"\nkind = \"scale\"\nprompt = \"How valuable?\"\n",
    );
    std::fs::write(dir.join("programs/bench.toml"), toml)?;
    std::fs::write(dir.join("pulseloop.toml"), settings)?;
    Ok(())
}

struct Served {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Served {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn serve(
    bin: &Path,
    config: &Path,
    db: &str,
    slack: &str,
    callgrind: Option<&Path>,
) -> anyhow::Result<Served> {
    let mut command = match callgrind {
        Some(dir) => {
            let mut c = Command::new("valgrind");
            c.arg("--tool=callgrind")
                .arg("--quiet")
                .arg(format!(
                    "--callgrind-out-file={}",
                    dir.join("callgrind.out.%p").display()
                ))
                .arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let mut child = command
        .arg("serve")
        .env("PULSELOOP_CONFIG", config)
        .env("PULSELOOP_BIND", "127.0.0.1:0")
        .env("DATABASE_URL", db)
        .env("SLACK_BOT_TOKEN", TOKEN)
        .env("SLACK_SIGNING_SECRET", SECRET)
        .env("SLACK_API_BASE_URL", slack)
        .env("PULSELOOP_ADMIN_TOKEN", ADMIN)
        .env(
            "RUST_LOG",
            std::env::var("LOADGEN_SERVER_LOG_FILTER")
                .map(|f| format!("{f},pulseloop::startup=info"))
                .unwrap_or_else(|_| "warn,pulseloop::startup=info".into()),
        )
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let mut lines = BufReader::new(child.stderr.take().context("stderr")?).lines();
    let mut addr = None;
    for line in lines.by_ref() {
        let line = line?;
        if line.contains("pulseloop is listening") {
            let v: Value = serde_json::from_str(&line)?;
            addr = v["fields"]["addr"].as_str().map(str::to_owned);
            break;
        }
    }
    std::thread::spawn(move || {
        let mut log = std::env::var("LOADGEN_SERVER_LOG")
            .ok()
            .and_then(|p| std::fs::File::create(p).ok());
        for line in lines.map_while(Result::ok) {
            if let Some(f) = log.as_mut() {
                use std::io::Write;
                let _ = writeln!(f, "{line}");
            }
        }
    });
    let addr: std::net::SocketAddr = addr
        .context("pulseloop did not start")?
        .parse()
        .context("pulseloop's address")?;
    Ok(Served { child, addr })
}

/// (RSS, peak RSS) in kB, and CPU seconds (user + system) of a process.
fn proc_stats(pid: u32) -> (u64, u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    (kb("VmRSS:"), kb("VmHWM:"), (ticks(11) + ticks(12)) / 100.0)
}

/// (anonymous, file-backed) resident kB of a process.
fn rss_split(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (kb("RssAnon:"), kb("RssFile:") + kb("RssShmem:"))
}

async fn send_now(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let r = http
        .post(format!(
            "{base}/api/v1/programs/bench/surveys/weekly/send-now"
        ))
        .bearer_auth(ADMIN)
        .timeout(Duration::from_secs(300))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("send-now: {} {}", r.status(), r.text().await?);
    }
    Ok(())
}

fn top_level_dms(emulator: &Emulator) -> Vec<slack_emulator::EmulatedMessage> {
    emulator
        .messages()
        .into_iter()
        .filter(|m| {
            m.thread_ts.is_none() && m.ephemeral_for.is_none() && m.channel.starts_with('D')
        })
        .collect()
}

async fn start_emulator(members: usize, limits: RateLimits) -> anyhow::Result<Emulator> {
    let emulator = Emulator::start(EmulatorConfig {
        bot_token: TOKEN.into(),
        limits,
        ..EmulatorConfig::default()
    })
    .await?;
    for i in 0..members {
        emulator.add_user(EmulatedUser::new(&member_id(i), "UTC"));
    }
    Ok(emulator)
}

// ------------------------------------------------------------------ inbound

/// What a click needs: who, where, and the answer buttons (value 1..=5) of their DM.
struct Target {
    user: String,
    channel: String,
    ts: String,
    buttons: Vec<(String, String, String)>,
}

fn targets(emulator: &Emulator) -> Vec<Target> {
    let user_of: std::collections::HashMap<String, String> = emulator
        .users()
        .into_iter()
        .map(|u| (emulator.dm_channel_for(&u.id), u.id))
        .collect();
    top_level_dms(emulator)
        .into_iter()
        .filter_map(|m| {
            let user = user_of.get(&m.channel)?.clone();
            let mut buttons = Vec::new();
            for block in m.blocks.as_array()? {
                for e in block["elements"].as_array().into_iter().flatten() {
                    let action = e["action_id"].as_str().unwrap_or("");
                    if action.starts_with("answer:") {
                        buttons.push((
                            block["block_id"].as_str()?.to_string(),
                            action.to_string(),
                            e["value"].as_str().unwrap_or("").to_string(),
                        ));
                    }
                }
            }
            (buttons.len() == 5).then_some(Target {
                user,
                channel: m.channel,
                ts: m.ts,
                buttons,
            })
        })
        .collect()
}

#[derive(Default)]
struct Tally {
    /// The acknowledged clicks, with the index of their delivery.
    clicks: Vec<(usize, stored_check::Click)>,
    latencies_us: Vec<u64>,
    /// (due time from the rate's start, latency), µs: when the slowest clicks were due.
    due_and_latency_us: Vec<(u64, u64)>,
    ok: u64,
    shed: u64,
    errors: u64,
    over_3s: u64,
}

async fn inbound(
    bin: &Path,
    args: &Args,
    members: usize,
    rates: &[u64],
    seconds: u64,
    memory_only: bool,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = BenchDb::new(args, dir.path()).await?;
    let config = dir.path().join("config");
    write_config(
        &config,
        members,
        "[server]\nrequest_timeout_seconds = 120\n\
         [slack]\nmax_posts_per_minute = 1000000\nrequest_timeout_seconds = 10\n\
         [scheduler]\nenabled = false\n\
         [database]\nmax_connections = 10\n",
    )?;
    let emulator = start_emulator(members, RateLimits::unlimited()).await?;
    let callgrind_dir = args
        .callgrind
        .then(|| std::env::current_dir().map(|d| d.join("loadgen-callgrind")))
        .transpose()?;
    if let Some(d) = &callgrind_dir {
        std::fs::create_dir_all(d)?;
    }
    let served = serve(
        bin,
        &config,
        &db.url,
        &emulator.base_url(),
        callgrind_dir.as_deref(),
    )?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (idle_rss, _, _) = proc_stats(served.pid());
    let (anon, file) = rss_split(served.pid());
    println!(
        "pulseloop idle RSS: {:.1} MB ({} DB): {:.1} MB anonymous (heap, stacks), {:.1} MB file pages (the binary's code and data, libraries)",
        idle_rss as f64 / 1024.0,
        db_name(args),
        anon as f64 / 1024.0,
        file as f64 / 1024.0,
    );

    send_now(&reqwest::Client::new(), &served.base_url()).await?;
    let sent_by = Instant::now() + Duration::from_secs(600);
    while top_level_dms(&emulator).len() < members {
        if Instant::now() > sent_by {
            bail!("the round's DMs did not all go out");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The round's last posts are still being recorded as sent: let the outbox empty, so the
    // clicks' figures (CPU, instructions) do not carry the send-out's tail.
    let drained_by = Instant::now() + Duration::from_secs(60);
    while db
        .scalar("SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'in_flight')")
        .await?
        > 0
        && Instant::now() < drained_by
    {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let targets = Arc::new(targets(&emulator));
    println!("round of {} open deliveries sent; clicking", targets.len());
    // Under callgrind: what the process executes per second with nothing to do.
    let idle_per_s = match &callgrind_dir {
        Some(d) => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            callgrind_control(served.pid(), "-z")?;
            let t = Instant::now();
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            let idle = callgrind_dump(served.pid(), d)? as f64 / t.elapsed().as_secs_f64();
            println!(
                "idle: {:.0} k instructions/s (subtracted below)",
                idle / 1000.0
            );
            idle
        }
        None => 0.0,
    };
    let peer = Arc::new(emulator.peer(&served.base_url(), SECRET));
    let mut clicked = 0usize;
    let clicker = ClickThread::start()?;
    let connections = Arc::new(client::Connections::new(served.addr));
    let mut acked_total = 0u64;
    let mut all_clicks: Vec<(usize, stored_check::Click)> = Vec::new();
    let mut thread_times: Vec<(u64, Vec<threads::KindTimes>, f64, String)> = Vec::new();
    // The clicks' send and acknowledgement times, on one clock for all rates.
    let epoch = tokio::time::Instant::now();
    println!(
        "| offered/s | achieved/s | p50 ms | p99 ms | p99.9 ms | max ms | 200 | 503 shed | errors | > 3 s | CPU ms/answer |{}",
        if args.callgrind { " k instructions/answer |" } else { "" }
    );
    println!(
        "|---|---|---|---|---|---|---|---|---|---|---|{}",
        if args.callgrind { "---|" } else { "" }
    );
    for &rate in rates {
        if args.callgrind {
            callgrind_control(served.pid(), "-z")?;
        }
        let total = rate * seconds;
        // Sized up front: growing these while clicks are being timed stalled the generator
        // (a bunch of slow clicks due at the 32,768th click of every rate, whatever the rate).
        let tally = Arc::new(Mutex::new(Tally {
            clicks: Vec::with_capacity(total as usize),
            latencies_us: Vec::with_capacity(total as usize),
            due_and_latency_us: Vec::with_capacity(total as usize),
            ..Tally::default()
        }));
        // Every click is built and signed before the rate starts, so the generator's work
        // during the run is sending and timing: it shares the two cores with pulseloop, and
        // Slack signs its requests on its own machines. The timestamps stay well inside the
        // five minutes pulseloop accepts; each click has its own trigger_id and response_url,
        // so no two bodies (and signatures) are alike.
        let preparing = Instant::now();
        let prepared: Vec<Prepared> = (0..total)
            .map(|_| {
                // Round robin over deliveries; each click on a delivery carries the next
                // value, so every stored click changes its answer (and bumps its revision).
                let k = clicked;
                clicked += 1;
                prepare_click(&peer, &targets, k)
            })
            .collect();
        println!(
            "({} clicks at {rate}/s built and signed in {:.1} s)",
            prepared.len(),
            preparing.elapsed().as_secs_f64()
        );
        let (_, _, cpu_before) = proc_stats(served.pid());
        let (_, _, generator_before) = proc_stats(std::process::id());
        let threads_before = threads::sample(served.pid());
        let start = tokio::time::Instant::now() + Duration::from_millis(100);
        // The rate's start on the wall clock, to line its slow clicks up with what other
        // tools saw at the same moment (a WAL's size, the kernel's writeback, a profile).
        let started_unix = std::time::SystemTime::now() + Duration::from_millis(100);
        println!(
            "(rate {rate}/s starts at unix time {:.3} s)",
            started_unix
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64()
        );
        clicker
            .spawn(send_clicks(
                prepared,
                rate,
                start,
                epoch,
                connections.clone(),
                tally.clone(),
            ))
            .await?;
        let elapsed = start.elapsed().as_secs_f64();
        let (_, _, cpu_after) = proc_stats(served.pid());
        let (_, _, generator_after) = proc_stats(std::process::id());
        let kinds = threads::by_kind(&threads_before, &threads::sample(served.pid()));
        let instructions = match &callgrind_dir {
            Some(d) => {
                // Until the outbox has sent the answers' DM updates: part of their cost.
                tokio::time::sleep(Duration::from_secs(2)).await;
                let total = callgrind_dump(served.pid(), d)? as f64;
                Some((total - idle_per_s * start.elapsed().as_secs_f64()).max(0.0))
            }
            None => None,
        };
        let mut t = std::mem::take(&mut *tally.lock().unwrap());
        t.latencies_us.sort_unstable();
        if let Ok(path) = std::env::var("LOADGEN_LATENCIES") {
            write_latencies(&path, rate, &t.due_and_latency_us)?;
        }
        let slowest = slowest_clicks(&mut t.due_and_latency_us, 8);
        let pct = |p: f64| {
            let i =
                ((t.latencies_us.len() as f64 * p).ceil() as usize).clamp(1, t.latencies_us.len());
            t.latencies_us[i - 1] as f64 / 1000.0
        };
        acked_total += t.ok;
        thread_times.push((rate, kinds, generator_after - generator_before, slowest));
        all_clicks.append(&mut t.clicks);
        println!(
            "| {rate} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} | {:.2} |{}",
            (t.ok + t.shed + t.errors) as f64 / elapsed,
            pct(0.5),
            pct(0.99),
            pct(0.999),
            pct(1.0),
            t.ok,
            t.shed,
            t.errors,
            t.over_3s,
            (cpu_after - cpu_before) * 1000.0 / t.ok.max(1) as f64,
            instructions.map_or(String::new(), |i| format!(
                " {:.0} |",
                i / 1000.0 / t.ok.max(1) as f64
            )),
        );
    }
    for (rate, kinds, generator, slowest) in &thread_times {
        if !kinds.is_empty() {
            println!("threads at {rate}/s: {}", threads::describe(kinds));
        }
        println!(
            "generator at {rate}/s (this process: the clicks, the emulator's answers): cpu {generator:.2} s in {seconds} s"
        );
        println!("slowest clicks at {rate}/s (latency, due at): {slowest}");
    }
    let (rss, peak, _) = proc_stats(served.pid());
    // Every acknowledged click must be stored: per delivery, its answer revision must show at
    // least the changes certain whatever order the clicks arrived in (stored_check).
    let mut by_delivery: Vec<Vec<stored_check::Click>> = vec![Vec::new(); targets.len()];
    for (delivery, click) in all_clicks {
        by_delivery[delivery].push(click);
    }
    let stored: std::collections::HashMap<(String, String), i64> = db
        .revisions()
        .await?
        .into_iter()
        .map(|(channel, ts, revision)| ((channel, ts), revision))
        .collect();
    let (mut send_order, mut certain, mut revisions, mut short) = (0u64, 0u64, 0u64, 0u64);
    for (t, clicks) in targets.iter().zip(&by_delivery) {
        let must = stored_check::certain_changes(clicks);
        let has = stored
            .get(&(t.channel.clone(), t.ts.clone()))
            .copied()
            .unwrap_or(0)
            .max(0) as u64;
        send_order += stored_check::send_order_changes(clicks);
        certain += must;
        revisions += has;
        short += u64::from(has < must);
    }
    println!(
        "stored-before-ack check: {acked_total} clicks acknowledged; {send_order} changes in send order, {certain} certain in any arrival order; {revisions} changes stored; deliveries short of their certain changes: {short}: {}",
        if short == 0 { "OK (stored >= acknowledged)" } else { "FAILED" }
    );
    println!(
        "pulseloop RSS after load: {:.1} MB, peak {:.1} MB (idle {:.1} MB)",
        rss as f64 / 1024.0,
        peak as f64 / 1024.0,
        idle_rss as f64 / 1024.0
    );
    if memory_only {
        println!(
            "memory: idle {:.1} MB (goal <= 20 MB), peak under load {:.1} MB",
            idle_rss as f64 / 1024.0,
            peak as f64 / 1024.0
        );
    }
    stop(served);
    emulator.shutdown().await;
    db.drop_it().await;
    Ok(())
}

/// Sends each click at its due time (`start` + i/rate), on the click thread's runtime, and
/// tallies the results. Returns when every click has its answer or has timed out.
async fn send_clicks(
    prepared: Vec<Prepared>,
    rate: u64,
    start: tokio::time::Instant,
    epoch: tokio::time::Instant,
    connections: Arc<client::Connections>,
    tally: Arc<Mutex<Tally>>,
) {
    let mut handles = Vec::with_capacity(prepared.len());
    // Freed after the last answer, not while the last clicks wait to be sent.
    let mut prepared = prepared.into_iter();
    for (i, click) in (0u64..).zip(prepared.by_ref()) {
        let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
        // Each click is spawned at its due time by this one loop, not spawned up front to
        // sleep until it: tens of thousands of timers set at once sit in the coarse levels
        // of tokio's timer wheel and are moved down together every 4.096 s, a stall of
        // 20–55 ms in the generator that showed as the service's p99.9. Late or not, a
        // click's latency counts from its due time.
        tokio::time::sleep_until(due).await;
        let (tally, connections) = (tally.clone(), connections.clone());
        handles.push(tokio::spawn(async move {
            let sent_us = epoch.elapsed().as_micros() as u64;
            let result =
                tokio::time::timeout(Duration::from_secs(10), connections.send(click.request))
                    .await
                    .map_err(anyhow::Error::from)
                    .and_then(|sent| sent);
            let latency = due.elapsed();
            let acked_us = epoch.elapsed().as_micros() as u64;
            let mut t = tally.lock().unwrap();
            if matches!(result, Ok(200)) {
                let stored = stored_check::Click {
                    value: click.value,
                    sent_us,
                    acked_us,
                };
                t.clicks.push((click.delivery, stored));
            }
            t.latencies_us.push(latency.as_micros() as u64);
            t.due_and_latency_us
                .push(((due - start).as_micros() as u64, latency.as_micros() as u64));
            if latency > Duration::from_secs(3) {
                t.over_3s += 1;
            }
            match result {
                Ok(200) => t.ok += 1,
                Ok(503) => t.shed += 1,
                _ => t.errors += 1,
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    drop(prepared);
}

/// A thread of its own that sends the clicks: a single-threaded runtime, so timing a click
/// and sending it never wakes another thread, and the emulator (on the main runtime's
/// workers) never delays a send. Stops when dropped.
struct ClickThread {
    handle: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl ClickThread {
    fn start() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("loadgen-clicks".into())
            .spawn(move || {
                let _ = runtime.block_on(stopped);
            })?;
        Ok(Self {
            handle,
            _stop: stop,
        })
    }

    /// Runs `work` on the click thread and waits for it.
    async fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(
        &self,
        work: F,
    ) -> anyhow::Result<()> {
        Ok(self.handle.spawn(work).await?)
    }
}

/// The `n` slowest clicks as "87.2 ms at 12.310 s, …" (due time from the rate's start): one
/// stall shows as slow clicks due within a few milliseconds of each other, a queue as slow
/// clicks spread over the run.
fn slowest_clicks(due_and_latency_us: &mut [(u64, u64)], n: usize) -> String {
    due_and_latency_us.sort_unstable_by_key(|&(_, latency)| std::cmp::Reverse(latency));
    due_and_latency_us
        .iter()
        .take(n)
        .map(|&(due, latency)| {
            format!(
                "{:.1} ms at {:.3} s",
                latency as f64 / 1000.0,
                due as f64 / 1e6
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Appends each click of a rate to the CSV file at `path` (`LOADGEN_LATENCIES`): rate, due
/// time from the rate's start and latency, in µs, in due order.
fn write_latencies(path: &str, rate: u64, due_and_latency_us: &[(u64, u64)]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut sorted = due_and_latency_us.to_vec();
    sorted.sort_unstable();
    let mut out = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("LOADGEN_LATENCIES={path}"))?,
    );
    for (due, latency) in sorted {
        writeln!(out, "{rate},{due},{latency}")?;
    }
    Ok(out.flush()?)
}

/// One click, built and signed ahead of its send time.
struct Prepared {
    /// Index of its delivery in the targets.
    delivery: usize,
    value: usize,
    request: hyper::Request<client::Body>,
}

/// Click number `k`: round robin over the deliveries, the k-th visit of a delivery choosing
/// the next of its five values.
fn prepare_click(peer: &slack_emulator::SlackPeer, targets: &[Target], k: usize) -> Prepared {
    let delivery = k % targets.len();
    let t = &targets[delivery];
    let value = (k / targets.len()) % 5;
    let (block, action, v) = &t.buttons[value];
    let payload = peer.block_actions(&t.user, &t.channel, &t.ts, action, block, v);
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let ts = chrono::Utc::now().timestamp().to_string();
    let signature =
        slack_facts::signature::compute_signature(SECRET.as_bytes(), &ts, body.as_bytes());
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-slack-request-timestamp", ts.as_str()),
        ("x-slack-signature", signature.as_str()),
    ];
    Prepared {
        delivery,
        value,
        request: client::post("/slack/interactions", &headers, body),
    }
}

/// Runs `callgrind_control <flag> <pid>` (`-z` zeroes the counters, `-d` dumps them).
fn callgrind_control(pid: u32, flag: &str) -> anyhow::Result<()> {
    let out = Command::new("callgrind_control")
        .arg(flag)
        .arg(pid.to_string())
        .output()
        .context("callgrind_control not found (install valgrind)")?;
    if !out.status.success() {
        bail!(
            "callgrind_control {flag} {pid}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Dumps the counters of the callgrind run `pid` and returns the instructions counted since
/// they were last zeroed (the newest dump's `totals:` line).
fn callgrind_dump(pid: u32, dir: &Path) -> anyhow::Result<u64> {
    let before: std::collections::HashSet<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    callgrind_control(pid, "-d")?;
    let dump = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| !before.contains(p))
        .context("callgrind wrote no dump")?;
    let text = std::fs::read_to_string(&dump)?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no totals in {}", dump.display()))
}

fn db_name(args: &Args) -> &'static str {
    match args.db {
        Db::Sqlite => "SQLite",
        Db::Postgres => "PostgreSQL",
    }
}

fn stop(mut served: Served) {
    let _ = served.child.kill();
    let _ = served.child.wait();
}

// ------------------------------------------------------------------ fan-out

async fn fanout(
    bin: &Path,
    args: &Args,
    members: usize,
    processes: usize,
    kill_one: bool,
    scale: u32,
) -> anyhow::Result<()> {
    if processes > 1 && args.db == Db::Sqlite {
        bail!("several processes need --db postgres");
    }
    let per_minute = 600 * scale;
    let dir = tempfile::tempdir()?;
    let db = BenchDb::new(args, dir.path()).await?;
    let config = dir.path().join("config");
    write_config(
        &config,
        members,
        &format!(
            "[server]\nrequest_timeout_seconds = 120\n\
             [slack]\nmax_posts_per_minute = {per_minute}\nposts_per_second_per_channel = 1.0\n\
             [scheduler]\nenabled = false\n[outbox]\nlease_seconds = 10\n"
        ),
    )?;
    let limits = RateLimits {
        posts_per_minute_per_workspace: Some(per_minute),
        ..RateLimits::default()
    };
    let emulator = start_emulator(members, limits).await?;
    let mut served = Vec::new();
    for _ in 0..processes {
        served.push(serve(bin, &config, &db.url, &emulator.base_url(), None)?);
    }
    // send-now returns when the round is planned; DMs may start going out before that, so
    // the watch (and the SIGKILL midway) starts at once.
    let base = served[0].base_url();
    let sending = tokio::spawn(async move { send_now(&reqwest::Client::new(), &base).await });
    let began = Instant::now();
    let mut killed = false;
    let mut last_progress = (0, Instant::now());
    loop {
        let sent = top_level_dms(&emulator).len();
        if sent >= members {
            break;
        }
        if kill_one && !killed && sent >= members / 2 && served.len() > 1 {
            let victim = served.pop().unwrap();
            println!("SIGKILL one process at {sent} DMs sent");
            stop(victim);
            killed = true;
        }
        if sent > last_progress.0 {
            last_progress = (sent, Instant::now());
        } else if last_progress.1.elapsed() > Duration::from_secs(120) {
            println!("no progress for 2 minutes; stopping");
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    sending.await??;
    // Let anything still in flight land (a duplicate would show up now).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let wall = began.elapsed().as_secs_f64();
    let calls = emulator.calls_to("chat.postMessage");
    let ok: Vec<_> = calls
        .iter()
        .filter(|c| c.http_status == 200 && c.response["ok"] == true)
        .collect();
    let limited = calls.iter().filter(|c| c.http_status == 429).count();
    let first = ok.iter().map(|c| c.at).min();
    let last = ok.iter().map(|c| c.at).max();
    let span = match (first, last) {
        (Some(a), Some(b)) => (b - a).num_milliseconds() as f64 / 1000.0,
        _ => 0.0,
    };
    let allowed_per_s = f64::from(per_minute) / 60.0;
    let achieved = if span > 0.0 {
        (ok.len() as f64 - 1.0) / span
    } else {
        0.0
    };
    let dms = top_level_dms(&emulator);
    let mut per_channel = std::collections::HashMap::new();
    for m in &dms {
        *per_channel.entry(m.channel.clone()).or_insert(0usize) += 1;
    }
    let duplicates: usize = per_channel.values().map(|n| n - 1).sum();
    let lost = members.saturating_sub(per_channel.len());
    let max_in_window = max_in_any_window(&ok.iter().map(|c| c.at).collect::<Vec<_>>(), 60_000);
    println!(
        "fan-out: {members} members, {processes} process(es) on {}{}, limits {per_minute}/min per workspace and 1/s per channel (Slack's x{scale})",
        db_name(args),
        if killed { ", one SIGKILLed midway" } else { "" }
    );
    println!("| DMs posted | span s | achieved/s | allowed/s | share | 429s | duplicates | lost | max posts in any 60 s | wall s |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {span:.1} | {achieved:.2} | {allowed_per_s:.2} | {:.1} % | {limited} | {duplicates} | {lost} | {max_in_window} (allowed {}) | {wall:.1} |",
        ok.len(),
        achieved / allowed_per_s * 100.0,
        per_minute + per_minute / 60,
    );
    for s in served {
        stop(s);
    }
    emulator.shutdown().await;
    db.drop_it().await;
    Ok(())
}

/// The most timestamps inside any window of `window_ms`.
fn max_in_any_window(times: &[chrono::DateTime<chrono::Utc>], window_ms: i64) -> usize {
    let mut t: Vec<i64> = times.iter().map(|t| t.timestamp_millis()).collect();
    t.sort_unstable();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..t.len() {
        while t[hi] - t[lo] >= window_ms {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}
