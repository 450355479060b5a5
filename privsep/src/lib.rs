//! Privilege separation for mlvpn-rs, in the style of OpenBSD daemons.
//!
//! The privileged parent opens the TUN device and the path sockets, hands
//! them to an unprivileged worker over a Unix socketpair (SCM_RIGHTS), and
//! afterwards only answers a small, typed set of requests ([`msg::Request`]),
//! each validated against a [`policy::Policy`] before anything is done.
//! The worker chroots, drops to an unprivileged user, sets no_new_privs and
//! clears every capability set before it reads a network byte ([`drop`]).
//!
//! Unsafe code is denied except in the modules that need it (taking
//! ownership of received descriptors; prctl and capset), each marked
//! `#[allow(unsafe_code)]`, each block with a `// SAFETY:` line.

#![deny(unsafe_code)]

pub mod bulk;
// Unsafe: descriptors received over SCM_RIGHTS become owned, and one is
// registered with tokio.
#[allow(unsafe_code)]
pub mod channel;
pub mod drop;
pub mod hook_queue;
pub mod hooks;
pub mod log_limit;
pub mod msg;
pub mod policy;
#[cfg(target_os = "linux")]
pub mod seccomp;
pub mod startup;
pub mod trusted_file;
