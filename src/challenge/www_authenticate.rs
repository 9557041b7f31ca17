//! A parser of `WWW-Authenticate` values (RFC 9110 §11.6.1, §11.2, §5.6), for reading what the
//! gateway itself answered (`X-Gateway-WWW-Authenticate`). It works on bytes, never panics, is
//! linear in its input and reads at most [`MAX_INPUT`] bytes of it.
//!
//! ```text
//! WWW-Authenticate = #challenge
//! challenge   = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//! auth-param  = token BWS "=" BWS ( token / quoted-string )
//! token68     = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//! ```
//!
//! Empty list elements (`, ,`) are allowed, as recipients must (RFC 9110 §5.6.1.2). A malformed
//! element is skipped up to the next comma outside a quoted string and parsing goes on, so one
//! bad parameter does not hide the others; an unterminated quoted string runs to the end.

use std::borrow::Cow;

/// The most bytes of a header value read; the rest is ignored (a request head is at most 16 KiB).
pub const MAX_INPUT: usize = 64 * 1024;

/// A parameter's value, unquoted (borrowed unless it had escapes).
pub type Value<'a> = Cow<'a, [u8]>;

/// One challenge: its scheme as sent, a token68 or its auth-params (names as sent, values
/// unquoted).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Challenge<'a> {
    pub scheme: &'a [u8],
    pub token68: Option<&'a [u8]>,
    pub params: Vec<(&'a [u8], Cow<'a, [u8]>)>,
}

impl<'a> Challenge<'a> {
    /// The value of the first parameter called `name` (case-insensitive, RFC 9110 §11.2).
    #[cfg(test)]
    pub fn param(&self, name: &str) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| &**v)
    }

    pub fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme.as_bytes())
    }
}

/// Every challenge of `value`, in order.
pub fn parse(value: &[u8]) -> Vec<Challenge<'_>> {
    let mut p = Parser {
        s: &value[..value.len().min(MAX_INPUT)],
        i: 0,
    };
    let mut out: Vec<Challenge<'_>> = Vec::new();
    loop {
        p.skip_list_separators();
        if p.done() {
            return out;
        }
        let start = p.i;
        match p.element(out.last().is_some_and(|c| c.token68.is_none())) {
            Some(Element::Scheme(c)) => out.push(c),
            Some(Element::Param(name, value)) => {
                if let Some(current) = out.last_mut() {
                    current.params.push((name, value));
                }
            }
            None => {
                p.i = start;
                p.skip_element();
            }
        }
        // After an element only a comma (or the end) may follow.
        p.skip_ows();
        if !p.done() && p.peek() != Some(b',') {
            p.skip_element();
        }
    }
}

/// `error` and `scope` of the first `Bearer` challenge of the given header lines (RFC 6750 §3); the
/// lines are taken as joined with `, `. `(None, None)` when no line has a Bearer challenge.
pub fn bearer_error_and_scope<'a, I>(lines: I) -> (Option<Value<'a>>, Option<Value<'a>>)
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut budget = MAX_INPUT;
    for line in lines {
        let line = &line[..line.len().min(budget)];
        budget -= line.len();
        for c in parse(line) {
            if c.is("bearer") {
                let take = |name: &str| {
                    let i = c
                        .params
                        .iter()
                        .position(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))?;
                    Some(c.params[i].1.clone())
                };
                return (take("error"), take("scope"));
            }
        }
        if budget == 0 {
            break;
        }
    }
    (None, None)
}

