//! The agent: bytes from the host in, replies out.
//!
//! # Call order
//!
//! 1. [`Agent::feed`] with received bytes. It consumes bytes until a reply is due and returns
//!    how many it took.
//! 2. While [`Agent::reply_pending`] is true, call [`Agent::write_reply`]: it runs the command
//!    and streams the whole reply into the writer (zero bytes for commands without a success
//!    reply). Feeding while a reply is pending consumes nothing.
//! 3. Go back to 1 with the bytes not yet consumed.
//!
//! [`Agent::process`] does this loop for a buffer of input; [`Agent::run`] is a blocking driver
//! over any `embedded_io::Read + Write`.

use crate::buffer::FrameBuffer;
use crate::command::args::{self, ArgError, PathName};
use crate::command::{COMMANDS, CommandId, CommandSet, Spec};
use crate::host::{
    ByteSink, Capture, ExecRequest, Host, HostError, Out, Query, ShutdownMode, StrArg, StrList,
    SuspendMode, UNSUPPORTED, Whence,
};
use crate::json::echo::echo;
use crate::json::lexer::Tok;
use crate::json::order::{scratch_for, sort_members, sorted_member};
use crate::json::parse::{Msg, ParseError, Val, number, scratch_needed, validate};
use crate::json::string::{Chars, decode_into, eq_text};
use crate::json::write::JsonWriter;
use crate::proto::{ErrorClass, FILE_READ_DEFAULT, FILE_READ_MAX, Limits};
use crate::stream::{Event, LimitError, Streamer};
use embedded_io::Write;

/// What the agent is configured to do: limits and command filtering.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Parser limits.
    pub limits: Limits,
    /// Commands blocked (`-b`).
    pub blocked: CommandSet,
    /// Commands allowed (`-a`); `None` allows everything.
    pub allowed: Option<CommandSet>,
    /// The `version` member of `guest-info`.
    pub version: &'static str,
    /// The base64 routines for file payloads.
    pub base64: crate::file::Base64Codec,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::QEMU,
            blocked: CommandSet::EMPTY,
            allowed: None,
            version: env!("CARGO_PKG_VERSION"),
            base64: crate::file::Base64Codec::PORTABLE,
        }
    }
}

impl Config {
    /// Blocks a command by name. Unknown names return false and are ignored, as in qemu-ga.
    pub fn block(&mut self, name: &str) -> bool {
        match crate::command::find(name) {
            Some(s) => {
                self.blocked.insert(s.id);
                true
            }
            None => false,
        }
    }

    /// Adds a command to the allow list (creating it). Unknown names return false.
    pub fn allow(&mut self, name: &str) -> bool {
        let set = self.allowed.get_or_insert(CommandSet::EMPTY);
        match crate::command::find(name) {
            Some(s) => {
                set.insert(s.id);
                true
            }
            None => false,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Pending {
    None,
    Event(Event),
}

/// The guest agent's protocol engine. See the module docs for the call order.
pub struct Agent<'w, H: Host, B: FrameBuffer> {
    host: H,
    frame: B,
    work: &'w mut [u8],
    config: Config,
    stream: Streamer,
    pending: Pending,
    frozen: bool,
}

/// Error of the blocking driver [`Agent::run`].
#[derive(Debug)]
pub enum RunError<E> {
    /// The transport failed.
    Io(E),
    /// The peer closed the stream.
    Eof,
}

/// Bytes staged before they reach the writer: replies are written in many small pieces
/// (`": "`, a key, a number), and one write per piece costs more than the piece.
const STAGE: usize = 512;

struct IoSink<'a, W: Write + ?Sized> {
    w: &'a mut W,
    err: Option<W::Error>,
    stage: [u8; STAGE],
    len: usize,
}

impl<'a, W: Write + ?Sized> IoSink<'a, W> {
    fn new(w: &'a mut W) -> Self {
        IoSink {
            w,
            err: None,
            stage: [0; STAGE],
            len: 0,
        }
    }

    /// Writes the staged bytes.
    fn drain(&mut self) -> Result<(), ()> {
        if self.err.is_some() {
            return Err(());
        }
        let staged = self.stage.get(..self.len).unwrap_or(&[]);
        self.len = 0;
        self.w.write_all(staged).map_err(|e| {
            self.err = Some(e);
        })
    }
}

impl<W: Write + ?Sized> ByteSink for IoSink<'_, W> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), ()> {
        if self.err.is_some() {
            return Err(());
        }
        if let Some(dst) = self.stage.get_mut(self.len..self.len + bytes.len()) {
            dst.copy_from_slice(bytes);
            self.len += bytes.len();
            return Ok(());
        }
        self.drain()?;
        if bytes.len() >= STAGE {
            return self.w.write_all(bytes).map_err(|e| {
                self.err = Some(e);
            });
        }
        self.put(bytes)
    }

    fn flush(&mut self) -> Result<(), ()> {
        self.drain()?;
        self.w.flush().map_err(|e| {
            self.err = Some(e);
        })
    }
}

