//! The admin API's configuration writes (cadence, pause/resume, members, sponsor channel)
//! and the precedence between run-time edits and the program files.

use crate::helpers::*;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};

pub const PROGRAM: &str = r#"
id = "pilot"
name = "Pilot"
timezone = "Europe/Berlin"
start_date = "2027-01-04"
admins = ["U0ADMIN01"]
owners = ["U0OWNER01"]
sponsor_channels = ["C0SPONSOR1"]

[[members]]
slack_id = "U0MEMBER1"
role = "participant"
timezone = "Europe/Berlin"

[[members]]
slack_id = "U0MEMBER2"
role = "leader"
timezone = "Europe/Berlin"

[[surveys]]
id = "weekly"
name = "Weekly pulse"
cadence = "0 10 * * MON"
window_hours = 48
anonymity = "anonymous"
[[surveys.questions]]
key = "value"
kind = "scale"
prompt = "How valuable was coaching?"
"#;

/// Sunday 3 January 2027, 12:00 UTC.
pub fn sunday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 3, 12, 0, 0).unwrap()
}

pub async fn pilot_app() -> TestApp {
    TestAppBuilder::default()
        .user("U0MEMBER1", "Europe/Berlin")
        .user("U0MEMBER2", "Europe/Berlin")
        .user("U0ADMIN01", "Europe/Berlin")
        .user("U0NEWBIE1", "Asia/Kolkata")
        .now(sunday())
        .program("pilot.toml", PROGRAM)
        .spawn()
        .await
}

/// The local times of the next 14 days' deliveries to `member`.
pub async fn local_times(app: &TestApp, member: &str) -> Vec<String> {
    let r = app
        .admin_get("/api/v1/programs/pilot/schedule?days=14")
        .await;
    assert_eq!(r.status(), 200);
    let rows: Vec<Value> = r.json().await.unwrap();
    rows.iter()
        .filter(|e| e["member"] == member)
        .map(|e| e["local_time"].as_str().unwrap().to_string())
        .collect()
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app.http.request(method, format!("{}{path}", app.base_url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.expect("request")
}

pub async fn put_cadence(app: &TestApp, body: Value) -> reqwest::Response {
    send(
        app,
        reqwest::Method::PUT,
        "/api/v1/programs/pilot/surveys/weekly/cadence",
        Some(ADMIN_TOKEN),
        Some(body),
    )
    .await
}

async fn admin_actions(app: &TestApp) -> Vec<Value> {
    let r = app
        .admin_get("/api/v1/audit?program=pilot&limit=1000")
        .await;
    let entries: Vec<Value> = r.json().await.unwrap();
    entries
        .into_iter()
        .filter(|e| e["actor"] != "config")
        .collect()
}

async fn reload(app: &TestApp) {
    pulseloop::pulse::sync::apply_config(&app.state.pulses)
        .await
        .expect("reload");
}

const MONDAYS: [&str; 2] = ["2027-01-04T10:00:00+01:00", "2027-01-11T10:00:00+01:00"];

#[tokio::test]
async fn without_the_token_or_with_a_wrong_one_nothing_can_be_changed() {
    let app = pilot_app().await;
    let writes: [(reqwest::Method, &str, Option<Value>); 5] = [
        (
            reqwest::Method::PUT,
            "/api/v1/programs/pilot/surveys/weekly/cadence",
            Some(json!({ "cadence": "0 9 * * TUE" })),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/programs/pilot/surveys/weekly/pause",
            None,
        ),
        (
            reqwest::Method::POST,
            "/api/v1/programs/pilot/surveys/weekly/resume",
            None,
        ),
        (
            reqwest::Method::POST,
            "/api/v1/programs/pilot/members",
            Some(json!({ "add": ["U0NEWBIE1"] })),
        ),
        (
            reqwest::Method::PUT,
            "/api/v1/programs/pilot/sponsor-channel",
            Some(json!({ "channel": "C0OTHER001" })),
        ),
    ];
    for (method, path, body) in writes {
        for token in [None, Some("not-the-token")] {
            let r = send(&app, method.clone(), path, token, body.clone()).await;
            assert_eq!(r.status(), 401, "{method} {path} with {token:?}");
            let b: Value = r.json().await.unwrap();
            assert_eq!(b["error"], "unauthorized");
        }
    }
    assert_eq!(local_times(&app, "U0MEMBER1").await, MONDAYS);
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM config_overrides", 0),
        (
            "SELECT COUNT(*) FROM members WHERE slack_user_id = 'U0NEWBIE1'",
            0,
        ),
        ("SELECT COUNT(*) FROM audit_log WHERE actor <> 'config'", 0),
    ])
    .await;
}

