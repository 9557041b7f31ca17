//! Fuzzes the public and admin routers (DESIGN.md §4, §5) with arbitrary requests.
//!
//! Input: a request written as text, so seeds are readable and libFuzzer's mutations stay close to
//! real requests. Lines are split on `\n` only (a `\r` stays in the bytes, where the header types
//! reject it):
//!
//! ```text
//! GET /.well-known/oauth-protected-resource/mcp/github/mcp?x=1
//! Host: gw.example.com
//! If-None-Match: W/"abc"
//! ```
//!
//! The first line is `METHOD SP REQUEST-TARGET`; every other line is `Name: value`. An invalid
//! method or target skips the input (hyper would have rejected it before routing); an invalid
//! header line is skipped alone. The request goes to `public::respond` and `admin::respond` of two
//! states built once: one `public_url` list with a prefix and a root server, all four modes
//! (`router.json`), and one single `public_url` with a prefix (`router_single.json`).
//!
//! Invariants: never 5xx; the public side never answers 401 and always carries
//! `Access-Control-Allow-Origin: *`; every body signpost writes is JSON (but `/metrics`);
//! `/challenge` (and `/challenge/<path>`) answers 401 or 403 with one `WWW-Authenticate` line
//! `Bearer name="value", …`, or a policy 403 with none; a public 400 only for RFC 9112's Host rules.

#![no_main]

use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, Waker};

use hyper::body::{Body, Bytes};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use signpost::testing::state::{self, AppState};

#[path = "../check.rs"]
mod check;

static STATES: LazyLock<Vec<Arc<AppState>>> = LazyLock::new(|| {
    [
        include_str!("router.json"),
        include_str!("router_single.json"),
    ]
    .iter()
    .map(|text| {
        let registry = state::build(text, "fuzz.json", 1).expect("the fuzz config is valid");
        let config = signpost::testing::config::parse(text, "fuzz.json").expect("valid");
        check::check_registry(&registry, &config);
        AppState::new(registry)
    })
    .collect()
});

fuzz_target!(|data: &[u8]| {
    let Some(req) = request(data) else {
        return;
    };
    for state in STATES.iter() {
        check_public(&req, signpost::testing::public::respond(state, &req));
        check_admin(&req, signpost::testing::admin::respond(state, &req));
    }
});

fn request(data: &[u8]) -> Option<Request<()>> {
    let mut lines = data.split(|b| *b == b'\n');
    let first = lines.next()?;
    let (method, target) = match first.iter().position(|b| *b == b' ') {
        Some(i) => (&first[..i], &first[i + 1..]),
        None => (first, &b"/"[..]),
    };
    let method = Method::from_bytes(method).ok()?;
    let uri = Uri::try_from(target).ok()?;
    let mut req = Request::builder().method(method).uri(uri).body(()).ok()?;
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let value = &line[colon + 1..];
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            req.headers_mut().append(name, value);
        }
    }
    Some(req)
}

/// The bytes of a body that is ready at once (signpost's bodies are `Full`).
fn body_bytes<B>(mut body: B) -> Vec<u8>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    loop {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            Poll::Ready(Some(Err(e))) => panic!("body error: {e:?}"),
            Poll::Ready(None) => return out,
            Poll::Pending => panic!("a response body that is not ready at once"),
        }
    }
}

fn json_object(body: &[u8], what: &str) -> serde_json::Map<String, Value> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => m,
        other => panic!("{what}: body is not a JSON object: {other:?}"),
    }
}

