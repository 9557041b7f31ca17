//! The suite every shipped main-proxy configuration (`deploy/<proxy>/`, DESIGN §8) must pass: real
//! nginx, Envoy, HAProxy, Caddy and Traefik, rendered by `deploy/render.sh` and started by
//! `deploy/<proxy>/run.sh`, in front of a real MCP backend, with signpost and the test IdP
//! (tests/common/e2e.rs). Per proxy, one stack per scenario group:
//!
//! * `logins`: the real TS and Python SDK clients complete the login and list tools at every default
//!   resource path shape (six logins in parallel), every link of the chain asserted;
//! * `step_up`: a 403 `insufficient_scope` re-runs the authorization with the challenge's scope —
//!   TS v1 replaces its scope with it, Python takes the union;
//! * `challenges`: `error="invalid_token"` kept, exactly one `WWW-Authenticate` (also when the
//!   gateway sends two), an 8 KiB hint intact, a policy 403 stays a 403 without a challenge, the
//!   preflight allows `mcp-method, mcp-name, mcp-param-region`, SSE streams before it ends, a 5xx
//!   stays a 5xx without `--rescue-5xx`;
//! * `fallback`: signpost stopped, or its admin listener silent → the plain `Bearer realm="mcp"`
//!   challenge with the gateway's status within 2 s, never a 5xx;
//! * `well_known`: `/.well-known/` requests reach signpost's public listener (a recording listener
//!   here) with the client's `Host` and without `Authorization` or `Cookie`;
//! * `rescue_5xx`: rendered with `--rescue-5xx`, a gateway 500 to a request without `Authorization`
//!   becomes signpost's 401; with a token it stays 500.
//!
//! What a proxy cannot do is in its [`Caps`] row, and the tests assert that documented limit
//! instead of the full behaviour (never a skip).

use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "common/e2e.rs"]
mod e2e;

use e2e::*;

/// What one proxy's shipped configuration can do, as measured by this suite.
#[derive(Clone, Copy, Debug)]
struct Caps {
    /// The step-up 403 carries signpost's challenge (resource_metadata and the union of scopes).
    /// When false the proxy passes the gateway's own 403 through; `step_up` asserts that instead.
    step_up: bool,
}

