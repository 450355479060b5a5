//! Fuzz target bodies for mlvpn-rs.
//!
//! The bodies live in [`targets`], plain files that the root crate also
//! includes (`tests/fuzz_corpora.rs`) to replay the corpora on stable
//! `cargo test`; the libFuzzer entry points in `fuzz_targets/` only call
//! them. `seeds` writes the seed corpora (see docs/fuzzing.md).

pub mod seeds;
pub mod targets;
