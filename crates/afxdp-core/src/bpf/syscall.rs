//! Raw bpf(2) wrappers: no libbpf, no feature probing.
//!
//! The unprivileged paths (open a pinned XSKMAP, insert an XSK into a map fd
//! received from the Device Plugin) must work for a process holding only
//! CAP_NET_RAW + CAP_IPC_LOCK while `kernel.unprivileged_bpf_disabled` is set.
//! On kernels >= 5.19 the commands used here (OBJ_GET, MAP_*_ELEM,
//! OBJ_GET_INFO_BY_FD) are allowed then, given file access to the pin / a map
//! fd; libbpf's probing (which creates maps and loads programs) is not, so
//! those paths go through these functions only.
//!
//! Each command gets its own `#[repr(C)]` prefix of `union bpf_attr`; the
//! kernel accepts an attr shorter than its own and zero-fills the rest.
//! Errors carry the errno (`Error::errno`) so callers can explain them.

use crate::{Error, Result};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

// enum bpf_cmd
const BPF_MAP_CREATE: libc::c_int = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_int = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
const BPF_MAP_DELETE_ELEM: libc::c_int = 3;
const BPF_OBJ_PIN: libc::c_int = 6;
const BPF_OBJ_GET: libc::c_int = 7;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_int = 15;
const BPF_LINK_CREATE: libc::c_int = 28;
const BPF_LINK_GET_FD_BY_ID: libc::c_int = 30;
const BPF_LINK_GET_NEXT_ID: libc::c_int = 31;
const BPF_LINK_DETACH: libc::c_int = 34;

/// `enum bpf_attach_type`: XDP on a netdev (BPF_LINK_CREATE).
pub const BPF_XDP: u32 = 37;
/// `enum bpf_link_type`: an XDP link.
pub const BPF_LINK_TYPE_XDP: u32 = 6;

/// `enum bpf_map_type` values used in this crate.
pub const BPF_MAP_TYPE_HASH: u32 = 1;
pub const BPF_MAP_TYPE_ARRAY: u32 = 2;
pub const BPF_MAP_TYPE_XSKMAP: u32 = 17;

/// `enum bpf_prog_type`: XDP.
pub const BPF_PROG_TYPE_XDP: u32 = 6;

/// Map update flags.
pub const BPF_ANY: u64 = 0;
pub const BPF_NOEXIST: u64 = 1;
pub const BPF_EXIST: u64 = 2;

/// `file_flags` of BPF_OBJ_GET.
pub const BPF_F_RDONLY: u32 = 1 << 3;
pub const BPF_F_WRONLY: u32 = 1 << 4;

const BPF_OBJ_NAME_LEN: usize = 16;

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; BPF_OBJ_NAME_LEN],
}

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct ObjAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    /// The ifindex for BPF_XDP.
    target: u32,
    attach_type: u32,
    flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct IdAttr {
    /// start_id, or the link id for GET_FD_BY_ID.
    id: u32,
    next_id: u32,
    open_flags: u32,
}

/// `struct bpf_link_info` up to the XDP member of its union (at offset 16).
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct RawLinkInfo {
    link_type: u32,
    id: u32,
    prog_id: u32,
    _pad: u32,
    ifindex: u32,
    _pad2: u32,
}

/// `struct bpf_map_info` up to `map_extra` (kernel 5.16 layout; older
/// kernels fill a prefix, the rest stays zero).
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct RawMapInfo {
    map_type: u32,
    id: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    name: [u8; BPF_OBJ_NAME_LEN],
    ifindex: u32,
    btf_vmlinux_value_type_id: u32,
    netns_dev: u64,
    netns_ino: u64,
    btf_id: u32,
    btf_key_type_id: u32,
    btf_value_type_id: u32,
    _pad: u32,
    map_extra: u64,
}

/// `struct bpf_prog_info` up to `name` (all we read).
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct RawProgInfo {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; BPF_OBJ_NAME_LEN],
}

/// What BPF_OBJ_GET_INFO_BY_FD says about a map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapInfo {
    pub map_type: u32,
    pub id: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub name: String,
}

