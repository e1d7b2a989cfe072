//! The host side: a client state machine that talks to a guest agent it does not trust.
//!
//! The guest can send anything: stale replies to requests the host gave up on, half-written
//! replies, garbage, replies that never end. The client follows the documented procedure that no
//! widely used host implements completely (see `clients-and-lessons.md` §1.5):
//!
//! * **Sync** before the first request and after every timeout or protocol error: send 0xFF (so
//!   the agent drops any half-received request), then `guest-sync-delimited` with a fresh id;
//!   discard every byte up to a 0xFF (which skips the error the agent answers to our 0xFF and any
//!   stale replies), parse the reply after it, and accept only the one carrying our id. A plain
//!   `guest-sync` mode exists for agents without the delimited command.
//! * **Every request carries a fresh `id`**; a reply with another id is a leftover of an
//!   abandoned request and is dropped.
//! * **Bounded**: a reply larger than [`ClientConfig::max_reply`] (10 MiB by default, as libvirt)
//!   is an error, and the client resynchronises; memory never grows with what the guest sends.
//! * **Timeouts** per command class (see [`Timeouts`]); time comes from the caller.
//! * Commands without a success reply (`guest-shutdown`, `guest-suspend-*`) succeed on EOF or
//!   silence; an error reply is still reported.
//!
//! The client is sans-IO like the agent. Call order:
//!
//! 1. [`Client::write_sync`] writes the sync bytes into your transport; then feed everything you
//!    receive to [`Client::handle_input`] and call [`Client::handle_timeout`] when
//!    [`Client::deadline`] has passed, until one of them returns an [`Outcome`].
//!    [`Outcome::Synced`] means requests may go out.
//! 2. [`Client::write_request`] writes one request; feed input and timeouts again until an
//!    [`Outcome`] arrives. On [`Outcome::Return`], [`Client::reply`] gives the value (decode it
//!    with [`de::from_value`] into the types of [`crate::types`]); on [`Outcome::Error`], the
//!    agent's error class and description.
//! 3. After [`Outcome::Failed`] the client needs a new sync (step 1) before the next request.
//!
//! ```
//! use qga_core::client::{Client, ClientConfig, Outcome};
//!
//! let mut buf = [0u8; 4096];
//! let mut client = Client::new(&mut buf[..], ClientConfig::default());
//! let mut wire = Vec::new();
//! client.write_sync(0, 1234, &mut wire).unwrap();
//! assert_eq!(wire, b"\xff{\"execute\": \"guest-sync-delimited\", \"arguments\": {\"id\": 1234}}\n");
//!
//! // What qemu-ga answers: an error for our 0xFF, then the delimited reply.
//! let answer = b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}\n\xff{\"return\": 1234}\n";
//! // The outcome comes with the bytes consumed so far (here all but the final newline).
//! assert_eq!(client.handle_input(1, answer).1, Some(Outcome::Synced));
//!
//! wire.clear();
//! client.write_request(2, "guest-get-time", None::<&()>, 99, &mut wire).unwrap();
//! assert_eq!(wire, b"{\"execute\": \"guest-get-time\", \"id\": 99}\n");
//! let reply = b"{\"return\": 1795690610553972000, \"id\": 99}\n";
//! assert_eq!(client.handle_input(3, reply).1, Some(Outcome::Return));
//! let time: i64 = client.decode().unwrap();
//! assert_eq!(time, 1795690610553972000);
//! ```

pub mod de;

use crate::buffer::FrameBuffer;
use crate::json::lexer::Tok;
use crate::json::parse::{Msg, Num, Val, number, scratch_needed, validate};
use crate::json::ser::{SerError, to_writer};
use crate::json::string::eq_text;
use crate::json::write::JsonWriter;
use crate::proto::Limits;
use crate::stream::{Event, Streamer};
use embedded_io::Write;

/// Default ceiling of one reply, as libvirt's `QEMU_AGENT_MAX_RESPONSE`.
pub const DEFAULT_MAX_REPLY: usize = 10 << 20;

/// How to synchronise.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SyncMode {
    /// 0xFF, then `guest-sync-delimited`, then discard up to the agent's 0xFF (the documented
    /// procedure; works with every qemu-ga since 1.1).
    Delimited,
    /// Plain `guest-sync` (what libvirt does): for agents without `guest-sync-delimited`.
    Plain,
}

