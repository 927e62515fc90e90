//! A member's own data (issue 10, item 4): `/pulse my-data` and `/pulse forget-me`.
//!
//! Three members answer a confidential, an attributed and an anonymous survey of one program
//! (k = 3, so the totals are shown); Amy also shares a named win and opens App Home, and the
//! digest is posted. Then Amy asks for her data, and asks to be forgotten.

use crate::helpers::*;
use crate::wins::{command, dump, OWNER, SPONSORS};
use chrono::Duration;
use secrecy::SecretString;
use serde_json::{json, Value};
use slack_emulator::EmulatedUser;
use std::collections::BTreeMap;

const AMY: &str = "U0AMY";
const BEN: &str = "U0BEN";
const CAT: &str = "U0CAT";
/// What Slack tells pulseloop about Amy (stored: the status).
const AMY_NAME: &str = "amy.zqname";
const AMY_REAL_NAME: &str = "Amy Zqreal";
const AMY_STATUS: &str = "zqstatus of amy";

fn program() -> String {
    let mut toml = format!(
        "id = \"pilot\"\nname = \"Pilot Program\"\ntimezone = \"Europe/Berlin\"\nstart_date = \"2027-01-04\"\n\
         anonymity_threshold = 3\ncomment_threshold = 3\nsponsor_channels = [\"{SPONSORS}\"]\nowners = [\"{OWNER}\"]\n"
    );
    for m in [AMY, BEN, CAT] {
        toml.push_str(&format!(
            "[[members]]\nslack_id = \"{m}\"\nrole = \"participant\"\ntimezone = \"Europe/Berlin\"\n"
        ));
    }
    for (id, mode) in [
        ("conf", "confidential"),
        ("attr", "attributed"),
        ("anon", "anonymous"),
    ] {
        toml.push_str(&format!(
            "[[surveys]]\nid = \"{id}\"\nname = \"Survey {id}\"\ncadence = \"0 10 * * MON\"\nwindow_hours = 48\nanonymity = \"{mode}\"\n\
             [[surveys.questions]]\nkey = \"{id}_value\"\nkind = \"scale\"\nprompt = \"How valuable was coaching ({id})?\"\n\
             [[surveys.questions]]\nkey = \"{id}_comment\"\nkind = \"text\"\nprompt = \"Anything else ({id})?\"\nrequired = false\n\
             [[surveys.questions]]\nkey = \"{id}_win\"\nkind = \"win\"\nprompt = \"A small win ({id})?\"\nrequired = false\n"
        ));
    }
    toml
}

/// A member's nickname in the words they type (never their id: an anonymous comment that
/// spelled out its author's id would name them whatever pulseloop does).
fn nick(user: &str) -> &'static str {
    match user {
        AMY => "amyw",
        BEN => "benw",
        _ => "catw",
    }
}

/// The words a member typed into `survey` (distinct per member and survey).
fn words(user: &str, survey: &str) -> String {
    format!("zq{}-{survey}-comment words", nick(user))
}

fn win_words(user: &str, survey: &str) -> String {
    format!("zq{}-{survey}-win words", nick(user))
}

