//! Core micro-benchmarks (criterion): requests per second through parse + dispatch + serialise,
//! and base64-streamed read replies in MiB/s, each next to a baseline doing the same work with
//! `serde_json::Value` (parse the request into a value tree, build the reply tree, serialise it).
//! Both sides of a pair are benchmarked in the same run, one after the other; after criterion's
//! own report a table gives each pair's medians and the ratio (read back from the estimates
//! criterion saved in this run).
//!
//! Run: `cargo bench -p qga-core --features testing --bench core` (add `-- --quick` for a short
//! run, or `-- guest-info` to run one pair).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::Engine as _;
use criterion::{Criterion, Throughput};
use qga_core::testing::FakeHost;
use qga_core::{Agent, Config};
use serde_json::{Value, json};

/// The two sides of every pair, as criterion names them.
const OURS: &str = "qga-core";
const BASELINE: &str = "serde_json";

/// The baseline: what an agent built on serde_json values does for one request.
fn serde_json_agent(req: &[u8], out: &mut Vec<u8>, file: &mut Vec<u8>) {
    let v: Value = serde_json::from_slice(req).unwrap();
    let cmd = v["execute"].as_str().unwrap_or("");
    let ret = match cmd {
        "guest-sync" => v["arguments"]["id"].clone(),
        "guest-ping" => json!({}),
        "guest-info" => {
            let cmds: Vec<Value> = qga_core::command::COMMANDS
                .iter()
                .rev()
                .map(|s| json!({"enabled": true, "name": s.name, "success-response": s.success_response}))
                .collect();
            json!({"version": "0.1.0", "supported_commands": cmds})
        }
        "guest-file-write" => {
            let b64 = v["arguments"]["buf-b64"].as_str().unwrap_or("");
            let data = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            file.clear();
            file.extend_from_slice(&data);
            json!({"count": data.len(), "eof": false})
        }
        "guest-file-seek" => {
            file.clear();
            json!({"position": 0, "eof": false})
        }
        _ => Value::Null,
    };
    let mut reply = serde_json::Map::new();
    reply.insert("return".into(), ret);
    if let Some(id) = v.get("id") {
        reply.insert("id".into(), id.clone());
    }
    out.clear();
    serde_json::to_writer(&mut *out, &Value::Object(reply)).unwrap();
    out.push(b'\n');
}

/// The request pairs: (criterion group name, request bytes).
fn request_cases() -> Vec<(&'static str, Vec<u8>)> {
    let data: Vec<u8> = (0..1024u32).map(|i| i as u8).collect();
    let write_1k = format!(
        "{{\"execute\":\"guest-file-write\",\"arguments\":{{\"handle\":1000,\"buf-b64\":\"{}\"}}}}",
        base64::engine::general_purpose::STANDARD.encode(&data)
    );
    vec![
        (
            "guest-sync with id",
            b"{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1795690610553},\"id\":\"req-1\"}"
                .to_vec(),
        ),
        ("guest-ping", b"{\"execute\":\"guest-ping\"}".to_vec()),
        ("guest-info", b"{\"execute\":\"guest-info\"}".to_vec()),
        ("guest-file-write 1 KiB + seek", write_1k.into_bytes()),
    ]
}

/// Rewinds the benchmark's file (handle 1000) to its start.
const SEEK: &[u8] =
    b"{\"execute\":\"guest-file-seek\",\"arguments\":{\"handle\":1000,\"offset\":0,\"whence\":0}}";

const READ_GROUP: &str = "guest-file-read 4000 B";
const READ_SIZE: usize = 4000;

fn requests(c: &mut Criterion) {
    for (name, req) in request_cases() {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(1));

        let mut frame = vec![0u8; 64 * 1024];
        let mut work = vec![0u8; 8192];
        let mut host = FakeHost::new();
        host.put_file(b"/f", b"");
        let mut agent = Agent::new(host, &mut frame[..], &mut work[..], Config::default());
        let mut out = Vec::with_capacity(8192);
        agent
            .process(
                b"{\"execute\":\"guest-file-open\",\"arguments\":{\"path\":\"/f\",\"mode\":\"w\"}}",
                &mut out,
            )
            .unwrap();
        let rewind = name.starts_with("guest-file-write");
        group.bench_function(OURS, |b| {
            b.iter(|| {
                out.clear();
                agent.process(black_box(&req[..]), &mut out).unwrap();
                // The fake file is small: rewind so writes keep fitting (the baseline does the
                // same two requests).
                if rewind {
                    out.clear();
                    agent.process(SEEK, &mut out).unwrap();
                }
            })
        });

        let mut out2 = Vec::with_capacity(8192);
        let mut file = Vec::new();
        group.bench_function(BASELINE, |b| {
            b.iter(|| {
                serde_json_agent(black_box(&req[..]), &mut out2, &mut file);
                if rewind {
                    serde_json_agent(SEEK, &mut out2, &mut file);
                }
            })
        });
        group.finish();
    }
}

