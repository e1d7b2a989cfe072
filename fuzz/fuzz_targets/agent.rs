//! Fuzz target `agent`: see `qga_fuzz_checks::agent` (fuzz/src/agent.rs) for the input layout and the
//! invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qga_fuzz_checks::agent::check(data));
