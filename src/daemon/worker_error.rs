//! Why the worker stopped with a failure (logged by the worker itself; a
//! start-up failure is also reported to the parent).

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("worker: bad channel descriptor {0:?}")]
    BadChannelDescriptor(String),
    #[error("worker: {0}")]
    ChannelDescriptor(nix::Error),
    /// A start-up step failed (the message names it).
    #[error("{0}")]
    Startup(String),
    #[error("worker: channel: {0}")]
    Channel(io::Error),
    /// The event loop stopped on an error.
    #[error("worker: {0}")]
    Tunnel(io::Error),
}
