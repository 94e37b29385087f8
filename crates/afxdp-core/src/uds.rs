//! The Device Plugin transport: AF_UNIX SOCK_SEQPACKET, one protocol record
//! per message, at most one fd per record as SCM_RIGHTS
//! (docs: dp-protocol.md §1, §12). The handshake itself (which records, in
//! which order) lives in the TypeScript facade; this is only the socket layer.
//!
//! Properties:
//! - every blocking step has a deadline (poll for receive/accept,
//!   SO_SNDTIMEO for send; connect retries a non-blocking connect while the
//!   listener's backlog is full), so nothing waits forever;
//! - the client's waits (`connect_with`, `recv_cancellable`,
//!   `send_cancellable`) also watch a `Cancel`, so another thread can end
//!   them at once (an aborted handshake releases its worker thread);
//! - received fds are close-on-exec (MSG_CMSG_CLOEXEC) and wrapped in
//!   `OwnedFd` the moment they are parsed: surplus fds are closed, never
//!   leaked, also when the control data was truncated (MSG_CTRUNC);
//! - truncated records (MSG_TRUNC) are reported, not silently shortened.

use crate::{Code, Error, Result};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Receive limit on the client side (DPDK's response buffer, protocol §1).
pub const CLIENT_RECORD_LIMIT: usize = 128;
/// Receive limit on the server side (the Device Plugin's buffer, protocol §1).
pub const SERVER_RECORD_LIMIT: usize = 64;
/// How long a send may block (peer not reading) before it fails.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Room for this many fds in the control buffer, so that a peer sending more
/// than one is detected (and the surplus closed) rather than cut off blindly.
pub const MAX_FDS_PER_RECORD: usize = 8;
const SUN_PATH_MAX: usize = 108;

/// One record read from the socket.
#[derive(Debug)]
pub struct Received {
    /// The record (at most the receive limit).
    pub bytes: Vec<u8>,
    /// The first fd that came with it, close-on-exec.
    pub fd: Option<OwnedFd>,
    /// The record was longer than the limit: `bytes` holds only its start
    /// (MSG_TRUNC).
    pub truncated: bool,
    /// More than one fd arrived or the control data was cut (MSG_CTRUNC);
    /// every surplus fd has been closed.
    pub fds_dropped: bool,
    /// How many fds arrived (the first is `fd`, the rest were closed). With
    /// `control_truncated` more were sent than this.
    pub fds_received: usize,
    /// The control data was cut (MSG_CTRUNC): the peer sent more fds than
    /// the buffer holds (`MAX_FDS_PER_RECORD`).
    pub control_truncated: bool,
}

/// Credentials of the process at the other end (SO_PEERCRED, captured at
/// connect time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// A connected SEQPACKET socket: the client side (`connect`) or a server's
/// accepted connection (`SeqpacketListener::accept`).
#[derive(Debug)]
pub struct SeqpacketConn {
    fd: OwnedFd,
    limit: usize,
    /// For messages: "Device Plugin socket /path" or "client of /path".
    peer: String,
}

/// The client side is a `SeqpacketConn` made by `connect`.
pub type SeqpacketClient = SeqpacketConn;

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

fn dp_err(errno: i32, message: String) -> Error {
    Error::with_errno(Code::DevicePlugin, errno, message)
}

fn sockaddr_un(path: &Path) -> Result<(libc::sockaddr_un, libc::socklen_t)> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() || bytes.len() >= SUN_PATH_MAX || bytes.contains(&0) {
        return Err(Error::invalid(format!(
            "Unix socket path {} must be 1 to {} bytes without NUL (sun_path limit)",
            path.display(),
            SUN_PATH_MAX - 1
        )));
    }
    // SAFETY: all-zero is a valid sockaddr_un.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    Ok((addr, len as libc::socklen_t))
}

fn seqpacket_socket() -> Result<OwnedFd> {
    // SAFETY: plain syscall; result checked.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(Error::last_os("socket(AF_UNIX, SOCK_SEQPACKET)"));
    }
    // SAFETY: fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_timeout(fd: BorrowedFd<'_>, opt: libc::c_int, d: Duration) -> Result<()> {
    // A zero timeval means "block forever": never pass it.
    let d = d.max(Duration::from_millis(1));
    let tv = libc::timeval {
        tv_sec: d.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: tv is a valid timeval of the given size.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            &tv as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(Error::last_os("setsockopt(SO_SNDTIMEO/SO_RCVTIMEO)"));
    }
    Ok(())
}

