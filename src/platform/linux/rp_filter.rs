//! Reverse-path filtering (`/proc/sys/net/ipv4/conf/*/rp_filter`): strict
//! mode drops a full tunnel client's replies (see
//! `daemon::rp_filter_check`).

use super::ip_command::ip_output;
use crate::config::PathConfig;

/// The uplink of `path` (its device, else the interface holding its bind
/// address) when its reverse-path filter is strict.
pub fn strict_reverse_path_filter(path: &PathConfig) -> Option<String> {
    let dev = match &path.device {
        Some(d) => d.clone(),
        None => holder_of(path.bind.ip())?,
    };
    is_strict(read_rp_filter("all").as_deref(), read_rp_filter(&dev).as_deref()).then_some(dev)
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
