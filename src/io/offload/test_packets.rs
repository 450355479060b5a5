//! Building the IPv4/IPv6 TCP and UDP packets the offload tests feed in,
//! with correct lengths and checksums unless told otherwise.

use super::checksum;
use super::headers::{
    put_be16, put_be32, set_ipv4_checksum, set_l4_checksum, IPV4_HEADER_LEN, IPV6_HEADER_LEN, PROTO_TCP,
    PROTO_UDP, TCP_ACK, TCP_CSUM_OFFSET, UDP_CSUM_OFFSET,
};
use super::virtio_hdr::{VirtioNetHdr, F_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4};

/// IP header fields of a test packet.
#[derive(Debug, Clone)]
pub struct Ip {
    pub v6: bool,
    pub src: u8,
    pub dst: u8,
    pub id: u16,
    pub ttl: u8,
    pub tos: u8,
    pub df: bool,
}

impl Ip {
    pub fn v4() -> Self {
        Self {
            v6: false,
            src: 1,
            dst: 2,
            id: 0x1000,
            ttl: 64,
            tos: 0,
            df: true,
        }
    }

    pub fn v6() -> Self {
        Self {
            v6: true,
            ..Self::v4()
        }
    }

    pub fn header_len(&self) -> usize {
        if self.v6 {
            IPV6_HEADER_LEN
        } else {
            IPV4_HEADER_LEN
        }
    }

    /// The IP header for a transport part of `l4_len` bytes.
    fn header(&self, protocol: u8, l4_len: usize) -> Vec<u8> {
        if self.v6 {
            let mut h = vec![0u8; IPV6_HEADER_LEN];
            h[0] = 0x60 | (self.tos >> 4);
            h[1] = self.tos << 4 | 0x0a; // flow label 0xa1234
            h[2] = 0x12;
            h[3] = 0x34;
            put_be16(&mut h, 4, l4_len as u16);
            h[6] = protocol;
            h[7] = self.ttl;
            h[8] = 0xfd;
            h[23] = self.src;
            h[24] = 0xfd;
            h[39] = self.dst;
            h
        } else {
            let mut h = vec![0u8; IPV4_HEADER_LEN];
            h[0] = 0x45;
            h[1] = self.tos;
            put_be16(&mut h, 2, (IPV4_HEADER_LEN + l4_len) as u16);
            put_be16(&mut h, 4, self.id);
            put_be16(&mut h, 6, if self.df { 0x4000 } else { 0 });
            h[8] = self.ttl;
            h[9] = protocol;
            h[12..16].copy_from_slice(&[10, 0, 0, self.src]);
            h[16..20].copy_from_slice(&[10, 0, 0, self.dst]);
            set_ipv4_checksum(&mut h, IPV4_HEADER_LEN);
            h
        }
    }
}

/// A TCP segment.
#[derive(Debug, Clone)]
pub struct Tcp {
    pub ip: Ip,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    /// A multiple of 4 bytes.
    pub options: Vec<u8>,
    pub payload: Vec<u8>,
}

impl Tcp {
    /// A segment with timestamp options and `payload_len` bytes of payload.
    pub fn new(ip: Ip, seq: u32, payload_len: usize) -> Self {
        Self {
            ip,
            src_port: 40000,
            dst_port: 443,
            seq,
            ack: 0x0bad_cafe,
            flags: TCP_ACK,
            window: 501,
            options: vec![1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9],
            payload: payload(payload_len, seq),
        }
    }

    pub fn header_len(&self) -> usize {
        self.ip.header_len() + 20 + self.options.len()
    }

