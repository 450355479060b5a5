//! The parties the stateful targets run: the server and client A of the
//! shared fixtures (`tests/fixtures`), plus peer B (authenticated but
//! hostile) and a stranger; their addresses and tunnels.

use std::time::{Duration, Instant};

use mlvpn_keys::PublicKey;
use mlvpn_rs::proto::mac::Mac1Key;
use mlvpn_rs::proto::tunnel::PeerSpec;
use mlvpn_rs::proto::wire::{self, MAC_LEN};
use mlvpn_rs::proto::Tunnel;

use crate::fixtures::{
    addr, client_config, ipv4_packet, path, peer, public, server_config, tunnel, CLIENT_IP, CLIENT_KEY,
    SERVER_IP, SERVER_KEY, SERVER_SOCKETS,
};

/// Peer "B": a configured client whose frames the fuzzer writes itself and
/// seals with real session keys (an authenticated but hostile peer).
pub const ROGUE_KEY: u8 = 3;
/// A key the server does not know.
pub const STRANGER_KEY: u8 = 4;

/// Endpoint of the client's second path: nothing answers there, so the
/// client always has a handshake pending on it.
pub const BLACKHOLE: &str = "192.0.2.1:5080";
pub const ROGUE_ADDR: &str = "10.103.0.1:40000";
/// Inner addresses: A is 10.42.0.2, B may use 10.42.0.6 and fd42::6.
pub const CLIENT_ALLOWED: [&str; 1] = ["10.42.0.2/32"];
pub const ROGUE_ALLOWED: [&str; 2] = ["10.42.0.6/32", "fd42::6/128"];

/// The server's peers: A, and B if `with_rogue`.
pub fn server_peers(with_rogue: bool) -> Vec<PeerSpec> {
    let mut peers = vec![peer(public(CLIENT_KEY), &CLIENT_ALLOWED)];
    if with_rogue {
        peers.push(peer(public(ROGUE_KEY), &ROGUE_ALLOWED));
    }
    peers
}

/// The server: peers A and B, keepalive 1 s, path timeout 3 s.
pub fn server_tunnel(start: Instant) -> Tunnel {
    tunnel(server_config(SERVER_KEY, server_peers(true)), start, start)
}

/// Client A: path 0 to the server's first socket, path 1 into the void;
/// rekeys every 40 s.
pub fn client_tunnel(start: Instant) -> Tunnel {
    let mut cfg = client_config(
        CLIENT_KEY,
        vec![
            path("p0", 0, addr(SERVER_SOCKETS[0])),
            path("void", 1, addr(BLACKHOLE)),
        ],
    );
    // Sooner than the default, so a pair's life sees rekeys.
    cfg.settings.rekey_after = Duration::from_secs(40);
    tunnel(cfg, start, start)
}

/// A minimal IPv4/UDP packet from A (10.42.0.2) to the server (10.42.0.1)
/// carrying `id`; 36 to 1400 bytes.
pub fn client_packet(id: u64, len: usize) -> Vec<u8> {
    ipv4_packet(CLIENT_IP, SERVER_IP, id, len.clamp(36, 1400))
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
