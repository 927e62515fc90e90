//! Member controls (/pulse pause, resume, optout, status), out-of-office, and programs as
//! code applied to the database.

use crate::helpers::*;
use crate::pulses::{pilot_at, program, ONE_SCALE};
use chrono::{Duration, TimeZone, Utc};
use serde_json::{json, Value};
use slack_emulator::EmulatedUser;

const BERLIN: &str = "Europe/Berlin";

async fn app_with(members: &[&str]) -> TestApp {
    pilot_at(members, "", ONE_SCALE, sunday_noon()).await
}

async fn command(app: &TestApp, user: &str, text: &str) -> Value {
    let r = app.send_command(user, text).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn pause_holds_pulses_and_resume_releases_them() {
    let app = app_with(&["U0P1", "U0P2"]).await;
    let reply = command(&app, "U0P1", "pause").await;
    assert!(
        reply["text"].as_str().unwrap().contains("Paused"),
        "{reply}"
    );
    app.run_at(monday_ten_berlin()).await;
    assert_eq!(app.dm_count("U0P1"), 0, "paused: nothing sent");
    assert_eq!(app.dm_count("U0P2"), 1);
    let status = command(&app, "U0P1", "status").await;
    let text = status["text"].as_str().unwrap();
    assert!(text.contains("paused"), "{text}");

    let reply = command(&app, "U0P1", "resume").await;
    assert!(reply["text"].as_str().unwrap().contains("Resumed"));
    app.run_at(monday_ten_berlin() + Duration::minutes(30))
        .await;
    assert_eq!(
        app.dm_count("U0P1"),
        1,
        "the waiting pulse goes out once they resume, while its window is open"
    );
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM audit_log WHERE actor = 'member:U0P1' AND action = 'member.paused'", 1),
        ("SELECT COUNT(*) FROM audit_log WHERE actor = 'member:U0P1' AND action = 'member.resumed'", 1),
    ])
    .await;
}

#[tokio::test]
async fn a_pause_with_an_end_date_ends_by_itself() {
    let app = app_with(&["U0P1"]).await;
    let reply = command(&app, "U0P1", "pause until 2027-01-03").await;
    assert!(
        reply["text"]
            .as_str()
            .unwrap()
            .contains("Paused until the end of Sun 3 Jan 2027."),
        "{reply}"
    );
    let bad = command(&app, "U0P1", "pause until someday").await;
    assert!(
        bad["text"]
            .as_str()
            .unwrap()
            .contains("'someday' is not a date"),
        "{bad}"
    );
    app.run_at(monday_ten_berlin()).await;
    assert_eq!(
        app.dm_count("U0P1"),
        1,
        "the pause ended at midnight Berlin time"
    );
    app.assert_count("SELECT COUNT(*) FROM members WHERE state = 'active'", 1)
        .await;
}

#[tokio::test]
async fn opting_out_asks_first_then_cancels_pending_pulses() {
    let app = app_with(&["U0P1"]).await;
    app.clock.set(monday_ten_berlin() - Duration::minutes(1));
    let reply = command(&app, "U0P1", "optout").await;
    let blocks = reply["blocks"].to_string();
    assert!(
        blocks.contains("optout_confirm"),
        "a confirmation button: {reply}"
    );
    app.assert_count_because(
        "SELECT COUNT(*) FROM members WHERE state = 'opted_out'",
        0,
        "nothing until confirmed",
    )
    .await;

    // Planned but not yet sent, then the member confirms by clicking.
    app.clock.set(monday_ten_berlin());
    app.state
        .scheduler
        .clone()
        .plan(app.now(), &mut Default::default())
        .await
        .unwrap();
    app.confirm_optout("U0P1", "D0P1").await;
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM members WHERE state = 'opted_out'", 1),
        ("SELECT COUNT(*) FROM deliveries WHERE state = 'skipped'", 1),
    ])
    .await;
    app.tick().await;
    app.drain_outbox().await;
    assert_eq!(app.dm_count("U0P1"), 0);
    let status = command(&app, "U0P1", "status").await;
    assert!(
        status["text"].as_str().unwrap().contains("opted out"),
        "{status}"
    );
}

#[tokio::test]
async fn status_lists_what_is_pending_and_the_next_pulse() {
    let app = app_with(&["U0P1"]).await;
    let before = command(&app, "U0P1", "status").await;
    let text = before["text"].as_str().unwrap();
    assert!(text.contains("Nothing is waiting"), "{text}");
    assert!(
        text.contains("next pulse *Weekly pulse* on Mon 4 Jan, 10:00 CET"),
        "{text}"
    );
    app.run_at(monday_ten_berlin()).await;
    let after = command(&app, "U0P1", "status").await;
    assert!(
        after["text"]
            .as_str()
            .unwrap()
            .contains("Waiting for you: *Weekly pulse* (Pilot Program)"),
        "{after}"
    );
    let stranger = command(&app, "U0NOBODY", "status").await;
    assert!(stranger["text"].as_str().unwrap().contains("not a member"));
}

