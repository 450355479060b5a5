//! Applying a reloaded configuration to a running tunnel (SIGHUP).
//!
//! What did not change keeps its sessions, counters and estimates: a peer is
//! the same peer if its public key is, a client path the same path if its
//! name, socket and endpoint are. Everything else is added fresh or dropped
//! (its keys zeroized with it). Positions in the peer and path lists move,
//! so the session index table is rebuilt from what is left; a kept path
//! keeps its [`PathId`] and a kept socket its [`SocketId`], so nothing
//! else is renumbered: what was on a closed socket is dropped.

use std::collections::HashSet;
use std::time::Instant;

use mlvpn_keys::PrivateKey;
use rand::Rng;

use super::{IndexEntry, Path, Peer, PeerSpec, Pending, Tunnel, TunnelSettings, MAX_PATHS_PER_PEER};
use crate::proto::ids::{PathId, PathIds, SocketId};
use crate::proto::reorder::ResequencingQueue;
use crate::proto::scheduler::Scheduler;
use crate::proto::tunnel::PathSpec;
use crate::proto::Mode;

/// The reloadable part of a [`super::TunnelConfig`], plus which sockets closed.
pub struct Reconfig {
    pub settings: TunnelSettings,
    /// The sockets the reload closed. Paths on one are dropped (server) or
    /// must have been given another (client); every other socket keeps its
    /// id.
    pub closed_sockets: Vec<SocketId>,
    /// The private key now configured (`None`: unchanged). A different key
    /// is applied: handshakes from now on use it, and a client re-handshakes
    /// every path at once (the current sessions carry traffic until the
    /// new ones replace them, or expire if the server does not know the
    /// new key).
    pub private_key: Option<PrivateKey>,
}

/// What a reconfiguration changed, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReconfigReport {
    pub paths_added: Vec<String>,
    pub paths_removed: Vec<String>,
    /// Kept paths whose bandwidth cap or fallback flag changed.
    pub paths_updated: Vec<String>,
    /// Paths whose bind or endpoint changed: re-created and re-handshaken.
    pub paths_replaced: Vec<String>,
    pub peers_added: usize,
    pub peers_removed: usize,
    /// The private key changed (and was applied).
    pub key_changed: bool,
}

impl ReconfigReport {
    pub fn is_empty(&self) -> bool {
        *self == ReconfigReport::default()
    }
}

/// A peer as configured; its data sequence starts at `first_seq`.
pub(super) fn new_peer(spec: PeerSpec, first_seq: u64) -> Peer {
    Peer {
        public_key: spec.public_key,
        allowed_ips: spec.allowed_ips,
        paths: Vec::new(),
        scheduler: Scheduler::default(),
        candidates: Vec::new(),
        next_seq: first_seq,
        last_init_unix_ns: 0,
        reorder: ResequencingQueue::default(),
        resent: 0,
        last_inner: None,
    }
}

/// A client path as configured (`wire_id`: its id in handshakes), never
/// handshaken; due to handshake `now`.
pub(super) fn new_client_path(id: PathId, wire_id: u8, spec: PathSpec, now: Instant) -> Path {
    let mut path = Path::new(id, wire_id, spec.name, spec.socket, Some(spec.endpoint));
    path.set_limits(spec.bandwidth_up, spec.fallback);
    path.schedule_handshake(now);
    path
}

impl Tunnel {
    /// Applies a reloaded configuration; see the module doc for what is kept.
    pub fn reconfigure(&mut self, config: Reconfig, now: Instant) -> ReconfigReport {
        let mut report = ReconfigReport::default();
        let settings = config.settings;
        self.keepalive = settings.keepalive;
        self.path_timeout = settings.path_timeout;
        self.rekey_after = settings.rekey_after.min(super::REKEY_AFTER_TIME);
        if let Some(key) = config.private_key {
            report.key_changed = self.set_private_key(key, now);
        }
        let closed: HashSet<SocketId> = config.closed_sockets.iter().copied().collect();

        // Peers, matched by public key.
        let mut old_peers: Vec<Option<Peer>> =
            std::mem::take(&mut self.peers).into_iter().map(Some).collect();
        for spec in settings.peers {
            let found = self
                .by_key
                .get(&spec.public_key)
                .copied()
                .filter(|&i| old_peers[i].is_some());
            match found {
                Some(i) => {
                    let mut peer = old_peers[i].take().expect("found");
                    peer.allowed_ips = spec.allowed_ips;
                    self.peers.push(peer);
                }
                None => {
                    self.peers.push(new_peer(spec, self.first_seq(now)));
                    report.peers_added += 1;
                }
            }
        }
        report.peers_removed = old_peers.iter().filter(|p| p.is_some()).count();
        drop(old_peers);

        // Paths: a server forgets paths whose listening socket closed (the
        // client re-handshakes on another one: its spec names the new
        // socket, matched below).
        let mut socket_closed: Vec<PathId> = Vec::new();
        for peer in &mut self.peers {
            let old_paths = std::mem::take(&mut peer.paths);
            for path in old_paths {
                if !closed.contains(&path.socket()) {
                    peer.paths.push(path);
                } else if self.mode == Mode::Client {
                    socket_closed.push(path.id());
                    peer.paths.push(path);
                } else {
                    report.paths_removed.push(path.name().to_string());
                }
            }
        }

        if self.mode == Mode::Client {
            if let Some(peer) = self.peers.first_mut() {
                let specs = settings.paths;
                match_client_paths(peer, &socket_closed, &mut self.path_ids, specs, &mut report, now);
            }
        }

        for peer in &mut self.peers {
            // Per-path scheduler state is indexed by position.
            peer.scheduler = Scheduler::default();
            peer.candidates.clear();
        }
        self.rebuild_indices();
        self.drop_pending_on(&closed);
        self.peers_changed();
        report
    }

