//! Oracles that do not come from `qga-core`: ports of the QEMU C functions the core imitates,
//! the mapping of QEMU's JSON dialect onto standard JSON, a strict `serde_json` front end that
//! applies QEMU's two extra rules, and glibc's `printf("%.17g")`.
//!
//! The ports are written from QEMU's C source (`util/unicode.c`, `qobject/json-writer.c`), not
//! from the Rust core, so that a fuzz target comparing them with the core is a real differential.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// QEMU's `is_valid_codepoint` (`util/unicode.c`): Unicode scalar values that are not
/// noncharacters (U+FDD0..U+FDEF, U+xxFFFE, U+xxFFFF).
pub fn is_valid_codepoint(cp: u32) -> bool {
    !(cp > 0x10FFFF
        || (cp & 0xFFFE) == 0xFFFE
        || (0xFDD0..=0xFDEF).contains(&cp)
        || (0xD800..=0xDFFF).contains(&cp))
}

/// True for a Unicode noncharacter (the code points QEMU refuses although they are scalar values).
pub fn is_noncharacter(c: char) -> bool {
    let cp = u32::from(c);
    (cp & 0xFFFE) == 0xFFFE || (0xFDD0..=0xFDEF).contains(&cp)
}

/// A port of QEMU's `mod_utf8_codepoint(s, n, &end)` over a slice whose end acts as the C
/// string's terminating NUL. Returns the code point (`None` for QEMU's `-1`) and the number of
/// bytes consumed (`end - s`). An empty slice or a leading NUL is QEMU's "empty sequence":
/// `(None, 0)`.
pub fn mod_utf8_codepoint(s: &[u8], n: usize) -> (Option<u32>, usize) {
    const MIN_CP: [u32; 5] = [0x80, 0x800, 0x10000, 0x200000, 0x4000000];
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    if n == 0 || at(0) == 0 {
        return (None, 0);
    }
    let mut p = 0usize;
    let mut byte = u32::from(at(p));
    p += 1;
    let cp: Option<u32>;
    if byte < 0x80 {
        cp = Some(byte);
    } else if byte >= 0xFE || byte & 0x40 == 0 {
        cp = None;
    } else {
        let mut len = 0usize;
        let mut mask = 0x80u32;
        while byte & mask != 0 {
            len += 1;
            mask >>= 1;
        }
        assert!(
            len > 1 && len < 7,
            "mod_utf8_codepoint: impossible length {len}"
        );
        let mut v = byte & (mask - 1);
        for i in 1..len {
            byte = if i < n { u32::from(at(p)) } else { 0 };
            if byte & 0xC0 != 0x80 {
                return (None, p);
            }
            p += 1;
            v = (v << 6) | (byte & 0x3F);
        }
        let min = MIN_CP.get(len - 2).copied().unwrap_or(0);
        cp = if !is_valid_codepoint(v) || (v < min && !(v == 0 && len == 2)) {
            None
        } else {
            Some(v)
        };
    }
    (cp, p)
}

/// A port of `quoted_str` (`qobject/json-writer.c`): the exact bytes QEMU writes for the C
/// string `bytes` (cut at its first NUL), quotes included.
pub fn quoted_str(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![b'"'];
    quoted_str_body(bytes, &mut out);
    out.push(b'"');
    out
}

/// The body of [`quoted_str`] (without the quotes); stops at a NUL. Returns true if a NUL ended
/// the string.
pub fn quoted_str_body(bytes: &[u8], out: &mut Vec<u8>) -> bool {
    let mut ptr = 0usize;
    while let Some(&b) = bytes.get(ptr) {
        if b == 0 {
            return true;
        }
        let (cp, used) = mod_utf8_codepoint(bytes.get(ptr..).unwrap_or(&[]), 6);
        quoted_codepoint(cp, out);
        ptr += used;
    }
    false
}

