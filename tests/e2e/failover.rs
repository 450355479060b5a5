//! Failover and recovery with a silent blackhole: the dsl path goes through
//! a link emulator (running inside site A) that we cut and restore in the
//! middle of a TCP transfer.

use std::path::PathBuf;
use std::time::Duration;

use mlvpn_linkemu::relay::Relay;
use mlvpn_linkemu::spec::Spec;

use crate::topo::{can_run, wait_until, Topo};

/// A relay (NAT + link emulator) inside site A on the dsl uplink, and
/// server and client configs with the client's dsl path sent through it.
fn dsl_through_relay(t: &Topo, seed: u64) -> (std::sync::Arc<Relay>, PathBuf, PathBuf) {
    let relay = t.in_ns(&t.a, move || {
        Relay::start(
            "10.101.0.1:6080".parse().unwrap(),
            "10.101.0.2:5080".parse().unwrap(),
            Spec::default(),
            Spec::default(),
            seed,
        )
        .unwrap()
    });
    let (s, c) = t.pair_configs();
    t.edit_config(&c, "10.101.0.2:5080", "10.101.0.1:6080");
    (relay, s, c)
}

#[test]
fn blackholed_path_fails_over_and_recovers_during_a_transfer() {
    if !can_run("blackholed_path_fails_over_and_recovers_during_a_transfer") {
        return;
    }
    let mut t = Topo::new();
    let (relay, s, c) = dsl_through_relay(&t, 1);
    let (a, b) = (t.a.clone(), t.b.clone());
    // lte is the slower uplink (20 Mbit/s), so dsl carries most of the load.
    t.shape_uplink("va2", "20mbit");
    t.start("server", &b, &s);
    t.start("client", &a, &c);
    t.wait_paths("client", &["up", "up"], Duration::from_secs(15));
    t.iperf_server();
    let client = t.iperf_client(&["-t", "8"]);
    let dsl_tx = |t: &Topo| {
        t.status("client").unwrap()["peers"][0]["paths"][0]["tx_bytes"]
            .as_u64()
            .unwrap()
    };
    let start = dsl_tx(&t);
    wait_until("traffic on dsl", Duration::from_secs(10), || {
        dsl_tx(&t) > start + 1_000_000
    });
    assert_eq!(relay.command("cut both"), "ok");
    t.wait_paths("client", &["down", "up"], Duration::from_secs(5));
    let resent = t.status("client").unwrap()["peers"][0]["resent"]
        .as_u64()
        .unwrap();
    assert!(resent > 0, "packets in flight on dsl were re-sent on lte");
    assert_eq!(relay.command("restore both"), "ok");
    t.wait_paths("client", &["up", "up"], Duration::from_secs(5));
    let back = dsl_tx(&t);
    wait_until("dsl carries traffic again", Duration::from_secs(5), || {
        dsl_tx(&t) > back + 100_000
    });
    let out = client.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "transfer survived: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["end"]["sum_received"]["bytes"].as_u64().unwrap() > 1_000_000);
    let log = std::fs::read_to_string(t.dir.join("client.log")).unwrap_or_default();
    assert!(
        log.contains("no report while sending"),
        "detected by missing reports, not the idle timeout"
    );
}

#[test]
fn nat_mapping_change_mid_transfer_moves_the_endpoint_without_a_restart() {
    if !can_run("nat_mapping_change_mid_transfer_moves_the_endpoint_without_a_restart") {
        return;
    }
    let mut t = Topo::new();
    // dsl goes through a NAT (the relay) whose mapping we reset mid-transfer:
    // the server then sees the client's dsl path from a new source port.
    let (relay, s, c) = dsl_through_relay(&t, 2);
    let (a, b) = (t.a.clone(), t.b.clone());
    // lte is the slower uplink, so the transfer surely uses dsl (with two
    // unshaped links one could carry it all; this flaked in CI).
    t.shape_uplink("va2", "10mbit");
    t.start("server", &b, &s);
    t.start("client", &a, &c);
    t.wait_paths("client", &["up", "up"], Duration::from_secs(15));
    let dsl = |t: &Topo| t.server_path("dsl");
    let endpoint = |t: &Topo| dsl(t)["endpoint"].clone();
    let before = endpoint(&t);
    t.iperf_server();
    let client = t.iperf_client(&["-t", "4"]);
    let server_rx = |t: &Topo| dsl(t)["rx_bytes"].as_u64().unwrap();
    let start = server_rx(&t);
    wait_until("traffic on dsl", Duration::from_secs(10), || {
        server_rx(&t) > start + 500_000
    });
    assert_eq!(relay.command("nat-reset"), "ok");
    wait_until(
        "the server follows the new mapping",
        Duration::from_secs(5),
        || endpoint(&t) != before,
    );
    let moved = server_rx(&t);
    wait_until("dsl carries traffic again", Duration::from_secs(5), || {
        server_rx(&t) > moved + 100_000
    });
    let out = client.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "transfer survived: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(dsl(&t)["endpoint_changes"].as_u64().unwrap() >= 1);
    assert_eq!(
        t.path_states("client"),
        ["up", "up"],
        "no restart, nothing left down"
    );
}