#[tokio::test]
async fn a_bad_cron_is_422_naming_the_field_and_changes_nothing() {
    let app = pilot_app().await;
    let r = put_cadence(&app, json!({ "cadence": "0 25 * * MON", "every_weeks": 1 })).await;
    assert_eq!(r.status(), 422);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"], "unprocessable");
    assert_eq!(b["field"], "cadence");
    assert!(b["detail"].as_str().unwrap().contains("hour"), "{b}");

    let r = put_cadence(
        &app,
        json!({ "cadence": "0 10 * * MON", "every_weeks": 99 }),
    )
    .await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "every_weeks");

    let r = put_cadence(&app, json!({ "cron": "0 10 * * MON" })).await;
    assert_eq!(r.status(), 400, "an unknown body field is a bad request");

    let r = send(
        &app,
        reqwest::Method::PUT,
        "/api/v1/programs/pilot/surveys/nope/cadence",
        Some(ADMIN_TOKEN),
        Some(json!({ "cadence": "0 9 * * TUE" })),
    )
    .await;
    assert_eq!(r.status(), 404);

    assert_eq!(local_times(&app, "U0MEMBER1").await, MONDAYS);
    app.assert_count("SELECT COUNT(*) FROM config_overrides", 0)
        .await;
    assert!(admin_actions(&app).await.is_empty());
}

#[tokio::test]
async fn a_good_cadence_edit_changes_the_next_sends_and_is_audited_with_before_and_after() {
    let app = pilot_app().await;
    let r = put_cadence(&app, json!({ "cadence": "0 9 * * TUE", "every_weeks": 2 })).await;
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["cadence"], "0 9 * * TUE");
    assert_eq!(b["every_weeks"], 2);
    assert_eq!(
        b["described"],
        "Tuesdays 09:00, every 2 weeks, each member's local time"
    );
    let next: Vec<&str> = b["next_sends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["local_time"].as_str().unwrap())
        .collect();
    assert_eq!(
        next,
        [
            "2027-01-05T09:00:00+01:00",
            "2027-01-19T09:00:00+01:00",
            "2027-02-02T09:00:00+01:00",
            "2027-02-16T09:00:00+01:00",
            "2027-03-02T09:00:00+01:00"
        ]
    );
    // The schedule the scheduler follows changed with it.
    assert_eq!(
        local_times(&app, "U0MEMBER1").await,
        ["2027-01-05T09:00:00+01:00"]
    );
    // So does what the scheduler does on Monday at 10:00 (nothing) and Tuesday at 9:00.
    app.run_at(Utc.with_ymd_and_hms(2027, 1, 4, 9, 0, 0).unwrap())
        .await;
    app.assert_count("SELECT COUNT(*) FROM deliveries", 0).await;
    app.run_at(Utc.with_ymd_and_hms(2027, 1, 5, 8, 0, 0).unwrap())
        .await;
    app.assert_count("SELECT COUNT(*) FROM deliveries", 2).await;

    let audit = admin_actions(&app).await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["actor"], "api");
    assert_eq!(audit[0]["action"], "admin.cadence.set");
    assert_eq!(audit[0]["subject"], "weekly");
    assert_eq!(
        audit[0]["detail"]["before"],
        json!({ "cadence": "0 10 * * MON", "every_weeks": 1 })
    );
    assert_eq!(
        audit[0]["detail"]["after"],
        json!({ "cadence": "0 9 * * TUE", "every_weeks": 2 })
    );
}

