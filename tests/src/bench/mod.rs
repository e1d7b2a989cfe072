//! `agent-bench`: qga and qemu-ga side by side, with an in-process echo peer as the floor of a
//! socket round trip.
//!
//! Both agents run on unix sockets in fresh temporary directories as `nobody:nogroup` (when the
//! benchmark runs as root), and only receive read-only commands and `guest-file-*` requests on
//! files inside their own directories. Every reply is checked (ids, file bytes).
//!
//! Measured, for each agent (`--runs N` rounds, alternating which agent goes first, medians
//! reported):
//!
//! * exec to first reply: from just before `spawn()` to the first byte of the reply to a
//!   `guest-sync` sent as soon as the socket accepts (median of several starts per round), with
//!   how long `spawn()` (fork + execve) took and the agent's CPU time up to its reply; the
//!   static musl build of qga is started too when it has been built;
//! * idle RSS (VmRSS of a fresh agent right after its first reply);
//! * sequential round trips (req/s, p50, p99, agent CPU per request) for guest-sync,
//!   guest-ping, guest-info and every read-only query both agents answer without error, with
//!   the echo peer's figures for guest-sync next to them;
//! * a burst of pipelined guest-syncs (written by one thread while another reads);
//! * guest-file-read of a file (64 MiB) with two counts (4 MiB, 64 KiB) and guest-file-write of
//!   16 MiB in 1 MiB and 4 MiB pieces and in one piece: wall-clock MiB/s, agent CPU per MiB,
//!   the client's CPU share (to see whether the client limits the figure), peak RSS (VmHWM) and
//!   RSS afterwards, each on a fresh agent so that peaks belong to one transfer;
//! * binary sizes.
//!
//! Agent CPU time is the sum of the agent's threads' `schedstat` run time (ns), read before and
//! after each measurement: it does not depend on the client.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod affinity;
pub mod agent;
pub mod conn;
pub mod echo;
pub mod error;
pub mod procfs;
pub mod report;
pub mod scratch;
pub mod workload;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use self::affinity::{Placement, Spawner};
use self::agent::{AgentSpec, RunningAgent, Started};
use self::echo::EchoPeer;
use self::error::{Context, Result};
use self::report::{Goal, Report, Side, Status, Table};
use self::scratch::ScratchDir;
use self::workload::{CpuOf, Pipeline, ReadPlan, Sequence, WritePlan};

/// Read-only commands measured one request at a time, when both agents answer them.
pub const SEQUENTIAL_COMMANDS: &[&str] = &[
    "guest-sync",
    "guest-ping",
    "guest-info",
    "guest-get-time",
    "guest-get-timezone",
    "guest-get-host-name",
    "guest-get-osinfo",
    "guest-get-vcpus",
    "guest-network-get-interfaces",
    "guest-get-fsinfo",
    "guest-get-users",
    "guest-get-memory-blocks",
    "guest-get-memory-block-info",
    "guest-get-disks",
    "guest-get-cpustats",
    "guest-get-diskstats",
    "guest-fsfreeze-status",
    "guest-get-load",
    "guest-network-get-route",
];

/// The parts of the benchmark (`--only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phases {
    /// Agent starts (exec to first reply, idle RSS).
    pub starts: bool,
    /// Sequential round trips.
    pub sequential: bool,
    /// Pipelined bursts.
    pub pipelined: bool,
    /// File reads.
    pub read: bool,
    /// File writes.
    pub write: bool,
}

impl Phases {
    /// Everything.
    pub const ALL: Phases = Phases {
        starts: true,
        sequential: true,
        pipelined: true,
        read: true,
        write: true,
    };

    /// Parses a comma-separated list of `starts`, `sequential`, `pipelined`, `read`, `write`.
    pub fn parse(list: &str) -> std::result::Result<Phases, String> {
        let mut p = Phases {
            starts: false,
            sequential: false,
            pipelined: false,
            read: false,
            write: false,
        };
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "starts" => p.starts = true,
                "sequential" => p.sequential = true,
                "pipelined" => p.pipelined = true,
                "read" => p.read = true,
                "write" => p.write = true,
                other => {
                    return Err(format!(
                        "unknown phase {other:?} (starts, sequential, pipelined, read, write)"
                    ));
                }
            }
        }
        if p == (Phases {
            starts: false,
            sequential: false,
            pipelined: false,
            read: false,
            write: false,
        }) {
            return Err("no phase selected (starts, sequential, pipelined, read, write)".into());
        }
        Ok(p)
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `qga` binary.
    pub qga: PathBuf,
    /// The reference agent, or why it is left out.
    pub reference: std::result::Result<PathBuf, String>,
    /// The static `qga` binary whose size is a goal (`None`: not built).
    pub static_qga: Option<PathBuf>,
    /// Rounds (each agent measured once per round, the order alternating).
    pub runs: usize,
    /// Few requests and small files.
    pub quick: bool,
    /// CPU placement.
    pub placement: Placement,
    /// Where the agents' directories, the echo socket and the file data go.
    pub scratch: PathBuf,
    /// Which parts run.
    pub phases: Phases,
    /// Restricts the sequential commands to these (`None`: all of [`SEQUENTIAL_COMMANDS`]).
    pub commands: Option<Vec<String>>,
    /// The command line, for the report.
    pub command_line: String,
}

