//! The floor: an in-process echo peer that answers every request line with a fixed reply over a
//! unix socket. A round trip to it costs what any agent's costs at least (two syscalls and two
//! wake-ups on each side) with no parsing at all.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use super::affinity;
use super::conn::Conn;
use super::error::{Context, Error, Result};
use super::procfs;
use super::scratch::ScratchDir;

/// What the echo peer answers to every request line.
pub const ECHO_REPLY: &[u8] = b"{\"return\": {}}\n";

/// A thread serving one connection at a time on a unix socket.
#[derive(Debug)]
pub struct EchoPeer {
    socket: PathBuf,
    tid: u32,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    // Declared last: removed after the thread has stopped.
    _dir: ScratchDir,
}

impl EchoPeer {
    /// Starts the peer's thread (pinned to `cpu` if given), its socket in a fresh directory
    /// under `base`.
    pub fn start(cpu: Option<usize>, base: &std::path::Path) -> Result<EchoPeer> {
        let dir = ScratchDir::new(base, "qga-bench-echo")
            .context(|| format!("cannot create a directory in {}", base.display()))?;
        let socket = dir.path().join("echo.sock");
        let listener =
            UnixListener::bind(&socket).context(|| format!("cannot bind {}", socket.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<u32>>();
        let stop_flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("echo-peer".into())
            .spawn(move || {
                let ready = procfs::current_tid().and_then(|tid| {
                    cpu.map_or(Ok(()), affinity::pin_current_thread)
                        .map(|()| tid)
                });
                let ok = ready.is_ok();
                let _ = ready_tx.send(ready);
                if ok {
                    serve(&listener, &stop_flag);
                }
            })
            .context(|| "cannot start the echo peer thread".into())?;
        let tid = ready_rx
            .recv()
            .map_err(|_| Error::new("the echo peer thread ended during start-up"))??;
        Ok(EchoPeer {
            socket,
            tid,
            stop,
            thread: Some(thread),
            _dir: dir,
        })
    }

    /// A new connection to the peer.
    pub fn connect(&self) -> Result<Conn> {
        UnixStream::connect(&self.socket)
            .and_then(Conn::new)
            .context(|| {
                format!(
                    "cannot connect to the echo peer at {}",
                    self.socket.display()
                )
            })
    }

    /// CPU time (ns) the peer's thread has used.
    pub fn cpu_ns(&self) -> Result<u64> {
        procfs::thread_cpu_ns(self.tid)
    }
}

impl Drop for EchoPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the thread if it waits in accept().
        let _ = UnixStream::connect(&self.socket);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: &UnixListener, stop: &AtomicBool) {
    let mut buf = vec![0u8; 64 * 1024];
    // Answers for up to 4096 requests per write.
    let replies = ECHO_REPLY.repeat(4096);
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut stream) = conn else { continue };
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let requests = buf
                .get(..n)
                .unwrap_or_default()
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            if write_replies(&mut stream, &replies, requests).is_err() {
                break;
            }
        }
    }
}

fn write_replies(stream: &mut UnixStream, replies: &[u8], mut count: usize) -> std::io::Result<()> {
    let per_write = replies.len() / ECHO_REPLY.len();
    while count > 0 {
        let now = count.min(per_write);
        stream.write_all(replies.get(..now * ECHO_REPLY.len()).unwrap_or_default())?;
        count -= now;
    }
    Ok(())
}
