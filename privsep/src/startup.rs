//! What a worker that fails before it runs tells the parent: the step and
//! the errno, as two fixed-size fields the parent checks and turns into text
//! (`worker: dropping the capability bounding set: EPERM`). Without it the
//! parent saw only the channel close, and under a service manager the
//! worker's own last log line is easy to miss.

use std::fmt;

use nix::errno::Errno;

/// Start-up steps of the worker, in order. The code is the wire value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupStep {
    Handover = 1,
    Chroot = 2,
    Chdir = 3,
    BoundingSet = 4,
    Setgroups = 5,
    Setresgid = 6,
    Setresuid = 7,
    NoNewPrivs = 8,
    ClearCapabilities = 9,
    Verify = 10,
    Runtime = 11,
    Seccomp = 12,
    Settings = 13,
}

impl StartupStep {
    const ALL: [StartupStep; 13] = [
        StartupStep::Handover,
        StartupStep::Chroot,
        StartupStep::Chdir,
        StartupStep::BoundingSet,
        StartupStep::Setgroups,
        StartupStep::Setresgid,
        StartupStep::Setresuid,
        StartupStep::NoNewPrivs,
        StartupStep::ClearCapabilities,
        StartupStep::Verify,
        StartupStep::Runtime,
        StartupStep::Seccomp,
        StartupStep::Settings,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<StartupStep> {
        StartupStep::ALL.into_iter().find(|s| s.code() == code)
    }

    /// What the worker was doing, for the log.
    pub fn describe(self) -> &'static str {
        match self {
            StartupStep::Handover => "receiving the hand-over",
            StartupStep::Chroot => "changing root",
            StartupStep::Chdir => "changing directory to / in the chroot",
            StartupStep::BoundingSet => "dropping the capability bounding set",
            StartupStep::Setgroups => "setting supplementary groups",
            StartupStep::Setresgid => "setting group ids",
            StartupStep::Setresuid => "setting user ids",
            StartupStep::NoNewPrivs => "setting no_new_privs",
            StartupStep::ClearCapabilities => "clearing capabilities",
            StartupStep::Verify => "verifying the privilege drop",
            StartupStep::Runtime => "starting the event loop",
            StartupStep::Seccomp => "installing the seccomp filter",
            StartupStep::Settings => "reading the settings",
        }
    }
}

impl fmt::Display for StartupStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// Largest errno value Linux uses (`MAX_ERRNO`); anything above is refused.
pub const MAX_ERRNO: u32 = 4095;

/// The worker's report: the step that failed and its errno (0: no system
/// error, e.g. a check that did not hold; the worker's log says more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartupFailure {
    pub step: StartupStep,
    pub errno: u32,
}

impl StartupFailure {
    /// From an OS error (errno 0 if it carries none).
    pub fn from_io(step: StartupStep, e: &std::io::Error) -> StartupFailure {
        let errno = e
            .raw_os_error()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n <= MAX_ERRNO)
            .unwrap_or(0);
        StartupFailure { step, errno }
    }
}

/// `worker: STEP: ENAME (description)`, or `worker: STEP failed` without an
/// errno.
impl fmt::Display for StartupFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.errno == 0 {
            return write!(f, "worker: {} failed (see the worker's log line)", self.step);
        }
        let e = Errno::from_raw(self.errno as i32);
        if e == Errno::UnknownErrno {
            write!(f, "worker: {}: errno {}", self.step, self.errno)
        } else {
            write!(f, "worker: {}: {e:?} ({})", self.step, e.desc())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_text_names_step_and_errno() {
        for s in StartupStep::ALL {
            assert_eq!(StartupStep::from_code(s.code()), Some(s));
        }
        assert_eq!(StartupStep::from_code(0), None);
        assert_eq!(StartupStep::from_code(200), None);
        let f = StartupFailure {
            step: StartupStep::BoundingSet,
            errno: libc_eperm(),
        };
        assert_eq!(
            f.to_string(),
            "worker: dropping the capability bounding set: EPERM (Operation not permitted)"
        );
        let f = StartupFailure::from_io(StartupStep::Verify, &std::io::Error::other("x"));
        assert_eq!(f.errno, 0);
        assert!(f.to_string().contains("verifying the privilege drop failed"));
    }

    fn libc_eperm() -> u32 {
        Errno::EPERM as i32 as u32
    }
}
