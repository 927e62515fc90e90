//! Anonymity that holds against someone holding the database (issue 6): every test attacks
//! what is stored the way a curious admin with a copy of the database would.

use crate::helpers::*;
use crate::wins::SCALE_COMMENT_WIN;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// (slack id, role, zone, working days or "").
type Member<'a> = (&'a str, &'a str, &'a str, &'a str);

fn program_toml(members: &[Member], survey: &str) -> String {
    let mut toml = String::from(
        "id = \"pilot\"\nname = \"Pilot Program\"\ntimezone = \"Europe/Berlin\"\nstart_date = \"2027-01-01\"\nanonymity_threshold = 3\ncomment_threshold = 3\n",
    );
    for (id, role, tz, days) in members {
        toml.push_str(&format!(
            "[[members]]\nslack_id = \"{id}\"\nrole = \"{role}\"\ntimezone = \"{tz}\"\n"
        ));
        if !days.is_empty() {
            toml.push_str(&format!("working_days = {days}\n"));
        }
    }
    toml.push_str(survey);
    toml
}

fn survey(cadence: &str, window: u32, anonymity: &str, questions: &str) -> String {
    format!(
        "[[surveys]]\nid = \"weekly\"\nname = \"Weekly pulse\"\ncadence = \"{cadence}\"\nwindow_hours = {window}\nanonymity = \"{anonymity}\"\n{questions}"
    )
}

const ONE_SCALE: &str = r#"[[surveys.questions]]
key = "value"
kind = "scale"
prompt = "How valuable was coaching this week?"
"#;

