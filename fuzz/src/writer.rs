//! Target `writer`: [`JsonWriter`] and [`ser::to_writer`] against ports of QEMU's writer and
//! against `serde_json` reading the output back.
//!
//! Input: decoded with `arbitrary` into one [`Case`]. Expected results:
//!
//! * strings (whole, in pieces, code point by code point, mixed): byte for byte what QEMU's
//!   `quoted_str` writes ([`quoted_str`]: modified UTF-8, every invalid sequence or
//!   noncharacter as `\uFFFD`, a NUL byte ends the string, upper-case `\uXXXX`, surrogate
//!   pairs), and `serde_json` reads back the string QEMU means ([`qemu_string`]);
//! * integers: decimal, read back equal;
//! * doubles: byte for byte glibc's `%.17g` ([`glibc_g17`]), including `inf`, `-inf`, `nan`,
//!   `-nan`; finite values read back bit for bit with Rust's correctly rounded parser, and
//!   `serde_json` accepts them as numbers (its default float parser may be one ULP off, so it is
//!   not used for the bit comparison);
//! * serde values (std types and a few of the core's return types): `serde_json` reads back the
//!   expected value (struct members that are `None` left out, strings as above, a `char` as one
//!   code point, unit as `{}`), and [`ser::serialized_len`] is the number of bytes written.

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Result, Unstructured};
use qga_core::json::ser;
use qga_core::json::write::{JsonWriter, format_g17};
use qga_core::types::{
    Base64, Bytes, GuestFileSeek, GuestFilesystemTrimResponse, GuestFilesystemTrimResult,
    GuestFsfreezeStatus, List,
};
use serde_json::{Value, json};

use super::oracle::{
    base64, from_slice_unbounded, glibc_g17, is_valid_codepoint, qemu_string, quoted_codepoint,
    quoted_str, quoted_str_body,
};

/// One step of a string written piecewise.
#[derive(Debug)]
pub enum Op {
    /// [`JsonWriter::string_part`].
    Part(Vec<u8>),
    /// [`JsonWriter::string_char`].
    Char(u32),
}

/// A trim result, as fields the fuzzer chooses.
#[derive(Debug)]
pub struct Trim {
    minimum: Option<i64>,
    path: Vec<u8>,
    trimmed: Option<i64>,
    error: Option<String>,
}

/// What one input writes.
#[derive(Debug)]
pub enum Case {
    /// [`JsonWriter::string`].
    Str(Vec<u8>),
    /// `string_begin`, the operations, `string_end`.
    Ops(Vec<Op>),
    /// [`JsonWriter::int`].
    Int(i64),
    /// [`JsonWriter::uint`].
    Uint(u64),
    /// [`JsonWriter::double`] of these bits.
    Double(u64),
    /// A Rust string through serde.
    Text(String),
    /// A `char` through serde (one code point, not a C string).
    Char(char),
    /// `()` through serde (`{}`).
    Unit,
    /// Raw bytes as [`Bytes`].
    Bytes(Vec<u8>),
    /// Raw bytes as [`Base64`].
    Base64(Vec<u8>),
    /// A list of optional integers (`null` for `None`).
    Ints(Vec<Option<i64>>),
    /// A tuple (an array); the float is `n / 64`, exact in few digits.
    Tuple(bool, u64, i16, Option<String>),
    /// A map with string keys, in key order.
    Map(BTreeMap<String, i32>),
    /// The core's `GuestFilesystemTrimResponse` with these results.
    Trim(Vec<Trim>),
    /// The core's `GuestFileSeek`.
    Seek(bool, i64),
    /// The core's `GuestFsfreezeStatus` (a unit enum variant).
    Freeze(bool),
}

impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(if u.arbitrary()? {
            Op::Part(u.arbitrary()?)
        } else {
            Op::Char(u.arbitrary()?)
        })
    }
}

impl<'a> Arbitrary<'a> for Trim {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Trim {
            minimum: u.arbitrary()?,
            path: u.arbitrary()?,
            trimmed: u.arbitrary()?,
            error: u.arbitrary()?,
        })
    }
}

