//! UMEM memory and the hugepage policy against the real hugepage pool.
//! Needs root (it raises /proc/sys/vm/nr_hugepages and restores it).

mod common;

use afxdp_core::umem::{HugepagePolicy, UmemArea};
use afxdp_core::Code;
use std::fs;

const NR: &str = "/proc/sys/vm/nr_hugepages";
const FREE: &str = "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages";
const OVERCOMMIT: &str = "/proc/sys/vm/nr_overcommit_hugepages";

fn read(path: &str) -> u64 {
    fs::read_to_string(path).unwrap().trim().parse().unwrap()
}

/// Raises nr_hugepages by `extra` while alive; restores the old value.
struct Reserve(u64);

impl Reserve {
    fn extra(extra: u64) -> Reserve {
        assert!(common::is_root(), "hugepage tests need root to change {NR}");
        let old = read(NR);
        let r = Reserve(old);
        fs::write(NR, (old + extra).to_string()).unwrap();
        assert!(read(NR) >= old + extra, "the kernel could not reserve {extra} more hugepages");
        r
    }
}

impl Drop for Reserve {
    fn drop(&mut self) {
        let _ = fs::write(NR, self.0.to_string());
    }
}

// One test function so the two phases never race each other over the pool.
#[test]
fn hugepage_policy_against_the_real_pool() {
    let before = {
        assert!(common::is_root(), "hugepage tests need root");
        read(NR)
    };
    // Require with more than the pool can give: a clear error, no fallback.
    {
        let want = read(FREE) + read(OVERCOMMIT) + 4;
        let e = UmemArea::new((want as usize) << 21, HugepagePolicy::Require).unwrap_err();
        assert_eq!(e.code, Code::NotSupported, "{e}");
        assert!(e.message.contains("/proc/sys/vm/nr_hugepages"), "{}", e.message);
    }
    // With pages reserved: Require and Auto both get hugepages, 2 MiB aligned.
    {
        let _r = Reserve::extra(16);
        let a = UmemArea::new(5 << 20, HugepagePolicy::Require).unwrap();
        assert!(a.hugepages());
        assert_eq!(a.len(), 5 << 20);
        assert_eq!(a.as_ptr() as usize % (2 << 20), 0);
        // SAFETY: the whole requested length is mapped and writable.
        unsafe {
            a.as_ptr().write_bytes(0xab, a.len());
            assert_eq!(*a.as_ptr().add(a.len() - 1), 0xab);
        }
        let b = UmemArea::new(2 << 20, HugepagePolicy::Auto).unwrap();
        assert!(b.hugepages());
        let c = UmemArea::new(2 << 20, HugepagePolicy::Never).unwrap();
        assert!(!c.hugepages());
    }
    assert_eq!(read(NR), before, "nr_hugepages must be restored");
}
