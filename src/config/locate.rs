//! A locator over JSON text: where each key and value of a config file starts (line, column), and
//! which object keys appear twice. `serde_json::Value` forgets both, and every config problem must
//! name its line and column, so this walks the text once, after `serde_json` has accepted its syntax.

use std::collections::{HashMap, HashSet};

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
    let plain = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{}]", serde_json::Value::from(key)),
    }
}

/// The path of element `i` of the array at `parent`: `resource_paths[1]`.
pub fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// Walks `text`, which must already be valid JSON (checked by `serde_json`).
pub fn locate(text: &str) -> Locations {
    let mut walker = Walker {
        text,
        bytes: text.as_bytes(),
        at: 0,
        line: 1,
        line_start: 0,
        out: Locations::default(),
    };
    walker.skip_ws();
    walker.value(String::new());
    walker.out
}

struct Walker<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    line: usize,
    line_start: usize,
    out: Locations,
}

impl Walker<'_> {
    fn pos(&self) -> Pos {
        let column = self.text[self.line_start..self.at].chars().count() + 1;
        Pos {
            line: self.line,
            column,
        }
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

    fn value(&mut self, path: String) {
        let pos = self.pos();
        self.out.values.entry(path.clone()).or_insert(pos);
        match self.peek() {
            Some(b'{') => self.object(path),
            Some(b'[') => self.array(path),
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

    fn object(&mut self, path: String) {
        self.at += 1; // '{'
        let mut seen = HashSet::new();
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
            let key_pos = self.pos();
            let key = self.string();
            let member = child(&path, &key);
            if seen.insert(key) {
                self.out.keys.entry(member.clone()).or_insert(key_pos);
            } else {
                self.out.duplicates.push((member.clone(), key_pos));
            }
            self.skip_ws();
            self.at += 1; // ':'
            self.skip_ws();
            self.value(member);
        }
    }

    fn array(&mut self, path: String) {
        self.at += 1; // '['
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
                    self.value(index(&path, i));
                    i += 1;
                }
            }
        }
    }

    /// Consumes a string literal and returns its decoded value.
    fn string(&mut self) -> String {
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
        serde_json::from_str(&self.text[start..self.at.min(self.text.len())]).unwrap_or_default()
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

    #[test]
    fn escaped_keys_are_decoded() {
        let loc = locate(r#"{"a\"b": {"c": 1}}"#);
        assert!(loc.key(&child(&child("", "a\"b"), "c")).is_some());
    }
}
