//! Invariants of a rendered [`Registry`] (DESIGN.md §1–4), shared by the `config` fuzz target
//! (`tests/fuzz/fuzz_targets/config.rs`) and the property tests (`tests/properties.rs`).
//!
//! Every check panics with a message naming the document, so a fuzzer crash or a proptest failure
//! says what broke.

#![allow(dead_code)]

use std::collections::HashSet;

use hyper::StatusCode;
use serde_json::Value;
use signpost::testing::config::{Config, ModeKind};
use signpost::testing::registry::{AS_PREFIX, DocKind, PRM_PREFIX, Registry};

/// `null`, `""`, `[]` or `{}` anywhere in `v`: the JSON path of the first one.
pub fn find_empty(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::Null => Some(path.to_owned()),
        Value::String(s) if s.is_empty() => Some(path.to_owned()),
        Value::Array(a) if a.is_empty() => Some(path.to_owned()),
        Value::Object(o) if o.is_empty() => Some(path.to_owned()),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| find_empty(x, &format!("{path}[{i}]"))),
        Value::Object(o) => o
            .iter()
            .find_map(|(k, x)| find_empty(x, &format!("{path}.{k}"))),
        _ => None,
    }
}

/// The single string of a one-element list of strings.
fn only_string<'v>(v: Option<&'v Value>, what: &str) -> &'v str {
    match v.and_then(Value::as_array).map(Vec::as_slice) {
        Some([Value::String(s)]) => s,
        other => panic!("{what}: expected a one-element list of strings, got {other:?}"),
    }
}

/// The URL an issuer's metadata must be served under: `origin` + the well-known path's suffix, with
/// the issuer's one terminating `/` allowed (RFC 8414 §3.1 removes it before inserting).
pub fn issuer_matches_location(issuer: &str, origin: &str, suffix: &str) -> bool {
    let base = format!("{origin}{suffix}");
    issuer == base || issuer.strip_suffix('/') == Some(base.as_str())
}

