//! One queue of a port: an XSK bound to one (interface, queue) with its four
//! rings, its share of a UMEM and software counters. Every operation works
//! on a batch and moves frames between owners in the UMEM's `FramePool`;
//! nothing here allocates.

use crate::chain;
use crate::ring::{CompletionRing, FillRing, RxRing, TxRing};
use crate::socket::options::Kick;
use crate::socket::{XskRings, XskSocket};
use crate::umem::{Owner, Umem, UmemLock, UmemMember};
use crate::{Error, Result};
use std::cell::Cell;
use std::os::fd::RawFd;
use std::sync::atomic::{fence, Ordering};

/// Software counters plus the kernel's XDP_STATISTICS for one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Packets received (a chain of fragments counts once).
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Descriptors received: packets plus the extra fragments of chains.
    pub rx_descs: u64,
    /// Packets posted to the tx ring (a chain counts once).
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Descriptors posted to the tx ring.
    pub tx_descs: u64,
    /// Tx frames the kernel returned on the completion ring.
    pub tx_completed: u64,
    /// sendto() kicks and recvfrom() wakeups issued.
    pub tx_kicks: u64,
    pub rx_wakeups: u64,
    /// Descriptors from the kernel naming a frame we had not lent it;
    /// always 0 unless something is badly wrong. Such frames are not used.
    pub ring_anomalies: u64,
    /// Kicks/wakeups that failed with an unexpected errno.
    pub wakeup_errors: u64,
    // XDP_STATISTICS
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty_descs: u64,
    pub tx_ring_empty_descs: u64,
}

/// Ring occupancies of one queue, read downstream-first (rx before fill,
/// completion before tx) so a frame moving between the two rings during the
/// reads is never counted twice.
#[derive(Debug, Clone, Copy, Default)]
pub struct RingOccupancy {
    pub fill: u32,
    pub rx: u32,
    pub tx: u32,
    pub completion: u32,
}

pub struct Queue {
    rx: RxRing,
    tx: TxRing,
    fill: FillRing,
    comp: CompletionRing,
    socket: XskSocket,
    queue_id: u32,
    umem: usize,
    zero_copy: bool,
    /// Bound with XDP_USE_SG: descriptors may be chained (`chain`).
    multi_buffer: bool,
    /// Most descriptors of one tx packet (`chain::check_tx`).
    max_segs: u32,
    need_wakeup: bool,
    busy_poll: Cell<bool>,
    /// Bytes the XDP program prepended to every packet (RX metadata as a
    /// prefix, bpf/meta.bpf.c): rx_burst hands out addr + n, len - n.
    rx_prefix: Cell<u32>,
    /// The last descriptor received was not the last of its packet.
    rx_mid_chain: Cell<bool>,
    /// Most frames this queue keeps lent to the kernel for receive, by its
    /// own ring: half the fill ring (the UMEM's share is the other bound).
    fill_cap: u32,
    /// Counts this socket among the UMEM's users while it lives. Declared
    /// after `socket`: dropped once the socket is closed, it returns the
    /// frames lent through it to the pool.
    member: UmemMember,
    /// Frames lent for receive and not yet received (fill ring, kernel, rx ring).
    fill_owned: u32,
    stats: QueueStats,
}

impl Queue {
    /// Wrap a bound socket. `rings` must include fill and completion rings.
    /// `umem` is the index of `member`'s UMEM in the port.
    /// `multi_buffer`: the socket was bound with XDP_USE_SG (or shares the
    /// UMEM of one that was).
    pub fn new(
        socket: XskSocket,
        rings: XskRings,
        umem: usize,
        member: UmemMember,
        need_wakeup: bool,
        multi_buffer: bool,
    ) -> Result<Queue> {
        let binding = socket.binding().ok_or_else(|| Error::invalid("queue socket is not bound"))?.clone();
        let (Some(fill), Some(comp)) = (rings.fill, rings.comp) else {
            return Err(Error::invalid("a queue needs its own fill and completion rings"));
        };
        let zero_copy = socket.zero_copy()?;
        Ok(Queue {
            rx: rings.rx,
            tx: rings.tx,
            // The kernel publishes its fill consumer index lazily (only when
            // its cached batch runs out), so a ring filled to the brim could
            // not be refilled until the kernel ran dry and dropped packets;
            // with half the ring lent, the slots it has consumed but not yet
            // published never block a refill.
            fill_cap: (fill.size() / 2).max(1),
            member,
            fill,
            comp,
            socket,
            queue_id: binding.queue_id,
            umem,
            zero_copy,
            multi_buffer,
            max_segs: chain::MAX_COPY_SEGS,
            need_wakeup,
            busy_poll: Cell::new(false),
            rx_prefix: Cell::new(0),
            rx_mid_chain: Cell::new(false),
            fill_owned: 0,
            stats: QueueStats::default(),
        })
    }

