//! The relay on loopback: forwarding through NAT, loss, rate, delay, cut,
//! NAT reset. Timing checks are lower bounds (the machine is shared).

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use mlvpn_linkemu::relay::Relay;
use mlvpn_linkemu::spec::Spec;

fn any() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn sock() -> UdpSocket {
    let s = UdpSocket::bind(any()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    s
}

fn spec(text: &str) -> Spec {
    let mut s = Spec::default();
    s.apply(text).unwrap();
    s
}

#[test]
fn relays_both_ways_through_a_nat_mapping() {
    let server = sock();
    let relay = Relay::start(
        any(),
        server.local_addr().unwrap(),
        Spec::default(),
        Spec::default(),
        1,
    )
    .unwrap();
    let (a, b) = (sock(), sock());
    a.send_to(b"from a", relay.listen_addr()).unwrap();
    let mut buf = [0u8; 64];
    let (n, a_mapped) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"from a");
    b.send_to(b"from b", relay.listen_addr()).unwrap();
    let (_, b_mapped) = server.recv_from(&mut buf).unwrap();
    assert_ne!(a_mapped, b_mapped, "one mapping per client");
    server.send_to(b"to a", a_mapped).unwrap();
    let (n, from) = a.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"to a"[..], relay.listen_addr()));
    // NAT reset: a's next packet arrives from a new port.
    assert_eq!(relay.command("nat-reset"), "ok");
    a.send_to(b"again", relay.listen_addr()).unwrap();
    let (_, remapped) = server.recv_from(&mut buf).unwrap();
    assert_ne!(remapped, a_mapped);
}

#[test]
fn loss_is_close_to_configured() {
    let server = sock();
    let relay = Relay::start(
        any(),
        server.local_addr().unwrap(),
        spec("loss=0.3"),
        Spec::default(),
        42,
    )
    .unwrap();
    let counter = std::thread::spawn(move || {
        let mut got = 0;
        let mut buf = [0u8; 16];
        while server.recv_from(&mut buf).is_ok() {
            got += 1;
        }
        got
    });
    let c = sock();
    for i in 0..2000u32 {
        c.send_to(&i.to_le_bytes(), relay.listen_addr()).unwrap();
        // Paced so no socket buffer overflows: loss is the relay's only.
        if i % 20 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let got = counter.join().unwrap();
    let lost = 1.0 - got as f64 / 2000.0;
    assert!(
        (0.25..0.35).contains(&lost),
        "lost {lost}: {}",
        relay.command("stats")
    );
    assert!(relay.command("stats").contains("\"dropped_loss\""));
}

#[test]
fn delay_and_rate_hold_packets_back_and_fifo_is_kept() {
    let server = sock();
    let up = spec("delay=20ms jitter=5ms rate=8mbit queue=1000000");
    let relay = Relay::start(any(), server.local_addr().unwrap(), up, Spec::default(), 7).unwrap();
    let c = sock();
    let start = Instant::now();
    // 100 x 1000 bytes at 8 Mbit/s take >= 100 ms to serialize.
    for i in 0..100u32 {
        let mut p = [0u8; 1000];
        p[..4].copy_from_slice(&i.to_le_bytes());
        c.send_to(&p, relay.listen_addr()).unwrap();
        if i % 10 == 9 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let mut buf = [0u8; 2048];
    let mut order = Vec::new();
    let mut first = None;
    while order.len() < 100 {
        let (n, _) = server.recv_from(&mut buf).expect("all packets relayed");
        assert_eq!(n, 1000);
        first.get_or_insert(start.elapsed());
        order.push(u32::from_le_bytes(buf[..4].try_into().unwrap()));
    }
    let all = start.elapsed();
    assert!(
        first.unwrap() >= Duration::from_millis(15),
        "delay applied: {first:?}"
    );
    assert!(all >= Duration::from_millis(100), "rate applied: {all:?}");
    assert_eq!(order, (0..100).collect::<Vec<_>>(), "FIFO despite jitter");
}

#[test]
fn small_queue_drops_tail_and_cut_blackholes() {
    let server = sock();
    let up = spec("rate=1mbit queue=5000");
    let relay = Relay::start(any(), server.local_addr().unwrap(), up, Spec::default(), 3).unwrap();
    let c = sock();
    for _ in 0..50 {
        c.send_to(&[0u8; 1000], relay.listen_addr()).unwrap();
    }
    let mut buf = [0u8; 2048];
    let mut got = 0;
    while server.recv_from(&mut buf).is_ok() {
        got += 1;
    }
    assert!(got < 20, "drop-tail queue bounded the burst: {got}");
    assert!(relay.command("stats").contains("\"dropped_queue\""));
    assert_eq!(relay.command("cut up"), "ok");
    c.send_to(b"x", relay.listen_addr()).unwrap();
    assert!(server.recv_from(&mut buf).is_err(), "cut link delivers nothing");
    assert_eq!(relay.command("restore"), "ok");
    assert_eq!(relay.command("set up rate=none"), "ok");
    c.send_to(b"y", relay.listen_addr()).unwrap();
    assert!(server.recv_from(&mut buf).is_ok());
    assert!(relay.command("bogus").starts_with("error"));
    assert!(relay.command("set sideways delay=1ms").starts_with("error"));
}
