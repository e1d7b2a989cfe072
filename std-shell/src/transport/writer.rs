//! A buffered `embedded_io::Write` over a non-blocking descriptor.
//!
//! qemu-ga retries `write()` in a busy loop on EAGAIN (a large reply to a slow host burns a CPU
//! for as long as it takes). Here EAGAIN waits in `poll()` for POLLOUT instead. A socket that
//! hangs up fails the write at once. A port that reports HUP without POLLOUT may be one whose
//! host has just attached and whose driver has not processed that yet (see the transport's
//! module docs): the write waits for the port's state to change, without spinning, and fails
//! only after [`HOST_ATTACH_GRACE`]; later writes through the same writer then fail at once. A
//! stop signal that arrives while waiting aborts the write unless it must be ignored (frozen
//! filesystems).

use std::io::ErrorKind;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use rustix::event::PollFlags;
use rustix::io::Errno;

use super::{HOST_ATTACH_GRACE, Output, drain, poll_with_signals};
use crate::signals::Signals;

/// Size of the output buffer.
pub const WRITE_BUFFER: usize = 64 * 1024;

/// Buffers reply bytes and writes them to the channel.
pub struct FdWriter<'a> {
    fd: BorrowedFd<'a>,
    host_wait: Option<BorrowedFd<'a>>,
    buf: &'a mut Vec<u8>,
    signals: &'a Signals,
    ignore_signals: bool,
    grace: Duration,
    /// Set once the port stayed without a host for the whole grace period.
    host_gone: bool,
    /// How many times this writer waited in `poll()` (tests check it does not spin).
    polls: u32,
}

impl<'a> FdWriter<'a> {
    /// A writer to `out` using `buf` (emptied first) as its buffer. With `ignore_signals`, stop
    /// signals received while waiting are consumed and dropped (qemu-ga ignores them while
    /// frozen).
    pub fn new(
        out: Output<'a>,
        buf: &'a mut Vec<u8>,
        signals: &'a Signals,
        ignore_signals: bool,
    ) -> Self {
        buf.clear();
        FdWriter {
            fd: out.fd,
            host_wait: out.host_wait,
            buf,
            signals,
            ignore_signals,
            grace: HOST_ATTACH_GRACE,
            host_gone: false,
            polls: 0,
        }
    }

    fn write_all_fd(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        if self.host_gone {
            return Err(ErrorKind::BrokenPipe.into());
        }
        let mut hup_since = None;
        while !data.is_empty() {
            match rustix::io::write(self.fd, data) {
                Ok(n) => {
                    data = data.get(n..).unwrap_or(&[]);
                    hup_since = None;
                }
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => self.wait_writable(&mut hup_since)?,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Waits until the descriptor is writable. `hup_since` is when the current "no host"
    /// stretch began (for the grace period).
    fn wait_writable(&mut self, hup_since: &mut Option<Instant>) -> std::io::Result<()> {
        loop {
            let ev = self.wait_for(self.fd, PollFlags::OUT, None)?;
            if ev.contains(PollFlags::OUT) {
                return Ok(());
            }
            if ev.intersects(PollFlags::ERR | PollFlags::NVAL) {
                return Err(ErrorKind::BrokenPipe.into());
            }
            if !ev.contains(PollFlags::HUP) {
                continue;
            }
            let Some(host_wait) = self.host_wait else {
                return Err(ErrorKind::BrokenPipe.into());
            };
            let since = *hup_since.get_or_insert_with(Instant::now);
            let left = self.grace.saturating_sub(since.elapsed());
            if left.is_zero() {
                self.host_gone = true;
                return Err(ErrorKind::BrokenPipe.into());
            }
            // The port's wait queue is woken when the host attaches; the epoll set records it.
            self.wait_for(host_wait, PollFlags::IN, Some(left))?;
            drain(host_wait);
        }
    }

    /// Polls `fd` for `events` together with the signal pipe; the events of `fd`.
    fn wait_for(
        &mut self,
        fd: BorrowedFd<'_>,
        events: PollFlags,
        timeout: Option<Duration>,
    ) -> std::io::Result<PollFlags> {
        self.polls = self.polls.saturating_add(1);
        let (ev, sig) = poll_with_signals(fd, events, self.signals, timeout)?;
        if sig && self.signals.receive() {
            if self.ignore_signals {
                self.signals.clear();
            } else {
                return Err(ErrorKind::Interrupted.into());
            }
        }
        Ok(ev)
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
    use rustix::event::epoll;
    use std::io::Read;
    use std::os::fd::{AsFd, OwnedFd};
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
            let mut w = FdWriter::new(socket(&a), &mut buf, &signals, false);
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
        let mut w = FdWriter::new(socket(&a), &mut buf, &signals, false);
        w.write_all(b"{}\n").unwrap();
        assert!(w.flush().is_err());
    }

    fn socket(s: &UnixStream) -> Output<'_> {
        Output {
            fd: s.as_fd(),
            host_wait: None,
        }
    }

    /// A hung-up FIFO (a virtio port whose driver says "no host") with its epoll set:
    /// (fifo, epoll).
    fn hung_up_port(name: &str) -> (OwnedFd, OwnedFd) {
        let dir = std::env::temp_dir().join(format!("qga-w-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fd = crate::transport::tests::hung_up_fifo(&dir.join("fifo"));
        std::fs::remove_dir_all(&dir).unwrap();
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
        epoll::add(
            &ep,
            &fd,
            epoll::EventData::new_u64(0),
            epoll::EventFlags::IN | epoll::EventFlags::OUT | epoll::EventFlags::ET,
        )
        .unwrap();
        (fd, ep)
    }

    #[test]
    fn a_hung_up_socket_fails_at_once() {
        let signals = Signals::install().unwrap();
        let (fd, _ep) = hung_up_port("socket");
        let mut buf = Vec::new();
        let out = Output {
            fd: fd.as_fd(),
            host_wait: None,
        };
        let mut w = FdWriter::new(out, &mut buf, &signals, false);
        let start = Instant::now();
        let err = w.wait_writable(&mut None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe);
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_port_without_host_is_waited_for_then_given_up_without_spinning() {
        let signals = Signals::install().unwrap();
        let (fd, ep) = hung_up_port("port");
        let mut buf = Vec::new();
        let out = Output {
            fd: fd.as_fd(),
            host_wait: Some(ep.as_fd()),
        };
        let mut w = FdWriter::new(out, &mut buf, &signals, false);
        w.grace = Duration::from_millis(300);
        let start = Instant::now();
        let err = w.wait_writable(&mut None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe);
        assert!(start.elapsed() >= Duration::from_millis(300));
        // One edge queued when the port was registered, then one wait to the deadline: a
        // handful of polls, not a spin.
        assert!(w.polls <= 6, "{} polls", w.polls);
        // The host is considered gone for the rest of this writer: no second wait (counted,
        // not timed: the machine may be loaded).
        let polls = w.polls;
        assert!(w.write_all_fd(b"{}\n").is_err());
        assert_eq!(w.polls, polls, "waited again for a host already given up");
    }
}
