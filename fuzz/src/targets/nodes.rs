//! The parties the stateful targets run: the server, client A (a real
//! client `Tunnel`), peer B (authenticated but hostile) and a stranger;
//! their keys, addresses and tunnels.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use mlvpn_keys::{PrivateKey, PublicKey};
use mlvpn_rs::config::Mode;
use mlvpn_rs::proto::clock::Clock;
use mlvpn_rs::proto::mac::Mac1Key;
use mlvpn_rs::proto::tunnel::{PathSpec, PeerSpec, REKEY_AFTER_TIME};
use mlvpn_rs::proto::wire::{self, MAC_LEN};
use mlvpn_rs::proto::{Tunnel, TunnelConfig};

/// The server's static key.
pub const SERVER_KEY: [u8; 32] = [1; 32];
/// Peer "A": a configured client, driven as a real client [`Tunnel`].
pub const CLIENT_KEY: [u8; 32] = [2; 32];
/// Peer "B": a configured client whose frames the fuzzer writes itself and
/// seals with real session keys (an authenticated but hostile peer).
pub const ROGUE_KEY: [u8; 32] = [3; 32];
/// A key the server does not know.
pub const STRANGER_KEY: [u8; 32] = [4; 32];
/// Wall clock at the start of every simulated run.
pub const UNIX_NS: u64 = 1_700_000_000_000_000_000;

pub const SERVER_SOCKETS: [&str; 2] = ["10.101.0.2:5080", "10.102.0.2:5081"];
pub const CLIENT_SOCKETS: [&str; 2] = ["10.101.0.1:40000", "10.102.0.1:40001"];
/// Endpoint of the client's second path: nothing answers there, so the
/// client always has a handshake pending on it.
pub const BLACKHOLE: &str = "192.0.2.1:5080";
pub const ROGUE_ADDR: &str = "10.103.0.1:40000";
/// Inner addresses: A is 10.42.0.2, B may use 10.42.0.6 and fd42::6.
pub const CLIENT_ALLOWED: [&str; 1] = ["10.42.0.2/32"];
pub const ROGUE_ALLOWED: [&str; 2] = ["10.42.0.6/32", "fd42::6/128"];

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("valid socket address")
}

pub fn private(k: [u8; 32]) -> PrivateKey {
    PrivateKey::from_bytes(k)
}

/// Public key of one of the fixed keys (cached: each is a scalar
/// multiplication).
pub fn public(k: [u8; 32]) -> PublicKey {
    static KEYS: OnceLock<Vec<([u8; 32], PublicKey)>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        [SERVER_KEY, CLIENT_KEY, ROGUE_KEY, STRANGER_KEY]
            .into_iter()
            .map(|k| (k, private(k).public_key()))
            .collect()
    });
    match keys.iter().find(|(b, _)| *b == k) {
        Some((_, p)) => *p,
        None => private(k).public_key(),
    }
}

pub fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|n| n.parse().expect("valid CIDR")).collect()
}

/// The server's peers: A, and B if `with_rogue`.
pub fn server_peers(with_rogue: bool) -> Vec<PeerSpec> {
    let mut peers = vec![PeerSpec {
        public_key: public(CLIENT_KEY),
        allowed_ips: nets(&CLIENT_ALLOWED),
    }];
    if with_rogue {
        peers.push(PeerSpec {
            public_key: public(ROGUE_KEY),
            allowed_ips: nets(&ROGUE_ALLOWED),
        });
    }
    peers
}

/// The server: peers A and B, keepalive 1 s, path timeout 3 s.
pub fn server_tunnel(start: Instant) -> Tunnel {
    let cfg = TunnelConfig {
        mode: Mode::Server,
        private_key: private(SERVER_KEY),
        keepalive: Duration::from_secs(1),
        path_timeout: Duration::from_secs(3),
        rekey_after: REKEY_AFTER_TIME,
        peers: server_peers(true),
        paths: vec![],
    };
    Tunnel::new(cfg, Clock::new(start, UNIX_NS), start)
}

/// Client A: path 0 to the server's first socket, path 1 into the void;
/// rekeys every 40 s.
pub fn client_tunnel(start: Instant) -> Tunnel {
    let cfg = TunnelConfig {
        mode: Mode::Client,
        private_key: private(CLIENT_KEY),
        keepalive: Duration::from_secs(1),
        path_timeout: Duration::from_secs(3),
        // Sooner than the default, so a pair's life sees rekeys.
        rekey_after: Duration::from_secs(40),
        peers: vec![PeerSpec {
            public_key: public(SERVER_KEY),
            allowed_ips: nets(&["10.42.0.0/24"]),
        }],
        paths: vec![
            PathSpec {
                name: "p0".into(),
                socket: 0,
                endpoint: addr(SERVER_SOCKETS[0]),
                bandwidth_up: None,
                fallback: false,
            },
            PathSpec {
                name: "void".into(),
                socket: 1,
                endpoint: addr(BLACKHOLE),
                bandwidth_up: None,
                fallback: false,
            },
        ],
    };
    Tunnel::new(cfg, Clock::new(start, UNIX_NS), start)
}

/// A minimal IPv4/UDP packet from A (10.42.0.2) to the server (10.42.0.1)
/// carrying `id`; at least 36 bytes.
pub fn client_packet(id: u64, len: usize) -> Vec<u8> {
    let len = len.clamp(36, 1400);
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&[10, 42, 0, 2]);
    p[16..20].copy_from_slice(&[10, 42, 0, 1]);
    p[28..36].copy_from_slice(&id.to_be_bytes());
    p
}

/// Writes a valid `mac1` (for the receiver `to`) into a handshake message
/// of the right length; leaves anything else alone.
pub fn fix_mac1(msg: &mut [u8], to: &PublicKey) {
    let mac1_at = match msg.len() {
        wire::INIT_LEN => wire::INIT_LEN - 2 * MAC_LEN,
        wire::RESP_LEN => wire::RESP_LEN - 2 * MAC_LEN,
        _ => return,
    };
    let mac = Mac1Key::for_receiver(to).compute(&msg[..mac1_at]);
    msg[mac1_at..mac1_at + MAC_LEN].copy_from_slice(&mac);
}
