//! A GKeyFile reader and writer, as far as qemu-ga's files need one.
//!
//! qemu-ga reads its configuration (`[general]`) and its persistent state (`[global]`) with
//! GLib's `GKeyFile`, and writes `-D` output and the state file with it. This module reproduces
//! the parts of GLib's behaviour that show: which lines are accepted, the error texts (GLib's
//! wording, with its “curly” quotes), last-wins duplicate keys, merged duplicate groups, value
//! escapes (`\s \n \t \r \\`), the boolean and integer readings, and the escaping on output.
//!
//! Deliberate simplifications: a line is cut at its first NUL byte (GLib's C-string functions see
//! the same thing for every decision; only a few error texts could differ), and localised keys
//! (`key[de]`) are checked for syntax and then kept under their full name (qemu-ga never looks
//! them up).
//!
//! The line grammar is written with `nom` parsers over complete input.

use std::collections::HashMap;

use nom::bytes::complete::{tag, take_till, take_while};
use nom::combinator::{eof, opt, rest};
use nom::sequence::{delimited, terminated};
use nom::{IResult, Parser};

/// One `[group]` with its keys in file order (a repeated key keeps its first position and its
/// last value, as GLib's lookups see it).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Group {
    name: Vec<u8>,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    index: HashMap<Vec<u8>, usize>,
}

impl Group {
    fn set(&mut self, key: Vec<u8>, value: Vec<u8>) {
        match self.index.get(&key) {
            Some(&i) => {
                if let Some(slot) = self.entries.get_mut(i) {
                    slot.1 = value;
                }
            }
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }

    fn get(&self, key: &str) -> Option<&[u8]> {
        let i = *self.index.get(key.as_bytes())?;
        self.entries.get(i).map(|(_, v)| v.as_slice())
    }
}

/// A parsed key file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KeyFile {
    groups: Vec<Group>,
}

/// A GKeyFile error: GLib's message text, UTF-8 with GLib's “curly” quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFileError(pub String);

impl std::fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyFileError {}

/// GLib's `g_ascii_isspace`.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// GLib's `g_utf8_make_valid`: every byte that does not start a valid sequence becomes U+FFFD.
pub fn make_valid(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for _ in chunk.invalid() {
            out.push('\u{FFFD}');
        }
    }
    out
}

/// One line: everything up to `\n` (not included), and whether a `\n` ended it.
fn line(input: &[u8]) -> IResult<&[u8], (&[u8], bool)> {
    let (input, text) = take_till(|b| b == b'\n').parse(input)?;
    let (input, lf) = opt(tag(&b"\n"[..])).parse(input)?;
    Ok((input, (text, lf.is_some())))
}

/// `[name]` followed only by spaces and tabs: the group name.
fn group_line(input: &[u8]) -> IResult<&[u8], &[u8]> {
    terminated(
        delimited(tag(&b"["[..]), take_till(|b| b == b']'), tag(&b"]"[..])),
        (take_while(|b| b == b' ' || b == b'\t'), eof),
    )
    .parse(input)
}

/// `key = value`: the raw key (trailing whitespace still on) and the raw value (leading
/// whitespace still on).
fn key_value_line(input: &[u8]) -> IResult<&[u8], (&[u8], &[u8])> {
    let (input, key) = take_till(|b| b == b'=').parse(input)?;
    let (input, _) = tag(&b"="[..]).parse(input)?;
    let (input, value) = rest.parse(input)?;
    Ok((input, (key, value)))
}

fn trim_start(s: &[u8]) -> &[u8] {
    let (s, _) = take_while::<_, _, ()>(is_space).parse(s).unwrap_or((s, s));
    s
}

fn trim_end(mut s: &[u8]) -> &[u8] {
    while let Some((&last, head)) = s.split_last() {
        if !is_space(last) {
            break;
        }
        s = head;
    }
    s
}

/// GLib's `g_key_file_is_group_name`.
fn is_group_name(name: &[u8]) -> bool {
    !name.is_empty()
        && !name
            .iter()
            .any(|&b| b == b'[' || b == b']' || b.is_ascii_control())
}

