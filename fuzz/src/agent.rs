//! Target `agent`: structure-aware, a list of chunks fed to an [`Agent`] over [`FakeHost`].
//!
//! Input: `[flags][chunk…]`, decoded with `arbitrary` by [`AgentInput::decode`]. The flags
//! choose the configuration ([`Flags`]); each chunk starts with a tag byte:
//!
//! | tag % 16 | chunk |
//! |---|---|
//! | 0 | the rest of the input as one chunk (the seeds: `\x00\x00` + a corpus stream) |
//! | 1 | raw bytes, a length byte first |
//! | 2 | a 0xFF byte |
//! | 3 | whitespace |
//! | 4–9 | a generated request (see [`super::requests`]), with a counted `id` when the tag is even |
//! | 10 | a generated request with a random `id` or none |
//! | 11 | a garbage fragment from [`FRAGMENTS`], repeated |
//! | 12 | an empty chunk (a call with no bytes) |
//! | 13 | up to 1100 nested openings (the nesting limit is 1024) |
//! | 14 | a string of up to 20 KiB (larger than the fixed 16 KiB frame buffer) |
//! | 15 | a generated request with a counted `id` |
//!
//! Invariants checked:
//!
//! * no panic;
//! * the output is complete lines, each a JSON reply of qemu-ga's shape after an optional 0xFF
//!   ([`check_reply_lines`]; a bare `inf`/`-inf` is allowed inside the echoed `id` only);
//! * the output, the host's final state, frozen state and "inside a request" do not depend on
//!   chunking: the chunks are fed one call each, all in one call, and byte by byte (inputs up
//!   to 2 KiB; longer ones in pieces of up to 16 bytes);
//! * one reply per counted request. A counted request is one the generator wrote (so it is
//!   well-formed) with a unique string `id` (`#<n>-<hash of the input>`, which the fuzzer cannot
//!   plant elsewhere without changing it), preceded by a 0xFF that ends whatever came before
//!   (an unfinished token or request: the lexer is then recovering and the next `{` starts a new
//!   request), under limits and a frame buffer large enough for it. It must get exactly one
//!   reply with that `id`, in order; for `guest-shutdown` and `guest-suspend-*`, whose success
//!   has no reply, at most one, and that one an error.

use arbitrary::Unstructured;
use qga_core::command::{COMMANDS, CommandId};
use qga_core::testing::{FakeHost, Scripted};
use qga_core::{Agent, Config, FrameBuffer, HostError, Limits};
use serde_json::Value;

use super::common::{GrowBuf, check_reply_lines, split_by_seed};
use super::requests::{Id, request};

/// Garbage fragments: lexical traps, partial requests, bytes QEMU treats specially.
pub const FRAGMENTS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"'",
    b"\\",
    b"\"\\u",
    b"\"\\uD800\"",
    b"\"\\uD83D\\uDE00\"",
    b"\"\\uFFFF\"",
    b"1",
    b"-",
    b"0e1",
    b"1.",
    b"tru",
    b"null",
    b":",
    b",",
    b"{\"execute\":",
    b"\"guest-ping\"",
    b"'guest-sync'",
    b"\"arguments\":{",
    b"\"id\":",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xef\xbf\xbf",
    b"\xfe",
    b"\x00",
    b"\x1b",
    b"1e309",
    b"-0",
    b"99999999999999999999",
    b"{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":1}}",
    b"{\"execute\":\"guest-ping\",\"id\":1e999}",
    b"\t",
    b"\r\n",
];

/// The configuration bits of the first input byte.
#[derive(Clone, Copy, Debug)]
pub struct Flags(pub u8);

