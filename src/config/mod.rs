//! Configuration: the TOML file of DESIGN.md, parsed and validated.
//!
//! `Config::load` turns a file into a [`Config`] that is known to be usable:
//! every mistake is reported as a [`ConfigError`] that renders as
//! `FILE:LINE: what is wrong and what is expected`. Nothing is opened or bound
//! here except the private key file named by the config.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use mlvpn_keys::{PrivateKey, PublicKey};

/// Which side of the tunnel this daemon is: the protocol core's type.
pub use crate::proto::Mode;

/// A validated configuration.
#[derive(Debug)]
pub struct Config {
    /// The file it was read from (for messages and reload).
    pub file: PathBuf,
    pub mode: Mode,
    pub interface: Interface,
    pub peers: Vec<PeerConfig>,
    pub paths: Vec<PathConfig>,
}

/// `[interface]`
#[derive(Debug)]
pub struct Interface {
    /// TUN device name, at most 15 bytes.
    pub name: String,
    /// Addresses (with prefix) set on the TUN device.
    pub address: Vec<IpNet>,
    pub private_key_file: PathBuf,
    /// Loaded from `private_key_file`; zeroized on drop, never printed.
    pub private_key: PrivateKey,
    /// User the unprivileged worker runs as. Default `nobody`.
    pub user: String,
    /// Empty directory the worker chroots to. Default `/run/mlvpn-rs/empty`
    /// (created by the parent).
    pub chroot: PathBuf,
    /// Run by the parent when the tunnel starts and when a client path
    /// comes up.
    pub up_script: Option<PathBuf>,
    /// Run by the parent when a client path goes down and when the tunnel
    /// stops.
    pub down_script: Option<PathBuf>,
    /// Longest a hook may run before it is killed. Default 10 s.
    pub hook_timeout: Duration,
    /// Unix socket for `mlvpn-rs status`. Default `/run/mlvpn-rs/<name>.sock`.
    pub control_socket: PathBuf,
    /// TUN MTU; `None` = derived (1500 minus worst-case overhead).
    pub mtu: Option<u16>,
    /// Send a keepalive on a path idle for this long. Default 1 s.
    pub keepalive: Duration,
    /// Declare a path down when nothing authenticated arrived for this long.
    /// Default 3 s.
    pub path_timeout: Duration,
    /// Re-handshake every path this often (fresh keys). Default 120 s, the
    /// most; lower for tests (the soak run) or more frequent key changes.
    pub rekey_after: Duration,
}

/// `[[peer]]`
#[derive(Debug, Clone)]
pub struct PeerConfig {
    pub public_key: PublicKey,
    /// Client: routed into the tunnel (default 0.0.0.0/0 and ::/0).
    /// Server: inner addresses this peer may use and that are routed to it
    /// (required).
    pub allowed_ips: Vec<IpNet>,
}

/// `[[path]]`
#[derive(Debug, Clone, PartialEq)]
pub struct PathConfig {
    /// Unique among paths, 1..=32 bytes of `[A-Za-z0-9_.-]`.
    pub name: String,
    /// Local address; port 0 = any (client). A server path needs a port.
    pub bind: SocketAddr,
    /// Server address for this path (client only, required there).
    pub endpoint: Option<SocketAddr>,
    /// Upload bandwidth in bit/s (scheduler weight / cap); `None` = unknown.
    pub bandwidth_up: Option<u64>,
    /// Carry traffic only when no normal path is up.
    pub fallback: bool,
    /// Network interface the path's socket is tied to (SO_BINDTODEVICE):
    /// the uplink is chosen by device, so its address may change.
    pub device: Option<String>,
}

mod parse;
pub mod units;

pub use parse::{
    control_socket_of, ConfigError, DEFAULT_CHROOT, DEFAULT_HOOK_TIMEOUT, DEFAULT_KEEPALIVE,
    DEFAULT_PATH_TIMEOUT, DEFAULT_REKEY_AFTER, DEFAULT_USER, MAX_CONFIG_FILE,
};

#[cfg(test)]
mod tests;

impl Config {
    /// The hook scripts exist and are root's own (owner root or us, not
    /// writable by others, nor their directories): the parent runs them as
    /// root. Checked by `check`, at start and before each run (a script may
    /// change after start). The error names the file, not a line: it is
    /// about the script, not the text.
    pub fn check_hook_scripts(&self) -> Result<(), ConfigError> {
        let i = &self.interface;
        for (key, script) in [("up_script", &i.up_script), ("down_script", &i.down_script)] {
            if let Some(p) = script {
                mlvpn_privsep::trusted_file::check_path("hook script", p).map_err(|e| ConfigError {
                    file: self.file.clone(),
                    line: None,
                    message: format!("interface.{key}: {e}"),
                })?;
            }
        }
        Ok(())
    }

    /// The TUN MTU: the configured one, or what a 1500-byte link leaves
    /// after the outer headers of the paths' address family (IPv6 + UDP if
    /// any path uses IPv6, else IPv4 + UDP) and the tunnel's own overhead,
    /// so no outer packet is fragmented: 1416 over IPv4 paths, 1396 with IPv6.
    pub fn tun_mtu(&self) -> u16 {
        self.interface.mtu.unwrap_or_else(|| {
            let v6 = self
                .paths
                .iter()
                .any(|p| p.bind.is_ipv6() || p.endpoint.is_some_and(|e| e.is_ipv6()));
            let outer = if v6 { 40 + 8 } else { 20 + 8 };
            (1500 - outer - crate::proto::tunnel::OVERHEAD) as u16
        })
    }
}