fn caps(proxy: Proxy) -> Caps {
    match proxy {
        // Traefik's `errors` middleware hands its error service neither the gateway's
        // WWW-Authenticate nor its status, so signpost cannot tell a step-up 403 from a policy
        // refusal: deploy/traefik does not intercept 403s (README, "What each main proxy's
        // shipped configuration does").
        Proxy::Traefik => Caps { step_up: false },
        Proxy::Nginx | Proxy::Envoy | Proxy::Haproxy | Proxy::Caddy => Caps { step_up: true },
    }
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;
const JSON: (&str, &str) = ("Content-Type", "application/json");
const ACCEPT: (&str, &str) = ("Accept", "application/json, text/event-stream");

// === logins ===

fn logins(proxy: Proxy) {
    let t = Instant::now();
    let stack = Stack::start(proxy);
    eprintln!("{}: stack up in {:?}", proxy.name(), t.elapsed());
    let runs: Vec<(Sdk, String, Vec<&'static str>)> = SHAPES
        .iter()
        .flat_map(|shape| Sdk::ALL.map(|sdk| (sdk, stack.url(SERVER, shape), vec![])))
        .collect();
    let reports = run_logins(&runs);
    for ((sdk, url, _), report) in runs.iter().zip(&reports) {
        eprintln!("{sdk:?} login at {url}: {} s", report["seconds"]);
        assert_eq!(
            report["client"],
            if *sdk == Sdk::Ts {
                "typescript"
            } else {
                "python"
            }
        );
        assert_login(&stack, report, url);
    }
    // The IdP bound each token to the URL the client used (the backend accepted only those).
    let events = stack.idp_events();
    for (_, url, _) in &runs {
        assert!(
            events
                .as_array()
                .expect("events")
                .iter()
                .any(|e| e["kind"] == "token" && e["resource"] == url.as_str()),
            "no token for {url}: {events:#}"
        );
    }
}

// === step-up ===

fn step_up(proxy: Proxy) {
    let stack = Stack::start(proxy);
    let url = stack.url(SERVER, SHAPES[0]);
    // Direct check of the 403 first: signpost's challenge with the union of scopes.
    let token = stack.mint(&url, SERVER_SCOPE);
    let bearer = format!("Bearer {token}");
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"admin_write","arguments":{}}}"#;
    let r = stack.request(
        "POST",
        &Stack::path(SERVER, SHAPES[0]),
        &[("Authorization", &bearer), JSON, ACCEPT],
        call,
    );
    assert_eq!(r.status, 403, "{r:#?}\n{}", stack.logs());
    let www = r.one("WWW-Authenticate");
    if !caps(proxy).step_up {
        // Documented limit: the gateway's own step-up challenge passes through unchanged.
        assert!(
            www.contains(BACKEND_OWN) && www.contains(r#"error="insufficient_scope""#),
            "{www}"
        );
        return;
    }
    assert!(
        www.starts_with(&format!(
            r#"Bearer resource_metadata="{}""#,
            stack.prm_url(&url)
        )),
        "{www}"
    );
    assert!(www.contains(r#"error="insufficient_scope""#), "{www}");
    assert!(!www.contains(BACKEND_OWN), "{www}");

    let runs: Vec<(Sdk, String, Vec<&'static str>)> = Sdk::ALL
        .iter()
        .map(|sdk| (*sdk, url.clone(), vec!["admin_write", "files_read"]))
        .collect();
    let reports = run_logins(&runs);
    for (sdk, report) in Sdk::ALL.iter().zip(&reports) {
        let ctx = || format!("{sdk:?} report:\n{report:#}\n{}", stack.logs());
        assert_login(&stack, report, &url);
        let calls = report["calls"].as_array().expect("calls");
        assert!(calls.iter().all(|c| c["ok"] == true), "{}", ctx());
        let auths = report["authorizations"].as_array().expect("authorizations");
        assert_eq!(auths.len(), 3, "one login and two step-ups; {}", ctx());
        for a in auths {
            assert_eq!(a["resource"], url.as_str(), "{}", ctx());
            assert_eq!(a["code"], true, "{}", ctx());
        }
        let scopes: Vec<Vec<String>> = auths
            .iter()
            .map(|a| scope_set(a["scope"].as_str().unwrap_or("")))
            .collect();
        assert_eq!(scopes[0], scope_set(SERVER_SCOPE), "{}", ctx());
        assert_eq!(scopes[1], scope_set("mcp:tools admin:write"), "{}", ctx());
        // The second step-up: TS v1 replaces its scope with the challenge's, Python takes the union.
        let second = match sdk {
            Sdk::Ts => "mcp:tools files:read",
            Sdk::Python => "mcp:tools admin:write files:read",
        };
        assert_eq!(scopes[2], scope_set(second), "{}", ctx());
        // Each step-up answered the client with signpost's 403, scope = the union.
        let steps: Vec<&Value> = report["challenges"]
            .as_array()
            .expect("challenges")
            .iter()
            .filter(|c| c["status"] == 403)
            .collect();
        assert_eq!(steps.len(), 2, "{}", ctx());
        for (c, extra) in steps.iter().zip(["admin:write", "files:read"]) {
            assert_eq!(c["error"], "insufficient_scope", "{}", ctx());
            assert_eq!(
                c["resource_metadata"],
                stack.prm_url(&url).as_str(),
                "{}",
                ctx()
            );
            assert_eq!(
                scope_set(c["scope"].as_str().unwrap_or("")),
                scope_set(&format!("{SERVER_SCOPE} {extra}")),
                "{}",
                ctx()
            );
        }
    }
}

// === challenges, preflight, SSE ===

fn challenges(proxy: Proxy) {
    let stack = Stack::start(proxy);
    for shape in SHAPES {
        let path = Stack::path(SERVER, shape);
        let url = stack.url(SERVER, shape);
        let hint = stack.hint(&url);
        // No token: exactly one WWW-Authenticate, signpost's, also when the gateway sends two lines.
        for extra in [None, Some(("x-e2e-extra-challenge", "1"))] {
            let mut h = vec![JSON, ACCEPT];
            h.extend(extra);
            let r = stack.request("POST", &path, &h, INIT);
            assert_eq!(r.status, 401, "{path} {extra:?}: {r:#?}\n{}", stack.logs());
            assert_eq!(r.one("WWW-Authenticate"), hint, "{path} {extra:?}");
            assert_eq!(r.one("Access-Control-Allow-Origin"), "*", "{path}");
            assert!(
                r.one("Access-Control-Expose-Headers")
                    .to_ascii_lowercase()
                    .contains("www-authenticate"),
                "{path}"
            );
        }
        // A token for another resource: the backend says invalid_token, and so does the client's 401.
        let wrong = stack.mint(&stack.url(SERVER, "/elsewhere/{server}"), SERVER_SCOPE);
        let bearer = format!("Bearer {wrong}");
        let r = stack.request(
            "POST",
            &path,
            &[("Authorization", &bearer), JSON, ACCEPT],
            INIT,
        );
        assert_eq!(r.status, 401, "{path}: {r:#?}\n{}", stack.logs());
        let www = r.one("WWW-Authenticate");
        assert!(www.starts_with(&hint), "{path}: {www}");
        assert!(www.contains(r#"error="invalid_token""#), "{path}: {www}");
        assert!(!www.contains(BACKEND_OWN), "{path}: {www}");
        // The right token passes straight through.
        let good = stack.mint(&url, SERVER_SCOPE);
        let bearer = format!("Bearer {good}");
        let r = stack.request(
            "POST",
            &path,
            &[
                ("Authorization", &bearer),
                JSON,
                ("Accept", "application/json, text/event-stream"),
            ],
            INIT,
        );
        assert_eq!(r.status, 200, "{path}: {r:#?}");
        assert!(r.all("WWW-Authenticate").is_empty(), "{path}");
        // Browsers read the session and the challenge only when they are exposed (DESIGN §8).
        assert_eq!(r.one("Access-Control-Allow-Origin"), "*", "{path}: {r:#?}");
        let exposed = r.one("Access-Control-Expose-Headers").to_ascii_lowercase();
        for h in ["www-authenticate", "mcp-session-id"] {
            assert!(exposed.contains(h), "{path}: {h} not exposed: {exposed}");
        }
        assert!(
            r.body.contains("signpost-e2e-backend"),
            "{path}: {}",
            r.body
        );
        // A policy 403 stays 403 and carries no login challenge.
        let r = stack.request(
            "POST",
            &path,
            &[("Authorization", &bearer), ("x-e2e-forbid", "1"), JSON],
            INIT,
        );
        assert_eq!(r.status, 403, "{path}: {r:#?}");
        assert!(
            r.all("WWW-Authenticate")
                .iter()
                .all(|w| !w.contains("resource_metadata")),
            "{path}: {r:#?}"
        );
        // Without --rescue-5xx a gateway 500 stays 500.
        let r = stack.request("POST", &path, &[("x-e2e-status", "500"), JSON], INIT);
        assert_eq!(r.status, 500, "{path}: {r:#?}");
        // The CORS preflight of a 2026-07-28 client.
        let asked = "mcp-method, mcp-name, mcp-param-region, authorization, content-type, mcp-protocol-version";
        let r = stack.request(
            "OPTIONS",
            &path,
            &[
                ("Origin", "http://localhost:6274"),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", asked),
            ],
            "",
        );
        assert!(
            r.status == 200 || r.status == 204,
            "{path} preflight: {r:#?}"
        );
        assert_eq!(r.one("Access-Control-Allow-Origin"), "*", "{path}");
        let allowed = r.one("Access-Control-Allow-Headers").to_ascii_lowercase();
        for h in asked.split(", ") {
            assert!(
                allowed == "*" || allowed.split(',').any(|a| a.trim() == h),
                "{path}: {h} not in {allowed}"
            );
        }
        assert!(r.all("WWW-Authenticate").is_empty(), "{path}");
    }

    // An ~8 KiB hint arrives intact.
    let url = stack.url(BIG, SHAPES[0]);
    let hint = stack.hint(&url);
    assert!(
        (7800..=8192).contains(&hint.len()),
        "the big hint is {} bytes",
        hint.len()
    );
    let r = stack.request("POST", &Stack::path(BIG, SHAPES[0]), &[JSON], INIT);
    assert_eq!(r.status, 401, "{r:#?}\n{}", stack.logs());
    let got = r.one("WWW-Authenticate");
    assert!(
        got == hint,
        "the {}-byte hint must arrive intact; got {} bytes: {:.120}…",
        hint.len(),
        got.len(),
        got
    );

    // SSE streams: the first event arrives long before the answer ends.
    let url = stack.url(SERVER, SHAPES[0]);
    let bearer = format!("Bearer {}", stack.mint(&url, SERVER_SCOPE));
    let call = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"stream","arguments":{}}}"#;
    let (r, seen) = http_timed(
        stack.port,
        &Stack::path(SERVER, SHAPES[0]),
        &[
            ("Authorization", &bearer),
            JSON,
            ("Accept", "application/json, text/event-stream"),
        ],
        call,
        &["first event", "stream done"],
    );
    assert_eq!(r.status, 200, "{r:#?}");
    let (first, done) = (seen[0].expect("first event"), seen[1].expect("stream done"));
    assert!(
        done.saturating_sub(first) >= STREAM_DELAY / 2,
        "SSE buffered: first event at {first:?}, end at {done:?}"
    );
}

// === fallback ===

/// One raw request of the fallback table: what, headers, body, the status the client must see.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, u16);

fn assert_plain(stack: &Stack, why: &str) {
    let path = Stack::path(SERVER, SHAPES[0]);
    let url = stack.url(SERVER, SHAPES[0]);
    let invalid = format!(
        "Bearer {}",
        stack.mint(&stack.url(SERVER, "/elsewhere/{server}"), SERVER_SCOPE)
    );
    let scoped = format!("Bearer {}", stack.mint(&url, SERVER_SCOPE));
    let admin_call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"admin_write","arguments":{}}}"#;
    let cases: [Case<'_>; 3] = [
        ("no token", vec![JSON], INIT, 401),
        (
            "invalid token",
            vec![JSON, ("Authorization", &invalid)],
            INIT,
            401,
        ),
        (
            "step-up",
            vec![JSON, ACCEPT, ("Authorization", &scoped)],
            admin_call,
            403,
        ),
    ];
    for (what, headers, body, status) in cases {
        let t = Instant::now();
        let r = stack.request("POST", &path, &headers, body);
        let took = t.elapsed();
        assert_eq!(r.status, status, "{why}, {what}: {r:#?}\n{}", stack.logs());
        assert!(
            took < Duration::from_millis(2500),
            "{why}, {what}: took {took:?}"
        );
        let www = r.one("WWW-Authenticate");
        if status == 403 && !caps(stack.proxy).step_up {
            // Documented limit: the proxy never intercepts a 403, so signpost being down changes
            // nothing; the gateway's own step-up challenge passes through.
            assert!(
                www.contains(BACKEND_OWN) && www.contains(r#"error="insufficient_scope""#),
                "{why}, {what}: {www}"
            );
            continue;
        }
        assert!(
            www.starts_with(r#"Bearer realm="mcp""#),
            "{why}, {what}: {www}"
        );
        assert!(!www.contains(BACKEND_OWN), "{why}, {what}: {www}");
    }
}

fn fallback(proxy: Proxy) {
    let mut stack = Stack::start(proxy);
    stack.stop_signpost();
    assert_plain(&stack, "signpost stopped");
    drop(stack);
    let silent = FakeSignpost::start(Behave::Silence);
    let stack = Stack::start_with(
        proxy,
        Options {
            admin_override: Some(silent.port),
            ..Options::default()
        },
    );
    assert_plain(&stack, "signpost's admin listener silent");
    silent.set(Behave::Status500);
    assert_plain(&stack, "signpost's admin listener answering 500");
}

// === /.well-known/ without credentials ===

fn well_known(proxy: Proxy) {
    let rec = FakeSignpost::start(Behave::Record);
    let stack = Stack::start_with(
        proxy,
        Options {
            public_override: Some(rec.port),
            ..Options::default()
        },
    );
    let before = rec.requests().len();
    let path = format!(
        "/.well-known/oauth-protected-resource{}",
        Stack::path(SERVER, SHAPES[2])
    );
    let host = format!("127.0.0.1:{}", stack.port);
    let r = stack.request(
        "GET",
        &path,
        &[
            ("Authorization", "Bearer secret-token"),
            ("Cookie", "session=secret-cookie"),
            ("MCP-Protocol-Version", "2025-06-18"),
        ],
        "",
    );
    assert_eq!(r.status, 200, "{r:#?}\n{}", stack.logs());
    let seen = rec.requests();
    let mine: Vec<&String> = seen[before..]
        .iter()
        .filter(|h| h.contains(&path))
        .collect();
    assert_eq!(
        mine.len(),
        1,
        "signpost should see the request once: {seen:#?}"
    );
    let head = mine[0].to_ascii_lowercase();
    assert!(
        !head.contains("authorization:") && !head.contains("secret-token"),
        "credentials reached signpost:\n{head}"
    );
    assert!(
        !head.contains("cookie:") && !head.contains("secret-cookie"),
        "cookies reached signpost:\n{head}"
    );
    assert!(
        head.contains(&format!("host: {host}")),
        "the client's Host must reach signpost:\n{head}"
    );
}

// === --rescue-5xx ===

fn rescue_5xx(proxy: Proxy) {
    let stack = Stack::start_with(
        proxy,
        Options {
            rescue_5xx: true,
            ..Options::default()
        },
    );
    for shape in SHAPES {
        let path = Stack::path(SERVER, shape);
        let url = stack.url(SERVER, shape);
        let r = stack.request("POST", &path, &[("x-e2e-status", "500"), JSON], INIT);
        assert_eq!(r.status, 401, "{path}: {r:#?}\n{}", stack.logs());
        assert_eq!(r.one("WWW-Authenticate"), stack.hint(&url), "{path}");
        let bearer = format!("Bearer {}", stack.mint(&url, SERVER_SCOPE));
        let r = stack.request(
            "POST",
            &path,
            &[("x-e2e-status", "500"), ("Authorization", &bearer), JSON],
            INIT,
        );
        assert_eq!(r.status, 500, "{path}: with a token the 500 stays: {r:#?}");
    }
}

/// One module of tests per proxy. `ignore` names what the proxy's config still waits for.
macro_rules! proxy_suite {
    ($module:ident, $proxy:expr $(, ignore = $why:literal)?) => {
        mod $module {
            use super::*;
            #[test] $(#[ignore = $why])? fn logins() { super::logins($proxy) }
            #[test] $(#[ignore = $why])? fn step_up() { super::step_up($proxy) }
            #[test] $(#[ignore = $why])? fn challenges() { super::challenges($proxy) }
            #[test] $(#[ignore = $why])? fn fallback() { super::fallback($proxy) }
            #[test] $(#[ignore = $why])? fn well_known() { super::well_known($proxy) }
            #[test] $(#[ignore = $why])? fn rescue_5xx() { super::rescue_5xx($proxy) }
        }
    };
}

proxy_suite!(nginx, Proxy::Nginx);
proxy_suite!(envoy, Proxy::Envoy);
proxy_suite!(haproxy, Proxy::Haproxy);
proxy_suite!(caddy, Proxy::Caddy);
proxy_suite!(traefik, Proxy::Traefik);
