//! A bare hyper 1 server that answers every request with one fixed response: the
//! baseline signpost is benchmarked against (tests/bench/run.sh). Not shipped.
//!
//! It does what signpost's hot path must do at a minimum (accept, parse HTTP/1.1 or h2
//! with hyper-util's auto builder, keep the connection alive, write a precomputed body
//! and headers) and nothing else: no routing, no config lookup, no metrics. The gap
//! between the two is signpost's own overhead.
//!
//! Usage:
//!   hyper_baseline BODY_FILE LISTEN_ADDR [--threads N] [--timer] [--status CODE]
//!                  [--no-default-headers] [--header 'Name: value']...
//!
//! With no `--header`, the response carries the headers of a signpost PRM document:
//! `Content-Type: application/json`, `Cache-Control: public, max-age=300`,
//! `Access-Control-Allow-Origin: *` and a strong `ETag` over the body. Any `--header`
//! replaces the default of the same name (run.sh passes the values signpost itself sent,
//! so the two answers are byte-identical). `--threads` sets tokio's worker threads
//! (default: one per CPU, as `#[tokio::main]`). `--timer` gives the connection builder the
//! settings signpost's own listener uses (a tokio timer with a 10 s header-read timeout, a
//! 16 KiB buffer cap): the difference it makes isolates what those cost from what routing
//! costs. `--status` answers with another status than 200 and `--no-default-headers` sends only
//! the `--header`s (both to mirror a `/challenge` answer in the callgrind measurement of
//! tests/bench/benchlib.py). `LISTEN_ADDR` may use port 0; the bound address is printed on stdout as
//! `listening on ADDR`. It uses the allocator signpost uses (jemalloc), so the gap is not the
//! allocator's.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

struct Fixed {
    status: hyper::StatusCode,
    body: Bytes,
    headers: HeaderMap,
}

fn usage(msg: &str) -> ! {
    eprintln!("hyper_baseline: {msg}");
    eprintln!(
        "usage: hyper_baseline BODY_FILE LISTEN_ADDR [--threads N] [--timer] [--status CODE] [--no-default-headers] [--header 'Name: value']..."
    );
    std::process::exit(2);
}

/// FNV-1a 64: enough for a stable strong ETag without pulling in a hash crate.
fn fnv64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut positional = Vec::new();
    let mut threads: Option<usize> = None;
    let mut timer = false;
    let mut status = hyper::StatusCode::OK;
    let mut default_headers = true;
    let mut extra: Vec<(HeaderName, HeaderValue)> = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => {
                let v = args
                    .next()
                    .unwrap_or_else(|| usage("--threads needs a value"));
                threads = Some(
                    v.parse()
                        .unwrap_or_else(|_| usage("--threads: not a number")),
                );
            }
            "--header" => {
                let v = args
                    .next()
                    .unwrap_or_else(|| usage("--header needs a value"));
                let (n, val) = v
                    .split_once(':')
                    .unwrap_or_else(|| usage("--header: expected 'Name: value'"));
                let name = HeaderName::from_bytes(n.trim().as_bytes())
                    .unwrap_or_else(|_| usage("--header: bad name"));
                let value = HeaderValue::from_str(val.trim())
                    .unwrap_or_else(|_| usage("--header: bad value"));
                extra.push((name, value));
            }
            "--timer" => timer = true,
            "--no-default-headers" => default_headers = false,
            "--status" => {
                let v = args
                    .next()
                    .unwrap_or_else(|| usage("--status needs a value"));
                status = v
                    .parse::<u16>()
                    .ok()
                    .and_then(|c| hyper::StatusCode::from_u16(c).ok())
                    .unwrap_or_else(|| usage("--status: not an HTTP status"));
            }
            "-h" | "--help" => usage("help"),
            _ if a.starts_with("--") => usage(&format!("unknown option {a}")),
            _ => positional.push(a),
        }
    }
    if positional.len() != 2 {
        usage("expected BODY_FILE and LISTEN_ADDR");
    }
    let body = std::fs::read(&positional[0])
        .unwrap_or_else(|e| usage(&format!("cannot read {}: {e}", positional[0])));
    let addr: SocketAddr = positional[1]
        .parse()
        .unwrap_or_else(|_| usage("LISTEN_ADDR: expected IP:PORT"));

    let mut headers = HeaderMap::new();
    if default_headers {
        default(&mut headers, &body);
    }
    for (n, v) in extra {
        headers.insert(n, v);
    }
    let fixed = Arc::new(Fixed {
        status,
        body: Bytes::from(body),
        headers,
    });
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.build().expect("tokio runtime");
    rt.block_on(serve(addr, fixed, timer));
}

/// The headers of a signpost PRM document.
fn default(headers: &mut HeaderMap, body: &[u8]) {
    headers.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    headers.insert(
        hyper::header::ETAG,
        HeaderValue::from_str(&format!("\"{:016x}\"", fnv64(body)))
            .expect("hex is a valid header value"),
    );
    headers.insert(
        hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
}

async fn serve(addr: SocketAddr, fixed: Arc<Fixed>, timer: bool) {
    let listener = TcpListener::bind(addr).await.unwrap_or_else(|e| {
        eprintln!("hyper_baseline: cannot listen on {addr}: {e}");
        std::process::exit(1);
    });
    println!(
        "listening on {}",
        listener.local_addr().expect("local addr")
    );
    let mut builder = Builder::new(TokioExecutor::new());
    if timer {
        // The same settings as signpost's src/server.rs.
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(std::time::Duration::from_secs(10))
            .max_buf_size(16 * 1024);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(16 * 1024);
    }
    let builder = Arc::new(builder);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                eprintln!("hyper_baseline: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let fixed = fixed.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |_req: Request<Incoming>| {
                let fixed = fixed.clone();
                async move {
                    let mut resp = Response::new(Full::new(fixed.body.clone()));
                    *resp.status_mut() = fixed.status;
                    *resp.headers_mut() = fixed.headers.clone();
                    Ok::<_, Infallible>(resp)
                }
            });
            // Errors here are client resets and the like; the load generator causes plenty.
            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}
