//! The Slack emulator on its own: a real server on 127.0.0.1, called over HTTP with reqwest.

mod common;
use common::json_of;

use serde_json::{json, Value};
use slack_emulator::{
    EmulatedUser, Emulator, EmulatorConfig, Fault, FaultKind, RateLimits, SignOptions,
};
use slack_facts::signature;
use std::time::Duration;

const TOKEN: &str = "xoxb-test";

async fn start() -> Emulator {
    start_with(RateLimits::unlimited()).await
}

async fn start_with(limits: RateLimits) -> Emulator {
    slack_emulator::install_crypto_provider();
    let config = EmulatorConfig {
        bot_token: TOKEN.into(),
        limits,
        ..EmulatorConfig::default()
    };
    Emulator::start(config).await.expect("emulator starts")
}

/// Methods Slack reads only as a form or query (a JSON body is not read).
const FORM_ONLY: &[&str] = &[
    "users.info",
    "users.list",
    "usergroups.users.list",
    "conversations.history",
    "conversations.replies",
    "files.getUploadURLExternal",
];

/// POSTs JSON (a form for form-only methods) with the test token; returns status,
/// Retry-After and body.
async fn call(emu: &Emulator, method: &str, body: Value) -> (u16, Option<String>, Value) {
    let request = reqwest::Client::new()
        .post(format!("{}/{method}", emu.base_url()))
        .bearer_auth(TOKEN);
    let request = if FORM_ONLY.contains(&method) {
        let form: Vec<(String, String)> = body
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), str::to_string),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        request.form(&form)
    } else {
        request.json(&body)
    };
    let response = request.send().await.expect("request reaches the emulator");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (
        status,
        retry_after,
        response.json().await.expect("JSON body"),
    )
}

#[tokio::test]
async fn tokens_are_checked_and_every_call_is_recorded() {
    let emu = start().await;
    let http = reqwest::Client::new();
    let url = format!("{}/auth.test", emu.base_url());

    let none = json_of(http.post(&url)).await;
    assert_eq!(none, json!({ "ok": false, "error": "not_authed" }));
    let wrong = json_of(http.post(&url).bearer_auth("xoxb-wrong")).await;
    assert_eq!(wrong["error"], "invalid_auth");

    let (status, _, ok) = call(&emu, "auth.test", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(ok["ok"], true);
    assert_eq!(ok["team_id"], "T0SANDBOX");
    assert_eq!(ok["user_id"], "U0PULSEBOT");
    assert_eq!(ok["bot_id"], "B0PULSEBOT");

    let (status, _, unknown) = call(&emu, "chat.fly", json!({})).await;
    assert_eq!(
        (status, unknown["error"].as_str()),
        (404, Some("unknown_method"))
    );

    let calls = emu.calls_to("auth.test");
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0].token, None);
    assert_eq!(calls[1].token.as_deref(), Some("xoxb-wrong"));
    assert_eq!(calls[2].response["ok"], true);
    assert_eq!(emu.calls().len(), 4);
}

#[tokio::test]
async fn exceeding_a_tier_gives_429_with_retry_after() {
    let emu = start_with(RateLimits {
        tier2_per_minute: 2,
        ..RateLimits::default()
    })
    .await;
    for _ in 0..2 {
        assert_eq!(call(&emu, "users.list", json!({})).await.0, 200);
    }
    let (status, retry_after, body) = call(&emu, "users.list", json!({})).await;
    assert_eq!(status, 429);
    assert_eq!(body, json!({ "ok": false, "error": "ratelimited" }));
    let secs: u64 = retry_after.expect("Retry-After").parse().expect("integer");
    assert!((1..=30).contains(&secs), "{secs}");
    assert_eq!(emu.calls_to("users.list")[2].http_status, 429);
    // Another tier-4 method is unaffected.
    assert_eq!(call(&emu, "auth.test", json!({})).await.0, 200);
}

#[tokio::test]
async fn posting_is_paced_per_channel() {
    let emu = start_with(RateLimits::default()).await;
    emu.add_user(EmulatedUser::new("U1", "UTC"));
    emu.add_user(EmulatedUser::new("U2", "UTC"));
    let post = |ch: &str| json!({ "channel": ch, "text": "hi" });
    for _ in 0..3 {
        assert_eq!(call(&emu, "chat.postMessage", post("U1")).await.0, 200);
    }
    // U1 and its DM id share one allowance.
    let (status, retry_after, _) = call(&emu, "chat.postMessage", post("D1")).await;
    assert_eq!((status, retry_after.as_deref()), (429, Some("1")));
    assert_eq!(call(&emu, "chat.postMessage", post("U2")).await.0, 200);
}

