//! One node's tunnel: its peers, their paths, and the glue between the TUN
//! side (IP packets) and the network side (datagrams).
//!
//! The caller (the IO driver, or a simulation test) feeds it:
//! - [`Tunnel::handle_tun_packet`]: an IP packet read from the TUN, placed at
//!   [`HEADROOM`] in a buffer; it is framed and encrypted in place.
//! - [`Tunnel::handle_datagram`]: a datagram from a socket; decrypted in
//!   place, it may yield an IP packet for the TUN.
//! - [`Tunnel::poll_transmit`]: control messages (handshakes, keepalives).
//! - [`Tunnel::poll_timeout`] / [`Tunnel::handle_timeout`]: timers.
//!
//! The data path neither allocates nor copies: buffers belong to the caller.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use mlvpn_keys::{PrivateKey, PublicKey};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::clock::Clock;
use super::cookie::{self, CookieChecker};
use super::frame::{self, Frame, Report, Timestamps, DATA_FRAME_HEADER_LEN, KEEPALIVE_LEN};
use super::handshake::{InitPayload, Initiator, Responder, MAX_PATH_NAME};
use super::ip;
use super::mac::Mac1Key;
use super::path::{
    handshake_backoff, handshake_retry, report_interval, silence_limit, tail_probe_delay,
    tail_probe_interval, Path, PathState, COOKIE_PRESSURE_WINDOW, IN_USE_WINDOW, LOSSY_ENTER, LOSSY_LEAVE,
    LOSSY_PERSIST, LOSSY_PROBE_INTERVAL, PROBE_INTERVAL,
};
use super::prefix_table::PrefixTable;
use super::ratelimit::RateLimiter;
use super::reorder::{Arrival, ResequencingQueue, DEFAULT_MAX_TIMEOUT, MIN_TIMEOUT};
use super::scheduler::{Candidate, Scheduler, SATURATED_QUEUE};
use super::session::{Session, REKEY_AFTER_MESSAGES};
use super::stats::{Drops, PathStatus, PeerStatus, Status};
use super::wakeups::Wakeups;
use super::wire::{self, Message, DATA_HEADER_LEN, TAG_LEN};
use crate::config::Mode;

mod reconfigure;
pub use reconfigure::{Reconfig, ReconfigReport};

/// Bytes before the IP packet in a buffer given to `handle_tun_packet`.
pub const HEADROOM: usize = DATA_HEADER_LEN + DATA_FRAME_HEADER_LEN;
/// Bytes a data datagram adds to an IP packet (headroom + tag).
pub const OVERHEAD: usize = HEADROOM + TAG_LEN;
/// Start a new handshake on a path whose session is this old (client), at
/// most: `rekey_after` can make it sooner.
pub const REKEY_AFTER_TIME: Duration = Duration::from_secs(120);
/// Never use a session older than this.
pub const REJECT_AFTER_TIME: Duration = Duration::from_secs(180);
/// How long a replaced session still decrypts in-flight packets.
pub const PREVIOUS_SESSION_GRACE: Duration = Duration::from_secs(10);
/// Keepalives received that earn a report even without data.
const PROBES_PER_REPORT: u64 = 16;
/// Most paths one peer may have (bounds the server's per-peer state).
pub const MAX_PATHS_PER_PEER: usize = 32;
/// Most control messages waiting to be sent.
const MAX_PENDING: usize = 1024;

/// One peer as configured.
#[derive(Debug, Clone)]
pub struct PeerSpec {
    pub public_key: PublicKey,
    pub allowed_ips: Vec<IpNet>,
}

/// One client path as configured.
#[derive(Debug, Clone)]
pub struct PathSpec {
    pub name: String,
    /// Index of the local socket this path sends from.
    pub socket: usize,
    pub endpoint: SocketAddr,
    pub bandwidth_up: Option<u64>,
    pub fallback: bool,
}

/// Everything the core needs to know; built from the worker's hand-over or by tests.
pub struct TunnelConfig {
    pub mode: Mode,
    pub private_key: PrivateKey,
    pub keepalive: Duration,
    pub path_timeout: Duration,
    /// Client: re-handshake a path whose session is this old (at most
    /// [`REKEY_AFTER_TIME`]).
    pub rekey_after: Duration,
    pub peers: Vec<PeerSpec>,
    /// Client only: the paths towards the (single) peer.
    pub paths: Vec<PathSpec>,
}

/// A datagram to send: `buf[..len]` of the buffer passed in, from local
/// socket `socket` to `dest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    pub socket: usize,
    pub dest: SocketAddr,
    pub len: usize,
}

impl Transmit {
    /// A datagram already built: `bytes` copied into the caller's buffer.
    fn copied(buf: &mut [u8], socket: usize, dest: SocketAddr, bytes: &[u8]) -> Self {
        buf[..bytes.len()].copy_from_slice(bytes);
        Transmit {
            socket,
            dest,
            len: bytes.len(),
        }
    }
}

/// Something worth a log line, drained by [`Tunnel::poll_event`].
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    PathUp {
        peer: PublicKey,
        path: String,
        id: u8,
    },
    PathDown {
        peer: PublicKey,
        path: String,
        id: u8,
        reason: &'static str,
    },
    /// Demoted: losing too much to carry traffic while a good path exists.
    PathLossy {
        peer: PublicKey,
        path: String,
        loss: f64,
    },
    /// A lossy path's loss fell back below the threshold.
    PathRecovered {
        peer: PublicKey,
        path: String,
        loss: f64,
    },
    HandshakeCompleted {
        peer: PublicKey,
        path: String,
        rekey: bool,
    },
    EndpointChanged {
        peer: PublicKey,
        path: String,
        endpoint: SocketAddr,
    },
}

enum Pending {
    /// A ready-made handshake message.
    Raw {
        socket: usize,
        dest: SocketAddr,
        bytes: Vec<u8>,
    },
    /// A cookie reply (sent under load, one per flood datagram: no
    /// allocation).
    Cookie {
        socket: usize,
        dest: SocketAddr,
        msg: [u8; wire::COOKIE_REPLY_LEN],
    },
    /// A keepalive to encrypt at send time (so it carries fresh timestamps).
    Keepalive { peer: usize, path: usize, reply: bool },
}

struct Peer {
    public_key: PublicKey,
    allowed_ips: Vec<IpNet>,
    paths: Vec<Path>,
    scheduler: Scheduler,
    candidates: Vec<Candidate>,
    /// Tunnel-wide sequence number of the next data packet to this peer.
    next_seq: u64,
    /// Client: last initiation timestamp used (kept strictly increasing).
    last_init_unix_ns: u64,
    /// Puts this peer's packets back in sequence order.
    reorder: ResequencingQueue,
    /// Packets re-sent because the path they went out on died.
    resent: u64,
    /// Last packet from the TUN for this peer (sent or not): while the
    /// site has traffic for it, a path that lost its session retries its
    /// handshake at a short interval.
    last_inner: Option<Instant>,
}

