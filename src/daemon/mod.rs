//! The daemon's two processes: the privileged parent ([`parent`]) and the
//! unprivileged worker ([`worker`]), and what the parent hands the worker
//! ([`setup`]).

pub mod parent;
pub mod reload;
pub mod setup;
pub mod worker;

/// Hidden subcommand the parent execs the worker with.
pub const WORKER_ARG: &str = "__worker";

/// Stops on SIGTERM or SIGINT (logs which).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}
