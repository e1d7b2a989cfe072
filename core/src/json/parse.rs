//! Validation of one complete request, with QEMU's parser's errors and their precedence
//! (`qobject/json-parser.c`, spec §1.4), and navigation of the validated text.
//!
//! The request's tokens are stored back to back in the caller's frame buffer (see
//! `crate::stream`). [`validate`] walks them once, iteratively (no recursion, whatever the
//! nesting), using the free tail of the frame buffer for its container stack and for the hash
//! table that finds duplicate keys in linear time. After that, [`Msg`] navigates the text.

use super::lexer::{Tok, next_token};
use super::string::{Chars, StrError, eq_tokens};

/// A parse error: the first one QEMU's recursive-descent parser would meet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ParseError {
    /// The tokens ended early (unreachable in practice, kept for safety).
    PrematureEoi,
    /// No value where one is needed.
    ExpectingValue,
    /// An object key not followed by `:`.
    MissingColon,
    /// An object key that is not a string.
    KeyNotString,
    /// A key seen twice in one object (compared after unescaping).
    DuplicateKey,
    /// Something other than `,` or `}` after an object member.
    SepDict,
    /// Something other than `,` or `]` after an array element.
    SepList,
    /// A keyword other than `true`, `false`, `null`; span of its text.
    InvalidKeyword(usize, usize),
    /// A bad escape in a string.
    InvalidEscape,
    /// A bad `\u` escape; span of the escape text QEMU quotes.
    InvalidUnicode(usize, usize),
    /// Raw bytes that are not modified UTF-8.
    InvalidUtf8,
    /// The frame buffer has no room for the parser's index of this request.
    NoRoom,
}

/// Scratch bytes [`validate`] needs for a request with `keys` object members and the given
/// maximum nesting.
pub fn scratch_needed(keys: u32, depth: u32) -> usize {
    4 * depth as usize + 8 * table_slots(keys)
}

fn table_slots(keys: u32) -> usize {
    if keys == 0 {
        0
    } else {
        (keys as usize * 2).next_power_of_two().max(8)
    }
}

