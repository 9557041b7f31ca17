//! The public listener against DESIGN.md §2 and §4, over real HTTP on 127.0.0.1:0.

mod common;

use common::{Conn, TestServer, get, request};
use serde_json::{Value, json};

/// Every mode, issuers with a path and with a trailing slash, a server mounted at `/`.
const CONFIG: &str = r#"{
  "public_url": "https://gw.example.com",
  "cache_max_age": 120,
  "servers": {
    "atlassian": { "mode": "delegate", "issuer": "https://auth.atlassian.com",
                   "scopes": ["read:jira-work", "write:jira-work"], "resource_name": "Atlassian",
                   "resource_documentation": "https://developer.atlassian.com/mcp" },
    "keycloak":  { "mode": "delegate", "issuer": "https://sso.example.com/realms/eng" },
    "auth0":     { "mode": "delegate", "issuer": "https://tenant.auth0.com/" },
    "eng-tools": { "mode": "facade", "issuer": "https://sso.example.com/realms/eng",
                   "authorization_endpoint": "https://sso.example.com/realms/eng/protocol/openid-connect/auth",
                   "token_endpoint": "https://sso.example.com/realms/eng/protocol/openid-connect/token",
                   "registration_endpoint": "https://sso.example.com/realms/eng/clients-registrations/openid-connect",
                   "scopes": ["openid"] },
    "github":    { "mode": "gateway", "scopes": ["repo"] },
    "docs":      { "mode": "none" },
    "home":      { "mode": "delegate", "issuer": "https://idp.example.com", "resource_paths": ["/"] }
  }
}"#;

const PRM: &str = "/.well-known/oauth-protected-resource";
const AS: &str = "/.well-known/oauth-authorization-server";

/// No `null`, empty string, empty list or empty object anywhere in a document.
fn assert_no_empty_values(v: &Value, what: &str) {
    match v {
        Value::Null => panic!("null in {what}"),
        Value::String(s) => assert!(!s.is_empty(), "empty string in {what}"),
        Value::Array(a) => {
            assert!(!a.is_empty(), "empty list in {what}");
            a.iter().for_each(|x| assert_no_empty_values(x, what));
        }
        Value::Object(o) => {
            assert!(!o.is_empty(), "empty object in {what}");
            o.values().for_each(|x| assert_no_empty_values(x, what));
        }
        _ => {}
    }
}

#[tokio::test]
async fn prm_resource_is_byte_for_byte_the_url_the_client_used_for_every_resource_path() {
    let s = TestServer::start(CONFIG).await;
    for path in ["/mcp/atlassian/mcp", "/mcp/atlassian", "/atlassian/mcp"] {
        let r = get(s.public, &format!("{PRM}{path}")).await;
        assert_eq!(r.status, 200, "{path}");
        let doc = r.json();
        assert_eq!(doc["resource"], format!("https://gw.example.com{path}"));
        assert_eq!(
            doc["authorization_servers"],
            json!(["https://auth.atlassian.com"])
        );
        assert_eq!(
            doc["scopes_supported"],
            json!(["read:jira-work", "write:jira-work"])
        );
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
        assert_eq!(doc["resource_name"], "Atlassian");
        assert_eq!(
            doc["resource_documentation"],
            "https://developer.atlassian.com/mcp"
        );
        assert_no_empty_values(&doc, path);
    }
}

#[tokio::test]
async fn delegate_issuers_are_kept_exactly_as_written() {
    let s = TestServer::start(CONFIG).await;
    let keycloak = get(s.public, &format!("{PRM}/mcp/keycloak/mcp"))
        .await
        .json();
    assert_eq!(
        keycloak["authorization_servers"],
        json!(["https://sso.example.com/realms/eng"])
    );
    let auth0 = get(s.public, &format!("{PRM}/mcp/auth0/mcp")).await.json();
    assert_eq!(
        auth0["authorization_servers"],
        json!(["https://tenant.auth0.com/"])
    );
    // A server without scopes has no scopes_supported at all (never an empty list).
    assert!(keycloak.get("scopes_supported").is_none());
    assert_no_empty_values(&keycloak, "keycloak PRM");
    // signpost serves no AS metadata for a delegated server: the client fetches the IdP's own.
    for path in ["/keycloak", "/realms/eng", "/atlassian", ""] {
        assert_eq!(
            get(s.public, &format!("{AS}{path}")).await.status,
            404,
            "{path}"
        );
    }
}

