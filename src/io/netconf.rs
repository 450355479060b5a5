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

/// Runs `ip -batch -` with one command per line: one process for all of
/// them (a concentrator has a route per peer: 20 000 `ip` processes took
/// 40 s). Stops at the first command that fails, as one `ip` per command
/// did.
fn ip_batch(commands: &[String]) -> io::Result<()> {
    use std::io::Write;
    use std::process::Stdio;
    if commands.is_empty() {
        return Ok(());
    }
    let mut child = Command::new("ip")
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut input = commands.join("\n");
    input.push('\n');
    let mut stdin = child.stdin.take().expect("piped");
    // Written from a thread: `ip` may stop reading (and write its error)
    // before it has read everything.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output()?;
    let _ = writer.join();
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "ip -batch ({} commands, first: ip {}): {}",
            commands.len(),
            commands[0],
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

pub fn add_routes(dev: &str, routes: &[IpNet]) -> io::Result<()> {
    let commands: Vec<String> = routes
        .iter()
        .map(|r| format!("route replace {} dev {dev}", r.trunc()))
        .collect();
    ip_batch(&commands)
}

/// Removes routes this daemon added (a reload dropped their peer).
pub fn del_routes(dev: &str, routes: &[IpNet]) -> io::Result<()> {
    let commands: Vec<String> = routes
        .iter()
        .map(|r| format!("route del {} dev {dev}", r.trunc()))
        .collect();
    ip_batch(&commands)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_batch_is_an_error_naming_it_and_an_empty_one_runs_nothing() {
        assert!(ip_batch(&[]).is_ok());
        // A command ip refuses before touching anything (needs no root).
        let e = ip_batch(&["route bogus 10.0.0.0/8".into(), "route show".into()]).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("ip -batch (2 commands, first: ip route bogus"),
            "{text}"
        );
    }
}
