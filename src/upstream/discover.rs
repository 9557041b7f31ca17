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

pub use super::judge::{Usage, is_entra, judge, judge_for, judge_usage};

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
    pub(super) fn error(code: &'static str, message: String) -> Finding {
        Finding {
            severity: Severity::Error,
            code,
            message,
        }
    }

    pub(super) fn warning(code: &'static str, message: String) -> Finding {
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
    /// The accepted document (values a facade could not relay already dropped) and the URL it
    /// came from (`None` when nothing usable was found).
    pub document: Option<(String, Map<String, Value>)>,
    /// Findings that do not depend on how the upstream is used.
    pub findings: Vec<Finding>,
    /// What [`judge_for`] needs beyond the document.
    pub notes: Notes,
}

impl Discovery {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// What one discovery learned about the accepted document beyond its content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notes {
    /// The `issuer` the document publishes, when it is not byte-for-byte the configured one
    /// (`configured_issuer`).
    pub published_issuer: Option<String>,
    pub configured_issuer: String,
    /// Whether that published issuer works on its own: its metadata URLs serve a document with
    /// exactly that issuer (only then is it suggested).
    pub published_issuer_works: bool,
    /// Values that break the rules the config check applies to the same keys, dropped from the
    /// document: `(key, why)`.
    pub dropped: Vec<(String, String)>,
    /// CORS of the upstream's metadata, registration and token endpoints, as a browser page at
    /// [`CORS_ORIGIN`] sees them (empty until [`probe_cors`] ran).
    pub cors: Vec<Cors>,
}

/// One endpoint's CORS, found without side effects (an `OPTIONS` preflight, a `GET` with `Origin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    pub endpoint: Endpoint,
    pub url: String,
    /// Why a browser page cannot use it; `None` when it can.
    pub problem: Option<String>,
}

/// The upstream endpoints a browser client calls itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Metadata,
    Registration,
    Token,
}

/// The origin the CORS checks ask for: the MCP Inspector's local page, the usual browser client.
pub const CORS_ORIGIN: &str = "http://localhost:6274";

/// The metadata URLs of `issuer` in the order MCP clients try them: with a path,
/// `/.well-known/oauth-authorization-server/<path>`, `/.well-known/openid-configuration/<path>`,
/// `<issuer>/.well-known/openid-configuration`; without one, the two root forms.
pub fn candidate_urls(issuer: &Url) -> Vec<Url> {
    crate::well_known::as_metadata_urls(issuer, issuer.path().trim_end_matches('/'), false)
}

/// Fetches the metadata of `issuer` (the configured string, byte-for-byte). The findings are those
/// that do not depend on how the upstream is used; [`judge_for`] adds the rest from the document
/// and the [`Notes`]. A document whose `issuer` differs from the configured one is still returned
/// (a facade tolerates it; a delegate server is told it fails), with the published issuer checked
/// on its own before anyone is told to use it.
pub async fn discover(fetcher: &Fetcher, issuer: &str) -> Discovery {
    let mut notes = Notes::default();
    let Ok(issuer_url) = Url::parse(issuer) else {
        return Discovery {
            attempts: Vec::new(),
            document: None,
            findings: vec![Finding::error(
                "unreachable",
                format!("issuer {issuer} is not a URL"),
            )],
            notes,
        };
    };
    let (attempts, document, mut findings) = fetch_document(fetcher, issuer, &issuer_url).await;
    let Some((source, mut doc)) = document else {
        return Discovery {
            attempts,
            document: None,
            findings,
            notes,
        };
    };
    let published = doc
        .get("issuer")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if published != issuer {
        notes.published_issuer_works = match Url::parse(&published) {
            Ok(url) if !published.is_empty() => {
                let (_, other, _) = fetch_document(fetcher, &published, &url).await;
                other.is_some_and(|(_, d)| {
                    d.get("issuer").and_then(Value::as_str) == Some(&published)
                })
            }
            _ => false,
        };
        notes.published_issuer = Some(published);
        notes.configured_issuer = issuer.to_owned();
    }
    notes.dropped = sanitize(&mut doc);
    if let Some(f) = private_host(&issuer_url, fetcher.limits().connect_timeout).await {
        findings.push(f);
    }
    Discovery {
        attempts,
        document: Some((source, doc)),
        findings,
        notes,
    }
}

