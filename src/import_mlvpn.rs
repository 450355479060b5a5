//! `mlvpn-rs import-mlvpn FILE`: turns an MLVPN `mlvpn.conf` (INI: a
//! `[general]` section and one section per link) into an mlvpn-rs TOML
//! config. What has no equivalent becomes a comment saying why, so the
//! operator reviews one file instead of reading two manuals.
//!
//! MLVPN's shared password has no equivalent: mlvpn-rs authenticates with
//! X25519 keys, so the output names a key file and a peer public key
//! placeholder to fill in.

use std::fmt::Write;

use thiserror::Error;

/// Input larger than this is not an mlvpn.conf.
pub const MAX_INPUT: usize = 1 << 20;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ImportError {
    #[error("{0}: larger than {MAX_INPUT} bytes; not an mlvpn.conf")]
    TooLarge(String),
    #[error("{file}:{line}: {msg}")]
    Syntax { file: String, line: usize, msg: String },
    #[error("{0}: no [general] section with mode = \"client\" or \"server\"")]
    NoMode(String),
    #[error("{0}: no link section (one per uplink, e.g. [adsl])")]
    NoLinks(String),
}

/// One `[section]` with its `key = value` pairs, in file order.
struct Section {
    name: String,
    line: usize,
    keys: Vec<(String, String)>,
}

impl Section {
    fn get(&self, key: &str) -> Option<&str> {
        self.keys
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn parse_ini(text: &str, file: &str) -> Result<Vec<Section>, ImportError> {
    let mut sections: Vec<Section> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let err = |msg: &str| ImportError::Syntax {
            file: file.to_string(),
            line: i + 1,
            msg: msg.to_string(),
        };
        // Names and values are copied into the output (some into comments):
        // a control character would corrupt it. A CRLF line end is fine.
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(err("control character in the line (not a text config?)"));
        }
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .ok_or_else(|| err("section header without closing ']'"))?
                .trim();
            if name.is_empty() {
                return Err(err("empty section name"));
            }
            sections.push(Section {
                name: name.to_string(),
                line: i + 1,
                keys: Vec::new(),
            });
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| err("expected `key = value`, `[section]` or a # comment"))?;
        let section = sections
            .last_mut()
            .ok_or_else(|| err("key before any [section]"))?;
        let v = v.trim();
        // Quoted values keep everything inside the quotes; unquoted ones end
        // at a comment.
        let v = match v.chars().next() {
            Some(q @ ('"' | '\'')) => v[1..]
                .split_once(q)
                .map(|(inner, _)| inner)
                .ok_or_else(|| err("unterminated quoted value"))?,
            _ => v.split('#').next().unwrap_or("").trim(),
        };
        section.keys.push((k.trim().to_string(), v.to_string()));
    }
    Ok(sections)
}

