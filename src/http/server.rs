//! The HTTP server loop: hyper with a timer, so a client cannot hold a connection open by
//! sending its headers slowly (header-read timeout), and a shutdown that drains open
//! connections for a bounded time, then closes what is left (a trickling client cannot
//! hold the process up). The request timeout and the concurrency limit are layers of the
//! router (see [`super::router`]).

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting, lets open
/// connections finish for up to `drain`, and closes the rest.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    drain: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Some(header_read_timeout));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
            // Reap finished connection tasks so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        connections.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(drain) => {
            tracing::warn!(
                open = connections.len(),
                "connections still open after the drain period; closing them"
            );
        }
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}
