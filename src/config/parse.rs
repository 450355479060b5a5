//! From TOML text to a validated [`Config`].
//!
//! Parsing goes through "raw" serde structs whose fields keep their source
//! spans (`toml::Spanned`), so that every semantic check can name the line of
//! the key it is about.

use crate::proto::tunnel::{MAX_PATHS_PER_PEER, REKEY_AFTER_TIME};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use mlvpn_keys::PublicKey;
use serde::Deserialize;
use toml::Spanned;

use super::units::{parse_duration, parse_rate, parse_size};
use super::{Config, Interface, Mode, PathConfig, PeerConfig};

/// A config mistake: renders as `FILE:LINE: message`, or `FILE: message`
/// when no single line is at fault (a missing section, an unreadable file),
/// the form editors and `mlvpn-rs check` users expect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", .file.display(), .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based.
    pub line: Option<usize>,
    pub message: String,
}

/// The daemon and the command line report errors as text: a config error
/// becomes its rendered `FILE:LINE: message`, so `?` works there.
impl From<ConfigError> for String {
    fn from(e: ConfigError) -> String {
        e.to_string()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    mode: Spanned<String>,
    interface: Spanned<RawInterface>,
    #[serde(default)]
    peer: Vec<Spanned<RawPeer>>,
    #[serde(default)]
    path: Vec<Spanned<RawPath>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterface {
    name: Spanned<String>,
    address: Spanned<Vec<Spanned<String>>>,
    private_key_file: Spanned<String>,
    user: Option<Spanned<String>>,
    chroot: Option<Spanned<String>>,
    up_script: Option<Spanned<String>>,
    down_script: Option<Spanned<String>>,
    hook_timeout: Option<Spanned<toml::Value>>,
    control_socket: Option<Spanned<String>>,
    mtu: Option<Spanned<toml::Value>>,
    keepalive: Option<Spanned<toml::Value>>,
    path_timeout: Option<Spanned<toml::Value>>,
    rekey_after: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    public_key: Spanned<String>,
    allowed_ips: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPath {
    name: Spanned<String>,
    bind: Spanned<String>,
    endpoint: Option<Spanned<String>>,
    bandwidth_up: Option<Spanned<toml::Value>>,
    device: Option<Spanned<String>>,
    fallback: Option<Spanned<bool>>,
}

/// Default keepalive interval and path timeout (documented in the man page).
pub const DEFAULT_KEEPALIVE: &str = "1s";
pub const DEFAULT_PATH_TIMEOUT: &str = "3s";
pub const DEFAULT_REKEY_AFTER: &str = "120s";
pub const DEFAULT_HOOK_TIMEOUT: &str = "10s";
pub const DEFAULT_USER: &str = "nobody";
pub const DEFAULT_CHROOT: &str = "/run/mlvpn-rs/empty";

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())].matches('\n').count() + 1
    }

    /// A TOML or type error, prefixed with the key (or `[table]`) of its
    /// line, since serde's messages name neither.
    fn syntax_error(&self, e: &toml::de::Error) -> ConfigError {
        let mut message = e
            .message()
            .trim()
            .replace('\n', "; ")
            .replace("missing field", "missing required key")
            .replace("unknown field", "unknown key");
        let span = e.span().filter(|s| s.start < self.text.len());
        let mut line = span.as_ref().map(|s| self.line_of(s.start));
        // Only the first line: a table's span runs to its last key.
        let spanned = span
            .and_then(|s| self.text.get(s))
            .and_then(|t| t.lines().next())
            .unwrap_or("")
            .trim();
        if is_table_header(spanned) {
            // toml points a missing key at its table's header.
            message = format!("{spanned}: {message}");
        } else if message.starts_with("missing required key") {
            // A missing top-level key has a meaningless span.
            line = None;
        } else if let Some(l) = line {
            // Name the key as `table.key`, like the semantic errors do.
            let lines: Vec<&str> = self.text.lines().take(l).collect();
            let table = lines
                .iter()
                .rev()
                .map(|t| t.trim())
                .find(|t| is_table_header(t))
                .map(|t| t.trim_start_matches('[').trim_end_matches(']'))
                .filter(|t| !message.contains(&format!("`{t}`")));
            let key = lines
                .last()
                .and_then(|t| t.split_once('='))
                .map(|(k, _)| k.trim())
                .filter(|k| !k.is_empty() && !message.contains(&format!("`{k}`")));
            let prefix = match (table, key) {
                (Some(t), Some(k)) => format!("{t}.{k}"),
                (Some(t), None) => t.to_string(),
                (None, Some(k)) => k.to_string(),
                (None, None) => String::new(),
            };
            if !prefix.is_empty() {
                message = format!("{prefix}: {message}");
            }
        }
        ConfigError {
            file: self.file.to_path_buf(),
            line,
            message,
        }
    }

    /// An error about the file as a whole.
    fn err_file<T>(&self, message: impl Into<String>) -> Result<T, ConfigError> {
        Err(ConfigError {
            file: self.file.to_path_buf(),
            line: None,
            message: message.into(),
        })
    }

    fn err<T>(&self, span: std::ops::Range<usize>, message: impl Into<String>) -> Result<T, ConfigError> {
        Err(ConfigError {
            file: self.file.to_path_buf(),
            line: Some(self.line_of(span.start)),
            message: message.into(),
        })
    }
}

