//! The channel to the host: virtio-serial, isa-serial, unix-listen and vsock-listen.
//!
//! [`Channel::next`] blocks until bytes arrive or a stop signal is received; replies are
//! written through [`writer::FdWriter`] on [`Channel::output`]. The agent (and so the JSON
//! parser's state) lives outside the channel and survives reconnects, as in qemu-ga.
//!
//! # The virtio-serial no-host case
//!
//! While no host process has the port's chardev open, Linux reports POLLHUP (and POLLIN, with
//! `read()` returning 0) on the port without end. qemu-ga sleeps 100 ms per wake-up, a 10 Hz
//! poll for as long as the host is away. Here the port is registered edge-triggered with epoll:
//! the kernel's virtio console driver wakes the port's wait queue when the host opens or closes
//! its end (`VIRTIO_CONSOLE_PORT_OPEN`) and when data arrives, so after draining the port the
//! agent sleeps until something really changes; the host is noticed at once. Two guards bound
//! the cost of anything unexpected: at most one read every 100 ms while the port reports HUP
//! (qemu-ga's rate, so never worse), and a 5 s safety wake-up in case a kernel failed to wake
//! the queue. Descriptors that epoll refuses (regular files, /dev/null) fall back to qemu-ga's
//! 100 ms sleep.
//!
//! # A host that has just attached
//!
//! The guest driver learns that the host opened its end from a control message handled later,
//! in a workqueue, while the host's first bytes wake the reader straight from the interrupt. A
//! busy or high-priority guest can therefore read a request and write its reply while the port
//! still says "no host" (writes would block, POLLHUP). Treating that as a lost host drops the
//! reply the host is waiting for (seen in the VM test with the agent reniced). So the reply
//! writer waits, on the same edge-triggered epoll set, for the port to report the host (see
//! [`Output`]), and gives up only after [`HOST_ATTACH_GRACE`].

pub mod writer;

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, epoll, poll};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::config::io_message;
use crate::logging::{debug, warning};
use crate::signals::Signals;
use qga::vsock::VsockAddr;

/// qemu-ga's transport methods.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Method {
    /// `virtio-serial`
    VirtioSerial,
    /// `isa-serial`
    IsaSerial,
    /// `unix-listen`
    UnixListen,
    /// `vsock-listen`
    VsockListen,
}

impl Method {
    /// Parses a method name.
    pub fn parse(name: &OsStr) -> Option<Method> {
        match name.as_bytes() {
            b"virtio-serial" => Some(Method::VirtioSerial),
            b"isa-serial" => Some(Method::IsaSerial),
            b"unix-listen" => Some(Method::UnixListen),
            b"vsock-listen" => Some(Method::VsockListen),
            _ => None,
        }
    }
}

/// What [`Channel::next`] produced.
#[derive(Debug)]
pub enum Next {
    /// This many bytes were read into the buffer.
    Data(usize),
    /// A stop signal (its number) arrived.
    Signal(i32),
    /// The channel failed ("error reading channel").
    Error(std::io::Error),
}

/// How long a disconnected virtio port is left alone at least between two reads.
const HUP_MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Safety wake-up while waiting for a disconnected port's host.
const HUP_SAFETY_WAKEUP: Duration = Duration::from_secs(5);
/// How long a reply waits for a port that reports no host (see the module docs). If the host
/// really left, a host attaching within this time receives the rest of the stale reply, which
/// its sync discards (qemu-ga retries such a write until it succeeds, however long that takes).
pub const HOST_ATTACH_GRACE: Duration = Duration::from_secs(10);

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

/// Polls `fd` for `events` together with the signal pipe: the events of `fd`, and whether the
/// pipe is readable. EINTR is a normal end of the wait (the caller loops).
fn poll_with_signals(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    signals: &Signals,
    timeout: Option<Duration>,
) -> Result<(PollFlags, bool), Errno> {
    let ts = timeout.map(timespec);
    let sigfd = signals.fd();
    let mut fds = [PollFd::new(&fd, events), PollFd::new(&sigfd, PollFlags::IN)];
    match poll(&mut fds, ts.as_ref()) {
        Ok(_) | Err(Errno::INTR) => {}
        Err(e) => return Err(e),
    }
    let [chan, sig] = fds;
    Ok((chan.revents(), sig.revents().contains(PollFlags::IN)))
}