impl Flags {
    /// Start frozen.
    pub fn frozen(self) -> bool {
        self.0 & 1 != 0
    }
    /// Block `guest-ping`, `guest-file-open`, `guest-exec`.
    pub fn block(self) -> bool {
        self.0 & 2 != 0
    }
    /// Allow only a few commands.
    pub fn allow(self) -> bool {
        self.0 & 4 != 0
    }
    /// Small limits (512 token bytes, 64 tokens, nesting 8).
    pub fn small_limits(self) -> bool {
        self.0 & 8 != 0
    }
    /// A growable frame buffer (64 bytes up to 64 KiB) instead of a fixed 16 KiB one.
    pub fn growable(self) -> bool {
        self.0 & 16 != 0
    }
    /// Scripted answers and failures in the host.
    pub fn scripted(self) -> bool {
        self.0 & 32 != 0
    }
    /// A file `/tmp/f` exists in the host.
    pub fn file(self) -> bool {
        self.0 & 64 != 0
    }
    /// A fixed 512-byte frame buffer.
    pub fn tiny_frame(self) -> bool {
        self.0 & 128 != 0
    }
    /// Requests fit: limits and frame buffer are large enough for any generated request.
    pub fn counting(self) -> bool {
        !self.small_limits() && !self.tiny_frame()
    }
}

/// A request the agent must answer exactly once (see the module documentation).
#[derive(Clone, Debug)]
pub struct Counted {
    /// Its `id`.
    pub marker: String,
    /// The command has no success response (`guest-shutdown`, `guest-suspend-*`).
    pub may_be_silent: bool,
}

/// One chunk: the bytes of one `Agent::process` call.
#[derive(Clone, Debug)]
pub struct Chunk {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Set when the chunk is a counted request.
    pub counted: Option<Counted>,
}

/// The decoded input.
#[derive(Clone, Debug)]
pub struct AgentInput {
    /// Configuration.
    pub flags: Flags,
    /// The chunks, in order.
    pub chunks: Vec<Chunk>,
}

/// Most chunks decoded from one input.
const MAX_CHUNKS: usize = 512;

/// Decoding stops once the chunks hold this many bytes: generated chunks (nesting, long strings)
/// can be far larger than the input, and every input runs three times.
const MAX_BYTES: usize = 128 << 10;

/// Inputs up to this many bytes are also fed byte by byte; longer ones in pieces of 1 to 16
/// bytes (seeded by the input's hash), which costs fewer calls.
const BYTEWISE_MAX: usize = 2048;

fn fnv64(data: &[u8]) -> u64 {
    data.iter().fold(0xCBF2_9CE4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    })
}

impl AgentInput {
    /// Decodes `data` (see the module documentation for the layout).
    pub fn decode(data: &[u8]) -> AgentInput {
        let hash = fnv64(data);
        let mut u = Unstructured::new(data);
        let flags = Flags(u.arbitrary().unwrap_or(0));
        let mut chunks = Vec::new();
        let mut total = 0usize;
        while !u.is_empty() && chunks.len() < MAX_CHUNKS && total < MAX_BYTES {
            let tag: u8 = u.arbitrary().unwrap_or(0);
            let plain = |bytes: Vec<u8>| Chunk {
                bytes,
                counted: None,
            };
            let chunk = match tag % 16 {
                0 => {
                    let len = u.len();
                    plain(u.bytes(len).unwrap_or(&[]).to_vec())
                }
                1 => {
                    let len = usize::from(u.arbitrary::<u8>().unwrap_or(0));
                    let len = len.min(u.len());
                    plain(u.bytes(len).unwrap_or(&[]).to_vec())
                }
                2 => plain(vec![0xFF]),
                3 => plain(
                    u.choose(&[&b"\n"[..], b" ", b"\r\n", b"\t", b"\n\n"])
                        .map_or(b"\n".to_vec(), |w| w.to_vec()),
                ),
                4..=10 | 15 => {
                    let counted = flags.counting()
                        && (tag % 16 == 15 || (tag % 16 < 10 && tag.is_multiple_of(2)));
                    let marker = format!("#{}-{hash:016x}", chunks.len());
                    let id = if counted {
                        Id::Marker(&marker)
                    } else if u.arbitrary().unwrap_or(false) {
                        Id::Random
                    } else {
                        Id::None
                    };
                    let Ok(g) = request(&mut u, id) else { break };
                    let mut bytes = Vec::with_capacity(g.bytes.len() + 1);
                    if counted {
                        bytes.push(0xFF);
                    }
                    bytes.extend_from_slice(&g.bytes);
                    let may_be_silent = g
                        .command
                        .and_then(|i| COMMANDS.get(i))
                        .is_some_and(|s| !s.success_response);
                    Chunk {
                        bytes,
                        counted: (counted && g.has_marker).then_some(Counted {
                            marker,
                            may_be_silent,
                        }),
                    }
                }
                11 => {
                    let frag = u.choose(FRAGMENTS).map_or(&b"{"[..], |f| *f);
                    let times = 1 + usize::from(u.arbitrary::<u8>().unwrap_or(0) % 4);
                    plain(frag.repeat(times))
                }
                12 => plain(Vec::new()),
                13 => {
                    let n = usize::from(u.arbitrary::<u16>().unwrap_or(0) % 1101);
                    let open: &[u8] = if u.arbitrary().unwrap_or(false) {
                        b"["
                    } else {
                        b"{\"a\":"
                    };
                    plain(open.repeat(n))
                }
                _ => {
                    let kib = usize::from(u.arbitrary::<u8>().unwrap_or(0) % 21);
                    let mut s = vec![b'"'];
                    s.resize(1 + kib * 1024, b'x');
                    s.push(b'"');
                    plain(s)
                }
            };
            total += chunk.bytes.len();
            chunks.push(chunk);
        }
        AgentInput { flags, chunks }
    }

