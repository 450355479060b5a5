//! Splitting what the TUN hands us (TSO/USO super-packets, packets with a
//! partial checksum) into complete IP packets, as the kernel's software GSO
//! would: the tunnel carries ordinary packets, never offload state.

use super::checksum;
use super::headers::{
    be16, be32, put_be16, put_be32, set_ipv4_checksum, set_l4_checksum, IPV4_HEADER_LEN, IPV6_HEADER_LEN,
    MAX_IP_LEN, PROTO_TCP, PROTO_UDP, TCP_CSUM_OFFSET, TCP_CWR, TCP_FIN, TCP_FLAGS, TCP_HEADER_LEN, TCP_PSH,
    UDP_CSUM_OFFSET, UDP_HEADER_LEN,
};
use super::virtio_hdr::{VirtioNetHdr, F_NEEDS_CSUM, GSO_ECN, GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4};
use super::OffloadError;

/// Most segments one super-packet may be split into. A 64 KiB TCP
/// super-packet at Linux's smallest MSS (48, `tcp_min_snd_mss`) gives 1366;
/// more means a header nobody sane wrote.
pub const MAX_SEGMENTS: usize = 2048;

/// Longest packet accepted after the virtio header: an IPv6 packet whose
/// payload length is 65535.
pub const MAX_PACKET_LEN: usize = MAX_IP_LEN + IPV6_HEADER_LEN;

/// What to do with the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// One segment: the packet as it is (its checksum already completed).
    Whole,
    Tcp,
    Udp,
}

/// The segments of one packet read from the TUN, produced one at a time
/// into the caller's buffers by [`Segments::next_into`].
#[derive(Debug)]
pub struct Segments<'a> {
    packet: &'a [u8],
    plan: Plan,
    /// IPv4 or IPv6 header length, extension headers included.
    l4_start: usize,
    /// IP + transport header: copied in front of every segment.
    header_len: usize,
    gso_size: usize,
    count: usize,
    next: usize,
}

/// Validates `hdr` against `packet` and prepares its segments.
///
/// A `GSO_NONE` packet with `NEEDS_CSUM` has its checksum completed in
/// place (hence `&mut`); super-packets are left untouched and each segment
/// is built in the caller's buffer. Never panics: anything inconsistent is
/// an [`OffloadError`].
pub fn segments<'a>(hdr: &VirtioNetHdr, packet: &'a mut [u8]) -> Result<Segments<'a>, OffloadError> {
    let plan = match hdr.gso_type {
        GSO_NONE => Plan::Whole,
        t if t & !GSO_ECN == GSO_TCPV4 || t & !GSO_ECN == GSO_TCPV6 => Plan::Tcp,
        GSO_UDP_L4 => Plan::Udp,
        t => return Err(OffloadError::UnknownGsoType(t)),
    };
    if plan == Plan::Whole {
        if hdr.flags & F_NEEDS_CSUM != 0 {
            complete_checksum(hdr, packet)?;
        }
        return Ok(Segments {
            packet,
            plan,
            l4_start: 0,
            header_len: 0,
            gso_size: 0,
            count: 1,
            next: 0,
        });
    }
    let packet: &'a [u8] = packet;
    let g = validate_gso(hdr, plan, packet)?;
    Ok(Segments {
        packet,
        plan,
        l4_start: g.l4_start,
        header_len: g.header_len,
        gso_size: g.gso_size,
        count: g.count,
        next: 0,
    })
}

/// Completes a partial checksum as the kernel's `skb_checksum_help` does:
/// the field already holds the pseudo-header sum, so summing from
/// `csum_start` to the end covers everything.
fn complete_checksum(hdr: &VirtioNetHdr, packet: &mut [u8]) -> Result<(), OffloadError> {
    let start = usize::from(hdr.csum_start);
    let field = start + usize::from(hdr.csum_offset);
    if field + 2 > packet.len() {
        return Err(OffloadError::CsumOutOfRange {
            start,
            offset: usize::from(hdr.csum_offset),
            len: packet.len(),
        });
    }
    let mut c = checksum::finish(checksum::sum(&packet[start..], 0));
    if c == 0 {
        // As the kernel does: 0 means "no checksum" to UDP, 0xffff is the
        // same value for TCP.
        c = 0xffff;
    }
    put_be16(packet, field, c);
    Ok(())
}

