//! The worker's IO: the event loop ([`driver`]) that moves bytes between
//! the TUN device, the path sockets and the sans-IO core, the TUN reads and
//! writes, and the control socket. No protocol decisions are made here;
//! what the privileged parent sets up is in `daemon`.
//!
//! Sending: [`tun_to_paths`] splits TUN super-packets ([`offload`]) and
//! gathers sealed datagrams in [`udp_trains`]. Receiving: [`udp_receive`]
//! reads batches, [`paths_to_tun`] joins what the core opens into
//! super-packets for the TUN. [`kernel_offloads`] says which of these the
//! kernel accepted.

pub mod control;
pub mod data_path_status;
pub mod data_threads;
pub mod driver;
pub mod kernel_offloads;
pub mod offload;
pub mod paths_to_tun;
pub mod shared_core;
pub mod tun_device;
pub mod tun_to_paths;
// recvmmsg and its control messages (nix's wrapper keeps headers whose
// lengths the kernel shortened, losing later control messages).
#[allow(unsafe_code)]
pub mod udp_receive;
pub mod udp_trains;

pub use driver::run;
