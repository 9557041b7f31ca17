//! The per-family walks and the checklist, as pure functions of what was observed.
//!
//! Each family is a [`Model`]: the rules CLIENTS.md records for it. A walk follows the family's
//! discovery order over the recorded answers and stops at the first check that stops that client.
//! The checklist reports every rule on the deployment's answers; a rule that is broken but stops no
//! family here (a fallback rescues it) is a warning, one that stops a family is a failure.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::Value;
use url::Url;

use super::gather::{Failed, Kind, Observed, Outcome, Resp};
use super::header::{self, parse_challenges};
use super::{Family, Step, origin_of};
use crate::well_known::{
    as_metadata_urls, is_oidc_url, prm_path_inserted, prm_root, prm_suffixed, prm_urls,
    trimmed_path,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Info,
    Skip,
}

/// One line of the checklist.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub step: Step,
    pub status: Status,
    pub summary: String,
    pub details: Vec<String>,
    /// Families whose verdict stops at this check.
    pub fails: Vec<Family>,
    pub fix: Option<&'static str>,
}

/// Where a family stops.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub step: Step,
    pub check: &'static str,
    pub reason: String,
    pub fix: &'static str,
}

/// One family's result.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub family: Family,
    pub failure: Option<Failure>,
    /// The PRM URL the family used (after redirects), when it got that far.
    pub prm: Option<String>,
    pub issuer: Option<String>,
    /// The AS metadata URL the family used.
    pub as_metadata: Option<String>,
    pub notes: Vec<String>,
}

/// The one-sentence fix for each check.
pub fn fix_for(check: &str) -> &'static str {
    match check {
        "challenge.status" => {
            "Make the MCP endpoint answer a request without a token with 401 and a WWW-Authenticate challenge (the proxy must relay the gateway's 401, not turn it into another status)."
        }
        "challenge.get" => {
            "Answer GET on the MCP URL without a token with the same 401 and challenge as POST, so rmcp (which probes with GET) gets the hint."
        }
        "challenge.www_authenticate" => {
            "Add `WWW-Authenticate: Bearer resource_metadata=\"<absolute PRM URL>\"` to the 401 (signpost's /challenge answer)."
        }
        "challenge.bearer_first" => {
            "Send exactly one WWW-Authenticate line and make it start with `Bearer` (drop the gateway's own challenge; signpost's deploy/nginx config does this)."
        }
        "challenge.single" => {
            "Send exactly one WWW-Authenticate challenge: replace the gateway's own with signpost's instead of adding a second one."
        }
        "challenge.resource_metadata" => {
            "Put an absolute `resource_metadata=\"https://…/.well-known/oauth-protected-resource/…\"` in the Bearer challenge."
        }
        "challenge.hint_same_origin" => {
            "Serve the protected-resource metadata on the MCP URL's own origin and point resource_metadata there."
        }
        "challenge.scope" => {
            "Quote the scope value and separate scope tokens with single spaces (RFC 6750 §3)."
        }
        "challenge.expose_headers" => {
            "Add `Access-Control-Expose-Headers: WWW-Authenticate` to the 401 so browser clients can read the hint."
        }
        "prm.hint" => {
            "Make the resource_metadata URL answer 200 with the metadata document: TypeScript clients do not fall back to the well-known URLs when the hint fails."
        }
        "prm.found" => {
            "Serve the protected-resource metadata at /.well-known/oauth-protected-resource<MCP path> (RFC 9728 §3.1) on the MCP URL's origin."
        }
        "prm.server_error" => {
            "Answer the well-known URLs with 200 or 404, never 5xx: a 5xx stops TypeScript v1 and rmcp discovery."
        }
        "prm.redirect" => {
            "Serve the metadata on the MCP URL's origin instead of redirecting to another origin."
        }
        "prm.json" => {
            "Answer the metadata URL with a JSON object (Content-Type: application/json)."
        }
        "prm.content_type" => "Send the metadata with `Content-Type: application/json`.",
        "prm.no_null_or_empty" => {
            "Omit absent fields instead of sending null, empty strings or empty lists."
        }
        "prm.resource" => {
            "Set `resource` to exactly the MCP URL clients use (same scheme, host, port and path, no trailing slash)."
        }
        "prm.authorization_servers" => {
            "List exactly one authorization server, the issuer clients should use, in `authorization_servers`."
        }
        "prm.expected_issuer" => {
            "Point `authorization_servers[0]` at the expected issuer (the server's `issuer` or mode in signpost's config)."
        }
        "prm.protocol_version" => {
            "Answer the well-known URLs the same whatever `MCP-Protocol-Version` the request carries (rmcp sends 2024-11-05)."
        }
        "as.found" => {
            "Serve the authorization server's metadata at one of the RFC 8414 / OIDC well-known URLs for its issuer."
        }
        "as.server_error" => {
            "Answer the AS metadata URLs with 200 or 404, never 5xx: a 5xx stops TypeScript v1 and rmcp discovery."
        }
        "as.parse" => {
            "Serve complete RFC 8414 metadata (issuer, authorization_endpoint, token_endpoint, response_types_supported) at the first URL that answers 200."
        }
        "as.oidc_shape" => {
            "At an openid-configuration URL serve a complete OIDC document (jwks_uri, subject_types_supported, id_token_signing_alg_values_supported) or answer 404."
        }
        "as.no_null_or_empty" => {
            "Omit absent fields from the AS metadata instead of sending null, empty strings or empty lists."
        }
        "as.issuer" => {
            "Make `authorization_servers[0]` byte-for-byte the `issuer` in the AS metadata (or use signpost's facade mode to serve a matching document)."
        }
        "as.response_type_code" => {
            "Advertise `\"code\"` in response_types_supported (MCP clients use the authorization-code flow)."
        }
        "as.pkce_s256" => {
            "Advertise `code_challenge_methods_supported: [\"S256\"]` (signpost's facade mode adds it)."
        }
        "as.registration" => {
            "Offer dynamic client registration (registration_endpoint) or client ID metadata documents."
        }
        "as.rfc9207" => {
            "If the upstream sends `iss` on the authorization response, use delegate mode so the recorded issuer is the upstream's own."
        }
        "as.private_host" => {
            "Publish an authorization server on a public host, or run the MCP endpoint on loopback too for a local setup."
        }
        "cors.mcp_preflight" => {
            "Answer OPTIONS on the MCP URL without auth, allowing the Origin and every requested header (echo Access-Control-Request-Headers: 2026-07-28 clients add mcp-method, mcp-name and mcp-param-*)."
        }
        "cors.challenge_allow_origin" => {
            "Add `Access-Control-Allow-Origin` to the MCP endpoint's 401."
        }
        "cors.prm_preflight" => {
            "Answer OPTIONS on the well-known URLs with 2xx, allowing the Origin and mcp-protocol-version."
        }
        "cors.prm_allow_origin" => {
            "Add `Access-Control-Allow-Origin` to the protected-resource metadata responses."
        }
        "cors.as_preflight" => {
            "Answer OPTIONS on the AS metadata URLs with 2xx, allowing the Origin and mcp-protocol-version."
        }
        "cors.as_allow_origin" => {
            "Add `Access-Control-Allow-Origin` to the AS metadata responses (signpost's facade mode serves them with CORS)."
        }
        "cors.redirect" => {
            "Serve every discovery document at the URL clients request, without a redirect: a browser page follows none during discovery, not even a same-origin one."
        }
        "cors.registration" => {
            "Enable CORS on the IdP's registration endpoint (answer the OPTIONS preflight of a JSON POST for the page's Origin); only the IdP can fix it, a facade does not."
        }
        "cors.token" => {
            "Enable CORS on the IdP's token endpoint (Access-Control-Allow-Origin on its answers and preflights); only the IdP can fix it, a facade does not."
        }
        "prm.scopes" => {
            "Give the server the scopes it needs (signpost's `scopes`), without offline_access: they go into the challenge and the PRM."
        }
        "as.entra_resource" => {
            "Set the Entra app registration's Application ID URI to the MCP URL (clients send it as RFC 8707 resource; Entra answers AADSTS9010010 otherwise)."
        }
        "challenge.invalid_token" => {
            "Make the gateway answer a request with an invalid or expired token with 401 (and `error=\"invalid_token\"`), as for no token: any other status keeps clients from logging in again."
        }
        _ => "",
    }
}

fn step_of(check: &str) -> Step {
    match check.split('.').next() {
        Some("challenge") => Step::Challenge,
        Some("prm") => Step::Prm,
        Some("as") => Step::As,
        _ => Step::Cors,
    }
}

// === family models ===

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IssuerRule {
    None,
    Exact,
    /// TS v2: one trailing `/` tolerated on the expected side only.
    ExpectedSlash,
}

#[derive(Debug, Clone, Copy)]
struct Model {
    family: Family,
    /// TS: `Bearer` first, first quoted `resource_metadata`, no well-known fallback after a hint.
    ts_header: bool,
    /// rmcp: the hint comes from its GET; cross-origin hints are ignored.
    rmcp: bool,
    browser: bool,
    stops_on_5xx: bool,
    follows_cross_origin: bool,
    strict_null_prm: bool,
    strict_null_as: bool,
    /// TS: a 200 that fails to parse throws; OIDC URLs need the OIDC shape.
    ts_parse: bool,
    trailing_slash_ok: bool,
    exact_resource: bool,
    issuer: IssuerRule,
    s256_when_present: bool,
    needs_registration: bool,
}