/// Polls `fd` for `events` together with the signal pipe. Returns the events of `fd`, or
/// `Err(signal)` when a stop signal is pending.
fn wait(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    signals: &Signals,
    timeout: Option<Duration>,
) -> Result<PollFlags, i32> {
    // Other poll errors just end this wait too; the caller loops.
    let (ev, sig) =
        poll_with_signals(fd, events, signals, timeout).unwrap_or((PollFlags::empty(), false));
    if sig
        && signals.receive()
        && let Some(s) = signals.take()
    {
        return Err(s);
    }
    Ok(ev)
}

/// Sleeps up to `d`, waking early for a stop signal.
fn sleep(d: Duration, signals: &Signals) -> Result<(), i32> {
    let deadline = Instant::now() + d;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        let ts = timespec(left);
        let sigfd = signals.fd();
        let mut fds = [PollFd::new(&sigfd, PollFlags::IN)];
        let _ = poll(&mut fds, Some(&ts));
        if fds[0].revents().contains(PollFlags::IN)
            && let Some(s) = signals.take()
        {
            return Err(s);
        }
    }
}

/// A port: virtio-serial or isa-serial. Always the same descriptor for reading and writing.
pub struct Port {
    fd: OwnedFd,
    /// Edge-triggered epoll set holding the port, for the no-host wait (None: not supported).
    epoll: Option<OwnedFd>,
    /// When the port last reported "no host".
    last_hup: Option<Instant>,
    /// Whether "received EOF" was logged for the current disconnection.
    eof_logged: bool,
}

impl Port {
    fn new(fd: OwnedFd) -> Port {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)
            .ok()
            .filter(|ep| {
                epoll::add(
                    ep,
                    &fd,
                    epoll::EventData::new_u64(0),
                    // OUT too: the host attaching makes the port writable before it has data.
                    epoll::EventFlags::IN | epoll::EventFlags::OUT | epoll::EventFlags::ET,
                )
                .is_ok()
            });
        Port {
            fd,
            epoll,
            last_hup: None,
            eof_logged: false,
        }
    }

    fn next(&mut self, buf: &mut [u8], signals: &Signals) -> Next {
        loop {
            match rustix::io::read(&self.fd, &mut *buf) {
                Ok(0) => {
                    if !self.eof_logged {
                        debug!("received EOF");
                        self.eof_logged = true;
                    }
                    if let Err(sig) = self.wait_for_host(signals) {
                        return Next::Signal(sig);
                    }
                }
                Ok(n) => {
                    self.eof_logged = false;
                    return Next::Data(n);
                }
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => match wait(self.fd.as_fd(), PollFlags::IN, signals, None) {
                    Err(sig) => return Next::Signal(sig),
                    Ok(ev) if ev.contains(PollFlags::HUP) && !ev.contains(PollFlags::IN) => {
                        if let Err(sig) = self.wait_for_host(signals) {
                            return Next::Signal(sig);
                        }
                    }
                    Ok(_) => {}
                },
                Err(e) => return Next::Error(e.into()),
            }
        }
    }

    /// The port has no host: wait until the kernel says something changed (see module docs).
    fn wait_for_host(&mut self, signals: &Signals) -> Result<(), i32> {
        if let Some(last) = self.last_hup {
            let since = last.elapsed();
            if since < HUP_MIN_INTERVAL {
                sleep(HUP_MIN_INTERVAL - since, signals)?;
            }
        }
        self.last_hup = Some(Instant::now());
        let Some(ep) = &self.epoll else {
            // No epoll for this descriptor: qemu-ga's 100 ms sleep.
            return sleep(HUP_MIN_INTERVAL, signals);
        };
        // poll() on the epoll descriptor tells whether an edge is queued without consuming
        // anything we need; the queued events are then drained below.
        let (_, sig) =
            poll_with_signals(ep.as_fd(), PollFlags::IN, signals, Some(HUP_SAFETY_WAKEUP))
                .unwrap_or((PollFlags::empty(), false));
        if sig && let Some(s) = signals.take() {
            return Err(s);
        }
        drain(ep.as_fd());
        Ok(())
    }
}

