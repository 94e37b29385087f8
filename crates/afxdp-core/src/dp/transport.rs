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

use crate::sys;
use crate::sys::unix::{self as sys_unix, UnixAddr, SUN_PATH_MAX};
use crate::{Code, Error, Result};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
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

fn dp_err(errno: i32, message: String) -> Error {
    Error::with_errno(Code::DevicePlugin, errno, message)
}

fn sockaddr_un(path: &Path) -> Result<UnixAddr> {
    UnixAddr::new(path).ok_or_else(|| {
        Error::invalid(format!(
            "Unix socket path {} must be 1 to {} bytes without NUL (sun_path limit)",
            path.display(),
            SUN_PATH_MAX - 1
        ))
    })
}

fn seqpacket_socket() -> Result<OwnedFd> {
    sys::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET, 0).map_err(|e| Error::sys("socket(AF_UNIX, SOCK_SEQPACKET)", e))
}

fn set_timeout(fd: BorrowedFd<'_>, opt: libc::c_int, d: Duration) -> Result<()> {
    sys::set_socket_timeout(fd, opt, d).map_err(|e| Error::sys("setsockopt(SO_SNDTIMEO/SO_RCVTIMEO)", e))
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
        Ok(Cancel { fd: sys::eventfd().map_err(|e| Error::sys("eventfd", e))? })
    }

    /// Wake every wait on this `Cancel`, now and later. Idempotent.
    pub fn cancel(&self) {
        sys::eventfd_signal(self.fd.as_fd());
    }

    pub fn is_cancelled(&self) -> bool {
        sys::eventfd_signalled(self.fd.as_fd())
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
        let mut pfds = [sys::pollfd(fd, events), sys::pollfd(cancel.map(|c| c.fd.as_fd()), libc::POLLIN)];
        match sys::poll(&mut pfds, ms) {
            Ok(_) => {}
            Err(libc::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll(unix socket)", e)),
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
    sys::set_nonblocking(fd, on).map_err(|e| Error::sys("fcntl(O_NONBLOCK)", e))
}

fn peer_hung_up(fd: BorrowedFd<'_>) -> bool {
    sys::poll_one(fd, libc::POLLIN | libc::POLLRDHUP, 0).is_ok_and(|r| r & (libc::POLLRDHUP | libc::POLLHUP) != 0)
}

fn peer_cred(fd: BorrowedFd<'_>) -> Result<PeerCred> {
    let c = sys_unix::peer_cred(fd).map_err(|e| Error::sys("getsockopt(SO_PEERCRED)", e))?;
    Ok(PeerCred { pid: c.pid, uid: c.uid, gid: c.gid })
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
                nix::unistd::getuid()
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
    sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR).map_err(|e| Error::sys("getsockopt(SO_ERROR)", e))
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
        let addr = sockaddr_un(path)?;
        let fd = seqpacket_socket()?;
        set_nonblocking(fd.as_fd(), true)?;
        let p = path.display().to_string();
        let deadline = Instant::now() + timeout;
        let mut backoff = Duration::from_millis(1);
        loop {
            if cancel.is_some_and(Cancel::is_cancelled) {
                return Err(cancelled("connecting to the Device Plugin socket", &p));
            }
            let Err(e) = sys_unix::connect(fd.as_fd(), &addr) else { break };
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
        let (a, b) =
            sys_unix::socketpair(libc::SOCK_SEQPACKET).map_err(|e| Error::sys("socketpair(AF_UNIX, SOCK_SEQPACKET)", e))?;
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
        // With a deadline: never block in sendmsg, poll for room instead.
        let flags = libc::MSG_NOSIGNAL | if wait.is_some() { libc::MSG_DONTWAIT } else { 0 };
        loop {
            if let Some((_, cancel)) = wait {
                if cancel.is_cancelled() {
                    return Err(cancelled("sending to", &self.peer));
                }
            }
            // MSG_NOSIGNAL: a closed peer gives EPIPE instead of killing the process.
            // SEQPACKET sends a record whole or not at all.
            let Err(e) = sys_unix::send_record(self.fd.as_fd(), record, fd, flags) else { return Ok(()) };
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
            // MSG_DONTWAIT: poll said readable, but never block if another
            // reader raced us; the loop then waits again until the deadline.
            let r = match sys_unix::recv_record(self.fd.as_fd(), &mut buf, MAX_FDS_PER_RECORD, libc::MSG_DONTWAIT) {
                Ok(r) => r,
                Err(libc::EINTR | libc::EAGAIN) => continue,
                Err(libc::ECONNRESET) => return Ok(None),
                Err(e) => {
                    let mut err = Error::sys(format!("recvmsg({})", self.peer), e);
                    err.code = Code::DevicePlugin;
                    return Err(err);
                }
            };
            // Every fd is already owned: surplus ones close when dropped.
            let mut fds = r.fds;
            let ctrunc = r.flags & libc::MSG_CTRUNC != 0;
            let truncated = r.flags & libc::MSG_TRUNC != 0;
            let fds_dropped = ctrunc || fds.len() > 1;
            let fds_received = fds.len();
            let fd = if fds.is_empty() { None } else { Some(fds.swap_remove(0)) };
            drop(fds); // closes any surplus
            let n = r.len;
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
        let addr = sockaddr_un(path)?;
        let fd = seqpacket_socket()?;
        if let Err(e) = sys_unix::bind(fd.as_fd(), &addr) {
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
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| Error::sys(format!("chmod({p}, {mode:o})"), e.raw_os_error().unwrap_or(libc::EIO)))?;
        }
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|e| Error::sys(format!("chown({p}, {uid}:{gid})"), e.raw_os_error().unwrap_or(libc::EIO)))?;
        }
        sys_unix::listen(listener.fd.as_fd(), 16).map_err(|e| Error::sys(format!("listen({p})"), e))?;
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
            let fd = match sys_unix::accept(self.fd.as_fd(), libc::SOCK_NONBLOCK) {
                Ok(fd) => fd,
                // Raced or the client gave up: wait again until the deadline.
                Err(libc::EINTR | libc::EAGAIN | libc::ECONNABORTED) => continue,
                Err(e) => return Err(Error::sys(format!("accept({p})"), e)),
            };
            // Back to blocking mode: sends block up to SO_SNDTIMEO, receives poll first.
            let _ = sys::set_nonblocking(fd.as_fd(), false);
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
