//! A port, the same thing the binding and TS call a port: a socket set
//! (`socket_set`) with its packet steering: the interface, the XSKMAP the
//! sockets sit in, and (in privileged mode) the XDP program this port attached.
//!
//! Three ways to get the XSKMAP, as in DPDK's AF_XDP driver:
//! attach our redirect program or the user's `xdp_prog` (privileged), take
//! the fd the Device Plugin sent (`use_cni`), or open the map it pinned
//! (`use_pinned_map`). In the last two the socket is created without
//! loading any program and only inserts itself at its queue id.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::PathBuf;

use crate::bpf::{AttachKind, ProgramSource, SharedXdp, XdpMode, XdpProgram, XskMap};
use crate::netdev::{xdp_features, Netdev, XdpFeatures};
use crate::netns;
use crate::socket_set::{SocketSet, SocketSetConfig, UmemJoin};
use crate::{Code, Error, Result};

/// Where the XSKMAP comes from.
#[derive(Debug)]
pub enum MapSource {
    /// Attach afxdp's redirect program, or the user's ELF (`xdp_prog`).
    /// `rx_metadata`: afxdp's program that writes the driver's RX metadata
    /// before each packet (bpf/meta.bpf.c); never with `xdp_prog`.
    Attach { xdp_prog: Option<PathBuf>, mode: XdpMode, rx_metadata: bool },
    /// An XSKMAP fd received from the Device Plugin (`use_cni`).
    Received(OwnedFd),
    /// A map pinned on bpffs (`use_pinned_map`).
    Pinned(PathBuf),
}

/// Whether sockets are bound multi-buffer (XDP_USE_SG): lib/config
/// `multiBuffer`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MultiBuffer {
    /// On when a packet the interface's MTU allows does not fit one frame.
    Auto,
    On,
    #[default]
    Off,
}

/// Ethernet header plus one VLAN tag: what a frame holds beyond the MTU.
const L2_OVERHEAD: u32 = 18;

impl MultiBuffer {
    /// Resolve against the interface's MTU and a frame's data room.
    pub fn resolve(self, mtu: u32, frame_room: u32) -> bool {
        match self {
            MultiBuffer::On => true,
            MultiBuffer::Off => false,
            MultiBuffer::Auto => mtu + L2_OVERHEAD > frame_room,
        }
    }
}

#[derive(Debug)]
pub struct OpenRequest {
    /// Open inside this network namespace (name under /run/netns, or a path).
    pub netns: Option<String>,
    /// The sockets. Only `sockets.ifname` names the interface: `ifindex` is
    /// looked up at open, inside `netns` (leave it 0).
    pub sockets: SocketSetConfig,
    pub map: MapSource,
    /// Multi-buffer policy; replaces `sockets.multi_buffer` at open.
    pub multi_buffer: MultiBuffer,
}

pub struct Port {
    // Field order is drop order: sockets close before the program detaches,
    // so no packet is redirected to a socket mid-teardown.
    sockets: SocketSet,
    map: XskMap,
    program: Option<SharedXdp>,
    netdev: Netdev,
    netns: Option<String>,
    /// NETDEV_A_DEV_XDP_ZC_MAX_SEGS of the interface, where the kernel
    /// reports it (Linux >= 6.6 netdev netlink).
    zc_max_segs: Option<u32>,
}

impl Port {
    pub fn open(req: OpenRequest) -> Result<Port> {
        Self::open_joining(req, None)
    }

    /// `open` on another port's UMEM (see `SocketSet::open_joining`; the other
    /// port may be on another interface and in another network namespace).
    pub fn open_joining(req: OpenRequest, join: Option<UmemJoin<'_>>) -> Result<Port> {
        let netns = req.netns.clone();
        netns::within(netns.as_deref(), || Self::open_here(req, join))
    }