impl Path {
    /// Makes `session` current; the old current stays acceptable until
    /// `grace_until`. Returns the local index of a session dropped for good.
    fn install(&mut self, session: Session, grace_until: Instant) -> Option<u32> {
        let old = self.current.replace(session)?;
        self.previous
            .replace((old, grace_until))
            .map(|(older, _)| older.local_index)
    }

    /// Takes an up path down; a client schedules a new handshake at once.
    fn mark_down(&mut self, peer: PublicKey, reason: &'static str, client: bool, now: Instant) -> Event {
        self.state = PathState::Down;
        self.unanswered_since = None;
        self.down_since = Some(now);
        if client && self.handshake_due.is_none() {
            self.handshake_due = Some(now);
        }
        Event::PathDown {
            peer,
            path: self.name.clone(),
            id: self.id,
            reason,
        }
    }
}

/// Which session of a path a local index names.
#[derive(Debug, Clone, Copy)]
struct IndexEntry {
    peer: usize,
    path: usize,
}

pub struct Tunnel {
    mode: Mode,
    private_key: PrivateKey,
    /// Checks `mac1` of handshake messages sent to us.
    our_mac1: Mac1Key,
    /// Server: load detection, cookies and `mac2` (handshake DoS defence).
    cookies: CookieChecker,
    /// Server: handshakes per source address while under load.
    limiter: RateLimiter,
    keepalive: Duration,
    path_timeout: Duration,
    rekey_after: Duration,
    clock: Clock,
    peers: Vec<Peer>,
    indices: HashMap<u32, IndexEntry>,
    pending: VecDeque<Pending>,
    events: VecDeque<Event>,
    drops: Drops,
    /// Which peer owns an inner address (longest prefix of every peer's
    /// `allowed_ips`): the peer a TUN packet goes to, and the only peer a
    /// packet with that source is accepted from.
    routes: PrefixTable<usize>,
    /// Peer position by public key (a handshake names its peer by key).
    by_key: HashMap<PublicKey, usize>,
    /// Peers whose timers need running (touched, or their deadline came).
    wakeups: Wakeups,
    /// Peers whose resequencing queue has released packets, in order.
    ready: VecDeque<usize>,
    is_ready: Vec<bool>,
    /// Latest `now` any input carried (deadlines are computed against it).
    now: Instant,
    /// Session indices and handshake retry jitter.
    rng: StdRng,
}

impl Tunnel {
    /// `clock` anchors wall-clock time (handshake timestamps) to `now`.
    pub fn new(config: TunnelConfig, clock: Clock, now: Instant) -> Tunnel {
        let our_mac1 = Mac1Key::for_receiver(&config.private_key.public_key());
        let cookies = CookieChecker::new(&config.private_key.public_key());
        let first_seq = clock.unix_ns(now) / 1000;
        let mut peers: Vec<Peer> = config
            .peers
            .into_iter()
            .map(|spec| reconfigure::new_peer(spec, first_seq))
            .collect();
        if config.mode == Mode::Client {
            if let Some(peer) = peers.first_mut() {
                for (i, spec) in config.paths.into_iter().enumerate().take(MAX_PATHS_PER_PEER) {
                    peer.paths.push(reconfigure::new_client_path(i as u8, spec, now));
                }
            }
        }
        let mut tunnel = Tunnel {
            mode: config.mode,
            private_key: config.private_key,
            our_mac1,
            cookies,
            limiter: RateLimiter::default(),
            keepalive: config.keepalive,
            rekey_after: config.rekey_after.min(REKEY_AFTER_TIME),
            path_timeout: config.path_timeout,
            clock,
            peers,
            indices: HashMap::new(),
            pending: VecDeque::new(),
            events: VecDeque::new(),
            drops: Drops::default(),
            routes: PrefixTable::default(),
            by_key: HashMap::new(),
            wakeups: Wakeups::default(),
            ready: VecDeque::new(),
            is_ready: Vec::new(),
            now,
            rng: StdRng::from_entropy(),
        };
        tunnel.peers_changed();
        tunnel
    }

    /// Where a new peer's data sequence starts: the wall clock in µs. A
    /// restarted daemon's sequence is then ahead of everything its old
    /// process sent (it sent fewer packets than µs passed), and the peer's
    /// resequencer starts over at once instead of dropping the new
    /// packets as duplicates of the old ones.
    fn first_seq(&self, now: Instant) -> u64 {
        self.clock.unix_ns(now) / 1000
    }

    /// Rebuilds what is indexed by peer position (after `new` or a reload):
    /// the key and prefix tables, the timer bookkeeping, the ready list.
    fn peers_changed(&mut self) {
        self.by_key = self
            .peers
            .iter()
            .enumerate()
            .map(|(i, p)| (p.public_key, i))
            .collect();
        self.routes.clear();
        // Config order decides only between identical prefixes, which
        // `check` refuses: the first peer keeps it.
        for (i, peer) in self.peers.iter().enumerate().rev() {
            for net in &peer.allowed_ips {
                self.routes.insert(*net, i);
            }
        }
        self.wakeups.reset(self.peers.len());
        self.ready.clear();
        self.is_ready = vec![false; self.peers.len()];
        for i in 0..self.peers.len() {
            self.note_ready(i);
        }
    }

    /// Queues peer `i` for `poll_deliver` if its resequencer released packets.
    fn note_ready(&mut self, i: usize) {
        if self.peers[i].reorder.has_ready() && !self.is_ready[i] {
            self.is_ready[i] = true;
            self.ready.push_back(i);
        }
    }

    pub fn drops(&self) -> &Drops {
        &self.drops
    }

    /// Next log-worthy event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// A fresh local session index (not in use, never 0). Random: an
    /// attacker who sees one path's index (it travels in the clear) cannot
    /// guess the indices of the other paths' handshakes.
    fn alloc_index(&mut self) -> u32 {
        loop {
            let i: u32 = self.rng.gen();
            if i != 0 && !self.indices.contains_key(&i) {
                return i;
            }
        }
    }

    fn timestamps(&self, path: &Path, now: Instant) -> Timestamps {
        let (echo, echo_delay) = match path.echo {
            Some((ts, at)) => (
                ts,
                u32::try_from(now.saturating_duration_since(at).as_micros()).unwrap_or(u32::MAX),
            ),
            None => (0, 0),
        };
        Timestamps {
            ts: self.clock.micros(now),
            echo,
            echo_delay,
        }
    }

    // ---------------------------------------------------------------- TUN side

