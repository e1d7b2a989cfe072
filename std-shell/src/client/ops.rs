//! Guest files and guest programs on top of [`Connection`]: the multi-request operations, with
//! a check of every count the guest reports.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::time::Duration;

use qga_core::types::{
    Base64, Bytes, GuestExec, GuestExecStatus, GuestFileRead, GuestFileSeek, GuestFileWrite,
};
use serde::Serialize;

use super::{Connection, Error, Violation};

/// Largest chunk of a file copy: 1 MiB of data is about 1.4 MiB of JSON, well below every
/// limit (libvirt's RPC string limit is 4 MiB; third-party tools settled on 1 MiB chunks).
const MAX_CHUNK: usize = 1 << 20;

/// First and longest pause between `guest-exec-status` polls.
const POLL_FIRST: Duration = Duration::from_millis(5);
const POLL_MAX: Duration = Duration::from_millis(250);

/// Told how a copy advances.
pub trait Progress {
    /// `done` bytes of `total` (when known) have been copied.
    fn update(&mut self, done: u64, total: Option<u64>);

    /// Whether the total size is worth a `guest-file-seek` round trip (for a progress bar).
    fn wants_total(&self) -> bool {
        false
    }
}

/// No progress reporting.
impl Progress for () {
    fn update(&mut self, _done: u64, _total: Option<u64>) {}
}

/// How a guest program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecStatus {
    /// Exit code, if it exited normally.
    pub code: Option<i64>,
    /// Signal number, if a signal killed it.
    pub signal: Option<i64>,
    /// The agent cut the captured standard output at its limit (16 MiB in qemu-ga).
    pub out_truncated: bool,
    /// The agent cut the captured standard error at its limit.
    pub err_truncated: bool,
}

#[derive(Serialize)]
struct FileOpen<'a> {
    path: Bytes<'a>,
    mode: &'a str,
}

#[derive(Serialize)]
struct Handle {
    handle: i64,
}

#[derive(Serialize)]
struct FileRead {
    handle: i64,
    count: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct FileWrite<'a> {
    handle: i64,
    buf_b64: Base64<'a>,
    count: i64,
}

#[derive(Serialize)]
struct FileSeek<'a> {
    handle: i64,
    offset: i64,
    whence: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Exec<'a> {
    path: Bytes<'a>,
    arg: &'a [Bytes<'a>],
    capture_output: bool,
}

#[derive(Serialize)]
struct Pid {
    pid: i64,
}

