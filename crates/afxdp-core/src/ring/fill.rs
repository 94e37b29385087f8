//! Fill ring: we hand empty frames (UMEM addresses) to the kernel for receive.

use super::{Producer, RingPtrs};
use crate::Result;
use std::os::fd::RawFd;

pub struct FillRing {
    inner: Producer<u64>,
}

impl FillRing {
    /// Map the fill ring of `fd` (its size was set with XDP_UMEM_FILL_RING).
    pub fn map(fd: RawFd, off: &libc::xdp_mmap_offsets, size: u32) -> Result<FillRing> {
        let ring = RingPtrs::map(fd, &off.fr, size, libc::XDP_UMEM_PGOFF_FILL_RING, "fill")?;
        Ok(FillRing { inner: Producer::new(ring) })
    }

    /// Reserve up to `n` slots; returns how many.
    #[inline]
    pub fn reserve(&mut self, n: u32) -> u32 {
        self.inner.reserve(n)
    }

    /// Put a frame address in the `i`-th reserved slot.
    #[inline]
    pub fn set(&mut self, i: u32, addr: u64) {
        self.inner.write(i, addr)
    }

    /// Hand the first `n` reserved slots to the kernel.
    #[inline]
    pub fn submit(&mut self, n: u32) {
        self.inner.submit(n)
    }

    /// Addresses posted and not yet taken by the kernel.
    pub fn occupancy(&self) -> u32 {
        self.inner.occupancy()
    }

    /// The kernel asks to be woken (recvfrom/poll) to pick up new entries.
    #[inline]
    pub fn needs_wakeup(&self) -> bool {
        self.inner.needs_wakeup()
    }

    pub fn size(&self) -> u32 {
        self.inner.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::heap::HeapRing;

    #[test]
    fn posts_addresses_in_order() {
        let mut mem = HeapRing::<u64>::new(4, 0);
        let mut f = FillRing { inner: mem.producer_side() };
        assert_eq!(f.reserve(3), 3);
        for i in 0..3 {
            f.set(i, 2048 * i as u64);
        }
        f.submit(3);
        assert_eq!(f.occupancy(), 3);
        assert_eq!(&mem.descs[..3], &[0, 2048, 4096]);
        assert_eq!(f.reserve(9), 1);
    }
}
