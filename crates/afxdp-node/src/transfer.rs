//! `NativeAttachedPort`: queues of a port attached on another JS thread (a
//! worker) with the handle of `NativePort.transfer`. It has the methods of
//! `NativePort` that lib/port uses, over just those queues (numbered 0.. in
//! the order of the handle), so a worker gets a whole `Port` over them.
//!
//! Memory across threads: every piece of native memory a worker's JS can
//! touch is owned by something that worker holds. Its UMEM buffers hold an
//! `Arc<Umem>` each (the mapping outlives the port's close), its descriptor
//! slots are its own allocation, and its calls hold the `SharedQueue`s,
//! whose locks make the port's close wait for a burst in progress and then
//! fail every later call with ERR_AFXDP_CLOSED. Nothing a worker uses is
//! freed by another thread.

use std::os::fd::RawFd;
use std::sync::Arc;

use afxdp_core::lease::{Caller, SharedQueue};
use afxdp_core::umem::Umem;
use napi::bindgen_prelude::{ArrayBuffer, Object};
use napi::Env;
use napi_derive::napi;

use crate::error::{invalid, to_js, Result};
use crate::port::{NativeFrameCounts, NativePortInfo, NativeQueueStats, NativeTransfer, PortShared};
use crate::queue_calls::calls_object;
use crate::shared_memory::{external_buffer, DescriptorArea, Region, DESCRIPTOR_ARRAYS};

/// A UMEM kept mapped by the JS buffer over it.
struct HeldUmem(Arc<Umem>);

impl Region for HeldUmem {
    fn base(&self) -> *mut u8 {
        self.0.area().as_ptr()
    }
    fn size(&self) -> usize {
        self.0.area().len()
    }
}

struct Attached {
    queue: Arc<SharedQueue>,
    lease: u64,
    /// Index into `NativeAttachedPort::umems`.
    umem: usize,
}

#[napi]
pub struct NativeAttachedPort {
    port: Arc<PortShared>,
    queues: Vec<Attached>,
    /// The port's UMEM index of each distinct UMEM these queues use.
    umems: Vec<usize>,
    umems_exposed: Vec<bool>,
    descriptors: Arc<DescriptorArea>,
    descriptors_exposed: bool,
}

#[napi]
impl NativeAttachedPort {
    /// Take the queues named by `handle` on this thread (each handle once).
    #[napi(factory)]
    pub fn attach(handle: NativeTransfer) -> Result<NativeAttachedPort> {
        if handle.queues.is_empty() || handle.queues.len() != handle.tokens.len() {
            return Err(invalid("a transfer handle lists at least one queue and one token per queue"));
        }
        let port = PortShared::lookup(handle.port as u64).map_err(to_js)?;
        let mut queues: Vec<Attached> = Vec::with_capacity(handle.queues.len());
        let mut umems: Vec<usize> = Vec::new();
        for (&q, &token) in handle.queues.iter().zip(&handle.tokens) {
            let attached = port
                .queues
                .get(q as usize)
                .ok_or_else(|| invalid(format!("queue index {q} out of range in this handle")))
                .and_then(|queue| Ok((queue.clone(), queue.attach(token as u64).map_err(to_js)?)));
            let (queue, lease) = match attached {
                Ok(a) => a,
                Err(e) => {
                    for a in &queues {
                        a.queue.give_back(a.lease);
                    }
                    return Err(e);
                }
            };
            let u = match umems.iter().position(|&u| u == queue.umem_index()) {
                Some(i) => i,
                None => {
                    umems.push(queue.umem_index());
                    umems.len() - 1
                }
            };
            queues.push(Attached { queue, lease, umem: u });
        }
        let descriptors = Arc::new(DescriptorArea::for_queues(queues.len(), port.burst));
        let umems_exposed = vec![false; umems.len()];
        Ok(NativeAttachedPort { port, queues, umems, umems_exposed, descriptors, descriptors_exposed: false })
    }

    fn queue(&self, q: u32) -> Result<&Attached> {
        self.queues
            .get(q as usize)
            .ok_or_else(|| invalid(format!("queue index {q} out of range (this thread has {} queues)", self.queues.len())))
    }

    /// Fails once the port closed or the queues were given back.
    fn check(&self) -> Result<()> {
        for a in &self.queues {
            drop(a.queue.lock(Caller::Lease(a.lease)).map_err(to_js)?);
        }
        Ok(())
    }

    /// As `NativePort.info`, for the attached queues.
    #[napi]
    pub fn info(&self) -> Result<NativePortInfo> {
        let queues: Vec<usize> = self.queues.iter().map(|a| a.queue.index()).collect();
        self.port.info(&queues, self.umems.len() as u32)
    }

