//! The Device Plugin from JS: `NativeDpConnection`, the client transport
//! (one SOCK_SEQPACKET record per call, fds as SCM_RIGHTS) on which the
//! TypeScript handshake runs, and `NativeDpServer`, afxdp's
//! Device-Plugin-compatible server (core `dp::DpServer`) for running
//! unprivileged ports without Kubernetes, demos and tests.

use std::path::PathBuf;
use std::time::Duration;

use afxdp_core::bpf::XdpMode;
use afxdp_core::dp::transport::SeqpacketConn;
use afxdp_core::dp::{
    DpConfig, DpDevice, DpServer, Fault, PinConfig, PodPolicy, UdsConfig, DEFAULT_CHECK_INTERVAL, DEFAULT_HOST_DIR,
    DEFAULT_MAX_CONCURRENT, DEFAULT_POD_DIR, DEFAULT_STATE_DIR, DEFAULT_TIMEOUT,
};
use afxdp_core::{Code, Error};
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use crate::error::{invalid, to_js, Result};
use crate::fd::NativeFd;
use crate::port::NativePort;

// The connection's own imports, kept here so the server's stay apart.
use afxdp_core::dp::transport::{Cancel, Received, DEFAULT_SEND_TIMEOUT};
use napi::bindgen_prelude::AsyncTask;
use napi::bindgen_prelude::JsObjectValue;
use napi::{Env, JsError, JsValue, Task};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, OnceLock};

/// Largest record `recv` accepts as `limit` (the protocol's replies are
/// under 32 bytes; the DPDK client buffer is 128).
const MAX_RECV_LIMIT: u32 = 65536;

/// A Device Plugin transport error: ERR_AFXDP_DEVICE_PLUGIN (or
/// ERR_AFXDP_CLOSED when `close()` ended the wait), and the message names
/// the socket path.
fn dp_error(path: &str, mut e: Error) -> Error {
    if !e.message.contains(path) {
        e.message = format!("Device Plugin socket {path}: {}", e.message);
    }
    if e.code != Code::Closed {
        e.code = Code::DevicePlugin;
    }
    e
}

/// The JS error of a failed task: `code`, `message` and, when there was
/// one, `errno` (so the facade tells a timeout from a failure).
fn reject<T>(env: Env, e: Error) -> napi::Result<T> {
    let errno = e.errno;
    let value = JsError::from(to_js(e)).into_unknown(env);
    if let Some(errno) = errno {
        if let Ok(mut object) = value.coerce_to_object() {
            let _ = object.set_named_property("errno", errno);
        }
    }
    Err(napi::Error::from(value))
}

/// One record received from the Device Plugin.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct NativeDpRecord {
    /// The record's bytes: at most `limit` of them (see `truncated`).
    /// Replies are bare ASCII without a terminator; some servers (CNDP) add
    /// a trailing NUL.
    pub data: Buffer,
    /// The file descriptor that came with the record (SCM_RIGHTS; with
    /// `/fd_ack` it is the XSKMAP), owned natively and close-on-exec, or
    /// null. Pass it to `NativePort.open` or `close()` it.
    pub fd: Option<NativeFd>,
    /// The record was longer than `limit`: `data` holds only its start and
    /// the rest is lost (SOCK_SEQPACKET). Treat as a protocol error.
    pub truncated: bool,
    /// How many fds beyond the first arrived; the transport closed them.
    /// The protocol never sends more than one.
    pub fds_dropped: u32,
    /// The control data was cut (MSG_CTRUNC): the peer sent more fds than
    /// arrived (`fdsDropped + 1` is then a lower bound).
    pub control_truncated: bool,
}

/// What the connection's tasks share: the socket (once connected) and the
/// eventfd that `close()` fires to end their waits. The socket closes when
/// the last holder lets go: `close()` never closes an fd a worker thread
/// still polls.
struct Shared {
    path: String,
    conn: OnceLock<SeqpacketConn>,
    cancel: Cancel,
}

impl Shared {
    fn conn(&self) -> std::result::Result<&SeqpacketConn, Error> {
        self.conn.get().ok_or_else(|| {
            Error::invalid(format!("the Device Plugin connection to {} is not connected; await connect() first", self.path))
        })
    }
}