/// Timeouts in milliseconds per command class. The defaults follow what hosts use in practice
/// (libvirt: 5 s, 60 s for shutdown; Proxmox: freeze 10 min then probe, thaw 3 min, fstrim
/// 10 min).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Timeouts {
    /// The sync handshake.
    pub sync: u64,
    /// Everything not listed below (ping, info, queries).
    pub default: u64,
    /// `guest-file-*` and `guest-exec*` (payloads can be large).
    pub file: u64,
    /// `guest-fsfreeze-freeze` and `-freeze-list` (hooks, many filesystems).
    pub freeze: u64,
    /// `guest-fsfreeze-thaw`.
    pub thaw: u64,
    /// `guest-fstrim`.
    pub fstrim: u64,
    /// Commands without a success reply: how long an error reply is waited for.
    pub no_reply: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            sync: 5_000,
            default: 5_000,
            file: 60_000,
            freeze: 600_000,
            thaw: 180_000,
            fstrim: 600_000,
            no_reply: 60_000,
        }
    }
}

impl Timeouts {
    /// The timeout for `command`.
    pub fn for_command(&self, command: &str) -> u64 {
        match command {
            "guest-fsfreeze-freeze" | "guest-fsfreeze-freeze-list" => self.freeze,
            "guest-fsfreeze-thaw" => self.thaw,
            "guest-fstrim" => self.fstrim,
            "guest-shutdown"
            | "guest-suspend-disk"
            | "guest-suspend-ram"
            | "guest-suspend-hybrid" => self.no_reply,
            c if c.starts_with("guest-file-") || c.starts_with("guest-exec") => self.file,
            _ => self.default,
        }
    }
}

/// Client settings.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ClientConfig {
    /// Largest reply accepted (bytes of JSON tokens).
    pub max_reply: usize,
    /// Sync procedure.
    pub sync: SyncMode,
    /// Timeouts.
    pub timeouts: Timeouts,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            max_reply: DEFAULT_MAX_REPLY,
            sync: SyncMode::Delimited,
            timeouts: Timeouts::default(),
        }
    }
}

/// Why an exchange failed. After any of these the client must sync again.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ClientError {
    /// No (valid) answer before the deadline.
    Timeout,
    /// The agent closed the connection.
    Eof,
    /// A reply larger than the configured maximum.
    ReplyTooLarge,
    /// The guest sent something that is not the protocol.
    Protocol(ProtocolError),
    /// The call is not valid in the client's state (e.g. a request before a sync).
    State,
    /// The transport failed while writing.
    Io,
}

/// Ways the guest's bytes are not the protocol.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ProtocolError {
    /// Bytes that are not JSON.
    NotJson,
    /// A JSON value that is not a reply object (`return` or `error`, optional `id`).
    NotAReply,
    /// An `error` member that is not `{"class": string, "desc": string}`.
    BadError,
}

impl ClientError {
    /// A short description.
    pub const fn as_str(&self) -> &'static str {
        match self {
            ClientError::Timeout => "timed out waiting for the guest agent",
            ClientError::Eof => "the guest agent closed the connection",
            ClientError::ReplyTooLarge => "the guest agent's reply is larger than allowed",
            ClientError::Protocol(ProtocolError::NotJson) => {
                "the guest sent bytes that are not JSON"
            }
            ClientError::Protocol(ProtocolError::NotAReply) => {
                "the guest sent JSON that is not a reply object"
            }
            ClientError::Protocol(ProtocolError::BadError) => {
                "the guest sent a malformed error reply"
            }
            ClientError::State => "not allowed now (sync first, one request at a time)",
            ClientError::Io => "the transport failed",
        }
    }
}

impl core::fmt::Display for ClientError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for ClientError {}

/// The end of one exchange.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Outcome {
    /// The sync completed: requests may go out.
    Synced,
    /// The request succeeded; [`Client::reply`] has the value.
    Return,
    /// A command without a success reply completed (EOF or silence until its deadline).
    Done,
    /// The agent answered with an error; [`Client::reply`] has class and description.
    Error,
    /// The exchange failed; sync again.
    Failed(ClientError),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// Needs a sync before anything else.
    Unsynced,
    /// Delimited sync sent: skipping bytes until a 0xFF.
    SeekDelimiter,
    /// After a 0xFF (or in plain mode): parsing replies until ours.
    SyncReply,
    /// Synced, nothing outstanding.
    Ready,
    /// A request is outstanding.
    Waiting,
}

