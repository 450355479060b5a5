//! Deterministic simulation tests of the protocol core: two (or three)
//! tunnels exchanging datagrams over simulated paths, in simulated time.

#[path = "../fixtures/mod.rs"]
mod fixtures;

mod dos;
mod forgery;
mod net;
mod reload;
mod restart;
mod routing;
mod split;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use fixtures::{
    addr, client_config, key, path, peer, server_config, tunnel, CLIENT_IP, SERVER_IP, SERVER_KEY,
    SERVER_SOCKETS,
};
use mlvpn_keys::PublicKey;
use mlvpn_rs::proto::stats::Status;
use mlvpn_rs::proto::tunnel::{PathSpec, REKEY_AFTER_TIME};
use mlvpn_rs::proto::{SocketId, Tunnel};
use net::{ipv4_packet, packet_id, Net};

/// Server sockets: 10.101.0.2:5080 (isp1), 10.102.0.2:5081 (isp2).
fn server_sockets() -> Vec<SocketAddr> {
    SERVER_SOCKETS.map(addr).to_vec()
}

fn server(net_start: Instant, peers: Vec<(PublicKey, &str)>) -> Tunnel {
    server_started(net_start, net_start, peers)
}

/// A server process started at `now` on a network whose clock began at
/// `net_start` (a restart: same wall clock, fresh state).
fn server_started(net_start: Instant, now: Instant, peers: Vec<(PublicKey, &str)>) -> Tunnel {
    let peers = peers.into_iter().map(|(k, ip)| peer(k, &[ip])).collect();
    tunnel(server_config(SERVER_KEY, peers), net_start, now)
}

/// A server whose peers are the clients with keys `clients`, client `k`
/// owning 10.42.0.k.
fn server_for(start: Instant, clients: &[u8]) -> Tunnel {
    let ips: Vec<String> = clients.iter().map(|k| format!("10.42.0.{k}/32")).collect();
    let peers = clients
        .iter()
        .zip(&ips)
        .map(|(k, ip)| (key(*k).public_key(), ip.as_str()))
        .collect();
    server(start, peers)
}

/// A client with key `k` and one path per local address, path i towards
/// server socket i % 2.
fn client(
    net_start: Instant,
    k: u8,
    locals: &[&str],
    bandwidth: &[Option<u64>],
) -> (Tunnel, Vec<SocketAddr>) {
    client_with_fallback(net_start, k, locals, bandwidth, &[])
}

/// Like `client`; path i is a `fallback` path if `fallback[i]`.
fn client_with_fallback(
    net_start: Instant,
    k: u8,
    locals: &[&str],
    bandwidth: &[Option<u64>],
    fallback: &[bool],
) -> (Tunnel, Vec<SocketAddr>) {
    let srv = server_sockets();
    let paths = (0..locals.len())
        .map(|i| PathSpec {
            bandwidth_up: bandwidth.get(i).copied().flatten(),
            fallback: fallback.get(i).copied().unwrap_or(false),
            ..path(&format!("p{i}"), i as u32, srv[i % 2])
        })
        .collect();
    let t = tunnel(client_config(k, paths), net_start, net_start);
    (t, locals.iter().map(|a| addr(a)).collect())
}

/// Standard set-up: server node 0, client node 1 with two paths.
fn two_path_net() -> Net {
    let start = Instant::now();
    let mut net = Net::new(start);
    net.add(server_for(start, &[2]), server_sockets());
    let (c, socks) = client(start, 2, &["10.101.0.1:40000", "10.102.0.1:40001"], &[]);
    net.add(c, socks);
    net.run_for(Duration::from_secs(1));
    net
}

/// Like `two_path_net`, but path 0 capped at `cap` bit/s (so traffic above
/// it overflows to path 1).
fn capped_net(cap: u64) -> Net {
    let start = Instant::now();
    let mut net = Net::new(start);
    net.add(server_for(start, &[2]), server_sockets());
    let (c, socks) = client(
        start,
        2,
        &["10.101.0.1:40000", "10.102.0.1:40001"],
        &[Some(cap), None],
    );
    net.add(c, socks);
    net.run_for(Duration::from_secs(1));
    net
}

fn status(net: &Net, n: usize) -> Status {
    net.nodes[n].tunnel.status("mlvpn0", net.now)
}

fn states(s: &Status) -> Vec<String> {
    s.peers[0]
        .paths
        .iter()
        .map(|p| p.state.as_str().to_string())
        .collect()
}

#[test]
fn handshake_brings_both_paths_up_and_traffic_flows_both_ways() {
    let mut net = two_path_net();
    assert_eq!(states(&status(&net, 1)), ["up", "up"]);
    assert_eq!(states(&status(&net, 0)), ["up", "up"]);
    for i in 0..1000u64 {
        assert!(net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, i, 500)));
        assert!(net.tun_send(0, &ipv4_packet(SERVER_IP, CLIENT_IP, i, 300)));
        net.run_for(Duration::from_micros(500));
    }
    net.run_for(Duration::from_millis(100));
    let mut got: Vec<u64> = net.nodes[0].delivered.iter().map(|p| packet_id(p)).collect();
    got.sort();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
    assert_eq!(net.nodes[1].delivered.len(), 1000);
    assert_eq!(net.nodes[0].delivered[0].len(), 500);
    // Both paths carry a share (earliest arrival, no capacity limits here).
    let c = status(&net, 1);
    let (a, b) = (c.peers[0].paths[0].tx_packets, c.peers[0].paths[1].tx_packets);
    assert!(a.min(b) * 20 > a + b, "tx packets per path {a} / {b}");
    // RTT measured from timestamp echo: 2 x 10 ms.
    let srtt = c.peers[0].paths[0].srtt_ms.unwrap();
    assert!((19.0..=22.0).contains(&srtt), "srtt {srtt}");
    // Server learned path names and endpoints from authenticated packets.
    let s = status(&net, 0);
    assert_eq!(s.peers[0].paths[0].name, "p0");
    assert_eq!(
        s.peers[0].paths[0].endpoint,
        Some("10.101.0.1:40000".parse().unwrap())
    );
    assert_eq!(
        s.drops.total() + c.drops.total(),
        0,
        "{:?} {:?}",
        s.drops,
        c.drops
    );
}

