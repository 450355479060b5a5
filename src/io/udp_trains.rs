//! Sending datagrams in trains: consecutive datagrams of one size for one
//! destination are gathered and leave in one `sendmsg` with UDP_SEGMENT
//! (GSO), the kernel cutting them apart. The first refusal (a kernel or
//! device without UDP GSO) turns trains off for good: each datagram then
//! leaves on its own, as it does with `MLVPN_OFFLOAD=off`.

use std::collections::BTreeMap;
use std::io::{self, IoSlice};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
#[cfg(target_os = "linux")]
use nix::sys::socket::ControlMessage;
use nix::sys::socket::{sendmsg, MsgFlags, SockaddrStorage};
use tracing::{debug, info};

use crate::proto::tunnel::Transmit;
use crate::proto::SocketId;

/// The path sockets (non-blocking), by the id the parent gave each. Shared
/// by the sending and receiving threads; a reload builds a new map.
pub type SocketMap = BTreeMap<SocketId, Arc<UdpSocket>>;

/// How long a send waits for room in a full socket buffer before the
/// datagram is dropped (the buffers are megabytes: a path that stays
/// full this long is congested beyond what waiting fixes).
const SEND_WAIT_MS: u16 = 100;

/// The kernel's limit on segments per GSO send (UDP_MAX_SEGMENTS).
const MAX_SEGMENTS: usize = 64;
/// Bytes of UDP payload per train (below the 64 KB IP datagram limit
/// with room for the outer headers).
const MAX_TRAIN_BYTES: usize = 65000;
/// Destinations with a train being gathered at once (a bonded tunnel
/// sends to one per path).
const MAX_TRAINS: usize = 8;

/// One train being gathered.
struct Train {
    /// The first datagram's transmit (socket, destination, path; `len` is
    /// the segment size).
    head: Transmit,
    count: usize,
    /// A shorter datagram ended the train: the next one starts another.
    closed: bool,
    buf: Vec<u8>,
}

/// The trains of one batch, and whether the kernel takes them.
pub struct TrainSender {
    trains: Vec<Train>,
    /// Spare buffers, so that no train allocates after start-up.
    spare: Vec<Vec<u8>>,
    gso: bool,
    /// GSO sends of two or more datagrams, and the datagrams in them.
    pub trains_sent: u64,
    pub datagrams_in_trains: u64,
    /// Datagrams too big for their path (EMSGSIZE), for the core.
    pub too_big: Vec<Transmit>,
}

impl TrainSender {
    /// Whether trains are on (false from the start or after a refusal).
    pub fn gso(&self) -> bool {
        self.gso
    }

    pub fn new(gso: bool) -> TrainSender {
        TrainSender {
            trains: Vec::with_capacity(MAX_TRAINS),
            spare: (0..MAX_TRAINS)
                .map(|_| Vec::with_capacity(MAX_TRAIN_BYTES))
                .collect(),
            gso,
            trains_sent: 0,
            datagrams_in_trains: 0,
            too_big: Vec::new(),
        }
    }

