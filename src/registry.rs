//! The served snapshot: every discovery document of a config rendered once into response bytes
//! with its ETag. Per site (`public_url`), one table from resource path to its owning server and
//! PRM (also the index `/challenge` resolves resources with) and one from issuer path to AS
//! document. A `Registry` is immutable; a reload builds a new one and swaps it in whole (see
//! `state.rs`), so a request only ever sees one config.
//!
//! # Memory
//!
//! A registry of 100,000 servers holds 300,000 PRMs, so the layout is compact: per site and
//! server, one buffer ([`SiteRoutes`] `blocks`) holds the server's PRMs with their ETags and its
//! `/challenge` hints back to back; a table maps each path to a small [`Resource`] pointing into
//! it ([`Table`]: the keys in one string, the values in one `Vec`, a hash index of `u32`s). A
//! build given the snapshot it replaces reuses every buffer whose bytes came out the same, so
//! during a reload the old and new snapshot share what did not change.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use hashbrown::HashTable;
use hyper::StatusCode;
use hyper::header::{self, HeaderMap, HeaderValue};
use rustc_hash::FxBuildHasher;
use rustc_hash::FxHashMap as HashMap;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use crate::config::{Config, HostedAs, ModeKind, Server, Site};
use crate::upstream::{Documents, Relay};
use crate::well_known::{AS_PREFIX, PRM_PREFIX, prm_path};

/// What a served document is; also the `kind` label of `signpost_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Prm,
    As,
}

/// One ready response, borrowed from the registry: the body and its ETag, adjacent in one of the
/// registry's buffers.
#[derive(Debug, Clone, Copy)]
pub struct Doc<'a> {
    pub kind: DocKind,
    /// 200, or 503 for a facade whose upstream endpoints are not known yet.
    pub status: StatusCode,
    data: &'a Bytes,
    start: u32,
    body_end: u32,
    end: u32,
}

impl Doc<'_> {
    #[inline]
    fn body_bytes(&self) -> &[u8] {
        &self.data[self.start as usize..self.body_end as usize]
    }

    #[inline]
    pub fn body(&self) -> Bytes {
        self.data.slice(self.start as usize..self.body_end as usize)
    }

    /// The ETag as sent: `"<first 128 bits of the body's SHA-256, hex>"`.
    #[inline]
    pub fn etag_bytes(&self) -> &[u8] {
        &self.data[self.body_end as usize..self.end as usize]
    }

    #[inline]
    pub fn etag(&self) -> HeaderValue {
        HeaderValue::from_maybe_shared(self.data.slice(self.body_end as usize..self.end as usize))
            .expect("a quoted hex tag is a valid header value")
    }
}

/// An AS document (or its 503) as stored: the body, then the ETag, in one allocation.
#[derive(Debug, Clone)]
struct Stored {
    status: StatusCode,
    data: Bytes,
    body_len: u32,
}

impl Stored {
    fn doc(&self) -> Doc<'_> {
        Doc {
            kind: DocKind::As,
            status: self.status,
            data: &self.data,
            start: 0,
            body_end: self.body_len,
            end: len32(self.data.len()),
        }
    }
}

/// A resource path of a site: the server that owns it and, unless its mode is `none`, where its
/// PRM lies in the site's buffer of that server.
#[derive(Debug, Clone)]
pub struct Resource {
    /// Index into the config's servers.
    pub server: usize,
    /// The `WWW-Authenticate` `/challenge` answers for this path when no token was presented
    /// ([`crate::hint::hint`]), ready to send: a slice of the server's buffer on this site
    /// (the site's `realm` for a `none` server).
    pub hint: HeaderValue,
    /// Index into the site's `blocks`.
    block: u32,
    /// The PRM body's offset in the block; its ETag follows it.
    start: u32,
    body_len: u32,
    has_prm: bool,
}

/// Length of an ETag as sent: 32 hex digits in quotes.
const ETAG_LEN: u32 = 34;

