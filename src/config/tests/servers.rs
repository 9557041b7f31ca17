//! Server names, modes and the keys each mode takes; scopes and `cache_max_age`.

use super::*;

#[test]
fn server_names_are_restricted() {
    let text = r#"{"public_url": "https://gw.example.com", "servers": {
  ".": {"mode": "none"},
  "..": {"mode": "none"},
  "a b": {"mode": "none"},
  "a/b": {"mode": "none"},
  "": {"mode": "none"},
  "é": {"mode": "none"},
  "{server}": {"mode": "none"},
  "Ok.name_-1": {"mode": "none"},
  "...": {"mode": "none"}
}}"#;
    let message =
        "server names may use only A-Z a-z 0-9 . _ - (and are not \".\" or \"..\"); rename it";
    assert_eq!(
        errors(text),
        [
            format!("t.json:2:3: servers[\".\"]: {message}"),
            format!("t.json:3:3: servers[\"..\"]: {message}"),
            format!("t.json:4:3: servers[\"a b\"]: {message}"),
            format!("t.json:5:3: servers[\"a/b\"]: {message}"),
            format!("t.json:6:3: servers[\"\"]: {message}"),
            format!("t.json:7:3: servers[\"é\"]: {message}"),
            format!("t.json:8:3: servers[\"{{server}}\"]: {message}"),
        ]
    );
}

#[test]
fn unusual_but_valid_names_are_accepted() {
    let config = ok(&with_servers(
        r#""Ok.name_-1": {"mode": "none"}, "...": {"mode": "none"}, "a.b": {"mode": "none"}"#,
    ));
    assert_eq!(
        server(&config, "Ok.name_-1").paths[0],
        "/mcp/Ok.name_-1/mcp"
    );
    assert_eq!(server(&config, "...").paths[0], "/mcp/.../mcp");
}

#[test]
fn mode_is_required_and_must_be_known() {
    let text = r#"{"public_url": "https://gw.example.com", "servers": {
  "a": {"scopes": ["x"]},
  "b": {"mode": "Delegate"},
  "c": {"mode": 1},
  "d": "delegate"
}}"#;
    assert_eq!(
        errors(text),
        [
            "t.json:2:3: servers.a: missing \"mode\"; add one of \"delegate\", \"facade\", \"gateway\", \"none\"",
            "t.json:3:17: servers.b.mode: found \"Delegate\", did you mean \"delegate\"? (must be one of \"delegate\", \"facade\", \"gateway\", \"none\")",
            "t.json:4:17: servers.c.mode: found a number (must be one of \"delegate\", \"facade\", \"gateway\", \"none\")",
            "t.json:5:8: servers.d: must be an object such as {\"mode\": \"delegate\", \"issuer\": \"https://…\"}",
        ]
    );
}

#[test]
fn required_keys_per_mode() {
    let text = r#"{"public_url": "https://gw.example.com", "servers": {
  "d": {"mode": "delegate"},
  "f": {"mode": "facade", "issuer": "https://up.example.com"}
}}"#;
    assert_eq!(
        errors(text),
        [
            "t.json:2:3: servers.d: mode \"delegate\" needs \"issuer\": the upstream IdP's issuer exactly as its metadata spells it",
            "t.json:3:3: servers.f: mode \"facade\" needs \"authorization_endpoint\" (the upstream IdP's); add it, or set \"discover\": true to take it from the upstream's metadata",
            "t.json:3:3: servers.f: mode \"facade\" needs \"token_endpoint\" (the upstream IdP's); add it, or set \"discover\": true to take it from the upstream's metadata",
        ]
    );
}