    /// Frames and encrypts the IP packet at `buf[HEADROOM..HEADROOM + len]`
    /// for the path the scheduler picks. `buf` needs `len + OVERHEAD` bytes.
    /// Returns the datagram (`buf[..t.len]`) or `None` if it was dropped
    /// (counted).
    pub fn handle_tun_packet(&mut self, buf: &mut [u8], len: usize, now: Instant) -> Option<Transmit> {
        self.now = self.now.max(now);
        let Some(summary) = ip::summarize(&buf[HEADROOM..HEADROOM + len]) else {
            self.drops.malformed += 1;
            return None;
        };
        // A client's one peer is its server: the kernel routes into the TUN
        // only what the config sends there.
        let peer_idx = match self.mode {
            Mode::Client => Some(0),
            Mode::Server => self.routes.lookup(summary.dst),
        };
        let Some((peer_idx, peer)) = peer_idx.and_then(|i| Some((i, self.peers.get_mut(i)?))) else {
            self.drops.no_route += 1;
            return None;
        };
        peer.last_inner = Some(now);
        self.wakeups.touch(peer_idx);
        let size = len + OVERHEAD;
        let Some(path_idx) = pick_path(peer, size, now) else {
            self.drops.no_path += 1;
            return None;
        };
        let seq = peer.next_seq;
        peer.next_seq += 1;
        let times = {
            let path = &self.peers[peer_idx].paths[path_idx];
            self.timestamps(path, now)
        };
        frame::encode_data_header(&mut buf[DATA_HEADER_LEN..HEADROOM], times, seq);
        self.log_in_flight(peer_idx, path_idx, seq, &buf[HEADROOM..HEADROOM + len]);
        let t = self.seal_on_path(peer_idx, path_idx, buf, DATA_FRAME_HEADER_LEN + len, now)?;
        let path = &mut self.peers[peer_idx].paths[path_idx];
        path.unanswered_since.get_or_insert(now);
        Some(t)
    }

    /// A datagram `t` could not leave: larger than its path's MTU. Later
    /// datagrams of that size or more avoid the path (smaller ones, such as
    /// ACKs, still use it); the lost one is counted.
    pub fn datagram_too_big(&mut self, t: Transmit) {
        self.drops.too_big += 1;
        for peer in &mut self.peers {
            for path in &mut peer.paths {
                if path.socket == t.socket && path.endpoint == Some(t.dest) {
                    let limit = t.len.saturating_sub(1);
                    path.max_datagram = Some(path.max_datagram.map_or(limit, |m| m.min(limit)));
                }
            }
        }
    }

    /// Keeps a copy of a data packet about to go out on a path, for a
    /// re-send should the path die (only with another path to re-send on).
    fn log_in_flight(&mut self, peer_idx: usize, path_idx: usize, seq: u64, packet: &[u8]) {
        let peer = &mut self.peers[peer_idx];
        if peer.paths.len() > 1 {
            let path = &mut peer.paths[path_idx];
            path.in_flight.record(path.counters.tx_packets + 1, seq, packet);
        }
    }

    /// Sends again, on live paths, what a path that just died had sent and
    /// its peer had not reported: their sequence numbers are kept, so the
    /// receiver slots them in (or drops them as duplicates).
    fn resend_in_flight(&mut self, peer_idx: usize, path_idx: usize, now: Instant) {
        let packets = self.peers[peer_idx].paths[path_idx].in_flight.take();
        for (seq, packet) in packets {
            let len = packet.len();
            let Some(to) = pick_path(&mut self.peers[peer_idx], len + OVERHEAD, now) else {
                self.drops.no_path += 1;
                return;
            };
            let mut buf = vec![0u8; HEADROOM + len + TAG_LEN];
            buf[HEADROOM..HEADROOM + len].copy_from_slice(&packet);
            let times = self.timestamps(&self.peers[peer_idx].paths[to], now);
            frame::encode_data_header(&mut buf[DATA_HEADER_LEN..HEADROOM], times, seq);
            self.log_in_flight(peer_idx, to, seq, &packet);
            let Some(t) = self.seal_on_path(peer_idx, to, &mut buf, DATA_FRAME_HEADER_LEN + len, now) else {
                continue;
            };
            self.peers[peer_idx].paths[to].unanswered_since.get_or_insert(now);
            self.peers[peer_idx].resent += 1;
            buf.truncate(t.len);
            self.push_pending(Pending::Raw {
                socket: t.socket,
                dest: t.dest,
                bytes: buf,
            });
        }
    }

    /// Encrypts the frame at `buf[DATA_HEADER_LEN..][..frame_len]` with the
    /// path's current session and accounts for it.
    fn seal_on_path(
        &mut self,
        peer_idx: usize,
        path_idx: usize,
        buf: &mut [u8],
        frame_len: usize,
        now: Instant,
    ) -> Option<Transmit> {
        let path = &mut self.peers[peer_idx].paths[path_idx];
        let dest = path.endpoint?;
        let session = path.current.as_mut()?;
        let n = session.seal(buf, frame_len).ok()?;
        path.last_tx = Some(now);
        path.counters.tx_bytes += n as u64;
        path.counters.tx_packets += 1;
        path.estimator.on_send(now, path.counters.tx_packets);
        Some(Transmit {
            socket: path.socket,
            dest,
            len: n,
        })
    }

    // ------------------------------------------------------------ network side

    /// Processes one datagram received on local socket `socket` from `from`.
    /// Returns the range of `buf` holding an IP packet for the TUN, if any.
    pub fn handle_datagram(
        &mut self,
        socket: usize,
        from: SocketAddr,
        buf: &mut [u8],
        now: Instant,
    ) -> Option<Range<usize>> {
        self.now = self.now.max(now);
        let msg = match wire::decode(buf) {
            Ok(m) => m,
            Err(_) => {
                self.drops.malformed += 1;
                return None;
            }
        };
        match msg {
            Message::Initiation(init) => {
                self.handle_initiation(socket, from, &init, now);
                None
            }
            Message::Response(resp) => {
                self.handle_response(socket, &resp, now);
                None
            }
            Message::CookieReply(reply) => {
                self.handle_cookie_reply(socket, &reply, now);
                None
            }
            Message::Data(h) => self.handle_data(socket, from, h, buf, now),
        }
    }