/// How much work each measurement does.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Agent starts per agent and round.
    pub starts: usize,
    /// Target duration of one sequential measurement (the request count is calibrated on the
    /// slower agent, then fixed for all rounds).
    pub sequential_target: Duration,
    /// Bounds of the sequential request counts.
    pub sequential_min: usize,
    /// See `sequential_min`.
    pub sequential_max: usize,
    /// Warm-up requests before each sequential measurement.
    pub warmup: usize,
    /// Requests in a pipelined burst.
    pub pipelined: usize,
    /// Bursts per agent and round (the round's figure is their median).
    pub pipelined_bursts: usize,
    /// Size of the file read.
    pub read_total: usize,
    /// Bytes per guest-file-read: (key, count), the large one first.
    pub read_counts: Vec<(&'static str, usize)>,
    /// Size of the file written.
    pub write_total: usize,
    /// Bytes per guest-file-write: (key, chunk).
    pub write_chunks: Vec<(&'static str, usize)>,
}

const MIB: usize = 1 << 20;
const KIB: usize = 1 << 10;

impl Sizes {
    /// The full benchmark.
    pub fn full() -> Sizes {
        Sizes {
            starts: 9,
            sequential_target: Duration::from_millis(300),
            sequential_min: 200,
            sequential_max: 20_000,
            warmup: 100,
            pipelined: 10_000,
            pipelined_bursts: 3,
            read_total: 64 * MIB,
            read_counts: vec![("read/large", 4 * MIB), ("read/small", 64 * KIB)],
            write_total: 16 * MIB,
            write_chunks: vec![
                ("write/small", MIB),
                ("write/large", 4 * MIB),
                ("write/single", 16 * MIB),
            ],
        }
    }

    /// `--quick`: a short version for CI.
    pub fn quick() -> Sizes {
        Sizes {
            starts: 2,
            sequential_target: Duration::ZERO,
            sequential_min: 20,
            sequential_max: 20,
            warmup: 3,
            pipelined: 500,
            pipelined_bursts: 1,
            read_total: 2 * MIB,
            read_counts: vec![("read/large", MIB), ("read/small", 64 * KIB)],
            write_total: 2 * MIB,
            write_chunks: vec![
                ("write/small", 256 * KIB),
                ("write/large", MIB),
                ("write/single", 2 * MIB),
            ],
        }
    }
}

/// A size for labels: `4 MiB`, `64 KiB`, `100 B`.
pub fn size_text(bytes: usize) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} B")
    }
}

/// Seed of the file contents.
const DATA_SEED: u64 = 0x005e_ed0f_a9e4_7b3c;

/// A sequential command kept for measurement, with its request count.
#[derive(Debug, Clone)]
struct Planned {
    command: String,
    count: usize,
}

/// Commands left out of the sequential measurements, with the reason.
type Skipped = Vec<(String, String)>;

/// State shared by the rounds.
struct Bench<'a> {
    options: &'a Options,
    sizes: Sizes,
    specs: Vec<(AgentSpec, Side)>,
    spawner: Spawner,
    echo: EchoPeer,
    table: Table,
    /// Described before any pinning (which narrows this process's CPU list).
    machine: procfs::Machine,
    next_id: u64,
    notes: Vec<String>,
    progress: &'a mut dyn FnMut(&str),
}

/// Runs the benchmark. `progress` receives a line at each step.
pub fn run(options: &Options, progress: &mut dyn FnMut(&str)) -> Result<Report> {
    let sizes = if options.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let machine = procfs::Machine::describe();
    if let Some(cpu) = options.placement.client {
        affinity::pin_current_thread(cpu)?;
    }
    let spawner = Spawner::new(options.placement.agent)?;
    let echo = EchoPeer::start(options.placement.agent, &options.scratch)?;
    let mut specs = vec![(
        AgentSpec {
            label: "qga".into(),
            path: options.qga.clone(),
        },
        Side::Qga,
    )];
    if let Ok(path) = &options.reference {
        specs.push((
            AgentSpec {
                label: "qemu-ga".into(),
                path: path.clone(),
            },
            Side::Reference,
        ));
    }
    let mut bench = Bench {
        options,
        sizes,
        specs,
        spawner,
        echo,
        table: Table::default(),
        machine,
        next_id: 1,
        notes: Vec::new(),
        progress,
    };
    bench.run()
}

