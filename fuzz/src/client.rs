//! Target `client`: the host-side state machine ([`Client`]) against a guest that cannot be
//! trusted, and against the real agent.
//!
//! Input: `[mode][op…]`, decoded with `arbitrary`. Bit 0 of `mode` chooses the guest:
//!
//! * **adversarial** (bit 0 clear): the guest's bytes come from the fuzzer, raw or as
//!   generated replies whose `id`/`return` is the current id, an old one or a random one, with
//!   and without the 0xFF delimiter. Ops: sync, request, request with raw JSON arguments, guest
//!   bytes, time passing, EOF, decode.
//! * **loopback** (bit 0 set): the guest is an [`Agent`] over [`FakeHost`]. Everything the client
//!   writes goes to the agent and everything the agent writes comes back, optionally with
//!   fuzzer bytes mixed in (bit 1). Ops: sync, a request for any command with generated
//!   arguments ([`super::requests`]), time passing.
//!
//! Invariants, always:
//!
//! * no panic; `handle_input` consumes at most what it is given, and all of it unless an
//!   exchange ended;
//! * `write_request*` fails with `State` exactly when the client is not ready;
//! * `Synced` only after a sync was written, and only if the sync id's digits arrived since;
//!   `Return`/`Error` only for an outstanding request, and the accepted reply is (read by
//!   `serde_json`, dialect mapped) an object whose `id` is the request's id, with `return`, or
//!   `error` holding string `class` and `desc`; `Done` only for `guest-shutdown`/`guest-suspend-*`;
//!   ready after `Synced`/`Return`/`Error`, not after `Done`/`Failed`;
//! * `write_request_raw` accepts arguments only if they are one JSON object (strict `serde_json`,
//!   dialect mapped);
//! * typed decoding (`i64`, `bool`, `&str`, `Bytes`, `GuestFileRead`) of a `Return` agrees with
//!   `serde_json` whenever it succeeds;
//! * the outcomes and the accepted replies do not depend on how the guest's bytes are split
//!   (each run is repeated with every chunk of guest bytes fed one byte at a time).
//!
//! In loopback without noise, additionally: every sync ends `Synced`, every request `Return` or
//! `Error` (or `Done` for a command without success reply that succeeded), never `Failed`.

use arbitrary::Unstructured;
use qga_core::client::{Client, ClientConfig, ClientError, Outcome, SyncMode};
use qga_core::command::COMMANDS;
use qga_core::testing::FakeHost;
use qga_core::types::{Bytes, GuestFileRead};
use qga_core::{Agent, Config};
use serde_json::Value;

use super::common::GrowBuf;
use super::oracle::{base64, from_slice_unbounded, std_json_text, strict_json};
use super::requests::Gen;

/// What the harness wrote last.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Sent {
    Nothing,
    Sync(i64),
    Request { id: i64, no_reply: bool },
}

/// One observable event of a run, for comparing runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// An exchange ended.
    Outcome(Outcome),
    /// The accepted reply's stored text.
    Reply(Vec<u8>),
    /// A write was refused as out of state.
    Refused,
}

/// The client plus the bookkeeping the invariants need.
struct Harness {
    client: Client<GrowBuf>,
    now: u64,
    /// Guest bytes received and not consumed yet.
    pending: Vec<u8>,
    /// True after an outcome: the rest waits for the next write, as a driver would hold it.
    paused: bool,
    /// Feed guest bytes one at a time.
    bytewise: bool,
    sent: Sent,
    /// Guest bytes fed since the last sync was written.
    since_sync: Vec<u8>,
    seen: Vec<Seen>,
}