async fn app_with(members: &[Member<'_>], survey: &str, now: DateTime<Utc>) -> TestApp {
    let mut app = TestAppBuilder::default();
    for (id, _, tz, _) in members {
        app = app.user(id, tz);
    }
    app.now(now)
        .program("pilot.toml", &program_toml(members, survey))
        .spawn()
        .await
}

/// The usual case: a weekly anonymous pulse at 10:00 on Mondays, open 48 hours, the clock at
/// its first firing.
async fn weekly_anonymous_app(members: &[Member<'_>], questions: &str) -> TestApp {
    app_with(
        members,
        &survey("0 10 * * MON", 48, "anonymous", questions),
        monday_ten_berlin(),
    )
    .await
}

fn berlin(ids: &[&'static str]) -> Vec<Member<'static>> {
    ids.iter()
        .map(|id| (*id, "participant", "Europe/Berlin", ""))
        .collect()
}

/// Every table of the database, every row (the adversary's copy).
async fn dump(url: &str) -> BTreeMap<String, Vec<BTreeMap<String, Value>>> {
    let tables_sql = if url.starts_with("postgres") {
        "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
    } else {
        "SELECT name FROM sqlite_master WHERE type = 'table'"
    };
    let mut out = BTreeMap::new();
    for t in rows(url, tables_sql).await {
        let name = t["name"].as_str().unwrap().to_string();
        let data = rows(url, &format!("SELECT * FROM {name}")).await;
        out.insert(name, data);
    }
    out
}

async fn delivery_of(app: &TestApp, user: &str) -> i64 {
    let r = rows(
        &app.db.url,
        &format!("SELECT d.id FROM deliveries d JOIN members m ON m.id = d.member_id WHERE m.slack_user_id = '{user}' ORDER BY d.id DESC"),
    )
    .await;
    r[0]["id"].as_i64().expect("the member has a delivery")
}

/// A button click answering `value` to the one-question pulse (block ids as the DM had them).
async fn click_value(app: &TestApp, user: &str, v: u8) -> reqwest::Response {
    let delivery = delivery_of(app, user).await;
    let dm = app.first_dm(user);
    let payload = app.peer.block_actions(
        user,
        &dm.channel,
        &dm.ts,
        &format!("answer:{v}"),
        &format!("pulse:{delivery}:value"),
        &v.to_string(),
    );
    app.send_interaction(&payload).await
}

/// One modal submission of the scale/text/win survey.
async fn submit(
    app: &TestApp,
    user: &str,
    value: u8,
    comment: &str,
    win: Option<(&str, &str)>,
) -> reqwest::Response {
    let delivery = delivery_of(app, user).await;
    let mut values = json!({
        "q:value": { "v": { "type": "radio_buttons", "selected_option": { "value": value.to_string() } } },
        "q:comment": { "v": { "type": "plain_text_input", "value": comment } },
    });
    if let Some((text, consent)) = win {
        values["q:win"] = json!({ "v": { "type": "plain_text_input", "value": text } });
        values["consent:win"] =
            json!({ "v": { "type": "radio_buttons", "selected_option": { "value": consent } } });
    }
    let view = json!({
        "type": "modal",
        "callback_id": pulseloop::pulse::render::MODAL_CALLBACK,
        "private_metadata": json!({ "delivery": delivery }).to_string(),
        "state": { "values": values },
    });
    let payload = app.peer.view_submission(user, &view);
    app.send_interaction(&payload).await
}

// ---------------------------------------------------------------- item 1

#[tokio::test]
async fn answer_updates_are_keyed_by_revision_and_a_newer_one_supersedes_the_pending_ones() {
    let members = berlin(&["U0REV"]);
    let app = weekly_anonymous_app(&members, ONE_SCALE).await;
    app.send_monday_pulse().await;

    // A → B → A, each sent before the next: three updates, the DM ends on A.
    for v in [2, 4, 2] {
        assert_eq!(click_value(&app, "U0REV", v).await.status(), 200);
        app.drain_outbox().await;
    }
    // (through each click's response_url; chat.update is the fallback)
    let edits = app.emulator.dm_messages("U0REV")[0].edits;
    assert_eq!(edits, 3, "A, B and A again each update the DM");
    let last = app.emulator.dm_messages("U0REV")[0].blocks.to_string();
    assert!(
        last.contains("*2 out of 5*"),
        "the DM shows what is stored: {last}"
    );

    // Keys carry a revision, nothing derived from the answers.
    let keys = rows(
        &app.db.url,
        "SELECT dedupe_key FROM outbox WHERE method = 'chat.update' ORDER BY id",
    )
    .await;
    let d = delivery_of(&app, "U0REV").await;
    let keys: Vec<&str> = keys
        .iter()
        .map(|r| r["dedupe_key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        vec![
            format!("delivery:{d}:answer:1"),
            format!("delivery:{d}:answer:2"),
            format!("delivery:{d}:answer:3")
        ]
    );

    // Two changes before the outbox runs: only the newest update is left to send.
    click_value(&app, "U0REV", 5).await;
    click_value(&app, "U0REV", 1).await;
    app.assert_count(
        "SELECT COUNT(*) FROM outbox WHERE method = 'chat.update' AND status = 'pending'",
        1,
    )
    .await;
    app.drain_outbox().await;
    assert_eq!(app.emulator.dm_messages("U0REV")[0].edits, 4);
    let last = app.emulator.dm_messages("U0REV")[0].blocks.to_string();
    assert!(last.contains("*1 out of 5*"), "{last}");

    // At the seal every answer update goes, whatever its status.
    app.advance(Duration::hours(49));
    assert_eq!(app.tick().await.sealed, 1);
    app.assert_counts(&[
        (
            "SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE '%:answer:%'",
            0,
        ),
        (
            "SELECT COUNT(*) FROM deliveries WHERE answer_revision <> 0",
            0,
        ),
    ])
    .await;
}

// ---------------------------------------------------------------- item 2

#[tokio::test]
async fn a_round_stays_open_until_the_last_zone_had_its_window() {
    let members: Vec<Member> = vec![
        ("U0AKL", "participant", "Pacific/Auckland", ""),
        ("U0LAX", "participant", "America/Los_Angeles", ""),
    ];
    // Monday 10:00 in Auckland is Sunday 21:00 UTC; in Los Angeles, Monday 18:00 UTC.
    let auckland = Utc.with_ymd_and_hms(2027, 1, 3, 21, 0, 0).unwrap();
    let app = app_with(
        &members,
        &survey("0 10 * * MON", 8, "anonymous", ONE_SCALE),
        auckland,
    )
    .await;
    app.tick().await;
    app.drain_outbox().await;
    assert_eq!(click_value(&app, "U0AKL", 4).await.status(), 200);

    // Auckland's window is over; the round is not, Los Angeles has not even been asked.
    app.clock
        .set(Utc.with_ymd_and_hms(2027, 1, 4, 5, 0, 0).unwrap());
    let r = app.tick().await;
    assert_eq!(r.closed, 1);
    assert_eq!(r.sealed, 0, "Los Angeles is still to come");

    app.clock
        .set(Utc.with_ymd_and_hms(2027, 1, 4, 18, 0, 0).unwrap());
    assert_eq!(app.tick().await.planned, 1);
    app.drain_outbox().await;
    app.assert_count("SELECT COUNT(DISTINCT round_id) FROM deliveries", 1)
        .await;
    assert_eq!(click_value(&app, "U0LAX", 2).await.status(), 200);

    app.clock
        .set(Utc.with_ymd_and_hms(2027, 1, 5, 2, 0, 0).unwrap());
    assert_eq!(app.tick().await.sealed, 1);
    app.assert_count("SELECT COUNT(*) FROM responses", 2).await;
    app.assert_count_because(
        "SELECT COUNT(*) FROM responses WHERE delivery_id IS NOT NULL",
        0,
        "both answers sealed: nobody joined a sealed round",
    )
    .await;
}

#[tokio::test]
async fn a_friday_pulse_moved_to_monday_does_not_join_a_sealed_round() {
    let members: Vec<Member> = vec![
        ("U0FRI", "participant", "Europe/Berlin", ""),
        (
            "U0NOFRI",
            "participant",
            "Europe/Berlin",
            "[\"MON\", \"TUE\", \"WED\", \"THU\"]",
        ),
    ];
    // Friday 2027-01-08 10:00 Berlin.
    let friday = Utc.with_ymd_and_hms(2027, 1, 8, 9, 0, 0).unwrap();
    let app = app_with(
        &members,
        &survey("0 10 * * FRI", 8, "anonymous", ONE_SCALE),
        friday,
    )
    .await;
    assert_eq!(app.tick().await.planned, 1);
    app.drain_outbox().await;
    click_value(&app, "U0FRI", 3).await;
    // Friday evening: the Friday window is over, Monday's firing of the same round is not.
    app.clock
        .set(Utc.with_ymd_and_hms(2027, 1, 8, 18, 0, 0).unwrap());
    assert_eq!(app.tick().await.sealed, 0);
    app.clock
        .set(Utc.with_ymd_and_hms(2027, 1, 11, 9, 0, 0).unwrap());
    assert_eq!(app.tick().await.planned, 1);
    app.drain_outbox().await;
    click_value(&app, "U0NOFRI", 5).await;
    app.clock
        .set(Utc.with_ymd_and_hms(2027, 1, 11, 17, 0, 0).unwrap());
    assert_eq!(app.tick().await.sealed, 1);
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM responses WHERE delivery_id IS NULL", 2),
        ("SELECT COUNT(*) FROM deliveries d JOIN rounds r ON r.id = d.round_id WHERE r.sealed_at IS NOT NULL AND d.state = 'closed'", 2),
    ])
    .await;
}

// ---------------------------------------------------------------- item 3

#[tokio::test]
async fn a_click_at_the_closing_instant_or_after_the_seal_stores_nothing() {
    let app = weekly_anonymous_app(&berlin(&["U0A", "U0B"]), ONE_SCALE).await;
    app.send_monday_pulse().await;
    click_value(&app, "U0A", 3).await;
    let closes = monday_ten_berlin() + Duration::hours(48);

    // Exactly at the closing instant: closed.
    app.clock.set(closes);
    click_value(&app, "U0B", 5).await;
    app.assert_count("SELECT COUNT(*) FROM responses", 1).await;

    // The seal runs (say, on a replica whose clock is a little ahead) and a click that
    // passed the early check arrives after it: nothing is written, no update queued.
    assert_eq!(app.tick().await.sealed, 1);
    app.clock.set(closes - Duration::seconds(1));
    let before_updates = app
        .count("SELECT COUNT(*) FROM outbox WHERE method = 'chat.update'")
        .await;
    assert_eq!(click_value(&app, "U0B", 4).await.status(), 200);
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM responses", 1),
        (
            "SELECT COUNT(*) FROM responses WHERE delivery_id IS NOT NULL",
            0,
        ),
        (
            "SELECT COUNT(*) FROM outbox WHERE method = 'chat.update'",
            before_updates,
        ),
    ])
    .await;
    app.clock.set(closes + Duration::minutes(1));
    app.drain_outbox().await;
    let notices: Vec<_> = app
        .emulator
        .dm_messages("U0B")
        .into_iter()
        .filter(|m| m.ephemeral_for.is_some())
        .collect();
    assert_eq!(notices.len(), 2, "both late clicks are told");
    assert!(notices[1].text.contains("This pulse closed on"));
}

