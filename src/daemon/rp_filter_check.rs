//! Strict reverse-path filtering and an IPv4 full tunnel do not mix: the
//! kernel checks a datagram from the server by routing its source back, as
//! an unmarked packet, which the full tunnel sends into the tunnel, not out
//! of the uplink it came in on; in strict mode (`rp_filter = 1`) every
//! reply is dropped and no path comes up. The parent warns with the fix.
//! (wg-quick instead restores the mark on replies with nftables and sets
//! `src_valid_mark`; loose mode is the Debian default and what any host
//! with two default gateways needs anyway.)

use tracing::warn;

use crate::config::Config;
use crate::platform;
use crate::platform::route_plan::{plan_routes, Table};

/// Warns for each uplink of a client's IPv4 path whose reverse-path filter
/// is strict, when the config routes an IPv4 full tunnel.
pub fn warn_strict_rp_filter(config: &Config) {
    if plan_routes(config).in_table(Table::FullTunnel, false).is_empty() {
        return;
    }
    for path in config
        .paths
        .iter()
        .filter(|p| p.bind.is_ipv4() && p.endpoint.is_some())
    {
        if let Some(dev) = platform::strict_reverse_path_filter(path) {
            warn!(
                path = %path.name,
                "reverse path filtering on {dev} is strict (rp_filter = 1): the kernel drops the \
                 server's replies, whose source the full tunnel routes into the tunnel; set \
                 net.ipv4.conf.all.rp_filter = 2 and net.ipv4.conf.{dev}.rp_filter = 2 (loose)"
            );
        }
    }
}
