//! The unprivileged worker: receives its descriptors and settings from the
//! parent, drops every privilege, and only then runs the tunnel.

use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mlvpn_privsep::channel::{self, AsyncChannel};
use mlvpn_privsep::drop::drop_privileges;
use mlvpn_privsep::msg::{HookEvent, Reply, Request};
use tokio::sync::mpsc;
use tracing::{info, warn};
use zeroize::Zeroize;

use super::setup::{ReloadSetup, WorkerSetup};
use crate::io::driver::{self, Reload, Resources};

/// Runs the worker on the channel descriptor the parent passed as `fd_arg`.
pub fn run(fd_arg: &str) -> Result<(), String> {
    let raw: RawFd = fd_arg
        .parse()
        .ok()
        .filter(|fd| *fd > 2)
        .ok_or_else(|| format!("worker: bad channel descriptor {fd_arg:?}"))?;
    // SAFETY: the parent created this descriptor for us and named it on our
    // command line; nothing else in this fresh process owns it.
    let chan = unsafe { OwnedFd::from_raw_fd(raw) };
    nix::fcntl::fcntl(
        &chan,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| format!("worker: {e}"))?;

    let mut buf = channel::buffer();
    let (n, fds) = channel::recv(chan.as_fd(), &mut buf).map_err(|e| format!("worker: hand-over: {e}"))?;
    let reply = Reply::decode(&buf[..n]);
    buf.zeroize();
    let Ok(Reply::Handover(mut json)) = reply else {
        return Err("worker: expected the hand-over message".into());
    };
    let setup = WorkerSetup::decode(&json);
    json.zeroize();
    let setup = setup?;
    if fds.len() != 2 + setup.paths.len() {
        return Err(format!(
            "worker: hand-over carried {} descriptors, expected {}",
            fds.len(),
            2 + setup.paths.len()
        ));
    }
    let mut fds = fds.into_iter();
    let tun = fds.next().expect("counted");
    let control = std::os::unix::net::UnixListener::from(fds.next().expect("counted"));
    let sockets = fds.map(std::net::UdpSocket::from).collect();
    let res = Resources {
        tun,
        control,
        sockets,
    };

    // Before the first network byte: chroot, user, no_new_privs, no caps.
    drop_privileges(setup.identity(), Path::new(&setup.chroot)).map_err(|e| format!("worker: {e}"))?;
    info!(uid = setup.uid, gid = setup.gid, chroot = %setup.chroot, "worker: privileges dropped");

    let tunnel_config = setup.tunnel_config()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("worker: runtime: {e}"))?;
    rt.block_on(async move {
        let chan = Arc::new(AsyncChannel::new(chan).map_err(|e| format!("worker: channel: {e}"))?);
        // SIGHUP is the parent's (reload); here it must not kill us.
        let _hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| format!("worker: SIGHUP handler: {e}"))?;
        let (hook_tx, hook_rx) = mpsc::unbounded_channel();
        let hook_flags = Arc::new(HookFlags::default());
        hook_flags.set(setup.up_script, setup.down_script);
        tokio::spawn(forward_hooks(chan.clone(), hook_rx, hook_flags.clone()));
        let (reload_tx, reload_rx) = mpsc::unbounded_channel();
        let parent_gone = watch_parent(chan.clone(), reload_tx, hook_flags);
        let signalled = super::shutdown_signal();
        let shutdown = async {
            tokio::select! {
                _ = signalled => {}
                _ = parent_gone => warn!("parent closed the channel: stopping"),
            }
        };
        // Last step before the event loop reads its first datagram.
        #[cfg(target_os = "linux")]
        {
            mlvpn_privsep::seccomp::restrict_worker().map_err(|e| format!("worker: {e}"))?;
            info!("worker: seccomp filter installed");
        }
        driver::run(
            tunnel_config,
            &setup.interface,
            res,
            shutdown,
            Some(hook_tx),
            reload_rx,
        )
        .await
        .map_err(|e| format!("worker: {e}"))
    })
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
    mut rx: mpsc::UnboundedReceiver<(u8, bool)>,
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
                Ok(Reply::Reload(mut json)) => {
                    let reload = ReloadSetup::decode(&json).and_then(|r| Ok((r.reconfig()?, r)));
                    json.zeroize();
                    // The slice, not the Vec: zeroizing a Vec also empties
                    // it, and the next message would not fit.
                    buf[..n].zeroize();
                    match reload {
                        Ok((reconfig, r)) => {
                            hooks.set(r.up_script, r.down_script);
                            let _ = reloads.send(Reload {
                                reconfig,
                                keep: r.keep.clone(),
                                fresh: fds,
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
