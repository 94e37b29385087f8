//! AF_UNIX plumbing: socket addresses, bind/listen/connect/accept, socket
//! pairs, SO_PEERCRED, and one record with fds as SCM_RIGHTS each way.

use super::{errno, owned, SysResult};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Longest `sun_path` including its NUL.
pub const SUN_PATH_MAX: usize = 108;

/// A filled `sockaddr_un` for a path.
pub struct UnixAddr {
    addr: libc::sockaddr_un,
    len: libc::socklen_t,
}

impl UnixAddr {
    /// None: the path is empty, too long for sun_path or contains NUL.
    pub fn new(path: &Path) -> Option<UnixAddr> {
        let bytes = path.as_os_str().as_bytes();
        if bytes.is_empty() || bytes.len() >= SUN_PATH_MAX || bytes.contains(&0) {
            return None;
        }
        // SAFETY: all-zero is a valid sockaddr_un.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        let len = (size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
        Some(UnixAddr { addr, len })
    }

    fn ptr(&self) -> *const libc::sockaddr {
        (&self.addr as *const libc::sockaddr_un).cast()
    }
}

pub fn bind(fd: BorrowedFd<'_>, addr: &UnixAddr) -> SysResult<()> {
    // SAFETY: addr holds a valid sockaddr_un of addr.len bytes.
    if unsafe { libc::bind(fd.as_raw_fd(), addr.ptr(), addr.len) } < 0 {
        return Err(errno());
    }
    Ok(())
}

pub fn listen(fd: BorrowedFd<'_>, backlog: libc::c_int) -> SysResult<()> {
    // SAFETY: plain syscall on a live fd.
    if unsafe { libc::listen(fd.as_raw_fd(), backlog) } < 0 {
        return Err(errno());
    }
    Ok(())
}

pub fn connect(fd: BorrowedFd<'_>, addr: &UnixAddr) -> SysResult<()> {
    // SAFETY: addr holds a valid sockaddr_un of addr.len bytes.
    if unsafe { libc::connect(fd.as_raw_fd(), addr.ptr(), addr.len) } < 0 {
        return Err(errno());
    }
    Ok(())
}

/// `accept4(fd, NULL, NULL, flags | SOCK_CLOEXEC)`.
pub fn accept(fd: BorrowedFd<'_>, flags: libc::c_int) -> SysResult<OwnedFd> {
    // SAFETY: null address buffers are allowed; the result is checked by `owned`.
    owned(unsafe { libc::accept4(fd.as_raw_fd(), std::ptr::null_mut(), std::ptr::null_mut(), flags | libc::SOCK_CLOEXEC) })
}

/// A connected close-on-exec pair of `ty` sockets.
pub fn socketpair(ty: libc::c_int) -> SysResult<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: fds has room for two ints.
    if unsafe { libc::socketpair(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } < 0 {
        return Err(errno());
    }
    // SAFETY: two fresh fds we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The peer's (pid, uid, gid), captured at connect time (SO_PEERCRED).
pub fn peer_cred(fd: BorrowedFd<'_>) -> SysResult<libc::ucred> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    super::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEERCRED, &mut cred)?;
    Ok(cred)
}

/// Room for this many fds in a received record's control data.
const CMSG_BUF: usize = 128;

/// Aligned control-message buffer.
#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_BUF]);

fn cmsg_space(bytes: usize) -> usize {
    // SAFETY: CMSG_SPACE is pure arithmetic.
    unsafe { libc::CMSG_SPACE(bytes as u32) as usize }
}

/// `sendmsg` of one record with at most one fd as SCM_RIGHTS; the bytes sent.
pub fn send_record(fd: BorrowedFd<'_>, record: &[u8], pass: Option<BorrowedFd<'_>>, flags: libc::c_int) -> SysResult<usize> {
    let mut iov = libc::iovec { iov_base: record.as_ptr() as *mut libc::c_void, iov_len: record.len() };
    let mut cmsg = CmsgBuf([0; CMSG_BUF]);
    // SAFETY: all-zero is a valid msghdr.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(pass) = pass {
        let space = cmsg_space(size_of::<RawFd>());
        msg.msg_control = cmsg.0.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: msg_control points at `space` bytes (≤ 128) of an
        // 8-aligned buffer, so CMSG_FIRSTHDR is non-null and in bounds.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut RawFd, pass.as_raw_fd());
        }
    }
    // SAFETY: msg points at live iov/cmsg buffers (the kernel only reads a
    // record being sent; iov_base is *mut only by the struct's type).
    let n = unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, flags) };
    if n < 0 {
        Err(errno())
    } else {
        Ok(n as usize)
    }
}

