//! IPv6 as path transport and inside the tunnel: one IPv4 path and one IPv6
//! path, IPv4 and IPv6 traffic through the tunnel, both paths carrying it.

use std::time::Duration;

use crate::topo::{can_run, Topo};

#[test]
fn one_ipv4_path_one_ipv6_path_carry_v4_and_v6_traffic() {
    if !can_run("one_ipv4_path_one_ipv6_path_carry_v4_and_v6_traffic") {
        return;
    }
    let mut t = Topo::new();
    let (a, b) = (t.a.clone(), t.b.clone());
    // The lte link also gets IPv6 (nodad: usable at once).
    for (ns, dev, addr) in [(&a, "va2", "fd00:102::1/64"), (&b, "vb2", "fd00:102::2/64")] {
        assert!(t
            .ns_cmd(ns, &["ip", "addr", "add", addr, "dev", dev, "nodad"])
            .status
            .success());
    }
    let (s, c) = t.pair_configs();
    t.edit_config_all(
        &s,
        &[
            ("\"10.42.0.1/30\"", "\"10.42.0.1/30\", \"fd42::1/64\""),
            ("\"10.42.0.2/32\"", "\"10.42.0.2/32\", \"fd42::2/128\""),
            ("\"10.102.0.2:5081\"", "\"[fd00:102::2]:5081\""),
        ],
    );
    t.edit_config_all(
        &c,
        &[
            ("\"10.42.0.2/30\"", "\"10.42.0.2/30\", \"fd42::2/64\""),
            ("\"10.42.0.0/30\"", "\"10.42.0.0/30\", \"fd42::/64\""),
            ("\"10.102.0.1:0\"", "\"[fd00:102::1]:0\""),
            ("\"10.102.0.2:5081\"", "\"[fd00:102::2]:5081\""),
        ],
    );
    t.start("server", &b, &s);
    t.start("client", &a, &c);
    t.wait_paths("client", &["up", "up"], Duration::from_secs(15));
    let status = t.status("client").unwrap();
    assert_eq!(status["peers"][0]["paths"][1]["endpoint"], "[fd00:102::2]:5081");
    let ping_both = |t: &Topo| {
        for target in ["10.42.0.1", "fd42::1"] {
            let out = t.ns_cmd(
                &a,
                &[
                    "ping", "-q", "-c", "50", "-i", "0.01", "-s", "1200", "-W", "2", target,
                ],
            );
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "ping {target} through the tunnel:\n{text}");
        }
    };
    let tx = |t: &Topo, i: usize| {
        t.status("client").unwrap()["peers"][0]["paths"][i]["tx_bytes"]
            .as_u64()
            .unwrap()
    };
    ping_both(&t);
    // The IPv4 link dies: the IPv6 path carries both families alone.
    assert!(t
        .ns_cmd(&a, &["ip", "link", "set", "va1", "down"])
        .status
        .success());
    ping_both(&t);
    t.wait_paths("client", &["down", "up"], Duration::from_secs(10));
    let before = tx(&t, 1);
    ping_both(&t);
    assert!(tx(&t, 1) > before + 100_000, "the IPv6 path carried the pings");
    // Back, then the IPv6 link dies (a blackhole route): the IPv4 path alone.
    assert!(t.ns_cmd(&a, &["ip", "link", "set", "va1", "up"]).status.success());
    t.wait_paths("client", &["up", "up"], Duration::from_secs(10));
    let hole = ["ip", "-6", "route", "add", "blackhole", "fd00:102::2/128"];
    assert!(t.ns_cmd(&a, &hole).status.success());
    ping_both(&t);
    t.wait_paths("client", &["up", "down"], Duration::from_secs(10));
    let before = tx(&t, 0);
    ping_both(&t);
    assert!(tx(&t, 0) > before + 100_000, "the IPv4 path carried the pings");
}