/// [`discover`], then [`probe_cors`] on the accepted document: what the runtime and
/// `check --online` use.
pub async fn discover_with_cors(fetcher: &Fetcher, issuer: &str) -> Discovery {
    let mut d = discover(fetcher, issuer).await;
    if let Some((source, doc)) = &d.document {
        d.notes.cors = probe_cors(fetcher, source, doc).await;
    }
    d
}

/// The search over the candidate URLs: the first 200 with a JSON object, or the errors.
async fn fetch_document(
    fetcher: &Fetcher,
    issuer: &str,
    issuer_url: &Url,
) -> (
    Vec<Attempt>,
    Option<(String, Map<String, Value>)>,
    Vec<Finding>,
) {
    let mut attempts = Vec::new();
    let mut findings = Vec::new();
    let mut reached = false;
    let mut document = None;
    for url in candidate_urls(issuer_url) {
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
    if document.is_none() && findings.is_empty() {
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
    (attempts, document, findings)
}

/// Keys whose values a facade relays (or the findings read) and the rule each must pass: the
/// rules the config check applies to the same keys when they are written in the config.
const URL_KEYS: [&str; 4] = [
    "authorization_endpoint",
    "token_endpoint",
    "registration_endpoint",
    "revocation_endpoint",
];
const LIST_KEYS: [&str; 4] = [
    "token_endpoint_auth_methods_supported",
    "scopes_supported",
    "code_challenge_methods_supported",
    "response_types_supported",
];
const BOOL_KEYS: [&str; 2] = [
    "client_id_metadata_document_supported",
    "authorization_response_iss_parameter_supported",
];

/// Drops every value of the checked keys that breaks its rule; returns `(key, why)` for each.
/// Endpoints: absolute `https` (plain `http` only on a loopback host), no credentials, fragment,
/// spaces or control characters. Lists: non-empty lists of non-empty strings (scopes also RFC
/// 6749 scope tokens). Flags: JSON booleans.
pub fn sanitize(doc: &mut Map<String, Value>) -> Vec<(String, String)> {
    let mut dropped = Vec::new();
    for key in URL_KEYS {
        let Some(v) = doc.get(key) else { continue };
        if let Some(why) = endpoint_problem(v) {
            doc.remove(key);
            dropped.push((key.to_owned(), why));
        }
    }
    for key in LIST_KEYS {
        let Some(v) = doc.get(key) else { continue };
        let why = match v.as_array() {
            None => Some("is not a list".to_owned()),
            Some(a) if a.is_empty() => Some("is an empty list".to_owned()),
            Some(a) => a.iter().find_map(|x| match x.as_str() {
                None => Some(format!("holds {x}, not a string")),
                Some("") => Some("holds an empty string".to_owned()),
                Some(s)
                    if key == "scopes_supported"
                        && !s.bytes().all(crate::config::is_scope_char) =>
                {
                    Some(format!("holds {s:?}, not a scope token (RFC 6749 §3.3)"))
                }
                Some(_) => None,
            }),
        };
        if let Some(why) = why {
            doc.remove(key);
            dropped.push((key.to_owned(), why));
        }
    }
    for key in BOOL_KEYS {
        if let Some(v) = doc.get(key).filter(|v| !v.is_boolean()) {
            let why = format!("is {}, not true or false", short(v));
            doc.remove(key);
            dropped.push((key.to_owned(), why));
        }
    }
    dropped
}

/// Why a relayed endpoint value is unusable, if it is.
fn endpoint_problem(v: &Value) -> Option<String> {
    let Some(s) = v.as_str() else {
        return Some(format!("is {}, not a URL string", short(v)));
    };
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Some("contains spaces or control characters".to_owned());
    }
    let url = match Url::parse(s) {
        Ok(u) => u,
        Err(e) => return Some(format!("{} is not an absolute URL ({e})", short(v))),
    };
    match url.scheme() {
        "https" => {}
        "http" if crate::addr::is_loopback_url(&url) => {}
        "http" => {
            return Some(format!(
                "{} is plain http on a host that is not loopback",
                short(v)
            ));
        }
        other => return Some(format!("{} has scheme {other:?}, not https", short(v))),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Some(format!("{} has no host", short(v)));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Some("carries credentials (user:password@)".to_owned());
    }
    if url.fragment().is_some() {
        return Some(format!("{} has a fragment", short(v)));
    }
    None
}

/// A value for a message: its JSON, cut to 80 characters.
fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// Checks, without side effects, whether a browser page at [`CORS_ORIGIN`] can use the upstream's
/// metadata (`source`), registration and token endpoints: an `OPTIONS` preflight of what the
/// browser sends each, and for the token endpoint (a form POST a browser may send without a
/// preflight) a `GET` with `Origin` when the preflight fails. Nothing is registered or exchanged.
pub async fn probe_cors(fetcher: &Fetcher, source: &str, doc: &Map<String, Value>) -> Vec<Cors> {
    let mut out = Vec::new();
    let mut targets = vec![(Endpoint::Metadata, source.to_owned())];
    for (endpoint, key) in [
        (Endpoint::Registration, "registration_endpoint"),
        (Endpoint::Token, "token_endpoint"),
    ] {
        if let Some(url) = doc.get(key).and_then(Value::as_str) {
            targets.push((endpoint, url.to_owned()));
        }
    }
    for (endpoint, url) in targets {
        let Ok(u) = Url::parse(&url) else { continue };
        let (method, headers) = match endpoint {
            Endpoint::Metadata => ("GET", "mcp-protocol-version"),
            Endpoint::Registration | Endpoint::Token => ("POST", "content-type"),
        };
        let preflight = fetcher
            .request(
                hyper::Method::OPTIONS,
                &u,
                &[
                    ("origin", CORS_ORIGIN),
                    ("access-control-request-method", method),
                    ("access-control-request-headers", headers),
                ],
                bytes::Bytes::new(),
            )
            .await;
        let mut problem = match &preflight {
            Ok(r) => preflight_problem(r.status.as_u16(), &r.headers, headers),
            Err(e) => Some(format!("the preflight got no answer ({e})")),
        };
        // The metadata GET and a token request with only simple headers need no preflight:
        // what the real request's answer carries decides.
        if problem.is_some() && endpoint != Endpoint::Registration {
            if let Ok(r) = fetcher
                .request(
                    hyper::Method::GET,
                    &u,
                    &[("origin", CORS_ORIGIN)],
                    bytes::Bytes::new(),
                )
                .await
            {
                if allow_origin(&r.headers).is_none() {
                    problem = None;
                } else if endpoint == Endpoint::Metadata {
                    problem = allow_origin(&r.headers);
                }
            }
        }
        out.push(Cors {
            endpoint,
            url,
            problem,
        });
    }
    out
}

/// What is wrong with a preflight answer allowing `headers` (comma-separated) from [`CORS_ORIGIN`].
fn preflight_problem(status: u16, h: &hyper::HeaderMap, headers: &str) -> Option<String> {
    if !(200..300).contains(&status) {
        return Some(format!("the preflight (OPTIONS) answered {status}"));
    }
    if let Some(p) = allow_origin(h) {
        return Some(p);
    }
    let allowed: Vec<String> = h
        .get_all(hyper::header::ACCESS_CONTROL_ALLOW_HEADERS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    let missing: Vec<&str> = headers
        .split(',')
        .map(str::trim)
        .filter(|want| !allowed.iter().any(|a| a == want || a == "*"))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "the preflight does not allow the header{} {}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        )
    })
}

/// What is wrong with `Access-Control-Allow-Origin` for [`CORS_ORIGIN`], if anything.
fn allow_origin(h: &hyper::HeaderMap) -> Option<String> {
    let values: Vec<&str> = h
        .get_all(hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    match values.as_slice() {
        [] => Some("no Access-Control-Allow-Origin".to_owned()),
        [v] if v.trim() == "*" || v.trim() == CORS_ORIGIN => None,
        [v] => Some(format!(
            "Access-Control-Allow-Origin is {v:?}, not * or {CORS_ORIGIN}"
        )),
        _ => Some("several Access-Control-Allow-Origin headers".to_owned()),
    }
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
    let private = addrs.iter().find(|ip| crate::addr::is_private(ip))?;
    Some(Finding::warning(
        "private_host",
        format!(
            "the IdP host {host} is on a private or loopback address ({private}): rmcp refuses it unless the MCP server is on loopback too, and hosted clients (claude.ai) refuse it entirely; publish the IdP on a public address"
        ),
    ))
}

#[cfg(test)]
mod tests;
