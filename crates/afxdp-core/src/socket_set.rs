//! A socket set: `queue_count` consecutive queues of one interface, each
//! with an AF_XDP socket, over one UMEM per queue (like DPDK) or one shared
//! UMEM, which may also be another port's (`UmemJoin`: XDP_SHARED_UMEM
//! across interfaces, Linux >= 5.10). Every `port::Port` owns one.
//!
//! The socket set only creates and binds sockets; steering packets into them (an
//! XSKMAP entry per queue) is the caller's `insert` callback, so the same
//! code serves our own redirect program, a user's program and a map handed
//! over by the Device Plugin. Used from one thread at a time; Send so the
//! binding can move it.

use crate::lease::{Caller, QueueGuard, SharedQueue};
use crate::queue::{Queue, QueueStats};
use crate::socket::{BindMode, RingSizes, XskSocket};
use crate::umem::budget::{self, MemoryLimits};
use crate::umem::{Umem, UmemConfig, UmemMember};
use crate::{limits, Code, Error, Result};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a port needs to use another port's UMEM: the UMEM itself and a
/// bound socket of it (the XDP_SHARED_UMEM bind names that socket's fd).
/// Borrowed from the owning port, so that port stays open while joining.
pub struct UmemJoin<'a> {
    pub umem: Arc<Umem>,
    pub socket: BorrowedFd<'a>,
    /// The owning port's interface, for messages.
    pub ifname: String,
    /// The owner's sockets are multi-buffer (the joiner's inherit it).
    pub multi_buffer: bool,
}

/// The sockets of a `SocketSet`: queues, rings, UMEM. Not the TS `PortConfig`
/// (lib/config), which also says where the XSKMAP comes from: that part is
/// `port::OpenRequest`, which holds one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketSetConfig {
    /// Interface name (messages) and index (bind); both in the caller's netns.
    pub ifname: String,
    pub ifindex: u32,
    pub start_queue: u32,
    pub queue_count: u32,
    /// One UMEM for all queues (XDP_SHARED_UMEM) instead of one per queue.
    pub shared_umem: bool,
    /// Bind with XDP_COPY; otherwise the kernel picks zero-copy if it can.
    pub force_copy: bool,
    /// XDP_USE_NEED_WAKEUP: syscalls only when the kernel asks for them.
    pub need_wakeup: bool,
    /// XDP_USE_SG: multi-buffer sockets, packets larger than a frame as
    /// chains (`chain`; Linux >= 6.6). Resolved (port::MultiBuffer::Auto
    /// decides by MTU in `Port::open`). A port joining another's UMEM
    /// inherits the owner's mode whatever this says.
    pub multi_buffer: bool,
    pub rx_size: u32,
    pub tx_size: u32,
    pub umem: UmemConfig,
}

impl Default for SocketSetConfig {
    fn default() -> Self {
        SocketSetConfig {
            ifname: String::new(),
            ifindex: 0,
            start_queue: 0,
            queue_count: 1,
            shared_umem: false,
            force_copy: false,
            need_wakeup: true,
            multi_buffer: false,
            rx_size: 2048,
            tx_size: 2048,
            umem: UmemConfig::default(),
        }
    }
}

impl SocketSetConfig {
    pub fn validate(&self) -> Result<()> {
        if self.ifname.is_empty() || self.ifindex == 0 {
            return Err(Error::invalid("a port needs an interface name and its ifindex"));
        }
        if self.queue_count == 0 || self.queue_count > limits::MAX_QUEUE_COUNT {
            return Err(Error::invalid(format!(
                "queue_count {} must be between 1 and {}",
                self.queue_count,
                limits::MAX_QUEUE_COUNT
            )));
        }
        if self.start_queue > limits::MAX_QUEUE_ID {
            return Err(Error::new(
                Code::QueueOutOfRange,
                format!("start_queue {} must be at most {}", self.start_queue, limits::MAX_QUEUE_ID),
            ));
        }
        if self.start_queue.checked_add(self.queue_count).is_none() {
            return Err(Error::new(
                Code::QueueOutOfRange,
                format!("start_queue {} + queue_count {} overflows", self.start_queue, self.queue_count),
            ));
        }
        for (name, v) in [("rx_size", self.rx_size), ("tx_size", self.tx_size)] {
            limits::check_ring_size(name, v)?;
        }
        self.umem.validate()
    }
}

