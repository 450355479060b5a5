//! Which routes into the tunnel a config asks for, and in which table:
//! planned here without side effects, the same on every system; installed
//! by [`super::installed_routes`] through the platform layer.

use ipnet::IpNet;

use crate::config::{Config, Mode};

/// The routing table a route into the tunnel goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// The main table, next to the host's own routes.
    Main,
    /// The full tunnel's own table, consulted only for traffic that is not
    /// a path's own (see docs/routing.md).
    FullTunnel,
}

/// Routes into the tunnel that a config asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutePlan {
    /// Each prefix (host bits cleared, no duplicates) and its table.
    pub routes: Vec<(IpNet, Table)>,
    /// Prefixes left out, and why (logged, and shown by `mlvpn-rs check`).
    pub skipped: Vec<(IpNet, String)>,
    /// Prefixes inside the network of one of the TUN's addresses: the
    /// kernel's connected route already sends them to the device, so none
    /// is installed (shown by `check`).
    pub connected: Vec<IpNet>,
}

impl RoutePlan {
    /// The prefixes planned for `table` in one address family.
    pub fn in_table(&self, table: Table, v6: bool) -> Vec<IpNet> {
        self.routes
            .iter()
            .filter(|(net, t)| *t == table && net.addr().is_ipv6() == v6)
            .map(|(net, _)| *net)
            .collect()
    }
}

