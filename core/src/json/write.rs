//! Byte-exact reproduction of QEMU's compact JSON output (`qobject/json-writer.c`).
//!
//! The writer streams straight into an [`embedded_io::Write`] sink: nothing is buffered and nothing
//! is allocated. It only knows how to write single tokens; separators (`", "`, `": "`) and brackets
//! are written by the caller through [`JsonWriter::raw`] (see `json::ser` for a serde front end).
//!
//! Strings are treated the way QEMU treats its stored C strings: the bytes are decoded as
//! *modified* UTF-8 (`C0 80` is U+0000) exactly like `mod_utf8_codepoint(ptr, 6, &end)` in
//! `util/unicode.c`, every invalid sequence becomes `\uFFFD`, a raw NUL byte ends the string, and
//! everything that is not printable ASCII is escaped as `\uXXXX` with upper-case hex digits.

use core::fmt::Write as _;

use embedded_io::Write;

/// Streams QEMU-style compact JSON tokens into a byte sink.
///
/// Every method returns the sink's error unchanged; after an error the output may hold a partial
/// token and should be discarded.
pub struct JsonWriter<'w, W: Write + ?Sized> {
    /// Where the bytes go.
    out: &'w mut W,
    /// Set when a NUL byte ended the piecewise string being written: QEMU's strings are C
    /// strings, so nothing after the NUL is written until [`JsonWriter::string_end`].
    cut: bool,
}

impl<'w, W: Write + ?Sized> JsonWriter<'w, W> {
    /// Wraps a sink.
    pub fn new(out: &'w mut W) -> Self {
        Self { out, cut: false }
    }

    /// The underlying sink, for writing bytes that are not JSON (the trailing `\n`, the 0xFF of
    /// `guest-sync-delimited`) or for flushing.
    pub fn inner(&mut self) -> &mut W {
        self.out
    }

    /// Writes `bytes` verbatim: brackets, separators, or a pre-serialised value.
    pub fn raw(&mut self, bytes: &[u8]) -> Result<(), W::Error> {
        self.out.write_all(bytes)
    }

    /// Writes a complete quoted string from stored bytes (modified UTF-8, cut at the first NUL).
    ///
    /// Invalid sequences are written as `\uFFFD`; see the module documentation.
    pub fn string(&mut self, bytes: &[u8]) -> Result<(), W::Error> {
        if self.short_plain(bytes, b"\"")? {
            return Ok(());
        }
        self.string_begin()?;
        self.string_part(bytes)?;
        self.string_end()
    }

    /// Writes an object member's key and the `": "` after it.
    pub fn key(&mut self, key: &[u8]) -> Result<(), W::Error> {
        if self.short_plain(key, b"\": ")? {
            return Ok(());
        }
        self.string(key)?;
        self.raw(b": ")
    }

    /// Writes `"`, `bytes` and `tail` (at most 3 bytes) in one piece when `bytes` is short and
    /// needs no escaping: most keys and names are, replies are made of many of them, and every
    /// write has a cost. `Ok(false)`, with nothing written, otherwise.
    fn short_plain(&mut self, bytes: &[u8], tail: &[u8]) -> Result<bool, W::Error> {
        const SHORT: usize = 64;
        let n = bytes.len();
        if n > SHORT || tail.len() > 3 || !bytes.iter().all(|&b| is_plain(b)) {
            return Ok(false);
        }
        let mut buf = [0u8; SHORT + 4];
        let end = n + 1 + tail.len();
        let piece = match buf.get_mut(..end) {
            Some(piece) => piece,
            None => return Ok(false),
        };
        let (quote, rest) = piece.split_at_mut(1);
        let (body, after) = rest.split_at_mut(n);
        quote.copy_from_slice(b"\"");
        body.copy_from_slice(bytes);
        after.copy_from_slice(tail);
        self.cut = false;
        self.out.write_all(piece)?;
        Ok(true)
    }

    /// Opens a string that is written in pieces with [`string_part`](Self::string_part) and
    /// [`string_char`](Self::string_char) and closed with [`string_end`](Self::string_end).
    pub fn string_begin(&mut self) -> Result<(), W::Error> {
        self.cut = false;
        self.out.write_all(b"\"")
    }

