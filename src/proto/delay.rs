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
/// How long a peak of the inbound queue is remembered: long enough to cover
/// the next burst of a sawtoothing TCP flow, short enough to forget a queue
/// that has drained.
const PEAK_WINDOW: Duration = Duration::from_secs(1);

/// Minimum over a sliding window of about `window`, in O(1) memory: the
/// best sample, and the best since it (which takes over when it expires).
#[derive(Debug, Clone, Copy, Default)]
struct WindowedMin {
    best: Option<(i64, Instant)>,
    next: Option<(i64, Instant)>,
}

impl WindowedMin {
    fn update(&mut self, v: i64, now: Instant) -> i64 {
        self.update_within(v, now, MIN_WINDOW)
    }

    fn update_within(&mut self, v: i64, now: Instant, window: Duration) -> i64 {
        if self
            .best
            .is_some_and(|(_, at)| now.saturating_duration_since(at) > window)
        {
            self.best = self.next.take();
        }
        match self.best {
            Some((b, _)) if v > b => {
                let stale = |at: Instant| now.saturating_duration_since(at) > window / 2;
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

/// Time constant of the queue estimates: a queue is judged on the last few
/// tens of milliseconds, however few samples a path gets (a slow path the
/// peer sends nothing on yields one sample per report).
const QUEUE_TAU: Duration = Duration::from_millis(25);

/// Exponential average over time (`QUEUE_TAU`), with every sample weighing
/// at least 1/16: a per-sample average (as SRTT's 1/8) would lag by seconds
/// on a path sampled only by its reports, and judge it on a queue long gone.
#[derive(Debug, Clone, Copy, Default)]
struct RecentAverage {
    value: f64,
    at: Option<Instant>,
}

impl RecentAverage {
    fn update(&mut self, v: f64, now: Instant) {
        let w = self.at.map_or(1.0, |at| {
            (now.saturating_duration_since(at).as_secs_f64() / QUEUE_TAU.as_secs_f64()).clamp(1.0 / 16.0, 1.0)
        });
        self.value += (v - self.value) * w;
        self.at = Some(now);
    }
}

/// Smoothed RTT and variance from timestamp echoes (RFC 6298 constants), and
/// the windowed minimum: the path's delay without queueing.
#[derive(Debug, Clone, Copy, Default)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    min: WindowedMin,
    /// RTT over the last `QUEUE_TAU` (µs), for the queue estimate.
    recent_us: RecentAverage,
}

impl RttEstimator {
    pub fn sample(&mut self, rtt: Duration, now: Instant) {
        self.min.update(rtt.as_micros() as i64, now);
        self.recent_us.update(rtt.as_micros() as f64, now);
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

    /// Queueing delay the recent RTT shows above the minimum (both ways).
    pub fn queueing(&self) -> Duration {
        match (self.recent_us.at, self.min.get()) {
            (Some(_), Some(m)) => Duration::from_micros((self.recent_us.value - m as f64).max(0.0) as u64),
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
    /// Recent excess over the minimum, µs.
    excess_us: RecentAverage,
    /// Largest excess of the last `PEAK_WINDOW` (negated: a windowed
    /// minimum of the negation is a windowed maximum).
    peak: WindowedMin,
}

impl InboundDelay {
    /// A frame stamped `peer_ts` (peer's µs clock) arrived at `local_us`.
    pub fn sample(&mut self, local_us: u32, peer_ts: u32, now: Instant) {
        let raw = local_us.wrapping_sub(peer_ts);
        let base = *self.base.get_or_insert(raw);
        let rel = i64::from(raw.wrapping_sub(base) as i32);
        let min = self.min.update(rel, now);
        let excess = rel - min;
        self.excess_us.update(excess as f64, now);
        self.peak.update_within(-excess, now, PEAK_WINDOW);
    }

    /// Smoothed queueing delay towards us.
    pub fn queueing(&self) -> Duration {
        Duration::from_micros(self.excess_us.value.max(0.0) as u64)
    }

    /// Largest queueing delay towards us over the last second, unsmoothed:
    /// how late a packet on this path may come while its queue swings.
    pub fn recent_peak(&self) -> Duration {
        Duration::from_micros(self.peak.get().map_or(0, |p| (-p).max(0) as u64))
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

    #[test]
    fn inbound_peak_holds_a_spike_for_about_a_second() {
        let t0 = Instant::now();
        let mut d = InboundDelay::default();
        let (mut local, mut peer) = (0_u32, 0_u32);
        let mut feed = |d: &mut InboundDelay, from_ms: u32, to_ms: u32, owd_us: u32| {
            for i in from_ms..to_ms {
                d.sample(local.wrapping_add(owd_us), peer, t0 + MS * i);
                local = local.wrapping_add(1_000);
                peer = peer.wrapping_add(1_000);
            }
        };
        feed(&mut d, 0, 100, 10_000);
        assert_eq!(d.recent_peak(), Duration::ZERO);
        // Three packets queue 40 ms: the smoothed figure barely moves, the
        // peak takes all of it at once.
        feed(&mut d, 100, 103, 50_000);
        feed(&mut d, 103, 200, 10_000);
        assert!(d.queueing() < MS * 5, "{:?}", d.queueing());
        assert_eq!(d.recent_peak(), MS * 40);
        // Still remembered 0.8 s later, forgotten after the window.
        feed(&mut d, 200, 900, 10_000);
        assert_eq!(d.recent_peak(), MS * 40);
        feed(&mut d, 900, 1_700, 10_000);
        assert_eq!(d.recent_peak(), Duration::ZERO);
    }
}
