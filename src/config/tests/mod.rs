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

/// Our key is `[7; 32]`, written to `k` (mode 0600) in a fresh directory.
fn key_dir() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_private_key_file(&dir.path().join("k"), &PrivateKey::from_bytes([7; 32])).unwrap();
    dir
}

fn public(seed: u8) -> String {
    PrivateKey::from_bytes([seed; 32]).public_key().to_string()
}

/// A client config; the comments give the line numbers tests refer to.
fn client() -> String {
    format!(
        r#"mode = "client"
[interface]
name = "mlvpn0"
address = ["10.42.0.2/30"]
private_key_file = "k"
user = "nobody"
control_socket = "/run/mlvpn-rs/mlvpn0.sock"

[[peer]]
public_key = "{peer}"

[[path]]
name = "dsl"
bind = "192.0.2.10:0"
endpoint = "203.0.113.1:5080"
bandwidth_up = "50mbit"

[[path]]
name = "lte"
bind = "198.51.100.7"
endpoint = "203.0.113.1:5081"
fallback = true
"#,
        peer = public(9)
    )
}
// Lines: 1 mode, 2 [interface], 3 name, 4 address, 5 private_key_file,
// 6 user, 7 control_socket, 9 [[peer]], 10 public_key, 12 [[path]],
// 13 name, 14 bind, 15 endpoint, 16 bandwidth_up, 18 [[path]], 19 name,
// 20 bind, 21 endpoint, 22 fallback.

/// A server config with two peers.
fn server() -> String {
    format!(
        r#"mode = "server"
[interface]
name = "mlvpn0"
address = ["10.42.0.1/30", "fd42::1/64"]
private_key_file = "k"
mtu = 1400
keepalive = "250ms"
path_timeout = "1s"
[[peer]]
public_key = "{a}"
allowed_ips = ["10.42.0.2/32"]
[[peer]]
public_key = "{b}"
allowed_ips = ["10.42.0.6/32", "fd42::6/128"]
[[path]]
name = "isp1"
bind = "10.101.0.2:5080"
[[path]]
name = "isp2"
bind = "[::]:5081"
"#,
        a = public(9),
        b = public(10)
    )
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