    pub fn queue_id(&self) -> u32 {
        self.queue_id
    }

    /// Skip `n` bytes the XDP program prepended to every received packet.
    pub fn set_rx_prefix(&self, n: u32) {
        self.rx_prefix.set(n);
    }

    pub fn fd(&self) -> RawFd {
        self.socket.fd()
    }

    pub fn socket(&self) -> &XskSocket {
        &self.socket
    }

    /// Index of the UMEM (in the port) this queue uses.
    pub fn umem_index(&self) -> usize {
        self.umem
    }

    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// Bound with XDP_USE_SG: packets may arrive and leave as chains.
    pub fn multi_buffer(&self) -> bool {
        self.multi_buffer
    }

    /// Most fragments of one transmitted packet: the driver's
    /// `xdp-zc-max-segs` in zero-copy mode, else the copy path's limit.
    pub fn set_max_segs(&mut self, segs: u32) {
        self.max_segs = segs.max(1);
    }

    /// Frames this queue may keep lent: half its fill ring and its share
    /// of the UMEM (which shrinks when another socket or port joins).
    pub fn fill_target(&self, umem: &Umem) -> u32 {
        self.fill_cap.min(umem.fill_share())
    }

    /// Whether `rx_burst` would find nothing to do: no packet waiting, the
    /// fill ring holds its share, no wakeup asked for and no busy polling.
    /// Lets an empty poll skip the UMEM lock.
    pub fn rx_idle(&self, umem: &Umem) -> bool {
        self.rx.occupancy() == 0
            && self.fill_owned >= self.fill_target(umem)
            && !self.busy_poll.get()
            && !(self.need_wakeup && self.fill.needs_wakeup())
    }

    /// Top the fill ring up to `fill_target` frames from the free pool.
    /// When a port joins the UMEM the shares shrink at once; frames lent
    /// before that are not replaced beyond the new share, so the sum over
    /// all sockets is back within half the UMEM as soon as they have been
    /// received (the kernel cannot be asked to give fill entries back).
    pub fn refill(&mut self, umem: &mut UmemLock<'_>) -> u32 {
        let want = self.fill_target(umem.umem()).saturating_sub(self.fill_owned).min(umem.frames().free_count());
        if want == 0 {
            return 0;
        }
        let n = self.fill.reserve(want);
        let fill = &mut self.fill;
        let mut i = 0;
        let lender = self.member.slot();
        let taken = umem.frames_mut().take_lent(Owner::Fill, lender, n, |addr| {
            fill.set(i, addr as u64);
            i += 1;
        });
        debug_assert_eq!(taken, n);
        self.fill.submit(taken);
        self.fill_owned += taken;
        taken
    }

    /// Receive up to `min(addrs.len(), lens.len(), opts.len())` descriptors
    /// (packets, or fragments of chained packets on a multi-buffer socket:
    /// `opts` gets each descriptor's options, see `chain`). A burst ends on
    /// a packet's last fragment unless one chain is longer than the burst.
    /// Refills the fill ring (before and after) and wakes the kernel when it
    /// asks for it. Received frames become App-owned; `addrs` point at the
    /// packet data.
    pub fn rx_burst(&mut self, umem: &mut UmemLock<'_>, addrs: &mut [u32], lens: &mut [u32], opts: &mut [u32]) -> usize {
        let max = addrs.len().min(lens.len()).min(opts.len()).min(u32::MAX as usize) as u32;
        self.refill(umem);
        if self.need_wakeup && self.fill.needs_wakeup() {
            self.wake_rx();
        }
        let mut n = self.rx.peek(max);
        if n == 0 && self.busy_poll.get() {
            // Busy polling: our syscall is what runs the driver's NAPI loop.
            self.wake_rx();
            n = self.rx.peek(max);
        }
        if self.multi_buffer {
            let rx = &self.rx;
            n = chain::rx_cut(n, max, |i| chain::contd(rx.desc(i).options));
        }
        if n == 0 {
            // Starved: the frames may all sit on our tx ring, which in copy
            // mode only drains on a kick (a kick that met a busy device,
            // EAGAIN, leaves them there). Nothing received means no
            // transmit will kick it: do it here, or the queue stalls.
            if self.fill_owned < self.fill_target(umem.umem()) && self.tx.occupancy() > 0 {
                self.kick(umem);
                self.reap(umem);
                self.refill(umem);
            }
            return 0;
        }
        let pool = umem.frames_mut();
        let mut out = 0usize;
        let mut bytes = 0u64;
        let mut packets = 0u64;
        // The prefix sits at the start of a packet: the first descriptor of
        // a chain (which may have begun in the previous burst).
        let skip = self.rx_prefix.get();
        let mut at_start = !self.rx_mid_chain.get();
        for i in 0..n {
            let d = self.rx.desc(i);
            if pool.move_one(d.addr, Owner::Fill, Owner::App).is_ok() {
                let s = if at_start { skip.min(d.len) } else { 0 };
                addrs[out] = d.addr as u32 + s;
                lens[out] = d.len - s;
                opts[out] = d.options;
                at_start = !chain::contd(d.options);
                bytes += (d.len - s) as u64;
                packets += !chain::contd(d.options) as u64;
                out += 1;
            } else {
                self.stats.ring_anomalies += 1;
            }
        }
        self.rx.release(n);
        self.rx_mid_chain.set(!at_start);
        self.fill_owned = self.fill_owned.saturating_sub(out as u32);
        // Lend replacements right away: until the next call, arriving
        // packets find a full complement of buffers.
        self.refill(umem);
        self.stats.rx_packets += packets;
        self.stats.rx_descs += out as u64;
        self.stats.rx_bytes += bytes;
        out
    }

