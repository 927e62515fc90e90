//! `slack-emulator`: a local Slack Web API for trying or testing any Slack bot.
//!
//! ```text
//! slack-emulator --port 3100 --token xoxb-test --user U0ALICE:Europe/London \
//!     --bot-url http://127.0.0.1:3000 --signing-secret s3cret
//! ```
//! Point the bot's Web API base at the printed `web_api` URL; open `sandbox` in a browser to see
//! each member's DMs and click through them (with `--bot-url`, clicks reach the bot as signed
//! requests). `--workspace FILE` (TOML or JSON) describes members, channels, user groups and
//! apps; `control` is the `/_control` HTTP API (see the README). Ctrl-C stops it.

use clap::Parser;
use slack_emulator::{EmulatedUser, Emulator, EmulatorConfig, RateLimits, Workspace};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "slack-emulator",
    version,
    about = "A local Slack Web API for testing Slack bots"
)]
struct Args {
    /// Address to listen on; keep it on loopback (the sandbox page has no login).
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// Port to listen on (0: a free one).
    #[arg(long, default_value_t = 3100)]
    port: u16,
    /// The bot token the Web API accepts.
    #[arg(long, default_value = "xoxb-sandbox")]
    token: String,
    /// Workspace id.
    #[arg(long, default_value = "T0SANDBOX")]
    team_id: String,
    /// A workspace member, `USER_ID[:IANA/Zone]` (repeatable; zone defaults to UTC).
    #[arg(long = "user", value_name = "ID[:TZ]")]
    users: Vec<String>,
    /// A public channel the bot is a member of (repeatable).
    #[arg(long = "channel", value_name = "ID")]
    channels: Vec<String>,
    /// The bot's base URL: the sandbox page sends signed interactions to it.
    #[arg(long, requires = "signing_secret")]
    bot_url: Option<String>,
    /// The signing secret the bot verifies requests with.
    #[arg(long)]
    signing_secret: Option<String>,
    /// Turn rate limits off (they are Slack's tiers by default).
    #[arg(long)]
    no_rate_limits: bool,
    /// A workspace file (TOML, or JSON when it ends in .json): users, channels, usergroups, apps.
    #[arg(long, value_name = "FILE")]
    workspace: Option<PathBuf>,
    /// Keep messages, views and members' states in this JSON file across restarts.
    #[arg(long, value_name = "FILE")]
    state_file: Option<PathBuf>,
}

fn user_of(spec: &str) -> Result<EmulatedUser, String> {
    let (id, tz) = spec.split_once(':').unwrap_or((spec, "UTC"));
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "--user {spec}: the id must be letters and digits, e.g. U0ALICE"
        ));
    }
    if tz.parse::<chrono_tz::Tz>().is_err() {
        return Err(format!("--user {spec}: '{tz}' is not an IANA time zone"));
    }
    Ok(EmulatedUser::new(id, tz))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let users: Result<Vec<_>, _> = args.users.iter().map(|u| user_of(u)).collect();
    let users = match users {
        Ok(u) => u,
        Err(e) => {
            eprintln!("slack-emulator: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let workspace = match args.workspace.as_deref().map(Workspace::load).transpose() {
        Ok(w) => w.unwrap_or_default(),
        Err(e) => {
            eprintln!("slack-emulator: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let config = EmulatorConfig {
        team_id: workspace.team_id.clone().unwrap_or(args.team_id.clone()),
        team_name: workspace
            .team_name
            .clone()
            .unwrap_or_else(|| EmulatorConfig::default().team_name),
        state_file: args.state_file.clone(),
        bot_token: args.token.clone(),
        limits: if args.no_rate_limits {
            RateLimits::unlimited()
        } else {
            RateLimits::default()
        },
        ..EmulatorConfig::default()
    };
    let emulator = match Emulator::start_on(SocketAddr::new(args.host, args.port), config).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!(
                "slack-emulator: cannot listen on {}:{}: {e}",
                args.host, args.port
            );
            return std::process::ExitCode::from(1);
        }
    };
    if let Err(e) = emulator.load_workspace(&workspace) {
        eprintln!("slack-emulator: {e}");
        return std::process::ExitCode::from(2);
    }
    for user in users {
        emulator.add_user(user);
    }
    for channel in &args.channels {
        emulator.add_channel(channel, channel, true);
    }
    if let (Some(url), Some(secret)) = (&args.bot_url, &args.signing_secret) {
        emulator.connect_bot(url, secret);
    }
    println!("web_api = {}", emulator.base_url());
    println!("sandbox = {}", emulator.sandbox_url());
    println!("control = {}_control", emulator.sandbox_url());
    println!("token   = {}", args.token);
    if tokio::signal::ctrl_c().await.is_err() {
        eprintln!("slack-emulator: cannot listen for Ctrl-C; stopping");
    }
    emulator.shutdown().await;
    std::process::ExitCode::SUCCESS
}
