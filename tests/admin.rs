//! The admin listener against DESIGN.md §5: `/challenge` in every form, health, readiness,
//! status and metrics.

mod common;

use common::{TestServer, get, request};

const CONFIG: &str = r#"{
  "public_url": "https://gw.example.com",
  "servers": {
    "atlassian": { "mode": "delegate", "issuer": "https://auth.atlassian.com", "scopes": ["read:jira-work"] },
    "github":    { "mode": "gateway", "scopes": ["repo", "read:org"] },
    "plain":     { "mode": "delegate", "issuer": "https://sso.example.com/realms/eng" },
    "docs":      { "mode": "none" }
  }
}"#;

const HINT_ATLASSIAN: &str = r#"Bearer resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource/mcp/atlassian/mcp", scope="read:jira-work""#;

fn challenge_headers_ok(r: &common::Response) {
    assert_eq!(
        r.header_all("www-authenticate").len(),
        1,
        "exactly one challenge"
    );
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer "));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("WWW-Authenticate")
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn challenge_by_path_url_or_original_uri_with_any_method() {
    let s = TestServer::start(CONFIG).await;
    let by_path = get(s.admin, "/challenge?resource=/mcp/atlassian/mcp").await;
    assert_eq!(by_path.status, 401);
    challenge_headers_ok(&by_path);
    assert_eq!(by_path.header("www-authenticate"), Some(HINT_ATLASSIAN));
    let body = by_path.json();
    assert_eq!(body["error"], "unauthorized");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );

    let url = "/challenge?resource=https%3A%2F%2Fgw.example.com%2Fmcp%2Fatlassian%2Fmcp";
    for method in ["GET", "POST", "PUT", "DELETE", "HEAD"] {
        let r = request(s.admin, method, url, &[("Content-Length", "0")]).await;
        assert_eq!(r.status, 401, "{method}");
        assert_eq!(
            r.header("www-authenticate"),
            Some(HINT_ATLASSIAN),
            "{method}"
        );
    }
    let r = request(
        s.admin,
        "POST",
        "/challenge",
        &[
            ("X-Original-URI", "/mcp/atlassian/mcp?session=1"),
            ("Content-Length", "0"),
        ],
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some(HINT_ATLASSIAN));
    // `resource` wins over the header.
    let r = request(
        s.admin,
        "GET",
        "/challenge?resource=/mcp/github/mcp",
        &[("X-Original-URI", "/mcp/atlassian/mcp")],
    )
    .await;
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("/mcp/github/mcp")
    );
}

#[tokio::test]
async fn the_hint_points_at_the_prm_of_the_exact_path_used() {
    let s = TestServer::start(CONFIG).await;
    for path in [
        "/mcp/github/mcp",
        "/mcp/github",
        "/github/mcp",
        "/mcp/github/mcp/",
        "/mcp/github/mcp?x=1",
    ] {
        let r = get(
            s.admin,
            &format!(
                "/challenge?resource={}",
                path.replace('?', "%3F").replace('=', "%3D")
            ),
        )
        .await;
        let trimmed = path.split('?').next().unwrap().trim_end_matches('/');
        assert_eq!(
            r.header("www-authenticate").unwrap(),
            format!(
                r#"Bearer resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource{trimmed}", scope="repo read:org""#
            ),
            "{path}"
        );
    }
    // A server without scopes has no scope parameter.
    let r = get(s.admin, "/challenge?resource=/mcp/plain/mcp").await;
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            r#"Bearer resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource/mcp/plain/mcp""#
        )
    );
}