struct GsoLayout {
    l4_start: usize,
    header_len: usize,
    gso_size: usize,
    count: usize,
}

fn validate_gso(hdr: &VirtioNetHdr, plan: Plan, packet: &[u8]) -> Result<GsoLayout, OffloadError> {
    if hdr.flags & F_NEEDS_CSUM == 0 {
        return Err(OffloadError::GsoWithoutCsum(hdr.gso_type));
    }
    if hdr.gso_size == 0 {
        return Err(OffloadError::ZeroGsoSize);
    }
    let len = packet.len();
    if len > MAX_PACKET_LEN {
        return Err(OffloadError::TooLong(len));
    }
    if usize::from(hdr.hdr_len) > len {
        return Err(OffloadError::HdrLenTooBig {
            hdr_len: usize::from(hdr.hdr_len),
            len,
        });
    }
    let version = packet.first().map_or(0, |b| b >> 4);
    let version_ok = match hdr.gso_type & !GSO_ECN {
        GSO_TCPV4 => version == 4,
        GSO_TCPV6 => version == 6,
        _ => version == 4 || version == 6,
    };
    if !version_ok {
        return Err(OffloadError::IpVersion {
            version,
            gso_type: hdr.gso_type,
        });
    }
    let l4_start = usize::from(hdr.csum_start);
    if version == 4 {
        if len < IPV4_HEADER_LEN {
            return Err(OffloadError::Truncated {
                what: "IPv4 header",
                need: IPV4_HEADER_LEN,
                len,
            });
        }
        let ihl = usize::from(packet[0] & 0x0f) * 4;
        if ihl < IPV4_HEADER_LEN || ihl != l4_start {
            return Err(OffloadError::IpHeaderLen {
                ip_header_len: ihl,
                csum_start: l4_start,
            });
        }
    } else {
        if len < IPV6_HEADER_LEN {
            return Err(OffloadError::Truncated {
                what: "IPv6 header",
                need: IPV6_HEADER_LEN,
                len,
            });
        }
        if l4_start < IPV6_HEADER_LEN {
            return Err(OffloadError::IpHeaderLen {
                ip_header_len: IPV6_HEADER_LEN,
                csum_start: l4_start,
            });
        }
    }
    let (csum_offset, min_l4_header) = match plan {
        Plan::Tcp => (TCP_CSUM_OFFSET, TCP_HEADER_LEN),
        _ => (UDP_CSUM_OFFSET, UDP_HEADER_LEN),
    };
    if usize::from(hdr.csum_offset) != csum_offset {
        return Err(OffloadError::CsumOffset {
            got: usize::from(hdr.csum_offset),
            want: csum_offset,
        });
    }
    if l4_start + min_l4_header > len {
        return Err(OffloadError::Truncated {
            what: "transport header",
            need: l4_start + min_l4_header,
            len,
        });
    }
    // The TCP header says its own length; `hdr_len` is only a hint.
    let l4_header_len = match plan {
        Plan::Tcp => {
            let thl = usize::from(packet[l4_start + 12] >> 4) * 4;
            if thl < TCP_HEADER_LEN || l4_start + thl > len {
                return Err(OffloadError::TcpHeaderLen(thl));
            }
            thl
        }
        _ => UDP_HEADER_LEN,
    };
    let header_len = l4_start + l4_header_len;
    let payload = len - header_len;
    if payload == 0 {
        return Err(OffloadError::NoPayload);
    }
    let gso_size = usize::from(hdr.gso_size);
    let count = payload.div_ceil(gso_size);
    if count > MAX_SEGMENTS {
        return Err(OffloadError::TooManySegments(count));
    }
    // Each segment's IP length field must hold its length.
    let longest = header_len + gso_size.min(payload);
    let ip_len = if version == 4 {
        longest
    } else {
        longest - IPV6_HEADER_LEN
    };
    if ip_len > MAX_IP_LEN {
        return Err(OffloadError::TooLong(longest));
    }
    Ok(GsoLayout {
        l4_start,
        header_len,
        gso_size,
        count,
    })
}

