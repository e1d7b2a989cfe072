//! `guest-exec` and `guest-exec-status`.
//!
//! qemu-ga spawns with `g_spawn_async_with_pipes` and collects output from its main loop. Here
//! small helper threads do the collecting (one per pipe, plus one that waits for the child so
//! that it is reaped as soon as it exits, as GLib's child watch does); the agent's thread only
//! looks at what they gathered. Output is kept up to 16 MiB per stream, the rest is read and
//! dropped, and `out-truncated`/`err-truncated` say so.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

use qga_core::HostError;
use qga_core::host::{Capture, ExecRequest, Out, StrList};
use qga_core::types::{Base64, GuestExec, GuestExecStatus};

use super::message;
use crate::logging::{debug, info};

/// qemu-ga's `GUEST_EXEC_MAX_OUTPUT`.
const MAX_OUTPUT: usize = 16 << 20;
/// Stack size of the helper threads (they only copy bytes).
const THREAD_STACK: usize = 64 * 1024;
/// Longest single argument or environment entry taken from a request.
const MAX_ITEM: usize = 1 << 20;

#[derive(Default)]
struct Stream {
    data: Vec<u8>,
    truncated: bool,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    status: Option<ExitStatus>,
    out: Stream,
    err: Stream,
}

struct Process {
    shared: Arc<Mutex<Shared>>,
    has_output: bool,
}

/// The processes started by `guest-exec` and not yet reported as exited.
#[derive(Default)]
pub struct Processes {
    running: HashMap<i64, Process>,
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn collect(list: &mut StrList<'_>) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; MAX_ITEM];
    let mut items = Vec::new();
    while let Some(item) = list.next_into(&mut buf) {
        items.push(item.map(<[u8]>::to_vec).unwrap_or_default());
    }
    items
}

/// qemu's `qbase64_decode` (character check, then `g_base64_decode`).
pub(crate) fn decode_base64(text: &[u8]) -> Result<Vec<u8>, HostError> {
    // qbase64_decode's accepted set includes '\n', which g_base64_decode then skips.
    let valid = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'\n');
    if !text.iter().all(|&c| valid(c)) {
        return Err(HostError::Message(
            "Base64 data contains invalid characters",
        ));
    }
    let rank = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => 0,
        }
    };
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut v, mut i, mut last) = (0u32, 0u32, [0u8; 2]);
    for &c in text.iter().filter(|&&c| c != b'\n') {
        last = [c, last[0]];
        v = (v << 6) | rank(c);
        i += 1;
        if i == 4 {
            i = 0;
            out.push((v >> 16) as u8);
            if last[1] != b'=' {
                out.push((v >> 8) as u8);
            }
            if last[0] != b'=' {
                out.push(v as u8);
            }
        }
    }
    Ok(out)
}

fn reader(pipe: impl Read + Send + 'static, shared: Arc<Mutex<Shared>>, err: bool) {
    let spawned = std::thread::Builder::new()
        .stack_size(THREAD_STACK)
        .spawn(move || {
            let mut pipe = pipe;
            let mut buf = [0u8; 4096];
            loop {
                let n = match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut s = lock(&shared);
                let stream = if err { &mut s.err } else { &mut s.out };
                let room = MAX_OUTPUT.saturating_sub(stream.data.len());
                let take = n.min(room);
                stream
                    .data
                    .extend_from_slice(buf.get(..take).unwrap_or(&[]));
                if take < n {
                    stream.truncated = true;
                }
            }
            let mut s = lock(&shared);
            if err {
                s.err.closed = true;
            } else {
                s.out.closed = true;
            }
        });
    if spawned.is_err() {
        // Without a reader the stream can never be reported; mark it closed and empty.
        // (The pipe was moved into the failed closure and is closed with it.)
    }
}

fn waiter(mut child: Child, shared: Arc<Mutex<Shared>>) {
    let shared2 = Arc::clone(&shared);
    let spawned = std::thread::Builder::new()
        .stack_size(THREAD_STACK)
        .spawn(move || {
            let status = child.wait();
            debug!(
                "guest_exec_child_watch called, pid: {}, status: {}",
                child.id(),
                status.as_ref().map_or(0, |s| s.into_raw())
            );
            if let Ok(status) = status {
                lock(&shared2).status = Some(status);
            }
        });
    if spawned.is_err() {
        lock(&shared).status = Some(ExitStatus::from_raw(0));
    }
}

