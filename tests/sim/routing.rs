//! Cryptokey routing by longest prefix, and a concentrator with a fleet of
//! peers: 10 000 configured, a few hundred handshaking at once.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use mlvpn_keys::PrivateKey;
use mlvpn_rs::proto::clock::Clock;
use mlvpn_rs::proto::tunnel::{PathSpec, PeerSpec, Reconfig, TunnelSettings, REKEY_AFTER_TIME};
use mlvpn_rs::proto::Mode;
use mlvpn_rs::proto::{SocketId, Tunnel, TunnelConfig};

use crate::fixtures::rng_seed;
use crate::net::{ipv4_packet, packet_id, Net};
use crate::{client, key, server, server_sockets, states, status, SERVER_IP};

#[test]
fn the_longest_prefix_routes_whatever_the_config_order() {
    let start = Instant::now();
    let mut net = Net::new(start);
    // Peer A's /16 is listed before peer B's /32 inside it.
    let srv = server(
        start,
        vec![
            (key(2).public_key(), "10.42.0.0/16"),
            (key(3).public_key(), "10.42.1.5/32"),
        ],
    );
    net.add(srv, server_sockets());
    let (a, sa) = client(start, 2, &["10.101.0.1:40000"], &[]);
    let (b, sb) = client(start, 3, &["10.101.0.7:40000"], &[]);
    net.add(a, sa);
    net.add(b, sb);
    net.run_for(Duration::from_secs(1));
    let b_ip = Ipv4Addr::new(10, 42, 1, 5);
    let a_ip = Ipv4Addr::new(10, 42, 7, 7);
    for i in 0..300 {
        assert!(net.tun_send(0, &ipv4_packet(SERVER_IP, b_ip, i, 200)));
        assert!(net.tun_send(0, &ipv4_packet(SERVER_IP, a_ip, 1000 + i, 200)));
    }
    net.run_for(Duration::from_millis(100));
    let ids = |net: &Net, n: usize| {
        net.nodes[n]
            .delivered
            .iter()
            .map(|p| packet_id(p))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&net, 2), (0..300).collect::<Vec<_>>(), "B gets its /32");
    assert_eq!(
        ids(&net, 1),
        (1000..1300).collect::<Vec<_>>(),
        "A gets the rest of its /16"
    );

    // Inbound: A may not send as B (WireGuard's rule), B may.
    net.tun_send(1, &ipv4_packet(b_ip, SERVER_IP, 5000, 200));
    net.tun_send(1, &ipv4_packet(a_ip, SERVER_IP, 5001, 200));
    net.tun_send(2, &ipv4_packet(b_ip, SERVER_IP, 5002, 200));
    net.run_for(Duration::from_millis(100));
    assert_eq!(ids(&net, 0), [5001, 5002]);
    assert_eq!(status(&net, 0).drops.source_not_allowed, 1);
}

/// Private key of fleet member `i`.
fn fleet_key(i: usize) -> PrivateKey {
    // Not in byte 0: X25519 clamps its low 3 bits away.
    let mut b = [0x5a; 32];
    b[1..9].copy_from_slice(&(i as u64).to_le_bytes());
    PrivateKey::from_bytes(b)
}

/// Inner address of fleet member `i`.
fn fleet_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 100, (i >> 8) as u8, i as u8)
}

fn fleet_peers(n: usize) -> Vec<PeerSpec> {
    (0..n)
        .map(|i| PeerSpec {
            public_key: fleet_key(i).public_key(),
            allowed_ips: vec![IpNet::new(fleet_ip(i).into(), 32).unwrap()],
        })
        .collect()
}

/// A one-path client for fleet member `i`, on its own address.
fn fleet_client(start: Instant, i: usize) -> (Tunnel, Vec<SocketAddr>) {
    let private_key = fleet_key(i);
    let cfg = TunnelConfig {
        mode: Mode::Client,
        rng_seed: rng_seed(&private_key),
        private_key,
        settings: TunnelSettings {
            keepalive: Duration::from_secs(1),
            path_timeout: Duration::from_secs(3),
            rekey_after: REKEY_AFTER_TIME,
            peers: vec![PeerSpec {
                public_key: key(1).public_key(),
                allowed_ips: vec!["10.0.0.0/8".parse().unwrap()],
            }],
            paths: vec![PathSpec {
                name: "wan".into(),
                socket: SocketId::new(0),
                endpoint: server_sockets()[0],
                bandwidth_up: None,
                fallback: false,
            }],
        },
    };
    let local: SocketAddr = format!("10.201.{}.{}:40000", i >> 8, i & 255).parse().unwrap();
    let t = Tunnel::new(cfg, Clock::new(start, 1_700_000_000_000_000_000), start);
    (t, vec![local])
}

