//! Why a packet read from the TUN could not be split.

use thiserror::Error;

/// A virtio header and packet that do not describe something we can split.
/// The packet is dropped; the kernel never produces these, so they mean a
/// bug or a hostile writer to the device.
#[derive(Debug, Error, PartialEq, Eq, Clone, Copy)]
pub enum OffloadError {
    #[error("{what} needs {need} bytes, have {len}")]
    Truncated {
        what: &'static str,
        need: usize,
        len: usize,
    },
    #[error("unknown gso_type {0:#x}")]
    UnknownGsoType(u8),
    #[error("gso_type {0:#x} without the NEEDS_CSUM flag")]
    GsoWithoutCsum(u8),
    #[error("gso_size is 0")]
    ZeroGsoSize,
    #[error("checksum field at {start}+{offset} outside a packet of {len} bytes")]
    CsumOutOfRange { start: usize, offset: usize, len: usize },
    #[error("csum_offset {got} where the transport header needs {want}")]
    CsumOffset { got: usize, want: usize },
    #[error("hdr_len {hdr_len} beyond a packet of {len} bytes")]
    HdrLenTooBig { hdr_len: usize, len: usize },
    #[error("IP version {version} does not match gso_type {gso_type:#x}")]
    IpVersion { version: u8, gso_type: u8 },
    #[error("IP header length {ip_header_len} disagrees with csum_start {csum_start}")]
    IpHeaderLen { ip_header_len: usize, csum_start: usize },
    #[error("TCP data offset of {0} bytes")]
    TcpHeaderLen(usize),
    #[error("super-packet without payload")]
    NoPayload,
    #[error("{0} segments, more than allowed")]
    TooManySegments(usize),
    #[error("packet of {0} bytes is too long")]
    TooLong(usize),
    #[error("segment of {need} bytes does not fit a buffer of {have}")]
    BufferTooSmall { need: usize, have: usize },
}
