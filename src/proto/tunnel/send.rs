//! The sending side: TUN packets out on the path the scheduler picks,
//! control messages drained by `poll_transmit`, re-sends of what a dead
//! path had in flight.

use std::time::Instant;

use super::{Peer, Pending, Transmit, Tunnel, HEADROOM, OVERHEAD};
use crate::proto::frame::{self, DATA_FRAME_HEADER_LEN, KEEPALIVE_LEN};
use crate::proto::ip;
use crate::proto::path::any_normal_usable;
use crate::proto::seal_job::SealJob;
use crate::proto::wire::{DATA_HEADER_LEN, TAG_LEN};
use crate::proto::Mode;

impl Tunnel {
    /// Frames and encrypts the IP packet at `buf[HEADROOM..HEADROOM + len]`
    /// for the path the scheduler picks. `buf` needs `len + OVERHEAD` bytes.
    /// Returns the datagram (`buf[..t.len]`) or `None` if it was dropped
    /// (counted). [`Tunnel::prepare_tun_packet`], then [`SealJob::seal`].
    pub fn handle_tun_packet(&mut self, buf: &mut [u8], len: usize, now: Instant) -> Option<Transmit> {
        let job = self.prepare_tun_packet(buf, len, now)?;
        Some(job.seal(buf))
    }

    /// Everything [`Tunnel::handle_tun_packet`] does but the encryption:
    /// the packet is routed, its path picked, its frame header and the
    /// data header written (a session counter reserved), the path's
    /// accounting done. The returned job encrypts `buf` in place
    /// ([`SealJob::seal`]) and needs no `&mut Tunnel`: a driver sharing the
    /// tunnel between threads runs it outside its lock. `None`: dropped
    /// (counted as `handle_tun_packet` counts it).
    pub fn prepare_tun_packet(&mut self, buf: &mut [u8], len: usize, now: Instant) -> Option<SealJob> {
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
        let times = self.peers[peer_idx].paths[path_idx].timestamps(self.clock, now);
        frame::encode_data_header(&mut buf[DATA_HEADER_LEN..HEADROOM], times, seq);
        self.log_in_flight(peer_idx, path_idx, seq, &buf[HEADROOM..HEADROOM + len]);
        let path = &mut self.peers[peer_idx].paths[path_idx];
        let job = path.prepare_seal(buf, DATA_FRAME_HEADER_LEN + len, now)?;
        path.data_sent(now);
        Some(job)
    }

    /// A datagram `t` could not leave: larger than its path's MTU. Later
    /// datagrams of that size or more avoid the path (smaller ones, such as
    /// ACKs, still use it); the lost one is counted.
    pub fn datagram_too_big(&mut self, t: Transmit) {
        self.drops.too_big += 1;
        if let Some(&(peer, path)) = t.path.and_then(|id| self.path_at.get(&id)) {
            self.peers[peer].paths[path].too_big(t.len);
        }
    }

    /// Keeps a copy of a data packet about to go out on a path, for a
    /// re-send should the path die (only with another path to re-send on).
    pub(super) fn log_in_flight(&mut self, peer_idx: usize, path_idx: usize, seq: u64, packet: &[u8]) {
        let peer = &mut self.peers[peer_idx];
        if peer.paths.len() > 1 {
            peer.paths[path_idx].log_in_flight(seq, packet);
        }
    }

    /// Sends again, on live paths, what a path that just died had sent and
    /// its peer had not reported: their sequence numbers are kept, so the
    /// receiver slots them in (or drops them as duplicates).
    pub(super) fn resend_in_flight(&mut self, peer_idx: usize, path_idx: usize, now: Instant) {
        let packets = self.peers[peer_idx].paths[path_idx].take_in_flight();
        for (seq, packet) in packets {
            let len = packet.len();
            let Some(to) = pick_path(&mut self.peers[peer_idx], len + OVERHEAD, now) else {
                self.drops.no_path += 1;
                return;
            };
            let mut buf = vec![0u8; HEADROOM + len + TAG_LEN];
            buf[HEADROOM..HEADROOM + len].copy_from_slice(&packet);
            let times = self.peers[peer_idx].paths[to].timestamps(self.clock, now);
            frame::encode_data_header(&mut buf[DATA_HEADER_LEN..HEADROOM], times, seq);
            self.log_in_flight(peer_idx, to, seq, &packet);
            let Some(t) = self.seal_on_path(peer_idx, to, &mut buf, DATA_FRAME_HEADER_LEN + len, now) else {
                continue;
            };
            self.peers[peer_idx].paths[to].data_sent(now);
            self.peers[peer_idx].resent += 1;
            buf.truncate(t.len);
            self.push_pending(Pending::Raw {
                socket: t.socket,
                dest: t.dest,
                path: self.peers[peer_idx].paths[to].id(),
                bytes: buf,
            });
        }
    }

    /// Encrypts the frame at `buf[DATA_HEADER_LEN..][..frame_len]` with the
    /// path's current session and accounts for it.
    pub(super) fn seal_on_path(
        &mut self,
        peer_idx: usize,
        path_idx: usize,
        buf: &mut [u8],
        frame_len: usize,
        now: Instant,
    ) -> Option<Transmit> {
        let job = self.peers[peer_idx].paths[path_idx].prepare_seal(buf, frame_len, now)?;
        Some(job.seal(buf))
    }

    /// Next control datagram to send, written into `buf` (at least 256 bytes).
    pub fn poll_transmit(&mut self, buf: &mut [u8], now: Instant) -> Option<Transmit> {
        self.now = self.now.max(now);
        while let Some(p) = self.pending.pop_front() {
            match p {
                Pending::Cookie { socket, dest, msg } => {
                    return Some(Transmit::copied(buf, socket, dest, None, &msg))
                }
                Pending::Raw {
                    socket,
                    dest,
                    path,
                    bytes,
                } => return Some(Transmit::copied(buf, socket, dest, Some(path), &bytes)),
                Pending::Keepalive { path, reply } => {
                    // Gone if a reload removed the path.
                    let Some(&(peer, path)) = self.path_at.get(&path) else {
                        continue;
                    };
                    let paths = &self.peers[peer].paths;
                    let p = &paths[path];
                    let no_data = !p.carries_data(any_normal_usable(paths));
                    let times = p.timestamps(self.clock, now);
                    let report = p.receive_report();
                    frame::encode_keepalive(
                        &mut buf[DATA_HEADER_LEN..DATA_HEADER_LEN + KEEPALIVE_LEN],
                        times,
                        report,
                        reply,
                        no_data,
                    );
                    self.peers[peer].paths[path].keepalive_sent(now, reply, no_data);
                    self.wakeups.touch(peer);
                    if let Some(t) = self.seal_on_path(peer, path, buf, KEEPALIVE_LEN, now) {
                        return Some(t);
                    }
                }
            }
        }
        None
    }
}

/// The path for a datagram of `size` bytes to `peer` (earliest arrival).
pub(super) fn pick_path(peer: &mut Peer, size: usize, now: Instant) -> Option<usize> {
    peer.candidates.clear();
    peer.candidates.extend(peer.paths.iter().map(|p| p.candidate()));
    peer.scheduler.pick(&peer.candidates, size, now)
}
