//! `guest-file-*`: handles on open files, with qemu-ga's stdio-stream semantics.
//!
//! qemu-ga wraps each file in a C `FILE *`. The parts of stdio that show on the wire are kept:
//! the sticky end-of-file indicator (set by a short read, cleared by a seek or by switching from
//! reading to writing; glibc ≥ 2.28 returns nothing from a read while it is set), descriptors
//! made non-blocking, and qemu-ga's error texts. Two deliberate differences: new files get mode
//! 0644 whatever the umask (qemu-ga makes them 0666, writable by every local user), and at most
//! [`MAX_OPEN`] handles are open at once (qemu-ga stops only at the process's descriptor
//! limit, after which the agent itself can no longer open anything). Data goes straight to the descriptor (no stdio buffer), which only changes when
//! other processes see the bytes.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use qga_core::HostError;
use qga_core::host::{Out, ReadPlan, Whence};
use qga_core::types::{GuestFileSeek, GuestFileWrite};
use rustix::fs::{Mode, OFlags, SeekFrom};
use rustix::io::Errno;

use super::{message, os_message};
use crate::logging::debug;
use crate::state::StateFiles;

/// Which way the stream was last used (qemu-ga's `RW_STATE_*`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RwState {
    New,
    Reading,
    Writing,
}

impl GuestFile {
    /// A streamed read whose reply was abandoned (the host went away mid-reply) still consumed
    /// its bytes in qemu-ga, whose fread() ran before the reply: skip what was not streamed.
    fn settle_direct(&mut self) {
        if self.direct > 0 {
            let skip = i64::try_from(self.direct).unwrap_or(i64::MAX);
            let _ = rustix::fs::seek(&self.fd, SeekFrom::Current(skip));
            self.direct = 0;
        }
    }
}

struct GuestFile {
    fd: OwnedFd,
    state: RwState,
    eof: bool,
    /// Data of the read in progress and how much of it was handed out (files whose size
    /// cannot be known in advance: procfs, pipes, devices).
    pending: Vec<u8>,
    taken: usize,
    /// Bytes of the read in progress still to come straight from the descriptor (regular
    /// files: nothing is buffered).
    direct: usize,
    /// Bytes written by the write in progress.
    written: i64,
}

/// The open files.
pub struct Files {
    state: StateFiles,
    next_handle: i64,
    open: BTreeMap<i64, GuestFile>,
    /// Handles allowed open at once: [`MAX_OPEN`], or less when the descriptor limit is lower.
    max_open: usize,
}

/// [`MAX_OPEN`], lowered under a small `RLIMIT_NOFILE` soft limit (systemd's default is 1024)
/// so that the agent keeps descriptors for its channel, state file and commands: the limit is
/// then reached with a clear error instead of a failing state-file write.
fn max_open() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let soft = soft.map_or(usize::MAX, |v| usize::try_from(v).unwrap_or(usize::MAX));
    MAX_OPEN.min(soft.saturating_sub(64).max(16))
}

/// Bytes between the position and the end of a regular file with a non-zero size; `None` for
/// anything else (or when the size says nothing, as procfs and sysfs files report 0).
fn regular_file_left(fd: &OwnedFd) -> Option<u64> {
    let st = rustix::fs::fstat(fd).ok()?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile
        || st.st_size <= 0
    {
        return None;
    }
    let pos = rustix::fs::seek(fd, SeekFrom::Current(0)).ok()?;
    Some(u64::try_from(st.st_size).ok()?.saturating_sub(pos))
}

fn not_found(handle: i64) -> HostError {
    message(
        format!("handle '{handle}' has not been found"),
        HostError::Message("handle has not been found"),
    )
}

/// Most guest files open at once.
pub const MAX_OPEN: usize = 1024;

/// Mode of files `guest-file-open` creates (qemu-ga: 0666).
const NEW_FILE_MODE: u32 = 0o644;

