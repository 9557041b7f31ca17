//! The config file: parse the JSON text, then validate it into a checked [`Config`] in which every
//! URL is already expanded for every `public_url`, so building the served snapshot cannot fail.
//!
//! Validation never stops at the first problem: a syntax error ends parsing (nothing else can be
//! trusted), but every semantic problem after that is collected, each with its line, column, JSON
//! path and a sentence saying how to fix it. Values of keys that look like secrets are never echoed.
//!
//! The files, in the order a config goes through them: `read.rs` (the bytes, under a size limit and
//! a deadline), `syntax.rs` (encoding and JSON syntax slips, with the fix), this file (the pipeline:
//! decode → JSON → validate → positions), `stream.rs` (the JSON read straight into the validator,
//! one server at a time), `validate.rs` (the top-level keys and the value rules),
//! `server.rs` (one server), `urls.rs` (the URL rules), `keys.rs` (secret-looking keys, scope
//! characters, typo suggestions), `expand.rs` (templates filled in per site), `locate.rs` (line and
//! column of a JSON path); `model.rs` is the validated [`Config`], `problem.rs` its [`Problems`].

mod expand;
mod keys;
mod locate;
mod model;
mod problem;
pub mod read;
mod server;
mod stream;
mod syntax;
mod urls;
mod validate;

use serde_json::Value;

pub use expand::ExpandedServers;
pub use keys::is_scope_char;
pub use locate::Pos;
pub use model::*;
pub use problem::{Problem, Problems, print_warnings};
pub(crate) use problem::{log_problems, log_warnings};
use validate::{Anchor, Noted, Validator};

/// The config shown by `serve --demo`: the example of the README's "Config reference" section,
/// on `http://localhost:8080`.
pub const DEMO: &str = include_str!("demo.json");

/// Decodes (UTF-8 only, with a fix for every other encoding), parses and validates a config
/// file's bytes. `file` names it in problems.
pub fn parse_bytes(bytes: &[u8], file: &str) -> Result<Config, Problems> {
    Ok(check_bytes(bytes, file)?.into_config())
}

/// [`parse_bytes`] taking the bytes: they are freed once every rule has passed and every
/// position is found, before the servers are expanded (the expansion cannot fail by then).
pub fn parse_owned(bytes: Vec<u8>, file: &str) -> Result<Config, Problems> {
    Ok(parse_staged(bytes, file)?.into_config())
}

/// [`parse_owned`] stopping before the servers are expanded: what `serve` builds its snapshot
/// from, one expanded server at a time. With 100,000 servers neither the 18 MB text nor the
/// expanded list (some 70 MB) then exists beside the served snapshot during a reload.
pub fn parse_staged(bytes: Vec<u8>, file: &str) -> Result<Staged, Problems> {
    let staged = check_bytes(&bytes, file)?;
    drop(bytes);
    Ok(staged)
}

fn check_bytes(bytes: &[u8], file: &str) -> Result<Staged, Problems> {
    match syntax::decode(bytes) {
        Ok(text) => check(text, file, false),
        Err(problem) => Err(Problems {
            file: file.to_owned(),
            list: vec![problem],
        }),
    }
}

/// A config that passed every rule, its warnings positioned: only the expansion of its servers'
/// templates is left, which cannot fail.
pub struct Staged {
    checked: validate::Checked,
    warnings: Vec<Problem>,
}

impl Staged {
    /// The whole [`Config`].
    pub fn into_config(self) -> Config {
        let (mut config, servers) = self.into_stream();
        config.servers = servers.collect();
        config
    }

    /// The [`Config`] without its servers, and the servers, expanded as they are taken.
    pub fn into_stream(self) -> (Config, ExpandedServers) {
        let (mut config, servers) = self.checked.stream();
        config.warnings = self.warnings;
        (config, servers)
    }
}

/// Parses and validates a config file's text. `file` names it in problems.
pub fn parse(text: &str, file: &str) -> Result<Config, Problems> {
    parse_with(text, file, false)
}

