//! Fidelity: the emulator answers as Slack does where a test would otherwise pass locally and
//! fail against Slack (stricter), or fail locally and pass against Slack (looser). Every call
//! is a plain reqwest request in the shape Slack documents (form, JSON with a bearer token,
//! multipart), so what passes here is what a real client sends.

use reqwest::multipart;
use serde_json::{json, Value};
use slack_emulator::{EmulatedUser, Emulator, EmulatorConfig, RateLimits};

const TOKEN: &str = "xoxb-fidelity";

async fn start(scopes: Option<&[&str]>) -> Emulator {
    slack_emulator::install_crypto_provider();
    let emu = Emulator::start(EmulatorConfig {
        bot_token: TOKEN.into(),
        limits: RateLimits::unlimited(),
        scopes: scopes.map(|s| s.iter().map(|x| x.to_string()).collect()),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts");
    emu.add_user(
        EmulatedUser::new("U0ADA", "Europe/London")
            .named("Ada Lovelace")
            .email("ada@example.com"),
    );
    emu.add_user(EmulatedUser::new("U0GONE", "UTC").deleted());
    emu.add_channel("C0GENERAL", "general", true);
    emu
}

fn url(emu: &Emulator, method: &str) -> String {
    format!("{}/{method}", emu.base_url())
}

async fn answer(request: reqwest::RequestBuilder) -> Value {
    request
        .send()
        .await
        .expect("the emulator answers")
        .json()
        .await
        .expect("JSON")
}

/// `application/json` with the token in the Authorization header (Slack's JSON shape).
async fn json_call(emu: &Emulator, method: &str, body: Value) -> Value {
    answer(
        reqwest::Client::new()
            .post(url(emu, method))
            .bearer_auth(TOKEN)
            .json(&body),
    )
    .await
}

/// `application/x-www-form-urlencoded` (every method accepts it).
async fn form_call(emu: &Emulator, method: &str, form: &[(&str, &str)]) -> Value {
    answer(
        reqwest::Client::new()
            .post(url(emu, method))
            .bearer_auth(TOKEN)
            .form(form),
    )
    .await
}

fn messages_of(v: &Value) -> String {
    v["response_metadata"]["messages"].to_string()
}

// --- stricter: what Slack refuses ---

#[tokio::test]
async fn a_token_inside_a_json_body_is_not_authentication() {
    let emu = start(None).await;
    let refused = answer(
        reqwest::Client::new()
            .post(url(&emu, "auth.test"))
            .json(&json!({ "token": TOKEN })),
    )
    .await;
    assert_eq!(refused["error"], "not_authed");
    // In a form body it is (Slack's legacy way).
    let accepted = answer(
        reqwest::Client::new()
            .post(url(&emu, "auth.test"))
            .form(&[("token", TOKEN)]),
    )
    .await;
    assert_eq!(accepted["ok"], true);
}

#[tokio::test]
async fn form_only_methods_do_not_read_a_json_body() {
    let emu = start(None).await;
    let as_json = json_call(&emu, "users.info", json!({ "user": "U0ADA" })).await;
    assert_eq!(as_json["ok"], false, "{as_json}");
    assert_eq!(as_json["error"], "user_not_found");
    let as_form = form_call(&emu, "users.info", &[("user", "U0ADA")]).await;
    assert_eq!(as_form["ok"], true);
    let dm = emu.dm_channel_for("U0ADA");
    let history = json_call(&emu, "conversations.history", json!({ "channel": dm })).await;
    assert_eq!(history["error"], "channel_not_found");
}

#[tokio::test]
async fn attachments_are_checked_and_limited_to_100() {
    let emu = start(None).await;
    let attachment = json!({ "fallback": "f", "text": "an attachment", "color": "#36a64f" });
    let hundred = json_call(
        &emu,
        "chat.postMessage",
        json!({ "channel": "C0GENERAL", "attachments": vec![attachment.clone(); 100] }),
    )
    .await;
    assert_eq!(
        hundred["ok"], true,
        "attachments alone are enough: {hundred}"
    );
    assert_eq!(
        hundred["message"]["attachments"].as_array().map(Vec::len),
        Some(100)
    );
    let too_many = json_call(
        &emu,
        "chat.postMessage",
        json!({ "channel": "C0GENERAL", "attachments": vec![attachment; 101] }),
    )
    .await;
    assert_eq!(too_many["error"], "too_many_attachments");
    let not_a_list = form_call(
        &emu,
        "chat.postMessage",
        &[("channel", "C0GENERAL"), ("attachments", "{\"text\":1}")],
    )
    .await;
    assert_eq!(not_a_list["error"], "invalid_attachments");
}

#[tokio::test]
async fn button_styles_picker_values_and_duplicate_action_ids_are_refused() {
    let emu = start(None).await;
    let post = |elements: Value| {
        json!({ "channel": "C0GENERAL", "text": "x",
                "blocks": [{ "type": "actions", "elements": elements }] })
    };
    let button = |id: &str, style: &str| {
        json!({ "type": "button", "action_id": id, "style": style,
                "text": { "type": "plain_text", "text": "Go" } })
    };
    let green = json_call(
        &emu,
        "chat.postMessage",
        post(json!([button("a", "green")])),
    )
    .await;
    assert_eq!(green["error"], "invalid_blocks");
    assert!(
        messages_of(&green).contains("/blocks/0/elements/0/style"),
        "{green}"
    );
    let danger = json_call(
        &emu,
        "chat.postMessage",
        post(json!([button("a", "danger")])),
    )
    .await;
    assert_eq!(danger["ok"], true);

    let twice = json_call(
        &emu,
        "chat.postMessage",
        post(json!([button("a", "primary"), button("a", "danger")])),
    )
    .await;
    assert!(
        messages_of(&twice).contains("duplicate action_id"),
        "{twice}"
    );

    let bad_date =
        json!([{ "type": "datepicker", "action_id": "d", "initial_date": "2026-13-01" }]);
    let refused = json_call(&emu, "chat.postMessage", post(bad_date)).await;
    assert!(
        messages_of(&refused).contains("/blocks/0/elements/0/initial_date"),
        "{refused}"
    );
    let bad_time = json!([{ "type": "timepicker", "action_id": "t", "initial_time": "25:00" }]);
    let refused = json_call(&emu, "chat.postMessage", post(bad_time)).await;
    assert!(messages_of(&refused).contains("initial_time"), "{refused}");
    let good = json!([
        { "type": "datepicker", "action_id": "d", "initial_date": "2028-02-29" },
        { "type": "timepicker", "action_id": "t", "initial_time": "23:59" }
    ]);
    assert_eq!(
        json_call(&emu, "chat.postMessage", post(good)).await["ok"],
        true
    );
}

#[tokio::test]
async fn a_token_without_the_scope_gets_missing_scope_with_needed_and_provided() {
    let emu = start(Some(&["chat:write", "im:history"])).await;
    let refused = form_call(&emu, "users.info", &[("user", "U0ADA")]).await;
    assert_eq!(
        refused,
        json!({ "ok": false, "error": "missing_scope", "needed": "users:read",
                "provided": "chat:write,im:history" })
    );
    let general = form_call(&emu, "conversations.history", &[("channel", "C0GENERAL")]).await;
    assert_eq!(general["needed"], "channels:history");
    let dm = emu.dm_channel_for("U0ADA");
    let history = form_call(&emu, "conversations.history", &[("channel", &dm)]).await;
    assert_eq!(history["ok"], true, "{history}");
    let post = form_call(
        &emu,
        "chat.postMessage",
        &[("channel", "U0ADA"), ("text", "hi")],
    )
    .await;
    assert_eq!(post["ok"], true);
}

// --- looser: what Slack accepts ---

#[tokio::test]
async fn every_block_type_slack_sdk_knows_is_accepted() {
    let emu = start(None).await;
    let text = |t: &str| json!({ "type": "plain_text", "text": t });
    let rich = json!({ "type": "rich_text", "elements": [{ "type": "rich_text_section",
                        "elements": [{ "type": "text", "text": "rich" }] }] });
    let blocks = json!([
        { "type": "header", "text": text("Header") },
        { "type": "section", "text": { "type": "mrkdwn", "text": "*s*" } },
        { "type": "divider" },
        { "type": "image", "image_url": "https://example.com/a.png", "alt_text": "a" },
        { "type": "context", "elements": [{ "type": "mrkdwn", "text": "c" }] },
        { "type": "actions", "elements": [{ "type": "button", "action_id": "b", "text": text("B") }] },
        { "type": "input", "label": text("L"), "element": { "type": "plain_text_input", "action_id": "i" } },
        rich,
        { "type": "markdown", "text": "**md**" },
        { "type": "video", "alt_text": "v", "title": text("Video"),
          "thumbnail_url": "https://example.com/t.png", "video_url": "https://example.com/v" },
        { "type": "file", "external_id": "ext-1", "source": "remote" },
        { "type": "call", "call_id": "R0CALL" },
        { "type": "table", "rows": [
            [{ "type": "raw_text", "text": "Week" }, { "type": "raw_text", "text": "Score" }],
            [{ "type": "raw_text", "text": "1" }, { "type": "raw_text", "text": "4" }]
        ] }
    ]);
    let posted = json_call(
        &emu,
        "chat.postMessage",
        json!({ "channel": "C0GENERAL", "text": "all blocks", "blocks": blocks }),
    )
    .await;
    assert_eq!(posted["ok"], true, "{posted}");
    // Slack fills in a block_id for every block that had none, and names the bot.
    let answered = posted["message"]["blocks"].as_array().expect("blocks");
    assert!(answered.iter().all(|b| b["block_id"].is_string()));
    assert_eq!(posted["message"]["bot_profile"]["id"], "B0PULSEBOT");
    assert_eq!(posted["message"]["bot_profile"]["app_id"], "A0PULSELOOP");
    let history = form_call(&emu, "conversations.history", &[("channel", "C0GENERAL")]).await;
    assert_eq!(
        history["messages"][0]["blocks"], posted["message"]["blocks"],
        "the generated ids are kept"
    );
}

#[tokio::test]
async fn channel_names_and_multipart_bodies_are_accepted() {
    let emu = start(None).await;
    let by_name = form_call(
        &emu,
        "chat.postMessage",
        &[("channel", "#general"), ("text", "hi")],
    )
    .await;
    assert_eq!(by_name["channel"], "C0GENERAL", "{by_name}");
    let unknown = form_call(
        &emu,
        "chat.postMessage",
        &[("channel", "#nowhere"), ("text", "hi")],
    )
    .await;
    assert_eq!(unknown["error"], "channel_not_found");

    let form = multipart::Form::new()
        .text("channel", "U0ADA")
        .text("text", "sent as multipart");
    let multipart = answer(
        reqwest::Client::new()
            .post(url(&emu, "chat.postMessage"))
            .bearer_auth(TOKEN)
            .multipart(form),
    )
    .await;
    assert_eq!(multipart["ok"], true, "{multipart}");
    assert_eq!(emu.dm_messages("U0ADA")[0].text, "sent as multipart");
}

#[tokio::test]
async fn complete_upload_shares_to_a_comma_list_of_channels() {
    let emu = start(None).await;
    let url_answer = form_call(
        &emu,
        "files.getUploadURLExternal",
        &[("filename", "a.csv"), ("length", "3")],
    )
    .await;
    let file_id = url_answer["file_id"].as_str().expect("file id").to_string();
    reqwest::Client::new()
        .post(url_answer["upload_url"].as_str().expect("url"))
        .body("a,b")
        .send()
        .await
        .expect("upload");
    let files = json!([{ "id": file_id, "title": "A" }]).to_string();
    let done = form_call(
        &emu,
        "files.completeUploadExternal",
        &[("files", &files), ("channels", "C0GENERAL, U0ADA")],
    )
    .await;
    assert_eq!(done["ok"], true, "{done}");
    assert_eq!(done["files"][0]["channels"], json!(["C0GENERAL"]));
    assert_eq!(
        done["files"][0]["ims"],
        json!([emu.dm_channel_for("U0ADA")])
    );
    assert_eq!(
        emu.messages().len(),
        2,
        "one share message per conversation"
    );
}

#[tokio::test]
async fn views_publish_names_unknown_and_deactivated_users_as_slack_does() {
    let emu = start(None).await;
    let home = json!({ "type": "home", "blocks": [{ "type": "divider" }] });
    let unknown = json_call(
        &emu,
        "views.publish",
        json!({ "user_id": "U0NOBODY", "view": home }),
    )
    .await;
    assert_eq!(unknown["error"], "invalid_arguments");
    assert_eq!(
        messages_of(&unknown),
        "[\"invalid `user_id`\"]",
        "the spec's example"
    );
    let gone = json_call(
        &emu,
        "views.publish",
        json!({ "user_id": "U0GONE", "view": home }),
    )
    .await;
    assert_eq!(gone["error"], "user_disabled");
    let ok = json_call(
        &emu,
        "views.publish",
        json!({ "user_id": "U0ADA", "view": home }),
    )
    .await;
    assert!(ok["view"]["blocks"][0]["block_id"].is_string(), "{ok}");
}

#[tokio::test]
async fn user_objects_carry_slacks_common_profile_fields() {
    let emu = start(None).await;
    let info = form_call(&emu, "users.info", &[("user", "U0ADA")]).await;
    let profile = &info["user"]["profile"];
    for field in [
        "real_name",
        "display_name",
        "first_name",
        "last_name",
        "title",
        "phone",
        "email",
        "status_text",
        "status_emoji",
        "avatar_hash",
        "image_24",
        "image_48",
        "image_72",
        "image_192",
        "image_512",
        "team",
    ] {
        assert!(
            profile.get(field).is_some(),
            "profile.{field} missing: {profile}"
        );
    }
    assert_eq!(profile["first_name"], "Ada");
    assert_eq!(profile["last_name"], "Lovelace");
    assert_eq!(info["user"]["is_email_confirmed"], true);
}

#[tokio::test]
async fn the_added_read_and_write_methods_answer_in_slacks_shapes() {
    let emu = start(None).await;
    let found = form_call(&emu, "users.lookupByEmail", &[("email", "ADA@example.com")]).await;
    assert_eq!(found["user"]["id"], "U0ADA", "{found}");
    let missing = form_call(
        &emu,
        "users.lookupByEmail",
        &[("email", "nobody@example.com")],
    )
    .await;
    assert_eq!(missing["error"], "users_not_found");

    let dm = emu.dm_channel_for("U0ADA");
    let info = form_call(&emu, "conversations.info", &[("channel", &dm)]).await;
    assert_eq!(info["channel"]["is_im"], true);
    assert_eq!(info["channel"]["user"], "U0ADA");
    let general = form_call(
        &emu,
        "conversations.info",
        &[("channel", "C0GENERAL"), ("include_num_members", "true")],
    )
    .await;
    assert_eq!(general["channel"]["name"], "general");
    assert_eq!(general["channel"]["is_channel"], true);
    assert_eq!(general["channel"]["is_member"], true);
    assert!(general["channel"]["num_members"].is_number());
    let none = form_call(&emu, "conversations.info", &[("channel", "C0NONE")]).await;
    assert_eq!(none["error"], "channel_not_found");

    let parent = json_call(
        &emu,
        "chat.postMessage",
        json!({ "channel": dm, "text": "parent" }),
    )
    .await;
    let parent_ts = parent["ts"].as_str().expect("ts").to_string();
    let reply = json_call(
        &emu,
        "chat.postMessage",
        json!({ "channel": dm, "text": "reply", "thread_ts": parent_ts }),
    )
    .await;
    let reply_ts = reply["ts"].as_str().expect("ts").to_string();
    let link = form_call(
        &emu,
        "chat.getPermalink",
        &[("channel", &dm), ("message_ts", &reply_ts)],
    )
    .await;
    let expected = format!(
        "https://sandbox.slack.com/archives/{dm}/p{}?thread_ts={parent_ts}&cid={dm}",
        reply_ts.replace('.', "")
    );
    assert_eq!(link["permalink"], expected);
    let replies = form_call(
        &emu,
        "conversations.replies",
        &[("channel", &dm), ("ts", &parent_ts)],
    )
    .await;
    assert_eq!(replies["messages"].as_array().map(Vec::len), Some(2));

    let deleted = json_call(
        &emu,
        "chat.delete",
        json!({ "channel": dm, "ts": parent_ts }),
    )
    .await;
    assert_eq!(
        deleted,
        json!({ "ok": true, "channel": dm, "ts": parent_ts })
    );
    let again = json_call(
        &emu,
        "chat.delete",
        json!({ "channel": dm, "ts": parent_ts }),
    )
    .await;
    assert_eq!(again["error"], "message_not_found");
    let history = form_call(&emu, "conversations.history", &[("channel", &dm)]).await;
    assert_eq!(history["messages"], json!([]));
}