async fn submit(app: &TestApp, user: &str, survey: &str, value: u8) {
    let delivery = rows(
        &app.db.url,
        &format!(
            "SELECT d.id FROM deliveries d JOIN members m ON m.id = d.member_id \
             JOIN rounds r ON r.id = d.round_id \
             WHERE m.slack_user_id = '{user}' AND r.survey_id = '{survey}'"
        ),
    )
    .await[0]["id"]
        .as_i64()
        .unwrap();
    let mut values = json!({
        format!("q:{survey}_value"): { "v": { "type": "radio_buttons", "selected_option": { "value": value.to_string() } } },
        format!("q:{survey}_comment"): { "v": { "type": "plain_text_input", "value": words(user, survey) } },
        format!("q:{survey}_win"): { "v": { "type": "plain_text_input", "value": win_words(user, survey) } },
        format!("consent:{survey}_win"): { "v": { "type": "radio_buttons", "selected_option": { "value": "named" } } },
    });
    if user == AMY && survey == "anon" {
        // Amy lets a program owner reply to her anonymous comment (a sealed mailbox names her).
        values[format!("reply:{survey}_comment")] =
            json!({ "v": { "type": "checkboxes", "selected_options": [{ "value": "allow" }] } });
    }
    let view = json!({
        "type": "modal",
        "callback_id": pulseloop::pulse::render::MODAL_CALLBACK,
        "private_metadata": json!({ "delivery": delivery }).to_string(),
        "state": { "values": values },
    });
    let payload = app.peer.view_submission(user, &view);
    assert_eq!(app.send_interaction(&payload).await.status(), 200);
}

/// The loop up to a posted digest: every member answered every survey, the rounds closed
/// (the anonymous one sealed), Amy shared a named win and opened App Home.
async fn answered_program() -> TestApp {
    let emulator = start_emulator().await;
    for id in [OWNER, "U0FAN", BEN, CAT] {
        emulator.add_user(EmulatedUser::new(id, "Europe/Berlin"));
    }
    let mut amy = EmulatedUser::new(AMY, "Europe/Berlin").named(AMY_REAL_NAME);
    amy.name = AMY_NAME.to_string();
    amy.status_text = AMY_STATUS.to_string();
    emulator.add_user(amy);
    let app = TestAppBuilder::default()
        .emulator(emulator)
        .now(monday_ten_berlin())
        .program("pilot.toml", &program())
        .settings(|s| {
            s.admin.encryption_key = Some(SecretString::from("mydata-test-secret-0123456789abcdef"))
        })
        .spawn()
        .await;
    app.emulator.add_channel(SPONSORS, "sponsors", true);
    app.send_monday_pulse().await;
    settle(&app).await;
    assert_eq!(app.dm_count(AMY), 3, "one DM per survey");
    for (user, base) in [(AMY, 4), (BEN, 2), (CAT, 5)] {
        for (i, survey) in ["conf", "attr", "anon"].into_iter().enumerate() {
            submit(&app, user, survey, base - (i as u8 % 2)).await;
        }
    }
    settle(&app).await;
    // A win shared with her name, and her Home tab (which lists her own answers).
    let reply = command(&app, AMY, "win zqamy shipped the pilot plan").await;
    let block = reply["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| {
            b["elements"][0]["action_id"]
                .as_str()
                .is_some_and(|a| a.starts_with("win_consent:"))
        })
        .expect("consent buttons")
        .clone();
    let named = block["elements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action_id"] == "win_consent:named")
        .unwrap();
    let click = app.peer.block_actions(
        AMY,
        &app.emulator.dm_channel_for(AMY),
        "1700000000.000100",
        "win_consent:named",
        block["block_id"].as_str().unwrap(),
        named["value"].as_str().unwrap(),
    );
    assert_eq!(app.send_interaction(&click).await.status(), 200);
    let home = app
        .peer
        .event_callback("Ev0AMYHOME", app.peer.app_home_opened(AMY));
    assert_eq!(app.send_event(&home).await.status(), 200);
    settle(&app).await;
    // The windows end: the anonymous round is sealed, wins are shouted out.
    app.advance(Duration::hours(49));
    assert_eq!(app.tick().await.sealed, 1);
    settle(&app).await;
    let sent = app.admin_post("/api/v1/programs/pilot/digest/send").await;
    assert_eq!(sent.status(), 202, "{}", sent.text().await.unwrap());
    settle(&app).await;
    app
}

/// Sends what is due, letting the clock move on a few seconds at a time (Slack takes about
/// one post per second per channel, so three DMs to one member go out over three seconds).
async fn settle(app: &TestApp) {
    for _ in 0..6 {
        app.tick().await;
        app.drain_outbox().await;
        app.advance(Duration::seconds(2));
    }
}

