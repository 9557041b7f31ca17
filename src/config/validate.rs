//! Validation of the JSON tree into a [`Config`]: the [`Validator`] that collects every problem
//! and warning with the path it names, the allowed keys of each object, the top-level keys
//! (`public_url`, `resource_paths`, `cache_max_age`, `upstream_refresh`, `gateway`, `servers`)
//! and the string and list rules every value follows. Servers are checked in `server.rs`, URLs in
//! `urls.rs`, templates expanded in `expand.rs`.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::expand::{ExpandedServers, GatewayTemplates};
use super::keys::{closest, is_secret_key};
use super::locate::{child, index};
use super::model::*;
use super::server::RawServer;
use super::urls::url_template_problem;
use super::{Config, Pos, Problem};

/// Where a problem points, resolved to a line and column once validation is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Anchor {
    /// The position is known already (or there is none).
    Fixed,
    /// The key of the problem's path.
    Key,
    /// The value of the problem's path.
    Value,
}

/// A problem and what its position will be taken from.
pub(super) struct Noted {
    pub(super) problem: Problem,
    pub(super) anchor: Anchor,
}

pub(super) struct Validator {
    pub(super) problems: Vec<Noted>,
    pub(super) warnings: Vec<Noted>,
    /// While expanding templates for every server and site, one bad template (`gateway.issuer`,
    /// a fixed `facade_issuer` with several sites) would otherwise be reported once per expansion:
    /// report each (path, position) once.
    pub(super) expanding: Option<Reported>,
    /// The expansion this validator runs already passed once (`check_expansion`): the gateway's
    /// filled-in endpoints are not parsed again (a third of a reload's expansion time).
    pub(super) expanded_before: bool,
    /// The `mode` paths of facade servers, for the one RFC 9207 caveat `check` prints.
    pub(super) facades: Vec<String>,
}

/// The top-level values other than `servers`, validated.
pub(super) struct TopLevel {
    sites: Vec<Site>,
    any_host: bool,
    default_paths: Vec<String>,
    cache_max_age: u64,
    upstream_refresh: std::time::Duration,
    gateway: GatewayTemplates,
}

/// The (JSON path, line and column) of each problem already reported.
pub(super) type Reported = HashSet<(String, Anchor)>;

pub(super) const MODES: &[&str] = &["delegate", "facade", "gateway", "none"];
pub(super) const TOP_KEYS: &[&str] = &[
    "public_url",
    "resource_paths",
    "cache_max_age",
    "upstream_refresh",
    "gateway",
    "servers",
];
pub(super) const GATEWAY_KEYS: &[&str] = &[
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "registration_endpoint",
    "token_endpoint_auth_methods_supported",
];
pub(super) const COMMON_SERVER_KEYS: &[&str] = &[
    "mode",
    "scopes",
    "resource_name",
    "resource_documentation",
    "resource_paths",
];
/// Advertise client ID metadata documents in the AS document signpost serves (facade, gateway).
pub(super) const CIMD_KEY: &str = "client_id_metadata_document_supported";
pub(super) const FACADE_KEYS: &[&str] = &[
    "issuer",
    "facade_issuer",
    "authorization_endpoint",
    "token_endpoint",
    "registration_endpoint",
];

impl Validator {
    pub(super) fn new() -> Validator {
        Validator {
            problems: Vec::new(),
            warnings: Vec::new(),
            expanding: None,
            expanded_before: false,
            facades: Vec::new(),
        }
    }

    /// Takes over what `other` found, as if this validator had found it now.
    pub(super) fn absorb(&mut self, other: Validator) {
        self.problems.extend(other.problems);
        self.warnings.extend(other.warnings);
        self.facades.extend(other.facades);
    }

    /// A problem at a known position.
    pub(super) fn error_at(&mut self, pos: Option<Pos>, path: &str, message: impl Into<String>) {
        self.note(pos, Anchor::Fixed, path, message.into());
    }

    pub(super) fn note(&mut self, pos: Option<Pos>, anchor: Anchor, path: &str, message: String) {
        if let Some(reported) = &mut self.expanding {
            if !reported.insert((path.to_owned(), anchor)) {
                return;
            }
        }
        self.problems.push(Noted {
            problem: Problem {
                pos,
                path: path.to_owned(),
                message,
            },
            anchor,
        });
    }

    /// A problem with the value at `path`.
    pub(super) fn error(&mut self, path: &str, message: impl Into<String>) {
        self.note(None, Anchor::Value, path, message.into());
    }

