//! OAuth-only deployments (docs/install.md, "Three modes"): no SLACK_BOT_TOKEN, OAuth
//! configured. No sandbox starts; only installed workspaces are served, each with its own
//! token; a workspace without an installation gets nothing (a slash command is told how to
//! install, events and clicks are acknowledged and ignored, nothing is stored), its outbox
//! rows fail without a call, and a program's sends wait until its workspace is installed.
//! Over HTTP and over Socket Mode.

use crate::helpers::*;
use crate::oauth::{
    command_in, dm_tokens, install, program_in_team, token_of, with_oauth, CLIENT_ID, CLIENT_SECRET,
};
use crate::pulses::{program, ONE_SCALE};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::time::Duration;

const ALPHA: &str = "T0ALPHA";
const BRAVO: &str = "T0BRAVO";
const BERLIN: &str = "Europe/Berlin";
/// A member of workspace A's program, and someone typing in the uninstalled workspace B.
const ALICE: &str = "U0ALICE1";
const BOB: &str = "U0BOB001";
const APP_TOKEN: &str = "xapp-1-A0PULSELOOP-1234-oauthonlysocket";

/// The program of workspace A (`team_id = "T0ALPHA"`).
fn alpha_program() -> String {
    program_in_team("alpha", ALPHA, ALICE)
}

fn oauth_only(s: &mut pulseloop::config::Settings) {
    s.slack.bot_token = None;
    with_oauth(s);
}

async fn emulator_with_teams() -> slack_emulator::Emulator {
    let emulator = start_emulator().await;
    emulator.set_oauth_client(CLIENT_ID, CLIENT_SECRET);
    emulator.add_team(ALPHA, "Alpha Co");
    emulator.add_team(BRAVO, "Bravo Co");
    emulator
}

/// The app with OAuth configured and no bot token, A's program, nothing installed yet.
async fn oauth_only_app() -> TestApp {
    TestAppBuilder::default()
        .emulator(emulator_with_teams().await)
        .user(ALICE, BERLIN)
        .user(BOB, BERLIN)
        .program("alpha.toml", &alpha_program())
        .now(sunday_noon())
        .settings(oauth_only)
        .spawn()
        .await
}

/// What the workspace of program `alpha` is, by `GET /api/v1/programs` and `…/config`.
async fn workspace_of_alpha(app: &TestApp) -> (Value, Value) {
    let list: Value = app
        .admin_get("/api/v1/programs")
        .await
        .json()
        .await
        .unwrap();
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "alpha")
        .expect("alpha is listed")["workspace"]
        .clone();
    let config: Value = app
        .admin_get("/api/v1/programs/alpha/config")
        .await
        .json()
        .await
        .unwrap();
    (listed, config["workspace"].clone())
}

