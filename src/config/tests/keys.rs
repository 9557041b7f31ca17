//! Strictness: unknown keys (with what is allowed), secret-looking keys, duplicate keys.

use super::*;

#[test]
fn unknown_keys_are_rejected_with_did_you_mean() {
    let text = r#"{
  "public_url": "https://gw.example.com",
  "cache_maxage": 10,
  "servers": {
    "a": {"mode": "delegate", "issuer": "https://idp.example.com", "scope": ["x"]},
    "b": {"mode": "none", "colour": "blue"}
  }
}"#;
    assert_eq!(
        errors_elided(text),
        [
            "t.json:3:3: cache_maxage: unknown key; did you mean \"cache_max_age\"? allowed here: …; remove or rename it",
            "t.json:5:68: servers.a.scope: unknown key; did you mean \"scopes\"? allowed here: …; remove or rename it",
            "t.json:6:27: servers.b.colour: unknown key; allowed here: …; remove or rename it",
        ]
    );
}

#[test]
fn unknown_keys_list_what_is_allowed() {
    let allowed = |line: &str| {
        let start = line.find("allowed here: ").expect("a list") + "allowed here: ".len();
        let end = line.find("; remove or rename it").expect("the fix");
        line[start..end].to_owned()
    };
    let top = errors(r#"{"public_url": "https://gw.example.com", "servers": {}, "x": 1}"#);
    assert_eq!(allowed(&top[0]), TOP_KEYS.join(", "));
    let gateway =
        errors(r#"{"public_url": "https://gw.example.com", "gateway": {"x": 1}, "servers": {}}"#);
    assert_eq!(allowed(&gateway[0]), GATEWAY_KEYS.join(", "));
    for (mode, extra) in [("gateway", &[CIMD_KEY][..]), ("none", &[])] {
        let e = errors(&with_servers(&format!(
            r#""a": {{"mode": "{mode}", "x": 1}}"#
        )));
        let want = [COMMON_SERVER_KEYS, extra].concat().join(", ");
        assert_eq!(allowed(&e[0]), want, "{mode}");
    }
    let delegate = errors(&with_servers(
        r#""a": {"mode": "delegate", "issuer": "https://idp.example.com", "x": 1}"#,
    ));
    let listed = allowed(&delegate[0]);
    for key in COMMON_SERVER_KEYS.iter().chain(&["issuer"]) {
        assert!(listed.split(", ").any(|k| k == *key), "{key} in {listed}");
    }
    let facade = errors(&with_servers(&format!(
        r#""a": {{"mode": "facade", {FACADE_UPSTREAM}, "x": 1}}"#
    )));
    let listed = allowed(&facade[0]);
    for key in COMMON_SERVER_KEYS.iter().chain(FACADE_KEYS) {
        assert!(listed.split(", ").any(|k| k == *key), "{key} in {listed}");
    }
}

#[test]
fn unknown_key_in_gateway_block_is_rejected() {
    let text = r#"{"public_url": "https://gw.example.com", "gateway": {"token_endpont": "{public_url}/t"}, "servers": {}}"#;
    assert_eq!(
        errors_elided(text),
        [
            "t.json:1:54: gateway.token_endpont: unknown key; did you mean \"token_endpoint\"? allowed here: …; remove or rename it"
        ]
    );
}

#[test]
fn secret_keys_are_rejected_without_echoing_their_value() {
    let secret_keys = [
        "client_secret",
        "clientSecret",
        "CLIENT-SECRET",
        "password",
        "Password",
        "passwd",
        "passphrase",
        "api_key",
        "apiKey",
        "x-api-key",
        "private_key",
        "privateKey",
        "signing_key",
        "token",
        "access_token",
        "accessToken",
        "refresh_token",
        "id_token",
        "credentials",
    ];
    for (i, key) in secret_keys.iter().enumerate() {
        let value = format!("s3cr3t-value-{i}-do-not-print");
        // At the top level, in the gateway block, and in a server of each mode.
        let places = [
            format!(
                r#"{{"public_url": "https://gw.example.com", "{key}": "{value}", "servers": {{}}}}"#
            ),
            format!(
                r#"{{"public_url": "https://gw.example.com", "gateway": {{"{key}": "{value}"}}, "servers": {{}}}}"#
            ),
            with_servers(&format!(
                r#""a": {{"mode": "delegate", "issuer": "https://idp.example.com", "{key}": "{value}"}}"#
            )),
            with_servers(&format!(
                r#""a": {{"mode": "facade", {FACADE_UPSTREAM}, "{key}": "{value}"}}"#
            )),
            with_servers(&format!(
                r#""a": {{"mode": "gateway", "{key}": {{"nested": "{value}"}}}}"#
            )),
            with_servers(&format!(r#""a": {{"mode": "none", "{key}": ["{value}"]}}"#)),
            with_servers(&format!(r#""a": {{"{key}": "{value}"}}"#)),
        ];
        for text in places {
            let out = error_text(&text);
            assert!(
                out.contains("secrets do not belong in signpost's config (it serves only public metadata); remove this key"),
                "{key} not reported as a secret:\n{out}"
            );
            assert!(
                !out.contains(&value),
                "the value of {key} was echoed:\n{out}"
            );
            assert!(
                !out.contains("s3cr3t"),
                "part of the value of {key} was echoed:\n{out}"
            );
        }
    }
}

#[test]
fn secret_key_line_matches_the_design_example() {
    let text = "{\n  \"public_url\": \"https://gw.example.com\",\n  \"servers\": {\n    \"x\": {\"mode\": \"delegate\", \"issuer\": \"https://i.example.com\", \"client_secret\": \"abc\"}\n  }\n}";
    assert_eq!(
        errors(text),
        [
            "t.json:4:66: servers.x.client_secret: secrets do not belong in signpost's config (it serves only public metadata); remove this key"
        ]
    );
}

#[test]
fn allowed_keys_are_never_taken_for_secrets() {
    for key in TOP_KEYS
        .iter()
        .chain(GATEWAY_KEYS)
        .chain(COMMON_SERVER_KEYS)
        .chain(FACADE_KEYS)
    {
        assert!(!is_secret_key(key), "{key} is a config key, not a secret");
    }
}

#[test]
fn credentials_in_urls_are_rejected_without_echoing_them() {
    let text = r#"{"public_url": "https://admin:pa55word@gw.example.com",
 "servers": {"a": {"mode": "delegate", "issuer": "https://alice1:hunter22@idp.example.com"},
             "b": {"mode": "none", "resource_documentation": "https://tok3n@docs.example.com/b"}}}"#;
    let lines = errors(text);
    assert_eq!(
        lines,
        [
            "t.json:1:16: public_url: must not carry credentials (user:password@); remove them",
            "t.json:2:50: servers.a.issuer: must not carry credentials (user:password@); remove them",
            "t.json:3:62: servers.b.resource_documentation: must not carry credentials (user:password@); remove them",
        ]
    );
    let out = lines.join("\n");
    for secret in ["pa55word", "hunter22", "tok3n", "admin", "alice1"] {
        assert!(!out.contains(secret), "{secret} was echoed:\n{out}");
    }
}

#[test]
fn duplicate_keys_are_errors_at_their_second_occurrence() {
    let text = "{\n  \"public_url\": \"https://gw.example.com\",\n  \"servers\": {\n    \"a\": {\"mode\": \"none\"},\n    \"a\": {\"mode\": \"none\", \"mode\": \"gateway\"}\n  },\n  \"public_url\": \"https://gw.example.com\"\n}";
    assert_eq!(
        errors(text),
        [
            "t.json:5:5: servers.a: duplicate key; JSON keeps only one of them silently, so remove the other",
            "t.json:5:27: servers.a.mode: duplicate key; JSON keeps only one of them silently, so remove the other",
            "t.json:7:3: public_url: duplicate key; JSON keeps only one of them silently, so remove the other",
        ]
    );
}
