//! The accept loops. [`serve`] runs the public listener and [`serve_admin`] the admin one; both
//! take their listener and their shutdown future from the caller, so tests hand in a port-0
//! listener and a oneshot. HTTP/1.1 (keep-alive, pipelining) and HTTP/2 with prior knowledge are
//! both served. Each connection holds a permit of the listener's connection limit, must send its
//! first byte and then a whole request head within the header read timeout, and may send at most
//! [`MAX_HEADERS`] fields in [`MAX_HEADER_BYTES`]. On shutdown the loop stops accepting, asks every
//! open connection to finish its in-flight requests, and waits at most the shutdown grace.

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
use tokio::sync::Semaphore;

use crate::state::AppState;

/// A request handler: a pure function of the state and the request head (bodies are never read).
pub type Handler = fn(&AppState, &Request<Incoming>) -> Response<Full<Bytes>>;

/// The most a client may send as one request head, in bytes (HTTP/1 answers 431 beyond it).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most header fields in one request (HTTP/1 answers 431 beyond it).
pub const MAX_HEADERS: usize = 64;
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
    let settings = state.settings;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(MAX_HEADER_BYTES.max(8192))
        .max_headers(MAX_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_concurrent_streams(128)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    let builder = Arc::new(builder);
    let permits = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let mut saturated = false;
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        if permits.available_permits() == 0 && !saturated {
            saturated = true;
            tracing::warn!(
                listener = name,
                limit = settings.max_connections,
                "connection limit reached; new connections wait in the accept backlog until one closes (raise --max-connections if this is normal load)"
            );
        } else if saturated && permits.available_permits() > settings.max_connections / 10 {
            saturated = false;
            tracing::info!(listener = name, "below the connection limit again");
        }
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(listener = name, cause = %e, "accept failed; retrying");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let first_byte = settings.header_read_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            // A client that connects and sends nothing would otherwise hold its connection
            // forever: hyper's header timeout starts only once the protocol is known.
            let mut probe = [0u8; 1];
            match tokio::time::timeout(first_byte, stream.peek(&mut probe)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            let service = service_fn(move |req: Request<Incoming>| {
                let response = handler(&state, &req);
                async move { Ok::<_, Infallible>(response) }
            });
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(listener = name, cause = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let grace = settings.shutdown_grace;
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
