//! URLs and issuers (absolute http(s), kept byte for byte, hosted under a `public_url`) and
//! `public_url` itself (hosts, prefixes, plain http).

use super::*;

#[test]
fn issuers_with_query_or_fragment_are_rejected() {
    let text = r#"{"public_url": "https://gw.example.com", "servers": {
  "q": {"mode": "delegate", "issuer": "https://idp.example.com/realms/x?tenant=1"},
  "e": {"mode": "delegate", "issuer": "https://idp.example.com/?"},
  "f": {"mode": "delegate", "issuer": "https://idp.example.com/#top"},
  "h": {"mode": "delegate", "issuer": "https://idp.example.com#"}
}}"#;
    assert_eq!(
        errors(text),
        [
            "t.json:2:39: servers.q.issuer: an issuer must not have a query (RFC 8414 §2); remove it",
            "t.json:3:39: servers.e.issuer: an issuer must not have a query (RFC 8414 §2); remove it",
            "t.json:4:39: servers.f.issuer: must not have a fragment (#…); remove it",
            "t.json:5:39: servers.h.issuer: must not have a fragment (#…); remove it",
        ]
    );
}

#[test]
fn non_http_urls_are_rejected() {
    let text = r#"{"public_url": "ftp://gw.example.com", "servers": {
  "a": {"mode": "delegate", "issuer": "javascript:alert(1)"},
  "b": {"mode": "delegate", "issuer": "file:///etc/passwd"},
  "c": {"mode": "delegate", "issuer": "idp.example.com"},
  "d": {"mode": "none", "resource_documentation": "data:text/html,hi"}
}}"#;
    assert_eq!(
        errors(text),
        [
            "t.json:1:16: public_url: scheme \"ftp\" is not allowed; use https (or http for loopback)",
            "t.json:2:39: servers.a.issuer: scheme \"javascript\" is not allowed; use https (or http for loopback)",
            "t.json:3:39: servers.b.issuer: scheme \"file\" is not allowed; use https (or http for loopback)",
            "t.json:4:39: servers.c.issuer: not an absolute URL (relative URL without a base); write it like \"https://host/path\"",
            "t.json:5:51: servers.d.resource_documentation: scheme \"data\" is not allowed; use https (or http for loopback)",
        ]
    );
}

#[test]
fn public_url_must_not_have_query_or_fragment() {
    assert_eq!(
        errors(r#"{"public_url": "https://gw.example.com/?x", "servers": {}}"#),
        ["t.json:1:16: public_url: must not have a query (?…); remove it"]
    );
    assert_eq!(
        errors(r#"{"public_url": "https://gw.example.com#x", "servers": {}}"#),
        ["t.json:1:16: public_url: must not have a fragment (#…); remove it"]
    );
}

#[test]
fn issuers_are_kept_byte_for_byte() {
    let text = r#"{"public_url": "https://gw.example.com", "servers": {
  "keycloak": {"mode": "delegate", "issuer": "https://sso.example.com/realms/eng"},
  "auth0": {"mode": "delegate", "issuer": "https://tenant.auth0.com/"},
  "odd": {"mode": "delegate", "issuer": "https://IdP.Example.com:443/Tenant/"}
}}"#;
    let config = ok(text);
    let issuer = |name| server(&config, name).auth[0].issuer.clone();
    assert_eq!(issuer("keycloak"), "https://sso.example.com/realms/eng");
    assert_eq!(issuer("auth0"), "https://tenant.auth0.com/");
    assert_eq!(issuer("odd"), "https://IdP.Example.com:443/Tenant/");
    assert!(server(&config, "auth0").auth[0].hosted.is_none());
}

#[test]
fn facade_default_issuer_is_public_url_slash_server() {
    let text = format!(
        r#"{{"public_url": ["https://a.example.com", "https://b.example.com/litellm"], "servers": {{
  "eng": {{"mode": "facade", {FACADE_UPSTREAM}, "scopes": ["openid"]}}
}}}}"#
    );
    let config = ok(&text);
    let eng = server(&config, "eng");
    assert_eq!(eng.auth.len(), 2);
    assert_eq!(eng.auth[0].issuer, "https://a.example.com/eng");
    assert_eq!(eng.auth[1].issuer, "https://b.example.com/litellm/eng");
    let hosted = eng.auth[1]
        .hosted
        .as_ref()
        .expect("facade issuers are hosted");
    assert_eq!(hosted.site, 1);
    assert_eq!(
        hosted.well_known_path,
        "/.well-known/oauth-authorization-server/litellm/eng"
    );
    // The endpoints are the upstream's.
    assert_eq!(
        hosted.authorization_endpoint,
        "https://up.example.com/authorize"
    );
    assert_eq!(hosted.token_endpoint, "https://up.example.com/token");
    assert_eq!(
        hosted.registration_endpoint.as_deref(),
        Some("https://up.example.com/register")
    );
    assert!(hosted.token_endpoint_auth_methods_supported.is_empty());
}

