//! Coalescing (GRO) for TUN writes: decrypted packets of one TCP or UDP
//! flow that arrive back to back are joined into one super-packet, so the
//! kernel's stack handles a few large packets instead of many small ones.
//!
//! The rules follow Linux's `tcp_gro_receive` / `udp_gro_receive_segment`,
//! so a super-packet split again by the kernel gives back exactly the
//! packets that went in. Packets that do not qualify pass through
//! untouched, in arrival order; a flow's packets are never reordered.

use std::io;

use thiserror::Error;

use super::checksum;
use super::headers::{
    addresses, be16, be32, l4_checksum_ok, pseudo_header_sum, put_be16, set_ipv4_checksum, IPV4_DF_ONLY,
    IPV4_HEADER_LEN, IPV6_HEADER_LEN, MAX_IP_LEN, PROTO_TCP, PROTO_UDP, TCP_CSUM_OFFSET, TCP_CWR, TCP_FIN,
    TCP_FLAGS, TCP_HEADER_LEN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG, UDP_CSUM_OFFSET, UDP_HEADER_LEN,
};
use super::virtio_hdr::{VirtioNetHdr, F_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, VNET_HDR_LEN};

/// Slots a [`Coalescer::new`] gets: 64 buffers of 64 KiB, 4 MiB.
pub const DEFAULT_SLOTS: usize = 64;

/// Most datagrams in one UDP super-packet (Linux's `UDP_GRO_CNT_MAX`).
pub const MAX_UDP_SEGMENTS: usize = 64;

/// One slot: the virtio header, then the longest IP packet.
const SLOT_LEN: usize = VNET_HDR_LEN + MAX_IP_LEN;

/// Which transports to coalesce. UDP needs the device to accept
/// `TUN_F_USO4/6`, which kernels before 6.2 refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoalesceConfig {
    pub tcp: bool,
    pub udp: bool,
}

/// Why [`Coalescer::push`] did not take a packet.
#[derive(Debug, Error, PartialEq, Eq, Clone, Copy)]
pub enum PushError {
    /// Every slot holds a packet: [`Coalescer::flush`], then push again.
    #[error("every coalescing slot is taken")]
    Full,
    /// Longer than any IP packet can be; dropped.
    #[error("packet of {0} bytes does not fit a coalescing slot")]
    TooLong(usize),
}

/// Buffers packets between flushes and joins those that may be joined.
///
/// Memory is allocated once, in [`Coalescer::new`]: a fixed number of
/// 64 KiB slots, each holding one packet or super-packet behind room for
/// its virtio header. Use: [`push`](Coalescer::push) every packet of a
/// batch (flushing when it answers [`PushError::Full`]), then
/// [`flush`](Coalescer::flush) to the TUN.
pub struct Coalescer {
    config: CoalesceConfig,
    slots: Vec<Slot>,
    /// Slots in use: `slots[..used]`, in arrival order.
    used: usize,
}

/// The 5-tuple plus IP version: packets of one flow share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FlowKey {
    version: u8,
    protocol: u8,
    /// Source then destination, each in 16 bytes (IPv4 zero-padded).
    addrs: [u8; 32],
    /// Source and destination port as on the wire.
    ports: [u8; 4],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum L4 {
    Tcp,
    Udp,
}

/// A packet that may start or join a super-packet.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    l4: L4,
    l4_start: usize,
    l4_header_len: usize,
    payload_len: usize,
    /// TCP sequence number (0 for UDP).
    seq: u32,
    /// TCP flags (0 for UDP).
    flags: u8,
    /// PSH or FIN: may join a run but closes it.
    ends_run: bool,
}

/// The super-packet a slot is building.
#[derive(Debug, Clone, Copy)]
struct Run {
    l4: L4,
    l4_start: usize,
    l4_header_len: usize,
    /// Payload of the first segment: every other must be as long, except a
    /// shorter last one.
    gso_size: usize,
    segments: usize,
    /// TCP sequence number the next segment must have.
    next_seq: u32,
    /// Whether another segment may still join.
    open: bool,
}

