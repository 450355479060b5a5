//! The event loop: one tokio task owns the [`Tunnel`] and every descriptor.
//!
//! A single task (rather than a task per socket sharing a lock) keeps the
//! core single-threaded and the data path free of channel hops: a readable
//! TUN or socket is drained in a batch straight into the core, with buffers
//! allocated once at start.

use std::collections::{BTreeMap, HashSet};
use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::OwnedFd;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::control::{self, ControlRequest};
use super::data_path_status::DataPathStatus;
use super::kernel_offloads::KernelOffloads;
use super::paths_to_tun::PathsToTun;
use super::tun_device::TunDevice;
use super::tun_to_paths::TunToPaths;
use crate::proto::clock::Clock;
use crate::proto::tunnel::{Event, Reconfig, Transmit, OVERHEAD};
use crate::proto::{SocketId, Tunnel, TunnelConfig};

/// TUN reads per readiness event before other sources get a turn (each
/// may be a 64 KB super-packet).
const TUN_READS: usize = 32;
/// Drops are summed up in the log at most this often.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Largest datagram or TUN packet handled.
const BUF_LEN: usize = 65536;

/// Everything the loop owns.
struct Driver {
    tunnel: Tunnel,
    tun: TunDevice,
    /// The path sockets, by the id the parent gave each (the core names
    /// them so in a [`Transmit`]).
    sockets: BTreeMap<SocketId, UdpSocket>,
    /// Control messages the core sends (handshakes, keepalives, feedback).
    out: Vec<u8>,
    /// TUN reads out to the paths.
    outbound: TunToPaths,
    /// Datagrams in to the TUN.
    inbound: PathsToTun,
    /// Rate limit for send-error logs.
    last_send_error_log: Option<Instant>,
    hooks: Option<HookSink>,
    /// What the parent opened the TUN and sockets with.
    offloads: KernelOffloads,
    /// Drop counters at the last drop summary, and when it was due.
    drops_logged: (crate::proto::stats::Drops, Instant),
}

/// A reloaded configuration for the running loop (SIGHUP, see
/// `daemon::reload`).
pub struct Reload {
    /// The core's new settings; `closed_sockets` is filled in here.
    pub reconfig: Reconfig,
    /// The sockets the new config's paths use: running ones they keep and
    /// `fresh` ones. The others are closed.
    pub in_use: Vec<SocketId>,
    /// New sockets, with the ids the parent gave them.
    pub fresh: Vec<(SocketId, OwnedFd)>,
}

fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Descriptors the tunnel needs; opened by the privileged parent
/// ([`crate::daemon::resources::open_resources`]) and handed to the worker.
pub struct Resources {
    pub tun: OwnedFd,
    /// What the parent opened the TUN device and sockets with.
    pub offloads: KernelOffloads,
    pub control: std::os::unix::net::UnixListener,
    /// One per configured path, in config order, with the id the parent
    /// gave it.
    pub sockets: Vec<(SocketId, std::net::UdpSocket)>,
}

/// Hook requests the event loop sends to the privileged parent (client path
/// name, up or down).
pub type HookSink = mpsc::UnboundedSender<(String, bool)>;

/// Runs the tunnel on `res` until `shutdown` completes.
pub async fn run(
    tunnel_config: TunnelConfig,
    interface: &str,
    res: Resources,
    shutdown: impl Future<Output = ()>,
    hooks: Option<HookSink>,
    reloads: mpsc::UnboundedReceiver<Reload>,
) -> io::Result<()> {
    let offloads = res.offloads;
    info!(?offloads, "data path offloads");
    let tun = TunDevice::from_fd(res.tun, interface)?;
    let socks = res
        .sockets
        .into_iter()
        .map(|(id, s)| {
            s.set_nonblocking(true)?;
            Ok((id, UdpSocket::from_std(s)?))
        })
        .collect::<io::Result<BTreeMap<_, _>>>()?;
    res.control.set_nonblocking(true)?;
    let listener = tokio::net::UnixListener::from_std(res.control)?;
    let (ctl_tx, ctl_rx) = mpsc::channel(16);
    let control_task = tokio::spawn(control::serve(listener, ctl_tx));
    let now = Instant::now();
    let tunnel = Tunnel::new(tunnel_config, Clock::new(now, unix_now_ns()), now);
    info!(interface, "tunnel running");
    let mut driver = Driver {
        tunnel,
        tun,
        sockets: socks,
        out: vec![0; BUF_LEN + OVERHEAD],
        outbound: TunToPaths::new(offloads.tun.vnet_hdr, offloads.udp_gso),
        inbound: PathsToTun::new(offloads.tun),
        last_send_error_log: None,
        hooks,
        offloads,
        drops_logged: (Default::default(), Instant::now()),
    };
    let result = driver.event_loop(shutdown, ctl_rx, reloads).await;
    control_task.abort();
    info!("tunnel stopped");
    result
}

