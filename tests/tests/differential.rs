//! Tests that need the reference agent (Debian's qemu-ga 7.2 at /usr/sbin/qemu-ga). Each skips
//! with a printed reason when it is missing, and fails instead when `QGA_REQUIRE_REFERENCE=1`.
//!
//! * `differential_reference_vs_core`: every corpus stream through qemu-ga and through
//!   `qga_core::Agent`; outputs must be byte-identical.
//! * `reference_corpus_sanity`: qemu-ga's answers are well-formed reply lines.
//! * `reference_matches_recording`: qemu-ga still answers what `corpus/protocol-reference`
//!   recorded (so the recordings, used by other tests, are current).
//!
//! `QGA_CORPUS_FILTER=substring` restricts every test to matching corpus entries.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fmt::Write as _;

use qga_tests::corpus::{CorpusEntry, load_protocol_corpus};
use qga_tests::escape::{difference_report, escape_window};
use qga_tests::reply::check_reply_stream;
use qga_tests::{AgentUnderTest, CoreAgent, CoreBuffers, ReferenceAgent};

/// How many differences are printed in full (all of them go to the report file).
const PRINTED_DIFFERENCES: usize = 15;
/// Bytes of context shown around a difference.
const WINDOW: usize = 600;

fn corpus() -> Vec<CorpusEntry> {
    let entries = load_protocol_corpus().unwrap_or_else(|e| panic!("cannot load the corpus: {e}"));
    assert!(
        !entries.is_empty() || std::env::var(qga_tests::corpus::FILTER_ENV).is_ok(),
        "the protocol corpus is empty"
    );
    entries
}

fn run_side(side: &mut dyn AgentUnderTest, entry: &CorpusEntry) -> Vec<u8> {
    side.exchange_fenced(&entry.bytes, entry.fence_id(), entry.delivery())
        .unwrap_or_else(|e| {
            panic!(
                "{}: exchange with {} failed: {e}\n  stream: {}",
                entry.name,
                side.label(),
                escape_window(&entry.bytes, 0, WINDOW)
            )
        })
}

/// Writes `text` to a file in cargo's per-target temporary directory and returns its path.
fn write_report(file: &str, text: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(file);
    match std::fs::write(&path, text) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("(could not write {}: {e})", path.display()),
    }
}

/// Compares two sides over the whole corpus and fails with a readable report.
fn compare_sides(left: &mut dyn AgentUnderTest, right: &mut dyn AgentUnderTest, report_file: &str) {
    let entries = corpus();
    let mut reports = Vec::new();
    for entry in &entries {
        let l = run_side(left, entry);
        let r = run_side(right, entry);
        if l != r {
            reports.push((
                entry.name.clone(),
                difference_report(
                    &entry.name,
                    &entry.bytes,
                    (left.label(), &l),
                    (right.label(), &r),
                    WINDOW,
                ),
            ));
        }
    }
    let summary = format!(
        "compared {} streams ({} vs {}): {} identical, {} differ",
        entries.len(),
        left.label(),
        right.label(),
        entries.len() - reports.len(),
        reports.len()
    );
    println!("{summary}");
    if reports.is_empty() {
        return;
    }
    let full: String = reports.iter().map(|(_, r)| r.as_str()).collect();
    let path = write_report(report_file, &format!("{summary}\n\n{full}"));
    let mut message = String::new();
    for (_, report) in reports.iter().take(PRINTED_DIFFERENCES) {
        message.push_str(report);
    }
    if reports.len() > PRINTED_DIFFERENCES {
        let _ = writeln!(
            message,
            "... and {} more: {}",
            reports.len() - PRINTED_DIFFERENCES,
            reports
                .iter()
                .skip(PRINTED_DIFFERENCES)
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    panic!("{summary}\nfull report: {path}\n\n{message}");
}

#[test]
fn differential_reference_vs_core() {
    let Some(mut reference) = ReferenceAgent::start() else {
        return;
    };
    let mut buffers = CoreBuffers::new();
    let mut core = CoreAgent::new(&mut buffers);
    compare_sides(&mut reference, &mut core, "differential-report.txt");
}

#[test]
fn reference_corpus_sanity() {
    let Some(mut reference) = ReferenceAgent::start() else {
        return;
    };
    let entries = corpus();
    let mut failures = Vec::new();
    let mut exceptions = Vec::new();
    let (mut lines, mut returns, mut errors, mut delimited) = (0, 0, 0, 0);
    for entry in &entries {
        let output = run_side(&mut reference, entry);
        match check_reply_stream(&output) {
            Ok(summary) => {
                lines += summary.lines;
                returns += summary.returns;
                errors += summary.errors;
                delimited += summary.delimited;
                for e in summary.documented_exceptions {
                    exceptions.push(format!("{}: {e}", entry.name));
                }
            }
            Err(e) => failures.push(format!(
                "{}: {e}\n  stream: {}\n  output: {}",
                entry.name,
                escape_window(&entry.bytes, 0, WINDOW),
                escape_window(&output, 0, WINDOW)
            )),
        }
    }
    println!(
        "qemu-ga answered {} streams with {lines} reply lines: {returns} return, {errors} error, \
         {delimited} with the 0xFF delimiter",
        entries.len()
    );
    println!(
        "{} documented exceptions (bare inf/-inf, not valid JSON):",
        exceptions.len()
    );
    for e in &exceptions {
        println!("  {e}");
    }
    assert!(
        failures.is_empty(),
        "{} streams got malformed answers:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn reference_matches_recording() {
    let Some(mut reference) = ReferenceAgent::start() else {
        return;
    };
    let entries = corpus();
    let mut reports = Vec::new();
    for entry in &entries {
        let live = run_side(&mut reference, entry);
        let recorded = std::fs::read(entry.reference_path()).unwrap_or_default();
        if live != recorded {
            reports.push(difference_report(
                &entry.name,
                &entry.bytes,
                ("recorded", &recorded),
                ("qemu-ga", &live),
                WINDOW,
            ));
        }
    }
    println!(
        "checked {} recordings against qemu-ga: {} stale",
        entries.len(),
        reports.len()
    );
    assert!(
        reports.is_empty(),
        "{} recordings in corpus/protocol-reference are missing or stale; re-record with \
         `cargo run -p qga-tests --bin record-reference`:\n{}",
        reports.len(),
        reports
            .iter()
            .take(PRINTED_DIFFERENCES)
            .cloned()
            .collect::<String>()
    );
}
