//! The worker's system-call filter (seccomp), installed last before the
//! event loop reads its first datagram.

use crate::platform::SandboxError;

/// Installs the worker's seccomp filter on every thread.
pub fn restrict_worker() -> Result<Option<&'static str>, SandboxError> {
    mlvpn_privsep::seccomp::restrict_worker().map_err(|e| SandboxError(e.to_string()))?;
    Ok(Some("seccomp filter"))
}