impl Harness {
    fn new(mode: u8, bytewise: bool) -> Self {
        let config = ClientConfig {
            max_reply: if mode & 4 != 0 { 256 } else { 1 << 20 },
            sync: if mode & 8 != 0 {
                SyncMode::Plain
            } else {
                SyncMode::Delimited
            },
            ..ClientConfig::default()
        };
        Harness {
            client: Client::new(GrowBuf::new(64, 4 << 20), config),
            now: 0,
            pending: Vec::new(),
            paused: false,
            bytewise,
            sent: Sent::Nothing,
            since_sync: Vec::new(),
            seen: Vec::new(),
        }
    }

    fn sync(&mut self, id: i64) -> Vec<u8> {
        let mut wire = Vec::new();
        match self.client.write_sync(self.now, id, &mut wire) {
            Ok(()) => {}
            Err(e) => match e {},
        }
        self.sent = Sent::Sync(id);
        self.since_sync.clear();
        self.paused = false;
        self.feed_pending();
        wire
    }

    /// Writes a request (raw JSON arguments when `raw` is given); `None` if refused.
    fn request(&mut self, command: &str, raw: Option<&[u8]>, id: i64) -> Option<Vec<u8>> {
        let ready = self.client.is_ready();
        let mut wire = Vec::new();
        let result = match raw {
            Some(args) => {
                self.client
                    .write_request_raw(self.now, command, Some(args), id, &mut wire)
            }
            None => self
                .client
                .write_request(self.now, command, None::<&()>, id, &mut wire),
        };
        match result {
            Ok(()) => {
                assert!(
                    ready,
                    "a request was accepted while the client was not ready"
                );
                if let Some(args) = raw {
                    let strict = strict_json(&std_json_text(args));
                    let is_object = args.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
                    assert!(
                        strict.is_ok() && is_object,
                        "write_request_raw accepted {:?} ({strict:?})",
                        String::from_utf8_lossy(args)
                    );
                }
                let no_reply = COMMANDS
                    .iter()
                    .any(|s| s.name == command && !s.success_response);
                self.sent = Sent::Request { id, no_reply };
                self.paused = false;
                self.feed_pending();
                Some(wire)
            }
            Err(qga_core::client::RequestError::State) => {
                assert!(!ready, "a request was refused as out of state while ready");
                self.seen.push(Seen::Refused);
                None
            }
            Err(qga_core::client::RequestError::Arguments) => {
                assert!(raw.is_some(), "typed arguments `()` refused");
                self.seen.push(Seen::Refused);
                None
            }
            Err(qga_core::client::RequestError::Io(e)) => match e {},
        }
    }

    /// Guest bytes arrive.
    fn receive(&mut self, bytes: &[u8]) {
        if self.bytewise {
            for b in bytes {
                self.pending.push(*b);
                self.feed_pending();
            }
        } else {
            self.pending.extend_from_slice(bytes);
            self.feed_pending();
        }
    }

    fn feed_pending(&mut self) {
        let mut budget = 2 * self.pending.len() + 4;
        while !self.paused && !self.pending.is_empty() {
            budget = budget
                .checked_sub(1)
                .unwrap_or_else(|| panic!("handle_input makes no progress"));
            let (n, outcome) = self.client.handle_input(self.now, &self.pending);
            assert!(
                n <= self.pending.len(),
                "handle_input consumed {n} of {}",
                self.pending.len()
            );
            self.since_sync
                .extend_from_slice(self.pending.get(..n).unwrap_or(&[]));
            self.pending.drain(..n);
            match outcome {
                Some(o) => self.outcome(o),
                None => assert!(
                    self.pending.is_empty(),
                    "handle_input stopped early without an outcome"
                ),
            }
        }
    }

    fn timeout(&mut self, delta: u64) {
        self.now = self.now.saturating_add(delta);
        if let Some(o) = self.client.handle_timeout(self.now) {
            self.outcome(o);
        }
    }

    fn eof(&mut self) {
        if let Some(o) = self.client.handle_eof() {
            self.outcome(o);
        }
    }

