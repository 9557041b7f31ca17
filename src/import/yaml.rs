//! A small YAML loader for gateway configs: saphyr-parser's events (every one with its position)
//! built into a tree whose every node knows its line and column, read the way LiteLLM reads its
//! config (PyYAML `safe_load`: YAML 1.1 booleans and nulls for plain scalars, `<<` merge keys,
//! one document). Bounded: nesting depth and the number of nodes (aliases included, so an alias
//! bomb is an error, not an out-of-memory) are capped, and the tree is built without recursion.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::config::Pos;

/// Nesting deeper than this is an error (no config needs it; it bounds every walk of the tree).
const MAX_DEPTH: usize = 64;
/// Nodes in the whole document, every alias expansion counted.
const MAX_NODES: usize = 200_000;

/// One node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

/// What a node holds, resolved as PyYAML's safe loader would for the types a config uses.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Any other scalar, as written (numbers too); `plain` when it was unquoted.
    Str {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    /// In file order; keys are unique (a duplicate is a load error).
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The text of a scalar that is not null or a boolean.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str { text, .. } => Some(text),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The entry `key` of a mapping (its key node and value).
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.key_text() == Some(key))
            .map(|(k, v)| (k, v))
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// A mapping key as text (scalar keys only; `true`, `null` and numbers as written).
    pub fn key_text(&self) -> Option<&str> {
        match &self.value {
            Value::Str { text, .. } => Some(text),
            _ => None,
        }
    }

    /// What kind of node this is, for messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Str { .. } => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// Why a text is not a loadable YAML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub pos: Pos,
    pub message: String,
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line().max(1),
        column: span.start.col() + 1,
    }
}

/// A collection being built.
enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        pairs: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

/// Loads the single document of `text`; `Ok(None)` when it holds none (empty, or only comments).
pub fn load(text: &str) -> Result<Option<Node>, LoadError> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut documents = 0usize;
    let mut nodes = 0usize;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| LoadError {
            pos: Pos {
                line: e.marker().line().max(1),
                column: e.marker().col() + 1,
            },
            message: format!("invalid YAML: {}", e.info()),
        })?;
        let pos = pos_of(&span);
        let done = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(LoadError {
                        pos,
                        message: "a second YAML document (after ---): LiteLLM reads exactly one; remove it or split the file".into(),
                    });
                }
                continue;
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => continue,
            Event::Alias(id) => {
                let Some(node) = anchors.get(&id) else {
                    return Err(LoadError {
                        pos,
                        message: "an alias (*name) whose anchor (&name) is not defined before it; define the anchor first".into(),
                    });
                };
                nodes += count(node);
                if nodes > MAX_NODES {
                    return Err(too_big(pos));
                }
                Node {
                    pos,
                    value: node.value.clone(),
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                nodes += 1;
                let forced_str = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let value = if style == ScalarStyle::Plain && !forced_str {
                    resolve_plain(&text)
                } else {
                    Value::Str {
                        text: text.into_owned(),
                        plain: false,
                    }
                };
                let node = Node { pos, value };
                if anchor != 0 {
                    anchors.insert(anchor, node.clone());
                }
                node
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                nodes += 1;
                if stack.len() >= MAX_DEPTH {
                    return Err(LoadError {
                        pos,
                        message: format!(
                            "nested deeper than {MAX_DEPTH} levels; no gateway config needs that, so the file is probably not one"
                        ),
                    });
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq {
                        pos,
                        anchor,
                        items: Vec::new(),
                    }
                } else {
                    Frame::Map {
                        pos,
                        anchor,
                        pairs: Vec::new(),
                        key: None,
                    }
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match stack.pop() {
                    Some(Frame::Seq { pos, anchor, items }) => (
                        Node {
                            pos,
                            value: Value::Seq(items),
                        },
                        anchor,
                    ),
                    Some(Frame::Map {
                        pos, anchor, pairs, ..
                    }) => (
                        Node {
                            pos,
                            value: Value::Map(merge(pairs)?),
                        },
                        anchor,
                    ),
                    None => continue,
                };
                if anchor != 0 {
                    anchors.insert(anchor, node.clone());
                }
                node
            }
        };
        if nodes > MAX_NODES {
            return Err(too_big(pos));
        }
        match stack.last_mut() {
            None => root = Some(done),
            Some(Frame::Seq { items, .. }) => items.push(done),
            Some(Frame::Map { pairs, key, .. }) => match key.take() {
                None => {
                    if matches!(done.value, Value::Seq(_) | Value::Map(_)) {
                        return Err(LoadError {
                            pos: done.pos,
                            message: "a mapping key that is a list or a mapping; use a plain name as the key".into(),
                        });
                    }
                    *key = Some(keyed(done));
                }
                Some(k) => pairs.push((k, done)),
            },
        }
    }
    Ok(root)
}

/// A scalar key as text: `true`/`null` keys keep their spelling (a key is a name, not a value).
fn keyed(node: Node) -> Node {
    let text = match &node.value {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Str { .. } | Value::Seq(_) | Value::Map(_) => return node,
    };
    Node {
        pos: node.pos,
        value: Value::Str { text, plain: true },
    }
}

fn too_big(pos: Pos) -> LoadError {
    LoadError {
        pos,
        message: format!(
            "more than {MAX_NODES} nodes once aliases are expanded; the file is not a gateway config (or an alias bomb)"
        ),
    }
}

