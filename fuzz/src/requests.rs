//! A generator of well-formed requests for the `agent` target, driven by `arbitrary`.
//!
//! Everything generated here is valid in QEMU's dialect: strings are escaped where they must be
//! (and now and then where they need not be: `\u0069`, `\/`, `\'`, modified UTF-8 `C0 80`),
//! numbers follow QEMU's grammar (no exponent directly after a zero integer part), keys are
//! never repeated within an object (compared after unescaping), strings hold no noncharacters.
//! So the parser accepts every generated request, and the agent answers it with exactly one
//! reply carrying its `id` (none for a successful `guest-shutdown`/`guest-suspend-*`).

use std::collections::HashSet;

use arbitrary::{Result, Unstructured};
use qga_core::command::COMMANDS;
use qga_core::command::schema::{Member, Ty};

use super::oracle::is_noncharacter;

/// Names that are not commands, or are commands spelled almost right.
const UNKNOWN_COMMANDS: &[&str] = &[
    "",
    "guest-nope",
    "GUEST-PING",
    "guest-ping ",
    "guest-get-devices",
    "qmp_capabilities",
];

/// Member names that no schema uses.
const EXTRA_KEYS: &[&str] = &[
    "bogus",
    "",
    "x",
    "Handle",
    "id2",
    "exec-oob",
    "\u{e9}t\u{e9}",
    "\u{1F600}",
];

/// Strings worth trying for `str` arguments.
const STRINGS: &[&str] = &[
    "",
    "/tmp/f",
    "/tmp/g",
    "/nonexistent/x",
    "r",
    "w",
    "a",
    "r+",
    "w+",
    "a+",
    "rb",
    "halt",
    "powerdown",
    "reboot",
    "bogus",
    "aGVsbG8gd29ybGQ=",
    "aGk=",
    "!!!!",
    "YQ",
    "root",
    "set",
    "cur",
    "end",
    "none",
    "stdout",
    "stderr",
    "separated",
    "merged",
    "/bin/true",
    "PATH=/bin",
    "ssh-ed25519 AAAA key",
    "caf\u{e9}",
    "\u{1F600}",
    "a\u{0}b",
    "tab\there",
];

/// Integers worth trying for `int` and `uint64` arguments.
const INTS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "1000",
    "1001",
    "1002",
    "4096",
    "65536",
    "50331648",
    "50331649",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "-0",
    "1.5",
    "1e3",
    "1e309",
];

/// Generates request text into a buffer.
pub struct Gen<'u, 'a> {
    u: &'u mut Unstructured<'a>,
    /// The request being written.
    pub out: Vec<u8>,
}

