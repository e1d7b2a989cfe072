//! Decoding of string tokens exactly as QEMU's parser does (`parse_string` in
//! `qobject/json-parser.c`, `mod_utf8_codepoint` in `util/unicode.c`). Spec §1.4.
//!
//! Strings are never copied to be validated: [`Chars`] walks the token and yields code points
//! (U+0000 included, which QEMU stores as the modified UTF-8 pair `C0 80`).

/// Why a string token is rejected. The order of checks is QEMU's: the first problem met while
/// walking the string wins.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StrError {
    /// A backslash followed by a character that is not an escape.
    InvalidEscape,
    /// A `\u` escape that is short, a lone or reversed surrogate, or a noncharacter. The span
    /// (offsets inside the token) is the escape text QEMU quotes in its message.
    InvalidUnicode {
        /// Offset of the backslash.
        start: usize,
        /// End of the quoted text.
        end: usize,
    },
    /// Raw bytes that are not modified UTF-8.
    InvalidUtf8,
}

/// True for code points QEMU refuses to store: beyond Unicode, surrogates, noncharacters.
pub const fn is_valid_codepoint(cp: u32) -> bool {
    !(cp > 0x10FFFF
        || (cp & 0xFFFE) == 0xFFFE
        || (cp >= 0xFDD0 && cp <= 0xFDEF)
        || (cp >= 0xD800 && cp <= 0xDFFF))
}

/// Decodes one code point of modified UTF-8 at the start of `s` the way QEMU's
/// `mod_utf8_codepoint` does. Returns the code point (`None` if invalid) and how many bytes the
/// sequence used. An empty input returns `(None, 0)`.
pub fn mod_utf8_decode(s: &[u8]) -> (Option<u32>, usize) {
    const MIN_CP: [u32; 5] = [0x80, 0x800, 0x10000, 0x200000, 0x4000000];
    let Some(&lead) = s.first() else {
        return (None, 0);
    };
    if lead < 0x80 {
        return (Some(u32::from(lead)), 1);
    }
    if lead >= 0xFE || lead & 0x40 == 0 {
        // Impossible byte, or a continuation byte where a sequence should start.
        return (None, 1);
    }
    let len = lead.leading_ones() as usize; // 2..=6
    let mut cp = u32::from(lead) & (0x7F >> len);
    let mut used = 1;
    for i in 1..len {
        match s.get(i) {
            Some(&b) if b & 0xC0 == 0x80 => {
                cp = (cp << 6) | u32::from(b & 0x3F);
                used += 1;
            }
            // A missing continuation byte: the sequence ends before it.
            _ => return (None, used),
        }
    }
    let min = MIN_CP.get(len.wrapping_sub(2)).copied().unwrap_or(0);
    let ok = is_valid_codepoint(cp) && (cp >= min || (cp == 0 && len == 2));
    (if ok { Some(cp) } else { None }, used)
}

fn hex4(s: &[u8]) -> Option<u32> {
    let mut cp = 0u32;
    for i in 0..4 {
        let d = char::from(*s.get(i)?).to_digit(16)?;
        cp = (cp << 4) | d;
    }
    Some(cp)
}

/// The code points of a string token (quotes included), in order.
#[derive(Clone, Debug)]
pub struct Chars<'a> {
    tok: &'a [u8],
    pos: usize,
    quote: u8,
    done: bool,
}

/// The first backslash in `inner`. Most strings in requests are short keys and values, where a
/// plain loop beats the SIMD search's set-up cost.
fn backslash(inner: &[u8]) -> Option<usize> {
    if inner.len() <= 32 {
        inner.iter().position(|&b| b == b'\\')
    } else {
        memchr::memchr(b'\\', inner)
    }
}

impl<'a> Chars<'a> {
    /// Walks `tok`, which must be a complete string token as the lexer produced it.
    pub fn new(tok: &'a [u8]) -> Self {
        let quote = tok.first().copied().unwrap_or(b'"');
        Chars {
            tok,
            pos: 1,
            quote,
            done: tok.len() < 2,
        }
    }

    /// Checks the whole string.
    pub fn validate(tok: &'a [u8]) -> Result<(), StrError> {
        // Fast path: runs of plain ASCII up to the next backslash need no decoding.
        let inner = tok.get(1..tok.len().saturating_sub(1)).unwrap_or(&[]);
        let plain = backslash(inner).unwrap_or(inner.len());
        if inner.get(..plain).is_some_and(<[u8]>::is_ascii) {
            if plain == inner.len() {
                return Ok(());
            }
            let mut rest = Chars::new(tok);
            rest.pos = 1 + plain;
            for c in rest {
                c?;
            }
            return Ok(());
        }
        for c in Chars::new(tok) {
            c?;
        }
        Ok(())
    }