fn get_u32(buf: &[u8], i: usize) -> u32 {
    buf.get(i * 4..i * 4 + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .unwrap_or(0)
}

fn put_u32(buf: &mut [u8], i: usize, v: u32) {
    if let Some(b) = buf.get_mut(i * 4..i * 4 + 4) {
        b.copy_from_slice(&v.to_le_bytes());
    }
}

fn map_str(e: StrError, base: usize) -> ParseError {
    match e {
        StrError::InvalidEscape => ParseError::InvalidEscape,
        StrError::InvalidUnicode { start, end } => {
            ParseError::InvalidUnicode(base + start, base + end)
        }
        StrError::InvalidUtf8 => ParseError::InvalidUtf8,
    }
}

fn key_hash(tok: &[u8], obj: u32) -> u32 {
    // FNV-1a over the decoded code points, seeded with the object's offset.
    let mut h: u32 = 0x811C_9DC5 ^ obj.wrapping_mul(0x9E37_79B9);
    let mut mix = |c: u32| {
        for b in c.to_le_bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
    };
    match Chars::unescaped(tok) {
        // Plain ASCII: each byte is its code point, no decoding needed.
        Some(raw) if raw.is_ascii() => raw.iter().for_each(|&b| mix(u32::from(b))),
        _ => Chars::new(tok).flatten().for_each(mix),
    }
    h
}

/// Validates the stored request `text`. `keys` and `depth` are the number of `:` tokens and the
/// deepest nesting seen while the request was streamed; `scratch` must hold at least
/// [`scratch_needed`] bytes.
pub fn validate(text: &[u8], keys: u32, depth: u32, scratch: &mut [u8]) -> Result<(), ParseError> {
    let stack_len = depth as usize;
    let slots = table_slots(keys);
    if scratch.len() < scratch_needed(keys, depth) {
        return Err(ParseError::NoRoom);
    }
    let (stack, table) = scratch.split_at_mut(stack_len * 4);
    let table = table.get_mut(..slots * 8).unwrap_or(&mut []);
    table.fill(0);

    let mut p = Parser {
        text,
        pos: 0,
        stack,
        depth: 0,
        table,
        slots,
        key_container: None,
        pending_dup: None,
    };
    p.run()
}

struct Parser<'a, 's> {
    text: &'a [u8],
    pos: usize,
    /// One entry per open container: `(offset << 1) | is_object`.
    stack: &'s mut [u8],
    depth: usize,
    table: &'s mut [u8],
    slots: usize,
    /// Depth of a container that sits where an object key should be: when it closes, the key
    /// "is not a string".
    key_container: Option<usize>,
    /// Depth of an object whose current member's key is a duplicate: the error fires once the
    /// member's value has been parsed, as in QEMU.
    pending_dup: Option<usize>,
}

enum Next {
    /// Parse a value.
    Value,
    /// Parse an object member, starting with its key.
    Pair,
    /// A value just ended: look at the enclosing container.
    Done,
}

impl Parser<'_, '_> {
    fn peek(&self) -> Option<(Tok, usize, usize)> {
        next_token(self.text, self.pos)
    }

    fn top(&self) -> Option<(usize, bool)> {
        let e = get_u32(self.stack, self.depth.checked_sub(1)?);
        Some(((e >> 1) as usize, e & 1 == 1))
    }

    fn push(&mut self, start: usize, is_object: bool) -> Result<(), ParseError> {
        if self.depth * 4 + 4 > self.stack.len() {
            return Err(ParseError::NoRoom);
        }
        put_u32(
            self.stack,
            self.depth,
            ((start as u32) << 1) | u32::from(is_object),
        );
        self.depth += 1;
        Ok(())
    }

    /// A scalar value's token (already known to be a string, number or keyword).
    fn scalar(&mut self, tok: Tok, s: usize, e: usize) -> Result<(), ParseError> {
        self.pos = e;
        let text = self.text.get(s..e).unwrap_or(&[]);
        match tok {
            Tok::Str => Chars::validate(text).map_err(|err| map_str(err, s)),
            Tok::Keyword => match text {
                b"true" | b"false" | b"null" => Ok(()),
                _ => Err(ParseError::InvalidKeyword(s, e)),
            },
            _ => Ok(()),
        }
    }

    fn run(&mut self) -> Result<(), ParseError> {
        let mut next = Next::Value;
        loop {
            next = match next {
                Next::Value => self.value()?,
                Next::Pair => self.pair()?,
                Next::Done => {
                    let Some((_, is_object)) = self.top() else {
                        return Ok(());
                    };
                    if is_object {
                        if self.pending_dup == Some(self.depth) {
                            return Err(ParseError::DuplicateKey);
                        }
                        match self.advance()? {
                            Tok::RCurly => self.close()?,
                            Tok::Comma => Next::Pair,
                            _ => return Err(ParseError::SepDict),
                        }
                    } else {
                        match self.advance()? {
                            Tok::RSquare => self.close()?,
                            Tok::Comma => Next::Value,
                            _ => return Err(ParseError::SepList),
                        }
                    }
                }
            }
        }
    }

    fn advance(&mut self) -> Result<Tok, ParseError> {
        let (t, _, e) = self.peek().ok_or(ParseError::PrematureEoi)?;
        self.pos = e;
        Ok(t)
    }

    /// The container on top of the stack has just been closed.
    fn close(&mut self) -> Result<Next, ParseError> {
        if self.key_container == Some(self.depth) {
            return Err(ParseError::KeyNotString);
        }
        self.depth -= 1;
        Ok(Next::Done)
    }

    /// Opens a container whose first token was just consumed.
    fn open(&mut self, start: usize, is_object: bool) -> Result<Next, ParseError> {
        self.push(start, is_object)?;
        let (t, _, e) = self.peek().ok_or(ParseError::PrematureEoi)?;
        match (t, is_object) {
            (Tok::RCurly, true) | (Tok::RSquare, false) => {
                self.pos = e;
                self.close()
            }
            (_, true) => Ok(Next::Pair),
            (_, false) => Ok(Next::Value),
        }
    }

    fn value(&mut self) -> Result<Next, ParseError> {
        let (t, s, e) = self.peek().ok_or(ParseError::PrematureEoi)?;
        match t {
            Tok::LCurly | Tok::LSquare => {
                self.pos = e;
                self.open(s, t == Tok::LCurly)
            }
            Tok::Str | Tok::Int | Tok::Float | Tok::Keyword => {
                self.scalar(t, s, e)?;
                Ok(Next::Done)
            }
            _ => Err(ParseError::ExpectingValue),
        }
    }

    fn pair(&mut self) -> Result<Next, ParseError> {
        let (t, s, e) = self.peek().ok_or(ParseError::PrematureEoi)?;
        match t {
            Tok::LCurly | Tok::LSquare => {
                // QEMU parses the whole value before noticing it is not a string.
                self.pos = e;
                self.key_container = Some(self.depth + 1);
                return self.open(s, t == Tok::LCurly);
            }
            Tok::Int | Tok::Float | Tok::Keyword => {
                self.scalar(t, s, e)?;
                return Err(ParseError::KeyNotString);
            }
            Tok::Str => self.scalar(t, s, e)?,
            _ => return Err(ParseError::ExpectingValue),
        }
        if self.check_duplicate(s, e) {
            self.pending_dup = Some(self.depth);
        }
        match self.advance()? {
            Tok::Colon => Ok(Next::Value),
            _ => Err(ParseError::MissingColon),
        }
    }

    /// Looks the key up among the keys of the current object; inserts it if new.
    fn check_duplicate(&mut self, s: usize, e: usize) -> bool {
        if self.slots == 0 {
            return false;
        }
        let obj = self.top().map(|(o, _)| o as u32).unwrap_or(0);
        let key = self.text.get(s..e).unwrap_or(&[]);
        let mask = self.slots - 1;
        let mut i = key_hash(key, obj) as usize & mask;
        for _ in 0..self.slots {
            let slot_obj = get_u32(self.table, i * 2);
            if slot_obj == 0 {
                put_u32(self.table, i * 2, obj + 1);
                put_u32(self.table, i * 2 + 1, s as u32);
                return false;
            }
            if slot_obj == obj + 1 {
                let other = get_u32(self.table, i * 2 + 1) as usize;
                if let Some((_, os, oe)) = next_token(self.text, other) {
                    if eq_tokens(self.text.get(os..oe).unwrap_or(&[]), key) {
                        return true;
                    }
                }
            }
            i = (i + 1) & mask;
        }
        false
    }
}

/// A validated request, navigated by byte offsets into its stored text.
#[derive(Clone, Copy, Debug)]
pub struct Msg<'a> {
    /// The stored token text.
    pub text: &'a [u8],
}