#[test]
fn replayed_data_datagram_is_dropped_and_does_not_move_endpoint() {
    let mut net = two_path_net();
    net.capturing = true;
    net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, 7, 200));
    net.run_for(Duration::from_millis(50));
    assert_eq!(net.nodes[0].delivered.len(), 1);
    let (_, to, bytes) = net
        .capture
        .iter()
        .find(|(_, _, b)| b[0] == 4 && b.len() > 200)
        .cloned()
        .unwrap();
    // Replay from an attacker's address, and from the original one.
    net.send_raw(addr("10.101.0.99:5555"), to, bytes.clone());
    net.send_raw(addr("10.101.0.1:40000"), to, bytes);
    net.run_for(Duration::from_millis(50));
    assert_eq!(net.nodes[0].delivered.len(), 1);
    let s = status(&net, 0);
    assert_eq!(s.drops.replayed, 2);
    assert_eq!(
        s.peers[0].paths[0].endpoint,
        Some("10.101.0.1:40000".parse().unwrap())
    );
    assert_eq!(s.peers[0].paths[0].endpoint_changes, 0);
}

#[test]
fn replayed_initiation_is_refused() {
    let start = Instant::now();
    let mut net = Net::new(start);
    net.add(server_for(start, &[2]), server_sockets());
    let (c, socks) = client(start, 2, &["10.101.0.1:40000"], &[]);
    net.add(c, socks);
    net.capturing = true;
    net.run_for(Duration::from_secs(1));
    let (_, to, init) = net.capture.iter().find(|(_, _, b)| b[0] == 1).cloned().unwrap();
    net.send_raw(addr("10.101.0.66:1234"), to, init);
    net.run_for(Duration::from_millis(100));
    let s = status(&net, 0);
    assert_eq!(s.drops.handshake_replayed, 1);
    assert_eq!(s.peers[0].paths.len(), 1);
    assert_eq!(
        s.peers[0].paths[0].endpoint,
        Some("10.101.0.1:40000".parse().unwrap())
    );
}

#[test]
fn unknown_client_key_gets_no_tunnel() {
    let start = Instant::now();
    let mut net = Net::new(start);
    net.add(server_for(start, &[2]), server_sockets());
    let (c, socks) = client(start, 3, &["10.101.0.1:40000"], &[]);
    net.add(c, socks);
    net.run_for(Duration::from_secs(20));
    let s = status(&net, 0);
    assert!(
        s.drops.handshake_unknown_peer >= 3,
        "retries with backoff: {:?}",
        s.drops
    );
    assert!(
        s.drops.handshake_unknown_peer <= 6,
        "backoff limits retries: {:?}",
        s.drops
    );
    assert!(s.peers[0].paths.is_empty());
    assert_eq!(states(&status(&net, 1)), ["handshaking"]);
    assert!(!net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, 1, 100)));
}

#[test]
fn garbage_and_forgeries_are_counted_never_delivered() {
    let mut net = two_path_net();
    net.capturing = true;
    net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, 1, 300));
    net.run_for(Duration::from_millis(50));
    let (_, to, good) = net
        .capture
        .iter()
        .find(|(_, _, b)| b[0] == 4 && b.len() > 300)
        .cloned()
        .unwrap();
    let before = status(&net, 0).drops.total();
    let evil = addr("10.101.0.66:1234");
    let mut sent = 0;
    for i in 0..5000u64 {
        let r = net.rng.next();
        let mut b = match i % 5 {
            // Random bytes of random length.
            0 => (0..(r % 1500) as usize)
                .map(|_| net.rng.next() as u8)
                .collect::<Vec<u8>>(),
            // Truncated real datagram.
            1 => good[..(r as usize % good.len())].to_vec(),
            // Bit flip in a real datagram (header or ciphertext).
            2 => {
                let mut g = good.clone();
                let at = 4 + r as usize % (g.len() - 4);
                g[at] ^= 1 << (r % 8);
                g
            }
            // Data with a plausible index and random counter/ciphertext.
            3 => {
                let mut g = good.clone();
                g[8..16].copy_from_slice(&r.to_le_bytes());
                g
            }
            // Initiation-shaped junk.
            _ => {
                let mut g: Vec<u8> = (0..mlvpn_rs::proto::wire::INIT_LEN)
                    .map(|_| net.rng.next() as u8)
                    .collect();
                g[0] = 1;
                g[1..4].fill(0);
                g
            }
        };
        if b.is_empty() {
            b.push(0);
        }
        net.send_raw(evil, to, b);
        sent += 1;
    }
    net.run_for(Duration::from_millis(50));
    let s = status(&net, 0);
    assert_eq!(
        net.nodes[0].delivered.len(),
        1,
        "no forged packet reaches the TUN"
    );
    // Everything was dropped and counted (the whole traffic is forged).
    assert_eq!(s.drops.total() - before, sent, "{:?}", s.drops);
    assert!(s.drops.malformed > 0 && s.drops.auth_failed > 0 && s.drops.handshake_bad_mac > 0);
    assert_eq!(
        s.peers[0].paths[0].endpoint,
        Some("10.101.0.1:40000".parse().unwrap())
    );
    // The tunnel still works.
    net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, 2, 300));
    net.run_for(Duration::from_millis(50));
    assert_eq!(net.nodes[0].delivered.len(), 2);
}

