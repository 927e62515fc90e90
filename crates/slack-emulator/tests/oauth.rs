//! OAuth v2 install against the emulator: the authorize page checks the client id, scopes and
//! redirect URL and redirects with a code and the app's state; oauth.v2.access exchanges the
//! code once, for the redirect URL it was issued for, with the right secret; a second
//! workspace gets its own token; revoking a workspace's tokens makes Slack refuse them.

use serde_json::Value;
use slack_emulator::{Emulator, EmulatorConfig};

const CLIENT_ID: &str = "111.222";
const CLIENT_SECRET: &str = "s3cret";
const REDIRECT: &str = "http://127.0.0.1:9/slack/oauth/callback";

async fn start() -> Emulator {
    slack_emulator::install_crypto_provider();
    let emu = Emulator::start(EmulatorConfig::default())
        .await
        .expect("emulator starts");
    emu.set_oauth_client(CLIENT_ID, CLIENT_SECRET);
    emu.set_oauth_redirect_url("http://127.0.0.1:9/");
    emu
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The authorize page's answer: status and Location (if any).
async fn authorize(emu: &Emulator, query: &[(&str, &str)]) -> (u16, Option<String>) {
    let response = no_redirects()
        .get(emu.oauth_authorize_url())
        .query(query)
        .send()
        .await
        .expect("authorize answers");
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().expect("ascii").to_string());
    (response.status().as_u16(), location)
}

fn good_query(team: Option<&str>) -> Vec<(&str, &str)> {
    let mut q = vec![
        ("client_id", CLIENT_ID),
        ("scope", "chat:write,im:write,commands"),
        ("redirect_uri", REDIRECT),
        ("state", "st-123"),
    ];
    if let Some(team) = team {
        q.push(("team", team));
    }
    q
}

fn code_of(location: &str) -> String {
    let query = location.split_once('?').expect("a query").1;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).expect("form");
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("state").as_deref(), Some("st-123"), "state comes back");
    get("code").expect("a code")
}

async fn exchange(emu: &Emulator, code: &str, secret: &str, redirect: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{}/oauth.v2.access", emu.base_url()))
        .form(&[
            ("client_id", CLIENT_ID),
            ("client_secret", secret),
            ("code", code),
            ("redirect_uri", redirect),
        ])
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json")
}

async fn auth_test(emu: &Emulator, token: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{}/auth.test", emu.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn authorize_redirects_with_a_code_that_is_exchanged_once() {
    let emu = start().await;
    let (status, location) = authorize(&emu, &good_query(None)).await;
    assert_eq!(status, 302);
    let location = location.expect("a Location");
    assert!(location.starts_with(REDIRECT), "{location}");
    let code = code_of(&location);

    let answer = exchange(&emu, &code, CLIENT_SECRET, REDIRECT).await;
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["token_type"], "bot");
    assert_eq!(answer["scope"], "chat:write,im:write,commands");
    assert_eq!(answer["team"]["id"], "T0SANDBOX");
    let token = answer["access_token"].as_str().expect("token");
    assert!(token.starts_with("xoxb-"));
    assert_eq!(auth_test(&emu, token).await["team_id"], "T0SANDBOX");

    let again = exchange(&emu, &code, CLIENT_SECRET, REDIRECT).await;
    assert_eq!(again["error"], "invalid_code", "codes are single use");
}

#[tokio::test]
async fn the_exchange_refuses_a_wrong_secret_a_wrong_redirect_and_an_unknown_code() {
    let emu = start().await;
    let code = code_of(
        &authorize(&emu, &good_query(None))
            .await
            .1
            .expect("location"),
    );
    let wrong_secret = exchange(&emu, &code, "nope", REDIRECT).await;
    assert_eq!(wrong_secret["error"], "bad_client_secret");
    let wrong_redirect = exchange(&emu, &code, CLIENT_SECRET, "http://127.0.0.1:9/other").await;
    assert_eq!(wrong_redirect["error"], "bad_redirect_uri");
    let unknown = exchange(&emu, "1.2.3", CLIENT_SECRET, REDIRECT).await;
    assert_eq!(unknown["error"], "invalid_code");
    // The refusals did not use the code up.
    assert_eq!(
        exchange(&emu, &code, CLIENT_SECRET, REDIRECT).await["ok"],
        true
    );
}

#[tokio::test]
async fn the_authorize_page_checks_client_scopes_redirect_and_team() {
    let emu = start().await;
    let mut bad_client = good_query(None);
    bad_client[0] = ("client_id", "999.999");
    assert_eq!(authorize(&emu, &bad_client).await, (400, None));
    let mut no_scope = good_query(None);
    no_scope[1] = ("scope", "");
    assert_eq!(authorize(&emu, &no_scope).await, (400, None));
    let mut bad_scope = good_query(None);
    bad_scope[1] = ("scope", "chat:write,<script>");
    assert_eq!(authorize(&emu, &bad_scope).await, (400, None));
    let mut elsewhere = good_query(None);
    elsewhere[2] = ("redirect_uri", "https://evil.example/cb");
    assert_eq!(authorize(&emu, &elsewhere).await, (400, None));
    assert_eq!(
        authorize(&emu, &good_query(Some("T0NOPE"))).await,
        (400, None)
    );
}

#[tokio::test]
async fn a_second_workspace_gets_its_own_token_and_revoking_it_leaves_the_first() {
    let emu = start().await;
    let created = reqwest::Client::new()
        .post(format!("http://{}/_control/teams", emu.addr()))
        .json(&serde_json::json!({ "team_id": "T0SECOND", "team_name": "Second Co" }))
        .send()
        .await
        .expect("control answers");
    assert_eq!(created.status().as_u16(), 201);
    let code = code_of(
        &authorize(&emu, &good_query(Some("T0SECOND")))
            .await
            .1
            .expect("location"),
    );
    let answer = exchange(&emu, &code, CLIENT_SECRET, REDIRECT).await;
    assert_eq!(answer["team"]["id"], "T0SECOND");
    assert_eq!(answer["team"]["name"], "Second Co");
    let token = answer["access_token"].as_str().expect("token").to_string();
    let who = auth_test(&emu, &token).await;
    assert_eq!(who["team_id"], "T0SECOND");
    assert_ne!(
        who["user_id"], "U0PULSEBOT",
        "its own bot user in the new workspace"
    );

    let revoked = reqwest::Client::new()
        .post(format!(
            "http://{}/_control/teams/T0SECOND/revoke",
            emu.addr()
        ))
        .send()
        .await
        .expect("control answers")
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(revoked["revoked"], 1);
    assert_eq!(auth_test(&emu, &token).await["error"], "token_revoked");
    assert_eq!(
        auth_test(&emu, "xoxb-sandbox").await["team_id"],
        "T0SANDBOX",
        "the first workspace's token still works"
    );
}
