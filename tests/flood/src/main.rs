//! Floods an mlvpn-rs server for benchmarks and soak runs (never against
//! anything but a test namespace).
//!
//! ```text
//! mlvpn-flood garbage     TARGET RATE SECONDS [PORTS]
//! mlvpn-flood initiations TARGET RATE SECONDS SERVER_PUBLIC_KEY [PORTS]
//! ```
//! `garbage`: random datagrams of every shape the server must drop cheaply:
//! random bytes, every message type truncated or padded, data messages with
//! random session indices, counters and tags. `initiations`: well-formed
//! initiations from a key the server does not know, each with a fresh
//! sender index and a valid `mac1` (anyone who knows the server's public key
//! can make them), so without the cookie defence each would cost a
//! Diffie-Hellman. Sent from PORTS sockets (default 64) in turn, RATE per
//! second, in 1 ms slices. Prints what it sent.

use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mlvpn_keys::{PrivateKey, PublicKey};
use mlvpn_rs::proto::handshake::{InitPayload, Initiator};
use mlvpn_rs::proto::mac::Mac1Key;
use mlvpn_rs::proto::wire::{self, INIT_LEN, MAC_LEN};
use rand::Rng;

enum Kind {
    Garbage,
    Initiations { template: Vec<u8>, mac1: Mac1Key },
}

fn usage() -> String {
    "usage: mlvpn-flood garbage TARGET RATE SECONDS [PORTS]\n       mlvpn-flood initiations TARGET RATE SECONDS SERVER_PUBLIC_KEY [PORTS]".into()
}

fn parse<T: std::str::FromStr>(s: Option<&String>, what: &str) -> Result<T, String> {
    s.ok_or_else(usage)?
        .parse()
        .map_err(|_| format!("bad {what}: {s:?}"))
}

fn garbage(rng: &mut impl Rng, buf: &mut [u8]) -> usize {
    let len = match rng.gen_range(0..4) {
        0 => rng.gen_range(0..64),
        1 => rng.gen_range(0..1500),
        2 => {
            [
                wire::INIT_LEN,
                wire::RESP_LEN,
                wire::COOKIE_REPLY_LEN,
                wire::DATA_MIN_LEN,
            ][rng.gen_range(0..4)]
                + rng.gen_range(0..3)
                - 1
        }
        _ => rng.gen_range(wire::DATA_MIN_LEN..1450),
    };
    rng.fill_bytes(&mut buf[..len]);
    if len >= 4 && rng.gen_bool(0.8) {
        // Mostly well-typed headers, so the checks after the type byte run.
        buf[0] = rng.gen_range(1..=4);
        buf[1..4].fill(0);
    }
    len
}

fn run(args: &[String]) -> Result<(), String> {
    let mode = args.first().ok_or_else(usage)?;
    let target: SocketAddr = parse(args.get(1), "target")?;
    let rate: u64 = parse(args.get(2), "rate")?;
    let secs: f64 = parse(args.get(3), "seconds")?;
    let (kind, ports_arg) = match mode.as_str() {
        "garbage" => (Kind::Garbage, args.get(4)),
        "initiations" => {
            let server = PublicKey::from_base64(args.get(4).ok_or_else(usage)?)
                .map_err(|e| format!("server key: {e}"))?;
            let payload = InitPayload {
                unix_ns: 1,
                path_id: 0,
                path_name: "flood".into(),
            };
            let stranger = PrivateKey::generate();
            let (_, msg) =
                Initiator::start(&stranger, &server, 1, &payload, None).map_err(|e| e.to_string())?;
            let mac1 = Mac1Key::for_receiver(&server);
            (
                Kind::Initiations {
                    template: msg.to_vec(),
                    mac1,
                },
                args.get(5),
            )
        }
        _ => return Err(usage()),
    };
    let ports: usize = match ports_arg {
        Some(p) => p.parse().map_err(|_| format!("bad ports: {p}"))?,
        None => 64,
    };
    let bind: SocketAddr = if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
        .parse()
        .expect("literal");
    let sockets: Vec<UdpSocket> = (0..ports.max(1))
        .map(|_| UdpSocket::bind(bind))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bind: {e}"))?;
    let mut rng = rand::thread_rng();
    let mut buf = vec![0u8; 1500];
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let (mut sent, mut failed, mut n) = (0u64, 0u64, 0u32);
    while Instant::now() < end {
        // Packets due by now at RATE per second.
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent + failed < due {
            let len = match &kind {
                Kind::Garbage => garbage(&mut rng, &mut buf),
                Kind::Initiations { template, mac1 } => {
                    buf[..INIT_LEN].copy_from_slice(template);
                    n = n.wrapping_add(1);
                    buf[4..8].copy_from_slice(&n.to_le_bytes());
                    let at = INIT_LEN - 2 * MAC_LEN;
                    let mac = mac1.compute(&buf[..at]);
                    buf[at..at + MAC_LEN].copy_from_slice(&mac);
                    INIT_LEN
                }
            };
            let s = &sockets[((sent + failed) % sockets.len() as u64) as usize];
            match s.send_to(&buf[..len], target) {
                Ok(_) => sent += 1,
                Err(_) => failed += 1,
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let took = start.elapsed().as_secs_f64();
    println!(
        "{mode}: sent {sent} datagrams in {took:.1} s ({:.0}/s) from {} ports, {failed} send errors",
        sent as f64 / took,
        sockets.len()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mlvpn-flood: {e}");
            ExitCode::FAILURE
        }
    }
}
