//! What a tunnel is configured with that a reload may change: the same
//! type at start ([`super::TunnelConfig`]) and on reload
//! ([`super::Reconfig`]), so the two cannot drift apart.

use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;
use mlvpn_keys::PublicKey;

use crate::proto::ids::SocketId;

/// The timers, peers and paths of a tunnel.
#[derive(Debug, Clone)]
pub struct TunnelSettings {
    pub keepalive: Duration,
    pub path_timeout: Duration,
    /// Client: re-handshake a path whose session is this old (at most
    /// [`super::REKEY_AFTER_TIME`]).
    pub rekey_after: Duration,
    pub peers: Vec<PeerSpec>,
    /// Client only: the paths towards the (single) peer, in config order.
    pub paths: Vec<PathSpec>,
}

/// One peer as configured.
#[derive(Debug, Clone)]
pub struct PeerSpec {
    pub public_key: PublicKey,
    pub allowed_ips: Vec<IpNet>,
}

/// One client path as configured.
#[derive(Debug, Clone)]
pub struct PathSpec {
    pub name: String,
    /// The local socket this path sends from.
    pub socket: SocketId,
    pub endpoint: SocketAddr,
    pub bandwidth_up: Option<u64>,
    pub fallback: bool,
}
