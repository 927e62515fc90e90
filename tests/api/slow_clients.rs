//! Slow and flooding clients: signature headers are checked before the body is read, a
//! trickling body is cut off, shutdown does not wait for it, and a flood is shed.

use crate::helpers::*;
use serde_json::json;
use slack_emulator::SignOptions;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Liveness bound for things that must happen "soon" (never reached when they work).
const SOON: Duration = Duration::from_secs(20);

fn host_of(app: &TestApp) -> String {
    app.base_url.trim_start_matches("http://").to_string()
}

/// The head of a POST to /slack/events announcing a body of `length` bytes.
fn head(app: &TestApp, signed: bool, length: usize) -> String {
    let mut h = format!(
        "POST /slack/events HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n",
        host_of(app)
    );
    if signed {
        h.push_str(&format!(
            "X-Slack-Request-Timestamp: {}\r\nX-Slack-Signature: v0={}\r\n",
            app.now().timestamp(),
            "0".repeat(64)
        ));
    }
    h.push_str("\r\n");
    h
}

/// Reads what the server says until it closes the connection or `SOON` passes.
async fn read_reply(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let read = tokio::time::timeout(SOON, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server neither answered nor closed");
    String::from_utf8_lossy(&buf).to_string()
}

#[tokio::test]
async fn an_extreme_timestamp_is_a_401_not_an_overflow() {
    let app = spawn_app().await;
    for ts in [i64::MIN, i64::MAX] {
        let opts = SignOptions {
            timestamp: Some(ts),
            ..SignOptions::default()
        };
        let r = app
            .send_event_with(
                &json!({ "type": "url_verification", "challenge": "c" }),
                opts,
            )
            .await;
        assert_eq!(r.status(), 401, "{ts}");
    }
    assert_eq!(app.get("/healthz").await.status(), 200, "still serving");
}

#[tokio::test]
async fn a_request_without_signature_headers_is_refused_before_its_body_is_read() {
    let app = TestAppBuilder::default()
        .settings(|s| s.server.request_timeout_seconds = 300)
        .spawn()
        .await;
    // Announces 100 kB and sends none of it: only an early refusal can answer.
    let mut stream = TcpStream::connect(host_of(&app)).await.unwrap();
    stream
        .write_all(head(&app, false, 100_000).as_bytes())
        .await
        .unwrap();
    let reply = read_reply(&mut stream).await;
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");

    // A stale timestamp, the same.
    let mut stream = TcpStream::connect(host_of(&app)).await.unwrap();
    let stale = head(&app, true, 100_000).replace(
        &format!("Timestamp: {}", app.now().timestamp()),
        &format!("Timestamp: {}", app.now().timestamp() - 3600),
    );
    stream.write_all(stale.as_bytes()).await.unwrap();
    let reply = read_reply(&mut stream).await;
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
}

/// Sends the head, then one body byte every 50 ms until the server stops listening.
fn trickle(app: &TestApp) -> tokio::task::JoinHandle<String> {
    let host = host_of(app);
    let head = head(app, true, 100_000);
    tokio::spawn(async move {
        let mut stream = TcpStream::connect(host).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let (mut reader, mut writer) = stream.into_split();
        let writing = tokio::spawn(async move {
            while writer.write_all(b" ").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        writing.abort();
        String::from_utf8_lossy(&buf).to_string()
    })
}

#[tokio::test]
async fn a_client_trickling_its_body_is_cut_off() {
    let app = TestAppBuilder::default()
        .settings(|s| s.server.request_timeout_seconds = 1)
        .spawn()
        .await;
    let reply = tokio::time::timeout(SOON, trickle(&app))
        .await
        .expect("the trickler was cut off")
        .unwrap();
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 408"),
        "408 or the connection closed: {reply}"
    );
}

#[tokio::test]
async fn a_flood_is_shed_and_shutdown_does_not_wait_for_a_trickling_client() {
    let app = TestAppBuilder::default()
        .settings(|s| {
            s.server.request_timeout_seconds = 600;
            s.server.shutdown_grace_seconds = 1;
            s.server.max_concurrent_requests = 1;
        })
        .spawn()
        .await;
    let trickler = trickle(&app);
    // Once the trickler's request holds the only slot, other requests are refused at once.
    let mut shed = None;
    for _ in 0..500 {
        let r = app.get("/healthz").await;
        if r.status() == 503 {
            shed = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let shed = shed.expect("a request beyond the limit gets 503");
    assert_eq!(
        shed.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    // The trickler is mid-request: shutdown drains for the grace period, then closes it.
    tokio::time::timeout(SOON, app.stop())
        .await
        .expect("shutdown completes within its bound");
    let _ = tokio::time::timeout(SOON, trickler)
        .await
        .expect("the trickler's connection is closed");
}
