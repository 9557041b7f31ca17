//! Step 3, authorization-server metadata (RFC 8414, OpenID Connect discovery): which URLs each
//! family tries for the PRM's first authorization server, which document it accepts, and what it
//! requires of it (issuer, response types, PKCE, registration, host). The walk's third step
//! ([`walk`]) and the `as.*` checks ([`checklist`]).

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::{Map, Value};
use url::Url;

use super::check::{Builder, CheckId, Status, Stop, Verdict, pass_fail};
use super::doc::{
    DocRules, Document, Missed, Problem, Tried, answer, bad_values, first_accepted, json_object,
    null_check, server_error_check, status_text, str_list,
};
use super::eval::{IssuerRule, Model};
use super::gather::{Kind, Observed, Resp};
use super::{Family, origin_of};
use crate::addr::{is_loopback_url, is_private};
use crate::well_known::{AS_PREFIX, as_metadata_urls, is_oidc_url, trimmed_path};

/// What the AS metadata blames (a cross-origin redirect is a plain "not found" here).
const AS: DocRules = DocRules {
    redirect: CheckId::AsFound,
    allow_origin: CheckId::CorsAsAllowOrigin,
    found: CheckId::AsFound,
    server_error: CheckId::AsServerError,
    rmcp_legacy: false,
};

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
fn oauth_shape_problems(doc: &Map<String, Value>) -> Vec<String> {
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

fn oidc_shape_problems(doc: &Map<String, Value>) -> Vec<String> {
    OIDC_FIELDS
        .iter()
        .filter(|f| !doc.contains_key(**f))
        .map(|f| format!("{f} is missing"))
        .collect()
}

/// How a host is classified: `(private_or_loopback, loopback)`; unresolved names count as public.
pub fn host_class(url: &Url, addrs: &HashMap<String, Vec<IpAddr>>) -> (bool, bool) {
    if is_loopback_url(url) {
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
    let private = !list.is_empty() && list.iter().all(is_private);
    let loopback = !list.is_empty() && list.iter().all(|ip| ip.is_loopback());
    (private, loopback)
}

// === the walk ===

/// The third step of family `m`: the metadata it accepts for `issuer` (`issuer_raw` as the PRM
/// wrote it) and what it requires of it; returns the document.
pub(super) fn walk(
    seen: &Observed,
    m: &Model,
    issuer_raw: &str,
    issuer: &Url,
    v: &mut Verdict,
) -> Result<Map<String, Value>, Stop> {
    let urls = as_metadata_urls(issuer, trimmed_path(issuer), m.rmcp);
    let notes = &mut v.notes;
    let found = first_accepted(&urls, |_, url| {
        Ok(match answer(seen, m, &AS, url, notes)? {
            Tried::Accepted(r) => judge(m, url, r)?,
            Tried::Problem(p) => Tried::Problem(p),
        })
    });
    let (as_resp, doc) = match found {
        Ok(found) => found,
        Err(Missed::Stop(stop)) => return Err(stop),
        Err(Missed::Nothing { strong, weak }) => {
            return Err(strong.unwrap_or_else(|| {
                (
                    CheckId::AsFound,
                    format!(
                        "no authorization-server metadata for {issuer_raw} ({})",
                        weak.join("; ")
                    ),
                )
            }));
        }
    };
    v.as_metadata = Some(as_resp.final_url.to_string());
    requirements(seen, m, issuer_raw, issuer, &doc)?;
    Ok(doc)
}

/// Whether family `m` accepts the answer `r` (not a 5xx) of `url` as the metadata.
fn judge<'a>(m: &Model, url: &Url, r: &'a Resp) -> Result<Tried<Document<'a>>, Stop> {
    if r.status != 200 {
        return Ok(Tried::Problem(Problem {
            check: CheckId::AsFound,
            strong: false,
            why: format!("{url} answered {}", r.status),
        }));
    }
    let doc = json_object(r);
    let shape = doc.as_ref().map(oauth_shape_problems);
    match (doc, shape) {
        (Some(doc), Some(p)) if p.is_empty() => {
            let oidc = if m.ts_parse && is_oidc_url(url) {
                oidc_shape_problems(&doc)
            } else {
                Vec::new()
            };
            let bad = bad_values(&doc);
            if !oidc.is_empty() {
                return Err((
                    CheckId::AsOidcShape,
                    format!(
                        "{url} answered 200 but the OIDC schema fails ({}); this client throws instead of trying the next URL",
                        oidc.join(", ")
                    ),
                ));
            }
            if m.strict_null_as && !bad.is_empty() {
                return Err((
                    CheckId::AsNoNullOrEmpty,
                    format!("{url}: {} (fails schema validation)", bad.join(", ")),
                ));
            }
            Ok(Tried::Accepted((r, doc)))
        }
        (_, p) => {
            let detail = p
                .map(|p| p.join(", "))
                .unwrap_or_else(|| "not a JSON object".to_owned());
            let why = format!("{url} answered 200 but does not parse as AS metadata ({detail})");
            if m.ts_parse {
                return Err((
                    CheckId::AsParse,
                    format!("{why}; this client throws instead of trying the next URL"),
                ));
            }
            Ok(Tried::Problem(Problem {
                check: CheckId::AsParse,
                strong: true,
                why,
            }))
        }
    }
}

