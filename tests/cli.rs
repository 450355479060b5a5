//! The command line as an operator meets it: completions, MLVPN import, the
//! systemd unit shipped in conf/.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_mlvpn-rs");

fn repo(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

#[test]
fn bash_completion_is_valid_and_covers_every_command() {
    let out = Command::new(BIN).args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    let script = String::from_utf8(out.stdout).unwrap();
    for cmd in [
        "genkey",
        "pubkey",
        "check",
        "run",
        "status",
        "import-mlvpn",
        "completions",
        "--prometheus",
    ] {
        assert!(script.contains(cmd), "completion lacks {cmd}");
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("mlvpn-rs.bash");
    std::fs::write(&f, &script).unwrap();
    let st = Command::new("bash").arg("-n").arg(&f).status().unwrap();
    assert!(st.success(), "bash -n rejects the completion script");
}

#[test]
fn import_mlvpn_prints_a_config_or_names_the_problem() {
    let out = Command::new(BIN)
        .arg("import-mlvpn")
        .arg(repo("tests/data/mlvpn-server.conf"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let toml = String::from_utf8(out.stdout).unwrap();
    assert!(
        toml.contains("mode = \"server\"") && toml.matches("[[path]]").count() == 2,
        "{toml}"
    );
    let out = Command::new(BIN)
        .args(["import-mlvpn", "/nonexistent/mlvpn.conf"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/mlvpn.conf"), "{err}");
}

#[test]
fn systemd_unit_verifies() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
        assert!(
            !ci,
            "systemd-analyze is required under CI=true (.ci/run installs systemd)"
        );
        eprintln!("SKIPPED systemd_unit_verifies: systemd-analyze not installed");
        return;
    }
    // The unit as installed, pointing at the binary just built.
    let unit = std::fs::read_to_string(repo("conf/mlvpn-rs@.service")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("mlvpn-rs@site.service");
    std::fs::write(&f, unit.replace("/usr/bin/mlvpn-rs", BIN)).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&f)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let problems: Vec<&str> = report
        .lines()
        .filter(|l| l.contains("mlvpn-rs@site.service"))
        .collect();
    assert!(
        out.status.success() && problems.is_empty(),
        "systemd-analyze verify:\n{report}"
    );
}

/// A private key file (0600) from `genkey` in `dir`, and its public key.
fn key_pair(dir: &Path, name: &str) -> (std::path::PathBuf, String) {
    use std::os::unix::fs::PermissionsExt;
    let key = Command::new(BIN).arg("genkey").output().unwrap().stdout;
    let file = dir.join(name);
    std::fs::write(&file, &key).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut child = Command::new(BIN)
        .arg("pubkey")
        .stdin(std::fs::File::open(&file).unwrap())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let public = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
    assert!(child.wait().unwrap().success());
    (file, public.trim().to_string())
}

fn check(config: &Path) -> String {
    let out = Command::new(BIN)
        .arg("check")
        .arg("-c")
        .arg(config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn check_shows_the_full_tunnel_rules_and_a_servers_skipped_default() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = key_pair(dir.path(), "k");
    let (_, peer) = key_pair(dir.path(), "peer");
    let client = std::fs::read_to_string(repo("conf/client-full-tunnel.toml"))
        .unwrap()
        .replace("/etc/mlvpn-rs/client.key", key.to_str().unwrap())
        .replace("@SERVER_PUBLIC_KEY@", &peer);
    let file = dir.path().join("client.toml");
    std::fs::write(&file, client).unwrap();
    let text = check(&file);
    for want in [
        "full tunnel IPv4: 0.0.0.0/0 via mlvpn0 in table 28012; rules \"not fwmark 0x6d6c lookup 28012\" \
         and \"lookup main suppress_prefixlength 0\"; path sockets marked 0x6d6c",
        "full tunnel IPv6: ::/0 via mlvpn0 in table 28012",
    ] {
        assert!(text.contains(want), "{text}");
    }
    assert!(!text.contains("warning"), "{text}");

    let server = std::fs::read_to_string(repo("conf/server.toml"))
        .unwrap()
        .replace("/etc/mlvpn-rs/server.key", key.to_str().unwrap())
        .replace("@CLIENT_PUBLIC_KEY@", &peer)
        .replace("[\"10.42.0.2/32\"]", "[\"10.42.0.2/32\", \"0.0.0.0/0\"]");
    let file = dir.path().join("server.toml");
    std::fs::write(&file, server).unwrap();
    let text = check(&file);
    assert!(
        text.contains("routed by mlvpn0's own network (no route added): 10.42.0.2/32"),
        "{text}"
    );
    assert!(
        text.contains("warning: 0.0.0.0/0 is not routed: a server never routes a host-wide default"),
        "{text}"
    );
    assert!(!text.contains("full tunnel"), "{text}");
}

/// A concentrator's `check`: every peer on its own line, the routes in one
/// readable line (it was one line of every prefix: 200 KB at 10 000 peers).
#[test]
fn check_of_a_fleet_lists_every_peer_and_abbreviates_its_routes() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = key_pair(dir.path(), "k");
    let mut text = std::fs::read_to_string(repo("conf/server.toml"))
        .unwrap()
        .replace("/etc/mlvpn-rs/server.key", key.to_str().unwrap());
    let (head, tail) = text.split_once("[[peer]]").unwrap();
    let mut fleet = head.to_string();
    for i in 0..20u8 {
        let public = mlvpn_keys::PublicKey([i + 1; 32]).to_base64();
        fleet += &format!("[[peer]]\npublic_key = \"{public}\"\nallowed_ips = [\"10.200.0.{i}/32\"]\n");
    }
    text = format!("{fleet}[[peer]]{tail}").replace(
        "@CLIENT_PUBLIC_KEY@",
        &mlvpn_keys::PublicKey([99; 32]).to_base64(),
    );
    let file = dir.path().join("server.toml");
    std::fs::write(&file, text).unwrap();
    let out = check(&file);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("  peer ")).count(),
        21,
        "{out}"
    );
    let routes = out
        .lines()
        .find(|l| l.starts_with("  routes via mlvpn0: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(
        routes,
        "  routes via mlvpn0: 10.200.0.0/32, 10.200.0.1/32, 10.200.0.2/32, 10.200.0.3/32, \
         10.200.0.4/32, 10.200.0.5/32, 10.200.0.6/32, 10.200.0.7/32 and 12 more"
    );
}

/// `check` (like `run`) refuses a config, key or hook script that another
/// user could write: root would act on it. The message says what to do.
#[test]
fn check_refuses_files_others_could_write_and_says_what_to_do() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    let key = dir.path().join("k");
    let out = Command::new(BIN).arg("genkey").output().unwrap();
    std::fs::write(&key, &out.stdout).unwrap();
    mode(&key, 0o600);
    let up = dir.path().join("up.sh");
    std::fs::write(&up, "#!/bin/sh\n").unwrap();
    mode(&up, 0o775);
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "mode = \"client\"\n[interface]\nname = \"mlvpn0\"\naddress = [\"10.42.0.2/30\"]\n\
             private_key_file = \"k\"\nup_script = \"{}\"\n[[peer]]\npublic_key = \"{}\"\n\
             [[path]]\nname = \"dsl\"\nbind = \"192.0.2.10:0\"\nendpoint = \"203.0.113.1:5080\"\n",
            up.display(),
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
        ),
    )
    .unwrap();
    let check = || {
        let out = Command::new(BIN)
            .args(["check", "-c"])
            .arg(&config)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    mode(&config, 0o666);
    let (ok, err) = check();
    assert!(
        !ok && err.contains(&format!("chmod go-w {}", config.display())),
        "{err}"
    );
    mode(&config, 0o644);
    let (ok, err) = check();
    assert!(
        !ok && err.contains("interface.up_script: hook script")
            && err.contains(&format!("chmod go-w {}", up.display())),
        "{err}"
    );
    mode(&up, 0o755);
    let (ok, err) = check();
    assert!(ok, "{err}");
}

/// Every documented `genkey > FILE` runs under `umask 077`: the shell
/// creates FILE before mlvpn-rs runs, readable by others for a moment
/// under the usual umask 022.
#[test]
fn documented_genkey_redirections_run_under_umask_077() {
    for doc in [
        "README.md",
        "man/mlvpn-rs.8",
        "conf/client.toml",
        "conf/server.toml",
    ] {
        let text = std::fs::read_to_string(repo(doc)).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.contains("genkey >") {
                assert!(line.contains("(umask 077;"), "{doc}:{}: {line}", i + 1);
            }
        }
    }
}
