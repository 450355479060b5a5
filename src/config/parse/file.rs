//! Reading a config file: bounded in size, and only if root (or the user
//! running us) owns it; and the control socket it names, without the key.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::context::Ctx;
use super::values::resolve;
use super::ConfigError;

/// Largest config file read: 16 MiB. A concentrator's 10 000 peers take
/// about 1.2 MB; anything much larger is not a config file.
pub const MAX_CONFIG_FILE: usize = 16 << 20;

/// Reads at most [`MAX_CONFIG_FILE`] bytes; refuses anything larger
/// clearly, and a file that someone other than root (or the user running
/// us) owns or could have written: root acts on it (hooks, routes).
pub(super) fn read_text(file: &Path) -> Result<String, ConfigError> {
    use mlvpn_privsep::trusted_file;
    use std::io::Read;
    let err = |message: String| ConfigError {
        file: file.to_path_buf(),
        line: None,
        message,
    };
    let f = std::fs::File::open(file).map_err(|e| err(format!("cannot open: {e}")))?;
    let meta = f.metadata().map_err(|e| err(format!("cannot read: {e}")))?;
    trusted_file::check_metadata("config file", file, &meta)
        .and_then(|_| trusted_file::check_parents("config file", file))
        .map_err(|e| err(e.to_string()))?;
    let mut text = String::new();
    f.take(MAX_CONFIG_FILE as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| err(format!("cannot read: {e}")))?;
    if text.len() > MAX_CONFIG_FILE {
        return Err(err(format!(
            "larger than {} MiB; not a config file",
            MAX_CONFIG_FILE >> 20
        )));
    }
    Ok(text)
}

/// The control socket named by a config, without reading any key (for
/// `mlvpn-rs status`, which must not need the private key).
pub fn control_socket_of(file: &Path) -> Result<PathBuf, ConfigError> {
    #[derive(Deserialize)]
    struct Iface {
        name: Option<String>,
        control_socket: Option<String>,
    }
    #[derive(Deserialize)]
    struct Top {
        interface: Option<Iface>,
    }
    let text = read_text(file)?;
    let cx = Ctx { file, text: &text };
    let top: Top = toml::from_str(&text).map_err(|e| cx.syntax_error(&e))?;
    let iface = top.interface.ok_or_else(|| ConfigError {
        file: file.to_path_buf(),
        line: None,
        message: "no [interface]".into(),
    })?;
    Ok(match (iface.control_socket, iface.name) {
        (Some(s), _) => resolve(file, &s),
        (None, Some(n)) => PathBuf::from(format!("/run/mlvpn-rs/{n}.sock")),
        (None, None) => {
            return Err(ConfigError {
                file: file.to_path_buf(),
                line: None,
                message: "no interface.name".into(),
            })
        }
    })
}
