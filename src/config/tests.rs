//! Config parsing: valid files (including the shipped examples) and one
//! check per class of mistake, each asserting the reported line and that the
//! message names the key.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mlvpn_keys::{write_private_key_file, PrivateKey};
use tempfile::TempDir;

use super::{Config, ConfigError, Mode};
use crate::test_support::can_chown;

/// Our key is `[7; 32]`, written to `k` (mode 0600) in a fresh directory.
fn key_dir() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_private_key_file(&dir.path().join("k"), &PrivateKey::from_bytes([7; 32])).unwrap();
    dir
}

fn public(seed: u8) -> String {
    PrivateKey::from_bytes([seed; 32]).public_key().to_string()
}

/// A client config; the comments give the line numbers tests refer to.
fn client() -> String {
    format!(
        r#"mode = "client"
[interface]
name = "mlvpn0"
address = ["10.42.0.2/30"]
private_key_file = "k"
user = "nobody"
control_socket = "/run/mlvpn-rs/mlvpn0.sock"

[[peer]]
public_key = "{peer}"

[[path]]
name = "dsl"
bind = "192.0.2.10:0"
endpoint = "203.0.113.1:5080"
bandwidth_up = "50mbit"

[[path]]
name = "lte"
bind = "198.51.100.7"
endpoint = "203.0.113.1:5081"
fallback = true
"#,
        peer = public(9)
    )
}
// Lines: 1 mode, 2 [interface], 3 name, 4 address, 5 private_key_file,
// 6 user, 7 control_socket, 9 [[peer]], 10 public_key, 12 [[path]],
// 13 name, 14 bind, 15 endpoint, 16 bandwidth_up, 18 [[path]], 19 name,
// 20 bind, 21 endpoint, 22 fallback.

/// A server config with two peers.
fn server() -> String {
    format!(
        r#"mode = "server"
[interface]
name = "mlvpn0"
address = ["10.42.0.1/30", "fd42::1/64"]
private_key_file = "k"
mtu = 1400
keepalive = "250ms"
path_timeout = "1s"
[[peer]]
public_key = "{a}"
allowed_ips = ["10.42.0.2/32"]
[[peer]]
public_key = "{b}"
allowed_ips = ["10.42.0.6/32", "fd42::6/128"]
[[path]]
name = "isp1"
bind = "10.101.0.2:5080"
[[path]]
name = "isp2"
bind = "[::]:5081"
"#,
        a = public(9),
        b = public(10)
    )
}
// Lines: 6 mtu, 7 keepalive, 8 path_timeout, 9 [[peer]], 10 public_key,
// 11 allowed_ips, 13 public_key, 15 [[path]], 16 name, 17 bind, 19 name,
// 20 bind.

fn parse(text: &str) -> Result<Config, ConfigError> {
    let dir = key_dir();
    Config::parse(text, &dir.path().join("c.toml"))
}

/// Asserts that `text` is refused on `line` with a message containing
/// `needle`, in the `FILE:LINE: message` form.
#[track_caller]
fn fails(text: String, line: usize, needle: &str) {
    let e = parse(&text).expect_err("config should be refused");
    let shown = e.to_string();
    assert_eq!(e.line, Some(line), "{shown}");
    assert!(shown.contains(needle), "{shown:?} should mention {needle:?}");
    assert!(
        shown.starts_with(&format!("{}:{line}: ", e.file.display())),
        "{shown}"
    );
}

