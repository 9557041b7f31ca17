//! Fuzzes config parsing and validation (DESIGN.md §3) and rendering (§4).
//!
//! Input: the bytes of a config file. Bytes that are not UTF-8 are skipped (the file reader
//! rejects them before parsing). `config::parse` must not panic and must give exactly what
//! `config::parse_tree` (the whole JSON tree validated at once) and `config::parse_owned` give; its problems must each be one
//! non-empty line; a config it accepts must render into a `Registry` whose every document passes
//! `check::check_registry` (JSON, no null or empty value, PRM `resource` = the URL it is served
//! for, AS `issuer` = the URL it is served under, every hosted issuer's document where a client
//! looks for it).

#![no_main]

use libfuzzer_sys::fuzz_target;
use signpost::testing::config;
use signpost::testing::registry::{Registry, Source};

#[path = "../check.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = config::parse(text, "f.json");
    // Validating as it parses must give exactly what validating the whole tree gives.
    let shown = |r: &Result<config::Config, config::Problems>| match r {
        Ok(c) => format!("{c:?}"),
        Err(p) => format!("{p}\n{:?}", p.list),
    };
    assert_eq!(
        shown(&parsed),
        shown(&config::parse_tree(text, "f.json")),
        "parse and parse_tree differ"
    );
    // `serve`'s path, which frees the bytes before expanding the servers, must give what the
    // same bytes give parsed in place (both check the encoding first).
    assert_eq!(
        shown(&config::parse_bytes(data, "f.json")),
        shown(&config::parse_owned(data.to_vec(), "f.json")),
        "parse_bytes and parse_owned differ"
    );
    match parsed {
        Err(problems) => {
            assert!(!problems.list.is_empty(), "an error without problems");
            for p in &problems.list {
                assert!(!p.message.is_empty(), "an empty message at {}", p.path);
                assert!(
                    !p.message.contains(['\n', '\r']) && !p.path.contains(['\n', '\r']),
                    "a problem spanning lines: {p:?}"
                );
                if let Some(pos) = p.pos {
                    assert!(pos.line >= 1 && pos.column >= 1, "{p:?}");
                    assert!(pos.line <= text.split('\n').count(), "{p:?} past the end");
                }
            }
            let shown = problems.to_string();
            assert_eq!(shown.lines().count(), problems.list.len(), "{shown}");
        }
        Ok(config) => {
            for w in &config.warnings {
                assert!(!w.message.contains(['\n', '\r']), "{w:?}");
            }
            let source = Source {
                path: "f.json".into(),
                generation: 1,
                content_sha256: String::new(),
                loaded_at: std::time::UNIX_EPOCH,
            };
            let registry = Registry::build(config.clone(), source);
            check::check_registry(&registry, &config);
        }
    }
});
