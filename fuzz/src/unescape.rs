//! Target `unescape`: [`Chars`], [`decode_into`], [`eq_tokens`] and [`mod_utf8_decode`] on
//! arbitrary string tokens.
//!
//! Input: `[mode][content…]`. First the raw input is thrown at the decoders as it is: it need
//! not be a string token (their documented precondition), so they only must not panic, and
//! [`mod_utf8_decode`], which has no precondition, must equal the port of QEMU's
//! `mod_utf8_codepoint` at every offset. Then a string token is built: bit 0 of `mode` picks the
//! quote (`"` or `'`); unless bit 1 is set, the content is made lexically valid (control bytes
//! and 0xFE/0xFF dropped, unescaped quotes escaped, a trailing lone backslash dropped). A token
//! that is lexically valid (checked independently, and the core's lexer must agree) is compared
//! with `serde_json` reading the same token mapped to standard JSON by [`std_string_token`]:
//!
//! * if qga accepts, `serde_json` accepts and the code points are equal (qga's U+0000, written
//!   `\u0000` or as the modified UTF-8 `C0 80`, is serde's `'\0'`);
//! * if `serde_json` accepts and qga does not, the string holds a noncharacter: QEMU refuses
//!   U+FDD0..U+FDEF and U+xxFFFE/U+xxFFFF, escaped or raw, which JSON allows. No other
//!   difference is allowed.
//!
//! The helpers are checked against the decoded code points: [`Chars::validate`] (which has a
//! fast path for plain ASCII) returns the iteration's first error, [`decode_into`] writes their
//! modified UTF-8 (`C0 80` for U+0000) and fails cleanly on a buffer one byte short,
//! [`eq_tokens`] finds the token equal to itself and to its standard-JSON form, and errors point
//! at a backslash inside the token.

use qga_core::json::lexer::{Lexer, Step, Tok};
use qga_core::json::string::{Chars, StrError, decode_into, eq_tokens, mod_utf8_decode};

use super::oracle::{is_noncharacter, mod_utf8_codepoint, std_string_token};

/// Builds the token for `mode` and `content` (see the module documentation).
pub fn build_token(mode: u8, content: &[u8]) -> Vec<u8> {
    let quote = if mode & 1 == 0 { b'"' } else { b'\'' };
    let mut tok = vec![quote];
    if mode & 2 != 0 {
        tok.extend_from_slice(content);
    } else {
        let mut escaped = false;
        for &b in content {
            if !(0x20..=0xFD).contains(&b) {
                continue;
            }
            if b == quote && !escaped {
                tok.push(b'\\');
            }
            escaped = b == b'\\' && !escaped;
            tok.push(b);
        }
        if escaped {
            tok.pop();
        }
    }
    tok.push(quote);
    tok
}

/// True if `tok` is one complete string token of QEMU's lexer: a quote, bytes 0x20..=0xFD in
/// which a backslash takes the next byte along and the quote only appears escaped, the quote.
pub fn is_string_token(tok: &[u8]) -> bool {
    let Some((&quote, rest)) = tok.split_first() else {
        return false;
    };
    if quote != b'"' && quote != b'\'' {
        return false;
    }
    let mut i = 0usize;
    while let Some(&b) = rest.get(i) {
        if !(0x20..=0xFD).contains(&b) {
            return false;
        }
        if b == b'\\' {
            match rest.get(i + 1) {
                Some(&next) if (0x20..=0xFD).contains(&next) => i += 2,
                _ => return false,
            }
        } else if b == quote {
            return i + 1 == rest.len();
        } else {
            i += 1;
        }
    }
    false
}

/// True if the core's lexer reads `tok` as exactly one string token.
fn core_lexes_as_string(tok: &[u8]) -> bool {
    let mut lexer = Lexer::new();
    let last = tok.len().saturating_sub(1);
    tok.iter().enumerate().all(|(i, &b)| match lexer.step(b) {
        Step::Push => i < last,
        Step::Complete(Tok::Str) => i == last,
        _ => false,
    })
}

