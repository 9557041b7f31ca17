//! What to tell someone whose file is not JSON signpost can read: the encoding (UTF-16, UTF-32,
//! Latin-1 saves) and the usual syntax slips (comments, trailing commas, single quotes, unquoted
//! keys, a YAML file), each with its line and column and the fix.

use super::{Pos, Problem};

/// The text of `bytes` when they are UTF-8 (a UTF-8 byte-order mark removed), else the problem.
pub fn decode(bytes: &[u8]) -> Result<&str, Problem> {
    let at_start = |message: String| Problem {
        pos: Some(Pos { line: 1, column: 1 }),
        path: String::new(),
        message,
    };
    let bom = match bytes {
        [0xFF, 0xFE, 0, 0, ..] => Some("UTF-32 (little-endian, with a byte-order mark)"),
        [0, 0, 0xFE, 0xFF, ..] => Some("UTF-32 (big-endian, with a byte-order mark)"),
        [0xFF, 0xFE, ..] => Some("UTF-16 (little-endian, with a byte-order mark)"),
        [0xFE, 0xFF, ..] => Some("UTF-16 (big-endian, with a byte-order mark)"),
        [b, 0, ..] if *b != 0 => Some("UTF-16 (little-endian)"),
        [0, b, ..] if *b != 0 => Some("UTF-16 (big-endian)"),
        _ => None,
    };
    if let Some(encoding) = bom {
        return Err(at_start(format!(
            "the file is {encoding}, not UTF-8; save it as UTF-8 (in most editors: \"Save with encoding\" → UTF-8; or `iconv -f UTF-16 -t UTF-8`)"
        )));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            // `good` is valid UTF-8 by construction.
            let good = std::str::from_utf8(good).unwrap_or_default();
            let line = good.matches('\n').count() + 1;
            let line_start = good.rfind('\n').map_or(0, |i| i + 1);
            let column = good[line_start..].chars().count() + 1;
            let byte = bytes[e.valid_up_to()];
            let guess = if byte >= 0xA0 || (0x80..0xA0).contains(&byte) {
                " (saved as Latin-1 or Windows-1252?)"
            } else {
                ""
            };
            Err(Problem {
                pos: Some(Pos { line, column }),
                path: String::new(),
                message: format!(
                    "byte 0x{byte:02X} is not UTF-8{guess}; save the file as UTF-8 (or `iconv -f WINDOWS-1252 -t UTF-8`)"
                ),
            })
        }
    }
}

/// The fix for a `serde_json` syntax error at `pos` (1-based line, column in characters) of `text`.
pub fn fix(text: &str, pos: Pos, message: &str) -> &'static str {
    if looks_like_yaml(text) {
        return "this looks like YAML, but signpost's config is JSON: convert it (e.g. `yq -o json`) or write it as JSON";
    }
    let line = text
        .split('\n')
        .nth(pos.line.saturating_sub(1))
        .unwrap_or("");
    let at: String = line
        .chars()
        .skip(pos.column.saturating_sub(1))
        .take(2)
        .collect();
    let before = line
        .chars()
        .take(pos.column.saturating_sub(1))
        .collect::<String>();
    let prev = previous_token(text, pos.line, &before);
    if at.starts_with("//") || at.starts_with("/*") || at.starts_with('#') {
        return "JSON has no comments; remove it";
    }
    if message.contains("trailing comma")
        || (prev == Some(',') && matches!(at.chars().next(), Some('}' | ']')))
    {
        return "remove the trailing comma";
    }
    if at.starts_with('\'') {
        return "JSON strings use double quotes; write \"…\" instead of '…'";
    }
    if message.contains("key must be a string") {
        return "put the key in double quotes: \"key\": value";
    }
    if message.contains("control character") {
        return "a string cannot span lines or hold tabs; write \\n or \\t inside it, or join the lines";
    }
    if message.contains("EOF while parsing") {
        return "the file ends too early: a closing }, ] or \" is missing (or the file was cut off)";
    }
    if message.contains("expected `,` or `}`") || message.contains("expected `,` or `]`") {
        return "a comma is missing before this";
    }
    if message.contains("trailing characters") {
        return "there is more after the end of the JSON object; remove it (or wrap everything in one object)";
    }
    if message.contains("expected `:`") {
        return "write a colon between the key and its value: \"key\": value";
    }
    if message.contains("expected value") || message.contains("expected ident") {
        if at.starts_with(|c: char| c.is_alphabetic()) {
            return "a string needs double quotes (and true, false, null are lower case)";
        }
        return "a value is missing here: a \"string\", a number, true, false, null, an {object} or a [list]";
    }
    if message.contains("invalid escape") {
        return "a backslash starts an escape (\\\", \\\\, \\n, \\uXXXX); write \\\\ for a backslash";
    }
    "check the JSON syntax at this position (a JSON validator shows the same spot)"
}

/// The last non-blank character before the error: on its line, else on the lines above.
fn previous_token(text: &str, line: usize, before: &str) -> Option<char> {
    if let Some(c) = before.chars().rev().find(|c| !c.is_whitespace()) {
        return Some(c);
    }
    text.split('\n')
        .take(line.saturating_sub(1))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .find_map(|l| l.chars().rev().find(|c| !c.is_whitespace()))
}

/// A file whose first meaningful line is `---`, or `key: value` without quotes or braces.
fn looks_like_yaml(text: &str) -> bool {
    let Some(first) = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
    else {
        return false;
    };
    if first == "---" || first.starts_with("- ") {
        return true;
    }
    let Some((key, _)) = first.split_once(':') else {
        return false;
    };
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize, column: usize) -> Pos {
        Pos { line, column }
    }

    #[test]
    fn encodings_are_named_with_the_fix() {
        let utf16: Vec<u8> = "\u{feff}{}"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        let p = decode(&utf16).unwrap_err();
        assert!(
            p.message.contains("UTF-16") && p.message.contains("save it as UTF-8"),
            "{}",
            p.message
        );
        let no_bom: Vec<u8> = "{}".encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
        assert!(
            decode(&no_bom)
                .unwrap_err()
                .message
                .contains("UTF-16 (big-endian)")
        );
        let latin1 = b"{\n  \"resource_name\": \"caf\xE9\"\n}";
        let p = decode(latin1).unwrap_err();
        assert_eq!(p.pos, Some(at(2, 24)));
        assert!(
            p.message.contains("0xE9") && p.message.contains("save the file as UTF-8"),
            "{}",
            p.message
        );
        assert_eq!(decode(b"\xEF\xBB\xBF{}"), Ok("{}"));
    }

    #[test]
    fn syntax_slips_get_their_fix() {
        assert_eq!(
            fix("{\n  // note\n}", at(2, 3), "expected value"),
            "JSON has no comments; remove it"
        );
        assert_eq!(
            fix("{\"a\": 1,\n}", at(2, 1), "trailing comma"),
            "remove the trailing comma"
        );
        assert!(
            fix(
                "public_url: https://x\nservers: {}",
                at(1, 1),
                "expected value"
            )
            .contains("YAML")
        );
        assert!(fix("{'a': 1}", at(1, 2), "key must be a string").contains("double quotes"));
    }
}
