//! Typed decoding of agent replies: a serde [`Deserializer`](serde::Deserializer) over a value
//! of a validated, stored reply, without allocation.
//!
//! The client keeps a reply's tokens in its buffer ([`Msg`], validated by
//! [`crate::json::parse::validate`]); [`from_value`] turns one value of it (usually the
//! `return` member) into a Rust value. Borrowed fields point into the reply text or into the
//! *arena*, a caller-supplied byte slice (the free tail of the client's buffer) that receives
//! whatever must be decoded: strings with escapes, and base64 payloads. Strings without a
//! backslash are borrowed straight from the reply text and use no arena at all. The arena is
//! handed out front to back with `core::mem::take` and `split_at_mut`; running out of it is
//! [`DeError::ArenaFull`], never a panic.
//!
//! # Mapping
//!
//! | Rust target | accepted JSON | notes |
//! |---|---|---|
//! | `bool` | `true`, `false` | |
//! | integers | integer tokens | ints that fit `i64` go through `visit_i64`, larger non-negative ones through `visit_u64`, so serde's primitive visitors check the target's range ([`DeError::OutOfRange`]); a float token (`1.0`, `1e3`) is [`DeError::WrongType`] |
//! | `f32`, `f64` | integer or float tokens | QEMU writes integral doubles without a fraction (`%.17g`); non-finite results are [`DeError::OutOfRange`] |
//! | `&str`, `char`, identifiers | strings | escapes and surrogate pairs decoded; U+0000 becomes a NUL byte |
//! | bytes (`&[u8]`, [`Bytes`](crate::types::Bytes)) | strings | decoded as QEMU stores strings, modified UTF-8: U+0000 becomes `C0 80`, so bytes the agent read from the OS come back as they were (except invalid UTF-8, which the agent already replaced by U+FFFD) |
//! | [`Base64`](crate::types::Base64) | strings | standard alphabet with canonical padding (what `g_base64_encode` writes), decoded into the arena; room is checked before content, so a payload that does not fit is [`DeError::ArenaFull`] even if it is not valid base64 |
//! | [`List`](crate::types::List) | arrays | handed over as the array's stored text ([`RawList`](crate::types::RawList)), decoded later element by element |
//! | `Option<T>` | `null` or what `T` accepts | `null` is accepted **only** here |
//! | `()`, unit structs | objects | QAPI's empty return is `{}`; members are ignored |
//! | structs, maps | objects | see below |
//! | sequences, tuples, arrays | arrays | every element must be consumed |
//! | unit-only enums | strings | variants with data are [`DeError::Invalid`]; an unknown name is [`DeError::UnknownVariant`] |
//!
//! Strictness: a JSON type the target does not accept is an error (no string-to-number or
//! number-to-string coercion), and so is `null` outside an `Option`. Required members that are
//! missing are [`DeError::MissingField`] (raised by serde's derive).
//!
//! **Unknown object members are ignored**: newer agents add members to existing return types
//! (`total-bytes-privileged` in 9.1, for example), and a host must keep working with them, as
//! libvirt does. Ignored members are skipped without being decoded and without recursion, so
//! they use no arena and no stack, whatever their size and nesting.
//!
//! # Precondition
//!
//! The [`Msg`] must have passed [`crate::json::parse::validate`] (as the client does for every
//! reply). Values are navigated with [`Msg`]'s methods, which assume well-formed token text:
//! on text that was not validated, results are meaningless.
//!
//! # Example
//!
//! ```
//! use qga_core::client::de::from_value;
//! use qga_core::json::parse::Msg;
//! use qga_core::types::GuestFileRead;
//!
//! // `{"return": {"count": 3, "buf-b64": "V29y", "eof": false}}` as the client stores it
//! // (tokens back to back) after validating it.
//! let msg = Msg {
//!     text: b"{\"return\":{\"count\":3,\"buf-b64\":\"V29y\",\"eof\":false}}",
//! };
//! let root = msg.value_at(0).unwrap();
//! let value = msg.get(root, "return").unwrap();
//! let mut arena = [0u8; 16];
//! let read: GuestFileRead = from_value(msg, value, &mut arena).unwrap();
//! read.check().unwrap();
//! assert_eq!(read.buf_b64.0, b"Wor");
//! ```

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, DeserializeSeed, Visitor};

use crate::json::lexer::{Tok, next_token};
use crate::json::parse::{Elements, Members, Msg, Num, Val, number};
use crate::json::string::{Chars, mod_utf8_encode};

/// Newtype-struct name through which [`crate::types::Base64`] asks this deserializer for a
/// decoded base64 string (as borrowed bytes). Not a valid Rust identifier, so no derived type
/// can collide with it.
pub(crate) const BASE64_NEWTYPE: &str = "$qga::Base64";

/// Newtype-struct name through which [`crate::types::List`] asks this deserializer for an
/// array's stored token text (as borrowed bytes).
pub(crate) const LIST_NEWTYPE: &str = "$qga::List";

/// Why a value could not be decoded, or failed a sanity check.
///
/// Small and `Copy`: no message is kept, because formatting one would need an allocation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DeError {
    /// The JSON value has a type the target does not accept (a string for an integer, a float
    /// for an integer, `null` outside an `Option`, ...).
    WrongType {
        /// What the target accepts (`"integer"`, `"string"`, `"object"`, ...).
        expected: &'static str,
    },
    /// A number that does not fit the target type, or a value outside the range a check allows.
    OutOfRange,
    /// A required object member is missing.
    MissingField(&'static str),
    /// A string that names no variant of the target enum.
    UnknownVariant,
    /// The arena has no room left for a decoded string or base64 payload.
    ArenaFull,
    /// A string that is not valid standard, padded base64.
    BadBase64,
    /// Anything else: a value the target's `Deserialize` implementation rejected, an array with
    /// more elements than a fixed-size target takes, a value that fails a consistency check, a
    /// reply that is not what was expected.
    Invalid,
}

