//! A concentrator with a fleet: 2000 configured peers, the real client the
//! last of them. It starts (the hand-over to the worker is ~200 KB), routes
//! the client's traffic, answers `status` for all of them and reloads.

use std::fmt::Write;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::topo::{can_run, wait_until, Topo};

/// Peers before the real client.
const OTHERS: usize = 1999;

/// `[[peer]]` tables for `n` made-up clients (any 32 bytes are a public
/// key), each owning 10.NET.x.y/32: outside the TUN's own network, so each
/// needs a route.
fn made_up_peers(n: usize, seed: u8, net: u8) -> String {
    let mut text = String::new();
    for i in 0..n {
        let mut k = [seed; 32];
        k[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let key = mlvpn_keys::PublicKey(k).to_base64();
        let _ = write!(
            text,
            "[[peer]]\npublic_key = \"{key}\"\nallowed_ips = [\"10.{net}.{}.{}/32\"]\n",
            i >> 8,
            i & 255
        );
    }
    text
}

#[test]
fn a_server_with_2000_peers_serves_its_last_one() {
    if !can_run("a_server_with_2000_peers_serves_its_last_one") {
        return;
    }
    let mut t = Topo::new();
    let (s, c) = t.pair_configs();
    // The fleet goes before the real client's [[peer]].
    let text = std::fs::read_to_string(&s).unwrap();
    let (head, tail) = text.split_once("[[peer]]").unwrap();
    let fleet = format!("{head}{}[[peer]]{tail}", made_up_peers(OTHERS, 0x11, 200));
    std::fs::write(&s, &fleet).unwrap();
    let (a, b) = (t.a.clone(), t.b.clone());
    let started = Instant::now();
    t.start("server", &b, &s);
    eprintln!(
        "server with {} peers answering after {:?}",
        OTHERS + 1,
        started.elapsed()
    );
    t.start("client", &a, &c);
    t.wait_paths("client", &["up", "up"], Duration::from_secs(15));
    assert!(t.ping(3), "the last peer's traffic is routed");
    let routes = t.ns_cmd(&b, &["ip", "route", "show", "dev", "mlvpn0"]);
    let routes = String::from_utf8_lossy(&routes.stdout);
    assert_eq!(
        routes.lines().filter(|l| l.starts_with("10.200.")).count(),
        OTHERS
    );

    let asked = Instant::now();
    let status = t.status("server").expect("status answers");
    eprintln!("status of {} peers in {:?}", OTHERS + 1, asked.elapsed());
    let peers = status["peers"].as_array().unwrap();
    assert_eq!(peers.len(), OTHERS + 1);
    assert_eq!(peers[OTHERS]["paths"].as_array().map(Vec::len), Some(2));

    // A reload that adds a peer keeps the client's sessions.
    let handshakes = |t: &Topo| -> u64 {
        let s = t.status("server").unwrap();
        s["peers"][OTHERS]["paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["handshakes"].as_u64().unwrap())
            .sum()
    };
    let before = handshakes(&t);
    let (head, tail) = fleet.split_at(fleet.find("[[path]]").unwrap());
    std::fs::write(&s, format!("{head}{}{tail}", made_up_peers(1, 0x22, 201))).unwrap();
    t.signal("server", Signal::SIGHUP);
    wait_until("the server reloads", Duration::from_secs(20), || {
        t.log_text("server").contains("peers added 1, removed 0")
    });
    assert!(t.ping(3), "traffic after the reload");
    assert_eq!(handshakes(&t), before, "the reload kept the client's sessions");
    let routes = t.ns_cmd(&b, &["ip", "route", "show", "dev", "mlvpn0"]);
    assert_eq!(
        String::from_utf8_lossy(&routes.stdout)
            .lines()
            .filter(|l| l.starts_with("10.200.") || l.starts_with("10.201."))
            .count(),
        OTHERS + 1
    );
}