#[tokio::test]
async fn a_dropped_connection_is_a_transport_error_not_a_5xx() {
    let emu = start().await;
    emu.inject(Fault::on("auth.test", FaultKind::DropConnection).times(1));
    let err = reqwest::Client::new()
        .post(format!("{}/auth.test", emu.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect_err("no HTTP response");
    assert!(err.status().is_none(), "{err:?}");
    assert_eq!(call(&emu, "auth.test", json!({})).await.0, 200);
    let calls = emu.calls_to("auth.test");
    assert_eq!((calls[0].http_status, calls[1].http_status), (0, 200));
}

#[tokio::test]
async fn http_error_and_delay_faults_follow_their_target() {
    let emu = start().await;
    emu.add_user(EmulatedUser::new("U1", "UTC"));
    emu.add_user(EmulatedUser::new("U2", "UTC"));
    emu.inject(
        Fault::on("chat.postMessage", FaultKind::Http(503))
            .for_target("D1")
            .times(1),
    );
    emu.inject(Fault {
        method: None,
        target: Some("U2".into()),
        kind: FaultKind::Error("fatal_error".into()),
        times: Some(1),
    });
    let (status, _, body) = call(
        &emu,
        "chat.postMessage",
        json!({ "channel": "U1", "text": "x" }),
    )
    .await;
    assert_eq!((status, body["ok"].as_bool()), (503, Some(false)));
    let (status, _, body) = call(&emu, "users.info", json!({ "user": "U2" })).await;
    assert_eq!((status, body["error"].as_str()), (200, Some("fatal_error")));

    emu.inject(Fault::on("auth.test", FaultKind::Delay(Duration::from_millis(200))).times(1));
    let started = std::time::Instant::now();
    assert_eq!(call(&emu, "auth.test", json!({})).await.2["ok"], true);
    assert!(started.elapsed() >= Duration::from_millis(200));

    emu.inject(Fault::on(
        "auth.test",
        FaultKind::RateLimited {
            retry_after_secs: 7,
        },
    ));
    let (status, retry_after, _) = call(&emu, "auth.test", json!({})).await;
    assert_eq!((status, retry_after.as_deref()), (429, Some("7")));
    emu.clear_faults();
    assert_eq!(call(&emu, "auth.test", json!({})).await.0, 200);
}

#[tokio::test]
async fn a_posted_message_can_be_updated() {
    let emu = start().await;
    emu.add_user(EmulatedUser::new("U0ADA", "Europe/Berlin"));
    let blocks =
        json!([{ "type": "section", "text": { "type": "mrkdwn", "text": "How was your week?" } }]);
    let (_, _, posted) = call(
        &emu,
        "chat.postMessage",
        json!({ "channel": "U0ADA", "text": "Pulse", "blocks": blocks }),
    )
    .await;
    assert_eq!(posted["ok"], true, "{posted}");
    assert_eq!(posted["channel"], emu.dm_channel_for("U0ADA"));
    let ts = posted["ts"].as_str().expect("ts").to_string();
    assert_eq!(ts.split('.').nth(1).map(str::len), Some(6));
    assert_eq!(posted["message"]["user"], "U0PULSEBOT");
    // Slack answers with the blocks as sent, plus the block_id it generated for each.
    let mut answered = posted["message"]["blocks"].clone();
    assert!(answered[0]["block_id"].is_string(), "{answered}");
    answered[0]
        .as_object_mut()
        .expect("block")
        .remove("block_id");
    assert_eq!(answered, blocks);

    let (_, _, updated) = call(
        &emu,
        "chat.update",
        json!({ "channel": "D0ADA", "ts": ts, "text": "Thanks!", "blocks": [] }),
    )
    .await;
    assert_eq!(updated["ok"], true, "{updated}");
    let messages = emu.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        (messages[0].text.as_str(), messages[0].edits),
        ("Thanks!", 1)
    );
    assert!(messages[0].blocks.is_null());

    let (_, _, missing) = call(
        &emu,
        "chat.update",
        json!({ "channel": "D0ADA", "ts": "1.000000", "text": "x" }),
    )
    .await;
    assert_eq!(missing["error"], "message_not_found");
}

#[tokio::test]
async fn post_message_errors_are_slacks() {
    let emu = start().await;
    emu.add_user(EmulatedUser::new("U0GONE", "UTC").deleted());
    emu.add_channel("C0OUT", "outside", false);
    let post = |channel: &str| json!({ "channel": channel, "text": "x" });
    let error = |v: Value| v["error"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        error(call(&emu, "chat.postMessage", post("U0GONE")).await.2),
        "account_inactive"
    );
    assert_eq!(
        error(call(&emu, "chat.postMessage", post("U0NOBODY")).await.2),
        "user_not_found"
    );
    assert_eq!(
        error(call(&emu, "chat.postMessage", post("C0OUT")).await.2),
        "not_in_channel"
    );
    assert_eq!(
        error(call(&emu, "chat.postMessage", post("C0NONE")).await.2),
        "channel_not_found"
    );
    assert_eq!(
        error(
            call(&emu, "chat.postMessage", json!({ "channel": "C0OUT" }))
                .await
                .2
        ),
        "not_in_channel"
    );

    emu.add_user(EmulatedUser::new("U1", "UTC"));
    assert_eq!(
        error(
            call(&emu, "chat.postMessage", json!({ "channel": "U1" }))
                .await
                .2
        ),
        "no_text"
    );
    let long =
        json!([{ "type": "section", "text": { "type": "mrkdwn", "text": "x".repeat(3001) } }]);
    let (status, _, body) = call(
        &emu,
        "chat.postMessage",
        json!({ "channel": "U1", "blocks": long }),
    )
    .await;
    assert_eq!(
        (status, error(body.clone())),
        (200, "invalid_blocks".to_string())
    );
    assert_eq!(
        body["response_metadata"]["messages"],
        json!(["[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]"])
    );

    // Form bodies with JSON-in-string blocks are accepted and recorded parsed.
    let form = reqwest::Client::new()
        .post(format!("{}/chat.postMessage", emu.base_url()))
        .form(&[
            ("token", TOKEN),
            ("channel", "U1"),
            ("blocks", r#"[{"type":"divider"}]"#),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(form.json::<Value>().await.unwrap()["ok"], true);
    let last = emu.calls_to("chat.postMessage").pop().expect("recorded");
    assert_eq!(last.params["blocks"], json!([{ "type": "divider" }]));

    let bad_json = reqwest::Client::new()
        .post(format!("{}/chat.postMessage", emu.base_url()))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        bad_json.json::<Value>().await.unwrap()["error"],
        "invalid_json"
    );
}

/// views.open with `trigger_id` and `view`; returns the body.
async fn views_open(emu: &Emulator, trigger_id: &str, view: &Value) -> Value {
    let params = json!({ "trigger_id": trigger_id, "view": view });
    call(emu, "views.open", params).await.2
}

/// views.update of `view_id` guarded by `hash`; returns the body.
async fn views_update(emu: &Emulator, view_id: &Value, hash: &Value, view: &Value) -> Value {
    let params = json!({ "view_id": view_id, "hash": hash, "view": view });
    call(emu, "views.update", params).await.2
}

#[tokio::test]
async fn views_open_needs_a_fresh_single_use_trigger() {
    let emu = start().await;
    let view = json!({
        "type": "modal", "callback_id": "pulse",
        "title": { "type": "plain_text", "text": "Weekly pulse" },
        "submit": { "type": "plain_text", "text": "Send" },
        "blocks": [{ "type": "input", "block_id": "mood", "label": { "type": "plain_text", "text": "Mood" },
                     "element": { "type": "plain_text_input", "action_id": "v" } }],
    });
    let trigger = emu.issue_trigger_id_for("U0ADA");
    let opened = views_open(&emu, &trigger, &view).await;
    assert_eq!(opened["ok"], true, "{opened}");
    assert!(opened["view"]["id"].as_str().unwrap().starts_with('V'));
    assert_eq!(opened["view"]["root_view_id"], opened["view"]["id"]);
    assert_eq!(emu.views()[0].user.as_deref(), Some("U0ADA"));

    let again = views_open(&emu, &trigger, &view).await;
    assert_eq!(again["error"], "exchanged_trigger_id");
    let unknown = views_open(&emu, "123.456.abc", &view).await;
    assert_eq!(unknown["error"], "invalid_arguments");
    assert_eq!(
        unknown["response_metadata"]["messages"],
        json!(["invalid `trigger_id`"])
    );
    let old = emu.issue_trigger_id();
    emu.expire_trigger_id(&old);
    let expired = views_open(&emu, &old, &view).await;
    assert_eq!(expired["error"], "expired_trigger_id");

    // A bad view does not use up the trigger.
    let fresh = emu.issue_trigger_id();
    let mut no_submit = view.clone();
    no_submit.as_object_mut().unwrap().remove("submit");
    let bad = views_open(&emu, &fresh, &no_submit).await;
    assert_eq!(bad["error"], "invalid_arguments");
    let ok = views_open(&emu, &fresh, &view).await;
    assert_eq!(ok["ok"], true);

    // views.update with a stale hash conflicts; with the current one it succeeds.
    let id = opened["view"]["id"].clone();
    let hash = opened["view"]["hash"].clone();
    let updated = views_update(&emu, &id, &hash, &view).await;
    assert_eq!(updated["ok"], true, "{updated}");
    assert_ne!(updated["view"]["hash"], hash);
    let stale = views_update(&emu, &id, &hash, &view).await;
    assert_eq!(stale["error"], "hash_conflict");
}

#[tokio::test]
async fn users_list_pages_with_a_cursor() {
    let emu = start().await;
    for i in 1..=5 {
        emu.add_user(EmulatedUser::new(&format!("U{i}"), "Europe/Berlin"));
    }
    let http = reqwest::Client::new();
    let mut cursor = String::new();
    let mut seen = Vec::new();
    for _ in 0..10 {
        // users.list is a form/query method.
        let page = json_of(
            http.get(format!("{}/users.list", emu.base_url()))
                .bearer_auth(TOKEN)
                .query(&[("limit", "2"), ("cursor", cursor.as_str())]),
        )
        .await;
        assert_eq!(page["ok"], true, "{page}");
        for m in page["members"].as_array().unwrap() {
            seen.push(m["id"].as_str().unwrap().to_string());
        }
        cursor = page["response_metadata"]["next_cursor"]
            .as_str()
            .unwrap()
            .to_string();
        if cursor.is_empty() {
            break;
        }
    }
    assert_eq!(seen, ["U0PULSEBOT", "U1", "U2", "U3", "U4", "U5"]);
    let (_, _, bad) = call(&emu, "users.list", json!({ "cursor": "zz" })).await;
    assert_eq!(bad["error"], "invalid_cursor");

    let info = json_of(
        http.post(format!("{}/users.info", emu.base_url()))
            .form(&[("token", TOKEN), ("user", "U1")]),
    )
    .await;
    assert_eq!(info["user"]["tz"], "Europe/Berlin");
    assert!(matches!(
        info["user"]["tz_offset"].as_i64(),
        Some(3600 | 7200)
    ));
}

#[tokio::test]
async fn a_file_uploads_in_two_steps() {
    let emu = start().await;
    emu.add_user(EmulatedUser::new("U1", "UTC"));
    let bytes = b"week,score\n1,4\n".to_vec();
    let (_, _, url) = call(
        &emu,
        "files.getUploadURLExternal",
        json!({ "filename": "pulse.csv", "length": bytes.len() }),
    )
    .await;
    assert_eq!(url["ok"], true, "{url}");
    let file_id = url["file_id"].as_str().unwrap().to_string();
    let upload = reqwest::Client::new()
        .post(url["upload_url"].as_str().unwrap())
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 200);
    assert_eq!(
        upload.text().await.unwrap(),
        format!("OK - {}", bytes.len())
    );

    let files = json!([{ "id": file_id, "title": "Pulse export" }]).to_string();
    let (_, _, done) = call(
        &emu,
        "files.completeUploadExternal",
        json!({ "files": files, "channel_id": "U1", "initial_comment": "Here" }),
    )
    .await;
    assert_eq!(done["ok"], true, "{done}");
    assert_eq!(done["files"][0]["title"], "Pulse export");
    let stored = emu.files();
    assert_eq!(
        (stored[0].bytes.clone(), stored[0].shared_to.clone()),
        (bytes, vec!["D1".to_string()])
    );
    assert_eq!(emu.messages()[0].files, vec![file_id.clone()]);

    let (_, _, unknown) = call(
        &emu,
        "files.completeUploadExternal",
        json!({ "files": [{ "id": "F404" }] }),
    )
    .await;
    assert_eq!(unknown["error"], "file_not_found");
}

#[tokio::test]
async fn oauth_codes_become_working_tokens_once() {
    let emu = start().await;
    emu.set_oauth_client("111.222", "shh");
    let code = emu.issue_oauth_code("T0OTHER", "Other Co");
    let http = reqwest::Client::new();
    let exchange = |secret: &'static str, code: String| {
        let http = http.clone();
        let url = format!("{}/oauth.v2.access", emu.base_url());
        async move {
            json_of(http.post(url).form(&[
                ("client_id", "111.222"),
                ("client_secret", secret),
                ("code", code.as_str()),
            ]))
            .await
        }
    };
    assert_eq!(
        exchange("nope", code.clone()).await["error"],
        "bad_client_secret"
    );
    let granted = exchange("shh", code.clone()).await;
    assert_eq!(granted["ok"], true, "{granted}");
    assert_eq!(granted["token_type"], "bot");
    assert_eq!(
        granted["team"],
        json!({ "id": "T0OTHER", "name": "Other Co" })
    );
    assert_eq!(exchange("shh", code).await["error"], "invalid_code");

    let token = granted["access_token"].as_str().unwrap();
    let who = json_of(
        http.post(format!("{}/auth.test", emu.base_url()))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(who["team_id"], "T0OTHER");
    assert_eq!(who["user_id"], granted["bot_user_id"]);
}

/// A stand-in bot that checks signatures with the crate's verifier and echoes the outcome.
async fn spawn_verifying_bot(secret: &'static str) -> String {
    use axum::{body::Bytes, http::HeaderMap, routing::post, Router};
    async fn check(secret: &'static str, headers: HeaderMap, body: Bytes) -> String {
        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        match signature::verify(
            secret.as_bytes(),
            h(signature::TIMESTAMP_HEADER),
            h(signature::SIGNATURE_HEADER),
            &body,
            chrono::Utc::now(),
        ) {
            Ok(()) => format!("ok retry={}", h("x-slack-retry-num").unwrap_or("-")),
            Err(e) => format!("rejected: {e:?}"),
        }
    }
    let app = Router::new()
        .route("/slack/events", post(move |h, b| check(secret, h, b)))
        .route("/slack/interactions", post(move |h, b| check(secret, h, b)))
        .route("/slack/commands", post(move |h, b| check(secret, h, b)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn the_peer_signs_like_slack() {
    let emu = start().await;
    emu.add_user(EmulatedUser::new("U1", "UTC"));
    let bot = spawn_verifying_bot("s3cret").await;
    let peer = emu.peer(&bot, "s3cret");
    let text = |r: reqwest::Response| async move { r.text().await.unwrap() };

    let event = peer.event_callback("Ev1", peer.message_im("U1", "hello"));
    assert_eq!(event["event"]["channel"], "D1");
    assert_eq!(
        text(peer.send_event(&event).await.unwrap()).await,
        "ok retry=-"
    );

    let (_, _, posted) = call(&emu, "chat.postMessage", json!({ "channel": "U1", "text": "Rate",
        "blocks": [{ "type": "actions", "block_id": "b", "elements": [{ "type": "static_select", "action_id": "score",
            "placeholder": { "type": "plain_text", "text": "Pick" },
            "options": [{ "text": { "type": "plain_text", "text": "Great" }, "value": "5" }] }] }] })).await;
    let ts = posted["ts"].as_str().unwrap();
    let click = peer.block_actions("U1", "D1", ts, "score", "b", "5");
    assert_eq!(click["actions"][0]["selected_option"]["value"], "5");
    assert_eq!(click["container"]["message_ts"], ts);
    assert_eq!(
        text(peer.send_interaction(&click).await.unwrap()).await,
        "ok retry=-"
    );

    // The click's trigger opens a modal for that user.
    let view =
        json!({ "type": "modal", "title": { "type": "plain_text", "text": "Why?" }, "blocks": [] });
    let opened = views_open(&emu, click["trigger_id"].as_str().unwrap(), &view).await;
    assert_eq!(opened["ok"], true, "{opened}");
    let submission = peer.view_submission("U1", &json!({ "state": { "values": { "b": { "a": { "type": "plain_text_input", "value": "x" } } } } }));
    assert_eq!(submission["view"]["id"], opened["view"]["id"]);

    // The response_url replaces the original message.
    let replaced = reqwest::Client::new()
        .post(click["response_url"].as_str().unwrap())
        .json(&json!({ "replace_original": true, "text": "Thanks" }))
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), 200);
    assert_eq!(
        (emu.messages()[0].text.as_str(), emu.messages()[0].edits),
        ("Thanks", 1)
    );

    let command = peer.slash_command("U1", "D1", "status");
    assert_eq!(
        text(peer.send_command(&command).await.unwrap()).await,
        "ok retry=-"
    );

    let wrong = SignOptions {
        secret_override: Some("other".into()),
        ..SignOptions::default()
    };
    assert!(text(peer.send_event_with(&event, wrong).await.unwrap())
        .await
        .contains("Mismatch"));
    let stale = SignOptions {
        timestamp: Some(chrono::Utc::now().timestamp() - 301),
        ..SignOptions::default()
    };
    assert!(text(peer.send_event_with(&event, stale).await.unwrap())
        .await
        .contains("Stale"));
    let bare = SignOptions {
        omit_headers: true,
        ..SignOptions::default()
    };
    assert!(text(peer.send_event_with(&event, bare).await.unwrap())
        .await
        .contains("MissingHeaders"));
    let retry = SignOptions {
        retry_num: Some(2),
        ..SignOptions::default()
    };
    assert_eq!(
        text(peer.send_event_with(&event, retry).await.unwrap()).await,
        "ok retry=2"
    );

    // A fixed clock signs with that time (the verifier here uses the real clock).
    let past = chrono::Utc::now() - chrono::Duration::minutes(10);
    let fixed = peer.at(past);
    assert_eq!(
        fixed.event_callback("Ev2", json!({}))["event_time"],
        past.timestamp()
    );
    assert!(text(fixed.send_event(&event).await.unwrap())
        .await
        .contains("Stale"));
}

#[tokio::test]
async fn directory_methods_answer_like_slack() {
    let emu = start().await;
    emu.add_user(
        EmulatedUser::new("U1", "America/New_York")
            .named("Ada Lovelace")
            .status("On leave", ":palm_tree:"),
    );
    emu.add_user(EmulatedUser::new("U2", "UTC").deleted());
    emu.add_user(EmulatedUser::new("U3", "UTC").bot());
    emu.set_usergroup("S1", &["U1", "U2"]);

    let (_, _, info) = call(&emu, "users.info", json!({ "user": "U1" })).await;
    assert_eq!(info["user"]["profile"]["status_emoji"], ":palm_tree:");
    assert_eq!(info["user"]["real_name"], "Ada Lovelace");
    assert_eq!(
        call(&emu, "users.info", json!({ "user": "U9" })).await.2["error"],
        "user_not_found"
    );

    let (_, _, group) = call(&emu, "usergroups.users.list", json!({ "usergroup": "S1" })).await;
    assert_eq!(group["users"], json!(["U1", "U2"]));
    assert_eq!(
        call(&emu, "usergroups.users.list", json!({ "usergroup": "S9" }))
            .await
            .2["error"],
        "no_such_subteam"
    );

    let (_, _, open) = call(&emu, "conversations.open", json!({ "users": "U1" })).await;
    assert_eq!(open["channel"]["id"], "D1");
    let (_, _, again) = call(&emu, "conversations.open", json!({ "users": "U1" })).await;
    assert_eq!(again["already_open"], true);
    assert_eq!(
        call(&emu, "conversations.open", json!({ "users": "U2" }))
            .await
            .2["error"],
        "account_inactive"
    );
    assert_eq!(
        call(&emu, "conversations.open", json!({ "users": "U3" }))
            .await
            .2["error"],
        "cannot_dm_bot"
    );

    emu.add_channel("C1", "coaching", true);
    emu.set_channel_members("C1", &["U1"]);
    let (_, _, eph) = call(
        &emu,
        "chat.postEphemeral",
        json!({ "channel": "C1", "user": "U1", "text": "psst" }),
    )
    .await;
    assert!(eph["message_ts"].is_string(), "{eph}");
    emu.add_user(EmulatedUser::new("U4", "UTC"));
    let (_, _, outside) = call(
        &emu,
        "chat.postEphemeral",
        json!({ "channel": "C1", "user": "U4", "text": "psst" }),
    )
    .await;
    assert_eq!(outside["error"], "user_not_in_channel");

    let home = json!({ "type": "home", "blocks": [{ "type": "divider" }] });
    let (_, _, published) = call(
        &emu,
        "views.publish",
        json!({ "user_id": "U1", "view": home }),
    )
    .await;
    assert_eq!(published["view"]["type"], "home");
    let (_, _, republished) = call(
        &emu,
        "views.publish",
        json!({ "user_id": "U1", "view": home }),
    )
    .await;
    assert_eq!(republished["view"]["id"], published["view"]["id"]);
    assert_eq!(emu.views().len(), 1);
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let emu = start().await;
    let url = format!("{}/auth.test", emu.base_url());
    emu.shutdown().await;
    let result = reqwest::Client::new()
        .post(url)
        .bearer_auth(TOKEN)
        .send()
        .await;
    assert!(result.is_err());
}

#[tokio::test]
async fn message_metadata_is_stored_and_returned_by_history_only_when_asked() {
    let emu = start().await;
    emu.add_user(EmulatedUser::new("U0HIST01", "Europe/Berlin"));
    let metadata = json!({ "event_type": "pulseloop_delivery", "event_payload": { "key": "k1" } });
    let (_, _, first) = call(
        &emu,
        "chat.postMessage",
        json!({ "channel": "U0HIST01", "text": "one", "metadata": metadata }),
    )
    .await;
    assert_eq!(first["ok"], true, "{first}");
    let (_, _, second) = call(
        &emu,
        "chat.postMessage",
        json!({ "channel": "U0HIST01", "text": "two" }),
    )
    .await;
    let dm = first["channel"].as_str().unwrap().to_string();
    assert_eq!(
        emu.dm_messages("U0HIST01")[0].metadata,
        Some(metadata.clone())
    );

    let (_, _, plain) = call(&emu, "conversations.history", json!({ "channel": dm })).await;
    assert_eq!(plain["ok"], true, "{plain}");
    let messages = plain["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["ts"], second["ts"], "newest first");
    assert!(messages[1].get("metadata").is_none(), "only when asked");
    assert_eq!(plain["has_more"], false);

    let (_, _, with) = call(
        &emu,
        "conversations.history",
        json!({ "channel": dm, "include_all_metadata": true }),
    )
    .await;
    assert_eq!(with["messages"][1]["metadata"], metadata);
    assert!(with["messages"][0].get("metadata").is_none());

    // `oldest` bounds the range (exclusive unless `inclusive`).
    let (_, _, newer) = call(
        &emu,
        "conversations.history",
        json!({ "channel": dm, "oldest": first["ts"] }),
    )
    .await;
    assert_eq!(newer["messages"].as_array().unwrap().len(), 1);
    let (_, _, both) = call(
        &emu,
        "conversations.history",
        json!({ "channel": dm, "oldest": first["ts"], "inclusive": true }),
    )
    .await;
    assert_eq!(both["messages"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn history_pages_with_a_cursor_and_errors_like_slack() {
    let emu = start().await;
    emu.add_user(EmulatedUser::new("U0HIST02", "Europe/Berlin"));
    emu.add_channel("C0OUTSIDE", "outside", false);
    for i in 0..3 {
        call(
            &emu,
            "chat.postMessage",
            json!({ "channel": "U0HIST02", "text": format!("m{i}") }),
        )
        .await;
    }
    let dm = emu.dm_channel_for("U0HIST02");
    let (_, _, page1) = call(
        &emu,
        "conversations.history",
        json!({ "channel": dm, "limit": 2 }),
    )
    .await;
    assert_eq!(page1["has_more"], true);
    let texts = |v: &Value| -> Vec<String> {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(texts(&page1), ["m2", "m1"]);
    let cursor = page1["response_metadata"]["next_cursor"].as_str().unwrap();
    assert!(!cursor.is_empty());
    let (_, _, page2) = call(
        &emu,
        "conversations.history",
        json!({ "channel": dm, "limit": 2, "cursor": cursor }),
    )
    .await;
    assert_eq!(texts(&page2), ["m0"]);
    assert_eq!(page2["has_more"], false);

    for (args, error) in [
        (json!({ "channel": "U0HIST02" }), "channel_not_found"),
        (json!({ "channel": "C0OUTSIDE" }), "not_in_channel"),
        (
            json!({ "channel": dm, "oldest": "yesterday" }),
            "invalid_ts_oldest",
        ),
        (
            json!({ "channel": dm, "latest": "x.1" }),
            "invalid_ts_latest",
        ),
    ] {
        let (status, _, body) = call(&emu, "conversations.history", args.clone()).await;
        assert_eq!(status, 200);
        assert_eq!(body, json!({ "ok": false, "error": error }), "{args}");
    }
}

#[tokio::test]
async fn replies_list_a_thread_with_metadata_and_history_leaves_replies_out() {
    let emu = start().await;
    emu.add_user(EmulatedUser::new("U0HIST03", "Europe/Berlin"));
    let (_, _, parent) = call(
        &emu,
        "chat.postMessage",
        json!({ "channel": "U0HIST03", "text": "parent" }),
    )
    .await;
    let dm = parent["channel"].as_str().unwrap();
    let metadata = json!({ "event_type": "pulseloop_delivery", "event_payload": { "key": "r" } });
    call(
        &emu,
        "chat.postMessage",
        json!({ "channel": dm, "thread_ts": parent["ts"], "text": "reply", "metadata": metadata }),
    )
    .await;
    let (_, _, history) = call(&emu, "conversations.history", json!({ "channel": dm })).await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 1);
    let (_, _, thread) = call(
        &emu,
        "conversations.replies",
        json!({ "channel": dm, "ts": parent["ts"], "include_all_metadata": true }),
    )
    .await;
    let messages = thread["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert!(messages
        .iter()
        .any(|m| m["text"] == "reply" && m["metadata"] == metadata));
    let (_, _, missing) = call(
        &emu,
        "conversations.replies",
        json!({ "channel": dm, "ts": "1.000001" }),
    )
    .await;
    assert_eq!(missing["error"], "thread_not_found");
}

#[tokio::test]
async fn metadata_of_the_wrong_shape_is_refused_like_slack() {
    let emu = start().await;
    emu.add_user(EmulatedUser::new("U0META02", "Europe/Berlin"));
    for (metadata, error) in [
        (json!("not json"), "invalid_metadata_format"),
        (json!([1, 2]), "invalid_metadata_format"),
        (json!({ "event_payload": {} }), "invalid_metadata_schema"),
        (
            json!({ "event_type": 7, "event_payload": {} }),
            "invalid_metadata_schema",
        ),
        (
            json!({ "event_type": "x", "event_payload": "key" }),
            "invalid_metadata_schema",
        ),
    ] {
        let (status, _, body) = call(
            &emu,
            "chat.postMessage",
            json!({ "channel": "U0META02", "text": "hi", "metadata": metadata }),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["ok"], false);
        assert_eq!(body["error"], error, "{metadata}");
    }
    assert!(emu.dm_messages("U0META02").is_empty());
}

#[tokio::test]
async fn post_then_drop_stores_the_message_and_answers_nothing() {
    let emu = start().await;
    emu.add_user(EmulatedUser::new("U0PTD001", "Europe/Berlin"));
    emu.inject(Fault::on("chat.postMessage", FaultKind::PostThenDrop).times(1));
    let sent = reqwest::Client::new()
        .post(format!("{}/chat.postMessage", emu.base_url()))
        .bearer_auth(TOKEN)
        .json(&json!({ "channel": "U0PTD001", "text": "hi" }))
        .send()
        .await;
    assert!(sent.is_err(), "no answer: {sent:?}");
    assert_eq!(
        emu.dm_messages("U0PTD001").len(),
        1,
        "but the post happened"
    );
    assert_eq!(emu.calls_to("chat.postMessage")[0].http_status, 0);
}

#[tokio::test]
async fn conversations_history_is_tier_3() {
    let emu = start_with(RateLimits {
        tier3_per_minute: 2,
        ..RateLimits::default()
    })
    .await;
    emu.add_user(EmulatedUser::new("U0TIER03", "Europe/Berlin"));
    let dm = emu.dm_channel_for("U0TIER03");
    for _ in 0..2 {
        let (status, _, _) = call(&emu, "conversations.history", json!({ "channel": dm })).await;
        assert_eq!(status, 200);
    }
    let (status, retry_after, body) =
        call(&emu, "conversations.history", json!({ "channel": dm })).await;
    assert_eq!(status, 429);
    assert!(retry_after.is_some());
    assert_eq!(body["error"], "ratelimited");
}
