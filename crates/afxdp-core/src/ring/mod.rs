//! The four AF_XDP rings: single-producer/single-consumer queues in memory
//! shared with the kernel (mmap of the socket at XDP_PGOFF_* offsets).
//!
//! Each ring has a `producer` and a `consumer` index (free-running u32,
//! wrapping; slot = index & mask), a `flags` word and the descriptors. We are
//! the producer of fill and tx, the consumer of rx and completion.
//!
//! Memory ordering (the kernel side uses smp_load_acquire/smp_store_release
//! on the same words, see net/xdp/xsk_queue.h):
//! - consumer: Acquire-load the producer index *before* reading descriptors,
//!   so the kernel's descriptor writes are visible; Release-store our
//!   consumer index *after* reading them, so the kernel cannot reuse a slot
//!   we are still reading.
//! - producer: Acquire-load the consumer index before overwriting slots, so
//!   the kernel's reads of those slots are finished; Release-store our
//!   producer index after writing descriptors, which publishes them.
//!
//! Both sides cache the peer's index and reload it only when the cached
//! value says the batch does not fit: the peer's index lives on a cache line
//! the other CPU writes, and touching it every call costs a miss.
//! Descriptors are only ever accessed through raw pointers (never `&`/`&mut`
//! references into shared memory).

pub mod completion;
pub mod fill;
pub mod rx;
pub mod tx;

pub use completion::CompletionRing;
pub use fill::FillRing;
pub use rx::RxRing;
pub use tx::TxRing;

use crate::{Error, Result};
use std::marker::PhantomData;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, Ordering};

/// A ring mapping, unmapped on drop. `None` for rings over test memory.
struct RingMap {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Drop for RingMap {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping mmap returned; the ring pointers into
        // it die with the ring that owns this value.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// Raw pointers into one ring's memory.
struct RingPtrs<T> {
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    descs: *mut T,
    mask: u32,
    _map: Option<RingMap>,
}

impl<T: Copy> RingPtrs<T> {
    /// mmap a ring of `size` entries from socket `fd` at page offset `pgoff`.
    fn map(fd: RawFd, off: &libc::xdp_ring_offset, size: u32, pgoff: u64, name: &str) -> Result<Self> {
        debug_assert!(size.is_power_of_two());
        let len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        // SAFETY: mapping the socket's ring; the kernel checks pgoff and len.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::last_os(format!("mmap {name} ring ({size} entries)")));
        }
        let map = RingMap { ptr, len };
        let base = ptr.cast::<u8>();
        // SAFETY: the kernel-provided offsets lie inside the mapping and the
        // index/flags words are 4-byte aligned u32s.
        unsafe {
            Ok(RingPtrs {
                producer: base.add(off.producer as usize).cast(),
                consumer: base.add(off.consumer as usize).cast(),
                flags: base.add(off.flags as usize).cast(),
                descs: base.add(off.desc as usize).cast(),
                mask: size - 1,
                _map: Some(map),
            })
        }
    }

    #[inline]
    fn producer(&self) -> &AtomicU32 {
        // SAFETY: valid, aligned, lives as long as self (the mapping).
        unsafe { &*self.producer }
    }

    #[inline]
    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as above.
        unsafe { &*self.consumer }
    }

    #[inline]
    fn needs_wakeup(&self) -> bool {
        // SAFETY: as above. Relaxed: the flag is a hint; the callers that
        // must not miss it add the fence they need.
        unsafe { (*self.flags).load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0 }
    }

    #[inline]
    fn size(&self) -> u32 {
        self.mask + 1
    }
}

// SAFETY: the pointers target a mapping owned by the same value (or, in
// tests, memory that outlives it); nothing is thread-affine. Not Sync: one
// side of a ring must be driven by one thread at a time.
unsafe impl<T: Send> Send for RingPtrs<T> {}

/// Our side of a ring we produce into (fill, tx).
pub(crate) struct Producer<T> {
    ring: RingPtrs<T>,
    /// Our producer index (last submitted).
    prod: u32,
    /// Last consumer index we loaded from the kernel.
    cached_cons: u32,
    /// Slots reserved but not yet submitted.
    reserved: u32,
    _t: PhantomData<T>,
}

impl<T: Copy> Producer<T> {
    fn new(ring: RingPtrs<T>) -> Self {
        // The kernel initialises both indexes; start from what is there so
        // that a ring handed over mid-life would also work.
        let prod = ring.producer().load(Ordering::Relaxed);
        let cached_cons = ring.consumer().load(Ordering::Acquire);
        Producer { ring, prod, cached_cons, reserved: 0, _t: PhantomData }
    }

    /// Free slots, reloading the consumer index only when the cached one
    /// shows fewer than `want`.
    #[inline]
    fn free(&mut self, want: u32) -> u32 {
        let size = self.ring.size();
        let free = size - self.prod.wrapping_sub(self.cached_cons);
        if free >= want {
            return free;
        }
        self.cached_cons = self.ring.consumer().load(Ordering::Acquire);
        size - self.prod.wrapping_sub(self.cached_cons)
    }

