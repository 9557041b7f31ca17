//! Template expansion: each server's issuer and endpoint templates (`{public_url}`, `{server}`)
//! filled in for every site, the issuers signpost hosts checked against the sites' origins, and
//! no two hosted issuers at one well-known URL.

use std::borrow::Cow;

use url::Url;

use super::locate::child;
use super::server::RawServer;
use super::validate::Validator;
use super::{AuthServer, HostedAs, ModeKind, Server, Site};

/// The default issuer template for facade and gateway servers.
pub(super) const DEFAULT_ISSUER_TEMPLATE: &str = "{public_url}/{server}";

/// The top-level `gateway` templates.
pub(super) struct GatewayTemplates {
    pub(super) issuer: String,
    pub(super) authorization_endpoint: String,
    pub(super) token_endpoint: String,
    pub(super) registration_endpoint: Option<String>,
    pub(super) token_endpoint_auth_methods_supported: Vec<String>,
}

impl Default for GatewayTemplates {
    fn default() -> Self {
        GatewayTemplates {
            issuer: DEFAULT_ISSUER_TEMPLATE.into(),
            authorization_endpoint: "{public_url}/{server}/authorize".into(),
            token_endpoint: "{public_url}/{server}/token".into(),
            registration_endpoint: Some("{public_url}/{server}/register".into()),
            token_endpoint_auth_methods_supported: vec!["none".into(), "client_secret_post".into()],
        }
    }
}

impl Validator {
    /// Expands one server's templates for every site.
    fn expand_server(
        &mut self,
        r: RawServer,
        bases: &[String],
        sites: &[Site],
        gateway: &GatewayTemplates,
    ) -> Server {
        let auth = self.expand_auth(&r, bases, sites, gateway);
        let upstream = r.has_upstream();
        Server {
            upstream_issuer: r.issuer.filter(|_| upstream),
            name: r.name,
            mode: r.mode,
            scopes: r.scopes,
            resource_name: r.resource_name.map(String::from),
            resource_documentation: r.resource_documentation.map(String::from),
            paths: r.paths,
            auth,
            discover: r.discover,
        }
    }

    /// Checks what [`ExpandedServers`] will build, without keeping it: each server's issuers and
    /// endpoints for every site (each bad template reported once), and no two hosted issuers at
    /// one well-known URL.
    pub(super) fn check_expansion(
        &mut self,
        raw: &[RawServer],
        sites: &[Site],
        gateway: &GatewayTemplates,
    ) {
        let bases: Vec<String> = sites.iter().map(Site::base).collect();
        // Every hosted issuer's well-known path and issuer, back to back in one string, with
        // (site, server, where its path starts, where its issuer starts) in file and site order:
        // two allocations that go back whole, where a string each would leave 100,000 holes
        // in the memory the expanded servers then grow into.
        let mut text = String::new();
        let mut hosted: Vec<(u32, u32, u32, u32)> = Vec::new();
        self.expanding = Some(std::collections::HashSet::new());
        for (i, r) in raw.iter().enumerate() {
            for a in self.expand_auth(r, &bases, sites, gateway) {
                if let Some(h) = a.hosted {
                    let path = len32(text.len());
                    text.push_str(&h.well_known_path);
                    let issuer = len32(text.len());
                    text.push_str(&a.issuer);
                    hosted.push((len32(h.site), len32(i), path, issuer));
                }
            }
        }
        let span = |k: usize| {
            let (_, _, path, issuer) = hosted[k];
            let end = hosted.get(k + 1).map_or(text.len(), |next| next.2 as usize);
            (
                &text[path as usize..issuer as usize],
                &text[issuer as usize..end],
            )
        };
        // Reported once per expansion that clashes, not once per (path, position).
        self.expanding = None;
        let mut seen: rustc_hash::FxHashMap<(u32, &str), u32> = Default::default();
        for (k, &(site, i, _, _)) in hosted.iter().enumerate() {
            let (path, issuer) = span(k);
            match seen.get(&(site, path)) {
                Some(&other) if other != i => self.key_error(
                    &child("servers", &raw[i as usize].name),
                    format!(
                        "its authorization-server issuer {issuer} is also the issuer of server \"{}\"; give each server its own issuer",
                        raw[other as usize].name
                    ),
                ),
                _ => {
                    seen.insert((site, path), i);
                }
            }
        }
    }

