//! A serde `Serializer` that streams values in QEMU's compact JSON format through a
//! [`JsonWriter`], without allocating.
//!
//! The mapping follows what QEMU's QAPI output visitor plus `json-writer.c` produce:
//!
//! * structs are objects with their fields in **declared order** (declare them in QDict order, see
//!   `crate::qdict`); a field whose value is `None` is left out entirely, as QAPI leaves out absent
//!   optional members, so types need no `skip_serializing_if`;
//! * `None` anywhere else (top level, list element, map value) is `null`;
//! * `&str` and bytes (`serialize_bytes`, e.g. a `Bytes` newtype) are strings written by
//!   [`JsonWriter::string`]: modified UTF-8 with `\uFFFD` for invalid sequences, cut at a NUL, so
//!   names that are not UTF-8 survive; a `char` is one code point ([`JsonWriter::string_char`]),
//!   so `'\0'` is written `\u0000`;
//! * integers are decimal, `f32`/`f64` use `%.17g`, unit and unit structs are `{}` (QAPI's empty
//!   return), unit enum variants are their (renamed) name, newtype structs are their content;
//! * sequences and tuples are arrays, maps are objects in the order given;
//! * enum variants with data have no QAPI equivalent: they fail with [`SerError::Unsupported`].
//!
//! Separators are `", "` and `": "` as in QEMU's output. Output is streamed: when an error is
//! returned part of the value may already have been written. [`serialized_len`] checks a value
//! (and measures it) without writing anything.

use core::convert::Infallible;
use core::fmt;

use embedded_io::Write;
use serde::ser::{self, Impossible, Serialize};

use super::write::JsonWriter;

/// Why a value could not be serialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerError<E> {
    /// The sink failed.
    Io(E),
    /// The value has no QEMU JSON form: an enum variant with data, a map key that is not a string,
    /// or an error raised by the value's own `Serialize` implementation.
    Unsupported,
}

impl<E: fmt::Display> fmt::Display for SerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "write error: {e}"),
            Self::Unsupported => f.write_str("value cannot be serialised as QEMU JSON"),
        }
    }
}

impl<E: core::error::Error> core::error::Error for SerError<E> {}

impl<E: core::error::Error> ser::Error for SerError<E> {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        // The message is dropped: formatting it would need an allocation.
        Self::Unsupported
    }
}

/// Serialises `value` into `out` (see the module documentation for the mapping).
pub fn to_writer<T, W>(value: &T, out: &mut JsonWriter<'_, W>) -> Result<(), SerError<W::Error>>
where
    T: Serialize + ?Sized,
    W: Write + ?Sized,
{
    value.serialize(Serializer { w: out })
}

/// Returns how many bytes [`to_writer`] would write for `value`, writing nothing.
///
/// An `Err` means `to_writer` would fail with [`SerError::Unsupported`] part-way through; calling
/// this first keeps a half-written value off the wire.
pub fn serialized_len<T: Serialize + ?Sized>(value: &T) -> Result<usize, SerError<Infallible>> {
    let mut counter = Counter(0);
    to_writer(value, &mut JsonWriter::new(&mut counter))?;
    Ok(counter.0)
}

/// A sink that only counts bytes.
struct Counter(usize);

impl embedded_io::ErrorType for Counter {
    type Error = Infallible;
}

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// The value serializer: one per value, borrowing the writer.
struct Serializer<'a, 'w, W: Write + ?Sized> {
    w: &'a mut JsonWriter<'w, W>,
}

/// Writes one raw token, mapping the sink's error.
fn raw<W: Write + ?Sized>(w: &mut JsonWriter<'_, W>, s: &[u8]) -> Result<(), SerError<W::Error>> {
    w.raw(s).map_err(SerError::Io)
}

/// Writes `value` (`Display`) as one JSON string, streaming the formatter's output.
fn display_string<W, T>(w: &mut JsonWriter<'_, W>, value: &T) -> Result<(), SerError<W::Error>>
where
    W: Write + ?Sized,
    T: fmt::Display + ?Sized,
{
    /// Adapter that keeps the sink's error, which `fmt::Error` cannot carry.
    struct Adapter<'a, 'w, W: Write + ?Sized> {
        w: &'a mut JsonWriter<'w, W>,
        err: Option<W::Error>,
    }
    impl<W: Write + ?Sized> fmt::Write for Adapter<'_, '_, W> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            // Each `&str` fragment holds whole characters, as `string_part` requires.
            self.w.string_part(s.as_bytes()).map_err(|e| {
                self.err = Some(e);
                fmt::Error
            })
        }
    }

    w.string_begin().map_err(SerError::Io)?;
    let mut adapter = Adapter { w, err: None };
    if fmt::write(&mut adapter, format_args!("{value}")).is_err() {
        return Err(adapter.err.map_or(SerError::Unsupported, SerError::Io));
    }
    adapter.w.string_end().map_err(SerError::Io)
}