#[tokio::test]
async fn facade_advertises_its_own_issuer_and_serves_metadata_under_it() {
    let s = TestServer::start(CONFIG).await;
    let prm = get(s.public, &format!("{PRM}/mcp/eng-tools/mcp"))
        .await
        .json();
    assert_eq!(
        prm["authorization_servers"],
        json!(["https://gw.example.com/eng-tools"])
    );
    let r = get(s.public, &format!("{AS}/eng-tools")).await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["issuer"], "https://gw.example.com/eng-tools");
    assert_eq!(
        doc["authorization_endpoint"],
        "https://sso.example.com/realms/eng/protocol/openid-connect/auth"
    );
    assert_eq!(
        doc["token_endpoint"],
        "https://sso.example.com/realms/eng/protocol/openid-connect/token"
    );
    assert_eq!(
        doc["registration_endpoint"],
        "https://sso.example.com/realms/eng/clients-registrations/openid-connect"
    );
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(
        doc["grant_types_supported"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["scopes_supported"], json!(["openid"]));
    assert!(doc.get("token_endpoint_auth_methods_supported").is_none());
    assert_no_empty_values(&doc, "facade AS");
}

#[tokio::test]
async fn gateway_mode_uses_the_gateway_templates() {
    let s = TestServer::start(CONFIG).await;
    let prm = get(s.public, &format!("{PRM}/mcp/github")).await.json();
    assert_eq!(
        prm["authorization_servers"],
        json!(["https://gw.example.com/github"])
    );
    let doc = get(s.public, &format!("{AS}/github")).await.json();
    assert_eq!(doc["issuer"], "https://gw.example.com/github");
    assert_eq!(
        doc["authorization_endpoint"],
        "https://gw.example.com/github/authorize"
    );
    assert_eq!(doc["token_endpoint"], "https://gw.example.com/github/token");
    assert_eq!(
        doc["registration_endpoint"],
        "https://gw.example.com/github/register"
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["none", "client_secret_post"])
    );
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["scopes_supported"], json!(["repo"]));
}

#[tokio::test]
async fn gateway_templates_can_be_overridden() {
    let config = r#"{
      "public_url": "https://gw.example.com",
      "gateway": { "issuer": "{public_url}/oauth/{server}", "authorization_endpoint": "{public_url}/oauth/authorize?server={server}",
                   "token_endpoint": "https://login.example.com/token", "token_endpoint_auth_methods_supported": ["none"] },
      "servers": { "gh": { "mode": "gateway" } }
    }"#;
    let s = TestServer::start(config).await;
    let doc = get(s.public, &format!("{AS}/oauth/gh")).await.json();
    assert_eq!(doc["issuer"], "https://gw.example.com/oauth/gh");
    assert_eq!(
        doc["authorization_endpoint"],
        "https://gw.example.com/oauth/authorize?server=gh"
    );
    assert_eq!(doc["token_endpoint"], "https://login.example.com/token");
    assert_eq!(
        doc["registration_endpoint"],
        "https://gw.example.com/gh/register"
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["none"])
    );
}

#[tokio::test]
async fn mode_none_has_no_documents() {
    let s = TestServer::start(CONFIG).await;
    for path in [format!("{PRM}/mcp/docs/mcp"), format!("{AS}/docs")] {
        let r = get(s.public, &path).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json()["error"], "not_found");
    }
}