impl<'a> Arbitrary<'a> for Case {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(match u.int_in_range(0u8..=15)? {
            0 => Case::Str(u.arbitrary()?),
            1 => Case::Ops(u.arbitrary()?),
            2 => Case::Int(u.arbitrary()?),
            3 => Case::Uint(u.arbitrary()?),
            4 => Case::Double(u.arbitrary()?),
            5 => Case::Text(u.arbitrary()?),
            6 => Case::Char(u.arbitrary()?),
            7 => Case::Unit,
            8 => Case::Bytes(u.arbitrary()?),
            9 => Case::Base64(u.arbitrary()?),
            10 => Case::Ints(u.arbitrary()?),
            11 => Case::Tuple(
                u.arbitrary()?,
                u.arbitrary()?,
                u.arbitrary()?,
                u.arbitrary()?,
            ),
            12 => Case::Map(u.arbitrary()?),
            13 => Case::Trim(u.arbitrary()?),
            14 => Case::Seek(u.arbitrary()?, u.arbitrary()?),
            _ => Case::Freeze(u.arbitrary()?),
        })
    }
}

/// Runs `f` on a writer over a fresh buffer and returns the bytes written.
fn written(
    f: impl FnOnce(&mut JsonWriter<'_, Vec<u8>>) -> std::result::Result<(), std::convert::Infallible>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = JsonWriter::new(&mut out);
    match f(&mut w) {
        Ok(()) => {}
        Err(e) => match e {},
    }
    out
}

/// Serialises `v` with the core's serializer, checks [`ser::serialized_len`], and returns the
/// bytes.
fn serialized<T: serde::Serialize + ?Sized>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let result = ser::to_writer(v, &mut JsonWriter::new(&mut out));
    assert!(result.is_ok(), "to_writer failed: {result:?}");
    assert_eq!(ser::serialized_len(v), Ok(out.len()), "serialized_len");
    out
}

/// `serde_json`'s reading of `out`, which must be JSON.
fn read_back(out: &[u8]) -> Value {
    match from_slice_unbounded(out) {
        Ok(v) => v,
        Err(e) => panic!(
            "output is not JSON ({e}): {:?}",
            String::from_utf8_lossy(out)
        ),
    }
}

/// Checks a string written by the core: the exact bytes, and what `serde_json` reads.
fn check_string(out: &[u8], expected_bytes: &[u8], expected: &str) {
    assert_eq!(
        String::from_utf8_lossy(out),
        String::from_utf8_lossy(expected_bytes),
        "string bytes differ from QEMU's quoted_str"
    );
    assert_eq!(
        read_back(out),
        Value::String(expected.to_owned()),
        "string read back"
    );
}

/// The target: see the module documentation.
pub fn check(data: &[u8]) {
    let Ok(case) = Case::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    check_case(&case);
}