#[test]
fn valid_client() {
    let c = parse(&client()).unwrap();
    assert_eq!(c.mode, Mode::Client);
    let i = &c.interface;
    assert_eq!(i.name, "mlvpn0");
    assert_eq!(i.address, vec!["10.42.0.2/30".parse().unwrap()]);
    assert_eq!(i.keepalive, Duration::from_secs(1));
    assert_eq!(i.path_timeout, Duration::from_secs(3));
    assert_eq!(i.user, "nobody");
    assert_eq!(i.mtu, None);
    assert_eq!(i.chroot, PathBuf::from("/run/mlvpn-rs/empty"));
    assert_eq!(i.hook_timeout, Duration::from_secs(10));
    assert_eq!(i.control_socket, PathBuf::from("/run/mlvpn-rs/mlvpn0.sock"));
    assert!(i.private_key_file.ends_with("k") && i.private_key_file.is_absolute());
    assert_eq!(i.private_key.public_key().to_string(), public(7));
    assert_eq!(c.peers.len(), 1);
    assert_eq!(c.peers[0].public_key.to_string(), public(9));
    assert_eq!(
        c.peers[0].allowed_ips,
        vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()],
        "client default"
    );
    let (dsl, lte) = (&c.paths[0], &c.paths[1]);
    assert_eq!(dsl.name, "dsl");
    assert_eq!(dsl.bind, "192.0.2.10:0".parse().unwrap());
    assert_eq!(dsl.endpoint, Some("203.0.113.1:5080".parse().unwrap()));
    assert_eq!(dsl.bandwidth_up, Some(50_000_000));
    assert!(!dsl.fallback);
    assert_eq!(lte.bind, "198.51.100.7:0".parse().unwrap());
    assert_eq!(lte.bandwidth_up, None);
    assert!(lte.fallback);
}

#[test]
fn valid_server() {
    let c = parse(&server()).unwrap();
    assert_eq!(c.mode, Mode::Server);
    assert_eq!(c.interface.mtu, Some(1400));
    assert_eq!(c.interface.keepalive, Duration::from_millis(250));
    assert_eq!(c.interface.path_timeout, Duration::from_secs(1));
    assert_eq!(
        c.interface.control_socket,
        PathBuf::from("/run/mlvpn-rs/mlvpn0.sock")
    );
    assert_eq!(c.peers.len(), 2);
    assert_eq!(c.peers[1].allowed_ips.len(), 2);
    assert_eq!(c.paths[0].bind, "10.101.0.2:5080".parse().unwrap());
    assert_eq!(c.paths[1].bind, "[::]:5081".parse().unwrap());
    assert!(c.paths.iter().all(|p| p.endpoint.is_none()));
}

#[test]
fn units_accept_integers_and_strings() {
    let c = parse(
        &client()
            .replace("\"50mbit\"", "2000000")
            .replace("user = \"nobody\"", "mtu = \"1280\"\nkeepalive = \"500ms\""),
    )
    .unwrap();
    assert_eq!(c.paths[0].bandwidth_up, Some(2_000_000));
    assert_eq!(c.interface.mtu, Some(1280));
    assert_eq!(c.interface.keepalive, Duration::from_millis(500));
}

/// The shipped examples parse once the placeholders a deployment fills in
/// are replaced (as tests/demo.sh does).
#[test]
fn example_configs_parse() {
    let dir = key_dir();
    for (side, other) in [("client", "SERVER"), ("server", "CLIENT")] {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("conf/{side}.toml"));
        let text = std::fs::read_to_string(&example)
            .unwrap()
            .replace(&format!("/etc/mlvpn-rs/{side}.key"), "k");
        let file = dir.path().join("c.toml");
        let e = Config::parse(&text, &file).unwrap_err().to_string();
        assert!(
            e.contains(&format!("\"@{other}_PUBLIC_KEY@\" is a placeholder")),
            "{e}"
        );
        let text = text.replace(&format!("@{other}_PUBLIC_KEY@"), &public(9));
        let c = Config::parse(&text, &file).unwrap();
        assert_eq!(c.interface.name, "mlvpn0");
        assert_eq!(c.interface.user, "nobody");
        assert_eq!(
            c.interface.control_socket,
            PathBuf::from("/run/mlvpn-rs/mlvpn0.sock")
        );
        let names: Vec<_> = c.paths.iter().map(|p| p.name.as_str()).collect();
        if side == "client" {
            assert_eq!(c.mode, Mode::Client);
            assert_eq!(c.interface.address, vec!["10.42.0.2/30".parse().unwrap()]);
            assert_eq!(names, ["dsl", "lte"]);
            assert_eq!(c.paths[0].bind, "10.101.0.1:0".parse().unwrap());
            assert_eq!(c.paths[0].endpoint, Some("10.101.0.2:5080".parse().unwrap()));
            assert_eq!(c.paths[1].bind, "10.102.0.1:0".parse().unwrap());
            assert_eq!(c.paths[1].endpoint, Some("10.102.0.2:5081".parse().unwrap()));
        } else {
            assert_eq!(c.mode, Mode::Server);
            assert_eq!(c.interface.address, vec!["10.42.0.1/30".parse().unwrap()]);
            assert_eq!(names, ["isp1", "isp2"]);
            assert_eq!(c.paths[0].bind, "10.101.0.2:5080".parse().unwrap());
            assert_eq!(c.paths[1].bind, "10.102.0.2:5081".parse().unwrap());
        }
    }
}

