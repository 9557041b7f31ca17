//! Step 2, protected-resource metadata (RFC 9728): which URLs each family tries (the hint, then
//! the well-known forms), which document it accepts, and what it reads from it (`resource`,
//! `authorization_servers`). The walk's second step ([`walk`]) and the `prm.*` checks
//! ([`checklist`]).

use serde_json::{Map, Value};
use url::Url;

use super::challenge::{self, HintView};
use super::check::{Builder, CheckId, Status, Stop, Verdict, pass_fail, pass_warn};
use super::doc::{
    DocRules, Document, Missed, Problem, Tried, answer, bad_values, first_accepted, json_object,
    null_check, server_error_check, status_text,
};
use super::eval::Model;
use super::gather::{Kind, Observed, Resp};
use super::origin_of;
use crate::well_known::{prm_path_inserted, prm_root, prm_suffixed, prm_urls};

/// What the PRM blames.
const PRM: DocRules = DocRules {
    redirect: CheckId::PrmRedirect,
    allow_origin: CheckId::CorsPrmAllowOrigin,
    found: CheckId::PrmFound,
    server_error: CheckId::PrmServerError,
    rmcp_legacy: true,
};

// === the walk ===

/// The second step of family `m`: the metadata it accepts, its `resource` and its first
/// authorization server; returns that issuer (as written, and parsed).
pub(super) fn walk(
    seen: &Observed,
    m: &Model,
    view: &HintView,
    expect_issuer: Option<&str>,
    v: &mut Verdict,
) -> Result<(String, Url), Stop> {
    let mcp = &seen.mcp;
    let mut candidates: Vec<Url> = Vec::new();
    if let Some(h) = &view.hint {
        candidates.push(h.clone());
    }
    // TypeScript does not fall back to the well-known URLs after a hint.
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
    let notes = &mut v.notes;
    let found = first_accepted(&candidates, |i, url| {
        let tried = match answer(seen, m, &PRM, url, notes)? {
            Tried::Accepted(r) => judge(seen, m, url, r)?,
            Tried::Problem(p) => Tried::Problem(p),
        };
        match tried {
            Tried::Problem(p) if i == 0 && ts_no_fallback => Err(hint_failed(view, p)),
            tried => Ok(tried),
        }
    });
    let (prm_resp, prm) = match found {
        Ok(found) => found,
        Err(Missed::Stop(stop)) => return Err(stop),
        Err(Missed::Nothing { strong, weak }) => {
            return Err(strong
                .or(view
                    .lost
                    .clone()
                    .map(|(c, w)| (c, format!("{w}, and no well-known URL serves the metadata"))))
                .unwrap_or((
                    CheckId::PrmFound,
                    format!("no protected-resource metadata found ({})", weak.join("; ")),
                )));
        }
    };
    v.prm = Some(prm_resp.final_url.to_string());
    walk_resource(m, &prm, mcp, &mut v.notes)?;
    let Some(issuer_raw) = prm
        .get("authorization_servers")
        .and_then(|a| a.get(0))
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Err((
            CheckId::PrmAuthorizationServers,
            "`authorization_servers` is missing or empty: the client has no authorization server"
                .to_owned(),
        ));
    };
    v.issuer = Some(issuer_raw.clone());
    if let Some(expected) = expect_issuer {
        if issuer_raw != expected {
            return Err((
                CheckId::PrmExpectedIssuer,
                format!("authorization_servers[0] is {issuer_raw}, not the expected {expected}"),
            ));
        }
    }
    let Ok(issuer) = Url::parse(&issuer_raw) else {
        return Err((
            CheckId::PrmAuthorizationServers,
            format!("authorization_servers[0] {issuer_raw:?} is not a URL"),
        ));
    };
    Ok((issuer_raw, issuer))
}

/// Whether family `m` accepts the answer `r` (not a 5xx) of `url` as the metadata.
fn judge<'a>(
    seen: &Observed,
    m: &Model,
    url: &Url,
    r: &'a Resp,
) -> Result<Tried<Document<'a>>, Stop> {
    let problem = |check, strong, why| Ok(Tried::Problem(Problem { check, strong, why }));
    if r.status != 200 {
        let modern_ok =
            m.rmcp && matches!(seen.get(Kind::Modern, url), Some(Ok(x)) if x.status == 200);
        if modern_ok {
            return problem(
                CheckId::PrmProtocolVersion,
                true,
                format!(
                    "{url} answered {} to MCP-Protocol-Version: 2024-11-05 (200 to 2025-11-25)",
                    r.status
                ),
            );
        }
        return problem(
            CheckId::PrmFound,
            false,
            format!("{url} answered {}", r.status),
        );
    }
    let Some(doc) = json_object(r) else {
        let why = format!("{url} answered 200 with a body that is not a JSON object");
        if m.ts_parse {
            return Err((CheckId::PrmJson, why));
        }
        return problem(CheckId::PrmJson, true, why);
    };
    let bad = bad_values(&doc);
    if m.strict_null_prm && !bad.is_empty() {
        let why = format!("{url}: {} (fails schema validation)", bad.join(", "));
        if m.ts_parse {
            return Err((CheckId::PrmNoNullOrEmpty, why));
        }
        return problem(CheckId::PrmNoNullOrEmpty, true, why);
    }
    Ok(Tried::Accepted((r, doc)))
}