/// The race itself, without HTTP timing: the handler read the delivery while it was open, the
/// seal ran, then the answer transaction starts. Only the conditional write inside the
/// transaction stands between that click and a linked answer in a sealed round.
#[tokio::test]
async fn an_answer_whose_check_ran_before_the_seal_is_refused_inside_the_transaction() {
    use pulseloop::clock::Clock;
    use pulseloop::domain::ids::{DeliveryId, ProgramId};
    use pulseloop::pulse::answers::{store_answers, AnswerValue, Stored, Submission};
    let app = weekly_anonymous_app(&berlin(&["U0A", "U0B"]), ONE_SCALE).await;
    app.send_monday_pulse().await;
    click_value(&app, "U0A", 3).await;
    let id: i64 = app
        .count(
            "SELECT d.id FROM deliveries d JOIN members m ON m.id = d.member_id
             WHERE m.slack_user_id = 'U0B'",
        )
        .await;
    let pulses = &app.state.pulses;
    let read_while_open = pulses.store.delivery(DeliveryId(id)).await.unwrap();
    let program = pulses.catalog.program(&ProgramId::from("pilot")).unwrap();
    let survey = program.survey("weekly").unwrap().clone();

    let closes = monday_ten_berlin() + Duration::hours(48);
    app.clock.set(closes);
    assert_eq!(app.tick().await.sealed, 1);
    app.clock.set(closes - Duration::seconds(1));
    const UPDATES: &str = "SELECT COUNT(*) FROM outbox WHERE method = 'chat.update'";
    let updates_before = app.count(UPDATES).await;
    let submission = Submission {
        values: vec![(
            "value".into(),
            AnswerValue {
                number: Some(5.0),
                text: None,
            },
        )],
        ..Default::default()
    };
    let stored = store_answers(
        pulses,
        &read_while_open,
        &program,
        &survey,
        &submission,
        app.clock.now(),
    )
    .await
    .unwrap();
    assert_eq!(stored, Stored::Closed);
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM responses", 1),
        (
            "SELECT COUNT(*) FROM responses WHERE delivery_id IS NOT NULL",
            0,
        ),
    ])
    .await;
    assert_eq!(
        app.count(UPDATES).await,
        updates_before,
        "no DM update is queued"
    );
}