/// What to route into the tunnel for `config`.
///
/// A client's prefix that is a default route (`0.0.0.0/0`, `::/0`) or
/// contains a path endpoint goes to the full tunnel's table: in the main
/// table it would carry the paths' own datagrams into the tunnel itself
/// (and replace the host's default route); there, policy rules keep them
/// out. Other prefixes go to the main table.
///
/// A server routes each peer's prefixes in the main table but never a
/// host-wide default: it would take over the data centre host's own
/// routing (its uplink, its management access), not only the clients'.
///
/// A main-table prefix inside the network of one of the TUN's own
/// addresses is left out: the kernel's connected route already sends it to
/// the device. A concentrator whose address is `10.100.0.1/16` and whose
/// 10 000 peers each own a `10.100.x.y/32` then installs no route at all.
pub fn plan_routes(config: &Config) -> RoutePlan {
    let mut plan = RoutePlan::default();
    let connected: Vec<IpNet> = config.interface.address.iter().map(IpNet::trunc).collect();
    let mut seen = std::collections::HashSet::new();
    for net in config.peers.iter().flat_map(|p| p.allowed_ips.iter()) {
        let net = net.trunc();
        if !seen.insert(net) {
            continue;
        }
        let default = net.prefix_len() == 0;
        match config.mode {
            Mode::Server if default => plan.skipped.push((
                net,
                "a server never routes a host-wide default into the tunnel (it would take over \
                 the host's own traffic); list the client's prefixes instead"
                    .into(),
            )),
            _ if connected.iter().any(|c| c.contains(&net)) => plan.connected.push(net),
            Mode::Server => plan.routes.push((net, Table::Main)),
            Mode::Client => {
                let holds_endpoint = config
                    .paths
                    .iter()
                    .filter_map(|p| p.endpoint)
                    .any(|e| net.contains(&e.ip()));
                let table = if default || holds_endpoint {
                    Table::FullTunnel
                } else {
                    Table::Main
                };
                plan.routes.push((net, table));
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use mlvpn_keys::{write_private_key_file, PrivateKey};

    use super::*;

    /// A config of `mode` whose one peer has `allowed_ips`, with client
    /// paths to 203.0.113.1.
    fn config(mode: &str, allowed_ips: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        write_private_key_file(&dir.path().join("k"), &PrivateKey::from_bytes([7; 32])).unwrap();
        let peer = PrivateKey::from_bytes([2; 32]).public_key();
        let paths = if mode == "client" {
            "[[path]]\nname = \"dsl\"\nbind = \"192.0.2.10:0\"\nendpoint = \"203.0.113.1:5080\"\n\
             [[path]]\nname = \"v6\"\nbind = \"[2001:db8:1::10]:0\"\nendpoint = \"[2001:db8:99::1]:5081\"\n"
        } else {
            "[[path]]\nname = \"isp1\"\nbind = \"203.0.113.1:5080\"\n"
        };
        let text = format!(
            "mode = \"{mode}\"\n[interface]\nname = \"mlvpn0\"\naddress = [\"10.42.0.1/30\"]\n\
             private_key_file = \"k\"\n[[peer]]\npublic_key = \"{peer}\"\nallowed_ips = {allowed_ips}\n{paths}"
        );
        Config::parse(&text, &dir.path().join("c.toml")).unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn a_client_full_tunnel_goes_to_its_own_table_and_the_rest_to_main() {
        let c = config(
            "client",
            r#"["0.0.0.0/0", "::/0", "10.42.0.0/30", "203.0.113.0/24", "fd42::/64", "2001:db8:99::/48"]"#,
        );
        let plan = plan_routes(&c);
        assert!(plan.skipped.is_empty(), "{:?}", plan.skipped);
        // Defaults and prefixes holding an endpoint: the full tunnel's table.
        assert_eq!(
            plan.in_table(Table::FullTunnel, false),
            nets(&["0.0.0.0/0", "203.0.113.0/24"])
        );
        assert_eq!(
            plan.in_table(Table::FullTunnel, true),
            nets(&["::/0", "2001:db8:99::/48"])
        );
        // 10.42.0.0/30 is the TUN's own network: its connected route.
        assert_eq!(plan.in_table(Table::Main, false), Vec::<IpNet>::new());
        assert_eq!(plan.in_table(Table::Main, true), nets(&["fd42::/64"]));
    }

    #[test]
    fn a_client_split_tunnel_uses_only_the_main_table() {
        let plan = plan_routes(&config("client", r#"["10.43.0.0/30", "192.168.10.7/24"]"#));
        assert_eq!(
            plan.routes,
            [
                ("10.43.0.0/30".parse().unwrap(), Table::Main),
                // Host bits cleared, as `ip route` wants them.
                ("192.168.10.0/24".parse().unwrap(), Table::Main)
            ]
        );
        assert!(plan.in_table(Table::FullTunnel, false).is_empty());
    }

    #[test]
    fn a_server_routes_peer_prefixes_but_never_a_host_wide_default() {
        let plan = plan_routes(&config(
            "server",
            r#"["10.42.1.2/32", "0.0.0.0/0", "192.168.10.0/24", "::/0", "fd42::2/128"]"#,
        ));
        assert_eq!(
            plan.routes,
            nets(&["10.42.1.2/32", "192.168.10.0/24", "fd42::2/128"])
                .into_iter()
                .map(|n| (n, Table::Main))
                .collect::<Vec<_>>()
        );
        let skipped: Vec<IpNet> = plan.skipped.iter().map(|(n, _)| *n).collect();
        assert_eq!(skipped, nets(&["0.0.0.0/0", "::/0"]));
        assert!(
            plan.skipped[0].1.contains("never routes a host-wide default"),
            "{}",
            plan.skipped[0].1
        );
    }

    #[test]
    fn prefixes_inside_the_tuns_own_network_need_no_route() {
        // The TUN has 10.42.0.1/30: its connected route covers 10.42.0.0/30.
        let plan = plan_routes(&config(
            "server",
            r#"["10.42.0.2/32", "10.42.0.0/30", "10.42.0.0/29", "10.42.1.2/32"]"#,
        ));
        assert_eq!(
            plan.routes,
            nets(&["10.42.0.0/29", "10.42.1.2/32"])
                .into_iter()
                .map(|n| (n, Table::Main))
                .collect::<Vec<_>>()
        );
        assert!(plan.skipped.is_empty());
        assert_eq!(plan.connected, nets(&["10.42.0.2/32", "10.42.0.0/30"]));
    }

    #[test]
    fn a_prefix_listed_twice_is_planned_once() {
        let plan = plan_routes(&config("client", r#"["10.43.0.0/30", "10.43.0.1/30"]"#));
        assert_eq!(plan.routes.len(), 1, "{:?}", plan.routes);
    }
}
