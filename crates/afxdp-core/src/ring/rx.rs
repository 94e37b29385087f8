//! Rx ring: the kernel delivers received packets as (addr, len) descriptors.

use super::{Consumer, RingPtrs};
use crate::Result;
use std::os::fd::RawFd;

pub struct RxRing {
    inner: Consumer<libc::xdp_desc>,
}

impl RxRing {
    /// Map the rx ring of `fd` (size set with XDP_RX_RING).
    pub fn map(fd: RawFd, off: &libc::xdp_mmap_offsets, size: u32) -> Result<RxRing> {
        let ring = RingPtrs::map(fd, &off.rx, size, libc::XDP_PGOFF_RX_RING as u64, "rx")?;
        Ok(RxRing { inner: Consumer::new(ring) })
    }

    /// Make up to `n` descriptors readable; returns how many.
    #[inline]
    pub fn peek(&mut self, n: u32) -> u32 {
        self.inner.peek(n)
    }

    /// The `i`-th peeked descriptor; `addr` includes the headroom offset.
    #[inline]
    pub fn desc(&self, i: u32) -> libc::xdp_desc {
        self.inner.read(i)
    }

    /// Return the first `n` peeked slots to the kernel.
    #[inline]
    pub fn release(&mut self, n: u32) {
        self.inner.release(n)
    }

    /// Received packets waiting to be read.
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
    fn descriptors_round_trip() {
        let mut mem = HeapRing::<libc::xdp_desc>::new(2, 0);
        let mut r = RxRing { inner: mem.consumer_side() };
        mem.descs[0] = libc::xdp_desc { addr: 2048 + 256, len: 60, options: 0 };
        mem.producer.0.store(1, Ordering::Release);
        assert_eq!(r.peek(8), 1);
        let d = r.desc(0);
        assert_eq!((d.addr, d.len), (2304, 60));
        r.release(1);
        assert_eq!(r.peek(8), 0);
    }
}
