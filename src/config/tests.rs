//! Config validation, one test per rule of DESIGN.md §3 (and the validation list of issue 2).
//! Problems are compared as the exact `file:line:column: path: message` lines users see.

use super::*;

const FILE: &str = "t.json";

/// The problem lines of an invalid config (panics when it is valid).
fn errors(text: &str) -> Vec<String> {
    match parse(text, FILE) {
        Ok(_) => panic!("expected problems, the config is valid:\n{text}"),
        Err(p) => {
            assert_eq!(p.file, FILE);
            p.to_string().lines().map(str::to_owned).collect()
        }
    }
}

/// A problem line with the list after "allowed here: " replaced by "…" (the lists grow with new
/// keys; [`unknown_keys_list_what_is_allowed`] checks them against the key tables).
fn elide_allowed(line: &str) -> String {
    const AT: &str = "allowed here: ";
    match line.find(AT) {
        Some(i) => match line[i..].find("; remove or rename it") {
            Some(j) => format!("{}…{}", &line[..i + AT.len()], &line[i + j..]),
            None => line.to_owned(),
        },
        None => line.to_owned(),
    }
}

/// [`errors`] through [`elide_allowed`].
fn errors_elided(text: &str) -> Vec<String> {
    errors(text).iter().map(|l| elide_allowed(l)).collect()
}

/// All problem lines joined, for `contains` checks.
fn error_text(text: &str) -> String {
    errors(text).join("\n")
}

/// A valid config (panics with every problem when it is not).
fn ok(text: &str) -> Config {
    parse(text, FILE).unwrap_or_else(|p| panic!("expected a valid config, got:\n{p}\n--\n{text}"))
}

/// A one-line config with `public_url` `https://gw.example.com` and the given `servers` body.
fn with_servers(servers: &str) -> String {
    format!(r#"{{"public_url": "https://gw.example.com", "servers": {{{servers}}}}}"#)
}

fn server<'a>(config: &'a Config, name: &str) -> &'a Server {
    config
        .servers
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no server {name}"))
}

const FACADE_UPSTREAM: &str = r#""issuer": "https://up.example.com", "authorization_endpoint": "https://up.example.com/authorize", "token_endpoint": "https://up.example.com/token", "registration_endpoint": "https://up.example.com/register""#;

// ---------------------------------------------------------------------------------------------
// Strictness: unknown keys, secrets, duplicates.

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

// ---------------------------------------------------------------------------------------------
// Resource paths.

#[test]
fn two_servers_producing_the_same_path_is_an_error() {
    let text = r#"{"public_url": "https://gw.example.com",
 "servers": {"x": {"mode": "none", "resource_paths": ["/mcp/{server}"]},
             "mcp": {"mode": "none", "resource_paths": ["/{server}/x"]}}}"#;
    assert_eq!(
        errors(text),
        [
            "t.json:3:14: servers.mcp: resource path /mcp/x is also produced by server \"x\"; give one of them its own \"resource_paths\""
        ]
    );
}

#[test]
fn two_servers_at_the_root_is_an_error() {
    let text = with_servers(
        r#""a": {"mode": "none", "resource_paths": ["/"]}, "b": {"mode": "none", "resource_paths": ["/"]}"#,
    );
    assert_eq!(
        errors(&text),
        [
            "t.json:1:102: servers.b: resource path / is also produced by server \"a\"; give one of them its own \"resource_paths\""
        ]
    );
}

#[test]
fn the_same_path_twice_for_one_server_is_one_route() {
    let text = r#"{"public_url": "https://gw.example.com",
 "resource_paths": ["/mcp/{server}", "/mcp/{server}"],
 "servers": {"a": {"mode": "none"},
             "b": {"mode": "none", "resource_paths": ["/{server}/mcp", "/{server}/mcp", "/", "/"]}}}"#;
    let config = ok(text);
    assert_eq!(server(&config, "a").paths, ["/mcp/a"]);
    assert_eq!(server(&config, "b").paths, ["/b/mcp", "/"]);
}