    fn outcome(&mut self, o: Outcome) {
        self.seen.push(Seen::Outcome(o));
        self.paused = true;
        match o {
            Outcome::Synced => {
                let Sent::Sync(id) = self.sent else {
                    panic!("Synced without a sync outstanding ({:?})", self.sent)
                };
                let digits = id.unsigned_abs().to_string();
                assert!(
                    self.since_sync
                        .windows(digits.len())
                        .any(|w| w == digits.as_bytes()),
                    "Synced on id {id}, which never arrived"
                );
                assert!(self.client.is_ready(), "not ready after Synced");
            }
            Outcome::Return | Outcome::Error => {
                let Sent::Request { id, .. } = self.sent else {
                    panic!("{o:?} without a request outstanding ({:?})", self.sent)
                };
                assert!(self.client.is_ready(), "not ready after {o:?}");
                self.check_reply(id, o == Outcome::Error);
            }
            Outcome::Done => {
                assert!(
                    matches!(self.sent, Sent::Request { no_reply: true, .. }),
                    "Done for {:?}",
                    self.sent
                );
                assert!(!self.client.is_ready(), "ready after Done");
            }
            Outcome::Failed(e) => {
                assert!(!self.client.is_ready(), "ready after Failed({e:?})");
                assert!(
                    e != ClientError::State && e != ClientError::Io,
                    "Failed({e:?})"
                );
            }
        }
        self.sent = Sent::Nothing;
    }

    /// The accepted reply, read independently.
    fn check_reply(&mut self, id: i64, is_error: bool) {
        let Some(reply) = self.client.reply() else {
            panic!("no reply after an outcome that has one")
        };
        assert_eq!(reply.is_error, is_error);
        let text = reply.msg.text.to_vec();
        let shown = String::from_utf8_lossy(&text).into_owned();
        let json: Value = match from_slice_unbounded(&std_json_text(&text)) {
            Ok(v) => v,
            Err(e) => panic!("accepted reply is not JSON ({e}): {shown:?}"),
        };
        assert_eq!(
            json.get("id").and_then(Value::as_i64),
            Some(id),
            "accepted reply {shown:?}"
        );
        if is_error {
            let err = json.get("error");
            let ok = err
                .and_then(|e| e.get("class"))
                .is_some_and(Value::is_string)
                && err
                    .and_then(|e| e.get("desc"))
                    .is_some_and(Value::is_string);
            assert!(ok, "accepted error reply {shown:?}");
        } else {
            let ret = json.get("return").cloned().unwrap_or(Value::Null);
            self.check_decode(&ret, &shown);
        }
        self.seen.push(Seen::Reply(text));
    }

    /// Typed decoding agrees with `serde_json` when it succeeds.
    fn check_decode(&mut self, ret: &Value, shown: &str) {
        if let Ok(v) = self.client.decode::<i64>() {
            assert_eq!(ret.as_i64(), Some(v), "decode::<i64> of {shown:?}");
        }
        if let Ok(v) = self.client.decode::<bool>() {
            assert_eq!(ret.as_bool(), Some(v), "decode::<bool> of {shown:?}");
        }
        if let Ok(s) = self.client.decode::<&str>() {
            assert_eq!(ret.as_str(), Some(s), "decode::<&str> of {shown:?}");
        }
        if let Ok(b) = self.client.decode::<Bytes<'_>>() {
            // Modified UTF-8, as QEMU stores strings: U+0000 is C0 80.
            let want = ret.as_str().map(|s| {
                let mut v = Vec::new();
                for c in s.chars() {
                    match c {
                        '\0' => v.extend_from_slice(&[0xC0, 0x80]),
                        c => v.extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes()),
                    }
                }
                v
            });
            assert_eq!(want.as_deref(), Some(b.0), "decode::<Bytes> of {shown:?}");
        }
        if let Ok(r) = self.client.decode::<GuestFileRead<'_>>() {
            let count = ret.get("count").and_then(Value::as_i64);
            let b64 = ret.get("buf-b64").and_then(Value::as_str);
            let data = r.buf_b64.0;
            assert_eq!(count, Some(r.count), "decode::<GuestFileRead> of {shown:?}");
            assert_eq!(
                b64,
                Some(base64(data).as_str()),
                "decode::<GuestFileRead> of {shown:?}"
            );
        }
    }
}

