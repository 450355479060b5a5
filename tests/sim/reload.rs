//! Reloading a running tunnel's configuration (what SIGHUP does in the
//! daemon): what did not change keeps its sessions, the rest follows.

use std::net::Ipv4Addr;
use std::time::Duration;

use ipnet::IpNet;
use mlvpn_rs::proto::tunnel::{
    Event, PathSpec, PeerSpec, Reconfig, TunnelSettings, HEADROOM, OVERHEAD, REKEY_AFTER_TIME,
};
use mlvpn_rs::proto::{PathId, SocketId};

use crate::net::{ipv4_packet, packet_id, socket_map, Net};
use crate::{
    addr, client, key, server_for, server_sockets, states, status, two_path_net, CLIENT_IP, SERVER_IP,
};
use std::time::Instant;

fn client_peer() -> Vec<PeerSpec> {
    vec![PeerSpec {
        public_key: key(1).public_key(),
        allowed_ips: vec!["10.42.0.0/24".parse().unwrap()],
    }]
}

fn path(name: &str, socket: u32, endpoint: &str) -> PathSpec {
    PathSpec {
        name: name.into(),
        socket: SocketId::new(socket),
        endpoint: addr(endpoint),
        bandwidth_up: None,
        fallback: false,
    }
}

/// A reload with the tests' timers that closes the sockets `closed`.
fn reconfig(peers: Vec<PeerSpec>, paths: Vec<PathSpec>, closed: &[u32]) -> Reconfig {
    Reconfig {
        settings: TunnelSettings {
            keepalive: Duration::from_secs(1),
            path_timeout: Duration::from_secs(3),
            rekey_after: REKEY_AFTER_TIME,
            peers,
            paths,
        },
        closed_sockets: closed.iter().map(|&s| SocketId::new(s)).collect(),
        private_key: None,
    }
}

/// Sends `n` packets client → server, 1 ms apart, from id `first`.
fn send(net: &mut Net, first: u64, n: u64) {
    for i in first..first + n {
        assert!(net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, i, 400)));
        net.run_for(Duration::from_millis(1));
    }
}

#[test]
fn reload_adds_and_removes_client_paths_and_keeps_the_unchanged_ones_sessions() {
    let mut net = two_path_net();
    send(&mut net, 0, 200);
    let before = status(&net, 1);
    let p0_handshakes = before.peers[0].paths[0].handshakes;
    let p0_tx = before.peers[0].paths[0].tx_packets;

    // p1 is removed (its socket closed), p2 added on a new socket (id 2);
    // p0 is unchanged but gets a bandwidth cap.
    let mut p0 = path("p0", 0, "10.101.0.2:5080");
    p0.bandwidth_up = Some(50_000_000);
    let report = net.nodes[1].tunnel.reconfigure(
        reconfig(client_peer(), vec![p0, path("p2", 2, "10.102.0.2:5081")], &[1]),
        net.now,
    );
    net.nodes[1].sockets = socket_map([(0, addr("10.101.0.1:40000")), (2, addr("10.103.0.1:40002"))]);
    assert_eq!(report.paths_added, ["p2"]);
    assert_eq!(report.paths_removed, ["p1"]);
    assert_eq!(report.paths_updated, ["p0"]);
    assert_eq!((report.peers_added, report.peers_removed), (0, 0));
    // Traffic keeps flowing through the reload on p0, the new path comes up.
    send(&mut net, 200, 800);
    net.run_for(Duration::from_millis(200));
    let after = status(&net, 1);
    assert_eq!(states(&after), ["up", "up"]);
    assert_eq!(after.peers[0].paths[1].name, "p2");
    assert_eq!(
        after.peers[0].paths[0].handshakes, p0_handshakes,
        "p0 kept its session"
    );
    assert!(after.peers[0].paths[0].tx_packets > p0_tx);
    assert!(after.peers[0].paths[1].tx_packets > 0, "p2 carries traffic");
    let mut got: Vec<u64> = net.nodes[0].delivered.iter().map(|p| packet_id(p)).collect();
    got.sort();
    assert_eq!(
        got,
        (0..1000).collect::<Vec<_>>(),
        "nothing lost across the reload"
    );
    // The server learned the new path's address from its handshake.
    let s = status(&net, 0);
    assert!(s.peers[0]
        .paths
        .iter()
        .any(|p| p.name == "p2" && p.endpoint == Some("10.103.0.1:40002".parse().unwrap())));
}