    /// Reserve up to `n` slots; returns how many. A previous unsubmitted
    /// reservation is dropped.
    #[inline]
    pub(crate) fn reserve(&mut self, n: u32) -> u32 {
        self.reserved = n.min(self.free(n));
        self.reserved
    }

    /// Write the `i`-th reserved slot.
    #[inline]
    pub(crate) fn write(&mut self, i: u32, v: T) {
        assert!(i < self.reserved, "ring slot {i} written outside the reservation of {}", self.reserved);
        let slot = self.prod.wrapping_add(i) & self.ring.mask;
        // SAFETY: slot <= mask, inside the descriptor array; the consumer has
        // released it (checked by `free` with Acquire).
        unsafe { self.ring.descs.add(slot as usize).write(v) };
    }

    /// Publish the first `n` reserved slots.
    #[inline]
    pub(crate) fn submit(&mut self, n: u32) {
        assert!(n <= self.reserved, "submitting {n} slots, only {} reserved", self.reserved);
        self.prod = self.prod.wrapping_add(n);
        self.reserved = 0;
        self.ring.producer().store(self.prod, Ordering::Release);
    }

    /// Entries submitted but not yet consumed by the kernel (fresh load).
    pub(crate) fn occupancy(&self) -> u32 {
        self.prod.wrapping_sub(self.ring.consumer().load(Ordering::Acquire))
    }

    #[inline]
    pub(crate) fn needs_wakeup(&self) -> bool {
        self.ring.needs_wakeup()
    }

    pub(crate) fn size(&self) -> u32 {
        self.ring.size()
    }
}

/// Our side of a ring we consume from (rx, completion).
pub(crate) struct Consumer<T> {
    ring: RingPtrs<T>,
    /// Our consumer index (last released).
    cons: u32,
    /// Last producer index we loaded from the kernel.
    cached_prod: u32,
    /// Entries peeked but not yet released.
    peeked: u32,
    _t: PhantomData<T>,
}

impl<T: Copy> Consumer<T> {
    fn new(ring: RingPtrs<T>) -> Self {
        let cons = ring.consumer().load(Ordering::Relaxed);
        let cached_prod = ring.producer().load(Ordering::Acquire);
        Consumer { ring, cons, cached_prod, peeked: 0, _t: PhantomData }
    }

    /// Entries ready, reloading the producer index only when the cached one
    /// shows fewer than `want`.
    #[inline]
    fn available(&mut self, want: u32) -> u32 {
        let avail = self.cached_prod.wrapping_sub(self.cons);
        if avail >= want {
            return avail;
        }
        self.cached_prod = self.ring.producer().load(Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cons)
    }

    /// Make up to `n` entries readable; returns how many.
    #[inline]
    pub(crate) fn peek(&mut self, n: u32) -> u32 {
        self.peeked = n.min(self.available(n));
        self.peeked
    }

    /// Read the `i`-th peeked entry.
    #[inline]
    pub(crate) fn read(&self, i: u32) -> T {
        assert!(i < self.peeked, "ring entry {i} read outside the peek of {}", self.peeked);
        let slot = self.cons.wrapping_add(i) & self.ring.mask;
        // SAFETY: inside the descriptor array; published by the producer
        // (Acquire in `available`) and not yet released by us.
        unsafe { self.ring.descs.add(slot as usize).read() }
    }

    /// Give the first `n` peeked entries back to the kernel.
    #[inline]
    pub(crate) fn release(&mut self, n: u32) {
        assert!(n <= self.peeked, "releasing {n} entries, only {} peeked", self.peeked);
        self.cons = self.cons.wrapping_add(n);
        self.peeked = 0;
        self.ring.consumer().store(self.cons, Ordering::Release);
    }

    /// Entries produced by the kernel and not yet released by us (fresh load).
    pub(crate) fn occupancy(&self) -> u32 {
        self.ring.producer().load(Ordering::Acquire).wrapping_sub(self.cons)
    }

    pub(crate) fn size(&self) -> u32 {
        self.ring.size()
    }
}

/// Test support: ring memory on the heap instead of a socket mapping, laid
/// out like the kernel's (indexes on separate cache lines).
#[cfg(test)]
pub(crate) mod heap {
    use super::*;

    #[repr(C, align(64))]
    pub struct Line(pub AtomicU32);

    pub struct HeapRing<T> {
        pub producer: Box<Line>,
        pub consumer: Box<Line>,
        pub flags: Box<Line>,
        pub descs: Vec<T>,
    }