/// GLib's `g_key_file_is_key_name` (the key is already known to be valid UTF-8).
fn is_key_name(key: &str) -> bool {
    let base_len = key.find(['[', ']']).unwrap_or(key.len());
    let (base, tail) = key.split_at(base_len);
    if base.is_empty() || base.starts_with(' ') || base.ends_with(' ') {
        return false;
    }
    if tail.is_empty() {
        return true;
    }
    // A locale suffix: `[` alphanumerics and `-_.@`, then `]` as the very last character.
    let Some(locale) = tail.strip_prefix('[').and_then(|t| t.strip_suffix(']')) else {
        return false;
    };
    locale
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

impl KeyFile {
    /// Parses key-file text the way `g_key_file_load_from_data` does.
    ///
    /// # Errors
    ///
    /// The first error GLib would report, with GLib's message.
    pub fn parse(data: &[u8]) -> Result<KeyFile, KeyFileError> {
        let mut kf = KeyFile::default();
        let mut current: Option<usize> = None;
        let mut input = data;
        while !input.is_empty() {
            let Ok((next, (raw, lf))) = line(input) else {
                break;
            };
            input = next;
            // A CR before the LF is dropped (CRLF files); a CR at the very end stays.
            let raw = match raw.split_last() {
                Some((b'\r', head)) if lf => head,
                _ => raw,
            };
            kf.parse_line(raw, &mut current)?;
        }
        Ok(kf)
    }

    fn parse_line(&mut self, raw: &[u8], current: &mut Option<usize>) -> Result<(), KeyFileError> {
        let cut = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        let text = trim_start(raw.get(..cut).unwrap_or(raw));
        if text.is_empty() || text.first() == Some(&b'#') {
            return Ok(()); // comment or blank line
        }
        if let Ok((_, name)) = group_line(text) {
            if !is_group_name(name) {
                return Err(KeyFileError(format!(
                    "Invalid group name: {}",
                    make_valid(name)
                )));
            }
            let idx = match self.groups.iter().position(|g| g.name == name) {
                Some(i) => i,
                None => {
                    self.groups.push(Group {
                        name: name.to_vec(),
                        ..Group::default()
                    });
                    self.groups.len() - 1
                }
            };
            *current = Some(idx);
            return Ok(());
        }
        match key_value_line(text) {
            Ok((_, (key, value))) if !key.is_empty() => self.add_pair(*current, key, value),
            _ => Err(KeyFileError(format!(
                "Key file contains line \u{201c}{}\u{201d} which is not a key-value pair, group, or comment",
                make_valid(raw)
            ))),
        }
    }

    fn add_pair(
        &mut self,
        current: Option<usize>,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), KeyFileError> {
        let Some(gi) = current else {
            return Err(KeyFileError("Key file does not start with a group".into()));
        };
        let key = trim_end(key);
        let Ok(key) = std::str::from_utf8(key) else {
            return Err(KeyFileError(format!(
                "Invalid key name: {}",
                make_valid(key)
            )));
        };
        if !is_key_name(key) {
            return Err(KeyFileError(format!("Invalid key name: {key}")));
        }
        let value = trim_start(value);
        // The first group of the file may say which encoding it uses; only UTF-8 is accepted.
        if gi == 0 && key == "Encoding" && !value.eq_ignore_ascii_case(b"UTF-8") {
            return Err(KeyFileError(format!(
                "Key file contains unsupported encoding \u{201c}{}\u{201d}",
                make_valid(value)
            )));
        }
        if let Some(group) = self.groups.get_mut(gi) {
            group.set(key.as_bytes().to_vec(), value.to_vec());
        }
        Ok(())
    }

    fn group(&self, group: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == group.as_bytes())
    }

    /// `g_key_file_has_key`.
    pub fn has_key(&self, group: &str, key: &str) -> bool {
        self.raw(group, key).is_some()
    }

    /// The raw value (`g_key_file_get_value`).
    pub fn raw(&self, group: &str, key: &str) -> Option<&[u8]> {
        self.group(group)?.get(key)
    }

    /// `g_key_file_get_string`: the value checked for UTF-8 and unescaped.
    ///
    /// # Errors
    ///
    /// GLib's messages for a missing key, a non-UTF-8 value, or a bad escape.
    pub fn get_string(&self, group: &str, key: &str) -> Result<String, KeyFileError> {
        let raw = self.raw(group, key).ok_or_else(|| missing(group, key))?;
        let Ok(text) = std::str::from_utf8(raw) else {
            return Err(KeyFileError(format!(
                "Key file contains key \u{201c}{key}\u{201d} with value \u{201c}{}\u{201d} which is not UTF-8",
                make_valid(raw)
            )));
        };
        unescape(text).ok_or_else(|| uninterpretable(key))
    }

    /// `g_key_file_get_boolean`: `true`/`1` or `false`/`0`, trailing whitespace allowed.
    ///
    /// # Errors
    ///
    /// GLib's messages for a missing key or another value.
    pub fn get_boolean(&self, group: &str, key: &str) -> Result<bool, KeyFileError> {
        let raw = self.raw(group, key).ok_or_else(|| missing(group, key))?;
        parse_boolean(raw).ok_or_else(|| uninterpretable(key))
    }

    /// `g_key_file_get_integer`: a C `int`, written in decimal (`strtol` rules).
    ///
    /// # Errors
    ///
    /// GLib's messages for a missing key or a value that is not a number or out of range.
    pub fn get_integer(&self, group: &str, key: &str) -> Result<i32, KeyFileError> {
        let raw = self.raw(group, key).ok_or_else(|| missing(group, key))?;
        parse_integer(raw).ok_or_else(|| uninterpretable(key))
    }
}