/// A string-keyed table laid out for hundreds of thousands of entries: the keys back to back in
/// one string, the values in one `Vec`, and a hash index of `u32` positions (5 bytes a slot
/// instead of a key and a value per slot). Inserting a key again replaces its value.
#[derive(Debug)]
struct Table<V> {
    index: HashTable<u32>,
    keys: String,
    /// Start and end of each value's key in `keys`.
    spans: Vec<(u32, u32)>,
    values: Vec<V>,
}

/// The index's hash of a key (of its bytes: lookups hash the request's bytes the same way).
#[inline]
fn hash(key: &[u8]) -> u64 {
    FxBuildHasher.hash_one(key)
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).expect("a snapshot is far smaller than 4 GiB")
}

impl<V> Table<V> {
    fn with_capacity(n: usize) -> Table<V> {
        Table {
            index: HashTable::with_capacity(n),
            keys: String::new(),
            spans: Vec::with_capacity(n),
            values: Vec::with_capacity(n),
        }
    }

    fn key(&self, i: usize) -> &str {
        let (s, e) = self.spans[i];
        &self.keys[s as usize..e as usize]
    }

    #[inline]
    fn position(&self, key: &str) -> Option<usize> {
        let (keys, spans) = (self.keys.as_bytes(), &self.spans);
        let key = key.as_bytes();
        self.index
            .find(hash(key), |&i| {
                let (s, e) = spans[i as usize];
                keys.get(s as usize..e as usize) == Some(key)
            })
            .map(|&i| i as usize)
    }

    #[inline]
    fn get(&self, key: &str) -> Option<&V> {
        self.position(key).map(|i| &self.values[i])
    }

    fn get_key_value(&self, key: &str) -> Option<(&str, &V)> {
        self.position(key).map(|i| (self.key(i), &self.values[i]))
    }

    fn insert(&mut self, key: &str, value: V) {
        if let Some(i) = self.position(key) {
            self.values[i] = value;
            return;
        }
        let i = len32(self.values.len());
        let start = len32(self.keys.len());
        self.keys.push_str(key);
        self.spans.push((start, len32(self.keys.len())));
        self.values.push(value);
        let (keys, spans) = (&self.keys, &self.spans);
        self.index.insert_unique(hash(key.as_bytes()), i, |&j| {
            let (s, e) = spans[j as usize];
            hash(&keys.as_bytes()[s as usize..e as usize])
        });
    }

    fn shrink_to_fit(&mut self) {
        self.keys.shrink_to_fit();
        self.spans.shrink_to_fit();
        self.values.shrink_to_fit();
        let (keys, spans) = (&self.keys, &self.spans);
        self.index.shrink_to_fit(|&j| {
            let (s, e) = spans[j as usize];
            hash(&keys.as_bytes()[s as usize..e as usize])
        });
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        (0..self.values.len()).map(|i| (self.key(i), &self.values[i]))
    }
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
    resources: Table<Resource>,
    /// Per server with any path here: its PRMs (each followed by its ETag) and hints, in one
    /// buffer the `Resource`s point into.
    blocks: Vec<Bytes>,
    /// Issuer path without its terminating `/` (empty for a root issuer) → AS document.
    issuers: Table<Stored>,
    /// `Bearer realm="<public_url>"`: the challenge for a resource no server owns here.
    pub realm: HeaderValue,
}

