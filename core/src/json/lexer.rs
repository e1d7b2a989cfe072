//! QEMU's JSON lexer (`qobject/json-lexer.c`, ≥ 3.0), one byte at a time.
//!
//! The lexer only classifies bytes; the caller keeps the token text (see `crate::stream`). The
//! dialect is QEMU's: single-quoted strings, any byte 0x20..=0xFD inside strings (the parser
//! validates escapes and UTF-8 later), and a recovery mode after an error that skips to the next
//! structural or control byte. Spec §1.2.

/// Kinds of complete tokens.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Tok {
    /// `{`
    LCurly,
    /// `}`
    RCurly,
    /// `[`
    LSquare,
    /// `]`
    RSquare,
    /// `,`
    Comma,
    /// `:`
    Colon,
    /// A double- or single-quoted string, quotes included.
    Str,
    /// An integer number.
    Int,
    /// A number with a fraction or an exponent.
    Float,
    /// `[a-z]+`; only `true`, `false` and `null` survive the parser.
    Keyword,
}

impl Tok {
    /// Numbers and keywords end only at a byte that cannot continue them, so two of them in a
    /// row need a separator when their text is stored back to back.
    pub const fn is_word(self) -> bool {
        matches!(self, Tok::Int | Tok::Float | Tok::Keyword)
    }
}

/// What the lexer did with one byte.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Step {
    /// Whitespace between tokens, or a byte skipped while recovering: nothing to keep.
    Skip,
    /// The byte belongs to the token in progress (the first byte starts a token).
    Push,
    /// The byte is the last byte of a token of this kind.
    Complete(Tok),
    /// A token of this kind ended *before* this byte. The byte was not consumed: feed it again.
    CompleteBefore(Tok),
    /// A lexical error: the byte belongs to the (error) token, which is now complete; the lexer
    /// is recovering.
    Error,
    /// Recovery ended at this byte. It was not consumed: feed it again.
    Resume,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Start,
    Recovery,
    DqString,
    DqEscape,
    SqString,
    SqEscape,
    Sign,
    Zero,
    Digits,
    Mantissa,
    MantissaDigits,
    ExpE,
    ExpSign,
    ExpDigits,
    Keyword,
}

/// The lexer's state: one byte.
#[derive(Clone, Copy, Debug)]
pub struct Lexer {
    state: State,
}

impl Default for Lexer {
    fn default() -> Self {
        Self::new()
    }
}

impl Lexer {
    /// A lexer in its start state.
    pub const fn new() -> Self {
        Lexer {
            state: State::Start,
        }
    }

    /// True while a token is in progress (between its first byte and its end).
    pub fn in_token(&self) -> bool {
        !matches!(self.state, State::Start | State::Recovery)
    }

    /// Drops the token in progress and goes back to the start state (used when a single token
    /// outgrows the size limit, as QEMU does).
    pub fn reset(&mut self) {
        self.state = State::Start;
    }

    /// Inside a string, the length of the prefix of `input` made of plain content bytes: bytes
    /// that [`Lexer::step`] would answer with [`Step::Push`] without changing state (anything
    /// 0x20..=0xFD but the closing quote and the backslash). The caller may take them in bulk.
    /// Outside a string (or right after a backslash) it is 0.
    pub fn plain_run(&self, input: &[u8]) -> usize {
        let quote = match self.state {
            State::DqString => b'"',
            State::SqString => b'\'',
            _ => return 0,
        };
        let special = |b: u8| b == quote || b == b'\\' || !(0x20..0xFE).contains(&b);
        // Eight bytes at a time (SWAR): a word is taken whole when none of its bytes is special.
        const L: u64 = 0x0101_0101_0101_0101;
        const H: u64 = 0x8080_8080_8080_8080;
        let has_zero = |v: u64| v.wrapping_sub(L) & !v & H != 0;
        let mut n = 0;
        let mut words = input.chunks_exact(8);
        for w in &mut words {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            let x = u64::from_le_bytes(a);
            let hit = has_zero(x ^ (L * u64::from(quote)))
                || has_zero(x ^ (L * 0x5C))
                || x.wrapping_sub(L * 0x20) & !x & H != 0
                || has_zero(!(x | L));
            if hit {
                return n + w.iter().take_while(|&&b| !special(b)).count();
            }
            n += 8;
        }
        n + words
            .remainder()
            .iter()
            .take_while(|&&b| !special(b))
            .count()
    }

