//! Starting an agent binary for a measurement: a fresh temporary directory (socket, `state/`,
//! log, stderr), the agent started directly by the [`Spawner`] as `nobody:nogroup` when the
//! benchmark runs as root (std's `Command::uid` also clears the supplementary groups, like
//! `setpriv --clear-groups`), and the first exchange timed from just before `spawn()` to the
//! first byte of the reply to a `guest-sync` sent as soon as the socket accepts.
//!
//! The process is killed (by its own pid) and its directory removed on drop.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::TryRecvError;
use std::time::{Duration, Instant};

use super::affinity::Spawner;
use super::conn::{Conn, Received};
use super::error::{Context, Error, Result};
use super::procfs;
use super::scratch::ScratchDir;

/// uid and gid of `nobody`/`nogroup` on Debian.
pub const NOBODY: u32 = 65534;

/// How long an agent may take to start accepting.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Pause between connection attempts while an agent starts (without `spin`).
pub const CONNECT_POLL: Duration = Duration::from_micros(10);

/// Id of the `guest-sync` sent right after connecting.
const FIRST_SYNC_ID: u64 = 4_242_424_242;

/// An agent binary under test.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    /// Short name ("qga", "qemu-ga").
    pub label: String,
    /// The binary.
    pub path: PathBuf,
}

/// A running agent on a unix socket in its own temporary directory.
#[derive(Debug)]
pub struct RunningAgent {
    child: Child,
    pid: u32,
    label: String,
    // Declared last: removed after the process has been killed.
    dir: ScratchDir,
}

/// A freshly started agent, connected and answering.
#[derive(Debug)]
pub struct Started {
    /// The process.
    pub agent: RunningAgent,
    /// The connection the first `guest-sync` went over.
    pub conn: Conn,
    /// From just before `spawn()` to the first byte of the first reply.
    pub first_reply: Duration,
    /// How long `spawn()` took (fork, `execve` in the child).
    pub spawn: Duration,
    /// The agent's CPU time when the first reply had arrived (ns): from the fork to the reply.
    pub cpu_to_first_reply_ns: u64,
}