/// One received record.
#[derive(Debug)]
pub struct RecvRecord {
    /// Bytes written into the buffer.
    pub len: usize,
    /// Every fd that came as SCM_RIGHTS, already owned (close-on-exec).
    pub fds: Vec<OwnedFd>,
    /// `msg_flags` (MSG_TRUNC, MSG_CTRUNC).
    pub flags: libc::c_int,
}

/// `recvmsg` of one record into `buf` with room for `max_fds` fds
/// (MSG_CMSG_CLOEXEC is added). Every received fd is owned at once, so a
/// surplus is closed when the caller drops it, never leaked.
pub fn recv_record(fd: BorrowedFd<'_>, buf: &mut [u8], max_fds: usize, flags: libc::c_int) -> SysResult<RecvRecord> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let mut cmsg = CmsgBuf([0; CMSG_BUF]);
    let space = cmsg_space(max_fds * size_of::<RawFd>()).min(CMSG_BUF);
    // SAFETY: all-zero is a valid msghdr.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.0.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg points at live, writable buffers of the given sizes.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, flags | libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(errno());
    }
    // Take ownership of every fd first, whatever else happened.
    let fds = take_fds(&msg);
    Ok(RecvRecord { len: n as usize, fds, flags: msg.msg_flags })
}

/// Wrap every SCM_RIGHTS fd in `msg`'s control data as an `OwnedFd`.
fn take_fds(msg: &libc::msghdr) -> Vec<OwnedFd> {
    let mut out = Vec::new();
    if msg.msg_control.is_null() || msg.msg_controllen == 0 {
        return out;
    }
    // SAFETY: the kernel wrote msg_controllen bytes of well-formed cmsgs into
    // our buffer (with MSG_CTRUNC it writes only whole ones that fit, fd
    // arrays shortened to what was installed); the CMSG_* walkers stay within
    // msg_controllen. Each fd in an SCM_RIGHTS payload was installed in our
    // table by this recvmsg and belongs to nobody else.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c) as *const u8;
                let header = libc::CMSG_LEN(0) as usize;
                let payload = ((*c).cmsg_len as usize).saturating_sub(header);
                for i in 0..payload / size_of::<RawFd>() {
                    let fd: RawFd = std::ptr::read_unaligned(data.add(i * size_of::<RawFd>()) as *const RawFd);
                    if fd >= 0 {
                        out.push(OwnedFd::from_raw_fd(fd));
                    }
                }
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn records_carry_fds() {
        let (a, b) = socketpair(libc::SOCK_SEQPACKET).unwrap();
        let extra = super::super::eventfd().unwrap();
        assert_eq!(send_record(a.as_fd(), b"/fd", Some(extra.as_fd()), libc::MSG_NOSIGNAL), Ok(3));
        let mut buf = [0u8; 8];
        let r = recv_record(b.as_fd(), &mut buf, 1, 0).unwrap();
        assert_eq!((&buf[..r.len], r.fds.len(), r.flags & libc::MSG_TRUNC), (&b"/fd"[..], 1, 0));
        assert_eq!(peer_cred(a.as_fd()).unwrap().pid, std::process::id() as i32);
        assert!(UnixAddr::new(Path::new(&"x".repeat(SUN_PATH_MAX))).is_none());
        assert!(UnixAddr::new(Path::new("")).is_none());
    }
}
