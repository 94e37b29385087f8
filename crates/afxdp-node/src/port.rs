//! `NativePort`: the binding of core `port::Port`. Hot methods take only small
//! integers; descriptors live in a shared ArrayBuffer and packets in the
//! UMEM's ArrayBuffer, so one burst is one call with no marshalling.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use afxdp_core::bpf::{ProgramSource, XdpMode};
use afxdp_core::lease::{Caller, SharedQueue};
use afxdp_core::port::{MapSource, MultiBuffer, OpenRequest, Port};
use afxdp_core::queue::QueueStats;
use afxdp_core::socket_set::{FrameCounts, SocketSetConfig};
use afxdp_core::umem::{HugepagePolicy, Umem, UmemConfig};
use afxdp_core::{limits, Error};
use napi::bindgen_prelude::{ArrayBuffer, Object};
use napi::Env;
use napi_derive::napi;

use crate::error::{invalid, to_js, Result};
use crate::fd::NativeFd;
use crate::queue_calls::calls_object;
use crate::shared_memory::{external_buffer, external_buffer_once, DescriptorArea, Region, DESCRIPTOR_ARRAYS};

/// How the UMEM's memory is mapped (lib/config/options.ts `hugepages`).
#[napi(string_enum = "lowercase")]
pub enum NativeHugepages {
    Auto,
    Require,
    Never,
}

impl From<NativeHugepages> for HugepagePolicy {
    fn from(v: NativeHugepages) -> Self {
        match v {
            NativeHugepages::Auto => HugepagePolicy::Auto,
            NativeHugepages::Require => HugepagePolicy::Require,
            NativeHugepages::Never => HugepagePolicy::Never,
        }
    }
}

/// How afxdp attaches its XDP program (lib/config/options.ts `xdpMode`).
#[napi(string_enum = "lowercase")]
pub enum NativeXdpMode {
    Auto,
    Native,
    Generic,
}

impl From<NativeXdpMode> for XdpMode {
    fn from(v: NativeXdpMode) -> Self {
        match v {
            NativeXdpMode::Auto => XdpMode::Auto,
            NativeXdpMode::Native => XdpMode::Native,
            NativeXdpMode::Generic => XdpMode::Generic,
        }
    }
}

/// Multi-buffer sockets (lib/config/options.ts `multiBuffer`).
#[napi(string_enum = "lowercase")]
pub enum NativeMultiBuffer {
    Auto,
    On,
    Off,
}

impl From<NativeMultiBuffer> for MultiBuffer {
    fn from(v: NativeMultiBuffer) -> Self {
        match v {
            NativeMultiBuffer::Auto => MultiBuffer::Auto,
            NativeMultiBuffer::On => MultiBuffer::On,
            NativeMultiBuffer::Off => MultiBuffer::Off,
        }
    }
}

/// A validated lib/config `PortConfig` as the core needs it (built by
/// `nativeOptions` in lib/port/open.ts). A new option is a field here and
/// one line in `TryFrom` below.
#[napi(object)]
pub struct NativeOpenOptions {
    pub ifname: String,
    pub netns: Option<String>,
    pub start_queue: u32,
    pub queue_count: u32,
    pub shared_umem: bool,
    pub force_copy: bool,
    pub frame_size: u32,
    pub frame_count: u32,
    pub headroom: u32,
    pub rx_size: u32,
    pub tx_size: u32,
    pub fill_size: u32,
    pub comp_size: u32,
    pub hugepages: NativeHugepages,
    pub xdp_mode: NativeXdpMode,
    pub multi_buffer: NativeMultiBuffer,
    /// Attach this ELF instead of afxdp's redirect program.
    pub xdp_prog: Option<String>,
    /// Use the XSKMAP pinned here (use_pinned_map) instead of attaching.
    pub pinned_map: Option<String>,
    /// Descriptor slots per queue (binding only: not part of the request).
    pub burst_size: u32,
    /// afxdp's RX-metadata program (bpf/meta.bpf.c) instead of the plain one.
    pub rx_metadata: bool,
    /// Register the UMEM with tx_metadata_len (AF_XDP TX metadata).
    pub tx_metadata: bool,
    /// XDP_UMEM_TX_SW_CSUM: the kernel computes requested checksums (copy mode).
    pub tx_software_checksum: bool,
}