struct Slot {
    /// Virtio header room, then the packet.
    buf: Box<[u8]>,
    /// Length of the packet (after the header room).
    len: usize,
    /// The flow of the packet, if it is TCP or UDP; a later packet of the
    /// flow may join only the flow's most recent slot.
    flow: Option<FlowKey>,
    /// Set when the first packet could start a super-packet.
    run: Option<Run>,
}

impl Coalescer {
    /// A coalescer with [`DEFAULT_SLOTS`] slots.
    pub fn new(config: CoalesceConfig) -> Self {
        Self::with_slots(config, DEFAULT_SLOTS)
    }

    /// A coalescer with `slots` slots (at least 1) of 64 KiB each.
    pub fn with_slots(config: CoalesceConfig, slots: usize) -> Self {
        let slots = (0..slots.max(1))
            .map(|_| Slot {
                buf: vec![0u8; SLOT_LEN].into_boxed_slice(),
                len: 0,
                flow: None,
                run: None,
            })
            .collect();
        Self {
            config,
            slots,
            used: 0,
        }
    }

    /// Buffers waiting for [`Coalescer::flush`].
    pub fn len(&self) -> usize {
        self.used
    }

    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Copies `packet`, an IP packet, in: joined to the super-packet its flow
    /// is building if the GRO rules allow, else into a slot of its own.
    /// [`PushError::Full`] means the packet was not taken because it needs a
    /// slot and none is free: flush, then push it again.
    pub fn push(&mut self, packet: &[u8]) -> Result<(), PushError> {
        if packet.len() > MAX_IP_LEN {
            return Err(PushError::TooLong(packet.len()));
        }
        let (flow, candidate) = match classify(packet, &self.config) {
            Some((key, candidate)) => (Some(key), candidate),
            None => (None, None),
        };
        // Verified at most once, and only when it would join or start a run.
        let mut checksum_ok: Option<bool> = None;
        let mut verify = |c: &Candidate| {
            *checksum_ok.get_or_insert_with(|| {
                let protocol = if c.l4 == L4::Tcp { PROTO_TCP } else { PROTO_UDP };
                l4_checksum_ok(packet, protocol, c.l4_start)
            })
        };
        if let (Some(key), Some(c)) = (flow, &candidate) {
            let latest = self.slots[..self.used]
                .iter_mut()
                .rev()
                .find(|s| s.flow == Some(key));
            if let Some(slot) = latest {
                if slot.can_join(packet, c) && verify(c) {
                    slot.join(packet, c);
                    return Ok(());
                }
            }
        }
        if self.used == self.slots.len() {
            return Err(PushError::Full);
        }
        let slot = &mut self.slots[self.used];
        self.used += 1;
        slot.buf[VNET_HDR_LEN..VNET_HDR_LEN + packet.len()].copy_from_slice(packet);
        slot.len = packet.len();
        slot.flow = flow;
        slot.run = candidate.filter(|c| !c.ends_run && verify(c)).map(|c| Run {
            l4: c.l4,
            l4_start: c.l4_start,
            l4_header_len: c.l4_header_len,
            gso_size: c.payload_len,
            segments: 1,
            next_seq: c.seq.wrapping_add(c.payload_len as u32),
            open: true,
        });
        Ok(())
    }

    /// Hands every pending buffer, in arrival order, to `write`: a virtio
    /// header followed by a super-packet or a packet passed through
    /// (`GSO_NONE`). Every buffer is offered exactly once even if a write
    /// fails (one refused packet must not take the others with it); the
    /// first error is returned. The coalescer is empty afterwards.
    pub fn flush(&mut self, mut write: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        let mut result = Ok(());
        for slot in &mut self.slots[..self.used] {
            let end = slot.finish();
            if let Err(e) = write(&slot.buf[..end]) {
                if result.is_ok() {
                    result = Err(e);
                }
            }
            slot.len = 0;
            slot.flow = None;
            slot.run = None;
        }
        self.used = 0;
        result
    }
}

