//! Oracles for the two hash orders that show on qemu-ga's wire, checked against qemu-ga 7.2:
//!
//! * [`qdict_order`]: the order in which QEMU's `QDict` iterates its keys (reply objects, echoed
//!   `id` objects, and the order in which the dispatcher checks top-level request members);
//! * [`first_unexpected_member`]: which member QEMU's QAPI input visitor names in
//!   `Parameter '<m>' is unexpected` when several unexpected members are present. The visitor
//!   copies the argument `QDict`'s keys (in `QDict` order) into a GLib `GHashTable`
//!   (`g_str_hash`/`g_str_equal`), removes every member it visits, and reports the first key of
//!   a `GHashTable` iteration. GLib 2.74 (Debian 12) is modelled here.
//!
//! These exist so the tests can explain a difference, and as a reference for the core.

/// QEMU's `tdb_hash`, the `QDict` key hash (32-bit arithmetic).
pub fn tdb_hash(key: &[u8]) -> u32 {
    let len = u32::try_from(key.len()).unwrap_or(u32::MAX);
    let mut value = 0x238F_13AF_u32.wrapping_mul(len);
    for (i, &c) in key.iter().enumerate() {
        let shift = u32::try_from((i * 5) % 24).unwrap_or(0);
        value = value.wrapping_add(u32::from(c) << shift);
    }
    1_103_515_243_u32.wrapping_mul(value).wrapping_add(12345)
}

/// The `QDict` bucket of `key` (`tdb_hash % 512`).
pub fn qdict_bucket(key: &[u8]) -> u32 {
    tdb_hash(key) % 512
}

/// The iteration order of a `QDict` whose keys were inserted in `keys` order: buckets ascending,
/// and inside one bucket the most recently inserted key first.
pub fn qdict_order<K: AsRef<[u8]>>(keys: &[K]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| {
        let bucket = keys.get(i).map_or(0, |k| qdict_bucket(k.as_ref()));
        (bucket, std::cmp::Reverse(i))
    });
    order
}

/// GLib's `g_str_hash` (djb2 over *signed* chars, as GLib does).
pub fn g_str_hash(key: &[u8]) -> u32 {
    key.iter().fold(5381_u32, |h, &c| {
        // GLib iterates with `const signed char *`: bytes >= 0x80 are added as negative values.
        let signed = i32::from(c.cast_signed());
        h.wrapping_mul(33).wrapping_add(signed.cast_unsigned())
    })
}

const UNUSED: u32 = 0;
const TOMBSTONE: u32 = 1;
const MIN_SHIFT: u32 = 3;
const PRIME_MOD: [u32; 32] = [
    1,
    2,
    3,
    7,
    13,
    31,
    61,
    127,
    251,
    509,
    1021,
    2039,
    4093,
    8191,
    16381,
    32749,
    65521,
    131_071,
    262_139,
    524_287,
    1_048_573,
    2_097_143,
    4_194_301,
    8_388_593,
    16_777_213,
    33_554_393,
    67_108_859,
    134_217_689,
    268_435_399,
    536_870_909,
    1_073_741_789,
    2_147_483_647,
];

/// A model of GLib 2.74's `GHashTable` (open addressing, quadratic probing, tombstones,
/// in-place resize), holding string keys only.
#[derive(Debug, Clone)]
pub struct GHashModel {
    size: usize,
    modulus: u32,
    mask: usize,
    nnodes: usize,
    noccupied: usize,
    hashes: Vec<u32>,
    keys: Vec<Option<Vec<u8>>>,
}

impl Default for GHashModel {
    fn default() -> Self {
        Self::new()
    }
}

impl GHashModel {
    /// An empty table (size 8, as `g_hash_table_new` makes it).
    pub fn new() -> Self {
        let mut t = Self {
            size: 0,
            modulus: 1,
            mask: 0,
            nnodes: 0,
            noccupied: 0,
            hashes: Vec::new(),
            keys: Vec::new(),
        };
        t.set_shift(MIN_SHIFT);
        t.hashes = vec![UNUSED; t.size];
        t.keys = vec![None; t.size];
        t
    }

    fn set_shift(&mut self, shift: u32) {
        self.size = 1 << shift;
        self.modulus = PRIME_MOD
            .get(shift as usize)
            .copied()
            .unwrap_or(2_147_483_647);
        self.mask = self.size - 1;
    }

    fn index_of(&self, hash: u32) -> usize {
        (hash.wrapping_mul(11) % self.modulus) as usize
    }

    fn hash_at(&self, i: usize) -> u32 {
        self.hashes.get(i).copied().unwrap_or(UNUSED)
    }

