//! The man pages are valid mdoc: `mandoc -T lint` reports nothing at warning
//! level or above. Needs mandoc (Debian package `mandoc`; CI installs it).

use std::path::Path;
use std::process::Command;

#[test]
fn man_pages_are_mandoc_lint_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let pages = [dir.join("mlvpn-rs.8"), dir.join("mlvpn-rs.conf.5")];
    let out = match Command::new("mandoc")
        .args(["-T", "lint", "-W", "warning"])
        .args(&pages)
        .output()
    {
        Ok(out) => out,
        Err(e) if !std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false")) => {
            eprintln!(
                "SKIPPED man_pages_are_mandoc_lint_clean: mandoc not runnable ({e}); apt install mandoc"
            );
            return;
        }
        Err(e) => panic!("mandoc is required in CI: {e}"),
    };
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "mandoc -T lint:\n{report}"
    );
}
