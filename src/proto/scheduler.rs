//! Path choice for each outgoing packet: earliest expected arrival.
//!
//! For every usable path the scheduler predicts when the packet would reach
//! the peer: `now + backlog + size / rate + one_way_delay`, where the backlog
//! is the virtual queue (bytes already given to the path that have not left
//! at its rate) plus the standing queue the path's RTT shows at the
//! bottleneck (what the virtual queue misses when the rate is
//! over-estimated). The packet goes to the earliest arrival, so the fastest
//! path fills first and slower paths take the overflow; the receiver then
//! sees little reordering, and no weights need configuring.
//!
//! A path whose backlog exceeds `MAX_BACKLOG` is full: it is skipped while
//! another path has room; when all are full, the least backlog goes first. Without this, a path 50 ms faster than another
//! would be pushed to 50 ms of queue before the other is used, and real
//! bottleneck buffers are often shorter than that: the fast path would drop
//! instead of the slow one carrying the overflow.
//!
//! `rate` is the path's capacity (its delivery rate measured while it was
//! saturated, or what it carried since, if more) with a probing gain while it shows no queue (so a path that
//! could carry more gets the chance to show it); a path never saturated is
//! assumed to carry at least `UNMEASURED_RATE`; at most the configured
//! `bandwidth_up`. `fallback` (and lossy) paths carry
//! traffic only when no normal path is usable.

use std::time::{Duration, Instant};

/// Send slightly more than measured, so the estimate can grow to capacity.
const PROBE_GAIN: f64 = 1.1;
/// Gain over what a never-saturated path carried: doubles its share per
/// measurement, like TCP's slow start, without flooding a small path.
const STARTUP_GAIN: f64 = 2.0;
/// Expected extra delay of a lost packet (the sender's recovery): weights a
/// path's arrival by its loss, so light traffic avoids a lossy path.
const LOSS_PENALTY: Duration = Duration::from_millis(200);
/// Standing queue above which a path is taken to be at capacity.
pub const SATURATED_QUEUE: Duration = Duration::from_millis(5);
/// Queueing delay above which a path is full (see the module doc).
pub const MAX_BACKLOG: Duration = Duration::from_millis(20);
/// A measured path is never scheduled as if it were slower than this.
pub const MIN_RATE: f64 = 1e6;
/// Rate assumed for a path with no recent measurement: optimistic, so an
/// idle path is tried (and measured) rather than starved; `bandwidth_up`
/// caps it.
pub const UNMEASURED_RATE: f64 = 100e6;

/// What the scheduler knows of one path.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub usable: bool,
    pub fallback: bool,
    /// Estimated one-way propagation delay (minimum RTT / 2).
    pub owd: Duration,
    /// Standing queue seen at the bottleneck (SRTT − minimum RTT).
    pub queued: Duration,
    /// Measured delivery rate (bit/s), if any: a lower bound of what the
    /// path can carry unless it was measured while saturated.
    pub rate: Option<f64>,
    /// Delivery rate measured while the path was saturated (bit/s): its
    /// capacity, as far as we know.
    pub capacity: Option<f64>,
    /// Measured loss rate (0..1): a lost packet arrives a recovery later.
    pub loss: f64,
    /// Configured `bandwidth_up` (bit/s): a cap.
    pub cap: Option<u64>,
    /// Largest datagram the path carries (its MTU, once learned).
    pub max_size: usize,
}

impl Candidate {
    fn rate(&self) -> f64 {
        // A path whose RTT shows a queue is at capacity: its measured rate
        // is the capacity, and probing above it only feeds the queue.
        let gain = if self.queued > SATURATED_QUEUE {
            1.0
        } else {
            PROBE_GAIN
        };
        let r = match (self.capacity, self.rate) {
            // It carried `m`: a capacity below that is out of date.
            (Some(c), m) => (c.max(m.unwrap_or(0.0)) * gain).max(MIN_RATE),
            // Never saturated: it carried only what we gave it, a lower bound
            // (a path the scheduler under-uses would stay under-estimated).
            (None, Some(m)) => (m * STARTUP_GAIN).max(MIN_RATE),
            (None, None) => UNMEASURED_RATE,
        };
        self.cap.map_or(r, |c| r.min(c as f64))
    }
}