#[tokio::test]
async fn invalid_token_adds_the_error() {
    let s = TestServer::start(CONFIG).await;
    let r = get(
        s.admin,
        "/challenge?resource=/mcp/atlassian/mcp&error=invalid_token",
    )
    .await;
    assert_eq!(r.status, 401);
    challenge_headers_ok(&r);
    assert_eq!(
        r.header("www-authenticate").unwrap(),
        format!(r#"{HINT_ATLASSIAN}, error="invalid_token""#)
    );
    assert_eq!(r.json()["error"], "invalid_token");
}

#[tokio::test]
async fn insufficient_scope_is_a_403_with_the_union_of_scopes() {
    let s = TestServer::start(CONFIG).await;
    let r = get(s.admin, "/challenge?resource=/mcp/github/mcp&error=insufficient_scope&scope=admin%3Aorg+repo%20write").await;
    assert_eq!(r.status, 403);
    challenge_headers_ok(&r);
    assert_eq!(
        r.header("www-authenticate").unwrap(),
        r#"Bearer resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource/mcp/github/mcp", scope="repo read:org admin:org write", error="insufficient_scope""#
    );
    assert_eq!(r.json()["error"], "insufficient_scope");
}

#[tokio::test]
async fn unknown_missing_or_none_resources_still_get_the_status_with_a_plain_challenge() {
    let s = TestServer::start(CONFIG).await;
    for url in [
        "/challenge",
        "/challenge?resource=/mcp/nobody/mcp",
        "/challenge?resource=/mcp/docs/mcp",
        "/challenge?resource=/mcp/atlassian/mcp/tools", // no sub-path matching
        "/challenge?resource=https%3A%2F%2Fother.example.com%2Fmcp%2Fatlassian%2Fmcp",
        "/challenge?resource=%FF%FE",
        "/challenge?resource=not%20a%20path",
    ] {
        let r = get(s.admin, url).await;
        assert_eq!(r.status, 401, "{url}");
        challenge_headers_ok(&r);
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"Bearer realm="https://gw.example.com""#),
            "{url}"
        );
    }
    let r = get(
        s.admin,
        "/challenge?resource=/mcp/docs/mcp&error=insufficient_scope&scope=a",
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="https://gw.example.com", scope="a", error="insufficient_scope""#)
    );
    let r = get(s.admin, "/challenge?error=invalid_token").await;
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="https://gw.example.com", error="invalid_token""#)
    );
}

#[tokio::test]
async fn unknown_error_values_and_bad_scopes_are_ignored_and_the_header_stays_one_line() {
    let s = TestServer::start(CONFIG).await;
    let r = get(
        s.admin,
        "/challenge?resource=/mcp/atlassian/mcp&error=server_error",
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some(HINT_ATLASSIAN));
    let r = get(
        s.admin,
        "/challenge?resource=/mcp/atlassian/mcp&error=insufficient_scope&scope=ok%22evil%0D%0AX-Injected%3A+1+fine%5C",
    )
    .await;
    assert_eq!(r.status, 403);
    let h = r.header("www-authenticate").unwrap();
    assert!(r.header("x-injected").is_none());
    assert!(!h.contains('\r') && !h.contains('\n'));
    assert_eq!(
        h,
        r#"Bearer resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource/mcp/atlassian/mcp", scope="read:jira-work 1", error="insufficient_scope""#
    );
}

const MULTI: &str = r#"{
  "public_url": ["https://a.example.com", "https://b.example.com/gw"],
  "resource_paths": ["/mcp/{server}/mcp"],
  "servers": { "x": { "mode": "gateway" } }
}"#;

#[tokio::test]
async fn with_several_public_urls_host_or_the_full_url_selects_the_site() {
    let s = TestServer::start(MULTI).await;
    let a = r#"Bearer resource_metadata="https://a.example.com/.well-known/oauth-protected-resource/mcp/x/mcp""#;
    let b = r#"Bearer resource_metadata="https://b.example.com/.well-known/oauth-protected-resource/gw/mcp/x/mcp""#;
    let r = request(
        s.admin,
        "GET",
        "/challenge?resource=/mcp/x/mcp",
        &[("Host", "a.example.com")],
    )
    .await;
    assert_eq!(r.header("www-authenticate"), Some(a));
    let r = request(
        s.admin,
        "GET",
        "/challenge?resource=/gw/mcp/x/mcp",
        &[("Host", "B.example.com")],
    )
    .await;
    assert_eq!(r.header("www-authenticate"), Some(b));
    // An unknown host resolves paths against the first public_url.
    let r = request(
        s.admin,
        "GET",
        "/challenge?resource=/mcp/x/mcp",
        &[("Host", "127.0.0.1:9090")],
    )
    .await;
    assert_eq!(r.header("www-authenticate"), Some(a));
    // A full URL selects by itself.
    let r = request(
        s.admin,
        "GET",
        "/challenge?resource=https://b.example.com/gw/mcp/x/mcp",
        &[("Host", "a.example.com")],
    )
    .await;
    assert_eq!(r.header("www-authenticate"), Some(b));
    let r = request(
        s.admin,
        "GET",
        "/challenge?resource=/nope",
        &[("Host", "b.example.com")],
    )
    .await;
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="https://b.example.com/gw""#)
    );
}

