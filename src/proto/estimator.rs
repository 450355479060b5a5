//! Per-path loss and delivery-rate estimates from the peer's receive reports.
//!
//! The peer periodically reports how many of this path's datagrams (and
//! bytes) it has received so far. Loss compares the packets it reported
//! received with the packets we had sent one RTT before the report arrived
//! (those are the ones it could have seen); delivery rate divides the bytes
//! it received between two reports by the time between them on the peer's own
//! clock, max-filtered over the last second (a path is only measured at its
//! capacity when it is kept busy). A rate measured over an interval the
//! path showed a queue from start to end is its capacity.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::count_history::CountHistory;
use super::frame::Report;

/// A loss sample needs at least this many packets sent in its interval.
const MIN_LOSS_PACKETS: u64 = 32;
/// Weight of a new loss sample.
const LOSS_GAIN: f64 = 0.25;
/// Rate samples are max-filtered over this window.
const RATE_WINDOW: Duration = Duration::from_secs(1);
const RATE_MAX_SAMPLES: usize = 256;
/// Packets a report interval must carry to count as a rate sample.
const MIN_RATE_PACKETS: u64 = 8;
/// Average datagram size a rate-sample interval needs (bytes).
const MIN_RATE_AVG_SIZE: u64 = 200;
/// A lower capacity measurement replaces the standing one once that has
/// stood this long (capacity can fall: LTE, a shared uplink); a higher one
/// replaces it at once.
const CAPACITY_RENEW: Duration = Duration::from_millis(2500);
/// Smallest delivery rate taken as a capacity (bit/s).
const MIN_CAPACITY: f64 = 1e6;
/// Shortest interval a rate sample covers (µs of the peer's clock).
const RATE_INTERVAL_US: u32 = 100_000;

#[derive(Debug, Clone, Copy)]
struct LastReport {
    report: Report,
    /// Our tx count the report is compared with.
    tx_ref: u64,
}

#[derive(Debug, Default)]
pub struct PathEstimator {
    /// Our cumulative sent packets over time.
    history: CountHistory,
    last: Option<LastReport>,
    loss: Option<f64>,
    rates: VecDeque<(Instant, f64)>,
    /// Start of the current rate interval: peer clock, rx bytes, rx packets,
    /// and when its report arrived here.
    rate_base: Option<(u32, u64, u64, Instant)>,
    /// The path's queue is building (we over-drive it): losses now are our
    /// own congestion, not the link's, and are not counted.
    congested: bool,
    /// Set by the caller for each report: since when the path has shown a
    /// standing queue without a break.
    saturated_since: Option<Instant>,
    /// Delivery rate measured while saturated, and since when it stands.
    capacity: Option<(f64, Instant)>,
    /// Loss history was forgotten at this instant: reports covering packets
    /// sent before it (the outage's probes) are not loss samples.
    reset_at: Option<Instant>,
}

impl PathEstimator {
    /// Records our cumulative sent count (call after sending).
    pub fn on_send(&mut self, now: Instant, tx_packets: u64) {
        self.history.record(now, tx_packets);
    }

