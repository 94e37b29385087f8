//! `DpServer`: the Device Plugin's UDS server and map pinning, on its own
//! thread, without Kubernetes.
//!
//! Faithful to the Device Plugin (dp-protocol.md §3) in everything a client
//! can observe, except where noted. Deviations, each also commented where
//! it is implemented:
//!
//! 1. *Peer credentials*: with `allowed_uids`, a client whose SO_PEERCRED
//!    uid is not listed is closed before anything is read, and does not use
//!    up the allocation (otherwise any local user could take the single
//!    accept away from the real client).
//! 2. *Listener closed at accept*: the Device Plugin keeps its listener
//!    open (never accepting again) until the session ends, so a second
//!    client hangs in the backlog; here the listener is closed and its file
//!    removed as soon as the one client is accepted, so a second client gets
//!    ECONNREFUSED (pod path) or ENOENT (host path) at once.
//! 3. *Records*: read with the Device Plugin's 64-byte buffer; a longer
//!    record is processed truncated to 64 bytes as the Device Plugin does,
//!    and logged. Nothing more is ever buffered.
//! 4. *Received fds are always closed* (the Device Plugin leaks the XSK fd of
//!    every `/config_busy_poll` and ignores fds on other records).
//! 5. *`/config_busy_poll` fixes*: the Device Plugin replies `_nak` and then
//!    falls through to a second reply when no fd came; closes silently on a
//!    non-integer argument; and closes after a setsockopt failure. Here each
//!    case is exactly one `/config_busy_poll_nak` and the session continues.
//!    The fd must also be an AF_XDP socket (SO_DOMAIN): the server applies
//!    CAP_NET_ADMIN-only options on the client's behalf and refuses to do so
//!    on arbitrary sockets. A wrong argument count is `/nak`, checked before
//!    the fd.
//! 6. *Interface names* are validated at start (see `validate_iface_name`)
//!    so no pod or pin path can escape its directory; the `/xsk_map_fd`
//!    allowlist is the configured devices, as in the Device Plugin.
//! 7. *Re-arm* (`sessions` != 1) is an afxdp extension. The next
//!    allocation's listener is created when the current client is accepted,
//!    so a client can run sessions back to back without racing the re-arm.
//!    Its accept deadline counts from when the server starts waiting on it.

use super::faults::Fault;
use super::{
    msg, validate_iface_name, DpConfig, PinConfig, PodPolicy, PodVerdict, UdsConfig, PIN_NAME, POD_SOCKET_NAME,
};
use crate::bpf::{ProgramSource, SharedXdp, XdpMode, XdpProgram, XskMap};
use crate::netdev::Netdev;
use crate::netns;
use crate::uds::{PeerCred, Received, SeqpacketConn, SeqpacketListener, SERVER_RECORD_LIMIT};
use crate::{Code, Error, Result};
use std::collections::VecDeque;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
/// Log lines kept for `DpServer::log`.
const LOG_LINES: usize = 512;
/// After poll says ready, how long accept/recv may wait if another reader
/// raced us (never happens with one thread; a bound anyway).
const RACE_SLICE: Duration = Duration::from_millis(50);

/// One configured interface, as started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub iface: String,
    pub netns: Option<String>,
    pub ifindex: u32,
    /// Kernel id of the attached redirect program.
    pub program_id: u32,
    /// Kernel id of its XSKMAP (the map `/fd_ack` sends and the pin holds).
    pub map_id: u32,
    pub xdp_mode: XdpMode,
    /// `<pod_dir>/<iface>/afxdp.sock` (UDS mode with a pod dir).
    pub pod_socket_path: Option<PathBuf>,
    /// `<pin_dir>/<iface>/xsks_map` (pinned mode).
    pub pin_path: Option<PathBuf>,
}

/// A snapshot of the server.
#[derive(Debug, Clone)]
pub struct DpServerInfo {
    /// The host socket currently listening, if any.
    pub socket_path: Option<PathBuf>,
    pub listening: bool,
    pub devices: Vec<DeviceInfo>,
    /// The bpffs this server mounted (pinned mode), if it mounted one.
    pub bpffs_mounted: Option<PathBuf>,
    /// Sessions (accepted, allowed clients) that have ended.
    pub sessions_served: u64,
    /// Clients closed by the uid allowlist.
    pub rejected_peers: u64,
    /// Listeners created so far (allocations armed).
    pub allocations: u64,
    /// The server thread has exited (all allocations used, or stopped).
    pub finished: bool,
    pub stopped: bool,
    pub last_error: Option<String>,
}

// ---- cleanup bookkeeping ----

#[derive(Debug)]
enum Undo {
    File(PathBuf),
    Dir(PathBuf),
    Unmount(PathBuf),
}

struct Device {
    info: DeviceInfo,
    // Kept only to hold the program attached; dropping it detaches.
    _prog: SharedXdp,
    map: XskMap,
}

