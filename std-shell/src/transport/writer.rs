//! A buffered `embedded_io::Write` over a non-blocking descriptor.
//!
//! qemu-ga retries `write()` in a busy loop on EAGAIN (a large reply to a slow host burns a CPU
//! for as long as it takes). Here EAGAIN waits in `poll()` for POLLOUT instead. A port that
//! reports HUP without POLLOUT (a virtio-serial port whose host side went away mid-reply) fails
//! the write rather than waiting forever. A stop signal that arrives while waiting aborts the
//! write unless it must be ignored (frozen filesystems).

use std::io::ErrorKind;
use std::os::fd::BorrowedFd;

use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;

use crate::signals::Signals;

/// Size of the output buffer.
pub const WRITE_BUFFER: usize = 64 * 1024;

/// Buffers reply bytes and writes them to the channel.
pub struct FdWriter<'a> {
    fd: BorrowedFd<'a>,
    buf: &'a mut Vec<u8>,
    signals: &'a Signals,
    ignore_signals: bool,
}

impl<'a> FdWriter<'a> {
    /// A writer to `fd` using `buf` (emptied first) as its buffer. With `ignore_signals`, stop
    /// signals received while waiting are consumed and dropped (qemu-ga ignores them while
    /// frozen).
    pub fn new(
        fd: BorrowedFd<'a>,
        buf: &'a mut Vec<u8>,
        signals: &'a Signals,
        ignore_signals: bool,
    ) -> Self {
        buf.clear();
        FdWriter {
            fd,
            buf,
            signals,
            ignore_signals,
        }
    }

    fn write_all_fd(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            match rustix::io::write(self.fd, data) {
                Ok(n) => data = data.get(n..).unwrap_or(&[]),
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => self.wait_writable()?,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn wait_writable(&mut self) -> std::io::Result<()> {
        loop {
            let sigfd = self.signals.fd();
            let mut fds = [
                PollFd::new(&self.fd, PollFlags::OUT),
                PollFd::new(&sigfd, PollFlags::IN),
            ];
            match poll(&mut fds, None) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
            let [out, sig] = fds;
            if sig.revents().contains(PollFlags::IN) && self.signals.receive() {
                if self.ignore_signals {
                    self.signals.clear();
                } else {
                    return Err(ErrorKind::Interrupted.into());
                }
            }
            let ev = out.revents();
            if ev.contains(PollFlags::OUT) {
                return Ok(());
            }
            if ev.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL) {
                return Err(ErrorKind::BrokenPipe.into());
            }
        }
    }

    fn flush_buf(&mut self) -> std::io::Result<()> {
        let data = std::mem::take(self.buf);
        let result = self.write_all_fd(&data);
        *self.buf = data;
        self.buf.clear();
        result
    }
}

impl embedded_io::ErrorType for FdWriter<'_> {
    type Error = std::io::Error;
}

impl embedded_io::Write for FdWriter<'_> {
    fn write(&mut self, data: &[u8]) -> Result<usize, Self::Error> {
        if self.buf.len() + data.len() > WRITE_BUFFER {
            self.flush_buf()?;
            if data.len() >= WRITE_BUFFER {
                self.write_all_fd(data)?;
                return Ok(data.len());
            }
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.flush_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_io::Write;
    use std::io::Read;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn large_writes_wait_for_the_reader() {
        let signals = Signals::install().unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            b.read_to_end(&mut all).unwrap();
            all
        });
        let mut buf = Vec::new();
        let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        {
            let mut w = FdWriter::new(a.as_fd(), &mut buf, &signals, false);
            for chunk in payload.chunks(1000) {
                w.write_all(chunk).unwrap();
            }
            w.write_all(&payload[..10]).unwrap();
            w.flush().unwrap();
        }
        drop(a);
        let got = reader.join().unwrap();
        assert_eq!(got.len(), payload.len() + 10);
        assert_eq!(&got[..payload.len()], &payload[..]);
    }

    #[test]
    fn a_closed_peer_fails_the_write() {
        let signals = Signals::install().unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        drop(b);
        let mut buf = Vec::new();
        let mut w = FdWriter::new(a.as_fd(), &mut buf, &signals, false);
        w.write_all(b"{}\n").unwrap();
        assert!(w.flush().is_err());
    }
}
