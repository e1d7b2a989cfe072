//! [`LinuxHost`]: the operating system behind the protocol engine.
//!
//! Error texts follow qemu-ga 7.2 (the reference binary). Messages with dynamic parts (paths,
//! handles) are kept as the host's last error text and reported as [`HostError::Described`]:
//! the engine asks for the text while it writes the reply, so nothing accumulates.

mod admin;
mod clock;
mod exec;
mod files;
mod freeze;
mod fsfreeze;
mod fsinfo;
mod mountinfo;
mod net;
mod power;
mod route;
mod ssh;
mod sysinfo;

use std::ffi::OsString;
use std::time::Duration;

use qga_core::host::{ExecRequest, Out, Query, ShutdownMode, StrArg, StrList, SuspendMode, Whence};
use qga_core::{Host, HostError};

use crate::daemon::PidFile;
use crate::logging::{info, warning};
use crate::state::StateFiles;

pub use files::Files;
pub use freeze::Freezer;

/// The text of the last [`HostError::Described`] (one request is answered at a time).
static LAST_ERROR: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// A dynamic error text as a [`HostError`] (see the module docs). `fallback` is kept for the
/// callers' signature; the text always fits.
pub(crate) fn message(text: String, fallback: HostError) -> HostError {
    let _ = fallback;
    let mut last = LAST_ERROR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *last = text;
    HostError::Described
}

