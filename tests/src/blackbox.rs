//! Black-box runs of agent binaries (the `qga` daemon and Debian's qemu-ga 7.2) with any command
//! line: building `qga`, a temporary directory owned by `nobody`, starting an agent there as
//! `nobody`, signals and exit statuses, figures from `/proc/<pid>`, and a raw connection that
//! reads reply lines.
//!
//! Unlike [`crate::process::AgentProcess`] (one fixed command line, one throw-away directory),
//! an [`AgentDir`] outlives the agents started in it, so an agent can be restarted on the same
//! state directory, and every start can add options (`-d`, `-f`, ...), a umask or a descriptor
//! limit.
//!
//! Safety: [`Conn::request`] refuses requests naming a command that changes the machine (see
//! [`FORBIDDEN_COMMANDS`]), and agents run as `nobody` whenever the tests run as root.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::escape::escape_window;
use crate::process::{REQUIRE_REFERENCE_ENV, reference_agent_path, require_reference};
use crate::tempdir::TempDir;

/// uid and gid of `nobody`/`nogroup` on Debian.
pub const NOBODY: u32 = 65534;

/// How long any single wait (start, reply, exit) may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Commands that must never reach an agent in these tests, not even with arguments that might
/// fail validation: the corpus's [`crate::corpus::SYSTEM_COMMANDS`] (shutdown, suspend, freeze,
/// trim, time, CPUs, memory, users, keys, and `guest-exec`, which these tests do not use either).
pub const FORBIDDEN_COMMANDS: &[&str] = crate::corpus::SYSTEM_COMMANDS;