/// Nodes in a tree, without recursion.
fn count(node: &Node) -> usize {
    let mut n = 0;
    let mut todo = vec![node];
    while let Some(node) = todo.pop() {
        n += 1;
        match &node.value {
            Value::Seq(items) => todo.extend(items),
            Value::Map(pairs) => {
                for (k, v) in pairs {
                    todo.push(k);
                    todo.push(v);
                }
            }
            _ => {}
        }
    }
    n
}

/// PyYAML's resolution of a plain scalar (YAML 1.1): its nulls and booleans; anything else stays
/// text.
fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Value::Bool(true),
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
            Value::Bool(false)
        }
        _ => Value::Str {
            text: text.to_owned(),
            plain: true,
        },
    }
}

/// Applies `<<` merge keys (keys written in the mapping win, then earlier merged mappings) and
/// rejects a key written twice (PyYAML would keep the last silently).
fn merge(pairs: Vec<(Node, Node)>) -> Result<Vec<(Node, Node)>, LoadError> {
    let mut own: Vec<(Node, Node)> = Vec::with_capacity(pairs.len());
    let mut merged: Vec<(Node, Node)> = Vec::new();
    for (k, v) in pairs {
        let is_merge = matches!(&k.value, Value::Str { text, plain: true } if text == "<<");
        if is_merge {
            let sources: Vec<Node> = match v.value {
                Value::Map(_) => vec![v],
                Value::Seq(items) => items,
                _ => {
                    return Err(LoadError {
                        pos: v.pos,
                        message: "a merge key (<<) must be followed by a mapping or a list of mappings (*anchor)".into(),
                    });
                }
            };
            for source in sources {
                let Value::Map(from) = source.value else {
                    return Err(LoadError {
                        pos: source.pos,
                        message: "a merge key (<<) list may hold only mappings".into(),
                    });
                };
                for (mk, mv) in from {
                    if !merged.iter().any(|(o, _)| o.key_text() == mk.key_text()) {
                        merged.push((mk, mv));
                    }
                }
            }
            continue;
        }
        if let Some((first, _)) = own.iter().find(|(o, _)| o.key_text() == k.key_text()) {
            return Err(LoadError {
                pos: k.pos,
                message: format!(
                    "duplicate key \"{}\" (first at line {}); LiteLLM keeps only the last one silently, so remove the other",
                    k.key_text().unwrap_or(""),
                    first.pos.line
                ),
            });
        }
        own.push((k, v));
    }
    for (mk, mv) in merged {
        if !own.iter().any(|(o, _)| o.key_text() == mk.key_text()) {
            own.push((mk, mv));
        }
    }
    Ok(own)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_ok(text: &str) -> Node {
        load(text).expect("loads").expect("a document")
    }

    #[test]
    fn scalars_resolve_as_pyyaml_does() {
        let n = load_ok("a: yes\nb: Off\nc: ~\nd: 'yes'\ne: 8080\nf:\ng: !!str true\n");
        assert_eq!(n.get("a").unwrap().value, Value::Bool(true));
        assert_eq!(n.get("b").unwrap().value, Value::Bool(false));
        assert_eq!(n.get("c").unwrap().value, Value::Null);
        assert_eq!(n.get("d").unwrap().as_str(), Some("yes"));
        assert_eq!(n.get("e").unwrap().as_str(), Some("8080"));
        assert_eq!(n.get("f").unwrap().value, Value::Null);
        assert_eq!(n.get("g").unwrap().as_str(), Some("true"));
    }

    #[test]
    fn positions_are_one_based() {
        let n = load_ok("top:\n  inner: x\n");
        let (k, v) = n.get("top").unwrap().entry("inner").unwrap();
        assert_eq!((k.pos.line, k.pos.column), (2, 3));
        assert_eq!((v.pos.line, v.pos.column), (2, 10));
    }

    #[test]
    fn merge_keys_and_aliases() {
        let n = load_ok("base: &b\n  auth_type: oauth2\n  url: u\ns:\n  <<: *b\n  url: v\n");
        let s = n.get("s").unwrap();
        assert_eq!(s.get("auth_type").unwrap().as_str(), Some("oauth2"));
        assert_eq!(s.get("url").unwrap().as_str(), Some("v"));
    }

    #[test]
    fn duplicates_several_documents_and_bad_syntax_are_errors() {
        let e = load("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.pos.line, 3);
        assert!(e.message.contains("first at line 1"), "{}", e.message);
        assert_eq!(load("a: 1\n---\nb: 2\n").unwrap_err().pos.line, 2);
        let e = load("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.message.starts_with("invalid YAML"), "{}", e.message);
        assert_eq!(load("").unwrap(), None);
        assert_eq!(load("# only a comment\n").unwrap(), None);
    }

    #[test]
    fn alias_bombs_and_deep_nesting_are_bounded() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let prev = (b'a' + i - 1) as char;
            let this = (b'a' + i) as char;
            bomb.push_str(&format!(
                "{this}: &{this} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        assert!(load(&bomb).unwrap_err().message.contains("nodes"));
        // Flow collections: the parser's own limit; block mappings: this loader's.
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(load(&deep).is_err());
        let block: String = (0..100)
            .map(|i| format!("{}a:\n", "  ".repeat(i)))
            .collect();
        assert!(load(&block).unwrap_err().message.contains("nested deeper"));
    }
}
