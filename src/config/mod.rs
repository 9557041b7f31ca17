//! The config file: parse the JSON text, then validate it into a checked [`Config`] in which every
//! URL is already expanded for every `public_url`, so building the served snapshot cannot fail.
//!
//! Validation never stops at the first problem: a syntax error ends parsing (nothing else can be
//! trusted), but every semantic problem after that is collected, each with its line, column, JSON
//! path and a sentence saying how to fix it. Values of keys that look like secrets are never echoed.

mod locate;
pub mod read;
mod syntax;

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use serde_json::{Map, Value};
use url::Url;

pub use locate::Pos;
use locate::{child, index};

/// The default `resource_paths` templates (DESIGN.md §3).
pub const DEFAULT_RESOURCE_PATHS: [&str; 3] =
    ["/mcp/{server}/mcp", "/mcp/{server}", "/{server}/mcp"];
/// The default `cache_max_age`, in seconds.
pub const DEFAULT_CACHE_MAX_AGE: u64 = 300;
/// The largest `cache_max_age` accepted: one year, in seconds.
const MAX_CACHE_MAX_AGE: u64 = 31_536_000;
/// The shortest `upstream_refresh`: more often would only load the IdP.
const MIN_UPSTREAM_REFRESH: std::time::Duration = std::time::Duration::from_secs(10);
/// The longest `upstream_refresh`, 7 days: IdPs rotate their endpoints and keys more often than
/// that, and a longer timer only hides a typo (`"3600h"`).
pub const MAX_UPSTREAM_REFRESH: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);
/// The longest string accepted anywhere in the config, in bytes: URLs beyond 2 KiB break proxies
/// and browsers, and nothing else here needs more.
pub const MAX_STRING_BYTES: usize = 2048;
/// A hint (`WWW-Authenticate` value) longer than this does not fit the default header buffers of
/// common proxies (nginx's `proxy_buffer_size` is 4 KiB, response head included).
pub const MAX_HINT_BYTES: usize = 4096;
/// The default issuer template for facade and gateway servers.
const DEFAULT_ISSUER_TEMPLATE: &str = "{public_url}/{server}";

/// The config shown by `serve --demo`: DESIGN.md §3's example on `http://localhost:8080`.
pub const DEMO: &str = include_str!("demo.json");

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub pos: Option<Pos>,
    /// The JSON path (`servers.atlassian.issuer`), empty for the whole file.
    pub path: String,
    pub message: String,
}

/// Every problem of a file, ready to print one per line as `file:line:column: path: message`.
#[derive(Debug, Clone)]
pub struct Problems {
    pub file: String,
    pub list: Vec<Problem>,
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.list.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file)?;
            if let Some(pos) = p.pos {
                write!(f, ":{}:{}", pos.line, pos.column)?;
            }
            if p.path.is_empty() {
                write!(f, ": {}", p.message)?;
            } else {
                write!(f, ": {}: {}", p.path, p.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// A validated config: every template expanded, every URL checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// One entry per `public_url`, in file order.
    pub sites: Vec<Site>,
    /// `public_url` was a single string: every `Host` gets the first site.
    pub any_host: bool,
    pub cache_max_age: u64,
    /// How often discovered upstream metadata is fetched again.
    pub upstream_refresh: std::time::Duration,
    pub servers: Vec<Server>,
    /// Things that work but will surprise someone; printed by `check` and logged by `serve`.
    pub warnings: Vec<Problem>,
}

/// One `public_url`: the origin clients use and the path prefix every resource lives under.
#[derive(Debug, Clone)]
pub struct Site {
    /// `https://gw.example.com` (scheme, lower-case host, port only when not the default).
    pub origin: String,
    /// `/litellm`, or empty.
    pub prefix: String,
    /// The `Host` header values that select this site, lower case (`gw.example.com`,
    /// `gw.example.com:443`).
    pub host_keys: Vec<String>,
}

impl Site {
    /// `origin` + `prefix`: what `{public_url}` expands to.
    pub fn base(&self) -> String {
        crate::registry::concat(&[&self.origin, &self.prefix])
    }

    /// The full path of resource path `path` on this site (`/litellm/mcp/x/mcp`; `/` alone stays `/`
    /// without a prefix).
    pub fn full_path(&self, path: &str) -> String {
        match (path, self.prefix.is_empty()) {
            ("/", true) => "/".to_owned(),
            ("/", false) => self.prefix.clone(),
            (p, _) => crate::registry::concat(&[&self.prefix, p]),
        }
    }

    /// The URL a client uses for a resource at `full_path` (the PRM `resource`).
    pub fn resource_url(&self, full_path: &str) -> String {
        if full_path == "/" {
            self.origin.clone()
        } else {
            crate::registry::concat(&[&self.origin, full_path])
        }
    }
}

/// The mode of a server, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeKind {
    Delegate,
    Facade,
    Gateway,
    None,
}

