//! Valid configs: what each key becomes, defaults included.

use std::path::PathBuf;
use std::time::Duration;

use super::{client, fails, parse, public, server};
use crate::config::Mode;

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
