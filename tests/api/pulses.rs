//! Pulse surveys end to end: schedule → DM → answers → reminder → close → seal, over HTTP
//! against the emulator, with a manual clock.

use crate::helpers::*;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use slack_emulator::{EmulatedUser, SignOptions};

pub fn program(members: &[(&str, &str, &str)], survey_extra: &str, questions: &str) -> String {
    let mut toml = String::from(
        r#"id = "pilot"
name = "Pilot Program"
timezone = "Europe/Berlin"
start_date = "2027-01-04"
anonymity_threshold = 3
comment_threshold = 3
"#,
    );
    for (id, role, tz) in members {
        toml.push_str(&format!(
            "[[members]]\nslack_id = \"{id}\"\nrole = \"{role}\"\ntimezone = \"{tz}\"\n"
        ));
    }
    toml.push_str(&format!(
        "[[surveys]]\nid = \"weekly\"\nname = \"Weekly pulse\"\ncadence = \"0 10 * * MON\"\nwindow_hours = 48\nremind_after_hours = 24\n{survey_extra}\n{questions}"
    ));
    toml
}

pub const ONE_SCALE: &str = r#"[[surveys.questions]]
key = "coaching_value"
kind = "scale"
prompt = "How valuable was coaching this week?"
low_label = "Not at all"
high_label = "Extremely"
"#;

const FOUR_QUESTIONS: &str = r#"[[surveys.questions]]
key = "coaching_value"
kind = "scale"
prompt = "How valuable was coaching this week?"
[[surveys.questions]]
key = "confidence"
kind = "scale"
prompt = "How confident do you feel?"
[[surveys.questions]]
key = "focus"
kind = "choice"
prompt = "What did you work on?"
options = ["Feedback", "Delegation", "Strategy"]
[[surveys.questions]]
key = "comment"
kind = "text"
prompt = "Anything else?"
"#;

const BERLIN: &str = "Europe/Berlin";

async fn pilot(members: &[&str], questions: &str) -> TestApp {
    pilot_at(
        members,
        "anonymity = \"anonymous\"",
        questions,
        default_now(),
    )
    .await
}

/// A Berlin program whose members are all participants in Berlin, each a user of the emulator.
pub async fn pilot_at(
    members: &[&str],
    survey_extra: &str,
    questions: &str,
    now: DateTime<Utc>,
) -> TestApp {
    let emulator = start_emulator().await;
    for m in members {
        emulator.add_user(EmulatedUser::new(m, BERLIN));
    }
    let list: Vec<(&str, &str, &str)> = members
        .iter()
        .map(|m| (*m, "participant", BERLIN))
        .collect();
    TestAppBuilder::default()
        .emulator(emulator)
        .now(now)
        .program("pilot.toml", &program(&list, survey_extra, questions))
        .spawn()
        .await
}

fn find_action(message: &Value, action_prefix: &str) -> (String, String, String) {
    for block in message.as_array().unwrap() {
        for e in block["elements"].as_array().into_iter().flatten() {
            let id = e["action_id"].as_str().unwrap_or("");
            if id.starts_with(action_prefix) {
                return (
                    block["block_id"].as_str().unwrap().to_string(),
                    id.to_string(),
                    e["value"].as_str().unwrap_or("").to_string(),
                );
            }
        }
    }
    panic!("no action {action_prefix} in {message}");
}

async fn click(app: &TestApp, user: &str, action_prefix: &str) -> reqwest::Response {
    let msg = app.first_dm(user);
    let (block_id, action_id, value) = find_action(&msg.blocks, action_prefix);
    let payload =
        app.peer
            .block_actions(user, &msg.channel, &msg.ts, &action_id, &block_id, &value);
    app.send_interaction(&payload).await
}

/// Clicks the DM's modal button and returns the modal as Slack opened it (with its id).
async fn open_survey_modal(app: &TestApp, user: &str) -> Value {
    assert_eq!(click(app, user, "open_modal").await.status(), 200);
    let view = app
        .emulator
        .views()
        .pop()
        .expect("views.open was called with the trigger");
    let mut opened = view.view.clone();
    opened["id"] = json!(view.id);
    opened
}

/// A modal submission of `view` (as opened) with these `state.values`.
fn submission(app: &TestApp, user: &str, view: &Value, values: Value) -> Value {
    let mut view = view.clone();
    view["state"] = json!({ "values": values });
    app.peer.view_submission(user, &view)
}