#[test]
fn silent_path_goes_down_traffic_moves_and_path_returns() {
    let mut net = two_path_net();
    // Blackhole path 0 in both directions.
    net.link(addr("10.101.0.1:40000"), addr("10.101.0.2:5080")).cut = true;
    net.link(addr("10.101.0.2:5080"), addr("10.101.0.1:40000")).cut = true;
    net.run_for(Duration::from_secs(5));
    assert_eq!(states(&status(&net, 1)), ["down", "up"]);
    assert_eq!(states(&status(&net, 0)), ["down", "up"]);
    for i in 0..100 {
        net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, i, 200));
    }
    net.run_for(Duration::from_millis(50));
    assert_eq!(net.nodes[0].delivered.len(), 100, "all traffic on the live path");
    // Restore: the client re-handshakes (backoff at most 8 s) and uses it again.
    net.link(addr("10.101.0.1:40000"), addr("10.101.0.2:5080")).cut = false;
    net.link(addr("10.101.0.2:5080"), addr("10.101.0.1:40000")).cut = false;
    net.run_for(Duration::from_secs(10));
    assert_eq!(states(&status(&net, 1)), ["up", "up"]);
    let before = status(&net, 1).peers[0].paths[0].tx_packets;
    for i in 0..100 {
        net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, i, 200));
    }
    assert!(status(&net, 1).peers[0].paths[0].tx_packets >= before + 50);
}

#[test]
fn rekey_keeps_traffic_flowing_without_loss() {
    let mut net = two_path_net();
    net.default_link.delay = Duration::from_millis(40);
    let mut sent = 0u64;
    let end = net.now + REKEY_AFTER_TIME * 3;
    while net.now < end {
        net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, sent, 100));
        net.tun_send(0, &ipv4_packet(SERVER_IP, CLIENT_IP, sent, 100));
        sent += 1;
        net.run_for(Duration::from_millis(20));
    }
    net.run_for(Duration::from_secs(1));
    let c = status(&net, 1);
    for p in &c.peers[0].paths {
        assert!(
            p.handshakes >= 3,
            "path {} rekeyed {} times",
            p.name,
            p.handshakes
        );
        assert_eq!(p.state.as_str(), "up");
    }
    assert_eq!(
        net.nodes[0].delivered.len() as u64,
        sent,
        "client->server: nothing lost across rekeys"
    );
    assert_eq!(
        net.nodes[1].delivered.len() as u64,
        sent,
        "server->client: nothing lost across rekeys"
    );
    assert_eq!(c.drops.total() + status(&net, 0).drops.total(), 0);
}

#[test]
fn server_serves_two_clients_routed_by_allowed_ips() {
    let start = Instant::now();
    let mut net = Net::new(start);
    net.add(server_for(start, &[2, 3]), server_sockets());
    let (c1, s1) = client(start, 2, &["10.101.0.1:40000", "10.102.0.1:40001"], &[]);
    let (c2, s2) = client(start, 3, &["10.101.0.7:40000", "10.102.0.7:40001"], &[]);
    net.add(c1, s1);
    net.add(c2, s2);
    net.run_for(Duration::from_secs(1));
    let c3 = Ipv4Addr::new(10, 42, 0, 3);
    for i in 0..50 {
        assert!(net.tun_send(0, &ipv4_packet(SERVER_IP, CLIENT_IP, i, 100)));
        assert!(net.tun_send(0, &ipv4_packet(SERVER_IP, c3, 1000 + i, 100)));
        assert!(net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, 2000 + i, 100)));
        assert!(net.tun_send(2, &ipv4_packet(c3, SERVER_IP, 3000 + i, 100)));
    }
    // No route for an address no peer owns.
    assert!(!net.tun_send(0, &ipv4_packet(SERVER_IP, Ipv4Addr::new(10, 42, 0, 9), 1, 100)));
    net.run_for(Duration::from_millis(100));
    assert!(net.nodes[1].delivered.iter().all(|p| packet_id(p) < 1000));
    assert!(net.nodes[2]
        .delivered
        .iter()
        .all(|p| (1000..2000).contains(&packet_id(p))));
    assert_eq!(net.nodes[1].delivered.len(), 50);
    assert_eq!(net.nodes[2].delivered.len(), 50);
    assert_eq!(net.nodes[0].delivered.len(), 100);
    let s = status(&net, 0);
    assert_eq!(s.drops.no_route, 1);
    assert_eq!(states(&s), ["up", "up"]);
    assert_eq!(s.peers[1].paths.len(), 2);
}

#[test]
fn client_cannot_spoof_another_clients_inner_address() {
    let start = Instant::now();
    let mut net = Net::new(start);
    net.add(server_for(start, &[2, 3]), server_sockets());
    let (c2, s2) = client(start, 3, &["10.101.0.7:40000"], &[]);
    net.add(c2, s2);
    net.run_for(Duration::from_secs(1));
    net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, 1, 100));
    net.run_for(Duration::from_millis(50));
    assert!(net.nodes[0].delivered.is_empty());
    assert_eq!(status(&net, 0).drops.source_not_allowed, 1);
}

