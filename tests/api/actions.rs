//! "You said, we did" (`/pulse action`) and replies to anonymous comments (issue 8, item 4).

use crate::helpers::*;
use crate::wins::{command, loop_app, submit_survey, OWNER, SCALE_COMMENT_WIN, SPONSORS};
use chrono::{Duration, TimeZone, Utc};
use serde_json::{json, Value};

/// Runs the scheduler at `at` and sends what is due (pulses, closes).
async fn at(app: &TestApp, when: chrono::DateTime<Utc>) {
    app.run_at(when).await;
}

/// Monday `day` January 2027, 10:00 in Berlin.
fn monday(day: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, day, 9, 0, 0).unwrap()
}

fn got_action_dm(app: &TestApp, user: &str, text: &str) -> bool {
    app.emulator
        .dm_messages(user)
        .iter()
        .any(|m| m.text.contains("You said, we did") && m.text.contains(text))
}

#[tokio::test]
async fn an_action_reaches_only_the_members_who_answered_the_period_it_refers_to() {
    let people = ["U0AMY", "U0BEN", "U0CAT", "U0DAN"];
    let app = loop_app(&people, "confidential", SCALE_COMMENT_WIN).await;
    // Week 1: Amy, Ben and Cat answer. Week 2: Ben, Cat and Dan answer.
    at(&app, monday(4)).await;
    for u in ["U0AMY", "U0BEN", "U0CAT"] {
        submit_survey(&app, u, "", false, None).await;
    }
    at(&app, monday(4) + Duration::hours(49)).await;
    at(&app, monday(11)).await;
    for u in ["U0BEN", "U0CAT", "U0DAN"] {
        submit_survey(&app, u, "", false, None).await;
    }
    at(&app, monday(11) + Duration::hours(49)).await;
    app.assert_count("SELECT COUNT(*) FROM rounds WHERE state = 'closed'", 2)
        .await;

    let reply = command(&app, OWNER, "action We moved coaching to Tuesday mornings").await;
    let text = reply["text"].as_str().unwrap();
    assert!(text.contains("sent by DM to 3 people"), "{text}");
    assert!(
        text.contains("2027-01-11T10:00"),
        "the period it refers to: {text}"
    );
    app.drain_outbox().await;
    for u in ["U0BEN", "U0CAT", "U0DAN"] {
        assert!(
            got_action_dm(&app, u, "We moved coaching to Tuesday mornings"),
            "{u}"
        );
    }
    assert!(
        !got_action_dm(&app, "U0AMY", "Tuesday"),
        "Amy answered an older period only"
    );
    assert!(!got_action_dm(&app, OWNER, "Tuesday"));
    app.assert_count(
        "SELECT COUNT(*) FROM actions a JOIN rounds r ON r.id = a.round_id
         WHERE a.program_id = 'pilot' AND a.text = 'We moved coaching to Tuesday mornings'
           AND a.period_key = r.period_key AND r.period_key = '2027-01-11T10:00' AND a.notified_count = 3",
        1,
    )
    .await;
}

#[tokio::test]
async fn a_non_owner_is_refused_politely_and_bad_text_is_explained() {
    let app = loop_app(&["U0AMY", "U0BEN", "U0CAT"], "anonymous", SCALE_COMMENT_WIN).await;
    let reply = command(&app, "U0AMY", "action We changed everything").await;
    assert_eq!(reply["response_type"], "ephemeral");
    assert!(
        reply["text"]
            .as_str()
            .unwrap()
            .starts_with("Only a program's owners can record"),
        "{reply}"
    );
    let empty = command(&app, OWNER, "action").await;
    assert!(
        empty["text"]
            .as_str()
            .unwrap()
            .contains("Tell me what changed"),
        "{empty}"
    );
    let long = command(&app, OWNER, &format!("action {}", "z".repeat(1001))).await;
    assert!(
        long["text"]
            .as_str()
            .unwrap()
            .contains("keep it to 1000 characters"),
        "{long}"
    );
    app.assert_count("SELECT COUNT(*) FROM actions", 0).await;
    // Before any round closed, an owner's action is stored for the digest and DMs nobody.
    let early = command(&app, OWNER, "action pilot Shorter sessions").await;
    assert!(
        early["text"]
            .as_str()
            .unwrap()
            .contains("No round has closed yet"),
        "{early}"
    );
    app.assert_count(
        "SELECT COUNT(*) FROM actions WHERE text = 'Shorter sessions' AND round_id IS NULL",
        1,
    )
    .await;
    app.assert_count("SELECT COUNT(*) FROM outbox", 0).await;
}