#[tokio::test]
async fn health_readiness_status_and_metrics() {
    let s = TestServer::start(CONFIG).await;
    let r = get(s.admin, "/healthz").await;
    assert_eq!(r.status, 200);
    let r = get(s.admin, "/readyz").await;
    assert_eq!(r.status, 200);
    let status = get(s.admin, "/status").await.json();
    assert_eq!(status["config_path"], s.config_path.display().to_string());
    assert_eq!(status["generation"], 1);
    assert_eq!(status["servers"], 4);
    let sha = status["content_sha256"].as_str().unwrap();
    assert_eq!(sha.len(), 64);
    assert!(sha.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(status["loaded_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(status["last_reload"]["ok"], true);
    assert!(status["last_reload"]["error"].is_null());
    get(s.admin, "/challenge?resource=/mcp/atlassian/mcp").await;
    get(
        s.admin,
        "/challenge?resource=/mcp/atlassian/mcp&error=insufficient_scope",
    )
    .await;
    let metrics = get(s.admin, "/metrics").await;
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text();
    for line in [
        r#"signpost_requests_total{kind="challenge",status="401"} 1"#,
        r#"signpost_requests_total{kind="challenge",status="403"} 1"#,
        "signpost_config_generation 1",
        r#"signpost_config_reloads_total{result="ok"} 0"#,
        r#"signpost_config_reloads_total{result="error"} 0"#,
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(l.starts_with("signpost_"), "unprefixed metric {l}");
    }
    assert_eq!(get(s.admin, "/nope").await.status, 404);
    assert_eq!(
        request(s.admin, "POST", "/status", &[("Content-Length", "0")])
            .await
            .status,
        405
    );
    // The admin listener does not serve discovery documents.
    assert_eq!(
        get(
            s.admin,
            "/.well-known/oauth-protected-resource/mcp/atlassian/mcp"
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn readyz_turns_503_once_shutdown_begins() {
    let mut s = TestServer::start_with_delay(CONFIG, std::time::Duration::from_secs(30)).await;
    let mut admin = common::Conn::open(s.admin).await;
    assert_eq!(admin.request("GET", "/readyz", &[]).await.status, 200);
    s.begin_shutdown();
    let state = s.state.clone();
    common::wait_until(std::time::Duration::from_secs(5), "draining", || {
        let state = state.clone();
        async move { state.is_draining() }
    })
    .await;
    // The admin connection opened before the signal still answers, now with 503.
    let r = admin.request("GET", "/readyz", &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["status"], "draining");
    // During the delay the public listener still serves (the ingress may still route to us).
    let r = get(
        s.public,
        "/.well-known/oauth-protected-resource/mcp/atlassian/mcp",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(get(s.admin, "/healthz").await.status, 200);
}

// === What the gateway said (X-Gateway-Status, X-Gateway-WWW-Authenticate), DESIGN.md §5 ===

const HINT_GITHUB: &str = r#"Bearer resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource/mcp/github/mcp", scope="repo read:org""#;

/// Every answer of `/challenge` is complete by itself: the headers a proxy relays, a JSON body
/// with an `error`, and a challenge exactly when one is due.
fn complete(r: &common::Response, challenge: bool) {
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("WWW-Authenticate")
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.json()["error"].is_string());
    assert!(r.json()["error_description"].is_string());
    let n = r.header_all("www-authenticate").len();
    assert_eq!(n, usize::from(challenge), "WWW-Authenticate lines");
}

#[tokio::test]
async fn the_gateways_status_and_challenge_decide_the_answer() {
    let s = TestServer::start(CONFIG).await;
    let step_up = r#"Bearer resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource/mcp/github/mcp", scope="repo read:org admin:org", error="insufficient_scope""#;
    let invalid = format!(r#"{HINT_GITHUB}, error="invalid_token""#);
    // (status, gateway challenge lines, expected status, expected challenge, expected error)
    type Row<'a> = (
        Option<&'a str>,
        &'a [&'a str],
        u16,
        Option<&'a str>,
        &'a str,
    );
    let rows: &[Row<'_>] = &[
        // 403 + insufficient_scope → the step-up, with the union of scopes, params in any order.
        (
            Some("403"),
            &[r#"Bearer realm="gw", error="insufficient_scope", scope="admin:org repo""#],
            403,
            Some(step_up),
            "insufficient_scope",
        ),
        (
            Some("403"),
            &[r#"Basic realm="x", bearer SCOPE="admin:org" ,ERROR = insufficient_scope"#],
            403,
            Some(step_up),
            "insufficient_scope",
        ),
        // Several lines as the proxy forwards them.
        (
            Some("403"),
            &[
                r#"Basic realm="x""#,
                r#"Bearer error="insufficient_scope", scope="admin:org""#,
            ],
            403,
            Some(step_up),
            "insufficient_scope",
        ),
        // Any other 403: a policy refusal, no challenge.
        (Some("403"), &[], 403, None, "forbidden"),
        (
            Some("403"),
            &[r#"Bearer error="invalid_token""#],
            403,
            None,
            "forbidden",
        ),
        (
            Some("403"),
            &[r#"Basic error="insufficient_scope""#],
            403,
            None,
            "forbidden",
        ),
        // 401 + invalid_token.
        (
            Some("401"),
            &[r#"Bearer realm="gw", error="invalid_token", error_description="expired""#],
            401,
            Some(&invalid),
            "invalid_token",
        ),
        // No status: the error alone decides.
        (
            None,
            &[r#"Bearer error=invalid_token"#],
            401,
            Some(&invalid),
            "invalid_token",
        ),
        // Everything else: the plain hint.
        (Some("401"), &[], 401, Some(HINT_GITHUB), "unauthorized"),
        (
            Some("401"),
            &[r#"Basic error="invalid_token""#],
            401,
            Some(HINT_GITHUB),
            "unauthorized",
        ),
        (
            Some("401"),
            &[r#"Bearer error="insufficient_scope", scope="admin:org""#],
            401,
            Some(HINT_GITHUB),
            "unauthorized",
        ),
        (None, &[], 401, Some(HINT_GITHUB), "unauthorized"),
        (
            Some("502"),
            &[r#"Bearer error="insufficient_scope", scope="admin:org""#],
            401,
            Some(HINT_GITHUB),
            "unauthorized",
        ),
        (
            Some("not a status"),
            &[r#"Bearer error="invalid_token""#],
            401,
            Some(HINT_GITHUB),
            "unauthorized",
        ),
        (
            Some("401"),
            &[r#"Bearer error="invalid_token"#],
            401,
            Some(HINT_GITHUB),
            "unauthorized",
        ),
    ];
    for (i, (status, lines, want_status, want_challenge, want_error)) in rows.iter().enumerate() {
        let mut headers = vec![("X-Original-URI", "/mcp/github/mcp")];
        if let Some(st) = status {
            headers.push(("X-Gateway-Status", st));
        }
        for l in *lines {
            headers.push(("X-Gateway-WWW-Authenticate", l));
        }
        let r = request(
            s.admin,
            "POST",
            "/challenge",
            &[headers.as_slice(), &[("Content-Length", "0")]].concat(),
        )
        .await;
        assert_eq!(r.status, *want_status, "row {i}");
        complete(&r, want_challenge.is_some());
        assert_eq!(r.header("www-authenticate"), *want_challenge, "row {i}");
        assert_eq!(r.json()["error"], *want_error, "row {i}");
    }
}

#[tokio::test]
async fn query_parameters_win_over_the_gateways_headers() {
    let s = TestServer::start(CONFIG).await;
    let r = request(
        s.admin,
        "GET",
        "/challenge?resource=/mcp/github/mcp&error=invalid_token",
        &[
            ("X-Gateway-Status", "401"),
            (
                "X-Gateway-WWW-Authenticate",
                r#"Bearer error="insufficient_scope", scope="x""#,
            ),
        ],
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(format!(r#"{HINT_GITHUB}, error="invalid_token""#).as_str())
    );
    let r = request(
        s.admin,
        "GET",
        "/challenge?resource=/mcp/github/mcp&error=insufficient_scope&scope=from-query",
        &[
            ("X-Gateway-Status", "403"),
            (
                "X-Gateway-WWW-Authenticate",
                r#"Bearer error="invalid_token", scope="from-header""#,
            ),
        ],
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains(r#"scope="repo read:org from-query", error="insufficient_scope""#)
    );
    // A scope that is not a scope token is dropped, from the header too.
    let r = request(
        s.admin,
        "GET",
        "/challenge?resource=/mcp/github/mcp",
        &[
            ("X-Gateway-Status", "403"),
            (
                "X-Gateway-WWW-Authenticate",
                r#"Bearer error="insufficient_scope", scope="ok \"evil\\ fine""#,
            ),
        ],
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains(r#"scope="repo read:org ok fine""#),
        "{:?}",
        r.header("www-authenticate")
    );
}

#[tokio::test]
async fn the_resource_may_be_the_path_after_challenge() {
    let s = TestServer::start(CONFIG).await;
    for (url, want) in [
        ("/challenge/mcp/atlassian/mcp", HINT_ATLASSIAN),
        ("/challenge/mcp/atlassian/mcp/", HINT_ATLASSIAN),
        // The query is the client's: ignored, whatever it says.
        (
            "/challenge/mcp/atlassian/mcp?resource=/mcp/github/mcp&error=insufficient_scope&scope=x",
            HINT_ATLASSIAN,
        ),
        (
            "/challenge/github/mcp",
            r#"Bearer resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource/github/mcp", scope="repo read:org""#,
        ),
        (
            "/challenge/mcp/nobody/mcp",
            r#"Bearer realm="https://gw.example.com""#,
        ),
        ("/challenge/", r#"Bearer realm="https://gw.example.com""#),
    ] {
        for method in ["GET", "POST", "DELETE"] {
            let r = request(
                s.admin,
                method,
                url,
                &[
                    ("Content-Length", "0"),
                    ("X-Original-URI", "/mcp/github/mcp"),
                ],
            )
            .await;
            assert_eq!(r.status, 401, "{method} {url}");
            complete(&r, true);
            assert_eq!(r.header("www-authenticate"), Some(want), "{method} {url}");
        }
    }
    // With the gateway's answer in the headers.
    let r = request(
        s.admin,
        "GET",
        "/challenge/mcp/github/mcp",
        &[
            ("X-Gateway-Status", "403"),
            (
                "X-Gateway-WWW-Authenticate",
                r#"Bearer error="insufficient_scope", scope="admin:org""#,
            ),
        ],
    )
    .await;
    assert_eq!(r.status, 403);
    complete(&r, true);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .ends_with(r#"scope="repo read:org admin:org", error="insufficient_scope""#)
    );
    let r = request(
        s.admin,
        "GET",
        "/challenge/mcp/github/mcp",
        &[("X-Gateway-Status", "403")],
    )
    .await;
    assert_eq!(r.status, 403);
    complete(&r, false);
    // `/challengex` is not the challenge route.
    assert_eq!(get(s.admin, "/challengex").await.status, 404);
}

#[tokio::test]
async fn hostile_gateway_headers_still_get_a_complete_answer() {
    let s = TestServer::start(CONFIG).await;
    let quotes = "\"".repeat(12_000);
    let escapes = format!("Bearer error=\"{}", "\\".repeat(12_000));
    let many = format!(
        "Bearer {}error=\"insufficient_scope\"",
        "a=b, ".repeat(2_000)
    );
    for (status, value, want) in [
        ("403", quotes.as_str(), 403),
        ("401", escapes.as_str(), 401),
        ("403", many.as_str(), 403),
        ("401", "Bearer ,,,, = = \"\" ,=,", 401),
    ] {
        let r = request(
            s.admin,
            "GET",
            "/challenge?resource=/mcp/github/mcp",
            &[
                ("X-Gateway-Status", status),
                ("X-Gateway-WWW-Authenticate", value),
            ],
        )
        .await;
        assert_eq!(r.status, want);
        complete(&r, want == 401 || value == many);
    }
    // Non-UTF-8 and obs-text bytes, raw.
    let mut c = common::Conn::open(s.admin).await;
    c.send_raw(b"GET /challenge/mcp/github/mcp HTTP/1.1\r\nHost: gw.example.com\r\nX-Gateway-Status: 403\r\nX-Gateway-WWW-Authenticate: Bearer realm=\"\xff\xfe\", error=\"insufficient_scope\", scope=\"\xc3\xa9 admin:org\"\r\nX-Original-URI: /\xff\r\n\r\n").await;
    let r = c.read_response(false).await.expect("an answer");
    assert_eq!(r.status, 403);
    complete(&r, true);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .ends_with(r#"scope="repo read:org admin:org", error="insufficient_scope""#)
    );
    // The connection is still usable.
    let r = c.request("GET", "/challenge/mcp/github/mcp", &[]).await;
    assert_eq!(r.header("www-authenticate"), Some(HINT_GITHUB));
}

#[tokio::test]
async fn a_url_resource_matches_scheme_and_host_case_insensitively_but_not_the_path() {
    let s = TestServer::start(CONFIG).await;
    for url in [
        "/challenge?resource=HTTPS://GW.EXAMPLE.COM/mcp/atlassian/mcp",
        "/challenge?resource=Https://Gw.Example.Com:443/mcp/atlassian/mcp/",
    ] {
        let r = get(s.admin, url).await;
        assert_eq!(r.header("www-authenticate"), Some(HINT_ATLASSIAN), "{url}");
    }
    let r = get(
        s.admin,
        "/challenge?resource=HTTPS://GW.EXAMPLE.COM/MCP/atlassian/mcp",
    )
    .await;
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="https://gw.example.com""#)
    );
}

#[tokio::test]
async fn unknown_error_values_are_logged_truncated_escaped_and_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signpost.json");
    std::fs::write(&path, CONFIG).unwrap();
    let bin = common::Binary::serve(&path, &[]).await;
    let long = format!("%22%01{}", "x".repeat(8_000));
    let mut c = common::Conn::open(bin.admin).await;
    for i in 0..50 {
        let r = if i % 2 == 0 {
            c.request(
                "GET",
                &format!("/challenge?resource=/mcp/github/mcp&error={long}"),
                &[],
            )
            .await
        } else {
            let v = format!("Bearer error=\"{}\"", "y".repeat(8_000));
            c.request(
                "GET",
                "/challenge/mcp/github/mcp",
                &[
                    ("X-Gateway-Status", "401"),
                    ("X-Gateway-WWW-Authenticate", &v),
                ],
            )
            .await
        };
        assert_eq!(r.status, 401);
        assert_eq!(r.header("www-authenticate"), Some(HINT_GITHUB));
    }
    // A marker logged after them: a dropped scope (not rate-limited).
    c.request(
        "GET",
        "/challenge?resource=/mcp/github/mcp&error=insufficient_scope&scope=%22",
        &[],
    )
    .await;
    let bin = std::sync::Arc::new(bin);
    let b = bin.clone();
    common::wait_until(
        std::time::Duration::from_secs(5),
        "the marker line",
        move || {
            let b = b.clone();
            async move {
                b.messages()
                    .iter()
                    .any(|m| m.starts_with("ignoring requested scopes"))
            }
        },
    )
    .await;
    let lines: Vec<serde_json::Value> = bin
        .log_lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("ignoring unknown error value"))
        })
        .collect();
    assert_eq!(lines.len(), 1, "one line per interval: {lines:?}");
    let f = &lines[0]["fields"];
    assert_eq!(f["error"], format!("\\\"\\x01{}…", "x".repeat(62)));
    assert_eq!(f["bytes"], 8_002);
    assert_eq!(f["suppressed"], 0);
    for l in bin.log_lines() {
        assert!(l.len() < 1_000, "a log line of {} bytes", l.len());
    }
}