/// What family `m` requires of the accepted document.
fn requirements(
    seen: &Observed,
    m: &Model,
    issuer_raw: &str,
    issuer: &Url,
    doc: &Map<String, Value>,
) -> Result<(), Stop> {
    let got_issuer = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
    let issuer_ok = match m.issuer {
        IssuerRule::None => true,
        IssuerRule::Exact => got_issuer == issuer_raw,
        IssuerRule::ExpectedSlash => {
            got_issuer == issuer_raw || issuer_raw.strip_suffix('/') == Some(got_issuer)
        }
    };
    if !issuer_ok {
        return Err((
            CheckId::AsIssuer,
            format!("the metadata's issuer {got_issuer:?} is not {issuer_raw:?} byte for byte"),
        ));
    }
    if !str_list(doc, "response_types_supported").is_some_and(|l| l.contains(&"code")) {
        return Err((CheckId::AsResponseTypeCode, "response_types_supported lacks \"code\": the authorization-code flow MCP clients use is not offered".to_owned()));
    }
    if m.s256_when_present {
        if let Some(methods) = str_list(doc, "code_challenge_methods_supported") {
            if !methods.contains(&"S256") {
                return Err((
                    CheckId::AsPkceS256,
                    format!(
                        "code_challenge_methods_supported is {methods:?}, without S256: this client refuses the server"
                    ),
                ));
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
                origin_of(&seen.mcp)
            )
        } else {
            "no registration_endpoint and no client ID metadata documents: this client cannot register".to_owned()
        };
        return Err((CheckId::AsRegistration, why));
    }
    if m.rmcp {
        let (as_private, _) = host_class(issuer, &seen.addrs);
        let (_, mcp_loopback) = host_class(&seen.mcp, &seen.addrs);
        if as_private && !mcp_loopback {
            return Err((
                CheckId::AsPrivateHost,
                format!(
                    "the authorization server {issuer} is on a private or loopback host and the MCP URL is not on loopback: rmcp rejects it"
                ),
            ));
        }
    }
    Ok(())
}

// === the checklist ===

/// Every check after `as.found` and `as.server_error`, skipped together.
const DOCUMENT_CHECKS: [CheckId; 10] = [
    CheckId::AsParse,
    CheckId::AsOidcShape,
    CheckId::AsNoNullOrEmpty,
    CheckId::AsIssuer,
    CheckId::AsResponseTypeCode,
    CheckId::AsPkceS256,
    CheckId::AsRegistration,
    CheckId::AsRfc9207,
    CheckId::AsEntraResource,
    CheckId::AsPrivateHost,
];

/// The `as.*` checks for the PRM's first authorization server; returns the metadata URL clients
/// use and its answer.
pub(super) fn checklist<'a>(
    seen: &'a Observed,
    first_issuer: Option<&str>,
    b: &mut Builder,
) -> Option<(Url, &'a Resp)> {
    let issuer = first_issuer.and_then(|i| Url::parse(i).ok());
    let (Some(issuer), Some(issuer_raw)) = (&issuer, first_issuer) else {
        for id in [CheckId::AsFound, CheckId::AsServerError]
            .into_iter()
            .chain(DOCUMENT_CHECKS)
        {
            b.skip(id, "no authorization server to look up");
        }
        return None;
    };
    let mut used: Option<(Url, &Resp)> = None;
    let mut lines = Vec::new();
    let mut five = Vec::new();
    for u in as_metadata_urls(issuer, trimmed_path(issuer), true) {
        let o = seen.get(Kind::Modern, &u);
        let rmcp_only = !trimmed_path(issuer).is_empty() && u.path() == AS_PREFIX;
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
        CheckId::AsFound,
        pass_fail(used.is_some()),
        match &used {
            Some((u, _)) => format!("clients use {u} (the first to answer 200, in MCP order)"),
            None => format!("no AS metadata URL for {issuer_raw} answers 200"),
        },
        lines,
    );
    server_error_check(b, CheckId::AsServerError, &five);
    match &used {
        None => {
            for id in DOCUMENT_CHECKS {
                b.skip(id, "no AS metadata");
            }
        }
        Some((u, r)) => match json_object(r) {
            None => {
                b.add(
                    CheckId::AsParse,
                    Status::Fail,
                    format!("{u} is not a JSON object"),
                    Vec::new(),
                );
                for id in &DOCUMENT_CHECKS[1..] {
                    b.skip(*id, "not a JSON object");
                }
            }
            Some(doc) => {
                shape_checks(u, issuer_raw, &doc, b);
                usage_checks(seen, issuer, issuer_raw, &doc, b);
            }
        },
    }
    used
}

