//! Differential fuzzing of the protocol layer against qemu-ga 7.2: generated and mutated byte
//! streams (valid requests with random arguments and ids, near-valid requests, garbage, 0xFF,
//! mutated corpus streams) go to qemu-ga on a unix socket and to qga's engine (in process, fed
//! in random chunks); on the first difference the input is minimised and both answers printed.
//!
//! Only protocol-level traffic is compared: a stream in which qga's engine runs a command other
//! than `guest-sync`, `guest-sync-delimited` or `guest-ping` (anything whose answer depends on
//! the machine, or on the version: `guest-info`) is skipped and counted as such. Streams that
//! could trigger a side effect in the reference agent are never sent
//! ([`crate::corpus::check_stream_safety`]).

use qga_core::{Agent, Config, Host};

use crate::core_side::core_exchange_chunked;
pub use crate::rng::Rng;
use crate::{AgentUnderTest, Delivery, fence};

/// Commands whose answers do not depend on the machine.
const PROTOCOL_COMMANDS: [&str; 3] = ["guest-sync", "guest-sync-delimited", "guest-ping"];

/// A host for the engine that records whether a command other than the protocol ones ran.
#[derive(Default)]
struct Probe {
    host_dependent: bool,
}

impl Host for Probe {
    fn audit(&mut self, command: &'static str) {
        if !PROTOCOL_COMMANDS.contains(&command) {
            self.host_dependent = true;
        }
    }
}

const KEYS: [&str; 12] = [
    "execute",
    "arguments",
    "id",
    "exec-oob",
    "control",
    "",
    "a",
    "b",
    "zz",
    "key",
    "ID",
    "é",
];
const NAMES: [&str; 10] = [
    "guest-sync",
    "guest-sync-delimited",
    "guest-ping",
    "guest-pong",
    "guest-sync\\u0000",
    "guest-\\u0070ing",
    "",
    "qmp_capabilities",
    "guest-nonexistent",
    "GUEST-PING",
];

fn string(rng: &mut Rng, out: &mut Vec<u8>) {
    let quote = if rng.chance(15) { b'\'' } else { b'"' };
    out.push(quote);
    for _ in 0..rng.below(8) {
        match rng.below(14) {
            0 => out.extend_from_slice(b"\\n"),
            1 => out.extend_from_slice(b"\\u00e9"),
            2 => out.extend_from_slice(b"\\ud83d\\ude00"),
            3 => out.extend_from_slice("é€".as_bytes()),
            4 => out.extend_from_slice(b"\\\""),
            5 => out.extend_from_slice(b"\\'"),
            6 => out.extend_from_slice(b"\\u0000"),
            7 => out.extend_from_slice(b"\xc0\x80"),
            8 => out.extend_from_slice(b"\\uD800"),
            9 => out.push(0x7F),
            _ => out.push(b'a' + rng.below(26) as u8),
        }
    }
    out.push(quote);
}

fn number(rng: &mut Rng, out: &mut Vec<u8>) {
    let n: &[u8] = match rng.below(12) {
        0 => b"0",
        1 => b"-0",
        2 => b"9223372036854775807",
        3 => b"-9223372036854775808",
        4 => b"9223372036854775808",
        5 => b"18446744073709551616",
        6 => b"1.5",
        7 => b"1e3",
        8 => b"-2.5E-3",
        9 => b"1e309",
        10 => b"0.1",
        _ => {
            out.extend_from_slice(
                (rng.next_u64() as i64 >> rng.below(60))
                    .to_string()
                    .as_bytes(),
            );
            return;
        }
    };
    out.extend_from_slice(n);
}

/// A random JSON value in QEMU's dialect.
pub fn value(rng: &mut Rng, depth: usize, out: &mut Vec<u8>) {
    let kind = if depth == 0 {
        rng.below(5)
    } else {
        rng.below(7)
    };
    match kind {
        0 => string(rng, out),
        1 | 2 => number(rng, out),
        3 => {
            let k: [&[u8]; 3] = [b"true", b"false", b"null"];
            out.extend_from_slice(rng.pick(&k).as_ref());
        }
        4 => string(rng, out),
        5 => {
            out.push(b'[');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push(b',');
                }
                value(rng, depth - 1, out);
            }
            out.push(b']');
        }
        _ => {
            out.push(b'{');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push(b',');
                }
                out.push(b'"');
                out.extend_from_slice(rng.pick(&KEYS).as_bytes());
                out.push(b'"');
                out.push(b':');
                value(rng, depth - 1, out);
            }
            out.push(b'}');
        }
    }
}

