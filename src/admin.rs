//! The admin listener's routes (README "Admin listener"), for the gateway's proxy and for operators:
//!
//! * `/challenge?resource=<URL or path>[&error=…][&scope=…]` or `/challenge/<request path>`, any
//!   method (nginx keeps the client's method on an internal redirect); the resource may come in
//!   `X-Original-URI` instead, what the gateway answered in `X-Gateway-Status` and
//!   `X-Gateway-WWW-Authenticate` — the complete answer the proxy relays: 401 with the hint, 403
//!   step-up for `insufficient_scope`, 403 without a challenge for any other refusal.
//! * `GET /healthz` — alive. `GET /readyz` — 200 while a valid config is served, 503 once shutdown
//!   has begun. `GET /status` — the served config and the last reload. `GET /metrics` — Prometheus.

use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use crate::challenge::{AuthError, GatewayStatus, Outcome, challenge, www_authenticate};
use crate::http;
use crate::metrics::Kind;
use crate::registry::Registry;
use crate::state::AppState;
use crate::upstream::discover::judge_for;

const EXPOSE: HeaderValue = HeaderValue::from_static("WWW-Authenticate");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const PROMETHEUS: HeaderValue =
    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");

/// Answers one request on the admin listener.
pub fn respond<B>(state: &AppState, req: &Request<B>) -> Response<Full<Bytes>> {
    let read_only = matches!(*req.method(), Method::GET | Method::HEAD);
    match (req.uri().path(), read_only) {
        ("/challenge", _) => challenge_response(state, req),
        (p, _) if p.starts_with("/challenge/") => challenge_response(state, req),
        ("/healthz", true) => http::json(StatusCode::OK, r#"{"status":"alive"}"#),
        ("/readyz", true) if state.is_draining() => {
            http::json(StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"draining"}"#)
        }
        ("/readyz", true) => http::json(StatusCode::OK, r#"{"status":"ready"}"#),
        ("/status", true) => http::json(StatusCode::OK, status(state)),
        ("/metrics", true) => {
            let registry = state.registry();
            let mut body = state
                .metrics
                .render(registry.source.generation, registry.server_count());
            upstream_metrics(state, &mut body);
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, PROMETHEUS);
            response
        }
        ("/healthz" | "/readyz" | "/status" | "/metrics", false) => http::method_not_allowed(),
        _ => http::not_found(),
    }
}

/// The proxy's copy of the gateway's status (`401`, `403`).
const X_GATEWAY_STATUS: HeaderName = HeaderName::from_static("x-gateway-status");
/// The proxy's copy of the gateway's own `WWW-Authenticate` (several lines joined with `, `).
const X_GATEWAY_WWW_AUTHENTICATE: HeaderName =
    HeaderName::from_static("x-gateway-www-authenticate");
/// The request path the client used (nginx: `$request_uri`).
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");

fn challenge_response<B>(state: &AppState, req: &Request<B>) -> Response<Full<Bytes>> {
    let headers = req.headers();
    // `/challenge/<path>`: the resource is the path; the query is the client's, ignored.
    let suffix = req
        .uri()
        .path()
        .strip_prefix("/challenge")
        .filter(|s| !s.is_empty());
    let [mut resource, error, scope] = match suffix {
        Some(_) => [None, None, None],
        None => query_params(req.uri().query().unwrap_or("")),
    };
    let fields = Fields::scan(headers);
    if resource.is_none() {
        resource = suffix.map(Cow::Borrowed).or_else(|| {
            fields
                .original_uri
                .and_then(|v| v.to_str().ok())
                .map(Cow::Borrowed)
        });
    }
    let status = GatewayStatus::parse(fields.gateway_status.map(HeaderValue::as_bytes));
    let (header_error, header_scope) = match fields.gateway_www_authenticate {
        Some(first) if error.is_none() || scope.is_none() => {
            // The lines after the first only when there are several (then looked up again).
            let rest = fields
                .several_www_authenticate
                .then(|| headers.get_all(X_GATEWAY_WWW_AUTHENTICATE).iter().skip(1));
            www_authenticate::bearer_error_and_scope(
                std::iter::once(first)
                    .chain(rest.into_iter().flatten())
                    .map(HeaderValue::as_bytes),
            )
        }
        _ => (None, None),
    };
    let error: Option<&[u8]> = error
        .as_deref()
        .map(str::as_bytes)
        .or(header_error.as_deref());
    let scope: Option<&[u8]> = scope
        .as_deref()
        .map(str::as_bytes)
        .or(header_scope.as_deref());
    let auth_error = match error.map(AuthError::parse) {
        None => AuthError::NoToken,
        Some(Some(e)) => e,
        Some(None) => {
            crate::challenge::log_unknown_error(error.unwrap_or_default());
            AuthError::NoToken
        }
    };
    let outcome = Outcome::decide(status, auth_error);
    let host = fields.host.map(HeaderValue::as_bytes);
    let registry = state.registry();
    let c = challenge(&registry, resource.as_deref(), host, outcome, scope);
    if !c.dropped_scopes.is_empty() {
        tracing::warn!(dropped = ?c.dropped_scopes, "ignoring requested scopes that are not RFC 6749 scope tokens");
    }
    tracing::debug!(resource = ?resource, server = ?c.server, status = c.status.as_u16(), "challenge");
    state.metrics.record(Kind::Challenge, c.status);
    let mut response = Response::new(Full::new(Bytes::from_static(c.body.as_bytes())));
    *response.status_mut() = c.status;
    // Cloning a ready header map and replacing one value costs less than inserting five.
    let templates = challenge_headers();
    *response.headers_mut() = match c.header {
        Some(value) => {
            // The placeholder is found by walking the five entries, cheaper than hashing its name.
            let mut h = templates.with_challenge.clone();
            match h
                .iter_mut()
                .find(|(name, _)| *name == header::WWW_AUTHENTICATE)
            {
                Some((_, placeholder)) => *placeholder = value,
                None => {
                    h.insert(header::WWW_AUTHENTICATE, value);
                }
            }
            h
        }
        None => templates.without.clone(),
    };
    response
}

/// The first non-empty `resource`, `error` and `scope` of a `/challenge` query, decoded as
/// `application/x-www-form-urlencoded`. A query with nothing to decode (no `%`, no `+`: the usual
/// one) is split in place; any other goes through `form_urlencoded`, which gives the same pairs.
fn query_params(query: &str) -> [Option<Cow<'_, str>>; 3] {
    let mut found = [None, None, None];
    if query.bytes().any(|b| b == b'%' || b == b'+') {
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            keep_param(&mut found, &key, value);
        }
    } else {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            keep_param(&mut found, key, Cow::Borrowed(value));
        }
    }
    found
}

