//! The accept loops. [`serve`] runs the public listener and [`serve_admin`] the admin one; both
//! take their listener and their shutdown future from the caller, so tests hand in a port-0
//! listener and a oneshot. HTTP/1.1 (keep-alive, pipelining, half-closed requests) and HTTP/2 with
//! prior knowledge are both served.
//!
//! Every step of a connection's life is bounded, so no client can hold a connection permit for
//! free. Each listener has its own permits (the admin listener never waits behind the public one).
//! A connection must send its first byte and then a whole request head within the header read
//! timeout, and may send at most [`MAX_HEADERS`] fields in [`MAX_HEADER_BYTES`]. Its answers must
//! drain: a write that makes no progress for the header read timeout closes the connection (a
//! client reading 1 byte/s with many pipelined requests loses its permit), and pipelined answers
//! in flight are capped by hyper's bounded write buffer (it stops reading requests while that is
//! full). At the limit, the connection that has waited longest without sending a byte is shed to
//! make room for the new one (also when accepting fails for lack of file descriptors).
//!
//! On shutdown the loop stops accepting; every HTTP/1 answer from then on carries
//! `Connection: close`, so busy keep-alive clients learn to leave before their next request
//! (closing a keep-alive connection under a client that is sending would lose that request);
//! after a short linger the idle ones are closed, in-flight answers finish, and the drain is
//! bounded by the shutdown grace.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::futures::Notified;
use tokio::sync::{Notify, Semaphore, oneshot};
use tokio::time::Sleep;

use crate::state::AppState;

/// A request handler: a pure function of the state and the request head (bodies are never read),
/// taken as its own function type so the connection's service calls it directly (inlined) instead
/// of through a pointer.
trait Handle:
    Fn(&AppState, &Request<Incoming>) -> Response<Full<Bytes>> + Copy + Send + 'static
{
}
impl<F: Fn(&AppState, &Request<Incoming>) -> Response<Full<Bytes>> + Copy + Send + 'static> Handle
    for F
{
}

/// The most a client may send as one request head, in bytes (HTTP/1 answers 431 beyond it).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most header fields in one request (HTTP/1 answers 431 beyond it).
pub const MAX_HEADERS: usize = 64;
/// After an accept error (e.g. out of file descriptors), wait this long before accepting again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// While accepting keeps failing, warn at most this often (with the count since the last warning).
const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(10);
/// After a shutdown signal, how long idle keep-alive connections may still send one request (it is
/// answered with `Connection: close`) before they are closed; at most half the shutdown grace.
const LINGER: Duration = Duration::from_secs(1);
/// `EMFILE` and `ENFILE` (Linux): out of file descriptors, per process or system-wide.
const OUT_OF_FDS: [i32; 2] = [24, 23];
const CLOSE: HeaderValue = HeaderValue::from_static("close");

/// Serves the public `/.well-known/*` routes on `listener` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) {
    accept_loop(
        listener,
        state,
        crate::public::respond::<Incoming>,
        "public",
        shutdown,
    )
    .await;
}

/// Serves the admin routes (`/challenge`, `/healthz`, `/readyz`, `/status`, `/metrics`).
pub async fn serve_admin(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) {
    accept_loop(
        listener,
        state,
        crate::admin::respond::<Incoming>,
        "admin",
        shutdown,
    )
    .await;
}

/// Connections that have not sent a byte yet, oldest first: the first to go when the listener
/// needs room. Each entry wakes its connection's task, which then closes.
#[derive(Default)]
struct Silent {
    waiting: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    next: u64,
    by_age: BTreeMap<u64, (Instant, oneshot::Sender<()>)>,
}

/// How long a connection must have been silent before it may be shed: one just accepted has had
/// no chance to show the bytes it already sent.
const SHED_AFTER: Duration = Duration::from_millis(250);

impl Silent {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enter(&self) -> (u64, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let mut w = self.lock();
        let id = w.next;
        w.next += 1;
        w.by_age.insert(id, (Instant::now(), tx));
        (id, rx)
    }

    fn leave(&self, id: u64) {
        self.lock().by_age.remove(&id);
    }