/// The request without a received map fd: `open` swaps one in for use_cni.
impl TryFrom<NativeOpenOptions> for OpenRequest {
    type Error = Error;

    fn try_from(o: NativeOpenOptions) -> std::result::Result<Self, Error> {
        limits::check_burst_size("burstSize", o.burst_size)?;
        let map = match (o.pinned_map, o.xdp_prog) {
            (Some(path), None) => MapSource::Pinned(PathBuf::from(path)),
            (None, xdp_prog) => {
                MapSource::Attach { xdp_prog: xdp_prog.map(PathBuf::from), mode: o.xdp_mode.into(), rx_metadata: o.rx_metadata }
            }
            (Some(_), Some(_)) => return Err(Error::invalid("give either xdpProg or a pinned map path, not both")),
        };
        Ok(OpenRequest {
            netns: o.netns,
            sockets: SocketSetConfig {
                ifname: o.ifname,
                ifindex: 0,
                start_queue: o.start_queue,
                queue_count: o.queue_count,
                shared_umem: o.shared_umem,
                force_copy: o.force_copy,
                need_wakeup: true,
                multi_buffer: false,
                rx_size: o.rx_size,
                tx_size: o.tx_size,
                umem: UmemConfig {
                    frame_size: o.frame_size,
                    frame_count: o.frame_count,
                    headroom: o.headroom,
                    fill_size: o.fill_size,
                    comp_size: o.comp_size,
                    hugepages: o.hugepages.into(),
                    tx_metadata: o.tx_metadata || o.tx_software_checksum,
                    tx_sw_csum: o.tx_software_checksum,
                },
            },
            map,
            multi_buffer: o.multi_buffer.into(),
        })
    }
}

/// A port's state shared with its queues' calls on any thread and with the
/// registry that `NativeQueue::attach` looks ports up in.
pub(crate) struct PortShared {
    /// None once `close()` has run.
    port: Mutex<Option<Port>>,
    /// The port's queues, each behind its own lock (core `lease`); they
    /// outlive `close()` only as closed shells.
    pub(crate) queues: Vec<Arc<SharedQueue>>,
    /// Descriptor slots per queue.
    pub(crate) burst: usize,
    key: u64,
}

/// Open ports by key, for `NativeQueue::attach` on another thread (a
/// transfer handle is plain data: it names the port by key).
fn registry() -> MutexGuard<'static, HashMap<u64, Weak<PortShared>>> {
    static PORTS: LazyLock<Mutex<HashMap<u64, Weak<PortShared>>>> = LazyLock::new(Default::default);
    PORTS.lock().unwrap_or_else(|p| p.into_inner())
}

impl PortShared {
    fn register(port: Port, burst: usize) -> Arc<PortShared> {
        static NEXT_KEY: AtomicU64 = AtomicU64::new(1);
        let sockets = port.sockets();
        let queues = (0..sockets.queue_count()).map(|q| sockets.shared_queue(q).expect("in range").clone()).collect();
        let shared =
            Arc::new(PortShared { port: Mutex::new(Some(port)), queues, burst, key: NEXT_KEY.fetch_add(1, Ordering::Relaxed) });
        registry().insert(shared.key, Arc::downgrade(&shared));
        shared
    }

    /// The open port with this key (ERR_AFXDP_CLOSED once it closed).
    pub(crate) fn lookup(key: u64) -> std::result::Result<Arc<PortShared>, Error> {
        registry().get(&key).and_then(Weak::upgrade).ok_or_else(|| Error::closed("the port of this queue handle"))
    }

    pub(crate) fn key(&self) -> u64 {
        self.key
    }