impl DeError {
    /// A short, fixed description.
    pub const fn as_str(&self) -> &'static str {
        match self {
            DeError::WrongType { .. } => "wrong JSON type",
            DeError::OutOfRange => "value out of range",
            DeError::MissingField(_) => "missing member",
            DeError::UnknownVariant => "unknown enumeration value",
            DeError::ArenaFull => "no room left to decode the value",
            DeError::BadBase64 => "invalid base64",
            DeError::Invalid => "invalid value",
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeError::WrongType { expected } => write!(f, "wrong JSON type, expected {expected}"),
            DeError::MissingField(name) => write!(f, "missing member '{name}'"),
            other => f.write_str(other.as_str()),
        }
    }
}

impl core::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        // The message is dropped: formatting it would need an allocation.
        DeError::Invalid
    }

    fn invalid_type(_unexp: de::Unexpected<'_>, _exp: &dyn de::Expected) -> Self {
        // Only reached through `deserialize_any` or a hand-written visitor: the typed entry
        // points check the token kind themselves and name what they expected.
        DeError::WrongType {
            expected: "a type the target accepts",
        }
    }

    fn invalid_value(unexp: de::Unexpected<'_>, _exp: &dyn de::Expected) -> Self {
        match unexp {
            // serde's primitive visitors report a number outside the target's range this way.
            de::Unexpected::Signed(_) | de::Unexpected::Unsigned(_) | de::Unexpected::Float(_) => {
                DeError::OutOfRange
            }
            _ => DeError::Invalid,
        }
    }

    fn invalid_length(_len: usize, _exp: &dyn de::Expected) -> Self {
        DeError::Invalid
    }

    fn unknown_variant(_variant: &str, _expected: &'static [&'static str]) -> Self {
        DeError::UnknownVariant
    }

    fn unknown_field(_field: &str, _expected: &'static [&'static str]) -> Self {
        DeError::Invalid
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::MissingField(field)
    }

    fn duplicate_field(_field: &'static str) -> Self {
        DeError::Invalid
    }
}

/// Decodes the value `v` of the validated reply `msg` into a `T`, decoding strings and base64
/// payloads into `arena` as needed (see the module documentation for the mapping).
///
/// Borrowed data in the result points into `msg`'s text or into `arena`, both for `'de`.
pub fn from_value<'de, T: de::Deserialize<'de>>(
    msg: Msg<'de>,
    v: Val,
    arena: &'de mut [u8],
) -> Result<T, DeError> {
    let mut arena = Arena::new(arena);
    from_value_in(msg, v, &mut arena)
}

/// Like [`from_value`], with an [`Arena`] that can go on serving later values (for example the
/// reply's `id` and then its `return`) and that tells how much room is left.
pub fn from_value_in<'de, T: de::Deserialize<'de>>(
    msg: Msg<'de>,
    v: Val,
    arena: &mut Arena<'de>,
) -> Result<T, DeError> {
    T::deserialize(ValueDeserializer::new(msg, v, arena))
}

/// Bytes that decoded values may borrow: a slice handed out front to back.
pub struct Arena<'de> {
    free: &'de mut [u8],
}

impl fmt::Debug for Arena<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("remaining", &self.free.len())
            .finish()
    }
}

impl<'de> Arena<'de> {
    /// An arena over `buf`.
    pub fn new(buf: &'de mut [u8]) -> Self {
        Arena { free: buf }
    }

    /// Bytes not handed out yet.
    pub fn remaining(&self) -> usize {
        self.free.len()
    }

    /// Lets `write` fill the start of the free space and return how many bytes it used; those
    /// bytes are handed out for `'de`. On error nothing is handed out.
    fn fill<F>(&mut self, write: F) -> Result<&'de [u8], DeError>
    where
        F: FnOnce(&mut [u8]) -> Result<usize, DeError>,
    {
        let buf = core::mem::take(&mut self.free);
        let used = match write(&mut *buf) {
            Ok(used) => used,
            Err(e) => {
                self.free = buf;
                return Err(e);
            }
        };
        if used > buf.len() {
            self.free = buf;
            return Err(DeError::ArenaFull);
        }
        // Cannot fail after the check above.
        let (head, tail) = buf.split_at_mut_checked(used).unwrap_or_default();
        self.free = tail;
        Ok(head)
    }
}

/// How a string token is decoded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Text {
    /// Into UTF-8 for `&str`: U+0000 is a NUL byte.
    Utf8,
    /// Into bytes as QEMU stores strings: modified UTF-8, U+0000 is `C0 80`.
    Modified,
}

/// The text between the quotes of a string token.
fn string_content(tok: &[u8]) -> Result<&[u8], DeError> {
    match tok {
        [_, inner @ .., _] => Ok(inner),
        _ => Err(DeError::Invalid),
    }
}

/// Decodes the string token `tok` into `out`; returns the decoded length.
fn unescape_into(tok: &[u8], out: &mut [u8], mode: Text) -> Result<usize, DeError> {
    let mut n = 0;
    for c in Chars::new(tok) {
        let cp = c.map_err(|_| DeError::Invalid)?;
        let mut enc = [0u8; 4];
        let len = if cp == 0 && mode == Text::Utf8 {
            1
        } else {
            mod_utf8_encode(cp, &mut enc)
        };
        let end = n + len;
        out.get_mut(n..end)
            .ok_or(DeError::ArenaFull)?
            .copy_from_slice(enc.get(..len).ok_or(DeError::Invalid)?);
        n = end;
    }
    Ok(n)
}

