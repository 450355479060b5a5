//! Value checks shared by the sections: names, numbers written either
//! way, CIDR lists, paths relative to the config file.

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use toml::Spanned;

use super::context::Ctx;
use super::ConfigError;

/// 1..=`max` bytes of `[A-Za-z0-9_.-]` (interface and path names).
pub(super) fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
}

/// The text of a value written as a string or an integer (`mtu = 1400`
/// and `mtu = "1400"` alike).
pub(super) fn value_text(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

/// A list of CIDRs; the first bad one is reported as `KEY: ...`.
pub(super) fn parse_cidrs(
    cx: &Ctx<'_>,
    key: &str,
    list: &[Spanned<String>],
) -> Result<Vec<IpNet>, ConfigError> {
    list.iter()
        .map(|s| {
            s.get_ref().parse::<IpNet>().or_else(|_| {
                cx.err(
                    s.span(),
                    format!(
                        "{key}: \"{}\" is not a CIDR; expected e.g. \"10.42.0.2/30\" or \"fd00::2/64\"",
                        s.get_ref()
                    ),
                )
            })
        })
        .collect()
}

/// Relative paths in a config are relative to the config file's directory.
pub(super) fn resolve(config_file: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    config_file
        .parent()
        .map(|d| d.join(p))
        .unwrap_or_else(|| p.to_path_buf())
}
