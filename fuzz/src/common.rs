//! Pieces shared by several targets: a growable frame buffer, fuzzer-driven input splitting, and
//! the check that every reply line the agent writes is JSON of the reply shape.

use qga_core::FrameBuffer;
use serde_json::Value;

use super::oracle::from_slice_unbounded;

/// A frame buffer that grows on demand, like the daemon's: it starts at `initial` bytes, grows
/// (to a power of two) up to `max` bytes, and shrinks back on [`FrameBuffer::release`].
#[derive(Debug)]
pub struct GrowBuf {
    bytes: Vec<u8>,
    initial: usize,
    max: usize,
}

impl GrowBuf {
    /// A buffer of `initial` bytes that may grow to `max`.
    pub fn new(initial: usize, max: usize) -> Self {
        GrowBuf {
            bytes: vec![0; initial],
            initial,
            max,
        }
    }
}

impl FrameBuffer for GrowBuf {
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    fn grow(&mut self, min_len: usize) -> usize {
        if min_len > self.bytes.len() {
            let len = min_len.next_power_of_two().min(self.max);
            if len > self.bytes.len() {
                self.bytes.resize(len, 0);
            }
        }
        self.bytes.len()
    }

    fn release(&mut self) {
        if self.bytes.len() > self.initial {
            self.bytes.truncate(self.initial);
            self.bytes.shrink_to_fit();
        }
    }
}

/// A small deterministic generator (xorshift64*), for split points derived from a fuzzer-chosen
/// seed.
#[derive(Clone, Debug)]
pub struct Prng(u64);

