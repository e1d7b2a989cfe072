//! Black-box tests of the `qga-client` binary: against Debian's qemu-ga 7.2 (skipped when it is
//! not installed, unless `QGA_REQUIRE_REFERENCE=1`), against the `qga` daemon (skipped until it
//! is built), and against the hostile fake agent of `qga_tests::hostile`, where every case must
//! end within its timeout, with the documented exit code and message, in bounded memory.
//!
//! The binary is built with `cargo build -p qga --bin qga-client` into this test's target
//! directory first (a no-op when it is fresh), or taken from `$QGA_CLIENT_BIN`. Peak memory is
//! measured exactly with GNU time (`/usr/bin/time -f %M`) when it is installed, otherwise (or
//! with `QGA_TESTS_SAMPLE_RSS=1`) by sampling `VmHWM` in `/proc/<pid>/status` every millisecond
//! while the client runs (a lower bound).
//!
//! Run with `-- --nocapture` to see one line per case (exit code, wall time, peak RSS).

// Test code: failing loudly (panic, expect) is the point here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use qga_tests::hostile::{HostileAgent, Mode, STALE_THEN_CORRECT_TIME};
use qga_tests::process::{AgentProcess, DEFAULT_TIMEOUT, Privileges, reference_agent_path};
use qga_tests::require_reference;

/// Exit codes documented in `qga-client --help`.
const OK: i32 = 0;
const USAGE: i32 = 64;
const CONNECT: i32 = 69;
const AGENT_ERROR: i32 = 70;
const CONNECTION_LOST: i32 = 74;
const TIMEOUT: i32 = 75;
const PROTOCOL: i32 = 76;

/// Bound on the client's peak resident memory in every hostile case.
const MAX_RSS_KIB: u64 = 32 * 1024;
/// The client runs with `--timeout 2`; it must end well within this.
const MAX_WALL: Duration = Duration::from_secs(10);
/// A client still running after this is killed (and the test fails).
const KILL_AFTER: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Finding and running the binaries

/// `target/<profile>`: the directory of this test binary's parent (`deps`).
fn profile_dir() -> PathBuf {
    qga_tests::build::profile_dir()
}

/// The `qga-client` binary, built first if needed.
fn client_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| qga_tests::build::qga_package_bin("qga-client", false, "QGA_CLIENT_BIN"))
}

/// The `qga` daemon binary, if it has been built.
fn daemon_bin() -> Result<PathBuf, String> {
    let path =
        std::env::var_os("QGA_DAEMON_BIN").map_or_else(|| profile_dir().join("qga"), PathBuf::from);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{} is not built yet", path.display()))
    }
}

/// One run of the client.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
    wall: Duration,
    /// Peak resident set size in KiB, and whether it is exact.
    rss_kib: Option<(u64, bool)>,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn summary(&self) -> String {
        let rss = match self.rss_kib {
            Some((kib, true)) => format!("{:.1} MiB", kib as f64 / 1024.0),
            Some((kib, false)) => format!(">= {:.1} MiB (sampled)", kib as f64 / 1024.0),
            None => "unknown".to_owned(),
        };
        format!(
            "exit {:?}, {:.2} s, peak RSS {rss}, stderr {:?}",
            self.code,
            self.wall.as_secs_f64(),
            self.stderr.trim_end()
        )
    }
}

/// GNU time, unless missing or `QGA_TESTS_SAMPLE_RSS=1` asks for sampling instead.
fn gnu_time() -> Option<&'static Path> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            if std::env::var_os("QGA_TESTS_SAMPLE_RSS").is_some_and(|v| v == "1") {
                return None;
            }
            let time = PathBuf::from("/usr/bin/time");
            let works = Command::new(&time)
                .args(["-f", "%M", "true"])
                .stderr(Stdio::piped())
                .output()
                .is_ok_and(|o| {
                    o.status.success()
                        && String::from_utf8_lossy(&o.stderr)
                            .trim()
                            .parse::<u64>()
                            .is_ok()
                });
            works.then_some(time)
        })
        .as_deref()
}