// ---------------------------------------------------------------- item 4

#[tokio::test]
async fn a_win_from_an_anonymous_survey_names_nobody() {
    let app = weekly_anonymous_app(&berlin(&["U0W1", "U0W2", "U0W3"]), SCALE_COMMENT_WIN).await;
    app.send_monday_pulse().await;
    submit(&app, "U0W1", 4, "", Some(("closed the deal", "anonymous"))).await;
    // A re-answer updates the same win.
    submit(
        &app,
        "U0W1",
        4,
        "",
        Some(("closed the big deal", "anonymous")),
    )
    .await;
    submit(&app, "U0W2", 3, "", Some(("kept it private", "private"))).await;
    app.assert_count("SELECT COUNT(*) FROM wins", 2).await;
    let d1 = delivery_of(&app, "U0W1").await;
    let d2 = delivery_of(&app, "U0W2").await;
    for r in rows(&app.db.url, "SELECT source_key FROM wins").await {
        let key = r["source_key"].as_str().unwrap();
        let token = key.strip_prefix("win:").expect("a random token");
        assert!(
            token.len() == 32 && token.chars().all(|c| c.is_ascii_hexdigit()),
            "{key}"
        );
        assert_ne!(token, format!("{d1}"));
        assert_ne!(token, format!("{d2}"));
    }
    app.advance(Duration::hours(49));
    app.tick().await;
    app.assert_count(
        "SELECT COUNT(*) FROM wins WHERE answer_key IS NOT NULL OR author_member_id IS NOT NULL",
        0,
    )
    .await;
    app.assert_count_because("SELECT COUNT(DISTINCT w.created_at) FROM wins w JOIN rounds r ON r.id = w.round_id WHERE w.created_at = r.opened_at", 1, "win times are the round's, not the answer's").await;
}