/// What BPF_OBJ_GET_INFO_BY_FD says about a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgInfo {
    pub prog_type: u32,
    pub id: u32,
    pub name: String,
    /// Ids of the maps it uses (the first MAX_PROG_MAPS).
    pub map_ids: Vec<u32>,
}

/// How many map ids `prog_info` asks for: afxdp's programs use one or two.
const MAX_PROG_MAPS: usize = 8;

/// Which kind of BPF object an fd refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjKind {
    Map,
    Prog,
    Link,
    Other,
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> std::result::Result<libc::c_long, i32> {
    // SAFETY: attr points to a live, initialised #[repr(C)] struct whose size
    // is passed along; the kernel reads/writes at most that many bytes. Any
    // pointers inside it were set by the caller to buffers that outlive the call.
    let ret = unsafe {
        libc::syscall(libc::SYS_bpf, cmd, attr as *mut T as *mut libc::c_void, std::mem::size_of::<T>() as libc::c_uint)
    };
    if ret < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
    } else {
        Ok(ret)
    }
}

fn path_cstring(path: &Path) -> Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::invalid(format!("path {} contains a NUL byte", path.display())))
}

fn name_from(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// BPF_MAP_CREATE with the basic attributes. Needs CAP_BPF (or root) on
/// current kernels; used by tests and by a test Device Plugin server.
pub fn map_create(map_type: u32, key_size: u32, value_size: u32, max_entries: u32, name: &str) -> Result<OwnedFd> {
    let mut attr = MapCreateAttr { map_type, key_size, value_size, max_entries, ..Default::default() };
    // Map names: at most 15 chars of [A-Za-z0-9_.]; silently shortened here.
    for (dst, src) in attr.map_name.iter_mut().zip(name.bytes().take(BPF_OBJ_NAME_LEN - 1)) {
        *dst = src;
    }
    let fd = bpf(BPF_MAP_CREATE, &mut attr).map_err(|e| Error::sys(format!("bpf(BPF_MAP_CREATE, type {map_type})"), e))?;
    // SAFETY: the kernel returned a new fd that nothing else owns (bpf() sets O_CLOEXEC).
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// BPF_OBJ_GET: open a pinned object. `file_flags` 0 = read+write, or
/// `BPF_F_RDONLY` / `BPF_F_WRONLY`.
pub fn obj_get(path: &Path, file_flags: u32) -> Result<OwnedFd> {
    let c = path_cstring(path)?;
    let mut attr = ObjAttr { pathname: c.as_ptr() as u64, bpf_fd: 0, file_flags };
    let fd = bpf(BPF_OBJ_GET, &mut attr).map_err(|e| Error::sys(format!("bpf(BPF_OBJ_GET, {})", path.display()), e))?;
    // SAFETY: new fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// BPF_OBJ_PIN: pin a map/program/link fd at `path` (must be on a bpffs).
pub fn obj_pin(fd: BorrowedFd<'_>, path: &Path) -> Result<()> {
    let c = path_cstring(path)?;
    let mut attr = ObjAttr { pathname: c.as_ptr() as u64, bpf_fd: fd.as_raw_fd() as u32, file_flags: 0 };
    bpf(BPF_OBJ_PIN, &mut attr).map_err(|e| Error::sys(format!("bpf(BPF_OBJ_PIN, {})", path.display()), e))?;
    Ok(())
}

fn get_info<T>(fd: BorrowedFd<'_>, info: &mut T) -> Result<()> {
    let mut attr =
        InfoAttr { bpf_fd: fd.as_raw_fd() as u32, info_len: std::mem::size_of::<T>() as u32, info: info as *mut T as u64 };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)
        .map_err(|e| Error::sys(format!("bpf(BPF_OBJ_GET_INFO_BY_FD, fd {})", fd.as_raw_fd()), e))?;
    Ok(())
}

/// Which BPF object an fd is, from its anon-inode name in /proc/self/fd.
/// `None` when /proc is unavailable. Needed because OBJ_GET_INFO_BY_FD
/// answers for whatever the fd is, in that object's info layout.
pub fn obj_kind(fd: BorrowedFd<'_>) -> Option<ObjKind> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    let s = link.to_string_lossy();
    Some(match s.as_ref() {
        "anon_inode:bpf-map" => ObjKind::Map,
        "anon_inode:bpf-prog" => ObjKind::Prog,
        "anon_inode:bpf_link" => ObjKind::Link,
        _ => ObjKind::Other,
    })
}

/// BPF_OBJ_GET_INFO_BY_FD for a map fd. Refuses fds that are known not to
/// be maps (their info would be misread).
pub fn map_info(fd: BorrowedFd<'_>) -> Result<MapInfo> {
    if let Some(kind) = obj_kind(fd) {
        if kind != ObjKind::Map {
            return Err(Error::new(
                crate::Code::Bpf,
                format!("fd {} is not a BPF map (it is {kind:?}); pass the XSKMAP's fd", fd.as_raw_fd()),
            ));
        }
    }
    let mut raw = RawMapInfo::default();
    get_info(fd, &mut raw)?;
    Ok(MapInfo {
        map_type: raw.map_type,
        id: raw.id,
        key_size: raw.key_size,
        value_size: raw.value_size,
        max_entries: raw.max_entries,
        map_flags: raw.map_flags,
        name: name_from(&raw.name),
    })
}

/// BPF_OBJ_GET_INFO_BY_FD for a program fd.
pub fn prog_info(fd: BorrowedFd<'_>) -> Result<ProgInfo> {
    if let Some(kind) = obj_kind(fd) {
        if kind != ObjKind::Prog {
            return Err(Error::new(crate::Code::Bpf, format!("fd {} is not a BPF program (it is {kind:?})", fd.as_raw_fd())));
        }
    }
    let mut ids = [0u32; MAX_PROG_MAPS];
    // The kernel writes at most nr_map_ids ids to map_ids (`ids`, which
    // outlives the call) and sets nr_map_ids to how many there are.
    let mut raw = RawProgInfo { nr_map_ids: ids.len() as u32, map_ids: ids.as_mut_ptr() as u64, ..Default::default() };
    get_info(fd, &mut raw)?;
    let n = (raw.nr_map_ids as usize).min(ids.len());
    Ok(ProgInfo { prog_type: raw.prog_type, id: raw.id, name: name_from(&raw.name), map_ids: ids[..n].to_vec() })
}

/// What BPF_OBJ_GET_INFO_BY_FD says about a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    pub link_type: u32,
    pub id: u32,
    pub prog_id: u32,
    /// For XDP links: the interface (0 once the link is detached).
    pub ifindex: u32,
}

/// BPF_LINK_CREATE for an XDP program on `ifindex` with mode `flags`
/// (XDP_FLAGS_DRV_MODE / XDP_FLAGS_SKB_MODE). The kernel detaches the
/// program when the last fd of the link closes, so it dies with this
/// process; the fd is close-on-exec (the kernel sets O_CLOEXEC). Err = errno.
pub fn link_create_xdp(prog: BorrowedFd<'_>, ifindex: u32, flags: u32) -> std::result::Result<OwnedFd, i32> {
    let mut attr = LinkCreateAttr { prog_fd: prog.as_raw_fd() as u32, target: ifindex, attach_type: BPF_XDP, flags };
    let fd = bpf(BPF_LINK_CREATE, &mut attr)?;
    // SAFETY: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// BPF_LINK_DETACH: detach the link's program now (the fd stays valid, the
/// link defunct). Err = errno (ENOLINK: already detached).
pub fn link_detach(link: BorrowedFd<'_>) -> std::result::Result<(), i32> {
    let mut attr = IdAttr { id: link.as_raw_fd() as u32, ..Default::default() };
    bpf(BPF_LINK_DETACH, &mut attr)?;
    Ok(())
}

/// BPF_OBJ_GET_INFO_BY_FD for a link fd.
pub fn link_info(fd: BorrowedFd<'_>) -> Result<LinkInfo> {
    let mut raw = RawLinkInfo::default();
    get_info(fd, &mut raw)?;
    Ok(LinkInfo { link_type: raw.link_type, id: raw.id, prog_id: raw.prog_id, ifindex: raw.ifindex })
}

/// The live XDP link on `ifindex` (in any namespace: ifindexes repeat, so
/// `prog_id` narrows it): Ok(None) when there is none, Err(errno) when the
/// links cannot be listed (that needs CAP_SYS_ADMIN). For error messages.
pub fn find_xdp_link(ifindex: u32, prog_id: u32) -> std::result::Result<Option<LinkInfo>, i32> {
    let mut id = 0u32;
    // Bounded: link ids strictly increase in this walk, and ENOENT ends it.
    for _ in 0..100_000 {
        let mut next = IdAttr { id, ..Default::default() };
        match bpf(BPF_LINK_GET_NEXT_ID, &mut next) {
            Ok(_) => {}
            Err(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(e),
        }
        id = next.next_id;
        let mut get = IdAttr { id, ..Default::default() };
        let fd = match bpf(BPF_LINK_GET_FD_BY_ID, &mut get) {
            Ok(fd) => fd,
            Err(libc::ENOENT) => continue, // went away meanwhile
            Err(e) => return Err(e),
        };
        // SAFETY: a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        if let Ok(info) = link_info(fd.as_fd()) {
            if info.link_type == BPF_LINK_TYPE_XDP && info.ifindex == ifindex && info.prog_id == prog_id {
                return Ok(Some(info));
            }
        }
    }
    Ok(None)
}

/// Processes holding an fd of link `link_id` (from /proc/*/fdinfo), as
/// "pid (comm)"; for error messages only. At most a few.
pub fn link_holders(link_id: u32) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return out };
    let want = format!("link_id:\t{link_id}\n");
    for p in procs.flatten() {
        let name = p.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else { continue };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
        for fd in fds.flatten() {
            let is_link = std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:bpf_link");
            if !is_link {
                continue;
            }
            let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy()));
            if info.is_ok_and(|i| i.contains(&want)) {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                out.push(format!("pid {pid} ({})", comm.trim()));
                break;
            }
        }
        if out.len() >= 4 {
            break;
        }
    }
    out
}