#[test]
fn default_resource_paths() {
    let config = ok(&with_servers(r#""a": {"mode": "none"}"#));
    assert_eq!(
        server(&config, "a").paths,
        ["/mcp/a/mcp", "/mcp/a", "/a/mcp"]
    );
    assert_eq!(config.cache_max_age, 300);
}

#[test]
fn templates_need_server_exactly_once_and_a_clean_path() {
    let text = r#"{"public_url": "https://gw.example.com", "resource_paths": [
  "/mcp",
  "/{server}/{server}",
  "mcp/{server}",
  "/mcp/{server}/",
  "/a/../{server}",
  "/a//{server}",
  "/a b/{server}",
  "/",
  "",
  7
], "servers": {}}"#;
    assert_eq!(
        errors(text),
        [
            "t.json:2:3: resource_paths[0]: must contain {server} exactly once, such as \"/mcp/{server}/mcp\"",
            "t.json:3:3: resource_paths[1]: must contain {server} exactly once, such as \"/mcp/{server}/mcp\"",
            "t.json:4:3: resource_paths[2]: must start with '/', such as \"/mcp/{server}/mcp\"",
            "t.json:5:3: resource_paths[3]: must not end with '/': clients compare the resource URL exactly; remove the trailing slash",
            "t.json:6:3: resource_paths[4]: must not contain empty, \".\" or \"..\" segments (clients normalise them away); remove them",
            "t.json:7:3: resource_paths[5]: must not contain empty, \".\" or \"..\" segments (clients normalise them away); remove them",
            "t.json:8:3: resource_paths[6]: character ' ' would be percent-encoded by clients, so the resource would not match; use only letters, digits and -._~!$&'()*+,;=:@",
            "t.json:9:3: resource_paths[7]: must contain {server} exactly once, such as \"/mcp/{server}/mcp\"",
            "t.json:10:3: resource_paths[8]: must not be empty (clients reject empty strings); remove the key or give it a value",
            "t.json:11:3: resource_paths[9]: must be a string",
        ]
    );
}

#[test]
fn per_server_templates_follow_the_same_rules_plus_root() {
    let text = with_servers(r#""a": {"mode": "none", "resource_paths": ["/x", "/{server}"]}"#);
    assert_eq!(
        errors(&text),
        [
            "t.json:1:95: servers.a.resource_paths[0]: must contain {server} exactly once (or be exactly \"/\"), such as \"/mcp/{server}/mcp\""
        ]
    );
    let text = with_servers(r#""a": {"mode": "none", "resource_paths": []}"#);
    assert_eq!(
        errors(&text),
        [
            "t.json:1:94: servers.a.resource_paths: must list at least one path such as \"/mcp/{server}/mcp\""
        ]
    );
}

#[test]
fn a_server_may_be_mounted_at_the_root() {
    let config = ok(&with_servers(
        r#""root": {"mode": "delegate", "issuer": "https://idp.example.com", "resource_paths": ["/"]}"#,
    ));
    let root = server(&config, "root");
    assert_eq!(root.paths, ["/"]);
    let site = &config.sites[0];
    assert_eq!(site.full_path("/"), "/");
    // The resource of the root PRM is public_url itself.
    assert_eq!(
        site.resource_url(&site.full_path("/")),
        "https://gw.example.com"
    );

    // Under a path prefix, the root is the prefix.
    let config = ok(
        r#"{"public_url": "https://gw.example.com/litellm", "servers": {
        "root": {"mode": "none", "resource_paths": ["/"]}}}"#,
    );
    let site = &config.sites[0];
    assert_eq!(site.full_path("/"), "/litellm");
    assert_eq!(
        site.resource_url(&site.full_path("/")),
        "https://gw.example.com/litellm"
    );
}

// ---------------------------------------------------------------------------------------------
// Server names, modes and their keys.

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
// URLs and issuers.

