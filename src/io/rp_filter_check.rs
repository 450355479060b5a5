//! Strict reverse-path filtering and an IPv4 full tunnel do not mix: the
//! kernel checks a datagram from the server by routing its source back, as
//! an unmarked packet, which the full tunnel sends into the tunnel, not out
//! of the uplink it came in on; in strict mode (`rp_filter = 1`) every
//! reply is dropped and no path comes up. The parent warns with the fix.
//! (wg-quick instead restores the mark on replies with nftables and sets
//! `src_valid_mark`; loose mode is the Debian default and what any host
//! with two default gateways needs anyway.)

use tracing::warn;

use super::netconf::{ip_output, plan_routes, Table};
use crate::config::Config;

/// Warns for each uplink of a client's IPv4 path whose reverse-path filter
/// is strict, when the config routes an IPv4 full tunnel.
pub fn warn_strict_rp_filter(config: &Config) {
    if plan_routes(config).in_table(Table::FullTunnel, false).is_empty() {
        return;
    }
    let all = read_rp_filter("all");
    for path in config
        .paths
        .iter()
        .filter(|p| p.bind.is_ipv4() && p.endpoint.is_some())
    {
        let dev = match &path.device {
            Some(d) => Some(d.clone()),
            None => holder_of(path.bind.ip()),
        };
        let Some(dev) = dev else {
            continue;
        };
        if is_strict(all.as_deref(), read_rp_filter(&dev).as_deref()) {
            warn!(
                path = %path.name,
                "reverse path filtering on {dev} is strict (rp_filter = 1): the kernel drops the \
                 server's replies, whose source the full tunnel routes into the tunnel; set \
                 net.ipv4.conf.all.rp_filter = 2 and net.ipv4.conf.{dev}.rp_filter = 2 (loose)"
            );
        }
    }
}

/// The interface holding `addr`, if one does.
fn holder_of(addr: std::net::IpAddr) -> Option<String> {
    if addr.is_unspecified() {
        return None;
    }
    let out = ip_output(&["-o", "-4", "addr", "show", "to", &addr.to_string()]).ok()?;
    out.split_whitespace().nth(1).map(String::from)
}

fn read_rp_filter(conf: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{conf}/rp_filter")).ok()
}

/// The kernel applies the larger of `all` and the interface's value: 1 is
/// strict, 2 loose, 0 off.
fn is_strict(all: Option<&str>, dev: Option<&str>) -> bool {
    let value = |v: Option<&str>| v.and_then(|v| v.trim().parse::<u8>().ok()).unwrap_or(0);
    value(all).max(value(dev)) == 1
}

#[cfg(test)]
mod tests {
    use super::is_strict;

    #[test]
    fn the_larger_of_all_and_the_interface_decides() {
        assert!(is_strict(Some("1\n"), Some("0\n")));
        assert!(is_strict(Some("0\n"), Some("1\n")));
        assert!(!is_strict(Some("1\n"), Some("2\n")), "loose wins over strict");
        assert!(!is_strict(Some("0\n"), Some("0\n")));
        assert!(!is_strict(None, None), "unknown: no warning");
    }
}