/// Where the frames of one UMEM are. The parts always sum to `total`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameCounts {
    pub total: u32,
    /// In the pool, available for fill or alloc.
    pub free: u32,
    /// Posted on fill rings, not yet taken by the kernel.
    pub fill_ring: u32,
    /// Received, waiting on rx rings.
    pub rx_ring: u32,
    /// Held by the application.
    pub app: u32,
    /// Posted on tx rings, not yet taken by the kernel.
    pub tx_ring: u32,
    /// Transmitted, waiting on completion rings.
    pub completion_ring: u32,
    /// Held by the kernel between rings (being received or transmitted, or
    /// parked in its internal free list after a drop).
    pub in_kernel: u32,
}

impl FrameCounts {
    pub fn sum(&self) -> u32 {
        self.free + self.fill_ring + self.rx_ring + self.app + self.tx_ring + self.completion_ring + self.in_kernel
    }
}

/// Bind, retrying EBUSY for a short while. Closing an XSK releases its
/// (interface, queue) slot asynchronously: the kernel defers the buffer
/// pool teardown to a workqueue that also needs rtnl_lock, so a port
/// reopened right after a close (or while other namespaces are being torn
/// down) can briefly see the queue as busy. A queue that stays busy is
/// reported after ~1 s.
fn bind_retrying_busy(sock: &mut XskSocket, cfg: &SocketSetConfig, queue_id: u32, mode: BindMode) -> Result<()> {
    let deadline = Instant::now() + BUSY_RETRY;
    let mut pause = Duration::from_millis(1);
    loop {
        match sock.bind(&cfg.ifname, cfg.ifindex, queue_id, mode) {
            Err(e) if e.code == Code::QueueBusy && Instant::now() + pause < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

const BUSY_RETRY: Duration = Duration::from_millis(1000);

pub struct SocketSet {
    // Declared before `umems`: sockets close (releasing their UMEM
    // references) before the memory is unmapped. A shared UMEM is unmapped
    // only when the last port (or JS view) holding it is gone.
    queues: Vec<Arc<SharedQueue>>,
    umems: Vec<Arc<Umem>>,
    config: SocketSetConfig,
    /// Distinguishes this socket set among a shared UMEM's members.
    id: u64,
    /// UMEM 0 came from another port's socket set.
    joined: bool,
}

static NEXT_SOCKET_SET_ID: AtomicU64 = AtomicU64::new(1);

/// RLIMIT_MEMLOCK refused one UMEM of several: the limit must cover the
/// port's total, so say that rather than the one UMEM's size.
fn memlock_total(e: Error, umem_bytes: u64, port_bytes: u64, umems: usize) -> Error {
    if e.code != Code::Memlock || e.errno != Some(libc::ENOBUFS) || umems < 2 {
        return e;
    }
    Error::with_errno(Code::Memlock, libc::ENOBUFS, crate::socket::memlock_message(umem_bytes, port_bytes, umems))
}

/// The kernel refused an XDP_SHARED_UMEM bind to another port's socket:
/// say which interfaces and what to do instead.
fn join_refused(e: Error, cfg: &SocketSetConfig, queue_id: u32, owner_ifname: &str) -> Error {
    let refused = matches!(e.errno, Some(libc::EINVAL) | Some(libc::EOPNOTSUPP))
        && !matches!(e.code, Code::NoSuchInterface | Code::QueueOutOfRange);
    if !refused {
        return e;
    }
    Error {
        code: Code::NotSupported,
        errno: e.errno,
        path: None,
        message: format!(
            "the kernel refused to share the UMEM of {owner_ifname} with {} queue {queue_id} ({}): sharing a UMEM \
             across interfaces needs Linux >= 5.10, and zero-copy only works on one device (force_copy=1 makes \
             both ports copy mode); or open the ports without shared_umem (each with its own UMEM)",
            cfg.ifname,
            std::io::Error::from_raw_os_error(e.errno.unwrap_or(libc::EINVAL)),
        ),
    }
}

impl SocketSet {
    /// Create the UMEM(s) and sockets, bind every queue, pre-fill the fill
    /// rings, then call `insert(queue_id, fd)` for each socket (the caller
    /// puts it into an XSKMAP). Must run in the interface's network namespace.
    pub fn open(cfg: &SocketSetConfig, insert: &mut dyn FnMut(u32, RawFd) -> Result<()>) -> Result<SocketSet> {
        Self::open_joining(cfg, None, insert)
    }

    /// `open`, with every queue on another port's UMEM when `join` is given
    /// (the frame settings of `cfg.umem` must match it; its fill and
    /// completion ring sizes are this socket set's own).
    pub fn open_joining(
        cfg: &SocketSetConfig,
        join: Option<UmemJoin<'_>>,
        insert: &mut dyn FnMut(u32, RawFd) -> Result<()>,
    ) -> Result<SocketSet> {
        let umems = Self::allocate_umems(cfg, join.is_some())?;
        Self::open_allocated(cfg, join, umems, insert)
    }

    /// UMEMs a socket set with `cfg` owns: none when joining another port's, one
    /// with shared_umem, else one per queue.
    pub fn umems_needed(cfg: &SocketSetConfig, joining: bool) -> u32 {
        match (joining, cfg.shared_umem) {
            (true, _) => 0,
            (false, true) => 1,
            (false, false) => cfg.queue_count,
        }
    }

    /// Validate `cfg`, check that its UMEMs fit the memory this process
    /// may use (`umem::budget`), and map them. Done before anything is
    /// attached, so a failure leaves nothing behind.
    pub fn allocate_umems(cfg: &SocketSetConfig, joining: bool) -> Result<Vec<Arc<Umem>>> {
        cfg.validate()?;
        let n = Self::umems_needed(cfg, joining);
        let limits = MemoryLimits::read();
        budget::check(&format!("the port on {}", cfg.ifname), n, cfg.umem.size() as u64, cfg.umem.hugepages, &limits)?;
        (0..n).map(|_| Umem::new(&cfg.umem).map(Arc::new)).collect()
    }

    /// `open_joining` over UMEMs from `allocate_umems` (same `cfg`, same
    /// `join`).
    pub fn open_allocated(
        cfg: &SocketSetConfig,
        join: Option<UmemJoin<'_>>,
        allocated: Vec<Arc<Umem>>,
        insert: &mut dyn FnMut(u32, RawFd) -> Result<()>,
    ) -> Result<SocketSet> {
        cfg.validate()?;
        if allocated.len() as u32 != Self::umems_needed(cfg, join.is_some()) {
            return Err(Error::invalid("open_allocated: the UMEMs do not match the port configuration"));
        }
        if let Some(j) = &join {
            if let Some((name, theirs, ours)) = j.umem.frame_mismatch(&cfg.umem) {
                return Err(Error::invalid(format!(
                    "{} cannot share the UMEM of {}: {name} is {ours} here but {theirs} there; give both ports \
                     the same frame settings (frame size, frame count, headroom, hugepages) or do not share",
                    cfg.ifname, j.ifname
                )));
            }
        }
        let id = NEXT_SOCKET_SET_ID.fetch_add(1, Ordering::Relaxed);
        // Each queue lends the kernel at most half its fill ring and its
        // share of half the UMEM (see `Queue::refill`), so `alloc`
        // (transmit-only use) always finds frames.
        let sizes =
            RingSizes { rx: cfg.rx_size, tx: cfg.tx_size, fill: Some(cfg.umem.fill_size), comp: Some(cfg.umem.comp_size) };
        let mut queues: Vec<Queue> = Vec::with_capacity(cfg.queue_count as usize);
        let joined = join.is_some();
        // The kernel gives XDP_SHARED_UMEM sockets the UMEM owner's mode.
        let cfg = &SocketSetConfig { multi_buffer: join.as_ref().map_or(cfg.multi_buffer, |j| j.multi_buffer), ..cfg.clone() };
        let (mut umems, owner_fd, owner_ifname) = match join {
            Some(j) => (vec![j.umem], Some(j.socket.as_raw_fd()), j.ifname),
            None => (Vec::new(), None, String::new()),
        };
        let port_bytes: u64 = allocated.iter().map(|u| u.area().len() as u64).sum();
        let umem_count = allocated.len();
        let mut allocated = allocated.into_iter();
        for i in 0..cfg.queue_count {
            let queue_id = cfg.start_queue + i;
            let mut sock = XskSocket::new()?;
            let (umem, mode) = if let Some(fd) = owner_fd {
                // Another port's UMEM (maybe on another interface): the
                // kernel creates a buffer pool for this (interface, queue)
                // over it, fed by this socket's own fill ring.
                (0, BindMode::SharedWith(fd))
            } else if cfg.shared_umem && i > 0 {
                // Another queue of the same interface: the kernel creates a
                // separate buffer pool over the same UMEM, fed by this
                // socket's own fill ring.
                (0, BindMode::SharedWith(queues[0].fd()))
            } else {
                let u = allocated.next().expect("umems_needed UMEMs were allocated");
                sock.register_umem(&u).map_err(|e| memlock_total(e, u.area().len() as u64, port_bytes, umem_count))?;
                umems.push(u);
                (
                    umems.len() - 1,
                    BindMode::Owner { need_wakeup: cfg.need_wakeup, force_copy: cfg.force_copy, multi_buffer: cfg.multi_buffer },
                )
            };
            let rings = sock.create_rings(&sizes)?;
            bind_retrying_busy(&mut sock, cfg, queue_id, mode).map_err(|e| {
                if joined {
                    join_refused(e, cfg, queue_id, &owner_ifname)
                } else {
                    e
                }
            })?;
            let member = UmemMember::join(&umems[umem], id, &cfg.ifname);
            queues.push(Queue::new(sock, rings, umem, member, cfg.need_wakeup, cfg.multi_buffer)?);
        }
        for q in queues.iter_mut() {
            q.refill(&mut umems[q.umem_index()].lock());
        }
        for q in &queues {
            insert(q.queue_id(), q.fd())?;
        }
        let queues = queues
            .into_iter()
            .enumerate()
            .map(|(i, q)| {
                let umem = umems[q.umem_index()].clone();
                Arc::new(SharedQueue::new(q, umem, i))
            })
            .collect();
        Ok(SocketSet { queues, umems, config: cfg.clone(), id, joined })
    }

    /// What another port needs to share UMEM `u` (see `open_joining`).
    pub fn umem_join(&self, u: usize) -> UmemJoin<'_> {
        let q = self.queues.iter().find(|q| q.umem_index() == u).expect("every UMEM has a queue");
        // SAFETY: the socket lives as long as `self`, which the join borrows.
        let socket = unsafe { BorrowedFd::borrow_raw(q.fd()) };
        UmemJoin {
            umem: self.umems[u].clone(),
            socket,
            ifname: self.config.ifname.clone(),
            multi_buffer: self.config.multi_buffer,
        }
    }

    /// Whether UMEM 0 belongs to another port (this socket set joined it).
    pub fn joined(&self) -> bool {
        self.joined
    }

    /// Interfaces of the other ports using UMEM `u` right now (empty when
    /// the UMEM is this socket set's alone).
    pub fn umem_shared_with(&self, u: usize) -> Vec<String> {
        self.umems[u].interfaces_besides(self.id)
    }

    pub fn config(&self) -> &SocketSetConfig {
        &self.config
    }

    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    /// An error unless `q` is a valid queue index (the burst methods panic
    /// on a bad index; bindings should check first).
    pub fn check_queue(&self, q: usize) -> Result<()> {
        if q < self.queues.len() {
            Ok(())
        } else {
            Err(Error::new(
                Code::QueueOutOfRange,
                format!("queue index {q} out of range: this port has {} queue(s)", self.queues.len()),
            ))
        }
    }

    pub fn queue_id(&self, q: usize) -> u32 {
        self.queues[q].queue_id()
    }

    pub fn fd(&self, q: usize) -> RawFd {
        self.queues[q].fd()
    }

    pub fn umem_count(&self) -> usize {
        self.umems.len()
    }

    /// Which UMEM queue `q` uses.
    pub fn umem_of(&self, q: usize) -> usize {
        self.queues[q].umem_index()
    }

    /// Base pointer and length of UMEM `u` (for a view over it).
    pub fn umem_area(&self, u: usize) -> (*mut u8, usize) {
        let a = self.umems[u].area();
        (a.as_ptr(), a.len())
    }

    pub fn umem(&self, u: usize) -> &Arc<Umem> {
        &self.umems[u]
    }

    /// Whether every UMEM of the socket set is backed by hugepages.
    pub fn hugepages(&self) -> bool {
        self.umems.iter().all(|u| u.area().hugepages())
    }

    pub fn zero_copy(&self, q: usize) -> bool {
        self.queues[q].zero_copy()
    }

    /// Queue `q` locked for the port's own use (fails while it is
    /// transferred to another thread; see `lease`).
    pub fn lock(&self, q: usize) -> Result<QueueGuard<'_>> {
        self.check_queue(q)?;
        self.queues[q].lock(Caller::Port)
    }

    /// Queue `q`, shareable with the thread that will serve it.
    pub fn shared_queue(&self, q: usize) -> Result<&Arc<SharedQueue>> {
        self.check_queue(q)?;
        Ok(&self.queues[q])
    }

    /// Receive up to `addrs.len()` descriptors on queue `q`, with their
    /// options; see `Queue::rx_burst`.
    pub fn rx_burst(&self, q: usize, addrs: &mut [u32], lens: &mut [u32], opts: &mut [u32]) -> Result<usize> {
        Ok(self.lock(q)?.rx_burst(addrs, lens, opts))
    }

    /// Transmit App-owned frames on queue `q`; returns how many were posted
    /// (a prefix). See `Queue::tx_burst`.
    pub fn tx_burst(&self, q: usize, addrs: &[u32], lens: &[u32], opts: &[u32]) -> Result<usize> {
        self.lock(q)?.tx_burst(addrs, lens, opts)
    }

    /// Give App-owned frames back to the pool of queue `q`'s UMEM.
    pub fn release(&self, q: usize, addrs: &[u32]) -> Result<()> {
        self.lock(q)?.release(addrs)
    }

    /// Take free frames for the application (transmit-only use).
    pub fn alloc(&self, q: usize, out: &mut [u32]) -> Result<usize> {
        Ok(self.lock(q)?.alloc(out))
    }

    /// Move completed tx frames back to the pool.
    pub fn reap(&self, q: usize) -> Result<usize> {
        Ok(self.lock(q)?.reap())
    }

    /// Bytes of an App-owned frame of queue `q`'s UMEM.
    pub fn packet(&self, q: usize, addr: u32, len: u32) -> Result<&[u8]> {
        self.check_queue(q)?;
        self.umems[self.queues[q].umem_index()].packet(addr, len)
    }

    pub fn packet_mut(&mut self, q: usize, addr: u32, len: u32) -> Result<&mut [u8]> {
        self.check_queue(q)?;
        self.umems[self.queues[q].umem_index()].packet_mut(addr, len)
    }

    /// Frame accounting of UMEM `u`. The ledger covers every port using
    /// the UMEM; ring occupancies are read from this socket set's queues only, so
    /// with a UMEM shared across ports the frames on the other ports' fill,
    /// rx, tx and completion rings count as `in_kernel` here.
    pub fn frames(&self, u: usize) -> FrameCounts {
        let owners = self.umems[u].owner_counts();
        let (mut fill, mut rx, mut tx, mut comp) = (0u32, 0u32, 0u32, 0u32);
        for q in self.queues.iter().filter(|q| q.umem_index() == u) {
            let Ok(q) = q.inspect() else { continue };
            let o = q.queue().occupancy();
            fill += o.fill;
            rx += o.rx;
            tx += o.tx;
            comp += o.completion;
        }
        // Clamp against the owner counts so the parts always add up even if
        // the kernel moved frames while we were reading.
        let rx_ring = rx.min(owners.fill);
        let fill_ring = fill.min(owners.fill - rx_ring);
        let completion_ring = comp.min(owners.tx);
        let tx_ring = tx.min(owners.tx - completion_ring);
        FrameCounts {
            total: self.umems[u].config().frame_count,
            free: owners.free,
            fill_ring,
            rx_ring,
            app: owners.app,
            tx_ring,
            completion_ring,
            in_kernel: (owners.fill - rx_ring - fill_ring) + (owners.tx - completion_ring - tx_ring),
        }
    }

    /// Kick queue `q`'s tx ring if it holds descriptors, then reap; see
    /// `Queue::flush_tx`.
    pub fn flush_tx(&self, q: usize) -> Result<usize> {
        Ok(self.lock(q)?.flush_tx())
    }

    /// Packets waiting on queue `q`'s rx ring (nothing consumed, no syscall).
    pub fn rx_pending(&self, q: usize) -> Result<u32> {
        Ok(self.queues[q].inspect()?.queue().rx_pending())
    }

    /// Free tx ring slots of queue `q`.
    pub fn tx_room(&self, q: usize) -> Result<u32> {
        Ok(self.queues[q].inspect()?.queue().tx_room())
    }

    /// Reap queue `q`'s completions, then the free frames of its UMEM.
    pub fn free_frames(&self, q: usize) -> Result<u32> {
        Ok(self.lock(q)?.free_frames())
    }

    /// Queue `q`'s socket error, if any (clears it): ENETDOWN once the
    /// interface is gone. See `XskSocket::take_error`.
    pub fn socket_error(&self, q: usize) -> Result<Option<i32>> {
        Ok(self.queues[q].inspect()?.queue().socket().take_error())
    }

    /// Block up to `timeout_ms` until queue `q` is readable/writable (see
    /// `Queue::wait`). For the thread that owns the socket set (the queue
    /// stays locked meanwhile); event loops watch `fd(q)` instead.
    pub fn wait(&self, q: usize, events: libc::c_short, timeout_ms: i32) -> Result<libc::c_short> {
        self.lock(q)?.queue().wait(events, timeout_ms)
    }

    pub fn stats(&self, q: usize) -> Result<QueueStats> {
        Ok(self.queues[q].inspect()?.queue().stats())
    }

    /// Every queue skips `n` bytes at the start of received packets (see
    /// `Queue::set_rx_prefix`).
    pub fn set_rx_prefix(&self, n: u32) -> Result<()> {
        for q in &self.queues {
            q.inspect()?.queue().set_rx_prefix(n);
        }
        Ok(())
    }

    /// Preferred busy polling on every queue (see `XskSocket::set_busy_poll`).
    pub fn set_busy_poll(&self, timeout_us: u32, budget: u32) -> Result<()> {
        for q in &self.queues {
            q.inspect()?.queue().set_busy_poll(timeout_us, budget)?;
        }
        Ok(())
    }
}

impl Drop for SocketSet {
    /// Close every socket now, even those whose `SharedQueue` another thread
    /// still holds: that thread's next call fails with ERR_AFXDP_CLOSED.
    /// Runs before `umems` drops (the struct's fields drop after this).
    fn drop(&mut self) {
        for q in &self.queues {
            drop(q.close());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn socket_set_is_send() {
        assert_send::<SocketSet>();
    }

    #[test]
    fn config_validation() {
        let ok = SocketSetConfig { ifname: "eth0".into(), ifindex: 2, ..Default::default() };
        ok.validate().unwrap();
        assert!(SocketSetConfig { ifindex: 0, ..ok.clone() }.validate().is_err());
        assert!(SocketSetConfig { queue_count: 0, ..ok.clone() }.validate().is_err());
        assert!(SocketSetConfig { rx_size: 1000, ..ok.clone() }.validate().is_err());
        assert_eq!(
            SocketSetConfig { start_queue: u32::MAX, queue_count: 2, ..ok.clone() }.validate().unwrap_err().code,
            Code::QueueOutOfRange
        );
        let bad_umem = UmemConfig { frame_size: 1000, ..Default::default() };
        assert!(SocketSetConfig { umem: bad_umem, ..ok }.validate().is_err());
    }

    #[test]
    fn a_refused_join_names_both_interfaces_and_the_fix() {
        let cfg = SocketSetConfig { ifname: "ethB".into(), ifindex: 3, ..Default::default() };
        let e = join_refused(Error::with_errno(Code::NotSupported, libc::EOPNOTSUPP, "bind"), &cfg, 2, "ethA");
        assert_eq!(e.code, Code::NotSupported);
        assert!(e.message.contains("ethA") && e.message.contains("ethB queue 2"), "{}", e.message);
        assert!(e.message.contains("without shared_umem"), "{}", e.message);
        // Errors with their own diagnosis pass through.
        let busy = Error::with_errno(Code::QueueBusy, libc::EBUSY, "busy");
        assert_eq!(join_refused(busy, &cfg, 0, "ethA").code, Code::QueueBusy);
    }

    #[test]
    fn open_on_missing_interface_fails_cleanly() {
        let cfg = SocketSetConfig {
            ifname: "afxdp-none".into(),
            ifindex: 0x7fff_0000,
            umem: UmemConfig { frame_count: 64, fill_size: 64, comp_size: 64, ..Default::default() },
            rx_size: 64,
            tx_size: 64,
            ..Default::default()
        };
        let mut called = false;
        let e = SocketSet::open(&cfg, &mut |_, _| {
            called = true;
            Ok(())
        })
        .err()
        .expect("binding to a missing ifindex must fail");
        assert_eq!(e.code, Code::NoSuchInterface, "{e}");
        assert!(!called);
    }
}
