//! End-to-end tests: two real daemons in network namespaces, real traffic.
//! Need root (skip loudly otherwise); CI runs them as root.

mod capture;
mod data_path;
mod failover;
mod fleet;
mod full_tunnel;
mod ipv6;
mod privsep;
mod reload;
mod restart;
mod service;
mod topo;

use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use topo::{can_run, wait_until, Topo};

/// Waits for an iperf3 client and returns its JSON report (panics if it failed).
pub(crate) fn iperf_result(mut child: std::process::Child) -> Value {
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let status = child.wait().unwrap();
    let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    assert!(status.success(), "iperf3 failed: {out}");
    assert!(v["error"].is_null(), "iperf3 error: {}", v["error"]);
    v
}

fn received_bytes(v: &Value) -> u64 {
    v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0)
}

#[test]
fn ping_and_tcp_use_both_paths() {
    if !can_run("ping_and_tcp_use_both_paths") {
        return;
    }
    let mut t = Topo::new();
    let a = t.a.clone();
    // Two 15 Mbit/s uplinks: one TCP stream needs both (even from a debug build).
    for dev in ["va1", "va2"] {
        let tbf = [
            "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", "15mbit", "burst", "512kbit", "latency",
            "100ms",
        ];
        assert!(t.ns_cmd(&a, &tbf).status.success(), "tc tbf on {dev}");
    }
    t.start_pair();
    assert!(t.ping(3), "ping through the tunnel");
    let before = [t.counter(&a, "va1", "tx_bytes"), t.counter(&a, "va2", "tx_bytes")];
    t.iperf_server();
    let v = iperf_result(t.iperf_client(&["-t", "3"]));
    let got = received_bytes(&v);
    assert!(got > 1_000_000, "TCP transfer moved only {got} bytes");
    let sent = [
        t.counter(&a, "va1", "tx_bytes") - before[0],
        t.counter(&a, "va2", "tx_bytes") - before[1],
    ];
    let total = sent[0] + sent[1];
    eprintln!(
        "transfer {got} bytes; va1 {} bytes, va2 {} bytes; client paths {}",
        sent[0],
        sent[1],
        t.status("client")
            .map(|s| s["peers"][0]["paths"].to_string())
            .unwrap_or_default()
    );
    for (i, s) in sent.iter().enumerate() {
        assert!(
            *s * 10 >= total,
            "path {} carried only {s} of {total} bytes",
            i + 1
        );
    }
    assert!(total >= got, "the tunnel carried the transfer");
    // What an operator sees: the table and the Prometheus text.
    let table = t.status_text("client", &[]);
    eprintln!("{table}");
    for want in ["PATH", "LOSS", "RATE", "HANDSHAKE", "reorder:"] {
        assert!(table.contains(want), "status table lacks {want}:\n{table}");
    }
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.trim_start().starts_with("dsl ") || l.trim_start().starts_with("lte "))
        .collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(rows.iter().all(|r| r.contains(" up ")), "{table}");
    let prom = t.status_text("client", &["--prometheus"]);
    for path in ["dsl", "lte"] {
        let up = format!("path=\"{path}\"}} 1");
        assert!(
            prom.lines()
                .any(|l| l.starts_with("mlvpn_path_up{") && l.ends_with(&up)),
            "{prom}"
        );
        let tx = prom
            .lines()
            .find(|l| {
                l.starts_with("mlvpn_path_transmit_bytes_total{") && l.contains(&format!("path=\"{path}\""))
            })
            .and_then(|l| l.rsplit_once(' '))
            .map(|(_, v)| v.parse::<f64>().unwrap())
            .unwrap_or(0.0);
        assert!(tx > 100_000.0, "{path} transmit bytes {tx}");
    }
}

