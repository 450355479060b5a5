//! Why the daemon (its parent) could not start or stopped with a failure.
//! The texts are what an operator reads after `mlvpn-rs: ` (tests grep
//! them); errors of other crates are kept as their message.

use std::io;

use super::chroot_dir::ChrootError;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// An up or down script that the parent must not run.
    #[error("{0}")]
    HookScripts(String),
    #[error("interface.user: {0}")]
    User(String),
    #[error(transparent)]
    Chroot(#[from] ChrootError),
    /// The TUN device, its addresses, a path's socket or the control socket.
    #[error("{0}")]
    Resources(io::Error),
    #[error("{0}")]
    Routes(io::Error),
    #[error("socketpair: {0}")]
    Socketpair(nix::Error),
    #[error("cannot find own executable: {0}")]
    OwnExecutable(io::Error),
    #[error("runtime: {0}")]
    Runtime(io::Error),
    #[error("SIGHUP handler: {0}")]
    HangupHandler(io::Error),
    #[error("cannot start worker: {0}")]
    StartWorker(io::Error),
    #[error("channel: {0}")]
    Channel(io::Error),
    #[error("hand-over: {0}")]
    Handover(io::Error),
    /// The worker exited after reporting which start-up step failed.
    #[error("{failure} (worker {status})")]
    WorkerStartFailed { failure: String, status: String },
    #[error("worker exited unexpectedly ({status})")]
    WorkerExited { status: String },
    /// The worker reported a failed start-up step and is exiting.
    #[error("{0}")]
    WorkerFailed(String),
    #[error("worker closed the privsep channel")]
    ChannelClosed,
    #[error("privsep channel: {0}")]
    Privsep(io::Error),
}
