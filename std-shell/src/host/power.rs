//! `guest-shutdown` and `guest-suspend-*`.
//!
//! # guest-shutdown, without depending on external programs
//!
//! qemu-ga 7.2 runs `/sbin/shutdown -h -P|-H|-r +0 "hypervisor initiated shutdown"`; the newest
//! runs `/sbin/poweroff`, `/sbin/halt` or `/sbin/reboot` when executable and falls back to that
//! `/sbin/shutdown` line. Guests without those (busybox systems, initramfs agents, containers,
//! Talos-like images) cannot be shut down that way. qga:
//!
//! 1. calls `sync()`;
//! 2. when it is itself PID 1, calls `reboot(2)` right away (nobody else can);
//! 3. runs `/sbin/poweroff`, `/sbin/halt` or `/sbin/reboot` (no arguments), else
//!    `/sbin/shutdown -h -P|-H|-r +0 "hypervisor initiated shutdown"`, when executable, as the
//!    newest qemu-ga does (and fails as qemu-ga 7.2 reports it when that program fails);
//! 4. otherwise asks PID 1 the way its init understands:
//!    * systemd (`/run/systemd/system` exists and PID 1 is `systemd`): `SIGRTMIN+4` power-off,
//!      `SIGRTMIN+5` reboot, `SIGRTMIN+3` halt (glibc's `SIGRTMIN`, systemd(1));
//!    * busybox init (PID 1's executable is `busybox`, run as `init` or `linuxrc`) and OpenWrt's
//!      procd: `SIGUSR2` power-off, `SIGTERM` reboot, `SIGUSR1` halt (procd powers off for the
//!      latter);
//!    * sysvinit (PID 1 is `init` with a `/run/initctl` or `/dev/initctl` FIFO): the
//!      `INIT_HALT=POWEROFF|HALT` environment request then runlevel 0, or runlevel 6, written to
//!      that FIFO (what `shutdown` and `telinit` do);
//!    * any other PID 1 (a shell script, tini, an unknown init): `reboot(2)` right away (the
//!      disks were synced in step 1);
//! 5. after a program or PID 1 accepted the request, a fallback thread waits
//!    [`FALLBACK_GRACE`]: if the agent is still running then (an orderly shutdown stops it long
//!    before), the request was not acted on, and qga calls `sync()` and `reboot(2)` itself. The
//!    fallback is skipped while filesystems are frozen.
//!
//! Success has no reply (qemu-ga's `success-response: false`); a failure is an error reply.
//!
//! # guest-suspend-*
//!
//! As qemu-ga: systemd first (`systemctl status` of the sleep unit answering 1 to 3, then
//! `systemctl suspend|hibernate|hybrid-sleep`), but only when systemd runs the system; then
//! pm-utils (`pm-is-supported`, `pm-suspend|pm-hibernate|pm-suspend-hybrid`) when installed;
//! then the kernel: `mem` or `disk` written to `/sys/power/state` when listed there. Beyond
//! qemu-ga, hybrid sleep also works through the kernel when `/sys/power/disk` offers `suspend`
//! (suspend-to-RAM after writing the hibernation image); the previous `/sys/power/disk` mode is
//! restored afterwards.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use qga_core::host::{ShutdownMode, SuspendMode};
use rustix::io::Errno;
use rustix::process::{Pid, Signal};
use rustix::system::RebootCommand;

use crate::errno::strerror;
use crate::logging::{info, warning};

/// How long after a shutdown request that PID 1 or a program accepted the agent may still be
/// running before it concludes nothing happens and reboots the kernel itself. Every init that
/// acts on the request terminates the agent long before (systemd and busybox init send SIGTERM
/// to all processes within seconds); a minute leaves room for slow service shutdown.
pub const FALLBACK_GRACE: Duration = Duration::from_secs(60);

fn with_errno(text: &str, e: Errno) -> String {
    format!("{text}: {}", strerror(e.raw_os_error()))
}

/// What PID 1 is, as far as shutting down goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Init {
    /// systemd.
    Systemd,
    /// busybox init, or procd (same signals).
    Busybox,
    /// sysvinit, with its control FIFO.
    Sysvinit(PathBuf),
    /// Anything else.
    Unknown,
}