/// Writes a 128-bit magnitude in decimal (QAPI has no such type; the value is kept exact).
fn u128_decimal<W: Write + ?Sized>(
    w: &mut JsonWriter<'_, W>,
    negative: bool,
    mut v: u128,
) -> Result<(), SerError<W::Error>> {
    let mut buf = [0u8; 40];
    let mut start = buf.len();
    for slot in buf.iter_mut().rev() {
        // `v % 10` is below 10, so the cast is lossless.
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
        start -= 1;
        if v == 0 {
            break;
        }
    }
    if negative {
        raw(w, b"-")?;
    }
    raw(w, buf.get(start..).unwrap_or(b"0"))
}

impl<'a, 'w, W: Write + ?Sized> ser::Serializer for Serializer<'a, 'w, W> {
    type Ok = ();
    type Error = SerError<W::Error>;
    type SerializeSeq = Compound<'a, 'w, W>;
    type SerializeTuple = Compound<'a, 'w, W>;
    type SerializeTupleStruct = Compound<'a, 'w, W>;
    type SerializeTupleVariant = Impossible<(), Self::Error>;
    type SerializeMap = Compound<'a, 'w, W>;
    type SerializeStruct = Compound<'a, 'w, W>;
    type SerializeStructVariant = Impossible<(), Self::Error>;

    fn serialize_bool(self, v: bool) -> Result<(), Self::Error> {
        self.w.bool(v).map_err(SerError::Io)
    }

    fn serialize_i8(self, v: i8) -> Result<(), Self::Error> {
        self.serialize_i64(v.into())
    }

    fn serialize_i16(self, v: i16) -> Result<(), Self::Error> {
        self.serialize_i64(v.into())
    }

    fn serialize_i32(self, v: i32) -> Result<(), Self::Error> {
        self.serialize_i64(v.into())
    }

    fn serialize_i64(self, v: i64) -> Result<(), Self::Error> {
        self.w.int(v).map_err(SerError::Io)
    }

    fn serialize_i128(self, v: i128) -> Result<(), Self::Error> {
        match i64::try_from(v) {
            Ok(small) => self.serialize_i64(small),
            Err(_) => u128_decimal(self.w, v < 0, v.unsigned_abs()),
        }
    }

    fn serialize_u8(self, v: u8) -> Result<(), Self::Error> {
        self.serialize_u64(v.into())
    }

    fn serialize_u16(self, v: u16) -> Result<(), Self::Error> {
        self.serialize_u64(v.into())
    }

    fn serialize_u32(self, v: u32) -> Result<(), Self::Error> {
        self.serialize_u64(v.into())
    }

    fn serialize_u64(self, v: u64) -> Result<(), Self::Error> {
        self.w.uint(v).map_err(SerError::Io)
    }

    fn serialize_u128(self, v: u128) -> Result<(), Self::Error> {
        match u64::try_from(v) {
            Ok(small) => self.serialize_u64(small),
            Err(_) => u128_decimal(self.w, false, v),
        }
    }

    fn serialize_f32(self, v: f32) -> Result<(), Self::Error> {
        self.serialize_f64(v.into())
    }

    fn serialize_f64(self, v: f64) -> Result<(), Self::Error> {
        self.w.double(v).map_err(SerError::Io)
    }

    fn serialize_char(self, v: char) -> Result<(), Self::Error> {
        // One code point: '\0' is written as `\u0000`, not as a C string terminator.
        self.w.string_begin().map_err(SerError::Io)?;
        self.w.string_char(v.into()).map_err(SerError::Io)?;
        self.w.string_end().map_err(SerError::Io)
    }

