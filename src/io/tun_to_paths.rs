//! The sending direction: what the TUN device gives is split into packets
//! (a TSO/USO super-packet into its segments), the core prepares each for
//! the path it picks under the lock, and each is sealed outside it and
//! gathered into that path's UDP train.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tracing::debug;

use super::offload::{segments, VirtioNetHdr, VNET_HDR_LEN};
use super::shared_core::{lock, Core};
use super::udp_trains::{SocketMap, TrainSender};
use crate::proto::tunnel::{HEADROOM, OVERHEAD};
use crate::proto::SealJob;

/// Largest TUN read: a virtio header and a 64 KB super-packet.
pub const TUN_READ_LEN: usize = VNET_HDR_LEN + 65536;
/// Packets prepared under one hold of the lock (a 64 KB super-packet of
/// 1400-byte segments is 47; one cut finer takes two holds).
const BATCH: usize = 64;
/// One packet's buffer: headroom, the largest packet, the tag.
const SLOT_LEN: usize = 65536 + OVERHEAD;

/// The sending direction's buffers, allocated once (the slots' pages only
/// become resident as far as packets fill them).
pub struct TunToPaths {
    /// One read from the TUN device, with its virtio header.
    read: Vec<u8>,
    /// The packets of one batch, each at HEADROOM of its slot.
    slots: Vec<Vec<u8>>,
    /// Their lengths, then the core's jobs for them.
    lens: Vec<usize>,
    jobs: Vec<Option<SealJob>>,
    pub trains: TrainSender,
    vnet_hdr: bool,
    /// TUN reads whose virtio header or super-packet made no sense.
    pub malformed: u64,
    /// TUN reads that were super-packets.
    pub super_packets: u64,
}

impl TunToPaths {
    pub fn new(vnet_hdr: bool, gso: bool) -> TunToPaths {
        TunToPaths {
            read: vec![0; TUN_READ_LEN],
            slots: (0..BATCH).map(|_| vec![0; SLOT_LEN]).collect(),
            lens: Vec::with_capacity(BATCH),
            jobs: Vec::with_capacity(BATCH),
            trains: TrainSender::new(gso),
            vnet_hdr,
            malformed: 0,
            super_packets: 0,
        }
    }

    /// Where the next TUN read goes: the read buffer (a virtio header and
    /// a super-packet to split), or, for a plain device, straight behind
    /// the first slot's headroom (no copy).
    pub fn read_buffer(&mut self) -> &mut [u8] {
        if self.vnet_hdr {
            &mut self.read
        } else {
            &mut self.slots[0][HEADROOM..SLOT_LEN - OVERHEAD]
        }
    }

    /// Sends the `n` bytes read into [`Self::read_buffer`]: each packet
    /// prepared by the core (locked once per batch), sealed, and added to
    /// its path's train (sent by [`Self::flush`] or when a train is full).
    /// Returns the socket map used, for the flush.
    pub fn send_read(&mut self, core: &Mutex<Core>, n: usize) -> Option<Arc<SocketMap>> {
        if !self.vnet_hdr {
            self.lens.clear();
            self.lens.push(n);
            return Some(send_batch(
                &mut self.slots,
                &self.lens,
                &mut self.jobs,
                &mut self.trains,
                core,
            ));
        }
        let Some((hdr, packet)) = self.read[..n].split_first_chunk_mut::<VNET_HDR_LEN>() else {
            self.malformed += 1;
            return None;
        };
        let split = VirtioNetHdr::decode(hdr).and_then(|h| segments(&h, packet));
        let mut segs = match split {
            Ok(s) => s,
            Err(e) => {
                self.malformed += 1;
                debug!("TUN read dropped: {e}");
                return None;
            }
        };
        if segs.len() > 1 {
            self.super_packets += 1;
        }
        let mut sockets = None;
        loop {
            self.lens.clear();
            let mut bad = false;
            while self.lens.len() < BATCH {
                let slot = &mut self.slots[self.lens.len()];
                match segs.next_into(&mut slot[HEADROOM..SLOT_LEN - OVERHEAD]) {
                    Some(Ok(len)) => self.lens.push(len),
                    Some(Err(e)) => {
                        self.malformed += 1;
                        debug!("TUN segment dropped: {e}");
                        bad = true;
                        break;
                    }
                    None => break,
                }
            }
            let more = !bad && self.lens.len() == BATCH;
            if !self.lens.is_empty() {
                sockets = Some(send_batch(
                    &mut self.slots,
                    &self.lens,
                    &mut self.jobs,
                    &mut self.trains,
                    core,
                ));
            }
            if !more {
                return sockets;
            }
        }
    }

    /// Sends every gathered train (without the core: no lock needed).
    pub fn flush(&mut self, sockets: &SocketMap) {
        self.trains.flush(sockets);
    }

    /// Tells the core of datagrams that were too big for their path.
    pub fn report_too_big(&mut self, tunnel: &mut crate::proto::Tunnel) {
        for t in self.trains.too_big.drain(..) {
            tunnel.datagram_too_big(t);
        }
    }
}

/// The packets in the first `lens.len()` slots: prepared under the lock,
/// sealed without it, queued in their trains. Returns the socket map used.
fn send_batch(
    slots: &mut [Vec<u8>],
    lens: &[usize],
    jobs: &mut Vec<Option<SealJob>>,
    trains: &mut TrainSender,
    core: &Mutex<Core>,
) -> Arc<SocketMap> {
    let now = Instant::now();
    jobs.clear();
    let sockets = {
        let mut core = lock(core);
        for (slot, &len) in slots.iter_mut().zip(lens) {
            jobs.push(core.tunnel.prepare_tun_packet(slot, len, now));
        }
        core.sockets.clone()
    };
    for (slot, job) in slots.iter_mut().zip(jobs.iter()) {
        if let Some(job) = job {
            let t = job.seal(slot);
            trains.push(&sockets, t, &slot[..t.len]);
        }
    }
    sockets
}
