//! The routes and policy rules this daemon has installed: the parent keeps
//! one [`InstalledRoutes`] from start to exit, changes it on reload, and it
//! removes the rules and the full tunnel's table when dropped (clean stop,
//! worker crash, failed start alike).

use std::io;

use tracing::{info, warn};

use crate::config::Config;
use crate::platform;
use crate::platform::route_plan::{plan_routes, RoutePlan, Table};

pub struct InstalledRoutes {
    dev: String,
    plan: RoutePlan,
    /// False once removed.
    installed: bool,
}

impl InstalledRoutes {
    /// Installs the routes (and, for a full tunnel, the rules) `config`
    /// asks for on its TUN device, replacing what an earlier run left. On
    /// failure, the rules and table it added are removed (when the value
    /// drops); its main-table routes go with the device.
    pub fn install(config: &Config) -> io::Result<InstalledRoutes> {
        let plan = plan_routes(config);
        log_plan(&plan, "");
        let mut routes = InstalledRoutes {
            dev: config.interface.name.clone(),
            plan: RoutePlan::default(),
            installed: true,
        };
        let stale = platform::install_routes(&routes.dev, &plan)
            .map_err(|e| io::Error::new(e.kind(), format!("routes: {e}")))?;
        if stale > 0 {
            warn!(
                rules = stale,
                "replaced the policy rules of a run that did not stop cleanly"
            );
        }
        routes.plan = plan;
        Ok(routes)
    }

    /// Changes the installed routes to what `config` asks for (SIGHUP).
    pub fn update(&mut self, config: &Config) -> io::Result<()> {
        let plan = plan_routes(config);
        if plan == self.plan {
            return Ok(());
        }
        log_plan(&plan, "reload: ");
        for v6 in [false, true] {
            if plan.in_table(Table::FullTunnel, v6).is_empty()
                && !self.plan.in_table(Table::FullTunnel, v6).is_empty()
            {
                info!(
                    "reload: full tunnel ({}) off: its rules and table {} are removed",
                    if v6 { "IPv6" } else { "IPv4" },
                    platform::FULL_TUNNEL_TABLE
                );
            }
        }
        let old = std::mem::replace(&mut self.plan, plan);
        // What ran is in force even if a later step failed: the next reload
        // or the exit works from the new plan (removal is idempotent).
        platform::update_routes(&self.dev, &old, &self.plan)
            .map_err(|e| io::Error::new(e.kind(), format!("routes: {e}")))
    }

    /// Removes the rules and the full tunnel's table (main-table routes went
    /// with the TUN device); failures are logged. Once: later calls and the
    /// drop do nothing.
    pub fn remove(&mut self) {
        if !std::mem::replace(&mut self.installed, false) {
            return;
        }
        match platform::remove_routes() {
            Ok(_) if self.plan.routes.iter().any(|(_, t)| *t == Table::FullTunnel) => {
                info!(
                    table = platform::FULL_TUNNEL_TABLE,
                    "full tunnel rules and table removed"
                )
            }
            Ok(_) => {}
            Err(e) => warn!("removing the full tunnel's rules: {e}"),
        }
    }
}

impl Drop for InstalledRoutes {
    fn drop(&mut self) {
        self.remove();
    }
}

fn log_plan(plan: &RoutePlan, context: &str) {
    for (net, why) in &plan.skipped {
        warn!(route = %net, "{context}not routed into the tunnel: {why}");
    }
    for v6 in [false, true] {
        let nets = plan.in_table(Table::FullTunnel, v6);
        if !nets.is_empty() {
            info!(
                routes = ?nets.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
                table = platform::FULL_TUNNEL_TABLE,
                fwmark = format!("{:#x}", platform::PATH_MARK),
                "{context}full tunnel ({}): every packet but the paths' own goes into the tunnel",
                if v6 { "IPv6" } else { "IPv4" }
            );
        }
    }
}
