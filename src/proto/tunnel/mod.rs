//! One node's tunnel: its peers, their paths, and the glue between the TUN
//! side (IP packets) and the network side (datagrams).
//!
//! [`Tunnel`] is a sans-IO state machine; its methods come in four kinds,
//! as quinn-proto's `Connection`'s do:
//! - input, `handle_*`: [`Tunnel::handle_tun_packet`] (an IP packet read
//!   from the TUN, placed at [`HEADROOM`] in a buffer: framed and encrypted
//!   in place), [`Tunnel::handle_datagram`] (a datagram from a socket:
//!   decrypted in place, it may yield an IP packet for the TUN),
//!   [`Tunnel::handle_timeout`] (timers that are due); the first two also
//!   split so the AEAD can run without `&mut Tunnel`, outside a lock:
//!   [`Tunnel::prepare_tun_packet`] then [`SealJob::seal`](crate::proto::SealJob::seal),
//!   [`Tunnel::prepare_open`] then [`OpenJob::open`](crate::proto::OpenJob::open)
//!   then [`Tunnel::accept_opened`];
//! - output, `poll_*`: [`Tunnel::poll_transmit`] (control messages:
//!   handshakes, keepalives, re-sends), [`Tunnel::poll_deliver`] (packets
//!   the resequencer released), [`Tunnel::poll_timeout`] (when to call
//!   `handle_timeout` next), [`Tunnel::poll_event`] (log-worthy events);
//! - getters: [`Tunnel::status`], [`Tunnel::drops`];
//! - commands: [`Tunnel::reconfigure`] (a reload),
//!   [`Tunnel::datagram_too_big`] (a send failed with EMSGSIZE).
//!
//! The code is split by concern: `send` (TUN side and control output),
//! `receive` (network side), `handshake`, `timers`, `status`,
//! `reconfigure`. The data path neither allocates nor copies: buffers
//! belong to the caller.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use mlvpn_keys::{PrivateKey, PublicKey};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::clock::Clock;
use super::cookie::CookieChecker;
use super::frame::DATA_FRAME_HEADER_LEN;
use super::ids::{PathId, PathIds, SocketId};
use super::mac::Mac1Key;
use super::path::Path;
use super::prefix_table::PrefixTable;
use super::ratelimit::RateLimiter;
use super::reorder::ResequencingQueue;
use super::scheduler::{Candidate, Scheduler};
use super::stats::Drops;
use super::wakeups::Wakeups;
use super::wire::{self, DATA_HEADER_LEN, TAG_LEN};
use crate::proto::Mode;

mod handshake;
mod receive;
mod reconfigure;
mod send;
mod settings;
mod status;
mod timers;
pub use reconfigure::{Reconfig, ReconfigReport};
pub use settings::{PathSpec, PeerSpec, TunnelSettings};

/// Bytes before the IP packet in a buffer given to `handle_tun_packet`.
pub const HEADROOM: usize = DATA_HEADER_LEN + DATA_FRAME_HEADER_LEN;
/// Bytes a data datagram adds to an IP packet (headroom + tag).
pub const OVERHEAD: usize = HEADROOM + TAG_LEN;
/// Start a new handshake on a path whose session is this old (client), at
/// most: `rekey_after` can make it sooner.
pub const REKEY_AFTER_TIME: Duration = Duration::from_secs(120);
/// Never use a session older than this.
pub use super::path::REJECT_AFTER_TIME;
/// How long a replaced session still decrypts in-flight packets.
pub const PREVIOUS_SESSION_GRACE: Duration = Duration::from_secs(10);
/// Most paths one peer may have (bounds the server's per-peer state).
pub const MAX_PATHS_PER_PEER: usize = 32;
/// Most control messages waiting to be sent.
const MAX_PENDING: usize = 1024;

/// Everything the core needs to know; built from the worker's hand-over or by tests.
pub struct TunnelConfig {
    pub mode: Mode,
    pub private_key: PrivateKey,
    /// What a reload may change too.
    pub settings: TunnelSettings,
    /// Seeds every random choice of the core (session indices, handshake
    /// jitter, cookie secrets): from the OS in the daemon, fixed in tests
    /// (runs are then reproducible). The core has no randomness of its own.
    pub rng_seed: [u8; 32],
}

/// A datagram to send: `buf[..len]` of the buffer passed in, from local
/// socket `socket` to `dest`, on path `path` (`None`: a cookie reply,
/// which belongs to no path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    pub socket: SocketId,
    pub dest: SocketAddr,
    pub len: usize,
    pub path: Option<PathId>,
}