/// The decoded content of the string token `tok`: borrowed from the token when it has no
/// escape (and, for [`Text::Utf8`], is plain UTF-8), otherwise decoded into the arena.
fn decode_string<'de>(
    tok: &'de [u8],
    arena: &mut Arena<'de>,
    mode: Text,
) -> Result<&'de [u8], DeError> {
    let content = string_content(tok)?;
    if !content.contains(&b'\\') {
        match mode {
            // Validated modified UTF-8 is exactly what the bytes decode to.
            Text::Modified => return Ok(content),
            // Without `C0 80` (which `from_utf8` rejects), validated text is plain UTF-8.
            Text::Utf8 if core::str::from_utf8(content).is_ok() => return Ok(content),
            Text::Utf8 => {}
        }
    }
    arena.fill(|out| unescape_into(tok, out, mode))
}

fn base64_error(e: base64::DecodeSliceError) -> DeError {
    match e {
        base64::DecodeSliceError::OutputSliceTooSmall => DeError::ArenaFull,
        base64::DecodeSliceError::DecodeError(_) => DeError::BadBase64,
    }
}

/// Decodes the base64 string token `tok`, which has escapes, into `out`, one quad at a time as
/// its characters are unescaped; returns the decoded length.
fn base64_escaped_into(tok: &[u8], out: &mut [u8]) -> Result<usize, DeError> {
    let mut quad = [0u8; 4];
    let (mut filled, mut written, mut padded) = (0, 0, false);
    for c in Chars::new(tok) {
        let c = c.map_err(|_| DeError::Invalid)?;
        // Padding may only end the text; each quad on its own would accept it.
        if padded {
            return Err(DeError::BadBase64);
        }
        *quad.get_mut(filled).ok_or(DeError::Invalid)? =
            u8::try_from(c).map_err(|_| DeError::BadBase64)?;
        filled += 1;
        if filled == quad.len() {
            let dst = out.get_mut(written..).ok_or(DeError::ArenaFull)?;
            written += STANDARD.decode_slice(quad, dst).map_err(base64_error)?;
            padded = quad.contains(&b'=');
            filled = 0;
        }
    }
    if filled != 0 {
        return Err(DeError::BadBase64);
    }
    Ok(written)
}

/// Decodes the base64 string token `tok` into the arena.
fn decode_base64<'de>(tok: &'de [u8], arena: &mut Arena<'de>) -> Result<&'de [u8], DeError> {
    let content = string_content(tok)?;
    if content.contains(&b'\\') {
        // Escaped base64 is legal JSON, though qemu-ga never writes it.
        arena.fill(|out| base64_escaped_into(tok, out))
    } else {
        arena.fill(|out| STANDARD.decode_slice(content, out).map_err(base64_error))
    }
}

/// Checks that `text` is the complete token text of one array, re-lexable token by token
/// (so that navigating it always makes progress), and counts its elements.
pub(crate) fn scan_array(text: &[u8]) -> Option<usize> {
    let mut pos = 0;
    let mut depth = 0usize;
    let mut elements = 0;
    let mut prev = None;
    while let Some((tok, start, end)) = next_token(text, pos) {
        if end <= start || (pos == 0 && (tok != Tok::LSquare || start != 0)) {
            return None;
        }
        pos = end;
        if depth == 1 && (tok == Tok::Comma || (prev == Some(Tok::LSquare) && tok != Tok::RSquare))
        {
            elements += 1;
        }
        match tok {
            Tok::LCurly | Tok::LSquare => depth += 1,
            Tok::RCurly | Tok::RSquare => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return (end == text.len()).then_some(elements);
                }
            }
            _ => {}
        }
        prev = Some(tok);
    }
    None
}

/// The serde deserializer of one value of a stored reply.
pub struct ValueDeserializer<'de, 'a> {
    msg: Msg<'de>,
    v: Val,
    arena: &'a mut Arena<'de>,
}

impl<'de, 'a> ValueDeserializer<'de, 'a> {
    /// A deserializer of the value `v` of the validated reply `msg`, decoding into `arena`.
    pub fn new(msg: Msg<'de>, v: Val, arena: &'a mut Arena<'de>) -> Self {
        ValueDeserializer { msg, v, arena }
    }

    fn token(&self) -> &'de [u8] {
        self.msg.bytes(self.v)
    }

    fn keyword(&self) -> Option<&'de [u8]> {
        (self.v.tok == Tok::Keyword).then(|| self.token())
    }

    fn string(self, mode: Text) -> Result<&'de [u8], DeError> {
        if self.v.tok != Tok::Str {
            return Err(DeError::WrongType { expected: "string" });
        }
        decode_string(self.token(), self.arena, mode)
    }

    fn str(self) -> Result<&'de str, DeError> {
        let bytes = self.string(Text::Utf8)?;
        core::str::from_utf8(bytes).map_err(|_| DeError::Invalid)
    }

    fn float(&self) -> Result<f64, DeError> {
        if !matches!(self.v.tok, Tok::Int | Tok::Float) {
            return Err(DeError::WrongType { expected: "number" });
        }
        let text = core::str::from_utf8(self.token()).map_err(|_| DeError::Invalid)?;
        let f: f64 = text.parse().map_err(|_| DeError::Invalid)?;
        if f.is_finite() {
            Ok(f)
        } else {
            Err(DeError::OutOfRange)
        }
    }

    fn integer<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.v.tok != Tok::Int {
            return Err(DeError::WrongType {
                expected: "integer",
            });
        }
        match number(Tok::Int, self.token()) {
            Num::Int(i) => visitor.visit_i64(i),
            Num::Uint(u) => visitor.visit_u64(u),
            Num::Double(_) => Err(DeError::OutOfRange),
        }
    }

    fn object<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.v.tok != Tok::LCurly {
            return Err(DeError::WrongType { expected: "object" });
        }
        let mut map = MapAccess {
            msg: self.msg,
            members: self.msg.members(self.v),
            value: None,
            arena: self.arena,
        };
        let out = visitor.visit_map(&mut map)?;
        if map.members.next().is_some() {
            return Err(DeError::Invalid);
        }
        Ok(out)
    }

    fn array<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.v.tok != Tok::LSquare {
            return Err(DeError::WrongType { expected: "array" });
        }
        let mut seq = SeqAccess {
            msg: self.msg,
            elements: self.msg.elements(self.v),
            arena: self.arena,
        };
        let out = visitor.visit_seq(&mut seq)?;
        if seq.elements.next().is_some() {
            return Err(DeError::Invalid);
        }
        Ok(out)
    }
}