/// A connection to a Device Plugin's Unix socket (AF_UNIX,
/// SOCK_SEQPACKET): one protocol record per `send`/`recv`. The handshake
/// itself (which record when) is up to the caller.
///
/// Every wait runs on the libuv threadpool and returns a Promise, so the
/// event loop never blocks; `close()` ends a pending `connect`, `send` or
/// `recv` at once (it rejects with `ERR_AFXDP_CLOSED`) and releases its
/// worker thread.
///
/// Errors: every I/O and protocol failure rejects with code
/// `ERR_AFXDP_DEVICE_PLUGIN` whose message names the socket path and the
/// cause (no such socket, nothing listening, wrong socket type, permission,
/// timeout, peer closed) and, for a system call, `errno`. Use after
/// `close()` throws `ERR_AFXDP_CLOSED`; a bad argument throws
/// `ERR_AFXDP_INVALID_ARGUMENT`.
#[napi]
pub struct NativeDpConnection {
    /// Behind a lock so `close()` takes `&self`: a pending task holds a
    /// shared borrow of this object, and close() must work while it does.
    shared: Mutex<Option<Arc<Shared>>>,
    path: String,
}

pub struct ConnectTask {
    shared: Arc<Shared>,
    timeout: Duration,
}

impl Task for ConnectTask {
    type Output = std::result::Result<(), Error>;
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let s = &self.shared;
        Ok(match SeqpacketConn::connect_with(&s.path, self.timeout, Some(&s.cancel)) {
            Ok(conn) => s.conn.set(conn).map_err(|_| Error::invalid(format!("{} is already connected", s.path))),
            Err(e) => Err(e),
        })
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<()> {
        output.or_else(|e| reject(env, dp_error(&self.shared.path, e)))
    }
}

pub struct SendTask {
    shared: Arc<Shared>,
    record: Vec<u8>,
    /// A duplicate of the XSK to attach: the port may close meanwhile.
    fd: Option<OwnedFd>,
}

