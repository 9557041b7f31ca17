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
use hyper::header::HeaderValue;
use rustc_hash::FxBuildHasher;
use rustc_hash::FxHashMap as HashMap;
use url::Url;

use crate::config::{Config, ModeKind, Site};
use crate::upstream::Documents;
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

    /// The ETag as sent: `"<first 64 bits of the body's SHA-256, base64url>"`.
    #[inline]
    pub fn etag_bytes(&self) -> &[u8] {
        &self.data[self.body_end as usize..self.end as usize]
    }

    #[inline(always)]
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
    server: u32,
    /// The `WWW-Authenticate` `/challenge` answers for this path when no token was presented
    /// ([`crate::hint::hint`]), ready to send: a slice of the server's buffer on this site
    /// (the site's `realm` for a `none` server).
    pub hint: HeaderValue,
    /// Index into the site's `blocks`.
    block: u32,
    /// The PRM body's offset in the block; its ETag follows it.
    start: u32,
    /// The PRM body's length; 0 when the server has no PRM (mode `none`): a PRM is never empty.
    body_len: u32,
}

impl Resource {
    /// Index into the config's servers.
    #[inline]
    pub fn server(&self) -> usize {
        self.server as usize
    }
}

/// Length of an ETag as sent: 64 bits of the body's SHA-256 (a validator for one URL's versions,
/// not an identifier) in 11 base64url digits, in quotes. Short, because it is validated into a
/// header value on every request and stored with every document.
const ETAG_LEN: u32 = 13;

/// A string-keyed table laid out for hundreds of thousands of entries: the keys back to back in
/// one string, the values in one `Vec`, and a hash index of `u32` positions (5 bytes a slot
/// instead of a key and a value per slot). Inserting a key again replaces its value.
#[derive(Debug)]
struct Table<V> {
    index: HashTable<u32>,
    keys: String,
    /// Where each value's key starts in `keys`; it ends where the next one starts (keys are only
    /// ever appended, in the order of `values`).
    starts: Vec<u32>,
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
            starts: Vec::with_capacity(n),
            values: Vec::with_capacity(n),
        }
    }

    /// The key of value `i`, as bytes (it ends where the next one starts).
    #[inline]
    fn key_bytes<'k>(keys: &'k str, starts: &[u32], i: usize) -> &'k [u8] {
        let end = starts.get(i + 1).map_or(keys.len(), |e| *e as usize);
        keys.as_bytes()
            .get(starts[i] as usize..end)
            .unwrap_or_default()
    }

    fn key(&self, i: usize) -> &str {
        // Keys are whole `&str`s pushed back to back, so each span is on a char boundary.
        std::str::from_utf8(Self::key_bytes(&self.keys, &self.starts, i)).unwrap_or_default()
    }

    #[inline(always)]
    fn position(&self, key: &str) -> Option<usize> {
        let (keys, starts) = (self.keys.as_str(), self.starts.as_slice());
        let key = key.as_bytes();
        self.index
            .find(hash(key), |&i| {
                Self::key_bytes(keys, starts, i as usize) == key
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
        self.starts.push(len32(self.keys.len()));
        self.keys.push_str(key);
        self.values.push(value);
        let (keys, starts) = (self.keys.as_str(), self.starts.as_slice());
        self.index.insert_unique(hash(key.as_bytes()), i, |&j| {
            hash(Self::key_bytes(keys, starts, j as usize))
        });
    }

    fn shrink_to_fit(&mut self) {
        self.keys.shrink_to_fit();
        self.starts.shrink_to_fit();
        self.values.shrink_to_fit();
        let (keys, starts) = (self.keys.as_str(), self.starts.as_slice());
        self.index
            .shrink_to_fit(|&j| hash(Self::key_bytes(keys, starts, j as usize)));
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
    #[inline(always)]
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
        (r.body_len != 0).then(|| Doc {
            kind: DocKind::Prm,
            status: StatusCode::OK,
            data: &self.blocks[r.block as usize],
            start: r.start,
            body_end: r.start + r.body_len,
            end: r.start + r.body_len + ETAG_LEN,
        })
    }

    /// The document a request path names: [`SiteRoutes::document`], tolerating one trailing `/`.
    #[inline]
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
        self.resources.get(full_path).map(Resource::server)
    }

    /// The resource at a request path as `/challenge` gets it: the query and one trailing `/` are
    /// ignored, the rest must equal a resource path.
    pub fn challenge_resource(&self, path: &str) -> Option<(&str, &Resource)> {
        // A byte search: a `char` pattern costs several times more on this hot path.
        let end = path
            .bytes()
            .position(|b| b == b'?' || b == b'#')
            .unwrap_or(path.len());
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
    /// Shared with the snapshots re-rendered from it when upstream documents change. When no
    /// server discovers its upstream nothing renders it again, and it keeps no server at all:
    /// [`Registry::owner`] answers what a request needs of one.
    pub config: Arc<Config>,
    pub sites: Vec<SiteRoutes>,
    /// Each server's name, mode and scopes, by index into the config's servers.
    owners: Owners,
    /// Lower-case `Host` value → index into `sites` (used when `public_url` is a list).
    hosts: HashMap<Box<str>, usize>,
    /// `origin` → index into `sites` (resolves full URLs given to `/challenge`).
    origins: HashMap<Box<str>, usize>,
    /// The head of every 200 document: its headers (CORS, content type, cache control) with an
    /// ETag placeholder first, which each response replaces. Cloning a ready head costs less
    /// than filling in a new response's (measured with callgrind).
    pub document_head: hyper::http::response::Parts,
    /// The same for a 304 (no content type).
    pub not_modified_head: hyper::http::response::Parts,
    /// The upstream documents the facades were rendered with.
    rendered_with: Documents,
    /// `config` keeps only what answering reads: this snapshot cannot be rendered again.
    slim: bool,
}

/// Every server's name, mode and scopes, in one string: 9 bytes a server beside the text,
/// where a whole [`crate::config::Server`] takes some 250.
#[derive(Debug, Default)]
struct Owners {
    /// Per server: its name, then its scopes separated by spaces.
    text: String,
    /// Per server: where its name starts in `text`, and where its scopes start (they end where
    /// the next server's name starts).
    spans: Vec<(u32, u32)>,
    modes: Vec<ModeKind>,
}

impl Owners {
    fn with_capacity(servers: usize) -> Owners {
        Owners {
            text: String::new(),
            spans: Vec::with_capacity(servers),
            modes: Vec::with_capacity(servers),
        }
    }

    /// Adds the next server.
    fn push(&mut self, s: &crate::config::Server) {
        let start = len32(self.text.len());
        self.text.push_str(&s.name);
        let scopes = len32(self.text.len());
        for (i, scope) in s.scopes.iter().enumerate() {
            if i > 0 {
                self.text.push(' ');
            }
            self.text.push_str(scope);
        }
        self.spans.push((start, scopes));
        self.modes.push(s.mode);
    }

    fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
    }
}

