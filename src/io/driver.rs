//! The worker's data path and its control: two threads move packets
//! ([`super::data_threads`]: one sends, one receives and runs the core's
//! timers, sharing the core behind a lock), and this tokio task answers
//! the control socket, applies reloads, forwards hook requests and stops
//! the threads.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::pin::pin;
use std::sync::Arc;
use std::thread;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::control::{self, ControlRequest};
use super::data_path_status::DataPathStatus;
use super::data_threads::{receive_loop, send_loop, Shared};
use super::kernel_offloads::KernelOffloads;
pub use super::shared_core::HookSink;
use super::shared_core::{lock, Core};
use super::tun_device::TunDevice;
use super::tun_to_paths::TunToPaths;
use super::udp_trains::SocketMap;
use crate::proto::clock::Clock;
use crate::proto::tunnel::Reconfig;
use crate::proto::{SocketId, Tunnel, TunnelConfig};

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

/// Runs the tunnel on `res` until `shutdown` completes (or a data thread
/// fails: its error is returned).
pub async fn run(
    tunnel_config: TunnelConfig,
    interface: &str,
    res: Resources,
    shutdown: impl Future<Output = ()>,
    hooks: Option<HookSink>,
    mut reloads: mpsc::UnboundedReceiver<Reload>,
) -> io::Result<()> {
    let offloads = res.offloads;
    info!(?offloads, "data path offloads");
    let tun = TunDevice::from_fd(res.tun, interface)?;
    let sockets = res
        .sockets
        .into_iter()
        .map(|(id, s)| {
            s.set_nonblocking(true)?;
            Ok((id, Arc::new(s)))
        })
        .collect::<io::Result<SocketMap>>()?;
    res.control.set_nonblocking(true)?;
    let listener = tokio::net::UnixListener::from_std(res.control)?;
    let (ctl_tx, mut ctl_rx) = mpsc::channel(16);
    let control_task = tokio::spawn(control::serve(listener, ctl_tx));
    let now = Instant::now();
    let tunnel = Tunnel::new(tunnel_config, Clock::new(now, unix_now_ns()), now);
    let core = Core::new(tunnel, sockets, hooks);
    let outbound = TunToPaths::new(offloads.tun.vnet_hdr, offloads.udp_gso);
    let shared = Arc::new(Shared::new(core, outbound, tun, offloads)?);
    let (failed_tx, mut failed) = mpsc::unbounded_channel();
    let threads = [
        ("mlvpn-send", send_loop as fn(&Shared) -> io::Result<()>),
        ("mlvpn-receive", receive_loop),
    ]
    .into_iter()
    .map(|(name, body)| spawn_data_thread(name, body, &shared, failed_tx.clone()))
    .collect::<io::Result<Vec<_>>>();
    let threads = match threads {
        Ok(t) => t,
        Err(e) => {
            shared.stop();
            return Err(io::Error::new(
                e.kind(),
                format!("starting the data threads: {e}"),
            ));
        }
    };
    info!(interface, "tunnel running");
    let mut shutdown = pin!(shutdown);
    let result = loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break Ok(()),
            Some(e) = failed.recv() => break Err(e),
            Some(req) = ctl_rx.recv() => answer(&shared, req),
            Some(r) = reloads.recv() => reload(&shared, r),
        }
    };
    shared.stop();
    for t in threads {
        let _ = t.join();
    }
    control_task.abort();
    info!("tunnel stopped");
    result
}

/// Starts a data thread; its error, or its panic, ends up on `failed`.
fn spawn_data_thread(
    name: &str,
    body: fn(&Shared) -> io::Result<()>,
    shared: &Arc<Shared>,
    failed: mpsc::UnboundedSender<io::Error>,
) -> io::Result<thread::JoinHandle<()>> {
    let shared = shared.clone();
    let who = name.to_string();
    thread::Builder::new().name(name.to_string()).spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&shared)));
        let err = match r {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e,
            Err(_) => io::Error::other(format!("{who} thread panicked")),
        };
        // The other thread stops too; the control side reports the error.
        shared.stop();
        let _ = failed.send(err);
    })
}

fn data_path_status(shared: &Shared) -> DataPathStatus {
    let o = shared.offloads;
    let outbound = shared.outbound();
    let trains = &outbound.trains;
    DataPathStatus {
        tun_vnet_hdr: o.tun.vnet_hdr,
        tun_tso: o.tun.tso,
        tun_uso: o.tun.uso,
        udp_gso: trains.gso(),
        udp_gro: o.udp_gro,
        tun_super_packets_read: outbound.super_packets,
        tun_super_packets_written: shared
            .super_packets_written
            .load(std::sync::atomic::Ordering::Relaxed),
        udp_trains_sent: trains.trains_sent,
        udp_datagrams_in_trains: trains.datagrams_in_trains,
        tun_reads_malformed: outbound.malformed,
    }
}

fn answer(shared: &Shared, req: ControlRequest) {
    let text = match req.command.as_str() {
        "status" => {
            // Outbound first, then the core: the data threads' lock order.
            let data_path = data_path_status(shared);
            let status = lock(&shared.core).tunnel.status(&shared.tun.name, Instant::now());
            crate::status_json::with_data_path(&status, &data_path)
        }
        _ => "{\"error\":\"unknown command\"}".to_string(),
    };
    let _ = req.reply.send(text);
}

/// Applies a reload: new sockets are added, those no path uses any more
/// closed, and the core told which closed (every other socket keeps its
/// id). The receiving thread is woken to wait on the new set.
fn reload(shared: &Shared, r: Reload) {
    let mut core = lock(&shared.core);
    let running = core.sockets.clone();
    let mut fresh_ids = HashSet::new();
    let sane = r
        .fresh
        .iter()
        .all(|(id, _)| !running.contains_key(id) && fresh_ids.insert(*id))
        && r.in_use
            .iter()
            .all(|id| running.contains_key(id) || fresh_ids.contains(id));
    if !sane {
        warn!("reload: the parent's socket plan does not match the running sockets; ignored");
        return;
    }
    let mut sockets: BTreeMap<SocketId, _> = BTreeMap::new();
    for (id, fd) in r.fresh {
        let s = std::net::UdpSocket::from(fd);
        if let Err(e) = s.set_nonblocking(true) {
            warn!("reload: new socket unusable ({e}); ignored");
            return;
        }
        sockets.insert(id, Arc::new(s));
    }
    let in_use: HashSet<SocketId> = r.in_use.iter().copied().collect();
    let closed: Vec<SocketId> = running
        .keys()
        .filter(|id| !in_use.contains(id))
        .copied()
        .collect();
    for (id, s) in running.iter() {
        if in_use.contains(id) {
            sockets.insert(*id, s.clone());
        }
    }
    let count = sockets.len();
    core.sockets = Arc::new(sockets);
    let mut reconfig = r.reconfig;
    reconfig.closed_sockets = closed;
    let report = core.tunnel.reconfigure(reconfig, Instant::now());
    drop(core);
    shared.poke_receiver();
    info!(
        sockets = count,
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
