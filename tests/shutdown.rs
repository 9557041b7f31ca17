//! Graceful shutdown: once it has begun `/readyz` answers 503 while responses already in flight
//! are still delivered whole; the binary exits 0 on SIGTERM.
//!
//! hyper closes an idle keep-alive connection at once on graceful shutdown (and a request whose
//! head has not fully arrived is not in flight yet), and every handler answers synchronously, so
//! the only request that can be in flight when the signal lands is one whose response is still
//! being written. The in-flight test makes one: a document larger than the socket buffers, asked
//! for by a client that does not read until the drain has begun.

mod common;

use std::time::Duration;

use common::{Binary, Conn, TestServer, get, wait_until};

const PRM: &str = "/.well-known/oauth-protected-resource/mcp/atlassian/mcp";

fn small_config() -> String {
    r#"{ "public_url": "https://gw.example.com",
         "servers": { "atlassian": { "mode": "delegate", "issuer": "https://auth.atlassian.com" } } }"#
        .to_owned()
}

/// The most the kernel may buffer on the server's side of one connection, in bytes.
fn max_send_buffer() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(4 << 20)
}

/// A config whose PRM is larger than `bytes` (a few thousand long scopes, one resource path).
fn huge_config(bytes: usize) -> String {
    let filler = "x".repeat(1900); // under the 2,048-byte limit for one string
    let scope = |i: usize| format!("\"scope:{i:08}:{filler}\"");
    let count = bytes / scope(0).len() + 1;
    let scopes = (0..count).map(scope).collect::<Vec<_>>().join(",");
    format!(
        r#"{{ "public_url": "https://gw.example.com",
             "servers": {{ "atlassian": {{ "mode": "delegate", "issuer": "https://auth.atlassian.com",
                                          "resource_paths": ["/mcp/{{server}}/mcp"],
                                          "scopes": [{scopes}] }} }} }}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_while_an_in_flight_response_completes() {
    // Twice what the server's socket may buffer, plus what the client's may.
    let size = 2 * max_send_buffer() + (1 << 20);
    let mut s = TestServer::start(&huge_config(size)).await;

    // A client with a small receive window asks for the document and does not read it yet: the
    // server's write stalls with most of the body unsent.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(s.public).await.unwrap();
    let mut held = Conn::from_stream(stream);
    held.send_raw(format!("GET {PRM} HTTP/1.1\r\nHost: gw.example.com\r\n\r\n").as_bytes())
        .await;
    let state = s.state.clone();
    wait_until(
        Duration::from_secs(10),
        "the request to be answered",
        || {
            let state = state.clone();
            async move {
                state
                    .metrics
                    .requests(signpost::testing::metrics::Kind::Prm, hyper::StatusCode::OK)
                    == 1
            }
        },
    )
    .await;

    s.begin_shutdown();
    let admin = s.admin;
    wait_until(
        Duration::from_secs(5),
        "/readyz to answer 503",
        || async move { get(admin, "/readyz").await.status == 503 },
    )
    .await;
    assert_eq!(get(s.admin, "/healthz").await.status, 200);
    // The public listener no longer accepts.
    assert!(
        tokio::net::TcpStream::connect(s.public).await.is_err()
            || Conn::open(s.public)
                .await
                .is_closed(Duration::from_secs(5))
                .await
    );

    // The held response arrives whole, then the connection closes.
    let r = held
        .read_response(false)
        .await
        .expect("the in-flight response");
    assert_eq!(r.status, 200);
    assert!(r.body.len() > size, "{} bytes", r.body.len());
    let doc = r.json();
    assert_eq!(doc["resource"], "https://gw.example.com/mcp/atlassian/mcp");
    assert!(held.is_closed(Duration::from_secs(5)).await);
    s.shutdown().await;
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_at_shutdown() {
    let s = TestServer::start(&small_config()).await;
    let mut conn = Conn::open(s.public).await;
    assert_eq!(conn.request("GET", PRM, &[]).await.status, 200);
    let shutdown = tokio::spawn(s.shutdown());
    assert!(conn.is_closed(Duration::from_secs(5)).await);
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("drained promptly")
        .expect("no panic");
}

#[tokio::test]
async fn sigterm_drains_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signpost.json");
    std::fs::write(&path, small_config()).unwrap();
    let mut bin = Binary::serve(&path, &["--shutdown-grace", "5s"]).await;
    let mut conn = Conn::open(bin.public).await;
    assert_eq!(conn.request("GET", PRM, &[]).await.status, 200);
    bin.signal("TERM");
    let status = bin.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "{}", bin.log_lines().join("\n"));
    assert!(conn.is_closed(Duration::from_secs(1)).await);
    assert!(
        bin.messages().iter().any(|m| m.contains("SIGTERM")),
        "{:?}",
        bin.messages()
    );
}