    /// Classifies one byte.
    pub fn step(&mut self, b: u8) -> Step {
        use State as S;
        let (next, step) = match self.state {
            S::Start => match b {
                b' ' | b'\t' | b'\r' | b'\n' => (S::Start, Step::Skip),
                b'"' => (S::DqString, Step::Push),
                b'\'' => (S::SqString, Step::Push),
                b'-' => (S::Sign, Step::Push),
                b'0' => (S::Zero, Step::Push),
                b'1'..=b'9' => (S::Digits, Step::Push),
                b'a'..=b'z' => (S::Keyword, Step::Push),
                b'{' => (S::Start, Step::Complete(Tok::LCurly)),
                b'}' => (S::Start, Step::Complete(Tok::RCurly)),
                b'[' => (S::Start, Step::Complete(Tok::LSquare)),
                b']' => (S::Start, Step::Complete(Tok::RSquare)),
                b',' => (S::Start, Step::Complete(Tok::Comma)),
                b':' => (S::Start, Step::Complete(Tok::Colon)),
                _ => (S::Recovery, Step::Error),
            },
            // Skip to a byte that is a promising resynchronisation point: structural
            // characters, control characters other than TAB, and the impossible UTF-8 bytes.
            S::Recovery => match b {
                b'\t' => (S::Recovery, Step::Skip),
                0x00..=0x1F | 0xFE | 0xFF | b'[' | b']' | b'{' | b'}' | b':' | b',' => {
                    (S::Start, Step::Resume)
                }
                _ => (S::Recovery, Step::Skip),
            },
            S::DqString => match b {
                b'"' => (S::Start, Step::Complete(Tok::Str)),
                b'\\' => (S::DqEscape, Step::Push),
                0x20..=0xFD => (S::DqString, Step::Push),
                _ => (S::Recovery, Step::Error),
            },
            S::SqString => match b {
                b'\'' => (S::Start, Step::Complete(Tok::Str)),
                b'\\' => (S::SqEscape, Step::Push),
                0x20..=0xFD => (S::SqString, Step::Push),
                _ => (S::Recovery, Step::Error),
            },
            S::DqEscape => match b {
                0x20..=0xFD => (S::DqString, Step::Push),
                _ => (S::Recovery, Step::Error),
            },
            S::SqEscape => match b {
                0x20..=0xFD => (S::SqString, Step::Push),
                _ => (S::Recovery, Step::Error),
            },
            S::Sign => match b {
                b'0' => (S::Zero, Step::Push),
                b'1'..=b'9' => (S::Digits, Step::Push),
                _ => (S::Recovery, Step::Error),
            },
            // QEMU's lexer has no exponent directly after a zero integer part: `0e1` is the
            // integer 0 followed by the keyword `e1`'s letters (checked live against 7.2).
            S::Zero => match b {
                b'.' => (S::Mantissa, Step::Push),
                b'0'..=b'9' => (S::Recovery, Step::Error),
                _ => (S::Start, Step::CompleteBefore(Tok::Int)),
            },
            S::Digits => match b {
                b'0'..=b'9' => (S::Digits, Step::Push),
                b'.' => (S::Mantissa, Step::Push),
                b'e' | b'E' => (S::ExpE, Step::Push),
                _ => (S::Start, Step::CompleteBefore(Tok::Int)),
            },
            S::Mantissa => match b {
                b'0'..=b'9' => (S::MantissaDigits, Step::Push),
                _ => (S::Recovery, Step::Error),
            },
            S::MantissaDigits => match b {
                b'0'..=b'9' => (S::MantissaDigits, Step::Push),
                b'e' | b'E' => (S::ExpE, Step::Push),
                _ => (S::Start, Step::CompleteBefore(Tok::Float)),
            },
            S::ExpE => match b {
                b'+' | b'-' => (S::ExpSign, Step::Push),
                b'0'..=b'9' => (S::ExpDigits, Step::Push),
                _ => (S::Recovery, Step::Error),
            },
            S::ExpSign => match b {
                b'0'..=b'9' => (S::ExpDigits, Step::Push),
                _ => (S::Recovery, Step::Error),
            },
            S::ExpDigits => match b {
                b'0'..=b'9' => (S::ExpDigits, Step::Push),
                _ => (S::Start, Step::CompleteBefore(Tok::Float)),
            },
            S::Keyword => match b {
                b'a'..=b'z' => (S::Keyword, Step::Push),
                _ => (S::Start, Step::CompleteBefore(Tok::Keyword)),
            },
        };
        self.state = next;
        step
    }
}