impl SiteRoutes {
    /// The document served at a well-known `path` (the path exactly as the registry renders it).
    #[inline]
    pub fn document(&self, path: &str) -> Option<Doc<'_>> {
        if let Some(rest) = path.strip_prefix(PRM_PREFIX) {
            let key = if rest.is_empty() { "/" } else { rest };
            if !key.starts_with('/') || rest == "/" {
                return None;
            }
            self.prm(self.resources.get(key)?)
        } else {
            let rest = path.strip_prefix(AS_PREFIX)?;
            (rest.is_empty() || rest.starts_with('/'))
                .then(|| self.issuers.get(rest))
                .flatten()
                .map(Stored::doc)
        }
    }

    #[inline]
    fn prm(&self, r: &Resource) -> Option<Doc<'_>> {
        r.has_prm.then(|| Doc {
            kind: DocKind::Prm,
            status: StatusCode::OK,
            data: &self.blocks[r.block as usize],
            start: r.start,
            body_end: r.start + r.body_len,
            end: r.start + r.body_len + ETAG_LEN,
        })
    }

    /// The document a request path names: [`SiteRoutes::document`], tolerating one trailing `/`.
    pub fn find(&self, path: &str) -> Option<Doc<'_>> {
        self.document(path)
            .or_else(|| self.document(path.strip_suffix('/')?))
    }

    /// Every document with its well-known path.
    pub fn documents(&self) -> Vec<(String, Doc<'_>)> {
        let prms = self
            .resources
            .iter()
            .filter_map(|(path, r)| Some((prm_path(path), self.prm(r)?)));
        let ases = self
            .issuers
            .iter()
            .map(|(path, doc)| (concat(&[AS_PREFIX, path]), doc.doc()));
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
        self.resources.get_key_value(path)
    }
}

/// The immutable snapshot served until the next successful reload.
#[derive(Debug)]
pub struct Registry {
    pub source: Source,
    /// Shared with the snapshots re-rendered from it when upstream documents change.
    pub config: Arc<Config>,
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
    /// The upstream documents the facades were rendered with.
    rendered_with: Documents,
}

