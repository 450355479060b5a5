//! The shipped systemd unit (`conf/mlvpn-rs@.service`): the daemon runs
//! under exactly its capability bounding set and as much of its sandbox as
//! can be reproduced without systemd (`unit_sandbox.sh`), and passes
//! traffic; a worker that cannot start says which step failed and why.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::iperf_result;
use crate::topo::{can_run_with, status_field, Topo};

/// What unit_sandbox.sh runs.
const SANDBOX_TOOLS: &[&str] = &["unshare", "setpriv", "findmnt", "mount"];

const UNIT: &str = include_str!("../../conf/mlvpn-rs@.service");
const SANDBOX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/unit_sandbox.sh");

/// Every value of `key=` in the unit's `[Service]` section, split on
/// whitespace (a key may repeat).
fn unit_values(key: &str) -> Vec<String> {
    UNIT.lines()
        .skip_while(|l| l.trim() != "[Service]")
        .take_while(|l| !l.starts_with('[') || l.trim() == "[Service]")
        .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .flat_map(|v| v.split_whitespace().map(str::to_string))
        .collect()
}

fn unit_value(key: &str) -> String {
    let v = unit_values(key);
    assert_eq!(v.len(), 1, "the unit sets {key} once: {v:?}");
    v[0].clone()
}

/// Capability numbers (linux/capability.h) of the names a unit may use here.
fn cap_number(name: &str) -> u32 {
    match name {
        "CAP_CHOWN" => 0,
        "CAP_DAC_OVERRIDE" => 1,
        "CAP_DAC_READ_SEARCH" => 2,
        "CAP_FOWNER" => 3,
        "CAP_KILL" => 5,
        "CAP_SETGID" => 6,
        "CAP_SETUID" => 7,
        "CAP_SETPCAP" => 8,
        "CAP_NET_BIND_SERVICE" => 10,
        "CAP_NET_ADMIN" => 12,
        "CAP_NET_RAW" => 13,
        "CAP_SYS_CHROOT" => 18,
        "CAP_SYS_ADMIN" => 21,
        other => panic!("cap_number: add {other}"),
    }
}

/// The unit's sandbox options this test reproduces, so that a change to
/// them is noticed here.
fn assert_unit_sandbox_is_the_reproduced_one() {
    for (key, want) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectControlGroups", "yes"),
        ("AmbientCapabilities", ""),
    ] {
        let got = unit_values(key).join(" ");
        assert_eq!(
            got, want,
            "the unit's {key} (unit_sandbox.sh reproduces {want:?})"
        );
    }
}

