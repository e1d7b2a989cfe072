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

/// Most members any struct of the schema has.
const MAX_MEMBERS: usize = 8;

/// A command's arguments matched to its schema in one pass over the object, so that checking
/// and reading them never rescans it.
#[derive(Clone, Copy, Debug)]
pub struct Args<'m> {
    msg: Msg<'m>,
    obj: Option<Val>,
    members: &'static [Member],
    vals: [Option<Val>; MAX_MEMBERS],
    extra: bool,
}

impl<'m> Args<'m> {
    /// Binds the members of `obj` (the `arguments` object, `None` when absent) to `members`.
    pub fn bind(msg: Msg<'m>, obj: Option<Val>, members: &'static [Member]) -> Self {
        let mut vals = [None; MAX_MEMBERS];
        let mut extra = false;
        if let Some(o) = obj {
            for (k, v) in msg.members(o) {
                let key = msg.bytes(k);
                match members.iter().position(|m| eq_text(key, m.name.as_bytes())) {
                    Some(i) => {
                        if let Some(slot) = vals.get_mut(i) {
                            *slot = Some(v);
                        }
                    }
                    None => extra = true,
                }
            }
        }
        Args {
            msg,
            obj,
            members,
            vals,
            extra,
        }
    }

    /// The value of member `name`.
    pub fn get(&self, name: &str) -> Option<Val> {
        let i = self.members.iter().position(|m| m.name == name)?;
        self.vals.get(i).copied().flatten()
    }

    /// A validated integer member.
    pub fn int(&self, name: &str) -> Option<i64> {
        match number(Tok::Int, self.msg.bytes(self.get(name)?)) {
            Num::Int(v) => Some(v),
            _ => None,
        }
    }

    /// A validated boolean member.
    pub fn boolean(&self, name: &str) -> Option<bool> {
        Some(self.msg.bytes(self.get(name)?) == b"true")
    }

    /// The string token of a member (decode it with [`crate::json::string::decode_into`]).
    pub fn string(&self, name: &str) -> Option<&'m [u8]> {
        let v = self.get(name)?;
        (v.tok == Tok::Str).then(|| self.msg.bytes(v))
    }
}

/// Checks bound arguments against their schema.
pub fn check(args: &Args<'_>) -> Result<(), ArgError> {
    visit_bound(args, None)
}

fn visit_struct(
    msg: &Msg<'_>,
    obj: Option<Val>,
    members: &'static [Member],
    outer: Option<(&'static str, u32)>,
) -> Result<(), ArgError> {
    visit_bound(&Args::bind(*msg, obj, members), outer)
}

fn visit_bound(args: &Args<'_>, outer: Option<(&'static str, u32)>) -> Result<(), ArgError> {
    let msg = &args.msg;
    let path = |name| Path {
        outer,
        name: Some(PathName::Static(name)),
    };
    for (m, v) in args.members.iter().zip(args.vals.iter()) {
        match v {
            None if !m.optional => return Err(ArgError::Missing(path(m.name))),
            None => {}
            Some(v) => visit(msg, *v, m.ty, path(m.name), m.name)?,
        }
    }
    if let (true, Some(o)) = (args.extra, args.obj) {
        if let Some(key) = unexpected_member(msg, o, args.members) {
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
