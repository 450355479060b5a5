//! The receiving side: datagrams from the network, authenticated data
//! handed to the resequencer, released packets drained by `poll_deliver`.

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use super::{Event, IndexEntry, Tunnel, PREVIOUS_SESSION_GRACE, REJECT_AFTER_TIME};
use crate::proto::frame::{self, Frame, DATA_FRAME_HEADER_LEN};
use crate::proto::ids::SocketId;
use crate::proto::ip;
use crate::proto::open_job::{OpenJob, OpenStep};
use crate::proto::path::lost_below;
use crate::proto::reorder::Arrival;
use crate::proto::session::{OpenError, Session};
use crate::proto::wire::{self, Message};
use crate::proto::Mode;

impl Tunnel {
    /// Processes one datagram received on local socket `socket` from `from`.
    /// Returns the range of `buf` holding an IP packet for the TUN, if any.
    /// A data message is [`Tunnel::prepare_open`], [`OpenJob::open`] and
    /// [`Tunnel::accept_opened`] in one call.
    pub fn handle_datagram(
        &mut self,
        socket: SocketId,
        from: SocketAddr,
        buf: &mut [u8],
        now: Instant,
    ) -> Option<Range<usize>> {
        match self.prepare_open(buf, now) {
            OpenStep::Open(job) => {
                let opened = job.open(buf);
                self.accept_opened(socket, from, &job, buf, opened, now)
            }
            OpenStep::NotData => {
                self.handle_control(socket, from, buf, now);
                None
            }
            OpenStep::Dropped => None,
        }
    }

    /// The first step of receiving a datagram, all a data message needs
    /// the tunnel for before its decryption: its receiver index must name
    /// a live session whose replay window (only read here) accepts its
    /// counter. What is malformed, unknown, expired or replayed is dropped
    /// and counted as [`Tunnel::handle_datagram`] counts it. The returned
    /// job decrypts without `&mut Tunnel` (a driver sharing the tunnel
    /// between threads runs it outside its lock); its result goes to
    /// [`Tunnel::accept_opened`].
    pub fn prepare_open(&mut self, buf: &[u8], now: Instant) -> OpenStep {
        self.now = self.now.max(now);
        let h = match wire::decode(buf) {
            Ok(Message::Data(h)) => h,
            Ok(_) => return OpenStep::NotData,
            Err(_) => {
                self.drops.malformed += 1;
                return OpenStep::Dropped;
            }
        };
        let Some((_, session)) = self.live_session(h.receiver, now) else {
            return OpenStep::Dropped;
        };
        if !session.may_accept(h.counter) {
            self.drops.replayed += 1;
            return OpenStep::Dropped;
        }
        OpenStep::Open(OpenJob {
            cipher: Arc::clone(session.recv_cipher()),
            receiver: h.receiver,
            counter: h.counter,
        })
    }

    /// The last step of receiving a data message: `opened` is what
    /// [`OpenJob::open`] made of `buf` (the datagram `job` was prepared
    /// for) with `job`. A forgery is counted (`auth_failed`). Else the
    /// session is found again (gone meanwhile, or its index reused: counted
    /// as `unknown_index`), its replay window checked again and updated (a
    /// copy that got here first makes this one `replayed`), and the
    /// authenticated frame processed: it proves the path alive and carries
    /// either an IP packet (handed to the resequencer) or a keepalive with
    /// the peer's receive report. Returns the packet's range in `buf` when
    /// it can go to the TUN at once.
    pub fn accept_opened(
        &mut self,
        socket: SocketId,
        from: SocketAddr,
        job: &OpenJob,
        buf: &mut [u8],
        opened: Result<Range<usize>, OpenError>,
        now: Instant,
    ) -> Option<Range<usize>> {
        self.now = self.now.max(now);
        let (at, plain) = self.authenticated(job, buf, opened, now)?;
        // Authenticated from here on.
        let (peer_idx, path_idx, receiver) = (at.peer, at.path, job.receiver);
        self.wakeups.touch(peer_idx);
        let confirmed_next = self.confirm_next(peer_idx, path_idx, receiver, now);
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
        if server && path.follow_roaming(socket, from, receiver) {
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

    /// Whether the datagram `job` was prepared for authenticated
    /// (`opened`) and its counter is accepted now: its session is found
    /// again and its replay window checked again and updated. Returns the
    /// session's path and the plaintext's range; drops are counted.
    fn authenticated(
        &mut self,
        job: &OpenJob,
        buf: &[u8],
        opened: Result<Range<usize>, OpenError>,
        now: Instant,
    ) -> Option<(IndexEntry, Range<usize>)> {
        let plain = match opened {
            Ok(plain) => plain,
            Err(OpenError::Auth) => {
                self.drops.auth_failed += 1;
                return None;
            }
            Err(OpenError::Replayed) => {
                self.drops.replayed += 1;
                return None;
            }
        };
        debug_assert!(plain.end <= buf.len(), "the range opened in another buffer");
        let (at, session) = self.live_session(job.receiver, now)?;
        // The index may have gone and come back for another session.
        if !Arc::ptr_eq(session.recv_cipher(), &job.cipher) {
            self.drops.unknown_index += 1;
            return None;
        }
        if !session.accept_counter(job.counter) {
            self.drops.replayed += 1;
            return None;
        }
        Some((at, plain))
    }

    /// A handshake message or a cookie reply.
    fn handle_control(&mut self, socket: SocketId, from: SocketAddr, buf: &[u8], now: Instant) {
        match wire::decode(buf) {
            Ok(Message::Initiation(init)) => self.handle_initiation(socket, from, &init, now),
            Ok(Message::Response(resp)) => self.handle_response(socket, &resp, now),
            Ok(Message::CookieReply(reply)) => self.handle_cookie_reply(socket, &reply, now),
            // `prepare_open` took these.
            Ok(Message::Data(_)) | Err(_) => {}
        }
    }

    /// The session local index `receiver` names, with its peer and path,
    /// if it exists and is young enough to use; else the drop is counted
    /// (`unknown_index`).
    fn live_session(&mut self, receiver: u32, now: Instant) -> Option<(IndexEntry, &mut Session)> {
        let Some(&at) = self.indices.get(&receiver) else {
            self.drops.unknown_index += 1;
            return None;
        };
        // An index of ours without a session yet (a handshake in flight).
        let Some(session) = self.peers[at.peer].paths[at.path].session_for(receiver) else {
            self.drops.unknown_index += 1;
            return None;
        };
        if now.saturating_duration_since(session.created) >= REJECT_AFTER_TIME {
            self.drops.unknown_index += 1;
            return None;
        }
        Some((at, session))
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
