//! Fuzz target `unescape`: see `qga_fuzz_checks::unescape` (fuzz/src/unescape.rs) for the input layout and the
//! invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qga_fuzz_checks::unescape::check(data));
