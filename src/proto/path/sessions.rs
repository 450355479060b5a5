//! A path's Noise sessions and the handshake in flight: which session
//! sends, which still decrypt, when the next initiation goes out.

use std::time::{Duration, Instant};

use mlvpn_keys::PublicKey;

use super::{handshake_backoff, handshake_retry, Path, PathState, COOKIE_PRESSURE_WINDOW, IN_USE_WINDOW};
use crate::proto::cookie::{self, Cookie};
use crate::proto::handshake::{InitPayload, Initiator, MAX_PATH_NAME};
use crate::proto::session::{Session, REKEY_AFTER_MESSAGES};
use crate::proto::wire::CookieReply;

/// Never use a session older than this.
pub const REJECT_AFTER_TIME: Duration = Duration::from_secs(180);

#[derive(Default)]
pub(super) struct Sessions {
    /// Session used to send.
    pub(super) current: Option<Session>,
    /// The session `current` replaced; still accepted until the instant.
    pub(super) previous: Option<(Session, Instant)>,
    /// Responder only: a completed handshake whose first packet from the
    /// initiator has not arrived yet (that packet confirms it).
    pub(super) next: Option<Session>,
    /// Initiator only: the handshake in flight.
    pub(super) pending: Option<Initiator>,
    /// Initiator only: the server's cookie (while it is under load) and
    /// when it came.
    pub(super) cookie: Option<(Cookie, Instant)>,
    /// Initiator only: when to send the next initiation.
    pub(super) handshake_due: Option<Instant>,
    pub(super) handshake_attempts: u32,
    /// Responder only: newest initiation timestamp accepted (anti-replay).
    pub(super) last_init_unix_ns: u64,
    pub(super) last_handshake: Option<Instant>,
}

/// A handshake that completed: a new current session.
#[derive(Debug, Clone, Copy)]
pub struct HandshakeDone {
    /// Local index of a session dropped for good (to unregister).
    pub dropped: Option<u32>,
    /// The path had a session before (a rekey).
    pub rekey: bool,
}

impl Path {
    /// Makes `session` current; the old current stays acceptable until
    /// `grace_until`. Returns the local index of a session dropped for good.
    fn install(&mut self, session: Session, grace_until: Instant) -> Option<u32> {
        let s = &mut self.sessions;
        let old = s.current.replace(session)?;
        s.previous
            .replace((old, grace_until))
            .map(|(older, _)| older.local_index)
    }