    /// The port, locked, unless `close()` was called.
    pub(crate) fn open_port(&self) -> std::result::Result<MutexGuard<'_, Option<Port>>, Error> {
        let guard = self.port.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            return Err(Error::closed("this port"));
        }
        Ok(guard)
    }

    /// Frame accounting of UMEM `u`.
    pub(crate) fn frames(&self, u: usize) -> Result<NativeFrameCounts> {
        let guard = self.open_port().map_err(to_js)?;
        let sockets = guard.as_ref().expect("checked").sockets();
        if u >= sockets.umem_count() {
            return Err(invalid(format!("UMEM index {u} out of range")));
        }
        Ok(sockets.frames(u).into())
    }

    /// The port's facts for the queues `queues` (all, or those attached on
    /// another thread, which sees `umem_count` of the UMEMs).
    pub(crate) fn info(&self, queues: &[usize], umem_count: u32) -> Result<NativePortInfo> {
        let guard = self.open_port().map_err(to_js)?;
        let port = guard.as_ref().expect("checked");
        let sockets = port.sockets();
        let netdev = port.refresh_netdev().unwrap_or_else(|_| port.netdev().clone());
        let umem = sockets.umem(0).config();
        let features = port.xdp_features();
        Ok(NativePortInfo {
            ifname: netdev.name.clone(),
            ifindex: netdev.ifindex,
            mac: netdev.mac_string(),
            mtu: netdev.mtu,
            link_up: netdev.carrier,
            queue_ids: queues.iter().map(|&q| sockets.queue_id(q)).collect(),
            interface_queues: netdev.queue_count(),
            driver: netdev.driver.clone().unwrap_or_default(),
            xdp_mode: port.program().map_or("external", |p| p.mode().as_str()).to_string(),
            xdp_program_id: port.program().map_or(0, |p| p.prog_id()),
            zero_copy: queues.iter().map(|&q| sockets.zero_copy(q)).collect(),
            hugepages: sockets.hugepages(),
            umem_count,
            frame_size: umem.frame_size,
            data_offset: umem.data_offset(),
            umem_joined: sockets.joined(),
            umem_shared_with: sockets.umem_shared_with(0),
            rx_metadata: port
                .program()
                .is_some_and(|p| matches!(p.source(), ProgramSource::Metadata | ProgramSource::MetadataFrags)),
            rx_metadata_prefix: port.program().map_or(0, |p| p.rx_prefix()),
            tx_metadata_reg: sockets.umem(0).tx_metadata_reg().map(|r| r.as_str().to_string()),
            rx_metadata_features: features.as_ref().ok().and_then(|f| f.rx_metadata.map(|_| f.rx_metadata_names())),
            xsk_features: features.as_ref().ok().and_then(|f| f.xsk.map(|_| f.xsk_names())),
            multi_buffer: port.multi_buffer(),
            xdp_zc_max_segs: port.zc_max_segs(),
            xdp_frags: port.program().map(|p| p.frags()),
        })
    }

    /// Close the sockets and detach the program (idempotent). A burst in
    /// progress on another thread finishes first (each queue's lock).
    fn close(&self) {
        drop(self.port.lock().unwrap_or_else(|p| p.into_inner()).take());
    }
}

impl Drop for PortShared {
    fn drop(&mut self) {
        registry().remove(&self.key);
    }
}

#[napi(object)]
pub struct NativeQueueStats {
    pub queue_id: u32,
    pub rx_packets: f64,
    pub rx_bytes: f64,
    pub tx_packets: f64,
    pub tx_bytes: f64,
    /// Descriptors: packets plus the extra fragments of chains.
    pub rx_descs: f64,
    pub tx_descs: f64,
    pub rx_dropped: f64,
    pub rx_invalid_descs: f64,
    pub tx_invalid_descs: f64,
    pub rx_ring_full: f64,
    pub rx_fill_ring_empty_descs: f64,
    pub tx_ring_empty_descs: f64,
}

impl NativeQueueStats {
    pub(crate) fn new(queue_id: u32, s: &QueueStats) -> Self {
        NativeQueueStats {
            queue_id,
            rx_packets: s.rx_packets as f64,
            rx_bytes: s.rx_bytes as f64,
            tx_packets: s.tx_packets as f64,
            tx_bytes: s.tx_bytes as f64,
            rx_descs: s.rx_descs as f64,
            tx_descs: s.tx_descs as f64,
            rx_dropped: s.rx_dropped as f64,
            rx_invalid_descs: s.rx_invalid_descs as f64,
            tx_invalid_descs: s.tx_invalid_descs as f64,
            rx_ring_full: s.rx_ring_full as f64,
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs as f64,
            tx_ring_empty_descs: s.tx_ring_empty_descs as f64,
        }
    }
}