async fn responses(app: &TestApp) -> Vec<(Option<i64>, String, Option<f64>, Option<String>)> {
    let url = app.db.url.clone();
    let sql = "SELECT delivery_id, metric_key, value_number, value_text FROM responses ORDER BY metric_key";
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query_as(sql).fetch_all(&pool).await.unwrap()
    } else {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query_as(sql).fetch_all(&pool).await.unwrap()
    }
}

#[tokio::test]
async fn the_dm_states_anonymity_program_and_closing_time() {
    let app = pilot(&["U0AMY"], ONE_SCALE).await;
    app.send_monday_pulse().await;
    let msg = app.first_dm("U0AMY");
    assert_eq!(msg.channel, "D0AMY");
    let blocks = msg.blocks.to_string();
    assert!(
        blocks.contains(
            "Anonymous: when this pulse closes, your answers are unlinked from your name"
        ),
        "{blocks}"
    );
    assert!(blocks.contains("Pilot Program"));
    assert!(blocks.contains("Closes Wed 6 Jan, 10:00 CET"), "{blocks}");
    assert!(
        msg.text.contains("How valuable was coaching"),
        "text fallback: {}",
        msg.text
    );
    // One question: answered in one click, buttons 1–5 with end labels.
    for v in 1..=5 {
        assert!(blocks.contains(&format!("\"action_id\":\"answer:{v}\"")));
    }
    assert!(blocks.contains("1 = Not at all · 5 = Extremely"));
    app.assert_count(
        "SELECT COUNT(*) FROM deliveries WHERE state = 'sent' AND channel_id = 'D0AMY'",
        1,
    )
    .await;
}

#[tokio::test]
async fn a_button_answer_is_stored_once_and_the_dm_updated() {
    let app = pilot(&["U0AMY"], ONE_SCALE).await;
    app.send_monday_pulse().await;
    let r = click(&app, "U0AMY", "answer:4").await;
    assert_eq!(r.status(), 200);
    let stored = responses(&app).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1, "coaching_value");
    assert_eq!(stored[0].2, Some(4.0));
    app.assert_count(
        "SELECT COUNT(*) FROM deliveries WHERE state = 'answered'",
        1,
    )
    .await;

    // Double click and a Slack retry of the same payload: still one answer, one update.
    let msg = app.first_dm("U0AMY");
    let (block_id, action_id, value) = find_action(&msg.blocks, "answer:4");
    let payload = app.peer.block_actions(
        "U0AMY",
        &msg.channel,
        &msg.ts,
        &action_id,
        &block_id,
        &value,
    );
    app.send_interaction(&payload).await;
    let form = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let retry = SignOptions {
        retry_num: Some(1),
        ..app.sign_now()
    };
    let r = app
        .post_signed(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            form.as_bytes(),
            retry,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(responses(&app).await.len(), 1);
    app.drain_outbox().await;
    app.assert_count(
        "SELECT COUNT(*) FROM outbox WHERE kind = 'answer_update'",
        1,
    )
    .await;
    // identical answers queue one update, sent through the click's response_url
    assert_eq!(app.first_dm("U0AMY").edits, 1);
    let msg = app.first_dm("U0AMY");
    assert!(
        msg.blocks.to_string().contains("your answer is in"),
        "{}",
        msg.blocks
    );
    assert!(msg.blocks.to_string().contains("Change answer"));
}

#[tokio::test]
async fn changing_an_answer_replaces_it_while_the_window_is_open() {
    let app = pilot(&["U0AMY"], ONE_SCALE).await;
    app.send_monday_pulse().await;
    click(&app, "U0AMY", "answer:2").await;
    app.drain_outbox().await;
    // The updated DM offers a modal to change the answer, prefilled with the earlier one.
    let opened = open_survey_modal(&app, "U0AMY").await;
    assert!(
        opened.to_string().contains("\"initial_option\""),
        "{opened}"
    );
    let values = json!({ "q:coaching_value": { "value": { "type": "radio_buttons", "selected_option": { "value": "5" } } } });
    let submit = submission(&app, "U0AMY", &opened, values);
    let r = app.send_interaction(&submit).await;
    assert_eq!(r.status(), 200);
    let stored = responses(&app).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].2, Some(5.0));
}

