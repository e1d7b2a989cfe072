//! The benchmark's client side of one connection: raw socket I/O and minimal parsing.
//!
//! Replies are whole lines (JSON escapes every newline inside strings), so a reply ends at the
//! first `\n`. When the reply is known in advance (guest-sync, file data), the received bytes are
//! compared with it as they arrive ([`Conn::read_expected`]): no scan, no parse, just `memcmp`,
//! so the client costs far less than the agent. Anything unexpected falls back to reading the
//! whole line for a precise error.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Longest wait for any read or write before the benchmark gives up on an agent.
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Initial (and resting) size of the receive buffer.
const INITIAL_BUFFER: usize = 256 * 1024;

/// A connection with a receive buffer.
#[derive(Debug)]
pub struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
    /// Start of the bytes not yet consumed.
    pos: usize,
    /// End of the received bytes.
    filled: usize,
}

/// What [`Conn::read_expected`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Exactly the expected bytes.
    AsExpected,
    /// Something else: the whole line that arrived instead (up to and including its `\n`).
    Other(Vec<u8>),
}

impl Conn {
    /// Wraps a connected stream (blocking, with [`IO_TIMEOUT`] on every read and write).
    pub fn new(stream: UnixStream) -> io::Result<Conn> {
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(Conn {
            stream,
            buf: vec![0; INITIAL_BUFFER],
            pos: 0,
            filled: 0,
        })
    }

    /// The socket (for a writer thread: `try_clone`, `shutdown`).
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Writes all of `data`.
    pub fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.stream.write_all(data)
    }

    /// Bytes received and not consumed (after a reply: bytes the agent should not have sent).
    pub fn pending(&self) -> &[u8] {
        self.buf.get(self.pos..self.filled).unwrap_or_default()
    }

    /// Makes room for at least `len` unconsumed bytes, keeping the unconsumed ones.
    fn reserve(&mut self, len: usize) {
        if self.pos == self.filled {
            self.pos = 0;
            self.filled = 0;
        }
        if self.buf.len() - self.pos >= len {
            return;
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.filled, 0);
            self.filled -= self.pos;
            self.pos = 0;
        }
        if self.buf.len() < len {
            self.buf.resize(len.next_power_of_two(), 0);
        }
    }

    /// Gives back the memory of a large reply once everything is consumed.
    fn shrink(&mut self) {
        if self.pos == self.filled && self.buf.len() > 4 * INITIAL_BUFFER {
            self.buf = vec![0; INITIAL_BUFFER];
            self.pos = 0;
            self.filled = 0;
        }
    }

    /// One `read()` into the free part of the buffer (which the caller made non-empty).
    fn fill(&mut self) -> io::Result<usize> {
        if self.filled == self.buf.len() {
            let want = self.filled - self.pos + 1;
            self.reserve(want.max(INITIAL_BUFFER));
            if self.filled == self.buf.len() {
                let len = self.buf.len() * 2;
                self.buf.resize(len, 0);
            }
        }
        let free = self.buf.get_mut(self.filled..).unwrap_or_default();
        let n = loop {
            match self.stream.read(free) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection",
                    ));
                }
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no reply within {IO_TIMEOUT:?}"),
                    ));
                }
                Err(e) => return Err(e),
            }
        };
        self.filled += n;
        Ok(n)
    }

    /// Blocks until at least one byte is available and returns when it arrived.
    pub fn wait_first_byte(&mut self) -> io::Result<Instant> {
        if self.filled == self.pos {
            self.reserve(INITIAL_BUFFER);
            self.fill()?;
        }
        Ok(Instant::now())
    }

    /// The next line, `\n` included.
    pub fn read_line(&mut self) -> io::Result<&[u8]> {
        self.shrink();
        self.read_line_from(0)
    }

    /// The next line, knowing that its first `scanned` bytes contain no `\n`.
    fn read_line_from(&mut self, mut scanned: usize) -> io::Result<&[u8]> {
        loop {
            let unscanned = self
                .buf
                .get(self.pos + scanned..self.filled)
                .unwrap_or_default();
            if let Some(i) = find_newline(unscanned) {
                let start = self.pos;
                let end = start + scanned + i + 1;
                self.pos = end;
                return Ok(self.buf.get(start..end).unwrap_or_default());
            }
            scanned = self.filled - self.pos;
            self.fill()?;
        }
    }

    /// Reads the next reply, comparing it with `expected` (a whole line, `\n` included) as the
    /// bytes arrive. On the first difference, reads the rest of the line and returns it.
    pub fn read_expected(&mut self, expected: &[u8]) -> io::Result<Received> {
        // A large buffer is kept while large replies keep coming (file data): allocating and
        // zero-filling megabytes per reply would cost the client more than comparing them.
        if expected.len() <= INITIAL_BUFFER {
            self.shrink();
        }
        self.reserve(expected.len());
        let mut checked = 0;
        loop {
            let available = self.filled - self.pos;
            let upto = available.min(expected.len());
            let got = self
                .buf
                .get(self.pos + checked..self.pos + upto)
                .unwrap_or_default();
            let want = expected.get(checked..upto).unwrap_or_default();
            if got != want {
                // `expected` holds one `\n`, at its end: the line may have ended anywhere in the
                // differing part, so scan from the last byte known to match.
                let first_diff = got.iter().zip(want).take_while(|(a, b)| a == b).count();
                let line = self.read_line_from(checked + first_diff)?;
                return Ok(Received::Other(line.to_vec()));
            }
            checked = upto;
            if checked == expected.len() {
                self.pos += checked;
                return Ok(Received::AsExpected);
            }
            self.fill()?;
        }
    }
}

/// Position of the first `\n` in `hay`, eight bytes at a time.
pub fn find_newline(hay: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const NEWLINES: u64 = ONES * b'\n' as u64;
    let mut words = hay.chunks_exact(8);
    let mut base = 0;
    for word in &mut words {
        let Ok(bytes) = <[u8; 8]>::try_from(word) else {
            break;
        };
        let x = u64::from_le_bytes(bytes) ^ NEWLINES;
        // The lowest flagged byte is exactly the first zero byte of `x` (borrows only move up).
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return Some(base + (zero.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| base + i)
}