/// A value inside a [`Msg`]: its kind and the span of its first token.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Val {
    /// Kind of the first token (`LCurly` for objects, `LSquare` for arrays).
    pub tok: Tok,
    /// Start of the first token.
    pub start: usize,
    /// End of the first token (for scalars, of the whole value).
    pub end: usize,
}

impl<'a> Msg<'a> {
    /// The value starting at `pos`.
    pub fn value_at(&self, pos: usize) -> Option<Val> {
        next_token(self.text, pos).map(|(tok, start, end)| Val { tok, start, end })
    }

    /// The bytes of a scalar value's token.
    pub fn bytes(&self, v: Val) -> &'a [u8] {
        self.text.get(v.start..v.end).unwrap_or(&[])
    }

    /// Offset just past the whole value `v`.
    pub fn value_end(&self, v: Val) -> usize {
        if !matches!(v.tok, Tok::LCurly | Tok::LSquare) {
            return v.end;
        }
        let mut depth = 0usize;
        let mut pos = v.start;
        while let Some((t, _, e)) = next_token(self.text, pos) {
            if e <= pos {
                // Only validated text may be navigated; never loop on anything else.
                break;
            }
            pos = e;
            match t {
                Tok::LCurly | Tok::LSquare => depth += 1,
                Tok::RCurly | Tok::RSquare => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
        }
        pos
    }

    /// The members of object `obj`, in text order: `(key token, value)`.
    pub fn members(&self, obj: Val) -> Members<'a> {
        Members {
            msg: *self,
            pos: if obj.tok == Tok::LCurly {
                Some(obj.end)
            } else {
                None
            },
        }
    }

    /// The elements of array `arr`, in order.
    pub fn elements(&self, arr: Val) -> Elements<'a> {
        Elements {
            msg: *self,
            pos: if arr.tok == Tok::LSquare {
                Some(arr.end)
            } else {
                None
            },
        }
    }

    /// The value of the member of `obj` whose decoded key is `name`.
    pub fn get(&self, obj: Val, name: &str) -> Option<Val> {
        self.members(obj)
            .find(|(k, _)| super::string::eq_text(self.bytes(*k), name.as_bytes()))
            .map(|(_, v)| v)
    }
}

/// Iterator over an object's members.
#[derive(Clone, Debug)]
pub struct Members<'a> {
    msg: Msg<'a>,
    pos: Option<usize>,
}

impl Iterator for Members<'_> {
    type Item = (Val, Val);

    fn next(&mut self) -> Option<(Val, Val)> {
        let pos = self.pos?;
        let key = self.msg.value_at(pos)?;
        if key.tok != Tok::Str {
            self.pos = None;
            return None;
        }
        let (_, _, colon_end) = next_token(self.msg.text, key.end)?;
        let value = self.msg.value_at(colon_end)?;
        let end = self.msg.value_end(value);
        // Past the value comes `,` (more members) or `}`.
        self.pos = match next_token(self.msg.text, end) {
            Some((Tok::Comma, _, e)) => Some(e),
            _ => None,
        };
        Some((key, value))
    }
}

