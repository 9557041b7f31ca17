//! The usual way a config is parsed: the JSON is read straight into the validator, one server at a
//! time, so no tree of the whole file ever exists (with 100,000 servers that tree is larger than
//! the file itself, and a reload builds it while the served snapshot is still alive). Each server's
//! object is parsed into a small `Value`, validated, and dropped before the next is read.
//!
//! What is accepted, refused and reported is exactly what validating the whole tree gives
//! (`Validator::config`, still used for files that repeat a key, where a tree keeps only the last
//! value): the top-level values other than `servers` are kept as a small tree and validated after
//! the document, and the servers' problems, collected meanwhile by a validator of their own, are
//! put in where validating the tree would have found them. Every value is parsed by `serde_json`
//! as a `Value` would be, so a syntax error is the same error at the same place.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::server::RawServer;
use super::validate::{Checked, Validator};

/// Parses and validates `text` (no object in it repeats a key) into `v`: `Err` is the JSON syntax
/// error, `Ok(None)` a config with problems (in `v`).
pub(super) fn parse(text: &str, v: &mut Validator) -> Result<Option<Checked>, serde_json::Error> {
    let mut servers = Servers {
        v: Validator::new(),
        raw: Vec::new(),
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let doc = Document {
        servers: &mut servers,
    }
    .deserialize(&mut de)?;
    de.end()?;
    let Some((top, seen)) = doc else {
        v.not_an_object();
        return Ok(None);
    };
    let top = v.top_level(&top);
    match seen {
        Seen::Missing => v.servers_missing(),
        Seen::Object { empty } => {
            if empty {
                v.no_servers();
            }
            v.absorb(servers.v);
        }
        Seen::Other => v.servers_not_an_object(),
    }
    Ok(v.finish(top, servers.raw))
}

/// The servers validated so far, and the problems and warnings they had.
struct Servers {
    v: Validator,
    raw: Vec<RawServer>,
}

/// What the document held at `servers`.
enum Seen {
    Missing,
    Object { empty: bool },
    Other,
}

/// The whole document: `None` when it is not an object, else the top-level members other than
/// `servers` and what `servers` was.
struct Document<'a> {
    servers: &'a mut Servers,
}

impl<'de> DeserializeSeed<'de> for Document<'_> {
    type Value = Option<(Map<String, Value>, Seen)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Consumes the elements of an array as `Value`s (not as `IgnoredAny`, which skips numbers
/// without the range check parsing does: `1e999` must stay the same error), keeping nothing.
fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<Value>()?.is_some() {}
    Ok(())
}

/// Implements every [`Visitor`] method `serde_json` calls for a value that is not an object, each
/// returning `$other` (the value is of no use: only that it is not an object).
macro_rules! not_an_object {
    ($other:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            skip_seq(seq)?;
            Ok($other)
        }
    };
}

impl<'de> Visitor<'de> for Document<'_> {
    type Value = Option<(Map<String, Value>, Seen)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    not_an_object!(None);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut top = Map::new();
        let mut seen = Seen::Missing;
        while let Some(key) = map.next_key::<String>()? {
            if key == "servers" {
                seen = map.next_value_seed(ServerMap {
                    servers: &mut *self.servers,
                })?;
            } else {
                let value = map.next_value::<Value>()?;
                top.insert(key, value);
            }
        }
        Ok(Some((top, seen)))
    }
}

/// The `servers` object: each member validated as soon as it is parsed.
struct ServerMap<'a> {
    servers: &'a mut Servers,
}

impl<'de> DeserializeSeed<'de> for ServerMap<'_> {
    type Value = Seen;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Seen, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ServerMap<'_> {
    type Value = Seen;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    not_an_object!(Seen::Other);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Seen, A::Error> {
        let mut empty = true;
        while let Some(name) = map.next_key::<String>()? {
            empty = false;
            let value = map.next_value::<Value>()?;
            if let Some(server) = self.servers.v.server(&name, &value) {
                self.servers.raw.push(server);
            }
        }
        Ok(Seen::Object { empty })
    }
}
