//! Tx ring: we post (addr, len) descriptors of frames to transmit.

use super::{Producer, RingPtrs};
use crate::Result;
use std::os::fd::RawFd;

pub struct TxRing {
    inner: Producer<libc::xdp_desc>,
}

impl TxRing {
    /// Map the tx ring of `fd` (size set with XDP_TX_RING).
    pub fn map(fd: RawFd, off: &libc::xdp_mmap_offsets, size: u32) -> Result<TxRing> {
        let ring = RingPtrs::map(fd, &off.tx, size, libc::XDP_PGOFF_TX_RING as u32 as u64, "tx")?;
        Ok(TxRing { inner: Producer::new(ring) })
    }

    /// Reserve up to `n` slots; returns how many.
    #[inline]
    pub fn reserve(&mut self, n: u32) -> u32 {
        self.inner.reserve(n)
    }

    /// Describe the packet (or fragment) in the `i`-th reserved slot;
    /// `options` is the descriptor's options word (XDP_PKT_CONTD, ...).
    #[inline]
    pub fn set(&mut self, i: u32, addr: u64, len: u32, options: u32) {
        self.inner.write(i, libc::xdp_desc { addr, len, options })
    }

    /// Hand the first `n` reserved slots to the kernel.
    #[inline]
    pub fn submit(&mut self, n: u32) {
        self.inner.submit(n)
    }

    /// Descriptors posted and not yet taken by the kernel.
    pub fn occupancy(&self) -> u32 {
        self.inner.occupancy()
    }

    /// The kernel asks for a sendto() kick to transmit.
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
    fn writes_descriptors() {
        let mut mem = HeapRing::<libc::xdp_desc>::new(2, 7);
        let mut t = TxRing { inner: mem.producer_side() };
        assert_eq!(t.reserve(5), 2);
        t.set(0, 100, 60, 0);
        t.set(1, 2148, 1514, 1);
        t.submit(2);
        // Index 7 -> slot 1, index 8 -> slot 0.
        assert_eq!((mem.descs[1].addr, mem.descs[1].len), (100, 60));
        assert_eq!((mem.descs[0].addr, mem.descs[0].len, mem.descs[0].options), (2148, 1514, 1));
        assert_eq!(t.occupancy(), 2);
    }
}
