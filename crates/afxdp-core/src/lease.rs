//! One queue, used by one thread at a time.
//!
//! A port's queues can be served by different threads (Node worker
//! threads, `afxdp fwd --nb-cores`). Each queue sits behind its own lock,
//! never a port-wide one, so threads serving different queues never contend;
//! with one UMEM per queue (the default) a burst touches nothing another
//! thread touches. The lock is taken once per burst and is uncontended
//! unless the port closes or reads statistics at that moment.
//!
//! Who may run bursts is the queue's `Holder`: the port itself, or one
//! lease handed out by `attach`. `transfer` starts a hand-over (the port's
//! own calls fail with ERR_AFXDP_TRANSFERRED from then on), `attach` takes
//! it on the receiving thread, `give_back` ends it. Closing the port takes
//! the queue out (its socket closes at once); later calls from any thread
//! fail with ERR_AFXDP_CLOSED. The UMEM stays mapped while anything holds
//! this struct (its `Arc<Umem>`), so a thread that still has a view of the
//! frames never reads unmapped memory.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::queue::Queue;
use crate::umem::Umem;
use crate::{Code, Error, Result};

/// Who is calling: the port's own thread, or the holder of a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Port,
    Lease(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    Port,
    /// Handed over, not yet attached: the token `attach` must show.
    Transit(u64),
    /// Attached elsewhere under this lease.
    Away(u64),
}

struct Slot {
    /// None once the port closed.
    queue: Option<Queue>,
    /// The queue's UMEM, dropped with it: the mapping then lives on only in
    /// the JS buffers over it (each holds its own `Arc<Umem>`).
    umem: Option<Arc<Umem>>,
    holder: Holder,
}

pub struct SharedQueue {
    slot: Mutex<Slot>,
    index: usize,
    // Facts fixed at open, readable without the lock.
    queue_id: u32,
    umem_index: usize,
    zero_copy: bool,
    /// The socket's fd: valid until the port closes (see `close`).
    fd: RawFd,
}

/// Tokens and leases are unique in the process, so a stale handle or a
/// finished lease can never match a later one.
fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A queue locked for one operation, with its UMEM.
pub struct QueueGuard<'a> {
    slot: MutexGuard<'a, Slot>,
}

impl QueueGuard<'_> {
    pub fn queue(&self) -> &Queue {
        self.slot.queue.as_ref().expect("checked at lock")
    }

    pub fn queue_mut(&mut self) -> &mut Queue {
        self.slot.queue.as_mut().expect("checked at lock")
    }

    fn split(&mut self) -> (&mut Queue, &Umem) {
        let Slot { queue, umem, .. } = &mut *self.slot;
        (queue.as_mut().expect("checked at lock"), umem.as_deref().expect("closed with the queue"))
    }

    /// Receive up to `addrs.len()` descriptors with their options; see
    /// `Queue::rx_burst`. An idle queue returns before the UMEM's ledger is
    /// locked.
    pub fn rx_burst(&mut self, addrs: &mut [u32], lens: &mut [u32], opts: &mut [u32]) -> usize {
        let (queue, umem) = self.split();
        if queue.rx_idle(umem) {
            return 0;
        }
        queue.rx_burst(&mut umem.lock(), addrs, lens, opts)
    }

    /// Transmit App-owned frames with their descriptor options; returns how
    /// many were posted (a prefix of whole packets).
    pub fn tx_burst(&mut self, addrs: &[u32], lens: &[u32], opts: &[u32]) -> Result<usize> {
        let (queue, umem) = self.split();
        queue.tx_burst(&mut umem.lock(), addrs, lens, opts)
    }

    /// `tx_burst`, then the frames the ring did not take back to the pool,
    /// under one ledger lock. The posted prefix ends on a packet's last
    /// fragment, so what is dropped is whole packets too.
    pub fn tx_burst_or_drop(&mut self, addrs: &[u32], lens: &[u32], opts: &[u32]) -> Result<usize> {
        let (queue, umem) = self.split();
        let mut ledger = umem.lock();
        let sent = queue.tx_burst(&mut ledger, addrs, lens, opts)?;
        if sent < addrs.len() {
            queue.release(&mut ledger, &addrs[sent..])?;
        }
        Ok(sent)
    }

    /// Give App-owned frames back to the pool.
    pub fn release(&mut self, addrs: &[u32]) -> Result<()> {
        let (queue, umem) = self.split();
        queue.release(&mut umem.lock(), addrs)
    }

    /// Take free frames for the application (transmit-only use).
    pub fn alloc(&mut self, out: &mut [u32]) -> usize {
        let (queue, umem) = self.split();
        queue.alloc(&mut umem.lock(), out)
    }

    /// Move completed tx frames back to the pool.
    pub fn reap(&mut self) -> usize {
        let (queue, umem) = self.split();
        queue.reap(&mut umem.lock())
    }

    /// Kick the tx ring if it holds descriptors, then reap; see `Queue::flush_tx`.
    pub fn flush_tx(&mut self) -> usize {
        let (queue, umem) = self.split();
        queue.flush_tx(&mut umem.lock())
    }

    /// Reap completions, then the free frames of the UMEM (what `alloc` and
    /// refills can take now).
    pub fn free_frames(&mut self) -> u32 {
        let (queue, umem) = self.split();
        let mut ledger = umem.lock();
        queue.reap(&mut ledger);
        ledger.frames().free_count()
    }
}