/// qemu-ga's `guest_file_open_modes`.
fn open_flags(mode: &[u8]) -> Option<OFlags> {
    let rw = match mode {
        b"r" | b"rb" => OFlags::RDONLY,
        b"w" | b"wb" => OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC,
        b"a" | b"ab" => OFlags::WRONLY | OFlags::CREATE | OFlags::APPEND,
        b"r+" | b"rb+" | b"r+b" => OFlags::RDWR,
        b"w+" | b"wb+" | b"w+b" => OFlags::RDWR | OFlags::CREATE | OFlags::TRUNC,
        b"a+" | b"ab+" | b"a+b" => OFlags::RDWR | OFlags::CREATE | OFlags::APPEND,
        _ => return None,
    };
    Some(rw | OFlags::CLOEXEC)
}

impl Files {
    /// No open files; handles start at `next_handle`.
    pub fn new(state: StateFiles, next_handle: i64) -> Self {
        Files {
            state,
            next_handle,
            open: BTreeMap::new(),
            max_open: max_open(),
        }
    }

    fn get(&mut self, handle: i64) -> Result<&mut GuestFile, HostError> {
        self.open.get_mut(&handle).ok_or_else(|| not_found(handle))
    }

    /// qemu-ga's `guest_file_handle_find`: the handle's error comes first.
    pub fn check(&mut self, handle: i64) -> Result<(), HostError> {
        self.get(handle).map(|_| ())
    }

    /// `guest-file-open` (qemu-ga's `safe_open_or_create` and `guest_file_handle_add`).
    pub fn open(&mut self, path: &[u8], mode: &[u8]) -> Result<i64, HostError> {
        let shown_mode = String::from_utf8_lossy(mode);
        let Some(mut flags) = open_flags(mode) else {
            return Err(message(
                format!("invalid file open mode '{shown_mode}'"),
                HostError::Message("invalid file open mode"),
            ));
        };
        if self.open.len() >= self.max_open {
            return Err(message(
                format!(
                    "too many open files: at most {} guest files may be open at once (close some with guest-file-close)",
                    self.max_open
                ),
                HostError::Message("too many open files"),
            ));
        }
        let path_os = OsStr::from_bytes(path);
        let shown_path = String::from_utf8_lossy(path);
        let open_failed = |e: Errno| {
            os_message(
                &format!("failed to open file '{shown_path}' (mode: '{shown_mode}')"),
                e.raw_os_error(),
            )
        };
        // Create exclusively first, so that a new file gets its mode whatever the umask;
        // an existing file is then opened as it is.
        let mut created = false;
        let fd = if flags.contains(OFlags::CREATE) {
            match rustix::fs::open(path_os, flags | OFlags::EXCL, Mode::empty()) {
                Ok(fd) => {
                    created = true;
                    fd
                }
                Err(Errno::EXIST) => {
                    flags.remove(OFlags::CREATE);
                    rustix::fs::open(path_os, flags, Mode::empty()).map_err(open_failed)?
                }
                Err(e) => return Err(open_failed(e)),
            }
        } else {
            rustix::fs::open(path_os, flags, Mode::empty()).map_err(open_failed)?
        };
        if created && let Err(e) = rustix::fs::fchmod(&fd, Mode::from_raw_mode(NEW_FILE_MODE)) {
            drop(fd);
            let _ = rustix::fs::unlink(path_os);
            return Err(os_message(
                &format!(
                    "failed to set permission 0644 on new file '{shown_path}' (mode: '{shown_mode}')"
                ),
                e.raw_os_error(),
            ));
        }
        // Non-blocking, so that reading a named pipe cannot hang the agent.
        let fl = rustix::fs::fcntl_getfl(&fd).unwrap_or(OFlags::empty());
        if let Err(e) = rustix::fs::fcntl_setfl(&fd, fl | OFlags::NONBLOCK) {
            return Err(os_message("Failed to set FD nonblocking", e.raw_os_error()));
        }
        let handle = self.next_handle;
        self.next_handle = self.next_handle.saturating_add(1);
        if !self.state.store(self.next_handle) {
            return Err(HostError::Message(
                "failed to commit persistent state to disk",
            ));
        }
        self.open.insert(
            handle,
            GuestFile {
                fd,
                state: RwState::New,
                eof: false,
                pending: Vec::new(),
                taken: 0,
                direct: 0,
                written: 0,
            },
        );
        debug!("guest-file-open, handle: {handle}");
        Ok(handle)
    }