/// The full-tunnel client example parses into a client whose paths each
/// name their uplink device and whose peer routes everything.
#[test]
fn full_tunnel_example_parses() {
    let dir = key_dir();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/client-full-tunnel.toml");
    let text = std::fs::read_to_string(&example)
        .unwrap()
        .replace("/etc/mlvpn-rs/client.key", "k")
        .replace("@SERVER_PUBLIC_KEY@", &public(9));
    let c = Config::parse(&text, &dir.path().join("c.toml")).unwrap();
    assert_eq!(c.mode, Mode::Client);
    let all: Vec<ipnet::IpNet> = vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()];
    assert_eq!(c.peers[0].allowed_ips, all);
    assert!(c.paths.iter().all(|p| p.device.is_some()), "{:?}", c.paths);
}

#[test]
fn syntax_and_type_errors() {
    fails(client().replace("\"client\"", "client"), 1, "mode");
    fails(
        client().replace("user = \"nobody\"", "colour = \"blue\""),
        6,
        "unknown key `colour`",
    );
    fails(
        client().replace("user = \"nobody\"", "colour = \"blue\""),
        6,
        "private_key_file",
    );
    fails(
        client().replace("[interface]", "[interfaces]"),
        2,
        "unknown key `interfaces`",
    );
    fails(
        client().replace("name = \"mlvpn0\"\n", ""),
        2,
        "missing required key `name`",
    );
    fails(
        client().replace("bind = \"198.51.100.7\"\n", ""),
        18,
        "[[path]]: missing required key `bind`",
    );
    fails(
        client().replace("fallback = true", "fallback = \"yes\""),
        22,
        "path.fallback",
    );
    fails(
        client().replace("[\"10.42.0.2/30\"]", "\"10.42.0.2/30\""),
        4,
        "interface.address",
    );
    fails(
        client().replace("name = \"lte\"", "name = \"lte\"\nname = \"x\""),
        20,
        "duplicate key `name`",
    );
    // A missing top-level key has no line.
    let e = parse(&client().replace("mode = \"client\"\n", "")).unwrap_err();
    assert_eq!(e.line, None, "{e}");
    assert!(e.to_string().contains("missing required key `mode`"), "{e}");
}