/// A reply the client accepted, pointing into its buffer.
#[derive(Clone, Copy, Debug)]
pub struct Reply<'a> {
    /// The stored reply.
    pub msg: Msg<'a>,
    /// `return` value, or the `error` object.
    pub value: Val,
    /// True for an error reply.
    pub is_error: bool,
}

impl<'a> Reply<'a> {
    /// The error's `class` string token (decode with [`crate::json::string::decode_into`]).
    pub fn error_class(&self) -> Option<&'a [u8]> {
        self.error_member("class")
    }

    /// The error's `desc` string token.
    pub fn error_desc(&self) -> Option<&'a [u8]> {
        self.error_member("desc")
    }

    fn error_member(&self, name: &str) -> Option<&'a [u8]> {
        if !self.is_error {
            return None;
        }
        let v = self.msg.get(self.value, name)?;
        (v.tok == Tok::Str).then(|| self.msg.bytes(v))
    }
}

/// The client state machine. `B` holds replies while they arrive (a fixed slice, or a growable
/// buffer capped by [`ClientConfig::max_reply`]); after a reply, its free tail is the arena that
/// decoded strings are written to.
pub struct Client<B: FrameBuffer> {
    buf: B,
    config: ClientConfig,
    stream: Streamer,
    state: State,
    /// The id the current sync or request expects.
    id: i64,
    no_reply: bool,
    deadline: Option<u64>,
    /// The accepted reply: stored length and whether it is an error.
    reply: Option<(usize, bool)>,
    dropped: u32,
}

