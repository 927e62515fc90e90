//! Installing into any workspace with OAuth v2 (docs/install.md): the install link and its
//! signed state, the callback storing the installation with its bot token encrypted, routing
//! by team (a second workspace's requests and DMs go with its own token), revocation
//! (`tokens_revoked`, `app_uninstalled`) stopping one workspace only, and the start-up refusal
//! without the key.

use crate::helpers::*;
use crate::pulses::{program, ONE_SCALE};
use pulseloop::slack::oauth::{OAuthKeys, BOT_SCOPES};
use secrecy::SecretString;
use serde_json::{json, Value};

pub(crate) const CLIENT_ID: &str = "4242.1717";
pub(crate) const CLIENT_SECRET: &str = "client-secret-for-tests";
pub(crate) const KEY: &str = "test encryption key, 32 bytes or more";
const SECOND: &str = "T0SECOND";
const BERLIN: &str = "Europe/Berlin";
/// A member of the default workspace's program, and one of the second workspace's.
const ALICE: &str = "U0ALICE1";
const BRUNO: &str = "U0BRUNO1";

/// A program `id` of workspace `team` with one participant in Berlin.
pub(crate) fn program_in_team(id: &str, team: &str, member: &str) -> String {
    program(&[(member, "participant", BERLIN)], "", ONE_SCALE).replacen(
        "id = \"pilot\"",
        &format!("id = \"{id}\"\nteam_id = \"{team}\""),
        1,
    )
}

fn second_program() -> String {
    program_in_team("second", SECOND, BRUNO)
}

/// OAuth configured: the client id and secret, and the key that seals the tokens.
pub(crate) fn with_oauth(s: &mut pulseloop::config::Settings) {
    s.slack.client_id = Some(CLIENT_ID.into());
    s.slack.client_secret = Some(SecretString::from(CLIENT_SECRET));
    s.admin.encryption_key = Some(SecretString::from(KEY));
}

/// The app with OAuth configured (client id and secret, the key) and two programs: `pilot`
/// in the default workspace, `second` in T0SECOND, which the emulator knows but pulseloop is
/// not installed in yet.
async fn oauth_app() -> TestApp {
    let emulator = start_emulator().await;
    emulator.set_oauth_client(CLIENT_ID, CLIENT_SECRET);
    emulator.add_team(SECOND, "Second Co");
    TestAppBuilder::default()
        .emulator(emulator)
        .user(ALICE, BERLIN)
        .user(BRUNO, BERLIN)
        .program(
            "pilot.toml",
            &program(&[(ALICE, "participant", BERLIN)], "", ONE_SCALE),
        )
        .program("second.toml", &second_program())
        .now(sunday_noon())
        .settings(with_oauth)
        .spawn()
        .await
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .expect("a redirect")
        .to_str()
        .unwrap()
        .to_string()
}

fn query_of(url: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str(url.split_once('?').expect("a query").1).unwrap()
}

