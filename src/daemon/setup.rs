//! What the parent tells the worker at hand-over and on reload: exactly
//! what the event loop needs, already validated, as JSON over the privsep
//! channel. The
//! private key travels here (the worker cannot read key files in its chroot);
//! every buffer holding it is zeroized.

use std::time::Duration;

use ipnet::IpNet;
use mlvpn_keys::{PrivateKey, PublicKey};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::config::{Config, Mode};
use crate::io::kernel_offloads::KernelOffloads;
use crate::proto::tunnel::{PathSpec, PeerSpec, Reconfig, TunnelSettings};
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
    #[error("bad hand-over: no interface, user or chroot")]
    HandoverStart,
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

/// The part of the hand-over set up once per process, which a reload
/// cannot change (the parent logs such changes as needing a restart).
#[derive(Serialize, Deserialize)]
pub struct StartOnly {
    pub interface: String,
    pub uid: u32,
    pub gid: u32,
    pub chroot: String,
    /// What the TUN device and path sockets were opened with.
    #[serde(default)]
    pub offloads: KernelOffloads,
}

impl StartOnly {
    pub fn identity(&self) -> Identity {
        Identity {
            uid: self.uid,
            gid: self.gid,
        }
    }
}

/// What the parent sends the worker, at hand-over and on each reload
/// (SIGHUP): the tunnel's settings, each path naming its socket, and the
/// ids of the sockets whose descriptors go with the message, in order. At
/// hand-over that is every path's socket; on reload only the new ones (a
/// path's socket is then a running one it keeps, or a new one; running
/// sockets no path names are closed).
#[derive(Serialize, Deserialize)]
pub struct WorkerSetup {
    /// Hand-over only (its fields sit beside the others in the JSON).
    #[serde(flatten)]
    pub start: Option<StartOnly>,
    pub client: bool,
    /// The configured private key (on reload: applied if it changed).
    pub private_key: String,
    pub keepalive_ms: u64,
    pub rekey_after_ms: u64,
    pub path_timeout_ms: u64,
    pub peers: Vec<SetupPeer>,
    pub paths: Vec<SetupPath>,
    /// The ids of the path sockets passed with the message, in order.
    pub sockets: Vec<SocketId>,
    pub up_script: bool,
    pub down_script: bool,
}

impl Drop for WorkerSetup {
    fn drop(&mut self) {
        self.private_key.zeroize();
    }
}

impl WorkerSetup {
    /// The hand-over. `sockets`: each path's socket id, in config order
    /// (their descriptors go with the message in that order).
    pub fn handover(
        config: &Config,
        sockets: &[SocketId],
        id: Identity,
        offloads: KernelOffloads,
    ) -> WorkerSetup {
        let start = StartOnly {
            offloads,
            interface: config.interface.name.clone(),
            uid: id.uid,
            gid: id.gid,
            chroot: config.interface.chroot.display().to_string(),
        };
        WorkerSetup::new(config, sockets, sockets, Some(start))
    }

    /// A reload. `paths_on`: each path's socket id, in config order;
    /// `fresh`: the new ones among them, in the order their descriptors go.
    pub fn reload(config: &Config, paths_on: &[SocketId], fresh: &[SocketId]) -> WorkerSetup {
        WorkerSetup::new(config, paths_on, fresh, None)
    }