/// The text of the last [`HostError::Described`] (what the engine will be handed).
#[cfg(test)]
#[allow(dead_code)]
pub(crate) fn last_error() -> String {
    LAST_ERROR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Writes an executable script for a test without ever holding it open for
/// writing in this process: tests run in threads, and a thread that forks while
/// another has a script open for writing makes the child inherit that descriptor
/// until its exec, so running the script fails with ETXTBSY ("Text file busy").
/// A short-lived `sh` child writes the file instead.
#[cfg(test)]
pub(crate) fn write_script(path: &std::path::Path, text: &str) {
    use std::io::Write;
    let mut sh = std::process::Command::new("/bin/sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sh to write a script");
    let mut input = sh.stdin.take().expect("sh stdin");
    input.write_all(text.as_bytes()).expect("write the script");
    drop(input);
    assert!(
        sh.wait().expect("wait for sh").success(),
        "writing {path:?}"
    );
}

/// A dynamic error text as a [`HostError::Described`].
pub(crate) fn described(text: String) -> HostError {
    message(text, HostError::Unsupported)
}

/// `error_setg_errno`: "text: strerror".
pub(crate) fn os_message(text: &str, errno: i32) -> HostError {
    message(
        format!("{text}: {}", crate::errno::strerror(errno)),
        HostError::Os(errno),
    )
}

/// What the daemon does around a filesystem freeze (qemu-ga's `ga_set_frozen` and
/// `ga_unset_frozen`): the `qga.state.isfrozen` marker, logging off and on, and the log file
/// and pid file whose creation was deferred because the agent started frozen.
pub struct Lifecycle {
    /// The state directory's files.
    pub state: StateFiles,
    /// Log file to open at the next thaw.
    pub deferred_log: Option<OsString>,
    /// Pid file to write at the next thaw.
    pub deferred_pid: Option<OsString>,
    /// The pid file written by this process, removed at exit.
    pub pidfile: Option<PidFile>,
    /// True while the frozen-state effects are in force.
    frozen: bool,
}

impl Lifecycle {
    /// Lifecycle state for an agent that starts frozen (`frozen`) or not.
    pub fn new(state: StateFiles, frozen: bool) -> Self {
        Lifecycle {
            state,
            deferred_log: None,
            deferred_pid: None,
            pidfile: None,
            frozen,
        }
    }

    /// True while the frozen-state effects are in force.
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// Before filesystems are frozen: nothing may be written from now on.
    pub fn enter_frozen(&mut self) {
        if self.frozen {
            return;
        }
        warning!("disabling logging due to filesystem freeze");
        self.frozen = true;
        self.state.create_isfrozen();
        crate::logging::set_enabled(false);
    }

    /// After a thaw.
    pub fn leave_frozen(&mut self) {
        if !self.frozen {
            return;
        }
        if let Some(path) = self.deferred_log.take() {
            // A log file that still cannot be opened leaves logging on stderr.
            if let Ok(f) = crate::daemon::open_logfile(&path) {
                crate::logging::set_file(f);
            }
        }
        crate::logging::set_enabled(true);
        warning!("logging re-enabled due to filesystem unfreeze");
        if let Some(path) = self.deferred_pid.take() {
            match crate::daemon::write_pidfile(&path) {
                Ok(pf) => self.pidfile = Some(pf),
                Err(msg) => warning!("{msg}"),
            }
        }
        self.frozen = false;
        self.state.delete_isfrozen();
    }
}

/// The Linux host.
pub struct LinuxHost {
    files: Files,
    exec: exec::Processes,
    /// Frozen state, the fsfreeze hook and the freeze watchdog.
    freezer: Freezer,
}

impl LinuxHost {
    /// A host whose file handles continue from `fd_counter` (persisted in `life.state`), with
    /// the fsfreeze hook `fsfreeze_hook` and, if given, the freeze watchdog's limit.
    pub fn new(
        life: Lifecycle,
        fd_counter: i64,
        fsfreeze_hook: Option<OsString>,
        fsfreeze_timeout: Option<Duration>,
    ) -> Self {
        LinuxHost {
            files: Files::new(life.state.clone(), fd_counter),
            exec: exec::Processes::default(),
            freezer: Freezer::new(life, fsfreeze_hook, fsfreeze_timeout),
        }
    }

    /// True while filesystems are frozen (the engine's flag follows this one: the watchdog may
    /// thaw between two requests).
    pub fn is_frozen(&self) -> bool {
        self.freezer.is_frozen()
    }

    /// The pid file this process wrote (possibly only at a thaw, when it started frozen).
    pub fn take_pidfile(&mut self) -> Option<PidFile> {
        self.freezer.with_life(|life| life.pidfile.take())
    }

    /// At exit: thaws if still frozen (qemu-ga's cleanup).
    pub fn thaw_at_exit(&mut self) {
        self.freezer.thaw_at_exit();
    }
}

impl Host for LinuxHost {
    fn describe_error(&self, write: &mut dyn FnMut(&[u8])) {
        let last = LAST_ERROR
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        write(last.as_bytes());
    }

    fn strerror(&self, errno: i32) -> &'static str {
        crate::errno::strerror(errno)
    }

    fn audit(&mut self, command: &'static str) {
        info!("{command} called");
    }

    fn get_time(&mut self) -> Result<i64, HostError> {
        clock::get_time().map_err(described)
    }

    fn set_time(&mut self, time: Option<i64>) -> Result<(), HostError> {
        clock::set_time(time).map_err(described)
    }

    fn shutdown(&mut self, mode: ShutdownMode) -> Result<(), HostError> {
        power::shutdown(mode).map_err(described)
    }

    fn suspend(&mut self, mode: SuspendMode) -> Result<(), HostError> {
        power::suspend(mode).map_err(described)
    }

    fn set_vcpus(
        &mut self,
        vcpus: &mut dyn Iterator<Item = (i64, bool)>,
    ) -> Result<i64, HostError> {
        admin::set_vcpus(vcpus)
    }

    fn set_user_password(
        &mut self,
        username: &[u8],
        password_b64: StrArg<'_>,
        crypted: bool,
    ) -> Result<(), HostError> {
        admin::set_user_password(username, password_b64, crypted)
    }

    fn file_open(&mut self, path: &[u8], mode: &[u8]) -> Result<i64, HostError> {
        self.files.open(path, mode)
    }

    fn file_close(&mut self, handle: i64) -> Result<(), HostError> {
        self.files.close(handle)
    }

    fn file_handle(&mut self, handle: i64) -> Result<(), HostError> {
        self.files.check(handle)
    }

    fn file_read_begin(
        &mut self,
        handle: i64,
        count: usize,
    ) -> Result<qga_core::host::ReadPlan, HostError> {
        self.files.read_begin(handle, count)
    }

    fn file_read_data(&mut self, handle: i64, buf: &mut [u8]) -> Result<usize, HostError> {
        self.files.read_data(handle, buf)
    }

    fn file_write_begin(&mut self, handle: i64) -> Result<(), HostError> {
        self.files.write_begin(handle)
    }

    fn file_write_data(&mut self, handle: i64, data: &[u8]) -> Result<(), HostError> {
        self.files.write_data(handle, data)
    }

    fn file_write_end(&mut self, handle: i64, out: &mut Out<'_>) -> Result<(), HostError> {
        self.files.write_end(handle, out)
    }

    fn file_seek(
        &mut self,
        handle: i64,
        offset: i64,
        whence: Whence,
        out: &mut Out<'_>,
    ) -> Result<(), HostError> {
        self.files.seek(handle, offset, whence, out)
    }

    fn file_flush(&mut self, handle: i64) -> Result<(), HostError> {
        self.files.flush(handle)
    }

    fn exec(&mut self, request: &mut ExecRequest<'_>, out: &mut Out<'_>) -> Result<(), HostError> {
        self.exec.spawn(request, out)
    }

    fn exec_status(&mut self, pid: i64, out: &mut Out<'_>) -> Result<(), HostError> {
        self.exec.status(pid, out)
    }

    fn fsfreeze_freeze(&mut self, mountpoints: &mut StrList<'_>) -> Result<i64, HostError> {
        info!("guest-fsfreeze called");
        let wanted = fsfreeze::wanted(mountpoints);
        self.freezer.freeze(wanted.as_deref()).map_err(described)
    }

    fn fsfreeze_thaw(&mut self) -> Result<i64, HostError> {
        self.freezer.thaw().map_err(described)
    }

    fn fstrim(&mut self, minimum: Option<i64>, out: &mut Out<'_>) -> Result<(), HostError> {
        fsfreeze::fstrim(minimum, out)
    }

    fn ssh_get_authorized_keys(&mut self, user: &[u8], out: &mut Out<'_>) -> Result<(), HostError> {
        ssh::get(user, out)
    }

    fn ssh_add_authorized_keys(
        &mut self,
        user: &[u8],
        keys: &mut StrList<'_>,
        reset: bool,
    ) -> Result<(), HostError> {
        ssh::add(user, keys, reset)
    }

    fn ssh_remove_authorized_keys(
        &mut self,
        user: &[u8],
        keys: &mut StrList<'_>,
    ) -> Result<(), HostError> {
        ssh::remove(user, keys)
    }

    fn query(&mut self, command: Query, out: &mut Out<'_>) -> Result<(), HostError> {
        sysinfo::query(command, out)
    }
}
