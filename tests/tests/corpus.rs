//! Tests that need no reference agent: the corpus is current and safe, the recorded answers and
//! the hash-order oracles agree, and the core's output does not depend on how input is chunked.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use qga_tests::cases::{file_stems, protocol_cases, validate_cases};
use qga_tests::corpus::{check_stream_safety, load_dir, load_protocol_corpus, protocol_dir};
use qga_tests::escape::difference_report;
use qga_tests::qdict::{first_unexpected_member, qdict_bucket, qdict_order};
use qga_tests::{AgentUnderTest, CoreAgent, CoreBuffers, Delivery, fence_reply};

#[test]
fn corpus_files_match_generator() {
    let cases = protocol_cases();
    validate_cases(&cases).unwrap();
    assert!(cases.len() >= 300, "only {} cases", cases.len());
    let on_disk = load_dir(&protocol_dir()).unwrap();
    let stems = file_stems(&cases);
    let disk_names: Vec<&str> = on_disk.iter().map(|e| e.name.as_str()).collect();
    let gen_names: Vec<&str> = stems.iter().map(String::as_str).collect();
    assert_eq!(
        disk_names, gen_names,
        "corpus/protocol is out of date: run `cargo run -p qga-tests --bin gen-corpus` \
         (then `--bin record-reference`)"
    );
    for (entry, case) in on_disk.iter().zip(&cases) {
        assert_eq!(
            entry.bytes, case.bytes,
            "{} differs from the generator: run `cargo run -p qga-tests --bin gen-corpus`",
            entry.name
        );
    }
    println!("{} corpus files match the generator", cases.len());
}

#[test]
fn corpus_is_safe() {
    let entries = load_dir(&protocol_dir()).unwrap();
    for entry in &entries {
        if let Err(e) = check_stream_safety(&entry.bytes) {
            panic!("{}: {e}", entry.name);
        }
    }
}

#[test]
fn every_stream_has_a_recorded_reference_answer() {
    let entries = load_dir(&protocol_dir()).unwrap();
    let mut missing = Vec::new();
    for entry in &entries {
        match std::fs::read(entry.reference_path()) {
            Ok(out) if out.ends_with(&fence_reply(entry.fence_id())) => {}
            Ok(_) => missing.push(format!(
                "{} (does not end with its fence reply)",
                entry.name
            )),
            Err(_) => missing.push(entry.name.clone()),
        }
    }
    assert!(
        missing.is_empty(),
        "{} corpus streams lack a recorded qemu-ga answer; run `cargo run -p qga-tests --bin \
         record-reference`: {}",
        missing.len(),
        missing.join(", ")
    );
}

#[test]
fn qdict_buckets_match_the_reference_notes() {
    // Buckets listed in the reference notes (section 1.7), checked live against qemu-ga 7.2.
    for (key, bucket) in [
        ("class", 211),
        ("execute", 299),
        ("desc", 377),
        ("return", 401),
        ("arguments", 447),
        ("id", 486),
        ("error", 489),
    ] {
        assert_eq!(qdict_bucket(key.as_bytes()), bucket, "bucket of {key}");
    }
    // Appendix A: `"id":{"b":1,"a":2,"zz":[3,2,1],"key":{}}` comes back as key, a, zz, b.
    let keys = ["b", "a", "zz", "key"];
    let order: Vec<&str> = qdict_order(&keys).into_iter().map(|i| keys[i]).collect();
    assert_eq!(order, ["key", "a", "zz", "b"]);
}

/// The first `Parameter '...' is unexpected` of a recorded answer, unescaped.
fn recorded_unexpected_member(out: &[u8]) -> Option<String> {
    let first_line = out.split(|&b| b == b'\n').next()?;
    let value: serde_json::Value = serde_json::from_slice(first_line).ok()?;
    let desc = value.get("error")?.get("desc")?.as_str()?;
    desc.strip_prefix("Parameter '")?
        .strip_suffix("' is unexpected")
        .map(str::to_owned)
}

#[test]
fn unexpected_member_model_matches_recordings() {
    let cases = protocol_cases();
    let stems = file_stems(&cases);
    let mut checked = 0;
    let mut failures = Vec::new();
    for (stem, case) in stems.iter().zip(&cases) {
        let Some(probe) = &case.unexpected else {
            continue;
        };
        let path = qga_tests::corpus::reference_dir().join(format!("{stem}.out"));
        let Ok(out) = std::fs::read(&path) else {
            failures.push(format!("{stem}: no recording"));
            continue;
        };
        let Some(reported) = recorded_unexpected_member(&out) else {
            failures.push(format!(
                "{stem}: first answer is not an 'is unexpected' error"
            ));
            continue;
        };
        let predicted = first_unexpected_member(&probe.keys, &probe.visited)
            .map(|k| format!("{}{}", probe.prefix, String::from_utf8_lossy(&k)));
        if predicted.as_deref() != Some(reported.as_str()) {
            failures.push(format!(
                "{stem}: qemu-ga reported {reported:?}, the model predicts {predicted:?} (keys {:?})",
                probe.keys
            ));
        }
        checked += 1;
    }
    println!("GHashTable model checked against {checked} recorded answers");
    assert!(checked >= 50, "only {checked} probes");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn core_output_does_not_depend_on_chunking() {
    let entries = load_protocol_corpus().unwrap();
    let mut whole_buffers = CoreBuffers::new();
    let mut whole = CoreAgent::new(&mut whole_buffers);
    let mut failures = Vec::new();
    for chunk in [1, 3, 64] {
        let mut chunked_buffers = CoreBuffers::new();
        let mut chunked = CoreAgent::new(&mut chunked_buffers);
        for entry in &entries {
            let a = whole
                .exchange_fenced(&entry.bytes, entry.fence_id(), Delivery::Whole)
                .unwrap();
            let b = chunked
                .exchange_fenced(&entry.bytes, entry.fence_id(), Delivery::Chunks(chunk))
                .unwrap();
            if a != b {
                failures.push(difference_report(
                    &format!("{} (chunks of {chunk})", entry.name),
                    &entry.bytes,
                    ("whole", &a),
                    ("chunked", &b),
                    400,
                ));
            }
        }
    }
    println!(
        "{} streams fed whole and in chunks of 1, 3 and 64 bytes: {} differences",
        entries.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{}",
        failures.iter().take(10).cloned().collect::<String>()
    );
}

#[test]
fn recorded_answers_are_well_formed() {
    let entries = load_dir(&protocol_dir()).unwrap();
    let mut failures = Vec::new();
    let mut lines = 0;
    for entry in &entries {
        let Ok(out) = std::fs::read(entry.reference_path()) else {
            continue; // reported by every_stream_has_a_recorded_reference_answer
        };
        match qga_tests::reply::check_reply_stream(&out) {
            Ok(summary) => lines += summary.lines,
            Err(e) => failures.push(format!("{}: {e}", entry.name)),
        }
    }
    println!(
        "{} recordings, {lines} reply lines, all well-formed",
        entries.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