#[test]
fn issuers_with_query_or_fragment_are_rejected() {
    let text = r#"{"public_url": "https://gw.example.com", "servers": {
  "q": {"mode": "delegate", "issuer": "https://idp.example.com/realms/x?tenant=1"},
  "e": {"mode": "delegate", "issuer": "https://idp.example.com/?"},
  "f": {"mode": "delegate", "issuer": "https://idp.example.com/#top"},
  "h": {"mode": "delegate", "issuer": "https://idp.example.com#"}
}}"#;
    assert_eq!(
        errors(text),
        [
            "t.json:2:39: servers.q.issuer: an issuer must not have a query (RFC 8414 §2); remove it",
            "t.json:3:39: servers.e.issuer: an issuer must not have a query (RFC 8414 §2); remove it",
            "t.json:4:39: servers.f.issuer: must not have a fragment (#…); remove it",
            "t.json:5:39: servers.h.issuer: must not have a fragment (#…); remove it",
        ]
    );
}

#[test]
fn non_http_urls_are_rejected() {
    let text = r#"{"public_url": "ftp://gw.example.com", "servers": {
  "a": {"mode": "delegate", "issuer": "javascript:alert(1)"},
  "b": {"mode": "delegate", "issuer": "file:///etc/passwd"},
  "c": {"mode": "delegate", "issuer": "idp.example.com"},
  "d": {"mode": "none", "resource_documentation": "data:text/html,hi"}
}}"#;
    assert_eq!(
        errors(text),
        [
            "t.json:1:16: public_url: scheme \"ftp\" is not allowed; use https (or http for loopback)",
            "t.json:2:39: servers.a.issuer: scheme \"javascript\" is not allowed; use https (or http for loopback)",
            "t.json:3:39: servers.b.issuer: scheme \"file\" is not allowed; use https (or http for loopback)",
            "t.json:4:39: servers.c.issuer: not an absolute URL (relative URL without a base); write it like \"https://host/path\"",
            "t.json:5:51: servers.d.resource_documentation: scheme \"data\" is not allowed; use https (or http for loopback)",
        ]
    );
}

#[test]
fn public_url_must_not_have_query_or_fragment() {
    assert_eq!(
        errors(r#"{"public_url": "https://gw.example.com/?x", "servers": {}}"#),
        ["t.json:1:16: public_url: must not have a query (?…); remove it"]
    );
    assert_eq!(
        errors(r#"{"public_url": "https://gw.example.com#x", "servers": {}}"#),
        ["t.json:1:16: public_url: must not have a fragment (#…); remove it"]
    );
}

#[test]
fn issuers_are_kept_byte_for_byte() {
    let text = r#"{"public_url": "https://gw.example.com", "servers": {
  "keycloak": {"mode": "delegate", "issuer": "https://sso.example.com/realms/eng"},
  "auth0": {"mode": "delegate", "issuer": "https://tenant.auth0.com/"},
  "odd": {"mode": "delegate", "issuer": "https://IdP.Example.com:443/Tenant/"}
}}"#;
    let config = ok(text);
    let issuer = |name| server(&config, name).auth[0].issuer.clone();
    assert_eq!(issuer("keycloak"), "https://sso.example.com/realms/eng");
    assert_eq!(issuer("auth0"), "https://tenant.auth0.com/");
    assert_eq!(issuer("odd"), "https://IdP.Example.com:443/Tenant/");
    assert!(server(&config, "auth0").auth[0].hosted.is_none());
}

#[test]
fn facade_default_issuer_is_public_url_slash_server() {
    let text = format!(
        r#"{{"public_url": ["https://a.example.com", "https://b.example.com/litellm"], "servers": {{
  "eng": {{"mode": "facade", {FACADE_UPSTREAM}, "scopes": ["openid"]}}
}}}}"#
    );
    let config = ok(&text);
    let eng = server(&config, "eng");
    assert_eq!(eng.auth.len(), 2);
    assert_eq!(eng.auth[0].issuer, "https://a.example.com/eng");
    assert_eq!(eng.auth[1].issuer, "https://b.example.com/litellm/eng");
    let hosted = eng.auth[1]
        .hosted
        .as_ref()
        .expect("facade issuers are hosted");
    assert_eq!(hosted.site, 1);
    assert_eq!(
        hosted.well_known_path,
        "/.well-known/oauth-authorization-server/litellm/eng"
    );
    // The endpoints are the upstream's.
    assert_eq!(
        hosted.authorization_endpoint,
        "https://up.example.com/authorize"
    );
    assert_eq!(hosted.token_endpoint, "https://up.example.com/token");
    assert_eq!(
        hosted.registration_endpoint.as_deref(),
        Some("https://up.example.com/register")
    );
    assert!(hosted.token_endpoint_auth_methods_supported.is_empty());
}

