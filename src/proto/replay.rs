//! Anti-replay sliding window over 64-bit message counters.
//!
//! Paths of different latency reorder packets heavily, so the window is wide
//! (4096 counters, RFC 6479 style bitmap of u64 blocks). `check` runs before
//! decryption (cheap rejection of replays); `update` runs only after the
//! packet authenticated, so forged counters cannot move the window.

const BLOCKS: usize = 64;
const BLOCK_BITS: u64 = 64;
/// Counters this far behind the highest seen are still accepted once.
pub const WINDOW: u64 = (BLOCKS as u64 - 1) * BLOCK_BITS;

#[derive(Clone)]
pub struct ReplayWindow {
    /// Highest counter accepted + 1 (0 = nothing yet).
    next: u64,
    bitmap: [u64; BLOCKS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayWindow {
    pub fn new() -> Self {
        ReplayWindow {
            next: 0,
            bitmap: [0; BLOCKS],
        }
    }

    /// Would `counter` be accepted? Does not change the window.
    pub fn check(&self, counter: u64) -> bool {
        // The last counter has no successor to record: never valid.
        if counter == u64::MAX {
            return false;
        }
        if counter >= self.next {
            return true;
        }
        if self.next - 1 - counter > WINDOW {
            return false;
        }
        let (block, bit) = Self::position(counter);
        self.bitmap[block] & (1 << bit) == 0
    }

    /// Marks `counter` as received. Returns false if it was not acceptable.
    pub fn update(&mut self, counter: u64) -> bool {
        if !self.check(counter) {
            return false;
        }
        if counter >= self.next {
            let current_block = self.next.saturating_sub(1) / BLOCK_BITS;
            let new_block = counter / BLOCK_BITS;
            let advance = if self.next == 0 {
                BLOCKS as u64
            } else {
                new_block - current_block
            };
            for i in 1..=advance.min(BLOCKS as u64) {
                let b = ((current_block + i) % BLOCKS as u64) as usize;
                self.bitmap[b] = 0;
            }
            self.next = counter + 1;
        }
        let (block, bit) = Self::position(counter);
        self.bitmap[block] |= 1 << bit;
        true
    }

    fn position(counter: u64) -> (usize, u64) {
        (
            ((counter / BLOCK_BITS) % BLOCKS as u64) as usize,
            counter % BLOCK_BITS,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_once() {
        let mut w = ReplayWindow::new();
        assert!(w.update(0));
        assert!(!w.update(0));
        assert!(w.update(5));
        assert!(w.update(3));
        assert!(!w.check(3));
        assert!(w.check(4));
    }

    #[test]
    fn window_is_at_least_2048_and_old_is_refused() {
        let mut w = ReplayWindow::new();
        assert!(w.update(10_000));
        assert!(w.check(10_000 - 2048));
        assert!(w.check(10_000 - WINDOW));
        assert!(!w.check(10_000 - WINDOW - 1));
        assert!(w.update(10_000 - 2048));
        assert!(!w.update(10_000 - 2048));
    }

    #[test]
    fn big_jump_clears_bitmap() {
        let mut w = ReplayWindow::new();
        for c in 0..100 {
            assert!(w.update(c));
        }
        assert!(w.update(1_000_000));
        // Counters inside the new window that were never seen are accepted.
        assert!(w.update(1_000_000 - 64));
        assert!(w.update(999_999));
        assert!(!w.update(999_999));
    }

    #[test]
    fn matches_a_reference_set() {
        use std::collections::BTreeSet;
        // Deterministic pseudo-random walk with reordering and duplicates.
        let mut w = ReplayWindow::new();
        let mut seen = BTreeSet::new();
        let mut max = 0u64;
        let mut x: u64 = 0x1234_5678;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let c = (i + (x % 3000)).saturating_sub(1500);
            let too_old = !seen.is_empty() && c < max && max - c > WINDOW;
            let expect = !seen.contains(&c) && !too_old;
            assert_eq!(w.update(c), expect, "counter {c} at step {i}");
            if expect {
                seen.insert(c);
                max = max.max(c);
            }
        }
    }

    #[test]
    fn the_last_counter_is_never_accepted() {
        // Found by fuzzing (transport, finding 3): it has no successor.
        let mut w = ReplayWindow::new();
        assert!(!w.update(u64::MAX));
        assert!(w.update(u64::MAX - 1));
        assert!(!w.update(u64::MAX));
    }
}
