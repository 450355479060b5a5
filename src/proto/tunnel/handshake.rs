//! Handshakes: initiations sent (client) and answered (server), responses
//! and cookie replies taken, sessions installed.

use std::net::SocketAddr;
use std::time::Instant;

use rand::Rng;

use super::{Event, IndexEntry, Pending, Tunnel, MAX_PATHS_PER_PEER, PREVIOUS_SESSION_GRACE};
use crate::proto::cookie;
use crate::proto::handshake::{InitPayload, Initiator, Responder, MAX_PATH_NAME};
use crate::proto::path::{
    handshake_backoff, handshake_retry, Path, PathState, COOKIE_PRESSURE_WINDOW, IN_USE_WINDOW,
};
use crate::proto::session::Session;
use crate::proto::wire;
use crate::proto::Mode;

impl Path {
    /// Makes `session` current; the old current stays acceptable until
    /// `grace_until`. Returns the local index of a session dropped for good.
    pub(super) fn install(&mut self, session: Session, grace_until: Instant) -> Option<u32> {
        let old = self.current.replace(session)?;
        self.previous
            .replace((old, grace_until))
            .map(|(older, _)| older.local_index)
    }
}

impl Tunnel {
    /// A fresh local session index (not in use, never 0). Random: an
    /// attacker who sees one path's index (it travels in the clear) cannot
    /// guess the indices of the other paths' handshakes.
    pub(super) fn alloc_index(&mut self) -> u32 {
        loop {
            let i: u32 = self.rng.gen();
            if i != 0 && !self.indices.contains_key(&i) {
                return i;
            }
        }
    }

    pub(super) fn handle_initiation(
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
    pub(super) fn pending_handshake(&mut self, socket: usize, index: u32) -> Option<(usize, usize)> {
        let &IndexEntry { peer, path } = self.indices.get(&index)?;
        let p = &self.peers[peer].paths[path];
        let ours = p.pending.as_ref().is_some_and(|i| i.sender == index) && p.socket == socket;
        ours.then_some((peer, path))
    }

    pub(super) fn handle_response(&mut self, socket: usize, resp: &wire::Response<'_>, now: Instant) {
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
    pub(super) fn handle_cookie_reply(&mut self, socket: usize, reply: &wire::CookieReply<'_>, now: Instant) {
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

    pub(super) fn send_initiation(&mut self, peer_idx: usize, path_idx: usize, now: Instant) {
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
}
