//! Timers: session expiry and rekeying, liveness (a path goes down), keepalives
//! and receive reports, lossy-path demotion, the resequencer's hold timeout.

use std::time::Instant;

use super::{Event, Pending, Tunnel};
use crate::proto::path::{any_normal_usable, hold_timeout, LossVerdict, PathState, PathTimers};
use crate::proto::Mode;

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

    /// The settings every path's timers use.
    fn path_timers_config(&self) -> PathTimers {
        PathTimers {
            client: self.mode == Mode::Client,
            keepalive: self.keepalive,
            path_timeout: self.path_timeout,
            rekey_after: self.rekey_after,
        }
    }

    /// When peer `i` next has a timer to run, as of `now`.
    pub(super) fn peer_deadline(&self, i: usize, now: Instant) -> Option<Instant> {
        let peer = &self.peers[i];
        let timers = self.path_timers_config();
        let any_normal = any_normal_usable(&peer.paths);
        let paths = peer
            .paths
            .iter()
            .filter_map(|p| p.deadline(&timers, any_normal, now));
        paths.chain(peer.reorder.poll_timeout()).min()
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
        let path = &mut self.peers[peer_idx].paths[path_idx];
        if let Some(old) = path.expire_previous(now) {
            self.indices.remove(&old);
        }
        if let Some(old) = path.expire_current(now) {
            self.indices.remove(&old);
            if path.state() == PathState::Up {
                self.path_down(peer_idx, path_idx, "session expired", now);
            } else if client {
                path.want_handshake(now);
            }
        }
        let path = &self.peers[peer_idx].paths[path_idx];
        if let Some(reason) = path.liveness_lost(self.path_timeout, now) {
            self.path_down(peer_idx, path_idx, reason, now);
            self.resend_in_flight(peer_idx, path_idx, now);
        }
        let path = &mut self.peers[peer_idx].paths[path_idx];
        if client {
            path.schedule_rekey(self.rekey_after, now);
        }
        if client && path.handshake_due_by(now) {
            self.send_initiation(peer_idx, path_idx, now);
        }
        let paths = &mut self.peers[peer_idx].paths;
        let any_normal = any_normal_usable(paths);
        let path = &mut paths[path_idx];
        if let Some(reply) = path.keepalive_now(self.keepalive, any_normal, now) {
            let path = path.id();
            self.push_pending(Pending::Keepalive { path, reply });
        }
    }

    /// Takes a path down (a client schedules a new handshake at once).
    fn path_down(&mut self, peer_idx: usize, path_idx: usize, reason: &'static str, now: Instant) {
        let client = self.mode == Mode::Client;
        let peer = &mut self.peers[peer_idx];
        let path = &mut peer.paths[path_idx];
        path.mark_down(client, now);
        self.events.push_back(Event::PathDown {
            peer: peer.public_key,
            path: path.name().to_string(),
            id: path.wire_id(),
            path_id: path.id(),
            reason,
        });
    }

    /// Demotes a path that loses much more than the peer's best other path
    /// (and brings it back when it no longer does); see `Path::judge_loss`.
    pub(super) fn demote_lossy(&mut self, peer_idx: usize, now: Instant) {
        let peer = &mut self.peers[peer_idx];
        let losses: Vec<Option<f64>> = peer.paths.iter().map(|p| p.loss_if_alive()).collect();
        for (i, path) in peer.paths.iter_mut().enumerate() {
            if losses[i].is_none() {
                continue;
            }
            let best_other = losses
                .iter()
                .enumerate()
                .filter(|(j, l)| *j != i && l.is_some())
                .filter_map(|(_, l)| *l)
                .reduce(f64::min);
            let event = match path.judge_loss(best_other, now) {
                Some(LossVerdict::Lossy(loss)) => Event::PathLossy {
                    peer: peer.public_key,
                    path: path.name().to_string(),
                    path_id: path.id(),
                    loss,
                },
                Some(LossVerdict::Recovered(loss)) => Event::PathRecovered {
                    peer: peer.public_key,
                    path: path.name().to_string(),
                    path_id: path.id(),
                    loss,
                },
                None => continue,
            };
            self.events.push_back(event);
        }
    }
}
