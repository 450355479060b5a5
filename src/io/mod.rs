//! The IO driver: moves bytes between the TUN device, the path sockets and
//! the sans-IO core. No protocol decisions are made here.

pub mod control;
pub mod driver;
pub mod installed_routes;
pub mod netconf;
pub mod policy_routing;
pub mod rp_filter_check;
pub mod sockets;
pub mod tun_device;
pub mod uplink_check;

pub use driver::run;
