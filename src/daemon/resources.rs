//! The parent's privileged set-up of what the worker runs on: the TUN
//! device and its addresses, every path's socket and the control socket.

use std::io;

use tracing::info;

use super::path_socket;
use crate::config::Config;
use crate::io::control;
use crate::io::driver::Resources;
use crate::io::kernel_offloads::{self, KernelOffloads};
use crate::platform;
use crate::proto::ids::SocketIds;

/// Creates the TUN device (addresses, MTU), the control socket and every
/// path's socket. Needs root; nothing here reads network input. Routes are
/// the parent's ([`super::installed_routes`]): it keeps them up to date.
/// Each socket gets a fresh id from `ids`.
pub fn open_resources(config: &Config, ids: &mut SocketIds) -> io::Result<Resources> {
    let mtu = config.tun_mtu();
    let name = &config.interface.name;
    let wanted = kernel_offloads::offloads_wanted();
    let (tun, tun_offloads) = platform::create_tun(name, mtu, wanted)?;
    let offloads = KernelOffloads {
        tun: tun_offloads,
        udp_gso: wanted,
        udp_gro: wanted,
    };
    platform::set_addresses(name, &config.interface.address)?;
    let mut sockets = Vec::new();
    for p in &config.paths {
        let s = path_socket::bind_path(p, config.mode)?;
        info!(path = %p.name, local = ?s.local_addr().ok(), endpoint = ?p.endpoint, "path socket bound");
        sockets.push((ids.fresh(), s));
    }
    let control = control::bind(&config.interface.control_socket)?;
    info!(interface = %name, mtu, mode = ?config.mode, paths = config.paths.len(), peers = config.peers.len(), ?offloads, "resources open");
    Ok(Resources {
        tun,
        offloads,
        control,
        sockets,
    })
}