/// What start() created, undone in reverse on stop (or on a failed start).
#[derive(Default)]
struct Resources {
    devices: Vec<Device>,
    undo: Vec<Undo>,
}

impl Resources {
    fn cleanup(&mut self) {
        while let Some(u) = self.undo.pop() {
            match u {
                Undo::File(p) => {
                    let _ = std::fs::remove_file(p);
                }
                // Only empty directories go: never anything someone else put there.
                Undo::Dir(p) => {
                    let _ = std::fs::remove_dir(p);
                }
                Undo::Unmount(p) => unmount(&p),
            }
        }
        // Detaches the programs (the last share of each).
        self.devices.clear();
    }
}

impl Drop for Resources {
    fn drop(&mut self) {
        self.cleanup();
    }
}

// ---- shared state between the API and the server thread ----

#[derive(Default)]
struct State {
    socket: Option<PathBuf>,
    served: u64,
    rejected: u64,
    allocations: u64,
    finished: bool,
    last_error: Option<String>,
}

struct Shared {
    maps: Vec<(String, XskMap)>,
    uds: Option<UdsConfig>,
    pod_links: Vec<PathBuf>,
    owner: (Option<u32>, Option<u32>),
    allowed_uids: Option<Vec<u32>>,
    pods: PodPolicy,
    accept_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
    sessions: u32,
    fault: Fault,
    stop: AtomicBool,
    /// eventfd, written once by stop(); never read, so it stays readable.
    wake: OwnedFd,
    state: Mutex<State>,
    changed: Condvar,
    log: Mutex<VecDeque<String>>,
    log_to_stderr: bool,
    started: Instant,
}

enum Wake {
    Ready,
    Stop,
    Timeout,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state());
        self.changed.notify_all();
    }

    fn log(&self, line: impl AsRef<str>) {
        let t = self.started.elapsed();
        let line = format!("[{}.{:03}] {}", t.as_secs(), t.subsec_millis(), line.as_ref());
        if self.log_to_stderr {
            eprintln!("afxdp-dp {line}");
        }
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() == LOG_LINES {
            log.pop_front();
        }
        log.push_back(line);
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Wait until `fd` is readable (or hung up), the deadline passes, or
    /// the server is stopping. `fd` None: just sleep until deadline/stop.
    fn wait(&self, fd: Option<BorrowedFd<'_>>, deadline: Option<Instant>) -> Wake {
        loop {
            if self.stopping() {
                return Wake::Stop;
            }
            let ms = match deadline {
                None => -1,
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Wake::Timeout;
                    }
                    // Round up, so a sub-millisecond remainder still waits.
                    ((d - now).as_micros().div_ceil(1000)).min(i32::MAX as u128) as libc::c_int
                }
            };
            let mut pfds = [
                libc::pollfd { fd: self.wake.as_raw_fd(), events: libc::POLLIN, revents: 0 },
                libc::pollfd { fd: fd.map(|f| f.as_raw_fd()).unwrap_or(-1), events: libc::POLLIN, revents: 0 },
            ];
            // SAFETY: two valid pollfds (a negative fd is ignored by poll).
            let r = unsafe { libc::poll(pfds.as_mut_ptr(), 2, ms) };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                self.log(format!("poll failed: {e}; stopping"));
                return Wake::Stop;
            }
            if pfds[0].revents != 0 {
                return Wake::Stop;
            }
            if pfds[1].revents != 0 {
                return Wake::Ready;
            }
        }
    }

    fn uid_allowed(&self, uid: u32) -> bool {
        self.allowed_uids.as_ref().is_none_or(|l| l.contains(&uid))
    }

    /// Bind a fresh host socket for the next allocation and point every pod
    /// path at it.
    fn arm(&self) -> Result<SeqpacketListener> {
        let uds = self.uds.as_ref().expect("arm only in UDS mode");
        let host = uds.host_dir.join(format!("{}.sock", uuid_v4()?));
        let listener = SeqpacketListener::bind(&host, uds.socket_mode, None)?;
        chown(&host, self.owner)?;
        for link in &self.pod_links {
            if !relink(&host, link)? {
                self.log(format!(
                    "{} is a symlink (no hard link possible across file systems): clients must be able to \
                     reach {} (created 0700: root only)",
                    link.display(),
                    uds.host_dir.display()
                ));
            }
        }
        self.update(|s| {
            s.socket = Some(host.clone());
            s.allocations += 1;
        });
        self.log(format!("listening at {} (pod paths: {})", host.display(), show_paths(&self.pod_links)));
        Ok(listener)
    }

    /// Accept the allocation's one client (skipping disallowed uids).
    fn accept(&self, listener: &SeqpacketListener) -> Option<(SeqpacketConn, PeerCred)> {
        let deadline = self.accept_timeout.map(|t| Instant::now() + t);
        let path = listener.path().display();
        loop {
            match self.wait(Some(listener.as_fd()), deadline) {
                Wake::Stop => return None,
                Wake::Timeout => {
                    self.log(format!(
                        "Listener timed out: no client connected to {path} within {:?}; removing the socket (as the Device Plugin does)",
                        self.accept_timeout.unwrap_or_default()
                    ));
                    return None;
                }
                Wake::Ready => match listener.accept(RACE_SLICE) {
                    Ok((conn, cred)) => {
                        // Hardening (1): SO_PEERCRED allowlist, checked
                        // before reading anything; a rejected peer does not
                        // consume the allocation.
                        if !self.uid_allowed(cred.uid) {
                            self.log(format!(
                                "rejected client pid {} uid {} gid {}: uid not in the allowlist {:?}; closed without reading",
                                cred.pid, cred.uid, cred.gid, self.allowed_uids.as_deref().unwrap_or(&[])
                            ));
                            self.update(|s| s.rejected += 1);
                            drop(conn);
                            continue;
                        }
                        self.log(format!("accepted client pid {} uid {} gid {} on {path}", cred.pid, cred.uid, cred.gid));
                        return Some((conn, cred));
                    }
                    Err(e) if e.errno == Some(libc::ETIMEDOUT) => continue,
                    Err(e) => {
                        self.log(format!("accept on {path} failed: {}", e.message));
                        self.update(|s| s.last_error = Some(e.message.clone()));
                        return None;
                    }
                },
            }
        }
    }
}