    fn new(
        config: &Config,
        paths_on: &[SocketId],
        sent: &[SocketId],
        start: Option<StartOnly>,
    ) -> WorkerSetup {
        WorkerSetup {
            start,
            client: config.mode == Mode::Client,
            private_key: config.interface.private_key.to_base64().to_string(),
            keepalive_ms: config.interface.keepalive.as_millis() as u64,
            rekey_after_ms: config.interface.rekey_after.as_millis() as u64,
            path_timeout_ms: config.interface.path_timeout.as_millis() as u64,
            peers: setup_peers(config),
            paths: setup_paths(config, paths_on),
            sockets: sent.to_vec(),
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

    /// The hand-over, and its start-only part (which it must have).
    pub fn decode_handover(b: &[u8]) -> Result<(WorkerSetup, StartOnly), SetupError> {
        let mut setup: WorkerSetup = serde_json::from_slice(b).map_err(SetupError::BadHandover)?;
        let start = setup.start.take().ok_or(SetupError::HandoverStart)?;
        Ok((setup, start))
    }

    /// A reload message (a start-only part in it is ignored).
    pub fn decode_reload(b: &[u8]) -> Result<WorkerSetup, SetupError> {
        let r: WorkerSetup = serde_json::from_slice(b).map_err(SetupError::BadReload)?;
        if !r.sockets.iter().all(|s| r.paths.iter().any(|p| p.socket == *s)) {
            return Err(SetupError::ReloadSockets);
        }
        Ok(r)
    }

    /// The core's start-up config.
    pub fn tunnel_config(&self) -> Result<TunnelConfig, SetupError> {
        let key =
            PrivateKey::from_base64(&self.private_key).map_err(|e| SetupError::HandoverKey(e.to_string()))?;
        Ok(TunnelConfig {
            mode: if self.client { Mode::Client } else { Mode::Server },
            private_key: key,
            settings: self.settings()?,
            // The core's only randomness: seeded from the OS here.
            rng_seed: rand::Rng::gen(&mut rand::rngs::OsRng),
        })
    }

    /// The core's view of a reload; `closed_sockets` is the driver's to fill.
    pub fn reconfig(&self) -> Result<Reconfig, SetupError> {
        let key =
            PrivateKey::from_base64(&self.private_key).map_err(|e| SetupError::ReloadKey(e.to_string()))?;
        Ok(Reconfig {
            private_key: Some(key),
            settings: self.settings()?,
            closed_sockets: Vec::new(),
        })
    }

    /// What the core takes both at start and on reload.
    fn settings(&self) -> Result<TunnelSettings, SetupError> {
        Ok(TunnelSettings {
            keepalive: Duration::from_millis(self.keepalive_ms),
            rekey_after: Duration::from_millis(self.rekey_after_ms),
            path_timeout: Duration::from_millis(self.path_timeout_ms),
            peers: peer_specs(&self.peers)?,
            paths: if self.client {
                path_specs(&self.paths)
            } else {
                Vec::new()
            },
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

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(start: Option<StartOnly>) -> WorkerSetup {
        WorkerSetup {
            start,
            client: true,
            private_key: PrivateKey::from_bytes([7; 32]).to_base64().to_string(),
            keepalive_ms: 1000,
            rekey_after_ms: 120_000,
            path_timeout_ms: 3000,
            peers: vec![SetupPeer {
                public_key: PrivateKey::from_bytes([2; 32]).public_key().to_base64(),
                allowed_ips: vec!["10.42.0.0/24".parse().unwrap()],
            }],
            paths: vec![SetupPath {
                name: "dsl".into(),
                socket: SocketId::new(3),
                endpoint: Some("192.0.2.1:5080".parse().unwrap()),
                bandwidth_up: None,
                fallback: false,
            }],
            sockets: vec![SocketId::new(3)],
            up_script: false,
            down_script: true,
        }
    }

    #[test]
    fn the_start_only_part_travels_at_hand_over_only() {
        let start = StartOnly {
            interface: "mlvpn0".into(),
            uid: 65534,
            gid: 65533,
            chroot: "/var/empty".into(),
            offloads: KernelOffloads {
                udp_gso: true,
                ..Default::default()
            },
        };
        let json = setup(Some(start)).encode();
        let text = std::str::from_utf8(&json).unwrap();
        assert!(
            text.contains("\"interface\":\"mlvpn0\"") && !text.contains("\"start\""),
            "beside the other fields: {text}"
        );
        let (handover, start) = WorkerSetup::decode_handover(&json).unwrap();
        assert_eq!(
            (
                start.interface.as_str(),
                start.uid,
                start.gid,
                start.chroot.as_str()
            ),
            ("mlvpn0", 65534, 65533, "/var/empty")
        );
        assert!(start.offloads.udp_gso && !start.offloads.tun.vnet_hdr);
        let config = handover.tunnel_config().unwrap();
        assert_eq!(config.settings.paths[0].socket, SocketId::new(3));

        let json = setup(None).encode();
        assert!(!std::str::from_utf8(&json).unwrap().contains("interface"));
        assert!(matches!(
            WorkerSetup::decode_handover(&json),
            Err(SetupError::HandoverStart)
        ));
        let reload = WorkerSetup::decode_reload(&json).unwrap();
        assert_eq!(reload.reconfig().unwrap().settings.peers.len(), 1);
    }

    #[test]
    fn a_reload_with_a_new_socket_no_path_uses_is_refused() {
        let mut s = setup(None);
        s.sockets.push(SocketId::new(9));
        assert!(matches!(
            WorkerSetup::decode_reload(&s.encode()),
            Err(SetupError::ReloadSockets)
        ));
    }
}
