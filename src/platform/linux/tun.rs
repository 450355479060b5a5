//! Creating the TUN device with the `tun` crate (privileged, in the
//! parent); the worker reads and writes its descriptor (`io::tun_device`).

use std::io;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

/// Creates (or attaches to) the TUN device `name` with `mtu`, up, and
/// returns its descriptor (close-on-exec).
pub fn create_tun(name: &str, mtu: u16) -> io::Result<OwnedFd> {
    let mut cfg = ::tun::Configuration::default();
    cfg.tun_name(name).mtu(mtu).up();
    let dev =
        ::tun::create(&cfg).map_err(|e| io::Error::other(format!("cannot create TUN device {name}: {e}")))?;
    // SAFETY: into_raw_fd hands over the only owner of this open descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(dev.into_raw_fd()) };
    nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))?;
    Ok(fd)
}
