//! The binary itself: check-config's exit codes and messages, and `serve` in sandbox mode.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pulseloop"));
    for var in [
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "DATABASE_URL",
        "PULSELOOP_CONFIG",
        "PULSELOOP_BIND",
        "SLACK_API_BASE_URL",
        "SLACK_APP_TOKEN",
        "SLACK_CLIENT_ID",
        "SLACK_CLIENT_SECRET",
        "PULSELOOP_ENCRYPTION_KEY",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs the command, expects exit code 0, returns stdout (stderr is shown on failure).
fn succeeds(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

const BROKEN: &str = r#"
id = "Broken Program"
name = "Broken"
timezone = "Mars/Olympus"
start_date = "2027-13-01"
anonymity_threshold = 2
colour = "blue"

[[members]]
slack_id = "U0AAA"
role = "leader"

[[members]]
slack_id = "U0AAA"
role = "boss"

[[surveys]]
id = "weekly"
cadence = "0 25 * * MON"

[[surveys.questions]]
key = "q1"
kind = "stars"
prompt = "How was it?"

[[surveys]]
id = "weekly"
cadence = "0 9 * * MON"

[[surveys.questions]]
key = "q1"
kind = "scale"
prompt = "Again?"
"#;

#[test]
fn check_config_lists_each_error_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("programs")).unwrap();
    std::fs::write(dir.path().join("programs/broken.toml"), BROKEN).unwrap();
    let out = bin()
        .args(["check-config", "--config"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "broken.toml: id: 'Broken Program' must be",
        "broken.toml: timezone: 'Mars/Olympus' is not an IANA time zone",
        "broken.toml: start_date: '2027-13-01' is not a date",
        "broken.toml: anonymity_threshold: 2 is below the anonymity floor of 3",
        "broken.toml: colour: unknown key",
        "broken.toml: members[1].slack_id: duplicate member U0AAA",
        "broken.toml: members[1].role: 'boss' is not a role",
        "broken.toml: surveys[0].cadence: bad cron '0 25 * * MON'",
        "broken.toml: surveys[0].questions[0].kind: unknown question kind 'stars'",
        "broken.toml: surveys[1].id: duplicate survey id 'weekly'",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn check_config_accepts_the_shipped_example() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
    let stdout = succeeds(bin().args(["check-config", "--config", config]));
    assert!(stdout.contains("leadership-pilot"), "{stdout}");
}

#[test]
fn a_toml_syntax_error_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("programs")).unwrap();
    std::fs::write(
        dir.path().join("programs/bad.toml"),
        "id = \"x\"\nname = \n",
    )
    .unwrap();
    let out = bin()
        .args(["check-config", "--config"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml:2:"), "{stderr}");
}

/// A sandbox `serve` that is up: its address, its admin token (from standard output) and
/// the process.
#[cfg(unix)]
struct RunningSandbox {
    child: std::process::Child,
    addr: String,
    admin_token: String,
}

#[cfg(unix)]
fn start_sandbox(data: &std::path::Path) -> RunningSandbox {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
    let mut child = bin()
        .arg("serve")
        .env("PULSELOOP_CONFIG", config)
        .env("PULSELOOP_BIND", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", data.join("p.db").display()),
        )
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("SANDBOX MODE"), "first log line: {first}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut addr = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains("pulseloop is listening") {
            let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
            addr = v["fields"]["addr"].as_str().map(str::to_owned);
            break;
        }
        assert!(Instant::now() < deadline, "no listening line");
    }
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let printed = out.next().unwrap().unwrap();
    let admin_token = printed
        .strip_prefix("sandbox admin token: ")
        .unwrap_or_else(|| panic!("stdout: {printed}"))
        .to_string();
    RunningSandbox {
        child,
        addr: addr.expect("the listening line names the address"),
        admin_token,
    }
}

/// The status code of a GET with a bearer token, over a plain socket.
fn get_status(addr: &str, path: &str, token: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not HTTP: {response}"))
}

