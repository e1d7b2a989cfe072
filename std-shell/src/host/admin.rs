//! Commands that change the guest: shutdown, suspend, clock, CPUs, passwords (qemu-ga 7.2's
//! `commands-posix.c`, with its helper programs and messages).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use qga_core::HostError;
use qga_core::host::{ShutdownMode, StrArg, SuspendMode};

use super::{message, os_message};
use crate::logging::info;

/// Runs a helper the way qemu-ga does (own process group, standard streams on /dev/null
/// unless `input` is given) and returns its exit status.
fn run(
    path: &str,
    args: &[&str],
    input: Option<&[u8]>,
) -> Result<std::process::ExitStatus, HostError> {
    let mut cmd = Command::new(path);
    cmd.args(args)
        .env_remove(crate::daemon::CHILD_ENV)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| os_message("failed to create child process", crate::errno::errno_of(&e)))?;
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(data).map_err(|e| {
            os_message(
                "cannot write new account password",
                crate::errno::errno_of(&e),
            )
        })?;
    }
    child.wait().map_err(|e| {
        os_message(
            "failed to wait for child process",
            crate::errno::errno_of(&e),
        )
    })
}

/// Maps a helper's exit to qemu-ga's errors: abnormal termination, or `failed` for a non-zero
/// exit code.
fn check(status: std::process::ExitStatus, failed: &'static str) -> Result<(), HostError> {
    match status.code() {
        Some(0) => Ok(()),
        Some(_) => Err(HostError::Message(failed)),
        None => Err(HostError::Message(
            "child process has terminated abnormally",
        )),
    }
}

/// `guest-shutdown`: `/sbin/shutdown -h -P|-H|-r +0 "hypervisor initiated shutdown"`.
pub fn shutdown(mode: ShutdownMode) -> Result<(), HostError> {
    let (name, flag) = match mode {
        ShutdownMode::Powerdown => ("powerdown", "-P"),
        ShutdownMode::Halt => ("halt", "-H"),
        ShutdownMode::Reboot => ("reboot", "-r"),
    };
    info!("guest-shutdown called, mode: {name}");
    let status = run(
        "/sbin/shutdown",
        &["-h", flag, "+0", "hypervisor initiated shutdown"],
        None,
    )?;
    check(status, "child process has failed to shutdown")
}

