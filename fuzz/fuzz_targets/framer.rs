//! Fuzz target `framer`: see `qga_fuzz_checks::framer` (fuzz/src/framer.rs) for the input layout and the
//! invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qga_fuzz_checks::framer::check(data));