/// `ip netns exec NS` + this, + `mlvpn-rs run -c FILE`: the unit's sandbox
/// with `caps` (the unit's names, e.g. `CAP_NET_ADMIN`) as bounding set;
/// `keep` is the test's directory (config and keys), read-only inside.
fn sandbox(caps: &[String], keep: &Path) -> Vec<String> {
    let bounding: Vec<String> = std::iter::once("-all".to_string())
        .chain(caps.iter().map(|c| {
            let name = c.strip_prefix("CAP_").expect("CAP_ name").to_lowercase();
            format!("+{name}")
        }))
        .collect();
    let rw = unit_values("ReadWritePaths");
    for p in &rw {
        std::fs::create_dir_all(p).unwrap(); // RuntimeDirectory= does this
    }
    [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        SANDBOX,
        &bounding.join(","),
        &unit_value("UMask"),
        &rw.join(":"),
        keep.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Configs whose control sockets live in the unit's writable directory, a
/// server listening on a low port (CAP_NET_BIND_SERVICE) and a client path
/// tied to its device (SO_BINDTODEVICE): (server config, client config).
fn unit_configs(t: &Topo) -> (PathBuf, PathBuf) {
    let (s, c) = t.pair_configs();
    let (ssock, csock) = (t.dir.join("server.sock"), t.dir.join("client.sock"));
    t.edit_config(
        &s,
        &ssock.display().to_string(),
        &t.run_dir_socket("server").display().to_string(),
    );
    t.edit_config(
        &c,
        &csock.display().to_string(),
        &t.run_dir_socket("client").display().to_string(),
    );
    t.edit_config(&s, "10.101.0.2:5080", "10.101.0.2:443");
    t.edit_config(&c, "10.101.0.2:5080", "10.101.0.2:443");
    t.edit_config(
        &c,
        "bind = \"10.102.0.1:0\"",
        "bind = \"10.102.0.1:0\"\ndevice = \"va2\"",
    );
    (s, c)
}

#[test]
fn the_daemon_runs_under_the_shipped_units_capabilities_and_sandbox() {
    if !can_run_with(
        "the_daemon_runs_under_the_shipped_units_capabilities_and_sandbox",
        SANDBOX_TOOLS,
    ) {
        return;
    }
    assert_unit_sandbox_is_the_reproduced_one();
    let caps = unit_values("CapabilityBoundingSet");
    let mut t = Topo::new();
    let (s, c) = unit_configs(&t);
    let (a, b) = (t.a.clone(), t.b.clone());
    let wrapper = sandbox(&caps, &t.dir);
    t.start_wrapped("server", &b, &s, &wrapper);
    t.start_wrapped("client", &a, &c, &wrapper);
    t.wait_paths("client", &["up", "up"], Duration::from_secs(15));

    // The sandbox really applied to the parent: this bounding set, no new
    // privileges, a read-only root.
    let want: u64 = caps.iter().map(|c| 1u64 << cap_number(c)).sum();
    for name in ["server", "client"] {
        let (parent, _) = t.pids(name);
        let bnd = u64::from_str_radix(&status_field(parent, "CapBnd"), 16).unwrap();
        assert_eq!(bnd, want, "{name} parent's bounding set is the unit's ({caps:?})");
        assert_eq!(status_field(parent, "NoNewPrivs"), "1");
        let mounts = std::fs::read_to_string(format!("/proc/{parent}/mountinfo")).unwrap();
        let root = mounts
            .lines()
            .find(|l| l.split_whitespace().nth(4) == Some("/"))
            .expect("a root mount");
        assert!(
            root.split_whitespace()
                .nth(5)
                .unwrap()
                .split(',')
                .any(|o| o == "ro"),
            "{name} parent sees / read-only: {root}"
        );
    }
    assert!(t.ping(3), "ping through the tunnel run under the unit's sandbox");
    t.iperf_server();
    let v = iperf_result(t.iperf_client(&["-t", "2"]));
    let got = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    assert!(
        got > 100_000,
        "TCP through the sandboxed tunnel moved only {got} bytes"
    );
}
#[test]
fn a_worker_that_cannot_start_reports_the_step_and_errno_and_the_parent_exits_nonzero() {
    if !can_run_with(
        "a_worker_that_cannot_start_reports_the_step_and_errno_and_the_parent_exits_nonzero",
        SANDBOX_TOOLS,
    ) {
        return;
    }
    // Without CAP_SETPCAP the worker cannot clear its bounding set.
    let caps: Vec<String> = unit_values("CapabilityBoundingSet")
        .into_iter()
        .filter(|c| c != "CAP_SETPCAP")
        .collect();
    let mut t = Topo::new();
    let (s, _) = unit_configs(&t);
    let b = t.b.clone();
    let wrapper = sandbox(&caps, &t.dir);
    t.spawn("server", &b, &s, &wrapper);
    let st = t.wait_exit("server", Duration::from_secs(15));
    let log = t.log_text("server");
    assert!(!st.success(), "the parent exits non-zero: {st}\n{log}");
    let line = log
        .lines()
        .find(|l| {
            l.contains("ERROR mlvpn_rs::daemon::parent")
                && l.contains("worker: dropping the capability bounding set: EPERM")
        })
        .unwrap_or_else(|| panic!("the parent logs the worker's failed step and errno:\n{log}"));
    eprintln!("{line}");
    assert!(
        !t.ns_cmd(&b, &["ip", "link", "show", "mlvpn0"]).status.success(),
        "TUN removed"
    );
}
