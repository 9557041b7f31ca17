//! The served snapshot: every discovery document of a config rendered once into response bytes
//! with its ETag. Per site (`public_url`), one map from resource path to its owning server and
//! PRM (also the index `/challenge` resolves resources with) and one from issuer path to AS
//! document. A `Registry` is immutable; a reload builds a new one and swaps it in whole (see
//! `state.rs`), so a request only ever sees one config.

use rustc_hash::FxHashMap as HashMap;
use std::time::SystemTime;

use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::{self, HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use crate::config::{Config, HostedAs, ModeKind, Server, Site};
use crate::upstream::{Documents, Relay};

/// The well-known prefix of protected-resource metadata (RFC 9728 §3).
pub const PRM_PREFIX: &str = "/.well-known/oauth-protected-resource";
/// The well-known prefix of authorization-server metadata (RFC 8414 §3).
pub const AS_PREFIX: &str = "/.well-known/oauth-authorization-server";
/// The well-known prefix of OpenID Connect discovery.
pub const OIDC_PREFIX: &str = "/.well-known/openid-configuration";

/// What a served document is; also the `kind` label of `signpost_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Prm,
    As,
}

/// One ready response: the body and its ETag in one allocation (a registry holds hundreds of
/// thousands of them).
#[derive(Debug, Clone)]
pub struct Doc {
    pub kind: DocKind,
    /// 200, or 503 for a facade whose upstream endpoints are not known yet.
    pub status: StatusCode,
    /// The body, then the ETag.
    data: Bytes,
    body_len: u32,
}

impl Doc {
    fn new(kind: DocKind, status: StatusCode, mut data: Vec<u8>, body_len: usize) -> Doc {
        data.shrink_to_fit();
        Doc {
            kind,
            status,
            data: Bytes::from(data),
            body_len: u32::try_from(body_len).expect("a document is far smaller than 4 GiB"),
        }
    }

    pub fn body(&self) -> Bytes {
        self.data.slice(..self.body_len as usize)
    }

    /// The ETag as sent: `"<first 128 bits of the body's SHA-256, hex>"`.
    pub fn etag_bytes(&self) -> &[u8] {
        &self.data[self.body_len as usize..]
    }

    pub fn etag(&self) -> HeaderValue {
        HeaderValue::from_maybe_shared(self.data.slice(self.body_len as usize..))
            .expect("a quoted hex tag is a valid header value")
    }
}

/// A resource path of a site: the server that owns it and, unless its mode is `none`, its PRM.
#[derive(Debug, Clone)]
pub struct Resource {
    /// Index into the config's servers.
    pub server: usize,
    pub prm: Option<Doc>,
    /// The `WWW-Authenticate` `/challenge` answers for this path when no token was presented
    /// ([`crate::hint::hint`]), ready to send: a slice of one buffer shared by the server's
    /// paths on this site (the site's `realm` for a `none` server).
    pub hint: HeaderValue,
}

/// Where a config came from and when it was loaded (for `/status`).
#[derive(Debug, Clone)]
pub struct Source {
    /// The config file, or `(demo)`.
    pub path: String,
    /// 1 for the first config loaded, +1 per successful reload.
    pub generation: u64,
    /// Hex SHA-256 of the file's bytes.
    pub content_sha256: String,
    pub loaded_at: SystemTime,
}

/// One public origin's documents and resources. PRMs are keyed by their resource path and AS
/// documents by their issuer path, without the long well-known prefixes.
#[derive(Debug)]
pub struct SiteRoutes {
    pub site: Site,
    /// Full resource path (prefix included) → owner and PRM.
    resources: HashMap<Box<str>, Resource>,
    /// Issuer path without its terminating `/` (empty for a root issuer) → AS document.
    issuers: HashMap<Box<str>, Doc>,
    /// `Bearer realm="<public_url>"`: the challenge for a resource no server owns here.
    pub realm: HeaderValue,
}

