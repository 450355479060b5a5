//! The relay: a front socket clients talk to, one upstream socket per
//! client (NAT mapping), and the two emulated directions between them.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::link::Link;
use crate::spec::Spec;

/// Most NAT mappings kept (oldest-created evicted beyond).
const MAX_MAPPINGS: usize = 1024;

struct Mapping {
    sock: Arc<UdpSocket>,
    alive: Arc<AtomicBool>,
    created: u64,
}

pub struct Relay {
    front: Arc<UdpSocket>,
    upstream: SocketAddr,
    pub up: Arc<Link>,
    pub down: Arc<Link>,
    nat: Mutex<(u64, HashMap<SocketAddr, Mapping>)>,
}

impl Relay {
    /// Binds `listen` and starts relaying towards `upstream`.
    pub fn start(
        listen: SocketAddr,
        upstream: SocketAddr,
        up: Spec,
        down: Spec,
        seed: u64,
    ) -> io::Result<Arc<Relay>> {
        let front = Arc::new(UdpSocket::bind(listen)?);
        let relay = Arc::new(Relay {
            front,
            upstream,
            up: Link::start(up, seed),
            down: Link::start(down, seed.wrapping_mul(31).wrapping_add(7)),
            nat: Mutex::new((0, HashMap::new())),
        });
        let r = relay.clone();
        std::thread::spawn(move || r.front_loop());
        Ok(relay)
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.front.local_addr().expect("bound")
    }

    fn front_loop(self: Arc<Self>) {
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, client)) = self.front.recv_from(&mut buf) else {
                continue;
            };
            let Ok(sock) = self.mapping(client) else { continue };
            self.up.ingress(&buf[..n], &sock, self.upstream);
        }
    }

    /// The upstream socket of `client`, created (with its reader) on first use.
    fn mapping(self: &Arc<Self>, client: SocketAddr) -> io::Result<Arc<UdpSocket>> {
        let mut nat = self.nat.lock().unwrap();
        if let Some(m) = nat.1.get(&client) {
            return Ok(m.sock.clone());
        }
        if nat.1.len() >= MAX_MAPPINGS {
            let oldest = nat.1.iter().min_by_key(|(_, m)| m.created).map(|(k, _)| *k);
            if let Some(k) = oldest.and_then(|k| nat.1.remove(&k)) {
                k.alive.store(false, Ordering::Relaxed);
            }
        }
        let any: SocketAddr = if self.upstream.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()
        .expect("valid");
        let sock = Arc::new(UdpSocket::bind(any)?);
        sock.set_read_timeout(Some(Duration::from_millis(100)))?;
        let alive = Arc::new(AtomicBool::new(true));
        nat.0 += 1;
        let created = nat.0;
        nat.1.insert(
            client,
            Mapping {
                sock: sock.clone(),
                alive: alive.clone(),
                created,
            },
        );
        let (r, s) = (self.clone(), sock.clone());
        std::thread::spawn(move || r.upstream_loop(s, alive, client));
        Ok(sock)
    }

    fn upstream_loop(&self, sock: Arc<UdpSocket>, alive: Arc<AtomicBool>, client: SocketAddr) {
        let mut buf = vec![0u8; 65536];
        while alive.load(Ordering::Relaxed) {
            match sock.recv_from(&mut buf) {
                Ok((n, from)) if from == self.upstream => self.down.ingress(&buf[..n], &self.front, client),
                _ => {}
            }
        }
    }

    /// Forgets every mapping: the next packet of each client gets a new
    /// upstream port (a NAT that lost its state).
    pub fn nat_reset(&self) {
        let mut nat = self.nat.lock().unwrap();
        for (_, m) in nat.1.drain() {
            m.alive.store(false, Ordering::Relaxed);
        }
    }

    /// Runs one control command; returns the reply line.
    pub fn command(&self, line: &str) -> String {
        let mut words = line.split_whitespace();
        let cmd = words.next().unwrap_or("");
        let dir = words.next().unwrap_or("both");
        let links: Vec<&Arc<Link>> = match dir {
            "up" => vec![&self.up],
            "down" => vec![&self.down],
            "both" => vec![&self.up, &self.down],
            d => return format!("error: direction {d:?}: up, down or both"),
        };
        match cmd {
            "cut" | "restore" => {
                for l in links {
                    l.update(|s| s.cut = cmd == "cut");
                }
                "ok".into()
            }
            "set" => {
                let rest: Vec<&str> = words.collect();
                for l in links {
                    let mut spec = l.spec();
                    if let Err(e) = spec.apply(&rest.join(" ")) {
                        return format!("error: {e}");
                    }
                    l.update(|s| *s = spec);
                }
                "ok".into()
            }
            "stats" => format!(
                "{{\"up\":{},\"down\":{}}}",
                self.up.stats.json(),
                self.down.stats.json()
            ),
            "nat-reset" => {
                self.nat_reset();
                "ok".into()
            }
            c => format!("error: unknown command {c:?}: cut, restore, set, stats, nat-reset"),
        }
    }

    /// Answers control commands on `sock` forever.
    pub fn serve_control(&self, sock: &UdpSocket) {
        let mut buf = [0u8; 1024];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let reply = self.command(String::from_utf8_lossy(&buf[..n]).trim());
            let _ = sock.send_to(reply.as_bytes(), from);
        }
    }
}
