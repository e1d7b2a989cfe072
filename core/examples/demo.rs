//! A scripted exchange with the agent, printing each request and the exact reply bytes: what a
//! host (libvirt, Proxmox, QEMU's own client) sends and what qga answers.
//!
//! Run: `cargo run -p qga-core --features testing --example demo`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use qga_core::testing::FakeHost;
use qga_core::{Agent, Config};

fn show(bytes: &[u8]) -> String {
    // Printable ASCII as is, everything else (0xFF, control bytes) as \xNN.
    bytes
        .iter()
        .map(|&b| match b {
            b'\n' => "\\n".to_string(),
            0x20..=0x7e => (b as char).to_string(),
            _ => format!("\\x{b:02x}"),
        })
        .collect()
}

fn main() {
    let mut frame = vec![0u8; 64 * 1024];
    let mut work = vec![0u8; 8192];
    let mut agent = Agent::new(
        FakeHost::new(),
        &mut frame[..],
        &mut work[..],
        Config::default(),
    );
    let script: &[&[u8]] = &[
        // QEMU's documented resync: 0xFF, then guest-sync-delimited.
        b"\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":1795690610}}",
        b"{\"execute\":\"guest-ping\",\"id\":\"abc\"}",
        b"{'execute':'guest-sync','arguments':{'id':-1}}",
        b"{\"execute\":\"guest-get-time\"}",
        b"{\"execute\":\"guest-file-open\",\"arguments\":{\"path\":\"/tmp/demo\",\"mode\":\"w+\"}}",
        b"{\"execute\":\"guest-file-write\",\"arguments\":{\"handle\":1000,\"buf-b64\":\"SGVsbG8gV29ybGQhCgA=\"}}",
        b"{\"execute\":\"guest-file-seek\",\"arguments\":{\"handle\":1000,\"offset\":6,\"whence\":\"set\"}}",
        b"{\"execute\":\"guest-file-read\",\"arguments\":{\"handle\":1000,\"count\":3}}",
        b"{\"execute\":\"guest-set-vcpus\",\"arguments\":{\"vcpus\":[{\"logical-id\":0}]}}",
        b"{\"execute\":\"guest-foo\",\"id\":{\"b\":1,\"a\":[1,2]}}",
        b"{\"execute\":\"guest-ping\",\"id\":\"a\x01b\"}",
    ];
    for req in script {
        let mut out = Vec::new();
        agent.process(req, &mut out).unwrap();
        println!("-> {}", show(req));
        for line in out.split_inclusive(|&b| b == b'\n') {
            println!("<- {}", show(line));
        }
    }
}
