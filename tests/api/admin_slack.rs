//! `/pulse admin`: the admin view in Slack, for program admins only.

use crate::admin_config::{local_times, pilot_app};
use crate::helpers::*;
use serde_json::{json, Value};

const ADMIN: &str = "U0ADMIN01";
const MEMBER: &str = "U0MEMBER1";

/// `/pulse admin` typed by `user`, as Slack sends it (with a real trigger_id).
async fn type_admin(app: &TestApp, user: &str) -> Value {
    let form = app.peer.slash_command(user, "D0ADMIN", "admin");
    let body = serde_urlencoded::to_string(&form).unwrap();
    let r = app
        .post_signed("/slack/commands", FORM, body.as_bytes(), app.sign_now())
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// The text of every block of a view, joined (sections, headers, contexts, buttons).
fn view_text(view: &Value) -> String {
    let mut out = String::new();
    fn walk(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(t)) = m.get("text") {
                    out.push_str(t);
                    out.push('\n');
                }
                for (k, v) in m {
                    if k != "text" || !v.is_string() {
                        walk(v, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&view["blocks"], &mut out);
    out
}

fn last_view(app: &TestApp) -> slack_emulator::EmulatedView {
    app.emulator
        .views()
        .last()
        .cloned()
        .expect("a view is open")
}

/// A click on an admin button in the root view.
async fn click(app: &TestApp, user: &str, view_id: &str, action_id: &str, value: &str) {
    let payload = json!({
        "type": "block_actions",
        "user": { "id": user },
        "trigger_id": app.emulator.issue_trigger_id_for(user),
        "container": { "type": "view", "view_id": view_id },
        "view": { "id": view_id, "type": "modal", "callback_id": "admin:view" },
        "actions": [{ "action_id": action_id, "block_id": "b", "type": "button", "value": value,
                      "action_ts": "1700000000.000001" }],
    });
    assert_eq!(app.send_interaction(&payload).await.status(), 200);
}

/// Submits the cadence form with `cron`; Slack's answer (JSON, or `Null` when empty).
async fn submit_cadence(app: &TestApp, user: &str, metadata: &str, cron: &str) -> Value {
    let view = json!({
        "type": "modal",
        "callback_id": "admin:cadence",
        "private_metadata": metadata,
        "state": { "values": {
            "cadence": { "v": { "type": "plain_text_input", "value": cron } },
            "every_weeks": { "v": { "type": "plain_text_input", "value": "1" } },
        } },
    });
    let payload = app.peer.view_submission(user, &view);
    let r = app.send_interaction(&payload).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    }
}

fn form_metadata() -> String {
    json!({ "program": "pilot", "survey": "weekly" }).to_string()
}

#[tokio::test]
async fn a_non_admin_gets_a_polite_refusal_and_the_refusal_is_audited() {
    let app = pilot_app().await;
    let reply = type_admin(&app, MEMBER).await;
    assert_eq!(reply["response_type"], "ephemeral");
    assert!(
        reply["text"]
            .as_str()
            .unwrap()
            .starts_with("Sorry, the admin view is for program admins only"),
        "{reply}"
    );
    assert!(app.emulator.views().is_empty(), "no view opens for them");
    app.assert_count(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'admin.refused' AND actor = 'slack:U0MEMBER1'",
        1,
    )
    .await;
}

#[tokio::test]
async fn a_non_admin_cannot_change_anything_through_slack() {
    let app = pilot_app().await;
    // Forged clicks and forms, as if the view had been opened for them.
    click(&app, MEMBER, "V0FORGED1", "admin:pause", "pilot|weekly").await;
    click(&app, MEMBER, "V0FORGED1", "admin:send_now", "pilot|weekly").await;
    let answer = submit_cadence(&app, MEMBER, &form_metadata(), "0 9 * * TUE").await;
    assert_eq!(answer["response_action"], "errors");
    assert!(answer["errors"]["cadence"]
        .as_str()
        .unwrap()
        .contains("only the admins"));
    let members_form = json!({
        "type": "modal", "callback_id": "admin:members",
        "private_metadata": json!({ "program": "pilot" }).to_string(),
        "state": { "values": { "add": { "v": { "type": "multi_users_select", "selected_users": ["U0NEWBIE1"] } } } },
    });
    let r = app
        .send_interaction(&app.peer.view_submission(MEMBER, &members_form))
        .await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["response_action"],
        "errors"
    );

    assert_eq!(
        local_times(&app, MEMBER).await,
        ["2027-01-04T10:00:00+01:00", "2027-01-11T10:00:00+01:00"]
    );
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM config_overrides", 0),
        ("SELECT COUNT(*) FROM rounds", 0),
        ("SELECT COUNT(*) FROM members WHERE slack_user_id = 'U0NEWBIE1'", 0),
        ("SELECT COUNT(*) FROM audit_log WHERE action = 'admin.refused' AND actor = 'slack:U0MEMBER1'", 4),
        ("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'admin.%' AND action <> 'admin.refused'", 0),
    ])
    .await;
}