impl SiteRoutes {
    /// The document served at a well-known `path` (the path exactly as the registry renders it).
    pub fn document(&self, path: &str) -> Option<&Doc> {
        if let Some(rest) = path.strip_prefix(PRM_PREFIX) {
            let key = if rest.is_empty() { "/" } else { rest };
            if !key.starts_with('/') || rest == "/" {
                return None;
            }
            self.resources.get(key)?.prm.as_ref()
        } else {
            let rest = path.strip_prefix(AS_PREFIX)?;
            (rest.is_empty() || rest.starts_with('/'))
                .then(|| self.issuers.get(rest))
                .flatten()
        }
    }

    /// The document a request path names: [`SiteRoutes::document`], tolerating one trailing `/`.
    pub fn find(&self, path: &str) -> Option<&Doc> {
        self.document(path)
            .or_else(|| self.document(path.strip_suffix('/')?))
    }

    /// Every document with its well-known path.
    pub fn documents(&self) -> Vec<(String, &Doc)> {
        let prms = self
            .resources
            .iter()
            .filter_map(|(path, r)| Some((prm_path(path), r.prm.as_ref()?)));
        let ases = self
            .issuers
            .iter()
            .map(|(path, doc)| (concat(&[AS_PREFIX, path]), doc));
        prms.chain(ases).collect()
    }

    /// The server owning a full resource path, if one does.
    pub fn resource(&self, full_path: &str) -> Option<usize> {
        self.resources.get(full_path).map(|r| r.server)
    }

    /// The resource at a request path as `/challenge` gets it: the query and one trailing `/` are
    /// ignored, the rest must equal a resource path.
    pub fn challenge_resource(&self, path: &str) -> Option<(&str, &Resource)> {
        let end = path.find(['?', '#']).unwrap_or(path.len());
        let path = &path[..end];
        let path = match path.strip_suffix('/') {
            Some(p) if !p.is_empty() => p,
            _ => path,
        };
        self.resources.get_key_value(path).map(|(k, r)| (&**k, r))
    }
}

/// The immutable snapshot served until the next successful reload.
#[derive(Debug)]
pub struct Registry {
    pub source: Source,
    pub config: Config,
    pub sites: Vec<SiteRoutes>,
    /// Lower-case `Host` value → index into `sites` (used when `public_url` is a list).
    hosts: HashMap<Box<str>, usize>,
    /// `origin` → index into `sites` (resolves full URLs given to `/challenge`).
    origins: HashMap<Box<str>, usize>,
    /// The headers of every 200 document (CORS, content type, cache control) with an ETag
    /// placeholder each response replaces.
    pub document_headers: HeaderMap,
    /// The same for a 304 (no content type).
    pub not_modified_headers: HeaderMap,
}

/// The result of looking up a resource for a challenge.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    pub site: &'a SiteRoutes,
    /// The full resource path it was found under and its entry, if a server owns it.
    pub resource: Option<(&'a str, &'a Resource)>,
}

impl Registry {
    /// Renders every document of `config`; facade servers that discover their upstream and have no
    /// endpoints in the config answer 503 until [`Registry::with_upstreams`] supplies them.
    pub fn build(config: Config, source: Source) -> Registry {
        Registry::build_with(config, source, &Documents::new())
    }

    /// The same config rendered again with the upstream documents known now.
    pub fn with_upstreams(&self, upstreams: &Documents) -> Registry {
        Registry::build_with(self.config.clone(), self.source.clone(), upstreams)
    }