#[test]
fn bandwidth_up_caps_a_path() {
    let start = Instant::now();
    let mut net = Net::new(start);
    net.add(server_for(start, &[2]), server_sockets());
    // Path 0 is faster (5 ms) but capped at 2 Mbit/s; path 1 (20 ms) is not.
    let (c, socks) = client(
        start,
        2,
        &["10.101.0.1:40000", "10.102.0.1:40001"],
        &[Some(2_000_000), None],
    );
    net.add(c, socks);
    set_path_delay(&mut net, 0, Duration::from_millis(5), 0.0);
    set_path_delay(&mut net, 1, Duration::from_millis(20), 0.0);
    net.run_for(Duration::from_secs(2));
    let before: Vec<u64> = status(&net, 1).peers[0]
        .paths
        .iter()
        .map(|p| p.tx_bytes)
        .collect();
    // 8 Mbit/s offered for 3 s.
    traffic(&mut net, Duration::from_secs(3), |_| {});
    let after: Vec<u64> = status(&net, 1).peers[0]
        .paths
        .iter()
        .map(|p| p.tx_bytes)
        .collect();
    let capped_mbit = (after[0] - before[0]) as f64 * 8.0 / 3.0 / 1e6;
    assert!(
        capped_mbit <= 2.2 && capped_mbit > 1.0,
        "capped path carried {capped_mbit} Mbit/s"
    );
    assert!(
        after[1] - before[1] > 2 * (after[0] - before[0]),
        "the rest went over the uncapped path"
    );
}

#[test]
fn nat_rebinding_moves_the_server_endpoint() {
    let mut net = two_path_net();
    net.nat.insert(addr("10.101.0.1:40000"), addr("10.101.0.1:50123"));
    net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, 1, 100));
    net.run_for(Duration::from_millis(50));
    // The server's replies must follow the new mapping: route them back.
    net.nodes[1]
        .sockets
        .insert(SocketId::new(0), addr("10.101.0.1:50123"));
    net.nat.clear();
    let s = status(&net, 0);
    let p = s.peers[0].paths.iter().find(|p| p.name == "p0").unwrap();
    assert_eq!(p.endpoint, Some("10.101.0.1:50123".parse().unwrap()));
    assert_eq!(p.endpoint_changes, 1);
    for i in 0..10 {
        net.tun_send(0, &ipv4_packet(SERVER_IP, CLIENT_IP, i, 100));
    }
    net.run_for(Duration::from_millis(50));
    assert_eq!(net.nodes[1].delivered.len(), 10);
}

#[test]
fn lossy_paths_still_handshake_and_stay_up() {
    let start = Instant::now();
    let mut net = Net::new(start);
    net.default_link.loss = 0.1;
    net.add(server_for(start, &[2]), server_sockets());
    let (c, socks) = client(start, 2, &["10.101.0.1:40000", "10.102.0.1:40001"], &[]);
    net.add(c, socks);
    net.run_for(Duration::from_secs(30));
    // 10 % loss is at the lossy threshold: alive either way, never down.
    for st in states(&status(&net, 1)) {
        assert!(st == "up" || st == "lossy", "{st}");
    }
}

/// Sets the one-way delay of both directions of path `i` of `two_path_net`.
fn set_path_delay(net: &mut Net, i: usize, delay: Duration, loss: f64) {
    let (c, s) = [
        ("10.101.0.1:40000", "10.101.0.2:5080"),
        ("10.102.0.1:40001", "10.102.0.2:5081"),
    ][i];
    for (a, b) in [(c, s), (s, c)] {
        let l = net.link(addr(a), addr(b));
        l.delay = delay;
        l.loss = loss;
    }
}

#[test]
fn resequencing_delivers_in_order_over_paths_of_different_delay() {
    let mut net = capped_net(1_000_000);
    set_path_delay(&mut net, 0, Duration::from_millis(10), 0.0);
    set_path_delay(&mut net, 1, Duration::from_millis(60), 0.0);
    // Let RTT estimates settle on keepalives.
    net.run_for(Duration::from_secs(5));
    for i in 0..2000u64 {
        net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, i, 200));
        net.run_for(Duration::from_micros(500));
    }
    net.run_for(Duration::from_millis(200));
    let ids: Vec<u64> = net.nodes[0].delivered.iter().map(|p| packet_id(p)).collect();
    assert_eq!(ids, (0..2000).collect::<Vec<_>>(), "every packet, in order");
    let r = &status(&net, 0).peers[0].reorder;
    assert!(r.reordered > 0, "the slow path carried some traffic: {r:?}");
    assert_eq!((r.late, r.skipped, r.duplicate, r.held), (0, 0, 0, 0), "{r:?}");
    assert!(
        r.hold_timeout_ms >= 50.0 && r.hold_timeout_ms < 150.0,
        "adaptive timeout from the 50 ms one-way spread plus jitter margin: {r:?}"
    );
    assert!(
        r.max_hold_ms >= 45.0,
        "early packets waited for the slow path: {r:?}"
    );
}

#[test]
fn a_slow_path_whose_queue_swings_delivers_nothing_late_after_the_first_swing() {
    // Every 250 ms the 60 ms path's queue builds up 30 ms within 20 ms and
    // drains (FIFO, as a real queue does) within 40 ms, as a sawtoothing TCP
    // flow makes it do: the average delay hardly moves, so only a hold
    // timeout that remembers the peaks waits long enough.
    let mut net = capped_net(1_000_000);
    set_path_delay(&mut net, 0, Duration::from_millis(10), 0.0);
    set_path_delay(&mut net, 1, Duration::from_millis(60), 0.0);
    net.run_for(Duration::from_secs(5));
    let mut late_after_first = 0;
    for i in 0..8000u64 {
        // Steps of 0.5 ms: +0.75 ms of queue per step up, −0.375 per step down.
        let extra_us = match i % 500 {
            k @ 0..40 => k * 750,
            k @ 40..120 => 30_000 - (k - 40) * 375,
            _ => 0,
        };
        set_path_delay(&mut net, 1, Duration::from_micros(60_000 + extra_us), 0.0);
        net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, i, 200));
        net.run_for(Duration::from_micros(500));
        if i == 499 {
            late_after_first = status(&net, 0).peers[0].reorder.late;
        }
    }
    net.run_for(Duration::from_millis(500));
    let r = &status(&net, 0).peers[0].reorder;
    assert_eq!(net.nodes[0].delivered.len(), 8000, "{r:?}");
    assert!(r.reordered > 0, "the slow path carried traffic: {r:?}");
    assert_eq!(
        r.late, late_after_first,
        "late packets after the first swing: {r:?}"
    );
    assert_eq!(r.skipped, 0, "{r:?}");
}