    /// A problem with the key at `path` (unknown, misplaced, secret).
    pub(super) fn key_error(&mut self, path: &str, message: impl Into<String>) {
        self.note(None, Anchor::Key, path, message.into());
    }

    pub(super) fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.warnings.push(Noted {
            problem: Problem {
                pos: None,
                path: path.to_owned(),
                message: message.into(),
            },
            anchor: Anchor::Value,
        });
    }

    /// Reports every key of `obj` not in `allowed`. Keys that could hold a secret get their own
    /// message, and no value is ever echoed.
    pub(super) fn check_keys(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        allowed: &[&str],
        misplaced: impl Fn(&str) -> Option<String>,
    ) {
        for key in obj.keys() {
            if allowed.contains(&key.as_str()) {
                continue;
            }
            let member = child(path, key);
            if is_secret_key(key) {
                self.key_error(
                    &member,
                    "secrets do not belong in signpost's config (it serves only public metadata); remove this key",
                );
            } else if let Some(why) = misplaced(key) {
                self.key_error(&member, why);
            } else {
                let hint = closest(key, allowed)
                    .map(|k| format!("did you mean \"{k}\"? "))
                    .unwrap_or_default();
                self.key_error(
                    &member,
                    format!(
                        "unknown key; {hint}allowed here: {}; remove or rename it",
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    /// Validates a whole parsed tree (the path for files with duplicate keys; see `stream.rs` for
    /// the usual one, which never holds the tree).
    pub(super) fn config(&mut self, root: Value) -> Option<Checked> {
        let Value::Object(mut obj) = root else {
            self.not_an_object();
            return None;
        };
        let top = self.top_level(&obj);
        let mut raw = Vec::new();
        // Taken out of the tree: each server's JSON is freed as soon as it is validated.
        match obj.remove("servers") {
            None => self.servers_missing(),
            Some(Value::Object(servers)) => {
                if servers.is_empty() {
                    self.no_servers();
                }
                raw.reserve(servers.len());
                for (name, value) in servers {
                    if let Some(server) = self.server(&name, &value) {
                        raw.push(server);
                    }
                }
            }
            Some(_) => self.servers_not_an_object(),
        }
        self.finish(top, raw)
    }

    pub(super) fn not_an_object(&mut self) {
        self.error(
            "",
            "the config must be a JSON object with at least \"public_url\" and \"servers\"",
        );
    }

    pub(super) fn servers_missing(&mut self) {
        self.error_at(
            Some(Pos { line: 1, column: 1 }),
            "servers",
            "missing; add \"servers\": {\"<name>\": {\"mode\": \"delegate\", \"issuer\": \"https://…\"}}",
        );
    }

    pub(super) fn no_servers(&mut self) {
        self.warn(
            "servers",
            "no servers: signpost will answer 404 to every discovery request",
        );
    }

    pub(super) fn servers_not_an_object(&mut self) {
        self.error(
            "servers",
            "must be an object mapping server names to their settings",
        );
    }

    /// Checks the top-level keys and validates every top-level value but `servers` (which `obj`
    /// may or may not still hold).
    pub(super) fn top_level(&mut self, obj: &Map<String, Value>) -> TopLevel {
        self.check_keys(obj, "", TOP_KEYS, |_| None);
        let (sites, any_host) = match obj.get("public_url") {
            None => {
                self.error_at(
                    Some(Pos { line: 1, column: 1 }),
                    "public_url",
                    "missing; add \"public_url\": \"https://<the gateway's public host>\"",
                );
                (Vec::new(), true)
            }
            Some(Value::String(s)) => (self.site("public_url", s).into_iter().collect(), true),
            Some(Value::Array(list)) if !list.is_empty() => {
                let mut sites: Vec<Site> = Vec::new();
                for (i, item) in list.iter().enumerate() {
                    let path = index("public_url", i);
                    let Some(s) = item.as_str() else {
                        self.error(
                            &path,
                            "must be a URL string such as \"https://gw.example.com\"",
                        );
                        continue;
                    };
                    if let Some(site) = self.site(&path, s) {
                        // Any shared `Host` value (`http://h` and `https://h:80` share `h:80`)
                        // would select only the first entry.
                        let shared = sites.iter().find_map(|o| {
                            site.host_keys
                                .iter()
                                .find(|k| o.host_keys.contains(k))
                                .map(|k| (o, k))
                        });
                        if let Some((other, host)) = shared {
                            self.error(
                                &path,
                                format!(
                                    "host {host} is already used by public_url {}; the Host header cannot tell them apart, so give each entry its own host",
                                    other.base()
                                ),
                            );
                            continue;
                        }
                        sites.push(site);
                    }
                }
                (sites, false)
            }
            Some(_) => {
                self.error(
                    "public_url",
                    "must be a URL string or a non-empty list of URL strings",
                );
                (Vec::new(), true)
            }
        };

        let default_paths = match obj.get("resource_paths") {
            None => DEFAULT_RESOURCE_PATHS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            Some(value) => self.resource_paths("resource_paths", value, false),
        };

        let cache_max_age = match obj.get("cache_max_age") {
            None => DEFAULT_CACHE_MAX_AGE,
            Some(value) => match value.as_u64() {
                Some(n) if n <= MAX_CACHE_MAX_AGE => n,
                _ => {
                    self.error(
                        "cache_max_age",
                        format!("must be a whole number of seconds from 0 to {MAX_CACHE_MAX_AGE}"),
                    );
                    DEFAULT_CACHE_MAX_AGE
                }
            },
        };

        let upstream_refresh = match obj.get("upstream_refresh") {
            None => DEFAULT_REFRESH,
            Some(value) => {
                let parsed = match value {
                    Value::Number(n) => n.as_u64().map(std::time::Duration::from_secs),
                    Value::String(s) => humantime::parse_duration(s).ok(),
                    _ => None,
                };
                match parsed {
                    Some(d) if (MIN_UPSTREAM_REFRESH..=MAX_UPSTREAM_REFRESH).contains(&d) => d,
                    _ => {
                        self.error(
                            "upstream_refresh",
                            "must be a duration from 10 seconds to 7 days: a number of seconds or a string such as \"1h\" or \"15m\"",
                        );
                        DEFAULT_REFRESH
                    }
                }
            }
        };

        let gateway = match obj.get("gateway") {
            None => GatewayTemplates::default(),
            Some(value) => self.gateway(value),
        };

        TopLevel {
            sites,
            any_host,
            default_paths,
            cache_max_age,
            upstream_refresh,
            gateway,
        }
    }

    /// Everything after the servers were validated one by one: their paths, the facade caveat, and
    /// the rules across servers and sites, the templates' expansion included (run once here to
    /// check it, its results dropped server by server). `None` when a problem was found; else
    /// only the expansion is left ([`Checked::stream`]), which cannot fail. Positions are looked up in the text
    /// before it, so a caller that owns the text frees it before the expanded servers exist
    /// (with 100,000 servers: 18 MB of a reload's peak, while the served snapshot is alive).
    pub(super) fn finish(&mut self, top: TopLevel, mut raw: Vec<RawServer>) -> Option<Checked> {
        for server in &mut raw {
            server.fill_paths(&top.default_paths);
        }
        if let Some(first) = self.facades.first().cloned() {
            let others = match self.facades.len() - 1 {
                0 => String::new(),
                1 => " (and 1 other facade server)".to_owned(),
                n => format!(" (and {n} other facade servers)"),
            };
            self.warn(
                &first,
                format!("facade{others}: a facade works only with IdPs that do not put RFC 9207 \"iss\" on the authorization redirect (Keycloak does by default, oidc-provider always): 2026-07-28 clients compare it with the facade issuer and reject the login; \"delegate\" is the default choice, use a facade only for such an IdP (`check --online` tells whether it advertises or looks like sending \"iss\")"),
            );
        }
        self.conflicting_paths(&raw);
        self.check_expansion(&raw, &top.sites, &top.gateway);
        (self.problems.is_empty()).then_some(Checked { top, raw })
    }
}

/// A config that passed every rule (see [`Validator::finish`]): its servers as validated, before
/// their templates are expanded for every site.
pub(super) struct Checked {
    top: TopLevel,
    raw: Vec<RawServer>,
}

impl Checked {
    /// The [`Config`] without its servers (and its warnings still to be set), and the servers,
    /// expanded as they are taken.
    pub(super) fn stream(self) -> (Config, ExpandedServers) {
        let Checked { top, raw } = self;
        let servers = ExpandedServers::new(raw, top.sites.clone(), top.gateway);
        let head = Config {
            sites: top.sites,
            any_host: top.any_host,
            cache_max_age: top.cache_max_age,
            upstream_refresh: top.upstream_refresh,
            servers: Vec::new(),
            warnings: Vec::new(),
        };
        (head, servers)
    }
}

impl Validator {
    pub(super) fn string<'v>(&mut self, path: &str, value: &'v Value) -> Option<&'v str> {
        match value.as_str() {
            Some(s) if s.len() > MAX_STRING_BYTES => {
                self.error(
                    path,
                    format!(
                        "is {} bytes, over the limit of {MAX_STRING_BYTES} bytes for any string in the config; shorten it",
                        s.len()
                    ),
                );
                None
            }
            Some(s) if !s.is_empty() => Some(s),
            Some(_) => {
                self.error(path, "must not be empty (clients reject empty strings); remove the key or give it a value");
                None
            }
            None => {
                self.error(path, "must be a string");
                None
            }
        }
    }

    pub(super) fn string_list(&mut self, path: &str, value: &Value) -> Vec<String> {
        self.indexed_strings(path, value)
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    }

    /// The strings of a list with their index in the file's list (items that are not non-empty
    /// strings are reported and skipped, so later items keep their own index).
    pub(super) fn indexed_strings(&mut self, path: &str, value: &Value) -> Vec<(usize, String)> {
        let Some(list) = value.as_array() else {
            self.error(path, "must be a list of strings");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in list.iter().enumerate() {
            if let Some(s) = self.string(&index(path, i), item) {
                out.push((i, s.to_owned()));
            }
        }
        out
    }

    pub(super) fn resource_paths(
        &mut self,
        path: &str,
        value: &Value,
        per_server: bool,
    ) -> Vec<String> {
        let Some(list) = value.as_array() else {
            self.error(
                path,
                "must be a list of paths such as [\"/mcp/{server}/mcp\"]",
            );
            return Vec::new();
        };
        if list.is_empty() {
            self.error(
                path,
                "must list at least one path such as \"/mcp/{server}/mcp\"",
            );
        }
        let mut out: Vec<String> = Vec::new();
        for (i, item) in list.iter().enumerate() {
            let ipath = index(path, i);
            let Some(t) = self.string(&ipath, item) else {
                continue;
            };
            if !(per_server && t == "/") {
                if let Some(why) = template_problem(t, per_server) {
                    self.error(&ipath, why);
                    continue;
                }
            }
            if !out.iter().any(|o| o == t) {
                out.push(t.to_owned());
            }
        }
        out
    }

    pub(super) fn gateway(&mut self, value: &Value) -> GatewayTemplates {
        let mut g = GatewayTemplates::default();
        let Some(obj) = value.as_object() else {
            self.error("gateway", "must be an object of URL templates");
            return g;
        };
        self.check_keys(obj, "gateway", GATEWAY_KEYS, |_| None);
        for (key, value) in obj {
            let path = child("gateway", key);
            match key.as_str() {
                "token_endpoint_auth_methods_supported" => {
                    let list = self.string_list(&path, value);
                    if list.is_empty() {
                        self.error(&path, "must list at least one method such as \"none\"");
                    }
                    g.token_endpoint_auth_methods_supported = list;
                }
                "issuer"
                | "authorization_endpoint"
                | "token_endpoint"
                | "registration_endpoint" => {
                    let Some(s) = self.string(&path, value) else {
                        continue;
                    };
                    if let Some(why) = url_template_problem(s) {
                        self.error(&path, why);
                        continue;
                    }
                    let s = s.to_owned();
                    match key.as_str() {
                        "issuer" => g.issuer = s,
                        "authorization_endpoint" => g.authorization_endpoint = s,
                        "token_endpoint" => g.token_endpoint = s,
                        _ => g.registration_endpoint = Some(s),
                    }
                }
                _ => {}
            }
        }
        g
    }
}

/// Why a `resource_paths` template is unusable, if it is.
pub(super) fn template_problem(t: &str, per_server: bool) -> Option<String> {
    let example = "such as \"/mcp/{server}/mcp\"";
    if !t.starts_with('/') {
        return Some(format!("must start with '/', {example}"));
    }
    if t.matches("{server}").count() != 1 {
        let root = if per_server {
            " (or be exactly \"/\")"
        } else {
            ""
        };
        return Some(format!(
            "must contain {{server}} exactly once{root}, {example}"
        ));
    }
    if t.len() > 1 && t.ends_with('/') {
        return Some("must not end with '/': clients compare the resource URL exactly; remove the trailing slash".into());
    }
    let bare = t.replace("{server}", "x");
    if bare.split('/').any(|seg| seg == "." || seg == "..") || bare.contains("//") {
        return Some("must not contain empty, \".\" or \"..\" segments (clients normalise them away); remove them".into());
    }
    if let Some(c) = bare
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/-._~!$&'()*+,;=:@".contains(*c)))
    {
        return Some(format!(
            "character {c:?} would be percent-encoded by clients, so the resource would not match; use only letters, digits and -._~!$&'()*+,;=:@"
        ));
    }
    None
}
