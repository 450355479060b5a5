//! `mlvpn-rs status --prometheus`: the status snapshot in the Prometheus
//! text exposition format (version 0.0.4), for node_exporter's textfile
//! collector or any scraper that can run a command.
//!
//! Names follow the Prometheus conventions: base units (seconds, bytes,
//! ratios), `_total` for counters, one metric family per quantity with
//! `interface`, `peer` and `path` labels.

use std::fmt::Write;

use crate::io::data_path_status::DataPathStatus;
use crate::proto::path::PathState;
use crate::proto::stats::{PathStatus, PeerStatus, Status};
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

/// A per-path metric: name, type, help, and its value for a path (`None`:
/// not measured yet, no sample).
type PathMetric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&PathStatus) -> Option<f64>,
);

/// The per-path families, in output order.
const PATH_METRICS: [PathMetric; 13] = [
    (
        "mlvpn_path_up",
        "gauge",
        "1 if the path is up (carries traffic), else 0.",
        |p| Some(f64::from(u8::from(p.state == PathState::Up))),
    ),
    (
        "mlvpn_path_lossy",
        "gauge",
        "1 if the path is demoted for loss.",
        |p| Some(f64::from(u8::from(p.state == PathState::Lossy))),
    ),
    (
        "mlvpn_path_srtt_seconds",
        "gauge",
        "Smoothed round-trip time.",
        |p| p.srtt_ms.map(|v| v / 1e3),
    ),
    (
        "mlvpn_path_rttvar_seconds",
        "gauge",
        "Round-trip time variation.",
        |p| p.rttvar_ms.map(|v| v / 1e3),
    ),
    (
        "mlvpn_path_loss_ratio",
        "gauge",
        "Loss rate from the peer's receive reports.",
        |p| p.loss,
    ),
    (
        "mlvpn_path_delivery_rate_bits_per_second",
        "gauge",
        "Highest delivery rate measured in the last second.",
        |p| p.rate_mbps.map(|v| v * 1e6),
    ),
    (
        "mlvpn_path_transmit_bytes_total",
        "counter",
        "Datagram bytes sent.",
        |p| Some(p.tx_bytes as f64),
    ),
    (
        "mlvpn_path_receive_bytes_total",
        "counter",
        "Datagram bytes received.",
        |p| Some(p.rx_bytes as f64),
    ),
    (
        "mlvpn_path_transmit_packets_total",
        "counter",
        "Datagrams sent.",
        |p| Some(p.tx_packets as f64),
    ),
    (
        "mlvpn_path_receive_packets_total",
        "counter",
        "Datagrams received.",
        |p| Some(p.rx_packets as f64),
    ),
    (
        "mlvpn_path_handshakes_total",
        "counter",
        "Completed handshakes.",
        |p| Some(p.handshakes as f64),
    ),
    (
        "mlvpn_path_last_handshake_age_seconds",
        "gauge",
        "Time since the last completed handshake.",
        |p| p.last_handshake_ago_ms.map(|ms| ms as f64 / 1e3),
    ),
    (
        "mlvpn_path_endpoint_changes_total",
        "counter",
        "Authenticated packets that moved the path's endpoint.",
        |p| Some(p.endpoint_changes as f64),
    ),
];

