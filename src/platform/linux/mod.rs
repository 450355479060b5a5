//! Linux: the TUN device through the `tun` crate, addresses, routes and
//! policy rules through iproute2 (`ip`), socket options through
//! `setsockopt`, the worker's sandbox through seccomp.

mod addresses;
mod ip_command;
mod policy_routing;
mod routes;
mod rp_filter;
mod sandbox;
// setsockopt(IP_MTU_DISCOVER), which nix does not wrap.
#[allow(unsafe_code)]
mod socket_options;
// Taking over the descriptor the `tun` crate opened.
#[allow(unsafe_code)]
mod tun;
mod uplink_route;

pub use addresses::set_addresses;
pub use policy_routing::{full_tunnel_mechanism, MARK as PATH_MARK, TABLE as FULL_TUNNEL_TABLE};
pub use routes::{install_routes, remove_routes, update_routes};
pub use rp_filter::strict_reverse_path_filter;
pub use sandbox::restrict_worker;
pub use socket_options::{bind_on_device, mark_path_socket, tune_path_socket};
pub use tun::create_tun;
pub use uplink_route::misrouted_path;
