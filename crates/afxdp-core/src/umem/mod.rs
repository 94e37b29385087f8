//! UMEM: the packet memory shared with the kernel, cut into equal frames.
//!
//! `area` maps the memory, `frames` tracks who owns each frame, `lock` is
//! the ledger held for one burst, `member` counts the sockets drawing from
//! a UMEM (of one port or of several: a UMEM is shared as `Arc<Umem>`).
//! Registering the area with the kernel is a socket operation
//! (XDP_UMEM_REG), see `socket`. Frame layout in aligned mode (what we use):
//!
//! ```text
//! | XDP_PACKET_HEADROOM (256) | headroom | packet data ...            |
//! ^ frame base                           ^ data_offset(): rx and alloc
//! ```

pub mod area;
pub mod budget;
pub mod frames;
pub mod lock;
pub mod member;

pub use area::{HugepagePolicy, UmemArea};
pub use frames::{FramePool, Owner, OwnerCounts};
pub use lock::UmemLock;
pub use member::UmemMember;

use crate::{Code, Error, Result};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// Headroom the kernel reserves in front of every received packet
/// (XDP_PACKET_HEADROOM in linux/bpf.h; libc does not export it).
pub const XDP_PACKET_HEADROOM: u32 = limits::KERNEL_HEADROOM;

use crate::limits::{self, MIN_FRAME_DATA as MIN_DATA_ROOM};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UmemConfig {
    /// Bytes per frame: 2048 or 4096.
    pub frame_size: u32,
    pub frame_count: u32,
    /// Extra headroom for the application, on top of XDP_PACKET_HEADROOM.
    pub headroom: u32,
    /// Fill ring entries (power of two).
    pub fill_size: u32,
    /// Completion ring entries (power of two).
    pub comp_size: u32,
    pub hugepages: HugepagePolicy,
    /// TX metadata (`txMetadata`): register the UMEM with `tx_metadata_len`
    /// = sizeof(struct xsk_tx_metadata), so a tx descriptor with
    /// XDP_TX_METADATA in its options carries the request written at
    /// addr - TX_METADATA_LEN (checksum offload, completion timestamp,
    /// launch time). Linux >= 6.8.
    pub tx_metadata: bool,
    /// XDP_UMEM_TX_SW_CSUM: in copy mode the kernel computes a requested
    /// checksum itself instead of leaving it to the device (for testing,
    /// and devices without checksum offload). Needs `tx_metadata`.
    pub tx_sw_csum: bool,
}

/// sizeof(struct xsk_tx_metadata) (linux/if_xdp.h): the bytes before a tx
/// packet the kernel reads the request from and writes the completion to.
pub const TX_METADATA_LEN: u32 = 24;

/// How the kernel took `tx_metadata_len` (`info().txMetadata`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxMetadataReg {
    /// With the XDP_UMEM_TX_METADATA_LEN flag (Linux >= 6.11, and stable
    /// kernels that took the fix): the field is only read with the flag.
    Flag,
    /// Without the flag (Linux 6.8 to 6.10 read the field unconditionally).
    NoFlag,
}

impl TxMetadataReg {
    pub fn as_str(self) -> &'static str {
        match self {
            TxMetadataReg::Flag => "XDP_UMEM_TX_METADATA_LEN",
            TxMetadataReg::NoFlag => "tx_metadata_len without flag",
        }
    }
}

impl Default for UmemConfig {
    /// 4096-byte frames (one per page, the libxdp default): measured on veth
    /// copy mode (64-byte macswap, 2 cores) ~15% more forwarded packets than
    /// 2048, transmit-only equal. 2048 halves the UMEM and its
    /// RLIMIT_MEMLOCK charge (16 MiB -> 8 MiB at 4096 frames), which matters
    /// for unprivileged users without CAP_IPC_LOCK.
    fn default() -> Self {
        UmemConfig {
            frame_size: 4096,
            frame_count: 4096,
            headroom: 0,
            fill_size: 2048,
            comp_size: 2048,
            hugepages: HugepagePolicy::Auto,
            tx_metadata: false,
            tx_sw_csum: false,
        }
    }
}

impl UmemConfig {
    pub fn validate(&self) -> Result<()> {
        if !limits::FRAME_SIZES.contains(&self.frame_size) {
            return Err(Error::invalid(format!("frame_size {} must be 2048 or 4096", self.frame_size)));
        }
        if self.frame_count == 0 || self.frame_count > limits::MAX_FRAME_COUNT {
            return Err(Error::invalid(format!(
                "frame_count {} must be between 1 and {}",
                self.frame_count,
                limits::MAX_FRAME_COUNT
            )));
        }
        if self.headroom + XDP_PACKET_HEADROOM + MIN_DATA_ROOM > self.frame_size {
            return Err(Error::invalid(format!(
                "headroom {} leaves no room for packets: headroom + {XDP_PACKET_HEADROOM} (kernel headroom) + \
                 {MIN_DATA_ROOM} must not exceed frame_size {}",
                self.headroom, self.frame_size
            )));
        }
        if self.tx_sw_csum && !self.tx_metadata {
            return Err(Error::invalid("txSoftwareChecksum computes the checksums TX metadata requests: it needs txMetadata"));
        }
        limits::check_ring_size("fill_size", self.fill_size)?;
        limits::check_ring_size("comp_size", self.comp_size)?;
        let bytes = self.frame_count as u64 * self.frame_size as u64;
        if bytes > limits::MAX_UMEM_BYTES {
            return Err(Error::invalid(format!(
                "UMEM of {} frames x {} bytes is {bytes} bytes; it must be below 4 GiB: lower frame_count",
                self.frame_count, self.frame_size
            )));
        }
        Ok(())
    }

