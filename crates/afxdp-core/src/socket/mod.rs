//! One AF_XDP socket (XSK): created, given a UMEM (its own registration or a
//! share of another socket's), given rings, bound to one (interface, queue).
//!
//! Order matters to the kernel: UMEM and ring sizes are set before bind;
//! rings can be mmap'ed before bind (offsets are known once sizes are set).

mod errors;
pub mod options;
pub mod statistics;

pub(crate) use errors::memlock_message;
pub use statistics::XdpStatistics;

use crate::ring::{CompletionRing, FillRing, RxRing, TxRing};
use crate::umem::{TxMetadataReg, Umem, TX_METADATA_LEN};
use crate::{Code, Error, Result};
use std::mem::size_of;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// XDP_UMEM_REG flags (linux/if_xdp.h, newer than libc's copy).
const XDP_UMEM_TX_SW_CSUM: u32 = 1 << 1;
const XDP_UMEM_TX_METADATA_LEN: u32 = 1 << 2;

/// (major, minor) of the running kernel, from uname(2).
pub(crate) fn kernel_release() -> Option<(u32, u32)> {
    // SAFETY: utsname is plain data; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    // SAFETY: the kernel NUL-terminates release inside the array.
    let release = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }.to_string_lossy().into_owned();
    let mut parts = release.split(|c: char| !c.is_ascii_digit()).filter(|p| !p.is_empty());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Ring sizes for one socket (entries, powers of two). `fill`/`comp` are
/// None only for a socket sharing a UMEM on the *same* (interface, queue),
/// which uses the owner's fill and completion rings.
#[derive(Debug, Clone, Copy)]
pub struct RingSizes {
    pub rx: u32,
    pub tx: u32,
    pub fill: Option<u32>,
    pub comp: Option<u32>,
}

/// The mapped rings of one socket.
pub struct XskRings {
    pub rx: RxRing,
    pub tx: TxRing,
    pub fill: Option<FillRing>,
    pub comp: Option<CompletionRing>,
}

/// How a socket gets at its UMEM when it binds.
#[derive(Debug, Clone, Copy)]
pub enum BindMode {
    /// This socket registered the UMEM itself (XDP_UMEM_REG).
    Owner {
        /// XDP_USE_NEED_WAKEUP: the kernel tells us when it needs a syscall.
        need_wakeup: bool,
        /// XDP_COPY; otherwise no mode flag, and the kernel picks zero-copy
        /// when the driver supports it.
        force_copy: bool,
        /// XDP_USE_SG: packets larger than a frame come and go as chains of
        /// descriptors (Linux >= 6.6; `chain`).
        multi_buffer: bool,
    },
    /// XDP_SHARED_UMEM with the socket that registered it. The kernel
    /// inherits that socket's copy/need-wakeup/multi-buffer mode; a different (interface,
    /// queue) needs own fill and completion rings (kernel >= 5.10).
    SharedWith(RawFd),
}

/// Where a socket is bound; used in error messages.
#[derive(Debug, Clone)]
pub struct Binding {
    pub ifname: String,
    pub ifindex: u32,
    pub queue_id: u32,
}

pub struct XskSocket {
    fd: OwnedFd,
    binding: Option<Binding>,
}

pub(crate) use crate::sys::{errno, getsockopt, setsockopt};