/// `[name]` or `[[name]]` (not an array value such as `["a"]`).
fn is_table_header(s: &str) -> bool {
    let name = s.trim_start_matches('[').trim_end_matches(']');
    s.starts_with('[')
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
}

fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
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

fn value_text(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

impl Config {
    /// Reads and validates a config file (and the private key it names).
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = read_text(file)?;
        Config::parse(&text, file)
    }

    /// Validates config text; `file` names it in errors and anchors relative
    /// paths. Reads the private key file.
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let cx = Ctx { file, text };
        let raw: RawConfig = toml::from_str(text).map_err(|e| cx.syntax_error(&e))?;
        let mode = match raw.mode.get_ref().as_str() {
            "client" => Mode::Client,
            "server" => Mode::Server,
            other => {
                return cx.err(
                    raw.mode.span(),
                    format!("mode: \"{other}\" is not a mode; expected \"client\" or \"server\""),
                )
            }
        };
        let interface = parse_interface(&cx, raw.interface.into_inner())?;
        let peers = parse_peers(&cx, mode, &raw.peer, interface.private_key.public_key())?;
        check_prefixes_have_one_owner(&cx, &raw.peer)?;
        let paths = parse_paths(&cx, mode, &raw.path)?;
        Ok(Config {
            file: file.to_path_buf(),
            mode,
            interface,
            peers,
            paths,
        })
    }
}

fn parse_peers(
    cx: &Ctx<'_>,
    mode: Mode,
    raw: &[Spanned<RawPeer>],
    our_public: PublicKey,
) -> Result<Vec<PeerConfig>, ConfigError> {
    if raw.is_empty() {
        return cx.err_file(
            "no [[peer]]: a client needs its server's public key, a server one [[peer]] per client",
        );
    }
    if mode == Mode::Client && raw.len() > 1 {
        return cx.err(raw[1].span(), "a client has exactly one [[peer]] (its server)");
    }
    let mut peers: Vec<PeerConfig> = Vec::with_capacity(raw.len());
    // A concentrator has thousands of peers: duplicates by hash, not by scan.
    let mut seen: HashSet<PublicKey> = HashSet::with_capacity(raw.len());
    for p in raw.iter().map(Spanned::get_ref) {
        let key_span = p.public_key.span();
        let text = p.public_key.get_ref().trim();
        // The example configs carry @...@ placeholders for deployments to fill.
        if text.len() > 1 && text.starts_with('@') && text.ends_with('@') {
            return cx.err(
                key_span,
                format!(
                    "peer.public_key: \"{text}\" is a placeholder; replace it with the peer's key \
                     (`mlvpn-rs pubkey < KEYFILE` on the other side)"
                ),
            );
        }
        let public_key = match PublicKey::from_base64(text) {
            Ok(k) => k,
            Err(e) => {
                let msg = format!("peer.public_key: {e}; expected the output of `mlvpn-rs pubkey`");
                return cx.err(key_span, msg);
            }
        };
        if public_key == our_public {
            let msg = "peer.public_key: this is our own public key; expected the other side's";
            return cx.err(key_span, msg);
        }
        if !seen.insert(public_key) {
            return cx.err(key_span, "peer.public_key: duplicate peer");
        }
        let allowed_ips = match &p.allowed_ips {
            Some(list) => {
                let nets = parse_cidrs(cx, "peer.allowed_ips", list.get_ref())?;
                if nets.is_empty() {
                    return cx.err(list.span(), "peer.allowed_ips: empty; expected at least one CIDR");
                }
                nets
            }
            // A client routes everything by default (a full tunnel: the
            // parent installs policy routing so the paths' own datagrams
            // keep to their uplinks, see docs/routing.md).
            None if mode == Mode::Client => ["0.0.0.0/0", "::/0"]
                .iter()
                .map(|n| n.parse().expect("valid CIDR"))
                .collect(),
            None => {
                return cx.err(
                    key_span,
                    "peer: a server peer needs allowed_ips \
                     (the client's inner addresses, e.g. [\"10.42.0.2/32\"])",
                )
            }
        };
        peers.push(PeerConfig {
            public_key,
            allowed_ips,
        });
    }
    Ok(peers)
}