/// `guest-suspend-*`: systemd first, then the kernel's `/sys/power/state`.
pub fn suspend(mode: SuspendMode) -> Result<(), HostError> {
    let (unit, verb, state) = match mode {
        SuspendMode::Disk => ("systemd-hibernate", "hibernate", "disk"),
        SuspendMode::Ram => ("systemd-suspend", "suspend", "mem"),
        SuspendMode::Hybrid => ("systemd-hybrid-sleep", "hybrid-sleep", "disk"),
    };
    let mut supported = false;
    let mut last_err = None;
    // `systemctl status` answers with LSB codes: 1 to 3 mean the unit exists.
    let systemctl = ["/usr/bin/systemctl", "/bin/systemctl"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    if let Some(systemctl) = systemctl
        && run(systemctl, &["status", unit], None)
            .ok()
            .and_then(|s| s.code())
            .is_some_and(|c| (1..4).contains(&c))
    {
        supported = true;
        match run(systemctl, &[verb], None).map(|s| s.code()) {
            Ok(Some(0)) => return Ok(()),
            Ok(code) => {
                last_err = Some(message(
                    format!(
                        "the helper program 'systemctl {verb}' returned an unexpected exit status code ({})",
                        code.unwrap_or(-1)
                    ),
                    HostError::Message("the helper program 'systemctl' failed"),
                ));
            }
            Err(e) => last_err = Some(e),
        }
    }
    let states = std::fs::read_to_string("/sys/power/state").unwrap_or_default();
    let disk_modes = std::fs::read_to_string("/sys/power/disk").unwrap_or_default();
    let kernel_ok = states.split_ascii_whitespace().any(|s| s == state)
        && (mode != SuspendMode::Hybrid
            || disk_modes
                .split_ascii_whitespace()
                .any(|m| m.trim_matches(['[', ']']) == "suspend"));
    if kernel_ok {
        if mode == SuspendMode::Hybrid {
            let _ = std::fs::write("/sys/power/disk", b"suspend");
        }
        return match std::fs::write("/sys/power/state", state.as_bytes()) {
            Ok(()) => Ok(()),
            Err(_) => Err(HostError::Message("child process has failed to suspend")),
        };
    }
    if supported {
        Err(last_err.unwrap_or(HostError::Message("child process has failed to suspend")))
    } else {
        Err(HostError::Message(
            "the requested suspend mode is not supported by the guest",
        ))
    }
}

/// `guest-set-time`: set the clock (if `time` is given) and then the RTC from it with
/// `hwclock -w`, or the clock from the RTC with `hwclock -s`.
pub fn set_time(time: Option<i64>) -> Result<(), HostError> {
    const HWCLOCK: &str = "/sbin/hwclock";
    if rustix::fs::access(HWCLOCK, rustix::fs::Access::EXEC_OK).is_err() {
        return Err(HostError::Unsupported);
    }
    if let Some(ns) = time {
        let secs = ns / 1_000_000_000;
        let nanos = (ns % 1_000_000_000) / 1000 * 1000;
        // g_date_set_time_t: the local date must lie in [1970, 2070).
        let local = secs.saturating_add(i64::from(crate::tz::local_offset(secs).offset));
        let (year, _, _) = crate::tz::civil_from_days(local.div_euclid(86_400));
        if !(1970..2070).contains(&year) {
            return Err(os_message("Invalid time", 0));
        }
        let ts = rustix::time::Timespec {
            tv_sec: secs,
            tv_nsec: nanos,
        };
        rustix::time::clock_settime(rustix::time::ClockId::Realtime, ts)
            .map_err(|e| os_message("Failed to set time to guest", e.raw_os_error()))?;
    }
    let status = run(HWCLOCK, &[if time.is_some() { "-w" } else { "-s" }], None)?;
    check(
        status,
        "hwclock failed to set hardware clock to system time",
    )
}

/// `guest-set-vcpus`: writes each CPU's `online` file; stops at the first failure.
pub fn set_vcpus(vcpus: &mut dyn Iterator<Item = (i64, bool)>) -> Result<i64, HostError> {
    let mut processed = 0;
    for (id, online) in vcpus {
        let dir = format!("/sys/devices/system/cpu/cpu{id}/");
        let result = (|| -> Result<(), HostError> {
            if let Err(e) = std::fs::metadata(&dir) {
                return Err(os_message(
                    &format!("open(\"{dir}\")"),
                    crate::errno::errno_of(&e),
                ));
            }
            let file = format!("{dir}/online");
            match std::fs::read(&file) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if online {
                        Ok(()) // cannot be offlined, and is online: nothing to do
                    } else {
                        Err(message(
                            format!("logical processor #{id} can't be offlined"),
                            HostError::Message("logical processor can't be offlined"),
                        ))
                    }
                }
                Err(e) => Err(os_message(
                    &format!("open(\"{file}\")"),
                    crate::errno::errno_of(&e),
                )),
                Ok(cur) => {
                    let is_online = cur.first().is_some_and(|&c| c != b'0');
                    if is_online == online {
                        return Ok(());
                    }
                    std::fs::write(&file, if online { b"1" } else { b"0" }).map_err(|e| {
                        os_message(&format!("pwrite(\"{file}\")"), crate::errno::errno_of(&e))
                    })
                }
            }
        })();
        match result {
            Ok(()) => processed += 1,
            Err(e) if processed == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(processed)
}

/// `guest-set-user-password`: `chpasswd [-e]` fed with `user:password`.
pub fn set_user_password(
    username: &[u8],
    password_b64: StrArg<'_>,
    crypted: bool,
) -> Result<(), HostError> {
    let mut text = vec![0u8; password_b64.max_len()];
    let text = password_b64
        .decode_into(&mut text)
        .ok_or(HostError::Message(
            "Base64 data contains invalid characters",
        ))?;
    let mut password = super::exec::decode_base64(text)?;
    // The C string ends at the first NUL.
    if let Some(nul) = password.iter().position(|&b| b == 0) {
        password.truncate(nul);
    }
    if password.contains(&b'\n') {
        return Err(HostError::Message("forbidden characters in raw password"));
    }
    if username.contains(&b'\n') || username.contains(&b':') {
        return Err(HostError::Message("forbidden characters in username"));
    }
    let chpasswd = [
        "/usr/sbin/chpasswd",
        "/sbin/chpasswd",
        "/usr/bin/chpasswd",
        "/bin/chpasswd",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .ok_or(HostError::Message("cannot find 'passwd' program in PATH"))?;
    let mut input = username.to_vec();
    input.push(b':');
    input.extend_from_slice(&password);
    input.push(b'\n');
    let args: &[&str] = if crypted { &["-e"] } else { &[] };
    let status = run(chpasswd, args, Some(&input))?;
    check(status, "child process has failed to set user password")
}
