//! Which peers need their timers run, so that a concentrator with 10 000
//! peers does not visit every one of them for every batch of packets.
//!
//! A peer is *touched* by any input that concerns it (a packet from the TUN
//! for it, a datagram from it, a control message sent to it): its timers run
//! at the next `handle_timeout` and its next deadline is computed again.
//! An untouched peer is visited only when its own deadline comes, found in a
//! min-heap. A heap entry is valid while it equals the peer's deadline as
//! last computed; stale entries are skipped when they reach the top, and the
//! heap is rebuilt when they outnumber the peers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

#[derive(Debug, Default)]
pub struct Wakeups {
    /// Each peer's deadline as last computed.
    due: Vec<Option<Instant>>,
    /// Touched since its timers last ran.
    touched: Vec<bool>,
    touched_list: Vec<usize>,
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
}

impl Wakeups {
    /// Tracks `peers` peers, every one touched (a new or reconfigured
    /// tunnel computes everything once).
    pub fn reset(&mut self, peers: usize) {
        self.due = vec![None; peers];
        self.touched = vec![true; peers];
        self.touched_list = (0..peers).collect();
        self.heap.clear();
    }

    pub fn touch(&mut self, peer: usize) {
        if let Some(t) = self.touched.get_mut(peer) {
            if !*t {
                *t = true;
                self.touched_list.push(peer);
            }
        }
    }

    /// Peers touched since the last call (the deadlines to recompute).
    pub fn touched(&self) -> &[usize] {
        &self.touched_list
    }

    /// Takes the touched peers (whose timers the caller now runs); hand the
    /// list back with [`Wakeups::give_back`] to reuse its allocation.
    pub fn take_touched(&mut self) -> Vec<usize> {
        for &p in &self.touched_list {
            self.touched[p] = false;
        }
        std::mem::take(&mut self.touched_list)
    }

    pub fn give_back(&mut self, mut list: Vec<usize>) {
        if self.touched_list.is_empty() {
            list.clear();
            self.touched_list = list;
        }
    }

    /// Removes and returns a peer whose deadline is at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<usize> {
        while let Some(&Reverse((t, peer))) = self.heap.peek() {
            if t > now {
                return None;
            }
            self.heap.pop();
            if self.due.get(peer) == Some(&Some(t)) {
                self.due[peer] = None;
                return Some(peer);
            }
        }
        None
    }

    /// Records the peer's next deadline.
    pub fn set(&mut self, peer: usize, deadline: Option<Instant>) {
        let Some(slot) = self.due.get_mut(peer) else {
            return;
        };
        if *slot == deadline {
            return;
        }
        *slot = deadline;
        if let Some(t) = deadline {
            self.heap.push(Reverse((t, peer)));
        }
        if self.heap.len() > 2 * self.due.len() + 1024 {
            self.heap = self
                .due
                .iter()
                .enumerate()
                .filter_map(|(p, t)| t.map(|t| Reverse((t, p))))
                .collect();
        }
    }

    /// The earliest deadline of any peer.
    pub fn earliest(&mut self) -> Option<Instant> {
        while let Some(&Reverse((t, peer))) = self.heap.peek() {
            if self.due.get(peer) == Some(&Some(t)) {
                return Some(t);
            }
            self.heap.pop();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn only_due_peers_are_popped_and_moved_deadlines_replace_old_ones() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut w = Wakeups::default();
        w.reset(3);
        assert_eq!(w.touched(), [0, 1, 2]);
        let list = w.take_touched();
        assert_eq!(list, [0, 1, 2]);
        w.give_back(list);
        assert!(w.touched().is_empty());
        w.set(0, Some(ms(10)));
        w.set(1, Some(ms(20)));
        w.set(2, None);
        // Peer 0's deadline moves later: its old entry is stale.
        w.set(0, Some(ms(30)));
        assert_eq!(w.earliest(), Some(ms(20)));
        assert_eq!(w.pop_due(ms(15)), None);
        assert_eq!(w.pop_due(ms(25)), Some(1));
        assert_eq!(w.pop_due(ms(25)), None);
        assert_eq!(w.earliest(), Some(ms(30)));
        assert_eq!(w.pop_due(ms(30)), Some(0));
        assert_eq!(w.earliest(), None);
    }

    #[test]
    fn a_touched_peer_is_listed_once_and_the_heap_stays_bounded() {
        let t0 = Instant::now();
        let mut w = Wakeups::default();
        w.reset(2);
        w.take_touched();
        w.touch(1);
        w.touch(1);
        assert_eq!(w.touched(), [1]);
        for i in 0..100_000u64 {
            w.set(0, Some(t0 + Duration::from_micros(i)));
        }
        assert!(w.heap.len() <= 2 * 2 + 1025, "{}", w.heap.len());
        assert_eq!(w.earliest(), Some(t0 + Duration::from_micros(99_999)));
    }
}