    /// Uses `key` from now on; returns whether it differs from the key in
    /// use. Handshakes in flight were made with the old key and are
    /// dropped; a client starts new ones on every path at once.
    fn set_private_key(&mut self, key: PrivateKey, now: Instant) -> bool {
        let public = key.public_key();
        if public == self.private_key.public_key() {
            return false;
        }
        self.our_mac1 = super::Mac1Key::for_receiver(&public);
        self.cookies = super::CookieChecker::new(&public, self.rng.gen());
        self.private_key = key;
        let client = self.mode == Mode::Client;
        for peer in &mut self.peers {
            for path in &mut peer.paths {
                if let Some(old) = path.restart_handshake(client, now) {
                    self.indices.remove(&old);
                }
            }
        }
        true
    }

    /// The local-index table from the sessions that exist now.
    fn rebuild_indices(&mut self) {
        self.indices.clear();
        for (peer, p) in self.peers.iter().enumerate() {
            for (path, pa) in p.paths.iter().enumerate() {
                let entry = IndexEntry { peer, path };
                for index in pa.session_indices() {
                    self.indices.insert(index, entry);
                }
            }
        }
    }

    /// Control messages queued for a socket the reload closed are dropped
    /// with it. Keepalives name their path by id: one a reload removed is
    /// skipped when its turn comes.
    fn drop_pending_on(&mut self, closed: &HashSet<SocketId>) {
        self.pending.retain(|p| match p {
            Pending::Raw { socket, .. } | Pending::Cookie { socket, .. } => !closed.contains(socket),
            Pending::Keepalive { .. } => true,
        });
    }
}

/// Client: matches the configured paths to the peer's current ones (same
/// name, socket and endpoint, on a socket still open: kept with their
/// state and id; same name only: replaced under the old wire id, with a
/// new [`PathId`]; else added), in config order. `socket_closed`: the
/// paths whose socket the reload closed.
fn match_client_paths(
    peer: &mut Peer,
    socket_closed: &[PathId],
    path_ids: &mut PathIds,
    specs: Vec<PathSpec>,
    report: &mut ReconfigReport,
    now: Instant,
) {
    let mut old: Vec<Option<Path>> = std::mem::take(&mut peer.paths).into_iter().map(Some).collect();
    let mut kept_ids: Vec<u8> = Vec::new();
    let mut fresh = Vec::new();
    for (pos, spec) in specs.into_iter().take(MAX_PATHS_PER_PEER).enumerate() {
        let same = old.iter().position(|o| {
            o.as_ref().is_some_and(|p| {
                !socket_closed.contains(&p.id())
                    && p.name() == spec.name
                    && p.socket() == spec.socket
                    && p.endpoint() == Some(spec.endpoint)
            })
        });
        match same {
            Some(i) => {
                let mut path = old[i].take().expect("found");
                if path.set_limits(spec.bandwidth_up, spec.fallback) {
                    report.paths_updated.push(path.name().to_string());
                }
                kept_ids.push(path.wire_id());
                peer.paths.push(path);
            }
            None => {
                // Changed bind or endpoint: a new path under the
                // old name (the server sees a fresh handshake).
                let reuse = old
                    .iter()
                    .position(|o| o.as_ref().is_some_and(|p| p.name() == spec.name));
                let id = reuse.and_then(|i| old[i].take()).map(|p| p.wire_id());
                if id.is_some() {
                    report.paths_replaced.push(spec.name.clone());
                } else {
                    report.paths_added.push(spec.name.clone());
                }
                fresh.push((pos, id, spec));
            }
        }
    }
    for path in old.into_iter().flatten() {
        report.paths_removed.push(path.name().to_string());
    }
    // Fresh paths get their old id if they had one, else the
    // smallest unused one (the server tells paths apart by id).
    let mut placed: Vec<(usize, Path)> = Vec::new();
    for (pos, id, spec) in fresh {
        let id = id.filter(|id| !kept_ids.contains(id)).unwrap_or_else(|| {
            (0..=u8::MAX)
                .find(|id| !kept_ids.contains(id))
                .expect("at most MAX_PATHS_PER_PEER ids in use")
        });
        kept_ids.push(id);
        placed.push((pos, new_client_path(path_ids.fresh(), id, spec, now)));
    }
    for (pos, path) in placed {
        peer.paths.insert(pos, path);
    }
}