/// A TOML basic string.
fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `host:port` as mlvpn-rs writes it (IPv6 in brackets).
fn host_port(host: &str, port: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Converts the text of an mlvpn.conf read from `file`.
pub fn convert(text: &str, file: &str) -> Result<String, ImportError> {
    if text.len() > MAX_INPUT {
        return Err(ImportError::TooLarge(file.to_string()));
    }
    let sections = parse_ini(text, file)?;
    let general = sections.iter().find(|s| s.name == "general");
    let mode = general
        .and_then(|g| g.get("mode"))
        .filter(|m| *m == "client" || *m == "server")
        .ok_or_else(|| ImportError::NoMode(file.to_string()))?;
    let client = mode == "client";
    let links: Vec<&Section> = sections
        .iter()
        .filter(|s| s.name != "general" && s.name != "filters")
        .collect();
    if links.is_empty() {
        return Err(ImportError::NoLinks(file.to_string()));
    }
    let g = general.expect("mode came from it");
    let mut o = String::new();
    let mut notes = String::new();
    write_interface(&mut o, &mut notes, file, mode, g);
    note_general_keys(&mut notes, g);
    if let Some(f) = sections.iter().find(|s| s.name == "filters") {
        for (k, v) in &f.keys {
            let _ = writeln!(
                notes,
                "# [filters] {k} = {v:?}: per-flow filters are not supported; not converted."
            );
        }
    }
    write_peer(&mut o, g, client);
    for link in &links {
        write_path(&mut o, link, client);
    }
    if !notes.is_empty() {
        let _ = writeln!(o, "\n# Not converted:\n{notes}");
    }
    Ok(o)
}

/// The header, `mode` and the `[interface]` table from `[general]`; an
/// MTU that is not a number goes to `notes`.
fn write_interface(o: &mut String, notes: &mut String, file: &str, mode: &str, g: &Section) {
    let name = g.get("interface_name").unwrap_or("mlvpn0");
    let _ = writeln!(
        o,
        "# Converted from {file} by `mlvpn-rs import-mlvpn`; review, then"
    );
    let _ = writeln!(
        o,
        "# check with `mlvpn-rs check -c THIS_FILE`. See mlvpn-rs.conf(5)."
    );
    let _ = writeln!(o, "mode = {}", q(mode));
    let _ = writeln!(o, "\n[interface]");
    let _ = writeln!(o, "name = {}", q(name));
    write_addresses(o, g);
    let _ = writeln!(
        o,
        "# MLVPN's shared password has no equivalent: each side has a key pair."
    );
    let _ = writeln!(o, "#   umask 077; mlvpn-rs genkey > /etc/mlvpn-rs/{name}.key");
    let _ = writeln!(
        o,
        "private_key_file = {}",
        q(&format!("/etc/mlvpn-rs/{name}.key"))
    );
    if let Some(path) = g.get("control_unix_path").filter(|p| !p.is_empty()) {
        let _ = writeln!(o, "control_socket = {}", q(path));
    }
    if let Some(mtu) = g.get("mtu") {
        write_mtu(o, notes, mtu);
    }
}

/// `address` from `ip4` and `ip6`, or a placeholder: MLVPN set them in a
/// script.
fn write_addresses(o: &mut String, g: &Section) {
    let addresses: Vec<String> = ["ip4", "ip6"]
        .iter()
        .filter_map(|k| g.get(k))
        .filter(|v| !v.is_empty())
        .map(q)
        .collect();
    if addresses.is_empty() {
        let _ = writeln!(
            o,
            "# MLVPN set addresses in its statuscommand script: put them here."
        );
        let _ = writeln!(o, "address = [\"@TUNNEL_ADDRESS@/30\"]");
    } else {
        let _ = writeln!(o, "address = [{}]", addresses.join(", "));
    }
}

/// MLVPN's MTU, commented out: mlvpn-rs derives a better one.
fn write_mtu(o: &mut String, notes: &mut String, mtu: &str) {
    match mtu.parse::<u16>() {
        Ok(m) => {
            let _ = writeln!(
                o,
                "# MLVPN mtu = {m}; mlvpn-rs computes 1416/1396 (room for its 56-byte overhead"
            );
            let _ = writeln!(
                o,
                "# and an IPv6 outer header): keep the computed value unless you know better."
            );
            let _ = writeln!(o, "# mtu = {m}");
        }
        Err(_) => {
            let _ = writeln!(notes, "# mtu = {mtu:?}: not a number; not converted.");
        }
    }
}

/// One note per `[general]` key that was not converted, saying why.
fn note_general_keys(notes: &mut String, g: &Section) {
    for (k, v) in &g.keys {
        let Some(note) = general_key_note(k, v) else {
            continue;
        };
        // A secret is never copied into the output.
        let shown = if k == "password" {
            "(not copied)".to_string()
        } else {
            format!("{v:?}")
        };
        let _ = writeln!(notes, "# [general] {k} = {shown}: {note}.");
    }
}

/// Why a `[general]` key has no mlvpn-rs equivalent (`None`: converted).
fn general_key_note(k: &str, v: &str) -> Option<String> {
    Some(match k {
        "mode" | "interface_name" | "ip4" | "ip6" | "control_unix_path" | "mtu" | "ip4_gateway"
        | "ip6_gateway" => return None,
        "password" => "not used: keys replace it (see private_key_file and public_key)".to_string(),
        "statuscommand" => format!(
            "hooks get the event in the environment (MLVPN_EVENT = tunnel_up, path_up, \
             path_down, tunnel_down; MLVPN_PATH), not as arguments: adapt {v}, then set \
             up_script and down_script"
        ),
        "timeout" => "a path carrying data is declared down after max(3 x SRTT, 200 ms) \
                      without a report; path_timeout (default 3s) covers idle paths"
            .into(),
        "reorder_buffer_size" => "resequencing is always on and adaptive (bounded at 4096 packets)".into(),
        "loss_tolerence" => "a path losing more than 20 % (and much more than the others) is \
                             demoted to lossy automatically"
            .into(),
        "latency_tolerence" => "the scheduler accounts for each path's delay; no threshold".into(),
        "cleartext_data" => "traffic is always encrypted".into(),
        "control_bind_host" | "control_bind_port" => {
            "no TCP status listener: use `mlvpn-rs status --json` or `--prometheus`".into()
        }
        "tuntap" if v == "tap" => "layer 2 (tap) is not supported: mlvpn-rs is a layer-3 tunnel".into(),
        "tuntap" => "mlvpn-rs always makes a tun (layer 3) device".into(),
        "protocol" => "paths are always UDP".into(),
        "loglevel" | "logfile" => "logs go to standard error; MLVPN_LOG sets the level".into(),
        _ => "unknown MLVPN key; not converted".into(),
    })
}

/// The `[[peer]]` table: a key placeholder, and allowed_ips from the
/// gateways MLVPN knew.
fn write_peer(o: &mut String, g: &Section, client: bool) {
    let _ = writeln!(o, "\n[[peer]]");
    let other = if client { "server" } else { "client" };
    let _ = writeln!(
        o,
        "# The {other}'s key: `mlvpn-rs pubkey < its.key`, run on the {other}."
    );
    let _ = writeln!(o, "public_key = \"@PEER_PUBLIC_KEY@\"");
    let gw: Vec<String> = [("ip4_gateway", 32), ("ip6_gateway", 128)]
        .iter()
        .filter_map(|(k, len)| g.get(k).map(|v| q(&format!("{v}/{len}"))))
        .collect();
    if client {
        let _ = writeln!(
            o,
            "# allowed_ips defaults to everything (0.0.0.0/0, ::/0); routes for the"
        );
        let _ = writeln!(o, "# networks behind the server were MLVPN statuscommand's job:");
        if !gw.is_empty() {
            let _ = writeln!(o, "allowed_ips = [{}]", gw.join(", "));
        }
    } else if gw.is_empty() {
        let _ = writeln!(o, "allowed_ips = [\"@CLIENT_TUNNEL_ADDRESS@/32\"]");
    } else {
        let _ = writeln!(
            o,
            "allowed_ips = [{}]  # the client's tunnel address(es)",
            gw.join(", ")
        );
    }
}

/// One `[[path]]` table per MLVPN link section.
fn write_path(o: &mut String, link: &Section, client: bool) {
    let _ = writeln!(o, "\n[[path]]  # MLVPN [{}] (line {})", link.name, link.line);
    let _ = writeln!(o, "name = {}", q(&link.name.chars().take(32).collect::<String>()));
    let host = link.get("bindhost").unwrap_or("0.0.0.0");
    let port = link.get("bindport").unwrap_or(if client { "0" } else { "5080" });
    let _ = writeln!(o, "bind = {}", q(&host_port(host, port)));
    if client {
        write_endpoint(o, link);
    }
    if let Some(bw) = link.get("bandwidth_upload").and_then(|b| b.parse::<u64>().ok()) {
        if bw > 0 && client {
            let _ = writeln!(
                o,
                "# MLVPN bandwidth_upload = {bw} bytes/s was a round-robin weight; mlvpn-rs\n\
                 # measures each path and this key only caps it. Uncomment to cap:\n\
                 # bandwidth_up = \"{}kbit\"",
                bw.saturating_mul(8) / 1000
            );
        }
    }
    if link.get("fallback_only").is_some_and(|v| v != "0") {
        if client {
            let _ = writeln!(o, "fallback = true");
        } else {
            let _ = writeln!(o, "# MLVPN fallback_only: a client-side setting in mlvpn-rs.");
        }
    }
    for (k, v) in &link.keys {
        let note = match k.as_str() {
            "bindhost" | "bindport" | "remotehost" | "remoteport" | "bandwidth_upload" | "fallback_only" => {
                continue
            }
            "timeout" => "failure detection is adaptive (see [general] timeout)",
            "bindfib" => "no FIB selection: bind selects the uplink's source address",
            _ => "unknown MLVPN key; not converted",
        };
        let _ = writeln!(o, "# {k} = {v:?}: {note}.");
    }
}

/// A client path's `endpoint` from `remotehost`/`remoteport`, or a
/// placeholder.
fn write_endpoint(o: &mut String, link: &Section) {
    match (link.get("remotehost"), link.get("remoteport")) {
        (Some(h), Some(p)) => {
            if h.parse::<std::net::IpAddr>().is_err() {
                let _ = writeln!(
                    o,
                    "# MLVPN remotehost {h:?} is a name: mlvpn-rs needs an address."
                );
            }
            let _ = writeln!(o, "endpoint = {}", q(&host_port(h, p)));
        }
        _ => {
            let _ = writeln!(
                o,
                "endpoint = \"@SERVER_ADDRESS@:5080\"  # no remotehost/remoteport in MLVPN"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Mode};
    use mlvpn_keys::{write_private_key_file, PrivateKey};

    fn sample(name: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name);
        std::fs::read_to_string(p).unwrap()
    }

    /// Converts, fills the placeholders as the operator would, and parses.
    fn import(name: &str) -> (String, Config) {
        let toml = convert(&sample(name), name).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k");
        write_private_key_file(&key, &PrivateKey::from_bytes([3; 32])).unwrap();
        let peer = PrivateKey::from_bytes([4; 32]).public_key().to_string();
        let filled = toml
            .replace("/etc/mlvpn-rs/mlvpn0.key", key.to_str().unwrap())
            .replace("@PEER_PUBLIC_KEY@", &peer);
        let config =
            Config::parse(&filled, &dir.path().join("c.toml")).unwrap_or_else(|e| panic!("{e}\n{filled}"));
        (toml, config)
    }

    #[test]
    fn client_sample_converts_to_a_valid_config() {
        let (toml, c) = import("mlvpn-client.conf");
        assert_eq!(c.mode, Mode::Client);
        assert_eq!(c.interface.name, "mlvpn0");
        assert_eq!(c.interface.address[0].to_string(), "10.42.43.2/30");
        assert_eq!(c.interface.control_socket.to_str(), Some("/var/run/mlvpn.sock"));
        let names: Vec<&str> = c.paths.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["adsl", "4g"]);
        assert_eq!(c.paths[0].endpoint.unwrap().to_string(), "203.0.113.10:5080");
        assert_eq!(c.paths[0].bind.to_string(), "192.168.1.2:0");
        assert!(!c.paths[0].fallback && c.paths[1].fallback);
        assert_eq!(c.paths[0].bandwidth_up, None, "a weight is not turned into a cap");
        assert_eq!(c.peers[0].allowed_ips[0].to_string(), "10.42.43.1/32");
        for why in [
            "password",
            "statuscommand",
            "reorder_buffer_size",
            "loss_tolerence",
            "control_bind_port",
            "udp port 5060",
            "491kbit",
        ] {
            assert!(toml.contains(why), "the output explains {why}:\n{toml}");
        }
    }

    #[test]
    fn server_sample_converts_to_a_valid_config() {
        let (_, c) = import("mlvpn-server.conf");
        assert_eq!(c.mode, Mode::Server);
        assert_eq!(c.interface.address.len(), 2);
        assert_eq!(c.paths.len(), 2);
        assert_eq!(c.paths[1].bind.to_string(), "203.0.113.10:5081");
        let allowed: Vec<String> = c.peers[0].allowed_ips.iter().map(|n| n.to_string()).collect();
        assert_eq!(allowed, ["10.42.43.2/32", "fd42:43::2/128"]);
    }

    #[test]
    fn bad_input_gets_a_clear_error() {
        let e = convert("[general]\nmode = \"client\"\nthis is not ini\n", "x.conf").unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.conf:3: expected `key = value`, `[section]` or a # comment"
        );
        assert!(matches!(convert("[general]\n", "x"), Err(ImportError::NoMode(_))));
        assert!(matches!(
            convert("[general]\nmode=client\n", "x"),
            Err(ImportError::NoLinks(_))
        ));
        assert!(matches!(
            convert("[general\n", "x"),
            Err(ImportError::Syntax { line: 1, .. })
        ));
        assert!(matches!(
            convert("k = \"open\n", "x"),
            Err(ImportError::Syntax { .. })
        ));
        let big = "#".repeat(MAX_INPUT + 1);
        assert!(matches!(convert(&big, "x"), Err(ImportError::TooLarge(_))));
    }

    #[test]
    fn control_characters_are_refused_and_huge_bandwidths_do_not_overflow() {
        // Found by fuzzing (config, findings 2 and 6).
        let e = convert(
            "[general]\nmode = \"client\"\nlatency_t\r\0erence = 300\n",
            "m.conf",
        )
        .unwrap_err();
        assert!(e.to_string().contains("m.conf:3"), "{e}");
        assert!(e.to_string().contains("control character"), "{e}");
        // CRLF line ends are fine.
        let crlf = "[general]\r\nmode = \"client\"\r\n[adsl]\r\nbindhost = \"192.0.2.1\"\r\nremotehost = \"198.51.100.1\"\r\nremoteport = 5080\r\n";
        convert(crlf, "m.conf").unwrap();
        let big = "[general]\nmode = \"client\"\n[adsl]\nbindhost = \"192.0.2.1\"\nremotehost = \"198.51.100.1\"\nremoteport = 5080\nbandwidth_upload = 18446744073709551615\n";
        convert(big, "m.conf").unwrap();
    }
}