/// The `desc` of an error reply.
pub(crate) enum Desc<'a> {
    Text(&'static str),
    Stray(&'a [u8]),
    Parse(ParseError),
    Member(Val),
    NotFound(Val),
    Disabled(&'static str, &'static str),
    Arg(ArgError),
    Os(&'static str, i32),
    /// The host's own text for its last error ([`HostError::Described`]).
    Described,
    ShutdownMode,
    ReadCount(i64),
    /// `invalid whence code <n>`.
    Whence(i64),
    WriteCount(i64),
}

impl<'w, H: Host, B: FrameBuffer> Agent<'w, H, B> {
    /// An agent over `host`, assembling requests in `frame` and using `work` (at least 1 KiB is
    /// recommended; base64 payloads are streamed through it) as scratch.
    pub fn new(host: H, frame: B, work: &'w mut [u8], config: Config) -> Self {
        Agent {
            host,
            frame,
            work,
            config,
            stream: Streamer::default(),
            pending: Pending::None,
            frozen: false,
        }
    }

    /// The host.
    pub fn host_mut(&mut self) -> &mut H {
        &mut self.host
    }

    /// The host.
    pub fn host(&self) -> &H {
        &self.host
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Enters or leaves frozen state (a daemon restarted with `qga.state.isfrozen` present starts
    /// frozen).
    pub fn set_frozen(&mut self, frozen: bool) {
        self.frozen = frozen;
    }

    /// True while filesystems are frozen: only the six freeze-safe commands run.
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// True while part of a request has been received but not completed.
    pub fn in_request(&self) -> bool {
        self.stream.in_request()
    }

    /// Feeds received bytes; returns how many were consumed (fewer than given once a reply is
    /// due; none while one is pending).
    pub fn feed(&mut self, input: &[u8]) -> usize {
        if self.reply_pending() {
            return 0;
        }
        let (n, ev) = self
            .stream
            .feed(&mut self.frame, input, &self.config.limits);
        if let Some(ev) = ev {
            self.pending = Pending::Event(ev);
        }
        n
    }

    /// True when [`Agent::write_reply`] must be called before feeding more.
    pub fn reply_pending(&self) -> bool {
        !matches!(self.pending, Pending::None)
    }

    /// Feeds all of `input`, writing every reply into `out`.
    pub fn process<W: Write + ?Sized>(
        &mut self,
        mut input: &[u8],
        out: &mut W,
    ) -> Result<(), W::Error> {
        loop {
            while self.reply_pending() {
                self.write_reply(out)?;
            }
            if input.is_empty() {
                // Replies are pushed out once the input is used up (see `write_reply`).
                return out.flush();
            }
            let n = self.feed(input);
            input = input.get(n..).unwrap_or(&[]);
        }
    }

    /// Blocking driver: reads from `io` into `rx` and answers until the peer closes the stream
    /// or the transport fails.
    pub fn run<T: embedded_io::Read + Write>(
        &mut self,
        io: &mut T,
        rx: &mut [u8],
    ) -> Result<(), RunError<T::Error>> {
        loop {
            let n = io.read(rx).map_err(RunError::Io)?;
            if n == 0 {
                return Err(RunError::Eof);
            }
            self.process(rx.get(..n).unwrap_or(&[]), io)
                .map_err(RunError::Io)?;
        }
    }

    /// Runs the pending command (if any) and writes its whole reply into `out`. It does not
    /// flush `out` after the reply, so that replies to pipelined requests leave in one write:
    /// the caller flushes when it has fed all the input it has (as [`Agent::process`] does).
    /// Before a command that may take long (anything but the protocol commands and a few
    /// instant queries) `out` is flushed, so no earlier reply waits for it.
    pub fn write_reply<W: Write + ?Sized>(&mut self, out: &mut W) -> Result<(), W::Error> {
        let pending = core::mem::replace(&mut self.pending, Pending::None);
        let mut sink = IoSink::new(out);
        if let Pending::Event(ev) = pending {
            self.reply(ev, &mut sink);
        }
        if !self.stream.in_request() {
            self.frame.release();
        }
        let _ = sink.drain();
        match sink.err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn reply(&mut self, ev: Event, sink: &mut dyn ByteSink) {
        match ev {
            Event::Stray { start, end } => {
                let text = self.frame.bytes().get(start..end).unwrap_or(&[]);
                // qemu formats the token with %s: a NUL byte ends it.
                let cut = text.iter().position(|&b| b == 0).unwrap_or(text.len());
                let msg = Msg { text: &[] };
                error_reply(
                    sink,
                    &msg,
                    None,
                    &mut [],
                    ErrorClass::GenericError,
                    &Desc::Stray(text.get(..cut).unwrap_or(&[])),
                );
            }
            Event::Limit(l) => {
                warn!("request dropped: {}", l.as_str());
                error_reply(
                    sink,
                    &Msg { text: &[] },
                    None,
                    &mut [],
                    ErrorClass::GenericError,
                    &Desc::Text(l.as_str()),
                );
            }
            Event::Request { len, keys, depth } => self.request(len, keys, depth, sink),
        }
    }

    fn request(&mut self, len: usize, keys: u32, depth: u32, sink: &mut dyn ByteSink) {
        // Scratch in the frame buffer after the request: the parser's index, then the sort
        // orders of echoed objects.
        let need = scratch_needed(keys, depth).max(scratch_for(keys as usize)) + len;
        if self.frame.bytes().len() < need {
            self.frame.grow(need);
        }
        let have = self.frame.bytes().len();
        let (text, scratch) = self.frame.bytes_mut().split_at_mut(len.min(have));
        let msg = Msg { text };
        let no_room = scratch.len() + len < need;
        let result = if no_room {
            Err(ParseError::NoRoom)
        } else {
            validate(text, keys, depth, scratch)
        };
        match result {
            Err(ParseError::NoRoom) => error_reply(
                sink,
                &msg,
                None,
                scratch,
                ErrorClass::GenericError,
                &Desc::Text(LimitError::TokenSize.as_str()),
            ),
            Err(e) => error_reply(
                sink,
                &msg,
                None,
                scratch,
                ErrorClass::GenericError,
                &Desc::Parse(e),
            ),
            Ok(()) => {
                let mut d = Dispatch {
                    host: &mut self.host,
                    work: &mut self.work,
                    config: &self.config,
                    frozen: &mut self.frozen,
                    msg,
                    scratch,
                };
                d.dispatch(sink);
            }
        }
    }
}

struct Dispatch<'a, 'w, H: Host> {
    host: &'a mut H,
    work: &'a mut &'w mut [u8],
    config: &'a Config,
    frozen: &'a mut bool,
    msg: Msg<'a>,
    scratch: &'a mut [u8],
}

struct SinkIo<'s>(&'s mut dyn ByteSink);

impl embedded_io::ErrorType for SinkIo<'_> {
    type Error = embedded_io::ErrorKind;
}

impl Write for SinkIo<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0
            .put(buf)
            .map(|()| buf.len())
            .map_err(|()| embedded_io::ErrorKind::Other)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// What error texts need from the host.
trait HostText {
    fn errno_text(&self, errno: i32) -> &'static str;
    fn described(&self, f: &mut dyn FnMut(&[u8]));
}

impl<H: Host + ?Sized> HostText for H {
    fn errno_text(&self, errno: i32) -> &'static str {
        self.strerror(errno)
    }
    fn described(&self, f: &mut dyn FnMut(&[u8])) {
        self.describe_error(f);
    }
}

/// For replies that involve no host (lexer and parser errors).
struct NoHost;

impl HostText for NoHost {
    fn errno_text(&self, _: i32) -> &'static str {
        "Unknown error"
    }
    fn described(&self, _: &mut dyn FnMut(&[u8])) {}
}

fn write_desc(
    w: &mut JsonWriter<'_, SinkIo<'_>>,
    msg: &Msg<'_>,
    host: &dyn HostText,
    desc: &Desc<'_>,
) -> Result<(), embedded_io::ErrorKind> {
    let text = |w: &mut JsonWriter<'_, SinkIo<'_>>, s: &str| w.string_part(s.as_bytes());
    let token =
        |w: &mut JsonWriter<'_, SinkIo<'_>>, v: Val| -> Result<(), embedded_io::ErrorKind> {
            for cp in Chars::new(msg.bytes(v)).flatten() {
                w.string_char(cp)?;
            }
            Ok(())
        };
    let int = |w: &mut JsonWriter<'_, SinkIo<'_>>, v: i64| -> Result<(), embedded_io::ErrorKind> {
        let mut buf = [0u8; 24];
        w.string_part(fmt_i64(v, &mut buf))
    };
    w.string_begin()?;
    match *desc {
        Desc::Text(s) => text(w, s)?,
        Desc::Stray(t) => {
            text(w, "JSON parse error, stray '")?;
            w.string_part(t)?;
            text(w, "'")?;
        }
        Desc::Parse(e) => {
            text(w, "JSON parse error, ")?;
            match e {
                ParseError::PrematureEoi => text(w, "premature EOI")?,
                ParseError::ExpectingValue => text(w, "expecting value")?,
                ParseError::MissingColon => text(w, "missing : in object pair")?,
                ParseError::KeyNotString => text(w, "key is not a string in object")?,
                ParseError::DuplicateKey => text(w, "duplicate key")?,
                ParseError::SepDict => text(w, "expected separator in dict")?,
                ParseError::SepList => text(w, "expected separator in list")?,
                ParseError::InvalidKeyword(s, e) => {
                    // QEMU formats parser messages into a 1024-byte buffer: the text after
                    // "JSON parse error, " is cut at 1023 bytes (a long keyword loses its
                    // closing quote).
                    const CAP: usize = 1023;
                    const HEAD: &str = "invalid keyword '";
                    let kw = msg.text.get(s..e).unwrap_or(&[]);
                    let room = CAP - HEAD.len();
                    text(w, HEAD)?;
                    w.string_part(kw.get(..room.min(kw.len())).unwrap_or(&[]))?;
                    if kw.len() < room {
                        text(w, "'")?;
                    }
                }
                ParseError::InvalidEscape => text(w, "invalid escape sequence in string")?,
                ParseError::InvalidUnicode(s, e) => {
                    w.string_part(msg.text.get(s..e).unwrap_or(&[]))?;
                    text(w, " is not a valid Unicode character")?;
                }
                ParseError::InvalidUtf8 => text(w, "invalid UTF-8 sequence in string")?,
                ParseError::NoRoom => text(w, LimitError::TokenSize.as_str())?,
            }
        }
        Desc::Member(k) => {
            text(w, "QMP input member '")?;
            token(w, k)?;
            text(w, "' is unexpected")?;
        }
        Desc::NotFound(name) => {
            text(w, "The command ")?;
            token(w, name)?;
            text(w, " has not been found")?;
        }
        Desc::Disabled(name, reason) => {
            text(w, "Command ")?;
            text(w, name)?;
            text(w, " has been disabled")?;
            text(w, reason)?;
        }
        Desc::Arg(e) => {
            let path = |w: &mut JsonWriter<'_, SinkIo<'_>>,
                        p: args::Path|
             -> Result<(), embedded_io::ErrorKind> {
                if let Some((list, i)) = p.outer {
                    text(w, list)?;
                    text(w, "[")?;
                    int(w, i64::from(i))?;
                    text(w, "]")?;
                    if p.name.is_some() {
                        text(w, ".")?;
                    }
                }
                match p.name {
                    Some(PathName::Static(s)) => text(w, s),
                    Some(PathName::Key(k)) => token(w, k),
                    None => Ok(()),
                }
            };
            match e {
                ArgError::Missing(p) => {
                    text(w, "Parameter '")?;
                    path(w, p)?;
                    text(w, "' is missing")?;
                }
                ArgError::Unexpected(p) => {
                    text(w, "Parameter '")?;
                    path(w, p)?;
                    text(w, "' is unexpected")?;
                }
                ArgError::Type(p, ty) => {
                    text(w, "Invalid parameter type for '")?;
                    path(w, p)?;
                    text(w, "', expected: ")?;
                    text(w, ty)?;
                }
                ArgError::Uint64(p) => {
                    text(w, "Parameter '")?;
                    path(w, p)?;
                    text(w, "' expects uint64")?;
                }
                ArgError::EnumValue(name, v) => {
                    text(w, "Parameter '")?;
                    text(w, name)?;
                    text(w, "' does not accept value '")?;
                    token(w, v)?;
                    text(w, "'")?;
                }
                ArgError::AltType(name, ty) => {
                    text(w, "Invalid parameter type for '")?;
                    text(w, name)?;
                    text(w, "', expected: ")?;
                    text(w, ty)?;
                }
            }
        }
        Desc::Os(what, errno) => {
            text(w, what)?;
            text(w, host.errno_text(errno))?;
        }
        Desc::Described => {
            let mut r = Ok(());
            host.described(&mut |bytes| {
                if r.is_ok() {
                    r = w.string_part(bytes);
                }
            });
            r?;
        }
        Desc::ShutdownMode => text(
            w,
            "mode is invalid (valid values are: halt|powerdown|reboot",
        )?,
        Desc::Whence(code) => {
            text(w, "invalid whence code ")?;
            int(w, code)?;
        }
        Desc::ReadCount(c) | Desc::WriteCount(c) => {
            text(w, "value '")?;
            int(w, c)?;
            text(w, "' is invalid for argument count")?;
        }
    }
    w.string_end()
}

pub(crate) fn fmt_i64(v: i64, buf: &mut [u8; 24]) -> &[u8] {
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(slot) = buf.get_mut(i) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        if let Some(slot) = buf.get_mut(i) {
            *slot = b'-';
        }
    }
    buf.get(i..).unwrap_or(&[])
}

