//! Small wins (issue 8, item 3): `/pulse win`, the author's consent, the shoutouts, the
//! "Celebrate as a small win" shortcut, and survey wins shouted out at the close.

use crate::helpers::*;
use chrono::Duration;
use secrecy::SecretString;
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const SPONSORS: &str = "C0SPONSOR";
pub const OWNER: &str = "U0OWNER";

/// The pilot program with a sponsor channel and an owner; every member a participant in
/// Berlin; one weekly survey (`anonymity`, `questions`) at 10:00 on Mondays, open 48 hours.
pub fn loop_program(members: &[&str], anonymity: &str, questions: &str) -> String {
    let mut toml = format!(
        "id = \"pilot\"\nname = \"Pilot Program\"\ntimezone = \"Europe/Berlin\"\nstart_date = \"2027-01-04\"\n\
         anonymity_threshold = 3\ncomment_threshold = 3\nsponsor_channels = [\"{SPONSORS}\"]\nowners = [\"{OWNER}\"]\n"
    );
    for m in members {
        toml.push_str(&format!(
            "[[members]]\nslack_id = \"{m}\"\nrole = \"participant\"\ntimezone = \"Europe/Berlin\"\n"
        ));
    }
    toml.push_str(&format!(
        "[[surveys]]\nid = \"weekly\"\nname = \"Weekly pulse\"\ncadence = \"0 10 * * MON\"\nwindow_hours = 48\nanonymity = \"{anonymity}\"\n{questions}"
    ));
    toml
}

pub const SCALE_COMMENT_WIN: &str = r#"[[surveys.questions]]
key = "value"
kind = "scale"
prompt = "How valuable was coaching this week?"
[[surveys.questions]]
key = "comment"
kind = "text"
prompt = "Anything else?"
required = false
[[surveys.questions]]
key = "win"
kind = "win"
prompt = "A small win?"
required = false
"#;

/// The app for `members` (and the owner), with the sponsor channel and the relay's secret.
pub async fn loop_app(members: &[&str], anonymity: &str, questions: &str) -> TestApp {
    let mut builder = TestAppBuilder::default()
        .user(OWNER, "Europe/Berlin")
        .user("U0FAN", "Europe/Berlin")
        .program("pilot.toml", &loop_program(members, anonymity, questions))
        .settings(|s| {
            s.admin.encryption_key = Some(SecretString::from("relay-test-secret-0123456789abcdef"))
        });
    for m in members {
        builder = builder.user(m, "Europe/Berlin");
    }
    let app = builder.spawn().await;
    app.emulator.add_channel(SPONSORS, "sponsors", true);
    app
}

/// `/pulse <text>` typed by `user`, as Slack posts it (with a working response_url); the
/// JSON the app answered.
pub async fn command(app: &TestApp, user: &str, text: &str) -> Value {
    let form = app
        .peer
        .slash_command(user, &app.emulator.dm_channel_for(user), text);
    let body = serde_urlencoded::to_string(form).unwrap();
    let r = app
        .post_signed("/slack/commands", FORM, body.as_bytes(), app.sign_now())
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// The consent buttons in `blocks`: action_id → (block_id, value).
fn consent_buttons(blocks: &Value) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for block in blocks.as_array().into_iter().flatten() {
        for e in block["elements"].as_array().into_iter().flatten() {
            if let Some(id) = e["action_id"]
                .as_str()
                .filter(|a| a.starts_with("win_consent:"))
            {
                out.insert(
                    id.to_string(),
                    (
                        block["block_id"].as_str().unwrap().to_string(),
                        e["value"].as_str().unwrap().to_string(),
                    ),
                );
            }
        }
    }
    out
}

/// `user` clicks `action_id` among `blocks`, in the message at (`channel`, `ts`).
async fn click_consent(
    app: &TestApp,
    user: &str,
    channel: &str,
    ts: &str,
    blocks: &Value,
    action_id: &str,
) {
    let buttons = consent_buttons(blocks);
    let (block_id, value) = buttons
        .get(action_id)
        .unwrap_or_else(|| panic!("no {action_id} in {blocks}"));
    let click = app
        .peer
        .block_actions(user, channel, ts, action_id, block_id, value);
    assert_eq!(app.send_interaction(&click).await.status(), 200);
}