/// The server thread: serve allocations until they are used up or stop.
fn serve(sh: Arc<Shared>, first: SeqpacketListener) {
    let mut listener = Some(first);
    let mut armed: u64 = 1;
    while let Some(current) = listener.take() {
        let client = sh.accept(&current);
        // Deviation (7): arm the next allocation before serving this one.
        let more = sh.sessions == 0 || armed < sh.sessions as u64;
        if more && !sh.stopping() {
            match sh.arm() {
                Ok(next) => {
                    listener = Some(next);
                    armed += 1;
                }
                Err(e) => {
                    sh.log(format!("cannot re-arm: {}", e.message));
                    sh.update(|s| s.last_error = Some(e.message.clone()));
                }
            }
        }
        // Deviation (2): the one accepted client ends this listener; its
        // drop removes the host socket file.
        drop(current);
        if listener.is_none() {
            sh.update(|s| s.socket = None);
        }
        if let Some((conn, cred)) = client {
            Session { sh: &sh, conn, cred }.run();
            sh.update(|s| s.served += 1);
        }
        if sh.stopping() {
            break;
        }
    }
    drop(listener);
    sh.update(|s| {
        s.socket = None;
        s.finished = true;
    });
    sh.log("server thread finished");
}

// ---- one session ----

struct Session<'a> {
    sh: &'a Shared,
    conn: SeqpacketConn,
    cred: PeerCred,
}