/// Modified UTF-8 of `cps`, as QEMU stores strings (U+0000 is `C0 80`).
fn mod_utf8(cps: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    for &cp in cps {
        if cp == 0 {
            out.extend_from_slice(&[0xC0, 0x80]);
        } else if let Some(c) = char::from_u32(cp) {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        } else {
            panic!("Chars yielded U+{cp:X}, not a scalar value");
        }
    }
    out
}

/// The decoders on the raw input, which need not be a string token (their documented
/// precondition): they must not panic, whatever they return. [`mod_utf8_decode`] has no
/// precondition and must equal QEMU's decoder at every offset.
fn raw_input(data: &[u8]) {
    let _ = Chars::validate(data);
    let _ = Chars::new(data).count();
    let mut buf = vec![0u8; 4 * data.len() + 4];
    let _ = decode_into(data, &mut buf);
    let _ = eq_tokens(data, data);
    for start in 0..data.len().min(64) {
        let s = data.get(start..).unwrap_or(&[]);
        // QEMU's decoder also stops at a NUL where a sequence should start (its "empty
        // sequence"); the core's reads it as U+0000. Everywhere else they must agree.
        if s.first() != Some(&0) {
            assert_eq!(
                mod_utf8_decode(s),
                mod_utf8_codepoint(s, 6),
                "mod_utf8_decode({:02X?})",
                s.get(..s.len().min(6)).unwrap_or(&[])
            );
        }
    }
}

/// The target: see the module documentation.
pub fn check(data: &[u8]) {
    raw_input(data);
    let Some((&mode, content)) = data.split_first() else {
        return;
    };
    let tok = build_token(mode, content);
    let lexical = is_string_token(&tok);
    assert_eq!(
        lexical,
        core_lexes_as_string(&tok),
        "the core's lexer disagrees on {:?}",
        String::from_utf8_lossy(&tok)
    );
    if !lexical {
        raw_input(&tok);
        return;
    }
    let shown = String::from_utf8_lossy(&tok).into_owned();
    let ours: Result<Vec<u32>, StrError> = Chars::new(&tok).collect();
    assert_eq!(
        Chars::validate(&tok),
        ours.as_ref().map(|_| ()).map_err(|e| *e),
        "Chars::validate disagrees with Chars on {shown:?}"
    );
    let std_tok = std_string_token(&tok);
    let theirs: Result<String, _> = serde_json::from_slice(&std_tok);
    match (&ours, &theirs) {
        (Ok(cps), Ok(s)) => {
            let serde_cps: Vec<u32> = s.chars().map(u32::from).collect();
            assert_eq!(cps, &serde_cps, "decoded code points of {shown:?}");
        }
        (Ok(cps), Err(e)) => panic!("qga decodes {shown:?} to {cps:X?}, serde_json refuses: {e}"),
        (Err(e), Ok(s)) => assert!(
            s.chars().any(is_noncharacter),
            "qga refuses {shown:?} ({e:?}), serde_json reads {s:?} (no noncharacter)"
        ),
        (Err(_), Err(_)) => {}
    }
    if let Err(StrError::InvalidUnicode { start, end }) = ours {
        assert!(
            start < end && end <= tok.len() && tok.get(start) == Some(&b'\\'),
            "error span {start}..{end} of {shown:?}"
        );
    }
    let mut buf = vec![0u8; 4 * tok.len() + 4];
    let decoded = decode_into(&tok, &mut buf);
    match &ours {
        Ok(cps) => {
            let expected = mod_utf8(cps);
            assert_eq!(
                decoded.and_then(|n| buf.get(..n)),
                Some(expected.as_slice()),
                "decode_into({shown:?})"
            );
            if let Some(short) = expected.len().checked_sub(1) {
                let mut small = vec![0u8; short];
                assert_eq!(
                    decode_into(&tok, &mut small),
                    None,
                    "decode_into({shown:?}) into {short} bytes"
                );
            }
            assert!(eq_tokens(&tok, &tok), "{shown:?} differs from itself");
            assert!(
                eq_tokens(&tok, &std_tok),
                "{shown:?} differs from its JSON form {:?}",
                String::from_utf8_lossy(&std_tok)
            );
        }
        Err(_) => {
            assert_eq!(decoded, None, "decode_into accepts invalid {shown:?}");
            assert!(!eq_tokens(&tok, &tok), "invalid {shown:?} equals itself");
        }
    }
}