    fn handle_initiation(
        &mut self,
        socket: usize,
        from: SocketAddr,
        init: &wire::Initiation<'_>,
        now: Instant,
    ) {
        if self.mode != Mode::Server {
            self.drops.handshake_invalid += 1;
            return;
        }
        if !self.our_mac1.verify(init.mac1_covered, init.mac1) {
            self.drops.handshake_bad_mac += 1;
            return;
        }
        // Under load, Diffie-Hellman only for initiations whose mac2 proves
        // their source address, and only so many per address.
        if self.cookies.count_initiation(now) {
            if let Err(cookie) = self.cookies.check(from, init.mac2_covered, init.mac2, now) {
                self.drops.handshake_cookie_sent += 1;
                let msg = self.cookies.seal_reply(&cookie, init.sender, init.mac1);
                self.push_pending(Pending::Cookie {
                    socket,
                    dest: from,
                    msg,
                });
                return;
            }
            if !self.limiter.allow(from.ip(), now) {
                self.drops.handshake_rate_limited += 1;
                return;
            }
        }
        let responder = match Responder::read(&self.private_key, init) {
            Ok(r) => r,
            Err(_) => {
                self.drops.handshake_invalid += 1;
                return;
            }
        };
        let Some(&peer_idx) = self.by_key.get(&responder.remote) else {
            self.drops.handshake_unknown_peer += 1;
            return;
        };
        let payload = responder.payload.clone();
        let peer = &self.peers[peer_idx];
        let path_idx = peer.paths.iter().position(|p| p.id == payload.path_id);
        if let Some(i) = path_idx {
            if payload.unix_ns <= peer.paths[i].last_init_unix_ns {
                self.drops.handshake_replayed += 1;
                return;
            }
        } else if peer.paths.len() >= MAX_PATHS_PER_PEER {
            self.drops.handshake_invalid += 1;
            return;
        }
        let local_index = self.alloc_index();
        let (keys, response) = match responder.respond(local_index) {
            Ok(r) => r,
            Err(_) => {
                self.drops.handshake_invalid += 1;
                return;
            }
        };
        self.wakeups.touch(peer_idx);
        let peer = &mut self.peers[peer_idx];
        let path_idx = match path_idx {
            Some(i) => i,
            None => {
                peer.paths.push(Path::new(
                    payload.path_id,
                    payload.path_name.clone(),
                    socket,
                    Some(from),
                ));
                peer.paths.len() - 1
            }
        };
        let path = &mut peer.paths[path_idx];
        path.last_init_unix_ns = payload.unix_ns;
        path.name = payload.path_name;
        let session = Session::new(keys, local_index, init.sender, now);
        if let Some(old) = path.next.replace(session) {
            self.indices.remove(&old.local_index);
        }
        self.indices.insert(
            local_index,
            IndexEntry {
                peer: peer_idx,
                path: path_idx,
            },
        );
        self.push_pending(Pending::Raw {
            socket,
            dest: from,
            bytes: response.to_vec(),
        });
    }

    /// The path whose handshake in flight has local index `index`, if the
    /// message naming it came in on that path's own socket: an attacker on
    /// one uplink cannot reach the handshakes of the others.
    fn pending_handshake(&mut self, socket: usize, index: u32) -> Option<(usize, usize)> {
        let &IndexEntry { peer, path } = self.indices.get(&index)?;
        let p = &self.peers[peer].paths[path];
        let ours = p.pending.as_ref().is_some_and(|i| i.sender == index) && p.socket == socket;
        ours.then_some((peer, path))
    }

    fn handle_response(&mut self, socket: usize, resp: &wire::Response<'_>, now: Instant) {
        if !self.our_mac1.verify(resp.mac1_covered, resp.mac1) {
            self.drops.handshake_bad_mac += 1;
            return;
        }
        let Some((peer_idx, path_idx)) = self.pending_handshake(socket, resp.receiver) else {
            self.drops.handshake_invalid += 1;
            return;
        };
        self.wakeups.touch(peer_idx);
        let peer = &mut self.peers[peer_idx];
        let peer_key = peer.public_key;
        let path = &mut peer.paths[path_idx];
        let initiator = path.pending.as_mut().expect("checked by pending_handshake");
        // `mac1` is keyed by our public key, which is no secret: a forged
        // response can pass it. The handshake in flight stays until a
        // response completes it, so the genuine one still can.
        let Ok(keys) = initiator.finish(resp) else {
            self.drops.handshake_invalid += 1;
            return;
        };
        path.pending = None;
        let session = Session::new(keys, resp.receiver, resp.sender, now);
        let rekey = path.current.is_some();
        if let Some(dropped) = path.install(session, now + PREVIOUS_SESSION_GRACE) {
            self.indices.remove(&dropped);
        }
        path.handshake_due = None;
        path.handshake_attempts = 0;
        path.last_handshake = Some(now);
        path.last_rx = Some(now);
        path.counters.handshakes += 1;
        let was_up = path.is_alive();
        if !was_up {
            path.state = PathState::Up;
            path.estimator.reset_loss(now);
        }
        let name = path.name.clone();
        self.events.push_back(Event::HandshakeCompleted {
            peer: peer_key,
            path: name.clone(),
            rekey,
        });
        if !was_up {
            self.events.push_back(Event::PathUp {
                peer: peer_key,
                path: name,
                id: path.id,
            });
        }
        // Confirms the session to the responder right away.
        self.push_pending(Pending::Keepalive {
            peer: peer_idx,
            path: path_idx,
            reply: false,
        });
    }

    /// The server is under load and wants our initiation again with its
    /// cookie: keep the cookie, and retry at once if the initiation it
    /// answers had none (else the usual back-off: no tight loop).
    /// At most one cookie reply per initiation is taken: more (forged or
    /// replayed) cannot make the client retry in a loop.
    fn handle_cookie_reply(&mut self, socket: usize, reply: &wire::CookieReply<'_>, now: Instant) {
        let Some((peer_idx, path_idx)) = self.pending_handshake(socket, reply.receiver) else {
            self.drops.handshake_invalid += 1;
            return;
        };
        self.wakeups.touch(peer_idx);
        let peer = &mut self.peers[peer_idx];
        let server = peer.public_key;
        let path = &mut peer.paths[path_idx];
        let initiator = path.pending.as_mut().expect("checked by pending_handshake");
        if initiator.cookie_taken {
            self.drops.handshake_invalid += 1;
            return;
        }
        let Some(cookie) = cookie::open_reply(&server, reply, &initiator.mac1) else {
            self.drops.handshake_invalid += 1;
            return;
        };
        initiator.cookie_taken = true;
        path.cookie = Some((cookie, now));
        if !initiator.with_cookie {
            path.handshake_due = Some(now);
        }
    }

