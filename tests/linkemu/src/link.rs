//! One direction of an emulated link: admission (cut, loss, rate and queue)
//! and a sender thread that releases each packet at its departure time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::spec::Spec;

/// Counters, readable while the link runs.
#[derive(Debug, Default)]
pub struct Stats {
    pub packets_in: AtomicU64,
    pub packets_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub dropped_loss: AtomicU64,
    pub dropped_queue: AtomicU64,
    pub dropped_cut: AtomicU64,
}

impl Stats {
    pub fn json(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "{{\"packets_in\":{},\"packets_out\":{},\"bytes_out\":{},\"dropped_loss\":{},\"dropped_queue\":{},\"dropped_cut\":{}}}",
            g(&self.packets_in),
            g(&self.packets_out),
            g(&self.bytes_out),
            g(&self.dropped_loss),
            g(&self.dropped_queue),
            g(&self.dropped_cut)
        )
    }
}

struct Item {
    depart: Instant,
    seq: u64,
    data: Vec<u8>,
    out: Arc<UdpSocket>,
    dest: SocketAddr,
}

impl PartialEq for Item {
    fn eq(&self, o: &Self) -> bool {
        (self.depart, self.seq) == (o.depart, o.seq)
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Item {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.depart, self.seq).cmp(&(o.depart, o.seq))
    }
}

struct State {
    spec: Spec,
    rng: u64,
    seq: u64,
    /// When the (virtual) transmitter is free again (rate limit).
    next_free: Instant,
    /// Latest departure so far (FIFO mode never departs earlier).
    last_depart: Instant,
    queue: BinaryHeap<Reverse<Item>>,
}

pub struct Link {
    state: Mutex<State>,
    wake: Condvar,
    pub stats: Stats,
}

impl Link {
    /// A link with its sender thread.
    pub fn start(spec: Spec, seed: u64) -> Arc<Link> {
        let now = Instant::now();
        let link = Arc::new(Link {
            state: Mutex::new(State {
                spec,
                rng: seed | 1,
                seq: 0,
                next_free: now,
                last_depart: now,
                queue: BinaryHeap::new(),
            }),
            wake: Condvar::new(),
            stats: Stats::default(),
        });
        let l = link.clone();
        std::thread::spawn(move || l.sender());
        link
    }

    pub fn update(&self, f: impl FnOnce(&mut Spec)) {
        f(&mut self.state.lock().unwrap().spec);
    }

    pub fn spec(&self) -> Spec {
        self.state.lock().unwrap().spec
    }

    /// Offers a packet to the link, to be sent from `out` to `dest`.
    pub fn ingress(&self, data: &[u8], out: &Arc<UdpSocket>, dest: SocketAddr) {
        self.stats.packets_in.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut st = self.state.lock().unwrap();
        let spec = st.spec;
        if spec.cut {
            self.stats.dropped_cut.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if spec.loss > 0.0 && uniform(&mut st.rng) < spec.loss {
            self.stats.dropped_loss.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut depart = now;
        if let Some(rate) = spec.rate {
            let start = st.next_free.max(now);
            let queued = start.duration_since(now).as_secs_f64() * rate as f64 / 8.0;
            if queued + data.len() as f64 > spec.queue_limit() as f64 {
                self.stats.dropped_queue.fetch_add(1, Ordering::Relaxed);
                return;
            }
            st.next_free = start + Duration::from_secs_f64(data.len() as f64 * 8.0 / rate as f64);
            depart = st.next_free;
        }
        depart += spec.delay;
        if !spec.jitter.is_zero() {
            let j = spec.jitter.as_secs_f64() * (2.0 * uniform(&mut st.rng) - 1.0);
            depart = if j >= 0.0 {
                depart + Duration::from_secs_f64(j)
            } else {
                depart
                    .checked_sub(Duration::from_secs_f64(-j))
                    .unwrap_or(now)
                    .max(now)
            };
        }
        if !spec.reorder {
            depart = depart.max(st.last_depart);
            st.last_depart = depart;
        }
        st.seq += 1;
        let seq = st.seq;
        st.queue.push(Reverse(Item {
            depart,
            seq,
            data: data.to_vec(),
            out: out.clone(),
            dest,
        }));
        drop(st);
        self.wake.notify_one();
    }

    fn sender(&self) {
        let mut st = self.state.lock().unwrap();
        loop {
            let Some(Reverse(first)) = st.queue.peek() else {
                st = self.wake.wait(st).unwrap();
                continue;
            };
            let now = Instant::now();
            if first.depart > now + Duration::from_micros(300) {
                // Sleep most of the way; a new earlier packet wakes us.
                let wait = first.depart - now - Duration::from_micros(200);
                st = self.wake.wait_timeout(st, wait).unwrap().0;
                continue;
            }
            let Reverse(item) = st.queue.pop().expect("peeked");
            drop(st);
            while Instant::now() < item.depart {
                std::hint::spin_loop();
            }
            if item.out.send_to(&item.data, item.dest).is_ok() {
                self.stats.packets_out.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .bytes_out
                    .fetch_add(item.data.len() as u64, Ordering::Relaxed);
            }
            st = self.state.lock().unwrap();
        }
    }
}

/// Uniform in [0, 1) from a xorshift64* state.
fn uniform(s: &mut u64) -> f64 {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    (s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
}
