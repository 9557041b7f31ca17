//! Config validation, one test per rule of the README's "Config reference" section, split as the
//! code is: key strictness and secrets (`keys.rs`), resource paths (`paths.rs`), servers, modes and
//! values (`servers.rs`), URLs, issuers and `public_url` (`urls.rs`), and how problems are reported
//! (`reporting.rs`). Problems are compared as the exact `file:line:column: path: message` lines
//! users see. This file holds the helpers they share.

use super::keys::is_secret_key;
use super::validate::{CIMD_KEY, COMMON_SERVER_KEYS, FACADE_KEYS, GATEWAY_KEYS, TOP_KEYS};
use super::*;

mod keys;
mod paths;
mod reporting;
mod servers;
mod urls;

const FILE: &str = "t.json";

/// [`parse`], with [`parse_owned`] (which frees the bytes before expanding) checked against
/// [`parse_bytes`] on the same bytes: the same config, or the same problems at the same positions.
fn parse_both(text: &str) -> Result<Config, Problems> {
    let in_place = parse_bytes(text.as_bytes(), FILE);
    let owned = parse_owned(text.as_bytes().to_vec(), FILE);
    assert_eq!(
        format!("{in_place:?}"),
        format!("{owned:?}"),
        "parse_bytes and parse_owned differ on:\n{text}"
    );
    parse(text, FILE)
}

/// The problem lines of an invalid config (panics when it is valid).
fn errors(text: &str) -> Vec<String> {
    match parse_both(text) {
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
    parse_both(text).unwrap_or_else(|p| panic!("expected a valid config, got:\n{p}\n--\n{text}"))
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