    /// Post frames for transmission, with each descriptor's options
    /// (`chain`: XDP_PKT_CONTD chains on a multi-buffer socket; other known
    /// bits pass through as given). All addresses must be App-owned, each
    /// `len` must fit in its frame and the batch must end on a packet's last
    /// fragment, or nothing happens and the error names the culprit. Then
    /// completions are reaped, as many whole packets as the tx ring takes are
    /// posted (a prefix of the batch that never ends inside a chain; the
    /// rest stay App-owned) and the kernel is kicked if it needs it.
    /// Returns the descriptors posted.
    pub fn tx_burst(&mut self, umem: &mut UmemLock<'_>, addrs: &[u32], lens: &[u32], opts: &[u32]) -> Result<usize> {
        chain::check_tx(addrs, lens, opts, umem.config().frame_size, self.multi_buffer, self.max_segs)?;
        umem.frames_mut().move_all_lent(addrs, Owner::App, Owner::Tx, self.member.slot())?;
        self.reap(umem);
        let total = addrs.len().min(u32::MAX as usize) as u32;
        let mut posted = self.post(addrs, lens, opts, 0, total);
        if posted < total {
            // Tx ring full: let the kernel drain it once, then try again.
            self.kick(umem);
            posted += self.post(addrs, lens, opts, posted, total);
        }
        if posted < total {
            umem.frames_mut()
                .move_all(&addrs[posted as usize..], Owner::Tx, Owner::App)
                .expect("frames moved to Tx a moment ago must move back");
        }
        if posted > 0 {
            self.kick(umem);
        }
        Ok(posted as usize)
    }

    /// Write descriptors `from..total` into free tx slots, whole chains
    /// only; returns how many.
    fn post(&mut self, addrs: &[u32], lens: &[u32], opts: &[u32], from: u32, total: u32) -> u32 {
        let room = self.tx.reserve(total - from);
        let n = chain::whole_chains(&opts[from as usize..total as usize], room as usize) as u32;
        let mut bytes = 0u64;
        for i in 0..n {
            let k = (from + i) as usize;
            self.tx.set(i, addrs[k] as u64, lens[k], opts[k]);
            bytes += lens[k] as u64;
        }
        self.tx.submit(n);
        self.stats.tx_packets += chain::packets(&opts[from as usize..(from + n) as usize]);
        self.stats.tx_descs += n as u64;
        self.stats.tx_bytes += bytes;
        n
    }

    /// Kick the kernel to transmit, when it wants a kick. In copy mode each
    /// sendto() transmits a small batch and says EAGAIN if more is left, so
    /// kick (reaping in between) until done, a bounded number of times.
    fn kick(&mut self, umem: &mut UmemLock<'_>) {
        if self.need_wakeup {
            // Order our producer store before the flag load (StoreLoad): the
            // kernel sets the flag and then re-checks the ring, we publish
            // and then check the flag; without a full fence both could miss.
            fence(Ordering::SeqCst);
            if !self.tx.needs_wakeup() {
                return;
            }
        }
        let max_kicks = 2 + self.tx.size() / 16;
        for _ in 0..max_kicks {
            self.stats.tx_kicks += 1;
            match self.socket.kick_tx() {
                Ok(Kick::Done) => break,
                Err(_) => {
                    self.stats.wakeup_errors += 1;
                    break;
                }
                Ok(Kick::Again) => {
                    self.reap(umem);
                    if self.tx.occupancy() == 0 {
                        break;
                    }
                }
            }
        }
    }