fn keep_param<'q>(found: &mut [Option<Cow<'q, str>>; 3], key: &str, value: Cow<'q, str>) {
    let slot = match key {
        "resource" => &mut found[0],
        "error" => &mut found[1],
        "scope" => &mut found[2],
        _ => return,
    };
    if slot.is_none() && !value.is_empty() {
        *slot = Some(value);
    }
}

/// The request fields `/challenge` reads, found in one walk over the header map (a hashed lookup
/// per name costs more: a proxy's subrequest carries few fields).
struct Fields<'a> {
    host: Option<&'a HeaderValue>,
    original_uri: Option<&'a HeaderValue>,
    gateway_status: Option<&'a HeaderValue>,
    /// The first `X-Gateway-WWW-Authenticate` line, and whether there are more.
    gateway_www_authenticate: Option<&'a HeaderValue>,
    several_www_authenticate: bool,
}

impl<'a> Fields<'a> {
    /// The first value of each (what `HeaderMap::get` returns).
    fn scan(headers: &'a HeaderMap) -> Fields<'a> {
        let mut f = Fields {
            host: None,
            original_uri: None,
            gateway_status: None,
            gateway_www_authenticate: None,
            several_www_authenticate: false,
        };
        for (name, value) in headers {
            let slot = if *name == header::HOST {
                &mut f.host
            } else if *name == X_ORIGINAL_URI {
                &mut f.original_uri
            } else if *name == X_GATEWAY_STATUS {
                &mut f.gateway_status
            } else if *name == X_GATEWAY_WWW_AUTHENTICATE {
                f.several_www_authenticate |= f.gateway_www_authenticate.is_some();
                &mut f.gateway_www_authenticate
            } else {
                continue;
            };
            slot.get_or_insert(value);
        }
        f
    }
}

/// The headers of every `/challenge` answer; `with_challenge` has a placeholder
/// `WWW-Authenticate` each answer replaces.
struct ChallengeHeaders {
    with_challenge: HeaderMap,
    without: HeaderMap,
}

fn challenge_headers() -> &'static ChallengeHeaders {
    static HEADERS: OnceLock<ChallengeHeaders> = OnceLock::new();
    HEADERS.get_or_init(|| {
        let mut without = HeaderMap::with_capacity(5);
        without.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, http::ANY_ORIGIN);
        without.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE);
        without.insert(header::CACHE_CONTROL, NO_STORE);
        without.insert(header::CONTENT_TYPE, http::JSON);
        let mut with_challenge = without.clone();
        with_challenge.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        ChallengeHeaders {
            with_challenge,
            without,
        }
    })
}