    /// Bytes of the whole UMEM.
    pub fn size(&self) -> usize {
        self.frame_count as usize * self.frame_size as usize
    }

    /// Offset of packet data inside a frame (rx addresses and `alloc`).
    pub fn data_offset(&self) -> u32 {
        XDP_PACKET_HEADROOM + self.headroom
    }
}

/// The memory plus its ownership ledger. Shared as `Arc<Umem>` by every
/// queue (and port) that uses it; the mapping goes when the last holder
/// drops it, after every socket using it has closed.
pub struct Umem {
    /// Locked once per burst operation (never per packet); uncontended
    /// unless several ports share the UMEM.
    pool: Mutex<FramePool>,
    area: UmemArea,
    config: UmemConfig,
    /// `fill_share()`, recomputed when a socket joins or leaves: every
    /// receive reads it, and a division per call is measurable.
    fill_share: AtomicU32,
    /// The sockets drawing receive frames from this UMEM, over all ports
    /// (for their count, lender slots and `info()`).
    members: Mutex<Vec<Membership>>,
    /// How XDP_UMEM_REG took tx_metadata_len, once registered with it.
    tx_metadata_reg: std::sync::OnceLock<TxMetadataReg>,
}

struct Membership {
    slot: u16,
    port_id: u64,
    ifname: String,
}

impl Umem {
    pub fn new(config: &UmemConfig) -> Result<Umem> {
        config.validate()?;
        let pool = FramePool::new(config.frame_count, config.frame_size)?;
        let area = UmemArea::new(config.size(), config.hugepages)?;
        Ok(Umem {
            pool: Mutex::new(pool),
            area,
            config: config.clone(),
            fill_share: AtomicU32::new(Self::share_of(config.frame_count, 0)),
            members: Mutex::new(Vec::new()),
            tx_metadata_reg: std::sync::OnceLock::new(),
        })
    }

    /// How the kernel took tx_metadata_len (None: no TX metadata asked, or
    /// not registered yet).
    pub fn tx_metadata_reg(&self) -> Option<TxMetadataReg> {
        self.tx_metadata_reg.get().copied()
    }

    pub(crate) fn set_tx_metadata_reg(&self, how: TxMetadataReg) {
        let _ = self.tx_metadata_reg.set(how);
    }

    pub fn area(&self) -> &UmemArea {
        &self.area
    }

    pub fn config(&self) -> &UmemConfig {
        &self.config
    }

