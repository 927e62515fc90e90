//! The README walkthrough on any day (issue 11, items 1-5): a first start catches up nothing
//! from before it and says which rounds it opens; late DMs wait for working hours; the
//! reminder counts from the send; rounds are numbered per survey; Slack status changes and
//! held members' re-read status release held pulses.

use crate::helpers::*;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use std::future::Future;
use std::sync::{Arc, Mutex};
use tracing::instrument::WithSubscriber;

/// What the service logs while `fut` runs on this task, one JSON object per line.
pub async fn logged<T>(fut: impl Future<Output = T>) -> (T, Vec<Value>) {
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Sink {
        type Writer = Sink;
        fn make_writer(&'a self) -> Sink {
            self.clone()
        }
    }
    let sink = Sink::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_max_level(tracing::Level::INFO)
        .with_writer(sink.clone())
        .finish();
    // With a single live subscriber tracing caches a callsite's interest from whichever
    // thread hits it first (another test's, with none: "never"). A second live dispatcher
    // (registering it also rebuilds every cached interest) makes it ask all live ones.
    let second = tracing::Dispatch::new(tracing_subscriber::registry());
    let out = fut.with_subscriber(subscriber).await;
    drop(second);
    let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON log line"))
        .collect();
    (out, lines)
}

/// The log lines with this message.
pub fn lines_saying<'a>(logs: &'a [Value], message: &str) -> Vec<&'a Value> {
    logs.iter().filter(|l| l["message"] == message).collect()
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

const SCALE: &str = r#"[[surveys.questions]]
key = "value"
kind = "scale"
prompt = "How valuable was coaching this week?"
"#;

/// The README's example in small: a weekly pulse on Mondays at 10:00 and a monthly one on
/// the 1st, `start_date` long past, `misfire = "send_late"` (the default).
fn walkthrough_program(members: &[(&str, &str)], remind_after_hours: u32) -> String {
    let mut toml = String::from(
        "id = \"walk\"\nname = \"Walkthrough\"\ntimezone = \"Europe/London\"\nstart_date = \"2026-06-01\"\n",
    );
    for (id, tz) in members {
        toml.push_str(&format!(
            "[[members]]\nslack_id = \"{id}\"\nrole = \"participant\"\ntimezone = \"{tz}\"\n"
        ));
    }
    toml.push_str(&format!(
        "[[surveys]]\nid = \"weekly\"\ncadence = \"0 10 * * MON\"\nwindow_hours = 48\nremind_after_hours = {remind_after_hours}\n{SCALE}"
    ));
    toml.push_str(&format!(
        "[[surveys]]\nid = \"monthly\"\ncadence = \"0 10 1 * *\"\nwindow_hours = 72\n{SCALE}"
    ));
    toml
}

const WORLD: [(&str, &str); 3] = [
    ("U0LDN", "Europe/London"),
    ("U0NYC", "America/New_York"),
    ("U0AKL", "Pacific/Auckland"),
];

async fn walkthrough_app(now: DateTime<Utc>, remind_after_hours: u32) -> TestApp {
    let mut app = TestAppBuilder::default();
    for (id, tz) in WORLD {
        app = app.user(id, tz);
    }
    let app = app
        .now(now)
        .program(
            "walk.toml",
            &walkthrough_program(&WORLD, remind_after_hours),
        )
        .spawn()
        .await;
    app.slack_shares_clock();
    app
}

/// The DMs each member got so far, as (member, local hour of the post).
fn dm_hours(app: &TestApp) -> Vec<(&'static str, u32)> {
    use chrono::Timelike;
    let mut out = Vec::new();
    for (id, tz) in WORLD {
        let tz: chrono_tz::Tz = tz.parse().unwrap();
        for m in app.emulator.dm_messages(id) {
            if m.thread_ts.is_some() || m.ephemeral_for.is_some() {
                continue;
            }
            let secs: f64 = m.ts.parse().unwrap();
            let at = Utc
                .timestamp_opt(secs as i64, 0)
                .unwrap()
                .with_timezone(&tz);
            out.push((id, at.hour()));
        }
    }
    out
}