// ---------------------------------------------------------------- item 5

#[tokio::test]
async fn after_the_seal_roles_below_k_are_folded_and_who_answered_is_only_a_count() {
    let members: Vec<Member> = vec![
        ("U0L1", "leader", "Europe/Berlin", ""),
        ("U0P1", "participant", "Europe/Berlin", ""),
        ("U0P2", "participant", "Europe/Berlin", ""),
        ("U0P3", "participant", "Europe/Berlin", ""),
        ("U0P4", "participant", "Europe/Berlin", ""),
    ];
    let app = app_with(
        &members,
        &survey(
            "0 10 * * MON",
            48,
            "anonymous",
            &format!("remind_after_hours = 24\n{ONE_SCALE}"),
        ),
        monday_ten_berlin(),
    )
    .await;
    app.send_monday_pulse().await;
    for (u, v) in [("U0L1", 1), ("U0P1", 4), ("U0P2", 4), ("U0P3", 5)] {
        click_value(&app, u, v).await;
    }
    app.drain_outbox().await;
    app.advance(Duration::hours(24));
    assert_eq!(app.tick().await.reminded, 1, "U0P4 is reminded");
    app.drain_outbox().await;
    app.advance(Duration::hours(25));
    assert_eq!(app.tick().await.sealed, 1);
    app.drain_outbox().await;

    // One leader answered: below k = 3, so no role survives (the participants' group would
    // be the complement of the leader's).
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM responses WHERE role <> 'folded'", 0),
        ("SELECT COUNT(*) FROM deliveries WHERE state IN ('answered', 'expired')", 0),
        ("SELECT COUNT(*) FROM deliveries WHERE state = 'closed' AND reminded_at IS NULL AND answered_at IS NULL", 5),
        ("SELECT COUNT(*) FROM rounds WHERE asked_count = 5 AND answered_count = 4", 1),
    ])
    .await;
    app.assert_count_because(
        "SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE '%:remind'",
        0,
        "reminders went to non-responders only: they go",
    )
    .await;
    // The closed DM reads the same for those who answered and those who did not.
    let closed: Vec<_> = rows(
        &app.db.url,
        "SELECT payload FROM outbox WHERE dedupe_key LIKE '%:closed'",
    )
    .await
    .into_iter()
    .map(|r| r["payload"].as_str().unwrap().to_string())
    .collect();
    assert_eq!(closed.len(), 5);
    assert!(closed.iter().all(|p| p == &closed[0]), "{closed:?}");
}

// ---------------------------------------------------------------- item 6

#[tokio::test]
async fn a_round_is_sealed_by_the_mode_it_opened_with() {
    let members = berlin(&["U0M1", "U0M2", "U0M3"]);
    let app = weekly_anonymous_app(&members, ONE_SCALE).await;
    app.send_monday_pulse().await;
    click_value(&app, "U0M1", 2).await;
    // The file is edited to `attributed` and reloaded while the round is open.
    std::fs::write(
        app.programs_dir().join("pilot.toml"),
        program_toml(
            &members,
            &survey("0 10 * * MON", 48, "attributed", ONE_SCALE),
        ),
    )
    .unwrap();
    pulseloop::pulse::sync::apply_config(&app.state.pulses)
        .await
        .expect("reload");
    click_value(&app, "U0M2", 3).await;
    app.advance(Duration::hours(49));
    assert_eq!(app.tick().await.sealed, 1, "the promise made is kept");
    app.assert_counts(&[
        (
            "SELECT COUNT(*) FROM responses WHERE delivery_id IS NOT NULL",
            0,
        ),
        (
            "SELECT COUNT(*) FROM rounds WHERE anonymity = 'anonymous'",
            1,
        ),
    ])
    .await;
}

// ---------------------------------------------------------------- item 7