impl<'a> Segments<'a> {
    /// Number of segments (at least 1).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Never true: a packet always makes at least one segment.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The whole packet when it is its own only segment (`GSO_NONE`), so a
    /// caller may send it from where it was read instead of copying.
    pub fn whole(&self) -> Option<&'a [u8]> {
        (self.plan == Plan::Whole).then_some(self.packet)
    }

    /// Size of the largest segment: what a buffer passed to
    /// [`Segments::next_into`] must hold.
    pub fn max_segment_len(&self) -> usize {
        match self.plan {
            Plan::Whole => self.packet.len(),
            _ => self.header_len + self.gso_size.min(self.packet.len() - self.header_len),
        }
    }

    /// Writes the next segment, a complete IP packet with valid checksums,
    /// to the start of `dst` and returns its length; `None` after the last.
    /// A `dst` too small is an error and the segment stays next.
    pub fn next_into(&mut self, dst: &mut [u8]) -> Option<Result<usize, OffloadError>> {
        if self.next >= self.count {
            return None;
        }
        let i = self.next;
        let (payload_start, payload_end) = match self.plan {
            Plan::Whole => (0, self.packet.len()),
            _ => {
                let start = self.header_len + i * self.gso_size;
                (start, (start + self.gso_size).min(self.packet.len()))
            }
        };
        let header_len = self.header_len;
        let seg_len = header_len + payload_end - payload_start;
        let Some(seg) = dst.get_mut(..seg_len) else {
            return Some(Err(OffloadError::BufferTooSmall {
                need: seg_len,
                have: dst.len(),
            }));
        };
        seg[..header_len].copy_from_slice(&self.packet[..header_len]);
        seg[header_len..].copy_from_slice(&self.packet[payload_start..payload_end]);
        self.next += 1;
        if self.plan != Plan::Whole {
            self.fix_segment(seg, i);
        }
        Some(Ok(seg_len))
    }

    /// Makes the copied headers right for segment `i`: lengths, IPv4 ID and
    /// checksum, TCP sequence and flags, transport checksum.
    fn fix_segment(&self, seg: &mut [u8], i: usize) {
        let seg_len = seg.len();
        let l4_start = self.l4_start;
        // Lengths were bounded in validate_gso; casts cannot truncate.
        if seg[0] >> 4 == 4 {
            put_be16(seg, 2, seg_len as u16);
            let id = be16(seg, 4).wrapping_add(i as u16);
            put_be16(seg, 4, id);
            set_ipv4_checksum(seg, l4_start);
        } else {
            put_be16(seg, 4, (seg_len - IPV6_HEADER_LEN) as u16);
        }
        match self.plan {
            Plan::Tcp => {
                let seq = be32(seg, l4_start + 4).wrapping_add((i * self.gso_size) as u32);
                put_be32(seg, l4_start + 4, seq);
                let flags = &mut seg[l4_start + TCP_FLAGS];
                if i + 1 < self.count {
                    *flags &= !(TCP_FIN | TCP_PSH);
                }
                if i > 0 {
                    *flags &= !TCP_CWR;
                }
                set_l4_checksum(seg, PROTO_TCP, l4_start, TCP_CSUM_OFFSET);
            }
            Plan::Udp => {
                put_be16(seg, l4_start + 4, (seg_len - l4_start) as u16);
                set_l4_checksum(seg, PROTO_UDP, l4_start, UDP_CSUM_OFFSET);
            }
            Plan::Whole => {}
        }
    }
}
