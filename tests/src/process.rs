//! Starting an agent binary on a unix socket in a fresh temporary directory, and the reference
//! agent (Debian's qemu-ga 7.2) built on it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::socket::SocketClient;
use crate::tempdir::TempDir;
use crate::{AgentUnderTest, Delivery};

/// Where Debian installs the reference agent.
pub const REFERENCE_AGENT_PATH: &str = "/usr/sbin/qemu-ga";

/// Environment variable naming another reference agent binary (default [`REFERENCE_AGENT_PATH`]).
pub const REFERENCE_AGENT_ENV: &str = "QGA_REFERENCE_AGENT";

/// Environment variable: when `1`, a missing reference agent fails the tests instead of skipping.
pub const REQUIRE_REFERENCE_ENV: &str = "QGA_REQUIRE_REFERENCE";

/// How long to wait for an agent to start listening, and for each exchange.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// uid and gid of `nobody`/`nogroup` on Debian (numeric, so that no name lookup is needed).
const NOBODY_ID: u32 = 65534;

/// Whether `QGA_REQUIRE_REFERENCE=1` is set: then a missing reference agent is a test failure.
pub fn require_reference() -> bool {
    std::env::var(REQUIRE_REFERENCE_ENV).is_ok_and(|v| v == "1")
}

/// The reference agent binary: `$QGA_REFERENCE_AGENT` or `/usr/sbin/qemu-ga`.
pub fn reference_agent_path() -> PathBuf {
    std::env::var_os(REFERENCE_AGENT_ENV)
        .map_or_else(|| PathBuf::from(REFERENCE_AGENT_PATH), PathBuf::from)
}

/// Which user the agent runs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privileges {
    /// When the tests run as root, drop to `nobody:nogroup` with `setpriv` (and refuse to start
    /// if `setpriv` is missing), so that a request that slips through argument validation fails
    /// with EPERM instead of changing the machine. When not root, run as the current user.
    Unprivileged,
    /// Run as the current user, even root. Only for agents whose commands are known to be inert.
    AsIs,
}

/// An agent process listening on `<tmp>/qga.sock`, with its state directory and log file in the
/// same fresh temporary directory. Killed (by its pid) and cleaned up on drop, also on panic.
#[derive(Debug)]
pub struct AgentProcess {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
    label: String,
    // Declared last: dropped after the child has been killed.
    dir: TempDir,
}

impl AgentProcess {
    /// Starts `program -m unix-listen -p <sock> -t <statedir> -l <logfile>`. This command line is
    /// understood by qemu-ga and by the `qga` binary.
    pub fn spawn_unix_listen(
        program: &Path,
        label: &str,
        privileges: Privileges,
    ) -> Result<Self, String> {
        if !program.is_file() {
            return Err(format!("{} does not exist", program.display()));
        }
        let dir =
            TempDir::new("qga-tests").map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let state = dir.path().join("state");
        std::fs::create_dir(&state)
            .map_err(|e| format!("cannot create {}: {e}", state.display()))?;
        let socket = dir.path().join("qga.sock");
        let log = dir.path().join("qga.log");

        let drop_to_nobody = privileges == Privileges::Unprivileged && running_as_root();
        let mut command = if drop_to_nobody {
            // The unprivileged agent must be able to create its socket, state and log files.
            for d in [dir.path(), state.as_path()] {
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777))
                    .map_err(|e| format!("cannot chmod {}: {e}", d.display()))?;
            }
            let setpriv = find_program("setpriv").ok_or_else(|| {
                "running as root and `setpriv` was not found: refusing to run the agent as root \
                 (install util-linux)"
                    .to_owned()
            })?;
            let mut c = Command::new(setpriv);
            c.arg(format!("--reuid={NOBODY_ID}"))
                .arg(format!("--regid={NOBODY_ID}"))
                .arg("--clear-groups")
                .arg(program);
            c
        } else {
            Command::new(program)
        };
        command
            .arg("-m")
            .arg("unix-listen")
            .arg("-p")
            .arg(&socket)
            .arg("-t")
            .arg(&state)
            .arg("-l")
            .arg(&log)
            .current_dir(dir.path())
            .env_remove("QGA_CONF")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        Ok(Self {
            child,
            socket,
            log,
            label: label.to_owned(),
            dir,
        })
    }

    /// The socket the agent listens on.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// The agent's temporary directory (socket, `state/`, log file).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The agent's log so far (empty if it has not written one).
    pub fn log_contents(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Waits until the agent accepts a connection and returns that connection.
    pub fn connect(&mut self, timeout: Duration) -> Result<SocketClient, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited with {status} before accepting a connection; log: {}",
                    self.label,
                    self.log_contents()
                ));
            }
            if self.socket.exists() {
                match SocketClient::connect(&self.socket, timeout) {
                    Ok(c) => return Ok(c),
                    Err(e) if Instant::now() >= deadline => return Err(e.to_string()),
                    Err(_) => {}
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} did not create {} within {timeout:?}; log: {}",
                    self.label,
                    self.socket.display(),
                    self.log_contents()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        // Kills exactly the process we started (setpriv execs the agent, so the pid is the agent's).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn running_as_root() -> bool {
    // The owner of /proc/self is the effective uid of this process.
    std::fs::metadata("/proc/self").map_or(true, |m| m.uid() == 0)
}

