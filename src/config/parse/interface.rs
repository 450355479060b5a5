//! `[interface]`: the TUN device, our key, timers, hooks and the worker's
//! identity. The checks run in the order of the keys in the man page, so
//! the first mistake reported is the first a reader meets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use mlvpn_keys::PrivateKey;
use toml::Spanned;

use super::context::Ctx;
use super::raw::RawInterface;
use super::values::{parse_cidrs, resolve, valid_name, value_text};
use super::{
    ConfigError, DEFAULT_CHROOT, DEFAULT_HOOK_TIMEOUT, DEFAULT_KEEPALIVE, DEFAULT_PATH_TIMEOUT,
    DEFAULT_REKEY_AFTER, DEFAULT_USER,
};
use crate::config::units::{parse_duration, parse_size};
use crate::config::Interface;
use crate::proto::tunnel::REKEY_AFTER_TIME;

pub(super) fn parse_interface(cx: &Ctx<'_>, raw: RawInterface) -> Result<Interface, ConfigError> {
    let name = raw.name.get_ref();
    if !valid_name(name, 15) {
        return cx.err(
            raw.name.span(),
            format!("interface.name: \"{name}\" must be 1 to 15 characters of A-Z a-z 0-9 _ . -"),
        );
    }
    let address = parse_address(cx, &raw.address)?;
    let (private_key_file, private_key) = load_private_key(cx, &raw.private_key_file)?;
    let mtu = parse_mtu(cx, raw.mtu.as_ref(), &address)?;
    let timers = parse_timers(cx, &raw)?;
    let up_script = parse_script(cx, raw.up_script.as_ref(), "up_script")?;
    let down_script = parse_script(cx, raw.down_script.as_ref(), "down_script")?;
    let chroot = parse_chroot(cx, raw.chroot.as_ref())?;
    let user = parse_user(cx, raw.user.as_ref())?;
    let control_socket = match &raw.control_socket {
        Some(s) if s.get_ref().is_empty() => return cx.err(s.span(), "interface.control_socket: empty path"),
        Some(s) => resolve(cx.file, s.get_ref()),
        None => PathBuf::from(format!("/run/mlvpn-rs/{name}.sock")),
    };
    Ok(Interface {
        name: name.clone(),
        address,
        private_key_file,
        private_key,
        user,
        chroot,
        up_script,
        down_script,
        hook_timeout: timers.hook_timeout,
        control_socket,
        mtu,
        keepalive: timers.keepalive,
        path_timeout: timers.path_timeout,
        rekey_after: timers.rekey_after,
    })
}

/// `address`: at least one CIDR.
fn parse_address(cx: &Ctx<'_>, raw: &Spanned<Vec<Spanned<String>>>) -> Result<Vec<IpNet>, ConfigError> {
    let address = parse_cidrs(cx, "interface.address", raw.get_ref())?;
    if address.is_empty() {
        return cx.err(
            raw.span(),
            "interface.address: empty; expected at least one, e.g. [\"10.42.0.2/30\"]",
        );
    }
    Ok(address)
}

/// `private_key_file` (relative to the config), read now; the file is
/// checked as it is read, its directories too.
fn load_private_key(cx: &Ctx<'_>, raw: &Spanned<String>) -> Result<(PathBuf, PrivateKey), ConfigError> {
    let key_path = resolve(cx.file, raw.get_ref());
    let private_key = mlvpn_keys::read_private_key_file(&key_path)
        .map_err(|e| e.to_string())
        .and_then(|k| {
            mlvpn_privsep::trusted_file::check_parents("private key file", &key_path)
                .map_err(|e| e.to_string())?;
            Ok(k)
        })
        .or_else(|e| cx.err(raw.span(), format!("interface.private_key_file: {e}")))?;
    Ok((key_path, private_key))
}

/// `mtu`: none means derived from the paths (`Config::tun_mtu`).
fn parse_mtu(
    cx: &Ctx<'_>,
    raw: Option<&Spanned<toml::Value>>,
    address: &[IpNet],
) -> Result<Option<u16>, ConfigError> {
    let Some(v) = raw else {
        return Ok(None);
    };
    let text = value_text(v.get_ref()).unwrap_or_default();
    // IPv6 requires links of at least 1280 bytes (RFC 8200).
    let min = if address.iter().any(|a| a.addr().is_ipv6()) {
        1280
    } else {
        576
    };
    match parse_size(&text) {
        Ok(m) if (min..=9000).contains(&m) => Ok(Some(m as u16)),
        _ => cx.err(
            v.span(),
            format!("interface.mtu: expected a number of bytes from {min} to 9000"),
        ),
    }
}

