//! The seed corpora: real datagrams from an in-memory handshake and traffic,
//! real configs, real privsep messages, and `transport` operation sequences
//! that use them. Regenerate after a wire-format change with
//!
//! ```sh
//! cargo test --test fuzz_corpora -- --ignored write_seed_corpora
//! ```
//!
//! which rewrites the `seed-*` files of `fuzz/corpus/<target>/` (files that
//! fuzzing added keep their hash names).

use std::net::Ipv6Addr;
use std::path::Path;
use std::time::Duration;

use mlvpn_privsep::bulk::Chunks;
use mlvpn_privsep::msg::{HookEvent, Reply, Request};
use mlvpn_privsep::startup::{StartupFailure, StartupStep};
use mlvpn_rs::io::offload::virtio_hdr::{F_NEEDS_CSUM, GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4};
use mlvpn_rs::io::offload::VirtioNetHdr;
use mlvpn_rs::proto::cookie::CookieChecker;
use mlvpn_rs::proto::frame::{self, Report, Timestamps};
use mlvpn_rs::proto::wire::{self, MAC_LEN};

use crate::fixtures::{
    addr, config_text, ipv4_udp_packet, ipv6_udp_packet, public, CLIENT_SOCKETS, CLIENT_TOML, SERVER_KEY,
    SERVER_SOCKETS, SERVER_TOML,
};
use crate::targets::nodes::ROGUE_ADDR;
use crate::targets::responder::STRUCTURED_INIT;
use crate::targets::transport::{op, run_ops, Pair};

/// The seeds of one target: (file name without `seed-`, contents).
pub type Seeds = Vec<(String, Vec<u8>)>;

/// Every target's seeds, by target name.
pub fn all(repo: &Path) -> Vec<(&'static str, Seeds)> {
    let traffic = Traffic::capture();
    vec![
        ("wire", wire(&traffic)),
        ("responder", responder(&traffic)),
        ("transport", transport(&traffic)),
        ("config", config(repo)),
        ("privsep", privsep()),
        ("offload", offload()),
    ]
}

