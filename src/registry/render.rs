//! Building a [`Registry`]: every document of a config rendered into per-server buffers (each
//! PRM followed by its ETag, then the server's `/challenge` hints), sharing with the snapshot it
//! replaces every buffer whose bytes come out the same, from a whole config or from servers
//! expanded one at a time ([`Registry::build_streamed`]); the PRM and AS documents themselves.

use std::sync::Arc;

use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::{self, HeaderMap, HeaderValue};
use rustc_hash::FxHashMap as HashMap;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{Doc, Owners, Registry, Resource, SiteRoutes, Source, Stored, Table, len32};
use crate::config::{Config, ExpandedServers, HostedAs, ModeKind, Server, Site};
use crate::upstream::{Documents, Relay};
use crate::well_known::{AS_PREFIX, PRM_PREFIX};

/// Renders one server's bytes on one site into a scratch buffer, then keeps them as the buffer
/// the snapshot being replaced already holds when they came out the same.
struct BlockBuilder<'p> {
    scratch: Vec<u8>,
    /// The same site of the snapshot being replaced, if any.
    previous: Option<&'p SiteRoutes>,
}

impl BlockBuilder<'_> {
    /// The block for `scratch`: the previous snapshot's when its bytes are equal (`key` is one of
    /// the server's paths there), else a new exact-size buffer.
    fn finish(&mut self, key: &str) -> Bytes {
        let reused = self.previous.and_then(|p| {
            let r = p.resources.get(key)?;
            let old = p.blocks.get(r.block as usize)?;
            (old[..] == self.scratch[..]).then(|| old.clone())
        });
        let block = reused.unwrap_or_else(|| Bytes::copy_from_slice(&self.scratch));
        self.scratch.clear();
        block
    }
}

impl Registry {
    /// Renders every document of `config`; facade servers that discover their upstream and have no
    /// endpoints in the config answer 503 until [`Registry::with_upstreams`] supplies them.
    pub fn build(config: Config, source: Source) -> Registry {
        Registry::build_with(Arc::new(config), source, &Documents::new(), None)
    }

    /// [`Registry::build`] with the upstream documents known now, sharing with `previous` (the
    /// snapshot this one replaces) every buffer whose bytes come out the same: during the swap
    /// only what changed exists twice.
    pub fn build_after(
        config: Config,
        source: Source,
        upstreams: &Documents,
        previous: &Registry,
    ) -> Registry {
        Registry::build_with(Arc::new(config), source, upstreams, Some(previous))
    }

    /// Whether this snapshot was rendered with exactly `upstreams` (what [`render_as`] reads of
    /// them), so rendering it again with them would change nothing.
    pub fn rendered_with(&self, upstreams: &Documents) -> bool {
        let same = |a: &Relay, b: &Relay| {
            let doc = match (&a.document, &b.document) {
                (Some(x), Some(y)) => Arc::ptr_eq(x, y) || x == y,
                (None, None) => true,
                _ => false,
            };
            let failure = match (&a.failure, &b.failure) {
                (Some(x), Some(y)) => x.code == y.code && x.message == y.message,
                (None, None) => true,
                _ => false,
            };
            doc && failure && a.dropped == b.dropped
        };
        self.rendered_with.len() == upstreams.len()
            && upstreams
                .iter()
                .all(|(k, b)| self.rendered_with.get(k).is_some_and(|a| same(a, b)))
    }

    /// The same config rendered again with the upstream documents known now; `None` for a
    /// snapshot whose config kept only what answering reads (no server discovers: nothing in it
    /// depends on upstream documents, and its paths are gone).
    pub fn with_upstreams(&self, upstreams: &Documents) -> Option<Registry> {
        (!self.slim).then(|| {
            Registry::build_with(
                self.config.clone(),
                self.source.clone(),
                upstreams,
                Some(self),
            )
        })
    }

