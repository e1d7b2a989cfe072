//! Caller-owned storage for the request being assembled.

/// Storage for the tokens of the request being assembled, owned by the caller.
///
/// A fixed slice (`&mut [u8]`) or array works as is. A caller that can allocate (the Linux daemon)
/// implements [`FrameBuffer::grow`] so that the buffer starts small and grows on demand up to the
/// protocol limit, and [`FrameBuffer::release`] to give memory back after a large request.
pub trait FrameBuffer {
    /// The whole buffer.
    fn bytes(&self) -> &[u8];
    /// The whole buffer, writable.
    fn bytes_mut(&mut self) -> &mut [u8];
    /// Asks for at least `min_len` bytes. Returns the length now available, which may still be
    /// smaller than asked. Existing contents must be preserved. The default cannot grow.
    fn grow(&mut self, min_len: usize) -> usize {
        let _ = min_len;
        self.bytes().len()
    }
    /// Called when no request is in progress (the buffer's contents are no longer needed): a
    /// growable buffer may shrink back to its normal size here.
    fn release(&mut self) {}
}

impl FrameBuffer for &mut [u8] {
    fn bytes(&self) -> &[u8] {
        self
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        self
    }
}

impl<const N: usize> FrameBuffer for [u8; N] {
    fn bytes(&self) -> &[u8] {
        self
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        self
    }
}