/// `/pulse win <text>`, then a click on `choice` in the ephemeral reply.
async fn share(app: &TestApp, user: &str, text: &str, choice: &str) -> Value {
    let reply = command(app, user, &format!("win {text}")).await;
    let channel = app.emulator.dm_channel_for(user);
    click_consent(
        app,
        user,
        &channel,
        "1700000000.000100",
        &reply["blocks"],
        &format!("win_consent:{choice}"),
    )
    .await;
    app.drain_outbox().await;
    reply
}

fn sponsor_posts(app: &TestApp) -> Vec<String> {
    app.emulator
        .messages()
        .into_iter()
        .filter(|m| m.channel == SPONSORS)
        .map(|m| m.text)
        .collect()
}

/// Every table (the adversary's copy of the database), as text per table.
pub async fn dump(url: &str) -> BTreeMap<String, Vec<BTreeMap<String, Value>>> {
    let tables_sql = if url.starts_with("postgres") {
        "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
    } else {
        "SELECT name FROM sqlite_master WHERE type = 'table'"
    };
    let mut out = BTreeMap::new();
    for t in rows(url, tables_sql).await {
        let name = t["name"].as_str().unwrap().to_string();
        if name == "_sqlx_migrations" {
            continue;
        }
        out.insert(
            name.clone(),
            rows(url, &format!("SELECT * FROM {name}")).await,
        );
    }
    out
}

/// How many rows of each table mention `needle` anywhere (tables with none left out).
pub async fn rows_mentioning(url: &str, needle: &str) -> BTreeMap<String, usize> {
    dump(url)
        .await
        .into_iter()
        .map(|(name, data)| {
            let n = data
                .iter()
                .filter(|row| serde_json::to_string(row).unwrap().contains(needle))
                .count();
            (name, n)
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[tokio::test]
async fn a_named_win_asks_first_then_mentions_its_author_in_the_sponsor_channel_once() {
    let app = loop_app(&["U0AMY", "U0BEN", "U0CAT"], "anonymous", SCALE_COMMENT_WIN).await;
    let reply = command(&app, "U0AMY", "win Closed the Q3 plan with my team").await;
    assert_eq!(reply["response_type"], "ephemeral");
    let buttons = consent_buttons(&reply["blocks"]);
    assert_eq!(
        buttons.keys().cloned().collect::<Vec<_>>(),
        [
            "win_consent:anonymous",
            "win_consent:named",
            "win_consent:private"
        ],
        "the author chooses; no decline for their own win"
    );
    // Nothing is stored as a win, nor queued, before the choice.
    app.drain_outbox().await;
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM wins", 0),
        ("SELECT COUNT(*) FROM win_requests", 1),
    ])
    .await;
    assert!(sponsor_posts(&app).is_empty());

    let channel = app.emulator.dm_channel_for("U0AMY");
    click_consent(
        &app,
        "U0AMY",
        &channel,
        "1700000000.000100",
        &reply["blocks"],
        "win_consent:named",
    )
    .await;
    // A double click and a click on another choice afterwards change nothing.
    click_consent(
        &app,
        "U0AMY",
        &channel,
        "1700000000.000100",
        &reply["blocks"],
        "win_consent:named",
    )
    .await;
    click_consent(
        &app,
        "U0AMY",
        &channel,
        "1700000000.000100",
        &reply["blocks"],
        "win_consent:anonymous",
    )
    .await;
    app.drain_outbox().await;

    let posts = sponsor_posts(&app);
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(
        posts[0].contains("<@U0AMY>") && posts[0].contains("Closed the Q3 plan with my team"),
        "{}",
        posts[0]
    );
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM wins WHERE consent = 'named' AND author_member_id IS NOT NULL AND shoutout_channel = 'C0SPONSOR'", 1),
        ("SELECT COUNT(*) FROM wins", 1),
        ("SELECT COUNT(*) FROM win_requests", 0),
    ])
    .await;
}

