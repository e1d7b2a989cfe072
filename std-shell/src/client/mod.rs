//! The host side: a blocking client for a guest agent (qemu-ga, or qga) that does not trust
//! the guest.
//!
//! [`Connection`] drives the sans-IO state machine of `qga-core` ([`qga_core::client::Client`])
//! over any transport that is `Read + Write + AsFd`: a unix socket ([`connect_unix`]), a vsock
//! port ([`connect_vsock`]), a serial device ([`open_serial`]). It adds what the core leaves to
//! its caller:
//!
//! * **Deadlines** through `poll(2)`: every read and write waits at most until the deadline of
//!   the exchange (the core's per-command timeouts), so a guest that stops reading or writing,
//!   or drips bytes, cannot hold the host longer than that.
//! * **Bounded memory**: replies are kept in a buffer that grows on demand up to about one and a
//!   half times [`ClientConfig::max_reply`] (10 MiB by default); a larger reply is an error.
//! * **Fresh random ids** for every sync and request.
//! * **Automatic resynchronisation**: the first call, and the first call after a timeout or a
//!   protocol error, sends 0xFF + `guest-sync-delimited` first (see the core's documentation for
//!   the procedure and why it is the only one that recovers from any state).
//! * **Typed results**: [`Connection::call`] decodes the `return` value into the types of
//!   [`qga_core::types`], [`Connection::call_raw`] hands over the validated reply for printing
//!   ([`json::write_value`]).
//! * Copies of guest files and running guest programs ([`Connection::read_file`],
//!   [`Connection::write_file`], [`Connection::exec`]), with checks of every count the guest
//!   reports.
//!
//! Errors are typed ([`Error`]) and map to the exit codes of `qga-client` ([`exit`]).
//!
//! ```no_run
//! use qga::client::{connect_unix, ClientConfig, Error};
//! use qga_core::types::{GuestExec, GuestOSInfo, GuestTime};
//!
//! # fn main() -> Result<(), Error> {
//! let mut conn = connect_unix("/run/qga.sock", ClientConfig::default())?;
//! conn.sync()?; // optional: the first call syncs by itself
//! conn.execute("guest-ping")?;
//!
//! let time: GuestTime = conn.call("guest-get-time")?;
//! time.check()?;
//! println!("guest time: {} ns", time.0);
//!
//! let os: GuestOSInfo<'_> = conn.call("guest-get-osinfo")?;
//! if let Some(name) = os.pretty_name {
//!     println!("guest OS: {}", String::from_utf8_lossy(name.0));
//! }
//!
//! // Arguments as JSON text (what `virsh qemu-agent-command` takes) ...
//! let pid: GuestExec = conn.call_json("guest-exec", Some(br#"{"path": "/bin/true"}"#))?;
//! pid.check()?;
//! // ... or any `serde::Serialize` value, and the raw reply for printing.
//! if let Some(reply) = conn.call_raw("guest-get-users", None)? {
//!     qga::client::json::write_value(&mut std::io::stdout(), reply.msg, reply.value, true)
//!         .map_err(|e| Error::Local { what: "stdout".into(), source: e })?;
//! }
//!
//! // A guest program, its output captured by the agent.
//! let status = conn.exec(b"/bin/echo", &[&b"hello"[..]], &mut std::io::stdout(), &mut std::io::stderr())?;
//! assert_eq!(status.code, Some(0));
//! # Ok(())
//! # }
//! ```

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod buffer;
mod error;
mod ids;
pub mod json;
mod ops;
mod transport;

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::time::Instant;

use qga_core::client::de::{DeError, from_value};
use qga_core::client::{Client, Outcome, Reply, RequestError};
use qga_core::json::string::Chars;
use qga_core::types::{List, ListItem};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;

pub use error::{Error, Printable, PrintableBytes, Violation, exit};
pub use ops::{ExecStatus, Progress};
pub use qga_core::client::{ClientConfig, DEFAULT_MAX_REPLY, SyncMode, Timeouts};
pub use transport::{Stream, VsockAddr, connect_unix, connect_vsock, open_serial};

use buffer::ReplyBuffer;
use ids::IdSource;

/// Bytes read from the transport at a time.
const READ_SIZE: usize = 64 * 1024;

/// A connection to a guest agent over `T`.
///
/// One request is outstanding at a time; every call blocks until its answer, its deadline, or
/// a failure. After [`Error::Timeout`] or [`Error::Protocol`] the connection stays usable: the
/// next call synchronises again first. After [`Error::Closed`] or [`Error::Io`] every call fails
/// with [`Error::Closed`].
pub struct Connection<T: Read + Write + AsFd> {
    io: T,
    client: Client<ReplyBuffer>,
    origin: Instant,
    input: Vec<u8>,
    /// Received bytes not fed to the client yet: `input[start..end]`.
    start: usize,
    end: usize,
    /// The request being sent.
    out: Vec<u8>,
    /// Where decoded strings and base64 payloads of the last reply go.
    arena: Vec<u8>,
    ids: IdSource,
    /// A request went out only partly (the exchange ended early): the agent may hold half a
    /// request, so sync (whose 0xFF flushes it) before the next one.
    needs_sync: bool,
    closed: bool,
}