/// Checks every document of `registry`, built from `config`; returns how many were checked.
pub fn check_registry(registry: &Registry, config: &Config) -> usize {
    let mut checked = 0;
    let mut prm_issuers: HashSet<String> = HashSet::new();
    let mut hosted: Vec<(String, String)> = Vec::new();
    for site in &registry.sites {
        let origin = &site.site.origin;
        for (path, doc) in site.documents() {
            let at = format!("{origin}{path}");
            assert!(
                doc.etag_bytes().starts_with(b"\"") && doc.etag_bytes().ends_with(b"\""),
                "{at}: ETag {:?} is not a strong quoted tag",
                doc.etag()
            );
            if doc.status != StatusCode::OK {
                // A facade waiting for its upstream's metadata (only with "discover": true).
                assert_eq!(doc.status, StatusCode::SERVICE_UNAVAILABLE, "{at}");
                assert_eq!(
                    doc.kind,
                    DocKind::As,
                    "{at}: only AS documents may be pending"
                );
                continue;
            }
            checked += 1;
            let value: Value = serde_json::from_slice(&doc.body())
                .unwrap_or_else(|e| panic!("{at}: body is not JSON ({e})"));
            assert!(value.is_object(), "{at}: body is not a JSON object");
            if let Some(empty) = find_empty(&value, "") {
                panic!("{at}: null or empty value at {empty}: {value}");
            }
            match doc.kind {
                DocKind::Prm => {
                    let suffix = path
                        .strip_prefix(PRM_PREFIX)
                        .unwrap_or_else(|| panic!("{at}: a PRM outside {PRM_PREFIX}"));
                    assert!(
                        suffix.is_empty() || suffix.starts_with('/'),
                        "{at}: PRM path does not continue the well-known prefix"
                    );
                    let expected = format!("{origin}{suffix}");
                    assert_eq!(
                        value["resource"].as_str(),
                        Some(expected.as_str()),
                        "{at}: PRM resource is not the URL it is served for"
                    );
                    let issuer = only_string(value.get("authorization_servers"), &at).to_owned();
                    assert_eq!(
                        value["bearer_methods_supported"],
                        serde_json::json!(["header"]),
                        "{at}"
                    );
                    let full = if suffix.is_empty() { "/" } else { suffix };
                    let idx = site
                        .resource(full)
                        .unwrap_or_else(|| panic!("{at}: PRM for a path no server owns"));
                    let server = &config.servers[idx];
                    assert_ne!(
                        server.mode,
                        ModeKind::None,
                        "{at}: PRM for a mode none server"
                    );
                    if server.mode == ModeKind::Delegate {
                        assert_eq!(
                            Some(issuer.as_str()),
                            server.upstream_issuer.as_deref(),
                            "{at}: delegate issuer is not the configured one byte-for-byte"
                        );
                    } else {
                        hosted.push((issuer.clone(), at.clone()));
                    }
                    if server.scopes.is_empty() {
                        assert!(value.get("scopes_supported").is_none(), "{at}");
                    } else {
                        assert_eq!(value["scopes_supported"], serde_json::json!(server.scopes));
                    }
                    prm_issuers.insert(issuer);
                }
                DocKind::As => {
                    let suffix = path
                        .strip_prefix(AS_PREFIX)
                        .unwrap_or_else(|| panic!("{at}: an AS document outside {AS_PREFIX}"));
                    assert!(
                        suffix.is_empty() || suffix.starts_with('/'),
                        "{at}: AS path does not continue the well-known prefix"
                    );
                    let issuer = value["issuer"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{at}: no issuer"));
                    assert!(
                        issuer_matches_location(issuer, origin, suffix),
                        "{at}: issuer {issuer:?} differs from the URL it is served under"
                    );
                    for key in ["authorization_endpoint", "token_endpoint"] {
                        assert!(value[key].is_string(), "{at}: no {key}");
                    }
                    assert_eq!(
                        value["response_types_supported"],
                        serde_json::json!(["code"])
                    );
                    assert_eq!(
                        value["code_challenge_methods_supported"],
                        serde_json::json!(["S256"])
                    );
                }
            }
        }
    }
    // Every AS document is some PRM's authorization server, and every hosted authorization server
    // of a PRM has its document where a client derives it from the issuer.
    for site in &registry.sites {
        for (_, doc) in site
            .documents()
            .into_iter()
            .filter(|(_, d)| d.kind == DocKind::As)
        {
            if doc.status != StatusCode::OK {
                continue;
            }
            let value: Value = serde_json::from_slice(&doc.body()).expect("checked above");
            let issuer = value["issuer"].as_str().expect("checked above");
            assert!(
                prm_issuers.contains(issuer),
                "AS document for {issuer} that no PRM names"
            );
        }
    }
    for (issuer, at) in hosted {
        let url = url::Url::parse(&issuer)
            .unwrap_or_else(|e| panic!("{at}: hosted issuer {issuer:?} is not a URL ({e})"));
        let origin = url.origin().ascii_serialization();
        let site = registry
            .sites
            .iter()
            .find(|s| s.site.origin == origin)
            .unwrap_or_else(|| panic!("{at}: hosted issuer {issuer} under no site"));
        let path = url.path().trim_end_matches('/');
        let well_known = format!("{AS_PREFIX}{path}");
        let doc = site.document(well_known.as_str()).unwrap_or_else(|| {
            panic!("{at}: no AS document at {origin}{well_known} for issuer {issuer}")
        });
        assert_eq!(doc.kind, DocKind::As);
        if doc.status == StatusCode::OK {
            let value: Value = serde_json::from_slice(&doc.body()).expect("checked above");
            assert_eq!(
                value["issuer"].as_str(),
                Some(issuer.as_str()),
                "{at}: the AS document at {origin}{well_known} has another issuer"
            );
        }
    }
    checked
}
