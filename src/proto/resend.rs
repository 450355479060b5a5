//! Copies of the data packets a path sent that its peer has not reported
//! received yet. When the path is found dead, they are sent again on a live
//! one: TCP then sees a short delay instead of a window of losses. Re-sending
//! one that did arrive is harmless (the receiver drops it as a duplicate).
//!
//! Bounded (packets and bytes, the newest kept: the oldest unreported are the
//! likeliest to have arrived); buffers are recycled, so a busy path does not
//! allocate per packet.

use std::collections::VecDeque;

/// Most packets kept per path.
pub const MAX_PACKETS: usize = 1024;
/// Most bytes kept per path.
pub const MAX_BYTES: usize = 1 << 20;

struct Entry {
    /// The path's sent-packet count once this one was sent.
    tx_count: u64,
    seq: u64,
    packet: Vec<u8>,
}

#[derive(Default)]
pub struct InFlightLog {
    entries: VecDeque<Entry>,
    bytes: usize,
    spare: Vec<Vec<u8>>,
}

impl InFlightLog {
    /// Remembers a data packet (sequence `seq`, the IP packet) just sent.
    pub fn record(&mut self, tx_count: u64, seq: u64, packet: &[u8]) {
        if packet.len() > MAX_BYTES {
            return;
        }
        while self.entries.len() >= MAX_PACKETS || self.bytes + packet.len() > MAX_BYTES {
            self.evict_front();
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(packet);
        self.bytes += buf.len();
        self.entries.push_back(Entry {
            tx_count,
            seq,
            packet: buf,
        });
    }

    /// The peer reported everything up to our `tx_count`-th packet seen.
    pub fn acked(&mut self, tx_count: u64) {
        while self.entries.front().is_some_and(|e| e.tx_count <= tx_count) {
            self.evict_front();
        }
    }

    /// Hands over every packet not reported yet (oldest first) and forgets them.
    pub fn take(&mut self) -> Vec<(u64, Vec<u8>)> {
        self.bytes = 0;
        self.entries.drain(..).map(|e| (e.seq, e.packet)).collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn evict_front(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.bytes -= e.packet.len();
            if self.spare.len() < 64 {
                self.spare.push(e.packet);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_was_not_reported_within_bounds() {
        let mut log = InFlightLog::default();
        for i in 1..=10u64 {
            log.record(i, 100 + i, &[i as u8; 100]);
        }
        log.acked(7);
        let left = log.take();
        assert_eq!(left.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [108, 109, 110]);
        assert_eq!(left[0].1, vec![8u8; 100]);
        assert!(log.is_empty());
        for i in 0..(MAX_PACKETS as u64 + 10) {
            log.record(i, i, &[0; 10]);
        }
        assert_eq!(log.len(), MAX_PACKETS);
        for i in 0..100u64 {
            log.record(i, i, &[0; 100_000]);
        }
        assert!(log.len() <= MAX_BYTES / 100_000);
    }
}