    /// The configuration the flags ask for.
    pub fn config(&self) -> Config {
        let mut config = Config::default();
        if self.flags.small_limits() {
            config.limits = Limits {
                max_token_bytes: 512,
                max_tokens: 64,
                max_depth: 8,
            };
        }
        if self.flags.block() {
            for name in ["guest-ping", "guest-file-open", "guest-exec"] {
                config.block(name);
            }
        }
        if self.flags.allow() {
            for name in [
                "guest-sync-delimited",
                "guest-sync",
                "guest-info",
                "guest-file-read",
                "guest-shutdown",
                "guest-fsfreeze-thaw",
            ] {
                config.allow(name);
            }
        }
        config
    }

    /// The host the flags ask for.
    pub fn host(&self) -> FakeHost {
        let mut host = FakeHost::new();
        if self.flags.scripted() {
            let scripts = [
                (CommandId::Exec, Scripted::Return("{\"pid\": 4242}")),
                (
                    CommandId::ExecStatus,
                    Scripted::Return("{\"exited\": true, \"exitcode\": 0, \"out-data\": \"aGk=\"}"),
                ),
                (CommandId::GetTime, Scripted::Fail(HostError::Os(2))),
                (
                    CommandId::Shutdown,
                    Scripted::Fail(HostError::Message("shutdown refused")),
                ),
                (
                    CommandId::SuspendRam,
                    Scripted::Fail(HostError::Unsupported),
                ),
                (CommandId::GetOsinfo, Scripted::Return("{\"id\": \"fake\"}")),
                (
                    CommandId::GetVcpus,
                    Scripted::Return(
                        "[{\"online\": true, \"can-offline\": false, \"logical-id\": 0}]",
                    ),
                ),
                (CommandId::Fstrim, Scripted::Return("{\"paths\": []}")),
                (CommandId::FsfreezeFreeze, Scripted::Fail(HostError::Os(16))),
            ];
            for (command, answer) in scripts {
                host.script(command, answer);
            }
            host.unsupported.insert(CommandId::GetUsers);
        }
        if self.flags.file() {
            let data: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
            host.put_file(b"/tmp/f", &data);
        }
        host
    }
}

/// What one run of an input produced.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Every byte written.
    pub out: Vec<u8>,
    /// The host's final state (`Debug` text).
    pub host: String,
    /// Frozen at the end.
    pub frozen: bool,
    /// A request was in progress at the end.
    pub in_request: bool,
}

