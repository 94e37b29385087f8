//! JS views of native memory: one external ArrayBuffer per region.
//!
//! The ArrayBuffer's finalizer holds an `Arc` of the region, so the memory
//! outlives every JS view even if the port is dropped first; `close()`
//! detaches the buffers so stale views read as empty instead of dangling.

use std::cell::UnsafeCell;
use std::sync::Arc;

use napi::bindgen_prelude::ArrayBuffer;
use napi::Env;

use crate::error::{invalid, Result};

/// Memory that may be exposed to JS: stable address, known length.
pub trait Region: Send + Sync + 'static {
    fn base(&self) -> *mut u8;
    fn size(&self) -> usize;
}

/// Wrap `region` in an external ArrayBuffer and refuse to go on unless the
/// engine really aliases our memory: a runtime without external buffers
/// would silently hand JS a copy, and packets would never reach the rings.
pub fn external_buffer<'env, R: Region>(env: &'env Env, region: Arc<R>) -> Result<ArrayBuffer<'env>> {
    let base = region.base();
    let size = region.size();
    // SAFETY: `base..base+size` stays mapped while the Arc in the finalize
    // hint is alive, and V8 drops the hint only after the last view is gone.
    let buffer = unsafe { ArrayBuffer::from_external(env, base, size, region, |_env, region| drop(region)) }
        .map_err(crate::error::from_napi)?;
    if !std::ptr::eq(buffer.as_ptr(), base) || buffer.len() != size {
        return Err(invalid(
            "this JavaScript runtime copies external memory instead of sharing it (no external ArrayBuffers); \
             afxdp needs Node.js, not a runtime with a V8 memory cage such as Electron",
        ));
    }
    Ok(buffer)
}

/// Descriptor slots shared with JS: per queue `burst` addresses, then
/// `burst` lengths, then `burst` options (the `xdp_desc.options` word:
/// XDP_PKT_CONTD on every fragment of a chain but the last, XDP_TX_METADATA
/// ...), as u32 (UMEM offsets are < 4 GiB). `DESCRIPTOR_ARRAYS` arrays.
pub struct DescriptorArea {
    slots: Box<[UnsafeCell<u32>]>,
}

// SAFETY: the slots are only touched from the JS thread (by JS through the
// ArrayBuffer, and by the port's methods called from JS); never concurrently.
unsafe impl Send for DescriptorArea {}
// SAFETY: as for Send.
unsafe impl Sync for DescriptorArea {}

/// Arrays per queue in the descriptor area: addresses, lengths, options.
pub const DESCRIPTOR_ARRAYS: usize = 3;

impl DescriptorArea {
    /// The area of `queues` queues of `burst` slots each.
    pub fn for_queues(queues: usize, burst: usize) -> Self {
        Self::new(queues * DESCRIPTOR_ARRAYS * burst)
    }

    pub fn new(slots: usize) -> Self {
        DescriptorArea { slots: (0..slots).map(|_| UnsafeCell::new(0)).collect() }
    }

    /// # Safety
    /// The caller must be on the JS thread and must not hold another slice
    /// of the same range.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice_mut(&self, start: usize, len: usize) -> &mut [u32] {
        assert!(start + len <= self.slots.len());
        // SAFETY: the range is in bounds (asserted); the cells allow shared
        // mutation and the caller holds no other slice of it (contract).
        unsafe { std::slice::from_raw_parts_mut(UnsafeCell::raw_get(self.slots.as_ptr().add(start)), len) }
    }
}

impl Region for DescriptorArea {
    fn base(&self) -> *mut u8 {
        self.slots.as_ptr() as *mut u8
    }
    fn size(&self) -> usize {
        self.slots.len() * 4
    }
}