#[tokio::test]
async fn a_first_start_on_any_day_opens_no_past_round_and_send_now_works() {
    // Tuesday 5 January 2027, 12:00 UTC: Monday's weekly firing and the 1st's monthly firing
    // are in the past, inside their windows. A first start catches up neither.
    let app = walkthrough_app(utc(2027, 1, 5, 12, 0), 24).await;
    let (report, logs) = logged(app.tick()).await;
    assert_eq!(report.planned, 0, "{report:?}");
    assert_eq!(report.rounds_opened, 0);
    assert!(
        report.before_first_start >= 3,
        "the past firings were seen and left alone: {report:?}"
    );
    assert!(lines_saying(&logs, "round opened").is_empty(), "{logs:?}");
    app.assert_count("SELECT COUNT(*) FROM rounds", 0).await;

    // Step 2 of the README: send-now answers 202 with the survey's round number 1.
    let response = app
        .admin_post("/api/v1/programs/walk/surveys/weekly/send-now")
        .await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["number"], 1, "{body}");
    assert_eq!(body["deliveries"], 3, "{body}");

    // A restart later (the same database) still remembers the first start: the next
    // firing after it is planned, and the log names the round it opens.
    app.clock.set(utc(2027, 1, 11, 10, 0));
    let (report, logs) = logged(app.tick()).await;
    assert_eq!(report.rounds_opened, 1, "{report:?}");
    let opened = lines_saying(&logs, "round opened");
    assert_eq!(opened.len(), 1, "{logs:?}");
    let line = opened[0];
    assert_eq!(line["program"], "walk");
    assert_eq!(line["survey"], "weekly");
    assert_eq!(line["round"], 2, "the survey's second round: {line}");
    assert_eq!(
        line["members"], 2,
        "London's 10:00 and Auckland's (Sunday 21:00 UTC, caught up): {line}"
    );
    assert_eq!(line["member_ids"], "U0AKL,U0LDN");
    assert_eq!(line["level"], "INFO");
}

#[tokio::test]
async fn the_first_start_is_kept_across_restarts_and_downtime_is_caught_up() {
    // First start on Sunday; down over Monday; back on Tuesday 01:08 UTC.
    let app = walkthrough_app(utc(2027, 1, 3, 12, 0), 24).await;
    let db = app.db.clone();
    let emulator = app.emulator.clone();
    let clock = app.clock.clone();
    app.stop().await;
    clock.set(utc(2027, 1, 5, 1, 8));
    let back = TestAppBuilder::sharing(&db, &emulator, &clock)
        .program("walk.toml", &walkthrough_program(&WORLD, 24))
        .spawn()
        .await;
    let report = back.tick().await;
    assert_eq!(
        report.planned, 3,
        "Monday's firings came after the first start: caught up ({report:?})"
    );
    assert_eq!(report.before_first_start, 0, "{report:?}");
    back.assert_count(
        "SELECT COUNT(*) FROM service_facts WHERE name = 'first_start'",
        1,
    )
    .await;
}

#[tokio::test]
async fn late_dms_wait_for_each_members_working_hours() {
    // Ran on Sunday, down over Monday, back on Tuesday 01:08 UTC: 01:08 in London, 20:08 on
    // Monday in New York, 14:08 on Tuesday in Auckland.
    let app = walkthrough_app(utc(2027, 1, 3, 12, 0), 24).await;
    app.run_at(utc(2027, 1, 5, 1, 8)).await;
    assert_eq!(
        dm_hours(&app),
        vec![("U0AKL", 14)],
        "only Auckland is in working hours"
    );
    let report = app.tick().await;
    assert_eq!(report.waiting_for_hours, 2, "{report:?}");

    // 09:00 in London.
    app.run_at(utc(2027, 1, 5, 9, 0)).await;
    assert_eq!(app.dm_count("U0LDN"), 1);
    assert_eq!(app.dm_count("U0NYC"), 0, "04:00 in New York");
    // 09:00 in New York.
    app.run_at(utc(2027, 1, 5, 14, 0)).await;
    let mut hours = dm_hours(&app);
    hours.sort();
    assert_eq!(hours, vec![("U0AKL", 14), ("U0LDN", 9), ("U0NYC", 9)]);
    for (who, hour) in hours {
        assert!((9..18).contains(&hour), "{who} got a DM at {hour}:00");
    }
}

#[tokio::test]
async fn the_reminder_counts_from_when_the_dm_was_sent() {
    // Reminder 4 hours after the pulse. London's Monday 10:00 pulse is sent late, on Tuesday
    // at 09:00 (the service was down): its reminder is due at 13:00, not on the next tick.
    let app = walkthrough_app(utc(2027, 1, 3, 12, 0), 4).await;
    app.run_at(utc(2027, 1, 5, 9, 0)).await;
    assert_eq!(app.dm_count("U0LDN"), 1);
    let replies = |app: &TestApp| {
        app.emulator
            .dm_messages("U0LDN")
            .iter()
            .filter(|m| m.thread_ts.is_some())
            .count()
    };
    app.run_at(utc(2027, 1, 5, 9, 0) + Duration::seconds(30))
        .await;
    assert_eq!(replies(&app), 0, "no reminder 30 s after the pulse");
    app.run_at(utc(2027, 1, 5, 12, 59)).await;
    assert_eq!(replies(&app), 0, "not before 4 hours after the send");
    app.run_at(utc(2027, 1, 5, 13, 0)).await;
    assert_eq!(replies(&app), 1, "4 hours after the send");

    // On time, the reminder is 4 hours after the firing as before.
    app.run_at(utc(2027, 1, 11, 10, 0)).await;
    app.run_at(utc(2027, 1, 11, 13, 59)).await;
    assert_eq!(replies(&app), 1);
    app.run_at(utc(2027, 1, 11, 14, 0)).await;
    assert_eq!(replies(&app), 2);
}

