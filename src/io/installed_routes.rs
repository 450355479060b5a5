//! The routes and policy rules this daemon has installed: the parent keeps
//! one [`InstalledRoutes`] from start to exit, changes it on reload, and it
//! removes the rules and the full tunnel's table when dropped (clean stop,
//! worker crash, failed start alike).

use std::io;

use tracing::{info, warn};

use super::netconf::{self, RoutePlan, Table};
use super::policy_routing::{self, IpStep};
use crate::config::Config;

/// Bound on deleting copies of one rule (a crashed run leaves one; a loop
/// that never ends would hang the start).
const MAX_COPIES: usize = 64;

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
        let plan = netconf::plan_routes(config);
        log_plan(&plan, "");
        let mut routes = InstalledRoutes {
            dev: config.interface.name.clone(),
            plan: RoutePlan::default(),
            installed: true,
        };
        let stale = run(&policy_routing::install(&routes.dev, &plan))
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
        let plan = netconf::plan_routes(config);
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
                    policy_routing::TABLE
                );
            }
        }
        let steps = policy_routing::update(&self.dev, &self.plan, &plan);
        // What ran is in force even if a later step failed: the next reload
        // or the exit works from the new plan (removal is idempotent).
        self.plan = plan;
        run(&steps)
            .map(|_| ())
            .map_err(|e| io::Error::new(e.kind(), format!("routes: {e}")))
    }

    /// Removes the rules and the full tunnel's table (main-table routes went
    /// with the TUN device); failures are logged. Once: later calls and the
    /// drop do nothing.
    pub fn remove(&mut self) {
        if !std::mem::replace(&mut self.installed, false) {
            return;
        }
        match run(&policy_routing::remove()) {
            Ok(_) if self.plan.routes.iter().any(|(_, t)| *t == Table::FullTunnel) => {
                info!(
                    table = policy_routing::TABLE,
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
                table = policy_routing::TABLE,
                fwmark = format!("{:#x}", policy_routing::MARK),
                "{context}full tunnel ({}): every packet but the paths' own goes into the tunnel",
                if v6 { "IPv6" } else { "IPv4" }
            );
        }
    }
}

/// Runs the steps in order; stops at the first failure. Returns how many
/// rules the [`IpStep::RemoveEvery`] steps deleted. Consecutive
/// [`IpStep::Run`] steps of one address family go to `ip` as one batch.
fn run(steps: &[IpStep]) -> io::Result<usize> {
    let mut rules = 0;
    let mut i = 0;
    while i < steps.len() {
        if let Some((family, _)) = batchable(&steps[i]) {
            let batch: Vec<&[String]> = steps[i..]
                .iter()
                .map_while(|s| batchable(s).filter(|(f, _)| *f == family).map(|(_, rest)| rest))
                .collect();
            i += batch.len();
            netconf::ip_batch(family, &batch)?;
            continue;
        }
        let step = &steps[i];
        i += 1;
        match step {
            IpStep::Run(args) => netconf::ip(args)?,
            IpStep::Remove(args) => {
                remove_if_there(args)?;
            }
            IpStep::RemoveEvery(args) => {
                let mut copies = 0;
                while remove_if_there(args)? {
                    copies += 1;
                    if copies == MAX_COPIES {
                        return Err(io::Error::other(format!(
                            "ip {}: still there after {MAX_COPIES} deletions",
                            args.join(" ")
                        )));
                    }
                }
                rules += copies;
            }
        }
    }
    Ok(rules)
}

/// A step that can join a batch: a `Run` whose first word is its address
/// family (`-4`/`-6`), split into that family and the rest.
fn batchable(step: &IpStep) -> Option<(&str, &[String])> {
    match step {
        IpStep::Run(args) => match args.split_first() {
            Some((f, rest)) if f == "-4" || f == "-6" => Some((f.as_str(), rest)),
            _ => None,
        },
        _ => None,
    }
}

/// Runs a deletion; `Ok(false)` when there was nothing to delete.
fn remove_if_there(args: &[String]) -> io::Result<bool> {
    match netconf::ip(args) {
        Ok(()) => Ok(true),
        Err(e) if is_absent(&e.to_string()) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `ip`'s ways of saying the thing to delete does not exist: no such rule
/// (ENOENT), no such route (ESRCH), no such table, no such device.
fn is_absent(message: &str) -> bool {
    [
        "No such file or directory",
        "No such process",
        "FIB table does not exist",
        "Cannot find device",
    ]
    .iter()
    .any(|m| message.contains(m))
}

#[cfg(test)]
mod tests {
    use super::is_absent;

    #[test]
    fn ip_messages_for_nothing_to_delete_are_recognised_and_real_errors_are_not() {
        for m in [
            "ip -4 rule del table main suppress_prefixlength 0 protocol 109: RTNETLINK answers: No such file or directory",
            "ip -4 route del 10.0.0.0/8 dev mlvpn0: RTNETLINK answers: No such process",
            "ip -6 route flush table 28012: Error: ipv6: FIB table does not exist.\nFlush terminated",
            "ip -4 route del 10.0.0.0/8 dev mlvpn0: Cannot find device \"mlvpn0\"",
        ] {
            assert!(is_absent(m), "{m}");
        }
        assert!(!is_absent(
            "ip -4 rule del ...: RTNETLINK answers: Operation not permitted"
        ));
    }
}