#[tokio::test]
async fn a_paused_survey_sends_nothing_until_resumed() {
    let app = pilot_app().await;
    let r = app
        .admin_post("/api/v1/programs/pilot/surveys/weekly/pause")
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["paused"], true);
    assert!(local_times(&app, "U0MEMBER1").await.is_empty());
    app.send_monday_pulse().await;
    app.assert_count("SELECT COUNT(*) FROM deliveries", 0).await;
    assert_eq!(app.dm_count("U0MEMBER1"), 0);

    let r = app
        .admin_post("/api/v1/programs/pilot/surveys/weekly/resume")
        .await;
    assert_eq!(r.status(), 200);
    // The clock stands at Monday 10:00 Berlin: that firing is due again (sent late, as the
    // misfire policy says), and next week's.
    assert_eq!(local_times(&app, "U0MEMBER1").await, MONDAYS);
    let actions: Vec<Value> = admin_actions(&app)
        .await
        .iter()
        .map(|e| e["action"].clone())
        .collect();
    assert_eq!(
        actions,
        [json!("admin.survey.resumed"), json!("admin.survey.paused")]
    );
    // Back at the file's value: no edit is left to hold.
    app.assert_count("SELECT COUNT(*) FROM config_overrides", 0)
        .await;
}

#[tokio::test]
async fn a_run_time_edit_survives_a_reload_of_an_unchanged_file_and_yields_to_a_changed_one() {
    let app = pilot_app().await;
    assert_eq!(
        put_cadence(&app, json!({ "cadence": "0 9 * * TUE" }))
            .await
            .status(),
        200
    );
    let r = app.admin_get("/api/v1/programs/pilot/config").await;
    let config: Value = r.json().await.unwrap();
    assert_eq!(config["surveys"][0]["cadence_source"]["source"], "edit");
    assert_eq!(config["surveys"][0]["cadence_source"]["by"], "api");
    assert_eq!(config["surveys"][0]["paused_source"]["source"], "file");

    // SIGHUP with the file unchanged: the edit holds, and nothing is re-audited.
    reload(&app).await;
    reload(&app).await;
    assert_eq!(
        local_times(&app, "U0MEMBER1").await,
        ["2027-01-05T09:00:00+01:00", "2027-01-12T09:00:00+01:00"]
    );
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM config_overrides", 1),
        (
            "SELECT COUNT(*) FROM audit_log WHERE action = 'survey.updated'",
            0,
        ),
    ])
    .await;

    // The file's cadence changes: the file wins and the edit is dropped, audited as such.
    let changed = PROGRAM.replace("cadence = \"0 10 * * MON\"", "cadence = \"0 11 * * WED\"");
    std::fs::write(app.programs_dir().join("pilot.toml"), changed).unwrap();
    reload(&app).await;
    assert_eq!(
        local_times(&app, "U0MEMBER1").await,
        ["2027-01-06T11:00:00+01:00", "2027-01-13T11:00:00+01:00"]
    );
    app.assert_count("SELECT COUNT(*) FROM config_overrides", 0)
        .await;
    let r = app
        .admin_get("/api/v1/audit?program=pilot&limit=1000")
        .await;
    let entries: Vec<Value> = r.json().await.unwrap();
    let dropped: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "override.dropped")
        .collect();
    assert_eq!(dropped.len(), 1, "{entries:?}");
    assert_eq!(dropped[0]["actor"], "config");
    assert_eq!(
        dropped[0]["detail"]["before"],
        json!({ "cadence": "0 9 * * TUE", "every_weeks": 1 })
    );
    assert_eq!(
        dropped[0]["detail"]["after"],
        json!({ "cadence": "0 11 * * WED", "every_weeks": 1 })
    );
    assert_eq!(dropped[0]["detail"]["edited_by"], "api");
    let config: Value = app
        .admin_get("/api/v1/programs/pilot/config")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(config["surveys"][0]["cadence_source"]["source"], "file");
}