fn status(state: &AppState) -> String {
    let registry = state.registry();
    let last = state.last_load();
    let source = &registry.source;
    json!({
        "config_path": source.path,
        "generation": source.generation,
        "content_sha256": source.content_sha256,
        "loaded_at": rfc3339(source.loaded_at),
        "servers": registry.server_count(),
        "last_reload": {
            "ok": last.ok,
            "at": rfc3339(last.at),
            "error": last.error,
        },
        "config_read": state.config_read_status(),
        "public_urls": registry.sites.iter().map(|s| s.site.base()).collect::<Vec<_>>(),
        "draining": state.is_draining(),
        "upstreams": upstreams(state, &registry),
    })
    .to_string()
}

/// Every finding for `server` from its upstream's status: the document's (mode-independent and
/// for its mode), or the last fetch's error when no document was ever accepted.
fn server_findings(
    status: &crate::upstream::UpstreamStatus,
    server: &crate::config::Server,
) -> Vec<crate::upstream::discover::Finding> {
    let mut findings = status.findings.clone();
    match &status.document {
        Some(doc) => findings.extend(judge_for(doc, &status.notes, server)),
        None => findings.extend(status.last_error.clone()),
    }
    findings
}

/// Per server with `"discover": true`: where its upstream metadata came from, how old it is, what
/// is wrong with it, and why the last fetch failed.
fn upstreams(state: &AppState, registry: &Registry) -> serde_json::Value {
    let now = SystemTime::now();
    let relays = state.upstreams.documents();
    let mut out = serde_json::Map::new();
    for server in registry.config.servers.iter().filter(|s| s.discover) {
        let Some(issuer) = &server.upstream_issuer else {
            continue;
        };
        let status = state.upstreams.status(issuer).unwrap_or_default();
        let findings = server_findings(&status, server);
        // What the public listener really answers for this server's AS document (a facade),
        // and why when it is a 503.
        let relay = relays.get(issuer);
        let serving = server
            .auth
            .iter()
            .filter_map(|a| Some((a, a.hosted.as_ref()?)))
            .find_map(|(a, h)| crate::registry::render_as(server, &a.issuer, h, relay).err())
            .map_or_else(|| "ok".to_owned(), |why| format!("503: {why}"));
        out.insert(
            server.name.clone(),
            json!({
                "issuer": issuer,
                "source": status.source,
                "fetched_at": status.fetched_at.map(rfc3339),
                "age_seconds": status.fetched_at.and_then(|t| now.duration_since(t).ok()).map(|d| d.as_secs()),
                "findings": findings,
                "last_error": status.last_error.map(|f| f.message),
                "last_attempt_at": status.last_attempt_at.map(rfc3339),
                "attempts": status.attempts,
                "serving": serving,
            }),
        );
    }
    serde_json::Value::Object(out)
}

