//! A system without an implementation yet: the crate builds (the protocol
//! core, `check`, `status`), and every privileged step fails with
//! "unsupported" instead of doing something half right.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::OwnedFd;

use ipnet::IpNet;

use super::SandboxError;
use crate::config::{Mode, PathConfig};
use crate::platform::route_plan::RoutePlan;

pub const FULL_TUNNEL_TABLE: u32 = 0x6d6c;
pub const PATH_MARK: u32 = 0x6d6c;

fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{what}: not implemented on this system"),
    )
}

pub fn create_tun(
    _name: &str,
    _mtu: u16,
    _offload: bool,
) -> io::Result<(OwnedFd, crate::io::kernel_offloads::TunOffloads)> {
    Err(unsupported("TUN device"))
}

pub fn set_addresses(_dev: &str, _addresses: &[IpNet]) -> io::Result<()> {
    Err(unsupported("interface addresses"))
}

pub fn install_routes(_dev: &str, _plan: &RoutePlan) -> io::Result<usize> {
    Err(unsupported("routes"))
}

pub fn update_routes(_dev: &str, _old: &RoutePlan, _new: &RoutePlan) -> io::Result<()> {
    Err(unsupported("routes"))
}

pub fn remove_routes() -> io::Result<()> {
    Ok(())
}

pub fn full_tunnel_mechanism() -> String {
    "(full tunnel not implemented on this system)".into()
}

pub fn bind_on_device(_addr: SocketAddr, _dev: &str) -> io::Result<UdpSocket> {
    Err(unsupported("path.device"))
}

pub fn mark_path_socket(_s: &UdpSocket, mode: Mode) -> io::Result<()> {
    match mode {
        Mode::Client => Err(unsupported("fwmark")),
        Mode::Server => Ok(()),
    }
}

pub fn tune_path_socket(_s: &UdpSocket, _v6: bool, _gro: bool) -> bool {
    false
}

pub fn misrouted_path(_path: &PathConfig, _mode: Mode) -> io::Result<Option<(String, String)>> {
    Ok(None)
}

pub fn strict_reverse_path_filter(_path: &PathConfig) -> Option<String> {
    None
}

pub fn restrict_worker() -> Result<Option<&'static str>, SandboxError> {
    Ok(None)
}
