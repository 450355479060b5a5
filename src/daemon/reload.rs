//! SIGHUP: what a re-read configuration may change in a running daemon.
//!
//! Paths (added, removed, bind, endpoint, device, bandwidth, fallback),
//! peers (added, removed, allowed IPs), timers, hooks and the private key
//! take effect (a new key: every path re-handshakes with it). What was set
//! up once for the process (the mode, the TUN device and its addresses and
//! MTU, the worker's user and chroot, the control socket) is logged as
//! needing a restart and stays as it was. A file that does not load is
//! refused whole and the running config kept.

use std::collections::HashSet;

pub use super::reload_error::ReloadError;
use crate::config::{Config, Mode};
use crate::proto::SocketId;

/// What the parent does with a re-read config.
pub struct ReloadPlan {
    /// The config now in force: the new file, with restart-only settings
    /// kept as they were.
    pub config: Config,
    /// For each path of `config` (in order): the running socket it keeps,
    /// or `None`: it needs a new socket.
    pub keep: Vec<Option<SocketId>>,
    /// Restart-only settings that differ in the file (left as they were).
    pub needs_restart: Vec<&'static str>,
}

/// Compares the running `old` config, whose path `i` is on socket
/// `old_sockets[i]`, with the freshly loaded `new` one.
pub fn plan(old: &Config, old_sockets: &[SocketId], mut new: Config) -> Result<ReloadPlan, ReloadError> {
    if new.mode != old.mode {
        return Err(ReloadError::ModeChanged);
    }
    let mut needs_restart = Vec::new();
    let (o, n) = (&old.interface, &mut new.interface);
    if n.name != o.name {
        needs_restart.push("interface.name");
        n.name = o.name.clone();
    }
    if n.address != o.address {
        needs_restart.push("interface.address");
        n.address = o.address.clone();
    }
    if n.user != o.user {
        needs_restart.push("interface.user");
        n.user = o.user.clone();
    }
    if n.chroot != o.chroot {
        needs_restart.push("interface.chroot");
        n.chroot = o.chroot.clone();
    }
    if n.control_socket != o.control_socket {
        needs_restart.push("interface.control_socket");
        n.control_socket = o.control_socket.clone();
    }
    // The MTU is the configured one or derived from the paths' families.
    let old_mtu = old.tun_mtu();
    if new.tun_mtu() != old_mtu {
        needs_restart.push("interface.mtu (configured or derived from the paths' address families)");
        new.interface.mtu = Some(old_mtu);
    }
    let keep = keep_sockets(old, &new)
        .into_iter()
        .map(|i| i.and_then(|i| old_sockets.get(i).copied()))
        .collect();
    Ok(ReloadPlan {
        config: new,
        keep,
        needs_restart,
    })
}

/// A path keeps its socket when it binds the same way: first the same name,
/// else (for a fixed port, which a second socket could not bind while the
/// old one is open) any path of the old config with that bind and device.
/// For each path of `new`, the old path whose socket it keeps.
fn keep_sockets(old: &Config, new: &Config) -> Vec<Option<usize>> {
    let mut taken = vec![false; old.paths.len()];
    let same_bind = |a: &crate::config::PathConfig, b: &crate::config::PathConfig| {
        a.bind == b.bind && a.device == b.device
    };
    let mut keep: Vec<Option<usize>> = new
        .paths
        .iter()
        .map(|p| {
            let i = old
                .paths
                .iter()
                .position(|o| o.name == p.name && same_bind(o, p))?;
            taken[i] = true;
            Some(i)
        })
        .collect();
    for (j, p) in new.paths.iter().enumerate() {
        if keep[j].is_some() || p.bind.port() == 0 {
            continue;
        }
        if let Some(i) = (0..old.paths.len()).find(|&i| !taken[i] && same_bind(&old.paths[i], p)) {
            taken[i] = true;
            keep[j] = Some(i);
        }
    }
    keep
}