#[tokio::test]
async fn an_anonymous_win_is_posted_with_no_name_and_nothing_stored_ties_it_to_its_author() {
    let app = loop_app(&["U0AMY", "U0BEN", "U0CAT"], "anonymous", SCALE_COMMENT_WIN).await;
    let member_id = rows(
        &app.db.url,
        "SELECT id FROM members WHERE slack_user_id = 'U0AMY'",
    )
    .await[0]["id"]
        .clone();
    let before = rows_mentioning(&app.db.url, "U0AMY").await;
    share(
        &app,
        "U0AMY",
        "Our <!channel> retro finally worked",
        "anonymous",
    )
    .await;

    let posts = sponsor_posts(&app);
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(
        !posts[0].contains("U0AMY") && !posts[0].contains("<@"),
        "{}",
        posts[0]
    );
    assert!(posts[0].contains("shared anonymously"), "{}", posts[0]);
    assert!(
        posts[0].contains("&lt;!channel&gt;"),
        "user text cannot ping the channel: {}",
        posts[0]
    );
    app.assert_count(
        "SELECT COUNT(*) FROM wins WHERE consent = 'anonymous' AND author_member_id IS NULL",
        1,
    )
    .await;
    // The adversary with a copy of the database: no row names the author that did not
    // before the win (their membership and its audit entry), and the win has no author.
    assert_eq!(rows_mentioning(&app.db.url, "U0AMY").await, before);
    let wins = rows(&app.db.url, "SELECT * FROM wins").await;
    assert!(wins[0]["author_member_id"].is_null(), "{wins:?}");
    assert_ne!(wins[0]["source_key"], json!(format!("member:{member_id}")));
    // The confirmation went straight to the click's response_url, not into a stored row.
    app.assert_count(
        "SELECT COUNT(*) FROM outbox WHERE channel_key <> 'C0SPONSOR'",
        0,
    )
    .await;
}

#[tokio::test]
async fn a_private_win_is_stored_and_posted_nowhere() {
    let app = loop_app(&["U0AMY", "U0BEN", "U0CAT"], "anonymous", SCALE_COMMENT_WIN).await;
    share(&app, "U0AMY", "Said no to a meeting", "private").await;
    assert!(sponsor_posts(&app).is_empty());
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM wins WHERE consent = 'private' AND shoutout_channel IS NULL AND shoutout_queued_at IS NULL", 1),
        ("SELECT COUNT(*) FROM outbox", 0),
    ])
    .await;
}

#[tokio::test]
async fn an_empty_or_overlong_win_gets_a_clear_error_and_nothing_is_stored() {
    let app = loop_app(&["U0AMY", "U0BEN", "U0CAT"], "anonymous", SCALE_COMMENT_WIN).await;
    let empty = command(&app, "U0AMY", "win   ").await;
    assert_eq!(empty["response_type"], "ephemeral");
    assert!(
        empty["text"]
            .as_str()
            .unwrap()
            .contains("A win needs a few words"),
        "{empty}"
    );
    let long = "x".repeat(1001);
    let over = command(&app, "U0AMY", &format!("win {long}")).await;
    assert!(
        over["text"]
            .as_str()
            .unwrap()
            .contains("1001 characters long; please keep it to 1000"),
        "{over}"
    );
    let at_limit = command(&app, "U0AMY", &format!("win {}", "y".repeat(1000))).await;
    assert_eq!(
        consent_buttons(&at_limit["blocks"]).len(),
        3,
        "1000 characters are fine"
    );
    let stranger = command(&app, "U0FAN", "win I am not in the program").await;
    assert!(
        stranger["text"].as_str().unwrap().contains("not a member"),
        "{stranger}"
    );
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM wins", 0),
        ("SELECT COUNT(*) FROM win_requests", 1),
    ])
    .await;
}

/// The `message_action` Slack sends when `invoker` uses the shortcut on `author`'s message.
fn shortcut(app: &TestApp, invoker: &str, author: Option<&str>, text: &str) -> Value {
    // A response_url the emulator honours, issued for the invoker in #general.
    let form = app.peer.slash_command(invoker, "C0GENERAL", "");
    let response_url = form
        .iter()
        .find(|(k, _)| k == "response_url")
        .unwrap()
        .1
        .clone();
    let mut message = json!({ "type": "message", "ts": "1789095600.000200", "text": text });
    if let Some(author) = author {
        message["user"] = json!(author);
    } else {
        message["bot_id"] = json!("B0OTHER");
    }
    json!({
        "type": "message_action", "callback_id": "celebrate_win",
        "trigger_id": app.emulator.issue_trigger_id_for(invoker),
        "response_url": response_url, "message_ts": "1789095600.000200",
        "team": { "id": "T0TEST", "domain": "pilot" },
        "user": { "id": invoker, "name": "fan" },
        "channel": { "id": "C0GENERAL", "name": "general" },
        "message": message,
    })
}