/// Writes `{"id": …, "error": {"class": …, "desc": …}}\n` (the `id` part only when given).
fn error_reply(
    sink: &mut dyn ByteSink,
    msg: &Msg<'_>,
    id: Option<Val>,
    scratch: &mut [u8],
    class: ErrorClass,
    desc: &Desc<'_>,
) {
    error_reply_with(sink, msg, id, scratch, class, desc, &NoHost);
}

fn error_reply_with(
    sink: &mut dyn ByteSink,
    msg: &Msg<'_>,
    id: Option<Val>,
    scratch: &mut [u8],
    class: ErrorClass,
    desc: &Desc<'_>,
    host: &dyn HostText,
) {
    let mut io = SinkIo(sink);
    let mut w = JsonWriter::new(&mut io);
    let _ = (|| -> Result<(), embedded_io::ErrorKind> {
        if let Some(id) = id {
            w.raw(b"{\"id\": ")?;
            echo(msg, id, scratch, &mut w)?;
            w.raw(b", \"error\": {\"class\": \"")?;
        } else {
            w.raw(b"{\"error\": {\"class\": \"")?;
        }
        w.raw(class.as_str().as_bytes())?;
        w.raw(b"\", \"desc\": ")?;
        write_desc(&mut w, msg, host, desc)?;
        w.raw(b"}}\n")
    })();
}

