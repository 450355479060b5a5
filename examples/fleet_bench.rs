//! Per-packet cost of the protocol core on a concentrator, as a ratio of a
//! server with 10 000 configured peers to one with a single peer, measured
//! side by side in one run. One client is up; its packets go both ways
//! through the server the way the IO driver moves them: per batch of
//! packets, one `handle_timeout` and one `poll_timeout`.
//!
//!     cargo run --release --example fleet_bench [PACKETS]
//!
//! A cost that grows with the fleet (a scan of every peer per packet or per
//! batch) shows as a ratio well above 1.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use mlvpn_keys::PrivateKey;
use mlvpn_rs::proto::clock::Clock;
use mlvpn_rs::proto::tunnel::{PathSpec, PeerSpec, TunnelSettings, HEADROOM, OVERHEAD, REKEY_AFTER_TIME};
use mlvpn_rs::proto::Mode;
use mlvpn_rs::proto::{SocketId, Tunnel, TunnelConfig};

/// Packets per batch, as the IO driver reads them.
const BATCH: usize = 64;

fn key(i: u64) -> PrivateKey {
    let mut b = [0x33; 32];
    b[1..9].copy_from_slice(&i.to_le_bytes());
    PrivateKey::from_bytes(b)
}

fn inner_ip(i: u64) -> [u8; 4] {
    [10, 100, (i >> 8) as u8, i as u8]
}

/// An IPv4/UDP packet of `len` bytes.
fn packet(src: [u8; 4], dst: [u8; 4], len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    p
}

struct Pair {
    server: Tunnel,
    client: Tunnel,
    now: Instant,
    client_addr: SocketAddr,
    server_addr: SocketAddr,
    /// The client's inner address and config index on the server.
    member: u64,
}

/// These peers and paths, with short timers.
fn settings(peers: Vec<PeerSpec>, paths: Vec<PathSpec>) -> TunnelSettings {
    TunnelSettings {
        keepalive: Duration::from_secs(1),
        path_timeout: Duration::from_secs(3),
        rekey_after: REKEY_AFTER_TIME,
        peers,
        paths,
    }
}

fn pair(fleet: u64) -> Pair {
    let now = Instant::now();
    let clock = Clock::new(now, 1_700_000_000_000_000_000);
    let member = fleet - 1;
    let server = Tunnel::new(
        TunnelConfig {
            mode: Mode::Server,
            private_key: key(u64::MAX),
            settings: settings(
                (0..fleet)
                    .map(|i| PeerSpec {
                        public_key: key(i).public_key(),
                        allowed_ips: vec![IpNet::new(inner_ip(i).into(), 32).unwrap()],
                    })
                    .collect(),
                vec![],
            ),
            rng_seed: [1; 32],
        },
        clock,
        now,
    );
    let server_addr: SocketAddr = "192.0.2.1:5080".parse().unwrap();
    let client = Tunnel::new(
        TunnelConfig {
            mode: Mode::Client,
            private_key: key(member),
            settings: settings(
                vec![PeerSpec {
                    public_key: key(u64::MAX).public_key(),
                    allowed_ips: vec!["10.0.0.0/8".parse().unwrap()],
                }],
                vec![PathSpec {
                    name: "wan".into(),
                    socket: SocketId::new(0),
                    endpoint: server_addr,
                    bandwidth_up: None,
                    fallback: false,
                }],
            ),
            rng_seed: [2; 32],
        },
        clock,
        now,
    );
    let mut p = Pair {
        server,
        client,
        now,
        client_addr: "198.51.100.7:40000".parse().unwrap(),
        server_addr,
        member,
    };
    // Handshake: relay control messages until quiet.
    for _ in 0..20 {
        p.client.handle_timeout(p.now);
        p.server.handle_timeout(p.now);
        p.relay_control();
        p.now += Duration::from_millis(1);
    }
    let up = p.client.status("c", p.now).peers[0].paths[0]
        .state
        .as_str()
        .to_string();
    assert_eq!(up, "up", "the bench's client handshakes");
    p
}

impl Pair {
    fn relay_control(&mut self) {
        let mut buf = vec![0u8; 2048];
        while let Some(t) = self.client.poll_transmit(&mut buf, self.now) {
            self.server
                .handle_datagram(SocketId::new(0), self.client_addr, &mut buf[..t.len], self.now);
        }
        while let Some(t) = self.server.poll_transmit(&mut buf, self.now) {
            self.client
                .handle_datagram(SocketId::new(0), self.server_addr, &mut buf[..t.len], self.now);
        }
    }

    /// Moves `n` packets each way, in batches; returns the time taken.
    fn run(&mut self, n: usize) -> Duration {
        let up = packet(inner_ip(self.member), [10, 42, 0, 1], 1400);
        let down = packet([10, 42, 0, 1], inner_ip(self.member), 1400);
        let mut buf = vec![0u8; 1400 + OVERHEAD];
        let mut out = vec![0u8; 2048];
        let start = Instant::now();
        for _ in 0..n / BATCH {
            for _ in 0..BATCH {
                let (c, s) = (self.client_addr, self.server_addr);
                one_way(
                    &mut self.client,
                    &mut self.server,
                    c,
                    &up,
                    &mut buf,
                    &mut out,
                    self.now,
                );
                one_way(
                    &mut self.server,
                    &mut self.client,
                    s,
                    &down,
                    &mut buf,
                    &mut out,
                    self.now,
                );
            }
            self.now += Duration::from_micros(100);
            for t in [&mut self.server, &mut self.client] {
                t.handle_timeout(self.now);
                let _ = t.poll_timeout();
            }
            self.relay_control();
        }
        start.elapsed()
    }
}

/// `packet` from `from`'s TUN through `to` (whose socket sees it come from
/// `from_addr`), as far as `to`'s TUN.
fn one_way(
    from: &mut Tunnel,
    to: &mut Tunnel,
    from_addr: SocketAddr,
    packet: &[u8],
    buf: &mut [u8],
    out: &mut [u8],
    now: Instant,
) {
    buf[HEADROOM..HEADROOM + packet.len()].copy_from_slice(packet);
    let t = from.handle_tun_packet(buf, packet.len(), now).expect("sent");
    to.handle_datagram(SocketId::new(0), from_addr, &mut buf[..t.len], now)
        .expect("delivered");
    while to.poll_deliver(out).is_some() {}
}

fn main() {
    let packets: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let mut small = pair(1);
    let mut fleet = pair(10_000);
    // Warm up, then alternate so both see the same machine.
    small.run(BATCH * 100);
    fleet.run(BATCH * 100);
    let (mut t1, mut t10k) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..5 {
        t1 += small.run(packets / 5);
        t10k += fleet.run(packets / 5);
    }
    let per = |t: Duration| t.as_nanos() as f64 / (2 * packets) as f64;
    println!(
        "server with     1 peer : {:7.0} ns per packet (both ends, both directions)",
        per(t1)
    );
    println!("server with 10000 peers: {:7.0} ns per packet", per(t10k));
    println!("ratio 10000 / 1        : {:7.2}", per(t10k) / per(t1));
}
