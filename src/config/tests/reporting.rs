//! Reporting: every problem at once with its exact position, syntax and encoding errors with the
//! fix, warnings; and nothing served that would be refused (secret-looking query parameters,
//! durations, string sizes, `public_url` spellings), every message with its fix.

use super::*;

#[test]
fn many_mistakes_are_reported_together_with_exact_positions() {
    let text = r#"{
  "public_url": ["https://gw.example.com", "ftp://gw2.example.com"],
  "resource_paths": ["/mcp/{server}/mcp", "/mcp"],
  "cache_max_age": -5,
  "listen": "0.0.0.0:8080",
  "gateway": {"issuer": "{public_url}/{server}", "client_secret": "hunter2-NEVER-ECHO"},
  "servers": {
    "atlassian": {"mode": "delegate", "isuer": "https://auth.atlassian.com"},
    "eng tools": {"mode": "none"},
    "kc": {"mode": "facade", "issuer": "https://sso.example.com/realms/eng?x=1",
           "authorization_endpoint": "javascript:alert(1)"},
    "github": {"mode": "gateway", "issuer": "https://github.com", "scopes": ["repo", "bad scope"]},
    "x": {"mode": "none", "resource_paths": ["/mcp/{server}"]},
    "mcp": {"mode": "none", "resource_paths": ["/{server}/x"]},
    "dup": {"mode": "none", "mode": "none"}
  }
}"#;
    let lines = errors_elided(text);
    assert_eq!(
        lines,
        [
            "t.json:2:44: public_url[1]: scheme \"ftp\" is not allowed; use https (or http for loopback)",
            "t.json:3:43: resource_paths[1]: must contain {server} exactly once, such as \"/mcp/{server}/mcp\"",
            "t.json:4:20: cache_max_age: must be a whole number of seconds from 0 to 31536000",
            "t.json:5:3: listen: unknown key; allowed here: …; remove or rename it",
            "t.json:6:50: gateway.client_secret: secrets do not belong in signpost's config (it serves only public metadata); remove this key",
            "t.json:8:5: servers.atlassian: mode \"delegate\" needs \"issuer\": the upstream IdP's issuer exactly as its metadata spells it",
            "t.json:8:39: servers.atlassian.isuer: unknown key; did you mean \"issuer\"? allowed here: …; remove or rename it",
            "t.json:9:5: servers[\"eng tools\"]: server names may use only A-Z a-z 0-9 . _ - (and are not \".\" or \"..\"); rename it",
            "t.json:10:5: servers.kc: mode \"facade\" needs \"token_endpoint\" (the upstream IdP's); add it, or set \"discover\": true to take it from the upstream's metadata",
            "t.json:10:40: servers.kc.issuer: an issuer must not have a query (RFC 8414 §2); remove it",
            "t.json:11:38: servers.kc.authorization_endpoint: scheme \"javascript\" is not allowed; use https (or http for loopback)",
            "t.json:12:35: servers.github.issuer: not used in mode \"gateway\" (only delegate and facade servers take it); remove it or change the mode",
            "t.json:12:86: servers.github.scopes[1]: a scope is one token of printable ASCII without spaces, '\"' or '\\' (RFC 6749 §3.3); split or fix it",
            "t.json:14:5: servers.mcp: resource path /mcp/x is also produced by server \"x\"; give one of them its own \"resource_paths\"",
            "t.json:15:29: servers.dup.mode: duplicate key; JSON keeps only one of them silently, so remove the other",
        ]
    );
    assert!(!lines.join("\n").contains("hunter2"));
}

#[test]
fn a_syntax_error_is_the_only_problem_reported() {
    // The unknown key and the bad URL before the error are not reported: nothing can be trusted.
    let text =
        "{\n  \"public_urll\": \"ftp://x\",\n  \"servers\": {\"a\": {\"mode\": \"none\",}}\n}";
    assert_eq!(
        errors(text),
        ["t.json:3:36: invalid JSON: trailing comma; remove the trailing comma"]
    );
    assert_eq!(
        errors("{\"public_url\": \"https://gw.example.com\"\n  \"servers\": {}}"),
        ["t.json:2:3: invalid JSON: expected `,` or `}`; a comma is missing before this"]
    );
    assert_eq!(
        errors(""),
        [
            "t.json:1:1: invalid JSON: EOF while parsing a value; the file ends too early: a closing }, ] or \" is missing (or the file was cut off)"
        ]
    );
    assert_eq!(
        errors("{\"servers\": {\n"),
        [
            "t.json:2:1: invalid JSON: EOF while parsing an object; the file ends too early: a closing }, ] or \" is missing (or the file was cut off)"
        ]
    );
    assert_eq!(
        errors("// comment\n{}"),
        ["t.json:1:1: invalid JSON: expected value; JSON has no comments; remove it"]
    );
}

#[test]
fn syntax_error_columns_count_characters_like_every_other_problem() {
    // "é" is two bytes; serde_json counts bytes, problems count characters.
    assert_eq!(
        errors("{\"ééé\": 1, \"x\" 2}"),
        [
            "t.json:1:16: invalid JSON: expected `:`; write a colon between the key and its value: \"key\": value"
        ]
    );
    assert_eq!(
        errors("{\"a\": é}"),
        [
            "t.json:1:7: invalid JSON: expected value; a string needs double quotes (and true, false, null are lower case)"
        ]
    );
}

