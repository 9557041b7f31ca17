//! A locator over JSON text: where each key and value of a config file starts (line, column), and
//! which object keys appear twice. `serde_json::Value` forgets both, and every config problem must
//! name its line and column, so this walks the text once, after `serde_json` has accepted its syntax.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Bound;

use rustc_hash::FxHashSet;

/// A 1-based line and column (columns count characters, as editors do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// Positions of every key and value, by JSON path (see [`child`] and [`index`] for the spelling).
#[derive(Debug, Default)]
pub struct Locations {
    keys: HashMap<String, Pos>,
    values: HashMap<String, Pos>,
    /// `(path of the repeated key, position of its second occurrence)`.
    pub duplicates: Vec<(String, Pos)>,
    /// Bytes read to count columns: at most the text's length, however long its lines are.
    pub scanned: usize,
}

impl Locations {
    /// Where the key of `path` starts, else where its value starts.
    pub fn key(&self, path: &str) -> Option<Pos> {
        self.keys
            .get(path)
            .or_else(|| self.values.get(path))
            .copied()
    }

    /// Where the value at `path` starts, else where its key starts.
    pub fn value(&self, path: &str) -> Option<Pos> {
        self.values
            .get(path)
            .or_else(|| self.keys.get(path))
            .copied()
    }
}

/// The path of member `key` of the object at `parent`: `servers.atlassian.mode`; keys that are not
/// plain identifiers are quoted: `servers["a.b"].mode`.
pub fn child(parent: &str, key: &str) -> String {
    let mut path = String::with_capacity(parent.len() + 1 + key.len());
    path.push_str(parent);
    push_child(&mut path, key);
    path
}

