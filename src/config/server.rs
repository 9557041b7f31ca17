//! Validation of one `servers` entry: its name, its mode and the keys that mode takes, scopes,
//! resource paths and upstream URLs, into a [`RawServer`] whose templates are not yet expanded;
//! and the one rule across servers that needs no site: no two servers produce the same path.

use std::collections::HashSet;

use serde_json::Value;

use super::ModeKind;
use super::expand::fill;
use super::keys::{closest, is_scope_char, json_type};
use super::locate::{child, index};
use super::urls::{is_loopback_host, url_template_problem};
use super::validate::{CIMD_KEY, COMMON_SERVER_KEYS, FACADE_KEYS, MODES, Validator};

/// A server as written, before its URLs are expanded for each site. A reload holds the list of
/// every server beside the served snapshot while it is checked and expanded, so values most
/// servers lack are boxed or left out: its JSON path (`servers.<name>`) is rebuilt from the name
/// when a problem names it.
pub(super) struct RawServer {
    pub(super) name: String,
    pub(super) mode: ModeKind,
    pub(super) discover: bool,
    pub(super) client_id_metadata_document_supported: Option<bool>,
    pub(super) scopes: Vec<String>,
    pub(super) resource_name: Option<Box<str>>,
    pub(super) resource_documentation: Option<Box<str>>,
    /// Filled in by [`RawServer::fill_paths`] once the top-level `resource_paths` are known.
    pub(super) paths: Vec<String>,
    /// This server's own `resource_paths` templates, when it has them.
    pub(super) own_paths: Option<Box<[String]>>,
    pub(super) issuer: Option<String>,
    /// What only a facade takes, when it has any of it.
    pub(super) facade: Option<Box<FacadeUrls>>,
}

/// A facade's own issuer template and the upstream's endpoints, as written.
#[derive(Default)]
pub(super) struct FacadeUrls {
    pub(super) facade_issuer: Option<String>,
    pub(super) authorization_endpoint: Option<String>,
    pub(super) token_endpoint: Option<String>,
    pub(super) registration_endpoint: Option<String>,
}

impl RawServer {
    /// The server's JSON path, `servers.<name>`.
    pub(super) fn json_path(&self) -> String {
        child("servers", &self.name)
    }

    /// Whether it has an upstream IdP (delegate and facade with an issuer): the expanded server's
    /// `upstream_issuer`.
    pub(super) fn has_upstream(&self) -> bool {
        self.issuer.is_some() && matches!(self.mode, ModeKind::Delegate | ModeKind::Facade)
    }

    /// The facade URLs, created empty when missing.
    fn facade_mut(&mut self) -> &mut FacadeUrls {
        self.facade.get_or_insert_with(Box::default)
    }

    /// Expands the server's own `resource_paths` templates, or else `default_paths`, into its
    /// paths.
    pub(super) fn fill_paths(&mut self, default_paths: &[String]) {
        let own = self.own_paths.take();
        let templates = own.as_deref().unwrap_or(default_paths);
        self.paths = templates
            .iter()
            .map(|p| {
                if p.contains("{server}") {
                    fill(p, None, &self.name)
                } else {
                    p.clone()
                }
            })
            .collect();
    }
}