#[cfg(unix)]
fn sigterm(child: &mut std::process::Child) -> Option<i32> {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    child.wait().unwrap().code()
}

#[cfg(unix)]
#[test]
fn serve_without_a_token_runs_the_sandbox_and_stops_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let mut sandbox = start_sandbox(data.path());
    // SIGTERM: graceful shutdown, exit code 0.
    assert_eq!(sigterm(&mut sandbox.child), Some(0));
}

#[cfg(unix)]
#[test]
fn the_sandbox_generates_an_admin_token_and_prints_it() {
    let data = tempfile::tempdir().unwrap();
    let mut sandbox = start_sandbox(data.path());
    let token = sandbox.admin_token.clone();
    assert!(token.len() >= 32, "{token}");
    assert_eq!(get_status(&sandbox.addr, "/api/v1/programs", &token), 200);
    assert_eq!(
        get_status(&sandbox.addr, "/api/v1/programs", "sandbox"),
        401,
        "the well-known token of old is refused"
    );
    assert_eq!(sigterm(&mut sandbox.child), Some(0));

    let other = tempfile::tempdir().unwrap();
    let mut again = start_sandbox(other.path());
    assert_ne!(again.admin_token, token, "each start draws a new token");
    assert_eq!(sigterm(&mut again.child), Some(0));
}

/// `serve` without SLACK_BOT_TOKEN must stop with exit code 1 and this sentence.
fn sandbox_refuses(cmd: &mut Command, expected: &str) {
    let out = cmd.arg("serve").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refusing to start the sandbox"), "{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("admin token"));
}

#[test]
fn the_sandbox_refuses_postgresql() {
    sandbox_refuses(
        bin()
            .env(
                "DATABASE_URL",
                "postgres://pulse:hunter2@127.0.0.1:5432/prod",
            )
            .env("PULSELOOP_BIND", "127.0.0.1:0"),
        "PostgreSQL",
    );
    let out = bin()
        .arg("serve")
        .env(
            "DATABASE_URL",
            "postgres://pulse:hunter2@127.0.0.1:5432/prod",
        )
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("hunter2"),
        "the password is not printed"
    );
}

#[test]
fn the_sandbox_refuses_an_address_other_machines_can_reach() {
    let data = tempfile::tempdir().unwrap();
    sandbox_refuses(
        bin()
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", data.path().join("p.db").display()),
            )
            .env("PULSELOOP_BIND", "0.0.0.0:0"),
        "other machines",
    );
}

