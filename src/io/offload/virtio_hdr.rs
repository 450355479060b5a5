//! `struct virtio_net_hdr`: the 10 bytes that start every read from and
//! every write to a TUN device opened with `IFF_VNET_HDR`.
//!
//! The device is used without `TUNSETVNETLE`, so the kernel speaks the
//! legacy header: its 16-bit fields are in the host's byte order.

use super::OffloadError;

/// Length of the legacy header (no `num_buffers`).
pub const VNET_HDR_LEN: usize = 10;

/// `flags`: the checksum from `csum_start` to the end is still to be
/// completed; the field at `csum_start + csum_offset` holds the pseudo-header
/// sum.
pub const F_NEEDS_CSUM: u8 = 1;
/// `flags`: the checksum was verified already (only the kernel sets it).
pub const F_DATA_VALID: u8 = 2;

/// `gso_type`: one ordinary packet.
pub const GSO_NONE: u8 = 0;
/// `gso_type`: an IPv4 TCP super-packet, to be split into `gso_size` segments.
pub const GSO_TCPV4: u8 = 1;
/// `gso_type`: UDP fragmentation offload (UFO); never produced for us.
pub const GSO_UDP: u8 = 3;
/// `gso_type`: an IPv6 TCP super-packet.
pub const GSO_TCPV6: u8 = 4;
/// `gso_type`: a UDP super-packet split into datagrams of `gso_size` (USO).
pub const GSO_UDP_L4: u8 = 5;
/// `gso_type` bit: the TCP super-packet carries CWR (on its first segment).
pub const GSO_ECN: u8 = 0x80;

/// The decoded header. Field names are the kernel's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VirtioNetHdr {
    pub flags: u8,
    pub gso_type: u8,
    /// Length of the IP + transport headers (a hint: Linux may get it wrong,
    /// so splitting reads the TCP header itself).
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where the checksummed part (the transport header) starts.
    pub csum_start: u16,
    /// Offset of the checksum field from `csum_start`.
    pub csum_offset: u16,
}

impl VirtioNetHdr {
    /// Reads the header from the first [`VNET_HDR_LEN`] bytes of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, OffloadError> {
        let Some(b) = bytes.get(..VNET_HDR_LEN) else {
            return Err(OffloadError::Truncated {
                what: "virtio_net_hdr",
                need: VNET_HDR_LEN,
                len: bytes.len(),
            });
        };
        let field = |at: usize| u16::from_ne_bytes([b[at], b[at + 1]]);
        Ok(Self {
            flags: b[0],
            gso_type: b[1],
            hdr_len: field(2),
            gso_size: field(4),
            csum_start: field(6),
            csum_offset: field(8),
        })
    }

    /// The header's bytes, ready to precede a packet written to the TUN.
    pub fn encode(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let h = VirtioNetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV6 | GSO_ECN,
            hdr_len: 72,
            gso_size: 1428,
            csum_start: 40,
            csum_offset: 16,
        };
        let b = h.encode();
        assert_eq!(b[0], 1);
        assert_eq!(b[1], 0x84);
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 1428);
        assert_eq!(VirtioNetHdr::decode(&b), Ok(h));
    }

    #[test]
    fn short_input_is_an_error() {
        assert!(matches!(
            VirtioNetHdr::decode(&[0; 9]),
            Err(OffloadError::Truncated { len: 9, .. })
        ));
    }
}
