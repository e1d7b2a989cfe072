//! Printing a value of a validated reply as standard JSON (RFC 8259), without a JSON library.
//!
//! The guest writes QEMU's dialect (single-quoted strings and `\'` are legal there); the output
//! is plain JSON: double-quoted strings, decoded and re-escaped. Besides what JSON requires
//! (`"`, `\` and C0 controls), DEL, the C1 controls and U+2028/U+2029 are escaped too, so that
//! text from the guest cannot drive a terminal (C1 `CSI` starts escape sequences on some).
//!
//! The walk is iterative (a stack of open containers), so the nesting the client accepts (up to
//! 1024 levels) costs heap, not call stack.

use std::io::{self, Write};

use qga_core::json::lexer::Tok;
use qga_core::json::parse::{Elements, Members, Msg, Val};
use qga_core::json::string::Chars;

/// An open container.
enum Open<'a> {
    Object { members: Members<'a>, empty: bool },
    Array { elements: Elements<'a>, empty: bool },
}

/// Writes the value `v` of the validated reply `msg` to `out`, indented by two spaces per level
/// when `pretty`, without any whitespace otherwise, followed by a newline.
///
/// # Errors
///
/// The errors of `out`.
pub fn write_value<W: Write + ?Sized>(
    out: &mut W,
    msg: Msg<'_>,
    v: Val,
    pretty: bool,
) -> io::Result<()> {
    let mut out = io::BufWriter::new(out);
    let mut stack: Vec<Open<'_>> = Vec::new();
    let mut next = Some(v);
    loop {
        if let Some(v) = next.take() {
            match v.tok {
                Tok::LCurly => {
                    out.write_all(b"{")?;
                    stack.push(Open::Object {
                        members: msg.members(v),
                        empty: true,
                    });
                }
                Tok::LSquare => {
                    out.write_all(b"[")?;
                    stack.push(Open::Array {
                        elements: msg.elements(v),
                        empty: true,
                    });
                }
                Tok::Str => write_string(&mut out, msg.bytes(v))?,
                // Numbers and `true`/`false`/`null` are valid JSON as the guest wrote them
                // (the client validated them).
                _ => out.write_all(msg.bytes(v))?,
            }
        }
        let depth = stack.len();
        let Some(top) = stack.last_mut() else { break };
        let (item, empty) = match top {
            Open::Object { members, empty } => (members.next().map(|(k, v)| (Some(k), v)), empty),
            Open::Array { elements, empty } => (elements.next().map(|v| (None, v)), empty),
        };
        match item {
            Some((key, value)) => {
                if !*empty {
                    out.write_all(b",")?;
                }
                *empty = false;
                newline(&mut out, pretty, depth)?;
                if let Some(key) = key {
                    write_string(&mut out, msg.bytes(key))?;
                    out.write_all(if pretty { b": " } else { b":" })?;
                }
                next = Some(value);
            }
            None => {
                let was_empty = *empty;
                let close: &[u8] = match top {
                    Open::Object { .. } => b"}",
                    Open::Array { .. } => b"]",
                };
                stack.pop();
                if !was_empty {
                    newline(&mut out, pretty, depth - 1)?;
                }
                out.write_all(close)?;
            }
        }
    }
    out.write_all(b"\n")?;
    out.flush()
}

fn newline<W: Write>(out: &mut W, pretty: bool, depth: usize) -> io::Result<()> {
    if pretty {
        out.write_all(b"\n")?;
        for _ in 0..depth {
            out.write_all(b"  ")?;
        }
    }
    Ok(())
}

/// Writes a string token of the guest's dialect as a standard JSON string.
fn write_string<W: Write>(out: &mut W, tok: &[u8]) -> io::Result<()> {
    out.write_all(b"\"")?;
    for c in Chars::new(tok) {
        let c = c
            .ok()
            .and_then(char::from_u32)
            .unwrap_or(char::REPLACEMENT_CHARACTER);
        match c {
            '"' => out.write_all(b"\\\"")?,
            '\\' => out.write_all(b"\\\\")?,
            '\n' => out.write_all(b"\\n")?,
            '\r' => out.write_all(b"\\r")?,
            '\t' => out.write_all(b"\\t")?,
            '\u{8}' => out.write_all(b"\\b")?,
            '\u{c}' => out.write_all(b"\\f")?,
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
                write!(out, "\\u{:04x}", u32::from(c))?;
            }
            c => {
                let mut utf8 = [0u8; 4];
                out.write_all(c.encode_utf8(&mut utf8).as_bytes())?;
            }
        }
    }
    out.write_all(b"\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use qga_core::json::parse::validate;
    use qga_core::stream::{Event, Streamer};

    /// Stores and validates `json` as the client does, then prints it.
    fn print(json: &[u8], pretty: bool) -> String {
        let mut buf = vec![0u8; 4096];
        let mut slice = &mut buf[..];
        let (_, ev) = Streamer::default().feed(&mut slice, json, &qga_core::Limits::QEMU);
        let Some(Event::Request { len, keys, depth }) = ev else {
            panic!("not one value: {ev:?}")
        };
        let (text, scratch) = buf.split_at_mut(len);
        validate(text, keys, depth, scratch).unwrap();
        let msg = Msg { text };
        let mut out = Vec::new();
        write_value(&mut out, msg, msg.value_at(0).unwrap(), pretty).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn compact_and_pretty() {
        let json = br#"{"a": [1, -2.5e3, true, null, {}], 'b': {"c": []}, "d": "x"}"#;
        assert_eq!(
            print(json, false),
            "{\"a\":[1,-2.5e3,true,null,{}],\"b\":{\"c\":[]},\"d\":\"x\"}\n"
        );
        assert_eq!(
            print(json, true),
            "{\n  \"a\": [\n    1,\n    -2.5e3,\n    true,\n    null,\n    {}\n  ],\n  \"b\": {\n    \"c\": []\n  },\n  \"d\": \"x\"\n}\n"
        );
        assert_eq!(print(b"[]", true), "[]\n");
        assert_eq!(print(b"42 ", false), "42\n");
    }

    #[test]
    fn strings_are_re_escaped() {
        assert_eq!(
            print(
                br#"['it\'s "q" \u00e9\ud83d\ude00 \u001b[2J \u009b \/ \u0000']"#,
                false
            ),
            "[\"it's \\\"q\\\" é😀 \\u001b[2J \\u009b / \\u0000\"]\n"
        );
    }

    #[test]
    fn deep_nesting_uses_no_recursion() {
        let mut json = "[".repeat(1000);
        json.push_str(&"]".repeat(1000));
        let mut buf = vec![0u8; 16384];
        let mut slice = &mut buf[..];
        let (_, ev) =
            Streamer::default().feed(&mut slice, json.as_bytes(), &qga_core::Limits::QEMU);
        let Some(Event::Request { len, .. }) = ev else {
            panic!()
        };
        let msg = Msg { text: &buf[..len] };
        let mut out = Vec::new();
        write_value(&mut out, msg, msg.value_at(0).unwrap(), false).unwrap();
        assert_eq!(out.len(), 2001);
    }
}