/// Consumes the edges queued in an epoll set (without waiting).
fn drain(ep: BorrowedFd<'_>) {
    let mut events: Vec<epoll::Event> = Vec::with_capacity(4);
    let _ = epoll::wait(
        ep,
        rustix::buffer::spare_capacity(&mut events),
        Some(&timespec(Duration::ZERO)),
    );
}

/// A listening socket (unix or vsock) and at most one client.
pub struct Listener {
    listener: OwnedFd,
    client: Option<OwnedFd>,
}

impl Listener {
    fn next(&mut self, buf: &mut [u8], signals: &Signals) -> Next {
        loop {
            let Some(client) = &self.client else {
                match wait(self.listener.as_fd(), PollFlags::IN, signals, None) {
                    Err(sig) => return Next::Signal(sig),
                    Ok(ev) if ev.contains(PollFlags::IN) => {}
                    Ok(_) => continue,
                }
                match rustix::net::accept_with(
                    &self.listener,
                    SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
                ) {
                    Ok(fd) => self.client = Some(fd),
                    Err(Errno::AGAIN | Errno::INTR | Errno::CONNABORTED) => {}
                    Err(e) => {
                        warning!(
                            "error converting fd to gsocket: {}",
                            crate::errno::strerror(e.raw_os_error())
                        );
                        // Do not spin on a persistent accept error.
                        if let Err(sig) = sleep(HUP_MIN_INTERVAL, signals) {
                            return Next::Signal(sig);
                        }
                    }
                }
                continue;
            };
            match rustix::io::read(client, &mut *buf) {
                Ok(0) => {
                    debug!("received EOF");
                    self.client = None;
                }
                Ok(n) => return Next::Data(n),
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => {
                    if let Err(sig) = wait(client.as_fd(), PollFlags::IN, signals, None) {
                        return Next::Signal(sig);
                    }
                }
                Err(e) => {
                    // qemu-ga stops its main loop here; dropping just this client keeps the
                    // agent reachable for the next one.
                    warning!("error reading channel");
                    debug!(
                        "client read error: {}",
                        crate::errno::strerror(e.raw_os_error())
                    );
                    self.client = None;
                }
            }
        }
    }
}

/// An open channel.
pub enum Channel {
    /// virtio-serial or isa-serial.
    Port(Port),
    /// unix-listen or vsock-listen.
    Listen(Listener),
}

impl Channel {
    /// Opens the channel for `method` on `path` (qemu-ga's `ga_channel_open`), or uses the
    /// listening socket `listen_fd` (socket activation, or handed over by the daemonizing parent).
    ///
    /// # Errors
    ///
    /// qemu-ga's message for the failure (logged as critical by the caller).
    pub fn open(
        method: Method,
        path: &OsStr,
        listen_fd: Option<OwnedFd>,
    ) -> Result<Channel, String> {
        match method {
            Method::VirtioSerial => {
                let fd = match listen_fd {
                    Some(fd) => fd,
                    None => open_virtio(path)?,
                };
                Ok(Channel::Port(Port::new(fd)))
            }
            Method::IsaSerial => {
                let fd = match listen_fd {
                    Some(fd) => fd,
                    None => open_serial(path)?,
                };
                Ok(Channel::Port(Port::new(fd)))
            }
            Method::UnixListen => {
                let listener = match listen_fd {
                    Some(fd) => fd,
                    None => unix_listen(path)?,
                };
                Ok(Channel::Listen(Listener {
                    listener,
                    client: None,
                }))
            }
            Method::VsockListen => {
                let listener = match listen_fd {
                    Some(fd) => fd,
                    None => vsock_listen(path)?,
                };
                Ok(Channel::Listen(Listener {
                    listener,
                    client: None,
                }))
            }
        }
    }