impl SharedQueue {
    pub fn new(queue: Queue, umem: Arc<Umem>, index: usize) -> SharedQueue {
        SharedQueue {
            queue_id: queue.queue_id(),
            umem_index: queue.umem_index(),
            zero_copy: queue.zero_copy(),
            fd: queue.fd(),
            slot: Mutex::new(Slot { queue: Some(queue), umem: Some(umem), holder: Holder::Port }),
            index,
        }
    }

    /// Position of this queue in its port.
    pub fn index(&self) -> usize {
        self.index
    }

    pub fn queue_id(&self) -> u32 {
        self.queue_id
    }

    /// Which of the port's UMEMs this queue uses.
    pub fn umem_index(&self) -> usize {
        self.umem_index
    }

    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// The socket's fd number; valid only while the port is open (the port
    /// closes it), so callers that keep it must dup it first.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// The queue's UMEM, while the port is open.
    pub fn umem(&self) -> Result<Arc<Umem>> {
        Ok(self.open_slot()?.umem.clone().expect("closed with the queue"))
    }

    fn slot(&self) -> MutexGuard<'_, Slot> {
        // A panic inside a burst leaves the rings consistent (indexes are
        // published last), so a poisoned lock is still usable.
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn open_slot(&self) -> Result<MutexGuard<'_, Slot>> {
        let slot = self.slot();
        if slot.queue.is_none() {
            return Err(Error::new(
                Code::Closed,
                format!("queue {} is closed (its port was closed); open a new port", self.index),
            ));
        }
        Ok(slot)
    }

    /// The queue for a burst by `caller`: ERR_AFXDP_CLOSED once the port
    /// closed, ERR_AFXDP_TRANSFERRED while another thread holds it.
    pub fn lock(&self, caller: Caller) -> Result<QueueGuard<'_>> {
        let slot = self.open_slot()?;
        let mine = match (caller, slot.holder) {
            (Caller::Port, Holder::Port) => true,
            (Caller::Lease(l), Holder::Away(h)) => l == h,
            _ => false,
        };
        if !mine {
            let message = match (caller, slot.holder) {
                (Caller::Port, _) => format!(
                    "queue {} was transferred to another thread (queue.transfer()); use it there, or wait until that \
                     thread gives it back (its queue.close() or the thread's exit)",
                    self.index
                ),
                _ => format!(
                    "this handle of queue {} is no longer attached (given back, or attached again elsewhere); \
                     transfer the queue again to use it here",
                    self.index
                ),
            };
            return Err(Error::new(Code::Transferred, message));
        }
        Ok(QueueGuard { slot })
    }

    /// The queue for reading (statistics, occupancy, fd), whoever holds it.
    pub fn inspect(&self) -> Result<QueueGuard<'_>> {
        Ok(QueueGuard { slot: self.open_slot()? })
    }

    /// Start handing the queue to another thread: the port's own calls fail
    /// from now on. Returns the token `attach` takes.
    pub fn transfer(&self) -> Result<u64> {
        let mut slot = self.open_slot()?;
        match slot.holder {
            Holder::Port => {
                let token = next_id();
                slot.holder = Holder::Transit(token);
                Ok(token)
            }
            _ => Err(Error::new(
                Code::Transferred,
                format!("queue {} was already transferred; transfer it again once it is given back", self.index),
            )),
        }
    }

    /// Take the queue on this thread with the token from `transfer`; returns
    /// the lease its calls carry. Each token works once.
    pub fn attach(&self, token: u64) -> Result<u64> {
        let mut slot = self.open_slot()?;
        if slot.holder != Holder::Transit(token) {
            return Err(Error::new(
                Code::Transferred,
                format!(
                    "this handle of queue {} was already attached, or the transfer was cancelled; each \
                     queue.transfer() handle attaches once",
                    self.index
                ),
            ));
        }
        let lease = next_id();
        slot.holder = Holder::Away(lease);
        Ok(lease)
    }

    /// End a lease (the holder closed its queue or its thread ended): the
    /// port's own calls work again. A stale lease does nothing.
    pub fn give_back(&self, lease: u64) -> bool {
        let mut slot = self.slot();
        if slot.holder == Holder::Away(lease) {
            slot.holder = Holder::Port;
            return true;
        }
        false
    }

    /// Cancel a transfer that was never attached (the receiving thread died
    /// first); true if one was cancelled.
    pub fn cancel_transfer(&self) -> bool {
        let mut slot = self.slot();
        if matches!(slot.holder, Holder::Transit(_)) {
            slot.holder = Holder::Port;
            return true;
        }
        false
    }

    /// Whether the port itself may use the queue now.
    pub fn at_port(&self) -> bool {
        self.slot().holder == Holder::Port
    }

    /// Take the queue out for good (the port closes): its socket closes
    /// when the caller drops it, after any burst in progress on another
    /// thread has finished (the lock waits for it).
    pub fn close(&self) -> Option<(Queue, Arc<Umem>)> {
        let mut slot = self.slot();
        let queue = slot.queue.take()?;
        Some((queue, slot.umem.take().expect("closed with the queue")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn shared_queue_is_send_and_sync() {
        assert_send_sync::<SharedQueue>();
    }
}
