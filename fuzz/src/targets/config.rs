//! The `config` target: `Config::parse` and `import_mlvpn::convert` of
//! any text.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use mlvpn_rs::config::{Config, Mode};
use mlvpn_rs::import_mlvpn;

use super::findings::{TOLERATE_FINDING_2, TOLERATE_FINDING_6};
use crate::fixtures::{key, public, SERVER_KEY};

/// A directory holding the private key file `k` (key `[7; 32]`, mode 0600):
/// `$TMPDIR/mlvpn-rs-fuzz-UID`, made (or checked) once per process and
/// shared by all of them, so none leaves one behind.
pub fn key_dir() -> &'static std::path::Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
        let dir = std::env::temp_dir().join(format!("mlvpn-rs-fuzz-{uid}"));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        let key = key(7);
        let file = dir.join("k");
        let current = mlvpn_keys::read_private_key_file(&file);
        if current.map_or(true, |k| k.public_key() != key.public_key()) {
            // Written aside and renamed: other processes may be reading it.
            let tmp = dir.join(format!("k.{}", std::process::id()));
            mlvpn_keys::write_private_key_file(&tmp, &key).expect("key file");
            std::fs::rename(&tmp, &file).expect("key file");
        }
        dir
    })
}

/// A run of at least 19 digits somewhere in `text`.
fn has_huge_number(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_digit())
        .any(|run| run.len() >= 19)
}

/// `Config::parse` of the input (as UTF-8, lossy) next to a real key file
/// `k`, and `import_mlvpn::convert` of it. Errors are fine; panics are not.
/// A config that parses satisfies what the daemon relies on, and
/// `control_socket_of` (its own small parser) agrees with it; an error names
/// the file and a line of the text. A converted MLVPN config is valid TOML.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let dir = key_dir();
    let file = dir.join("fuzz.toml");
    match Config::parse(&text, &file) {
        Ok(c) => check_config(&c, &text),
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.starts_with(&file.display().to_string()), "{shown}");
            if let Some(line) = e.line {
                assert!(
                    line >= 1 && line <= text.split('\n').count(),
                    "line {line}: {shown}"
                );
            }
        }
    }
    if TOLERATE_FINDING_6 && text.contains("bandwidth_upload") && has_huge_number(&text) {
        return;
    }
    match import_mlvpn::convert(&text, "fuzz.conf") {
        Ok(toml_text) => {
            let control = text.chars().any(|c| c.is_control() && c != '\t' && c != '\n');
            match toml_text.parse::<toml::Table>() {
                Err(_) if TOLERATE_FINDING_2 && control => return,
                Err(e) => panic!("import-mlvpn wrote invalid TOML: {e}\n{toml_text}"),
                Ok(_) => {}
            }
            // As the operator would: point it at a key, name the peer.
            let filled = toml_text
                .replace("@PEER_PUBLIC_KEY@", &public(SERVER_KEY).to_base64())
                .replace("/etc/mlvpn-rs/", &format!("{}/", dir.display()));
            if let Ok(c) = Config::parse(&filled, &file) {
                check_config(&c, &filled);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fn check_config(c: &Config, text: &str) {
    let i = &c.interface;
    let name_ok = |s: &str, max: usize| {
        !s.is_empty()
            && s.len() <= max
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    };
    assert!(name_ok(&i.name, 15), "interface name {:?}", i.name);
    assert!(!i.address.is_empty());
    assert!(i.keepalive < i.path_timeout);
    assert!(i.keepalive > Duration::ZERO);
    if let Some(m) = i.mtu {
        assert!((576..=9000).contains(&m));
    }
    let mtu = c.tun_mtu();
    assert!((576..=9000).contains(&mtu), "tun mtu {mtu}");
    assert!(i.user != "root" && !i.user.is_empty());
    assert!(i.chroot.is_absolute() && i.chroot != std::path::Path::new("/"));
    assert!(i.up_script.as_ref().is_none_or(|p| p.is_absolute()));
    assert!(i.down_script.as_ref().is_none_or(|p| p.is_absolute()));
    assert!(!c.peers.is_empty() && !c.paths.is_empty());
    let ours = i.private_key.public_key();
    for (n, p) in c.peers.iter().enumerate() {
        assert_ne!(p.public_key, ours, "our own key as a peer");
        assert!(!p.allowed_ips.is_empty());
        assert!(
            c.peers[..n].iter().all(|q| q.public_key != p.public_key),
            "duplicate peer"
        );
    }
    for (n, p) in c.paths.iter().enumerate() {
        assert!(name_ok(&p.name, 32), "path name {:?}", p.name);
        assert!(
            c.paths[..n].iter().all(|q| q.name != p.name),
            "duplicate path name"
        );
        match c.mode {
            Mode::Client => {
                assert!(
                    p.endpoint.is_some_and(|e| e.port() != 0),
                    "client path without endpoint"
                );
            }
            Mode::Server => {
                assert!(p.endpoint.is_none() && p.bind.port() != 0);
                assert!(p.bandwidth_up.is_none() && !p.fallback);
            }
        }
        if let Some(d) = &p.device {
            assert!(!d.is_empty() && d.len() <= 15);
        }
    }
    if c.mode == Mode::Client {
        assert_eq!(c.peers.len(), 1);
    }
    // The status command's small parser finds the same control socket.
    let file = key_dir().join(format!("fuzz-{:?}.toml", std::thread::current().id()));
    std::fs::write(&file, text).expect("write config copy");
    let socket = mlvpn_rs::config::control_socket_of(&file);
    let _ = std::fs::remove_file(&file);
    let expected = if i.control_socket.is_relative() {
        None
    } else {
        Some(i.control_socket.clone())
    };
    match (socket, expected) {
        (Ok(s), Some(e)) => assert_eq!(s, e, "control_socket_of disagrees with Config::parse"),
        (Ok(_), None) => {}
        (Err(e), _) => panic!("control_socket_of refuses a config Config::parse accepts: {e}"),
    }
}
