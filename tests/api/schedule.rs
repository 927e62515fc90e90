//! Cadences over real time zones, idempotent scheduling, the schedule preview and send-now.

use crate::helpers::*;
use chrono::{DateTime, Duration, TimeZone, Utc};
use pulseloop::clock::ManualClock;
use serde_json::Value;
use slack_emulator::EmulatedUser;

const ZONES: [(&str, &str); 5] = [
    ("U0LA", "America/Los_Angeles"),
    ("U0LDN", "Europe/London"),
    ("U0KOL", "Asia/Kolkata"),
    ("U0KTM", "Asia/Kathmandu"),
    ("U0AKL", "Pacific/Auckland"),
];

fn world_program(start: &str, survey: &str, extra_members: &str) -> String {
    let mut toml = format!(
        "id = \"world\"\nname = \"World Program\"\ntimezone = \"Europe/Berlin\"\nstart_date = \"{start}\"\nholidays = [\"2027-04-26\"]\n"
    );
    for (id, tz) in ZONES {
        toml.push_str(&format!(
            "[[members]]\nslack_id = \"{id}\"\nrole = \"leader\"\ntimezone = \"{tz}\"\n"
        ));
    }
    toml.push_str(extra_members);
    toml.push_str(survey);
    toml
}

const WEEKLY_NINE: &str = r#"
[[surveys]]
id = "weekly"
cadence = "0 9 * * MON"
window_hours = 48
anonymity = "confidential"
[[surveys.questions]]
key = "value"
kind = "scale"
prompt = "How valuable was coaching?"
"#;

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

/// Working hours all day, so a DM sent late goes out at once in every zone.
fn all_day(toml: &str) -> String {
    toml.replacen(
        "holidays = [",
        "working_hours = [\"00:00\", \"23:59\"]\nholidays = [",
        1,
    )
}

async fn world_app(toml: &str, now: DateTime<Utc>) -> TestApp {
    let mut app = TestAppBuilder::default();
    for (id, tz) in ZONES {
        app = app.user(id, tz);
    }
    app.user("U0SUNTHU", "Asia/Jerusalem")
        .now(now)
        .program("world.toml", toml)
        .spawn()
        .await
}

#[tokio::test]
async fn monday_nine_local_in_five_zones_across_both_hemispheres_dst_changes() {
    // 2027-03-01 … 2027-04-19: US DST starts 14 March, EU 28 March, New Zealand ends 4 April.
    let start = utc(2027, 2, 28, 0, 0);
    let app = world_app(&world_program("2027-03-01", WEEKLY_NINE, ""), start).await;
    let end = utc(2027, 4, 20, 0, 0);
    // Tick every 15 minutes (every firing here is on a quarter hour) and send what is due.
    while app.now() < end {
        app.tick().await;
        app.drain_outbox().await;
        app.advance(Duration::minutes(15));
    }
    let expected: [(&str, [DateTime<Utc>; 3]); 5] = [
        (
            "U0LA",
            [
                utc(2027, 3, 8, 17, 0),
                utc(2027, 3, 15, 16, 0),
                utc(2027, 4, 19, 16, 0),
            ],
        ),
        (
            "U0LDN",
            [
                utc(2027, 3, 22, 9, 0),
                utc(2027, 3, 29, 8, 0),
                utc(2027, 4, 5, 8, 0),
            ],
        ),
        (
            "U0KOL",
            [
                utc(2027, 3, 1, 3, 30),
                utc(2027, 3, 29, 3, 30),
                utc(2027, 4, 19, 3, 30),
            ],
        ),
        (
            "U0KTM",
            [
                utc(2027, 3, 1, 3, 15),
                utc(2027, 3, 29, 3, 15),
                utc(2027, 4, 19, 3, 15),
            ],
        ),
        (
            "U0AKL",
            [
                utc(2027, 3, 28, 20, 0),
                utc(2027, 4, 4, 21, 0),
                utc(2027, 4, 18, 21, 0),
            ],
        ),
    ];
    for (user, instants) in expected {
        let posts: Vec<DateTime<Utc>> = app
            .emulator
            .calls_to("chat.postMessage")
            .iter()
            .filter(|c| c.params["channel"] == user)
            .map(|c| c.at)
            .collect();
        assert_eq!(
            posts.len(),
            8,
            "{user}: one DM per week for 8 weeks, none twice, none skipped"
        );
        let rows = delivery_times(&app, user).await;
        assert_eq!(rows.len(), 8, "{user}: 8 deliveries");
        for i in instants {
            assert!(
                rows.iter().any(|(at, _)| *at == i),
                "{user}: expected a delivery at {i}, got {rows:?}"
            );
        }
        for (_, local) in &rows {
            assert!(
                local.contains("T09:00:00"),
                "{user}: {local} is 09:00 local"
            );
        }
        let mut weeks: Vec<_> = rows
            .iter()
            .map(|(at, _)| at.format("%G-%V").to_string())
            .collect();
        weeks.dedup();
        assert_eq!(weeks.len(), 8, "{user}: no week twice");
    }
    app.assert_count_because(
        "SELECT COUNT(*) FROM deliveries WHERE sent_at <> scheduled_at",
        0,
        "each DM went out at its firing instant",
    )
    .await;
}