#[test]
fn a_server_with_10000_peers_handshakes_hundreds_at_once_routes_each_and_reloads() {
    const FLEET: usize = 10_000;
    const ACTIVE: usize = 300;
    let start = Instant::now();
    let mut net = Net::new(start);
    let srv = Tunnel::new(
        TunnelConfig {
            mode: Mode::Server,
            private_key: key(1),
            settings: TunnelSettings {
                keepalive: Duration::from_secs(1),
                path_timeout: Duration::from_secs(3),
                rekey_after: REKEY_AFTER_TIME,
                peers: fleet_peers(FLEET),
                paths: vec![],
            },
            rng_seed: rng_seed(&key(1)),
        },
        Clock::new(start, 1_700_000_000_000_000_000),
        start,
    );
    net.add(srv, server_sockets());
    // The last peers of the config come up, all at the same instant.
    let members: Vec<usize> = (FLEET - ACTIVE..FLEET).collect();
    for &i in &members {
        let (c, s) = fleet_client(start, i);
        net.add(c, s);
    }
    net.run_for(Duration::from_secs(2));
    for n in 1..=ACTIVE {
        assert_eq!(states(&status(&net, n)), ["up"], "client node {n}");
    }

    // One packet each way per member, each to the right one.
    let send_round = |net: &mut Net, base: u64| {
        for (k, &i) in members.iter().enumerate() {
            let id = base + i as u64;
            assert!(net.tun_send(0, &ipv4_packet(SERVER_IP, fleet_ip(i), id, 120)));
            assert!(net.tun_send(k + 1, &ipv4_packet(fleet_ip(i), SERVER_IP, id, 120)));
        }
        net.run_for(Duration::from_millis(50));
    };
    send_round(&mut net, 0);
    for (k, &i) in members.iter().enumerate() {
        let got: Vec<u64> = net.nodes[k + 1].delivered.iter().map(|p| packet_id(p)).collect();
        assert_eq!(got, [i as u64], "member {i}");
    }
    let mut at_server: Vec<u64> = net.nodes[0].delivered.iter().map(|p| packet_id(p)).collect();
    at_server.sort();
    assert_eq!(at_server, members.iter().map(|&i| i as u64).collect::<Vec<_>>());
    let s = status(&net, 0);
    assert_eq!(s.peers.len(), FLEET);
    // 300 initiations at once put the server under load: it asked for
    // cookies (each client retried with one at once); nothing else dropped.
    assert!(s.drops.handshake_cookie_sent > 0);
    assert_eq!(s.drops.total(), s.drops.handshake_cookie_sent, "{:?}", s.drops);

    // A reload that adds one peer keeps every session: traffic flows at
    // once, without a handshake.
    let handshakes = |net: &Net| -> u64 {
        status(net, 0)
            .peers
            .iter()
            .flat_map(|p| &p.paths)
            .map(|p| p.handshakes)
            .sum()
    };
    let before = handshakes(&net);
    let mut peers = fleet_peers(FLEET + 1);
    peers.rotate_right(1);
    let report = net.nodes[0].tunnel.reconfigure(
        Reconfig {
            settings: TunnelSettings {
                keepalive: Duration::from_secs(1),
                path_timeout: Duration::from_secs(3),
                rekey_after: REKEY_AFTER_TIME,
                peers,
                paths: vec![],
            },
            closed_sockets: vec![],
            private_key: None,
        },
        net.now,
    );
    assert_eq!((report.peers_added, report.peers_removed), (1, 0));
    for n in &mut net.nodes {
        n.delivered.clear();
    }
    send_round(&mut net, 100_000);
    assert_eq!(net.nodes[0].delivered.len(), ACTIVE);
    assert!((1..=ACTIVE).all(|n| net.nodes[n].delivered.len() == 1));
    assert_eq!(handshakes(&net), before, "no session was dropped");
}