#[tokio::test]
async fn root_prm_only_for_a_server_mounted_at_slash() {
    let s = TestServer::start(CONFIG).await;
    for path in [PRM.to_owned(), format!("{PRM}/"), format!("{PRM}?x=1")] {
        let r = get(s.public, &path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.json()["resource"], "https://gw.example.com");
        assert_eq!(
            r.json()["authorization_servers"],
            json!(["https://idp.example.com"])
        );
    }
    let without = TestServer::start(
        r#"{"public_url": "https://gw.example.com", "servers": {"a": {"mode": "delegate", "issuer": "https://idp.example.com"}}}"#,
    )
    .await;
    assert_eq!(get(without.public, PRM).await.status, 404);
}

#[tokio::test]
async fn trailing_slash_and_query_are_tolerated_on_prm_paths() {
    let s = TestServer::start(CONFIG).await;
    let exact = get(s.public, &format!("{PRM}/mcp/atlassian/mcp")).await;
    for path in [
        format!("{PRM}/mcp/atlassian/mcp/"),
        format!("{PRM}/mcp/atlassian/mcp?x=1&y"),
        format!("{PRM}/mcp/atlassian/mcp/?"),
    ] {
        let r = get(s.public, &path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body, exact.body, "{path}");
    }
    // Only one slash, and no sub-paths.
    assert_eq!(
        get(s.public, &format!("{PRM}/mcp/atlassian/mcp//"))
            .await
            .status,
        404
    );
    assert_eq!(
        get(s.public, &format!("{PRM}/mcp/atlassian/mcp/x"))
            .await
            .status,
        404
    );
    assert_eq!(
        get(s.public, &format!("{PRM}/mcp/nobody/mcp")).await.status,
        404
    );
}

#[tokio::test]
async fn documents_carry_content_type_cache_control_etag_and_cors() {
    let s = TestServer::start(CONFIG).await;
    for path in [
        format!("{PRM}/mcp/atlassian/mcp"),
        format!("{AS}/eng-tools"),
    ] {
        let r = get(s.public, &path).await;
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("cache-control"), Some("public, max-age=120"));
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        let etag = r.header("etag").expect("etag");
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() > 10,
            "strong etag: {etag}"
        );
        assert_eq!(
            r.header("content-length"),
            Some(r.body.len().to_string().as_str())
        );
    }
    let a = get(s.public, &format!("{PRM}/mcp/atlassian/mcp")).await;
    let b = get(s.public, &format!("{PRM}/mcp/atlassian")).await;
    assert_ne!(
        a.header("etag"),
        b.header("etag"),
        "different documents, different tags"
    );
}