#[test]
fn facade_issuer_may_live_under_any_public_url() {
    let text = format!(
        r#"{{"public_url": ["https://a.example.com", "https://b.example.com"], "servers": {{
  "eng": {{"mode": "facade", {FACADE_UPSTREAM}, "facade_issuer": "https://b.example.com/idp/eng"}}
}}}}"#
    );
    let config = ok(&text);
    for auth in &server(&config, "eng").auth {
        assert_eq!(auth.issuer, "https://b.example.com/idp/eng");
        assert_eq!(auth.hosted.as_ref().unwrap().site, 1);
    }
}

#[test]
fn facade_issuer_outside_every_public_url_is_rejected_once() {
    let text = format!(
        r#"{{"public_url": ["https://a.example.com", "https://b.example.com"], "servers": {{
  "eng": {{"mode": "facade", {FACADE_UPSTREAM},
          "facade_issuer": "https://elsewhere.example.com/eng"}}
}}}}"#
    );
    assert_eq!(
        errors(&text),
        [
            "t.json:3:28: servers.eng.facade_issuer: issuer https://elsewhere.example.com/eng is not under any public_url, so signpost cannot serve its metadata; use a template such as \"{public_url}/{server}\""
        ]
    );
}

#[test]
fn a_hosted_issuer_with_an_empty_path_segment_is_rejected() {
    // Found by the `config` fuzz target: `…/as/https:///` was served under `…/as/https:`, a URL
    // no client forms from that issuer.
    for issuer in ["{public_url}/as/https:///", "https://a.example.com/x//y"] {
        let text = format!(
            r#"{{"public_url": ["https://a.example.com", "https://b.example.com"], "servers": {{
  "eng": {{"mode": "facade", {FACADE_UPSTREAM}, "facade_issuer": "{issuer}"}}
}}}}"#
        );
        let found = errors(&text);
        assert_eq!(found.len(), 1, "{issuer}: {found:?}");
        assert!(
            found[0].contains("servers.eng.facade_issuer: issuer https://a.example.com/")
                && found[0].contains("has an empty path segment (\"//\")"),
            "{issuer}: {found:?}"
        );
    }
}

#[test]
fn a_bad_gateway_template_is_reported_once_not_per_server_and_site() {
    let text = r#"{"public_url": ["https://a.example.com", "https://b.example.com"],
 "gateway": {"issuer": "https://idp.example.com/{server}"},
 "servers": {"g1": {"mode": "gateway"}, "g2": {"mode": "gateway"}}}"#;
    assert_eq!(
        errors(text),
        [
            "t.json:2:24: gateway.issuer: issuer https://idp.example.com/g1 is not under any public_url, so signpost cannot serve its metadata; use a template such as \"{public_url}/{server}\""
        ]
    );
}

#[test]
fn gateway_templates_and_defaults() {
    let config = ok(&with_servers(
        r#""github": {"mode": "gateway", "scopes": ["repo"]}"#,
    ));
    let auth = &server(&config, "github").auth[0];
    assert_eq!(auth.issuer, "https://gw.example.com/github");
    let hosted = auth.hosted.as_ref().unwrap();
    assert_eq!(
        hosted.well_known_path,
        "/.well-known/oauth-authorization-server/github"
    );
    assert_eq!(
        hosted.authorization_endpoint,
        "https://gw.example.com/github/authorize"
    );
    assert_eq!(hosted.token_endpoint, "https://gw.example.com/github/token");
    assert_eq!(
        hosted.registration_endpoint.as_deref(),
        Some("https://gw.example.com/github/register")
    );
    assert_eq!(
        hosted.token_endpoint_auth_methods_supported,
        ["none", "client_secret_post"]
    );

    let text = r#"{"public_url": "https://gw.example.com", "gateway": {"issuer": "{public_url}/{server}/{oops}", "token_endpoint": "/token"}, "servers": {}}"#;
    assert_eq!(
        errors(text),
        [
            "t.json:1:64: gateway.issuer: only {public_url} and {server} may appear in braces; fix the template",
            "t.json:1:114: gateway.token_endpoint: must start with {public_url} or an absolute https:// URL",
        ]
    );
}

