//! The clicks' HTTP client: keep-alive HTTP/1.1 connections on hyper's connection API, opened
//! when every open one is busy and reused when idle.
//!
//! The generator shares the machine's cores with pulseloop, so what it spends per request is
//! taken from the service under test. reqwest's pooled client (URL parsing, header maps, its
//! pool's bookkeeping, a timeout timer per request) spent about as much CPU per click as
//! pulseloop's own HTTP handling; a connection here is a `SendRequest` taken from a stack and
//! put back, and the request is built before the run.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Mutex;

pub type Body = Full<Bytes>;

/// A POST of `body` to `path` on pulseloop with `headers`, ready to send.
pub fn post(path: &str, headers: &[(&str, &str)], body: String) -> Request<Body> {
    let mut request = Request::post(path).header("host", "127.0.0.1");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .body(Full::new(Bytes::from(body)))
        .expect("a request from valid parts")
}

/// Connections to one server.
pub struct Connections {
    addr: SocketAddr,
    idle: Mutex<Vec<SendRequest<Body>>>,
}

impl Connections {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends `request` and reads the whole response: its status code.
    pub async fn send(&self, request: Request<Body>) -> anyhow::Result<u16> {
        let idle = self.idle.lock().unwrap().pop();
        let mut sender = match idle {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.open().await?,
        };
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        // Read to the end, so the connection is free for the next request.
        response.into_body().collect().await?;
        if sender.is_ready() {
            self.idle.lock().unwrap().push(sender);
        }
        Ok(status)
    }

    async fn open(&self) -> anyhow::Result<SendRequest<Body>> {
        let stream = tokio::net::TcpStream::connect(self.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }
}
