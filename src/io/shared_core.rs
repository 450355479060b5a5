//! The core as the data threads share it: the [`Tunnel`] and what sending
//! its control frames needs, behind one lock. Whoever holds the lock runs
//! the core's timers and sends what they produce; the sending thread
//! keeps the lock only while the core seals, the receiving thread while
//! it opens.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::udp_trains::SocketMap;
use crate::proto::stats::Drops;
use crate::proto::tunnel::{Event, Transmit, OVERHEAD};
use crate::proto::Tunnel;

/// Drops are summed up in the log at most this often.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Largest control datagram (room for any the core writes).
const CONTROL_BUF_LEN: usize = 65536 + OVERHEAD;

/// Hook requests sent to the privileged parent (client path name, up or
/// down).
pub type HookSink = tokio::sync::mpsc::UnboundedSender<(String, bool)>;

pub struct Core {
    pub tunnel: Tunnel,
    /// The path sockets; replaced whole by a reload (the threads keep a
    /// clone of the `Arc` while they send).
    pub sockets: Arc<SocketMap>,
    /// When the receiving thread wakes next for the core's timers (`None`:
    /// not before a datagram or a poke).
    pub timer_armed: Option<Instant>,
    out: Vec<u8>,
    last_send_error_log: Option<Instant>,
    hooks: Option<HookSink>,
    /// Drop counters at the last drop summary, and when it was due.
    drops_logged: (Drops, Instant),
}

/// Locks the core. A thread that panicked while holding it left it
/// half-changed: the others stop too (the worker exits and the parent
/// reports it).
pub fn lock(core: &Mutex<Core>) -> MutexGuard<'_, Core> {
    core.lock()
        .expect("a data thread panicked while holding the core")
}

impl Core {
    pub fn new(tunnel: Tunnel, sockets: SocketMap, hooks: Option<HookSink>) -> Core {
        Core {
            tunnel,
            sockets: Arc::new(sockets),
            timer_armed: None,
            out: vec![0; CONTROL_BUF_LEN],
            last_send_error_log: None,
            hooks,
            drops_logged: (Drops::default(), Instant::now()),
        }
    }

    /// Runs the core's timers and sends and logs what they produced.
    pub fn housekeeping(&mut self, now: Instant) {
        self.tunnel.handle_timeout(now);
        self.flush_control(now);
        self.log_events();
        self.log_drops(now);
    }

    /// Sends the control datagrams the core has queued (handshakes,
    /// keepalives, receive reports, re-sends).
    pub fn flush_control(&mut self, now: Instant) {
        while let Some(t) = self.tunnel.poll_transmit(&mut self.out, now) {
            if send(&self.sockets, &self.out, t, &mut self.last_send_error_log) {
                self.tunnel.datagram_too_big(t);
            }
        }
    }

    fn log_events(&mut self) {
        while let Some(ev) = self.tunnel.poll_event() {
            match ev {
                Event::PathUp { peer, path, .. } => {
                    info!(%peer, %path, "path up");
                    self.hook(&path, true);
                }
                Event::PathDown {
                    peer, path, reason, ..
                } => {
                    warn!(%peer, %path, reason, "path down");
                    self.hook(&path, false);
                }
                Event::PathLossy { peer, path, loss, .. } => {
                    warn!(%peer, %path, loss, "path lossy: used only as fallback")
                }
                Event::PathRecovered { peer, path, loss, .. } => {
                    info!(%peer, %path, loss, "path recovered from loss")
                }
                Event::HandshakeCompleted {
                    peer, path, rekey, ..
                } => {
                    if rekey {
                        debug!(%peer, %path, "rekeyed");
                    } else {
                        info!(%peer, %path, "handshake completed");
                    }
                }
                Event::EndpointChanged {
                    peer, path, endpoint, ..
                } => {
                    info!(%peer, %path, %endpoint, "path endpoint changed")
                }
            }
        }
    }

    /// One line per [`DROP_LOG_INTERVAL`] at most, naming what was dropped
    /// since the last one: an attack shows in the log without flooding it.
    fn log_drops(&mut self, now: Instant) {
        if now.saturating_duration_since(self.drops_logged.1) < DROP_LOG_INTERVAL {
            return;
        }
        let drops = *self.tunnel.drops();
        let since = drops.since(&self.drops_logged.0);
        if since.total() > 0 {
            warn!(
                total = since.total(),
                "dropped in the last {DROP_LOG_INTERVAL:?}: {since}"
            );
        }
        self.drops_logged = (drops, now);
    }

    fn hook(&self, path: &str, up: bool) {
        if let Some(h) = &self.hooks {
            let _ = h.send((path.to_string(), up));
        }
    }
}

/// Sends a datagram; returns true when it was too big for the path
/// (EMSGSIZE: the interface's or a learned path MTU), which the core is told.
/// Other errors (an interface down) are normal for a multipath tunnel: logged
/// at most once a second, not fatal.
fn send(sockets: &SocketMap, buf: &[u8], t: Transmit, last_log: &mut Option<Instant>) -> bool {
    // The core names only sockets it was given and not told are closed.
    let Some(socket) = sockets.get(&t.socket) else {
        debug!(socket = %t.socket, "send on a closed socket: dropped");
        return false;
    };
    if let Err(e) = socket.send_to(&buf[..t.len], t.dest) {
        if e.raw_os_error() == Some(libc::EMSGSIZE) {
            return true;
        }
        let now = Instant::now();
        if last_log.is_none_or(|l| now.duration_since(l) >= Duration::from_secs(1)) {
            *last_log = Some(now);
            debug!(socket = %t.socket, dest = %t.dest, "send failed: {e}");
        }
    }
    false
}
