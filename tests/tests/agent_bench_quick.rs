//! `agent-bench --quick`: the side-by-side benchmark runs end to end (qga, qemu-ga when
//! installed, the echo floor) and its JSON holds every measurement. No timing is checked: the
//! figures depend on the machine; this only proves the tool works.
//!
//! qemu-ga's side is skipped, with the reason printed, when it is not installed, unless
//! `QGA_REQUIRE_REFERENCE=1`. The `qga` daemon is `$QGA_DAEMON_BIN`, or built with this test's
//! profile. When `taskset` is installed and two CPUs are available, the run also exercises
//! `--cpu-client`/`--cpu-agent`.
//!
//! Also checks the benchmark client's own building blocks (reply framing, medians, options).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Command;

use qga_tests::bench::conn::{Conn, Received, find_newline};
use qga_tests::bench::report::median;
use qga_tests::bench::{Phases, affinity, procfs};
use serde_json::Value;

/// The `qga` daemon: `$QGA_DAEMON_BIN`, else built with this test's profile.
fn qga_binary() -> PathBuf {
    qga_tests::build::qga_package_bin("qga", false, "QGA_DAEMON_BIN")
}

/// Two CPUs for the pinning options, when `taskset` exists and two are available.
fn two_cpus() -> Option<(usize, usize)> {
    affinity::taskset()?;
    let cpus = procfs::parse_cpu_list(&procfs::allowed_cpus_self());
    match cpus.as_slice() {
        [a, b, ..] => Some((*a, *b)),
        _ => None,
    }
}

/// The row `key`/`metric` of the report.
fn row<'a>(rows: &'a [Value], key: &str, metric: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["key"] == key && r["metric"] == metric)
        .unwrap_or_else(|| panic!("no row {key} / {metric} in the report"))
}

fn median_of(row: &Value, side: &str) -> Option<f64> {
    row[side]["median"].as_f64()
}

#[test]
fn quick_run_measures_everything() {
    let qga = qga_binary();
    let mut command = Command::new(env!("CARGO_BIN_EXE_agent-bench"));
    command
        .args(["--quick", "--runs", "2", "--json", "--qga"])
        .arg(&qga);
    let pinned = two_cpus();
    if let Some((client, agent)) = pinned {
        println!("pinning: client on CPU {client}, agents on CPU {agent}");
        command
            .args(["--cpu-client", &client.to_string()])
            .args(["--cpu-agent", &agent.to_string()]);
    } else {
        println!("not pinning: taskset missing or fewer than two CPUs available");
    }
    let output = command.output().expect("cannot run agent-bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stderr}");
    assert!(
        output.status.success(),
        "agent-bench failed ({}):\n{stderr}",
        output.status
    );
    // The table and the goals go to stderr with --json.
    assert!(stderr.contains("benchmark"), "no table:\n{stderr}");
    assert!(stderr.contains("\ngoals:\n"), "no goals:\n{stderr}");

    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "agent-bench printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    let with_reference = report["with_reference"].as_bool().expect("with_reference");
    if !with_reference {
        assert!(
            !qga_tests::require_reference(),
            "QGA_REQUIRE_REFERENCE=1 but qemu-ga was not measured: {}",
            report["setup"]["qemu-ga"]
        );
        println!(
            "SKIPPED: qemu-ga's side: {}",
            report["setup"]["qemu-ga"]["skipped"]
        );
    }
    if pinned.is_some() {
        assert!(report["setup"]["placement"]["agent_cpu"].is_u64());
    }

    let rows = report["rows"].as_array().expect("rows");
    let sides: &[&str] = if with_reference {
        &["qga", "qemu-ga"]
    } else {
        &["qga"]
    };
    let expect = [
        ("startup", "exec to first reply (p50)"),
        ("startup", "agent CPU to first reply (p50)"),
        ("idle", "idle RSS (VmRSS)"),
        ("seq/guest-sync", "throughput"),
        ("seq/guest-sync", "round trip p99"),
        ("seq/guest-ping", "agent CPU per request"),
        ("seq/guest-info", "round trip p50"),
        ("pipelined", "throughput"),
        ("read/large", "throughput (wall)"),
        ("read/small", "agent CPU per MiB"),
        ("write/small", "throughput (wall)"),
        ("write/large", "peak RSS (VmHWM)"),
        ("write/single", "RSS after (VmRSS)"),
    ];
    for (key, metric) in expect {
        let r = row(rows, key, metric);
        for side in sides {
            let v = median_of(r, side);
            assert!(
                v.is_some_and(|v| v.is_finite() && v >= 0.0),
                "{key} / {metric}: no {side} value: {r}"
            );
            assert_eq!(
                r[side]["runs"].as_array().map(Vec::len),
                Some(2),
                "{key} / {metric}: {side} should have one value per round: {r}"
            );
        }
    }
    // The echo floor next to guest-sync, sequential and pipelined.
    for (key, metric) in [
        ("seq/guest-sync", "round trip p50"),
        ("pipelined", "throughput"),
    ] {
        assert!(
            median_of(row(rows, key, metric), "floor").is_some(),
            "{key}: no floor"
        );
    }
    // Every read-only command either measured or skipped with a reason.
    let skipped = report["skipped"].as_array().expect("skipped");
    for command in qga_tests::bench::SEQUENTIAL_COMMANDS {
        let measured = rows.iter().any(|r| r["key"] == format!("seq/{command}"));
        let skip = skipped.iter().find(|s| s["command"] == *command);
        assert!(
            measured != skip.is_some(),
            "{command}: measured {measured}, skipped {skip:?}"
        );
        if let Some(s) = skip {
            assert!(s["reason"].as_str().is_some_and(|r| !r.is_empty()));
        }
    }
    let goals = report["goals"].as_array().expect("goals");
    assert!(goals.len() >= 10, "{goals:?}");
    for g in goals {
        assert!(
            ["met", "missed", "not measured"].contains(&g["status"].as_str().unwrap_or("")),
            "{g}"
        );
    }
}