    pub fn build(&self) -> Vec<u8> {
        let thl = 20 + self.options.len();
        let mut p = self.ip.header(PROTO_TCP, thl + self.payload.len());
        let t = p.len();
        p.resize(t + 20, 0);
        put_be16(&mut p, t, self.src_port);
        put_be16(&mut p, t + 2, self.dst_port);
        put_be32(&mut p, t + 4, self.seq);
        put_be32(&mut p, t + 8, self.ack);
        p[t + 12] = ((thl / 4) as u8) << 4;
        p[t + 13] = self.flags;
        put_be16(&mut p, t + 14, self.window);
        p.extend_from_slice(&self.options);
        p.extend_from_slice(&self.payload);
        set_l4_checksum(&mut p, PROTO_TCP, t, TCP_CSUM_OFFSET);
        p
    }

    /// What the kernel hands a TUN for this segment as a TSO super-packet
    /// of `mss` segments: header and packet with a partial checksum.
    pub fn super_packet(&self, mss: u16) -> (VirtioNetHdr, Vec<u8>) {
        let gso_type = if self.ip.v6 { GSO_TCPV6 } else { GSO_TCPV4 };
        partial(
            self.build(),
            gso_type,
            self.ip.header_len(),
            self.header_len(),
            mss,
            TCP_CSUM_OFFSET,
        )
    }
}

/// A UDP datagram.
#[derive(Debug, Clone)]
pub struct Udp {
    pub ip: Ip,
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: Vec<u8>,
}

impl Udp {
    pub fn new(ip: Ip, payload_len: usize, seed: u32) -> Self {
        Self {
            ip,
            src_port: 51820,
            dst_port: 4433,
            payload: payload(payload_len, seed),
        }
    }

    pub fn build(&self) -> Vec<u8> {
        let l4_len = 8 + self.payload.len();
        let mut p = self.ip.header(PROTO_UDP, l4_len);
        let t = p.len();
        p.resize(t + 8, 0);
        put_be16(&mut p, t, self.src_port);
        put_be16(&mut p, t + 2, self.dst_port);
        put_be16(&mut p, t + 4, l4_len as u16);
        p.extend_from_slice(&self.payload);
        set_l4_checksum(&mut p, PROTO_UDP, t, UDP_CSUM_OFFSET);
        p
    }

    /// A USO super-packet of this datagram cut into `size`-byte datagrams.
    pub fn super_packet(&self, size: u16) -> (VirtioNetHdr, Vec<u8>) {
        let l4 = self.ip.header_len();
        partial(self.build(), GSO_UDP_L4, l4, l4 + 8, size, UDP_CSUM_OFFSET)
    }
}

/// Turns a complete packet into one with a partial checksum, as handed out
/// by the kernel with `VIRTIO_NET_HDR_F_NEEDS_CSUM`.
pub fn partial(
    mut p: Vec<u8>,
    gso_type: u8,
    l4_start: usize,
    hdr_len: usize,
    gso_size: u16,
    csum_offset: usize,
) -> (VirtioNetHdr, Vec<u8>) {
    let protocol = if csum_offset == TCP_CSUM_OFFSET {
        PROTO_TCP
    } else {
        PROTO_UDP
    };
    let pseudo = super::headers::pseudo_header_sum(&p, protocol, l4_start);
    put_be16(&mut p, l4_start + csum_offset, pseudo);
    let hdr = VirtioNetHdr {
        flags: F_NEEDS_CSUM,
        gso_type,
        hdr_len: hdr_len as u16,
        gso_size,
        csum_start: l4_start as u16,
        csum_offset: csum_offset as u16,
    };
    (hdr, p)
}

/// Deterministic, position-dependent payload bytes.
pub fn payload(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (seed.wrapping_add(i).wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// Whether the IPv4 header checksum (if any) and the transport checksum of
/// a complete packet verify.
pub fn checksums_ok(p: &[u8]) -> bool {
    let (l4, protocol) = if p[0] >> 4 == 4 {
        if checksum::sum(&p[..IPV4_HEADER_LEN], 0) != 0xffff {
            return false;
        }
        (IPV4_HEADER_LEN, p[9])
    } else {
        (IPV6_HEADER_LEN, p[6])
    };
    super::headers::l4_checksum_ok(p, protocol, l4)
}
