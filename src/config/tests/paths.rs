//! Resource paths: the templates, their defaults, and two servers at one path.

use super::*;

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
fn each_later_server_is_told_once_per_path_in_file_order() {
    // The first server in the file owns a path; the problems follow the file (server, then the
    // order of its paths), however the paths sort.
    let text = with_servers(
        r#""x": {"mode": "none", "resource_paths": ["/q/{server}", "/"]}, "q": {"mode": "none", "resource_paths": ["/{server}/x", "/"]}, "c": {"mode": "none", "resource_paths": ["/"]}"#,
    );
    let at = |what: &str| text.find(what).map(|i| i + 1).unwrap();
    assert_eq!(
        errors(&text),
        [
            format!(
                "t.json:1:{}: servers.q: resource path /q/x is also produced by server \"x\"; give one of them its own \"resource_paths\"",
                at(r#""q""#)
            ),
            format!(
                "t.json:1:{}: servers.q: resource path / is also produced by server \"x\"; give one of them its own \"resource_paths\"",
                at(r#""q""#)
            ),
            format!(
                "t.json:1:{}: servers.c: resource path / is also produced by server \"x\"; give one of them its own \"resource_paths\"",
                at(r#""c""#)
            ),
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