impl ModeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModeKind::Delegate => "delegate",
            ModeKind::Facade => "facade",
            ModeKind::Gateway => "gateway",
            ModeKind::None => "none",
        }
    }
}

/// One MCP server.
#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    pub mode: ModeKind,
    /// Empty when the server has none.
    pub scopes: Vec<String>,
    pub resource_name: Option<String>,
    pub resource_documentation: Option<String>,
    /// Resource paths relative to a site (without the `public_url` prefix), deduplicated.
    pub paths: Vec<String>,
    /// The upstream IdP's issuer (delegate and facade), byte-for-byte.
    pub upstream_issuer: Option<String>,
    /// `"discover": true`: fetch the upstream's metadata at runtime (and fill a facade's
    /// endpoints the config leaves out).
    pub discover: bool,
    /// The authorization server advertised in this server's PRM, per site (same order as
    /// [`Config::sites`]); empty for mode `none`.
    pub auth: Vec<AuthServer>,
}

/// The authorization server of one server on one site.
#[derive(Debug, Clone)]
pub struct AuthServer {
    /// The issuer, byte-for-byte (`authorization_servers[0]`).
    pub issuer: String,
    /// Metadata signpost serves for this issuer (facade and gateway), else `None` (delegate).
    pub hosted: Option<HostedAs>,
}

/// An authorization-server document signpost serves.
#[derive(Debug, Clone)]
pub struct HostedAs {
    /// Index of the site whose origin the issuer lives under.
    pub site: usize,
    /// `/.well-known/oauth-authorization-server/<issuer path>`.
    pub well_known_path: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub registration_endpoint: Option<String>,
    /// Empty: omitted from the document.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// `client_id_metadata_document_supported` from the server's config; `None`: a facade takes
    /// the upstream's, a gateway omits it.
    pub client_id_metadata_document_supported: Option<bool>,
}

/// Decodes (UTF-8 only, with a fix for every other encoding), parses and validates a config
/// file's bytes. `file` names it in problems.
pub fn parse_bytes(bytes: &[u8], file: &str) -> Result<Config, Problems> {
    match syntax::decode(bytes) {
        Ok(text) => parse(text, file),
        Err(problem) => Err(Problems {
            file: file.to_owned(),
            list: vec![problem],
        }),
    }
}

/// Parses and validates a config file's text. `file` names it in problems.
pub fn parse(text: &str, file: &str) -> Result<Config, Problems> {
    let problems = |list| Problems {
        file: file.to_owned(),
        list,
    };
    // A byte-order mark (Windows editors write one) is not JSON; editors do not show it either.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let root: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let what = e.to_string();
            let what = what.rsplit_once(" at line ").map_or(&*what, |(m, _)| m);
            let pos = syntax_error_pos(text, e.line(), e.column());
            let message = format!("invalid JSON: {what}; {}", syntax::fix(text, pos, what));
            return Err(problems(vec![Problem {
                pos: Some(pos),
                path: String::new(),
                message,
            }]));
        }
    };
    // Duplicate keys need the full locator; otherwise positions are looked up afterwards, only
    // for the paths a problem or warning names (the common, clean case never pays for it).
    let all = locate::has_duplicate_keys(text).then(|| locate::locate(text));
    let mut v = Validator {
        problems: Vec::new(),
        warnings: Vec::new(),
        expanding: None,
        facades: Vec::new(),
    };
    for (path, pos) in all.iter().flat_map(|l| &l.duplicates) {
        v.problems.push(Noted {
            problem: Problem {
                pos: Some(*pos),
                path: path.clone(),
                message: "duplicate key; JSON keeps only one of them silently, so remove the other"
                    .into(),
            },
            anchor: Anchor::Fixed,
        });
    }
    let config = v.config(root);
    let (mut problems_found, mut warnings) = (v.problems, v.warnings);
    if !problems_found.is_empty() || !warnings.is_empty() {
        let loc = match all {
            Some(loc) => loc,
            None => {
                let named = problems_found
                    .iter()
                    .chain(&warnings)
                    .map(|n| n.problem.path.clone());
                locate::locate_only(text, &named.collect())
            }
        };
        for n in problems_found.iter_mut().chain(warnings.iter_mut()) {
            n.problem.pos = match n.anchor {
                Anchor::Fixed => n.problem.pos,
                Anchor::Key => loc.key(&n.problem.path),
                Anchor::Value => loc.value(&n.problem.path),
            };
        }
    }
    let sorted = |mut list: Vec<Noted>| {
        list.sort_by_key(|n| n.problem.pos.map(|p| (p.line, p.column)));
        list.into_iter().map(|n| n.problem).collect::<Vec<_>>()
    };
    if problems_found.is_empty() {
        let mut config = config.expect("a config is built whenever no problem was found");
        config.warnings = sorted(warnings);
        Ok(config)
    } else {
        Err(problems(sorted(problems_found)))
    }
}