#[test]
fn a_byte_order_mark_is_ignored() {
    let config = ok(&format!(
        "\u{feff}{}",
        with_servers(r#""a": {"mode": "none"}"#)
    ));
    assert_eq!(config.servers.len(), 1);
    // Positions are those an editor shows (the mark is invisible).
    assert_eq!(
        errors("\u{feff}{\"public_url\": 1, \"servers\": {}}"),
        ["t.json:1:16: public_url: must be a URL string or a non-empty list of URL strings"]
    );
}

#[test]
fn facade_warnings() {
    let text = with_servers(
        r#""eng": {"mode": "facade", "issuer": "https://sso.example.com/realms/eng", "authorization_endpoint": "https://sso.example.com/a", "token_endpoint": "https://sso.example.com/t"}"#,
    );
    let config = ok(&text);
    let warnings: Vec<(&str, &str)> = config
        .warnings
        .iter()
        .map(|w| (w.path.as_str(), w.message.as_str()))
        .collect();
    // Sorted by position, like problems: the server's object starts before its "mode" value.
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert_eq!(warnings[0].0, "servers.eng");
    assert!(
        warnings[0].1.contains("registration_endpoint"),
        "{warnings:?}"
    );
    assert_eq!(warnings[1].0, "servers.eng.mode");
    assert!(warnings[1].1.contains("RFC 9207"), "{warnings:?}");
    assert!(config.warnings.iter().all(|w| w.pos.is_some()));
}

#[test]
fn the_rfc9207_caveat_is_printed_once_per_config() {
    let facade = |name: &str| {
        format!(
            r#""{name}": {{"mode": "facade", "issuer": "https://sso.example.com/realms/eng", "authorization_endpoint": "https://sso.example.com/a", "token_endpoint": "https://sso.example.com/t", "registration_endpoint": "https://sso.example.com/r", "resource_paths": ["/{name}/{{server}}"]}}"#
        )
    };
    let text = with_servers(&[facade("a"), facade("b"), facade("c")].join(", "));
    let config = ok(&text);
    let caveats: Vec<_> = config
        .warnings
        .iter()
        .filter(|w| w.message.contains("RFC 9207"))
        .collect();
    assert_eq!(caveats.len(), 1, "{:?}", config.warnings);
    assert_eq!(caveats[0].path, "servers.a.mode");
    assert!(
        caveats[0].message.contains("and 2 other facade servers"),
        "{}",
        caveats[0].message
    );
}

#[test]
fn the_demo_config_is_valid() {
    let config = parse(DEMO, "(demo)").unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(config.servers.len(), 4);
    assert_eq!(config.sites[0].base(), "http://localhost:8080");
}

#[test]
fn problems_display_without_position_or_path() {
    let p = Problems {
        file: "f.json".into(),
        list: vec![
            Problem {
                pos: None,
                path: String::new(),
                message: "cannot read".into(),
            },
            Problem {
                pos: Some(Pos { line: 2, column: 3 }),
                path: "a.b".into(),
                message: "bad".into(),
            },
        ],
    };
    assert_eq!(p.to_string(), "f.json: cannot read\nf.json:2:3: a.b: bad");
}

// Nothing served that would be refused, and every message with its fix.

#[test]
fn secret_looking_query_parameters_are_refused_without_echoing_the_value() {
    for (key, url) in [
        (
            "resource_documentation",
            "https://docs.example.com/x?client_secret=hunter2",
        ),
        (
            "resource_documentation",
            "https://docs.example.com/x?page=1&api_key=hunter2",
        ),
        (
            "resource_documentation",
            "https://docs.example.com/x?access_token=hunter2",
        ),
        (
            "resource_documentation",
            "https://docs.example.com/x?token=hunter2&password=hunter2",
        ),
        (
            "resource_documentation",
            "https://docs.example.com/x?Secret=hunter2",
        ),
    ] {
        let text = with_servers(&format!(r#""a": {{"mode": "none", "{key}": "{url}"}}"#));
        let all = error_text(&text);
        assert!(
            all.contains("looks like a secret") && all.contains("remove the parameter"),
            "{url}: {all}"
        );
        assert!(!all.contains("hunter2"), "{all}");
    }
    let facade = with_servers(
        r#""f": {"mode": "facade", "issuer": "https://up.example.com", "authorization_endpoint": "https://up.example.com/a?client_id=x&client_secret=hunter2", "token_endpoint": "https://up.example.com/t"}"#,
    );
    let all = error_text(&facade);
    assert!(
        all.contains("servers.f.authorization_endpoint: query parameter \"client_secret\""),
        "{all}"
    );
    assert!(!all.contains("hunter2"), "{all}");
    let gateway = r#"{"public_url": "https://gw.example.com", "gateway": {"token_endpoint": "{public_url}/{server}/token?api_key=hunter2"}, "servers": {"g": {"mode": "gateway"}}}"#;
    let all = error_text(gateway);
    assert!(
        all.contains("gateway.token_endpoint: query parameter \"api_key\""),
        "{all}"
    );
    assert!(!all.contains("hunter2"), "{all}");
    // Harmless parameters stay allowed.
    ok(&with_servers(
        r#""a": {"mode": "none", "resource_documentation": "https://docs.example.com/x?page=2&lang=en"}"#,
    ));
}

#[test]
fn durations_are_capped_at_load() {
    for refresh in ["18446744073709551615", "\"100000000h\"", "604801", "\"9s\""] {
        let text = format!(
            r#"{{"public_url": "https://gw.example.com", "upstream_refresh": {refresh}, "servers": {{}}}}"#
        );
        let all = error_text(&text);
        assert!(
            all.contains("upstream_refresh: must be a duration from 10 seconds to 7 days"),
            "{refresh}: {all}"
        );
    }
    let text =
        r#"{"public_url": "https://gw.example.com", "upstream_refresh": "7d", "servers": {}}"#;
    assert_eq!(ok(text).upstream_refresh, MAX_UPSTREAM_REFRESH);
}

#[test]
fn a_wrong_mode_is_echoed_with_the_nearest_valid_one() {
    assert_eq!(
        errors(&with_servers(r#""a": {"mode": "delgate"}"#)),
        [
            "t.json:1:68: servers.a.mode: found \"delgate\", did you mean \"delegate\"? (must be one of \"delegate\", \"facade\", \"gateway\", \"none\")"
        ]
    );
    let far = error_text(&with_servers(r#""a": {"mode": "proxy"}"#));
    assert!(far.contains("found \"proxy\" (must be one of"), "{far}");
}

#[test]
fn absurd_string_sizes_are_refused_with_the_limit() {
    // A 100 MiB one is refused the same way (when --max-config-size lets the file through).
    let name = "x".repeat(3 << 20);
    let text = with_servers(&format!(
        r#""a": {{"mode": "none", "resource_name": "{name}"}}"#
    ));
    let all = error_text(&text);
    assert!(
        all.contains("servers.a.resource_name: is 3145728 bytes, over the limit of 2048 bytes"),
        "{}",
        &all[..all.len().min(300)]
    );
}

#[test]
fn public_url_spellings_are_refused_or_warned_with_the_fix() {
    let public = |url: &str| format!(r#"{{"public_url": "{url}", "servers": {{}}}}"#);
    assert!(error_text(&public("https://gw.example.com:0")).contains("port 0 is not a port"));
    let dot = error_text(&public("https://gw.example.com./mcp"));
    assert!(
        dot.contains("ends with a dot") && dot.contains("write https://gw.example.com/mcp"),
        "{dot}"
    );
    let backslash = error_text(&public("https://gw.example.com\\\\litellm"));
    assert!(backslash.contains("contains a backslash"), "{backslash}");
    let warned = |url: &str| {
        ok(&public(url))
            .warnings
            .iter()
            .filter(|w| w.path == "public_url")
            .map(|w| w.message.clone())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let upper = warned("https://GW.Example.com");
    assert!(
        upper.contains("the host is served as gw.example.com")
            && upper.contains("write it that way"),
        "{upper}"
    );
    let idn = warned("https://bücher.example");
    assert!(
        idn.contains("xn--bcher-kva.example") && idn.contains("punycode"),
        "{idn}"
    );
    let port = warned("https://gw.example.com:443");
    assert!(port.contains("port 443 is the default for https"), "{port}");
    assert_eq!(warned("https://gw.example.com:8443/x"), "");
}

#[test]
fn encoding_and_syntax_errors_carry_the_fix() {
    let fails = |bytes: &[u8]| parse_bytes(bytes, FILE).unwrap_err().to_string();
    let utf16: Vec<u8> = "\u{feff}{\"public_url\": 1}"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    assert!(
        fails(&utf16).starts_with("t.json:1:1: the file is UTF-16"),
        "{}",
        fails(&utf16)
    );
    assert!(fails(&utf16).contains("save it as UTF-8"));
    let latin1 = fails(b"{\"public_url\": \"https://caf\xE9.example\"}");
    assert!(
        latin1.starts_with("t.json:1:28: byte 0xE9 is not UTF-8"),
        "{latin1}"
    );
    assert!(latin1.contains("save the file as UTF-8"), "{latin1}");
    let yaml = error_text("public_url: https://gw.example.com\nservers:\n  a: {mode: none}\n");
    assert!(
        yaml.starts_with("t.json:1:1: invalid JSON") && yaml.contains("this looks like YAML"),
        "{yaml}"
    );
    let comment = error_text(
        "{\n  \"public_url\": \"https://gw.example.com\", /* main */\n  \"servers\": {}\n}",
    );
    assert!(
        comment.contains("t.json:2:43:") && comment.contains("JSON has no comments"),
        "{comment}"
    );
    let trailing =
        error_text("{\n  \"public_url\": \"https://gw.example.com\",\n  \"servers\": {},\n}");
    assert!(
        trailing.contains("t.json:4:1:") && trailing.contains("remove the trailing comma"),
        "{trailing}"
    );
}
