//! The privileged options of a path socket: fwmark (SO_MARK), a device
//! (SO_BINDTODEVICE), buffers past the sysctl limit (SO_*BUFFORCE), and
//! Don't Fragment (IP_MTU_DISCOVER).

use std::io;
use std::net::UdpSocket as StdUdpSocket;

use super::policy_routing::MARK;
use crate::config::Mode;

/// A client's path sockets are always marked: a reload may turn a full
/// tunnel on, and another client's full tunnel on the same host then leaves
/// this one's datagrams alone too. A server installs no rules.
pub fn mark_path_socket(s: &StdUdpSocket, mode: Mode) -> io::Result<()> {
    if mode != Mode::Client {
        return Ok(());
    }
    set_mark(s, MARK).map_err(|e| io::Error::new(e.kind(), format!("fwmark {MARK:#x}: {e}")))
}

/// Large buffers and Don't Fragment (best effort), and UDP_GRO when `gro`:
/// returns whether the kernel accepted it.
pub fn tune_path_socket(s: &StdUdpSocket, v6: bool, gro: bool) -> bool {
    grow_buffers(s);
    forbid_fragments(s, v6);
    gro && coalesce_received(s)
}

/// UDP_GRO: the kernel hands over several datagrams of one sender in one
/// receive, with their size in a control message (Linux 5.0 and later).
fn coalesce_received(s: &StdUdpSocket) -> bool {
    use nix::sys::socket::{setsockopt, sockopt};
    setsockopt(s, sockopt::UdpGroSegment, &true).is_ok()
}

/// Marks everything the socket sends (SO_MARK, needs CAP_NET_ADMIN: the
/// parent binds), so that policy routing tells the paths' own datagrams
/// from the traffic they carry. Unlike the buffers, not best effort: an
/// unmarked path socket would send its datagrams into a full tunnel.
fn set_mark(s: &StdUdpSocket, mark: u32) -> io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    setsockopt(s, sockopt::Mark, &mark)?;
    Ok(())
}

/// Sets Don't Fragment on everything the path sends (IP_PMTUDISC_DO): a
/// datagram larger than the path MTU (the interface's, or one an ICMP
/// "fragmentation needed" taught the kernel) then fails with EMSGSIZE
/// instead of leaving in fragments, and the core stops sending that size on
/// the path. Best effort.
fn forbid_fragments(s: &StdUdpSocket, v6: bool) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = if v6 {
        libc::IPV6_PMTUDISC_DO
    } else {
        libc::IP_PMTUDISC_DO
    };
    let (level, name) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER)
    } else {
        (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER)
    };
    // SAFETY: `s` is an open socket for the call's duration and `on` is a
    // c_int whose size is the length passed.
    let _ = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

/// A UDP socket tied to network interface `dev` (SO_BINDTODEVICE, needs
/// CAP_NET_RAW: the parent binds), then bound to `addr`. Its traffic leaves
/// through `dev` with whatever address `dev` has now.
pub fn bind_on_device(addr: std::net::SocketAddr, dev: &str) -> io::Result<StdUdpSocket> {
    use nix::sys::socket::{
        bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage,
    };
    use std::os::fd::AsRawFd;
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, sockopt::BindToDevice, &std::ffi::OsString::from(dev))?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    Ok(StdUdpSocket::from(fd))
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