/// Facts about PID 1 (from `/proc/1` and `/run`), for [`classify_init`].
#[derive(Clone, Debug, Default)]
pub struct Pid1 {
    /// `/proc/1/comm`, without the newline.
    pub comm: Vec<u8>,
    /// The file name of `/proc/1/exe`'s target (empty when unreadable).
    pub exe_name: Vec<u8>,
    /// `/proc/1/cmdline`, split at NUL.
    pub argv: Vec<Vec<u8>>,
    /// `/run/systemd/system` is a directory (`sd_booted()`).
    pub systemd_booted: bool,
    /// The sysvinit control FIFO, if one exists.
    pub initctl: Option<PathBuf>,
}

fn base_name(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(path)
}

/// Which init PID 1 is (see the module documentation).
pub fn classify_init(p: &Pid1) -> Init {
    if p.systemd_booted && p.comm == b"systemd" {
        return Init::Systemd;
    }
    if p.comm == b"procd" {
        return Init::Busybox;
    }
    let argv0 = p.argv.first().map_or(&b""[..], |a| base_name(a));
    let busybox_applet = if argv0 == b"busybox" {
        p.argv.get(1).map_or(&b""[..], |a| &a[..])
    } else {
        argv0
    };
    let is_busybox = p.exe_name == b"busybox" || argv0 == b"busybox";
    if is_busybox {
        return if matches!(busybox_applet, b"init" | b"linuxrc") {
            Init::Busybox
        } else {
            Init::Unknown
        };
    }
    if p.comm == b"init"
        && let Some(fifo) = &p.initctl
    {
        return Init::Sysvinit(fifo.clone());
    }
    Init::Unknown
}

fn read_pid1() -> Pid1 {
    let comm = std::fs::read("/proc/1/comm").unwrap_or_default();
    let comm = comm.strip_suffix(b"\n").unwrap_or(&comm).to_vec();
    let exe_name = std::fs::read_link("/proc/1/exe")
        .ok()
        .map(|p| {
            // A replaced binary shows as "/sbin/init (deleted)".
            let name = base_name(p.as_os_str().as_bytes()).to_vec();
            name.strip_suffix(b" (deleted)")
                .map_or(name.clone(), <[u8]>::to_vec)
        })
        .unwrap_or_default();
    let argv = std::fs::read("/proc/1/cmdline")
        .unwrap_or_default()
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let systemd_booted = Path::new("/run/systemd/system").is_dir();
    let initctl = ["/run/initctl", "/dev/initctl"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| {
                use std::os::unix::fs::FileTypeExt;
                m.file_type().is_fifo()
            })
        });
    Pid1 {
        comm,
        exe_name,
        argv,
        systemd_booted,
        initctl,
    }
}

fn mode_name(mode: ShutdownMode) -> &'static str {
    match mode {
        ShutdownMode::Powerdown => "powerdown",
        ShutdownMode::Halt => "halt",
        ShutdownMode::Reboot => "reboot",
    }
}

fn reboot_command(mode: ShutdownMode) -> RebootCommand {
    match mode {
        ShutdownMode::Powerdown => RebootCommand::PowerOff,
        ShutdownMode::Halt => RebootCommand::Halt,
        ShutdownMode::Reboot => RebootCommand::Restart,
    }
}

/// `guest-shutdown` (see the module documentation).
///
/// # Errors
///
/// qemu-ga 7.2's messages when the shutdown program fails; `failed to <mode>: <strerror>` when
/// `reboot(2)` fails (no CAP_SYS_BOOT).
pub fn shutdown(mode: ShutdownMode) -> Result<(), String> {
    info!("guest-shutdown called, mode: {}", mode_name(mode));
    rustix::fs::sync();
    if rustix::process::getpid() == Pid::INIT {
        return direct(mode);
    }
    if let Some((program, args)) = shutdown_program(mode, &|p| {
        rustix::fs::access(p, rustix::fs::Access::EXEC_OK).is_ok()
    }) {
        run_shutdown_program(program, &args)?;
        arm_fallback(mode);
        return Ok(());
    }
    let init = classify_init(&read_pid1());
    let asked = match &init {
        Init::Systemd => {
            let offset = match mode {
                ShutdownMode::Halt => 3,
                ShutdownMode::Powerdown => 4,
                ShutdownMode::Reboot => 5,
            };
            match crate::sysfd::systemd_signal(offset) {
                Some(sig) => rustix::process::kill_process(Pid::INIT, sig),
                None => Err(Errno::INVAL),
            }
        }
        Init::Busybox => {
            let sig = match mode {
                ShutdownMode::Powerdown => Signal::USR2,
                ShutdownMode::Halt => Signal::USR1,
                ShutdownMode::Reboot => Signal::TERM,
            };
            rustix::process::kill_process(Pid::INIT, sig)
        }
        Init::Sysvinit(fifo) => tell_sysvinit(fifo, mode),
        Init::Unknown => return direct(mode),
    };
    match asked {
        Ok(()) => {
            info!("asked init ({init:?}) to {}", mode_name(mode));
            arm_fallback(mode);
            Ok(())
        }
        Err(e) => {
            warning!(
                "cannot ask init ({init:?}) to {}: {}; doing it directly",
                mode_name(mode),
                strerror(e.raw_os_error())
            );
            direct(mode)
        }
    }
}