    /// Writes the next piece of an open string, decoded and escaped like
    /// [`string`](Self::string).
    ///
    /// Pieces are decoded independently, so a multi-byte sequence must not be split between two
    /// pieces (one that is gets written as `\uFFFD`s). A NUL byte ends the string as in C: it and
    /// everything written after it, up to [`string_end`](Self::string_end), are dropped.
    pub fn string_part(&mut self, bytes: &[u8]) -> Result<(), W::Error> {
        let mut rest = bytes;
        while !self.cut && !rest.is_empty() {
            // The longest prefix that needs no escaping goes out in one write.
            let plain = rest
                .iter()
                .position(|&b| !is_plain(b))
                .unwrap_or(rest.len());
            let (run, tail) = rest.split_at_checked(plain).unwrap_or((rest, &[]));
            if !run.is_empty() {
                self.out.write_all(run)?;
            }
            rest = tail;
            match rest.first() {
                None => break,
                Some(0) => self.cut = true,
                Some(_) => {
                    let (cp, used) = decode_mod_utf8(rest);
                    self.escaped(cp)?;
                    // `used` is at least 1 for a non-empty input that does not start with NUL.
                    rest = rest.get(used.max(1)..).unwrap_or(&[]);
                }
            }
        }
        Ok(())
    }

    /// Writes one already decoded code point into an open string.
    ///
    /// U+0000 is written as `\u0000` (it is how a stored `C0 80` comes out). A value that is not
    /// a Unicode scalar value, or that is a noncharacter (which QEMU never stores), becomes
    /// `\uFFFD`. Nothing is written after a NUL cut by [`string_part`](Self::string_part).
    pub fn string_char(&mut self, cp: u32) -> Result<(), W::Error> {
        if self.cut {
            return Ok(());
        }
        self.escaped(is_valid_codepoint(cp).then_some(cp))
    }

    /// Closes a string opened with [`string_begin`](Self::string_begin).
    pub fn string_end(&mut self) -> Result<(), W::Error> {
        self.cut = false;
        self.out.write_all(b"\"")
    }

    /// Writes a signed integer in decimal (`PRId64`).
    pub fn int(&mut self, v: i64) -> Result<(), W::Error> {
        if v < 0 {
            self.out.write_all(b"-")?;
        }
        self.uint(v.unsigned_abs())
    }

    /// Writes an unsigned integer in decimal (`PRIu64`).
    pub fn uint(&mut self, v: u64) -> Result<(), W::Error> {
        let mut buf = [0u8; 20];
        self.out.write_all(format_u64(v, &mut buf))
    }

    /// Writes a double as C `printf("%.17g")` in the C locale, including QEMU's invalid-JSON
    /// `inf`, `-inf`, `nan` and `-nan`.
    pub fn double(&mut self, v: f64) -> Result<(), W::Error> {
        let mut buf = [0u8; 32];
        self.out.write_all(format_g17(v, &mut buf))
    }

    /// Writes `true` or `false`.
    pub fn bool(&mut self, v: bool) -> Result<(), W::Error> {
        self.out.write_all(if v { b"true" } else { b"false" })
    }

    /// Writes `null`.
    pub fn null(&mut self) -> Result<(), W::Error> {
        self.out.write_all(b"null")
    }

    /// Writes one decoded code point (`None` for an invalid sequence) as json-writer.c's
    /// `quoted_str` does.
    fn escaped(&mut self, cp: Option<u32>) -> Result<(), W::Error> {
        let cp = cp.unwrap_or(0xFFFD);
        let short: &[u8] = match cp {
            0x22 => b"\\\"",
            0x5C => b"\\\\",
            0x08 => b"\\b",
            0x0C => b"\\f",
            0x0A => b"\\n",
            0x0D => b"\\r",
            0x09 => b"\\t",
            _ => b"",
        };
        if !short.is_empty() {
            return self.out.write_all(short);
        }
        if cp > 0xFFFF {
            // Beyond the BMP: a UTF-16 surrogate pair, each half escaped.
            let v = cp.wrapping_sub(0x1_0000);
            self.u_escape(0xD800 | (v >> 10))?;
            self.u_escape(0xDC00 | (v & 0x3FF))
        } else if !(0x20..0x7F).contains(&cp) {
            self.u_escape(cp)
        } else {
            // Printable ASCII: `cp` is below 0x7F here, so the cast is lossless.
            self.out.write_all(&[cp as u8])
        }
    }

