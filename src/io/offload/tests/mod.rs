//! Tests of splitting and coalescing on crafted packets
//! (`super::test_packets` builds them).

mod coalesce_tcp;
mod coalesce_udp;
mod malformed;
mod round_trip;
mod segment;

use super::coalesce::{CoalesceConfig, Coalescer};
use super::segment::segments;
use super::virtio_hdr::{VirtioNetHdr, VNET_HDR_LEN};

pub const BOTH: CoalesceConfig = CoalesceConfig { tcp: true, udp: true };

/// Every segment of a packet read from the TUN, as owned packets.
pub fn split(hdr: &VirtioNetHdr, packet: &[u8]) -> Vec<Vec<u8>> {
    let mut packet = packet.to_vec();
    let mut segs = segments(hdr, &mut packet).expect("valid super-packet");
    let count = segs.len();
    let mut buf = vec![0u8; segs.max_segment_len()];
    let mut out = Vec::new();
    while let Some(n) = segs.next_into(&mut buf) {
        out.push(buf[..n.expect("segment fits")].to_vec());
    }
    assert_eq!(out.len(), count);
    out
}

/// Pushes `packets` through a coalescer and returns what a flush writes:
/// each buffer's virtio header and packet.
pub fn coalesce(config: CoalesceConfig, packets: &[Vec<u8>]) -> Vec<(VirtioNetHdr, Vec<u8>)> {
    let mut c = Coalescer::new(config);
    for p in packets {
        c.push(p).expect("room for the packet");
    }
    let mut out = Vec::new();
    c.flush(|b| {
        out.push((
            VirtioNetHdr::decode(b).expect("header"),
            b[VNET_HDR_LEN..].to_vec(),
        ));
        Ok(())
    })
    .expect("writes succeed");
    assert!(c.is_empty());
    out
}