/// Where a problem points, resolved to a line and column once validation is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Anchor {
    /// The position is known already (or there is none).
    Fixed,
    /// The key of the problem's path.
    Key,
    /// The value of the problem's path.
    Value,
}

/// A problem and what its position will be taken from.
struct Noted {
    problem: Problem,
    anchor: Anchor,
}

/// The position of a `serde_json` syntax error, in the units every other problem uses: serde_json
/// counts the bytes read on the line (0 when none was), problems count characters from 1.
fn syntax_error_pos(text: &str, line: usize, byte_column: usize) -> Pos {
    let line_text = text.split('\n').nth(line.saturating_sub(1)).unwrap_or("");
    let mut end = byte_column.min(line_text.len());
    // A multi-byte character cut by the error belongs to it: count it.
    while !line_text.is_char_boundary(end) {
        end += 1;
    }
    Pos {
        line: line.max(1),
        column: line_text[..end].chars().count().max(1),
    }
}

struct Validator {
    problems: Vec<Noted>,
    warnings: Vec<Noted>,
    /// While expanding templates for every server and site, one bad template (`gateway.issuer`,
    /// a fixed `facade_issuer` with several sites) would otherwise be reported once per expansion:
    /// report each (path, position) once.
    expanding: Option<Reported>,
    /// The `mode` paths of facade servers, for the one RFC 9207 caveat `check` prints.
    facades: Vec<String>,
}

/// The (JSON path, line and column) of each problem already reported.
type Reported = HashSet<(String, Anchor)>;

/// The top-level `gateway` templates.
struct GatewayTemplates {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    registration_endpoint: Option<String>,
    token_endpoint_auth_methods_supported: Vec<String>,
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

/// A server as written, before its URLs are expanded for each site.
struct RawServer {
    name: String,
    path: String,
    mode: ModeKind,
    scopes: Vec<String>,
    resource_name: Option<String>,
    resource_documentation: Option<String>,
    paths: Vec<String>,
    issuer: Option<String>,
    facade_issuer: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    registration_endpoint: Option<String>,
    discover: bool,
    client_id_metadata_document_supported: Option<bool>,
}

const MODES: &[&str] = &["delegate", "facade", "gateway", "none"];
const TOP_KEYS: &[&str] = &[
    "public_url",
    "resource_paths",
    "cache_max_age",
    "upstream_refresh",
    "gateway",
    "servers",
];
const GATEWAY_KEYS: &[&str] = &[
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "registration_endpoint",
    "token_endpoint_auth_methods_supported",
];
const COMMON_SERVER_KEYS: &[&str] = &[
    "mode",
    "scopes",
    "resource_name",
    "resource_documentation",
    "resource_paths",
];
/// Advertise client ID metadata documents in the AS document signpost serves (facade, gateway).
const CIMD_KEY: &str = "client_id_metadata_document_supported";
const FACADE_KEYS: &[&str] = &[
    "issuer",
    "facade_issuer",
    "authorization_endpoint",
    "token_endpoint",
    "registration_endpoint",
];

impl Validator {
    /// A problem at a known position.
    fn error_at(&mut self, pos: Option<Pos>, path: &str, message: impl Into<String>) {
        self.note(pos, Anchor::Fixed, path, message.into());
    }

