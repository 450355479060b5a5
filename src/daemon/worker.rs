//! The unprivileged worker: receives its descriptors and settings from the
//! parent, drops every privilege, and only then runs the tunnel.

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mlvpn_privsep::channel::{self, AsyncChannel};
use mlvpn_privsep::drop::drop_privileges;
use mlvpn_privsep::msg::{HookEvent, Reply, Request};
use mlvpn_privsep::startup::{StartupFailure, StartupStep};
use tokio::sync::mpsc;
use tracing::{info, warn};
use zeroize::Zeroize;

use super::setup::{StartOnly, WorkerSetup};
pub use super::worker_error::WorkerError;
use crate::io::driver::{self, Reload, Resources};

/// A start-up step that failed: what the parent is told, and the worker's
/// own log line.
struct StartError {
    failure: StartupFailure,
    message: String,
}

impl StartError {
    fn new(step: StartupStep, errno: u32, message: impl std::fmt::Display) -> StartError {
        StartError {
            failure: StartupFailure { step, errno },
            message: format!("worker: {message}"),
        }
    }

    fn io(step: StartupStep, e: &std::io::Error) -> StartError {
        StartError {
            failure: StartupFailure::from_io(step, e),
            message: format!("worker: {step}: {e}"),
        }
    }
}

/// Tells the parent which start-up step failed (best effort: the worker
/// exits next either way), and returns the worker's own error.
fn report(chan: BorrowedFd<'_>, e: StartError) -> WorkerError {
    let _ = channel::send(chan, &Request::StartupFailed(e.failure).encode(), &[]);
    WorkerError::Startup(e.message)
}

/// Runs the worker on the channel descriptor the parent passed as `fd_arg`.
pub fn run(fd_arg: &str) -> Result<(), WorkerError> {
    let raw: RawFd = fd_arg
        .parse()
        .ok()
        .filter(|fd| *fd > 2)
        .ok_or_else(|| WorkerError::BadChannelDescriptor(fd_arg.to_string()))?;
    // SAFETY: the parent created this descriptor for us and named it on our
    // command line; nothing else in this fresh process owns it.
    let chan = unsafe { OwnedFd::from_raw_fd(raw) };
    nix::fcntl::fcntl(
        &chan,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(WorkerError::ChannelDescriptor)?;
    let (setup, start, res) = match receive_and_drop(&chan) {
        Ok(r) => r,
        Err(e) => return Err(report(chan.as_fd(), e)),
    };
    let tunnel_config = match setup.tunnel_config() {
        Ok(c) => c,
        Err(e) => return Err(report(chan.as_fd(), StartError::new(StartupStep::Settings, 0, e))),
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return Err(report(chan.as_fd(), StartError::io(StartupStep::Runtime, &e))),
    };
    rt.block_on(async move {
        let chan = match AsyncChannel::new(chan) {
            Ok(c) => Arc::new(c),
            Err(e) => return Err(WorkerError::Channel(e)),
        };
        // Until the event loop runs, a failure is reported to the parent.
        let fail = |e: StartError| report(chan.as_fd(), e);
        // SIGHUP is the parent's (reload); here it must not kill us.
        let _hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| fail(StartError::io(StartupStep::Runtime, &e)))?;
        let (hook_tx, hook_rx) = mpsc::unbounded_channel();
        let hook_flags = Arc::new(HookFlags::default());
        hook_flags.set(setup.up_script, setup.down_script);
        let (reload_tx, reload_rx) = mpsc::unbounded_channel();
        let signalled = super::shutdown_signal();
        // Last step before the event loop reads its first datagram.
        let sandbox = crate::platform::restrict_worker()
            .map_err(|e| fail(StartError::new(StartupStep::Seccomp, 0, e.to_string())))?;
        if let Some(what) = sandbox {
            info!("worker: {what} installed");
        }
        tokio::spawn(forward_hooks(chan.clone(), hook_rx, hook_flags.clone()));
        let parent_gone = watch_parent(chan.clone(), reload_tx, hook_flags);
        let shutdown = async {
            tokio::select! {
                _ = signalled => {}
                _ = parent_gone => warn!("parent closed the channel: stopping"),
            }
        };
        driver::run(
            tunnel_config,
            &start.interface,
            res,
            shutdown,
            Some(hook_tx),
            reload_rx,
        )
        .await
        .map_err(WorkerError::Tunnel)
    })
}

