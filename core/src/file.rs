//! `guest-file-read` and `guest-file-write` payloads, streamed through the work buffer: a read
//! of any size is base64-encoded piece by piece into the reply, a write is decoded piece by piece
//! into the host, so memory stays bounded by the work buffer whatever `count` is.

use crate::host::{Host, HostError, Out, ReadPlan};
use crate::json::string::Chars;
use crate::proto::ErrorClass;
use base64::Engine as _;

/// The base64 routines for file payloads, where nearly all of a large transfer's CPU goes. The
/// default is the portable engine; a platform that can do better supplies its own (the std
/// shell picks AVX2 or NEON at run time). A replacement must give exactly the same results (the
/// shell's tests compare the two).
#[derive(Clone, Copy)]
pub struct Base64Codec {
    /// Writes the padded standard-alphabet encoding of `input` into `output`; its length, or
    /// `None` if `output` is too small.
    pub encode: fn(input: &[u8], output: &mut [u8]) -> Option<usize>,
    /// Decodes standard-alphabet text made of whole 4-character groups (the last may be padded;
    /// bits after the last full byte are ignored, as GLib does) into `output`; the bytes
    /// written, or `None` for invalid text or a too small `output`.
    pub decode: fn(input: &[u8], output: &mut [u8]) -> Option<usize>,
}

impl core::fmt::Debug for Base64Codec {
    // Not the function addresses: nothing useful, and pointer formatting costs code size.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Base64Codec")
    }
}

impl Base64Codec {
    /// The `base64` crate's portable engine.
    pub const PORTABLE: Base64Codec = Base64Codec {
        encode: portable_encode,
        decode: portable_decode,
    };
}

fn portable_encode(input: &[u8], output: &mut [u8]) -> Option<usize> {
    base64::engine::general_purpose::STANDARD
        .encode_slice(input, output)
        .ok()
}

fn portable_decode(input: &[u8], output: &mut [u8]) -> Option<usize> {
    LENIENT.decode_slice(input, output).ok()
}

/// Streams `{"count": N, "buf-b64": "…", "eof": B}` (qemu-ga's member order) into `out`.
pub(crate) fn stream_read<H: Host + ?Sized>(
    host: &mut H,
    handle: i64,
    plan: ReadPlan,
    work: &mut [u8],
    codec: &Base64Codec,
    out: &mut Out<'_>,
) {
    let mut num = [0u8; 24];
    out.raw(b"{\"count\": ");
    out.raw(crate::agent::fmt_i64(plan.count as i64, &mut num));
    out.raw(b", \"buf-b64\": \"");
    // Raw pieces are a multiple of 3 bytes so that only the last one is padded.
    let raw_len = (work.len() / 7 * 3).clamp(3, 48 * 1024);
    let (raw, enc) = work.split_at_mut(raw_len.min(work.len()));
    let mut left = plan.count;
    let mut filled = 0usize;
    while left > 0 || filled > 0 {
        while filled < raw.len() && left > 0 {
            let want = (raw.len() - filled).min(left);
            let dst = raw.get_mut(filled..filled + want).unwrap_or(&mut []);
            let got = match host.file_read_data(handle, dst) {
                Ok(0) | Err(_) => {
                    // The data ran out early: keep the promised count (zero bytes).
                    dst.fill(0);
                    want
                }
                Ok(n) => n.min(want),
            };
            filled += got;
            left -= got;
        }
        let chunk = raw.get(..filled).unwrap_or(&[]);
        let n = (codec.encode)(chunk, enc).unwrap_or(0);
        out.raw(enc.get(..n).unwrap_or(&[]));
        filled = 0;
    }
    out.raw(if plan.eof {
        b"\", \"eof\": true}"
    } else {
        b"\", \"eof\": false}"
    });
}

/// GLib's lenient base64 decoder state (`g_base64_decode_step`), which qemu-ga uses after
/// checking the characters: groups of four significant characters, `=` padding suppressing
/// output bytes, an incomplete final group dropped (so `"QQ"` decodes to nothing).
#[derive(Default)]
pub(crate) struct GlibB64 {
    v: u32,
    i: u32,
    last: [u8; 2],
}

