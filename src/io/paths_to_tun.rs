//! The receiving direction: datagrams received in batches (several per
//! system call, several per GRO buffer) are opened by the core, and what
//! it releases goes to the TUN device, joined into super-packets when the
//! device takes them (GRO on the TUN side).

use std::net::{SocketAddr, UdpSocket};
use std::ops::Range;
use std::sync::Mutex;
use std::time::Instant;

use tracing::debug;

use super::offload::virtio_hdr::GSO_NONE;
use super::offload::{CoalesceConfig, Coalescer, PushError, VirtioNetHdr, VNET_HDR_LEN};
use super::shared_core::{lock, Core};
use super::tun_device::TunDevice;
use super::udp_receive::{ReceiveBatch, SLOTS};
use crate::io::kernel_offloads::TunOffloads;
use crate::proto::session::OpenError;
use crate::proto::{OpenStep, SocketId, Tunnel};

/// Receive system calls per readiness event before other sources get a turn.
const ROUNDS: usize = 8;

/// The receiving direction's buffers, allocated once.
pub struct PathsToTun {
    rx: ReceiveBatch,
    out: TunWriter,
    /// What the core made of each datagram of a batch, and what opening
    /// it gave (reused: no allocation per batch once grown).
    steps: Vec<OpenStep>,
    opened: Vec<Result<Range<usize>, OpenError>>,
}

/// Writes to the TUN: joined into super-packets where the device takes
/// them, else one by one (behind a plain virtio header when it has them).
struct TunWriter {
    /// A packet the resequencing queue releases.
    released: Vec<u8>,
    /// Pending TUN writes, joined where they can be (with a virtio
    /// header); `None`: the device takes plain packets one by one.
    coalescer: Option<Coalescer>,
    /// Writes of a device with virtio headers that joins nothing: the
    /// header, then the packet.
    plain: Vec<u8>,
    vnet_hdr: bool,
    /// TUN writes that were joined super-packets.
    super_packets: u64,
}

impl PathsToTun {
    pub fn new(tun: TunOffloads) -> PathsToTun {
        let coalescer = (tun.vnet_hdr && tun.tso).then(|| {
            Coalescer::new(CoalesceConfig {
                tcp: true,
                udp: tun.uso,
            })
        });
        PathsToTun {
            rx: ReceiveBatch::default(),
            out: TunWriter {
                released: vec![0; 65536],
                coalescer,
                plain: vec![0; VNET_HDR_LEN + 65536],
                vnet_hdr: tun.vnet_hdr,
                super_packets: 0,
            },
            steps: Vec::new(),
            opened: Vec::new(),
        }
    }

    /// TUN writes that were joined super-packets.
    pub fn super_packets(&self) -> u64 {
        self.out.super_packets
    }

    /// Reads up to a batch of datagrams from `socket` (`id`) into the core
    /// and writes what they and the resequencing queue release to `tun`.
    /// The system calls and the decryption run without the core's lock:
    /// it is held to check each datagram's session and replay window, and
    /// again to accept what opened.
    pub fn drain(&mut self, core: &Mutex<Core>, socket: &UdpSocket, id: SocketId, tun: &TunDevice) {
        for _ in 0..ROUNDS {
            let n = match self.rx.receive(socket) {
                Ok(n) => n,
                Err(e) => {
                    debug!(socket = %id, "receive error: {e}");
                    break;
                }
            };
            if n > 0 {
                self.handle_batch(core, id, n, tun);
            }
            if n < SLOTS {
                break;
            }
        }
        self.out.flush(tun);
    }