#[test]
fn reload_with_a_changed_endpoint_re_handshakes_only_that_path() {
    let mut net = two_path_net();
    send(&mut net, 0, 100);
    let before = status(&net, 1);
    let report = net.nodes[1].tunnel.reconfigure(
        reconfig(
            client_peer(),
            // p1 now goes to the server's first socket.
            vec![path("p0", 0, "10.101.0.2:5080"), path("p1", 1, "10.101.0.2:5080")],
            &[],
        ),
        net.now,
    );
    assert_eq!(report.paths_replaced, ["p1"]);
    assert!(report.paths_added.is_empty() && report.paths_removed.is_empty());
    send(&mut net, 100, 400);
    net.run_for(Duration::from_millis(200));
    let after = status(&net, 1);
    assert_eq!(states(&after), ["up", "up"]);
    assert_eq!(
        after.peers[0].paths[0].handshakes,
        before.peers[0].paths[0].handshakes
    );
    assert_eq!(after.peers[0].paths[1].handshakes, 1, "p1 handshook again, once");
    assert_eq!(net.nodes[0].delivered.len(), 500);
}

#[test]
fn reload_adds_and_removes_peers_on_a_server() {
    let start = Instant::now();
    let mut net = Net::new(start);
    net.add(server_for(start, &[2]), server_sockets());
    let (c1, s1) = client(start, 2, &["10.101.0.1:40000", "10.102.0.1:40001"], &[]);
    let (c2, s2) = client(start, 3, &["10.101.0.7:40000", "10.102.0.7:40001"], &[]);
    net.add(c1, s1);
    net.add(c2, s2);
    net.run_for(Duration::from_secs(1));
    assert_eq!(states(&status(&net, 1)), ["up", "up"]);
    assert_eq!(
        states(&status(&net, 2)),
        ["handshaking", "handshaking"],
        "unknown key refused"
    );

    let peer = |k: u8, ip: &str| PeerSpec {
        public_key: key(k).public_key(),
        allowed_ips: vec![ip.parse::<IpNet>().unwrap()],
    };
    let report = net.nodes[0].tunnel.reconfigure(
        reconfig(
            vec![peer(2, "10.42.0.2/32"), peer(3, "10.42.0.3/32")],
            vec![],
            &[],
        ),
        net.now,
    );
    assert_eq!((report.peers_added, report.peers_removed), (1, 0));
    net.run_for(Duration::from_secs(2));
    assert_eq!(states(&status(&net, 2)), ["up", "up"], "the added peer connects");
    let c3 = Ipv4Addr::new(10, 42, 0, 3);
    for i in 0..50 {
        assert!(net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, i, 100)));
        assert!(net.tun_send(2, &ipv4_packet(c3, SERVER_IP, 1000 + i, 100)));
    }
    net.run_for(Duration::from_millis(100));
    assert_eq!(net.nodes[0].delivered.len(), 100, "both peers' traffic arrives");

    // Removing the first peer: its sessions are gone, the other's stay.
    let report = net.nodes[0]
        .tunnel
        .reconfigure(reconfig(vec![peer(3, "10.42.0.3/32")], vec![], &[]), net.now);
    assert_eq!((report.peers_added, report.peers_removed), (0, 1));
    net.nodes[0].delivered.clear();
    for i in 0..50 {
        assert!(net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, i, 100)));
        assert!(net.tun_send(2, &ipv4_packet(c3, SERVER_IP, 1000 + i, 100)));
    }
    net.run_for(Duration::from_millis(100));
    assert_eq!(net.nodes[0].delivered.len(), 50);
    assert!(net.nodes[0].delivered.iter().all(|p| packet_id(p) >= 1000));
    let s = status(&net, 0);
    assert_eq!(s.peers.len(), 1);
    assert!(
        s.drops.unknown_index > 0,
        "the removed peer's packets are dropped"
    );
}

