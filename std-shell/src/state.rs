//! The state directory: `qga.state` (the next file handle) and `qga.state.isfrozen`.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::config::io_message;
use crate::keyfile::{KeyFile, KeyFileWriter};
use crate::logging::{critical, warning};

/// qemu-ga's first file handle.
pub const FD_COUNTER_DEFAULT: i64 = 1000;

/// The two files of the state directory.
#[derive(Clone, Debug)]
pub struct StateFiles {
    /// `<statedir>/qga.state`.
    pub pstate: PathBuf,
    /// `<statedir>/qga.state.isfrozen`.
    pub isfrozen: PathBuf,
}

fn join(dir: &OsStr, name: &str) -> PathBuf {
    // qemu-ga uses "%s/qga.state": no normalisation of the directory.
    let mut p = dir.as_bytes().to_vec();
    p.push(b'/');
    p.extend_from_slice(name.as_bytes());
    PathBuf::from(OsString::from(std::ffi::OsStr::from_bytes(&p)))
}

impl StateFiles {
    /// The files in `state_dir`.
    pub fn new(state_dir: &OsStr) -> StateFiles {
        StateFiles {
            pstate: join(state_dir, "qga.state"),
            isfrozen: join(state_dir, "qga.state.isfrozen"),
        }
    }

    /// qemu-ga's `check_is_frozen`: true if the previous instance left filesystems frozen. As in
    /// qemu-ga, a file that cannot be checked at all counts as "frozen" (better to require an
    /// unneeded thaw than to hang at start-up), after a critical message.
    pub fn check_frozen(&self) -> bool {
        match std::fs::symlink_metadata(&self.isfrozen) {
            Ok(_) => {
                warning!(
                    "previous instance appears to have exited with frozen filesystems. deferring \
logging/pidfile creation and disabling non-fsfreeze-safe commands until guest-fsfreeze-thaw is \
issued, or filesystems are manually unfrozen and the file {} is removed",
                    self.isfrozen.display()
                );
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => {
                critical!(
                    "unable to access state file at path {}: {}",
                    self.isfrozen.display(),
                    io_message(&e)
                );
                true
            }
        }
    }

    /// qemu-ga's `read_persistent_state`: the next file handle. A missing file is created
    /// (unless frozen). Errors are logged; `None` means "failed to load persistent state".
    pub fn load(&self, frozen: bool) -> Option<i64> {
        match std::fs::metadata(&self.pstate) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !frozen && !self.store(FD_COUNTER_DEFAULT) {
                    critical!(
                        "unable to create state file at path {}",
                        self.pstate.display()
                    );
                    return None;
                }
                Some(FD_COUNTER_DEFAULT)
            }
            Err(e) => {
                critical!(
                    "unable to access state file at path {}: {}",
                    self.pstate.display(),
                    io_message(&e)
                );
                None
            }
            Ok(meta) => {
                let parsed = if meta.is_file() {
                    std::fs::read(&self.pstate)
                        .map_err(|e| io_message(&e))
                        .and_then(|d| KeyFile::parse(&d).map_err(|e| e.0))
                } else {
                    Err("Not a regular file".to_owned())
                };
                match parsed {
                    Ok(kf) => Some(if kf.has_key("global", "fd_counter") {
                        // g_key_file_get_integer: a C int; an unreadable value reads as 0.
                        kf.get_integer("global", "fd_counter").map_or(0, i64::from)
                    } else {
                        FD_COUNTER_DEFAULT
                    }),
                    Err(msg) => {
                        critical!(
                            "error loading persistent state from path: {}, {}",
                            self.pstate.display(),
                            msg
                        );
                        None
                    }
                }
            }
        }
    }

    /// qemu-ga's `write_persistent_state`, atomically (temporary file, then rename, like
    /// `g_file_set_contents`). Logs and returns false on failure.
    pub fn store(&self, fd_counter: i64) -> bool {
        let mut w = KeyFileWriter::default();
        w.group("global").integer("fd_counter", fd_counter);
        match write_atomically(&self.pstate, &w.finish()) {
            Ok(()) => true,
            Err(msg) => {
                critical!(
                    "failed to write persistent state to {}: {}",
                    self.pstate.display(),
                    msg
                );
                false
            }
        }
    }

    /// Creates `qga.state.isfrozen` (before filesystems are frozen).
    pub fn create_isfrozen(&self) {
        let made = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&self.isfrozen);
        if let Err(e) = made {
            warning!(
                "unable to open/create file {}: {}",
                self.isfrozen.display(),
                io_message(&e)
            );
            warning!(
                "unable to create {}, fsfreeze may not function properly",
                self.isfrozen.display()
            );
        }
    }

    /// Removes `qga.state.isfrozen` (after a thaw).
    pub fn delete_isfrozen(&self) {
        if let Err(e) = std::fs::remove_file(&self.isfrozen) {
            warning!(
                "unable to delete file: {}: {}",
                self.isfrozen.display(),
                io_message(&e)
            );
            warning!(
                "unable to delete {}, fsfreeze may not function properly",
                self.isfrozen.display()
            );
        }
    }
}

/// Writes `data` to `path` through a temporary file in the same directory and a rename.
fn write_atomically(path: &Path, data: &[u8]) -> Result<(), String> {
    let existed = path.exists();
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(&tmp)?;
        f.write_all(data)?;
        // Like GLib: make the replacement durable before it replaces an existing file.
        if existed {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!(
            "Failed to write file \u{201c}{}\u{201d}: {}",
            path.display(),
            io_message(&e)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("qga-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn created_with_default_then_reloaded() {
        let d = dir("create");
        let s = StateFiles::new(d.as_os_str());
        assert_eq!(s.load(false), Some(1000));
        assert_eq!(
            std::fs::read(&s.pstate).unwrap(),
            b"[global]\nfd_counter=1000\n"
        );
        assert!(s.store(1234));
        assert_eq!(s.load(false), Some(1234));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn frozen_start_does_not_create_the_file() {
        let d = dir("frozen");
        let s = StateFiles::new(d.as_os_str());
        assert!(!s.check_frozen());
        s.create_isfrozen();
        assert!(s.check_frozen());
        assert_eq!(s.load(true), Some(1000));
        assert!(!s.pstate.exists());
        s.delete_isfrozen();
        assert!(!s.check_frozen());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn bad_files() {
        let d = dir("bad");
        let s = StateFiles::new(d.as_os_str());
        std::fs::write(&s.pstate, b"garbage\n").unwrap();
        assert_eq!(s.load(false), None);
        std::fs::write(&s.pstate, b"[global]\nfd_counter=xyz\n").unwrap();
        assert_eq!(s.load(false), Some(0));
        std::fs::write(&s.pstate, b"[global]\n").unwrap();
        assert_eq!(s.load(false), Some(1000));
        std::fs::remove_dir_all(&d).unwrap();
        let missing = StateFiles::new(OsStr::new("/nonexistent/qga-dir"));
        assert_eq!(missing.load(false), None);
    }
}
