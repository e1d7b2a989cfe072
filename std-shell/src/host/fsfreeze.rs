//! The kernel side of `guest-fsfreeze-*` and `guest-fstrim` (qemu-ga's `commands-linux.c`), and
//! the fsfreeze hook. The frozen state around it (marker file, logging, watchdog) is
//! [`super::freeze`].
//!
//! Errors are returned as text (qemu-ga's messages); the [`qga_core::Host`] implementation turns
//! them into replies. Nothing here touches the shared "last error" text, so the freeze watchdog
//! can run these functions from its own thread.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::time::{Duration, Instant};

use qga_core::HostError;
use qga_core::host::StrList;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::mountinfo;
pub use super::mountinfo::MountEntry;
use crate::errno::strerror;
use crate::logging::info;
use crate::sysfd::{fifreeze, fithaw};

/// How long the fsfreeze hook may run before it is killed (qemu-ga waits forever). A backup
/// tool's hook flushes a database or pauses a service: seconds, rarely more. A minute leaves
/// room for slow ones while a hung hook can no longer take the agent (and the host's freeze
/// call, which libvirt bounds by its own timeout) down with it.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(60);

/// `"<text>: <strerror>"` (`error_setg_errno`).
fn with_errno(text: &str, e: Errno) -> String {
    format!("{text}: {}", strerror(e.raw_os_error()))
}

/// The mount list, for `guest-get-fsinfo`.
///
/// # Errors
///
/// qemu-ga's message when no mount table can be read.
pub fn mounts() -> Result<Vec<MountEntry>, HostError> {
    mountinfo::mount_list().map_err(|text| super::message(text, HostError::Unsupported))
}

/// Why one mount's open+ioctl step failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Opening the mount point.
    Open(Errno),
    /// The ioctl.
    Ioctl(Errno),
}

fn open_dir(dir: &[u8]) -> Result<OwnedFd, Errno> {
    rustix::fs::open(
        OsStr::from_bytes(dir),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Runs the fsfreeze hook with `freeze` or `thaw`, as qemu-ga 7.2's `execute_fsfreeze_hook`
/// (its messages; standard streams on /dev/null; the full environment; a new process group),
/// but for at most `timeout`: a hook still running then is killed with its process group.
///
/// # Errors
///
/// qemu-ga's messages, and `fsfreeze hook has not finished in <n> seconds and was killed`.
pub fn run_hook(hook: Option<&OsStr>, arg: &str, timeout: Duration) -> Result<(), String> {
    let Some(hook) = hook else { return Ok(()) };
    if let Err(e) = rustix::fs::access(hook, rustix::fs::Access::EXEC_OK) {
        return Err(with_errno(
            &format!("can't access fsfreeze hook '{}'", hook.to_string_lossy()),
            e,
        ));
    }
    info!("executing fsfreeze hook with arg '{arg}'");
    let mut child = std::process::Command::new(hook)
        .arg(arg)
        .env_remove(crate::daemon::CHILD_ENV)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| {
            format!(
                "failed to create child process: {}",
                strerror(crate::errno::errno_of(&e))
            )
        })?;
    let status = match wait_timeout(&mut child, timeout) {
        Some(status) => status,
        None => {
            // The hook and whatever it started (its own process group).
            if let Some(pgid) = i32::try_from(child.id())
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
            }
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "fsfreeze hook has not finished in {} seconds and was killed",
                timeout.as_secs()
            ));
        }
    };
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(format!("fsfreeze hook has failed with status {code}")),
        None => {
            let _ = status.signal();
            Err("fsfreeze hook has terminated abnormally".to_owned())
        }
    }
}

/// Waits for `child` at most `timeout`: a pidfd polled with the time left (Linux ≥ 5.3), else
/// `try_wait` every 20 ms. `None` when it is still running; a wait error counts as an abnormal
/// end (`ExitStatus` of signal 9), so the caller never waits forever.
fn wait_timeout(
    child: &mut std::process::Child,
    timeout: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    let pidfd = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .and_then(|pid| {
            rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
        });
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(_) => return Some(std::process::ExitStatus::from_raw(9)),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        match &pidfd {
            Some(fd) => {
                let ts = rustix::event::Timespec {
                    tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                    tv_nsec: i64::from(left.subsec_nanos()),
                };
                let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
                let _ = rustix::event::poll(&mut fds, Some(&ts));
            }
            None => std::thread::sleep(left.min(Duration::from_millis(20))),
        }
    }
}

