//! The TUN device's addresses, set with `ip addr replace`.

use std::io;

use ipnet::IpNet;

use super::ip_command::ip;

/// Adds the configured addresses to the device.
pub fn set_addresses(dev: &str, addresses: &[IpNet]) -> io::Result<()> {
    for a in addresses {
        ip(&["addr", "replace", &a.to_string(), "dev", dev])?;
    }
    Ok(())
}
