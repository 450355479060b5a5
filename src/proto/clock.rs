//! Time as the core sees it: the caller's `Instant`s, plus one wall-clock
//! anchor so handshake initiations can carry a timestamp that survives
//! restarts (a replayed initiation must carry an older one).

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
    base_unix_ns: u64,
}

impl Clock {
    /// `base_unix_ns` is the wall-clock time (ns since 1970) at `base`.
    pub fn new(base: Instant, base_unix_ns: u64) -> Self {
        Clock { base, base_unix_ns }
    }

    fn since_base(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.base)
    }

    /// Wall-clock nanoseconds at `now`.
    pub fn unix_ns(&self, now: Instant) -> u64 {
        self.base_unix_ns
            .saturating_add(u64::try_from(self.since_base(now).as_nanos()).unwrap_or(u64::MAX))
    }

    /// Wrapping microsecond clock for frame timestamps; never 0 (0 = "none").
    pub fn micros(&self, now: Instant) -> u32 {
        let us = self.since_base(now).as_micros() as u32;
        us.max(1)
    }
}
