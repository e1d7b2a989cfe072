//! A client for any guest agent listening on a unix socket (qemu-ga or the `qga` binary).

use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::escape::escape_window;
use crate::{Delivery, fence, fence_reply};

/// Why an exchange with an agent failed. Carries whatever the agent had answered so far.
#[derive(Debug)]
pub struct ExchangeError {
    /// What went wrong.
    pub message: String,
    /// Every byte received before the failure.
    pub received: Vec<u8>,
}

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; received so far ({} bytes): {}",
            self.message,
            self.received.len(),
            escape_window(&self.received, self.received.len(), 2000)
        )
    }
}

impl std::error::Error for ExchangeError {}

/// One connection to an agent on a unix socket.
#[derive(Debug)]
pub struct SocketClient {
    stream: UnixStream,
    path: PathBuf,
    timeout: Duration,
}

impl SocketClient {
    /// Connects to `path`, retrying (the agent may not be listening yet) until `timeout` passes.
    /// `timeout` is also the limit for each later exchange.
    pub fn connect(path: &Path, timeout: Duration) -> io::Result<Self> {
        let deadline = Instant::now() + timeout;
        loop {
            match UnixStream::connect(path) {
                Ok(stream) => {
                    return Ok(Self {
                        stream,
                        path: path.to_owned(),
                        timeout,
                    });
                }
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    thread::sleep(Duration::from_millis(10));
                }
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot connect to {}: {e}", path.display()),
                    ));
                }
            }
        }
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends `stream` followed by the fence (see [`crate::fence`]) and returns every byte the agent
    /// answered, up to and including the fence's own `\xff{"return": fence_id}\n`.
    pub fn exchange_fenced(
        &mut self,
        stream: &[u8],
        fence_id: u64,
        delivery: Delivery,
    ) -> Result<Vec<u8>, ExchangeError> {
        let mut data = Vec::with_capacity(stream.len() + 80);
        data.extend_from_slice(stream);
        let stream_len = data.len();
        data.extend_from_slice(&fence(fence_id));
        self.send_and_read_until(&data, stream_len, &fence_reply(fence_id), delivery)
    }

    /// Writes `data` (from a separate thread, so that a large answer cannot dead-lock against a
    /// large request) and reads until the answer ends with `terminator`. With
    /// [`Delivery::Chunks`], the first `chunked_len` bytes are written in pieces with a short
    /// pause between them, so that the agent sees them in separate reads.
    pub fn send_and_read_until(
        &mut self,
        data: &[u8],
        chunked_len: usize,
        terminator: &[u8],
        delivery: Delivery,
    ) -> Result<Vec<u8>, ExchangeError> {
        let fail = |message: String, received: Vec<u8>| ExchangeError { message, received };
        let deadline = Instant::now() + self.timeout;
        self.stream
            .set_write_timeout(Some(self.timeout))
            .map_err(|e| fail(format!("set_write_timeout: {e}"), Vec::new()))?;
        let mut writer = self
            .stream
            .try_clone()
            .map_err(|e| fail(format!("cannot clone the socket: {e}"), Vec::new()))?;
        let owned = data.to_vec();
        let writer_thread =
            thread::spawn(move || write_delivery(&mut writer, &owned, chunked_len, delivery));

        let mut received = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let outcome = loop {
            let now = Instant::now();
            if now >= deadline {
                break Err(format!(
                    "timed out after {:?} waiting for {:?}",
                    self.timeout,
                    crate::escape::escape_bytes(terminator)
                ));
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            if let Err(e) = self.stream.set_read_timeout(Some(wait)) {
                break Err(format!("set_read_timeout: {e}"));
            }
            match self.stream.read(&mut buf) {
                Ok(0) => break Err("the agent closed the connection".to_owned()),
                Ok(n) => {
                    let search_from = received.len().saturating_sub(terminator.len());
                    received.extend_from_slice(buf.get(..n).unwrap_or_default());
                    if let Some(pos) =
                        find(received.get(search_from..).unwrap_or_default(), terminator)
                    {
                        let end = search_from + pos + terminator.len();
                        if end != received.len() {
                            break Err(format!(
                                "{} unexpected bytes after the fence reply",
                                received.len() - end
                            ));
                        }
                        break Ok(());
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(format!("read error: {e}")),
            }
        };
        let write_result = writer_thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the writer thread panicked")));
        match (outcome, write_result) {
            (Ok(()), Ok(())) => Ok(received),
            (Ok(()), Err(e)) => Err(fail(format!("write error: {e}"), received)),
            (Err(m), Ok(())) => Err(fail(m, received)),
            (Err(m), Err(e)) => Err(fail(format!("{m} (and write error: {e})"), received)),
        }
    }
}

fn write_delivery(
    writer: &mut UnixStream,
    data: &[u8],
    chunked_len: usize,
    delivery: Delivery,
) -> io::Result<()> {
    match delivery {
        Delivery::Whole => writer.write_all(data)?,
        Delivery::Chunks(size) => {
            let (head, tail) = data.split_at(chunked_len.min(data.len()));
            for piece in head.chunks(size.max(1)) {
                writer.write_all(piece)?;
                writer.flush()?;
                thread::sleep(Duration::from_millis(2));
            }
            writer.write_all(tail)?;
        }
    }
    writer.flush()
}

/// The position of the first occurrence of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}
