//! The fuzz targets' invariants on stable, without libFuzzer.
//!
//! `fuzz/src/lib.rs` (the checks every cargo-fuzz target calls) is included here by path, and
//! every file of `fuzz/regressions/<target>/` and, when present, `fuzz/corpus/<target>/` (made
//! by `fuzz/seed.sh` or grown by a campaign) goes through its target's check. A crash file
//! copied into `fuzz/regressions/<target>/` thereby becomes a permanent test. The protocol
//! corpus (`tests/corpus/protocol/*.bin`) also goes through the `framer`, `scanner` and `agent`
//! checks directly, so that they run on real streams even where no fuzz corpus was seeded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../fuzz/src/lib.rs"]
mod checks;

use std::any::Any;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// `fuzz/` at the root of the repository.
fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The input files of a corpus or regressions directory, sorted; notes (`*.md`) and dotfiles
/// are not inputs. A missing directory has none.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.') && !name.ends_with(".md")
        })
        .collect();
    files.sort();
    files
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(non-text panic)".to_owned())
}

/// The check of `target`.
fn check_of(target: &str) -> checks::Check {
    checks::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, check)| *check)
        .unwrap_or_else(|| panic!("no fuzz target named {target}"))
}

/// Stack for the checks: `serde_json` reads requests and replies nested 1024 levels deep
/// recursively, more than a test thread's default 2 MiB hold in a debug build.
const STACK: usize = 256 << 20;

/// Runs `check` on every input, collecting failures instead of stopping at the first.
fn run_all(check: checks::Check, named_inputs: &[(String, Vec<u8>)]) -> Vec<String> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(STACK)
            .spawn_scoped(scope, || {
                named_inputs
                    .iter()
                    .filter_map(|(name, data)| {
                        catch_unwind(AssertUnwindSafe(|| check(data)))
                            .err()
                            .map(|payload| format!("{name}: {}", panic_text(payload.as_ref())))
                    })
                    .collect()
            })
            .unwrap()
            .join()
            .unwrap()
    })
}

/// Replays `fuzz/regressions/<target>/` and `fuzz/corpus/<target>/`.
fn replay(target: &str) {
    let check = check_of(target);
    let mut named = Vec::new();
    for kind in ["regressions", "corpus"] {
        for path in inputs(&fuzz_dir().join(kind).join(target)) {
            let data = fs::read(&path).unwrap();
            named.push((
                format!(
                    "fuzz/{kind}/{target}/{}",
                    path.file_name().unwrap().to_string_lossy()
                ),
                data,
            ));
        }
    }
    let failures = run_all(check, &named);
    println!("{target}: {} inputs replayed", named.len());
    assert!(
        failures.is_empty(),
        "{} of {} inputs of {target} fail:\n{}",
        failures.len(),
        named.len(),
        failures.join("\n")
    );
}

#[test]
fn replay_framer() {
    replay("framer");
}

#[test]
fn replay_scanner() {
    replay("scanner");
}

#[test]
fn replay_agent() {
    replay("agent");
}

#[test]
fn replay_writer() {
    replay("writer");
}

#[test]
fn replay_unescape() {
    replay("unescape");
}

#[test]
fn replay_client() {
    replay("client");
}

#[test]
fn every_target_has_a_regressions_directory() {
    for (target, _) in checks::TARGETS {
        let dir = fuzz_dir().join("regressions").join(target);
        assert!(dir.is_dir(), "{} is missing", dir.display());
    }
}

/// The protocol corpus with the header bytes `fuzz/seed.sh` puts in front of it: default
/// configuration, and for `agent` the chunk tag "rest of the input".
#[test]
fn protocol_corpus_through_the_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/protocol");
    let streams: Vec<(String, Vec<u8>)> = inputs(&dir)
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                fs::read(&p).unwrap(),
            )
        })
        .collect();
    assert!(
        streams.len() >= 300,
        "only {} corpus streams",
        streams.len()
    );
    for (target, header) in [
        ("framer", &[0u8, 0][..]),
        ("scanner", &[]),
        ("agent", &[0, 0]),
    ] {
        let named: Vec<(String, Vec<u8>)> = streams
            .iter()
            .map(|(name, s)| (name.clone(), [header, s].concat()))
            .collect();
        let failures = run_all(check_of(target), &named);
        assert!(
            failures.is_empty(),
            "{target}: {} of {} corpus streams fail:\n{}",
            failures.len(),
            named.len(),
            failures.join("\n")
        );
    }
}
