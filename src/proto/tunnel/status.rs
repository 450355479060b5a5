//! The status snapshot served on the control socket.

use std::time::Instant;

use super::Tunnel;
use crate::proto::stats::{PeerStatus, Status};

impl Tunnel {
    /// A snapshot for `mlvpn-rs status`.
    pub fn status(&self, interface: &str, now: Instant) -> Status {
        Status {
            interface: interface.to_string(),
            mode: self.mode,
            drops: self.drops,
            peers: self
                .peers
                .iter()
                .map(|peer| PeerStatus {
                    public_key: peer.public_key.to_base64(),
                    paths: peer.paths.iter().map(|p| p.status(now)).collect(),
                    reorder: peer.reorder.stats(),
                    resent: peer.resent,
                })
                .collect(),
        }
    }
}