#[test]
fn a_hole_is_skipped_as_soon_as_every_path_has_delivered_past_it() {
    // Two 10 ms paths, one losing 5 %: a path delivers in order, so a hole
    // is lost once both paths delivered a later packet, a millisecond or
    // so later; the hold timeout (at least 10 ms) never has to expire.
    let mut net = capped_net(1_000_000);
    set_path_delay(&mut net, 0, Duration::from_millis(10), 0.0);
    set_path_delay(&mut net, 1, Duration::from_millis(10), 0.0);
    net.run_for(Duration::from_secs(5));
    set_path_delay(&mut net, 1, Duration::from_millis(10), 0.05);
    for i in 0..4000u64 {
        net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, i, 200));
        net.run_for(Duration::from_micros(500));
    }
    net.run_for(Duration::from_millis(500));
    let r = &status(&net, 0).peers[0].reorder;
    assert!(r.skipped > 20, "lost packets skipped: {r:?}");
    assert_eq!((r.late, r.held), (0, 0), "{r:?}");
    assert!(r.hold_timeout_ms >= 10.0, "{r:?}");
    // A hole waits out the timeout only when the lossy path lost the last
    // packet of a burst and carried nothing for a while after it.
    assert!(r.timeouts * 4 < r.skipped, "skipped before the timeout: {r:?}");
}

/// Client→server packets only, one per ms, for `d`; the reorder counters
/// of the server over that time: (skipped, of which on timeout).
fn skips_while_sending(net: &mut Net, d: Duration) -> (u64, u64) {
    let before = status(net, 0).peers[0].reorder.clone();
    let end = net.now + d;
    let mut i = 0u64;
    while net.now < end {
        net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, i, 1000));
        i += 1;
        net.run_for(Duration::from_millis(1));
    }
    let r = &status(net, 0).peers[0].reorder;
    (r.skipped - before.skipped, r.timeouts - before.timeouts)
}

#[test]
fn a_path_the_sender_gave_up_as_lossy_does_not_hold_back_skipping() {
    // Path 1 loses 30 % and the client demotes it; the server, sending
    // nothing but reports, does not judge it lossy itself. The client's
    // keepalives on it say it carries no data, so the server skips a loss
    // on path 0 as soon as path 0 delivers past it, not on the timeout.
    // (Path 0 capped at 4 Mbit/s so that path 1 carries, and is measured.)
    let mut net = capped_net(4_000_000);
    set_path_delay(&mut net, 1, Duration::from_millis(10), 0.3);
    skips_while_sending(&mut net, Duration::from_secs(4));
    assert_eq!(path_state(&net, 1, 1), "lossy", "client side");
    assert_eq!(path_state(&net, 0, 1), "up", "server side");
    set_path_delay(&mut net, 0, Duration::from_millis(10), 0.03);
    let (skipped, timeouts) = skips_while_sending(&mut net, Duration::from_secs(3));
    assert!(skipped > 30, "losses on path 0: {skipped}");
    assert!(timeouts * 10 < skipped, "{timeouts} of {skipped} on the timeout");
}

/// Server node 0, client node 1 with a normal path 0 and a `fallback`
/// path 1, both up.
fn fallback_net() -> Net {
    let start = Instant::now();
    let mut net = Net::new(start);
    net.add(server_for(start, &[2]), server_sockets());
    let locals = ["10.101.0.1:40000", "10.102.0.1:40001"];
    let (c, socks) = client_with_fallback(start, 2, &locals, &[], &[false, true]);
    net.add(c, socks);
    net.run_for(Duration::from_secs(2));
    net
}

#[test]
fn a_fallback_path_does_not_hold_back_skipping() {
    // A fallback path never carries data while path 0 is up: a loss on
    // path 0 is skipped as soon as path 0 delivers past it.
    let mut net = fallback_net();
    set_path_delay(&mut net, 0, Duration::from_millis(10), 0.03);
    let (skipped, timeouts) = skips_while_sending(&mut net, Duration::from_secs(3));
    assert!(skipped > 30, "losses on path 0: {skipped}");
    assert!(timeouts * 10 < skipped, "{timeouts} of {skipped} on the timeout");
    let paths = &status(&net, 1).peers[0].paths;
    assert!(
        paths[1].tx_packets < 20,
        "the fallback path carried only keepalives: {paths:?}"
    );
}

#[test]
fn a_fallback_path_that_stops_carrying_says_so_at_once() {
    // Path 0 cut: the fallback path carries the data. Path 0 back: the
    // fallback path stops carrying and its next keepalive, sent at once,
    // says so; a loss on path 0 is then skipped as soon as path 0 delivers
    // past it. (Waiting for the idle keepalive, a `keepalive` later, every
    // such loss waited out the hold timeout meanwhile.)
    let mut net = fallback_net();
    cut_path(&mut net, 0, true);
    skips_while_sending(&mut net, Duration::from_secs(2));
    let paths = &status(&net, 1).peers[0].paths;
    assert_eq!(paths[0].state.as_str(), "down");
    assert!(
        paths[1].tx_packets > 1000,
        "the fallback path carried the data: {paths:?}"
    );
    cut_path(&mut net, 0, false);
    let mut i = 0;
    while path_state(&net, 1, 0) != "up" {
        assert!(i < 2000, "path 0 back within 2 s");
        net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, i, 1000));
        net.run_for(Duration::from_millis(1));
        i += 1;
    }
    set_path_delay(&mut net, 0, Duration::from_millis(10), 0.05);
    let (skipped, timeouts) = skips_while_sending(&mut net, Duration::from_millis(600));
    assert!(skipped > 10, "losses on path 0: {skipped}");
    assert!(timeouts * 5 < skipped, "{timeouts} of {skipped} on the timeout");
}