/// Ends a client's waits from another thread: an eventfd, written once,
/// that every cancellable wait polls next to the socket. Once cancelled it
/// stays cancelled (the eventfd is never read).
#[derive(Debug)]
pub struct Cancel {
    fd: OwnedFd,
}

impl Cancel {
    pub fn new() -> Result<Cancel> {
        // SAFETY: plain syscall; result checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(Error::last_os("eventfd"));
        }
        // SAFETY: fresh fd we own.
        Ok(Cancel { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// Wake every wait on this `Cancel`, now and later. Idempotent.
    pub fn cancel(&self) {
        let one: u64 = 1;
        // SAFETY: 8-byte write from a live u64 to our eventfd; it cannot
        // block (EFD_NONBLOCK) and a full counter (EAGAIN) is still readable.
        unsafe { libc::write(self.fd.as_raw_fd(), &one as *const u64 as *const libc::c_void, 8) };
    }

    pub fn is_cancelled(&self) -> bool {
        let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd; zero timeout.
        unsafe { libc::poll(&mut pfd, 1, 0) > 0 }
    }
}

impl AsFd for Cancel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// What a wait ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Ready,
    TimedOut,
    Cancelled,
}

/// Wait until `fd` has one of `events` (or an error/hang-up; `fd` None: just
/// sleep), the deadline passes or `cancel` fires. EINTR restarts with the
/// remaining time.
fn wait_for(fd: Option<BorrowedFd<'_>>, events: libc::c_short, deadline: Instant, cancel: Option<&Cancel>) -> Result<Wait> {
    loop {
        if cancel.is_some_and(Cancel::is_cancelled) {
            return Ok(Wait::Cancelled);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Wait::TimedOut);
        }
        let left = deadline - now;
        // Round up so a sub-millisecond remainder still waits.
        let ms = left.as_millis().max(1).min(i32::MAX as u128) as libc::c_int;
        let mut pfds = [
            libc::pollfd { fd: fd.map_or(-1, |f| f.as_raw_fd()), events, revents: 0 },
            libc::pollfd { fd: cancel.map_or(-1, |c| c.fd.as_raw_fd()), events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: two valid pollfds (a negative fd is ignored by poll).
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), 2, ms) };
        if r < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(Error::sys("poll(unix socket)", e));
        }
        if pfds[1].revents != 0 {
            return Ok(Wait::Cancelled);
        }
        if pfds[0].revents != 0 {
            return Ok(Wait::Ready);
        }
    }
}

/// Wait until `fd` is readable (or hung up) or the deadline passes.
/// Ok(true) = ready, Ok(false) = timed out.
fn wait_readable(fd: BorrowedFd<'_>, deadline: Instant) -> Result<bool> {
    Ok(wait_for(Some(fd), libc::POLLIN, deadline, None)? == Wait::Ready)
}

fn cancelled(what: &str, peer: &str) -> Error {
    Error::with_errno(Code::Closed, libc::ECANCELED, format!("{what} {peer} was cancelled: the connection was closed"))
}

fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> Result<()> {
    // SAFETY: fcntl on a live fd.
    let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if fl < 0 {
        return Err(Error::last_os("fcntl(F_GETFL)"));
    }
    let want = if on { fl | libc::O_NONBLOCK } else { fl & !libc::O_NONBLOCK };
    // SAFETY: fcntl on a live fd.
    if want != fl && unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, want) } < 0 {
        return Err(Error::last_os("fcntl(F_SETFL)"));
    }
    Ok(())
}

fn peer_hung_up(fd: BorrowedFd<'_>) -> bool {
    let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN | libc::POLLRDHUP, revents: 0 };
    // SAFETY: one valid pollfd; zero timeout.
    let r = unsafe { libc::poll(&mut pfd, 1, 0) };
    r > 0 && pfd.revents & (libc::POLLRDHUP | libc::POLLHUP) != 0
}