impl Transmit {
    /// A datagram already built: `bytes` copied into the caller's buffer.
    fn copied(
        buf: &mut [u8],
        socket: SocketId,
        dest: SocketAddr,
        path: Option<PathId>,
        bytes: &[u8],
    ) -> Self {
        buf[..bytes.len()].copy_from_slice(bytes);
        Transmit {
            socket,
            dest,
            len: bytes.len(),
            path,
        }
    }
}

/// Something worth a log line, drained by [`Tunnel::poll_event`]. Each
/// names its path by name, by the id the client gave it (`id`, on the
/// wire) and by its stable id in this tunnel (`path_id`).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    PathUp {
        peer: PublicKey,
        path: String,
        id: u8,
        path_id: PathId,
    },
    PathDown {
        peer: PublicKey,
        path: String,
        id: u8,
        path_id: PathId,
        reason: &'static str,
    },
    /// Demoted: losing too much to carry traffic while a good path exists.
    PathLossy {
        peer: PublicKey,
        path: String,
        path_id: PathId,
        loss: f64,
    },
    /// A lossy path's loss fell back below the threshold.
    PathRecovered {
        peer: PublicKey,
        path: String,
        path_id: PathId,
        loss: f64,
    },
    HandshakeCompleted {
        peer: PublicKey,
        path: String,
        path_id: PathId,
        rekey: bool,
    },
    EndpointChanged {
        peer: PublicKey,
        path: String,
        path_id: PathId,
        endpoint: SocketAddr,
    },
}

enum Pending {
    /// A ready-made message: a handshake, or data re-sent.
    Raw {
        socket: SocketId,
        dest: SocketAddr,
        path: PathId,
        bytes: Vec<u8>,
    },
    /// A cookie reply (sent under load, one per flood datagram: no
    /// allocation).
    Cookie {
        socket: SocketId,
        dest: SocketAddr,
        msg: [u8; wire::COOKIE_REPLY_LEN],
    },
    /// A keepalive to encrypt at send time (so it carries fresh timestamps).
    Keepalive { path: PathId, reply: bool },
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
    /// The key is the peer's stable id, so there is no `PeerId`: it is
    /// unique in a config, a reload keeps a peer exactly when its key
    /// stays (a new key is a new peer), and it is what the wire, the
    /// status and the logs name a peer by.
    by_key: HashMap<PublicKey, usize>,
    /// Hands out the stable ids of new paths.
    path_ids: PathIds,
    /// Peer and path position by stable path id.
    path_at: HashMap<PathId, (usize, usize)>,
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
        let mut rng = StdRng::from_seed(config.rng_seed);
        let cookies = CookieChecker::new(&config.private_key.public_key(), rng.gen());
        let first_seq = clock.unix_ns(now) / 1000;
        let settings = config.settings;
        let mut peers: Vec<Peer> = settings
            .peers
            .into_iter()
            .map(|spec| reconfigure::new_peer(spec, first_seq))
            .collect();
        let mut path_ids = PathIds::default();
        if config.mode == Mode::Client {
            if let Some(peer) = peers.first_mut() {
                for (i, spec) in settings.paths.into_iter().enumerate().take(MAX_PATHS_PER_PEER) {
                    let id = path_ids.fresh();
                    peer.paths
                        .push(reconfigure::new_client_path(id, i as u8, spec, now));
                }
            }
        }
        let mut tunnel = Tunnel {
            mode: config.mode,
            private_key: config.private_key,
            our_mac1,
            cookies,
            limiter: RateLimiter::default(),
            keepalive: settings.keepalive,
            rekey_after: settings.rekey_after.min(REKEY_AFTER_TIME),
            path_timeout: settings.path_timeout,
            clock,
            peers,
            indices: HashMap::new(),
            pending: VecDeque::new(),
            events: VecDeque::new(),
            drops: Drops::default(),
            routes: PrefixTable::default(),
            by_key: HashMap::new(),
            path_ids,
            path_at: HashMap::new(),
            wakeups: Wakeups::default(),
            ready: VecDeque::new(),
            is_ready: Vec::new(),
            now,
            rng,
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

    /// Rebuilds what is indexed by peer or path position (after `new` or a
    /// reload): the key, path id and prefix tables, the timer bookkeeping,
    /// the ready list.
    fn peers_changed(&mut self) {
        self.by_key = self
            .peers
            .iter()
            .enumerate()
            .map(|(i, p)| (p.public_key, i))
            .collect();
        self.path_at.clear();
        for (i, peer) in self.peers.iter().enumerate() {
            for (j, path) in peer.paths.iter().enumerate() {
                self.path_at.insert(path.id(), (i, j));
            }
        }
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

    fn push_pending(&mut self, p: Pending) {
        if self.pending.len() >= MAX_PENDING {
            self.drops.queue_full += 1;
            return;
        }
        self.pending.push_back(p);
    }
}