impl<T: Read + Write + AsFd + std::fmt::Debug> std::fmt::Debug for Connection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("io", &self.io)
            .field("synced", &self.is_synced())
            .field("closed", &self.closed)
            .field("dropped", &self.client.dropped())
            .finish_non_exhaustive()
    }
}

impl<T: Read + Write + AsFd> Connection<T> {
    /// Wraps an open transport (set to non-blocking mode: the deadlines rely on `poll(2)`).
    ///
    /// # Errors
    ///
    /// When the descriptor's flags cannot be changed.
    pub fn new(io: T, config: ClientConfig) -> io::Result<Self> {
        use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
        let flags = fcntl_getfl(&io)?;
        fcntl_setfl(&io, flags | OFlags::NONBLOCK)?;
        Ok(Connection {
            io,
            client: Client::new(
                ReplyBuffer::new(ReplyBuffer::cap_for(config.max_reply)),
                config,
            ),
            origin: Instant::now(),
            input: vec![0; READ_SIZE],
            start: 0,
            end: 0,
            out: Vec::new(),
            arena: Vec::new(),
            ids: IdSource::new(),
            needs_sync: false,
            closed: false,
        })
    }

    /// The configuration (limits, sync mode, timeouts).
    pub fn config(&self) -> &ClientConfig {
        self.client.config()
    }

    /// The transport.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// Gives the transport back.
    pub fn into_inner(self) -> T {
        self.io
    }

    /// True when a request may go out without a sync first.
    pub fn is_synced(&self) -> bool {
        self.client.is_ready() && !self.needs_sync
    }

