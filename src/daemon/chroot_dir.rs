//! The worker's chroot: an empty directory the parent prepares (creating
//! what is missing) before the worker exists. It is walked one component
//! at a time from `/` without following a symbolic link anywhere (a link
//! there could point the worker's root, or a chmod, somewhere else), every
//! directory on the way must be root's and not writable by others, and the
//! chroot itself must be root's before its mode is touched.

use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use mlvpn_privsep::trusted_file;
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag, AT_FDCWD};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, Mode, SFlag};

/// The chroot cannot be used: which one, and why.
#[derive(Debug, thiserror::Error)]
#[error("chroot {}: {problem}", dir.display())]
pub struct ChrootError {
    pub dir: PathBuf,
    pub problem: ChrootProblem,
}

#[derive(Debug, thiserror::Error)]
pub enum ChrootProblem {
    #[error("expected an absolute path without . or ..")]
    NotNormal,
    #[error("expected an absolute path to an empty directory (not /)")]
    NotAbsolute,
    #[error("cannot create {}: {errno}", path.display())]
    Create { path: PathBuf, errno: Errno },
    #[error("{} is a symbolic link; refusing to follow it (make it a real directory owned by root)", .0.display())]
    SymbolicLink(PathBuf),
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("{}: {errno}", path.display())]
    Open { path: PathBuf, errno: Errno },
    #[error("{}: {error}", path.display())]
    Metadata { path: PathBuf, error: std::io::Error },
    /// A directory above the chroot that others could change (privsep's
    /// message).
    #[error("{0}")]
    Untrusted(String),
    #[error("owned by uid {uid}, not by root (mode {mode:04o}); chown root {} or use another chroot", dir.display())]
    NotOwnedByRoot { uid: u32, mode: u32, dir: PathBuf },
    #[error("{0}")]
    Errno(Errno),
    #[error("not empty; the worker must find nothing there")]
    NotEmpty,
}

fn open_dir(parent: &OwnedFd, name: &Path) -> nix::Result<OwnedFd> {
    openat(
        parent,
        name,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
        Mode::empty(),
    )
}

/// Creates `dir` if missing (mode 0755, root's), refuses a symbolic link at
/// it or above it, a directory of another owner (before any chmod), one
/// others can write above it, and a chroot that is not empty; a root-owned
/// chroot that others can write is set back to 0755.
pub fn prepare(dir: &Path) -> Result<(), ChrootError> {
    let fail = |problem: ChrootProblem| ChrootError {
        dir: dir.to_path_buf(),
        problem,
    };
    let mut names = Vec::new();
    for c in dir.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(n) => names.push(n),
            _ => return Err(fail(ChrootProblem::NotNormal)),
        }
    }
    if !dir.is_absolute() || names.is_empty() {
        return Err(fail(ChrootProblem::NotAbsolute));
    }
    let root = openat(
        AT_FDCWD,
        "/",
        OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
        Mode::empty(),
    )
    .map_err(|errno| {
        fail(ChrootProblem::Open {
            path: "/".into(),
            errno,
        })
    })?;
    let fd = walk(root, &names).map_err(fail)?;
    check_chroot(fd, dir).map_err(fail)
}

/// Opens each of `names` in turn from `fd` (creating what is missing),
/// checking every directory above the last; returns the last one.
fn walk(mut fd: OwnedFd, names: &[&std::ffi::OsStr]) -> Result<OwnedFd, ChrootProblem> {
    let mut walked = PathBuf::from("/");
    for (i, name) in names.iter().enumerate() {
        let last = i + 1 == names.len();
        walked.push(name);
        let at = |errno| ChrootProblem::Open {
            path: walked.clone(),
            errno,
        };
        let next = match open_dir(&fd, Path::new(name)) {
            Ok(next) => next,
            Err(Errno::ENOENT) => {
                match mkdirat(&fd, Path::new(name), Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(errno) => {
                        return Err(ChrootProblem::Create {
                            path: walked.clone(),
                            errno,
                        })
                    }
                }
                open_dir(&fd, Path::new(name)).map_err(at)?
            }
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                let link = fstatat(&fd, Path::new(name), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK);
                return Err(if link {
                    ChrootProblem::SymbolicLink(walked.clone())
                } else {
                    ChrootProblem::NotADirectory(walked.clone())
                });
            }
            Err(e) => return Err(at(e)),
        };
        let metadata = |error| ChrootProblem::Metadata {
            path: walked.clone(),
            error,
        };
        let meta = std::fs::File::from(next.try_clone().map_err(metadata)?)
            .metadata()
            .map_err(metadata)?;
        if !last {
            trusted_file::check_metadata("directory above the chroot", &walked, &meta)
                .map_err(|e| ChrootProblem::Untrusted(e.to_string()))?;
        }
        fd = next;
    }
    Ok(fd)
}

