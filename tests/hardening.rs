//! Hostile and unusual clients: slowloris, silent connections, oversized heads, the connection
//! limit, unread bodies, HTTP/2 with prior knowledge. Bounds are generous: these prove behaviour,
//! not speed (speed is measured by the benchmark).

mod common;

use std::time::Duration;

use common::{Conn, TestServer, get};
use signpost::state::Settings;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

const CONFIG: &str = r#"{
  "public_url": "https://gw.example.com",
  "servers": { "x": { "mode": "gateway", "scopes": ["repo"] } }
}"#;
const PRM: &str = "/.well-known/oauth-protected-resource/mcp/x/mcp";

fn settings(header_read_timeout: Duration, max_connections: usize) -> Settings {
    Settings {
        header_read_timeout,
        max_connections,
        shutdown_grace: Duration::from_secs(2),
        ..Settings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_do_not_starve_normal_clients_and_are_closed() {
    let s = TestServer::start_with_settings(CONFIG, settings(Duration::from_secs(1), 4096)).await;
    let mut slow = Vec::new();
    for i in 0..300 {
        let mut c = Conn::open(s.public).await;
        // Half send a partial head, half send nothing at all.
        if i % 2 == 0 {
            c.send_raw(b"GET /.well-known/oauth-protected-resource/mcp/x/mcp HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await;
        }
        slow.push(c);
    }
    for _ in 0..20 {
        let started = Instant::now();
        let r = get(s.public, PRM).await;
        assert_eq!(r.status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a normal request took {:?}",
            started.elapsed()
        );
    }
    // Every slow connection is closed by the server once the header read timeout has passed.
    for c in &mut slow {
        assert!(
            c.is_closed(Duration::from_secs(10)).await,
            "a slow connection was never closed"
        );
    }
    assert_eq!(get(s.public, PRM).await.status, 200);
}

#[tokio::test]
async fn oversized_or_too_many_headers_get_431_and_the_server_goes_on() {
    let s = TestServer::start(CONFIG).await;
    let big = format!(
        "GET {PRM} HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let many: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET {PRM} HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    for raw in [big, many] {
        let mut c = Conn::open(s.public).await;
        c.send_raw(raw.as_bytes()).await;
        let r = c.read_response(false).await.expect("an answer");
        assert_eq!(r.status, 431);
    }
    // 60 headers are fine.
    let headers: Vec<(String, String)> = (0..60).map(|i| (format!("X-H{i}"), "v".into())).collect();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        common::request(s.public, "GET", PRM, &headers).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_limit_makes_new_clients_wait_not_fail() {
    let s = TestServer::start_with_settings(CONFIG, settings(Duration::from_secs(30), 4)).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = Conn::open(s.public).await;
        assert_eq!(c.request("GET", PRM, &[]).await.status, 200);
        held.push(c);
    }
    // The fifth connection is accepted by the kernel but not served while four are open.
    let fifth = tokio::spawn({
        let addr = s.public;
        async move { get(addr, PRM).await.status }
    });
    tokio::time::sleep(Duration::from_millis(300)).await; // proving a negative: nothing may happen
    assert!(!fifth.is_finished(), "served beyond the connection limit");
    drop(held.pop());
    let status = tokio::time::timeout(Duration::from_secs(5), fifth)
        .await
        .expect("served once a slot frees")
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn request_bodies_are_never_read() {
    let s = TestServer::start(CONFIG).await;
    let mut c = Conn::open(s.public).await;
    // Announce 100 MB and send none of it: the answer must not wait for the body.
    c.send_raw(
        format!("POST {PRM} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n").as_bytes(),
    )
    .await;
    let started = Instant::now();
    let r = c.read_response(false).await.expect("an answer");
    assert_eq!(r.status, 405);
    assert!(started.elapsed() < Duration::from_secs(2));
    let mut c = Conn::open(s.admin).await;
    c.send_raw(b"POST /challenge?resource=/mcp/x/mcp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await;
    let r = c.read_response(false).await.expect("an answer");
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn http2_with_prior_knowledge_is_served() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let s = TestServer::start(CONFIG).await;
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Empty<bytes::Bytes>>();
    for _ in 0..3 {
        let uri: hyper::Uri = format!("http://gw.example.com:{}{PRM}", s.public.port())
            .parse()
            .unwrap();
        let req = hyper::Request::get(uri).body(Empty::new()).unwrap();
        // Connect to the test server whatever the authority says.
        let mut req = req;
        *req.uri_mut() = format!("http://127.0.0.1:{}{PRM}", s.public.port())
            .parse()
            .unwrap();
        let r = client.request(req).await.expect("h2c answer");
        assert_eq!(r.version(), hyper::Version::HTTP_2);
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        let body = r.into_body().collect().await.unwrap().to_bytes();
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc["resource"], "https://gw.example.com/mcp/x/mcp");
    }
}

#[tokio::test]
async fn a_client_closing_mid_request_changes_nothing() {
    let s = TestServer::start(CONFIG).await;
    for cut in [5, 20, 40] {
        let mut c = tokio::net::TcpStream::connect(s.public).await.unwrap();
        let raw = format!("GET {PRM} HTTP/1.1\r\nHost: x\r\n\r\n");
        c.write_all(&raw.as_bytes()[..cut]).await.unwrap();
        drop(c);
    }
    assert_eq!(get(s.public, PRM).await.status, 200);
}