#[tokio::test]
async fn an_anonymous_period_under_k_is_never_written_to_and_at_k_everyone_asked_is() {
    let people = ["U0AMY", "U0BEN", "U0CAT", "U0DAN"];
    let app = loop_app(&people, "anonymous", SCALE_COMMENT_WIN).await;
    at(&app, monday(4)).await;
    for u in ["U0AMY", "U0BEN"] {
        submit_survey(&app, u, "", false, None).await;
    }
    at(&app, monday(4) + Duration::hours(49)).await;
    app.assert_count(
        "SELECT COUNT(*) FROM rounds WHERE sealed_at IS NOT NULL AND answered_count = 2",
        1,
    )
    .await;
    let reply = command(&app, OWNER, "action Fewer surveys").await;
    let text = reply["text"].as_str().unwrap();
    assert!(
        text.contains("It was not sent by DM: fewer than 3 people answered"),
        "{text}"
    );
    app.drain_outbox().await;
    for u in people {
        assert!(!got_action_dm(&app, u, "Fewer surveys"), "{u}");
    }
    app.assert_count(
        "SELECT COUNT(*) FROM actions WHERE notified_count = 0 AND round_id IS NOT NULL",
        1,
    )
    .await;

    // Week 2: three answer (k). After the seal nobody knows who, so every member asked hears.
    at(&app, monday(11)).await;
    for u in ["U0AMY", "U0BEN", "U0CAT"] {
        submit_survey(&app, u, "", false, None).await;
    }
    at(&app, monday(11) + Duration::hours(49)).await;
    let reply = command(&app, OWNER, "action Sessions moved to Tuesday").await;
    assert!(
        reply["text"]
            .as_str()
            .unwrap()
            .contains("sent by DM to 4 people"),
        "{reply}"
    );
    app.drain_outbox().await;
    for u in people {
        assert!(got_action_dm(&app, u, "Sessions moved to Tuesday"), "{u}");
    }
}

// ------------------------------------------------------------ replies to anonymous comments

/// The one reply handle stored, if any.
async fn handles(app: &TestApp) -> Vec<String> {
    rows(
        &app.db.url,
        "SELECT reply_handle FROM responses WHERE reply_handle IS NOT NULL",
    )
    .await
    .into_iter()
    .map(|r| r["reply_handle"].as_str().unwrap().to_string())
    .collect()
}

/// `user` clicks "Reply" under the comment `handle` in the digest (in the sponsor channel).
async fn click_reply(app: &TestApp, user: &str, handle: &str) {
    let click = app.peer.block_actions(
        user,
        SPONSORS,
        "1700000000.000300",
        "reply_to_comment",
        "comments",
        handle,
    );
    assert_eq!(app.send_interaction(&click).await.status(), 200);
}

/// `user` sends the reply modal for `handle` with `reply`; the JSON answer (null when the
/// modal closes).
async fn send_reply(app: &TestApp, user: &str, handle: &str, reply: &str) -> Value {
    let view = json!({
        "type": "modal",
        "callback_id": "reply_to_comment",
        "private_metadata": json!({ "handle": handle }).to_string(),
        "state": { "values": { "reply": { "text": { "type": "plain_text_input", "value": reply } } } },
    });
    let r = app
        .send_interaction(&app.peer.view_submission(user, &view))
        .await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap()
    }
}

