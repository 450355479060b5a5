//! Two-site test topology in network namespaces, with real daemons.
//!
//! ```text
//!   namespace A (client site)            namespace B (server site)
//!   va1 10.101.0.1/24 ───── veth ─────── vb1 10.101.0.2/24   path "dsl" → :5080
//!   va2 10.102.0.1/24 ───── veth ─────── vb2 10.102.0.2/24   path "lte" → :5081
//!   mlvpn0 10.42.0.2/30 ════ tunnel ════ mlvpn0 10.42.0.1/30
//! ```
//! Every `Topo` has its own namespaces (unique suffix) and removes them, its
//! daemons and helper processes in `Drop`, also when the test panics, after
//! printing the daemons' last log lines and status.

use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_mlvpn-rs");

/// The tests share two cores: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// True under CI (`CI=true`, exported by `.ci/run`): a test that cannot
/// run there fails instead of skipping, so CI never passes what did not run.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"))
}

/// Returns false (after saying so loudly) when the test cannot run here;
/// under CI panics instead.
pub fn can_run(test: &str) -> bool {
    can_run_with(test, &[])
}

/// [`can_run`], also needing `tools` (util-linux's setpriv, unshare, ...).
pub fn can_run_with(test: &str, tools: &[&str]) -> bool {
    let skip = |why: String| {
        assert!(!in_ci(), "{test} cannot run under CI=true: {why}");
        eprintln!("\n*** SKIPPED: {test}: {why} ***\n");
        false
    };
    if !nix::unistd::geteuid().is_root() {
        return skip("needs root (network namespaces, TUN); CI runs it as root".into());
    }
    for tool in ["ip", "iperf3", "ping"].iter().chain(tools) {
        if which(tool).is_none() {
            return skip(format!(
                "needs {tool} (apt-get install iperf3 iproute2 iputils-ping util-linux; .ci/run installs it)"
            ));
        }
    }
    true
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|f| f.exists())
}

pub fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