#[test]
fn interface_mistakes() {
    let c = client;
    fails(c().replace("\"client\"", "\"clinet\""), 1, "mode");
    fails(
        c().replace("\"mlvpn0\"", "\"a-very-long-interface-name\""),
        3,
        "interface.name",
    );
    fails(c().replace("\"mlvpn0\"", "\"mlvpn 0\""), 3, "interface.name");
    fails(
        c().replace("10.42.0.2/30", "10.42.0.300/30"),
        4,
        "interface.address",
    );
    fails(c().replace("10.42.0.2/30", "10.42.0.2"), 4, "not a CIDR");
    fails(c().replace("[\"10.42.0.2/30\"]", "[]"), 4, "interface.address");
    fails(c().replace("\"k\"", "\"missing.key\""), 5, "private_key_file");
    fails(c().replace("\"nobody\"", "\"root\""), 6, "unprivileged");
    fails(
        c().replace("user = \"nobody\"", "mtu = 70000"),
        6,
        "interface.mtu",
    );
    fails(c().replace("user = \"nobody\"", "mtu = 500"), 6, "576");
    let v6 = c().replace("[\"10.42.0.2/30\"]", "[\"10.42.0.2/30\", \"fd42::2/64\"]");
    fails(v6.replace("user = \"nobody\"", "mtu = 1000"), 6, "1280");
    fails(
        c().replace("user = \"nobody\"", "keepalive = \"5\""),
        6,
        "needs a unit",
    );
    fails(
        c().replace("user = \"nobody\"", "keepalive = 5"),
        6,
        "needs a unit",
    );
    fails(
        c().replace("user = \"nobody\"", "keepalive = \"5 weeks\""),
        6,
        "interface.keepalive",
    );
    fails(
        c().replace("user = \"nobody\"", "path_timeout = \"1s\""),
        6,
        "path_timeout",
    );
    fails(
        c().replace("user = \"nobody\"", "keepalive = \"5s\""),
        6,
        "longer than keepalive",
    );
    fails(
        c().replace("user = \"nobody\"", "up_script = \"up.sh\""),
        6,
        "absolute",
    );
}

#[test]
fn peer_mistakes() {
    fails(
        client().replace("public_key = \"", "public_key = \"x"),
        10,
        "peer.public_key",
    );
    fails(
        client().replace(&public(9), "AAAA"),
        10,
        "decodes to 3 bytes, expected 32",
    );
    fails(
        client().replace(&public(9), "@SERVER_PUBLIC_KEY@"),
        10,
        "placeholder",
    );
    fails(client().replace(&public(9), &public(7)), 10, "our own public key");
    let two = client().replace(
        "\n[[path]]\nname = \"dsl\"",
        "[[peer]]\npublic_key = \"AAAA\"\n[[path]]\nname = \"dsl\"",
    );
    fails(two, 11, "exactly one [[peer]]");
    fails(
        client().replace(
            "\n\n[[path]]\nname = \"dsl\"",
            "\nallowed_ips = [\"nope\"]\n[[path]]\nname = \"dsl\"",
        ),
        11,
        "peer.allowed_ips",
    );
    fails(server().replace(&public(10), &public(9)), 13, "duplicate peer");
    fails(
        server().replace("allowed_ips = [\"10.42.0.2/32\"]\n", ""),
        10,
        "allowed_ips",
    );
    fails(
        server().replace("[\"10.42.0.2/32\"]", "[]"),
        11,
        "peer.allowed_ips",
    );
}

#[test]
fn the_same_prefix_on_two_peers_is_refused_naming_both_lines() {
    // Peer b (line 14) repeats peer a's prefix (line 11), host bits aside.
    let text = server().replace("[\"10.42.0.6/32\", ", "[\"10.42.0.2/32\", ");
    fails(text, 14, "is also in the allowed_ips of the peer at line 11");
    let text = server()
        .replace("[\"10.42.0.2/32\"]", "[\"10.42.1.0/24\"]")
        .replace("[\"10.42.0.6/32\", ", "[\"10.42.1.77/24\", ");
    fails(text, 14, "10.42.1.0/24 is also in");
    // Nested prefixes are fine (the longest match decides), and so is a
    // prefix repeated within one peer.
    let nested = server()
        .replace("[\"10.42.0.2/32\"]", "[\"10.42.0.0/16\", \"10.42.0.0/16\"]")
        .replace("[\"10.42.0.6/32\", ", "[\"10.42.1.5/32\", ");
    parse(&nested).unwrap();
}