/// How a record appears in the log.
fn shown(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

impl Session<'_> {
    /// One record (≤ 64 bytes), or None on EOF, deadline, error or stop.
    fn read(&self) -> Option<Received> {
        let deadline = self.sh.read_timeout.map(|t| Instant::now() + t);
        loop {
            match self.sh.wait(Some(self.conn.as_fd()), deadline) {
                Wake::Stop => {
                    self.sh.log("server stopping: closing the session");
                    return None;
                }
                Wake::Timeout => {
                    self.sh.log(format!(
                        "no request from pid {} within {:?}: closing (read deadline)",
                        self.cred.pid,
                        self.sh.read_timeout.unwrap_or_default()
                    ));
                    return None;
                }
                Wake::Ready => match self.conn.recv_with_limit(RACE_SLICE, SERVER_RECORD_LIMIT) {
                    Ok(None) => {
                        self.sh.log(format!("client pid {} closed the connection", self.cred.pid));
                        return None;
                    }
                    Ok(Some(r)) => {
                        // Deviation (3): processed truncated, as the Device Plugin does; logged.
                        let note = if r.truncated { " (longer than 64 bytes: truncated)" } else { "" };
                        let fd = if r.fd.is_some() { " + fd" } else { "" };
                        self.sh.log(format!("<- {}{fd}{note}", shown(&r.bytes)));
                        return Some(r);
                    }
                    Err(e) if e.errno == Some(libc::ETIMEDOUT) => continue,
                    Err(e) => {
                        self.sh.log(format!("read failed: {}", e.message));
                        return None;
                    }
                },
            }
        }
    }

    /// Send one reply, shaped by the fault mode. false = the session is over.
    fn reply(&self, msg: &[u8], fd: Option<BorrowedFd<'_>>) -> bool {
        if let Fault::Stall(delay) = self.sh.fault {
            self.sh.log(format!("stalling {delay:?} before replying {}", shown(msg)));
            if let Wake::Stop = self.sh.wait(None, Some(Instant::now() + delay)) {
                return false;
            }
        }
        let bytes = self.sh.fault.wire_bytes(msg);
        match self.conn.send(&bytes, fd) {
            Ok(()) => {
                let with = if fd.is_some() { " + fd" } else { "" };
                self.sh.log(format!("-> {}{with}", shown(&bytes)));
                true
            }
            Err(e) => {
                self.sh.log(format!("reply {} failed: {}", shown(&bytes), e.message));
                false
            }
        }
    }

    fn run(&self) {
        let Some(first) = self.read() else { return };
        // Deviation (4): any fd that came with it is closed right here.
        let Received { bytes, fd, .. } = first;
        drop(fd);
        let text = String::from_utf8_lossy(&bytes);
        match self.sh.fault {
            Fault::Silent => {
                while let Some(r) = self.read() {
                    drop(r);
                }
                return;
            }
            Fault::CloseAfterConnect => {
                self.sh.log("fault close-after-connect: closing without reply");
                return;
            }
            Fault::Nak => {
                if !self.reply(msg::NAK, None) {
                    return;
                }
                while let Some(r) = self.read() {
                    drop(r.fd);
                    if !self.reply(msg::NAK, None) {
                        return;
                    }
                }
                return;
            }
            _ => {}
        }
        if !text.contains(msg::CONNECT) {
            self.sh.log("first record has no /connect: closing without reply (as the Device Plugin does)");
            return;
        }
        match self.sh.fault {
            Fault::HostNak => {
                self.reply(msg::HOST_NAK, None);
                return;
            }
            Fault::ErrorThenHostNak => {
                let _ = self.reply(msg::ERROR, None) && self.reply(msg::HOST_NAK, None);
                return;
            }
            _ => {}
        }
        let parts: Vec<&str> = text.split(',').collect();
        if parts.len() != 2 || parts[0] != msg::CONNECT {
            self.sh.log("malformed /connect: /host_nak");
            self.reply(msg::HOST_NAK, None);
            return;
        }
        let pod = parts[1].replace(' ', "");
        match self.sh.pods.check(&pod) {
            PodVerdict::Valid => {
                self.sh.log(format!("pod {pod:?} validated"));
                if !self.reply(msg::HOST_OK, None) {
                    return;
                }
            }
            PodVerdict::Invalid => {
                self.sh.log(format!("pod {pod:?} not valid: /host_nak"));
                self.reply(msg::HOST_NAK, None);
                return;
            }
            PodVerdict::Error => {
                self.sh.log(format!("pod {pod:?}: validator error: /error, /host_nak"));
                let _ = self.reply(msg::ERROR, None) && self.reply(msg::HOST_NAK, None);
                return;
            }
        }
        // The connected loop, matched in the Device Plugin's order.
        while let Some(Received { bytes, fd, .. }) = self.read() {
            let text = String::from_utf8_lossy(&bytes);
            let go_on = if text.contains(msg::XSK_MAP_FD) {
                drop(fd);
                self.xsk_map_fd(&text)
            } else if text == msg::VERSION {
                drop(fd);
                self.reply(msg::VERSION_REPLY, None)
            } else if text.contains(msg::CONFIG_BUSY_POLL) {
                self.busy_poll(&text, fd)
            } else if text == msg::FIN {
                drop(fd);
                self.reply(msg::FIN_ACK, None);
                self.sh.log("session finished");
                return;
            } else {
                drop(fd);
                self.reply(msg::NAK, None)
            };
            if !go_on {
                return;
            }
        }
    }

    fn xsk_map_fd(&self, text: &str) -> bool {
        let stripped = text.replace(' ', "");
        let parts: Vec<&str> = stripped.split(',').collect();
        if parts.len() != 2 {
            return self.reply(msg::NAK, None);
        }
        // Hardening (6): only the configured interfaces (exact name).
        let Some((_, map)) = self.sh.maps.iter().find(|(name, _)| name == parts[1]) else {
            self.sh.log(format!("interface {:?} is not served here: /fd_nak", parts[1]));
            return self.reply(msg::FD_NAK, None);
        };
        match self.sh.fault {
            Fault::FdNak => self.reply(msg::FD_NAK, None),
            Fault::FdAckWithoutFd => self.reply(msg::FD_ACK, None),
            Fault::FdAckWithSuffix => {
                let m = format!("/fd_ack,{}", map.as_raw_fd());
                self.reply(m.as_bytes(), Some(map.as_fd()))
            }
            _ => self.reply(msg::FD_ACK, Some(map.as_fd())),
        }
    }

    /// Deviation (5): one reply in every case; the session continues.
    fn busy_poll(&self, text: &str, fd: Option<OwnedFd>) -> bool {
        let stripped = text.replace(' ', "");
        let parts: Vec<&str> = stripped.split(',').collect();
        if parts.len() != 3 {
            return self.reply(msg::NAK, None);
        }
        let Some(fd) = fd else {
            self.sh.log("/config_busy_poll without an fd: nak");
            return self.reply(msg::BUSY_POLL_NAK, None);
        };
        let (Ok(timeout), Ok(budget)) = (parts[1].parse::<i32>(), parts[2].parse::<i32>()) else {
            self.sh.log("/config_busy_poll arguments are not integers: nak");
            return self.reply(msg::BUSY_POLL_NAK, None);
        };
        match configure_busy_poll(fd.as_fd(), timeout, budget) {
            Ok(()) => {
                self.sh.log(format!("busy poll set: timeout {timeout} us, budget {budget}"));
                drop(fd);
                self.reply(msg::BUSY_POLL_ACK, None)
            }
            Err(e) => {
                self.sh.log(format!("busy poll refused: {e}"));
                drop(fd);
                self.reply(msg::BUSY_POLL_NAK, None)
            }
        }
    }
}

