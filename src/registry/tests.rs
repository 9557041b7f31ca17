//! The registry's layout: hints equal to `hint::hint`, and a build after the served snapshot
//! answering the same while sharing what did not change.

use super::render::push_quoted;
use super::*;

/// Every mode, two sites (one with a prefix), a server at `/`, scopes, a documentation URL.
fn config(variant: &str, extra: &str) -> String {
    format!(
        r#"{{
  "public_url": ["https://a.example.com", "https://b.example.com:8443/gw"],
  "servers": {{
"atlassian": {{ "mode": "delegate", "issuer": "https://auth.atlassian.com",
               "scopes": ["read:jira-work", "write:jira-work"], "resource_name": "Atlassian {variant}",
               "resource_documentation": "https://developer.atlassian.com/mcp" }},
"keycloak":  {{ "mode": "delegate", "issuer": "https://sso.example.com/realms/eng" }},
"eng-tools": {{ "mode": "facade", "issuer": "https://sso.example.com/realms/eng",
               "authorization_endpoint": "https://sso.example.com/realms/eng/auth",
               "token_endpoint": "https://sso.example.com/realms/eng/token",
               "scopes": ["openid"] }},
"github":    {{ "mode": "gateway", "scopes": ["repo"] }},
"docs":      {{ "mode": "none" }},
"home":      {{ "mode": "delegate", "issuer": "https://idp.example.com", "resource_paths": ["/"] }}
{extra}
  }}
}}"#
    )
}

fn build(text: &str, previous: Option<&Registry>) -> Registry {
    let config = crate::config::parse(text, "test.json").expect("valid");
    let source = Source {
        path: "test.json".into(),
        generation: 1,
        content_sha256: String::new(),
        loaded_at: SystemTime::now(),
    };
    match previous {
        Some(p) => Registry::build_after(config, source, &Documents::new(), p),
        None => Registry::build(config, source),
    }
}

/// Every answer of a snapshot: per site, each document (status, body, ETag) and each resource's
/// owner and hint.
fn answers(r: &Registry) -> Vec<Vec<(String, String)>> {
    r.sites
        .iter()
        .map(|site| {
            let mut all: Vec<(String, String)> = site
                .documents()
                .into_iter()
                .map(|(path, d)| {
                    let body = String::from_utf8(d.body().to_vec()).unwrap();
                    let etag = String::from_utf8(d.etag_bytes().to_vec()).unwrap();
                    (path, format!("{} {etag} {body}", d.status))
                })
                .collect();
            all.extend(site.resources.iter().map(|(full, res)| {
                let hint = res.hint.to_str().unwrap().to_owned();
                (full.to_owned(), format!("{} {hint}", res.server()))
            }));
            all.sort();
            all
        })
        .collect()
}