    /// Adds datagram `bytes` (`t.len` long) to its destination's train,
    /// sending trains that cannot take it first.
    pub fn push(&mut self, sockets: &SocketMap, t: Transmit, bytes: &[u8]) {
        if !self.gso {
            self.send_one(sockets, t, bytes);
            return;
        }
        let at = self
            .trains
            .iter()
            .position(|tr| tr.head.socket == t.socket && tr.head.dest == t.dest);
        if let Some(i) = at {
            let tr = &mut self.trains[i];
            let fits = !tr.closed
                && bytes.len() <= tr.head.len
                && tr.count < MAX_SEGMENTS
                && tr.buf.len() + bytes.len() <= MAX_TRAIN_BYTES;
            if fits {
                tr.buf.extend_from_slice(bytes);
                tr.count += 1;
                tr.closed = bytes.len() < tr.head.len;
                return;
            }
            let tr = self.trains.swap_remove(i);
            self.send_train(sockets, tr);
        } else if self.trains.len() == MAX_TRAINS {
            let tr = self.trains.swap_remove(0);
            self.send_train(sockets, tr);
        }
        let mut buf = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(MAX_TRAIN_BYTES));
        buf.clear();
        buf.extend_from_slice(bytes);
        self.trains.push(Train {
            head: t,
            count: 1,
            closed: false,
            buf,
        });
    }

    /// Sends every train gathered.
    pub fn flush(&mut self, sockets: &SocketMap) {
        while let Some(tr) = self.trains.pop() {
            self.send_train(sockets, tr);
        }
    }

    fn send_train(&mut self, sockets: &SocketMap, tr: Train) {
        let seg = tr.head.len;
        let result = match sockets.get(&tr.head.socket) {
            Some(s) if tr.count > 1 => send(s, tr.head.dest, &tr.buf, Some(seg)),
            Some(s) => send(s, tr.head.dest, &tr.buf, None),
            None => Ok(()),
        };
        match result {
            Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
                self.too_big.extend((0..tr.count).map(|_| tr.head))
            }
            // EIO: the device cannot checksum a GSO train; EINVAL,
            // ENOPROTOOPT: a kernel without UDP_SEGMENT. The train goes out
            // one datagram at a time; if they leave, trains are off for good
            // (an EINVAL they share, say from an address just removed, is
            // not a refusal).
            Err(e) if tr.count > 1 && is_gso_refusal(&e) => {
                let mut refused = false;
                for d in tr.buf.chunks(seg) {
                    let t = Transmit {
                        len: d.len(),
                        ..tr.head
                    };
                    refused |= self.send_one(sockets, t, d);
                }
                if refused {
                    info!(socket = %tr.head.socket, "UDP segmentation offload refused ({e}): one datagram per send from now on");
                    self.gso = false;
                }
            }
            Err(e) => debug!(socket = %tr.head.socket, dest = %tr.head.dest, "send failed: {e}"),
            Ok(()) if tr.count > 1 => {
                self.trains_sent += 1;
                self.datagrams_in_trains += tr.count as u64;
            }
            Ok(()) => {}
        }
        self.spare.push(tr.buf);
    }

    /// Sends one datagram; true when it left.
    fn send_one(&mut self, sockets: &SocketMap, t: Transmit, bytes: &[u8]) -> bool {
        let Some(s) = sockets.get(&t.socket) else {
            return false;
        };
        match send(s, t.dest, bytes, None) {
            Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => self.too_big.push(t),
            Err(e) => debug!(socket = %t.socket, dest = %t.dest, "send failed: {e}"),
            Ok(()) => return true,
        }
        false
    }
}

fn is_gso_refusal(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
    )
}

