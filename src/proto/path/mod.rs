//! Per-path state: sessions, liveness, RTT.
//!
//! A path is one UDP 5-tuple between the sites, with its own Noise sessions.
//! Its state machine:
//!
//! ```text
//! handshaking ──handshake done + packet──► up ──silent for path_timeout──► down
//!      ▲                                    ▲                              │
//!      └── (client) retry with backoff      └──── authenticated packet ────┘
//! ```
//! The client re-handshakes a path that went down; the server waits for it.
//!
//! The state is private to this module, grouped by concern, and changed
//! only through [`Path`]'s methods, so each rule lives in one place:
//! `sessions` (Noise sessions and the handshake in flight), `liveness`
//! (when the peer was heard and answered, when the path went down),
//! `feedback` (timestamps echoed, receive reports and keepalive flags
//! owed: the keepalive state), `estimation` (RTT, queueing, loss, rate,
//! MTU limit).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::ids::{PathId, SocketId};
use super::resend::InFlightLog;
use super::scheduler::Candidate;
use super::seal_job::SealJob;
use super::stats::PathStatus;
use super::tunnel::Transmit;
use super::wire::{DATA_HEADER_LEN, TAG_LEN};

mod estimation;
mod feedback;
mod liveness;
mod sessions;

use estimation::Estimation;
pub use estimation::{hold_timeout, LossVerdict};
pub use feedback::lost_below;
use feedback::Feedback;
use liveness::Liveness;
use sessions::Sessions;
pub use sessions::{HandshakeDone, REJECT_AFTER_TIME};

/// A path's state; in the status JSON as its lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PathState {
    Handshaking,
    Up,
    /// Up, but losing more than `LOSSY_ENTER`: used only when no good path
    /// is, and probed until its loss falls below `LOSSY_LEAVE`.
    Lossy,
    Down,
}

