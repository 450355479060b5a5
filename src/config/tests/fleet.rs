//! A concentrator's config: thousands of generated peers.

use super::key_dir;
use crate::config::Config;

/// A server config with `n` peers (distinct keys, one IPv4 and one IPv6
/// address each), as a concentrator's generated file looks.
fn fleet(n: usize) -> String {
    let mut text = String::from(
        "mode = \"server\"\n[interface]\nname = \"mlvpn0\"\naddress = [\"10.100.0.1/16\", \"fd42::1/64\"]\n\
         private_key_file = \"k\"\n[[path]]\nname = \"isp1\"\nbind = \"10.101.0.2:5080\"\n",
    );
    for i in 0..n {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
        let key = mlvpn_keys::PublicKey(key);
        text += &format!(
            "[[peer]]\npublic_key = \"{key}\"\nallowed_ips = [\"10.{}.{}.{}/32\", \"fd42::{:x}/128\"]\n",
            101 + i / 65536,
            (i / 256) % 256,
            i % 256,
            i + 2
        );
    }
    text
}

#[test]
fn a_concentrator_config_of_10000_peers_loads_and_a_duplicate_is_found() {
    let dir = key_dir();
    let file = dir.path().join("fleet.toml");
    let text = fleet(10_000);
    assert!(text.len() > 1 << 20, "a realistic fleet file is over 1 MiB");
    std::fs::write(&file, &text).unwrap();
    let c = Config::load(&file).unwrap();
    assert_eq!(c.peers.len(), 10_000);
    // The first peer again, at the end: named by its line.
    let first = text.find("[[peer]]").unwrap();
    let again = &text[first..first + text[first..].find("\n[[peer]]").unwrap() + 1];
    let dup = text.clone() + again;
    let line = dup.lines().count() - 1;
    let e = Config::parse(&dup, &file).unwrap_err();
    assert_eq!(e.line, Some(line), "{e}");
    assert!(e.to_string().contains("duplicate peer"), "{e}");
}
