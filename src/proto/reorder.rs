//! The receiver's bounded resequencing queue.
//!
//! Packets of one peer travel over paths of different latency, so they
//! arrive out of tunnel-sequence order; TCP would read that reordering as
//! loss. The queue delivers in sequence order: an in-order packet goes
//! straight through (no copy), an early one is held (copied into a recycled
//! buffer) until the hole before it fills, or until the tunnel knows the
//! hole was lost (`skip_lost_below`), or until it has waited `timeout`
//! (then the hole is skipped: it was lost), or until the queue is full (in
//! packets or bytes). A packet whose hole was already skipped is delivered at
//! once ("late": TCP copes better with that than with a loss); a packet seen
//! before is dropped ("duplicate", which makes re-sending on another path
//! safe).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::replay::{ReplayWindow, WINDOW};
use super::stats::ReorderStatus;

/// Default bounds: enough for ~100 ms at several hundred Mbit/s.
pub const DEFAULT_MAX_PACKETS: usize = 4096;
pub const DEFAULT_MAX_BYTES: usize = 4 << 20;
/// Hold timeout bounds; the tunnel adapts the timeout within them.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(10);
pub const DEFAULT_MAX_TIMEOUT: Duration = Duration::from_millis(500);

/// What to do with an arriving packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Deliver it now, from the caller's buffer; then drain
    /// [`ResequencingQueue::pop_ready`] (packets it unblocked).
    Deliver,
    /// Copied and held; nothing to deliver now.
    Held,
    /// Seen before: drop.
    Duplicate,
}

struct Held {
    packet: Vec<u8>,
    arrived: Instant,
}

pub struct ResequencingQueue {
    /// Next sequence number expected; `None` before the first packet.
    next: Option<u64>,
    held: BTreeMap<u64, Held>,
    held_bytes: usize,
    /// Released packets waiting to be written, in order.
    ready: VecDeque<Vec<u8>>,
    /// Buffers to reuse (bounded by `max_packets`).
    pool: Vec<Vec<u8>>,
    /// Sequence numbers already delivered (or skipped and then delivered).
    delivered: ReplayWindow,
    max_packets: usize,
    max_bytes: usize,
    timeout: Duration,
    stats: ReorderStatus,
}

impl Default for ResequencingQueue {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_PACKETS, DEFAULT_MAX_BYTES)
    }
}

impl ResequencingQueue {
    pub fn new(max_packets: usize, max_bytes: usize) -> Self {
        ResequencingQueue {
            next: None,
            held: BTreeMap::new(),
            held_bytes: 0,
            ready: VecDeque::new(),
            pool: Vec::new(),
            delivered: ReplayWindow::new(),
            max_packets: max_packets.max(1),
            max_bytes,
            timeout: MIN_TIMEOUT,
            stats: ReorderStatus::default(),
        }
    }

    /// How long an early packet may wait for the hole before it.
    pub fn set_timeout(&mut self, t: Duration) {
        self.timeout = t;
        self.stats.hold_timeout_ms = t.as_secs_f64() * 1000.0;
    }

    pub fn stats(&self) -> ReorderStatus {
        let mut s = self.stats.clone();
        s.held = self.held.len() as u64;
        s
    }

    /// Files packet `seq` (whose bytes are `packet`) that arrived at `now`.
    pub fn arrive(&mut self, seq: u64, packet: &[u8], now: Instant) -> Arrival {
        if seq == u64::MAX {
            // No successor: never sent by a real peer (the tunnel drops it first).
            self.stats.duplicate += 1;
            return Arrival::Duplicate;
        }
        let next = *self.next.get_or_insert(seq);
        if seq.abs_diff(next) > WINDOW {
            // A new sequence: the sender restarted (a new process numbers
            // from its start time, ahead of anything the old one sent), or
            // nothing was heard for more than a window. Start over here.
            self.flush_all(now);
            self.next = Some(seq + 1);
            self.delivered = ReplayWindow::new();
            self.delivered.update(seq);
            self.stats.in_order += 1;
            self.stats.resyncs += 1;
            return Arrival::Deliver;
        }
        if seq < next {
            if !self.delivered.update(seq) {
                self.stats.duplicate += 1;
                return Arrival::Duplicate;
            }
            self.stats.late += 1;
            return Arrival::Deliver;
        }
        if seq == next {
            self.delivered.update(seq);
            self.next = Some(seq + 1);
            self.stats.in_order += 1;
            self.release_contiguous(now);
            return Arrival::Deliver;
        }
        if self.held.contains_key(&seq) {
            self.stats.duplicate += 1;
            return Arrival::Duplicate;
        }
        let mut buf = self.pool.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(packet);
        self.held_bytes += buf.len();
        self.held.insert(
            seq,
            Held {
                packet: buf,
                arrived: now,
            },
        );
        self.stats.max_held = self.stats.max_held.max(self.held.len() as u64);
        while self.held.len() > self.max_packets || self.held_bytes > self.max_bytes {
            self.stats.overflows += 1;
            self.skip_to_first_held(now);
        }
        Arrival::Held
    }

