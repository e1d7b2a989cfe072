//! Opening the host end of an agent channel: a unix socket, a vsock port, a serial device.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use qga_core::client::ClientConfig;
use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;
use rustix::net::addr::SocketAddrArg;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use super::{Connection, Error, timespec_ms};
pub use crate::vsock::VsockAddr;

/// A byte stream over a file descriptor (a vsock socket, a serial device): `read(2)` and
/// `write(2)`, nothing else.
#[derive(Debug)]
pub struct Stream {
    fd: OwnedFd,
}

impl Stream {
    /// Wraps an open descriptor.
    pub fn new(fd: OwnedFd) -> Self {
        Stream { fd }
    }
}

impl From<OwnedFd> for Stream {
    fn from(fd: OwnedFd) -> Self {
        Stream { fd }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(rustix::io::read(&self.fd, buf)?)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(rustix::io::write(&self.fd, buf)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Connects to an agent channel's unix socket (the host end of a QEMU `-chardev socket`, or an
/// agent started with `-m unix-listen`), within the sync timeout of `config`.
///
/// The connect itself is non-blocking: a listener whose backlog is full (QEMU accepts one client
/// at a time) makes this retry until the timeout instead of hanging.
///
/// # Errors
///
/// [`Error::Connect`] when the socket does not exist, refuses, or the timeout passes.
pub fn connect_unix(
    path: impl AsRef<Path>,
    config: ClientConfig,
) -> Result<Connection<Stream>, Error> {
    let path = path.as_ref();
    let target = path.display().to_string();
    let fail = |source: io::Error| Error::Connect {
        target: target.clone(),
        source,
    };
    let addr = SocketAddrUnix::new(path).map_err(|e| fail(e.into()))?;
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .map_err(|e| fail(e.into()))?;
    connect_within(&fd, &addr, config.timeouts.sync).map_err(fail)?;
    Connection::new(Stream::new(fd), config).map_err(fail)
}

/// Connects to an agent listening on vsock port `port` of the guest with context id `cid`
/// (`qemu-ga -m vsock-listen -p 3:1234` in the guest with `-device vhost-vsock-pci,guest-cid=3`
/// on the host), within the sync timeout of `config`.
///
/// rustix 1.1 knows `AF_VSOCK` but has no vsock address type; [`VsockAddr`] is the
/// `struct sockaddr_vm` it lacks.
///
/// # Errors
///
/// [`Error::Connect`]: no vsock support (`EAFNOSUPPORT`: load `vhost_vsock`), no such guest
/// (`ENODEV`, `EHOSTUNREACH`), nothing listening (`ECONNRESET`, `ECONNREFUSED`), the timeout.
pub fn connect_vsock(
    cid: u32,
    port: u32,
    config: ClientConfig,
) -> Result<Connection<Stream>, Error> {
    let fail = |source: io::Error| Error::Connect {
        target: format!("vsock {cid}:{port}"),
        source,
    };
    let fd = rustix::net::socket_with(
        AddressFamily::VSOCK,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .map_err(|e| fail(e.into()))?;
    connect_within(&fd, &VsockAddr { cid, port }, config.timeouts.sync).map_err(fail)?;
    Connection::new(Stream::new(fd), config).map_err(fail)
}

/// Opens a serial device (a pty or tty that carries the agent channel) in raw mode: no echo, no
/// line editing, no CR/NL translation, 8 bits. Devices that are not terminals (a FIFO, a
/// character device) are used as they are.
///
/// # Errors
///
/// [`Error::Connect`] when the device cannot be opened.
pub fn open_serial(
    path: impl AsRef<Path>,
    config: ClientConfig,
) -> Result<Connection<Stream>, Error> {
    use rustix::fs::{Mode, OFlags};
    use rustix::termios::{OptionalActions, SpecialCodeIndex, tcgetattr, tcsetattr};

    let path = path.as_ref();
    let fail = |source: io::Error| Error::Connect {
        target: path.display().to_string(),
        source,
    };
    let fd = rustix::fs::open(
        path,
        OFlags::RDWR | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail(e.into()))?;
    match tcgetattr(&fd) {
        Ok(mut tio) => {
            tio.make_raw();
            tio.special_codes[SpecialCodeIndex::VMIN] = 1;
            tio.special_codes[SpecialCodeIndex::VTIME] = 0;
            tcsetattr(&fd, OptionalActions::Now, &tio).map_err(|e| fail(e.into()))?;
        }
        // Not a terminal: nothing to configure.
        Err(Errno::NOTTY) => {}
        Err(e) => return Err(fail(e.into())),
    }
    Connection::new(Stream::new(fd), config).map_err(fail)
}

/// `connect(2)` on a non-blocking socket, finished within `timeout_ms`.
fn connect_within(fd: &OwnedFd, addr: &impl SocketAddrArg, timeout_ms: u64) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        match rustix::net::connect(fd, addr) {
            Ok(()) => return Ok(()),
            Err(Errno::INTR) => {}
            // A unix listener with a full backlog: try again shortly.
            Err(Errno::AGAIN) => {
                if Instant::now() >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the listener accepts no connection (is another client connected?)",
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(Errno::INPROGRESS) => {
                let left = deadline.saturating_duration_since(Instant::now());
                let ts = timespec_ms(u64::try_from(left.as_millis()).unwrap_or(u64::MAX));
                let mut fds = [PollFd::new(fd, PollFlags::OUT)];
                if poll(&mut fds, Some(&ts))? == 0 {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
                }
                return match rustix::net::sockopt::socket_error(fd)? {
                    Ok(()) => Ok(()),
                    Err(e) => Err(e.into()),
                };
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_socket_is_a_connect_error() {
        let e = connect_unix("/nonexistent/qga.sock", ClientConfig::default())
            .err()
            .map(|e| e.exit_code());
        assert_eq!(e, Some(super::super::exit::CONNECT));
    }

    #[test]
    fn serial_on_a_non_terminal_is_used_as_is() {
        assert!(open_serial("/dev/null", ClientConfig::default()).is_ok());
        assert!(open_serial("/nonexistent", ClientConfig::default()).is_err());
    }
}
