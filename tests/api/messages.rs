//! The DM a busy leader trusts (issue 11, items 20–22): "done" after one click, one wording per
//! anonymity mode, `/pulse status` after a pause, opt-out confirmed in place, and DMs typed to
//! the bot. The exact texts are checked.

use crate::helpers::*;
use crate::pulses::{pilot_at, ONE_SCALE};
use chrono::Duration;
use pulseloop::domain::program::Anonymity;
use pulseloop::pulse::render;
use serde_json::{json, Value};
use slack_emulator::{EmulatedMessage, SignOptions};

/// Every `text` string in a Block Kit value, one per line (what a person reads, unescaped).
pub fn texts(v: &Value) -> String {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, x) in map {
                    match (k.as_str(), x) {
                        ("text", Value::String(s)) => out.push(s.clone()),
                        _ => walk(x, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out.join("\n")
}

/// The block_id, action_id and value of the first element whose action_id starts with `prefix`.
pub fn find_action(blocks: &Value, prefix: &str) -> (String, String, String) {
    for block in blocks.as_array().into_iter().flatten() {
        let mut elements: Vec<&Value> =
            block["elements"].as_array().into_iter().flatten().collect();
        elements.extend(block.get("accessory"));
        for e in elements {
            let id = e["action_id"].as_str().unwrap_or("");
            if id.starts_with(prefix) {
                return (
                    block["block_id"].as_str().unwrap_or("b").to_string(),
                    id.to_string(),
                    e["value"].as_str().unwrap_or("").to_string(),
                );
            }
        }
    }
    panic!("no action {prefix} in {blocks}");
}

/// `user` clicks the element `prefix` in `msg`, as Slack would send it.
pub async fn click_on(app: &TestApp, user: &str, msg: &EmulatedMessage, prefix: &str) {
    let (block_id, action_id, value) = find_action(&msg.blocks, prefix);
    let payload =
        app.peer
            .block_actions(user, &msg.channel, &msg.ts, &action_id, &block_id, &value);
    assert_eq!(app.send_interaction(&payload).await.status(), 200);
}

async fn command(app: &TestApp, user: &str, text: &str) -> Value {
    let r = app.send_command(user, text).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// What `user` typed in the bot's DM, delivered as a `message.im` event with this id.
fn typed(app: &TestApp, event_id: &str, user: &str, text: &str) -> Value {
    app.peer
        .event_callback(event_id, app.peer.message_im(user, text))
}

/// Sends what is due a little later (Slack takes one post per second in a conversation, and
/// the reply follows the pulse in the same DM).
pub async fn drain_later(app: &TestApp) {
    for _ in 0..3 {
        app.advance(Duration::seconds(2));
        app.drain_outbox().await;
    }
}

/// Top-level messages in `user`'s DM other than the pulse itself, oldest first.
fn replies(app: &TestApp, user: &str) -> Vec<String> {
    let pulse = app.first_dm(user).ts;
    app.emulator
        .dm_messages(user)
        .into_iter()
        .filter(|m| m.ts != pulse && m.thread_ts.is_none())
        .map(|m| m.text)
        .collect()
}

const SCALE_THEN_COMMENT: &str = r#"[[surveys.questions]]
key = "coaching_value"
kind = "scale"
prompt = "How valuable was coaching this week?"
low_label = "Not at all"
high_label = "Extremely"
[[surveys.questions]]
key = "comment"
kind = "text"
prompt = "Anything else?"
"#;

const TWO_REQUIRED_ONE_OPTIONAL: &str = r#"[[surveys.questions]]
key = "coaching_value"
kind = "scale"
prompt = "How valuable was coaching this week?"
[[surveys.questions]]
key = "program_enps"
kind = "enps"
prompt = "Would you recommend the program?"
[[surveys.questions]]
key = "comment"
kind = "text"
prompt = "Anything else?"
"#;

async fn pilot(questions: &str, extra: &str) -> TestApp {
    let app = pilot_at(&["U0AMY"], extra, questions, default_now()).await;
    app.send_monday_pulse().await;
    app
}

// ---------- item 20: done after one click, the rest optional, "Change answer" always ----------

#[tokio::test]
async fn one_click_on_a_one_click_pulse_says_done_and_offers_the_rest_as_optional() {
    let app = pilot(SCALE_THEN_COMMENT, "anonymity = \"confidential\"").await;
    let dm = app.first_dm("U0AMY");
    click_on(&app, "U0AMY", &dm, "answer:4").await;
    app.drain_outbox().await;
    let dm = app.first_dm("U0AMY");
    let shown = texts(&dm.blocks);
    assert!(
        shown.contains(
            ":white_check_mark: *Done.* Thank you, your answer is in.\n\
             • How valuable was coaching this week? — *4 out of 5*"
        ),
        "{shown}"
    );
    assert!(shown.contains("1 optional question is left, if you want to add something."));
    assert!(shown.contains("Add more (optional)"), "{shown}");
    assert!(shown.contains("Change answer"), "{shown}");
    assert!(
        !shown.contains("(1/2)") && !shown.contains("Answer the rest"),
        "{shown}"
    );
    assert!(!shown.contains("week?: "), "no clumsy punctuation: {shown}");
    assert!(
        dm.text
            .starts_with("Done: your answer is in for Pilot Program"),
        "{}",
        dm.text
    );
}

#[tokio::test]
async fn optional_questions_never_count_as_missing() {
    let app = pilot(TWO_REQUIRED_ONE_OPTIONAL, "anonymity = \"confidential\"").await;
    let dm = app.first_dm("U0AMY");
    click_on(&app, "U0AMY", &dm, "answer:3").await;
    app.drain_outbox().await;
    let shown = texts(&app.first_dm("U0AMY").blocks);
    // Two required, one answered: one left (the optional comment is not counted).
    assert!(
        shown.contains(
            ":hourglass_flowing_sand: *Saved, not finished yet:* 1 more question to answer."
        ),
        "{shown}"
    );
    assert!(shown.contains("Answer the last question"), "{shown}");
    assert!(shown.contains("Change answer"), "{shown}");
    assert!(!shown.contains("Done"), "{shown}");
}

// ---------- item 21: the program once, one wording per mode ----------

#[tokio::test]
async fn the_dm_names_the_program_once_and_makes_the_promise_of_its_mode() {
    for (mode, extra) in [
        (Anonymity::Anonymous, "anonymity = \"anonymous\""),
        (Anonymity::Confidential, "anonymity = \"confidential\""),
        (Anonymity::Attributed, "anonymity = \"attributed\""),
    ] {
        let app = pilot(ONE_SCALE, extra).await;
        let dm = app.first_dm("U0AMY");
        let shown = texts(&dm.blocks);
        assert_eq!(shown.matches("Pilot Program").count(), 1, "{shown}");
        assert!(
            shown.contains(&render::anonymity_statement(mode, 3)),
            "{shown}"
        );
        // The same words after an answer, and in the modal.
        click_on(&app, "U0AMY", &dm, "answer:2").await;
        app.drain_outbox().await;
        let answered = texts(&app.first_dm("U0AMY").blocks);
        assert_eq!(answered.matches("Pilot Program").count(), 1, "{answered}");
        assert!(answered.contains(&render::anonymity_statement(mode, 3)));
        click_on(&app, "U0AMY", &app.first_dm("U0AMY"), "open_modal").await;
        let modal = app.emulator.views().pop().expect("the modal opened").view;
        assert!(texts(&modal).contains(&render::anonymity_statement(mode, 3)));
    }
}

#[test]
fn the_wording_per_mode_is_the_one_in_the_readme() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert_eq!(
        render::anonymity_statement(Anonymity::Anonymous, 5),
        ":lock: Anonymous: when this pulse closes, your answers are unlinked from your name for good. \
         The program team sees totals of 5 or more people, and comments word for word but never with your name."
    );
    assert_eq!(
        render::anonymity_statement(Anonymity::Confidential, 5),
        ":closed_lock_with_key: Confidential: only you see your own answers. \
         The program team sees totals of 5 or more people, never your comments."
    );
    assert_eq!(
        render::anonymity_statement(Anonymity::Attributed, 5),
        ":bust_in_silhouette: Attributed: the program team sees your name next to your answers, \
         and your comments word for word."
    );
    for mode in [
        Anonymity::Anonymous,
        Anonymity::Confidential,
        Anonymity::Attributed,
    ] {
        let text = render::anonymity_statement(mode, 5);
        let words = text.split_once(' ').unwrap().1; // without the emoji shortcode
        assert!(readme.contains(words), "README lacks: {words}");
    }
}

// ---------- item 22: status and pause, names, opt-out in place, typed DMs ----------

#[tokio::test]
async fn status_honours_a_pause_and_says_its_end_as_the_confirmation_did() {
    let app = pilot_at(&["U0P1"], "", ONE_SCALE, sunday_noon()).await;
    let reply = command(&app, "U0P1", "pause until 2027-01-15").await;
    assert_eq!(
        reply["text"],
        ":double_vertical_bar: Paused until the end of Fri 15 Jan 2027. Pulses start again on their own after that; `/pulse resume` restarts them sooner."
    );
    let status = command(&app, "U0P1", "status").await;
    assert_eq!(
        status["text"],
        "• Nothing is waiting for you right now.\n\
         • Pilot Program: paused until the end of Fri 15 Jan 2027.\n\
         • Pilot Program: next pulse *Weekly pulse* on Mon 18 Jan, 10:00 CET."
    );

    app.advance(Duration::seconds(1)); // a new request, not a replay of the first
    let reply = command(&app, "U0P1", "pause").await;
    assert_eq!(
        reply["text"],
        ":double_vertical_bar: Paused. No pulses until you type `/pulse resume`."
    );
    app.advance(Duration::seconds(1));
    let status = command(&app, "U0P1", "status").await;
    assert_eq!(
        status["text"],
        "• Nothing is waiting for you right now.\n\
         • Pilot Program: paused, no pulses until you type `/pulse resume`."
    );
}

#[tokio::test]
async fn status_shows_names_never_ids() {
    let app = pilot_at(&["U0P1"], "", ONE_SCALE, sunday_noon()).await;
    app.run_at(monday_ten_berlin()).await;
    let status = command(&app, "U0P1", "status").await;
    assert_eq!(
        status["text"],
        "• Waiting for you: *Weekly pulse* (Pilot Program), closes Wed 6 Jan, 10:00 CET\n\
         • Pilot Program: next pulse *Weekly pulse* on Mon 11 Jan, 10:00 CET."
    );
}

#[tokio::test]
async fn yes_opt_me_out_confirms_in_place() {
    let app = pilot_at(&["U0P1"], "", ONE_SCALE, sunday_noon()).await;
    let question = command(&app, "U0P1", "optout").await;
    // Slack shows the command's reply as an ephemeral message where it was typed.
    let channel = app.emulator.dm_channel_for("U0P1");
    let posted: Value = reqwest::Client::new()
        .post(format!("{}/chat.postEphemeral", app.emulator.base_url()))
        .bearer_auth(BOT_TOKEN)
        .json(&json!({ "channel": channel, "user": "U0P1", "text": question["text"], "blocks": question["blocks"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ts = posted["message_ts"].as_str().expect("posted").to_string();
    let shown = app
        .emulator
        .messages()
        .into_iter()
        .find(|m| m.ts == ts)
        .unwrap();
    click_on(&app, "U0P1", &shown, "optout_confirm").await;

    let after = app
        .emulator
        .messages()
        .into_iter()
        .find(|m| m.ts == ts)
        .expect("the question is replaced, not deleted");
    assert_eq!(
        after.text,
        ":wave: You have opted out. No more pulses will come; `/pulse resume` brings you back."
    );
    assert!(
        after.blocks.is_null() || after.blocks == json!([]),
        "no button left to click: {}",
        after.blocks
    );
    assert_eq!(after.edits, 1);
    app.assert_count("SELECT COUNT(*) FROM members WHERE state = 'opted_out'", 1)
        .await;
}

#[tokio::test]
async fn a_number_typed_to_the_bot_answers_the_open_pulse_once() {
    let app = pilot(TWO_REQUIRED_ONE_OPTIONAL, "anonymity = \"anonymous\"").await;
    // Not on the scale of the current question: refused, nothing stored.
    let r = app.send_event(&typed(&app, "EvTYPED9", "U0AMY", "9")).await;
    assert_eq!(r.status(), 200);
    drain_later(&app).await;
    app.assert_count("SELECT COUNT(*) FROM responses", 0).await;
    assert_eq!(
        replies(&app, "U0AMY"),
        vec!["“9” is not an answer to “How valuable was coaching this week?”: type a number from 1 to 5, or use the buttons in the pulse above."]
    );

    // "4" answers the scale; Slack's retry of the same event does nothing more.
    let four = typed(&app, "EvTYPED4", "U0AMY", " 4 ");
    assert_eq!(app.send_event(&four).await.status(), 200);
    let retry = SignOptions {
        retry_num: Some(1),
        ..app.sign_now()
    };
    assert_eq!(app.send_event_with(&four, retry).await.status(), 200);
    drain_later(&app).await;
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM responses", 1),
        (
            "SELECT COUNT(*) FROM responses WHERE metric_key = 'coaching_value' AND value_number = 4",
            1,
        ),
        ("SELECT COUNT(*) FROM deliveries WHERE state = 'answered'", 1),
    ])
    .await;
    assert_eq!(
        replies(&app, "U0AMY")[1],
        ":white_check_mark: Taken: *4 out of 5* for “How valuable was coaching this week?”. The pulse above shows your answer."
    );
    assert_eq!(replies(&app, "U0AMY").len(), 2, "the retry replied nothing");

    // The next number answers the next required question: then the pulse is done.
    app.send_event(&typed(&app, "EvTYPED10", "U0AMY", "10"))
        .await;
    drain_later(&app).await;
    assert_eq!(
        replies(&app, "U0AMY")[2],
        ":white_check_mark: Taken: *10 out of 10* for “Would you recommend the program?”. The pulse above shows your answer."
    );
    let shown = texts(&app.first_dm("U0AMY").blocks);
    assert!(shown.contains("*Done.*"), "{shown}");

    // Now the current question is the optional comment: a number answers nothing, and the
    // help says so. That reply too tells something about what was answered.
    app.send_event(&typed(&app, "EvTYPED5", "U0AMY", "5")).await;
    drain_later(&app).await;
    assert_eq!(replies(&app, "U0AMY")[3], render::dm_help(true));
    app.assert_count("SELECT COUNT(*) FROM responses", 2).await;

    // What the replies said is an answer update: the seal deletes every one.
    app.run_at(monday_ten_berlin() + Duration::hours(49)).await;
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM rounds WHERE sealed_at IS NOT NULL", 1),
        (
            "SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE '%:typed:%'",
            0,
        ),
        (
            "SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE 'im:%'",
            0,
        ),
    ])
    .await;
}

#[tokio::test]
async fn anything_else_typed_to_the_bot_gets_help() {
    let app = pilot(ONE_SCALE, "").await;
    app.send_event(&typed(&app, "EvHELLO", "U0AMY", "hello, what is this?"))
        .await;
    drain_later(&app).await;
    assert_eq!(replies(&app, "U0AMY"), vec![render::dm_help(false)],);
    let help = render::dm_help(false);
    assert!(
        help.starts_with("Hi! I only understand a few things here.\n• Type a number"),
        "{help}"
    );
    assert!(help.contains("`/pulse status`"));
    // A stranger's DM gets the same help, and the bot never answers itself.
    app.add_user("U0STRANGER", "Europe/Berlin");
    app.send_event(&typed(&app, "EvSTRANGER", "U0STRANGER", "4"))
        .await;
    let mut own = app.peer.message_im("U0AMY", "echo");
    own["bot_id"] = json!("B0BOT");
    app.send_event(&app.peer.event_callback("EvECHO", own))
        .await;
    drain_later(&app).await;
    assert_eq!(
        replies(&app, "U0AMY").len(),
        1,
        "no reply to the bot's own message"
    );
    let stranger: Vec<String> = app
        .emulator
        .dm_messages("U0STRANGER")
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(stranger, vec![render::dm_help(true)]);
}

const SCALE_AND_WIN: &str = r#"[[surveys.questions]]
key = "coaching_value"
kind = "scale"
prompt = "How valuable was coaching this week?"
[[surveys.questions]]
key = "small_win"
kind = "win"
prompt = "Share a small win (optional)"
"#;

#[tokio::test]
async fn the_dm_repeats_how_a_win_will_be_shared() {
    let app = pilot(SCALE_AND_WIN, "anonymity = \"confidential\"").await;
    click_on(&app, "U0AMY", &app.first_dm("U0AMY"), "open_modal").await;
    let mut view = app.emulator.views().pop().expect("the modal opened").view;
    view["state"] = json!({ "values": {
        "q:coaching_value": { "value": { "type": "radio_buttons", "selected_option": { "value": "4" } } },
        "q:small_win": { "value": { "type": "plain_text_input", "value": "Closed the hiring loop" } },
        "consent:small_win": { "value": { "type": "radio_buttons", "selected_option": { "value": "anonymous" } } },
    } });
    let submitted = app.peer.view_submission("U0AMY", &view);
    assert_eq!(app.send_interaction(&submitted).await.status(), 200);
    app.drain_outbox().await;
    let shown = texts(&app.first_dm("U0AMY").blocks);
    assert!(
        shown.contains(
            "• Share a small win (optional) — *“Closed the hiring loop”*\n\
             :tada: Your win will be shared with the program team without your name."
        ),
        "{shown}"
    );
    assert_eq!(
        render::sharing_sentence(pulseloop::domain::state::Consent::Named),
        ":tada: Your win will be shared with the program team with your name on it."
    );
    assert_eq!(
        render::sharing_sentence(pulseloop::domain::state::Consent::Private),
        ":lock: Your win stays private: nobody else sees it."
    );
}
