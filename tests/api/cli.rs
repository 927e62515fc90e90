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

#[cfg(unix)]
#[test]
fn serve_without_a_token_runs_the_sandbox_and_stops_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
    let mut child = bin()
        .arg("serve")
        .env("PULSELOOP_CONFIG", config)
        .env("PULSELOOP_BIND", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", data.path().join("p.db").display()),
        )
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("SANDBOX MODE"), "first log line: {first}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut listening = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains("pulseloop is listening") {
            listening = true;
            break;
        }
        assert!(Instant::now() < deadline, "no listening line");
    }
    assert!(listening);
    // SIGTERM: graceful shutdown, exit code 0.
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(0));
}

#[test]
fn migrate_creates_and_updates_the_database() {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", data.path().join("nested/dir/p.db").display());
    for _ in 0..2 {
        let stdout = succeeds(bin().arg("migrate").env("DATABASE_URL", &url));
        assert!(stdout.contains("is up to date ("), "{stdout}");
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