impl XskSocket {
    /// socket(AF_XDP, SOCK_RAW): needs CAP_NET_RAW.
    pub fn new() -> Result<XskSocket> {
        let fd = crate::sys::socket(libc::AF_XDP, libc::SOCK_RAW, 0).map_err(|e| match e {
            libc::EPERM | libc::EACCES => Error::with_errno(
                Code::Permission,
                e,
                "creating an AF_XDP socket needs CAP_NET_RAW: run as root or grant the capability \
                     (e.g. setcap cap_net_raw,cap_net_admin,cap_bpf+ep on the node binary, or securityContext capabilities)",
            ),
            libc::EAFNOSUPPORT => {
                Error::with_errno(Code::NotSupported, e, "this kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS, Linux >= 4.18)")
            }
            _ => Error::sys("socket(AF_XDP)", e),
        })?;
        Ok(XskSocket { fd, binding: None })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn binding(&self) -> Option<&Binding> {
        self.binding.as_ref()
    }

    /// XDP_UMEM_REG: pin the UMEM's pages and make this socket its owner.
    /// With TX metadata, first with XDP_UMEM_TX_METADATA_LEN, then (EINVAL:
    /// a kernel that knows no such flag) without it; which one worked is
    /// recorded on the UMEM (`Umem::tx_metadata_reg`).
    pub fn register_umem(&self, umem: &Umem) -> Result<()> {
        let cfg = umem.config();
        let reg = |flags: u32, tx_metadata_len: u32| libc::xdp_umem_reg {
            addr: umem.area().as_ptr() as u64,
            len: umem.area().len() as u64,
            chunk_size: cfg.frame_size,
            headroom: cfg.headroom,
            flags,
            tx_metadata_len,
        };
        let set = |r: &libc::xdp_umem_reg| setsockopt(self.fd(), libc::SOL_XDP, libc::XDP_UMEM_REG, r);
        if !cfg.tx_metadata {
            return set(&reg(0, 0)).map_err(|e| errors::umem_reg_error(e, umem.area().len()));
        }
        let sw = if cfg.tx_sw_csum { XDP_UMEM_TX_SW_CSUM } else { 0 };
        match set(&reg(XDP_UMEM_TX_METADATA_LEN | sw, TX_METADATA_LEN)) {
            Ok(()) => {
                umem.set_tx_metadata_reg(TxMetadataReg::Flag);
                return Ok(());
            }
            Err(libc::EINVAL) => {}
            Err(e) => return Err(errors::umem_reg_error(e, umem.area().len())),
        }
        // Before 6.8 the field sat in padding the kernel ignored: a
        // registration without the flag would "work" and drop the metadata.
        if kernel_release().is_some_and(|v| v < (6, 8)) {
            return Err(Error::with_errno(
                Code::NotSupported,
                libc::EINVAL,
                "txMetadata: AF_XDP TX metadata needs Linux >= 6.8 (this kernel has no tx_metadata_len)",
            ));
        }
        match set(&reg(sw, TX_METADATA_LEN)) {
            Ok(()) => {
                umem.set_tx_metadata_reg(TxMetadataReg::NoFlag);
                Ok(())
            }
            Err(libc::EINVAL) => Err(Error::with_errno(
                Code::NotSupported,
                libc::EINVAL,
                format!(
                    "txMetadata: XDP_UMEM_REG refused tx_metadata_len {TX_METADATA_LEN} both with \
                     XDP_UMEM_TX_METADATA_LEN and without it{}: AF_XDP TX metadata needs Linux >= 6.8",
                    if cfg.tx_sw_csum { " (with XDP_UMEM_TX_SW_CSUM)" } else { "" }
                ),
            )),
            Err(e) => Err(errors::umem_reg_error(e, umem.area().len())),
        }
    }

    /// Set the ring sizes and map the rings.
    pub fn create_rings(&self, sizes: &RingSizes) -> Result<XskRings> {
        let fd = self.fd();
        let set = |opt: libc::c_int, name: &str, n: u32| {
            setsockopt(fd, libc::SOL_XDP, opt, &n).map_err(|e| {
                if e == libc::EINVAL {
                    Error::with_errno(
                        Code::InvalidArgument,
                        e,
                        format!("{name} ring size {n} rejected by the kernel: it must be a power of two"),
                    )
                } else {
                    Error::sys(format!("setsockopt({name} ring size {n})"), e)
                }
            })
        };
        if let Some(n) = sizes.fill {
            set(libc::XDP_UMEM_FILL_RING, "fill", n)?;
        }
        if let Some(n) = sizes.comp {
            set(libc::XDP_UMEM_COMPLETION_RING, "completion", n)?;
        }
        set(libc::XDP_RX_RING, "rx", sizes.rx)?;
        set(libc::XDP_TX_RING, "tx", sizes.tx)?;

        let mut off: libc::xdp_mmap_offsets = crate::sys::zeroed();
        let len = getsockopt(fd, libc::SOL_XDP, libc::XDP_MMAP_OFFSETS, &mut off)
            .map_err(|e| Error::sys("getsockopt(XDP_MMAP_OFFSETS)", e))?;
        if len != size_of::<libc::xdp_mmap_offsets>() {
            // Pre-5.4 layout without the flags word: no need_wakeup support.
            return Err(Error::new(Code::NotSupported, "kernel too old: AF_XDP ring flags need Linux >= 5.4"));
        }
        Ok(XskRings {
            rx: RxRing::map(fd, &off, sizes.rx)?,
            tx: TxRing::map(fd, &off, sizes.tx)?,
            fill: sizes.fill.map(|n| FillRing::map(fd, &off, n)).transpose()?,
            comp: sizes.comp.map(|n| CompletionRing::map(fd, &off, n)).transpose()?,
        })
    }

    /// Bind to (ifindex, queue_id). `ifname` is only used in messages.
    pub fn bind(&mut self, ifname: &str, ifindex: u32, queue_id: u32, mode: BindMode) -> Result<()> {
        let (flags, shared_fd) = match mode {
            BindMode::Owner { need_wakeup, force_copy, multi_buffer } => {
                let mut f = 0;
                if multi_buffer {
                    f |= libc::XDP_USE_SG;
                }
                if need_wakeup {
                    f |= libc::XDP_USE_NEED_WAKEUP;
                }
                if force_copy {
                    f |= libc::XDP_COPY;
                }
                (f, 0)
            }
            // Mode flags are refused together with XDP_SHARED_UMEM.
            BindMode::SharedWith(fd) => (libc::XDP_SHARED_UMEM, fd as u32),
        };
        let addr = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: flags,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue_id,
            sxdp_shared_umem_fd: shared_fd,
        };
        // SAFETY: addr is a valid sockaddr_xdp of the length passed.
        let rc = unsafe {
            libc::bind(self.fd(), (&addr as *const libc::sockaddr_xdp).cast(), size_of::<libc::sockaddr_xdp>() as libc::socklen_t)
        };
        if rc != 0 {
            return Err(errors::bind_error(errno(), ifname, ifindex, queue_id, mode));
        }
        self.binding = Some(Binding { ifname: ifname.to_string(), ifindex, queue_id });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::umem::{HugepagePolicy, UmemConfig};

    #[test]
    fn register_and_map_rings_without_binding() {
        // Runs as root in CI; an unprivileged run must fail loudly, not skip.
        let sock = XskSocket::new().expect("socket(AF_XDP) (tests need root)");
        let umem = Umem::new(&UmemConfig { frame_count: 64, hugepages: HugepagePolicy::Never, ..Default::default() }).unwrap();
        sock.register_umem(&umem).unwrap();
        let rings = sock.create_rings(&RingSizes { rx: 64, tx: 64, fill: Some(128), comp: Some(32) }).unwrap();
        assert_eq!(rings.rx.size(), 64);
        assert_eq!(rings.fill.as_ref().unwrap().size(), 128);
        assert_eq!(rings.comp.as_ref().unwrap().occupancy(), 0);
        // Registering twice is refused by the kernel.
        assert!(sock.register_umem(&umem).is_err());
    }

    #[test]
    fn bad_ring_size_is_invalid_argument() {
        let sock = XskSocket::new().unwrap();
        let umem = Umem::new(&UmemConfig { frame_count: 16, hugepages: HugepagePolicy::Never, ..Default::default() }).unwrap();
        sock.register_umem(&umem).unwrap();
        let e = sock.create_rings(&RingSizes { rx: 100, tx: 64, fill: Some(64), comp: Some(64) }).err().unwrap();
        assert_eq!(e.code, Code::InvalidArgument, "{e}");
        assert!(e.message.contains("power of two"));
    }
}