async fn delivery_times(app: &TestApp, user: &str) -> Vec<(DateTime<Utc>, String)> {
    let sql =
        "SELECT d.scheduled_at, d.local_time FROM deliveries d JOIN members m ON m.id = d.member_id
               WHERE m.slack_user_id = $1 ORDER BY d.scheduled_at";
    let rows: Vec<(i64, String)> = if app.db.url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
        sqlx::query_as(sql)
            .bind(user)
            .fetch_all(&pool)
            .await
            .unwrap()
    } else {
        let pool = sqlx::SqlitePool::connect(&app.db.url).await.unwrap();
        sqlx::query_as(sql)
            .bind(user)
            .fetch_all(&pool)
            .await
            .unwrap()
    };
    rows.into_iter()
        .map(|(ms, local)| (Utc.timestamp_millis_opt(ms).unwrap(), local))
        .collect()
}

async fn preview(app: &TestApp, days: u32) -> Vec<Value> {
    let r = app
        .admin_get(&format!("/api/v1/programs/world/schedule?days={days}"))
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn every_two_weeks_working_days_and_holidays_in_the_preview() {
    let survey = r#"
[[surveys]]
id = "biweekly"
cadence = "0 9 * * MON"
every_weeks = 2
[[surveys.questions]]
key = "v"
kind = "yes_no"
prompt = "Good week?"
[[surveys]]
id = "daily"
audience = ["participant"]
cadence = "0 9 * * *"
window_hours = 24
[[surveys.questions]]
key = "d"
kind = "scale"
prompt = "Energy today?"
"#;
    let extra = "[[members]]\nslack_id = \"U0SUNTHU\"\nrole = \"participant\"\ntimezone = \"Asia/Jerusalem\"\nworking_days = [\"SUN\", \"MON\", \"TUE\", \"WED\", \"THU\"]\n";
    // The non-working-day policy is the program's: here firings on days off are dropped.
    let toml = world_program("2027-04-05", survey, extra).replacen(
        "holidays = [",
        "on_non_working_day = \"skip\"\nholidays = [",
        1,
    );
    let app = world_app(&toml, utc(2027, 4, 4, 0, 0)).await;
    let rows = preview(&app, 28).await;
    // Shape of the contract.
    let first = &rows[0];
    for field in ["member", "survey", "local_time", "utc"] {
        assert!(first.get(field).is_some(), "{first}");
    }
    // Ordered by UTC, then member, then survey.
    let keys: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["utc"].as_str().unwrap().into(),
                r["member"].as_str().unwrap().into(),
                r["survey"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);

    let london: Vec<&str> = rows
        .iter()
        .filter(|r| r["member"] == "U0LDN" && r["survey"] == "biweekly")
        .map(|r| r["local_time"].as_str().unwrap())
        .collect();
    // Weeks of 5 and 19 April (start week and two later); 26 April is a holiday → skipped.
    assert_eq!(
        london,
        vec!["2027-04-05T09:00:00+01:00", "2027-04-19T09:00:00+01:00"]
    );

    let sun_thu: Vec<String> = rows
        .iter()
        .filter(|r| r["member"] == "U0SUNTHU" && r["survey"] == "daily")
        .map(|r| {
            let local = DateTime::parse_from_rfc3339(r["local_time"].as_str().unwrap()).unwrap();
            local.format("%a").to_string()
        })
        .collect();
    assert!(!sun_thu.is_empty());
    assert!(
        sun_thu
            .iter()
            .all(|d| ["Sun", "Mon", "Tue", "Wed", "Thu"].contains(&d.as_str())),
        "{sun_thu:?}"
    );
    assert!(sun_thu.contains(&"Sun".to_string()));
}

#[tokio::test]
async fn the_schedule_api_checks_its_input() {
    let app = world_app(
        &world_program("2027-03-01", WEEKLY_NINE, ""),
        utc(2027, 3, 1, 0, 0),
    )
    .await;
    let r = app
        .admin_get("/api/v1/programs/world/schedule?days=zero")
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "bad_request");
    assert!(body["detail"].as_str().unwrap().contains("days"));
    assert_eq!(
        app.admin_get("/api/v1/programs/nope/schedule")
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get("/api/v1/programs/world/schedule").await.status(),
        401
    );
    let rows = preview(&app, 7).await;
    assert_eq!(rows.len(), 5, "one Monday for each of five members");
}

