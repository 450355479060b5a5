//! A deterministic simulated network for driving sans-IO tunnels.
//!
//! Nodes own sockets (addresses); datagrams travel with a per-link delay and
//! loss (seeded PRNG, so every run is identical); time jumps straight to the
//! next delivery or timer. Nothing sleeps.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mlvpn_rs::proto::tunnel::{Transmit, HEADROOM, OVERHEAD};
use mlvpn_rs::proto::{SocketId, Tunnel};

/// A node's sockets: (id, address) pairs.
pub fn socket_map(sockets: impl IntoIterator<Item = (u32, SocketAddr)>) -> BTreeMap<SocketId, SocketAddr> {
    sockets
        .into_iter()
        .map(|(id, a)| (SocketId::new(id), a))
        .collect()
}

/// xorshift64*: small, seeded, good enough for loss decisions.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
}

#[derive(Clone, Copy, Debug)]
pub struct LinkParams {
    pub delay: Duration,
    pub loss: f64,
    /// Datagrams are silently dropped (a blackhole).
    pub cut: bool,
}

impl Default for LinkParams {
    fn default() -> Self {
        LinkParams {
            delay: Duration::from_millis(10),
            loss: 0.0,
            cut: false,
        }
    }
}

pub struct Node {
    pub tunnel: Tunnel,
    /// Address of each local socket, by its id.
    pub sockets: BTreeMap<SocketId, SocketAddr>,
    /// IP packets the tunnel delivered to its TUN.
    pub delivered: Vec<Vec<u8>>,
}

struct InFlight {
    at: Instant,
    seq: u64,
    from: SocketAddr,
    to: SocketAddr,
    bytes: Vec<u8>,
}
impl PartialEq for InFlight {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for InFlight {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

pub struct Net {
    pub now: Instant,
    pub nodes: Vec<Node>,
    /// Link parameters by (source IP, destination IP); default otherwise.
    pub links: HashMap<(SocketAddr, SocketAddr), LinkParams>,
    pub default_link: LinkParams,
    /// Source address rewrite (NAT) for datagrams leaving an address.
    pub nat: HashMap<SocketAddr, SocketAddr>,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    pub rng: Rng,
    /// Every datagram put on the wire: (from, to, bytes) — for capture tests.
    pub capture: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    pub capturing: bool,
    buf: Vec<u8>,
}

impl Net {
    pub fn new(start: Instant) -> Net {
        Net {
            now: start,
            nodes: Vec::new(),
            links: HashMap::new(),
            default_link: LinkParams::default(),
            nat: HashMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            rng: Rng::new(0x9e37_79b9_7f4a_7c15),
            capture: Vec::new(),
            capturing: false,
            buf: vec![0; 65536],
        }
    }

    /// Adds a node whose sockets have ids 0, 1, … in the order of `sockets`.
    pub fn add(&mut self, tunnel: Tunnel, sockets: Vec<SocketAddr>) -> usize {
        self.nodes.push(Node {
            tunnel,
            sockets: socket_map(sockets.into_iter().enumerate().map(|(i, a)| (i as u32, a))),
            delivered: Vec::new(),
        });
        self.nodes.len() - 1
    }

    pub fn link(&mut self, from: SocketAddr, to: SocketAddr) -> &mut LinkParams {
        let d = self.default_link;
        self.links.entry((from, to)).or_insert(d)
    }

    /// Puts a datagram on the wire from `from` to `to`.
    pub fn send_raw(&mut self, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        let from = *self.nat.get(&from).unwrap_or(&from);
        let params = self.links.get(&(from, to)).copied().unwrap_or(self.default_link);
        if self.capturing {
            self.capture.push((from, to, bytes.clone()));
        }
        if params.cut || (params.loss > 0.0 && self.rng.chance(params.loss)) {
            return;
        }
        self.seq += 1;
        self.queue.push(Reverse(InFlight {
            at: self.now + params.delay,
            seq: self.seq,
            from,
            to,
            bytes,
        }));
    }