    /// The raw content between the quotes when it contains no escape (then it is also the
    /// decoded content, for a validated token).
    pub fn unescaped(tok: &'a [u8]) -> Option<&'a [u8]> {
        let inner = tok.get(1..tok.len().checked_sub(1)?)?;
        backslash(inner).is_none().then_some(inner)
    }

    fn escape(&mut self) -> Result<u32, StrError> {
        let beg = self.pos;
        let kind = self.tok.get(beg + 1).copied().unwrap_or(0);
        self.pos = beg + 2;
        Ok(match kind {
            b'"' => 0x22,
            b'\'' => 0x27,
            b'\\' => 0x5C,
            b'/' => 0x2F,
            b'b' => 0x08,
            b'f' => 0x0C,
            b'n' => 0x0A,
            b'r' => 0x0D,
            b't' => 0x09,
            b'u' => {
                let digits = self.tok.get(self.pos..).unwrap_or(&[]);
                let mut cp = hex4(digits);
                // QEMU advances past four bytes whether or not they were hex digits; the
                // quoted text of its error message is therefore always six bytes long (cut
                // at the end of the token).
                self.pos += 4;
                if let Some(lead @ 0xD800..=0xDBFF) = cp {
                    let rest = self.tok.get(self.pos..).unwrap_or(&[]);
                    if rest.starts_with(b"\\u") {
                        cp = match rest.get(2..).and_then(hex4) {
                            Some(trail @ 0xDC00..=0xDFFF) => {
                                self.pos += 6;
                                Some(0x10000 + ((lead & 0x3FF) << 10) + (trail & 0x3FF))
                            }
                            _ => None,
                        };
                    }
                }
                match cp {
                    Some(cp) if is_valid_codepoint(cp) => cp,
                    _ => {
                        return Err(StrError::InvalidUnicode {
                            start: beg,
                            end: self.pos.min(self.tok.len()),
                        });
                    }
                }
            }
            _ => return Err(StrError::InvalidEscape),
        })
    }
}

impl Iterator for Chars<'_> {
    type Item = Result<u32, StrError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let b = match self.tok.get(self.pos) {
            // Escaped quotes are consumed with their backslash, so an unescaped quote ends it.
            Some(&b) if b != self.quote => b,
            _ => {
                self.done = true;
                return None;
            }
        };
        let r = if b == b'\\' {
            self.escape()
        } else {
            let (cp, used) = mod_utf8_decode(self.tok.get(self.pos..).unwrap_or(&[]));
            self.pos += used.max(1);
            cp.ok_or(StrError::InvalidUtf8)
        };
        if r.is_err() {
            self.done = true;
        }
        Some(r)
    }
}

/// Encodes a code point as QEMU stores it (modified UTF-8: U+0000 is `C0 80`). Returns the
/// number of bytes written into `out`.
pub fn mod_utf8_encode(cp: u32, out: &mut [u8; 4]) -> usize {
    match cp {
        1..=0x7F => {
            out[0] = cp as u8;
            1
        }
        0 | 0x80..=0x7FF => {
            out[0] = 0xC0 | (cp >> 6) as u8;
            out[1] = 0x80 | (cp & 0x3F) as u8;
            2
        }
        0x800..=0xFFFF => {
            out[0] = 0xE0 | (cp >> 12) as u8;
            out[1] = 0x80 | ((cp >> 6) & 0x3F) as u8;
            out[2] = 0x80 | (cp & 0x3F) as u8;
            3
        }
        _ => {
            out[0] = 0xF0 | ((cp >> 18) & 0x07) as u8;
            out[1] = 0x80 | ((cp >> 12) & 0x3F) as u8;
            out[2] = 0x80 | ((cp >> 6) & 0x3F) as u8;
            out[3] = 0x80 | (cp & 0x3F) as u8;
            4
        }
    }
}

/// Decodes a string token into `out` as modified UTF-8 (what QEMU hands to its handlers).
/// Returns the decoded length, or `None` if it does not fit (or the token is invalid).
pub fn decode_into(tok: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut n = 0;
    for c in Chars::new(tok) {
        let mut enc = [0u8; 4];
        let len = mod_utf8_encode(c.ok()?, &mut enc);
        out.get_mut(n..n + len)?.copy_from_slice(enc.get(..len)?);
        n += len;
    }
    Some(n)
}

/// Compares a string token's decoded content with plain text (which must not contain NUL).
pub fn eq_text(tok: &[u8], text: &[u8]) -> bool {
    if let Some(raw) = Chars::unescaped(tok) {
        // Without escapes, a validated token's bytes are its content.
        return raw == text;
    }
    let mut it = text.iter();
    for c in Chars::new(tok) {
        match (c, it.next()) {
            // Table names are ASCII, so comparing code points with bytes is exact.
            (Ok(cp), Some(&b)) if cp == u32::from(b) && b != 0 => {}
            _ => return false,
        }
    }
    it.next().is_none()
}

