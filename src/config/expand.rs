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
    /// Expands each server's templates for every site.
    pub(super) fn expand(
        &mut self,
        raw: Vec<RawServer>,
        sites: &[Site],
        gateway: &GatewayTemplates,
    ) -> Vec<Server> {
        let mut out = Vec::with_capacity(raw.len());
        let bases: Vec<String> = sites.iter().map(Site::base).collect();
        // Taken from the back of the reversed list (so in file order), which is shrunk as it
        // empties: with 100,000 servers the list is 30 MB, which would otherwise stay beside
        // the expanded servers until the end (28 MB of a reload's parse peak, while the served
        // snapshot is alive).
        let mut raw = raw;
        raw.reverse();
        while let Some(r) = raw.pop() {
            if raw.capacity() - raw.len() >= 4096 {
                raw.shrink_to_fit();
            }
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
                    ModeKind::Facade => match r.facade_issuer.as_deref() {
                        Some(t) => (child(&r.path, "facade_issuer").into(), t),
                        None => (r.path.as_str().into(), DEFAULT_ISSUER_TEMPLATE),
                    },
                    ModeKind::Gateway => ("gateway.issuer".into(), &gateway.issuer),
                };
                let issuer = fill(template);
                let Some((site_of, well_known_path)) =
                    self.hosted_issuer(&ipath, &issuer, si, sites)
                else {
                    continue;
                };
                // A facade's endpoints are the upstream's, checked with the server; a gateway's
                // are its templates filled in, checked here (once the issuer is good).
                let (authorization_endpoint, token_endpoint, registration_endpoint, methods) =
                    if r.mode == ModeKind::Facade {
                        (
                            r.authorization_endpoint.clone().unwrap_or_default(),
                            r.token_endpoint.clone().unwrap_or_default(),
                            r.registration_endpoint.clone(),
                            Vec::new(),
                        )
                    } else {
                        let mut endpoint = |key: &str, t: &str| {
                            let url = fill(t);
                            let ok = self.http_url(&child("gateway", key), &url).is_some();
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
                        client_id_metadata_document_supported: r
                            .client_id_metadata_document_supported,
                    }),
                    issuer,
                });
            }
            out.push(Server {
                upstream_issuer: r
                    .issuer
                    .filter(|_| matches!(r.mode, ModeKind::Delegate | ModeKind::Facade)),
                name: r.name,
                mode: r.mode,
                scopes: r.scopes,
                resource_name: r.resource_name,
                resource_documentation: r.resource_documentation,
                paths: r.paths,
                auth,
                discover: r.discover,
            });
        }
        out
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

    /// Two hosted issuers at the same well-known URL would serve two documents at one address.
    pub(super) fn conflicting_issuers(&mut self, servers: &[Server]) {
        let mut seen: rustc_hash::FxHashMap<(usize, &str), &str> = Default::default();
        for s in servers {
            for a in &s.auth {
                let Some(h) = &a.hosted else { continue };
                match seen.get(&(h.site, h.well_known_path.as_str())) {
                    Some(other) if *other != s.name => self.key_error(
                        &child("servers", &s.name),
                        format!(
                            "its authorization-server issuer {} is also the issuer of server \"{other}\"; give each server its own issuer",
                            a.issuer
                        ),
                    ),
                    _ => {
                        seen.insert((h.site, h.well_known_path.as_str()), &s.name);
                    }
                }
            }
        }
    }
}

/// `/.well-known/oauth-authorization-server` + the issuer's path without its terminating `/`
/// (RFC 8414 §3.1).
fn well_known_path(issuer: &Url) -> String {
    well_known_path_of(issuer.path())
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