    fn note(&mut self, pos: Option<Pos>, anchor: Anchor, path: &str, message: String) {
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
    fn error(&mut self, path: &str, message: impl Into<String>) {
        self.note(None, Anchor::Value, path, message.into());
    }

    /// A problem with the key at `path` (unknown, misplaced, secret).
    fn key_error(&mut self, path: &str, message: impl Into<String>) {
        self.note(None, Anchor::Key, path, message.into());
    }

    fn warn(&mut self, path: &str, message: impl Into<String>) {
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
    fn check_keys(
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

    fn config(&mut self, root: Value) -> Option<Config> {
        let Value::Object(mut obj) = root else {
            self.error(
                "",
                "the config must be a JSON object with at least \"public_url\" and \"servers\"",
            );
            return None;
        };
        self.check_keys(&obj, "", TOP_KEYS, |_| None);

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
            None => crate::upstream::DEFAULT_REFRESH,
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
                        crate::upstream::DEFAULT_REFRESH
                    }
                }
            }
        };

        let gateway = match obj.get("gateway") {
            None => GatewayTemplates::default(),
            Some(value) => self.gateway(value),
        };

        let mut raw = Vec::new();
        // Taken out of the tree: each server's JSON is freed as soon as it is validated, so a
        // large file never holds its whole tree and all its servers at once.
        match obj.remove("servers") {
            None => self.error_at(
                Some(Pos { line: 1, column: 1 }),
                "servers",
                "missing; add \"servers\": {\"<name>\": {\"mode\": \"delegate\", \"issuer\": \"https://…\"}}",
            ),
            Some(Value::Object(servers)) => {
                if servers.is_empty() {
                    self.warn("servers", "no servers: signpost will answer 404 to every discovery request");
                }
                raw.reserve(servers.len());
                for (name, value) in servers {
                    if let Some(server) = self.server(&name, &value, &default_paths) {
                        raw.push(server);
                    }
                }
            }
            Some(_) => self.error("servers", "must be an object mapping server names to their settings"),
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
        self.expanding = Some(HashSet::new());
        let servers = self.expand(raw, &sites, &gateway);
        self.expanding = None;
        self.conflicting_issuers(&servers);
        (self.problems.is_empty()).then(|| Config {
            sites,
            any_host,
            cache_max_age,
            upstream_refresh,
            servers,
            warnings: Vec::new(),
        })
    }

    fn site(&mut self, path: &str, s: &str) -> Option<Site> {
        let url = self.http_url(path, s)?;
        if url.query().is_some() {
            self.error(path, "must not have a query (?…); remove it");
            return None;
        }
        let origin = url.origin().ascii_serialization();
        let prefix = url.path().trim_end_matches('/').to_owned();
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        // What the URL parser would rewrite silently is refused or warned about, with the fix.
        let authority = s
            .split_once("://")
            .map_or("", |(_, rest)| rest)
            .split(['/', '?', '#'])
            .next()
            .unwrap_or("");
        let (written_host, written_port) = split_authority(authority);
        if host.ends_with('.') {
            let fixed = s.replacen(written_host, written_host.trim_end_matches('.'), 1);
            self.error(
                path,
                format!("the host ends with a dot, which clients do not send in Host, so no request would match; write {fixed}"),
            );
            return None;
        }
        if written_host != url.host_str().unwrap_or_default() {
            let shown = url.host_str().unwrap_or_default();
            let why = if written_host.is_ascii() {
                "host names are compared in lower case"
            } else {
                "clients send a non-ASCII host name in its ASCII (punycode) form"
            };
            self.warn(
                path,
                format!("the host is served as {shown} ({why}); write it that way"),
            );
        }
        if let (Some(port), None) = (written_port, url.port()) {
            if !port.is_empty() {
                self.warn(
                    path,
                    format!("port {port} is the default for {} and is left out of every served URL; remove it", url.scheme()),
                );
            }
        }
        let host_keys = match (url.port(), url.port_or_known_default()) {
            (Some(port), _) => vec![format!("{host}:{port}")],
            (None, Some(default)) => vec![host.clone(), format!("{host}:{default}")],
            (None, None) => vec![host.clone()],
        };
        if url.scheme() == "http" && !is_loopback_host(&host) {
            self.warn(
                path,
                "plain http on a non-loopback host: MCP clients require https for authorization; use the https URL clients see",
            );
        }
        Some(Site {
            origin,
            prefix,
            host_keys,
        })
    }