    /// One server's authorization servers, one per site it has one on.
    fn expand_auth(
        &mut self,
        r: &RawServer,
        bases: &[String],
        sites: &[Site],
        gateway: &GatewayTemplates,
    ) -> Vec<AuthServer> {
        let facade = r.facade.as_deref();
        let mut auth = Vec::with_capacity(sites.len());
        for (si, base) in bases.iter().enumerate() {
            let fill = |t: &str| fill(t, Some(base), &r.name);
            let (ipath, template): (Cow<'_, str>, &str) = match r.mode {
                ModeKind::None => continue,
                ModeKind::Delegate => {
                    auth.push(AuthServer {
                        issuer: r.issuer.clone().unwrap_or_default(),
                        hosted: None,
                    });
                    continue;
                }
                ModeKind::Facade => match facade.and_then(|f| f.facade_issuer.as_deref()) {
                    Some(t) => (child(&r.json_path(), "facade_issuer").into(), t),
                    None => (r.json_path().into(), DEFAULT_ISSUER_TEMPLATE),
                },
                ModeKind::Gateway => ("gateway.issuer".into(), &gateway.issuer),
            };
            let issuer = fill(template);
            let Some((site_of, well_known_path)) = self.hosted_issuer(&ipath, &issuer, si, sites)
            else {
                continue;
            };
            // A facade's endpoints are the upstream's, checked with the server; a gateway's
            // are its templates filled in, checked here (once the issuer is good).
            let (authorization_endpoint, token_endpoint, registration_endpoint, methods) =
                if r.mode == ModeKind::Facade {
                    (
                        facade
                            .and_then(|f| f.authorization_endpoint.clone())
                            .unwrap_or_default(),
                        facade
                            .and_then(|f| f.token_endpoint.clone())
                            .unwrap_or_default(),
                        facade.and_then(|f| f.registration_endpoint.clone()),
                        Vec::new(),
                    )
                } else {
                    let mut endpoint = |key: &str, t: &str| {
                        let url = fill(t);
                        let ok = self.expanded_before
                            || self.http_url(&child("gateway", key), &url).is_some();
                        ok.then_some(url)
                    };
                    let authorization_endpoint =
                        endpoint("authorization_endpoint", &gateway.authorization_endpoint);
                    let token_endpoint = endpoint("token_endpoint", &gateway.token_endpoint);
                    let registration_endpoint = gateway
                        .registration_endpoint
                        .as_deref()
                        .and_then(|t| endpoint("registration_endpoint", t));
                    let (Some(authorization_endpoint), Some(token_endpoint)) =
                        (authorization_endpoint, token_endpoint)
                    else {
                        continue;
                    };
                    (
                        authorization_endpoint,
                        token_endpoint,
                        registration_endpoint,
                        gateway.token_endpoint_auth_methods_supported.clone(),
                    )
                };
            auth.push(AuthServer {
                hosted: Some(HostedAs {
                    site: site_of,
                    well_known_path,
                    authorization_endpoint,
                    token_endpoint,
                    registration_endpoint,
                    token_endpoint_auth_methods_supported: methods,
                    client_id_metadata_document_supported: r.client_id_metadata_document_supported,
                }),
                issuer,
            });
        }
        auth
    }

    /// An issuer signpost hosts must be a valid issuer under one of the sites' origins (it can
    /// only serve metadata on the origin it answers for). Returns that site, preferring `prefer`,
    /// and the issuer's well-known path.
    pub(super) fn hosted_issuer(
        &mut self,
        path: &str,
        issuer: &str,
        prefer: usize,
        sites: &[Site],
    ) -> Option<(usize, String)> {
        let url = self.issuer(path, issuer)?;
        // Clients find the metadata at the well-known URL of the issuer as their URL parser writes
        // it, and compare the document's `issuer` with the string: both must be the same.
        let normal = url.as_str();
        if normal != issuer && normal.strip_suffix('/') != Some(issuer) {
            self.error(
                path,
                format!(
                    "issuer {issuer} is not written as URL parsers write it ({normal}), so clients would look for its metadata at another URL; write it that way"
                ),
            );
            return None;
        }
        // Clients drop one trailing `/` before putting the path behind the well-known prefix; an
        // empty segment anywhere would leave them at a URL that is not the one signpost serves.
        if url.path().contains("//") {
            self.error(
                path,
                format!(
                    "issuer {issuer} has an empty path segment (\"//\"), so clients would look for its metadata at another URL; remove the extra \"/\""
                ),
            );
            return None;
        }
        let origin = url.origin().ascii_serialization();
        let found = if sites[prefer].origin == origin {
            Some(prefer)
        } else {
            sites.iter().position(|s| s.origin == origin)
        };
        if found.is_none() {
            self.error(
                path,
                format!(
                    "issuer {issuer} is not under any public_url, so signpost cannot serve its metadata; use a template such as \"{{public_url}}/{{server}}\""
                ),
            );
        }
        found.map(|site| (site, well_known_path(&url)))
    }
}

