//! Config parsing: valid files and one test per class of mistake, each
//! checking the reported line and that the message names the key.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use mlvpn_keys::{write_private_key_file, PrivateKey};

use super::{Config, Mode};

/// A temp dir with a private key `k` (0600) and the peer's public key.
fn setup(tag: &str) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("mlvpn-config-test-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_private_key_file(&dir.join("k"), &PrivateKey::from_bytes([7; 32])).unwrap();
    (dir, PrivateKey::from_bytes([9; 32]).public_key().to_string())
}

fn client(peer: &str) -> String {
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
"#
    )
}

fn parse(tag: &str, edit: impl Fn(String) -> String) -> Result<Config, super::ConfigError> {
    let (dir, peer) = setup(tag);
    let r = Config::parse(&edit(client(&peer)), &dir.join("c.toml"));
    std::fs::remove_dir_all(&dir).unwrap();
    r
}

/// Asserts the error is on `line` and mentions `needle`.
fn fails(tag: &str, line: usize, needle: &str, edit: impl Fn(String) -> String) {
    let e = parse(tag, edit).expect_err("config should be refused");
    let shown = e.to_string();
    assert_eq!(e.line, Some(line), "{shown}");
    assert!(shown.contains(needle), "{shown:?} should mention {needle:?}");
    assert!(
        shown.starts_with(&format!("{}:{line}: ", e.file.display())),
        "{shown}"
    );
}

#[test]
fn valid_client() {
    let c = parse("valid", |s| s).unwrap();
    assert_eq!(c.mode, Mode::Client);
    assert_eq!(c.interface.name, "mlvpn0");
    assert_eq!(c.interface.keepalive, Duration::from_secs(1));
    assert_eq!(c.interface.path_timeout, Duration::from_secs(3));
    assert_eq!(c.interface.user, "nobody");
    assert_eq!(c.interface.chroot, PathBuf::from("/run/mlvpn-rs/empty"));
    assert_eq!(c.interface.hook_timeout, Duration::from_secs(10));
    assert_eq!(
        c.peers[0].allowed_ips.len(),
        2,
        "client default: 0.0.0.0/0 and ::/0"
    );
    assert_eq!(c.paths[0].bandwidth_up, Some(50_000_000));
    assert_eq!(c.paths[1].bind.port(), 0);
    assert!(c.paths[1].fallback);
    assert_eq!(
        c.interface.private_key.public_key(),
        PrivateKey::from_bytes([7; 32]).public_key()
    );
}

#[test]
fn valid_server() {
    let (dir, peer) = setup("server");
    let text = format!(
        r#"mode = "server"
[interface]
name = "mlvpn0"
address = ["10.42.0.1/30", "fd42::1/64"]
private_key_file = "k"
mtu = 1400
keepalive = "250ms"
path_timeout = "1s"
[[peer]]
public_key = "{peer}"
allowed_ips = ["10.42.0.2/32"]
[[path]]
name = "isp1"
bind = "0.0.0.0:5080"
[[path]]
name = "isp2"
bind = "[::]:5081"
"#
    );
    let c = Config::parse(&text, &dir.join("s.toml")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(c.mode, Mode::Server);
    assert_eq!(c.interface.mtu, Some(1400));
    assert_eq!(c.interface.keepalive, Duration::from_millis(250));
    assert_eq!(
        c.interface.control_socket,
        PathBuf::from("/run/mlvpn-rs/mlvpn0.sock")
    );
    assert_eq!(c.paths[1].bind, "[::]:5081".parse().unwrap());
}

#[test]
fn mistakes_name_their_line() {
    fails("mode", 1, "mode", |s| s.replace("\"client\"", "\"clinet\""));
    fails("unknown", 6, "colour", |s| {
        s.replace("user = \"nobody\"", "colour = \"blue\"")
    });
    fails("cidr", 4, "interface.address", |s| {
        s.replace("10.42.0.2/30", "10.42.0.300/30")
    });
    fails("name", 3, "interface.name", |s| {
        s.replace("\"mlvpn0\"", "\"a-very-long-interface-name\"")
    });
    fails("dup", 19, "duplicate path name", |s| {
        s.replace("name = \"lte\"", "name = \"dsl\"")
    });
    fails("endpoint", 13, "endpoint", |s| {
        s.replace("endpoint = \"203.0.113.1:5080\"\n", "")
    });
    fails("rate", 16, "bandwidth_up", |s| s.replace("50mbit", "50 furlongs"));
    fails("key", 10, "public_key", |s| {
        s.replace("public_key = \"", "public_key = \"x")
    });
    fails("bind", 14, "path.bind", |s| {
        s.replace("192.0.2.10:0", "somewhere")
    });
    fails("type", 22, "fallback", |s| {
        s.replace("fallback = true", "fallback = \"yes\"")
    });
    fails("mtu", 6, "mtu", |s| s.replace("user = \"nobody\"", "mtu = 70000"));
    fails("duration", 6, "needs a unit", |s| {
        s.replace("user = \"nobody\"", "keepalive = \"5\"")
    });
    fails("root", 6, "unprivileged", |s| s.replace("\"nobody\"", "\"root\""));
    fails("hook", 6, "absolute", |s| {
        s.replace("user = \"nobody\"", "up_script = \"up.sh\"")
    });
    fails("keyfile", 5, "private_key_file", |s| {
        s.replace("\"k\"", "\"missing.key\"")
    });
}

#[test]
fn missing_sections_are_refused() {
    let e = parse("nopath", |s| s[..s.find("[[path]]").unwrap()].to_string()).unwrap_err();
    assert!(e.to_string().contains("no [[path]]"), "{e}");
    let e = parse("nopeer", |s| {
        s.replace("[[peer]]", "").replace("public_key", "# public_key")
    })
    .unwrap_err();
    assert!(e.to_string().contains("[[peer]]"), "{e}");
}

#[test]
fn group_readable_key_is_refused() {
    let (dir, peer) = setup("perm");
    std::fs::set_permissions(dir.join("k"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let e = Config::parse(&client(&peer), &dir.join("c.toml"))
        .unwrap_err()
        .to_string();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(e.contains("readable by group or others"), "{e}");
}

#[test]
fn server_needs_ports_and_allowed_ips() {
    let (dir, peer) = setup("srv");
    let base = format!(
        "mode = \"server\"\n[interface]\nname = \"m\"\naddress = [\"10.42.0.1/30\"]\nprivate_key_file = \"k\"\n\
         [[peer]]\npublic_key = \"{peer}\"\nallowed_ips = [\"10.42.0.2/32\"]\n[[path]]\nname = \"a\"\nbind = \"0.0.0.0:5080\"\n"
    );
    let f = dir.join("s.toml");
    assert!(Config::parse(&base, &f).is_ok());
    let e = Config::parse(&base.replace(":5080", ""), &f).unwrap_err();
    assert!(e.to_string().contains("needs a port"), "{e}");
    let e = Config::parse(&base.replace("allowed_ips = [\"10.42.0.2/32\"]\n", ""), &f).unwrap_err();
    assert!(e.to_string().contains("allowed_ips"), "{e}");
    let e = Config::parse(&format!("{base}endpoint = \"1.2.3.4:5\"\n"), &f).unwrap_err();
    assert!(e.to_string().contains("no endpoint"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