/// Captures one data datagram (type 4, carrying a ping) on its way to the
/// server's dsl socket, using a packet socket inside namespace B.
/// Returns the path number (1 = dsl to :5080, 2 = lte to :5081) it was on
/// (the scheduler chooses) and the datagram.
fn capture_data_datagram(t: &Topo) -> (u8, Vec<u8>) {
    use nix::sys::socket::{
        recv, setsockopt, socket, sockopt, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType,
    };
    let sock = t.in_ns(&t.b, || {
        let s = socket(
            AddressFamily::Packet,
            SockType::Datagram,
            SockFlag::empty(),
            SockProtocol::EthAll,
        )
        .unwrap();
        setsockopt(
            &s,
            sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(0, 200_000),
        )
        .unwrap();
        s
    });
    let pinger = {
        let a = t.a.clone();
        std::thread::spawn(move || {
            topo::run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &a,
                    "ping",
                    "-c",
                    "5",
                    "-i",
                    "0.2",
                    "-s",
                    "200",
                    "10.42.0.1",
                ],
            )
        })
    };
    let mut buf = [0u8; 4096];
    let mut found = None;
    let end = std::time::Instant::now() + Duration::from_secs(5);
    while found.is_none() && std::time::Instant::now() < end {
        use std::os::fd::AsRawFd;
        let Ok(n) = recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()) else {
            continue;
        };
        let p = &buf[..n];
        // IPv4, UDP, to port 5080, payload type 4 and big enough for a ping.
        if n < 28 || p[0] >> 4 != 4 || p[9] != 17 {
            continue;
        }
        let ihl = (p[0] & 15) as usize * 4;
        let dport = u16::from_be_bytes([p[ihl + 2], p[ihl + 3]]);
        let payload = &p[ihl + 8..];
        if (dport == 5080 || dport == 5081) && payload.first() == Some(&4) && payload.len() > 200 {
            found = Some(((dport - 5079) as u8, payload.to_vec()));
        }
    }
    assert!(pinger.join().unwrap().status.success(), "ping through the tunnel");
    found.expect("captured a data datagram to the server")
}

