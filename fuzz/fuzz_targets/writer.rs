//! Fuzz target `writer`: see `qga_fuzz_checks::writer` (fuzz/src/writer.rs) for the input layout and the
//! invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qga_fuzz_checks::writer::check(data));
