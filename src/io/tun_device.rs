//! The TUN device in the worker: the descriptor the parent created
//! ([`crate::platform::create_tun`]), non-blocking, read by the sending
//! thread and written by the receiving one (a TUN descriptor takes
//! concurrent reads and writes).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// An open TUN device (layer 3, no packet-information header).
pub struct TunDevice {
    fd: OwnedFd,
    pub name: String,
}

impl TunDevice {
    /// Wraps a TUN descriptor made by [`crate::platform::create_tun`]
    /// (possibly in another process).
    pub fn from_fd(fd: OwnedFd, name: &str) -> io::Result<TunDevice> {
        nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))?;
        Ok(TunDevice {
            fd,
            name: name.to_string(),
        })
    }

    /// For waiting on it (`poll`).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads one packet if one is there: `None` when the queue is empty.
    pub fn read_now(&self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        match nix::unistd::read(&self.fd, buf) {
            Ok(n) => Some(Ok(n)),
            Err(nix::errno::Errno::EAGAIN) => None,
            Err(e) => Some(Err(io::Error::new(
                io::Error::from(e).kind(),
                format!("reading TUN {}: {e}", self.name),
            ))),
        }
    }

    /// Writes one packet now. A TUN write does not wait for the stack
    /// (the kernel queues it); a failure is logged and returned.
    pub fn write_now(&self, packet: &[u8]) -> io::Result<()> {
        match nix::unistd::write(&self.fd, packet) {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::debug!("TUN write failed: {e}");
                Err(e.into())
            }
        }
    }
}