fn peer_cred(fd: BorrowedFd<'_>) -> Result<PeerCred> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred/len describe a writable ucred.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut cred as *mut libc::ucred as *mut libc::c_void,
            &mut len,
        )
    };
    if r < 0 {
        return Err(Error::last_os("getsockopt(SO_PEERCRED)"));
    }
    Ok(PeerCred { pid: cred.pid, uid: cred.uid, gid: cred.gid })
}

/// Aligned control-message buffer.
#[repr(C, align(8))]
struct CmsgBuf([u8; 128]);

fn cmsg_space(bytes: usize) -> usize {
    // SAFETY: CMSG_SPACE is pure arithmetic.
    unsafe { libc::CMSG_SPACE(bytes as u32) as usize }
}

/// Why connect() failed, worded with the fix (dp-protocol.md §3-§5).
fn connect_error(e: i32, p: &str, timeout: Duration) -> Error {
    // The plugin serves one session per allocation, then deletes its socket.
    const ONE_SESSION: &str = "the AF_XDP Device Plugin serves one session per allocation and deletes its socket \
        after /fin or when its udsTimeout expires (30 s after the pod's allocation by default): either an application \
        already used this allocation (e.g. it restarted inside the same pod; open every port of this socket in one \
        openPorts() call), or it connected after udsTimeout; restart the pod for a fresh allocation, connect sooner, \
        or raise the pool's \"UdsTimeout\" (up to 300 s) in the plugin's config";
    match e {
        libc::ENOENT => dp_err(
            e,
            format!(
                "no Device Plugin socket at {p}: is an AF_XDP device allocated to this pod, and is dp_path right \
                 (default /tmp/afxdp_dp/<netdev>/afxdp.sock; old plugins use /tmp/afxdp.sock)? If it was there: {ONE_SESSION}"
            ),
        ),
        libc::ECONNREFUSED => dp_err(e, format!("nothing is listening at {p} (connection refused): {ONE_SESSION}")),
        libc::EPROTOTYPE => dp_err(
            e,
            format!(
                "{p} is not a SOCK_SEQPACKET socket (the listener is probably SOCK_STREAM): \
                 the Device Plugin protocol needs SOCK_SEQPACKET; check that dp_path names the Device Plugin's socket"
            ),
        ),
        libc::EAGAIN | libc::ETIMEDOUT => dp_err(
            libc::ETIMEDOUT,
            format!("connecting to the Device Plugin socket {p} timed out after {timeout:?}: its accept queue stayed full"),
        ),
        libc::EACCES | libc::EPERM => Error::with_errno(
            Code::Permission,
            e,
            format!(
                "connecting to {p} was refused ({}): this user (uid {}) may not write to the socket file. \
                 The AF_XDP Device Plugin makes its socket root-only unless the pool sets \"uid\": set the pool's \
                 \"uid\" in the plugin's config (config.json) to this uid, or run the application as root",
                std::io::Error::from_raw_os_error(e),
                // SAFETY: getuid cannot fail.
                unsafe { libc::getuid() }
            ),
        ),
        libc::ENOTDIR | libc::ENAMETOOLONG | libc::ELOOP => {
            dp_err(e, format!("bad Device Plugin socket path {p}: {}", std::io::Error::from_raw_os_error(e)))
        }
        _ => {
            let mut err = Error::sys(format!("connect({p})"), e);
            err.code = Code::DevicePlugin;
            err
        }
    }
}

fn socket_error(fd: BorrowedFd<'_>) -> Result<i32> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: v/len describe a writable int.
    let r = unsafe {
        libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_ERROR, &mut v as *mut libc::c_int as *mut libc::c_void, &mut len)
    };
    if r < 0 {
        return Err(Error::last_os("getsockopt(SO_ERROR)"));
    }
    Ok(v)
}

impl SeqpacketConn {
    /// Connect to the Device Plugin's socket at `path`. `timeout` bounds the
    /// wait when the server's accept queue is full.
    pub fn connect(path: impl AsRef<Path>, timeout: Duration) -> Result<SeqpacketConn> {
        Self::connect_with(path, timeout, None)
    }

