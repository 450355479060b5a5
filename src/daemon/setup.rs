//! What the parent tells the worker at hand-over: exactly what the event
//! loop needs, already validated, as JSON over the privsep channel. The
//! private key travels here (the worker cannot read key files in its chroot);
//! every buffer holding it is zeroized.

use std::time::Duration;

use ipnet::IpNet;
use mlvpn_keys::{PrivateKey, PublicKey};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::config::{Config, Mode};
use crate::proto::tunnel::{PathSpec, PeerSpec, Reconfig};
use crate::proto::{SocketId, TunnelConfig};
use mlvpn_privsep::drop::Identity;

/// A hand-over or reload message the worker cannot use.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("bad hand-over: {0}")]
    BadHandover(serde_json::Error),
    /// The key's own message (keys crate).
    #[error("hand-over key: {0}")]
    HandoverKey(String),
    #[error("hand-over peer: {0}")]
    HandoverPeer(String),
    #[error("bad reload message: {0}")]
    BadReload(serde_json::Error),
    #[error("bad reload message: a new socket that no path uses")]
    ReloadSockets,
    #[error("reload key: {0}")]
    ReloadKey(String),
}

#[derive(Serialize, Deserialize)]
pub struct SetupPeer {
    pub public_key: String,
    pub allowed_ips: Vec<IpNet>,
}

#[derive(Serialize, Deserialize)]
pub struct SetupPath {
    pub name: String,
    /// The socket the path sends from (server: listens on).
    pub socket: SocketId,
    pub endpoint: Option<std::net::SocketAddr>,
    pub bandwidth_up: Option<u64>,
    pub fallback: bool,
}

#[derive(Serialize, Deserialize)]
pub struct WorkerSetup {
    pub client: bool,
    pub interface: String,
    pub private_key: String,
    pub keepalive_ms: u64,
    pub rekey_after_ms: u64,
    pub path_timeout_ms: u64,
    pub peers: Vec<SetupPeer>,
    pub paths: Vec<SetupPath>,
    /// The ids of the path sockets passed with the message, in order.
    pub sockets: Vec<SocketId>,
    pub uid: u32,
    pub gid: u32,
    pub chroot: String,
    pub up_script: bool,
    pub down_script: bool,
}

impl Drop for WorkerSetup {
    fn drop(&mut self) {
        self.private_key.zeroize();
    }
}

impl WorkerSetup {
    /// `sockets`: each path's socket id, in config order (their
    /// descriptors go with the message in that order).
    pub fn new(config: &Config, sockets: &[SocketId], id: Identity) -> WorkerSetup {
        WorkerSetup {
            client: config.mode == Mode::Client,
            interface: config.interface.name.clone(),
            private_key: config.interface.private_key.to_base64().to_string(),
            keepalive_ms: config.interface.keepalive.as_millis() as u64,
            rekey_after_ms: config.interface.rekey_after.as_millis() as u64,
            path_timeout_ms: config.interface.path_timeout.as_millis() as u64,
            peers: setup_peers(config),
            paths: setup_paths(config, sockets),
            sockets: sockets.to_vec(),
            uid: id.uid,
            gid: id.gid,
            chroot: config.interface.chroot.display().to_string(),
            up_script: config.interface.up_script.is_some(),
            down_script: config.interface.down_script.is_some(),
        }
    }

    /// The JSON, in a buffer sized by a first pass so that it never grows:
    /// growing would leave unwiped copies of the key in freed memory (and
    /// with thousands of peers it grows many times).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut size = ByteCount(0);
        serde_json::to_writer(&mut size, self).expect("plain data serializes");
        let mut out = Zeroizing::new(Vec::with_capacity(size.0));
        serde_json::to_writer(&mut *out, self).expect("plain data serializes");
        debug_assert_eq!(out.len(), size.0);
        out
    }

    pub fn decode(b: &[u8]) -> Result<WorkerSetup, SetupError> {
        serde_json::from_slice(b).map_err(SetupError::BadHandover)
    }

    pub fn identity(&self) -> Identity {
        Identity {
            uid: self.uid,
            gid: self.gid,
        }
    }

    pub fn tunnel_config(&self) -> Result<TunnelConfig, SetupError> {
        let key =
            PrivateKey::from_base64(&self.private_key).map_err(|e| SetupError::HandoverKey(e.to_string()))?;
        let peers = peer_specs(&self.peers)?;
        let paths = if self.client {
            path_specs(&self.paths)
        } else {
            Vec::new()
        };
        Ok(TunnelConfig {
            mode: if self.client { Mode::Client } else { Mode::Server },
            private_key: key,
            keepalive: Duration::from_millis(self.keepalive_ms),
            rekey_after: Duration::from_millis(self.rekey_after_ms),
            path_timeout: Duration::from_millis(self.path_timeout_ms),
            peers,
            paths,
            // The core's only randomness: seeded from the OS here.
            rng_seed: rand::Rng::gen(&mut rand::rngs::OsRng),
        })
    }
}