/// Runs `qga-client ARGS` with `stdin` and waits (killing it after [`KILL_AFTER`]).
fn run_client<S: AsRef<OsStr>>(args: &[S], stdin: &[u8]) -> Run {
    let dir = qga_tests::tempdir::TempDir::new("qga-client-run").expect("temp dir");
    let rss_file = dir.path().join("rss");
    let timeout_bin = ["/usr/bin/timeout", "/bin/timeout"]
        .into_iter()
        .find(|p| Path::new(p).is_file());
    let mut command = match gnu_time() {
        Some(time) => {
            let mut c = Command::new(time);
            c.arg("-f").arg("%M").arg("-o").arg(&rss_file);
            // `timeout` kills the client itself if it hangs; killing `time` would orphan it.
            if let Some(t) = timeout_bin {
                c.arg(t)
                    .args(["-s", "KILL"])
                    .arg(KILL_AFTER.as_secs().to_string());
            }
            c.arg(client_bin());
            c
        }
        None => Command::new(client_bin()),
    };
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = command.spawn().expect("cannot start qga-client");
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let mut sampled = 0u64;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if gnu_time().is_none() {
            sampled = sampled.max(vm_hwm_kib(child.id()).unwrap_or(0));
        }
        if start.elapsed() > KILL_AFTER {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let wall = start.elapsed();
    let _ = writer.join();
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    let rss_kib = if gnu_time().is_some() {
        std::fs::read_to_string(&rss_file)
            .ok()
            .and_then(|t| t.lines().rev().find_map(|l| l.trim().parse().ok()))
            .map(|kib| (kib, true))
    } else {
        (sampled > 0).then_some((sampled, false))
    };
    Run {
        code: status.code(),
        stdout,
        stderr,
        wall,
        rss_kib,
    }
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn socket_args(socket: &Path, extra: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["--socket".into(), socket.into()];
    args.extend(extra.iter().map(OsString::from));
    args
}

#[track_caller]
fn expect(run: &Run, code: i32, stderr_has: &str) {
    assert_eq!(run.code, Some(code), "{}", run.summary());
    assert!(
        run.stderr.contains(stderr_has),
        "expected {stderr_has:?}: {}",
        run.summary()
    );
}

// ---------------------------------------------------------------------------------------------
// Against real agents

/// The safe commands, run against an agent listening on `socket`, with `dir` a directory it
/// may write to.
fn exercise_agent(label: &str, socket: &Path, dir: &Path, version_prefix: &str) {
    let run = |extra: &[&str]| run_client(&socket_args(socket, extra), b"");

    let r = run(&["ping"]);
    expect(&r, OK, "");
    assert!(r.stdout.is_empty(), "{label}: ping prints nothing");

    let r = run(&["info"]);
    expect(&r, OK, "");
    assert!(
        r.stdout()
            .starts_with(&format!("version: {version_prefix}")),
        "{label}: {}",
        r.stdout()
    );
    assert!(
        r.stdout().contains("  guest-sync-delimited\n"),
        "{label}: {}",
        r.stdout()
    );

    // Raw commands print the return value as compact JSON (stdout is a pipe).
    let r = run(&["guest-sync", "{\"id\": 4242}"]);
    expect(&r, OK, "");
    assert_eq!(r.stdout(), "4242\n", "{label}");
    let r = run(&["guest-info"]);
    expect(&r, OK, "");
    let info: serde_json::Value =
        serde_json::from_slice(&r.stdout).expect("guest-info prints JSON");
    assert!(
        info["version"]
            .as_str()
            .is_some_and(|v| v.starts_with(version_prefix)),
        "{label}"
    );
    assert!(!r.stdout().contains(": "), "{label}: compact output");

    let r = run(&["time"]);
    expect(&r, OK, "");
    let t = r.stdout();
    assert!(
        t.len() == 31 && t.ends_with("Z\n") && t.as_bytes().get(10) == Some(&b'T'),
        "{label}: {t}"
    );

    let r = run(&["osinfo"]);
    expect(&r, OK, "");
    assert!(
        r.stdout().contains("kernel-release: "),
        "{label}: {}",
        r.stdout()
    );

    let r = run(&["ifaddr"]);
    expect(&r, OK, "");
    assert!(
        r.stdout().lines().any(|l| l.starts_with("lo ")),
        "{label}: {}",
        r.stdout()
    );

    // Sync variants.
    for flag in ["--plain-sync", "--no-sync"] {
        let r = run(&[flag, "guest-sync", "{\"id\": 7}"]);
        expect(&r, OK, "");
        assert_eq!(r.stdout(), "7\n", "{label} {flag}");
    }

    // Errors of the agent, and arguments that are not an object.
    let r = run(&["cat", "/nonexistent/qga-client-test"]);
    expect(&r, AGENT_ERROR, "GenericError");
    let r = run(&["guest-file-open", "{\"path\": 1}"]);
    expect(&r, AGENT_ERROR, "the guest agent returned an error: ");
    let r = run(&["guest-no-such-command"]);
    expect(&r, AGENT_ERROR, "CommandNotFound");
    let r = run(&["guest-ping", "[1]"]);
    expect(&r, USAGE, "one JSON object");

    // exec (the agent runs unprivileged): output, exit status, signal.
    let r = run(&["exec", "--", "/bin/echo", "hello", "world"]);
    expect(&r, OK, "");
    assert_eq!(r.stdout(), "hello world\n", "{label}");
    let r = run(&["exec", "/bin/false"]);
    assert_eq!(r.code, Some(1), "{label}: {}", r.summary());
    let r = run(&["exec", "/bin/sh", "-c", "echo err >&2; kill -9 $$"]);
    assert_eq!(r.code, Some(128 + 9), "{label}: {}", r.summary());
    assert_eq!(r.stderr, "err\n", "{label}");
    let r = run(&["exec", "/nonexistent/program"]);
    expect(&r, AGENT_ERROR, "");

    // put / get / cat round trip inside the agent's directory, across chunk boundaries.
    let data: Vec<u8> = (0..1_500_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let local = qga_tests::tempdir::TempDir::new("qga-client-files").expect("temp dir");
    let src = local.path().join("src.bin");
    std::fs::write(&src, &data).expect("write src");
    let guest = dir.join("copy.bin");
    let guest_s = guest.to_str().expect("utf-8 path");
    let r = run(&["put", src.to_str().expect("utf-8"), guest_s]);
    expect(&r, OK, "");
    assert_eq!(
        std::fs::read(&guest).expect("the agent wrote the file"),
        data,
        "{label}: put"
    );
    let back = local.path().join("back.bin");
    let r = run(&["get", guest_s, back.to_str().expect("utf-8")]);
    expect(&r, OK, "");
    assert_eq!(
        std::fs::read(&back).expect("get wrote DEST"),
        data,
        "{label}: get"
    );
    let r = run(&["cat", guest_s]);
    expect(&r, OK, "");
    assert_eq!(r.stdout, data, "{label}: cat");
    // From standard input, and an empty file.
    let r = run_client(
        &socket_args(socket, &["put", "-", guest_s]),
        b"from stdin\n",
    );
    expect(&r, OK, "");
    assert_eq!(
        std::fs::read(&guest).expect("file"),
        b"from stdin\n",
        "{label}"
    );
    let r = run_client(&socket_args(socket, &["put", "-", guest_s]), b"");
    expect(&r, OK, "");
    assert_eq!(std::fs::read(&guest).expect("file").len(), 0, "{label}");
    let r = run(&["get", guest_s, "-"]);
    expect(&r, OK, "");
    assert!(r.stdout.is_empty(), "{label}");
    // A guest file that cannot be read leaves DEST alone.
    let r = run(&["get", "/nonexistent/file", back.to_str().expect("utf-8")]);
    expect(&r, AGENT_ERROR, "");
    assert_eq!(
        std::fs::read(&back).expect("DEST untouched"),
        data,
        "{label}"
    );
    println!("{label}: every safe command behaved as expected");
}

fn start_and_wait(program: &Path, label: &str) -> Result<AgentProcess, String> {
    let mut process = AgentProcess::spawn_unix_listen(program, label, Privileges::Unprivileged)?;
    // Connect once to know it listens; the connection is closed right away so that the agent
    // (which serves one client at a time) accepts qga-client's.
    drop(process.connect(DEFAULT_TIMEOUT)?);
    Ok(process)
}

#[test]
fn against_reference_qemu_ga() {
    let process = match start_and_wait(&reference_agent_path(), "qemu-ga") {
        Ok(p) => p,
        Err(reason) => {
            assert!(
                !require_reference(),
                "reference agent unavailable and QGA_REQUIRE_REFERENCE=1: {reason}"
            );
            println!("SKIPPED: reference agent unavailable: {reason}");
            return;
        }
    };
    exercise_agent("qemu-ga", process.socket_path(), process.dir(), "7.2");
}

#[test]
fn against_qga_daemon() {
    let program = match daemon_bin() {
        Ok(p) => p,
        Err(reason) => {
            println!("SKIPPED: qga daemon: {reason}");
            return;
        }
    };
    let process = match start_and_wait(&program, "qga") {
        Ok(p) => p,
        Err(reason) => panic!("the qga daemon does not start: {reason}"),
    };
    exercise_agent("qga", process.socket_path(), process.dir(), "");
}

// ---------------------------------------------------------------------------------------------
// Against the hostile agent

/// Hostile cases run one at a time, so that their wall times are not distorted by each other.
static HOSTILE: Mutex<()> = Mutex::new(());

/// Runs `qga-client --socket S --timeout 2 ARGS` against an agent in `mode` and checks the
/// exit code, the message, the wall time and the peak memory.
fn hostile(mode: Mode, args: &[&str], code: i32, stderr_has: &str) -> Run {
    let _one_at_a_time = HOSTILE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let agent = HostileAgent::start(mode).expect("hostile agent");
    let mut all = vec!["--timeout", "2"];
    all.extend_from_slice(args);
    let run = run_client(&socket_args(agent.socket_path(), &all), b"");
    println!("hostile {mode:?} {args:?}: {}", run.summary());
    expect(&run, code, stderr_has);
    assert!(run.wall < MAX_WALL, "{mode:?}: {}", run.summary());
    if code == TIMEOUT {
        // The deadline is honoured, not cut short.
        assert!(
            run.wall >= Duration::from_millis(1900),
            "{mode:?}: {}",
            run.summary()
        );
    }
    if let Some((kib, _)) = run.rss_kib {
        assert!(kib < MAX_RSS_KIB, "{mode:?}: {}", run.summary());
    }
    run
}

#[test]
fn hostile_silent() {
    hostile(Mode::Silent, &["ping"], TIMEOUT, "timed out");
}

#[test]
fn hostile_ff_storm() {
    hostile(Mode::FfStorm, &["ping"], TIMEOUT, "timed out");
}

#[test]
fn hostile_endless_string_in_sync() {
    hostile(Mode::EndlessStringInSync, &["ping"], TIMEOUT, "timed out");
}

#[test]
fn hostile_not_json_in_sync() {
    hostile(Mode::NotJsonInSync, &["ping"], TIMEOUT, "timed out");
}

#[test]
fn hostile_wrong_sync_ids() {
    hostile(Mode::WrongSyncIds, &["ping"], TIMEOUT, "timed out");
}

#[test]
fn hostile_wrong_request_ids() {
    hostile(Mode::WrongRequestIds, &["ping"], TIMEOUT, "timed out");
}

#[test]
fn hostile_slow_drip() {
    hostile(Mode::SlowDrip, &["ping"], TIMEOUT, "timed out");
}

#[test]
fn hostile_oversized_reply() {
    hostile(
        Mode::Oversized,
        &["guest-info"],
        PROTOCOL,
        "larger than allowed",
    );
}

#[test]
fn hostile_endless_string() {
    hostile(
        Mode::EndlessString,
        &["guest-info"],
        PROTOCOL,
        "larger than allowed",
    );
}

#[test]
fn hostile_deep_nesting() {
    hostile(
        Mode::DeepNesting,
        &["guest-info"],
        PROTOCOL,
        "larger than allowed",
    );
}

#[test]
fn hostile_many_members() {
    hostile(
        Mode::ManyMembers,
        &["guest-info"],
        PROTOCOL,
        "larger than allowed",
    );
}

#[test]
fn hostile_not_json() {
    hostile(Mode::NotJson, &["ping"], PROTOCOL, "not JSON");
}

#[test]
fn hostile_not_a_reply() {
    hostile(Mode::NotAReply, &["ping"], PROTOCOL, "not a reply object");
}

#[test]
fn hostile_bad_error() {
    hostile(Mode::BadError, &["ping"], PROTOCOL, "malformed error reply");
}

#[test]
fn hostile_wrong_type() {
    hostile(
        Mode::WrongType,
        &["time"],
        PROTOCOL,
        "not what was expected",
    );
}

#[test]
fn hostile_half_reply_then_close() {
    hostile(
        Mode::HalfReplyThenClose,
        &["info"],
        CONNECTION_LOST,
        "closed the connection",
    );
}

#[test]
fn hostile_bad_exec_status() {
    hostile(
        Mode::BadExecStatus,
        &["exec", "/bin/true"],
        PROTOCOL,
        "not what was expected",
    );
}

#[test]
fn hostile_bad_file_read_closes_the_handle() {
    let _one_at_a_time = HOSTILE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let agent = HostileAgent::start(Mode::BadFileRead).expect("hostile agent");
    let run = run_client(
        &socket_args(agent.socket_path(), &["--timeout", "2", "cat", "/x"]),
        b"",
    );
    println!("hostile BadFileRead [\"cat\", \"/x\"]: {}", run.summary());
    expect(&run, PROTOCOL, "not what was expected");
    assert!(
        run.stdout.is_empty(),
        "no data from a read that failed its check"
    );
    assert_eq!(
        agent.closed_handles(),
        1,
        "the handle is closed after the protocol error"
    );
}

#[test]
fn stale_replies_and_garbage_are_skipped() {
    let run = hostile(Mode::StaleThenCorrect, &["time"], OK, "");
    let secs = STALE_THEN_CORRECT_TIME / 1_000_000_000;
    assert_eq!(secs, 1_795_690_610);
    assert_eq!(run.stdout(), "2026-11-26T10:56:50.553972000Z\n");
    hostile(Mode::StaleThenCorrect, &["ping"], OK, "");
    let run = hostile(Mode::StaleThenCorrect, &["fsfreeze", "status"], OK, "");
    assert_eq!(run.stdout(), "thawed\n");
    let run = hostile(Mode::StaleThenCorrect, &["fsfreeze", "freeze"], OK, "");
    assert_eq!(run.stdout(), "2\n");
}

#[test]
fn commands_without_a_success_reply() {
    // EOF, even in the middle of a reply, and silence until the deadline are success for
    // guest-shutdown; an error reply is still an error.
    hostile(Mode::HalfReplyThenClose, &["shutdown"], OK, "");
    let run = hostile(
        Mode::WrongRequestIds,
        &["shutdown", "--mode", "reboot"],
        OK,
        "",
    );
    assert!(run.wall >= Duration::from_millis(1900), "{}", run.summary());
    hostile(
        Mode::StaleThenCorrect,
        &["shutdown", "--mode=halt"],
        AGENT_ERROR,
        "CommandNotFound: not in this script",
    );
}

#[test]
fn cannot_connect_and_usage() {
    let r = run_client(&["--socket", "/nonexistent/qga.sock", "ping"], b"");
    expect(&r, CONNECT, "cannot connect to /nonexistent/qga.sock");
    let r = run_client(&["ping"], b"");
    expect(&r, USAGE, "--socket");
    let r = run_client(&["--help"], b"");
    expect(&r, OK, "");
    for code in [
        USAGE,
        CONNECT,
        AGENT_ERROR,
        CONNECTION_LOST,
        TIMEOUT,
        PROTOCOL,
    ] {
        assert!(
            r.stdout().contains(&format!("\n  {code}  ")),
            "--help documents {code}"
        );
    }
}
