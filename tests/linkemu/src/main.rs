//! `linkemu --listen ADDR --upstream ADDR --control ADDR [--up SPEC] [--down SPEC] [--seed N]`
//! `linkemu selftest`
//!
//! Control commands (one UDP datagram each, reply "ok", "error: ..." or
//! JSON): `cut [up|down|both]`, `restore [...]`, `set up|down|both k=v ...`,
//! `stats`, `nat-reset`.

use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mlvpn_linkemu::relay::Relay;
use mlvpn_linkemu::spec::Spec;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("selftest") {
        selftest();
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("linkemu: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let (mut listen, mut upstream, mut control) = (None, None, None);
    let (mut up, mut down, mut seed) = (Spec::default(), Spec::default(), 1u64);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let addr = || {
            value
                .parse::<SocketAddr>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--listen" => listen = Some(addr()?),
            "--upstream" => upstream = Some(addr()?),
            "--control" => control = Some(addr()?),
            "--up" => up.apply(value)?,
            "--down" => down.apply(value)?,
            "--seed" => seed = value.parse().map_err(|_| "--seed: a number")?,
            f => return Err(format!("unknown flag {f}")),
        }
    }
    let (listen, upstream) = (
        listen.ok_or("--listen is required")?,
        upstream.ok_or("--upstream is required")?,
    );
    let relay = Relay::start(listen, upstream, up, down, seed).map_err(|e| format!("{listen}: {e}"))?;
    let control =
        UdpSocket::bind(control.ok_or("--control is required")?).map_err(|e| format!("control: {e}"))?;
    println!("linkemu ready");
    relay.serve_control(&control);
    Ok(())
}

/// Throughput of 1400-byte datagrams, and delay accuracy at 10 k packets/s.
fn selftest() {
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let relay = Relay::start(
        local,
        sink.local_addr().unwrap(),
        Spec::default(),
        Spec::default(),
        1,
    )
    .unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = relay.listen_addr();
    let counter = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut bytes = 0u64;
        let start = Instant::now();
        while let Ok((n, _)) = sink.recv_from(&mut buf) {
            bytes += n as u64;
        }
        (
            bytes,
            start.elapsed().saturating_sub(Duration::from_millis(500)),
            sink,
        )
    });
    let payload = [0u8; 1400];
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        for _ in 0..32 {
            let _ = client.send_to(&payload, to);
        }
    }
    let (bytes, took, sink) = counter.join().unwrap();
    println!(
        "throughput: {:.0} Mbit/s of 1400-byte datagrams (relayed)",
        bytes as f64 * 8.0 / took.as_secs_f64() / 1e6
    );

    relay.up.update(|s| s.delay = Duration::from_millis(10));
    let t0 = Instant::now();
    let rx = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let mut lat = Vec::new();
        while let Ok((n, _)) = sink.recv_from(&mut buf) {
            if n >= 16 {
                let sent = u128::from_le_bytes(buf[..16].try_into().unwrap());
                lat.push(t0.elapsed().as_micros() as i64 - sent as i64 - 10_000);
            }
        }
        lat
    });
    // 10 packets every millisecond (sleeping, so the sender does not steal
    // the relay's CPU on a small machine).
    let mut next = Instant::now();
    for _ in 0..2_000 {
        for _ in 0..10 {
            let _ = client.send_to(&t0.elapsed().as_micros().to_le_bytes(), to);
        }
        next += Duration::from_millis(1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let mut lat = rx.join().unwrap();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize];
    println!(
        "delay error at 10k packets/s, 10 ms delay ({} packets): min {} us, median {} us, p99 {} us, max {} us",
        lat.len(),
        lat[0],
        pct(0.5),
        pct(0.99),
        lat[lat.len() - 1]
    );
}