fn check_sizes(fd: BorrowedFd<'_>, key: usize, value: Option<usize>) -> Result<()> {
    let info = map_info(fd)?;
    let value_ok = value.is_none_or(|v| v == info.value_size as usize);
    if key != info.key_size as usize || !value_ok {
        return Err(Error::invalid(format!(
            "map {} (id {}) has {}-byte keys and {}-byte values; got key {} bytes{}",
            info.name,
            info.id,
            info.key_size,
            info.value_size,
            key,
            value.map(|v| format!(", value {v} bytes")).unwrap_or_default()
        )));
    }
    Ok(())
}

/// BPF_MAP_UPDATE_ELEM without checking buffer sizes.
///
/// # Safety
/// `key.len()` and `value.len()` must be at least the map's key_size and
/// value_size: the kernel reads that many bytes from each.
pub unsafe fn map_update_elem_unchecked(fd: BorrowedFd<'_>, key: &[u8], value: &[u8], flags: u64) -> Result<()> {
    let mut attr = MapElemAttr {
        map_fd: fd.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        value: value.as_ptr() as u64,
        flags,
        ..Default::default()
    };
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map_err(|e| Error::sys("bpf(BPF_MAP_UPDATE_ELEM)", e))?;
    Ok(())
}

/// BPF_MAP_DELETE_ELEM without checking the key size.
///
/// # Safety
/// `key.len()` must be at least the map's key_size.
pub unsafe fn map_delete_elem_unchecked(fd: BorrowedFd<'_>, key: &[u8]) -> Result<()> {
    let mut attr = MapElemAttr { map_fd: fd.as_raw_fd() as u32, key: key.as_ptr() as u64, ..Default::default() };
    bpf(BPF_MAP_DELETE_ELEM, &mut attr).map_err(|e| Error::sys("bpf(BPF_MAP_DELETE_ELEM)", e))?;
    Ok(())
}

