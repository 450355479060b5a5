//! Dropping privileges in the worker, and proving it happened.
//!
//! Order matters: the bounding set can only be cleared while we still have
//! CAP_SETPCAP (i.e. before setuid), and the user is resolved by the parent
//! (no /etc/passwd in the chroot).

use std::path::Path;

use nix::unistd::{chdir, chroot, setgroups, setresgid, setresuid, Gid, Uid, User};
use thiserror::Error;

/// The unprivileged identity the worker runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Error)]
pub enum DropError {
    #[error("user \"{0}\" does not exist")]
    NoUser(String),
    #[error("user \"{0}\" is root; the worker must run as an unprivileged user")]
    Root(String),
    #[error("{step}: {source}")]
    Sys {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("privilege drop did not hold: {0}")]
    Verify(String),
}

fn sys<E: Into<std::io::Error>>(step: &'static str) -> impl FnOnce(E) -> DropError {
    move |e| DropError::Sys {
        step,
        source: e.into(),
    }
}

/// Resolves `user` (in the parent, before any chroot). Refuses root.
pub fn lookup(user: &str) -> Result<Identity, DropError> {
    let u = User::from_name(user)
        .map_err(sys("looking up user"))?
        .ok_or_else(|| DropError::NoUser(user.to_string()))?;
    if u.uid.is_root() || u.gid.as_raw() == 0 {
        return Err(DropError::Root(user.to_string()));
    }
    Ok(Identity {
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
    })
}

/// chroot, clear the bounding set, switch groups/gid/uid, no_new_privs, clear
/// every remaining capability set, then verify. Any failure is fatal.
pub fn drop_privileges(id: Identity, root: &Path) -> Result<(), DropError> {
    if id.uid == 0 || id.gid == 0 {
        return Err(DropError::Root(format!("uid {}", id.uid)));
    }
    chroot(root).map_err(sys("chroot"))?;
    chdir("/").map_err(sys("chdir /"))?;
    os::clear_bounding_set()?;
    let (uid, gid) = (Uid::from_raw(id.uid), Gid::from_raw(id.gid));
    setgroups(&[gid]).map_err(sys("setgroups"))?;
    setresgid(gid, gid, gid).map_err(sys("setresgid"))?;
    setresuid(uid, uid, uid).map_err(sys("setresuid"))?;
    os::no_new_privs_and_clear_capabilities()?;
    verify(id)
}

/// Checks that the drop holds: ids, every capability set empty,
/// no_new_privs, and that regaining root fails.
pub fn verify(id: Identity) -> Result<(), DropError> {
    let r = nix::unistd::getresuid().map_err(sys("getresuid"))?;
    let g = nix::unistd::getresgid().map_err(sys("getresgid"))?;
    for (what, v) in [
        ("ruid", r.real.as_raw()),
        ("euid", r.effective.as_raw()),
        ("suid", r.saved.as_raw()),
    ] {
        if v != id.uid {
            return Err(DropError::Verify(format!("{what} is {v}")));
        }
    }
    for v in [g.real.as_raw(), g.effective.as_raw(), g.saved.as_raw()] {
        if v != id.gid {
            return Err(DropError::Verify(format!("gid is {v}")));
        }
    }
    os::verify_no_capabilities()?;
    if setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).is_ok() {
        return Err(DropError::Verify("setuid(0) succeeded".into()));
    }
    Ok(())
}

#[cfg(target_os = "linux")]
mod os {
    use caps::CapSet;

    use super::DropError;

    fn caps_err(step: &'static str) -> impl FnOnce(caps::errors::CapsError) -> DropError {
        move |e| DropError::Sys {
            step,
            source: std::io::Error::other(e.to_string()),
        }
    }

    /// Needs CAP_SETPCAP: call before giving up root.
    pub fn clear_bounding_set() -> Result<(), DropError> {
        caps::clear(None, CapSet::Bounding).map_err(caps_err("clearing bounding set"))
    }

    pub fn no_new_privs_and_clear_capabilities() -> Result<(), DropError> {
        nix::sys::prctl::set_no_new_privs().map_err(|e| DropError::Sys {
            step: "no_new_privs",
            source: e.into(),
        })?;
        for set in [
            CapSet::Effective,
            CapSet::Permitted,
            CapSet::Inheritable,
            CapSet::Ambient,
        ] {
            caps::clear(None, set).map_err(caps_err("clearing capabilities"))?;
        }
        Ok(())
    }

    pub fn verify_no_capabilities() -> Result<(), DropError> {
        for set in [
            CapSet::Effective,
            CapSet::Permitted,
            CapSet::Inheritable,
            CapSet::Ambient,
            CapSet::Bounding,
        ] {
            let held = caps::read(None, set).map_err(|e| DropError::Verify(e.to_string()))?;
            if !held.is_empty() {
                return Err(DropError::Verify(format!(
                    "{set:?} capabilities remain: {held:?}"
                )));
            }
        }
        if !nix::sys::prctl::get_no_new_privs().unwrap_or(false) {
            return Err(DropError::Verify("no_new_privs is not set".into()));
        }
        Ok(())
    }
}

/// The BSDs have no capability sets: a non-root uid in a chroot is the
/// baseline; pledge(2) / capsicum(4) belong here (not written yet).
#[cfg(not(target_os = "linux"))]
mod os {
    use super::DropError;

    pub fn clear_bounding_set() -> Result<(), DropError> {
        Ok(())
    }

    pub fn no_new_privs_and_clear_capabilities() -> Result<(), DropError> {
        Ok(())
    }

    pub fn verify_no_capabilities() -> Result<(), DropError> {
        Ok(())
    }
}