impl Task for SendTask {
    type Output = std::result::Result<(), Error>;
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let s = &self.shared;
        Ok(s.conn().and_then(|conn| {
            conn.send_cancellable(&self.record, self.fd.as_ref().map(|f| f.as_fd()), DEFAULT_SEND_TIMEOUT, &s.cancel)
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<()> {
        // Our duplicate of the XSK goes now; the server has its own.
        self.fd = None;
        output.or_else(|e| reject(env, dp_error(&self.shared.path, e)))
    }
}

pub struct RecvTask {
    shared: Arc<Shared>,
    timeout: Duration,
    limit: usize,
}

impl Task for RecvTask {
    /// A received fd is an `OwnedFd` here: if the promise never settles it
    /// is closed with the output.
    type Output = std::result::Result<Option<Received>, Error>;
    type JsValue = Option<NativeDpRecord>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let s = &self.shared;
        Ok(s.conn().and_then(|conn| conn.recv_cancellable(self.timeout, self.limit, Some(&s.cancel))))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Option<NativeDpRecord>> {
        match output {
            Ok(received) => Ok(received.map(|r| NativeDpRecord {
                data: Buffer::from(r.bytes),
                fd: r.fd.map(NativeFd::new),
                truncated: r.truncated,
                fds_dropped: r.fds_received.saturating_sub(1).min(u32::MAX as usize) as u32,
                control_truncated: r.control_truncated,
            })),
            Err(e) => reject(env, dp_error(&self.shared.path, e)),
        }
    }
}

#[napi]
impl NativeDpConnection {
    /// A connection to the Device Plugin socket at `path` (e.g.
    /// `/tmp/afxdp_dp/<iface>/afxdp.sock`), not yet connected: call
    /// `connect()`. Creating it does not touch the socket.
    #[napi(factory)]
    pub fn create(path: String) -> Result<NativeDpConnection> {
        let cancel = Cancel::new().map_err(to_js)?;
        let shared = Arc::new(Shared { path: path.clone(), conn: OnceLock::new(), cancel });
        Ok(NativeDpConnection { shared: Mutex::new(Some(shared)), path })
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<Shared>>> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn shared(&self) -> Result<Arc<Shared>> {
        self.slot().clone().ok_or_else(|| to_js(Error::closed(&format!("the Device Plugin connection to {}", self.path))))
    }

    /// Connect; resolves once connected. `timeoutMs` bounds the wait when
    /// the server's accept queue is full (the connect is retried, never a
    /// blocking wait); connect itself does not wait for the server to
    /// accept.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn connect(&self, timeout_ms: u32) -> Result<AsyncTask<ConnectTask>> {
        let shared = self.shared()?;
        Ok(AsyncTask::new(ConnectTask { shared, timeout: Duration::from_millis(timeout_ms.max(1) as u64) }))
    }

    /// Send `record` as one SOCK_SEQPACKET record, exactly these bytes (no
    /// terminator is added). Waits at most 5 s for room if the server does
    /// not read.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn send(&self, record: Buffer) -> Result<AsyncTask<SendTask>> {
        let shared = self.shared()?;
        Ok(AsyncTask::new(SendTask { shared, record: record.to_vec(), fd: None }))
    }

    /// Send `record` with the AF_XDP socket of `port`'s queue index `queue`
    /// attached as SCM_RIGHTS (for `/config_busy_poll,<timeout>,<budget>`).
    /// The port keeps its socket; the server gets a duplicate.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn send_with_socket(&self, record: Buffer, port: &NativePort, queue: u32) -> Result<AsyncTask<SendTask>> {
        let shared = self.shared()?;
        let fd = port.socket_fd(queue)?;
        // The port is open (socket_fd checked it) and cannot close during
        // this synchronous call; the duplicate outlives it.
        let fd = afxdp_core::sys::dup_raw(fd).map_err(|e| to_js(Error::sys("fcntl(F_DUPFD_CLOEXEC)", e)))?;
        Ok(AsyncTask::new(SendTask { shared, record: record.to_vec(), fd: Some(fd) }))
    }

    /// Receive one record of at most `limit` bytes (use 128, DPDK's reply
    /// buffer), waiting at most `timeoutMs` (0 = only what is already
    /// queued, at most 1 ms). Resolves to null when the server closed the
    /// connection (EOF). Rejects with `ERR_AFXDP_DEVICE_PLUGIN` and errno
    /// 110 (ETIMEDOUT) on timeout.
    #[napi(ts_return_type = "Promise<NativeDpRecord | null>")]
    pub fn recv(&self, timeout_ms: u32, limit: u32) -> Result<AsyncTask<RecvTask>> {
        if limit == 0 || limit > MAX_RECV_LIMIT {
            return Err(invalid(format!("recv limit {limit} must be between 1 and {MAX_RECV_LIMIT} bytes")));
        }
        let shared = self.shared()?;
        let timeout = Duration::from_millis(timeout_ms.max(1) as u64);
        Ok(AsyncTask::new(RecvTask { shared, timeout, limit: limit as usize }))
    }

    /// Close the connection (the server sees EOF): a pending `connect`,
    /// `send` or `recv` rejects at once with `ERR_AFXDP_CLOSED`, and the
    /// socket closes as soon as no worker thread uses it (at once when none
    /// is waiting). Idempotent.
    #[napi]
    pub fn close(&self) {
        if let Some(shared) = self.slot().take() {
            shared.cancel.cancel();
        }
    }

    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.slot().is_none()
    }

    /// The socket path this connection was made to.
    #[napi(getter)]
    pub fn path(&self) -> String {
        self.path.clone()
    }
}

// ---- the server ----

/// One interface the server provides.
#[napi(object)]
pub struct NativeDpDevice {
    /// Interface name (1-15 bytes; no '/', ':', ',', whitespace).
    pub iface: String,
    /// Network namespace to find it in: a name under /run/netns or a path
    /// such as /proc/<pid>/ns/net. Default: the server's own.
    pub netns: Option<String>,
}

