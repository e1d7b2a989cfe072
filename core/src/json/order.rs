//! QDict order for objects taken from the request (the echoed `id`, the top-level members the
//! dispatcher checks): bucket `tdb_hash(key) % 512` ascending, later insertion first inside a
//! bucket (spec §1.7, Appendix A).

use super::parse::{Msg, Val};
use super::string::{Chars, mod_utf8_encode};

/// The QDict bucket of a string token's decoded key (as modified UTF-8, which is what QEMU
/// stores and hashes).
pub fn key_bucket(tok: &[u8]) -> u16 {
    // tdb_hash: v = 0x238F13AF * len + sum(c << ((i * 5) % 24)); addition commutes, so the
    // length term is added at the end.
    let mut v: u32 = 0;
    let mut i: u32 = 0;
    for cp in Chars::new(tok).flatten() {
        let mut enc = [0u8; 4];
        let n = mod_utf8_encode(cp, &mut enc);
        for &b in enc.iter().take(n) {
            v = v.wrapping_add(u32::from(b) << ((i * 5) % 24));
            i += 1;
        }
    }
    v = v.wrapping_add(0x238F_13AFu32.wrapping_mul(i));
    (1_103_515_243u32.wrapping_mul(v).wrapping_add(12345) % 512) as u16
}

const ENTRY: usize = 16;

fn entry_key(scratch: &[u8], i: usize) -> u64 {
    scratch
        .get(i * ENTRY..i * ENTRY + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(u64::MAX)
}

fn swap_entries(scratch: &mut [u8], a: usize, b: usize) {
    if a == b {
        return;
    }
    let (lo, hi) = (a.min(b), a.max(b));
    if let Some((left, right)) = scratch.split_at_mut_checked(hi * ENTRY) {
        if let (Some(x), Some(y)) = (
            left.get_mut(lo * ENTRY..lo * ENTRY + ENTRY),
            right.get_mut(..ENTRY),
        ) {
            x.swap_with_slice(y);
        }
    }
}

fn sift_down(scratch: &mut [u8], mut root: usize, end: usize) {
    loop {
        let mut child = 2 * root + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && entry_key(scratch, child + 1) > entry_key(scratch, child) {
            child += 1;
        }
        if entry_key(scratch, root) >= entry_key(scratch, child) {
            return;
        }
        swap_entries(scratch, root, child);
        root = child;
    }
}

/// The members of `obj` sorted into QDict order, as `(key, value)` start offsets stored in
/// `scratch` (16 bytes per member). Returns the number of members, or `None` if `scratch` is too
/// small.
pub fn sort_members(msg: &Msg<'_>, obj: Val, scratch: &mut [u8]) -> Option<usize> {
    let mut n = 0usize;
    for (k, v) in msg.members(obj) {
        let e = scratch.get_mut(n * ENTRY..n * ENTRY + ENTRY)?;
        // Sort key: bucket ascending, then insertion index descending.
        let key = (u64::from(key_bucket(msg.bytes(k))) << 32) | u64::from(u32::MAX - n as u32);
        let (a, b) = e.split_at_mut(8);
        a.copy_from_slice(&key.to_le_bytes());
        let (c, d) = b.split_at_mut(4);
        c.copy_from_slice(&(k.start as u32).to_le_bytes());
        d.copy_from_slice(&(v.start as u32).to_le_bytes());
        n += 1;
    }
    // Heapsort: in place, no allocation, O(n log n) whatever the input.
    for i in (0..n / 2).rev() {
        sift_down(scratch, i, n);
    }
    for end in (1..n).rev() {
        swap_entries(scratch, 0, end);
        sift_down(scratch, 0, end);
    }
    Some(n)
}

/// Member `i` of a list made by [`sort_members`].
pub fn sorted_member(msg: &Msg<'_>, scratch: &[u8], i: usize) -> Option<(Val, Val)> {
    let e = scratch.get(i * ENTRY..i * ENTRY + ENTRY)?;
    let k = u32::from_le_bytes(e.get(8..12)?.try_into().ok()?) as usize;
    let v = u32::from_le_bytes(e.get(12..16)?.try_into().ok()?) as usize;
    Some((msg.value_at(k)?, msg.value_at(v)?))
}

/// Bytes of scratch [`sort_members`] needs for `keys` members.
pub const fn scratch_for(keys: usize) -> usize {
    keys * ENTRY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_of_common_keys() {
        for (k, b) in [
            (&b"\"class\""[..], 211),
            (b"\"execute\"", 299),
            (b"\"desc\"", 377),
            (b"\"return\"", 401),
            (b"\"arguments\"", 447),
            (b"\"id\"", 486),
            (b"'error'", 489),
        ] {
            assert_eq!(key_bucket(k), b, "{k:?}");
        }
    }

    #[test]
    fn appendix_a_id_example() {
        let msg = Msg {
            text: b"{\"b\":1,\"a\":2,\"zz\":[3 2 1],\"key\":{}}",
        };
        let root = msg.value_at(0).unwrap();
        let mut scratch = [0u8; 64];
        let n = sort_members(&msg, root, &mut scratch).unwrap();
        let names: [&[u8]; 4] =
            core::array::from_fn(|i| msg.bytes(sorted_member(&msg, &scratch, i).unwrap().0));
        assert_eq!(n, 4);
        assert_eq!(names, [&b"\"key\""[..], b"\"a\"", b"\"zz\"", b"\"b\""]);
    }
}
