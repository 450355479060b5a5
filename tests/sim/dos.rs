//! Handshake floods: the server stops doing Diffie-Hellman for initiations
//! that cannot prove their source address (cookies, `mac2`), established
//! paths keep carrying data, and a legitimate new client still gets in.

use std::net::SocketAddr;
use std::time::Duration;

use mlvpn_keys::PrivateKey;
use mlvpn_rs::proto::handshake::{InitPayload, Initiator};
use mlvpn_rs::proto::mac::Mac1Key;
use mlvpn_rs::proto::wire::{INIT_LEN, MAC_LEN};
use mlvpn_rs::proto::SocketId;

use crate::net::{ipv4_packet, packet_id, Net};
use crate::{client, key, server_for, server_sockets, states, status, CLIENT_IP, SERVER_IP};

/// An initiation from a key the server does not know, with a valid `mac1`
/// (anyone who knows the server's public key can make one): a template the
/// flood re-uses with a fresh sender index and `mac1` each time.
fn flood_template() -> Vec<u8> {
    let payload = InitPayload {
        unix_ns: 1,
        path_id: 0,
        path_name: "x".into(),
    };
    let (_, msg) = Initiator::start(
        &PrivateKey::from_bytes([99; 32]),
        &key(1).public_key(),
        1,
        &payload,
        None,
    )
    .unwrap();
    msg.to_vec()
}

fn flood_one(net: &mut Net, template: &[u8], i: u32) {
    let mut m = template.to_vec();
    m[4..8].copy_from_slice(&i.to_le_bytes());
    let mac1_at = INIT_LEN - 2 * MAC_LEN;
    let mac = Mac1Key::for_receiver(&key(1).public_key()).compute(&m[..mac1_at]);
    m[mac1_at..mac1_at + MAC_LEN].copy_from_slice(&mac);
    // Spoofed sources: many addresses and ports.
    let from: SocketAddr = format!("198.51.{}.{}:{}", (i >> 8) % 250, i % 250 + 1, 1024 + i % 60000)
        .parse()
        .unwrap();
    net.send_raw(from, server_sockets()[(i % 2) as usize], m);
}

#[test]
fn a_handshake_flood_gets_cookies_and_stops_neither_data_nor_a_new_client() {
    let start = std::time::Instant::now();
    let mut net = Net::new(start);
    net.add(server_for(start, &[2, 3, 4]), server_sockets());
    let (c1, s1) = client(start, 2, &["10.101.0.1:40000", "10.102.0.1:40001"], &[]);
    net.add(c1, s1);
    net.run_for(Duration::from_secs(1));
    assert_eq!(states(&status(&net, 1)), ["up", "up"]);

    // 10 000 initiations/s for 3 s, while the established client sends a
    // packet every millisecond; a second client starts after 1 s.
    let template = flood_template();
    let mut n = 0u32;
    let mut sent = 0u64;
    for ms in 0..3000u32 {
        for _ in 0..10 {
            flood_one(&mut net, &template, n);
            n += 1;
        }
        assert!(net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, sent, 300)));
        sent += 1;
        if ms == 1000 {
            let (c2, s2) = client(net.now, 3, &["10.101.0.7:40000", "10.102.0.7:40001"], &[]);
            net.add(c2, s2);
        }
        net.run_for(Duration::from_millis(1));
    }
    net.run_for(Duration::from_millis(100));

    let s = status(&net, 0);
    // Data kept flowing on the established paths, nothing lost.
    let from_c1: Vec<u64> = net.nodes[0].delivered.iter().map(|p| packet_id(p)).collect();
    assert_eq!(
        from_c1.len() as u64,
        sent,
        "every data packet arrived during the flood"
    );
    assert_eq!(states(&status(&net, 1)), ["up", "up"]);
    // The new client got cookies, retried with mac2 and came up.
    assert_eq!(
        states(&status(&net, 2)),
        ["up", "up"],
        "the new client completed its handshakes"
    );
    assert!(s.drops.handshake_cookie_sent > 25_000, "{:?}", s.drops);
    // Diffie-Hellman ran only until the load was noticed: the flood's
    // unknown key was found out at most ~ the load threshold times.
    assert!(
        s.drops.handshake_unknown_peer <= 2 * u64::from(mlvpn_rs::proto::cookie::UNDER_LOAD_PER_SEC),
        "DH for {} flood initiations",
        s.drops.handshake_unknown_peer
    );
    // Once the flood is over, no cookie is needed any more.
    net.run_for(Duration::from_secs(3));
    let cookies = status(&net, 0).drops.handshake_cookie_sent;
    let (c3, s3) = client(net.now, 4, &["10.101.0.9:40000", "10.102.0.9:40001"], &[]);
    net.add(c3, s3);
    net.run_for(Duration::from_secs(1));
    assert_eq!(states(&status(&net, 3)), ["up", "up"]);
    assert_eq!(status(&net, 0).drops.handshake_cookie_sent, cookies);
}

