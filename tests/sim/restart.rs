//! A server that restarts (crash, upgrade, reboot) loses every session; the
//! client must find it again within about a second of its return, however
//! long it was away, while the site has traffic for the tunnel.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::net::{ipv4_packet, packet_id, Net};
use crate::{key, server_sockets, server_started, states, status, two_path_net, CLIENT_IP, SERVER_IP};

/// Every link to and from the server's sockets cut (or restored).
fn server_reachable(net: &mut Net, up: bool) {
    let clients: Vec<SocketAddr> = net.nodes[1].sockets.values().copied().collect();
    for s in server_sockets() {
        for &c in &clients {
            net.link(s, c).cut = !up;
            net.link(c, s).cut = !up;
        }
    }
}

/// When the tunnel was back after `since`: each side delivered a packet
/// the other sent after it, and every client path was up again.
#[derive(Default)]
struct Back {
    data: Option<Instant>,
    all_paths: Option<Instant>,
}

/// Sends data both ways every 5 ms until `until`, watching for the
/// tunnel's return after `since`.
fn traffic_until(net: &mut Net, until: Instant, since: Instant, next_id: &mut u64) -> Back {
    let mut back = Back::default();
    let mut first_id_after: Option<u64> = None;
    while net.now < until {
        if first_id_after.is_none() && net.now >= since {
            first_id_after = Some(*next_id);
        }
        net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, *next_id, 300));
        net.tun_send(0, &ipv4_packet(SERVER_IP, CLIENT_IP, *next_id, 300));
        *next_id += 1;
        net.run_for(Duration::from_millis(5));
        if back.data.is_none() {
            let f = first_id_after;
            let got = |n: usize| f.is_some_and(|f| net.nodes[n].delivered.iter().any(|p| packet_id(p) >= f));
            if got(0) && got(1) {
                back.data = Some(net.now);
            }
        }
        if back.all_paths.is_none() && states(&status(net, 1)).iter().all(|s| s == "up") {
            back.all_paths = Some(net.now);
        }
    }
    back
}

#[test]
fn a_restarted_server_is_found_within_a_second_however_long_it_was_away() {
    for away_ms in [300u64, 1300, 2300, 3300, 4300, 6300, 9300] {
        let mut net = two_path_net();
        let net_start = net.now - Duration::from_secs(1);
        let mut id = 0u64;
        let (now, t) = (net.now, net.now + Duration::from_secs(1));
        traffic_until(&mut net, t, now, &mut id);
        assert_eq!(states(&status(&net, 1)), ["up", "up"]);
        // The server dies: no answer, its state gone.
        server_reachable(&mut net, false);
        let (now, t) = (net.now, net.now + Duration::from_millis(away_ms));
        traffic_until(&mut net, t, now, &mut id);
        // The path carrying data notices within its silence limit, an idle
        // one at its next keepalive.
        let st = states(&status(&net, 1));
        let noticed = if away_ms >= 2000 {
            st.iter().all(|s| s != "up")
        } else {
            st.iter().any(|s| s != "up")
        };
        assert!(
            noticed,
            "away {away_ms} ms: the client noticed the server's absence: {st:?}"
        );
        // It comes back, as a fresh process (same wall clock).
        net.nodes[0].tunnel = server_started(net_start, net.now, vec![(key(2).public_key(), "10.42.0.2/32")]);
        net.nodes[0].delivered.clear();
        server_reachable(&mut net, true);
        let back = net.now;
        let b = traffic_until(&mut net, back + Duration::from_secs(3), back, &mut id);
        let data = b.data.expect("the tunnel carried data again") - back;
        let paths = b.all_paths.expect("every path came back") - back;
        eprintln!(
            "away {away_ms} ms: data through {data:?}, every path up {paths:?} after the server returned"
        );
        assert!(
            data <= Duration::from_secs(1) && paths <= Duration::from_secs(1),
            "away {away_ms} ms: data through {data:?}, every path up {paths:?} after the server returned"
        );
    }
}
