//! `agent-bench`: qga and qemu-ga side by side on this machine, with an in-process echo peer as
//! the floor of a socket round trip. See `qga_tests::bench` for what is measured and how.
//!
//! ```text
//! cargo build --release -p qga --bin qga
//! cargo run --release -p qga-tests --bin agent-bench -- --reference /usr/sbin/qemu-ga
//! ```
//!
//! Options:
//!
//! * `--qga PATH`: the qga binary (default `$QGA_DAEMON_BIN`, else `qga` next to this binary,
//!   i.e. the same target directory and profile).
//! * `--reference PATH`: the reference agent (default `$QGA_REFERENCE_AGENT`, else
//!   `/usr/sbin/qemu-ga`). When it is missing its side is skipped with the reason printed,
//!   unless `QGA_REQUIRE_REFERENCE=1`; `--no-reference` skips it on purpose.
//! * `--static-qga PATH`: the static build whose size is a goal (default
//!   `<target>/x86_64-unknown-linux-musl/min/qga`).
//! * `--runs N` (default 3): rounds, alternating which agent goes first; medians reported.
//! * `--quick`: few requests and small files (for CI).
//! * `--json`: JSON on stdout (the table then goes to stderr).
//! * `--cpu-client N`, `--cpu-agent M`: pin the client threads to CPU N, and the agents and
//!   the echo peer to CPU M (with `taskset`).
//! * `--tmpdir DIR`: where the agents' directories go (default `/dev/shm`, tmpfs, else the
//!   system temporary directory; see `qga_tests::bench::scratch`).
//! * `--only PHASES`: a comma-separated subset of `starts,sequential,pipelined,read,write`
//!   (for profiling one part); `--commands LIST`: the sequential commands to measure (default:
//!   every read-only command both agents answer).
//!
//! Exit status: 0 after a complete run (missed goals included), 2 when the benchmark could not
//! run or a reply failed verification.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use qga_tests::bench::affinity::{self, Placement};
use qga_tests::bench::{self, Options, procfs};

const USAGE: &str = "usage: agent-bench [--qga PATH] [--reference PATH | --no-reference] \
[--static-qga PATH] [--runs N] [--quick] [--json] [--cpu-client N] [--cpu-agent M] \
[--tmpdir DIR] [--only PHASES] [--commands LIST]";

/// The parsed command line.
struct Cli {
    options: Options,
    json: bool,
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match parse(&args) {
        Ok(Some(cli)) => cli,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("agent-bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let mut progress = |line: &str| {
        eprintln!("[{:7.1} s] {line}", started.elapsed().as_secs_f64());
    };
    let report = match bench::run(&cli.options, &mut progress) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("agent-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let text = report.text();
    let written = if cli.json {
        eprint!("\n{text}");
        serde_json::to_string_pretty(&report.json())
            .map_err(std::io::Error::other)
            .and_then(|j| writeln!(std::io::stdout(), "{j}"))
    } else {
        write!(std::io::stdout(), "{text}")
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agent-bench: cannot write the report: {e}");
            ExitCode::from(2)
        }
    }
}

/// Parses the command line; `Ok(None)` for `--help`.
fn parse(args: &[OsString]) -> Result<Option<Cli>, String> {
    let mut qga: Option<PathBuf> = std::env::var_os("QGA_DAEMON_BIN").map(PathBuf::from);
    let mut reference: Option<PathBuf> = None;
    let mut no_reference = false;
    let mut static_qga: Option<PathBuf> = None;
    let mut runs = 3usize;
    let mut quick = false;
    let mut json = false;
    let mut placement = Placement::default();
    let mut scratch: Option<PathBuf> = None;
    let mut phases = bench::Phases::ALL;
    let mut commands: Option<Vec<String>> = None;
    let mut it = args.iter().skip(1);
    while let Some(arg) = it.next() {
        let arg = arg
            .to_str()
            .ok_or_else(|| format!("invalid argument {arg:?}"))?;
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let number = |v: OsString, name: &str| {
            v.to_str()
                .and_then(|s| s.parse::<usize>().ok())
                .ok_or_else(|| format!("{name}: not a number: {v:?}"))
        };
        match arg {
            "-h" | "--help" => return Ok(None),
            "--qga" => qga = Some(value(arg)?.into()),
            "--reference" => reference = Some(value(arg)?.into()),
            "--no-reference" => no_reference = true,
            "--static-qga" => static_qga = Some(value(arg)?.into()),
            "--runs" => runs = number(value(arg)?, arg)?,
            "--quick" => quick = true,
            "--tmpdir" => scratch = Some(value(arg)?.into()),
            "--only" => {
                let v = value(arg)?;
                phases = bench::Phases::parse(&v.to_string_lossy())?;
            }
            "--commands" => {
                let v = value(arg)?;
                let list: Vec<String> = v
                    .to_string_lossy()
                    .split(',')
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty())
                    .collect();
                if let Some(bad) = list
                    .iter()
                    .find(|c| !bench::SEQUENTIAL_COMMANDS.contains(&c.as_str()))
                {
                    return Err(format!(
                        "--commands: {bad} is not one of the read-only commands measured: {}",
                        bench::SEQUENTIAL_COMMANDS.join(", ")
                    ));
                }
                commands = Some(list);
            }
            "--json" => json = true,
            "--cpu-client" => placement.client = Some(number(value(arg)?, arg)?),
            "--cpu-agent" => placement.agent = Some(number(value(arg)?, arg)?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    if placement.pinned() {
        if affinity::taskset().is_none() {
            return Err("--cpu-client/--cpu-agent need `taskset` (util-linux)".into());
        }
        let allowed = procfs::parse_cpu_list(&procfs::allowed_cpus_self());
        for cpu in [placement.client, placement.agent].into_iter().flatten() {
            if !allowed.contains(&cpu) {
                return Err(format!(
                    "CPU {cpu} is not available to this process (allowed: {})",
                    procfs::allowed_cpus_self()
                ));
            }
        }
    }

    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(PathBuf::from));
    let qga = match qga {
        Some(p) => p,
        None => exe_dir
            .as_ref()
            .map(|d| d.join("qga"))
            .ok_or("cannot locate this binary's directory; pass --qga")?,
    };
    if !qga.is_file() {
        return Err(format!(
            "{} does not exist: build it (cargo build --release -p qga --bin qga) or pass --qga",
            qga.display()
        ));
    }

    let reference = if no_reference {
        Err("--no-reference".to_owned())
    } else {
        let path = reference.unwrap_or_else(qga_tests::process::reference_agent_path);
        if path.is_file() {
            Ok(path)
        } else {
            let why = format!("{} does not exist", path.display());
            if qga_tests::require_reference() {
                return Err(format!(
                    "reference agent unavailable and {}=1: {why}",
                    qga_tests::process::REQUIRE_REFERENCE_ENV
                ));
            }
            eprintln!("SKIPPED: reference agent unavailable: {why}");
            Err(why)
        }
    };

    // target/<profile>/agent-bench -> target/x86_64-unknown-linux-musl/min/qga
    let static_qga = static_qga
        .or_else(|| {
            exe_dir
                .as_ref()
                .and_then(|d| d.parent())
                .map(|t| t.join("x86_64-unknown-linux-musl/min/qga"))
        })
        .filter(|p| p.is_file());

    let command_line = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Some(Cli {
        options: Options {
            qga,
            reference,
            static_qga,
            runs,
            quick,
            placement,
            scratch: scratch.unwrap_or_else(bench::scratch::default_base),
            phases,
            commands,
            command_line,
        },
        json,
    }))
}