    /// Local indices of every session this path holds (to unregister them).
    pub fn session_indices(&self) -> impl Iterator<Item = u32> + '_ {
        let s = &self.sessions;
        s.current
            .iter()
            .chain(s.previous.iter().map(|(s, _)| s))
            .chain(s.next.iter())
            .map(|s| s.local_index)
            .chain(s.pending.iter().map(|p| p.sender))
    }

    /// The session local index `receiver` names, if this path has it.
    pub fn session_for(&mut self, receiver: u32) -> Option<&mut Session> {
        let s = &mut self.sessions;
        [
            s.current.as_mut(),
            s.next.as_mut(),
            s.previous.as_mut().map(|(s, _)| s),
        ]
        .into_iter()
        .flatten()
        .find(|s| s.local_index == receiver)
    }

    /// Responder: the first packet on the session a handshake made (local
    /// index `receiver`) confirms it; it becomes current.
    pub fn confirm_next(
        &mut self,
        receiver: u32,
        grace_until: Instant,
        now: Instant,
    ) -> Option<HandshakeDone> {
        if self
            .sessions
            .next
            .as_ref()
            .is_none_or(|s| s.local_index != receiver)
        {
            return None;
        }
        let next = self.sessions.next.take().expect("checked above");
        let dropped = self.install(next, grace_until);
        self.sessions.last_handshake = Some(now);
        self.counters.handshakes += 1;
        Some(HandshakeDone {
            dropped,
            rekey: self.sessions.previous.is_some(),
        })
    }

    /// Responder: whether an initiation stamped `unix_ns` is newer than
    /// the last one accepted here (else it is a replay).
    pub fn initiation_is_new(&self, unix_ns: u64) -> bool {
        unix_ns > self.sessions.last_init_unix_ns
    }

    /// Responder: an initiation stamped `unix_ns`, naming the path `name`,
    /// was answered with `session`, to be confirmed by the initiator's
    /// first packet. Returns the local index of an unconfirmed session it
    /// replaces.
    pub fn accept_initiation(&mut self, unix_ns: u64, name: String, session: Session) -> Option<u32> {
        self.sessions.last_init_unix_ns = unix_ns;
        self.name = name;
        self.sessions.next.replace(session).map(|old| old.local_index)
    }

    /// Initiator: whether the handshake in flight has local index `index`.
    pub fn has_pending(&self, index: u32) -> bool {
        self.sessions.pending.as_ref().is_some_and(|i| i.sender == index)
    }

    /// Initiator: the handshake in flight.
    pub fn pending_mut(&mut self) -> Option<&mut Initiator> {
        self.sessions.pending.as_mut()
    }

    /// Initiator: a response completed the handshake in flight with
    /// `session`. The path is heard from; it comes up if it was not alive
    /// (returned with what the handshake did).
    pub fn initiated(
        &mut self,
        session: Session,
        grace_until: Instant,
        now: Instant,
    ) -> (HandshakeDone, bool) {
        self.sessions.pending = None;
        let rekey = self.sessions.current.is_some();
        let dropped = self.install(session, grace_until);
        self.sessions.handshake_due = None;
        self.sessions.handshake_attempts = 0;
        self.sessions.last_handshake = Some(now);
        self.liveness.last_rx = Some(now);
        self.counters.handshakes += 1;
        let came_up = !self.is_alive();
        if came_up {
            self.state = PathState::Up;
            self.estimation.estimator.reset_loss(now);
        }
        (HandshakeDone { dropped, rekey }, came_up)
    }

    /// Initiator: the server `server` answered the initiation in flight
    /// with a cookie reply. The cookie is kept, and the initiation retried
    /// at once if it had none (else the usual back-off: no tight loop). At
    /// most one reply per initiation is taken: more (forged or replayed)
    /// cannot make the client retry in a loop. Returns whether it was taken.
    pub fn take_cookie_reply(&mut self, server: &PublicKey, reply: &CookieReply<'_>, now: Instant) -> bool {
        let Some(initiator) = self.sessions.pending.as_mut() else {
            return false;
        };
        if initiator.cookie_taken {
            return false;
        }
        let Some(cookie) = cookie::open_reply(server, reply, &initiator.mac1) else {
            return false;
        };
        initiator.cookie_taken = true;
        self.sessions.cookie = Some((cookie, now));
        if !initiator.with_cookie {
            self.sessions.handshake_due = Some(now);
        }
        true
    }

    /// Initiator: the payload of an initiation stamped `unix_ns`.
    pub fn init_payload(&self, unix_ns: u64) -> InitPayload {
        InitPayload {
            unix_ns,
            path_id: self.wire_id,
            path_name: self.name.chars().take(MAX_PATH_NAME).collect(),
        }
    }

    /// Initiator: counts an initiation attempt; returns how long to wait
    /// before the next one. `peer_in_use`: when the site last sent traffic
    /// for the peer. In use and not pushed back by a cookie: a few round
    /// trips; else the back-off.
    pub fn initiation_attempted(&mut self, peer_in_use: Option<Instant>, now: Instant) -> Duration {
        self.sessions.handshake_attempts += 1;
        let recent = |t: Option<Instant>| t.is_some_and(|t| now.saturating_duration_since(t) < IN_USE_WINDOW);
        let in_use = recent(peer_in_use) || recent(self.liveness.last_rx);
        let pressure = self
            .sessions
            .cookie
            .as_ref()
            .is_some_and(|(_, at)| now.saturating_duration_since(*at) < COOKIE_PRESSURE_WINDOW);
        if in_use && !pressure {
            handshake_retry(self.estimation.rtt.srtt())
        } else {
            handshake_backoff(self.sessions.handshake_attempts)
        }
    }

    /// Initiator: the next initiation goes out at `at`.
    pub fn schedule_handshake(&mut self, at: Instant) {
        self.sessions.handshake_due = Some(at);
    }

    /// Initiator: a handshake at once, unless one is scheduled already.
    pub fn want_handshake(&mut self, now: Instant) {
        if self.sessions.handshake_due.is_none() {
            self.sessions.handshake_due = Some(now);
        }
    }

    /// Initiator: whether an initiation is due by `now`.
    pub fn handshake_due_by(&self, now: Instant) -> bool {
        self.sessions.handshake_due.is_some_and(|t| t <= now)
    }

    /// Initiator: the server's cookie, while it is fresh enough to use.
    pub fn fresh_cookie(&self, now: Instant) -> Option<&Cookie> {
        self.sessions
            .cookie
            .as_ref()
            .filter(|(_, at)| now.saturating_duration_since(*at) < cookie::COOKIE_LIFETIME)
            .map(|(c, _)| c)
    }

    /// Initiator: `initiator` is the handshake in flight now; returns the
    /// local index of the one it replaces.
    pub fn set_pending(&mut self, initiator: Initiator) -> Option<u32> {
        self.sessions.pending.replace(initiator).map(|old| old.sender)
    }

    /// The private key changed: the handshake in flight (made with the old
    /// key) is dropped, its local index returned; a client starts a new
    /// one at once.
    pub fn restart_handshake(&mut self, client: bool, now: Instant) -> Option<u32> {
        let old = self.sessions.pending.take().map(|old| old.sender);
        if client {
            self.sessions.handshake_due = Some(now);
            self.sessions.handshake_attempts = 0;
        }
        old
    }

    /// Drops the previous session once its grace period is over; returns
    /// its local index.
    pub fn expire_previous(&mut self, now: Instant) -> Option<u32> {
        if self.sessions.previous.as_ref().is_some_and(|(_, t)| *t <= now) {
            let (old, _) = self.sessions.previous.take().expect("checked");
            return Some(old.local_index);
        }
        None
    }

    /// Drops the current session once it is too old to use; returns its
    /// local index.
    pub fn expire_current(&mut self, now: Instant) -> Option<u32> {
        if self
            .sessions
            .current
            .as_ref()
            .is_some_and(|s| now.saturating_duration_since(s.created) >= REJECT_AFTER_TIME)
        {
            let old = self.sessions.current.take().expect("checked");
            return Some(old.local_index);
        }
        None
    }

    /// Client: a rekey is due once the current session is `rekey_after`
    /// old or has sent enough messages (unless a handshake is scheduled).
    pub fn schedule_rekey(&mut self, rekey_after: Duration, now: Instant) {
        if self.sessions.handshake_due.is_none() {
            if let Some(s) = &self.sessions.current {
                let old = now.saturating_duration_since(s.created) >= rekey_after;
                if old || s.messages_sent() >= REKEY_AFTER_MESSAGES {
                    self.sessions.handshake_due = Some(now);
                }
            }
        }
    }

    /// The sessions' deadlines: the next initiation, the end of the
    /// previous session's grace, the current one's expiry and (client)
    /// rekey.
    pub(super) fn session_deadlines(&self, client: bool, rekey_after: Duration) -> [Option<Instant>; 4] {
        let s = &self.sessions;
        let created = s.current.as_ref().map(|c| c.created);
        [
            s.handshake_due,
            s.previous.as_ref().map(|(_, t)| *t),
            created.map(|c| c + REJECT_AFTER_TIME),
            created
                .filter(|_| client && s.handshake_due.is_none())
                .map(|c| c + rekey_after),
        ]
    }
}
