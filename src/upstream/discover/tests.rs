//! Unit tests of upstream discovery: candidate URLs, sanitizing, findings.

use super::*;
use crate::upstream::judge::suggest;

fn urls(issuer: &str) -> Vec<String> {
    candidate_urls(&Url::parse(issuer).unwrap())
        .iter()
        .map(Url::to_string)
        .collect()
}

#[test]
fn path_issuers_are_tried_in_mcp_order() {
    assert_eq!(
        urls("https://sso.example.com/realms/eng"),
        [
            "https://sso.example.com/.well-known/oauth-authorization-server/realms/eng",
            "https://sso.example.com/.well-known/openid-configuration/realms/eng",
            "https://sso.example.com/realms/eng/.well-known/openid-configuration",
        ]
    );
    assert_eq!(
        urls("https://sso.example.com/realms/eng/"),
        urls("https://sso.example.com/realms/eng")
    );
}

#[test]
fn root_issuers_try_the_two_root_forms() {
    for issuer in ["https://tenant.auth0.com/", "https://tenant.auth0.com"] {
        assert_eq!(
            urls(issuer),
            [
                "https://tenant.auth0.com/.well-known/oauth-authorization-server",
                "https://tenant.auth0.com/.well-known/openid-configuration",
            ]
        );
    }
}

#[test]
fn suggestions_name_the_trailing_slash() {
    assert!(
        suggest("https://t.auth0.com", "https://t.auth0.com/", true)
            .contains("with the trailing slash")
    );
    assert!(
        suggest("https://sso/realms/eng", "https://sso/realms/eng2", true)
            .contains("Did you mean \"https://sso/realms/eng2\"")
    );
    // A published issuer whose own metadata URLs do not serve it is never suggested.
    let unverified = suggest("https://sso/realms/eng", "https://sso", false);
    assert!(!unverified.contains("Did you mean"), "{unverified}");
    assert!(unverified.contains("facade"), "{unverified}");
}
