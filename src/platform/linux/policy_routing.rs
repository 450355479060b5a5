//! The `ip` commands that install, change and remove a [`RoutePlan`]:
//! pure argument lists, run by [`super::routes`].
//!
//! A full tunnel is wg-quick's policy routing. The client's path sockets
//! carry fwmark [`MARK`] (set by the parent). In each address family with
//! routes in the full tunnel's table:
//!
//! ```text
//! 32764: from all lookup main suppress_prefixlength 0 proto 109
//! 32765: not from all fwmark 0x6d6c lookup 28012 proto 109
//! table 28012: default dev mlvpn0; unreachable default metric 4294967294
//! ```
//! The first rule lets the main table's specific routes (the LAN, the
//! uplinks' subnets, split-tunnel prefixes) win but not its default route;
//! the second sends everything else that is not a path datagram into the
//! tunnel's table. Path datagrams skip it and leave by the main table,
//! default route included. The unreachable route outlives the TUN device:
//! if the daemon dies without removing its rules, the site's traffic is
//! refused instead of leaving in the clear, until the next start replaces
//! them.

use ipnet::IpNet;

use crate::platform::route_plan::{RoutePlan, Table};

/// fwmark of every client path socket ("ml" in ASCII), and the number of
/// the full tunnel's routing table.
pub const MARK: u32 = 0x6d6c;
pub const TABLE: u32 = MARK;
/// Routing protocol number of the daemon's rules (`proto 109` in `ip rule`):
/// how a start finds the rules a crashed run left, and how removal leaves
/// an identical rule of someone else's (wg-quick's) alone.
pub const RULE_PROTOCOL: u8 = 109;

/// How a full tunnel is routed, for `check`.
pub fn full_tunnel_mechanism() -> String {
    format!(
        "in table {TABLE}; rules \"not fwmark {MARK:#x} lookup {TABLE}\" and \"lookup main \
         suppress_prefixlength 0\"; path sockets marked {MARK:#x}"
    )
}

/// Metric of the unreachable routes: after any real route. Not the largest
/// (4294967295): `ip -6 route flush` leaves an unreachable IPv6 default
/// with that metric alone, taking it for the kernel's own null route.
const LAST_METRIC: &str = "4294967294";

/// One `ip` command of a routing change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpStep {
    /// Must succeed.
    Run(Vec<String>),
    /// Deletes something that may already be gone (with its device, or
    /// never added): "does not exist" counts as done.
    Remove(Vec<String>),
    /// Deletes every copy of a rule (a crashed run may have left one):
    /// repeated until nothing matches.
    RemoveEvery(Vec<String>),
}

/// `-4` or `-6`.
fn family(v6: bool) -> &'static str {
    if v6 {
        "-6"
    } else {
        "-4"
    }
}

/// An argument list from its words (no argument here holds a space: device
/// names cannot, see the config parser).
fn words(command: &str) -> Vec<String> {
    command.split_whitespace().map(String::from).collect()
}

/// The two rules of a family, `op` being `add` or `del`, in the order they
/// are added (the second gets the smaller priority and is looked at first).
fn rules(v6: bool, op: &str) -> [Vec<String>; 2] {
    let f = family(v6);
    [
        words(&format!(
            "{f} rule {op} not fwmark {MARK} table {TABLE} protocol {RULE_PROTOCOL}"
        )),
        words(&format!(
            "{f} rule {op} table main suppress_prefixlength 0 protocol {RULE_PROTOCOL}"
        )),
    ]
}

/// Removes a family's rules (first: traffic is routed normally again at
/// once) and empties its table, whatever an earlier run left.
fn teardown(v6: bool) -> Vec<IpStep> {
    let mut steps: Vec<IpStep> = rules(v6, "del").into_iter().map(IpStep::RemoveEvery).collect();
    steps.push(IpStep::Remove(words(&format!(
        "{} route flush table {TABLE}",
        family(v6)
    ))));
    steps
}