#[napi(object)]
pub struct NativeFrameCounts {
    pub total: u32,
    pub free: u32,
    pub fill_ring: u32,
    pub rx_ring: u32,
    pub app: u32,
    pub tx_ring: u32,
    pub completion_ring: u32,
    pub in_kernel: u32,
}

impl From<FrameCounts> for NativeFrameCounts {
    fn from(f: FrameCounts) -> Self {
        NativeFrameCounts {
            total: f.total,
            free: f.free,
            fill_ring: f.fill_ring,
            rx_ring: f.rx_ring,
            app: f.app,
            tx_ring: f.tx_ring,
            completion_ring: f.completion_ring,
            in_kernel: f.in_kernel,
        }
    }
}

/// Queues handed to another thread (`NativePort.transfer`): plain data,
/// so it survives postMessage; `NativeAttachedPort.attach` takes it once.
#[napi(object)]
pub struct NativeTransfer {
    /// The port's key in this process.
    pub port: i64,
    /// Positions of the queues in their port.
    pub queues: Vec<u32>,
    /// One per queue.
    pub tokens: Vec<i64>,
}

#[napi(object)]
pub struct NativePortInfo {
    pub ifname: String,
    pub ifindex: u32,
    pub mac: String,
    pub mtu: u32,
    pub link_up: bool,
    pub queue_ids: Vec<u32>,
    pub interface_queues: u32,
    pub driver: String,
    /// "native" | "generic" for a program this port attached, else "external".
    pub xdp_mode: String,
    pub xdp_program_id: u32,
    pub zero_copy: Vec<bool>,
    pub hugepages: bool,
    pub umem_count: u32,
    pub frame_size: u32,
    pub data_offset: u32,
    /// UMEM 0 is another port's (opened with `shareWith`).
    pub umem_joined: bool,
    /// Interfaces of the other ports using UMEM 0 now (empty: not shared).
    pub umem_shared_with: Vec<String>,
    /// afxdp's RX-metadata program is attached.
    pub rx_metadata: bool,
    /// 0: the metadata sits in the XDP metadata area; else the program
    /// prepends it and the receive path skips this many bytes.
    pub rx_metadata_prefix: u32,
    /// How XDP_UMEM_REG took tx_metadata_len (None: no TX metadata).
    pub tx_metadata_reg: Option<String>,
    /// The device's netdev xdp-rx-metadata-features (None: the kernel cannot say).
    pub rx_metadata_features: Option<Vec<String>>,
    /// The device's netdev xsk-features (None: the kernel cannot say).
    pub xsk_features: Option<Vec<String>>,
    /// Sockets bound with XDP_USE_SG: packets larger than a frame arrive
    /// and leave as chains (queue.options XDP_PKT_CONTD).
    pub multi_buffer: bool,
    /// The interface's xdp-zc-max-segs (netdev netlink), where reported.
    pub xdp_zc_max_segs: Option<u32>,
    /// Whether the program this port attached is frags-aware (xdp.frags);
    /// none for a program it did not attach.
    pub xdp_frags: Option<bool>,
}

/// One UMEM's JS exposure, shared by the ports using the UMEM (V8 allows
/// one external buffer per address).
#[derive(Default)]
pub(crate) struct UmemSlot {
    /// The ArrayBuffer was created.
    exposed: AtomicBool,
    /// While the ArrayBuffer is attached: its base address and the UMEM,
    /// kept mapped for JS views even after every port using it has closed.
    /// `close()` drops it once it has detached the buffer, so the mapping
    /// goes with the last port at once instead of at the buffer's GC
    /// (the finalizer only drops what is left: a backstop).
    keepalive: Mutex<Option<(usize, Arc<Umem>)>>,
}

