//! The established pair a `transport` input runs on: the server, client A
//! and peer B's session, in memory and simulated time, with the
//! bookkeeping that checks what the server delivers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mlvpn_rs::proto::cookie;
use mlvpn_rs::proto::frame::{self, Frame};
use mlvpn_rs::proto::handshake::{InitPayload, Initiator};
use mlvpn_rs::proto::ip;
use mlvpn_rs::proto::session::Session;
use mlvpn_rs::proto::tunnel::{HEADROOM, OVERHEAD};
use mlvpn_rs::proto::wire::{self, Message, MAC_LEN, TAG_LEN};
use mlvpn_rs::proto::Tunnel;

use super::super::findings::{
    TOLERATE_FINDING_1, TOLERATE_FINDING_3, TOLERATE_FINDING_4, TOLERATE_FINDING_5,
};
use super::super::input::u32_le;
use super::super::nodes::{
    client_packet, client_tunnel, server_peers, server_tunnel, ROGUE_ADDR, ROGUE_ALLOWED, ROGUE_KEY,
};
use crate::fixtures::{
    addr, key, nets, public, reconfig, socket_id, CLIENT_SOCKETS, SERVER_KEY, SERVER_SOCKETS, UNIX_NS,
};

/// The datagrams a [`Pair`] relayed (for the seed corpora).
pub type Capture = Vec<(SocketAddr, SocketAddr, Vec<u8>)>;

/// A hostile but authenticated peer (B): a real session with the server,
/// whose frames the fuzzer writes.
pub struct Rogue {
    pub session: Session,
    next_ts: u64,
}

/// An established client/server pair in memory, in simulated time: the
/// server (peers A and B), client A (a real `Tunnel`) and B's session.
pub struct Pair {
    pub server: Tunnel,
    pub client: Tunnel,
    pub rogue: Option<Rogue>,
    pub start: Instant,
    pub now: Instant,
    /// Local session indices seen in handshakes: the server's (response
    /// senders) and the client's (initiation senders, including those to
    /// the blackhole, still pending).
    pub server_indices: Vec<u32>,
    pub client_indices: Vec<u32>,
    /// Every initiation the client sent: (sender index, mac1), for cookie
    /// replies.
    pub client_initiations: Vec<(u32, [u8; MAC_LEN])>,
    /// Packets the server may deliver, with how many times: every packet A
    /// sent, every allowed IP packet B sealed.
    allowance: HashMap<Vec<u8>, u32>,
    next_id: u64,
    pub(super) inputs: u32,
    pub capture: Option<Capture>,
    /// Buffers for `poll_transmit` and `poll_deliver`.
    tx: Vec<u8>,
    rx: Vec<u8>,
}

impl Pair {
    /// Handshakes client A and rogue B with a fresh server.
    pub fn establish(capture: bool) -> Pair {
        let start = Instant::now();
        let mut p = Pair {
            server: server_tunnel(start),
            client: client_tunnel(start),
            rogue: None,
            start,
            now: start,
            server_indices: Vec::new(),
            client_indices: Vec::new(),
            client_initiations: Vec::new(),
            allowance: HashMap::new(),
            next_id: 0,
            inputs: 0,
            capture: capture.then(Vec::new),
            tx: vec![0u8; 65536],
            rx: vec![0u8; 65536],
        };
        p.advance(Duration::from_millis(50));
        let st = p.client.status("fuzz", p.now);
        assert_eq!(
            st.peers[0].paths[0].state.as_str(),
            "up",
            "client path did not come up"
        );
        p.connect_rogue(0);
        p.check_genuine();
        p
    }

    pub fn record(&mut self, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        let from_client = CLIENT_SOCKETS.iter().any(|a| addr(a) == from);
        match wire::decode(bytes) {
            Ok(Message::Initiation(i)) if from_client => {
                self.client_indices.push(i.sender);
                self.client_initiations.push((i.sender, *i.mac1));
            }
            Ok(Message::Response(r)) => self.server_indices.push(r.sender),
            _ => {}
        }
        if let Some(c) = &mut self.capture {
            c.push((from, to, bytes.to_vec()));
        }
    }

