//! The `pulseloop` command line.

use crate::domain::ids::{MemberId, ProgramId};
use clap::{Parser, Subcommand};
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
    CheckConfig,
    /// Look at the schedule.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Upcoming deliveries: each member's local time and UTC, in time order.
    Preview {
        /// Program id (the `id` in config/programs/<file>.toml).
        #[arg(long)]
        program: String,
        /// How many days ahead, from now.
        #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..=366))]
        days: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cli: Cli) -> ExitCode {
    crate::telemetry::init_logging();
    let env = |name: &str| std::env::var(name).ok();
    match cli.command {
        Command::CheckConfig => crate::config::check::run(&cli.config, &env),
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
            match store.migrate().await {
                Ok(n) => {
                    println!("database at {url} is up to date ({n} migrations)");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Schedule(ScheduleCommand::Preview {
            program,
            days,
            json,
        }) => schedule_preview(&cli.config, &env, &program, days, json).await,
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
    let settings = match Settings::load(config, env) {
        Ok(s) => s,
        Err(e) => return config_failure(&e),
    };
    let programs = match crate::config::program::load_programs(&settings.programs_dir()) {
        Ok(p) => p,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let Some(program) = programs.iter().find(|p| p.id == program_id) else {
        let known: Vec<&str> = programs.iter().map(|p| p.id.as_str()).collect();
        eprintln!(
            "error: no program '{program_id}' in {} (known: {})",
            settings.programs_dir().display(),
            known.join(", ")
        );
        return ExitCode::FAILURE;
    };
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
    let entries = crate::scheduler::preview::preview(program, &members, chrono::Utc::now(), days);
    if json {
        match serde_json::to_string_pretty(&entries) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", crate::scheduler::preview::render_table(&entries));
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