/// A prefix's two routes in the full tunnel's table, `op` being `replace`
/// or `del`: its unreachable fallback, then the route into the device.
fn table_routes(op: &str, dev: &str, net: &IpNet) -> [Vec<String>; 2] {
    let f = family(net.addr().is_ipv6());
    [
        words(&format!(
            "{f} route {op} unreachable {net} table {TABLE} metric {LAST_METRIC}"
        )),
        words(&format!("{f} route {op} {net} dev {dev} table {TABLE}")),
    ]
}

/// `ip -4|-6 route OP NET dev DEV`: a route in the main table.
fn main_route(op: &str, dev: &str, net: &IpNet) -> Vec<String> {
    words(&format!(
        "{} route {op} {net} dev {dev}",
        family(net.addr().is_ipv6())
    ))
}

/// Commands that install `plan` on device `dev` from any earlier state: the
/// rules and table of a run that died without removing them are replaced,
/// never doubled.
pub(super) fn install(dev: &str, plan: &RoutePlan) -> Vec<IpStep> {
    let mut steps = teardown(false);
    steps.extend(teardown(true));
    steps.extend(update(dev, &RoutePlan::default(), plan));
    steps
}

/// Commands that change the installed `old` plan into `new` (a reload).
/// Additions come first and the rules stay in place while a family keeps a
/// full tunnel, so no packet leaves in the clear during the change.
pub(super) fn update(dev: &str, old: &RoutePlan, new: &RoutePlan) -> Vec<IpStep> {
    let mut adds = Vec::new();
    let mut removes = Vec::new();
    for v6 in [false, true] {
        let (was, now) = (
            old.in_table(Table::FullTunnel, v6),
            new.in_table(Table::FullTunnel, v6),
        );
        for net in now.iter().filter(|n| !was.contains(n)) {
            adds.extend(table_routes("replace", dev, net).map(IpStep::Run));
        }
        if was.is_empty() && !now.is_empty() {
            // The table is filled before the rules send traffic to it.
            adds.extend(rules(v6, "add").into_iter().map(IpStep::Run));
        }
        if now.is_empty() && !was.is_empty() {
            removes.extend(teardown(v6));
        } else {
            for net in was.iter().filter(|n| !now.contains(n)) {
                let [unreachable, route] = table_routes("del", dev, net);
                removes.extend([IpStep::Remove(route), IpStep::Remove(unreachable)]);
            }
        }
    }
    let main = |p: &RoutePlan| -> Vec<IpNet> {
        [false, true]
            .into_iter()
            .flat_map(|v6| p.in_table(Table::Main, v6))
            .collect()
    };
    let (was, now) = (main(old), main(new));
    for net in now.iter().filter(|n| !was.contains(n)) {
        adds.push(IpStep::Run(main_route("replace", dev, net)));
    }
    for net in was.iter().filter(|n| !now.contains(n)) {
        removes.push(IpStep::Remove(main_route("del", dev, net)));
    }
    adds.extend(removes);
    adds
}

