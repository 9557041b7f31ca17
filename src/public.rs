//! The public listener's routes (README "Public listener"). signpost owns only `/.well-known/*`:
//!
//! * `GET|HEAD /.well-known/oauth-protected-resource{resource path}` — protected-resource metadata
//!   (a trailing `/` and any query are tolerated); the bare prefix only when a server sits at `/`.
//! * `GET|HEAD /.well-known/oauth-authorization-server{issuer path}` — facade and gateway issuers.
//! * `/.well-known/openid-configuration…` — always 404 (signpost never serves a partial OIDC
//!   document: clients abort on a failed parse).
//! * `OPTIONS` on any well-known path — 204 CORS preflight, whatever the `Host`.
//! * Other methods on a served path — 405 with `Allow`; anything else — JSON 404.
//!
//! The site a request names follows RFC 9112 §3.2 and RFC 9113 §8.3.1: the target's authority
//! (absolute-form, or HTTP/2 `:authority`) wins over `Host`; more than one `Host`, or an HTTP/1.1
//! request without one, is a JSON 400; HTTP/1.0 may omit it.
//!
//! Every answer carries `Access-Control-Allow-Origin: *`. Nothing here reads a body, builds a URL
//! from `Host` or `X-Forwarded-*`, or can answer 401 or 5xx: a request is a lookup and a write.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};

use crate::http::{ALLOW, ANY_ORIGIN, json, method_not_allowed, not_found};
use crate::metrics::Kind;
use crate::registry::{Doc, DocKind, Registry};
use crate::state::AppState;
use crate::well_known::OIDC_PREFIX;

const PREFLIGHT_HEADERS: HeaderValue = HeaderValue::from_static(
    "mcp-protocol-version, authorization, content-type, accept, mcp-session-id, last-event-id",
);
/// Seconds a client should wait before asking again for a facade document that is not ready.
const RETRY_AFTER: HeaderValue = HeaderValue::from_static("5");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const PREFLIGHT_MAX_AGE: HeaderValue = HeaderValue::from_static("86400");
const SEVERAL_HOSTS_BODY: &str = r#"{"error":"bad_request","error_description":"more than one Host header (RFC 9112 section 3.2)"}"#;
const NO_HOST_BODY: &str = r#"{"error":"bad_request","error_description":"an HTTP/1.1 request needs a Host header (RFC 9112 section 3.2)"}"#;

/// What a request path names.
enum Target<'a> {
    /// A path outside `/.well-known/`.
    Outside,
    Document(Doc<'a>),
    /// An OpenID Connect discovery path (never served, counted apart).
    Oidc,
    /// A well-known path with no document (or a `Host` no `public_url` has).
    Missing,
}

/// Answers one request on the public listener.
pub fn respond<B>(state: &AppState, req: &Request<B>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let fields = Fields::scan(req.headers());
    let host = match fields.host(req) {
        Ok(host) => host,
        Err(bad) => {
            let response = json(StatusCode::BAD_REQUEST, bad.body());
            state.metrics.record(Kind::NotFound, response.status());
            return response;
        }
    };
    let registry = state.registry();
    let (kind, response) = match (req.method(), target(&registry, path, host)) {
        (_, Target::Outside) => (Kind::NotFound, not_found()),
        (&Method::OPTIONS, _) => (Kind::Preflight, preflight()),
        (&Method::GET | &Method::HEAD, Target::Document(doc)) => {
            let kind = match doc.kind {
                DocKind::Prm => Kind::Prm,
                DocKind::As => Kind::As,
            };
            (kind, document(doc, &registry, &fields, req.headers()))
        }
        (_, Target::Document(_)) => (Kind::MethodNotAllowed, method_not_allowed()),
        (_, Target::Oidc) => (Kind::Oidc, not_found()),
        (_, Target::Missing) => (Kind::NotFound, not_found()),
    };
    state.metrics.record(kind, response.status());
    tracing::trace!(method = %req.method(), path, status = response.status().as_u16(), "public");
    response
}

/// Why a request names no valid host (RFC 9112 §3.2: both are answered 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadHost {
    /// More than one `Host` field line.
    Several,
    /// An HTTP/1.1 request without `Host`.
    Missing,
}

impl BadHost {
    /// The JSON error body (README "Public listener").
    pub fn body(self) -> &'static str {
        match self {
            BadHost::Several => SEVERAL_HOSTS_BODY,
            BadHost::Missing => NO_HOST_BODY,
        }
    }
}

/// The authority that selects a request's site: the target's (absolute-form, HTTP/2
/// `:authority`) over the `Host` header; `None` for an HTTP/1.0 or HTTP/2 request with neither.
pub fn request_host<B>(req: &Request<B>) -> Result<Option<&[u8]>, BadHost> {
    Fields::scan(req.headers()).host(req)
}