fn sockopt_int(fd: BorrowedFd<'_>, opt: libc::c_int, val: libc::c_int) -> std::result::Result<(), String> {
    // SAFETY: val is a c_int of the given size.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            &val as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(format!("setsockopt({opt}, {val}): {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// What the Device Plugin's `Configure_busy_poll` does: SO_PREFER_BUSY_POLL
/// 1, SO_BUSY_POLL timeout, SO_BUSY_POLL_BUDGET budget; on failure, try to
/// reset to 0. Only on AF_XDP sockets (hardening, see deviation 5).
fn configure_busy_poll(fd: BorrowedFd<'_>, timeout: i32, budget: i32) -> std::result::Result<(), String> {
    let mut domain: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: domain/len describe a writable c_int.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            &mut domain as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    if r < 0 {
        return Err(format!("the fd is not a socket: {}", std::io::Error::last_os_error()));
    }
    if domain != libc::AF_XDP {
        return Err(format!("the fd is a socket of family {domain}, not AF_XDP ({})", libc::AF_XDP));
    }
    let result = sockopt_int(fd, libc::SO_PREFER_BUSY_POLL, 1)
        .and_then(|_| sockopt_int(fd, libc::SO_BUSY_POLL, timeout))
        .and_then(|_| sockopt_int(fd, libc::SO_BUSY_POLL_BUDGET, budget));
    if result.is_err() {
        let _ = sockopt_int(fd, libc::SO_PREFER_BUSY_POLL, 0);
        let _ = sockopt_int(fd, libc::SO_BUSY_POLL, 0);
    }
    result
}

// ---- file system helpers ----

fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::invalid(format!("path {} contains NUL", p.display())))
}

fn io_err(what: String, e: std::io::Error) -> Error {
    Error::sys(what, e.raw_os_error().unwrap_or(libc::EIO))
}

fn chown(path: &Path, owner: (Option<u32>, Option<u32>)) -> Result<()> {
    if owner == (None, None) {
        return Ok(());
    }
    let c = cpath(path)?;
    // u32::MAX is (uid_t)-1: leave that id unchanged.
    let (uid, gid) = (owner.0.unwrap_or(u32::MAX), owner.1.unwrap_or(u32::MAX));
    // SAFETY: c is a valid C string.
    if unsafe { libc::chown(c.as_ptr(), uid, gid) } < 0 {
        return Err(Error::last_os(format!("chown({}, {:?}:{:?})", path.display(), owner.0, owner.1)));
    }
    Ok(())
}

fn chmod(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_err(format!("chmod({}, {mode:o})", path.display()), e))
}

/// Create `path` and missing parents: parents 0755, `path` itself
/// `leaf_mode` (set explicitly, whatever the umask). Every directory
/// created is recorded for removal.
fn mkdirs(path: &Path, leaf_mode: u32, undo: &mut Vec<Undo>) -> Result<()> {
    let mut missing = Vec::new();
    let mut p = Some(path);
    while let Some(dir) = p {
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => return Err(Error::invalid(format!("{} exists and is not a directory", dir.display()))),
            Err(_) => missing.push(dir.to_path_buf()),
        }
        p = dir.parent();
    }
    for dir in missing.iter().rev() {
        match std::fs::create_dir(dir) {
            Ok(()) => undo.push(Undo::Dir(dir.clone())),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(format!("mkdir({})", dir.display()), e)),
        }
        chmod(dir, if dir == path { leaf_mode } else { 0o755 })?;
    }
    Ok(())
}