/// Iterator over an array's elements.
#[derive(Clone, Debug)]
pub struct Elements<'a> {
    msg: Msg<'a>,
    pos: Option<usize>,
}

impl Iterator for Elements<'_> {
    type Item = Val;

    fn next(&mut self) -> Option<Val> {
        let pos = self.pos?;
        let v = self.msg.value_at(pos)?;
        if v.tok == Tok::RSquare {
            self.pos = None;
            return None;
        }
        let end = self.msg.value_end(v);
        self.pos = match next_token(self.msg.text, end) {
            Some((Tok::Comma, _, e)) => Some(e),
            _ => None,
        };
        Some(v)
    }
}

/// A JSON number as QEMU's parser stores it.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Num {
    /// Fits int64.
    Int(i64),
    /// Non-negative, fits only uint64.
    Uint(u64),
    /// Anything else, and every float token.
    Double(f64),
}

/// Converts a number token the way QEMU's `parse_literal` does.
pub fn number(tok: Tok, text: &[u8]) -> Num {
    let s = core::str::from_utf8(text).unwrap_or("0");
    if tok == Tok::Int {
        if let Ok(v) = s.parse::<i64>() {
            return Num::Int(v);
        }
        if !s.starts_with('-') {
            if let Ok(v) = s.parse::<u64>() {
                return Num::Uint(v);
            }
        }
    }
    Num::Double(s.parse::<f64>().unwrap_or(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &[u8], keys: u32, depth: u32) -> Result<(), ParseError> {
        let mut scratch = [0u8; 4096];
        validate(text, keys, depth, &mut scratch)
    }

    #[test]
    fn valid() {
        assert_eq!(check(b"{\"a\":[1,2.5,true],'b':{}}", 2, 2), Ok(()));
        assert_eq!(check(b"[]", 0, 1), Ok(()));
        assert_eq!(check(b"1", 0, 0), Ok(()));
    }

    #[test]
    fn errors_in_qemu_precedence() {
        use ParseError::*;
        assert_eq!(check(b"{\"a\":}", 1, 1), Err(ExpectingValue));
        assert_eq!(check(b"}", 0, 0), Err(ExpectingValue));
        assert_eq!(check(b"{\"a\" \"b\"}", 0, 1), Err(MissingColon));
        assert_eq!(check(b"{1:2}", 1, 1), Err(KeyNotString));
        assert_eq!(check(b"{foo:2}", 1, 1), Err(InvalidKeyword(1, 4)));
        assert_eq!(check(b"{{}:2}", 1, 2), Err(KeyNotString));
        assert_eq!(check(b"{{\"a\":]}:2}", 2, 2), Err(ExpectingValue));
        assert_eq!(check(b"{\"a\":1,\"a\":2}", 2, 1), Err(DuplicateKey));
        assert_eq!(check(b"{\"a\":1,'\\u0061':[}", 2, 2), Err(ExpectingValue));
        assert_eq!(
            check(b"{\"a\":1,\"a\":{\"b\":1,\"b\":2}}", 4, 2),
            Err(DuplicateKey)
        );
        assert_eq!(check(b"{\"a\":{\"a\":1}}", 2, 2), Ok(()));
        assert_eq!(check(b"{\"a\":1]", 1, 1), Err(SepDict));
        assert_eq!(check(b"[1}", 0, 1), Err(SepList));
        assert_eq!(check(b"[1,]", 0, 1), Err(ExpectingValue));
        assert_eq!(check(b"[\"\\x\"]", 0, 1), Err(InvalidEscape));
        assert_eq!(check(b"\"a\x80\"", 0, 0), Err(InvalidUtf8));
    }

    #[test]
    fn navigation() {
        let msg = Msg {
            text: b"{\"execute\":\"x\",\"arguments\":{\"a\":[1,2],'b':-3},\"id\":null}",
        };
        let root = msg.value_at(0).unwrap();
        let args = msg.get(root, "arguments").unwrap();
        assert_eq!(args.tok, Tok::LCurly);
        let a = msg.get(args, "a").unwrap();
        assert_eq!(msg.elements(a).count(), 2);
        let b = msg.get(args, "b").unwrap();
        assert_eq!(number(b.tok, msg.bytes(b)), Num::Int(-3));
        assert_eq!(msg.members(root).count(), 3);
        assert_eq!(
            number(Tok::Int, b"18446744073709551615"),
            Num::Uint(u64::MAX)
        );
        assert_eq!(
            number(Tok::Int, b"-9223372036854775809"),
            Num::Double(-9223372036854775809.0)
        );
    }
}