    /// `guest-file-close`.
    pub fn close(&mut self, handle: i64) -> Result<(), HostError> {
        self.open
            .remove(&handle)
            .map(drop)
            .ok_or_else(|| not_found(handle))
    }

    /// `guest-file-read`: reads up to `count` bytes now (the reply needs the count first).
    pub fn read_begin(&mut self, handle: i64, count: usize) -> Result<ReadPlan, HostError> {
        let f = self.get(handle)?;
        f.settle_direct();
        f.state = RwState::New;
        f.pending = Vec::new();
        f.taken = 0;
        f.direct = 0;
        if f.eof {
            // glibc's sticky end-of-file: nothing is read until a seek clears it.
            f.state = RwState::Reading;
            return Ok(ReadPlan {
                count: 0,
                eof: true,
            });
        }
        // A regular file with a size: the reply's count is known from the size and the
        // position, and the data streams from the descriptor into the reply in pieces, so a
        // 48 MiB read needs no 48 MiB buffer. fread() would return the same count and eof.
        if count == 0 {
            // fread() of nothing reads nothing and does not reach end-of-file.
            f.state = RwState::Reading;
            return Ok(ReadPlan {
                count: 0,
                eof: false,
            });
        }
        // A handle opened for writing only cannot be read (fread fails with EBADF).
        let writable_only =
            rustix::fs::fcntl_getfl(&f.fd).is_ok_and(|fl| fl & OFlags::RWMODE == OFlags::WRONLY);
        if writable_only {
            return Err(os_message(
                "failed to read file",
                Errno::BADF.raw_os_error(),
            ));
        }
        if let Some(left) = regular_file_left(&f.fd) {
            if left > 0 {
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(count);
                // Read the first piece now, so that an error (EISDIR, EIO, ...) is reported as
                // qemu-ga reports it instead of after the count was promised.
                let mut first = vec![0u8; n.min(64 * 1024)];
                let got = loop {
                    match rustix::io::read(&f.fd, &mut first[..]) {
                        Ok(k) => break k,
                        Err(Errno::INTR) => {}
                        Err(e) => return Err(os_message("failed to read file", e.raw_os_error())),
                    }
                };
                let short = got < first.len();
                first.truncate(got);
                if short && got > 0 {
                    // The file ends before its size said (sysfs attributes report 4096, a file
                    // truncated meanwhile): promise only what is there; end-of-file was hit.
                    f.pending = first;
                    f.eof = true;
                    f.state = RwState::Reading;
                    return Ok(ReadPlan {
                        count: got,
                        eof: got < count,
                    });
                }
                if got > 0 {
                    f.pending = first;
                    f.direct = n - got;
                    f.eof = n < count;
                    f.state = RwState::Reading;
                    return Ok(ReadPlan {
                        count: n,
                        eof: f.eof,
                    });
                }
                // The file shrank to nothing since fstat: an empty read.
                f.eof = true;
                f.state = RwState::Reading;
                return Ok(ReadPlan {
                    count: 0,
                    eof: true,
                });
            }
        }
        // Anything else (procfs files report size 0, pipes, devices): read what is there now,
        // up to `count`, growing the buffer only as data arrives.
        let mut got = Vec::new();
        let mut chunk = [0u8; 65536];
        while got.len() < count {
            let want = (count - got.len()).min(chunk.len());
            match rustix::io::read(&f.fd, chunk.get_mut(..want).unwrap_or(&mut [])) {
                Ok(0) => {
                    f.eof = true;
                    break;
                }
                Ok(n) => {
                    if got.try_reserve(n).is_err() {
                        return Err(HostError::Os(12));
                    }
                    got.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
                }
                Err(Errno::INTR) => {}
                // A non-blocking pipe with nothing more for now: a short read, as fread's.
                Err(Errno::AGAIN) => break,
                Err(e) => return Err(os_message("failed to read file", e.raw_os_error())),
            }
        }
        f.pending = got;
        f.state = RwState::Reading;
        Ok(ReadPlan {
            count: f.pending.len(),
            eof: f.eof,
        })
    }