    /// Closes the oldest connection silent for at least [`SHED_AFTER`]. `Ok` when one was closed;
    /// else how long until the oldest qualifies (`None`: there is none).
    fn shed_oldest(&self) -> Result<(), Option<Duration>> {
        let mut w = self.lock();
        let age = w.by_age.first_key_value().map(|(_, (at, _))| at.elapsed());
        match age {
            None => Err(None),
            Some(age) if age < SHED_AFTER => Err(Some(SHED_AFTER - age)),
            Some(_) => {
                let (_, (_, tx)) = w.by_age.pop_first().expect("just seen");
                drop(w);
                let _ = tx.send(());
                Ok(())
            }
        }
    }

    fn shed_all(&self) {
        let all = std::mem::take(&mut self.lock().by_age);
        for (_, tx) in all.into_values() {
            let _ = tx.send(());
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<AppState>,
    handler: impl Handle,
    name: &'static str,
    shutdown: impl Future<Output = ()>,
) {
    let settings = state.settings;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        // A client may send its requests and shut its side down: answer them all.
        .half_close(true)
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
    let limit = settings.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(limit));
    let silent = Arc::new(Silent::default());
    let closing = Arc::new(AtomicBool::new(false));
    let cut = Arc::new(Cut::default());
    let mut saturated = false;
    let mut accept_failures = 0u64;
    let mut accept_warned: Option<Instant> = None;
    tokio::pin!(shutdown);
    'accept: loop {
        if permits.available_permits() == 0 && !saturated {
            saturated = true;
            tracing::warn!(
                listener = name,
                limit,
                "connection limit reached; connections that have sent nothing are closed to make room, others wait in the accept backlog (raise --max-connections if this is normal load)"
            );
        } else if saturated && permits.available_permits() > limit / 10 {
            saturated = false;
            tracing::info!(listener = name, "below the connection limit again");
        }
        let permit = loop {
            if let Ok(permit) = permits.clone().try_acquire_owned() {
                break permit;
            }
            // At the limit: make room by closing the oldest connection that never sent a byte.
            // Its task may have just received one, so if no permit comes back soon, shed another.
            let retry = match silent.shed_oldest() {
                Ok(()) => Duration::from_millis(20),
                Err(Some(wait)) => wait,
                Err(None) => Duration::from_secs(3600),
            };
            tokio::select! {
                permit = permits.clone().acquire_owned() => break permit.expect("the semaphore is never closed"),
                () = tokio::time::sleep(retry) => {}
                () = &mut shutdown => break 'accept,
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failures += 1;
                    if accept_warned.is_none_or(|at| at.elapsed() >= ACCEPT_WARN_EVERY) {
                        tracing::warn!(
                            listener = name,
                            cause = %e,
                            failures = accept_failures,
                            "accept failed; retrying (warned at most every 10 s, with the failures since the last warning)"
                        );
                        accept_warned = Some(Instant::now());
                        accept_failures = 0;
                    }
                    if e.raw_os_error().is_some_and(|code| OUT_OF_FDS.contains(&code)) {
                        let _ = silent.shed_oldest();
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let builder = builder.clone();
        let cut = cut.clone();
        let silent = silent.clone();
        let closing = closing.clone();
        let timeout = settings.header_read_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            // Created before anything can miss the signal (see `Cut::watch`).
            let signal = cut.notify.notified();
            // A client that connects and sends nothing would otherwise hold its connection for
            // the whole header timeout: hyper's starts only once the protocol is known.
            let (id, shed) = silent.enter();
            let mut probe = [0u8; 1];
            let first = tokio::select! {
                first = tokio::time::timeout(timeout, stream.peek(&mut probe)) => first,
                _ = shed => return,
            };
            silent.leave(id);
            match first {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            let service = service_fn(move |req: Request<Incoming>| {
                let mut response = handler(&state, &req);
                if closing.load(Ordering::Relaxed) && req.version() != Version::HTTP_2 {
                    response.headers_mut().insert(CONNECTION, CLOSE);
                }
                async move { Ok::<_, Infallible>(response) }
            });
            let io = TokioIo::new(Draining::new(stream, timeout));
            let conn = builder.serve_connection(io, service);
            if let Err(e) = cut.watch(signal, conn).await {
                tracing::debug!(listener = name, cause = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    closing.store(true, Ordering::Relaxed);
    let grace = settings.shutdown_grace;
    let started = Instant::now();
    // Busy keep-alive clients get `Connection: close` on their next answer and leave; wait for
    // that (every permit back) at most the linger.
    let linger = LINGER.min(grace / 2);
    let all = u32::try_from(limit).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(linger, permits.acquire_many(all)).await;
    silent.shed_all();
    cut.all();
    let rest = grace.saturating_sub(started.elapsed());
    // Every connection holds its permit until its task ends.
    if tokio::time::timeout(rest, permits.acquire_many(all))
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

/// The end of the drain: every connection is told to finish its answer in flight and close (an idle
/// keep-alive connection closes at once). Cheaper per request than hyper-util's
/// `GracefulShutdown`, whose watcher polls a channel on every wake-up of the connection: here a
/// connection reads one flag per wake-up, and its task is woken through a `Notify` it registered
/// with once.
#[derive(Default)]
struct Cut {
    now: AtomicBool,
    notify: Notify,
}

impl Cut {
    /// Tells every connection to shut down gracefully.
    fn all(&self) {
        self.now.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// Drives `conn` to its end, shutting it down gracefully once [`Cut::all`] is called.
    /// `signal` must come from `self.notify.notified()` before the connection is served: a
    /// `Notified` created before `notify_waiters` completes even when first polled after it.
    async fn watch<C: GracefulConnection>(&self, signal: Notified<'_>, conn: C) -> C::Output {
        tokio::pin!(conn);
        tokio::pin!(signal);
        let mut registered = false;
        let mut cut = false;
        std::future::poll_fn(move |cx| {
            if !cut {
                // One poll registers this task's waker with the `Notify`; a tokio task's waker
                // stays the same, so the wake-up reaches this task without polling it again.
                if !registered {
                    registered = true;
                    cut = signal.as_mut().poll(cx).is_ready();
                }
                cut |= self.now.load(Ordering::Acquire);
                if cut {
                    conn.as_mut().graceful_shutdown();
                }
            }
            conn.as_mut().poll(cx)
        })
        .await
    }
}

/// A connection's socket whose writes must make progress: one that stays blocked (the client
/// reads too slowly, or not at all) for `limit` fails with `TimedOut`, which ends the connection
/// and frees its permit. The timer is armed only while a write is blocked.
struct Draining {
    stream: TcpStream,
    limit: Duration,
    stall: Option<Pin<Box<Sleep>>>,
    stalled: bool,
}

impl Draining {
    fn new(stream: TcpStream, limit: Duration) -> Draining {
        Draining {
            stream,
            limit,
            stall: None,
            stalled: false,
        }
    }

    /// Passes a write's outcome through, timing how long it stays `Pending`; only bytes written
    /// count as progress (flushing a socket is a no-op that always succeeds).
    #[inline(always)]
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
        progress: impl FnOnce(&T) -> bool,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(r) => {
                if r.as_ref().is_ok_and(progress) {
                    self.stalled = false;
                }
                Poll::Ready(r)
            }
            Poll::Pending => self.blocked(cx).map(Err),
        }
    }

    /// A write is blocked: arms the stall timer (once per stall) and fails the write once it fires.
    #[cold]
    #[inline(never)]
    fn blocked(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let deadline = tokio::time::Instant::now() + self.limit;
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.stalled {
            self.stalled = true;
            stall.as_mut().reset(deadline);
        }
        ready!(stall.as_mut().poll(cx));
        // Reset rather than close: a closed socket would keep what the client never read
        // queued in the kernel, and its FIN behind it. (Deprecated because a non-zero
        // linger blocks the thread on close; a zero linger never does.)
        #[allow(deprecated)]
        let _ = self.stream.set_linger(Some(Duration::ZERO));
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client did not read its answer in time",
        ))
    }
}

impl AsyncRead for Draining {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Draining {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.watch(cx, polled, |n| *n > 0)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.watch(cx, polled, |n| *n > 0)
    }

    /// `false`, so hyper copies each answer's body behind its head and sends both with one
    /// `write` (its "flatten" strategy) instead of queueing the body for a `writev`: for answers
    /// of a few hundred bytes that costs about 420 instructions a request less (callgrind).
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_flush(cx);
        this.watch(cx, polled, |()| false)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_shutdown(cx);
        this.watch(cx, polled, |()| false)
    }
}
