//! Handshakes: initiations sent (client) and answered (server), responses
//! and cookie replies taken, sessions installed.

use std::net::SocketAddr;
use std::time::Instant;

use rand::Rng;

use super::{Event, IndexEntry, Pending, Tunnel, MAX_PATHS_PER_PEER, PREVIOUS_SESSION_GRACE};
use crate::proto::handshake::{Initiator, Responder};
use crate::proto::ids::SocketId;
use crate::proto::path::Path;
use crate::proto::session::Session;
use crate::proto::wire;
use crate::proto::Mode;

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
        socket: SocketId,
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
        let path_idx = peer.paths.iter().position(|p| p.wire_id() == payload.path_id);
        if let Some(i) = path_idx {
            if !peer.paths[i].initiation_is_new(payload.unix_ns) {
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
                let id = self.path_ids.fresh();
                peer.paths.push(Path::new(
                    id,
                    payload.path_id,
                    payload.path_name.clone(),
                    socket,
                    Some(from),
                ));
                self.path_at.insert(id, (peer_idx, peer.paths.len() - 1));
                peer.paths.len() - 1
            }
        };
        let session = Session::new(keys, local_index, init.sender, now);
        let path = &mut peer.paths[path_idx];
        if let Some(old) = path.accept_initiation(payload.unix_ns, payload.path_name, session) {
            self.indices.remove(&old);
        }
        self.indices.insert(
            local_index,
            IndexEntry {
                peer: peer_idx,
                path: path_idx,
            },
        );
        let path = peer.paths[path_idx].id();
        self.push_pending(Pending::Raw {
            socket,
            dest: from,
            path,
            bytes: response.to_vec(),
        });
    }

    /// The path whose handshake in flight has local index `index`, if the
    /// message naming it came in on that path's own socket: an attacker on
    /// one uplink cannot reach the handshakes of the others.
    pub(super) fn pending_handshake(&mut self, socket: SocketId, index: u32) -> Option<(usize, usize)> {
        let &IndexEntry { peer, path } = self.indices.get(&index)?;
        let p = &self.peers[peer].paths[path];
        let ours = p.has_pending(index) && p.socket() == socket;
        ours.then_some((peer, path))
    }

    pub(super) fn handle_response(&mut self, socket: SocketId, resp: &wire::Response<'_>, now: Instant) {
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
        let initiator = path.pending_mut().expect("checked by pending_handshake");
        // `mac1` is keyed by our public key, which is no secret: a forged
        // response can pass it. The handshake in flight stays until a
        // response completes it, so the genuine one still can.
        let Ok(keys) = initiator.finish(resp) else {
            self.drops.handshake_invalid += 1;
            return;
        };
        let session = Session::new(keys, resp.receiver, resp.sender, now);
        let (done, came_up) = path.initiated(session, now + PREVIOUS_SESSION_GRACE, now);
        if let Some(dropped) = done.dropped {
            self.indices.remove(&dropped);
        }
        let name = path.name().to_string();
        self.events.push_back(Event::HandshakeCompleted {
            peer: peer_key,
            path: name.clone(),
            path_id: path.id(),
            rekey: done.rekey,
        });
        if came_up {
            self.events.push_back(Event::PathUp {
                peer: peer_key,
                path: name,
                id: path.wire_id(),
                path_id: path.id(),
            });
        }
        // Confirms the session to the responder right away.
        let path = path.id();
        self.push_pending(Pending::Keepalive { path, reply: false });
    }

    /// The server is under load and wants our initiation again with its
    /// cookie (see `Path::take_cookie_reply`).
    pub(super) fn handle_cookie_reply(
        &mut self,
        socket: SocketId,
        reply: &wire::CookieReply<'_>,
        now: Instant,
    ) {
        let Some((peer_idx, path_idx)) = self.pending_handshake(socket, reply.receiver) else {
            self.drops.handshake_invalid += 1;
            return;
        };
        self.wakeups.touch(peer_idx);
        let peer = &mut self.peers[peer_idx];
        let server = peer.public_key;
        if !peer.paths[path_idx].take_cookie_reply(&server, reply, now) {
            self.drops.handshake_invalid += 1;
        }
    }

    pub(super) fn send_initiation(&mut self, peer_idx: usize, path_idx: usize, now: Instant) {
        let sender = self.alloc_index();
        let wall = self.clock.unix_ns(now);
        let peer = &mut self.peers[peer_idx];
        let unix_ns = wall.max(peer.last_init_unix_ns + 1);
        peer.last_init_unix_ns = unix_ns;
        let path = &mut peer.paths[path_idx];
        let payload = path.init_payload(unix_ns);
        let wait = path.initiation_attempted(peer.last_inner, now);
        // Up to a quarter more, at random: clients that lost the same
        // server do not all come back in step.
        let jitter = wait.mul_f64(self.rng.gen_range(0.0..0.25));
        path.schedule_handshake(now + wait + jitter);
        let (Some(dest), socket, id) = (path.endpoint(), path.socket(), path.id()) else {
            return;
        };
        let cookie = path.fresh_cookie(now);
        let Ok((initiator, msg)) =
            Initiator::start(&self.private_key, &peer.public_key, sender, &payload, cookie)
        else {
            return;
        };
        if let Some(old) = path.set_pending(initiator) {
            self.indices.remove(&old);
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
            path: id,
            bytes: msg.to_vec(),
        });
    }
}