/// Ids the adversarial guest and the harness draw from: a few fixed ones, the current ones, any.
fn pick_id(u: &mut Unstructured<'_>, recent: &[i64]) -> i64 {
    match u.int_in_range(0u8..=3).unwrap_or(0) {
        0 => *u.choose(&[0, 1, -1, 42, i64::MAX, i64::MIN]).unwrap_or(&0),
        1 | 2 => recent.last().copied().unwrap_or(7),
        _ => u.arbitrary().unwrap_or(0),
    }
}

/// A reply-like line the adversarial guest sends.
fn guest_line(u: &mut Unstructured<'_>, recent: &[i64]) -> Vec<u8> {
    let id = pick_id(u, recent);
    let mut line = Vec::new();
    if u.ratio(1, 3).unwrap_or(false) {
        line.push(0xFF);
    }
    let text = match u.int_in_range(0u8..=7).unwrap_or(0) {
        0 => format!("{{\"return\": {id}}}"),
        1 => format!("{{\"return\": {}, \"id\": {id}}}", pick_id(u, recent)),
        2 => format!("{{\"return\": {{}}, \"id\": {id}}}"),
        3 => format!(
            "{{\"error\": {{\"class\": \"GenericError\", \"desc\": \"no\"}}, \"id\": {id}}}"
        ),
        4 => format!("{{\"error\": \"bad\", \"id\": {id}}}"),
        5 => format!("{{\"return\": \"caf\\u00e9\\u0000\", \"id\": {id}}}"),
        6 => format!(
            "{{\"return\": {{\"count\": 3, \"buf-b64\": \"YWJj\", \"eof\": true}}, \"id\": {id}}}"
        ),
        _ => format!("{{'return': true, 'id': {id}, \"extra\": 1}}"),
    };
    line.extend_from_slice(text.as_bytes());
    if u.ratio(3, 4).unwrap_or(true) {
        line.push(b'\n');
    }
    line
}

/// Runs the adversarial script.
fn adversarial(data: &[u8], bytewise: bool) -> Vec<Seen> {
    let mut u = Unstructured::new(data);
    let mode: u8 = u.arbitrary().unwrap_or(0);
    let mut h = Harness::new(mode, bytewise);
    let mut recent: Vec<i64> = Vec::new();
    let mut ops = 0;
    while !u.is_empty() && ops < 256 {
        ops += 1;
        match u.int_in_range(0u8..=9).unwrap_or(0) {
            0 => {
                let id = pick_id(&mut u, &recent);
                recent.push(id);
                let _ = h.sync(id);
            }
            1 | 2 => {
                let command = u.choose(&COMMANDS).map_or("guest-ping", |s| s.name);
                let id = pick_id(&mut u, &recent);
                recent.push(id);
                let _ = h.request(command, None, id);
            }
            3 => {
                let command = u.choose(&COMMANDS).map_or("guest-ping", |s| s.name);
                let len = usize::from(u.arbitrary::<u8>().unwrap_or(0)).min(u.len());
                let args = u.bytes(len).unwrap_or(&[]).to_vec();
                let id = pick_id(&mut u, &recent);
                recent.push(id);
                let _ = h.request(command, Some(&args), id);
            }
            4 | 5 => {
                let line = guest_line(&mut u, &recent);
                h.receive(&line);
            }
            6 => {
                let len = usize::from(u.arbitrary::<u8>().unwrap_or(0)).min(u.len());
                let bytes = u.bytes(len).unwrap_or(&[]).to_vec();
                h.receive(&bytes);
            }
            7 => {
                let delta = match u.int_in_range(0u8..=3).unwrap_or(0) {
                    0 => 1,
                    1 => 5_000,
                    2 => 600_000,
                    _ => u64::from(u.arbitrary::<u32>().unwrap_or(0)),
                };
                h.timeout(delta);
            }
            8 => h.eof(),
            _ => {
                // An id that overflows into a float, a huge reply, or a lone delimiter.
                let bytes: &[u8] = u
                    .choose(&[
                        &b"\xff"[..],
                        b"{\"return\": 1e999, \"id\": 1}\n",
                        b"\n",
                        b"{\"return\": [[[[[[[[",
                        b"]]]]]]]]}\n",
                    ])
                    .copied()
                    .unwrap_or(b"\n");
                h.receive(bytes);
            }
        }
    }
    h.seen
}