#[tokio::test]
async fn if_none_match_answers_304_without_a_body() {
    let s = TestServer::start(CONFIG).await;
    let path = format!("{PRM}/mcp/atlassian/mcp");
    let etag = get(s.public, &path)
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let weak = format!("W/{etag}");
    let listed = format!("\"other\", {etag}");
    for inm in [etag.as_str(), weak.as_str(), listed.as_str(), "*"] {
        let r = request(s.public, "GET", &path, &[("If-None-Match", inm)]).await;
        assert_eq!(r.status, 304, "{inm}");
        assert!(r.body.is_empty());
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(r.header("cache-control"), Some("public, max-age=120"));
    }
    let r = request(s.public, "GET", &path, &[("If-None-Match", "\"stale\"")]).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn head_has_the_same_headers_and_no_body() {
    let s = TestServer::start(CONFIG).await;
    let path = format!("{PRM}/mcp/atlassian/mcp");
    let mut conn = Conn::open(s.public).await;
    let head = conn.request("HEAD", &path, &[]).await;
    let get = conn.request("GET", &path, &[]).await; // same connection: HEAD left no body behind
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    for h in [
        "content-type",
        "cache-control",
        "etag",
        "access-control-allow-origin",
        "content-length",
    ] {
        assert_eq!(head.header(h), get.header(h), "{h}");
    }
    assert_eq!(
        get.json()["resource"],
        "https://gw.example.com/mcp/atlassian/mcp"
    );
}

#[tokio::test]
async fn options_on_any_well_known_path_and_any_host_is_a_preflight() {
    let s = TestServer::start(CONFIG).await;
    for path in [
        format!("{PRM}/mcp/atlassian/mcp"),
        format!("{PRM}/nothing/here"),
        format!("{AS}/x"),
        "/.well-known/openid-configuration".into(),
    ] {
        let r = request(
            s.public,
            "OPTIONS",
            &path,
            &[
                ("Host", "anything.invalid"),
                ("Origin", "http://localhost:6274"),
                ("Access-Control-Request-Method", "GET"),
                ("Access-Control-Request-Headers", "mcp-protocol-version"),
            ],
        )
        .await;
        assert_eq!(r.status, 204, "{path}");
        assert!(r.body.is_empty());
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(
            r.header("access-control-allow-methods"),
            Some("GET, HEAD, OPTIONS")
        );
        let allowed = r
            .header("access-control-allow-headers")
            .unwrap()
            .to_ascii_lowercase();
        for h in ["mcp-protocol-version", "authorization", "content-type"] {
            assert!(allowed.contains(h), "{h} in {allowed}");
        }
        assert_eq!(r.header("access-control-max-age"), Some("86400"));
    }
    assert_eq!(
        request(s.public, "OPTIONS", "/mcp/atlassian/mcp", &[])
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn other_methods_on_a_served_path_get_405_with_allow() {
    let s = TestServer::start(CONFIG).await;
    for method in ["POST", "PUT", "DELETE", "PATCH", "TRACE"] {
        let r = request(
            s.public,
            method,
            &format!("{PRM}/mcp/atlassian/mcp"),
            &[("Content-Length", "0")],
        )
        .await;
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(r.json()["error"], "method_not_allowed");
        let r = request(
            s.public,
            method,
            &format!("{AS}/github"),
            &[("Content-Length", "0")],
        )
        .await;
        assert_eq!(r.status, 405, "{method} AS");
    }
    // A path that serves nothing is a 404 whatever the method.
    let r = request(
        s.public,
        "POST",
        &format!("{PRM}/nope"),
        &[("Content-Length", "0")],
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn everything_else_is_a_json_404_with_cors() {
    let s = TestServer::start(CONFIG).await;
    for path in [
        "/",
        "/mcp/atlassian/mcp",
        "/.well-known",
        "/.well-known/",
        "/.well-known/security.txt",
        "/eng-tools/.well-known/openid-configuration",
    ] {
        let r = get(s.public, path).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.json()["error"], "not_found");
    }
}

#[tokio::test]
async fn openid_configuration_is_never_served_partially() {
    let s = TestServer::start(CONFIG).await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/openid-configuration/eng-tools",
        "/.well-known/openid-configuration/github",
    ] {
        let r = get(s.public, path).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json()["error"], "not_found");
    }
    let metrics = get(s.admin, "/metrics").await.text();
    assert!(
        metrics.contains(r#"signpost_requests_total{kind="oidc",status="404"} 3"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn public_url_path_prefix_is_kept_after_the_well_known_segment() {
    let config = r#"{
      "public_url": "https://gw.example.com/litellm",
      "resource_paths": ["/mcp/{server}/mcp"],
      "servers": {
        "x": { "mode": "facade", "issuer": "https://idp.example.com/realms/x",
               "authorization_endpoint": "https://idp.example.com/auth", "token_endpoint": "https://idp.example.com/token" },
        "root": { "mode": "delegate", "issuer": "https://idp.example.com", "resource_paths": ["/"] }
      }
    }"#;
    let s = TestServer::start(config).await;
    let prm = get(s.public, &format!("{PRM}/litellm/mcp/x/mcp")).await;
    assert_eq!(prm.status, 200);
    assert_eq!(
        prm.json()["resource"],
        "https://gw.example.com/litellm/mcp/x/mcp"
    );
    assert_eq!(
        prm.json()["authorization_servers"],
        json!(["https://gw.example.com/litellm/x"])
    );
    let doc = get(s.public, &format!("{AS}/litellm/x")).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.json()["issuer"], "https://gw.example.com/litellm/x");
    // Without the prefix nothing is found.
    assert_eq!(get(s.public, &format!("{PRM}/mcp/x/mcp")).await.status, 404);
    // The server at "/" is the prefix itself.
    let root = get(s.public, &format!("{PRM}/litellm")).await;
    assert_eq!(root.status, 200);
    assert_eq!(root.json()["resource"], "https://gw.example.com/litellm");
    assert_eq!(get(s.public, PRM).await.status, 404);
}

const MULTI: &str = r#"{
  "public_url": ["https://a.example.com", "https://b.example.com:8443/gw", "http://127.0.0.1:9999"],
  "resource_paths": ["/mcp/{server}/mcp"],
  "servers": { "x": { "mode": "gateway" }, "d": { "mode": "delegate", "issuer": "https://idp.example.com/" } }
}"#;

#[tokio::test]
async fn host_selects_among_several_public_urls() {
    let s = TestServer::start(MULTI).await;
    let cases = [
        (
            "a.example.com",
            "/.well-known/oauth-protected-resource/mcp/x/mcp",
            "https://a.example.com/mcp/x/mcp",
            "https://a.example.com/x",
        ),
        (
            "A.Example.COM:443",
            "/.well-known/oauth-protected-resource/mcp/x/mcp",
            "https://a.example.com/mcp/x/mcp",
            "https://a.example.com/x",
        ),
        (
            "b.example.com:8443",
            "/.well-known/oauth-protected-resource/gw/mcp/x/mcp",
            "https://b.example.com:8443/gw/mcp/x/mcp",
            "https://b.example.com:8443/gw/x",
        ),
        (
            "127.0.0.1:9999",
            "/.well-known/oauth-protected-resource/mcp/x/mcp",
            "http://127.0.0.1:9999/mcp/x/mcp",
            "http://127.0.0.1:9999/x",
        ),
    ];
    for (host, path, resource, issuer) in cases {
        let r = request(s.public, "GET", path, &[("Host", host)]).await;
        assert_eq!(r.status, 200, "{host}");
        assert_eq!(r.json()["resource"], resource, "{host}");
        assert_eq!(r.json()["authorization_servers"], json!([issuer]), "{host}");
    }
    let r = request(
        s.public,
        "GET",
        "/.well-known/oauth-authorization-server/gw/x",
        &[("Host", "b.example.com:8443")],
    )
    .await;
    assert_eq!(r.json()["issuer"], "https://b.example.com:8443/gw/x");
    // b's documents are not on a's host, an unknown host gets nothing, and b needs its port.
    for (host, path) in [
        (
            "a.example.com",
            "/.well-known/oauth-protected-resource/gw/mcp/x/mcp",
        ),
        (
            "evil.example.com",
            "/.well-known/oauth-protected-resource/mcp/x/mcp",
        ),
        (
            "b.example.com",
            "/.well-known/oauth-protected-resource/gw/mcp/x/mcp",
        ),
    ] {
        assert_eq!(
            request(s.public, "GET", path, &[("Host", host)])
                .await
                .status,
            404,
            "{host}{path}"
        );
    }
}

#[tokio::test]
async fn host_and_forwarded_headers_never_change_a_document() {
    let s = TestServer::start(CONFIG).await;
    let path = format!("{PRM}/mcp/atlassian/mcp");
    let plain = get(s.public, &path).await;
    let r = request(
        s.public,
        "GET",
        &path,
        &[
            ("Host", "evil.example.net"),
            ("X-Forwarded-Host", "evil.example.net"),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Prefix", "/evil"),
            ("Forwarded", "host=evil.example.net;proto=http"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, plain.body);
    assert!(!r.text().contains("evil"));
    assert!(!r.headers.iter().any(|(_, v)| v.contains("evil")));
}

#[tokio::test]
async fn never_401_or_5xx_whatever_authorization_or_protocol_version_says() {
    let s = TestServer::start(CONFIG).await;
    let path = format!("{PRM}/mcp/atlassian/mcp");
    for (k, v) in [
        ("Authorization", "Bearer garbage"),
        ("Authorization", "Basic Zm9vOmJhcg=="),
        ("Authorization", ""),
        ("MCP-Protocol-Version", "2024-11-05"),
        ("MCP-Protocol-Version", "1999-01-01"),
        ("MCP-Protocol-Version", "garbage, with ;= separators"),
        ("Accept", "text/html"),
        ("Cookie", "session=x"),
    ] {
        let r = request(s.public, "GET", &path, &[(k, v)]).await;
        assert_eq!(r.status, 200, "{k}: {v}");
    }
}

#[tokio::test]
async fn garbage_requests_get_clean_4xx_and_the_server_keeps_serving() {
    let s = TestServer::start(CONFIG).await;
    let long_path = format!("{PRM}/{}", "a".repeat(70_000));
    let huge_header = format!(
        "GET {PRM}/mcp/atlassian/mcp HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(64 * 1024)
    );
    let many_headers: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let raws: Vec<Vec<u8>> = vec![
        format!("GET {long_path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
        b"GET /.well-known/oauth-protected-resource/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /.well-known/oauth-protected-resource/mcp/atlassian/mcp HTTP/1.1\r\nHost: \xff\xfe\r\nX-Bin: \x80\x81\r\n\r\n".to_vec(),
        huge_header.into_bytes(),
        format!("GET {PRM}/mcp/atlassian/mcp HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").into_bytes(),
        b"NOT-HTTP\r\n\r\n".to_vec(),
        b"GET / HTTP/9.9\r\n\r\n".to_vec(),
        b"GET \x00 HTTP/1.1\r\n\r\n".to_vec(),
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(), // a TLS ClientHello
    ];
    for raw in raws {
        let mut conn = Conn::open(s.public).await;
        conn.send_raw(&raw).await;
        if let Some(r) = conn.read_response(false).await {
            assert!(
                (200..500).contains(&r.status),
                "status {} for {:?}",
                r.status,
                String::from_utf8_lossy(&raw[..raw.len().min(60)])
            );
            assert_ne!(r.status, 401);
        }
    }
    // Non-UTF-8 but well-formed percent-encoding in the path is just an unknown path.
    assert_eq!(get(s.public, &format!("{PRM}/%FF%FE")).await.status, 404);
    assert_eq!(
        get(s.public, &format!("{PRM}/mcp/atlassian/mcp"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let s = TestServer::start(CONFIG).await;
    let mut conn = Conn::open(s.public).await;
    let raw = format!(
        "GET {PRM}/mcp/atlassian/mcp HTTP/1.1\r\nHost: x\r\n\r\nGET {PRM}/nope HTTP/1.1\r\nHost: x\r\n\r\nGET {AS}/github HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    conn.send_raw(raw.as_bytes()).await;
    let statuses: Vec<u16> = [
        conn.read_response(false).await.unwrap(),
        conn.read_response(false).await.unwrap(),
        conn.read_response(false).await.unwrap(),
    ]
    .iter()
    .map(|r| r.status)
    .collect();
    assert_eq!(statuses, [200, 404, 200]);
}

#[tokio::test]
async fn requests_are_counted_by_kind_and_status() {
    let s = TestServer::start(CONFIG).await;
    get(s.public, &format!("{PRM}/mcp/atlassian/mcp")).await;
    get(s.public, &format!("{AS}/github")).await;
    get(s.public, "/nope").await;
    request(s.public, "OPTIONS", PRM, &[]).await;
    request(s.public, "DELETE", &format!("{AS}/github"), &[]).await;
    let etag = get(s.public, &format!("{PRM}/mcp/github"))
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    request(
        s.public,
        "GET",
        &format!("{PRM}/mcp/github"),
        &[("If-None-Match", &etag)],
    )
    .await;
    let metrics = get(s.admin, "/metrics").await.text();
    for line in [
        r#"signpost_requests_total{kind="prm",status="200"} 2"#,
        r#"signpost_requests_total{kind="prm",status="304"} 1"#,
        r#"signpost_requests_total{kind="as",status="200"} 1"#,
        r#"signpost_requests_total{kind="not_found",status="404"} 1"#,
        r#"signpost_requests_total{kind="preflight",status="204"} 1"#,
        r#"signpost_requests_total{kind="method_not_allowed",status="405"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line} in\n{metrics}"
        );
    }
}

/// One raw HTTP/1.x request on a fresh connection (the caller writes every header line).
async fn raw(addr: std::net::SocketAddr, head: &str) -> common::Response {
    let mut c = Conn::open(addr).await;
    c.send_raw(head.as_bytes()).await;
    c.read_response(false).await.expect("an answer")
}

#[tokio::test]
async fn the_target_authority_wins_over_host_and_bad_hosts_get_a_json_400() {
    let s = TestServer::start(MULTI).await;
    let a_prm = "/.well-known/oauth-protected-resource/mcp/x/mcp";
    let b_prm = "/.well-known/oauth-protected-resource/gw/mcp/x/mcp";
    // Absolute-form (RFC 9112 §3.2.2): the target's authority selects the site, not Host.
    let r = raw(
        s.public,
        &format!("GET https://b.example.com:8443{b_prm} HTTP/1.1\r\nHost: a.example.com\r\n\r\n"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["resource"],
        "https://b.example.com:8443/gw/mcp/x/mcp"
    );
    let r = raw(
        s.public,
        &format!("GET https://evil.example.com{a_prm} HTTP/1.1\r\nHost: a.example.com\r\n\r\n"),
    )
    .await;
    assert_eq!(r.status, 404, "a's document served for another authority");
    // Two Host lines, or HTTP/1.1 without Host: 400 with a JSON body and CORS.
    for head in [
        format!("GET {a_prm} HTTP/1.1\r\nHost: a.example.com\r\nHost: b.example.com:8443\r\n\r\n"),
        format!("GET {a_prm} HTTP/1.1\r\nHost: a.example.com\r\nhost: a.example.com\r\n\r\n"),
        format!("GET {a_prm} HTTP/1.1\r\n\r\n"),
        format!("OPTIONS {a_prm} HTTP/1.1\r\n\r\n"),
        format!("GET https://a.example.com{a_prm} HTTP/1.1\r\n\r\n"),
    ] {
        let r = raw(s.public, &head).await;
        assert_eq!(r.status, 400, "{head:?}");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.json()["error"], "bad_request", "{head:?}");
        assert!(
            r.json()["error_description"]
                .as_str()
                .unwrap()
                .contains("Host")
        );
    }
    // HTTP/1.0 may omit Host: answered (a single public_url serves any host).
    let single = TestServer::start(CONFIG).await;
    let r = raw(
        single.public,
        &format!("GET {PRM}/mcp/atlassian/mcp HTTP/1.0\r\n\r\n"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["resource"],
        "https://gw.example.com/mcp/atlassian/mcp"
    );
    // ... and with several it finds no site without one, as before.
    assert_eq!(
        raw(s.public, &format!("GET {a_prm} HTTP/1.0\r\n\r\n"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn http2_authority_wins_over_host() {
    use http_body_util::{BodyExt, Empty};
    let s = TestServer::start(MULTI).await;
    let stream = tokio::net::TcpStream::connect(s.public).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(conn);
    let req = hyper::Request::get(
        "https://b.example.com:8443/.well-known/oauth-protected-resource/gw/mcp/x/mcp",
    )
    .header("host", "a.example.com")
    .body(Empty::<bytes::Bytes>::new())
    .unwrap();
    let r = send.send_request(req).await.expect("h2 answer");
    assert_eq!(r.status(), 200);
    let body = r.into_body().collect().await.unwrap().to_bytes();
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["resource"], "https://b.example.com:8443/gw/mcp/x/mcp");
}