    /// `connect` that `cancel` can end at once. The socket is non-blocking
    /// while connecting: a full backlog (EAGAIN) is retried with a short
    /// backoff until `timeout`, never a blocking wait that nothing could
    /// interrupt.
    pub fn connect_with(path: impl AsRef<Path>, timeout: Duration, cancel: Option<&Cancel>) -> Result<SeqpacketConn> {
        let path = path.as_ref();
        let (addr, len) = sockaddr_un(path)?;
        let fd = seqpacket_socket()?;
        set_nonblocking(fd.as_fd(), true)?;
        let p = path.display().to_string();
        let deadline = Instant::now() + timeout;
        let mut backoff = Duration::from_millis(1);
        loop {
            if cancel.is_some_and(Cancel::is_cancelled) {
                return Err(cancelled("connecting to the Device Plugin socket", &p));
            }
            // SAFETY: addr/len form a valid sockaddr_un.
            let r = unsafe { libc::connect(fd.as_raw_fd(), &addr as *const _ as *const libc::sockaddr, len) };
            if r == 0 {
                break;
            }
            let e = errno();
            match e {
                libc::EINTR => continue,
                // AF_UNIX: the listener's backlog is full. Retry until the deadline.
                libc::EAGAIN => {
                    let next = (Instant::now() + backoff).min(deadline);
                    match wait_for(None, 0, next, cancel)? {
                        Wait::Cancelled => return Err(cancelled("connecting to the Device Plugin socket", &p)),
                        _ if Instant::now() >= deadline => return Err(connect_error(libc::ETIMEDOUT, &p, timeout)),
                        _ => backoff = (backoff * 2).min(Duration::from_millis(50)),
                    }
                }
                // Other socket families: the connect goes on; wait for it.
                libc::EINPROGRESS => {
                    match wait_for(Some(fd.as_fd()), libc::POLLOUT, deadline, cancel)? {
                        Wait::Cancelled => return Err(cancelled("connecting to the Device Plugin socket", &p)),
                        Wait::TimedOut => return Err(connect_error(libc::ETIMEDOUT, &p, timeout)),
                        Wait::Ready => {}
                    }
                    match socket_error(fd.as_fd())? {
                        0 => break,
                        e => return Err(connect_error(e, &p, timeout)),
                    }
                }
                _ => return Err(connect_error(e, &p, timeout)),
            }
        }
        // Blocking again: `send` waits on SO_SNDTIMEO, receives poll first.
        set_nonblocking(fd.as_fd(), false)?;
        set_timeout(fd.as_fd(), libc::SO_SNDTIMEO, DEFAULT_SEND_TIMEOUT)?;
        Ok(SeqpacketConn { fd, limit: CLIENT_RECORD_LIMIT, peer: format!("Device Plugin socket {p}") })
    }