    /// `guest-file-read`, data: the next bytes of the planned read.
    pub fn read_data(&mut self, handle: i64, buf: &mut [u8]) -> Result<usize, HostError> {
        let f = self.get(handle)?;
        if f.taken >= f.pending.len() && f.direct > 0 {
            let want = f.direct.min(buf.len());
            loop {
                match rustix::io::read(&f.fd, buf.get_mut(..want).unwrap_or(&mut [])) {
                    Ok(n) => {
                        // 0 means the file shrank under us: the engine pads the promised count.
                        f.direct = if n == 0 { 0 } else { f.direct - n };
                        return Ok(n);
                    }
                    Err(Errno::INTR) => {}
                    Err(e) => {
                        f.direct = 0;
                        return Err(os_message("failed to read file", e.raw_os_error()));
                    }
                }
            }
        }
        let rest = f.pending.get(f.taken..).unwrap_or(&[]);
        let n = rest.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
            dst.copy_from_slice(src);
        }
        f.taken += n;
        if f.taken >= f.pending.len() {
            f.pending = Vec::new();
            f.taken = 0;
        }
        Ok(n)
    }

    /// `guest-file-write`: checks the handle; switching from reading to writing repositions the
    /// stream (which clears end-of-file), as stdio requires.
    pub fn write_begin(&mut self, handle: i64) -> Result<(), HostError> {
        let f = self.get(handle)?;
        f.settle_direct();
        if f.state == RwState::Reading {
            rustix::fs::seek(&f.fd, SeekFrom::Current(0))
                .map_err(|e| os_message("failed to seek file", e.raw_os_error()))?;
            f.eof = false;
            f.state = RwState::New;
        }
        f.written = 0;
        Ok(())
    }

    /// `guest-file-write`: writes one decoded piece.
    pub fn write_data(&mut self, handle: i64, mut data: &[u8]) -> Result<(), HostError> {
        let f = self.get(handle)?;
        while !data.is_empty() {
            match rustix::io::write(&f.fd, data) {
                Ok(n) => {
                    f.written += i64::try_from(n).unwrap_or(0);
                    data = data.get(n..).unwrap_or(&[]);
                }
                Err(Errno::INTR) => {}
                Err(e) => {
                    f.state = RwState::Writing;
                    return Err(os_message("failed to write to file", e.raw_os_error()));
                }
            }
        }
        Ok(())
    }

    /// `guest-file-write`: the reply.
    pub fn write_end(&mut self, handle: i64, out: &mut Out<'_>) -> Result<(), HostError> {
        let f = self.get(handle)?;
        f.state = RwState::Writing;
        out.value(&GuestFileWrite {
            count: f.written,
            eof: f.eof,
        });
        Ok(())
    }

    /// `guest-file-seek`.
    pub fn seek(
        &mut self,
        handle: i64,
        offset: i64,
        whence: Whence,
        out: &mut Out<'_>,
    ) -> Result<(), HostError> {
        let f = self.get(handle)?;
        f.settle_direct();
        let from = match whence {
            Whence::Set => SeekFrom::Start(
                u64::try_from(offset)
                    .map_err(|_| HostError::Message("failed to seek file: Invalid argument"))?,
            ),
            Whence::Cur => SeekFrom::Current(offset),
            Whence::End => SeekFrom::End(offset),
        };
        // clearerr() follows the seek whatever its outcome.
        f.eof = false;
        let position = rustix::fs::seek(&f.fd, from)
            .map_err(|e| os_message("failed to seek file", e.raw_os_error()))?;
        out.value(&GuestFileSeek {
            eof: false,
            position: i64::try_from(position).unwrap_or(i64::MAX),
        });
        Ok(())
    }

    /// `guest-file-flush`: nothing is buffered here; the stream just forgets its direction.
    pub fn flush(&mut self, handle: i64) -> Result<(), HostError> {
        let f = self.get(handle)?;
        f.state = RwState::New;
        Ok(())
    }
}