#[test]
fn a_server_forgets_paths_on_a_listening_socket_it_closed() {
    let mut net = two_path_net();
    let report = net.nodes[0].tunnel.reconfigure(
        reconfig(
            vec![PeerSpec {
                public_key: key(2).public_key(),
                allowed_ips: vec!["10.42.0.2/32".parse().unwrap()],
            }],
            vec![],
            &[1],
        ),
        net.now,
    );
    net.nodes[0].sockets = socket_map([(0, addr("10.101.0.2:5080"))]);
    assert_eq!(report.paths_removed, ["p1"]);
    send(&mut net, 0, 100);
    net.run_for(Duration::from_secs(4));
    // The client's p1 (towards the closed socket) goes down, p0 carries all.
    assert_eq!(states(&status(&net, 1)), ["up", "down"]);
    assert_eq!(status(&net, 0).peers[0].paths.len(), 1);
    assert_eq!(net.nodes[0].delivered.len(), 100);
}

/// Each path's stable id, by name, from the events `node` logged since the
/// last call.
fn path_ids_seen(net: &mut Net, node: usize) -> Vec<(String, PathId)> {
    let mut seen = Vec::new();
    while let Some(e) = net.nodes[node].tunnel.poll_event() {
        if let Event::PathUp { path, path_id, .. } | Event::HandshakeCompleted { path, path_id, .. } = e {
            if !seen.contains(&(path.clone(), path_id)) {
                seen.push((path, path_id));
            }
        }
    }
    seen.sort();
    seen
}

#[test]
fn a_kept_path_keeps_its_id_through_a_reload_and_a_replaced_one_gets_a_new_one() {
    let mut net = two_path_net();
    send(&mut net, 0, 100);
    let before = path_ids_seen(&mut net, 1);
    assert_eq!(before.len(), 2, "{before:?}");
    let (p0, p1) = (before[0].1, before[1].1);
    assert_ne!(p0, p1);
    net.nodes[1].tunnel.reconfigure(
        reconfig(
            client_peer(),
            vec![path("p0", 0, "10.101.0.2:5080"), path("p1", 1, "10.101.0.2:5080")],
            &[],
        ),
        net.now,
    );
    send(&mut net, 100, 400);
    net.run_for(Duration::from_millis(200));
    let after = path_ids_seen(&mut net, 1);
    let new_p1 = after
        .iter()
        .find(|(name, _)| name == "p1")
        .expect("p1 handshook again")
        .1;
    assert!(new_p1 != p0 && new_p1 != p1, "a replaced path is a new path");
    // Data goes out naming the path it is on: p0 (socket 0) by its old id.
    let mut on: Vec<(SocketId, Option<PathId>)> = Vec::new();
    for i in 0..40 {
        let packet = ipv4_packet(CLIENT_IP, SERVER_IP, 1000 + i, 400);
        let mut buf = vec![0u8; packet.len() + OVERHEAD];
        buf[HEADROOM..HEADROOM + packet.len()].copy_from_slice(&packet);
        let now = net.now;
        let t = net.nodes[1]
            .tunnel
            .handle_tun_packet(&mut buf, packet.len(), now)
            .expect("sent");
        if !on.contains(&(t.socket, t.path)) {
            on.push((t.socket, t.path));
        }
    }
    on.sort();
    assert_eq!(
        on,
        [(SocketId::new(0), Some(p0)), (SocketId::new(1), Some(new_p1))]
    );
}
