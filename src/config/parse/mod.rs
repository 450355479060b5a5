//! From TOML text to a validated [`Config`].
//!
//! Parsing goes through "raw" serde structs ([`raw`]) whose fields keep
//! their source spans (`toml::Spanned`), so that every semantic check can
//! name the line of the key it is about. One module per section.

mod context;
mod file;
mod interface;
mod paths;
mod peers;
mod raw;
mod values;

use std::path::{Path, PathBuf};

use super::{Config, Mode};
use context::Ctx;
use file::read_text;
use interface::parse_interface;
use paths::parse_paths;
use peers::{check_prefixes_have_one_owner, parse_peers};
use raw::RawConfig;

pub use file::{control_socket_of, MAX_CONFIG_FILE};
#[cfg(test)]
pub(super) use raw::accepted_keys;

/// A config mistake: renders as `FILE:LINE: message`, or `FILE: message`
/// when no single line is at fault (a missing section, an unreadable file),
/// the form editors and `mlvpn-rs check` users expect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", .file.display(), .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based.
    pub line: Option<usize>,
    pub message: String,
}

/// Default keepalive interval and path timeout (documented in the man page).
pub const DEFAULT_KEEPALIVE: &str = "1s";
pub const DEFAULT_PATH_TIMEOUT: &str = "3s";
pub const DEFAULT_REKEY_AFTER: &str = "120s";
pub const DEFAULT_HOOK_TIMEOUT: &str = "10s";
pub const DEFAULT_USER: &str = "nobody";
pub const DEFAULT_CHROOT: &str = "/run/mlvpn-rs/empty";

impl Config {
    /// Reads and validates a config file (and the private key it names).
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = read_text(file)?;
        Config::parse(&text, file)
    }

    /// Validates config text; `file` names it in errors and anchors relative
    /// paths. Reads the private key file.
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let cx = Ctx { file, text };
        let raw: RawConfig = toml::from_str(text).map_err(|e| cx.syntax_error(&e))?;
        let mode = match raw.mode.get_ref().as_str() {
            "client" => Mode::Client,
            "server" => Mode::Server,
            other => {
                return cx.err(
                    raw.mode.span(),
                    format!("mode: \"{other}\" is not a mode; expected \"client\" or \"server\""),
                )
            }
        };
        let interface = parse_interface(&cx, raw.interface.into_inner())?;
        let peers = parse_peers(&cx, mode, &raw.peer, interface.private_key.public_key())?;
        check_prefixes_have_one_owner(&cx, &raw.peer)?;
        let paths = parse_paths(&cx, mode, &raw.path)?;
        Ok(Config {
            file: file.to_path_buf(),
            mode,
            interface,
            peers,
            paths,
        })
    }
}