    fn build_with(config: Config, source: Source, upstreams: &Documents) -> Registry {
        let mut sites: Vec<SiteRoutes> = config
            .sites
            .iter()
            .map(|site| SiteRoutes {
                site: site.clone(),
                resources: HashMap::default(),
                issuers: HashMap::default(),
                realm: crate::hint::realm(site),
            })
            .collect();
        for (si, site) in config.sites.iter().enumerate() {
            for (idx, server) in config.servers.iter().enumerate() {
                let fulls: Vec<String> = server.paths.iter().map(|p| site.full_path(p)).collect();
                let hints = crate::hint::hints(site, server, &fulls, &sites[si].realm);
                for (full, hint) in fulls.into_iter().zip(hints) {
                    let prm = server.auth.get(si).map(|auth| {
                        let resource = site.resource_url(&full);
                        doc(DocKind::Prm, &render_prm(server, &resource, &auth.issuer))
                    });
                    let resource = Resource {
                        server: idx,
                        prm,
                        hint,
                    };
                    sites[si].resources.insert(full.into(), resource);
                }
                if let Some(auth) = server.auth.get(si) {
                    if let Some(hosted) = &auth.hosted {
                        let upstream = server
                            .upstream_issuer
                            .as_ref()
                            .filter(|_| server.discover)
                            .and_then(|issuer| upstreams.get(issuer));
                        let rendered = render_as(server, &auth.issuer, hosted, upstream);
                        let doc = match rendered {
                            Ok(body) => doc(DocKind::As, &body),
                            Err(why) => pending(&why),
                        };
                        let issuer_path = &hosted.well_known_path[AS_PREFIX.len()..];
                        sites[hosted.site].issuers.insert(issuer_path.into(), doc);
                    }
                }
            }
        }
        let mut hosts = HashMap::default();
        let mut origins = HashMap::default();
        for (i, site) in config.sites.iter().enumerate() {
            for key in &site.host_keys {
                hosts.entry(key.as_str().into()).or_insert(i);
            }
            origins.entry(site.origin.as_str().into()).or_insert(i);
        }
        let cache_control =
            HeaderValue::from_str(&format!("public, max-age={}", config.cache_max_age))
                .expect("a number makes a valid header value");
        let mut not_modified_headers = HeaderMap::with_capacity(3);
        not_modified_headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, crate::http::ANY_ORIGIN);
        not_modified_headers.insert(header::CACHE_CONTROL, cache_control.clone());
        not_modified_headers.insert(header::ETAG, HeaderValue::from_static("\"\""));
        let mut document_headers = not_modified_headers.clone();
        document_headers.insert(header::CONTENT_TYPE, crate::http::JSON);
        Registry {
            source,
            config,
            sites,
            hosts,
            origins,
            document_headers,
            not_modified_headers,
        }
    }

    /// The site a request's `Host` selects: with a single `public_url` every host gets it; with a
    /// list, an unknown or missing host gets `None`.
    pub fn site_for_host(&self, host: Option<&[u8]>) -> Option<&SiteRoutes> {
        if self.config.any_host {
            return self.sites.first();
        }
        let host = host?;
        let index = match std::str::from_utf8(host) {
            Ok(h) if h.bytes().any(|b| b.is_ascii_uppercase()) => {
                self.hosts.get(h.to_ascii_lowercase().as_str())
            }
            Ok(h) => self.hosts.get(h),
            Err(_) => None,
        }?;
        self.sites.get(*index)
    }

    /// The site and resource `/challenge` answers for: `resource` is a full URL (its scheme and
    /// host in any case) or a path resolved on the site `host` selects, else on the first site;
    /// the query and one trailing `/` are ignored. `None` only when the registry has no site.
    pub fn resolve(&self, resource: Option<&str>, host: Option<&[u8]>) -> Option<Resolved<'_>> {
        let fallback = || self.site_for_host(host).or_else(|| self.sites.first());
        let Some(resource) = resource else {
            return Some(Resolved {
                site: fallback()?,
                resource: None,
            });
        };
        if !is_http_url(resource) {
            let site = fallback()?;
            return Some(Resolved {
                site,
                resource: site.challenge_resource(resource),
            });
        }
        let url = Url::parse(resource).ok();
        let site = url
            .as_ref()
            .and_then(|u| self.origins.get(u.origin().ascii_serialization().as_str()))
            .map(|i| &self.sites[*i]);
        Some(match (site, url) {
            (Some(site), Some(url)) => Resolved {
                site,
                resource: site.challenge_resource(url.path()),
            },
            _ => Resolved {
                site: fallback()?,
                resource: None,
            },
        })
    }

    /// The site used for a plain `realm` challenge when nothing else selects one.
    pub fn first_site(&self) -> Option<&SiteRoutes> {
        self.sites.first()
    }
}

