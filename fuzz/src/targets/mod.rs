//! Fuzz target bodies: plain functions of the input bytes, one target per
//! module.
//!
//! Used twice: by the libFuzzer entry points in `fuzz/fuzz_targets/` (each
//! calls one function here) and, through `#[path]`, by the root crate's
//! `tests/fuzz_corpora.rs`, which replays every file of `fuzz/corpus/` and
//! `fuzz/artifacts/` on stable `cargo test`. So these files use only the
//! public API of mlvpn-rs, mlvpn-privsep and mlvpn-keys (plus `ipnet` and
//! `toml`, which both crates have), and name their siblings with `super::`
//! (the module sits at a different place in each crate).
//!
//! A body returns normally on any input; it panics only when an invariant
//! breaks (that panic is the finding). See docs/fuzzing.md.

pub mod config;
pub mod findings;
pub mod input;
pub mod nodes;
pub mod offload;
pub mod privsep;
pub mod responder;
pub mod transport;
pub mod wire;

pub use config::config;
pub use offload::offload;
pub use privsep::privsep;
pub use responder::responder;
pub use transport::transport;
pub use wire::wire;

/// Forgets the state the stateful targets keep between inputs, so the next
/// input meets fresh tunnels (the regression test does this before each
/// artifact, as a fresh fuzzer process would).
pub fn reset() {
    transport::reset();
    responder::reset();
}
