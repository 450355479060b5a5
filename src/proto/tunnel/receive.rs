//! The receiving side: datagrams from the network, authenticated data
//! handed to the resequencer, released packets drained by `poll_deliver`.

use std::net::SocketAddr;
use std::ops::Range;
use std::time::Instant;

use super::{Event, IndexEntry, Tunnel, PREVIOUS_SESSION_GRACE, REJECT_AFTER_TIME};
use crate::proto::frame::{self, Frame, DATA_FRAME_HEADER_LEN};
use crate::proto::ids::SocketId;
use crate::proto::ip;
use crate::proto::path::lost_below;
use crate::proto::reorder::Arrival;
use crate::proto::session::OpenError;
use crate::proto::wire::{self, Message};
use crate::proto::Mode;

impl Tunnel {
    /// Processes one datagram received on local socket `socket` from `from`.
    /// Returns the range of `buf` holding an IP packet for the TUN, if any.
    pub fn handle_datagram(
        &mut self,
        socket: SocketId,
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

    /// A data message: authenticated, it proves the path alive and carries
    /// either an IP packet (handed to the resequencer) or a keepalive with
    /// the peer's receive report. Returns the packet's range in `buf` when
    /// it can go to the TUN at once.
    pub(super) fn handle_data(
        &mut self,
        socket: SocketId,
        from: SocketAddr,
        h: wire::DataHeader,
        buf: &mut [u8],
        now: Instant,
    ) -> Option<Range<usize>> {
        let (peer_idx, path_idx, plain) = self.open_data(&h, buf, now)?;
        // Authenticated from here on.
        self.wakeups.touch(peer_idx);
        let confirmed_next = self.confirm_next(peer_idx, path_idx, h.receiver, now);
        let frame = match frame::decode(&buf[plain.clone()]) {
            Ok(f) => f,
            Err(_) => {
                self.drops.malformed += 1;
                return None;
            }
        };
        let echo = match frame {
            Frame::Data { times, .. } | Frame::Keepalive { times, .. } => times.echo,
        };
        let (clock, server) = (self.clock, self.mode == Mode::Server);
        let peer = &mut self.peers[peer_idx];
        let path = &mut peer.paths[path_idx];
        path.note_heard(clock, echo, buf.len(), now);
        if server && path.follow_roaming(socket, from, h.receiver) {
            self.events.push_back(Event::EndpointChanged {
                peer: peer.public_key,
                path: path.name().to_string(),
                path_id: path.id(),
                endpoint: from,
            });
        }
        if path.bring_up_if_proven(clock, echo, confirmed_next, now) {
            self.events.push_back(Event::PathUp {
                peer: peer.public_key,
                path: path.name().to_string(),
                id: path.wire_id(),
                path_id: path.id(),
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
                path.peer_sends_data();
                (times, Some(seq), None)
            }
            Frame::Keepalive {
                times,
                report,
                reply,
                no_data,
            } => {
                path.note_keepalive_flags(reply, no_data);
                (times, None, Some(report))
            }
        };
        path.take_timestamps(clock, times, now);
        if let Some(report) = report {
            path.take_report(clock, times, report, now);
        }
        self.deliver_data(peer_idx, path_idx, seq?, buf, plain, now)
    }

    /// Finds the session the header names and decrypts `buf` with it;
    /// returns its peer, path and the plaintext's range. Drops (counted)
    /// what is unknown, too old, replayed or forged.
    fn open_data(
        &mut self,
        h: &wire::DataHeader,
        buf: &mut [u8],
        now: Instant,
    ) -> Option<(usize, usize, Range<usize>)> {
        let Some(&IndexEntry {
            peer: peer_idx,
            path: path_idx,
        }) = self.indices.get(&h.receiver)
        else {
            self.drops.unknown_index += 1;
            return None;
        };
        // An index of ours without a session yet (a handshake in flight).
        let Some(session) = self.peers[peer_idx].paths[path_idx].session_for(h.receiver) else {
            self.drops.unknown_index += 1;
            return None;
        };
        if now.saturating_duration_since(session.created) >= REJECT_AFTER_TIME {
            self.drops.unknown_index += 1;
            return None;
        }
        match session.open(buf, h.counter) {
            Ok(plain) => Some((peer_idx, path_idx, plain)),
            Err(OpenError::Replayed) => {
                self.drops.replayed += 1;
                None
            }
            Err(OpenError::Auth) => {
                self.drops.auth_failed += 1;
                None
            }
        }
    }

    /// Responder: the first packet on the session a handshake made confirms
    /// it; it becomes current. Returns whether this packet did that.
    fn confirm_next(&mut self, peer_idx: usize, path_idx: usize, receiver: u32, now: Instant) -> bool {
        let peer = &mut self.peers[peer_idx];
        let path = &mut peer.paths[path_idx];
        let Some(done) = path.confirm_next(receiver, now + PREVIOUS_SESSION_GRACE, now) else {
            return false;
        };
        if let Some(dropped) = done.dropped {
            self.indices.remove(&dropped);
        }
        self.events.push_back(Event::HandshakeCompleted {
            peer: peer.public_key,
            path: path.name().to_string(),
            path_id: path.id(),
            rekey: done.rekey,
        });
        true
    }

    /// A data packet with sequence number `seq` at `buf[plain]` (after its
    /// frame header): checked against the sender's allowed source
    /// addresses, then resequenced. Returns its range if it goes out at once.
    fn deliver_data(
        &mut self,
        peer_idx: usize,
        path_idx: usize,
        seq: u64,
        buf: &[u8],
        plain: Range<usize>,
        now: Instant,
    ) -> Option<Range<usize>> {
        let peer = &mut self.peers[peer_idx];
        peer.paths[path_idx].data_received(seq);
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
}
