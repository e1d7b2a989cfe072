//! Target `framer`: the events of [`Streamer`] do not depend on how the input is split.
//!
//! Input: `[config][split seed][stream…]`. The config byte chooses the limits (bits 0–1) and
//! the frame buffer (bits 2–4: large, small, tiny, empty, growable); the split seed chooses piece
//! lengths (see [`split_by_seed`]). The stream is fed whole, in the seeded pieces, and one byte
//! at a time, each time into a fresh streamer, and the three event sequences (with the text
//! each event refers to) must be equal, as must the final "inside a request" state.
//!
//! Every event is also checked on its own: the text it points to lies inside the frame buffer,
//! and the stored text of a request re-lexes to complete tokens whose `:` count and nesting
//! depth are the ones reported.

use qga_core::json::lexer::{Lexer, Step, Tok};
use qga_core::stream::{Event, LimitError, Streamer};
use qga_core::{FrameBuffer, Limits};

use super::common::{GrowBuf, split_by_seed};

/// An event with the text it refers to copied out of the frame buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    /// A complete request and its stored text.
    Request {
        /// The stored text.
        text: Vec<u8>,
        /// Reported number of `:` tokens.
        keys: u32,
        /// Reported deepest nesting.
        depth: u32,
    },
    /// A lexical error and the stored text of the erroneous token.
    Stray(Vec<u8>),
    /// A limit breach.
    Limit(LimitError),
}

/// The limits chosen by bits 0–1 of the config byte.
pub fn limits_for(config: u8) -> Limits {
    match config & 3 {
        0 => Limits::QEMU,
        1 => Limits {
            max_token_bytes: 64,
            max_tokens: 16,
            max_depth: 4,
        },
        2 => Limits {
            max_token_bytes: 16,
            max_tokens: 4,
            max_depth: 1,
        },
        _ => Limits {
            max_token_bytes: 1024,
            max_tokens: 256,
            max_depth: 32,
        },
    }
}

/// The frame buffer chosen by bits 2–4 of the config byte.
pub fn frame_for(config: u8) -> GrowBuf {
    match (config >> 2) & 7 {
        0 => GrowBuf::new(1 << 16, 1 << 16),
        1 => GrowBuf::new(256, 256),
        2 => GrowBuf::new(8, 8),
        3 => GrowBuf::new(16, 1 << 16),
        4 => GrowBuf::new(0, 0),
        5 => GrowBuf::new(0, 300),
        6 => GrowBuf::new(1, 1),
        _ => GrowBuf::new(2, 4096),
    }
}

/// Feeds `pieces` in order to a fresh streamer and returns its events and whether a request is
/// still in progress at the end. After each event the buffer is released when no request is in
/// progress, as the agent does.
pub fn events<B: FrameBuffer>(pieces: &[&[u8]], frame: &mut B, limits: &Limits) -> (Vec<Ev>, bool) {
    let mut s = Streamer::default();
    let mut evs = Vec::new();
    for piece in pieces {
        let mut rest: &[u8] = piece;
        // Every call consumes a byte or reports an event, and a byte causes at most two events
        // (a token completed before it, then its own).
        let mut budget = 2 * rest.len() + 2;
        loop {
            budget = budget.checked_sub(1).unwrap_or_else(|| {
                panic!(
                    "Streamer::feed makes no progress ({} bytes left)",
                    rest.len()
                )
            });
            let (n, ev) = s.feed(frame, rest, limits);
            assert!(n <= rest.len(), "feed consumed {n} of {} bytes", rest.len());
            rest = rest.get(n..).unwrap_or(&[]);
            let Some(ev) = ev else {
                assert!(rest.is_empty(), "feed stopped early without an event");
                break;
            };
            let bytes = frame.bytes();
            evs.push(match ev {
                Event::Request { len, keys, depth } => {
                    let Some(text) = bytes.get(..len) else {
                        panic!("request of {len} bytes in a {}-byte buffer", bytes.len())
                    };
                    check_stored_request(text, keys, depth);
                    Ev::Request {
                        text: text.to_vec(),
                        keys,
                        depth,
                    }
                }
                Event::Stray { start, end } => {
                    let Some(text) = bytes.get(start..end) else {
                        panic!(
                            "stray token {start}..{end} in a {}-byte buffer",
                            bytes.len()
                        )
                    };
                    Ev::Stray(text.to_vec())
                }
                Event::Limit(l) => Ev::Limit(l),
            });
            if !s.in_request() {
                frame.release();
            }
            if rest.is_empty() {
                break;
            }
        }
    }
    (evs, s.in_request())
}

/// The stored text of a request re-lexes (with a fresh lexer, a space appended to end a trailing
/// number or keyword) into complete tokens separated by single spaces, with `keys` colons and
/// nesting `depth`.
fn check_stored_request(text: &[u8], keys: u32, depth: u32) {
    let shown = || String::from_utf8_lossy(text).into_owned();
    let mut lexer = Lexer::new();
    let (mut colons, mut brace, mut bracket, mut max_depth) = (0u32, 0i64, 0i64, 0i64);
    let mut tokens = 0usize;
    let mut in_token = false;
    let mut complete = |tok: Tok| {
        tokens += 1;
        match tok {
            Tok::Colon => colons += 1,
            Tok::LCurly => brace += 1,
            Tok::RCurly => brace -= 1,
            Tok::LSquare => bracket += 1,
            Tok::RSquare => bracket -= 1,
            _ => {}
        }
        max_depth = max_depth.max(brace.max(0) + bracket.max(0));
    };
    let mut prev_space = true;
    for &b in text.iter().chain(std::iter::once(&b' ')) {
        let mut step = lexer.step(b);
        if let Step::CompleteBefore(tok) = step {
            complete(tok);
            in_token = false;
            step = lexer.step(b);
        }
        match step {
            Step::Skip => {
                assert!(
                    b == b' ' && !prev_space && !in_token,
                    "stored request has stray whitespace: {:?}",
                    shown()
                );
                prev_space = true;
                continue;
            }
            Step::Push => in_token = true,
            Step::Complete(tok) => {
                complete(tok);
                in_token = false;
            }
            Step::CompleteBefore(_) | Step::Error | Step::Resume => {
                panic!("stored request does not re-lex: {:?}", shown())
            }
        }
        prev_space = false;
    }
    assert!(
        !in_token && tokens > 0,
        "stored request is incomplete: {:?}",
        shown()
    );
    assert_eq!(colons, keys, "key count of {:?}", shown());
    assert_eq!(i64::from(depth), max_depth, "depth of {:?}", shown());
}

/// The target: see the module documentation.
pub fn check(data: &[u8]) {
    let [config, seed, stream @ ..] = data else {
        return;
    };
    let limits = limits_for(*config);
    let run = |pieces: &[&[u8]]| events(pieces, &mut frame_for(*config), &limits);
    let whole = run(&[stream]);
    let split = run(&split_by_seed(stream, *seed));
    assert_eq!(
        whole, split,
        "events differ between whole and seeded pieces"
    );
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    let bytewise = run(&bytes);
    assert_eq!(
        whole, bytewise,
        "events differ between whole and byte-at-a-time"
    );
}
