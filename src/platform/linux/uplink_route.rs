//! Which interface a client path's datagrams would leave through, asked
//! of the kernel with `ip route get` as the path's marked datagrams would
//! be routed, against the interface holding its bind address.

use std::net::IpAddr;

use super::ip_command::ip_output;
use super::policy_routing::MARK;
use crate::config::{Mode, PathConfig};

/// For a client's path: the interfaces when they differ (see
/// [`crate::platform::misrouted_path`]).
pub fn misrouted_path(path: &PathConfig, mode: Mode) -> std::io::Result<Option<(String, String)>> {
    if mode != Mode::Client {
        return Ok(None);
    }
    misrouted(path, MARK)
}

/// `Some((interface holding the bind address, interface the route uses))`
/// when they differ.
fn misrouted(path: &PathConfig, mark: u32) -> std::io::Result<Option<(String, String)>> {
    let (bind, Some(endpoint)) = (path.bind.ip(), path.endpoint) else {
        return Ok(None);
    };
    if path.device.is_some() || bind.is_unspecified() {
        return Ok(None);
    }
    let family = if bind.is_ipv6() { "-6" } else { "-4" };
    let addr = ip_output(&["-o", family, "addr", "show", "to", &bind.to_string()])?;
    let route = ip_output(&[
        family,
        "route",
        "get",
        &endpoint.ip().to_string(),
        "from",
        &bind.to_string(),
        "mark",
        &mark.to_string(),
    ])?;
    Ok(compare(bind, &addr, &route))
}

/// From `ip -o addr show to BIND` and `ip route get ... from BIND`: the two
/// interfaces when both are known and differ.
fn compare(bind: IpAddr, addr_show: &str, route_get: &str) -> Option<(String, String)> {
    let holder = interface_holding(addr_show, bind)?;
    let via = route_device(route_get)?;
    (holder != via).then(|| (holder.to_string(), via.to_string()))
}

/// The interface of the line of `ip -o addr show` that lists `addr`
/// (`3: eth1    inet 10.64.3.9/24 ...`).
fn interface_holding(addr_show: &str, addr: IpAddr) -> Option<&str> {
    addr_show.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        let (_index, dev, _family, cidr) = (words.next()?, words.next()?, words.next()?, words.next()?);
        let listed: IpAddr = cidr.split('/').next()?.parse().ok()?;
        (listed == addr).then_some(dev)
    })
}

/// The word after `dev` in `ip route get` output.
fn route_device(route_get: &str) -> Option<&str> {
    let mut words = route_get.split_whitespace();
    words.find(|w| *w == "dev")?;
    words.next()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: &str =
        "5: up2    inet 10.202.0.2/24 scope global up2\\       valid_lft forever preferred_lft forever\n";

    #[test]
    fn a_path_whose_route_uses_another_uplink_is_named_with_both_interfaces() {
        let route = "198.18.0.2 from 10.202.0.2 via 10.201.0.1 dev up1 mark 0x6d6c uid 0 \n    cache \n";
        assert_eq!(
            compare("10.202.0.2".parse().unwrap(), ADDR, route),
            Some(("up2".into(), "up1".into()))
        );
    }

    #[test]
    fn a_path_whose_route_uses_its_own_uplink_is_fine() {
        let route = "198.18.0.2 from 10.202.0.2 via 10.202.0.1 dev up2 mark 0x6d6c uid 0 \n    cache \n";
        assert_eq!(compare("10.202.0.2".parse().unwrap(), ADDR, route), None);
    }

    #[test]
    fn ipv6_output_and_unknown_answers() {
        let addr =
            "3: eth1    inet6 2001:db8::2/64 scope global \\       valid_lft forever preferred_lft forever\n";
        let route = "2001:db8:5::1 from 2001:db8::2 via fe80::1 dev eth0 proto ra src 2001:db8::2 metric 1024 pref medium\n";
        let bind: IpAddr = "2001:db8::2".parse().unwrap();
        assert_eq!(compare(bind, addr, route), Some(("eth1".into(), "eth0".into())));
        // An address nobody holds, or a route without a device: no verdict.
        assert_eq!(compare("2001:db8::9".parse().unwrap(), addr, route), None);
        assert_eq!(compare(bind, addr, "unreachable 2001:db8:5::1\n"), None);
    }
}
