//! Memory hygiene for third-party key types that do not wipe themselves.
//!
//! Outside [`crate::proto`] (which forbids `unsafe`) because reading a key
//! back from wipeable storage takes one `unsafe` block.

// One `assume_init_ref` on a value only `Drop` ever de-initialises.
#[allow(unsafe_code)]
pub mod wiped_key;