#[derive(Debug, Default)]
pub struct Scheduler {
    busy_until: Vec<Option<Instant>>,
}

impl Scheduler {
    /// Picks the path for a datagram of `size` bytes sent at `now`.
    pub fn pick(&mut self, paths: &[Candidate], size: usize, now: Instant) -> Option<usize> {
        if self.busy_until.len() != paths.len() {
            self.busy_until.resize(paths.len(), None);
        }
        let any_normal = paths.iter().any(|p| p.usable && !p.fallback);
        // Order: paths with room by earliest arrival; when every path is
        // full, the least backlog, so all bottleneck buffers fill evenly and
        // TCP's losses come late (a fast path pushed far past the others'
        // queues would overflow first).
        let mut best: Option<((bool, Duration, Instant), usize, Instant)> = None;
        for (i, p) in paths.iter().enumerate() {
            if !p.usable || p.fallback == any_normal {
                self.busy_until[i] = None;
                continue;
            }
            if size > p.max_size {
                continue;
            }
            let start = self.busy_until[i].map_or(now, |b| b.max(now));
            let backlog = start - now + p.queued;
            let full = backlog > MAX_BACKLOG;
            let done = start + Duration::from_secs_f64(size as f64 * 8.0 / p.rate());
            let arrival = done + p.queued + p.owd + LOSS_PENALTY.mul_f64(p.loss.clamp(0.0, 1.0));
            let key = (full, if full { backlog } else { Duration::ZERO }, arrival);
            if best.is_none_or(|(k, _, _)| key < k) {
                best = Some((key, i, done));
            }
        }
        let (_, i, done) = best?;
        self.busy_until[i] = Some(done);
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(owd_ms: u64, rate_mbit: Option<f64>) -> Candidate {
        Candidate {
            usable: true,
            fallback: false,
            owd: Duration::from_millis(owd_ms),
            queued: Duration::ZERO,
            loss: 0.0,
            max_size: usize::MAX,
            rate: rate_mbit.map(|r| r * 1e6 / PROBE_GAIN),
            capacity: rate_mbit.map(|r| r * 1e6 / PROBE_GAIN),
            cap: None,
        }
    }

    /// Shares of `n` packets of 1250 bytes offered at `offered_mbit`.
    fn shares(paths: &[Candidate], n: usize, offered_mbit: f64) -> Vec<usize> {
        let mut s = Scheduler::default();
        let t0 = Instant::now();
        let gap = Duration::from_secs_f64(1250.0 * 8.0 / (offered_mbit * 1e6));
        let mut counts = vec![0; paths.len()];
        for k in 0..n {
            counts[s.pick(paths, 1250, t0 + gap * k as u32).unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn equal_paths_alternate() {
        let mut s = Scheduler::default();
        let p = [c(10, None), c(10, None)];
        let now = Instant::now();
        let picks: Vec<_> = (0..4).map(|_| s.pick(&p, 1000, now).unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 0, 1]);
    }

    #[test]
    fn saturated_paths_share_by_rate() {
        let s = shares(&[c(10, Some(80.0)), c(10, Some(20.0))], 10_000, 200.0);
        assert!((7900..=8100).contains(&s[0]), "{s:?}");
    }

    #[test]
    fn light_load_uses_only_the_fast_path() {
        // 10 Mbit/s offered; the 10 ms path can carry it all.
        let s = shares(&[c(10, Some(50.0)), c(60, Some(50.0))], 5_000, 10.0);
        assert_eq!(s, vec![5_000, 0]);
    }

    #[test]
    fn heavy_load_overflows_to_the_slow_path() {
        // 100 Mbit/s offered over 50 + 50: both needed; the fast one carries more.
        let s = shares(&[c(10, Some(50.0)), c(60, Some(50.0))], 20_000, 100.0);
        assert!(s[1] > 5_000 && s[0] > s[1], "{s:?}");
    }

    #[test]
    fn a_full_fast_path_overflows_before_its_queue_exceeds_the_limit() {
        // 80 Mbit/s over 50 + 50 with 50 ms between them: the fast path carries
        // its rate and the slow path the rest, and the fast path's queue stays
        // under the limit instead of growing to the 50 ms difference.
        let paths = [c(10, Some(50.0)), c(60, Some(50.0))];
        let mut s = Scheduler::default();
        let t0 = Instant::now();
        let gap = Duration::from_secs_f64(1250.0 * 8.0 / 80e6);
        let (mut fast, mut worst) = (0, Duration::ZERO);
        for k in 0..20_000 {
            let now = t0 + gap * k;
            fast += usize::from(s.pick(&paths, 1250, now).unwrap() == 0);
            worst = worst.max(s.busy_until[0].unwrap().saturating_duration_since(now));
        }
        let share = fast as f64 / 20_000.0;
        assert!((0.58..=0.66).contains(&share), "fast path share {share}");
        assert!(
            worst <= MAX_BACKLOG + Duration::from_millis(1),
            "fast path queue {worst:?}"
        );
    }

    #[test]
    fn a_capacity_below_what_the_path_carries_is_out_of_date() {
        // Measured at 20 Mbit/s while a burst queued, later carrying 40: the
        // path is scheduled as the 40 Mbit/s path it is.
        let mut stale = c(10, Some(40.0));
        stale.capacity = Some(20e6);
        let s = shares(&[stale, c(10, Some(40.0))], 10_000, 80.0);
        assert!((4_800..=5_200).contains(&s[0]), "{s:?}");
    }

    #[test]
    fn a_standing_queue_diverts_traffic() {
        // Same delay and rate, but the first path's RTT shows 30 ms of queue
        // that the virtual queue does not know about.
        let mut queued = c(10, Some(50.0));
        queued.queued = Duration::from_millis(30);
        let s = shares(&[queued, c(10, Some(50.0))], 5_000, 40.0);
        assert_eq!(s, vec![0, 5_000]);
    }

    #[test]
    fn light_traffic_avoids_a_lossy_path() {
        let mut lossy = c(10, Some(50.0));
        lossy.loss = 0.2;
        let s = shares(&[lossy, c(12, Some(50.0))], 1_000, 5.0);
        assert_eq!(s, vec![0, 1_000]);
    }

    #[test]
    fn a_datagram_too_big_for_a_path_goes_elsewhere() {
        let mut small = c(5, Some(100.0));
        small.max_size = 1300;
        let mut s = Scheduler::default();
        let now = Instant::now();
        assert_eq!(s.pick(&[small, c(50, Some(100.0))], 1472, now), Some(1));
        assert_eq!(s.pick(&[small, c(50, Some(100.0))], 100, now), Some(0));
        assert_eq!(s.pick(&[small], 1472, now), None);
    }

    #[test]
    fn cap_limits_a_path() {
        let mut capped = c(5, Some(100.0));
        capped.cap = Some(10_000_000);
        let s = shares(&[capped, c(20, Some(100.0))], 10_000, 100.0);
        assert!(s[0] < 1_300, "capped at 10 of 100 Mbit/s: {s:?}");
    }

    #[test]
    fn unusable_and_fallback_paths() {
        let mut s = Scheduler::default();
        let now = Instant::now();
        let mut down = c(1, None);
        down.usable = false;
        let mut fb = c(1, None);
        fb.fallback = true;
        assert_eq!(s.pick(&[down, c(10, None), fb], 100, now), Some(1));
        assert_eq!(s.pick(&[down, down, fb], 100, now), Some(2));
        assert_eq!(s.pick(&[down, down], 100, now), None);
    }
}