#[test]
fn two_servers_sharing_a_hosted_issuer_is_an_error() {
    let text = r#"{"public_url": "https://gw.example.com", "gateway": {"issuer": "{public_url}/gw"},
 "servers": {"a": {"mode": "gateway"}, "b": {"mode": "gateway"}}}"#;
    assert_eq!(
        errors(text),
        [
            "t.json:2:40: servers.b: its authorization-server issuer https://gw.example.com/gw is also the issuer of server \"a\"; give each server its own issuer"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// public_url.

#[test]
fn public_url_string_serves_every_host() {
    let config = ok(&with_servers(""));
    assert!(config.any_host);
    assert_eq!(config.sites.len(), 1);
    assert_eq!(config.sites[0].origin, "https://gw.example.com");
    assert_eq!(config.sites[0].prefix, "");
}

#[test]
fn public_url_list_selects_by_host() {
    let config = ok(
        r#"{"public_url": ["https://GW.example.com", "http://localhost:8080", "https://gw.example.com:8443"], "servers": {}}"#,
    );
    assert!(!config.any_host);
    let keys: Vec<&[String]> = config.sites.iter().map(|s| &s.host_keys[..]).collect();
    assert_eq!(
        keys,
        [
            &["gw.example.com".to_owned(), "gw.example.com:443".to_owned()][..],
            &["localhost:8080".to_owned()][..],
            &["gw.example.com:8443".to_owned()][..],
        ]
    );
    assert_eq!(config.sites[0].origin, "https://gw.example.com");
}

#[test]
fn public_url_list_entries_must_have_distinct_hosts() {
    let text = r#"{"public_url": [
  "https://gw.example.com",
  "https://GW.example.com:443/other",
  "http://gw.example.com",
  "http://h.example.com",
  "https://h.example.com:80",
  42
], "servers": {}}"#;
    assert_eq!(
        errors(text),
        [
            "t.json:3:3: public_url[1]: host gw.example.com is already used by public_url https://gw.example.com; the Host header cannot tell them apart, so give each entry its own host",
            "t.json:4:3: public_url[2]: host gw.example.com is already used by public_url https://gw.example.com; the Host header cannot tell them apart, so give each entry its own host",
            "t.json:6:3: public_url[4]: host h.example.com:80 is already used by public_url http://h.example.com; the Host header cannot tell them apart, so give each entry its own host",
            "t.json:7:3: public_url[5]: must be a URL string such as \"https://gw.example.com\"",
        ]
    );
    assert_eq!(
        errors(r#"{"public_url": [], "servers": {}}"#),
        ["t.json:1:16: public_url: must be a URL string or a non-empty list of URL strings"]
    );
}

#[test]
fn public_url_path_prefix() {
    let config = ok(
        r#"{"public_url": "https://gw.example.com/litellm/", "servers": {
        "a": {"mode": "gateway"}}}"#,
    );
    let site = &config.sites[0];
    assert_eq!(site.origin, "https://gw.example.com");
    assert_eq!(site.prefix, "/litellm");
    assert_eq!(site.base(), "https://gw.example.com/litellm");
    let a = server(&config, "a");
    // Paths are stored relative to the site; the prefix is added when serving.
    assert_eq!(a.paths[0], "/mcp/a/mcp");
    assert_eq!(site.full_path(&a.paths[0]), "/litellm/mcp/a/mcp");
    assert_eq!(
        site.resource_url(&site.full_path(&a.paths[0])),
        "https://gw.example.com/litellm/mcp/a/mcp"
    );
    assert_eq!(a.auth[0].issuer, "https://gw.example.com/litellm/a");
    assert_eq!(
        a.auth[0].hosted.as_ref().unwrap().well_known_path,
        "/.well-known/oauth-authorization-server/litellm/a"
    );
}

#[test]
fn plain_http_public_url_warns_unless_loopback() {
    let config = ok(
        r#"{"public_url": ["http://gw.example.com", "http://localhost:8080", "http://127.0.0.1:9", "http://[::1]:9"], "servers": {}}"#,
    );
    let http_warnings: Vec<&Problem> = config
        .warnings
        .iter()
        .filter(|w| w.message.starts_with("plain http"))
        .collect();
    assert_eq!(http_warnings.len(), 1);
    assert_eq!(http_warnings[0].path, "public_url[0]");
}