fn model(family: Family) -> Model {
    let ts_v1 = Model {
        family,
        ts_header: true,
        rmcp: false,
        browser: false,
        stops_on_5xx: true,
        follows_cross_origin: false,
        strict_null_prm: true,
        strict_null_as: true,
        ts_parse: true,
        trailing_slash_ok: false,
        exact_resource: false,
        issuer: IssuerRule::None,
        s256_when_present: true,
        needs_registration: true,
    };
    let lenient = Model {
        family,
        ts_header: false,
        rmcp: false,
        browser: false,
        stops_on_5xx: false,
        follows_cross_origin: false,
        strict_null_prm: false,
        strict_null_as: false,
        ts_parse: false,
        trailing_slash_ok: false,
        exact_resource: false,
        issuer: IssuerRule::None,
        s256_when_present: false,
        needs_registration: false,
    };
    match family {
        Family::TsV1 => ts_v1,
        Family::TsV2 => Model {
            stops_on_5xx: false,
            issuer: IssuerRule::ExpectedSlash,
            ..ts_v1
        },
        Family::Browser => Model {
            browser: true,
            ..ts_v1
        },
        Family::Python => Model {
            follows_cross_origin: true,
            strict_null_prm: true,
            trailing_slash_ok: true,
            issuer: IssuerRule::Exact,
            needs_registration: true,
            ..lenient
        },
        Family::Rmcp => Model {
            rmcp: true,
            stops_on_5xx: true,
            trailing_slash_ok: true,
            issuer: IssuerRule::Exact,
            s256_when_present: true,
            ..lenient
        },
        Family::Vscode => Model {
            exact_resource: true,
            ..lenient
        },
    }
}

// === helpers over answers ===

/// What a family got for one document URL.
enum Got<'a> {
    Ok(&'a Resp),
    /// No usable answer; `check` is the check to blame when nothing else works, `strong` when it
    /// is a real rule violation rather than a plain absence.
    Failed {
        check: &'static str,
        strong: bool,
        why: String,
    },
}

/// Problems with a CORS preflight answer, `None` when the browser would send the request.
pub fn preflight_problem(
    o: &Outcome,
    origin: &str,
    method: &str,
    headers: &[&str],
) -> Option<String> {
    let r = match o {
        Ok(r) => r,
        Err(e) => return Some(format!("no answer ({e})")),
    };
    if !(200..300).contains(&r.status) {
        return Some(format!("the preflight answered {}", r.status));
    }
    if let Some(p) = allow_origin_problem(r, origin) {
        return Some(p);
    }
    let methods = header::list(&r.all("access-control-allow-methods"));
    let simple = matches!(method, "GET" | "HEAD" | "POST");
    if !simple
        && !methods
            .iter()
            .any(|m| m == "*" || m.eq_ignore_ascii_case(method))
    {
        return Some(format!(
            "Access-Control-Allow-Methods does not allow {method}"
        ));
    }
    let allowed = header::list(&r.all("access-control-allow-headers"));
    let missing: Vec<&str> = headers
        .iter()
        .copied()
        .filter(|h| {
            !(allowed.iter().any(|a| a == h)
                || (allowed.iter().any(|a| a == "*") && *h != "authorization"))
        })
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "Access-Control-Allow-Headers ({}) does not allow {}",
            if allowed.is_empty() {
                "absent".to_owned()
            } else {
                allowed.join(", ")
            },
            missing.join(", ")
        ));
    }
    None
}

/// Problems with `Access-Control-Allow-Origin` on a response, `None` when the browser may read it.
pub fn allow_origin_problem(r: &Resp, origin: &str) -> Option<String> {
    let values = r.all("access-control-allow-origin");
    match values.as_slice() {
        [] => Some("no Access-Control-Allow-Origin".to_owned()),
        [v] if v.trim() == "*" || v.trim() == origin => None,
        [v] => Some(format!(
            "Access-Control-Allow-Origin is {v:?}, not * or {origin}"
        )),
        _ => Some(format!(
            "{} Access-Control-Allow-Origin headers (browsers need exactly one)",
            values.len()
        )),
    }
}

fn exposes_www_authenticate(r: &Resp) -> bool {
    header::list(&r.all("access-control-expose-headers"))
        .iter()
        .any(|h| h == "www-authenticate" || h == "*")
}

fn outcome_line(kind: Kind, url: &Url, o: Option<&Outcome>) -> String {
    match o {
        None => format!("{url}: not requested"),
        Some(Ok(r)) => {
            let mut s = format!("{url} → {}", r.status);
            for (from, to) in &r.redirects {
                s.push_str(&format!(" (same-origin redirect {from} → {to})"));
            }
            if kind == Kind::Legacy {
                s.push_str(" with MCP-Protocol-Version: 2024-11-05");
            }
            s
        }
        Some(Err(e)) => format!("{url} → {e}"),
    }
}

fn status_text(o: Option<&Outcome>) -> String {
    match o {
        None => "not requested".to_owned(),
        Some(Ok(r)) => r.status.to_string(),
        Some(Err(Failed::Fetch(crate::fetch::FetchError::CrossOriginRedirect { to, .. }))) => {
            format!("cross-origin redirect to {to} (not followed)")
        }
        Some(Err(e)) => e.to_string(),
    }
}

/// A document URL as a family fetches it.
fn get_doc<'a>(
    seen: &'a Observed,
    m: &Model,
    url: &Url,
    prm: bool,
    notes: &mut Vec<String>,
) -> Got<'a> {
    let (redirect_check, cors_check, found_check) = if prm {
        ("prm.redirect", "cors.prm_allow_origin", "prm.found")
    } else {
        ("as.found", "cors.as_allow_origin", "as.found")
    };
    let outcome = if m.browser {
        let pre = seen.get(Kind::Preflight, url);
        let ok = pre.is_some_and(|p| {
            preflight_problem(p, &seen.origin, "GET", &["mcp-protocol-version"]).is_none()
        });
        if ok {
            seen.get(Kind::CorsGet, url)
        } else {
            seen.get(Kind::CorsSimpleGet, url)
                .or_else(|| seen.get(Kind::CorsGet, url))
        }
    } else if m.rmcp && prm {
        seen.get(Kind::Legacy, url)
    } else {
        seen.get(Kind::Modern, url)
    };
    let Some(outcome) = outcome else {
        return Got::Failed {
            check: found_check,
            strong: false,
            why: format!("{url} was not requested (time budget)"),
        };
    };
    match outcome {
        Ok(r) => {
            if m.browser && !r.redirects.is_empty() {
                let hops: Vec<String> = r
                    .redirects
                    .iter()
                    .map(|(from, to)| format!("{from} → {to}"))
                    .collect();
                return Got::Failed {
                    check: "cors.redirect",
                    strong: true,
                    why: format!(
                        "{url} redirects ({}); a browser page follows no redirect during discovery",
                        hops.join(", ")
                    ),
                };
            }
            if m.browser {
                if let Some(p) = allow_origin_problem(r, &seen.origin) {
                    return Got::Failed {
                        check: cors_check,
                        strong: true,
                        why: format!("{url}: the browser cannot read the answer: {p}"),
                    };
                }
            }
            Got::Ok(r)
        }
        Err(e) => {
            if let Some(to) = e.cross_origin_target() {
                if m.follows_cross_origin {
                    if let Some(Ok(r)) = Url::parse(to)
                        .ok()
                        .and_then(|t| seen.get(Kind::PythonFollow, &t))
                    {
                        notes.push(format!("follows the cross-origin redirect {url} → {to}"));
                        return Got::Ok(r);
                    }
                }
                return Got::Failed {
                    check: redirect_check,
                    strong: true,
                    why: format!(
                        "{url} redirects to another origin ({to}), which this client does not follow"
                    ),
                };
            }
            Got::Failed {
                check: found_check,
                strong: false,
                why: format!("{url}: {e}"),
            }
        }
    }
}

/// Paths (`a.b[0]`) of every null, empty string and empty list in a document.
fn nulls_and_empties(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Null => out.push(format!("{path} is null")),
        Value::String(s) if s.is_empty() => out.push(format!("{path} is an empty string")),
        Value::Array(a) if a.is_empty() => out.push(format!("{path} is an empty list")),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                nulls_and_empties(x, &format!("{path}[{i}]"), out);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                nulls_and_empties(x, &p, out);
            }
        }
        _ => {}
    }
}

fn json_object(r: &Resp) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_slice::<Value>(&r.body) {
        Ok(Value::Object(o)) => Some(o),
        _ => None,
    }
}

const OAUTH_FIELDS: [&str; 4] = [
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "response_types_supported",
];
const OIDC_FIELDS: [&str; 3] = [
    "jwks_uri",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
];

/// Missing or ill-typed RFC 8414 fields.
fn oauth_shape_problems(doc: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for f in OAUTH_FIELDS {
        match doc.get(f) {
            None => out.push(format!("{f} is missing")),
            Some(Value::String(s)) if f != "response_types_supported" => {
                if f != "issuer" && Url::parse(s).is_err() {
                    out.push(format!("{f} is not a URL"));
                }
            }
            Some(Value::Array(a))
                if f == "response_types_supported" && a.iter().all(Value::is_string) => {}
            Some(_) => out.push(format!("{f} has the wrong type")),
        }
    }
    out
}

fn oidc_shape_problems(doc: &serde_json::Map<String, Value>) -> Vec<String> {
    OIDC_FIELDS
        .iter()
        .filter(|f| !doc.contains_key(**f))
        .map(|f| format!("{f} is missing"))
        .collect()
}

fn str_list<'a>(doc: &'a serde_json::Map<String, Value>, key: &str) -> Option<Vec<&'a str>> {
    doc.get(key)?
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
}

/// How `resource` relates to the MCP URL.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ResourceMatch {
    Exact,
    /// Equal after URL normalisation but not byte-for-byte.
    Normalised,
    TrailingSlash,
    /// Same origin, a segment prefix: clients accept it and ask for tokens for it.
    Prefix,
    Other(String),
}