    /// Next released packet, in order. Give the buffer back with
    /// [`ResequencingQueue::recycle`].
    pub fn pop_ready(&mut self) -> Option<Vec<u8>> {
        self.ready.pop_front()
    }

    /// Whether released packets wait for [`ResequencingQueue::pop_ready`].
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.pool.len() < self.max_packets {
            self.pool.push(buf);
        }
    }

    /// When the oldest held packet times out.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.held
            .values()
            .map(|h| h.arrived)
            .min()
            .map(|t| t + self.timeout)
    }

    /// Skips holes until no held packet has waited out the timeout (the
    /// oldest arrival need not be the lowest sequence number: a packet
    /// from a fast path can wait behind one still on a slow path).
    pub fn handle_timeout(&mut self, now: Instant) {
        while self.poll_timeout().is_some_and(|t| t <= now) {
            self.stats.timeouts += 1;
            self.skip_to_first_held(now);
        }
    }

    /// Skips the holes below `floor`, known lost (see the tunnel's
    /// `lost_below`), and releases what waited behind them.
    pub fn skip_lost_below(&mut self, floor: u64, now: Instant) {
        while let (Some(next), Some((&first, _))) = (self.next, self.held.first_key_value()) {
            let to = first.min(floor);
            if to <= next {
                break;
            }
            self.stats.skipped = self.stats.skipped.saturating_add(to - next);
            self.next = Some(to);
            self.release_contiguous(now);
        }
    }

    /// Gives up on the hole before the first held packet and releases from
    /// there.
    fn skip_to_first_held(&mut self, now: Instant) {
        let Some((&first, _)) = self.held.first_key_value() else {
            return;
        };
        let next = self.next.unwrap_or(first);
        self.stats.skipped = self.stats.skipped.saturating_add(first.saturating_sub(next));
        self.next = Some(first);
        self.release_contiguous(now);
    }

    /// Moves every held packet that is now in sequence to `ready`.
    fn release_contiguous(&mut self, now: Instant) {
        while let Some(next) = self.next {
            let Some(h) = self.held.remove(&next) else { break };
            self.held_bytes -= h.packet.len();
            let waited_ms = now.saturating_duration_since(h.arrived).as_secs_f64() * 1000.0;
            self.stats.max_hold_ms = self.stats.max_hold_ms.max(waited_ms);
            self.delivered.update(next);
            self.stats.reordered += 1;
            self.ready.push_back(h.packet);
            self.next = Some(next + 1);
        }
    }

    fn flush_all(&mut self, now: Instant) {
        while let Some(&first) = self.held.keys().next() {
            self.next = Some(first);
            self.release_contiguous(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(q: &mut ResequencingQueue) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(p) = q.pop_ready() {
            out.push(p[0]);
            q.recycle(p);
        }
        out
    }

    #[test]
    fn holes_below_the_floor_are_skipped_and_holes_above_wait() {
        let mut q = ResequencingQueue::default();
        let t = Instant::now();
        q.arrive(0, &[0], t);
        for s in [2u64, 3, 5, 7] {
            assert_eq!(q.arrive(s, &[s as u8], t), Arrival::Held);
        }
        // 1 and 4 are lost; 6 may still come.
        q.skip_lost_below(5, t);
        assert_eq!(drain(&mut q), vec![2, 3, 5]);
        assert_eq!((q.stats().skipped, q.stats().held), (2, 1));
        // A floor at or below what is expected changes nothing.
        q.skip_lost_below(3, t);
        q.skip_lost_below(6, t);
        assert_eq!(drain(&mut q), Vec::<u8>::new());
        assert_eq!(q.arrive(6, &[6], t), Arrival::Deliver);
        assert_eq!(drain(&mut q), vec![7]);
    }

    #[test]
    fn in_order_goes_straight_through() {
        let mut q = ResequencingQueue::default();
        let t = Instant::now();
        for s in 0..10u64 {
            assert_eq!(q.arrive(s, &[s as u8], t), Arrival::Deliver);
            assert!(q.pop_ready().is_none());
        }
        assert_eq!(q.stats().in_order, 10);
    }

    #[test]
    fn early_packets_wait_for_the_hole() {
        let mut q = ResequencingQueue::default();
        let t = Instant::now();
        assert_eq!(q.arrive(0, &[0], t), Arrival::Deliver);
        assert_eq!(q.arrive(2, &[2], t), Arrival::Held);
        assert_eq!(q.arrive(3, &[3], t), Arrival::Held);
        assert_eq!(q.arrive(3, &[3], t), Arrival::Duplicate);
        assert_eq!(q.arrive(1, &[1], t), Arrival::Deliver);
        assert_eq!(drain(&mut q), vec![2, 3]);
        assert_eq!(q.arrive(2, &[2], t), Arrival::Duplicate);
        let s = q.stats();
        assert_eq!((s.in_order, s.reordered, s.duplicate, s.skipped), (2, 2, 2, 0));
    }

    #[test]
    fn timeout_skips_the_hole_and_late_packet_still_delivered() {
        let mut q = ResequencingQueue::default();
        q.set_timeout(Duration::from_millis(20));
        let t = Instant::now();
        q.arrive(0, &[0], t);
        q.arrive(3, &[3], t);
        q.arrive(4, &[4], t + Duration::from_millis(5));
        assert_eq!(q.poll_timeout(), Some(t + Duration::from_millis(20)));
        q.handle_timeout(t + Duration::from_millis(19));
        assert_eq!(drain(&mut q), Vec::<u8>::new());
        q.handle_timeout(t + Duration::from_millis(20));
        assert_eq!(drain(&mut q), vec![3, 4]);
        assert_eq!(q.stats().skipped, 2);
        assert_eq!(q.arrive(1, &[1], t), Arrival::Deliver, "late");
        assert_eq!(q.arrive(1, &[1], t), Arrival::Duplicate);
        assert_eq!(q.stats().late, 1);
        assert_eq!(q.poll_timeout(), None);
    }

    #[test]
    fn timeout_counts_from_the_oldest_arrival_not_the_lowest_sequence() {
        let mut q = ResequencingQueue::default();
        q.set_timeout(Duration::from_millis(20));
        let t = Instant::now();
        q.arrive(0, &[0], t);
        q.arrive(5, &[5], t);
        q.arrive(3, &[3], t + Duration::from_millis(15));
        q.handle_timeout(t + Duration::from_millis(20));
        assert_eq!(
            drain(&mut q),
            vec![3, 5],
            "packet 5 waited 20 ms: holes 1, 2 and 4 skipped"
        );
        assert_eq!(q.poll_timeout(), None);
    }

    #[test]
    fn bounded_in_packets_and_bytes() {
        let mut q = ResequencingQueue::new(4, 1 << 20);
        let t = Instant::now();
        q.arrive(0, &[0], t);
        for s in 2..=5u64 {
            assert_eq!(q.arrive(s, &[s as u8], t), Arrival::Held);
        }
        // The fifth held packet overflows: hole 1 is skipped.
        assert_eq!(q.arrive(6, &[6], t), Arrival::Held);
        assert_eq!(drain(&mut q), vec![2, 3, 4, 5, 6]);
        assert_eq!(q.stats().overflows, 1);
        let mut q = ResequencingQueue::new(100, 3000);
        q.arrive(0, &[0], t);
        q.arrive(2, &[2; 1500], t);
        q.arrive(3, &[3; 1500], t);
        assert_eq!(drain(&mut q), Vec::<u8>::new());
        q.arrive(4, &[4; 1500], t);
        assert_eq!(drain(&mut q), vec![2, 3, 4]);
    }

    #[test]
    fn a_sequence_that_starts_over_far_behind_or_ahead_resyncs_at_once() {
        let mut q = ResequencingQueue::default();
        let t = Instant::now();
        // Far behind (a sender whose clock went back).
        q.arrive(100_000, &[1], t);
        assert_eq!(q.arrive(0, &[2], t), Arrival::Deliver);
        assert_eq!(q.arrive(1, &[3], t), Arrival::Deliver);
        // Far ahead (a restarted sender numbers from its start time): what
        // was held is released in order first, nothing counts as skipped.
        assert_eq!(q.arrive(3, &[4], t), Arrival::Held);
        let restart = 1_700_000_000_000_000;
        assert_eq!(q.arrive(restart, &[5], t), Arrival::Deliver);
        assert_eq!(drain(&mut q), vec![4]);
        assert_eq!(q.arrive(restart + 1, &[6], t), Arrival::Deliver);
        // Within the window, a jump is a hole to wait for.
        assert_eq!(q.arrive(restart + 1 + WINDOW, &[7], t), Arrival::Held);
        let s = q.stats();
        assert_eq!((s.resyncs, s.skipped, s.duplicate), (2, 0, 0));
    }

    #[test]
    fn extreme_sequence_numbers_neither_panic_nor_deliver_the_last_one() {
        // Found by fuzzing (transport, findings 3 and 5).
        let t = Instant::now();
        let mut q = ResequencingQueue::default();
        assert_eq!(q.arrive(0, b"a", t), Arrival::Deliver);
        assert_eq!(q.arrive(u64::MAX, b"x", t), Arrival::Duplicate);
        for seq in [u64::MAX - 2, u64::MAX / 2, u64::MAX - 1] {
            let _ = q.arrive(seq, b"y", t);
            q.handle_timeout(t + Duration::from_secs(10));
            while q.pop_ready().is_some() {}
        }
        assert!(q.stats().resyncs > 0);
    }
}
