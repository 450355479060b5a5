//! The config file as serde reads it: every value keeps its source span
//! (`toml::Spanned`) so that the checks in the sibling modules can name
//! the line of the key they are about.

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub mode: Spanned<String>,
    pub interface: Spanned<RawInterface>,
    #[serde(default)]
    pub peer: Vec<Spanned<RawPeer>>,
    #[serde(default)]
    pub path: Vec<Spanned<RawPath>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInterface {
    pub name: Spanned<String>,
    pub address: Spanned<Vec<Spanned<String>>>,
    pub private_key_file: Spanned<String>,
    pub user: Option<Spanned<String>>,
    pub chroot: Option<Spanned<String>>,
    pub up_script: Option<Spanned<String>>,
    pub down_script: Option<Spanned<String>>,
    pub hook_timeout: Option<Spanned<toml::Value>>,
    pub control_socket: Option<Spanned<String>>,
    pub mtu: Option<Spanned<toml::Value>>,
    pub keepalive: Option<Spanned<toml::Value>>,
    pub path_timeout: Option<Spanned<toml::Value>>,
    pub rekey_after: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPeer {
    pub public_key: Spanned<String>,
    pub allowed_ips: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPath {
    pub name: Spanned<String>,
    pub bind: Spanned<String>,
    pub endpoint: Option<Spanned<String>>,
    pub bandwidth_up: Option<Spanned<toml::Value>>,
    pub device: Option<Spanned<String>>,
    pub fallback: Option<Spanned<bool>>,
}

/// The keys the parser accepts, per table (`""` = top level), read from the
/// raw structs themselves: the man page test compares them with the
/// documented ones.
#[cfg(test)]
pub(in crate::config) fn accepted_keys() -> Vec<(&'static str, &'static [&'static str])> {
    use serde::de::{self, Visitor};

    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Stop
        }
    }
    /// A deserializer that only records the field list of the struct asked for.
    struct Grab(Option<&'static [&'static str]>);
    impl<'de> de::Deserializer<'de> for &mut Grab {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    fn fields<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
        let mut g = Grab(None);
        let _ = T::deserialize(&mut g);
        g.0.expect("a struct")
    }
    vec![
        ("", &["mode"][..]),
        ("interface", fields::<RawInterface>()),
        ("peer", fields::<RawPeer>()),
        ("path", fields::<RawPath>()),
    ]
}
