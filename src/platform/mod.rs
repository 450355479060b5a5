//! What differs per operating system, behind one interface: creating and
//! configuring the TUN device, the routes and the full tunnel's policy
//! routing, the privileged options of a path socket, the parent's checks
//! of the host's uplinks, and the worker's sandbox.
//!
//! Linux is the only implementation for now ([`linux`]); another system
//! implements the same functions in its own module, and nothing outside
//! this module names the operating system.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::OwnedFd;

use ipnet::IpNet;

use crate::config::{Mode, PathConfig};

/// Which prefix goes to which table: the same on every system, the input
/// of the route functions below (here, so that the platform depends on
/// nothing in `daemon`).
pub mod route_plan;
use route_plan::RoutePlan;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as os;

/// Elsewhere: builds, and every privileged step fails with "unsupported".
#[cfg(not(target_os = "linux"))]
mod unsupported;
#[cfg(not(target_os = "linux"))]
use unsupported as os;

/// The full tunnel's routing table (shown in logs and by `check`).
pub const FULL_TUNNEL_TABLE: u32 = os::FULL_TUNNEL_TABLE;
/// What tells a client path's own datagrams from the traffic they carry
/// (shown in logs and by `check`).
pub const PATH_MARK: u32 = os::PATH_MARK;

/// Creates (or attaches to) the TUN device `name` with `mtu`, up, and
/// returns its descriptor (close-on-exec) and the offloads the kernel
/// accepted (none unless `offload`).
pub fn create_tun(
    name: &str,
    mtu: u16,
    offload: bool,
) -> io::Result<(OwnedFd, crate::io::kernel_offloads::TunOffloads)> {
    os::create_tun(name, mtu, offload)
}

/// Adds the configured addresses to the device.
pub fn set_addresses(dev: &str, addresses: &[IpNet]) -> io::Result<()> {
    os::set_addresses(dev, addresses)
}

/// Installs `plan` on device `dev` from any earlier state (what a run that
/// died left is replaced, never doubled). Returns how many stale policy
/// rules were replaced.
pub fn install_routes(dev: &str, plan: &RoutePlan) -> io::Result<usize> {
    os::install_routes(dev, plan)
}

/// Changes the installed `old` plan into `new` (a reload) without letting
/// a packet leave in the clear meanwhile.
pub fn update_routes(dev: &str, old: &RoutePlan, new: &RoutePlan) -> io::Result<()> {
    os::update_routes(dev, old, new)
}

/// Removes the full tunnel's rules and table (routes in the main table go
/// with the TUN device); also what a crashed run left.
pub fn remove_routes() -> io::Result<()> {
    os::remove_routes()
}

/// One line for `check`: how a full tunnel is routed on this system.
pub fn full_tunnel_mechanism() -> String {
    os::full_tunnel_mechanism()
}

/// A UDP socket tied to network interface `dev`, then bound to `addr`: its
/// traffic leaves through `dev` with whatever address `dev` has now.
pub fn bind_on_device(addr: SocketAddr, dev: &str) -> io::Result<UdpSocket> {
    os::bind_on_device(addr, dev)
}

/// Marks a path socket of a `mode` daemon so that the full tunnel's
/// routing leaves its datagrams alone (a client's; a server's is left as
/// it is). Not best effort: an unmarked path socket would send its
/// datagrams into a full tunnel. The error names the mark.
pub fn mark_path_socket(s: &UdpSocket, mode: Mode) -> io::Result<()> {
    os::mark_path_socket(s, mode)
}

/// Large buffers and no fragmentation on a path socket, and receive
/// coalescing (UDP_GRO) when `gro`: best effort; returns whether GRO is on.
pub fn tune_path_socket(s: &UdpSocket, v6: bool, gro: bool) -> bool {
    os::tune_path_socket(s, v6, gro)
}

/// For a client path: `Some((interface holding its bind address, interface
/// its datagrams to the endpoint would leave through))` when they differ.
/// Paths tied to a device, bound to a wildcard address or without an
/// endpoint give `None`.
pub fn misrouted_path(path: &PathConfig, mode: Mode) -> io::Result<Option<(String, String)>> {
    os::misrouted_path(path, mode)
}

/// The uplink of an IPv4 client path (its device, else the interface
/// holding its bind address) when its reverse-path filter would drop the
/// server's replies under a full tunnel.
pub fn strict_reverse_path_filter(path: &PathConfig) -> Option<String> {
    os::strict_reverse_path_filter(path)
}

/// The worker's last step before reading network input: the system-call
/// filter. Returns what was installed, for the log (`None`: this system
/// has none).
pub fn restrict_worker() -> Result<Option<&'static str>, SandboxError> {
    os::restrict_worker()
}

/// The worker's sandbox could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SandboxError(pub String);
