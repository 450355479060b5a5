//! Counters and the status snapshot served on the control socket, as plain
//! data (its JSON form is built outside the core, in `status_json`).
//!
//! Field names are a stable interface (DESIGN.md): monitoring and tests read
//! them. Extend, do not rename.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::path::PathState;
use super::Mode;

/// Datagrams and packets dropped, by cause. Every drop of untrusted input
/// is counted here; none is logged per packet.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Drops {
    /// Not a well-formed message (type, length, reserved bytes, inner frame).
    pub malformed: u64,
    /// Data for a session index we do not have.
    pub unknown_index: u64,
    /// Counter already seen or older than the replay window.
    pub replayed: u64,
    /// Decryption failed (forged or corrupted).
    pub auth_failed: u64,
    pub handshake_bad_mac: u64,
    pub handshake_unknown_peer: u64,
    /// Initiation not newer than the last accepted one for that path.
    pub handshake_replayed: u64,
    /// Initiation/response that failed Noise processing or had no matching
    /// pending handshake.
    pub handshake_invalid: u64,
    /// Initiation answered with a cookie instead of a handshake (server
    /// under load, no valid `mac2`).
    #[serde(default)]
    pub handshake_cookie_sent: u64,
    /// Initiation with a valid `mac2` over its address's handshake rate.
    #[serde(default)]
    pub handshake_rate_limited: u64,
    /// Packet from the TUN for an address no peer is allowed.
    pub no_route: u64,
    /// Inner packet whose source the sending peer is not allowed to use.
    pub source_not_allowed: u64,
    /// Datagram larger than its path's MTU (EMSGSIZE); later ones of that
    /// size avoid the path.
    #[serde(default)]
    pub too_big: u64,
    /// Packet from the TUN while no path of its peer is up.
    pub no_path: u64,
    /// Control message dropped because the outgoing control queue was full.
    pub queue_full: u64,
}

/// The non-zero counters, `name=count` separated by spaces.
impl std::fmt::Display for Drops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (k, v) in self.fields().into_iter().filter(|(_, v)| *v > 0) {
            write!(f, "{}{k}={v}", if first { "" } else { " " })?;
            first = false;
        }
        Ok(())
    }
}

impl Drops {
    /// What was counted since `earlier` (field by field).
    pub fn since(&self, earlier: &Drops) -> Drops {
        let mut diff = *self;
        for (field, before) in diff.fields_mut().into_iter().zip(earlier.fields()) {
            *field = field.saturating_sub(before.1);
        }
        diff
    }