/// The first of [`FORBIDDEN_COMMANDS`] that `request` names, with its offset (a longer name
/// such as `guest-exec-status` does not count). One pass over the request, so that it is cheap
/// even for the 64 MiB streams of the limit tests.
pub fn forbidden_command(request: &[u8]) -> Option<(&'static str, usize)> {
    let mut from = 0;
    while let Some(pos) = request
        .get(from..)
        .and_then(|rest| rest.iter().position(|&b| b == b'g'))
    {
        let at = from + pos;
        let tail = request.get(at..).unwrap_or_default();
        if tail.starts_with(b"guest-") {
            for name in FORBIDDEN_COMMANDS {
                if !tail.starts_with(name.as_bytes()) {
                    continue;
                }
                let next = tail.get(name.len()).copied();
                let longer =
                    matches!(next, Some(c) if c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
                if !longer {
                    return Some((name, at));
                }
            }
        }
        from = at + 1;
    }
    None
}

/// Panics if `request` names one of [`FORBIDDEN_COMMANDS`] (see [`forbidden_command`]).
#[track_caller]
pub fn assert_harmless(request: &[u8]) {
    if let Some((name, at)) = forbidden_command(request) {
        panic!(
            "refusing to send a request naming {name}: {}",
            escape_window(request, at, 300)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The binaries

/// The `qga` daemon: `$QGA_DAEMON_BIN`, or built with `cargo build -p qga --bin qga` in the
/// profile of this test binary (a no-op when it is fresh).
pub fn qga_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| crate::build::qga_package_bin("qga", false, "QGA_DAEMON_BIN"))
}

/// The reference agent (`$QGA_REFERENCE_AGENT` or `/usr/sbin/qemu-ga`), or `None` after printing
/// why it is skipped (`what` names the skipped part). Panics instead when
/// `QGA_REQUIRE_REFERENCE=1`.
pub fn reference_bin(what: &str) -> Option<PathBuf> {
    let path = reference_agent_path();
    if path.is_file() {
        return Some(path);
    }
    let reason = format!("{} is not installed", path.display());
    assert!(
        !require_reference(),
        "reference agent unavailable and {REQUIRE_REFERENCE_ENV}=1: {reason}"
    );
    println!("SKIPPED ({what}): {reason}");
    None
}

/// The agents a test runs against: `("qga", qga_bin())`, then `("qemu-ga", ...)` when it is
/// installed (see [`reference_bin`]).
pub fn agents(what: &str) -> Vec<(&'static str, PathBuf)> {
    let mut list = vec![("qga", qga_bin().to_owned())];
    if let Some(reference) = reference_bin(what) {
        list.push(("qemu-ga", reference));
    }
    list
}

// ---------------------------------------------------------------------------------------------
// Privileges and plain runs

/// Whether this process runs as root (then agents are started as `nobody`).
pub fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/bin", "/bin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// How to start a program: as `nobody` when root, optionally with a umask and a descriptor
/// limit. The process that finally runs is `program` itself (the wrappers `exec` it), so the
/// child's pid is the agent's.
#[derive(Clone, Debug)]
pub struct Launch {
    program: PathBuf,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    umask: Option<u32>,
    nofile: Option<(u64, u64)>,
}

impl Launch {
    /// `program` with no arguments, in the current directory, without `QGA_CONF`.
    pub fn new(program: &Path) -> Self {
        Self {
            program: program.to_owned(),
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
            umask: None,
            nofile: None,
        }
    }

    /// Appends arguments.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Appends one argument.
    #[must_use]
    pub fn arg(self, arg: impl AsRef<OsStr>) -> Self {
        self.args([arg])
    }

    /// Sets the working directory.
    #[must_use]
    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_owned());
        self
    }

    /// Sets an environment variable.
    #[must_use]
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.into(), value.as_ref().to_owned()));
        self
    }

    /// Runs the program with this umask (through `sh -c 'umask ...; exec ...'`).
    #[must_use]
    pub fn umask(mut self, mask: u32) -> Self {
        self.umask = Some(mask);
        self
    }

    /// Runs the program with this `RLIMIT_NOFILE` (soft, hard), through `prlimit`.
    #[must_use]
    pub fn nofile(mut self, soft: u64, hard: u64) -> Self {
        self.nofile = Some((soft, hard));
        self
    }

    /// The program.
    pub fn program(&self) -> &Path {
        &self.program
    }

    fn command(&self) -> Command {
        let mut argv: Vec<OsString> = Vec::new();
        if let Some((soft, hard)) = self.nofile {
            let prlimit = find_program("prlimit").expect("prlimit (util-linux) is needed");
            argv.push(prlimit.into());
            argv.push(format!("--nofile={soft}:{hard}").into());
            argv.push("--".into());
        }
        if running_as_root() {
            let setpriv = find_program("setpriv").expect(
                "running as root and `setpriv` was not found: refusing to run the agent as root \
                 (install util-linux)",
            );
            argv.push(setpriv.into());
            argv.push(format!("--reuid={NOBODY}").into());
            argv.push(format!("--regid={NOBODY}").into());
            argv.push("--clear-groups".into());
        }
        if let Some(mask) = self.umask {
            argv.push("/bin/sh".into());
            argv.push("-c".into());
            argv.push(format!("umask {mask:03o} && exec \"$0\" \"$@\"").into());
        }
        argv.push(self.program.clone().into());
        argv.extend(self.args.iter().cloned());
        let (first, rest) = argv.split_first().expect("argv is not empty");
        let mut c = Command::new(first);
        c.args(rest)
            .env_remove("QGA_CONF")
            .env_remove("POSIXLY_CORRECT");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            c.current_dir(dir);
        }
        c
    }

    /// Runs to completion (killed after [`TIMEOUT`]) with stdin from /dev/null.
    pub fn output(&self) -> RunOutput {
        let mut child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        let mut out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let out_reader = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = out.read_to_end(&mut v);
            v
        });
        let err_reader = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = err.read_to_end(&mut v);
            v
        });
        let status = wait_child(&mut child, TIMEOUT).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} {:?} did not exit within {TIMEOUT:?}",
                self.program.display(),
                self.args
            )
        });
        RunOutput {
            code: status.code(),
            stdout: out_reader.join().unwrap_or_default(),
            stderr: err_reader.join().unwrap_or_default(),
        }
    }
}

/// What a program printed and how it exited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOutput {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

impl RunOutput {
    /// Standard output as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text (lossy).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Polls `child` until it exits or `timeout` passes.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    poll_until(timeout, || child.try_wait().ok().flatten())
}