fn missing(group: &str, key: &str) -> KeyFileError {
    KeyFileError(format!(
        "Key file does not have key \u{201c}{key}\u{201d} in group \u{201c}{group}\u{201d}"
    ))
}

fn uninterpretable(key: &str) -> KeyFileError {
    KeyFileError(format!(
        "Key file contains key \u{201c}{key}\u{201d} which has a value that cannot be interpreted."
    ))
}

/// GLib's value unescaping (`\s \n \t \r \\`); `None` for any other escape or a trailing `\`.
fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            's' => ' ',
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            '\\' => '\\',
            _ => return None,
        });
    }
    Some(out)
}

/// GLib's boolean reading: exactly `true`, `false`, `1` or `0`, then only whitespace.
pub fn parse_boolean(raw: &[u8]) -> Option<bool> {
    let word = trim_end(raw);
    match word {
        b"true" | b"1" => Some(true),
        b"false" | b"0" => Some(false),
        _ => None,
    }
}

/// GLib's integer reading: `strtol` in base 10 (leading whitespace and a sign allowed, trailing
/// whitespace allowed), and the value must fit a C `int`.
pub fn parse_integer(raw: &[u8]) -> Option<i32> {
    fn number(input: &[u8]) -> IResult<&[u8], (&[u8], &[u8])> {
        let (input, _) = take_while(is_space).parse(input)?;
        let (input, sign) = take_while(|b| b == b'-' || b == b'+').parse(input)?;
        let (input, digits) = take_while(|b: u8| b.is_ascii_digit()).parse(input)?;
        Ok((input, (sign, digits)))
    }
    let (after, (sign, digits)) = number(raw).ok()?;
    if digits.is_empty() || sign.len() > 1 || !after.iter().all(|&b| is_space(b)) {
        return None;
    }
    let mut value: i64 = 0;
    for &d in digits {
        value = value.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
        if value > i64::from(i32::MAX) + 1 {
            return None;
        }
    }
    if sign == b"-" {
        value = -value;
    }
    i32::try_from(value).ok()
}

/// Writes key files the way `g_key_file_to_data` does, keys in insertion order.
#[derive(Debug, Default)]
pub struct KeyFileWriter {
    out: Vec<u8>,
}

impl KeyFileWriter {
    /// Starts a group.
    pub fn group(&mut self, name: &str) -> &mut Self {
        if !self.out.is_empty() {
            self.out.push(b'\n');
        }
        self.out.push(b'[');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"]\n");
        self
    }

    /// `g_key_file_set_string`: the value escaped as GLib does.
    pub fn string(&mut self, key: &str, value: &[u8]) -> &mut Self {
        self.out.extend_from_slice(key.as_bytes());
        self.out.push(b'=');
        escape_into(value, &mut self.out);
        self.out.push(b'\n');
        self
    }

    /// `g_key_file_set_boolean`.
    pub fn boolean(&mut self, key: &str, value: bool) -> &mut Self {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.raw(key, text)
    }

    /// `g_key_file_set_integer` (and `_int64`).
    pub fn integer(&mut self, key: &str, value: i64) -> &mut Self {
        self.raw(key, value.to_string().as_bytes())
    }

    fn raw(&mut self, key: &str, value: &[u8]) -> &mut Self {
        self.out.extend_from_slice(key.as_bytes());
        self.out.push(b'=');
        self.out.extend_from_slice(value);
        self.out.push(b'\n');
        self
    }

    /// The text.
    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// GLib's `g_key_file_parse_string_as_value` without list separators: leading spaces and tabs
