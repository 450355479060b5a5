//! Does each client path leave through the interface that holds its bind
//! address? The routing tables choose by destination: with two uplinks
//! each with its own default gateway, every path without a `device` leaves
//! through the same one (the other path's datagrams then carry a source
//! address its ISP drops, or bond nothing). The parent asks the kernel, as
//! the path's marked datagrams would, and warns with the fix.

use tracing::{debug, warn};

use crate::config::{Config, Mode};
use crate::platform;

/// Logs a warning for every client path whose datagrams would leave
/// through another interface than the one holding its bind address.
/// Paths tied to a device, bound to a wildcard address or without an
/// endpoint are not checked; a failed lookup is only logged at debug level.
pub fn warn_misrouted_paths(config: &Config) {
    if config.mode != Mode::Client {
        return;
    }
    for path in &config.paths {
        match platform::misrouted_path(path, config.mode) {
            Ok(Some((holder, via))) => warn!(
                path = %path.name,
                "its datagrams from {} would leave through {via}, not {holder} which holds that \
                 address: set device = \"{holder}\" on the path (see FULL TUNNEL in mlvpn-rs(8))",
                path.bind.ip()
            ),
            Ok(None) => {}
            Err(e) => debug!(path = %path.name, "uplink check: {e}"),
        }
    }
}