#[test]
fn facade_issuer_may_live_under_any_public_url() {
    let text = format!(
        r#"{{"public_url": ["https://a.example.com", "https://b.example.com"], "servers": {{
  "eng": {{"mode": "facade", {FACADE_UPSTREAM}, "facade_issuer": "https://b.example.com/idp/eng"}}
}}}}"#
    );
    let config = ok(&text);
    for auth in &server(&config, "eng").auth {
        assert_eq!(auth.issuer, "https://b.example.com/idp/eng");
        assert_eq!(auth.hosted.as_ref().unwrap().site, 1);
    }
}

#[test]
fn facade_issuer_outside_every_public_url_is_rejected_once() {
    let text = format!(
        r#"{{"public_url": ["https://a.example.com", "https://b.example.com"], "servers": {{
  "eng": {{"mode": "facade", {FACADE_UPSTREAM},
          "facade_issuer": "https://elsewhere.example.com/eng"}}
}}}}"#
    );
    assert_eq!(
        errors(&text),
        [
            "t.json:3:28: servers.eng.facade_issuer: issuer https://elsewhere.example.com/eng is not under any public_url, so signpost cannot serve its metadata; use a template such as \"{public_url}/{server}\""
        ]
    );
}

#[test]
fn a_bad_gateway_template_is_reported_once_not_per_server_and_site() {
    let text = r#"{"public_url": ["https://a.example.com", "https://b.example.com"],
 "gateway": {"issuer": "https://idp.example.com/{server}"},
 "servers": {"g1": {"mode": "gateway"}, "g2": {"mode": "gateway"}}}"#;
    assert_eq!(
        errors(text),
        [
            "t.json:2:24: gateway.issuer: issuer https://idp.example.com/g1 is not under any public_url, so signpost cannot serve its metadata; use a template such as \"{public_url}/{server}\""
        ]
    );
}

#[test]
fn gateway_templates_and_defaults() {
    let config = ok(&with_servers(
        r#""github": {"mode": "gateway", "scopes": ["repo"]}"#,
    ));
    let auth = &server(&config, "github").auth[0];
    assert_eq!(auth.issuer, "https://gw.example.com/github");
    let hosted = auth.hosted.as_ref().unwrap();
    assert_eq!(
        hosted.well_known_path,
        "/.well-known/oauth-authorization-server/github"
    );
    assert_eq!(
        hosted.authorization_endpoint,
        "https://gw.example.com/github/authorize"
    );
    assert_eq!(hosted.token_endpoint, "https://gw.example.com/github/token");
    assert_eq!(
        hosted.registration_endpoint.as_deref(),
        Some("https://gw.example.com/github/register")
    );
    assert_eq!(
        hosted.token_endpoint_auth_methods_supported,
        ["none", "client_secret_post"]
    );

    let text = r#"{"public_url": "https://gw.example.com", "gateway": {"issuer": "{public_url}/{server}/{oops}", "token_endpoint": "/token"}, "servers": {}}"#;
    assert_eq!(
        errors(text),
        [
            "t.json:1:64: gateway.issuer: only {public_url} and {server} may appear in braces; fix the template",
            "t.json:1:114: gateway.token_endpoint: must start with {public_url} or an absolute https:// URL",
        ]
    );
}

