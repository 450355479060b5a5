//! The privileged parent: opens everything, starts the worker, then only
//! answers its validated requests, runs hooks, and supervises it.
//!
//! Lifecycle: SIGTERM/SIGINT → SIGTERM to the worker (SIGKILL after 5 s),
//! the policy rules removed, `down_script` (tunnel_down), exit 0. If the
//! worker dies, the parent logs how, removes the rules, runs `down_script`
//! and exits non-zero: the service manager restarts the whole daemon
//! (systemd `Restart=on-failure`), which re-opens the TUN and sockets from a
//! clean state (and replaces rules a killed parent could not remove).

use std::future::Future;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use mlvpn_privsep::channel::{self, AsyncChannel};
use mlvpn_privsep::drop;
use mlvpn_privsep::hook_queue::HookLimits;
use mlvpn_privsep::hooks::{self, HookScheduler};
use mlvpn_privsep::msg::{Reply, Request};
use mlvpn_privsep::policy::{self, AnswerLog, Answered};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::signal::unix::Signal as SignalStream;
use tracing::{debug, error, info, warn};

pub use super::daemon_error::DaemonError;
use super::installed_routes::InstalledRoutes;
use super::privileged_ops::Ops;
use super::reload::{self, ReloadError};
use super::setup::WorkerSetup;
use super::{path_socket, resources, rp_filter_check, uplink_check, WORKER_ARG};
use crate::config::Config;
use crate::io::driver::Resources;
use crate::proto::ids::{SocketId, SocketIds};

/// What the parent opened before the worker exists.
struct Opened {
    identity: drop::Identity,
    resources: Resources,
    /// Gave the resources' sockets their ids; gives the next ones.
    socket_ids: SocketIds,
    /// Removed when dropped: on every way out of [`run`].
    routes: InstalledRoutes,
}