#[tokio::test]
async fn the_sandbox_refuses_a_database_that_served_a_real_workspace() {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", data.path().join("p.db").display());
    succeeds(bin().arg("migrate").env("DATABASE_URL", &url));
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO workspaces (team_id, source, first_seen_at) VALUES ('T0REAL', 'auth.test', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    sandbox_refuses(
        bin()
            .env("DATABASE_URL", &url)
            .env("PULSELOOP_BIND", "127.0.0.1:0"),
        "T0REAL",
    );
}

#[test]
fn migrate_creates_and_updates_the_database() {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", data.path().join("nested/dir/p.db").display());
    for _ in 0..2 {
        let stdout = succeeds(bin().arg("migrate").env("DATABASE_URL", &url));
        // Count-agnostic: every schema change adds a migration.
        assert!(
            stdout.contains("is up to date (") && stdout.contains(" migrations)"),
            "{stdout}"
        );
    }
    assert!(
        data.path().join("nested/dir/p.db").exists(),
        "the folder and file are created"
    );
}

#[test]
fn bad_settings_stop_serve_with_a_clear_sentence() {
    let out = bin()
        .arg("serve")
        .env("DATABASE_URL", "mysql://localhost/x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("database.url: must start with sqlite: or postgres://"),
        "{stderr}"
    );

    let out = bin()
        .arg("serve")
        .env("PULSELOOP_BIND", "localhost")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("server.bind: 'localhost' is not an address")
    );

    let out = bin()
        .args(["schedule", "preview", "--program", "nope", "--config"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no program 'nope'"));
}

#[test]
fn schedule_preview_prints_json_in_the_contract_shape() {
    let data = tempfile::tempdir().unwrap();
    let out = bin()
        .args([
            "schedule",
            "preview",
            "--program",
            "leadership-pilot",
            "--days",
            "14",
            "--json",
            "--config",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", data.path().join("none.db").display()),
        )
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        rows.len() >= 10,
        "two weeks of weekly pulses for five members"
    );
    for row in &rows {
        for field in ["member", "survey", "local_time", "utc"] {
            assert!(row[field].is_string(), "{row}");
        }
    }
    assert!(
        !data.path().join("none.db").exists(),
        "a preview never creates a database"
    );
}

/// OAuth half configured without a bot token: `serve` and `check-config` refuse with exit
/// code 1 and say what is missing; configured whole, `check-config` names the mode and wants
/// every program to name its workspace (docs/install.md, "Three modes").
#[test]
fn oauth_only_mode_is_checked_at_start_and_by_check_config() {
    let data = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", data.path().join("p.db").display());
    for (vars, missing) in [
        (
            vec![("SLACK_CLIENT_ID", "4242.1717")],
            "SLACK_CLIENT_SECRET and PULSELOOP_ENCRYPTION_KEY are not set",
        ),
        (
            vec![
                ("SLACK_CLIENT_ID", "4242.1717"),
                ("SLACK_CLIENT_SECRET", "client-secret-for-tests"),
            ],
            "PULSELOOP_ENCRYPTION_KEY is not set",
        ),
    ] {
        for command in [&["serve"][..], &["check-config", "--config"][..]] {
            let mut cmd = bin();
            cmd.args(command);
            if command.len() > 1 {
                cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/config"));
            }
            cmd.env("DATABASE_URL", &db)
                .env("PULSELOOP_BIND", "127.0.0.1:0");
            for (k, v) in &vars {
                cmd.env(k, v);
            }
            let out = cmd.output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{command:?}: {stderr}");
            assert!(
                stderr.contains("OAuth is only half configured") && stderr.contains(missing),
                "{command:?}: {stderr}"
            );
            assert!(
                !stderr.contains("client-secret-for-tests"),
                "no secret printed"
            );
            assert!(!stderr.contains("SANDBOX"), "no sandbox started: {stderr}");
        }
    }

    // Whole: the shipped example's program names no workspace, which OAuth-only mode refuses.
    let oauth = [
        ("SLACK_CLIENT_ID", "4242.1717"),
        ("SLACK_CLIENT_SECRET", "client-secret-for-tests"),
        (
            "PULSELOOP_ENCRYPTION_KEY",
            "test encryption key, 32 bytes or more",
        ),
    ];
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
    let out = bin()
        .args(["check-config", "--config", config])
        .envs(oauth)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("team_id: program 'leadership-pilot' names no workspace"),
        "{stderr}"
    );

    // With team_id set, it is valid, and the mode is named.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("programs")).unwrap();
    for entry in std::fs::read_dir(format!("{config}/programs")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let with_team = text.replacen("\nname = ", "\nteam_id = \"T0ALPHA\"\nname = ", 1);
        assert_ne!(text, with_team, "{}", path.display());
        std::fs::write(
            dir.path().join("programs").join(path.file_name().unwrap()),
            with_team,
        )
        .unwrap();
    }
    let stdout = succeeds(
        bin()
            .args(["check-config", "--config"])
            .arg(dir.path())
            .envs(oauth),
    );
    assert!(stdout.contains("slack mode: OAuth-only"), "{stdout}");
    let stdout = succeeds(bin().args(["check-config", "--config", config]));
    assert!(stdout.contains("slack mode: sandbox"), "{stdout}");
}