/// become `\s`/`\t`, newlines, CRs and backslashes are always escaped.
fn escape_into(value: &[u8], out: &mut Vec<u8>) {
    let mut leading = true;
    for &b in value {
        match b {
            b' ' if leading => out.extend_from_slice(b"\\s"),
            b'\t' if leading => out.extend_from_slice(b"\\t"),
            b' ' | b'\t' => out.push(b),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\\' => {
                out.extend_from_slice(b"\\\\");
                leading = false;
            }
            _ => {
                out.push(b);
                leading = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(data: &[u8]) -> String {
        KeyFile::parse(data).unwrap_err().0
    }

    #[test]
    fn basic_groups_keys_and_comments() {
        let kf = KeyFile::parse(
            b"# comment\n\n[general]\n  daemon = true\nmethod=unix-listen\n\t# indented comment\n[other]\nx=1\n",
        )
        .unwrap();
        assert_eq!(kf.get_boolean("general", "daemon"), Ok(true));
        assert_eq!(kf.get_string("general", "method").unwrap(), "unix-listen");
        assert_eq!(kf.get_integer("other", "x"), Ok(1));
        assert!(!kf.has_key("general", "x"));
        assert!(!kf.has_key("nogroup", "x"));
    }

    #[test]
    fn glib_error_messages() {
        assert_eq!(
            err(b"garbage\n"),
            "Key file contains line \u{201c}garbage\u{201d} which is not a key-value pair, group, or comment"
        );
        assert_eq!(err(b"a=b\n"), "Key file does not start with a group");
        assert!(err(b"[a]b]\n").contains("not a key-value pair"));
        assert_eq!(err(b"[]\n"), "Invalid group name: ");
        assert_eq!(err(b"[a\tb]\n"), "Invalid group name: a\tb");
        assert_eq!(err(b"[g]\n[x]=y\n"), "Invalid key name: [x]");
        assert_eq!(err(b"[g]\nk]=y\n"), "Invalid key name: k]");
        assert!(err(b"[g]\n=y\n").contains("not a key-value pair"));
        assert_eq!(
            err(b"[g]\nEncoding=latin1\n"),
            "Key file contains unsupported encoding \u{201c}latin1\u{201d}"
        );
        // Only the first group's Encoding key is checked.
        assert!(KeyFile::parse(b"[g]\n[h]\nEncoding=latin1\n").is_ok());
        assert!(KeyFile::parse(b"[g]\nEncoding=utf-8\n").is_ok());
    }

    #[test]
    fn booleans() {
        let kf = KeyFile::parse(b"[g]\na=true\nb=1\nc=false\nd=0\ne=maybe\nf=true  \ng=TRUE\nh=\n")
            .unwrap();
        assert_eq!(kf.get_boolean("g", "a"), Ok(true));
        assert_eq!(kf.get_boolean("g", "b"), Ok(true));
        assert_eq!(kf.get_boolean("g", "c"), Ok(false));
        assert_eq!(kf.get_boolean("g", "d"), Ok(false));
        assert_eq!(kf.get_boolean("g", "f"), Ok(true));
        for k in ["e", "g", "h"] {
            assert_eq!(
                kf.get_boolean("g", k).unwrap_err().0,
                format!(
                    "Key file contains key \u{201c}{k}\u{201d} which has a value that cannot be interpreted."
                )
            );
        }
    }

    #[test]
    fn strings_escapes_and_whitespace() {
        let kf = KeyFile::parse(
            b"[g]\na=\\sx\\ty\\n\\r\\\\\nb=  lead and trail  \nc=bad\\q\nd=end\\\ne=caf\xc3\xa9\nf=\xff\n",
        )
        .unwrap();
        assert_eq!(kf.get_string("g", "a").unwrap(), " x\ty\n\r\\");
        assert_eq!(kf.get_string("g", "b").unwrap(), "lead and trail  ");
        assert!(
            kf.get_string("g", "c")
                .unwrap_err()
                .0
                .contains("cannot be interpreted")
        );
        assert!(
            kf.get_string("g", "d")
                .unwrap_err()
                .0
                .contains("cannot be interpreted")
        );
        assert_eq!(kf.get_string("g", "e").unwrap(), "caf\u{e9}");
        assert_eq!(
            kf.get_string("g", "f").unwrap_err().0,
            "Key file contains key \u{201c}f\u{201d} with value \u{201c}\u{FFFD}\u{201d} which is not UTF-8"
        );
    }

    #[test]
    fn crlf_and_missing_final_newline() {
        let kf = KeyFile::parse(b"[g]\r\na=b\r\nc=d\r").unwrap();
        assert_eq!(kf.get_string("g", "a").unwrap(), "b");
        // A CR at the very end of the data (no LF after it) stays part of the value.
        assert_eq!(kf.get_string("g", "c").unwrap(), "d\r");
    }

    #[test]
    fn duplicates_last_key_wins_groups_merge() {
        let kf = KeyFile::parse(b"[g]\na=1\n[h]\n[g]\na=2\nb=3\n").unwrap();
        assert_eq!(kf.get_integer("g", "a"), Ok(2));
        assert_eq!(kf.get_integer("g", "b"), Ok(3));
    }

    #[test]
    fn comma_and_semicolon_lists_stay_raw() {
        let kf = KeyFile::parse(b"[general]\nblock-rpcs=guest-ping;guest-get-time\n").unwrap();
        assert_eq!(
            kf.get_string("general", "block-rpcs").unwrap(),
            "guest-ping;guest-get-time"
        );
    }

    #[test]
    fn localised_keys_are_accepted() {
        let kf = KeyFile::parse(b"[g]\nname[de_DE.UTF-8@euro]=x\nname=y\n").unwrap();
        assert_eq!(kf.get_string("g", "name").unwrap(), "y");
        assert!(KeyFile::parse(b"[g]\nname[d e]=x\n").is_err());
    }

    #[test]
    fn integers() {
        assert_eq!(parse_integer(b"1000"), Some(1000));
        assert_eq!(parse_integer(b"  -12 "), Some(-12));
        assert_eq!(parse_integer(b"+7"), Some(7));
        assert_eq!(parse_integer(b"2147483647"), Some(i32::MAX));
        assert_eq!(parse_integer(b"-2147483648"), Some(i32::MIN));
        assert_eq!(parse_integer(b"2147483648"), None);
        assert_eq!(parse_integer(b"99999999999999999999999999"), None);
        assert_eq!(parse_integer(b"12x"), None);
        assert_eq!(parse_integer(b""), None);
        assert_eq!(parse_integer(b"--1"), None);
    }

    #[test]
    fn hostile_nul_bytes_cut_the_line() {
        let kf = KeyFile::parse(b"[g]\na=b\0c\n\0garbage\n[h]\0junk\n").unwrap();
        assert_eq!(kf.get_string("g", "a").unwrap(), "b");
        assert!(kf.group("h").is_some());
    }

    #[test]
    fn hostile_invalid_utf8() {
        assert_eq!(
            err(b"\xff\xfe\n"),
            "Key file contains line \u{201c}\u{FFFD}\u{FFFD}\u{201d} which is not a key-value pair, group, or comment"
        );
        assert_eq!(err(b"[g]\n\xff=1\n"), "Invalid key name: \u{FFFD}");
        // Group names are bytes; invalid UTF-8 is accepted there, as in GLib.
        assert!(KeyFile::parse(b"[\xff]\n").is_ok());
    }

    #[test]
    fn hostile_very_long_line() {
        let mut data = b"[general]\npath=".to_vec();
        data.extend(std::iter::repeat_n(b'x', 8 << 20));
        data.push(b'\n');
        let kf = KeyFile::parse(&data).unwrap();
        assert_eq!(kf.get_string("general", "path").unwrap().len(), 8 << 20);
    }

    #[test]
    fn hostile_many_keys_and_lines() {
        let mut data = b"[g]\n".to_vec();
        for i in 0..200_000 {
            data.extend_from_slice(format!("k{i}={i}\n").as_bytes());
        }
        for _ in 0..200_000 {
            data.extend_from_slice(b"k7=x\n\n#c\n");
        }
        let kf = KeyFile::parse(&data).unwrap();
        assert_eq!(kf.get_string("g", "k7").unwrap(), "x");
        assert_eq!(kf.get_integer("g", "k199999"), Ok(199_999));
    }

    #[test]
    fn writer_matches_glib() {
        let mut w = KeyFileWriter::default();
        w.group("general")
            .boolean("daemon", false)
            .string("path", b"  a b\tc\\d\ne")
            .string("empty", b"")
            .integer("n", -5);
        assert_eq!(
            w.finish(),
            b"[general]\ndaemon=false\npath=\\s\\sa b\tc\\\\d\\ne\nempty=\nn=-5\n"
        );
        let mut w = KeyFileWriter::default();
        w.group("a").group("b");
        assert_eq!(w.finish(), b"[a]\n\n[b]\n");
    }

    #[test]
    fn written_values_read_back() {
        let value = b"\t lead\\ \r\n x";
        let mut w = KeyFileWriter::default();
        w.group("g").string("k", value);
        let kf = KeyFile::parse(&w.finish()).unwrap();
        assert_eq!(kf.get_string("g", "k").unwrap().as_bytes(), value);
    }
}