#[tokio::test]
async fn after_the_seal_the_sqlite_files_hold_no_pre_seal_bytes() {
    let app = weekly_anonymous_app(&berlin(&["U0F1", "U0F2", "U0F3"]), SCALE_COMMENT_WIN).await;
    if app.db.url.starts_with("postgres") {
        // PostgreSQL keeps dead tuples until VACUUM and WAL per its settings: the README
        // tells operators what to do; the rows themselves are checked by the other tests.
        return;
    }
    app.send_monday_pulse().await;
    // A first draft, echoed in the DM update next to the channel, then changed.
    submit(&app, "U0F1", 4, "zqxdraft-marker-one", None).await;
    app.drain_outbox().await;
    submit(&app, "U0F1", 4, "final words", None).await;
    submit(&app, "U0F2", 2, "zqxdraft-marker-two", None).await;
    app.drain_outbox().await;
    app.advance(Duration::hours(49));
    assert_eq!(app.tick().await.sealed, 1);
    app.drain_outbox().await;
    let path = app.db.url.trim_start_matches("sqlite://").to_string();
    for file in [path.clone(), format!("{path}-wal")] {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        let hay = String::from_utf8_lossy(&bytes);
        assert!(
            !hay.contains("zqxdraft-marker-one"),
            "a replaced answer lingers in {file}"
        );
        assert!(
            !hay.contains("\"text\":\"zqxdraft-marker-two"),
            "a DM update payload lingers in {file}"
        );
        assert!(
            !hay.contains("Thanks, your answer is in"),
            "an answered-DM payload lingers in {file}"
        );
    }
}

// ---------------------------------------------------------------- item 8

/// A log sink for one test (the app runs on the test's thread: #[tokio::test] is
/// single-threaded, so a thread-local subscriber sees the app's logs).
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Which two members trade places between two runs of the adversary.
#[derive(Clone, Copy, PartialEq)]
enum Swap {
    Nobody,
    /// The leader U0X1 and the participant U0X2 trade everything they answer (a change of mind
    /// A→B→A against a text comment and a win).
    LeaderAndParticipant,
    /// U0X5 answers and U0X6 does not, or the other way round (so U0X6, then U0X5, is reminded).
    ResponderAndNonResponder,
}