/// BPF_MAP_LOOKUP_ELEM without checking buffer sizes; `Ok(false)` = no entry.
///
/// # Safety
/// `key.len()` must be at least the map's key_size and `value.len()` at least
/// its value_size (times the CPU count for per-CPU maps): the kernel writes
/// that many bytes into `value`.
pub unsafe fn map_lookup_elem_unchecked(fd: BorrowedFd<'_>, key: &[u8], value: &mut [u8]) -> Result<bool> {
    let mut attr = MapElemAttr {
        map_fd: fd.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        value: value.as_mut_ptr() as u64,
        ..Default::default()
    };
    match bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) {
        Ok(_) => Ok(true),
        Err(libc::ENOENT) => Ok(false),
        Err(e) => Err(Error::sys("bpf(BPF_MAP_LOOKUP_ELEM)", e)),
    }
}

/// BPF_MAP_UPDATE_ELEM; checks `key`/`value` against the map's sizes first.
pub fn map_update_elem(fd: BorrowedFd<'_>, key: &[u8], value: &[u8], flags: u64) -> Result<()> {
    check_sizes(fd, key.len(), Some(value.len()))?;
    // SAFETY: sizes checked against the map (immutable after creation).
    unsafe { map_update_elem_unchecked(fd, key, value, flags) }
}

