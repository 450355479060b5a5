//! The few facts the tunnel needs from an inner IP header.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Source, destination and total length of an IPv4 or IPv6 packet, or `None`
/// if the bytes are not a plausible IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpSummary {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Length the header claims (the packet may be followed by padding).
    pub len: usize,
}

pub fn summarize(p: &[u8]) -> Option<IpSummary> {
    match p.first()? >> 4 {
        4 if p.len() >= 20 => {
            let len = u16::from_be_bytes([p[2], p[3]]) as usize;
            if len < 20 || len > p.len() || ((p[0] & 0x0f) as usize) * 4 < 20 {
                return None;
            }
            let src: [u8; 4] = p[12..16].try_into().ok()?;
            let dst: [u8; 4] = p[16..20].try_into().ok()?;
            Some(IpSummary {
                src: Ipv4Addr::from(src).into(),
                dst: Ipv4Addr::from(dst).into(),
                len,
            })
        }
        6 if p.len() >= 40 => {
            let len = 40 + u16::from_be_bytes([p[4], p[5]]) as usize;
            if len > p.len() {
                return None;
            }
            let src: [u8; 16] = p[8..24].try_into().ok()?;
            let dst: [u8; 16] = p[24..40].try_into().ok()?;
            Some(IpSummary {
                src: Ipv6Addr::from(src).into(),
                dst: Ipv6Addr::from(dst).into(),
                len,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::fixtures::{ipv4_udp_packet, ipv6_udp_packet};

    #[test]
    fn ipv4_and_garbage() {
        let mut p = ipv4_udp_packet(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), 28);
        let s = summarize(&p).unwrap();
        assert_eq!(s.len, 28);
        assert_eq!(s.dst, IpAddr::from([10, 0, 0, 2]));
        assert_eq!(summarize(&p[..27]), None);
        assert_eq!(summarize(&[0x60; 39]), None);
        assert_eq!(summarize(&[]), None);
        p[0] = 0x41;
        assert_eq!(summarize(&p), None);
    }

    #[test]
    fn ipv6_length_from_the_payload_length() {
        let src: Ipv6Addr = "fd42::6".parse().unwrap();
        let dst: Ipv6Addr = "fd42::1".parse().unwrap();
        let p = ipv6_udp_packet(src, dst, 60);
        let s = summarize(&p).unwrap();
        assert_eq!((s.src, s.dst, s.len), (src.into(), dst.into(), 60));
        assert_eq!(summarize(&p[..59]), None);
    }
}