fn find_program(name: &str) -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    from_path
        .into_iter()
        .chain(["/usr/bin", "/bin", "/usr/sbin", "/sbin"].map(|d| Path::new(d).join(name)))
        .find(|p| p.is_file())
}

/// A started agent process plus one connection to it: the "agent on a unix socket" side of a
/// comparison, for qemu-ga as well as for the `qga` binary.
#[derive(Debug)]
pub struct SocketAgent {
    // Declared first: the connection is closed before the process is killed.
    client: SocketClient,
    process: AgentProcess,
    label: String,
    next_fence: u64,
}

/// Fence ids used by [`SocketAgent::exchange`]; corpus runs use [`crate::corpus::CorpusEntry::fence_id`].
const ADHOC_FENCE_BASE: u64 = 7_100_000_000;

impl SocketAgent {
    /// Starts `program` (see [`AgentProcess::spawn_unix_listen`]) and connects to it.
    pub fn start(program: &Path, label: &str, privileges: Privileges) -> Result<Self, String> {
        let mut process = AgentProcess::spawn_unix_listen(program, label, privileges)?;
        let client = process.connect(DEFAULT_TIMEOUT)?;
        static INSTANCE: AtomicU64 = AtomicU64::new(0);
        let instance = INSTANCE.fetch_add(1, Ordering::Relaxed);
        Ok(Self {
            client,
            process,
            label: label.to_owned(),
            next_fence: ADHOC_FENCE_BASE + instance * 1_000_000,
        })
    }

    /// The underlying process (socket path, log file).
    pub fn process(&self) -> &AgentProcess {
        &self.process
    }

    /// Sends `stream` plus a fence with a fresh id and returns every byte the agent answered,
    /// including the fence's replies. Panics, with everything received so far and the agent's
    /// log, if the fence reply does not arrive in time, and refuses (panics) before sending a
    /// stream that fails [`crate::corpus::check_stream_safety`].
    pub fn exchange(&mut self, stream: &[u8]) -> Vec<u8> {
        self.next_fence += 1;
        let id = self.next_fence;
        match self.exchange_fenced(stream, id, Delivery::Whole) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }
}

impl AgentUnderTest for SocketAgent {
    fn label(&self) -> &str {
        &self.label
    }

    fn exchange_fenced(
        &mut self,
        stream: &[u8],
        fence_id: u64,
        delivery: Delivery,
    ) -> Result<Vec<u8>, String> {
        crate::corpus::check_stream_safety(stream)
            .map_err(|e| format!("refusing to send this stream to {}: {e}", self.label))?;
        self.client
            .exchange_fenced(stream, fence_id, delivery)
            .map_err(|e| {
                format!(
                    "{} on {}: {e}; agent log: {}",
                    self.label,
                    self.client.path().display(),
                    self.process.log_contents()
                )
            })
    }
}

/// Debian's qemu-ga 7.2, started unprivileged on a unix socket in a fresh temporary directory.
#[derive(Debug)]
pub struct ReferenceAgent {
    inner: SocketAgent,
}

impl ReferenceAgent {
    /// Starts the reference agent. When it is not installed (or cannot start), prints the reason
    /// and returns `None`, or panics with the reason when `QGA_REQUIRE_REFERENCE=1`.
    pub fn start() -> Option<Self> {
        match Self::try_start() {
            Ok(agent) => Some(agent),
            Err(reason) => {
                if require_reference() {
                    panic!("reference agent unavailable and {REQUIRE_REFERENCE_ENV}=1: {reason}");
                }
                println!("SKIPPED: reference agent unavailable: {reason}");
                None
            }
        }
    }

    /// Starts the reference agent or says why it could not.
    pub fn try_start() -> Result<Self, String> {
        let path = reference_agent_path();
        SocketAgent::start(&path, "qemu-ga", Privileges::Unprivileged).map(|inner| Self { inner })
    }

    /// See [`SocketAgent::exchange`].
    pub fn exchange(&mut self, stream: &[u8]) -> Vec<u8> {
        self.inner.exchange(stream)
    }

    /// The underlying process (socket path, log file).
    pub fn process(&self) -> &AgentProcess {
        self.inner.process()
    }
}

impl AgentUnderTest for ReferenceAgent {
    fn label(&self) -> &str {
        self.inner.label()
    }

    fn exchange_fenced(
        &mut self,
        stream: &[u8],
        fence_id: u64,
        delivery: Delivery,
    ) -> Result<Vec<u8>, String> {
        self.inner.exchange_fenced(stream, fence_id, delivery)
    }
}
