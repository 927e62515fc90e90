//! App Home (issue 8, item 5): `app_home_opened` → `views.publish` through the outbox. A
//! member sees only their own confidential and attributed answers, never an anonymous one; an
//! owner sees the last digest's headline numbers and a "Preview digest" button.

use crate::helpers::*;
use crate::messages::{click_on, texts};
use chrono::Duration;
use pulseloop::domain::program::Anonymity;
use pulseloop::pulse::{home, render};
use serde_json::{json, Value};
use slack_emulator::{EmulatedMessage, EmulatedUser, ViewKind};

const BERLIN: &str = "Europe/Berlin";

const PROGRAM: &str = r#"id = "pilot"
name = "Pilot Program"
timezone = "Europe/Berlin"
start_date = "2027-01-04"
owners = ["U0OWN"]
anonymity_threshold = 3
comment_threshold = 3

[[members]]
slack_id = "U0ANN"
role = "participant"
timezone = "Europe/Berlin"

[[members]]
slack_id = "U0BEN"
role = "participant"
timezone = "Europe/Berlin"

[[surveys]]
id = "check"
name = "Focus check"
cadence = "0 10 * * MON"
window_hours = 48
anonymity = "confidential"

[[surveys.questions]]
key = "focus"
kind = "choice"
prompt = "What did you work on?"
options = ["Delegation", "Strategy", "Feedback"]

[[surveys]]
id = "energy"
name = "Energy check"
cadence = "0 10 * * MON"
window_hours = 48
anonymity = "attributed"

[[surveys.questions]]
key = "energy"
kind = "scale"
prompt = "How is your energy?"

[[surveys]]
id = "mood"
name = "Mood pulse"
cadence = "0 10 * * MON"
window_hours = 48
anonymity = "anonymous"

[[surveys.questions]]
key = "place"
kind = "choice"
prompt = "Where is your head at?"
options = ["Lighthouse", "Harbour"]
"#;

async fn app() -> TestApp {
    let emulator = start_emulator().await;
    for user in ["U0ANN", "U0BEN", "U0OWN"] {
        emulator.add_user(EmulatedUser::new(user, BERLIN));
    }
    TestAppBuilder::default()
        .emulator(emulator)
        .program("pilot.toml", PROGRAM)
        .spawn()
        .await
}

/// `user`'s DM of the survey named `survey`.
fn dm_of(app: &TestApp, user: &str, survey: &str) -> EmulatedMessage {
    app.emulator
        .dm_messages(user)
        .into_iter()
        .find(|m| m.thread_ts.is_none() && texts(&m.blocks).contains(survey))
        .unwrap_or_else(|| panic!("no {survey} DM for {user}"))
}

/// `user` opens the Home tab (event `event_id`); returns what the tab shows once the outbox
/// has published it.
async fn open_home(app: &TestApp, user: &str, event_id: &str) -> Value {
    let event = app
        .peer
        .event_callback(event_id, app.peer.app_home_opened(user));
    assert_eq!(app.send_event(&event).await.status(), 200);
    app.drain_outbox().await;
    home_of(app, user)
}

fn home_of(app: &TestApp, user: &str) -> Value {
    app.emulator
        .views()
        .into_iter()
        .find(|v| v.kind == ViewKind::Home && v.user.as_deref() == Some(user))
        .map(|v| v.view)
        .unwrap_or_else(|| panic!("no Home tab published for {user}"))
}

/// A click on a Home tab button, shaped as Slack sends it (the view, no channel, no message).
fn home_click(user: &str, action_id: &str, value: &str, n: u32) -> Value {
    json!({
        "type": "block_actions",
        "user": { "id": user },
        "team": { "id": "T0TEST" },
        "trigger_id": format!("1.2.home{n}"),
        "container": { "type": "view", "view_id": "V0HOME" },
        "view": { "id": "V0HOME", "type": "home", "callback_id": "", "private_metadata": "" },
        "actions": [{ "action_id": action_id, "block_id": "b", "type": "button", "value": value,
                      "action_ts": format!("1799000000.00010{n}") }],
    })
}