/// qemu-ga's `qmp_guest_fsfreeze_do_freeze_list`: `FIFREEZE` on each mount, last mounted first
/// (children before parents); with `wanted`, only mount points equal to one of its entries
/// (others are ignored silently). EOPNOTSUPP (cannot freeze) and EBUSY (already frozen, e.g.
/// through a bind mount) are not errors and not counted. Returns how many were frozen; on error,
/// what was frozen stays frozen for the caller to thaw.
///
/// # Errors
///
/// `failed to open <dir>: <strerror>`, `failed to freeze <dir>: <strerror>`.
pub fn freeze(mounts: &[MountEntry], wanted: Option<&[Vec<u8>]>) -> Result<i64, String> {
    freeze_with(mounts, wanted, &mut |dir| {
        let fd = open_dir(dir).map_err(Step::Open)?;
        fifreeze(fd.as_fd()).map_err(Step::Ioctl)
    })
}

/// [`freeze`] with the open+ioctl step given.
fn freeze_with(
    mounts: &[MountEntry],
    wanted: Option<&[Vec<u8>]>,
    freeze_one: &mut dyn FnMut(&[u8]) -> Result<(), Step>,
) -> Result<i64, String> {
    let mut frozen = 0;
    for dir in mounts.iter().rev().map(|m| &m.dir) {
        if let Some(list) = wanted
            && !list.iter().any(|m| m == dir)
        {
            continue;
        }
        match freeze_one(dir) {
            Ok(()) => frozen += 1,
            Err(Step::Ioctl(Errno::OPNOTSUPP | Errno::BUSY)) => {}
            Err(step) => {
                let (what, e) = match step {
                    Step::Open(e) => ("open", e),
                    Step::Ioctl(e) => ("freeze", e),
                };
                return Err(with_errno(
                    &format!("failed to {what} {}", String::from_utf8_lossy(dir)),
                    e,
                ));
            }
        }
    }
    Ok(frozen)
}

/// qemu-ga's `qmp_guest_fsfreeze_do_thaw`: `FITHAW` on every mount in mount order, repeated
/// until it fails (a filesystem frozen n times needs n thaws); a mount counts once if at least
/// one thaw succeeded. Mounts that cannot be opened are skipped.
///
/// # Errors
///
/// Only when the mount list cannot be read.
pub fn thaw() -> Result<i64, String> {
    let mounts = mountinfo::mount_list()?;
    Ok(thaw_with(&mounts, &mut |dir| {
        let Ok(fd) = open_dir(dir) else {
            return Err(Errno::BADF);
        };
        fithaw(fd.as_fd())
    }))
}

fn thaw_with(mounts: &[MountEntry], thaw_one: &mut dyn FnMut(&[u8]) -> Result<(), Errno>) -> i64 {
    let mut thawed = 0;
    for m in mounts {
        let mut counted = false;
        // Bounded: a filesystem cannot have been frozen more often than this.
        for _ in 0..1_000_000 {
            if thaw_one(&m.dir).is_err() {
                break;
            }
            if !counted {
                thawed += 1;
                counted = true;
            }
        }
    }
    thawed
}

/// `guest-fstrim`: `FITRIM` (start 0, every byte, minimum length `minimum`) on every mount, the
/// result list in reverse mount order (qemu-ga prepends), each with `path` and either `minimum`
/// and `trimmed` or `error`.
///
/// # Errors
///
/// Only when the mount list cannot be read (qemu-ga's message).
pub fn fstrim(minimum: Option<i64>, out: &mut qga_core::host::Out<'_>) -> Result<(), HostError> {
    info!("guest-fstrim called");
    let mounts = mountinfo::mount_list().map_err(|t| super::message(t, HostError::Unsupported))?;
    let results = trim_all(&mounts, minimum, &mut |dir, range| {
        let fd = open_dir(dir).map_err(Step::Open)?;
        crate::sysfd::fitrim(fd.as_fd(), range).map_err(Step::Ioctl)
    });
    write_trim_results(&results, out);
    Ok(())
}

/// The open+FITRIM step of one mount point.
type TrimOne<'a> = dyn FnMut(&[u8], &mut crate::sysfd::FstrimRange) -> Result<(), Step> + 'a;

/// Per mount point: `(minimum, trimmed)` or the error text.
type TrimOutcome = (Vec<u8>, Result<(i64, i64), String>);