/// `/.well-known/oauth-authorization-server` + the issuer's path without its terminating `/`
/// (RFC 8414 §3.1).
fn well_known_path(issuer: &Url) -> String {
    well_known_path_of(issuer.path())
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).expect("a config is far smaller than 4 GiB")
}

fn well_known_path_of(path: &str) -> String {
    [
        "/.well-known/oauth-authorization-server",
        path.trim_end_matches('/'),
    ]
    .concat()
}

/// `t` with every `{public_url}` replaced by `base` (when given) and every `{server}` by `name`,
/// in one pass. The same as `t.replace("{public_url}", base).replace("{server}", name)` (which
/// it falls back to when `base` has a brace of its own, where the second replace could also
/// match inside `base`): `name` has no braces, and `base` starts with its scheme, so no
/// `{server}` can start in the template and end in `base`.
pub(super) fn fill(t: &str, base: Option<&str>, name: &str) -> String {
    if let Some(base) = base.filter(|b| b.contains('{')) {
        return t.replace("{public_url}", base).replace("{server}", name);
    }
    let mut out = String::with_capacity(t.len() + base.map_or(0, str::len) + name.len());
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let (Some(base), Some(after)) = (base, tail.strip_prefix("{public_url}")) {
            out.push_str(base);
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{server}") {
            out.push_str(name);
            rest = after;
        } else {
            out.push('{');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The servers of a checked config, expanded one at a time as they are taken, in file order
/// (see [`super::Staged`]): a consumer that drops each after use never holds the expanded list.
/// Every expansion already passed once (`Validator::check_expansion`), so what it would report
/// again is dropped.
pub struct ExpandedServers {
    /// Reversed (taken from the back, so in file order) and shrunk as it empties: with 100,000
    /// servers the list is 19 MB.
    raw: Vec<RawServer>,
    again: Validator,
    sites: Vec<Site>,
    bases: Vec<String>,
    gateway: GatewayTemplates,
}

impl ExpandedServers {
    pub(super) fn new(
        mut raw: Vec<RawServer>,
        sites: Vec<Site>,
        gateway: GatewayTemplates,
    ) -> Self {
        raw.reverse();
        let mut again = Validator::new();
        again.expanding = Some(std::collections::HashSet::new());
        again.expanded_before = true;
        ExpandedServers {
            bases: sites.iter().map(Site::base).collect(),
            raw,
            again,
            sites,
            gateway,
        }
    }

    /// How many resource paths the servers still to come have (on one site).
    pub fn paths(&self) -> usize {
        self.raw.iter().map(|r| r.paths.len()).sum()
    }

    /// How many of the servers still to come host an issuer on each site (facade and gateway).
    pub fn hosting(&self) -> usize {
        self.raw
            .iter()
            .filter(|r| matches!(r.mode, ModeKind::Facade | ModeKind::Gateway))
            .count()
    }

    /// Whether a server still to come discovers its upstream (as `upstream::wanted` asks of the
    /// expanded servers).
    pub fn discovers(&self) -> bool {
        self.raw.iter().any(|r| r.discover && r.has_upstream())
    }
}

impl Iterator for ExpandedServers {
    type Item = Server;

    fn next(&mut self) -> Option<Server> {
        let r = self.raw.pop()?;
        if self.raw.capacity() - self.raw.len() >= 4096 {
            self.raw.shrink_to_fit();
        }
        let server = self
            .again
            .expand_server(r, &self.bases, &self.sites, &self.gateway);
        debug_assert!(
            self.again.problems.is_empty(),
            "an expansion that passed once fails again"
        );
        Some(server)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.raw.len(), Some(self.raw.len()))
    }
}

impl ExactSizeIterator for ExpandedServers {}
