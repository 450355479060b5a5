//! The worker's seccomp filter, installed in a forked child: what the event
//! loop needs still works, everything else fails with EPERM.
#![cfg(target_os = "linux")]

use std::os::fd::AsRawFd;

use mlvpn_privsep::seccomp::worker_filter;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe, ForkResult};

fn eperm(ret: libc::c_long) -> bool {
    ret == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Runs in the child after the filter: returns a bit per failed check.
fn checks(fd: libc::c_int) -> i32 {
    let mut failed = 0;
    let mut check = |bit: u32, ok: bool| {
        if !ok {
            failed |= 1 << bit;
        }
    };
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
    }
    failed
}

#[test]
fn the_worker_filter_allows_the_event_loop_and_refuses_the_rest() {
    // Compiled before the fork: the child only makes system calls.
    let program = worker_filter().expect("filter compiles for this architecture");
    let (r, w) = pipe().unwrap();
    // SAFETY: the child makes only raw system calls (no allocation, no
    // locks another thread of the test harness could hold) and leaves with
    // _exit.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            // SAFETY: prctl with constant arguments; _exit never returns.
            unsafe {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    libc::_exit(100);
                }
                if seccompiler::apply_filter(&program).is_err() {
                    libc::_exit(101);
                }
                libc::_exit(checks(w.as_raw_fd()));
            }
        }
        ForkResult::Parent { child } => {
            drop(w);
            let status = waitpid(child, None).unwrap();
            let mut b = [0u8; 1];
            let n = nix::unistd::read(&r, &mut b).unwrap();
            assert_eq!(n, 1, "the filtered child could write to its pipe");
            match status {
                WaitStatus::Exited(_, 0) => {}
                WaitStatus::Exited(_, code) => panic!("failed checks (bit mask): {code:#b}"),
                other => panic!("child ended with {other:?}"),
            }
        }
    }
}