impl Bench<'_> {
    fn say(&mut self, line: &str) {
        (self.progress)(line);
    }

    fn ids(&mut self, n: usize) -> u64 {
        let first = self.next_id;
        self.next_id += n as u64;
        first
    }

    /// The agents in this round's order: qga first in odd rounds, qemu-ga first in even ones.
    fn order(&self, round: usize) -> Vec<(AgentSpec, Side)> {
        let mut order = self.specs.clone();
        if round % 2 == 1 {
            order.reverse();
        }
        order
    }

    fn start(&self, spec: &AgentSpec) -> Result<Started> {
        let p = self.options.placement;
        let spin = matches!((p.client, p.agent), (Some(c), Some(a)) if c != a);
        RunningAgent::start(spec, &self.spawner, &self.options.scratch, spin)
    }

    fn run(&mut self) -> Result<Report> {
        let phases = self.options.phases;
        let (planned, skipped) = if phases.sequential {
            self.say("probing the read-only commands");
            self.discover()?
        } else {
            (Vec::new(), Vec::new())
        };
        let data_dir = ScratchDir::new(&self.options.scratch, "qga-bench-data").context(|| {
            format!(
                "cannot create a directory in {}",
                self.options.scratch.display()
            )
        })?;
        let source = data_dir.path().join("source.bin");
        if phases.read {
            // The file data is generated again for each round's transfers and dropped after
            // them: agents are started (fork) while the client is small, or `spawn()` would copy
            // the page tables of the buffers and distort the start-up figures.
            std::fs::write(&source, workload::pattern(self.sizes.read_total, DATA_SEED))
                .context(|| format!("cannot write {}", source.display()))?;
            std::fs::set_permissions(&source, std::fs::Permissions::from_mode(0o644))
                .context(|| format!("cannot chmod {}", source.display()))?;
        }

        let mut session_cpu = Vec::new();
        for round in 0..self.options.runs {
            let runs = self.options.runs;
            let first = self
                .order(round)
                .first()
                .map_or_else(String::new, |(s, _)| s.label.clone());
            self.say(&format!("round {}/{runs} ({first} first)", round + 1));
            if phases.starts {
                self.say(&format!("round {}/{runs}: starts", round + 1));
                self.startup(round)?;
            }
            if phases.sequential || phases.pipelined {
                self.say(&format!(
                    "round {}/{runs}: sequential and pipelined",
                    round + 1
                ));
                session_cpu = self.session(round, &planned)?;
            }
            if phases.read || phases.write {
                self.say(&format!("round {}/{runs}: file transfers", round + 1));
                self.files(round, &source)?;
            }
        }
        drop(data_dir);
        self.record_sizes();
        for (label, ns, ticks) in session_cpu
            .into_iter()
            .filter(|(_, ns, _)| *ns >= 100_000_000)
        {
            self.notes.push(format!(
                "CPU accounting cross-check ({label}, last round's sequential and pipelined \
                 session): {:.3} s from schedstat, {:.2} s from /proc/PID/stat utime+stime",
                ns as f64 / 1e9,
                ticks as f64 / procfs::USER_HZ as f64
            ));
        }
        Ok(self.report(&planned, skipped))
    }

    /// Keeps the commands every agent answers with a `return`, and calibrates their counts.
    fn discover(&mut self) -> Result<(Vec<Planned>, Skipped)> {
        let mut started = Vec::new();
        for (spec, _) in &self.specs {
            started.push((spec.label.clone(), self.start(spec)?));
        }
        let mut planned = Vec::new();
        let mut skipped = Vec::new();
        let wanted = self.options.commands.clone();
        for &command in SEQUENTIAL_COMMANDS
            .iter()
            .filter(|c| wanted.as_ref().is_none_or(|w| w.iter().any(|x| x == *c)))
        {
            let mut refusal = None;
            for (label, s) in &mut started {
                let id = 9_000_000 + planned.len() as u64;
                if let Some(reply) =
                    workload::probe(&mut s.conn, command, id, CpuOf::Agent(&s.agent))?
                {
                    refusal = Some(format!("{label} answers {reply}"));
                    break;
                }
            }
            if let Some(why) = refusal {
                skipped.push((command.to_owned(), why));
                continue;
            }
            let count = if self.sizes.sequential_target.is_zero() {
                self.sizes.sequential_min
            } else {
                let mut slowest = Duration::ZERO;
                for (_, s) in &mut started {
                    let id = self.next_id;
                    self.next_id += 40;
                    let warm = Sequence::command(command, id, 20);
                    workload::run_sequence(&mut s.conn, &warm, CpuOf::Agent(&s.agent))?;
                    let probe = Sequence::command(command, id + 20, 20);
                    let st = workload::run_sequence(&mut s.conn, &probe, CpuOf::Agent(&s.agent))?;
                    slowest = slowest.max(st.elapsed / 20);
                }
                let n = self.sizes.sequential_target.as_nanos() / slowest.as_nanos().max(1);
                usize::try_from(n)
                    .unwrap_or(usize::MAX)
                    .clamp(self.sizes.sequential_min, self.sizes.sequential_max)
            };
            planned.push(Planned {
                command: command.to_owned(),
                count,
            });
        }
        Ok((planned, skipped))
    }

    /// Agent starts: exec to first reply, and the idle RSS right after it. The static build, when
    /// there is one, is started too (its own rows).
    fn startup(&mut self, round: usize) -> Result<()> {
        let mut variants: Vec<(AgentSpec, Side, &str)> = self
            .order(round)
            .into_iter()
            .map(|(spec, side)| (spec, side, ""))
            .collect();
        if let Some(path) = &self.options.static_qga {
            variants.push((
                AgentSpec {
                    label: "qga (static)".into(),
                    path: path.clone(),
                },
                Side::Qga,
                "/static",
            ));
        }
        // Per variant: first reply, spawn, CPU to first reply (ms), idle RSS (MiB).
        let mut samples: Vec<[Vec<f64>; 4]> = vec![Default::default(); variants.len()];
        for _ in 0..self.sizes.starts {
            for ((spec, _, _), s) in variants.iter().zip(samples.iter_mut()) {
                let started = self.start(spec)?;
                let rss = started.agent.rss_kib()?;
                let [first, spawn, cpu, idle] = s;
                first.push(started.first_reply.as_secs_f64() * 1e3);
                spawn.push(started.spawn.as_secs_f64() * 1e3);
                cpu.push(started.cpu_to_first_reply_ns as f64 / 1e6);
                idle.push(rss as f64 / 1024.0);
            }
        }
        for ((_, side, suffix), [first, spawn, cpu, idle]) in variants.iter().zip(&samples) {
            let (start_bench, idle_bench) = if suffix.is_empty() {
                (
                    "start (spawn to first reply byte)".to_owned(),
                    "idle agent (after its first reply)".to_owned(),
                )
            } else {
                (
                    "start, static qga (musl, profile min)".to_owned(),
                    "idle, static qga (musl, profile min)".to_owned(),
                )
            };
            for (metric, values) in [
                (report::FIRST_REPLY, first),
                (report::SPAWN, spawn),
                (report::CPU_TO_FIRST_REPLY, cpu),
            ] {
                if let Some(m) = report::median(values) {
                    self.table
                        .record(&format!("startup{suffix}"), &start_bench, metric, *side, m);
                }
            }
            if let Some(m) = report::median(idle) {
                self.table.record(
                    &format!("idle{suffix}"),
                    &idle_bench,
                    report::IDLE_RSS,
                    *side,
                    m,
                );
            }
        }
        Ok(())
    }

    /// Sequential round trips and pipelined bursts on one fresh agent each. Returns
    /// each agent's CPU time over the session by schedstat (ns) and by /proc/PID/stat (ticks).
    fn session(&mut self, round: usize, planned: &[Planned]) -> Result<Vec<(String, u64, u64)>> {
        let order = self.order(round);
        let mut agents = Vec::new();
        for (spec, side) in &order {
            agents.push((spec.label.clone(), *side, self.start(spec)?));
        }
        let mut cpu_at_start = Vec::new();
        for (_, _, s) in &agents {
            cpu_at_start.push((s.agent.cpu_ns()?, procfs::process_cpu_ticks(s.agent.pid())?));
        }
        let mut floor = self.echo.connect()?;
        for p in planned {
            let key = format!("seq/{}", p.command);
            let bench = format!("{} (sequential, n={})", p.command, p.count);
            for (_, side, s) in &mut agents {
                let warm_id = self.next_id;
                self.next_id += (self.sizes.warmup + p.count) as u64;
                let warm = Sequence::command(&p.command, warm_id, self.sizes.warmup);
                workload::run_sequence(&mut s.conn, &warm, CpuOf::Agent(&s.agent))?;
                let seq =
                    Sequence::command(&p.command, warm_id + self.sizes.warmup as u64, p.count);
                let st = workload::run_sequence(&mut s.conn, &seq, CpuOf::Agent(&s.agent))?;
                record_sequence(&mut self.table, &key, &bench, *side, &st);
            }
            if p.command == "guest-sync" {
                let id = self.ids(self.sizes.warmup + p.count);
                let warm = Sequence::echo(id, self.sizes.warmup);
                workload::run_sequence(&mut floor, &warm, CpuOf::Echo(&self.echo))?;
                let seq = Sequence::echo(id + self.sizes.warmup as u64, p.count);
                let st = workload::run_sequence(&mut floor, &seq, CpuOf::Echo(&self.echo))?;
                record_sequence(&mut self.table, &key, &bench, Side::Floor, &st);
            }
        }

        let n = self.sizes.pipelined;
        let bench = format!("guest-sync pipelined (n={n})");
        let mut bursts: Vec<(Side, Vec<workload::PipeStats>)> = Vec::new();
        let bursts_wanted = if self.options.phases.pipelined {
            self.sizes.pipelined_bursts
        } else {
            0
        };
        for _ in 0..bursts_wanted {
            for (_, side, s) in &mut agents {
                let id = self.next_id;
                self.next_id += n as u64;
                let p = Pipeline::guest_sync(id, n);
                let st = workload::run_pipeline(&mut s.conn, &p, CpuOf::Agent(&s.agent))?;
                push_burst(&mut bursts, *side, st);
            }
            let id = self.ids(n);
            let st = workload::run_pipeline(
                &mut floor,
                &Pipeline::echo(id, n),
                CpuOf::Echo(&self.echo),
            )?;
            push_burst(&mut bursts, Side::Floor, st);
        }
        for (side, list) in &bursts {
            let rate: Vec<f64> = list.iter().map(workload::PipeStats::per_second).collect();
            let cpu: Vec<f64> = list
                .iter()
                .map(workload::PipeStats::cpu_us_per_request)
                .collect();
            if let (Some(r), Some(c)) = (report::median(&rate), report::median(&cpu)) {
                self.table
                    .record("pipelined", &bench, report::REQ_PER_S, *side, r);
                self.table
                    .record("pipelined", &bench, report::CPU_PER_REQ, *side, c);
            }
        }
        let mut totals = Vec::new();
        for ((label, _, s), (ns0, ticks0)) in agents.iter().zip(cpu_at_start) {
            totals.push((
                label.clone(),
                s.agent.cpu_ns()?.saturating_sub(ns0),
                procfs::process_cpu_ticks(s.agent.pid())?.saturating_sub(ticks0),
            ));
        }
        Ok(totals)
    }

    /// File reads and writes, each on a fresh agent.
    fn files(&mut self, round: usize, source: &Path) -> Result<()> {
        let order = self.order(round);
        // The same bytes as `source` (same seed), extended for the writes.
        let data = workload::pattern(self.sizes.read_total.max(self.sizes.write_total), DATA_SEED);
        let read_data = data.get(..self.sizes.read_total).unwrap_or_default();
        let phases = self.options.phases;
        let read_counts = if phases.read {
            self.sizes.read_counts.clone()
        } else {
            Vec::new()
        };
        let write_chunks = if phases.write {
            self.sizes.write_chunks.clone()
        } else {
            Vec::new()
        };
        for (key, count) in read_counts {
            let plan = ReadPlan::new(read_data, count);
            let bench = format!(
                "guest-file-read {}, count {}",
                size_text(read_data.len()),
                size_text(count)
            );
            for (spec, side) in &order {
                let mut s = self.start(spec)?;
                let path = s.agent.dir().join("source.bin");
                link_or_copy(source, &path)?;
                let st = workload::run_file_read(&mut s.conn, &s.agent, &path, read_data, &plan)?;
                record_file(&mut self.table, key, &bench, *side, &st);
            }
        }
        let write_data = data.get(..self.sizes.write_total).unwrap_or_default();
        for (key, chunk) in write_chunks {
            let plan = WritePlan::new(write_data, chunk);
            let bench = if chunk >= write_data.len() {
                format!(
                    "guest-file-write {} in one request",
                    size_text(write_data.len())
                )
            } else {
                format!(
                    "guest-file-write {}, {} per request",
                    size_text(write_data.len()),
                    size_text(chunk)
                )
            };
            for (spec, side) in &order {
                let mut s = self.start(spec)?;
                let path = s.agent.dir().join("written.bin");
                let st = workload::run_file_write(&mut s.conn, &s.agent, &path, write_data, &plan)?;
                record_file(&mut self.table, key, &bench, *side, &st);
            }
        }
        Ok(())
    }

    fn record_sizes(&mut self) {
        let size = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| m.len() as f64 / MIB as f64)
                .ok()
        };
        if let Some(v) = size(&self.options.qga) {
            self.table.record(
                "binary",
                "binary as benchmarked",
                report::SIZE,
                Side::Qga,
                v,
            );
        }
        if let Ok(r) = &self.options.reference {
            if let Some(v) = size(r) {
                self.table.record(
                    "binary",
                    "binary as benchmarked",
                    report::SIZE,
                    Side::Reference,
                    v,
                );
            }
        }
        if let Some(v) = self.options.static_qga.as_deref().and_then(size) {
            self.table.record(
                "static",
                "static qga (musl, profile min)",
                report::SIZE,
                Side::Qga,
                v,
            );
        }
    }

    fn report(&mut self, planned: &[Planned], skipped: Vec<(String, String)>) -> Report {
        let o = self.options;
        let machine = self.machine.clone();
        let agent_line = |path: &Path| {
            let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
            format!(
                "{} ({}, {} bytes)",
                path.display(),
                agent::version(path),
                bytes
            )
        };
        let mut header = vec![
            ("command".to_owned(), o.command_line.clone()),
            (
                "machine".to_owned(),
                format!(
                    "{}, {} CPUs{}, {} MiB RAM",
                    machine.cpu_model,
                    machine.cpus,
                    if machine.virtualized {
                        " (virtual machine)"
                    } else {
                        ""
                    },
                    machine.mem_mib
                ),
            ),
            ("kernel".to_owned(), machine.kernel.clone()),
            (
                "placement".to_owned(),
                o.placement.describe(&machine.allowed_cpus),
            ),
            ("qga".to_owned(), agent_line(&o.qga)),
        ];
        match &o.reference {
            Ok(p) => header.push(("qemu-ga".to_owned(), agent_line(p))),
            Err(why) => header.push(("qemu-ga".to_owned(), format!("SKIPPED: {why}"))),
        }
        let s = self.sizes.clone();
        header.push((
            "rounds".to_owned(),
            format!(
                "{} ({}), agents alternating which goes first; medians over rounds",
                o.runs,
                if o.quick { "quick" } else { "full" }
            ),
        ));
        header.push((
            "work".to_owned(),
            format!(
                "{} starts per agent and round; sequential counts calibrated to ~{} ms on the \
                 slower agent ({}-{}), {} warm-up requests each; {} bursts of {} pipelined \
                 guest-syncs; fresh agent per file transfer",
                s.starts,
                s.sequential_target.as_millis(),
                s.sequential_min,
                s.sequential_max,
                s.warmup,
                s.pipelined_bursts,
                s.pipelined
            ),
        ));
        let p = o.placement;
        header.push((
            "start timing".to_owned(),
            if matches!((p.client, p.agent), (Some(c), Some(a)) if c != a) {
                "from just before spawn() to the first reply byte; connect() retried without \
                 pause (client and agent on different CPUs)"
                    .to_owned()
            } else {
                format!(
                    "from just before spawn() to the first reply byte; connect() retried every \
                     {} µs (plus timer slack) so as not to take the starting agent's CPU",
                    agent::CONNECT_POLL.as_micros()
                )
            },
        ));
        header.push((
            "directories".to_owned(),
            format!(
                "agents' directories (socket, state, log, files) under {}",
                o.scratch.display()
            ),
        ));
        header.push((
            "agent CPU".to_owned(),
            "sum of /proc/PID/task/*/schedstat run time before and after each measurement"
                .to_owned(),
        ));
        header.push((
            "floor".to_owned(),
            format!(
                "echo peer thread in this process, one fixed reply ({:?}) per request line",
                String::from_utf8_lossy(echo::ECHO_REPLY).trim_end()
            ),
        ));
        let with_reference = o.reference.is_ok();
        if let Err(why) = &o.reference {
            self.notes
                .push(format!("the reference agent was not measured: {why}"));
        }
        if o.quick {
            self.notes.push(
                "quick mode: few requests and small files; the figures and goals are only \
                 indicative"
                    .to_owned(),
            );
        }
        self.client_bound_notes();
        let setup = json!({
            "command": o.command_line,
            "machine": {
                "cpu_model": machine.cpu_model,
                "cpus": machine.cpus,
                "allowed_cpus": machine.allowed_cpus,
                "virtualized": machine.virtualized,
                "kernel": machine.kernel,
                "mem_mib": machine.mem_mib,
            },
            "placement": {
                "client_cpu": o.placement.client,
                "agent_cpu": o.placement.agent,
                "description": o.placement.describe(&machine.allowed_cpus),
            },
            "qga": {"path": o.qga, "version": agent::version(&o.qga)},
            "qemu-ga": match &o.reference {
                Ok(p) => json!({"path": p, "version": agent::version(p)}),
                Err(why) => json!({"skipped": why}),
            },
            "static_qga": o.static_qga,
            "scratch": o.scratch,
            "runs": o.runs,
            "quick": o.quick,
            "sequential_counts": planned
                .iter()
                .map(|p| (p.command.clone(), json!(p.count)))
                .collect::<serde_json::Map<_, _>>(),
            "starts_per_round": s.starts,
            "pipelined": s.pipelined,
            "pipelined_bursts": s.pipelined_bursts,
            "read_total": s.read_total,
            "read_counts": s.read_counts.iter().map(|(_, c)| *c).collect::<Vec<_>>(),
            "write_total": s.write_total,
            "write_chunks": s.write_chunks.iter().map(|(_, c)| *c).collect::<Vec<_>>(),
        });
        Report {
            header,
            setup,
            skipped,
            goals: self.goals(),
            table: self.table.clone(),
            with_reference,
            notes: std::mem::take(&mut self.notes),
        }
    }

    /// Says where the client, not the agent, limited a transfer.
    fn client_bound_notes(&mut self) {
        for row in self.table.rows() {
            if row.metric.name != report::CLIENT_CPU.name {
                continue;
            }
            if let Some(pct) = row.median(Side::Qga) {
                if pct >= 80.0 {
                    self.notes.push(format!(
                        "{}: the client thread was busy {pct:.0}% of the wall time against qga, \
                         so the client (not qga) bounds that throughput; MiB per agent-CPU \
                         second shows qga's own limit",
                        row.bench
                    ));
                }
            }
        }
    }

    fn goals(&self) -> Vec<Goal> {
        let t = &self.table;
        let mut goals = Vec::new();
        let bench_of = |key: &str| {
            t.rows()
                .iter()
                .find(|r| r.key == key)
                .map_or_else(|| key.to_owned(), |r| r.bench.clone())
        };
        // qga's value against qemu-ga's: ratio qga/qemu-ga compared with `limit`.
        let vs_reference = |key: &str,
                            metric: report::Metric,
                            name: String,
                            target: &str,
                            limit: f64,
                            at_most: bool| {
            let row = t.row(key, metric);
            let q = row.and_then(|r| r.median(Side::Qga));
            let o = row.and_then(|r| r.median(Side::Reference));
            let ratio = row.and_then(|r| r.ratio(Side::Reference));
            let (measured, status) = match (q, o, ratio) {
                (Some(q), Some(o), Some(r)) => (
                    format!(
                        "{} (qga {}, qemu-ga {})",
                        report::ratio_text(Some(r)),
                        report::value_text(metric, Some(q)),
                        report::value_text(metric, Some(o))
                    ),
                    if (at_most && r <= limit) || (!at_most && r >= limit) {
                        Status::Met
                    } else {
                        Status::Missed
                    },
                ),
                (Some(_), None, _) => (
                    "not measured (no reference)".to_owned(),
                    Status::NotMeasured,
                ),
                _ => ("not measured".to_owned(), Status::NotMeasured),
            };
            Goal {
                name,
                target: target.to_owned(),
                measured,
                status,
            }
        };
        // qga's absolute value compared with `limit`.
        let absolute = |key: &str,
                        metric: report::Metric,
                        name: String,
                        target: &str,
                        limit: f64,
                        at_most: bool| {
            let q = t.row(key, metric).and_then(|r| r.median(Side::Qga));
            let (measured, status) = match q {
                Some(q) => (
                    report::value_text(metric, Some(q)),
                    if (at_most && q <= limit) || (!at_most && q >= limit) {
                        Status::Met
                    } else {
                        Status::Missed
                    },
                ),
                None => ("not measured".to_owned(), Status::NotMeasured),
            };
            Goal {
                name,
                target: target.to_owned(),
                measured,
                status,
            }
        };
        for cmd in ["guest-sync", "guest-info"] {
            goals.push(vs_reference(
                &format!("seq/{cmd}"),
                report::CPU_PER_REQ,
                format!("{cmd}: agent CPU per request"),
                "<= 1/10 of qemu-ga's",
                0.1,
                true,
            ));
        }
        {
            let row = t.row("seq/guest-sync", report::P50);
            let q = row.and_then(|r| r.median(Side::Qga));
            let f = row.and_then(|r| r.median(Side::Floor));
            let (measured, status) = match (q, f) {
                (Some(q), Some(f)) if f > 0.0 => (
                    format!(
                        "{} (qga {}, echo floor {})",
                        report::ratio_text(Some(q / f)),
                        report::value_text(report::P50, Some(q)),
                        report::value_text(report::P50, Some(f))
                    ),
                    if q / f <= 1.2 {
                        Status::Met
                    } else {
                        Status::Missed
                    },
                ),
                _ => ("not measured".to_owned(), Status::NotMeasured),
            };
            goals.push(Goal {
                name: "guest-sync sequential round trip (p50)".into(),
                target: "<= 1.2x the echo floor".into(),
                measured,
                status,
            });
        }
        goals.push(vs_reference(
            "pipelined",
            report::REQ_PER_S,
            format!("{}: throughput", bench_of("pipelined")),
            ">= 10x qemu-ga",
            10.0,
            false,
        ));
        for (key, _) in &self.sizes.read_counts {
            goals.push(absolute(
                key,
                report::MIB_PER_S,
                format!("{}: throughput", bench_of(key)),
                ">= 1.5 GiB/s (1536 MiB/s)",
                1536.0,
                false,
            ));
            goals.push(vs_reference(
                key,
                report::CPU_PER_MIB,
                format!("{}: agent CPU per MiB", bench_of(key)),
                "<= 1/10 of qemu-ga's",
                0.1,
                true,
            ));
        }
        for (key, _) in &self.sizes.write_chunks {
            if *key == "write/single" {
                continue;
            }
            goals.push(vs_reference(
                key,
                report::MIB_PER_S,
                format!("{}: throughput", bench_of(key)),
                ">= 10x qemu-ga",
                10.0,
                false,
            ));
        }
        // qga's median for `key`/`metric`, as text.
        let qga_value = |key: &str, metric: report::Metric| {
            t.row(key, metric)
                .and_then(|r| r.median(Side::Qga))
                .map(|v| report::value_text(metric, Some(v)))
        };
        let mut idle = absolute(
            "idle",
            report::IDLE_RSS,
            "idle RSS (release build)".into(),
            "<= 1 MiB",
            1.0,
            true,
        );
        if let Some(v) = qga_value("idle/static", report::IDLE_RSS) {
            idle.measured
                .push_str(&format!(" (static musl build: {v})"));
        }
        goals.push(idle);
        for key in ["read/large", "write/large"] {
            goals.push(absolute(
                key,
                report::PEAK_RSS,
                format!("{}: peak RSS", bench_of(key)),
                "<= 16 MiB",
                16.0,
                true,
            ));
        }
        let mut start = absolute(
            "startup",
            report::FIRST_REPLY,
            "exec to first reply (release build)".into(),
            "<= 0.5 ms",
            0.5,
            true,
        );
        let details: Vec<String> = [
            ("spawn()", "startup", report::SPAWN),
            ("agent CPU", "startup", report::CPU_TO_FIRST_REPLY),
            ("static musl build", "startup/static", report::FIRST_REPLY),
            ("its CPU", "startup/static", report::CPU_TO_FIRST_REPLY),
        ]
        .into_iter()
        .filter_map(|(what, key, metric)| qga_value(key, metric).map(|v| format!("{what} {v}")))
        .collect();
        if !details.is_empty() {
            start
                .measured
                .push_str(&format!(" ({})", details.join(", ")));
        }
        goals.push(start);
        let mut static_goal = absolute(
            "static",
            report::SIZE,
            "static binary (x86_64-unknown-linux-musl, profile min)".into(),
            "<= 1 MiB",
            1.0,
            true,
        );
        match &self.options.static_qga {
            Some(p) => {
                let kind = if is_static_elf(p) {
                    "statically linked"
                } else {
                    "NOT statically linked"
                };
                static_goal.measured = format!(
                    "{} ({kind}, {} bytes)",
                    static_goal.measured,
                    std::fs::metadata(p).map_or(0, |m| m.len())
                );
            }
            None => {
                static_goal.measured = "not built (cargo build --profile min --target \
                                        x86_64-unknown-linux-musl -p qga --bin qga)"
                    .into();
            }
        }
        goals.push(static_goal);
        goals
    }
}