/// A per-peer metric with one sample per peer.
type PeerMetric = (&'static str, &'static str, &'static str, fn(&PeerStatus) -> f64);

/// The per-peer families after the reorder outcomes, in output order.
const PEER_METRICS: [PeerMetric; 6] = [
    (
        "mlvpn_peer_reorder_held_packets",
        "gauge",
        "Packets held for resequencing now.",
        |p| p.reorder.held as f64,
    ),
    (
        "mlvpn_peer_reorder_hold_timeout_seconds",
        "gauge",
        "Current adaptive hold timeout.",
        |p| p.reorder.hold_timeout_ms / 1e3,
    ),
    (
        "mlvpn_peer_reorder_overflows_total",
        "counter",
        "Times the resequencing queue was full.",
        |p| p.reorder.overflows as f64,
    ),
    (
        "mlvpn_peer_reorder_timeouts_total",
        "counter",
        "Holes skipped because the hold timeout expired.",
        |p| p.reorder.timeouts as f64,
    ),
    (
        "mlvpn_peer_reorder_resyncs_total",
        "counter",
        "Times the peer's sequence started over (a restart).",
        |p| p.reorder.resyncs as f64,
    ),
    (
        "mlvpn_peer_resent_packets_total",
        "counter",
        "Packets re-sent on a live path because theirs died.",
        |p| p.resent as f64,
    ),
];

/// Renders every metric of `s`: the path families, the peer families,
/// then drops.
pub fn render(s: &Status) -> String {
    let iface = format!("interface=\"{}\"", esc(&s.interface));
    let mut out = String::new();
    for f in path_families(s, &iface)
        .into_iter()
        .chain(peer_families(s, &iface))
        .chain([drop_family(s, &iface)])
    {
        write_family(&mut out, f);
    }
    out
}

/// The data path's families (offloads in use, batching counters), to
/// follow [`render`] in the same exposition.
pub fn render_data_path(interface: &str, d: &DataPathStatus) -> String {
    let iface = format!("interface=\"{}\"", esc(interface));
    let mut offload = family(
        "mlvpn_data_path_offload",
        "gauge",
        "1 if the data path uses this kernel offload.",
    );
    for (name, on) in [
        ("tun_vnet_hdr", d.tun_vnet_hdr),
        ("tun_tso", d.tun_tso),
        ("tun_uso", d.tun_uso),
        ("udp_gso", d.udp_gso),
        ("udp_gro", d.udp_gro),
    ] {
        offload
            .samples
            .push((format!("{iface},offload=\"{name}\""), f64::from(u8::from(on))));
    }
    let counter = |name, help, v: u64| {
        let mut f = family(name, "counter", help);
        f.samples.push((iface.clone(), v as f64));
        f
    };
    let mut out = String::new();
    for f in [
        offload,
        counter(
            "mlvpn_udp_trains_sent_total",
            "GSO sends of two or more datagrams.",
            d.udp_trains_sent,
        ),
        counter(
            "mlvpn_udp_datagrams_in_trains_total",
            "Datagrams that left in GSO trains.",
            d.udp_datagrams_in_trains,
        ),
        counter(
            "mlvpn_tun_super_packets_read_total",
            "TUN reads that were super-packets split into segments.",
            d.tun_super_packets_read,
        ),
        counter(
            "mlvpn_tun_super_packets_written_total",
            "TUN writes that were coalesced super-packets.",
            d.tun_super_packets_written,
        ),
        counter(
            "mlvpn_tun_reads_malformed_total",
            "TUN reads dropped: a virtio header or super-packet that made no sense.",
            d.tun_reads_malformed,
        ),
    ] {
        write_family(&mut out, f);
    }
    out
}

/// `interface="…",peer="…"`: the labels of a peer's samples.
fn peer_labels(iface: &str, peer: &PeerStatus) -> String {
    format!("{iface},peer=\"{}\"", esc(&peer.public_key))
}

/// One family per [`PATH_METRICS`] entry, a sample per path of every peer.
fn path_families(s: &Status, iface: &str) -> Vec<Family> {
    let mut families: Vec<Family> = PATH_METRICS
        .iter()
        .map(|&(name, kind, help, _)| family(name, kind, help))
        .collect();
    for peer in &s.peers {
        let pl = peer_labels(iface, peer);
        for p in &peer.paths {
            let l = format!("{pl},path=\"{}\"", esc(&p.name));
            for (f, (_, _, _, value)) in families.iter_mut().zip(&PATH_METRICS) {
                if let Some(v) = value(p) {
                    f.samples.push((l.clone(), v));
                }
            }
        }
    }
    families
}

/// The reorder outcomes (one sample per outcome and peer), then one family
/// per [`PEER_METRICS`] entry.
fn peer_families(s: &Status, iface: &str) -> Vec<Family> {
    let mut reorder = family(
        "mlvpn_peer_reorder_packets_total",
        "counter",
        "Packets through the resequencing queue, by outcome.",
    );
    let mut rest: Vec<Family> = PEER_METRICS
        .iter()
        .map(|&(name, kind, help, _)| family(name, kind, help))
        .collect();
    for peer in &s.peers {
        let pl = peer_labels(iface, peer);
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
        for (f, (_, _, _, value)) in rest.iter_mut().zip(&PEER_METRICS) {
            f.samples.push((pl.clone(), value(peer)));
        }
    }
    std::iter::once(reorder).chain(rest).collect()
}

/// Drops by reason, the reasons being the fields of [`Status::drops`].
fn drop_family(s: &Status, iface: &str) -> Family {
    let mut drops = family(
        "mlvpn_drops_total",
        "counter",
        "Datagrams and packets dropped, by reason.",
    );
    let d = serde_json::to_value(s.drops).unwrap_or_default();
    for (reason, v) in d.as_object().into_iter().flatten() {
        let v = v.as_u64().unwrap_or(0) as f64;
        drops
            .samples
            .push((format!("{iface},reason=\"{}\"", esc(reason)), v));
    }
    drops
}

/// `# HELP`, `# TYPE` and the samples of one family.
fn write_family(out: &mut String, f: Family) {
    let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
    let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
    for (labels, v) in f.samples {
        let _ = writeln!(out, "{}{{{labels}}} {v}", f.name);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::proto::stats::{Drops, PathStatus, PeerStatus, ReorderStatus};

    pub fn sample() -> Status {
        let path = |name: &str, state: PathState| PathStatus {
            name: name.into(),
            state,
            endpoint: Some("192.0.2.1:5080".parse().unwrap()),
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
            mode: crate::proto::Mode::Client,
            drops: Drops {
                replayed: 3,
                ..Drops::default()
            },
            peers: vec![PeerStatus {
                public_key: "abc+/=".into(),
                paths: vec![path("dsl", PathState::Up), path("lte \"4g\"", PathState::Lossy)],
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
    fn the_data_path_families_parse_and_carry_the_counters() {
        let d = DataPathStatus {
            tun_vnet_hdr: true,
            tun_tso: true,
            udp_trains_sent: 478,
            tun_super_packets_written: 578,
            ..Default::default()
        };
        let text = render(&sample()) + &render_data_path("mlvpn0", &d);
        check_exposition(&text);
        assert!(text.contains("mlvpn_data_path_offload{interface=\"mlvpn0\",offload=\"tun_tso\"} 1"));
        assert!(text.contains("mlvpn_data_path_offload{interface=\"mlvpn0\",offload=\"udp_gso\"} 0"));
        assert!(text.contains("mlvpn_udp_trains_sent_total{interface=\"mlvpn0\"} 478"));
        assert!(text.contains("mlvpn_tun_super_packets_written_total{interface=\"mlvpn0\"} 578"));
    }

    /// Every sample follows its family's TYPE, parses, and a `_total` is a
    /// counter.
    fn check_exposition(text: &str) {
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
    }

    #[test]
    fn every_sample_has_help_and_type_and_parses() {
        let text = render(&sample());
        check_exposition(&text);
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