/// Checks one decoded case.
pub fn check_case(case: &Case) {
    match case {
        Case::Str(bytes) => {
            let out = written(|w| w.string(bytes));
            check_string(&out, &quoted_str(bytes), &qemu_string(bytes));
        }
        Case::Ops(ops) => {
            let out = written(|w| {
                w.string_begin()?;
                for op in ops {
                    match op {
                        Op::Part(p) => w.string_part(p)?,
                        Op::Char(c) => w.string_char(*c)?,
                    }
                }
                w.string_end()
            });
            let mut bytes = vec![b'"'];
            let mut text = String::new();
            let mut cut = false;
            for op in ops {
                if cut {
                    break;
                }
                match op {
                    Op::Part(p) => {
                        cut = quoted_str_body(p, &mut bytes);
                        text.push_str(&qemu_string(p));
                    }
                    Op::Char(c) => {
                        let cp = Some(*c).filter(|&c| is_valid_codepoint(c));
                        quoted_codepoint(cp, &mut bytes);
                        text.push(cp.and_then(char::from_u32).unwrap_or('\u{FFFD}'));
                    }
                }
            }
            bytes.push(b'"');
            check_string(&out, &bytes, &text);
        }
        Case::Int(v) => {
            let out = written(|w| w.int(*v));
            assert_eq!(out, v.to_string().as_bytes());
            assert_eq!(read_back(&out), json!(*v));
        }
        Case::Uint(v) => {
            let out = written(|w| w.uint(*v));
            assert_eq!(out, v.to_string().as_bytes());
            assert_eq!(read_back(&out), json!(*v));
        }
        Case::Double(bits) => {
            let v = f64::from_bits(*bits);
            let out = written(|w| w.double(v));
            let glibc = glibc_g17(v);
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&glibc),
                "%.17g of {v:e} ({bits:#018x})"
            );
            let mut buf = [0u8; 32];
            assert_eq!(
                format_g17(v, &mut buf),
                out.as_slice(),
                "format_g17 of {v:e}"
            );
            if v.is_finite() {
                let text = std::str::from_utf8(&out).unwrap_or("");
                let back = text.parse::<f64>().map(f64::to_bits);
                assert_eq!(back, Ok(*bits), "{text} does not read back as {v:e}");
                assert!(read_back(&out).is_number(), "{text} is not a JSON number");
            }
        }
        Case::Text(s) => {
            let out = serialized(s);
            check_string(&out, &quoted_str(s.as_bytes()), &qemu_string(s.as_bytes()));
        }
        Case::Char(c) => {
            // One code point through `string_char` (the serializer's deliberate choice): '\0'
            // is `\u0000` rather than an empty C string, a noncharacter is `\uFFFD`.
            let out = serialized(c);
            let cp = Some(u32::from(*c)).filter(|&cp| is_valid_codepoint(cp));
            let mut bytes = vec![b'"'];
            quoted_codepoint(cp, &mut bytes);
            bytes.push(b'"');
            let text = if cp.is_some() {
                c.to_string()
            } else {
                "\u{FFFD}".to_owned()
            };
            check_string(&out, &bytes, &text);
        }
        Case::Unit => assert_eq!(serialized(&()), b"{}"),
        Case::Bytes(b) => {
            let out = serialized(&Bytes(b));
            check_string(&out, &quoted_str(b), &qemu_string(b));
        }
        Case::Base64(b) => {
            let out = serialized(&Base64(b));
            assert_eq!(read_back(&out), Value::String(base64(b)));
        }
        Case::Ints(v) => assert_eq!(read_back(&serialized(v)), json!(v)),
        Case::Tuple(b, n, f, s) => {
            let f = f64::from(*f) / 64.0;
            let s = s.as_deref();
            let back = read_back(&serialized(&(b, n, f, s)));
            // `%.17g` writes integral doubles without a fraction (`2`), which JSON readers take
            // for integers: the double is compared by value.
            let items = back.as_array().map(Vec::as_slice);
            let Some([vb, vn, vf, vs]) = items else {
                panic!("tuple read back as {back}")
            };
            assert_eq!(
                (vb, vn),
                (&json!(b), &json!(n)),
                "tuple read back as {back}"
            );
            assert_eq!(vf.as_f64(), Some(f), "tuple read back as {back}");
            assert_eq!(
                vs,
                &json!(s.map(|s| qemu_string(s.as_bytes()))),
                "tuple read back as {back}"
            );
        }
        Case::Map(m) => {
            let mut expected = serde_json::Map::new();
            for (k, v) in m {
                expected.insert(qemu_string(k.as_bytes()), json!(v));
            }
            assert_eq!(read_back(&serialized(m)), Value::Object(expected));
        }
        Case::Trim(trims) => {
            let results: Vec<GuestFilesystemTrimResult<'_>> = trims
                .iter()
                .map(|t| GuestFilesystemTrimResult {
                    minimum: t.minimum,
                    path: Bytes(&t.path),
                    trimmed: t.trimmed,
                    error: t.error.as_deref(),
                })
                .collect();
            let expected: Vec<Value> = trims
                .iter()
                .map(|t| {
                    let mut o = serde_json::Map::new();
                    if let Some(m) = t.minimum {
                        o.insert("minimum".into(), json!(m));
                    }
                    o.insert("path".into(), json!(qemu_string(&t.path)));
                    if let Some(n) = t.trimmed {
                        o.insert("trimmed".into(), json!(n));
                    }
                    if let Some(e) = &t.error {
                        o.insert("error".into(), json!(qemu_string(e.as_bytes())));
                    }
                    Value::Object(o)
                })
                .collect();
            let out = serialized(&GuestFilesystemTrimResponse {
                paths: List::Items(&results),
            });
            assert_eq!(read_back(&out), json!({ "paths": expected }));
        }
        Case::Seek(eof, position) => {
            let out = serialized(&GuestFileSeek {
                eof: *eof,
                position: *position,
            });
            assert_eq!(read_back(&out), json!({ "eof": eof, "position": position }));
        }
        Case::Freeze(frozen) => {
            let (v, name) = if *frozen {
                (GuestFsfreezeStatus::Frozen, "frozen")
            } else {
                (GuestFsfreezeStatus::Thawed, "thawed")
            };
            assert_eq!(serialized(&v), format!("\"{name}\"").as_bytes());
        }
    }
}
