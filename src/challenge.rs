//! The `WWW-Authenticate` challenge a gateway puts on its 401/403 (DESIGN.md §5), shared by the
//! admin `/challenge` endpoint and `signpost hint`. One line, `Bearer` first, every value quoted
//! and escaped (RFC 6750 §3).

use hyper::StatusCode;

use crate::config::{ModeKind, Server, Site, is_scope_char};
use crate::registry::{Registry, concat, prm_path};

/// The `error` a gateway reports with its 401/403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No token was presented: no `error` attribute (RFC 6750 §3.1).
    NoToken,
    InvalidToken,
    InsufficientScope,
}

impl AuthError {
    /// Parses the `error` query value; `None` for a value signpost does not know.
    pub fn parse(value: &str) -> Option<AuthError> {
        match value {
            "" => Some(AuthError::NoToken),
            "invalid_token" => Some(AuthError::InvalidToken),
            "insufficient_scope" => Some(AuthError::InsufficientScope),
            _ => None,
        }
    }
}

/// A complete challenge answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub status: StatusCode,
    /// The `WWW-Authenticate` value.
    pub header: String,
    /// OAuth-style JSON error body.
    pub body: String,
    /// The server owning the resource, when one does.
    pub server: Option<String>,
    /// Requested scopes dropped because they are not RFC 6749 scope tokens.
    pub dropped_scopes: Vec<String>,
}

/// Builds the challenge for `resource` (a URL or path; `None` when the proxy sent none).
pub fn challenge(
    registry: &Registry,
    resource: Option<&str>,
    host: Option<&[u8]>,
    error: AuthError,
    requested_scope: Option<&str>,
) -> Challenge {
    let resolved = resource.and_then(|r| registry.resolve(r, host));
    let owner = resolved.and_then(|r| r.server);
    let mut header = String::from("Bearer ");
    let mut scopes: Vec<&str> = Vec::new();
    match (resolved, owner) {
        (Some(r), Some((server, path))) if server.mode != ModeKind::None => {
            let url = format!("{}{}", r.site.site.origin, prm_path(path));
            push_param(&mut header, "resource_metadata", &url);
            scopes.extend(server.scopes.iter().map(String::as_str));
        }
        _ => {
            let site = resolved
                .map(|r| r.site)
                .or_else(|| registry.site_for_host(host))
                .or_else(|| registry.first_site());
            let realm = site.map(|s| s.site.base()).unwrap_or_default();
            push_param(&mut header, "realm", &realm);
        }
    }
    let mut dropped_scopes = Vec::new();
    if error == AuthError::InsufficientScope {
        for s in requested_scope
            .unwrap_or("")
            .split([' ', '\t'])
            .filter(|s| !s.is_empty())
        {
            if !s.bytes().all(is_scope_char) {
                dropped_scopes.push(s.to_owned());
            } else if !scopes.contains(&s) {
                scopes.push(s);
            }
        }
    }
    if !scopes.is_empty() {
        push_param(&mut header, "scope", &scopes.join(" "));
    }
    let (status, code, description) = match error {
        AuthError::NoToken => (
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "authentication required; the WWW-Authenticate header says where to log in",
        ),
        AuthError::InvalidToken => (
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the access token is invalid or expired; log in again",
        ),
        AuthError::InsufficientScope => (
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the access token lacks the scope this request needs; log in again with the scope in the WWW-Authenticate header",
        ),
    };
    if error != AuthError::NoToken {
        push_param(&mut header, "error", code);
    }
    let body = serde_json::json!({ "error": code, "error_description": description }).to_string();
    Challenge {
        status,
        header,
        body,
        server: owner.map(|(s, _)| s.name.clone()),
        dropped_scopes,
    }
}

/// The challenge without an error for `server` at `full_path` on `site`: what `/challenge` answers
/// for that resource when no token was presented (used by `check` for every resource path).
pub fn hint(site: &Site, server: &Server, full_path: &str) -> String {
    let mut header = String::from("Bearer ");
    if server.mode == ModeKind::None {
        push_param(&mut header, "realm", &site.base());
    } else {
        let url = concat(&[&site.origin, &prm_path(full_path)]);
        push_param(&mut header, "resource_metadata", &url);
        if !server.scopes.is_empty() {
            push_param(&mut header, "scope", &server.scopes.join(" "));
        }
    }
    header
}

/// Appends `name="value"` (with `, ` after the first parameter), escaping `\` and `"` and dropping
/// control characters so the header stays one valid line.
fn push_param(header: &mut String, name: &str, value: &str) {
    if !header.ends_with(' ') {
        header.push_str(", ");
    }
    header.push_str(name);
    header.push_str("=\"");
    for c in value.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            header.push('\\');
        }
        header.push(c);
    }
    header.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_quotes_and_backslashes_and_drops_newlines() {
        let mut h = String::from("Bearer ");
        push_param(&mut h, "realm", "a\"b\\c\r\nd");
        push_param(&mut h, "scope", "x");
        assert_eq!(h, r#"Bearer realm="a\"b\\cd", scope="x""#);
    }
}