    /// (name, count) of every counter, by name: the names of the status
    /// JSON (checked by `status_json`'s tests).
    pub fn fields(&self) -> [(&'static str, u64); 15] {
        [
            ("auth_failed", self.auth_failed),
            ("handshake_bad_mac", self.handshake_bad_mac),
            ("handshake_cookie_sent", self.handshake_cookie_sent),
            ("handshake_invalid", self.handshake_invalid),
            ("handshake_rate_limited", self.handshake_rate_limited),
            ("handshake_replayed", self.handshake_replayed),
            ("handshake_unknown_peer", self.handshake_unknown_peer),
            ("malformed", self.malformed),
            ("no_path", self.no_path),
            ("no_route", self.no_route),
            ("queue_full", self.queue_full),
            ("replayed", self.replayed),
            ("source_not_allowed", self.source_not_allowed),
            ("too_big", self.too_big),
            ("unknown_index", self.unknown_index),
        ]
    }

    /// Every counter, in the order of [`Drops::fields`].
    fn fields_mut(&mut self) -> [&mut u64; 15] {
        [
            &mut self.auth_failed,
            &mut self.handshake_bad_mac,
            &mut self.handshake_cookie_sent,
            &mut self.handshake_invalid,
            &mut self.handshake_rate_limited,
            &mut self.handshake_replayed,
            &mut self.handshake_unknown_peer,
            &mut self.malformed,
            &mut self.no_path,
            &mut self.no_route,
            &mut self.queue_full,
            &mut self.replayed,
            &mut self.source_not_allowed,
            &mut self.too_big,
            &mut self.unknown_index,
        ]
    }

    pub fn total(&self) -> u64 {
        self.malformed
            + self.unknown_index
            + self.replayed
            + self.auth_failed
            + self.handshake_bad_mac
            + self.handshake_unknown_peer
            + self.handshake_replayed
            + self.handshake_invalid
            + self.handshake_cookie_sent
            + self.handshake_rate_limited
            + self.no_route
            + self.source_not_allowed
            + self.no_path
            + self.queue_full
            + self.too_big
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PathStatus {
    pub name: String,
    pub state: PathState,
    pub endpoint: Option<SocketAddr>,
    pub srtt_ms: Option<f64>,
    pub rttvar_ms: Option<f64>,
    /// Loss rate (0..1) from receive reports; `None` until enough was sent.
    pub loss: Option<f64>,
    /// Highest delivery rate measured in the last second (Mbit/s).
    pub rate_mbps: Option<f64>,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub rx_packets: u64,
    pub handshakes: u64,
    pub endpoint_changes: u64,
    pub last_handshake_ago_ms: Option<u64>,
}

/// Resequencing queue counters (per peer, receive side).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ReorderStatus {
    /// Delivered at once, in sequence.
    pub in_order: u64,
    /// Arrived early, held, then delivered in sequence.
    pub reordered: u64,
    /// Arrived after its hole was skipped; delivered out of order.
    pub late: u64,
    /// Seen before; dropped.
    pub duplicate: u64,
    /// Sequence numbers given up on (lost, or later than the timeout).
    pub skipped: u64,
    /// Times the queue was full and skipped a hole early.
    pub overflows: u64,
    /// Times a hole was skipped because the hold timeout expired (the
    /// others were skipped as soon as every path had delivered past them).
    #[serde(default)]
    pub timeouts: u64,
    /// Times the peer's sequence started over (it restarted, or was unheard
    /// for more than the replay window).
    #[serde(default)]
    pub resyncs: u64,
    /// Packets held now, and the most ever held.
    pub held: u64,
    pub max_held: u64,
    /// Current adaptive hold timeout, and the longest hold so far.
    pub hold_timeout_ms: f64,
    pub max_hold_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PeerStatus {
    pub public_key: String,
    pub paths: Vec<PathStatus>,
    pub reorder: ReorderStatus,
    /// Data packets re-sent on a live path because theirs died unreported.
    #[serde(default)]
    pub resent: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Status {
    pub interface: String,
    pub mode: Mode,
    pub drops: Drops,
    pub peers: Vec<PeerStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_fields_mut_name_the_same_counters() {
        let mut d = Drops::default();
        for (i, f) in d.fields_mut().into_iter().enumerate() {
            *f = i as u64 + 1;
        }
        let counts: Vec<u64> = d.fields().iter().map(|(_, v)| *v).collect();
        assert_eq!(counts, (1..=15).collect::<Vec<u64>>());
        assert_eq!(d.total(), (1..=15).sum::<u64>());
        assert!(d.fields().windows(2).all(|w| w[0].0 < w[1].0), "sorted by name");
    }

    #[test]
    fn drops_since_and_display_name_only_what_changed() {
        let before = Drops {
            malformed: 5,
            replayed: 1,
            ..Default::default()
        };
        let after = Drops {
            malformed: 12,
            replayed: 1,
            handshake_cookie_sent: 3,
            ..Default::default()
        };
        let d = after.since(&before);
        assert_eq!(d.malformed, 7);
        assert_eq!(d.replayed, 0);
        assert_eq!(d.total(), 10);
        assert_eq!(d.to_string(), "handshake_cookie_sent=3 malformed=7");
    }
}