enum Element<'a> {
    Scheme(Challenge<'a>),
    Param(&'a [u8], Cow<'a, [u8]>),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_list_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    /// Skips to the next comma outside a quoted string (or the end).
    fn skip_element(&mut self) {
        let mut quoted = false;
        while let Some(b) = self.peek() {
            match b {
                b'"' => quoted = !quoted,
                b'\\' if quoted => self.i += 1,
                b',' if !quoted => return,
                _ => {}
            }
            self.i += 1;
        }
        self.i = self.i.min(self.s.len());
    }

    fn token(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        (self.i > start).then(|| &self.s[start..self.i])
    }

    /// A list element: `token BWS "=" …` is a parameter of the current challenge when there is one
    /// (`params_allowed`); anything else starting with a token is a new challenge.
    fn element(&mut self, params_allowed: bool) -> Option<Element<'a>> {
        let name = self.token()?;
        let after_name = self.i;
        self.skip_ows();
        if params_allowed && self.peek() == Some(b'=') {
            self.i = after_name - name.len();
            let (name, value) = self.param()?;
            return Some(Element::Param(name, value));
        }
        self.i = after_name;
        let mut challenge = Challenge {
            scheme: name,
            ..Challenge::default()
        };
        if !matches!(self.peek(), Some(b' ' | b'\t')) {
            // A scheme alone (`Negotiate`), directly followed by a comma or the end.
            return (self.done() || self.peek() == Some(b','))
                .then_some(Element::Scheme(challenge));
        }
        // 1*SP (a tab tolerated).
        self.skip_ows();
        if self.done() || self.peek() == Some(b',') {
            return Some(Element::Scheme(challenge));
        }
        // token68, or the first auth-param.
        let start = self.i;
        while self.peek().is_some_and(is_token68_char) {
            self.i += 1;
        }
        let run_end = self.i;
        while self.peek() == Some(b'=') {
            self.i += 1;
        }
        let token68_end = self.i;
        self.skip_ows();
        if run_end > start && (self.done() || self.peek() == Some(b',')) {
            challenge.token68 = Some(&self.s[start..token68_end]);
            return Some(Element::Scheme(challenge));
        }
        self.i = start;
        match self.param() {
            Some(param) => challenge.params.push(param),
            // The scheme stands; its malformed first parameter is skipped.
            None => {
                self.i = start;
                self.skip_element();
            }
        }
        Some(Element::Scheme(challenge))
    }

    /// `token BWS "=" BWS ( token / quoted-string )`.
    fn param(&mut self) -> Option<(&'a [u8], Cow<'a, [u8]>)> {
        let name = self.token()?;
        self.skip_ows();
        if self.peek() != Some(b'=') {
            return None;
        }
        self.i += 1;
        self.skip_ows();
        let value = self.value()?;
        // Only a comma (or the end) may follow: `scope=a:b` is no token, not the token `a`.
        self.skip_ows();
        (self.done() || self.peek() == Some(b',')).then_some((name, value))
    }

    /// `token / quoted-string`, unquoted.
    fn value(&mut self) -> Option<Cow<'a, [u8]>> {
        if self.peek() != Some(b'"') {
            return self.token().map(Cow::Borrowed);
        }
        self.i += 1;
        let start = self.i;
        let mut unescaped: Option<Vec<u8>> = None;
        loop {
            let b = self.peek()?;
            match b {
                b'"' => {
                    let raw = &self.s[start..self.i];
                    self.i += 1;
                    return Some(unescaped.map_or(Cow::Borrowed(raw), Cow::Owned));
                }
                b'\\' => {
                    let escaped = *self.s.get(self.i + 1)?;
                    if !is_qpair_char(escaped) {
                        return None;
                    }
                    unescaped
                        .get_or_insert_with(|| self.s[start..self.i].to_vec())
                        .push(escaped);
                    self.i += 2;
                }
                b if is_qdtext(b) => {
                    if let Some(u) = &mut unescaped {
                        u.push(b);
                    }
                    self.i += 1;
                }
                _ => return None,
            }
        }
    }
}

/// `tchar` (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

/// `qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text`.
fn is_qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..=0xFF)
}

