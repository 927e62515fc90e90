//! Socket Mode as a bot in any language sees it: apps.connections.open over HTTP, then the
//! WebSocket (hello, envelopes, acks, disconnect, redelivery), driven through `/_control`.

mod common;
use common::json_of;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use slack_emulator::{Emulator, EmulatorConfig};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const APP_TOKEN: &str = "xapp-1-A0PULSELOOP-1-emulatortest";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn start() -> Emulator {
    slack_emulator::install_crypto_provider();
    let emu = Emulator::start(EmulatorConfig::default())
        .await
        .expect("emulator starts");
    emu.add_app_token(APP_TOKEN);
    emu
}

async fn open(emu: &Emulator, token: &str) -> Value {
    json_of(
        reqwest::Client::new()
            .post(format!("{}/apps.connections.open", emu.base_url()))
            .bearer_auth(token),
    )
    .await
}

async fn connect(emu: &Emulator) -> Ws {
    let reply = open(emu, APP_TOKEN).await;
    assert_eq!(reply["ok"], true, "{reply}");
    let url = reply["url"].as_str().unwrap();
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connects");
    ws
}

/// The next text frame as JSON (pings skipped), within 5 s.
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .expect("the socket is open")
            .expect("a readable frame");
        if let Message::Text(text) = frame {
            return serde_json::from_str(text.as_str()).expect("JSON");
        }
    }
}

async fn control(emu: &Emulator, path: &str, body: Value) -> Value {
    json_of(
        reqwest::Client::new()
            .post(format!("http://{}/_control/socket{path}", emu.addr()))
            .json(&body),
    )
    .await
}

async fn ack(ws: &mut Ws, envelope: &Value, payload: Option<Value>) {
    let mut frame = json!({ "envelope_id": envelope["envelope_id"] });
    if let Some(p) = payload {
        frame["payload"] = p;
    }
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .expect("ack sent");
}

#[tokio::test]
async fn only_a_known_app_token_gets_a_url_and_each_url_works_once() {
    let emu = start().await;
    assert_eq!(open(&emu, "xapp-1-unknown").await["error"], "invalid_auth");
    assert_eq!(
        open(&emu, "xoxb-sandbox").await["error"],
        "not_allowed_token_type",
        "a bot token cannot open Socket Mode"
    );
    let none =
        json_of(reqwest::Client::new().post(format!("{}/apps.connections.open", emu.base_url())))
            .await;
    assert_eq!(none["error"], "not_authed");
    assert_eq!(emu.calls_to("apps.connections.open").len(), 3);

    let url = open(&emu, APP_TOKEN).await["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(url.starts_with("ws://127.0.0.1:"), "{url}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("connects");
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["connection_info"]["app_id"], "A0PULSELOOP");
    assert!(
        tokio_tungstenite::connect_async(url.as_str())
            .await
            .is_err(),
        "a used ticket is refused"
    );
}

#[tokio::test]
async fn envelopes_are_delivered_acked_and_redelivered_after_a_reconnect() {
    let emu = start().await;
    let mut ws = connect(&emu).await;
    assert_eq!(next_json(&mut ws).await["type"], "hello");

    // A slash command over the control API: delivered with the form's fields as JSON.
    let injected = control(
        &emu,
        "/envelopes",
        json!({ "command": { "user": "U0AMY", "text": "help" } }),
    )
    .await;
    let envelope = next_json(&mut ws).await;
    assert_eq!(envelope["envelope_id"], injected["envelope_id"]);
    assert_eq!(envelope["type"], "slash_commands");
    assert_eq!(envelope["accepts_response_payload"], true);
    assert_eq!(envelope["retry_attempt"], 0);
    assert_eq!(envelope["payload"]["command"], "/pulse");
    assert_eq!(envelope["payload"]["text"], "help");
    ack(&mut ws, &envelope, Some(json!({ "text": "Here is help" }))).await;
    let id = envelope["envelope_id"].as_str().unwrap();
    let acked = emu
        .socket_wait_ack(id, 1, Duration::from_secs(5))
        .await
        .expect("the ack is recorded");
    assert!(acked.in_time);
    assert_eq!(acked.payload, Some(json!({ "text": "Here is help" })));

    // An event that is not acked before the connection drops comes again on the next one.
    let id = emu.socket_send_event(
        "Ev0EMU1",
        json!({ "type": "app_home_opened", "user": "U0AMY", "tab": "home" }),
    );
    let envelope = next_json(&mut ws).await;
    assert_eq!(envelope["type"], "events_api");
    assert_eq!(envelope["accepts_response_payload"], false);
    assert_eq!(envelope["payload"]["event_id"], "Ev0EMU1");
    let dropped = control(&emu, "/drop", json!({})).await;
    assert_eq!(dropped["connections"], 1);
    drop(ws);

    let mut ws = connect(&emu).await;
    assert_eq!(next_json(&mut ws).await["type"], "hello");
    let again = next_json(&mut ws).await;
    assert_eq!(again["envelope_id"], id.as_str());
    assert_eq!(again["retry_attempt"], 1);
    assert_eq!(again["retry_reason"], "timeout");
    ack(&mut ws, &again, None).await;
    assert!(emu
        .socket_wait_ack(&id, 1, Duration::from_secs(5))
        .await
        .is_some());
    let status =
        json_of(reqwest::Client::new().get(format!("http://{}/_control/socket", emu.addr()))).await;
    assert_eq!(status["connections_opened"], 2);
    assert!(status["envelopes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["pending"] == false));
}

#[tokio::test]
async fn a_disconnect_sends_new_envelopes_to_the_next_connection() {
    let emu = start().await;
    let mut old = connect(&emu).await;
    assert_eq!(next_json(&mut old).await["type"], "hello");
    let told = control(
        &emu,
        "/disconnect",
        json!({ "reason": "refresh_requested" }),
    )
    .await;
    assert_eq!(told["connections"], 1);
    let message = next_json(&mut old).await;
    assert_eq!(message["type"], "disconnect");
    assert_eq!(message["reason"], "refresh_requested");

    // Injected while only the old connection is open: it waits for the new one.
    let injected = control(
        &emu,
        "/envelopes",
        json!({ "block_actions": { "user": "U0AMY", "ts": "1.2", "action_id": "answer:4", "block_id": "b", "value": "4" } }),
    )
    .await;
    let mut new = connect(&emu).await;
    assert_eq!(next_json(&mut new).await["type"], "hello");
    let envelope = next_json(&mut new).await;
    assert_eq!(envelope["envelope_id"], injected["envelope_id"]);
    assert_eq!(envelope["type"], "interactive");
    assert_eq!(envelope["payload"]["type"], "block_actions");
    assert_eq!(envelope["retry_attempt"], 0);

    let refused = reqwest::Client::new()
        .post(format!("http://{}/_control/socket/disconnect", emu.addr()))
        .json(&json!({ "reason": "bored" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
}