    /// The descriptor that represents the channel (the port, or the listening socket): what a
    /// daemonizing parent hands to its child.
    pub fn handle(&self) -> BorrowedFd<'_> {
        match self {
            Channel::Port(p) => p.fd.as_fd(),
            Channel::Listen(l) => l.listener.as_fd(),
        }
    }

    /// Blocks until input, a stop signal, or a channel error.
    pub fn next(&mut self, buf: &mut [u8], signals: &Signals) -> Next {
        match self {
            Channel::Port(p) => p.next(buf, signals),
            Channel::Listen(l) => l.next(buf, signals),
        }
    }

    /// Where replies go: the port, or the current client.
    pub fn output(&self) -> Option<Output<'_>> {
        match self {
            Channel::Port(p) => Some(Output {
                fd: p.fd.as_fd(),
                host_wait: p.epoll.as_ref().map(AsFd::as_fd),
            }),
            Channel::Listen(l) => l.client.as_ref().map(|c| Output {
                fd: c.as_fd(),
                host_wait: None,
            }),
        }
    }
}

/// Where a reply is written.
#[derive(Clone, Copy, Debug)]
pub struct Output<'a> {
    /// The descriptor (non-blocking).
    pub fd: BorrowedFd<'a>,
    /// For a port: an edge-triggered epoll set holding it, which becomes readable when the
    /// port's state changes. A port reporting "no host" is then waited for (up to
    /// [`HOST_ATTACH_GRACE`]) instead of failing the write; a socket's hang-up is final.
    pub host_wait: Option<BorrowedFd<'a>>,
}

fn errno_text(e: Errno) -> &'static str {
    crate::errno::strerror(e.raw_os_error())
}

/// Opens a virtio-serial port. When `/dev/virtio-ports/<name>` does not exist (minimal guests
/// without udev have no such links), the port is looked up by name in sysfs and opened as
/// `/dev/vportNpM`.
fn open_virtio(path: &OsStr) -> Result<OwnedFd, String> {
    let flags = OFlags::RDWR | OFlags::NONBLOCK | OFlags::CLOEXEC;
    match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(Errno::NOENT) => {
            if let Some(dev) = find_virtio_port(path)
                && let Ok(fd) = rustix::fs::open(&dev, flags, Mode::empty())
            {
                debug!(
                    "using {} for {}",
                    dev.to_string_lossy(),
                    path.to_string_lossy()
                );
                return Ok(fd);
            }
            Err(open_error(path, Errno::NOENT))
        }
        Err(e) => Err(open_error(path, e)),
    }
}

fn open_error(path: &OsStr, e: Errno) -> String {
    format!(
        "error opening channel '{}': {}",
        path.to_string_lossy(),
        errno_text(e)
    )
}

/// `/dev/virtio-ports/<name>` → the `/dev/vportNpM` whose sysfs `name` is `<name>`.
fn find_virtio_port(path: &OsStr) -> Option<OsString> {
    find_virtio_port_in(path, Path::new("/sys/class/virtio-ports"))
}

fn find_virtio_port_in(path: &OsStr, sysfs: &Path) -> Option<OsString> {
    let name = Path::new(path)
        .strip_prefix("/dev/virtio-ports")
        .ok()?
        .as_os_str()
        .as_bytes();
    if name.is_empty() || name.contains(&b'/') {
        return None;
    }
    let mut entries: Vec<_> = std::fs::read_dir(sysfs).ok()?.flatten().collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    entries.into_iter().find_map(|entry| {
        let port_name = std::fs::read(entry.path().join("name")).ok()?;
        let port_name = port_name.strip_suffix(b"\n").unwrap_or(&port_name);
        (port_name == name).then(|| {
            let mut dev = b"/dev/".to_vec();
            dev.extend_from_slice(entry.file_name().as_bytes());
            OsString::from_vec(dev)
        })
    })
}

