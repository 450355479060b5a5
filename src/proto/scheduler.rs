//! Path choice for each outgoing packet: earliest expected arrival.
//!
//! For every usable path the scheduler predicts when the packet would reach
//! the peer: `now + backlog + size / rate + one_way_delay`, where the backlog
//! is the path's queue at its bottleneck, predicted from its last
//! measurement: each RTT sample says how long the packet it echoes queued
//! (sent at `t`, queued `q`); the queue now is `q` plus what we gave the path
//! since `t` at its rate, minus the time since `t`. Between samples it is
//! advanced packet by packet. Anchoring on the measurement keeps a wrong rate
//! from drifting far (a path driven at twice its capacity shows up within one
//! sample), and predicting from it keeps a sample a round trip old from being
//! taken for the queue now (which made the choice swing between paths as the
//! bursts of a TCP flow came and went). The packet goes to the earliest
//! arrival, so the fastest path fills first and slower paths take the
//! overflow; the receiver then sees little reordering, and no weights need
//! configuring.
//!
//! A path whose backlog exceeds `MAX_BACKLOG` is full: it is skipped while
//! another path has room; when all are full, the least backlog goes first.
//! Without this, a path 50 ms faster than another would be pushed to 50 ms
//! of queue before the other is used, and real bottleneck buffers are often
//! shorter than that: the fast path would drop instead of the slow one
//! carrying the overflow.
//!
//! `rate` is the path's capacity (its delivery rate measured while it was
//! saturated, or what it carried since, if more) with a probing gain while it
//! shows no queue (so a path that could carry more gets the chance to show
//! it); a path never saturated is assumed to carry at least
//! `UNMEASURED_RATE`; at most the configured `bandwidth_up`. `fallback` (and
//! lossy) paths carry traffic only when no normal path is usable.

use std::time::{Duration, Instant};

use super::count_history::CountHistory;

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
pub const MAX_BACKLOG: Duration = Duration::from_millis(10);
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
    /// Standing queue seen at the bottleneck lately (recent RTT − minimum
    /// RTT − queue on the way back).
    pub queued: Duration,
    /// Latest RTT sample: when we sent the packet it echoes, and how long
    /// that packet queued on its way out.
    pub queue_sample: Option<(Instant, Duration)>,
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
            // Never measured saturated: it carried only what we gave it, a
            // lower bound (a path the scheduler under-uses would stay
            // under-estimated), unless it shows a queue now: then what it
            // carries is what it can.
            (None, Some(m)) if self.queued > SATURATED_QUEUE => m.max(MIN_RATE),
            (None, Some(m)) => (m * STARTUP_GAIN).max(MIN_RATE),
            (None, None) => UNMEASURED_RATE,
        };
        self.cap.map_or(r, |c| r.min(c as f64))
    }
}

/// Bytes given to one path, for the queue prediction.
#[derive(Debug, Default)]
struct PathQueue {
    /// When the bottleneck queue we predict drains.
    busy_until: Option<Instant>,
    /// When what we gave the path drains at its `bandwidth_up`: a cap,
    /// which no sample showing an empty queue lifts.
    cap_until: Option<Instant>,
    /// Bytes given to the path so far, and that count over time, to look
    /// up what was given since a sample's packet left.
    total: u64,
    history: CountHistory,
    /// Send time of the last sample applied (each is applied once).
    applied: Option<Instant>,
}

impl PathQueue {
    fn reset(&mut self) {
        self.busy_until = None;
        self.cap_until = None;
        self.history.clear(self.total);
        self.applied = None;
    }

    /// Re-anchors the prediction on a sample: the packet sent at `sent`
    /// queued `q`; since then the path was given `total − given(sent)`
    /// bytes and drained at `rate` for `now − sent`.
    fn apply(&mut self, (sent, q): (Instant, Duration), rate: f64, now: Instant) {
        if self.applied.is_some_and(|a| a >= sent) || sent > now {
            return;
        }
        self.applied = Some(sent);
        let given_then = self.history.at(sent);
        let added = Duration::from_secs_f64((self.total - given_then) as f64 * 8.0 / rate);
        let queue = (q + added).saturating_sub(now - sent);
        self.busy_until = Some(now + queue);
    }

    fn record(&mut self, size: usize, done: Instant, cap: Option<u64>, now: Instant) {
        self.busy_until = Some(done);
        if let Some(cap) = cap {
            let start = self.cap_until.map_or(now, |t| t.max(now));
            self.cap_until = Some(start + Duration::from_secs_f64(size as f64 * 8.0 / cap.max(1) as f64));
        }
        self.total += size as u64;
        self.history.record(now, self.total);
    }
}

#[derive(Debug, Default)]
pub struct Scheduler {
    queues: Vec<PathQueue>,
}