    /// The `n` messages just received on `id`: prepared, opened, accepted.
    /// Each pass walks the datagrams in the same order (slot by slot, GRO
    /// segment by segment).
    fn handle_batch(&mut self, core: &Mutex<Core>, id: SocketId, n: usize, tun: &TunDevice) {
        let now = Instant::now();
        self.steps.clear();
        self.opened.clear();
        {
            let mut core = lock(core);
            for i in 0..n {
                if let Some((r, bytes)) = self.rx.slot(i) {
                    for d in bytes.chunks_mut(r.segment) {
                        self.steps.push(core.tunnel.prepare_open(d, now));
                    }
                }
            }
        }
        let mut k = 0;
        for i in 0..n {
            if let Some((r, bytes)) = self.rx.slot(i) {
                for d in bytes.chunks_mut(r.segment) {
                    self.opened.push(match &self.steps[k] {
                        OpenStep::Open(job) => job.open(d),
                        // Not looked at: only an `Open` step's result is.
                        _ => Err(OpenError::Auth),
                    });
                    k += 1;
                }
            }
        }
        let mut core = lock(core);
        let tunnel = &mut core.tunnel;
        let mut k = 0;
        for i in 0..n {
            let Some((r, bytes)) = self.rx.slot(i) else {
                continue;
            };
            let from = canonical(r.from);
            for d in bytes.chunks_mut(r.segment) {
                let delivered = match &self.steps[k] {
                    OpenStep::Open(job) => {
                        tunnel.accept_opened(id, from, job, d, self.opened[k].clone(), now)
                    }
                    OpenStep::NotData => tunnel.handle_datagram(id, from, d, now),
                    OpenStep::Dropped => None,
                };
                k += 1;
                if let Some(range) = delivered {
                    self.out.write(tun, &d[range]);
                }
                self.out.write_released(tunnel, tun);
            }
        }
        // The jobs hold their sessions' keys: not past the batch.
        self.steps.clear();
    }

    /// Writes the packets the resequencing queue released (a timer may
    /// release them too) and everything pending.
    pub fn deliver_released(&mut self, tunnel: &mut Tunnel, tun: &TunDevice) {
        self.out.write_released(tunnel, tun);
        self.out.flush(tun);
    }
}

impl TunWriter {
    /// What the resequencing queue released, in order.
    fn write_released(&mut self, tunnel: &mut Tunnel, tun: &TunDevice) {
        let TunWriter {
            released,
            coalescer,
            plain,
            vnet_hdr,
            super_packets,
        } = self;
        let mut out = OutParts {
            coalescer,
            plain,
            vnet_hdr: *vnet_hdr,
            super_packets,
        };
        while let Some(n) = tunnel.poll_deliver(released) {
            write_or_join(&mut out, tun, &released[..n]);
        }
    }

    /// Hands `packet` to the coalescer (flushing it when full), or writes
    /// it now.
    fn write(&mut self, tun: &TunDevice, packet: &[u8]) {
        write_or_join(&mut self.out_parts(), tun, packet);
    }

    fn out_parts(&mut self) -> OutParts<'_> {
        OutParts {
            coalescer: &mut self.coalescer,
            plain: &mut self.plain,
            vnet_hdr: self.vnet_hdr,
            super_packets: &mut self.super_packets,
        }
    }

    /// Writes what the coalescer holds.
    fn flush(&mut self, tun: &TunDevice) {
        if let Some(c) = &mut self.coalescer {
            flush(c, tun, &mut self.super_packets);
        }
    }
}

/// The writer's parts other than the released-packet buffer (so a released
/// packet can be written from it).
struct OutParts<'a> {
    coalescer: &'a mut Option<Coalescer>,
    plain: &'a mut [u8],
    vnet_hdr: bool,
    super_packets: &'a mut u64,
}

/// Writes what `c` holds, counting the super-packets (a virtio header
/// with a GSO type).
fn flush(c: &mut Coalescer, tun: &TunDevice, super_packets: &mut u64) {
    let _ = c.flush(|b| {
        if b.get(1).is_some_and(|gso_type| *gso_type != GSO_NONE) {
            *super_packets += 1;
        }
        tun.write_now(b)
    });
}

/// Hands `packet` to the coalescer (flushing it when full), or writes it
/// now: behind a plain virtio header on a device that has them.
fn write_or_join(o: &mut OutParts<'_>, tun: &TunDevice, packet: &[u8]) {
    if let Some(c) = o.coalescer {
        match c.push(packet) {
            Ok(()) => return,
            Err(PushError::Full) => {
                flush(c, tun, o.super_packets);
                if c.push(packet).is_ok() {
                    return;
                }
            }
            Err(PushError::TooLong(_)) => return,
        }
    }
    if o.vnet_hdr {
        let end = VNET_HDR_LEN + packet.len();
        if end > o.plain.len() {
            return;
        }
        o.plain[..VNET_HDR_LEN].copy_from_slice(&VirtioNetHdr::default().encode());
        o.plain[VNET_HDR_LEN..end].copy_from_slice(packet);
        let _ = tun.write_now(&o.plain[..end]);
    } else {
        let _ = tun.write_now(packet);
    }
}

/// IPv4-mapped IPv6 addresses (from dual-stack sockets) as plain IPv4.
pub fn canonical(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => a,
        },
        a => a,
    }
}