/// The program the newest qemu-ga runs for `mode`, if one is executable (per `executable`).
fn shutdown_program(
    mode: ShutdownMode,
    executable: &dyn Fn(&str) -> bool,
) -> Option<(&'static str, Vec<&'static str>)> {
    let (own, flag) = match mode {
        ShutdownMode::Powerdown => ("/sbin/poweroff", "-P"),
        ShutdownMode::Halt => ("/sbin/halt", "-H"),
        ShutdownMode::Reboot => ("/sbin/reboot", "-r"),
    };
    if executable(own) {
        return Some((own, Vec::new()));
    }
    const SHUTDOWN: &str = "/sbin/shutdown";
    executable(SHUTDOWN).then(|| {
        (
            SHUTDOWN,
            vec!["-h", flag, "+0", "hypervisor initiated shutdown"],
        )
    })
}

/// Runs the shutdown program as qemu-ga 7.2 does (new session, standard streams on /dev/null,
/// waited for) with its messages.
fn run_shutdown_program(program: &str, args: &[&str]) -> Result<(), String> {
    let spawned = Command::new(program)
        .args(args)
        .env_remove(crate::daemon::CHILD_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    let status = match spawned {
        Ok(mut child) => child.wait().map_err(|e| {
            format!(
                "failed to wait for child process: {}",
                strerror(crate::errno::errno_of(&e))
            )
        })?,
        // qemu-ga's child exits with status 1 when exec fails.
        Err(e)
            if matches!(
                crate::errno::errno_of(&e),
                2 | 8 | 13 // ENOENT, ENOEXEC, EACCES
            ) =>
        {
            return Err("child process has failed to shutdown".to_owned());
        }
        Err(e) => {
            return Err(format!(
                "failed to create child process: {}",
                strerror(crate::errno::errno_of(&e))
            ));
        }
    };
    match status.code() {
        Some(0) => Ok(()),
        Some(_) => Err("child process has failed to shutdown".to_owned()),
        None => Err("child process has terminated abnormally".to_owned()),
    }
}

/// sysvinit's `struct init_request` (384 bytes): magic, command, runlevel, sleep time, data.
fn initctl_request(cmd: i32, runlevel: u8, data: &[u8]) -> [u8; 384] {
    const INIT_MAGIC: i32 = 0x0309_1969;
    /// Seconds between SIGTERM and SIGKILL (sysvinit's default).
    const SLEEP_TIME: i32 = 3;
    let mut req = [0u8; 384];
    let header = [INIT_MAGIC, cmd, i32::from(runlevel), SLEEP_TIME];
    for (slot, v) in req.chunks_exact_mut(4).zip(header) {
        slot.copy_from_slice(&v.to_ne_bytes());
    }
    if let Some(dst) = req.get_mut(16..16 + data.len().min(367)) {
        dst.copy_from_slice(data.get(..dst.len()).unwrap_or_default());
    }
    req
}

/// What `shutdown -h -P` / `-H` / `-r` tells sysvinit through its FIFO.
fn sysvinit_requests(mode: ShutdownMode) -> Vec<[u8; 384]> {
    const INIT_CMD_RUNLVL: i32 = 1;
    const INIT_CMD_SETENV: i32 = 6;
    match mode {
        ShutdownMode::Reboot => vec![initctl_request(INIT_CMD_RUNLVL, b'6', b"")],
        ShutdownMode::Powerdown | ShutdownMode::Halt => {
            let env: &[u8] = if mode == ShutdownMode::Halt {
                b"INIT_HALT=HALT"
            } else {
                b"INIT_HALT=POWEROFF"
            };
            vec![
                initctl_request(INIT_CMD_SETENV, 0, env),
                initctl_request(INIT_CMD_RUNLVL, b'0', b""),
            ]
        }
    }
}

fn tell_sysvinit(fifo: &Path, mode: ShutdownMode) -> Result<(), Errno> {
    // Non-blocking: ENXIO when nobody reads the FIFO (then qga acts directly).
    let fd = rustix::fs::open(
        fifo,
        rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let mut file = std::fs::File::from(fd);
    for req in sysvinit_requests(mode) {
        file.write_all(&req)
            .map_err(|e| Errno::from_raw_os_error(crate::errno::errno_of(&e)))?;
    }
    Ok(())
}

/// `reboot(2)` after `sync()`. Returns only on failure.
fn direct(mode: ShutdownMode) -> Result<(), String> {
    info!("{} through reboot(2)", mode_name(mode));
    rustix::fs::sync();
    match rustix::system::reboot(reboot_command(mode)) {
        Ok(()) => Ok(()),
        Err(e) => Err(with_errno(&format!("failed to {}", mode_name(mode)), e)),
    }
}

/// Starts the fallback thread (see the module documentation).
fn arm_fallback(mode: ShutdownMode) {
    let spawned = std::thread::Builder::new()
        .name("shutdown-fallback".into())
        .spawn(move || {
            std::thread::sleep(FALLBACK_GRACE);
            if super::freeze::frozen_now() {
                return;
            }
            warning!(
                "still running {} s after guest-shutdown: nobody acted on it",
                FALLBACK_GRACE.as_secs()
            );
            if let Err(e) = direct(mode) {
                warning!("{e}");
            }
        });
    if let Err(e) = spawned {
        warning!("cannot start the shutdown fallback: {e}");
    }
}

/// The suspend verbs of each mode.
struct SuspendWords {
    unit: &'static str,
    systemctl: &'static str,
    pm_is_supported: &'static str,
    pm_program: &'static str,
}

fn words(mode: SuspendMode) -> SuspendWords {
    match mode {
        SuspendMode::Disk => SuspendWords {
            unit: "systemd-hibernate",
            systemctl: "hibernate",
            pm_is_supported: "--hibernate",
            pm_program: "pm-hibernate",
        },
        SuspendMode::Ram => SuspendWords {
            unit: "systemd-suspend",
            systemctl: "suspend",
            pm_is_supported: "--suspend",
            pm_program: "pm-suspend",
        },
        SuspendMode::Hybrid => SuspendWords {
            unit: "systemd-hybrid-sleep",
            systemctl: "hybrid-sleep",
            pm_is_supported: "--suspend-hybrid",
            pm_program: "pm-suspend-hybrid",
        },
    }
}

/// A program found through `PATH` (GLib's `G_SPAWN_SEARCH_PATH`).
fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin:/usr/sbin:/sbin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| rustix::fs::access(p, rustix::fs::Access::EXEC_OK).is_ok() && p.is_file())
}

