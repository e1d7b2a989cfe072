//! The growable buffer the client keeps replies in.

use qga_core::FrameBuffer;

/// Starting size: every ordinary reply fits without growing.
const INITIAL: usize = 64 * 1024;

/// A `Vec<u8>` that starts at 64 KiB and doubles on demand up to a fixed cap, so that what the
/// guest sends can never make the client use more memory than the cap.
#[derive(Debug)]
pub(crate) struct ReplyBuffer {
    buf: Vec<u8>,
    cap: usize,
}

impl ReplyBuffer {
    /// A buffer that never grows beyond `cap` bytes.
    pub(crate) fn new(cap: usize) -> Self {
        ReplyBuffer {
            buf: vec![0; INITIAL.min(cap)],
            cap,
        }
    }

    /// The cap for replies of up to `max_reply` bytes of tokens: half as much again for the
    /// parser's index (4 bytes per nesting level, 8 per hash slot of object members), so that
    /// ordinary replies always validate, while a reply made mostly of tiny members (whose index
    /// would be several times its size) is refused as too large instead of using more memory.
    pub(crate) fn cap_for(max_reply: usize) -> usize {
        max_reply
            .saturating_add(max_reply / 2)
            .saturating_add(INITIAL)
    }
}

impl FrameBuffer for ReplyBuffer {
    fn bytes(&self) -> &[u8] {
        &self.buf
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    fn grow(&mut self, min_len: usize) -> usize {
        let len = self.buf.len();
        // Growing cannot satisfy a request beyond the cap: keep the memory.
        if min_len > len && min_len <= self.cap {
            // Doubling keeps the number of copies logarithmic in the reply size.
            let target = min_len.max(len.saturating_mul(2)).min(self.cap);
            // An allocation failure leaves the buffer as it is: the client then reports the
            // reply as too large instead of the process aborting.
            if self.buf.try_reserve_exact(target - len).is_ok() {
                self.buf.resize(target, 0);
            }
        }
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_no_further() {
        let mut b = ReplyBuffer::new(200_000);
        assert_eq!(b.bytes().len(), INITIAL);
        b.bytes_mut()[..2].copy_from_slice(b"ok");
        assert_eq!(b.grow(10), INITIAL);
        assert_eq!(b.grow(INITIAL + 1), 2 * INITIAL);
        // A request beyond the cap allocates nothing.
        assert_eq!(b.grow(200_001), 2 * INITIAL);
        // Doubling stops at the cap.
        assert_eq!(b.grow(150_000), 200_000);
        assert_eq!(b.grow(usize::MAX), 200_000);
        assert_eq!(&b.bytes()[..2], b"ok");
        assert_eq!(ReplyBuffer::new(10).bytes().len(), 10);
        assert_eq!(ReplyBuffer::cap_for(usize::MAX), usize::MAX);
    }
}