/// Options of `NativeDpServer.start`, mirroring the Device Plugin's pool
/// settings where it has one.
#[napi(object)]
pub struct NativeDpServerOptions {
    /// The interfaces to serve. The server attaches afxdp's redirect
    /// program to each (it must have none, or the one an earlier server
    /// left, which is adopted) and hands out its XSKMAP.
    pub devices: Vec<NativeDpDevice>,
    /// Serve the UDS handshake. Default true.
    pub uds: Option<bool>,
    /// Host socket directory: each allocation listens at
    /// `<udsDir>/<uuid>.sock` (created 0700). Default `/tmp/afxdp_dp/afxdp_pool`.
    pub uds_dir: Option<String>,
    /// Pod-visible paths `<podDir>/<iface>/afxdp.sock` (hard links to the
    /// host socket, like the Device Plugin's bind mounts; DPDK's and afxdp's
    /// default `dp_path`). Default `/tmp/afxdp_dp`; `""` = no pod paths.
    pub pod_dir: Option<String>,
    /// Mode of the socket file. Default 0o660.
    pub socket_mode: Option<u32>,
    /// Pinned-map mode: pin each XSKMAP at `<pinDir>/<iface>/xsks_map`,
    /// mounting a bpffs on `pinDir` unless it is one (it must then be empty
    /// or missing). Default: no pinning.
    pub pin_dir: Option<String>,
    /// Owner given to socket files and pins (the pool's `uid`), so that a
    /// non-root client can connect / open the pin.
    pub owner_uid: Option<u32>,
    pub owner_gid: Option<u32>,
    /// SO_PEERCRED allowlist: clients with another uid are closed before
    /// anything is read (afxdp hardening). Default: any uid.
    pub allowed_uids: Option<Vec<u32>>,
    /// Pod names `/connect,<pod>` may give; null or absent = any.
    #[napi(ts_type = "Array<string> | null")]
    pub allowed_pods: Option<Vec<String>>,
    /// How long each allocation waits for its client, like UdsTimeout:
    /// absent or 0 = 30000, -1 = forever.
    pub accept_timeout_ms: Option<i64>,
    /// Deadline of every read (re-armed per read): absent or 0 = 30000, -1 = none.
    pub read_timeout_ms: Option<i64>,
    /// Total deadline of a session, counted from its accept, however
    /// steadily the client talks: absent or 0 = 30000, -1 = none.
    pub session_timeout_ms: Option<i64>,
    /// Sessions served at once (each on its own thread). Past it the next
    /// client is not accepted (it waits in the listen backlog) until one
    /// ends, which is logged. Default 64.
    pub max_concurrent: Option<u32>,
    /// How often to check each program is still attached, re-attaching it
    /// (same program, same map) when it was removed: default 1000, -1 = never.
    pub check_interval_ms: Option<i64>,
    /// Directory of the per-interface records that let a restarted server
    /// adopt the programs a crashed one left. Default `/run/afxdp/dp-serve`.
    pub state_dir: Option<String>,
    /// On stop, leave the programs attached (and recorded, for the next
    /// server to adopt) instead of detaching them. Default false.
    pub keep_programs: Option<bool>,
    /// Allocations to serve (one client each): 1 (default) = the Device
    /// Plugin; N = re-arm a fresh socket after each; 0 = until stopped.
    pub sessions: Option<u32>,
    /// Fault injection for client tests: none (default), silent,
    /// close-after-connect, host-nak, error-then-host-nak, fd-nak, nak,
    /// fd-ack-without-fd, garbage, overlong-record, stall,
    /// fd-ack-with-suffix, trailing-nul.
    pub fault: Option<String>,
    /// Delay of the `stall` fault. Default 5000.
    pub stall_ms: Option<u32>,
    /// auto (default), native or generic.
    pub xdp_mode: Option<String>,
    /// Also print the server's log on stderr. Default false.
    pub log_to_stderr: Option<bool>,
}