/// The file Slack received for `user`'s DM, parsed.
fn file_for(app: &TestApp, user: &str) -> (String, Value) {
    let dm = app.emulator.dm_channel_for(user);
    let files: Vec<_> = app
        .emulator
        .files()
        .into_iter()
        .filter(|f| f.filename == "pulseloop-my-data.json" && f.shared_to.contains(&dm))
        .collect();
    assert_eq!(files.len(), 1, "one file shared into {user}'s DM");
    let text = String::from_utf8(files[0].bytes.clone()).unwrap();
    let doc = serde_json::from_str(&text).expect("the file is JSON");
    (text, doc)
}

/// The aggregates of the digest preview (participation, numbers, trends), as JSON text.
async fn aggregates(app: &TestApp) -> String {
    let r = app.admin_get("/api/v1/programs/pilot/digest/preview").await;
    assert_eq!(r.status(), 200);
    let d: Value = r.json().await.unwrap();
    let picked: BTreeMap<&str, &Value> =
        ["participation", "metrics", "enps", "folded", "trends", "k"]
            .into_iter()
            .map(|k| (k, &d[k]))
            .collect();
    serde_json::to_string(&picked).unwrap()
}

async fn audit(app: &TestApp) -> Vec<BTreeMap<String, Value>> {
    rows(
        &app.db.url,
        "SELECT actor, action, subject, detail FROM audit_log ORDER BY id",
    )
    .await
}

#[tokio::test]
async fn my_data_holds_the_askers_own_answers_and_settings_and_nothing_of_others_or_anonymous() {
    let app = answered_program().await;
    let reply = command(&app, AMY, "my-data").await;
    assert_eq!(reply["response_type"], "ephemeral", "{reply}");
    assert_eq!(
        reply["text"],
        "I'm preparing your data; it will arrive as a DM."
    );
    settle(&app).await;
    let (text, doc) = file_for(&app, AMY);
    let shared = app.emulator.calls_to("files.completeUploadExternal");
    assert_eq!(
        shared.last().unwrap().params["channel_id"],
        app.emulator.dm_channel_for(AMY),
        "shared into her DM with the bot, by its D… id"
    );

    // Her confidential and attributed answers, with the question's text.
    let answers = doc["answers"].as_array().unwrap();
    for survey in ["conf", "attr"] {
        let value = answers
            .iter()
            .find(|a| a["question_key"] == format!("{survey}_value"))
            .unwrap_or_else(|| panic!("{survey} value in {doc:#}"));
        assert_eq!(
            value["question"],
            format!("How valuable was coaching ({survey})?")
        );
        assert!(value["value"].is_number());
        assert!(text.contains(&words(AMY, survey)), "her {survey} comment");
        assert!(text.contains(&win_words(AMY, survey)), "her {survey} win");
    }
    // Nothing of the anonymous survey's answers, and the file says why.
    assert!(
        !text.contains(&words(AMY, "anon")),
        "an anonymous comment leaked"
    );
    assert!(!text.contains("anon_value"), "an anonymous answer leaked");
    assert!(answers.iter().all(|a| a["survey"] != "anon"));
    assert!(
        doc["notes"][0].as_str().unwrap().contains("anonymous"),
        "{}",
        doc["notes"]
    );
    let anon_pulse = doc["pulses_sent_to_you"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["survey"] == "anon")
        .expect("the anonymous pulse was sent to her");
    assert!(anon_pulse.get("state").is_none() && anon_pulse.get("answered_at").is_none());
    // Settings, wins and the audit entries naming her.
    let membership = &doc["memberships"][0];
    assert_eq!(membership["program"], "pilot");
    assert_eq!(membership["role"], "participant");
    assert_eq!(membership["paused"], false);
    assert_eq!(membership["timezone_from_slack"], "Europe/Berlin");
    assert_eq!(membership["slack_status"]["text"], AMY_STATUS);
    assert!(text.contains("zqamy shipped the pilot plan"));
    assert!(doc["audit_entries_naming_you"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["subject"] == AMY));
    // Nobody else's data.
    for other in [BEN, CAT] {
        assert!(!text.contains(other), "{other} named in Amy's file");
        for survey in ["conf", "attr", "anon"] {
            assert!(!text.contains(&words(other, survey)));
            assert!(!text.contains(&win_words(other, survey)));
        }
    }
    // Audited with her as the actor, never the content.
    let entries = audit(&app).await;
    let entry = entries
        .iter()
        .find(|e| e["action"] == "member.my_data")
        .expect("my-data is audited");
    assert_eq!(entry["actor"], format!("member:{AMY}"));
    assert!(!serde_json::to_string(entry).unwrap().contains("zq"));
}