macro_rules! integers {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            self.integer(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for ValueDeserializer<'de, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.v.tok {
            Tok::LCurly => self.object(visitor),
            Tok::LSquare => self.array(visitor),
            Tok::Str => visitor.visit_borrowed_str(self.str()?),
            Tok::Int => match number(Tok::Int, self.token()) {
                Num::Int(i) => visitor.visit_i64(i),
                Num::Uint(u) => visitor.visit_u64(u),
                // Beyond 64 bits QEMU keeps the number as a double, and so does this.
                Num::Double(_) => visitor.visit_f64(self.float()?),
            },
            Tok::Float => visitor.visit_f64(self.float()?),
            Tok::Keyword => match self.token() {
                b"true" => visitor.visit_bool(true),
                b"false" => visitor.visit_bool(false),
                b"null" => visitor.visit_unit(),
                _ => Err(DeError::Invalid),
            },
            _ => Err(DeError::Invalid),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.keyword() {
            Some(b"true") => visitor.visit_bool(true),
            Some(b"false") => visitor.visit_bool(false),
            _ => Err(DeError::WrongType {
                expected: "boolean",
            }),
        }
    }

    integers! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let f = self.float()?;
        // serde's `f32` visitor would turn a double beyond `f32`'s range into an infinity.
        if !(f as f32).is_finite() {
            return Err(DeError::OutOfRange);
        }
        visitor.visit_f64(f)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_f64(self.float()?)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_borrowed_str(self.str()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_borrowed_bytes(self.string(Text::Modified)?)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.keyword() {
            Some(b"null") => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // QAPI's empty return is `{}`; members a newer agent might add are ignored.
        if self.v.tok != Tok::LCurly {
            return Err(DeError::WrongType { expected: "object" });
        }
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == BASE64_NEWTYPE {
            if self.v.tok != Tok::Str {
                return Err(DeError::WrongType { expected: "string" });
            }
            let bytes = decode_base64(self.token(), self.arena)?;
            visitor.visit_borrowed_bytes(bytes)
        } else if name == LIST_NEWTYPE {
            if self.v.tok != Tok::LSquare {
                return Err(DeError::WrongType { expected: "array" });
            }
            let end = self.msg.value_end(self.v);
            let text = self
                .msg
                .text
                .get(self.v.start..end)
                .ok_or(DeError::Invalid)?;
            visitor.visit_borrowed_bytes(text)
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.array(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.array(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.array(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.object(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.object(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if self.v.tok != Tok::Str {
            return Err(DeError::WrongType { expected: "string" });
        }
        visitor.visit_enum(UnitEnum(self))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // Skipped without decoding: an ignored member costs no arena.
        visitor.visit_unit()
    }
}

/// An enum given as a string: the string names the variant, which carries no data.
struct UnitEnum<'de, 'a>(ValueDeserializer<'de, 'a>);

impl<'de, 'a> de::EnumAccess<'de> for UnitEnum<'de, 'a> {
    type Error = DeError;
    type Variant = UnitVariant;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, UnitVariant), DeError> {
        Ok((seed.deserialize(self.0)?, UnitVariant))
    }
}

/// The variant of a [`UnitEnum`].
struct UnitVariant;

impl<'de> de::VariantAccess<'de> for UnitVariant {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, _seed: S) -> Result<S::Value, DeError> {
        Err(DeError::Invalid)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, DeError> {
        Err(DeError::Invalid)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, DeError> {
        Err(DeError::Invalid)
    }
}

/// An object's members, in text order.
struct MapAccess<'de, 'a> {
    msg: Msg<'de>,
    members: Members<'de>,
    value: Option<Val>,
    arena: &'a mut Arena<'de>,
}

impl<'de> de::MapAccess<'de> for MapAccess<'de, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.members.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(ValueDeserializer::new(self.msg, key, self.arena))
            .map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, DeError> {
        let value = self.value.take().ok_or(DeError::Invalid)?;
        seed.deserialize(ValueDeserializer::new(self.msg, value, self.arena))
    }
}

/// An array's elements, in order.
struct SeqAccess<'de, 'a> {
    msg: Msg<'de>,
    elements: Elements<'de>,
    arena: &'a mut Arena<'de>,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'de, '_> {
    type Error = DeError;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, DeError> {
        match self.elements.next() {
            Some(v) => seed
                .deserialize(ValueDeserializer::new(self.msg, v, self.arena))
                .map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;

    use std::string::String;
    use std::vec;
    use std::vec::Vec;

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::json::parse::{scratch_needed, validate};
    use crate::json::ser::to_writer;
    use crate::json::write::JsonWriter;
    use crate::json::write::tests::VecSink;
    use crate::proto::Limits;
    use crate::stream::{Event, Streamer};

    /// Feeds `json` (one complete value) through the agent's own streamer and parser and
    /// returns the stored, validated token text.
    pub(crate) fn store(json: &[u8]) -> Vec<u8> {
        let mut frame = vec![0u8; json.len() + 64];
        let mut buf: &mut [u8] = &mut frame;
        let mut input = json.to_vec();
        input.push(b'\n');
        let mut streamer = Streamer::default();
        let (_, event) = streamer.feed(&mut buf, &input, &Limits::default());
        let Some(Event::Request { len, keys, depth }) = event else {
            panic!(
                "no complete value in {:?}: {event:?}",
                String::from_utf8_lossy(json)
            );
        };
        let text = frame[..len].to_vec();
        let mut scratch = vec![0u8; scratch_needed(keys, depth)];
        validate(&text, keys, depth, &mut scratch).unwrap();
        text
    }

    /// The stored form of `json`, leaked so that decoded values can borrow it for `'static`.
    pub(crate) fn leak_msg(json: &[u8]) -> Msg<'static> {
        Msg {
            text: store(json).leak(),
        }
    }

    /// Decodes the whole value `json` with an arena of `arena` bytes.
    pub(crate) fn decode_with<T: Deserialize<'static>>(
        json: &str,
        arena: usize,
    ) -> Result<T, DeError> {
        let msg = leak_msg(json.as_bytes());
        let v = msg.value_at(0).unwrap();
        from_value(msg, v, vec![0u8; arena].leak())
    }

    /// Decodes the whole value `json` with a generous arena.
    pub(crate) fn decode<T: Deserialize<'static>>(json: &str) -> Result<T, DeError> {
        decode_with(json, 1 << 16)
    }

    /// Decodes the member `name` of the reply `reply` (as the client receives it).
    pub(crate) fn decode_member<T: Deserialize<'static>>(
        reply: &[u8],
        name: &str,
    ) -> Result<T, DeError> {
        let msg = leak_msg(reply);
        let root = msg.value_at(0).unwrap();
        let v = msg.get(root, name).unwrap();
        from_value(msg, v, vec![0u8; 1 << 16].leak())
    }

    /// Decodes the `return` member of the reply `reply`.
    pub(crate) fn decode_return<T: Deserialize<'static>>(reply: &[u8]) -> Result<T, DeError> {
        decode_member(reply, "return")
    }

    /// `value` written by the agent's serializer.
    pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
        let mut sink = VecSink::default();
        to_writer(value, &mut JsonWriter::new(&mut sink)).unwrap();
        String::from_utf8(sink.0).unwrap()
    }

    /// Serializes `value` with the agent's writer, stores and validates the text with the
    /// agent's streamer and parser, and decodes it back.
    pub(crate) fn round_trip<T: Serialize + Deserialize<'static>>(value: &T) -> T {
        decode(&to_json(value)).unwrap()
    }

    #[test]
    fn scalars() {
        assert_eq!(decode::<bool>("true"), Ok(true));
        assert_eq!(decode::<bool>("false"), Ok(false));
        assert_eq!(decode::<i64>("-42"), Ok(-42));
        assert_eq!(decode::<i64>("-0"), Ok(0));
        assert_eq!(decode::<u64>("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(decode::<i64>("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(decode::<u8>("255"), Ok(255));
        assert_eq!(decode::<i128>("-5"), Ok(-5));
        assert_eq!(
            decode::<u128>("18446744073709551615"),
            Ok(u128::from(u64::MAX))
        );
        assert_eq!(decode::<f64>("0.10000000000000001"), Ok(0.1));
        assert_eq!(decode::<f64>("1000"), Ok(1000.0));
        assert_eq!(
            decode::<f64>("-9.2233720368547758e+18"),
            Ok(-9.223_372_036_854_776e18)
        );
        assert_eq!(decode::<f32>("1.5"), Ok(1.5));
        assert_eq!(decode::<char>("\"\\u00e9\""), Ok('é'));
        assert_eq!(decode::<&str>("\"abc\""), Ok("abc"));
        assert_eq!(decode::<String>("'single'"), Ok(String::from("single")));
        assert_eq!(decode::<()>("{}"), Ok(()));
        assert_eq!(decode::<()>("{\"new-member\": 1}"), Ok(()));
        assert_eq!(decode::<Option<i64>>("null"), Ok(None));
        assert_eq!(decode::<Option<i64>>("7"), Ok(Some(7)));
        assert_eq!(decode::<Option<Option<i64>>>("null"), Ok(None));
    }

    #[test]
    fn integers_are_range_checked() {
        assert_eq!(decode::<u8>("256"), Err(DeError::OutOfRange));
        assert_eq!(decode::<i8>("-129"), Err(DeError::OutOfRange));
        assert_eq!(decode::<u64>("-1"), Err(DeError::OutOfRange));
        assert_eq!(decode::<u32>("4294967296"), Err(DeError::OutOfRange));
        assert_eq!(
            decode::<i64>("9223372036854775808"),
            Err(DeError::OutOfRange)
        );
        assert_eq!(
            decode::<u64>("18446744073709551616"),
            Err(DeError::OutOfRange)
        );
        assert_eq!(
            decode::<i64>("-9223372036854775809"),
            Err(DeError::OutOfRange)
        );
        assert_eq!(decode::<f64>("1e999"), Err(DeError::OutOfRange));
        assert_eq!(decode::<f32>("1e39"), Err(DeError::OutOfRange));
        assert_eq!(decode::<f32>("3e38"), Ok(3e38));
    }

    /// The error of decoding `json` as a `T`.
    fn error<T: Deserialize<'static> + core::fmt::Debug>(json: &str) -> DeError {
        decode::<T>(json).unwrap_err()
    }

    #[test]
    fn wrong_types_are_errors() {
        let integer = DeError::WrongType {
            expected: "integer",
        };
        assert_eq!(error::<i64>("\"1\""), integer);
        assert_eq!(error::<i64>("1.0"), integer);
        assert_eq!(error::<i64>("1e3"), integer);
        assert_eq!(error::<i64>("null"), integer);
        assert_eq!(error::<i64>("true"), integer);
        assert_eq!(error::<u8>("[1]"), integer);
        let string = DeError::WrongType { expected: "string" };
        assert_eq!(error::<&str>("1"), string);
        assert_eq!(error::<&str>("null"), string);
        assert_eq!(error::<&[u8]>("[1, 2]"), string);
        assert_eq!(error::<GuestKind>("1"), string);
        let boolean = DeError::WrongType {
            expected: "boolean",
        };
        assert_eq!(error::<bool>("1"), boolean);
        assert_eq!(error::<bool>("\"true\""), boolean);
        assert_eq!(error::<bool>("null"), boolean);
        assert_eq!(
            error::<f64>("\"1.5\""),
            DeError::WrongType { expected: "number" }
        );
        let object = DeError::WrongType { expected: "object" };
        assert_eq!(error::<Point>("[1, 2]"), object);
        assert_eq!(error::<Point>("null"), object);
        assert_eq!(error::<()>("null"), object);
        assert_eq!(error::<()>("[]"), object);
        let array = DeError::WrongType { expected: "array" };
        assert_eq!(error::<[i64; 2]>("{}"), array);
        assert_eq!(error::<Many<i64>>("null"), array);
        assert_eq!(error::<(i64, i64)>("\"12\""), array);
        // `null` is only for options, also inside containers.
        assert_eq!(error::<Many<i64>>("[1, null]"), integer);
        assert_eq!(
            decode::<Many<Option<i64>>>("[1, null]"),
            Ok(Many(vec![Some(1), None]))
        );
    }

    /// A growable sequence (serde's `Vec` impl needs its `alloc` feature, which this crate does
    /// not enable).
    #[derive(Debug, PartialEq)]
    struct Many<T>(Vec<T>);

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Many<T> {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V<T>(core::marker::PhantomData<T>);
            impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
                type Value = Many<T>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an array")
                }
                fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Many<T>, A::Error> {
                    let mut out = Vec::new();
                    while let Some(x) = seq.next_element()? {
                        out.push(x);
                    }
                    Ok(Many(out))
                }
            }
            d.deserialize_seq(V(core::marker::PhantomData))
        }
    }

    /// Pairs in text order (serde's map impls need `alloc`).
    #[derive(Debug, PartialEq)]
    struct Pairs<'a>(Vec<(&'a str, i64)>);

    impl<'de> Deserialize<'de> for Pairs<'de> {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Pairs<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Pairs<'de>, A::Error> {
                    let mut out = Vec::new();
                    while let Some(kv) = map.next_entry()? {
                        out.push(kv);
                    }
                    Ok(Pairs(out))
                }
            }
            d.deserialize_map(V)
        }
    }

    /// Any JSON value, through `deserialize_any`.
    #[derive(Debug, PartialEq)]
    enum Any<'a> {
        Unit,
        Bool(bool),
        Int(i64),
        Uint(u64),
        Float(f64),
        Str(&'a str),
        List(Vec<Any<'a>>),
        Object(Vec<(&'a str, Any<'a>)>),
    }

    impl<'de> Deserialize<'de> for Any<'de> {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Any<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("any value")
                }
                fn visit_unit<E>(self) -> Result<Any<'de>, E> {
                    Ok(Any::Unit)
                }
                fn visit_bool<E>(self, v: bool) -> Result<Any<'de>, E> {
                    Ok(Any::Bool(v))
                }
                fn visit_i64<E>(self, v: i64) -> Result<Any<'de>, E> {
                    Ok(Any::Int(v))
                }
                fn visit_u64<E>(self, v: u64) -> Result<Any<'de>, E> {
                    Ok(Any::Uint(v))
                }
                fn visit_f64<E>(self, v: f64) -> Result<Any<'de>, E> {
                    Ok(Any::Float(v))
                }
                fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Any<'de>, E> {
                    Ok(Any::Str(v))
                }
                fn visit_seq<A: de::SeqAccess<'de>>(
                    self,
                    mut seq: A,
                ) -> Result<Any<'de>, A::Error> {
                    let mut out = Vec::new();
                    while let Some(x) = seq.next_element()? {
                        out.push(x);
                    }
                    Ok(Any::List(out))
                }
                fn visit_map<A: de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Any<'de>, A::Error> {
                    let mut out = Vec::new();
                    while let Some(kv) = map.next_entry()? {
                        out.push(kv);
                    }
                    Ok(Any::Object(out))
                }
            }
            d.deserialize_any(V)
        }
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Point<'a> {
        x: i64,
        y: Option<u8>,
        label: &'a str,
    }

    #[derive(Deserialize, Debug, PartialEq, Clone, Copy)]
    #[serde(rename_all = "kebab-case")]
    enum GuestKind {
        Linux,
        FreeBsd,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    enum WithData {
        Unit,
        Data(i64),
    }

    #[test]
    fn structs_and_members() {
        assert_eq!(
            decode::<Point>("{\"y\": 3, \"x\": -1, \"label\": \"p\"}"),
            Ok(Point {
                x: -1,
                y: Some(3),
                label: "p"
            })
        );
        // Optional members may be absent or null; unknown members are ignored, whatever their
        // content (even content that would not decode).
        assert_eq!(
            decode::<Point>(
                "{\"x\": 1, \"future\": {\"a\": [1, \"\\u00e9\"]}, \"label\": \"\", \"y\": null, \
                 \"other\": \"\\\\\"}"
            ),
            Ok(Point {
                x: 1,
                y: None,
                label: ""
            })
        );
        assert_eq!(
            decode::<Point>("{\"y\": 3, \"label\": \"p\"}"),
            Err(DeError::MissingField("x"))
        );
        assert_eq!(
            decode::<Point>("{\"x\": 1, \"y\": 300, \"label\": \"p\"}"),
            Err(DeError::OutOfRange)
        );
        // Keys are compared after unescaping.
        assert_eq!(
            decode::<Point>("{\"\\u0078\": 2, 'label': 'q'}"),
            Ok(Point {
                x: 2,
                y: None,
                label: "q"
            })
        );
    }

    #[test]
    fn enums() {
        assert_eq!(decode::<GuestKind>("\"linux\""), Ok(GuestKind::Linux));
        assert_eq!(decode::<GuestKind>("\"free-bsd\""), Ok(GuestKind::FreeBsd));
        assert_eq!(
            decode::<GuestKind>("\"fre\\u0065-bsd\""),
            Ok(GuestKind::FreeBsd)
        );
        assert_eq!(
            decode::<GuestKind>("\"Linux\""),
            Err(DeError::UnknownVariant)
        );
        assert_eq!(decode::<GuestKind>("\"\""), Err(DeError::UnknownVariant));
        assert_eq!(decode::<WithData>("\"Unit\""), Ok(WithData::Unit));
        assert_eq!(decode::<WithData>("\"Data\""), Err(DeError::Invalid));
        assert_eq!(
            decode::<WithData>("{\"Data\": 1}"),
            Err(DeError::WrongType { expected: "string" })
        );
    }

    #[test]
    fn sequences_and_maps() {
        assert_eq!(decode::<Many<i64>>("[]"), Ok(Many(vec![])));
        assert_eq!(decode::<Many<i64>>("[1, -2, 3]"), Ok(Many(vec![1, -2, 3])));
        assert_eq!(decode::<[u8; 3]>("[1, 2, 3]"), Ok([1, 2, 3]));
        assert_eq!(decode::<[u8; 0]>("[]"), Ok([]));
        assert_eq!(
            decode::<(i64, &str, bool)>("[1, \"a\", true]"),
            Ok((1, "a", true))
        );
        // A fixed-size target must take every element.
        assert_eq!(error::<[u8; 2]>("[1, 2, 3]"), DeError::Invalid);
        assert_eq!(error::<[u8; 3]>("[1, 2]"), DeError::Invalid);
        assert_eq!(
            decode::<Many<Many<GuestKind>>>("[[\"linux\"], [], [\"free-bsd\", \"linux\"]]"),
            Ok(Many(vec![
                Many(vec![GuestKind::Linux]),
                Many(vec![]),
                Many(vec![GuestKind::FreeBsd, GuestKind::Linux])
            ]))
        );
        assert_eq!(
            decode::<Pairs>("{\"b\": 1, \"a\": 2, \"\\u00e9\": 3}"),
            Ok(Pairs(vec![("b", 1), ("a", 2), ("é", 3)]))
        );
        assert_eq!(
            error::<Pairs>("{\"a\": \"x\"}"),
            DeError::WrongType {
                expected: "integer"
            }
        );
    }

    #[test]
    fn deserialize_any_by_token_kind() {
        assert_eq!(
            decode::<Any>(
                "[null, true, -1, 18446744073709551615, 2.5, 100000000000000000000, \"s\\n\", \
                 [false], {\"k\": {}}]"
            ),
            Ok(Any::List(vec![
                Any::Unit,
                Any::Bool(true),
                Any::Int(-1),
                Any::Uint(u64::MAX),
                Any::Float(2.5),
                Any::Float(1e20),
                Any::Str("s\n"),
                Any::List(vec![Any::Bool(false)]),
                Any::Object(vec![("k", Any::Object(vec![]))]),
            ]))
        );
        assert_eq!(error::<Any>("[1e400000]"), DeError::OutOfRange);
        let _: de::IgnoredAny = decode("{\"a\": [1, {\"b\": null}]}").unwrap();
    }

    #[test]
    fn escaped_strings_and_surrogates() {
        assert_eq!(
            decode::<&str>(r#""q\"b\\s\/\b\f\n\r\t\u0001\u001f\u007f\u0080 <>&'""#),
            Ok("q\"b\\s/\u{8}\u{c}\n\r\t\u{1}\u{1f}\u{7f}\u{80} <>&'")
        );
        assert_eq!(decode::<&str>(r#""\u00e9\ud83d\ude00""#), Ok("é😀"));
        assert_eq!(decode::<&str>(r#""\u00E9\uD83D\uDE00""#), Ok("é😀"));
        assert_eq!(decode::<&str>("\"\u{e9}\u{1f600}\""), Ok("é😀"));
        assert_eq!(decode::<&str>(r"'it\'s'"), Ok("it's"));
        assert_eq!(decode::<&str>(r#"'say "hi"'"#), Ok("say \"hi\""));
        // U+0000: a NUL in a `&str`, QEMU's `C0 80` in bytes, from an escape or raw.
        assert_eq!(decode::<&str>(r#""a\u0000b""#), Ok("a\0b"));
        assert_eq!(decode::<&[u8]>(r#""a\u0000b""#), Ok(&b"a\xc0\x80b"[..]));
        let raw = leak_msg(b"\"a\xc0\x80b\"");
        let v = raw.value_at(0).unwrap();
        assert_eq!(from_value::<&str>(raw, v, vec![0u8; 8].leak()), Ok("a\0b"));
        assert_eq!(
            from_value::<&[u8]>(raw, v, vec![0u8; 0].leak()),
            Ok(&b"a\xc0\x80b"[..])
        );
        assert_eq!(
            decode::<&[u8]>(r#""\u00e9\ud83d\ude00""#),
            Ok("é😀".as_bytes())
        );
    }

    #[test]
    fn plain_strings_are_borrowed_from_the_text() {
        // No arena at all is needed for strings without escapes.
        assert_eq!(decode_with::<&str>("\"plain \u{e9}\"", 0), Ok("plain é"));
        assert_eq!(decode_with::<&[u8]>("\"plain\"", 0), Ok(&b"plain"[..]));
        assert_eq!(
            decode_with::<Point>("{\"label\": \"l\", \"x\": 1}", 0),
            Ok(Point {
                x: 1,
                y: None,
                label: "l"
            })
        );
        assert_eq!(decode_with::<&str>("\"a\\n\"", 0), Err(DeError::ArenaFull));
        assert_eq!(decode_with::<&str>("\"a\\n\"", 1), Err(DeError::ArenaFull));
        assert_eq!(decode_with::<&str>("\"a\\n\"", 2), Ok("a\n"));
    }

    #[test]
    fn arena_is_shared_front_to_back() {
        let msg = leak_msg(br#"["\u0061b", "c\u0064", "\u00e9"]"#);
        let root = msg.value_at(0).unwrap();
        let buf: &'static mut [u8] = vec![0u8; 6].leak();
        let mut arena = Arena::new(buf);
        let got: [&str; 3] = from_value_in(msg, root, &mut arena).unwrap();
        assert_eq!(got, ["ab", "cd", "é"]);
        assert_eq!(arena.remaining(), 0);
        assert_eq!(
            from_value_in::<&str>(msg, msg.elements(root).next().unwrap(), &mut arena),
            Err(DeError::ArenaFull)
        );
        // A failed decode hands nothing out.
        let mut arena = Arena::new(vec![0u8; 3].leak());
        assert_eq!(
            from_value_in::<[&str; 3]>(msg, root, &mut arena),
            Err(DeError::ArenaFull)
        );
        assert_eq!(std::format!("{arena:?}"), "Arena { remaining: 1 }");
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Payload<'a> {
        #[serde(borrow)]
        data: crate::types::Base64<'a>,
    }

    #[test]
    fn base64_is_decoded_into_the_arena() {
        use crate::types::Base64;
        let b64 = |s: &str| decode::<Base64>(s).map(|b| b.0);
        assert_eq!(b64("\"\""), Ok(&b""[..]));
        assert_eq!(
            b64("\"SGVsbG8gV29ybGQhCgA=\""),
            Ok(&b"Hello World!\n\0"[..])
        );
        assert_eq!(b64("\"+/8=\""), Ok(&b"\xfb\xff"[..]));
        assert_eq!(b64("\"V29y\""), Ok(&b"Wor"[..]));
        // Escapes are legal JSON: `\/` and `\u0041`.
        assert_eq!(b64(r#""\u0053GVsbG8=""#), Ok(&b"Hello"[..]));
        assert_eq!(b64(r#""+\/8=""#), Ok(&b"\xfb\xff"[..]));
        for bad in [
            "\"SGVsbG8\"",            // padding missing
            "\"SGVsbG8==\"",          // too much padding
            "\"SGVs bG8=\"",          // space
            "\"SGVsbG8=SGVs\"",       // padding inside
            "\"-_8=\"",               // URL-safe alphabet
            "\"QR==\"",               // non-zero trailing bits
            "\"SGVsbG8=\\n\"",        // line break
            "\"S\\u0047Vsb=8=\"",     // escaped, padding inside
            "\"\\u0053GVsbG8\"",      // escaped, padding missing
            "\"\\u0053GVsbG8=SGVs\"", // escaped, padding inside
            "\"\\u00e9GVs\"",         // escaped, not ASCII
        ] {
            assert_eq!(b64(bad), Err(DeError::BadBase64), "{bad}");
        }
        assert_eq!(
            decode::<Base64>("12"),
            Err(DeError::WrongType { expected: "string" })
        );
        assert_eq!(decode::<Option<Base64>>("null"), Ok(None));
        assert_eq!(
            decode::<Payload>("{\"data\": \"AAEC\"}"),
            Ok(Payload {
                data: Base64(b"\x00\x01\x02")
            })
        );
    }

    #[test]
    fn base64_arena_limits() {
        use crate::types::Base64;
        let text = "\"SGVsbG8gV29ybGQhCgA=\""; // 14 bytes
        assert_eq!(decode_with::<Base64>(text, 13), Err(DeError::ArenaFull));
        assert_eq!(decode_with::<Base64>(text, 14).map(|b| b.0.len()), Ok(14));
        assert_eq!(decode_with::<Base64>(text, 0), Err(DeError::ArenaFull));
        // Escaped: the same room.
        let escaped = r#""SGVsbG8gV29ybGQhCgA\u003d""#;
        assert_eq!(decode_with::<Base64>(escaped, 13), Err(DeError::ArenaFull));
        assert_eq!(
            decode_with::<Base64>(escaped, 14).map(|b| b.0),
            Ok(&b"Hello World!\n\0"[..])
        );
    }

    #[test]
    fn long_base64_round_trips_in_blocks() {
        use crate::types::Base64;
        for len in [0usize, 1, 2, 3, 191, 192, 193, 1000, 10_000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let text = to_json(&Base64(&data));
            assert_eq!(decode_with::<Base64>(&text, len).unwrap().0, &data[..]);
            // The same text with every `A` escaped goes through the quad decoder.
            let escaped = text.replace('A', "\\u0041");
            let room = len;
            assert_eq!(
                decode_with::<Base64>(&escaped, room).unwrap().0,
                &data[..],
                "{len}"
            );
        }
    }

    #[test]
    fn errors_display_and_convert() {
        use serde::de::Error as _;
        assert_eq!(
            std::format!(
                "{}",
                DeError::WrongType {
                    expected: "integer"
                }
            ),
            "wrong JSON type, expected integer"
        );
        assert_eq!(
            std::format!("{}", DeError::MissingField("count")),
            "missing member 'count'"
        );
        assert_eq!(
            std::format!("{}", DeError::ArenaFull),
            DeError::ArenaFull.as_str()
        );
        assert_eq!(DeError::custom("anything"), DeError::Invalid);
        assert_eq!(
            DeError::invalid_value(de::Unexpected::Signed(-1), &"u8"),
            DeError::OutOfRange
        );
        assert_eq!(
            DeError::invalid_value(de::Unexpected::Str("x"), &"y"),
            DeError::Invalid
        );
        let e: &dyn core::error::Error = &DeError::BadBase64;
        assert_eq!(std::format!("{e}"), "invalid base64");
    }

    #[test]
    fn scan_array_checks_and_counts() {
        assert_eq!(scan_array(b"[]"), Some(0));
        assert_eq!(scan_array(b"[1]"), Some(1));
        assert_eq!(scan_array(b"[1,[2,3],{\"a\":[4,5]},\"]\"]"), Some(4));
        assert_eq!(scan_array(b"[[]]"), Some(1));
        for bad in [
            &b""[..],
            b"[",
            b"[1,2",
            b"[1]]",
            b"[1] ",
            b" [1]",
            b"{}",
            b"[#]",
            b"[1  ,2]",
            b"[\"open]",
            b"]",
        ] {
            assert_eq!(scan_array(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
