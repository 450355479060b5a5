//! The human-readable form of `mlvpn-rs status`. Every string in it comes
//! from the worker and is [`clean`]ed before it reaches the terminal.

use std::fmt::Write;

use crate::io::data_path_status::DataPathStatus;
use crate::proto::stats::Status;
use crate::terminal_text::clean;

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// One line on the data path: which kernel offloads are in use and how
/// much they batched.
pub fn render_data_path(d: &DataPathStatus) -> String {
    let on = |b: bool| if b { "on" } else { "off" };
    if !d.tun_vnet_hdr && !d.udp_gso && !d.udp_gro {
        return "data path: plain (no kernel offloads)\n".to_string();
    }
    let tun = match (d.tun_tso, d.tun_uso) {
        (true, true) => "TCP+UDP",
        (true, false) => "TCP",
        _ => "off",
    };
    format!(
        "data path: TUN segmentation {tun}, UDP GSO {}, GRO {}; {} trains ({} datagrams), super-packets {} read, {} written{}\n",
        on(d.udp_gso),
        on(d.udp_gro),
        d.udp_trains_sent,
        d.udp_datagrams_in_trains,
        d.tun_super_packets_read,
        d.tun_super_packets_written,
        if d.tun_reads_malformed > 0 {
            format!(", {} malformed TUN reads", d.tun_reads_malformed)
        } else {
            String::new()
        }
    )
}

/// Renders a per-peer, per-path table followed by non-zero drop counters.
pub fn render(s: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "interface {} ({})", clean(&s.interface), s.mode.as_str());
    for peer in &s.peers {
        let _ = writeln!(out, "peer {}", clean(&peer.public_key));
        if peer.paths.is_empty() {
            let _ = writeln!(out, "  (no path yet)");
            continue;
        }
        let _ = writeln!(
            out,
            "  {:<12} {:<11} {:<22} {:>8} {:>6} {:>9} {:>10} {:>10} {:>9} {:>9} {:>9}",
            "PATH",
            "STATE",
            "ENDPOINT",
            "SRTT",
            "LOSS",
            "RATE",
            "TX",
            "RX",
            "TX PKTS",
            "RX PKTS",
            "HANDSHAKE"
        );
        for p in &peer.paths {
            let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            let _ = writeln!(
                out,
                "  {:<12} {:<11} {:<22} {:>8} {:>6} {:>9} {:>10} {:>10} {:>9} {:>9} {:>9}",
                clean(&p.name),
                p.state.as_str(),
                p.endpoint.map_or_else(|| "-".to_string(), |e| e.to_string()),
                opt(p.srtt_ms.map(|v| format!("{v:.1}ms"))),
                opt(p.loss.map(|v| format!("{:.1}%", v * 100.0))),
                opt(p.rate_mbps.map(|v| format!("{v:.1}Mb/s"))),
                bytes(p.tx_bytes),
                bytes(p.rx_bytes),
                p.tx_packets,
                p.rx_packets,
                opt(p.last_handshake_ago_ms.map(|ms| format!("{}s ago", ms / 1000)))
            );
        }
        let r = &peer.reorder;
        let _ = writeln!(
            out,
            "  reorder: {} in order, {} reordered, {} late, {} duplicate, {} skipped \
             ({} on timeout); holding {} (max {}), timeout {:.0}ms; re-sent {}",
            r.in_order,
            r.reordered,
            r.late,
            r.duplicate,
            r.skipped,
            r.timeouts,
            r.held,
            r.max_held,
            r.hold_timeout_ms,
            peer.resent
        );
    }
    let d = serde_json::to_value(s.drops).unwrap_or_default();
    let nonzero: Vec<String> = d
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !nonzero.is_empty() {
        let _ = writeln!(out, "drops: {}", nonzero.join(" "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terminal_text::is_unsafe;

    #[test]
    fn the_data_path_line_says_what_is_on_and_what_it_batched() {
        let plain = render_data_path(&DataPathStatus::default());
        assert_eq!(plain, "data path: plain (no kernel offloads)\n");
        let d = DataPathStatus {
            tun_vnet_hdr: true,
            tun_tso: true,
            udp_gso: true,
            udp_gro: true,
            udp_trains_sent: 478,
            udp_datagrams_in_trains: 18451,
            tun_super_packets_read: 415,
            tun_super_packets_written: 578,
            ..Default::default()
        };
        assert_eq!(
            render_data_path(&d),
            "data path: TUN segmentation TCP, UDP GSO on, GRO on; 478 trains (18451 datagrams), \
             super-packets 415 read, 578 written\n"
        );
        let bad = DataPathStatus {
            tun_reads_malformed: 2,
            ..d
        };
        assert!(render_data_path(&bad).ends_with(", 2 malformed TUN reads\n"));
    }

    #[test]
    fn no_control_character_from_the_worker_reaches_the_terminal() {
        let mut s = crate::prometheus::tests::sample();
        s.interface = "mlvpn0\u{1b}]0;owned\u{7}".into();
        s.peers[0].public_key = "key\u{9b}2J".into();
        let p = &mut s.peers[0].paths[0];
        p.name = "dsl\u{1b}[2J\u{202e}".into();
        let text = render(&s);
        let bad: Vec<char> = text.chars().filter(|c| *c != '\n' && is_unsafe(*c)).collect();
        assert!(bad.is_empty(), "{bad:?} in\n{text}");
        assert_eq!(
            text.lines().count(),
            render(&crate::prometheus::tests::sample()).lines().count()
        );
        assert!(text.contains("dsl?[2J?"), "{text}");
    }
}