/// The chroot itself: root's (before its mode is touched), not writable by
/// others (made so), and empty.
fn check_chroot(fd: OwnedFd, dir: &Path) -> Result<(), ChrootProblem> {
    let st = fstat(&fd).map_err(ChrootProblem::Errno)?;
    if st.st_uid != 0 {
        return Err(ChrootProblem::NotOwnedByRoot {
            uid: st.st_uid,
            // st_mode is a u16 on the BSDs.
            #[allow(clippy::useless_conversion)]
            mode: u32::from(st.st_mode) & 0o7777,
            dir: dir.to_path_buf(),
        });
    }
    if st.st_mode & 0o022 != 0 {
        fchmod(&fd, Mode::from_bits_truncate(0o755)).map_err(ChrootProblem::Errno)?;
    }
    let mut entries = nix::dir::Dir::from_fd(fd).map_err(ChrootProblem::Errno)?;
    for entry in entries.iter() {
        let entry = entry.map_err(ChrootProblem::Errno)?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            return Err(ChrootProblem::NotEmpty);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;
    use crate::test_support::can_chown;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_missing_chroot_is_created_and_a_root_owned_one_tightened() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("run/empty");
        prepare(&dir).unwrap();
        assert!(dir.is_dir());
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        if nix::unistd::geteuid().is_root() {
            prepare(&dir).unwrap();
            assert_eq!(mode(&dir), 0o755);
        }
        std::fs::write(dir.join("x"), "").unwrap();
        let e = prepare(&dir).unwrap_err().to_string();
        assert!(
            e.ends_with("not empty; the worker must find nothing there"),
            "{e}"
        );
    }

    #[test]
    fn a_symbolic_link_at_or_above_the_chroot_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let real = base.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = prepare(&link).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{} is a symbolic link", link.display())),
            "{e}"
        );
        let e = prepare(&link.join("empty")).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{} is a symbolic link", link.display())),
            "{e}"
        );
        assert!(!real.join("empty").exists(), "nothing created through the link");
        // A link to a file, and a file.
        std::fs::write(base.path().join("f"), "").unwrap();
        let e = prepare(&base.path().join("f")).unwrap_err().to_string();
        assert!(e.ends_with("is not a directory"), "{e}");
    }

    #[test]
    fn a_chroot_or_parent_of_another_owner_is_refused_before_any_chmod() {
        if !can_chown("a_chroot_or_parent_of_another_owner_is_refused_before_any_chmod") {
            return;
        }
        let nobody = Some(nix::unistd::Uid::from_raw(65534));
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("empty");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        nix::unistd::chown(&dir, nobody, None).unwrap();
        let e = prepare(&dir).unwrap_err().to_string();
        assert!(e.contains("owned by uid 65534, not by root (mode 0777)"), "{e}");
        assert_eq!(mode(&dir), 0o777, "refused before its mode was touched");
        // A parent someone else created.
        let theirs = base.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        nix::unistd::chown(&theirs, nobody, None).unwrap();
        let e = prepare(&theirs.join("empty")).unwrap_err().to_string();
        assert!(
            e.contains("directory above the chroot") && e.contains("uid 65534"),
            "{e}"
        );
        assert!(!theirs.join("empty").exists());
    }
}
