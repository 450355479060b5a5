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

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::delay::{InboundDelay, RttEstimator};
use super::estimator::PathEstimator;
use super::handshake::Initiator;
use super::resend::InFlightLog;
use super::session::Session;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

pub struct Path {
    /// The client's index of this path (carried in the handshake).
    pub id: u8,
    pub name: String,
    /// Local socket the path sends from.
    pub socket: usize,
    /// Where the path sends to: configured (client) or learned from
    /// authenticated packets (server).
    pub endpoint: Option<SocketAddr>,
    pub state: PathState,
    /// Session used to send.
    pub current: Option<Session>,
    /// The session `current` replaced; still accepted until the instant.
    pub previous: Option<(Session, Instant)>,
    /// Responder only: a completed handshake whose first packet from the
    /// initiator has not arrived yet (that packet confirms it).
    pub next: Option<Session>,
    /// Initiator only: the handshake in flight.
    pub pending: Option<Initiator>,
    /// Initiator only: the server's cookie (while it is under load) and
    /// when it came.
    pub cookie: Option<(super::cookie::Cookie, Instant)>,
    /// Initiator only: when to send the next initiation.
    pub handshake_due: Option<Instant>,
    pub handshake_attempts: u32,
    /// Responder only: newest initiation timestamp accepted (anti-replay).
    pub last_init_unix_ns: u64,
    pub last_rx: Option<Instant>,
    pub last_tx: Option<Instant>,
    pub last_handshake: Option<Instant>,
    pub rtt: RttEstimator,
    /// Queueing towards us, from the peer's timestamps.
    pub inbound: InboundDelay,
    /// Latest peer timestamp seen on this path and when, echoed back.
    pub echo: Option<(u32, Instant)>,
    /// Latest echo of ours the peer sent back (one RTT sample per echo).
    pub last_echo_seen: u32,
    /// When we sent the newest thing the peer echoed: our direction worked
    /// then.
    pub proven_at: Option<Instant>,
    pub bandwidth_up: Option<u64>,
    pub fallback: bool,
    pub counters: PathCounters,
    /// Loss and delivery rate from the peer's receive reports.
    pub estimator: PathEstimator,
    /// First data packet sent since the peer was last heard on this path:
    /// silence is measured from here (an idle path may not have heard from
    /// its peer for a keepalive interval, and that is fine).
    pub unanswered_since: Option<Instant>,
    /// Largest datagram known to fit (learned from EMSGSIZE); `None` = no
    /// limit seen.
    pub max_datagram: Option<usize>,
    /// When the path last went down: it comes back only when the peer
    /// echoes something sent after this (both directions work again).
    pub down_since: Option<Instant>,
    /// Since when the path has looked lossy (demotion needs it to last).
    pub lossy_since: Option<Instant>,
    /// Last receive report we sent, and the data packets received by then
    /// (a report is owed for data only: reports answering keepalives would
    /// bounce between the peers forever).
    pub last_report_tx: Option<Instant>,
    pub rx_data_packets: u64,
    /// Tunnel sequence number of the latest data packet received here: a
    /// path delivers in order, so a hole below it is not on this path.
    pub last_seq_rx: Option<u64>,
    /// The peer's latest keepalive on this path said it sends no data here
    /// (a `fallback` or `lossy` path while a better one is up); cleared by
    /// the next data packet.
    pub peer_sends_no_data: bool,
    /// The no-data flag of the last keepalive we sent here: a keepalive is
    /// due as soon as it no longer holds.
    pub told_no_data: Option<bool>,
    /// Latest RTT sample as the scheduler uses it: when we sent the packet
    /// it echoes, and how long that packet queued on its way out.
    pub queue_sample: Option<(Instant, Duration)>,
    pub reported_rx: u64,
    /// All packets received when the last report went out: a burst of
    /// probes (a lossy path being re-measured) also earns a report.
    pub reported_all: u64,
    /// The peer probed us: a report is owed at once.
    pub reply_owed: bool,
    /// Last tail probe sent (while data goes unanswered).
    pub last_probe_tx: Option<Instant>,
    /// Data packets sent and not reported yet: re-sent elsewhere if the
    /// path dies.
    pub in_flight: InFlightLog,
}

impl Path {
    pub fn new(id: u8, name: String, socket: usize, endpoint: Option<SocketAddr>) -> Self {
        Path {
            id,
            name,
            socket,
            endpoint,
            state: PathState::Handshaking,
            current: None,
            previous: None,
            next: None,
            pending: None,
            cookie: None,
            handshake_due: None,
            handshake_attempts: 0,
            last_init_unix_ns: 0,
            last_rx: None,
            last_tx: None,
            last_handshake: None,
            rtt: RttEstimator::default(),
            inbound: InboundDelay::default(),
            echo: None,
            last_echo_seen: 0,
            proven_at: None,
            bandwidth_up: None,
            fallback: false,
            counters: PathCounters::default(),
            estimator: PathEstimator::default(),
            unanswered_since: None,
            lossy_since: None,
            down_since: None,
            max_datagram: None,
            last_report_tx: None,
            rx_data_packets: 0,
            last_seq_rx: None,
            peer_sends_no_data: false,
            told_no_data: None,
            queue_sample: None,
            reported_rx: 0,
            reported_all: 0,
            reply_owed: false,
            last_probe_tx: None,
            in_flight: InFlightLog::default(),
        }
    }

    /// Queueing delay on the way to the peer: what the RTT shows above its
    /// minimum that is not queued on the way in.
    pub fn outbound_queue(&self) -> Duration {
        self.rtt.queueing().saturating_sub(self.inbound.queueing())
    }

    /// Can carry data now.
    pub fn is_usable(&self) -> bool {
        self.is_alive() && self.current.is_some() && self.endpoint.is_some()
    }

    /// Up or lossy: hearing from the peer.
    pub fn is_alive(&self) -> bool {
        matches!(self.state, PathState::Up | PathState::Lossy)
    }

    /// Local indices of every session this path holds (to unregister them).
    pub fn session_indices(&self) -> impl Iterator<Item = u32> + '_ {
        self.current
            .iter()
            .chain(self.previous.iter().map(|(s, _)| s))
            .chain(self.next.iter())
            .map(|s| s.local_index)
            .chain(self.pending.iter().map(|p| p.sender))
    }
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