/// The result of looking up a resource for a challenge.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    pub site: &'a SiteRoutes,
    /// The full resource path it was found under and its entry, if a server owns it.
    pub resource: Option<(&'a str, &'a Resource)>,
}

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

    /// The same config rendered again with the upstream documents known now.
    pub fn with_upstreams(&self, upstreams: &Documents) -> Registry {
        Registry::build_with(
            self.config.clone(),
            self.source.clone(),
            upstreams,
            Some(self),
        )
    }

    fn build_with(
        config: Arc<Config>,
        source: Source,
        upstreams: &Documents,
        previous: Option<&Registry>,
    ) -> Registry {
        let paths: usize = config.servers.iter().map(|s| s.paths.len()).sum();
        let hosted = config
            .servers
            .iter()
            .flat_map(|s| &s.auth)
            .filter(|a| a.hosted.is_some())
            .count();
        let mut sites: Vec<SiteRoutes> = config
            .sites
            .iter()
            .map(|site| SiteRoutes {
                site: site.clone(),
                resources: Table::with_capacity(paths),
                blocks: Vec::with_capacity(config.servers.len()),
                issuers: Table::with_capacity(if config.sites.len() == 1 { hosted } else { 0 }),
                realm: crate::hint::realm(site),
            })
            .collect();
        // The previous snapshot's site at the same index, if it is the same origin and prefix.
        let previous_site = |si: usize| {
            previous
                .and_then(|p| p.sites.get(si))
                .filter(|p| p.site.origin == config.sites[si].origin)
                .filter(|p| p.site.prefix == config.sites[si].prefix)
        };
        let mut fulls: Vec<String> = Vec::new();
        let mut spans: Vec<(u32, u32, u32, bool)> = Vec::new();
        let mut url = String::new();
        for (si, site) in config.sites.iter().enumerate() {
            let mut builder = BlockBuilder {
                scratch: Vec::with_capacity(4096),
                previous: previous_site(si),
            };
            for (idx, server) in config.servers.iter().enumerate() {
                fulls.clear();
                fulls.extend(server.paths.iter().map(|p| site.full_path(p)));
                // Each path's PRM (body, ETag) and hint, back to back.
                spans.clear();
                let auth = server.auth.get(si);
                for full in &fulls {
                    let start = len32(builder.scratch.len());
                    let body_len = match auth {
                        Some(auth) => {
                            url.clear();
                            url.push_str(&site.origin);
                            if full != "/" {
                                url.push_str(full);
                            }
                            let prm = render_prm(server, &url, &auth.issuer);
                            let old = builder.previous.and_then(|p| p.prm(p.resources.get(full)?));
                            render_doc(&mut builder.scratch, &prm, old)
                        }
                        None => 0,
                    };
                    let hint_start = len32(builder.scratch.len());
                    if server.mode != ModeKind::None {
                        push_hint(&mut builder.scratch, site, server, full);
                    }
                    spans.push((start, body_len, hint_start, auth.is_some()));
                }
                if let Some(first) = fulls.first() {
                    let block = builder.finish(first);
                    let b = len32(sites[si].blocks.len());
                    for (i, full) in fulls.iter().enumerate() {
                        let (start, body_len, hint_start, has_prm) = spans[i];
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
                            server: idx,
                            hint,
                            block: b,
                            start,
                            body_len,
                            has_prm,
                        };
                        sites[si].resources.insert(full, resource);
                    }
                    sites[si].blocks.push(block);
                }
                if let Some(hosted) = auth.and_then(|a| a.hosted.as_ref().map(|h| (a, h))) {
                    let (auth, hosted) = hosted;
                    let upstream = server
                        .upstream_issuer
                        .as_ref()
                        .filter(|_| server.discover)
                        .and_then(|issuer| upstreams.get(issuer));
                    let issuer_path = &hosted.well_known_path[AS_PREFIX.len()..];
                    let old = previous_site(hosted.site)
                        .and_then(|p| p.issuers.get(issuer_path))
                        .map(Stored::doc);
                    let stored = match render_as(server, &auth.issuer, hosted, upstream) {
                        Ok(body) => {
                            let len = render_doc(&mut builder.scratch, &body, old);
                            (StatusCode::OK, len)
                        }
                        Err(why) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            pending_into(&mut builder.scratch, &why),
                        ),
                    };
                    let (status, body_len) = stored;
                    let old = previous_site(hosted.site)
                        .and_then(|p| p.issuers.get(issuer_path))
                        .filter(|old| old.status == status && old.data[..] == builder.scratch[..]);
                    let data = match old {
                        Some(old) => old.data.clone(),
                        None => Bytes::copy_from_slice(&builder.scratch),
                    };
                    builder.scratch.clear();
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
        }
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
            rendered_with: upstreams.clone(),
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

/// The strings joined, in one allocation (`format!` costs more, and a big config builds a million).
fn concat(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    parts.iter().for_each(|p| s.push_str(p));
    s
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
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            let digest = Sha256::digest(&out[start..]);
            out.push(b'"');
            for b in &digest[..16] {
                out.extend_from_slice(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]]);
            }
            out.push(b'"');
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
fn push_quoted(out: &mut Vec<u8>, value: &str) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every mode, two sites (one with a prefix), a server at `/`, scopes, a documentation URL.
    fn config(variant: &str, extra: &str) -> String {
        format!(
            r#"{{
  "public_url": ["https://a.example.com", "https://b.example.com:8443/gw"],
  "servers": {{
    "atlassian": {{ "mode": "delegate", "issuer": "https://auth.atlassian.com",
                   "scopes": ["read:jira-work", "write:jira-work"], "resource_name": "Atlassian {variant}",
                   "resource_documentation": "https://developer.atlassian.com/mcp" }},
    "keycloak":  {{ "mode": "delegate", "issuer": "https://sso.example.com/realms/eng" }},
    "eng-tools": {{ "mode": "facade", "issuer": "https://sso.example.com/realms/eng",
                   "authorization_endpoint": "https://sso.example.com/realms/eng/auth",
                   "token_endpoint": "https://sso.example.com/realms/eng/token",
                   "scopes": ["openid"] }},
    "github":    {{ "mode": "gateway", "scopes": ["repo"] }},
    "docs":      {{ "mode": "none" }},
    "home":      {{ "mode": "delegate", "issuer": "https://idp.example.com", "resource_paths": ["/"] }}
    {extra}
  }}
}}"#
        )
    }

    fn build(text: &str, previous: Option<&Registry>) -> Registry {
        let config = crate::config::parse(text, "test.json").expect("valid");
        let source = Source {
            path: "test.json".into(),
            generation: 1,
            content_sha256: String::new(),
            loaded_at: SystemTime::now(),
        };
        match previous {
            Some(p) => Registry::build_after(config, source, &Documents::new(), p),
            None => Registry::build(config, source),
        }
    }

    /// Every answer of a snapshot: per site, each document (status, body, ETag) and each resource's
    /// owner and hint.
    fn answers(r: &Registry) -> Vec<Vec<(String, String)>> {
        r.sites
            .iter()
            .map(|site| {
                let mut all: Vec<(String, String)> = site
                    .documents()
                    .into_iter()
                    .map(|(path, d)| {
                        let body = String::from_utf8(d.body().to_vec()).unwrap();
                        let etag = String::from_utf8(d.etag_bytes().to_vec()).unwrap();
                        (path, format!("{} {etag} {body}", d.status))
                    })
                    .collect();
                all.extend(site.resources.iter().map(|(full, res)| {
                    let hint = res.hint.to_str().unwrap().to_owned();
                    (full.to_owned(), format!("{} {hint}", res.server))
                }));
                all.sort();
                all
            })
            .collect()
    }

    #[test]
    fn hints_are_the_challenge_hint_of_every_resource() {
        let r = build(&config("v0", ""), None);
        let mut checked = 0;
        for site in &r.sites {
            for (full, res) in site.resources.iter() {
                let server = &r.config.servers[res.server];
                let expected = crate::hint::hint(&site.site, server, full);
                assert_eq!(res.hint.to_str().unwrap(), expected, "{full}");
                checked += 1;
            }
        }
        assert!(checked > 20, "{checked}");
        let mut quoted = Vec::new();
        push_quoted(&mut quoted, "a\"b\\c\r\nd\u{85}é");
        assert_eq!(String::from_utf8(quoted).unwrap(), r#"a\"b\\cdé"#);
    }

    #[test]
    fn a_build_after_the_served_snapshot_answers_the_same_and_shares_what_did_not_change() {
        let a = build(&config("v0", ""), None);
        let extra = r#", "new": { "mode": "gateway" }"#;
        let text = config("v1", extra);
        let fresh = build(&text, None);
        let after = build(&text, Some(&a));
        assert_eq!(answers(&after), answers(&fresh));
        assert_ne!(answers(&after), answers(&a));
        // Again from itself: everything shared.
        let again = build(&text, Some(&after));
        assert_eq!(answers(&again), answers(&fresh));
        let block = |r: &Registry, si: usize, full: &str| {
            let site = &r.sites[si];
            let res = site.resources.get(full).expect("resource");
            site.blocks[res.block as usize].as_ptr()
        };
        for si in 0..2 {
            let prefix = if si == 0 { "" } else { "/gw" };
            let keycloak = format!("{prefix}/mcp/keycloak/mcp");
            let atlassian = format!("{prefix}/mcp/atlassian/mcp");
            assert_eq!(block(&after, si, &keycloak), block(&a, si, &keycloak));
            assert_ne!(block(&after, si, &atlassian), block(&a, si, &atlassian));
            assert_eq!(block(&again, si, &atlassian), block(&after, si, &atlassian));
        }
        let issuer = |r: &Registry| {
            r.sites[0]
                .issuers
                .iter()
                .map(|(_, d)| d.data.as_ptr())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            issuer(&after)[..2],
            issuer(&a)[..],
            "the new server's issuer comes last"
        );
    }
}