    impl<T: Copy> HeapRing<T> {
        pub fn new(size: u32, start: u32) -> Self {
            // SAFETY: only used with plain-old-data descriptors (u64, xdp_desc).
            let zero: T = unsafe { std::mem::zeroed() };
            HeapRing {
                producer: Box::new(Line(AtomicU32::new(start))),
                consumer: Box::new(Line(AtomicU32::new(start))),
                flags: Box::new(Line(AtomicU32::new(0))),
                descs: vec![zero; size as usize],
            }
        }

        /// Pointers into this memory; the HeapRing must outlive their users.
        fn ptrs(&mut self) -> RingPtrs<T> {
            RingPtrs {
                producer: &self.producer.0,
                consumer: &self.consumer.0,
                flags: &self.flags.0,
                descs: self.descs.as_mut_ptr(),
                mask: self.descs.len() as u32 - 1,
                _map: None,
            }
        }

        pub fn producer_side(&mut self) -> Producer<T> {
            Producer::new(self.ptrs())
        }

        pub fn consumer_side(&mut self) -> Consumer<T> {
            Consumer::new(self.ptrs())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::heap::HeapRing;
    use super::*;

    fn cycle(start: u32) {
        let mut mem = HeapRing::<u64>::new(8, start);
        let mut p = mem.producer_side();
        let mut c = mem.consumer_side();
        let mut next_write = 0u64;
        let mut next_read = 0u64;
        // Empty.
        assert_eq!(c.peek(4), 0);
        assert_eq!(c.occupancy(), 0);
        for round in 0..40u32 {
            let want = 1 + round % 8;
            let n = p.reserve(want);
            assert!(n <= want);
            for i in 0..n {
                p.write(i, next_write);
                next_write += 1;
            }
            p.submit(n);
            assert!(p.occupancy() <= 8);
            let got = c.peek(1 + (round * 3) % 8);
            for i in 0..got {
                assert_eq!(c.read(i), next_read);
                next_read += 1;
            }
            c.release(got);
            assert_eq!(p.occupancy(), (next_write - next_read) as u32);
            assert_eq!(c.occupancy(), (next_write - next_read) as u32);
        }
        // Drain, then the ring must be empty again.
        loop {
            let got = c.peek(8);
            if got == 0 {
                break;
            }
            for i in 0..got {
                assert_eq!(c.read(i), next_read);
                next_read += 1;
            }
            c.release(got);
        }
        assert_eq!(next_read, next_write);
        assert!(next_write > 100);
    }

    #[test]
    fn fifo_across_index_wraparound() {
        // Start just below u32::MAX so the indexes wrap during the run.
        cycle(u32::MAX - 5);
        cycle(0);
        cycle(u32::MAX);
    }

    #[test]
    fn full_ring_refuses_more_until_released() {
        let mut mem = HeapRing::<u64>::new(4, u32::MAX - 1);
        let mut p = mem.producer_side();
        let mut c = mem.consumer_side();
        assert_eq!(p.reserve(10), 4);
        for i in 0..4 {
            p.write(i, i as u64);
        }
        p.submit(4);
        assert_eq!(p.reserve(1), 0, "full ring must not accept more");
        assert_eq!(p.occupancy(), 4);
        assert_eq!(c.peek(2), 2);
        c.release(1);
        assert_eq!(p.reserve(4), 1);
        p.write(0, 99);
        p.submit(1);
        assert_eq!(c.peek(10), 4);
        let v: Vec<u64> = (0..4).map(|i| c.read(i)).collect();
        assert_eq!(v, vec![1, 2, 3, 99]);
        c.release(4);
        assert_eq!(c.occupancy(), 0);
        assert_eq!(p.reserve(8), 4);
    }

    #[test]
    fn cached_index_is_refreshed_only_when_needed() {
        let mut mem = HeapRing::<u64>::new(8, 0);
        let mut p = mem.producer_side();
        assert_eq!(p.reserve(8), 8);
        p.submit(8);
        // The "kernel" consumes 3 entries behind our back.
        mem.consumer.0.store(3, Ordering::Release);
        assert_eq!(p.reserve(2), 2, "refreshes the cached consumer when short");
        p.submit(0);
        let mut c = mem.consumer_side();
        mem.producer.0.store(8, Ordering::Release);
        assert_eq!(c.peek(100), 5);
    }

    #[test]
    fn need_wakeup_flag_is_read_from_the_flags_word() {
        let mut mem = HeapRing::<u64>::new(4, 0);
        let p = mem.producer_side();
        assert!(!p.needs_wakeup());
        mem.flags.0.store(libc::XDP_RING_NEED_WAKEUP, Ordering::Relaxed);
        assert!(p.needs_wakeup());
    }

    #[test]
    #[should_panic(expected = "outside the reservation")]
    fn writing_past_the_reservation_panics() {
        let mut mem = HeapRing::<u64>::new(4, 0);
        let mut p = mem.producer_side();
        p.reserve(1);
        p.write(1, 0);
    }
}