    /// Parses an absolute http(s) URL without credentials or fragment.
    fn http_url(&mut self, path: &str, s: &str) -> Option<Url> {
        // URL parsers drop tabs, newlines and surrounding spaces silently, so the URL they see is
        // not the string signpost would serve (an issuer with them never matches its metadata).
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            self.error(
                path,
                "must not contain spaces or control characters (URL parsers drop or encode them); remove them or write %20",
            );
            return None;
        }
        if s.contains('\\') {
            self.error(
                path,
                "contains a backslash, which URL parsers read as '/' (so clients would use another URL); write '/' or %5C",
            );
            return None;
        }
        let url = match Url::parse(s) {
            Ok(url) => url,
            Err(e) => {
                self.error(
                    path,
                    format!("not an absolute URL ({e}); write it like \"https://host/path\""),
                );
                return None;
            }
        };
        // Checked first, so no later message can echo the value.
        if let Some((name, _)) = url.query_pairs().find(|(name, _)| is_secret_key(name)) {
            let name: String = name.chars().take(40).collect();
            self.error(
                path,
                format!(
                    "query parameter \"{name}\" looks like a secret, and this URL is served to anyone who asks; secrets do not belong in signpost's config: remove the parameter (and rotate the secret if it was real)"
                ),
            );
            return None;
        }
        if url.port() == Some(0) {
            self.error(
                path,
                "port 0 is not a port clients can connect to; write the real port, or none for the scheme's default",
            );
            return None;
        }
        if !matches!(url.scheme(), "http" | "https") {
            self.error(
                path,
                format!(
                    "scheme \"{}\" is not allowed; use https (or http for loopback)",
                    url.scheme()
                ),
            );
            return None;
        }
        if url.host_str().is_none_or(str::is_empty) {
            self.error(path, "has no host; write it like \"https://host/path\"");
            return None;
        }
        if !url.username().is_empty() || url.password().is_some() {
            self.error(
                path,
                "must not carry credentials (user:password@); remove them",
            );
            return None;
        }
        if url.fragment().is_some() {
            self.error(path, "must not have a fragment (#…); remove it");
            return None;
        }
        Some(url)
    }

    /// Checks an issuer as written: absolute http(s), no query or fragment. Kept byte-for-byte.
    fn issuer(&mut self, path: &str, s: &str) -> bool {
        let Some(url) = self.http_url(path, s) else {
            return false;
        };
        if url.query().is_some() {
            self.error(
                path,
                "an issuer must not have a query (RFC 8414 §2); remove it",
            );
            return false;
        }
        if s.contains('#') {
            self.error(
                path,
                "an issuer must not have a fragment (RFC 8414 §2); remove it",
            );
            return false;
        }
        true
    }

