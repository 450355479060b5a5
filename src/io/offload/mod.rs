//! TUN offload: the packet side of a TUN device opened with
//! `IFF_VNET_HDR` and `TUNSETOFFLOAD` (TSO, USO, checksum offload).
//!
//! Reads bring a [`VirtioNetHdr`] and possibly a 64 KiB super-packet with a
//! partial checksum, which [`segments`] splits into ordinary packets for
//! the tunnel. Writes carry a virtio header too, and [`Coalescer`] joins
//! the packets the tunnel delivers into super-packets (GRO), so the kernel
//! handles a few large packets instead of many small ones. Pure functions
//! on byte slices; the device set-up lives with the TUN code.

pub mod checksum;
pub mod coalesce;
mod error;
pub mod headers;
pub mod segment;
pub mod virtio_hdr;

#[cfg(test)]
mod test_packets;
#[cfg(test)]
mod tests;

pub use coalesce::{CoalesceConfig, Coalescer, PushError};
pub use error::OffloadError;
pub use segment::{segments, Segments};
pub use virtio_hdr::{VirtioNetHdr, VNET_HDR_LEN};