#[tokio::test]
async fn an_admin_sees_cadences_in_words_next_sends_and_where_values_came_from() {
    let app = pilot_app().await;
    let reply = type_admin(&app, ADMIN).await;
    assert_eq!(reply["response_type"], "ephemeral");
    let view = last_view(&app);
    assert_eq!(view.user.as_deref(), Some(ADMIN));
    let text = view_text(&view.view);
    assert!(
        text.contains("Mondays 10:00, each member's local time"),
        "{text}"
    );
    assert!(text.contains("Next 5 sends"), "{text}");
    assert!(
        text.contains("Mon 4 Jan 2027, 10:00 · Mon 11 Jan 2027, 10:00"),
        "{text}"
    );
    assert!(text.contains(":arrow_forward: running"), "{text}");
    assert!(
        text.contains("*Sponsor channel:* <#C0SPONSOR1> _from the file_"),
        "{text}"
    );
    assert!(text.contains("*Failed deliveries:* none"), "{text}");
    for button in [
        "Edit cadence",
        "Pause",
        "Send now",
        "Add or remove members",
        "Set sponsor channel",
    ] {
        assert!(text.contains(button), "{button} in {text}");
    }
}

#[tokio::test]
async fn a_bad_cron_in_the_modal_shows_the_error_next_to_the_field_and_changes_nothing() {
    let app = pilot_app().await;
    type_admin(&app, ADMIN).await;
    let root = last_view(&app);
    click(&app, ADMIN, &root.id, "admin:edit_cadence", "pilot|weekly").await;
    let form = last_view(&app);
    assert_eq!(form.view["callback_id"], "admin:cadence");
    let metadata = form.view["private_metadata"].as_str().unwrap().to_string();

    let answer = submit_cadence(&app, ADMIN, &metadata, "0 10 * * FUNDAY").await;
    assert_eq!(answer["response_action"], "errors");
    let error = answer["errors"]["cadence"].as_str().unwrap();
    assert!(error.contains("day-of-week"), "{error}");
    assert_eq!(answer["errors"].as_object().unwrap().len(), 1);

    assert_eq!(
        local_times(&app, MEMBER).await,
        ["2027-01-04T10:00:00+01:00", "2027-01-11T10:00:00+01:00"]
    );
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM config_overrides", 0),
        (
            "SELECT COUNT(*) FROM audit_log WHERE action LIKE 'admin.%'",
            0,
        ),
    ])
    .await;
}

#[tokio::test]
async fn a_good_cron_is_previewed_with_its_next_sends_then_saved_and_audited() {
    let app = pilot_app().await;
    type_admin(&app, ADMIN).await;
    let root = last_view(&app);
    click(&app, ADMIN, &root.id, "admin:edit_cadence", "pilot|weekly").await;
    let metadata = last_view(&app).view["private_metadata"]
        .as_str()
        .unwrap()
        .to_string();

    // First submit: the next 5 sends are shown, nothing is saved yet.
    let answer = submit_cadence(&app, ADMIN, &metadata, "0 9 * * TUE").await;
    assert_eq!(answer["response_action"], "update");
    let preview = &answer["view"];
    let text = view_text(preview);
    assert!(
        text.contains("Tuesdays 09:00, each member's local time"),
        "{text}"
    );
    assert!(text.contains("Tue 5 Jan 2027, 09:00"), "{text}");
    assert!(text.contains("Tue 2 Feb 2027, 09:00"), "{text}");
    assert_eq!(preview["submit"]["text"], "Save");
    app.assert_count("SELECT COUNT(*) FROM config_overrides", 0)
        .await;
    assert_eq!(
        local_times(&app, MEMBER).await,
        ["2027-01-04T10:00:00+01:00", "2027-01-11T10:00:00+01:00"]
    );

    // Second submit with the same values: saved, the root view is redrawn.
    let saved_metadata = preview["private_metadata"].as_str().unwrap();
    let answer = submit_cadence(&app, ADMIN, saved_metadata, "0 9 * * TUE").await;
    assert_eq!(answer, Value::Null, "an empty 200 closes the form");
    assert_eq!(
        local_times(&app, MEMBER).await,
        ["2027-01-05T09:00:00+01:00", "2027-01-12T09:00:00+01:00"]
    );
    let updates = app.emulator.calls_to("views.update");
    assert!(!updates.is_empty(), "the root view is redrawn");
    let root_now = app
        .emulator
        .views()
        .into_iter()
        .find(|v| v.id == root.id)
        .unwrap();
    let text = view_text(&root_now.view);
    assert!(text.contains("Tuesdays 09:00"), "{text}");
    assert!(text.contains("run-time edit by <@U0ADMIN01>"), "{text}");

    let r = app.admin_get("/api/v1/audit?program=pilot").await;
    let entries: Vec<Value> = r.json().await.unwrap();
    let set: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "admin.cadence.set")
        .collect();
    assert_eq!(set.len(), 1);
    assert_eq!(set[0]["actor"], "admin:U0ADMIN01");
    assert_eq!(set[0]["detail"]["before"]["cadence"], "0 10 * * MON");
    assert_eq!(set[0]["detail"]["after"]["cadence"], "0 9 * * TUE");
}

