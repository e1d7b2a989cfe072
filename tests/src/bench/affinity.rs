//! CPU placement and the spawner thread.
//!
//! Pinning uses `taskset -p -c CPU TID` (util-linux) on single threads: this crate has no
//! syscall bindings and forbids `unsafe`, and `sched_setaffinity` is what `taskset` calls. A
//! thread's mask is inherited by the threads and processes it creates, so:
//!
//! * the client's main thread is pinned first, and its helper threads (the pipelined writer)
//!   inherit the client CPU;
//! * agents are started by a dedicated [`Spawner`] thread pinned to the agent CPU, so that an
//!   agent runs on its CPU from its first instruction (no wrapper process between the spawn and
//!   the agent, which would distort the exec-to-first-reply time);
//! * the echo peer's thread pins itself to the agent CPU.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use super::error::{Context, Error, Result};
use super::procfs;

/// Where the client and the agents run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placement {
    /// CPU of the client threads (`None`: the scheduler's choice).
    pub client: Option<usize>,
    /// CPU of the agents and of the echo peer (`None`: the scheduler's choice).
    pub agent: Option<usize>,
}

impl Placement {
    /// One line for the report; `allowed` is the CPU list the process had before pinning.
    pub fn describe(&self, allowed: &str) -> String {
        let cpu =
            |c: Option<usize>| c.map_or_else(|| "unpinned".to_owned(), |c| format!("CPU {c}"));
        let how = if self.pinned() {
            "pinned with taskset; "
        } else {
            "the scheduler's choice; "
        };
        format!(
            "client {}, agents and echo peer {} ({how}CPUs available: {allowed})",
            cpu(self.client),
            cpu(self.agent),
        )
    }

    /// True if anything is pinned.
    pub fn pinned(&self) -> bool {
        self.client.is_some() || self.agent.is_some()
    }
}

/// The `taskset` program, if installed.
pub fn taskset() -> Option<PathBuf> {
    ["/usr/bin/taskset", "/bin/taskset", "/usr/sbin/taskset"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Pins thread `tid` (of any process this user may change) to `cpu`.
pub fn pin(tid: u32, cpu: usize) -> Result<()> {
    let taskset = taskset().ok_or_else(|| {
        Error::new("CPU pinning needs `taskset` (util-linux), which is not installed")
    })?;
    let output = Command::new(&taskset)
        .args(["-p", "-c", &cpu.to_string(), &tid.to_string()])
        .stdin(Stdio::null())
        .output()
        .context(|| format!("cannot run {}", taskset.display()))?;
    if !output.status.success() {
        return Err(Error::new(format!(
            "taskset -p -c {cpu} {tid} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

/// Pins the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> Result<()> {
    pin(procfs::current_tid()?, cpu)
}

/// A started process, with the instants just before `spawn()` was called and just after it
/// returned (std's `spawn()` returns once the child has called `execve`).
pub type Spawned = std::io::Result<(Instant, Instant, Child)>;

struct Job {
    command: Command,
    reply: mpsc::Sender<Spawned>,
}

/// A thread that starts processes, pinned to the agent CPU when one is given. Children inherit
/// its CPU mask.
#[derive(Debug)]
pub struct Spawner {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Spawner {
    /// Starts the spawner thread (pinned to `cpu` if given).
    pub fn new(cpu: Option<usize>) -> Result<Spawner> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        let thread = std::thread::Builder::new()
            .name("spawner".into())
            .spawn(move || {
                let pinned = cpu.map_or(Ok(()), pin_current_thread);
                let ok = pinned.is_ok();
                let _ = ready_tx.send(pinned);
                if !ok {
                    return;
                }
                while let Ok(mut job) = queue.recv() {
                    let t0 = Instant::now();
                    let result = job.command.spawn().map(|child| (t0, Instant::now(), child));
                    // The requester may have given up; the child is then dropped (not killed)
                    // here, which cannot happen while the benchmark waits for it.
                    let _ = job.reply.send(result);
                }
            })
            .context(|| "cannot start the spawner thread".to_owned())?;
        ready_rx
            .recv()
            .map_err(|_| Error::new("the spawner thread ended during start-up"))??;
        Ok(Spawner {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Asks the thread to start `command`; the result arrives on the returned channel.
    pub fn spawn(&self, command: Command) -> Result<mpsc::Receiver<Spawned>> {
        let (reply, result) = mpsc::channel();
        self.jobs
            .as_ref()
            .ok_or_else(|| Error::new("the spawner is shut down"))?
            .send(Job { command, reply })
            .map_err(|_| Error::new("the spawner thread has ended"))?;
        Ok(result)
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