#[tokio::test]
async fn a_members_home_shows_only_their_own_answers() {
    let app = app().await;
    app.send_monday_pulse().await;
    crate::messages::drain_later(&app).await;
    // Confidential: Ann works on delegation, Ben on strategy. Anonymous: Lighthouse, Harbour.
    click_on(
        &app,
        "U0ANN",
        &dm_of(&app, "U0ANN", "Focus check"),
        "answer:0",
    )
    .await;
    click_on(
        &app,
        "U0BEN",
        &dm_of(&app, "U0BEN", "Focus check"),
        "answer:1",
    )
    .await;
    click_on(
        &app,
        "U0ANN",
        &dm_of(&app, "U0ANN", "Mood pulse"),
        "answer:0",
    )
    .await;
    click_on(
        &app,
        "U0BEN",
        &dm_of(&app, "U0BEN", "Mood pulse"),
        "answer:1",
    )
    .await;
    app.drain_outbox().await;

    // While the rounds are open: Ann's own confidential answer, never Ben's, never an
    // anonymous answer (not even her own), and the anonymous pulse reads as it would unanswered.
    let ann = texts(&open_home(&app, "U0ANN", "EvHOME1").await);
    assert!(
        ann.contains("• What did you work on? — *Delegation*"),
        "{ann}"
    );
    assert!(
        !ann.contains("Strategy") && !ann.contains("Lighthouse") && !ann.contains("Harbour"),
        "{ann}"
    );
    assert!(
        ann.contains("*Focus check* (Pilot Program), closes Wed 6 Jan, 10:00 CET\nYou answered."),
        "{ann}"
    );
    assert!(ann.contains("*Mood pulse* (Pilot Program), closes Wed 6 Jan, 10:00 CET\nYou can answer or change your answer until then."), "{ann}");
    assert!(ann.contains("Answer or change"), "{ann}");
    // The answer button opens the survey modal.
    let view = home_of(&app, "U0ANN");
    let (_, action_id, value) = crate::messages::find_action(&view["blocks"], "open_modal");
    assert_eq!(action_id, render::ACTION_OPEN_MODAL);
    assert!(value.parse::<i64>().is_ok(), "a delivery id: {value}");

    // Close and seal.
    app.run_at(monday_ten_berlin() + Duration::hours(49)).await;
    app.assert_count("SELECT COUNT(*) FROM rounds WHERE sealed_at IS NOT NULL", 1)
        .await;

    let ann = texts(&open_home(&app, "U0ANN", "EvHOME2").await);
    let ben = texts(&open_home(&app, "U0BEN", "EvHOME3").await);
    assert!(
        ann.contains("*Focus check*, Mon 4 Jan 2027\n• What did you work on? — *Delegation*"),
        "{ann}"
    );
    assert!(
        ben.contains("*Focus check*, Mon 4 Jan 2027\n• What did you work on? — *Strategy*"),
        "{ben}"
    );
    for (who, home, others) in [
        ("Ann", &ann, ["Strategy", "Lighthouse", "Harbour"]),
        ("Ben", &ben, ["Delegation", "Lighthouse", "Harbour"]),
    ] {
        for word in others {
            assert!(!home.contains(word), "{who}'s home shows {word}: {home}");
        }
        assert!(
            home.contains("Nothing is waiting for you right now."),
            "{home}"
        );
        assert!(
            home.contains("Answers to anonymous pulses are never shown"),
            "{home}"
        );
    }
    // The publishes went through the outbox, one per opening.
    app.assert_count(
        "SELECT COUNT(*) FROM outbox WHERE method = 'views.publish' AND status = 'sent'",
        3,
    )
    .await;
}