/// A prefix belongs to one peer: the same prefix (host bits aside) in two
/// peers' `allowed_ips` is refused, naming both lines. (Nested prefixes
/// are fine: the longest match decides.)
fn check_prefixes_have_one_owner(cx: &Ctx<'_>, raw: &[Spanned<RawPeer>]) -> Result<(), ConfigError> {
    let mut owner: std::collections::HashMap<IpNet, (usize, usize)> = std::collections::HashMap::new();
    for (i, p) in raw.iter().enumerate() {
        let Some(list) = &p.get_ref().allowed_ips else {
            continue;
        };
        for s in list.get_ref() {
            let Ok(net) = s.get_ref().parse::<IpNet>() else {
                continue;
            };
            match owner.entry(net.trunc()) {
                std::collections::hash_map::Entry::Occupied(e) if e.get().0 != i => {
                    let msg = format!(
                        "peer.allowed_ips: {} is also in the allowed_ips of the peer at line {}; \
                         a prefix belongs to one peer",
                        net.trunc(),
                        cx.line_of(e.get().1)
                    );
                    return cx.err(s.span(), msg);
                }
                std::collections::hash_map::Entry::Occupied(_) => {}
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert((i, s.span().start));
                }
            }
        }
    }
    Ok(())
}

fn parse_paths(cx: &Ctx<'_>, mode: Mode, raw: &[Spanned<RawPath>]) -> Result<Vec<PathConfig>, ConfigError> {
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
        if let Some(q) = paths.iter().find(|q| binds_clash(q.bind, bind)) {
            let msg = format!("path.bind: {bind} clashes with {} of path \"{}\"", q.bind, q.name);
            return cx.err(p.bind.span(), msg);
        }
        let endpoint = match (&p.endpoint, mode) {
            (Some(e), Mode::Client) => match e.get_ref().parse::<SocketAddr>() {
                Ok(a) if a.port() != 0 => Some(a),
                _ => {
                    let msg = format!(
                        "path.endpoint: \"{}\" is not an address with a port; expected \"IP:PORT\"",
                        e.get_ref()
                    );
                    return cx.err(e.span(), msg);
                }
            },
            (Some(e), Mode::Server) => {
                let msg = "path.endpoint: a server path has no endpoint (it learns the client's address)";
                return cx.err(e.span(), msg);
            }
            (None, Mode::Client) => {
                let msg = format!("path \"{name}\": a client path needs endpoint = \"SERVER_IP:PORT\"");
                return cx.err(p.name.span(), msg);
            }
            (None, Mode::Server) => None,
        };
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
        let bandwidth_up = match &p.bandwidth_up {
            Some(v) => match value_text(v.get_ref()).as_deref().map(parse_rate) {
                Some(Ok(rate)) => Some(rate),
                Some(Err(e)) => return cx.err(v.span(), format!("path.bandwidth_up: {e}")),
                None => return cx.err(v.span(), "path.bandwidth_up: expected a rate such as \"50mbit\""),
            },
            None => None,
        };
        let device = match &p.device {
            Some(d) => {
                let v = d.get_ref();
                let ok = !v.is_empty()
                    && v.len() <= 15
                    && v.chars().all(|c| c.is_ascii_graphic() && c != '/' && c != ':');
                if !ok {
                    return cx.err(
                        d.span(),
                        "path.device: expected a network interface name of 1 to 15 characters, e.g. \"eth1\"",
                    );
                }
                Some(v.clone())
            }
            None => None,
        };
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

fn parse_cidrs(cx: &Ctx<'_>, key: &str, list: &[Spanned<String>]) -> Result<Vec<IpNet>, ConfigError> {
    list.iter()
        .map(|s| {
            s.get_ref().parse::<IpNet>().or_else(|_| {
                cx.err(
                    s.span(),
                    format!(
                        "{key}: \"{}\" is not a CIDR; expected e.g. \"10.42.0.2/30\" or \"fd00::2/64\"",
                        s.get_ref()
                    ),
                )
            })
        })
        .collect()
}

fn parse_interface(cx: &Ctx<'_>, raw: RawInterface) -> Result<Interface, ConfigError> {
    let name = raw.name.get_ref();
    if !valid_name(name, 15) {
        return cx.err(
            raw.name.span(),
            format!("interface.name: \"{name}\" must be 1 to 15 characters of A-Z a-z 0-9 _ . -"),
        );
    }
    let address = parse_cidrs(cx, "interface.address", raw.address.get_ref())?;
    if address.is_empty() {
        return cx.err(
            raw.address.span(),
            "interface.address: empty; expected at least one, e.g. [\"10.42.0.2/30\"]",
        );
    }
    let key_path = resolve(cx.file, raw.private_key_file.get_ref());
    let private_key = mlvpn_keys::read_private_key_file(&key_path)
        .map_err(|e| e.to_string())
        .and_then(|k| {
            // The file is checked as it is read; its directories too.
            mlvpn_privsep::trusted_file::check_parents("private key file", &key_path)
                .map_err(|e| e.to_string())?;
            Ok(k)
        })
        .or_else(|e| {
            cx.err(
                raw.private_key_file.span(),
                format!("interface.private_key_file: {e}"),
            )
        })?;
    let mtu = match &raw.mtu {
        Some(v) => {
            let text = value_text(v.get_ref()).unwrap_or_default();
            // IPv6 requires links of at least 1280 bytes (RFC 8200).
            let min = if address.iter().any(|a| a.addr().is_ipv6()) {
                1280
            } else {
                576
            };
            match parse_size(&text) {
                Ok(m) if (min..=9000).contains(&m) => Some(m as u16),
                _ => {
                    return cx.err(
                        v.span(),
                        format!("interface.mtu: expected a number of bytes from {min} to 9000"),
                    )
                }
            }
        }
        None => None,
    };
    let duration = |v: &Option<Spanned<toml::Value>>, key: &str, default: &str| match v {
        Some(s) => value_text(s.get_ref())
            .ok_or_else(|| "expected a duration such as \"250ms\" or \"3s\"".to_string())
            .and_then(|t| parse_duration(&t).map_err(|e| e.to_string()))
            .or_else(|e| cx.err(s.span(), format!("interface.{key}: {e}"))),
        None => Ok(parse_duration(default).expect("valid default")),
    };
    let keepalive = duration(&raw.keepalive, "keepalive", DEFAULT_KEEPALIVE)?;
    let path_timeout = duration(&raw.path_timeout, "path_timeout", DEFAULT_PATH_TIMEOUT)?;
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
    let rekey_after = duration(&raw.rekey_after, "rekey_after", DEFAULT_REKEY_AFTER)?;
    if !(Duration::from_secs(1)..=REKEY_AFTER_TIME).contains(&rekey_after) {
        let span = raw.rekey_after.as_ref().map(|s| s.span()).unwrap_or(0..0);
        return cx.err(span, "interface.rekey_after: must be between 1s and 120s");
    }
    let hook_timeout = duration(&raw.hook_timeout, "hook_timeout", DEFAULT_HOOK_TIMEOUT)?;
    let script = |v: &Option<Spanned<String>>, key: &str| -> Result<Option<PathBuf>, ConfigError> {
        match v {
            None => Ok(None),
            Some(s) if !Path::new(s.get_ref()).is_absolute() => cx.err(
                s.span(),
                format!("interface.{key}: \"{}\" must be an absolute path", s.get_ref()),
            ),
            Some(s) => Ok(Some(PathBuf::from(s.get_ref()))),
        }
    };
    let up_script = script(&raw.up_script, "up_script")?;
    let down_script = script(&raw.down_script, "down_script")?;
    let chroot = match &raw.chroot {
        Some(s) if !Path::new(s.get_ref()).is_absolute() || s.get_ref() == "/" => {
            return cx.err(
                s.span(),
                "interface.chroot: expected an absolute path to an empty directory (not /)",
            );
        }
        Some(s) => PathBuf::from(s.get_ref()),
        None => PathBuf::from(DEFAULT_CHROOT),
    };
    let user = match &raw.user {
        Some(u) if u.get_ref().is_empty() || u.get_ref() == "root" => {
            return cx.err(
                u.span(),
                "interface.user: the worker must run as an unprivileged user, not root",
            );
        }
        Some(u) => u.get_ref().clone(),
        None => DEFAULT_USER.to_string(),
    };
    let control_socket = match &raw.control_socket {
        Some(s) if s.get_ref().is_empty() => return cx.err(s.span(), "interface.control_socket: empty path"),
        Some(s) => resolve(cx.file, s.get_ref()),
        None => PathBuf::from(format!("/run/mlvpn-rs/{name}.sock")),
    };
    Ok(Interface {
        name: name.clone(),
        address,
        private_key_file: key_path,
        private_key,
        user,
        chroot,
        up_script,
        down_script,
        hook_timeout,
        control_socket,
        mtu,
        keepalive,
        path_timeout,
        rekey_after,
    })
}

/// Relative paths in a config are relative to the config file's directory.
fn resolve(config_file: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    config_file
        .parent()
        .map(|d| d.join(p))
        .unwrap_or_else(|| p.to_path_buf())
}

/// Largest config file read: 16 MiB. A concentrator's 10 000 peers take
/// about 1.2 MB; anything much larger is not a config file.
pub const MAX_CONFIG_FILE: usize = 16 << 20;

/// Reads at most [`MAX_CONFIG_FILE`] bytes; refuses anything larger
/// clearly, and a file that someone other than root (or the user running
/// us) owns or could have written: root acts on it (hooks, routes).
fn read_text(file: &Path) -> Result<String, ConfigError> {
    use mlvpn_privsep::trusted_file;
    use std::io::Read;
    let err = |message: String| ConfigError {
        file: file.to_path_buf(),
        line: None,
        message,
    };
    let f = std::fs::File::open(file).map_err(|e| err(format!("cannot open: {e}")))?;
    let meta = f.metadata().map_err(|e| err(format!("cannot read: {e}")))?;
    trusted_file::check_metadata("config file", file, &meta)
        .and_then(|_| trusted_file::check_parents("config file", file))
        .map_err(|e| err(e.to_string()))?;
    let mut text = String::new();
    f.take(MAX_CONFIG_FILE as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| err(format!("cannot read: {e}")))?;
    if text.len() > MAX_CONFIG_FILE {
        return Err(err(format!(
            "larger than {} MiB; not a config file",
            MAX_CONFIG_FILE >> 20
        )));
    }
    Ok(text)
}

/// The control socket named by a config, without reading any key (for
/// `mlvpn-rs status`, which must not need the private key).
pub fn control_socket_of(file: &Path) -> Result<PathBuf, ConfigError> {
    #[derive(Deserialize)]
    struct Iface {
        name: Option<String>,
        control_socket: Option<String>,
    }
    #[derive(Deserialize)]
    struct Top {
        interface: Option<Iface>,
    }
    let text = read_text(file)?;
    let cx = Ctx { file, text: &text };
    let top: Top = toml::from_str(&text).map_err(|e| cx.syntax_error(&e))?;
    let iface = top.interface.ok_or_else(|| ConfigError {
        file: file.to_path_buf(),
        line: None,
        message: "no [interface]".into(),
    })?;
    Ok(match (iface.control_socket, iface.name) {
        (Some(s), _) => resolve(file, &s),
        (None, Some(n)) => PathBuf::from(format!("/run/mlvpn-rs/{n}.sock")),
        (None, None) => {
            return Err(ConfigError {
                file: file.to_path_buf(),
                line: None,
                message: "no interface.name".into(),
            })
        }
    })
}

/// The keys the parser accepts, per table (`""` = top level), read from the
/// raw structs themselves: the man page test compares them with the
/// documented ones.
#[cfg(test)]
pub(super) fn accepted_keys() -> Vec<(&'static str, &'static [&'static str])> {
    use serde::de::{self, Visitor};

    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Stop
        }
    }
    /// A deserializer that only records the field list of the struct asked for.
    struct Grab(Option<&'static [&'static str]>);
    impl<'de> de::Deserializer<'de> for &mut Grab {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    fn fields<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
        let mut g = Grab(None);
        let _ = T::deserialize(&mut g);
        g.0.expect("a struct")
    }
    vec![
        ("", &["mode"][..]),
        ("interface", fields::<RawInterface>()),
        ("peer", fields::<RawPeer>()),
        ("path", fields::<RawPath>()),
    ]
}