/// The interface's durations, defaults filled in.
struct Timers {
    keepalive: Duration,
    path_timeout: Duration,
    rekey_after: Duration,
    hook_timeout: Duration,
}

/// `keepalive`, `path_timeout` (longer than keepalive), `rekey_after`
/// (1 s to the protocol's limit) and `hook_timeout`.
fn parse_timers(cx: &Ctx<'_>, raw: &RawInterface) -> Result<Timers, ConfigError> {
    let keepalive = parse_timer(cx, raw.keepalive.as_ref(), "keepalive", DEFAULT_KEEPALIVE)?;
    let path_timeout = parse_timer(
        cx,
        raw.path_timeout.as_ref(),
        "path_timeout",
        DEFAULT_PATH_TIMEOUT,
    )?;
    if path_timeout <= keepalive {
        let span = raw
            .path_timeout
            .as_ref()
            .or(raw.keepalive.as_ref())
            .map(|s| s.span())
            .unwrap_or(0..0);
        return cx.err(
            span,
            "interface.path_timeout: must be longer than keepalive (e.g. 3 x keepalive)",
        );
    }
    let rekey_after = parse_timer(cx, raw.rekey_after.as_ref(), "rekey_after", DEFAULT_REKEY_AFTER)?;
    if !(Duration::from_secs(1)..=REKEY_AFTER_TIME).contains(&rekey_after) {
        let span = raw.rekey_after.as_ref().map(|s| s.span()).unwrap_or(0..0);
        return cx.err(span, "interface.rekey_after: must be between 1s and 120s");
    }
    let hook_timeout = parse_timer(
        cx,
        raw.hook_timeout.as_ref(),
        "hook_timeout",
        DEFAULT_HOOK_TIMEOUT,
    )?;
    Ok(Timers {
        keepalive,
        path_timeout,
        rekey_after,
        hook_timeout,
    })
}

/// One duration key, or its default.
fn parse_timer(
    cx: &Ctx<'_>,
    raw: Option<&Spanned<toml::Value>>,
    key: &str,
    default: &str,
) -> Result<Duration, ConfigError> {
    match raw {
        Some(s) => value_text(s.get_ref())
            .ok_or_else(|| "expected a duration such as \"250ms\" or \"3s\"".to_string())
            .and_then(|t| parse_duration(&t).map_err(|e| e.to_string()))
            .or_else(|e| cx.err(s.span(), format!("interface.{key}: {e}"))),
        None => Ok(parse_duration(default).expect("valid default")),
    }
}

/// `up_script` / `down_script`: absolute paths (root runs them; whether
/// they are root's own is `Config::check_hook_scripts`).
fn parse_script(
    cx: &Ctx<'_>,
    raw: Option<&Spanned<String>>,
    key: &str,
) -> Result<Option<PathBuf>, ConfigError> {
    match raw {
        None => Ok(None),
        Some(s) if !Path::new(s.get_ref()).is_absolute() => cx.err(
            s.span(),
            format!("interface.{key}: \"{}\" must be an absolute path", s.get_ref()),
        ),
        Some(s) => Ok(Some(PathBuf::from(s.get_ref()))),
    }
}

/// `chroot`: an absolute directory other than `/`.
fn parse_chroot(cx: &Ctx<'_>, raw: Option<&Spanned<String>>) -> Result<PathBuf, ConfigError> {
    match raw {
        Some(s) if !Path::new(s.get_ref()).is_absolute() || s.get_ref() == "/" => cx.err(
            s.span(),
            "interface.chroot: expected an absolute path to an empty directory (not /)",
        ),
        Some(s) => Ok(PathBuf::from(s.get_ref())),
        None => Ok(PathBuf::from(DEFAULT_CHROOT)),
    }
}

/// `user`: the worker's, never root.
fn parse_user(cx: &Ctx<'_>, raw: Option<&Spanned<String>>) -> Result<String, ConfigError> {
    match raw {
        Some(u) if u.get_ref().is_empty() || u.get_ref() == "root" => cx.err(
            u.span(),
            "interface.user: the worker must run as an unprivileged user, not root",
        ),
        Some(u) => Ok(u.get_ref().clone()),
        None => Ok(DEFAULT_USER.to_string()),
    }
}
