//! The sending direction: what the TUN device gives is split into packets
//! (a TSO/USO super-packet into its segments), each sealed by the core for
//! the path it picks and gathered into that path's UDP train.

use std::time::Instant;

use tracing::debug;

use super::offload::{segments, VirtioNetHdr, VNET_HDR_LEN};
use super::udp_trains::{SocketMap, TrainSender};
use crate::proto::tunnel::{HEADROOM, OVERHEAD};
use crate::proto::Tunnel;

/// Largest TUN read: a virtio header and a 64 KB super-packet.
pub const TUN_READ_LEN: usize = VNET_HDR_LEN + 65536;

/// The sending direction's buffers, allocated once.
pub struct TunToPaths {
    /// One read from the TUN device (with its virtio header when
    /// `vnet_hdr`).
    read: Vec<u8>,
    /// One packet being sealed: the IP packet at HEADROOM, room for the
    /// tag after it.
    out: Vec<u8>,
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
            // Room for the largest read, sealed (a plain read is copied whole).
            out: vec![0; TUN_READ_LEN + OVERHEAD],
            trains: TrainSender::new(gso),
            vnet_hdr,
            malformed: 0,
            super_packets: 0,
        }
    }

    /// Where the next TUN read goes: the read buffer (a virtio header and
    /// a super-packet to split), or, for a plain device, straight behind
    /// the seal buffer's headroom (no copy).
    pub fn read_buffer(&mut self) -> &mut [u8] {
        if self.vnet_hdr {
            &mut self.read
        } else {
            let cap = self.out.len() - OVERHEAD;
            &mut self.out[HEADROOM..cap]
        }
    }

    /// Sends the `n` bytes read into [`Self::read_buffer`]: each packet sealed and
    /// added to its path's train (sent by [`TrainSender::flush`] or when a
    /// train is full).
    pub fn send_read(&mut self, tunnel: &mut Tunnel, sockets: &SocketMap, n: usize) {
        let now = Instant::now();
        if !self.vnet_hdr {
            seal_and_queue(&mut self.out, &mut self.trains, tunnel, sockets, n, now);
            return;
        }
        let Some((hdr, packet)) = self.read[..n].split_first_chunk_mut::<VNET_HDR_LEN>() else {
            self.malformed += 1;
            return;
        };
        let split = VirtioNetHdr::decode(hdr).and_then(|h| segments(&h, packet));
        let mut segs = match split {
            Ok(s) => s,
            Err(e) => {
                self.malformed += 1;
                debug!("TUN read dropped: {e}");
                return;
            }
        };
        if segs.len() > 1 {
            self.super_packets += 1;
        }
        let cap = self.out.len() - OVERHEAD;
        while let Some(r) = segs.next_into(&mut self.out[HEADROOM..cap]) {
            match r {
                Ok(len) => seal_and_queue(&mut self.out, &mut self.trains, tunnel, sockets, len, now),
                Err(e) => {
                    self.malformed += 1;
                    debug!("TUN segment dropped: {e}");
                    return;
                }
            }
        }
    }

    /// Sends every gathered train (without the core: no lock needed).
    pub fn flush(&mut self, sockets: &SocketMap) {
        self.trains.flush(sockets);
    }

    /// Tells the core of datagrams that were too big for their path.
    pub fn report_too_big(&mut self, tunnel: &mut Tunnel) {
        for t in self.trains.too_big.drain(..) {
            tunnel.datagram_too_big(t);
        }
    }
}

/// Seals the packet at `out[HEADROOM..HEADROOM + len]` for the path the
/// core picks and adds the datagram to that path's train.
fn seal_and_queue(
    out: &mut [u8],
    trains: &mut TrainSender,
    tunnel: &mut Tunnel,
    sockets: &SocketMap,
    len: usize,
    now: Instant,
) {
    if let Some(t) = tunnel.handle_tun_packet(out, len, now) {
        trains.push(sockets, t, &out[..t.len]);
    }
}
