//! One UDP socket per configured path.

use std::io;
use std::net::UdpSocket as StdUdpSocket;

use crate::config::PathConfig;

/// Binds `path.bind` (non-blocking, for tokio). Errors name the path.
pub fn bind_path(path: &PathConfig) -> io::Result<StdUdpSocket> {
    let std = StdUdpSocket::bind(path.bind).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("path {}: cannot bind {}: {e}", path.name, path.bind),
        )
    })?;
    std.set_nonblocking(true)?;
    grow_buffers(&std);
    Ok(std)
}

/// Socket buffer size asked for: bursts from a fast TUN must not overflow
/// the kernel's default (~200 KiB) while the event loop is busy.
const SOCKET_BUFFER: usize = 4 << 20;

/// Raises the send and receive buffers; as root past `rmem_max`
/// (`SO_*BUFFORCE`), otherwise as far as the sysctl allows. Best effort.
fn grow_buffers(s: &StdUdpSocket) {
    use nix::sys::socket::{setsockopt, sockopt};
    if setsockopt(s, sockopt::RcvBufForce, &SOCKET_BUFFER).is_err() {
        let _ = setsockopt(s, sockopt::RcvBuf, &SOCKET_BUFFER);
    }
    if setsockopt(s, sockopt::SndBufForce, &SOCKET_BUFFER).is_err() {
        let _ = setsockopt(s, sockopt::SndBuf, &SOCKET_BUFFER);
    }
}