fn ephemeral_for(app: &TestApp, user: &str) -> Vec<String> {
    app.emulator
        .messages()
        .into_iter()
        .filter(|m| m.ephemeral_for.as_deref() == Some(user))
        .map(|m| m.text)
        .collect()
}

#[tokio::test]
async fn the_shortcut_asks_the_author_by_dm_and_posts_nothing_before_their_consent() {
    let app = loop_app(&["U0AMY", "U0BEN", "U0CAT"], "anonymous", SCALE_COMMENT_WIN).await;
    let before = rows_mentioning(&app.db.url, "U0AMY").await;
    let r = app
        .send_interaction(&shortcut(
            &app,
            "U0FAN",
            Some("U0AMY"),
            "We shipped the onboarding guide!",
        ))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        ephemeral_for(&app, "U0FAN"),
        ["I asked <@U0AMY> for consent by DM. Nothing is posted unless they agree."]
    );
    app.drain_outbox().await;
    assert!(sponsor_posts(&app).is_empty(), "nothing before consent");
    let ask = app.first_dm("U0AMY");
    assert!(
        ask.blocks
            .to_string()
            .contains("<@U0FAN> would like to celebrate your message"),
        "{}",
        ask.blocks
    );
    assert_eq!(
        consent_buttons(&ask.blocks).len(),
        4,
        "named, anonymous, private, decline"
    );

    // The person who used the shortcut cannot answer for the author.
    click_consent(
        &app,
        "U0FAN",
        &ask.channel,
        &ask.ts,
        &ask.blocks,
        "win_consent:named",
    )
    .await;
    app.drain_outbox().await;
    assert!(sponsor_posts(&app).is_empty());
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM wins", 0),
        ("SELECT COUNT(*) FROM win_requests", 1),
    ])
    .await;

    // The author's answer posts, without a name, and is confirmed in the DM itself.
    click_consent(
        &app,
        "U0AMY",
        &ask.channel,
        &ask.ts,
        &ask.blocks,
        "win_consent:anonymous",
    )
    .await;
    app.drain_outbox().await;
    let posts = sponsor_posts(&app);
    assert_eq!(posts.len(), 1);
    assert!(
        posts[0].contains("We shipped the onboarding guide!") && !posts[0].contains("U0AMY"),
        "{}",
        posts[0]
    );
    let dm = app.first_dm("U0AMY");
    assert!(
        dm.text
            .starts_with(":tada: Shared anonymously in <#C0SPONSOR>"),
        "{}",
        dm.text
    );
    // The ask named the author beside the text: once answered it is gone from the outbox.
    app.assert_counts(&[
        (
            "SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE 'winask:%'",
            0,
        ),
        ("SELECT COUNT(*) FROM win_requests", 0),
        (
            "SELECT COUNT(*) FROM wins WHERE author_member_id IS NULL",
            1,
        ),
    ])
    .await;
    assert_eq!(rows_mentioning(&app.db.url, "U0AMY").await, before);
}

#[tokio::test]
async fn a_declined_shortcut_posts_and_keeps_nothing_and_odd_messages_are_explained() {
    let app = loop_app(&["U0AMY", "U0BEN", "U0CAT"], "anonymous", SCALE_COMMENT_WIN).await;
    app.send_interaction(&shortcut(
        &app,
        "U0FAN",
        Some("U0AMY"),
        "Got the budget approved",
    ))
    .await;
    app.drain_outbox().await;
    let ask = app.first_dm("U0AMY");
    click_consent(
        &app,
        "U0AMY",
        &ask.channel,
        &ask.ts,
        &ask.blocks,
        "win_consent:decline",
    )
    .await;
    app.drain_outbox().await;
    assert!(sponsor_posts(&app).is_empty());
    assert!(app
        .first_dm("U0AMY")
        .text
        .contains("nothing was shared or kept"));
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM wins", 0),
        ("SELECT COUNT(*) FROM win_requests", 0),
    ])
    .await;

    app.send_interaction(&shortcut(&app, "U0FAN", None, "a bot said this"))
        .await;
    app.send_interaction(&shortcut(&app, "U0FAN", Some("U0FAN"), "I am not a member"))
        .await;
    app.send_interaction(&shortcut(&app, "U0FAN", Some("U0BEN"), "  "))
        .await;
    let told = ephemeral_for(&app, "U0FAN");
    assert!(
        told.iter().any(|t| t.contains("Only a person's message")),
        "{told:?}"
    );
    assert!(
        told.iter()
            .any(|t| t.contains("<@U0FAN> is not in a pulseloop program")),
        "{told:?}"
    );
    assert!(
        told.iter().any(|t| t.contains("no text to celebrate")),
        "{told:?}"
    );
    app.assert_count("SELECT COUNT(*) FROM win_requests", 0)
        .await;
}