    /// Writes `\u` and four upper-case hex digits of the low 16 bits of `v`.
    fn u_escape(&mut self, v: u32) -> Result<(), W::Error> {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let mut buf = *b"\\u0000";
        for (slot, shift) in buf.iter_mut().skip(2).zip([12u32, 8, 4, 0]) {
            let nibble = (v >> shift) & 0xF;
            *slot = HEX.get(nibble as usize).copied().unwrap_or(b'0');
        }
        self.out.write_all(&buf)
    }
}

/// True for bytes written as themselves: printable ASCII other than `"` and `\`.
const fn is_plain(b: u8) -> bool {
    b >= 0x20 && b < 0x7F && b != b'"' && b != b'\\'
}

/// True for the code points QEMU's modified UTF-8 accepts: Unicode scalar values that are not
/// noncharacters (U+FDD0..U+FDEF and U+xxFFFE/U+xxFFFF). U+0000 is valid (encoded `C0 80`).
const fn is_valid_codepoint(cp: u32) -> bool {
    cp <= 0x10_FFFF
        && !(cp >= 0xFDD0 && cp <= 0xFDEF)
        && cp & 0xFFFE != 0xFFFE
        && !(cp >= 0xD800 && cp <= 0xDFFF)
}

/// Decodes the modified UTF-8 sequence at the start of `s` like QEMU's
/// `mod_utf8_codepoint(s, 6, &end)`, where the end of `s` acts like the terminating NUL.
///
/// Returns the code point (`None` if the sequence is invalid) and the number of bytes consumed:
/// 1 for a bad lead byte (a continuation byte, 0xFE or 0xFF); the lead byte plus the continuation
/// bytes present when one is missing (the byte that is not a continuation is not consumed); the
/// whole sequence otherwise, valid or not. `s` must not be empty or start with NUL (the caller
/// ends the string there); for such input `(None, 0)` is returned.
fn decode_mod_utf8(s: &[u8]) -> (Option<u32>, usize) {
    /// Smallest code point that needs a sequence of 2, 3, 4, 5, 6 bytes (overlong check).
    const MIN_CP: [u32; 5] = [0x80, 0x800, 0x1_0000, 0x20_0000, 0x400_0000];

    let Some((&lead, rest)) = s.split_first() else {
        return (None, 0);
    };
    match lead {
        0 => return (None, 0),
        0x01..=0x7F => return (Some(u32::from(lead)), 1),
        // Impossible bytes, and continuation bytes where a lead byte is expected.
        0xFE | 0xFF | 0x80..=0xBF => return (None, 1),
        _ => {}
    }
    // 0xC0..=0xFD: the number of leading one bits is the sequence length, 2 to 6.
    let len = lead.leading_ones() as usize;
    let mut cp = u32::from(lead & (0x7F >> len));
    let mut used = 1;
    for &byte in rest.iter().take(len - 1) {
        if byte & 0xC0 != 0x80 {
            return (None, used);
        }
        // At most 1 + 5 * 6 = 31 bits for a six-byte sequence: no overflow.
        cp = (cp << 6) | u32::from(byte & 0x3F);
        used += 1;
    }
    if used < len {
        // Truncated by the end of the input (QEMU meets the terminating NUL there).
        return (None, used);
    }
    let min = MIN_CP.get(len - 2).copied().unwrap_or(0);
    let overlong = cp < min && !(cp == 0 && len == 2);
    if overlong || !is_valid_codepoint(cp) {
        return (None, used);
    }
    (Some(cp), used)
}

/// Formats `v` in decimal into the end of `buf` and returns the digits.
fn format_u64(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    for slot in buf.iter_mut().rev() {
        // `v % 10` is below 10, so the cast is lossless.
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
        start -= 1;
        if v == 0 {
            break;
        }
    }
    buf.get(start..).unwrap_or(b"0")
}