/// Receives the hand-over and drops every privilege: the worker's start-up
/// up to the first network byte.
fn receive_and_drop(chan: &OwnedFd) -> Result<(WorkerSetup, StartOnly, Resources), StartError> {
    let handover = |m: String| StartError::new(StartupStep::Handover, 0, format!("hand-over: {m}"));
    let mut buf = channel::buffer();
    let (n, fds) = channel::recv(chan.as_fd(), &mut buf)
        .map_err(|e| StartError::io(StartupStep::Handover, &e.into()))?;
    let Ok(Reply::Handover { len }) = Reply::decode(&buf[..n]) else {
        return Err(handover("expected the hand-over message".into()));
    };
    // Wiped on drop (it holds the private key); recv_chunks wipes `buf`.
    let json = channel::recv_chunks(chan.as_fd(), len, &mut buf)
        .map_err(|e| StartError::io(StartupStep::Handover, &e))?;
    let setup = WorkerSetup::decode_handover(&json).map_err(|e| handover(e.to_string()));
    drop(json);
    let (setup, start) = setup?;
    if fds.len() != 2 + setup.sockets.len() {
        return Err(handover(format!(
            "carried {} descriptors, expected {}",
            fds.len(),
            2 + setup.sockets.len()
        )));
    }
    let mut fds = fds.into_iter();
    let tun = fds.next().expect("counted");
    let control = std::os::unix::net::UnixListener::from(fds.next().expect("counted"));
    // The sockets' ids travel beside their descriptors, in the same order.
    let sockets = setup
        .sockets
        .iter()
        .copied()
        .zip(fds.map(std::net::UdpSocket::from))
        .collect();
    let res = Resources {
        tun,
        offloads: start.offloads,
        control,
        sockets,
    };
    // Before the first network byte: chroot, user, no_new_privs, no caps.
    drop_privileges(start.identity(), Path::new(&start.chroot)).map_err(|e| StartError {
        failure: e.startup_failure(),
        message: format!("worker: {e}"),
    })?;
    info!(uid = start.uid, gid = start.gid, chroot = %start.chroot, "worker: privileges dropped");
    Ok((setup, start, res))
}

/// Which hooks the parent has (a reload may change them).
#[derive(Default)]
struct HookFlags {
    up: AtomicBool,
    down: AtomicBool,
}

impl HookFlags {
    fn set(&self, up: bool, down: bool) {
        self.up.store(up, Ordering::Relaxed);
        self.down.store(down, Ordering::Relaxed);
    }
}

/// Sends hook requests for path events the parent has hooks for.
async fn forward_hooks(
    chan: Arc<AsyncChannel>,
    mut rx: mpsc::UnboundedReceiver<(String, bool)>,
    flags: Arc<HookFlags>,
) {
    while let Some((path, is_up)) = rx.recv().await {
        let wanted = if is_up { &flags.up } else { &flags.down };
        if !wanted.load(Ordering::Relaxed) {
            continue;
        }
        let event = if is_up {
            HookEvent::PathUp
        } else {
            HookEvent::PathDown
        };
        if chan
            .send(&Request::RunHook { event, path }.encode(), &[])
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Reads what the parent sends: reloads (passed to the event loop) and
/// replies (refusals logged). Completes when the parent is gone.
async fn watch_parent(
    chan: Arc<AsyncChannel>,
    reloads: mpsc::UnboundedSender<Reload>,
    hooks: Arc<HookFlags>,
) {
    let mut buf = channel::buffer();
    loop {
        match chan.recv(&mut buf).await {
            Ok((0, fds)) if fds.is_empty() => return,
            Ok((n, fds)) => match Reply::decode(&buf[..n]) {
                Ok(Reply::Refused(why)) => warn!("parent refused a request: {why}"),
                Ok(Reply::Reload { len }) => {
                    let json = match chan.recv_chunks(len, &mut buf).await {
                        Ok(j) => j,
                        Err(e) => {
                            warn!("reload: receiving the settings: {e}; ignored");
                            continue;
                        }
                    };
                    let reload = WorkerSetup::decode_reload(&json).and_then(|r| Ok((r.reconfig()?, r)));
                    // `json` wipes itself; the last chunk (with the private
                    // key, maybe) is still in `buf`. The slice, not the
                    // Vec: zeroizing a Vec also empties it, and the next
                    // message would not fit.
                    buf.as_mut_slice().zeroize();
                    match reload {
                        Ok((_, r)) if r.sockets.len() != fds.len() => warn!(
                            "reload: carried {} descriptors, expected {}; ignored",
                            fds.len(),
                            r.sockets.len()
                        ),
                        Ok((reconfig, r)) => {
                            hooks.set(r.up_script, r.down_script);
                            let _ = reloads.send(Reload {
                                reconfig,
                                in_use: r.paths.iter().map(|p| p.socket).collect(),
                                // Their ids travel beside them, in the same order.
                                fresh: r.sockets.iter().copied().zip(fds).collect(),
                            });
                        }
                        Err(e) => warn!("reload: {e}"),
                    }
                }
                _ => {}
            },
            Err(e) => {
                warn!("privsep channel: {e}");
                return;
            }
        }
    }
}
