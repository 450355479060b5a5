//! A userspace link emulator: a UDP relay that behaves like an ISP link
//! with NAT, for tests and benchmarks on a kernel without netem.
//!
//! Clients send to the `listen` address; each client source gets its own
//! upstream socket (a NAT mapping) towards `upstream`, and replies come back
//! through `listen`. Each direction has a fixed delay, jitter, Bernoulli
//! loss, a token-bucket rate with a bounded drop-tail queue (so queueing
//! delay is real), and a cut switch (silent blackhole).

pub mod link;
pub mod relay;
pub mod spec;
