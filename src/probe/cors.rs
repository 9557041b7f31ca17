//! Step 4, CORS (browser clients): what a browser page needs to read each discovery answer, the
//! browser's walk through the preflights, and the CORS checks (`cors.*`). The page's origin is
//! `--origin`; the requests are the `Cors*`, `*Preflight` and `OriginGet` kinds of `gather`.

use serde_json::{Map, Value};
use url::Url;

use super::check::{Builder, CheckId, Status, Stop, pass_warn};
use super::doc::{json_object, status_text};
use super::gather::{
    Kind, MCP_2026_HEADERS, MCP_BASE_HEADERS, MCP_PREFLIGHT_HEADERS, Observed, Outcome, Resp,
};
use super::header;

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

/// Whether the page may read `WWW-Authenticate` of this answer.
pub(super) fn exposes_www_authenticate(r: &Resp) -> bool {
    header::list(&r.all("access-control-expose-headers"))
        .iter()
        .any(|h| h == "www-authenticate" || h == "*")
}

/// The document GET the browser's answer comes from: the real one when its preflight passed, else
/// the retry without custom headers (or the real one when no retry was made).
pub(super) fn browser_get<'a>(
    seen: &'a Observed,
    url: &Url,
    preflight_ok: bool,
) -> Option<&'a Outcome> {
    if preflight_ok {
        seen.get(Kind::CorsGet, url)
    } else {
        seen.get(Kind::CorsSimpleGet, url)
            .or_else(|| seen.get(Kind::CorsGet, url))
    }
}

/// The browser's way to the 401: the preflight of its POST, then the POST with `Origin`, whose
/// answer it reads the challenge from (`None` when it was not requested).
pub(super) fn browser_challenge(seen: &Observed) -> Result<Option<&Resp>, Stop> {
    let mcp = &seen.mcp;
    if let Some(p) = seen
        .get(Kind::McpPreflight, mcp)
        .and_then(|o| preflight_problem(o, &seen.origin, "POST", &MCP_BASE_HEADERS))
    {
        return Err((
            CheckId::CorsMcpPreflight,
            format!("the browser's preflight of POST {mcp} fails: {p}"),
        ));
    }
    match seen.get(Kind::CorsPost, mcp) {
        Some(Ok(r)) => {
            if let Some(p) = allow_origin_problem(r, &seen.origin) {
                return Err((
                    CheckId::CorsChallengeAllowOrigin,
                    format!("the browser cannot read the 401: {p}"),
                ));
            }
            Ok(Some(r))
        }
        Some(Err(e)) => Err((
            CheckId::ChallengeStatus,
            format!("POST initialize with Origin failed: {e}"),
        )),
        None => Ok(None),
    }
}