    /// A snapshot of a config whose servers come one at a time (`servers`, each dropped once
    /// rendered), with none discovering its upstream: what `serve` builds, so that during a
    /// reload the expanded servers never exist all at once beside the served snapshot.
    /// `previous` is the snapshot this one replaces.
    pub fn build_streamed(
        head: Config,
        servers: ExpandedServers,
        source: Source,
        previous: Option<&Registry>,
    ) -> Registry {
        debug_assert!(head.servers.is_empty() && !servers.discovers());
        let mut b = Builder::new(
            &head,
            servers.len(),
            servers.paths(),
            servers.hosting(),
            previous,
        );
        let none = Documents::new();
        for (idx, server) in servers.enumerate() {
            b.owners.push(&server);
            for si in 0..head.sites.len() {
                b.add(&head, si, idx, &server, &none);
            }
        }
        b.finish(Arc::new(head), source, &none, true)
    }

    fn build_with(
        mut config: Arc<Config>,
        source: Source,
        upstreams: &Documents,
        previous: Option<&Registry>,
    ) -> Registry {
        // Nothing renders this config again unless an upstream is discovered
        // (`with_upstreams`): `owners` keeps what answering reads of each server, which is
        // released once its last site is rendered, and the servers are dropped at the end.
        let slim =
            crate::upstream::wanted(&config).is_empty() && Arc::get_mut(&mut config).is_some();
        let paths: usize = config.servers.iter().map(|s| s.paths.len()).sum();
        let hosting = config
            .servers
            .iter()
            .flat_map(|s| &s.auth)
            .filter(|a| a.hosted.is_some())
            .count();
        let mut b = Builder::new(&config, config.servers.len(), paths, hosting, previous);
        config.servers.iter().for_each(|s| b.owners.push(s));
        let last_site = config.sites.len().saturating_sub(1);
        for si in 0..config.sites.len() {
            for idx in 0..config.servers.len() {
                b.add(&config, si, idx, &config.servers[idx], upstreams);
                if slim && si == last_site {
                    if let Some(config) = Arc::get_mut(&mut config) {
                        config.servers[idx].release();
                    }
                }
            }
        }
        if slim {
            if let Some(config) = Arc::get_mut(&mut config) {
                config.servers = Vec::new();
            }
        }
        b.finish(config, source, upstreams, slim)
    }
}

/// A snapshot being rendered, server by server and site by site.
struct Builder<'p> {
    sites: Vec<SiteRoutes>,
    /// One per site: its scratch buffer and the previous snapshot's same site.
    blocks: Vec<BlockBuilder<'p>>,
    owners: Owners,
    fulls: Vec<String>,
    spans: Vec<(u32, u32, u32)>,
    url: String,
}

