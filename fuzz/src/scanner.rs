//! Target `scanner`: the request parser ([`validate`]) against `serde_json`.
//!
//! Input: a byte stream. It goes through a [`Streamer`] with qemu-ga's limits; every complete
//! request's stored text is validated by the core and, mapped from QEMU's dialect to standard
//! JSON by [`std_json_text`], parsed by `serde_json` through [`strict_json`].
//!
//! # Which implication holds
//!
//! QEMU's dialect is a superset of JSON in its *syntax* (single-quoted strings, the `\'`
//! escape, the modified UTF-8 `C0 80` for U+0000, numbers beyond the range of a double) and a
//! subset in its *semantics*: it refuses duplicate keys and noncharacters (U+FDD0..U+FDEF,
//! U+xxFFFE, U+xxFFFF, escaped or raw), which JSON allows. So:
//!
//! * qga accepts ⇒ `serde_json` accepts the mapped text (the mapping removes the syntactic
//!   extensions). This is the direction that holds for QEMU's dialect as such.
//! * `serde_json` accepts the mapped text ⇒ qga accepts, **unless** the text has a duplicate key
//!   or a noncharacter. [`strict_json`] adds exactly those two rules to `serde_json`, so with it
//!   the implication is checked both ways: qga accepts ⇔ strict `serde_json` accepts.
//!
//! `serde_json` runs without its recursion limit (qemu-ga nests up to 1024 levels). What the
//! comparison leaves out is the lexical level (`0e1`, control bytes, 0xFE/0xFF), which never
//! reaches the parser as a request: the lexer turns it into error tokens, covered by the
//! `framer` and `agent` targets and the differential corpus.

use qga_core::Limits;
use qga_core::json::parse::{ParseError, scratch_needed, validate};
use qga_core::stream::{Event, Streamer};

use super::oracle::{StrictError, std_json_text, strict_json};

/// Compares the core's verdict on one stored request with strict `serde_json`'s.
pub fn compare(text: &[u8], keys: u32, depth: u32) {
    let mut scratch = vec![0u8; scratch_needed(keys, depth)];
    let ours = validate(text, keys, depth, &mut scratch);
    assert_ne!(
        ours,
        Err(ParseError::NoRoom),
        "validate: no room in {} bytes",
        scratch.len()
    );
    let mapped = std_json_text(text);
    let theirs = strict_json(&mapped);
    let shown = || {
        format!(
            "request {:?}, as JSON {:?}",
            String::from_utf8_lossy(text),
            String::from_utf8_lossy(&mapped)
        )
    };
    match (&ours, &theirs) {
        (Ok(()), Ok(())) | (Err(_), Err(_)) => {}
        (Ok(()), Err(e)) => panic!("qga accepts, serde_json refuses ({e:?}): {}", shown()),
        (Err(e), Ok(())) => panic!("qga refuses ({e:?}), serde_json accepts: {}", shown()),
    }
    // When serde_json refuses only for one of QEMU's own rules, both walked the text in the same
    // order up to that point, so qga must report that very rule.
    match theirs {
        Err(StrictError::DuplicateKey) => assert_eq!(
            ours,
            Err(ParseError::DuplicateKey),
            "serde_json found a duplicate key first: {}",
            shown()
        ),
        Err(StrictError::Noncharacter) => assert!(
            matches!(
                ours,
                Err(ParseError::InvalidUnicode(..) | ParseError::InvalidUtf8)
            ),
            "serde_json found a noncharacter first, qga reports {ours:?}: {}",
            shown()
        ),
        _ => {}
    }
}

/// The target: see the module documentation.
pub fn check(data: &[u8]) {
    let mut frame = vec![0u8; 1 << 16];
    let mut frame = &mut frame[..];
    let limits = Limits::QEMU;
    let mut s = Streamer::default();
    let mut rest = data;
    while !rest.is_empty() {
        let (n, ev) = s.feed(&mut frame, rest, &limits);
        rest = rest.get(n..).unwrap_or(&[]);
        match ev {
            Some(Event::Request { len, keys, depth }) => {
                let text = frame.get(..len).unwrap_or(&[]);
                compare(text, keys, depth);
            }
            Some(_) => {}
            None => break,
        }
    }
}
