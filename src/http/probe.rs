//! `pulseloop healthcheck`: one plain HTTP/1.1 `GET` of an operations endpoint (`/healthz`,
//! `/readyz`) of the server on this machine, for container health checks in a runtime image
//! that has no curl (deploy/Dockerfile).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The address to probe for a server bound to `bind`: the same port, and the loopback
/// address when the server listens on every interface (`0.0.0.0`, `[::]`).
pub fn local_address(bind: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = bind
        .parse()
        .map_err(|_| format!("'{bind}' is not an address like 127.0.0.1:3000"))?;
    Ok(match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    })
}

/// `GET path` at `addr`; the response's status code, or why there is none. The whole
/// exchange must finish within `timeout`.
pub async fn get_status(addr: SocketAddr, path: &str, timeout: Duration) -> Result<u16, String> {
    if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("'{path}' is not a path like /healthz"));
    }
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("cannot send to {addr}: {e}"))?;
        // Only the status line matters: read until its end (it fits in the first kilobyte).
        let mut head = Vec::with_capacity(256);
        let mut chunk = [0u8; 256];
        while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 1024 {
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("cannot read from {addr}: {e}"))?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&chunk[..n]);
        }
        status_of(&head).ok_or_else(|| format!("{addr} did not answer with an HTTP status line"))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("{addr} did not answer within {timeout:?}")))
}

/// The code in an HTTP/1.x status line (`HTTP/1.1 200 OK`).
fn status_of(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    (code.len() == 3).then(|| code.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_bind_is_probed_on_loopback() {
        assert_eq!(
            local_address("0.0.0.0:3000").unwrap(),
            "127.0.0.1:3000".parse().unwrap()
        );
        assert_eq!(
            local_address("[::]:8080").unwrap(),
            "[::1]:8080".parse().unwrap()
        );
        assert_eq!(
            local_address("10.1.2.3:3000").unwrap(),
            "10.1.2.3:3000".parse().unwrap()
        );
        assert!(local_address("localhost").is_err());
    }

    #[test]
    fn reads_the_status_line() {
        assert_eq!(
            status_of(b"HTTP/1.1 200 OK\r\ncontent-length: 0"),
            Some(200)
        );
        assert_eq!(
            status_of(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(status_of(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_of(b"HTTP/1.1 2000 OK\r\n"), None);
    }
}
