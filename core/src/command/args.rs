//! QAPI's input visitor (`qapi/qobject-input-visitor.c` and the generated visitors), checking a
//! command's `arguments` against its schema with qemu's exact messages (spec §1.6). Arguments are
//! checked completely before any handler runs.

use super::schema::{Member, Ty};
use crate::json::lexer::Tok;
use crate::json::parse::{Msg, Num, Val, number};
use crate::json::string::eq_text;

/// A name in an argument path.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PathName {
    /// A member of the schema.
    Static(&'static str),
    /// A key from the request (an unexpected member): its string token.
    Key(Val),
}

/// Where an argument error is, as qemu's `full_name()` prints it: `name`, `list[3]`,
/// `list[3].name`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Path {
    /// The list and the element index, for errors inside list elements.
    pub outer: Option<(&'static str, u32)>,
    /// The member (absent for a list element itself).
    pub name: Option<PathName>,
}

/// What is wrong with an argument.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ArgError {
    /// `Parameter '<path>' is missing`.
    Missing(Path),
    /// `Parameter '<path>' is unexpected`.
    Unexpected(Path),
    /// `Invalid parameter type for '<path>', expected: <type>`.
    Type(Path, &'static str),
    /// `Parameter '<path>' expects uint64`.
    Uint64(Path),
    /// `Parameter '<name>' does not accept value '<value>'` (qemu prints the bare name here).
    EnumValue(&'static str, Val),
    /// `Invalid parameter type for '<name>', expected: <alternate>` (bare name too).
    AltType(&'static str, &'static str),
}

/// Checks `args` (the `arguments` object, or `None` when absent) against `members`.
pub fn check(msg: &Msg<'_>, args: Option<Val>, members: &'static [Member]) -> Result<(), ArgError> {
    visit_struct(msg, args, members, None)
}

fn visit_struct(
    msg: &Msg<'_>,
    obj: Option<Val>,
    members: &'static [Member],
    outer: Option<(&'static str, u32)>,
) -> Result<(), ArgError> {
    let path = |name| Path {
        outer,
        name: Some(PathName::Static(name)),
    };
    for m in members {
        match obj.and_then(|o| msg.get(o, m.name)) {
            None if !m.optional => return Err(ArgError::Missing(path(m.name))),
            None => {}
            Some(v) => visit(msg, v, m.ty, path(m.name), m.name)?,
        }
    }
    if let Some(o) = obj {
        if let Some(key) = unexpected_member(msg, o, members) {
            return Err(ArgError::Unexpected(Path {
                outer,
                name: Some(PathName::Key(key)),
            }));
        }
    }
    Ok(())
}

fn visit(msg: &Msg<'_>, v: Val, ty: Ty, path: Path, name: &'static str) -> Result<(), ArgError> {
    let num = || number(v.tok, msg.bytes(v));
    let is_num = matches!(v.tok, Tok::Int | Tok::Float);
    match ty {
        Ty::Int => match is_num.then(num) {
            Some(Num::Int(_)) => Ok(()),
            _ => Err(ArgError::Type(path, "integer")),
        },
        Ty::U64 => match is_num.then(num) {
            Some(Num::Int(_) | Num::Uint(_)) => Ok(()),
            _ => Err(ArgError::Uint64(path)),
        },
        Ty::Bool => match msg.bytes(v) {
            b"true" | b"false" if v.tok == Tok::Keyword => Ok(()),
            _ => Err(ArgError::Type(path, "boolean")),
        },
        Ty::Str => match v.tok {
            Tok::Str => Ok(()),
            _ => Err(ArgError::Type(path, "string")),
        },
        Ty::List(elem) => {
            if v.tok != Tok::LSquare {
                return Err(ArgError::Type(path, "array"));
            }
            for (i, e) in msg.elements(v).enumerate() {
                let at = Path {
                    outer: Some((name, i as u32)),
                    name: None,
                };
                match elem {
                    Ty::Struct(members) => {
                        if e.tok != Tok::LCurly {
                            return Err(ArgError::Type(at, "object"));
                        }
                        visit_struct(msg, Some(e), members, at.outer)?;
                    }
                    _ => visit(msg, e, *elem, at, name)?,
                }
            }
            Ok(())
        }
        Ty::Struct(members) => {
            if v.tok != Tok::LCurly {
                return Err(ArgError::Type(path, "object"));
            }
            visit_struct(msg, Some(v), members, None)
        }
        Ty::Alt(alt) => match v.tok {
            Tok::Str => {
                if alt
                    .values
                    .iter()
                    .any(|x| eq_text(msg.bytes(v), x.as_bytes()))
                {
                    Ok(())
                } else {
                    Err(ArgError::EnumValue(name, v))
                }
            }
            Tok::Int | Tok::Float if matches!(alt.scalar, Ty::Int) => {
                visit(msg, v, Ty::Int, path, name)
            }
            Tok::Keyword
                if matches!(alt.scalar, Ty::Bool) && matches!(msg.bytes(v), b"true" | b"false") =>
            {
                Ok(())
            }
            _ => Err(ArgError::AltType(name, alt.name)),
        },
    }
}

/// The unexpected member qemu reports: the first one a GLib hash table of the object's keys
/// yields (see [`crate::ghash`]).
fn unexpected_member(msg: &Msg<'_>, obj: Val, members: &'static [Member]) -> Option<Val> {
    let known = |k: Val| {
        members
            .iter()
            .any(|m| eq_text(msg.bytes(k), m.name.as_bytes()))
    };
    crate::ghash::first_remaining(msg, obj, &known)
}

/// Reads a validated integer argument.
pub fn int(msg: &Msg<'_>, args: Option<Val>, name: &str) -> Option<i64> {
    match number(Tok::Int, msg.bytes(msg.get(args?, name)?)) {
        Num::Int(v) => Some(v),
        _ => None,
    }
}

/// Reads a validated uint64 argument (negative values wrap, as in qemu).
pub fn uint(msg: &Msg<'_>, v: Val) -> Option<u64> {
    match number(v.tok, msg.bytes(v)) {
        Num::Int(v) => Some(v as u64),
        Num::Uint(v) => Some(v),
        Num::Double(_) => None,
    }
}

/// Reads a validated boolean argument.
pub fn boolean(msg: &Msg<'_>, args: Option<Val>, name: &str) -> Option<bool> {
    Some(msg.bytes(msg.get(args?, name)?) == b"true")
}

/// The string token of an argument (decode it with [`crate::json::string::decode_into`]).
pub fn string<'a>(msg: &Msg<'a>, args: Option<Val>, name: &str) -> Option<&'a [u8]> {
    let v = msg.get(args?, name)?;
    (v.tok == Tok::Str).then(|| msg.bytes(v))
}