/// Re-lexes stored message text, which holds complete, valid tokens separated by at most one
/// space. Returns the kind of the token at `pos` (after an optional space), its start and its end.
pub(crate) fn next_token(text: &[u8], pos: usize) -> Option<(Tok, usize, usize)> {
    let mut start = pos;
    if text.get(start) == Some(&b' ') {
        start += 1;
    }
    let first = *text.get(start)?;
    let single = |t| Some((t, start, start + 1));
    match first {
        b'{' => single(Tok::LCurly),
        b'}' => single(Tok::RCurly),
        b'[' => single(Tok::LSquare),
        b']' => single(Tok::RSquare),
        b',' => single(Tok::Comma),
        b':' => single(Tok::Colon),
        b'"' | b'\'' => {
            let mut i = start + 1;
            // Most strings are short: a plain loop beats the SIMD search's set-up cost there.
            while let Some(&c) = text.get(i) {
                if c == first {
                    return Some((Tok::Str, start, i + 1));
                }
                if c == b'\\' {
                    i += 2;
                } else if i - start > 32 {
                    break;
                } else {
                    i += 1;
                }
            }
            loop {
                i += memchr::memchr2(first, b'\\', text.get(i..)?)?;
                if text.get(i) == Some(&first) {
                    return Some((Tok::Str, start, i + 1));
                }
                i += 2;
            }
        }
        b'a'..=b'z' => {
            let len = text
                .get(start..)?
                .iter()
                .take_while(|c| c.is_ascii_lowercase())
                .count();
            Some((Tok::Keyword, start, start + len))
        }
        _ => {
            let rest = text.get(start..)?;
            let len = rest
                .iter()
                .take_while(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .count();
            let is_float = rest
                .get(..len)?
                .iter()
                .any(|c| matches!(c, b'.' | b'e' | b'E'));
            Some((
                if is_float { Tok::Float } else { Tok::Int },
                start,
                start + len,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(input: &[u8]) -> [u8; 64] {
        // Renders the step sequence compactly: s=skip p=push c=complete b=before e=error r=resume
        let mut lx = Lexer::new();
        let mut out = [b'.'; 64];
        let mut n = 0;
        let mut i = 0;
        while i < input.len() && n < 64 {
            let st = lx.step(input[i]);
            out[n] = match st {
                Step::Skip => b's',
                Step::Push => b'p',
                Step::Complete(_) => b'c',
                Step::CompleteBefore(_) => b'b',
                Step::Error => b'e',
                Step::Resume => b'r',
            };
            n += 1;
            if !matches!(st, Step::CompleteBefore(_) | Step::Resume) {
                i += 1;
            }
        }
        out
    }

    macro_rules! case {
        ($input:expr, $expect:expr) => {{
            let got = lex($input);
            let want: &[u8] = $expect;
            assert_eq!(&got[..want.len()], want, "input {:?}", $input);
            assert_eq!(got[want.len()], b'.', "input {:?}", $input);
        }};
    }

    #[test]
    fn structural_and_whitespace() {
        case!(b"{ }\t[\r]\n,:", b"cscscscscc");
    }

    #[test]
    fn strings() {
        case!(b"\"ab\"", b"pppc");
        case!(b"'a\"'", b"pppc");
        case!(b"\"a\\\"b\"", b"pppppc");
    }

    #[test]
    fn string_errors() {
        case!(b"\"a\x01", b"ppe");
        case!(b"\"a\t", b"ppe");
        case!(b"\"a\xff", b"ppe");
        case!(b"\"\\\x01", b"ppe");
    }

    #[test]
    fn numbers() {
        case!(b"1 ", b"pbs");
        case!(b"-0.5e+3,", b"pppppppbc");
        case!(b"01", b"pe");
        case!(b"0e1", b"pbpbp");
        case!(b"-a", b"pe");
        case!(b"1.e", b"ppe");
        case!(b"1e}", b"ppe");
    }

    #[test]
    fn keywords_and_errors() {
        case!(b"true}", b"ppppbc");
        case!(b"T", b"e");
        case!(b"@@@{", b"essrc");
        case!(b"@\t\n", b"esrs");
        case!(b"@\xff", b"ere");
    }

    #[test]
    fn plain_runs_match_step() {
        // Whatever the input, plain_run never claims a byte step() would treat specially.
        let mut input = [0u8; 64];
        for seed in 0..2000u32 {
            for (i, b) in input.iter_mut().enumerate() {
                let r = seed
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(i as u32 * 40503);
                *b = match r % 11 {
                    0 => b'"',
                    1 => b'\\',
                    2 => (r >> 8) as u8 % 0x20,
                    3 => 0xFE | ((r >> 9) as u8 & 1),
                    _ => 0x20 + (r >> 8) as u8 % 0xDE,
                };
            }
            let mut lx = Lexer::new();
            assert_eq!(lx.step(b'"'), Step::Push);
            let n = lx.plain_run(&input);
            for &b in &input[..n] {
                assert_eq!(lx.step(b), Step::Push);
            }
            if n < input.len() {
                let mut probe = lx;
                assert!(
                    matches!(probe.step(input[n]), Step::Complete(_) | Step::Error)
                        || input[n] == b'\\'
                );
            }
        }
    }

    #[test]
    fn relex() {
        let text = b"{\"a\\\"\":[1 2.5 true],'b':-1e3}";
        let mut pos = 0;
        let mut kinds = [Tok::Comma; 16];
        let mut n = 0;
        while let Some((t, _, end)) = next_token(text, pos) {
            kinds[n] = t;
            n += 1;
            pos = end;
        }
        use Tok::*;
        assert_eq!(
            &kinds[..n],
            &[
                LCurly, Str, Colon, LSquare, Int, Float, Keyword, RSquare, Comma, Str, Colon,
                Float, RCurly
            ]
        );
    }
}
