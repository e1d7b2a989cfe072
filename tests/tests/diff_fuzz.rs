//! A bounded differential-fuzzing run against qemu-ga 7.2 (the long runs use the `diff-fuzz`
//! binary; see the README's Fuzzing section): 3000 generated and mutated streams from fixed
//! seeds, byte-identical answers required. Skips with a printed reason when qemu-ga is missing,
//! unless QGA_REQUIRE_REFERENCE=1.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use qga_tests::ReferenceAgent;
use qga_tests::corpus::load_protocol_corpus;
use qga_tests::difffuzz::run;
use qga_tests::escape::escape_bytes;

#[test]
fn generated_streams_match_qemu_ga() {
    let Some(mut reference) = ReferenceAgent::start() else {
        return;
    };
    let corpus: Vec<Vec<u8>> = load_protocol_corpus()
        .unwrap()
        .into_iter()
        .map(|e| e.bytes)
        .collect();
    let (mut compared, mut skipped) = (0, 0);
    for seed in 1..=6u64 {
        let (f, diff) = run(&mut reference, seed, 500, &corpus).unwrap();
        compared += f.compared;
        skipped += f.skipped;
        if let Some((input, theirs, ours)) = diff {
            panic!(
                "difference (seed {seed}):\ninput:   {}\nqemu-ga: {}\nqga:     {}",
                escape_bytes(&input),
                escape_bytes(&theirs),
                escape_bytes(&ours)
            );
        }
    }
    println!("{compared} streams compared byte for byte ({skipped} host-dependent skipped)");
    assert!(compared > 2500, "too few comparable streams: {compared}");
}

/// Found by a long diff-fuzz run: QEMU cuts parser messages at 1023 bytes.
#[test]
fn long_keywords_match_qemu_ga() {
    let Some(mut reference) = ReferenceAgent::start() else {
        return;
    };
    for (i, len) in [1000usize, 1004, 1005, 1006, 1007, 5000]
        .into_iter()
        .enumerate()
    {
        let mut s = "x".repeat(len).into_bytes();
        s.push(b'\n');
        match qga_tests::difffuzz::compare(&mut reference, &s, 0x6b77_0000 + i as u64, 7).unwrap() {
            qga_tests::difffuzz::Verdict::Same => {}
            qga_tests::difffuzz::Verdict::Skipped => panic!("keyword stream skipped"),
            qga_tests::difffuzz::Verdict::Different(theirs, ours) => panic!(
                "keyword of {len} bytes:\nqemu-ga: {}\nqga:     {}",
                escape_bytes(&theirs),
                escape_bytes(&ours)
            ),
        }
    }
}
