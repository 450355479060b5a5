//! The daemon's two processes: the privileged parent ([`parent`]) and the
//! unprivileged worker ([`worker`]), and what the parent hands the worker
//! ([`setup`]). What only the parent does is here too: opening the TUN
//! device and sockets ([`resources`]), the routes ([`crate::platform::route_plan`],
//! [`installed_routes`]) and the checks of the host's uplinks; what differs
//! per system is behind [`crate::platform`].

mod chroot_dir;
mod daemon_error;
pub mod installed_routes;
pub mod parent;
pub mod path_socket;
mod privileged_ops;
pub mod reload;
mod reload_error;
pub mod resources;
pub mod rp_filter_check;
pub mod setup;
pub mod uplink_check;
// Taking over the channel descriptor the parent passed on the command line.
#[allow(unsafe_code)]
pub mod worker;
mod worker_error;

/// Hidden subcommand the parent execs the worker with.
pub const WORKER_ARG: &str = "__worker";

/// Completes on SIGTERM or SIGINT (logs which). The handlers are installed
/// by the call itself (inside a runtime), not when the future is first
/// polled: the worker must install them before its seccomp filter forbids
/// `rt_sigaction`.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let handlers = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
    }
}