fn ws(rng: &mut Rng, out: &mut Vec<u8>) {
    if rng.chance(20) {
        let w: [&[u8]; 5] = [b" ", b"\n", b"\t", b"\r\n", b"  "];
        out.extend_from_slice(rng.pick(&w).as_ref());
    }
}

/// A request: mostly well-formed, with random member order, arguments and id.
pub fn request(rng: &mut Rng, out: &mut Vec<u8>) {
    let mut members: Vec<Vec<u8>> = Vec::new();
    let name = *rng.pick(&NAMES);
    let mut m = b"\"execute\":\"".to_vec();
    m.extend_from_slice(name.as_bytes());
    m.push(b'"');
    if rng.chance(95) {
        members.push(m);
    }
    if rng.chance(60) {
        let mut a = b"\"arguments\":".to_vec();
        if rng.chance(80) {
            a.push(b'{');
            let mut first = true;
            if rng.chance(85) {
                a.extend_from_slice(b"\"id\":");
                if rng.chance(70) {
                    number(rng, &mut a);
                } else {
                    value(rng, 2, &mut a);
                }
                first = false;
            }
            if rng.chance(15) {
                if !first {
                    a.push(b',');
                }
                a.push(b'"');
                a.extend_from_slice(rng.pick(&KEYS[3..]).as_bytes());
                a.extend_from_slice(b"\":");
                value(rng, 1, &mut a);
            }
            a.push(b'}');
        } else {
            value(rng, 1, &mut a);
        }
        members.push(a);
    }
    if rng.chance(50) {
        let mut i = b"\"id\":".to_vec();
        value(rng, 3, &mut i);
        members.push(i);
    }
    if rng.chance(5) {
        let mut x = b"\"".to_vec();
        x.extend_from_slice(rng.pick(&KEYS[3..]).as_bytes());
        x.extend_from_slice(b"\":1");
        members.push(x);
    }
    // Random member order.
    for i in (1..members.len()).rev() {
        let j = rng.below(i + 1);
        members.swap(i, j);
    }
    out.push(b'{');
    for (i, m) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
            ws(rng, out);
        }
        out.extend_from_slice(m);
    }
    out.push(b'}');
    ws(rng, out);
}

/// Applies one random byte-level mutation.
pub fn mutate(rng: &mut Rng, s: &mut Vec<u8>) {
    if s.is_empty() {
        s.push(b'{');
        return;
    }
    let at = rng.below(s.len());
    match rng.below(6) {
        0 => {
            s.remove(at);
        }
        1 => s.insert(at, *rng.pick(b"{}[],:\"'\\ \x00\x01\xff\xfe0-ae")),
        2 => s[at] = rng.next_u64() as u8,
        3 => {
            let end = (at + 1 + rng.below(8)).min(s.len());
            let dup: Vec<u8> = s[at..end].to_vec();
            s.splice(at..at, dup);
        }
        4 => s.insert(at, 0xFF),
        _ => {
            let end = (at + 1 + rng.below(8)).min(s.len());
            s.drain(at..end);
        }
    }
}

/// One generated stream, from scratch or from a corpus stream.
pub fn stream(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    if !corpus.is_empty() && rng.chance(30) {
        out = rng.pick(corpus).clone();
        for _ in 0..1 + rng.below(3) {
            mutate(rng, &mut out);
        }
        return out;
    }
    for _ in 0..1 + rng.below(4) {
        match rng.below(10) {
            0..=5 => request(rng, &mut out),
            6 => {
                let mut r = Vec::new();
                request(rng, &mut r);
                for _ in 0..1 + rng.below(2) {
                    mutate(rng, &mut r);
                }
                out.extend_from_slice(&r);
            }
            7 => out.push(0xFF),
            8 => {
                for _ in 0..1 + rng.below(6) {
                    out.push(*rng.pick(b"{}[],:@x\x0c\x00 \n1\"'"));
                }
            }
            _ => value(rng, 2, &mut out),
        }
    }
    out
}