#[tokio::test]
async fn a_longer_survey_opens_a_modal_and_validation_errors_come_back_by_field() {
    let app = pilot(&["U0BEN"], FOUR_QUESTIONS).await;
    app.send_monday_pulse().await;
    let msg = app.first_dm("U0BEN");
    assert!(msg
        .blocks
        .to_string()
        .contains("Answer all (4 questions, ~1 min)"));
    let opened = open_survey_modal(&app, "U0BEN").await;

    // Missing required answer: errors next to the field, nothing stored.
    let partial = json!({
        "q:coaching_value": { "value": { "type": "radio_buttons", "selected_option": { "value": "4" } } },
        "q:focus": { "value": { "type": "radio_buttons", "selected_option": { "value": "1" } } },
        "q:comment": { "value": { "type": "plain_text_input", "value": "" } },
    });
    let r = app
        .send_interaction(&submission(&app, "U0BEN", &opened, partial))
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["response_action"], "errors");
    assert_eq!(body["errors"]["q:confidence"], "Please choose an answer.");
    assert!(responses(&app).await.is_empty());

    let full = json!({
        "q:coaching_value": { "value": { "type": "radio_buttons", "selected_option": { "value": "4" } } },
        "q:confidence": { "value": { "type": "radio_buttons", "selected_option": { "value": "3" } } },
        "q:focus": { "value": { "type": "radio_buttons", "selected_option": { "value": "1" } } },
        "q:comment": { "value": { "type": "plain_text_input", "value": "More role plays" } },
    });
    let r = app
        .send_interaction(&submission(&app, "U0BEN", &opened, full))
        .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.text().await.unwrap().is_empty(),
        "an empty 200 closes the modal"
    );
    let stored = responses(&app).await;
    let by_key: Vec<(&str, Option<f64>, Option<&str>)> = stored
        .iter()
        .map(|r| (r.1.as_str(), r.2, r.3.as_deref()))
        .collect();
    assert_eq!(
        by_key,
        vec![
            ("coaching_value", Some(4.0), None),
            ("comment", None, Some("More role plays")),
            ("confidence", Some(3.0), None),
            ("focus", Some(1.0), Some("Delegation")),
        ]
    );
}

#[tokio::test]
async fn a_click_after_the_window_closed_stores_nothing_and_says_so() {
    let app = pilot(&["U0CAT"], ONE_SCALE).await;
    app.send_monday_pulse().await;
    app.advance(Duration::hours(49));
    let r = click(&app, "U0CAT", "answer:5").await;
    assert_eq!(r.status(), 200);
    assert!(responses(&app).await.is_empty());
    app.drain_outbox().await;
    let notices: Vec<_> = app
        .emulator
        .dm_messages("U0CAT")
        .into_iter()
        .filter(|m| m.ephemeral_for.is_some())
        .collect();
    assert_eq!(notices.len(), 1);
    assert!(
        notices[0]
            .text
            .contains("This pulse closed on Wed 6 Jan, 10:00 CET"),
        "{}",
        notices[0].text
    );
}

#[tokio::test]
async fn nobody_can_answer_someone_elses_pulse() {
    let app = pilot(&["U0AMY", "U0BOB"], ONE_SCALE).await;
    app.send_monday_pulse().await;
    let msg = app.first_dm("U0AMY");
    let (block_id, action_id, value) = find_action(&msg.blocks, "answer:1");
    let forged = app.peer.block_actions(
        "U0BOB",
        &msg.channel,
        &msg.ts,
        &action_id,
        &block_id,
        &value,
    );
    assert_eq!(app.send_interaction(&forged).await.status(), 200);
    assert!(responses(&app).await.is_empty());
}

