//! What crossed a namespace's links during part of a test: an AF_PACKET
//! socket (both directions, every interface of the namespace) read by a
//! thread until [`Capture::stop`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::sys::socket::{
    recvfrom, setsockopt, socket, sockopt, AddressFamily, LinkAddr, SockFlag, SockProtocol, SockType,
};

use crate::topo::Topo;

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;

/// One captured frame: the interface it crossed and its layer-3 packet.
pub struct Frame {
    pub ifindex: usize,
    pub ethertype: u16,
    /// Its length on the wire (layer 3).
    pub len: usize,
    /// Its first bytes (the headers).
    pub packet: Vec<u8>,
}

/// The parts of an IP packet a test judges: addresses, protocol, ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol number (17 UDP, 6 TCP, 1 ICMP, 58 ICMPv6).
    pub protocol: u8,
    pub src_port: u16,
    /// For ICMPv6, the message type (neighbour discovery is 133-137).
    pub dst_port: u16,
}

impl Frame {
    /// The packet's flow, `None` for what is not IPv4 or IPv6 (ARP).
    pub fn flow(&self) -> Option<Flow> {
        let p = &self.packet;
        let (src, dst, protocol, l4) = match self.ethertype {
            ETH_P_IP if p.len() >= 20 => {
                let ihl = usize::from(p[0] & 15) * 4;
                let v4 = |at: usize| IpAddr::V4(Ipv4Addr::new(p[at], p[at + 1], p[at + 2], p[at + 3]));
                (v4(12), v4(16), p[9], p.get(ihl..).unwrap_or(&[]))
            }
            ETH_P_IPV6 if p.len() >= 40 => {
                let v6 = |at: usize| {
                    let b: [u8; 16] = p[at..at + 16].try_into().expect("16 bytes");
                    IpAddr::V6(Ipv6Addr::from(b))
                };
                (v6(8), v6(24), p[6], &p[40..])
            }
            _ => return None,
        };
        let (src_port, dst_port) = match (protocol, l4) {
            (6 | 17, [a, b, c, d, ..]) => (u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d])),
            (58, [kind, ..]) => (0, u16::from(*kind)),
            _ => (0, 0),
        };
        Some(Flow {
            src,
            dst,
            protocol,
            src_port,
            dst_port,
        })
    }
}

pub struct Capture {
    stop: Arc<AtomicBool>,
    reader: JoinHandle<Vec<Frame>>,
}

impl Capture {
    /// Starts capturing everything on the interfaces of namespace `ns`;
    /// capturing has begun when this returns.
    pub fn start(t: &Topo, ns: &str) -> Capture {
        let sock: OwnedFd = t.in_ns(ns, || {
            let s = socket(
                AddressFamily::Packet,
                SockType::Datagram,
                SockFlag::empty(),
                SockProtocol::EthAll,
            )
            .expect("packet socket");
            // The reader looks at the stop flag this often.
            let tick = nix::sys::time::TimeVal::new(0, 100_000);
            setsockopt(&s, sockopt::ReceiveTimeout, &tick).expect("SO_RCVTIMEO");
            // Room for a transfer's bursts while the reader is descheduled.
            setsockopt(&s, sockopt::RcvBufForce, &(64 << 20)).expect("SO_RCVBUFFORCE");
            s
        });
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let reader = std::thread::spawn(move || {
            let mut frames = Vec::new();
            let mut buf = vec![0u8; 65536];
            while !stopped.load(Ordering::Relaxed) {
                let Ok((n, Some(from))) = recvfrom::<LinkAddr>(sock.as_raw_fd(), &mut buf) else {
                    continue;
                };
                frames.push(Frame {
                    ifindex: from.ifindex(),
                    ethertype: u16::from_be(from.protocol()),
                    len: n,
                    packet: buf[..n.min(128)].to_vec(),
                });
            }
            frames
        });
        Capture { stop, reader }
    }

    /// Stops capturing; returns what was captured, in order.
    pub fn stop(self) -> Vec<Frame> {
        self.stop.store(true, Ordering::Relaxed);
        self.reader.join().expect("capture thread")
    }
}

/// The interface index of `dev` in namespace `ns`.
pub fn ifindex(t: &Topo, ns: &str, dev: &str) -> usize {
    let dev = dev.to_string();
    t.in_ns(ns, move || {
        nix::net::if_::if_nametoindex(dev.as_str()).expect("interface") as usize
    })
}