/// Commands that remove the rules and the table at exit (routes in the main
/// table went with the TUN device). Also what a crashed run left.
pub(super) fn remove() -> Vec<IpStep> {
    let mut steps = teardown(false);
    steps.extend(teardown(true));
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(routes: &[(&str, Table)]) -> RoutePlan {
        RoutePlan {
            routes: routes.iter().map(|(n, t)| (n.parse().unwrap(), *t)).collect(),
            ..RoutePlan::default()
        }
    }

    /// The steps as command lines, `!` marking a removal that may find
    /// nothing and `*` one repeated until nothing matches.
    fn lines(steps: &[IpStep]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                IpStep::Run(a) => a.join(" "),
                IpStep::Remove(a) => format!("! {}", a.join(" ")),
                IpStep::RemoveEvery(a) => format!("* {}", a.join(" ")),
            })
            .collect()
    }

    const TEARDOWN_V4: [&str; 3] = [
        "* -4 rule del not fwmark 28012 table 28012 protocol 109",
        "* -4 rule del table main suppress_prefixlength 0 protocol 109",
        "! -4 route flush table 28012",
    ];
    const TEARDOWN_V6: [&str; 3] = [
        "* -6 rule del not fwmark 28012 table 28012 protocol 109",
        "* -6 rule del table main suppress_prefixlength 0 protocol 109",
        "! -6 route flush table 28012",
    ];

    const SETUP_V4: [&str; 4] = [
        "-4 route replace unreachable 0.0.0.0/0 table 28012 metric 4294967294",
        "-4 route replace 0.0.0.0/0 dev mlvpn0 table 28012",
        "-4 rule add not fwmark 28012 table 28012 protocol 109",
        "-4 rule add table main suppress_prefixlength 0 protocol 109",
    ];

    #[test]
    fn a_full_tunnel_starts_by_clearing_what_a_crash_left_then_fills_the_table_before_the_rules() {
        let p = plan(&[
            ("0.0.0.0/0", Table::FullTunnel),
            ("::/0", Table::FullTunnel),
            ("10.42.0.0/30", Table::Main),
        ]);
        let mut want: Vec<&str> = TEARDOWN_V4.into_iter().chain(TEARDOWN_V6).collect();
        want.extend(SETUP_V4);
        want.extend([
            "-6 route replace unreachable ::/0 table 28012 metric 4294967294",
            "-6 route replace ::/0 dev mlvpn0 table 28012",
            "-6 rule add not fwmark 28012 table 28012 protocol 109",
            "-6 rule add table main suppress_prefixlength 0 protocol 109",
            "-4 route replace 10.42.0.0/30 dev mlvpn0",
        ]);
        assert_eq!(lines(&install("mlvpn0", &p)), want);
    }

    #[test]
    fn a_split_tunnel_adds_no_rule_but_still_clears_stale_ones() {
        let p = plan(&[("10.42.0.0/30", Table::Main), ("fd42::/64", Table::Main)]);
        let mut want: Vec<&str> = TEARDOWN_V4.into_iter().chain(TEARDOWN_V6).collect();
        want.extend([
            "-4 route replace 10.42.0.0/30 dev mlvpn0",
            "-6 route replace fd42::/64 dev mlvpn0",
        ]);
        assert_eq!(lines(&install("mlvpn0", &p)), want);
    }

    #[test]
    fn removal_takes_the_rules_and_empties_the_table_in_both_families() {
        let want: Vec<&str> = TEARDOWN_V4.into_iter().chain(TEARDOWN_V6).collect();
        assert_eq!(lines(&remove()), want);
    }

    #[test]
    fn a_reload_from_full_to_split_adds_the_new_routes_before_dropping_the_rules() {
        let full = plan(&[("0.0.0.0/0", Table::FullTunnel), ("10.42.0.0/30", Table::Main)]);
        let split = plan(&[("10.42.0.0/30", Table::Main), ("203.0.113.0/24", Table::Main)]);
        let mut want = vec!["-4 route replace 203.0.113.0/24 dev mlvpn0"];
        want.extend(TEARDOWN_V4);
        assert_eq!(lines(&update("mlvpn0", &full, &split)), want);
        // And back: table, rules, then the main route goes.
        let mut want = SETUP_V4.to_vec();
        want.push("! -4 route del 203.0.113.0/24 dev mlvpn0");
        assert_eq!(lines(&update("mlvpn0", &split, &full)), want);
    }

    #[test]
    fn a_reload_within_a_full_tunnel_keeps_the_rules_and_changes_only_the_table() {
        let old = plan(&[
            ("0.0.0.0/0", Table::FullTunnel),
            ("198.51.100.0/24", Table::FullTunnel),
        ]);
        let new = plan(&[
            ("0.0.0.0/0", Table::FullTunnel),
            ("203.0.113.0/24", Table::FullTunnel),
        ]);
        assert_eq!(
            lines(&update("mlvpn0", &old, &new)),
            [
                "-4 route replace unreachable 203.0.113.0/24 table 28012 metric 4294967294",
                "-4 route replace 203.0.113.0/24 dev mlvpn0 table 28012",
                "! -4 route del 198.51.100.0/24 dev mlvpn0 table 28012",
                "! -4 route del unreachable 198.51.100.0/24 table 28012 metric 4294967294",
            ]
        );
        assert!(update("mlvpn0", &new, &new).is_empty(), "no change, no command");
    }
}
