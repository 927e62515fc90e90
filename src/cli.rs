//! The `pulseloop` command line.

use crate::domain::ids::{MemberId, ProgramId};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::clock::SystemClock;
use crate::config::Settings;
use crate::startup::Application;
use crate::storage::Store;

#[derive(Debug, Parser)]
#[command(
    name = "pulseloop",
    version,
    about = "Runs the continuous feedback loop of a coaching program in Slack"
)]
pub struct Cli {
    /// Configuration folder (pulseloop.toml and programs/*.toml).
    #[arg(
        long,
        global = true,
        env = "PULSELOOP_CONFIG",
        default_value = "config"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the webhook service, scheduler and delivery workers (the sandbox Slack without SLACK_BOT_TOKEN).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Validate the configuration folder; one line per problem, exit code 1 if any.
    CheckConfig {
        /// Also ask Slack (users.info, with SLACK_BOT_TOKEN) whether every member in the
        /// files exists.
        #[arg(long)]
        online: bool,
    },
    /// Ask the server on this machine for /healthz (or --path); exit code 0 on HTTP 200,
    /// else 1 with the reason. For container health checks (deploy/Dockerfile).
    Healthcheck {
        /// The endpoint to ask.
        #[arg(long, default_value = "/healthz")]
        path: String,
        /// The server's address (default: its bind address from the settings, on loopback
        /// when it binds every interface).
        #[arg(long)]
        addr: Option<String>,
    },
    /// Look at the schedule.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Business KPIs recorded beside the pulse.
    #[command(subcommand)]
    Kpi(KpiCommand),
    /// Write the one-page ROI summary: report.md and trend.png.
    Report {
        /// Program id.
        #[arg(long)]
        program: String,
        /// First local date of the range (YYYY-MM-DD).
        #[arg(long)]
        from: chrono::NaiveDate,
        /// Last local date of the range, included.
        #[arg(long)]
        to: chrono::NaiveDate,
        /// Folder to write into (created if needed).
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Look at the digest.
    #[command(subcommand)]
    Digest(DigestCommand),
    /// See the whole loop in a minute: simulated members answer weeks of pulses on an
    /// accelerated clock against the built-in Slack emulator (no Slack token needed); prints
    /// a transcript and writes the messages, the digest and its chart into a folder.
    Demo {
        /// Folder to write into (created; must be empty) [default: ./pulseloop-demo-<timestamp>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// How many weeks of pulses to simulate.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::demo::MAX_WEEKS)))]
        weeks: u32,
        /// Seed of the simulated people's answers (the same seed tells the same story).
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Fill the database with a synthetic history for the digest benchmark (docs/digest.md).
    #[command(hide = true)]
    BenchData {
        #[arg(long, default_value_t = 1000)]
        members: u32,
        #[arg(long, default_value_t = 52)]
        weeks: u32,
    },
    /// Time the digest computation on the benchmark history (median and p95).
    #[command(hide = true)]
    BenchDigest {
        #[arg(long, default_value_t = 30)]
        runs: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum KpiCommand {
    /// Store KPI definitions and values from a CSV file (header
    /// `kpi,label,unit,direction,period_start,value`); all lines or none.
    Import {
        /// Program id.
        #[arg(long)]
        program: String,
        /// The CSV file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum DigestCommand {
    /// Render the digest of the current period so far, without posting it.
    Preview {
        /// Program id (the `id` in config/programs/<file>.toml).
        #[arg(long)]
        program: String,
        /// Print the PRODUCT.md JSON shape instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Upcoming deliveries: each member's local time and UTC, in time order.
    Preview {
        /// Program id (the `id` in config/programs/<file>.toml).
        #[arg(long)]
        program: String,
        /// How many days ahead, from now.
        #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::scheduler::preview::MAX_DAYS)))]
        days: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cli: Cli) -> ExitCode {
    if matches!(cli.command, Command::Demo { .. }) {
        crate::demo::init_logging();
    } else {
        crate::telemetry::init_logging();
    }
    let env = |name: &str| std::env::var(name).ok();
    match cli.command {
        Command::CheckConfig { online } => {
            let offline = crate::config::check::run(&cli.config, &env);
            if offline != ExitCode::SUCCESS {
                return offline;
            }
            print_sources(&cli.config, &env).await;
            if !online {
                return offline;
            }
            check_members_online(&cli.config, &env).await
        }
        Command::Migrate => {
            let settings = match Settings::load(&cli.config, &env) {
                Ok(s) => s,
                Err(e) => return config_failure(&e),
            };
            let url = crate::startup::redact_url(&settings.database.url);
            let store = match Store::connect(&settings.database.url, 1).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: cannot open the database at {url}: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match store.migrate_reporting().await {
                Ok(applied) => {
                    for m in &applied {
                        println!("applied {m}");
                    }
                    let total = store.migrations_known();
                    println!(
                        "database at {url} is up to date ({total} migrations); {} applied now",
                        applied.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Healthcheck { path, addr } => healthcheck(&cli.config, &env, &path, addr).await,
        Command::Schedule(ScheduleCommand::Preview {
            program,
            days,
            json,
        }) => schedule_preview(&cli.config, &env, &program, days, json).await,
        Command::Kpi(KpiCommand::Import { program, file }) => {
            kpi_import(&cli.config, &env, &program, &file).await
        }
        Command::Report {
            program,
            from,
            to,
            out,
        } => report(&cli.config, &env, &program, from, to, &out).await,
        Command::Digest(DigestCommand::Preview { program, json }) => {
            digest_preview(&cli.config, &env, &program, json).await
        }
        Command::Demo { out, weeks, seed } => demo(out, weeks, seed).await,
        Command::BenchData { members, weeks } => {
            // One connection: the bulk-load setting applies to every write.
            let store = match open_store(&cli.config, &env, 1).await {
                Ok(s) => s,
                Err(code) => return code,
            };
            match crate::digest::bench::seed(&store, members, weeks).await {
                Ok(report) => {
                    println!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::BenchDigest { runs } => {
            let store = match open_store(&cli.config, &env, 2).await {
                Ok(s) => s,
                Err(code) => return code,
            };
            match crate::digest::bench::time_digest(&store, runs.max(1)).await {
                Ok(report) => {
                    println!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve => {
            let settings = match Settings::load(&cli.config, &env) {
                Ok(s) => s,
                Err(e) => return config_failure(&e),
            };
            let shutdown = shutdown_signal();
            let app = match Application::build(settings, Arc::new(SystemClock)).await {
                Ok(app) => app,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::FAILURE;
                }
            };
            match app.run_until_stopped(shutdown).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn schedule_preview(
    config: &std::path::Path,
    env: &dyn Fn(&str) -> Option<String>,
    program_id: &str,
    days: u32,
    json: bool,
) -> ExitCode {
    use crate::domain::planning::PlanMember;
    let (settings, program) = match settings_and_program(config, env, program_id) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let program = &program;
    // Members as the running service knows them (Slack time zones, user groups), when its
    // database exists; otherwise as the file says.
    let stored = match stored_members(&settings.database.url, &program.id).await {
        Ok(rows) => rows,
        Err(reason) => {
            eprintln!("note: {reason}; using the members and time zones from the file");
            Vec::new()
        }
    };
    let members: Vec<PlanMember> = if stored.is_empty() {
        program
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| PlanMember {
                member_id: MemberId(i as i64),
                slack_user_id: m.slack_id.clone().into(),
                role: m.role,
                timezone: m.timezone.unwrap_or(program.timezone),
                working_days: m.working_days.unwrap_or(program.working_days),
            })
            .collect()
    } else {
        crate::storage::members::plan_members(program, &stored)
    };
    // As the API: members Slack does not know are not scheduled, and said so.
    for row in stored.iter().filter(|m| m.slack_problem.is_some()) {
        eprintln!(
            "note: {} is not scheduled: Slack answered {} for this member (see GET /api/v1/programs/{}/member-problems)",
            row.slack_user_id,
            row.slack_problem.as_deref().unwrap_or_default(),
            program.id
        );
    }
    let entries = match crate::scheduler::preview::preview_bounded(
        program,
        &members,
        chrono::Utc::now(),
        days,
        crate::scheduler::preview::MAX_CLI_ROWS,
    ) {
        Ok(entries) => entries,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = if json {
        serde_json::to_writer_pretty(&mut out, &entries)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        crate::scheduler::preview::write_table(&mut out, &entries)
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader stopped reading (`… | head`): what it wanted was printed.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write the preview: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `check-config`: where each value a run-time edit may change comes from: the file, or an
/// admin's edit (who, when, and the file value it was made against), read from the database
/// when there is one. A missing database is not created: then every value is the file's.
async fn print_sources(config: &std::path::Path, env: &dyn Fn(&str) -> Option<String>) {
    let Ok(settings) = Settings::load(config, env) else {
        return;
    };
    let Ok(programs) = crate::config::program::load_programs(&settings.programs_dir()) else {
        return;
    };
    let url = &settings.database.url;
    let shown = crate::startup::redact_url(url);
    let sqlite_file = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or(rest).to_string());
    let exists = match &sqlite_file {
        Some(path) => path != ":memory:" && std::path::Path::new(path).is_file(),
        None => true,
    };
    let store = if exists {
        match Store::connect(url, 1).await {
            Ok(store) => Some(store),
            Err(e) => {
                println!("sources: cannot read run-time edits from {shown} ({e}); every value below is the file's");
                None
            }
        }
    } else {
        println!("sources: no database at {shown}; every value is from the file");
        None
    };
    println!("sources (a run-time edit holds until the file's value for that field changes):");
    for program in &programs {
        let edits = match &store {
            Some(store) => store.overrides_of(&program.id).await.unwrap_or_else(|e| {
                println!(
                    "  {}: run-time edits unreadable ({e}); showing the file",
                    program.id
                );
                Vec::new()
            }),
            None => Vec::new(),
        };
        for (key, value, source) in crate::pulse::admin::provenance(program, &edits) {
            println!("  {key} = {value}  [{source}]");
        }
    }
}

/// `check-config --online`: asks Slack (users.info) about every member named in the files,
/// one line per member Slack does not know, exit code 1 if any.
async fn check_members_online(
    config: &std::path::Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> ExitCode {
    let settings = match Settings::load(config, env) {
        Ok(s) => s,
        Err(e) => return config_failure(&e),
    };
    let Some(token) = settings.slack.bot_token.clone() else {
        if settings.oauth_only() {
            eprintln!(
                "error: check-config --online asks Slack about each member with SLACK_BOT_TOKEN; \
                 in OAuth-only mode the workspaces' tokens are in the database, which it does \
                 not read: not supported in this mode (the service reads members at start)"
            );
            return ExitCode::FAILURE;
        }
        eprintln!("error: check-config --online asks Slack about each member: set SLACK_BOT_TOKEN");
        return ExitCode::FAILURE;
    };
    let programs = match crate::config::program::load_programs(&settings.programs_dir()) {
        Ok(p) => p,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let slack = match crate::slack::outbound::SlackClient::new(
        &settings.slack.api_base_url,
        token,
        std::time::Duration::from_secs(settings.slack.request_timeout_seconds),
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut known: std::collections::HashMap<String, Result<(), String>> = Default::default();
    let mut problems = 0;
    let mut checked = 0;
    for program in &programs {
        for (i, m) in program.members.iter().enumerate() {
            let verdict = match known.get(&m.slack_id) {
                Some(v) => v.clone(),
                None => {
                    let user: slack_facts::ids::UserId = m.slack_id.clone().into();
                    let v = match slack.users_info(&user).await {
                        Ok(u) if u.deleted => Err("deactivated in Slack".to_string()),
                        Ok(_) => Ok(()),
                        Err(crate::slack::outbound::SlackError::Api { code, .. }) => {
                            Err(format!("Slack answers {code}"))
                        }
                        Err(e) => {
                            eprintln!("error: cannot ask Slack about {}: {e}", m.slack_id);
                            return ExitCode::FAILURE;
                        }
                    };
                    checked += 1;
                    known.insert(m.slack_id.clone(), v.clone());
                    v
                }
            };
            if let Err(why) = verdict {
                problems += 1;
                eprintln!(
                    "{}: members[{i}].slack_id: '{}': {why}; no pulses would reach this member",
                    program.file.display(),
                    m.slack_id
                );
            }
        }
    }
    if problems > 0 {
        eprintln!(
            "check-config --online: {problems} member problem{} found",
            if problems == 1 { "" } else { "s" }
        );
        return ExitCode::FAILURE;
    }
    println!("check-config --online: Slack knows all {checked} members");
    ExitCode::SUCCESS
}

/// The configured database, migrated.
async fn open_store(
    config: &std::path::Path,
    env: &dyn Fn(&str) -> Option<String>,
    connections: u32,
) -> Result<Store, ExitCode> {
    let settings = Settings::load(config, env).map_err(|e| config_failure(&e))?;
    let url = crate::startup::redact_url(&settings.database.url);
    let store = Store::connect(&settings.database.url, connections)
        .await
        .map_err(|e| {
            eprintln!("error: cannot open the database at {url}: {e}");
            ExitCode::FAILURE
        })?;
    store.migrate().await.map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })?;
    Ok(store)
}

/// `digest preview`: the current period's digest from the configured database, as text or
/// as the PRODUCT.md JSON shape. Nothing is posted.
async fn digest_preview(
    config: &std::path::Path,
    env: &dyn Fn(&str) -> Option<String>,
    program_id: &str,
    json: bool,
) -> ExitCode {
    let (settings, program) = match settings_and_program(config, env, program_id) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let program = &program;
    let url = crate::startup::redact_url(&settings.database.url);
    let store = match Store::connect(&settings.database.url, 1).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot open the database at {url}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(reason) = store.readiness().await {
        eprintln!("error: the database at {url} is not ready ({reason}); run `pulseloop migrate`");
        return ExitCode::FAILURE;
    }
    let now = chrono::Utc::now();
    let built = crate::digest::service::preview(&store, program, now).await;
    let digest = match built {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: the digest cannot be built: {e}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        match serde_json::to_string_pretty(&digest) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", crate::digest::message::to_text(&digest.blocks));
    }
    ExitCode::SUCCESS
}

async fn stored_members(
    url: &str,
    program_id: &ProgramId,
) -> Result<Vec<crate::storage::members::MemberRow>, String> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or(path);
        if !std::path::Path::new(path).exists() {
            return Err(format!("no database at {path} yet"));
        }
    }
    let store = Store::connect(url, 1)
        .await
        .map_err(|e| format!("database unavailable ({e})"))?;
    store
        .readiness()
        .await
        .map_err(|e| format!("database not ready ({e})"))?;
    store
        .members_of(program_id)
        .await
        .map_err(|e| e.to_string())
}

/// The settings and one program of the configuration; a sentence on stderr (naming the
/// programs there are) when the files are broken or the program is not among them.
fn settings_and_program(
    config: &std::path::Path,
    env: &dyn Fn(&str) -> Option<String>,
    program_id: &str,
) -> Result<(Settings, crate::domain::program::Program), ExitCode> {
    let settings = Settings::load(config, env).map_err(|e| config_failure(&e))?;
    let programs =
        crate::config::program::load_programs(&settings.programs_dir()).map_err(|errors| {
            eprintln!("{errors}");
            ExitCode::FAILURE
        })?;
    let known: Vec<String> = programs.iter().map(|p| p.id.to_string()).collect();
    let Some(program) = programs.into_iter().find(|p| p.id == program_id) else {
        eprintln!(
            "error: no program '{program_id}' in {} (known: {})",
            settings.programs_dir().display(),
            known.join(", ")
        );
        return Err(ExitCode::FAILURE);
    };
    Ok((settings, program))
}

/// The program from the configuration and the store it is recorded in; a sentence on stderr
/// when either is missing.
async fn program_and_store(
    config: &std::path::Path,
    env: &dyn Fn(&str) -> Option<String>,
    program_id: &str,
) -> Result<(crate::domain::program::Program, Store), ExitCode> {
    let (settings, program) = settings_and_program(config, env, program_id)?;
    let url = crate::startup::redact_url(&settings.database.url);
    let store = Store::connect(&settings.database.url, 2)
        .await
        .map_err(|e| {
            eprintln!("error: cannot open the database at {url}: {e}");
            ExitCode::FAILURE
        })?;
    let known = match store.readiness().await {
        Ok(()) => store.program_exists(&program.id).await.unwrap_or(false),
        Err(e) => {
            eprintln!("error: the database at {url} is not ready ({e}); run `pulseloop migrate`");
            return Err(ExitCode::FAILURE);
        }
    };
    if !known {
        eprintln!(
            "error: program '{program_id}' is not in the database at {url} yet; start `pulseloop serve` once so it applies config/programs"
        );
        return Err(ExitCode::FAILURE);
    }
    Ok((program, store))
}

/// `pulseloop kpi import`: the whole file in one transaction, or nothing and exit code 1.
async fn kpi_import(
    config: &std::path::Path,
    env: &dyn Fn(&str) -> Option<String>,
    program_id: &str,
    file: &std::path::Path,
) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let batch = match crate::storage::kpis::parse_kpi_csv(&text) {
        Ok(batch) => batch,
        Err(e) => {
            eprintln!("error: {}: {e}; nothing was imported", file.display());
            return ExitCode::FAILURE;
        }
    };
    let (program, store) = match program_and_store(config, env, program_id).await {
        Ok(found) => found,
        Err(code) => return code,
    };
    match store
        .put_kpis(&program.id, &batch, chrono::Utc::now())
        .await
    {
        Ok(()) => {
            println!(
                "imported {} values of {} KPIs into program '{program_id}'",
                batch.values.len(),
                batch.kpis.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e}; nothing was imported", file.display());
            ExitCode::FAILURE
        }
    }
}

/// `pulseloop report`: report.md and trend.png in `out`.
async fn report(
    config: &std::path::Path,
    env: &dyn Fn(&str) -> Option<String>,
    program_id: &str,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    out: &std::path::Path,
) -> ExitCode {
    if from > to {
        eprintln!("error: --from {from} is after --to {to}");
        return ExitCode::FAILURE;
    }
    let (program, store) = match program_and_store(config, env, program_id).await {
        Ok(found) => found,
        Err(code) => return code,
    };
    let written = match crate::digest::report::build_report(&store, &program, from, to).await {
        Ok(report) => report.write_to(out),
        Err(e) => Err(e),
    };
    match written {
        Ok((md, png)) => {
            println!("wrote {} and {}", md.display(), png.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `pulseloop demo`: the transcript as it happens, then the folder; exit code 1 with a
/// sentence when the folder cannot be used or a part of the loop did not happen.
async fn demo(out: Option<PathBuf>, weeks: u32, seed: u64) -> ExitCode {
    let options = crate::demo::DemoOptions {
        out,
        weeks,
        seed,
        echo: true,
    };
    match crate::demo::run(options).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn config_failure(e: &crate::config::ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM. The handlers are registered when this is called,
/// not when first polled, so a signal that arrives during start-up is not lost (and does not
/// kill the process with the default action).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(term) => {}
                _ = wait(int) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `pulseloop healthcheck`: 0 when the endpoint answers 200, else 1 and one line saying why.
async fn healthcheck(
    config: &std::path::Path,
    env: &dyn Fn(&str) -> Option<String>,
    path: &str,
    addr: Option<String>,
) -> ExitCode {
    let bind = match addr {
        Some(addr) => addr,
        None => match Settings::load(config, env) {
            Ok(settings) => settings.server.bind,
            Err(e) => return config_failure(&e),
        },
    };
    let target = match crate::http::probe::local_address(&bind) {
        Ok(target) => target,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match crate::http::probe::get_status(target, path, std::time::Duration::from_secs(5)).await {
        Ok(200) => {
            println!("{path} at {target}: 200");
            ExitCode::SUCCESS
        }
        Ok(status) => {
            eprintln!("unhealthy: {path} at {target} answered {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("unhealthy: {e}");
            ExitCode::FAILURE
        }
    }
}