    fn handle_data(
        &mut self,
        socket: usize,
        from: SocketAddr,
        h: wire::DataHeader,
        buf: &mut [u8],
        now: Instant,
    ) -> Option<Range<usize>> {
        let Some(&IndexEntry {
            peer: peer_idx,
            path: path_idx,
        }) = self.indices.get(&h.receiver)
        else {
            self.drops.unknown_index += 1;
            return None;
        };
        let peer = &mut self.peers[peer_idx];
        let path = &mut peer.paths[path_idx];
        let session = [
            path.current.as_mut(),
            path.next.as_mut(),
            path.previous.as_mut().map(|(s, _)| s),
        ]
        .into_iter()
        .flatten()
        .find(|s| s.local_index == h.receiver);
        // An index of ours without a session yet (a handshake in flight).
        let Some(session) = session else {
            self.drops.unknown_index += 1;
            return None;
        };
        if now.saturating_duration_since(session.created) >= REJECT_AFTER_TIME {
            self.drops.unknown_index += 1;
            return None;
        }
        let plain = match session.open(buf, h.counter) {
            Ok(r) => r,
            Err(super::session::OpenError::Replayed) => {
                self.drops.replayed += 1;
                return None;
            }
            Err(super::session::OpenError::Auth) => {
                self.drops.auth_failed += 1;
                return None;
            }
        };
        // Authenticated from here on.
        self.wakeups.touch(peer_idx);
        let confirmed_next = path.next.as_ref().is_some_and(|s| s.local_index == h.receiver);
        if confirmed_next {
            let next = path.next.take().expect("checked above");
            if let Some(dropped) = path.install(next, now + PREVIOUS_SESSION_GRACE) {
                self.indices.remove(&dropped);
            }
            path.last_handshake = Some(now);
            path.counters.handshakes += 1;
            self.events.push_back(Event::HandshakeCompleted {
                peer: peer.public_key,
                path: path.name.clone(),
                rekey: path.previous.is_some(),
            });
        }
        let frame = match frame::decode(&buf[plain.clone()]) {
            Ok(f) => f,
            Err(_) => {
                self.drops.malformed += 1;
                return None;
            }
        };
        // Only the peer echoing something we sent since `t` proves that our
        // direction works: hearing from it alone does not (a blackhole can
        // be one-way).
        let echo = match frame {
            Frame::Data { times, .. } | Frame::Keepalive { times, .. } => times.echo,
        };
        let clock = self.clock;
        let echoes_since = |t: Instant| echo != 0 && echo.wrapping_sub(clock.micros(t)) as i32 >= 0;
        path.last_rx = Some(now);
        if path.unanswered_since.is_some_and(echoes_since) {
            path.unanswered_since = None;
        }
        path.counters.rx_bytes += buf.len() as u64;
        path.counters.rx_packets += 1;
        let is_current = path.current.as_ref().is_some_and(|s| s.local_index == h.receiver);
        if self.mode == Mode::Server && is_current && (path.endpoint != Some(from) || path.socket != socket) {
            // Roaming / NAT rebinding: only an authenticated, fresh packet on
            // the current session moves the endpoint.
            path.endpoint = Some(from);
            path.socket = socket;
            path.counters.endpoint_changes += 1;
            self.events.push_back(Event::EndpointChanged {
                peer: peer.public_key,
                path: path.name.clone(),
                endpoint: from,
            });
        }
        let proven = match path.state {
            // A handshake just confirmed proves both directions too.
            PathState::Down => confirmed_next || path.down_since.is_none_or(echoes_since),
            _ => true,
        };
        if !path.is_alive() && path.current.is_some() && proven {
            path.state = PathState::Up;
            path.down_since = None;
            // Routes (and so MTUs) may have changed while it was down.
            path.max_datagram = None;
            path.estimator.reset_loss(now);
            self.events.push_back(Event::PathUp {
                peer: peer.public_key,
                path: path.name.clone(),
                id: path.id,
            });
        }
        let (times, seq, report) = match frame {
            // The last sequence number has no successor: no sender ever
            // gets there, so it is not a real packet.
            Frame::Data { seq: u64::MAX, .. } => {
                self.drops.malformed += 1;
                return None;
            }
            Frame::Data { times, seq } => {
                path.peer_sends_no_data = false;
                (times, Some(seq), None)
            }
            Frame::Keepalive {
                times,
                report,
                reply,
                no_data,
            } => {
                path.reply_owed |= reply;
                path.peer_sends_no_data = no_data;
                (times, None, Some(report))
            }
        };
        path.echo = Some((times.ts, now));
        path.inbound.sample(self.clock.micros(now), times.ts, now);
        if times.echo != 0 && times.echo != path.last_echo_seen {
            path.last_echo_seen = times.echo;
            // The peer got what we sent at (now - echo age): our direction
            // worked then.
            let age = self.clock.micros(now).wrapping_sub(times.echo);
            if age < 60_000_000 {
                let sent = now.checked_sub(Duration::from_micros(u64::from(age)));
                path.proven_at = path.proven_at.max(sent);
            }
            let rtt_us = self
                .clock
                .micros(now)
                .wrapping_sub(times.echo)
                .wrapping_sub(times.echo_delay);
            // Ignore samples that can only come from clock wrap or garbage.
            if rtt_us < 60_000_000 {
                let rtt = Duration::from_micros(u64::from(rtt_us));
                path.rtt.sample(rtt, now);
                // How long the echoed packet queued on its way out.
                let sent = now.checked_sub(Duration::from_micros(u64::from(age)));
                let queued = path
                    .rtt
                    .min_rtt()
                    .map(|m| rtt.saturating_sub(m).saturating_sub(path.inbound.queueing()));
                if let (Some(sent), Some(queued), true) = (sent, queued, age < 60_000_000) {
                    path.queue_sample = Some((sent, queued));
                }
            }
        }
        if let Some(report) = report {
            // Judged after this report's own RTT sample: it is the freshest
            // (a path carrying no traffic towards us gets no other).
            // Queueing delay well above the path's own: the loss it sees now
            // is congestion we cause, not a bad link.
            let congested = path
                .rtt
                .min_rtt()
                .is_some_and(|m| path.outbound_queue() > m + Duration::from_millis(5));
            path.estimator.set_congested(congested);
            path.estimator
                .set_saturated(now, path.outbound_queue() > SATURATED_QUEUE);
            let echo_age = self.clock.micros(now).wrapping_sub(times.echo);
            let covers = if times.echo != 0 && echo_age < 60_000_000 {
                now.checked_sub(Duration::from_micros(u64::from(echo_age)))
            } else {
                now.checked_sub(path.rtt.srtt().unwrap_or_default())
            };
            path.estimator
                .on_report(now, times.ts, report, covers.unwrap_or(now));
            if let Some(tx) = path.estimator.reported_tx() {
                path.in_flight.acked(tx);
            }
        }
        let seq = seq?;
        path.rx_data_packets += 1;
        path.last_seq_rx = Some(seq);
        let packet_start = plain.start + DATA_FRAME_HEADER_LEN;
        let Some(summary) = ip::summarize(&buf[packet_start..plain.end]) else {
            self.drops.malformed += 1;
            return None;
        };
        // Cryptokey routing: the peer that owns the source by longest
        // prefix, no other, may send from it.
        if self.routes.lookup(summary.src) != Some(peer_idx) {
            self.drops.source_not_allowed += 1;
            return None;
        }
        let packet = packet_start..packet_start + summary.len;
        let arrival = peer.reorder.arrive(seq, &buf[packet.clone()], now);
        if let Some(floor) = lost_below(&peer.paths) {
            peer.reorder.skip_lost_below(floor, now);
        }
        self.note_ready(peer_idx);
        match arrival {
            Arrival::Deliver => Some(packet),
            Arrival::Held | Arrival::Duplicate => None,
        }
    }