#[tokio::test]
async fn two_ticks_at_once_create_one_delivery_each() {
    // First started before the firings; the catch-up at 18:00 UTC is sent at once (working
    // hours all day: late DMs wait for them).
    let app = world_app(
        &all_day(&world_program("2027-03-01", WEEKLY_NINE, "")),
        utc(2027, 2, 28, 0, 0),
    )
    .await;
    app.clock.set(utc(2027, 3, 1, 18, 0));
    let (a, b) = tokio::join!(app.tick(), app.tick());
    assert_eq!(a.planned + b.planned, 5);
    let (c, d) = tokio::join!(app.tick(), app.tick());
    assert_eq!(c.planned + d.planned, 0);
    app.assert_count("SELECT COUNT(*) FROM deliveries", 5).await;
    app.drain_outbox().await;
    assert_eq!(app.emulator.calls_to("chat.postMessage").len(), 5);
}

#[tokio::test]
async fn two_app_instances_on_one_database_send_one_dm_each() {
    let db = TestDb::new().await;
    let emulator = start_emulator().await;
    for (id, tz) in ZONES {
        emulator.add_user(EmulatedUser::new(id, tz));
    }
    let clock = ManualClock::new(utc(2027, 2, 28, 0, 0));
    let toml = all_day(&world_program("2027-03-01", WEEKLY_NINE, ""));
    let (a, b) =
        spawn_two(|| TestAppBuilder::sharing(&db, &emulator, &clock).program("w.toml", &toml))
            .await;
    clock.set(utc(2027, 3, 1, 18, 0));
    for _ in 0..3 {
        let _ = tokio::join!(a.tick(), b.tick(), a.drain_outbox(), b.drain_outbox());
    }
    let _ = tokio::join!(a.drain_outbox(), b.drain_outbox());
    a.assert_counts(&[
        ("SELECT COUNT(*) FROM deliveries", 5),
        ("SELECT COUNT(*) FROM rounds", 1),
    ])
    .await;
    let posts = emulator.calls_to("chat.postMessage");
    let mut users: Vec<_> = posts
        .iter()
        .map(|c| c.params["channel"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(users.len(), 5, "{users:?}");
    users.sort();
    users.dedup();
    assert_eq!(users.len(), 5);
}

#[tokio::test]
async fn send_now_starts_one_round_and_refuses_a_second() {
    let app = world_app(
        &world_program("2027-03-01", WEEKLY_NINE, ""),
        utc(2027, 3, 3, 12, 0),
    )
    .await;
    assert_eq!(
        app.http
            .post(format!(
                "{}/api/v1/programs/world/surveys/weekly/send-now",
                app.base_url
            ))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let wrong = app
        .http
        .post(format!(
            "{}/api/v1/programs/world/surveys/weekly/send-now",
            app.base_url
        ))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let r = app
        .admin_post("/api/v1/programs/world/surveys/weekly/send-now")
        .await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["deliveries"], 5);
    assert!(body["round"].is_string());
    app.drain_outbox().await;
    assert_eq!(app.emulator.calls_to("chat.postMessage").len(), 5);
    let again = app
        .admin_post("/api/v1/programs/world/surveys/weekly/send-now")
        .await;
    assert_eq!(again.status(), 409);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"], "conflict");
    assert_eq!(
        app.admin_post("/api/v1/programs/world/surveys/nope/send-now")
            .await
            .status(),
        404
    );
    app.assert_count(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'survey.send_now'",
        1,
    )
    .await;
}

#[tokio::test]
async fn after_downtime_a_missed_firing_is_sent_late_or_skipped_as_configured() {
    // The service first ran on Sunday, was down at 09:00 Monday in every zone and comes
    // back on Tuesday 00:00 UTC.
    let first = utc(2027, 2, 28, 0, 0);
    let back = utc(2027, 3, 2, 0, 0);
    let late = world_app(&world_program("2027-03-01", WEEKLY_NINE, ""), first).await;
    late.clock.set(back);
    let report = late.tick().await;
    late.drain_outbox().await;
    // Every zone's Monday 09:00 has passed (Los Angeles last, at 17:00 UTC), and all five
    // are still inside their 48-hour windows.
    assert_eq!(report.planned, 5);
    assert_eq!(
        late.emulator.calls_to("chat.postMessage").len(),
        2,
        "send_late: sent as soon as each member's working hours allow (Los Angeles at 16:00, \
         Auckland at 13:00; the others are asleep)"
    );

    let toml = world_program("2027-03-01", WEEKLY_NINE, "").replacen(
        "holidays = [",
        "misfire = \"skip\"\nholidays = [",
        1,
    );
    let skip = world_app(&toml, first).await;
    skip.clock.set(back);
    let report = skip.tick().await;
    skip.drain_outbox().await;
    assert_eq!(report.skipped, 5);
    assert_eq!(
        skip.emulator.calls_to("chat.postMessage").len(),
        0,
        "skip: nothing sent late"
    );
    skip.assert_count("SELECT COUNT(*) FROM deliveries WHERE state = 'skipped'", 5)
        .await;
    // Idempotent: the next tick neither re-plans nor sends them.
    assert_eq!(skip.tick().await.planned, 0);
}
