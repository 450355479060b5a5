//! Running a routing change: the [`IpStep`]s of [`super::policy_routing`]
//! in order, consecutive ones batched into one `ip` process.

use std::io;

use super::ip_command::{ip, ip_batch};
use super::policy_routing::{self, IpStep};
use crate::platform::route_plan::RoutePlan;

/// Bound on deleting copies of one rule (a crashed run leaves one; a loop
/// that never ends would hang the start).
const MAX_COPIES: usize = 64;

/// Installs `plan` on `dev`, replacing what an earlier run left; returns
/// how many stale rules were deleted.
pub fn install_routes(dev: &str, plan: &RoutePlan) -> io::Result<usize> {
    run(&policy_routing::install(dev, plan))
}

/// Changes the installed `old` plan into `new`.
pub fn update_routes(dev: &str, old: &RoutePlan, new: &RoutePlan) -> io::Result<()> {
    run(&policy_routing::update(dev, old, new)).map(|_| ())
}

/// Removes the rules and the full tunnel's table.
pub fn remove_routes() -> io::Result<()> {
    run(&policy_routing::remove()).map(|_| ())
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
            ip_batch(family, &batch)?;
            continue;
        }
        let step = &steps[i];
        i += 1;
        match step {
            IpStep::Run(args) => ip(args)?,
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
    match ip(args) {
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
