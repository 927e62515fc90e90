//! Silent failures an operator must see (issue 11, items 6-10): a missing config folder,
//! members Slack does not know, errors that name their source, one structured log line per
//! business event, cadences that cannot work, and a bounded schedule.

use crate::helpers::*;
use crate::pulses::{pilot_at, ONE_SCALE};
use crate::walkthrough::{lines_saying, logged};
use chrono::{Duration, TimeZone, Utc};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pulseloop"));
    for var in [
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "DATABASE_URL",
        "PULSELOOP_CONFIG",
        "PULSELOOP_BIND",
        "SLACK_API_BASE_URL",
        "PULSELOOP_ADMIN_TOKEN",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs the binary off the runtime's thread (the emulator must keep answering meanwhile).
async fn run(mut cmd: Command) -> (Option<i32>, String, String) {
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A config folder with `pulseloop.toml` (may be empty) and these program files.
fn config_folder(settings: &str, programs: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pulseloop.toml"), settings).unwrap();
    std::fs::create_dir_all(dir.path().join("programs")).unwrap();
    for (name, text) in programs {
        std::fs::write(dir.path().join("programs").join(name), text).unwrap();
    }
    dir
}

fn program_with(members: &[&str], cadence: &str, window_hours: u32) -> String {
    let mut toml = String::from(
        "id = \"ops\"\nname = \"Ops\"\ntimezone = \"Europe/Berlin\"\nstart_date = \"2027-01-04\"\n",
    );
    for m in members {
        toml.push_str(&format!(
            "[[members]]\nslack_id = \"{m}\"\nrole = \"participant\"\n"
        ));
    }
    toml.push_str(&format!(
        "[[surveys]]\nid = \"pulse\"\ncadence = \"{cadence}\"\nwindow_hours = {window_hours}\n{ONE_SCALE}"
    ));
    toml
}

// ---------- item 6 ----------

#[tokio::test]
async fn serve_refuses_a_missing_config_folder_with_check_configs_sentence() {
    let missing = tempfile::tempdir().unwrap().path().join("no-such-config");
    let data = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", data.path().join("p.db").display());
    let mut check = bin();
    check.arg("check-config").arg("--config").arg(&missing);
    let (code, _, check_err) = run(check).await;
    assert_eq!(code, Some(1));
    let mut serve = bin();
    serve
        .arg("serve")
        .arg("--config")
        .arg(&missing)
        .env("DATABASE_URL", &db)
        .env("PULSELOOP_BIND", "127.0.0.1:0");
    let (code, _, serve_err) = run(serve).await;
    assert_eq!(code, Some(1), "{serve_err}");
    let sentence = format!(
        "{}: the configuration folder does not exist",
        missing.display()
    );
    assert!(check_err.contains(&sentence), "{check_err}");
    assert!(serve_err.contains(&sentence), "{serve_err}");
}

#[tokio::test]
async fn the_start_log_lists_programs_surveys_and_member_counts() {
    let (app, logs) = logged(
        TestAppBuilder::default()
            .user("U0A", "Europe/Berlin")
            .user("U0B", "Europe/Berlin")
            .program(
                "ops.toml",
                &program_with(&["U0A", "U0B", "U0GHOST"], "0 10 * * MON", 48),
            )
            .spawn(),
    )
    .await;
    let loaded = lines_saying(&logs, "program loaded");
    assert_eq!(loaded.len(), 1, "{logs:?}");
    let line = loaded[0];
    assert_eq!(line["program"], "ops");
    assert_eq!(line["surveys"], "pulse (0 10 * * MON)");
    assert_eq!(line["members"], 3);
    assert_eq!(line["reachable"], 2);
    assert_eq!(line["member_problems"], 1);
    app.stop().await;
}

// ---------- item 7 ----------

#[tokio::test]
async fn an_unknown_slack_id_is_logged_reported_and_rechecked_on_reload() {
    let (app, logs) = logged(
        TestAppBuilder::default()
            .user("U0A", "Europe/Berlin")
            .now(sunday_noon())
            .program(
                "ops.toml",
                &program_with(&["U0A", "U0GHOST"], "0 10 * * MON", 48),
            )
            .spawn(),
    )
    .await;
    let warned: Vec<_> = logs
        .iter()
        .filter(|l| l["level"] == "WARN" && l["member"] == "U0GHOST")
        .collect();
    assert_eq!(warned.len(), 1, "{logs:?}");
    assert_eq!(warned[0]["problem"], "user_not_found");
    assert_eq!(warned[0]["programs"], "ops");

    let problems: Value = app
        .admin_get("/api/v1/programs/ops/member-problems")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(problems.as_array().unwrap().len(), 1, "{problems}");
    assert_eq!(problems[0]["member"], "U0GHOST");
    assert_eq!(problems[0]["problem"], "user_not_found");
    assert_eq!(
        app.admin_get("/api/v1/programs/nope/member-problems")
            .await
            .status(),
        404
    );

    // The API schedule and the CLI preview agree: the unknown member is in neither, and
    // the CLI says why.
    let api: Value = app
        .admin_get("/api/v1/programs/ops/schedule?days=14")
        .await
        .json()
        .await
        .unwrap();
    let api_members: Vec<&str> = api
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["member"].as_str().unwrap())
        .collect();
    assert!(!api_members.is_empty());
    assert!(!api_members.contains(&"U0GHOST"), "{api}");
    {
        let mut cli = bin();
        cli.args([
            "schedule",
            "preview",
            "--program",
            "ops",
            "--json",
            "--config",
        ])
        .arg(app.config_dir.path())
        .env("DATABASE_URL", &app.db.url);
        let (code, stdout, stderr) = run(cli).await;
        assert_eq!(code, Some(0), "{stderr}");
        let rows: Value = serde_json::from_str(&stdout).unwrap();
        let cli_members: Vec<&str> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["member"].as_str().unwrap())
            .collect();
        assert!(!cli_members.contains(&"U0GHOST"), "{stdout}");
        assert!(
            stderr.contains("U0GHOST is not scheduled: Slack answered user_not_found"),
            "{stderr}"
        );
    }

    // The ID is fixed in Slack; the next reload (SIGHUP) asks again, not the daily refresh.
    app.add_user("U0GHOST", "Europe/Berlin");
    app.advance(Duration::minutes(5));
    let before = app.emulator.calls_to("users.info").len();
    pulseloop::pulse::sync::apply_config(&app.state.pulses)
        .await
        .unwrap();
    assert_eq!(
        app.emulator.calls_to("users.info").len(),
        before + 1,
        "only the member with a problem is asked again"
    );
    let problems: Value = app
        .admin_get("/api/v1/programs/ops/member-problems")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(problems, serde_json::json!([]));
    app.run_at(monday_ten_berlin()).await;
    assert_eq!(app.dm_count("U0GHOST"), 1, "scheduled again");
}