#[tokio::test]
async fn forget_me_asks_first_then_no_row_names_the_member_and_the_totals_are_unchanged() {
    let app = answered_program().await;
    // A copy of her data sits in the outbox until it is pruned: forget-me takes it too.
    command(&app, AMY, "my-data").await;
    settle(&app).await;
    let before = aggregates(&app).await;
    assert!(
        before.contains("\"n\":3") && before.contains("conf_value"),
        "the totals are shown before: {before}"
    );
    let amy_words: Vec<String> = ["conf", "attr"]
        .iter()
        .flat_map(|s| [words(AMY, s), win_words(AMY, s)])
        .chain(["zqamy shipped the pilot plan".to_string()])
        .collect();
    assert!(
        serde_json::to_string(&dump(&app.db.url).await)
            .unwrap()
            .contains(&words(AMY, "attr")),
        "her attributed comment is stored before"
    );

    // Asking is not erasing: only an audit entry is added.
    let dump_before = without_audit(dump(&app.db.url).await);
    let question = command(&app, AMY, "forget-me").await;
    let button = &question["blocks"][1]["elements"][0];
    assert_eq!(button["style"], "danger");
    assert_eq!(button["action_id"], "forget_me_confirm");
    assert!(
        button["confirm"]["title"].is_object(),
        "Slack's confirm dialog"
    );
    assert_eq!(without_audit(dump(&app.db.url).await), dump_before);
    assert!(audit(&app)
        .await
        .iter()
        .any(|e| e["action"] == "member.forget_me_asked" && e["actor"] == format!("member:{AMY}")));

    app.assert_count_because(
        "SELECT COUNT(*) FROM reply_mailboxes",
        1,
        "Amy allowed replies to her anonymous comment",
    )
    .await;

    // The confirmed click.
    let click = app.peer.block_actions(
        AMY,
        &app.emulator.dm_channel_for(AMY),
        "1700000000.000200",
        "forget_me_confirm",
        "forget",
        "confirm",
    );
    assert_eq!(app.send_interaction(&click).await.status(), 200);
    settle(&app).await;

    // No row, no column of any table names her.
    let everything = serde_json::to_string(&dump(&app.db.url).await).unwrap();
    for needle in [AMY, AMY_NAME, AMY_REAL_NAME, AMY_STATUS]
        .into_iter()
        .map(str::to_string)
        .chain(amy_words.iter().cloned())
    {
        if everything.to_lowercase().contains(&needle.to_lowercase()) {
            let d = dump(&app.db.url).await;
            let hits: Vec<String> = d
                .iter()
                .flat_map(|(t, rows)| rows.iter().map(move |r| (t, r)))
                .map(|(t, r)| format!("{t}: {}", serde_json::to_string(r).unwrap()))
                .filter(|r| r.to_lowercase().contains(&needle.to_lowercase()))
                .collect();
            panic!("'{needle}' is still stored: {hits:#?}");
        }
    }
    // Not in the SQLite files either (deleted rows are zeroed, the WAL truncated).
    if !app.db.url.starts_with("postgres") {
        let path = app.db.url.trim_start_matches("sqlite://").to_string();
        for file in [path.clone(), format!("{path}-wal")] {
            let Ok(bytes) = std::fs::read(&file) else {
                continue;
            };
            let hay = String::from_utf8_lossy(&bytes);
            for needle in std::iter::once(AMY.to_string()).chain(amy_words.iter().cloned()) {
                assert!(!hay.contains(&needle), "'{needle}' lingers in {file}");
            }
        }
    }
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM reply_mailboxes", 0),
        (
            "SELECT COUNT(*) FROM responses WHERE reply_handle IS NOT NULL",
            0,
        ),
    ])
    .await;
    // Anonymous answers stay (unlinkable), and the totals did not move.
    assert!(
        everything.contains(&words(AMY, "anon")),
        "the anonymous comment stays"
    );
    assert!(
        everything.contains(&words(BEN, "attr")),
        "others' answers stay"
    );
    assert_eq!(aggregates(&app).await, before);

    // Audited without naming her; she is not added back by the next sync.
    let entries = audit(&app).await;
    let erased = entries
        .iter()
        .find(|e| e["action"] == "member.erased")
        .expect("the erasure is audited");
    assert_eq!(erased["actor"], "member:forgotten");
    assert_eq!(
        serde_json::from_str::<Value>(erased["detail"].as_str().unwrap()).unwrap()["residue"],
        json!([])
    );
    pulseloop::pulse::sync::apply_config(&app.state.pulses)
        .await
        .expect("reload");
    app.assert_count(
        "SELECT COUNT(*) FROM members WHERE slack_user_id = 'U0AMY'",
        0,
    )
    .await;
    // She gets no more pulses; the others do.
    let before_dms = app.dm_count(AMY);
    app.run_at(monday_ten_berlin() + Duration::weeks(1)).await;
    settle(&app).await;
    assert_eq!(app.dm_count(AMY), before_dms);
    assert_eq!(app.dm_count(BEN), 6);
    // And my-data now finds nothing of hers.
    command(&app, AMY, "my-data").await;
    settle(&app).await;
    let dm = app.emulator.dm_channel_for(AMY);
    let latest = app
        .emulator
        .files()
        .into_iter()
        .rfind(|f| f.shared_to.contains(&dm))
        .unwrap();
    let doc: Value = serde_json::from_slice(&latest.bytes).unwrap();
    assert_eq!(doc["memberships"], json!([]));
    assert_eq!(doc["answers"], json!([]));
}