/// `http://…` or `https://…`, the scheme in any case (RFC 3986 §3.1; the URL parser lower-cases
/// scheme and host, the path keeps its case).
fn is_http_url(resource: &str) -> bool {
    let b = resource.as_bytes();
    let starts = |p: &[u8]| b.len() >= p.len() && b[..p.len()].eq_ignore_ascii_case(p);
    starts(b"http://") || starts(b"https://")
}

/// The well-known PRM path of a resource at `full_path` (RFC 9728 §3.1).
pub fn prm_path(full_path: &str) -> String {
    if full_path == "/" {
        PRM_PREFIX.to_owned()
    } else {
        concat(&[PRM_PREFIX, full_path])
    }
}

/// The strings joined, in one allocation (`format!` costs more, and a big config builds a million).
pub fn concat(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    parts.iter().for_each(|p| s.push_str(p));
    s
}

/// Renders `value` and its ETag into one allocation (a registry holds hundreds of thousands).
fn doc(kind: DocKind, value: &impl serde::Serialize) -> Doc {
    let mut buf = Vec::with_capacity(512);
    serde_json::to_writer(&mut buf, value).expect("a document serializes");
    let len = buf.len();
    let digest = Sha256::digest(&buf);
    buf.push(b'"');
    buf.extend_from_slice(hex(&digest[..16]).as_bytes());
    buf.push(b'"');
    Doc::new(kind, StatusCode::OK, buf, len)
}

/// The 503 a facade answers until its upstream's endpoints are known; `why` is [`render_as`]'s.
fn pending(why: &str) -> Doc {
    let body = json!({
        "error": "temporarily_unavailable",
        "error_description": format!("{why} (GET /status on the admin listener says more)"),
    });
    let mut data = body.to_string().into_bytes();
    let len = data.len();
    data.extend_from_slice(b"\"pending\"");
    Doc::new(DocKind::As, StatusCode::SERVICE_UNAVAILABLE, data, len)
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// RFC 9728 protected-resource metadata. Never a `null`, empty list or empty string.
#[derive(serde::Serialize)]
struct Prm<'a> {
    resource: &'a str,
    authorization_servers: [&'a str; 1],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    scopes_supported: &'a [String],
    bearer_methods_supported: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_documentation: Option<&'a str>,
}

fn render_prm<'a>(server: &'a Server, resource: &'a str, issuer: &'a str) -> Prm<'a> {
    Prm {
        resource,
        authorization_servers: [issuer],
        scopes_supported: &server.scopes,
        bearer_methods_supported: ["header"],
        resource_name: server.resource_name.as_deref(),
        resource_documentation: server.resource_documentation.as_deref(),
    }
}

