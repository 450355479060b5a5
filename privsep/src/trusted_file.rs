//! Files root acts on — the config, the private key, hook scripts — must
//! be root's own: owned by root (or by the user the daemon runs as) and
//! not writable by group or others, and neither may any directory above
//! them be writable by another user (a root-owned sticky directory such as
//! /tmp excepted, as ssh's StrictModes does). Otherwise another user could
//! make the root parent read their config or run their script.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Untrusted {
    #[error(
        "{what} {path} is owned by uid {uid} (mode {mode:04o}), not by root: \
         chown root {path}"
    )]
    Owner {
        what: String,
        path: PathBuf,
        uid: u32,
        mode: u32,
    },
    #[error(
        "{what} {path} (owner uid {uid}, mode {mode:04o}) is writable by group or others: \
         chmod go-w {path}"
    )]
    Writable {
        what: String,
        path: PathBuf,
        uid: u32,
        mode: u32,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == nix::unistd::geteuid().as_raw()
}

/// Checks one file or directory's owner and mode (`meta` from `fstat` of
/// the open file, or `lstat`). `what` names it in the message ("config
/// file", "directory above the config file").
pub fn check_metadata(what: &str, path: &Path, meta: &Metadata) -> Result<(), Untrusted> {
    let (uid, mode) = (meta.uid(), meta.mode() & 0o7777);
    if !trusted_owner(uid) {
        return Err(Untrusted::Owner {
            what: what.into(),
            path: path.into(),
            uid,
            mode,
        });
    }
    // A sticky directory lets nobody replace another owner's entries.
    let sticky_dir = meta.is_dir() && mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky_dir {
        return Err(Untrusted::Writable {
            what: what.into(),
            path: path.into(),
            uid,
            mode,
        });
    }
    Ok(())
}

/// Checks every directory above `path` (after resolving symbolic links in
/// them) up to `/`.
pub fn check_parents(what: &str, path: &Path) -> Result<(), Untrusted> {
    let io = |p: &Path, source| Untrusted::Io {
        what: format!("directory above the {what}"),
        path: p.into(),
        source,
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = std::fs::canonicalize(parent).map_err(|e| io(parent, e))?;
    for d in dir.ancestors() {
        let meta = std::fs::symlink_metadata(d).map_err(|e| io(d, e))?;
        check_metadata(&format!("directory above the {what}"), d, &meta)?;
    }
    Ok(())
}

/// Checks a file (following a symbolic link at `path`, whose target is
/// what gets read) and the directories above it.
pub fn check_path(what: &str, path: &Path) -> Result<(), Untrusted> {
    let meta = std::fs::metadata(path).map_err(|source| Untrusted::Io {
        what: what.into(),
        path: path.into(),
        source,
    })?;
    check_metadata(what, path, &meta)?;
    check_parents(what, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn an_own_file_that_only_its_owner_writes_is_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "x").unwrap();
        chmod(&f, 0o644);
        check_path("config file", &f).unwrap();
        // Relative to the working directory too.
        assert!(check_parents("config file", Path::new("c.toml")).is_ok());
    }

    #[test]
    fn group_or_world_writable_files_and_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("up.sh");
        std::fs::write(&f, "x").unwrap();
        chmod(&f, 0o775);
        let e = check_path("hook script", &f).unwrap_err().to_string();
        assert!(e.contains("is writable by group or others"), "{e}");
        assert!(
            e.contains("mode 0775") && e.contains(&format!("chmod go-w {}", f.display())),
            "{e}"
        );
        chmod(&f, 0o755);
        chmod(dir.path(), 0o777);
        let e = check_path("hook script", &f).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "directory above the hook script {}",
                dir.path().display()
            )),
            "{e}"
        );
        // Sticky, like /tmp: others cannot replace what is not theirs.
        chmod(dir.path(), 0o1777);
        check_path("hook script", &f).unwrap();
    }

    #[test]
    fn a_file_or_directory_of_another_user_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
            assert!(
                !ci,
                "a_file_or_directory_of_another_user_is_refused needs root under CI=true"
            );
            eprintln!("SKIPPED a_file_or_directory_of_another_user_is_refused: needs root (chown)");
            return;
        }
        let nobody = nix::unistd::Uid::from_raw(65534);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "x").unwrap();
        chmod(&f, 0o644);
        nix::unistd::chown(&f, Some(nobody), None).unwrap();
        let e = check_path("config file", &f).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "config file {0} is owned by uid 65534 (mode 0644), not by root: chown root {0}",
                f.display()
            )
        );
        nix::unistd::chown(&f, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
        nix::unistd::chown(dir.path(), Some(nobody), None).unwrap();
        let e = check_path("config file", &f).unwrap_err().to_string();
        assert!(
            e.contains("directory above the config file") && e.contains("uid 65534"),
            "{e}"
        );
    }
}