#[tokio::test]
async fn installed_workspaces_only_are_served_each_with_its_own_token() {
    let app = oauth_only_app().await;
    // No sandbox: the settings still point at the emulator given, not at a sandbox's.
    assert!(!app.state.settings.slack.sandbox, "no sandbox started");
    assert_eq!(
        app.state.settings.slack.api_base_url,
        app.emulator.base_url()
    );
    assert!(app.state.pulses.teams.oauth_only());

    // Before A installs: the pulse is planned, but waits; nothing is queued or sent.
    app.run_at(monday_ten_berlin()).await;
    app.assert_count("SELECT COUNT(*) FROM outbox", 0).await;
    app.assert_count(
        "SELECT COUNT(*) FROM deliveries WHERE state = 'scheduled'",
        1,
    )
    .await;
    let (listed, config) = workspace_of_alpha(&app).await;
    for w in [&listed, &config] {
        assert_eq!(w["status"], "not_installed", "{w}");
        assert_eq!(w["team_id"], ALPHA, "{w}");
        assert!(
            w["detail"]
                .as_str()
                .unwrap()
                .contains("workspace not installed"),
            "{w}"
        );
    }
    assert!(app.emulator.calls_to("chat.postMessage").is_empty());

    // A installs: the waiting pulse goes out at the next tick, with A's token.
    assert_eq!(install(&app, ALPHA).await.status(), 200);
    let token = token_of(&app, ALPHA);
    app.run_at(monday_ten_berlin() + chrono::Duration::minutes(1))
        .await;
    assert_eq!(dm_tokens(&app, ALICE), vec![token.clone()], "A's own token");
    let (listed, _) = workspace_of_alpha(&app).await;
    assert_eq!(listed["status"], "installed", "{listed}");

    // A's commands are served.
    let reply: Value = command_in(&app, ALPHA, ALICE, "help")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        !reply.to_string().contains("not installed"),
        "A is served: {reply}"
    );

    // B has no installation: its command is told how to install, and nothing is stored.
    let counts = [
        "SELECT COUNT(*) FROM slack_events",
        "SELECT COUNT(*) FROM outbox",
        "SELECT COUNT(*) FROM members",
        "SELECT COUNT(*) FROM audit_log",
        "SELECT COUNT(*) FROM workspaces WHERE team_id = 'T0BRAVO'",
    ];
    let mut before = Vec::new();
    for sql in counts {
        before.push(app.count(sql).await);
    }
    let calls_before = app.emulator.calls().len();
    let reply = command_in(&app, BRAVO, BOB, "help").await;
    assert_eq!(reply.status(), 200);
    let reply: Value = reply.json().await.unwrap();
    assert_eq!(reply["response_type"], "ephemeral");
    let text = reply["text"].as_str().unwrap();
    assert!(
        text.contains("not installed in this workspace") && text.contains("/slack/install"),
        "{text}"
    );
    // An event and a click from B: acknowledged (200, so Slack does not retry), ignored.
    let event = json!({
        "type": "event_callback", "team_id": BRAVO, "api_app_id": "A0PULSELOOP",
        "event_id": "Ev0BRAVO01", "event_time": 1_800_000_000,
        "event": { "type": "app_home_opened", "user": BOB, "tab": "home" },
    });
    assert_eq!(app.send_event(&event).await.status(), 200);
    let click = json!({
        "type": "block_actions", "team": { "id": BRAVO }, "user": { "id": BOB, "team_id": BRAVO },
        "trigger_id": "1.2.bravo", "actions": [],
    });
    assert_eq!(app.send_interaction(&click).await.status(), 200);
    for (sql, was) in counts.iter().zip(&before) {
        assert_eq!(app.count(sql).await, *was, "nothing stored for B: {sql}");
    }
    assert_eq!(
        app.emulator.calls().len(),
        calls_before,
        "no Slack call for B, with any token"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_not_installed_reply_gives_the_whole_install_link_when_the_public_address_is_known() {
    let app = TestAppBuilder::default()
        .emulator(emulator_with_teams().await)
        .program("alpha.toml", &alpha_program())
        .settings(|s| {
            oauth_only(s);
            s.slack.redirect_url = Some("https://pulse.example.com/slack/oauth/callback".into());
        })
        .spawn()
        .await;
    let reply: Value = command_in(&app, BRAVO, BOB, "help")
        .await
        .json()
        .await
        .unwrap();
    let text = reply["text"].as_str().unwrap();
    assert!(
        text.contains("not installed in this workspace")
            && text.contains("https://pulse.example.com/slack/install"),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn outbox_rows_of_a_workspace_without_installation_fail_without_a_call() {
    let app = oauth_only_app().await;
    assert_eq!(install(&app, ALPHA).await.status(), 200);
    // A row of B (not installed), and a row of no workspace (there is no default one).
    app.enqueue_dm("to-bravo", BOB, "hello B").await;
    app.enqueue_dm("to-nobody", ALICE, "hello?").await;
    exec(
        &app.db.url,
        "UPDATE outbox SET team_id = 'T0BRAVO' WHERE dedupe_key = 'to-bravo'",
    )
    .await;
    let step = app.drain_outbox().await;
    assert_eq!(step.failed, 2, "{step:?}");
    assert!(
        app.emulator.calls_to("chat.postMessage").is_empty(),
        "never sent, with A's token or any"
    );
    app.assert_count(
        "SELECT COUNT(*) FROM outbox WHERE dedupe_key = 'to-bravo' AND status = 'failed'
           AND last_error = 'workspace_not_installed: T0BRAVO has no installation (OAuth-only mode); not sent'",
        1,
    )
    .await;
    app.assert_count(
        "SELECT COUNT(*) FROM outbox WHERE dedupe_key = 'to-nobody' AND status = 'failed'
           AND last_error LIKE 'workspace_not_installed: the row names no workspace%'",
        1,
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn every_program_must_name_its_workspace_in_oauth_only_mode() {
    let config = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(config.path().join("programs")).unwrap();
    std::fs::write(
        config.path().join("programs/pilot.toml"),
        program(&[(ALICE, "participant", BERLIN)], "", ONE_SCALE),
    )
    .unwrap();
    let db = TestDb::new().await;
    let emulator = emulator_with_teams().await;
    let mut settings = pulseloop::config::Settings {
        config_dir: config.path().to_path_buf(),
        ..Default::default()
    };
    settings.server.bind = "127.0.0.1:0".into();
    settings.database.url = db.url.clone();
    settings.slack.api_base_url = emulator.base_url();
    settings.slack.signing_secret = Some(SecretString::from(SIGNING_SECRET));
    oauth_only(&mut settings);
    let clock = pulseloop::clock::ManualClock::new(default_now());
    let refused = pulseloop::startup::Application::build(settings, std::sync::Arc::new(clock))
        .await
        .err()
        .expect("a program without team_id is refused");
    let message = format!("{refused:#}");
    assert!(
        message.contains("team_id") && message.contains("program 'pilot' names no workspace"),
        "{message}"
    );
}

/// Socket Mode with OAuth only: an app-level token and no bot token. Envelopes carry their
/// team id and are routed like HTTP requests.
#[tokio::test]
async fn socket_mode_routes_envelopes_by_workspace_without_a_bot_token() {
    let emulator = emulator_with_teams().await;
    emulator.add_app_token(APP_TOKEN);
    let app = TestAppBuilder::default()
        .emulator(emulator)
        .user(ALICE, BERLIN)
        .user(BOB, BERLIN)
        .program("alpha.toml", &alpha_program())
        .now(sunday_noon())
        .settings(|s| {
            oauth_only(s);
            s.slack.app_token = Some(SecretString::from(APP_TOKEN));
            s.slack.signing_secret = None;
        })
        .spawn()
        .await;
    let wait = Duration::from_secs(15);
    assert!(app.emulator.socket_wait_connected(1, wait).await);
    assert_eq!(install(&app, ALPHA).await.status(), 200);

    let command_from = |team: &str, user: &str| {
        let mut payload: serde_json::Map<String, Value> = app
            .peer
            .slash_command(user, "D0TEST", "help")
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        payload.insert("team_id".into(), json!(team));
        json!({ "type": "slash_commands", "payload": payload })
    };
    let mut replies = Vec::new();
    for (team, user) in [(BRAVO, BOB), (ALPHA, ALICE)] {
        let injected: Value = app
            .http
            .post(format!(
                "{}/_control/socket/envelopes",
                app.emulator.base_url().trim_end_matches("/api")
            ))
            .json(&command_from(team, user))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = injected["envelope_id"].as_str().expect("an envelope id");
        let ack = app
            .emulator
            .socket_wait_ack(id, 1, wait)
            .await
            .expect("the envelope is acknowledged");
        replies.push(ack.payload.unwrap_or(Value::Null).to_string());
    }
    assert!(
        replies[0].contains("not installed in this workspace"),
        "B: {}",
        replies[0]
    );
    assert!(
        !replies[1].contains("not installed"),
        "A is served: {}",
        replies[1]
    );
    app.assert_count("SELECT COUNT(*) FROM outbox", 0).await;
    app.stop().await;
}

/// An answer's DM update is queued for the answer's workspace, like every other outbox row:
/// the answer's own writes (one statement on PostgreSQL, one trip of five on SQLite) name it
/// too. Before they did not on PostgreSQL, and in OAuth-only mode the update then failed as
/// "not installed".
#[tokio::test]
async fn an_answers_dm_update_is_queued_for_its_workspace_and_sent() {
    let app = oauth_only_app().await;
    assert_eq!(install(&app, ALPHA).await.status(), 200);
    app.run_at(monday_ten_berlin()).await;
    let dm = app.first_dm(ALICE);
    let (block_id, action_id, value) = crate::messages::find_action(&dm.blocks, "answer:4");
    let mut click =
        app.peer
            .block_actions(ALICE, &dm.channel, &dm.ts, &action_id, &block_id, &value);
    click["team"] = json!({ "id": ALPHA });
    click["user"]["team_id"] = json!(ALPHA);
    assert_eq!(app.send_interaction(&click).await.status(), 200);
    app.assert_count("SELECT COUNT(*) FROM responses", 1).await;
    app.assert_count(
        "SELECT COUNT(*) FROM outbox WHERE method = 'chat.update' AND team_id = 'T0ALPHA'",
        1,
    )
    .await;
    app.drain_outbox().await;
    app.assert_count(
        "SELECT COUNT(*) FROM outbox WHERE method = 'chat.update' AND status = 'sent'",
        1,
    )
    .await;
    let updated = app.first_dm(ALICE);
    assert!(updated.edits > 0, "the DM shows the answer: {updated:?}");
    app.stop().await;
}
