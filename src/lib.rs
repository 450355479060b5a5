//! mlvpn-rs: bond several UDP paths into one encrypted layer-3 tunnel.
//!
//! - [`proto`]: the sans-IO protocol core (no sockets, no clocks).
//! - [`io`]: the tokio driver that moves bytes between TUN, sockets and core.
//! - [`daemon`]: the privileged parent, its set-up, and the worker.
//! - [`platform`]: what differs per operating system.
//! - [`config`]: the validated configuration.
//! - `crypto`: wiping key types that do not wipe themselves.
//!
//! `unsafe` is denied here and allowed, by name, only in the modules that
//! take over raw descriptors or call `setsockopt` directly, and in the one
//! that wipes ring's AEAD keys.
#![deny(unsafe_code)]

pub mod config;
mod crypto;
pub mod daemon;
pub mod import_mlvpn;
pub mod io;
pub mod platform;
pub mod prometheus;
pub mod proto;
pub mod status_json;
pub mod status_table;
pub mod terminal_text;
#[cfg(test)]
mod test_support;
/// Lets the shared test fixtures (`tests/fixtures`, included by
/// `test_support`) name this crate as every other user of them does.
#[cfg(test)]
extern crate self as mlvpn_rs;