#[tokio::test]
async fn check_config_online_asks_slack_about_every_member() {
    let emulator = start_emulator().await;
    emulator.add_user(slack_emulator::EmulatedUser::new("U0A", "Europe/Berlin"));
    let dir = config_folder(
        "",
        &[(
            "ops.toml",
            program_with(&["U0A", "U0GHOST"], "0 10 * * MON", 48),
        )],
    );
    let online = |token: bool| {
        let mut cmd = bin();
        cmd.args(["check-config", "--online", "--config"])
            .arg(dir.path())
            .env("SLACK_API_BASE_URL", emulator.base_url());
        if token {
            cmd.env("SLACK_BOT_TOKEN", BOT_TOKEN)
                .env("SLACK_SIGNING_SECRET", SIGNING_SECRET);
        }
        cmd
    };
    let (code, _, stderr) = run(online(true)).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("members[1].slack_id: 'U0GHOST': Slack answers user_not_found"),
        "{stderr}"
    );
    assert!(!stderr.contains("'U0A'"), "{stderr}");
    assert_eq!(emulator.calls_to("users.info").len(), 2);

    let (code, _, stderr) = run(online(false)).await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("set SLACK_BOT_TOKEN"), "{stderr}");

    emulator.add_user(slack_emulator::EmulatedUser::new("U0GHOST", "UTC"));
    let (code, stdout, stderr) = run(online(true)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("Slack knows all 2 members"), "{stdout}");
}

// ---------- item 8 ----------

#[tokio::test]
async fn a_bad_value_is_blamed_on_the_variable_that_set_it() {
    let from_env = load_with(&[("DATABASE_URL", "mysql://x")], "");
    assert_eq!(
        from_env,
        "environment variable DATABASE_URL: database.url: must start with sqlite: or postgres://, not 'mysql://x'"
    );
    let from_file = load_with(&[], "[database]\nurl = \"mysql://x\"\n");
    assert!(
        from_file.contains("pulseloop.toml: database.url: must start with"),
        "{from_file}"
    );
    let bind = load_with(&[("PULSELOOP_BIND", "localhost")], "");
    assert!(
        bind.starts_with(
            "environment variable PULSELOOP_BIND: server.bind: 'localhost' is not an address"
        ),
        "{bind}"
    );
}