impl<'p> Builder<'p> {
    /// `hosting` counts the hosted issuers of a single site (unused with several).
    fn new(
        config: &Config,
        servers: usize,
        paths: usize,
        hosting: usize,
        previous: Option<&'p Registry>,
    ) -> Builder<'p> {
        let sites = config
            .sites
            .iter()
            .map(|site| SiteRoutes {
                site: site.clone(),
                resources: Table::with_capacity(paths),
                blocks: Vec::with_capacity(servers),
                issuers: Table::with_capacity(if config.sites.len() == 1 { hosting } else { 0 }),
                realm: crate::hint::realm(site),
            })
            .collect();
        // The previous snapshot's site at each index, if it is the same origin and prefix.
        let blocks = config
            .sites
            .iter()
            .enumerate()
            .map(|(si, site)| BlockBuilder {
                scratch: Vec::with_capacity(4096),
                previous: previous
                    .and_then(|p| p.sites.get(si))
                    .filter(|p| p.site.origin == site.origin && p.site.prefix == site.prefix),
            })
            .collect();
        Builder {
            sites,
            blocks,
            owners: Owners::with_capacity(servers),
            fulls: Vec::new(),
            spans: Vec::new(),
            url: String::new(),
        }
    }

    /// Renders server `idx` on site `si`: its PRMs and hints, and the AS document it hosts.
    fn add(
        &mut self,
        config: &Config,
        si: usize,
        idx: usize,
        server: &Server,
        upstreams: &Documents,
    ) {
        let site = &config.sites[si];
        let Builder {
            sites,
            blocks,
            fulls,
            spans,
            url,
            ..
        } = self;
        let builder = &mut blocks[si];
        fulls.clear();
        fulls.extend(server.paths.iter().map(|p| site.full_path(p)));
        // Each path's PRM (body, ETag) and hint, back to back.
        spans.clear();
        let auth = server.auth.get(si);
        for full in fulls.iter() {
            let start = len32(builder.scratch.len());
            let body_len = match auth {
                Some(auth) => {
                    url.clear();
                    url.push_str(&site.origin);
                    if full != "/" {
                        url.push_str(full);
                    }
                    let prm = render_prm(server, url, &auth.issuer);
                    let old = builder.previous.and_then(|p| p.prm(p.resources.get(full)?));
                    render_doc(&mut builder.scratch, &prm, old)
                }
                None => 0,
            };
            let hint_start = len32(builder.scratch.len());
            if server.mode != ModeKind::None {
                push_hint(&mut builder.scratch, site, server, full);
            }
            spans.push((start, body_len, hint_start));
        }
        if let Some(first) = fulls.first() {
            let block = builder.finish(first);
            let b = len32(sites[si].blocks.len());
            for (i, full) in fulls.iter().enumerate() {
                let (start, body_len, hint_start) = spans[i];
                let hint_end = spans.get(i + 1).map_or(len32(block.len()), |next| next.0);
                let hint = if server.mode == ModeKind::None {
                    sites[si].realm.clone()
                } else {
                    HeaderValue::from_maybe_shared(
                        block.slice(hint_start as usize..hint_end as usize),
                    )
                    .unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
                };
                let resource = Resource {
                    server: len32(idx),
                    hint,
                    block: b,
                    start,
                    body_len,
                };
                sites[si].resources.insert(full, resource);
            }
            sites[si].blocks.push(block);
        }
        if let Some((auth, hosted)) = auth.and_then(|a| a.hosted.as_ref().map(|h| (a, h))) {
            let upstream = server
                .upstream_issuer
                .as_ref()
                .filter(|_| server.discover)
                .and_then(|issuer| upstreams.get(issuer));
            let issuer_path = &hosted.well_known_path[AS_PREFIX.len()..];
            let previous = blocks[hosted.site].previous;
            let old = previous
                .and_then(|p| p.issuers.get(issuer_path))
                .map(Stored::doc);
            let scratch = &mut blocks[si].scratch;
            let stored = match render_as(server, &auth.issuer, hosted, upstream) {
                Ok(body) => {
                    let len = render_doc(scratch, &body, old);
                    (StatusCode::OK, len)
                }
                Err(why) => (StatusCode::SERVICE_UNAVAILABLE, pending_into(scratch, &why)),
            };
            let (status, body_len) = stored;
            let old = previous
                .and_then(|p| p.issuers.get(issuer_path))
                .filter(|old| old.status == status && old.data[..] == scratch[..]);
            let data = match old {
                Some(old) => old.data.clone(),
                None => Bytes::copy_from_slice(scratch),
            };
            scratch.clear();
            sites[hosted.site].issuers.insert(
                issuer_path,
                Stored {
                    status,
                    data,
                    body_len,
                },
            );
        }
    }

    fn finish(
        self,
        config: Arc<Config>,
        source: Source,
        upstreams: &Documents,
        slim: bool,
    ) -> Registry {
        let Builder {
            mut sites,
            mut owners,
            ..
        } = self;
        owners.shrink_to_fit();
        for site in &mut sites {
            site.resources.shrink_to_fit();
            site.blocks.shrink_to_fit();
            site.issuers.shrink_to_fit();
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
        // The ETag placeholder first: each response replaces the first entry.
        let mut not_modified_headers = HeaderMap::with_capacity(3);
        not_modified_headers.insert(header::ETAG, HeaderValue::from_static("\"\""));
        not_modified_headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, crate::http::ANY_ORIGIN);
        not_modified_headers.insert(header::CACHE_CONTROL, cache_control.clone());
        let mut document_headers = not_modified_headers.clone();
        document_headers.insert(header::CONTENT_TYPE, crate::http::JSON);
        let head = |status: StatusCode, headers: HeaderMap| {
            let (mut parts, ()) = hyper::Response::new(()).into_parts();
            parts.status = status;
            parts.headers = headers;
            parts
        };
        Registry {
            source,
            config,
            sites,
            owners,
            hosts,
            origins,
            document_head: head(StatusCode::OK, document_headers),
            not_modified_head: head(StatusCode::NOT_MODIFIED, not_modified_headers),
            rendered_with: upstreams.clone(),
            slim,
        }
    }
}