fn local(what: &str) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Local {
        what: what.to_owned(),
        source,
    }
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl<T: Read + Write + AsFd> Connection<T> {
    /// The data size of one `guest-file-read`/`-write`: at most 1 MiB, and small enough that its
    /// base64 reply stays within the maximum reply size.
    pub fn chunk_size(&self) -> usize {
        (self.config().max_reply / 2).clamp(1, MAX_CHUNK)
    }

    /// `guest-file-open`: opens `path` in the guest with an `fopen` mode (`"r"`, `"w"`, `"a"`,
    /// ...) and returns the handle.
    ///
    /// # Errors
    ///
    /// The errors of [`Connection::call_with`].
    pub fn file_open(&mut self, path: &[u8], mode: &str) -> Result<i64, Error> {
        let args = FileOpen {
            path: Bytes(path),
            mode,
        };
        self.call_with("guest-file-open", &args)
    }

    /// `guest-file-close`.
    ///
    /// # Errors
    ///
    /// The errors of [`Connection::execute_with`].
    pub fn file_close(&mut self, handle: i64) -> Result<(), Error> {
        self.execute_with("guest-file-close", &Handle { handle })
    }

    /// Copies the guest file `path` into `sink`, [`Connection::chunk_size`] bytes per request.
    /// Returns the number of bytes copied. The handle is closed also when the copy fails
    /// (unless the connection is gone).
    ///
    /// # Errors
    ///
    /// The errors of the calls; [`Error::Protocol`] when a reply's `count` disagrees with its
    /// data or exceeds what was asked; [`Error::Local`] when `sink` fails.
    pub fn read_file<W, P>(
        &mut self,
        path: &[u8],
        sink: &mut W,
        progress: &mut P,
    ) -> Result<u64, Error>
    where
        W: Write + ?Sized,
        P: Progress + ?Sized,
    {
        let handle = self.file_open(path, "r")?;
        let result = self.read_handle(handle, sink, progress);
        self.close_after(handle, result)
    }

    fn read_handle<W, P>(
        &mut self,
        handle: i64,
        sink: &mut W,
        progress: &mut P,
    ) -> Result<u64, Error>
    where
        W: Write + ?Sized,
        P: Progress + ?Sized,
    {
        let total = if progress.wants_total() {
            self.file_size(handle)?
        } else {
            None
        };
        let count = to_i64(self.chunk_size());
        let mut done = 0u64;
        progress.update(done, total);
        loop {
            let read: GuestFileRead<'_> =
                self.call_with("guest-file-read", &FileRead { handle, count })?;
            read.check_request(count)?;
            sink.write_all(read.buf_b64.0)
                .map_err(local("writing the local copy"))?;
            done = done.saturating_add(u64::try_from(read.buf_b64.0.len()).unwrap_or(u64::MAX));
            progress.update(done, total);
            // qemu-ga opens files non-blocking: an empty read without EOF (a FIFO without a
            // writer) would repeat forever, so it ends the copy too.
            if read.eof || read.count == 0 {
                break;
            }
        }
        sink.flush().map_err(local("writing the local copy"))?;
        Ok(done)
    }

    /// The size of an open guest file (seek to the end, then back to the start), or `None`
    /// when it cannot seek (pipes, many `/proc` files).
    fn file_size(&mut self, handle: i64) -> Result<Option<u64>, Error> {
        let end = FileSeek {
            handle,
            offset: 0,
            whence: "end",
        };
        let size = match self.call_with::<_, GuestFileSeek>("guest-file-seek", &end) {
            Ok(seek) => {
                seek.check()?;
                u64::try_from(seek.position).unwrap_or(0)
            }
            Err(Error::Agent { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let start = FileSeek {
            handle,
            offset: 0,
            whence: "set",
        };
        let back: GuestFileSeek = self.call_with("guest-file-seek", &start)?;
        if back.position != 0 {
            return Err(Error::Protocol(Violation::Inconsistent(
                "a seek to the start of the file did not end at position 0",
            )));
        }
        Ok(Some(size))
    }

    /// Copies everything `source` yields into the guest file `path` (created or truncated),
    /// [`Connection::chunk_size`] bytes per request; `total` is only passed on to `progress`.
    /// Returns the number of bytes copied. The handle is closed also when the copy fails
    /// (unless the connection is gone).
    ///
    /// # Errors
    ///
    /// The errors of the calls; [`Error::Protocol`] when the guest reports more bytes written
    /// than sent; [`Error::Failed`] when it writes none; [`Error::Local`] when `source` fails.
    pub fn write_file<R, P>(
        &mut self,
        path: &[u8],
        source: &mut R,
        total: Option<u64>,
        progress: &mut P,
    ) -> Result<u64, Error>
    where
        R: Read + ?Sized,
        P: Progress + ?Sized,
    {
        let handle = self.file_open(path, "w")?;
        let result = self.write_handle(handle, source, total, progress);
        self.close_after(handle, result)
    }

    fn write_handle<R, P>(
        &mut self,
        handle: i64,
        source: &mut R,
        total: Option<u64>,
        progress: &mut P,
    ) -> Result<u64, Error>
    where
        R: Read + ?Sized,
        P: Progress + ?Sized,
    {
        let mut buf = vec![0u8; self.chunk_size()];
        let mut done = 0u64;
        progress.update(done, total);
        loop {
            let n = read_full(source, &mut buf).map_err(local("reading the local file"))?;
            let mut data = buf.get(..n).unwrap_or_default();
            if data.is_empty() {
                return Ok(done);
            }
            // The guest may write less than it was sent: send the rest again.
            while !data.is_empty() {
                let args = FileWrite {
                    handle,
                    buf_b64: Base64(data),
                    count: to_i64(data.len()),
                };
                let written: GuestFileWrite = self.call_with("guest-file-write", &args)?;
                written.check()?;
                let count = usize::try_from(written.count).unwrap_or(usize::MAX);
                if count > data.len() {
                    return Err(Error::Protocol(Violation::Inconsistent(
                        "the guest reports more bytes written than it was sent",
                    )));
                }
                if count == 0 {
                    return Err(Error::Failed("the guest wrote nothing (disk full?)"));
                }
                data = data.get(count..).unwrap_or_default();
                done = done.saturating_add(u64::try_from(count).unwrap_or(u64::MAX));
                progress.update(done, total);
            }
        }
    }

    /// Closes `handle` after an operation on it: on success a failed close is the result (the
    /// data may not have reached the file); on failure the close is attempted when the
    /// connection still works, and the original error is kept.
    fn close_after(&mut self, handle: i64, result: Result<u64, Error>) -> Result<u64, Error> {
        match result {
            Ok(n) => self.file_close(handle).map(|()| n),
            Err(e) => {
                if e.connection_usable() {
                    let _ = self.file_close(handle);
                }
                Err(e)
            }
        }
    }

    /// Runs `path` with `args` in the guest (`guest-exec` with `capture-output`), polls
    /// `guest-exec-status` until it exits, and writes its captured output to `stdout` and
    /// `stderr`. There is no overall time limit: each poll has its own timeout.
    ///
    /// # Errors
    ///
    /// The errors of the calls ([`Error::Agent`] when the program cannot be started);
    /// [`Error::Protocol`] for an implausible pid or status; [`Error::Local`] when `stdout` or
    /// `stderr` fails.
    pub fn exec<O, E>(
        &mut self,
        path: &[u8],
        args: &[&[u8]],
        stdout: &mut O,
        stderr: &mut E,
    ) -> Result<ExecStatus, Error>
    where
        O: Write + ?Sized,
        E: Write + ?Sized,
    {
        let arg: Vec<Bytes<'_>> = args.iter().map(|a| Bytes(a)).collect();
        let request = Exec {
            path: Bytes(path),
            arg: &arg,
            capture_output: true,
        };
        let started: GuestExec = self.call_with("guest-exec", &request)?;
        started.check()?;
        let pid = started.pid;
        let mut pause = POLL_FIRST;
        loop {
            let status: GuestExecStatus<'_> = self.call_with("guest-exec-status", &Pid { pid })?;
            status.check()?;
            if status.exited {
                if let Some(out) = status.out_data {
                    stdout
                        .write_all(out.0)
                        .map_err(local("writing standard output"))?;
                }
                stdout.flush().map_err(local("writing standard output"))?;
                if let Some(err) = status.err_data {
                    stderr
                        .write_all(err.0)
                        .map_err(local("writing standard error"))?;
                }
                stderr.flush().map_err(local("writing standard error"))?;
                return Ok(ExecStatus {
                    code: status.exitcode,
                    signal: status.signal,
                    out_truncated: status.out_truncated.unwrap_or(false),
                    err_truncated: status.err_truncated.unwrap_or(false),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(POLL_MAX);
        }
    }
}

/// Reads until `buf` is full or the source ends.
fn read_full<R: Read + ?Sized>(source: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..) {
        if rest.is_empty() {
            break;
        }
        match source.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