fn must(cmd: &str, args: &[&str]) {
    let o = run(cmd, args);
    assert!(
        o.status.success(),
        "{cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// One field of /proc/PID/status (`Uid`, `CapEff`, `Seccomp`…), trimmed.
pub fn status_field(pid: u32, field: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

/// Polls `cond` every 20 ms until it holds; panics with `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < end,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct Daemon {
    pub name: &'static str,
    child: Child,
    pub config: PathBuf,
    log: PathBuf,
}

pub struct Topo {
    pub a: String,
    pub b: String,
    /// Every namespace of the topology (A and B included), removed in Drop.
    namespaces: Vec<String>,
    pub dir: PathBuf,
    /// Unique to this topology (process id and counter).
    pub sfx: String,
    daemons: Vec<Daemon>,
    helpers: Vec<Child>,
    _serial: MutexGuard<'static, ()>,
}

impl Topo {
    /// Sites A and B joined by two uplinks (see the module docs).
    pub fn new() -> Topo {
        let topo = Topo::bare();
        for i in 1..=2 {
            topo.link(
                (&topo.a, &format!("va{i}"), &[&format!("10.10{i}.0.1/24")]),
                (&topo.b, &format!("vb{i}"), &[&format!("10.10{i}.0.2/24")]),
            );
        }
        topo
    }

    /// Empty namespaces A and B (loopback up, no link between them), for
    /// tests that build their own network with [`Topo::add_ns`] and
    /// [`Topo::link`].
    pub fn bare() -> Topo {
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let sfx = format!("{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("mlvpn-e2e-{sfx}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut topo = Topo {
            a: String::new(),
            b: String::new(),
            namespaces: Vec::new(),
            dir,
            sfx,
            daemons: Vec::new(),
            helpers: Vec::new(),
            _serial: serial,
        };
        topo.a = topo.add_ns("a");
        topo.b = topo.add_ns("b");
        topo
    }

    /// A new namespace `mle2e-ROLE-SUFFIX` (loopback up), removed with the
    /// topology.
    pub fn add_ns(&mut self, role: &str) -> String {
        let ns = format!("mle2e-{role}-{}", self.sfx);
        must("ip", &["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        must("ip", &["-n", &ns, "link", "set", "lo", "up"]);
        ns
    }

    /// A veth pair between two namespaces, each end given as (namespace,
    /// device, addresses), addressed (IPv6 without duplicate address
    /// detection: usable at once) and up.
    pub fn link(&self, one: (&str, &str, &[&str]), other: (&str, &str, &[&str])) {
        let ((ns1, dev1, _), (ns2, dev2, _)) = (one, other);
        must(
            "ip",
            &[
                "-n", ns1, "link", "add", dev1, "type", "veth", "peer", "name", dev2, "netns", ns2,
            ],
        );
        for (ns, dev, addrs) in [one, other] {
            for addr in addrs {
                let mut args = vec!["-n", ns, "addr", "add", addr, "dev", dev];
                if addr.contains(':') {
                    args.push("nodad");
                }
                must("ip", &args);
            }
            must("ip", &["-n", ns, "link", "set", dev, "up"]);
        }
    }

    /// Runs `ip -n NS COMMAND` (words separated by spaces) and panics if it
    /// fails.
    pub fn ip(&self, ns: &str, command: &str) {
        let mut all = vec!["-n", ns];
        all.extend(command.split_whitespace());
        must("ip", &all);
    }

    pub fn ns_cmd(&self, ns: &str, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", ns];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Writes a new private key file (0600); returns (path, public key).
    pub fn key(&self, name: &str) -> (PathBuf, String) {
        let path = self.dir.join(format!("{name}.key"));
        let out = run(BIN, &["genkey"]);
        assert!(out.status.success());
        std::fs::write(&path, &out.stdout).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut child = Command::new(BIN)
            .arg("pubkey")
            .stdin(File::open(&path).unwrap())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut public = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut public).unwrap();
        assert!(child.wait().unwrap().success());
        (path, public.trim().to_string())
    }

    pub fn server_config(&self, key: &Path, client_pub: &str) -> PathBuf {
        let text = format!(
            r#"mode = "server"
[interface]
name = "mlvpn0"
address = ["10.42.0.1/30"]
private_key_file = "{}"
control_socket = "{}"
[[peer]]
public_key = "{client_pub}"
allowed_ips = ["10.42.0.2/32"]
[[path]]
name = "isp1"
bind = "10.101.0.2:5080"
[[path]]
name = "isp2"
bind = "10.102.0.2:5081"
"#,
            key.display(),
            self.dir.join("server.sock").display()
        );
        let p = self.dir.join("server.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn client_config(&self, key: &Path, server_pub: &str) -> PathBuf {
        self.client_config_with(key, server_pub, "")
    }

    /// Client config with `extra` lines added to `[interface]`.
    pub fn client_config_with(&self, key: &Path, server_pub: &str, extra: &str) -> PathBuf {
        let text = format!(
            r#"mode = "client"
[interface]
name = "mlvpn0"
address = ["10.42.0.2/30"]
private_key_file = "{}"
control_socket = "{}"
keepalive = "500ms"
path_timeout = "2s"
{extra}
[[peer]]
public_key = "{server_pub}"
allowed_ips = ["10.42.0.0/30"]
[[path]]
name = "dsl"
bind = "10.101.0.1:0"
endpoint = "10.101.0.2:5080"
[[path]]
name = "lte"
bind = "10.102.0.1:0"
endpoint = "10.102.0.2:5081"
"#,
            key.display(),
            self.dir.join("client.sock").display()
        );
        let p = self.dir.join("client.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Starts a daemon (replacing a stopped one of the same name: its log
    /// is appended to) and waits for its control socket.
    pub fn start(&mut self, name: &'static str, ns: &str, config: &Path) {
        self.start_wrapped(name, ns, config, &[]);
    }

    /// Starts a daemon as `ip netns exec NS WRAPPER... mlvpn-rs run -c
    /// CONFIG` and waits until its control socket answers; panics with its
    /// log if it exits first.
    pub fn start_wrapped(&mut self, name: &'static str, ns: &str, config: &Path, wrapper: &[String]) {
        self.spawn(name, ns, config, wrapper);
        let end = Instant::now() + Duration::from_secs(10);
        while self.status(name).is_none() {
            let exited = self
                .daemons
                .iter_mut()
                .find(|d| d.name == name)
                .and_then(|d| d.child.try_wait().ok().flatten());
            if let Some(st) = exited {
                panic!("{name} exited during start-up ({st}):\n{}", self.log_text(name));
            }
            assert!(
                Instant::now() < end,
                "timed out after 10s waiting for {name} control socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a daemon (see [`Topo::start_wrapped`]) without waiting for it.
    pub fn spawn(&mut self, name: &'static str, ns: &str, config: &Path, wrapper: &[String]) {
        if let Some(i) = self.daemons.iter().position(|d| d.name == name) {
            let mut old = self.daemons.remove(i);
            terminate(&mut old.child);
        }
        let log = self.dir.join(format!("{name}.log"));
        let log_file = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap()
        };
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(wrapper)
            .args([BIN, "run", "-c"])
            .arg(config)
            .env("MLVPN_LOG", "debug")
            .stdout(log_file())
            .stderr(log_file())
            .spawn()
            .unwrap();
        self.daemons.push(Daemon {
            name,
            child,
            config: config.to_path_buf(),
            log,
        });
    }

    /// A control socket path for daemon `name` under /run/mlvpn-rs (where
    /// the systemd unit lets the daemon write), unique to this topology and
    /// removed with it.
    pub fn run_dir_socket(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/run/mlvpn-rs/mle2e-{}-{name}.sock", self.sfx))
    }

    /// Keys for a server and a client that know each other, and their
    /// default configs: (server config, client config).
    pub fn pair_configs(&self) -> (PathBuf, PathBuf) {
        let (skey, spub) = self.key("server");
        let (ckey, cpub) = self.key("client");
        (self.server_config(&skey, &cpub), self.client_config(&ckey, &spub))
    }

    /// Starts a server and a client that know each other; waits for both
    /// client paths to be up.
    pub fn start_pair(&mut self) {
        let (s, c) = self.pair_configs();
        let (a, b) = (self.a.clone(), self.b.clone());
        self.start("server", &b, &s);
        self.start("client", &a, &c);
        self.wait_paths("client", &["up", "up"], Duration::from_secs(15));
    }

    pub fn daemon_alive(&mut self, name: &str) -> bool {
        self.daemons
            .iter_mut()
            .find(|d| d.name == name)
            .is_some_and(|d| matches!(d.child.try_wait(), Ok(None)))
    }

    /// (parent pid, worker pid) of a running daemon.
    pub fn pids(&self, name: &str) -> (u32, u32) {
        let parent = self
            .daemons
            .iter()
            .find(|d| d.name == name)
            .expect("daemon")
            .child
            .id();
        let mut worker = None;
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid ...: comm may hold spaces, split after ')'.
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                continue;
            };
            let ppid: u32 = rest
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            if ppid == parent {
                worker = e.file_name().to_str().and_then(|p| p.parse().ok());
            }
        }
        (parent, worker.expect("worker process"))
    }

    /// Kills a daemon's parent and worker at once (SIGKILL: a crash, an
    /// OOM kill, a power cut of the VPS), reaps them and forgets the
    /// daemon, so that `start` can run it again under the same name.
    pub fn crash(&mut self, name: &str) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        let (parent, worker) = self.pids(name);
        for pid in [parent, worker] {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        self.wait_exit(name, Duration::from_secs(10));
        // The worker is the parent's child: wait until it is gone too.
        wait_until(&format!("{name} worker gone"), Duration::from_secs(10), || {
            !Path::new(&format!("/proc/{worker}")).exists()
        });
        self.daemons.retain(|d| d.name != name);
    }

    /// Waits for a daemon to exit by itself; returns its exit status.
    pub fn wait_exit(&mut self, name: &str, limit: Duration) -> std::process::ExitStatus {
        let d = self.daemons.iter_mut().find(|d| d.name == name).expect("daemon");
        let end = Instant::now() + limit;
        loop {
            if let Some(st) = d.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < end, "{name} did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Caps one of the client's uplinks (`va1`: dsl, `va2`: lte) at `rate`
    /// with a tbf qdisc, so a transfer needs more than that link: which
    /// path the scheduler uses no longer depends on unshaped veth timing.
    pub fn shape_uplink(&self, dev: &str, rate: &str) {
        let tbf = [
            "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", "32kbit", "latency",
            "50ms",
        ];
        assert!(self.ns_cmd(&self.a, &tbf).status.success(), "tc tbf on {dev}");
    }

    /// Sends `sig` to a daemon's parent process.
    pub fn signal(&self, name: &str, sig: nix::sys::signal::Signal) {
        let d = self.daemons.iter().find(|d| d.name == name).expect("daemon");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(d.child.id() as i32), sig).unwrap();
    }

    /// The server's view of the client path `name` (the server lists client
    /// paths in handshake order, so find it by name).
    pub fn server_path(&self, name: &str) -> Value {
        let s = self.status("server").expect("server status");
        let paths = s["peers"][0]["paths"].as_array().cloned().unwrap_or_default();
        paths
            .into_iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("server knows path {name}"))
    }

    /// Replaces `from` by `to` in a config file written by this topology.
    pub fn edit_config(&self, config: &Path, from: &str, to: &str) {
        let text = std::fs::read_to_string(config).unwrap();
        assert!(text.contains(from), "{} lacks {from:?}", config.display());
        std::fs::write(config, text.replace(from, to)).unwrap();
    }

    /// Applies each (from, to) replacement of [`Topo::edit_config`] in turn.
    pub fn edit_config_all(&self, config: &Path, edits: &[(&str, &str)]) {
        for (from, to) in edits {
            self.edit_config(config, from, to);
        }
    }

    /// The config file a daemon was started with.
    pub fn daemon_config(&self, name: &str) -> PathBuf {
        self.daemons
            .iter()
            .find(|d| d.name == name)
            .expect("daemon")
            .config
            .clone()
    }

    /// Everything a daemon has logged so far.
    pub fn log_text(&self, name: &str) -> String {
        let d = self.daemons.iter().find(|d| d.name == name).expect("daemon");
        std::fs::read_to_string(&d.log).unwrap_or_default()
    }

    /// `mlvpn-rs status ARGS` of a daemon: its standard output.
    pub fn status_text(&self, name: &str, args: &[&str]) -> String {
        let d = self.daemons.iter().find(|d| d.name == name).expect("daemon");
        let out = Command::new(BIN)
            .arg("status")
            .args(args)
            .arg("-c")
            .arg(&d.config)
            .output()
            .expect("run mlvpn-rs status");
        assert!(
            out.status.success(),
            "status {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// `mlvpn-rs status --json` of a daemon, `None` if it does not answer.
    pub fn status(&self, name: &str) -> Option<Value> {
        let d = self.daemons.iter().find(|d| d.name == name)?;
        let out = Command::new(BIN)
            .args(["status", "--json", "-c"])
            .arg(&d.config)
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    pub fn drops(&self, name: &str, counter: &str) -> u64 {
        self.status(name)
            .and_then(|s| s["drops"][counter].as_u64())
            .unwrap_or(0)
    }

    pub fn drops_total(&self, name: &str) -> u64 {
        let s = self.status(name).expect("status");
        s["drops"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum()
    }

    pub fn path_states(&self, name: &str) -> Vec<String> {
        self.status(name)
            .map(|s| {
                s["peers"][0]["paths"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .map(|p| p["state"].as_str().unwrap_or("?").to_string())
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    pub fn wait_paths(&self, name: &str, want: &[&str], limit: Duration) {
        wait_until(&format!("{name} paths {want:?}"), limit, || {
            self.path_states(name) == want
        });
    }

    /// An interface counter (`tx_bytes`, `rx_packets`, ...) inside `ns`.
    pub fn counter(&self, ns: &str, dev: &str, name: &str) -> u64 {
        let o = self.ns_cmd(ns, &["cat", &format!("/sys/class/net/{dev}/statistics/{name}")]);
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap_or(0)
    }

    pub fn ping(&self, count: u32) -> bool {
        self.ns_cmd(
            &self.a,
            &[
                "ping",
                "-c",
                &count.to_string(),
                "-i",
                "0.2",
                "-W",
                "2",
                "10.42.0.1",
            ],
        )
        .status
        .success()
    }

    /// Starts a one-shot iperf3 server on the tunnel address in B and waits
    /// until it listens.
    pub fn iperf_server(&mut self) {
        let b = self.b.clone();
        self.iperf_server_at(&b, "10.42.0.1");
    }

    /// Starts a one-shot iperf3 server on `addr` in `ns` and waits until it
    /// listens.
    pub fn iperf_server_at(&mut self, ns: &str, addr: &str) {
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "iperf3", "-s", "-1", "-B", addr])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.helpers.push(child);
        let listening = format!("{addr}:5201");
        wait_until("iperf3 server listening", Duration::from_secs(10), || {
            String::from_utf8_lossy(&run("ip", &["netns", "exec", ns, "ss", "-ltn"]).stdout)
                .contains(&listening)
        });
    }

    /// Starts an iperf3 client in A to the tunnel address in B (JSON
    /// output); returns the child.
    pub fn iperf_client(&self, args: &[&str]) -> Child {
        self.iperf_client_to("10.42.0.1", args)
    }

    /// Starts an iperf3 client in A to `server` (JSON output); returns the
    /// child.
    pub fn iperf_client_to(&self, server: &str, args: &[&str]) -> Child {
        let mut all = vec!["netns", "exec", &self.a, "iperf3", "-c", server, "-J"];
        all.extend_from_slice(args);
        Command::new("ip")
            .args(all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs `f` on a thread inside namespace `ns` (sockets it makes live there).
    pub fn in_ns<T: Send + 'static>(&self, ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{ns}");
        std::thread::spawn(move || {
            let fd = File::open(&path).unwrap();
            nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    }

    /// A UDP socket bound in namespace A to `local` (for sending forgeries).
    pub fn socket_in_a(&self, local: &str) -> UdpSocket {
        let local: SocketAddr = local.parse().unwrap();
        self.in_ns(&self.a, move || UdpSocket::bind(local).unwrap())
    }

    fn report(&self) {
        for d in &self.daemons {
            let log = std::fs::read_to_string(&d.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!("---- {} log (last 40 lines) ----", d.name);
            for l in &lines[lines.len().saturating_sub(40)..] {
                eprintln!("{l}");
            }
            eprintln!("---- {} status ----\n{:?}", d.name, self.status(d.name));
        }
    }
}

/// SIGTERM, then SIGKILL if it has not exited within 5 s.
fn terminate(child: &mut Child) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Topo {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.report();
        }
        for h in &mut self.helpers {
            let _ = h.kill();
            let _ = h.wait();
        }
        for d in &mut self.daemons {
            terminate(&mut d.child);
        }
        // `ip netns exec` children die with their namespace's processes;
        // also kill anything left inside (iperf3 started by `ip netns exec`).
        for ns in &self.namespaces {
            let pids = run("ip", &["netns", "pids", ns]);
            for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                let _ = run("kill", &["-9", pid]);
            }
            let _ = run("ip", &["netns", "del", ns]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        for name in ["server", "client"] {
            let _ = std::fs::remove_file(self.run_dir_socket(name));
        }
    }
}

/// Returns false (after saying so loudly) when `tool` (Debian package
/// `package`) is missing; in CI a missing tool fails the test instead.
pub fn needs_tool(test: &str, tool: &str, package: &str) -> bool {
    if which(tool).is_some() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{tool} is missing; .ci/run must install {package}");
    }
    eprintln!("\n*** SKIPPED: {test} needs {tool} (apt-get install {package}) ***\n");
    false
}