#[tokio::test]
async fn sigint_exits_0_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signpost.json");
    std::fs::write(&path, small_config()).unwrap();
    let mut bin = Binary::serve(&path, &[]).await;
    bin.signal("INT");
    let status = bin.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "{}", bin.log_lines().join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_shutdown_loses_no_request_on_busy_keep_alive_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TestServer::start(&small_config()).await;
    let request = format!("GET {PRM} HTTP/1.1\r\nHost: gw.example.com\r\n\r\n");
    // 16 clients, each sending its next request as soon as the last answer arrived; a request
    // is lost when its connection ends before its answer came.
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let addr = s.public;
            let request = request.clone();
            tokio::spawn(async move {
                let (mut answered, mut lost) = (0u32, 0u32);
                let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    if c.write_all(request.as_bytes()).await.is_err() {
                        lost += 1;
                        break;
                    }
                    // Read one whole answer (the PRM ends with `}`; no body has a blank line).
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            if buf.ends_with(b"}") {
                                break Some(i);
                            }
                        }
                        match c.read(&mut chunk).await {
                            Ok(0) | Err(_) => break None,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let Some(head_end) = head_end else {
                        lost += 1;
                        break;
                    };
                    answered += 1;
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    buf.clear();
                    if head.contains("connection: close") {
                        break;
                    }
                }
                (answered, lost)
            })
        })
        .collect();
    let state = s.state.clone();
    wait_until(Duration::from_secs(10), "every client to be busy", || {
        let state = state.clone();
        async move {
            state
                .metrics
                .requests(signpost::testing::metrics::Kind::Prm, hyper::StatusCode::OK)
                >= 16 * 20
        }
    })
    .await;
    s.begin_shutdown();
    let mut total = 0;
    for c in clients {
        let (answered, lost) = tokio::time::timeout(Duration::from_secs(10), c)
            .await
            .expect("every client ended")
            .unwrap();
        assert_eq!(
            lost, 0,
            "a request was lost at shutdown ({answered} answered before)"
        );
        total += answered;
    }
    assert!(total >= 16 * 20);
    s.shutdown().await;
}

#[tokio::test]
async fn the_process_exits_after_the_drain_even_with_a_config_read_stuck_on_a_fifo() {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signpost.json");
    std::fs::write(&path, small_config()).unwrap();
    let mut bin = Binary::serve(&path, &["--shutdown-grace", "2s"]).await;
    // A FIFO renamed over the config: a reload that opens it blocks until a writer comes, and a
    // read then blocks until the writer writes or closes (this test's writer does neither).
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo (coreutils)");
    assert!(made.success());
    std::fs::rename(&fifo, &path).unwrap();
    bin.signal("HUP");
    // Opening the write side without blocking succeeds once the server holds the read side.
    const O_NONBLOCK: i32 = 0o4000; // Linux
    let started = std::time::Instant::now();
    let mut writer = None;
    while writer.is_none() {
        writer = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(O_NONBLOCK)
            .open(&path)
            .ok();
        // A reader that refuses FIFOs blocks nothing; the exit must come all the same.
        let refused = bin.messages().iter().any(|m| {
            let m = m.to_ascii_lowercase();
            m.contains("fifo") || m.contains("regular file")
        }) || get(bin.admin, "/status").await.json()["last_reload"]["ok"] == false;
        if refused {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the server never opened the FIFO: {:?}",
            bin.messages()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bin.signal("TERM");
    let status = bin.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "{}", bin.log_lines().join("\n"));
    drop(writer);
}