    /// Positions of the attached queues in their port.
    #[napi]
    pub fn port_indexes(&self) -> Vec<u32> {
        self.queues.iter().map(|a| a.queue.index() as u32).collect()
    }

    /// An ArrayBuffer over UMEM `u` (of this thread's numbering) for this
    /// thread; once per UMEM.
    #[napi]
    pub fn umem_buffer<'env>(&mut self, env: &'env Env, u: u32) -> Result<ArrayBuffer<'env>> {
        self.check()?;
        let exposed = self.umems_exposed.get_mut(u as usize).ok_or_else(|| invalid(format!("UMEM index {u} out of range")))?;
        if std::mem::replace(exposed, true) {
            return Err(invalid(format!("the buffer of UMEM {u} was already created; reuse it")));
        }
        let queue = &self.queues.iter().find(|a| a.umem == u as usize).expect("every UMEM has a queue").queue;
        external_buffer(env, Arc::new(HeldUmem(queue.umem().map_err(to_js)?)))
    }

    /// The descriptor slots of these queues: per queue `burst` addresses,
    /// `burst` lengths and `burst` options (u32). Exactly once.
    #[napi]
    pub fn descriptor_buffer<'env>(&mut self, env: &'env Env) -> Result<ArrayBuffer<'env>> {
        if std::mem::replace(&mut self.descriptors_exposed, true) {
            return Err(invalid("the descriptor buffer was already created; reuse it"));
        }
        external_buffer(env, self.descriptors.clone())
    }

    #[napi]
    pub fn umem_of(&self, q: u32) -> Result<u32> {
        Ok(self.queue(q)?.umem as u32)
    }

    /// The burst calls of queue `q`, as `NativePort.queueCalls` has them.
    #[napi(
        ts_return_type = "Record<'rxBurst' | 'txBurst' | 'release' | 'alloc' | 'reap' | 'flushTx' | 'rxPending' | 'txRoom' | 'freeFrames', (...args: Array<number | boolean>) => number>"
    )]
    pub fn queue_calls<'env>(&self, env: &'env Env, q: u32) -> Result<Object<'env>> {
        let a = self.queue(q)?;
        drop(a.queue.lock(Caller::Lease(a.lease)).map_err(to_js)?);
        let burst = self.port.burst;
        calls_object(
            env,
            a.queue.clone(),
            Caller::Lease(a.lease),
            self.descriptors.clone(),
            q as usize * DESCRIPTOR_ARRAYS * burst,
            burst,
        )
    }

    /// Queue `q`'s pending socket error as an errno (0: none; reading clears it).
    #[napi]
    pub fn socket_error(&self, q: u32) -> Result<i32> {
        let guard = self.queue(q)?.queue.inspect().map_err(to_js)?;
        Ok(guard.queue().socket().take_error().unwrap_or(0))
    }

    #[napi]
    pub fn stats(&self, q: u32) -> Result<NativeQueueStats> {
        let queue = &self.queue(q)?.queue;
        let guard = queue.inspect().map_err(to_js)?;
        Ok(NativeQueueStats::new(queue.queue_id(), &guard.queue().stats()))
    }

    /// Frame accounting of UMEM `u` (the whole port's view of it).
    #[napi]
    pub fn frames(&self, u: u32) -> Result<NativeFrameCounts> {
        let u = *self.umems.get(u as usize).ok_or_else(|| invalid(format!("UMEM index {u} out of range")))?;
        self.port.frames(u)
    }

    /// Give the queues back to their port (idempotent): its own calls work
    /// again and this object's fail. Detaches `buffers` (this thread's UMEM
    /// and descriptor buffers) so stale views read as empty; each keeps its
    /// memory until V8 lets go of it.
    #[napi]
    pub fn close(&mut self, buffers: Vec<ArrayBuffer>) {
        for a in &self.queues {
            a.queue.give_back(a.lease);
        }
        for buffer in buffers {
            let _ = buffer.detach();
        }
    }
}

impl NativeAttachedPort {
    pub(crate) fn queue_count(&self) -> usize {
        self.queues.len()
    }

    /// Queue `q`'s socket fd, for a waiter that duplicates it at once (the
    /// queue is locked meanwhile, so the port cannot close it in between).
    pub(crate) fn with_socket_fd<T>(&self, q: u32, f: impl FnOnce(RawFd) -> Result<T>) -> Result<T> {
        let guard = self.queue(q)?.queue.inspect().map_err(to_js)?;
        f(guard.queue().fd())
    }
}

impl Drop for NativeAttachedPort {
    /// The thread ended (terminate, uncaught exception) or the object was
    /// collected without close(): the queues go back to their port.
    fn drop(&mut self) {
        for a in &self.queues {
            a.queue.give_back(a.lease);
        }
    }
}
