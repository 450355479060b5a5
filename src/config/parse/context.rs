//! Where a config mistake is: spans to lines, and serde's messages
//! prefixed with the key they are about.

use std::path::Path;

use super::ConfigError;

/// The file being parsed and its text: turns spans into line numbers.
pub(super) struct Ctx<'a> {
    pub file: &'a Path,
    pub text: &'a str,
}

impl Ctx<'_> {
    pub fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())].matches('\n').count() + 1
    }

    /// A TOML or type error, prefixed with the key (or `[table]`) of its
    /// line, since serde's messages name neither.
    pub fn syntax_error(&self, e: &toml::de::Error) -> ConfigError {
        let mut message = e
            .message()
            .trim()
            .replace('\n', "; ")
            .replace("missing field", "missing required key")
            .replace("unknown field", "unknown key");
        let span = e.span().filter(|s| s.start < self.text.len());
        let mut line = span.as_ref().map(|s| self.line_of(s.start));
        // Only the first line: a table's span runs to its last key.
        let spanned = span
            .and_then(|s| self.text.get(s))
            .and_then(|t| t.lines().next())
            .unwrap_or("")
            .trim();
        if is_table_header(spanned) {
            // toml points a missing key at its table's header.
            message = format!("{spanned}: {message}");
        } else if message.starts_with("missing required key") {
            // A missing top-level key has a meaningless span.
            line = None;
        } else if let Some(l) = line {
            // Name the key as `table.key`, like the semantic errors do.
            let lines: Vec<&str> = self.text.lines().take(l).collect();
            let table = lines
                .iter()
                .rev()
                .map(|t| t.trim())
                .find(|t| is_table_header(t))
                .map(|t| t.trim_start_matches('[').trim_end_matches(']'))
                .filter(|t| !message.contains(&format!("`{t}`")));
            let key = lines
                .last()
                .and_then(|t| t.split_once('='))
                .map(|(k, _)| k.trim())
                .filter(|k| !k.is_empty() && !message.contains(&format!("`{k}`")));
            let prefix = match (table, key) {
                (Some(t), Some(k)) => format!("{t}.{k}"),
                (Some(t), None) => t.to_string(),
                (None, Some(k)) => k.to_string(),
                (None, None) => String::new(),
            };
            if !prefix.is_empty() {
                message = format!("{prefix}: {message}");
            }
        }
        ConfigError {
            file: self.file.to_path_buf(),
            line,
            message,
        }
    }

    /// An error about the file as a whole.
    pub fn err_file<T>(&self, message: impl Into<String>) -> Result<T, ConfigError> {
        Err(ConfigError {
            file: self.file.to_path_buf(),
            line: None,
            message: message.into(),
        })
    }

    pub fn err<T>(&self, span: std::ops::Range<usize>, message: impl Into<String>) -> Result<T, ConfigError> {
        Err(ConfigError {
            file: self.file.to_path_buf(),
            line: Some(self.line_of(span.start)),
            message: message.into(),
        })
    }
}

/// `[name]` or `[[name]]` (not an array value such as `["a"]`).
fn is_table_header(s: &str) -> bool {
    let name = s.trim_start_matches('[').trim_end_matches(']');
    s.starts_with('[')
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
}