    fn wake_rx(&mut self) {
        self.stats.rx_wakeups += 1;
        if self.socket.wake_rx().is_err() {
            self.stats.wakeup_errors += 1;
        }
    }

    /// Completion ring → free pool; returns frames reaped.
    pub fn reap(&mut self, umem: &mut UmemLock<'_>) -> usize {
        let n = self.comp.peek(self.comp.size());
        if n == 0 {
            return 0;
        }
        let pool = umem.frames_mut();
        let mut ok = 0u64;
        for i in 0..n {
            if pool.move_one(self.comp.addr(i), Owner::Tx, Owner::Free).is_ok() {
                ok += 1;
            } else {
                self.stats.ring_anomalies += 1;
            }
        }
        self.comp.release(n);
        self.stats.tx_completed += ok;
        ok as usize
    }

    /// Free → App: fill `out` with frame addresses pointing past the
    /// headroom (where rx packets start too). Reaps first when short.
    pub fn alloc(&mut self, umem: &mut UmemLock<'_>, out: &mut [u32]) -> usize {
        let want = out.len().min(u32::MAX as usize) as u32;
        if umem.frames().free_count() < want {
            self.reap(umem);
        }
        let off = umem.data_offset();
        let mut i = 0;
        umem.frames_mut().take(Owner::App, want, |a| {
            out[i] = a + off;
            i += 1;
        }) as usize
    }

    /// App → Free for a batch (all or nothing).
    pub fn release(&mut self, umem: &mut UmemLock<'_>, addrs: &[u32]) -> Result<()> {
        umem.frames_mut().move_all(addrs, Owner::App, Owner::Free)
    }

    /// Push out what is on the tx ring (a kick, when the kernel wants one;
    /// in copy mode that is what transmits) and reap completions. For a
    /// sender waiting on a full ring: nothing else makes a copy-mode ring
    /// progress. Returns the frames reaped.
    pub fn flush_tx(&mut self, umem: &mut UmemLock<'_>) -> usize {
        if self.tx.occupancy() > 0 {
            self.kick(umem);
        }
        self.reap(umem)
    }

    /// Packets waiting on the rx ring (a cheap read of the producer index;
    /// no syscall, nothing consumed).
    pub fn rx_pending(&self) -> u32 {
        self.rx.occupancy()
    }

    /// Free slots on the tx ring: how many descriptors a transmit could post now.
    pub fn tx_room(&self) -> u32 {
        self.tx.size() - self.tx.occupancy().min(self.tx.size())
    }

    /// Wait up to `timeout_ms` (-1: forever) until the socket is readable
    /// (POLLIN: the rx ring has packets) and/or writable (POLLOUT: the tx
    /// ring is at most half full) as asked by `events`; returns the events
    /// that are ready (empty on timeout). In copy mode the kernel's poll
    /// also drives transmission when it needs a kick. Completions raise no
    /// event: a sender waiting for frames must reap on a timer.
    pub fn wait(&self, events: libc::c_short, timeout_ms: i32) -> Result<libc::c_short> {
        self.socket.wait(events, timeout_ms)
    }

    pub fn occupancy(&self) -> RingOccupancy {
        let rx = self.rx.occupancy();
        let fill = self.fill.occupancy();
        let completion = self.comp.occupancy();
        let tx = self.tx.occupancy();
        RingOccupancy { fill, rx, tx, completion }
    }

    /// Software counters plus XDP_STATISTICS (zeros if the kernel refuses).
    pub fn stats(&self) -> QueueStats {
        let mut s = self.stats;
        if let Ok(x) = self.socket.statistics() {
            s.rx_dropped = x.rx_dropped;
            s.rx_invalid_descs = x.rx_invalid_descs;
            s.tx_invalid_descs = x.tx_invalid_descs;
            s.rx_ring_full = x.rx_ring_full;
            s.rx_fill_ring_empty_descs = x.rx_fill_ring_empty_descs;
            s.tx_ring_empty_descs = x.tx_ring_empty_descs;
        }
        s
    }

    pub fn set_busy_poll(&self, timeout_us: u32, budget: u32) -> Result<()> {
        self.socket.set_busy_poll(timeout_us, budget)?;
        self.busy_poll.set(timeout_us > 0);
        Ok(())
    }
}