/// Six members (one leader), a reminder to whoever has not answered after a day, the window's
/// end and the seal; returns the normalised dump of every table and the normalised logs.
async fn adversary_run(swap: Swap) -> (String, Vec<String>, Vec<String>) {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "trace,slack_emulator=off,axum::serve=off,hyper=off,hyper_util=off,h2=off,reqwest=off,rustls=off,tower=off",
        ))
        .with_writer(logs.clone())
        .without_time()
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // With a single live subscriber tracing caches a callsite's interest from whichever
    // thread hits it first (another test's, with no subscriber: "never", and the line is
    // lost here). A second live dispatcher makes it ask every live subscriber instead.
    let _second = tracing::Dispatch::new(tracing_subscriber::registry());

    let mut members = berlin(&["U0X1", "U0X2", "U0X3", "U0X4", "U0X5", "U0X6"]);
    members[0].1 = "leader";
    let reminding = format!(
        "{}remind_after_hours = 24\n",
        survey("0 10 * * MON", 48, "anonymous", "")
    );
    let app = app_with(
        &members,
        &format!("{reminding}{SCALE_COMMENT_WIN}"),
        monday_ten_berlin(),
    )
    .await;
    app.send_monday_pulse().await;
    type Step = (u8, &'static str, Option<(&'static str, &'static str)>);
    let first: Vec<Step> = vec![
        (1, "the agenda was vague", None),
        (5, "", None),
        (1, "the agenda was vague", None),
    ];
    let second: Vec<Step> = vec![(5, "loved the role play", Some(("shipped v2", "anonymous")))];
    let (a, b) = if swap == Swap::LeaderAndParticipant {
        (second.clone(), first.clone())
    } else {
        (first.clone(), second.clone())
    };
    let (e, f): (Vec<Step>, Vec<Step>) = if swap == Swap::ResponderAndNonResponder {
        (vec![], vec![(2, "", None)])
    } else {
        (vec![(2, "", None)], vec![])
    };
    let scripts: Vec<(&str, Vec<Step>)> = vec![
        ("U0X1", a),
        ("U0X2", b),
        ("U0X3", vec![(3, "", None)]),
        ("U0X4", vec![(4, "more time please", None)]),
        ("U0X5", e),
        ("U0X6", f),
    ];
    // Interleaved rounds of clicks, each step followed by the outbox.
    for i in 0..3 {
        for (user, steps) in &scripts {
            if let Some((v, comment, win)) = steps.get(i) {
                assert_eq!(submit(&app, user, *v, comment, *win).await.status(), 200);
                app.drain_outbox().await;
            }
        }
        app.advance(Duration::minutes(7));
    }
    // A day later the one who has not answered is reminded.
    app.advance(Duration::hours(24));
    assert_eq!(app.tick().await.reminded, 1);
    app.drain_outbox().await;
    app.advance(Duration::hours(25));
    assert_eq!(app.tick().await.sealed, 1);
    app.drain_outbox().await;

    let dumped = dump(&app.db.url).await;
    let mut tables = Vec::new();
    let texts = [
        "the agenda was vague",
        "loved the role play",
        "shipped v2",
        "more time please",
    ];
    // Values that would point to a person, a DM or a delivery (as the start of a string).
    let linking = ["U0X", "D0X", "delivery:", "member:"];
    for (name, data) in &dumped {
        if name == "_sqlx_migrations" {
            continue;
        }
        let mut lines: Vec<String> = data
            .iter()
            .map(|row| {
                let mut row = row.clone();
                if name == "responses" {
                    // Assigned in random order at the seal: a random identifier.
                    row.remove("id");
                }
                normalise(&serde_json::to_string(&row).unwrap())
            })
            .collect();
        lines.sort();
        // No row outside the answer tables carries an answer, and no answer row carries
        // anything that points to a person.
        for line in &lines {
            let has_answer = texts.iter().any(|t| line.contains(t));
            if name == "responses" || name == "wins" {
                assert!(
                    !linking.iter().any(|l| line.contains(&format!("\"{l}"))),
                    "{name}: {line}"
                );
            } else {
                assert!(!has_answer, "{name} holds an answer: {line}");
            }
        }
        tables.push(format!("== {name}\n{}", lines.join("\n")));
    }
    let responses = rows(
        &app.db.url,
        "SELECT delivery_id, role, created_at, updated_at FROM responses",
    )
    .await;
    assert!(responses.iter().all(|r| r["delivery_id"].is_null()));

    let log_text = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    let mut log_lines: Vec<String> = log_text.lines().map(normalise_log).collect();
    for line in &log_lines {
        assert!(
            !texts.iter().any(|t| line.contains(t)),
            "a log line carries an answer: {line}"
        );
        // (sqlx logs statement texts, which are code: values are bound, never logged.)
        assert!(
            line.contains("sqlx::query") || !line.contains(":answer:"),
            "a log line names an answer update: {line}"
        );
    }
    // Statement logs carry timings and pool noise; what they could leak (values) they never
    // hold, and they were checked for answers above.
    log_lines.retain(|l| !l.contains("sqlx::query"));
    // Start-up lines are emitted while other tests register their own subscribers, and a
    // callsite's cached interest can then drop one: they carry no answer (checked above) and
    // are left out of the comparison.
    log_lines
        .retain(|l| !l.contains("pulseloop::startup") && !l.contains("pulseloop::pulse::sync"));
    log_lines.sort();
    app.stop().await;
    (
        tables.join("\n"),
        log_lines,
        texts.iter().map(|s| s.to_string()).collect(),
    )
}

