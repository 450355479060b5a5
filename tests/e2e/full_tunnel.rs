//! Full tunnel: a branch whose only way to the server is its two uplinks'
//! default gateways sends all its traffic through the tunnel
//! (`allowed_ips = ["0.0.0.0/0", "::/0"]`), while each path's datagrams
//! keep to their own uplink.
//!
//! ```text
//!  A (client site)                 I ("internet", both ISPs)           B (data centre)
//!  up1 10.201.0.2 ──────────────── isp1 10.201.0.1     dc 198.18.0.1 ─ wan 198.18.0.2  server, NAT (conf/server-nat.nft)
//!      2001:db8:201::2 (default)        2001:db8:201::1   2001:db8:18::1    2001:db8:18::2
//!  up2 10.202.0.2 ──────────────── isp2 10.202.0.1
//!  default via isp1 metric 100, via isp2 metric 200    lo: 203.0.113.80, 2001:db8:80::80 (a host "on the internet")
//! ```
//! The internet has no route to the tunnel's addresses: the host answers
//! the client only through the server's masquerade. Without the tunnel the
//! client would reach it in the clear through up1, which the capture on the
//! uplinks would show.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::capture::{ifindex, Capture, Frame};
use crate::topo::{can_run, needs_tool, wait_until, Topo};
use crate::{iperf_result, received_bytes};

/// The full tunnel's table and the path sockets' fwmark (docs/routing.md).
const TABLE: &str = "28012";
const MARK: &str = "0x6d6c";
const HOST_V4: &str = "203.0.113.80";
const HOST_V6: &str = "2001:db8:80::80";
const ENDPOINT_IP: &str = "198.18.0.2";

/// One client path: its uplink device, bind address and server endpoint.
struct Uplink {
    dev: &'static str,
    bind: &'static str,
    endpoint: &'static str,
}

const UPLINKS: [Uplink; 2] = [
    Uplink {
        dev: "up1",
        bind: "10.201.0.2",
        endpoint: "198.18.0.2:5080",
    },
    Uplink {
        dev: "up2",
        bind: "10.202.0.2",
        endpoint: "198.18.0.2:5081",
    },
];

