#![no_main]

use libfuzzer_sys::fuzz_target;
use mlvpn_rs_fuzz::targets;

fuzz_target!(|d: &[u8]| targets::offload(d));
