//! Raw syscall plumbing behind small safe functions: socket options, fd
//! flags, poll, eventfd, dup (here), statfs/mount/getrandom ([`fs`]), AF_UNIX addresses and
//! SCM_RIGHTS fd passing ([`unix`]), and netlink framing ([`netlink`]).
//! Callers above this module handle errors and policy; the functions here
//! only wrap one call each and return the errno on failure, so the caller
//! can word the error with its own subject.

pub mod fs;
pub mod netlink;
pub mod unix;

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// A failed call's errno.
pub type Errno = i32;
pub type SysResult<T> = std::result::Result<T, Errno>;

/// errno of the last failing libc call on this thread.
pub fn errno() -> Errno {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// Wrap a just-returned fd (or -1) as an `OwnedFd`.
fn owned(fd: RawFd) -> SysResult<OwnedFd> {
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: a fresh fd a syscall just returned to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `socket(domain, ty | SOCK_CLOEXEC, protocol)`.
pub fn socket(domain: libc::c_int, ty: libc::c_int, protocol: libc::c_int) -> SysResult<OwnedFd> {
    // SAFETY: plain syscall; the result is checked by `owned`.
    owned(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, protocol) })
}

/// Plain-old-data option values: any bit pattern the kernel writes is a
/// valid value (integers, `#[repr(C)]` structs of integers).
///
/// # Safety
/// Implement only for types without invalid bit patterns or pointers.
pub unsafe trait SockOpt: Copy {}
// SAFETY: integers accept every bit pattern.
unsafe impl SockOpt for libc::c_int {}
// SAFETY: integers accept every bit pattern.
unsafe impl SockOpt for u32 {}
// SAFETY: two integers.
unsafe impl SockOpt for libc::timeval {}
// SAFETY: three integers.
unsafe impl SockOpt for libc::ucred {}
// SAFETY: the AF_XDP option structs are integers only (linux/if_xdp.h).
unsafe impl SockOpt for libc::xdp_umem_reg {}
// SAFETY: as above.
unsafe impl SockOpt for libc::xdp_mmap_offsets {}
// SAFETY: as above.
unsafe impl SockOpt for libc::xdp_options {}
// SAFETY: as above.
unsafe impl SockOpt for libc::xdp_statistics {}

/// An all-zero option value, to be filled by `getsockopt`.
pub fn zeroed<T: SockOpt>() -> T {
    // SAFETY: SockOpt types accept every bit pattern, all-zero included.
    unsafe { std::mem::zeroed() }
}

/// `setsockopt` with a `T` value.
pub fn setsockopt<T: SockOpt>(fd: RawFd, level: libc::c_int, name: libc::c_int, val: &T) -> SysResult<()> {
    // SAFETY: val points to a live T of the length we pass; the kernel only reads it.
    let rc = unsafe { libc::setsockopt(fd, level, name, (val as *const T).cast(), size_of::<T>() as libc::socklen_t) };
    if rc == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// `getsockopt` into a `T`; returns the length the kernel wrote.
pub fn getsockopt<T: SockOpt>(fd: RawFd, level: libc::c_int, name: libc::c_int, val: &mut T) -> SysResult<usize> {
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: val is a writable T of `len` bytes, and any bytes are a valid T (SockOpt).
    let rc = unsafe { libc::getsockopt(fd, level, name, (val as *mut T).cast(), &mut len) };
    if rc == 0 {
        Ok(len as usize)
    } else {
        Err(errno())
    }
}

/// An int socket option (SO_DOMAIN, SO_ERROR, ...).
pub fn getsockopt_int(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int) -> SysResult<libc::c_int> {
    let mut v: libc::c_int = 0;
    getsockopt(fd.as_raw_fd(), level, name, &mut v)?;
    Ok(v)
}

/// Set an int socket option.
pub fn setsockopt_int(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int, val: libc::c_int) -> SysResult<()> {
    setsockopt(fd.as_raw_fd(), level, name, &val)
}

/// SO_SNDTIMEO / SO_RCVTIMEO. A zero timeval means "block forever", so
/// `d` is raised to at least 1 ms.
pub fn set_socket_timeout(fd: BorrowedFd<'_>, opt: libc::c_int, d: Duration) -> SysResult<()> {
    let d = d.max(Duration::from_millis(1));
    let tv = libc::timeval {
        tv_sec: d.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, opt, &tv)
}

/// Turn O_NONBLOCK on or off.
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> SysResult<()> {
    // SAFETY: fcntl(F_GETFL) on a live fd.
    let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if fl < 0 {
        return Err(errno());
    }
    let want = if on { fl | libc::O_NONBLOCK } else { fl & !libc::O_NONBLOCK };
    // SAFETY: fcntl(F_SETFL) on a live fd.
    if want != fl && unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, want) } < 0 {
        return Err(errno());
    }
    Ok(())
}

/// A `pollfd` for `fd` (None: an entry poll ignores).
pub fn pollfd(fd: Option<BorrowedFd<'_>>, events: libc::c_short) -> libc::pollfd {
    libc::pollfd { fd: fd.map_or(-1, |f| f.as_raw_fd()), events, revents: 0 }
}

/// `poll(fds, timeout_ms)` (-1: no limit); the number of ready entries.
/// EINTR is returned as an error for the caller to retry with its deadline.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: libc::c_int) -> SysResult<usize> {
    // SAFETY: fds is a live, writable slice of pollfds of the given length.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r as usize)
    }
}