    fn open_here(req: OpenRequest, join: Option<UmemJoin<'_>>) -> Result<Port> {
        let netns = req.netns.clone();
        let netdev = Netdev::lookup(&req.sockets.ifname)?;
        check_queue_range(&netdev, req.sockets.start_queue, req.sockets.queue_count)?;
        let frame_room = req.sockets.umem.frame_size.saturating_sub(req.sockets.umem.data_offset());
        let config = SocketSetConfig {
            ifname: netdev.name.clone(),
            ifindex: netdev.ifindex,
            multi_buffer: req.multi_buffer.resolve(netdev.mtu, frame_room),
            ..req.sockets
        };
        // Memory first: a UMEM that does not fit fails here, before any
        // program is attached or map touched.
        let umems = SocketSet::allocate_umems(&config, join.is_some())?;
        let (program, map) = match req.map {
            MapSource::Attach { xdp_prog, mode, rx_metadata } => {
                let source = match xdp_prog {
                    // Multi-buffer sockets need a frags-aware program in
                    // every mode, or chained packets never reach them.
                    None if rx_metadata && config.multi_buffer => ProgramSource::MetadataFrags,
                    None if rx_metadata => ProgramSource::Metadata,
                    None if config.multi_buffer => ProgramSource::RedirectFrags,
                    None => ProgramSource::Redirect,
                    Some(_) if rx_metadata => {
                        return Err(Error::invalid(
                            "rxMetadata selects afxdp's own metadata-writing program; with xdp_prog, that program \
                             writes its own metadata: describe it with xdp_meta_rx_ts_offset instead",
                        ))
                    }
                    Some(path) => ProgramSource::Object { path, program: None },
                };
                if matches!(source, ProgramSource::Metadata | ProgramSource::MetadataFrags) {
                    check_rx_metadata(&netdev)?;
                }
                // A bpf_link: the program goes when this process does.
                let (program, map) = XdpProgram::attach_or_share_as(netdev.ifindex, mode, &source, AttachKind::Link)?;
                (Some(program), map)
            }
            MapSource::Received(fd) => (None, XskMap::from_fd(fd)?),
            MapSource::Pinned(path) => (None, XskMap::open_pinned(path)?),
        };
        let last_queue = config.start_queue + config.queue_count - 1;
        if last_queue >= map.max_entries() {
            return Err(Error::new(
                Code::QueueOutOfRange,
                format!(
                    "queue {last_queue} does not fit the XSKMAP {} ({} entries, queues 0..{}); use lower queues",
                    map.name(),
                    map.max_entries(),
                    map.max_entries() - 1
                ),
            ));
        }
        let sockets = SocketSet::open_allocated(&config, join, umems, &mut |queue_id, fd| {
            // SAFETY: `fd` is the port's live socket for the whole call.
            map.insert(queue_id, unsafe { BorrowedFd::borrow_raw(fd) })
        })?;
        if let Some(p) = program.as_ref().filter(|p| p.rx_prefix() > 0) {
            sockets.set_rx_prefix(p.rx_prefix())?;
        }
        let zc_max_segs = crate::netdev::xdp_features(netdev.ifindex).ok().and_then(|f| f.zc_max_segs);
        if let Some(segs) = zc_max_segs {
            for q in 0..sockets.queue_count() {
                let mut guard = sockets.lock(q)?;
                if guard.queue().zero_copy() {
                    guard.queue_mut().set_max_segs(segs);
                }
            }
        }
        Ok(Port { sockets, map, program, netdev, netns, zc_max_segs })
    }

    pub fn sockets(&self) -> &SocketSet {
        &self.sockets
    }

    pub fn sockets_mut(&mut self) -> &mut SocketSet {
        &mut self.sockets
    }

    pub fn netdev(&self) -> &Netdev {
        &self.netdev
    }

    /// The interface as the kernel sees it now (link state, MTU).
    pub fn refresh_netdev(&self) -> Result<Netdev> {
        netns::within(self.netns.as_deref(), || Netdev::by_index(self.netdev.ifindex))
    }

    pub fn map(&self) -> &XskMap {
        &self.map
    }

    /// What the kernel says the interface's XDP can do now (netdev netlink).
    pub fn xdp_features(&self) -> std::result::Result<XdpFeatures, String> {
        netns::within(self.netns.as_deref(), || Ok(xdp_features(self.netdev.ifindex))).unwrap_or_else(|e| Err(e.message))
    }

    /// Whether the sockets are multi-buffer (XDP_USE_SG).
    pub fn multi_buffer(&self) -> bool {
        self.sockets.config().multi_buffer
    }

    /// The interface's `xdp-zc-max-segs` (most fragments of one packet in
    /// zero-copy mode), where the kernel reports it.
    pub fn zc_max_segs(&self) -> Option<u32> {
        self.zc_max_segs
    }

    /// The program this port attached (privileged mode), if any.
    pub fn program(&self) -> Option<&SharedXdp> {
        self.program.as_ref()
    }
}

/// rxMetadata on a driver that implements none of the metadata kfuncs would
/// attach and deliver nothing: refuse it, naming what the kernel reports.
fn check_rx_metadata(netdev: &Netdev) -> Result<()> {
    match xdp_features(netdev.ifindex) {
        Ok(f) if f.rx_metadata == Some(0) => Err(Error::new(
            Code::NotSupported,
            format!(
                "rxMetadata: {} (driver {}) implements none of the XDP RX metadata kfuncs (its netdev \
                 xdp-rx-metadata-features is empty); the timestamp, hash and VLAN tag need a driver with \
                 xdp_metadata_ops (mlx5, ice, igc, stmmac, veth, ...)",
                netdev.name,
                netdev.driver.as_deref().unwrap_or("unknown")
            ),
        )),
        // The kernel cannot say (before 6.3 the kfuncs do not exist either:
        // loading fails with its own message).
        _ => Ok(()),
    }
}

fn check_queue_range(netdev: &Netdev, start: u32, count: u32) -> Result<()> {
    let available = netdev.queue_count();
    let end = start.saturating_add(count);
    if count == 0 || end > available {
        return Err(Error::new(
            Code::QueueOutOfRange,
            format!(
                "{} has {available} queue(s) (0..{}), but start_queue={start} queue_count={count} needs queues \
                 {start}..{}; lower start_queue/queue_count, or add queues (`ethtool -L {} combined N`; \
                 for veth: `ip link add ... numrxqueues N numtxqueues N`)",
                netdev.name,
                available.saturating_sub(1),
                end.saturating_sub(1),
                netdev.name
            ),
        ));
    }
    Ok(())
}
