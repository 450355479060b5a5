//! The few IPv4, IPv6, TCP and UDP header facts that splitting and
//! coalescing need. Offsets and helpers only; callers check lengths first.

use super::checksum;

pub const IPV4_HEADER_LEN: usize = 20;
pub const IPV6_HEADER_LEN: usize = 40;
pub const TCP_HEADER_LEN: usize = 20;
pub const UDP_HEADER_LEN: usize = 8;

pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// Offset of the checksum field in the TCP header.
pub const TCP_CSUM_OFFSET: usize = 16;
/// Offset of the checksum field in the UDP header.
pub const UDP_CSUM_OFFSET: usize = 6;

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_ACK: u8 = 0x10;
pub const TCP_URG: u8 = 0x20;
pub const TCP_CWR: u8 = 0x80;

/// Offset of the flags byte in the TCP header.
pub const TCP_FLAGS: usize = 13;

/// IPv4 flags/fragment offset field with only DF set: not a fragment.
pub const IPV4_DF_ONLY: u16 = 0x4000;

/// The 65535 bytes an IPv4 total length can say, and the most a coalesced
/// packet may have.
pub const MAX_IP_LEN: usize = 65535;

pub fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub fn put_be16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

pub fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub fn put_be32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Source and destination address of a packet whose version (4 or 6) and
/// minimum header length the caller has checked.
pub fn addresses(packet: &[u8]) -> (&[u8], &[u8]) {
    if packet[0] >> 4 == 4 {
        (&packet[12..16], &packet[16..20])
    } else {
        (&packet[8..24], &packet[24..40])
    }
}

/// Pseudo-header sum for the transport part of `packet` starting at
/// `l4_start` and running to the end.
pub fn pseudo_header_sum(packet: &[u8], protocol: u8, l4_start: usize) -> u16 {
    let (src, dst) = addresses(packet);
    // Callers bound packets to MAX_IP_LEN + IPV6_HEADER_LEN, so the
    // transport part always fits in 16 bits.
    checksum::pseudo_header_sum(src, dst, protocol, (packet.len() - l4_start) as u16)
}

/// Writes the IPv4 header checksum of the `ihl`-byte header at the start of
/// `packet`.
pub fn set_ipv4_checksum(packet: &mut [u8], ihl: usize) {
    put_be16(packet, 10, 0);
    let c = checksum::finish(checksum::sum(&packet[..ihl], 0));
    put_be16(packet, 10, c);
}

/// Whether the transport checksum of `packet` (transport part from
/// `l4_start` to the end) verifies.
pub fn l4_checksum_ok(packet: &[u8], protocol: u8, l4_start: usize) -> bool {
    let pseudo = pseudo_header_sum(packet, protocol, l4_start);
    checksum::sum(&packet[l4_start..], pseudo) == 0xffff
}

/// Computes and stores the full transport checksum of `packet`; the field
/// at `l4_start + csum_offset` may hold anything before. A UDP checksum of
/// 0 means "none", so a computed 0 is sent as its equivalent 0xffff.
pub fn set_l4_checksum(packet: &mut [u8], protocol: u8, l4_start: usize, csum_offset: usize) {
    let field = l4_start + csum_offset;
    put_be16(packet, field, 0);
    let pseudo = pseudo_header_sum(packet, protocol, l4_start);
    let mut c = checksum::finish(checksum::sum(&packet[l4_start..], pseudo));
    if c == 0 && protocol == PROTO_UDP {
        c = 0xffff;
    }
    put_be16(packet, field, c);
}
