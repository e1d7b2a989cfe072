//! The one small seedable generator (xorshift64*) of the test support: the generated corpus
//! streams and the differential fuzzer are reproducible from a seed without a dependency.

/// A xorshift64* generator. Its state must not be zero.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from any seed (0 included): the seed is mixed into a non-zero state.
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A generator started at `state` as it is (non-zero): the corpus's fixed states, which
    /// keep its generated streams byte-identical.
    pub const fn from_state(state: u64) -> Self {
        Rng(state)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True with probability `p` percent.
    pub fn chance(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    /// One of `items` (not empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Shuffles `v` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }

    /// `n` distinct elements of `pool` (all of them when it has fewer), in random order.
    pub fn sample<T: Clone>(&mut self, pool: &[T], n: usize) -> Vec<T> {
        let mut v = pool.to_vec();
        self.shuffle(&mut v);
        v.truncate(n);
        v
    }
}