/// Opens an isa-serial port in raw mode at 38400 baud, flushing pending input (qemu-ga's
/// settings; its `tcgetattr`/`tcsetattr` failures are ignored, and so are ours).
fn open_serial(path: &OsStr) -> Result<OwnedFd, String> {
    use rustix::termios::{
        InputModes, LocalModes, OptionalActions, OutputModes, QueueSelector, SpecialCodeIndex,
        tcflush, tcgetattr, tcsetattr,
    };
    let fd = rustix::fs::open(
        path,
        OFlags::RDWR | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| open_error(path, e))?;
    if let Ok(mut tio) = tcgetattr(&fd) {
        tio.input_modes.remove(
            InputModes::IGNBRK
                | InputModes::BRKINT
                | InputModes::IGNPAR
                | InputModes::PARMRK
                | InputModes::INPCK
                | InputModes::ISTRIP
                | InputModes::INLCR
                | InputModes::IGNCR
                | InputModes::ICRNL
                | InputModes::IXON
                | InputModes::IXOFF
                | InputModes::IXANY
                | InputModes::IMAXBEL,
        );
        tio.output_modes = OutputModes::empty();
        tio.local_modes = LocalModes::empty();
        let _ = tio.set_speed(38400);
        tio.special_codes[SpecialCodeIndex::VMIN] = 1;
        tio.special_codes[SpecialCodeIndex::VTIME] = 0;
        let _ = tcflush(&fd, QueueSelector::IFlush);
        let _ = tcsetattr(&fd, OptionalActions::Now, &tio);
    }
    Ok(fd)
}

/// QEMU's `unix_listen()`: unlink whatever is at the path, bind, listen with backlog 1.
fn unix_listen(path: &OsStr) -> Result<OwnedFd, String> {
    let shown = path.to_string_lossy();
    let sock = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| format!("Failed to create Unix socket: {}", errno_text(e)))?;
    let addr =
        SocketAddrUnix::new(path).map_err(|_| format!("UNIX socket path '{shown}' is too long"))?;
    match rustix::fs::unlink(path) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => {
            return Err(format!(
                "Failed to unlink socket {shown}: {}",
                errno_text(e)
            ));
        }
    }
    rustix::net::bind(&sock, &addr)
        .map_err(|e| format!("Failed to bind socket to {shown}: {}", errno_text(e)))?;
    rustix::net::listen(&sock, 1)
        .map_err(|e| format!("Failed to listen on socket: {}", errno_text(e)))?;
    Ok(sock)
}

/// QEMU's `vsock_parse` + `parse_uint_full`: `<cid>:<port>`, both decimal and 32-bit.
///
/// # Errors
///
/// QEMU's message.
pub fn parse_vsock(text: &OsStr) -> Result<VsockAddr, String> {
    let shown = text.to_string_lossy();
    let bytes = text.as_bytes();
    // sscanf("%32[^:]:%32[^,]%n"): 1-32 bytes up to ':', ':', 1-32 bytes up to ','.
    let colon = bytes.iter().position(|&b| b == b':');
    let (cid, rest) = match colon {
        Some(i) if (1..=32).contains(&i) => (
            bytes.get(..i).unwrap_or(&[]),
            bytes.get(i + 1..).unwrap_or(&[]),
        ),
        _ => return Err(format!("error parsing address '{shown}'")),
    };
    let port_len = rest.iter().take_while(|&&b| b != b',').count().min(32);
    if port_len == 0 {
        return Err(format!("error parsing address '{shown}'"));
    }
    if port_len != rest.len() {
        return Err(format!("trailing characters in address '{shown}'"));
    }
    let number = |field: &[u8]| -> Option<u32> {
        let t = std::str::from_utf8(field).ok()?;
        let t = t.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
        let t = t.strip_prefix('+').unwrap_or(t);
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse::<u64>().ok().and_then(|v| u32::try_from(v).ok())
    };
    let cid_v = number(cid)
        .ok_or_else(|| format!("Failed to parse cid '{}'", String::from_utf8_lossy(cid)))?;
    let port_v = number(rest)
        .ok_or_else(|| format!("Failed to parse port '{}'", String::from_utf8_lossy(rest)))?;
    Ok(VsockAddr {
        cid: cid_v,
        port: port_v,
    })
}