impl Validator {
    /// Validates one server; its paths are left to [`RawServer::fill_paths`] (the top-level
    /// `resource_paths` may come after `servers` in the file).
    pub(super) fn server(&mut self, name: &str, value: &Value) -> Option<RawServer> {
        let path = child("servers", name);
        let mut ok = true;
        if name.is_empty()
            || name == "."
            || name == ".."
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            self.key_error(
                &path,
                "server names may use only A-Z a-z 0-9 . _ - (and are not \".\" or \"..\"); rename it",
            );
            ok = false;
        }
        let Some(obj) = value.as_object() else {
            self.error(
                &path,
                "must be an object such as {\"mode\": \"delegate\", \"issuer\": \"https://…\"}",
            );
            return None;
        };
        let mode = match obj.get("mode") {
            None => {
                self.key_error(
                    &path,
                    "missing \"mode\"; add one of \"delegate\", \"facade\", \"gateway\", \"none\"",
                );
                None
            }
            Some(m) => match m.as_str() {
                Some("delegate") => Some(ModeKind::Delegate),
                Some("facade") => Some(ModeKind::Facade),
                Some("gateway") => Some(ModeKind::Gateway),
                Some("none") => Some(ModeKind::None),
                other => {
                    let found = match other {
                        Some(s) => {
                            let shown: String = s.chars().take(40).collect();
                            let near = closest(&s.to_ascii_lowercase(), MODES)
                                .map(|m| format!(", did you mean \"{m}\"?"))
                                .unwrap_or_default();
                            format!("found {}{near}", Value::from(shown))
                        }
                        None => format!("found {}", json_type(m)),
                    };
                    self.error(
                        &child(&path, "mode"),
                        format!(
                            "{found} (must be one of \"delegate\", \"facade\", \"gateway\", \"none\")"
                        ),
                    );
                    None
                }
            },
        };
        let allowed: Vec<&str> = match mode {
            Some(ModeKind::Delegate) => [COMMON_SERVER_KEYS, &["issuer", "discover"]].concat(),
            Some(ModeKind::Facade) => {
                [COMMON_SERVER_KEYS, FACADE_KEYS, &["discover", CIMD_KEY]].concat()
            }
            // Without a valid mode, accept every known key so only the mode is reported.
            None => [COMMON_SERVER_KEYS, FACADE_KEYS, &["discover", CIMD_KEY]].concat(),
            Some(ModeKind::Gateway) => [COMMON_SERVER_KEYS, &[CIMD_KEY]].concat(),
            Some(ModeKind::None) => COMMON_SERVER_KEYS.to_vec(),
        };
        let mode_name = mode.map_or("", ModeKind::as_str);
        self.check_keys(obj, &path, &allowed, |key| {
            if key == CIMD_KEY {
                return Some(format!("not used in mode \"{mode_name}\" (only facade and gateway servers, whose metadata signpost serves, take it); remove it or change the mode"));
            }
            (FACADE_KEYS.contains(&key) || key == "discover").then(|| {
                let used_by = if matches!(key, "issuer" | "discover") { "delegate and facade" } else { "facade" };
                format!("not used in mode \"{mode_name}\" (only {used_by} servers take it); remove it or change the mode")
            })
        });