#[test]
fn newline_search_matches_a_naive_scan() {
    for len in 0..40 {
        for nl in 0..=len {
            let mut v: Vec<u8> = (0..len)
                .map(|i| (i as u8).wrapping_mul(37) | 0x80)
                .collect();
            if nl < len {
                v[nl] = b'\n';
                // A byte just above '\n' right after it must not confuse the search.
                if nl + 1 < len {
                    v[nl + 1] = 0x0b;
                }
            }
            assert_eq!(
                find_newline(&v),
                v.iter().position(|&b| b == b'\n'),
                "{len} {nl}"
            );
        }
    }
}

#[test]
fn replies_are_compared_as_they_arrive() {
    let (a, mut b) = UnixStream::pair().unwrap();
    let mut c = Conn::new(a).unwrap();
    b.write_all(b"{\"return\": 1}\n{\"return\": 2}\n{\"err\"}\nrest\n")
        .unwrap();
    assert_eq!(
        c.read_expected(b"{\"return\": 1}\n").unwrap(),
        Received::AsExpected
    );
    // A difference in the middle: the whole line comes back.
    assert_eq!(
        c.read_expected(b"{\"return\": 3}\n").unwrap(),
        Received::Other(b"{\"return\": 2}\n".to_vec())
    );
    // A line shorter than expected.
    assert_eq!(
        c.read_expected(b"{\"return\": 4}\n").unwrap(),
        Received::Other(b"{\"err\"}\n".to_vec())
    );
    assert_eq!(c.read_line().unwrap(), b"rest\n");
    assert!(c.pending().is_empty());

    // A reply much larger than the receive buffer, written in pieces.
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| b'a' + (i % 26) as u8)
        .chain(std::iter::once(b'\n'))
        .collect();
    let sent = big.clone();
    let writer = std::thread::spawn(move || {
        for piece in sent.chunks(100_000) {
            b.write_all(piece).unwrap();
        }
        // The same again, read line by line (scanned for the newline) this time.
        b.write_all(&sent).unwrap();
    });
    assert_eq!(c.read_expected(&big).unwrap(), Received::AsExpected);
    assert_eq!(c.read_line().unwrap(), big.as_slice());
    writer.join().unwrap();
    assert!(c.read_line().is_err(), "EOF must be an error");
}

#[test]
fn medians_and_phases() {
    assert_eq!(median(&[]), None);
    assert_eq!(median(&[3.0]), Some(3.0));
    assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
    assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    assert_eq!(median(&[f64::NAN, 2.0]), Some(2.0));
    let some = Phases::parse("starts,write").unwrap();
    assert!(some.starts && some.write && !some.read && !some.sequential && !some.pipelined);
    assert!(Phases::parse("").is_err());
    assert!(Phases::parse("bogus").is_err());
    assert_eq!(procfs::parse_cpu_list("0-2,5"), vec![0usize, 1, 2, 5]);
}
