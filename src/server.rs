//! The accept loops. [`serve`] runs the public listener and [`serve_admin`] the admin one; both
//! take their listener and their shutdown future from the caller, so tests hand in a port-0
//! listener and a oneshot. HTTP/1.1 (keep-alive, pipelining) and HTTP/2 with prior knowledge are
//! both served. On shutdown the loop stops accepting, asks every open connection to finish its
//! in-flight requests, and waits at most the state's `shutdown_grace`.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::state::AppState;

/// A request handler: a pure function of the state and the request head (bodies are never read).
pub type Handler = fn(&AppState, &Request<Incoming>) -> Response<Full<Bytes>>;

/// How long a client may take to send a request head (slowloris bound).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The most a client may send as one request head, in bytes (larger gets 431).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// After an accept error (e.g. out of file descriptors), wait this long before accepting again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves the public `/.well-known/*` routes on `listener` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) {
    run(listener, state, crate::public::respond, "public", shutdown).await;
}

/// Serves the admin routes (`/challenge`, `/healthz`, `/readyz`, `/status`, `/metrics`).
pub async fn serve_admin(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) {
    run(listener, state, crate::admin::respond, "admin", shutdown).await;
}

async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    handler: Handler,
    name: &'static str,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(listener = name, cause = %e, "accept failed; retrying");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let service = service_fn(move |req: Request<Incoming>| {
                    let response = handler(&state, &req);
                    async move { Ok::<_, Infallible>(response) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(listener = name, cause = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let grace = state.shutdown_grace;
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            ?grace,
            "connections still open after the shutdown grace period; closing them"
        );
    }
}
