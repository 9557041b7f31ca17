//! Reading `WWW-Authenticate` the way each client does, RFC 6750 §3 scope syntax, and the CORS
//! header lists.

/// One challenge of a `WWW-Authenticate` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    /// `(name, value, quoted)`, names as sent.
    pub params: Vec<(String, String, bool)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<(&str, bool)> {
        self.params
            .iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v, q)| (v.as_str(), *q))
    }
}

/// Splits a (possibly joined) header value into challenges (RFC 9110 §11.6.1): elements are split
/// at commas outside quoted strings; an element that starts with a token followed by a space, or
/// that has no `=`, starts a new challenge.
pub fn parse_challenges(value: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    for element in split_outside_quotes(value, b',') {
        let element = element.trim();
        if element.is_empty() {
            continue;
        }
        let eq = element.find('=');
        let sp = element.find([' ', '\t']);
        let starts_challenge = match (eq, sp) {
            (None, _) => true,
            (Some(e), Some(s)) => s < e,
            (Some(_), None) => false,
        };
        let param_text = if starts_challenge {
            let (scheme, rest) = match sp {
                Some(s) => (&element[..s], element[s..].trim_start()),
                None => (element, ""),
            };
            out.push(Challenge {
                scheme: scheme.to_owned(),
                params: Vec::new(),
            });
            rest
        } else {
            element
        };
        if param_text.is_empty() {
            continue;
        }
        let Some(current) = out.last_mut() else {
            // A parameter before any scheme: keep it under an empty scheme.
            out.push(Challenge {
                scheme: String::new(),
                params: Vec::new(),
            });
            let current = out.last_mut().expect("just pushed");
            push_param(current, param_text);
            continue;
        };
        push_param(current, param_text);
    }
    out
}

fn push_param(c: &mut Challenge, text: &str) {
    match text.split_once('=') {
        Some((name, value)) => {
            let value = value.trim();
            let (value, quoted) = unquote(value);
            c.params.push((name.trim().to_owned(), value, quoted));
        }
        // token68
        None => c.params.push((String::new(), text.to_owned(), false)),
    }
}

fn unquote(v: &str) -> (String, bool) {
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        let inner = &v[1..v.len() - 1];
        let mut out = String::new();
        let mut escaped = false;
        for c in inner.chars() {
            if escaped {
                out.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else {
                out.push(c);
            }
        }
        (out, true)
    } else {
        (v.to_owned(), false)
    }
}

fn split_outside_quotes(s: &str, sep: u8) -> Vec<&str> {
    let bytes = s.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == sep && !quoted {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

/// TS v1/v2: the header lines joined with `, `; only when the first space-separated word is
/// `Bearer` (any case) and something follows; then the first `resource_metadata="…"` (quoted
/// form only) anywhere in the joined value.
pub fn ts_bearer_first(joined: &str) -> bool {
    let mut words = joined.split(' ');
    let first = words.next().unwrap_or("");
    first.eq_ignore_ascii_case("bearer") && words.next().is_some_and(|w| !w.is_empty())
}

pub fn ts_resource_metadata(joined: &str) -> Option<String> {
    if !ts_bearer_first(joined) {
        return None;
    }
    let i = joined.find("resource_metadata=\"")?;
    let rest = &joined[i + "resource_metadata=\"".len()..];
    let end = rest.find('"')?;
    Some(rest[..end].to_owned())
}

/// Python (and, as far as the probe models them, rmcp and VS Code): the first
/// `resource_metadata=` anywhere, quoted or token form, whatever the scheme.
pub fn any_resource_metadata(joined: &str) -> Option<String> {
    let i = joined.find("resource_metadata=")?;
    let rest = &joined[i + "resource_metadata=".len()..];
    if let Some(q) = rest.strip_prefix('"') {
        let end = q.find('"')?;
        let v = &q[..end];
        (!v.is_empty()).then(|| v.to_owned())
    } else {
        let end = rest
            .find(|c: char| c.is_whitespace() || c == ',')
            .unwrap_or(rest.len());
        let v = &rest[..end];
        (!v.is_empty()).then(|| v.to_owned())
    }
}

/// Every `resource_metadata` value in the order they appear.
pub fn all_resource_metadata(challenges: &[Challenge]) -> Vec<String> {
    challenges
        .iter()
        .flat_map(|c| c.params.iter())
        .filter(|(n, _, _)| n.eq_ignore_ascii_case("resource_metadata"))
        .map(|(_, v, _)| v.clone())
        .collect()
}

/// RFC 6750 §3 / RFC 6749 §3.3: a quoted, space-delimited list of scope tokens
/// (`%x21 / %x23-5B / %x5D-7E`), one space between tokens. `Err` names the problem.
pub fn check_scope(value: &str, quoted: bool) -> Result<(), String> {
    if !quoted {
        return Err("the value is not a quoted string".to_owned());
    }
    if value.is_empty() {
        return Err("the value is empty".to_owned());
    }
    for token in value.split(' ') {
        if token.is_empty() {
            return Err(
                "tokens must be separated by exactly one space, without leading or trailing spaces"
                    .to_owned(),
            );
        }
        if let Some(c) = token
            .chars()
            .find(|c| !matches!(*c as u32, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
        {
            return Err(format!(
                "{token:?} contains {c:?}, which a scope token may not"
            ));
        }
    }
    Ok(())
}

/// A comma-separated header list, lower-cased and trimmed.
pub fn list(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_split() {
        let c = parse_challenges(
            r#"Basic realm="a, b", Bearer resource_metadata="https://x/y", scope="a b""#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "Basic");
        assert_eq!(c[0].param("realm"), Some(("a, b", true)));
        assert_eq!(c[1].scheme, "Bearer");
        assert_eq!(c[1].param("scope"), Some(("a b", true)));
        assert_eq!(parse_challenges("Bearer").len(), 1);
        assert_eq!(
            parse_challenges(r#"Bearer realm="x", Bearer resource_metadata="y""#).len(),
            2
        );
        assert_eq!(parse_challenges("Basic abc==, Bearer").len(), 2);
    }

    #[test]
    fn client_readings() {
        let h = r#"Basic realm="x", Bearer resource_metadata="https://a/b""#;
        assert_eq!(ts_resource_metadata(h), None);
        assert_eq!(any_resource_metadata(h).as_deref(), Some("https://a/b"));
        assert_eq!(
            ts_resource_metadata(r#"bearer resource_metadata="u""#).as_deref(),
            Some("u")
        );
        assert_eq!(
            any_resource_metadata("Bearer resource_metadata=u, x=y").as_deref(),
            Some("u")
        );
        assert_eq!(ts_resource_metadata("Bearer resource_metadata=u"), None);
    }

    #[test]
    fn scope_syntax() {
        assert!(check_scope("read write:x", true).is_ok());
        assert!(check_scope("read  write", true).is_err());
        assert!(check_scope(" read", true).is_err());
        assert!(check_scope("read", false).is_err());
        assert!(check_scope("a\\b", true).is_err());
        assert!(check_scope("", true).is_err());
    }
}
