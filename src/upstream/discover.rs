//! One discovery of an upstream IdP's metadata, the way MCP clients do it: the well-known URLs of
//! its issuer in MCP order, a 4xx moves on to the next URL, any other answer ends the search (a
//! 5xx, an oversized body or an origin that cannot be reached as an error), and the `issuer` of
//! the 200 must be byte-identical to the configured one. Then the findings: what in that document
//! breaks which clients, each with a severity and a fix.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::{Map, Value};
use url::Url;

use crate::fetch::{FetchError, Fetcher};

/// How bad a finding is: an error breaks login for some clients, a warning may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One thing an operator should know about an upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// A stable identifier (`issuer_mismatch`, `unreachable`, …).
    pub code: &'static str,
    /// What breaks, for which clients, and the fix.
    pub message: String,
}

impl Finding {
    fn error(code: &'static str, message: String) -> Finding {
        Finding {
            severity: Severity::Error,
            code,
            message,
        }
    }

    fn warning(code: &'static str, message: String) -> Finding {
        Finding {
            severity: Severity::Warning,
            code,
            message,
        }
    }
}

/// How the server using this upstream is configured (some findings depend on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Delegate,
    Facade,
}

/// One URL tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    pub url: String,
    /// The HTTP status, or the reason there was none.
    pub result: String,
}

/// The outcome of one discovery.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub attempts: Vec<Attempt>,
    /// The accepted document and the URL it came from (`None` when nothing usable was found).
    pub document: Option<(String, Map<String, Value>)>,
    pub findings: Vec<Finding>,
}