impl PathState {
    pub fn as_str(self) -> &'static str {
        match self {
            PathState::Handshaking => "handshaking",
            PathState::Up => "up",
            PathState::Lossy => "lossy",
            PathState::Down => "down",
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PathCounters {
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub rx_packets: u64,
    /// Completed handshakes.
    pub handshakes: u64,
    /// Authenticated packets that arrived from a new address.
    pub endpoint_changes: u64,
}

/// The tunnel-wide settings a path's timers use.
#[derive(Debug, Clone, Copy)]
pub struct PathTimers {
    /// This node initiates handshakes (the client).
    pub client: bool,
    pub keepalive: Duration,
    pub path_timeout: Duration,
    pub rekey_after: Duration,
}

pub struct Path {
    /// Its stable name in this tunnel.
    id: PathId,
    /// The client's index of this path (carried in the handshake).
    wire_id: u8,
    name: String,
    /// Local socket the path sends from.
    socket: SocketId,
    /// Where the path sends to: configured (client) or learned from
    /// authenticated packets (server).
    endpoint: Option<SocketAddr>,
    bandwidth_up: Option<u64>,
    fallback: bool,
    state: PathState,
    sessions: Sessions,
    liveness: Liveness,
    feedback: Feedback,
    estimation: Estimation,
    counters: PathCounters,
    /// Data packets sent and not reported yet: re-sent elsewhere if the
    /// path dies.
    in_flight: InFlightLog,
}

impl Path {
    pub fn new(
        id: PathId,
        wire_id: u8,
        name: String,
        socket: SocketId,
        endpoint: Option<SocketAddr>,
    ) -> Self {
        Path {
            id,
            wire_id,
            name,
            socket,
            endpoint,
            bandwidth_up: None,
            fallback: false,
            state: PathState::Handshaking,
            sessions: Sessions::default(),
            liveness: Liveness::default(),
            feedback: Feedback::default(),
            estimation: Estimation::default(),
            counters: PathCounters::default(),
            in_flight: InFlightLog::default(),
        }
    }

    pub fn id(&self) -> PathId {
        self.id
    }

    /// The client's index of this path (carried in the handshake).
    pub fn wire_id(&self) -> u8 {
        self.wire_id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn socket(&self) -> SocketId {
        self.socket
    }

    pub fn endpoint(&self) -> Option<SocketAddr> {
        self.endpoint
    }

    pub fn state(&self) -> PathState {
        self.state
    }

    /// Sets the configured upload cap and fallback flag; returns whether
    /// either changed.
    pub fn set_limits(&mut self, bandwidth_up: Option<u64>, fallback: bool) -> bool {
        let changed = self.bandwidth_up != bandwidth_up || self.fallback != fallback;
        self.bandwidth_up = bandwidth_up;
        self.fallback = fallback;
        changed
    }

    /// Can carry data now.
    pub fn is_usable(&self) -> bool {
        self.is_alive() && self.sessions.current.is_some() && self.endpoint.is_some()
    }

    /// Up or lossy: hearing from the peer.
    pub fn is_alive(&self) -> bool {
        matches!(self.state, PathState::Up | PathState::Lossy)
    }

    /// A path used only when no normal one is usable (see `Scheduler::pick`).
    pub fn is_backup(&self) -> bool {
        self.fallback || self.state == PathState::Lossy
    }

    /// Whether the scheduler may give this path data now: usable, and a
    /// normal path unless none is usable (`any_normal`, the rule of
    /// `Scheduler::pick`).
    pub fn carries_data(&self, any_normal: bool) -> bool {
        self.is_usable() && self.is_backup() != any_normal
    }

    /// What the scheduler weighs about this path.
    pub fn candidate(&self) -> Candidate {
        let e = &self.estimation;
        Candidate {
            usable: self.is_usable(),
            fallback: self.is_backup(),
            owd: e.rtt.min_rtt().unwrap_or_default() / 2,
            queued: self.outbound_queue(),
            queue_sample: e.queue_sample,
            rate: e.estimator.rate_bps(),
            capacity: e.estimator.capacity_bps(),
            loss: e.estimator.loss().unwrap_or(0.0),
            cap: self.bandwidth_up,
            max_size: e.max_datagram.unwrap_or(usize::MAX),
        }
    }

    /// Reserves a counter of the current session for the frame at
    /// `buf[DATA_HEADER_LEN..][..frame_len]`, writes the data header and
    /// accounts for the datagram; what is left is the encryption, the
    /// returned job's. `None`: no endpoint, no session, or the session's
    /// counters are exhausted.
    pub fn prepare_seal(&mut self, buf: &mut [u8], frame_len: usize, now: Instant) -> Option<SealJob> {
        let dest = self.endpoint?;
        let session = self.sessions.current.as_mut()?;
        let (cipher, counter) = session.reserve(buf).ok()?;
        let job = SealJob::new(
            cipher,
            counter,
            frame_len,
            Transmit {
                socket: self.socket,
                dest,
                len: DATA_HEADER_LEN + frame_len + TAG_LEN,
                path: Some(self.id),
            },
        );
        let n = job.transmit().len;
        self.liveness.last_tx = Some(now);
        self.counters.tx_bytes += n as u64;
        self.counters.tx_packets += 1;
        self.estimation.estimator.on_send(now, self.counters.tx_packets);
        Some(job)
    }

    /// Keeps a copy of data packet `seq` about to go out, for a re-send
    /// should the path die.
    pub fn log_in_flight(&mut self, seq: u64, packet: &[u8]) {
        self.in_flight.record(self.counters.tx_packets + 1, seq, packet);
    }

    /// The packets sent and not reported (emptied): to re-send elsewhere.
    pub fn take_in_flight(&mut self) -> Vec<(u64, Vec<u8>)> {
        self.in_flight.take()
    }

    /// Roaming / NAT rebinding (server): an authenticated, fresh packet on
    /// the current session from another address or socket moves the
    /// endpoint there. Returns whether it moved.
    pub fn follow_roaming(&mut self, socket: SocketId, from: SocketAddr, receiver: u32) -> bool {
        let is_current = self
            .sessions
            .current
            .as_ref()
            .is_some_and(|s| s.local_index == receiver);
        if is_current && (self.endpoint != Some(from) || self.socket != socket) {
            self.endpoint = Some(from);
            self.socket = socket;
            self.counters.endpoint_changes += 1;
            return true;
        }
        false
    }

    /// When this path next has a timer to run, as of `now`: sessions,
    /// keepalives (`any_normal`: whether a normal path is usable),
    /// liveness.
    pub fn deadline(&self, timers: &PathTimers, any_normal: bool, now: Instant) -> Option<Instant> {
        let sessions = self.session_deadlines(timers.client, timers.rekey_after);
        let keepalive = self.keepalive_due(timers.keepalive, any_normal);
        let liveness = self.liveness_deadlines(timers.path_timeout, now);
        sessions
            .into_iter()
            .chain([keepalive])
            .chain(liveness)
            .flatten()
            .min()
    }

    /// A snapshot for `mlvpn-rs status`.
    pub fn status(&self, now: Instant) -> PathStatus {
        let (rtt, c) = (&self.estimation.rtt, &self.counters);
        PathStatus {
            name: self.name.clone(),
            state: self.state,
            endpoint: self.endpoint,
            srtt_ms: rtt.srtt().map(|d| d.as_secs_f64() * 1000.0),
            rttvar_ms: rtt.srtt().map(|_| rtt.rttvar().as_secs_f64() * 1000.0),
            loss: self.estimation.estimator.loss(),
            rate_mbps: self.estimation.estimator.rate_bps().map(|r| r / 1e6),
            tx_bytes: c.tx_bytes,
            rx_bytes: c.rx_bytes,
            tx_packets: c.tx_packets,
            rx_packets: c.rx_packets,
            handshakes: c.handshakes,
            endpoint_changes: c.endpoint_changes,
            last_handshake_ago_ms: self
                .sessions
                .last_handshake
                .map(|t| now.saturating_duration_since(t).as_millis() as u64),
        }
    }
}

/// Whether any normal (not backup) path is usable.
pub fn any_normal_usable(paths: &[Path]) -> bool {
    paths.iter().any(|p| p.is_usable() && !p.is_backup())
}

/// A path carrying traffic that has heard nothing for this long is down:
/// 3 × SRTT, at least 200 ms (reports come every ≤ 100 ms).
pub fn silence_limit(srtt: Option<Duration>) -> Duration {
    srtt.map_or(Duration::ZERO, |s| s * 3)
        .max(Duration::from_millis(200))
}

/// Data unanswered for this long earns a tail probe: one RTT, the peer's
/// report interval and a jitter margin, so a normal report would have come.
pub fn tail_probe_delay(srtt: Option<Duration>, rttvar: Duration) -> Duration {
    srtt.unwrap_or_default() + report_interval(srtt) + (rttvar * 4).max(Duration::from_millis(5))
}

/// Tail probes repeat this often until the silence limit: several chances
/// for a lossy path to answer before it is declared down.
pub fn tail_probe_interval(srtt: Option<Duration>) -> Duration {
    (srtt.unwrap_or_default() / 4).clamp(Duration::from_millis(10), Duration::from_millis(100))
}

/// How often a receiving path reports: half an RTT, 10 to 100 ms.
pub fn report_interval(srtt: Option<Duration>) -> Duration {
    srtt.map_or(Duration::from_millis(100), |s| s / 2)
        .clamp(Duration::from_millis(10), Duration::from_millis(100))
}

/// Loss above which a path is demoted to lossy, and below which it returns.
pub const LOSSY_ENTER: f64 = 0.20;
pub const LOSSY_LEAVE: f64 = 0.03;
/// How long the loss must last before demotion (a start-up burst that
/// overflows a buffer does not).
pub const LOSSY_PERSIST: Duration = Duration::from_millis(300);
/// Probe interval of a lossy path (enough packets to re-measure its loss).
pub const LOSSY_PROBE_INTERVAL: Duration = Duration::from_millis(20);

/// How often a down path with a session is probed (restored paths return fast).
pub const PROBE_INTERVAL: Duration = Duration::from_millis(200);

/// Delay before handshake retry `attempt` (1-based) of an idle tunnel, or
/// one whose server says it is under load: 1 s doubling to 8 s.
pub fn handshake_backoff(attempt: u32) -> Duration {
    Duration::from_secs(1 << attempt.saturating_sub(1).min(3))
}

/// Delay before a handshake retry while the tunnel is in use: three round
/// trips (the response to one initiation normally arrives before the next
/// replaces it), 250 ms to 1 s; 1 s on a path never measured. A restarted
/// server is then found within about a quarter of a second, where the
/// back-off could sleep through its return for up to 8 s.
pub fn handshake_retry(srtt: Option<Duration>) -> Duration {
    srtt.map_or(Duration::from_secs(1), |s| {
        (s * 3).clamp(Duration::from_millis(250), Duration::from_secs(1))
    })
}

/// A tunnel is in use for [`handshake_retry`] while the site sent traffic
/// for the peer, or the path heard from it, this recently.
pub const IN_USE_WINDOW: Duration = Duration::from_secs(60);

/// A cookie reply this recent means the server is under load: retries back
/// off instead of adding to it.
pub const COOKIE_PRESSURE_WINDOW: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_in_use_is_three_round_trips_within_bounds() {
        assert_eq!(handshake_retry(None), Duration::from_secs(1));
        assert_eq!(
            handshake_retry(Some(Duration::from_millis(20))),
            Duration::from_millis(250)
        );
        assert_eq!(
            handshake_retry(Some(Duration::from_millis(200))),
            Duration::from_millis(600)
        );
        assert_eq!(
            handshake_retry(Some(Duration::from_millis(900))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn backoff_caps() {
        assert_eq!(handshake_backoff(1), Duration::from_secs(1));
        assert_eq!(handshake_backoff(2), Duration::from_secs(2));
        assert_eq!(handshake_backoff(4), Duration::from_secs(8));
        assert_eq!(handshake_backoff(40), Duration::from_secs(8));
    }
}