/// Where a TypeScript family stops when its hint fails: it does not fall back.
fn hint_failed(view: &HintView, p: Problem) -> Stop {
    let check = if view.several.len() > 1 {
        CheckId::ChallengeSingle
    } else if p.strong {
        p.check
    } else {
        CheckId::PrmHint
    };
    let why = p.why;
    let why = if view.several.len() > 1 {
        format!(
            "the 401 offers {} different resource_metadata values ({}); this client takes the first, and {why}; it does not fall back to the well-known URLs",
            view.several.len(),
            view.several.join(", ")
        )
    } else {
        format!("{why}; this client does not fall back to the well-known URLs after a failed hint")
    };
    (check, why)
}

/// Whether family `m` accepts the metadata's `resource` for the MCP URL.
fn walk_resource(
    m: &Model,
    prm: &Map<String, Value>,
    mcp: &Url,
    notes: &mut Vec<String>,
) -> Result<(), Stop> {
    let stop = |why| Err((CheckId::PrmResource, why));
    match resource_match(prm.get("resource"), mcp) {
        ResourceMatch::Exact | ResourceMatch::Normalised => Ok(()),
        ResourceMatch::TrailingSlash if m.trailing_slash_ok => {
            notes.push(
                "accepts `resource` with a trailing slash; its tokens name that URL as audience"
                    .to_owned(),
            );
            Ok(())
        }
        ResourceMatch::TrailingSlash => stop(format!(
            "`resource` has a trailing slash the MCP URL {mcp} lacks; this client rejects the metadata"
        )),
        ResourceMatch::Prefix if m.exact_resource => stop(format!(
            "`resource` {} is only a prefix of {mcp}; this client requires it to be equal",
            prm["resource"]
        )),
        ResourceMatch::Prefix => stop(format!(
            "`resource` {} is only a prefix of {mcp}: the client accepts it and requests tokens for that audience (wrong audience: a gateway that checks the audience rejects them, one that does not accepts tokens meant for every server under it)",
            prm["resource"]
        )),
        ResourceMatch::Other(why) => stop(format!("{why}; this client rejects the metadata")),
    }
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

// === the checklist ===

/// What the later steps' checks need of the PRM.
pub(super) struct Found<'a> {
    /// The first URL that answers 200, and its answer.
    pub primary: Option<(Url, &'a Resp)>,
    /// Its `authorization_servers[0]`.
    pub first_issuer: Option<String>,
}

/// The `prm.*` checks.
pub(super) fn checklist<'a>(
    seen: &'a Observed,
    expect_issuer: Option<&str>,
    ch: &challenge::Seen,
    b: &mut Builder,
) -> Found<'a> {
    let primary = url_checks(seen, ch, b);
    let first_issuer = match &primary {
        None => {
            for id in [
                CheckId::PrmJson,
                CheckId::PrmContentType,
                CheckId::PrmNoNullOrEmpty,
                CheckId::PrmResource,
                CheckId::PrmAuthorizationServers,
            ] {
                b.skip(id, "no metadata document");
            }
            None
        }
        Some((u, r)) => document_checks(seen, u, r, b),
    };
    match (expect_issuer, &first_issuer) {
        (None, _) => b.skip(CheckId::PrmExpectedIssuer, "no --expect-issuer"),
        (Some(e), Some(got)) if e == got => b.add(
            CheckId::PrmExpectedIssuer,
            Status::Pass,
            format!("authorization_servers[0] is the expected {e}"),
            Vec::new(),
        ),
        (Some(e), got) => b.add(
            CheckId::PrmExpectedIssuer,
            Status::Fail,
            format!(
                "authorization_servers[0] is {}, not the expected {e}",
                got.as_deref().unwrap_or("(none)")
            ),
            Vec::new(),
        ),
    }
    scopes_check(primary.as_ref().map(|(_, r)| *r), ch, b);
    Found {
        primary,
        first_issuer,
    }
}

