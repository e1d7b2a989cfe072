//! Becoming a daemon (`-d`) and the pid file.
//!
//! qemu-ga forks. Forking is not available without `unsafe` (and raw `fork()` under a Rust
//! runtime is unsound once threads or locks exist), so the parent instead re-executes itself
//! with the same arguments: the child finds [`CHILD_ENV`] in its environment, parses the same
//! command line and config, takes over the channel the parent opened (its descriptor number is
//! in the variable; the descriptor is inherited across `exec`), and then does what qemu-ga's
//! forked child does: write and lock the pid file, `umask(077)`, `setsid()`, `chdir("/")`, and
//! point stdin, stdout and stderr at /dev/null. The parent exits 0 as soon as the child is
//! started, exactly like qemu-ga's parent after `fork()`.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;

use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::io::{FdFlags, fcntl_getfd, fcntl_setfd};

use crate::config::io_message;

/// Environment variable marking the re-executed daemon child. Its value is `channel=<fd>`,
/// `channel=none`, with `,activated` appended when the channel came from socket activation.
pub const CHILD_ENV: &str = "QGA_DAEMON_CHILD";

/// What the daemon child learned from its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildInfo {
    /// The inherited channel descriptor, if the parent had opened one.
    pub channel_fd: Option<i32>,
    /// True if that channel came from socket activation.
    pub activated: bool,
}

/// Parses [`CHILD_ENV`].
pub fn child_info(value: &OsStr) -> Option<ChildInfo> {
    let text = std::str::from_utf8(value.as_bytes()).ok()?;
    let (channel, activated) = match text.strip_suffix(",activated") {
        Some(c) => (c, true),
        None => (text, false),
    };
    let channel = channel.strip_prefix("channel=")?;
    let channel_fd = match channel {
        "none" => None,
        n => Some(n.parse::<i32>().ok().filter(|&fd| fd >= 0)?),
    };
    Some(ChildInfo {
        channel_fd,
        activated,
    })
}

/// In the parent: starts the daemon child, handing over `channel`, then exits 0.
///
/// Returns only if the child could not be started (qemu-ga exits 1 when `fork()` fails).
pub fn spawn_child(args: &[OsString], channel: Option<BorrowedFd<'_>>, activated: bool) {
    let mut value = match channel {
        Some(fd) => {
            // The descriptor must survive exec in the child.
            if let Ok(flags) = fcntl_getfd(fd) {
                let _ = fcntl_setfd(fd, flags - FdFlags::CLOEXEC);
            }
            format!("channel={}", fd.as_raw_fd())
        }
        None => "channel=none".to_owned(),
    };
    if activated {
        value.push_str(",activated");
    }
    let argv0 = args.first().cloned().unwrap_or_else(|| "qga".into());
    let exe = std::env::current_exe().map_or_else(|_| argv0.clone(), OsString::from);
    let spawned = std::process::Command::new(exe)
        .arg0(&argv0)
        .args(args.get(1..).unwrap_or(&[]))
        .env(CHILD_ENV, value)
        .spawn();
    if spawned.is_ok() {
        std::process::exit(0);
    }
}

/// A pid file written and locked by this process; removed by [`PidFile::remove`].
#[derive(Debug)]
pub struct PidFile {
    path: OsString,
    // Holding the descriptor keeps the lock.
    _fd: OwnedFd,
}

impl PidFile {
    /// Removes the file (at exit).
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// QEMU's `qemu_write_pidfile`: create, lock, make sure the locked file is the one at `path`,
/// truncate, write `<pid>\n`.
///
/// # Errors
///
/// QEMU's message.
pub fn write_pidfile(path: &OsStr) -> Result<PidFile, String> {
    let shown = path.to_string_lossy();
    let fd = loop {
        let fd = rustix::fs::open(
            path,
            OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| format!("Could not create '{shown}': {}", errno(e)))?;
        let ours = rustix::fs::fstat(&fd).map_err(|e| format!("Cannot stat file: {}", errno(e)))?;
        rustix::fs::fcntl_lock(&fd, FlockOperation::NonBlockingLockExclusive)
            .map_err(|e| format!("Cannot lock pid file: {}", errno(e)))?;
        // Someone may have removed or replaced the file between open and lock: retry then.
        match rustix::fs::stat(path) {
            Ok(now) if now.st_ino == ours.st_ino && now.st_dev == ours.st_dev => break fd,
            _ => {}
        }
    };
    let fail = |msg: String| {
        let _ = std::fs::remove_file(path);
        msg
    };
    rustix::fs::ftruncate(&fd, 0)
        .map_err(|e| fail(format!("Failed to truncate pid file: {}", errno(e))))?;
    let text = format!("{}\n", std::process::id());
    let written = rustix::io::write(&fd, text.as_bytes());
    if written.ok() != Some(text.len()) {
        return Err(fail("Failed to write pid file".to_owned()));
    }
    Ok(PidFile {
        path: path.to_owned(),
        _fd: fd,
    })
}

fn errno(e: rustix::io::Errno) -> &'static str {
    crate::errno::strerror(e.raw_os_error())
}

/// In the child: the rest of qemu-ga's `become_daemon` after the pid file.
///
/// # Errors
///
/// When `setsid` or `chdir` fails ("failed to daemonize").
pub fn detach() -> std::io::Result<()> {
    rustix::process::umask(Mode::from_raw_mode(0o077));
    rustix::process::setsid()?;
    rustix::process::chdir("/")?;
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = rustix::stdio::dup2_stdin(null.as_fd());
        let _ = rustix::stdio::dup2_stdout(null.as_fd());
        let _ = rustix::stdio::dup2_stderr(null.as_fd());
    }
    Ok(())
}

/// Opens the log file in append mode (qemu-ga's `ga_open_logfile`).
///
/// # Errors
///
/// The `strerror` text.
pub fn open_logfile(path: &OsStr) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| io_message(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_env_round_trip() {
        assert_eq!(
            child_info(OsStr::new("channel=5")),
            Some(ChildInfo {
                channel_fd: Some(5),
                activated: false
            })
        );
        assert_eq!(
            child_info(OsStr::new("channel=3,activated")),
            Some(ChildInfo {
                channel_fd: Some(3),
                activated: true
            })
        );
        assert_eq!(
            child_info(OsStr::new("channel=none")),
            Some(ChildInfo {
                channel_fd: None,
                activated: false
            })
        );
        assert_eq!(child_info(OsStr::new("channel=-1")), None);
        assert_eq!(child_info(OsStr::new("junk")), None);
    }

    #[test]
    fn pidfile_written_locked_and_removed() {
        let dir = std::env::temp_dir().join(format!("qga-pid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("qga.pid");
        std::fs::write(&path, b"stale contents that are longer\n").unwrap();
        let pf = write_pidfile(path.as_os_str()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        pf.remove();
        assert!(!path.exists());
        assert_eq!(
            write_pidfile(OsStr::new("/nonexistent/dir/x.pid")).unwrap_err(),
            "Could not create '/nonexistent/dir/x.pid': No such file or directory"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
