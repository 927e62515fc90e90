//! Socket Mode end to end: the app started with SLACK_APP_TOKEN connects to the emulator's
//! WebSocket, answers envelopes through the same handlers as `/slack/*`, acknowledges each
//! within 3 seconds, and connects again on `disconnect` or a dropped connection without
//! losing or doubling an envelope.

use crate::helpers::*;
use crate::pulses::{program, ONE_SCALE};
use pulseloop::clock::ManualClock;
use pulseloop::config::Settings;
use pulseloop::startup::Application;
use secrecy::SecretString;
use serde_json::{json, Value};
use slack_emulator::{EmulatedUser, Emulator, SocketAck};
use std::sync::Arc;
use std::time::Duration;

const APP_TOKEN: &str = "xapp-1-A0PULSELOOP-1234-socketmodetoken";
const BERLIN: &str = "Europe/Berlin";
/// Generous for a loaded CI machine; the 3-second rule is checked on each ack itself.
const WAIT: Duration = Duration::from_secs(15);

fn socket_settings(s: &mut Settings) {
    s.slack.app_token = Some(SecretString::from(APP_TOKEN));
    // Socket Mode needs no signing secret: nothing arrives over HTTP.
    s.slack.signing_secret = None;
}

/// An app in Socket Mode whose members (participants in Berlin) are users of the emulator;
/// returns once its first connection is open.
async fn socket_app(members: &[&str]) -> TestApp {
    let emulator = start_emulator().await;
    emulator.add_app_token(APP_TOKEN);
    for m in members {
        emulator.add_user(EmulatedUser::new(m, BERLIN));
    }
    let list: Vec<(&str, &str, &str)> = members
        .iter()
        .map(|m| (*m, "participant", BERLIN))
        .collect();
    let app = TestAppBuilder::default()
        .emulator(emulator)
        .now(default_now())
        .program(
            "pilot.toml",
            &program(&list, "anonymity = \"anonymous\"", ONE_SCALE),
        )
        .settings(socket_settings)
        .spawn()
        .await;
    assert!(
        app.emulator.socket_wait_connected(1, WAIT).await,
        "the app opened a Socket Mode connection"
    );
    app
}

async fn ack_of(emulator: &Emulator, envelope_id: &str, nth: usize) -> SocketAck {
    let ack = emulator
        .socket_wait_ack(envelope_id, nth, WAIT)
        .await
        .unwrap_or_else(|| {
            let seen: Vec<_> = emulator
                .socket_envelopes()
                .into_iter()
                .filter(|e| e.envelope_id == envelope_id)
                .collect();
            panic!("ack {nth} of envelope {envelope_id} arrived: {seen:?}")
        });
    assert!(
        ack.in_time,
        "acknowledged within 3 s (took {} ms)",
        ack.millis
    );
    ack
}

/// The click on the DM's answer button `answer:<value>`, as Slack builds it.
fn answer_click(app: &TestApp, user: &str, value: &str) -> Value {
    let msg = app.first_dm(user);
    let action_id = format!("answer:{value}");
    let block_id = msg
        .blocks
        .as_array()
        .unwrap()
        .iter()
        .find(|b| {
            b["elements"]
                .as_array()
                .is_some_and(|es| es.iter().any(|e| e["action_id"] == action_id.as_str()))
        })
        .and_then(|b| b["block_id"].as_str())
        .expect("the DM has answer buttons")
        .to_string();
    app.peer
        .block_actions(user, &msg.channel, &msg.ts, &action_id, &block_id, value)
}

