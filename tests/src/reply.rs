//! Structural checks of an agent's answer stream (used on qemu-ga's output, so that the corpus
//! itself is known to exercise well-formed replies).

use serde_json::Value;

use crate::escape::{escape_bytes, escape_window};

/// What [`check_reply_stream`] found.
#[derive(Debug, Default, Clone)]
pub struct ReplySummary {
    /// Reply lines (including the fence's).
    pub lines: usize,
    /// Lines with `{"return": ...}`.
    pub returns: usize,
    /// Lines with `{"error": ...}`.
    pub errors: usize,
    /// Lines that started with the 0xFF delimiter of `guest-sync-delimited`.
    pub delimited: usize,
    /// Lines that are not valid JSON for a documented reason (bare `inf`/`-inf` numbers),
    /// escaped.
    pub documented_exceptions: Vec<String>,
}

/// Checks that `output` is a sequence of `\n`-terminated reply lines, each (after an optional
/// 0xFF) one JSON object made only of printable ASCII, of the form `{"return": R}`,
/// `{"return": R, "id": I}`, `{"error": {"class": C, "desc": D}}` or
/// `{"id": I, "error": {"class": C, "desc": D}}`, with C one of the classes qemu-ga uses on Linux.
/// The only accepted non-JSON is a bare `inf`/`-inf` number (an echoed `id` that overflowed a
/// double), which is recorded in [`ReplySummary::documented_exceptions`].
pub fn check_reply_stream(output: &[u8]) -> Result<ReplySummary, String> {
    let mut summary = ReplySummary::default();
    let Some(body) = output.strip_suffix(b"\n") else {
        return Err(format!(
            "output does not end with a newline: {}",
            escape_bytes(output)
        ));
    };
    for (n, raw_line) in body.split(|&b| b == b'\n').enumerate() {
        summary.lines += 1;
        let context = || format!("reply line {n}: {}", escape_window(raw_line, 0, 2000));
        let line = match raw_line.strip_prefix(b"\xff") {
            Some(rest) => {
                summary.delimited += 1;
                rest
            }
            None => raw_line,
        };
        if let Some(bad) = line.iter().find(|&&b| !(0x20..0x7f).contains(&b)) {
            return Err(format!(
                "{}: contains the byte 0x{bad:02x} (qemu-ga writes printable ASCII only)",
                context()
            ));
        }
        let (patched, infinities) = replace_bare_infinities(line);
        if let Err(e) = validate_json(&patched) {
            let why = if infinities > 0 {
                " (even with inf patched)"
            } else {
                ""
            };
            return Err(format!("{}: not valid JSON{why}: {e}", context()));
        }
        if infinities > 0 {
            summary
                .documented_exceptions
                .push(escape_window(raw_line, 0, 300));
        }
        let is_return = line.starts_with(b"{\"return\": ");
        let value: Value = match serde_json::from_slice(&patched) {
            Ok(v) => v,
            // Valid JSON nested deeper than serde_json's recursion limit (an echoed deep id):
            // only the member order can be checked.
            Err(e) if e.to_string().contains("recursion limit") => {
                summary.returns += usize::from(is_return);
                summary.errors += usize::from(!is_return);
                check_member_order(line, is_return, true)
                    .map_err(|e| format!("{}: {e}", context()))?;
                continue;
            }
            Err(e) => return Err(format!("{}: {e}", context())),
        };
        let Value::Object(map) = &value else {
            return Err(format!("{}: not a JSON object", context()));
        };
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        let has_return = map.contains_key("return");
        let has_error = map.contains_key("error");
        let allowed = keys.iter().all(|k| matches!(*k, "return" | "error" | "id"));
        if !allowed || has_return == has_error {
            return Err(format!(
                "{}: expected exactly one of return/error, plus an optional id; keys {keys:?}",
                context()
            ));
        }
        if has_return {
            summary.returns += 1;
        } else {
            summary.errors += 1;
            check_error_object(map.get("error")).map_err(|e| format!("{}: {e}", context()))?;
        }
        check_member_order(line, has_return, map.contains_key("id"))
            .map_err(|e| format!("{}: {e}", context()))?;
    }
    Ok(summary)
}

fn check_error_object(error: Option<&Value>) -> Result<(), String> {
    let Some(Value::Object(e)) = error else {
        return Err("error is not an object".to_owned());
    };
    if e.len() != 2 {
        return Err(format!(
            "error object has {} members, expected class and desc",
            e.len()
        ));
    }
    match e.get("class") {
        Some(Value::String(c)) if c == "GenericError" || c == "CommandNotFound" => {}
        other => return Err(format!("unexpected error class {other:?}")),
    }
    match e.get("desc") {
        Some(Value::String(_)) => Ok(()),
        other => Err(format!("desc is not a string: {other:?}")),
    }
}

/// The member order qemu-ga's QDict produces: `{"return": R, "id": I}` and
/// `{"id": I, "error": {"class": C, "desc": D}}`.
fn check_member_order(line: &[u8], has_return: bool, has_id: bool) -> Result<(), String> {
    let expected_prefix: &[u8] = match (has_return, has_id) {
        (true, _) => b"{\"return\": ",
        (false, true) => b"{\"id\": ",
        (false, false) => b"{\"error\": {\"class\": \"",
    };
    if !line.starts_with(expected_prefix) {
        return Err(format!(
            "expected the line to start with {}",
            escape_bytes(expected_prefix)
        ));
    }
    if !has_return && !line.ends_with(b"\"}}") {
        return Err("an error line must end with the desc string and two braces".to_owned());
    }
    Ok(())
}

