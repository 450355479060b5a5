//! What is measured about a path: RTT and queueing in each direction, loss
//! and delivery rate from the peer's reports, the largest datagram that
//! fits. The scheduler and the resequencer are fed from here.

use std::time::{Duration, Instant};

use super::{Path, PathState, LOSSY_ENTER, LOSSY_LEAVE, LOSSY_PERSIST};
use crate::proto::clock::Clock;
use crate::proto::delay::{InboundDelay, RttEstimator};
use crate::proto::estimator::PathEstimator;
use crate::proto::frame::{Report, Timestamps};
use crate::proto::reorder::{DEFAULT_MAX_TIMEOUT, MIN_TIMEOUT};
use crate::proto::scheduler::SATURATED_QUEUE;

#[derive(Default)]
pub(super) struct Estimation {
    pub(super) rtt: RttEstimator,
    /// Queueing towards us, from the peer's timestamps.
    pub(super) inbound: InboundDelay,
    /// Loss and delivery rate from the peer's receive reports.
    pub(super) estimator: PathEstimator,
    /// Latest RTT sample as the scheduler uses it: when we sent the packet
    /// it echoes, and how long that packet queued on its way out.
    pub(super) queue_sample: Option<(Instant, Duration)>,
    /// Largest datagram known to fit (learned from EMSGSIZE); `None` = no
    /// limit seen.
    pub(super) max_datagram: Option<usize>,
}

/// A change of a path's standing by its loss (see [`Path::judge_loss`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LossVerdict {
    /// Demoted to lossy, losing this much.
    Lossy(f64),
    /// Back up: its loss fell to this.
    Recovered(f64),
}

impl Path {
    /// Queueing delay on the way to the peer: what the RTT shows above its
    /// minimum that is not queued on the way in.
    pub fn outbound_queue(&self) -> Duration {
        let e = &self.estimation;
        e.rtt.queueing().saturating_sub(e.inbound.queueing())
    }

    /// A datagram of `len` bytes sent on this path did not fit: later
    /// datagrams of that size or more avoid it.
    pub fn too_big(&mut self, len: usize) {
        let limit = len.saturating_sub(1);
        let max = &mut self.estimation.max_datagram;
        *max = Some(max.map_or(limit, |m| m.min(limit)));
    }

    /// The peer's receive report (in a keepalive stamped `times`): loss and
    /// delivery rate for the estimator, and what no longer needs a re-send.
    pub fn take_report(&mut self, clock: Clock, times: Timestamps, report: Report, now: Instant) {
        // Judged after this report's own RTT sample: it is the freshest
        // (a path carrying no traffic towards us gets no other).
        // Queueing delay well above the path's own: the loss it sees now
        // is congestion we cause, not a bad link.
        let outbound_queue = self.outbound_queue();
        let e = &mut self.estimation;
        let congested = e
            .rtt
            .min_rtt()
            .is_some_and(|m| outbound_queue > m + Duration::from_millis(5));
        e.estimator.set_congested(congested);
        e.estimator.set_saturated(now, outbound_queue > SATURATED_QUEUE);
        let echo_age = clock.micros(now).wrapping_sub(times.echo);
        let covers = if times.echo != 0 && echo_age < 60_000_000 {
            now.checked_sub(Duration::from_micros(u64::from(echo_age)))
        } else {
            now.checked_sub(e.rtt.srtt().unwrap_or_default())
        };
        e.estimator
            .on_report(now, times.ts, report, covers.unwrap_or(now));
        if let Some(tx) = e.estimator.reported_tx() {
            self.in_flight.acked(tx);
        }
    }

    /// The loss this path takes part in demotion with: alive paths only;
    /// one not measured yet (just back from an outage, say) counts as
    /// clean: it gets the traffic, and so its measurement, only if the
    /// lossy path gives way.
    pub fn loss_if_alive(&self) -> Option<f64> {
        self.is_alive()
            .then(|| self.estimation.estimator.loss().unwrap_or(0.0))
    }

    /// Demotes an alive path that loses much more than the best other
    /// (`best_other`, `None` if there is none) and brings it back when it
    /// no longer does. Loss every path shares demotes nothing: there is no
    /// better path.
    pub fn judge_loss(&mut self, best_other: Option<f64>, now: Instant) -> Option<LossVerdict> {
        let loss = self.estimation.estimator.loss()?;
        // Persistence is of the loss itself: a path that has been losing
        // alone is demoted as soon as a better one appears.
        let since = &mut self.liveness.lossy_since;
        if loss <= LOSSY_ENTER {
            *since = None;
        } else if since.is_none() {
            *since = Some(now);
        }
        let Some(best) = best_other else {
            if self.state == PathState::Lossy {
                self.state = PathState::Up;
            }
            return None;
        };
        let much_worse = |margin: f64| loss > best * 2.0 + margin;
        let looks_lossy = loss > LOSSY_ENTER && much_worse(0.05);
        let lasting = self
            .liveness
            .lossy_since
            .is_some_and(|t| now.saturating_duration_since(t) >= LOSSY_PERSIST);
        if self.state == PathState::Up && looks_lossy && lasting {
            self.state = PathState::Lossy;
            Some(LossVerdict::Lossy(loss))
        } else if self.state == PathState::Lossy && (loss < LOSSY_LEAVE || !much_worse(0.02)) {
            self.state = PathState::Up;
            Some(LossVerdict::Recovered(loss))
        } else {
            None
        }
    }
}

/// How long the receiver holds an early packet: the spread of the live
/// paths' one-way delays towards us plus a jitter margin, so a packet sent
/// at the same time on the slowest path normally arrives in time. The slow
/// end of the spread takes each path's queue at its peak of the last second,
/// not its average: a TCP flow's bursts swing the queues faster than an
/// average follows, and a hole skipped too early makes the packet that
/// fills it late (out of order, and a spurious retransmit for TCP).
pub fn hold_timeout(paths: &[Path]) -> Duration {
    let (mut lo, mut hi, mut var) = (Duration::MAX, Duration::ZERO, Duration::ZERO);
    for p in paths.iter().filter(|p| p.is_alive()) {
        let e = &p.estimation;
        let Some(base) = e.rtt.min_rtt().map(|m| m / 2) else {
            continue;
        };
        lo = lo.min(base + e.inbound.queueing());
        hi = hi.max(base + e.inbound.recent_peak().max(e.inbound.queueing()));
        var = var.max(e.rtt.rttvar());
    }
    let spread = hi.saturating_sub(lo);
    (spread + var * 4 + Duration::from_millis(5)).clamp(MIN_TIMEOUT, DEFAULT_MAX_TIMEOUT)
}
