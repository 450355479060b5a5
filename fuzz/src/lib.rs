//! Fuzz target bodies for mlvpn-rs.
//!
//! The bodies live in [`targets`], plain files that the root crate also
//! includes (`tests/fuzz_corpora.rs`) to replay the corpora on stable
//! `cargo test`; the libFuzzer entry points in `fuzz_targets/` only call
//! them. `seeds` writes the seed corpora (see docs/fuzzing.md).
//! `fixtures` are the keys, configs and packets the root crate's tests use
//! too (`tests/fixtures/mod.rs` says why it is included this way).

#[path = "../../tests/fixtures/mod.rs"]
pub mod fixtures;
pub mod seeds;
pub mod targets;