    /// A connected pair (socketpair), e.g. for tests or an in-process peer.
    /// Both ends use the client receive limit.
    pub fn pair() -> Result<(SeqpacketConn, SeqpacketConn)> {
        let mut fds = [-1; 2];
        // SAFETY: fds has room for two ints.
        let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) };
        if r < 0 {
            return Err(Error::last_os("socketpair(AF_UNIX, SOCK_SEQPACKET)"));
        }
        // SAFETY: two fresh fds we own.
        let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        set_timeout(a.as_fd(), libc::SO_SNDTIMEO, DEFAULT_SEND_TIMEOUT)?;
        set_timeout(b.as_fd(), libc::SO_SNDTIMEO, DEFAULT_SEND_TIMEOUT)?;
        Ok((
            SeqpacketConn { fd: a, limit: CLIENT_RECORD_LIMIT, peer: "socketpair peer".into() },
            SeqpacketConn { fd: b, limit: CLIENT_RECORD_LIMIT, peer: "socketpair peer".into() },
        ))
    }

    /// Adopt an already connected SEQPACKET socket.
    pub fn from_fd(fd: OwnedFd, record_limit: usize) -> SeqpacketConn {
        SeqpacketConn { fd, limit: record_limit, peer: "peer".into() }
    }

    /// Send one record, with at most one fd as SCM_RIGHTS. Blocks at most
    /// the send timeout (SO_SNDTIMEO) while the peer does not read.
    pub fn send(&self, record: &[u8], fd: Option<BorrowedFd<'_>>) -> Result<()> {
        self.send_msg(record, fd, None)
    }

    /// `send` that waits at most `timeout` for room and ends at once when
    /// `cancel` fires.
    pub fn send_cancellable(&self, record: &[u8], fd: Option<BorrowedFd<'_>>, timeout: Duration, cancel: &Cancel) -> Result<()> {
        self.send_msg(record, fd, Some((Instant::now() + timeout, cancel)))
    }

    fn send_msg(&self, record: &[u8], fd: Option<BorrowedFd<'_>>, wait: Option<(Instant, &Cancel)>) -> Result<()> {
        let mut iov = libc::iovec { iov_base: record.as_ptr() as *mut libc::c_void, iov_len: record.len() };
        let mut cmsg = CmsgBuf([0; 128]);
        // SAFETY: all-zero is a valid msghdr.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if let Some(fd) = fd {
            let space = cmsg_space(std::mem::size_of::<RawFd>());
            msg.msg_control = cmsg.0.as_mut_ptr() as *mut libc::c_void;
            msg.msg_controllen = space as _;
            // SAFETY: msg_control points at `space` bytes (≤ 128) of an
            // 8-aligned buffer, so CMSG_FIRSTHDR is non-null and in bounds.
            unsafe {
                let c = libc::CMSG_FIRSTHDR(&msg);
                (*c).cmsg_level = libc::SOL_SOCKET;
                (*c).cmsg_type = libc::SCM_RIGHTS;
                (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut RawFd, fd.as_raw_fd());
            }
        }
        // With a deadline: never block in sendmsg, poll for room instead.
        let flags = libc::MSG_NOSIGNAL | if wait.is_some() { libc::MSG_DONTWAIT } else { 0 };
        loop {
            if let Some((_, cancel)) = wait {
                if cancel.is_cancelled() {
                    return Err(cancelled("sending to", &self.peer));
                }
            }
            // SAFETY: msg points at live iov/cmsg buffers. MSG_NOSIGNAL: a
            // closed peer gives EPIPE instead of killing the process.
            let n = unsafe { libc::sendmsg(self.fd.as_raw_fd(), &msg, flags) };
            if n >= 0 {
                // SEQPACKET sends a record whole or not at all.
                return Ok(());
            }
            let e = errno();
            if let (libc::EAGAIN, Some((deadline, cancel))) = (e, wait) {
                match wait_for(Some(self.fd.as_fd()), libc::POLLOUT, deadline, Some(cancel))? {
                    Wait::Ready => continue,
                    Wait::Cancelled => return Err(cancelled("sending to", &self.peer)),
                    Wait::TimedOut => {}
                }
            }
            return Err(match e {
                libc::EINTR => continue,
                libc::EAGAIN => dp_err(e, format!("sending to {} timed out: the peer is not reading", self.peer)),
                libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN => {
                    dp_err(e, format!("sending to {} failed: the peer closed the connection", self.peer))
                }
                libc::EMSGSIZE => Error::with_errno(
                    Code::InvalidArgument,
                    e,
                    format!("record of {} bytes is too large for {}", record.len(), self.peer),
                ),
                _ => {
                    let mut err = Error::sys(format!("sendmsg({})", self.peer), e);
                    err.code = Code::DevicePlugin;
                    err
                }
            });
        }
    }

    /// Receive one record of at most `record_limit()` bytes, waiting at most
    /// `timeout`. `Ok(None)`: the peer closed the connection (EOF).
    pub fn recv(&self, timeout: Duration) -> Result<Option<Received>> {
        self.recv_with_limit(timeout, self.limit)
    }

    /// `recv` with an explicit record size limit.
    pub fn recv_with_limit(&self, timeout: Duration, limit: usize) -> Result<Option<Received>> {
        self.recv_cancellable(timeout, limit, None)
    }

    /// `recv_with_limit` that ends at once when `cancel` fires.
    pub fn recv_cancellable(&self, timeout: Duration, limit: usize, cancel: Option<&Cancel>) -> Result<Option<Received>> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; limit.max(1)];
        loop {
            match wait_for(Some(self.fd.as_fd()), libc::POLLIN, deadline, cancel)? {
                Wait::Ready => {}
                Wait::Cancelled => return Err(cancelled("receiving from", &self.peer)),
                Wait::TimedOut => {
                    return Err(dp_err(libc::ETIMEDOUT, format!("no record from {} within {timeout:?}", self.peer)));
                }
            }
            let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
            let mut cmsg = CmsgBuf([0; 128]);
            let space = cmsg_space(MAX_FDS_PER_RECORD * std::mem::size_of::<RawFd>());
            debug_assert!(space <= cmsg.0.len());
            // SAFETY: all-zero is a valid msghdr.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cmsg.0.as_mut_ptr() as *mut libc::c_void;
            msg.msg_controllen = space as _;
            // SAFETY: msg points at live, writable buffers of the given sizes.
            // MSG_DONTWAIT: poll said readable, but never block if another
            // reader raced us; the loop then waits again until the deadline.
            let n = unsafe {
                libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT)
            };
            if n < 0 {
                let e = errno();
                match e {
                    libc::EINTR | libc::EAGAIN => continue,
                    libc::ECONNRESET => return Ok(None),
                    _ => {
                        let mut err = Error::sys(format!("recvmsg({})", self.peer), e);
                        err.code = Code::DevicePlugin;
                        return Err(err);
                    }
                }
            }
            // Take ownership of every fd first, whatever else happened.
            let mut fds = take_fds(&msg);
            let ctrunc = msg.msg_flags & libc::MSG_CTRUNC != 0;
            let truncated = msg.msg_flags & libc::MSG_TRUNC != 0;
            let fds_dropped = ctrunc || fds.len() > 1;
            let fds_received = fds.len();
            let fd = if fds.is_empty() { None } else { Some(fds.swap_remove(0)) };
            drop(fds); // closes any surplus
            let n = n as usize;
            if n == 0 && fd.is_none() && !truncated && !ctrunc && peer_hung_up(self.fd.as_fd()) {
                return Ok(None);
            }
            buf.truncate(n.min(buf.len()));
            return Ok(Some(Received { bytes: buf, fd, truncated, fds_dropped, fds_received, control_truncated: ctrunc }));
        }
    }

    /// The receive limit `recv` uses (128 on the client side, 64 for
    /// accepted connections).
    pub fn record_limit(&self) -> usize {
        self.limit
    }

    pub fn set_record_limit(&mut self, limit: usize) {
        self.limit = limit.max(1);
    }

    /// How long `send` may block when the peer does not read.
    pub fn set_send_timeout(&self, timeout: Duration) -> Result<()> {
        set_timeout(self.fd.as_fd(), libc::SO_SNDTIMEO, timeout)
    }

    /// Credentials of the peer process (SO_PEERCRED).
    pub fn peer_cred(&self) -> Result<PeerCred> {
        peer_cred(self.fd.as_fd())
    }

    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

