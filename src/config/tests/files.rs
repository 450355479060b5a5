//! Reading config and key files: missing, too large, or not root's own.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::{client, key_dir};
use crate::config::Config;
use crate::test_support::can_chown;

#[test]
fn group_readable_key_is_refused() {
    let dir = key_dir();
    let key = dir.path().join("k");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = Config::parse(&client(), &dir.path().join("c.toml")).unwrap_err();
    assert_eq!(e.line, Some(5));
    let shown = e.to_string();
    assert!(shown.contains("interface.private_key_file: "), "{shown}");
    assert!(
        shown.contains("readable by group or others (mode 0644)"),
        "{shown}"
    );
    assert!(shown.contains(&format!("chmod 600 {}", key.display())), "{shown}");
}

#[test]
fn load_reads_the_file_and_reports_missing_ones() {
    let dir = key_dir();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, client()).unwrap();
    assert_eq!(Config::load(&file).unwrap().file, file);
    let e = Config::load(&dir.path().join("nope.toml")).unwrap_err();
    assert_eq!(e.line, None);
    assert!(e.to_string().contains("nope.toml: cannot open"), "{e}");
    assert_eq!(
        crate::config::control_socket_of(&file).unwrap(),
        PathBuf::from("/run/mlvpn-rs/mlvpn0.sock")
    );
}

#[test]
fn a_file_over_16_mib_is_refused_clearly() {
    let dir = key_dir();
    let file = dir.path().join("huge.toml");
    let mut text = client();
    text += &"#".repeat(crate::config::MAX_CONFIG_FILE);
    std::fs::write(&file, text).unwrap();
    let e = Config::load(&file).unwrap_err();
    assert_eq!(e.line, None);
    assert!(
        e.to_string().ends_with("larger than 16 MiB; not a config file"),
        "{e}"
    );
}

#[test]
fn a_config_or_key_others_could_write_is_refused_with_what_to_do() {
    let dir = key_dir();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, client()).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).unwrap();
    let e = Config::load(&file).unwrap_err().to_string();
    assert!(
        e.contains("config file")
            && e.contains("mode 0664")
            && e.contains(&format!("chmod go-w {}", file.display())),
        "{e}"
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    Config::load(&file).unwrap();
    // The key's directory writable by others: the key could be replaced.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = Config::load(&file).unwrap_err().to_string();
    assert!(e.contains("directory above the config file"), "{e}");
}

#[test]
fn a_config_or_key_owned_by_another_user_is_refused() {
    if !can_chown("a_config_or_key_owned_by_another_user_is_refused") {
        return;
    }
    let dir = key_dir();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, client()).unwrap();
    let nobody = Some(nix::unistd::Uid::from_raw(65534));
    nix::unistd::chown(&file, nobody, None).unwrap();
    let e = Config::load(&file).unwrap_err().to_string();
    assert!(
        e.contains(&format!("config file {} is owned by uid 65534", file.display()))
            && e.contains(&format!("chown root {}", file.display())),
        "{e}"
    );
    nix::unistd::chown(&file, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
    let key = dir.path().join("k");
    nix::unistd::chown(&key, nobody, None).unwrap();
    let e = Config::load(&file).unwrap_err();
    assert_eq!(e.line, Some(5), "{e}");
    assert!(e.to_string().contains("is owned by uid 65534"), "{e}");
}
