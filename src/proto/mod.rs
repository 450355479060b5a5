//! The sans-IO protocol core.
//!
//! Everything here is a plain state machine: it is fed bytes and a `now`
//! (`std::time::Instant`, supplied by the caller) and returns bytes to send and
//! the next instant it wants to be woken at. No sockets, no clock reads, no
//! threads — so every behaviour can be driven deterministically by tests with
//! simulated time, loss and reordering.
#![forbid(unsafe_code)]

pub mod aead;
pub mod clock;
pub mod cookie;
pub mod count_history;
pub mod delay;
pub mod estimator;
pub mod frame;
pub mod handshake;
pub mod ids;
pub mod ip;
pub mod mac;
pub mod mode;
pub mod open_job;
pub mod path;
pub mod prefix_table;
pub mod ratelimit;
pub mod reorder;
pub mod replay;
pub mod resend;
pub mod scheduler;
pub mod seal_job;
pub mod session;
pub mod stats;
pub mod tunnel;
pub mod wakeups;
pub mod wire;

pub use ids::{PathId, SocketId};
pub use mode::Mode;
pub use open_job::{OpenJob, OpenStep};
pub use seal_job::SealJob;
pub use tunnel::{Transmit, Tunnel, TunnelConfig};