/// The request fields the public routes read, found in one walk over the header map (cheaper than
/// a hashed lookup per name: a request carries few fields, and standard names compare as tags).
struct Fields<'a> {
    /// The first `Host` value, and whether there was more than one.
    host: Option<&'a HeaderValue>,
    several_hosts: bool,
    /// The first `If-None-Match` value, and whether there was more than one.
    if_none_match: Option<&'a HeaderValue>,
    several_if_none_match: bool,
}

impl<'a> Fields<'a> {
    #[inline]
    fn scan(headers: &'a HeaderMap) -> Fields<'a> {
        let mut f = Fields {
            host: None,
            several_hosts: false,
            if_none_match: None,
            several_if_none_match: false,
        };
        for (name, value) in headers {
            if *name == header::HOST {
                f.several_hosts |= f.host.replace(value).is_some();
            } else if *name == header::IF_NONE_MATCH {
                f.several_if_none_match |= f.if_none_match.replace(value).is_some();
            }
        }
        f
    }

    /// [`request_host`] from the scanned fields.
    #[inline]
    fn host<B>(&self, req: &'a Request<B>) -> Result<Option<&'a [u8]>, BadHost> {
        if self.several_hosts {
            return Err(BadHost::Several);
        }
        if self.host.is_none() && req.version() == Version::HTTP_11 {
            return Err(BadHost::Missing);
        }
        Ok(match req.uri().authority() {
            Some(authority) => Some(authority.as_str().as_bytes()),
            None => self.host.map(HeaderValue::as_bytes),
        })
    }

    /// Whether `If-None-Match` names `etag` (any of its lines).
    #[inline]
    fn fresh(&self, headers: &HeaderMap, etag: &[u8]) -> bool {
        match self.if_none_match {
            None => false,
            Some(_) if self.several_if_none_match => headers
                .get_all(header::IF_NONE_MATCH)
                .iter()
                .any(|v| etag_matches(v.as_bytes(), etag)),
            Some(v) => etag_matches(v.as_bytes(), etag),
        }
    }
}

fn target<'r>(registry: &'r Registry, path: &str, host: Option<&[u8]>) -> Target<'r> {
    // Looked up first: every document's path is under `/.well-known/`, so only a miss needs
    // telling apart.
    let doc = registry
        .site_for_host(host)
        .and_then(|site| site.find(path));
    match doc {
        Some(doc) => Target::Document(doc),
        None if path != "/.well-known" && !path.starts_with("/.well-known/") => Target::Outside,
        None if path.starts_with(OIDC_PREFIX) => Target::Oidc,
        None => Target::Missing,
    }
}

#[inline]
fn document(
    doc: Doc<'_>,
    registry: &Registry,
    fields: &Fields<'_>,
    headers: &HeaderMap,
) -> Response<Full<Bytes>> {
    if doc.status != StatusCode::OK {
        let mut response = json(doc.status, doc.body());
        let h = response.headers_mut();
        h.insert(header::RETRY_AFTER, RETRY_AFTER);
        h.insert(header::CACHE_CONTROL, NO_STORE);
        return response;
    }
    let fresh = fields.fresh(headers, doc.etag_bytes());
    // The snapshot's ready-made head, cloned, with the ETag placeholder (its first header)
    // replaced: cheaper than filling in a new response's head, or hashing the name again.
    let (mut head, body) = if fresh {
        (registry.not_modified_head.clone(), Bytes::new())
    } else {
        (registry.document_head.clone(), doc.body())
    };
    match head.headers.iter_mut().next() {
        Some((name, value)) if *name == header::ETAG => *value = doc.etag(),
        _ => {
            head.headers.insert(header::ETAG, doc.etag());
        }
    }
    Response::from_parts(head, Full::new(body))
}

/// `If-None-Match` uses the weak comparison (RFC 9110 §13.1.2): `*`, or any listed tag equal to
/// ours with or without `W/`.
fn etag_matches(if_none_match: &[u8], etag: &[u8]) -> bool {
    if_none_match.split(|b| *b == b',').any(|candidate| {
        let c = candidate.trim_ascii();
        c == b"*" || c.strip_prefix(b"W/").unwrap_or(c) == etag
    })
}

fn preflight() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN);
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW);
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, PREFLIGHT_HEADERS);
    h.insert(header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE);
    response
}

#[cfg(test)]
mod tests {
    use super::etag_matches;

    #[test]
    fn if_none_match_weak_comparison() {
        let tag = b"\"abc\"";
        assert!(etag_matches(b"\"abc\"", tag));
        assert!(etag_matches(b"W/\"abc\"", tag));
        assert!(etag_matches(b"\"x\", \"abc\"", tag));
        assert!(etag_matches(b"*", tag));
        assert!(!etag_matches(b"\"abcd\"", tag));
        assert!(!etag_matches(b"abc", tag));
        assert!(!etag_matches(b"", tag));
    }
}
