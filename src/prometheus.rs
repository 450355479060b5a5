//! `mlvpn-rs status --prometheus`: the status snapshot in the Prometheus
//! text exposition format (version 0.0.4), for node_exporter's textfile
//! collector or any scraper that can run a command.
//!
//! Names follow the Prometheus conventions: base units (seconds, bytes,
//! ratios), `_total` for counters, one metric family per quantity with
//! `interface`, `peer` and `path` labels.

use std::fmt::Write;

use crate::proto::stats::Status;
use crate::terminal_text::is_unsafe;

/// Escapes a label value (backslash, double quote, newline, as the format
/// defines) and drops every other control or bidirectional formatting
/// character: the values come from the worker, and the text may end up on
/// a terminal or in a file a scraper parses line by line.
fn esc(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if is_unsafe(c) => {}
            c => out.push(c),
        }
    }
    out
}

struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: Vec<(String, f64)>,
}

fn family(name: &'static str, kind: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind,
        help,
        samples: Vec::new(),
    }
}

/// Renders every metric of `s`.
pub fn render(s: &Status) -> String {
    let iface = format!("interface=\"{}\"", esc(&s.interface));
    let mut state = family(
        "mlvpn_path_up",
        "gauge",
        "1 if the path is up (carries traffic), else 0.",
    );
    let mut lossy = family("mlvpn_path_lossy", "gauge", "1 if the path is demoted for loss.");
    let mut srtt = family("mlvpn_path_srtt_seconds", "gauge", "Smoothed round-trip time.");
    let mut rttvar = family("mlvpn_path_rttvar_seconds", "gauge", "Round-trip time variation.");
    let mut loss = family(
        "mlvpn_path_loss_ratio",
        "gauge",
        "Loss rate from the peer's receive reports.",
    );
    let mut rate = family(
        "mlvpn_path_delivery_rate_bits_per_second",
        "gauge",
        "Highest delivery rate measured in the last second.",
    );
    let mut txb = family(
        "mlvpn_path_transmit_bytes_total",
        "counter",
        "Datagram bytes sent.",
    );
    let mut rxb = family(
        "mlvpn_path_receive_bytes_total",
        "counter",
        "Datagram bytes received.",
    );
    let mut txp = family("mlvpn_path_transmit_packets_total", "counter", "Datagrams sent.");
    let mut rxp = family(
        "mlvpn_path_receive_packets_total",
        "counter",
        "Datagrams received.",
    );
    let mut hs = family("mlvpn_path_handshakes_total", "counter", "Completed handshakes.");
    let mut hs_age = family(
        "mlvpn_path_last_handshake_age_seconds",
        "gauge",
        "Time since the last completed handshake.",
    );
    let mut moved = family(
        "mlvpn_path_endpoint_changes_total",
        "counter",
        "Authenticated packets that moved the path's endpoint.",
    );
    let mut reorder = family(
        "mlvpn_peer_reorder_packets_total",
        "counter",
        "Packets through the resequencing queue, by outcome.",
    );
    let mut held = family(
        "mlvpn_peer_reorder_held_packets",
        "gauge",
        "Packets held for resequencing now.",
    );
    let mut hold = family(
        "mlvpn_peer_reorder_hold_timeout_seconds",
        "gauge",
        "Current adaptive hold timeout.",
    );
    let mut overflows = family(
        "mlvpn_peer_reorder_overflows_total",
        "counter",
        "Times the resequencing queue was full.",
    );
    let mut timeouts = family(
        "mlvpn_peer_reorder_timeouts_total",
        "counter",
        "Holes skipped because the hold timeout expired.",
    );
    let mut resyncs = family(
        "mlvpn_peer_reorder_resyncs_total",
        "counter",
        "Times the peer's sequence started over (a restart).",
    );
    let mut resent = family(
        "mlvpn_peer_resent_packets_total",
        "counter",
        "Packets re-sent on a live path because theirs died.",
    );
    let mut drops = family(
        "mlvpn_drops_total",
        "counter",
        "Datagrams and packets dropped, by reason.",
    );
    for peer in &s.peers {
        let pl = format!("{iface},peer=\"{}\"", esc(&peer.public_key));
        for p in &peer.paths {
            let l = format!("{pl},path=\"{}\"", esc(&p.name));
            let put = |f: &mut Family, v: Option<f64>| {
                if let Some(v) = v {
                    f.samples.push((l.clone(), v));
                }
            };
            put(&mut state, Some(f64::from(u8::from(p.state == "up"))));
            put(&mut lossy, Some(f64::from(u8::from(p.state == "lossy"))));
            put(&mut srtt, p.srtt_ms.map(|v| v / 1e3));
            put(&mut rttvar, p.rttvar_ms.map(|v| v / 1e3));
            put(&mut loss, p.loss);
            put(&mut rate, p.rate_mbps.map(|v| v * 1e6));
            put(&mut txb, Some(p.tx_bytes as f64));
            put(&mut rxb, Some(p.rx_bytes as f64));
            put(&mut txp, Some(p.tx_packets as f64));
            put(&mut rxp, Some(p.rx_packets as f64));
            put(&mut hs, Some(p.handshakes as f64));
            put(&mut hs_age, p.last_handshake_ago_ms.map(|ms| ms as f64 / 1e3));
            put(&mut moved, Some(p.endpoint_changes as f64));
        }
        let r = &peer.reorder;
        for (outcome, v) in [
            ("in_order", r.in_order),
            ("reordered", r.reordered),
            ("late", r.late),
            ("duplicate", r.duplicate),
            ("skipped", r.skipped),
        ] {
            reorder
                .samples
                .push((format!("{pl},outcome=\"{outcome}\""), v as f64));
        }
        held.samples.push((pl.clone(), r.held as f64));
        hold.samples.push((pl.clone(), r.hold_timeout_ms / 1e3));
        overflows.samples.push((pl.clone(), r.overflows as f64));
        timeouts.samples.push((pl.clone(), r.timeouts as f64));
        resyncs.samples.push((pl.clone(), r.resyncs as f64));
        resent.samples.push((pl, peer.resent as f64));
    }
    let d = serde_json::to_value(s.drops).unwrap_or_default();
    for (reason, v) in d.as_object().into_iter().flatten() {
        let v = v.as_u64().unwrap_or(0) as f64;
        drops
            .samples
            .push((format!("{iface},reason=\"{}\"", esc(reason)), v));
    }
    let mut out = String::new();
    for f in [
        state, lossy, srtt, rttvar, loss, rate, txb, rxb, txp, rxp, hs, hs_age, moved, reorder, held, hold,
        overflows, timeouts, resyncs, resent, drops,
    ] {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for (labels, v) in f.samples {
            let _ = writeln!(out, "{}{{{labels}}} {v}", f.name);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::proto::stats::{Drops, PathStatus, PeerStatus, ReorderStatus};

    pub fn sample() -> Status {
        let path = |name: &str, state: &str| PathStatus {
            name: name.into(),
            state: state.into(),
            endpoint: Some("192.0.2.1:5080".into()),
            srtt_ms: Some(21.5),
            rttvar_ms: Some(1.25),
            loss: Some(0.02),
            rate_mbps: Some(48.0),
            tx_bytes: 1_000_000,
            rx_bytes: 2_000,
            tx_packets: 700,
            rx_packets: 30,
            handshakes: 2,
            endpoint_changes: 0,
            last_handshake_ago_ms: Some(61_000),
        };
        Status {
            interface: "mlvpn0".into(),
            mode: "client".into(),
            drops: Drops {
                replayed: 3,
                ..Drops::default()
            },
            peers: vec![PeerStatus {
                public_key: "abc+/=".into(),
                paths: vec![path("dsl", "up"), path("lte \"4g\"", "lossy")],
                reorder: ReorderStatus {
                    in_order: 10,
                    late: 1,
                    ..ReorderStatus::default()
                },
                resent: 5,
            }],
        }
    }

    #[test]
    fn label_values_are_escaped_and_control_characters_dropped() {
        assert_eq!(esc("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(esc("x\u{1b}[2J\ry\t\u{7f}\u{9b}\u{202e}z"), "x[2Jyz");
        let mut s = sample();
        s.peers[0].paths[0].name = "dsl\u{1b}[2J\r".into();
        let text = render(&s);
        assert!(!text.chars().any(|c| c != '\n' && is_unsafe(c)), "{text}");
        assert!(text.contains("path=\"dsl[2J\""), "{text}");
    }

    #[test]
    fn every_sample_has_help_and_type_and_parses() {
        let text = render(&sample());
        let mut typed = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(kind == "gauge" || kind == "counter", "{line}");
                assert!(typed.insert(name.to_string()), "one TYPE per family: {name}");
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (name, rest) = line.split_once('{').unwrap();
            assert!(typed.contains(name), "sample before its TYPE: {line}");
            let (_, value) = rest.rsplit_once("} ").unwrap();
            value.parse::<f64>().unwrap();
            if name.ends_with("_total") {
                assert!(text.contains(&format!("# TYPE {name} counter")));
            }
        }
        assert!(text
            .contains("mlvpn_path_srtt_seconds{interface=\"mlvpn0\",peer=\"abc+/=\",path=\"dsl\"} 0.0215"));
        assert!(text.contains("path=\"lte \\\"4g\\\"\""), "quotes escaped");
        assert!(text.contains("mlvpn_path_up{interface=\"mlvpn0\",peer=\"abc+/=\",path=\"dsl\"} 1"));
        assert!(
            text.contains("mlvpn_path_lossy{interface=\"mlvpn0\",peer=\"abc+/=\",path=\"lte \\\"4g\\\"\"} 1")
        );
        assert!(text.contains("mlvpn_drops_total{interface=\"mlvpn0\",reason=\"replayed\"} 3"));
        assert!(text.contains("outcome=\"late\"} 1"));
        assert!(text.contains("mlvpn_peer_resent_packets_total{interface=\"mlvpn0\",peer=\"abc+/=\"} 5"));
    }
}
