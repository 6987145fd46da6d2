//! The accept loop: HTTP/1.1 connections served by hyper with a deadline on reading each
//! request's headers (`axum::serve` offers none, so a client dribbling its headers, or opening
//! connections and sending nothing, would hold them for ever), the peer's address for
//! `ConnectInfo`, and a graceful shutdown: on the signal the listener closes at once, requests
//! in flight get the grace period, then whatever is left is cut off.
//!
//! HTTP/1.1 only: detecting HTTP/2 by its preface would itself wait on the client with no
//! deadline, and the server is reached directly or through a reverse proxy speaking HTTP/1.1.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::Service;

/// How the loop treats connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionRules {
    /// For a request line and headers to arrive (and for an idle kept-alive connection).
    pub header_timeout: Duration,
    /// For requests in flight to finish once shutdown starts.
    pub shutdown_grace: Duration,
}

impl ConnectionRules {
    pub fn from_config(config: &crate::config::Config) -> Self {
        ConnectionRules {
            header_timeout: Duration::from_secs(config.header_timeout_secs.max(1)),
            shutdown_grace: Duration::from_secs(config.shutdown_grace_secs),
        }
    }
}

/// How serving ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Every request in flight finished within the grace period.
    Drained,
    /// Some were still running when the grace period ran out; they end with the process.
    CutOff,
}

/// Serves `app` on `listener` until `shutdown` completes, then drains as `rules` say.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    rules: ConnectionRules,
    shutdown: impl Future<Output = ()>,
) -> Stopped {
    let mut make_service: IntoMakeServiceWithConnectInfo<Router, SocketAddr> =
        app.into_make_service_with_connect_info::<SocketAddr>();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(rules.header_timeout).keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    pause_after_accept_error(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = match make_service.call(peer).await {
            Ok(service) => service,
            Err(never) => match never {},
        };
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
        tokio::spawn(async move {
            // A client that goes away or breaks the protocol is routine, not the server's fault.
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    // New connections are refused from here on.
    drop(listener);
    match tokio::time::timeout(rules.shutdown_grace, graceful.shutdown()).await {
        Ok(()) => Stopped::Drained,
        Err(_) => Stopped::CutOff,
    }
}

/// Accept fails for a connection reset before it was taken (carry on) or for running out of
/// file descriptors (wait a little for some to close, rather than spin).
async fn pause_after_accept_error(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(error.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::warn!(%error, "cannot accept connections; retrying in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
