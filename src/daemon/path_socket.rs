//! One UDP socket per configured path, bound by the parent (binding to a
//! device and marking need privileges the worker does not have).

use std::io;
use std::net::UdpSocket as StdUdpSocket;

use crate::config::{Mode, PathConfig};
use crate::platform;

/// Binds `path.bind`, on `path.device` if set (non-blocking, for tokio),
/// marked for a `mode` daemon's full tunnel (see
/// [`platform::mark_path_socket`]). Errors name the path.
pub fn bind_path(path: &PathConfig, mode: Mode) -> io::Result<StdUdpSocket> {
    let bound = match &path.device {
        None => StdUdpSocket::bind(path.bind),
        Some(dev) => platform::bind_on_device(path.bind, dev),
    };
    let std = bound.map_err(|e| {
        let on = path
            .device
            .as_ref()
            .map(|d| format!(" on {d}"))
            .unwrap_or_default();
        io::Error::new(
            e.kind(),
            format!("path {}: cannot bind {}{on}: {e}", path.name, path.bind),
        )
    })?;
    platform::mark_path_socket(&std, mode)
        .map_err(|e| io::Error::new(e.kind(), format!("path {}: {e}", path.name)))?;
    std.set_nonblocking(true)?;
    let gro = crate::io::kernel_offloads::offloads_wanted();
    platform::tune_path_socket(&std, path.bind.is_ipv6(), gro);
    Ok(std)
}