struct UmemRegion {
    slot: Arc<UmemSlot>,
    base: *mut u8,
    len: usize,
}

impl Drop for UmemRegion {
    fn drop(&mut self) {
        self.slot.keepalive.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

// SAFETY: the pointer is only handed to V8 once; the region itself is
// never dereferenced from Rust through this struct.
unsafe impl Send for UmemRegion {}
// SAFETY: as for Send: no Rust code reads or writes the region through it.
unsafe impl Sync for UmemRegion {}

impl Region for UmemRegion {
    fn base(&self) -> *mut u8 {
        self.base
    }
    fn size(&self) -> usize {
        self.len
    }
}

#[napi]
pub struct NativePort {
    shared: Arc<PortShared>,
    descriptors: Arc<DescriptorArea>,
    queue_count: usize,
    /// Per UMEM: its ArrayBuffer's state; shared with the ports that
    /// joined it, since V8 allows one external buffer per address.
    umem_slots: Vec<Arc<UmemSlot>>,
    descriptors_exposed: bool,
}

/// The bounds every layer agrees on (afxdp_core::limits), for
/// lib/config/port-config.ts `limits` and the test comparing them.
#[napi(object)]
pub struct NativeLimits {
    pub max_queue_id: u32,
    pub max_queue_count: u32,
    pub ring_min_size: u32,
    pub ring_max_size: u32,
    pub frame_sizes: Vec<u32>,
    pub max_frame_count: u32,
    /// Exact as a JS number (< 2^53).
    pub max_umem_bytes: f64,
    pub kernel_headroom: u32,
    pub min_frame_data: u32,
    pub max_burst_size: u32,
}

#[napi]
pub fn limits() -> NativeLimits {
    NativeLimits {
        max_queue_id: limits::MAX_QUEUE_ID,
        max_queue_count: limits::MAX_QUEUE_COUNT,
        ring_min_size: limits::RING_MIN_SIZE,
        ring_max_size: limits::RING_MAX_SIZE,
        frame_sizes: limits::FRAME_SIZES.to_vec(),
        max_frame_count: limits::MAX_FRAME_COUNT,
        max_umem_bytes: limits::MAX_UMEM_BYTES as f64,
        kernel_headroom: limits::KERNEL_HEADROOM,
        min_frame_data: limits::MIN_FRAME_DATA,
        max_burst_size: limits::MAX_BURST_SIZE,
    }
}

#[napi]
impl NativePort {
    /// Open sockets on the interface's queues and steer packets to them.
    /// `map_fd`: an XSKMAP fd from the Device Plugin (taken over).
    /// `share_with`: an open port whose UMEM 0 every queue of this port uses
    /// (XDP_SHARED_UMEM); then this port creates no UMEM buffer: reuse the
    /// other port's.
    #[napi(factory)]
    pub fn open(options: NativeOpenOptions, map_fd: Option<&NativeFd>, share_with: Option<&NativePort>) -> Result<NativePort> {
        let burst = options.burst_size as usize;
        let mut request = OpenRequest::try_from(options).map_err(to_js)?;
        if let Some(fd) = map_fd {
            if !matches!(request.map, MapSource::Attach { xdp_prog: None, rx_metadata: false, .. }) {
                return Err(invalid("give either a received map fd, a pinned map path or xdpProg, not two"));
            }
            request.map = MapSource::Received(fd.take()?);
        }
        let (port, umem_slots) = match share_with {
            None => {
                let port = Port::open(request).map_err(to_js)?;
                let slots = (0..port.sockets().umem_count()).map(|_| Arc::new(UmemSlot::default())).collect();
                (port, slots)
            }
            Some(owner) => {
                // The owner stays locked (and so open) while this port binds to its socket.
                let guard = owner.port()?;
                let join = guard.as_ref().expect("checked").sockets().umem_join(0);
                (Port::open_joining(request, Some(join)).map_err(to_js)?, vec![owner.umem_slots[0].clone()])
            }
        };
        let queue_count = port.sockets().queue_count();
        Ok(NativePort {
            shared: PortShared::register(port, burst),
            descriptors: Arc::new(DescriptorArea::for_queues(queue_count, burst)),
            queue_count,
            umem_slots,
            descriptors_exposed: false,
        })
    }

    fn port(&self) -> Result<MutexGuard<'_, Option<Port>>> {
        self.shared.open_port().map_err(to_js)
    }

    fn check_queue(&self, q: u32) -> Result<usize> {
        let q = q as usize;
        if q >= self.queue_count {
            return Err(invalid(format!("queue index {q} out of range (port has {} queues)", self.queue_count)));
        }
        Ok(q)
    }

    /// The ArrayBuffer over UMEM `u`; exactly once per UMEM, also over the
    /// ports sharing it (V8 allows one external buffer per address).
    #[napi]
    pub fn umem_buffer<'env>(&mut self, env: &'env Env, u: u32) -> Result<ArrayBuffer<'env>> {
        let (umem, base, len) = {
            let guard = self.port()?;
            let sockets = guard.as_ref().expect("checked").sockets();
            if u as usize >= sockets.umem_count() {
                return Err(invalid(format!("UMEM index {u} out of range")));
            }
            let (base, len) = sockets.umem_area(u as usize);
            (sockets.umem(u as usize).clone(), base, len)
        };
        let slot = &self.umem_slots[u as usize];
        if slot.exposed.swap(true, Ordering::Relaxed) {
            return Err(invalid(format!(
                "the buffer of UMEM {u} was already created (by this port or a port sharing the UMEM); reuse it"
            )));
        }
        *slot.keepalive.lock().unwrap_or_else(|p| p.into_inner()) = Some((base as usize, umem));
        external_buffer(env, Arc::new(UmemRegion { slot: slot.clone(), base, len }))
    }

    /// The ArrayBuffer of descriptor slots: per queue `burst` addresses,
    /// `burst` lengths and `burst` options (u32). Exactly once.
    #[napi]
    pub fn descriptor_buffer<'env>(&mut self, env: &'env Env) -> Result<ArrayBuffer<'env>> {
        external_buffer_once(env, &mut self.descriptors_exposed, self.descriptors.clone(), "descriptor")
    }

    #[napi]
    pub fn umem_of(&self, q: u32) -> Result<u32> {
        let q = self.check_queue(q)?;
        Ok(self.port()?.as_ref().expect("checked").sockets().umem_of(q) as u32)
    }

    /// Queue `q`'s burst calls as plain functions (see queue_calls.rs):
    /// rxBurst(max), txBurst(start, count, dropUnsent), release(start, count),
    /// alloc(start, count), reap(), flushTx(), rxPending(), txRoom(),
    /// freeFrames(); each returns a u32.
    #[napi(
        ts_return_type = "Record<'rxBurst' | 'txBurst' | 'release' | 'alloc' | 'reap' | 'flushTx' | 'rxPending' | 'txRoom' | 'freeFrames', (...args: Array<number | boolean>) => number>"
    )]
    pub fn queue_calls<'env>(&self, env: &'env Env, q: u32) -> Result<Object<'env>> {
        let q = self.check_queue(q)?;
        drop(self.port()?);
        let burst = self.shared.burst;
        calls_object(
            env,
            self.shared.queues[q].clone(),
            Caller::Port,
            self.descriptors.clone(),
            q * DESCRIPTOR_ARRAYS * burst,
            burst,
        )
    }

    /// Hand queues `queues` to another thread, all or none: from now on
    /// this port's calls on them fail with ERR_AFXDP_TRANSFERRED until the
    /// thread gives them back.
    #[napi]
    pub fn transfer(&self, queues: Vec<u32>) -> Result<NativeTransfer> {
        drop(self.port()?);
        let mut tokens = Vec::with_capacity(queues.len());
        for (i, &q) in queues.iter().enumerate() {
            let token = self.check_queue(q).and_then(|q| {
                if queues[..i].contains(&(q as u32)) {
                    return Err(invalid(format!("queue index {q} is listed twice")));
                }
                self.shared.queues[q].transfer().map_err(to_js)
            });
            match token {
                Ok(t) => tokens.push(t as i64),
                Err(e) => {
                    for &done in &queues[..i] {
                        self.shared.queues[done as usize].cancel_transfer();
                    }
                    return Err(e);
                }
            }
        }
        Ok(NativeTransfer { port: self.shared.key() as i64, queues, tokens })
    }

    /// Take back queue `q` if its transfer was never attached (the thread
    /// meant to receive it is gone); true if it was.
    #[napi]
    pub fn cancel_transfer(&self, q: u32) -> Result<bool> {
        let q = self.check_queue(q)?;
        Ok(self.shared.queues[q].cancel_transfer())
    }

    /// Whether this port's own calls may use queue `q` now (not transferred).
    #[napi]
    pub fn queue_at_port(&self, q: u32) -> Result<bool> {
        let q = self.check_queue(q)?;
        Ok(self.shared.queues[q].at_port())
    }

    /// Queue `q`'s pending socket error as an errno (0: none); reading
    /// clears it. ENETDOWN: the interface was unregistered.
    #[napi]
    pub fn socket_error(&self, q: u32) -> Result<i32> {
        let q = self.check_queue(q)?;
        Ok(self.port()?.as_ref().expect("checked").sockets().socket_error(q).map_err(to_js)?.unwrap_or(0))
    }

    /// Preferred busy polling on every socket of the port (SO_PREFER_BUSY_POLL,
    /// SO_BUSY_POLL = `timeout_us`, SO_BUSY_POLL_BUDGET = `budget`); needs
    /// CAP_NET_ADMIN. `timeout_us` 0 turns it off.
    #[napi]
    pub fn set_busy_poll(&self, timeout_us: u32, budget: u32) -> Result<()> {
        let guard = self.port()?;
        guard.as_ref().expect("checked").sockets().set_busy_poll(timeout_us, budget).map_err(to_js)
    }

    #[napi]
    pub fn stats(&self, q: u32) -> Result<NativeQueueStats> {
        let q = self.check_queue(q)?;
        let guard = self.port()?;
        let sockets = guard.as_ref().expect("checked").sockets();
        Ok(NativeQueueStats::new(sockets.queue_id(q), &sockets.stats(q).map_err(to_js)?))
    }

    #[napi]
    pub fn frames(&self, u: u32) -> Result<NativeFrameCounts> {
        self.shared.frames(u as usize)
    }

    #[napi]
    pub fn info(&self) -> Result<NativePortInfo> {
        let all: Vec<usize> = (0..self.queue_count).collect();
        self.shared.info(&all, self.umem_slots.len() as u32)
    }

    /// Detach the given buffers (the UMEM and descriptor ArrayBuffers; pass
    /// a shared UMEM's buffer only when closing its last port), then close
    /// the sockets and detach the program this port attached. A UMEM whose
    /// buffer was detached is unmapped here, with the last port using it
    /// (stale views read as empty). Idempotent.
    #[napi]
    pub fn close(&mut self, buffers: Vec<ArrayBuffer>) -> Result<()> {
        for buffer in buffers {
            let base = buffer.as_ptr() as usize;
            // A buffer that cannot be detached keeps its UMEM mapped (its
            // keepalive), so stale views stay valid memory either way.
            if buffer.detach().is_ok() {
                for slot in &self.umem_slots {
                    let mut keep = slot.keepalive.lock().unwrap_or_else(|p| p.into_inner());
                    if matches!(&*keep, Some((b, _)) if *b == base) {
                        keep.take();
                    }
                }
            }
        }
        self.shared.close();
        Ok(())
    }
}

impl NativePort {
    pub(crate) fn queue_count(&self) -> usize {
        self.queue_count
    }

    /// The AF_XDP socket fd of queue index `queue` (for sending it to the
    /// Device Plugin with `/config_busy_poll`). Valid while the port is open.
    pub(crate) fn socket_fd(&self, queue: u32) -> Result<std::os::fd::RawFd> {
        let q = self.check_queue(queue)?;
        let guard = self.port()?;
        Ok(guard.as_ref().expect("checked").sockets().fd(q))
    }
}