fn trim_all(
    mounts: &[MountEntry],
    minimum: Option<i64>,
    trim_one: &mut TrimOne<'_>,
) -> Vec<TrimOutcome> {
    // qemu-ga: `r.minlen = has_minimum ? minimum : 0` into a u64 (a negative value wraps and
    // the kernel answers EINVAL).
    let minlen = minimum.unwrap_or(0) as u64;
    let mut results: Vec<TrimOutcome> = Vec::with_capacity(mounts.len());
    for m in mounts {
        let mut range = crate::sysfd::FstrimRange {
            start: 0,
            len: u64::MAX,
            minlen,
        };
        let outcome = match trim_one(&m.dir, &mut range) {
            Ok(()) => Ok((range.minlen as i64, range.len as i64)),
            Err(Step::Open(e)) => Err(with_errno("failed to open", e)),
            Err(Step::Ioctl(Errno::NOTTY | Errno::OPNOTSUPP)) => {
                Err("trim not supported".to_owned())
            }
            Err(Step::Ioctl(e)) => Err(with_errno("failed to trim", e)),
        };
        results.push((m.dir.clone(), outcome));
    }
    // Prepended one by one in qemu-ga: the last mount comes first.
    results.reverse();
    results
}

fn write_trim_results(results: &[TrimOutcome], out: &mut qga_core::host::Out<'_>) {
    use qga_core::types::{Bytes, GuestFilesystemTrimResponse, GuestFilesystemTrimResult};
    let paths: Vec<GuestFilesystemTrimResult<'_>> = results
        .iter()
        .map(|(dir, r)| GuestFilesystemTrimResult {
            minimum: r.as_ref().ok().map(|&(min, _)| min),
            path: Bytes(dir),
            trimmed: r.as_ref().ok().map(|&(_, t)| t),
            error: r.as_ref().err().map(String::as_str),
        })
        .collect();
    out.value(&GuestFilesystemTrimResponse {
        paths: paths.as_slice().into(),
    });
}