/// qemu-ga's `run_process_child`: the exit code, stdout and stderr on /dev/null.
fn run_helper(program: &Path, args: &[&str]) -> Result<i32, String> {
    let status = Command::new(program)
        .args(args)
        .env_remove(crate::daemon::CHILD_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| {
            format!(
                "failed to create child process, error '{}'",
                strerror(crate::errno::errno_of(&e))
            )
        })?;
    // WEXITSTATUS of a killed child reads as 0 in qemu-ga; -1 keeps it from looking like success.
    Ok(status.code().unwrap_or(-1))
}

/// The kernel's sleep states (`/sys/power/state`) and hibernation modes (`/sys/power/disk`).
#[derive(Debug, Default)]
struct KernelPower {
    states: String,
    disk_modes: String,
}

impl KernelPower {
    fn read() -> KernelPower {
        KernelPower {
            states: std::fs::read_to_string(SYS_POWER_STATE).unwrap_or_default(),
            disk_modes: std::fs::read_to_string(SYS_POWER_DISK).unwrap_or_default(),
        }
    }

    fn has_state(&self, word: &str) -> bool {
        self.states.split_ascii_whitespace().any(|s| s == word)
    }

    /// `/sys/power/disk` lists its modes with the current one in brackets.
    fn disk_mode(&self) -> Option<&str> {
        self.disk_modes
            .split_ascii_whitespace()
            .find_map(|m| m.strip_prefix('[').and_then(|m| m.strip_suffix(']')))
    }

    fn offers_disk_mode(&self, mode: &str) -> bool {
        self.disk_modes
            .split_ascii_whitespace()
            .any(|m| m.trim_matches(['[', ']']) == mode)
    }

