//! Fuzzes what a facade relays from an upstream IdP's metadata (issue 14 item 3).
//!
//! Input: the bytes of an upstream metadata document. Anything that is not a JSON object is
//! skipped (discovery reports it as `invalid_metadata` and relays nothing). The document goes
//! through `upstream::discover::sanitize` and into the registry of a facade that discovers its
//! endpoints: `sanitize` must be idempotent, the registry must keep every invariant of
//! `check::check_registry`, and a served facade document may only carry endpoints that are
//! absolute https (or http on loopback) without credentials or fragments, non-empty lists of
//! non-empty strings, and booleans where booleans belong; otherwise it is a 503 saying why.

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use signpost::testing::registry::{Registry, Source};
use signpost::testing::upstream::discover::sanitize;
use signpost::testing::upstream::{Documents, Relay};

#[path = "../check.rs"]
mod check;

const ISSUER: &str = "https://sso.example.com/realms/eng";
const CONFIG: &str = r#"{ "public_url": "https://gw.example.com", "servers": {
    "eng": { "mode": "facade", "issuer": "https://sso.example.com/realms/eng", "discover": true } } }"#;

fn relayable_url(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let Ok(u) = url::Url::parse(s) else {
        return false;
    };
    (u.scheme() == "https" || (u.scheme() == "http" && signpost::testing::fetch::is_loopback(&u)))
        && u.username().is_empty()
        && u.password().is_none()
        && u.fragment().is_none()
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fuzz_target!(|data: &[u8]| {
    let Ok(Value::Object(mut doc)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    doc.insert("issuer".into(), Value::String(ISSUER.into()));
    let dropped = sanitize(&mut doc);
    let mut again: Map<String, Value> = doc.clone();
    assert!(sanitize(&mut again).is_empty(), "sanitize is not idempotent");
    assert_eq!(again, doc);
    let config = signpost::testing::config::parse(CONFIG, "f.json").expect("a valid config");
    let source = Source {
        path: "f.json".into(),
        generation: 1,
        content_sha256: String::new(),
        loaded_at: std::time::UNIX_EPOCH,
    };
    let mut docs = Documents::new();
    docs.insert(
        ISSUER.to_owned(),
        Relay {
            document: Some(Arc::new(doc)),
            failure: None,
            dropped,
        },
    );
    let registry = Registry::build(config.clone(), source).with_upstreams(&docs)
        .expect("a config whose facade discovers renders again");
    check::check_registry(&registry, &config);
    let served = registry.sites[0]
        .find("/.well-known/oauth-authorization-server/eng")
        .expect("the facade's document");
    let body: Value = serde_json::from_slice(&served.body()).expect("JSON");
    if served.status != 200 {
        assert_eq!(served.status, 503);
        let why = body["error_description"].as_str().unwrap_or("");
        assert!(why.starts_with("rejected: "), "{why}");
        return;
    }
    for key in [
        "authorization_endpoint",
        "token_endpoint",
        "registration_endpoint",
        "revocation_endpoint",
    ] {
        if let Some(v) = body.get(key) {
            assert!(relayable_url(v), "{key} = {v} served");
        }
    }
    for key in ["token_endpoint_auth_methods_supported", "scopes_supported"] {
        if let Some(v) = body.get(key) {
            let list = v.as_array().expect("a list");
            assert!(!list.is_empty(), "{key} empty");
            assert!(
                list.iter().all(|x| x.as_str().is_some_and(|s| !s.is_empty())),
                "{key} = {v}"
            );
        }
    }
    if let Some(v) = body.get("client_id_metadata_document_supported") {
        assert!(v.is_boolean(), "{v}");
    }
});