    /// Replies dropped so far because they were stale (another id) or arrived while syncing.
    pub fn dropped(&self) -> u32 {
        self.client.dropped()
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Synchronises with the agent: 0xFF, then `guest-sync-delimited` with a fresh id (or plain
    /// `guest-sync`, see [`SyncMode`]), skipping everything until the reply with that id. Calls
    /// do this by themselves when needed.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when no matching reply arrives within the sync timeout;
    /// [`Error::Closed`], [`Error::Io`].
    pub fn sync(&mut self) -> Result<(), Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        self.out.clear();
        let (now, id) = (self.now(), self.ids.next_id());
        // Writing into a `Vec` cannot fail.
        let _ = self.client.write_sync(now, id, &mut self.out);
        self.needs_sync = false;
        match self.drive()? {
            Outcome::Synced => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Marks the connection as synchronised without sending anything (`qga-client --no-sync`).
    ///
    /// Only safe on a channel nobody used before: a stale reply, or half a request left in the
    /// agent by an earlier client, can then be taken for (or corrupt) the next exchange. Later
    /// resynchronisations (after a timeout) still happen.
    pub fn assume_synced(&mut self) {
        self.client.assume_synced();
        self.needs_sync = false;
    }

    /// Runs `command` without arguments and decodes its `return` value into `R` (a type of
    /// [`qga_core::types`], an integer, `()` for `{}`, ...). Borrowed data in `R` points into
    /// this connection's buffers and lives until the next call.
    ///
    /// # Errors
    ///
    /// [`Error::Agent`] for an error reply; [`Error::Protocol`] when the value does not decode
    /// into `R`; [`Error::NoReply`] for commands without a success reply; the errors of the
    /// exchange ([`Error::Timeout`], [`Error::Closed`], ...).
    pub fn call<'s, R: serde::Deserialize<'s>>(&'s mut self, command: &str) -> Result<R, Error> {
        self.request(|c, now, id, out| c.write_request(now, command, None::<&()>, id, out))?;
        self.decode()
    }

    /// Like [`Connection::call`], with arguments: any `serde::Serialize` value written as a JSON
    /// object (a `#[derive(Serialize)]` struct with the schema's member names; `None` members are
    /// left out).
    ///
    /// # Errors
    ///
    /// As [`Connection::call`]; [`Error::Arguments`] when `args` cannot be written as QEMU JSON.
    pub fn call_with<'s, A, R>(&'s mut self, command: &str, args: &A) -> Result<R, Error>
    where
        A: serde::Serialize + ?Sized,
        R: serde::Deserialize<'s>,
    {
        self.request(|c, now, id, out| c.write_request(now, command, Some(args), id, out))?;
        self.decode()
    }

    /// Like [`Connection::call`], with the arguments given as JSON text (one object, checked
    /// with the agent's own parser and sent as given).
    ///
    /// # Errors
    ///
    /// As [`Connection::call`]; [`Error::Arguments`] when the text is not one JSON object.
    pub fn call_json<'s, R: serde::Deserialize<'s>>(
        &'s mut self,
        command: &str,
        args_json: Option<&[u8]>,
    ) -> Result<R, Error> {
        self.request(|c, now, id, out| c.write_request_raw(now, command, args_json, id, out))?;
        self.decode()
    }

    /// Runs `command` with optional JSON-text arguments and returns the validated reply
    /// (`reply.value` is the `return` value; print it with [`json::write_value`]), or `None`
    /// when a command without a success reply completed (the agent went quiet or away).
    ///
    /// # Errors
    ///
    /// [`Error::Agent`] for an error reply; [`Error::Arguments`]; the errors of the exchange.
    pub fn call_raw(
        &mut self,
        command: &str,
        args_json: Option<&[u8]>,
    ) -> Result<Option<Reply<'_>>, Error> {
        match self
            .request(|c, now, id, out| c.write_request_raw(now, command, args_json, id, out))?
        {
            Outcome::Done => Ok(None),
            _ => self
                .client
                .reply()
                .map(Some)
                .ok_or(Error::Protocol(Violation::NotAReply)),
        }
    }

    /// Runs `command` without arguments and ignores its return value. Commands without a success
    /// reply (`guest-shutdown`, `guest-suspend-*`) succeed when the agent goes quiet or closes
    /// the connection.
    ///
    /// # Errors
    ///
    /// [`Error::Agent`] for an error reply; the errors of the exchange.
    pub fn execute(&mut self, command: &str) -> Result<(), Error> {
        self.request(|c, now, id, out| c.write_request(now, command, None::<&()>, id, out))
            .map(drop)
    }

    /// [`Connection::execute`] with arguments (as for [`Connection::call_with`]).
    ///
    /// # Errors
    ///
    /// As [`Connection::execute`]; [`Error::Arguments`].
    pub fn execute_with<A: serde::Serialize + ?Sized>(
        &mut self,
        command: &str,
        args: &A,
    ) -> Result<(), Error> {
        self.request(|c, now, id, out| c.write_request(now, command, Some(args), id, out))
            .map(drop)
    }

    /// One exchange: sync first if needed, write the request with a fresh id, wait for its
    /// outcome. Returns [`Outcome::Return`] or [`Outcome::Done`].
    fn request<F>(&mut self, write: F) -> Result<Outcome, Error>
    where
        F: FnOnce(
            &mut Client<ReplyBuffer>,
            u64,
            i64,
            &mut Vec<u8>,
        ) -> Result<(), RequestError<core::convert::Infallible>>,
    {
        if self.closed {
            return Err(Error::Closed);
        }
        if !self.is_synced() {
            self.sync()?;
        }
        self.out.clear();
        let (now, id) = (self.now(), self.ids.next_id());
        write(&mut self.client, now, id, &mut self.out).map_err(|e| match e {
            RequestError::Arguments => Error::Arguments,
            _ => Error::Io(io::Error::other("request out of order")),
        })?;
        match self.drive()? {
            outcome @ (Outcome::Return | Outcome::Done) => Ok(outcome),
            Outcome::Error => Err(self.agent_error()),
            other => Err(unexpected(other)),
        }
    }

    /// The class and description of the error reply just received.
    fn agent_error(&self) -> Error {
        let Some(reply) = self.client.reply() else {
            return Error::Protocol(Violation::BadError);
        };
        Error::Agent {
            class: reply.error_class().map(decode_text).unwrap_or_default(),
            desc: reply.error_desc().map(decode_text).unwrap_or_default(),
        }
    }

    /// Decodes the last `return` value into `R`, with an arena as large as the reply (decoded
    /// strings and base64 payloads are never longer than their JSON text).
    fn decode<'s, R: serde::Deserialize<'s>>(&'s mut self) -> Result<R, Error> {
        let Connection { client, arena, .. } = self;
        let reply = client.reply().ok_or(Error::NoReply)?;
        let need = reply.msg.text.len();
        if arena.len() < need {
            // A fresh zeroed allocation: pages nobody writes to are never touched.
            *arena = Vec::new();
            arena
                .try_reserve_exact(need)
                .map_err(|_| Error::Protocol(Violation::TooLarge))?;
            arena.resize(need, 0);
        }
        Ok(from_value(reply.msg, reply.value, arena.as_mut_slice())?)
    }

    /// Sends `self.out` and feeds what arrives to the client until the exchange ends.
    fn drive(&mut self) -> Result<Outcome, Error> {
        let mut sent = 0;
        let result = self.drive_inner(&mut sent);
        if sent < self.out.len() {
            self.needs_sync = true;
        }
        match result? {
            Outcome::Failed(e) => Err(e.into()),
            outcome => Ok(outcome),
        }
    }

    fn drive_inner(&mut self, sent: &mut usize) -> Result<Outcome, Error> {
        loop {
            if let Some(outcome) = self.feed_pending() {
                return Ok(outcome);
            }
            let now = self.now();
            let Some(deadline) = self.client.deadline() else {
                return Err(Error::Io(io::Error::other("no exchange in progress")));
            };
            if now >= deadline {
                if let Some(outcome) = self.client.handle_timeout(now) {
                    return Ok(outcome);
                }
            }
            let want_write = *sent < self.out.len();
            let mut flags = PollFlags::IN;
            if want_write {
                flags |= PollFlags::OUT;
            }
            let timeout = timespec_ms(deadline.saturating_sub(now));
            let mut fds = [PollFd::new(&self.io, flags)];
            match poll(&mut fds, Some(&timeout)) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => return Err(Error::Io(e.into())),
            }
            let revents = fds.first().map_or(PollFlags::empty(), PollFd::revents);
            if revents.is_empty() {
                continue;
            }
            if revents.contains(PollFlags::NVAL) {
                return self.io_error(io::Error::from(io::ErrorKind::InvalidInput));
            }
            if want_write && revents.intersects(PollFlags::OUT | PollFlags::ERR | PollFlags::HUP) {
                let pending = self.out.get(*sent..).unwrap_or_default();
                match self.io.write(pending) {
                    Ok(0) => return self.eof(),
                    Ok(n) => *sent += n,
                    Err(e) if retry(&e) => {}
                    Err(e) if gone(&e) => return self.eof(),
                    Err(e) => return self.io_error(e),
                }
            }
            if revents.intersects(PollFlags::IN | PollFlags::ERR | PollFlags::HUP) {
                // Everything buffered was fed above.
                self.start = 0;
                self.end = 0;
                match self.io.read(&mut self.input) {
                    Ok(0) => return self.eof(),
                    Ok(n) => self.end = n,
                    Err(e) if retry(&e) => {}
                    Err(e) if gone(&e) => return self.eof(),
                    Err(e) => return self.io_error(e),
                }
            }
        }
    }