#[test]
fn two_servers_sharing_a_hosted_issuer_is_an_error() {
    let text = r#"{"public_url": "https://gw.example.com", "gateway": {"issuer": "{public_url}/gw"},
 "servers": {"a": {"mode": "gateway"}, "b": {"mode": "gateway"}}}"#;
    assert_eq!(
        errors(text),
        [
            "t.json:2:40: servers.b: its authorization-server issuer https://gw.example.com/gw is also the issuer of server \"a\"; give each server its own issuer"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// public_url.

#[test]
fn public_url_string_serves_every_host() {
    let config = ok(&with_servers(""));
    assert!(config.any_host);
    assert_eq!(config.sites.len(), 1);
    assert_eq!(config.sites[0].origin, "https://gw.example.com");
    assert_eq!(config.sites[0].prefix, "");
}

#[test]
fn public_url_list_selects_by_host() {
    let config = ok(
        r#"{"public_url": ["https://GW.example.com", "http://localhost:8080", "https://gw.example.com:8443"], "servers": {}}"#,
    );
    assert!(!config.any_host);
    let keys: Vec<&[String]> = config.sites.iter().map(|s| &s.host_keys[..]).collect();
    assert_eq!(
        keys,
        [
            &["gw.example.com".to_owned(), "gw.example.com:443".to_owned()][..],
            &["localhost:8080".to_owned()][..],
            &["gw.example.com:8443".to_owned()][..],
        ]
    );
    assert_eq!(config.sites[0].origin, "https://gw.example.com");
}

#[test]
fn public_url_list_entries_must_have_distinct_hosts() {
    let text = r#"{"public_url": [
  "https://gw.example.com",
  "https://GW.example.com:443/other",
  "http://gw.example.com",
  "http://h.example.com",
  "https://h.example.com:80",
  42
], "servers": {}}"#;
    assert_eq!(
        errors(text),
        [
            "t.json:3:3: public_url[1]: host gw.example.com is already used by public_url https://gw.example.com; the Host header cannot tell them apart, so give each entry its own host",
            "t.json:4:3: public_url[2]: host gw.example.com is already used by public_url https://gw.example.com; the Host header cannot tell them apart, so give each entry its own host",
            "t.json:6:3: public_url[4]: host h.example.com:80 is already used by public_url http://h.example.com; the Host header cannot tell them apart, so give each entry its own host",
            "t.json:7:3: public_url[5]: must be a URL string such as \"https://gw.example.com\"",
        ]
    );
    assert_eq!(
        errors(r#"{"public_url": [], "servers": {}}"#),
        ["t.json:1:16: public_url: must be a URL string or a non-empty list of URL strings"]
    );
}

#[test]
fn public_url_path_prefix() {
    let config = ok(
        r#"{"public_url": "https://gw.example.com/litellm/", "servers": {
        "a": {"mode": "gateway"}}}"#,
    );
    let site = &config.sites[0];
    assert_eq!(site.origin, "https://gw.example.com");
    assert_eq!(site.prefix, "/litellm");
    assert_eq!(site.base(), "https://gw.example.com/litellm");
    let a = server(&config, "a");
    // Paths are stored relative to the site; the prefix is added when serving.
    assert_eq!(a.paths[0], "/mcp/a/mcp");
    assert_eq!(site.full_path(&a.paths[0]), "/litellm/mcp/a/mcp");
    assert_eq!(
        site.resource_url(&site.full_path(&a.paths[0])),
        "https://gw.example.com/litellm/mcp/a/mcp"
    );
    assert_eq!(a.auth[0].issuer, "https://gw.example.com/litellm/a");
    assert_eq!(
        a.auth[0].hosted.as_ref().unwrap().well_known_path,
        "/.well-known/oauth-authorization-server/litellm/a"
    );
}

#[test]
fn plain_http_public_url_warns_unless_loopback() {
    let config = ok(
        r#"{"public_url": ["http://gw.example.com", "http://localhost:8080", "http://127.0.0.1:9", "http://[::1]:9"], "servers": {}}"#,
    );
    let http_warnings: Vec<&Problem> = config
        .warnings
        .iter()
        .filter(|w| w.message.starts_with("plain http"))
        .collect();
    assert_eq!(http_warnings.len(), 1);
    assert_eq!(http_warnings[0].path, "public_url[0]");
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

// ---------------------------------------------------------------------------------------------
// Reporting: every problem at once, positions, syntax errors, warnings.

/// Every kind of mistake in one file; each reported with its exact position, sorted by position.
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

// === Issue 14: nothing served that would be refused, and every message with its fix ===

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