/// The browser's last step: it registers and redeems its code itself, so the IdP's registration
/// and token endpoints of the AS metadata `doc` need CORS.
pub(super) fn browser_endpoints(seen: &Observed, doc: &Map<String, Value>) -> Result<(), Stop> {
    let endpoint = |key: &str| {
        doc.get(key)
            .and_then(Value::as_str)
            .and_then(|s| Url::parse(s).ok())
    };
    if let Some(reg) = endpoint("registration_endpoint") {
        if let Some(p) = endpoint_cors_problem(seen, &reg, false) {
            return Err((
                CheckId::CorsRegistration,
                format!("the browser cannot register at {reg}: {p}"),
            ));
        }
    }
    if let Some(token) = endpoint("token_endpoint") {
        if let Some(p) = endpoint_cors_problem(seen, &token, true) {
            return Err((
                CheckId::CorsToken,
                format!("the browser cannot redeem its code at {token}: {p}"),
            ));
        }
    }
    Ok(())
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

/// The CORS checks. `prm` is the PRM URL the checklist found, `as_metadata` the AS metadata URL
/// and its answer.
pub(super) fn checklist(
    seen: &Observed,
    prm: Option<&Url>,
    as_metadata: Option<(&Url, &Resp)>,
    b: &mut Builder,
) {
    mcp_checks(seen, b);
    let as_doc = as_metadata.and_then(|(_, r)| json_object(r));
    for (key, id, simple) in [
        ("registration_endpoint", CheckId::CorsRegistration, false),
        ("token_endpoint", CheckId::CorsToken, true),
    ] {
        match as_doc
            .as_ref()
            .and_then(|d| d.get(key)?.as_str().map(str::to_owned))
            .and_then(|s| Url::parse(&s).ok())
        {
            Some(url) => match endpoint_cors_problem(seen, &url, simple) {
                None if seen.get(Kind::PostPreflight, &url).is_none() => {
                    b.skip(id, format!("{url} not requested"))
                }
                None => b.add(
                    id,
                    Status::Pass,
                    format!("{url} allows a POST from {}", seen.origin),
                    Vec::new(),
                ),
                Some(p) => b.add(
                    id,
                    Status::Fail,
                    format!("{url}: {p} (only the IdP can fix it)"),
                    Vec::new(),
                ),
            },
            None => b.skip(id, format!("no {key}")),
        }
    }
    let redirected: Vec<String> = seen
        .exchanges
        .iter()
        .filter(|e| matches!(e.kind, Kind::CorsGet | Kind::CorsSimpleGet))
        .filter_map(|e| e.outcome.as_ref().ok())
        .flat_map(|r| r.redirects.iter().map(|(f, t)| format!("{f} → {t}")))
        .collect();
    b.warn_if_listed(
        CheckId::CorsRedirect,
        redirected,
        "no redirect during discovery",
        "a discovery document is behind a redirect, which a browser page does not follow",
    );
    let documents = [
        (
            prm.cloned(),
            CheckId::CorsPrmPreflight,
            CheckId::CorsPrmAllowOrigin,
        ),
        (
            as_metadata.map(|(u, _)| u.clone()),
            CheckId::CorsAsPreflight,
            CheckId::CorsAsAllowOrigin,
        ),
    ];
    for (url, pre_id, acao_id) in documents {
        let Some(url) = url else {
            b.skip(pre_id, "no document");
            b.skip(acao_id, "no document");
            continue;
        };
        document_checks(seen, &url, pre_id, acao_id, b);
    }
}

/// `cors.mcp_preflight` and `cors.challenge_allow_origin`: the MCP endpoint's own CORS.
fn mcp_checks(seen: &Observed, b: &mut Builder) {
    let (mcp, origin) = (&seen.mcp, &seen.origin);
    match seen.get(Kind::McpPreflight, mcp) {
        Some(o) => {
            let base = preflight_problem(o, origin, "POST", &MCP_BASE_HEADERS);
            let modern = preflight_problem(o, origin, "POST", &MCP_2026_HEADERS);
            let (status, summary) = match (base, modern) {
                (Some(p), _) => (Status::Fail, p),
                (None, Some(p)) => (
                    Status::Warn,
                    format!("{p}: 2026-07-28 browser clients, which send them on every POST, fail"),
                ),
                (None, None) => (
                    Status::Pass,
                    format!("OPTIONS {mcp} allows POST from {origin} with {MCP_PREFLIGHT_HEADERS}"),
                ),
            };
            b.add(CheckId::CorsMcpPreflight, status, summary, Vec::new());
        }
        None => b.skip(CheckId::CorsMcpPreflight, "not requested"),
    }
    match seen.get(Kind::CorsPost, mcp) {
        Some(Ok(r)) => {
            b.pass_unless(
                CheckId::CorsChallengeAllowOrigin,
                allow_origin_problem(r, origin),
                || {
                    format!(
                        "the {} carries Access-Control-Allow-Origin for {origin}",
                        r.status
                    )
                },
            );
        }
        other => b.skip(CheckId::CorsChallengeAllowOrigin, status_text(other)),
    }
}

/// A discovery document's preflight and `Access-Control-Allow-Origin`.
fn document_checks(seen: &Observed, url: &Url, pre_id: CheckId, acao_id: CheckId, b: &mut Builder) {
    let origin = &seen.origin;
    let pre = seen.get(Kind::Preflight, url);
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
    match browser_get(seen, url, p.is_none()) {
        Some(Ok(r)) => {
            b.pass_unless(acao_id, allow_origin_problem(r, origin), || {
                format!("GET {url} carries Access-Control-Allow-Origin for {origin}")
            });
        }
        other => b.add(
            acao_id,
            Status::Fail,
            format!("GET {url} with Origin: {}", status_text(other)),
            Vec::new(),
        ),
    }
}