/// One `sendmsg`, with UDP_SEGMENT when `segment` is given; waits only
/// while the socket's buffer is full (at most [`SEND_WAIT_MS`]).
fn send(s: &UdpSocket, dest: SocketAddr, bytes: &[u8], segment: Option<usize>) -> io::Result<()> {
    let addr = SockaddrStorage::from(dest);
    let seg = segment.map(|s| s as u16);
    let mut waited = false;
    loop {
        let iov = [IoSlice::new(bytes)];
        let r = match &seg {
            #[cfg(target_os = "linux")]
            Some(seg) => sendmsg(
                s.as_raw_fd(),
                &iov,
                &[ControlMessage::UdpGsoSegments(seg)],
                MsgFlags::empty(),
                Some(&addr),
            ),
            // No UDP_SEGMENT: the first train is refused and trains stop.
            #[cfg(not(target_os = "linux"))]
            Some(_) => Err(Errno::EOPNOTSUPP),
            None => sendmsg::<SockaddrStorage>(s.as_raw_fd(), &iov, &[], MsgFlags::empty(), Some(&addr)),
        };
        match r {
            Ok(_) => return Ok(()),
            Err(Errno::EAGAIN) if !waited => {
                waited = true;
                let mut fds = [PollFd::new(s.as_fd(), PollFlags::POLLOUT)];
                match poll(&mut fds, PollTimeout::from(SEND_WAIT_MS)) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(io::Error::from(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::udp_receive::ReceiveBatch;

    fn pair(gro: bool) -> (SocketMap, UdpSocket) {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.set_nonblocking(true).unwrap();
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        if gro {
            nix::sys::socket::setsockopt(&rx, nix::sys::socket::sockopt::UdpGroSegment, &true).unwrap();
        }
        rx.set_nonblocking(true).unwrap();
        (BTreeMap::from([(SocketId::new(1), Arc::new(tx))]), rx)
    }

    fn datagram(i: usize, len: usize) -> Vec<u8> {
        (0..len).map(|j| (i * 31 + j) as u8).collect()
    }

    /// Everything `rx` has, split at the GRO segment boundaries.
    fn received(rx: &UdpSocket, expect: usize) -> Vec<(Vec<u8>, usize)> {
        let mut batch = ReceiveBatch::default();
        let mut out = Vec::new();
        while out.len() < expect {
            let mut fds = [PollFd::new(rx.as_fd(), PollFlags::POLLIN)];
            assert_eq!(
                poll(&mut fds, PollTimeout::from(5000u16)).unwrap(),
                1,
                "nothing arrived in 5 s"
            );
            let n = batch.receive(rx).unwrap();
            for i in 0..n {
                let (r, bytes) = batch.slot(i).unwrap();
                for d in bytes.chunks(r.segment) {
                    out.push((d.to_vec(), r.segment));
                }
            }
        }
        out
    }

    fn send_train(gso: bool, lens: &[usize]) -> (Vec<(Vec<u8>, usize)>, bool) {
        let (sockets, rx) = pair(true);
        let dest = rx.local_addr().unwrap();
        let mut trains = TrainSender::new(gso);
        for (i, &len) in lens.iter().enumerate() {
            let t = Transmit {
                socket: SocketId::new(1),
                dest,
                len,
                path: Some(crate::proto::ids::PathIds::default().fresh()),
            };
            trains.push(&sockets, t, &datagram(i, len));
        }
        trains.flush(&sockets);
        (received(&rx, lens.len()), trains.gso)
    }

    #[test]
    fn a_train_arrives_as_its_datagrams_in_order_with_a_shorter_last() {
        let lens = [1200, 1200, 1200, 1200, 700];
        let (got, gso_kept) = send_train(true, &lens);
        assert!(gso_kept, "loopback takes UDP_SEGMENT");
        let want: Vec<Vec<u8>> = lens.iter().enumerate().map(|(i, &l)| datagram(i, l)).collect();
        assert_eq!(got.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(), want);
        // One GSO send, coalesced again on receive: the segment size is
        // the train's, not each datagram's own length.
        assert!(
            got.iter().all(|(_, seg)| *seg == 1200),
            "{:?}",
            got.iter().map(|g| g.1).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_longer_datagram_starts_a_new_train_and_nothing_is_lost() {
        let lens = [600, 600, 1400, 1400, 1400, 90, 1400];
        let (got, _) = send_train(true, &lens);
        let want: Vec<Vec<u8>> = lens.iter().enumerate().map(|(i, &l)| datagram(i, l)).collect();
        assert_eq!(got.into_iter().map(|(d, _)| d).collect::<Vec<_>>(), want);
    }

    #[test]
    fn without_gso_each_datagram_leaves_alone() {
        let lens = [1000, 1000, 1000];
        let (got, gso) = send_train(false, &lens);
        assert!(!gso);
        let want: Vec<Vec<u8>> = lens.iter().enumerate().map(|(i, &l)| datagram(i, l)).collect();
        assert_eq!(got.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(), want);
        assert!(got.iter().all(|(d, seg)| *seg == d.len()));
    }

    #[test]
    fn more_datagrams_than_one_train_holds_leave_in_several() {
        let lens = vec![1000; MAX_SEGMENTS + 10];
        let (got, _) = send_train(true, &lens);
        assert_eq!(got.len(), lens.len());
        for (i, (d, _)) in got.iter().enumerate() {
            assert_eq!(d, &datagram(i, 1000), "datagram {i}");
        }
    }
}
