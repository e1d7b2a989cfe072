//! Differential fuzzing of qga's protocol engine against qemu-ga 7.2 (see
//! `qga_tests::difffuzz`). Runs until the stream count or the time budget is reached, or the
//! first difference, which it prints minimised with both answers (exit 1).
//!
//! Usage: `cargo run --release -p qga-tests --bin diff-fuzz -- [--streams N] [--seconds S]
//! [--seed SEED]`

use std::process::ExitCode;
use std::time::Instant;

use qga_tests::ReferenceAgent;
use qga_tests::corpus::load_protocol_corpus;
use qga_tests::difffuzz::{Figures, run};
use qga_tests::escape::escape_bytes;

fn arg(args: &[String], name: &str) -> Option<u64> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1)?.parse().ok()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let streams = arg(&args, "--streams").unwrap_or(u64::MAX);
    let seconds =
        arg(&args, "--seconds").unwrap_or(if streams == u64::MAX { 60 } else { u64::MAX });
    let mut seed = arg(&args, "--seed").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let Some(mut reference) = ReferenceAgent::start() else {
        return ExitCode::FAILURE;
    };
    let corpus: Vec<Vec<u8>> = load_protocol_corpus()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.bytes)
        .collect();
    let start = Instant::now();
    let mut total = Figures::default();
    // Batches of 500 streams per seed, so a long run reports progress and can be reproduced
    // batch by batch.
    while total.compared + total.skipped < streams && start.elapsed().as_secs() < seconds {
        let batch = (streams - total.compared - total.skipped).min(500);
        match run(&mut reference, seed, batch, &corpus) {
            Ok((f, None)) => {
                total.compared += f.compared;
                total.skipped += f.skipped;
            }
            Ok((f, Some((input, theirs, ours)))) => {
                total.compared += f.compared;
                println!("DIFFERENCE (seed {seed}) after {} streams", total.compared);
                println!("input:   {}", escape_bytes(&input));
                println!("qemu-ga: {}", escape_bytes(&theirs));
                println!("qga:     {}", escape_bytes(&ours));
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("diff-fuzz: {e}");
                return ExitCode::FAILURE;
            }
        }
        seed = seed.wrapping_add(1);
    }
    println!(
        "{} streams compared byte for byte, {} skipped (host-dependent), 0 differences, {:.1} s",
        total.compared,
        total.skipped,
        start.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