impl AsFd for SeqpacketConn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for SeqpacketConn {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
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
                for i in 0..payload / std::mem::size_of::<RawFd>() {
                    let fd: RawFd = std::ptr::read_unaligned(data.add(i * std::mem::size_of::<RawFd>()) as *const RawFd);
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

/// A listening SEQPACKET socket bound to a path (the server half; the
/// project's test / stand-in Device Plugin uses it). The socket file is
/// removed on drop if it is still the one this listener created.
#[derive(Debug)]
pub struct SeqpacketListener {
    fd: OwnedFd,
    path: PathBuf,
    dev_ino: Option<(u64, u64)>,
}

fn stat_dev_ino(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl SeqpacketListener {
    /// Bind and listen at `path` (which must not exist), then set the file's
    /// `mode` (e.g. 0o600) and, if given, its owner `(uid, gid)`.
    pub fn bind(path: impl AsRef<Path>, mode: u32, owner: Option<(u32, u32)>) -> Result<SeqpacketListener> {
        let path = path.as_ref();
        let p = path.display();
        let (addr, len) = sockaddr_un(path)?;
        let fd = seqpacket_socket()?;
        // SAFETY: addr/len form a valid sockaddr_un.
        if unsafe { libc::bind(fd.as_raw_fd(), &addr as *const _ as *const libc::sockaddr, len) } < 0 {
            let e = errno();
            let hint = match e {
                libc::EADDRINUSE => format!("{p} already exists; remove the stale socket file or pick another path"),
                libc::ENOENT => "its directory does not exist".to_string(),
                libc::EACCES => "no write permission on its directory".to_string(),
                _ => String::new(),
            };
            let mut err = Error::sys(format!("bind({p})"), e);
            if !hint.is_empty() {
                err.message = format!("{}: {hint}", err.message);
            }
            return Err(err);
        }
        // From here on the file exists: remove it again on any failure.
        let listener = SeqpacketListener { fd, path: path.to_path_buf(), dev_ino: stat_dev_ino(path) };
        let c = CString::new(path.as_os_str().as_bytes()).expect("checked for NUL in sockaddr_un");
        // SAFETY: c is a valid C string.
        if unsafe { libc::chmod(c.as_ptr(), mode as libc::mode_t) } < 0 {
            return Err(Error::last_os(format!("chmod({p}, {mode:o})")));
        }
        if let Some((uid, gid)) = owner {
            // SAFETY: c is a valid C string.
            if unsafe { libc::chown(c.as_ptr(), uid, gid) } < 0 {
                return Err(Error::last_os(format!("chown({p}, {uid}:{gid})")));
            }
        }
        // SAFETY: plain syscall on our fd.
        if unsafe { libc::listen(listener.fd.as_raw_fd(), 16) } < 0 {
            return Err(Error::last_os(format!("listen({p})")));
        }
        Ok(listener)
    }

    /// Wait at most `timeout` for one client; returns the connection (with
    /// the server receive limit, 64 bytes) and the client's credentials.
    pub fn accept(&self, timeout: Duration) -> Result<(SeqpacketConn, PeerCred)> {
        let deadline = Instant::now() + timeout;
        let p = self.path.display();
        loop {
            if !wait_readable(self.fd.as_fd(), deadline)? {
                return Err(dp_err(libc::ETIMEDOUT, format!("no client connected to {p} within {timeout:?}")));
            }
            // SAFETY: null address buffers are allowed.
            let fd = unsafe {
                libc::accept4(
                    self.fd.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                )
            };
            if fd < 0 {
                let e = errno();
                match e {
                    // Raced or the client gave up: wait again until the deadline.
                    libc::EINTR | libc::EAGAIN | libc::ECONNABORTED => continue,
                    _ => return Err(Error::sys(format!("accept({p})"), e)),
                }
            }
            // SAFETY: fresh fd we own.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            // Back to blocking mode: sends block up to SO_SNDTIMEO, receives poll first.
            // SAFETY: fcntl on our fd.
            unsafe {
                let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
                if fl >= 0 {
                    libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
                }
            }
            set_timeout(fd.as_fd(), libc::SO_SNDTIMEO, DEFAULT_SEND_TIMEOUT)?;
            let cred = peer_cred(fd.as_fd())?;
            let conn = SeqpacketConn { fd, limit: SERVER_RECORD_LIMIT, peer: format!("client of {p} (pid {})", cred.pid) };
            return Ok((conn, cred));
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsFd for SeqpacketListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for SeqpacketListener {
    fn drop(&mut self) {
        // Remove the socket file only if nobody replaced it meanwhile.
        if self.dev_ino.is_some() && stat_dev_ino(&self.path) == self.dev_ino {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_are_rejected() {
        let long = "/tmp/".to_string() + &"x".repeat(120);
        let e = SeqpacketConn::connect(&long, Duration::from_millis(10)).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
    }

    #[test]
    fn pair_round_trip() {
        let (a, b) = SeqpacketConn::pair().unwrap();
        a.send(b"/version", None).unwrap();
        let r = b.recv(Duration::from_secs(1)).unwrap().unwrap();
        assert_eq!(r.bytes, b"/version");
        assert!(r.fd.is_none() && !r.truncated && !r.fds_dropped);
    }
}