fn upstream_metrics(state: &AppState, out: &mut String) {
    use std::fmt::Write;
    use std::sync::atomic::Ordering;
    let _ = write!(
        out,
        "# HELP signpost_upstream_fetches_total Upstream metadata fetches, by result.\n\
         # TYPE signpost_upstream_fetches_total counter\n\
         signpost_upstream_fetches_total{{result=\"ok\"}} {}\n\
         signpost_upstream_fetches_total{{result=\"error\"}} {}\n",
        state.upstreams.fetches_ok.load(Ordering::Relaxed),
        state.upstreams.fetches_error.load(Ordering::Relaxed),
    );
    let registry = state.registry();
    let mut lines = Vec::new();
    for server in registry.config.servers.iter().filter(|s| s.discover) {
        let Some(status) = server
            .upstream_issuer
            .as_ref()
            .and_then(|i| state.upstreams.status(i))
        else {
            continue;
        };
        for f in server_findings(&status, server) {
            lines.push(format!(
                "signpost_upstream_findings{{server=\"{}\",code=\"{}\",severity=\"{}\"}} 1",
                server.name,
                f.code,
                match f.severity {
                    crate::upstream::discover::Severity::Error => "error",
                    crate::upstream::discover::Severity::Warning => "warning",
                }
            ));
        }
    }
    if !lines.is_empty() {
        out.push_str("# HELP signpost_upstream_findings Findings about each discovering server's upstream (1 per finding): what breaks which clients.\n");
        out.push_str("# TYPE signpost_upstream_findings gauge\n");
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
    let all = state.upstreams.all();
    if all.is_empty() {
        return;
    }
    out.push_str(
        "# HELP signpost_upstream_age_seconds Age of the upstream metadata being served.\n",
    );
    out.push_str("# TYPE signpost_upstream_age_seconds gauge\n");
    let now = SystemTime::now();
    let mut issuers: Vec<_> = all.into_iter().collect();
    issuers.sort_by(|a, b| a.0.cmp(&b.0));
    for (issuer, status) in issuers {
        if let Some(age) = status.fetched_at.and_then(|t| now.duration_since(t).ok()) {
            let label = issuer.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(
                out,
                "signpost_upstream_age_seconds{{issuer=\"{label}\"}} {}",
                age.as_secs()
            );
        }
    }
}

/// `2026-11-26T14:20:16Z`.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `query_params` replaced: every pair through `form_urlencoded`.
    fn reference(query: &str) -> [Option<String>; 3] {
        let mut found = [None, None, None];
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match &*key {
                "resource" => &mut found[0],
                "error" => &mut found[1],
                "scope" => &mut found[2],
                _ => continue,
            };
            if slot.is_none() && !value.is_empty() {
                *slot = Some(value.into_owned());
            }
        }
        found
    }

    #[test]
    fn the_query_split_in_place_gives_what_form_urlencoded_gives() {
        for q in [
            "",
            "&",
            "&&resource=/a&&",
            "resource=/mcp/x/mcp",
            "resource=",
            "resource=&resource=/second",
            "resource",
            "resource=/a=b&error==x",
            "error=invalid_token&scope=a&scope=b",
            "scope=a+b&resource=/x",
            "resource=%2Fmcp%2Fx&error=insufficient%5Fscope",
            "resourc%65=/x",
            "resource=/%FF",
            "other=1&resource=/é",
            "=x&resource=/y",
        ] {
            let got = query_params(q).map(|v| v.map(Cow::into_owned));
            assert_eq!(got, reference(q), "{q:?}");
        }
    }
}