/// The `mountpoints` argument as byte strings (`None` when absent). An entry too long to be a
/// path cannot name a mount and is left out.
pub fn wanted(list: &mut StrList<'_>) -> Option<Vec<Vec<u8>>> {
    if list.is_absent() {
        return None;
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    while let Some(item) = list.next_into(&mut buf) {
        if let Some(path) = item {
            out.push(path.to_vec());
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(dir: &str) -> MountEntry {
        MountEntry {
            dir: dir.as_bytes().to_vec(),
            fstype: b"ext4".to_vec(),
            major: 253,
            minor: 0,
        }
    }

    #[test]
    fn hook_errors() {
        let t = Duration::from_secs(10);
        assert!(run_hook(None, "freeze", t).is_ok());
        assert_eq!(
            run_hook(Some(OsStr::new("/nonexistent/hook")), "thaw", t),
            Err("can't access fsfreeze hook '/nonexistent/hook': No such file or directory".into())
        );
        assert!(run_hook(Some(OsStr::new("/bin/true")), "thaw", t).is_ok());
        assert_eq!(
            run_hook(Some(OsStr::new("/bin/false")), "thaw", t),
            Err("fsfreeze hook has failed with status 1".into())
        );
    }

    fn script(name: &str, body: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("qga-hook-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hook");
        crate::host::write_script(&path, &format!("#!/bin/sh\n{body}\n"));
        path
    }

    #[test]
    fn hook_gets_its_argument_and_its_exit_status_counts() {
        let dir = std::env::temp_dir().join(format!("qga-hook-{}-log", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("calls");
        let hook = script(
            "arg",
            &format!(
                "echo \"$1\" >> '{}'; [ \"$1\" = freeze ] && exit 3; exit 0",
                log.display()
            ),
        );
        let t = Duration::from_secs(10);
        assert_eq!(
            run_hook(Some(hook.as_os_str()), "freeze", t),
            Err("fsfreeze hook has failed with status 3".into())
        );
        assert!(run_hook(Some(hook.as_os_str()), "thaw", t).is_ok());
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "freeze\nthaw\n");
        let killed = script("signal", "kill -9 $$");
        assert_eq!(
            run_hook(Some(killed.as_os_str()), "thaw", t),
            Err("fsfreeze hook has terminated abnormally".into())
        );
    }

    #[test]
    fn hung_hook_is_killed_after_the_timeout() {
        // The hook starts a grandchild that would outlive it: the whole group goes.
        let dir = std::env::temp_dir().join(format!("qga-hook-{}-hang", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("survived");
        let hook = script(
            "hang",
            &format!("(sleep 2; touch '{}') & sleep 30", marker.display()),
        );
        let start = Instant::now();
        assert_eq!(
            run_hook(Some(hook.as_os_str()), "freeze", Duration::from_millis(300)),
            Err("fsfreeze hook has not finished in 0 seconds and was killed".into())
        );
        assert!(start.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "the hook's background child survived");
    }

    #[test]
    fn freeze_order_counts_and_errors() {
        let mounts = [
            mount("/"),
            mount("/data"),
            mount("/srv/www"),
            mount("/boot"),
        ];
        let mut seen = Vec::new();
        let n = freeze_with(&mounts, None, &mut |d| {
            seen.push(String::from_utf8_lossy(d).into_owned());
            match d {
                // A bind mount of /data: already frozen through /srv/www.
                b"/data" => Err(Step::Ioctl(Errno::BUSY)),
                b"/boot" => Err(Step::Ioctl(Errno::OPNOTSUPP)),
                _ => Ok(()),
            }
        });
        assert_eq!(n, Ok(2));
        assert_eq!(seen, ["/boot", "/srv/www", "/data", "/"]);

        // freeze-list: exact matches only, unknown entries ignored, reverse mount order.
        let mut seen = Vec::new();
        let wanted = vec![b"/".to_vec(), b"/nonexistent".to_vec(), b"/data".to_vec()];
        let n = freeze_with(&mounts, Some(&wanted), &mut |d| {
            seen.push(String::from_utf8_lossy(d).into_owned());
            Ok(())
        });
        assert_eq!((n, seen), (Ok(2), vec!["/data".into(), "/".into()]));
        assert_eq!(freeze_with(&mounts, Some(&[]), &mut |_| Ok(())), Ok(0));

        // The first other error stops the walk.
        let err = freeze_with(&mounts, None, &mut |d| match d {
            b"/srv/www" => Err(Step::Ioctl(Errno::IO)),
            _ => Ok(()),
        });
        assert_eq!(
            err,
            Err("failed to freeze /srv/www: Input/output error".into())
        );
        let err = freeze_with(&mounts, None, &mut |_| Err(Step::Open(Errno::ACCESS)));
        assert_eq!(err, Err("failed to open /boot: Permission denied".into()));
    }

    #[test]
    fn thaw_repeats_and_counts_each_mount_once() {
        let mounts = [mount("/"), mount("/data"), mount("/srv/www")];
        // "/" frozen twice, /data once, /srv/www (bind mount of /data) not at all.
        let mut left = std::collections::HashMap::from([("/", 2), ("/data", 1)]);
        let mut calls = 0;
        let n = thaw_with(&mounts, &mut |d| {
            calls += 1;
            let k = std::str::from_utf8(d).unwrap();
            match left.get_mut(k) {
                Some(c) if *c > 0 => {
                    *c -= 1;
                    Ok(())
                }
                _ => Err(Errno::INVAL),
            }
        });
        assert_eq!(n, 2);
        assert_eq!(calls, 3 + 2 + 1);
    }

    #[test]
    fn trim_results_reverse_order_and_errors() {
        let mounts = [mount("/"), mount("/boot"), mount("/ro"), mount("/gone")];
        let r = trim_all(&mounts, Some(4096), &mut |d, range| {
            assert_eq!(range.minlen, 4096);
            match d {
                b"/" => {
                    range.len = 1 << 20;
                    Ok(())
                }
                b"/boot" => Err(Step::Ioctl(Errno::OPNOTSUPP)),
                b"/ro" => Err(Step::Ioctl(Errno::ROFS)),
                _ => Err(Step::Open(Errno::NOENT)),
            }
        });
        let shown: Vec<_> = r
            .iter()
            .map(|(d, o)| (String::from_utf8_lossy(d).into_owned(), o.clone()))
            .collect();
        assert_eq!(
            shown,
            vec![
                (
                    "/gone".to_owned(),
                    Err("failed to open: No such file or directory".to_owned())
                ),
                (
                    "/ro".to_owned(),
                    Err("failed to trim: Read-only file system".to_owned())
                ),
                ("/boot".to_owned(), Err("trim not supported".to_owned())),
                ("/".to_owned(), Ok((4096, 1 << 20))),
            ]
        );
        // A negative minimum wraps as in qemu-ga.
        let _ = trim_all(&mounts[..1], Some(-1), &mut |_, range| {
            assert_eq!(range.minlen, u64::MAX);
            Err(Step::Ioctl(Errno::INVAL))
        });
    }
}
