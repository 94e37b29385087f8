//! An XSKMAP: the BPF map through which an XDP program hands packets to
//! AF_XDP sockets (key = RX queue id, value = XSK fd on update).
//!
//! Three ways to get one: from our own program (`XdpProgram`), from the
//! Device Plugin over a Unix socket (`XskMap::from_fd`), or from a bpffs pin
//! (`XskMap::open_pinned`). All operations use raw bpf(2) (`syscall`), so
//! they work without CAP_BPF/CAP_SYS_ADMIN on kernels >= 5.19.

use super::syscall::{self, MapInfo, BPF_ANY, BPF_MAP_TYPE_XSKMAP};
use crate::{Code, Error, Result};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

/// An open XSKMAP (owns its fd; closing it does not destroy a map that is
/// still used by a program or a pin).
#[derive(Debug)]
pub struct XskMap {
    fd: OwnedFd,
    info: MapInfo,
}

impl XskMap {
    /// Take ownership of a map fd (e.g. received over SCM_RIGHTS) after
    /// checking it is an XSKMAP with 4-byte keys and values.
    pub fn from_fd(fd: OwnedFd) -> Result<XskMap> {
        let info = syscall::map_info(fd.as_fd()).map_err(|mut e| {
            if e.errno.is_some() {
                e.code = Code::Bpf;
                e.message = format!("{}: the fd is not a usable BPF map", e.message);
            }
            e
        })?;
        if info.map_type != BPF_MAP_TYPE_XSKMAP {
            return Err(Error::new(
                Code::Bpf,
                format!(
                    "map '{}' (id {}) is not an XSKMAP (map type {}, an XSKMAP is type {}): \
                     the fd must be the xsks_map of an AF_XDP redirect program",
                    info.name, info.id, info.map_type, BPF_MAP_TYPE_XSKMAP
                ),
            ));
        }
        if info.key_size != 4 || info.value_size != 4 {
            return Err(Error::new(
                Code::Bpf,
                format!(
                    "XSKMAP '{}' (id {}) has {}-byte keys and {}-byte values; afxdp needs 4-byte (u32) keys and values",
                    info.name, info.id, info.key_size, info.value_size
                ),
            ));
        }
        Ok(XskMap { fd, info })
    }

    /// Open an XSKMAP pinned on a bpffs (the Device Plugin's
    /// `/tmp/afxdp_dp/<netdev>/xsks_map`, or one we pinned ourselves).
    pub fn open_pinned(path: impl AsRef<Path>) -> Result<XskMap> {
        let path = path.as_ref();
        check_on_bpffs(path).map_err(|e| e.with_path(path))?;
        let fd = syscall::obj_get(path, 0).map_err(|e| explain_obj_get(path, e).with_path(path))?;
        XskMap::from_fd(fd).map_err(|mut e| {
            e.message = format!("pinned object {}: {}", path.display(), e.message);
            e.with_path(path)
        })
    }

    /// Put the AF_XDP socket `xsk` at key `queue_id`, the RX queue it is
    /// bound to. Replaces whatever socket was there.
    pub fn insert(&self, queue_id: u32, xsk: impl AsFd) -> Result<()> {
        let key = queue_id.to_ne_bytes();
        let value = (xsk.as_fd().as_raw_fd() as u32).to_ne_bytes();
        // SAFETY: key/value are 4 bytes, validated against the map in from_fd.
        unsafe { syscall::map_update_elem_unchecked(self.fd.as_fd(), &key, &value, BPF_ANY) }.map_err(|e| {
            let errno = e.errno.unwrap_or(libc::EIO);
            let what = format!("insert socket for queue {queue_id} into XSKMAP '{}' (id {})", self.info.name, self.info.id);
            match errno {
                libc::E2BIG => Error::with_errno(
                    Code::QueueOutOfRange,
                    errno,
                    format!(
                        "{what} failed: queue id {queue_id} >= the map's max_entries {}; \
                         use a queue below {} or a map sized for this interface",
                        self.info.max_entries, self.info.max_entries
                    ),
                ),
                libc::EOPNOTSUPP | libc::ENOTSOCK | libc::EBADF => Error::with_errno(
                    Code::Bpf,
                    errno,
                    format!("{what} failed: {}: the value must be an AF_XDP socket (bound to this queue)", e.message),
                ),
                libc::EPERM | libc::EACCES => Error::with_errno(
                    Code::Permission,
                    errno,
                    format!("{what} failed: {}: the map fd is not writable (opened read-only?), or this kernel (< 5.19) requires CAP_BPF for bpf(2)", e.message),
                ),
                _ => Error::with_errno(Code::Bpf, errno, format!("{what}: {}", e.message)),
            }
        })
    }

    /// Remove the socket at `queue_id`, if any (absent is not an error).
    pub fn remove(&self, queue_id: u32) -> Result<()> {
        let key = queue_id.to_ne_bytes();
        // SAFETY: 4-byte key, validated in from_fd.
        match unsafe { syscall::map_delete_elem_unchecked(self.fd.as_fd(), &key) } {
            Ok(()) => Ok(()),
            Err(e) if e.errno == Some(libc::ENOENT) => Ok(()),
            // The kernel answers EINVAL for a key beyond max_entries: nothing there.
            Err(e) if e.errno == Some(libc::EINVAL) && queue_id >= self.info.max_entries => Ok(()),
            Err(mut e) => {
                if e.code != Code::Permission {
                    e.code = Code::Bpf;
                }
                e.message =
                    format!("remove queue {queue_id} from XSKMAP '{}' (id {}): {}", self.info.name, self.info.id, e.message);
                Err(e)
            }
        }
    }