#[tokio::test]
async fn pause_send_now_members_and_sponsor_channel_from_the_view() {
    let app = pilot_app().await;
    type_admin(&app, ADMIN).await;
    let root = last_view(&app);

    click(&app, ADMIN, &root.id, "admin:pause", "pilot|weekly").await;
    assert!(local_times(&app, MEMBER).await.is_empty());
    let text = view_text(
        &app.emulator
            .views()
            .into_iter()
            .find(|v| v.id == root.id)
            .unwrap()
            .view,
    );
    assert!(
        text.contains(":double_vertical_bar: Paused *weekly*"),
        "{text}"
    );
    assert!(text.contains("none while paused"), "{text}");
    click(&app, ADMIN, &root.id, "admin:resume", "pilot|weekly").await;
    assert_eq!(local_times(&app, MEMBER).await.len(), 2);

    click(&app, ADMIN, &root.id, "admin:send_now", "pilot|weekly").await;
    app.assert_count("SELECT COUNT(*) FROM rounds WHERE origin = 'send_now'", 1)
        .await;
    click(&app, ADMIN, &root.id, "admin:send_now", "pilot|weekly").await;
    app.assert_count("SELECT COUNT(*) FROM rounds", 1).await;
    let text = view_text(
        &app.emulator
            .views()
            .into_iter()
            .find(|v| v.id == root.id)
            .unwrap()
            .view,
    );
    assert!(
        text.contains("Not sent: round 1 of survey 'weekly' is still open"),
        "{text}"
    );

    click(&app, ADMIN, &root.id, "admin:members", "pilot").await;
    let form = last_view(&app);
    assert_eq!(form.view["callback_id"], "admin:members");
    let submit = json!({
        "id": form.id, "callback_id": "admin:members",
        "private_metadata": form.view["private_metadata"],
        "state": { "values": {
            "add": { "v": { "type": "multi_users_select", "selected_users": ["U0NEWBIE1"] } },
            "role": { "v": { "type": "static_select", "selected_option": { "value": "leader" } } },
            "remove": { "v": { "type": "multi_users_select", "selected_users": ["U0MEMBER2"] } },
        } },
    });
    let r = app
        .send_interaction(&app.peer.view_submission(ADMIN, &submit))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "");

    click(&app, ADMIN, &root.id, "admin:sponsor", "pilot").await;
    let form = last_view(&app);
    assert_eq!(form.view["callback_id"], "admin:sponsor");
    let submit = json!({
        "id": form.id, "callback_id": "admin:sponsor",
        "private_metadata": form.view["private_metadata"],
        "state": { "values": {
            "channel": { "v": { "type": "conversations_select", "selected_conversation": "C0SPONSOR2" } },
        } },
    });
    let r = app
        .send_interaction(&app.peer.view_submission(ADMIN, &submit))
        .await;
    assert_eq!(r.status(), 200);

    app.assert_counts(&[
        ("SELECT COUNT(*) FROM members WHERE slack_user_id = 'U0NEWBIE1' AND role = 'leader' AND state = 'active'", 1),
        ("SELECT COUNT(*) FROM members WHERE slack_user_id = 'U0MEMBER2' AND state = 'deactivated'", 1),
        ("SELECT COUNT(*) FROM audit_log WHERE actor = 'admin:U0ADMIN01'", 7),
    ])
    .await;
    assert_eq!(
        app.state
            .catalog
            .program(&"pilot".into())
            .unwrap()
            .sponsor_channels,
        ["C0SPONSOR2"]
    );
}