/// Settings loaded from a file with this text and this environment: the error, or "ok".
fn load_with(env: &[(&str, &str)], file: &str) -> String {
    let dir = config_folder(file, &[]);
    let env: std::collections::HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match pulseloop::config::Settings::load(dir.path(), &|k| env.get(k).cloned()) {
        Ok(_) => "ok".into(),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn localhost_with_a_port_is_a_bind_address() {
    assert_eq!(load_with(&[("PULSELOOP_BIND", "localhost:3000")], ""), "ok");
    let app = TestAppBuilder::default()
        .settings(|s| s.server.bind = "localhost:0".into())
        .spawn()
        .await;
    assert!(app.state.settings.binds_loopback());
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn an_unreachable_postgresql_is_named_by_its_address() {
    let err = pulseloop::storage::Store::connect("postgres://postgres@127.0.0.1:1/nothing", 1)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("connection refused at 127.0.0.1:1"), "{err}");
    let data = tempfile::tempdir().unwrap();
    let dir = config_folder("", &[]);
    let mut serve = bin();
    serve
        .arg("serve")
        .arg("--config")
        .arg(dir.path())
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nothing")
        .env("SLACK_BOT_TOKEN", "xoxb-x")
        .env("SLACK_SIGNING_SECRET", "s")
        .env("PULSELOOP_BIND", "127.0.0.1:0")
        .current_dir(data.path());
    let (code, _, stderr) = run(serve).await;
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("cannot open the database at postgres://postgres@127.0.0.1:1/nothing")
            && stderr.contains("connection refused at 127.0.0.1:1"),
        "{stderr}"
    );
    assert!(!stderr.contains("pool timed out"), "{stderr}");
}

// ---------- item 9 ----------

#[tokio::test]
async fn business_events_are_one_structured_line_each_without_answer_values() {
    let app = pilot_at(&["U0AMY", "U0BEN"], "", ONE_SCALE, default_now()).await;
    // The tick and the DMs it sends.
    let (_, logs) = logged(async {
        app.clock.set(monday_ten_berlin());
        app.tick().await;
        app.drain_outbox().await;
    })
    .await;
    let tick = lines_saying(&logs, "scheduler tick");
    assert_eq!(tick.len(), 1, "{logs:?}");
    assert_eq!(tick[0]["planned"], 2, "a field, not a Debug string");
    assert_eq!(tick[0]["queued"], 2);
    let sent = lines_saying(&logs, "message sent to Slack");
    assert_eq!(sent.len(), 2, "{logs:?}");
    assert_eq!(sent[0]["event"], "dm_sent");
    assert_eq!(sent[0]["kind"], "pulse");

    // An answer: counted, never its value, nor who gave it.
    let msg = app.first_dm("U0AMY");
    let (block_id, action_id, value) = answer_button(&msg.blocks, "answer:4");
    let payload = app.peer.block_actions(
        "U0AMY",
        &msg.channel,
        &msg.ts,
        &action_id,
        &block_id,
        &value,
    );
    let interaction = serde_json::from_value(payload).unwrap();
    let (_, logs) = logged(pulseloop::pulse::interactions::handle(
        &app.state.pulses,
        interaction,
    ))
    .await;
    let stored = lines_saying(&logs, "answer stored");
    assert_eq!(stored.len(), 1, "{logs:?}");
    assert_eq!(stored[0]["event"], "answer_stored");
    assert_eq!(stored[0]["questions"], 1);
    assert_eq!(stored[0]["survey"], "weekly");
    let without_time: Vec<Value> = logs
        .iter()
        .map(|l| {
            let mut l = l.clone();
            l.as_object_mut().unwrap().remove("timestamp");
            l
        })
        .collect();
    let text = serde_json::to_string(&without_time).unwrap();
    assert!(
        !text.contains("U0AMY"),
        "who answered is not logged: {text}"
    );
    assert!(
        !text.contains("\"4\"") && !text.contains(":4") && !text.contains("answer:"),
        "no answer value: {text}"
    );

    // Commands and opt-outs.
    for (text, expected) in [("status", "status"), ("optout confirm", "optout_confirm")] {
        let command = serde_json::from_value(serde_json::json!({
            "command": "/pulse", "text": text, "user_id": "U0BEN",
        }))
        .unwrap();
        let (_, logs) = logged(pulseloop::pulse::commands::handle(
            &app.state.pulses,
            command,
        ))
        .await;
        let line = lines_saying(&logs, "/pulse command");
        assert_eq!(line.len(), 1, "{logs:?}");
        assert_eq!(line[0]["command"], expected);
        assert_eq!(line[0]["member"], "U0BEN");
        if expected == "optout_confirm" {
            let control = lines_saying(&logs, "member control applied");
            assert_eq!(control.len(), 1, "{logs:?}");
            assert_eq!(control[0]["event"], "opt_out");
            assert_eq!(control[0]["memberships"], 1);
        }
    }

    // Send-now.
    let program = app.state.catalog.program(&"pilot".into()).unwrap();
    let survey = program.survey("weekly").unwrap();
    app.clock
        .set(Utc.with_ymd_and_hms(2027, 1, 8, 9, 0, 0).unwrap());
    app.tick().await;
    let (sent, logs) = logged(app.state.scheduler.send_now(&program, survey)).await;
    let sent = sent.unwrap();
    let line = lines_saying(&logs, "send-now started a round");
    assert_eq!(line.len(), 1, "{logs:?}");
    assert_eq!(line[0]["event"], "send_now");
    assert_eq!(line[0]["round"], sent.number);
    assert_eq!(line[0]["round"], 2, "the survey's second round");
    assert_eq!(line[0]["deliveries"], 1, "Ben opted out");
}

fn answer_button(blocks: &Value, prefix: &str) -> (String, String, String) {
    for block in blocks.as_array().unwrap() {
        for e in block["elements"].as_array().into_iter().flatten() {
            let id = e["action_id"].as_str().unwrap_or("");
            if id.starts_with(prefix) {
                return (
                    block["block_id"].as_str().unwrap().to_string(),
                    id.to_string(),
                    e["value"].as_str().unwrap_or("").to_string(),
                );
            }
        }
    }
    panic!("no {prefix} in {blocks}");
}

#[tokio::test]
async fn users_info_is_asked_once_per_member_at_start_and_sync_reports_are_fields() {
    let app = TestAppBuilder::default()
        .user("U0A", "Europe/Berlin")
        .user("U0B", "Europe/Berlin")
        .program(
            "ops.toml",
            &program_with(&["U0A", "U0B", "U0GHOST"], "0 10 * * MON", 48),
        )
        .spawn()
        .await;
    let asked = |app: &TestApp| {
        let mut ids: Vec<String> = app
            .emulator
            .calls_to("users.info")
            .iter()
            .map(|c| c.params["user"].as_str().unwrap_or_default().to_string())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(asked(&app), vec!["U0A", "U0B", "U0GHOST"], "once each");
    // A reload at the same instant asks nobody again (the unknown one was just asked).
    let file = app.programs_dir().join("ops.toml");
    std::fs::write(
        &file,
        program_with(&["U0A", "U0B", "U0GHOST", "U0C"], "0 10 * * MON", 48),
    )
    .unwrap();
    app.add_user("U0C", "Europe/Berlin");
    let (_, logs) = logged(pulseloop::pulse::sync::apply_config(&app.state.pulses)).await;
    assert_eq!(asked(&app), vec!["U0A", "U0B", "U0C", "U0GHOST"]);
    let applied = lines_saying(&logs, "configuration applied");
    assert_eq!(applied.len(), 1, "{logs:?}");
    assert_eq!(applied[0]["members_added"], 1, "a field: {}", applied[0]);
    assert_eq!(applied[0]["program"], "ops");
}

#[test]
fn migrate_says_what_it_applied() {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", data.path().join("p.db").display());
    let first = bin()
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert_eq!(first.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("applied 20261126000001 initial")
            && stdout.contains("applied 20261202000500 first start and round numbers"),
        "{stdout}"
    );
    let again = bin()
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(!stdout.contains("applied 2026"), "{stdout}");
    assert!(stdout.contains("; 0 applied now"), "{stdout}");
}

// ---------- item 10 ----------

#[tokio::test]
async fn a_cadence_faster_than_its_window_is_refused_and_one_that_never_fires_is_warned() {
    let dir = config_folder(
        "",
        &[("ops.toml", program_with(&["U0A"], "* * * * * *", 1))],
    );
    let mut check = bin();
    check.arg("check-config").arg("--config").arg(dir.path());
    let (code, _, stderr) = run(check).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("surveys[0].cadence: '* * * * * *' fires again after 1 second, but a round stays open 1 hours (window_hours)"),
        "{stderr}"
    );
    // Daily with a two-day window: rounds would overlap.
    let daily = config_folder("", &[("ops.toml", program_with(&["U0A"], "0 9 * * *", 48))]);
    let mut check = bin();
    check.arg("check-config").arg("--config").arg(daily.path());
    let (code, _, stderr) = run(check).await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("fires again after 24 hours"), "{stderr}");

    // The service refuses it at load too (start or reload).
    let app = TestAppBuilder::default()
        .user("U0A", "Europe/Berlin")
        .program("ops.toml", &program_with(&["U0A"], "0 10 * * MON", 48))
        .spawn()
        .await;
    std::fs::write(
        app.programs_dir().join("ops.toml"),
        program_with(&["U0A"], "* * * * * *", 1),
    )
    .unwrap();
    let err = pulseloop::pulse::sync::apply_config(&app.state.pulses)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("fires again after 1 second"), "{err}");

    // Never fires: valid, with a warning on standard error (and in the log at load).
    let never = config_folder(
        "",
        &[("ops.toml", program_with(&["U0A"], "0 9 30 FEB *", 48))],
    );
    let mut check = bin();
    check.arg("check-config").arg("--config").arg(never.path());
    let (code, stdout, stderr) = run(check).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("is valid"), "{stdout}");
    assert!(
        stderr.contains("warning: ")
            && stderr.contains("surveys[0].cadence: '0 9 30 FEB *' never fires"),
        "{stderr}"
    );
    std::fs::write(
        app.programs_dir().join("ops.toml"),
        program_with(&["U0A"], "0 9 30 FEB *", 48),
    )
    .unwrap();
    let (result, logs) = logged(pulseloop::pulse::sync::apply_config(&app.state.pulses)).await;
    result.unwrap();
    let warned = lines_saying(&logs, "configuration warning");
    assert_eq!(warned.len(), 1, "{logs:?}");
    assert!(warned[0]["problem"]
        .as_str()
        .unwrap()
        .contains("never fires"));
}