#[test]
fn resequencing_skips_lost_packets_after_the_timeout() {
    let mut net = capped_net(1_000_000);
    set_path_delay(&mut net, 0, Duration::from_millis(10), 0.0);
    set_path_delay(&mut net, 1, Duration::from_millis(30), 0.0);
    net.run_for(Duration::from_secs(5));
    set_path_delay(&mut net, 1, Duration::from_millis(30), 0.2);
    for i in 0..2000u64 {
        net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, i, 200));
        net.run_for(Duration::from_micros(500));
    }
    net.run_for(Duration::from_millis(500));
    let ids: Vec<u64> = net.nodes[0].delivered.iter().map(|p| packet_id(p)).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "delivered in increasing order"
    );
    let r = &status(&net, 0).peers[0].reorder;
    assert!(r.skipped > 0, "lost packets skipped: {r:?}");
    // Every sequence number up to the last delivered one was delivered or
    // skipped (a lost tail has nothing after it to skip to).
    assert_eq!(ids.len() as u64 + r.skipped, ids.last().unwrap() + 1, "{r:?}");
    assert_eq!(r.held, 0);
}

fn path_state(net: &Net, node: usize, path: usize) -> String {
    status(net, node).peers[0].paths[path].state.as_str().to_string()
}

/// Runs `traffic` for 2 s and returns how long the client's path `path`
/// took to be up again.
fn time_until_up(net: &mut Net, path: usize) -> Duration {
    let start = net.now;
    let mut up_at = None;
    traffic(net, Duration::from_secs(2), |n| {
        if up_at.is_none() && path_state(n, 1, path) == "up" {
            up_at = Some(n.now);
        }
    });
    up_at.expect("path came back") - start
}

/// Client→server data every ms and server→client every 2 ms, for `d`.
fn traffic(net: &mut Net, d: Duration, mut each_ms: impl FnMut(&Net)) {
    let end = net.now + d;
    let mut i = 0u64;
    while net.now < end {
        net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, i, 1000));
        if i % 2 == 0 {
            net.tun_send(0, &ipv4_packet(SERVER_IP, CLIENT_IP, i, 100));
        }
        i += 1;
        net.run_for(Duration::from_millis(1));
        each_ms(net);
    }
}

#[test]
fn blackholed_path_is_detected_fast_and_a_restored_one_returns_within_a_second() {
    let mut net = two_path_net();
    traffic(&mut net, Duration::from_secs(2), |_| {});
    assert_eq!(states(&status(&net, 1)), ["up", "up"]);
    let srtt = status(&net, 1).peers[0].paths[0].srtt_ms.unwrap();
    assert!((19.0..25.0).contains(&srtt), "{srtt}");
    // Cut path 0 silently, both directions.
    let cut_at = net.now;
    for (a, b) in [
        ("10.101.0.1:40000", "10.101.0.2:5080"),
        ("10.101.0.2:5080", "10.101.0.1:40000"),
    ] {
        net.link(addr(a), addr(b)).cut = true;
    }
    let mut down_at = None;
    traffic(&mut net, Duration::from_secs(1), |n| {
        if down_at.is_none() && path_state(n, 1, 0) == "down" {
            down_at = Some(n.now);
        }
    });
    let detect = down_at.expect("client noticed the dead path") - cut_at;
    // Last report arrived at most ~one-way delay + one report interval
    // after the cut; the limit is max(3 x SRTT, 200 ms) after it.
    assert!(
        detect >= Duration::from_millis(200) && detect <= Duration::from_millis(240),
        "{detect:?}"
    );
    assert_eq!(path_state(&net, 1, 1), "up");
    // After detection everything goes over the live path.
    for i in 0..100u64 {
        net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, 1_000_000 + i, 1000));
    }
    net.run_for(Duration::from_millis(100));
    let marked = net.nodes[0]
        .delivered
        .iter()
        .filter(|p| packet_id(p) >= 1_000_000)
        .count();
    assert_eq!(marked, 100, "nothing sent after detection is lost");
    // Restore: back in use within a second.
    for (a, b) in [
        ("10.101.0.1:40000", "10.101.0.2:5080"),
        ("10.101.0.2:5080", "10.101.0.1:40000"),
    ] {
        net.link(addr(a), addr(b)).cut = false;
    }
    let back = time_until_up(&mut net, 0);
    assert!(
        back <= Duration::from_secs(1),
        "restored path back after {back:?}"
    );
    // Back in use: it carries traffic again once there is more than the
    // other path's measured rate to send (earliest arrival).
    let tx0 = status(&net, 1).peers[0].paths[0].tx_packets;
    let mut i = 5_000_000u64;
    let end = net.now + Duration::from_millis(500);
    while net.now < end {
        for _ in 0..4 {
            net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, i, 1000));
            i += 1;
        }
        net.run_for(Duration::from_millis(1));
    }
    let st = status(&net, 1);
    assert!(
        st.peers[0].paths[0].tx_packets > tx0 + 100,
        "restored path carries traffic: {:?}",
        st.peers[0].paths
    );
}

