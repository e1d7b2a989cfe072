//! Fuzz target `client`: see `qga_fuzz_checks::client` (fuzz/src/client.rs) for the input layout
//! and the invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qga_fuzz_checks::client::check(data));
