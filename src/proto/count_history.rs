//! A cumulative count (packets or bytes sent on a path) over time, so that
//! a report or an RTT sample naming an instant can be matched with what had
//! been sent by then.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Keep a sample at most this often.
const STEP: Duration = Duration::from_micros(250);
/// 2 s of history at full density (a sample older than that is not matched
/// exactly: it gets the oldest count kept).
const MAX_ENTRIES: usize = 8192;

#[derive(Debug, Default)]
pub struct CountHistory {
    entries: VecDeque<(Instant, u64)>,
    /// Count before the oldest entry kept.
    floor: u64,
}

impl CountHistory {
    /// Records that the count reached `total` at `now`.
    pub fn record(&mut self, now: Instant, total: u64) {
        match self.entries.back_mut() {
            Some((at, n)) if now.saturating_duration_since(*at) < STEP => *n = total,
            _ => {
                if self.entries.len() >= MAX_ENTRIES {
                    self.floor = self.entries.pop_front().map_or(self.floor, |(_, n)| n);
                }
                self.entries.push_back((now, total));
            }
        }
    }

    /// The count at `t` (the newest entry not after it).
    pub fn at(&self, t: Instant) -> u64 {
        let n = self.entries.partition_point(|&(at, _)| at <= t);
        n.checked_sub(1).map_or(self.floor, |i| self.entries[i].1)
    }

    /// Forgets the entries; counting goes on from `total`.
    pub fn clear(&mut self, total: u64) {
        self.entries.clear();
        self.floor = total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_instant_with_a_floor_before_the_first() {
        let t0 = Instant::now();
        let mut h = CountHistory::default();
        h.record(t0, 5);
        h.record(t0 + Duration::from_micros(100), 7); // same step: updated
        h.record(t0 + Duration::from_millis(1), 9);
        assert_eq!(h.at(t0 - Duration::from_millis(1)), 0);
        assert_eq!(h.at(t0), 7);
        assert_eq!(h.at(t0 + Duration::from_micros(500)), 7);
        assert_eq!(h.at(t0 + Duration::from_secs(1)), 9);
        h.clear(9);
        assert_eq!(h.at(t0 + Duration::from_secs(1)), 9);
    }
}
