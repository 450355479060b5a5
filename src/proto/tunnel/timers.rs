//! Timers: session expiry and rekeying, liveness (a path goes down), keepalives
//! and receive reports, lossy-path demotion, the resequencer's hold timeout.

use std::time::{Duration, Instant};

use mlvpn_keys::PublicKey;

use super::{any_normal_usable, carries_data, Event, Pending, Tunnel, PROBES_PER_REPORT, REJECT_AFTER_TIME};
use crate::proto::path::{
    report_interval, silence_limit, tail_probe_delay, tail_probe_interval, Path, PathState, LOSSY_ENTER,
    LOSSY_LEAVE, LOSSY_PERSIST, LOSSY_PROBE_INTERVAL, PROBE_INTERVAL,
};
use crate::proto::reorder::{DEFAULT_MAX_TIMEOUT, MIN_TIMEOUT};
use crate::proto::session::REKEY_AFTER_MESSAGES;
use crate::proto::Mode;

impl Path {
    /// Takes an up path down; a client schedules a new handshake at once.
    pub(super) fn mark_down(
        &mut self,
        peer: PublicKey,
        reason: &'static str,
        client: bool,
        now: Instant,
    ) -> Event {
        self.state = PathState::Down;
        self.unanswered_since = None;
        self.down_since = Some(now);
        if client && self.handshake_due.is_none() {
            self.handshake_due = Some(now);
        }
        Event::PathDown {
            peer,
            path: self.name.clone(),
            id: self.id,
            reason,
        }
    }
}

