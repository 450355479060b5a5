//! mlvpn-rs.conf(5) documents exactly the keys and defaults the parser
//! has.

use std::path::Path;

use super::{client, key_dir};
use crate::config::Config;

/// Keys documented in man/mlvpn-rs.conf.5, per table, with the `.Ql` default
/// when the page gives one: (table, key, default).
fn documented_keys() -> Vec<(String, String, Option<String>)> {
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man/mlvpn-rs.conf.5"))
        .expect("man/mlvpn-rs.conf.5");
    let mut table = None;
    let mut keys: Vec<(String, String, Option<String>)> = Vec::new();
    let mut lines = page.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(title) = line.strip_prefix(".Ss ") {
            table = Some(if title.contains("[interface]") {
                "interface"
            } else if title.contains("[[peer]]") {
                "peer"
            } else if title.contains("[[path]]") {
                "path"
            } else {
                ""
            });
        } else if let (Some(t), Some(rest)) = (table, line.strip_prefix(".It Cm ")) {
            let key = rest.split_whitespace().next().unwrap().to_string();
            keys.push((t.to_string(), key, None));
        } else if line.starts_with("Default") && line.ends_with(':') {
            if let Some(v) = lines.peek().and_then(|l| l.strip_prefix(".Ql ")) {
                let v = v.trim_end_matches(" .").to_string();
                keys.last_mut().expect("a default follows a key").2 = Some(v);
            }
        } else if line.starts_with(".Sh ") && table.is_some() {
            table = None;
        }
    }
    keys
}

#[test]
fn man_page_documents_exactly_the_accepted_keys() {
    let documented: std::collections::BTreeSet<(String, String)> =
        documented_keys().into_iter().map(|(t, k, _)| (t, k)).collect();
    let accepted: std::collections::BTreeSet<(String, String)> = crate::config::parse::accepted_keys()
        .into_iter()
        .flat_map(|(t, ks)| ks.iter().map(move |k| (t.to_string(), k.to_string())))
        .collect();
    let undocumented: Vec<_> = accepted.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&accepted).collect();
    assert!(
        undocumented.is_empty(),
        "keys missing from mlvpn-rs.conf(5): {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "mlvpn-rs.conf(5) documents keys the parser refuses: {unknown:?}"
    );
    assert!(accepted.len() >= 20, "{accepted:?}");
}

#[test]
fn documented_defaults_are_the_code_defaults() {
    // Setting a key to its documented default must change nothing.
    let dir = key_dir();
    let parse_here = |text: &str| format!("{:?}", Config::parse(text, &dir.path().join("c.toml")).unwrap());
    let mut checked = 0;
    for (table, key, default) in documented_keys() {
        let Some(default) = default else { continue };
        let value = match key.as_str() {
            "fallback" => default.clone(),
            "allowed_ips" => format!(
                "[{}]",
                default
                    .split(", ")
                    .map(|v| format!("\"{v}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => format!("\"{default}\""),
        };
        // The base client without the key, and with it set to the default.
        let base: String = client()
            .lines()
            .filter(|l| !l.starts_with(&format!("{key} =")))
            .map(|l| format!("{l}\n"))
            .collect();
        let header = match table.as_str() {
            "interface" => "[interface]\n",
            "peer" => "[[peer]]\n",
            "path" => "[[path]]\n",
            t => panic!("default documented for top-level key {t}.{key}"),
        };
        let with = base.replacen(header, &format!("{header}{key} = {value}\n"), 1);
        assert_eq!(
            parse_here(&base),
            parse_here(&with),
            "documented default of {table}.{key}: {value}"
        );
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} defaults checked");
}