/// A `core::fmt::Write` sink over a fixed array; fails (instead of truncating) when full.
struct ArrayWriter<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> core::fmt::Write for ArrayWriter<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(core::fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Formats `v` exactly as C `printf("%.17g", v)` does in the C locale (glibc), into `buf`.
///
/// Finite values get 17 significant digits, correctly rounded (ties to even), in `%f` style when
/// the decimal exponent X satisfies -4 <= X < 17 and in `%e` style otherwise (exponent with a sign
/// and at least two digits); trailing zeros and a trailing `.` are removed. Non-finite values are
/// `inf`, `-inf`, `nan` and `-nan` (NaN with the sign bit set), as glibc prints them.
pub fn format_g17(v: f64, buf: &mut [u8; 32]) -> &[u8] {
    /// Significant digits of `%.17g`.
    const PREC: i32 = 17;

    if v.is_nan() {
        return if v.is_sign_negative() {
            b"-nan"
        } else {
            b"nan"
        };
    }
    if v.is_infinite() {
        return if v < 0.0 { b"-inf" } else { b"inf" };
    }

    // core::fmt rounds correctly: `d.dddddddddddddddde[-]X`, 17 significant digits. The longest
    // possible output, "-1.7976931348623157e308", is 23 bytes.
    let mut sci = ArrayWriter {
        buf: [0u8; 32],
        len: 0,
    };
    if write!(sci, "{:.16e}", v).is_err() {
        return b"0";
    }
    let text = sci.buf.get(..sci.len).unwrap_or(&[]);
    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let Some(e_pos) = text.iter().position(|&b| b == b'e') else {
        return b"0";
    };
    let (mantissa, exp_text) = text.split_at_checked(e_pos).unwrap_or((text, &[]));
    let mut digits = [b'0'; PREC as usize];
    for (slot, &d) in digits
        .iter_mut()
        .zip(mantissa.iter().filter(|b| b.is_ascii_digit()))
    {
        *slot = d;
    }
    let exp = parse_exponent(exp_text.get(1..).unwrap_or(&[]));

    let mut out = Out { buf, len: 0 };
    if negative {
        out.push(b'-');
    }
    if (-4..PREC).contains(&exp) {
        // `%f` with 16 - X decimals. All 17 digits are significant in either part.
        if exp >= 0 {
            // `exp` is in 0..17 here: the split cannot fail.
            let (int_part, frac) = digits
                .split_at_checked(exp as usize + 1)
                .unwrap_or((&digits, &[]));
            out.extend(int_part);
            out.fraction(frac);
        } else {
            out.push(b'0');
            let mut frac = [b'0'; PREC as usize + 3];
            let zeros = (-exp - 1) as usize;
            for (slot, &d) in frac.iter_mut().skip(zeros).zip(digits.iter()) {
                *slot = d;
            }
            out.fraction(frac.get(..zeros + digits.len()).unwrap_or(&[]));
        }
    } else {
        if let Some((&first, frac)) = digits.split_first() {
            out.push(first);
            out.fraction(frac);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let mut exp_buf = [0u8; 20];
        let exp_digits = format_u64(u64::from(exp.unsigned_abs()), &mut exp_buf);
        if exp_digits.len() < 2 {
            out.push(b'0');
        }
        out.extend(exp_digits);
    }
    let len = out.len;
    out.buf.get(..len).unwrap_or(&[])
}

/// Parses the decimal exponent printed by core::fmt (`-7`, `300`); garbage gives 0.
fn parse_exponent(text: &[u8]) -> i32 {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let mut value: i32 = 0;
    for &d in digits {
        value = value
            .saturating_mul(10)
            .saturating_add(i32::from(d.wrapping_sub(b'0')));
    }
    if negative { -value } else { value }
}

/// Appends bytes to the `format_g17` output buffer, dropping what does not fit (never happens:
/// the longest output is 24 bytes).
struct Out<'b> {
    buf: &'b mut [u8; 32],
    len: usize,
}

impl Out<'_> {
    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    fn extend(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(b);
        }
    }

    /// Appends `.` and the fraction digits without trailing zeros (`%g` style); nothing at all
    /// if every digit is zero.
    fn fraction(&mut self, frac: &[u8]) {
        let keep = frac.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1);
        if keep > 0 {
            self.push(b'.');
            self.extend(frac.get(..keep).unwrap_or(&[]));
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
pub(crate) mod tests {
    extern crate std;

    use std::format;
    use std::string::String;
    use std::vec::Vec;

    use super::*;

    /// A growable test sink.
    #[derive(Default)]
    pub(crate) struct VecSink(pub Vec<u8>);

    impl embedded_io::ErrorType for VecSink {
        type Error = core::convert::Infallible;
    }

    impl embedded_io::Write for VecSink {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    /// Runs `f` on a writer over a fresh sink and returns what it wrote, as text.
    fn written(f: impl FnOnce(&mut JsonWriter<'_, VecSink>)) -> String {
        let mut sink = VecSink::default();
        f(&mut JsonWriter::new(&mut sink));
        String::from_utf8(sink.0).expect("the writer only writes ASCII")
    }

    fn quoted(bytes: &[u8]) -> String {
        written(|w| w.string(bytes).unwrap())
    }

    /// (input bytes, expected output without the surrounding quotes).
    const STRING_VECTORS: &[(&[u8], &str)] = &[
        // Plain and empty.
        (b"", ""),
        (b"abc", "abc"),
        (b"guest-ping", "guest-ping"),
        // Short escapes.
        (b"\"", "\\\""),
        (b"\\", "\\\\"),
        (b"\x08", "\\b"),
        (b"\x0c", "\\f"),
        (b"\n", "\\n"),
        (b"\r", "\\r"),
        (b"\t", "\\t"),
        // Other control characters, DEL: upper-case `\u` escapes.
        (b"\x01", "\\u0001"),
        (b"\x0b", "\\u000B"),
        (b"\x1f", "\\u001F"),
        (b"\x7f", "\\u007F"),
        // Written as-is.
        (b"/'<>&", "/'<>&"),
        (b" ~", " ~"),
        // Valid multi-byte sequences.
        (b"\xc2\x80", "\\u0080"),
        (b"\xc3\xa9", "\\u00E9"),
        (b"\xdf\xbf", "\\u07FF"),
        (b"\xe0\xa0\x80", "\\u0800"),
        (b"\xe2\x80\x9c", "\\u201C"),
        (b"\xef\xbf\xbd", "\\uFFFD"),
        (b"\xef\xbf\xbc", "\\uFFFC"),
        (b"\xed\x9f\xbf", "\\uD7FF"),
        (b"\xee\x80\x80", "\\uE000"),
        (b"\xef\xb7\x8f", "\\uFDCF"),
        (b"\xef\xb7\xb0", "\\uFDF0"),
        (b"\xf0\x90\x80\x80", "\\uD800\\uDC00"),
        (b"\xf0\x9f\x98\x80", "\\uD83D\\uDE00"),
        (b"\xf4\x8f\xbf\xbd", "\\uDBFF\\uDFFD"),
        (b"\xf0\x9f\xbf\xbd", "\\uD83F\\uDFFD"),
        // Modified UTF-8: C0 80 is U+0000.
        (b"\xc0\x80", "\\u0000"),
        (b"a\xc0\x80b", "a\\u0000b"),
        // A raw NUL ends the string.
        (b"\x00", ""),
        (b"a\x00b", "a"),
        (b"ab\x00\xff\"", "ab"),
        // Bad lead bytes consume one byte each.
        (b"\x80", "\\uFFFD"),
        (b"\xbf", "\\uFFFD"),
        (b"\x80\x80", "\\uFFFD\\uFFFD"),
        (b"\xfe", "\\uFFFD"),
        (b"\xff", "\\uFFFD"),
        (b"\xff\xfe\xff", "\\uFFFD\\uFFFD\\uFFFD"),
        (b"a\x80b", "a\\uFFFDb"),
        // A missing continuation byte stops before that byte.
        (b"\xc3", "\\uFFFD"),
        (b"\xc3A", "\\uFFFDA"),
        (b"\xe2\x82", "\\uFFFD"),
        (b"\xe2\x82A", "\\uFFFDA"),
        (b"\xe2A\x82", "\\uFFFDA\\uFFFD"),
        (b"\xf0\x9f\x98", "\\uFFFD"),
        (b"\xf0\x9f\x98\"", "\\uFFFD\\\""),
        (b"\xc3\xc3\xa9", "\\uFFFD\\u00E9"),
        (b"\xe2\x82\x00x", "\\uFFFD"),
        (b"\xc3\x00", "\\uFFFD"),
        (b"\xfd\x80\x80\x80\x80", "\\uFFFD"),
        // Overlong forms (other than C0 80) consume the whole sequence.
        (b"\xc0\xaf", "\\uFFFD"),
        (b"\xc1\xbf", "\\uFFFD"),
        (b"\xc0\x81", "\\uFFFD"),
        (b"\xe0\x80\x80", "\\uFFFD"),
        (b"\xe0\x9f\xbf", "\\uFFFD"),
        (b"\xf0\x80\x80\x80", "\\uFFFD"),
        (b"\xf0\x8f\xbf\xbf", "\\uFFFD"),
        (b"\xf8\x80\x80\x80\x80", "\\uFFFD"),
        (b"\xfc\x80\x80\x80\x80\x80", "\\uFFFD"),
        (b"\xc0\x80\x80", "\\u0000\\uFFFD"),
        // Surrogates.
        (b"\xed\xa0\x80", "\\uFFFD"),
        (b"\xed\xbf\xbf", "\\uFFFD"),
        (b"\xed\xa0\xbd\xed\xb8\x80", "\\uFFFD\\uFFFD"),
        // Noncharacters.
        (b"\xef\xb7\x90", "\\uFFFD"),
        (b"\xef\xb7\xaf", "\\uFFFD"),
        (b"\xef\xbf\xbe", "\\uFFFD"),
        (b"\xef\xbf\xbf", "\\uFFFD"),
        (b"\xf0\x9f\xbf\xbe", "\\uFFFD"),
        (b"\xf4\x8f\xbf\xbf", "\\uFFFD"),
        // Beyond U+10FFFF, including five- and six-byte forms.
        (b"\xf4\x90\x80\x80", "\\uFFFD"),
        (b"\xf7\xbf\xbf\xbf", "\\uFFFD"),
        (b"\xf8\x88\x80\x80\x80", "\\uFFFD"),
        (b"\xfb\xbf\xbf\xbf\xbf", "\\uFFFD"),
        (b"\xfc\x84\x80\x80\x80\x80", "\\uFFFD"),
        (b"\xfd\xbf\xbf\xbf\xbf\xbf", "\\uFFFD"),
        (b"\xfd\xbf\xbf\xbf\xbf\xbfA", "\\uFFFDA"),
        // A six-byte sequence stops after six bytes; the seventh is decoded afresh.
        (b"\xfc\x80\x80\x80\x80\x80\x80", "\\uFFFD\\uFFFD"),
        // The id example of the spec (§5.3), as the parser stores it.
        (
            b"q\"b\\s/\x08\x0c\n\r\t\x01\x1f\x7f\xc2\x80 <>&'",
            "q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001F\\u007F\\u0080 <>&'",
        ),
        (b"\xc3\xa9\xf0\x9f\x98\x80", "\\u00E9\\uD83D\\uDE00"),
        (b"stray '\xff'", "stray '\\uFFFD'"),
    ];

    #[test]
    fn string_vectors() {
        for &(input, expected) in STRING_VECTORS {
            assert_eq!(
                quoted(input),
                format!("\"{expected}\""),
                "input {input:02x?}"
            );
        }
    }

    #[test]
    fn string_vectors_are_valid_json() {
        for &(input, _) in STRING_VECTORS {
            let text = quoted(input);
            let parsed: String = serde_json::from_str(&text).unwrap();
            if let Ok(s) = core::str::from_utf8(input) {
                // Valid UTF-8 without NUL or noncharacters round-trips unchanged.
                if !s.contains('\0') && s.chars().all(|c| is_valid_codepoint(c as u32)) {
                    assert_eq!(parsed, s);
                }
            }
        }
    }

    /// Every one- and two-byte input, and every three-byte input starting with a lead byte: the
    /// output is valid JSON and the decoder agrees with std on valid UTF-8.
    #[test]
    fn exhaustive_short_inputs() {
        let check = |input: &[u8]| {
            let text = quoted(input);
            let parsed: String = serde_json::from_str(&text).unwrap();
            let cut = input.iter().position(|&b| b == 0).unwrap_or(input.len());
            if let Ok(s) = core::str::from_utf8(&input[..cut])
                && s.chars().all(|c| is_valid_codepoint(c as u32))
            {
                assert_eq!(parsed, s, "input {input:02x?}");
            }
        };
        for a in 0..=255u8 {
            check(&[a]);
            for b in 0..=255u8 {
                check(&[a, b]);
            }
        }
        for a in 0xE0..=0xEFu8 {
            for b in 0x80..=0xBFu8 {
                for c in [0x00, 0x41, 0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF] {
                    check(&[a, b, c]);
                }
            }
        }
    }

    #[test]
    fn decoder_consumption() {
        assert_eq!(decode_mod_utf8(b""), (None, 0));
        assert_eq!(decode_mod_utf8(b"\0"), (None, 0));
        assert_eq!(decode_mod_utf8(b"A"), (Some(0x41), 1));
        assert_eq!(decode_mod_utf8(b"\x80\x80"), (None, 1));
        assert_eq!(decode_mod_utf8(b"\xff\x80"), (None, 1));
        assert_eq!(decode_mod_utf8(b"\xe2\x82A"), (None, 2));
        assert_eq!(decode_mod_utf8(b"\xe2\x82"), (None, 2));
        assert_eq!(decode_mod_utf8(b"\xf0A"), (None, 1));
        assert_eq!(decode_mod_utf8(b"\xe0\x80\x80A"), (None, 3));
        assert_eq!(decode_mod_utf8(b"\xed\xa0\x80A"), (None, 3));
        assert_eq!(decode_mod_utf8(b"\xf4\x90\x80\x80A"), (None, 4));
        assert_eq!(decode_mod_utf8(b"\xfc\x84\x80\x80\x80\x80A"), (None, 6));
        assert_eq!(decode_mod_utf8(b"\xc0\x80A"), (Some(0), 2));
        assert_eq!(decode_mod_utf8(b"\xf4\x8f\xbf\xbd"), (Some(0x10_FFFD), 4));
    }

    #[test]
    fn piecewise_strings() {
        let out = written(|w| {
            w.string_begin().unwrap();
            w.string_part(b"stray '").unwrap();
            w.string_part(b"\"guest-pi\xff").unwrap();
            w.string_char(u32::from(b'\'')).unwrap();
            w.string_end().unwrap();
        });
        assert_eq!(out, "\"stray '\\\"guest-pi\\uFFFD'\"");

        // A NUL in a part suppresses everything up to the end of the string, chars included.
        let out = written(|w| {
            w.string_begin().unwrap();
            w.string_part(b"stray '").unwrap();
            w.string_part(b"a\0b").unwrap();
            w.string_part(b"more").unwrap();
            w.string_char(0x41).unwrap();
            w.string_end().unwrap();
            w.raw(b", ").unwrap();
            w.string(b"next").unwrap();
        });
        assert_eq!(out, "\"stray 'a\", \"next\"");

        // The cut is reset by string_begin as well.
        let out = written(|w| {
            w.string_begin().unwrap();
            w.string_part(b"\0").unwrap();
            w.string_begin().unwrap();
            w.string_part(b"x").unwrap();
            w.string_end().unwrap();
        });
        assert_eq!(out, "\"\"x\"");

        // Parts are decoded independently: a split sequence becomes replacement characters.
        let out = written(|w| {
            w.string_begin().unwrap();
            w.string_part(b"\xc3").unwrap();
            w.string_part(b"\xa9").unwrap();
            w.string_end().unwrap();
        });
        assert_eq!(out, "\"\\uFFFD\\uFFFD\"");
    }

    #[test]
    fn string_char_classes() {
        let cases: &[(u32, &str)] = &[
            (0, "\\u0000"),
            (0x08, "\\b"),
            (0x09, "\\t"),
            (0x0A, "\\n"),
            (0x0C, "\\f"),
            (0x0D, "\\r"),
            (0x1B, "\\u001B"),
            (0x22, "\\\""),
            (0x2F, "/"),
            (0x41, "A"),
            (0x5C, "\\\\"),
            (0x7E, "~"),
            (0x7F, "\\u007F"),
            (0xE9, "\\u00E9"),
            (0xFFFD, "\\uFFFD"),
            (0x1_F600, "\\uD83D\\uDE00"),
            (0x10_FFFD, "\\uDBFF\\uDFFD"),
            (0xD800, "\\uFFFD"),
            (0xDFFF, "\\uFFFD"),
            (0xFDD0, "\\uFFFD"),
            (0xFDEF, "\\uFFFD"),
            (0xFFFE, "\\uFFFD"),
            (0x10_FFFF, "\\uFFFD"),
            (0x11_0000, "\\uFFFD"),
            (u32::MAX, "\\uFFFD"),
        ];
        for &(cp, expected) in cases {
            let out = written(|w| {
                w.string_begin().unwrap();
                w.string_char(cp).unwrap();
                w.string_end().unwrap();
            });
            assert_eq!(out, format!("\"{expected}\""), "cp {cp:#x}");
        }
    }

    #[test]
    fn scalars() {
        assert_eq!(written(|w| w.int(0).unwrap()), "0");
        assert_eq!(written(|w| w.int(-1).unwrap()), "-1");
        assert_eq!(written(|w| w.int(12345).unwrap()), "12345");
        assert_eq!(
            written(|w| w.int(i64::MIN).unwrap()),
            "-9223372036854775808"
        );
        assert_eq!(written(|w| w.int(i64::MAX).unwrap()), "9223372036854775807");
        assert_eq!(written(|w| w.uint(0).unwrap()), "0");
        assert_eq!(
            written(|w| w.uint(u64::MAX).unwrap()),
            "18446744073709551615"
        );
        assert_eq!(written(|w| w.bool(true).unwrap()), "true");
        assert_eq!(written(|w| w.bool(false).unwrap()), "false");
        assert_eq!(written(|w| w.null().unwrap()), "null");
        assert_eq!(written(|w| w.double(1.5).unwrap()), "1.5");
        assert_eq!(written(|w| w.raw(b"{\"a\": ").unwrap()), "{\"a\": ");
        let mut sink = VecSink::default();
        let mut w = JsonWriter::new(&mut sink);
        w.inner().write_all(b"\xff").unwrap();
        w.int(1).unwrap();
        assert_eq!(sink.0, b"\xff1");
    }

    fn g17(v: f64) -> String {
        let mut buf = [0u8; 32];
        String::from_utf8(format_g17(v, &mut buf).to_vec()).unwrap()
    }

    #[test]
    fn g17_examples() {
        let cases: &[(f64, &str)] = &[
            (1.5, "1.5"),
            (0.1, "0.10000000000000001"),
            (1e300, "1.0000000000000001e+300"),
            (-2.5e-07, "-2.4999999999999999e-07"),
            (1000.0, "1000"),
            (1e3, "1000"),
            (0.0, "0"),
            (-0.0, "-0"),
            (5e-324, "4.9406564584124654e-324"),
            (-9223372036854775809.0, "-9.2233720368547758e+18"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (1e-4, "0.0001"),
            (1e-5, "1.0000000000000001e-05"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (-f64::NAN, "-nan"),
        ];
        for &(v, expected) in cases {
            assert_eq!(g17(v), expected, "{v:e}");
        }
    }

    /// Values formatted by glibc's `printf("%.17g")`; the generator is in the file's header.
    #[test]
    fn g17_matches_glibc() {
        let mut count = 0;
        for line in include_str!("g17_vectors.txt").lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (bits, expected) = line.split_once(' ').unwrap();
            let v = f64::from_bits(u64::from_str_radix(bits, 16).unwrap());
            assert_eq!(g17(v), expected, "bits {bits}");
            count += 1;
        }
        assert!(count > 3000, "only {count} vectors");
    }

    /// Finite values written by `double` are parsed back to the same double.
    #[test]
    fn g17_round_trips() {
        let mut x: u64 = 0x0123_4567_89AB_CDEF;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if v.is_finite() {
                let text = g17(v);
                assert_eq!(
                    text.parse::<f64>().unwrap().to_bits(),
                    v.to_bits(),
                    "{text}"
                );
            }
        }
    }

    /// A sink that accepts `left` bytes and then fails.
    struct Limited {
        left: usize,
    }

    impl embedded_io::ErrorType for Limited {
        type Error = embedded_io::ErrorKind;
    }

    impl embedded_io::Write for Limited {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            if self.left == 0 {
                return Err(embedded_io::ErrorKind::WriteZero);
            }
            let n = buf.len().min(self.left);
            self.left -= n;
            Ok(n)
        }
        fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    #[test]
    fn sink_errors_propagate() {
        for left in 0..12 {
            let mut sink = Limited { left };
            let mut w = JsonWriter::new(&mut sink);
            let r = w.string(b"ab\xc3\xa9\xf0\x9f\x98\x80");
            assert_eq!(r.is_err(), left < 20, "left {left}");
        }
        let mut sink = Limited { left: 3 };
        let mut w = JsonWriter::new(&mut sink);
        assert!(w.int(-12345).is_err());
        assert!(w.double(0.5).is_err());
        assert!(w.null().is_err());
    }
}
