//! What the parent does for the worker: the privileged operations the
//! worker may ask for (hooks, re-binding a path's socket), bounded by the
//! config in force, and the hooks' environment.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use mlvpn_privsep::hook_queue::HookKey;
use mlvpn_privsep::hooks::{HookJob, HookScheduler};
use mlvpn_privsep::msg::HookEvent;
use mlvpn_privsep::policy::{Policy, Privileged};
use tracing::info;

use super::installed_routes::InstalledRoutes;
use super::path_socket;
use crate::config::{Config, Mode};
use crate::proto::ids::{SocketId, SocketIds};

/// The privileged operations, bounded by the config (replaced on reload),
/// and the routes installed for it.
pub(super) struct Ops {
    pub(super) config: Config,
    /// The socket of each path of `config` (in order), by the id the worker
    /// knows it by.
    pub(super) sockets: Vec<SocketId>,
    /// Hands out the ids of the sockets bound from now on.
    pub(super) socket_ids: SocketIds,
    pub(super) routes: InstalledRoutes,
    /// Hooks run in the background within fixed limits.
    pub(super) hooks: HookScheduler,
}

impl Ops {
    pub(super) fn policy(&self) -> Policy {
        Policy {
            paths: if self.config.mode == Mode::Client {
                self.config.paths.iter().map(|p| p.name.clone()).collect()
            } else {
                Vec::new()
            },
            up_script: self.config.interface.up_script.is_some(),
            down_script: self.config.interface.down_script.is_some(),
        }
    }

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

    pub(super) fn tunnel_hook(&self, up: bool) -> Option<(PathBuf, Vec<(String, String)>)> {
        let i = &self.config.interface;
        let script = if up {
            i.up_script.clone()?
        } else {
            i.down_script.clone()?
        };
        Some((script, self.env(if up { "tunnel_up" } else { "tunnel_down" })))
    }

    /// Starts the up hook in the background (the tunnel runs).
    pub(super) fn submit_tunnel_up(&mut self) {
        if let Some((script, env)) = self.tunnel_hook(true) {
            let job = HookJob {
                script,
                env,
                limit: self.config.interface.hook_timeout,
            };
            self.hooks.submit(HookKey::Tunnel, job);
        }
    }
}

impl Privileged for Ops {
    fn run_hook(&mut self, event: HookEvent, path: &str) {
        let i = &self.config.interface;
        let (script, name, state) = match event {
            HookEvent::PathUp => (i.up_script.clone(), "path_up", "up"),
            HookEvent::PathDown => (i.down_script.clone(), "path_down", "down"),
        };
        // The policy checked the name against this config.
        let found = self.config.paths.iter().enumerate().find(|(_, p)| p.name == path);
        let (Some(script), Some((index, p))) = (script, found) else {
            return;
        };
        let mut env = self.env(name);
        env.push(("MLVPN_PATH".into(), p.name.clone()));
        env.push(("MLVPN_PATH_STATE".into(), state.into()));
        let job = HookJob {
            script,
            env,
            limit: i.hook_timeout,
        };
        // The queue keeps one hook at a time per path (at most 32 paths).
        self.hooks.submit(HookKey::Path(index as u8), job);
    }

    fn rebind(&mut self, path: u8) -> std::io::Result<OwnedFd> {
        let p = self
            .config
            .paths
            .get(usize::from(path))
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such path"))?;
        let s = path_socket::bind_path(p, self.config.mode)?;
        info!(path = %p.name, "re-bound path socket for the worker");
        Ok(OwnedFd::from(s))
    }
}