/// Appends `value` and its ETag to `out`; returns the body's length. The ETag is `old`'s when
/// `old` has the same body (a reload re-hashes only what changed).
fn render_doc(out: &mut Vec<u8>, value: &impl serde::Serialize, old: Option<Doc<'_>>) -> u32 {
    let start = out.len();
    serde_json::to_writer(&mut *out, value).expect("a document serializes");
    let len = len32(out.len() - start);
    match old.filter(|d| d.status == StatusCode::OK && d.body_bytes() == &out[start..]) {
        Some(old) => out.extend_from_slice(old.etag_bytes()),
        None => {
            // base64url: every character is valid in an entity tag (RFC 9110 §8.8.3).
            const DIGITS: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let digest = Sha256::digest(&out[start..]);
            let mut bits = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
            let mut tag = [0u8; super::ETAG_LEN as usize];
            tag[0] = b'"';
            tag[tag.len() - 1] = b'"';
            // 11 digits of 6 bits (the first carries the 4 left over), most significant first.
            let last = tag.len() - 1;
            for c in tag[1..last].iter_mut().rev() {
                *c = DIGITS[(bits & 63) as usize];
                bits >>= 6;
            }
            out.extend_from_slice(&tag);
        }
    }
    len
}

/// Appends [`crate::hint::hint`] for a server that is not `none` (the same bytes, tested
/// below; this one writes in place instead of building strings, 300,000 times for a big config).
fn push_hint(out: &mut Vec<u8>, site: &Site, server: &Server, full_path: &str) {
    out.extend_from_slice(b"Bearer resource_metadata=\"");
    push_quoted(out, &site.origin);
    push_quoted(out, PRM_PREFIX);
    if full_path != "/" {
        push_quoted(out, full_path);
    }
    out.push(b'"');
    if !server.scopes.is_empty() {
        out.extend_from_slice(b", scope=\"");
        for (i, scope) in server.scopes.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            push_quoted(out, scope);
        }
        out.push(b'"');
    }
}

/// Appends `value` as the inside of a quoted string: `\` and `"` escaped, control characters
/// dropped (as `hint::push_param` does).
pub(super) fn push_quoted(out: &mut Vec<u8>, value: &str) {
    let plain = |b: &u8| b.is_ascii() && !b.is_ascii_control() && *b != b'"' && *b != b'\\';
    if value.as_bytes().iter().all(plain) {
        out.extend_from_slice(value.as_bytes());
        return;
    }
    for c in value.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push(b'\\');
        }
        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    }
}

/// Appends the 503 a facade answers until its upstream's endpoints are known (`why` is
/// [`render_as`]'s) and its ETag; returns the body's length.
fn pending_into(out: &mut Vec<u8>, why: &str) -> u32 {
    let body = json!({
        "error": "temporarily_unavailable",
        "error_description": format!("{why} (GET /status on the admin listener says more)"),
    });
    let start = out.len();
    serde_json::to_writer(&mut *out, &body).expect("a document serializes");
    let len = len32(out.len() - start);
    out.extend_from_slice(b"\"pending\"");
    len
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