/// The top-level `execute`, `arguments` and `id` of a request whose members are exactly those
/// (each at most once, `execute` a string, `arguments` an object), found without sorting; `None`
/// for anything else, which the QDict-order walk then reports.
#[allow(clippy::type_complexity)]
fn well_formed_members(
    msg: &Msg<'_>,
    root: Val,
) -> Option<(Option<Val>, Option<Val>, Option<Val>)> {
    let (mut execute, mut arguments, mut id) = (None, None, None);
    for (k, v) in msg.members(root) {
        let key = msg.bytes(k);
        let slot = if eq_text(key, b"execute") && v.tok == Tok::Str {
            &mut execute
        } else if eq_text(key, b"arguments") && v.tok == Tok::LCurly {
            &mut arguments
        } else if eq_text(key, b"id") {
            &mut id
        } else {
            return None;
        };
        if slot.replace(v).is_some() {
            // A repeated key: QDict keeps one of them; leave that to the full walk.
            return None;
        }
    }
    Some((execute, arguments, id))
}

/// Outcome of a handler.
enum Done {
    /// Reply already streamed through `Out` (the envelope is open, to be closed with the id).
    Streamed,
    /// No reply (success of a command without success response).
    Silent,
    /// `{}` (commands without a return type).
    Empty,
    /// An integer return value.
    Int(i64),
    /// A string return value.
    Str(&'static str),
}

impl<H: Host> Dispatch<'_, '_, H> {
    fn fail(
        &mut self,
        sink: &mut dyn ByteSink,
        id: Option<Val>,
        class: ErrorClass,
        desc: &Desc<'_>,
    ) {
        error_reply_with(sink, &self.msg, id, self.scratch, class, desc, &*self.host);
    }