/// The flow of a TCP or UDP packet whose addresses and ports can be read,
/// and whether it may take part in a super-packet.
fn classify(p: &[u8], config: &CoalesceConfig) -> Option<(FlowKey, Option<Candidate>)> {
    let version = p.first()? >> 4;
    let (l4_start, protocol, ip_ok) = match version {
        4 if p.len() >= IPV4_HEADER_LEN => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            let frag = be16(p, 6);
            // A fragment's ports cannot be read (nor would Linux merge it).
            if ihl < IPV4_HEADER_LEN || frag & 0x3fff != 0 {
                return None;
            }
            let ok = ihl == IPV4_HEADER_LEN
                && frag == IPV4_DF_ONLY
                && usize::from(be16(p, 2)) == p.len()
                && checksum::sum(&p[..IPV4_HEADER_LEN], 0) == 0xffff;
            (ihl, p[9], ok)
        }
        // Extension headers are not parsed: such packets belong to no flow.
        6 if p.len() >= IPV6_HEADER_LEN => (
            IPV6_HEADER_LEN,
            p[6],
            usize::from(be16(p, 4)) + IPV6_HEADER_LEN == p.len(),
        ),
        _ => return None,
    };
    let l4 = match protocol {
        PROTO_TCP => L4::Tcp,
        PROTO_UDP => L4::Udp,
        _ => return None,
    };
    let l4_header_len = match l4 {
        L4::Tcp => {
            let thl = usize::from(*p.get(l4_start + 12)? >> 4) * 4;
            if thl < TCP_HEADER_LEN || l4_start + thl > p.len() {
                return None;
            }
            thl
        }
        L4::Udp if l4_start + UDP_HEADER_LEN <= p.len() => UDP_HEADER_LEN,
        L4::Udp => return None,
    };
    let mut key = FlowKey {
        version,
        protocol,
        addrs: [0; 32],
        ports: [0; 4],
    };
    let (src, dst) = addresses(p);
    key.addrs[..src.len()].copy_from_slice(src);
    key.addrs[16..16 + dst.len()].copy_from_slice(dst);
    key.ports.copy_from_slice(&p[l4_start..l4_start + 4]);

    let payload_len = p.len() - l4_start - l4_header_len;
    if !ip_ok || payload_len == 0 {
        return Some((key, None));
    }
    let candidate = match l4 {
        L4::Tcp => {
            let flags = p[l4_start + TCP_FLAGS];
            (config.tcp && flags & (TCP_SYN | TCP_RST | TCP_URG | TCP_CWR) == 0).then_some(Candidate {
                l4,
                l4_start,
                l4_header_len,
                payload_len,
                seq: be32(p, l4_start + 4),
                flags,
                ends_run: flags & (TCP_PSH | TCP_FIN) != 0,
            })
        }
        L4::Udp => {
            // A datagram without checksum would get one after a round
            // trip through the kernel's segmentation: leave it alone.
            let udp_len_ok = usize::from(be16(p, l4_start + 4)) == p.len() - l4_start;
            let has_checksum = be16(p, l4_start + UDP_CSUM_OFFSET) != 0;
            (config.udp && udp_len_ok && has_checksum).then_some(Candidate {
                l4,
                l4_start,
                l4_header_len,
                payload_len,
                seq: 0,
                flags: 0,
                ends_run: false,
            })
        }
    };
    Some((key, candidate))
}

impl Slot {
    fn packet(&self) -> &[u8] {
        &self.buf[VNET_HDR_LEN..VNET_HDR_LEN + self.len]
    }