/// Log lines: every number (times, ports, ids, durations) and random identifier ignored.
fn normalise_log(s: &str) -> String {
    let s = normalise(s);
    let mut out = String::with_capacity(s.len());
    let mut in_number = false;
    for c in s.chars() {
        if c.is_ascii_digit() || (in_number && c == '.') {
            if !in_number {
                out.push('0');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

/// Times and random identifiers vary between runs; nothing else may (ports and elapsed
/// times in logs included).
fn normalise(s: &str) -> String {
    crate::helpers::normalise_run(s, true)
}

#[tokio::test]
async fn the_adversary_with_the_database_and_the_logs_cannot_tell_who_answered_what() {
    let plain = adversary_run(Swap::Nobody).await;
    for swap in [Swap::LeaderAndParticipant, Swap::ResponderAndNonResponder] {
        assert_runs_look_alike(&plain, &adversary_run(swap).await);
    }
}

fn assert_runs_look_alike(
    (tables_a, logs_a, _): &(String, Vec<String>, Vec<String>),
    (tables_b, logs_b, _): &(String, Vec<String>, Vec<String>),
) {
    if tables_a != tables_b {
        let a: Vec<_> = tables_a.lines().collect();
        let b: Vec<_> = tables_b.lines().collect();
        let diff: Vec<_> = a
            .iter()
            .zip(b.iter())
            .filter(|(x, y)| x != y)
            .take(10)
            .collect();
        panic!("the stored data tells the two runs apart: {diff:#?}");
    }
    let la: Vec<_> = logs_a
        .iter()
        .filter(|l| !logs_b.contains(l))
        .take(10)
        .collect();
    let lb: Vec<_> = logs_b
        .iter()
        .filter(|l| !logs_a.contains(l))
        .take(10)
        .collect();
    assert!(
        la.is_empty() && lb.is_empty(),
        "the logs tell the runs apart: {la:#?} vs {lb:#?}"
    );
}

// ---------------------------------------------------------------- item 11

#[tokio::test]
async fn a_closed_window_cancels_what_is_still_queued() {
    let members: Vec<Member> = vec![
        ("U0Q1", "participant", "Europe/Berlin", ""),
        ("U0Q2", "participant", "Europe/Berlin", ""),
        ("U0Q3", "participant", "Europe/London", ""),
    ];
    let app = weekly_anonymous_app(&members, ONE_SCALE).await;
    app.send_monday_pulse().await;
    click_value(&app, "U0Q1", 4).await;
    // 10:00 in London: U0Q3's pulse is queued, and the outbox does not reach it in time
    // (an outage, a flood at the workspace rate).
    app.advance(Duration::hours(1));
    assert_eq!(app.tick().await.queued, 1);
    app.advance(Duration::hours(49));
    let r = app.tick().await;
    assert_eq!(r.closed, 3);
    assert_eq!(r.cancelled, 1);
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM outbox WHERE method = 'chat.postMessage' AND status = 'pending'", 0),
        ("SELECT COUNT(*) FROM outbox WHERE status = 'cancelled' AND last_error LIKE 'cancelled: the pulse closed%'", 1),
        ("SELECT COUNT(*) FROM deliveries WHERE failure_reason LIKE 'cancelled: the pulse closed%' AND message_ts IS NULL", 1),
    ])
    .await;
    app.assert_count_because(
        "SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE '%:closed'",
        2,
        "a closed-state update only for DMs that were posted",
    )
    .await;
    app.drain_outbox().await;
    assert!(
        app.emulator.dm_messages("U0Q3").is_empty(),
        "no pulse arrives after its window"
    );
}

// ---------------------------------------------------------------- item 12 (send-now race)

#[tokio::test]
async fn two_concurrent_send_now_calls_open_one_round() {
    let app = weekly_anonymous_app(&berlin(&["U0N1", "U0N2"]), ONE_SCALE).await;
    let calls = (0..4).map(|_| app.admin_post("/api/v1/programs/pilot/surveys/weekly/send-now"));
    let statuses: Vec<u16> = futures_join(calls).await;
    let ok = statuses.iter().filter(|s| (200..300).contains(*s)).count();
    let conflict = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!((ok, conflict), (1, 3), "{statuses:?}");
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM rounds", 1),
        ("SELECT COUNT(*) FROM deliveries", 2),
    ])
    .await;
}

async fn futures_join<F>(calls: impl Iterator<Item = F>) -> Vec<u16>
where
    F: std::future::Future<Output = reqwest::Response>,
{
    let handles: Vec<_> = calls.map(Box::pin).collect();
    let mut out = Vec::new();
    // Poll all requests concurrently on this thread.
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for slot in pending.iter_mut() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(r) => {
                        out.push(r.status().as_u16());
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out
}
