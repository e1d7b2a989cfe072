//! Printing byte strings and their differences for humans.

use std::fmt::Write as _;

/// Escapes bytes the way a Python `bytes` literal would show them (without the `b'...'`):
/// printable ASCII as is, `\\`, `\n`, `\r`, `\t`, and `\xNN` for everything else.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 4);
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

/// Like [`escape_bytes`], but long inputs are cut to `max` bytes around `center`, with the number
/// of bytes left out on either side.
pub fn escape_window(bytes: &[u8], center: usize, max: usize) -> String {
    if bytes.len() <= max {
        return escape_bytes(bytes);
    }
    let half = max / 2;
    let start = center
        .saturating_sub(half)
        .min(bytes.len().saturating_sub(max));
    let end = (start + max).min(bytes.len());
    let mut out = String::new();
    if start > 0 {
        let _ = write!(out, "[... {start} bytes ...]");
    }
    out.push_str(&escape_bytes(bytes.get(start..end).unwrap_or_default()));
    if end < bytes.len() {
        let _ = write!(out, "[... {} bytes ...]", bytes.len() - end);
    }
    out
}

/// The offset of the first byte where `a` and `b` differ, or `None` when they are equal. When one
/// is a prefix of the other, this is the length of the shorter one.
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    if a == b {
        return None;
    }
    Some(a.iter().zip(b).take_while(|(x, y)| x == y).count())
}

/// A report of one stream whose outputs differ: the stream, both outputs and the first differing
/// offset, each escaped. Long values are shown around the difference, cut to `window` bytes.
pub fn difference_report(
    name: &str,
    stream: &[u8],
    (left_label, left): (&str, &[u8]),
    (right_label, right): (&str, &[u8]),
    window: usize,
) -> String {
    let offset = first_difference(left, right).unwrap_or(left.len());
    let mut out = String::new();
    let _ = writeln!(out, "=== {name}: outputs differ at byte {offset}");
    let _ = writeln!(
        out,
        "  stream ({} bytes): {}",
        stream.len(),
        escape_window(stream, 0, window)
    );
    let _ = writeln!(
        out,
        "  {left_label} ({} bytes): {}",
        left.len(),
        escape_window(left, offset, window)
    );
    let _ = writeln!(
        out,
        "  {right_label} ({} bytes): {}",
        right.len(),
        escape_window(right, offset, window)
    );
    let line_start = left
        .get(..offset)
        .and_then(|l| l.iter().rposition(|&b| b == b'\n'))
        .map_or(0, |p| p + 1);
    let _ = writeln!(
        out,
        "  first difference in reply line starting at byte {line_start}: {left_label} has {}, {right_label} has {}",
        describe_byte(left.get(offset)),
        describe_byte(right.get(offset))
    );
    out
}

fn describe_byte(b: Option<&u8>) -> String {
    match b {
        None => "end of output".to_owned(),
        Some(b) => format!("{:?} (0x{b:02x})", escape_bytes(&[*b])),
    }
}