#[test]
fn lossy_path_is_measured_demoted_and_recovers() {
    // The clean path is capped at 4 Mbit/s, so the lossy one must carry
    // part of the 8.4 Mbit/s offered (1000 x 1056 bytes/s) until demoted.
    let mut net = capped_net(4_000_000);
    set_path_delay(&mut net, 1, Duration::from_millis(10), 0.3);
    let mut demoted = false;
    traffic(&mut net, Duration::from_secs(4), |n| {
        demoted |= path_state(n, 1, 1) == "lossy"
    });
    assert!(demoted, "the lossy path was demoted");
    let c = status(&net, 1);
    let (clean, lossy) = (&c.peers[0].paths[0], &c.peers[0].paths[1]);
    assert!(clean.loss.unwrap() < 0.02, "{clean:?}");
    let l = lossy.loss.unwrap();
    assert!((0.15..0.45).contains(&l), "30 % loss measured as {l}");
    assert_eq!(lossy.state.as_str(), "lossy");
    let r = clean.rate_mbps.unwrap();
    assert!((3.0..11.0).contains(&r), "clean path rate {r}");
    let tx = lossy.tx_packets;
    traffic(&mut net, Duration::from_secs(1), |_| {});
    let probes = status(&net, 1).peers[0].paths[1].tx_packets - tx;
    assert!(probes < 100, "a lossy path only carries probes: {probes}");
    // The loss goes away: the path is measured again and returns.
    set_path_delay(&mut net, 1, Duration::from_millis(10), 0.0);
    traffic(&mut net, Duration::from_secs(8), |_| {});
    assert_eq!(states(&status(&net, 1)), ["up", "up"]);
}

#[test]
fn loss_shared_by_every_path_demotes_none() {
    let mut net = two_path_net();
    set_path_delay(&mut net, 0, Duration::from_millis(10), 0.2);
    set_path_delay(&mut net, 1, Duration::from_millis(10), 0.2);
    let mut demoted = false;
    traffic(&mut net, Duration::from_secs(3), |n| {
        demoted |= states(&status(n, 1)).iter().any(|s| s == "lossy");
    });
    assert!(!demoted, "no path is better: none is demoted");
    let c = status(&net, 1);
    assert!(
        c.peers[0].paths.iter().all(|p| p.loss.unwrap() > 0.1),
        "loss is measured on both"
    );
}

#[test]
fn sparse_traffic_over_lossy_paths_does_not_take_them_down() {
    // A packet every 50 ms over two paths losing 30 % each way: a lost data
    // packet or report must not read as a dead path (tail probes ask for a
    // report before the silence limit).
    let mut net = two_path_net();
    set_path_delay(&mut net, 0, Duration::from_millis(10), 0.3);
    set_path_delay(&mut net, 1, Duration::from_millis(10), 0.3);
    net.run_for(Duration::from_secs(3));
    let mut downs = 0;
    let mut was_down = [false, false];
    for i in 0..400u64 {
        net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, i, 500));
        for _ in 0..50 {
            net.run_for(Duration::from_millis(1));
            for (p, was) in was_down.iter_mut().enumerate() {
                let down = path_state(&net, 1, p) == "down";
                downs += usize::from(down && !*was);
                *was = down;
            }
        }
    }
    assert_eq!(downs, 0, "paths went down {downs} times in 20 s");
}

fn cut_path(net: &mut Net, i: usize, cut: bool) {
    let (c, s) = [
        ("10.101.0.1:40000", "10.101.0.2:5080"),
        ("10.102.0.1:40001", "10.102.0.2:5081"),
    ][i];
    for (a, b) in [(c, s), (s, c)] {
        net.link(addr(a), addr(b)).cut = cut;
    }
}

#[test]
fn a_clean_path_back_from_an_outage_is_preferred_to_a_lossy_one() {
    // Path 1 loses 30 %; path 0 is cut for 10 s (so path 1 alone carries
    // the traffic, and is the only path: not demoted), then restored.
    let mut net = two_path_net();
    set_path_delay(&mut net, 1, Duration::from_millis(10), 0.3);
    cut_path(&mut net, 0, true);
    traffic(&mut net, Duration::from_secs(10), |_| {});
    cut_path(&mut net, 0, false);
    traffic(&mut net, Duration::from_secs(2), |_| {});
    let (c, s) = (status(&net, 1), status(&net, 0));
    assert_eq!(states(&c), ["up", "lossy"], "client {:?}", c.peers[0].paths);
    assert_eq!(states(&s), ["up", "lossy"], "server {:?}", s.peers[0].paths);
    // Nothing but probes goes to the lossy path now.
    let before = net.nodes[0].delivered.len();
    traffic(&mut net, Duration::from_secs(1), |_| {});
    let got = net.nodes[0].delivered.len() - before;
    assert!(got >= 990, "delivered {got} of 1000");
}

#[test]
fn packets_in_flight_on_a_path_that_dies_are_resent_on_a_live_one() {
    let mut net = two_path_net();
    let mut next = 0u64;
    let mut send_for = |net: &mut Net, d: Duration| {
        let end = net.now + d;
        while net.now < end {
            // 4 Mbit/s: both paths carry some of it.
            net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, next, 500));
            next += 1;
            net.run_for(Duration::from_millis(1));
        }
    };
    send_for(&mut net, Duration::from_secs(2));
    let sent_on_0 = status(&net, 1).peers[0].paths[0].tx_packets;
    cut_path(&mut net, 0, true);
    send_for(&mut net, Duration::from_secs(1));
    let c = status(&net, 1);
    assert_eq!(states(&c), ["down", "up"]);
    assert!(
        c.peers[0].paths[0].tx_packets > sent_on_0 + 50,
        "path 0 carried data before the cut was noticed"
    );
    net.run_for(Duration::from_secs(1));
    let got: std::collections::HashSet<u64> = net.nodes[0].delivered.iter().map(|p| packet_id(p)).collect();
    let missing: Vec<u64> = (0..3000u64).filter(|i| !got.contains(i)).collect();
    assert!(
        missing.is_empty(),
        "{} lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(status(&net, 1).peers[0].resent > 50);
}