    fn string<'v>(&mut self, path: &str, value: &'v Value) -> Option<&'v str> {
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

    fn string_list(&mut self, path: &str, value: &Value) -> Vec<String> {
        self.indexed_strings(path, value)
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    }

    /// The strings of a list with their index in the file's list (items that are not non-empty
    /// strings are reported and skipped, so later items keep their own index).
    fn indexed_strings(&mut self, path: &str, value: &Value) -> Vec<(usize, String)> {
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

    fn resource_paths(&mut self, path: &str, value: &Value, per_server: bool) -> Vec<String> {
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

    fn gateway(&mut self, value: &Value) -> GatewayTemplates {
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

    fn server(&mut self, name: &str, value: &Value, default_paths: &[String]) -> Option<RawServer> {
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
            path: path.clone(),
            mode: mode.unwrap_or(ModeKind::None),
            scopes: Vec::new(),
            resource_name: None,
            resource_documentation: None,
            paths: default_paths.to_vec(),
            issuer: None,
            facade_issuer: None,
            authorization_endpoint: None,
            token_endpoint: None,
            registration_endpoint: None,
            discover: false,
            client_id_metadata_document_supported: None,
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
                "resource_name" => {
                    server.resource_name = self.string(&kpath, value).map(str::to_owned)
                }
                "resource_documentation" => {
                    if let Some(s) = self.string(&kpath, value) {
                        if self.http_url(&kpath, s).is_some() {
                            server.resource_documentation = Some(s.to_owned());
                        }
                    }
                }
                "resource_paths" => server.paths = self.resource_paths(&kpath, value, true),
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
                        if self.issuer(&kpath, s) {
                            server.issuer = Some(s.to_owned());
                            if let Ok(url) = Url::parse(s) {
                                if url.scheme() == "http"
                                    && !is_loopback_host(url.host_str().unwrap_or(""))
                                {
                                    self.warn(&kpath, "plain http issuer on a non-loopback host: MCP clients require https; use the IdP's https issuer");
                                }
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
                            None => server.facade_issuer = Some(s.to_owned()),
                        }
                    }
                }
                "authorization_endpoint" | "token_endpoint" | "registration_endpoint" => {
                    if let Some(s) = self.string(&kpath, value) {
                        if self.http_url(&kpath, s).is_some() {
                            let s = Some(s.to_owned());
                            match key.as_str() {
                                "authorization_endpoint" => server.authorization_endpoint = s,
                                "token_endpoint" => server.token_endpoint = s,
                                _ => server.registration_endpoint = s,
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
                if server.registration_endpoint.is_none()
                    && !server.discover
                    && server.client_id_metadata_document_supported != Some(true)
                {
                    self.warn(&path, "facade without \"registration_endpoint\": the TypeScript SDK cannot register a client and the Python SDK posts to the gateway's /register; add the upstream's registration endpoint if it has one");
                }
            }
            _ => {}
        }
        for p in &mut server.paths {
            if p.contains("{server}") {
                *p = p.replace("{server}", name);
            }
        }
        (ok && mode.is_some()).then_some(server)
    }

    /// Two servers producing the same resource path is an error (which one would own the hint?).
    fn conflicting_paths(&mut self, servers: &[RawServer]) {
        let mut owner: rustc_hash::FxHashMap<&str, &str> = Default::default();
        let mut reported = BTreeSet::new();
        for s in servers {
            for p in &s.paths {
                match owner.get(p.as_str()) {
                    Some(other) if *other != s.name => {
                        if reported.insert((s.name.clone(), p.clone())) {
                            self.key_error(
                                &s.path,
                                format!(
                                    "resource path {p} is also produced by server \"{other}\"; give one of them its own \"resource_paths\""
                                ),
                            );
                        }
                    }
                    _ => {
                        owner.insert(p, &s.name);
                    }
                }
            }
        }
    }

    /// Expands each server's templates for every site.
    fn expand(
        &mut self,
        raw: Vec<RawServer>,
        sites: &[Site],
        gateway: &GatewayTemplates,
    ) -> Vec<Server> {
        let mut out = Vec::with_capacity(raw.len());
        for r in raw {
            let mut auth = Vec::with_capacity(sites.len());
            for (si, site) in sites.iter().enumerate() {
                let base = site.base();
                let fill = |t: &str| {
                    t.replace("{public_url}", &base)
                        .replace("{server}", &r.name)
                };
                let a = match r.mode {
                    ModeKind::None => continue,
                    ModeKind::Delegate => AuthServer {
                        issuer: r.issuer.clone().unwrap_or_default(),
                        hosted: None,
                    },
                    ModeKind::Facade => {
                        let template = r
                            .facade_issuer
                            .as_deref()
                            .unwrap_or(DEFAULT_ISSUER_TEMPLATE);
                        let issuer = fill(template);
                        let ipath = if r.facade_issuer.is_some() {
                            child(&r.path, "facade_issuer")
                        } else {
                            r.path.clone()
                        };
                        let Some(site_of) = self.hosted_issuer(&ipath, &issuer, si, sites) else {
                            continue;
                        };
                        AuthServer {
                            hosted: Some(HostedAs {
                                site: site_of,
                                well_known_path: as_well_known_path(&issuer),
                                authorization_endpoint: r
                                    .authorization_endpoint
                                    .clone()
                                    .unwrap_or_default(),
                                token_endpoint: r.token_endpoint.clone().unwrap_or_default(),
                                registration_endpoint: r.registration_endpoint.clone(),
                                token_endpoint_auth_methods_supported: Vec::new(),
                                client_id_metadata_document_supported: r
                                    .client_id_metadata_document_supported,
                            }),
                            issuer,
                        }
                    }
                    ModeKind::Gateway => {
                        let issuer = fill(&gateway.issuer);
                        let Some(site_of) =
                            self.hosted_issuer("gateway.issuer", &issuer, si, sites)
                        else {
                            continue;
                        };
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
                        AuthServer {
                            hosted: Some(HostedAs {
                                site: site_of,
                                well_known_path: as_well_known_path(&issuer),
                                authorization_endpoint,
                                token_endpoint,
                                registration_endpoint,
                                token_endpoint_auth_methods_supported: gateway
                                    .token_endpoint_auth_methods_supported
                                    .clone(),
                                client_id_metadata_document_supported: r
                                    .client_id_metadata_document_supported,
                            }),
                            issuer,
                        }
                    }
                };
                auth.push(a);
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
    /// only serve metadata on the origin it answers for). Returns that site, preferring `prefer`.
    fn hosted_issuer(
        &mut self,
        path: &str,
        issuer: &str,
        prefer: usize,
        sites: &[Site],
    ) -> Option<usize> {
        if !self.issuer(path, issuer) {
            return None;
        }
        let url = Url::parse(issuer).ok()?;
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
        found
    }

    /// Two hosted issuers at the same well-known URL would serve two documents at one address.
    fn conflicting_issuers(&mut self, servers: &[Server]) {
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
pub fn as_well_known_path(issuer: &str) -> String {
    let path = Url::parse(issuer)
        .map(|u| u.path().to_owned())
        .unwrap_or_default();
    format!(
        "/.well-known/oauth-authorization-server{}",
        path.trim_end_matches('/')
    )
}

/// Why a `resource_paths` template is unusable, if it is.
fn template_problem(t: &str, per_server: bool) -> Option<String> {
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

/// Why a URL template (`{public_url}/{server}/token`) is unusable, before expansion.
fn url_template_problem(t: &str) -> Option<String> {
    let rest = t.replace("{public_url}", "").replace("{server}", "");
    if rest.contains('{') || rest.contains('}') {
        return Some(
            "only {public_url} and {server} may appear in braces; fix the template".into(),
        );
    }
    if !t.starts_with("{public_url}") && !t.starts_with("https://") && !t.starts_with("http://") {
        return Some("must start with {public_url} or an absolute https:// URL".into());
    }
    None
}

/// RFC 6749 §3.3 `NQCHAR`: `%x21 / %x23-5B / %x5D-7E`.
pub fn is_scope_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// Keys that could hold a secret, however they are spelled: `client_secret`, `clientSecret`,
/// `CLIENT-SECRET`, `apiKey`, `privateKey`, `accessToken`, `password`…
fn is_secret_key(key: &str) -> bool {
    let k: String = key
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    const EXACT: &[&str] = &["credential", "credentials", "clientassertion", "pwd"];
    const PARTS: &[&str] = &[
        "secret",
        "password",
        "passwd",
        "passphrase",
        "apikey",
        "privatekey",
        "signingkey",
    ];
    // `token`, `accessToken`, `refresh_token`, `id-token`…, but not `token_endpoint`.
    EXACT.contains(&k.as_str())
        || k.ends_with("token")
        || k.ends_with("tokens")
        || PARTS.iter().any(|p| k.contains(p))
}

/// The host and port of an authority as written (`[::1]:8080` → `[::1]`, `8080`).
fn split_authority(authority: &str) -> (&str, Option<&str>) {
    let host_end = if authority.starts_with('[') {
        authority.find(']').map_or(authority.len(), |i| i + 1)
    } else {
        authority.rfind(':').unwrap_or(authority.len())
    };
    let (host, rest) = authority.split_at(host_end);
    (host, rest.strip_prefix(':'))
}

/// What kind of JSON value `v` is, for "found a number" messages.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The allowed key closest to a misspelled one, if it is close enough to be a typo.
fn closest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (edit_distance(key, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests;
