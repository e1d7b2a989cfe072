//! Soak (bounded, no timing assertions): 1,000,000 requests and 1,000 reconnects against the
//! release `qga` binary on a unix socket. Its resident memory and open descriptors are read from
//! /proc before and after, printed, and must not grow.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use qga_tests::tempdir::TempDir;

/// Builds the release `qga` (a no-op when fresh) and returns its path.
fn release_qga() -> PathBuf {
    qga_tests::build::qga_package_bin("qga", true, "QGA_RELEASE_BIN")
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Reads until `n` newline-terminated replies have arrived; returns the last one.
fn read_replies(s: &mut UnixStream, n: usize, buf: &mut Vec<u8>) -> Vec<u8> {
    let mut seen = 0;
    let mut last_start = 0;
    let mut scanned = 0;
    let mut chunk = [0u8; 1 << 16];
    buf.clear();
    while seen < n {
        let k = s.read(&mut chunk).expect("read replies");
        assert!(k > 0, "the agent closed the connection");
        buf.extend_from_slice(&chunk[..k]);
        while let Some(p) = buf[scanned..].iter().position(|&b| b == b'\n') {
            seen += 1;
            if seen == n {
                last_start = scanned;
            }
            scanned += p + 1;
        }
    }
    buf[last_start..scanned].to_vec()
}

#[test]
fn a_million_requests_and_a_thousand_reconnects() {
    let bin = release_qga();
    let dir = TempDir::new("qga-soak").unwrap();
    let sock = dir.path().join("qga.sock");
    let mut child = Command::new(&bin)
        .args(["-m", "unix-listen", "-p"])
        .arg(&sock)
        .arg("-t")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start qga");
    let pid = child.id();
    let start = Instant::now();
    while !sock.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "qga did not create its socket"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = Vec::new();

    // Requests pipelined in batches, alternating guest-sync (with ids) and guest-ping.
    let batch = 1000usize;
    let send_batch = |s: &mut UnixStream, base: usize, buf: &mut Vec<u8>| {
        let mut req = Vec::with_capacity(batch * 64);
        for i in 0..batch {
            if i % 2 == 0 {
                req.extend_from_slice(
                    format!(
                        "{{\"execute\":\"guest-sync\",\"arguments\":{{\"id\":{}}}}}",
                        base + i
                    )
                    .as_bytes(),
                );
            } else {
                req.extend_from_slice(b"{\"execute\":\"guest-ping\",\"id\":\"p\"}");
            }
        }
        s.write_all(&req).unwrap();
        read_replies(s, batch, buf)
    };
    // Warm up (allocator arenas, buffers), then the baseline.
    for b in 0..10 {
        send_batch(&mut s, b * batch, &mut buf);
    }
    let (rss0, fds0) = (status_kib(pid, "VmRSS:"), open_fds(pid));

    let t = Instant::now();
    let total = 1_000_000usize;
    for b in 0..total / batch {
        let last = send_batch(&mut s, b * batch, &mut buf);
        assert_eq!(last, b"{\"return\": {}, \"id\": \"p\"}\n", "batch {b}");
    }
    let requests_time = t.elapsed();
    drop(s);

    // Reconnects: each one resynchronises as a host does, a third leave half a request behind.
    let t = Instant::now();
    for i in 0..1000u32 {
        let mut s = UnixStream::connect(&sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        // A NUL first: whatever the previous connection left, it ends in one error.
        s.write_all(b"\0").unwrap();
        let mut req = vec![0xFFu8];
        req.extend_from_slice(
            format!("{{\"execute\":\"guest-sync-delimited\",\"arguments\":{{\"id\":{i}}}}}")
                .as_bytes(),
        );
        s.write_all(&req).unwrap();
        // The error for the NUL, the error for the 0xFF, then the delimited reply.
        let last = read_replies(&mut s, 3, &mut buf);
        let mut expect = vec![0xFFu8];
        expect.extend_from_slice(format!("{{\"return\": {i}}}\n").as_bytes());
        assert_eq!(last, expect, "reconnect {i}");
        if i % 3 == 0 {
            s.write_all(b"{\"execute\":\"guest-pi").unwrap();
        }
    }
    let reconnect_time = t.elapsed();
    // Measure in the same situation as the baseline: one client connected and served.
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":1}}")
        .unwrap();
    read_replies(&mut s, 2, &mut buf);
    let (rss1, fds1) = (status_kib(pid, "VmRSS:"), open_fds(pid));
    let hwm = status_kib(pid, "VmHWM:");
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "soak: {total} requests in {:.1} s, 1000 reconnects in {:.2} s; RSS {rss0} -> {rss1} KiB \
         (peak {hwm} KiB), open fds {fds0} -> {fds1}",
        requests_time.as_secs_f64(),
        reconnect_time.as_secs_f64()
    );
    assert_eq!(fds1, fds0, "open descriptors grew");
    // Page-granular noise is allowed; growth with the request count is not.
    assert!(rss1 <= rss0 + 256, "RSS grew from {rss0} KiB to {rss1} KiB");
}
