//! The ledger of a UMEM held for one burst operation: queues take it once
//! per burst and move every frame of the batch under it, so a UMEM shared
//! by several ports costs one uncontended lock per burst, not per packet.

use super::{FramePool, Umem, UmemConfig};
use std::sync::MutexGuard;

pub struct UmemLock<'a> {
    umem: &'a Umem,
    pool: MutexGuard<'a, FramePool>,
}

impl<'a> UmemLock<'a> {
    pub(super) fn new(umem: &'a Umem, pool: MutexGuard<'a, FramePool>) -> Self {
        UmemLock { umem, pool }
    }

    pub fn frames(&self) -> &FramePool {
        &self.pool
    }

    pub fn frames_mut(&mut self) -> &mut FramePool {
        &mut self.pool
    }

    pub fn config(&self) -> &UmemConfig {
        self.umem.config()
    }

    pub fn data_offset(&self) -> u32 {
        self.umem.data_offset()
    }

    /// The UMEM whose ledger this is.
    pub fn umem(&self) -> &Umem {
        self.umem
    }
}
