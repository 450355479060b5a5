//! The offloaded data path end to end: bytes arrive intact through TUN
//! super-packets, UDP trains and coalesced writes, and the offloads in use
//! are the ones asked for (all of them by default, none under
//! `MLVPN_OFFLOAD=off`, which the README's test command runs too).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use super::topo::{can_run, Topo};

/// Runs `f` on a thread inside network namespace `ns` (setns changes only
/// the calling thread's namespace).
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = std::fs::File::open(&path).unwrap();
        nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
}

/// Bytes that differ in every segment (xorshift), so a segment put in
/// the wrong place or a payload cut short shows in the comparison.
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn offloads_forced_off() -> bool {
    std::env::var("MLVPN_OFFLOAD")
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "off" | "0" | "no" | "false"))
}

#[test]
fn a_transfer_arrives_intact_through_the_offloads_asked_for() {
    if !can_run("a_transfer_arrives_intact_through_the_offloads_asked_for") {
        return;
    }
    let mut t = Topo::new();
    t.start_pair();
    let len = 24 << 20;
    let data = pseudo_random(len);
    // A TCP server in B that keeps every byte, a client in A that sends
    // the data and closes: the bytes must arrive all and unchanged.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = in_netns(&t.b, move || {
        let listener = TcpListener::bind("10.42.0.1:5301").unwrap();
        ready_tx.send(()).unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut got = Vec::with_capacity(len);
        conn.read_to_end(&mut got).unwrap();
        got
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("server listening");
    let sent = data.clone();
    let client = in_netns(&t.a, move || {
        let mut conn = TcpStream::connect("10.42.0.1:5301").unwrap();
        conn.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
        conn.write_all(&sent).unwrap();
        conn.shutdown(std::net::Shutdown::Write).unwrap();
    });
    client.join().expect("client sent everything");
    let got = server.join().expect("server received");
    assert_eq!(got.len(), data.len(), "received length");
    let first_bad = got.iter().zip(&data).position(|(a, b)| a != b);
    assert_eq!(first_bad, None, "received bytes differ from those sent");

    let field = |v: &Value, k: &str| v["data_path"][k].clone();
    let client = t.status("client").expect("client status");
    let server = t.status("server").expect("server status");
    eprintln!("client data path: {}", client["data_path"]);
    eprintln!("server data path: {}", server["data_path"]);
    // What an operator sees in the table.
    let table = t.status_text("client", &[]);
    let line = table
        .lines()
        .find(|l| l.starts_with("data path:"))
        .unwrap_or_default();
    let metrics = t.status_text("client", &["--prometheus"]);
    let tso = if offloads_forced_off() { 0 } else { 1 };
    assert!(
        metrics.contains(&format!(
            "mlvpn_data_path_offload{{interface=\"mlvpn0\",offload=\"tun_tso\"}} {tso}"
        )),
        "{metrics}"
    );
    if offloads_forced_off() {
        assert_eq!(line, "data path: plain (no kernel offloads)", "{table}");
    } else {
        assert!(
            line.starts_with("data path: TUN segmentation TCP+UDP, UDP GSO on, GRO on"),
            "{table}"
        );
    }
    if offloads_forced_off() {
        for s in [&client, &server] {
            for k in ["tun_vnet_hdr", "tun_tso", "tun_uso", "udp_gso", "udp_gro"] {
                assert_eq!(field(s, k), Value::Bool(false), "{k} with MLVPN_OFFLOAD=off");
            }
            for k in [
                "tun_super_packets_read",
                "tun_super_packets_written",
                "udp_trains_sent",
            ] {
                assert_eq!(field(s, k), Value::from(0), "{k} with MLVPN_OFFLOAD=off");
            }
        }
    } else {
        for s in [&client, &server] {
            for k in ["tun_vnet_hdr", "tun_tso", "udp_gso", "udp_gro"] {
                assert_eq!(field(s, k), Value::Bool(true), "{k} by default on this kernel");
            }
        }
        // The sender's kernel handed over super-packets, which left in
        // trains; the receiver joined segments again.
        let n = |s: &Value, k: &str| field(s, k).as_u64().unwrap_or(0);
        assert!(
            n(&client, "tun_super_packets_read") > 0,
            "client read no super-packet"
        );
        assert!(n(&client, "udp_trains_sent") > 0, "client sent no train");
        assert!(
            n(&client, "udp_datagrams_in_trains") >= 2 * n(&client, "udp_trains_sent"),
            "a train holds two or more datagrams"
        );
        assert!(
            n(&server, "tun_super_packets_written") > 0,
            "server joined nothing"
        );
        assert_eq!(n(&client, "tun_reads_malformed"), 0);
    }
}