#[tokio::test]
async fn the_home_says_what_we_collect_in_the_words_of_every_dm_and_offers_the_controls() {
    let app = app().await;
    let home = open_home(&app, "U0ANN", "EvHOME1").await;
    let shown = texts(&home);
    assert!(
        shown.contains("*What we collect and who sees it*"),
        "{shown}"
    );
    for mode in [
        Anonymity::Anonymous,
        Anonymity::Confidential,
        Anonymity::Attributed,
    ] {
        assert!(
            shown.contains(&render::anonymity_statement(mode, 3)),
            "{shown}"
        );
    }
    assert!(
        shown.contains("*Pilot Program*: you get its pulses."),
        "{shown}"
    );
    assert!(shown.contains("No wins yet."), "{shown}");
    for action in ["home_pause", "home_optout"] {
        crate::messages::find_action(&home["blocks"], action);
    }
    // The opt-out button asks Slack to confirm first.
    let blocks = home["blocks"].to_string();
    assert!(blocks.contains("\"confirm\":{"), "{blocks}");

    // Pause from the tab: stored, and the tab redrawn with Resume.
    let r = app
        .send_interaction(&home_click("U0ANN", "home_pause", "pause", 1))
        .await;
    assert_eq!(r.status(), 200);
    app.drain_outbox().await;
    app.assert_count(
        "SELECT COUNT(*) FROM members WHERE slack_user_id = 'U0ANN' AND state = 'paused' AND paused_until IS NULL",
        1,
    )
    .await;
    let home = home_of(&app, "U0ANN");
    assert!(texts(&home).contains("*Pilot Program*: paused until you resume."));
    crate::messages::find_action(&home["blocks"], "home_resume");

    // Resume, then opt out.
    app.send_interaction(&home_click("U0ANN", "home_resume", "resume", 2))
        .await;
    app.send_interaction(&home_click("U0ANN", "home_optout", "optout", 3))
        .await;
    app.drain_outbox().await;
    app.assert_count(
        "SELECT COUNT(*) FROM members WHERE slack_user_id = 'U0ANN' AND state = 'opted_out'",
        1,
    )
    .await;
    assert!(texts(&home_of(&app, "U0ANN")).contains("*Pilot Program*: you opted out"));
}

#[tokio::test]
async fn an_owner_sees_the_last_digest_and_can_ask_for_a_preview() {
    let app = app().await;
    let shown = texts(&open_home(&app, "U0OWN", "EvOWN1").await);
    assert!(shown.contains("Pilot Program: program owner"), "{shown}");
    assert!(shown.contains("*Pilot Program*: No digest yet."), "{shown}");
    assert!(
        !shown.contains("Your pulses"),
        "the owner is not a member: {shown}"
    );

    // Mon 28 Dec 2026 00:00 to Mon 4 Jan 2027 00:00, Berlin.
    exec(
        &app.db.url,
        r#"INSERT INTO digests (program_id, period_start, period_end, channel_id, content, created_at)
           VALUES ('pilot', 1798412400000, 1799017200000, 'C0SPONSOR1',
             '{"participation":{"asked":10,"answered":8,"rate":0.8},"metrics":[{"key":"coaching_value","n":8,"mean":4.125,"suppressed":false,"delta_baseline":0.4,"within_noise":false},{"key":"confidence","n":2,"mean":null,"suppressed":true}],"enps":{"n":8,"score":25.0}}',
             1799017200000)"#,
    )
    .await;
    let home = open_home(&app, "U0OWN", "EvOWN2").await;
    let shown = texts(&home);
    assert!(
        shown.contains(
            "*Pilot Program*: last digest, Mon 28 Dec to Sun 3 Jan 2027\n\
             • Participation: 8 of 10 (80 %)\n\
             • coaching_value: *4.1* (n = 8), +0.4 on the baseline\n\
             • confidence: fewer than 3 answers, not shown\n\
             • eNPS: *+25* (n = 8)"
        ),
        "{shown}"
    );
    let (_, _, program) = crate::messages::find_action(&home["blocks"], "digest_preview");
    assert_eq!(program, "pilot");

    // The owner gets the current period's digest by DM, as sponsors would read it (nothing
    // posted to the sponsor channel). A member who forges the click is refused.
    app.send_interaction(&home_click("U0OWN", "digest_preview", "pilot", 1))
        .await;
    app.send_interaction(&home_click("U0ANN", "digest_preview", "pilot", 2))
        .await;
    app.drain_outbox().await;
    let said = |user: &str| -> Vec<String> {
        app.emulator
            .dm_messages(user)
            .into_iter()
            .map(|m| m.text)
            .collect()
    };
    let owner_dms = app.emulator.dm_messages("U0OWN");
    assert_eq!(owner_dms.len(), 1, "{:?}", said("U0OWN"));
    assert!(
        owner_dms[0].text.starts_with(home::DIGEST_PREVIEW_PREFIX),
        "{}",
        owner_dms[0].text
    );
    let header = &owner_dms[0].blocks[0];
    assert_eq!(header["type"], "header", "{}", owner_dms[0].blocks);
    assert!(
        header["text"]["text"]
            .as_str()
            .unwrap()
            .contains("Pilot Program"),
        "{header}"
    );
    assert!(
        app.emulator
            .messages()
            .iter()
            .all(|m| m.channel != "C0SPONSOR1"),
        "a preview is never posted to the sponsor channel"
    );
    assert_eq!(said("U0ANN"), vec![home::DIGEST_PREVIEW_REFUSED]);
}

