//! The URL rules: what every URL in the config must be (absolute http(s), no credentials,
//! fragment, secret-looking query parameter, whitespace or backslash), what an issuer adds
//! (RFC 8414 §2: no query or fragment, kept byte for byte), and what a `public_url` becomes as a
//! [`Site`] (its `Host` keys, and what the URL parser would rewrite silently).

pub(super) use crate::addr::is_loopback_host;
use url::Url;

use super::Site;
use super::keys::is_secret_key;
use super::validate::Validator;

impl Validator {
    pub(super) fn site(&mut self, path: &str, s: &str) -> Option<Site> {
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
    pub(super) fn http_url(&mut self, path: &str, s: &str) -> Option<Url> {
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

    /// Checks an issuer as written: absolute http(s), no query or fragment. Kept byte-for-byte;
    /// the parsed URL is returned for the checks that follow.
    pub(super) fn issuer(&mut self, path: &str, s: &str) -> Option<Url> {
        let url = self.http_url(path, s)?;
        if url.query().is_some() {
            self.error(
                path,
                "an issuer must not have a query (RFC 8414 §2); remove it",
            );
            return None;
        }
        if s.contains('#') {
            self.error(
                path,
                "an issuer must not have a fragment (RFC 8414 §2); remove it",
            );
            return None;
        }
        Some(url)
    }
}

/// Why a URL template (`{public_url}/{server}/token`) is unusable, before expansion.
pub(super) fn url_template_problem(t: &str) -> Option<String> {
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

/// The host and port of an authority as written (`[::1]:8080` → `[::1]`, `8080`).
pub(super) fn split_authority(authority: &str) -> (&str, Option<&str>) {
    let host_end = if authority.starts_with('[') {
        authority.find(']').map_or(authority.len(), |i| i + 1)
    } else {
        authority.rfind(':').unwrap_or(authority.len())
    };
    let (host, rest) = authority.split_at(host_end);
    (host, rest.strip_prefix(':'))
}