/// Runs the loopback script.
fn loopback(data: &[u8], bytewise: bool) -> Vec<Seen> {
    let mut u = Unstructured::new(data);
    let mode: u8 = u.arbitrary().unwrap_or(0);
    let noise = mode & 2 != 0;
    // Replies must fit: no small ceiling in loopback.
    let mut h = Harness::new(mode & !4, bytewise);
    let mut work = [0u8; 1024];
    let mut agent = Agent::new(
        FakeHost::new(),
        GrowBuf::new(64, 1 << 20),
        &mut work[..],
        Config::default(),
    );
    let mut next_id: i64 = 1000;
    let mut ops = 0;
    while !u.is_empty() && ops < 64 {
        ops += 1;
        let before = h.seen.len();
        let (wire, expect_answer) = match u.int_in_range(0u8..=5).unwrap_or(0) {
            0 => {
                next_id += 1;
                (Some(h.sync(next_id)), true)
            }
            1 => {
                h.timeout(600_000);
                (None, false)
            }
            _ => {
                let spec = u.choose(&COMMANDS).ok().copied();
                let command = spec.map_or("guest-nope", |s| s.name);
                let mut g = Gen::new(&mut u);
                let args = match spec {
                    Some(s) if !s.args.is_empty() => g.arguments(s.args, 3).ok().map(|()| g.out),
                    _ => None,
                };
                next_id += 1;
                let ready = h.client.is_ready();
                (h.request(command, args.as_deref(), next_id), ready)
            }
        };
        let Some(wire) = wire else { continue };
        let mut out = Vec::new();
        match agent.process(&wire, &mut out) {
            Ok(()) => {}
            Err(e) => match e {},
        }
        if noise {
            let len = usize::from(u.arbitrary::<u8>().unwrap_or(0) % 32).min(u.len());
            let junk = u.bytes(len).unwrap_or(&[]).to_vec();
            let at = usize::from(u.arbitrary::<u8>().unwrap_or(0)) % (out.len() + 1);
            out.splice(at..at, junk);
        }
        h.receive(&out);
        if !noise && expect_answer {
            // A silent success (shutdown, suspend) shows up once the deadline passes.
            if h.seen.len() == before {
                h.timeout(600_000);
            }
            let outcome = h.seen.iter().skip(before).find_map(|s| match s {
                Seen::Outcome(o) => Some(*o),
                _ => None,
            });
            assert!(
                matches!(
                    outcome,
                    Some(Outcome::Synced | Outcome::Return | Outcome::Error | Outcome::Done)
                ),
                "loopback exchange ended with {outcome:?}; agent wrote {:?}",
                String::from_utf8_lossy(&out)
            );
        }
    }
    h.seen
}

/// The target: see the module documentation.
pub fn check(data: &[u8]) {
    let run = |bytewise| {
        if data.first().is_some_and(|m| m & 1 != 0) {
            loopback(data, bytewise)
        } else {
            adversarial(data, bytewise)
        }
    };
    let whole = run(false);
    let bytewise = run(true);
    assert_eq!(
        whole, bytewise,
        "outcomes depend on how the guest's bytes are split"
    );
}
