//! QEMU's JSON streamer (`qobject/json-streamer.c`, spec §1.3): assembles tokens into one request,
//! counting braces and brackets and enforcing the limits, with the token text kept in the
//! caller's [`FrameBuffer`].
//!
//! Tokens are stored back to back; a single space separates two numbers or keywords so that the
//! stored text re-lexes to the same tokens. Whitespace between tokens is not stored, so the
//! stored size is the token bytes qemu-ga counts plus at most one byte per token.

use crate::buffer::FrameBuffer;
use crate::json::lexer::{Lexer, Step, Tok};
use crate::proto::Limits;

/// A limit breach, answered with its qemu-ga message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LimitError {
    /// `JSON token size limit exceeded` (also when the frame buffer is full).
    TokenSize,
    /// `JSON token count limit exceeded`.
    TokenCount,
    /// `JSON nesting depth limit exceeded`.
    Nesting,
}

impl LimitError {
    /// The error's `desc`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LimitError::TokenSize => "JSON token size limit exceeded",
            LimitError::TokenCount => "JSON token count limit exceeded",
            LimitError::Nesting => "JSON nesting depth limit exceeded",
        }
    }
}

/// What the streamer hands the agent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event {
    /// A complete request: its stored text is `frame[..len]`.
    Request {
        /// Stored length.
        len: usize,
        /// Number of `:` tokens (object members).
        keys: u32,
        /// Deepest nesting.
        depth: u32,
    },
    /// A lexical error; the error token's text is `frame[start..end]`.
    Stray {
        /// Start of the stored token text.
        start: usize,
        /// End of the stored token text.
        end: usize,
    },
    /// A limit was breached.
    Limit(LimitError),
}

/// The streamer's state (a few dozen bytes; the text lives in the frame buffer).
#[derive(Clone, Debug, Default)]
pub struct Streamer {
    lexer: Lexer,
    brace: i32,
    bracket: i32,
    count: u32,
    size: usize,
    used: usize,
    keys: u32,
    depth: u32,
    overflow: bool,
    last_word: bool,
    tok_start: usize,
    tok_len: usize,
    tok_stored: usize,
}

impl Streamer {
    /// Drops the request being assembled (qemu-ga does this after every emitted request or
    /// error). The lexer state is kept: it belongs to the byte stream, not to the request.
    fn reset_request(&mut self) {
        self.brace = 0;
        self.bracket = 0;
        self.count = 0;
        self.size = 0;
        self.used = 0;
        self.keys = 0;
        self.depth = 0;
        self.overflow = false;
        self.last_word = false;
        self.tok_len = 0;
        self.tok_stored = 0;
    }

    /// True while part of a request has been received.
    pub fn in_request(&self) -> bool {
        self.count > 0 || self.lexer.in_token()
    }

    fn store<B: FrameBuffer>(&mut self, buf: &mut B, at: usize, b: u8) -> bool {
        if at >= buf.bytes().len() && buf.grow(at + 1) <= at {
            return false;
        }
        match buf.bytes_mut().get_mut(at) {
            Some(slot) => {
                *slot = b;
                true
            }
            None => false,
        }
    }

    fn begin_token<B: FrameBuffer>(&mut self, buf: &mut B, first: u8) {
        let word = matches!(first, b'-' | b'0'..=b'9' | b'a'..=b'z');
        self.tok_start = self.used;
        if word && self.last_word {
            if !self.store(buf, self.used, b' ') {
                self.overflow = true;
            }
            self.tok_start += 1;
        }
        self.tok_len = 0;
        self.tok_stored = 0;
    }

    fn push<B: FrameBuffer>(&mut self, buf: &mut B, b: u8) {
        if self.tok_len == 0 {
            self.begin_token(buf, b);
        }
        let at = self.tok_start + self.tok_stored;
        if !self.overflow && self.tok_stored == self.tok_len && self.store(buf, at, b) {
            self.tok_stored += 1;
        } else {
            self.overflow = true;
        }
        self.tok_len += 1;
    }