impl Scheduler {
    /// Picks the path for a datagram of `size` bytes sent at `now`.
    pub fn pick(&mut self, paths: &[Candidate], size: usize, now: Instant) -> Option<usize> {
        if self.queues.len() != paths.len() {
            self.queues.resize_with(paths.len(), PathQueue::default);
        }
        let any_normal = paths.iter().any(|p| p.usable && !p.fallback);
        // Order: paths with room by earliest arrival; when every path is
        // full, the least backlog, so all bottleneck buffers fill evenly and
        // TCP's losses come late (a fast path pushed far past the others'
        // queues would overflow first).
        let mut best: Option<((bool, Duration, Instant), usize, Instant)> = None;
        for (i, p) in paths.iter().enumerate() {
            let q = &mut self.queues[i];
            if !p.usable || p.fallback == any_normal {
                q.reset();
                continue;
            }
            if size > p.max_size {
                continue;
            }
            let rate = p.rate();
            if let Some(sample) = p.queue_sample {
                q.apply(sample, rate, now);
            }
            let start = [q.busy_until, q.cap_until]
                .into_iter()
                .flatten()
                .fold(now, Instant::max);
            let backlog = start - now;
            let full = backlog > MAX_BACKLOG;
            let done = start + Duration::from_secs_f64(size as f64 * 8.0 / rate);
            let arrival = done + p.owd + LOSS_PENALTY.mul_f64(p.loss.clamp(0.0, 1.0));
            let key = (full, if full { backlog } else { Duration::ZERO }, arrival);
            if best.is_none_or(|(k, _, _)| key < k) {
                best = Some((key, i, done));
            }
        }
        let (_, i, done) = best?;
        self.queues[i].record(size, done, paths[i].cap, now);
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn c(owd_ms: u64, rate_mbit: Option<f64>) -> Candidate {
        Candidate {
            usable: true,
            fallback: false,
            owd: Duration::from_millis(owd_ms),
            queued: Duration::ZERO,
            queue_sample: None,
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
            worst = worst.max(s.queues[0].busy_until.unwrap().saturating_duration_since(now));
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
    fn a_queue_of_other_traffic_diverts_ours() {
        // Same delay and rate, but every RTT sample of the first path shows
        // 30 ms of queue that we did not cause.
        let mut s = Scheduler::default();
        let t0 = Instant::now();
        let gap = Duration::from_secs_f64(1250.0 * 8.0 / 40e6);
        let mut counts = [0; 2];
        for k in 0..5_000 {
            let now = t0 + gap * k;
            let mut queued = c(10, Some(50.0));
            queued.queue_sample = Some((now, Duration::from_millis(30)));
            counts[s.pick(&[queued, c(10, Some(50.0))], 1250, now).unwrap()] += 1;
        }
        assert_eq!(counts, [0, 5_000]);
    }

    #[test]
    fn samples_keep_an_over_estimated_path_from_overflowing() {
        // The fast path is believed to carry 100 Mbit/s but carries 50 (a
        // capacity measured before the link slowed down); 80 are offered.
        // Its RTT samples (one per packet, a 20 ms round trip old) show the
        // real queue: the scheduler keeps it within tens of milliseconds
        // (the wrong rate still drains the prediction too fast between
        // samples) and sends the rest to the slow path. Without them the fast path
        // would take everything and its queue would grow by 30 Mbit/s, to
        // almost 2 s in this run.
        let mut s = Scheduler::default();
        let t0 = Instant::now();
        let gap = Duration::from_secs_f64(1250.0 * 8.0 / 80e6);
        let wire = Duration::from_secs_f64(1250.0 * 8.0 / 50e6);
        let mut real_busy = t0;
        // (sent, queued) of the fast path's packets, oldest first.
        let mut sent: VecDeque<(Instant, Duration)> = VecDeque::new();
        let (mut worst, mut fast) = (Duration::ZERO, 0);
        for k in 0..40_000 {
            let now = t0 + gap * k;
            let mut sample = None;
            while sent
                .front()
                .is_some_and(|&(at, q)| at + q + Duration::from_millis(20) <= now)
            {
                sample = sent.pop_front();
            }
            let mut over = c(10, Some(100.0));
            over.queue_sample = sample;
            if s.pick(&[over, c(60, Some(50.0))], 1250, now).unwrap() == 0 {
                fast += 1;
                let q = real_busy.saturating_duration_since(now);
                worst = worst.max(q);
                real_busy = real_busy.max(now) + wire;
                sent.push_back((now, q));
            }
        }
        let share = fast as f64 / 40_000.0;
        assert!((0.55..=0.70).contains(&share), "fast path share {share}");
        assert!(worst < Duration::from_millis(100), "fast path queue {worst:?}");
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
