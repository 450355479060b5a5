//! The parent/worker channel: a SOCK_SEQPACKET socketpair (message
//! boundaries kept by the kernel) that can carry descriptors (SCM_RIGHTS).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag,
    SockType,
};

use zeroize::Zeroizing;

use crate::bulk::{Chunks, Reassembly, MAX_BULK};
use crate::msg::{Reply, MAX_MESSAGE};

/// Most descriptors one message may carry.
pub const MAX_FDS: usize = 64;

/// (parent end, worker end). Both close-on-exec; the parent clears the flag
/// on the worker's end for exec.
pub fn pair() -> nix::Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
}

/// Sends one message with descriptors attached.
pub fn send(sock: BorrowedFd<'_>, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> nix::Result<()> {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let cmsg = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &cmsg };
    let n = sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(bytes)],
        cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    if n != bytes.len() {
        return Err(Errno::EMSGSIZE);
    }
    Ok(())
}

/// Receives one message into `buf`; returns its length (0 = peer closed) and
/// the descriptors it carried (close-on-exec). A truncated message or
/// descriptor list is an error (and the descriptors are closed).
pub fn recv(sock: BorrowedFd<'_>, buf: &mut [u8]) -> nix::Result<(usize, Vec<OwnedFd>)> {
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            for fd in raw {
                // SAFETY: the kernel just installed this descriptor for us; nothing else owns it.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    if msg.flags.intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC) {
        return Err(Errno::EMSGSIZE);
    }
    Ok((msg.bytes, fds))
}

/// A receive buffer large enough for any message.
pub fn buffer() -> Vec<u8> {
    vec![0; MAX_MESSAGE + 1]
}

fn invalid(e: crate::msg::MsgError) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e)
}

/// The header of a large message of `payload` bytes ([`crate::bulk`]):
/// `Reply::Handover` or `Reply::Reload` as `make` builds it from the length.
fn bulk_header(make: fn(u32) -> Reply, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    match u32::try_from(payload.len()) {
        Ok(len) if payload.len() <= MAX_BULK => Ok(make(len).encode()),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "a message of {} bytes exceeds the limit of {} MiB",
                payload.len(),
                MAX_BULK >> 20
            ),
        )),
    }
}

/// Receives the chunks of a large message whose header declared `len`
/// bytes, blocking (the worker's hand-over, before its event loop runs).
/// `buf` is a [`buffer`]; it is wiped afterwards.
pub fn recv_chunks(sock: BorrowedFd<'_>, len: u32, buf: &mut [u8]) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut r = Reassembly::new(len).map_err(invalid)?;
    let result = loop {
        if r.is_complete() {
            break r.into_bytes().map_err(invalid);
        }
        match recv(sock, buf) {
            Ok((0, fds)) if fds.is_empty() => break r.into_bytes().map_err(invalid),
            Ok((n, fds)) => {
                if let Err(e) = r.push(&buf[..n], fds.len()) {
                    break Err(invalid(e));
                }
            }
            Err(Errno::EINTR) => continue,
            Err(e) => break Err(e.into()),
        }
    };
    zeroize::Zeroize::zeroize(&mut buf[..]);
    result
}

/// Async wrapper for the worker's and parent's event loops.
pub struct AsyncChannel {
    fd: tokio::io::unix::AsyncFd<OwnedFd>,
}

impl AsFd for AsyncChannel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }
}

impl AsyncChannel {
    pub fn new(fd: OwnedFd) -> std::io::Result<Self> {
        nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))?;
        // SAFETY: OwnedFd keeps the same open descriptor until the AsyncFd drops it.
        let fd = unsafe { tokio::io::unix::AsyncFd::register(fd) }.map_err(std::io::Error::from)?;
        Ok(AsyncChannel { fd })
    }

    pub async fn recv(&self, buf: &mut [u8]) -> std::io::Result<(usize, Vec<OwnedFd>)> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| recv(fd.get_ref().as_fd(), buf).map_err(std::io::Error::from)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Receives a message if one is waiting, without waiting for one.
    pub fn try_recv(&self, buf: &mut [u8]) -> std::io::Result<Option<(usize, Vec<OwnedFd>)>> {
        match recv(self.as_fd(), buf) {
            Ok(r) => Ok(Some(r)),
            Err(Errno::EAGAIN) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends one message if the socket takes it now: `Ok(false)` when the
    /// peer's receive queue is full (nothing was sent).
    pub fn try_send(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> std::io::Result<bool> {
        match send(self.as_fd(), bytes, fds) {
            Ok(()) => Ok(true),
            Err(Errno::EAGAIN) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends a large message ([`crate::bulk`]): the header `make` builds
    /// from the length (`|len| Reply::Handover { len }`), with `fds`, then
    /// the chunks. Waits while the worker's receive buffer is full.
    pub async fn send_bulk(
        &self,
        make: fn(u32) -> Reply,
        payload: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> std::io::Result<()> {
        self.send(&bulk_header(make, payload)?, fds).await?;
        let mut chunks = Chunks::new(payload);
        while let Some(c) = chunks.next_chunk() {
            self.send(c, &[]).await?;
        }
        Ok(())
    }

    /// Receives the chunks of a large message whose header declared `len`
    /// bytes (see [`recv_chunks`]).
    pub async fn recv_chunks(&self, len: u32, buf: &mut [u8]) -> std::io::Result<Zeroizing<Vec<u8>>> {
        let mut r = Reassembly::new(len).map_err(invalid)?;
        while !r.is_complete() {
            match self.recv(buf).await? {
                (0, fds) if fds.is_empty() => break,
                (n, fds) => r.push(&buf[..n], fds.len()).map_err(invalid)?,
            };
        }
        r.into_bytes().map_err(invalid)
    }

    pub async fn send(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| send(fd.get_ref().as_fd(), bytes, fds).map_err(std::io::Error::from)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }
}