        let mut server = RawServer {
            name: name.to_owned(),
            mode: mode.unwrap_or(ModeKind::None),
            discover: false,
            client_id_metadata_document_supported: None,
            scopes: Vec::new(),
            resource_name: None,
            resource_documentation: None,
            paths: Vec::new(),
            own_paths: None,
            issuer: None,
            facade: None,
        };
        for (key, value) in obj {
            let kpath = child(&path, key);
            if !allowed.contains(&key.as_str()) {
                continue;
            }
            match key.as_str() {
                "scopes" => {
                    let mut seen = HashSet::new();
                    for (i, scope) in self.indexed_strings(&kpath, value) {
                        if !scope.bytes().all(is_scope_char) {
                            self.error(
                                &index(&kpath, i),
                                "a scope is one token of printable ASCII without spaces, '\"' or '\\' (RFC 6749 §3.3); split or fix it",
                            );
                            ok = false;
                        } else if seen.insert(scope.clone()) {
                            server.scopes.push(scope);
                        }
                    }
                }
                "resource_name" => server.resource_name = self.string(&kpath, value).map(Box::from),
                "resource_documentation" => {
                    if let Some(s) = self.string(&kpath, value) {
                        if self.http_url(&kpath, s).is_some() {
                            server.resource_documentation = Some(s.into());
                        }
                    }
                }
                "resource_paths" => {
                    server.own_paths = Some(self.resource_paths(&kpath, value, true).into())
                }
                "discover" => match value.as_bool() {
                    Some(b) => server.discover = b,
                    None => self.error(&kpath, "must be true or false"),
                },
                CIMD_KEY => match value.as_bool() {
                    Some(b) => server.client_id_metadata_document_supported = Some(b),
                    None => self.error(&kpath, "must be true or false"),
                },
                "issuer" => {
                    if let Some(s) = self.string(&kpath, value) {
                        if let Some(url) = self.issuer(&kpath, s) {
                            server.issuer = Some(s.to_owned());
                            if url.scheme() == "http"
                                && !is_loopback_host(url.host_str().unwrap_or(""))
                            {
                                self.warn(&kpath, "plain http issuer on a non-loopback host: MCP clients require https; use the IdP's https issuer");
                            }
                        } else {
                            ok = false;
                        }
                    }
                }
                "facade_issuer" => {
                    if let Some(s) = self.string(&kpath, value) {
                        match url_template_problem(s) {
                            Some(why) => self.error(&kpath, why),
                            None => server.facade_mut().facade_issuer = Some(s.to_owned()),
                        }
                    }
                }
                "authorization_endpoint" | "token_endpoint" | "registration_endpoint" => {
                    if let Some(s) = self.string(&kpath, value) {
                        if self.http_url(&kpath, s).is_some() {
                            let s = Some(s.to_owned());
                            let facade = server.facade_mut();
                            match key.as_str() {
                                "authorization_endpoint" => facade.authorization_endpoint = s,
                                "token_endpoint" => facade.token_endpoint = s,
                                _ => facade.registration_endpoint = s,
                            }
                        } else {
                            ok = false;
                        }
                    }
                }
                _ => {}
            }
        }
        match mode {
            Some(ModeKind::Delegate) if !obj.contains_key("issuer") => {
                self.key_error(&path, "mode \"delegate\" needs \"issuer\": the upstream IdP's issuer exactly as its metadata spells it");
            }
            Some(ModeKind::Facade) => {
                for key in ["issuer", "authorization_endpoint", "token_endpoint"] {
                    if !obj.contains_key(key) && (key == "issuer" || !server.discover) {
                        // Discovery starts from the issuer: only the endpoints can come from it.
                        let or_discover = if key == "issuer" {
                            ""
                        } else {
                            ", or set \"discover\": true to take it from the upstream's metadata"
                        };
                        self.key_error(
                            &path,
                            format!("mode \"facade\" needs \"{key}\" (the upstream IdP's); add it{or_discover}"),
                        );
                    }
                }
                self.facades.push(child(&path, "mode"));
                let registration = server
                    .facade
                    .as_ref()
                    .and_then(|f| f.registration_endpoint.as_ref());
                if registration.is_none()
                    && !server.discover
                    && server.client_id_metadata_document_supported != Some(true)
                {
                    self.warn(&path, "facade without \"registration_endpoint\": the TypeScript SDK cannot register a client and the Python SDK posts to the gateway's /register; add the upstream's registration endpoint if it has one");
                }
            }
            _ => {}
        }
        (ok && mode.is_some()).then_some(server)
    }

    /// Two servers producing the same resource path is an error (which one would own the hint?).
    /// The first server (in file order) producing a path owns it; each later server producing it
    /// is reported once per path, in file order. Found by sorting 8-byte references to the paths
    /// rather than hashing them: with 100,000 servers a hash map of the 300,000 paths added 33 MiB
    /// to a reload's parse, while the served snapshot is alive (the references take 2.3 MiB).
    pub(super) fn conflicting_paths(&mut self, servers: &[RawServer]) {
        let path = |&(si, pi): &(u32, u32)| servers[si as usize].paths[pi as usize].as_str();
        let mut refs: Vec<(u32, u32)> = servers
            .iter()
            .enumerate()
            .flat_map(|(si, s)| (0..s.paths.len()).map(move |pi| (si as u32, pi as u32)))
            .collect();
        refs.sort_unstable_by(|a, b| path(a).cmp(path(b)).then(a.cmp(b)));
        let mut found: Vec<((u32, u32), u32)> = Vec::new();
        for group in refs.chunk_by(|a, b| path(a) == path(b)) {
            let owner = group[0].0;
            let owner_name = &servers[owner as usize].name;
            let mut last = None;
            for &r in &group[1..] {
                let name = &servers[r.0 as usize].name;
                if name != owner_name && last != Some(r.0) {
                    found.push((r, owner));
                    last = Some(r.0);
                }
            }
        }
        found.sort_unstable();
        for ((si, pi), owner) in found {
            let s = &servers[si as usize];
            let (p, other) = (&s.paths[pi as usize], &servers[owner as usize].name);
            self.key_error(
                &s.json_path(),
                format!(
                    "resource path {p} is also produced by server \"{other}\"; give one of them its own \"resource_paths\""
                ),
            );
        }
    }
}