    /// The top-level members checked in QDict order, as qmp_dispatch iterates them (the first
    /// problem in that order is the one reported); `None` once an error reply was written. The
    /// id is looked up first because every error from here on echoes it.
    #[allow(clippy::type_complexity)]
    fn members_in_qdict_order(
        &mut self,
        sink: &mut dyn ByteSink,
        root: Val,
    ) -> Option<(Option<Val>, Option<Val>, Option<Val>)> {
        let msg = self.msg;
        let mut execute = None;
        let mut arguments = None;
        let n = sort_members(&msg, root, self.scratch).unwrap_or(0);
        let id = (0..n)
            .filter_map(|i| sorted_member(&msg, self.scratch, i))
            .find(|(k, _)| eq_text(msg.bytes(*k), b"id"))
            .map(|(_, v)| v);
        for i in 0..n {
            let Some((k, v)) = sorted_member(&msg, self.scratch, i) else {
                continue;
            };
            let key = msg.bytes(k);
            if eq_text(key, b"execute") {
                if v.tok != Tok::Str {
                    self.fail(
                        sink,
                        id,
                        ErrorClass::GenericError,
                        &Desc::Text("QMP input member 'execute' must be a string"),
                    );
                    return None;
                }
                execute = Some(v);
            } else if eq_text(key, b"arguments") {
                if v.tok != Tok::LCurly {
                    self.fail(
                        sink,
                        id,
                        ErrorClass::GenericError,
                        &Desc::Text("QMP input member 'arguments' must be an object"),
                    );
                    return None;
                }
                arguments = Some(v);
            } else if !eq_text(key, b"id") {
                self.fail(sink, id, ErrorClass::GenericError, &Desc::Member(k));
                return None;
            }
        }
        Some((execute, arguments, id))
    }

    fn dispatch(&mut self, sink: &mut dyn ByteSink) {
        let msg = self.msg;
        let Some(root) = msg.value_at(0) else { return };
        if root.tok != Tok::LCurly {
            return self.fail(
                sink,
                None,
                ErrorClass::GenericError,
                &Desc::Text("QMP input must be a JSON object"),
            );
        }
        // Top-level members are checked in QDict order, as qmp_dispatch iterates them; the id
        // is looked up first because every error from here on echoes it. The order only picks
        // which error is reported, so a well-formed request skips the sort.
        let found = match well_formed_members(&msg, root) {
            Some(found) => Some(found),
            None => self.members_in_qdict_order(sink, root),
        };
        let Some((execute, arguments, id)) = found else {
            return;
        };
        let Some(execute) = execute else {
            return self.fail(
                sink,
                id,
                ErrorClass::GenericError,
                &Desc::Text("QMP input lacks member 'execute'"),
            );
        };
        let Some(spec) = COMMANDS
            .iter()
            .find(|s| eq_text(msg.bytes(execute), s.name.as_bytes()))
        else {
            return self.fail(
                sink,
                id,
                ErrorClass::CommandNotFound,
                &Desc::NotFound(execute),
            );
        };
        if let Some(reason) = self.disabled(spec) {
            return self.fail(
                sink,
                id,
                ErrorClass::CommandNotFound,
                &Desc::Disabled(spec.name, reason),
            );
        }
        let bound = args::Args::bind(msg, arguments, spec.args);
        if let Err(e) = args::check(&bound) {
            return self.fail(sink, id, ErrorClass::GenericError, &Desc::Arg(e));
        }
        debug!("dispatching {}", spec.name);
        if !is_quick(spec.id) {
            let _ = sink.flush();
        }
        self.host.audit(spec.name);
        let mut out_started = false;
        let result = {
            let mut out = Out::new(sink, is_list(spec.id));
            let r = self.run(spec, &bound, &mut out);
            if matches!(r, Ok(Done::Streamed)) || out.started() {
                out_started = true;
                if !out.finish() {
                    return;
                }
            }
            r
        };
        let done = match result {
            Ok(d) => d,
            Err((_, _)) if out_started => Done::Streamed,
            Err((class, desc)) => {
                let d = match desc {
                    Fail::Host(HostError::Unsupported) => Desc::Text(UNSUPPORTED),
                    Fail::Host(HostError::Message(m)) => Desc::Text(m),
                    Fail::Host(HostError::Os(e)) => Desc::Os("", e),
                    Fail::Host(HostError::Described) => Desc::Described,
                    Fail::Os(what, e) => Desc::Os(what, e),
                    Fail::Desc(d) => d,
                };
                return self.fail(sink, id, class, &d);
            }
        };
        let mut io = SinkIo(sink);
        let mut w = JsonWriter::new(&mut io);
        let _ = (|| -> Result<(), embedded_io::ErrorKind> {
            match done {
                Done::Silent => return Ok(()),
                Done::Streamed => {}
                Done::Empty => w.raw(b"{\"return\": {}")?,
                Done::Int(v) => {
                    if spec.id == CommandId::SyncDelimited {
                        w.raw(b"\xff")?;
                    }
                    w.raw(b"{\"return\": ")?;
                    w.int(v)?;
                }
                Done::Str(s) => {
                    w.raw(b"{\"return\": ")?;
                    w.string(s.as_bytes())?;
                }
            }
            if let Some(id) = id {
                w.raw(b", \"id\": ")?;
                echo(&msg, id, self.scratch, &mut w)?;
            }
            w.raw(b"}\n")
        })();
    }