/// RFC 8414 metadata for a facade or gateway issuer; `issuer` is the URL it is served under.
/// A facade takes what its config leaves out from the upstream's document (whose values already
/// passed the config's rules, see `upstream::discover::sanitize`); `Err` says why the
/// authorization or token endpoint is still unknown: what `/status` and the 503 tell.
pub fn render_as(
    server: &Server,
    issuer: &str,
    hosted: &HostedAs,
    relay: Option<&Relay>,
) -> Result<Value, String> {
    let upstream = relay.and_then(|r| r.document.as_deref());
    let from_upstream = |key: &str| upstream.and_then(|u| u.get(key)).filter(|v| !is_empty(v));
    let missing = |key: &str| -> String {
        let upstream_issuer = server.upstream_issuer.as_deref().unwrap_or("");
        match relay {
            None => format!(
                "signpost has not fetched the metadata of upstream {upstream_issuer} yet; retry shortly"
            ),
            Some(Relay {
                document: None,
                failure: Some(f),
                ..
            }) => format!("rejected: {}: {}", f.code, f.message),
            Some(Relay { document: None, .. }) => format!(
                "signpost has not fetched the metadata of upstream {upstream_issuer} yet; retry shortly"
            ),
            Some(r) => match r.dropped.iter().find(|(k, _)| k == key) {
                Some((_, why)) => format!(
                    "rejected: invalid_upstream_value: the metadata of upstream {upstream_issuer} has {key} that {why}; set {key} in the config"
                ),
                None => format!(
                    "rejected: the metadata of upstream {upstream_issuer} has no {key}; set it in the config"
                ),
            },
        }
    };
    let url = |configured: &str, key: &str| -> Option<Value> {
        if configured.is_empty() {
            from_upstream(key).filter(|v| v.is_string()).cloned()
        } else {
            Some(json!(configured))
        }
    };
    let mut m = Map::new();
    m.insert("issuer".into(), json!(issuer));
    m.insert(
        "authorization_endpoint".into(),
        url(&hosted.authorization_endpoint, "authorization_endpoint")
            .ok_or_else(|| missing("authorization_endpoint"))?,
    );
    m.insert(
        "token_endpoint".into(),
        url(&hosted.token_endpoint, "token_endpoint").ok_or_else(|| missing("token_endpoint"))?,
    );
    if let Some(r) = url(
        hosted.registration_endpoint.as_deref().unwrap_or(""),
        "registration_endpoint",
    ) {
        m.insert("registration_endpoint".into(), r);
    }
    m.insert("response_types_supported".into(), json!(["code"]));
    m.insert(
        "grant_types_supported".into(),
        json!(["authorization_code", "refresh_token"]),
    );
    m.insert("code_challenge_methods_supported".into(), json!(["S256"]));
    if !hosted.token_endpoint_auth_methods_supported.is_empty() {
        m.insert(
            "token_endpoint_auth_methods_supported".into(),
            json!(hosted.token_endpoint_auth_methods_supported),
        );
    }
    for key in [
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint",
    ] {
        if !m.contains_key(key) {
            if let Some(v) = from_upstream(key) {
                m.insert(key.into(), v.clone());
            }
        }
    }
    // The config's setting wins; a facade without one relays the upstream's.
    let cimd = hosted
        .client_id_metadata_document_supported
        .unwrap_or_else(|| {
            from_upstream("client_id_metadata_document_supported") == Some(&Value::Bool(true))
        });
    if cimd {
        m.insert("client_id_metadata_document_supported".into(), json!(true));
        // A client that names itself by its metadata document's URL has no secret: it
        // authenticates with `none`, which must stay advertised.
        match m.get_mut("token_endpoint_auth_methods_supported") {
            Some(Value::Array(list)) if !list.iter().any(|v| v == "none") => {
                list.push(json!("none"))
            }
            Some(_) => {}
            None => {
                m.insert(
                    "token_endpoint_auth_methods_supported".into(),
                    json!(["none"]),
                );
            }
        }
    }
    // The server's scopes; without any, a facade carries the upstream's (never into the PRM: a
    // PRM's scopes_supported is what the resource needs, not what the IdP offers).
    if !server.scopes.is_empty() {
        m.insert("scopes_supported".into(), json!(server.scopes));
    } else if let Some(v) = from_upstream("scopes_supported").filter(|v| v.is_array()) {
        m.insert("scopes_supported".into(), v.clone());
    }
    debug_assert!(server.mode == ModeKind::Facade || server.mode == ModeKind::Gateway);
    Ok(Value::Object(m))
}

/// `null`, `""`, `[]` or `{}`: values a document must never carry.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}