fn check_public<B>(req: &Request<()>, response: Response<B>)
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    let (parts, body) = response.into_parts();
    let body = body_bytes(body);
    let status = parts.status;
    let path = req.uri().path();
    let what = format!("public {} {} -> {status}", req.method(), req.uri());
    assert!(!status.is_server_error(), "{what}");
    assert_ne!(status, StatusCode::UNAUTHORIZED, "{what}");
    assert_eq!(
        parts.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some(&HeaderValue::from_static("*")),
        "{what}: no Access-Control-Allow-Origin"
    );
    let well_known = path == "/.well-known" || path.starts_with("/.well-known/");
    match status {
        StatusCode::OK => {
            assert!(
                matches!(*req.method(), Method::GET | Method::HEAD),
                "{what}"
            );
            assert_eq!(
                parts.headers.get(header::CONTENT_TYPE),
                Some(&HeaderValue::from_static("application/json")),
                "{what}"
            );
            assert!(parts.headers.contains_key(header::ETAG), "{what}");
            let cache = parts.headers.get(header::CACHE_CONTROL);
            assert!(
                cache.is_some_and(|c| c == "public, max-age=60" || c == "public, max-age=300"),
                "{what}: Cache-Control {cache:?}"
            );
            let doc = Value::Object(json_object(&body, &what));
            if let Some(empty) = check::find_empty(&doc, "") {
                panic!("{what}: null or empty value at {empty}");
            }
            let trimmed = path.strip_suffix('/').unwrap_or(path);
            if let Some(suffix) = trimmed.strip_prefix(signpost::testing::registry::PRM_PREFIX) {
                let resource = doc["resource"].as_str().expect("PRM resource");
                assert!(
                    resource.ends_with(suffix) && resource.starts_with("http"),
                    "{what}: resource {resource} not for {suffix}"
                );
            } else if let Some(suffix) = trimmed.strip_prefix(signpost::testing::registry::AS_PREFIX) {
                let issuer = doc["issuer"].as_str().expect("AS issuer");
                let issuer = issuer.strip_suffix('/').unwrap_or(issuer);
                assert!(
                    issuer.ends_with(suffix),
                    "{what}: issuer {issuer} not for {suffix}"
                );
            } else {
                panic!("{what}: a document outside the served prefixes");
            }
        }
        StatusCode::NOT_MODIFIED => {
            assert!(body.is_empty(), "{what}");
            assert!(req.headers().contains_key(header::IF_NONE_MATCH), "{what}");
            assert!(parts.headers.contains_key(header::ETAG), "{what}");
        }
        StatusCode::NO_CONTENT => {
            assert_eq!(req.method(), Method::OPTIONS, "{what}");
            assert!(well_known, "{what}: preflight outside /.well-known");
            assert!(body.is_empty(), "{what}");
            assert_eq!(
                parts.headers.get(header::ACCESS_CONTROL_ALLOW_METHODS),
                Some(&HeaderValue::from_static("GET, HEAD, OPTIONS")),
                "{what}"
            );
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            assert!(well_known, "{what}");
            assert_eq!(
                parts.headers.get(header::ALLOW),
                Some(&HeaderValue::from_static("GET, HEAD, OPTIONS")),
                "{what}"
            );
            assert_eq!(json_object(&body, &what)["error"], "method_not_allowed");
        }
        StatusCode::NOT_FOUND => {
            assert!(
                !(well_known && req.method() == Method::OPTIONS),
                "{what}: a well-known preflight must be 204"
            );
            assert_eq!(json_object(&body, &what)["error"], "not_found");
        }
        StatusCode::BAD_REQUEST => {
            // RFC 9112 §3.2: two Host lines, or HTTP/1.1 without Host; nothing else is a 400.
            assert!(
                signpost::testing::public::request_host(req).is_err(),
                "{what}: a 400 for a request whose host is fine"
            );
            assert_eq!(json_object(&body, &what)["error"], "bad_request");
        }
        other => panic!("{what}: unexpected status {other}"),
    }
}