fn resource_match(resource: Option<&Value>, mcp: &Url) -> ResourceMatch {
    let Some(raw) = resource.and_then(Value::as_str) else {
        return ResourceMatch::Other("`resource` is missing or not a string".to_owned());
    };
    let Ok(r) = Url::parse(raw) else {
        return ResourceMatch::Other(format!("`resource` {raw:?} is not a URL"));
    };
    let mut want = mcp.clone();
    want.set_fragment(None);
    if raw == want.as_str()
        || (want.path() == "/" && raw == origin_of(&want) && want.query().is_none())
    {
        return ResourceMatch::Exact;
    }
    if r == want {
        return ResourceMatch::Normalised;
    }
    if r.origin() != want.origin() {
        return ResourceMatch::Other(format!("`resource` {raw} is on another origin than {want}"));
    }
    if r.path() == format!("{}/", want.path()) && r.query() == want.query() {
        return ResourceMatch::TrailingSlash;
    }
    let rp = r.path().trim_end_matches('/');
    let wp = want.path();
    if r.query().is_none() && (rp.is_empty() || wp == rp || wp.starts_with(&format!("{rp}/"))) {
        return ResourceMatch::Prefix;
    }
    ResourceMatch::Other(format!("`resource` {raw} is not the MCP URL {want}"))
}

/// How a host is classified: `(private_or_loopback, loopback)`; unresolved names count as public.
pub fn host_class(
    url: &Url,
    addrs: &std::collections::HashMap<String, Vec<IpAddr>>,
) -> (bool, bool) {
    if crate::addr::is_loopback_url(url) {
        return (true, true);
    }
    let list = url
        .host_str()
        .and_then(|h| addrs.get(h))
        .cloned()
        .unwrap_or_default();
    let list = if list.is_empty() {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
            Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
            _ => Vec::new(),
        }
    } else {
        list
    };
    let private = !list.is_empty() && list.iter().all(crate::addr::is_private);
    let loopback = !list.is_empty() && list.iter().all(|ip| ip.is_loopback());
    (private, loopback)
}

// === the walk ===

struct Walk {
    v: Verdict,
}

impl Walk {
    fn fail(mut self, check: &'static str, reason: String) -> Verdict {
        self.v.failure = Some(Failure {
            step: step_of(check),
            check,
            reason,
            fix: fix_for(check),
        });
        self.v
    }
}

