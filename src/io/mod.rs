//! The worker's IO: the event loop ([`driver`]) that moves bytes between
//! the TUN device, the path sockets and the sans-IO core, the TUN reads and
//! writes, and the control socket. No protocol decisions are made here;
//! what the privileged parent sets up is in `daemon`.

pub mod control;
pub mod driver;
pub mod offload;
// Registering the TUN descriptor with tokio's reactor.
#[allow(unsafe_code)]
pub mod tun_device;

pub use driver::run;