/// `prm.hint`, `prm.found`, `prm.server_error`, `prm.redirect`, `prm.protocol_version` over every
/// URL any family tries; returns the first that answers 200.
fn url_checks<'a>(
    seen: &'a Observed,
    ch: &challenge::Seen,
    b: &mut Builder,
) -> Option<(Url, &'a Resp)> {
    let mcp = &seen.mcp;
    let mut candidates: Vec<(String, Url)> = Vec::new();
    for h in ch.hints.iter().filter_map(|h| Url::parse(h).ok()) {
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
    match &ch.hint_url {
        Some(h) => {
            let o = seen.get(Kind::Modern, h);
            let ok = matches!(o, Some(Ok(r)) if r.status == 200 && json_object(r).is_some());
            b.add(
                CheckId::PrmHint,
                pass_warn(ok),
                format!("hint {h} → {}", status_text(o)),
                Vec::new(),
            );
        }
        None => b.skip(CheckId::PrmHint, "no hint to fetch"),
    }
    b.add(
        CheckId::PrmFound,
        pass_fail(primary.is_some()),
        match &primary {
            Some((u, _)) => format!("metadata at {u}"),
            None => "no URL answers 200 with protected-resource metadata".to_owned(),
        },
        url_lines,
    );
    server_error_check(b, CheckId::PrmServerError, &any_5xx);
    b.warn_if_listed(
        CheckId::PrmRedirect,
        redirects,
        "no cross-origin redirect",
        "cross-origin redirect (never followed silently)",
    );
    b.warn_if_listed(
        CheckId::PrmProtocolVersion,
        version_diff,
        "same answers with MCP-Protocol-Version 2024-11-05 and 2025-11-25",
        "answers differ with MCP-Protocol-Version: 2024-11-05 (rmcp)",
    );
    primary
}

/// `prm.json`, `prm.content_type`, `prm.no_null_or_empty`, `prm.resource`,
/// `prm.authorization_servers` on the document at `u`; returns its first authorization server.
fn document_checks(seen: &Observed, u: &Url, r: &Resp, b: &mut Builder) -> Option<String> {
    let doc = json_object(r);
    b.add(
        CheckId::PrmJson,
        pass_fail(doc.is_some()),
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
        CheckId::PrmContentType,
        pass_warn(ct_ok),
        format!("Content-Type: {ct}"),
        Vec::new(),
    );
    let Some(doc) = doc else {
        for id in [
            CheckId::PrmNoNullOrEmpty,
            CheckId::PrmResource,
            CheckId::PrmAuthorizationServers,
        ] {
            b.skip(id, "not a JSON object");
        }
        return None;
    };
    let bad = bad_values(&doc);
    null_check(b, CheckId::PrmNoNullOrEmpty, &bad, "TypeScript and Python");
    let resource = doc
        .get("resource")
        .map(Value::to_string)
        .unwrap_or_default();
    let (status, summary) = match resource_match(doc.get("resource"), &seen.mcp) {
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
    b.add(CheckId::PrmResource, status, summary, Vec::new());
    let servers: Vec<String> = doc
        .get("authorization_servers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    b.add(
        CheckId::PrmAuthorizationServers,
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
    servers.first().cloned()
}

/// `prm.scopes`: which scopes clients will request (the challenge's, else the PRM's).
fn scopes_check(primary: Option<&Resp>, ch: &challenge::Seen, b: &mut Builder) {
    let prm_scopes: Vec<String> = primary
        .and_then(json_object)
        .and_then(|d| {
            d.get("scopes_supported")?.as_array().map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default();
    let challenge_scopes: Vec<String> = ch
        .scope
        .as_ref()
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
        b.skip(CheckId::PrmScopes, "no metadata document");
    } else if requested.is_empty() {
        b.add(
            CheckId::PrmScopes,
            Status::Warn,
            "no scope in the challenge or the PRM: TypeScript clients request no scope at all (strict IdPs such as oidc-provider answer access_denied); Python requests every scope of the AS metadata",
            Vec::new(),
        );
    } else if requested.iter().any(|s| s == "offline_access") {
        b.add(
            CheckId::PrmScopes,
            Status::Warn,
            "offline_access is advertised, which MCP servers SHOULD NOT do (2025-11-25): every login asks for it",
            Vec::new(),
        );
    } else {
        b.add(
            CheckId::PrmScopes,
            Status::Pass,
            format!("clients request {}", requested.join(" ")),
            Vec::new(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
