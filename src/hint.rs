//! The no-token `WWW-Authenticate` challenge of a resource, `Bearer resource_metadata="…"` plus
//! the server's `scope`, or the site's `realm` for a `none` server: one line, `Bearer` first,
//! every value quoted and escaped (RFC 6750 §3). Built once per resource path at load (the
//! registry's table) and by `signpost check`/`hint`; `/challenge` only extends these values.

use bytes::Bytes;
use hyper::header::HeaderValue;

use crate::config::{ModeKind, Server, Site};
use crate::registry::prm_path;

/// A value built from valid parts (quoted, escaped, no control characters) is always valid; the
/// fallback keeps the answer a challenge whatever happens.
pub(crate) fn header_value(bytes: Vec<u8>) -> HeaderValue {
    HeaderValue::from_maybe_shared(Bytes::from(bytes))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

/// The site's plain challenge, `Bearer realm="<public_url>"`.
pub fn realm(site: &Site) -> HeaderValue {
    let mut header = String::from("Bearer ");
    push_param(&mut header, "realm", &site.base());
    header_value(header.into_bytes())
}

/// The no-token challenge of each of `server`'s `full_paths` on `site`, in order: one buffer
/// shared by all of them ([`hint`]'s text), or the site's `realm` for a `none` server.
pub fn hints(
    site: &Site,
    server: &Server,
    full_paths: &[String],
    realm: &HeaderValue,
) -> Vec<HeaderValue> {
    if server.mode == ModeKind::None {
        return full_paths.iter().map(|_| realm.clone()).collect();
    }
    let mut text = String::new();
    let mut ends = Vec::with_capacity(full_paths.len());
    for full in full_paths {
        write_hint(&mut text, site, server, full);
        ends.push(text.len());
    }
    let shared = Bytes::from(text.into_bytes());
    let mut start = 0;
    ends.into_iter()
        .map(|end| {
            let value = HeaderValue::from_maybe_shared(shared.slice(start..end))
                .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
            start = end;
            value
        })
        .collect()
}

/// The challenge without an error for `server` at `full_path` on `site`: what `/challenge` answers
/// for that resource when no token was presented (the table of [`Registry::build`] holds exactly
/// this; `check` prints it for every resource path).
pub fn hint(site: &Site, server: &Server, full_path: &str) -> String {
    if server.mode == ModeKind::None {
        let mut header = String::from("Bearer ");
        push_param(&mut header, "realm", &site.base());
        return header;
    }
    let mut header = String::new();
    write_hint(&mut header, site, server, full_path);
    header
}

/// Appends the hint of a server that is not `none`.
fn write_hint(out: &mut String, site: &Site, server: &Server, full_path: &str) {
    let start = out.len();
    out.push_str("Bearer ");
    let url = [site.origin.as_str(), &prm_path(full_path)].concat();
    push_param_from(out, start, "resource_metadata", &url);
    if !server.scopes.is_empty() {
        push_param_from(out, start, "scope", &server.scopes.join(" "));
    }
}

/// Appends `name="value"` (with `, ` after the first parameter), escaping `\` and `"` and dropping
/// control characters so the header stays one valid line.
fn push_param(header: &mut String, name: &str, value: &str) {
    push_param_from(header, 0, name, value);
}

/// [`push_param`] for a header that starts at `start` of `header`.
fn push_param_from(header: &mut String, start: usize, name: &str, value: &str) {
    if !header[start..].ends_with(' ') {
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
