//! Commands that change the guest's CPUs and passwords (qemu-ga 7.2's `commands-posix.c`, with
//! its helper programs and messages). Shutdown and suspend are in [`super::power`], the clock in
//! [`super::clock`].

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use qga_core::HostError;
use qga_core::host::StrArg;

use super::{message, os_message};

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