/// [`parse`] through the whole JSON tree even when no key repeats: what the usual path must give
/// exactly the same results as (the `config` fuzz target and the property tests compare them).
#[doc(hidden)]
pub fn parse_tree(text: &str, file: &str) -> Result<Config, Problems> {
    parse_with(text, file, true)
}

fn parse_with(text: &str, file: &str, tree: bool) -> Result<Config, Problems> {
    Ok(check(text, file, tree)?.into_config())
}

/// Every rule checked and every problem positioned; `tree` validates through the whole JSON tree.
fn check(text: &str, file: &str, tree: bool) -> Result<Staged, Problems> {
    let problems = |list| Problems {
        file: file.to_owned(),
        list,
    };
    // A byte-order mark (Windows editors write one) is not JSON; editors do not show it either.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let syntax_error = |e: serde_json::Error| {
        let what = e.to_string();
        let what = what.rsplit_once(" at line ").map_or(&*what, |(m, _)| m);
        let pos = syntax_error_pos(text, e.line(), e.column());
        let message = format!("invalid JSON: {what}; {}", syntax::fix(text, pos, what));
        problems(vec![Problem {
            pos: Some(pos),
            path: String::new(),
            message,
        }])
    };
    // A file that repeats a key is validated as a whole tree (which keeps the last of the repeated
    // values, as JSON readers do) and needs the full locator for the repeats; any other is
    // validated as it is parsed (`stream.rs`), and positions are looked up afterwards, only for the
    // paths a problem or warning names (the common, clean case never pays for it). On a file
    // that is not JSON the check's answer does not matter: both paths stop at the same syntax error.
    let duplicates = locate::has_duplicate_keys(text);
    let mut v = Validator::new();
    let mut all = None;
    let config = if duplicates || tree {
        let root: Value = serde_json::from_str(text).map_err(syntax_error)?;
        all = duplicates.then(|| locate::locate(text));
        for (path, pos) in all.iter().flat_map(|l| &l.duplicates) {
            v.problems.push(Noted {
                problem: Problem {
                    pos: Some(*pos),
                    path: path.clone(),
                    message:
                        "duplicate key; JSON keeps only one of them silently, so remove the other"
                            .into(),
                },
                anchor: Anchor::Fixed,
            });
        }
        v.config(root)
    } else {
        stream::parse(text, &mut v).map_err(syntax_error)?
    };
    let (mut problems_found, mut warnings) = (v.problems, v.warnings);
    if !problems_found.is_empty() || !warnings.is_empty() {
        let loc = match all {
            Some(loc) => loc,
            None => {
                let named = problems_found
                    .iter()
                    .chain(&warnings)
                    .map(|n| n.problem.path.clone());
                locate::locate_only(text, &named.collect())
            }
        };
        for n in problems_found.iter_mut().chain(warnings.iter_mut()) {
            n.problem.pos = match n.anchor {
                Anchor::Fixed => n.problem.pos,
                Anchor::Key => loc.key(&n.problem.path),
                Anchor::Value => loc.value(&n.problem.path),
            };
        }
    }
    let sorted = |mut list: Vec<Noted>| {
        list.sort_by_key(|n| n.problem.pos.map(|p| (p.line, p.column)));
        list.into_iter().map(|n| n.problem).collect::<Vec<_>>()
    };
    if problems_found.is_empty() {
        Ok(Staged {
            checked: config.expect("a config is checked whenever no problem was found"),
            warnings: sorted(warnings),
        })
    } else {
        Err(problems(sorted(problems_found)))
    }
}

/// The position of a `serde_json` syntax error, in the units every other problem uses: serde_json
/// counts the bytes read on the line (0 when none was), problems count characters from 1.
fn syntax_error_pos(text: &str, line: usize, byte_column: usize) -> Pos {
    let line_text = text.split('\n').nth(line.saturating_sub(1)).unwrap_or("");
    let mut end = byte_column.min(line_text.len());
    // A multi-byte character cut by the error belongs to it: count it.
    while !line_text.is_char_boundary(end) {
        end += 1;
    }
    Pos {
        line: line.max(1),
        column: line_text[..end].chars().count().max(1),
    }
}

#[cfg(test)]
mod tests;
