//! The status snapshot served on the control socket.

use std::time::Instant;

use super::Tunnel;
use crate::proto::stats::{PathStatus, PeerStatus, Status};

impl Tunnel {
    /// A snapshot for `mlvpn-rs status`.
    pub fn status(&self, interface: &str, now: Instant) -> Status {
        Status {
            interface: interface.to_string(),
            mode: self.mode.as_str().into(),
            drops: self.drops,
            peers: self
                .peers
                .iter()
                .map(|peer| PeerStatus {
                    public_key: peer.public_key.to_base64(),
                    paths: peer
                        .paths
                        .iter()
                        .map(|p| PathStatus {
                            name: p.name.clone(),
                            state: p.state.as_str().into(),
                            endpoint: p.endpoint.map(|e| e.to_string()),
                            srtt_ms: p.rtt.srtt().map(|d| d.as_secs_f64() * 1000.0),
                            rttvar_ms: p.rtt.srtt().map(|_| p.rtt.rttvar().as_secs_f64() * 1000.0),
                            loss: p.estimator.loss(),
                            rate_mbps: p.estimator.rate_bps().map(|r| r / 1e6),
                            tx_bytes: p.counters.tx_bytes,
                            rx_bytes: p.counters.rx_bytes,
                            tx_packets: p.counters.tx_packets,
                            rx_packets: p.counters.rx_packets,
                            handshakes: p.counters.handshakes,
                            endpoint_changes: p.counters.endpoint_changes,
                            last_handshake_ago_ms: p
                                .last_handshake
                                .map(|t| now.saturating_duration_since(t).as_millis() as u64),
                        })
                        .collect(),
                    reorder: peer.reorder.stats(),
                    resent: peer.resent,
                })
                .collect(),
        }
    }
}