/// The engine's answer to `stream` (plus the fence), fed in pieces of `chunk` bytes; `None`
/// when the stream ran a host-dependent command.
pub fn engine_answer(stream: &[u8], fence_id: u64, chunk: usize) -> Option<Vec<u8>> {
    let mut frame = vec![0u8; 1 << 20];
    let mut work = vec![0u8; 8192];
    let mut agent = Agent::new(
        Probe::default(),
        &mut frame[..],
        &mut work[..],
        Config::default(),
    );
    let mut all = stream.to_vec();
    all.extend_from_slice(&fence(fence_id));
    let out = core_exchange_chunked(&mut agent, &all, chunk);
    (!agent.host().host_dependent).then_some(out)
}

/// Outcome of comparing one stream.
pub enum Verdict {
    /// Same bytes.
    Same,
    /// Not comparable (host-dependent, or unsafe for the reference).
    Skipped,
    /// Different answers: (reference, engine).
    Different(Vec<u8>, Vec<u8>),
}

/// Names whose behaviour differs from 7.2 on purpose (qga follows the newest schema there; see
/// tests/corpus/known-differences.md): streams naming them are not compared.
const KNOWN_DIFFERENCES: [&[u8]; 4] = [
    b"capture-output",
    b"guest-get-load",
    b"guest-network-get-route",
    b"guest-get-devices",
];

/// Compares one stream.
pub fn compare(
    reference: &mut dyn AgentUnderTest,
    stream: &[u8],
    fence_id: u64,
    chunk: usize,
) -> Result<Verdict, String> {
    if crate::corpus::check_stream_safety(stream).is_err()
        || KNOWN_DIFFERENCES
            .iter()
            .any(|k| stream.windows(k.len()).any(|w| w == *k))
    {
        return Ok(Verdict::Skipped);
    }
    let Some(ours) = engine_answer(stream, fence_id, chunk) else {
        return Ok(Verdict::Skipped);
    };
    let theirs = reference.exchange_fenced(stream, fence_id, Delivery::Whole)?;
    Ok(if theirs == ours {
        Verdict::Same
    } else {
        Verdict::Different(theirs, ours)
    })
}

/// Shrinks a differing stream (removing ever smaller pieces while the difference stays).
pub fn minimise(
    reference: &mut dyn AgentUnderTest,
    stream: &[u8],
    next_fence: &mut u64,
) -> Result<Vec<u8>, String> {
    let mut best = stream.to_vec();
    let mut piece = best.len() / 2;
    while piece > 0 {
        let mut at = 0;
        while at < best.len() {
            let mut candidate = best.clone();
            let end = (at + piece).min(candidate.len());
            candidate.drain(at..end);
            *next_fence += 1;
            match compare(reference, &candidate, *next_fence, candidate.len().max(1))? {
                Verdict::Different(..) => best = candidate,
                _ => at += piece,
            }
        }
        piece /= 2;
    }
    Ok(best)
}

/// Figures of a run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Figures {
    /// Streams compared byte for byte.
    pub compared: u64,
    /// Streams skipped (host-dependent or unsafe).
    pub skipped: u64,
    /// Differences found.
    pub differences: u64,
}

/// The first difference of a run, minimised: (input, qemu-ga's answer, qga's answer).
pub type Difference = (Vec<u8>, Vec<u8>, Vec<u8>);

/// Runs `streams` generated streams from `seed`; stops at the first difference and returns it
/// minimised (with both answers).
pub fn run(
    reference: &mut dyn AgentUnderTest,
    seed: u64,
    streams: u64,
    corpus: &[Vec<u8>],
) -> Result<(Figures, Option<Difference>), String> {
    let mut rng = Rng::new(seed);
    let mut figures = Figures::default();
    let mut next_fence = 0x7000_0000_0000u64 ^ seed;
    for _ in 0..streams {
        let s = stream(&mut rng, corpus);
        let chunk = 1 + rng.below(s.len().max(1) + 8);
        next_fence += 1;
        match compare(reference, &s, next_fence, chunk)? {
            Verdict::Same => figures.compared += 1,
            Verdict::Skipped => figures.skipped += 1,
            Verdict::Different(..) => {
                figures.differences += 1;
                let small = minimise(reference, &s, &mut next_fence)?;
                next_fence += 1;
                let (theirs, ours) =
                    match compare(reference, &small, next_fence, small.len().max(1))? {
                        Verdict::Different(t, o) => (t, o),
                        _ => (Vec::new(), Vec::new()),
                    };
                return Ok((figures, Some((small, theirs, ours))));
            }
        }
    }
    Ok((figures, None))
}