    /// Whether `p` (of this slot's flow) may be appended to the run: the
    /// header fields Linux GRO requires equal are equal, and it continues
    /// the run exactly.
    fn can_join(&self, p: &[u8], c: &Candidate) -> bool {
        let Some(run) = &self.run else {
            return false;
        };
        if !run.open
            || run.l4 != c.l4
            || run.l4_start != c.l4_start
            || run.l4_header_len != c.l4_header_len
            || c.payload_len > run.gso_size
            || self.len + c.payload_len > MAX_IP_LEN
            || (run.l4 == L4::Udp && run.segments >= MAX_UDP_SEGMENTS)
        {
            return false;
        }
        let first = self.packet();
        let ip_same = if p[0] >> 4 == 4 {
            // TOS and TTL; DF, no options and no fragment were checked.
            first[1] == p[1] && first[8] == p[8]
        } else {
            // Traffic class and flow label; hop limit.
            first[..4] == p[..4] && first[7] == p[7]
        };
        if !ip_same {
            return false;
        }
        if run.l4 == L4::Udp {
            return true;
        }
        let t = c.l4_start;
        let (th, th_first) = (&p[t..t + c.l4_header_len], &first[t..t + c.l4_header_len]);
        c.seq == run.next_seq
            // ACK number.
            && th[8..12] == th_first[8..12]
            // Data offset, then flags except those that may end a run.
            && th[12] == th_first[12]
            && (th[TCP_FLAGS] ^ th_first[TCP_FLAGS]) & !(TCP_PSH | TCP_FIN) == 0
            // Window; the urgent pointer too (URG is never set, but the
            // segments must come back from a split as they went in).
            && th[14..16] == th_first[14..16]
            && th[18..20] == th_first[18..20]
            // Options, byte for byte (timestamps included).
            && th[TCP_HEADER_LEN..] == th_first[TCP_HEADER_LEN..]
    }

    /// Appends the payload of `p`, checked by [`Slot::can_join`].
    fn join(&mut self, p: &[u8], c: &Candidate) {
        let payload = &p[c.l4_start + c.l4_header_len..];
        let at = VNET_HDR_LEN + self.len;
        self.buf[at..at + payload.len()].copy_from_slice(payload);
        self.len += payload.len();
        let flags_at = VNET_HDR_LEN + c.l4_start + TCP_FLAGS;
        let Some(run) = &mut self.run else {
            return;
        };
        run.segments += 1;
        run.next_seq = run.next_seq.wrapping_add(c.payload_len as u32);
        if c.payload_len < run.gso_size || c.ends_run {
            run.open = false;
        }
        if run.l4 == L4::Tcp {
            // The super-packet's last segment carries PSH/FIN.
            self.buf[flags_at] |= c.flags & (TCP_PSH | TCP_FIN);
        }
    }

    /// Writes the virtio header and, for a super-packet, fixes its IP and
    /// transport headers. Returns the length of the buffer to write.
    fn finish(&mut self) -> usize {
        let end = VNET_HDR_LEN + self.len;
        let hdr = match self.run {
            Some(run) if run.segments > 1 => {
                let p = &mut self.buf[VNET_HDR_LEN..end];
                let len = p.len();
                let v4 = p[0] >> 4 == 4;
                if v4 {
                    put_be16(p, 2, len as u16);
                    set_ipv4_checksum(p, IPV4_HEADER_LEN);
                } else {
                    put_be16(p, 4, (len - IPV6_HEADER_LEN) as u16);
                }
                let (protocol, csum_offset, gso_type) = match run.l4 {
                    L4::Tcp => (PROTO_TCP, TCP_CSUM_OFFSET, if v4 { GSO_TCPV4 } else { GSO_TCPV6 }),
                    L4::Udp => {
                        put_be16(p, run.l4_start + 4, (len - run.l4_start) as u16);
                        (PROTO_UDP, UDP_CSUM_OFFSET, GSO_UDP_L4)
                    }
                };
                // CHECKSUM_PARTIAL: the field holds the pseudo-header sum,
                // not complemented; the kernel adds the rest.
                let pseudo = pseudo_header_sum(p, protocol, run.l4_start);
                put_be16(p, run.l4_start + csum_offset, pseudo);
                VirtioNetHdr {
                    flags: F_NEEDS_CSUM,
                    gso_type,
                    hdr_len: (run.l4_start + run.l4_header_len) as u16,
                    gso_size: run.gso_size as u16,
                    csum_start: run.l4_start as u16,
                    csum_offset: csum_offset as u16,
                }
            }
            _ => VirtioNetHdr::default(),
        };
        self.buf[..VNET_HDR_LEN].copy_from_slice(&hdr.encode());
        end
    }
}