/// The revents of one poll on `fd` (0 on timeout or EINTR).
pub fn poll_one(fd: BorrowedFd<'_>, events: libc::c_short, timeout_ms: libc::c_int) -> SysResult<libc::c_short> {
    let mut p = [pollfd(Some(fd), events)];
    match poll(&mut p, timeout_ms) {
        Ok(_) => Ok(p[0].revents),
        Err(libc::EINTR) => Ok(0),
        Err(e) => Err(e),
    }
}

/// A non-blocking, close-on-exec eventfd used as a latch: `signal` makes it
/// readable for good (nobody reads it).
pub fn eventfd() -> SysResult<OwnedFd> {
    // SAFETY: plain syscall; the result is checked by `owned`.
    owned(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })
}

/// Add 1 to an eventfd. It cannot block (EFD_NONBLOCK) and a full counter
/// (EAGAIN) is still readable, so the result is not needed.
pub fn eventfd_signal(fd: BorrowedFd<'_>) {
    let one: u64 = 1;
    // SAFETY: an 8-byte write from a live u64.
    unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

/// Reset an eventfd's counter to 0 (a read; EAGAIN when it already is).
pub fn eventfd_clear(fd: BorrowedFd<'_>) {
    let mut v: u64 = 0;
    // SAFETY: an 8-byte read into a live u64; EFD_NONBLOCK, so it cannot block.
    unsafe { libc::read(fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
}

/// Whether a latch eventfd has been signalled.
pub fn eventfd_signalled(fd: BorrowedFd<'_>) -> bool {
    poll_one(fd, libc::POLLIN, 0).is_ok_and(|r| r != 0)
}

/// A zero-length `sendto(fd, NULL, 0, flags, NULL, 0)` (the AF_XDP tx kick).
#[inline]
pub fn send_empty(fd: RawFd, flags: libc::c_int) -> SysResult<()> {
    // SAFETY: a zero-length send with no buffer and no address.
    let rc = unsafe { libc::sendto(fd, std::ptr::null(), 0, flags, std::ptr::null(), 0) };
    if rc >= 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// A zero-length `recvfrom(fd, NULL, 0, flags, NULL, NULL)` (the AF_XDP rx wakeup).
#[inline]
pub fn recv_empty(fd: RawFd, flags: libc::c_int) -> SysResult<()> {
    // SAFETY: a zero-length receive with no buffer and no address.
    let rc = unsafe { libc::recvfrom(fd, std::ptr::null_mut(), 0, flags, std::ptr::null_mut(), std::ptr::null_mut()) };
    if rc >= 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// The soft limit of `resource` (`getrlimit`), None when unlimited or unknown.
pub fn soft_rlimit(resource: libc::__rlimit_resource_t) -> Option<u64> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: r is a valid out-parameter.
    if unsafe { libc::getrlimit(resource, &mut r) } != 0 || r.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    Some(r.rlim_cur)
}

/// Whether an interface has this index in the thread's network namespace.
pub fn ifindex_exists(ifindex: u32) -> bool {
    let mut buf = [0 as libc::c_char; libc::IFNAMSIZ];
    // SAFETY: buf has IFNAMSIZ bytes as if_indextoname requires.
    !unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) }.is_null()
}

/// `shutdown(fd, SHUT_RDWR)`; a socket already shut down is fine.
pub fn shutdown(fd: BorrowedFd<'_>) {
    // SAFETY: shutdown on a live fd.
    unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR) };
}

/// `dup(fd)` with close-on-exec.
pub fn dup(fd: BorrowedFd<'_>) -> SysResult<OwnedFd> {
    dup_raw(fd.as_raw_fd())
}

/// `fcntl(fd, F_DUPFD_CLOEXEC)` of a raw fd someone else keeps open for
/// this call (a closed or foreign number gives EBADF, never UB).
pub fn dup_raw(fd: RawFd) -> SysResult<OwnedFd> {
    // SAFETY: plain fcntl; the result is checked by `owned`.
    owned(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })
}

/// Is `fd`'s socket family `domain` (SO_DOMAIN)? Err: not a socket.
pub fn socket_domain(fd: BorrowedFd<'_>) -> SysResult<libc::c_int> {
    getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn eventfd_latches() {
        let e = eventfd().unwrap();
        assert!(!eventfd_signalled(e.as_fd()));
        eventfd_signal(e.as_fd());
        eventfd_signal(e.as_fd());
        assert!(eventfd_signalled(e.as_fd()));
        eventfd_clear(e.as_fd());
        assert!(!eventfd_signalled(e.as_fd()));
    }

    #[test]
    fn int_options_and_flags() {
        let s = socket(libc::AF_UNIX, libc::SOCK_DGRAM, 0).unwrap();
        assert_eq!(socket_domain(s.as_fd()), Ok(libc::AF_UNIX));
        set_nonblocking(s.as_fd(), true).unwrap();
        // SAFETY: fcntl(F_GETFL) on a live fd.
        let fl = unsafe { libc::fcntl(s.as_raw_fd(), libc::F_GETFL) };
        assert_ne!(fl & libc::O_NONBLOCK, 0);
        set_socket_timeout(s.as_fd(), libc::SO_SNDTIMEO, Duration::ZERO).unwrap();
        let d = dup(s.as_fd()).unwrap();
        assert_eq!(socket_domain(d.as_fd()), Ok(libc::AF_UNIX));
        let f = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(socket_domain(f.as_fd()), Err(libc::ENOTSOCK));
        assert_eq!(poll_one(s.as_fd(), libc::POLLOUT, 0).map(|r| r & libc::POLLOUT), Ok(libc::POLLOUT));
    }
}
