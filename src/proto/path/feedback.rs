//! What the peers tell each other about a path: timestamps and their
//! echoes (RTT, proof that a direction works), receive reports, and the
//! keepalive flags. This is the keepalive state: it changes here only.

use std::time::{Duration, Instant};

use super::{report_interval, Path, PathState, LOSSY_PROBE_INTERVAL, PROBE_INTERVAL};
use crate::proto::clock::Clock;
use crate::proto::frame::{Report, Timestamps};

/// Keepalives received that earn a report even without data.
const PROBES_PER_REPORT: u64 = 16;

#[derive(Default)]
pub(super) struct Feedback {
    /// Latest peer timestamp seen on this path and when, echoed back.
    pub(super) echo: Option<(u32, Instant)>,
    /// Latest echo of ours the peer sent back (one RTT sample per echo).
    pub(super) last_echo_seen: u32,
    /// Last receive report we sent, and the data packets received by then
    /// (a report is owed for data only: reports answering keepalives would
    /// bounce between the peers forever).
    pub(super) last_report_tx: Option<Instant>,
    pub(super) rx_data_packets: u64,
    pub(super) reported_rx: u64,
    /// All packets received when the last report went out: a burst of
    /// probes (a lossy path being re-measured) also earns a report.
    pub(super) reported_all: u64,
    /// The peer probed us: a report is owed at once.
    pub(super) reply_owed: bool,
    /// The no-data flag of the last keepalive we sent here: a keepalive is
    /// due as soon as it no longer holds.
    pub(super) told_no_data: Option<bool>,
    /// The peer's latest keepalive on this path said it sends no data here
    /// (a `fallback` or `lossy` path while a better one is up); cleared by
    /// the next data packet.
    pub(super) peer_sends_no_data: bool,
    /// Tunnel sequence number of the latest data packet received here: a
    /// path delivers in order, so a hole below it is not on this path.
    pub(super) last_seq_rx: Option<u64>,
}

impl Path {
    /// The timestamps of a frame sent now: ours, and the echo of the
    /// peer's latest with how long we held it.
    pub fn timestamps(&self, clock: Clock, now: Instant) -> Timestamps {
        let (echo, echo_delay) = match self.feedback.echo {
            Some((ts, at)) => (
                ts,
                u32::try_from(now.saturating_duration_since(at).as_micros()).unwrap_or(u32::MAX),
            ),
            None => (0, 0),
        };
        Timestamps {
            ts: clock.micros(now),
            echo,
            echo_delay,
        }
    }

    /// The peer's timestamp (echoed back later) and its echo of ours: an
    /// RTT sample, and proof that our direction worked when we sent it.
    pub fn take_timestamps(&mut self, clock: Clock, times: Timestamps, now: Instant) {
        let (f, e) = (&mut self.feedback, &mut self.estimation);
        f.echo = Some((times.ts, now));
        e.inbound.sample(clock.micros(now), times.ts, now);
        if times.echo == 0 || times.echo == f.last_echo_seen {
            return;
        }
        f.last_echo_seen = times.echo;
        // The peer got what we sent at (now - echo age): our direction
        // worked then.
        let age = clock.micros(now).wrapping_sub(times.echo);
        if age < 60_000_000 {
            let sent = now.checked_sub(Duration::from_micros(u64::from(age)));
            self.liveness.proven_at = self.liveness.proven_at.max(sent);
        }
        let rtt_us = clock
            .micros(now)
            .wrapping_sub(times.echo)
            .wrapping_sub(times.echo_delay);
        // Ignore samples that can only come from clock wrap or garbage.
        if rtt_us < 60_000_000 {
            let rtt = Duration::from_micros(u64::from(rtt_us));
            e.rtt.sample(rtt, now);
            // How long the echoed packet queued on its way out.
            let sent = now.checked_sub(Duration::from_micros(u64::from(age)));
            let queued = e
                .rtt
                .min_rtt()
                .map(|m| rtt.saturating_sub(m).saturating_sub(e.inbound.queueing()));
            if let (Some(sent), Some(queued), true) = (sent, queued, age < 60_000_000) {
                e.queue_sample = Some((sent, queued));
            }
        }
    }

    /// A data frame arrived: the peer sends data here.
    pub fn peer_sends_data(&mut self) {
        self.feedback.peer_sends_no_data = false;
    }

    /// A keepalive arrived, asking for an answer (`reply`) or saying the
    /// peer sends no data here (`no_data`).
    pub fn note_keepalive_flags(&mut self, reply: bool, no_data: bool) {
        self.feedback.reply_owed |= reply;
        self.feedback.peer_sends_no_data = no_data;
    }

    /// Data packet `seq` arrived (a report is owed for it).
    pub fn data_received(&mut self, seq: u64) {
        self.feedback.rx_data_packets += 1;
        self.feedback.last_seq_rx = Some(seq);
    }

    /// Our receive report for the peer.
    pub fn receive_report(&self) -> Report {
        Report {
            rx_packets: self.counters.rx_packets,
            rx_bytes: self.counters.rx_bytes,
        }
    }

