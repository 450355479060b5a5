//! Which kernel offloads the data path uses: decided by the parent when it
//! opens the TUN device and the path sockets (what the kernel accepted),
//! handed to the worker with its descriptors.
//!
//! `MLVPN_OFFLOAD=off` in the daemon's environment forces the plain path
//! (one packet per read, write, send and receive): the fallback every
//! kernel without these features runs, kept testable on one that has them.

use serde::{Deserialize, Serialize};

/// The environment variable that turns every offload off.
pub const OFFLOAD_ENV: &str = "MLVPN_OFFLOAD";

/// What the TUN device was opened with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunOffloads {
    /// Every read and write carries a virtio-net header.
    pub vnet_hdr: bool,
    /// The kernel hands over and accepts TCP super-packets (TSO/GRO).
    pub tso: bool,
    /// The same for UDP (USO, Linux 6.2 and later).
    pub uso: bool,
}

/// The data path's offloads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelOffloads {
    pub tun: TunOffloads,
    /// Path sockets may send a train of equal datagrams in one `sendmsg`
    /// (UDP_SEGMENT); turned off at the first refusal.
    pub udp_gso: bool,
    /// Path sockets were asked to coalesce received datagrams (UDP_GRO).
    pub udp_gro: bool,
}

/// Whether the environment allows offloads (anything but `off`, `0`,
/// `no` or `false` in [`OFFLOAD_ENV`]).
pub fn offloads_wanted() -> bool {
    match std::env::var(OFFLOAD_ENV) {
        Ok(v) => !matches!(v.to_ascii_lowercase().as_str(), "off" | "0" | "no" | "false"),
        Err(_) => true,
    }
}