#[tokio::test]
async fn one_reminder_to_non_responders_then_the_dm_closes_and_anonymous_answers_are_sealed() {
    let members = ["U0M1", "U0M2", "U0M3", "U0M4", "U0M5"];
    let app = pilot(&members, FOUR_QUESTIONS).await;
    app.send_monday_pulse().await;
    // Three answer (k = 3, so the reminder may say so); one writes a comment.
    for (i, user) in ["U0M1", "U0M2", "U0M3"].iter().enumerate() {
        let msg = app.first_dm(user);
        let (block_id, action_id, value) = find_action(&msg.blocks, &format!("answer:{}", i + 2));
        let p = app
            .peer
            .block_actions(user, &msg.channel, &msg.ts, &action_id, &block_id, &value);
        app.send_interaction(&p).await;
    }
    app.drain_outbox().await;

    // 24 h later, 10:00 Tuesday Berlin: inside working hours.
    app.advance(Duration::hours(24));
    let report = app.tick().await;
    assert_eq!(report.reminded, 2);
    app.drain_outbox().await;
    for user in ["U0M4", "U0M5"] {
        let replies: Vec<_> = app
            .emulator
            .dm_messages(user)
            .into_iter()
            .filter(|m| m.thread_ts.is_some())
            .collect();
        assert_eq!(replies.len(), 1, "{user} reminded once, in the thread");
        assert!(
            replies[0]
                .text
                .contains("3 colleagues have already answered"),
            "{}",
            replies[0].text
        );
    }
    for user in ["U0M1", "U0M2", "U0M3"] {
        assert!(
            app.emulator
                .dm_messages(user)
                .iter()
                .all(|m| m.thread_ts.is_none()),
            "{user} answered: no reminder"
        );
    }
    app.advance(Duration::hours(1));
    assert_eq!(app.tick().await.reminded, 0, "never a second reminder");

    // Window over: DMs lose their buttons, non-responders expire, the round is sealed.
    app.advance(Duration::hours(24));
    let report = app.tick().await;
    assert_eq!(report.closed, 5);
    assert_eq!(report.sealed, 1);
    app.drain_outbox().await;
    for user in members {
        let msg = app.first_dm(user);
        let blocks = msg.blocks.to_string();
        assert!(
            !blocks.contains("\"type\":\"button\""),
            "{user}: no buttons after close"
        );
        assert!(blocks.contains("Closed"), "{blocks}");
    }
    // Who answered is not kept per member after the seal: counts on the round instead.
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM deliveries WHERE state = 'closed'", 5),
        (
            "SELECT COUNT(*) FROM rounds WHERE answered_count = 3 AND asked_count = 5",
            1,
        ),
        (
            "SELECT COUNT(*) FROM rounds WHERE state = 'closed' AND sealed_at IS NOT NULL",
            1,
        ),
    ])
    .await;
}

#[tokio::test]
async fn after_an_anonymous_round_closes_no_stored_path_links_an_answer_to_a_member() {
    let app = pilot(&["U0S1", "U0S2", "U0S3"], FOUR_QUESTIONS).await;
    app.send_monday_pulse().await;
    for (user, comment) in [("U0S1", "secret-idea-alpha"), ("U0S2", "secret-idea-beta")] {
        let opened = open_survey_modal(&app, user).await;
        let values = json!({
            "q:coaching_value": { "value": { "type": "radio_buttons", "selected_option": { "value": "4" } } },
            "q:confidence": { "value": { "type": "radio_buttons", "selected_option": { "value": "3" } } },
            "q:focus": { "value": { "type": "radio_buttons", "selected_option": { "value": "2" } } },
            "q:comment": { "value": { "type": "plain_text_input", "value": comment } },
        });
        app.send_interaction(&submission(&app, user, &opened, values))
            .await;
    }
    app.drain_outbox().await;
    // Before close the link exists (the member may still change their answer).
    app.assert_count(
        "SELECT COUNT(*) FROM responses WHERE delivery_id IS NOT NULL",
        8,
    )
    .await;

    app.advance(Duration::hours(49));
    app.tick().await;
    app.drain_outbox().await;
    app.assert_count_because(
        "SELECT COUNT(*) FROM responses",
        8,
        "answers are kept for the aggregates",
    )
    .await;
    app.assert_counts(&[
        (
            "SELECT COUNT(*) FROM responses WHERE delivery_id IS NOT NULL",
            0,
        ),
        (
            "SELECT COUNT(*) FROM deliveries WHERE answered_at IS NOT NULL",
            0,
        ),
    ])
    .await;
    app.assert_count_because(
        "SELECT COUNT(DISTINCT created_at) FROM responses",
        1,
        "answer times are coarsened to the round",
    )
    .await;
    app.assert_count_because(
        "SELECT COUNT(*) FROM outbox WHERE payload LIKE '%secret-idea%'",
        0,
        "no rendered answer left beside a channel",
    )
    .await;
    app.assert_count(
        "SELECT COUNT(*) FROM audit_log WHERE detail LIKE '%secret-idea%'",
        0,
    )
    .await;
    // And the slack_messages / deliveries tables carry no answer at all.
    app.assert_count(
        "SELECT COUNT(*) FROM deliveries WHERE failure_reason LIKE '%secret%'",
        0,
    )
    .await;
}