#[tokio::test]
async fn members_and_the_sponsor_channel_are_edited_audited_and_kept_across_reloads() {
    let app = pilot_app().await;
    let r = send(
        &app,
        reqwest::Method::POST,
        "/api/v1/programs/pilot/members",
        Some(ADMIN_TOKEN),
        Some(json!({ "add": ["U0NEWBIE1"], "remove": ["U0MEMBER2"] })),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({ "added": ["U0NEWBIE1"], "removed": ["U0MEMBER2"] })
    );
    // Someone already in cannot be added again; nothing changes.
    let r = send(
        &app,
        reqwest::Method::POST,
        "/api/v1/programs/pilot/members",
        Some(ADMIN_TOKEN),
        Some(json!({ "add": ["U0MEMBER1"] })),
    )
    .await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "add");

    let r = send(
        &app,
        reqwest::Method::PUT,
        "/api/v1/programs/pilot/sponsor-channel",
        Some(ADMIN_TOKEN),
        Some(json!({ "channel": "#general" })),
    )
    .await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "channel");
    let r = send(
        &app,
        reqwest::Method::PUT,
        "/api/v1/programs/pilot/sponsor-channel",
        Some(ADMIN_TOKEN),
        Some(json!({ "channel": "C0OTHER001" })),
    )
    .await;
    assert_eq!(r.status(), 200);

    let config_audits = "SELECT COUNT(*) FROM audit_log WHERE actor = 'config'";
    let before_reload = app.count(config_audits).await;
    reload(&app).await;
    // The reload finds the edits in force already: it changes (and audits) nothing.
    app.assert_count(config_audits, before_reload).await;
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM members WHERE slack_user_id = 'U0NEWBIE1' AND state = 'active' AND source = 'file'", 1),
        ("SELECT COUNT(*) FROM members WHERE slack_user_id = 'U0MEMBER2' AND state = 'deactivated'", 1),
        ("SELECT COUNT(*) FROM programs WHERE settings LIKE '%C0OTHER001%' AND settings NOT LIKE '%C0SPONSOR1%'", 1),
        ("SELECT COUNT(*) FROM audit_log WHERE actor = 'api' AND action IN ('admin.member.added', 'admin.member.removed', 'admin.sponsor_channel.set')", 3),
    ])
    .await;
    assert_eq!(
        app.state
            .catalog
            .program(&"pilot".into())
            .unwrap()
            .sponsor_channels,
        ["C0OTHER001"]
    );
    // The newcomer is in the schedule (Kolkata time); the removed leader is not.
    let r = app
        .admin_get("/api/v1/programs/pilot/schedule?days=14")
        .await;
    let rows: Vec<Value> = r.json().await.unwrap();
    assert!(rows.iter().any(|e| e["member"] == "U0NEWBIE1"));
    assert!(!rows.iter().any(|e| e["member"] == "U0MEMBER2"));

    // The file starts naming the removed member's removal itself (drops them): the edit is
    // moot and dropped; the file now decides.
    let changed = PROGRAM.replace(
        "[[members]]\nslack_id = \"U0MEMBER2\"\nrole = \"leader\"\ntimezone = \"Europe/Berlin\"\n",
        "",
    );
    assert_ne!(changed, PROGRAM);
    std::fs::write(app.programs_dir().join("pilot.toml"), changed).unwrap();
    reload(&app).await;
    app.assert_count(
        "SELECT COUNT(*) FROM config_overrides WHERE field = 'member:U0MEMBER2'",
        0,
    )
    .await;
    app.assert_count(
        "SELECT COUNT(*) FROM config_overrides WHERE field = 'member:U0NEWBIE1'",
        1,
    )
    .await;
}

/// `pulseloop check-config` against the app's configuration folder and `database_url`.
fn check_config(app: &TestApp, database_url: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pulseloop"))
        .args(["check-config", "--config"])
        .arg(app.config_dir.path())
        .env("DATABASE_URL", database_url)
        .env_remove("SLACK_BOT_TOKEN")
        .env_remove("PULSELOOP_CONFIG")
        .output()
        .expect("pulseloop runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn check_config_says_where_each_value_came_from() {
    let app = pilot_app().await;
    assert_eq!(
        put_cadence(&app, json!({ "cadence": "0 9 * * TUE" }))
            .await
            .status(),
        200
    );
    let stdout = check_config(&app, &app.db.url);
    assert!(
        stdout.contains(
            "pilot/weekly.cadence = 0 9 * * TUE every 1 week(s)  [run-time edit by api on"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("pilot/weekly.paused = false  [file]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("pilot.sponsor_channels = [\"C0SPONSOR1\"]  [file]"),
        "{stdout}"
    );

    // Without a database every value is the file's (and no database file is created).
    let missing = app.config_dir.path().join("absent.db");
    let stdout = check_config(&app, &format!("sqlite://{}", missing.display()));
    assert!(stdout.contains("no database at"), "{stdout}");
    assert!(
        stdout.contains("pilot/weekly.cadence = 0 10 * * MON every 1 week(s)  [file]"),
        "{stdout}"
    );
    assert!(!missing.exists());
}