/// How `quoted_str` writes one decoded code point (`None` for an invalid sequence).
pub fn quoted_codepoint(cp: Option<u32>, out: &mut Vec<u8>) {
    let cp = cp.unwrap_or(0xFFFD);
    match cp {
        0x22 => out.extend_from_slice(b"\\\""),
        0x5C => out.extend_from_slice(b"\\\\"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0C => out.extend_from_slice(b"\\f"),
        0x0A => out.extend_from_slice(b"\\n"),
        0x0D => out.extend_from_slice(b"\\r"),
        0x09 => out.extend_from_slice(b"\\t"),
        _ if cp > 0xFFFF => {
            let v = cp - 0x10000;
            out.extend_from_slice(
                format!(
                    "\\u{:04X}\\u{:04X}",
                    0xD800 + (v >> 10),
                    0xDC00 + (v & 0x3FF)
                )
                .as_bytes(),
            );
        }
        _ if !(0x20..0x7F).contains(&cp) => {
            out.extend_from_slice(format!("\\u{cp:04X}").as_bytes());
        }
        // Printable ASCII.
        _ => out.push(cp as u8),
    }
}

/// The string QEMU means by the C string `bytes`: decoded as modified UTF-8, cut at the first NUL,
/// invalid sequences replaced by U+FFFD (what a JSON parser reads back from [`quoted_str`]).
pub fn qemu_string(bytes: &[u8]) -> String {
    let mut s = String::new();
    let mut ptr = 0usize;
    while let Some(&b) = bytes.get(ptr) {
        if b == 0 {
            break;
        }
        let (cp, used) = mod_utf8_codepoint(bytes.get(ptr..).unwrap_or(&[]), 6);
        s.push(cp.and_then(char::from_u32).unwrap_or('\u{FFFD}'));
        ptr += used;
    }
    s
}

/// Rewrites one QEMU string token (quotes included, as the lexer completed it) as a standard
/// JSON string token:
///
/// * single quotes become double quotes, and a raw `"` inside a single-quoted string is escaped;
/// * the escape `\'` (valid in both quote styles in QEMU, not in JSON) becomes a plain `'`;
/// * the modified UTF-8 pair `C0 80` (QEMU's U+0000) becomes `\u0000`.
///
/// Everything else is copied byte for byte, so that escape and UTF-8 validation stay the job of
/// the JSON parser under comparison.
pub fn std_string_token(tok: &[u8]) -> Vec<u8> {
    let inner = match tok.len() {
        0 | 1 => &[][..],
        n => tok.get(1..n - 1).unwrap_or(&[]),
    };
    let mut out = Vec::with_capacity(tok.len() + 8);
    out.push(b'"');
    let mut i = 0usize;
    while let Some(&b) = inner.get(i) {
        match b {
            b'\\' => {
                match inner.get(i + 1) {
                    Some(b'\'') => out.push(b'\''),
                    Some(&next) => {
                        out.push(b'\\');
                        out.push(next);
                    }
                    None => out.push(b'\\'),
                }
                i += 2;
            }
            b'"' => {
                out.extend_from_slice(b"\\\"");
                i += 1;
            }
            0xC0 if inner.get(i + 1) == Some(&0x80) => {
                out.extend_from_slice(b"\\u0000");
                i += 2;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out.push(b'"');
    out
}

/// Rewrites the stored text of a request (tokens back to back, a single space between two
/// numbers or keywords; see `qga_core::stream`) as standard JSON: strings through
/// [`std_string_token`], and numbers whose value overflows a double or comes within rounding of
/// its maximum (QEMU turns them into `inf` or accepts them; `serde_json` refuses them as out of
/// range) into `0`. Other tokens are copied.
pub fn std_json_text(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 16);
    let mut i = 0usize;
    while let Some(&b) = text.get(i) {
        match b {
            b'"' | b'\'' => {
                let mut j = i + 1;
                loop {
                    match text.get(j) {
                        Some(b'\\') => j += 2,
                        Some(&c) if c == b => {
                            j += 1;
                            break;
                        }
                        Some(_) => j += 1,
                        None => break,
                    }
                }
                let end = j.min(text.len());
                out.extend_from_slice(&std_string_token(text.get(i..end).unwrap_or(&[])));
                i = end;
            }
            b'-' | b'0'..=b'9' => {
                let len = text
                    .get(i..)
                    .unwrap_or(&[])
                    .iter()
                    .take_while(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .count();
                let num = text.get(i..i + len).unwrap_or(&[]);
                let overflows = std::str::from_utf8(num)
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                    // serde_json (without float_roundtrip) also refuses values that round to the
                    // largest double, such as 1.7976931348623158e308, which QEMU accepts.
                    .is_some_and(|v| v.is_infinite() || v.abs() >= 1e308);
                if overflows {
                    out.push(b'0');
                } else {
                    out.extend_from_slice(num);
                }
                i += len.max(1);
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Why [`strict_json`] refused a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrictError {
    /// Not JSON at all (syntax, escapes, UTF-8, number range), as `serde_json` says.
    Json(String),
    /// Valid JSON, but an object has a key twice (QEMU refuses duplicate keys).
    DuplicateKey,
    /// Valid JSON, but a string holds a noncharacter (QEMU refuses them).
    Noncharacter,
}

const DUP: &str = "qemu-rule: duplicate key";
const NONCHAR: &str = "qemu-rule: noncharacter";

/// `serde_json::from_slice` without the recursion limit of 128 levels: qemu-ga accepts 1024
/// (callers run with a stack large enough for that).
pub fn from_slice_unbounded<'de, T: Deserialize<'de>>(json: &'de [u8]) -> serde_json::Result<T> {
    let mut de = serde_json::Deserializer::from_slice(json);
    de.disable_recursion_limit();
    let value = T::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Parses `json` with `serde_json`, adding QEMU's two rules that JSON does not have: no
/// duplicate keys (compared after unescaping) and no noncharacters in strings or keys.
pub fn strict_json(json: &[u8]) -> Result<(), StrictError> {
    match from_slice_unbounded::<Strict>(json) {
        Ok(Strict) => Ok(()),
        Err(e) => {
            let msg = e.to_string();
            Err(if msg.starts_with(DUP) {
                StrictError::DuplicateKey
            } else if msg.starts_with(NONCHAR) {
                StrictError::Noncharacter
            } else {
                StrictError::Json(msg)
            })
        }
    }
}

/// A JSON value checked against QEMU's extra rules and then dropped.
struct Strict;

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

/// A string key checked for noncharacters.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.chars().any(is_noncharacter) {
            return Err(de::Error::custom(NONCHAR));
        }
        Ok(Key(s))
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Strict, E> {
        if s.chars().any(is_noncharacter) {
            return Err(E::custom(NONCHAR));
        }
        Ok(Strict)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        while let Some(Strict) = seq.next_element::<Strict>()? {}
        Ok(Strict)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut seen = HashSet::new();
        while let Some(Key(k)) = map.next_key::<Key>()? {
            // QEMU reports the duplicate once the member's value has been parsed.
            let Strict = map.next_value::<Strict>()?;
            if !seen.insert(k) {
                return Err(de::Error::custom(DUP));
            }
        }
        Ok(Strict)
    }
}

/// glibc's `snprintf(buf, n, "%.17g", v)` in the C locale (the fuzz binaries and the tests never
/// call `setlocale`), the format QEMU writes doubles with.
#[allow(unsafe_code)]
pub fn glibc_g17(v: f64) -> Vec<u8> {
    unsafe extern "C" {
        fn snprintf(
            buf: *mut std::ffi::c_char,
            n: usize,
            fmt: *const std::ffi::c_char,
            ...
        ) -> std::ffi::c_int;
    }
    let mut buf = [0u8; 64];
    // SAFETY: the buffer is writable for its whole length, which is passed as the bound; the
    // format is a NUL-terminated literal taking exactly one double.
    let n = unsafe { snprintf(buf.as_mut_ptr().cast(), buf.len(), c"%.17g".as_ptr(), v) };
    let n = usize::try_from(n).unwrap_or(0).min(buf.len() - 1);
    buf.get(..n).unwrap_or(&[]).to_vec()
}

/// Standard padded base64 (the encoding of `g_base64_encode`).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sym = |v: u32| char::from(ALPHABET.get((v & 63) as usize).copied().unwrap_or(b'='));
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let v = (b(0) << 16) | (b(1) << 8) | b(2);
        out.push(sym(v >> 18));
        out.push(sym(v >> 12));
        out.push(if chunk.len() > 1 { sym(v >> 6) } else { '=' });
        out.push(if chunk.len() > 2 { sym(v) } else { '=' });
    }
    out
}