    /// A keepalive went out (`reply`: asking for an answer; `no_data`: the
    /// flag it carried): what it reported and answered is no longer owed.
    pub fn keepalive_sent(&mut self, now: Instant, reply: bool, no_data: bool) {
        let f = &mut self.feedback;
        f.told_no_data = Some(no_data);
        f.reply_owed = false;
        if reply {
            self.liveness.last_probe_tx = Some(now);
        }
        f.last_report_tx = Some(now);
        f.reported_rx = f.rx_data_packets;
        f.reported_all = self.counters.rx_packets;
    }

    /// If a keepalive is due by `now`, marks it sent (so the timer does
    /// not fire again before it is) and returns whether it asks for an
    /// answer. `any_normal`: whether a normal path is usable.
    pub fn keepalive_now(&mut self, keepalive: Duration, any_normal: bool, now: Instant) -> Option<bool> {
        if self.keepalive_due(keepalive, any_normal).is_none_or(|t| t > now) {
            return None;
        }
        let l = &self.liveness;
        // An idle path's keepalive asks for an answer too: a path whose
        // outgoing direction died while nothing but keepalives used it
        // is then found out like a busy one (hearing the peer's own
        // keepalives proves only the other direction).
        let idle = l
            .last_tx
            .is_none_or(|t| now.saturating_duration_since(t) >= keepalive);
        // A down path's probe asks too, so the answer (an echo proving
        // both directions) brings it back within a probe interval.
        // So does any keepalive (a receive report, say) while nothing
        // we sent was echoed for a keepalive interval: a path used only
        // by the peer's data must notice that our reports stopped
        // arriving.
        let unproven = l
            .proven_at
            .is_none_or(|t| now.saturating_duration_since(t) > keepalive);
        let alive = self.is_alive();
        let reply = (alive && (idle || unproven || self.tail_probe_due().is_some_and(|t| t <= now)))
            || self.state == PathState::Down;
        if reply && alive {
            self.liveness.unanswered_since.get_or_insert(now);
        }
        let no_data = !self.carries_data(any_normal);
        self.keepalive_sent(now, reply, no_data);
        self.liveness.last_tx = Some(now);
        Some(reply)
    }

    /// When the path next needs a keepalive: idle for `keepalive`, a receive
    /// report owed (every half RTT while receiving), its no-data flag
    /// changed (`any_normal`: whether a normal path is usable), or a probe
    /// of a down path (so a restored path is noticed within a probe
    /// interval).
    pub fn keepalive_due(&self, keepalive: Duration, any_normal: bool) -> Option<Instant> {
        self.sessions.current.as_ref()?;
        let (f, l) = (&self.feedback, &self.liveness);
        match self.state {
            PathState::Up | PathState::Lossy => {
                let interval = if self.state == PathState::Lossy {
                    LOSSY_PROBE_INTERVAL
                } else {
                    keepalive
                };
                let idle = l.last_tx.map(|t| t + interval).or(l.last_rx);
                let owed = f.rx_data_packets > f.reported_rx
                    || self.counters.rx_packets >= f.reported_all + PROBES_PER_REPORT;
                let report = owed
                    .then(|| {
                        f.last_report_tx
                            .map(|t| t + report_interval(self.estimation.rtt.srtt()))
                            .or(l.last_rx)
                    })
                    .flatten();
                let reply = f.reply_owed.then_some(l.last_rx).flatten();
                // The peer's resequencer waits for paths that carry data:
                // tell it at once when this one starts or stops.
                let no_data = !self.carries_data(any_normal);
                let flag = (f.told_no_data != Some(no_data)).then_some(l.last_rx).flatten();
                [idle, report, reply, flag, self.tail_probe_due()]
                    .into_iter()
                    .flatten()
                    .min()
            }
            PathState::Down => l.last_tx.map(|t| t + PROBE_INTERVAL).or(l.last_rx),
            PathState::Handshaking => None,
        }
    }
}

/// Holes below this sequence number are lost: every path that carries data
/// has since delivered a later packet, and a path delivers in order (the
/// queues of real links and of the emulator are FIFO). `None` while such a
/// path has carried no data: a hole may still be on it, and only the hold
/// timeout can tell. Skipping at once instead of waiting out the timeout
/// lets TCP see a loss as early as it would on a single link. A path the
/// peer said it gives no data (`FLAG_NO_DATA`: fallback, or lossy on the
/// peer's side) does not count: a bond with one lossy link otherwise waited
/// out the timeout for every loss on the good one (the bench measured 97 %
/// of the good link alone), and a configured fallback path that never
/// carried data stopped all skipping. (Judging by our own view of the path
/// instead missed a lossy path we send too little on to measure.)
pub fn lost_below(paths: &[Path]) -> Option<u64> {
    let carrying = paths
        .iter()
        .filter(|p| p.is_alive() && !p.feedback.peer_sends_no_data);
    carrying.map(|p| p.feedback.last_seq_rx).min().flatten()
}