    /// Feeds buffered input to the client; returns the outcome if the exchange ended.
    fn feed_pending(&mut self) -> Option<Outcome> {
        while self.start < self.end {
            let now = self.now();
            let chunk = self.input.get(self.start..self.end)?;
            let (used, outcome) = self.client.handle_input(now, chunk);
            self.start = self.start.saturating_add(used).min(self.end);
            if outcome.is_some() {
                return outcome;
            }
            if used == 0 {
                break;
            }
        }
        None
    }

    fn eof(&mut self) -> Result<Outcome, Error> {
        self.closed = true;
        self.client.handle_eof().ok_or(Error::Closed)
    }

    fn io_error(&mut self, e: io::Error) -> Result<Outcome, Error> {
        self.closed = true;
        let _ = self.client.handle_eof();
        Err(Error::Io(e))
    }
}

fn retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// The other end went away (the agent or QEMU closed the channel).
fn gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

fn unexpected(outcome: Outcome) -> Error {
    match outcome {
        Outcome::Failed(e) => e.into(),
        _ => Error::Io(io::Error::other("unexpected outcome of an exchange")),
    }
}

/// A `poll(2)` timeout of `ms` milliseconds.
pub(crate) fn timespec_ms(ms: u64) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(ms / 1000).unwrap_or(i64::MAX),
        tv_nsec: i64::try_from((ms % 1000) * 1_000_000).unwrap_or(0),
    }
}

/// Decodes the elements of a list of a decoded reply one at a time, each into `T`, and calls
/// `f(index, element)`: lists are not decoded into memory as a whole (see
/// [`qga_core::types::List`]). Returns the number of elements.
///
/// # Errors
///
/// [`Error::Protocol`] when an element does not decode (or `f` fails).
pub fn for_each<T, F>(list: &List<'_, T>, f: F) -> Result<usize, Error>
where
    T: ListItem,
    F: for<'r> FnMut(usize, T::Of<'r>) -> Result<(), DeError>,
{
    match list {
        List::Json(raw) => {
            // Decoded strings are never longer than their JSON text.
            let mut arena = vec![0u8; raw.text().len()];
            Ok(raw.decode_each::<T, F>(&mut arena, f)?)
        }
        List::Items([]) => Ok(0),
        List::Items(_) => Err(Error::Protocol(Violation::Inconsistent(
            "a list that was not read from a reply",
        ))),
    }
}

/// Decodes a string token (as the guest wrote it, quotes included) into text.
pub(crate) fn decode_text(tok: &[u8]) -> String {
    Chars::new(tok)
        .map(|c| {
            c.ok()
                .and_then(char::from_u32)
                .unwrap_or(char::REPLACEMENT_CHARACTER)
        })
        .collect()
}