/// BPF_MAP_DELETE_ELEM; checks `key` against the map's key size first.
pub fn map_delete_elem(fd: BorrowedFd<'_>, key: &[u8]) -> Result<()> {
    check_sizes(fd, key.len(), None)?;
    // SAFETY: size checked.
    unsafe { map_delete_elem_unchecked(fd, key) }
}

/// BPF_MAP_LOOKUP_ELEM into a fresh buffer; `Ok(None)` = no entry. Not for
/// per-CPU maps (their value is value_size × possible CPUs).
pub fn map_lookup_elem(fd: BorrowedFd<'_>, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let info = map_info(fd)?;
    if key.len() != info.key_size as usize {
        return Err(Error::invalid(format!(
            "map {} (id {}) has {}-byte keys; got {} bytes",
            info.name,
            info.id,
            info.key_size,
            key.len()
        )));
    }
    let mut value = vec![0u8; info.value_size as usize];
    // SAFETY: sizes match the map's.
    let found = unsafe { map_lookup_elem_unchecked(fd, key, &mut value)? };
    Ok(found.then_some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_layouts_match_the_uapi() {
        // Offsets from include/uapi/linux/bpf.h.
        assert_eq!(std::mem::size_of::<MapElemAttr>(), 32);
        assert_eq!(std::mem::size_of::<ObjAttr>(), 16);
        assert_eq!(std::mem::size_of::<InfoAttr>(), 16);
        assert_eq!(std::mem::offset_of!(MapCreateAttr, map_name), 28);
        assert_eq!(std::mem::offset_of!(RawMapInfo, name), 24);
        assert_eq!(std::mem::offset_of!(RawMapInfo, netns_dev), 48);
        assert_eq!(std::mem::offset_of!(RawMapInfo, map_extra), 80);
        assert_eq!(std::mem::offset_of!(RawProgInfo, load_time), 40);
        assert_eq!(std::mem::offset_of!(RawProgInfo, name), 64);
        assert_eq!(std::mem::size_of::<LinkCreateAttr>(), 16);
        assert_eq!(std::mem::offset_of!(RawLinkInfo, ifindex), 16);
        assert_eq!(BPF_XDP, libbpf_rs::libbpf_sys::BPF_XDP);
        assert_eq!(BPF_LINK_TYPE_XDP, libbpf_rs::libbpf_sys::BPF_LINK_TYPE_XDP);
        assert_eq!(BPF_LINK_CREATE, libbpf_rs::libbpf_sys::BPF_LINK_CREATE as libc::c_int);
        assert_eq!(BPF_LINK_DETACH, libbpf_rs::libbpf_sys::BPF_LINK_DETACH as libc::c_int);
        assert_eq!(BPF_LINK_GET_NEXT_ID, libbpf_rs::libbpf_sys::BPF_LINK_GET_NEXT_ID as libc::c_int);
        assert_eq!(BPF_LINK_GET_FD_BY_ID, libbpf_rs::libbpf_sys::BPF_LINK_GET_FD_BY_ID as libc::c_int);
    }

    #[test]
    fn obj_get_missing_path_reports_enoent() {
        let err = obj_get(Path::new("/nonexistent/afxdp/xsks_map"), 0).unwrap_err();
        assert_eq!(err.errno, Some(libc::ENOENT));
        assert!(err.message.contains("/nonexistent/afxdp/xsks_map"), "{}", err.message);
    }
}
