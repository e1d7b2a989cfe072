//! Writes the protocol corpus (`tests/corpus/protocol/NNN-name.bin`) from `qga_tests::cases`.
//!
//! Usage: `cargo run -p qga-tests --bin gen-corpus [-- --check]`
//!
//! Without arguments, (re)writes every file and deletes `.bin` files that are no longer
//! generated. With `--check`, writes nothing and exits 1 if the directory is out of date.
//! After changing the corpus, re-record qemu-ga's answers with `record-reference`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;

use qga_tests::cases::{file_stems, protocol_cases, validate_cases};
use qga_tests::corpus::protocol_dir;

fn main() -> ExitCode {
    let check_only = std::env::args().skip(1).any(|a| a == "--check");
    match run(&protocol_dir(), check_only) {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("gen-corpus: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(dir: &Path, check_only: bool) -> Result<String, String> {
    let cases = protocol_cases();
    validate_cases(&cases)?;
    let stems = file_stems(&cases);
    if !check_only {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let wanted: BTreeSet<String> = stems.iter().map(|s| format!("{s}.bin")).collect();
    let mut problems = Vec::new();
    let existing = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".bin"));
    for name in existing {
        if !wanted.contains(&name) {
            if check_only {
                problems.push(format!("stale file {name}"));
            } else {
                let path = dir.join(&name);
                std::fs::remove_file(&path)
                    .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
            }
        }
    }
    let mut written = 0;
    for (stem, case) in stems.iter().zip(&cases) {
        let path = dir.join(format!("{stem}.bin"));
        let current = std::fs::read(&path).ok();
        if current.as_deref() == Some(case.bytes.as_slice()) {
            continue;
        }
        if check_only {
            problems.push(format!("{stem}.bin is missing or differs"));
        } else {
            std::fs::write(&path, &case.bytes)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            written += 1;
        }
    }
    if !problems.is_empty() {
        return Err(format!(
            "{} is out of date ({} problems; run `cargo run -p qga-tests --bin gen-corpus`):\n  {}",
            dir.display(),
            problems.len(),
            problems.join("\n  ")
        ));
    }
    Ok(format!(
        "{} cases in {} ({written} files written)",
        cases.len(),
        dir.display()
    ))
}