fn check_admin<B>(req: &Request<()>, response: Response<B>)
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    let (parts, body) = response.into_parts();
    let body = body_bytes(body);
    let status = parts.status;
    let path = req.uri().path();
    let what = format!("admin {} {} -> {status}", req.method(), req.uri());
    assert!(!status.is_server_error(), "{what}");
    if path == "/metrics" && status == StatusCode::OK {
        assert!(
            std::str::from_utf8(&body).is_ok(),
            "{what}: metrics not UTF-8"
        );
        return;
    }
    assert_eq!(
        parts.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some(&HeaderValue::from_static("*")),
        "{what}: no Access-Control-Allow-Origin"
    );
    let obj = json_object(&body, &what);
    if path != "/challenge" && !path.starts_with("/challenge/") {
        assert!(
            matches!(status.as_u16(), 200 | 404 | 405),
            "{what}: unexpected status"
        );
        return;
    }
    // The query counts only in the `/challenge?…` form (its first non-empty `error`); with
    // X-Gateway-* headers the outcome is a 401 or a 403, whose parsing has its own unit tests.
    let mut error = None;
    if path == "/challenge" {
        for (k, v) in url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
            if k == "error" && !v.is_empty() {
                error = Some(v.into_owned());
                break;
            }
        }
    }
    let gateway_said = req.headers().contains_key("x-gateway-status")
        || req.headers().contains_key("x-gateway-www-authenticate");
    match error.as_deref() {
        // The gateway's status (even garbage, read as a 401) and the query's error combine.
        _ if gateway_said => assert!(
            matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
            "{what}"
        ),
        Some("insufficient_scope") => assert_eq!(status, StatusCode::FORBIDDEN, "{what}"),
        _ => assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}"),
    }
    assert!(obj["error"].is_string(), "{what}");
    let values: Vec<_> = parts
        .headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .collect();
    if status == StatusCode::FORBIDDEN && obj["error"] == "forbidden" {
        // A policy refusal (a 403 that is not insufficient_scope): no challenge at all.
        assert!(values.is_empty(), "{what}: {values:?}");
    } else {
        assert_eq!(values.len(), 1, "{what}: {values:?}");
        let value = values[0].to_str().unwrap_or_else(|_| {
            panic!(
                "{what}: WWW-Authenticate is not visible ASCII: {:?}",
                values[0]
            )
        });
        assert_params(value).unwrap_or_else(|e| panic!("{what}: {value:?}: {e}"));
    }
    assert_eq!(
        parts.headers.get(header::ACCESS_CONTROL_EXPOSE_HEADERS),
        Some(&HeaderValue::from_static("WWW-Authenticate")),
        "{what}"
    );
    assert_eq!(
        parts.headers.get(header::CACHE_CONTROL),
        Some(&HeaderValue::from_static("no-store")),
        "{what}"
    );
}

/// `Bearer name="value"(, name="value")*` with RFC 9110 quoted strings; at least one parameter.
fn assert_params(value: &str) -> Result<(), String> {
    let mut rest = value
        .strip_prefix("Bearer ")
        .ok_or("does not start with \"Bearer \"")?;
    let mut seen = Vec::new();
    loop {
        let eq = rest.find('=').ok_or("a parameter without '='")?;
        let name = &rest[..eq];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(format!("bad parameter name {name:?}"));
        }
        if seen.contains(&name) {
            return Err(format!("parameter {name} twice"));
        }
        seen.push(name);
        let mut chars = rest[eq + 1..].char_indices();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err(format!("parameter {name} is not quoted"));
        }
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next().ok_or("a dangling backslash")?;
                }
                '"' => {
                    end = Some(eq + 1 + i + 1);
                    break;
                }
                c if c.is_control() => return Err("a control character".into()),
                _ => {}
            }
        }
        rest = &rest[end.ok_or("an unterminated quoted string")?..];
        if rest.is_empty() {
            break;
        }
        rest = rest
            .strip_prefix(", ")
            .ok_or("parameters not separated by \", \"")?;
    }
    if !seen.contains(&"resource_metadata") && !seen.contains(&"realm") {
        return Err("neither resource_metadata nor realm".into());
    }
    Ok(())
}