    /// A delivered packet must be one some peer authenticated and that
    /// was not delivered as often already.
    fn accept_delivery(&mut self, packet: &[u8]) {
        match self.allowance.get_mut(packet) {
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => {
                self.allowance.remove(packet);
            }
            None => panic!("the server delivered a packet nobody authenticated: {packet:02x?}"),
        }
    }

    fn allow(&mut self, packet: &[u8]) {
        *self.allowance.entry(packet.to_vec()).or_default() += 1;
    }

    /// Everything the server's resequencing queue releases.
    fn drain_server(&mut self) {
        let mut rx = std::mem::take(&mut self.rx);
        while let Some(n) = self.server.poll_deliver(&mut rx) {
            self.accept_delivery(&rx[..n]);
        }
        self.rx = rx;
    }

    fn drain_client(&mut self) {
        assert!(
            self.client.poll_deliver(&mut self.rx).is_none(),
            "the client delivered a packet the server never sent"
        );
    }

    /// Gives `bytes` to the server as if received on its socket `socket`
    /// (of [`SERVER_SOCKETS`]);
    /// checks and accounts what it delivers.
    pub fn give_server(&mut self, socket: usize, from: SocketAddr, bytes: &mut [u8]) {
        if let Some(r) = self
            .server
            .handle_datagram(socket_id(socket), from, bytes, self.now)
        {
            self.accept_delivery(&bytes[r]);
        }
        self.drain_server();
    }

    fn give_client(&mut self, socket: usize, from: SocketAddr, bytes: &mut [u8]) {
        let got = self
            .client
            .handle_datagram(socket_id(socket), from, bytes, self.now);
        assert!(
            got.is_none(),
            "the client delivered a packet the server never sent"
        );
        self.drain_client();
    }

    /// Moves every control datagram between the nodes (instantly); what
    /// goes to B or the blackhole is dropped.
    fn relay(&mut self) {
        let server_socks = SERVER_SOCKETS.map(addr);
        let client_socks = CLIENT_SOCKETS.map(addr);
        let mut tx = std::mem::take(&mut self.tx);
        for round in 0.. {
            assert!(
                round < 1000,
                "control messages keep bouncing between client and server"
            );
            let mut moved = false;
            while let Some(t) = self.client.poll_transmit(&mut tx, self.now) {
                moved = true;
                let from = client_socks[t.socket.raw() as usize];
                let mut bytes = tx[..t.len].to_vec();
                self.record(from, t.dest, &bytes);
                if let Some(s) = server_socks.iter().position(|a| *a == t.dest) {
                    self.give_server(s, from, &mut bytes);
                }
            }
            while let Some(t) = self.server.poll_transmit(&mut tx, self.now) {
                moved = true;
                let from = server_socks[t.socket.raw() as usize];
                let mut bytes = tx[..t.len].to_vec();
                self.record(from, t.dest, &bytes);
                if let Some(s) = client_socks.iter().position(|a| *a == t.dest) {
                    self.give_client(s, from, &mut bytes);
                }
            }
            if !moved {
                break;
            }
        }
        self.tx = tx;
    }