/// The challenge as this family sees it: its hint, or why it has none.
struct HintView {
    hint: Option<Url>,
    /// The check to blame if discovery fails without a hint.
    lost: Option<(&'static str, String)>,
    /// Several different resource_metadata values were offered.
    several: Vec<String>,
}

fn hint_view(m: &Model, r: Option<&Resp>, mcp: &Url) -> HintView {
    let mut out = HintView {
        hint: None,
        lost: None,
        several: Vec::new(),
    };
    let Some(r) = r else { return out };
    let lines = r.all("www-authenticate");
    if lines.is_empty() {
        out.lost = Some((
            "challenge.www_authenticate",
            "the 401 has no WWW-Authenticate header".to_owned(),
        ));
        return out;
    }
    let joined = lines.join(", ");
    let mut all = header::all_resource_metadata(&parse_challenges(&joined));
    all.dedup();
    if all.len() > 1 {
        out.several = all;
    }
    let raw = if m.ts_header {
        match header::ts_resource_metadata(&joined) {
            Some(h) => Some(h),
            None if header::any_resource_metadata(&joined).is_some()
                && !header::ts_bearer_first(&joined) =>
            {
                out.lost = Some((
                    "challenge.bearer_first",
                    format!(
                        "WWW-Authenticate does not start with `Bearer` ({joined:?}), so this client ignores the hint"
                    ),
                ));
                return out;
            }
            None => None,
        }
    } else {
        header::any_resource_metadata(&joined)
    };
    let Some(raw) = raw else {
        out.lost = Some((
            "challenge.resource_metadata",
            "the challenge carries no resource_metadata hint".to_owned(),
        ));
        return out;
    };
    let Ok(u) = Url::parse(&raw) else {
        out.lost = Some((
            "challenge.resource_metadata",
            format!("resource_metadata {raw:?} is not an absolute URL, so this client ignores it"),
        ));
        return out;
    };
    if m.rmcp && u.origin() != mcp.origin() {
        out.lost = Some((
            "challenge.hint_same_origin",
            format!("resource_metadata {u} is on another origin than the MCP URL; rmcp ignores it"),
        ));
        return out;
    }
    out.hint = Some(u);
    out
}

fn walk(seen: &Observed, m: Model, expect_issuer: Option<&str>) -> Verdict {
    let mcp = &seen.mcp;
    let mut w = Walk {
        v: Verdict {
            family: m.family,
            failure: None,
            prm: None,
            issuer: None,
            as_metadata: None,
            notes: Vec::new(),
        },
    };

    // 1. The challenge.
    let post = seen.get(Kind::Post, mcp);
    match post {
        Some(Ok(r)) if r.status == 401 => {}
        Some(Ok(r)) => {
            return w.fail("challenge.status", format!("POST initialize without a token answered {}, not 401: the client never starts OAuth", r.status));
        }
        Some(Err(e)) => return w.fail("challenge.status", format!("POST initialize failed: {e}")),
        None => {
            return w.fail(
                "challenge.status",
                "the MCP URL was not requested".to_owned(),
            );
        }
    }
    let view_source: Option<&Resp> = if m.browser {
        if let Some(p) = seen.get(Kind::McpPreflight, mcp).and_then(|o| {
            preflight_problem(o, &seen.origin, "POST", &super::gather::MCP_BASE_HEADERS)
        }) {
            return w.fail(
                "cors.mcp_preflight",
                format!("the browser's preflight of POST {mcp} fails: {p}"),
            );
        }
        match seen.get(Kind::CorsPost, mcp) {
            Some(Ok(r)) => {
                if let Some(p) = allow_origin_problem(r, &seen.origin) {
                    return w.fail(
                        "cors.challenge_allow_origin",
                        format!("the browser cannot read the 401: {p}"),
                    );
                }
                Some(r)
            }
            Some(Err(e)) => {
                return w.fail(
                    "challenge.status",
                    format!("POST initialize with Origin failed: {e}"),
                );
            }
            None => None,
        }
    } else if m.rmcp {
        match seen.get(Kind::Get, mcp) {
            Some(Ok(r)) if r.status == 401 => Some(r),
            Some(Ok(r)) => {
                w.v.notes.push(format!(
                    "GET on the MCP URL answered {}, so rmcp has no hint",
                    r.status
                ));
                None
            }
            _ => None,
        }
    } else {
        post.and_then(|o| o.as_ref().ok())
    };
    let mut view = hint_view(&m, view_source, mcp);
    if m.rmcp && view_source.is_none() {
        view.lost = Some((
            "challenge.get",
            match seen.get(Kind::Get, mcp) {
                Some(Ok(r)) => format!(
                    "GET on the MCP URL answered {}, not 401, so rmcp gets no hint",
                    r.status
                ),
                Some(Err(e)) => format!("GET on the MCP URL failed ({e}), so rmcp gets no hint"),
                None => "GET on the MCP URL was not requested".to_owned(),
            },
        ));
    }
    if m.browser && view_source.is_some_and(|r| !exposes_www_authenticate(r)) {
        view = HintView {
            hint: None,
            lost: Some(("challenge.expose_headers", "the 401 lacks Access-Control-Expose-Headers: WWW-Authenticate, so the page cannot read the hint".to_owned())),
            several: Vec::new(),
        };
    }

    // 2. Protected-resource metadata.
    let mut candidates: Vec<Url> = Vec::new();
    if let Some(h) = &view.hint {
        candidates.push(h.clone());
    }
    let ts_no_fallback = m.ts_header && view.hint.is_some();
    if !ts_no_fallback {
        for u in prm_urls(mcp) {
            if !m.rmcp && u == prm_suffixed(mcp) && u != prm_root(mcp) {
                continue;
            }
            if !candidates.contains(&u) {
                candidates.push(u);
            }
        }
    }
    let mut strong: Option<(&'static str, String)> = None;
    let mut weak: Vec<String> = Vec::new();
    let mut accepted: Option<(&Resp, serde_json::Map<String, Value>)> = None;
    for (i, url) in candidates.iter().enumerate() {
        let is_hint = i == 0 && view.hint.is_some();
        let mut notes = Vec::new();
        let got = get_doc(seen, &m, url, true, &mut notes);
        w.v.notes.extend(notes);
        let problem: (&'static str, bool, String) = match got {
            Got::Failed { check, strong, why } => (check, strong, why),
            Got::Ok(r) if r.status >= 500 => {
                if m.stops_on_5xx {
                    return w.fail(
                        "prm.server_error",
                        format!(
                            "{url} answered {}: this client stops discovery on a 5xx",
                            r.status
                        ),
                    );
                }
                (
                    "prm.server_error",
                    true,
                    format!("{url} answered {}", r.status),
                )
            }
            Got::Ok(r) if r.status != 200 => {
                let modern_ok =
                    m.rmcp && matches!(seen.get(Kind::Modern, url), Some(Ok(x)) if x.status == 200);
                if modern_ok {
                    (
                        "prm.protocol_version",
                        true,
                        format!(
                            "{url} answered {} to MCP-Protocol-Version: 2024-11-05 (200 to 2025-11-25)",
                            r.status
                        ),
                    )
                } else {
                    ("prm.found", false, format!("{url} answered {}", r.status))
                }
            }
            Got::Ok(r) => match json_object(r) {
                None => {
                    if m.ts_parse {
                        return w.fail(
                            "prm.json",
                            format!("{url} answered 200 with a body that is not a JSON object"),
                        );
                    }
                    (
                        "prm.json",
                        true,
                        format!("{url} answered 200 with a body that is not a JSON object"),
                    )
                }
                Some(doc) => {
                    let mut bad = Vec::new();
                    nulls_and_empties(&Value::Object(doc.clone()), "", &mut bad);
                    if m.strict_null_prm && !bad.is_empty() {
                        let why = format!("{url}: {} (fails schema validation)", bad.join(", "));
                        if m.ts_parse {
                            return w.fail("prm.no_null_or_empty", why);
                        }
                        ("prm.no_null_or_empty", true, why)
                    } else {
                        accepted = Some((r, doc));
                        break;
                    }
                }
            },
        };
        let (check, is_strong, why) = problem;
        if is_hint && ts_no_fallback {
            let check = if view.several.len() > 1 {
                "challenge.single"
            } else if is_strong {
                check
            } else {
                "prm.hint"
            };
            let why = if view.several.len() > 1 {
                format!(
                    "the 401 offers {} different resource_metadata values ({}); this client takes the first, and {why}; it does not fall back to the well-known URLs",
                    view.several.len(),
                    view.several.join(", ")
                )
            } else {
                format!(
                    "{why}; this client does not fall back to the well-known URLs after a failed hint"
                )
            };
            return w.fail(check, why);
        }
        if is_strong && strong.is_none() {
            strong = Some((check, why));
        } else {
            weak.push(why);
        }
    }
    let Some((prm_resp, prm)) = accepted else {
        let (check, why) = strong
            .or(view
                .lost
                .clone()
                .map(|(c, w)| (c, format!("{w}, and no well-known URL serves the metadata"))))
            .unwrap_or((
                "prm.found",
                format!("no protected-resource metadata found ({})", weak.join("; ")),
            ));
        return w.fail(check, why);
    };
    w.v.prm = Some(prm_resp.final_url.to_string());
    match resource_match(prm.get("resource"), mcp) {
        ResourceMatch::Exact | ResourceMatch::Normalised => {}
        ResourceMatch::TrailingSlash if m.trailing_slash_ok => {
            w.v.notes.push(
                "accepts `resource` with a trailing slash; its tokens name that URL as audience"
                    .to_owned(),
            );
        }
        ResourceMatch::TrailingSlash => {
            return w.fail("prm.resource", format!("`resource` has a trailing slash the MCP URL {mcp} lacks; this client rejects the metadata"));
        }
        ResourceMatch::Prefix if m.exact_resource => {
            return w.fail(
                "prm.resource",
                format!(
                    "`resource` {} is only a prefix of {mcp}; this client requires it to be equal",
                    prm["resource"]
                ),
            );
        }
        ResourceMatch::Prefix => {
            return w.fail("prm.resource", format!("`resource` {} is only a prefix of {mcp}: the client accepts it and requests tokens for that audience (wrong audience: a gateway that checks the audience rejects them, one that does not accepts tokens meant for every server under it)", prm["resource"]));
        }
        ResourceMatch::Other(why) => {
            return w.fail(
                "prm.resource",
                format!("{why}; this client rejects the metadata"),
            );
        }
    }
    let Some(issuer_raw) = prm
        .get("authorization_servers")
        .and_then(|a| a.get(0))
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return w.fail(
            "prm.authorization_servers",
            "`authorization_servers` is missing or empty: the client has no authorization server"
                .to_owned(),
        );
    };
    w.v.issuer = Some(issuer_raw.clone());
    if let Some(expected) = expect_issuer {
        if issuer_raw != expected {
            return w.fail(
                "prm.expected_issuer",
                format!("authorization_servers[0] is {issuer_raw}, not the expected {expected}"),
            );
        }
    }
    let Ok(issuer) = Url::parse(&issuer_raw) else {
        return w.fail(
            "prm.authorization_servers",
            format!("authorization_servers[0] {issuer_raw:?} is not a URL"),
        );
    };

    // 3. Authorization-server metadata.
    let mut strong: Option<(&'static str, String)> = None;
    let mut weak: Vec<String> = Vec::new();
    let mut accepted: Option<(&Resp, serde_json::Map<String, Value>)> = None;
    for url in as_metadata_urls(&issuer, trimmed_path(&issuer), m.rmcp) {
        let mut notes = Vec::new();
        let got = get_doc(seen, &m, &url, false, &mut notes);
        w.v.notes.extend(notes);
        let (check, is_strong, why): (&'static str, bool, String) = match got {
            Got::Failed { check, strong, why } => (check, strong, why),
            Got::Ok(r) if r.status >= 500 => {
                if m.stops_on_5xx {
                    return w.fail(
                        "as.server_error",
                        format!(
                            "{url} answered {}: this client stops discovery on a 5xx",
                            r.status
                        ),
                    );
                }
                (
                    "as.server_error",
                    true,
                    format!("{url} answered {}", r.status),
                )
            }
            Got::Ok(r) if r.status != 200 => {
                ("as.found", false, format!("{url} answered {}", r.status))
            }
            Got::Ok(r) => {
                let doc = json_object(r);
                let shape = doc.as_ref().map(oauth_shape_problems);
                match (doc, shape) {
                    (Some(doc), Some(p)) if p.is_empty() => {
                        let oidc = if m.ts_parse && is_oidc_url(&url) {
                            oidc_shape_problems(&doc)
                        } else {
                            Vec::new()
                        };
                        let mut bad = Vec::new();
                        nulls_and_empties(&Value::Object(doc.clone()), "", &mut bad);
                        if !oidc.is_empty() {
                            return w.fail("as.oidc_shape", format!("{url} answered 200 but the OIDC schema fails ({}); this client throws instead of trying the next URL", oidc.join(", ")));
                        }
                        if m.strict_null_as && !bad.is_empty() {
                            return w.fail(
                                "as.no_null_or_empty",
                                format!("{url}: {} (fails schema validation)", bad.join(", ")),
                            );
                        }
                        accepted = Some((r, doc));
                        break;
                    }
                    (_, p) => {
                        let detail = p
                            .map(|p| p.join(", "))
                            .unwrap_or_else(|| "not a JSON object".to_owned());
                        let why = format!(
                            "{url} answered 200 but does not parse as AS metadata ({detail})"
                        );
                        if m.ts_parse {
                            return w.fail(
                                "as.parse",
                                format!("{why}; this client throws instead of trying the next URL"),
                            );
                        }
                        ("as.parse", true, why)
                    }
                }
            }
        };
        if is_strong && strong.is_none() {
            strong = Some((check, why));
        } else {
            weak.push(why);
        }
    }
    let Some((as_resp, doc)) = accepted else {
        let (check, why) = strong.unwrap_or((
            "as.found",
            format!(
                "no authorization-server metadata for {issuer_raw} ({})",
                weak.join("; ")
            ),
        ));
        return w.fail(check, why);
    };
    w.v.as_metadata = Some(as_resp.final_url.to_string());
    let got_issuer = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
    let issuer_ok = match m.issuer {
        IssuerRule::None => true,
        IssuerRule::Exact => got_issuer == issuer_raw,
        IssuerRule::ExpectedSlash => {
            got_issuer == issuer_raw || issuer_raw.strip_suffix('/') == Some(got_issuer)
        }
    };
    if !issuer_ok {
        return w.fail(
            "as.issuer",
            format!("the metadata's issuer {got_issuer:?} is not {issuer_raw:?} byte for byte"),
        );
    }
    if !str_list(&doc, "response_types_supported").is_some_and(|l| l.contains(&"code")) {
        return w.fail("as.response_type_code", "response_types_supported lacks \"code\": the authorization-code flow MCP clients use is not offered".to_owned());
    }
    if m.s256_when_present {
        if let Some(methods) = str_list(&doc, "code_challenge_methods_supported") {
            if !methods.contains(&"S256") {
                return w.fail("as.pkce_s256", format!("code_challenge_methods_supported is {methods:?}, without S256: this client refuses the server"));
            }
        }
    }
    let has_registration = doc
        .get("registration_endpoint")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    let cimd = doc.get("client_id_metadata_document_supported") == Some(&Value::Bool(true));
    if m.needs_registration && !has_registration && !cimd {
        let why = if m.family == Family::Python {
            format!(
                "no registration_endpoint and no client ID metadata documents: Python then POSTs to {}/register (not probed: the probe never registers)",
                origin_of(mcp)
            )
        } else {
            "no registration_endpoint and no client ID metadata documents: this client cannot register".to_owned()
        };
        return w.fail("as.registration", why);
    }
    if m.rmcp {
        let (as_private, _) = host_class(&issuer, &seen.addrs);
        let (_, mcp_loopback) = host_class(mcp, &seen.addrs);
        if as_private && !mcp_loopback {
            return w.fail("as.private_host", format!("the authorization server {issuer} is on a private or loopback host and the MCP URL is not on loopback: rmcp rejects it"));
        }
    }
    if m.browser {
        let endpoint = |key: &str| {
            doc.get(key)
                .and_then(Value::as_str)
                .and_then(|s| Url::parse(s).ok())
        };
        if let Some(reg) = endpoint("registration_endpoint") {
            if let Some(p) = endpoint_cors_problem(seen, &reg, false) {
                return w.fail(
                    "cors.registration",
                    format!("the browser cannot register at {reg}: {p}"),
                );
            }
        }
        if let Some(token) = endpoint("token_endpoint") {
            if let Some(p) = endpoint_cors_problem(seen, &token, true) {
                return w.fail(
                    "cors.token",
                    format!("the browser cannot redeem its code at {token}: {p}"),
                );
            }
        }
    }
    if let Some(p) = invalid_token_problem(seen) {
        return w.fail("challenge.invalid_token", p);
    }
    w.v
}

/// Why a browser page cannot POST to `url` (registration: a JSON POST, always preflighted; token:
/// a form POST, readable when either its preflight passes or its answers carry Allow-Origin).
fn endpoint_cors_problem(seen: &Observed, url: &Url, simple: bool) -> Option<String> {
    let pre = seen.get(Kind::PostPreflight, url)?;
    let p = preflight_problem(pre, &seen.origin, "POST", &["content-type"])?;
    if simple {
        if let Some(Ok(r)) = seen.get(Kind::OriginGet, url) {
            allow_origin_problem(r, &seen.origin)?;
        }
    }
    Some(p)
}

/// Why the MCP endpoint's answer to the fake bearer keeps clients from logging in again.
fn invalid_token_problem(seen: &Observed) -> Option<String> {
    match seen.get(Kind::FakeBearer, &seen.mcp)? {
        Ok(r) if r.status == 401 => None,
        Ok(r) => {
            let body: String = String::from_utf8_lossy(&r.body).chars().take(120).collect();
            Some(format!(
                "POST initialize with `Authorization: {}` answered {}, not 401 ({body:?}): a client whose token expired or was revoked gets that answer and never logs in again",
                super::gather::FAKE_BEARER,
                r.status
            ))
        }
        Err(e) => Some(format!(
            "POST initialize with an invalid bearer failed ({e}): clients with an expired token cannot log in again"
        )),
    }
}

// === the checklist ===

struct Builder {
    checks: Vec<Check>,
}

impl Builder {
    fn add(
        &mut self,
        id: &'static str,
        status: Status,
        summary: impl Into<String>,
        details: Vec<String>,
    ) {
        self.checks.push(Check {
            id,
            step: step_of(id),
            status,
            summary: summary.into(),
            details,
            fails: Vec::new(),
            fix: None,
        });
    }
}

fn pass_warn(ok: bool) -> Status {
    if ok { Status::Pass } else { Status::Warn }
}

/// Runs every family's walk and builds the checklist.
pub fn evaluate(
    seen: &Observed,
    expect_issuer: Option<&str>,
    reachable: bool,
) -> (Vec<Check>, Vec<Verdict>) {
    let mcp = &seen.mcp;
    if !reachable {
        let why = match seen.get(Kind::Post, mcp) {
            Some(Err(e)) => e.to_string(),
            _ => "no answer".to_owned(),
        };
        let check = Check {
            id: "challenge.status",
            step: Step::Challenge,
            status: Status::Fail,
            summary: format!("{mcp} cannot be reached: {why}"),
            details: seen
                .exchanges
                .iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e.kind.describe(),
                        outcome_line(e.kind, &e.url, Some(&e.outcome))
                    )
                })
                .collect(),
            fails: Family::ALL.to_vec(),
            fix: Some(
                "Check the URL, DNS, the port and TLS: the probe could not get any answer from the MCP endpoint.",
            ),
        };
        let verdicts = Family::ALL
            .iter()
            .map(|&family| Verdict {
                family,
                failure: Some(Failure {
                    step: Step::Challenge,
                    check: "challenge.status",
                    reason: format!("the MCP URL cannot be reached: {why}"),
                    fix: "Check the URL, DNS, the port and TLS: the probe could not get any answer from the MCP endpoint.",
                }),
                prm: None,
                issuer: None,
                as_metadata: None,
                notes: Vec::new(),
            })
            .collect();
        return (vec![check], verdicts);
    }
    let verdicts: Vec<Verdict> = Family::ALL
        .iter()
        .map(|&f| walk(seen, model(f), expect_issuer))
        .collect();
    let mut b = Builder { checks: Vec::new() };
    checklist(seen, expect_issuer, &mut b);
    let mut checks = b.checks;
    for v in &verdicts {
        if let Some(f) = &v.failure {
            if !checks.iter().any(|c| c.id == f.check) {
                checks.push(Check {
                    id: f.check,
                    step: f.step,
                    status: Status::Fail,
                    summary: f.reason.clone(),
                    details: Vec::new(),
                    fails: Vec::new(),
                    fix: None,
                });
            }
            let c = checks
                .iter_mut()
                .find(|c| c.id == f.check)
                .expect("just ensured");
            c.fails.push(v.family);
        }
    }
    for c in &mut checks {
        if !c.fails.is_empty() {
            c.status = Status::Fail;
        }
        if matches!(c.status, Status::Fail | Status::Warn) {
            c.fix = Some(fix_for(c.id)).filter(|f| !f.is_empty());
        }
    }
    checks.sort_by_key(|c| c.step);
    (checks, verdicts)
}