#[tokio::test]
async fn an_out_of_office_status_holds_the_pulse_until_it_clears() {
    let app = app_with(&["U0P1"]).await;
    // Slack tells us through user_change.
    let event = json!({
        "type": "event_callback", "team_id": "T0SANDBOX", "event_id": "Ev0OOO", "event_time": 1,
        "event": { "type": "user_change", "user": { "id": "U0P1", "tz": "Europe/Berlin", "profile": { "status_text": "On vacation", "status_emoji": ":palm_tree:" } } }
    });
    // (Slack's directory says the same: a held member's status is read again.)
    app.emulator
        .set_user_status("U0P1", "On vacation", ":palm_tree:");
    assert_eq!(app.send_event(&event).await.status(), 200);
    app.run_at(monday_ten_berlin()).await;
    assert_eq!(app.dm_count("U0P1"), 0);
    let back = json!({
        "type": "event_callback", "team_id": "T0SANDBOX", "event_id": "Ev0BACK", "event_time": 2,
        "event": { "type": "user_change", "user": { "id": "U0P1", "tz": "Europe/Berlin", "profile": { "status_text": "", "status_emoji": "" } } }
    });
    app.emulator.set_user_status("U0P1", "", "");
    app.send_event(&back).await;
    app.run_at(monday_ten_berlin() + Duration::hours(3)).await;
    assert_eq!(app.dm_count("U0P1"), 1);
}

#[tokio::test]
async fn deleted_users_and_bots_are_never_messaged_and_slack_time_zones_are_used() {
    let emulator = start_emulator().await;
    emulator.add_user(EmulatedUser::new("U0NYC", "America/New_York"));
    let mut gone = EmulatedUser::new("U0GONE", BERLIN);
    gone.deleted = true;
    emulator.add_user(gone);
    emulator.add_user(EmulatedUser::new("U0BOT", BERLIN).bot());
    let toml = program(&[], "", ONE_SCALE).replace(
        "[[surveys]]",
        "[[members]]\nslack_id = \"U0NYC\"\nrole = \"leader\"\n[[members]]\nslack_id = \"U0GONE\"\nrole = \"leader\"\n[[members]]\nslack_id = \"U0BOT\"\nrole = \"leader\"\n[[surveys]]",
    );
    let app = TestAppBuilder::default()
        .emulator(emulator)
        .now(sunday_noon())
        .program("p.toml", &toml)
        .spawn()
        .await;
    // users.info was read on first sight.
    app.assert_count(
        "SELECT COUNT(*) FROM members WHERE slack_tz = 'America/New_York'",
        1,
    )
    .await;
    // 10:00 in New York is 15:00 UTC.
    app.run_at(Utc.with_ymd_and_hms(2027, 1, 4, 14, 45, 0).unwrap())
        .await;
    assert_eq!(app.dm_count("U0NYC"), 0);
    app.run_at(Utc.with_ymd_and_hms(2027, 1, 4, 15, 0, 0).unwrap())
        .await;
    assert_eq!(app.dm_count("U0NYC"), 1);
    let to_others = app
        .emulator
        .calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.params["channel"] != "U0NYC")
        .count();
    assert_eq!(to_others, 0, "no DM to a deleted user or a bot");
}

