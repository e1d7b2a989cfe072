//! The growable frame buffer the agent assembles requests in.

use qga_core::FrameBuffer;

/// Starting (and resting) size.
pub const INITIAL: usize = 64 * 1024;
/// Largest size: qemu-ga's 64 MiB token limit plus room for the rest of the request.
pub const MAX: usize = (64 << 20) + INITIAL;
/// After a request, a buffer that grew beyond this is shrunk back to [`INITIAL`]. Up to this
/// size the memory is kept for the next request: a host copying a file sends 1–4 MiB chunks
/// back to back, and growing the buffer again for each one costs more than the copy.
pub const SHRINK_ABOVE: usize = 16 << 20;

/// A `Vec<u8>` that starts at 64 KiB, grows on demand up to 64 MiB + 64 KiB, and gives the
/// memory back after a request larger than [`SHRINK_ABOVE`].
#[derive(Debug)]
pub struct GrowBuf {
    buf: Vec<u8>,
}

impl GrowBuf {
    /// A buffer of [`INITIAL`] bytes.
    pub fn new() -> Self {
        GrowBuf {
            buf: vec![0; INITIAL],
        }
    }
}

impl Default for GrowBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameBuffer for GrowBuf {
    fn bytes(&self) -> &[u8] {
        &self.buf
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    fn grow(&mut self, min_len: usize) -> usize {
        let len = self.buf.len();
        if min_len > len && len < MAX {
            // Doubling keeps the number of copies logarithmic in the request size.
            let target = min_len.max(len.saturating_mul(2)).min(MAX);
            // A fresh zeroed allocation comes from pages the kernel already zeroed (no memset
            // of the whole buffer); only the used part is copied over.
            let mut bigger = vec![0u8; target];
            if let Some(dst) = bigger.get_mut(..len) {
                dst.copy_from_slice(&self.buf);
            }
            self.buf = bigger;
        }
        self.buf.len()
    }

    fn release(&mut self) {
        if self.buf.len() > SHRINK_ABOVE {
            self.buf.truncate(INITIAL);
            self.buf.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_keeps_contents_and_shrinks() {
        let mut b = GrowBuf::new();
        assert_eq!(b.bytes().len(), INITIAL);
        b.bytes_mut()[..3].copy_from_slice(b"abc");
        assert_eq!(b.grow(100), INITIAL);
        assert_eq!(b.grow(INITIAL + 1), 2 * INITIAL);
        assert_eq!(&b.bytes()[..3], b"abc");
        assert_eq!(b.grow(5 << 20), 5 << 20);
        assert_eq!(b.grow(usize::MAX), MAX);
        assert_eq!(b.grow(MAX + 1), MAX);
        b.release();
        assert_eq!(b.bytes().len(), INITIAL);
        assert_eq!(&b.bytes()[..3], b"abc");
        // Below the threshold nothing is given back.
        b.grow(SHRINK_ABOVE);
        b.release();
        assert_eq!(b.bytes().len(), SHRINK_ABOVE);
    }
}
