//! The UMEM memory itself: one page-aligned anonymous shared mapping.
//!
//! MAP_SHARED so a later memfd-based variant keeps the same semantics;
//! MAP_POPULATE so the kernel does not take page faults on the first packets
//! (XDP_UMEM_REG pins the pages anyway). Hugepages cut TLB misses when the
//! application touches many frames; they come from the preallocated pool in
//! /proc/sys/vm/nr_hugepages, which is often empty, hence the policy.

use crate::{Code, Error, Result};
use std::ptr::NonNull;

/// 2 MiB: the only hugepage size we ask for (MAP_HUGE_2MB).
pub const HUGEPAGE_SIZE: usize = 2 << 20;

/// Whether the UMEM should live in 2 MiB hugepages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HugepagePolicy {
    /// Try hugepages, fall back to ordinary pages when none are available.
    #[default]
    Auto,
    /// Hugepages or an error.
    Require,
    /// Ordinary pages only.
    Never,
}

/// An anonymous shared mapping, unmapped on drop.
pub struct UmemArea {
    ptr: NonNull<u8>,
    /// What the caller asked for (the usable UMEM size).
    len: usize,
    /// What was mapped (rounded up to the page size in use); munmap needs it.
    mapped: usize,
    hugepages: bool,
}

// SAFETY: the mapping is plain memory owned by this value; nothing about it
// is tied to the thread that created it. Sharing `&UmemArea` between
// threads hands out only the pointer: who may touch which frame is decided
// by the frame ledger, not by this type.
unsafe impl Send for UmemArea {}
// SAFETY: as for Send.
unsafe impl Sync for UmemArea {}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

fn round_up(len: usize, to: usize) -> usize {
    len.div_ceil(to) * to
}

fn map(len: usize, extra_flags: libc::c_int) -> std::result::Result<NonNull<u8>, i32> {
    // SAFETY: anonymous mapping at a kernel-chosen address; no existing
    // memory is affected.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_POPULATE | extra_flags,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::ENOMEM))
    } else {
        Ok(NonNull::new(p.cast()).expect("mmap returned NULL"))
    }
}

impl UmemArea {
    /// Map `len` bytes (len > 0) following `policy`.
    pub fn new(len: usize, policy: HugepagePolicy) -> Result<UmemArea> {
        if len == 0 {
            return Err(Error::invalid("UMEM size must be greater than 0"));
        }
        if policy != HugepagePolicy::Never {
            let mapped = round_up(len, HUGEPAGE_SIZE);
            match map(mapped, libc::MAP_HUGETLB | libc::MAP_HUGE_2MB) {
                Ok(ptr) => return Ok(UmemArea { ptr, len, mapped, hugepages: true }),
                Err(errno) if policy == HugepagePolicy::Require => {
                    let free = std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
                        .map(|s| s.trim().to_string())
                        .unwrap_or_else(|_| "unknown".into());
                    return Err(Error::with_errno(
                        Code::NotSupported,
                        errno,
                        format!(
                            "hugepages required but mapping {} MiB of 2 MiB hugepages failed ({}); \
                             {} free 2 MiB hugepages: reserve more with \
                             `echo N > /proc/sys/vm/nr_hugepages` (N >= {}) or use hugepages: auto",
                            mapped >> 20,
                            std::io::Error::from_raw_os_error(errno),
                            free,
                            mapped / HUGEPAGE_SIZE
                        ),
                    ));
                }
                Err(_) => {} // Auto: fall back below.
            }
        }
        let mapped = round_up(len, page_size());
        let ptr = map(mapped, 0).map_err(|errno| Error::sys(format!("mmap UMEM of {mapped} bytes"), errno))?;
        Ok(UmemArea { ptr, len, mapped, hugepages: false })
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The usable size (what was asked for).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the area is backed by 2 MiB hugepages.
    pub fn hugepages(&self) -> bool {
        self.hugepages
    }
}

impl Drop for UmemArea {
    fn drop(&mut self) {
        // SAFETY: ptr/mapped are exactly what mmap returned and nothing
        // borrowed from the area outlives self. Pages still pinned by a
        // kernel UMEM stay valid for the kernel until it releases them.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.mapped) };
    }
}

impl std::fmt::Debug for UmemArea {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UmemArea").field("len", &self.len).field("hugepages", &self.hugepages).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_pages_are_page_aligned_and_writable() {
        let a = UmemArea::new(3 * 4096 + 1, HugepagePolicy::Never).unwrap();
        assert!(!a.hugepages());
        assert_eq!(a.len(), 3 * 4096 + 1);
        assert_eq!(a.as_ptr() as usize % page_size(), 0);
        // SAFETY: within the mapping.
        unsafe {
            a.as_ptr().write(7);
            a.as_ptr().add(a.len() - 1).write(9);
            assert_eq!(a.as_ptr().read(), 7);
        }
    }

    #[test]
    fn zero_length_is_rejected() {
        assert_eq!(UmemArea::new(0, HugepagePolicy::Never).unwrap_err().code, Code::InvalidArgument);
    }

    #[test]
    fn auto_always_succeeds() {
        // With or without a hugepage pool, Auto must produce a mapping.
        let a = UmemArea::new(1 << 20, HugepagePolicy::Auto).unwrap();
        assert_eq!(a.len(), 1 << 20);
    }
}
