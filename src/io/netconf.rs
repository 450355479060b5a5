//! Addresses, MTU and routes of the TUN device.
//!
//! Set with iproute2 (`ip`), which every Linux system that can run a VPN has;
//! the BSDs will use ifconfig/route here.

use std::io;
use std::process::Command;

use ipnet::IpNet;

use crate::config::{Config, Mode};

fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Adds the configured addresses to the device.
pub fn set_addresses(dev: &str, addresses: &[IpNet]) -> io::Result<()> {
    for a in addresses {
        ip(&["addr", "replace", &a.to_string(), "dev", dev])?;
    }
    Ok(())
}

/// Why a server never routes a host-wide default into the tunnel.
const SERVER_DEFAULT: &str = "a server never routes a host-wide default into the tunnel (it would take over \
     the host's own traffic); list the client's prefixes instead";

/// Routes to install into the tunnel, and those left out with the reason.
///
/// A client must not route a path's own endpoint into the tunnel (the tunnel
/// would then carry itself), so an `allowed_ips` entry that contains an
/// endpoint (typically 0.0.0.0/0) is left to the operator's policy routing.
///
/// A server routes each peer's prefixes but never a host-wide default
/// (`0.0.0.0/0`, `::/0`): it would take over the data centre host's own
/// routing (its uplink, its management access), not only the clients'.
pub fn plan_routes(config: &Config) -> (Vec<IpNet>, Vec<(IpNet, String)>) {
    let mut add = Vec::new();
    let mut skipped = Vec::new();
    for net in config.peers.iter().flat_map(|p| p.allowed_ips.iter()) {
        if config.mode == Mode::Server && net.prefix_len() == 0 {
            skipped.push((*net, SERVER_DEFAULT.to_string()));
            continue;
        }
        let endpoint = config
            .paths
            .iter()
            .filter_map(|p| p.endpoint)
            .find(|e| config.mode == Mode::Client && net.contains(&e.ip()));
        match endpoint {
            Some(e) => skipped.push((
                *net,
                format!("contains path endpoint {e}; route it with policy routing"),
            )),
            None => add.push(*net),
        }
    }
    (add, skipped)
}

pub fn add_routes(dev: &str, routes: &[IpNet]) -> io::Result<()> {
    for r in routes {
        ip(&["route", "replace", &r.trunc().to_string(), "dev", dev])?;
    }
    Ok(())
}

/// Removes routes this daemon added (a reload dropped their peer).
pub fn del_routes(dev: &str, routes: &[IpNet]) -> io::Result<()> {
    for r in routes {
        ip(&["route", "del", &r.trunc().to_string(), "dev", dev])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use mlvpn_keys::{write_private_key_file, PrivateKey};

    use super::*;

    #[test]
    fn a_server_routes_peer_prefixes_but_never_a_host_wide_default() {
        let dir = tempfile::tempdir().unwrap();
        write_private_key_file(&dir.path().join("k"), &PrivateKey::from_bytes([7; 32])).unwrap();
        let peer = PrivateKey::from_bytes([2; 32]).public_key();
        let text = format!(
            "mode = \"server\"\n[interface]\nname = \"mlvpn0\"\naddress = [\"10.42.0.1/30\"]\n\
             private_key_file = \"k\"\n[[peer]]\npublic_key = \"{peer}\"\n\
             allowed_ips = [\"10.42.0.2/32\", \"0.0.0.0/0\", \"192.168.10.0/24\", \"::/0\", \"fd42::2/128\"]\n\
             [[path]]\nname = \"isp1\"\nbind = \"203.0.113.1:5080\"\n"
        );
        let config = Config::parse(&text, &dir.path().join("c.toml")).unwrap();
        let (routes, skipped) = plan_routes(&config);
        let nets = |l: &[&str]| l.iter().map(|n| n.parse().unwrap()).collect::<Vec<IpNet>>();
        assert_eq!(routes, nets(&["10.42.0.2/32", "192.168.10.0/24", "fd42::2/128"]));
        let skipped_nets: Vec<IpNet> = skipped.iter().map(|(n, _)| *n).collect();
        assert_eq!(skipped_nets, nets(&["0.0.0.0/0", "::/0"]));
        assert!(
            skipped[0].1.contains("never routes a host-wide default"),
            "{}",
            skipped[0].1
        );
    }
}