    /// The ledger, for one burst operation.
    pub fn lock(&self) -> UmemLock<'_> {
        UmemLock::new(self, self.pool.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A snapshot of the owner counts.
    pub fn owner_counts(&self) -> OwnerCounts {
        self.lock().frames().counts()
    }

    pub fn data_offset(&self) -> u32 {
        self.config.data_offset()
    }

    /// Sockets currently drawing receive frames from this UMEM.
    pub fn sockets(&self) -> u32 {
        self.members.lock().unwrap_or_else(|p| p.into_inner()).len() as u32
    }

    /// Most frames one socket may lend the kernel for receive: half the
    /// UMEM split among its sockets, so `alloc` always finds frames.
    pub fn fill_share(&self) -> u32 {
        self.fill_share.load(Ordering::Relaxed)
    }

    fn share_of(frame_count: u32, sockets: u32) -> u32 {
        (frame_count / (2 * sockets.max(1))).max(1)
    }

    /// Recompute the share after `members` (held locked) changed.
    fn members_changed(&self, members: &[Membership]) {
        self.fill_share.store(Self::share_of(self.config.frame_count, members.len() as u32), Ordering::Relaxed);
    }

    /// Interfaces of the sockets using this UMEM that belong to other
    /// ports than `port_id` (sorted, without repeats).
    pub fn interfaces_besides(&self, port_id: u64) -> Vec<String> {
        let members = self.members.lock().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<String> = members.iter().filter(|m| m.port_id != port_id).map(|m| m.ifname.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// Whether this config describes the same frames (size, count,
    /// headroom, hugepage policy); otherwise the first setting that differs
    /// as (name, this UMEM's value, the other's).
    pub fn frame_mismatch(&self, other: &UmemConfig) -> Option<(&'static str, String, String)> {
        let c = &self.config;
        if c.frame_size != other.frame_size {
            return Some(("frame_size", c.frame_size.to_string(), other.frame_size.to_string()));
        }
        if c.frame_count != other.frame_count {
            return Some(("frame_count", c.frame_count.to_string(), other.frame_count.to_string()));
        }
        if c.headroom != other.headroom {
            return Some(("headroom", c.headroom.to_string(), other.headroom.to_string()));
        }
        if c.tx_metadata != other.tx_metadata || c.tx_sw_csum != other.tx_sw_csum {
            return Some((
                "txMetadata",
                format!("{}{}", c.tx_metadata, if c.tx_sw_csum { " (software checksum)" } else { "" }),
                format!("{}{}", other.tx_metadata, if other.tx_sw_csum { " (software checksum)" } else { "" }),
            ));
        }
        if c.hugepages != other.hugepages {
            return Some(("hugepages", format!("{:?}", c.hugepages), format!("{:?}", other.hugepages)));
        }
        None
    }

    /// Bytes of an application-owned frame: `addr` may point anywhere in
    /// the frame, `addr + len` must stay inside it.
    pub fn packet(&self, addr: u32, len: u32) -> Result<&[u8]> {
        self.check_app_span(addr, len)?;
        // SAFETY: the span is inside one App-owned frame, which the kernel
        // does not touch; writes to it need `packet_mut`'s exclusive borrow
        // of the port.
        Ok(unsafe { std::slice::from_raw_parts(self.area.as_ptr().add(addr as usize), len as usize) })
    }

    /// Mutable bytes of an application-owned frame.
    ///
    /// The caller (a `SocketSet` method taking `&mut self`) is the only one
    /// writing through this port. With a UMEM shared by several ports the
    /// application owns its frames through all of them, so it must not hold
    /// views of one frame from two ports at once, as with any memory it
    /// hands out itself.
    #[allow(clippy::mut_from_ref)]
    pub fn packet_mut(&self, addr: u32, len: u32) -> Result<&mut [u8]> {
        self.check_app_span(addr, len)?;
        // SAFETY: as in `packet`; exclusivity as documented above.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.area.as_ptr().add(addr as usize), len as usize) })
    }

    fn check_app_span(&self, addr: u32, len: u32) -> Result<()> {
        match self.lock().frames().owner_of(addr as u64) {
            Some(Owner::App) => {}
            Some(o) => {
                return Err(Error::new(
                    Code::FrameOwnership,
                    format!("frame address {addr:#x} is not owned by the application ({o:?})"),
                ))
            }
            None => return Err(Error::new(Code::FrameOwnership, format!("frame address {addr:#x} is outside the UMEM"))),
        }
        let fs = self.config.frame_size;
        if (addr % fs) as u64 + len as u64 > fs as u64 {
            return Err(Error::invalid(format!("{len} bytes at {addr:#x} cross the end of its {fs}-byte frame")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        UmemConfig::default().validate().unwrap();
    }

    #[test]
    fn rejects_bad_configs() {
        let d = UmemConfig::default();
        for bad in [
            UmemConfig { frame_size: 1024, ..d.clone() },
            UmemConfig { frame_size: 3000, ..d.clone() },
            UmemConfig { frame_count: 0, ..d.clone() },
            UmemConfig { headroom: 4096 - 256 - 63, ..d.clone() },
            UmemConfig { frame_size: 2048, headroom: 2048 - 256 - 63, ..d.clone() },
            UmemConfig { fill_size: 1000, ..d.clone() },
            UmemConfig { comp_size: 0, ..d.clone() },
            UmemConfig { frame_size: 4096, frame_count: 1 << 20, ..d.clone() },
        ] {
            assert_eq!(bad.validate().unwrap_err().code, Code::InvalidArgument, "{bad:?}");
        }
        UmemConfig { headroom: 4096 - 256 - 64, ..d.clone() }.validate().unwrap();
        UmemConfig { frame_size: 2048, headroom: 2048 - 256 - 64, ..d }.validate().unwrap();
    }

    #[test]
    fn packet_views_need_app_ownership() {
        let cfg = UmemConfig { frame_size: 2048, frame_count: 8, hugepages: HugepagePolicy::Never, ..Default::default() };
        let u = Umem::new(&cfg).unwrap();
        assert_eq!(u.area().len(), 8 * 2048);
        assert_eq!(u.packet(0, 10).unwrap_err().code, Code::FrameOwnership);
        let mut a = 0;
        u.lock().frames_mut().take(Owner::App, 1, |x| a = x);
        let off = a + u.data_offset();
        u.packet_mut(off, 4).unwrap().copy_from_slice(b"abcd");
        assert_eq!(u.packet(off, 4).unwrap(), b"abcd");
        assert_eq!(u.packet(a + 2000, 100).unwrap_err().code, Code::InvalidArgument);
        assert_eq!(u.packet(8 * 2048, 1).unwrap_err().code, Code::FrameOwnership);
    }
}
