//! Writes a value taken from the request (the `id`) back out the way qemu-ga does after its
//! parse/serialise round trip: strings re-escaped, numbers normalised, object keys in QDict
//! order (spec §1.7, Appendix A).

use super::lexer::Tok;
use super::order::{scratch_for, sort_members, sorted_member};
use super::parse::{Msg, Num, Val, number};
use super::string::Chars;
use super::write::JsonWriter;
use embedded_io::Write;

/// Writes `v` as qemu-ga would echo it. `scratch` holds the sort order of every object on the
/// path being written (16 bytes per member); if it is too small, objects fall back to text
/// order (the agent reserves enough scratch, so this does not happen in practice).
pub fn echo<W: Write + ?Sized>(
    msg: &Msg<'_>,
    v: Val,
    scratch: &mut [u8],
    w: &mut JsonWriter<'_, W>,
) -> Result<(), W::Error> {
    match v.tok {
        Tok::Str => {
            w.string_begin()?;
            match Chars::unescaped(msg.bytes(v)) {
                // Plain ASCII content is its own decoding: written in one piece.
                Some(raw) if raw.is_ascii() => w.string_part(raw)?,
                _ => {
                    for cp in Chars::new(msg.bytes(v)).flatten() {
                        w.string_char(cp)?;
                    }
                }
            }
            w.string_end()
        }
        Tok::Int | Tok::Float => match number(v.tok, msg.bytes(v)) {
            Num::Int(i) => w.int(i),
            Num::Uint(u) => w.uint(u),
            Num::Double(d) => w.double(d),
        },
        Tok::Keyword => w.raw(msg.bytes(v)),
        Tok::LSquare => {
            w.raw(b"[")?;
            for (i, e) in msg.elements(v).enumerate() {
                if i > 0 {
                    w.raw(b", ")?;
                }
                echo(msg, e, scratch, w)?;
            }
            w.raw(b"]")
        }
        Tok::LCurly => {
            w.raw(b"{")?;
            match sort_members(msg, v, scratch) {
                Some(n) => {
                    let (mine, rest) = scratch.split_at_mut(scratch_for(n).min(scratch.len()));
                    for i in 0..n {
                        if let Some((k, val)) = sorted_member(msg, mine, i) {
                            member(msg, i, k, val, rest, w)?;
                        }
                    }
                }
                None => {
                    for (i, (k, val)) in msg.members(v).enumerate() {
                        member(msg, i, k, val, scratch, w)?;
                    }
                }
            }
            w.raw(b"}")
        }
        // Not values; the parser never lets them through.
        Tok::RCurly | Tok::RSquare | Tok::Comma | Tok::Colon => Ok(()),
    }
}

fn member<W: Write + ?Sized>(
    msg: &Msg<'_>,
    i: usize,
    k: Val,
    v: Val,
    scratch: &mut [u8],
    w: &mut JsonWriter<'_, W>,
) -> Result<(), W::Error> {
    if i > 0 {
        w.raw(b", ")?;
    }
    echo(msg, k, scratch, w)?;
    w.raw(b": ")?;
    echo(msg, v, scratch, w)
}