#[tokio::test]
async fn the_schedule_api_is_bounded_in_days_and_rows() {
    // 100 members, every working day: about 100 × 261 rows a year, over the API's cap.
    let members: Vec<String> = (0..100).map(|i| format!("U0M{i:02}")).collect();
    let refs: Vec<&str> = members.iter().map(String::as_str).collect();
    let mut builder = TestAppBuilder::default();
    for m in &refs {
        builder = builder.user(m, "Europe/Berlin");
    }
    let app = builder
        .program("ops.toml", &program_with(&refs, "0 9 * * *", 24))
        .spawn()
        .await;
    let r = app
        .admin_get("/api/v1/programs/ops/schedule?days=367")
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["detail"],
        "days must be a whole number from 1 to 366, not '367'"
    );
    let r = app
        .admin_get("/api/v1/programs/ops/schedule?days=366")
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "bad_request");
    assert_eq!(
        body["detail"],
        "the schedule for the next 366 days has more than 20000 deliveries; ask for fewer days"
    );
    let r = app.admin_get("/api/v1/programs/ops/schedule?days=30").await;
    assert_eq!(r.status(), 200);
    let rows: Value = r.json().await.unwrap();
    assert!(rows.as_array().unwrap().len() >= 100 * 20);
}

#[test]
fn schedule_preview_piped_into_head_exits_quietly() {
    // Several members, hourly for a year: far more than a pipe buffer.
    let members: Vec<String> = (0..20).map(|i| format!("U0M{i:02}")).collect();
    let refs: Vec<&str> = members.iter().map(String::as_str).collect();
    let dir = config_folder("", &[("ops.toml", program_with(&refs, "0 * * * *", 1))]);
    let data = tempfile::tempdir().unwrap();
    for json in [false, true] {
        let mut cmd = bin();
        cmd.args([
            "schedule",
            "preview",
            "--program",
            "ops",
            "--days",
            "366",
            "--config",
        ])
        .arg(dir.path())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", data.path().join("none.db").display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        if json {
            cmd.arg("--json");
        }
        let mut child = cmd.spawn().unwrap();
        // Read a few lines, then close the pipe, as `head -3` does.
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        for _ in 0..3 {
            lines.next().unwrap().unwrap();
        }
        drop(lines);
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "json={json}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains("error"), "{stderr}");
    }
}
