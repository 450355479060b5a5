//! One UDP socket per configured path.

use std::io;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};

use tokio::net::UdpSocket;

use crate::config::PathConfig;

/// Binds `path.bind` (non-blocking, for tokio). Errors name the path.
pub fn bind_path(path: &PathConfig) -> io::Result<UdpSocket> {
    let std = StdUdpSocket::bind(path.bind).map_err(|e| {
        io::Error::new(e.kind(), format!("path {}: cannot bind {}: {e}", path.name, path.bind))
    })?;
    std.set_nonblocking(true)?;
    UdpSocket::from_std(std)
}

/// The address a socket actually got (port 0 resolved).
pub fn local_addr(s: &UdpSocket) -> Option<SocketAddr> {
    s.local_addr().ok()
}