/// `as.parse`, `as.oidc_shape`, `as.no_null_or_empty`, `as.issuer`, `as.response_type_code`,
/// `as.pkce_s256` on the document clients use.
fn shape_checks(url: &Url, issuer_raw: &str, doc: &Map<String, Value>, b: &mut Builder) {
    let oauth = oauth_shape_problems(doc);
    let oidc = oidc_shape_problems(doc);
    b.add(
        CheckId::AsParse,
        pass_fail(oauth.is_empty()),
        if oauth.is_empty() {
            "valid RFC 8414 (OAuth) shape".to_owned()
        } else {
            format!("not valid RFC 8414 metadata: {}", oauth.join(", "))
        },
        Vec::new(),
    );
    let oidc_url = is_oidc_url(url);
    b.add(
        CheckId::AsOidcShape,
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
    let bad = bad_values(doc);
    null_check(b, CheckId::AsNoNullOrEmpty, &bad, "TypeScript");
    let got = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
    b.add(
        CheckId::AsIssuer,
        pass_fail(got == issuer_raw),
        if got == issuer_raw {
            format!("issuer {got} is authorization_servers[0] byte for byte")
        } else {
            format!("issuer {got:?} differs from authorization_servers[0] {issuer_raw:?}")
        },
        Vec::new(),
    );
    let types = str_list(doc, "response_types_supported").unwrap_or_default();
    b.add(
        CheckId::AsResponseTypeCode,
        pass_fail(types.contains(&"code")),
        format!("response_types_supported {types:?}"),
        Vec::new(),
    );
    let id = CheckId::AsPkceS256;
    match str_list(doc, "code_challenge_methods_supported") {
        None => b.add(id, Status::Warn, "code_challenge_methods_supported is absent: the 2025-11-25 spec and claude.ai refuse the server (TypeScript, rmcp and Python proceed)", Vec::new()),
        Some(m) if m.contains(&"S256") => b.add(id, Status::Pass, format!("code_challenge_methods_supported {m:?}"), Vec::new()),
        Some(m) => b.add(id, Status::Fail, format!("code_challenge_methods_supported {m:?} lacks S256"), Vec::new()),
    }
}

/// `as.registration`, `as.rfc9207`, `as.entra_resource`, `as.private_host`: what using this
/// authorization server takes.
fn usage_checks(
    seen: &Observed,
    issuer: &Url,
    issuer_raw: &str,
    doc: &Map<String, Value>,
    b: &mut Builder,
) {
    let reg = doc
        .get("registration_endpoint")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let cimd = doc.get("client_id_metadata_document_supported") == Some(&Value::Bool(true));
    b.add(
        CheckId::AsRegistration,
        pass_fail(reg.is_some() || cimd),
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
        CheckId::AsRfc9207,
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
    let entra = crate::upstream::discover::is_entra(doc);
    b.add(
        CheckId::AsEntraResource,
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
    let host = issuer.host_str().unwrap_or("");
    b.add(
        CheckId::AsPrivateHost,
        match (as_private, mcp_loopback) {
            (false, _) => Status::Pass,
            (true, true) => Status::Info,
            (true, false) => Status::Fail,
        },
        match (as_private, mcp_loopback) {
            (false, _) => format!("{host} is a public host"),
            (true, true) => format!("{host} is {} and so is the MCP host: a local setup (hosted connectors refuse private addresses)", if as_loopback { "loopback" } else { "private" }),
            (true, false) => format!("{host} is a private or loopback host and the MCP host is not loopback: rmcp and hosted connectors refuse it"),
        },
        Vec::new(),
    );
}

#[cfg(test)]
mod tests;