    /// Pin the map at `path` on a bpffs so other processes can open it.
    pub fn pin(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        syscall::obj_pin(self.fd.as_fd(), path).map_err(|e| {
            let errno = e.errno.unwrap_or(libc::EIO);
            let dir = path.parent().map(|p| p.display().to_string()).unwrap_or_else(|| "/".into());
            let hint = match errno {
                libc::EPERM => format!(
                    "{dir} is not on a BPF filesystem (mount one: mount -t bpf bpf {dir}), or CAP_BPF/CAP_SYS_ADMIN is missing"
                ),
                libc::EEXIST => format!("{} already exists; remove it first", path.display()),
                libc::ENOENT => format!("directory {dir} does not exist"),
                _ => "check that the directory is on a bpffs and writable".into(),
            };
            Error::with_errno(
                if errno == libc::EACCES { Code::Permission } else { Code::Bpf },
                errno,
                format!("{}: {hint}", e.message),
            )
        })
    }

    /// Duplicate the fd (both refer to the same map).
    pub fn try_clone(&self) -> Result<XskMap> {
        let fd = self.fd.try_clone().map_err(|e| Error::sys("dup(XSKMAP fd)", e.raw_os_error().unwrap_or(libc::EIO)))?;
        Ok(XskMap { fd, info: self.info.clone() })
    }

    pub fn max_entries(&self) -> u32 {
        self.info.max_entries
    }

    /// The kernel's id of the map (same for every fd and pin of it).
    pub fn id(&self) -> u32 {
        self.info.id
    }

    /// The map's name as the kernel knows it (`xsks_map` for ours).
    pub fn name(&self) -> &str {
        &self.info.name
    }

    pub fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

impl AsFd for XskMap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for XskMap {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// statfs f_type of a BPF file system (linux/magic.h).
const BPF_FS_MAGIC: i64 = 0xcafe4a11;

/// A pinned object lives on a bpffs: refuse anything else with what it is
/// (the kernel would say EPERM or EACCES, which reads as a permission
/// problem). Paths statfs cannot reach are left to BPF_OBJ_GET's errors.
fn check_on_bpffs(path: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return Err(Error::invalid(format!("path {} contains a NUL byte", path.display())));
    };
    // SAFETY: all-zero is a valid statfs; filled by the call below.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a NUL-terminated path, st a valid out-parameter.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Ok(());
    }
    let magic = st.f_type as i64;
    if magic == BPF_FS_MAGIC {
        return Ok(());
    }
    let what = match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => "a directory",
        Ok(m) if m.file_type().is_file() => "a regular file",
        Ok(_) => "a device or special file",
        Err(_) => "a file",
    };
    Err(Error::with_errno(
        Code::InvalidArgument,
        libc::EINVAL,
        format!(
            "dp_path {} is {what} on a {} file system, not a map pinned on a BPF file system (bpffs); in \
             use_pinned_map mode dp_path must be the XSKMAP the Device Plugin pinned, by default \
             /tmp/afxdp_dp/<netdev>/xsks_map inside the bpffs it mounts for the pod",
            path.display(),
            fs_name(magic)
        ),
    ))
}

fn fs_name(magic: i64) -> String {
    match magic {
        0xEF53 => "ext2/3/4".into(),
        0x01021994 => "tmpfs".into(),
        0x794c7630 => "overlayfs".into(),
        0x58465342 => "xfs".into(),
        0x9123683E => "btrfs".into(),
        0x9fa0 => "proc".into(),
        0x62656572 => "sysfs".into(),
        0x1cd1 => "devpts".into(),
        0x27e0eb => "cgroup".into(),
        0x63677270 => "cgroup2".into(),
        0x6e736673 => "nsfs".into(),
        other => format!("non-BPF (f_type {other:#x})"),
    }
}

/// The pin is root-owned 0600, as the Device Plugin pins its maps, and this
/// process is not root: the usual Kubernetes mistake.
fn root_only_pin(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    (m.uid() == 0 && m.mode() & 0o077 == 0 && euid != 0).then_some(euid)
}

fn explain_obj_get(path: &Path, e: Error) -> Error {
    let errno = e.errno.unwrap_or(libc::EIO);
    let p = path.display();
    match errno {
        libc::ENOENT => Error::with_errno(
            Code::DevicePlugin,
            errno,
            format!(
                "no pinned map at {p}; is the Device Plugin running with BpfMapPinningEnable, \
                 and is dp_path right (default /tmp/afxdp_dp/<netdev>/xsks_map)?"
            ),
        ),
        libc::EACCES | libc::EPERM => {
            let dp = match root_only_pin(path) {
                Some(uid) => format!(
                    "it is owned by root with mode 0600, as the AF_XDP Device Plugin pins its maps, and this process \
                     runs as uid {uid}: the Device Plugin pins its map for root only, so pinned-map mode needs the pod \
                     to run as uid 0 (runAsUser: 0, still with only CAP_NET_RAW and CAP_IPC_LOCK, not privileged), \
                     or use use_cni instead. In general "
                ),
                None => String::new(),
            };
            Error::with_errno(
                Code::Permission,
                errno,
                format!(
                    "opening the pinned map {p} was refused ({}): {dp}the process needs read and write permission on \
                     the pin file (chown/chmod it or add an ACL for this uid), and kernels older than 5.19 \
                     also require CAP_BPF for any bpf(2) call",
                    std::io::Error::from_raw_os_error(errno)
                ),
            )
        }
        libc::EINVAL => Error::with_errno(
            Code::InvalidArgument,
            errno,
            format!("{p} is not a pinned BPF object (is it on a bpffs mount?): {}", e.message),
        ),
        _ => Error::with_errno(Code::Bpf, errno, format!("open pinned map {p}: {}", e.message)),
    }
}