/// Streamed file read replies: base64 straight from the host into the output, against
/// encoding into a String and serialising a value tree.
fn file_read(c: &mut Criterion) {
    let data: Vec<u8> = (0..READ_SIZE as u32).map(|i| (i * 31) as u8).collect();
    let mut group = c.benchmark_group(READ_GROUP);
    group.throughput(Throughput::Bytes(READ_SIZE as u64));

    let mut host = FakeHost::new();
    host.put_file(b"/r", &data);
    let mut frame = vec![0u8; 64 * 1024];
    let mut work = vec![0u8; 8192];
    let mut agent = Agent::new(host, &mut frame[..], &mut work[..], Config::default());
    let mut out = Vec::with_capacity(16384);
    agent
        .process(
            b"{\"execute\":\"guest-file-open\",\"arguments\":{\"path\":\"/r\"}}",
            &mut out,
        )
        .unwrap();
    let read = b"{\"execute\":\"guest-file-seek\",\"arguments\":{\"handle\":1000,\"offset\":0,\"whence\":0}}{\"execute\":\"guest-file-read\",\"arguments\":{\"handle\":1000,\"count\":4000}}";
    group.bench_function(OURS, |b| {
        b.iter(|| {
            out.clear();
            agent.process(black_box(&read[..]), &mut out).unwrap();
        })
    });
    let mut out2 = Vec::with_capacity(16384);
    group.bench_function(BASELINE, |b| {
        b.iter(|| {
            let v = json!({
                "count": data.len(),
                "buf-b64": base64::engine::general_purpose::STANDARD.encode(black_box(&data)),
                "eof": true
            });
            let mut r = serde_json::Map::new();
            r.insert("return".into(), v);
            out2.clear();
            serde_json::to_writer(&mut out2, &Value::Object(r)).unwrap();
        })
    });
    group.finish();
}

/// Where criterion keeps its results: the rule criterion itself follows.
fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return Path::new(&target).join("criterion");
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .ok()
        .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
        .and_then(|m| m["target_directory"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("criterion")
}

/// The median time per iteration (ns) criterion saved for `group`/`function` during this run
/// (saved after `since`); None when the pair was filtered out or not measured (test mode).
fn median_ns(home: &Path, group: &str, function: &str, since: SystemTime) -> Option<f64> {
    let safe = |s: &str| s.replace(['?', '"', '/', '\\', '*', '<', '>', ':', '|', '^'], "_");
    let path = home
        .join(safe(group))
        .join(safe(function))
        .join("new/estimates.json");
    let fresh = std::fs::metadata(&path).ok()?.modified().ok()? >= since;
    if !fresh {
        return None;
    }
    let v: Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn ratio_table(since: SystemTime) {
    let home = criterion_home();
    let mut rows = Vec::new();
    for (group, _) in request_cases() {
        if let (Some(ours), Some(base)) = (
            median_ns(&home, group, OURS, since),
            median_ns(&home, group, BASELINE, since),
        ) {
            rows.push(format!(
                "{group:<26} {:>12.0} req/s {:>12.0} req/s {:>7.2}x",
                1e9 / ours,
                1e9 / base,
                base / ours
            ));
        }
    }
    if let (Some(ours), Some(base)) = (
        median_ns(&home, READ_GROUP, OURS, since),
        median_ns(&home, READ_GROUP, BASELINE, since),
    ) {
        let mib = READ_SIZE as f64 / (1024.0 * 1024.0);
        rows.push(format!(
            "{READ_GROUP:<26} {:>12.1} MiB/s {:>12.1} MiB/s {:>7.2}x",
            mib / (ours * 1e-9),
            mib / (base * 1e-9),
            base / ours
        ));
    }
    if rows.is_empty() {
        return;
    }
    println!("\nmedians from criterion ({}):", home.display());
    println!(
        "{:<26} {:>18} {:>18} {:>8}",
        "request", OURS, BASELINE, "ratio"
    );
    for row in rows {
        println!("{row}");
    }
}

fn main() {
    let since = SystemTime::now();
    let mut c = Criterion::default().configure_from_args();
    requests(&mut c);
    file_read(&mut c);
    c.final_summary();
    ratio_table(since);
}