#[tokio::test]
async fn rounds_are_numbered_per_survey_in_what_people_read() {
    let app = walkthrough_app(utc(2027, 1, 5, 12, 0), 24).await;
    let weekly: Value = app
        .admin_post("/api/v1/programs/walk/surveys/weekly/send-now")
        .await
        .json()
        .await
        .unwrap();
    let monthly = app
        .admin_post("/api/v1/programs/walk/surveys/monthly/send-now")
        .await;
    assert_eq!(monthly.status(), 202);
    let monthly: Value = monthly.json().await.unwrap();
    assert_eq!(weekly["number"], 1);
    assert_eq!(
        monthly["number"], 1,
        "the monthly survey's first round is its round 1, not the second round overall"
    );
    assert_ne!(weekly["round"], monthly["round"], "ids stay distinct");
    let again = app
        .admin_post("/api/v1/programs/walk/surveys/monthly/send-now")
        .await;
    assert_eq!(again.status(), 409);
    let body: Value = again.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("round 1 of survey 'monthly' is still open (opened 2027-01-05T12:00:00Z, closes 2027-01-08T12:00:00Z)"),
        "{detail}"
    );
    let audit: Value = app
        .admin_get("/api/v1/audit?program=walk")
        .await
        .json()
        .await
        .unwrap();
    let numbers: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "survey.send_now")
        .map(|e| &e["detail"]["number"])
        .collect();
    assert_eq!(numbers, vec![&json!(1), &json!(1)], "{audit}");

    // The scheduler continues each survey's numbering.
    app.run_at(utc(2027, 1, 11, 10, 0)).await;
    app.assert_count(
        "SELECT COUNT(*) FROM rounds WHERE survey_id = 'weekly' AND number = 2",
        1,
    )
    .await;
}

#[tokio::test]
async fn a_status_event_releases_a_held_pulse_and_a_held_member_is_re_read() {
    let app = walkthrough_app(utc(2027, 1, 11, 9, 0), 24).await;
    // London goes on vacation before Monday's pulse (Slack tells us with user_status_changed).
    let away = |status: &str, emoji: &str, event: &str, id: &str| {
        json!({
            "type": "event_callback", "team_id": "T0TEST", "event_id": id,
            "event": { "type": event, "user": { "id": "U0LDN", "tz": "Europe/London",
                "profile": { "status_text": status, "status_emoji": emoji } } }
        })
    };
    app.emulator
        .set_user_status("U0LDN", "On vacation", ":palm_tree:");
    let r = app
        .send_event(&away(
            "On vacation",
            ":palm_tree:",
            "user_status_changed",
            "Ev0S1",
        ))
        .await;
    assert_eq!(r.status(), 200);
    app.run_at(utc(2027, 1, 11, 10, 0)).await;
    assert_eq!(app.dm_count("U0LDN"), 0, "held while away");
    // Back: the event takes effect on the next tick, not at the daily refresh.
    app.emulator.set_user_status("U0LDN", "", "");
    app.send_event(&away("", "", "user_status_changed", "Ev0S2"))
        .await;
    app.run_at(utc(2027, 1, 11, 10, 1)).await;
    assert_eq!(app.dm_count("U0LDN"), 1, "sent once the status cleared");

    // New York is away in Slack's directory only (no event reaches us). Held at 15:00 UTC;
    // when the status clears in Slack, the held member's status is read again within the
    // hour, long before the window ends.
    app.emulator
        .set_user_status("U0NYC", "Out of office", ":palm_tree:");
    app.clock.set(utc(2027, 1, 11, 14, 0));
    pulseloop::pulse::sync::refresh_profiles(&app.state.pulses, Duration::minutes(1)).await;
    app.run_at(utc(2027, 1, 11, 15, 0)).await;
    assert_eq!(app.dm_count("U0NYC"), 0, "held");
    app.emulator.set_user_status("U0NYC", "", "");
    app.run_at(utc(2027, 1, 11, 15, 10)).await;
    assert_eq!(
        app.dm_count("U0NYC"),
        0,
        "the status read 10 minutes ago (when held at 15:00) is fresh enough"
    );
    let before = app.emulator.calls_to("users.info").len();
    let report = {
        app.clock.set(utc(2027, 1, 11, 15, 40));
        app.tick().await
    };
    app.drain_outbox().await;
    assert_eq!(report.status_rechecked, 1, "{report:?}");
    assert_eq!(app.emulator.calls_to("users.info").len(), before + 1);
    assert_eq!(app.dm_count("U0NYC"), 1, "released after the re-read");
}