#[test]
fn client_address_change_mid_transfer_needs_no_restart() {
    if !can_run("client_address_change_mid_transfer_needs_no_restart") {
        return;
    }
    let mut t = Topo::new();
    let (s, c) = t.pair_configs();
    // dsl is chosen by its device, not its address.
    t.edit_config(
        &c,
        "bind = \"10.101.0.1:0\"",
        "bind = \"0.0.0.0:0\"\ndevice = \"va1\"",
    );
    let (a, b) = (t.a.clone(), t.b.clone());
    // lte is the slower uplink, so the transfer surely uses dsl (with two
    // unshaped links one could carry it all).
    t.shape_uplink("va2", "10mbit");
    t.start("server", &b, &s);
    t.start("client", &a, &c);
    t.wait_paths("client", &["up", "up"], Duration::from_secs(15));
    let dsl = |t: &Topo| t.server_path("dsl");
    assert!(dsl(&t)["endpoint"].as_str().unwrap().starts_with("10.101.0.1:"));
    t.iperf_server();
    let client = t.iperf_client(&["-t", "4"]);
    let rx = |t: &Topo| dsl(t)["rx_bytes"].as_u64().unwrap();
    let start = rx(&t);
    wait_until("traffic on dsl", Duration::from_secs(10), || {
        rx(&t) > start + 500_000
    });
    // The uplink gets a new address (a DHCP renewal, a modem reconnecting).
    for cmd in [
        ["ip", "addr", "del", "10.101.0.1/24", "dev", "va1"],
        ["ip", "addr", "add", "10.101.0.7/24", "dev", "va1"],
    ] {
        assert!(t.ns_cmd(&a, &cmd).status.success(), "{cmd:?}");
    }
    wait_until(
        "the server follows the new address",
        Duration::from_secs(5),
        || dsl(&t)["endpoint"].as_str().unwrap().starts_with("10.101.0.7:"),
    );
    let moved = rx(&t);
    wait_until("dsl carries traffic again", Duration::from_secs(5), || {
        rx(&t) > moved + 100_000
    });
    let out = client.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "transfer survived: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        t.path_states("client"),
        ["up", "up"],
        "no restart, nothing left down"
    );
}

#[test]
fn a_path_with_a_smaller_mtu_carries_only_what_fits() {
    if !can_run("a_path_with_a_smaller_mtu_carries_only_what_fits") {
        return;
    }
    let mut t = Topo::new();
    let a = t.a.clone();
    // lte's link takes 1300-byte packets: full-size tunnel datagrams (1500)
    // do not fit, ACK-sized ones do.
    assert!(t
        .ns_cmd(&a, &["ip", "link", "set", "va2", "mtu", "1300"])
        .status
        .success());
    t.start_pair();
    t.iperf_server();
    let out = t.iperf_client(&["-t", "2"]).wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "transfer: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let got = v["end"]["sum_received"]["bytes"].as_u64().unwrap();
    assert!(got > 2_000_000, "the transfer went through dsl: {got} bytes");
    let s = t.status("client").unwrap();
    let too_big = s["drops"]["too_big"].as_u64().unwrap();
    assert!(
        (1..50).contains(&too_big),
        "learned from a few EMSGSIZE, not one per packet: {too_big}"
    );
    assert_eq!(
        t.path_states("client"),
        ["up", "up"],
        "the small path stays in use for what fits"
    );
    assert!(t.ping(2), "small packets still flow");
}