    /// Why `spec` is disabled right now (`None` when enabled): newest qemu-ga's rules, 7.2's texts.
    fn disabled(&self, spec: &Spec) -> Option<&'static str> {
        command_disabled(&*self.host, self.config, *self.frozen, spec)
    }

    fn run(
        &mut self,
        spec: &Spec,
        b: &args::Args<'_>,
        out: &mut Out<'_>,
    ) -> Result<Done, (ErrorClass, Fail<'static>)> {
        use CommandId as C;
        let msg = self.msg;
        let host_err = |e: HostError| (ErrorClass::GenericError, Fail::Host(e));
        let int = |name| b.int(name);
        Ok(match spec.id {
            C::Sync | C::SyncDelimited => Done::Int(int("id").unwrap_or(0)),
            C::Ping => Done::Empty,
            C::Info => {
                let info = crate::info::Info {
                    host: &*self.host,
                    config: self.config,
                    frozen: *self.frozen,
                };
                crate::info::write(&info, out);
                Done::Streamed
            }
            C::GetTime => Done::Int(self.host.get_time().map_err(host_err)?),
            C::SetTime => {
                self.host.set_time(int("time")).map_err(host_err)?;
                Done::Empty
            }
            C::Shutdown => {
                let mode = match b.string("mode") {
                    None => ShutdownMode::Powerdown,
                    Some(t) if eq_text(t, b"powerdown") => ShutdownMode::Powerdown,
                    Some(t) if eq_text(t, b"halt") => ShutdownMode::Halt,
                    Some(t) if eq_text(t, b"reboot") => ShutdownMode::Reboot,
                    Some(_) => {
                        return Err((ErrorClass::GenericError, Fail::Desc(Desc::ShutdownMode)));
                    }
                };
                self.host.shutdown(mode).map_err(host_err)?;
                Done::Silent
            }
            C::SuspendDisk | C::SuspendRam | C::SuspendHybrid => {
                let mode = match spec.id {
                    C::SuspendDisk => SuspendMode::Disk,
                    C::SuspendRam => SuspendMode::Ram,
                    _ => SuspendMode::Hybrid,
                };
                self.host.suspend(mode).map_err(host_err)?;
                Done::Silent
            }
            C::FileOpen => {
                let (path_tok, mode_tok) = (b.string("path").unwrap_or(b"\"\""), b.string("mode"));
                let work = &mut **self.work;
                let half = work.len() / 2;
                let (pbuf, mbuf) = work.split_at_mut(half);
                let path = decode_into(path_tok, pbuf)
                    .and_then(|n| pbuf.get(..n))
                    .ok_or((
                        ErrorClass::GenericError,
                        Fail::Desc(Desc::Text("path too long")),
                    ))?;
                let mode: &[u8] = match mode_tok {
                    Some(t) => decode_into(t, mbuf)
                        .and_then(|n| mbuf.get(..n))
                        .unwrap_or(b"?"),
                    None => b"r",
                };
                Done::Int(self.host.file_open(path, mode).map_err(host_err)?)
            }
            C::FileClose => {
                self.host
                    .file_close(int("handle").unwrap_or(0))
                    .map_err(host_err)?;
                Done::Empty
            }
            C::FileFlush => {
                self.host
                    .file_flush(int("handle").unwrap_or(0))
                    .map_err(host_err)?;
                Done::Empty
            }
            C::FileRead => {
                let handle = int("handle").unwrap_or(0);
                self.host.file_handle(handle).map_err(host_err)?;
                let count = int("count").unwrap_or(FILE_READ_DEFAULT);
                if !(0..=FILE_READ_MAX).contains(&count) {
                    return Err((ErrorClass::GenericError, Fail::Desc(Desc::ReadCount(count))));
                }
                let plan = self
                    .host
                    .file_read_begin(handle, count as usize)
                    .map_err(host_err)?;
                crate::file::stream_read(
                    &mut *self.host,
                    handle,
                    plan,
                    self.work,
                    &self.config.base64,
                    out,
                );
                Done::Streamed
            }
            C::FileWrite => {
                let handle = int("handle").unwrap_or(0);
                let b64 = b.string("buf-b64").unwrap_or(b"\"\"");
                let count = int("count");
                crate::file::write(
                    &mut *self.host,
                    handle,
                    b64,
                    count,
                    self.work,
                    &self.config.base64,
                    out,
                )?;
                Done::Streamed
            }
            C::FileSeek => {
                let handle = int("handle").unwrap_or(0);
                self.host.file_handle(handle).map_err(host_err)?;
                let whence_v = b.get("whence");
                let whence = match whence_v {
                    Some(v) if v.tok == Tok::Str => {
                        let t = msg.bytes(v);
                        if eq_text(t, b"set") {
                            Whence::Set
                        } else if eq_text(t, b"cur") {
                            Whence::Cur
                        } else {
                            Whence::End
                        }
                    }
                    Some(v) => match number(v.tok, msg.bytes(v)) {
                        crate::json::parse::Num::Int(0) => Whence::Set,
                        crate::json::parse::Num::Int(1) => Whence::Cur,
                        crate::json::parse::Num::Int(2) => Whence::End,
                        crate::json::parse::Num::Int(code) => {
                            return Err((ErrorClass::GenericError, Fail::Desc(Desc::Whence(code))));
                        }
                        _ => {
                            return Err((ErrorClass::GenericError, Fail::Desc(Desc::Whence(0))));
                        }
                    },
                    None => Whence::Set,
                };
                self.host
                    .file_seek(
                        int("handle").unwrap_or(0),
                        int("offset").unwrap_or(0),
                        whence,
                        out,
                    )
                    .map_err(host_err)?;
                Done::Streamed
            }
            C::FsfreezeStatus => Done::Str(if *self.frozen { "frozen" } else { "thawed" }),
            C::FsfreezeFreeze | C::FsfreezeFreezeList => {
                let list = b.get("mountpoints");
                let mut mounts = StrList::new(msg, list);
                let n = self.host.fsfreeze_freeze(&mut mounts).map_err(host_err)?;
                // qemu-ga leaves frozen state again when nothing was frozen ("we may not issue
                // any FIFREEZE here").
                *self.frozen = n > 0;
                Done::Int(n)
            }
            C::FsfreezeThaw => {
                let n = self.host.fsfreeze_thaw().map_err(host_err)?;
                *self.frozen = false;
                Done::Int(n)
            }
            C::Fstrim => {
                self.host.fstrim(int("minimum"), out).map_err(host_err)?;
                Done::Streamed
            }
            C::SetVcpus => {
                let list = b.get("vcpus");
                let mut it = list.into_iter().flat_map(|l| msg.elements(l)).map(|e| {
                    let id = args::int(&msg, Some(e), "logical-id").unwrap_or(0);
                    (id, args::boolean(&msg, Some(e), "online").unwrap_or(false))
                });
                Done::Int(self.host.set_vcpus(&mut it).map_err(host_err)?)
            }
            C::SetMemoryBlocks => {
                let list = b.get("mem-blks");
                let mut it = list.into_iter().flat_map(|l| msg.elements(l)).map(|e| {
                    let idx = msg
                        .get(e, "phys-index")
                        .and_then(|v| args::uint(&msg, v))
                        .unwrap_or(0);
                    (idx, args::boolean(&msg, Some(e), "online").unwrap_or(false))
                });
                self.host
                    .set_memory_blocks(&mut it, out)
                    .map_err(host_err)?;
                Done::Streamed
            }
            C::SetUserPassword => {
                let work = &mut **self.work;
                let user = b.string("username").unwrap_or(b"\"\"");
                let user = decode_into(user, work).and_then(|n| work.get(..n)).ok_or((
                    ErrorClass::GenericError,
                    Fail::Desc(Desc::Text("username too long")),
                ))?;
                let pw = StrArg(b.string("password").unwrap_or(b"\"\""));
                let crypted = b.boolean("crypted").unwrap_or(false);
                self.host
                    .set_user_password(user, pw, crypted)
                    .map_err(host_err)?;
                Done::Empty
            }
            C::Exec => {
                let work = &mut **self.work;
                let path = b.string("path").unwrap_or(b"\"\"");
                let path = decode_into(path, work).and_then(|n| work.get(..n)).ok_or((
                    ErrorClass::GenericError,
                    Fail::Desc(Desc::Text("path too long")),
                ))?;
                let capture = match b.get("capture-output") {
                    None => Capture::None,
                    Some(v) => {
                        let t = msg.bytes(v);
                        if t == b"true" || eq_text(t, b"separated") {
                            Capture::Separated
                        } else if t == b"false" || eq_text(t, b"none") {
                            Capture::None
                        } else if eq_text(t, b"stdout") {
                            Capture::Stdout
                        } else if eq_text(t, b"stderr") {
                            Capture::Stderr
                        } else {
                            Capture::Merged
                        }
                    }
                };
                let mut req = ExecRequest {
                    path,
                    args: StrList::new(msg, b.get("arg")),
                    env: StrList::new(msg, b.get("env")),
                    input_data: b.string("input-data").map(StrArg),
                    capture,
                };
                self.host.exec(&mut req, out).map_err(host_err)?;
                Done::Streamed
            }
            C::ExecStatus => {
                self.host
                    .exec_status(int("pid").unwrap_or(0), out)
                    .map_err(host_err)?;
                Done::Streamed
            }
            C::SshGetAuthorizedKeys | C::SshAddAuthorizedKeys | C::SshRemoveAuthorizedKeys => {
                let work = &mut **self.work;
                let user = b.string("username").unwrap_or(b"\"\"");
                let user = decode_into(user, work).and_then(|n| work.get(..n)).ok_or((
                    ErrorClass::GenericError,
                    Fail::Desc(Desc::Text("username too long")),
                ))?;
                let mut keys = StrList::new(msg, b.get("keys"));
                match spec.id {
                    C::SshGetAuthorizedKeys => {
                        self.host
                            .ssh_get_authorized_keys(user, out)
                            .map_err(host_err)?;
                        Done::Streamed
                    }
                    C::SshAddAuthorizedKeys => {
                        let reset = b.boolean("reset").unwrap_or(false);
                        self.host
                            .ssh_add_authorized_keys(user, &mut keys, reset)
                            .map_err(host_err)?;
                        Done::Empty
                    }
                    _ => {
                        self.host
                            .ssh_remove_authorized_keys(user, &mut keys)
                            .map_err(host_err)?;
                        Done::Empty
                    }
                }
            }
            _ => match query_of(spec.id) {
                Some(q) => {
                    self.host.query(q, out).map_err(host_err)?;
                    Done::Streamed
                }
                None => return Err(host_err(HostError::Unsupported)),
            },
        })
    }
}