/// Replaces bare `inf` and `-inf` tokens outside strings by `null`; returns the count.
fn replace_bare_infinities(line: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(line.len());
    let mut count = 0;
    let mut in_string = false;
    let mut i = 0;
    while let Some(&b) = line.get(i) {
        if in_string {
            out.push(b);
            if b == b'\\' {
                if let Some(&next) = line.get(i + 1) {
                    out.push(next);
                }
                i += 2;
                continue;
            }
            if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        let rest = line.get(i..).unwrap_or_default();
        let token_len = if rest.starts_with(b"-inf") {
            4
        } else if rest.starts_with(b"inf") {
            3
        } else {
            0
        };
        let ends_token = !matches!(line.get(i + token_len), Some(c) if c.is_ascii_alphanumeric());
        if token_len > 0 && ends_token {
            out.extend_from_slice(b"null");
            count += 1;
            i += token_len;
            continue;
        }
        if b == b'"' {
            in_string = true;
        }
        out.push(b);
        i += 1;
    }
    (out, count)
}

/// A strict RFC 8259 syntax check without a depth limit (an explicit stack, no recursion).
pub fn validate_json(text: &[u8]) -> Result<(), String> {
    #[derive(Clone, Copy, PartialEq)]
    enum Ctx {
        Array,
        Object,
    }
    let mut stack: Vec<Ctx> = Vec::new();
    let mut i = skip_ws(text, 0);
    loop {
        // A value starts at `i`.
        match text.get(i) {
            Some(b'{') => {
                i = skip_ws(text, i + 1);
                if text.get(i) == Some(&b'}') {
                    i += 1;
                } else {
                    stack.push(Ctx::Object);
                    i = skip_ws(text, parse_key(text, i)?);
                    continue;
                }
            }
            Some(b'[') => {
                i = skip_ws(text, i + 1);
                if text.get(i) == Some(&b']') {
                    i += 1;
                } else {
                    stack.push(Ctx::Array);
                    continue;
                }
            }
            Some(b'"') => i = parse_string(text, i)?,
            Some(b't') if text.get(i..i + 4) == Some(b"true") => i += 4,
            Some(b'f') if text.get(i..i + 5) == Some(b"false") => i += 5,
            Some(b'n') if text.get(i..i + 4) == Some(b"null") => i += 4,
            Some(b'-' | b'0'..=b'9') => i = parse_number(text, i)?,
            _ => return Err(format!("expected a value at byte {i}")),
        }
        // After a value: close containers, or move on to the next element.
        loop {
            i = skip_ws(text, i);
            match (stack.last(), text.get(i)) {
                (None, None) => return Ok(()),
                (None, Some(_)) => return Err(format!("trailing characters at byte {i}")),
                (Some(ctx), Some(b',')) => {
                    i = skip_ws(text, i + 1);
                    if *ctx == Ctx::Object {
                        i = skip_ws(text, parse_key(text, i)?);
                    }
                    break;
                }
                (Some(Ctx::Array), Some(b']')) | (Some(Ctx::Object), Some(b'}')) => {
                    stack.pop();
                    i += 1;
                }
                _ => return Err(format!("expected ',' or a closing bracket at byte {i}")),
            }
        }
    }
}

fn skip_ws(text: &[u8], mut i: usize) -> usize {
    while matches!(text.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// Parses `"key" :` at `i`; returns the position after the colon.
fn parse_key(text: &[u8], i: usize) -> Result<usize, String> {
    if text.get(i) != Some(&b'"') {
        return Err(format!("expected a key at byte {i}"));
    }
    let j = skip_ws(text, parse_string(text, i)?);
    if text.get(j) != Some(&b':') {
        return Err(format!("expected ':' at byte {j}"));
    }
    Ok(j + 1)
}

fn parse_string(text: &[u8], start: usize) -> Result<usize, String> {
    let mut i = start + 1;
    loop {
        match text.get(i) {
            None => return Err(format!("unterminated string starting at byte {start}")),
            Some(b'"') => return Ok(i + 1),
            Some(b'\\') => match text.get(i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                Some(b'u') => {
                    let hex = text.get(i + 2..i + 6).unwrap_or_default();
                    if hex.len() != 4 || !hex.iter().all(u8::is_ascii_hexdigit) {
                        return Err(format!("bad \\u escape at byte {i}"));
                    }
                    i += 6;
                }
                _ => return Err(format!("bad escape at byte {i}")),
            },
            Some(&c) if c < 0x20 => return Err(format!("control byte in a string at byte {i}")),
            Some(_) => i += 1,
        }
    }
}

fn parse_number(text: &[u8], start: usize) -> Result<usize, String> {
    let digits = |mut i: usize| {
        while matches!(text.get(i), Some(b'0'..=b'9')) {
            i += 1;
        }
        i
    };
    let mut i = start;
    if text.get(i) == Some(&b'-') {
        i += 1;
    }
    match text.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(i),
        _ => return Err(format!("bad number at byte {start}")),
    }
    if text.get(i) == Some(&b'.') {
        let end = digits(i + 1);
        if end == i + 1 {
            return Err(format!("bad fraction at byte {start}"));
        }
        i = end;
    }
    if matches!(text.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(text.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let end = digits(i);
        if end == i {
            return Err(format!("bad exponent at byte {start}"));
        }
        i = end;
    }
    Ok(i)
}