fn run_on<B: FrameBuffer>(input: &AgentInput, frame: B, pieces: &[&[u8]]) -> Outcome {
    let mut work = [0u8; 1024];
    let mut agent = Agent::new(input.host(), frame, &mut work[..], input.config());
    agent.set_frozen(input.flags.frozen());
    let mut out = Vec::new();
    for piece in pieces {
        match agent.process(piece, &mut out) {
            Ok(()) => {}
            Err(e) => match e {},
        }
    }
    Outcome {
        out,
        host: format!("{:?}", agent.host()),
        frozen: agent.is_frozen(),
        in_request: agent.in_request(),
    }
}

/// Feeds `pieces` (one `process` call each) to a fresh agent configured by `input`.
pub fn run(input: &AgentInput, pieces: &[&[u8]]) -> Outcome {
    if input.flags.tiny_frame() {
        run_on(input, GrowBuf::new(512, 512), pieces)
    } else if input.flags.growable() {
        run_on(input, GrowBuf::new(64, 1 << 16), pieces)
    } else {
        let mut frame = vec![0u8; 16 << 10];
        run_on(input, &mut frame[..], pieces)
    }
}

/// Checks the counted requests against the replies (see the module documentation).
fn check_counted(input: &AgentInput, replies: &[super::common::Reply]) {
    let mut last = None;
    for counted in input.chunks.iter().filter_map(|c| c.counted.as_ref()) {
        let marker = Value::String(counted.marker.clone());
        let found: Vec<usize> = replies
            .iter()
            .enumerate()
            .filter(|(_, r)| r.id() == Some(&marker))
            .map(|(i, _)| i)
            .collect();
        match found.as_slice() {
            [] if counted.may_be_silent => {}
            [i] => {
                assert!(
                    !counted.may_be_silent || replies.get(*i).is_some_and(|r| r.is_error()),
                    "request {} has no success response but got {:?}",
                    counted.marker,
                    replies.get(*i)
                );
                assert!(last < Some(*i), "reply to {} out of order", counted.marker);
                last = Some(*i);
            }
            _ => panic!(
                "request {} got {} replies, expected one",
                counted.marker,
                found.len()
            ),
        }
    }
}

/// The target: see the module documentation.
pub fn check(data: &[u8]) {
    let input = AgentInput::decode(data);
    let pieces: Vec<&[u8]> = input.chunks.iter().map(|c| c.bytes.as_slice()).collect();
    let chunked = run(&input, &pieces);
    let replies = check_reply_lines(&chunked.out);
    check_counted(&input, &replies);

    let all: Vec<u8> = pieces.concat();
    let whole = run(&input, &[&all]);
    assert!(
        whole == chunked,
        "output depends on chunking (whole vs chunks):\n{}",
        diff(&whole, &chunked)
    );
    let small: Vec<&[u8]> = if all.len() <= BYTEWISE_MAX {
        all.chunks(1).collect()
    } else {
        split_by_seed(&all, (fnv64(data) as u8 & !7) | 4)
    };
    let fine = run(&input, &small);
    assert!(
        fine == chunked,
        "output depends on chunking (small pieces vs chunks):\n{}",
        diff(&fine, &chunked)
    );
}

/// A readable account of how two outcomes differ.
fn diff(a: &Outcome, b: &Outcome) -> String {
    let la: Vec<&[u8]> = a.out.split(|&c| c == b'\n').collect();
    let lb: Vec<&[u8]> = b.out.split(|&c| c == b'\n').collect();
    let first = la
        .iter()
        .zip(&lb)
        .position(|(x, y)| x != y)
        .unwrap_or(la.len().min(lb.len()));
    let line = |l: &[&[u8]]| {
        l.get(first)
            .map(|x| String::from_utf8_lossy(x).into_owned())
    };
    format!(
        "{} vs {} lines; first difference at line {first}:\n  {:?}\n  {:?}\nhost equal: {}, frozen {} / {}, in request {} / {}",
        la.len(),
        lb.len(),
        line(&la),
        line(&lb),
        a.host == b.host,
        a.frozen,
        b.frozen,
        a.in_request,
        b.in_request
    )
}