/// How a handler failed.
pub(crate) enum Fail<'a> {
    Host(HostError),
    #[allow(dead_code)]
    Os(&'static str, i32),
    Desc(Desc<'a>),
}

impl From<HostError> for (ErrorClass, Fail<'_>) {
    fn from(e: HostError) -> Self {
        (ErrorClass::GenericError, Fail::Host(e))
    }
}

pub(crate) fn command_disabled<H: Host + ?Sized>(
    host: &H,
    config: &Config,
    frozen: bool,
    spec: &Spec,
) -> Option<&'static str> {
    if !host.supported(spec.id) {
        return Some("");
    }
    if frozen {
        // While frozen only the freeze allow-list counts; -b and -a are ignored (newest rule).
        return (!spec.freeze_safe).then_some(": the agent is in frozen state");
    }
    let allowed = config.allowed.is_none_or(|a| a.contains(spec.id));
    (!allowed || config.blocked.contains(spec.id)).then_some("")
}

/// Commands that answer at once whatever the system does: replies may wait in the output
/// buffer while they run. Before any other command the output is flushed.
fn is_quick(id: CommandId) -> bool {
    matches!(
        id,
        CommandId::Sync
            | CommandId::SyncDelimited
            | CommandId::Ping
            | CommandId::Info
            | CommandId::FsfreezeStatus
            | CommandId::GetTime
    )
}