fn checklist(seen: &Observed, expect_issuer: Option<&str>, b: &mut Builder) {
    let mcp = &seen.mcp;
    let origin = &seen.origin;

    // 1. The challenge.
    let post = seen.get(Kind::Post, mcp);
    let post_r = post.and_then(|o| o.as_ref().ok());
    match post {
        Some(Ok(r)) => b.add(
            "challenge.status",
            if r.status == 401 {
                Status::Pass
            } else {
                Status::Fail
            },
            format!("POST initialize without a token → {}", r.status),
            Vec::new(),
        ),
        other => b.add(
            "challenge.status",
            Status::Fail,
            format!("POST initialize without a token: {}", status_text(other)),
            Vec::new(),
        ),
    }
    match seen.get(Kind::FakeBearer, mcp) {
        None => b.add(
            "challenge.invalid_token",
            Status::Skip,
            "not requested",
            Vec::new(),
        ),
        Some(o) => {
            let p = invalid_token_problem(seen);
            b.add(
                "challenge.invalid_token",
                if p.is_none() {
                    Status::Pass
                } else {
                    Status::Fail
                },
                p.unwrap_or_else(|| {
                    format!(
                        "POST initialize with `Authorization: {}` → {}",
                        super::gather::FAKE_BEARER,
                        status_text(Some(o))
                    )
                }),
                Vec::new(),
            );
        }
    }
    let get = seen.get(Kind::Get, mcp);
    let get_hint = get
        .and_then(|o| o.as_ref().ok())
        .filter(|r| r.status == 401)
        .and_then(|r| header::any_resource_metadata(&r.all("www-authenticate").join(", ")));
    b.add(
        "challenge.get",
        pass_warn(get_hint.is_some()),
        match (get, &get_hint) {
            (Some(Ok(r)), Some(_)) => format!("GET (as rmcp) → {} with the hint", r.status),
            (Some(Ok(r)), None) => format!(
                "GET (as rmcp) → {} without a hint: rmcp falls back to the well-known URLs",
                r.status
            ),
            (o, _) => format!("GET (as rmcp): {}", status_text(o)),
        },
        Vec::new(),
    );
    let lines = post_r
        .map(|r| r.all("www-authenticate"))
        .unwrap_or_default();
    let joined = lines.join(", ");
    b.add(
        "challenge.www_authenticate",
        pass_warn(!lines.is_empty()),
        format!(
            "{} WWW-Authenticate line{}",
            lines.len(),
            if lines.len() == 1 { "" } else { "s" }
        ),
        lines
            .iter()
            .map(|l| format!("WWW-Authenticate: {l}"))
            .collect(),
    );
    let challenges = parse_challenges(&joined);
    if !lines.is_empty() {
        b.add(
            "challenge.bearer_first",
            pass_warn(header::ts_bearer_first(&joined)),
            if header::ts_bearer_first(&joined) {
                "`Bearer` comes first".to_owned()
            } else {
                format!(
                    "the header starts with {:?}, not `Bearer`: TypeScript clients ignore it",
                    joined.split(' ').next().unwrap_or("")
                )
            },
            Vec::new(),
        );
        let single = lines.len() == 1 && challenges.len() == 1;
        b.add(
            "challenge.single",
            pass_warn(single),
            if single { "exactly one challenge".to_owned() } else { format!("{} challenges on {} line{} (TypeScript joins the lines and the first resource_metadata wins)", challenges.len(), lines.len(), if lines.len() == 1 { "" } else { "s" }) },
            challenges.iter().map(|c| format!("challenge: {}", if c.scheme.is_empty() { "(no scheme)" } else { &c.scheme })).collect(),
        );
    } else {
        b.add(
            "challenge.bearer_first",
            Status::Skip,
            "no WWW-Authenticate header",
            Vec::new(),
        );
        b.add(
            "challenge.single",
            Status::Skip,
            "no WWW-Authenticate header",
            Vec::new(),
        );
    }
    let hints = header::all_resource_metadata(&challenges);
    let first_hint = header::any_resource_metadata(&joined);
    let hint_url = first_hint.as_deref().and_then(|h| Url::parse(h).ok());
    match (&first_hint, &hint_url) {
        (None, _) => b.add(
            "challenge.resource_metadata",
            if lines.is_empty() {
                Status::Skip
            } else {
                Status::Warn
            },
            "no resource_metadata: clients fall back to the well-known URLs",
            Vec::new(),
        ),
        (Some(h), None) => b.add(
            "challenge.resource_metadata",
            Status::Warn,
            format!("resource_metadata {h:?} is not an absolute URL: clients ignore it"),
            Vec::new(),
        ),
        (Some(_), Some(u)) => b.add(
            "challenge.resource_metadata",
            Status::Pass,
            format!("resource_metadata {u}"),
            hints
                .iter()
                .skip(1)
                .map(|h| format!("also resource_metadata {h}"))
                .collect(),
        ),
    }
    match &hint_url {
        Some(u) => b.add(
            "challenge.hint_same_origin",
            pass_warn(u.origin() == mcp.origin()),
            if u.origin() == mcp.origin() {
                "the hint is on the MCP URL's origin".to_owned()
            } else {
                format!(
                    "the hint is on {}, not {}: rmcp ignores it",
                    origin_of(u),
                    origin_of(mcp)
                )
            },
            Vec::new(),
        ),
        None => b.add(
            "challenge.hint_same_origin",
            Status::Skip,
            "no hint",
            Vec::new(),
        ),
    }
    let scope = challenges
        .iter()
        .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
        .and_then(|c| c.param("scope"));
    match scope {
        None => b.add(
            "challenge.scope",
            Status::Info,
            "no scope in the challenge",
            Vec::new(),
        ),
        Some((v, quoted)) => match header::check_scope(v, quoted) {
            Ok(()) => b.add(
                "challenge.scope",
                Status::Pass,
                format!("scope {v:?} is valid RFC 6750 syntax"),
                Vec::new(),
            ),
            Err(e) => b.add(
                "challenge.scope",
                Status::Warn,
                format!("scope {v:?} is not valid RFC 6750 §3 syntax: {e}"),
                Vec::new(),
            ),
        },
    }
    let cors_post = seen.get(Kind::CorsPost, mcp).and_then(|o| o.as_ref().ok());
    match cors_post.or(post_r) {
        Some(r) => {
            let aceh = r.all("access-control-expose-headers");
            b.add(
                "challenge.expose_headers",
                pass_warn(exposes_www_authenticate(r)),
                if exposes_www_authenticate(r) { "Access-Control-Expose-Headers includes WWW-Authenticate".to_owned() } else { "Access-Control-Expose-Headers lacks WWW-Authenticate: browser pages cannot read the hint".to_owned() },
                aceh.iter().map(|v| format!("Access-Control-Expose-Headers: {v}")).collect(),
            );
        }
        None => b.add(
            "challenge.expose_headers",
            Status::Skip,
            "no 401 to look at",
            Vec::new(),
        ),
    }

    // 2. Protected-resource metadata.
    let mut candidates: Vec<(String, Url)> = Vec::new();
    for h in hints.iter().filter_map(|h| Url::parse(h).ok()) {
        if !candidates.iter().any(|(_, u)| *u == h) {
            candidates.push(("hint".to_owned(), h));
        }
    }
    for (label, u) in [
        ("path-inserted", prm_path_inserted(mcp)),
        ("path-suffixed (rmcp)", prm_suffixed(mcp)),
        ("root", prm_root(mcp)),
    ] {
        if !candidates.iter().any(|(_, x)| *x == u) {
            candidates.push((label.to_owned(), u));
        }
    }
    let mut url_lines = Vec::new();
    let mut primary: Option<(Url, &Resp)> = None;
    let mut any_5xx = Vec::new();
    let mut redirects = Vec::new();
    let mut version_diff = Vec::new();
    for (label, u) in &candidates {
        let modern = seen.get(Kind::Modern, u);
        let legacy = seen.get(Kind::Legacy, u);
        url_lines.push(format!("{label}: {u} → {}", status_text(modern)));
        if let Some(Ok(r)) = modern {
            for (from, to) in &r.redirects {
                url_lines.push(format!("  same-origin redirect followed: {from} → {to}"));
            }
            if r.status >= 500 {
                any_5xx.push(format!("{u} → {}", r.status));
            }
            if r.status == 200 && primary.is_none() {
                primary = Some((u.clone(), r));
            }
        }
        if let Some(Err(e)) = modern {
            if let Some(to) = e.cross_origin_target() {
                let followed = Url::parse(to)
                    .ok()
                    .and_then(|t| seen.get(Kind::PythonFollow, &t));
                redirects.push(format!(
                    "{u} → {to} (another origin; not followed, except by Python: {})",
                    status_text(followed)
                ));
            }
        }
        let ms = modern.map(|o| o.as_ref().map(|r| r.status).ok());
        let ls = legacy.map(|o| o.as_ref().map(|r| r.status).ok());
        if ms != ls {
            version_diff.push(format!(
                "{u}: {} with 2025-11-25, {} with 2024-11-05",
                status_text(modern),
                status_text(legacy)
            ));
        }
    }
    match &hint_url {
        Some(h) => {
            let o = seen.get(Kind::Modern, h);
            let ok = matches!(o, Some(Ok(r)) if r.status == 200 && json_object(r).is_some());
            b.add(
                "prm.hint",
                pass_warn(ok),
                format!("hint {h} → {}", status_text(o)),
                Vec::new(),
            );
        }
        None => b.add("prm.hint", Status::Skip, "no hint to fetch", Vec::new()),
    }
    b.add(
        "prm.found",
        if primary.is_some() {
            Status::Pass
        } else {
            Status::Fail
        },
        match &primary {
            Some((u, _)) => format!("metadata at {u}"),
            None => "no URL answers 200 with protected-resource metadata".to_owned(),
        },
        url_lines,
    );
    b.add(
        "prm.server_error",
        pass_warn(any_5xx.is_empty()),
        if any_5xx.is_empty() {
            "no 5xx".to_owned()
        } else {
            format!("5xx from {}", any_5xx.join(", "))
        },
        Vec::new(),
    );
    b.add(
        "prm.redirect",
        pass_warn(redirects.is_empty()),
        if redirects.is_empty() {
            "no cross-origin redirect".to_owned()
        } else {
            "cross-origin redirect (never followed silently)".to_owned()
        },
        redirects,
    );
    b.add(
        "prm.protocol_version",
        pass_warn(version_diff.is_empty()),
        if version_diff.is_empty() {
            "same answers with MCP-Protocol-Version 2024-11-05 and 2025-11-25".to_owned()
        } else {
            "answers differ with MCP-Protocol-Version: 2024-11-05 (rmcp)".to_owned()
        },
        version_diff,
    );
    let mut first_issuer: Option<String> = None;
    match &primary {
        None => {
            for id in [
                "prm.json",
                "prm.content_type",
                "prm.no_null_or_empty",
                "prm.resource",
                "prm.authorization_servers",
            ] {
                b.add(id, Status::Skip, "no metadata document", Vec::new());
            }
        }
        Some((u, r)) => {
            let doc = json_object(r);
            b.add(
                "prm.json",
                if doc.is_some() {
                    Status::Pass
                } else {
                    Status::Fail
                },
                if doc.is_some() {
                    format!("{u} is a JSON object")
                } else {
                    format!("{u} is not a JSON object")
                },
                Vec::new(),
            );
            let ct = r.first("content-type").unwrap_or("(none)").to_owned();
            let ct_ok = ct.split(';').next().is_some_and(|t| {
                let t = t.trim().to_ascii_lowercase();
                t == "application/json" || t.ends_with("+json")
            });
            b.add(
                "prm.content_type",
                pass_warn(ct_ok),
                format!("Content-Type: {ct}"),
                Vec::new(),
            );
            if let Some(doc) = doc {
                let mut bad = Vec::new();
                nulls_and_empties(&Value::Object(doc.clone()), "", &mut bad);
                b.add(
                    "prm.no_null_or_empty",
                    pass_warn(bad.is_empty()),
                    if bad.is_empty() {
                        "no null, empty string or empty list".to_owned()
                    } else {
                        format!(
                            "{}: TypeScript and Python schema validation fails",
                            bad.join(", ")
                        )
                    },
                    Vec::new(),
                );
                let rm = resource_match(doc.get("resource"), mcp);
                let resource = doc
                    .get("resource")
                    .map(Value::to_string)
                    .unwrap_or_default();
                let (status, summary) = match rm {
                    ResourceMatch::Exact => (
                        Status::Pass,
                        format!("resource {resource} is exactly the MCP URL"),
                    ),
                    ResourceMatch::Normalised => (
                        Status::Warn,
                        format!("resource {resource} equals the MCP URL only after normalisation"),
                    ),
                    ResourceMatch::TrailingSlash => (
                        Status::Fail,
                        format!(
                            "resource {resource} has a trailing slash the MCP URL lacks: TypeScript and VS Code reject it"
                        ),
                    ),
                    ResourceMatch::Prefix => (
                        Status::Fail,
                        format!(
                            "resource {resource} is only a prefix of the MCP URL: clients ask for tokens for the wrong audience; VS Code rejects it"
                        ),
                    ),
                    ResourceMatch::Other(why) => (Status::Fail, why),
                };
                b.add("prm.resource", status, summary, Vec::new());
                let servers: Vec<String> = doc
                    .get("authorization_servers")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                first_issuer = servers.first().cloned();
                b.add(
                    "prm.authorization_servers",
                    match servers.len() {
                        0 => Status::Fail,
                        1 => Status::Pass,
                        _ => Status::Warn,
                    },
                    match servers.len() {
                        0 => "no authorization server".to_owned(),
                        1 => format!("one authorization server: {}", servers[0]),
                        n => format!(
                            "{n} authorization servers: clients use only the first, {}",
                            servers[0]
                        ),
                    },
                    Vec::new(),
                );
            } else {
                for id in [
                    "prm.no_null_or_empty",
                    "prm.resource",
                    "prm.authorization_servers",
                ] {
                    b.add(id, Status::Skip, "not a JSON object", Vec::new());
                }
            }
        }
    }
    match (expect_issuer, &first_issuer) {
        (None, _) => b.add(
            "prm.expected_issuer",
            Status::Skip,
            "no --expect-issuer",
            Vec::new(),
        ),
        (Some(e), Some(got)) if e == got => b.add(
            "prm.expected_issuer",
            Status::Pass,
            format!("authorization_servers[0] is the expected {e}"),
            Vec::new(),
        ),
        (Some(e), got) => b.add(
            "prm.expected_issuer",
            Status::Fail,
            format!(
                "authorization_servers[0] is {}, not the expected {e}",
                got.as_deref().unwrap_or("(none)")
            ),
            Vec::new(),
        ),
    }

    // Which scopes clients will request (the challenge's, else the PRM's).
    let prm_scopes: Vec<String> = primary
        .as_ref()
        .and_then(|(_, r)| json_object(r))
        .and_then(|d| {
            d.get("scopes_supported")?.as_array().map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default();
    let challenge_scopes: Vec<String> = scope
        .map(|(v, _)| {
            v.split(' ')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let requested = if challenge_scopes.is_empty() {
        &prm_scopes
    } else {
        &challenge_scopes
    };
    if primary.is_none() {
        b.add(
            "prm.scopes",
            Status::Skip,
            "no metadata document",
            Vec::new(),
        );
    } else if requested.is_empty() {
        b.add(
            "prm.scopes",
            Status::Warn,
            "no scope in the challenge or the PRM: TypeScript clients request no scope at all (strict IdPs such as oidc-provider answer access_denied); Python requests every scope of the AS metadata",
            Vec::new(),
        );
    } else if requested.iter().any(|s| s == "offline_access") {
        b.add(
            "prm.scopes",
            Status::Warn,
            "offline_access is advertised, which MCP servers SHOULD NOT do (2025-11-25): every login asks for it",
            Vec::new(),
        );
    } else {
        b.add(
            "prm.scopes",
            Status::Pass,
            format!("clients request {}", requested.join(" ")),
            Vec::new(),
        );
    }

    // 3. Authorization-server metadata.
    let issuer = first_issuer.as_deref().and_then(|i| Url::parse(i).ok());
    let as_ids = [
        "as.found",
        "as.server_error",
        "as.parse",
        "as.oidc_shape",
        "as.no_null_or_empty",
        "as.issuer",
        "as.response_type_code",
        "as.pkce_s256",
        "as.registration",
        "as.rfc9207",
        "as.entra_resource",
        "as.private_host",
    ];
    let mut used: Option<(Url, &Resp)> = None;
    if let (Some(issuer), Some(issuer_raw)) = (&issuer, &first_issuer) {
        let mut lines = Vec::new();
        let mut five = Vec::new();
        for u in as_metadata_urls(issuer, trimmed_path(issuer), true) {
            let o = seen.get(Kind::Modern, &u);
            let rmcp_only = !trimmed_path(issuer).is_empty()
                && u.path() == "/.well-known/oauth-authorization-server";
            lines.push(format!(
                "{u} → {}{}",
                status_text(o),
                if rmcp_only { " (rmcp only)" } else { "" }
            ));
            if let Some(Ok(r)) = o {
                if r.status >= 500 {
                    five.push(format!("{u} → {}", r.status));
                }
                if r.status == 200 && used.is_none() && !rmcp_only {
                    used = Some((u.clone(), r));
                }
            }
        }
        b.add(
            "as.found",
            if used.is_some() {
                Status::Pass
            } else {
                Status::Fail
            },
            match &used {
                Some((u, _)) => format!("clients use {u} (the first to answer 200, in MCP order)"),
                None => format!("no AS metadata URL for {issuer_raw} answers 200"),
            },
            lines,
        );
        b.add(
            "as.server_error",
            pass_warn(five.is_empty()),
            if five.is_empty() {
                "no 5xx".to_owned()
            } else {
                format!("5xx from {}", five.join(", "))
            },
            Vec::new(),
        );
        match &used {
            None => {
                for id in &as_ids[2..] {
                    b.add(id, Status::Skip, "no AS metadata", Vec::new());
                }
            }
            Some((u, r)) => as_checks(seen, b, issuer, issuer_raw, u, r),
        }
    } else {
        for id in as_ids {
            b.add(
                id,
                Status::Skip,
                "no authorization server to look up",
                Vec::new(),
            );
        }
    }

    // 4. CORS.
    match seen.get(Kind::McpPreflight, mcp) {
        Some(o) => {
            let base = preflight_problem(o, origin, "POST", &super::gather::MCP_BASE_HEADERS);
            let modern = preflight_problem(o, origin, "POST", &super::gather::MCP_2026_HEADERS);
            let (status, summary) = match (base, modern) {
                (Some(p), _) => (Status::Fail, p),
                (None, Some(p)) => (
                    Status::Warn,
                    format!("{p}: 2026-07-28 browser clients, which send them on every POST, fail"),
                ),
                (None, None) => (
                    Status::Pass,
                    format!(
                        "OPTIONS {mcp} allows POST from {origin} with {}",
                        super::gather::MCP_PREFLIGHT_HEADERS
                    ),
                ),
            };
            b.add("cors.mcp_preflight", status, summary, Vec::new());
        }
        None => b.add(
            "cors.mcp_preflight",
            Status::Skip,
            "not requested",
            Vec::new(),
        ),
    }
    match seen.get(Kind::CorsPost, mcp) {
        Some(Ok(r)) => {
            let p = allow_origin_problem(r, origin);
            b.add(
                "cors.challenge_allow_origin",
                if p.is_none() {
                    Status::Pass
                } else {
                    Status::Fail
                },
                p.unwrap_or_else(|| {
                    format!(
                        "the {} carries Access-Control-Allow-Origin for {origin}",
                        r.status
                    )
                }),
                Vec::new(),
            );
        }
        other => b.add(
            "cors.challenge_allow_origin",
            Status::Skip,
            status_text(other),
            Vec::new(),
        ),
    }
    let as_doc = used.as_ref().and_then(|(_, r)| json_object(r));
    for (key, id, simple) in [
        ("registration_endpoint", "cors.registration", false),
        ("token_endpoint", "cors.token", true),
    ] {
        match as_doc
            .as_ref()
            .and_then(|d| d.get(key)?.as_str().map(str::to_owned))
            .and_then(|s| Url::parse(&s).ok())
        {
            Some(url) => match endpoint_cors_problem(seen, &url, simple) {
                None if seen.get(Kind::PostPreflight, &url).is_none() => {
                    b.add(id, Status::Skip, format!("{url} not requested"), Vec::new())
                }
                None => b.add(
                    id,
                    Status::Pass,
                    format!("{url} allows a POST from {origin}"),
                    Vec::new(),
                ),
                Some(p) => b.add(
                    id,
                    Status::Fail,
                    format!("{url}: {p} (only the IdP can fix it)"),
                    Vec::new(),
                ),
            },
            None => b.add(id, Status::Skip, format!("no {key}"), Vec::new()),
        }
    }
    let redirected: Vec<String> = seen
        .exchanges
        .iter()
        .filter(|e| matches!(e.kind, Kind::CorsGet | Kind::CorsSimpleGet))
        .filter_map(|e| e.outcome.as_ref().ok())
        .flat_map(|r| r.redirects.iter().map(|(f, t)| format!("{f} → {t}")))
        .collect();
    b.add(
        "cors.redirect",
        pass_warn(redirected.is_empty()),
        if redirected.is_empty() {
            "no redirect during discovery".to_owned()
        } else {
            "a discovery document is behind a redirect, which a browser page does not follow"
                .to_owned()
        },
        redirected,
    );
    let prm_url = primary.as_ref().map(|(u, _)| u.clone());
    let as_url = used.as_ref().map(|(u, _)| u.clone());
    for (url, pre_id, acao_id) in [
        (prm_url, "cors.prm_preflight", "cors.prm_allow_origin"),
        (as_url, "cors.as_preflight", "cors.as_allow_origin"),
    ] {
        let Some(url) = url else {
            b.add(pre_id, Status::Skip, "no document", Vec::new());
            b.add(acao_id, Status::Skip, "no document", Vec::new());
            continue;
        };
        let pre = seen.get(Kind::Preflight, &url);
        let p = pre.and_then(|o| preflight_problem(o, origin, "GET", &["mcp-protocol-version"]));
        b.add(
            pre_id,
            pass_warn(p.is_none()),
            match &p {
                None => format!("OPTIONS {url} allows mcp-protocol-version from {origin}"),
                Some(p) => {
                    format!("OPTIONS {url}: {p} (TypeScript retries without MCP-Protocol-Version)")
                }
            },
            Vec::new(),
        );
        let real = if p.is_none() {
            seen.get(Kind::CorsGet, &url)
        } else {
            seen.get(Kind::CorsSimpleGet, &url)
                .or_else(|| seen.get(Kind::CorsGet, &url))
        };
        match real {
            Some(Ok(r)) => {
                let a = allow_origin_problem(r, origin);
                b.add(
                    acao_id,
                    if a.is_none() {
                        Status::Pass
                    } else {
                        Status::Fail
                    },
                    a.unwrap_or_else(|| {
                        format!("GET {url} carries Access-Control-Allow-Origin for {origin}")
                    }),
                    Vec::new(),
                );
            }
            other => b.add(
                acao_id,
                Status::Fail,
                format!("GET {url} with Origin: {}", status_text(other)),
                Vec::new(),
            ),
        }
    }
}

fn as_checks(
    seen: &Observed,
    b: &mut Builder,
    issuer: &Url,
    issuer_raw: &str,
    url: &Url,
    r: &Resp,
) {
    let Some(doc) = json_object(r) else {
        b.add(
            "as.parse",
            Status::Fail,
            format!("{url} is not a JSON object"),
            Vec::new(),
        );
        for id in [
            "as.oidc_shape",
            "as.no_null_or_empty",
            "as.issuer",
            "as.response_type_code",
            "as.pkce_s256",
            "as.registration",
            "as.rfc9207",
            "as.entra_resource",
            "as.private_host",
        ] {
            b.add(id, Status::Skip, "not a JSON object", Vec::new());
        }
        return;
    };
    let oauth = oauth_shape_problems(&doc);
    let oidc = oidc_shape_problems(&doc);
    b.add(
        "as.parse",
        if oauth.is_empty() {
            Status::Pass
        } else {
            Status::Fail
        },
        if oauth.is_empty() {
            "valid RFC 8414 (OAuth) shape".to_owned()
        } else {
            format!("not valid RFC 8414 metadata: {}", oauth.join(", "))
        },
        Vec::new(),
    );
    let oidc_url = is_oidc_url(url);
    b.add(
        "as.oidc_shape",
        if oidc.is_empty() {
            Status::Pass
        } else if oidc_url {
            Status::Fail
        } else {
            Status::Info
        },
        match (oidc.is_empty(), oidc_url) {
            (true, _) => "valid under the OIDC shape too".to_owned(),
            (false, true) => format!(
                "served at an OIDC URL but not a complete OIDC document ({}): TypeScript throws",
                oidc.join(", ")
            ),
            (false, false) => format!(
                "not an OIDC document ({}); fine at an oauth-authorization-server URL",
                oidc.join(", ")
            ),
        },
        Vec::new(),
    );
    let mut bad = Vec::new();
    nulls_and_empties(&Value::Object(doc.clone()), "", &mut bad);
    b.add(
        "as.no_null_or_empty",
        pass_warn(bad.is_empty()),
        if bad.is_empty() {
            "no null, empty string or empty list".to_owned()
        } else {
            format!("{}: TypeScript schema validation fails", bad.join(", "))
        },
        Vec::new(),
    );
    let got = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
    b.add(
        "as.issuer",
        if got == issuer_raw {
            Status::Pass
        } else {
            Status::Fail
        },
        if got == issuer_raw {
            format!("issuer {got} is authorization_servers[0] byte for byte")
        } else {
            format!("issuer {got:?} differs from authorization_servers[0] {issuer_raw:?}")
        },
        Vec::new(),
    );
    let types = str_list(&doc, "response_types_supported").unwrap_or_default();
    b.add(
        "as.response_type_code",
        if types.contains(&"code") {
            Status::Pass
        } else {
            Status::Fail
        },
        format!("response_types_supported {types:?}"),
        Vec::new(),
    );
    match str_list(&doc, "code_challenge_methods_supported") {
        None => b.add("as.pkce_s256", Status::Warn, "code_challenge_methods_supported is absent: the 2025-11-25 spec and claude.ai refuse the server (TypeScript, rmcp and Python proceed)", Vec::new()),
        Some(m) if m.contains(&"S256") => b.add("as.pkce_s256", Status::Pass, format!("code_challenge_methods_supported {m:?}"), Vec::new()),
        Some(m) => b.add("as.pkce_s256", Status::Fail, format!("code_challenge_methods_supported {m:?} lacks S256"), Vec::new()),
    }
    let reg = doc
        .get("registration_endpoint")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let cimd = doc.get("client_id_metadata_document_supported") == Some(&Value::Bool(true));
    b.add(
        "as.registration",
        if reg.is_some() || cimd {
            Status::Pass
        } else {
            Status::Fail
        },
        match (reg, cimd) {
            (Some(r), _) => format!("registration_endpoint {r}"),
            (None, true) => "client ID metadata documents supported".to_owned(),
            (None, false) => {
                "no registration_endpoint and no client ID metadata documents".to_owned()
            }
        },
        Vec::new(),
    );
    let advertised =
        doc.get("authorization_response_iss_parameter_supported") == Some(&Value::Bool(true));
    let auth_ep = doc
        .get("authorization_endpoint")
        .and_then(Value::as_str)
        .and_then(|s| Url::parse(s).ok());
    let under_issuer = auth_ep.as_ref().is_some_and(|a| {
        a.origin() == issuer.origin() && a.path().starts_with(trimmed_path(issuer))
    });
    b.add(
        "as.rfc9207",
        if advertised { Status::Pass } else if under_issuer { Status::Info } else { Status::Warn },
        if advertised {
            "authorization_response_iss_parameter_supported: true".to_owned()
        } else if under_issuer {
            "RFC 9207 `iss` not advertised (clients still check `iss` when the response carries it)".to_owned()
        } else {
            format!("the authorization endpoint {} is outside the issuer {issuer_raw} (a facade?): if that server sends RFC 9207 `iss` on its redirect, TS v2, Python and rmcp reject the login", auth_ep.map_or_else(String::new, |a| a.to_string()))
        },
        Vec::new(),
    );
    let entra = crate::upstream::discover::is_entra(&doc);
    b.add(
        "as.entra_resource",
        if entra { Status::Warn } else { Status::Pass },
        if entra {
            "Entra ID: it rejects the RFC 8707 resource (the MCP URL) with AADSTS9010010 unless the app registration's Application ID URI is that URL".to_owned()
        } else {
            "not Entra ID".to_owned()
        },
        Vec::new(),
    );
    let (as_private, as_loopback) = host_class(issuer, &seen.addrs);
    let (_, mcp_loopback) = host_class(&seen.mcp, &seen.addrs);
    b.add(
        "as.private_host",
        match (as_private, mcp_loopback) {
            (false, _) => Status::Pass,
            (true, true) => Status::Info,
            (true, false) => Status::Fail,
        },
        match (as_private, mcp_loopback) {
            (false, _) => format!("{} is a public host", issuer.host_str().unwrap_or("")),
            (true, true) => format!("{} is {} and so is the MCP host: a local setup (hosted connectors refuse private addresses)", issuer.host_str().unwrap_or(""), if as_loopback { "loopback" } else { "private" }),
            (true, false) => format!("{} is a private or loopback host and the MCP host is not loopback: rmcp and hosted connectors refuse it", issuer.host_str().unwrap_or("")),
        },
        Vec::new(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn resource_matching() {
        let m = u("https://gw/mcp/x/mcp");
        let r = |s: &str| resource_match(Some(&Value::String(s.to_owned())), &m);
        assert_eq!(r("https://gw/mcp/x/mcp"), ResourceMatch::Exact);
        assert_eq!(r("HTTPS://GW:443/mcp/x/mcp"), ResourceMatch::Normalised);
        assert_eq!(r("https://gw/mcp/x/mcp/"), ResourceMatch::TrailingSlash);
        assert_eq!(r("https://gw/mcp"), ResourceMatch::Prefix);
        assert_eq!(r("https://gw"), ResourceMatch::Prefix);
        assert!(matches!(r("https://gw/mc"), ResourceMatch::Other(_)));
        assert!(matches!(
            r("https://other/mcp/x/mcp"),
            ResourceMatch::Other(_)
        ));
        let root = u("https://gw/");
        assert_eq!(
            resource_match(Some(&Value::String("https://gw".into())), &root),
            ResourceMatch::Exact
        );
    }

    #[test]
    fn private_hosts() {
        let none = HashMap::new();
        assert_eq!(host_class(&u("http://localhost/x"), &none), (true, true));
        assert_eq!(host_class(&u("https://10.1.2.3/x"), &none), (true, false));
        assert_eq!(host_class(&u("https://[fd00::1]/x"), &none), (true, false));
        assert_eq!(host_class(&u("https://8.8.8.8/x"), &none), (false, false));
        let mut addrs = HashMap::new();
        addrs.insert("sso.corp".to_owned(), vec!["192.168.1.5".parse().unwrap()]);
        assert_eq!(host_class(&u("https://sso.corp/x"), &addrs), (true, false));
        assert_eq!(
            host_class(&u("https://unknown.example/x"), &addrs),
            (false, false)
        );
    }

    /// rmcp rejects an authorization server on a private host when the MCP host is not loopback;
    /// built from hand-made observations since a test cannot put an MCP URL on a public host.
    #[test]
    fn private_authorization_server_fails_rmcp_only() {
        use super::super::gather::Resp;
        let mcp = u("https://gw.example.com/mcp/x/mcp");
        let mut seen = Observed::new(mcp.clone(), "http://localhost:6274".to_owned());
        seen.addrs.insert(
            "gw.example.com".to_owned(),
            vec!["203.0.113.7".parse().unwrap()],
        );
        let resp = |url: &Url, status: u16, headers: &[(&str, &str)], body: &str| -> Outcome {
            Ok(Resp {
                status,
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                body: bytes::Bytes::from(body.to_owned()),
                final_url: url.clone(),
                redirects: Vec::new(),
            })
        };
        let cors = [
            ("access-control-allow-origin", "*"),
            ("access-control-allow-headers", "*, authorization"),
            ("access-control-expose-headers", "WWW-Authenticate"),
            ("content-type", "application/json"),
        ];
        let prm_url = u("https://gw.example.com/.well-known/oauth-protected-resource/mcp/x/mcp");
        let challenge = format!("Bearer resource_metadata=\"{prm_url}\"");
        let mut h401: Vec<(&str, &str)> = cors.to_vec();
        h401.push(("www-authenticate", &challenge));
        for k in [Kind::Post, Kind::Get, Kind::CorsPost] {
            seen.insert(k, &mcp, resp(&mcp, 401, &h401, "{}"), Default::default());
        }
        seen.insert(
            Kind::McpPreflight,
            &mcp,
            resp(&mcp, 204, &cors, ""),
            Default::default(),
        );
        let prm = r#"{"resource":"https://gw.example.com/mcp/x/mcp","authorization_servers":["https://10.0.0.5/realms/eng"]}"#;
        for k in [Kind::Modern, Kind::Legacy, Kind::CorsGet] {
            seen.insert(
                k,
                &prm_url,
                resp(&prm_url, 200, &cors, prm),
                Default::default(),
            );
        }
        seen.insert(
            Kind::Preflight,
            &prm_url,
            resp(&prm_url, 204, &cors, ""),
            Default::default(),
        );
        let as_url = u("https://10.0.0.5/.well-known/oauth-authorization-server/realms/eng");
        let as_doc = r#"{"issuer":"https://10.0.0.5/realms/eng","authorization_endpoint":"https://10.0.0.5/realms/eng/auth","token_endpoint":"https://10.0.0.5/realms/eng/token","registration_endpoint":"https://10.0.0.5/realms/eng/reg","response_types_supported":["code"],"code_challenge_methods_supported":["S256"]}"#;
        for k in [Kind::Modern, Kind::CorsGet] {
            seen.insert(
                k,
                &as_url,
                resp(&as_url, 200, &cors, as_doc),
                Default::default(),
            );
        }
        seen.insert(
            Kind::Preflight,
            &as_url,
            resp(&as_url, 204, &cors, ""),
            Default::default(),
        );
        let (checks, verdicts) = evaluate(&seen, None, true);
        for v in &verdicts {
            let got = v.failure.as_ref().map(|f| f.check);
            let want = if v.family == Family::Rmcp {
                Some("as.private_host")
            } else {
                None
            };
            assert_eq!(got, want, "{:?}: {:?}", v.family, v.failure);
        }
        let c = checks.iter().find(|c| c.id == "as.private_host").unwrap();
        assert_eq!(c.status, Status::Fail);
        assert_eq!(c.fails, vec![Family::Rmcp]);
    }
}
