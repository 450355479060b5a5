//! The receiving side: datagrams from the network, authenticated data
//! handed to the resequencer, released packets drained by `poll_deliver`.

use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant};

use super::{Event, IndexEntry, Tunnel, PREVIOUS_SESSION_GRACE, REJECT_AFTER_TIME};
use crate::proto::clock::Clock;
use crate::proto::frame::{self, Frame, Report, Timestamps, DATA_FRAME_HEADER_LEN};
use crate::proto::ip;
use crate::proto::path::{Path, PathState};
use crate::proto::reorder::Arrival;
use crate::proto::scheduler::SATURATED_QUEUE;
use crate::proto::session::OpenError;
use crate::proto::wire::{self, Message};
use crate::proto::Mode;

impl Tunnel {
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

    /// A data message: authenticated, it proves the path alive and carries
    /// either an IP packet (handed to the resequencer) or a keepalive with
    /// the peer's receive report. Returns the packet's range in `buf` when
    /// it can go to the TUN at once.
    pub(super) fn handle_data(
        &mut self,
        socket: usize,
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
        self.note_heard(peer_idx, path_idx, echo, buf.len(), now);
        self.follow_roaming(peer_idx, path_idx, socket, from, h.receiver);
        self.bring_up_if_proven(peer_idx, path_idx, echo, confirmed_next, now);
        let (times, seq, report) = self.read_frame(peer_idx, path_idx, frame)?;
        self.take_timestamps(peer_idx, path_idx, times, now);
        if let Some(report) = report {
            self.take_report(peer_idx, path_idx, times, report, now);
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
        let path = &mut self.peers[peer_idx].paths[path_idx];
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
        let confirmed_next = path.next.as_ref().is_some_and(|s| s.local_index == receiver);
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
        confirmed_next
    }

    /// An authenticated datagram of `len` bytes, echoing our timestamp
    /// `echo`, arrived on the path.
    fn note_heard(&mut self, peer_idx: usize, path_idx: usize, echo: u32, len: usize, now: Instant) {
        let clock = self.clock;
        let path = &mut self.peers[peer_idx].paths[path_idx];
        path.last_rx = Some(now);
        if path
            .unanswered_since
            .is_some_and(|t| echoes_since(clock, echo, t))
        {
            path.unanswered_since = None;
        }
        path.counters.rx_bytes += len as u64;
        path.counters.rx_packets += 1;
    }

    /// Server: roaming / NAT rebinding. Only an authenticated, fresh packet
    /// on the current session moves the endpoint.
    fn follow_roaming(
        &mut self,
        peer_idx: usize,
        path_idx: usize,
        socket: usize,
        from: SocketAddr,
        receiver: u32,
    ) {
        let peer = &mut self.peers[peer_idx];
        let path = &mut peer.paths[path_idx];
        let is_current = path.current.as_ref().is_some_and(|s| s.local_index == receiver);
        if self.mode == Mode::Server && is_current && (path.endpoint != Some(from) || path.socket != socket) {
            path.endpoint = Some(from);
            path.socket = socket;
            path.counters.endpoint_changes += 1;
            self.events.push_back(Event::EndpointChanged {
                peer: peer.public_key,
                path: path.name.clone(),
                endpoint: from,
            });
        }
    }

    /// A path not alive comes up once both directions are proven: the peer
    /// echoed something we sent since it went down, or a handshake was
    /// just confirmed.
    fn bring_up_if_proven(
        &mut self,
        peer_idx: usize,
        path_idx: usize,
        echo: u32,
        confirmed_next: bool,
        now: Instant,
    ) {
        let clock = self.clock;
        let peer = &mut self.peers[peer_idx];
        let path = &mut peer.paths[path_idx];
        let proven = match path.state {
            PathState::Down => confirmed_next || path.down_since.is_none_or(|t| echoes_since(clock, echo, t)),
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
    }

    /// A data frame's sequence number, or a keepalive's report and flags
    /// (noted on the path); `None` for a frame no sender makes (counted).
    fn read_frame(&mut self, peer_idx: usize, path_idx: usize, frame: Frame) -> Option<FrameContent> {
        let path = &mut self.peers[peer_idx].paths[path_idx];
        match frame {
            // The last sequence number has no successor: no sender ever
            // gets there, so it is not a real packet.
            Frame::Data { seq: u64::MAX, .. } => {
                self.drops.malformed += 1;
                None
            }
            Frame::Data { times, seq } => {
                path.peer_sends_no_data = false;
                Some((times, Some(seq), None))
            }
            Frame::Keepalive {
                times,
                report,
                reply,
                no_data,
            } => {
                path.reply_owed |= reply;
                path.peer_sends_no_data = no_data;
                Some((times, None, Some(report)))
            }
        }
    }

    /// The peer's timestamp (echoed back later) and its echo of ours: an
    /// RTT sample, and proof that our direction worked when we sent it.
    fn take_timestamps(&mut self, peer_idx: usize, path_idx: usize, times: Timestamps, now: Instant) {
        let clock = self.clock;
        let path = &mut self.peers[peer_idx].paths[path_idx];
        path.echo = Some((times.ts, now));
        path.inbound.sample(clock.micros(now), times.ts, now);
        if times.echo != 0 && times.echo != path.last_echo_seen {
            path.last_echo_seen = times.echo;
            // The peer got what we sent at (now - echo age): our direction
            // worked then.
            let age = clock.micros(now).wrapping_sub(times.echo);
            if age < 60_000_000 {
                let sent = now.checked_sub(Duration::from_micros(u64::from(age)));
                path.proven_at = path.proven_at.max(sent);
            }
            let rtt_us = clock
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
    }

    /// The peer's receive report: loss and delivery rate for the estimator,
    /// and what no longer needs a re-send.
    fn take_report(
        &mut self,
        peer_idx: usize,
        path_idx: usize,
        times: Timestamps,
        report: Report,
        now: Instant,
    ) {
        let clock = self.clock;
        let path = &mut self.peers[peer_idx].paths[path_idx];
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
        let echo_age = clock.micros(now).wrapping_sub(times.echo);
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
        let path = &mut peer.paths[path_idx];
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
pub(super) fn lost_below(paths: &[Path]) -> Option<u64> {
    let carrying = paths.iter().filter(|p| p.is_alive() && !p.peer_sends_no_data);
    carrying.map(|p| p.last_seq_rx).min().flatten()
}

/// What a data frame carries: the peer's timestamps, a data packet's
/// sequence number, a keepalive's receive report.
type FrameContent = (Timestamps, Option<u64>, Option<Report>);

/// Whether the peer's echo `echo` is of something we sent at or after
/// `t`: only that proves our direction works (hearing from the peer alone
/// does not: a blackhole can be one-way).
fn echoes_since(clock: Clock, echo: u32, t: Instant) -> bool {
    echo != 0 && echo.wrapping_sub(clock.micros(t)) as i32 >= 0
}
