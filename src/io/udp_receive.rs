//! Receiving datagrams in batches: `recvmmsg` fills several 64 KB slots in
//! one system call, and with UDP_GRO each slot may hold a run of datagrams
//! from one sender, all `segment` bytes long but the last.

use std::io;
use std::mem::MaybeUninit;
use std::net::UdpSocket;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

/// Messages asked for per system call.
pub const SLOTS: usize = 8;
/// One slot: the largest (coalesced) UDP payload.
const SLOT_LEN: usize = 65536;

/// What one slot received.
#[derive(Clone, Copy, Debug)]
pub struct Received {
    pub len: usize,
    pub from: SocketAddr,
    /// Size of each coalesced datagram (the last may be shorter); `len`
    /// when the kernel coalesced nothing.
    pub segment: usize,
}

/// Room for the one control message read (UDP_GRO's segment size, an
/// int), with cmsghdr alignment.
const CONTROL_LEN: usize = 64;

/// The buffers of one batch, allocated once. The `mmsghdr` array is built
/// per call from them (the kernel shortens the name and control lengths
/// it was given, so reusing headers would lose later control messages).
pub struct ReceiveBatch {
    buf: Vec<u8>,
    names: Box<[libc::sockaddr_storage; SLOTS]>,
    control: Box<[[u64; CONTROL_LEN / 8]; SLOTS]>,
    received: [Option<Received>; SLOTS],
    count: usize,
}

impl Default for ReceiveBatch {
    fn default() -> Self {
        // SAFETY: sockaddr_storage is plain data for which all zeroes is valid.
        let zero_name: libc::sockaddr_storage = unsafe { MaybeUninit::zeroed().assume_init() };
        ReceiveBatch {
            buf: vec![0; SLOTS * SLOT_LEN],
            names: Box::new([zero_name; SLOTS]),
            control: Box::new([[0; CONTROL_LEN / 8]; SLOTS]),
            received: [None; SLOTS],
            count: 0,
        }
    }
}

impl ReceiveBatch {
    /// Receives what `socket` has queued, up to [`SLOTS`] messages, without
    /// waiting: `Ok(0)` when nothing is queued.
    pub fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.count = 0;
        match self.receive_now(socket.as_raw_fd()) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn receive_now(&mut self, fd: RawFd) -> io::Result<usize> {
        let mut iovs: [libc::iovec; SLOTS] = std::array::from_fn(|i| libc::iovec {
            iov_base: self.buf[i * SLOT_LEN..].as_mut_ptr().cast(),
            iov_len: SLOT_LEN,
        });
        // SAFETY: mmsghdr is plain data for which all zeroes is valid.
        let mut hdrs: [libc::mmsghdr; SLOTS] = unsafe { MaybeUninit::zeroed().assume_init() };
        for (i, h) in hdrs.iter_mut().enumerate() {
            h.msg_hdr.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &mut iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = self.control[i].as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = CONTROL_LEN as _;
        }
        // SAFETY: every pointer in `hdrs` points into buffers owned by `self`
        // or this frame that outlive the call, with the lengths given.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                SLOTS as _,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let count = r as usize;
        for (slot, h) in hdrs.iter().enumerate().take(count) {
            let len = h.msg_len as usize;
            let whole = h.msg_hdr.msg_flags & libc::MSG_TRUNC == 0;
            let segment = gro_segment(&h.msg_hdr).unwrap_or(len);
            self.received[slot] = match socket_addr(&self.names[slot]) {
                Some(from) if whole && len > 0 => Some(Received {
                    len,
                    from,
                    segment: segment.clamp(1, len),
                }),
                // A datagram cut short or without a sender is dropped.
                _ => None,
            };
        }
        self.count = count;
        Ok(count)
    }

    /// Slot `i` of the last batch: what it received and its bytes (`None`
    /// for a slot whose message was dropped).
    pub fn slot(&mut self, i: usize) -> Option<(Received, &mut [u8])> {
        if i >= self.count {
            return None;
        }
        let r = self.received[i]?;
        let start = i * SLOT_LEN;
        Some((r, &mut self.buf[start..start + r.len]))
    }
}

/// The UDP_GRO segment size in a received message's control data (Linux
/// only: elsewhere each message is one datagram).
#[cfg(not(target_os = "linux"))]
fn gro_segment(_m: &libc::msghdr) -> Option<usize> {
    None
}

/// The UDP_GRO segment size in a received message's control data.
#[cfg(target_os = "linux")]
fn gro_segment(m: &libc::msghdr) -> Option<usize> {
    // SAFETY: `m` was filled by recvmmsg: its control pointer and the length
    // the kernel wrote describe initialised control data, walked with the
    // CMSG macros that stay within it.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(m);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == libc::UDP_GRO {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::c_int);
                return usize::try_from(v).ok();
            }
            c = libc::CMSG_NXTHDR(m, c);
        }
    }
    None
}

/// The sender's address the kernel wrote.
fn socket_addr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a: &libc::sockaddr_in = unsafe { &*(s as *const libc::sockaddr_storage).cast() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(s as *const libc::sockaddr_storage).cast() };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}