fn rank(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => u32::from(c - b'A'),
        b'a'..=b'z' => u32::from(c - b'a') + 26,
        b'0'..=b'9' => u32::from(c - b'0') + 52,
        b'+' => 62,
        b'/' => 63,
        b'=' => 0,
        _ => return None,
    })
}

impl GlibB64 {
    /// Decodes one character; returns the bytes completed (0 to 3) in `out`.
    pub(crate) fn step(&mut self, c: u8, out: &mut [u8; 3]) -> usize {
        let Some(r) = rank(c) else { return 0 };
        self.last = [c, self.last[0]];
        self.v = (self.v << 6) | r;
        self.i += 1;
        if self.i < 4 {
            return 0;
        }
        self.i = 0;
        let mut n = 0;
        out[0] = (self.v >> 16) as u8;
        n += 1;
        if self.last[1] != b'=' {
            if let Some(o) = out.get_mut(n) {
                *o = (self.v >> 8) as u8;
            }
            n += 1;
        }
        if self.last[0] != b'=' {
            if let Some(o) = out.get_mut(n) {
                *o = self.v as u8;
            }
            n += 1;
        }
        n
    }
}

/// The bytes to write: `count` if given and within the decoded payload, else qemu-ga's error.
fn write_count(
    count: Option<i64>,
    total: usize,
) -> Result<usize, (ErrorClass, crate::agent::Fail<'static>)> {
    match count {
        None => Ok(total),
        Some(c) if c >= 0 && (c as u64) <= total as u64 => Ok(c as usize),
        Some(c) => Err((
            ErrorClass::GenericError,
            crate::agent::Fail::Desc(crate::agent::Desc::WriteCount(c)),
        )),
    }
}

/// Characters qemu's `qbase64_decode` accepts.
fn valid_b64_char(c: u32) -> bool {
    matches!(c, 0x41..=0x5A | 0x61..=0x7A | 0x30..=0x39 | 0x2B | 0x2F | 0x3D)
}

/// `guest-file-write`: checks the payload, then decodes it into the host piece by piece.
pub(crate) fn write<H: Host + ?Sized>(
    host: &mut H,
    handle: i64,
    b64_tok: &[u8],
    count: Option<i64>,
    work: &mut [u8],
    codec: &Base64Codec,
    out: &mut Out<'_>,
) -> Result<(), (ErrorClass, crate::agent::Fail<'static>)> {
    use crate::agent::Fail;
    let fail = |m: &'static str| (ErrorClass::GenericError, Fail::Host(HostError::Message(m)));
    // The handle is looked up before the payload is checked, as in qemu-ga.
    host.file_write_begin(handle)
        .map_err(|e| (ErrorClass::GenericError, Fail::Host(e)))?;
    if let Some(raw) = canonical_b64(b64_tok) {
        return write_canonical(host, handle, raw, count, work, codec, out);
    }
    // Pass 1: qbase64_decode's character check, and the decoded length.
    let mut dec = GlibB64::default();
    let mut total = 0usize;
    let mut tmp = [0u8; 3];
    for cp in Chars::new(b64_tok) {
        // U+0000 is stored as C0 80 by qemu's parser, so it is simply an invalid character.
        let cp = cp.map_err(|_| fail("Base64 data contains invalid characters"))?;
        if !valid_b64_char(cp) {
            return Err(fail("Base64 data contains invalid characters"));
        }
        total += dec.step(cp as u8, &mut tmp);
    }
    let count = write_count(count, total)?;
    // Pass 2: decode and hand over the first `count` bytes.
    let mut dec = GlibB64::default();
    let mut filled = 0usize;
    let mut left = count;
    let cap = work.len().max(3) - 2;
    for cp in Chars::new(b64_tok).flatten() {
        if left == 0 {
            break;
        }
        let n = dec.step(cp as u8, &mut tmp).min(left);
        if let Some(dst) = work.get_mut(filled..filled + n) {
            dst.copy_from_slice(tmp.get(..n).unwrap_or(&[]));
        }
        filled += n;
        left -= n;
        if filled >= cap {
            host.file_write_data(handle, work.get(..filled).unwrap_or(&[]))
                .map_err(|e| (ErrorClass::GenericError, Fail::Host(e)))?;
            filled = 0;
        }
    }
    if filled > 0 {
        host.file_write_data(handle, work.get(..filled).unwrap_or(&[]))
            .map_err(|e| (ErrorClass::GenericError, Fail::Host(e)))?;
    }
    host.file_write_end(handle, out)
        .map_err(|e| (ErrorClass::GenericError, Fail::Host(e)))
}