#[test]
fn a_proven_address_over_its_rate_is_refused_without_a_handshake() {
    // A flooder that does get its cookies (no spoofing) is held to the
    // per-address rate: its mac2-valid initiations beyond it cost nothing.
    let start = std::time::Instant::now();
    let mut net = Net::new(start);
    net.add(server_for(start, &[2]), server_sockets());
    // The flooder is a client node with a key the server does not know and
    // 32 paths from one address (one rate budget), retrying all the time.
    let locals: Vec<String> = (0..32).map(|i| format!("203.0.113.5:{}", 20000 + i)).collect();
    let locals: Vec<&str> = locals.iter().map(String::as_str).collect();
    let (f, fs) = client(start, 7, &locals, &[]);
    net.add(f, fs);
    let template = flood_template();
    for i in 0..2000u32 {
        // Keep the server under load with spoofed initiations.
        flood_one(&mut net, &template, i);
        if i % 10 == 0 {
            net.run_for(Duration::from_millis(1));
        }
    }
    net.run_for(Duration::from_secs(3));
    let s = status(&net, 0);
    assert!(s.drops.handshake_cookie_sent > 0);
    assert!(s.drops.handshake_rate_limited > 0, "{:?}", s.drops);
}

#[test]
fn a_client_cannot_make_the_server_keep_more_than_32_paths() {
    // A real client (it knows its key) initiating on 40 path ids, more than
    // its own tunnel would ever make.
    let start = std::time::Instant::now();
    let mut net = Net::new(start);
    net.add(server_for(start, &[2]), server_sockets());
    for id in 0..40u8 {
        let payload = InitPayload {
            unix_ns: 1_700_000_000_000_000_000 + u64::from(id),
            path_id: id,
            path_name: format!("p{id}"),
        };
        let (_, msg) =
            Initiator::start(&key(2), &key(1).public_key(), u32::from(id), &payload, None).unwrap();
        let from: SocketAddr = format!("10.101.0.1:{}", 40000 + u32::from(id)).parse().unwrap();
        net.send_raw(from, server_sockets()[0], msg.to_vec());
    }
    net.run_for(Duration::from_millis(100));
    let s = status(&net, 0);
    assert_eq!(
        s.peers[0].paths.len(),
        mlvpn_rs::proto::tunnel::MAX_PATHS_PER_PEER
    );
    assert_eq!(s.drops.handshake_invalid, 8, "{:?}", s.drops);
}

#[test]
fn the_outgoing_control_queue_is_bounded() {
    // 5000 initiations from as many addresses arrive before the caller
    // drains anything: the cookie replies queue up to the bound, the rest
    // are counted, nothing grows further.
    let start = std::time::Instant::now();
    let mut net = Net::new(start);
    net.add(server_for(start, &[2]), server_sockets());
    let template = flood_template();
    let mac1_at = INIT_LEN - 2 * MAC_LEN;
    let mac = Mac1Key::for_receiver(&key(1).public_key());
    for i in 0..5000u32 {
        let mut m = template.clone();
        m[4..8].copy_from_slice(&i.to_le_bytes());
        let m1 = mac.compute(&m[..mac1_at]);
        m[mac1_at..mac1_at + MAC_LEN].copy_from_slice(&m1);
        let from: SocketAddr = format!("198.51.100.{}:{}", i % 250 + 1, 1024 + i)
            .parse()
            .unwrap();
        let _ = net.nodes[0]
            .tunnel
            .handle_datagram(SocketId::new(0), from, &mut m, start);
    }
    let mut buf = vec![0u8; 2048];
    let mut queued = 0;
    while net.nodes[0].tunnel.poll_transmit(&mut buf, start).is_some() {
        queued += 1;
    }
    assert_eq!(queued, 1024, "the control queue holds at most 1024");
    let d = status(&net, 0).drops;
    assert_eq!(d.queue_full + queued, 5000 - d.handshake_unknown_peer, "{d:?}");
}
