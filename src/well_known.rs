//! The well-known URL rules of OAuth discovery, written once: the RFC 9728 protected-resource
//! metadata paths, the RFC 8414 and OpenID Connect authorization-server metadata paths, and the
//! order MCP clients try them in. A leaf: it imports nothing of this crate.
//!
//! Used by upstream discovery (which metadata URLs of an issuer to fetch), `signpost probe`
//! (every URL each client family requests) and `signpost import` (where a gateway's metadata is).

use url::Url;

/// The well-known prefix of protected-resource metadata (RFC 9728 §3).
pub const PRM_PREFIX: &str = "/.well-known/oauth-protected-resource";
/// The well-known prefix of authorization-server metadata (RFC 8414 §3).
pub const AS_PREFIX: &str = "/.well-known/oauth-authorization-server";
/// The well-known prefix of OpenID Connect discovery.
pub const OIDC_PREFIX: &str = "/.well-known/openid-configuration";

/// The well-known PRM path of a resource at `full_path` (RFC 9728 §3.1).
pub fn prm_path(full_path: &str) -> String {
    if full_path == "/" {
        PRM_PREFIX.to_owned()
    } else {
        [PRM_PREFIX, full_path].concat()
    }
}

/// A URL's path without one trailing `/` (`""` for the root).
pub fn trimmed_path(u: &Url) -> &str {
    let p = u.path();
    p.strip_suffix('/').unwrap_or(p)
}

/// `path` on `u`'s origin, without query or fragment.
fn at(u: &Url, path: &str) -> Url {
    let mut out = u.clone();
    out.set_path(path);
    out.set_query(None);
    out.set_fragment(None);
    out
}

/// RFC 9728 §3.1: `/.well-known/oauth-protected-resource` inserted before the resource's path.
pub fn prm_path_inserted(resource: &Url) -> Url {
    at(resource, &[PRM_PREFIX, trimmed_path(resource)].concat())
}

/// The root form, `/.well-known/oauth-protected-resource`.
pub fn prm_root(resource: &Url) -> Url {
    at(resource, PRM_PREFIX)
}

/// rmcp's extra form: `<path>/.well-known/oauth-protected-resource`.
pub fn prm_suffixed(resource: &Url) -> Url {
    at(resource, &[trimmed_path(resource), PRM_PREFIX].concat())
}

/// Every PRM URL any client tries for a resource: path-inserted, rmcp's suffixed form, root
/// (deduplicated; for a resource at the root they are one URL).
pub fn prm_urls(resource: &Url) -> Vec<Url> {
    let mut out: Vec<Url> = Vec::new();
    for u in [
        prm_path_inserted(resource),
        prm_suffixed(resource),
        prm_root(resource),
    ] {
        if !out.contains(&u) {
            out.push(u);
        }
    }
    out
}

/// The metadata URLs of an issuer in the order MCP clients try them. `path` is the issuer's path
/// without its trailing `/` (the caller says how many it drops). With a path:
/// `/.well-known/oauth-authorization-server<path>`, `/.well-known/openid-configuration<path>`,
/// `<path>/.well-known/openid-configuration`, and with `rmcp_root` the root
/// `oauth-authorization-server` form rmcp also tries; without a path, the two root forms.
pub fn as_metadata_urls(issuer: &Url, path: &str, rmcp_root: bool) -> Vec<Url> {
    if path.is_empty() {
        return vec![at(issuer, AS_PREFIX), at(issuer, OIDC_PREFIX)];
    }
    let mut out = vec![
        at(issuer, &[AS_PREFIX, path].concat()),
        at(issuer, &[OIDC_PREFIX, path].concat()),
        at(issuer, &[path, OIDC_PREFIX].concat()),
    ];
    if rmcp_root {
        out.push(at(issuer, AS_PREFIX));
    }
    out
}

/// Whether a URL is one of the OpenID Connect discovery forms.
pub fn is_oidc_url(u: &Url) -> bool {
    u.path().contains(OIDC_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn strings(urls: Vec<Url>) -> Vec<String> {
        urls.iter().map(Url::to_string).collect()
    }

    #[test]
    fn prm_forms() {
        let m = u("https://gw.example.com/mcp/x/mcp?a=b");
        assert_eq!(
            strings(prm_urls(&m)),
            [
                "https://gw.example.com/.well-known/oauth-protected-resource/mcp/x/mcp",
                "https://gw.example.com/mcp/x/mcp/.well-known/oauth-protected-resource",
                "https://gw.example.com/.well-known/oauth-protected-resource",
            ]
        );
        assert_eq!(prm_urls(&u("https://gw/")).len(), 1);
        assert_eq!(prm_path("/"), PRM_PREFIX);
        assert_eq!(
            prm_path("/a/b"),
            "/.well-known/oauth-protected-resource/a/b"
        );
    }

    #[test]
    fn as_forms_in_mcp_order() {
        let issuer = u("https://as/realms/eng/");
        assert_eq!(
            strings(as_metadata_urls(&issuer, trimmed_path(&issuer), true)),
            [
                "https://as/.well-known/oauth-authorization-server/realms/eng",
                "https://as/.well-known/openid-configuration/realms/eng",
                "https://as/realms/eng/.well-known/openid-configuration",
                "https://as/.well-known/oauth-authorization-server",
            ]
        );
        assert_eq!(as_metadata_urls(&issuer, "/realms/eng", false).len(), 3);
        assert!(is_oidc_url(&as_metadata_urls(&issuer, "", true)[1]));
    }
}