impl Discovery {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// The metadata URLs of `issuer` in the order MCP clients try them: with a path,
/// `/.well-known/oauth-authorization-server/<path>`, `/.well-known/openid-configuration/<path>`,
/// `<issuer>/.well-known/openid-configuration`; without one, the two root forms.
pub fn candidate_urls(issuer: &Url) -> Vec<Url> {
    let path = issuer.path().trim_end_matches('/');
    let at = |p: &str| {
        let mut u = issuer.clone();
        u.set_path(p);
        u.set_query(None);
        u.set_fragment(None);
        u
    };
    if path.is_empty() {
        vec![
            at("/.well-known/oauth-authorization-server"),
            at("/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            at(&format!("/.well-known/oauth-authorization-server{path}")),
            at(&format!("/.well-known/openid-configuration{path}")),
            at(&format!("{path}/.well-known/openid-configuration")),
        ]
    }
}

/// Fetches the metadata of `issuer` (the configured string, byte-for-byte). The findings are those
/// that do not depend on how the upstream is used; [`judge`] adds the rest.
pub async fn discover(fetcher: &Fetcher, issuer: &str) -> Discovery {
    let mut attempts = Vec::new();
    let mut findings = Vec::new();
    let Ok(issuer_url) = Url::parse(issuer) else {
        findings.push(Finding::error(
            "unreachable",
            format!("issuer {issuer} is not a URL"),
        ));
        return Discovery {
            attempts,
            document: None,
            findings,
        };
    };
    let mut reached = false;
    let mut document = None;
    for url in candidate_urls(&issuer_url) {
        match fetcher.get_json(&url, &[]).await {
            Err(e) => {
                attempts.push(Attempt {
                    url: url.to_string(),
                    result: e.to_string(),
                });
                match e {
                    FetchError::CrossOriginRedirect { .. } => reached = true,
                    // An answer, just not one to read: like a 200 that is not JSON, it ends
                    // discovery for the clients too.
                    FetchError::TooLarge(max) => {
                        findings.push(Finding::error(
                            "invalid_metadata",
                            format!("{url} answers with a body larger than {max} bytes, far more than any metadata document: it is not serving metadata there; fix the IdP or its proxy"),
                        ));
                        break;
                    }
                    // Every candidate URL has the same origin: the next one cannot connect
                    // either, and trying it would multiply the time a hanging IdP costs.
                    FetchError::Connect(_) | FetchError::Timeout(_) => break,
                    _ => {}
                }
            }
            Ok(r) => {
                reached = true;
                attempts.push(Attempt {
                    url: url.to_string(),
                    result: r.status.as_u16().to_string(),
                });
                // A 4xx sends clients to the next URL; a 5xx stops them (TS, Python, rmcp).
                if r.status.is_server_error() {
                    break;
                }
                if !r.status.is_success() {
                    continue;
                }
                match serde_json::from_slice::<Value>(&r.body) {
                    Ok(Value::Object(doc)) => {
                        document = Some((url.to_string(), doc));
                    }
                    _ => findings.push(Finding::error(
                        "invalid_metadata",
                        format!("{url} answers 200 with something that is not a JSON object: the TypeScript SDK stops there and never tries the next URL; fix the IdP or its proxy"),
                    )),
                }
                break;
            }
        }
    }
    let Some((source, doc)) = document else {
        if findings.is_empty() {
            let tried: Vec<String> = attempts
                .iter()
                .map(|a| format!("{} ({})", a.url, a.result))
                .collect();
            let why = if reached {
                "none of them serves metadata"
            } else {
                "none of them answered"
            };
            findings.push(Finding::error(
                "unreachable",
                format!(
                    "no authorization-server metadata for issuer {issuer}: tried {} and {why}; every client fails to log in. Check the issuer (a Keycloak realm issuer ends in /realms/<realm>)",
                    tried.join(", ")
                ),
            ));
        }
        return Discovery {
            attempts,
            document: None,
            findings,
        };
    };
    let published = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
    if published != issuer {
        findings.push(Finding::error(
            "issuer_mismatch",
            format!(
                "{source} says issuer {published:?} but the config says {issuer:?}; clients compare them exactly (RFC 8414 §3.3) and refuse to log in. {}",
                suggest(issuer, published)
            ),
        ));
        return Discovery {
            attempts,
            document: None,
            findings,
        };
    }
    if let Some(f) = private_host(&issuer_url, fetcher.limits().connect_timeout).await {
        findings.push(f);
    }
    Discovery {
        attempts,
        document: Some((source, doc)),
        findings,
    }
}

/// The closest fix for an issuer mismatch.
fn suggest(configured: &str, published: &str) -> String {
    if published.is_empty() {
        return "The document has no issuer; the IdP's metadata is broken".into();
    }
    if published.trim_end_matches('/') == configured.trim_end_matches('/') {
        let slash = if published.ends_with('/') {
            "with"
        } else {
            "without"
        };
        return format!(
            "Did you mean \"{published}\" ({slash} the trailing slash)? Write the issuer exactly as the IdP publishes it"
        );
    }
    format!("Did you mean \"{published}\"? Write the issuer exactly as the IdP publishes it")
}

/// [`judge`] for a configured server: a facade whose config names a registration endpoint does
/// not need the upstream to advertise one.
pub fn judge_for(doc: &Map<String, Value>, server: &crate::config::Server) -> Vec<Finding> {
    let used_as = match server.mode {
        crate::config::ModeKind::Facade => Use::Facade,
        _ => Use::Delegate,
    };
    let registration_configured = server.auth.iter().any(|a| {
        a.hosted
            .as_ref()
            .is_some_and(|h| h.registration_endpoint.is_some())
    });
    judge(doc, used_as)
        .into_iter()
        .filter(|f| !(registration_configured && f.code == "no_registration"))
        .collect()
}

/// What in an accepted document breaks which clients.
pub fn judge(doc: &Map<String, Value>, used_as: Use) -> Vec<Finding> {
    let mut out = Vec::new();
    let strings = |key: &str| -> Option<Vec<&str>> {
        doc.get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
    };
    match strings("code_challenge_methods_supported") {
        None if used_as == Use::Delegate => out.push(Finding::warning(
            "no_pkce_methods",
            "no code_challenge_methods_supported: strict clients (the 2025-11-25 spec, claude.ai) refuse to log in; use mode \"facade\", which advertises S256".into(),
        )),
        Some(methods) if !methods.contains(&"S256") => out.push(Finding::warning(
            "no_s256",
            format!(
                "code_challenge_methods_supported is {methods:?} without S256: the TypeScript SDK and rmcp refuse to log in{}",
                if used_as == Use::Delegate { "; use mode \"facade\" if the IdP does support S256" } else { "; the facade advertises S256, but check the IdP accepts it" }
            ),
        )),
        _ => {}
    }
    let cimd = doc
        .get("client_id_metadata_document_supported")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if doc
        .get("registration_endpoint")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
        && !cimd
    {
        out.push(Finding::warning(
            "no_registration",
            "no registration_endpoint and no client ID metadata document support: the TypeScript SDK cannot register a client and the Python SDK posts to the gateway's /register instead; enable dynamic client registration on the IdP".into(),
        ));
    }
    if used_as == Use::Facade
        && doc
            .get("authorization_response_iss_parameter_supported")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    {
        out.push(Finding::error(
            "iss_parameter_with_facade",
            "the IdP sends RFC 9207 `iss` on its authorization response; behind a facade that `iss` differs from the facade's issuer, so 2026-07-28 clients (TS v2, Python, rmcp) reject the redirect; use mode \"delegate\" for this IdP".into(),
        ));
    }
    out
}

/// A warning when the issuer's host is (or resolves to) a private or loopback address. The name
/// lookup gets at most `within` (a resolver that hangs must not hold up discovery).
async fn private_host(issuer: &Url, within: std::time::Duration) -> Option<Finding> {
    let host = issuer.host_str()?.trim_matches(['[', ']']).to_owned();
    let port = issuer.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::time::timeout(within, tokio::net::lookup_host((host.as_str(), port)))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|a| a.map(|s| s.ip()).collect())
            .unwrap_or_default(),
    };
    let private = addrs.iter().find(|ip| is_private(ip))?;
    Some(Finding::warning(
        "private_host",
        format!(
            "the IdP host {host} is on a private or loopback address ({private}): rmcp refuses it unless the MCP server is on loopback too, and hosted clients (claude.ai) refuse it entirely; publish the IdP on a public address"
        ),
    ))
}