/// One served interface, as started.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct NativeDpDeviceInfo {
    pub iface: String,
    pub netns: Option<String>,
    pub ifindex: u32,
    /// Kernel id of the attached redirect program.
    pub program_id: u32,
    /// Kernel id of the XSKMAP that `/fd_ack` sends and the pin holds.
    pub map_id: u32,
    /// native or generic.
    pub xdp_mode: String,
    /// `<podDir>/<iface>/afxdp.sock`, or null.
    pub pod_socket_path: Option<String>,
    /// `<pinDir>/<iface>/xsks_map`, or null.
    pub pin_path: Option<String>,
    /// The program was left attached by an earlier server (a crash) and
    /// adopted with its map.
    pub adopted: bool,
    /// At the last check the interface ran the program.
    pub attached: bool,
    /// Times the program was found removed and re-attached.
    pub reattached: u32,
    /// What the last check found wrong (another program in its place, the
    /// interface gone), or null.
    pub problem: Option<String>,
}

#[napi(object, object_from_js = false, use_nullable = true)]
pub struct NativeDpServerInfo {
    /// The host socket listening now, or null (allocations used up, stopped).
    pub socket_path: Option<String>,
    pub listening: bool,
    pub devices: Vec<NativeDpDeviceInfo>,
    /// Every device's pod socket path (UDS mode with a pod dir).
    pub pod_socket_paths: Vec<String>,
    /// Every device's pin (pinned mode).
    pub pin_paths: Vec<String>,
    /// Every device's attached program id.
    pub program_ids: Vec<u32>,
    /// The bpffs the server mounted, or null.
    pub bpffs_mounted: Option<String>,
    /// Sessions (allowed clients) that have ended.
    pub sessions_served: u32,
    /// Sessions running now.
    pub active_sessions: u32,
    /// Clients closed by the uid allowlist.
    pub rejected_peers: u32,
    /// Listeners created so far.
    pub allocations: u32,
    /// The server thread has exited (allocations used up, or stopped).
    pub finished: bool,
    pub stopped: bool,
    pub fault: String,
    pub last_error: Option<String>,
}

/// afxdp's Device-Plugin-compatible server (needs root: it attaches XDP
/// programs, may mount a bpffs). It serves on its own threads (one per
/// session, up to `maxConcurrent`); JS is never blocked by a client. Errors carry the core's codes
/// (ERR_AFXDP_NO_SUCH_INTERFACE, ERR_AFXDP_BPF, ERR_AFXDP_PERMISSION,
/// ERR_AFXDP_INVALID_ARGUMENT, ...).
#[napi]
pub struct NativeDpServer {
    server: DpServer,
    fault: String,
}

fn timeout_from(ms: Option<i64>, what: &str) -> Result<Option<Duration>> {
    match ms {
        None | Some(0) => Ok(Some(DEFAULT_TIMEOUT)),
        Some(-1) => Ok(None),
        Some(n) if n > 0 => Ok(Some(Duration::from_millis(n as u64))),
        Some(n) => Err(invalid(format!("{what} {n} must be -1 (none), 0 (default 30000) or positive"))),
    }
}