/// QEMU's `vsock_listen_saddr` with backlog 1.
fn vsock_listen(path: &OsStr) -> Result<OwnedFd, String> {
    let addr = parse_vsock(path)?;
    let sock = rustix::net::socket_with(
        AddressFamily::VSOCK,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| format!("Failed to create socket: {}", errno_text(e)))?;
    rustix::net::bind(&sock, &addr)
        .map_err(|e| format!("Failed to bind socket: {}", errno_text(e)))?;
    rustix::net::listen(&sock, 1)
        .map_err(|e| format!("Failed to listen on socket: {}", errno_text(e)))?;
    Ok(sock)
}

/// The method of a socket handed over by systemd: from its address family.
pub fn method_of_socket(fd: BorrowedFd<'_>) -> Option<Method> {
    let addr = rustix::net::getsockname(fd).ok()?;
    match addr.address_family() {
        AddressFamily::UNIX => Some(Method::UnixListen),
        AddressFamily::VSOCK => Some(Method::VsockListen),
        _ => None,
    }
}

/// Text of an I/O error for log lines.
pub fn io_text(e: &std::io::Error) -> String {
    io_message(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn vsock_addresses_like_qemu() {
        assert_eq!(
            parse_vsock(OsStr::new("3:1234")),
            Ok(VsockAddr { cid: 3, port: 1234 })
        );
        assert_eq!(
            parse_vsock(OsStr::new("4294967295:1")),
            Ok(VsockAddr {
                cid: u32::MAX,
                port: 1
            })
        );
        assert_eq!(
            parse_vsock(OsStr::new("foo")),
            Err("error parsing address 'foo'".into())
        );
        assert_eq!(
            parse_vsock(OsStr::new(":1")),
            Err("error parsing address ':1'".into())
        );
        assert_eq!(
            parse_vsock(OsStr::new("1:")),
            Err("error parsing address '1:'".into())
        );
        assert_eq!(
            parse_vsock(OsStr::new("1:2,x")),
            Err("trailing characters in address '1:2,x'".into())
        );
        assert_eq!(
            parse_vsock(OsStr::new("3:12x")),
            Err("Failed to parse port '12x'".into())
        );
        assert_eq!(
            parse_vsock(OsStr::new("99999999999:1")),
            Err("Failed to parse cid '99999999999'".into())
        );
        assert_eq!(
            parse_vsock(OsStr::new("x:1")),
            Err("Failed to parse cid 'x'".into())
        );
        let long = format!("{}:1", "1".repeat(33));
        assert_eq!(
            parse_vsock(OsStr::new(&long)),
            Err(format!("error parsing address '{long}'"))
        );
    }

    #[test]
    fn sysfs_port_lookup() {
        let dir = std::env::temp_dir().join(format!("qga-sysfs-{}", std::process::id()));
        for (port, name) in [
            ("vport1p1", "com.redhat.spice.0"),
            ("vport1p2", "org.qemu.guest_agent.0"),
        ] {
            std::fs::create_dir_all(dir.join(port)).unwrap();
            std::fs::write(dir.join(port).join("name"), format!("{name}\n")).unwrap();
        }
        assert_eq!(
            find_virtio_port_in(OsStr::new("/dev/virtio-ports/org.qemu.guest_agent.0"), &dir),
            Some(OsString::from("/dev/vport1p2"))
        );
        assert_eq!(
            find_virtio_port_in(OsStr::new("/dev/virtio-ports/nope"), &dir),
            None
        );
        assert_eq!(find_virtio_port_in(OsStr::new("/dev/ttyS0"), &dir), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unix_listen_replaces_files_and_serves_clients_in_turn() {
        let signals = Signals::install().unwrap();
        let dir = std::env::temp_dir().join(format!("qga-unix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sock");
        std::fs::write(&path, b"a regular file").unwrap();
        let mut chan = Channel::open(Method::UnixListen, path.as_os_str(), None).unwrap();
        let mut buf = [0u8; 64];
        for round in 0..2u8 {
            let mut c = UnixStream::connect(&path).unwrap();
            c.write_all(&[b'a' + round]).unwrap();
            match chan.next(&mut buf, &signals) {
                Next::Data(1) => assert_eq!(buf[0], b'a' + round),
                other => panic!("{other:?}"),
            }
            let out = chan.output().unwrap();
            assert!(out.host_wait.is_none(), "a socket's hang-up is final");
            rustix::io::write(out.fd, b"ok").unwrap();
            let mut reply = [0u8; 2];
            c.read_exact(&mut reply).unwrap();
            assert_eq!(&reply, b"ok");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn too_long_unix_path() {
        let long = format!("/tmp/{}", "x".repeat(200));
        let err = Channel::open(Method::UnixListen, OsStr::new(&long), None)
            .err()
            .unwrap();
        assert_eq!(err, format!("UNIX socket path '{long}' is too long"));
    }

    #[test]
    fn hung_up_port_does_not_spin() {
        // A socket whose peer is gone reports POLLHUP and EOF forever, like a virtio port
        // without a host. Count how often the port is read within 350 ms.
        let signals = Signals::install().unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        drop(b);
        let mut port = Port::new(OwnedFd::from(a));
        let mut buf = [0u8; 16];
        let start = Instant::now();
        let mut reads = 0;
        while start.elapsed() < Duration::from_millis(350) {
            if let Ok(0) = rustix::io::read(&port.fd, &mut buf) {
                reads += 1;
                port.wait_for_host(&signals).unwrap();
            }
        }
        assert!(reads <= 5, "{reads} reads");
    }

    /// Makes a FIFO at `path` and returns its read end (non-blocking) after a writer came and
    /// went: it then polls as HUP with EOF and never as writable, the shape of a virtio port
    /// whose driver says "no host", and the kernel wakes it when a writer opens the FIFO.
    pub(super) fn hung_up_fifo(path: &Path) -> OwnedFd {
        let _ = std::fs::remove_file(path);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty()).unwrap();
        drop(std::fs::OpenOptions::new().write(true).open(path).unwrap());
        fd
    }

    #[test]
    fn fifo_writer_arrival_wakes_the_port_at_once() {
        // A FIFO read end without writers reports HUP+EOF, and the kernel wakes its wait queue
        // when a writer opens it: the same shape as a virtio port whose host connects.
        let signals = Signals::install().unwrap();
        let dir = std::env::temp_dir().join(format!("qga-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("fifo");
        let mut chan = Channel::Port(Port::new(hung_up_fifo(&path)));
        let writer_path = path.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let mut w = std::fs::OpenOptions::new()
                .write(true)
                .open(&writer_path)
                .unwrap();
            w.write_all(b"hello").unwrap();
            std::thread::sleep(Duration::from_millis(100));
        });
        let start = Instant::now();
        let mut buf = [0u8; 16];
        match chan.next(&mut buf, &signals) {
            Next::Data(5) => assert_eq!(&buf[..5], b"hello"),
            other => panic!("{other:?}"),
        }
        // Without the wake-up on the writer's arrival the port would sleep until the safety
        // wake-up (5 s). The bound tells the two apart with room for a loaded machine; the
        // writer arrives after 300 ms.
        let waited = start.elapsed();
        assert!(waited < HUP_SAFETY_WAKEUP / 2, "{waited:?}");
        t.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