#[test]
fn path_mistakes() {
    fails(
        client().replace("name = \"lte\"", "name = \"dsl\""),
        19,
        "duplicate path name",
    );
    fails(client().replace("name = \"lte\"", "name = \"\""), 19, "path.name");
    fails(
        client().replace("endpoint = \"203.0.113.1:5080\"\n", ""),
        13,
        "endpoint",
    );
    fails(
        client().replace("203.0.113.1:5080", "203.0.113.1"),
        15,
        "path.endpoint",
    );
    fails(
        client().replace("203.0.113.1:5080", "203.0.113.1:0"),
        15,
        "path.endpoint",
    );
    fails(client().replace("50mbit", "50 furlongs"), 16, "bandwidth_up");
    fails(client().replace("\"50mbit\"", "0"), 16, "bandwidth_up");
    fails(client().replace("\"50mbit\"", "true"), 16, "bandwidth_up");
    fails(client().replace("192.0.2.10:0", "somewhere"), 14, "path.bind");
    fails(
        client().replace("192.0.2.10:0", "192.0.2.10:99999"),
        14,
        "path.bind",
    );
    fails(
        server().replace("10.101.0.2:5080", "10.101.0.2"),
        17,
        "needs a port",
    );
    fails(
        server().replace("[::]:5081", "10.101.0.2:5080"),
        20,
        "clashes with 10.101.0.2:5080",
    );
    fails(server().replace("[::]:5081", "0.0.0.0:5080"), 20, "clashes");
    fails(
        format!("{}endpoint = \"1.2.3.4:5\"\n", server()),
        21,
        "no endpoint",
    );
}

#[test]
fn missing_sections_have_no_line() {
    let text = client();
    let e = parse(&text[..text.find("[[path]]").unwrap()]).unwrap_err();
    assert_eq!(e.line, None);
    assert!(
        e.to_string().ends_with(": no [[path]]: expected at least one"),
        "{e}"
    );
    let e = parse(&text.replace("[[peer]]\npublic_key", "# public_key")).unwrap_err();
    assert_eq!(e.line, None);
    assert!(e.to_string().contains("no [[peer]]"), "{e}");
}

#[test]
fn group_readable_key_is_refused() {
    let dir = key_dir();
    let key = dir.path().join("k");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = Config::parse(&client(), &dir.path().join("c.toml")).unwrap_err();
    assert_eq!(e.line, Some(5));
    let shown = e.to_string();
    assert!(shown.contains("interface.private_key_file: "), "{shown}");
    assert!(
        shown.contains("readable by group or others (mode 0644)"),
        "{shown}"
    );
    assert!(shown.contains(&format!("chmod 600 {}", key.display())), "{shown}");
}

#[test]
fn load_reads_the_file_and_reports_missing_ones() {
    let dir = key_dir();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, client()).unwrap();
    assert_eq!(Config::load(&file).unwrap().file, file);
    let e = Config::load(&dir.path().join("nope.toml")).unwrap_err();
    assert_eq!(e.line, None);
    assert!(e.to_string().contains("nope.toml: cannot open"), "{e}");
    assert_eq!(
        super::control_socket_of(&file).unwrap(),
        PathBuf::from("/run/mlvpn-rs/mlvpn0.sock")
    );
}

/// Keys documented in man/mlvpn-rs.conf.5, per table, with the `.Ql` default
/// when the page gives one: (table, key, default).
fn documented_keys() -> Vec<(String, String, Option<String>)> {
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man/mlvpn-rs.conf.5"))
        .expect("man/mlvpn-rs.conf.5");
    let mut table = None;
    let mut keys: Vec<(String, String, Option<String>)> = Vec::new();
    let mut lines = page.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(title) = line.strip_prefix(".Ss ") {
            table = Some(if title.contains("[interface]") {
                "interface"
            } else if title.contains("[[peer]]") {
                "peer"
            } else if title.contains("[[path]]") {
                "path"
            } else {
                ""
            });
        } else if let (Some(t), Some(rest)) = (table, line.strip_prefix(".It Cm ")) {
            let key = rest.split_whitespace().next().unwrap().to_string();
            keys.push((t.to_string(), key, None));
        } else if line.starts_with("Default") && line.ends_with(':') {
            if let Some(v) = lines.peek().and_then(|l| l.strip_prefix(".Ql ")) {
                let v = v.trim_end_matches(" .").to_string();
                keys.last_mut().expect("a default follows a key").2 = Some(v);
            }
        } else if line.starts_with(".Sh ") && table.is_some() {
            table = None;
        }
    }
    keys
}