/// Runs the daemon: parent here, worker in a new process.
pub fn run(config: Config) -> Result<(), DaemonError> {
    let opened = open(&config)?;
    let (parent_end, worker_end) = channel::pair().map_err(DaemonError::Socketpair)?;
    nix::fcntl::fcntl(
        &worker_end,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .map_err(DaemonError::Socketpair)?;
    let exe = std::env::current_exe().map_err(DaemonError::OwnExecutable)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?;
    rt.block_on(supervise(config, opened, &exe, parent_end, worker_end))
}

/// The privileged set-up: the worker's user and chroot, its descriptors,
/// the routes, and the warnings about the host's uplinks.
fn open(config: &Config) -> Result<Opened, DaemonError> {
    config
        .check_hook_scripts()
        .map_err(|e| DaemonError::HookScripts(e.to_string()))?;
    let identity = drop::lookup(&config.interface.user).map_err(|e| DaemonError::User(e.to_string()))?;
    super::chroot_dir::prepare(&config.interface.chroot)?;
    let mut socket_ids = SocketIds::default();
    let resources = resources::open_resources(config, &mut socket_ids).map_err(DaemonError::Resources)?;
    let routes = InstalledRoutes::install(config).map_err(DaemonError::Routes)?;
    uplink_check::warn_misrouted_paths(config);
    rp_filter_check::warn_strict_rp_filter(config);
    Ok(Opened {
        identity,
        resources,
        socket_ids,
        routes,
    })
}

/// Starts the worker, hands it over, serves it until it exits or a signal
/// stops the daemon, then stops it and cleans up.
async fn supervise(
    config: Config,
    opened: Opened,
    exe: &Path,
    parent_end: OwnedFd,
    worker_end: OwnedFd,
) -> Result<(), DaemonError> {
    // Before the worker exists: a SIGHUP must never kill the daemon.
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(DaemonError::HangupHandler)?;
    let mut worker = tokio::process::Command::new(exe)
        .arg(WORKER_ARG)
        .arg(worker_end.as_raw_fd().to_string())
        .kill_on_drop(true)
        .spawn()
        .map_err(DaemonError::StartWorker)?;
    drop(worker_end);
    let worker_pid = worker.id().map(|p| Pid::from_raw(p as i32));
    info!(pid = ?worker_pid, "worker started");
    let chan = AsyncChannel::new(parent_end).map_err(DaemonError::Channel)?;
    let mut shutdown = std::pin::pin!(super::shutdown_signal());
    let mut buf = channel::buffer();
    let Opened {
        identity,
        resources,
        socket_ids,
        routes,
    } = opened;
    let sockets: Vec<SocketId> = resources.sockets.iter().map(|(id, _)| *id).collect();
    let setup = WorkerSetup::handover(&config, &sockets, identity, resources.offloads).encode();
    let handed_over = hand_over(&chan, &setup, &resources, &mut worker, &mut buf, &mut shutdown).await;
    drop(setup);
    // The parent keeps none of them: the TUN disappears with the worker.
    drop(resources);
    let mut ops = Ops {
        config,
        sockets,
        socket_ids,
        routes,
        hooks: HookScheduler::start(HookLimits::default(), hooks::process_runner()),
    };
    let outcome = match handed_over {
        Ok(true) => {
            ops.submit_tunnel_up();
            serve(&mut ops, &chan, &mut worker, &mut buf, &mut shutdown, &mut hangup).await
        }
        stopped_or_failed => stopped_or_failed.map(|_| ()),
    };
    stop(&mut ops, worker, worker_pid).await;
    if let Err(e) = &outcome {
        error!("{e}");
    }
    info!("stopped");
    outcome
}

/// Sends the worker its settings and descriptors. The hand-over may be
/// megabytes (a fleet of peers): it goes in chunks as fast as the worker
/// reads them, and neither a worker that dies nor a SIGTERM is missed
/// meanwhile. `Ok(false)`: stopped.
async fn hand_over(
    chan: &AsyncChannel,
    setup: &[u8],
    res: &Resources,
    worker: &mut Child,
    buf: &mut [u8],
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> Result<bool, DaemonError> {
    debug!(
        bytes = setup.len(),
        descriptors = 2 + res.sockets.len(),
        "hand-over"
    );
    let mut fds = vec![res.tun.as_fd(), res.control.as_fd()];
    fds.extend(res.sockets.iter().map(|(_, s)| s.as_fd()));
    tokio::select! {
        r = chan.send_bulk(|len| Reply::Handover { len }, setup, &fds) => {
            r.map(|_| true).map_err(DaemonError::Handover)
        }
        st = worker.wait() => Err(worker_exit(chan, buf, st)),
        _ = shutdown => Ok(false),
    }
}

/// Answers the running worker's requests and reloads on SIGHUP, until the
/// worker exits or fails (an error) or SIGTERM/SIGINT (`Ok`).
async fn serve(
    ops: &mut Ops,
    chan: &AsyncChannel,
    worker: &mut Child,
    buf: &mut [u8],
    shutdown: &mut (impl Future<Output = ()> + Unpin),
    hangup: &mut SignalStream,
) -> Result<(), DaemonError> {
    let mut answers = AnswerLog::default();
    loop {
        tokio::select! {
            st = worker.wait() => return Err(worker_exit(chan, buf, st)),
            _ = &mut *shutdown => return Ok(()),
            _ = hangup.recv() => {
                info!("SIGHUP: reloading {}", ops.config.file.display());
                // A reload may be megabytes too: keep watching the worker
                // and SIGTERM while the worker takes it.
                tokio::select! {
                    r = reload(ops, chan) => if let Err(e) = r {
                        error!("reload refused, the running configuration stays: {e}");
                    },
                    st = worker.wait() => return Err(worker_exit(chan, buf, st)),
                    _ = &mut *shutdown => return Ok(()),
                }
            }
            r = chan.recv(buf) => match r {
                Ok((0, fds)) if fds.is_empty() => return Err(DaemonError::ChannelClosed),
                Ok((n, fds)) => {
                    let policy = ops.policy();
                    match policy::answer(chan, &policy, ops, &buf[..n], fds, &mut answers) {
                        Ok(Answered::Done) => {}
                        Ok(Answered::WorkerFailed(f)) => return Err(DaemonError::WorkerFailed(f.to_string())),
                        Err(e) => return Err(DaemonError::Privsep(e)),
                    }
                }
                Err(e) => return Err(DaemonError::Privsep(e)),
            },
        }
    }
}

/// SIGTERM to the worker (SIGKILL after 5 s), then the policy rules go,
/// the down hook runs and the control socket is removed.
async fn stop(ops: &mut Ops, mut worker: Child, worker_pid: Option<Pid>) {
    if let Some(pid) = worker_pid {
        let _ = kill(pid, Signal::SIGTERM);
    }
    if tokio::time::timeout(Duration::from_secs(5), worker.wait())
        .await
        .is_err()
    {
        let _ = worker.kill().await;
    }
    // The worker and its TUN are gone: the policy rules go too, before
    // the down hook runs.
    ops.routes.remove();
    if let Some((script, env)) = ops.tunnel_hook(false) {
        if let Err(e) = hooks::run(&script, &env, ops.config.interface.hook_timeout).await {
            error!("down hook: {e}");
        }
    }
    let _ = std::fs::remove_file(&ops.config.interface.control_socket);
}

/// Why the worker exited: the start-up failure it reported if one is still
/// waiting in the channel (its exit and its report race), else its status.
fn worker_exit(
    chan: &AsyncChannel,
    buf: &mut [u8],
    st: std::io::Result<std::process::ExitStatus>,
) -> DaemonError {
    let status = st.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
    // Bounded: the socket buffer holds few messages; a report comes last.
    for _ in 0..256 {
        match chan.try_recv(buf) {
            Ok(Some((n, _))) if n > 0 => {
                if let Ok(Request::StartupFailed(f)) = Request::decode(&buf[..n]) {
                    return DaemonError::WorkerStartFailed {
                        failure: f.to_string(),
                        status,
                    };
                }
            }
            _ => break,
        }
    }
    DaemonError::WorkerExited { status }
}

/// SIGHUP: re-reads the config file, binds sockets for new or moved paths,
/// tells the worker, adjusts routes, and makes the new config the one in
/// force. Any failure before the worker is told leaves everything as it was.
async fn reload(ops: &mut Ops, chan: &AsyncChannel) -> Result<(), ReloadError> {
    let old = &ops.config;
    let new = Config::load(&old.file).map_err(|e| ReloadError::Load(e.to_string()))?;
    let plan = reload::plan(old, &ops.sockets, new)?;
    for what in &plan.needs_restart {
        warn!("reload: {what} changed; that needs a restart, keeping the running value");
    }
    // Each path's socket: the one it keeps, or a new one with a fresh id.
    let mut sockets = Vec::new();
    let mut fresh = Vec::new();
    for (p, keep) in plan.config.paths.iter().zip(&plan.keep) {
        let id = match keep {
            Some(id) => *id,
            None => {
                let s = path_socket::bind_path(p, plan.config.mode).map_err(ReloadError::Bind)?;
                info!(path = %p.name, local = ?s.local_addr().ok(), "reload: path socket bound");
                let id = ops.socket_ids.fresh();
                fresh.push((id, OwnedFd::from(s)));
                id
            }
        };
        sockets.push(id);
    }
    let fresh_ids: Vec<SocketId> = fresh.iter().map(|(id, _)| *id).collect();
    let msg = WorkerSetup::reload(&plan.config, &sockets, &fresh_ids).encode();
    let fds: Vec<_> = fresh.iter().map(|(_, f)| f.as_fd()).collect();
    chan.send_bulk(|len| Reply::Reload { len }, &msg, &fds)
        .await
        .map_err(ReloadError::TellWorker)?;
    drop(fresh);
    if let Err(e) = ops.routes.update(&plan.config) {
        error!("reload: {e}");
    }
    uplink_check::warn_misrouted_paths(&plan.config);
    rp_filter_check::warn_strict_rp_filter(&plan.config);
    info!("reloaded: {}", reload::describe(old, &plan));
    ops.config = plan.config;
    ops.sockets = sockets;
    Ok(())
}
