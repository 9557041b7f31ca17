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
