//! The TUN device in the worker: the descriptor the parent created
//! ([`crate::platform::create_tun`]), read and written without blocking
//! through tokio's `AsyncFd`.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};

/// An open TUN device (layer 3, no packet-information header).
pub struct TunDevice {
    fd: AsyncFd<OwnedFd>,
    pub name: String,
}

impl TunDevice {
    /// Wraps a TUN descriptor made by [`crate::platform::create_tun`]
    /// (possibly in another process).
    pub fn from_fd(fd: OwnedFd, name: &str) -> io::Result<TunDevice> {
        nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))?;
        // SAFETY: OwnedFd keeps the same open descriptor until the AsyncFd drops it.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(TunDevice {
            fd,
            name: name.to_string(),
        })
    }

    /// Waits until a packet can be read.
    pub async fn readable(&self) -> io::Result<AsyncFdReadyGuard<'_, OwnedFd>> {
        self.fd.readable().await
    }

    /// Reads one packet if one is there: `None` once the queue is empty (the
    /// guard's readiness is then cleared).
    pub fn try_recv(guard: &mut AsyncFdReadyGuard<'_, OwnedFd>, buf: &mut [u8]) -> Option<io::Result<usize>> {
        guard
            .try_io(|d| nix::unistd::read(d.get_ref(), buf).map_err(io::Error::from))
            .ok()
    }

    /// Reads one packet if one is there, without waiting for tokio to
    /// learn that the device is readable: after a TUN write the local stack
    /// often answers at once (an echo reply, a TCP ACK), and sending that
    /// before anything else saves the peer a round of waiting. `None`: the
    /// queue is empty (tokio's readiness, still set, is cleared by the next
    /// [`Self::try_recv`]).
    pub fn read_now(&self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        match nix::unistd::read(self.fd.get_ref(), buf) {
            Ok(n) => Some(Ok(n)),
            Err(nix::errno::Errno::EAGAIN) => None,
            Err(e) => Some(Err(e.into())),
        }
    }

    /// Writes one packet now. A TUN write does not wait for the stack
    /// (the kernel queues it); a failure is logged and returned.
    pub fn write_now(&self, packet: &[u8]) -> io::Result<()> {
        match nix::unistd::write(self.fd.get_ref().as_fd(), packet) {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::debug!("TUN write failed: {e}");
                Err(e.into())
            }
        }
    }

    /// Writes one packet; waits only if the device's queue is full.
    pub async fn write(&self, packet: &[u8]) -> io::Result<()> {
        loop {
            match nix::unistd::write(self.fd.get_ref().as_fd(), packet).map_err(io::Error::from) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let mut guard = self.fd.writable().await?;
                    guard.clear_ready();
                }
                r => return r.map(|_| ()),
            }
        }
    }
}