impl Tunnel {
    /// The earliest instant `handle_timeout` has work to do.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let now = self.now;
        for i in 0..self.wakeups.touched().len() {
            let peer = self.wakeups.touched()[i];
            let due = self.peer_deadline(peer, now);
            self.wakeups.set(peer, due);
        }
        self.wakeups.earliest()
    }

    /// When peer `i` next has a timer to run, as of `now`.
    pub(super) fn peer_deadline(&self, i: usize, now: Instant) -> Option<Instant> {
        let peer = &self.peers[i];
        let mut earliest: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
        };
        consider(peer.reorder.poll_timeout());
        let any_normal = any_normal_usable(&peer.paths);
        for path in &peer.paths {
            consider(path.handshake_due);
            consider(path.previous.as_ref().map(|(_, t)| *t));
            if let Some(s) = &path.current {
                consider(Some(s.created + REJECT_AFTER_TIME));
                if self.mode == Mode::Client && path.handshake_due.is_none() {
                    consider(Some(s.created + self.rekey_after));
                }
            }
            consider(self.keepalive_due(path, any_normal));
            if path.is_alive() {
                consider(path.last_rx.map(|t| t + self.path_timeout));
                consider(path.unanswered_since.map(|t| t + silence_limit(path.rtt.srtt())));
            }
            // A loss that lasts demotes the path (see `demote_lossy`).
            if path.state == PathState::Up {
                consider(path.lossy_since.map(|t| t + LOSSY_PERSIST).filter(|t| *t > now));
            }
        }
        earliest
    }

    /// Runs every timer that is due at `now`: those of the peers touched
    /// since the last call and of the peers whose deadline came. A peer
    /// nothing happened to costs nothing here.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        // Each at most once per call: a timer that stays due after running
        // waits for the next call instead of looping here.
        let mut run = self.wakeups.take_touched();
        while let Some(i) = self.wakeups.pop_due(now) {
            run.push(i);
        }
        for &i in &run {
            self.peer_timers(i, now);
        }
        self.wakeups.give_back(run);
    }

    pub(super) fn peer_timers(&mut self, i: usize, now: Instant) {
        let peer = &mut self.peers[i];
        let timeout = hold_timeout(&peer.paths);
        peer.reorder.set_timeout(timeout);
        peer.reorder.handle_timeout(now);
        for path_idx in 0..self.peers[i].paths.len() {
            self.path_timers(i, path_idx, now);
        }
        self.demote_lossy(i, now);
        self.note_ready(i);
        let due = self.peer_deadline(i, now);
        self.wakeups.set(i, due);
    }

    pub(super) fn path_timers(&mut self, peer_idx: usize, path_idx: usize, now: Instant) {
        let client = self.mode == Mode::Client;
        let peer_key = self.peers[peer_idx].public_key;
        let path = &mut self.peers[peer_idx].paths[path_idx];
        if path.previous.as_ref().is_some_and(|(_, t)| *t <= now) {
            let (old, _) = path.previous.take().expect("checked");
            self.indices.remove(&old.local_index);
        }
        if path
            .current
            .as_ref()
            .is_some_and(|s| now.saturating_duration_since(s.created) >= REJECT_AFTER_TIME)
        {
            let old = path.current.take().expect("checked");
            self.indices.remove(&old.local_index);
            if path.state == PathState::Up {
                self.events
                    .push_back(path.mark_down(peer_key, "session expired", client, now));
            } else if client && path.handshake_due.is_none() {
                path.handshake_due = Some(now);
            }
        }
        if path.is_alive()
            && path
                .last_rx
                .is_some_and(|t| now.saturating_duration_since(t) >= self.path_timeout)
        {
            self.events
                .push_back(path.mark_down(peer_key, "peer silent", client, now));
            self.resend_in_flight(peer_idx, path_idx, now);
        } else if path.is_alive()
            && path
                .unanswered_since
                .is_some_and(|t| now.saturating_duration_since(t) >= silence_limit(path.rtt.srtt()))
        {
            self.events
                .push_back(path.mark_down(peer_key, "no report while sending", client, now));
            self.resend_in_flight(peer_idx, path_idx, now);
        }
        let path = &mut self.peers[peer_idx].paths[path_idx];
        if client && path.handshake_due.is_none() {
            if let Some(s) = &path.current {
                let old = now.saturating_duration_since(s.created) >= self.rekey_after;
                if old || s.messages_sent() >= REKEY_AFTER_MESSAGES {
                    path.handshake_due = Some(now);
                }
            }
        }
        if client && path.handshake_due.is_some_and(|t| t <= now) {
            self.send_initiation(peer_idx, path_idx, now);
        }
        let paths = &self.peers[peer_idx].paths;
        let path = &paths[path_idx];
        let any_normal = any_normal_usable(paths);
        let due = self.keepalive_due(path, any_normal);
        if due.is_some_and(|t| t <= now) {
            // An idle path's keepalive asks for an answer too: a path whose
            // outgoing direction died while nothing but keepalives used it
            // is then found out like a busy one (hearing the peer's own
            // keepalives proves only the other direction).
            let idle = path
                .last_tx
                .is_none_or(|t| now.saturating_duration_since(t) >= self.keepalive);
            // A down path's probe asks too, so the answer (an echo proving
            // both directions) brings it back within a probe interval.
            // So does any keepalive (a receive report, say) while nothing
            // we sent was echoed for a keepalive interval: a path used only
            // by the peer's data must notice that our reports stopped
            // arriving.
            let unproven = path
                .proven_at
                .is_none_or(|t| now.saturating_duration_since(t) > self.keepalive);
            let alive = path.is_alive();
            let reply = (alive && (idle || unproven || tail_probe_due(path).is_some_and(|t| t <= now)))
                || path.state == PathState::Down;
            self.push_pending(Pending::Keepalive {
                peer: peer_idx,
                path: path_idx,
                reply,
            });
            // Mark as sent now so the timer does not fire again before
            // poll_transmit drains the queue.
            let path = &mut self.peers[peer_idx].paths[path_idx];
            if reply {
                path.last_probe_tx = Some(now);
                if alive {
                    path.unanswered_since.get_or_insert(now);
                }
            }
            path.reply_owed = false;
            path.told_no_data = Some(!carries_data(path, any_normal));
            path.last_tx = Some(now);
            path.last_report_tx = Some(now);
            path.reported_rx = path.rx_data_packets;
            path.reported_all = path.counters.rx_packets;
        }
    }

    /// Demotes a path that loses much more than the peer's best other path
    /// (and brings it back when it no longer does). Loss every path shares
    /// (an overloaded receiver, say) demotes nothing: there is no better path.
    pub(super) fn demote_lossy(&mut self, peer_idx: usize, now: Instant) {
        let peer = &mut self.peers[peer_idx];
        // Alive paths take part; one not measured yet (just back from an
        // outage, say) counts as clean: it gets the traffic, and so its
        // measurement, only if the lossy path gives way.
        let losses: Vec<Option<f64>> = peer
            .paths
            .iter()
            .map(|p| p.is_alive().then(|| p.estimator.loss().unwrap_or(0.0)))
            .collect();
        for (i, path) in peer.paths.iter_mut().enumerate() {
            let (Some(loss), Some(_)) = (path.estimator.loss(), losses[i]) else {
                continue;
            };
            // Persistence is of the loss itself: a path that has been losing
            // alone is demoted as soon as a better one appears.
            if loss <= LOSSY_ENTER {
                path.lossy_since = None;
            } else if path.lossy_since.is_none() {
                path.lossy_since = Some(now);
            }
            let best_other = losses
                .iter()
                .enumerate()
                .filter(|(j, l)| *j != i && l.is_some())
                .filter_map(|(_, l)| *l)
                .reduce(f64::min);
            let Some(best) = best_other else {
                if path.state == PathState::Lossy {
                    path.state = PathState::Up;
                }
                continue;
            };
            let much_worse = |margin: f64| loss > best * 2.0 + margin;
            let looks_lossy = loss > LOSSY_ENTER && much_worse(0.05);
            let lasting = path
                .lossy_since
                .is_some_and(|t| now.saturating_duration_since(t) >= LOSSY_PERSIST);
            if path.state == PathState::Up && looks_lossy && lasting {
                path.state = PathState::Lossy;
                self.events.push_back(Event::PathLossy {
                    peer: peer.public_key,
                    path: path.name.clone(),
                    loss,
                });
            } else if path.state == PathState::Lossy && (loss < LOSSY_LEAVE || !much_worse(0.02)) {
                path.state = PathState::Up;
                self.events.push_back(Event::PathRecovered {
                    peer: peer.public_key,
                    path: path.name.clone(),
                    loss,
                });
            }
        }
    }

    /// When the path next needs a keepalive: idle for `keepalive`, a receive
    /// report owed (every half RTT while receiving), its no-data flag
    /// changed (`any_normal`: whether a normal path is usable), or a probe
    /// of a down path (so a restored path is noticed within a probe
    /// interval).
    pub(super) fn keepalive_due(&self, path: &Path, any_normal: bool) -> Option<Instant> {
        path.current.as_ref()?;
        match path.state {
            PathState::Up | PathState::Lossy => {
                let interval = if path.state == PathState::Lossy {
                    LOSSY_PROBE_INTERVAL
                } else {
                    self.keepalive
                };
                let idle = path.last_tx.map(|t| t + interval).or(path.last_rx);
                let owed = path.rx_data_packets > path.reported_rx
                    || path.counters.rx_packets >= path.reported_all + PROBES_PER_REPORT;
                let report = owed
                    .then(|| {
                        path.last_report_tx
                            .map(|t| t + report_interval(path.rtt.srtt()))
                            .or(path.last_rx)
                    })
                    .flatten();
                let reply = path.reply_owed.then_some(path.last_rx).flatten();
                // The peer's resequencer waits for paths that carry data:
                // tell it at once when this one starts or stops.
                let no_data = !carries_data(path, any_normal);
                let flag = (path.told_no_data != Some(no_data))
                    .then_some(path.last_rx)
                    .flatten();
                [idle, report, reply, flag, tail_probe_due(path)]
                    .into_iter()
                    .flatten()
                    .min()
            }
            PathState::Down => path.last_tx.map(|t| t + PROBE_INTERVAL).or(path.last_rx),
            PathState::Handshaking => None,
        }
    }
}