/// Compares the decoded contents of two string tokens.
pub fn eq_tokens(a: &[u8], b: &[u8]) -> bool {
    let mut ib = Chars::new(b);
    for ca in Chars::new(a) {
        match (ca, ib.next()) {
            (Ok(x), Some(Ok(y))) if x == y => {}
            _ => return false,
        }
    }
    ib.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(tok: &[u8]) -> Result<([u32; 16], usize), StrError> {
        let mut out = [0u32; 16];
        let mut n = 0;
        for c in Chars::new(tok) {
            out[n] = c?;
            n += 1;
        }
        Ok((out, n))
    }

    fn cps(tok: &[u8]) -> Result<std::vec::Vec<u32>, StrError> {
        collect(tok).map(|(a, n)| a[..n].to_vec())
    }

    extern crate std;

    #[test]
    fn escapes() {
        assert_eq!(
            cps(br#""\"\'\\\/\b\f\n\r\t""#).unwrap(),
            [0x22, 0x27, 0x5C, 0x2F, 8, 0xC, 0xA, 0xD, 9]
        );
        assert_eq!(cps(br"'it\'s'").unwrap(), [0x69, 0x74, 0x27, 0x73]);
        assert_eq!(cps(br#"'"'"#).unwrap(), [0x22]);
        assert_eq!(cps(br#""\x""#), Err(StrError::InvalidEscape));
        assert_eq!(cps(br#""\u00e9\uD83D\uDE00""#).unwrap(), [0xE9, 0x1F600]);
        assert_eq!(cps(br#""\u0000""#).unwrap(), [0]);
    }

    #[test]
    fn unicode_errors_quote_the_escape() {
        let check = |tok: &[u8], quoted: &[u8]| match cps(tok) {
            Err(StrError::InvalidUnicode { start, end }) => assert_eq!(&tok[start..end], quoted),
            other => panic!("{tok:?} gave {other:?}"),
        };
        check(br#""\uD800""#, br"\uD800");
        check(br#""\uD800\u0041""#, br"\uD800");
        check(br#""\uDC00""#, br"\uDC00");
        check(br#""\u12""#, br#"\u12""#);
        check(br#""\uFFFF""#, br"\uFFFF");
        check(br#""\uFDD0""#, br"\uFDD0");
        check(br#""\uD83F\uDFFF""#, br"\uD83F\uDFFF");
    }

    #[test]
    fn raw_utf8() {
        assert_eq!(cps(b"\"\xc3\xa9\"").unwrap(), [0xE9]);
        assert_eq!(cps(b"\"\xc0\x80\"").unwrap(), [0]);
        assert_eq!(cps(b"\"\xf0\x9f\x98\x80\"").unwrap(), [0x1F600]);
        for bad in [
            &b"\"a\x80b\""[..],
            b"\"\xc3\"",
            b"\"\xc1\xbf\"",
            b"\"\xe0\x80\xaf\"",
            b"\"\xed\xa0\x80\"",
            b"\"\xef\xbf\xbf\"",
            b"\"\xf4\x90\x80\x80\"",
            b"\"\xf8\x88\x80\x80\x80\"",
            b"\"\xfd\"",
        ] {
            assert_eq!(cps(bad), Err(StrError::InvalidUtf8), "{bad:?}");
        }
    }

    #[test]
    fn decode_and_compare() {
        let mut buf = [0u8; 16];
        let n = decode_into(br#""a\u0000b""#, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"a\xc0\x80b");
        assert!(eq_text(br#""guest-\u0070ing""#, b"guest-ping"));
        assert!(!eq_text(br#""guest-ping\u0000""#, b"guest-ping"));
        assert!(eq_tokens(br#""execute""#, br"'exec\u0075te'"));
        assert!(!eq_tokens(br#""a""#, br#""ab""#));
        assert_eq!(decode_into(br#""abc""#, &mut buf[..2]), None);
    }

    #[test]
    fn mod_utf8_decode_lengths() {
        assert_eq!(mod_utf8_decode(b"\x80x"), (None, 1));
        assert_eq!(mod_utf8_decode(b"\xc3x"), (None, 1));
        assert_eq!(mod_utf8_decode(b"\xe2\x82x"), (None, 2));
        assert_eq!(mod_utf8_decode(b"\xc1\xbf"), (None, 2));
        assert_eq!(mod_utf8_decode(b"\xe2\x82\xac"), (Some(0x20AC), 3));
        assert_eq!(mod_utf8_decode(b""), (None, 0));
    }
}