#[test]
fn a_one_way_blackhole_is_detected_and_does_not_flap() {
    // Client → server dies on path 0; server → client still works, so the
    // client keeps hearing the peer there: only the missing echo of its own
    // packets shows the path is dead.
    let mut net = two_path_net();
    traffic(&mut net, Duration::from_secs(2), |_| {});
    net.link(addr("10.101.0.1:40000"), addr("10.101.0.2:5080")).cut = true;
    let mut downs = 0;
    let mut ups = 0;
    let mut last = path_state(&net, 1, 0);
    traffic(&mut net, Duration::from_secs(3), |n| {
        let st = path_state(n, 1, 0);
        if st != last {
            downs += usize::from(st == "down");
            ups += usize::from(st == "up");
            last = st;
        }
    });
    assert_eq!(
        (downs, ups),
        (1, 0),
        "down once, and stays down while the cut lasts"
    );
    net.link(addr("10.101.0.1:40000"), addr("10.101.0.2:5080")).cut = false;
    let back = time_until_up(&mut net, 0);
    assert!(back <= Duration::from_secs(1), "back after {back:?}");
}

#[test]
fn an_idle_path_whose_outgoing_direction_dies_is_detected_and_idle_paths_do_not_flap() {
    // Nothing but keepalives on either path. The server keeps sending its
    // own keepalives to the client on path 1, so only the missing answer to
    // the client's probes shows that the client's direction is dead.
    let mut net = two_path_net();
    let mut flaps = 0;
    for _ in 0..30_000 {
        net.run_for(Duration::from_millis(1));
        flaps += usize::from(states(&status(&net, 1)) != ["up", "up"]);
        flaps += usize::from(states(&status(&net, 0)) != ["up", "up"]);
    }
    assert_eq!(flaps, 0, "30 s idle: no path ever left up");
    net.link(addr("10.102.0.1:40001"), addr("10.102.0.2:5081")).cut = true;
    let cut_at = net.now;
    while path_state(&net, 1, 1) != "down" {
        net.run_for(Duration::from_millis(1));
        assert!(
            net.now - cut_at < Duration::from_secs(2),
            "idle one-way blackhole not detected"
        );
    }
    // Within a keepalive interval (1 s here) plus the silence limit.
    assert!(
        net.now - cut_at <= Duration::from_millis(1300),
        "{:?}",
        net.now - cut_at
    );
    assert_eq!(path_state(&net, 1, 0), "up");
    net.link(addr("10.102.0.1:40001"), addr("10.102.0.2:5081")).cut = false;
    let back = time_until_up(&mut net, 1);
    assert!(back <= Duration::from_secs(1), "back after {back:?}");
}

#[test]
fn a_path_that_only_carries_the_peers_data_notices_its_own_direction_dying() {
    // Only the server sends data; the client only sends receive reports.
    let mut net = two_path_net();
    let mut id = 0u64;
    let mut server_sends = |net: &mut Net, ms: u64| {
        for _ in 0..ms {
            net.tun_send(0, &ipv4_packet(SERVER_IP, CLIENT_IP, id, 600));
            id += 1;
            net.run_for(Duration::from_millis(1));
        }
    };
    let downs = |net: &Net| {
        let s = status(net, 1);
        s.peers[0]
            .paths
            .iter()
            .filter(|p| p.state.as_str() == "down")
            .count()
    };
    for _ in 0..10 {
        server_sends(&mut net, 1000);
        assert_eq!(
            downs(&net),
            0,
            "reports echoed by the server's data keep both paths up"
        );
    }
    // The client's reports on path 1 stop arriving; the server's data
    // still does.
    net.link(addr("10.102.0.1:40001"), addr("10.102.0.2:5081")).cut = true;
    let cut_at = net.now;
    while path_state(&net, 1, 1) != "down" {
        server_sends(&mut net, 1);
        assert!(
            net.now - cut_at < Duration::from_secs(3),
            "the client never noticed"
        );
    }
    assert!(
        net.now - cut_at <= Duration::from_millis(1500),
        "{:?}",
        net.now - cut_at
    );
    assert_eq!(path_state(&net, 1, 0), "up");
}

#[test]
fn a_datagram_too_big_limits_only_the_path_it_was_sent_on() {
    use mlvpn_rs::proto::tunnel::{HEADROOM, OVERHEAD};
    let mut net = two_path_net();
    let send = |net: &mut Net, id: u64, len: usize| {
        let packet = ipv4_packet(CLIENT_IP, SERVER_IP, id, len);
        let mut buf = vec![0u8; packet.len() + OVERHEAD];
        buf[HEADROOM..HEADROOM + packet.len()].copy_from_slice(&packet);
        let now = net.now;
        net.nodes[1]
            .tunnel
            .handle_tun_packet(&mut buf, packet.len(), now)
            .expect("sent")
    };
    // Big datagrams go out on both paths; one of p0's does not fit.
    let mut first = None;
    for i in 0..40 {
        let t = send(&mut net, i, 1200);
        if t.socket == SocketId::new(0) {
            first = Some(t);
            break;
        }
    }
    let t = first.expect("p0 carries big datagrams");
    net.nodes[1].tunnel.datagram_too_big(t);
    assert_eq!(net.nodes[1].tunnel.drops().too_big, 1);
    // From now on big ones avoid p0; small ones still use it.
    let big: Vec<SocketId> = (100..140).map(|i| send(&mut net, i, 1200).socket).collect();
    assert!(big.iter().all(|s| *s == SocketId::new(1)), "{big:?}");
    let small: Vec<SocketId> = (200..300).map(|i| send(&mut net, i, 100).socket).collect();
    assert!(small.contains(&SocketId::new(0)), "{small:?}");
}