/// When a path whose data goes unanswered next sends a tail probe (a
/// keepalive asking for a report), if it does.
pub(super) fn tail_probe_due(path: &Path) -> Option<Instant> {
    let since = path.unanswered_since?;
    let first = since + tail_probe_delay(path.rtt.srtt(), path.rtt.rttvar());
    let next = path
        .last_probe_tx
        .filter(|t| *t >= since)
        .map(|t| t + tail_probe_interval(path.rtt.srtt()));
    Some(next.map_or(first, |n| n.max(first)))
}

/// How long the receiver holds an early packet: the spread of the live
/// paths' one-way delays towards us plus a jitter margin, so a packet sent
/// at the same time on the slowest path normally arrives in time. The slow
/// end of the spread takes each path's queue at its peak of the last second,
/// not its average: a TCP flow's bursts swing the queues faster than an
/// average follows, and a hole skipped too early makes the packet that
/// fills it late (out of order, and a spurious retransmit for TCP).
pub(super) fn hold_timeout(paths: &[Path]) -> Duration {
    let (mut lo, mut hi, mut var) = (Duration::MAX, Duration::ZERO, Duration::ZERO);
    for p in paths.iter().filter(|p| p.is_alive()) {
        let Some(base) = p.rtt.min_rtt().map(|m| m / 2) else {
            continue;
        };
        lo = lo.min(base + p.inbound.queueing());
        hi = hi.max(base + p.inbound.recent_peak().max(p.inbound.queueing()));
        var = var.max(p.rtt.rttvar());
    }
    let spread = hi.saturating_sub(lo);
    (spread + var * 4 + Duration::from_millis(5)).clamp(MIN_TIMEOUT, DEFAULT_MAX_TIMEOUT)
}