/// Writes the seeds under `corpus/<target>/seed-<name>`, replacing the
/// previous `seed-*` files of that directory.
pub fn write(corpus: &Path, repo: &Path) -> std::io::Result<usize> {
    let mut n = 0;
    for (target, seeds) in all(repo) {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir)?;
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            if e.file_name().to_string_lossy().starts_with("seed-") {
                std::fs::remove_file(e.path())?;
            }
        }
        for (name, bytes) in seeds {
            std::fs::write(dir.join(format!("seed-{name}")), bytes)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Datagrams of a real exchange, by kind.
pub struct Traffic {
    pub initiation: Vec<u8>,
    pub rogue_initiation: Vec<u8>,
    pub response: Vec<u8>,
    /// Client → server data and keepalives (the first keepalive confirms
    /// the session), server → client keepalives (receive reports).
    pub data: Vec<Vec<u8>>,
    pub keepalives_to_server: Vec<Vec<u8>>,
    pub keepalives_to_client: Vec<Vec<u8>>,
    pub cookie_reply: Vec<u8>,
}

impl Traffic {
    pub fn capture() -> Traffic {
        let mut p = Pair::establish(true);
        for i in 0..6 {
            let mut ops = Ops::default();
            ops.genuine(40 + i * 50, true);
            ops.time(60);
            run_ops(&mut p, &ops.0);
        }
        p.advance(Duration::from_millis(1500));
        let captured = p.capture.take().expect("capturing");
        let server0 = addr(SERVER_SOCKETS[0]);
        let rogue = addr(ROGUE_ADDR);
        let of = |kind: u8| captured.iter().filter(move |(_, _, b)| b[0] == kind);
        let keepalive = |b: &[u8]| b.len() == wire::DATA_HEADER_LEN + frame::KEEPALIVE_LEN + wire::TAG_LEN;
        let initiation = of(wire::TYPE_INITIATION)
            .find(|(_, to, _)| *to == server0)
            .expect("an initiation")
            .2
            .clone();
        let rogue_initiation = of(wire::TYPE_INITIATION)
            .find(|(from, _, _)| *from == rogue)
            .expect("B's initiation")
            .2
            .clone();
        let response = of(wire::TYPE_RESPONSE).next().expect("a response").2.clone();
        let data = of(wire::TYPE_DATA)
            .filter(|(_, to, b)| *to == server0 && !keepalive(b))
            .map(|(_, _, b)| b.clone())
            .collect();
        let keepalives_to_server = of(wire::TYPE_DATA)
            .filter(|(_, to, b)| *to == server0 && keepalive(b))
            .map(|(_, _, b)| b.clone())
            .take(3)
            .collect();
        let keepalives_to_client = of(wire::TYPE_DATA)
            .filter(|(from, _, b)| *from == server0 && keepalive(b))
            .map(|(_, _, b)| b.clone())
            .take(3)
            .collect();
        let sender = u32::from_le_bytes(initiation[4..8].try_into().expect("4 bytes"));
        let mac1_at = wire::INIT_LEN - 2 * MAC_LEN;
        let mac1: [u8; MAC_LEN] = initiation[mac1_at..mac1_at + MAC_LEN].try_into().expect("16");
        let cookie_reply = CookieChecker::new(&public(SERVER_KEY), [3; 32])
            .reply(addr(CLIENT_SOCKETS[0]), sender, &mac1, p.now)
            .to_vec();
        Traffic {
            initiation,
            rogue_initiation,
            response,
            data,
            keepalives_to_server,
            keepalives_to_client,
            cookie_reply,
        }
    }

    fn all(&self) -> Vec<(String, Vec<u8>)> {
        let mut v = vec![
            ("initiation".to_string(), self.initiation.clone()),
            ("initiation-b".to_string(), self.rogue_initiation.clone()),
            ("response".to_string(), self.response.clone()),
            ("cookie-reply".to_string(), self.cookie_reply.clone()),
        ];
        for (i, d) in self.data.iter().enumerate() {
            v.push((format!("data-{i}"), d.clone()));
        }
        for (i, d) in self.keepalives_to_server.iter().enumerate() {
            v.push((format!("keepalive-to-server-{i}"), d.clone()));
        }
        for (i, d) in self.keepalives_to_client.iter().enumerate() {
            v.push((format!("keepalive-to-client-{i}"), d.clone()));
        }
        v
    }
}

fn times() -> Timestamps {
    Timestamps {
        ts: 123_456,
        echo: 100_000,
        echo_delay: 250,
    }
}

/// An IPv4 packet of `len` bytes from `src` (UDP, zero payload).
fn ipv4(src: [u8; 4], dst: [u8; 4], len: usize) -> Vec<u8> {
    ipv4_udp_packet(src.into(), dst.into(), len)
}

/// An IPv6 packet with `payload` bytes of UDP (zero payload).
fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, payload: usize) -> Vec<u8> {
    ipv6_udp_packet(src, dst, 40 + payload)
}

fn data_frame(seq: u64, packet: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; frame::DATA_FRAME_HEADER_LEN];
    frame::encode_data_header(&mut f, times(), seq);
    f.extend_from_slice(packet);
    f
}

fn keepalive_frame(rx_packets: u64, rx_bytes: u64, reply: bool) -> Vec<u8> {
    let mut f = vec![0u8; frame::KEEPALIVE_LEN];
    frame::encode_keepalive(&mut f, times(), Report { rx_packets, rx_bytes }, reply, false);
    f
}

fn wire(t: &Traffic) -> Seeds {
    let mut v = t.all();
    let b6: Ipv6Addr = "fd42::6".parse().expect("v6");
    let s6: Ipv6Addr = "fd42::1".parse().expect("v6");
    v.push((
        "frame-data-v4".into(),
        data_frame(7, &ipv4([10, 42, 0, 2], [10, 42, 0, 1], 60)),
    ));
    v.push(("frame-data-v6".into(), data_frame(8, &ipv6(b6, s6, 20))));
    v.push(("frame-keepalive".into(), keepalive_frame(10, 12_000, false)));
    v.push(("frame-probe".into(), keepalive_frame(0, 0, true)));
    v.push(("short-data".into(), t.data[0][..wire::DATA_MIN_LEN - 1].to_vec()));
    v.push(("empty".into(), Vec::new()));
    v
}

