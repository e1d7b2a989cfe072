//! Which unexpected argument qemu-ga reports.
//!
//! QAPI's input visitor copies the argument object's keys into a GLib `GHashTable` (in QDict
//! order), removes each key the schema visits, and reports the first key the table's iterator
//! yields. With several unexpected keys the choice therefore depends on GLib's open-addressing
//! layout (`g_str_hash`, quadratic probing, resizes). This module replays that layout exactly for
//! objects of up to [`MAX_KEYS`] keys, which covers every realistic request; above that it falls
//! back to the first unexpected key in QDict order.

use crate::json::order::key_bucket;
use crate::json::parse::{Msg, Val};
use crate::json::string::{Chars, mod_utf8_encode};

/// Largest object replayed exactly.
pub const MAX_KEYS: usize = 96;
const MAX_SLOTS: usize = 256;
const UNUSED: u32 = 0;
const TOMBSTONE: u32 = 1;
const PRIME_MOD: [u32; 9] = [1, 2, 3, 7, 13, 31, 61, 127, 251];

/// GLib's `g_str_hash` (djb2 over *signed* chars) of a decoded key, as modified UTF-8.
fn str_hash(tok: &[u8]) -> u32 {
    let mut h: u32 = 5381;
    for cp in Chars::new(tok).flatten() {
        let mut enc = [0u8; 4];
        let n = mod_utf8_encode(cp, &mut enc);
        for &b in enc.iter().take(n) {
            h = (h << 5).wrapping_add(h).wrapping_add(b as i8 as i32 as u32);
        }
    }
    h
}

struct Table {
    hashes: [u32; MAX_SLOTS],
    keys: [u8; MAX_SLOTS],
    size: usize,
    modulo: u32,
    nnodes: usize,
    noccupied: usize,
}

impl Table {
    fn new() -> Table {
        let mut t = Table {
            hashes: [UNUSED; MAX_SLOTS],
            keys: [0; MAX_SLOTS],
            size: 0,
            modulo: 0,
            nnodes: 0,
            noccupied: 0,
        };
        t.set_shift(3);
        t
    }

    fn set_shift(&mut self, shift: usize) {
        self.size = 1 << shift;
        self.modulo = PRIME_MOD.get(shift).copied().unwrap_or(251);
    }

    fn index(&self, hash: u32) -> usize {
        (hash.wrapping_mul(11) % self.modulo) as usize
    }

    fn hash_at(&self, i: usize) -> u32 {
        self.hashes.get(i).copied().unwrap_or(UNUSED)
    }

    fn insert(&mut self, hash: u32, key: u8) {
        let hash = if hash < 2 { 2 } else { hash };
        let mask = self.size - 1;
        let mut i = self.index(hash);
        let mut step = 0;
        // Keys are distinct (the parser rejects duplicates), so the probe only looks for a
        // free slot; no tombstones exist while inserting.
        while self.hash_at(i) != UNUSED {
            step += 1;
            i = (i + step) & mask;
        }
        if let (Some(h), Some(k)) = (self.hashes.get_mut(i), self.keys.get_mut(i)) {
            *h = hash;
            *k = key;
        }
        self.nnodes += 1;
        self.noccupied += 1;
        self.maybe_resize();
    }

    fn remove(&mut self, key: u8) {
        if let Some(i) =
            (0..self.size).find(|&i| self.hash_at(i) >= 2 && self.keys.get(i) == Some(&key))
        {
            if let Some(h) = self.hashes.get_mut(i) {
                *h = TOMBSTONE;
            }
            self.nnodes -= 1;
            self.maybe_resize();
        }
    }

    fn maybe_resize(&mut self) {
        let (size, occ) = (self.size, self.noccupied);
        if (size > self.nnodes * 4 && size > 8) || size <= occ + occ / 16 {
            self.resize();
        }
    }

