//! Privilege separation, end to end: what the worker can do, what the
//! parent keeps, what happens when the worker dies, hooks.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::topo::{can_run, status_field, wait_until, Topo};

/// Socket inodes a process holds.
fn socket_inodes(pid: u32) -> HashSet<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            l.to_str()
                .and_then(|s| s.strip_prefix("socket:["))
                .map(|s| s.trim_end_matches(']').to_string())
        })
        .collect()
}

/// Inodes of the UDP sockets of namespace `ns`.
fn udp_inodes(t: &Topo, ns: &str) -> HashSet<String> {
    let mut set = HashSet::new();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let out = t.ns_cmd(ns, &["cat", table]);
        for line in String::from_utf8_lossy(&out.stdout).lines().skip(1) {
            if let Some(inode) = line.split_whitespace().nth(9) {
                set.insert(inode.to_string());
            }
        }
    }
    set
}

#[test]
fn worker_is_unprivileged_chrooted_and_parent_keeps_no_path_socket() {
    if !can_run("worker_is_unprivileged_chrooted_and_parent_keeps_no_path_socket") {
        return;
    }
    let mut t = Topo::new();
    t.start_pair();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    for name in ["server", "client"] {
        let (parent, worker) = t.pids(name);
        let uid = nobody.uid.as_raw().to_string();
        let gid = nobody.gid.as_raw().to_string();
        assert_eq!(
            status_field(worker, "Uid").split_whitespace().collect::<Vec<_>>(),
            [&uid; 4]
        );
        assert_eq!(
            status_field(worker, "Gid").split_whitespace().collect::<Vec<_>>(),
            [&gid; 4]
        );
        for caps in ["CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"] {
            assert_eq!(
                status_field(worker, caps),
                "0000000000000000",
                "{name} worker {caps}"
            );
        }
        assert_eq!(status_field(worker, "NoNewPrivs"), "1");
        // 2 = filter mode: the worker runs under its system-call allowlist;
        // the parent (which must run ip(8) and bind sockets) does not.
        assert_eq!(status_field(worker, "Seccomp"), "2", "{name} worker seccomp");
        assert_eq!(
            status_field(worker, "Seccomp_filters"),
            "2",
            "{name} worker: clone3 filter and allowlist"
        );
        assert_eq!(
            std::fs::read_link(format!("/proc/{worker}/root"))
                .unwrap()
                .to_str()
                .unwrap(),
            "/run/mlvpn-rs/empty"
        );
        // The parent is still root (it runs hooks), but holds no UDP socket.
        assert_eq!(status_field(parent, "Uid").split_whitespace().next(), Some("0"));
        assert_eq!(
            status_field(parent, "Seccomp"),
            "0",
            "{name} parent is not filtered"
        );
        let ns = if name == "server" {
            t.b.clone()
        } else {
            t.a.clone()
        };
        let udp = udp_inodes(&t, &ns);
        assert!(
            socket_inodes(parent).is_disjoint(&udp),
            "{name} parent holds a UDP socket"
        );
        assert!(
            socket_inodes(worker).intersection(&udp).count() >= 2,
            "{name} worker holds the path sockets"
        );
    }
    assert!(t.ping(3), "the tunnel passes traffic with privileges dropped");
    t.iperf_server();
    let mut c = t.iperf_client(&["-t", "2"]);
    assert!(
        c.wait().unwrap().success(),
        "TCP through the privilege-separated tunnel"
    );
}

#[test]
fn killed_worker_makes_parent_exit_nonzero_and_removes_tun() {
    if !can_run("killed_worker_makes_parent_exit_nonzero_and_removes_tun") {
        return;
    }
    let mut t = Topo::new();
    t.start_pair();
    let b = t.b.clone();
    assert!(t.ns_cmd(&b, &["ip", "link", "show", "mlvpn0"]).status.success());
    let (_, worker) = t.pids("server");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(worker as i32), Signal::SIGKILL).unwrap();
    let st = t.wait_exit("server", Duration::from_secs(15));
    assert!(
        !st.success(),
        "parent must exit non-zero when the worker dies: {st}"
    );
    assert!(
        !t.ns_cmd(&b, &["ip", "link", "show", "mlvpn0"]).status.success(),
        "TUN removed"
    );
}

#[test]
fn hooks_get_their_environment_and_a_hung_hook_is_killed() {
    if !can_run("hooks_get_their_environment_and_a_hung_hook_is_killed") {
        return;
    }
    let mut t = Topo::new();
    let dir = t.dir.clone();
    let up = dir.join("up.sh");
    let down = dir.join("down.sh");
    std::fs::write(
        &up,
        format!(
            "#!/bin/sh\nenv | grep ^MLVPN_ | sort > {}/hook-$MLVPN_EVENT-${{MLVPN_PATH:-all}}\n",
            dir.display()
        ),
    )
    .unwrap();
    // The down hook hangs: the daemon must still stop (hook_timeout = 1s).
    std::fs::write(
        &down,
        format!(
            "#!/bin/sh\ntouch {}/down-started\nexec sleep 1000\n",
            dir.display()
        ),
    )
    .unwrap();
    for f in [&up, &down] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let (skey, spub) = t.key("server");
    let (ckey, cpub) = t.key("client");
    let s = t.server_config(&skey, &cpub);
    let extra = format!(
        "up_script = \"{}\"\ndown_script = \"{}\"\nhook_timeout = \"1s\"",
        up.display(),
        down.display()
    );
    let c = t.client_config_with(&ckey, &spub, &extra);
    let (a, b) = (t.a.clone(), t.b.clone());
    t.start("server", &b, &s);
    t.start("client", &a, &c);
    t.wait_paths("client", &["up", "up"], Duration::from_secs(15));
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    wait_until("up hooks ran", Duration::from_secs(10), || {
        ["hook-tunnel_up-all", "hook-path_up-dsl", "hook-path_up-lte"]
            .iter()
            .all(|f| !read(f).is_empty())
    });
    let env = read("hook-path_up-lte");
    for line in [
        "MLVPN_EVENT=path_up",
        "MLVPN_DEVICE=mlvpn0",
        "MLVPN_ADDRESSES=10.42.0.2/30",
        "MLVPN_MTU=1416",
        "MLVPN_MODE=client",
        "MLVPN_PATH=lte",
        "MLVPN_PATH_STATE=up",
    ] {
        assert!(
            env.lines().any(|l| l == line),
            "{line} missing from hook environment:\n{env}"
        );
    }
    assert!(read("hook-tunnel_up-all").contains("MLVPN_EVENT=tunnel_up"));
    t.signal("client", Signal::SIGTERM);
    let st = t.wait_exit("client", Duration::from_secs(20));
    assert!(st.success(), "clean stop despite the hung down hook: {st}");
    assert!(dir.join("down-started").exists(), "down hook ran at shutdown");
}