#[test]
fn replayed_datagram_not_delivered() {
    if !can_run("replayed_datagram_not_delivered") {
        return;
    }
    let mut t = Topo::new();
    t.start_pair();
    let (path, datagram) = capture_data_datagram(&t);
    let b = t.b.clone();
    let status = t.status("server").unwrap();
    let endpoint = |s: &Value| -> Vec<String> {
        s["peers"][0]["paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["endpoint"].to_string())
            .collect()
    };
    let endpoints_before = endpoint(&status);
    let replayed_before = t.drops("server", "replayed");
    let rx_before = t.counter(&b, "mlvpn0", "rx_packets");
    // The attacker's address on the same link.
    let a = t.a.clone();
    assert!(t
        .ns_cmd(
            &a,
            &[
                "ip",
                "addr",
                "add",
                &format!("10.10{path}.0.3/24"),
                "dev",
                &format!("va{path}")
            ]
        )
        .status
        .success());
    let s = t.socket_in_a(&format!("10.10{path}.0.3:0"));
    let dst: SocketAddr = format!("10.10{path}.0.2:508{}", path - 1).parse().unwrap();
    s.send_to(&datagram, dst).unwrap();
    wait_until("server counts the replay", Duration::from_secs(5), || {
        t.drops("server", "replayed") > replayed_before
    });
    assert_eq!(
        t.counter(&b, "mlvpn0", "rx_packets"),
        rx_before,
        "replayed packet reached the server's TUN"
    );
    assert_eq!(
        endpoint(&t.status("server").unwrap()),
        endpoints_before,
        "replay moved a path endpoint"
    );
    assert!(t.ping(2), "tunnel still works");
}

#[test]
fn garbage_is_dropped_while_transfer_runs() {
    if !can_run("garbage_is_dropped_while_transfer_runs") {
        return;
    }
    let mut t = Topo::new();
    t.start_pair();
    let (path, datagram) = capture_data_datagram(&t);
    let before = t.drops_total("server");
    let counts_before = |c: &str| t.drops("server", c);
    let (mal, idx, auth, mac) = (
        counts_before("malformed"),
        counts_before("unknown_index"),
        counts_before("auth_failed"),
        counts_before("handshake_bad_mac"),
    );
    t.iperf_server();
    let client = t.iperf_client(&["-t", "4"]);
    let s = t.socket_in_a(&format!("10.10{path}.0.1:0"));
    let dst: SocketAddr = format!("10.10{path}.0.2:508{}", path - 1).parse().unwrap();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut sent = 0u64;
    for i in 0..2000u64 {
        let r = rnd();
        let d: Vec<u8> = match i % 5 {
            0 => (0..(1 + r % 1400)).map(|_| rnd() as u8).collect(),
            1 => {
                let mut d = vec![4u8, 0, 0, 0];
                d.extend((0..(r % 28)).map(|_| rnd() as u8));
                d
            }
            // Forged data: real header shape, unknown index.
            2 => {
                let mut d = datagram.clone();
                d[4..8].copy_from_slice(&((r % 1000) as u32 + 1).to_le_bytes());
                d
            }
            // Forged data on the real session: fresh counter, flipped ciphertext.
            3 => {
                let mut d = datagram.clone();
                d[8..16].copy_from_slice(&(r | 1 << 62).to_le_bytes());
                let at = 16 + (r as usize % (d.len() - 16));
                d[at] ^= 0x80;
                d
            }
            _ => {
                let mut d: Vec<u8> = (0..178).map(|_| rnd() as u8).collect();
                d[0] = 1;
                d[1..4].fill(0);
                d
            }
        };
        s.send_to(&d, dst).unwrap();
        sent += 1;
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let v = iperf_result(client);
    assert!(
        received_bytes(&v) > 1_000_000,
        "transfer completed during the flood"
    );
    assert!(t.daemon_alive("server"));
    wait_until("server counted the garbage", Duration::from_secs(5), || {
        t.drops_total("server") - before >= sent * 95 / 100
    });
    assert!(t.drops("server", "malformed") > mal);
    assert!(t.drops("server", "unknown_index") > idx);
    assert!(t.drops("server", "auth_failed") > auth);
    assert!(t.drops("server", "handshake_bad_mac") > mac);
    assert!(t.ping(2), "tunnel still works");
    // 2000 drops, summed up in the log (at most one line per 10 s), never
    // one line each.
    wait_until(
        "a drop summary in the server log",
        Duration::from_secs(12),
        || t.log_text("server").contains("dropped in the last 10s"),
    );
    let log = t.log_text("server");
    let summaries = log.lines().filter(|l| l.contains("dropped in the last")).count();
    assert!(summaries <= 2, "{summaries} drop lines");
    assert!(
        log.lines().count() < 200,
        "the log stays short: {} lines",
        log.lines().count()
    );
}

#[test]
fn unknown_client_key_gets_no_tunnel() {
    if !can_run("unknown_client_key_gets_no_tunnel") {
        return;
    }
    let mut t = Topo::new();
    let (skey, spub) = t.key("server");
    let (_, known) = t.key("known");
    let (ckey, _) = t.key("stranger");
    let s = t.server_config(&skey, &known);
    let c = t.client_config(&ckey, &spub);
    let (a, b) = (t.a.clone(), t.b.clone());
    t.start("server", &b, &s);
    t.start("client", &a, &c);
    wait_until("server refuses the stranger", Duration::from_secs(10), || {
        t.drops("server", "handshake_unknown_peer") >= 2
    });
    assert!(
        t.path_states("client").iter().all(|s| s != "up"),
        "{:?}",
        t.path_states("client")
    );
    assert_eq!(
        t.status("server").unwrap()["peers"][0]["paths"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert!(!t
        .ns_cmd(&a, &["ping", "-c", "2", "-W", "1", "10.42.0.1"])
        .status
        .success());
}

#[test]
fn path_cut_mid_transfer_completes() {
    if !can_run("path_cut_mid_transfer_completes") {
        return;
    }
    let mut t = Topo::new();
    t.start_pair();
    t.iperf_server();
    let a = t.a.clone();
    let tx = |t: &Topo| [t.counter(&a, "va1", "tx_bytes"), t.counter(&a, "va2", "tx_bytes")];
    let start = tx(&t);
    let client = t.iperf_client(&["-t", "8"]);
    wait_until("traffic through the tunnel", Duration::from_secs(10), || {
        let now = tx(&t);
        now[0] + now[1] > start[0] + start[1] + 5_000_000
    });
    // Cut the uplink that carries more (the scheduler picks by arrival time).
    let now = tx(&t);
    let busy = if now[0] - start[0] >= now[1] - start[1] {
        0
    } else {
        1
    };
    let dev = ["va1", "va2"][busy];
    assert!(t.ns_cmd(&a, &["ip", "link", "set", dev, "down"]).status.success());
    let v = iperf_result(client);
    assert!(received_bytes(&v) > 1_000_000);
    let want: [&str; 2] = if busy == 0 { ["down", "up"] } else { ["up", "down"] };
    t.wait_paths("client", &want, Duration::from_secs(10));
    // The surviving path carried the end of the transfer.
    let s = t.status("client").unwrap();
    assert!(s["peers"][0]["paths"][1 - busy]["tx_bytes"].as_u64().unwrap() > 1_000_000);
}