    /// Appends plain string bytes to the token in progress (which has started). Stores exactly
    /// what byte-by-byte pushes would store (the part that fits), so that nothing depends on
    /// how the input was split.
    fn push_run<B: FrameBuffer>(&mut self, buf: &mut B, run: &[u8]) {
        let at = self.tok_start + self.tok_stored;
        let end = at + run.len();
        if !self.overflow && self.tok_stored == self.tok_len {
            if buf.bytes().len() < end {
                buf.grow(end);
            }
            let fit = buf.bytes().len().saturating_sub(at).min(run.len());
            if let (Some(dst), Some(src)) = (buf.bytes_mut().get_mut(at..at + fit), run.get(..fit))
            {
                dst.copy_from_slice(src);
                self.tok_stored += fit;
            }
            if fit < run.len() {
                self.overflow = true;
            }
        } else {
            self.overflow = true;
        }
        self.tok_len += run.len();
    }

    fn complete(&mut self, tok: Tok, limits: &Limits) -> Option<Event> {
        match tok {
            Tok::LCurly => self.brace += 1,
            Tok::RCurly => self.brace -= 1,
            Tok::LSquare => self.bracket += 1,
            Tok::RSquare => self.bracket -= 1,
            _ => {}
        }
        let limit = if self.overflow || self.size + self.tok_len + 1 > limits.max_token_bytes {
            Some(LimitError::TokenSize)
        } else if self.count + 1 > limits.max_tokens {
            Some(LimitError::TokenCount)
        } else if i64::from(self.brace) + i64::from(self.bracket) > i64::from(limits.max_depth) {
            Some(LimitError::Nesting)
        } else {
            None
        };
        if let Some(l) = limit {
            self.reset_request();
            return Some(Event::Limit(l));
        }
        self.size += self.tok_len;
        self.count += 1;
        self.used = self.tok_start + self.tok_len;
        self.last_word = tok.is_word();
        if tok == Tok::Colon {
            self.keys += 1;
        }
        let depth = (self.brace.max(0) + self.bracket.max(0)) as u32;
        self.depth = self.depth.max(depth);
        self.tok_len = 0;
        self.tok_stored = 0;
        if (self.brace > 0 || self.bracket > 0) && self.brace >= 0 && self.bracket >= 0 {
            return None;
        }
        let ev = Event::Request {
            len: self.used,
            keys: self.keys,
            depth: self.depth,
        };
        self.reset_request();
        Some(ev)
    }

    /// Feeds bytes until an event happens. Returns the bytes consumed and the event, if any.
    /// After an event the caller must finish with the stored text before feeding again.
    pub fn feed<B: FrameBuffer>(
        &mut self,
        buf: &mut B,
        input: &[u8],
        limits: &Limits,
    ) -> (usize, Option<Event>) {
        let mut i = 0;
        while let Some(&b) = input.get(i) {
            // Long strings (base64 payloads) are copied in bulk rather than byte by byte.
            if self.tok_len > 0 {
                let room = limits.max_token_bytes.saturating_sub(self.tok_len);
                let rest = input.get(i..).unwrap_or(&[]);
                let n = self
                    .lexer
                    .plain_run(rest.get(..room.min(rest.len())).unwrap_or(&[]));
                if n > 0 {
                    self.push_run(buf, rest.get(..n).unwrap_or(&[]));
                    i += n;
                    continue;
                }
            }
            match self.lexer.step(b) {
                Step::Skip => i += 1,
                Step::Push => {
                    i += 1;
                    self.push(buf, b);
                    if self.tok_len > limits.max_token_bytes {
                        // qemu-ga flushes an oversized token and restarts the lexer.
                        self.lexer.reset();
                        self.reset_request();
                        return (i, Some(Event::Limit(LimitError::TokenSize)));
                    }
                }
                Step::Complete(tok) => {
                    i += 1;
                    self.push(buf, b);
                    if let Some(ev) = self.complete(tok, limits) {
                        return (i, Some(ev));
                    }
                }
                Step::CompleteBefore(tok) => {
                    if let Some(ev) = self.complete(tok, limits) {
                        return (i, Some(ev));
                    }
                }
                Step::Error => {
                    i += 1;
                    self.push(buf, b);
                    // Only the stored part of the token is reported (none of it when the buffer
                    // was already full), always inside the buffer.
                    let cap = buf.bytes().len();
                    let start = self.tok_start.min(cap);
                    let end = (self.tok_start + self.tok_stored).min(cap).max(start);
                    self.reset_request();
                    return (i, Some(Event::Stray { start, end }));
                }
                Step::Resume => {}
            }
        }
        (i, None)
    }
}
