//! Whether a path works: when the peer was heard, whether it answers what
//! we send, when the path went down and comes back.

use std::time::{Duration, Instant};

use super::{silence_limit, tail_probe_delay, tail_probe_interval, Path, PathState, LOSSY_PERSIST};
use crate::proto::clock::Clock;

#[derive(Default)]
pub(super) struct Liveness {
    pub(super) last_rx: Option<Instant>,
    pub(super) last_tx: Option<Instant>,
    /// First data packet sent since the peer was last heard on this path:
    /// silence is measured from here (an idle path may not have heard from
    /// its peer for a keepalive interval, and that is fine).
    pub(super) unanswered_since: Option<Instant>,
    /// When the path last went down: it comes back only when the peer
    /// echoes something sent after this (both directions work again).
    pub(super) down_since: Option<Instant>,
    /// When we sent the newest thing the peer echoed: our direction worked
    /// then.
    pub(super) proven_at: Option<Instant>,
    /// Since when the path has looked lossy (demotion needs it to last).
    pub(super) lossy_since: Option<Instant>,
    /// Last tail probe sent (while data goes unanswered).
    pub(super) last_probe_tx: Option<Instant>,
}

impl Path {
    /// When the peer was last heard on this path.
    pub fn last_rx(&self) -> Option<Instant> {
        self.liveness.last_rx
    }

    /// A data packet went out: silence counts from the first one unanswered.
    pub fn data_sent(&mut self, now: Instant) {
        self.liveness.unanswered_since.get_or_insert(now);
    }

    /// Takes an up path down; a client schedules a new handshake at once.
    pub fn mark_down(&mut self, client: bool, now: Instant) {
        self.state = PathState::Down;
        self.liveness.unanswered_since = None;
        self.liveness.down_since = Some(now);
        if client {
            self.want_handshake(now);
        }
    }

    /// An authenticated datagram of `len` bytes, echoing our timestamp
    /// `echo`, arrived.
    pub fn note_heard(&mut self, clock: Clock, echo: u32, len: usize, now: Instant) {
        let l = &mut self.liveness;
        l.last_rx = Some(now);
        if l.unanswered_since.is_some_and(|t| echoes_since(clock, echo, t)) {
            l.unanswered_since = None;
        }
        self.counters.rx_bytes += len as u64;
        self.counters.rx_packets += 1;
    }

    /// A path not alive comes up once both directions are proven: the peer
    /// echoed (`echo`) something we sent since it went down, or a handshake
    /// was just confirmed. Returns whether it came up.
    pub fn bring_up_if_proven(
        &mut self,
        clock: Clock,
        echo: u32,
        confirmed_next: bool,
        now: Instant,
    ) -> bool {
        let proven = match self.state {
            // A handshake just confirmed proves both directions too.
            PathState::Down => {
                confirmed_next
                    || self
                        .liveness
                        .down_since
                        .is_none_or(|t| echoes_since(clock, echo, t))
            }
            _ => true,
        };
        if !self.is_alive() && self.sessions.current.is_some() && proven {
            self.state = PathState::Up;
            self.liveness.down_since = None;
            // Routes (and so MTUs) may have changed while it was down.
            self.estimation.max_datagram = None;
            self.estimation.estimator.reset_loss(now);
            return true;
        }
        false
    }

    /// Why an alive path is to go down now, if it is: the peer silent for
    /// `path_timeout`, or data unanswered past the silence limit.
    pub fn liveness_lost(&self, path_timeout: Duration, now: Instant) -> Option<&'static str> {
        if !self.is_alive() {
            return None;
        }
        let l = &self.liveness;
        if l.last_rx
            .is_some_and(|t| now.saturating_duration_since(t) >= path_timeout)
        {
            Some("peer silent")
        } else if l
            .unanswered_since
            .is_some_and(|t| now.saturating_duration_since(t) >= silence_limit(self.estimation.rtt.srtt()))
        {
            Some("no report while sending")
        } else {
            None
        }
    }

    /// When a path whose data goes unanswered next sends a tail probe (a
    /// keepalive asking for a report), if it does.
    pub fn tail_probe_due(&self) -> Option<Instant> {
        let since = self.liveness.unanswered_since?;
        let rtt = &self.estimation.rtt;
        let first = since + tail_probe_delay(rtt.srtt(), rtt.rttvar());
        let next = self
            .liveness
            .last_probe_tx
            .filter(|t| *t >= since)
            .map(|t| t + tail_probe_interval(rtt.srtt()));
        Some(next.map_or(first, |n| n.max(first)))
    }

    /// The liveness deadlines: silence (alive paths), and the end of a
    /// lossy spell that demotes an up path (see `judge_loss`).
    pub(super) fn liveness_deadlines(&self, path_timeout: Duration, now: Instant) -> [Option<Instant>; 3] {
        let l = &self.liveness;
        let alive = self.is_alive();
        [
            l.last_rx.map(|t| t + path_timeout).filter(|_| alive),
            l.unanswered_since
                .map(|t| t + silence_limit(self.estimation.rtt.srtt()))
                .filter(|_| alive),
            l.lossy_since
                .map(|t| t + LOSSY_PERSIST)
                .filter(|t| *t > now && self.state == PathState::Up),
        ]
    }
}

/// Whether the peer's echo `echo` is of something we sent at or after
/// `t`: only that proves our direction works (hearing from the peer alone
/// does not: a blackhole can be one-way).
fn echoes_since(clock: Clock, echo: u32, t: Instant) -> bool {
    echo != 0 && echo.wrapping_sub(clock.micros(t)) as i32 >= 0
}