#[tokio::test]
async fn a_deactivated_user_fails_for_good_and_others_are_unaffected() {
    let app = pilot(&["U0OK1", "U0GONE", "U0OK2"], ONE_SCALE).await;
    // Deactivated in Slack after the last profile refresh.
    app.emulator.set_user_deleted("U0GONE", true);
    app.send_monday_pulse().await;
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'", 2),
        ("SELECT COUNT(*) FROM deliveries WHERE state = 'failed' AND failure_reason LIKE '%account_inactive%'", 1),
        ("SELECT COUNT(*) FROM outbox WHERE status = 'failed' AND last_error LIKE '%account_inactive%'", 1),
    ])
    .await;
    assert!(
        app.emulator.dm_messages("U0OK1").len() == 1
            && app.emulator.dm_messages("U0OK2").len() == 1
    );
    // Reported to admins.
    let failures: Vec<Value> = app
        .admin_get("/api/v1/programs/pilot/failures")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["member"], "U0GONE");
    assert_eq!(failures[0]["state"], "failed");
    assert!(failures[0]["reason"]
        .as_str()
        .unwrap()
        .contains("account_inactive"));
}

#[tokio::test]
async fn long_texts_and_many_options_stay_inside_block_kit_limits() {
    let long = "Why? ".repeat(700); // 3,500 characters
    let options: Vec<String> = (0..25).map(|i| format!("\"Option number {i} with a rather long label that goes past seventy-five characters\"")).collect();
    let questions = format!(
        "[[surveys.questions]]\nkey = \"long\"\nkind = \"choice\"\nprompt = \"{long}\"\noptions = [{}]\n[[surveys.questions]]\nkey = \"n\"\nkind = \"enps\"\nprompt = \"{long}\"\n",
        options.join(", ")
    );
    let app = pilot(&["U0LONG"], &questions).await;
    app.send_monday_pulse().await;
    let posts = app.emulator.calls_to("chat.postMessage");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].response["ok"], true, "{}", posts[0].response);
    let msg = app.first_dm("U0LONG");
    let (block_id, action_id, value) = find_action(&msg.blocks, "open_modal");
    app.send_interaction(&app.peer.block_actions(
        "U0LONG",
        &msg.channel,
        &msg.ts,
        &action_id,
        &block_id,
        &value,
    ))
    .await;
    let opened = app.emulator.calls_to("views.open");
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].response["ok"], true, "{}", opened[0].response);
}

#[tokio::test]
async fn the_reminder_hides_the_count_below_the_anonymity_threshold() {
    let app = pilot(&["U0R1", "U0R2"], ONE_SCALE).await;
    app.send_monday_pulse().await;
    click(&app, "U0R1", "answer:3").await;
    app.advance(Duration::hours(24));
    assert_eq!(app.tick().await.reminded, 1);
    app.drain_outbox().await;
    let reply = app
        .emulator
        .dm_messages("U0R2")
        .into_iter()
        .find(|m| m.thread_ts.is_some())
        .expect("a reminder in the thread");
    assert!(reply.text.contains("Friendly reminder"), "{}", reply.text);
    assert!(
        !reply.text.contains("colleagues"),
        "1 answer is below k = 3: {}",
        reply.text
    );
}

#[tokio::test]
async fn reminders_wait_for_working_hours() {
    let app = pilot(&["U0NIGHT"], ONE_SCALE).await;
    app.send_monday_pulse().await;
    // The reminder is due Tuesday 10:00, but the first tick after it is at 20:00 Berlin.
    app.clock
        .set(Utc.with_ymd_and_hms(2027, 1, 5, 19, 0, 0).unwrap());
    assert_eq!(app.tick().await.reminded, 0, "20:00 is outside 09:00-18:00");
    // Wednesday 09:30 Berlin, half an hour before the window closes.
    app.clock
        .set(Utc.with_ymd_and_hms(2027, 1, 6, 8, 30, 0).unwrap());
    assert_eq!(app.tick().await.reminded, 1);
}

