//! Text from the worker made safe for the operator's terminal.
//!
//! `status` prints what the worker answers, and the worker reads the
//! network: path names and endpoints reach it in handshakes. A worker
//! taken over could answer escape sequences that rewrite the terminal, or
//! characters that reorder what it shows. Control characters (C0, DEL, C1)
//! and the bidirectional embeddings, overrides and isolates never reach
//! the terminal from here.

use std::borrow::Cow;

/// Control characters and the bidirectional formatting characters that
/// reorder displayed text.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every unsafe character shown as `?` (as `ls` does).
pub fn clean(s: &str) -> Cow<'_, str> {
    if s.chars().any(is_unsafe) {
        Cow::Owned(s.chars().map(|c| if is_unsafe(c) { '?' } else { c }).collect())
    } else {
        Cow::Borrowed(s)
    }
}

/// A JSON document checked and made safe to print, the same value in the
/// same order: whitespace between tokens is dropped (a raw carriage return
/// there is valid JSON), and inside strings every unsafe character is
/// written as a `\u` escape (JSON requires that only of C0 characters).
pub fn safe_json(text: &str) -> Result<String, serde_json::Error> {
    serde_json::from_str::<serde::de::IgnoredAny>(text)?;
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if !in_string && c.is_ascii_whitespace() {
            continue;
        }
        if in_string && is_unsafe(c) {
            // Only C0 must be escaped in JSON; valid input has none raw.
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
            continue;
        }
        out.push(c);
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_shows_unsafe_characters_as_question_marks() {
        assert_eq!(clean("dsl"), "dsl");
        assert!(matches!(clean("lte-4g"), Cow::Borrowed(_)));
        assert_eq!(
            clean("a\u{1b}[2Jb\rc\u{7f}d\u{9b}e\u{202e}f\u{2066}g\tÿ"),
            "a?[2Jb?c?d?e?f?g?ÿ"
        );
    }

    #[test]
    fn safe_json_keeps_the_value_and_order_and_no_unsafe_character_remains() {
        let text = "{\"b\": \"x\\u001b[2J\u{9b}31m\u{7f}\u{202e}\\\"q\\\\\", \r\n\"a\":[1,\"\u{2069}\"]}";
        let out = safe_json(text).unwrap();
        assert!(!out.chars().any(is_unsafe), "{out:?}");
        let (v, w): (serde_json::Value, serde_json::Value) = (
            serde_json::from_str(text).unwrap(),
            serde_json::from_str(&out).unwrap(),
        );
        assert_eq!(v, w, "the same document");
        assert!(out.starts_with("{\"b\":"), "in the order given: {out}");
        assert!(
            out.contains("\\u009b") && out.contains("\\u007f") && out.contains("\\u202e"),
            "{out}"
        );
        // Not JSON (a raw escape character in a string): refused.
        assert!(safe_json("{\"a\":\"\u{1b}[2J\"}").is_err());
        assert!(safe_json("\u{1b}[2J").is_err());
    }
}
