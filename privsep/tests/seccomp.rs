//! The worker's seccomp filter, installed in a forked child: what the event
//! loop needs still works, everything else fails with EPERM.
#![cfg(target_os = "linux")]

use std::os::fd::AsRawFd;

use mlvpn_privsep::seccomp::{clone3_filter, worker_filter};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe, ForkResult};

fn eperm(ret: libc::c_long) -> bool {
    ret == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// What each check is about, by index (the child reports one byte each).
const CHECKS: [&str; 17] = [
    "write on an open descriptor is allowed",
    "getpid is allowed",
    "fcntl(F_GETFL) is allowed",
    "ioctl(FIONBIO) is allowed",
    "open is refused",
    "socket is refused",
    "fcntl(F_DUPFD) is refused",
    "dup is refused",
    "fork is refused",
    "setuid is refused",
    "ioctl(TIOCSTI) is refused",
    "ptrace is refused",
    "rt_sigaction is refused",
    "clone of a process (no CLONE_THREAD) is refused",
    "clone3 fails with ENOSYS (libc falls back to clone)",
    "prctl(PR_SET_NAME) is allowed",
    "prctl(PR_SET_DUMPABLE) is refused",
];

/// Runs in the child after the filter: one byte per check, 1 = passed.
/// Written to a buffer and then to the pipe in one `write` (an exit status
/// keeps only 8 bits, too few for every check).
fn checks(fd: libc::c_int) -> [u8; CHECKS.len()] {
    let mut passed = [0u8; CHECKS.len()];
    let mut check = |i: usize, ok: bool| passed[i] = u8::from(ok);
    // SAFETY (all calls below): plain system calls with valid arguments
    // (a NUL-terminated path, our own pipe descriptor, a local int).
    unsafe {
        // Allowed: the event loop's work on descriptors it holds.
        check(0, libc::write(fd, b"x".as_ptr().cast(), 1) == 1);
        check(1, libc::getpid() > 0);
        check(2, libc::fcntl(fd, libc::F_GETFL) >= 0);
        let mut on: libc::c_int = 1;
        check(3, libc::ioctl(fd, libc::FIONBIO, &mut on) == 0);
        // Refused: new files, sockets, descriptors, processes, identities.
        check(
            4,
            eperm(libc::open(c"/etc/hostname".as_ptr(), libc::O_RDONLY) as libc::c_long),
        );
        check(
            5,
            eperm(libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) as libc::c_long),
        );
        check(6, eperm(libc::fcntl(fd, libc::F_DUPFD, 0) as libc::c_long));
        check(7, eperm(libc::dup(fd) as libc::c_long));
        check(8, eperm(libc::syscall(libc::SYS_fork)));
        check(9, eperm(libc::setuid(0) as libc::c_long));
        check(
            10,
            eperm(libc::ioctl(fd, libc::TIOCSTI, b"x".as_ptr()) as libc::c_long),
        );
        check(11, eperm(libc::syscall(libc::SYS_ptrace, 0, 0, 0, 0)));
        check(
            12,
            eperm(libc::syscall(libc::SYS_rt_sigaction, libc::SIGUSR1, 0, 0, 8)),
        );
        // A fork-like clone (flags SIGCHLD): refused before it copies anything.
        check(
            13,
            eperm(libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0)),
        );
        // clone3 with a null argument: ENOSYS from the filter, before the
        // kernel reads it (EFAULT would mean the filter let it through).
        let r = libc::syscall(libc::SYS_clone3, 0, 0);
        check(
            14,
            r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS),
        );
        check(15, libc::prctl(libc::PR_SET_NAME, c"mlvpn-test".as_ptr()) == 0);
        check(16, eperm(libc::prctl(libc::PR_SET_DUMPABLE, 0) as libc::c_long));
    }
    passed
}

#[test]
fn the_worker_filter_allows_the_event_loop_and_refuses_the_rest() {
    // Compiled before the fork: the child only makes system calls.
    let program = worker_filter().expect("filter compiles for this architecture");
    let clone3 = clone3_filter().expect("clone3 filter compiles");
    let (r, w) = pipe().unwrap();
    // SAFETY: the child makes only raw system calls (no allocation, no
    // locks another thread of the test harness could hold) and leaves with
    // _exit.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            // SAFETY: prctl with constant arguments, a write of a local buffer of exactly the length given; _exit never returns.
            unsafe {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    libc::_exit(100);
                }
                if seccompiler::apply_filter(&clone3).is_err() || seccompiler::apply_filter(&program).is_err()
                {
                    libc::_exit(101);
                }
                let fd = w.as_raw_fd();
                let passed = checks(fd);
                let n = libc::write(fd, passed.as_ptr().cast(), passed.len());
                libc::_exit(if n == passed.len() as isize { 0 } else { 102 });
            }
        }
        ForkResult::Parent { child } => {
            drop(w);
            let status = waitpid(child, None).unwrap();
            assert!(
                matches!(status, WaitStatus::Exited(_, 0)),
                "child ended with {status:?} (100: no_new_privs, 101: filter, 102: report)"
            );
            // The probe byte of check 0, then one byte per check.
            let mut report = Vec::new();
            std::io::Read::read_to_end(&mut std::fs::File::from(r), &mut report).unwrap();
            assert_eq!(
                report.len(),
                1 + CHECKS.len(),
                "the filtered child reports every check: {report:?}"
            );
            let failed: Vec<&str> = CHECKS
                .iter()
                .zip(&report[1..])
                .filter(|(_, &ok)| ok != 1)
                .map(|(what, _)| *what)
                .collect();
            assert!(failed.is_empty(), "failed checks: {failed:?}");
        }
    }
}