impl Driver {
    async fn event_loop(
        &mut self,
        shutdown: impl Future<Output = ()>,
        mut ctl_rx: mpsc::Receiver<ControlRequest>,
        mut reloads: mpsc::UnboundedReceiver<Reload>,
    ) -> io::Result<()> {
        let mut shutdown = pin!(shutdown);
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        let mut sleep = pin!(sleep);
        let mut rotate = 0usize;
        loop {
            self.tunnel.handle_timeout(Instant::now());
            self.deliver_released();
            self.flush_control().await;
            self.log_events();
            self.log_drops();
            let deadline = self
                .tunnel
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            sleep.as_mut().reset(deadline.into());
            let n_sockets = self.sockets.len();
            tokio::select! {
                biased;
                _ = &mut shutdown => return Ok(()),
                guard = self.tun.readable() => {
                    let mut guard = guard?;
                    for _ in 0..TUN_READS {
                        let n = match TunDevice::try_recv(&mut guard, self.outbound.read_buffer()) {
                            Some(Ok(n)) => n,
                            Some(Err(e)) => return Err(tun_read_error(e)),
                            None => break,
                        };
                        self.outbound.send_read(&mut self.tunnel, &self.sockets, n).await;
                    }
                    self.outbound.flush(&mut self.tunnel, &self.sockets).await;
                }
                id = poll_fn(|cx| {
                    // Starting one further each time: no socket starves the others.
                    let start = rotate % n_sockets.max(1);
                    for (id, s) in self.sockets.iter().cycle().skip(start).take(n_sockets) {
                        if s.poll_recv_ready(cx).is_ready() {
                            return Poll::Ready(*id);
                        }
                    }
                    Poll::Pending
                }) => {
                    rotate = rotate.wrapping_add(1);
                    self.drain_socket(id);
                    self.answers_first().await?;
                }
                _ = &mut sleep => {}
                Some(req) = ctl_rx.recv() => self.answer(req),
                Some(r) = reloads.recv() => self.reload(r),
            }
        }
    }

    /// Sends what the local stack answered to the packets just written to
    /// the TUN (an echo reply, TCP ACKs) before the control frames those
    /// packets made due: the peer then gets the answer first, and the
    /// reply does not wait for the next readiness round.
    async fn answers_first(&mut self) -> io::Result<()> {
        let mut read = false;
        for _ in 0..TUN_READS {
            let n = match self.tun.read_now(self.outbound.read_buffer()) {
                Some(Ok(n)) => n,
                Some(Err(e)) => return Err(tun_read_error(e)),
                None => break,
            };
            read = true;
            self.outbound.send_read(&mut self.tunnel, &self.sockets, n).await;
        }
        if read {
            self.outbound.flush(&mut self.tunnel, &self.sockets).await;
        }
        Ok(())
    }

    /// Reads up to a batch of datagrams from socket `id` into the core, and
    /// writes what they and the resequencing queue release to the TUN.
    fn drain_socket(&mut self, id: SocketId) {
        if let Some(socket) = self.sockets.get(&id) {
            self.inbound.drain(&mut self.tunnel, socket, id, &self.tun);
        }
    }

