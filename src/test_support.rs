//! Helpers shared by unit tests.

/// Keys, tunnel configs and packets shared with the simulation and fuzz
/// tests (its module doc says why it is included this way).
#[path = "../tests/fixtures/mod.rs"]
pub mod fixtures;

/// chown needs root; under CI=true not being root fails the test instead of
/// skipping it, so a green CI means it ran.
pub fn can_chown(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
    assert!(!ci, "{test} needs root (chown) under CI=true");
    eprintln!("SKIPPED {test}: needs root (chown)");
    false
}
