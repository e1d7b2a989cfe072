//! What the benchmark reads from `/proc`: CPU time of processes and threads, memory, identity,
//! CPU placement, and a description of the machine.
//!
//! CPU time comes from `/proc/<pid>/task/<tid>/schedstat` (the scheduler's `sum_exec_runtime`,
//! nanoseconds, summed over the threads). `/proc/<pid>/stat` (`utime + stime`) counts the same
//! time but in clock ticks of 10 ms, too coarse for per-request figures; it is read as a
//! cross-check ([`process_cpu_ticks`]). Both count only the process's own CPU time, whatever the
//! client does.

use std::path::Path;

use super::error::{Context, Error, Result};

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`, 100 on every Linux architecture
/// this runs on).
pub const USER_HZ: u64 = 100;

/// CPU time (ns) of every live thread of `pid`.
pub fn process_cpu_ns(pid: u32) -> Result<u64> {
    let dir = format!("/proc/{pid}/task");
    let entries = std::fs::read_dir(&dir).context(|| format!("cannot list {dir}"))?;
    let mut total = 0u64;
    for entry in entries {
        let entry = entry.context(|| format!("cannot list {dir}"))?;
        match schedstat_ns(&entry.path().join("schedstat")) {
            Ok(ns) => total = total.saturating_add(ns),
            // A thread that ended between the listing and the read.
            Err(_) if !entry.path().exists() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

/// CPU time (ns) of thread `tid` of this process.
pub fn thread_cpu_ns(tid: u32) -> Result<u64> {
    schedstat_ns(Path::new(&format!("/proc/self/task/{tid}/schedstat")))
}

/// CPU time (ns) of the calling thread (lags the truth by at most a scheduler tick while the
/// thread runs).
pub fn current_thread_cpu_ns() -> Result<u64> {
    schedstat_ns(Path::new("/proc/thread-self/schedstat"))
}

fn schedstat_ns(path: &Path) -> Result<u64> {
    let text =
        std::fs::read_to_string(path).context(|| format!("cannot read {}", path.display()))?;
    text.split_ascii_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| Error::new(format!("{}: unexpected contents {text:?}", path.display())))
}

/// `utime + stime` of `pid` in clock ticks ([`USER_HZ`]), all threads included.
pub fn process_cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).context(|| format!("cannot read {path}"))?;
    // The command name is in parentheses and may contain spaces: fields start after the last ')'.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| Error::new(format!("{path}: no ')' in {text:?}")))?;
    // After ')' come field 3 (state) onwards; utime and stime are fields 14 and 15.
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let mut next = || -> Result<u64> {
        fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| Error::new(format!("{path}: cannot parse utime/stime")))
    };
    let utime = next()?;
    let stime = next()?;
    Ok(utime + stime)
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS`, `VmHWM`…), in KiB.
pub fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let value = status_field(pid, field)?;
    value
        .trim()
        .strip_suffix("kB")
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            Error::new(format!(
                "/proc/{pid}/status: cannot parse {field}: {value:?}"
            ))
        })
}

/// The text after `field:` in `/proc/<pid>/status`, trimmed.
pub fn status_field(pid: u32, field: &str) -> Result<String> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).context(|| format!("cannot read {path}"))?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix(field)
                .and_then(|r| r.strip_prefix(':'))
                .map(|v| v.trim().to_owned())
        })
        .ok_or_else(|| Error::new(format!("{path}: no {field} line")))
}

/// The thread id of the calling thread (from the `/proc/thread-self` link, `<pid>/task/<tid>`).
pub fn current_tid() -> Result<u32> {
    let link = std::fs::read_link("/proc/thread-self")
        .context(|| "cannot read /proc/thread-self".to_owned())?;
    link.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Error::new(format!("unexpected /proc/thread-self: {}", link.display())))
}

/// Whether this process runs as root (the owner of `/proc/self` is the effective uid).
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The CPUs this process may run on (`Cpus_allowed_list`, e.g. `0-1`).
pub fn allowed_cpus_self() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("Cpus_allowed_list:")
                    .map(|v| v.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// Expands a CPU list (`0-3,6`) into CPU numbers.
pub fn parse_cpu_list(list: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(lo), Ok(hi)) = (lo.parse::<usize>(), hi.parse::<usize>()) {
            cpus.extend(lo..=hi);
        }
    }
    cpus
}

/// What the machine is: CPU model and count, kernel, memory.
#[derive(Debug, Clone)]
pub struct Machine {
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Online CPUs.
    pub cpus: usize,
    /// CPUs this process may use.
    pub allowed_cpus: String,
    /// Whether `/proc/cpuinfo` lists the `hypervisor` flag.
    pub virtualized: bool,
    /// `uname -srv` equivalent from `/proc/sys/kernel`.
    pub kernel: String,
    /// `MemTotal` in MiB.
    pub mem_mib: u64,
}

impl Machine {
    /// Reads the description from `/proc`.
    pub fn describe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let cpus = cpuinfo
            .lines()
            .filter(|l| l.split(':').next().is_some_and(|k| k.trim() == "processor"))
            .count();
        let virtualized = cpuinfo.lines().any(|l| {
            l.starts_with("flags") && l.split_ascii_whitespace().any(|f| f == "hypervisor")
        });
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        };
        let kernel = format!(
            "{} {} {}",
            read("/proc/sys/kernel/ostype"),
            read("/proc/sys/kernel/osrelease"),
            read("/proc/sys/kernel/version")
        );
        let mem_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| {
                    l.strip_prefix("MemTotal:")?
                        .trim()
                        .strip_suffix("kB")?
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
            })
            .map_or(0, |kib| kib / 1024);
        Machine {
            cpu_model,
            cpus,
            allowed_cpus: allowed_cpus_self(),
            virtualized,
            kernel,
            mem_mib,
        }
    }
}