fn responder(t: &Traffic) -> Seeds {
    let mut v = vec![
        ("initiation".to_string(), t.initiation.clone()),
        ("initiation-b".to_string(), t.rogue_initiation.clone()),
        ("response".to_string(), t.response.clone()),
        ("cookie-reply".to_string(), t.cookie_reply.clone()),
    ];
    let mut zero_mac = t.initiation.clone();
    let mac1_at = wire::INIT_LEN - 2 * MAC_LEN;
    zero_mac[mac1_at..].fill(0);
    v.push(("initiation-no-mac".into(), zero_mac));
    // Structured: key (0 A, 1 B, 2 unknown, 3 the server's own; +0x80
    // under load), path id, timestamp, name, flip (at u16, xor), sender.
    type Case = (usize, u8, u64, &'static [u8], u16, u8, bool);
    let cases: [Case; 9] = [
        (0, 0, 1_700_000_000_000_000_000, b"dsl", 0, 0, false),
        (1, 5, 42, b"lte-2.b_x", 0, 0, false),
        (0, 31, 7, b"a-name-of-exactly-32-characters_", 0, 0, false),
        (0, 3, 7, b"bad name!", 0, 0, false),
        (2, 0, 9, b"stranger", 0, 0, false),
        (3, 0, 9, b"self", 0, 0, false),
        (0, 0, 0, b"zero-ts", 0, 0, false),
        (0, 1, 5, b"flipped", 0x8000 | 60, 1, false),
        (1, 2, 11, b"under-load", 0, 0, true),
    ];
    for (i, (k, path, ts, name, at, xor, loaded)) in cases.into_iter().enumerate() {
        let mut b = vec![STRUCTURED_INIT, k as u8 | if loaded { 0x80 } else { 0 }, path];
        b.extend_from_slice(&ts.to_le_bytes());
        b.push(name.len() as u8);
        b.extend_from_slice(name);
        b.extend_from_slice(&at.to_le_bytes());
        b.push(xor);
        b.extend_from_slice(&(i as u16).to_le_bytes());
        v.push((format!("structured-{i}"), b));
    }
    v
}

/// A `transport` input being written.
#[derive(Default)]
pub struct Ops(pub Vec<u8>);

impl Ops {
    pub fn forged(&mut self, to_client: bool, sel: u8, fix_mac: bool, bytes: &[u8]) {
        let len = bytes.len().min(1023);
        let code = op::FORGED
            | if to_client { 8 } else { 0 }
            | if fix_mac { 0x20 } else { 0 }
            | ((len % 4) as u8) << 6;
        self.0.extend_from_slice(&[code, (len / 4) as u8, sel]);
        self.0.extend_from_slice(&bytes[..len]);
    }
    pub fn cookie(&mut self, sel: u8, bad: bool) {
        self.0
            .extend_from_slice(&[op::COOKIE | if bad { 8 } else { 0 }, sel]);
    }
    pub fn genuine(&mut self, len: usize, now: bool) {
        let code = op::GENUINE | if now { 8 } else { 0 };
        self.0
            .extend_from_slice(&[code, (len.saturating_sub(36) / 4).min(255) as u8]);
    }
    pub fn replay(&mut self, sel: u8, at: u16, xor: u8) {
        self.0.extend_from_slice(&[op::REPLAY, sel]);
        self.0.extend_from_slice(&at.to_le_bytes());
        self.0.push(xor);
    }
    pub fn rogue(&mut self, plain: &[u8], now: bool) {
        self.0.push(op::ROGUE | if now { 8 } else { 0 });
        self.0.extend_from_slice(&(plain.len() as u16).to_le_bytes());
        self.0.extend_from_slice(plain);
    }
    pub fn rogue_replay(&mut self, sel: u8) {
        self.0.extend_from_slice(&[op::ROGUE_REPLAY, sel]);
    }
    pub fn time(&mut self, ms: u64) {
        self.0.extend_from_slice(&[op::TIME, (ms / 4).min(255) as u8]);
    }
    pub fn rogue_handshake(&mut self, path: u8) {
        self.0.extend_from_slice(&[op::ROGUE_HANDSHAKE, path]);
    }
}

fn transport(t: &Traffic) -> Seeds {
    let mut v: Seeds = Vec::new();
    // Each captured datagram, forged to either side, with its receiver index
    // kept or rewritten.
    for (name, d) in t.all() {
        for (to_client, side) in [(false, "server"), (true, "client")] {
            let mut o = Ops::default();
            o.forged(to_client, 0xff, false, &d);
            o.forged(to_client, 0, true, &d);
            o.forged(to_client, 1, false, &d);
            v.push((format!("forged-{name}-to-{side}"), o.0));
        }
    }
    let b4 = [10, 42, 0, 6];
    let b6: Ipv6Addr = "fd42::6".parse().expect("v6");
    let s6: Ipv6Addr = "fd42::1".parse().expect("v6");
    let mut o = Ops::default();
    for i in 0..4 {
        o.genuine(100 + i * 100, false);
    }
    o.replay(2, 0, 0);
    o.replay(0, 0, 0);
    o.replay(0, 0, 0);
    o.replay(1, 30, 0x80);
    o.replay(3, 9, 1);
    v.push(("genuine-reordered-replayed".into(), o.0));
    let mut o = Ops::default();
    o.genuine(60, true);
    o.time(400);
    o.genuine(1000, true);
    o.time(1020);
    o.time(1020);
    o.genuine(60, true);
    v.push(("genuine-and-time".into(), o.0));
    let mut o = Ops::default();
    o.rogue(&data_frame(0, &ipv4(b4, [10, 42, 0, 1], 64)), true);
    o.rogue(&data_frame(2, &ipv4(b4, [10, 42, 0, 1], 64)), true);
    o.rogue(&data_frame(1, &ipv6(b6, s6, 32)), false);
    o.rogue_replay(2);
    o.rogue_replay(2);
    o.rogue_replay(0);
    v.push(("rogue-data-reordered".into(), o.0));
    let mut o = Ops::default();
    o.rogue(&data_frame(0, &ipv4([10, 42, 0, 2], [10, 42, 0, 1], 64)), true);
    o.rogue(&data_frame(1, &ipv4(b4, [10, 42, 0, 1], 19)), true);
    o.rogue(&data_frame(5000, &ipv4(b4, [10, 42, 0, 1], 64)), true);
    o.rogue(&data_frame(u64::MAX, &ipv4(b4, [10, 42, 0, 1], 64)), true);
    o.rogue(&data_frame(3, &[0x45; 10]), true);
    o.rogue(&[1, 0, 0, 0, 5], true);
    o.rogue(&[9; 40], true);
    v.push(("rogue-odd-data".into(), o.0));
    let mut o = Ops::default();
    o.rogue(&keepalive_frame(1, 100, false), true);
    o.rogue(&keepalive_frame(0, 0, true), true);
    o.time(200);
    o.rogue(&keepalive_frame(u64::MAX, u64::MAX, true), true);
    o.rogue(&keepalive_frame(5, 1 << 40, false), true);
    o.time(600);
    o.rogue(&keepalive_frame(3, 10, false), true);
    v.push(("rogue-keepalives".into(), o.0));
    let mut o = Ops::default();
    o.rogue_handshake(0xc0 + 1);
    o.rogue(&keepalive_frame(0, 0, false), true);
    o.rogue(&data_frame(0, &ipv4(b4, [10, 42, 0, 1], 64)), true);
    o.time(3000);
    v.push(("rogue-new-path".into(), o.0));
    let mut o = Ops::default();
    o.rogue(&keepalive_frame(4, 400, false), true);
    o.rogue_handshake(0xfe);
    o.rogue(&keepalive_frame(0, 0, true), true);
    o.rogue(&data_frame(0, &ipv4(b4, [10, 42, 0, 1], 64)), true);
    v.push(("rogue-reloaded".into(), o.0));
    let mut o = Ops::default();
    o.cookie(0, false);
    o.cookie(1, true);
    o.time(100);
    o.cookie(5, false);
    v.push(("cookie-replies".into(), o.0));
    let mut o = Ops::default();
    o.forged(false, 0, true, &t.rogue_initiation);
    o.forged(true, 0, true, &t.response);
    o.forged(true, 1, false, &t.cookie_reply);
    v.push(("handshakes-forged".into(), o.0));
    v
}

fn config(repo: &Path) -> Seeds {
    let peer = public(9).to_base64();
    let peer2 = public(10).to_base64();
    let ours = public(7).to_base64();
    let fill = |t: &str| config_text(t, &peer, &peer2);
    let client = fill(CLIENT_TOML);
    let server = fill(SERVER_TOML);
    let mut v: Seeds = vec![
        ("client".into(), client.clone().into_bytes()),
        ("server".into(), server.clone().into_bytes()),
    ];
    // The shipped examples (with their placeholders, and filled in).
    for side in ["client", "server"] {
        let path = repo.join(format!("conf/{side}.toml"));
        if let Ok(text) = std::fs::read_to_string(&path) {
            v.push((format!("conf-{side}"), text.clone().into_bytes()));
            let filled = text
                .replace(&format!("/etc/mlvpn-rs/{side}.key"), "k")
                .replace("@SERVER_PUBLIC_KEY@", &peer)
                .replace("@CLIENT_PUBLIC_KEY@", &peer);
            v.push((format!("conf-{side}-filled"), filled.into_bytes()));
        }
    }
    // MLVPN configs (import-mlvpn).
    for name in ["mlvpn-client.conf", "mlvpn-server.conf"] {
        if let Ok(text) = std::fs::read(repo.join("tests/data").join(name)) {
            v.push((name.into(), text));
        }
    }
    // One of each mistake the config tests check.
    let variants: Vec<(&str, String)> = vec![
        ("mode-bare", client.replace("\"client\"", "client")),
        ("unknown-key", client.replace("user = \"nobody\"", "colour = \"blue\"")),
        ("bad-table", client.replace("[interface]", "[interfaces]")),
        ("missing-name", client.replace("name = \"mlvpn0\"\n", "")),
        ("fallback-string", client.replace("fallback = true", "fallback = \"yes\"")),
        ("long-ifname", client.replace("\"mlvpn0\"", "\"a-very-long-interface-name\"")),
        ("bad-cidr", client.replace("10.42.0.2/30", "10.42.0.300/30")),
        ("missing-key-file", client.replace("\"k\"", "\"missing.key\"")),
        ("root", client.replace("\"nobody\"", "\"root\"")),
        ("mtu-70000", client.replace("user = \"nobody\"", "mtu = 70000")),
        ("mtu-string", client.replace("user = \"nobody\"", "mtu = \"1280\"\nkeepalive = \"500ms\"")),
        ("keepalive-no-unit", client.replace("user = \"nobody\"", "keepalive = \"5\"")),
        ("keepalive-tiny", client.replace("user = \"nobody\"", "keepalive = \"0.001ms\"")),
        ("keepalive-too-long", client.replace("user = \"nobody\"", "keepalive = \"5s\"")),
        ("relative-script", client.replace("user = \"nobody\"", "up_script = \"up.sh\"")),
        ("scripts", client.replace("user = \"nobody\"", "up_script = \"/bin/up\"\ndown_script = \"/bin/down\"\nhook_timeout = \"2s\"\nchroot = \"/var/empty\"")),
        ("own-key", client.replace(&peer, &ours)),
        ("short-key", client.replace(&peer, "AAAA")),
        ("placeholder", client.replace(&peer, "@SERVER_PUBLIC_KEY@")),
        ("duplicate-path", client.replace("name = \"lte\"", "name = \"dsl\"")),
        ("no-endpoint-port", client.replace("203.0.113.1:5080", "203.0.113.1")),
        ("bandwidth-int", client.replace("\"50mbit\"", "2000000")),
        ("bandwidth-bad", client.replace("50mbit", "50 furlongs")),
        ("device", client.replace("bind = \"192.0.2.10:0\"\n", "bind = \"0.0.0.0:0\"\ndevice = \"eth1\"\n")),
        ("server-no-port", server.replace("10.101.0.2:5080", "10.101.0.2")),
        ("server-clash", server.replace("[::]:5081", "0.0.0.0:5080")),
        ("server-endpoint", format!("{server}endpoint = \"1.2.3.4:5\"\n")),
        ("server-no-allowed", server.replace("allowed_ips = [\"10.42.0.2/32\"]\n", "")),
        ("server-dup-peer", server.replace(&peer2, &peer)),
        ("server-v6-only", server.replace("mtu = 1400\n", "").replace("10.101.0.2:5080", "[fd00::1]:5080")),
        ("no-path", client[..client.find("[[path]]").unwrap_or(client.len())].to_string()),
        ("utf8", client.replace("dsl", "dsl\u{e9}\u{1f600}")),
        ("crlf", client.replace('\n', "\r\n")),
    ];
    for (name, text) in variants {
        v.push((format!("variant-{name}"), text.into_bytes()));
    }
    v
}

fn privsep() -> Seeds {
    let mut v: Seeds = Vec::new();
    let requests = [
        (
            "run-hook-up",
            Request::RunHook {
                event: HookEvent::PathUp,
                path: "dsl".into(),
            },
        ),
        (
            "run-hook-down",
            Request::RunHook {
                event: HookEvent::PathDown,
                path: "lte".into(),
            },
        ),
        ("rebind", Request::Rebind { path: 3 }),
        (
            "startup-failed",
            Request::StartupFailed(StartupFailure {
                step: StartupStep::BoundingSet,
                errno: 1,
            }),
        ),
    ];
    for (name, r) in requests {
        v.push((format!("request-{name}"), r.encode()));
    }
    let replies = [
        ("ok", Reply::Ok),
        ("refused", Reply::Refused("no up_script configured".into())),
        ("refused-long", Reply::Refused("\u{e9}".repeat(150))),
        ("socket", Reply::Socket { path: 2 }),
        ("handover", Reply::Handover { len: 70_000 }),
        ("reload", Reply::Reload { len: 40 }),
    ];
    for (name, r) in replies {
        v.push((format!("reply-{name}"), r.encode()));
    }
    // The chunks that follow a large message's header.
    let payload = br#"{"peers":[],"paths":[]}"#.repeat(3000);
    let mut chunks = Chunks::new(&payload);
    for i in 0..2 {
        let c = chunks.next_chunk().expect("two chunks").to_vec();
        v.push((format!("chunk-{i}"), c));
    }
    let mut bad = Request::Rebind { path: 1 }.encode();
    bad[2] = 9;
    v.push(("bad-version".into(), bad));
    v.push(("short".into(), vec![0, 2, 1]));
    v.push(("bad-event".into(), vec![0, 4, 1, 1, 7, 0]));
    v
}

/// TUN reads of a device with offloads: TCP super-packets (IPv4, IPv6), a
/// UDP one, a plain packet with a checksum left to complete and one without.
fn offload() -> Seeds {
    let tso = |gso_type: u8, ip_len: usize, gso_size: u16, csum_offset: u16, l4_len: usize| VirtioNetHdr {
        flags: F_NEEDS_CSUM,
        gso_type,
        hdr_len: (ip_len + l4_len) as u16,
        gso_size,
        csum_start: ip_len as u16,
        csum_offset,
    };
    let read = |h: VirtioNetHdr, packet: Vec<u8>| [h.encode().as_slice(), &packet].concat();
    let plain = VirtioNetHdr {
        gso_type: GSO_NONE,
        ..Default::default()
    };
    let udp = ipv4_udp_packet([10, 42, 0, 2].into(), [10, 42, 0, 1].into(), 300);
    vec![
        (
            "tcp4-tso".into(),
            read(tso(GSO_TCPV4, 20, 1000, 16, 20), tcp_packet(false, 3500)),
        ),
        (
            "tcp6-tso".into(),
            read(tso(GSO_TCPV6, 40, 1200, 16, 20), tcp_packet(true, 5000)),
        ),
        (
            "udp4-uso".into(),
            read(tso(GSO_UDP_L4, 20, 1200, 6, 8), udp_packet(3000)),
        ),
        (
            "plain-csum".into(),
            read(
                VirtioNetHdr {
                    flags: F_NEEDS_CSUM,
                    csum_start: 20,
                    csum_offset: 6,
                    ..plain
                },
                udp.clone(),
            ),
        ),
        ("plain".into(), read(plain, udp)),
    ]
}

/// An IPv4 (DF) or IPv6 TCP packet, ACK|PSH, of `payload` bytes.
fn tcp_packet(v6: bool, payload: usize) -> Vec<u8> {
    let mut p = if v6 {
        let mut h = vec![0x60, 0, 0, 0];
        h.extend_from_slice(&((20 + payload) as u16).to_be_bytes());
        h.extend_from_slice(&[6, 64]);
        h.extend_from_slice(&"fd00::2".parse::<Ipv6Addr>().expect("address").octets());
        h.extend_from_slice(&"fd00::1".parse::<Ipv6Addr>().expect("address").octets());
        h
    } else {
        let mut h = vec![0x45, 0];
        h.extend_from_slice(&((40 + payload) as u16).to_be_bytes());
        h.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 42, 0, 2, 10, 42, 0, 1]);
        h
    };
    p.extend_from_slice(&40000u16.to_be_bytes());
    p.extend_from_slice(&5201u16.to_be_bytes());
    p.extend_from_slice(&1000u32.to_be_bytes());
    p.extend_from_slice(&2000u32.to_be_bytes());
    p.extend_from_slice(&[5 << 4, 0x18, 0x01, 0xf6, 0, 0, 0, 0]);
    p.extend((0..payload).map(|i| (i * 7) as u8));
    p
}

/// An IPv4 UDP packet of `payload` bytes.
fn udp_packet(payload: usize) -> Vec<u8> {
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&((28 + payload) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0, 10, 42, 0, 2, 10, 42, 0, 1]);
    p.extend_from_slice(&40000u16.to_be_bytes());
    p.extend_from_slice(&5201u16.to_be_bytes());
    p.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend((0..payload).map(|i| (i * 13) as u8));
    p
}