fn dms_containing(app: &TestApp, user: &str, text: &str) -> usize {
    app.emulator
        .dm_messages(user)
        .iter()
        .filter(|m| m.text.contains(text))
        .count()
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
async fn an_owner_reply_reaches_the_comment_author_after_the_seal_and_nobody_else() {
    let app = loop_app(&["U0AMY", "U0BEN", "U0CAT"], "anonymous", SCALE_COMMENT_WIN).await;
    at(&app, monday(4)).await;
    submit_survey(&app, "U0AMY", "please more role play", true, None).await;
    submit_survey(&app, "U0BEN", "the agenda was vague", false, None).await;
    submit_survey(&app, "U0CAT", "", false, None).await;
    at(&app, monday(4) + Duration::hours(49)).await;
    app.assert_count(
        "SELECT COUNT(*) FROM responses WHERE delivery_id IS NOT NULL",
        0,
    )
    .await;
    let handle = handles(&app).await;
    assert_eq!(
        handle.len(),
        1,
        "only the comment whose author allowed replies has a handle"
    );
    app.assert_count(
        "SELECT COUNT(*) FROM responses WHERE reply_handle IS NOT NULL AND allow_reply AND value_text = 'please more role play'",
        1,
    )
    .await;

    // Someone who is not an owner is refused, privately; no modal opens.
    click_reply(&app, "U0BEN", &handle[0]).await;
    assert!(ephemeral_for(&app, "U0BEN")
        .iter()
        .any(|t| t.contains("Only the program's owners")));
    assert!(app.emulator.views().is_empty());
    let refused = send_reply(&app, "U0BEN", &handle[0], "I am not an owner").await;
    assert_eq!(refused["response_action"], "errors", "{refused}");

    click_reply(&app, OWNER, &handle[0]).await;
    let modal = app.emulator.views().pop().expect("the reply modal opened");
    assert_eq!(modal.view["callback_id"], "reply_to_comment");
    assert!(!modal.view.to_string().contains("U0AMY"));
    assert_eq!(
        send_reply(
            &app,
            OWNER,
            &handle[0],
            "Thanks! We will add role play next week."
        )
        .await,
        Value::Null
    );
    assert_eq!(
        dms_containing(&app, "U0AMY", "We will add role play next week"),
        1
    );
    for u in ["U0BEN", "U0CAT", OWNER] {
        assert_eq!(dms_containing(&app, u, "We will add role play"), 0, "{u}");
    }
    // What the digest calls for a shown comment: the handle only where replies are allowed.
    for r in rows(
        &app.db.url,
        "SELECT id, reply_handle FROM responses WHERE metric_key = 'comment'",
    )
    .await
    {
        let id = r["id"].as_i64().unwrap();
        let got = app.store.reply_handle_of_response(id).await.unwrap();
        assert_eq!(
            got.map(Value::from).unwrap_or(Value::Null),
            r["reply_handle"]
        );
    }
    let dm = app
        .emulator
        .dm_messages("U0AMY")
        .into_iter()
        .last()
        .unwrap();
    assert!(
        dm.text.contains("they do not know it was you"),
        "{}",
        dm.text
    );
    // Sent at once: nothing stored names the recipient beside the reply.
    app.assert_count(
        "SELECT COUNT(*) FROM outbox WHERE payload LIKE '%role play next week%'",
        0,
    )
    .await;
}

#[tokio::test]
async fn a_reply_to_a_comment_whose_author_does_not_allow_replies_is_refused_with_a_message() {
    let app = loop_app(&["U0AMY", "U0BEN", "U0CAT"], "anonymous", SCALE_COMMENT_WIN).await;
    at(&app, monday(4)).await;
    submit_survey(&app, "U0AMY", "please more role play", true, None).await;
    let old = handles(&app).await;
    assert_eq!(old.len(), 1);
    app.assert_count("SELECT COUNT(*) FROM reply_mailboxes", 1)
        .await;
    // Amy changes her mind before the close: the handle and the mailbox go.
    submit_survey(&app, "U0AMY", "please more role play", false, None).await;
    assert!(handles(&app).await.is_empty());
    app.assert_count("SELECT COUNT(*) FROM reply_mailboxes", 0)
        .await;
    submit_survey(&app, "U0BEN", "", false, None).await;
    submit_survey(&app, "U0CAT", "", false, None).await;
    at(&app, monday(4) + Duration::hours(49)).await;

    click_reply(&app, OWNER, &old[0]).await;
    assert!(
        app.emulator.views().is_empty(),
        "no modal for a comment that takes no replies"
    );
    let told = ephemeral_for(&app, OWNER);
    assert!(
        told.iter().any(|t| t.contains("did not allow replies")),
        "{told:?}"
    );
    let refused = send_reply(&app, OWNER, &old[0], "Hello?").await;
    assert_eq!(refused["response_action"], "errors");
    assert!(
        refused.to_string().contains("did not allow replies"),
        "{refused}"
    );
    assert_eq!(dms_containing(&app, "U0AMY", "Hello?"), 0);
}

/// Times and random identifiers vary between runs; nothing else may.
fn normalise(s: &str) -> String {
    crate::helpers::normalise_run(s, false)
}

/// One run: Amy and Ben comment, one of them allowing replies (`amy_allows`), Cat does not
/// comment; the round is sealed. Returns the database as the adversary sees it, and the app.
async fn relay_run(amy_allows: bool) -> (String, TestApp) {
    let app = loop_app(&["U0AMY", "U0BEN", "U0CAT"], "anonymous", SCALE_COMMENT_WIN).await;
    at(&app, monday(4)).await;
    let (amy, ben) = if amy_allows {
        (
            ("please more role play", true),
            ("the agenda was vague", false),
        )
    } else {
        (
            ("the agenda was vague", false),
            ("please more role play", true),
        )
    };
    // Minutes apart, so a row stamped with its answer's time would give the order away.
    submit_survey(&app, "U0AMY", amy.0, amy.1, None).await;
    app.drain_outbox().await;
    app.advance(Duration::minutes(7));
    submit_survey(&app, "U0BEN", ben.0, ben.1, None).await;
    app.drain_outbox().await;
    app.advance(Duration::minutes(7));
    submit_survey(&app, "U0CAT", "", false, None).await;
    app.drain_outbox().await;
    at(&app, monday(4) + Duration::hours(49)).await;
    let mut tables = Vec::new();
    for (name, data) in crate::wins::dump(&app.db.url).await {
        let mut lines: Vec<String> = data
            .into_iter()
            .map(|mut row| {
                if name == "responses" {
                    row.remove("id"); // assigned in random order at the seal
                }
                normalise(&serde_json::to_string(&row).unwrap())
            })
            .collect();
        lines.sort();
        tables.push(format!("== {name}\n{}", lines.join("\n")));
    }
    (tables.join("\n"), app)
}

#[tokio::test]
async fn a_database_copy_after_the_seal_cannot_tell_whose_comment_takes_replies_yet_the_relay_can()
{
    let (a, app_a) = relay_run(true).await;
    let (b, app_b) = relay_run(false).await;
    assert!(a.contains("reply_mailboxes\n{"), "a mailbox is stored: {a}");
    if a != b {
        let diff: Vec<_> = a
            .lines()
            .zip(b.lines())
            .filter(|(x, y)| x != y)
            .take(10)
            .collect();
        panic!("the stored data tells who allowed replies: {diff:#?}");
    }
    // The same stored shape; the relay, holding the server secret, still reaches the author.
    for (app, author, other) in [(&app_a, "U0AMY", "U0BEN"), (&app_b, "U0BEN", "U0AMY")] {
        let handle = handles(app).await;
        click_reply(app, OWNER, &handle[0]).await;
        assert_eq!(
            send_reply(app, OWNER, &handle[0], "Noted, thank you").await,
            Value::Null
        );
        assert_eq!(
            dms_containing(app, author, "Noted, thank you"),
            1,
            "{author}"
        );
        assert_eq!(dms_containing(app, other, "Noted, thank you"), 0, "{other}");
    }
}

/// `user` opens the survey modal from their DM (the first or the "Change answer" button).
async fn open_modal(app: &TestApp, user: &str) -> Value {
    app.drain_outbox().await;
    let dm = app.first_dm(user);
    let (block_id, value) = dm
        .blocks
        .as_array()
        .unwrap()
        .iter()
        .find_map(|b| {
            b["elements"]
                .as_array()?
                .iter()
                .find(|e| e["action_id"] == "open_modal")
                .map(|e| {
                    (
                        b["block_id"].as_str().unwrap_or("").to_string(),
                        e["value"].as_str().unwrap().to_string(),
                    )
                })
        })
        .unwrap_or_else(|| panic!("no modal button in {}", dm.blocks));
    let click = app
        .peer
        .block_actions(user, &dm.channel, &dm.ts, "open_modal", &block_id, &value);
    assert_eq!(app.send_interaction(&click).await.status(), 200);
    app.emulator
        .views()
        .pop()
        .expect("Slack accepted the modal")
        .view
}

fn reply_box(view: &Value) -> Option<Value> {
    view["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["block_id"] == "reply:comment")
        .cloned()
}

#[tokio::test]
async fn the_survey_modal_offers_replies_under_comments_and_remembers_the_choice() {
    let app = loop_app(&["U0AMY", "U0BEN", "U0CAT"], "anonymous", SCALE_COMMENT_WIN).await;
    at(&app, monday(4)).await;
    let view = open_modal(&app, "U0AMY").await;
    let ids: Vec<&str> = view["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["block_id"].as_str())
        .collect();
    let at_comment = ids.iter().position(|i| *i == "q:comment").unwrap();
    assert_eq!(
        ids[at_comment + 1],
        "reply:comment",
        "right under the comment: {ids:?}"
    );
    assert_eq!(
        ids.iter().filter(|i| i.starts_with("reply:")).count(),
        1,
        "only under comments"
    );
    let unticked = reply_box(&view).unwrap();
    assert_eq!(unticked["element"]["type"], "checkboxes");
    assert!(unticked["element"].get("initial_options").is_none());

    submit_survey(&app, "U0AMY", "more role play", true, None).await;
    let again = open_modal(&app, "U0AMY").await;
    assert_eq!(
        reply_box(&again).unwrap()["element"]["initial_options"][0]["value"],
        "allow"
    );
}

#[tokio::test]
async fn without_the_server_secret_replies_are_not_offered_and_no_handle_is_made() {
    let app = TestAppBuilder::default()
        .user("U0AMY", "Europe/Berlin")
        .program(
            "pilot.toml",
            &crate::wins::loop_program(&["U0AMY"], "anonymous", SCALE_COMMENT_WIN),
        )
        .spawn()
        .await;
    at(&app, monday(4)).await;
    assert!(reply_box(&open_modal(&app, "U0AMY").await).is_none());
    submit_survey(&app, "U0AMY", "more role play", true, None).await;
    app.assert_count(
        "SELECT COUNT(*) FROM responses WHERE allow_reply OR reply_handle IS NOT NULL",
        0,
    )
    .await;
    app.assert_count("SELECT COUNT(*) FROM reply_mailboxes", 0)
        .await;
}

#[tokio::test]
async fn a_mailbox_older_than_ninety_days_is_deleted_and_its_comment_takes_no_reply() {
    let app = loop_app(&["U0AMY", "U0BEN", "U0CAT"], "anonymous", SCALE_COMMENT_WIN).await;
    at(&app, monday(4)).await;
    submit_survey(&app, "U0AMY", "first comment", true, None).await;
    at(&app, monday(4) + Duration::hours(49)).await;
    let old = handles(&app).await;
    // Fourteen weeks later another comment allows replies: the old mailbox goes.
    let later = monday(4) + Duration::weeks(14);
    at(&app, later).await;
    submit_survey(&app, "U0BEN", "second comment", true, None).await;
    app.assert_count("SELECT COUNT(*) FROM reply_mailboxes", 1)
        .await;
    at(&app, later + Duration::hours(49)).await;
    let refused = send_reply(&app, OWNER, &old[0], "Too late?").await;
    assert!(
        refused.to_string().contains("did not allow replies"),
        "{refused}"
    );
    assert_eq!(dms_containing(&app, "U0AMY", "Too late?"), 0);
}