impl<B: FrameBuffer> Client<B> {
    /// A client that still needs to sync.
    pub fn new(buf: B, config: ClientConfig) -> Self {
        Client {
            buf,
            config,
            stream: Streamer::default(),
            state: State::Unsynced,
            id: 0,
            no_reply: false,
            deadline: None,
            reply: None,
            dropped: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// True once synced and idle: a request may be written.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// Treats the channel as synchronised without a sync (for a channel nobody used before).
    /// A stale reply, or half a request left in the agent by an earlier client, can then be
    /// taken for (or corrupt) the next exchange, so prefer [`Client::write_sync`].
    pub fn assume_synced(&mut self) {
        self.stream = Streamer::default();
        self.reply = None;
        self.deadline = None;
        self.state = State::Ready;
    }

    /// Gives memory back: drops the last reply and lets a growable buffer shrink. Call it when
    /// idle after a large reply.
    pub fn release(&mut self) {
        if matches!(self.state, State::Ready | State::Unsynced) {
            self.reply = None;
            self.buf.release();
        }
    }

    /// When [`Client::handle_timeout`] must be called (milliseconds, the caller's clock).
    pub fn deadline(&self) -> Option<u64> {
        self.deadline
    }

    /// Replies dropped so far because they were stale or not ours.
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    fn limits(&self) -> Limits {
        Limits {
            max_token_bytes: self.config.max_reply,
            ..Limits::QEMU
        }
    }

    /// Starts a sync: writes the sync bytes into `out`. `id` must be fresh (random, or never
    /// used on this channel); the reply to an earlier sync must not be mistaken for this one.
    pub fn write_sync<W: Write + ?Sized>(
        &mut self,
        now: u64,
        id: i64,
        out: &mut W,
    ) -> Result<(), W::Error> {
        self.reply = None;
        self.stream = Streamer::default();
        self.id = id;
        self.no_reply = false;
        self.deadline = Some(now.saturating_add(self.config.timeouts.sync));
        let mut w = JsonWriter::new(out);
        match self.config.sync {
            SyncMode::Delimited => {
                self.state = State::SeekDelimiter;
                w.raw(b"\xff{\"execute\": \"guest-sync-delimited\", \"arguments\": {\"id\": ")?;
            }
            SyncMode::Plain => {
                self.state = State::SyncReply;
                w.raw(b"{\"execute\": \"guest-sync\", \"arguments\": {\"id\": ")?;
            }
        }
        w.int(id)?;
        w.raw(b"}}\n")?;
        w.inner().flush()
    }

    /// Writes one request: `{"execute": command, "arguments": args, "id": id}`. `args` is any
    /// `Serialize` struct (for example a `#[derive(Serialize)]` struct with the schema's member
    /// names), `None` for commands without arguments. `id` must be fresh.
    pub fn write_request<T: serde::Serialize + ?Sized, W: Write + ?Sized>(
        &mut self,
        now: u64,
        command: &str,
        args: Option<&T>,
        id: i64,
        out: &mut W,
    ) -> Result<(), RequestError<W::Error>> {
        if self.state != State::Ready {
            return Err(RequestError::State);
        }
        let args = args.map(|a| {
            move |w: &mut JsonWriter<'_, W>| {
                to_writer(a, w).map_err(|e| match e {
                    SerError::Io(e) => RequestError::Io(e),
                    SerError::Unsupported => RequestError::Arguments,
                })
            }
        });
        self.send(now, command, id, out, args)
    }

    /// Like [`Client::write_request`], with the arguments given as JSON text (what
    /// `virsh qemu-agent-command` takes). The text must be one JSON object; it is checked with
    /// the agent's own parser (using this client's buffer) and sent as given.
    pub fn write_request_raw<W: Write + ?Sized>(
        &mut self,
        now: u64,
        command: &str,
        args_json: Option<&[u8]>,
        id: i64,
        out: &mut W,
    ) -> Result<(), RequestError<W::Error>> {
        if self.state != State::Ready {
            return Err(RequestError::State);
        }
        if let Some(text) = args_json {
            if !self.is_json_object(text) {
                return Err(RequestError::Arguments);
            }
        }
        let args = args_json
            .map(|text| move |w: &mut JsonWriter<'_, W>| w.raw(text).map_err(RequestError::Io));
        self.send(now, command, id, out, args)
    }

    /// Writes `{"execute": command[, "arguments": …], "id": id}` and waits for its reply.
    fn send<W: Write + ?Sized>(
        &mut self,
        now: u64,
        command: &str,
        id: i64,
        out: &mut W,
        args: Option<impl FnOnce(&mut JsonWriter<'_, W>) -> Result<(), RequestError<W::Error>>>,
    ) -> Result<(), RequestError<W::Error>> {
        self.reply = None;
        let io = RequestError::Io;
        let mut w = JsonWriter::new(out);
        w.raw(b"{\"execute\": ").map_err(io)?;
        w.string(command.as_bytes()).map_err(io)?;
        if let Some(args) = args {
            w.raw(b", \"arguments\": ").map_err(io)?;
            args(&mut w)?;
        }
        w.raw(b", \"id\": ").map_err(io)?;
        w.int(id).map_err(io)?;
        w.raw(b"}\n").map_err(io)?;
        w.inner().flush().map_err(io)?;
        self.id = id;
        self.no_reply = crate::command::find(command).is_some_and(|s| !s.success_response);
        self.deadline = Some(now.saturating_add(self.config.timeouts.for_command(command)));
        self.state = State::Waiting;
        Ok(())
    }

    /// True if `text` is exactly one JSON object (whitespace around it allowed).
    fn is_json_object(&mut self, text: &[u8]) -> bool {
        let mut stream = Streamer::default();
        let limits = self.limits();
        let (n, ev) = stream.feed(&mut self.buf, text, &limits);
        let Some(Event::Request { len, keys, depth }) = ev else {
            return false;
        };
        let rest_blank = text
            .get(n..)
            .is_some_and(|r| r.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')));
        let need = len + scratch_needed(keys, depth);
        if !rest_blank || (self.buf.bytes().len() < need && self.buf.grow(need) < need) {
            return false;
        }
        let (stored, scratch) = self.buf.bytes_mut().split_at_mut(len);
        validate(stored, keys, depth, scratch).is_ok() && stored.first() == Some(&b'{')
    }

    fn fail(&mut self, e: ClientError) -> Outcome {
        self.state = State::Unsynced;
        self.deadline = None;
        self.stream = Streamer::default();
        Outcome::Failed(e)
    }

    /// Feeds bytes received from the agent. Returns how many were consumed and, when an
    /// exchange ended, its outcome (the remaining bytes belong to what comes next).
    pub fn handle_input(&mut self, now: u64, input: &[u8]) -> (usize, Option<Outcome>) {
        let _ = now;
        let mut used = 0;
        while used < input.len() {
            let rest = input.get(used..).unwrap_or(&[]);
            match self.state {
                State::Unsynced | State::Ready => {
                    // Nothing is expected: whatever arrives is stale. Drop it; the next sync
                    // skips it anyway, and an idle client must not buffer the guest's bytes.
                    return (input.len(), None);
                }
                State::SeekDelimiter => match rest.iter().position(|&b| b == 0xFF) {
                    Some(i) => {
                        used += i + 1;
                        self.stream = Streamer::default();
                        self.state = State::SyncReply;
                    }
                    None => return (input.len(), None),
                },
                State::SyncReply | State::Waiting => {
                    let limits = self.limits();
                    let (n, ev) = self.stream.feed(&mut self.buf, rest, &limits);
                    used += n;
                    let Some(ev) = ev else { continue };
                    if let Some(outcome) = self.on_event(ev, rest.get(n.saturating_sub(1)).copied())
                    {
                        return (used, Some(outcome));
                    }
                }
            }
        }
        (used, None)
    }

    /// One event from the reply stream.
    fn on_event(&mut self, ev: Event, last: Option<u8>) -> Option<Outcome> {
        let syncing = self.state == State::SyncReply;
        match ev {
            Event::Stray { .. } => {
                if last == Some(0xFF) {
                    // A delimiter (a late guest-sync-delimited reply follows): reset the parser.
                    self.stream = Streamer::default();
                    return None;
                }
                if syncing {
                    // Garbage while syncing is expected after a reconnect: keep looking.
                    return self.resume_sync();
                }
                Some(self.fail(ClientError::Protocol(ProtocolError::NotJson)))
            }
            Event::Limit(_) => {
                if syncing {
                    return self.resume_sync();
                }
                Some(self.fail(ClientError::ReplyTooLarge))
            }
            Event::Request { len, keys, depth } => self.on_value(len, keys, depth, syncing),
        }
    }

    fn resume_sync(&mut self) -> Option<Outcome> {
        self.stream = Streamer::default();
        if self.config.sync == SyncMode::Delimited {
            self.state = State::SeekDelimiter;
        }
        None
    }

    fn on_value(&mut self, len: usize, keys: u32, depth: u32, syncing: bool) -> Option<Outcome> {
        let need = len + scratch_needed(keys, depth);
        if self.buf.bytes().len() < need && self.buf.grow(need) < need {
            return if syncing {
                self.resume_sync()
            } else {
                Some(self.fail(ClientError::ReplyTooLarge))
            };
        }
        let (text, scratch) = self.buf.bytes_mut().split_at_mut(len);
        if validate(text, keys, depth, scratch).is_err() {
            return if syncing {
                self.resume_sync()
            } else {
                Some(self.fail(ClientError::Protocol(ProtocolError::NotJson)))
            };
        }
        let msg = Msg { text };
        let shape = classify(&msg);
        match (shape, syncing) {
            (
                Shape::Reply {
                    id: None,
                    value,
                    is_error: false,
                },
                true,
            ) => {
                // The sync reply carries no request id: its value is the sync id.
                if id_matches(&msg, value, self.id) {
                    self.state = State::Ready;
                    self.deadline = None;
                    return Some(Outcome::Synced);
                }
                self.dropped += 1;
                self.resume_sync()
            }
            (_, true) => {
                self.dropped += 1;
                self.resume_sync()
            }
            (Shape::Reply { id, is_error, .. }, false) => {
                if !id.is_some_and(|id| id_matches(&msg, id, self.id)) {
                    // A leftover of an abandoned request, or an answer without our id.
                    self.dropped += 1;
                    return None;
                }
                if is_error && shape_error_ok(&msg, &shape).is_none() {
                    return Some(self.fail(ClientError::Protocol(ProtocolError::BadError)));
                }
                self.state = State::Ready;
                self.deadline = None;
                self.reply = Some((len, is_error));
                Some(if is_error {
                    Outcome::Error
                } else {
                    Outcome::Return
                })
            }
            (Shape::Other, false) => {
                Some(self.fail(ClientError::Protocol(ProtocolError::NotAReply)))
            }
        }
    }

    /// Call when [`Client::deadline`] has passed.
    pub fn handle_timeout(&mut self, now: u64) -> Option<Outcome> {
        let deadline = self.deadline?;
        if now < deadline {
            return None;
        }
        if self.state == State::Waiting && self.no_reply {
            // Silence is success for commands without a success reply; the agent is in an
            // unknown state (it may be going down), so sync again before the next request.
            self.state = State::Unsynced;
            self.deadline = None;
            return Some(Outcome::Done);
        }
        if matches!(self.state, State::Ready | State::Unsynced) {
            self.deadline = None;
            return None;
        }
        Some(self.fail(ClientError::Timeout))
    }

    /// Call when the agent closed the connection.
    pub fn handle_eof(&mut self) -> Option<Outcome> {
        match self.state {
            State::Waiting if self.no_reply => {
                self.state = State::Unsynced;
                self.deadline = None;
                Some(Outcome::Done)
            }
            State::Waiting | State::SeekDelimiter | State::SyncReply => {
                Some(self.fail(ClientError::Eof))
            }
            State::Ready | State::Unsynced => {
                self.state = State::Unsynced;
                None
            }
        }
    }

    /// The reply of the last [`Outcome::Return`] or [`Outcome::Error`].
    pub fn reply(&self) -> Option<Reply<'_>> {
        let (len, is_error) = self.reply?;
        let msg = Msg {
            text: self.buf.bytes().get(..len)?,
        };
        match classify(&msg) {
            Shape::Reply { value, .. } => Some(Reply {
                msg,
                value,
                is_error,
            }),
            Shape::Other => None,
        }
    }

    /// Decodes the last [`Outcome::Return`] value into `T` (for example a type of
    /// [`crate::types`]), using the free part of the buffer for decoded strings.
    pub fn decode<'s, T: serde::Deserialize<'s>>(&'s mut self) -> Result<T, de::DeError> {
        let (len, is_error) = self.reply.ok_or(de::DeError::Invalid)?;
        if is_error {
            return Err(de::DeError::Invalid);
        }
        // Decoded strings and base64 payloads are never longer than their JSON text: an arena
        // as large as the reply always suffices (a fixed buffer may still be too small).
        let need = len.saturating_mul(2);
        if self.buf.bytes().len() < need {
            self.buf.grow(need);
        }
        let (text, arena) = self.buf.bytes_mut().split_at_mut(len);
        let msg = Msg { text: &*text };
        match classify(&msg) {
            Shape::Reply { value, .. } => de::from_value(msg, value, arena),
            Shape::Other => Err(de::DeError::Invalid),
        }
    }
}

/// Error of [`Client::write_request`].
#[derive(Debug)]
pub enum RequestError<E> {
    /// The client is not synced, or a request is outstanding.
    State,
    /// The arguments could not be serialised (a type the writer does not support).
    Arguments,
    /// The transport failed.
    Io(E),
}

#[derive(Clone, Copy)]
enum Shape {
    Reply {
        id: Option<Val>,
        value: Val,
        is_error: bool,
    },
    Other,
}

/// A reply is an object with exactly one of `return`/`error` and optionally `id`.
fn classify(msg: &Msg<'_>) -> Shape {
    let Some(root) = msg.value_at(0) else {
        return Shape::Other;
    };
    if root.tok != Tok::LCurly {
        return Shape::Other;
    }
    let (mut ret, mut err, mut id) = (None, None, None);
    for (k, v) in msg.members(root) {
        let key = msg.bytes(k);
        if eq_text(key, b"return") {
            ret = Some(v);
        } else if eq_text(key, b"error") {
            err = Some(v);
        } else if eq_text(key, b"id") {
            id = Some(v);
        } else {
            return Shape::Other;
        }
    }
    match (ret, err) {
        (Some(value), None) => Shape::Reply {
            id,
            value,
            is_error: false,
        },
        (None, Some(value)) => Shape::Reply {
            id,
            value,
            is_error: true,
        },
        _ => Shape::Other,
    }
}

fn shape_error_ok(msg: &Msg<'_>, shape: &Shape) -> Option<()> {
    let Shape::Reply { value, .. } = shape else {
        return None;
    };
    if value.tok != Tok::LCurly {
        return None;
    }
    let class = msg.get(*value, "class")?;
    let desc = msg.get(*value, "desc")?;
    (class.tok == Tok::Str && desc.tok == Tok::Str).then_some(())
}

fn id_matches(msg: &Msg<'_>, id: Val, expected: i64) -> bool {
    id.tok == Tok::Int && matches!(number(id.tok, msg.bytes(id)), Num::Int(v) if v == expected)
}