#[tokio::test]
async fn a_pulse_answered_over_the_socket_is_stored_once_and_acknowledged_in_time() {
    let app = socket_app(&["U0AMY"]).await;
    app.send_monday_pulse().await;
    // Nothing of Slack's is served over HTTP in Socket Mode; ops endpoints stay.
    assert_eq!(
        app.http
            .post(format!("{}/slack/interactions", app.base_url))
            .body("payload=%7B%7D")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(app.get("/healthz").await.status(), 200);

    let envelope = app
        .emulator
        .socket_send_interaction(answer_click(&app, "U0AMY", "4"));
    let ack = ack_of(&app.emulator, &envelope, 1).await;
    assert_eq!(ack.payload, None, "a button click is acknowledged empty");
    let answered = [
        ("SELECT COUNT(*) FROM responses", 1),
        (
            "SELECT COUNT(*) FROM responses WHERE metric_key = 'coaching_value' AND value_number = 4",
            1,
        ),
        (
            "SELECT COUNT(*) FROM deliveries WHERE state = 'answered'",
            1,
        ),
        (
            "SELECT COUNT(*) FROM outbox WHERE kind = 'answer_update'",
            1,
        ),
    ];
    app.assert_counts(&answered).await;

    // Slack delivers the same envelope again (an ack lost in transit): acknowledged again,
    // nothing stored twice.
    assert!(app.emulator.socket_redeliver(&envelope));
    ack_of(&app.emulator, &envelope, 2).await;
    app.assert_counts(&answered).await;
    let delivered = app.emulator.socket_envelopes();
    assert_eq!(delivered[0].deliveries.len(), 2);
    assert_eq!(delivered[0].deliveries[1].retry_attempt, 1);

    // The DM update goes out as over HTTP.
    app.drain_outbox().await;
    assert!(app
        .first_dm("U0AMY")
        .blocks
        .to_string()
        .contains("your answer is in"));
    app.stop().await;
}

#[tokio::test]
async fn a_slash_command_over_the_socket_gets_its_reply_in_the_ack() {
    let app = socket_app(&["U0AMY"]).await;
    let envelope = app.emulator.socket_send_command("U0AMY", "help");
    let ack = ack_of(&app.emulator, &envelope, 1).await;
    let reply = ack
        .payload
        .expect("the command's reply is the ack's payload");
    assert_eq!(reply["response_type"], "ephemeral");
    assert!(
        reply["text"].as_str().unwrap_or("").contains("/pulse"),
        "{reply}"
    );

    // A command that stores something: one win request, even when delivered twice.
    let envelope = app
        .emulator
        .socket_send_command("U0AMY", "win shipped the socket mode");
    let ack = ack_of(&app.emulator, &envelope, 1).await;
    assert_eq!(
        ack.payload.expect("a reply")["text"],
        "How may we share your win?"
    );
    app.emulator.socket_redeliver(&envelope);
    ack_of(&app.emulator, &envelope, 2).await;
    app.assert_count("SELECT COUNT(*) FROM win_requests", 1)
        .await;
    app.stop().await;
}

#[tokio::test]
async fn a_forced_disconnect_reconnects_without_losing_or_doubling_an_envelope() {
    let app = socket_app(&["U0AMY", "U0BEN"]).await;
    let emulator = app.emulator.clone();
    let mut envelopes = Vec::new();
    let win = |n: usize| format!("shipped part {n}");

    // Two before, two right after Slack asks for a new connection.
    for n in 1..=2 {
        envelopes.push(emulator.socket_send_command("U0AMY", &format!("win {}", win(n))));
    }
    assert_eq!(emulator.socket_disconnect("refresh_requested"), 1);
    for n in 3..=4 {
        envelopes.push(emulator.socket_send_command("U0AMY", &format!("win {}", win(n))));
    }
    assert!(
        emulator.socket_wait_connected(2, WAIT).await,
        "a second connection was opened"
    );
    // Events too: de-duplicated by envelope and by event id.
    envelopes.push(emulator.socket_send_event(
        "Ev0SOCKET1",
        json!({ "type": "app_home_opened", "user": "U0BEN", "channel": "D0BEN", "tab": "home", "event_ts": "1799999999.000100" }),
    ));

    // A connection that drops right after delivering, before the ack can come back: the
    // envelope comes again on the next connection, and is acted on once.
    emulator.socket_drop_after_next_delivery();
    envelopes.push(emulator.socket_send_command("U0AMY", &format!("win {}", win(5))));
    assert!(
        emulator.socket_wait_connected(3, WAIT).await,
        "a third connection was opened after the drop"
    );
    envelopes.push(emulator.socket_send_command("U0AMY", &format!("win {}", win(6))));

    for id in &envelopes {
        ack_of(&emulator, id, 1).await;
    }
    for n in 1..=6 {
        let rows = rows(
            &app.db.url,
            &format!(
                "SELECT COUNT(*) AS n FROM win_requests WHERE text = '{}'",
                win(n)
            ),
        )
        .await;
        assert_eq!(rows[0]["n"], json!(1), "win {n} stored exactly once");
    }
    app.assert_count(
        "SELECT COUNT(*) FROM slack_events WHERE event_id = 'Ev0SOCKET1'",
        1,
    )
    .await;
    let seen = emulator.socket_envelopes();
    let dropped = seen.iter().find(|e| e.envelope_id == envelopes[5]).unwrap();
    assert_eq!(
        dropped
            .deliveries
            .iter()
            .map(|d| d.retry_attempt)
            .collect::<Vec<_>>(),
        vec![0, 1],
        "delivered again after the drop, with retry_attempt 1"
    );
    assert!(
        seen.iter().all(|e| !e.pending),
        "nothing left unacknowledged"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_bad_app_token_stops_the_start_with_a_clear_error() {
    let db = TestDb::new().await;
    let emulator = start_emulator().await;
    emulator.add_app_token(APP_TOKEN);
    let config = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(config.path().join("programs")).unwrap();
    let settings = |token: &str| {
        let mut s = Settings {
            config_dir: config.path().to_path_buf(),
            ..Settings::default()
        };
        s.server.bind = "127.0.0.1:0".into();
        s.database.url = db.url.clone();
        s.slack.api_base_url = emulator.base_url();
        s.slack.bot_token = Some(SecretString::from(BOT_TOKEN));
        s.slack.app_token = Some(SecretString::from(token));
        s.scheduler.enabled = false;
        s.outbox.workers = 0;
        s
    };
    let clock = Arc::new(ManualClock::new(default_now()));

    let err = Application::build(settings("xapp-1-unknown-token"), clock.clone())
        .await
        .err()
        .expect("an unknown app token stops the start");
    let text = format!("{err:#}");
    assert!(text.contains("SLACK_APP_TOKEN"), "{text}");
    assert!(text.contains("invalid_auth"), "{text}");
    assert!(text.contains("connections:write"), "{text}");
    assert_eq!(emulator.socket_connections_opened(), 0);

    // Settings refuse a bot token given as the app token before anything starts.
    let dir = tempfile::tempdir().unwrap();
    let env = |name: &str| match name {
        "SLACK_APP_TOKEN" => Some("xoxb-a-bot-token".to_string()),
        _ => None,
    };
    let err = Settings::load(dir.path(), &env).unwrap_err().to_string();
    assert!(err.contains("SLACK_APP_TOKEN"), "{err}");
    assert!(err.contains("xapp-"), "{err}");

    // The right token starts, without a signing secret.
    let app = Application::build(settings(APP_TOKEN), clock)
        .await
        .expect("a good app token starts");
    drop(app);
}

/// `/readyz` once its JSON answers `pred`, polled (the connection loop reacts on its own).
async fn readyz_until(app: &TestApp, what: &str, pred: impl Fn(u16, &Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let response = app.get("/readyz").await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        if pred(status, &body) {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/readyz never became {what}: last {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn readyz_reports_the_socket_and_turns_503_when_it_is_down_past_the_grace_period() {
    let app = socket_app(&["U0AMY"]).await;
    readyz_until(&app, "connected", |s, b| {
        s == 200 && b["socket"] == "connected"
    })
    .await;

    // Slack refuses the token from now on, and the connection drops: the loop keeps trying.
    assert!(app.emulator.remove_app_token(APP_TOKEN));
    assert_eq!(app.emulator.socket_drop(), 1);
    let body = readyz_until(&app, "reconnecting", |s, b| {
        s == 200 && b["socket"] == "reconnecting"
    })
    .await;
    assert_eq!(body["status"], "ready", "within the grace period: {body}");

    // Past the grace period (30 s by the app's clock): not ready, saying why.
    app.advance(chrono::Duration::seconds(31));
    let body = readyz_until(&app, "503", |s, _| s == 503).await;
    assert_eq!(body["error"], "unavailable");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("socket mode not connected"),
        "{body}"
    );

    // Slack takes the token again: the loop reconnects and the replica is ready again.
    app.emulator.add_app_token(APP_TOKEN);
    readyz_until(&app, "connected again", |s, b| {
        s == 200 && b["socket"] == "connected"
    })
    .await;

    // A routine refresh (`disconnect`) keeps it ready and connected.
    let opened = app.emulator.socket_connections_opened();
    app.emulator.socket_disconnect("refresh_requested");
    assert!(
        app.emulator.socket_wait_connected(opened + 1, WAIT).await,
        "a new connection after the refresh"
    );
    readyz_until(&app, "connected after a refresh", |s, b| {
        s == 200 && b["socket"] == "connected"
    })
    .await;
    app.stop().await;
}
