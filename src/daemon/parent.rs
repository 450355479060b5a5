//! The privileged parent: opens everything, starts the worker, then only
//! answers its validated requests, runs hooks, and supervises it.
//!
//! Lifecycle: SIGTERM/SIGINT → SIGTERM to the worker (SIGKILL after 5 s),
//! `down_script` (tunnel_down), exit 0. If the worker dies, the parent logs
//! how, runs `down_script` and exits non-zero: the service manager restarts
//! the whole daemon (systemd `Restart=on-failure`), which re-opens the TUN
//! and sockets from a clean state.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mlvpn_privsep::channel::{self, AsyncChannel};
use mlvpn_privsep::msg::{HookEvent, Reply};
use mlvpn_privsep::policy::{self, Policy, Privileged};
use mlvpn_privsep::{drop, hooks};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tracing::{error, info};

use super::setup::WorkerSetup;
use super::WORKER_ARG;
use crate::config::{Config, Mode};
use crate::io::{driver, sockets};

/// The chroot must be a root-owned directory nobody else can write, and
/// empty: the worker must find nothing there.
fn prepare_chroot(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("chroot {}: {e}", dir.display()))?;
    let meta = std::fs::metadata(dir).map_err(|e| format!("chroot {}: {e}", dir.display()))?;
    if meta.uid() != 0 || meta.permissions().mode() & 0o022 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chroot {}: {e}", dir.display()))?;
        if meta.uid() != 0 {
            return Err(format!("chroot {} is not owned by root", dir.display()));
        }
    }
    if std::fs::read_dir(dir)
        .map_err(|e| format!("chroot {}: {e}", dir.display()))?
        .next()
        .is_some()
    {
        return Err(format!("chroot {} is not empty", dir.display()));
    }
    Ok(())
}

/// The privileged operations, bounded by the config.
struct Ops<'a> {
    config: &'a Config,
}

impl Ops<'_> {
    fn env(&self, event: &str) -> Vec<(String, String)> {
        let i = &self.config.interface;
        let addresses: Vec<String> = i.address.iter().map(|a| a.to_string()).collect();
        vec![
            ("MLVPN_EVENT".into(), event.into()),
            ("MLVPN_DEVICE".into(), i.name.clone()),
            ("MLVPN_ADDRESSES".into(), addresses.join(" ")),
            ("MLVPN_MTU".into(), self.config.tun_mtu().to_string()),
            (
                "MLVPN_MODE".into(),
                if self.config.mode == Mode::Client {
                    "client"
                } else {
                    "server"
                }
                .into(),
            ),
        ]
    }

    fn tunnel_hook(&self, up: bool) -> Option<(PathBuf, Vec<(String, String)>)> {
        let i = &self.config.interface;
        let script = if up {
            i.up_script.clone()?
        } else {
            i.down_script.clone()?
        };
        Some((script, self.env(if up { "tunnel_up" } else { "tunnel_down" })))
    }
}

impl Privileged for Ops<'_> {
    fn run_hook(&mut self, event: HookEvent, path: u8) {
        let i = &self.config.interface;
        let (script, name, state) = match event {
            HookEvent::PathUp => (i.up_script.clone(), "path_up", "up"),
            HookEvent::PathDown => (i.down_script.clone(), "path_down", "down"),
        };
        let (Some(script), Some(p)) = (script, self.config.paths.get(usize::from(path))) else {
            return;
        };
        let mut env = self.env(name);
        env.push(("MLVPN_PATH".into(), p.name.clone()));
        env.push(("MLVPN_PATH_STATE".into(), state.into()));
        hooks::spawn(script, env, i.hook_timeout);
    }

    fn rebind(&mut self, path: u8) -> Result<OwnedFd, String> {
        let p = self.config.paths.get(usize::from(path)).ok_or("no such path")?;
        let s = sockets::bind_path(p).map_err(|e| e.to_string())?;
        info!(path = %p.name, "re-bound path socket for the worker");
        Ok(OwnedFd::from(s))
    }
}

/// Runs the daemon: parent here, worker in a new process.
pub fn run(config: Config) -> Result<(), String> {
    let identity = drop::lookup(&config.interface.user).map_err(|e| format!("interface.user: {e}"))?;
    prepare_chroot(&config.interface.chroot)?;
    let res = driver::open_resources(&config).map_err(|e| e.to_string())?;
    let (parent_end, worker_end) = channel::pair().map_err(|e| format!("socketpair: {e}"))?;
    nix::fcntl::fcntl(
        &worker_end,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .map_err(|e| format!("socketpair: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async move {
        let mut worker = tokio::process::Command::new(&exe)
            .arg(WORKER_ARG)
            .arg(worker_end.as_raw_fd().to_string())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start worker: {e}"))?;
        drop(worker_end);
        let worker_pid = worker.id().map(|p| Pid::from_raw(p as i32));
        info!(pid = ?worker_pid, "worker started");
        let chan = AsyncChannel::new(parent_end).map_err(|e| format!("channel: {e}"))?;
        {
            let setup = WorkerSetup::new(&config, identity).encode();
            let mut fds = vec![res.tun.as_fd(), res.control.as_fd()];
            fds.extend(res.sockets.iter().map(|s| s.as_fd()));
            let msg = zeroize::Zeroizing::new(Reply::Handover(setup.to_vec()).encode());
            chan.send(&msg, &fds).await.map_err(|e| format!("hand-over: {e}"))?;
        }
        // The parent keeps none of them: the TUN disappears with the worker.
        drop(res);
        let mut ops = Ops { config: &config };
        if let Some((script, env)) = ops.tunnel_hook(true) {
            hooks::spawn(script, env, config.interface.hook_timeout);
        }
        let policy = Policy {
            paths: if config.mode == Mode::Client { config.paths.len() } else { 0 },
            up_script: config.interface.up_script.is_some(),
            down_script: config.interface.down_script.is_some(),
        };
        let outcome = tokio::select! {
            st = worker.wait() => Err(format!("worker exited unexpectedly ({})", st.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()))),
            _ = super::shutdown_signal() => Ok(()),
            r = policy::serve(&chan, &policy, &mut ops) => Err(match r {
                Ok(()) => "worker closed the privsep channel".to_string(),
                Err(e) => format!("privsep channel: {e}"),
            }),
        };
        if let Some(pid) = worker_pid {
            let _ = kill(pid, Signal::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(5), worker.wait()).await.is_err() {
            let _ = worker.kill().await;
        }
        if let Some((script, env)) = ops.tunnel_hook(false) {
            if let Err(e) = hooks::run(&script, &env, config.interface.hook_timeout).await {
                error!("down hook: {e}");
            }
        }
        let _ = std::fs::remove_file(&config.interface.control_socket);
        if let Err(e) = &outcome {
            error!("{e}");
        }
        info!("stopped");
        outcome
    })
}
