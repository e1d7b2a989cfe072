//! Key order of QEMU's QDict, which decides the order of members in every JSON object qemu-ga
//! writes.
//!
//! A QDict is a hash table of 512 buckets (`QDICT_BUCKET_MAX`) whose bucket index is
//! `tdb_hash(key) % 512`; each bucket is a list that new entries are put at the head of. Iteration
//! walks the buckets in ascending order, so the output order is "bucket ascending, and inside one
//! bucket the most recently inserted key first". Insertion order is the QAPI visit order (schema
//! order, union base members first).

/// Number of buckets of a QDict (`QDICT_BUCKET_MAX`).
pub const BUCKETS: u32 = 512;

/// QEMU's `tdb_hash` of a key, in 32-bit wrapping arithmetic.
///
/// `v = 0x238F13AF * len`; for each byte `c` at index `i`, `v += c << ((i * 5) % 24)`; the result
/// is `1103515243 * v + 12345`.
pub const fn tdb_hash(key: &[u8]) -> u32 {
    // C computes these in `unsigned` (32 bits), so every product and shift amount wraps the same
    // way here.
    let mut v = 0x238F_13AF_u32.wrapping_mul(key.len() as u32);
    let mut i: u32 = 0;
    let mut rest = key;
    while let [c, tail @ ..] = rest {
        v = v.wrapping_add((*c as u32) << (i.wrapping_mul(5) % 24));
        i = i.wrapping_add(1);
        rest = tail;
    }
    1_103_515_243_u32.wrapping_mul(v).wrapping_add(12345)
}

/// The QDict bucket (`tdb_hash(key) % 512`) a key lands in.
pub const fn bucket(key: &[u8]) -> u16 {
    // The remainder is below 512, so it fits in u16.
    (tdb_hash(key) % BUCKETS) as u16
}

/// Fills `out` with the indices of `keys` (given in insertion order) in QDict iteration order and
/// returns how many indices it wrote: `min(keys.len(), out.len())`, the first ones in that order.
///
/// Keys are assumed distinct (QEMU's parser rejects duplicate keys and a QAPI struct has none).
/// Runs in O(n²) time without allocating; n is the member count of one struct.
pub fn qdict_order(keys: &[&str], out: &mut [usize]) -> usize {
    for (i, key) in keys.iter().enumerate() {
        let b = bucket(key.as_bytes());
        // The output position of key i is the number of keys that come before it: those in a
        // lower bucket, and those of the same bucket inserted later (they sit nearer the head).
        let rank = keys
            .iter()
            .enumerate()
            .filter(|&(j, other)| {
                let ob = bucket(other.as_bytes());
                ob < b || (ob == b && j > i)
            })
            .count();
        if let Some(slot) = out.get_mut(rank) {
            *slot = i;
        }
    }
    keys.len().min(out.len())
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

    use std::vec;
    use std::vec::Vec;

    use super::*;

    fn ordered<'a>(keys: &[&'a str]) -> Vec<&'a str> {
        let mut out = vec![usize::MAX; keys.len()];
        let n = qdict_order(keys, &mut out);
        assert_eq!(n, keys.len());
        out.iter().map(|&i| keys[i]).collect()
    }

    #[test]
    fn common_buckets() {
        let cases = [
            ("class", 211),
            ("execute", 299),
            ("desc", 377),
            ("return", 401),
            ("arguments", 447),
            ("id", 486),
            ("error", 489),
        ];
        for (key, expected) in cases {
            assert_eq!(bucket(key.as_bytes()), expected, "{key}");
        }
    }

    #[test]
    fn hash_is_const() {
        const H: u32 = tdb_hash(b"");
        assert_eq!(H, 12345);
        const B: u16 = bucket(b"return");
        assert_eq!(B, 401);
    }

    #[test]
    fn response_wrappers() {
        assert_eq!(ordered(&["return", "id"]), ["return", "id"]);
        assert_eq!(ordered(&["error", "id"]), ["id", "error"]);
        assert_eq!(ordered(&["class", "desc"]), ["class", "desc"]);
    }

    /// Appendix A: `{"b":1,"a":2,"zz":[3,2,1],"key":{}}` comes back with keys key, a, zz, b.
    #[test]
    fn id_example() {
        assert_eq!(ordered(&["b", "a", "zz", "key"]), ["key", "a", "zz", "b"]);
    }

    #[test]
    fn same_bucket_latest_first() {
        // Find two distinct keys that share a bucket and check both insertion orders.
        let names: Vec<std::string::String> = (0..200).map(|n| std::format!("k{n}")).collect();
        let (first, twin) = names
            .iter()
            .enumerate()
            .find_map(|(i, a)| {
                let b = names[i + 1..]
                    .iter()
                    .find(|b| bucket(b.as_bytes()) == bucket(a.as_bytes()));
                b.map(|b| (a.as_str(), b.as_str()))
            })
            .unwrap();
        assert_eq!(ordered(&[first, twin]), [twin, first]);
        assert_eq!(ordered(&[twin, first]), [first, twin]);
        // A key from another bucket sorts around the pair by bucket alone.
        let other = names
            .iter()
            .find(|n| bucket(n.as_bytes()) != bucket(first.as_bytes()))
            .unwrap();
        let got = ordered(&[first, other, twin]);
        if bucket(other.as_bytes()) < bucket(first.as_bytes()) {
            assert_eq!(got, [other.as_str(), twin, first]);
        } else {
            assert_eq!(got, [twin, first, other.as_str()]);
        }
    }

    #[test]
    fn short_output_and_empty_input() {
        let keys = ["b", "a", "zz", "key"];
        let mut out = [usize::MAX; 2];
        assert_eq!(qdict_order(&keys, &mut out), 2);
        assert_eq!(out, [3, 1]);
        let mut none: [usize; 0] = [];
        assert_eq!(qdict_order(&keys, &mut none), 0);
        assert_eq!(qdict_order(&[], &mut out), 0);
    }
}
