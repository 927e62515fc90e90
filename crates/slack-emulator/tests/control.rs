//! The `/_control` HTTP API, driven over HTTP as a test in any language would: the workspace,
//! trigger ids, OAuth codes, faults, limits, recorded calls, signed requests to a bot, reset,
//! and the state file across a restart.

mod common;
use common::json_of;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{json, Value};
use slack_emulator::{Emulator, EmulatorConfig, RateLimits};
use slack_facts::signature::{compute_signature, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const DEFAULT_TOKEN: &str = "xoxb-default";
const APP_TOKEN: &str = "xoxb-app-1";

async fn start(config: EmulatorConfig) -> Emulator {
    slack_emulator::install_crypto_provider();
    Emulator::start(EmulatorConfig {
        bot_token: DEFAULT_TOKEN.into(),
        ..config
    })
    .await
    .expect("emulator starts")
}

fn control(emu: &Emulator, path: &str) -> String {
    format!("http://{}/_control{path}", emu.addr())
}

async fn post_json(url: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("control API answers")
}

/// A Web API call with a form body (what every method accepts).
async fn api(emu: &Emulator, token: &str, method: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/{method}", emu.base_url()))
        .bearer_auth(token)
        .form(form)
        .send()
        .await
        .expect("Web API answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

fn workspace(request_url: Option<&str>) -> Value {
    json!({
        "users": [
            { "id": "U0ADA", "name": "ada", "real_name": "Ada Lovelace", "tz": "Europe/London",
              "email": "ada@example.com", "title": "Engineer" },
            { "id": "U0BOB", "tz": "America/New_York" }
        ],
        "channels": [ { "id": "C0GENERAL", "name": "general", "members": ["U0ADA", "U0BOB"] } ],
        "usergroups": [ { "id": "S0TEAM", "handle": "team", "members": ["U0ADA"] } ],
        "apps": [ {
            "app_id": "A0APP", "name": "helper", "bot_user_id": "U0HELPER", "bot_id": "B0HELPER",
            "token": APP_TOKEN, "scopes": ["chat:write", "users:read", "im:write"],
            "signing_secret": "app-secret", "request_url": request_url,
            "client_id": "111.222", "client_secret": "client-secret"
        } ]
    })
}

#[tokio::test]
async fn a_workspace_posted_to_control_brings_members_channels_groups_and_scoped_apps() {
    let emu = start(EmulatorConfig::default()).await;
    let added = post_json(&control(&emu, "/workspace"), workspace(None)).await;
    assert_eq!(added.status(), 204);

    let (_, info) = api(&emu, APP_TOKEN, "users.info", &[("user", "U0ADA")]).await;
    assert_eq!(info["user"]["tz"], "Europe/London", "{info}");
    assert_eq!(info["user"]["profile"]["email"], "ada@example.com");
    assert_eq!(info["user"]["profile"]["first_name"], "Ada");

    // The app was granted chat:write, users:read and im:write, not usergroups:read.
    let (status, refused) = api(
        &emu,
        APP_TOKEN,
        "usergroups.users.list",
        &[("usergroup", "S0TEAM")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        refused,
        json!({ "ok": false, "error": "missing_scope", "needed": "usergroups:read",
                "provided": "chat:write,im:write,users:read" })
    );
    // The default token has every scope.
    let (_, group) = api(
        &emu,
        DEFAULT_TOKEN,
        "usergroups.users.list",
        &[("usergroup", "S0TEAM")],
    )
    .await;
    assert_eq!(group["users"], json!(["U0ADA"]));

    let (_, posted) = api(
        &emu,
        APP_TOKEN,
        "chat.postMessage",
        &[("channel", "#general"), ("text", "hello")],
    )
    .await;
    assert_eq!(posted["channel"], "C0GENERAL", "{posted}");
    assert_eq!(posted["message"]["user"], "U0HELPER");

    let listed = json_of(reqwest::Client::new().get(control(&emu, "/workspace"))).await;
    assert_eq!(listed["channels"][0]["name"], "general");
    assert_eq!(
        listed["apps"][0]["scopes"].as_array().map(Vec::len),
        Some(3)
    );
    assert!(
        listed["apps"][0].get("signing_secret").is_none(),
        "secrets are not echoed"
    );

    let bad = post_json(
        &control(&emu, "/workspace"),
        json!({ "users": [{ "id": "U0X", "tz": "Mars/Base" }] }),
    )
    .await;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.expect("JSON");
    assert_eq!(body["error"], "bad_request");
    assert!(
        body["detail"].as_str().unwrap_or("").contains("Mars/Base"),
        "{body}"
    );
}

#[tokio::test]
async fn trigger_ids_and_oauth_codes_come_from_control() {
    let emu = start(EmulatorConfig::default()).await;
    post_json(&control(&emu, "/workspace"), workspace(None)).await;

    let issued: Value = post_json(&control(&emu, "/trigger_ids"), json!({ "user": "U0ADA" }))
        .await
        .json()
        .await
        .expect("JSON");
    let trigger = issued["trigger_id"]
        .as_str()
        .expect("trigger_id")
        .to_string();
    let modal = json!({ "type": "modal", "title": { "type": "plain_text", "text": "Hi" },
                        "blocks": [{ "type": "divider" }] })
    .to_string();
    let (_, opened) = api(
        &emu,
        DEFAULT_TOKEN,
        "views.open",
        &[("trigger_id", &trigger), ("view", &modal)],
    )
    .await;
    assert_eq!(opened["ok"], true, "{opened}");
    assert_eq!(emu.views()[0].user.as_deref(), Some("U0ADA"));

    let second: Value = post_json(&control(&emu, "/trigger_ids"), json!({}))
        .await
        .json()
        .await
        .expect("JSON");
    let second = second["trigger_id"].as_str().expect("id").to_string();
    let expired = reqwest::Client::new()
        .post(control(&emu, &format!("/trigger_ids/{second}/expire")))
        .send()
        .await
        .expect("answers");
    assert_eq!(expired.status(), 204);
    let (_, late) = api(
        &emu,
        DEFAULT_TOKEN,
        "views.open",
        &[("trigger_id", &second), ("view", &modal)],
    )
    .await;
    assert_eq!(late["error"], "expired_trigger_id");

    let code: Value = post_json(
        &control(&emu, "/oauth_codes"),
        json!({ "team_id": "T0OTHER", "team_name": "Other" }),
    )
    .await
    .json()
    .await
    .expect("JSON");
    let code = code["code"].as_str().expect("code").to_string();
    let token = json_of(
        reqwest::Client::new()
            .post(format!("{}/oauth.v2.access", emu.base_url()))
            .form(&[
                ("client_id", "111.222"),
                ("client_secret", "client-secret"),
                ("code", code.as_str()),
            ]),
    )
    .await;
    assert_eq!(token["team"]["id"], "T0OTHER", "{token}");
}

#[tokio::test]
async fn oauth_codes_need_an_app_with_client_credentials() {
    let emu = start(EmulatorConfig::default()).await;
    let refused = post_json(&control(&emu, "/oauth_codes"), json!({})).await;
    assert_eq!(refused.status(), 409);
}

#[tokio::test]
async fn faults_limits_and_recorded_calls_over_http() {
    let emu = start(EmulatorConfig {
        limits: RateLimits::unlimited(),
        ..EmulatorConfig::default()
    })
    .await;
    post_json(&control(&emu, "/workspace"), workspace(None)).await;

    let fault = post_json(
        &control(&emu, "/faults"),
        json!({ "method": "users.info", "kind": "error", "error": "fatal_error", "times": 1 }),
    )
    .await;
    assert_eq!(fault.status(), 201);
    let (_, first) = api(&emu, DEFAULT_TOKEN, "users.info", &[("user", "U0ADA")]).await;
    assert_eq!(first["error"], "fatal_error");
    let (_, second) = api(&emu, DEFAULT_TOKEN, "users.info", &[("user", "U0ADA")]).await;
    assert_eq!(second["ok"], true);

    post_json(
        &control(&emu, "/faults"),
        json!({ "method": "auth.test", "kind": "http", "status": 503 }),
    )
    .await;
    let (status, _) = api(&emu, DEFAULT_TOKEN, "auth.test", &[]).await;
    assert_eq!(status, 503);
    let cleared = reqwest::Client::new()
        .delete(control(&emu, "/faults"))
        .send()
        .await
        .expect("answers");
    assert_eq!(cleared.status(), 204);
    assert_eq!(api(&emu, DEFAULT_TOKEN, "auth.test", &[]).await.0, 200);
    let unknown = post_json(&control(&emu, "/faults"), json!({ "kind": "meteor" })).await;
    assert_eq!(unknown.status(), 400);

    // Per-method limits, counted per token: the app's budget is its own.
    let set = reqwest::Client::new()
        .put(control(&emu, "/limits"))
        .json(&json!({ "per_method": { "users.info": 1 } }))
        .send()
        .await
        .expect("answers");
    assert_eq!(set.status(), 200);
    let (ok, _) = api(&emu, DEFAULT_TOKEN, "users.info", &[("user", "U0ADA")]).await;
    let (limited, _) = api(&emu, DEFAULT_TOKEN, "users.info", &[("user", "U0ADA")]).await;
    let (other_token, _) = api(&emu, APP_TOKEN, "users.info", &[("user", "U0ADA")]).await;
    assert_eq!((ok, limited, other_token), (200, 429, 200));
    let limits = json_of(reqwest::Client::new().get(control(&emu, "/limits"))).await;
    assert_eq!(limits["per_method"]["users.info"], 1);

    // Per-channel pacing of chat.postMessage.
    reqwest::Client::new()
        .put(control(&emu, "/limits"))
        .json(&json!({ "posts_burst_per_channel": 1, "per_channel": { "C0GENERAL": 0.1 } }))
        .send()
        .await
        .expect("answers");
    let post = [("channel", "C0GENERAL"), ("text", "x")];
    assert_eq!(
        api(&emu, DEFAULT_TOKEN, "chat.postMessage", &post).await.0,
        200
    );
    let response = reqwest::Client::new()
        .post(format!("{}/chat.postMessage", emu.base_url()))
        .bearer_auth(DEFAULT_TOKEN)
        .form(&post)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 429);
    assert_eq!(
        response.headers()["retry-after"].to_str().expect("ascii"),
        "10"
    );

    let calls = json_of(reqwest::Client::new().get(control(&emu, "/calls?method=auth.test"))).await;
    let statuses: Vec<_> = calls["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .map(|c| c["http_status"].clone())
        .collect();
    assert_eq!(statuses, vec![json!(503), json!(200)]);
    reqwest::Client::new()
        .delete(control(&emu, "/calls"))
        .send()
        .await
        .expect("answers");
    let calls = json_of(reqwest::Client::new().get(control(&emu, "/calls"))).await;
    assert_eq!(calls["calls"], json!([]));
}

/// What the stand-in bot received: (path, content type, body), each with a valid signature.
type Received = Arc<Mutex<Vec<(String, String, String)>>>;

async fn fake_bot(secret: &'static str) -> (String, Received) {
    let received: Received = Arc::default();
    async fn take(
        State((secret, received, path)): State<(&'static str, Received, &'static str)>,
        headers: HeaderMap,
        body: Bytes,
    ) -> axum::http::StatusCode {
        let ts = headers[TIMESTAMP_HEADER].to_str().expect("ascii");
        let expected = compute_signature(secret.as_bytes(), ts, &body);
        if headers[SIGNATURE_HEADER].to_str().expect("ascii") != expected {
            return axum::http::StatusCode::UNAUTHORIZED;
        }
        let ct = headers["content-type"].to_str().expect("ascii").to_string();
        received.lock().expect("lock").push((
            path.to_string(),
            ct,
            String::from_utf8_lossy(&body).into_owned(),
        ));
        axum::http::StatusCode::OK
    }
    let route = |path: &'static str| post(take).with_state((secret, received.clone(), path));
    let router = axum::Router::new()
        .route("/slack/events", route("events"))
        .route("/slack/interactions", route("interactions"))
        .route("/slack/commands", route("commands"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), received)
}

#[tokio::test]
async fn events_interactions_and_commands_reach_the_bot_signed() {
    let (bot_url, received) = fake_bot("app-secret").await;
    let emu = start(EmulatorConfig::default()).await;
    post_json(&control(&emu, "/workspace"), workspace(Some(&bot_url))).await;
    let (_, posted) = api(
        &emu,
        APP_TOKEN,
        "chat.postMessage",
        &[
            ("channel", "U0ADA"),
            ("blocks", r#"[{"type":"actions","block_id":"b1","elements":[{"type":"button","action_id":"yes","text":{"type":"plain_text","text":"Yes"},"value":"1"}]}]"#),
        ],
    )
    .await;
    let ts = posted["ts"].as_str().expect("ts").to_string();

    let event = post_json(
        &control(&emu, "/send/event"),
        json!({ "event": { "type": "message", "channel_type": "im", "channel": "D0ADA",
                           "user": "U0ADA", "text": "hi", "ts": "1.000001" } }),
    )
    .await;
    let event: Value = event.json().await.expect("JSON");
    assert_eq!(event["status"], 200, "{event}");

    let click = post_json(
        &control(&emu, "/send/interaction"),
        json!({ "block_actions": { "user": "U0ADA", "ts": ts, "action_id": "yes",
                                   "block_id": "b1", "value": "1" } }),
    )
    .await;
    assert_eq!(click.json::<Value>().await.expect("JSON")["status"], 200);

    let command = post_json(
        &control(&emu, "/send/command"),
        json!({ "user": "U0BOB", "command": "/helper", "text": "status" }),
    )
    .await;
    assert_eq!(command.json::<Value>().await.expect("JSON")["status"], 200);

    let got = received.lock().expect("lock").clone();
    assert_eq!(got.len(), 3, "{got:?}");
    let envelope: Value = serde_json::from_str(&got[0].2).expect("event JSON");
    assert_eq!(
        (got[0].0.as_str(), envelope["type"].as_str()),
        ("events", Some("event_callback"))
    );
    assert_eq!(envelope["event"]["text"], "hi");
    assert_eq!(
        envelope["api_app_id"], "A0APP",
        "the envelope names the app"
    );
    assert_eq!(envelope["authorizations"][0]["user_id"], "U0HELPER");
    let form: Vec<(String, String)> = serde_urlencoded::from_str(&got[1].2).expect("form");
    let payload: Value = serde_json::from_str(&form[0].1).expect("payload");
    assert_eq!(got[1].0, "interactions");
    assert_eq!(payload["type"], "block_actions");
    assert_eq!(payload["actions"][0]["action_id"], "yes");
    let command: Vec<(String, String)> = serde_urlencoded::from_str(&got[2].2).expect("form");
    assert!(command.contains(&("command".into(), "/helper".into())));
    assert!(command.contains(&("text".into(), "status".into())));
    assert!(command.contains(&("api_app_id".into(), "A0APP".into())));
    assert_eq!(payload["api_app_id"], "A0APP");

    let neither = post_json(&control(&emu, "/send/interaction"), json!({})).await;
    assert_eq!(neither.status(), 400);
}

#[tokio::test]
async fn without_a_bot_sending_is_a_conflict() {
    let emu = start(EmulatorConfig::default()).await;
    let refused = post_json(
        &control(&emu, "/send/command"),
        json!({ "user": "U0ADA", "text": "x" }),
    )
    .await;
    assert_eq!(refused.status(), 409);
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(body["error"], "no_bot");
}

#[tokio::test]
async fn reset_empties_the_history_restores_members_and_runs_the_hook() {
    let emu = start(EmulatorConfig::default()).await;
    post_json(&control(&emu, "/workspace"), workspace(None)).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    emu.on_reset(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    api(
        &emu,
        DEFAULT_TOKEN,
        "chat.postMessage",
        &[("channel", "U0ADA"), ("text", "hi")],
    )
    .await;
    let edited = post_json(
        &control(&emu, "/users/U0ADA"),
        json!({ "status_text": "Vacationing", "status_emoji": ":palm_tree:" }),
    )
    .await;
    assert_eq!(edited.status(), 204);
    let messages = json_of(reqwest::Client::new().get(control(&emu, "/messages?user=U0ADA"))).await;
    assert_eq!(messages["messages"].as_array().map(Vec::len), Some(1));

    let reset = post_json(&control(&emu, "/reset"), json!({})).await;
    assert_eq!(reset.status(), 200);
    assert!(emu.messages().is_empty());
    assert!(emu.calls().is_empty());
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let ada = emu
        .users()
        .into_iter()
        .find(|u| u.id == "U0ADA")
        .expect("ada stays");
    assert_eq!(ada.status_text, "", "back to the workspace file's state");
    assert_eq!(ada.email, "ada@example.com");
}

#[tokio::test]
async fn other_sites_cannot_drive_the_control_api() {
    let emu = start(EmulatorConfig::default()).await;
    api(&emu, DEFAULT_TOKEN, "auth.test", &[]).await;
    for (header, value) in [
        ("origin", "http://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let refused = reqwest::Client::new()
            .post(control(&emu, "/reset"))
            .header(header, value)
            .send()
            .await
            .expect("answers");
        assert_eq!(refused.status(), 403, "{header}");
    }
    assert_eq!(emu.calls().len(), 1, "nothing was reset");
    // A rebound name that points here is still another site.
    let rebound = reqwest::Client::new()
        .post(control(&emu, "/calls"))
        .header("host", "evil.example")
        .header("origin", "http://evil.example")
        .send()
        .await
        .expect("answers");
    assert_eq!(rebound.status(), 405, "POST /calls is not a route");
    let rebound = reqwest::Client::new()
        .post(control(&emu, "/reset"))
        .header("host", "evil.example")
        .header("origin", "http://evil.example")
        .send()
        .await
        .expect("answers");
    assert_eq!(rebound.status(), 403);
    // The page itself (same origin) may.
    let own = format!("http://{}", emu.addr());
    let same = reqwest::Client::new()
        .post(control(&emu, "/reset"))
        .header("origin", own)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("answers");
    assert_eq!(same.status(), 200);
    assert!(emu.calls().is_empty(), "the page's reset went through");
}

#[tokio::test]
async fn the_state_file_keeps_messages_views_and_statuses_across_a_restart() {
    let dir = std::env::temp_dir().join(format!("emu-state-{}", uuid::Uuid::new_v4()));
    let file = dir.join("workspace.sandbox.json");
    let config = || EmulatorConfig {
        state_file: Some(file.clone()),
        limits: RateLimits::unlimited(),
        ..EmulatorConfig::default()
    };
    let first = start(config()).await;
    post_json(&control(&first, "/workspace"), workspace(None)).await;
    let (_, posted) = api(
        &first,
        DEFAULT_TOKEN,
        "chat.postMessage",
        &[("channel", "U0ADA"), ("text", "*kept*")],
    )
    .await;
    let home = json!({ "type": "home", "blocks": [{ "type": "divider" }] }).to_string();
    api(
        &first,
        DEFAULT_TOKEN,
        "views.publish",
        &[("user_id", "U0BOB"), ("view", &home)],
    )
    .await;
    post_json(
        &control(&first, "/users/U0BOB"),
        json!({ "status_text": "Out sick", "deleted": false }),
    )
    .await;
    first.shutdown().await;
    assert!(file.exists(), "written at shutdown");

    let second = start(config()).await;
    // The same members come back (as pulseloop seeds them at each start): their state stays.
    post_json(&control(&second, "/workspace"), workspace(None)).await;
    let messages = second.dm_messages("U0ADA");
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].ts, posted["ts"].as_str().expect("ts"));
    assert_eq!(messages[0].text, "*kept*");
    assert_eq!(second.views().len(), 1);
    let bob = second
        .users()
        .into_iter()
        .find(|u| u.id == "U0BOB")
        .expect("bob");
    assert_eq!(bob.status_text, "Out sick");
    // New timestamps stay after the old ones.
    let (_, later) = api(
        &second,
        DEFAULT_TOKEN,
        "chat.postMessage",
        &[("channel", "U0ADA"), ("text", "later")],
    )
    .await;
    assert!(later["ts"].as_str().expect("ts") > posted["ts"].as_str().expect("ts"));

    let reset = post_json(&control(&second, "/reset"), json!({})).await;
    assert_eq!(reset.status(), 200);
    second.shutdown().await;
    let third = start(config()).await;
    assert!(third.messages().is_empty(), "the reset was written too");
    assert!(third.views().is_empty());
    third.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