/// Point `link` at `host` atomically: a hard link (same inode, as a bind
/// mount would give) or, where impossible, a symlink; renamed into place.
/// Ok(true) = hard link, Ok(false) = symlink.
fn relink(host: &Path, link: &Path) -> Result<bool> {
    let tmp = link.with_file_name(format!(".{POD_SOCKET_NAME}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let hard = std::fs::hard_link(host, &tmp).is_ok();
    if !hard {
        std::os::unix::fs::symlink(host, &tmp)
            .map_err(|e| io_err(format!("link {} -> {}", tmp.display(), host.display()), e))?;
    }
    std::fs::rename(&tmp, link).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(format!("rename({}, {})", tmp.display(), link.display()), e)
    })?;
    Ok(hard)
}

fn is_bpffs(dir: &Path) -> Result<bool> {
    let c = cpath(dir)?;
    // SAFETY: all-zero is a valid statfs; c is a valid C string.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } < 0 {
        return Err(Error::last_os(format!("statfs({})", dir.display())));
    }
    Ok(st.f_type as i64 == BPF_FS_MAGIC)
}

fn mount_bpffs(dir: &Path) -> Result<()> {
    let c = cpath(dir)?;
    // SAFETY: valid C strings; plain syscall.
    let r = unsafe {
        libc::mount(c"bpf".as_ptr(), c.as_ptr(), c"bpf".as_ptr(), 0, c"mode=0755".as_ptr() as *const libc::c_void)
    };
    if r < 0 {
        let mut e = Error::last_os(format!("mount -t bpf bpf {}", dir.display()));
        if e.code == Code::Permission {
            e.message.push_str(": mounting a bpffs needs CAP_SYS_ADMIN");
        }
        return Err(e);
    }
    Ok(())
}

fn unmount(dir: &Path) {
    let Ok(c) = cpath(dir) else { return };
    // SAFETY: valid C string; plain syscalls.
    unsafe {
        if libc::umount2(c.as_ptr(), 0) < 0 {
            libc::umount2(c.as_ptr(), libc::MNT_DETACH);
        }
    }
}

/// A random RFC 4122 version-4 UUID, like the Device Plugin's socket names.
fn uuid_v4() -> Result<String> {
    let mut b = [0u8; 16];
    let mut got = 0;
    for _ in 0..8 {
        // SAFETY: writing into the rest of `b`.
        let n = unsafe { libc::getrandom(b[got..].as_mut_ptr() as *mut libc::c_void, b.len() - got, 0) };
        if n > 0 {
            got += n as usize;
            if got == b.len() {
                break;
            }
        } else if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(Error::last_os("getrandom"));
        }
    }
    if got != b.len() {
        return Err(Error::new(Code::System, "getrandom returned too few bytes"));
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

fn show_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "none".into();
    }
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

fn eventfd() -> Result<OwnedFd> {
    // SAFETY: plain syscall; result checked.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(Error::last_os("eventfd"));
    }
    // SAFETY: fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

// ---- the server ----

/// A running Device-Plugin-compatible server. `stop()` (or drop) stops the
/// thread and removes everything it attached, pinned, mounted and created.
pub struct DpServer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    resources: Mutex<Option<Resources>>,
    devices: Vec<DeviceInfo>,
    bpffs_mounted: Option<PathBuf>,
}

impl std::fmt::Debug for DpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpServer").field("devices", &self.devices).finish_non_exhaustive()
    }
}

fn check_config(config: &DpConfig) -> Result<()> {
    if config.devices.is_empty() {
        return Err(Error::invalid("the Device Plugin server needs at least one device"));
    }
    if config.uds.is_none() && config.pinned.is_none() {
        return Err(Error::invalid("enable UDS mode, pinned-map mode, or both"));
    }
    for (i, d) in config.devices.iter().enumerate() {
        validate_iface_name(&d.iface)?;
        if config.devices[..i].iter().any(|o| o.iface == d.iface) {
            return Err(Error::invalid(format!(
                "interface {} is listed twice; pod paths and pins are per interface name, so names must be unique",
                d.iface
            )));
        }
    }
    if let Some(uds) = &config.uds {
        // <host_dir>/<36-char uuid>.sock must fit sun_path (108 with NUL).
        let len = uds.host_dir.as_os_str().len() + 1 + 36 + 5;
        if len >= 108 {
            return Err(Error::invalid(format!(
                "host socket directory {} is too long: {len}-byte socket paths exceed sun_path (107)",
                uds.host_dir.display()
            )));
        }
        if let Some(pod) = &uds.pod_dir {
            for d in &config.devices {
                let p = pod.join(&d.iface).join(POD_SOCKET_NAME);
                if p.as_os_str().len() >= 108 {
                    return Err(Error::invalid(format!("pod socket path {} exceeds sun_path (107 bytes)", p.display())));
                }
            }
        }
    }
    if let (Some(UdsConfig { pod_dir: Some(pod), .. }), Some(pins)) = (&config.uds, &config.pinned) {
        if pod.starts_with(&pins.pin_dir) {
            return Err(Error::invalid(format!(
                "pod socket directory {} is inside the pin directory {} (a bpffs, which refuses file names \
                 with a '.' such as afxdp.sock): use separate directories",
                pod.display(),
                pins.pin_dir.display()
            )));
        }
    }
    if config.fault != Fault::None && config.uds.is_none() {
        return Err(Error::invalid("fault modes apply to UDS mode only; enable uds"));
    }
    Ok(())
}