#[tokio::test]
async fn a_member_sees_their_own_trend_and_wins() {
    let app = app().await;
    for (week, focus, energy) in [(0, "answer:0", "answer:2"), (1, "answer:2", "answer:4")] {
        app.run_at(monday_ten_berlin() + Duration::weeks(week))
            .await;
        crate::messages::drain_later(&app).await;
        click_on(
            &app,
            "U0ANN",
            &dm_of_latest(&app, "U0ANN", "Focus check"),
            focus,
        )
        .await;
        click_on(
            &app,
            "U0ANN",
            &dm_of_latest(&app, "U0ANN", "Energy check"),
            energy,
        )
        .await;
        click_on(
            &app,
            "U0BEN",
            &dm_of_latest(&app, "U0BEN", "Energy check"),
            "answer:5",
        )
        .await;
        app.drain_outbox().await;
    }
    exec(
        &app.db.url,
        "INSERT INTO wins (program_id, author_member_id, text, consent, source_key, created_at)
         SELECT 'pilot', id, 'Closed the hiring loop', 'named', 'test:win:1', 0
         FROM members WHERE slack_user_id = 'U0ANN'",
    )
    .await;
    let ann = texts(&open_home(&app, "U0ANN", "EvTREND1").await);
    // Newest round first.
    let feedback = ann.find("*Feedback*").expect("the newer answer");
    let delegation = ann.find("*Delegation*").expect("the older answer");
    assert!(feedback < delegation, "{ann}");
    assert!(
        ann.contains("*Your trend*\n• How is your energy? ▃▆ latest: *4 out of 5* (2 pulses)"),
        "{ann}"
    );
    assert!(
        ann.contains("• “Closed the hiring loop” — shared with your name (Pilot Program)"),
        "{ann}"
    );
    let ben = texts(&open_home(&app, "U0BEN", "EvTREND2").await);
    assert!(
        ben.contains("• How is your energy? ██ latest: *5 out of 5* (2 pulses)"),
        "{ben}"
    );
    assert!(!ben.contains("hiring loop") && !ben.contains("▃▆"), "{ben}");
    assert!(ben.contains("No wins yet."), "{ben}");
}

/// The newest top-level DM of `survey` for `user`.
fn dm_of_latest(app: &TestApp, user: &str, survey: &str) -> EmulatedMessage {
    app.emulator
        .dm_messages(user)
        .into_iter()
        .rfind(|m| m.thread_ts.is_none() && texts(&m.blocks).contains(survey))
        .unwrap_or_else(|| panic!("no {survey} DM for {user}"))
}