/// The payload as-is when it needs neither JSON unescaping nor GLib's leniency: only alphabet
/// characters, a length that is a multiple of 4, and `=` only as the last one or two. For such
/// text GLib's decoder and a standard one agree, so the fast decoder may be used.
fn canonical_b64(tok: &[u8]) -> Option<&[u8]> {
    let raw = crate::json::string::Chars::unescaped(tok)?;
    if raw.len() % 4 != 0 {
        return None;
    }
    let body_len = raw.len() - raw.iter().rev().take(2).take_while(|&&c| c == b'=').count();
    let (body, _) = raw.split_at_checked(body_len)?;
    // A branch-free fold over a table: the compiler vectorises it (payloads are long).
    let ok = body.iter().fold(true, |ok, &c| {
        ok & B64_ALPHABET.get(usize::from(c)).copied().unwrap_or(false)
    });
    ok.then_some(raw)
}

/// Characters of the standard base64 alphabet (without `=`).
// Evaluated at compile time: an index out of range would fail the build, not panic.
#[allow(clippy::indexing_slicing)]
static B64_ALPHABET: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
        c += 1;
    }
    t
};

/// GLib keeps the bits after the last full byte; a strict engine would reject them.
const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

fn write_canonical<H: Host + ?Sized>(
    host: &mut H,
    handle: i64,
    raw: &[u8],
    count: Option<i64>,
    work: &mut [u8],
    codec: &Base64Codec,
    out: &mut Out<'_>,
) -> Result<(), (ErrorClass, crate::agent::Fail<'static>)> {
    use crate::agent::Fail;
    let pads = raw.iter().rev().take_while(|&&c| c == b'=').count();
    let total = raw.len() / 4 * 3 - pads;
    let count = write_count(count, total)?;
    let host_err = |e| (ErrorClass::GenericError, Fail::Host(e));
    // Whole groups of 4 characters decode to 3 bytes each, straight into the work buffer.
    let group_chars = (work.len() / 3).max(1) * 4;
    let mut left = count;
    for chunk in raw.chunks(group_chars) {
        if left == 0 {
            break;
        }
        let n = match (codec.decode)(chunk, &mut *work) {
            Some(n) => n,
            // Cannot happen for canonical text; fail cleanly rather than write garbage.
            None => {
                return Err(host_err(HostError::Message(
                    "Base64 data contains invalid characters",
                )));
            }
        };
        let n = n.min(left);
        host.file_write_data(handle, work.get(..n).unwrap_or(&[]))
            .map_err(host_err)?;
        left -= n;
    }
    host.file_write_end(handle, out).map_err(host_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &[u8]) -> std::vec::Vec<u8> {
        let mut d = GlibB64::default();
        let mut out = std::vec::Vec::new();
        let mut t = [0u8; 3];
        for &c in s {
            let n = d.step(c, &mut t);
            out.extend_from_slice(&t[..n]);
        }
        out
    }

    extern crate std;

    #[test]
    fn glib_leniency() {
        assert_eq!(decode(b"SGVsbG8gV29ybGQhCgA="), b"Hello World!\n\0");
        assert_eq!(decode(b"QQ"), b"");
        assert_eq!(decode(b"QQ=="), b"A");
        assert_eq!(decode(b"QUI="), b"AB");
    }
}
