//! Fuzz target `scanner`: see `qga_fuzz_checks::scanner` (fuzz/src/scanner.rs) for the input layout and the
//! invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qga_fuzz_checks::scanner::check(data));
