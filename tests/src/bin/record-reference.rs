//! Runs the protocol corpus through the reference agent (Debian's qemu-ga 7.2, started
//! unprivileged) and records its answers.
//!
//! Usage: `cargo run -p qga-tests --bin record-reference [-- MODE]`
//!
//! * no mode: writes `tests/corpus/protocol-reference/NNN-name.out` for every corpus stream
//!   (the answer including the fence's replies) and deletes stale `.out` files;
//! * `--print SUBSTRING`: prints `stream -> answer` (escaped, fence replies stripped) for corpus
//!   entries whose name contains SUBSTRING, without writing anything;
//! * `--known-differences`: prints qemu-ga's answers to the streams of
//!   `corpus/known-differences.md`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::process::ExitCode;

use qga_tests::cases::known_difference_streams;
use qga_tests::corpus::{CorpusEntry, load_protocol_corpus, reference_dir};
use qga_tests::escape::escape_bytes;
use qga_tests::{AgentUnderTest, Delivery, ReferenceAgent, fence_reply};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None => record(),
        Some("--print") => print(args.get(1).map_or("", String::as_str)),
        Some("--known-differences") => known_differences(),
        Some(other) => Err(format!("unknown argument {other:?}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("record-reference: {message}");
            ExitCode::FAILURE
        }
    }
}

fn start() -> Result<ReferenceAgent, String> {
    ReferenceAgent::try_start()
}

fn run_entry(agent: &mut ReferenceAgent, entry: &CorpusEntry) -> Result<Vec<u8>, String> {
    agent
        .exchange_fenced(&entry.bytes, entry.fence_id(), entry.delivery())
        .map_err(|e| format!("{}: {e}", entry.name))
}

fn record() -> Result<(), String> {
    let entries = load_protocol_corpus()?;
    let dir = reference_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut agent = start()?;
    let mut wanted = BTreeSet::new();
    for entry in &entries {
        let output = run_entry(&mut agent, entry)?;
        let path = entry.reference_path();
        std::fs::write(&path, &output)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        wanted.insert(format!("{}.out", entry.name));
    }
    if std::env::var(qga_tests::corpus::FILTER_ENV).map_or(true, |f| f.is_empty()) {
        for item in std::fs::read_dir(&dir)
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
        {
            let name = item.file_name().to_string_lossy().into_owned();
            if name.ends_with(".out") && !wanted.contains(&name) {
                std::fs::remove_file(item.path()).map_err(|e| e.to_string())?;
            }
        }
    }
    println!("recorded {} answers in {}", entries.len(), dir.display());
    Ok(())
}

fn print(filter: &str) -> Result<(), String> {
    let entries = load_protocol_corpus()?;
    let mut agent = start()?;
    for entry in entries.iter().filter(|e| e.name.contains(filter)) {
        let output = run_entry(&mut agent, entry)?;
        let answer = output
            .strip_suffix(fence_reply(entry.fence_id()).as_slice())
            .unwrap_or(&output);
        println!(
            "{}\n  -> {}\n  => {}",
            entry.name,
            escape_bytes(&entry.bytes),
            escape_bytes(answer)
        );
    }
    Ok(())
}

fn known_differences() -> Result<(), String> {
    let mut agent = start()?;
    for (i, (name, bytes)) in known_difference_streams().into_iter().enumerate() {
        let fence_id = 9_900_000_000 + u64::try_from(i).unwrap_or(0);
        let output = agent.exchange_fenced(&bytes, fence_id, Delivery::Whole)?;
        let answer = output
            .strip_suffix(fence_reply(fence_id).as_slice())
            .unwrap_or(&output);
        println!(
            "{name}\n  -> {}\n  => {}",
            escape_bytes(&bytes),
            escape_bytes(answer)
        );
    }
    Ok(())
}
