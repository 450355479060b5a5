//! The worker's chroot: an empty directory the parent prepares (creating
//! what is missing) before the worker exists. It is walked one component
//! at a time from `/` without following a symbolic link anywhere (a link
//! there could point the worker's root, or a chmod, somewhere else), every
//! directory on the way must be root's and not writable by others, and the
//! chroot itself must be root's before its mode is touched.

use std::os::fd::OwnedFd;
use std::path::{Component, Path};

use mlvpn_privsep::trusted_file;
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag, AT_FDCWD};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, Mode, SFlag};

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
pub fn prepare(dir: &Path) -> Result<(), String> {
    let fail = |what: String| format!("chroot {}: {what}", dir.display());
    let mut names = Vec::new();
    for c in dir.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(n) => names.push(n),
            _ => return Err(fail("expected an absolute path without . or ..".into())),
        }
    }
    if !dir.is_absolute() || names.is_empty() {
        return Err(fail(
            "expected an absolute path to an empty directory (not /)".into(),
        ));
    }
    let mut fd = openat(
        AT_FDCWD,
        "/",
        OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
        Mode::empty(),
    )
    .map_err(|e| fail(format!("/: {e}")))?;
    let mut walked = std::path::PathBuf::from("/");
    for (i, name) in names.iter().enumerate() {
        let last = i + 1 == names.len();
        walked.push(name);
        let shown = walked.display();
        let next = match open_dir(&fd, Path::new(name)) {
            Ok(next) => next,
            Err(Errno::ENOENT) => {
                match mkdirat(&fd, Path::new(name), Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(fail(format!("cannot create {shown}: {e}"))),
                }
                open_dir(&fd, Path::new(name)).map_err(|e| fail(format!("{shown}: {e}")))?
            }
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                let link = fstatat(&fd, Path::new(name), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK);
                return Err(fail(if link {
                    format!("{shown} is a symbolic link; refusing to follow it (make it a real directory owned by root)")
                } else {
                    format!("{shown} is not a directory")
                }));
            }
            Err(e) => return Err(fail(format!("{shown}: {e}"))),
        };
        let meta = std::fs::File::from(next.try_clone().map_err(|e| fail(format!("{shown}: {e}")))?)
            .metadata()
            .map_err(|e| fail(format!("{shown}: {e}")))?;
        if !last {
            trusted_file::check_metadata("directory above the chroot", &walked, &meta)
                .map_err(|e| fail(e.to_string()))?;
        }
        fd = next;
    }
    let st = fstat(&fd).map_err(|e| fail(e.to_string()))?;
    if st.st_uid != 0 {
        return Err(fail(format!(
            "owned by uid {}, not by root (mode {:04o}); chown root {} or use another chroot",
            st.st_uid,
            st.st_mode & 0o7777,
            dir.display()
        )));
    }
    if st.st_mode & 0o022 != 0 {
        fchmod(&fd, Mode::from_bits_truncate(0o755)).map_err(|e| fail(e.to_string()))?;
    }
    let mut entries = nix::dir::Dir::from_fd(fd).map_err(|e| fail(e.to_string()))?;
    for entry in entries.iter() {
        let entry = entry.map_err(|e| fail(e.to_string()))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            return Err(fail("not empty; the worker must find nothing there".into()));
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
        let e = prepare(&dir).unwrap_err();
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
        let e = prepare(&link).unwrap_err();
        assert!(
            e.contains(&format!("{} is a symbolic link", link.display())),
            "{e}"
        );
        let e = prepare(&link.join("empty")).unwrap_err();
        assert!(
            e.contains(&format!("{} is a symbolic link", link.display())),
            "{e}"
        );
        assert!(!real.join("empty").exists(), "nothing created through the link");
        // A link to a file, and a file.
        std::fs::write(base.path().join("f"), "").unwrap();
        let e = prepare(&base.path().join("f")).unwrap_err();
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
        let e = prepare(&dir).unwrap_err();
        assert!(e.contains("owned by uid 65534, not by root (mode 0777)"), "{e}");
        assert_eq!(mode(&dir), 0o777, "refused before its mode was touched");
        // A parent someone else created.
        let theirs = base.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        nix::unistd::chown(&theirs, nobody, None).unwrap();
        let e = prepare(&theirs.join("empty")).unwrap_err();
        assert!(
            e.contains("directory above the chroot") && e.contains("uid 65534"),
            "{e}"
        );
        assert!(!theirs.join("empty").exists());
    }
}