#[tokio::test]
async fn an_owner_named_in_the_configuration_is_told_to_ask_an_admin_and_nothing_is_erased() {
    let app = answered_program().await;
    let before = without_audit(dump(&app.db.url).await);
    let reply = command(&app, OWNER, "forget-me").await;
    assert!(
        reply["text"].as_str().unwrap().contains("`pilot`"),
        "{reply}"
    );
    assert!(reply.get("blocks").is_none_or(Value::is_null), "no button");
    let click = app.peer.block_actions(
        OWNER,
        &app.emulator.dm_channel_for(OWNER),
        "1700000000.000300",
        "forget_me_confirm",
        "forget",
        "confirm",
    );
    assert_eq!(app.send_interaction(&click).await.status(), 200);
    assert_eq!(without_audit(dump(&app.db.url).await), before);
    assert!(audit(&app)
        .await
        .iter()
        .any(|e| e["action"] == "member.forget_me_refused"));
}

/// The dump without the audit log (checked on its own) and the replay guard's signatures
/// (every signed request adds one; an HMAC of the request, naming nobody).
fn without_audit(
    mut d: BTreeMap<String, Vec<BTreeMap<String, Value>>>,
) -> BTreeMap<String, Vec<BTreeMap<String, Value>>> {
    d.remove("audit_log");
    d.remove("seen_signatures");
    d
}