    fn data_path_status(&self) -> DataPathStatus {
        let trains = &self.outbound.trains;
        DataPathStatus {
            tun_vnet_hdr: self.offloads.tun.vnet_hdr,
            tun_tso: self.offloads.tun.tso,
            tun_uso: self.offloads.tun.uso,
            udp_gso: trains.gso(),
            udp_gro: self.offloads.udp_gro,
            tun_super_packets_read: self.outbound.super_packets,
            tun_super_packets_written: self.inbound.super_packets,
            udp_trains_sent: trains.trains_sent,
            udp_datagrams_in_trains: trains.datagrams_in_trains,
            tun_reads_malformed: self.outbound.malformed,
        }
    }

    /// Writes the packets the resequencing queue released.
    fn deliver_released(&mut self) {
        self.inbound.deliver_released(&mut self.tunnel, &self.tun);
    }

    async fn flush_control(&mut self) {
        let now = Instant::now();
        while let Some(t) = self.tunnel.poll_transmit(&mut self.out, now) {
            if send(&self.sockets, &self.out, t, &mut self.last_send_error_log).await {
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
    fn log_drops(&mut self) {
        let now = Instant::now();
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

    /// Applies a reload: new sockets are added, those no path uses any more
    /// closed, and the core told which closed (every other socket keeps
    /// its id).
    fn reload(&mut self, r: Reload) {
        let mut fresh_ids = HashSet::new();
        let sane = r
            .fresh
            .iter()
            .all(|(id, _)| !self.sockets.contains_key(id) && fresh_ids.insert(*id))
            && r.in_use
                .iter()
                .all(|id| self.sockets.contains_key(id) || fresh_ids.contains(id));
        if !sane {
            warn!("reload: the parent's socket plan does not match the running sockets; ignored");
            return;
        }
        let mut fresh = Vec::new();
        for (id, fd) in r.fresh {
            let s = std::net::UdpSocket::from(fd);
            match s.set_nonblocking(true).and_then(|_| UdpSocket::from_std(s)) {
                Ok(s) => fresh.push((id, s)),
                Err(e) => {
                    warn!("reload: new socket unusable ({e}); ignored");
                    return;
                }
            }
        }
        let in_use: HashSet<SocketId> = r.in_use.iter().copied().collect();
        let closed: Vec<SocketId> = self
            .sockets
            .keys()
            .filter(|id| !in_use.contains(id))
            .copied()
            .collect();
        for id in &closed {
            self.sockets.remove(id);
        }
        self.sockets.extend(fresh);
        let mut reconfig = r.reconfig;
        reconfig.closed_sockets = closed;
        let report = self.tunnel.reconfigure(reconfig, Instant::now());
        info!(
            sockets = self.sockets.len(),
            added = ?report.paths_added,
            removed = ?report.paths_removed,
            replaced = ?report.paths_replaced,
            updated = ?report.paths_updated,
            peers_added = report.peers_added,
            peers_removed = report.peers_removed,
            key_changed = report.key_changed,
            "reload applied"
        );
        if report.key_changed {
            info!("private key changed: applied; every path handshakes with the new key");
        }
    }

    fn answer(&mut self, req: ControlRequest) {
        let text = match req.command.as_str() {
            "status" => {
                let status = self.tunnel.status(&self.tun.name, Instant::now());
                crate::status_json::with_data_path(&status, &self.data_path_status())
            }
            _ => "{\"error\":\"unknown command\"}".to_string(),
        };
        let _ = req.reply.send(text);
    }
}

fn tun_read_error(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("reading TUN: {e}"))
}

/// Sends a datagram; failures (a path whose interface is down, say) are
/// normal for a multipath tunnel: logged at most once a second, not fatal.
/// Sends a datagram; returns true when it was too big for the path
/// (EMSGSIZE: the interface's or a learned path MTU), which the core is told.
/// Other errors (an interface down) are expected and only logged.
async fn send(
    sockets: &BTreeMap<SocketId, UdpSocket>,
    buf: &[u8],
    t: Transmit,
    last_log: &mut Option<Instant>,
) -> bool {
    // The core names only sockets it was given and not told are closed.
    let Some(socket) = sockets.get(&t.socket) else {
        debug!(socket = %t.socket, "send on a closed socket: dropped");
        return false;
    };
    if let Err(e) = socket.send_to(&buf[..t.len], t.dest).await {
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