/// What may follow `\` in a quoted-pair: `HTAB / SP / VCHAR / obs-text`.
fn is_qpair_char(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21..=0x7E | 0x80..=0xFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params(c: &Challenge<'_>) -> Vec<(String, String)> {
        c.params
            .iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    fn schemes(v: &str) -> Vec<String> {
        parse(v.as_bytes())
            .iter()
            .map(|c| String::from_utf8_lossy(c.scheme).into_owned())
            .collect()
    }

    fn es(v: &str) -> (Option<String>, Option<String>) {
        let (e, s) = bearer_error_and_scope([v.as_bytes()]);
        let s8 = |x: Option<Cow<'_, [u8]>>| x.map(|x| String::from_utf8_lossy(&x).into_owned());
        (s8(e), s8(s))
    }

    #[test]
    fn one_bearer_challenge_with_params_in_any_order() {
        let c = parse(br#"Bearer realm="x", error="insufficient_scope", scope="a b""#);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, b"Bearer");
        assert_eq!(
            params(&c[0]),
            [
                ("realm", "x"),
                ("error", "insufficient_scope"),
                ("scope", "a b")
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        assert_eq!(
            es(r#"Bearer scope="a b", error=insufficient_scope"#),
            (Some("insufficient_scope".into()), Some("a b".into()))
        );
    }

    #[test]
    fn several_challenges_and_the_bearer_one_is_read() {
        let v = r#"Basic realm="b", error="wrong", Bearer error="invalid_token", Negotiate, DPoP algs="ES256""#;
        assert_eq!(schemes(v), ["Basic", "Bearer", "Negotiate", "DPoP"]);
        assert_eq!(es(v), (Some("invalid_token".into()), None));
        // No Bearer challenge: nothing is taken from the others.
        assert_eq!(
            es(r#"Basic realm="x", error="invalid_token""#),
            (None, None)
        );
        // The first Bearer challenge wins.
        assert_eq!(
            es(r#"Bearer error="invalid_token", Bearer error="insufficient_scope""#),
            (Some("invalid_token".into()), None)
        );
    }

    #[test]
    fn scheme_and_param_names_are_case_insensitive() {
        assert_eq!(
            es(r#"bEaReR ERROR="insufficient_scope", Scope="x""#),
            (Some("insufficient_scope".into()), Some("x".into()))
        );
    }

    #[test]
    fn quoted_strings_unescape_and_may_hold_commas_and_equals() {
        let c = parse(br#"Bearer realm="a\"b\\c, error=x", error="in\valid_token""#);
        assert_eq!(c.len(), 1);
        assert_eq!(
            params(&c[0]),
            [("realm", r#"a"b\c, error=x"#), ("error", "invalid_token")]
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
    }

    #[test]
    fn whitespace_bws_and_empty_list_elements() {
        let v = "  , Bearer   realm = \"x\" ,\t, error\t=\tinvalid_token ,scope= \"a\" ,  ";
        assert_eq!(es(v), (Some("invalid_token".into()), Some("a".into())));
        assert_eq!(schemes(v), ["Bearer"]);
    }

    #[test]
    fn token68_and_bare_schemes() {
        let c = parse(b"Basic dXNlcjpwYXNz==, Negotiate, Bearer error=invalid_token");
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].token68, Some(&b"dXNlcjpwYXNz=="[..]));
        assert!(c[0].params.is_empty());
        assert_eq!(c[1].scheme, b"Negotiate");
        assert_eq!(c[2].param("error"), Some(&b"invalid_token"[..]));
        // A token68 with a `/` is not a parameter.
        let c = parse(b"Custom a/b=");
        assert_eq!(c[0].token68, Some(&b"a/b="[..]));
        // After a token68 a `name=value` element is a new challenge's, not a parameter.
        let c = parse(b"Basic abc, error=insufficient_scope");
        assert_eq!(c.len(), 1);
        assert!(c[0].params.is_empty());
    }

    #[test]
    fn malformed_elements_are_skipped_and_parsing_goes_on() {
        // A value that is not a token is dropped whole, not cut to its first token.
        assert_eq!(
            es("Bearer scope=admin:org, error=invalid_token"),
            (Some("invalid_token".into()), None)
        );
        assert_eq!(es("Bearer error=invalid_token scope=x"), (None, None));
        // A bad value, then good parameters.
        assert_eq!(
            es(r#"Bearer realm=a b c, error="invalid_token", scope=x"#),
            (Some("invalid_token".into()), Some("x".into()))
        );
        // An unterminated quoted string swallows the rest.
        assert_eq!(
            es(r#"Bearer realm="x, error="insufficient_scope"#),
            (None, None)
        );
        assert_eq!(
            es(r#"Bearer realm="unterminated, error=invalid_token"#),
            (None, None)
        );
        // Control bytes inside a quoted string make it invalid.
        assert_eq!(
            es("Bearer error=\"invalid\x01token\", scope=a"),
            (None, Some("a".into()))
        );
        // A parameter before any scheme is dropped.
        assert_eq!(
            es("error=invalid_token, Bearer scope=s"),
            (None, Some("s".into()))
        );
        // Non-UTF-8 bytes are obs-text in quoted strings and stop a token elsewhere.
        let (e, s) = bearer_error_and_scope([
            &b"Bearer realm=\"\xff\xfe\", error=\xff, scope=\"\xc3\xa9\""[..],
        ]);
        assert_eq!(e, None);
        assert_eq!(s.as_deref(), Some(&b"\xc3\xa9"[..]));
    }

    #[test]
    fn several_lines_read_as_one_joined_value() {
        let lines: [&[u8]; 2] = [b"Basic realm=x", br#"Bearer error="invalid_token""#];
        let (e, _) = bearer_error_and_scope(lines);
        assert_eq!(e.as_deref(), Some(&b"invalid_token"[..]));
    }

    #[test]
    fn huge_input_is_bounded() {
        let mut v = b"Bearer ".to_vec();
        v.extend(std::iter::repeat_n(b"a=b, ".as_slice(), 100_000).flatten());
        v.extend_from_slice(b"error=invalid_token");
        let c = parse(&v);
        assert_eq!(c.len(), 1);
        assert!(c[0].params.len() <= MAX_INPUT / 4);
        assert_eq!(
            es(std::str::from_utf8(&v).unwrap()).0,
            None,
            "beyond MAX_INPUT"
        );
        let quotes = vec![b'"'; 1 << 20];
        assert!(parse(&quotes).is_empty());
    }

    /// Renders a challenge the way a gateway would, for the round trip.
    fn render(scheme: &str, params: &[(String, String, bool)]) -> String {
        let mut s = scheme.to_owned();
        for (i, (n, v, quoted)) in params.iter().enumerate() {
            s.push_str(if i == 0 { " " } else { " ,  " });
            s.push_str(n);
            s.push_str(" = ");
            if *quoted {
                s.push('"');
                for c in v.chars() {
                    if c == '"' || c == '\\' {
                        s.push('\\');
                    }
                    s.push(c);
                }
                s.push('"');
            } else {
                s.push_str(v);
            }
        }
        s
    }

    proptest! {
        #[test]
        fn never_panics_on_any_bytes(v in proptest::collection::vec(any::<u8>(), 0..512)) {
            let cs = parse(&v);
            // Every scheme is a non-empty token of the input.
            for c in &cs {
                prop_assert!(!c.scheme.is_empty() && c.scheme.iter().all(|b| is_tchar(*b)));
            }
            let _ = bearer_error_and_scope([v.as_slice()]);
        }

        #[test]
        fn never_panics_on_header_like_text(v in r#"[ ,="\\a-zA-Z0-9_\t\x01\x7f]{0,200}"#) {
            let _ = parse(v.as_bytes());
        }

        #[test]
        fn rendered_challenges_parse_back(
            chs in proptest::collection::vec(
                ("[A-Za-z][A-Za-z0-9_-]{0,8}",
                 proptest::collection::vec(
                     ("[a-z][a-z0-9_]{0,8}", "[ -~]{0,20}", any::<bool>()), 1..5)),
                1..4)
        ) {
            type Rendered = Vec<(String, Vec<(String, String, bool)>)>;
            let chs: Rendered = chs
                .into_iter()
                .map(|(s, ps)| {
                    let ps = ps
                        .into_iter()
                        .map(|(n, v, q)| {
                            // An unquoted value must be a token; quote the rest.
                            let q = q || v.is_empty() || !v.bytes().all(is_tchar);
                            (n, v, q)
                        })
                        .collect();
                    (s, ps)
                })
                .collect();
            let text = chs
                .iter()
                .map(|(s, ps)| render(s, ps))
                .collect::<Vec<_>>()
                .join(" , ");
            let parsed = parse(text.as_bytes());
            prop_assert_eq!(parsed.len(), chs.len(), "{}", text);
            for (c, (s, ps)) in parsed.iter().zip(&chs) {
                prop_assert_eq!(c.scheme, s.as_bytes());
                prop_assert_eq!(c.params.len(), ps.len(), "{}", text);
                for ((n, v), (en, ev, _)) in c.params.iter().zip(ps) {
                    prop_assert_eq!(*n, en.as_bytes());
                    prop_assert_eq!(&**v, ev.as_bytes());
                }
            }
        }
    }
}