/// Counts what would be written.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len();
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn setup_peers(config: &Config) -> Vec<SetupPeer> {
    config
        .peers
        .iter()
        .map(|p| SetupPeer {
            public_key: p.public_key.to_base64(),
            allowed_ips: p.allowed_ips.clone(),
        })
        .collect()
}

/// The config's paths, path `i` on socket `sockets[i]`.
fn setup_paths(config: &Config, sockets: &[SocketId]) -> Vec<SetupPath> {
    config
        .paths
        .iter()
        .zip(sockets)
        .map(|(p, &socket)| SetupPath {
            name: p.name.clone(),
            socket,
            endpoint: p.endpoint,
            bandwidth_up: p.bandwidth_up,
            fallback: p.fallback,
        })
        .collect()
}

fn peer_specs(peers: &[SetupPeer]) -> Result<Vec<PeerSpec>, SetupError> {
    peers
        .iter()
        .map(|p| {
            Ok(PeerSpec {
                public_key: PublicKey::from_base64(&p.public_key)
                    .map_err(|e| SetupError::HandoverPeer(e.to_string()))?,
                allowed_ips: p.allowed_ips.clone(),
            })
        })
        .collect()
}

/// Client paths, each on the socket the parent named.
fn path_specs(paths: &[SetupPath]) -> Vec<PathSpec> {
    paths
        .iter()
        .filter_map(|p| {
            Some(PathSpec {
                name: p.name.clone(),
                socket: p.socket,
                endpoint: p.endpoint?,
                bandwidth_up: p.bandwidth_up,
                fallback: p.fallback,
            })
        })
        .collect()
}

/// What the parent sends on SIGHUP: the reloadable settings of the new
/// config, each path naming its socket: a running one it keeps, or a new
/// one passed with the message (their ids in `sockets`, in order). Running
/// sockets no path names are closed.
#[derive(Serialize, Deserialize)]
pub struct ReloadSetup {
    pub client: bool,
    /// The configured private key (applied if it changed).
    pub private_key: String,
    pub keepalive_ms: u64,
    pub rekey_after_ms: u64,
    pub path_timeout_ms: u64,
    pub peers: Vec<SetupPeer>,
    pub paths: Vec<SetupPath>,
    /// The ids of the new sockets passed with the message, in order.
    pub sockets: Vec<SocketId>,
    pub up_script: bool,
    pub down_script: bool,
}

impl Drop for ReloadSetup {
    fn drop(&mut self) {
        self.private_key.zeroize();
    }
}

impl ReloadSetup {
    /// `paths_on`: each path's socket id, in config order; `fresh`: the
    /// new ones among them, in the order their descriptors go.
    pub fn new(config: &Config, paths_on: &[SocketId], fresh: &[SocketId]) -> ReloadSetup {
        ReloadSetup {
            client: config.mode == Mode::Client,
            private_key: config.interface.private_key.to_base64().to_string(),
            keepalive_ms: config.interface.keepalive.as_millis() as u64,
            rekey_after_ms: config.interface.rekey_after.as_millis() as u64,
            path_timeout_ms: config.interface.path_timeout.as_millis() as u64,
            peers: setup_peers(config),
            paths: setup_paths(config, paths_on),
            sockets: fresh.to_vec(),
            up_script: config.interface.up_script.is_some(),
            down_script: config.interface.down_script.is_some(),
        }
    }

    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(serde_json::to_vec(self).expect("plain data serializes"))
    }

    pub fn decode(b: &[u8]) -> Result<ReloadSetup, SetupError> {
        let r: ReloadSetup = serde_json::from_slice(b).map_err(SetupError::BadReload)?;
        if !r.sockets.iter().all(|s| r.paths.iter().any(|p| p.socket == *s)) {
            return Err(SetupError::ReloadSockets);
        }
        Ok(r)
    }

    /// The core's view; `closed_sockets` is the driver's to fill.
    pub fn reconfig(&self) -> Result<Reconfig, SetupError> {
        let key =
            PrivateKey::from_base64(&self.private_key).map_err(|e| SetupError::ReloadKey(e.to_string()))?;
        Ok(Reconfig {
            private_key: Some(key),
            keepalive: Duration::from_millis(self.keepalive_ms),
            rekey_after: Duration::from_millis(self.rekey_after_ms),
            path_timeout: Duration::from_millis(self.path_timeout_ms),
            peers: peer_specs(&self.peers)?,
            paths: if self.client {
                path_specs(&self.paths)
            } else {
                Vec::new()
            },
            closed_sockets: Vec::new(),
        })
    }
}