    /// Next packet the resequencing queues released, copied into `out`;
    /// returns its length. Drain after every `handle_datagram` (after writing
    /// the packet it returned) and every `handle_timeout`.
    pub fn poll_deliver(&mut self, out: &mut [u8]) -> Option<usize> {
        while let Some(&i) = self.ready.front() {
            let reorder = &mut self.peers[i].reorder;
            if let Some(p) = reorder.pop_ready() {
                let n = p.len().min(out.len());
                out[..n].copy_from_slice(&p[..n]);
                reorder.recycle(p);
                return Some(n);
            }
            self.ready.pop_front();
            self.is_ready[i] = false;
        }
        None
    }

    // ------------------------------------------------------------- control

    fn push_pending(&mut self, p: Pending) {
        if self.pending.len() >= MAX_PENDING {
            self.drops.queue_full += 1;
            return;
        }
        self.pending.push_back(p);
    }

    /// Next control datagram to send, written into `buf` (at least 256 bytes).
    pub fn poll_transmit(&mut self, buf: &mut [u8], now: Instant) -> Option<Transmit> {
        self.now = self.now.max(now);
        while let Some(p) = self.pending.pop_front() {
            match p {
                Pending::Cookie { socket, dest, msg } => {
                    return Some(Transmit::copied(buf, socket, dest, &msg))
                }
                Pending::Raw { socket, dest, bytes } => {
                    return Some(Transmit::copied(buf, socket, dest, &bytes))
                }
                Pending::Keepalive { peer, path, reply } => {
                    let Some(paths) = self.peers.get(peer).map(|p| &p.paths) else {
                        continue;
                    };
                    let Some(p) = paths.get(path) else {
                        continue;
                    };
                    let no_data = !carries_data(p, any_normal_usable(paths));
                    let times = self.timestamps(p, now);
                    let report = Report {
                        rx_packets: p.counters.rx_packets,
                        rx_bytes: p.counters.rx_bytes,
                    };
                    frame::encode_keepalive(
                        &mut buf[DATA_HEADER_LEN..DATA_HEADER_LEN + KEEPALIVE_LEN],
                        times,
                        report,
                        reply,
                        no_data,
                    );
                    let p = &mut self.peers[peer].paths[path];
                    p.told_no_data = Some(no_data);
                    p.reply_owed = false;
                    if reply {
                        p.last_probe_tx = Some(now);
                    }
                    p.last_report_tx = Some(now);
                    p.reported_rx = p.rx_data_packets;
                    p.reported_all = p.counters.rx_packets;
                    self.wakeups.touch(peer);
                    if let Some(t) = self.seal_on_path(peer, path, buf, KEEPALIVE_LEN, now) {
                        return Some(t);
                    }
                }
            }
        }
        None
    }