/// What a request needs to know of the server owning a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner<'a> {
    pub name: &'a str,
    pub mode: ModeKind,
    /// Its scopes, separated by single spaces (scope tokens never hold one); empty for none.
    pub scopes: &'a str,
}

/// The result of looking up a resource for a challenge.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    pub site: &'a SiteRoutes,
    /// The full resource path it was found under and its entry, if a server owns it.
    pub resource: Option<(&'a str, &'a Resource)>,
}

impl Registry {
    /// The server at `index` (as [`Resource::server`] gives it).
    pub fn owner(&self, index: usize) -> Owner<'_> {
        let o = &self.owners;
        let (start, scopes) = o.spans[index];
        let end = o
            .spans
            .get(index + 1)
            .map_or(o.text.len(), |next| next.0 as usize);
        Owner {
            name: &o.text[start as usize..scopes as usize],
            mode: o.modes[index],
            scopes: &o.text[scopes as usize..end],
        }
    }

    /// How many servers the config has.
    pub fn server_count(&self) -> usize {
        self.owners.modes.len()
    }

    /// The site a request's `Host` selects: with a single `public_url` every host gets it; with a
    /// list, an unknown or missing host gets `None`.
    #[inline]
    pub fn site_for_host(&self, host: Option<&[u8]>) -> Option<&SiteRoutes> {
        if self.config.any_host {
            return self.sites.first();
        }
        self.site_for_listed_host(host)
    }

    /// [`Registry::site_for_host`] when `public_url` is a list.
    fn site_for_listed_host(&self, host: Option<&[u8]>) -> Option<&SiteRoutes> {
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

mod render;
#[cfg(test)]
mod tests;

pub use render::render_as;