fn setup_pins(res: &mut Resources, cfg: &PinConfig, owner: (Option<u32>, Option<u32>)) -> Result<Option<PathBuf>> {
    let dir = &cfg.pin_dir;
    mkdirs(dir, 0o755, &mut res.undo)?;
    let mut mounted = None;
    if !is_bpffs(dir)? {
        let mut entries = std::fs::read_dir(dir).map_err(|e| io_err(format!("read_dir({})", dir.display()), e))?;
        if entries.next().is_some() {
            return Err(Error::invalid(format!(
                "pin directory {} is not a bpffs and not empty: refusing to mount a bpffs over its contents; \
                 use an empty directory or an existing bpffs mount",
                dir.display()
            )));
        }
        mount_bpffs(dir)?;
        res.undo.push(Undo::Unmount(dir.clone()));
        mounted = Some(dir.clone());
    }
    for dev in &mut res.devices {
        let d = dir.join(&dev.info.iface);
        mkdirs(&d, 0o755, &mut res.undo)?;
        let pin = d.join(PIN_NAME);
        if std::fs::symlink_metadata(&pin).is_ok() {
            return Err(Error::invalid(format!(
                "{} already exists (another server, or a stale pin: remove it with rm)",
                pin.display()
            )));
        }
        dev.map.pin(&pin)?;
        res.undo.push(Undo::File(pin.clone()));
        // The pin is created 0600 root: hand it to the client uid so that
        // BPF_OBJ_GET (read-write) works with CAP_NET_RAW + CAP_IPC_LOCK only.
        chown(&pin, owner)?;
        if owner.1.is_some() {
            chmod(&pin, 0o660)?;
        }
        dev.info.pin_path = Some(pin);
    }
    Ok(mounted)
}

impl DpServer {
    /// Attach the redirect program to every device, pin and/or start
    /// listening, and serve on a thread. On error everything done so far is
    /// undone.
    pub fn start(config: DpConfig) -> Result<DpServer> {
        check_config(&config)?;
        let owner = (config.owner_uid, config.owner_gid);
        let mut res = Resources::default();
        for d in &config.devices {
            let (netdev, prog, map) = netns::within(d.netns.as_deref(), || {
                let netdev = Netdev::lookup(&d.iface)?;
                let (prog, map) = XdpProgram::attach_or_share(netdev.ifindex, config.xdp_mode, &ProgramSource::Redirect)?;
                Ok((netdev, prog, map))
            })
            .map_err(|mut e| {
                let ns = d.netns.as_deref().map(|n| format!(" in network namespace {n}")).unwrap_or_default();
                e.message = format!("Device Plugin server, device {}{ns}: {}", d.iface, e.message);
                e
            })?;
            res.devices.push(Device {
                info: DeviceInfo {
                    iface: d.iface.clone(),
                    netns: d.netns.clone(),
                    ifindex: netdev.ifindex,
                    program_id: prog.prog_id(),
                    map_id: map.id(),
                    xdp_mode: prog.mode(),
                    pod_socket_path: None,
                    pin_path: None,
                },
                _prog: prog,
                map,
            });
        }
        let bpffs_mounted = match &config.pinned {
            Some(pins) => setup_pins(&mut res, pins, owner)?,
            None => None,
        };
        let mut pod_links = Vec::new();
        if let Some(uds) = &config.uds {
            mkdirs(&uds.host_dir, 0o700, &mut res.undo)?;
            if let Some(pod_dir) = &uds.pod_dir {
                for dev in &mut res.devices {
                    let d = pod_dir.join(&dev.info.iface);
                    mkdirs(&d, 0o755, &mut res.undo)?;
                    let link = d.join(POD_SOCKET_NAME);
                    if std::fs::symlink_metadata(&link).is_ok() {
                        return Err(Error::invalid(format!(
                            "{} already exists (another server, or stale from an earlier run: remove it with rm)",
                            link.display()
                        )));
                    }
                    res.undo.push(Undo::File(link.clone()));
                    dev.info.pod_socket_path = Some(link.clone());
                    pod_links.push(link);
                }
            }
        }
        let mut maps = Vec::new();
        for dev in &res.devices {
            maps.push((dev.info.iface.clone(), dev.map.try_clone()?));
        }
        let shared = Arc::new(Shared {
            maps,
            uds: config.uds.clone(),
            pod_links,
            owner,
            allowed_uids: config.allowed_uids.clone(),
            pods: config.pods.clone(),
            accept_timeout: config.accept_timeout,
            read_timeout: config.read_timeout,
            sessions: config.sessions,
            fault: config.fault,
            stop: AtomicBool::new(false),
            wake: eventfd()?,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            log: Mutex::new(VecDeque::new()),
            log_to_stderr: config.log_to_stderr,
            started: Instant::now(),
        });
        for dev in &res.devices {
            let i = &dev.info;
            shared.log(format!(
                "device {}: program id {} ({} mode), XSKMAP id {}{}",
                i.iface,
                i.program_id,
                i.xdp_mode.as_str(),
                i.map_id,
                i.pin_path.as_ref().map(|p| format!(", pinned at {}", p.display())).unwrap_or_default()
            ));
        }
        if config.fault != Fault::None {
            shared.log(format!("fault mode: {}", config.fault));
        }
        let thread = if config.uds.is_some() {
            // The first allocation is armed here, so the socket exists when
            // start() returns.
            let first = shared.arm()?;
            let sh = shared.clone();
            let handle = std::thread::Builder::new()
                .name("afxdp-dp".into())
                .spawn(move || serve(sh, first))
                .map_err(|e| io_err("spawn the Device Plugin server thread".into(), e))?;
            Some(handle)
        } else {
            shared.update(|s| s.finished = true);
            None
        };
        let devices = res.devices.iter().map(|d| d.info.clone()).collect();
        Ok(DpServer {
            shared,
            thread: Mutex::new(thread),
            resources: Mutex::new(Some(res)),
            devices,
            bpffs_mounted,
        })
    }

