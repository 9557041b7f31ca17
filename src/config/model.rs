//! The config model: what a validated [`Config`] holds (sites, servers, their authorization
//! servers, every URL already expanded), with the defaults and limits the README's "Config
//! reference" section documents.

use std::time::Duration;

use super::Problem;

/// The default `resource_paths` templates (README, "Config reference").
pub const DEFAULT_RESOURCE_PATHS: [&str; 3] =
    ["/mcp/{server}/mcp", "/mcp/{server}", "/{server}/mcp"];
/// The default `cache_max_age`, in seconds.
pub const DEFAULT_CACHE_MAX_AGE: u64 = 300;
/// The largest `cache_max_age` accepted: one year, in seconds.
pub(super) const MAX_CACHE_MAX_AGE: u64 = 31_536_000;
/// The default `upstream_refresh`: how often discovered upstream metadata is fetched again.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(3600);
/// The shortest `upstream_refresh`: more often would only load the IdP.
pub(super) const MIN_UPSTREAM_REFRESH: Duration = Duration::from_secs(10);
/// The longest `upstream_refresh`, 7 days: IdPs rotate their endpoints and keys more often than
/// that, and a longer timer only hides a typo (`"3600h"`).
pub const MAX_UPSTREAM_REFRESH: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest string accepted anywhere in the config, in bytes: URLs beyond 2 KiB break proxies
/// and browsers, and nothing else here needs more.
pub const MAX_STRING_BYTES: usize = 2048;
/// A hint (`WWW-Authenticate` value) longer than this does not fit the default header buffers of
/// common proxies (nginx's `proxy_buffer_size` is 4 KiB, response head included).
pub const MAX_HINT_BYTES: usize = 4096;

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

impl Server {
    /// Frees every string and list the server holds, once its documents are rendered and what
    /// a request needs of it (name, mode, scopes) is copied into the registry: a build that
    /// drops its servers afterwards grows its documents into the memory this leaves.
    pub fn release(&mut self) {
        *self = Server {
            name: String::new(),
            mode: self.mode,
            scopes: Vec::new(),
            resource_name: None,
            resource_documentation: None,
            paths: Vec::new(),
            upstream_issuer: None,
            discover: self.discover,
            auth: Vec::new(),
        };
    }
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
        [self.origin.as_str(), &self.prefix].concat()
    }

    /// The full path of resource path `path` on this site (`/litellm/mcp/x/mcp`; `/` alone stays `/`
    /// without a prefix).
    pub fn full_path(&self, path: &str) -> String {
        match (path, self.prefix.is_empty()) {
            ("/", true) => "/".to_owned(),
            ("/", false) => self.prefix.clone(),
            (p, _) => [self.prefix.as_str(), p].concat(),
        }
    }

    /// The URL a client uses for a resource at `full_path` (the PRM `resource`).
    pub fn resource_url(&self, full_path: &str) -> String {
        if full_path == "/" {
            self.origin.clone()
        } else {
            [self.origin.as_str(), full_path].concat()
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
