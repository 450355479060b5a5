//! Why a reload (SIGHUP) was refused; the running configuration stays.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file does not load (its own message).
    #[error("{0}")]
    Load(String),
    #[error("mode changed: that needs a restart")]
    ModeChanged,
    /// A new or moved path's socket (the message names the path).
    #[error("{0}")]
    Bind(io::Error),
    #[error("telling the worker: {0}")]
    TellWorker(io::Error),
}