fn is_list(id: CommandId) -> bool {
    id == CommandId::SetMemoryBlocks || query_of(id).is_some_and(Query::is_list)
}

fn query_of(id: CommandId) -> Option<Query> {
    use CommandId as C;
    Some(match id {
        C::NetworkGetInterfaces => Query::NetworkInterfaces,
        C::GetVcpus => Query::Vcpus,
        C::GetDisks => Query::Disks,
        C::GetFsinfo => Query::Fsinfo,
        C::GetMemoryBlocks => Query::MemoryBlocks,
        C::GetMemoryBlockInfo => Query::MemoryBlockInfo,
        C::GetHostName => Query::HostName,
        C::GetUsers => Query::Users,
        C::GetTimezone => Query::Timezone,
        C::GetOsinfo => Query::Osinfo,
        C::GetDiskstats => Query::Diskstats,
        C::GetCpustats => Query::Cpustats,
        C::GetLoad => Query::Load,
        C::NetworkGetRoute => Query::NetworkRoute,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tiny;
    impl Host for Tiny {}

    /// The agent's own state, excluding the caller's buffers (the two slice references) and the
    /// host: the figure quoted in the README. Bounded so that a regression shows up.
    #[test]
    fn state_size() {
        let agent = core::mem::size_of::<Agent<'static, Tiny, &'static mut [u8]>>();
        let buffers = 2 * core::mem::size_of::<&mut [u8]>();
        let state = agent - buffers;
        std::println!(
            "agent state: {state} bytes (streamer {}, config {}, pending {})",
            core::mem::size_of::<Streamer>(),
            core::mem::size_of::<Config>(),
            core::mem::size_of::<Pending>()
        );
        assert!(state <= 2048, "agent state grew to {state} bytes");
    }
}