    fn resize(&mut self) {
        let old_size = self.size;
        // g_hash_table_set_shift_from_size(nnodes * 1.333), with C's double-to-int truncation.
        let target = (self.nnodes as u64 * 1333 / 1000) as usize;
        let shift = (usize::BITS - target.leading_zeros()) as usize;
        self.set_shift(shift.max(3));
        if self.size > MAX_SLOTS {
            self.size = MAX_SLOTS;
        }
        let mask = self.size - 1;
        let mut relocated = [false; MAX_SLOTS];
        for i in 0..old_size {
            let node = self.hash_at(i);
            if node < 2 {
                if let Some(h) = self.hashes.get_mut(i) {
                    *h = UNUSED;
                }
                continue;
            }
            if relocated.get(i) == Some(&true) {
                continue;
            }
            if let Some(h) = self.hashes.get_mut(i) {
                *h = UNUSED;
            }
            let mut hash = node;
            let mut key = self.keys.get(i).copied().unwrap_or(0);
            loop {
                let mut j = self.index(hash);
                let mut step = 0;
                while relocated.get(j) == Some(&true) {
                    step += 1;
                    j = (j + step) & mask;
                }
                if let Some(r) = relocated.get_mut(j) {
                    *r = true;
                }
                let replaced = self.hash_at(j);
                let replaced_key = self.keys.get(j).copied().unwrap_or(0);
                if let (Some(h), Some(k)) = (self.hashes.get_mut(j), self.keys.get_mut(j)) {
                    *h = hash;
                    *k = key;
                }
                if replaced < 2 {
                    break;
                }
                hash = replaced;
                key = replaced_key;
            }
        }
        for h in self.hashes.iter_mut().skip(self.size) {
            *h = UNUSED;
        }
        self.noccupied = self.nnodes;
    }
}

/// The first key of `obj` that `known` rejects, in the order qemu-ga's visitor reports it.
pub fn first_remaining(msg: &Msg<'_>, obj: Val, known: &dyn Fn(Val) -> bool) -> Option<Val> {
    let mut keys: [Option<Val>; MAX_KEYS] = [None; MAX_KEYS];
    let mut n = 0;
    for (k, _) in msg.members(obj) {
        match keys.get_mut(n) {
            Some(slot) => *slot = Some(k),
            None => return first_in_qdict_order(msg, obj, known),
        }
        n += 1;
    }
    if !(0..n).any(|i| keys.get(i).copied().flatten().is_some_and(|k| !known(k))) {
        return None;
    }
    // QDict order: bucket ascending, later insertion first within a bucket.
    let mut order: [(u16, u8); MAX_KEYS] = [(0, 0); MAX_KEYS];
    for (i, slot) in order.iter_mut().enumerate().take(n) {
        let bucket = keys
            .get(i)
            .copied()
            .flatten()
            .map(|k| key_bucket(msg.bytes(k)))
            .unwrap_or(0);
        *slot = (bucket, i as u8);
    }
    let used = order.get_mut(..n).unwrap_or(&mut []);
    used.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));

    let mut table = Table::new();
    for &(_, i) in used.iter() {
        if let Some(k) = keys.get(i as usize).copied().flatten() {
            table.insert(str_hash(msg.bytes(k)), i);
        }
    }
    for i in 0..n {
        if let Some(k) = keys.get(i).copied().flatten() {
            if known(k) {
                table.remove(i as u8);
            }
        }
    }
    (0..table.size)
        .find(|&i| table.hash_at(i) >= 2)
        .and_then(|i| {
            keys.get(usize::from(*table.keys.get(i)?))
                .copied()
                .flatten()
        })
}

fn first_in_qdict_order(msg: &Msg<'_>, obj: Val, known: &dyn Fn(Val) -> bool) -> Option<Val> {
    let mut best: Option<(u16, usize, Val)> = None;
    for (i, (k, _)) in msg.members(obj).enumerate() {
        if known(k) {
            continue;
        }
        let b = key_bucket(msg.bytes(k));
        // Lower bucket first; within a bucket the later key comes first.
        if best.is_none_or(|(bb, _, _)| b <= bb) {
            best = Some((b, i, k));
        }
    }
    best.map(|(_, _, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_str_hash_matches_glib() {
        // djb2: 5381 * 33 + 'a'
        assert_eq!(str_hash(b"\"a\""), 5381 * 33 + 97);
        // A byte above 0x7F is sign-extended.
        let h = (5381u32 * 33).wrapping_add(0xC3u8 as i8 as i32 as u32);
        let h = (h << 5)
            .wrapping_add(h)
            .wrapping_add(0xA9u8 as i8 as i32 as u32);
        assert_eq!(str_hash("\"\u{e9}\"".as_bytes()), h);
    }
}