    /// What the kernel can do for `mode` on its own.
    fn supports(&self, mode: SuspendMode) -> bool {
        match mode {
            SuspendMode::Ram => self.has_state("mem"),
            SuspendMode::Disk => self.has_state("disk"),
            SuspendMode::Hybrid => self.has_state("disk") && self.offers_disk_mode("suspend"),
        }
    }
}

const SYS_POWER_STATE: &str = "/sys/power/state";
const SYS_POWER_DISK: &str = "/sys/power/disk";

fn write_sysfs(path: &str, word: &str) -> Result<(), String> {
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(word.as_bytes()));
    written.map_err(|e| {
        format!(
            "suspend: cannot write to '{path}': {}",
            strerror(crate::errno::errno_of(&e))
        )
    })
}

/// `guest-suspend-*` (see the module documentation). Returns once the guest has resumed.
///
/// # Errors
///
/// qemu-ga's messages.
pub fn suspend(mode: SuspendMode) -> Result<(), String> {
    let w = words(mode);
    let mut supported = false;
    let mut last_err: Option<String> = None;

    if Path::new("/run/systemd/system").is_dir()
        && let Some(systemctl) = find_in_path("systemctl")
    {
        let status = run_helper(&systemctl, &["status", w.unit]);
        if let Ok(1..=3) = status {
            supported = true;
            match run_helper(&systemctl, &[w.systemctl]) {
                Ok(0) => return Ok(()),
                Ok(code) => {
                    last_err = Some(format!(
                        "the helper program 'systemctl {}' returned an unexpected exit status \
                         code ({code})",
                        w.systemctl
                    ));
                }
                Err(e) => last_err = Some(e),
            }
        }
    }

    if let Some(pm) = find_in_path("pm-is-supported") {
        match run_helper(&pm, &[w.pm_is_supported]) {
            Ok(0) => {
                supported = true;
                match find_in_path(w.pm_program) {
                    None => {
                        last_err = Some(format!(
                            "the helper program '{}' was not found",
                            w.pm_program
                        ));
                    }
                    Some(prog) => match run_helper(&prog, &[]) {
                        Ok(0) => return Ok(()),
                        Ok(code) => {
                            last_err = Some(format!(
                                "the helper program '{}' returned an unexpected exit status \
                                 code ({code})",
                                w.pm_program
                            ));
                        }
                        Err(e) => last_err = Some(e),
                    },
                }
            }
            Ok(_) => {}
            Err(e) => last_err = Some(e),
        }
    }

    let kernel = KernelPower::read();
    if kernel.supports(mode) {
        return match mode {
            SuspendMode::Ram => write_sysfs(SYS_POWER_STATE, "mem"),
            SuspendMode::Disk => write_sysfs(SYS_POWER_STATE, "disk"),
            SuspendMode::Hybrid => {
                let previous = kernel.disk_mode().map(str::to_owned);
                write_sysfs(SYS_POWER_DISK, "suspend")?;
                let r = write_sysfs(SYS_POWER_STATE, "disk");
                if let Some(prev) = previous.filter(|p| p != "suspend") {
                    let _ = write_sysfs(SYS_POWER_DISK, &prev);
                }
                r
            }
        };
    }
    match (supported, last_err) {
        (true, Some(e)) => Err(e),
        _ => Err("the requested suspend mode is not supported by the guest".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid1(comm: &str, exe: &str, argv: &[&str]) -> Pid1 {
        Pid1 {
            comm: comm.as_bytes().to_vec(),
            exe_name: exe.as_bytes().to_vec(),
            argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
            systemd_booted: false,
            initctl: None,
        }
    }

    #[test]
    fn init_detection() {
        let mut p = pid1("systemd", "systemd", &["/sbin/init", "splash"]);
        assert_eq!(classify_init(&p), Init::Unknown);
        p.systemd_booted = true;
        assert_eq!(classify_init(&p), Init::Systemd);
        // busybox init through the /sbin/init link, or run as "busybox init".
        assert_eq!(
            classify_init(&pid1("init", "busybox", &["/sbin/init"])),
            Init::Busybox
        );
        assert_eq!(
            classify_init(&pid1("busybox", "busybox", &["/bin/busybox", "init"])),
            Init::Busybox
        );
        assert_eq!(
            classify_init(&pid1("linuxrc", "busybox", &["/linuxrc"])),
            Init::Busybox
        );
        // A busybox shell running an /init script is not an init that takes requests.
        assert_eq!(
            classify_init(&pid1("init", "busybox", &["/bin/busybox", "sh", "/init"])),
            Init::Unknown
        );
        assert_eq!(
            classify_init(&pid1("procd", "procd", &["/sbin/procd"])),
            Init::Busybox
        );
        let mut sysv = pid1("init", "init", &["init [2]"]);
        assert_eq!(classify_init(&sysv), Init::Unknown);
        sysv.initctl = Some("/run/initctl".into());
        assert_eq!(
            classify_init(&sysv),
            Init::Sysvinit(PathBuf::from("/run/initctl"))
        );
        assert_eq!(
            classify_init(&pid1("tini", "tini", &["/tini", "--"])),
            Init::Unknown
        );
        assert_eq!(classify_init(&Pid1::default()), Init::Unknown);
    }

    #[test]
    fn programs_in_newest_qemu_ga_order() {
        let only = |present: &'static [&'static str]| move |p: &str| present.contains(&p);
        assert_eq!(
            shutdown_program(
                ShutdownMode::Powerdown,
                &only(&["/sbin/poweroff", "/sbin/shutdown"])
            ),
            Some(("/sbin/poweroff", vec![]))
        );
        assert_eq!(
            shutdown_program(
                ShutdownMode::Halt,
                &only(&["/sbin/poweroff", "/sbin/shutdown"])
            ),
            Some((
                "/sbin/shutdown",
                vec!["-h", "-H", "+0", "hypervisor initiated shutdown"]
            ))
        );
        assert_eq!(
            shutdown_program(ShutdownMode::Reboot, &only(&["/sbin/shutdown"])),
            Some((
                "/sbin/shutdown",
                vec!["-h", "-r", "+0", "hypervisor initiated shutdown"]
            ))
        );
        assert_eq!(shutdown_program(ShutdownMode::Reboot, &only(&[])), None);
    }

    #[test]
    fn shutdown_program_errors_as_qemu_ga() {
        assert_eq!(run_shutdown_program("/bin/true", &[]), Ok(()));
        assert_eq!(
            run_shutdown_program("/bin/false", &[]),
            Err("child process has failed to shutdown".into())
        );
        assert_eq!(
            run_shutdown_program("/nonexistent/poweroff", &[]),
            Err("child process has failed to shutdown".into())
        );
        assert_eq!(
            run_shutdown_program("/bin/sh", &["-c", "kill -9 $$"]),
            Err("child process has terminated abnormally".into())
        );
    }

    #[test]
    fn sysvinit_request_layout() {
        let reqs = sysvinit_requests(ShutdownMode::Powerdown);
        assert_eq!(reqs.len(), 2);
        let word =
            |r: &[u8; 384], i: usize| i32::from_ne_bytes(r[i * 4..i * 4 + 4].try_into().unwrap());
        assert_eq!(word(&reqs[0], 0), 0x0309_1969);
        assert_eq!(word(&reqs[0], 1), 6);
        assert_eq!(&reqs[0][16..34], b"INIT_HALT=POWEROFF");
        assert_eq!(reqs[0][34], 0);
        assert_eq!((word(&reqs[1], 1), word(&reqs[1], 2)), (1, i32::from(b'0')));
        let reboot = sysvinit_requests(ShutdownMode::Reboot);
        assert_eq!(reboot.len(), 1);
        assert_eq!(word(&reboot[0], 2), i32::from(b'6'));
        let halt = sysvinit_requests(ShutdownMode::Halt);
        assert_eq!(&halt[0][16..30], b"INIT_HALT=HALT");
    }

    #[test]
    fn kernel_power_support() {
        let k = KernelPower {
            states: "freeze mem disk\n".into(),
            disk_modes: "[platform] shutdown reboot suspend test_resume\n".into(),
        };
        assert!(k.supports(SuspendMode::Ram));
        assert!(k.supports(SuspendMode::Disk));
        assert!(k.supports(SuspendMode::Hybrid));
        assert_eq!(k.disk_mode(), Some("platform"));
        let k = KernelPower {
            states: "freeze\n".into(),
            disk_modes: String::new(),
        };
        assert!(!k.supports(SuspendMode::Ram));
        assert!(!k.supports(SuspendMode::Disk));
        assert!(!k.supports(SuspendMode::Hybrid));
        let k = KernelPower {
            states: "freeze mem disk\n".into(),
            disk_modes: "[shutdown] reboot\n".into(),
        };
        assert!(!k.supports(SuspendMode::Hybrid));
    }
}