#[test]
fn man_page_documents_exactly_the_accepted_keys() {
    let documented: std::collections::BTreeSet<(String, String)> =
        documented_keys().into_iter().map(|(t, k, _)| (t, k)).collect();
    let accepted: std::collections::BTreeSet<(String, String)> = super::parse::accepted_keys()
        .into_iter()
        .flat_map(|(t, ks)| ks.iter().map(move |k| (t.to_string(), k.to_string())))
        .collect();
    let undocumented: Vec<_> = accepted.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&accepted).collect();
    assert!(
        undocumented.is_empty(),
        "keys missing from mlvpn-rs.conf(5): {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "mlvpn-rs.conf(5) documents keys the parser refuses: {unknown:?}"
    );
    assert!(accepted.len() >= 20, "{accepted:?}");
}

#[test]
fn documented_defaults_are_the_code_defaults() {
    // Setting a key to its documented default must change nothing.
    let dir = key_dir();
    let parse_here = |text: &str| format!("{:?}", Config::parse(text, &dir.path().join("c.toml")).unwrap());
    let mut checked = 0;
    for (table, key, default) in documented_keys() {
        let Some(default) = default else { continue };
        let value = match key.as_str() {
            "fallback" => default.clone(),
            "allowed_ips" => format!(
                "[{}]",
                default
                    .split(", ")
                    .map(|v| format!("\"{v}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => format!("\"{default}\""),
        };
        // The base client without the key, and with it set to the default.
        let base: String = client()
            .lines()
            .filter(|l| !l.starts_with(&format!("{key} =")))
            .map(|l| format!("{l}\n"))
            .collect();
        let header = match table.as_str() {
            "interface" => "[interface]\n",
            "peer" => "[[peer]]\n",
            "path" => "[[path]]\n",
            t => panic!("default documented for top-level key {t}.{key}"),
        };
        let with = base.replacen(header, &format!("{header}{key} = {value}\n"), 1);
        assert_eq!(
            parse_here(&base),
            parse_here(&with),
            "documented default of {table}.{key}: {value}"
        );
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} defaults checked");
}

#[test]
fn default_mtu_follows_the_paths_address_family() {
    let c = parse(&client()).unwrap();
    assert_eq!(c.tun_mtu(), 1500 - 20 - 8 - 56, "IPv4 paths");
    let s = parse(&server()).unwrap();
    assert_eq!(s.tun_mtu(), 1400, "configured wins");
    let v6 = server().replace("mtu = 1400\n", "");
    assert_eq!(
        parse(&v6).unwrap().tun_mtu(),
        1500 - 40 - 8 - 56,
        "an IPv6 path ([::]:5081)"
    );
}

#[test]
fn path_device_is_an_interface_name() {
    let ok = client().replace(
        "bind = \"192.0.2.10:0\"\n",
        "bind = \"0.0.0.0:0\"\ndevice = \"eth1\"\n",
    );
    assert_eq!(parse(&ok).unwrap().paths[0].device.as_deref(), Some("eth1"));
    let long = client().replace(
        "bind = \"192.0.2.10:0\"\n",
        "bind = \"192.0.2.10:0\"\ndevice = \"a-very-long-ifname\"\n",
    );
    fails(long, 15, "path.device");
}

/// A server config with `n` peers (distinct keys, one IPv4 and one IPv6
/// address each), as a concentrator's generated file looks.
fn fleet(n: usize) -> String {
    let mut text = String::from(
        "mode = \"server\"\n[interface]\nname = \"mlvpn0\"\naddress = [\"10.100.0.1/16\", \"fd42::1/64\"]\n\
         private_key_file = \"k\"\n[[path]]\nname = \"isp1\"\nbind = \"10.101.0.2:5080\"\n",
    );
    for i in 0..n {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
        let key = mlvpn_keys::PublicKey(key);
        text += &format!(
            "[[peer]]\npublic_key = \"{key}\"\nallowed_ips = [\"10.{}.{}.{}/32\", \"fd42::{:x}/128\"]\n",
            101 + i / 65536,
            (i / 256) % 256,
            i % 256,
            i + 2
        );
    }
    text
}

#[test]
fn a_concentrator_config_of_10000_peers_loads_and_a_duplicate_is_found() {
    let dir = key_dir();
    let file = dir.path().join("fleet.toml");
    let text = fleet(10_000);
    assert!(text.len() > 1 << 20, "a realistic fleet file is over 1 MiB");
    std::fs::write(&file, &text).unwrap();
    let c = Config::load(&file).unwrap();
    assert_eq!(c.peers.len(), 10_000);
    // The first peer again, at the end: named by its line.
    let first = text.find("[[peer]]").unwrap();
    let again = &text[first..first + text[first..].find("\n[[peer]]").unwrap() + 1];
    let dup = text.clone() + again;
    let line = dup.lines().count() - 1;
    let e = Config::parse(&dup, &file).unwrap_err();
    assert_eq!(e.line, Some(line), "{e}");
    assert!(e.to_string().contains("duplicate peer"), "{e}");
}

#[test]
fn a_file_over_16_mib_is_refused_clearly() {
    let dir = key_dir();
    let file = dir.path().join("huge.toml");
    let mut text = client();
    text += &"#".repeat(super::MAX_CONFIG_FILE);
    std::fs::write(&file, text).unwrap();
    let e = Config::load(&file).unwrap_err();
    assert_eq!(e.line, None);
    assert!(
        e.to_string().ends_with("larger than 16 MiB; not a config file"),
        "{e}"
    );
}

#[test]
fn more_paths_than_the_tunnel_uses_are_refused() {
    let mut text = server();
    for i in 0..31 {
        text += &format!("[[path]]\nname = \"x{i}\"\nbind = \"10.9.0.{}:5080\"\n", i + 1);
    }
    // 2 + 30 paths are fine, the 33rd is not.
    let ok = text[..text.rfind("[[path]]").unwrap()].to_string();
    assert_eq!(parse(&ok).unwrap().paths.len(), 32);
    let line = text.lines().count() - 2;
    fails(text, line, "at most 32 [[path]] tables");
}

#[test]
fn a_config_or_key_others_could_write_is_refused_with_what_to_do() {
    let dir = key_dir();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, client()).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).unwrap();
    let e = Config::load(&file).unwrap_err().to_string();
    assert!(
        e.contains("config file")
            && e.contains("mode 0664")
            && e.contains(&format!("chmod go-w {}", file.display())),
        "{e}"
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    Config::load(&file).unwrap();
    // The key's directory writable by others: the key could be replaced.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = Config::load(&file).unwrap_err().to_string();
    assert!(e.contains("directory above the config file"), "{e}");
}

#[test]
fn a_config_or_key_owned_by_another_user_is_refused() {
    if !can_chown("a_config_or_key_owned_by_another_user_is_refused") {
        return;
    }
    let dir = key_dir();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, client()).unwrap();
    let nobody = Some(nix::unistd::Uid::from_raw(65534));
    nix::unistd::chown(&file, nobody, None).unwrap();
    let e = Config::load(&file).unwrap_err().to_string();
    assert!(
        e.contains(&format!("config file {} is owned by uid 65534", file.display()))
            && e.contains(&format!("chown root {}", file.display())),
        "{e}"
    );
    nix::unistd::chown(&file, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
    let key = dir.path().join("k");
    nix::unistd::chown(&key, nobody, None).unwrap();
    let e = Config::load(&file).unwrap_err();
    assert_eq!(e.line, Some(5), "{e}");
    assert!(e.to_string().contains("is owned by uid 65534"), "{e}");
}
