//! Dropping privileges in the worker, and proving it happened.
//!
//! Order matters: the bounding set can only be cleared while we still have
//! CAP_SETPCAP (i.e. before setuid), and the user is resolved by the parent
//! (no /etc/passwd in the chroot).

use std::path::Path;

use nix::unistd::{chdir, chroot, setgroups, setresgid, setresuid, Gid, Uid, User};
use thiserror::Error;

use crate::startup::{StartupFailure, StartupStep};

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
    #[error("looking up user: {0}")]
    Lookup(#[source] std::io::Error),
    #[error("{step}: {source}")]
    Sys {
        step: StartupStep,
        #[source]
        source: std::io::Error,
    },
    #[error("privilege drop did not hold: {0}")]
    Verify(String),
}

impl DropError {
    /// What the worker reports to the parent: the step and its errno.
    pub fn startup_failure(&self) -> StartupFailure {
        match self {
            DropError::Sys { step, source } => StartupFailure::from_io(*step, source),
            DropError::NoUser(_) | DropError::Root(_) | DropError::Lookup(_) => StartupFailure {
                step: StartupStep::Settings,
                errno: 0,
            },
            DropError::Verify(_) => StartupFailure {
                step: StartupStep::Verify,
                errno: 0,
            },
        }
    }
}

fn sys<E: Into<std::io::Error>>(step: StartupStep) -> impl FnOnce(E) -> DropError {
    move |e| DropError::Sys {
        step,
        source: e.into(),
    }
}

/// Resolves `user` (in the parent, before any chroot). Refuses root.
pub fn lookup(user: &str) -> Result<Identity, DropError> {
    let u = User::from_name(user)
        .map_err(|e| DropError::Lookup(e.into()))?
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
    chroot(root).map_err(sys(StartupStep::Chroot))?;
    chdir("/").map_err(sys(StartupStep::Chdir))?;
    os::clear_bounding_set()?;
    let (uid, gid) = (Uid::from_raw(id.uid), Gid::from_raw(id.gid));
    setgroups(&[gid]).map_err(sys(StartupStep::Setgroups))?;
    setresgid(gid, gid, gid).map_err(sys(StartupStep::Setresgid))?;
    setresuid(uid, uid, uid).map_err(sys(StartupStep::Setresuid))?;
    os::no_new_privs_and_clear_capabilities()?;
    verify(id)
}

/// Checks that the drop holds: ids, every capability set empty,
/// no_new_privs, and that regaining root fails.
pub fn verify(id: Identity) -> Result<(), DropError> {
    let r = nix::unistd::getresuid().map_err(sys(StartupStep::Verify))?;
    let g = nix::unistd::getresgid().map_err(sys(StartupStep::Verify))?;
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

// Unsafe: prctl(2) and capset(2) have no safe wrapper for what is done here.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod os {
    use caps::CapSet;

    use super::DropError;
    use crate::startup::StartupStep;

    /// The errno of the call just made, as a drop error of `step`.
    fn last_error(step: StartupStep) -> DropError {
        DropError::Sys {
            step,
            source: std::io::Error::last_os_error(),
        }
    }

    /// Drops every capability still in the bounding set. Needs CAP_SETPCAP
    /// (a service manager must leave it in the set): call before giving up
    /// root. Direct prctl calls, so the failure keeps its errno.
    pub fn clear_bounding_set() -> Result<(), DropError> {
        let held = caps::read(None, CapSet::Bounding).map_err(|e| DropError::Sys {
            step: StartupStep::BoundingSet,
            source: std::io::Error::other(e.to_string()),
        })?;
        for cap in held {
            // SAFETY: prctl with integer arguments only.
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap.index()), 0, 0, 0) };
            if r != 0 {
                return Err(last_error(StartupStep::BoundingSet));
            }
        }
        Ok(())
    }

    /// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
    const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: libc::c_int,
    }

    #[repr(C)]
    #[derive(Clone, Copy)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }

    pub fn no_new_privs_and_clear_capabilities() -> Result<(), DropError> {
        nix::sys::prctl::set_no_new_privs().map_err(|e| DropError::Sys {
            step: StartupStep::NoNewPrivs,
            source: e.into(),
        })?;
        let mut header = CapHeader {
            version: CAPABILITY_VERSION_3,
            pid: 0,
        };
        let empty = [CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        // SAFETY: a version-3 header and the two data words capset(2) reads for it, alive for the call.
        let r = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut CapHeader, empty.as_ptr()) };
        if r != 0 {
            return Err(last_error(StartupStep::ClearCapabilities));
        }
        // SAFETY: prctl with integer arguments only.
        let r = unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) };
        if r != 0 {
            return Err(last_error(StartupStep::ClearCapabilities));
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