/// One log line's worth of what the new config changes in the parent's view.
pub fn describe(old: &Config, plan: &ReloadPlan) -> String {
    let new = &plan.config;
    let names = |c: &Config| c.paths.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    let (old_names, new_names) = (names(old), names(new));
    let added: Vec<&String> = new_names.iter().filter(|n| !old_names.contains(n)).collect();
    let removed: Vec<&String> = old_names.iter().filter(|n| !new_names.contains(n)).collect();
    let changed: Vec<&String> = new
        .paths
        .iter()
        .filter(|p| old.paths.iter().any(|o| o.name == p.name && o != *p))
        .map(|p| &p.name)
        .collect();
    // Sets: a fleet's 10 000 peers compared pairwise took ~10^8 steps.
    let keys = |c: &Config| c.peers.iter().map(|p| p.public_key).collect::<HashSet<_>>();
    let (old_keys, new_keys) = (keys(old), keys(new));
    let peers_added = new_keys.difference(&old_keys).count();
    let peers_removed = old_keys.difference(&new_keys).count();
    let key = if new.interface.private_key.public_key() != old.interface.private_key.public_key() {
        format!(
            "; private key changed (public key now {}): every path re-handshakes",
            new.interface.private_key.public_key()
        )
    } else {
        String::new()
    };
    let side = if new.mode == Mode::Client {
        "client"
    } else {
        "server"
    };
    format!(
        "{side} paths added {added:?}, removed {removed:?}, changed {changed:?}; peers added {peers_added}, removed {peers_removed}{key}"
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use mlvpn_keys::{write_private_key_file, PrivateKey};

    use super::*;

    fn config(dir: &Path, text: &str) -> Config {
        Config::parse(text, &dir.join("c.toml")).unwrap()
    }

    fn server(paths: &str, extra: &str) -> String {
        let peer = PrivateKey::from_bytes([2; 32]).public_key();
        format!(
            "mode = \"server\"\n[interface]\nname = \"mlvpn0\"\naddress = [\"10.42.0.1/30\"]\nprivate_key_file = \"k\"\n{extra}\n\
             [[peer]]\npublic_key = \"{peer}\"\nallowed_ips = [\"10.42.0.2/32\"]\n{paths}"
        )
    }

    fn path(name: &str, bind: &str) -> String {
        format!("[[path]]\nname = \"{name}\"\nbind = \"{bind}\"\n")
    }

    /// The running sockets of a config with `n` paths: ids that are not
    /// positions.
    fn sockets(n: u32) -> Vec<SocketId> {
        (10..10 + n).map(SocketId::new).collect()
    }

    fn dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        write_private_key_file(&d.path().join("k"), &PrivateKey::from_bytes([7; 32])).unwrap();
        write_private_key_file(&d.path().join("k2"), &PrivateKey::from_bytes([8; 32])).unwrap();
        d
    }

    #[test]
    fn unchanged_paths_keep_their_sockets_new_ones_need_one() {
        let d = dir();
        let old = config(
            d.path(),
            &server(&(path("a", "10.0.0.1:5080") + &path("b", "10.0.0.2:5081")), ""),
        );
        let new = config(
            d.path(),
            &server(
                &(path("c", "10.0.0.3:5082") + &path("b", "10.0.0.2:5081") + &path("a2", "10.0.0.1:5080")),
                "",
            ),
        );
        let p = plan(&old, &sockets(2), new).unwrap();
        // b by name, a2 by its fixed bind (renamed), c is new.
        assert_eq!(p.keep, [None, Some(SocketId::new(11)), Some(SocketId::new(10))]);
        assert!(p.needs_restart.is_empty());
        let line = describe(&old, &p);
        assert!(
            line.contains("added [\"c\", \"a2\"]") && line.contains("removed [\"a\"]"),
            "{line}"
        );
    }

    #[test]
    fn a_moved_bind_needs_a_new_socket() {
        let d = dir();
        let old = config(d.path(), &server(&path("a", "10.0.0.1:5080"), ""));
        let new = config(d.path(), &server(&path("a", "10.0.0.9:5080"), ""));
        let p = plan(&old, &sockets(1), new).unwrap();
        assert_eq!(p.keep, [None]);
        assert!(describe(&old, &p).contains("changed [\"a\"]"));
    }

    #[test]
    fn restart_only_settings_are_named_and_kept() {
        let d = dir();
        let old = config(d.path(), &server(&path("a", "10.0.0.1:5080"), ""));
        let text = server(
            &path("a", "10.0.0.1:5080"),
            "mtu = 1300\nuser = \"daemon\"\nkeepalive = \"2s\"\npath_timeout = \"6s\"",
        )
        .replace("mlvpn0", "mlvpn7")
        .replace("10.42.0.1/30", "10.43.0.1/30")
        .replace("\"k\"", "\"k2\"");
        let p = plan(&old, &sockets(1), config(d.path(), &text)).unwrap();
        assert_eq!(p.needs_restart.len(), 5, "{:?}", p.needs_restart);
        let c = &p.config.interface;
        assert_eq!(c.name, "mlvpn0");
        assert_eq!(c.address, old.interface.address);
        assert_eq!(c.user, old.interface.user);
        assert_eq!(p.config.tun_mtu(), old.tun_mtu());
        // A new private key is applied, and the log line says so.
        assert_ne!(c.private_key.public_key(), old.interface.private_key.public_key());
        let line = describe(&old, &p);
        assert!(line.contains("private key changed"), "{line}");
        assert_eq!(
            c.control_socket, old.interface.control_socket,
            "its default follows the name"
        );
        // Reloadable settings do change.
        assert_eq!(c.keepalive, std::time::Duration::from_secs(2));
    }

    #[test]
    fn a_mode_change_is_refused() {
        let d = dir();
        let old = config(d.path(), &server(&path("a", "10.0.0.1:5080"), ""));
        let client = format!(
            "mode = \"client\"\n[interface]\nname = \"mlvpn0\"\naddress = [\"10.42.0.2/30\"]\nprivate_key_file = \"k\"\n\
             [[peer]]\npublic_key = \"{}\"\n[[path]]\nname = \"a\"\nbind = \"10.0.0.1:0\"\nendpoint = \"10.0.0.2:5080\"\n",
            PrivateKey::from_bytes([2; 32]).public_key()
        );
        assert!(plan(&old, &sockets(1), config(d.path(), &client)).is_err());
    }
}