#[test]
fn facade_with_discover_needs_only_the_issuer() {
    let config = ok(&with_servers(
        r#""f": {"mode": "facade", "issuer": "https://up.example.com", "discover": true}"#,
    ));
    assert!(server(&config, "f").discover);
    // Discovery starts from the issuer, so it is still required (and not offered as the fix).
    assert_eq!(
        errors(&with_servers(
            r#""f": {"mode": "facade", "discover": true}"#
        )),
        ["t.json:1:54: servers.f: mode \"facade\" needs \"issuer\" (the upstream IdP's); add it"]
    );
    assert_eq!(
        errors(&with_servers(r#""f": {"mode": "none", "discover": "yes"}"#)),
        [
            "t.json:1:76: servers.f.discover: not used in mode \"none\" (only delegate and facade servers take it); remove it or change the mode"
        ]
    );
    assert_eq!(
        errors(&with_servers(
            r#""f": {"mode": "delegate", "issuer": "https://up.example.com", "discover": "yes"}"#
        )),
        ["t.json:1:128: servers.f.discover: must be true or false"]
    );
}

#[test]
fn keys_of_another_mode_say_which_mode_uses_them() {
    let text = r#"{"public_url": "https://gw.example.com", "servers": {
  "g": {"mode": "gateway", "issuer": "https://idp.example.com"},
  "n": {"mode": "none", "token_endpoint": "https://idp.example.com/token"},
  "d": {"mode": "delegate", "issuer": "https://idp.example.com", "facade_issuer": "{public_url}/d"}
}}"#;
    assert_eq!(
        errors(text),
        [
            "t.json:2:28: servers.g.issuer: not used in mode \"gateway\" (only delegate and facade servers take it); remove it or change the mode",
            "t.json:3:25: servers.n.token_endpoint: not used in mode \"none\" (only facade servers take it); remove it or change the mode",
            "t.json:4:66: servers.d.facade_issuer: not used in mode \"delegate\" (only facade servers take it); remove it or change the mode",
        ]
    );
}

#[test]
fn missing_public_url_and_servers() {
    assert_eq!(
        errors("{}"),
        [
            "t.json:1:1: public_url: missing; add \"public_url\": \"https://<the gateway's public host>\"",
            "t.json:1:1: servers: missing; add \"servers\": {\"<name>\": {\"mode\": \"delegate\", \"issuer\": \"https://…\"}}",
        ]
    );
    assert_eq!(
        errors("[1]"),
        [
            "t.json:1:1: the config must be a JSON object with at least \"public_url\" and \"servers\""
        ]
    );
    assert_eq!(
        errors(r#"{"public_url": "https://gw.example.com", "servers": []}"#),
        ["t.json:1:53: servers: must be an object mapping server names to their settings"]
    );
}

// ---------------------------------------------------------------------------------------------
// Scopes and cache_max_age.

#[test]
fn empty_scopes_are_the_same_as_none() {
    let config = ok(&with_servers(
        r#""a": {"mode": "gateway", "scopes": []}, "b": {"mode": "gateway"}, "c": {"mode": "gateway", "scopes": ["x", "y", "x"]}"#,
    ));
    assert!(server(&config, "a").scopes.is_empty());
    assert!(server(&config, "b").scopes.is_empty());
    assert_eq!(server(&config, "c").scopes, ["x", "y"]);
}

#[test]
fn invalid_scope_tokens_are_rejected() {
    let text = r#"{"public_url": "https://gw.example.com", "servers": {"a": {"mode": "none", "scopes": [
  "read:jira-work",
  "two words",
  "quo\"te",
  "back\\slash",
  "é",
  "",
  "tab\t"
]}}}"#;
    let message = "a scope is one token of printable ASCII without spaces, '\"' or '\\' (RFC 6749 §3.3); split or fix it";
    assert_eq!(
        errors(text),
        [
            format!("t.json:3:3: servers.a.scopes[1]: {message}"),
            format!("t.json:4:3: servers.a.scopes[2]: {message}"),
            format!("t.json:5:3: servers.a.scopes[3]: {message}"),
            format!("t.json:6:3: servers.a.scopes[4]: {message}"),
            "t.json:7:3: servers.a.scopes[5]: must not be empty (clients reject empty strings); remove the key or give it a value".to_owned(),
            format!("t.json:8:3: servers.a.scopes[6]: {message}"),
        ]
    );
    assert_eq!(
        errors(&with_servers(r#""a": {"mode": "none", "scopes": "repo"}"#)),
        ["t.json:1:86: servers.a.scopes: must be a list of strings"]
    );
}

#[test]
fn cache_max_age_bounds() {
    let age = |v: &str| {
        format!(
            r#"{{"public_url": "https://gw.example.com", "cache_max_age": {v}, "servers": {{}}}}"#
        )
    };
    assert_eq!(ok(&age("0")).cache_max_age, 0);
    assert_eq!(ok(&age("31536000")).cache_max_age, 31_536_000);
    for bad in ["31536001", "-1", "1.5", "\"300\"", "null", "1e3"] {
        assert_eq!(
            errors(&age(bad)),
            ["t.json:1:59: cache_max_age: must be a whole number of seconds from 0 to 31536000"],
            "cache_max_age {bad}"
        );
    }
}
