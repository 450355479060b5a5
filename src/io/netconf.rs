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

/// Routes to install into the tunnel, and those left out with the reason.
///
/// A client must not route a path's own endpoint into the tunnel (the tunnel
/// would then carry itself), so an `allowed_ips` entry that contains an
/// endpoint (typically 0.0.0.0/0) is left to the operator's policy routing.
pub fn plan_routes(config: &Config) -> (Vec<IpNet>, Vec<(IpNet, String)>) {
    let mut add = Vec::new();
    let mut skipped = Vec::new();
    for net in config.peers.iter().flat_map(|p| p.allowed_ips.iter()) {
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
