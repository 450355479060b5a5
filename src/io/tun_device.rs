//! The TUN device, created with the `tun` crate, read and written without
//! blocking through tokio's `AsyncFd`.

use std::io;

use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};

/// An open TUN device (layer 3, no packet-information header).
pub struct TunDevice {
    fd: AsyncFd<tun::Device>,
    pub name: String,
}

impl TunDevice {
    /// Creates (or attaches to) the TUN device `name` with `mtu`, up.
    pub fn create(name: &str, mtu: u16) -> io::Result<TunDevice> {
        let mut cfg = tun::Configuration::default();
        cfg.tun_name(name).mtu(mtu).up();
        let dev = tun::create(&cfg)
            .map_err(|e| io::Error::other(format!("cannot create TUN device {name}: {e}")))?;
        dev.set_nonblock()?;
        // SAFETY: `tun::Device` owns its descriptor and returns the same open fd
        // from `as_raw_fd` until it is dropped, which happens with the AsyncFd.
        let fd = unsafe { AsyncFd::register(dev) }.map_err(io::Error::from)?;
        Ok(TunDevice {
            fd,
            name: name.to_string(),
        })
    }

    /// Waits until a packet can be read.
    pub async fn readable(&self) -> io::Result<AsyncFdReadyGuard<'_, tun::Device>> {
        self.fd.readable().await
    }

    /// Reads one packet if one is there: `None` once the queue is empty (the
    /// guard's readiness is then cleared).
    pub fn try_recv(
        guard: &mut AsyncFdReadyGuard<'_, tun::Device>,
        buf: &mut [u8],
    ) -> Option<io::Result<usize>> {
        guard.try_io(|d| d.get_ref().recv(buf)).ok()
    }

    /// Writes one packet; waits only if the device's queue is full.
    pub async fn write(&self, packet: &[u8]) -> io::Result<()> {
        loop {
            match self.fd.get_ref().send(packet) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let mut guard = self.fd.writable().await?;
                    guard.clear_ready();
                }
                r => return r.map(|_| ()),
            }
        }
    }
}