fn param(url: &str, key: &str) -> Option<String> {
    query_of(url)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// `GET /slack/install`: where it sends the installer.
async fn install_link(app: &TestApp) -> String {
    let response = no_redirects()
        .get(format!("{}/slack/install", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    location(&response)
}

/// Follows the install link through the emulator's authorize page (approved for `team`):
/// the callback URL Slack sends the installer back to.
async fn approve(link: &str, team: &str) -> String {
    let response = no_redirects()
        .get(format!("{link}&team={team}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302, "the authorize page approves");
    location(&response)
}

/// The whole install into `team`: the callback's answer.
pub(crate) async fn install(app: &TestApp, team: &str) -> reqwest::Response {
    let callback = approve(&install_link(app).await, team).await;
    no_redirects().get(callback).send().await.unwrap()
}

/// The bot token Slack handed out for `team` (read back from the emulator's record).
pub(crate) fn token_of(app: &TestApp, team: &str) -> String {
    app.emulator
        .calls_to("oauth.v2.access")
        .into_iter()
        .find(|c| c.response["team"]["id"] == team)
        .and_then(|c| c.response["access_token"].as_str().map(String::from))
        .expect("oauth.v2.access answered with a token")
}

async fn installations(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM installations").await
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON error"))
}

#[tokio::test]
async fn the_install_link_asks_slack_for_the_bot_scopes_with_a_signed_state() {
    let app = oauth_app().await;
    let link = install_link(&app).await;
    assert!(
        link.starts_with(&format!(
            "http://{}/oauth/v2/authorize?",
            app.emulator.addr()
        )),
        "{link}"
    );
    assert_eq!(param(&link, "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(param(&link, "scope"), Some(BOT_SCOPES.join(",")));
    assert_eq!(
        param(&link, "redirect_uri"),
        Some(format!("{}/slack/oauth/callback", app.base_url))
    );
    let state = param(&link, "state").expect("a state");
    let keys = OAuthKeys::from_secret(&SecretString::from(KEY));
    keys.verify_state(&state, app.now())
        .expect("signed with the server key");
    app.stop().await;
}

#[tokio::test]
async fn a_bad_expired_or_replayed_state_is_refused_and_nothing_is_stored() {
    let app = oauth_app().await;
    let code = app.emulator.issue_oauth_code(SECOND, "Second Co");
    let callback = |state: &str, code: &str| {
        format!(
            "{}/slack/oauth/callback?{}",
            app.base_url,
            serde_urlencoded::to_string([("code", code), ("state", state)]).unwrap()
        )
    };

    // Not a state at all, and one signed with another key.
    let (status, body) = error_of(
        app.http
            .get(callback("nonsense", &code))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")));
    assert!(
        body["detail"].as_str().unwrap().contains("malformed"),
        "{body}"
    );
    let foreign = OAuthKeys::from_secret(&SecretString::from("another key")).new_state(app.now());
    let (status, body) = error_of(
        app.http
            .get(callback(&foreign, &code))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["detail"].as_str().unwrap().contains("signature"),
        "{body}"
    );
    // No state: refused too.
    let bare = format!("{}/slack/oauth/callback?code={code}", app.base_url);
    assert_eq!(app.http.get(bare).send().await.unwrap().status(), 400);

    // A real state, used after its 10 minutes.
    let link = install_link(&app).await;
    let callback_url = approve(&link, SECOND).await;
    app.advance(chrono::Duration::minutes(11));
    let (status, body) = error_of(app.http.get(&callback_url).send().await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    assert_eq!(installations(&app).await, 0, "nothing stored");
    assert!(
        app.emulator.calls_to("oauth.v2.access").is_empty(),
        "no code was exchanged for a refused state"
    );

    // A good one works once; the same callback URL a second time is refused.
    let callback_url = approve(&install_link(&app).await, SECOND).await;
    let first = app.http.get(&callback_url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let (status, body) = error_of(app.http.get(&callback_url).send().await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(
        body["detail"].as_str().unwrap().contains("used already"),
        "{body}"
    );
    assert_eq!(installations(&app).await, 1);
    assert_eq!(app.emulator.calls_to("oauth.v2.access").len(), 1);

    // A code Slack refuses (already used) stores nothing either.
    let state = param(&install_link(&app).await, "state").unwrap();
    let used_code = param(&callback_url, "code").unwrap();
    let (status, body) = error_of(
        app.http
            .get(callback(&state, &used_code))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["detail"].as_str().unwrap().contains("invalid_code"),
        "{body}"
    );
    assert_eq!(installations(&app).await, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_good_callback_stores_the_installation_with_its_token_encrypted() {
    let app = oauth_app().await;
    let response = install(&app, SECOND).await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains("installed into Second Co"), "{page}");

    let token = token_of(&app, SECOND);
    let stored = rows(
        &app.db.url,
        "SELECT team_id, team_name, bot_user_id, scopes, installed_by, revoked_at FROM installations",
    )
    .await;
    assert_eq!(stored.len(), 1);
    let row = &stored[0];
    assert_eq!(row["team_id"], SECOND);
    assert_eq!(row["team_name"], "Second Co");
    assert_eq!(row["scopes"], BOT_SCOPES.join(","));
    assert!(row["bot_user_id"].as_str().unwrap().starts_with('U'));
    assert!(row["installed_by"].as_str().unwrap().starts_with('U'));
    assert_eq!(row["revoked_at"], Value::Null);

    // The token's secret part must appear nowhere in what the database holds.
    let secret_tail = token.rsplit('-').next().unwrap().to_string();
    assert!(secret_tail.len() >= 16);
    if app.db.url.starts_with("sqlite:") {
        let path = app.db.url.trim_start_matches("sqlite://").to_string();
        let mut checked = 0;
        for file in [path.clone(), format!("{path}-wal"), format!("{path}-shm")] {
            if let Ok(bytes) = std::fs::read(&file) {
                checked += bytes.len();
                for needle in [token.as_bytes(), secret_tail.as_bytes()] {
                    assert!(
                        !bytes.windows(needle.len()).any(|w| w == needle),
                        "the bot token is readable in {file}"
                    );
                }
            }
        }
        assert!(checked > 0, "the database files were read");
    } else {
        let columns = rows(
            &app.db.url,
            "SELECT table_name, column_name FROM information_schema.columns
             WHERE table_schema = 'public' AND data_type IN ('text', 'character varying')",
        )
        .await;
        assert!(columns.len() > 20, "every text column is looked at");
        for c in &columns {
            let (table, column) = (
                c["table_name"].as_str().unwrap(),
                c["column_name"].as_str().unwrap(),
            );
            let sql = format!(
                "SELECT COUNT(*) AS n FROM \"{table}\" WHERE \"{column}\" LIKE '%{secret_tail}%'"
            );
            let found = rows(&app.db.url, &sql).await;
            assert_eq!(
                found[0]["n"], 0,
                "the bot token is readable in {table}.{column}"
            );
        }
    }
    app.stop().await;
}

/// A signed `/pulse` command typed in workspace `team`.
pub(crate) async fn command_in(
    app: &TestApp,
    team: &str,
    user: &str,
    text: &str,
) -> reqwest::Response {
    let form = serde_urlencoded::to_string([
        ("command", "/pulse"),
        ("text", text),
        ("user_id", user),
        ("team_id", team),
        ("channel_id", "D0TEST"),
        ("response_url", "https://hooks.slack.com/commands/T0/1/x"),
    ])
    .unwrap();
    app.post_signed("/slack/commands", FORM, form.as_bytes(), app.sign_now())
        .await
}

/// The tokens the DMs to `user` were posted with.
pub(crate) fn dm_tokens(app: &TestApp, user: &str) -> Vec<String> {
    app.emulator
        .calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| c.params["channel"] == user && c.response["ok"] == true)
        .filter_map(|c| c.token)
        .collect()
}

#[tokio::test]
async fn the_new_workspace_is_served_and_its_dms_go_out_with_its_own_token() {
    let app = oauth_app().await;
    assert_eq!(install(&app, SECOND).await.status(), 200);
    let token = token_of(&app, SECOND);

    let reply = command_in(&app, SECOND, BRUNO, "help").await;
    assert_eq!(reply.status(), 200);
    let body: Value = reply.json().await.unwrap();
    assert!(
        !body.to_string().contains("no longer installed"),
        "the installed workspace is served: {body}"
    );

    app.send_monday_pulse().await;
    assert_eq!(dm_tokens(&app, BRUNO), vec![token.clone()], "its own token");
    assert_eq!(
        dm_tokens(&app, ALICE),
        vec![BOT_TOKEN.to_string()],
        "the default workspace keeps the default token"
    );
    let teams = rows(
        &app.db.url,
        "SELECT team_id, COUNT(*) AS n FROM outbox WHERE method = 'chat.postMessage'
         GROUP BY team_id ORDER BY team_id",
    )
    .await;
    assert_eq!(
        teams,
        vec![
            [
                ("team_id".to_string(), json!("")),
                ("n".to_string(), json!(1))
            ]
            .into(),
            [
                ("team_id".to_string(), json!(SECOND)),
                ("n".to_string(), json!(1))
            ]
            .into(),
        ],
        "each outbox row belongs to its workspace"
    );
    app.stop().await;
}

fn revocation(team: &str, event: Value, id: &str) -> Value {
    json!({
        "type": "event_callback",
        "team_id": team,
        "api_app_id": "A0PULSELOOP",
        "event_id": id,
        "event_time": 1_800_000_000,
        "event": event,
    })
}

#[tokio::test]
async fn tokens_revoked_stops_that_workspace_and_the_other_keeps_going() {
    let app = oauth_app().await;
    assert_eq!(install(&app, SECOND).await.status(), 200);
    let token = token_of(&app, SECOND);
    app.send_monday_pulse().await;
    assert_eq!(dm_tokens(&app, BRUNO).len(), 1);
    // Served while installed (this process now remembers the installation).
    // (Another text than the later command's: the same body signed in the same second
    // would be a replay.)
    let served = command_in(&app, SECOND, BRUNO, "help me")
        .await
        .text()
        .await
        .unwrap();
    assert!(!served.contains("no longer installed"), "{served}");

    let event =
        json!({ "type": "tokens_revoked", "tokens": { "oauth": [], "bot": ["U0SECONDBOT"] } });
    let answer = app
        .send_event(&revocation(SECOND, event, "Ev0REVOKED1"))
        .await;
    assert_eq!(answer.status(), 200);
    app.assert_count(
        "SELECT COUNT(*) FROM installations WHERE revoked_at IS NOT NULL AND revoked_reason LIKE '%tokens_revoked%'",
        1,
    )
    .await;

    // A week later: the default workspace gets its pulse, the revoked one nothing, and no
    // call is made with its dead token.
    let calls_before = app.emulator.calls().len();
    app.run_at(monday_ten_berlin() + chrono::Duration::weeks(1))
        .await;
    assert_eq!(
        dm_tokens(&app, ALICE).len(),
        2,
        "the other workspace keeps going"
    );
    assert_eq!(
        dm_tokens(&app, BRUNO).len(),
        1,
        "nothing more to the revoked one"
    );
    let with_dead_token = app.emulator.calls()[calls_before..]
        .iter()
        .filter(|c| c.token.as_deref() == Some(token.as_str()))
        .count();
    assert_eq!(with_dead_token, 0, "no call with a revoked token");
    let stopped = app
        .count(
            "SELECT COUNT(*) FROM outbox WHERE team_id = 'T0SECOND' AND status IN ('failed', 'cancelled')
               AND last_error = 'workspace_revoked: T0SECOND (tokens_revoked); not sent'",
        )
        .await;
    assert!(stopped >= 1, "the new week's DM is stopped with its reason");
    app.assert_count(
        "SELECT COUNT(*) FROM outbox WHERE team_id = 'T0SECOND' AND status IN ('pending', 'in_flight')",
        0,
    )
    .await;

    // Its commands get a polite ephemeral refusal.
    let reply: Value = command_in(&app, SECOND, BRUNO, "help")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reply["response_type"], "ephemeral");
    assert!(reply["text"]
        .as_str()
        .unwrap()
        .contains("no longer installed"));
    app.stop().await;
}

#[tokio::test]
async fn app_uninstalled_parks_the_workspaces_queued_dms_and_a_reinstall_serves_it_again() {
    let app = oauth_app().await;
    assert_eq!(install(&app, SECOND).await.status(), 200);
    // The pulse is planned and queued, not sent yet.
    app.clock.set(monday_ten_berlin());
    app.tick().await;
    app.assert_count(
        "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND method = 'chat.postMessage'",
        2,
    )
    .await;

    let event = json!({ "type": "app_uninstalled" });
    let answer = app
        .send_event(&revocation(SECOND, event, "Ev0UNINSTALL"))
        .await;
    assert_eq!(answer.status(), 200);
    app.assert_count(
        "SELECT COUNT(*) FROM outbox WHERE team_id = 'T0SECOND' AND status = 'cancelled'
           AND last_error LIKE 'workspace_revoked: T0SECOND (app_uninstalled)%'",
        1,
    )
    .await;
    app.drain_outbox().await;
    assert_eq!(
        dm_tokens(&app, ALICE).len(),
        1,
        "the default workspace's DM went"
    );
    assert!(
        dm_tokens(&app, BRUNO).is_empty(),
        "the uninstalled one's did not"
    );
    let refused = command_in(&app, SECOND, BRUNO, "help me")
        .await
        .text()
        .await
        .unwrap();
    assert!(refused.contains("no longer installed"), "{refused}");

    // Installed again: served again, with the new token.
    assert_eq!(install(&app, SECOND).await.status(), 200);
    app.assert_count(
        "SELECT COUNT(*) FROM installations WHERE revoked_at IS NULL",
        1,
    )
    .await;
    let reply: Value = command_in(&app, SECOND, BRUNO, "help")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        !reply.to_string().contains("no longer installed"),
        "{reply}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_server_refuses_to_start_with_installations_but_no_key() {
    let app = oauth_app().await;
    assert_eq!(install(&app, SECOND).await.status(), 200);
    let (db, emulator) = (app.db.clone(), app.emulator.clone());
    app.stop().await;

    let config = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(config.path().join("programs")).unwrap();
    let mut settings = pulseloop::config::Settings {
        config_dir: config.path().to_path_buf(),
        ..Default::default()
    };
    settings.server.bind = "127.0.0.1:0".into();
    settings.database.url = db.url.clone();
    settings.slack.api_base_url = emulator.base_url();
    settings.slack.bot_token = Some(SecretString::from(BOT_TOKEN));
    settings.slack.signing_secret = Some(SecretString::from(SIGNING_SECRET));
    let clock = pulseloop::clock::ManualClock::new(default_now());
    let refused = pulseloop::startup::Application::build(
        settings.clone(),
        std::sync::Arc::new(clock.clone()),
    )
    .await
    .err()
    .expect("no key: refused");
    let message = format!("{refused:#}");
    assert!(
        message.contains("PULSELOOP_ENCRYPTION_KEY") && message.contains(SECOND),
        "{message}"
    );

    // With the key it starts.
    settings.admin.encryption_key = Some(SecretString::from(KEY));
    let app = pulseloop::startup::Application::build(settings, std::sync::Arc::new(clock))
        .await
        .expect("with the key it starts");
    drop(app);
}

#[tokio::test]
async fn installing_is_off_without_client_credentials_or_without_the_key() {
    let app = spawn_app().await;
    let (status, body) = error_of(app.get("/slack/install").await).await;
    assert_eq!(status, 404);
    assert!(
        body["detail"].as_str().unwrap().contains("SLACK_CLIENT_ID"),
        "{body}"
    );
    app.stop().await;

    let app = TestAppBuilder::default()
        .settings(|s| {
            s.slack.client_id = Some(CLIENT_ID.into());
            s.slack.client_secret = Some(SecretString::from(CLIENT_SECRET));
        })
        .spawn()
        .await;
    let (status, body) = error_of(app.get("/slack/install").await).await;
    assert_eq!(status, 503);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("PULSELOOP_ENCRYPTION_KEY"),
        "{body}"
    );
    let (status, _) = error_of(app.get("/slack/oauth/callback?code=x&state=y").await).await;
    assert_eq!(status, 503, "nothing can be stored without the key");
    app.assert_count("SELECT COUNT(*) FROM installations", 0)
        .await;
    app.stop().await;
}
