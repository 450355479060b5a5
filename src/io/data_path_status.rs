//! What the data path uses and how much it batched, for `mlvpn-rs
//! status`: an operator can see whether the kernel took the offloads and
//! whether they are working (trains sent, super-packets read and written).

use serde::{Deserialize, Serialize};

/// Offloads in use and batching counters since start.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPathStatus {
    /// TUN reads and writes carry a virtio-net header.
    pub tun_vnet_hdr: bool,
    /// The TUN hands over and takes TCP super-packets.
    pub tun_tso: bool,
    /// The same for UDP.
    pub tun_uso: bool,
    /// Datagrams leave in GSO trains (false after a refusal).
    pub udp_gso: bool,
    /// Path sockets were asked to coalesce what they receive.
    pub udp_gro: bool,
    /// TUN reads that were super-packets (split into segments).
    pub tun_super_packets_read: u64,
    /// TUN writes that were joined super-packets.
    pub tun_super_packets_written: u64,
    /// GSO sends of two or more datagrams.
    pub udp_trains_sent: u64,
    /// Datagrams that left in those trains.
    pub udp_datagrams_in_trains: u64,
    /// TUN reads dropped: a virtio header or super-packet that made no sense.
    pub tun_reads_malformed: u64,
}