/// Submits the survey modal of `user` with a scale value, a comment and optionally a win.
pub async fn submit_survey(
    app: &TestApp,
    user: &str,
    comment: &str,
    allow_reply: bool,
    win: Option<(&str, &str)>,
) {
    let delivery = rows(
        &app.db.url,
        &format!("SELECT d.id FROM deliveries d JOIN members m ON m.id = d.member_id WHERE m.slack_user_id = '{user}' ORDER BY d.id DESC"),
    )
    .await[0]["id"]
        .as_i64()
        .unwrap();
    let mut values = json!({
        "q:value": { "v": { "type": "radio_buttons", "selected_option": { "value": "4" } } },
        "q:comment": { "v": { "type": "plain_text_input", "value": comment } },
    });
    if allow_reply {
        values["reply:comment"] =
            json!({ "v": { "type": "checkboxes", "selected_options": [{ "value": "allow" }] } });
    }
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
    assert_eq!(app.send_interaction(&payload).await.status(), 200);
}

#[tokio::test]
async fn survey_wins_are_shouted_out_once_when_their_round_closes_private_ones_never() {
    let app = loop_app(&["U0AMY", "U0BEN", "U0CAT"], "anonymous", SCALE_COMMENT_WIN).await;
    app.send_monday_pulse().await;
    submit_survey(
        &app,
        "U0AMY",
        "",
        false,
        Some(("Ran my first skip-level", "named")),
    )
    .await;
    submit_survey(
        &app,
        "U0BEN",
        "",
        false,
        Some(("Hired a great lead", "anonymous")),
    )
    .await;
    submit_survey(
        &app,
        "U0CAT",
        "",
        false,
        Some(("Slept eight hours", "private")),
    )
    .await;
    app.drain_outbox().await;
    assert!(
        sponsor_posts(&app).is_empty(),
        "answers can still change while the round is open"
    );

    app.advance(Duration::hours(49));
    assert_eq!(app.tick().await.sealed, 1);
    app.drain_outbox().await;
    // Slack takes one post per second per channel.
    app.advance(Duration::seconds(2));
    app.tick().await;
    app.drain_outbox().await;
    let mut posts = sponsor_posts(&app);
    posts.sort();
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert!(
        posts
            .iter()
            .any(|p| p.contains("Hired a great lead") && !p.contains("<@")),
        "{posts:?}"
    );
    assert!(
        posts
            .iter()
            .any(|p| p.contains("Ran my first skip-level") && p.contains("<@U0AMY>")),
        "{posts:?}"
    );
    assert!(!posts.iter().any(|p| p.contains("Slept")), "{posts:?}");
}

#[tokio::test]
async fn an_unanswered_request_is_forgotten_after_a_week_with_the_dm_that_asked() {
    let app = loop_app(&["U0AMY", "U0BEN", "U0CAT"], "anonymous", SCALE_COMMENT_WIN).await;
    app.send_interaction(&shortcut(&app, "U0FAN", Some("U0AMY"), "Old news"))
        .await;
    app.drain_outbox().await;
    let ask = app.first_dm("U0AMY");
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM win_requests", 1),
        (
            "SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE 'winask:%'",
            1,
        ),
    ])
    .await;
    app.advance(Duration::days(8));
    command(&app, "U0BEN", "win A fresh one").await;
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM win_requests", 1),
        (
            "SELECT COUNT(*) FROM win_requests WHERE text = 'Old news'",
            0,
        ),
        (
            "SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE 'winask:%'",
            0,
        ),
    ])
    .await;
    click_consent(
        &app,
        "U0AMY",
        &ask.channel,
        &ask.ts,
        &ask.blocks,
        "win_consent:named",
    )
    .await;
    app.drain_outbox().await;
    assert!(sponsor_posts(&app).is_empty());
    assert!(app.first_dm("U0AMY").text.contains("was forgotten"));
}