fn record_sequence(table: &mut Table, key: &str, bench: &str, side: Side, st: &workload::SeqStats) {
    table.record(key, bench, report::REQ_PER_S, side, st.per_second());
    table.record(key, bench, report::P50, side, st.quantile_us(0.50));
    table.record(key, bench, report::P99, side, st.quantile_us(0.99));
    table.record(
        key,
        bench,
        report::CPU_PER_REQ,
        side,
        st.cpu_us_per_request(),
    );
}

fn push_burst(
    bursts: &mut Vec<(Side, Vec<workload::PipeStats>)>,
    side: Side,
    st: workload::PipeStats,
) {
    match bursts.iter_mut().find(|(s, _)| *s == side) {
        Some((_, list)) => list.push(st),
        None => bursts.push((side, vec![st])),
    }
}

fn record_file(table: &mut Table, key: &str, bench: &str, side: Side, st: &workload::FileStats) {
    table.record(key, bench, report::MIB_PER_S, side, st.mib_per_second());
    table.record(key, bench, report::CPU_PER_MIB, side, st.cpu_ms_per_mib());
    table.record(
        key,
        bench,
        report::MIB_PER_CPU_S,
        side,
        st.mib_per_agent_cpu_second(),
    );
    table.record(
        key,
        bench,
        report::CLIENT_CPU,
        side,
        st.client_cpu_percent(),
    );
    table.record(
        key,
        bench,
        report::PEAK_RSS,
        side,
        st.hwm_kib as f64 / 1024.0,
    );
    table.record(
        key,
        bench,
        report::RSS_AFTER,
        side,
        st.rss_after_kib as f64 / 1024.0,
    );
}

/// Puts `source` at `dest` (a hard link: one page-cached copy for every agent; a copy when the
/// link is impossible).
fn link_or_copy(source: &Path, dest: &Path) -> Result<()> {
    if std::fs::hard_link(source, dest).is_ok() {
        return Ok(());
    }
    std::fs::copy(source, dest)
        .map(drop)
        .context(|| format!("cannot copy {} to {}", source.display(), dest.display()))
}

/// True for an ELF file without a `PT_INTERP` program header (no dynamic loader).
pub fn is_static_elf(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map(u16::from_le_bytes)
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
    };
    // 64-bit little-endian ELF only (what this benchmark builds).
    if bytes.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    const PT_INTERP: u32 = 3;
    (0..usize::from(phnum))
        .all(|i| u32_at(phoff + i * usize::from(phentsize)).is_some_and(|t| t != PT_INTERP))
}