/// Loopback, private (RFC 1918 / unique local), link-local or unspecified.
pub fn is_private(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_private(&IpAddr::V4(v4)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(issuer: &str) -> Vec<String> {
        candidate_urls(&Url::parse(issuer).unwrap())
            .iter()
            .map(Url::to_string)
            .collect()
    }

    #[test]
    fn path_issuers_are_tried_in_mcp_order() {
        assert_eq!(
            urls("https://sso.example.com/realms/eng"),
            [
                "https://sso.example.com/.well-known/oauth-authorization-server/realms/eng",
                "https://sso.example.com/.well-known/openid-configuration/realms/eng",
                "https://sso.example.com/realms/eng/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            urls("https://sso.example.com/realms/eng/"),
            urls("https://sso.example.com/realms/eng")
        );
    }

    #[test]
    fn root_issuers_try_the_two_root_forms() {
        for issuer in ["https://tenant.auth0.com/", "https://tenant.auth0.com"] {
            assert_eq!(
                urls(issuer),
                [
                    "https://tenant.auth0.com/.well-known/oauth-authorization-server",
                    "https://tenant.auth0.com/.well-known/openid-configuration",
                ]
            );
        }
    }

    #[test]
    fn suggestions_name_the_trailing_slash() {
        assert!(
            suggest("https://t.auth0.com", "https://t.auth0.com/")
                .contains("with the trailing slash")
        );
        assert!(
            suggest("https://sso/realms/eng", "https://sso/realms/eng2")
                .contains("\"https://sso/realms/eng2\"")
        );
    }

    #[test]
    fn private_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private(&ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "2606:4700::1111", "100.128.0.1"] {
            assert!(!is_private(&ip.parse().unwrap()), "{ip}");
        }
    }
}
