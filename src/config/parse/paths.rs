//! `[[path]]` tables: names, binds that the kernel will accept side by
//! side, endpoints (client), rates and devices.

use std::net::{IpAddr, SocketAddr};

use toml::Spanned;

use super::context::Ctx;
use super::raw::RawPath;
use super::values::{valid_name, value_text};
use super::ConfigError;
use crate::config::units::parse_rate;
use crate::config::{Mode, PathConfig};
use crate::proto::tunnel::MAX_PATHS_PER_PEER;

pub(super) fn parse_paths(
    cx: &Ctx<'_>,
    mode: Mode,
    raw: &[Spanned<RawPath>],
) -> Result<Vec<PathConfig>, ConfigError> {
    if raw.is_empty() {
        return cx.err_file("no [[path]]: expected at least one");
    }
    if raw.len() > MAX_PATHS_PER_PEER {
        return cx.err(
            raw[MAX_PATHS_PER_PEER].span(),
            format!("path: at most {MAX_PATHS_PER_PEER} [[path]] tables"),
        );
    }
    let mut paths: Vec<PathConfig> = Vec::new();
    for p in raw.iter().map(Spanned::get_ref) {
        let name = p.name.get_ref();
        if !valid_name(name, 32) {
            let msg = format!("path.name: \"{name}\" must be 1 to 32 characters of A-Z a-z 0-9 _ . -");
            return cx.err(p.name.span(), msg);
        }
        if paths.iter().any(|q| &q.name == name) {
            return cx.err(
                p.name.span(),
                format!("path.name: duplicate path name \"{name}\""),
            );
        }
        let bind = path_bind(cx, mode, p, &paths)?;
        let endpoint = path_endpoint(cx, mode, p)?;
        if mode == Mode::Server {
            // A server's paths are created per client path from its
            // handshakes; its [[path]] tables are only listening sockets.
            if let Some(v) = &p.bandwidth_up {
                return cx.err(v.span(), "path.bandwidth_up: applies to a client's paths only");
            }
            if let Some(v) = &p.fallback {
                return cx.err(v.span(), "path.fallback: applies to a client's paths only");
            }
        }
        let bandwidth_up = path_bandwidth_up(cx, p)?;
        let device = path_device(cx, p)?;
        paths.push(PathConfig {
            name: name.clone(),
            bind,
            endpoint,
            bandwidth_up,
            device,
            fallback: p.fallback.as_ref().is_some_and(|f| *f.get_ref()),
        });
    }
    Ok(paths)
}

/// The local address: parses, has a port on a server, and does not clash
/// with an earlier path's.
fn path_bind(
    cx: &Ctx<'_>,
    mode: Mode,
    p: &RawPath,
    earlier: &[PathConfig],
) -> Result<SocketAddr, ConfigError> {
    let Some(bind) = parse_bind(p.bind.get_ref()) else {
        let msg = format!(
            "path.bind: \"{}\" is not an address; expected \"IP\", \"IP:PORT\" or \"[IPv6]:PORT\"",
            p.bind.get_ref()
        );
        return cx.err(p.bind.span(), msg);
    };
    if mode == Mode::Server && bind.port() == 0 {
        let msg = "path.bind: a server path needs a port to listen on (e.g. \"203.0.113.1:5080\")";
        return cx.err(p.bind.span(), msg);
    }
    if let Some(q) = earlier.iter().find(|q| binds_clash(q.bind, bind)) {
        let msg = format!("path.bind: {bind} clashes with {} of path \"{}\"", q.bind, q.name);
        return cx.err(p.bind.span(), msg);
    }
    Ok(bind)
}

/// The server's address: required on a client, refused on a server.
fn path_endpoint(cx: &Ctx<'_>, mode: Mode, p: &RawPath) -> Result<Option<SocketAddr>, ConfigError> {
    match (&p.endpoint, mode) {
        (Some(e), Mode::Client) => match e.get_ref().parse::<SocketAddr>() {
            Ok(a) if a.port() != 0 => Ok(Some(a)),
            _ => {
                let msg = format!(
                    "path.endpoint: \"{}\" is not an address with a port; expected \"IP:PORT\"",
                    e.get_ref()
                );
                cx.err(e.span(), msg)
            }
        },
        (Some(e), Mode::Server) => {
            let msg = "path.endpoint: a server path has no endpoint (it learns the client's address)";
            cx.err(e.span(), msg)
        }
        (None, Mode::Client) => {
            let name = p.name.get_ref();
            let msg = format!("path \"{name}\": a client path needs endpoint = \"SERVER_IP:PORT\"");
            cx.err(p.name.span(), msg)
        }
        (None, Mode::Server) => Ok(None),
    }
}

fn path_bandwidth_up(cx: &Ctx<'_>, p: &RawPath) -> Result<Option<u64>, ConfigError> {
    match &p.bandwidth_up {
        Some(v) => match value_text(v.get_ref()).as_deref().map(parse_rate) {
            Some(Ok(rate)) => Ok(Some(rate)),
            Some(Err(e)) => cx.err(v.span(), format!("path.bandwidth_up: {e}")),
            None => cx.err(v.span(), "path.bandwidth_up: expected a rate such as \"50mbit\""),
        },
        None => Ok(None),
    }
}

/// A network interface name as the kernel accepts it (IFNAMSIZ).
fn path_device(cx: &Ctx<'_>, p: &RawPath) -> Result<Option<String>, ConfigError> {
    let Some(d) = &p.device else {
        return Ok(None);
    };
    let v = d.get_ref();
    let ok =
        !v.is_empty() && v.len() <= 15 && v.chars().all(|c| c.is_ascii_graphic() && c != '/' && c != ':');
    if !ok {
        return cx.err(
            d.span(),
            "path.device: expected a network interface name of 1 to 15 characters, e.g. \"eth1\"",
        );
    }
    Ok(Some(v.clone()))
}

/// Two binds that the kernel would refuse side by side (without
/// SO_REUSEADDR): same non-zero port and same address, or a wildcard
/// address of the same family.
fn binds_clash(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip()
            || (a.is_ipv4() == b.is_ipv4() && (a.ip().is_unspecified() || b.ip().is_unspecified())))
}

/// `IP`, `IP:PORT`, `[IPv6]:PORT` or bare IPv6; missing port = 0.
fn parse_bind(s: &str) -> Option<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 0))
}