impl RunningAgent {
    /// Starts `spec` through `spawner` in a fresh directory under `base` and exchanges one
    /// `guest-sync` (see the module docs).
    ///
    /// With `spin`, the connection is retried without pause (when client and agent are pinned
    /// to different CPUs); otherwise with [`CONNECT_POLL`] pauses, so that the waiting client
    /// does not take the CPU the starting agent needs (which adds at most the pause, plus the
    /// timer slack, to the figure).
    pub fn start(spec: &AgentSpec, spawner: &Spawner, base: &Path, spin: bool) -> Result<Started> {
        let as_nobody = procfs::running_as_root();
        let dir = ScratchDir::new(base, "qga-bench")
            .context(|| format!("cannot create a directory in {}", base.display()))?;
        let state = dir.path().join("state");
        std::fs::create_dir(&state).context(|| format!("cannot create {}", state.display()))?;
        if as_nobody {
            for d in [dir.path(), state.as_path()] {
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777))
                    .context(|| format!("cannot chmod {}", d.display()))?;
            }
        }
        let socket = dir.path().join("qga.sock");
        let stderr_path = dir.path().join("stderr.txt");
        let stderr = std::fs::File::create(&stderr_path)
            .context(|| format!("cannot create {}", stderr_path.display()))?;
        let mut command = Command::new(&spec.path);
        command
            .arg("-m")
            .arg("unix-listen")
            .arg("-p")
            .arg(&socket)
            .arg("-t")
            .arg(&state)
            .arg("-l")
            .arg(dir.path().join("qga.log"))
            .current_dir(dir.path())
            .env_remove("QGA_CONF")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        if as_nobody {
            std::os::unix::process::CommandExt::uid(&mut command, NOBODY);
            std::os::unix::process::CommandExt::gid(&mut command, NOBODY);
        }
        let request = super::workload::sync_request(FIRST_SYNC_ID);
        let expected = super::workload::sync_reply(FIRST_SYNC_ID);

        let result = spawner.spawn(command)?;
        let deadline = Instant::now() + START_TIMEOUT;
        let mut spawned: Option<(Instant, Instant, Child)> = None;
        let mut attempts = 0u32;
        let stream = loop {
            match &mut spawned {
                None => match result.try_recv() {
                    Ok(Ok(s)) => spawned = Some(s),
                    Ok(Err(e)) => {
                        return Err(Error::new(format!(
                            "cannot start {}: {e}",
                            spec.path.display()
                        )));
                    }
                    Err(TryRecvError::Empty) => {}
                    Err(TryRecvError::Disconnected) => {
                        return Err(Error::new("the spawner thread has ended"));
                    }
                },
                Some((_, _, child)) => {
                    attempts += 1;
                    if attempts.is_multiple_of(64) {
                        if let Ok(Some(status)) = child.try_wait() {
                            return Err(Error::new(format!(
                                "{} exited with {status} before accepting a connection; {}",
                                spec.label,
                                diagnostics(dir.path())
                            )));
                        }
                    }
                }
            }
            if let Ok(s) = UnixStream::connect(&socket) {
                break s;
            }
            if Instant::now() >= deadline {
                if let Some((_, _, mut child)) = spawned {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                return Err(Error::new(format!(
                    "{} did not accept on {} within {START_TIMEOUT:?}; {}",
                    spec.label,
                    socket.display(),
                    diagnostics(dir.path())
                )));
            }
            if spin {
                std::thread::yield_now();
            } else {
                std::thread::sleep(CONNECT_POLL);
            }
        };
        let mut conn = Conn::new(stream).context(|| "cannot configure the socket".into())?;
        conn.send(&request)
            .context(|| format!("{}: cannot send the first guest-sync", spec.label))?;
        let first_byte = conn.wait_first_byte();
        // The spawner has returned from spawn() long before the agent could answer.
        let (t0, t_spawned, child) = match spawned {
            Some(s) => s,
            None => result
                .recv()
                .map_err(|_| Error::new("the spawner thread has ended"))?
                .context(|| format!("cannot start {}", spec.path.display()))?,
        };
        let pid = child.id();
        let agent = RunningAgent {
            child,
            pid,
            label: spec.label.clone(),
            dir,
        };
        let first_byte = first_byte
            .map_err(|e| agent.failure(&format!("no reply to the first guest-sync: {e}")))?;
        let first_reply = first_byte.saturating_duration_since(t0);
        let cpu_to_first_reply_ns = agent.cpu_ns()?;
        match conn.read_expected(&expected) {
            Ok(Received::AsExpected) => {}
            Ok(Received::Other(line)) => {
                return Err(agent.failure(&format!(
                    "unexpected reply to the first guest-sync: {}",
                    String::from_utf8_lossy(&line)
                )));
            }
            Err(e) => return Err(agent.failure(&format!("reading the first reply: {e}"))),
        }
        if as_nobody {
            agent.check_unprivileged()?;
        }
        Ok(Started {
            agent,
            conn,
            first_reply,
            spawn: t_spawned.saturating_duration_since(t0),
            cpu_to_first_reply_ns,
        })
    }

    /// The agent's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The agent's own temporary directory (where guest files may be created).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// CPU time (ns) of all the agent's threads so far.
    pub fn cpu_ns(&self) -> Result<u64> {
        procfs::process_cpu_ns(self.pid)
    }

    /// Resident set size (KiB).
    pub fn rss_kib(&self) -> Result<u64> {
        procfs::status_kib(self.pid, "VmRSS")
    }

    /// Peak resident set size (KiB).
    pub fn hwm_kib(&self) -> Result<u64> {
        procfs::status_kib(self.pid, "VmHWM")
    }

    /// An error about this agent, with its log and stderr.
    pub fn failure(&self, what: &str) -> Error {
        Error::new(format!(
            "{}: {what}; {}",
            self.label,
            diagnostics(self.dir())
        ))
    }

    /// Refuses to go on unless the agent runs as `nobody:nogroup` without supplementary groups.
    fn check_unprivileged(&self) -> Result<()> {
        let uid = procfs::status_field(self.pid, "Uid")?;
        let gid = procfs::status_field(self.pid, "Gid")?;
        let groups = procfs::status_field(self.pid, "Groups")?;
        let all_nobody = |ids: &str| {
            let ids: Vec<&str> = ids.split_ascii_whitespace().collect();
            ids.len() == 4 && ids.iter().all(|id| *id == NOBODY.to_string())
        };
        if all_nobody(&uid) && all_nobody(&gid) && groups.trim().is_empty() {
            Ok(())
        } else {
            Err(self.failure(&format!(
                "refusing to benchmark an agent that is not nobody:nogroup (Uid {uid:?}, Gid \
                 {gid:?}, Groups {groups:?})"
            )))
        }
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        // Exactly the process this benchmark started (no wrapper: the pid is the agent's).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The agent's log file and stderr, for error messages.
fn diagnostics(dir: &Path) -> String {
    let read = |name: &str| {
        std::fs::read(dir.join(name))
            .map(|b| {
                let text = String::from_utf8_lossy(&b);
                let text = text.trim();
                // The end is what matters.
                let start = text.char_indices().rev().nth(2000).map_or(0, |(i, _)| i);
                text.get(start..).unwrap_or_default().to_owned()
            })
            .unwrap_or_default()
    };
    format!(
        "log: {:?}; stderr: {:?}",
        read("qga.log"),
        read("stderr.txt")
    )
}

/// The first line of `program -V` (the agent's version), run as `nobody` when root.
pub fn version(program: &Path) -> String {
    let mut command = Command::new(program);
    command.arg("-V").stdin(Stdio::null()).stderr(Stdio::null());
    if procfs::running_as_root() {
        std::os::unix::process::CommandExt::uid(&mut command, NOBODY);
        std::os::unix::process::CommandExt::gid(&mut command, NOBODY);
    }
    command
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".to_owned())
}