/// Builds the network of the module docs; returns the internet namespace.
fn branch_behind_two_isps(t: &mut Topo) -> String {
    let inet = t.add_ns("i");
    let (a, b) = (t.a.clone(), t.b.clone());
    t.link(
        (&a, "up1", &["10.201.0.2/24", "2001:db8:201::2/64"]),
        (&inet, "isp1", &["10.201.0.1/24", "2001:db8:201::1/64"]),
    );
    t.link(
        (&a, "up2", &["10.202.0.2/24"]),
        (&inet, "isp2", &["10.202.0.1/24"]),
    );
    t.link(
        (&b, "wan", &["198.18.0.2/24", "2001:db8:18::2/64"]),
        (&inet, "dc", &["198.18.0.1/24", "2001:db8:18::1/64"]),
    );
    t.ip(&inet, &format!("addr add {HOST_V4}/32 dev lo"));
    t.ip(&inet, &format!("addr add {HOST_V6}/128 dev lo"));
    // Two uplinks, each with its own default gateway: the main table picks
    // up1 for any destination.
    t.ip(&a, "route add default via 10.201.0.1 dev up1 metric 100");
    t.ip(&a, "route add default via 10.202.0.1 dev up2 metric 200");
    t.ip(&a, "-6 route add default via 2001:db8:201::1 dev up1");
    t.ip(&b, "route add default via 198.18.0.1");
    t.ip(&b, "-6 route add default via 2001:db8:18::1");
    // Routers forward; the branch uses loose reverse-path filtering, as
    // Debian does and as any host with two default gateways must.
    let forwarding = "net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1";
    for (ns, sysctls) in [
        (&inet, forwarding),
        (&b, forwarding),
        (&a, "net.ipv4.conf.all.rp_filter=2"),
    ] {
        let mut args = vec!["sysctl", "-qw"];
        args.extend(sysctls.split(' '));
        assert!(t.ns_cmd(ns, &args).status.success(), "sysctl {sysctls} in {ns}");
    }
    // The server's NAT is the shipped example, with its uplink's name.
    let nft = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/server-nat.nft"))
        .expect("conf/server-nat.nft");
    assert!(nft.contains("define WAN = \"eth0\""), "{nft}");
    let nft_file = t.dir.join("server-nat.nft");
    std::fs::write(
        &nft_file,
        nft.replace("define WAN = \"eth0\"", "define WAN = \"wan\""),
    )
    .unwrap();
    let o = t.ns_cmd(&b, &["nft", "-f", nft_file.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "nft -f: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    inet
}

/// Full-tunnel configs for this network: (server, client).
fn full_tunnel_configs(t: &Topo) -> (std::path::PathBuf, std::path::PathBuf) {
    let (s, c) = t.pair_configs();
    t.edit_config_all(
        &s,
        &[
            ("\"10.42.0.1/30\"", "\"10.42.0.1/30\", \"fd42::1/64\""),
            ("\"10.42.0.2/32\"", "\"10.42.0.2/32\", \"fd42::2/128\""),
            ("10.101.0.2:5080", "198.18.0.2:5080"),
            ("10.102.0.2:5081", "198.18.0.2:5081"),
        ],
    );
    t.edit_config_all(
        &c,
        &[
            ("\"10.42.0.2/30\"", "\"10.42.0.2/30\", \"fd42::2/64\""),
            ("[\"10.42.0.0/30\"]", "[\"0.0.0.0/0\", \"::/0\"]"),
            (
                "bind = \"10.101.0.1:0\"",
                "bind = \"10.201.0.2:0\"\ndevice = \"up1\"",
            ),
            (
                "bind = \"10.102.0.1:0\"",
                "bind = \"10.202.0.2:0\"\ndevice = \"up2\"",
            ),
            ("10.101.0.2:5080", "198.18.0.2:5080"),
            ("10.102.0.2:5081", "198.18.0.2:5081"),
        ],
    );
    (s, c)
}

fn stdout(t: &Topo, ns: &str, args: &[&str]) -> String {
    let o = t.ns_cmd(ns, args);
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every rule and route of the namespace, both families, but the links'
/// own IPv6 link-local addresses (which appear a moment after a link does).
fn routing_state(t: &Topo, ns: &str) -> String {
    [
        &["ip", "-4", "rule"][..],
        &["ip", "-6", "rule"],
        &["ip", "-4", "route", "show", "table", "all"],
        &["ip", "-6", "route", "show", "table", "all"],
    ]
    .iter()
    .map(|args| {
        let lines: Vec<String> = stdout(t, ns, args)
            .lines()
            .filter(|l| !l.starts_with("local fe80:"))
            .map(String::from)
            .collect();
        format!("$ {}\n{}\n", args.join(" "), lines.join("\n"))
    })
    .collect()
}

/// The daemon's policy rules in one family: (not-fwmark rules, main
/// suppress_prefixlength 0 rules).
fn rule_counts(t: &Topo, ns: &str, family: &str) -> (usize, usize) {
    let rules = stdout(t, ns, &["ip", family, "rule"]);
    (
        rules
            .lines()
            .filter(|l| l.contains(&format!("not from all fwmark {MARK} lookup {TABLE}")))
            .count(),
        rules
            .lines()
            .filter(|l| l.contains("lookup main suppress_prefixlength 0"))
            .count(),
    )
}

/// Both families have `want` of the daemon's rules (see [`rule_counts`]).
fn assert_rules(t: &Topo, ns: &str, want: (usize, usize), when: &str) {
    for family in ["-4", "-6"] {
        assert_eq!(rule_counts(t, ns, family), want, "ip {family} rule {when}");
    }
}

fn ping(t: &Topo, target: &str) -> bool {
    let a = t.a.clone();
    t.ns_cmd(&a, &["ping", "-c", "3", "-i", "0.2", "-W", "2", target])
        .status
        .success()
}

/// One uplink's own path datagrams: how many each way, and their bytes.
#[derive(Debug, Default, Clone, Copy)]
struct OwnPath {
    out: usize,
    back: usize,
    bytes: u64,
}

/// What crossed the uplinks: each one's own path datagrams, and every
/// other packet counted by flow (an inner packet in the clear, or a path's
/// datagram on the other path's uplink).
struct UplinkTraffic {
    own: [OwnPath; 2],
    others: BTreeMap<String, usize>,
}

/// Sorts the captured frames of the uplinks. ARP, neighbour discovery and
/// link-scope IPv6 (MLD) are the links' own and not counted.
fn judge_uplinks(t: &Topo, frames: &[Frame]) -> UplinkTraffic {
    let index: Vec<usize> = UPLINKS.iter().map(|u| ifindex(t, &t.a, u.dev)).collect();
    let mut seen = UplinkTraffic {
        own: [OwnPath::default(); 2],
        others: BTreeMap::new(),
    };
    for f in frames {
        let Some(i) = index.iter().position(|&x| x == f.ifindex) else {
            continue;
        };
        let Some(flow) = f.flow() else {
            continue;
        };
        let link_scope = match flow.dst {
            IpAddr::V6(d) => d.is_unicast_link_local() || d.segments()[0] == 0xff02,
            IpAddr::V4(_) => false,
        };
        if link_scope || (flow.protocol == 58 && matches!(flow.dst_port, 133..=137)) {
            continue;
        }
        let u = &UPLINKS[i];
        let bind: IpAddr = u.bind.parse().unwrap();
        let end: SocketAddr = u.endpoint.parse().unwrap();
        let out = flow.src == bind && flow.dst == end.ip() && flow.dst_port == end.port();
        let back = flow.dst == bind && flow.src == end.ip() && flow.src_port == end.port();
        let own = &mut seen.own[i];
        match (flow.protocol == 17, out, back) {
            (true, true, _) => own.out += 1,
            (true, _, true) => own.back += 1,
            _ => {
                let key = format!(
                    "on {}: protocol {} {}:{} -> {}:{}",
                    u.dev, flow.protocol, flow.src, flow.src_port, flow.dst, flow.dst_port
                );
                *seen.others.entry(key).or_default() += 1;
                continue;
            }
        }
        own.bytes += f.len as u64;
    }
    seen
}

#[test]
fn full_tunnel_carries_all_traffic_and_paths_keep_to_their_uplinks() {
    if !can_run("full_tunnel_carries_all_traffic_and_paths_keep_to_their_uplinks")
        || !needs_tool(
            "full_tunnel_carries_all_traffic_and_paths_keep_to_their_uplinks",
            "nft",
            "nftables",
        )
    {
        return;
    }
    let mut t = Topo::bare();
    let inet = branch_behind_two_isps(&mut t);
    let (a, b) = (t.a.clone(), t.b.clone());
    let before = routing_state(&t, &a);
    let (s, c) = full_tunnel_configs(&t);
    t.start("server", &b, &s);
    t.start("client", &a, &c);
    t.wait_paths("client", &["up", "up"], Duration::from_secs(15));

    all_traffic_goes_through_the_tunnel_on_its_own_uplinks(&mut t, &a, &inet);
    the_rules_and_the_table_are_in_place(&t, &a);
    a_dead_worker_leaves_the_routing_as_found(&mut t, &a, &before);
    a_killed_parent_leaves_rules_that_refuse_until_a_restart_replaces_them(&mut t, &a, &c);
    a_reload_switches_between_full_and_split_tunnel(&t, &a, &c);

    // A clean stop leaves the routing as it found it.
    t.signal("client", Signal::SIGTERM);
    assert!(t.wait_exit("client", Duration::from_secs(10)).success());
    assert_eq!(routing_state(&t, &a), before, "after the client stopped");
}

/// Traffic to the internet host, both families, captured on the uplinks:
/// it crosses them only as each uplink's own path datagrams.
fn all_traffic_goes_through_the_tunnel_on_its_own_uplinks(t: &mut Topo, a: &str, inet: &str) {
    let capture = Capture::start(t, a);
    let tunnel_tx = t.counter(a, "mlvpn0", "tx_bytes");
    assert!(
        ping(t, HOST_V4),
        "ping {HOST_V4} through the tunnel and the server's NAT"
    );
    assert!(
        ping(t, HOST_V6),
        "ping {HOST_V6} through the tunnel and the server's NAT"
    );
    t.iperf_server_at(inet, HOST_V4);
    let got = received_bytes(&iperf_result(t.iperf_client_to(HOST_V4, &["-t", "3"])));
    let frames = capture.stop();
    assert!(got > 1_000_000, "TCP transfer moved only {got} bytes");
    let seen = judge_uplinks(t, &frames);
    eprintln!(
        "transfer {got} bytes; {} frames on A; own path datagrams per uplink: {:?}",
        frames.len(),
        seen.own
    );
    assert!(
        seen.others.is_empty(),
        "packets on the uplinks that are not their own path's datagrams (flow: count): {:#?}",
        seen.others
    );
    for (u, own) in UPLINKS.iter().zip(seen.own) {
        assert!(
            own.out >= 4 && own.back >= 4,
            "{} carried {} datagrams of its path out and {} in",
            u.dev,
            own.out,
            own.back
        );
    }
    let path_bytes: u64 = seen.own.iter().map(|o| o.bytes).sum();
    assert!(
        path_bytes > got,
        "the paths carried the transfer ({path_bytes} bytes)"
    );
    assert!(
        t.counter(a, "mlvpn0", "tx_bytes") > tunnel_tx + got / 50,
        "the client sent it into its TUN"
    );
}

/// What the operator sees: the rules and the table; and why each path
/// names its device.
fn the_rules_and_the_table_are_in_place(t: &Topo, a: &str) {
    for family in ["-4", "-6"] {
        eprintln!("$ ip {family} rule\n{}", stdout(t, a, &["ip", family, "rule"]));
        assert_eq!(rule_counts(t, a, family), (1, 1), "ip {family} rule");
        let table = stdout(t, a, &["ip", family, "route", "show", "table", TABLE]);
        eprintln!("$ ip {family} route show table {TABLE}\n{table}");
        assert!(table.contains("default dev mlvpn0"), "{table}");
        assert!(table.contains("unreachable default"), "{table}");
    }
    // Why each path names its device: by destination alone, the kernel
    // sends both paths' datagrams (marked) through up1 ...
    let lte_route = |extra: &[&str]| {
        let mut args = vec![
            "ip",
            "route",
            "get",
            ENDPOINT_IP,
            "from",
            "10.202.0.2",
            "mark",
            MARK,
        ];
        args.extend_from_slice(extra);
        stdout(t, a, &args)
    };
    let by_destination = lte_route(&[]);
    assert!(by_destination.contains("dev up1"), "{by_destination}");
    // ... and the socket tied to up2 (SO_BINDTODEVICE) uses up2's gateway.
    let tied = lte_route(&["oif", "up2"]);
    assert!(tied.contains("via 10.202.0.1 dev up2"), "{tied}");
}

/// A worker that dies: the parent exits non-zero and removes what it added.
fn a_dead_worker_leaves_the_routing_as_found(t: &mut Topo, a: &str, before: &str) {
    let (_, worker) = t.pids("client");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(worker as i32), Signal::SIGKILL).unwrap();
    assert!(!t.wait_exit("client", Duration::from_secs(15)).success());
    assert_eq!(routing_state(t, a), before, "after a worker crash");
}

/// A parent killed outright leaves its rules: the site's traffic is then
/// refused (not sent in the clear) until the next start, which replaces
/// them instead of failing or adding a second set.
fn a_killed_parent_leaves_rules_that_refuse_until_a_restart_replaces_them(t: &mut Topo, a: &str, c: &Path) {
    t.start("client", a, c);
    t.wait_paths("client", &["up", "up"], Duration::from_secs(15));
    let (_, worker) = t.pids("client");
    t.signal("client", Signal::SIGKILL);
    t.wait_exit("client", Duration::from_secs(5));
    // The orphaned worker exits when its channel closes; until then it
    // still holds the TUN and answers on the control socket (a start
    // would rightly say "another daemon is running").
    wait_until("the worker exited", Duration::from_secs(10), || {
        !Path::new(&format!("/proc/{worker}")).exists()
    });
    assert!(
        !t.ns_cmd(a, &["ip", "link", "show", "mlvpn0"]).status.success(),
        "the TUN went with the worker"
    );
    assert_rules(t, a, (1, 1), "left by a killed parent");
    let refused = t.ns_cmd(a, &["ip", "route", "get", HOST_V4]);
    assert!(
        !refused.status.success(),
        "{}",
        stdout(t, a, &["ip", "route", "get", HOST_V4])
    );
    // The server keeps running: the restarted client's data sequence is
    // ahead of its old instance's, and the server's resequencer starts over.
    t.start("client", a, c);
    t.wait_paths("client", &["up", "up"], Duration::from_secs(15));
    assert_rules(t, a, (1, 1), "after a restart");
    assert!(ping(t, HOST_V4), "tunnel after a restart over stale rules");
}

/// A reload to a split tunnel removes the policy routing; back to a full
/// tunnel puts it back. A path that does not name its device is then
/// reloaded: the daemon warns, with the fix.
fn a_reload_switches_between_full_and_split_tunnel(t: &Topo, a: &str, c: &Path) {
    let full = "[\"0.0.0.0/0\", \"::/0\"]";
    let split = "[\"10.42.0.0/30\", \"fd42::/64\", \"203.0.113.80/32\"]";
    reload(t, c, full, split);
    assert_rules(t, a, (0, 0), "after the reload");
    let main = stdout(t, a, &["ip", "route", "show", "table", "main"]);
    assert!(main.contains("203.0.113.80 dev mlvpn0"), "{main}");
    assert!(ping(t, HOST_V4), "split tunnel after the reload");
    reload(t, c, split, full);
    assert_rules(t, a, (1, 1), "after the reload back");
    let main = stdout(t, a, &["ip", "route", "show", "table", "main"]);
    assert!(!main.contains("203.0.113.80"), "{main}");
    assert!(ping(t, HOST_V4), "full tunnel after the reload back");
    // A path that does not name its device is sent by the main table's
    // choice (up1); the daemon says so, with the fix.
    let warning = "would leave through up1, not up2 which holds that address";
    assert!(!t.log_text("client").contains(warning));
    reload(
        t,
        c,
        "bind = \"10.202.0.2:0\"\ndevice = \"up2\"",
        "bind = \"10.202.0.2:0\"",
    );
    let log = t.log_text("client");
    assert!(
        log.contains(warning) && log.contains("set device = \"up2\""),
        "{log}"
    );
}

/// Edits the client's config and sends SIGHUP; returns once the client
/// logged one more reload.
fn reload(t: &Topo, c: &Path, from: &str, to: &str) {
    let reloads = |t: &Topo| t.log_text("client").matches("reloaded:").count();
    let n = reloads(t);
    t.edit_config(c, from, to);
    t.signal("client", Signal::SIGHUP);
    wait_until("reload", Duration::from_secs(10), || reloads(t) > n);
}