    fn serialize_str(self, v: &str) -> Result<(), Self::Error> {
        self.w.string(v.as_bytes()).map_err(SerError::Io)
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Self::Error> {
        self.w.string(v).map_err(SerError::Io)
    }

    fn serialize_none(self) -> Result<(), Self::Error> {
        self.w.null().map_err(SerError::Io)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Self::Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Self::Error> {
        // QAPI commands without a return type answer `{}`.
        raw(self.w, b"{}")
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Self::Error> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Self::Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Self::Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Self::Error> {
        Err(SerError::Unsupported)
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a, 'w, W>, Self::Error> {
        raw(self.w, b"[")?;
        Ok(Compound {
            w: self.w,
            first: true,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'a, 'w, W>, Self::Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'w, W>, Self::Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Self::Error> {
        Err(SerError::Unsupported)
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a, 'w, W>, Self::Error> {
        raw(self.w, b"{")?;
        Ok(Compound {
            w: self.w,
            first: true,
        })
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'w, W>, Self::Error> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Self::Error> {
        Err(SerError::Unsupported)
    }

    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<(), Self::Error> {
        display_string(self.w, value)
    }
}

/// An array or object being written.
struct Compound<'a, 'w, W: Write + ?Sized> {
    w: &'a mut JsonWriter<'w, W>,
    /// No element or member written yet (no separator needed).
    first: bool,
}

impl<W: Write + ?Sized> Compound<'_, '_, W> {
    /// Writes `", "` before every element but the first.
    fn separator(&mut self) -> Result<(), SerError<W::Error>> {
        if self.first {
            self.first = false;
            Ok(())
        } else {
            raw(self.w, b", ")
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError<W::Error>> {
        self.separator()?;
        value.serialize(Serializer { w: self.w })
    }
}

impl<W: Write + ?Sized> ser::SerializeSeq for Compound<'_, '_, W> {
    type Ok = ();
    type Error = SerError<W::Error>;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Self::Error> {
        raw(self.w, b"]")
    }
}

impl<W: Write + ?Sized> ser::SerializeTuple for Compound<'_, '_, W> {
    type Ok = ();
    type Error = SerError<W::Error>;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Self::Error> {
        raw(self.w, b"]")
    }
}

impl<W: Write + ?Sized> ser::SerializeTupleStruct for Compound<'_, '_, W> {
    type Ok = ();
    type Error = SerError<W::Error>;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Self::Error> {
        raw(self.w, b"]")
    }
}

impl<W: Write + ?Sized> ser::SerializeMap for Compound<'_, '_, W> {
    type Ok = ();
    type Error = SerError<W::Error>;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Self::Error> {
        self.separator()?;
        key.serialize(KeySerializer { w: self.w })?;
        raw(self.w, b": ")
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        value.serialize(Serializer { w: self.w })
    }

    fn end(self) -> Result<(), Self::Error> {
        raw(self.w, b"}")
    }
}

impl<W: Write + ?Sized> ser::SerializeStruct for Compound<'_, '_, W> {
    type Ok = ();
    type Error = SerError<W::Error>;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Self::Error> {
        // An absent optional member is not written at all (QAPI never writes `null` for it).
        if is_none(value) {
            return Ok(());
        }
        self.separator()?;
        self.w.key(key.as_bytes()).map_err(SerError::Io)?;
        value.serialize(Serializer { w: self.w })
    }

    fn end(self) -> Result<(), Self::Error> {
        raw(self.w, b"}")
    }
}

/// True if `value` serialises as `None` (looking through newtype structs). Costs one call of the
/// value's `serialize`, which the probe ends at the first serializer method it reaches.
fn is_none<T: Serialize + ?Sized>(value: &T) -> bool {
    value.serialize(NoneProbe).is_ok()
}

/// Any outcome of the probe other than `None`.
#[derive(Debug)]
struct NotNone;

impl fmt::Display for NotNone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not None")
    }
}

impl core::error::Error for NotNone {}

impl ser::Error for NotNone {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Self
    }
}

/// A serializer that succeeds only for `None` and fails fast for everything else.
struct NoneProbe;

impl ser::Serializer for NoneProbe {
    type Ok = ();
    type Error = NotNone;
    type SerializeSeq = Impossible<(), NotNone>;
    type SerializeTuple = Impossible<(), NotNone>;
    type SerializeTupleStruct = Impossible<(), NotNone>;
    type SerializeTupleVariant = Impossible<(), NotNone>;
    type SerializeMap = Impossible<(), NotNone>;
    type SerializeStruct = Impossible<(), NotNone>;
    type SerializeStructVariant = Impossible<(), NotNone>;

    fn serialize_none(self) -> Result<(), NotNone> {
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), NotNone> {
        // Newtype structs are transparent in the output, so a wrapped `None` is absent too.
        value.serialize(self)
    }

    fn serialize_bool(self, _v: bool) -> Result<(), NotNone> {
        Err(NotNone)
    }
    fn serialize_i8(self, _v: i8) -> Result<(), NotNone> {
        Err(NotNone)
    }
    fn serialize_i16(self, _v: i16) -> Result<(), NotNone> {
        Err(NotNone)
    }
    fn serialize_i32(self, _v: i32) -> Result<(), NotNone> {
        Err(NotNone)
    }
    fn serialize_i64(self, _v: i64) -> Result<(), NotNone> {
        Err(NotNone)
    }
    fn serialize_i128(self, _v: i128) -> Result<(), NotNone> {
        Err(NotNone)
    }
    fn serialize_u8(self, _v: u8) -> Result<(), NotNone> {
        Err(NotNone)
    }
    fn serialize_u16(self, _v: u16) -> Result<(), NotNone> {
        Err(NotNone)
    }
    fn serialize_u32(self, _v: u32) -> Result<(), NotNone> {
        Err(NotNone)
    }
    fn serialize_u64(self, _v: u64) -> Result<(), NotNone> {
        Err(NotNone)
    }
    fn serialize_u128(self, _v: u128) -> Result<(), NotNone> {
        Err(NotNone)
    }
    fn serialize_f32(self, _v: f32) -> Result<(), NotNone> {
        Err(NotNone)
    }
    fn serialize_f64(self, _v: f64) -> Result<(), NotNone> {
        Err(NotNone)
    }
    fn serialize_char(self, _v: char) -> Result<(), NotNone> {
        Err(NotNone)
    }
    fn serialize_str(self, _v: &str) -> Result<(), NotNone> {
        Err(NotNone)
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), NotNone> {
        Err(NotNone)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), NotNone> {
        Err(NotNone)
    }
    fn serialize_unit(self) -> Result<(), NotNone> {
        Err(NotNone)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), NotNone> {
        Err(NotNone)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
    ) -> Result<(), NotNone> {
        Err(NotNone)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), NotNone> {
        Err(NotNone)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, NotNone> {
        Err(NotNone)
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, NotNone> {
        Err(NotNone)
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, NotNone> {
        Err(NotNone)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, NotNone> {
        Err(NotNone)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, NotNone> {
        Err(NotNone)
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, NotNone> {
        Err(NotNone)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, NotNone> {
        Err(NotNone)
    }
    fn collect_str<T: fmt::Display + ?Sized>(self, _value: &T) -> Result<(), NotNone> {
        Err(NotNone)
    }
}

/// Serializes a map key: QDict keys are strings, so only string-like values are accepted.
struct KeySerializer<'a, 'w, W: Write + ?Sized> {
    w: &'a mut JsonWriter<'w, W>,
}

impl<W: Write + ?Sized> KeySerializer<'_, '_, W> {
    fn unsupported(self) -> Result<(), SerError<W::Error>> {
        Err(SerError::Unsupported)
    }
}

impl<W: Write + ?Sized> ser::Serializer for KeySerializer<'_, '_, W> {
    type Ok = ();
    type Error = SerError<W::Error>;
    type SerializeSeq = Impossible<(), Self::Error>;
    type SerializeTuple = Impossible<(), Self::Error>;
    type SerializeTupleStruct = Impossible<(), Self::Error>;
    type SerializeTupleVariant = Impossible<(), Self::Error>;
    type SerializeMap = Impossible<(), Self::Error>;
    type SerializeStruct = Impossible<(), Self::Error>;
    type SerializeStructVariant = Impossible<(), Self::Error>;

    fn serialize_str(self, v: &str) -> Result<(), Self::Error> {
        self.w.string(v.as_bytes()).map_err(SerError::Io)
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Self::Error> {
        self.w.string(v).map_err(SerError::Io)
    }

    fn serialize_char(self, v: char) -> Result<(), Self::Error> {
        Serializer { w: self.w }.serialize_char(v)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Self::Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Self::Error> {
        value.serialize(self)
    }

    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<(), Self::Error> {
        display_string(self.w, value)
    }

    fn serialize_bool(self, _v: bool) -> Result<(), Self::Error> {
        self.unsupported()
    }
    fn serialize_i8(self, _v: i8) -> Result<(), Self::Error> {
        self.unsupported()
    }
    fn serialize_i16(self, _v: i16) -> Result<(), Self::Error> {
        self.unsupported()
    }
    fn serialize_i32(self, _v: i32) -> Result<(), Self::Error> {
        self.unsupported()
    }
    fn serialize_i64(self, _v: i64) -> Result<(), Self::Error> {
        self.unsupported()
    }
    fn serialize_u8(self, _v: u8) -> Result<(), Self::Error> {
        self.unsupported()
    }
    fn serialize_u16(self, _v: u16) -> Result<(), Self::Error> {
        self.unsupported()
    }
    fn serialize_u32(self, _v: u32) -> Result<(), Self::Error> {
        self.unsupported()
    }
    fn serialize_u64(self, _v: u64) -> Result<(), Self::Error> {
        self.unsupported()
    }
    fn serialize_f32(self, _v: f32) -> Result<(), Self::Error> {
        self.unsupported()
    }
    fn serialize_f64(self, _v: f64) -> Result<(), Self::Error> {
        self.unsupported()
    }
    fn serialize_none(self) -> Result<(), Self::Error> {
        self.unsupported()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), Self::Error> {
        self.unsupported()
    }
    fn serialize_unit(self) -> Result<(), Self::Error> {
        self.unsupported()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Self::Error> {
        self.unsupported()
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Self::Error> {
        self.unsupported()
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Self::Error> {
        Err(SerError::Unsupported)
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Self::Error> {
        Err(SerError::Unsupported)
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Self::Error> {
        Err(SerError::Unsupported)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Self::Error> {
        Err(SerError::Unsupported)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Self::Error> {
        Err(SerError::Unsupported)
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Self::Error> {
        Err(SerError::Unsupported)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Self::Error> {
        Err(SerError::Unsupported)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    extern crate std;

    use std::collections::BTreeMap;
    use std::string::String;
    use std::vec;
    use std::vec::Vec;

    use serde::Serialize;

    use super::*;
    use crate::json::write::tests::VecSink;

    fn json<T: Serialize + ?Sized>(value: &T) -> String {
        let mut sink = VecSink::default();
        to_writer(value, &mut JsonWriter::new(&mut sink)).unwrap();
        let text = String::from_utf8(sink.0).unwrap();
        assert_eq!(serialized_len(value), Ok(text.len()));
        text
    }

    fn unsupported<T: Serialize + ?Sized>(value: &T) {
        let mut sink = VecSink::default();
        let r = to_writer(value, &mut JsonWriter::new(&mut sink));
        assert_eq!(r, Err(SerError::Unsupported));
        assert_eq!(serialized_len(value), Err(SerError::Unsupported));
    }

    #[derive(Serialize)]
    struct Inner<'a> {
        name: &'a str,
        #[serde(rename = "opt-val")]
        opt: Option<i64>,
    }

    #[derive(Serialize)]
    struct Outer<'a> {
        b: u8,
        a: Option<Inner<'a>>,
        list: &'a [Option<bool>],
        #[serde(rename = "z-last")]
        last: Option<&'a str>,
    }

    #[derive(Serialize)]
    struct Empty {}

    #[derive(Serialize)]
    struct UnitStruct;

    #[derive(Serialize)]
    struct Newtype(u32);

    #[derive(Serialize)]
    struct NewtypeOpt(Option<u32>);

    #[derive(Serialize)]
    struct TupleStruct(u8, &'static str);

    #[derive(Serialize)]
    struct WithNewtypeOpt {
        x: NewtypeOpt,
        y: u8,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "kebab-case")]
    enum Mode {
        NotFound,
        #[serde(rename = "success")]
        Ok,
    }

    #[derive(Serialize)]
    enum WithData {
        Newtype(u8),
        Tuple(u8, u8),
        Struct { x: u8 },
    }

    struct RawBytes<'a>(&'a [u8]);

    impl Serialize for RawBytes<'_> {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    struct Failing;

    impl Serialize for Failing {
        fn serialize<S: ser::Serializer>(&self, _s: S) -> Result<S::Ok, S::Error> {
            Err(ser::Error::custom("nope"))
        }
    }

    struct Shown(&'static str);

    impl Serialize for Shown {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(&format_args!("<{}|{}>", self.0, 42))
        }
    }

    #[test]
    fn scalars() {
        assert_eq!(json(&true), "true");
        assert_eq!(json(&-5i8), "-5");
        assert_eq!(json(&-300i16), "-300");
        assert_eq!(json(&i32::MIN), "-2147483648");
        assert_eq!(json(&i64::MIN), "-9223372036854775808");
        assert_eq!(json(&255u8), "255");
        assert_eq!(json(&65535u16), "65535");
        assert_eq!(json(&u32::MAX), "4294967295");
        assert_eq!(json(&u64::MAX), "18446744073709551615");
        assert_eq!(json(&-7i128), "-7");
        assert_eq!(json(&i128::MIN), "-170141183460469231731687303715884105728");
        assert_eq!(json(&u128::MAX), "340282366920938463463374607431768211455");
        assert_eq!(json(&7u128), "7");
        assert_eq!(json(&0.1f64), "0.10000000000000001");
        assert_eq!(json(&0.1f32), "0.10000000149011612");
        assert_eq!(json(&1e300f64), "1.0000000000000001e+300");
        assert_eq!(json(&f64::INFINITY), "inf");
        assert_eq!(json(&'x'), "\"x\"");
        assert_eq!(json(&'\0'), "\"\\u0000\"");
        assert_eq!(json(&'é'), "\"\\u00E9\"");
        assert_eq!(json(&'😀'), "\"\\uD83D\\uDE00\"");
        assert_eq!(json("a\"b\\c\u{7f}"), "\"a\\\"b\\\\c\\u007F\"");
        assert_eq!(json("cut\0here"), "\"cut\"");
        assert_eq!(json(&RawBytes(b"fo\xffo")), "\"fo\\uFFFDo\"");
        assert_eq!(json(&Shown("é\"")), "\"<\\u00E9\\\"|42>\"");
    }

    #[test]
    fn options_units_and_enums() {
        assert_eq!(json(&None::<u8>), "null");
        assert_eq!(json(&Some(3u8)), "3");
        assert_eq!(json(&Some(None::<u8>)), "null");
        assert_eq!(json(&()), "{}");
        assert_eq!(json(&UnitStruct), "{}");
        assert_eq!(json(&Empty {}), "{}");
        assert_eq!(json(&Newtype(9)), "9");
        assert_eq!(json(&Mode::NotFound), "\"not-found\"");
        assert_eq!(json(&Mode::Ok), "\"success\"");
        assert_eq!(json(&TupleStruct(1, "x")), "[1, \"x\"]");
        assert_eq!(json(&(1u8, "two", None::<u8>)), "[1, \"two\", null]");
    }

    #[test]
    fn sequences() {
        assert_eq!(json::<[u8]>(&[]), "[]");
        assert_eq!(json(&[1u8]), "[1]");
        assert_eq!(json(&[3i64, 2, 1]), "[3, 2, 1]");
        assert_eq!(json(&[Some(1u8), None]), "[1, null]");
        assert_eq!(json(&vec![vec![1u8], vec![]]), "[[1], []]");
        assert_eq!(json(&["a", "b"]), "[\"a\", \"b\"]");
    }

    #[test]
    fn structs_skip_none_fields() {
        let full = Outer {
            b: 1,
            a: Some(Inner {
                name: "n",
                opt: Some(-2),
            }),
            list: &[Some(true), None],
            last: Some("z"),
        };
        assert_eq!(
            json(&full),
            "{\"b\": 1, \"a\": {\"name\": \"n\", \"opt-val\": -2}, \"list\": [true, null], \
             \"z-last\": \"z\"}"
        );
        let sparse = Outer {
            b: 1,
            a: Some(Inner {
                name: "n",
                opt: None,
            }),
            list: &[],
            last: None,
        };
        assert_eq!(
            json(&sparse),
            "{\"b\": 1, \"a\": {\"name\": \"n\"}, \"list\": []}"
        );
        let first_absent = Inner {
            name: "",
            opt: None,
        };
        assert_eq!(json(&first_absent), "{\"name\": \"\"}");
        // Skipping the first member must not leave a leading separator.
        let none_first = Outer {
            b: 0,
            a: None,
            list: &[],
            last: None,
        };
        assert_eq!(json(&none_first), "{\"b\": 0, \"list\": []}");
        // A newtype around None is absent too; around Some it is its content.
        assert_eq!(
            json(&WithNewtypeOpt {
                x: NewtypeOpt(None),
                y: 1
            }),
            "{\"y\": 1}"
        );
        assert_eq!(
            json(&WithNewtypeOpt {
                x: NewtypeOpt(Some(4)),
                y: 1
            }),
            "{\"x\": 4, \"y\": 1}"
        );
        for text in [json(&full), json(&sparse)] {
            let _: serde_json::Value = serde_json::from_str(&text).unwrap();
        }
    }

    #[test]
    fn maps_keep_given_order() {
        let mut m = BTreeMap::new();
        m.insert("b", Some(1u8));
        m.insert("a", None);
        assert_eq!(json(&m), "{\"a\": null, \"b\": 1}");
        let empty: BTreeMap<&str, u8> = BTreeMap::new();
        assert_eq!(json(&empty), "{}");
        let mut keyed = BTreeMap::new();
        keyed.insert('k', 1u8);
        assert_eq!(json(&keyed), "{\"k\": 1}");
        let mut int_keys = BTreeMap::new();
        int_keys.insert(1u8, Mode::NotFound);
        unsupported(&int_keys);
    }

    #[test]
    fn unsupported_values() {
        unsupported(&WithData::Newtype(1));
        unsupported(&WithData::Tuple(1, 2));
        unsupported(&WithData::Struct { x: 1 });
        unsupported(&[Failing]);
        // Inside a struct, the probe must not hide the value's own error.
        #[derive(Serialize)]
        struct HasFailing {
            f: Failing,
        }
        unsupported(&HasFailing { f: Failing });
    }

    /// A sink that accepts `left` bytes and then fails.
    struct Limited {
        left: usize,
    }

    impl embedded_io::ErrorType for Limited {
        type Error = embedded_io::ErrorKind;
    }

    impl Write for Limited {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            if self.left == 0 {
                return Err(embedded_io::ErrorKind::WriteZero);
            }
            let n = buf.len().min(self.left);
            self.left -= n;
            Ok(n)
        }
        fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    #[test]
    fn io_errors_at_every_offset() {
        let value = Outer {
            b: 1,
            a: Some(Inner {
                name: "n\u{e9}",
                opt: Some(-2),
            }),
            list: &[Some(true), None],
            last: Some("z"),
        };
        let len = serialized_len(&value).unwrap();
        for left in 0..len {
            let mut sink = Limited { left };
            let r = to_writer(&value, &mut JsonWriter::new(&mut sink));
            assert_eq!(
                r,
                Err(SerError::Io(embedded_io::ErrorKind::WriteZero)),
                "left {left}"
            );
        }
        let mut sink = Limited { left: len };
        assert_eq!(to_writer(&value, &mut JsonWriter::new(&mut sink)), Ok(()));
        // collect_str keeps the sink's error too.
        let mut sink = Limited { left: 3 };
        let r = to_writer(&Shown("abc"), &mut JsonWriter::new(&mut sink));
        assert_eq!(r, Err(SerError::Io(embedded_io::ErrorKind::WriteZero)));
    }

    #[test]
    fn error_traits() {
        use std::string::ToString;
        let e: SerError<embedded_io::ErrorKind> = ser::Error::custom("x");
        assert_eq!(e, SerError::Unsupported);
        assert_eq!(e.to_string(), "value cannot be serialised as QEMU JSON");
        let io = SerError::Io(embedded_io::ErrorKind::WriteZero);
        assert_eq!(io.to_string(), "write error: WriteZero");
        let _: &dyn core::error::Error = &io;
        let v: Vec<u8> = Vec::new();
        assert_eq!(json(&v), "[]");
    }
}
