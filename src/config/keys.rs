//! Rules on names and tokens: keys that could hold a secret (refused without echoing a value),
//! the characters of a scope token, the allowed key a misspelled one was meant to be, and the
//! JSON type names messages use.

use serde_json::Value;

/// RFC 6749 §3.3 `NQCHAR`: `%x21 / %x23-5B / %x5D-7E`.
pub fn is_scope_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// Keys that could hold a secret, however they are spelled: `client_secret`, `clientSecret`,
/// `CLIENT-SECRET`, `apiKey`, `privateKey`, `accessToken`, `password`…
pub(super) fn is_secret_key(key: &str) -> bool {
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

/// What kind of JSON value `v` is, for "found a number" messages.
pub(super) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The allowed key closest to a misspelled one (Levenshtein distance over characters), if it is
/// close enough to be a typo.
pub(super) fn closest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (strsim::levenshtein(key, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}
