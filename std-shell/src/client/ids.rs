//! Fresh request ids.

use std::fs::File;
use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

/// Random non-negative 63-bit ids.
///
/// Each id comes from `/dev/urandom`, so that the reply to a request of an earlier client (or an
/// earlier run) on the same channel is never taken for ours. Without `/dev/urandom` (a chroot
/// without `/dev`), a SplitMix64 sequence seeded from the clock and the process id: not
/// unpredictable, but still different from run to run, which is all that freshness needs.
#[derive(Debug)]
pub(crate) struct IdSource {
    urandom: Option<File>,
    state: u64,
}

impl IdSource {
    pub(crate) fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        // Truncating the nanoseconds keeps their fast-changing low bits, which is what matters.
        let seed = (nanos as u64) ^ (u64::from(std::process::id()) << 32);
        IdSource {
            urandom: File::open("/dev/urandom").ok(),
            state: seed,
        }
    }

    /// The next id.
    pub(crate) fn next_id(&mut self) -> i64 {
        let mut bytes = [0u8; 8];
        let from_kernel = self
            .urandom
            .as_mut()
            .is_some_and(|f| f.read_exact(&mut bytes).is_ok());
        let random = if from_kernel {
            u64::from_le_bytes(bytes)
        } else {
            self.splitmix()
        };
        // 63 bits: QEMU parses integers as int64, and a negative id would look odd in logs.
        i64::try_from(random >> 1).unwrap_or(0)
    }

    fn splitmix(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fresh_and_non_negative() {
        let mut ids = IdSource::new();
        let a: Vec<i64> = (0..64).map(|_| ids.next_id()).collect();
        assert!(a.iter().all(|&id| id >= 0));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), a.len());
        ids.urandom = None;
        let (x, y) = (ids.next_id(), ids.next_id());
        assert!(x >= 0 && y >= 0 && x != y);
    }
}