    /// Stop serving and undo everything: close the listener and session,
    /// remove sockets, pod links and pins, unmount the bpffs it mounted,
    /// remove the directories it created (if empty), detach the programs.
    /// Idempotent; callable from any thread (from the server thread itself
    /// it only signals, and the thread exits right after).
    pub fn stop(&self) {
        if !self.shared.stop.swap(true, Ordering::SeqCst) {
            let one: u64 = 1;
            // SAFETY: writing 8 bytes to our eventfd.
            unsafe { libc::write(self.shared.wake.as_raw_fd(), &one as *const u64 as *const libc::c_void, 8) };
            self.shared.log("stop requested");
        }
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
        let res = self.resources.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(res);
        self.shared.changed.notify_all();
    }

    pub fn is_stopped(&self) -> bool {
        self.shared.stopping()
    }

    pub fn info(&self) -> DpServerInfo {
        let s = self.shared.state();
        DpServerInfo {
            socket_path: s.socket.clone(),
            listening: s.socket.is_some(),
            devices: self.devices.clone(),
            bpffs_mounted: self.bpffs_mounted.clone(),
            sessions_served: s.served,
            rejected_peers: s.rejected,
            allocations: s.allocations,
            finished: s.finished,
            stopped: self.shared.stopping(),
            last_error: s.last_error.clone(),
        }
    }

    /// Sessions (accepted, allowed clients) that have ended.
    pub fn sessions_served(&self) -> u64 {
        self.shared.state().served
    }

    /// The host socket currently listening.
    pub fn socket_path(&self) -> Option<PathBuf> {
        self.shared.state().socket.clone()
    }

    pub fn devices(&self) -> &[DeviceInfo] {
        &self.devices
    }

    /// Wait until at least `n` sessions have ended, the server thread has
    /// finished, or `timeout` passed. Returns whether `n` were reached.
    pub fn wait_sessions(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.shared.state();
        loop {
            if s.served >= n {
                return true;
            }
            if s.finished || self.shared.stopping() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            s = self.shared.changed.wait_timeout(s, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Wait until the server thread has finished (all allocations used).
    pub fn wait_finished(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.shared.state();
        loop {
            if s.finished {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            s = self.shared.changed.wait_timeout(s, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// The server's recent log lines (the last 512).
    pub fn log(&self) -> Vec<String> {
        self.shared.log.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }
}

impl Drop for DpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        let u = uuid_v4().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
        assert_ne!(u, uuid_v4().unwrap());
    }

    #[test]
    fn busy_poll_refuses_non_xdp_sockets() {
        let (a, _b) = SeqpacketConn::pair().unwrap();
        let e = configure_busy_poll(a.as_fd(), 20, 64).unwrap_err();
        assert!(e.contains("not AF_XDP"), "{e}");
    }

    #[test]
    fn config_checks() {
        let mut c = DpConfig::new(vec![super::super::DpDevice::new("../x")]);
        assert!(check_config(&c).is_err());
        c.devices = vec![super::super::DpDevice::new("a"), super::super::DpDevice::new("a")];
        assert!(check_config(&c).is_err());
        c.devices = vec![super::super::DpDevice::new("a")];
        c.uds = None;
        assert!(check_config(&c).is_err());
    }
}
