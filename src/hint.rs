//! The no-token `WWW-Authenticate` challenge of a resource, `Bearer resource_metadata="…"` plus
//! the server's `scope`, or the site's `realm` for a `none` server: one line, `Bearer` first,
//! every value quoted and escaped (RFC 6750 §3). Built once per resource path at load (the
//! registry's table) and by `signpost check`/`hint`; `/challenge` only extends these values.

use bytes::Bytes;
use hyper::header::HeaderValue;

use crate::config::{ModeKind, Server, Site};
use crate::well_known::prm_path;

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

/// The challenge without an error for `server` at `full_path` on `site`: what `/challenge` answers
/// for that resource when no token was presented (the table of [`Registry::build`] holds exactly
/// this; `check` prints it for every resource path).
pub fn hint(site: &Site, server: &Server, full_path: &str) -> String {
    if server.mode == ModeKind::None {
        let mut header = String::from("Bearer ");
        push_param(&mut header, "realm", &site.base());
        return header;
    }
    // Room for the usual hint at once (`check` builds one per route).
    let mut header = String::with_capacity(128 + site.origin.len() + full_path.len());
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
    // Most values need neither: copied whole. (0xC2 leads every C1 control character.)
    if !value
        .bytes()
        .any(|b| b < 0x20 || matches!(b, 0x7F | 0xC2 | b'"' | b'\\'))
    {
        header.push_str(value);
    } else {
        for c in value.chars().filter(|c| !c.is_control()) {
            if c == '"' || c == '\\' {
                header.push('\\');
            }
            header.push(c);
        }
    }
    header.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values copied whole are exactly the ones with nothing to escape or drop.
    #[test]
    fn quoting_drops_c1_controls_and_keeps_other_characters() {
        for (value, quoted) in [
            ("https://gw/x", "https://gw/x"),
            ("a\u{85}b\u{9f}c", "abc"),
            ("é\u{a0}ü\u{7f}", "é\u{a0}ü"),
        ] {
            let mut h = String::from("Bearer ");
            push_param(&mut h, "p", value);
            assert_eq!(h, format!("Bearer p=\"{quoted}\""));
        }
    }

    #[test]
    fn quoting_escapes_quotes_and_backslashes_and_drops_newlines() {
        let mut h = String::from("Bearer ");
        push_param(&mut h, "realm", "a\"b\\c\r\nd");
        push_param(&mut h, "scope", "x");
        assert_eq!(h, r#"Bearer realm="a\"b\\cd", scope="x""#);
    }
}