    /// Runs both nodes' timers up to `now + d`, relaying as it goes.
    pub fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        let mut spins = 0u32;
        loop {
            self.relay();
            self.server.handle_timeout(self.now);
            self.client.handle_timeout(self.now);
            self.drain_server();
            self.drain_client();
            self.relay();
            let next = [self.server.poll_timeout(), self.client.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => {
                    if t <= self.now {
                        spins += 1;
                        assert!(spins < 10_000, "a timer keeps firing without progress");
                    } else {
                        spins = 0;
                    }
                    self.now = self.now.max(t);
                }
                _ => {
                    self.now = until;
                    self.relay();
                    return;
                }
            }
        }
    }

    /// A packet from A's TUN, encrypted by the client: (packet, datagram),
    /// or `None` if the client has no usable path now.
    pub fn client_datagram(&mut self, len: usize) -> Option<(Vec<u8>, Vec<u8>)> {
        self.next_id += 1;
        let packet = client_packet(self.next_id, len);
        let mut buf = vec![0u8; packet.len() + OVERHEAD];
        buf[HEADROOM..HEADROOM + packet.len()].copy_from_slice(&packet);
        let t = self.client.handle_tun_packet(&mut buf, packet.len(), self.now)?;
        assert_eq!(t.dest, addr(SERVER_SOCKETS[0]));
        buf.truncate(t.len);
        self.allow(&packet);
        Some((packet, buf))
    }

    /// The tunnel still works: a fresh packet from A is delivered, at once
    /// or once the hole of a lost packet before it has been skipped (after
    /// letting time pass if A's path went down meanwhile).
    pub fn check_genuine(&mut self) {
        for _ in 0..50 {
            if let Some((packet, mut d)) = self.client_datagram(100) {
                let from = addr(CLIENT_SOCKETS[0]);
                self.record(from, addr(SERVER_SOCKETS[0]), &d);
                self.give_server(0, from, &mut d);
                for _ in 0..20 {
                    if !self.allowance.contains_key(&packet) {
                        return;
                    }
                    self.advance(Duration::from_millis(100));
                }
                panic!("a genuine packet from the client was not delivered within 2 s");
            }
            self.advance(Duration::from_millis(100));
        }
        panic!("the client found no usable path for 5 s: the tunnel stopped working");
    }

    /// Forgets everything the server knew of B (a reload that drops it and
    /// one that adds it back), then handshakes B again.
    pub fn reset_rogue(&mut self) {
        for with_rogue in [false, true] {
            let report = self
                .server
                .reconfigure(reconfig(server_peers(with_rogue), vec![], &[]), self.now);
            assert_eq!(report.peers_added + report.peers_removed, 1, "{report:?}");
        }
        self.rogue = None;
        self.connect_rogue(0);
    }

    /// Handshakes B (path `path_id`) with the server using the handshake API.
    pub fn connect_rogue(&mut self, path_id: u8) {
        self.relay();
        let ts = self.rogue.as_ref().map_or(1, |r| r.next_ts);
        if let Some(r) = &mut self.rogue {
            r.next_ts += 1;
        }
        let sender = 0x5eed_0000 | u32::from(path_id);
        let payload = InitPayload {
            unix_ns: UNIX_NS + ts,
            path_id,
            path_name: format!("rogue{path_id}"),
        };
        let (mut initiator, msg) =
            Initiator::start(&key(ROGUE_KEY), &public(SERVER_KEY), sender, &payload, None)
                .expect("initiation");
        let from = addr(ROGUE_ADDR);
        let mut bytes = msg.to_vec();
        self.record(from, addr(SERVER_SOCKETS[1]), &bytes);
        self.give_server(1, from, &mut bytes);
        let mut response = None;
        let mut tx = std::mem::take(&mut self.tx);
        while let Some(t) = self.server.poll_transmit(&mut tx, self.now) {
            let b = tx[..t.len].to_vec();
            self.record(addr(SERVER_SOCKETS[t.socket.raw() as usize]), t.dest, &b);
            if t.dest == from && b.first() == Some(&wire::TYPE_RESPONSE) {
                response = Some(b);
            }
        }
        self.tx = tx;
        // Refused (too many paths for B, say): B keeps its old session.
        let Some(response) = response else {
            return;
        };
        let Ok(Message::Response(r)) = wire::decode(&response) else {
            panic!("malformed response");
        };
        let keys = initiator.finish(&r).expect("rogue handshake completes");
        self.rogue = Some(Rogue {
            session: Session::new(keys, sender, r.sender, self.now),
            next_ts: ts + 1,
        });
    }

    /// Seals `plain` (the whole frame, as B wrote it) on B's session.
    pub fn rogue_datagram(&mut self, plain: &[u8]) -> Option<Vec<u8>> {
        match frame::decode(plain) {
            Ok(Frame::Data { seq: u64::MAX, .. }) if TOLERATE_FINDING_3 => return None,
            Ok(Frame::Data { seq, .. }) if TOLERATE_FINDING_5 && seq >= 1 << 48 => return None,
            Ok(Frame::Keepalive { report, .. })
                if TOLERATE_FINDING_4 && report.rx_packets > u64::MAX / 200 =>
            {
                return None
            }
            _ => {}
        }
        let rogue = self.rogue.as_mut()?;
        let mut buf = vec![0u8; wire::DATA_HEADER_LEN + plain.len() + TAG_LEN];
        buf[wire::DATA_HEADER_LEN..wire::DATA_HEADER_LEN + plain.len()].copy_from_slice(plain);
        let n = rogue.session.seal(&mut buf, plain.len()).ok()?;
        buf.truncate(n);
        // What the server may deliver from it: the IP packet of a data
        // frame, if its source is one B may use.
        if let Ok(Frame::Data { .. }) = frame::decode(plain) {
            let inner = &plain[frame::DATA_FRAME_HEADER_LEN..];
            if let Some(s) = ip::summarize(inner) {
                if nets(&ROGUE_ALLOWED).iter().any(|n| n.contains(&s.src)) {
                    self.allow(&inner[..s.len]);
                }
            }
        }
        Some(buf)
    }

    /// A cookie reply to the client's initiation `sender` (bound to `mac1`):
    /// delivers nothing; one that cannot open is counted.
    pub fn cookie_reply(&mut self, sender: u32, mac1: &[u8; MAC_LEN], bad: bool) {
        self.relay();
        let mut checker = cookie::CookieChecker::new(&public(SERVER_KEY), [3; 32]);
        let mut reply = checker
            .reply(addr(CLIENT_SOCKETS[1]), sender, mac1, self.now)
            .to_vec();
        if let Some(c) = &mut self.capture {
            c.push((addr(SERVER_SOCKETS[0]), addr(CLIENT_SOCKETS[1]), reply.clone()));
        }
        let before = self.client.drops().total();
        self.give_client(1, addr(SERVER_SOCKETS[0]), &mut reply);
        if bad {
            assert!(
                self.client.drops().total() > before,
                "a cookie reply for another mac1 was not counted"
            );
        }
        self.relay();
    }

    /// A datagram nobody authenticated, to the server or the client: it
    /// delivers and releases nothing, and is counted as a drop unless it
    /// was a handshake message that got an answer.
    pub fn forged(&mut self, to_client: bool, bytes: &mut [u8]) {
        self.relay();
        let (node, from) = if to_client {
            (&mut self.client, addr(SERVER_SOCKETS[0]))
        } else {
            (&mut self.server, addr(CLIENT_SOCKETS[0]))
        };
        let before = node.drops().total();
        let got = node.handle_datagram(socket_id(0), from, bytes, self.now);
        assert!(got.is_none(), "a forged datagram delivered a packet");
        assert!(
            node.poll_deliver(&mut self.rx).is_none(),
            "a forged datagram released a packet"
        );
        if node.drops().total() == before {
            let answered = node.poll_transmit(&mut self.tx, self.now).is_some();
            let receiver = bytes.get(4..8).map(u32_le);
            if TOLERATE_FINDING_1
                && to_client
                && bytes[0] == wire::TYPE_DATA
                && self.client_initiations.iter().any(|(s, _)| Some(*s) == receiver)
            {
                return;
            }
            assert!(
                answered,
                "a forged datagram (type {:?}, {} bytes, receiver {:?}) was dropped without being counted",
                bytes.first(),
                bytes.len(),
                bytes.get(4..8).map(u32_le),
            );
            self.relay();
        }
    }
}
