//! Temporary directories of the benchmark, under a chosen base.
//!
//! The default base is `/dev/shm` (tmpfs) when it exists: on a disk filesystem, creating the
//! agents' socket, log and state files costs whatever the filesystem's inode allocator costs at
//! that moment (on ext4 with many recently deleted inodes, `find_inode_bit` scanning for a
//! reusable inode took over a millisecond per file here), which would swamp the start-up figures
//! with noise that has nothing to do with the agents. In a real guest the state directory is
//! `/run` (tmpfs) and the channel is a device that is never created.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The default base: `/dev/shm` if it is a directory, else the system temporary directory.
pub fn default_base() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

/// A fresh directory `<base>/<prefix>-<pid>-<counter>-<nanos>`, removed with its contents on
/// drop.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// Creates the directory.
    pub fn new(base: &Path, prefix: &str) -> io::Result<ScratchDir> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = base.join(format!("{prefix}-{}-{n}-{nanos:09}", std::process::id()));
        std::fs::create_dir(&path)?;
        Ok(ScratchDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