impl<'u, 'a> Gen<'u, 'a> {
    /// A generator reading its choices from `u`.
    pub fn new(u: &'u mut Unstructured<'a>) -> Self {
        Gen { u, out: Vec::new() }
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> Result<T> {
        self.u.choose(items).copied()
    }

    fn chance(&mut self, num: u8, den: u8) -> Result<bool> {
        self.u.ratio(num, den)
    }

    /// Zero to two bytes of whitespace.
    fn ws(&mut self) -> Result<()> {
        if self.chance(1, 4)? {
            let n = self.u.int_in_range(1u8..=2)?;
            for _ in 0..n {
                let b = self.pick(b" \t\n\r")?;
                self.out.push(b);
            }
        }
        Ok(())
    }

    /// Writes `text` as a string token, escaping at random where escaping is optional.
    pub fn string(&mut self, text: &str) -> Result<()> {
        let quote = if self.chance(1, 4)? { b'\'' } else { b'"' };
        self.out.push(quote);
        for c in text.chars() {
            let cp = u32::from(c);
            let must = c == char::from(quote) || c == '\\' || cp < 0x20;
            let style = if must {
                self.u.int_in_range(1u8..=3)?
            } else {
                self.u.int_in_range(0u8..=7)?
            };
            match (style, c) {
                (0 | 4..=7, _) => {
                    let mut buf = [0u8; 4];
                    self.out
                        .extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                (1, '"' | '\'' | '\\' | '/') => {
                    self.out.push(b'\\');
                    self.out.push(cp as u8);
                }
                (1, '\u{8}' | '\u{c}' | '\n' | '\r' | '\t') => {
                    let e = match c {
                        '\u{8}' => b'b',
                        '\u{c}' => b'f',
                        '\n' => b'n',
                        '\r' => b'r',
                        _ => b't',
                    };
                    self.out.extend_from_slice(&[b'\\', e]);
                }
                (2, '\0') => self.out.extend_from_slice(&[0xC0, 0x80]),
                _ => {
                    let lower = self.chance(1, 2)?;
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        let esc = format!("\\u{:04X}", unit);
                        let esc = if lower {
                            esc.to_lowercase().replace("\\U", "\\u")
                        } else {
                            esc
                        };
                        self.out.extend_from_slice(esc.as_bytes());
                    }
                }
            }
        }
        self.out.push(quote);
        Ok(())
    }

    /// A short string from the fuzzer's bytes, without noncharacters.
    fn random_text(&mut self) -> Result<String> {
        let len = self.u.int_in_range(0usize..=12)?;
        let mut s = String::new();
        for _ in 0..len {
            let c: char = self.u.arbitrary()?;
            s.push(if is_noncharacter(c) { '?' } else { c });
        }
        Ok(s)
    }

    /// A string value: a known one or a random one.
    fn string_value(&mut self) -> Result<()> {
        let s = if self.chance(3, 4)? {
            self.pick(STRINGS)?.to_owned()
        } else {
            self.random_text()?
        };
        self.string(&s)
    }

    /// A number in QEMU's grammar.
    fn number(&mut self) -> Result<()> {
        if self.chance(1, 2)? {
            let n = self.pick(INTS)?;
            self.out.extend_from_slice(n.as_bytes());
            return Ok(());
        }
        let mut s = String::new();
        if self.u.arbitrary()? {
            s.push('-');
        }
        let int: u64 = self.u.arbitrary()?;
        s.push_str(&(int >> self.u.int_in_range(0u32..=63)?).to_string());
        let zero = s.ends_with('0') && s.trim_start_matches('-') == "0";
        let frac = self.chance(1, 3)?;
        if frac {
            s.push('.');
            s.push_str(&self.u.int_in_range(0u32..=99999)?.to_string());
        }
        if (frac || !zero) && self.chance(1, 3)? {
            s.push(self.pick(&['e', 'E'])?);
            if let Some(sign) = self.pick(&[None, Some('+'), Some('-')])? {
                s.push(sign);
            }
            s.push_str(&self.u.int_in_range(0u32..=400)?.to_string());
        }
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    /// Any JSON value, nested at most `depth` more levels.
    pub fn value(&mut self, depth: u8) -> Result<()> {
        let max = if depth == 0 { 3 } else { 5 };
        match self.u.int_in_range(0u8..=max)? {
            0 => self.number(),
            1 => self.string_value(),
            2 => {
                let k = self.pick(&["true", "false", "null"])?;
                self.out.extend_from_slice(k.as_bytes());
                Ok(())
            }
            3 => self.number(),
            4 => {
                self.out.push(b'[');
                let n = self.u.int_in_range(0u8..=3)?;
                for i in 0..n {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.ws()?;
                    self.value(depth - 1)?;
                    self.ws()?;
                }
                self.out.push(b']');
                Ok(())
            }
            _ => {
                let n = self.u.int_in_range(0usize..=3)?;
                let mut members: Vec<(String, Option<&'static Ty>)> = Vec::new();
                let mut seen = HashSet::new();
                for _ in 0..n {
                    let k = if self.chance(1, 2)? {
                        self.pick(EXTRA_KEYS)?.to_owned()
                    } else {
                        self.random_text()?
                    };
                    if seen.insert(k.clone()) {
                        members.push((k, None));
                    }
                }
                self.object(&members, depth - 1)
            }
        }
    }

    /// An object with these members (a `None` type is any value).
    fn object(&mut self, members: &[(String, Option<&'static Ty>)], depth: u8) -> Result<()> {
        self.out.push(b'{');
        for (i, (k, ty)) in members.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.ws()?;
            self.string(k)?;
            self.ws()?;
            self.out.push(b':');
            self.ws()?;
            match ty {
                Some(ty) => self.typed(ty, depth)?,
                None => self.value(depth)?,
            }
            self.ws()?;
        }
        self.out.push(b'}');
        Ok(())
    }

    /// A value of type `ty`, mostly; now and then one of another type.
    fn typed(&mut self, ty: &'static Ty, depth: u8) -> Result<()> {
        if self.chance(1, 16)? {
            return self.value(depth.min(1));
        }
        match *ty {
            Ty::Int | Ty::U64 => self.number(),
            Ty::Bool => {
                let b = if self.u.arbitrary()? { "true" } else { "false" };
                self.out.extend_from_slice(b.as_bytes());
                Ok(())
            }
            Ty::Str => self.string_value(),
            Ty::List(elem) => {
                self.out.push(b'[');
                let n = self.u.int_in_range(0u8..=3)?;
                for i in 0..n {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.typed(elem, depth.saturating_sub(1))?;
                }
                self.out.push(b']');
                Ok(())
            }
            Ty::Struct(members) => self.arguments(members, depth.saturating_sub(1)),
            Ty::Alt(alt) => {
                if self.u.arbitrary()? {
                    self.typed(&alt.scalar, depth)
                } else {
                    let v = if self.chance(7, 8)? {
                        self.pick(alt.values)?
                    } else {
                        "bogus"
                    };
                    self.string(v)
                }
            }
        }
    }

    /// An arguments object for `schema`: members in random order, required ones almost always,
    /// optional ones half the time, now and then an unknown one.
    pub fn arguments(&mut self, schema: &'static [Member], depth: u8) -> Result<()> {
        let mut members: Vec<(String, Option<&'static Ty>)> = Vec::new();
        for m in schema {
            let keep = if m.optional {
                self.chance(1, 2)?
            } else {
                self.chance(15, 16)?
            };
            if keep {
                members.push((m.name.to_owned(), Some(&m.ty)));
            }
        }
        if self.chance(1, 8)? {
            let extra = self.pick(EXTRA_KEYS)?;
            if !members.iter().any(|(k, _)| k == extra) {
                members.push((extra.to_owned(), None));
            }
        }
        self.shuffle(&mut members)?;
        self.object(&members, depth)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) -> Result<()> {
        for i in (1..items.len()).rev() {
            let j = self.u.int_in_range(0..=i)?;
            items.swap(i, j);
        }
        Ok(())
    }
}

/// What the generator decided for one request.
#[derive(Debug)]
pub struct Generated {
    /// The request text.
    pub bytes: Vec<u8>,
    /// Index in [`COMMANDS`] of the command named, if it names one.
    pub command: Option<usize>,
    /// The request carries the `id` it was given.
    pub has_marker: bool,
}

/// The `id` of a request: the marker, or something random.
pub enum Id<'m> {
    /// No `id` member.
    None,
    /// This string (the request is counted).
    Marker(&'m str),
    /// Any JSON value.
    Random,
}

/// Generates one request. `id` decides its `id` member; with [`Id::Marker`], the top level is
/// well-formed enough that the agent must echo the marker.
pub fn request(u: &mut Unstructured<'_>, id: Id<'_>) -> Result<Generated> {
    let mut g = Gen::new(u);
    let command = if g.chance(15, 16)? {
        Some(g.u.int_in_range(0..=COMMANDS.len() - 1)?)
    } else {
        None
    };
    let spec = command.and_then(|i| COMMANDS.get(i));
    // Top-level members: (name, what to write).
    #[derive(Clone, Copy)]
    enum Top {
        Execute,
        ExecuteNotString,
        Arguments,
        ArgumentsNotObject,
        Id,
        Extra,
    }
    let mut top = Vec::new();
    if g.chance(31, 32)? {
        top.push(if g.chance(31, 32)? {
            Top::Execute
        } else {
            Top::ExecuteNotString
        });
    }
    let args_wanted = spec.is_some_and(|s| !s.args.is_empty()) || g.chance(1, 8)?;
    if args_wanted && g.chance(15, 16)? {
        top.push(if g.chance(31, 32)? {
            Top::Arguments
        } else {
            Top::ArgumentsNotObject
        });
    }
    let has_marker = matches!(id, Id::Marker(_));
    if !matches!(id, Id::None) {
        top.push(Top::Id);
    }
    if g.chance(1, 32)? {
        top.push(Top::Extra);
    }
    g.shuffle(&mut top)?;
    g.ws()?;
    g.out.push(b'{');
    for (i, member) in top.iter().enumerate() {
        if i > 0 {
            g.out.push(b',');
        }
        g.ws()?;
        let name = match member {
            Top::Execute | Top::ExecuteNotString => "execute",
            Top::Arguments | Top::ArgumentsNotObject => "arguments",
            Top::Id => "id",
            Top::Extra => g.pick(&["bogus", "exec-oob", "control"])?,
        };
        g.string(name)?;
        g.ws()?;
        g.out.push(b':');
        g.ws()?;
        match member {
            Top::Execute => {
                let name = match spec {
                    Some(s) => s.name,
                    None => g.pick(UNKNOWN_COMMANDS)?,
                };
                g.string(name)?;
            }
            Top::ExecuteNotString => g.number()?,
            Top::Arguments => {
                let schema: &'static [Member] = spec.map_or(&[], |s| s.args);
                g.arguments(schema, 3)?;
            }
            Top::ArgumentsNotObject => g.number()?,
            Top::Id => match id {
                Id::Marker(m) => g.string(m)?,
                _ => g.value(3)?,
            },
            Top::Extra => g.value(1)?,
        }
        g.ws()?;
    }
    g.out.push(b'}');
    Ok(Generated {
        bytes: g.out,
        command,
        has_marker,
    })
}
