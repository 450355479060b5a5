//! Which side of the tunnel a node is: the core's own notion (the config
//! re-exports it), so the core depends on nothing outside itself.

/// Which side of the tunnel this daemon is; in the status JSON as its
/// lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Initiates handshakes on every path towards the server's endpoints.
    Client,
    /// Listens on every path's `bind` address and accepts configured peers.
    Server,
}

impl Mode {
    /// The name used in the config file and the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Client => "client",
            Mode::Server => "server",
        }
    }
}