impl Prng {
    /// A generator for `seed` (any value, zero included).
    pub fn new(seed: u64) -> Self {
        Prng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `1..=max` (`max` at least 1).
    pub fn len_up_to(&mut self, max: usize) -> usize {
        1 + (self.next_u64() % max.max(1) as u64) as usize
    }
}

/// Splits `data` into pieces whose lengths come from `seed`: the low three bits choose the
/// largest piece (1 to 128 bytes), the rest seeds the generator. Empty pieces are included now
/// and then (a feed of zero bytes must change nothing).
pub fn split_by_seed(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let max = 1usize << (seed & 7);
    let mut rng = Prng::new(u64::from(seed >> 3));
    let mut pieces = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rng.next_u64().is_multiple_of(16) {
            pieces.push(rest.get(..0).unwrap_or(&[]));
        }
        let n = rng.len_up_to(max).min(rest.len());
        let (piece, tail) = rest.split_at(n);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

/// The string that stands in for QEMU's bare `inf`/`-inf` when a reply line is handed to
/// `serde_json`. It holds U+FFFF, a noncharacter the agent never writes (it writes `\uFFFD`
/// instead), so it cannot be confused with a real string of the reply.
pub const INF_SENTINEL: &str = "\u{FFFF}inf";

/// Replaces the bare words `inf` and `-inf` outside strings by [`INF_SENTINEL`] (as a JSON
/// string). Returns the new text and how many were replaced.
pub fn replace_bare_inf(line: &[u8]) -> (Vec<u8>, usize) {
    let sentinel = format!("\"{}\"", INF_SENTINEL.replace('\u{FFFF}', "\\uFFFF"));
    let mut out = Vec::with_capacity(line.len());
    let mut replaced = 0;
    let mut in_string = false;
    let mut i = 0usize;
    while let Some(&b) = line.get(i) {
        if in_string {
            out.push(b);
            match b {
                b'\\' => {
                    if let Some(&next) = line.get(i + 1) {
                        out.push(next);
                    }
                    i += 2;
                    continue;
                }
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        let rest = line.get(i..).unwrap_or(&[]);
        let word = if rest.starts_with(b"-inf") {
            4
        } else if rest.starts_with(b"inf") {
            3
        } else {
            0
        };
        if word > 0 {
            out.extend_from_slice(sentinel.as_bytes());
            replaced += 1;
            i += word;
            continue;
        }
        if b == b'"' {
            in_string = true;
        }
        out.push(b);
        i += 1;
    }
    (out, replaced)
}

/// True if `v` holds [`INF_SENTINEL`] anywhere.
fn holds_sentinel(v: &Value) -> bool {
    match v {
        Value::String(s) => s == INF_SENTINEL,
        Value::Array(a) => a.iter().any(holds_sentinel),
        Value::Object(o) => o
            .iter()
            .any(|(k, v)| k == INF_SENTINEL || holds_sentinel(v)),
        _ => false,
    }
}

/// One reply line, parsed.
#[derive(Debug)]
pub struct Reply {
    /// The parsed JSON (with [`INF_SENTINEL`] where QEMU wrote a bare `inf`).
    pub json: Value,
}

impl Reply {
    /// The echoed `id`, if any.
    pub fn id(&self) -> Option<&Value> {
        self.json.get("id")
    }

    /// True for an error reply.
    pub fn is_error(&self) -> bool {
        self.json.get("error").is_some()
    }
}

/// Checks the agent's whole output: complete lines only, each one (after an optional leading
/// 0xFF) printable ASCII and a JSON object of one of the shapes qemu-ga writes:
/// `{"return": …}` or `{"error": {"class": …, "desc": "…"}}`, with an optional `"id"`. The only
/// text that is not JSON allowed is a bare `inf`/`-inf`, and only inside the echoed `id`.
/// A 0xFF prefix only comes with an integer `return` (the `guest-sync-delimited` reply).
///
/// Returns the parsed replies, in order.
pub fn check_reply_lines(out: &[u8]) -> Vec<Reply> {
    if out.is_empty() {
        return Vec::new();
    }
    assert!(
        out.ends_with(b"\n"),
        "output does not end with a newline: {:?}",
        String::from_utf8_lossy(out)
    );
    let body = out.get(..out.len() - 1).unwrap_or(&[]);
    body.split(|&b| b == b'\n')
        .map(|line| {
            let (delimited, text) = match line.split_first() {
                Some((0xFF, rest)) => (true, rest),
                _ => (false, line),
            };
            let shown = String::from_utf8_lossy(line);
            assert!(
                text.iter().all(|&b| (0x20..0x7F).contains(&b)),
                "reply line is not printable ASCII: {shown:?}"
            );
            let (json_text, infs) = replace_bare_inf(text);
            let json: Value = match from_slice_unbounded(&json_text) {
                Ok(v) => v,
                Err(e) => panic!("reply line is not JSON ({e}): {shown:?}"),
            };
            let Some(obj) = json.as_object() else {
                panic!("reply line is not a JSON object: {shown:?}")
            };
            if infs > 0 {
                let outside_id = obj
                    .iter()
                    .any(|(k, v)| k != "id" && (k == INF_SENTINEL || holds_sentinel(v)));
                assert!(!outside_id, "bare inf outside the id: {shown:?}");
            }
            let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
            let shape_ok = match obj.len() {
                1 => keys == ["return"] || keys == ["error"],
                2 => {
                    obj.contains_key("id")
                        && (obj.contains_key("return") ^ obj.contains_key("error"))
                }
                _ => false,
            };
            assert!(
                shape_ok,
                "reply has an unexpected set of members: {shown:?}"
            );
            if let Some(err) = obj.get("error") {
                let class = err.get("class").and_then(Value::as_str);
                let desc_ok = err.get("desc").is_some_and(Value::is_string);
                let len_ok = err.as_object().is_some_and(|o| o.len() == 2);
                assert!(
                    matches!(class, Some("GenericError" | "CommandNotFound")) && desc_ok && len_ok,
                    "malformed error member: {shown:?}"
                );
            }
            if delimited {
                let ret = obj.get("return");
                assert!(
                    ret.is_some_and(|r| r.is_i64() || r.is_u64()),
                    "0xFF before a reply that is not guest-sync-delimited's: {shown:?}"
                );
            }
            Reply { json }
        })
        .collect()
}