/// Calls `check` every few milliseconds until it returns `Some` or `timeout` passes.
pub fn poll_until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Sends `signal` (a name such as `TERM`) to `pid` with kill(1).
pub fn send_signal(pid: u32, signal: &str) -> Result<(), String> {
    let kill = find_program("kill").ok_or("kill(1) not found")?;
    let out = Command::new(kill)
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .output()
        .map_err(|e| format!("cannot run kill: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "kill -{signal} {pid}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// /proc

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`, ...).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    status_field(pid, field)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The text of a field of `/proc/<pid>/status` (after the colon, trimmed).
pub fn status_field(pid: u32, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        (name == field).then(|| value.trim().to_owned())
    })
}

/// Whether `pid` is gone or a zombie (exited, not reaped: a daemon's parent may not reap it).
pub fn process_ended(pid: u32) -> bool {
    match status_field(pid, "State") {
        None => true,
        Some(state) => state.starts_with('Z') || state.starts_with('X'),
    }
}

/// `(ppid, pgrp, session)` from `/proc/<pid>/stat`.
pub fn stat_ids(pid: u32) -> Option<(u32, u32, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut f = rest.split_whitespace().skip(1);
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    let session = f.next()?.parse().ok()?;
    Some((ppid, pgrp, session))
}

/// The first element of `/proc/<pid>/cmdline`.
pub fn argv0(pid: u32) -> Option<OsString> {
    use std::os::unix::ffi::OsStringExt;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let first = cmdline.split(|&b| b == 0).next()?;
    Some(OsString::from_vec(first.to_vec()))
}

/// The lines of `/proc/locks` about the file at `path` (matched by device and inode), e.g.
/// `POSIX  ADVISORY  WRITE 1234 fe:00:5678 0 EOF`, with the leading number removed.
pub fn locks_on(path: &Path) -> Vec<String> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Vec::new();
    };
    let dev = meta.dev();
    // glibc's gnu_dev_major / gnu_dev_minor.
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let id = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    std::fs::read_to_string("/proc/locks")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.contains("->")) // blocked waiters
        .filter(|l| l.split_whitespace().any(|w| w == id))
        .map(|l| {
            l.split_once(':')
                .map_or(l, |(_, rest)| rest)
                .trim()
                .to_owned()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// A directory for agents

/// A temporary directory owned by `nobody` (when root), holding the agent's socket `qga.sock`,
/// its state directory `state/`, its log `qga.log` and its captured stderr. Agents started in
/// it run with it as their working directory.
#[derive(Debug)]
pub struct AgentDir {
    tmp: TempDir,
}

impl AgentDir {
    /// Creates the directory and `state/`.
    pub fn new(prefix: &str) -> Self {
        let tmp = TempDir::new(prefix).expect("cannot create a temporary directory");
        let dir = Self { tmp };
        dir.mkdir("state");
        dir.give_to_nobody(dir.path());
        dir
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// `<dir>/<name>`.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    /// The socket agents listen on.
    pub fn socket(&self) -> PathBuf {
        self.join("qga.sock")
    }

    /// The state directory (`-t`).
    pub fn state(&self) -> PathBuf {
        self.join("state")
    }

    /// The log file (`-l`).
    pub fn log(&self) -> PathBuf {
        self.join("qga.log")
    }

    /// Creates `<dir>/<name>` owned by `nobody`.
    pub fn mkdir(&self, name: &str) -> PathBuf {
        let p = self.join(name);
        std::fs::create_dir(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        self.give_to_nobody(&p);
        p
    }

    /// Writes a file owned by `nobody` with mode 0644.
    pub fn write_file(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.join(name);
        std::fs::write(&p, data).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
        self.give_to_nobody(&p);
        p
    }

    fn give_to_nobody(&self, p: &Path) {
        if running_as_root() {
            std::os::unix::fs::chown(p, Some(NOBODY), Some(NOBODY))
                .unwrap_or_else(|e| panic!("chown {}: {e}", p.display()));
        }
    }

    /// `program -m unix-listen -p <dir>/qga.sock -t <dir>/state -l <dir>/qga.log`, working
    /// directory `<dir>`.
    pub fn launch(&self, program: &Path) -> Launch {
        Launch::new(program)
            .args(["-m", "unix-listen"])
            .arg_pair("-p", &self.socket())
            .arg_pair("-t", &self.state())
            .arg_pair("-l", &self.log())
            .cwd(self.path())
    }

    /// Starts `launch` (normally from [`AgentDir::launch`]), with stderr going to
    /// `<dir>/stderr-<n>.txt`.
    pub fn start(&self, label: &str, launch: &Launch) -> Agent {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stderr_path = self.join(&format!("stderr-{n}.txt"));
        let stderr = File::create(&stderr_path).expect("cannot create the stderr file");
        let child = launch
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", launch.program.display()));
        Agent {
            pid: child.id(),
            child,
            label: label.to_owned(),
            socket: self.socket(),
            log: self.log(),
            stderr: stderr_path,
        }
    }
}

impl Launch {
    /// Appends an option and its value.
    #[must_use]
    pub fn arg_pair(self, option: &str, value: &Path) -> Self {
        self.args([OsStr::new(option), value.as_os_str()])
    }
}

/// A started agent. Killed (by its pid) on drop if still running.
#[derive(Debug)]
pub struct Agent {
    child: Child,
    pid: u32,
    label: String,
    socket: PathBuf,
    log: PathBuf,
    stderr: PathBuf,
}

impl Agent {
    /// The pid of the agent (the process started; with `-d`, the parent that exits).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The label given at start.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The log and stderr so far, for failure messages.
    pub fn diagnostics(&self) -> String {
        let read = |p: &Path| {
            std::fs::read(p)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        format!(
            "[{} log: {:?}; stderr: {:?}]",
            self.label,
            read(&self.log),
            read(&self.stderr)
        )
    }

    /// What the agent wrote to stderr so far.
    pub fn stderr(&self) -> Vec<u8> {
        std::fs::read(&self.stderr).unwrap_or_default()
    }

    /// Waits until the agent accepts a connection and returns it.
    pub fn connect(&mut self) -> Conn {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited with {status} before accepting a connection {}",
                    self.label,
                    self.diagnostics()
                );
            }
            if let Ok(stream) = UnixStream::connect(&self.socket) {
                return Conn::new(stream, &self.label);
            }
            assert!(
                Instant::now() < deadline,
                "{} did not accept a connection on {} within {TIMEOUT:?} {}",
                self.label,
                self.socket.display(),
                self.diagnostics()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends a signal (`TERM`, `INT`, ...) to the agent.
    pub fn signal(&self, signal: &str) {
        send_signal(self.pid, signal).unwrap_or_else(|e| panic!("{}: {e}", self.label));
    }

    /// Waits for the agent to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        wait_child(&mut self.child, TIMEOUT).unwrap_or_else(|| {
            panic!(
                "{} (pid {}) did not exit within {TIMEOUT:?} {}",
                self.label,
                self.pid,
                self.diagnostics()
            )
        })
    }

    /// Sends SIGTERM and waits; panics unless the exit status is 0.
    pub fn terminate(&mut self) {
        self.signal("TERM");
        let status = self.wait_exit();
        assert_eq!(
            status.code(),
            Some(0),
            "{} exited with {status} after SIGTERM {}",
            self.label,
            self.diagnostics()
        );
    }

    /// A `kB` field of the agent's `/proc/<pid>/status`.
    pub fn status_kib(&self, field: &str) -> u64 {
        status_kib(self.pid, field)
            .unwrap_or_else(|| panic!("{}: no {field} in /proc/{}/status", self.label, self.pid))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A connection

/// One connection to an agent, reading `\n`-terminated reply lines.
#[derive(Debug)]
pub struct Conn {
    stream: UnixStream,
    pending: Vec<u8>,
    label: String,
}

impl Conn {
    fn new(stream: UnixStream, label: &str) -> Self {
        let _ = stream.set_read_timeout(Some(TIMEOUT));
        let _ = stream.set_write_timeout(Some(TIMEOUT));
        Self {
            stream,
            pending: Vec::new(),
            label: label.to_owned(),
        }
    }

    /// Writes raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .unwrap_or_else(|e| panic!("{}: write failed: {e}", self.label));
    }

    /// Reads up to and including the next `\n` (a reply line; a `guest-sync-delimited` reply
    /// keeps its leading 0xFF).
    pub fn read_line(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + TIMEOUT;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
                let rest = self.pending.split_off(pos + 1);
                return std::mem::replace(&mut self.pending, rest);
            }
            assert!(
                Instant::now() < deadline,
                "{}: no complete reply line within {TIMEOUT:?}; received so far: {}",
                self.label,
                escape_window(&self.pending, 0, 600)
            );
            match self.stream.read(&mut buf) {
                Ok(0) => panic!(
                    "{}: connection closed before a complete reply line; received: {}",
                    self.label,
                    escape_window(&self.pending, 0, 600)
                ),
                Ok(n) => self
                    .pending
                    .extend_from_slice(buf.get(..n).unwrap_or_default()),
                Err(e) if crate::is_retry(&e) => {}
                Err(e) => panic!("{}: read failed: {e}", self.label),
            }
        }
    }

    /// Reads until what was received ends with `terminator` (e.g. a fence reply) and returns it.
    pub fn read_until(&mut self, terminator: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        while !out.ends_with(terminator) {
            let line = self.read_line();
            out.extend_from_slice(&line);
        }
        out
    }

    /// Whether a reply arrives within `wait` (for checking that none does).
    pub fn reply_within(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let _ = self.stream.set_read_timeout(Some(wait));
        let mut buf = vec![0u8; 4096];
        let got = match self.stream.read(&mut buf) {
            Ok(n) => Some(buf.get(..n).unwrap_or_default().to_vec()),
            Err(_) => None,
        };
        let _ = self.stream.set_read_timeout(Some(TIMEOUT));
        if let Some(bytes) = &got {
            self.pending.extend_from_slice(bytes);
        }
        got
    }

    /// Sends one request (checked with [`assert_harmless`]) and returns its reply line.
    pub fn request(&mut self, request: &[u8]) -> Vec<u8> {
        assert_harmless(request);
        self.send(request);
        self.read_line()
    }

    /// Like [`Conn::request`] with a string, returning the reply parsed as JSON.
    pub fn request_json(&mut self, request: &str) -> serde_json::Value {
        let line = self.request(request.as_bytes());
        parse_reply(&line)
    }

    /// Closes the writing side and reads everything the agent sends until it closes the
    /// connection. So every reply to what was sent arrives before the agent sees EOF.
    pub fn finish(mut self) -> Vec<u8> {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        let deadline = Instant::now() + TIMEOUT;
        let mut out = std::mem::take(&mut self.pending);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            assert!(
                Instant::now() < deadline,
                "{}: the agent did not close the connection within {TIMEOUT:?} after EOF; \
                 received: {}",
                self.label,
                escape_window(&out, 0, 600)
            );
            match self.stream.read(&mut buf) {
                Ok(0) => return out,
                Ok(n) => out.extend_from_slice(buf.get(..n).unwrap_or_default()),
                Err(e) if crate::is_retry(&e) => {}
                // The agent may reset instead of closing cleanly.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return out,
                Err(e) => panic!("{}: read failed: {e}", self.label),
            }
        }
    }
}

/// Parses a reply line (an optional leading 0xFF, JSON, `\n`).
#[track_caller]
pub fn parse_reply(line: &[u8]) -> serde_json::Value {
    let text = line.strip_prefix(b"\xff").unwrap_or(line);
    serde_json::from_slice(text)
        .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {}", escape_window(line, 0, 600)))
}

/// Connects to an agent's socket that is not a child of this process (a daemonized agent),
/// retrying until [`TIMEOUT`].
pub fn connect_to(socket: &Path, label: &str) -> Conn {
    let stream = poll_until(TIMEOUT, || UnixStream::connect(socket).ok()).unwrap_or_else(|| {
        panic!(
            "{label}: cannot connect to {} within {TIMEOUT:?}",
            socket.display()
        )
    });
    Conn::new(stream, label)
}