    /// The earliest instant `handle_timeout` has work to do.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let now = self.now;
        for i in 0..self.wakeups.touched().len() {
            let peer = self.wakeups.touched()[i];
            let due = self.peer_deadline(peer, now);
            self.wakeups.set(peer, due);
        }
        self.wakeups.earliest()
    }

    /// When peer `i` next has a timer to run, as of `now`.
    fn peer_deadline(&self, i: usize, now: Instant) -> Option<Instant> {
        let peer = &self.peers[i];
        let mut earliest: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
        };
        consider(peer.reorder.poll_timeout());
        let any_normal = any_normal_usable(&peer.paths);
        for path in &peer.paths {
            consider(path.handshake_due);
            consider(path.previous.as_ref().map(|(_, t)| *t));
            if let Some(s) = &path.current {
                consider(Some(s.created + REJECT_AFTER_TIME));
                if self.mode == Mode::Client && path.handshake_due.is_none() {
                    consider(Some(s.created + self.rekey_after));
                }
            }
            consider(self.keepalive_due(path, any_normal));
            if path.is_alive() {
                consider(path.last_rx.map(|t| t + self.path_timeout));
                consider(path.unanswered_since.map(|t| t + silence_limit(path.rtt.srtt())));
            }
            // A loss that lasts demotes the path (see `demote_lossy`).
            if path.state == PathState::Up {
                consider(path.lossy_since.map(|t| t + LOSSY_PERSIST).filter(|t| *t > now));
            }
        }
        earliest
    }

    /// Runs every timer that is due at `now`: those of the peers touched
    /// since the last call and of the peers whose deadline came. A peer
    /// nothing happened to costs nothing here.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        // Each at most once per call: a timer that stays due after running
        // waits for the next call instead of looping here.
        let mut run = self.wakeups.take_touched();
        while let Some(i) = self.wakeups.pop_due(now) {
            run.push(i);
        }
        for &i in &run {
            self.peer_timers(i, now);
        }
        self.wakeups.give_back(run);
    }

    fn peer_timers(&mut self, i: usize, now: Instant) {
        let peer = &mut self.peers[i];
        let timeout = hold_timeout(&peer.paths);
        peer.reorder.set_timeout(timeout);
        peer.reorder.handle_timeout(now);
        for path_idx in 0..self.peers[i].paths.len() {
            self.path_timers(i, path_idx, now);
        }
        self.demote_lossy(i, now);
        self.note_ready(i);
        let due = self.peer_deadline(i, now);
        self.wakeups.set(i, due);
    }

    fn path_timers(&mut self, peer_idx: usize, path_idx: usize, now: Instant) {
        let client = self.mode == Mode::Client;
        let peer_key = self.peers[peer_idx].public_key;
        let path = &mut self.peers[peer_idx].paths[path_idx];
        if path.previous.as_ref().is_some_and(|(_, t)| *t <= now) {
            let (old, _) = path.previous.take().expect("checked");
            self.indices.remove(&old.local_index);
        }
        if path
            .current
            .as_ref()
            .is_some_and(|s| now.saturating_duration_since(s.created) >= REJECT_AFTER_TIME)
        {
            let old = path.current.take().expect("checked");
            self.indices.remove(&old.local_index);
            if path.state == PathState::Up {
                self.events
                    .push_back(path.mark_down(peer_key, "session expired", client, now));
            } else if client && path.handshake_due.is_none() {
                path.handshake_due = Some(now);
            }
        }
        if path.is_alive()
            && path
                .last_rx
                .is_some_and(|t| now.saturating_duration_since(t) >= self.path_timeout)
        {
            self.events
                .push_back(path.mark_down(peer_key, "peer silent", client, now));
            self.resend_in_flight(peer_idx, path_idx, now);
        } else if path.is_alive()
            && path
                .unanswered_since
                .is_some_and(|t| now.saturating_duration_since(t) >= silence_limit(path.rtt.srtt()))
        {
            self.events
                .push_back(path.mark_down(peer_key, "no report while sending", client, now));
            self.resend_in_flight(peer_idx, path_idx, now);
        }
        let path = &mut self.peers[peer_idx].paths[path_idx];
        if client && path.handshake_due.is_none() {
            if let Some(s) = &path.current {
                let old = now.saturating_duration_since(s.created) >= self.rekey_after;
                if old || s.messages_sent() >= REKEY_AFTER_MESSAGES {
                    path.handshake_due = Some(now);
                }
            }
        }
        if client && path.handshake_due.is_some_and(|t| t <= now) {
            self.send_initiation(peer_idx, path_idx, now);
        }
        let paths = &self.peers[peer_idx].paths;
        let path = &paths[path_idx];
        let any_normal = any_normal_usable(paths);
        let due = self.keepalive_due(path, any_normal);
        if due.is_some_and(|t| t <= now) {
            // An idle path's keepalive asks for an answer too: a path whose
            // outgoing direction died while nothing but keepalives used it
            // is then found out like a busy one (hearing the peer's own
            // keepalives proves only the other direction).
            let idle = path
                .last_tx
                .is_none_or(|t| now.saturating_duration_since(t) >= self.keepalive);
            // A down path's probe asks too, so the answer (an echo proving
            // both directions) brings it back within a probe interval.
            // So does any keepalive (a receive report, say) while nothing
            // we sent was echoed for a keepalive interval: a path used only
            // by the peer's data must notice that our reports stopped
            // arriving.
            let unproven = path
                .proven_at
                .is_none_or(|t| now.saturating_duration_since(t) > self.keepalive);
            let alive = path.is_alive();
            let reply = (alive && (idle || unproven || tail_probe_due(path).is_some_and(|t| t <= now)))
                || path.state == PathState::Down;
            self.push_pending(Pending::Keepalive {
                peer: peer_idx,
                path: path_idx,
                reply,
            });
            // Mark as sent now so the timer does not fire again before
            // poll_transmit drains the queue.
            let path = &mut self.peers[peer_idx].paths[path_idx];
            if reply {
                path.last_probe_tx = Some(now);
                if alive {
                    path.unanswered_since.get_or_insert(now);
                }
            }
            path.reply_owed = false;
            path.told_no_data = Some(!carries_data(path, any_normal));
            path.last_tx = Some(now);
            path.last_report_tx = Some(now);
            path.reported_rx = path.rx_data_packets;
            path.reported_all = path.counters.rx_packets;
        }
    }

    /// Demotes a path that loses much more than the peer's best other path
    /// (and brings it back when it no longer does). Loss every path shares
    /// (an overloaded receiver, say) demotes nothing: there is no better path.
    fn demote_lossy(&mut self, peer_idx: usize, now: Instant) {
        let peer = &mut self.peers[peer_idx];
        // Alive paths take part; one not measured yet (just back from an
        // outage, say) counts as clean: it gets the traffic, and so its
        // measurement, only if the lossy path gives way.
        let losses: Vec<Option<f64>> = peer
            .paths
            .iter()
            .map(|p| p.is_alive().then(|| p.estimator.loss().unwrap_or(0.0)))
            .collect();
        for (i, path) in peer.paths.iter_mut().enumerate() {
            let (Some(loss), Some(_)) = (path.estimator.loss(), losses[i]) else {
                continue;
            };
            // Persistence is of the loss itself: a path that has been losing
            // alone is demoted as soon as a better one appears.
            if loss <= LOSSY_ENTER {
                path.lossy_since = None;
            } else if path.lossy_since.is_none() {
                path.lossy_since = Some(now);
            }
            let best_other = losses
                .iter()
                .enumerate()
                .filter(|(j, l)| *j != i && l.is_some())
                .filter_map(|(_, l)| *l)
                .reduce(f64::min);
            let Some(best) = best_other else {
                if path.state == PathState::Lossy {
                    path.state = PathState::Up;
                }
                continue;
            };
            let much_worse = |margin: f64| loss > best * 2.0 + margin;
            let looks_lossy = loss > LOSSY_ENTER && much_worse(0.05);
            let lasting = path
                .lossy_since
                .is_some_and(|t| now.saturating_duration_since(t) >= LOSSY_PERSIST);
            if path.state == PathState::Up && looks_lossy && lasting {
                path.state = PathState::Lossy;
                self.events.push_back(Event::PathLossy {
                    peer: peer.public_key,
                    path: path.name.clone(),
                    loss,
                });
            } else if path.state == PathState::Lossy && (loss < LOSSY_LEAVE || !much_worse(0.02)) {
                path.state = PathState::Up;
                self.events.push_back(Event::PathRecovered {
                    peer: peer.public_key,
                    path: path.name.clone(),
                    loss,
                });
            }
        }
    }

    /// When the path next needs a keepalive: idle for `keepalive`, a receive
    /// report owed (every half RTT while receiving), its no-data flag
    /// changed (`any_normal`: whether a normal path is usable), or a probe
    /// of a down path (so a restored path is noticed within a probe
    /// interval).
    fn keepalive_due(&self, path: &Path, any_normal: bool) -> Option<Instant> {
        path.current.as_ref()?;
        match path.state {
            PathState::Up | PathState::Lossy => {
                let interval = if path.state == PathState::Lossy {
                    LOSSY_PROBE_INTERVAL
                } else {
                    self.keepalive
                };
                let idle = path.last_tx.map(|t| t + interval).or(path.last_rx);
                let owed = path.rx_data_packets > path.reported_rx
                    || path.counters.rx_packets >= path.reported_all + PROBES_PER_REPORT;
                let report = owed
                    .then(|| {
                        path.last_report_tx
                            .map(|t| t + report_interval(path.rtt.srtt()))
                            .or(path.last_rx)
                    })
                    .flatten();
                let reply = path.reply_owed.then_some(path.last_rx).flatten();
                // The peer's resequencer waits for paths that carry data:
                // tell it at once when this one starts or stops.
                let no_data = !carries_data(path, any_normal);
                let flag = (path.told_no_data != Some(no_data))
                    .then_some(path.last_rx)
                    .flatten();
                [idle, report, reply, flag, tail_probe_due(path)]
                    .into_iter()
                    .flatten()
                    .min()
            }
            PathState::Down => path.last_tx.map(|t| t + PROBE_INTERVAL).or(path.last_rx),
            PathState::Handshaking => None,
        }
    }

    fn send_initiation(&mut self, peer_idx: usize, path_idx: usize, now: Instant) {
        let sender = self.alloc_index();
        let wall = self.clock.unix_ns(now);
        let peer = &mut self.peers[peer_idx];
        let unix_ns = wall.max(peer.last_init_unix_ns + 1);
        peer.last_init_unix_ns = unix_ns;
        let path = &mut peer.paths[path_idx];
        let payload = InitPayload {
            unix_ns,
            path_id: path.id,
            path_name: path.name.chars().take(MAX_PATH_NAME).collect(),
        };
        path.handshake_attempts += 1;
        let recent = |t: Option<Instant>| t.is_some_and(|t| now.saturating_duration_since(t) < IN_USE_WINDOW);
        let in_use = recent(peer.last_inner) || recent(path.last_rx);
        let pressure = path
            .cookie
            .as_ref()
            .is_some_and(|(_, at)| now.saturating_duration_since(*at) < COOKIE_PRESSURE_WINDOW);
        let wait = if in_use && !pressure {
            handshake_retry(path.rtt.srtt())
        } else {
            handshake_backoff(path.handshake_attempts)
        };
        // Up to a quarter more, at random: clients that lost the same
        // server do not all come back in step.
        let jitter = wait.mul_f64(self.rng.gen_range(0.0..0.25));
        path.handshake_due = Some(now + wait + jitter);
        let (Some(dest), socket) = (path.endpoint, path.socket) else {
            return;
        };
        let cookie = path
            .cookie
            .as_ref()
            .filter(|(_, at)| now.saturating_duration_since(*at) < cookie::COOKIE_LIFETIME)
            .map(|(c, _)| c);
        let Ok((initiator, msg)) =
            Initiator::start(&self.private_key, &peer.public_key, sender, &payload, cookie)
        else {
            return;
        };
        if let Some(old) = path.pending.replace(initiator) {
            self.indices.remove(&old.sender);
        }
        self.indices.insert(
            sender,
            IndexEntry {
                peer: peer_idx,
                path: path_idx,
            },
        );
        self.push_pending(Pending::Raw {
            socket,
            dest,
            bytes: msg.to_vec(),
        });
    }

    // -------------------------------------------------------------- status

    /// A snapshot for `mlvpn-rs status`.
    pub fn status(&self, interface: &str, now: Instant) -> Status {
        Status {
            interface: interface.to_string(),
            mode: match self.mode {
                Mode::Client => "client".into(),
                Mode::Server => "server".into(),
            },
            drops: self.drops,
            peers: self
                .peers
                .iter()
                .map(|peer| PeerStatus {
                    public_key: peer.public_key.to_base64(),
                    paths: peer
                        .paths
                        .iter()
                        .map(|p| PathStatus {
                            name: p.name.clone(),
                            state: p.state.as_str().into(),
                            endpoint: p.endpoint.map(|e| e.to_string()),
                            srtt_ms: p.rtt.srtt().map(|d| d.as_secs_f64() * 1000.0),
                            rttvar_ms: p.rtt.srtt().map(|_| p.rtt.rttvar().as_secs_f64() * 1000.0),
                            loss: p.estimator.loss(),
                            rate_mbps: p.estimator.rate_bps().map(|r| r / 1e6),
                            tx_bytes: p.counters.tx_bytes,
                            rx_bytes: p.counters.rx_bytes,
                            tx_packets: p.counters.tx_packets,
                            rx_packets: p.counters.rx_packets,
                            handshakes: p.counters.handshakes,
                            endpoint_changes: p.counters.endpoint_changes,
                            last_handshake_ago_ms: p
                                .last_handshake
                                .map(|t| now.saturating_duration_since(t).as_millis() as u64),
                        })
                        .collect(),
                    reorder: peer.reorder.stats(),
                    resent: peer.resent,
                })
                .collect(),
        }
    }
}

