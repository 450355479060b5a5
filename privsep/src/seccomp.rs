//! The worker's system-call allowlist (Linux seccomp-bpf), installed after
//! the privilege drop and before the first network byte is read: the Linux
//! counterpart of MLVPN's `pledge("stdio inet")` on OpenBSD.
//!
//! What the event loop does after start-up is small: move datagrams between
//! descriptors it already holds, wait in epoll, keep time, allocate memory,
//! accept status queries on the control socket it was handed, and talk to
//! the parent. Everything else — opening files, creating sockets, exec,
//! ptrace, changing identity, mounting, loading modules — fails with EPERM.
//! A failing call (rather than a killed process) keeps an overlooked rare
//! path from taking the tunnel down; an attacker gains nothing from it.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SeccompError {
    #[error("seccomp filter: {0}")]
    Build(String),
    #[error("installing the seccomp filter: {0}")]
    Install(String),
}

/// System calls the worker may make freely.
const ALLOWED: &[libc::c_long] = &[
    // Data path and control socket: only on descriptors already open.
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_recvfrom,
    libc::SYS_sendto,
    libc::SYS_recvmsg,
    libc::SYS_sendmsg,
    libc::SYS_recvmmsg,
    libc::SYS_sendmmsg,
    libc::SYS_accept4,
    libc::SYS_shutdown,
    libc::SYS_close,
    libc::SYS_getsockname,
    libc::SYS_getpeername,
    libc::SYS_getsockopt,
    // Event loop.
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
    libc::SYS_epoll_ctl,
    libc::SYS_ppoll,
    libc::SYS_eventfd2,
    libc::SYS_futex,
    libc::SYS_sched_yield,
    libc::SYS_nanosleep,
    libc::SYS_clock_nanosleep,
    libc::SYS_clock_gettime,
    libc::SYS_gettimeofday,
    libc::SYS_getrandom,
    // Memory.
    libc::SYS_brk,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_mprotect,
    // Signals (handlers were installed before the filter), exit, panics.
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigprocmask,
    libc::SYS_sigaltstack,
    libc::SYS_restart_syscall,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_getpid,
    libc::SYS_gettid,
    libc::SYS_tgkill,
    libc::SYS_sched_getaffinity,
    libc::SYS_rseq,
    // The data threads (started after the filter): each new thread
    // registers its robust futex list.
    libc::SYS_set_robust_list,
];

fn rule(arg: u8, value: u64) -> Result<SeccompRule, SeccompError> {
    let c = SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, value)
        .map_err(|e| SeccompError::Build(e.to_string()))?;
    SeccompRule::new(vec![c]).map_err(|e| SeccompError::Build(e.to_string()))
}

/// The worker's filter, compiled for this architecture.
pub fn worker_filter() -> Result<BpfProgram, SeccompError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = ALLOWED.iter().map(|&n| (n, Vec::new())).collect();
    // Older forms some libc calls still use where the architecture has them.
    #[cfg(target_arch = "x86_64")]
    for n in [libc::SYS_epoll_wait, libc::SYS_poll] {
        rules.insert(n, Vec::new());
    }
    // fcntl: only reading and setting status and descriptor flags
    // (non-blocking sockets from a reload).
    rules.insert(
        libc::SYS_fcntl,
        [libc::F_GETFL, libc::F_SETFL, libc::F_GETFD, libc::F_SETFD]
            .into_iter()
            .map(|cmd| rule(1, cmd as u64))
            .collect::<Result<_, _>>()?,
    );
    // ioctl: only FIONBIO (what std's set_nonblocking uses); no TUN ioctls.
    rules.insert(libc::SYS_ioctl, vec![rule(1, libc::FIONBIO)?]);
    // clone: threads only (CLONE_THREAD set: the data threads), never a
    // new process. clone3's flags sit in memory a filter cannot read: this
    // filter lets it through to [`clone3_filter`], installed before it,
    // which fails it with ENOSYS (an errno outranks an allow), and libc
    // falls back to clone.
    rules.insert(libc::SYS_clone3, Vec::new());
    let thread = SeccompCondition::new(
        0,
        SeccompCmpArgLen::Qword,
        SeccompCmpOp::MaskedEq(libc::CLONE_THREAD as u64),
        libc::CLONE_THREAD as u64,
    )
    .map_err(|e| SeccompError::Build(e.to_string()))?;
    rules.insert(
        libc::SYS_clone,
        vec![SeccompRule::new(vec![thread]).map_err(|e| SeccompError::Build(e.to_string()))?],
    );
    // prctl: only naming a thread (std names the data threads).
    rules.insert(libc::SYS_prctl, vec![rule(0, libc::PR_SET_NAME as u64)?]);
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e: seccompiler::BackendError| SeccompError::Build(e.to_string()))?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )
    .map_err(|e| SeccompError::Build(e.to_string()))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| SeccompError::Build(e.to_string()))
}

/// A filter installed before [`worker_filter`] (which refuses the
/// `seccomp` call that would install it after): clone3 fails with ENOSYS,
/// which tells libc to create threads with clone, whose flags the main
/// filter checks. Everything else it allows, leaving the decision to the
/// main filter (the kernel takes the strictest answer of the two).
pub fn clone3_filter() -> Result<BpfProgram, SeccompError> {
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e: seccompiler::BackendError| SeccompError::Build(e.to_string()))?;
    let filter = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(|e| SeccompError::Build(e.to_string()))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| SeccompError::Build(e.to_string()))
}

/// Installs the worker's filters on every thread of the process (needs
/// no_new_privs, which [`crate::drop::drop_privileges`] set).
pub fn restrict_worker() -> Result<(), SeccompError> {
    let program = worker_filter()?;
    let clone3 = clone3_filter()?;
    seccompiler::apply_filter_all_threads(&clone3).map_err(|e| SeccompError::Install(e.to_string()))?;
    seccompiler::apply_filter_all_threads(&program).map_err(|e| SeccompError::Install(e.to_string()))
}