#[napi]
impl NativeDpServer {
    /// Attach, pin and/or start listening; the first allocation's socket
    /// exists when this returns. On error nothing is left behind.
    #[napi(factory)]
    pub fn start(options: NativeDpServerOptions) -> Result<NativeDpServer> {
        let devices = options.devices.into_iter().map(|d| DpDevice { iface: d.iface, netns: d.netns }).collect::<Vec<_>>();
        let mut config = DpConfig::new(devices);
        config.xdp_mode = match options.xdp_mode.as_deref().unwrap_or("auto") {
            "auto" => XdpMode::Auto,
            "native" => XdpMode::Native,
            "generic" => XdpMode::Generic,
            other => return Err(invalid(format!("xdpMode must be auto, native or generic, not {other:?}"))),
        };
        config.uds = if options.uds.unwrap_or(true) {
            let pod_dir = match options.pod_dir.as_deref() {
                None => Some(PathBuf::from(DEFAULT_POD_DIR)),
                Some("") => None,
                Some(p) => Some(PathBuf::from(p)),
            };
            Some(UdsConfig {
                host_dir: PathBuf::from(options.uds_dir.as_deref().unwrap_or(DEFAULT_HOST_DIR)),
                pod_dir,
                socket_mode: options.socket_mode.unwrap_or(0o660),
            })
        } else {
            None
        };
        config.pinned = options.pin_dir.map(|p| PinConfig { pin_dir: PathBuf::from(p) });
        config.owner_uid = options.owner_uid;
        config.owner_gid = options.owner_gid;
        config.allowed_uids = options.allowed_uids;
        config.pods = match options.allowed_pods {
            None => PodPolicy::Any,
            Some(names) => PodPolicy::Names(names),
        };
        config.accept_timeout = timeout_from(options.accept_timeout_ms, "acceptTimeoutMs")?;
        config.read_timeout = timeout_from(options.read_timeout_ms, "readTimeoutMs")?;
        config.session_timeout = timeout_from(options.session_timeout_ms, "sessionTimeoutMs")?;
        config.max_concurrent = options.max_concurrent.unwrap_or(DEFAULT_MAX_CONCURRENT);
        config.check_interval = match options.check_interval_ms {
            None | Some(0) => Some(DEFAULT_CHECK_INTERVAL),
            Some(-1) => None,
            Some(n) if n > 0 => Some(Duration::from_millis(n as u64)),
            Some(n) => return Err(invalid(format!("checkIntervalMs {n} must be -1 (never), 0 (default 1000) or positive"))),
        };
        config.state_dir = PathBuf::from(options.state_dir.as_deref().unwrap_or(DEFAULT_STATE_DIR));
        config.keep_programs = options.keep_programs.unwrap_or(false);
        config.sessions = options.sessions.unwrap_or(1);
        let stall = options.stall_ms.map(|ms| Duration::from_millis(ms as u64));
        config.fault = Fault::parse(options.fault.as_deref().unwrap_or("none"), stall).map_err(to_js)?;
        config.log_to_stderr = options.log_to_stderr.unwrap_or(false);
        let fault = config.fault.name().to_string();
        let server = DpServer::start(config).map_err(to_js)?;
        Ok(NativeDpServer { server, fault })
    }

    /// Stop serving and undo everything: sockets, pod paths, pins, the
    /// bpffs it mounted, directories it created, the programs it attached.
    /// Idempotent; also happens when the object is garbage collected.
    #[napi]
    pub fn stop(&self) {
        self.server.stop();
    }

    #[napi]
    pub fn info(&self) -> NativeDpServerInfo {
        let i = self.server.info();
        let s = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        NativeDpServerInfo {
            socket_path: s(&i.socket_path),
            listening: i.listening,
            pod_socket_paths: i.devices.iter().filter_map(|d| s(&d.pod_socket_path)).collect(),
            pin_paths: i.devices.iter().filter_map(|d| s(&d.pin_path)).collect(),
            program_ids: i.devices.iter().map(|d| d.program_id).collect(),
            devices: i
                .devices
                .iter()
                .map(|d| NativeDpDeviceInfo {
                    iface: d.iface.clone(),
                    netns: d.netns.clone(),
                    ifindex: d.ifindex,
                    program_id: d.program_id,
                    map_id: d.map_id,
                    xdp_mode: d.xdp_mode.as_str().to_string(),
                    pod_socket_path: s(&d.pod_socket_path),
                    pin_path: s(&d.pin_path),
                    adopted: d.adopted,
                    attached: d.attached,
                    reattached: d.reattached.min(u32::MAX as u64) as u32,
                    problem: d.problem.clone(),
                })
                .collect(),
            bpffs_mounted: s(&i.bpffs_mounted),
            sessions_served: i.sessions_served.min(u32::MAX as u64) as u32,
            active_sessions: i.active_sessions.min(u32::MAX as u64) as u32,
            rejected_peers: i.rejected_peers.min(u32::MAX as u64) as u32,
            allocations: i.allocations.min(u32::MAX as u64) as u32,
            finished: i.finished,
            stopped: i.stopped,
            fault: self.fault.clone(),
            last_error: i.last_error,
        }
    }

    /// Sessions (allowed clients) that have ended so far.
    #[napi]
    pub fn sessions_served(&self) -> u32 {
        self.server.sessions_served().min(u32::MAX as u64) as u32
    }

    /// The server's recent log lines (at most 512): every record in and
    /// out, accepts, rejections, deadlines.
    #[napi]
    pub fn log(&self) -> Vec<String> {
        self.server.log()
    }
}