/// The path for a datagram of `size` bytes to `peer` (earliest arrival).
fn pick_path(peer: &mut Peer, size: usize, now: Instant) -> Option<usize> {
    peer.candidates.clear();
    peer.candidates.extend(peer.paths.iter().map(|p| Candidate {
        usable: p.is_usable(),
        fallback: is_backup(p),
        owd: p.rtt.min_rtt().unwrap_or_default() / 2,
        queued: p.outbound_queue(),
        queue_sample: p.queue_sample,
        rate: p.estimator.rate_bps(),
        capacity: p.estimator.capacity_bps(),
        loss: p.estimator.loss().unwrap_or(0.0),
        cap: p.bandwidth_up,
        max_size: p.max_datagram.unwrap_or(usize::MAX),
    }));
    peer.scheduler.pick(&peer.candidates, size, now)
}

/// When a path whose data goes unanswered next sends a tail probe (a
/// keepalive asking for a report), if it does.
fn tail_probe_due(path: &Path) -> Option<Instant> {
    let since = path.unanswered_since?;
    let first = since + tail_probe_delay(path.rtt.srtt(), path.rtt.rttvar());
    let next = path
        .last_probe_tx
        .filter(|t| *t >= since)
        .map(|t| t + tail_probe_interval(path.rtt.srtt()));
    Some(next.map_or(first, |n| n.max(first)))
}

/// Holes below this sequence number are lost: every path that carries data
/// has since delivered a later packet, and a path delivers in order (the
/// queues of real links and of the emulator are FIFO). `None` while such a
/// path has carried no data: a hole may still be on it, and only the hold
/// timeout can tell. Skipping at once instead of waiting out the timeout
/// lets TCP see a loss as early as it would on a single link. A path the
/// peer said it gives no data (`FLAG_NO_DATA`: fallback, or lossy on the
/// peer's side) does not count: a bond with one lossy link otherwise waited
/// out the timeout for every loss on the good one (the bench measured 97 %
/// of the good link alone), and a configured fallback path that never
/// carried data stopped all skipping. (Judging by our own view of the path
/// instead missed a lossy path we send too little on to measure.)
fn lost_below(paths: &[Path]) -> Option<u64> {
    let carrying = paths.iter().filter(|p| p.is_alive() && !p.peer_sends_no_data);
    carrying.map(|p| p.last_seq_rx).min().flatten()
}

/// A path used only when no normal one is usable (see `Scheduler::pick`).
fn is_backup(p: &Path) -> bool {
    p.fallback || p.state == PathState::Lossy
}

/// Whether any normal (not backup) path is usable.
fn any_normal_usable(paths: &[Path]) -> bool {
    paths.iter().any(|p| p.is_usable() && !is_backup(p))
}

/// Whether the scheduler may give `p` data now: usable, and a normal path
/// unless none is usable (the rule of `Scheduler::pick`).
fn carries_data(p: &Path, any_normal: bool) -> bool {
    p.is_usable() && is_backup(p) != any_normal
}

/// How long the receiver holds an early packet: the spread of the live
/// paths' one-way delays towards us plus a jitter margin, so a packet sent
/// at the same time on the slowest path normally arrives in time. The slow
/// end of the spread takes each path's queue at its peak of the last second,
/// not its average: a TCP flow's bursts swing the queues faster than an
/// average follows, and a hole skipped too early makes the packet that
/// fills it late (out of order, and a spurious retransmit for TCP).
fn hold_timeout(paths: &[Path]) -> Duration {
    let (mut lo, mut hi, mut var) = (Duration::MAX, Duration::ZERO, Duration::ZERO);
    for p in paths.iter().filter(|p| p.is_alive()) {
        let Some(base) = p.rtt.min_rtt().map(|m| m / 2) else {
            continue;
        };
        lo = lo.min(base + p.inbound.queueing());
        hi = hi.max(base + p.inbound.recent_peak().max(p.inbound.queueing()));
        var = var.max(p.rtt.rttvar());
    }
    let spread = hi.saturating_sub(lo);
    (spread + var * 4 + Duration::from_millis(5)).clamp(MIN_TIMEOUT, DEFAULT_MAX_TIMEOUT)
}