#[tokio::test]
async fn an_answer_update_still_queued_at_close_is_dropped_with_the_seal() {
    let app = pilot(&["U0LATE"], FOUR_QUESTIONS).await;
    app.send_monday_pulse().await;
    let opened = open_survey_modal(&app, "U0LATE").await;
    let values = json!({
        "q:coaching_value": { "value": { "type": "radio_buttons", "selected_option": { "value": "4" } } },
        "q:confidence": { "value": { "type": "radio_buttons", "selected_option": { "value": "3" } } },
        "q:focus": { "value": { "type": "radio_buttons", "selected_option": { "value": "2" } } },
        "q:comment": { "value": { "type": "plain_text_input", "value": "last-minute-secret" } },
    });
    app.send_interaction(&submission(&app, "U0LATE", &opened, values))
        .await;
    // The window closes before the outbox sent the "your answer is in" update.
    app.advance(Duration::hours(49));
    assert_eq!(app.tick().await.sealed, 1);
    app.assert_count(
        "SELECT COUNT(*) FROM outbox WHERE payload LIKE '%last-minute-secret%'",
        0,
    )
    .await;
    app.drain_outbox().await;
    let dm = app.first_dm("U0LATE");
    assert!(
        dm.blocks
            .to_string()
            .contains("This pulse is closed. Its answers are now unlinked"),
        "{}",
        dm.blocks
    );
    assert!(!dm.blocks.to_string().contains("last-minute-secret"));
}

/// On SQLite the delivery a click reads is remembered in the process (docs/performance.md,
/// "The delivery cache"). Forgetting the member while her pulse is open changes its rows:
/// a click on the old DM afterwards stores nothing, whether the row it is decided on was
/// remembered or read (the answer's write re-checks the delivery in its own statement).
#[tokio::test]
async fn a_click_after_forget_me_on_a_pulse_answered_before_stores_nothing() {
    let app = pilot(&["U0AMY", "U0BOB"], ONE_SCALE).await;
    app.send_monday_pulse().await;
    assert_eq!(click(&app, "U0AMY", "answer:4").await.status(), 200);
    // The second click is served from what the first one left (no read), and stored.
    assert_eq!(click(&app, "U0AMY", "answer:2").await.status(), 200);
    let stored: Vec<Option<f64>> = responses(&app).await.iter().map(|r| r.2).collect();
    assert_eq!(stored, vec![Some(2.0)]);

    let forget = app.peer.block_actions(
        "U0AMY",
        &app.emulator.dm_channel_for("U0AMY"),
        "1700000000.000200",
        "forget_me_confirm",
        "forget",
        "confirm",
    );
    assert_eq!(app.send_interaction(&forget).await.status(), 200);
    app.assert_count(
        "SELECT COUNT(*) FROM members WHERE slack_user_id = 'U0AMY'",
        0,
    )
    .await;
    let after_forget = responses(&app).await;

    assert_eq!(click(&app, "U0AMY", "answer:5").await.status(), 200);
    assert_eq!(
        responses(&app).await,
        after_forget,
        "a click after forget-me stored or changed an answer"
    );
}

/// A member's role is part of the delivery row a click reads (answers are grouped by role
/// for the anonymity thresholds). Remembered in the process on SQLite, that row must not
/// outlive a configuration change: after a reload makes her a leader, her first answer is
/// stored as a leader's, though her delivery was read (opening the survey) before and did
/// not change since.
#[tokio::test]
async fn an_answer_after_a_role_change_is_stored_under_the_new_role() {
    let app = pilot(&["U0AMY", "U0BOB"], FOUR_QUESTIONS).await;
    app.send_monday_pulse().await;
    assert_eq!(click(&app, "U0AMY", "open_modal").await.status(), 200);

    let members = [
        ("U0AMY", "leader", BERLIN),
        ("U0BOB", "participant", BERLIN),
    ];
    let toml = program(&members, "anonymity = \"anonymous\"", FOUR_QUESTIONS);
    std::fs::write(app.programs_dir().join("pilot.toml"), toml).unwrap();
    pulseloop::pulse::sync::apply_config(&app.state.pulses)
        .await
        .expect("reload");

    assert_eq!(click(&app, "U0AMY", "answer:2").await.status(), 200);
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM responses WHERE role = 'leader'", 1),
        ("SELECT COUNT(*) FROM responses", 1),
    ])
    .await;
}