    fn emit(&mut self, node: usize, t: Transmit) {
        let from = self.nodes[node].sockets[&t.socket];
        let bytes = self.buf[..t.len].to_vec();
        self.send_raw(from, t.dest, bytes);
    }

    /// Sends everything the nodes have queued (control messages).
    pub fn flush(&mut self) {
        for n in 0..self.nodes.len() {
            let now = self.now;
            loop {
                let mut buf = std::mem::take(&mut self.buf);
                let t = self.nodes[n].tunnel.poll_transmit(&mut buf, now);
                self.buf = buf;
                match t {
                    Some(t) => self.emit(n, t),
                    None => break,
                }
            }
        }
    }

    /// Gives `packet` to node `n` as if read from its TUN. Returns whether it
    /// was sent.
    pub fn tun_send(&mut self, n: usize, packet: &[u8]) -> bool {
        let mut buf = vec![0u8; packet.len() + OVERHEAD];
        buf[HEADROOM..HEADROOM + packet.len()].copy_from_slice(packet);
        let now = self.now;
        match self.nodes[n]
            .tunnel
            .handle_tun_packet(&mut buf, packet.len(), now)
        {
            Some(t) => {
                let from = self.nodes[n].sockets[&t.socket];
                self.send_raw(from, t.dest, buf[..t.len].to_vec());
                true
            }
            None => false,
        }
    }

    fn deliver(&mut self, d: InFlight) {
        let Some((n, s)) = self.nodes.iter().enumerate().find_map(|(n, node)| {
            node.sockets
                .iter()
                .find(|(_, a)| **a == d.to)
                .map(|(s, _)| (n, *s))
        }) else {
            return;
        };
        let mut bytes = d.bytes;
        let now = self.now;
        if let Some(r) = self.nodes[n].tunnel.handle_datagram(s, d.from, &mut bytes, now) {
            self.nodes[n].delivered.push(bytes[r].to_vec());
        }
        self.drain_released(n);
    }

    /// Collects what node `n`'s resequencing queue released.
    fn drain_released(&mut self, n: usize) {
        let mut out = vec![0u8; 65536];
        while let Some(len) = self.nodes[n].tunnel.poll_deliver(&mut out) {
            self.nodes[n].delivered.push(out[..len].to_vec());
        }
    }

    /// Advances time to `until`, processing deliveries and timers in order.
    pub fn run_until(&mut self, until: Instant) {
        let mut spins_at_same_instant = 0u32;
        let mut last_now = self.now;
        loop {
            if self.now == last_now {
                spins_at_same_instant += 1;
                if spins_at_same_instant >= 100_000 {
                    let now = self.now;
                    for n in &mut self.nodes {
                        let st = n.tunnel.status("x", now);
                        eprintln!(
                            "due in {:?}: {:?}",
                            n.tunnel.poll_timeout().map(|t| t.saturating_duration_since(now)),
                            st.peers
                                .iter()
                                .map(|p| (&p.paths, &p.reorder))
                                .collect::<Vec<_>>()
                        );
                    }
                    panic!("a timer keeps firing without progress");
                }
            } else {
                spins_at_same_instant = 0;
                last_now = self.now;
            }
            self.flush();
            for n in 0..self.nodes.len() {
                self.nodes[n].tunnel.handle_timeout(self.now);
                self.drain_released(n);
            }
            self.flush();
            let next_timer = self
                .nodes
                .iter_mut()
                .filter_map(|n| n.tunnel.poll_timeout())
                .min();
            let next_packet = self.queue.peek().map(|Reverse(d)| d.at);
            let next = [next_timer, next_packet].into_iter().flatten().min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    while self.queue.peek().is_some_and(|Reverse(d)| d.at <= self.now) {
                        let Reverse(d) = self.queue.pop().expect("peeked");
                        self.deliver(d);
                    }
                }
                _ => {
                    self.now = until;
                    return;
                }
            }
        }
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }
}

/// The tests' packets: IPv4/UDP whose payload starts with an id.
pub use crate::fixtures::{ipv4_packet, packet_id};