/// Turns `path` (an object's) into the path of its member `key`, in place (see [`child`]).
fn push_child(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !plain {
        use std::fmt::Write;
        let _ = write!(path, "[{}]", serde_json::Value::from(key));
        return;
    }
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

/// The path of element `i` of the array at `parent`: `resource_paths[1]`.
pub fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// Whether an object in `text` (valid JSON) repeats a key. Much cheaper than [`locate`]: no
/// positions, no paths, keys compared as written unless they contain an escape.
pub fn has_duplicate_keys(text: &str) -> bool {
    let bytes = text.as_bytes();
    // Whether each open container is an object; the keys of the open objects, one set per depth
    // of objects (kept when an object closes, cleared when the next one at that depth opens).
    let mut stack: Vec<bool> = Vec::new();
    let mut sets: Vec<FxHashSet<Cow<'_, str>>> = Vec::new();
    let mut objects = 0;
    let mut i = 0;
    // After a key's closing quote the next ':' makes it a key; track whether a string is a key.
    while i < bytes.len() {
        match bytes[i] {
            b'{' => {
                stack.push(true);
                objects += 1;
                match sets.get_mut(objects - 1) {
                    Some(set) => set.clear(),
                    None => sets.push(FxHashSet::default()),
                }
            }
            b'[' => stack.push(false),
            b'}' | b']' => objects -= usize::from(stack.pop() == Some(true)),
            b'"' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let raw = &text[start..=i.min(text.len() - 1)];
                let mut j = i + 1;
                while j < bytes.len() && matches!(bytes[j], b' ' | b'\t' | b'\r' | b'\n') {
                    j += 1;
                }
                if bytes.get(j) == Some(&b':') {
                    let keys = match stack.last() {
                        Some(true) => sets.get_mut(objects - 1),
                        _ => None,
                    };
                    if let Some(keys) = keys {
                        let key = if raw.contains('\\') {
                            Cow::Owned(serde_json::from_str::<String>(raw).unwrap_or_default())
                        } else {
                            Cow::Borrowed(&raw[1..raw.len() - 1])
                        };
                        if !keys.insert(key) {
                            return true;
                        }
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// Walks `text`, which must already be valid JSON (checked by `serde_json`), recording every
/// key's and value's position and every repeated key.
pub fn locate(text: &str) -> Locations {
    walk(text, None)
}

/// The same, recording only the positions of `wanted` paths (no duplicate detection): cheap
/// enough to run on a 100,000-server file for the few paths a warning names.
pub fn locate_only(text: &str, wanted: &HashSet<String>) -> Locations {
    walk(text, Some(wanted))
}

fn walk(text: &str, wanted: Option<&HashSet<String>>) -> Locations {
    let mut walker = Walker {
        sorted: wanted.map(|w| w.iter().map(String::as_str).collect()),
        text,
        bytes: text.as_bytes(),
        at: 0,
        line: 1,
        line_start: 0,
        counted_to: 0,
        counted: 0,
        path: String::new(),
        wanted,
        out: Locations::default(),
    };
    walker.skip_ws();
    walker.value();
    walker.out
}

struct Walker<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    line: usize,
    line_start: usize,
    /// Characters of the current line counted so far: `counted` characters lie between
    /// `line_start` and byte `counted_to`. Positions are asked for in increasing order, so each
    /// byte is counted once and a file on one line (`jq -c`, Helm's `toJson`) stays linear.
    counted_to: usize,
    counted: usize,
    /// The path of the node being walked, spelled as [`child`] and [`index`] spell it.
    path: String,
    /// Record only these paths (and skip duplicate detection); `None`: record everything.
    wanted: Option<&'a HashSet<String>>,
    /// The same paths in order, to tell whether a node can hold one of them.
    sorted: Option<BTreeSet<&'a str>>,
    out: Locations,
}

impl<'a> Walker<'a> {
    fn pos(&mut self) -> Pos {
        self.pos_at(self.at)
    }

    /// The position of byte `at` of the current line, at or after every position asked before.
    fn pos_at(&mut self, at: usize) -> Pos {
        if self.counted_to < self.line_start || at < self.counted_to {
            (self.counted_to, self.counted) = (self.line_start, 0);
        }
        self.out.scanned += at - self.counted_to;
        // Characters are the bytes that do not continue a UTF-8 sequence.
        self.counted += self.bytes[self.counted_to..at]
            .iter()
            .filter(|b| (**b & 0xC0) != 0x80)
            .count();
        self.counted_to = at;
        Pos {
            line: self.line,
            column: self.counted + 1,
        }
    }

    fn recording(&self) -> bool {
        self.wanted.is_none_or(|w| w.contains(&self.path))
    }

    /// Whether the node being walked may be or hold a wanted path: some wanted path starts with
    /// its path (every path below a node starts with the node's path, see [`child`]). The paths
    /// that start with it are the ones sorted right at it.
    fn may_hold_wanted(&self) -> bool {
        self.sorted.as_ref().is_none_or(|sorted| {
            sorted
                .range::<str, _>((Bound::Included(self.path.as_str()), Bound::Unbounded))
                .next()
                .is_some_and(|w| w.starts_with(self.path.as_str()))
        })
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b'\n' => {
                    self.at += 1;
                    self.line += 1;
                    self.line_start = self.at;
                }
                b' ' | b'\t' | b'\r' => self.at += 1,
                _ => break,
            }
        }
    }

    fn value(&mut self) {
        if !self.may_hold_wanted() {
            self.skip_value();
            return;
        }
        if self.recording() {
            let pos = self.pos();
            self.out.values.entry(self.path.clone()).or_insert(pos);
        }
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            _ => self.scalar(),
        }
    }

    /// Consumes a string, number, `true`, `false` or `null` (nothing at the end of the text).
    fn scalar(&mut self) {
        match self.peek() {
            Some(b'"') => {
                self.string();
            }
            Some(_) => {
                while let Some(b) = self.peek() {
                    if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n') {
                        break;
                    }
                    self.at += 1;
                }
            }
            None => {}
        }
    }

    /// Moves past the value at `at` without recording anything, counting its lines (valid JSON
    /// has line breaks only between tokens, never inside a string).
    fn skip_value(&mut self) {
        if !matches!(self.peek(), Some(b'{' | b'[')) {
            self.scalar();
            return;
        }
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'"' => {
                    self.string();
                    continue;
                }
                b'\n' => {
                    self.line += 1;
                    self.line_start = self.at + 1;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        self.at += 1;
                        return;
                    }
                }
                _ => {}
            }
            self.at += 1;
        }
    }

    fn object(&mut self) {
        self.at += 1; // '{'
        let mut seen = HashSet::new();
        let parent_len = self.path.len();
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b'"') => {}
                Some(b',') => {
                    self.at += 1;
                    continue;
                }
                _ => {
                    self.at += 1; // '}' (or the end of a text serde_json accepted)
                    return;
                }
            }
            let key_start = self.at;
            let raw = self.string();
            let key = if raw.contains('\\') {
                Cow::Owned(serde_json::from_str::<String>(raw).unwrap_or_default())
            } else {
                Cow::Borrowed(&raw[1..raw.len().saturating_sub(1).max(1)])
            };
            push_child(&mut self.path, &key);
            if self.wanted.is_none() {
                let key_pos = self.pos_at(key_start);
                let member = self.path.clone();
                if seen.insert(key) {
                    self.out.keys.entry(member).or_insert(key_pos);
                } else {
                    self.out.duplicates.push((member, key_pos));
                }
            } else if self.may_hold_wanted() && self.recording() {
                let key_pos = self.pos_at(key_start);
                self.out.keys.entry(self.path.clone()).or_insert(key_pos);
            }
            self.skip_ws();
            self.at += 1; // ':'
            self.skip_ws();
            self.value();
            self.path.truncate(parent_len);
        }
    }

    fn array(&mut self) {
        self.at += 1; // '['
        let parent_len = self.path.len();
        let mut i = 0;
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b']') | None => {
                    self.at += 1;
                    return;
                }
                Some(b',') => {
                    self.at += 1;
                    continue;
                }
                Some(_) => {
                    use std::fmt::Write;
                    let _ = write!(self.path, "[{i}]");
                    self.value();
                    self.path.truncate(parent_len);
                    i += 1;
                }
            }
        }
    }

    /// Consumes a string literal and returns it as written, quotes included.
    fn string(&mut self) -> &'a str {
        let start = self.at;
        self.at += 1; // opening quote
        while let Some(b) = self.peek() {
            self.at += 1;
            match b {
                b'\\' => self.at += 1,
                b'"' => break,
                _ => {}
            }
        }
        &self.text[start..self.at.min(self.text.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_values_and_duplicates() {
        let text = "{\n  \"a\": 1,\n  \"servers\": {\"x.y\": {\"mode\": \"none\", \"mode\": [1, \"é\", 3]}}\n}";
        let loc = locate(text);
        assert_eq!(loc.key("a"), Some(Pos { line: 2, column: 3 }));
        assert_eq!(loc.value("a"), Some(Pos { line: 2, column: 8 }));
        assert_eq!(
            loc.key("servers[\"x.y\"].mode"),
            Some(Pos {
                line: 3,
                column: 23
            })
        );
        assert_eq!(loc.duplicates.len(), 1);
        assert_eq!(loc.duplicates[0].0, "servers[\"x.y\"].mode");
        assert_eq!(
            loc.duplicates[0].1,
            Pos {
                line: 3,
                column: 39
            }
        );
    }

    #[test]
    fn duplicate_keys_are_found_cheaply() {
        assert!(!has_duplicate_keys(
            r#"{"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}], "c": "{\"a\":1,\"a\":2}"}"#
        ));
        assert!(has_duplicate_keys(r#"{"a": 1, "b": 2, "a": 3}"#));
        assert!(has_duplicate_keys(r#"{"x": [{"k": 1, "k" : 2}]}"#));
        assert!(has_duplicate_keys(r#"{"a\u0062": 1, "ab": 2}"#));
        assert!(!has_duplicate_keys(r#"{"a\"": 1, "a": 2}"#));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let loc = locate("{\"é\": 1, \"b\": 2}");
        assert_eq!(
            loc.key("b"),
            Some(Pos {
                line: 1,
                column: 10
            })
        );
    }

    /// A minified file is one line: counting each position's column from the line's start made
    /// the lookup quadratic (20,000 servers: 2.9 s to check instead of 0.28 s indented).
    #[test]
    fn columns_are_counted_once_on_a_single_line_file() {
        let servers: Vec<String> = (0..3000)
            .map(|i| format!(r#""s{i}":{{"mode":"delegate","issuer":"https://é{i}.example"}}"#))
            .collect();
        let text = format!(
            r#"{{"public_url":"https://gw","servers":{{{}}}}}"#,
            servers.join(",")
        );
        let all = locate(&text);
        assert!(
            all.scanned <= text.len(),
            "{} > {}",
            all.scanned,
            text.len()
        );
        let last = all.key("servers.s2999.issuer").expect("found");
        assert_eq!(last.line, 1);
        let byte = text.find(r#""issuer":"https://é2999"#).expect("in text");
        assert_eq!(last.column, text[..byte].chars().count() + 1);
        let wanted: HashSet<String> = ["servers.s2999.mode".to_owned()].into();
        let some = locate_only(&text, &wanted);
        assert!(
            some.scanned <= text.len(),
            "{} > {}",
            some.scanned,
            text.len()
        );
        assert_eq!(
            some.key("servers.s2999.mode").map(|p| p.column),
            all.key("servers.s2999.mode").map(|p| p.column)
        );
    }

    /// Looking up only some paths skips the subtrees that hold none of them: every position it
    /// finds is the one the full walk finds, on one line or many.
    #[test]
    fn positions_of_some_paths_are_those_of_the_full_walk() {
        let indented = "{\n  \"a\": [1, {\"b\": \"x\\\"]}\"}, [2]],\n  \"s\": {\n    \"s1\": {\"m\": 1},\n    \"s10\": {\"m\": [\n      true]},\n    \"a.b\": {\"é\": null}\n  },\n  \"z\": \"é\"\n}";
        for text in [indented.to_owned(), indented.replace('\n', "")] {
            let all = locate(&text);
            let paths: Vec<&String> = all.keys.keys().chain(all.values.keys()).collect();
            assert!(paths.len() > 10, "{paths:?}");
            for (i, path) in paths.iter().enumerate() {
                // Each path alone, and with the one after it (which may lie in a skipped subtree).
                let next = paths[(i + 1) % paths.len()];
                for wanted in [vec![*path], vec![*path, next]] {
                    let wanted: HashSet<String> = wanted.into_iter().cloned().collect();
                    let some = locate_only(&text, &wanted);
                    for w in &wanted {
                        assert_eq!(some.key(w), all.key(w), "key {w} in {text}");
                        assert_eq!(some.value(w), all.value(w), "value {w} in {text}");
                    }
                }
            }
        }
    }

    #[test]
    fn escaped_keys_are_decoded() {
        let loc = locate(r#"{"a\"b": {"c": 1}}"#);
        assert!(loc.key(&child(&child("", "a\"b"), "c")).is_some());
    }
}