    /// (slot, hash, found)
    fn lookup(&self, key: &[u8]) -> (usize, u32, bool) {
        let mut hash = g_str_hash(key);
        if hash < 2 {
            hash = 2;
        }
        let mut i = self.index_of(hash);
        let mut step = 0;
        let mut tombstone = None;
        while self.hash_at(i) != UNUSED {
            let h = self.hash_at(i);
            if h == hash && self.keys.get(i).and_then(|k| k.as_deref()) == Some(key) {
                return (i, hash, true);
            }
            if h == TOMBSTONE && tombstone.is_none() {
                tombstone = Some(i);
            }
            step += 1;
            i = (i + step) & self.mask;
        }
        (tombstone.unwrap_or(i), hash, false)
    }

    /// `g_hash_table_insert` of a new key (an existing key is left alone).
    pub fn insert(&mut self, key: &[u8]) {
        let (i, hash, found) = self.lookup(key);
        if found {
            return;
        }
        let old = self.hash_at(i);
        if let (Some(h), Some(k)) = (self.hashes.get_mut(i), self.keys.get_mut(i)) {
            *h = hash;
            *k = Some(key.to_vec());
        }
        self.nnodes += 1;
        if old == UNUSED {
            self.noccupied += 1;
            self.maybe_resize();
        }
    }

    /// `g_hash_table_remove`.
    pub fn remove(&mut self, key: &[u8]) {
        let (i, _, found) = self.lookup(key);
        if !found {
            return;
        }
        if let (Some(h), Some(k)) = (self.hashes.get_mut(i), self.keys.get_mut(i)) {
            *h = TOMBSTONE;
            *k = None;
        }
        self.nnodes -= 1;
        self.maybe_resize();
    }

    fn maybe_resize(&mut self) {
        let size = self.size;
        if (size > self.nnodes * 4 && size > 1 << MIN_SHIFT)
            || size <= self.noccupied + self.noccupied / 16
        {
            self.resize();
        }
    }

    fn resize(&mut self) {
        let old_size = self.size;
        // g_hash_table_set_shift_from_size(nnodes * 1.333), truncated to an integer.
        let mut n = self.nnodes * 1333 / 1000;
        let mut shift = 0;
        while n != 0 {
            n >>= 1;
            shift += 1;
        }
        self.set_shift(shift.max(MIN_SHIFT));
        if self.size > old_size {
            self.hashes.resize(self.size, UNUSED);
            self.keys.resize(self.size, None);
        }
        let mut placed = vec![false; self.size.max(old_size)];
        for i in 0..old_size {
            let node_hash = self.hash_at(i);
            if node_hash < 2 {
                if let Some(h) = self.hashes.get_mut(i) {
                    *h = UNUSED;
                }
                continue;
            }
            if placed.get(i).copied().unwrap_or(false) {
                continue;
            }
            let mut hash = node_hash;
            let mut key = self.keys.get_mut(i).and_then(Option::take);
            if let Some(h) = self.hashes.get_mut(i) {
                *h = UNUSED;
            }
            loop {
                let mut slot = self.index_of(hash);
                let mut step = 0;
                while placed.get(slot).copied().unwrap_or(false) {
                    step += 1;
                    slot = (slot + step) & self.mask;
                }
                if let Some(p) = placed.get_mut(slot) {
                    *p = true;
                }
                let replaced_hash = self.hash_at(slot);
                let replaced_key = self.keys.get_mut(slot).and_then(|k| k.take());
                if let (Some(h), Some(k)) = (self.hashes.get_mut(slot), self.keys.get_mut(slot)) {
                    *h = hash;
                    *k = key;
                }
                if replaced_hash < 2 {
                    break;
                }
                hash = replaced_hash;
                key = replaced_key;
            }
        }
        if self.size < old_size {
            self.hashes.truncate(self.size);
            self.keys.truncate(self.size);
        }
        self.noccupied = self.nnodes;
    }

    /// The first key of a `GHashTableIter` walk (slot order).
    pub fn first(&self) -> Option<&[u8]> {
        self.hashes
            .iter()
            .zip(&self.keys)
            .find(|(h, _)| **h >= 2)
            .and_then(|(_, k)| k.as_deref())
    }
}

/// The member qemu-ga 7.2 names in `Parameter '<m>' is unexpected` for an arguments object whose
/// members appear in `keys_in_input_order` (after JSON unescaping), of which `visited` are members
/// of the command's schema that are present (and valid). `None` if no member is unexpected.
pub fn first_unexpected_member<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    keys_in_input_order: &[K],
    visited: &[V],
) -> Option<Vec<u8>> {
    let mut table = GHashModel::new();
    for i in qdict_order(keys_in_input_order) {
        if let Some(k) = keys_in_input_order.get(i) {
            table.insert(k.as_ref());
        }
    }
    for v in visited {
        table.remove(v.as_ref());
    }
    table.first().map(<[u8]>::to_vec)
}