#[tokio::test]
async fn programs_as_code_deactivate_removed_members_and_keep_metric_keys() {
    let app = app_with(&["U0A", "U0B"]).await;
    app.assert_count("SELECT COUNT(*) FROM members WHERE state = 'active'", 2)
        .await;
    assert!(
        app.count(
            "SELECT COUNT(*) FROM audit_log WHERE actor = 'config' AND action = 'member.added'"
        )
        .await
            == 2
    );

    // U0B leaves the file; the question is reworded; a user group adds U0C.
    app.emulator.add_user(EmulatedUser::new("U0C", BERLIN));
    app.emulator.set_usergroup("S0COHORT", &["U0C"]);
    let toml = program(
        &[("U0A", "participant", BERLIN)],
        "",
        &ONE_SCALE.replace(
            "How valuable was coaching this week?",
            "How useful was coaching?",
        ),
    )
    .replace(
        "[[surveys]]",
        "[[usergroups]]\nusergroup = \"S0COHORT\"\nrole = \"participant\"\n[[surveys]]",
    );
    std::fs::write(app.programs_dir().join("pilot.toml"), toml).unwrap();
    pulseloop::pulse::sync::apply_config(&app.state.pulses)
        .await
        .unwrap();

    app.assert_count_because("SELECT COUNT(*) FROM members", 3, "nobody is deleted")
        .await;
    app.assert_counts(&[
        (
            "SELECT COUNT(*) FROM members WHERE slack_user_id = 'U0B' AND state = 'deactivated'",
            1,
        ),
        (
            "SELECT COUNT(*) FROM members WHERE slack_user_id = 'U0C' AND source = 'usergroup'",
            1,
        ),
    ])
    .await;
    app.assert_count_because(
        "SELECT COUNT(*) FROM questions",
        1,
        "same metric key, reworded",
    )
    .await;
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM questions WHERE prompt = 'How useful was coaching?'", 1),
        ("SELECT COUNT(*) FROM audit_log WHERE actor = 'config' AND action = 'member.deactivated'", 1),
        ("SELECT COUNT(*) FROM audit_log WHERE actor = 'config' AND action = 'survey.updated'", 1),
    ])
    .await;

    // A broken file changes nothing and says why.
    std::fs::write(
        app.programs_dir().join("pilot.toml"),
        "id = \"pilot\"\ncolour = 1\n",
    )
    .unwrap();
    let err = pulseloop::pulse::sync::apply_config(&app.state.pulses)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("colour: unknown key"), "{err}");
    app.assert_count("SELECT COUNT(*) FROM members WHERE state = 'active'", 2)
        .await;
    assert!(
        app.state.catalog.program(&"pilot".into()).is_some(),
        "the previous configuration stays in force"
    );
}

#[tokio::test]
async fn a_large_program_reads_profiles_with_users_list_not_one_call_each() {
    let emulator = start_emulator().await;
    let ids: Vec<String> = (0..60).map(|i| format!("U0BULK{i:03}")).collect();
    for id in &ids {
        emulator.add_user(EmulatedUser::new(id, "Asia/Tokyo"));
    }
    let members: Vec<(&str, &str, &str)> = ids
        .iter()
        .map(|id| (id.as_str(), "participant", ""))
        .collect();
    let toml = program(&members, "", ONE_SCALE).replace("timezone = \"\"\n", "");
    let app = TestAppBuilder::default()
        .emulator(emulator)
        .now(sunday_noon())
        .program("big.toml", &toml)
        .spawn()
        .await;
    app.assert_count(
        "SELECT COUNT(*) FROM members WHERE slack_tz = 'Asia/Tokyo'",
        60,
    )
    .await;
    assert_eq!(app.emulator.calls_to("users.info").len(), 0);
    assert!(!app.emulator.calls_to("users.list").is_empty());
}

#[tokio::test]
async fn the_audit_log_is_readable_through_the_admin_api() {
    let app = app_with(&["U0A"]).await;
    command(&app, "U0A", "pause").await;
    let r = app.admin_get("/api/v1/audit?program=pilot&limit=10").await;
    assert_eq!(r.status(), 200);
    let entries: Vec<Value> = r.json().await.unwrap();
    assert_eq!(entries[0]["action"], "member.paused", "newest first");
    assert_eq!(entries[0]["actor"], "member:U0A");
    assert!(entries
        .iter()
        .any(|e| e["action"] == "member.added" && e["actor"] == "config"));
    assert_eq!(app.admin_get("/api/v1/audit?limit=0").await.status(), 400);
}

#[tokio::test]
async fn user_group_changes_are_picked_up_without_a_restart() {
    let emulator = start_emulator().await;
    for id in ["U0G1", "U0G2"] {
        emulator.add_user(EmulatedUser::new(id, BERLIN));
    }
    emulator.set_usergroup("S0GROUP", &["U0G1"]);
    let toml = program(&[], "", ONE_SCALE).replace(
        "[[surveys]]",
        "[[usergroups]]\nusergroup = \"S0GROUP\"\nrole = \"leader\"\n[[surveys]]",
    );
    let app = TestAppBuilder::default()
        .emulator(emulator)
        .now(sunday_noon())
        .program("g.toml", &toml)
        .spawn()
        .await;
    app.assert_count("SELECT COUNT(*) FROM members WHERE state = 'active'", 1)
        .await;
    app.emulator.set_usergroup("S0GROUP", &["U0G2"]);
    assert_eq!(
        pulseloop::pulse::sync::resync_usergroups(&app.state.pulses)
            .await
            .unwrap(),
        1
    );
    app.assert_counts(&[
        (
            "SELECT COUNT(*) FROM members WHERE slack_user_id = 'U0G2' AND state = 'active'",
            1,
        ),
        (
            "SELECT COUNT(*) FROM members WHERE slack_user_id = 'U0G1' AND state = 'deactivated'",
            1,
        ),
    ])
    .await;
}
