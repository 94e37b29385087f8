//! Completion ring: the kernel returns the addresses of transmitted frames.

use super::{Consumer, RingPtrs};
use crate::Result;
use std::os::fd::RawFd;

pub struct CompletionRing {
    inner: Consumer<u64>,
}

impl CompletionRing {
    /// Map the completion ring of `fd` (size set with XDP_UMEM_COMPLETION_RING).
    pub fn map(fd: RawFd, off: &libc::xdp_mmap_offsets, size: u32) -> Result<CompletionRing> {
        let ring = RingPtrs::map(fd, &off.cr, size, libc::XDP_UMEM_PGOFF_COMPLETION_RING, "completion")?;
        Ok(CompletionRing { inner: Consumer::new(ring) })
    }

    /// Make up to `n` completed addresses readable; returns how many.
    #[inline]
    pub fn peek(&mut self, n: u32) -> u32 {
        self.inner.peek(n)
    }

    /// The `i`-th peeked address (the address that was posted for tx).
    #[inline]
    pub fn addr(&self, i: u32) -> u64 {
        self.inner.read(i)
    }

    /// Return the first `n` peeked slots to the kernel.
    #[inline]
    pub fn release(&mut self, n: u32) {
        self.inner.release(n)
    }

    /// Completed addresses waiting to be reaped.
    pub fn occupancy(&self) -> u32 {
        self.inner.occupancy()
    }

    pub fn size(&self) -> u32 {
        self.inner.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::heap::HeapRing;
    use std::sync::atomic::Ordering;

    #[test]
    fn reads_what_the_kernel_published() {
        let mut mem = HeapRing::<u64>::new(4, u32::MAX);
        let mut c = CompletionRing { inner: mem.consumer_side() };
        assert_eq!(c.peek(4), 0);
        // The "kernel" completes two frames; the second wraps to slot 0.
        mem.descs[3] = 4096;
        mem.descs[0] = 8192;
        mem.producer.0.store(u32::MAX.wrapping_add(2), Ordering::Release);
        assert_eq!(c.occupancy(), 2);
        assert_eq!(c.peek(4), 2);
        assert_eq!((c.addr(0), c.addr(1)), (4096, 8192));
        c.release(2);
        assert_eq!(mem.consumer.0.load(Ordering::Acquire), 1);
        assert_eq!(c.occupancy(), 0);
    }
}