    /// Takes a receive report that arrived at `now`, stamped `peer_ts` on
    /// the peer's clock (µs). `covers` is when we sent the newest packet the
    /// peer had seen when it wrote the report (its timestamp echo): the
    /// report counts what we had sent by then, whatever the queueing.
    pub fn on_report(&mut self, now: Instant, peer_ts: u32, report: Report, covers: Instant) {
        if self.reset_at.is_some_and(|t| covers < t) {
            return;
        }
        let tx_ref = self.history.at(covers);
        let Some(prev) = self.last else {
            self.last = Some(LastReport { report, tx_ref });
            return;
        };
        if report.rx_packets < prev.report.rx_packets || report.rx_bytes < prev.report.rx_bytes {
            // The peer's counters restarted (its daemon restarted).
            self.rate_base = None;
            self.last = Some(LastReport { report, tx_ref });
            return;
        }
        let sample = self.rate_sample(now, peer_ts, report);
        while self
            .rates
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > RATE_WINDOW)
        {
            self.rates.pop_front();
        }
        // A capacity sample is a delivery rate over an interval the path was
        // saturated for from start to end: a burst that queued for a moment
        // (TCP's slow start) inside an interval that mostly was not would
        // measure less than the path carries, and hold it down.
        // A path carrying next to nothing is not saturated by us, whatever
        // its RTT shows (an old queue an idle path's SRTT still remembers).
        let saturated_by_us = |(r, from): &(f64, Instant)| {
            *r >= MIN_CAPACITY && self.saturated_since.is_some_and(|s| s <= *from)
        };
        if let Some((r, _)) = sample.filter(saturated_by_us) {
            let stale = self
                .capacity
                .is_none_or(|(c, at)| r > c || now.saturating_duration_since(at) > CAPACITY_RENEW);
            if stale {
                self.capacity = Some((r, now));
            }
        }
        let sent = tx_ref.saturating_sub(prev.tx_ref);
        if sent >= MIN_LOSS_PACKETS {
            let got = report.rx_packets - prev.report.rx_packets;
            let sample = (1.0 - got as f64 / sent as f64).clamp(0.0, 1.0);
            let sample = if self.congested {
                self.loss.unwrap_or(0.0)
            } else {
                sample
            };
            self.loss = Some(match self.loss {
                Some(l) => l + LOSS_GAIN * (sample - l),
                // A new path starts from "no loss": one bad sample (a burst
                // overflowing a buffer at start-up) must not condemn it.
                None => LOSS_GAIN * sample,
            });
            self.last = Some(LastReport { report, tx_ref });
        }
    }

    /// Delivery rate over at least `RATE_INTERVAL` of the peer's clock: short
    /// intervals measure bursts (a token bucket's burst, a batch), not rates.
    /// Keepalives and probes (64-byte datagrams) are not load: the interval
    /// must carry enough full-size traffic.
    /// Returns the new sample (bit/s) and when its interval started here.
    fn rate_sample(&mut self, now: Instant, peer_ts: u32, report: Report) -> Option<(f64, Instant)> {
        let Some((ts0, bytes0, packets0, since)) = self.rate_base else {
            self.rate_base = Some((peer_ts, report.rx_bytes, report.rx_packets, now));
            return None;
        };
        let dt_us = peer_ts.wrapping_sub(ts0);
        if dt_us < RATE_INTERVAL_US {
            return None;
        }
        self.rate_base = Some((peer_ts, report.rx_bytes, report.rx_packets, now));
        let packets = report.rx_packets.saturating_sub(packets0);
        let bytes = report.rx_bytes.saturating_sub(bytes0);
        if dt_us < 60_000_000
            && packets >= MIN_RATE_PACKETS
            && bytes >= packets.saturating_mul(MIN_RATE_AVG_SIZE)
        {
            if self.rates.len() >= RATE_MAX_SAMPLES {
                self.rates.pop_front();
            }
            let rate = bytes as f64 * 8.0 / (f64::from(dt_us) / 1e6);
            self.rates.push_back((now, rate));
            return Some((rate, since));
        }
        None
    }

    /// Says whether the path currently shows a standing queue (it is
    /// carrying all it can), for the next reports.
    pub fn set_saturated(&mut self, now: Instant, saturated: bool) {
        if !saturated {
            self.saturated_since = None;
        } else if self.saturated_since.is_none() {
            self.saturated_since = Some(now);
        }
    }

    /// Capacity: the latest delivery rate measured while saturated (bit/s).
    /// It stands until a new measurement replaces it, however old: an idle
    /// spell or an outage does not change what a link carries, and a path
    /// that comes back is scheduled at what it carried before rather than
    /// as unknown. (It lapsed after 5 s before: a TCP transfer started just
    /// after the fast link of a 10/60 ms pair returned overflowed that link,
    /// scheduled at the 100 Mbit/s of an unmeasured path, and got 76-89 %
    /// of the pair instead of 99 %.) A capacity too high for the link now is
    /// corrected by the queue its RTT samples show, which the scheduler
    /// follows, and by the next measurement.
    pub fn capacity_bps(&self) -> Option<f64> {
        self.capacity.map(|(c, _)| c)
    }

    /// Says whether the path is currently over-driven (RTT well above its
    /// minimum), for the next reports.
    pub fn set_congested(&mut self, congested: bool) {
        self.congested = congested;
    }

    /// Forgets the loss history (a path back from down starts clean: its
    /// outage was not loss of a working path).
    pub fn reset_loss(&mut self, now: Instant) {
        self.loss = None;
        self.last = None;
        self.reset_at = Some(now);
    }

    /// Our sent-packet count that the latest loss sample covered: the peer
    /// has reported on everything up to it.
    pub fn reported_tx(&self) -> Option<u64> {
        self.last.map(|l| l.tx_ref)
    }

    /// Smoothed loss rate (0..1) once enough was sent.
    pub fn loss(&self) -> Option<f64> {
        self.loss
    }

    /// Highest delivery rate (bit/s) measured in the last second.
    pub fn rate_bps(&self) -> Option<f64> {
        self.rates.iter().map(|(_, r)| *r).reduce(f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path carrying `pps` packets/s of `size` bytes with loss `loss`
    /// (deterministic: every k-th packet lost), reports every 20 ms, RTT 40 ms.
    fn run(pps: u64, size: u64, lose_every: u64) -> PathEstimator {
        let mut e = PathEstimator::default();
        let t0 = Instant::now();
        let (mut sent, mut got, mut got_bytes) = (0u64, 0u64, 0u64);
        for ms in 0..3000u64 {
            let now = t0 + Duration::from_millis(ms);
            for _ in 0..pps / 1000 {
                sent += 1;
                e.on_send(now, sent);
            }
            // The receiver sees what was sent 20 ms (one way) ago.
            if ms % 20 == 0 && ms >= 40 {
                let seen = (ms - 20) * (pps / 1000);
                while got < seen {
                    got += 1;
                    if lose_every == 0 || got % lose_every != 0 {
                        got_bytes += size;
                    }
                }
                let received = got - got.checked_div(lose_every).unwrap_or(0);
                let report = Report {
                    rx_packets: received,
                    rx_bytes: got_bytes,
                };
                // Report stamped at generation (20 ms before arrival); it
                // covers what was sent up to 1 ms before `seen` was counted.
                let covers = now - Duration::from_millis(21);
                e.on_report(now, ((ms - 20) * 1000) as u32, report, covers);
            }
        }
        e
    }

    #[test]
    fn no_loss_and_rate() {
        let e = run(5000, 1000, 0);
        assert!(e.loss().unwrap() < 0.01, "{:?}", e.loss());
        let r = e.rate_bps().unwrap();
        assert!((r - 40e6).abs() < 2e6, "5000 pps x 8000 bit = 40 Mbit/s, got {r}");
    }

    #[test]
    fn loss_is_measured() {
        let e = run(5000, 1000, 10);
        let l = e.loss().unwrap();
        assert!((l - 0.1).abs() < 0.02, "10 % loss, got {l}");
        let r = e.rate_bps().unwrap();
        assert!((r - 36e6).abs() < 2e6, "90 % of 40 Mbit/s delivered, got {r}");
    }

    /// Reports every 10 ms from `from_ms` to `to_ms` of a path delivering
    /// `mbit` Mbit/s in 1000-byte datagrams; `saturated(ms)` says whether
    /// its RTT shows a queue at that report.
    fn feed(
        e: &mut PathEstimator,
        t0: Instant,
        (from_ms, to_ms): (u64, u64),
        mbit: u64,
        saturated: impl Fn(u64) -> bool,
    ) {
        for ms in (from_ms..to_ms).step_by(10) {
            let now = t0 + Duration::from_millis(ms);
            let bytes = ms * mbit * 1000 / 8;
            let report = Report {
                rx_packets: bytes / 1000,
                rx_bytes: bytes,
            };
            e.set_saturated(now, saturated(ms));
            e.on_report(now, (ms * 1000) as u32, report, now);
        }
    }

    #[test]
    fn a_path_saturated_throughout_an_interval_has_that_capacity() {
        let t0 = Instant::now();
        let mut e = PathEstimator::default();
        feed(&mut e, t0, (0, 400), 40, |_| true);
        let c = e.capacity_bps().expect("capacity");
        assert!((c - 40e6).abs() < 1e6, "{c}");
    }

    #[test]
    fn a_queue_seen_for_a_moment_is_not_a_capacity() {
        // TCP's slow start queues a burst for a moment: the rate intervals
        // around it mostly were not saturated and measure less than the
        // path carries.
        let t0 = Instant::now();
        let mut e = PathEstimator::default();
        feed(&mut e, t0, (0, 400), 20, |ms| (180..=200).contains(&ms));
        assert!(e.rate_bps().is_some());
        assert_eq!(e.capacity_bps(), None);
    }

    #[test]
    fn an_idle_path_with_an_old_queue_in_its_rtt_has_no_capacity() {
        // Two small datagrams per report while a stale SRTT still shows a
        // queue: that is not what the path can carry.
        let t0 = Instant::now();
        let mut e = PathEstimator::default();
        for ms in (0..1000u64).step_by(10) {
            let now = t0 + Duration::from_millis(ms);
            e.set_saturated(now, true);
            let report = Report {
                rx_packets: ms / 10 * 2,
                rx_bytes: ms / 10 * 2 * 600,
            };
            e.on_report(now, (ms * 1000) as u32, report, now);
        }
        assert!(e.rate_bps().is_some_and(|r| r < 1e6));
        assert_eq!(e.capacity_bps(), None);
    }

    #[test]
    fn a_capacity_outlasts_an_idle_spell_and_a_lower_one_replaces_it_after_a_while() {
        let t0 = Instant::now();
        let mut e = PathEstimator::default();
        let mut bytes = 0;
        // Reports every 10 ms while the path delivers `mbit`, saturated or not.
        let mut feed = |e: &mut PathEstimator, (from_ms, to_ms): (u64, u64), mbit: u64, saturated| {
            for ms in (from_ms..to_ms).step_by(10) {
                let now = t0 + Duration::from_millis(ms);
                bytes += 10 * mbit * 1000 / 8;
                let report = Report {
                    rx_packets: bytes / 1000,
                    rx_bytes: bytes,
                };
                e.set_saturated(now, saturated);
                e.on_report(now, (ms * 1000) as u32, report, now);
            }
        };
        let near = |c: Option<f64>, mbit: f64| c.is_some_and(|c| (c - mbit * 1e6).abs() < 1e6);
        feed(&mut e, (0, 400), 30, true);
        // A minute of light traffic (no queue): still the capacity.
        feed(&mut e, (400, 60_400), 1, false);
        assert!(near(e.capacity_bps(), 30.0), "{:?}", e.capacity_bps());
        // The link now carries 20 Mbit/s when saturated: the standing figure
        // is older than CAPACITY_RENEW, so the lower one replaces it.
        feed(&mut e, (60_400, 61_000), 20, true);
        assert!(near(e.capacity_bps(), 20.0), "{:?}", e.capacity_bps());
        // A path kept saturated keeps its capacity, renewed.
        for ms in (61_000..70_000u64).step_by(10) {
            feed(&mut e, (ms, ms + 10), 20, true);
            assert!(near(e.capacity_bps(), 20.0), "at {ms} ms: {:?}", e.capacity_bps());
        }
        // A higher measurement replaces it at once.
        feed(&mut e, (70_000, 70_400), 40, true);
        assert!(near(e.capacity_bps(), 40.0), "{:?}", e.capacity_bps());
    }

    #[test]
    fn peer_restart_resets() {
        let mut e = PathEstimator::default();
        let t = Instant::now();
        e.on_report(
            t,
            0,
            Report {
                rx_packets: 100,
                rx_bytes: 1000,
            },
            t,
        );
        e.on_report(
            t,
            10_000,
            Report {
                rx_packets: 1,
                rx_bytes: 10,
            },
            t,
        );
        assert_eq!(e.rate_bps(), None);
        assert_eq!(e.loss(), None);
    }

    #[test]
    fn absurd_report_counts_do_not_overflow() {
        // Found by fuzzing (transport, finding 4): an authenticated peer
        // may report anything.
        let t = Instant::now();
        let mut e = PathEstimator::default();
        let r = |p: u64, b: u64| Report {
            rx_packets: p,
            rx_bytes: b,
        };
        e.on_report(t, 0, r(0, 0), t);
        e.on_report(
            t + Duration::from_millis(200),
            200_000,
            r(u64::MAX / 2, u64::MAX),
            t,
        );
        e.on_report(t + Duration::from_millis(400), 400_000, r(u64::MAX, 7), t);
    }
}
