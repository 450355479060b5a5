//! SIGHUP reload on live daemons: a path added to both sides joins a
//! running transfer without disturbing the path already carrying it, a
//! broken config file is refused while the tunnel keeps running, and a new
//! private key is applied.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::iperf_result;
use crate::topo::{can_run, wait_until, Topo};

const SERVER_ISP2: &str = "[[path]]\nname = \"isp2\"\nbind = \"10.102.0.2:5081\"\n";
const CLIENT_LTE: &str =
    "[[path]]\nname = \"lte\"\nbind = \"10.102.0.1:0\"\nendpoint = \"10.102.0.2:5081\"\n";

fn path_field(t: &Topo, i: usize, field: &str) -> u64 {
    t.status("client").unwrap()["peers"][0]["paths"][i][field]
        .as_u64()
        .unwrap_or(0)
}

fn wait_log(t: &Topo, name: &str, text: &str) {
    wait_until(&format!("{name} logs {text:?}"), Duration::from_secs(10), || {
        t.log_text(name).contains(text)
    });
}

#[test]
fn a_path_added_by_reload_joins_a_running_transfer() {
    if !can_run("a_path_added_by_reload_joins_a_running_transfer") {
        return;
    }
    let mut t = Topo::new();
    let (s, c) = t.pair_configs();
    let (full_s, full_c) = (
        std::fs::read_to_string(&s).unwrap(),
        std::fs::read_to_string(&c).unwrap(),
    );
    t.edit_config(&s, SERVER_ISP2, "");
    t.edit_config(&c, CLIENT_LTE, "");
    let (a, b) = (t.a.clone(), t.b.clone());
    t.start("server", &b, &s);
    t.start("client", &a, &c);
    t.wait_paths("client", &["up"], Duration::from_secs(15));
    let dsl_handshakes = path_field(&t, 0, "handshakes");
    // dsl alone cannot carry the transfer: once lte is up the scheduler
    // must use it (on two unshaped veths lte carried 0.2 to 16 MB, and
    // once too little for the check below).
    t.shape_uplink("va1", "20mbit");

    t.iperf_server();
    let transfer = t.iperf_client(&["-t", "6"]);
    let start = path_field(&t, 0, "tx_bytes");
    wait_until("traffic on dsl", Duration::from_secs(10), || {
        path_field(&t, 0, "tx_bytes") > start + 1_000_000
    });

    // Server first (it must listen before the client's path handshakes).
    std::fs::write(&s, &full_s).unwrap();
    t.signal("server", Signal::SIGHUP);
    wait_log(&t, "server", "reloaded: server paths added [\"isp2\"]");
    std::fs::write(&c, &full_c).unwrap();
    t.signal("client", Signal::SIGHUP);
    wait_log(&t, "client", "reloaded: client paths added [\"lte\"]");
    t.wait_paths("client", &["up", "up"], Duration::from_secs(10));
    wait_until("lte carries traffic", Duration::from_secs(10), || {
        path_field(&t, 1, "tx_bytes") > 200_000
    });
    assert_eq!(
        path_field(&t, 0, "handshakes"),
        dsl_handshakes,
        "dsl kept its session across the reload"
    );
    let v = iperf_result(transfer);
    assert!(v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0) > 1_000_000);
    assert!(t.daemon_alive("server") && t.daemon_alive("client"));

    // A path removed by reload stops being used; the other is untouched.
    t.edit_config(&c, CLIENT_LTE, "");
    t.signal("client", Signal::SIGHUP);
    wait_log(&t, "client", "removed [\"lte\"]");
    t.wait_paths("client", &["up"], Duration::from_secs(10));
    assert!(t.ping(3), "tunnel works over dsl alone");
}

#[test]
fn a_broken_config_is_refused_on_reload_and_the_tunnel_keeps_running() {
    if !can_run("a_broken_config_is_refused_on_reload_and_the_tunnel_keeps_running") {
        return;
    }
    let mut t = Topo::new();
    t.start_pair();
    let c = t.daemon_config("client");
    let handshakes = path_field(&t, 0, "handshakes");
    // An unknown key (line 9) and, separately, a restart-only change.
    t.edit_config(
        &c,
        "path_timeout = \"2s\"\n",
        "path_timeout = \"2s\"\nbogus = 1\n",
    );
    t.signal("client", Signal::SIGHUP);
    wait_log(&t, "client", "reload refused, the running configuration stays");
    let log = t.log_text("client");
    assert!(log.contains("client.toml:9:") && log.contains("bogus"), "{log}");
    t.edit_config(&c, "bogus = 1\n", "");
    t.edit_config(&c, "10.42.0.2/30", "10.42.0.6/30");
    t.signal("client", Signal::SIGHUP);
    wait_log(&t, "client", "interface.address changed; that needs a restart");
    wait_log(&t, "client", "reloaded:");
    assert!(t.daemon_alive("client"));
    t.wait_paths("client", &["up", "up"], Duration::from_secs(5));
    assert!(t.ping(3), "tunnel still works on the running address");
    assert_eq!(
        path_field(&t, 0, "handshakes"),
        handshakes,
        "no session was dropped"
    );
}

#[test]
fn a_new_private_key_is_applied_on_reload() {
    if !can_run("a_new_private_key_is_applied_on_reload") {
        return;
    }
    let mut t = Topo::new();
    t.start_pair();
    let (s, c) = (t.daemon_config("server"), t.daemon_config("client"));
    let before = [path_field(&t, 0, "handshakes"), path_field(&t, 1, "handshakes")];
    // The client's key is replaced: the server is told its new public key
    // first, then the client reloads.
    let old_key = t.dir.join("client.key");
    let (new_key, new_pub) = t.key("client-new");
    let old_text = std::fs::read_to_string(&s).unwrap();
    let old_client_pub = old_text
        .lines()
        .find_map(|l| l.strip_prefix("public_key = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap()
        .to_string();
    assert_ne!(old_client_pub, new_pub);
    t.edit_config(&s, &old_client_pub, &new_pub);
    t.signal("server", Signal::SIGHUP);
    wait_log(&t, "server", "peers added 1, removed 1");
    t.edit_config(&c, &old_key.display().to_string(), &new_key.display().to_string());
    t.signal("client", Signal::SIGHUP);
    wait_log(&t, "client", "private key changed (public key now");
    wait_log(&t, "client", "every path handshakes with the new key");
    t.wait_paths("client", &["up", "up"], Duration::from_secs(10));
    assert!(t.ping(3), "the tunnel runs on the new key");
    assert!(
        path_field(&t, 0, "handshakes") > before[0] && path_field(&t, 1, "handshakes") > before[1],
        "every path handshook again"
    );
    let server = t.status("server").unwrap();
    assert_eq!(server["peers"][0]["public_key"], new_pub.as_str());
    assert_eq!(server["peers"][0]["paths"].as_array().map(Vec::len), Some(2));
}