#[test]
fn hints_are_the_challenge_hint_of_every_resource() {
    let text = config("v0", "");
    let r = build(&text, None);
    let parsed = crate::config::parse(&text, "test.json").expect("valid");
    let mut checked = 0;
    for site in &r.sites {
        for (full, res) in site.resources.iter() {
            let server = &parsed.servers[res.server()];
            assert_eq!(r.owner(res.server()).name, server.name);
            let expected = crate::hint::hint(&site.site, server, full);
            assert_eq!(res.hint.to_str().unwrap(), expected, "{full}");
            checked += 1;
        }
    }
    assert!(checked > 20, "{checked}");
    let mut quoted = Vec::new();
    push_quoted(&mut quoted, "a\"b\\c\r\nd\u{85}é");
    assert_eq!(String::from_utf8(quoted).unwrap(), r#"a\"b\\cdé"#);
}

#[test]
fn a_build_after_the_served_snapshot_answers_the_same_and_shares_what_did_not_change() {
    let a = build(&config("v0", ""), None);
    let extra = r#", "new": { "mode": "gateway" }"#;
    let text = config("v1", extra);
    let fresh = build(&text, None);
    let after = build(&text, Some(&a));
    assert_eq!(answers(&after), answers(&fresh));
    assert_ne!(answers(&after), answers(&a));
    // Again from itself: everything shared.
    let again = build(&text, Some(&after));
    assert_eq!(answers(&again), answers(&fresh));
    let block = |r: &Registry, si: usize, full: &str| {
        let site = &r.sites[si];
        let res = site.resources.get(full).expect("resource");
        site.blocks[res.block as usize].as_ptr()
    };
    for si in 0..2 {
        let prefix = if si == 0 { "" } else { "/gw" };
        let keycloak = format!("{prefix}/mcp/keycloak/mcp");
        let atlassian = format!("{prefix}/mcp/atlassian/mcp");
        assert_eq!(block(&after, si, &keycloak), block(&a, si, &keycloak));
        assert_ne!(block(&after, si, &atlassian), block(&a, si, &atlassian));
        assert_eq!(block(&again, si, &atlassian), block(&after, si, &atlassian));
    }
    let issuer = |r: &Registry| {
        r.sites[0]
            .issuers
            .iter()
            .map(|(_, d)| d.data.as_ptr())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        issuer(&after)[..2],
        issuer(&a)[..],
        "the new server's issuer comes last"
    );
}

#[test]
fn a_snapshot_without_upstreams_keeps_only_serving_fields_and_is_never_rendered_again() {
    let r = build(&config("v0", ""), None);
    let full = answers(&build(&config("v0", ""), None));
    assert_eq!(answers(&r), full);
    assert!(r.config.servers.is_empty(), "the servers are freed");
    assert_eq!(r.server_count(), 6);
    let owners: Vec<Owner<'_>> = (0..r.server_count()).map(|i| r.owner(i)).collect();
    let named = |n: &str| *owners.iter().find(|o| o.name == n).unwrap();
    assert_eq!(named("github").scopes, "repo");
    assert_eq!(named("github").mode, ModeKind::Gateway);
    assert_eq!(named("atlassian").scopes, "read:jira-work write:jira-work");
    assert_eq!(
        (named("docs").mode, named("docs").scopes),
        (ModeKind::None, "")
    );
    // A fetch landing just after a reload to this config must not render it from its slim
    // config (it would serve no document at all).
    assert!(r.with_upstreams(&Documents::new()).is_none());
    // With a server that discovers, the config stays whole and renders again the same.
    let discovering =
        r#", "disc": { "mode": "facade", "issuer": "https://idp.example.com", "discover": true }"#;
    let d = build(&config("v0", discovering), None);
    assert!(d.config.servers.iter().all(|s| !s.paths.is_empty()));
    let again = d.with_upstreams(&Documents::new()).expect("renders again");
    assert_eq!(answers(&again), answers(&d));
}

/// The snapshot `serve` builds (servers expanded and rendered one at a time) answers exactly what
/// the whole-config build does, owners included, alone and after a previous snapshot.
#[test]
fn a_streamed_build_answers_what_a_whole_build_does() {
    // One site: `serve` streams only then (two sites go through the whole build).
    let one_site = |variant: &str| {
        config(variant, "").replace(
            r#"["https://a.example.com", "https://b.example.com:8443/gw"]"#,
            r#""https://b.example.com:8443/gw""#,
        )
    };
    let streamed = |text: &str, previous: Option<&Registry>| {
        let staged =
            crate::config::parse_staged(text.as_bytes().to_vec(), "test.json").expect("valid");
        let (head, servers) = staged.into_stream();
        assert!(!servers.discovers());
        let source = Source {
            path: "test.json".into(),
            generation: 1,
            content_sha256: String::new(),
            loaded_at: SystemTime::now(),
        };
        Registry::build_streamed(head, servers, source, previous)
    };
    let owners = |r: &Registry| {
        (0..r.server_count())
            .map(|i| format!("{:?}", r.owner(i)))
            .collect::<Vec<_>>()
    };
    let (v0, v1) = (one_site("v0"), one_site("v1"));
    let whole = build(&v0, None);
    let first = streamed(&v0, None);
    assert_eq!(answers(&first), answers(&whole));
    assert_eq!(owners(&first), owners(&whole));
    assert_eq!(first.server_count(), 6);
    assert!(first.config.servers.is_empty() && first.slim);
    let next = streamed(&v1, Some(&first));
    assert_eq!(answers(&next), answers(&build(&v1, Some(&whole))));
    assert_ne!(answers(&next), answers(&first));
    // What did not change is shared with the previous snapshot, as in the whole build.
    let site = (&first.sites[0], &next.sites[0]);
    let shared = site
        .1
        .blocks
        .iter()
        .filter(|b| site.0.blocks.iter().any(|o| o.as_ptr() == b.as_ptr()))
        .count();
    assert_eq!(
        shared,
        site.1.blocks.len() - 1,
        "only atlassian's block changed"
    );
}