impl Processes {
    /// `guest-exec`.
    pub fn spawn(&mut self, req: &mut ExecRequest<'_>, out: &mut Out<'_>) -> Result<(), HostError> {
        let input = match &req.input_data {
            Some(arg) => {
                let mut text = vec![0u8; arg.max_len()];
                let text = arg.decode_into(&mut text).ok_or(HostError::Message(
                    "Base64 data contains invalid characters",
                ))?;
                Some(decode_base64(text)?)
            }
            None => None,
        };
        let args = collect(&mut req.args);
        let env = (!req.env.is_absent()).then(|| collect(&mut req.env));
        let path = OsStr::from_bytes(req.path);
        let mut shown = String::from_utf8_lossy(req.path).into_owned();
        for a in &args {
            shown.push(' ');
            shown.push_str(&String::from_utf8_lossy(a));
        }
        info!("guest-exec called: \"{shown}\"");

        let mut cmd = Command::new(path);
        cmd.args(args.iter().map(|a| OsStr::from_bytes(a)));
        cmd.env_remove(crate::daemon::CHILD_ENV);
        if let Some(env) = &env {
            cmd.env_clear();
            for entry in env {
                let (k, v) = match entry.iter().position(|&b| b == b'=') {
                    Some(i) => (
                        entry.get(..i).unwrap_or(&[]),
                        entry.get(i + 1..).unwrap_or(&[]),
                    ),
                    None => (entry.as_slice(), &b""[..]),
                };
                cmd.env(OsStr::from_bytes(k), OsStr::from_bytes(v));
            }
        }
        let (out_pipe, err_pipe) = match req.capture {
            Capture::None => (false, false),
            Capture::Stdout => (true, false),
            Capture::Stderr => (false, true),
            Capture::Separated => (true, true),
            Capture::Merged => (true, false),
        };
        let has_output = req.capture != Capture::None;
        let merged = req.capture == Capture::Merged;
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut merged_err = None;
        if merged {
            // stdout and stderr on the same pipe (qemu-ga dup2()s stdout onto stderr).
            let (r, w) = std::io::pipe().map_err(|e| HostError::Os(crate::errno::errno_of(&e)))?;
            let w2 = w
                .try_clone()
                .map_err(|e| HostError::Os(crate::errno::errno_of(&e)))?;
            cmd.stdout(w);
            cmd.stderr(w2);
            merged_err = Some(r);
        } else {
            cmd.stdout(if out_pipe {
                Stdio::piped()
            } else {
                Stdio::null()
            });
            cmd.stderr(if err_pipe {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            message(
                format!(
                    "Guest agent command failed, error was 'Failed to execute child process \u{201c}{}\u{201d} ({})'",
                    String::from_utf8_lossy(req.path),
                    crate::config::io_message(&e)
                ),
                HostError::Os(crate::errno::errno_of(&e)),
            )
        })?;
        drop(cmd);
        let pid = i64::from(child.id());
        let shared = Arc::new(Mutex::new(Shared::default()));
        {
            let mut s = lock(&shared);
            // Streams that are not captured count as closed from the start.
            s.out.closed = !(out_pipe || merged);
            s.err.closed = !err_pipe;
        }
        if let Some(data) = input
            && let Some(mut stdin) = child.stdin.take()
        {
            let _ = std::thread::Builder::new()
                .stack_size(THREAD_STACK)
                .spawn(move || {
                    if let Err(e) = stdin.write_all(&data) {
                        crate::logging::warning!(
                            "qga: i/o error writing to input_data channel: {}",
                            crate::config::io_message(&e)
                        );
                    }
                });
        }
        if let Some(r) = merged_err {
            reader(r, Arc::clone(&shared), false);
        }
        if let Some(o) = child.stdout.take() {
            reader(o, Arc::clone(&shared), false);
        }
        if let Some(e) = child.stderr.take() {
            reader(e, Arc::clone(&shared), true);
        }
        waiter(child, Arc::clone(&shared));
        self.running.insert(pid, Process { shared, has_output });
        out.value(&GuestExec { pid });
        Ok(())
    }

    /// `guest-exec-status`.
    pub fn status(&mut self, pid: i64, out: &mut Out<'_>) -> Result<(), HostError> {
        info!("guest-exec-status called, pid: {}", pid as u32);
        let Some(proc_) = self.running.get(&pid) else {
            return Err(HostError::Message("Invalid parameter 'pid'"));
        };
        let shared = Arc::clone(&proc_.shared);
        let s = lock(&shared);
        let mut exited = s.status.is_some();
        if proc_.has_output {
            exited &= s.out.closed && s.err.closed;
        }
        if !exited {
            out.value(&GuestExecStatus::RUNNING);
            return Ok(());
        }
        let status = s.status.unwrap_or_else(|| ExitStatus::from_raw(0));
        let (out_len, err_len) = (s.out.data.len(), s.err.data.len());
        out.value(&GuestExecStatus {
            exitcode: status.code().map(i64::from),
            err_data: (err_len > 0).then_some(Base64(&s.err.data)),
            out_data: (out_len > 0).then_some(Base64(&s.out.data)),
            err_truncated: (err_len > 0).then_some(s.err.truncated),
            signal: if status.code().is_none() {
                status.signal().map(i64::from)
            } else {
                None
            },
            out_truncated: (out_len > 0).then_some(s.out.truncated),
            exited: true,
        });
        drop(s);
        self.running.remove(&pid);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glib_base64() {
        assert_eq!(decode_base64(b"aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64(b"aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64(b"").unwrap(), b"");
        // Unpadded input: GLib decodes complete quads only.
        assert_eq!(decode_base64(b"QQ").unwrap(), b"");
        assert!(decode_base64(b"a b").is_err());
        assert_eq!(decode_base64(b"aGVs\nbG8=").unwrap(), b"hello");
    }
}
