//! Config parsing: valid files (including the shipped examples) and one
//! check per class of mistake, each asserting the reported line and that the
//! message names the key. The helpers here build the configs the topic
//! modules change one key of.

mod examples;
mod files;
mod fleet;
mod man_page;
mod mistakes;
mod valid;

use mlvpn_keys::{write_private_key_file, PrivateKey};
use tempfile::TempDir;

use super::{Config, ConfigError};
use crate::test_support::fixtures::{config_text, CLIENT_TOML, SERVER_TOML};

/// Our key is `[7; 32]`, written to `k` (mode 0600) in a fresh directory.
fn key_dir() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_private_key_file(&dir.path().join("k"), &PrivateKey::from_bytes([7; 32])).unwrap();
    dir
}

fn public(seed: u8) -> String {
    PrivateKey::from_bytes([seed; 32]).public_key().to_string()
}

/// A client config ([`CLIENT_TOML`] gives the line numbers tests refer to).
fn client() -> String {
    config_text(CLIENT_TOML, &public(9), &public(10))
}

/// A server config with two peers.
fn server() -> String {
    config_text(SERVER_TOML, &public(9), &public(10))
}
// Lines: 6 mtu, 7 keepalive, 8 path_timeout, 9 [[peer]], 10 public_key,
// 11 allowed_ips, 13 public_key, 15 [[path]], 16 name, 17 bind, 19 name,
// 20 bind.

fn parse(text: &str) -> Result<Config, ConfigError> {
    let dir = key_dir();
    Config::parse(text, &dir.path().join("c.toml"))
}

/// Asserts that `text` is refused on `line` with a message containing
/// `needle`, in the `FILE:LINE: message` form.
#[track_caller]
fn fails(text: String, line: usize, needle: &str) {
    let e = parse(&text).expect_err("config should be refused");
    let shown = e.to_string();
    assert_eq!(e.line, Some(line), "{shown}");
    assert!(shown.contains(needle), "{shown:?} should mention {needle:?}");
    assert!(
        shown.starts_with(&format!("{}:{line}: ", e.file.display())),
        "{shown}"
    );
}
