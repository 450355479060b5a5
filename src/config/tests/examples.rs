//! The shipped example configs parse once a deployment fills them in.

use std::path::{Path, PathBuf};

use super::{key_dir, public};
use crate::config::{Config, Mode};

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
