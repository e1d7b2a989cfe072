//! Core micro-benchmarks: requests per second through parse + dispatch + serialise, and
//! base64-streamed read replies, each next to a baseline doing the same work with
//! `serde_json::Value` (parse the request into a value tree, build the reply tree, serialise it)
//! in the same run. Prints medians of several rounds and the ratio.
//!
//! Run: `cargo bench -p qga-core --features testing --bench core` (`-- --quick` for a short run)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::Engine as _;
use qga_core::testing::FakeHost;
use qga_core::{Agent, Config};
use serde_json::{Value, json};

/// Median time per iteration of `f` over `rounds` rounds of `iters` iterations.
fn measure(rounds: usize, iters: usize, mut f: impl FnMut()) -> Duration {
    let mut samples: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed() / iters as u32
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

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

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // QGA_BENCH=substring runs only the matching cases (for profiling one of them).
    let only = std::env::var("QGA_BENCH").unwrap_or_default();
    let (rounds, scale) = if quick { (3, 1) } else { (15, 20) };

    let write_1k = {
        let data: Vec<u8> = (0..1024u32).map(|i| i as u8).collect();
        format!(
            "{{\"execute\":\"guest-file-write\",\"arguments\":{{\"handle\":1000,\"buf-b64\":\"{}\"}}}}",
            base64::engine::general_purpose::STANDARD.encode(&data)
        )
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "guest-sync with id",
            b"{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1795690610553},\"id\":\"req-1\"}"
                .to_vec(),
        ),
        ("guest-ping", b"{\"execute\":\"guest-ping\"}".to_vec()),
        ("guest-info", b"{\"execute\":\"guest-info\"}".to_vec()),
        ("guest-file-write 1 KiB", write_1k.into_bytes()),
    ];

    println!(
        "{:<26} {:>14} {:>14} {:>8}",
        "request", "qga-core req/s", "serde_json req/s", "ratio"
    );
    for (name, req) in cases.iter().filter(|(n, _)| n.contains(only.as_str())) {
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
        let ours = measure(rounds, 2000 * scale, || {
            out.clear();
            agent.process(black_box(req), &mut out).unwrap();
            // The fake file is small: rewind so writes keep fitting.
            if name.starts_with("guest-file-write") {
                out.clear();
                agent
                    .process(
                        b"{\"execute\":\"guest-file-seek\",\"arguments\":{\"handle\":1000,\"offset\":0,\"whence\":0}}",
                        &mut out,
                    )
                    .unwrap();
            }
        });
        let mut out2 = Vec::with_capacity(8192);
        let mut file = Vec::new();
        let base = measure(rounds, 2000 * scale, || {
            serde_json_agent(black_box(req), &mut out2, &mut file)
        });
        println!(
            "{:<26} {:>14.0} {:>14.0} {:>7.2}x",
            name,
            1.0 / ours.as_secs_f64(),
            1.0 / base.as_secs_f64(),
            base.as_secs_f64() / ours.as_secs_f64()
        );
    }

    if !"guest-file-read".contains(only.as_str()) {
        return;
    }
    // Streamed file read replies: base64 straight from the host into the output.
    let data: Vec<u8> = (0..4000u32).map(|i| (i * 31) as u8).collect();
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
    let ours = measure(rounds, 500 * scale, || {
        out.clear();
        agent.process(black_box(read), &mut out).unwrap();
    });
    let base = measure(rounds, 500 * scale, || {
        let v = json!({"count": data.len(), "buf-b64": base64::engine::general_purpose::STANDARD.encode(black_box(&data)), "eof": true});
        let mut r = serde_json::Map::new();
        r.insert("return".into(), v);
        out.clear();
        serde_json::to_writer(&mut out, &Value::Object(r)).unwrap();
    });
    let mib = data.len() as f64 / (1024.0 * 1024.0);
    println!(
        "{:<26} {:>11.1} MiB/s {:>11.1} MiB/s {:>7.2}x",
        "guest-file-read 4000 B",
        mib / ours.as_secs_f64(),
        mib / base.as_secs_f64(),
        base.as_secs_f64() / ours.as_secs_f64()
    );
}
