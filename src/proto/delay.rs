//! Delay estimation for one path: round-trip time from timestamp echoes, and
//! the queueing delay on the way in from the peer's send timestamps.
//!
//! An RTT cannot tell in which direction a queue is. The scheduler needs the
//! queue on the way *out* (it decides where to send); the resequencer needs
//! the delay on the way *in*. The peer's clock has an unknown but constant
//! offset from ours, so `arrival − peer timestamp` above its recent minimum is
//! time our packets' counterparts spent queued towards us; what the RTT shows
//! above its minimum beyond that is queued on the way out.

use std::time::{Duration, Instant};

/// How long a minimum is trusted (routes change, clocks drift).
const MIN_WINDOW: Duration = Duration::from_secs(10);

/// Minimum over a sliding window of about `MIN_WINDOW`, in O(1) memory: the
/// best sample, and the best since it (which takes over when it expires).
#[derive(Debug, Clone, Copy, Default)]
struct WindowedMin {
    best: Option<(i64, Instant)>,
    next: Option<(i64, Instant)>,
}

impl WindowedMin {
    fn update(&mut self, v: i64, now: Instant) -> i64 {
        if self
            .best
            .is_some_and(|(_, at)| now.saturating_duration_since(at) > MIN_WINDOW)
        {
            self.best = self.next.take();
        }
        match self.best {
            Some((b, _)) if v > b => {
                let stale = |at: Instant| now.saturating_duration_since(at) > MIN_WINDOW / 2;
                if self.next.is_none_or(|(n, at)| v <= n || stale(at)) {
                    self.next = Some((v, now));
                }
                b
            }
            _ => {
                self.best = Some((v, now));
                self.next = None;
                v
            }
        }
    }

    fn get(&self) -> Option<i64> {
        self.best.map(|(b, _)| b)
    }
}

/// Smoothed RTT and variance from timestamp echoes (RFC 6298 constants), and
/// the windowed minimum: the path's delay without queueing.
#[derive(Debug, Clone, Copy, Default)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    min: WindowedMin,
}

impl RttEstimator {
    pub fn sample(&mut self, rtt: Duration, now: Instant) {
        self.min.update(rtt.as_micros() as i64, now);
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + delta) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }

    /// RTT without queueing delay (windowed minimum).
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min.get().map(|us| Duration::from_micros(us as u64))
    }

    /// Queueing delay the smoothed RTT shows above the minimum (both ways).
    pub fn queueing(&self) -> Duration {
        match (self.srtt, self.min_rtt()) {
            (Some(s), Some(m)) => s.saturating_sub(m),
            _ => Duration::ZERO,
        }
    }
}

/// Queueing delay on the way in, from `arrival − peer timestamp`.
#[derive(Debug, Clone, Copy, Default)]
pub struct InboundDelay {
    /// First raw offset seen: later ones are taken relative to it, so the
    /// 32-bit microsecond clocks may wrap.
    base: Option<u32>,
    min: WindowedMin,
    /// Smoothed excess over the minimum, µs.
    excess_us: f64,
}

impl InboundDelay {
    /// A frame stamped `peer_ts` (peer's µs clock) arrived at `local_us`.
    pub fn sample(&mut self, local_us: u32, peer_ts: u32, now: Instant) {
        let raw = local_us.wrapping_sub(peer_ts);
        let base = *self.base.get_or_insert(raw);
        let rel = i64::from(raw.wrapping_sub(base) as i32);
        let min = self.min.update(rel, now);
        let excess = (rel - min) as f64;
        self.excess_us += (excess - self.excess_us) / 8.0;
    }

    /// Smoothed queueing delay towards us.
    pub fn queueing(&self) -> Duration {
        Duration::from_micros(self.excess_us.max(0.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn windowed_min_forgets_old_minima_but_keeps_recent_ones() {
        let t0 = Instant::now();
        let mut m = WindowedMin::default();
        m.update(10, t0);
        m.update(50, t0 + MS * 6000);
        m.update(40, t0 + MS * 8000);
        assert_eq!(m.get(), Some(10));
        // The 10 expired: the best sample since it (40) takes over, not the
        // current (queued) one.
        assert_eq!(m.update(90, t0 + MS * 11_000), 40);
    }

    #[test]
    fn rtt_converges() {
        let mut r = RttEstimator::default();
        let t = Instant::now();
        r.sample(Duration::from_millis(100), t);
        assert_eq!(r.srtt(), Some(Duration::from_millis(100)));
        for _ in 0..50 {
            r.sample(Duration::from_millis(20), t);
        }
        let s = r.srtt().unwrap();
        assert!(
            s < Duration::from_millis(21) && s >= Duration::from_millis(20),
            "{s:?}"
        );
        assert!(r.rttvar() < Duration::from_millis(2));
        assert_eq!(r.min_rtt(), Some(Duration::from_millis(20)));
        r.sample(Duration::from_millis(50), t + Duration::from_secs(11));
        assert_eq!(
            r.min_rtt(),
            Some(Duration::from_millis(50)),
            "old minimum expired"
        );
    }

    #[test]
    fn rtt_queueing_is_srtt_above_the_minimum() {
        let t0 = Instant::now();
        let mut r = RttEstimator::default();
        r.sample(MS * 20, t0);
        for i in 1..100 {
            r.sample(MS * 50, t0 + MS * i);
        }
        assert_eq!(r.min_rtt(), Some(MS * 20));
        let q = r.queueing();
        assert!(q > MS * 29 && q <= MS * 30, "{q:?}");
    }

    #[test]
    fn inbound_queueing_survives_clock_offset_and_wrap() {
        let t0 = Instant::now();
        let mut d = InboundDelay::default();
        // The peer's clock is far ahead of ours; our clock wraps meanwhile.
        let (mut local, mut peer) = (u32::MAX - 5_000, 1_234_567_u32);
        for i in 0..200u32 {
            // 10 ms path; the last 100 packets queue for 15 ms more.
            let owd = if i < 100 { 10_000 } else { 25_000 };
            d.sample(local.wrapping_add(owd), peer, t0 + MS * i);
            local = local.wrapping_add(1_000);
            peer = peer.wrapping_add(1_000);
        }
        let q = d.queueing();
        assert!(q > MS * 14 && q <= MS * 15, "{q:?}");
    }
}
