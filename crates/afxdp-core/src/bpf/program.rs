//! XDP programs this process attaches: our redirect program
//! (bpf/redirect.bpf.c, embedded) or a user's `xdp_prog` ELF.
//!
//! Two attach mechanisms (`AttachKind`):
//! - **bpf_link** (BPF_LINK_CREATE with BPF_XDP and a mode flag), what ports
//!   use. The kernel detaches the program when the link's last fd closes,
//!   so the program dies with the process however it ends (exit, SIGKILL,
//!   SIGTERM without a handler, the OOM killer) and a restart finds the
//!   interface free. The fd is close-on-exec, so children do not keep it
//!   alive. The kernel refuses a link while any program (a netlink one or
//!   another link) is attached (EBUSY/EEXIST), so "never replace someone
//!   else's program" still holds, atomically; detach is BPF_LINK_DETACH on
//!   our own link, which can only ever remove our program.
//! - **netlink** (IFLA_XDP via libbpf's `bpf_xdp_attach`, with
//!   XDP_FLAGS_UPDATE_IF_NOEXIST), for `dp-serve`, whose program must
//!   outlive it. Detach is XDP_FLAGS_REPLACE with our program as the
//!   expected one, so it removes it only if it is still ours. A crashed
//!   netlink owner leaves its program attached (it passes packets to the
//!   stack once the sockets are gone); `ip link set dev X xdp off` removes it.
//!
//! Netlink used to be the only mechanism, for its visibility to `ip link`;
//! but a forwarder killed with SIGKILL then left its program behind and every
//! restart was refused ("already attached") until someone removed it by hand.
//! `ip link` still shows link-attached programs; only removing them with it
//! is refused (EBUSY), which is what protects them.
//!
//! libbpf-sys is called directly (rather than through `libbpf_rs::Xdp`) for
//! netlink attach/detach/query so the errno survives for precise error
//! messages, and so the expected-program fd for REPLACE can be given. All of
//! libbpf's own output is captured (`with_libbpf_log`) and shown only in the
//! error it explains, or on stderr when `AFXDP_DEBUG` is set.
//!
//! Sharing: one interface runs one XDP program. Two ports of this process on
//! different queues of the same interface share it through
//! `XdpProgram::attach_or_share`, keyed by (network namespace, ifindex) and
//! reference counted; the last `SharedXdp` dropped detaches.
//!
//! Over 600 lines: the attach paths (link, netlink, fallback, sharing) and
//! the errors that name a holder share private helpers and one libbpf log
//! capture; split, they would need those as a crate-wide API.

use super::syscall;
use super::xskmap::XskMap;
use crate::netdev::Netdev;
use crate::netns::NetnsGuard;
use crate::{Code, Error, Result};
use libbpf_rs::libbpf_sys;
use libbpf_rs::MapCore as _;
use std::cell::RefCell;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};

/// The compiled bpf/redirect.bpf.c (an ELF for the BPF target).
pub static REDIRECT_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/redirect.bpf.o"));

/// The compiled bpf/meta.bpf.c: the redirect program that also writes the
/// driver's RX metadata before each packet (`ProgramSource::Metadata`).
pub static META_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/meta.bpf.o"));

/// Name of the map every program used by afxdp must have.
pub const XSKS_MAP: &str = "xsks_map";
pub(crate) const REDIRECT_PROG: &str = "afxdp_redirect";
const REDIRECT_PROG_FRAGS: &str = "afxdp_redirect_frags";
const META_PROG: &str = "afxdp_meta";
const META_PROG_FRAGS: &str = "afxdp_meta_frags";
const META_PREFIX_PROG: &str = "afxdp_meta_prefix";
const META_PREFIX_PROG_FRAGS: &str = "afxdp_meta_prefix_frags";
/// sizeof(struct afxdp_rx_meta) in bpf/meta.bpf.c: afxdp's RX metadata ABI.
pub const RX_META_LEN: u32 = 24;
/// BPF_F_XDP_DEV_BOUND_ONLY (linux/bpf.h, 6.3): a device-bound program that
/// may call the metadata kfuncs and attaches to that one device only.
const BPF_F_XDP_DEV_BOUND_ONLY: u32 = 1 << 6;
/// Entries the redirect program's map gets at least (what the Device Plugin
/// uses); raised to the interface's max queue count when that is larger.
pub const MIN_MAP_ENTRIES: u32 = 64;
/// Above this MTU a packet may not fit one page for native XDP; the
/// frags-aware program variant is used then (native and auto modes).
const FRAGS_MTU: u32 = 3000;

const XDP_FLAGS_UPDATE_IF_NOEXIST: u32 = 1 << 0;
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// How to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// Native (driver) mode if the driver supports it, else generic.
    Auto,
    /// Driver mode (XDP_FLAGS_DRV_MODE); fails if the driver lacks XDP.
    Native,
    /// Generic/SKB mode (XDP_FLAGS_SKB_MODE): works everywhere, slower.
    Generic,
}

impl XdpMode {
    pub(crate) fn flag(self) -> u32 {
        match self {
            XdpMode::Auto => 0,
            XdpMode::Native => XDP_FLAGS_DRV_MODE,
            XdpMode::Generic => XDP_FLAGS_SKB_MODE,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            XdpMode::Auto => "auto",
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
        }
    }
}

/// The mode a program is attached in, as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachedMode {
    Native,
    Generic,
    /// Offloaded to the NIC.
    Offload,
}

impl AttachedMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AttachedMode::Native => "native",
            AttachedMode::Generic => "generic",
            AttachedMode::Offload => "offload",
        }
    }

    /// The `ip link` keyword that removes a program in this mode.
    fn ip_keyword(self) -> &'static str {
        match self {
            AttachedMode::Native => "xdpdrv",
            AttachedMode::Generic => "xdpgeneric",
            AttachedMode::Offload => "xdpoffload",
        }
    }
}

impl PartialEq<XdpMode> for AttachedMode {
    fn eq(&self, other: &XdpMode) -> bool {
        matches!((self, other), (AttachedMode::Native, XdpMode::Native) | (AttachedMode::Generic, XdpMode::Generic))
    }
}

/// What `query` found on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachedXdp {
    pub prog_id: u32,
    pub mode: AttachedMode,
}

/// Which program to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgramSource {
    /// afxdp's own redirect program (the frags-aware variant only when the
    /// MTU needs it in native mode).
    Redirect,
    /// afxdp's redirect program that first writes the driver's RX metadata
    /// (timestamp, hash, VLAN tag) before the packet (bpf/meta.bpf.c). Device
    /// bound: native mode only.
    Metadata,
    /// `Metadata`, frags-aware in every mode, for multi-buffer sockets.
    MetadataFrags,
    /// afxdp's frags-aware redirect program (`SEC("xdp.frags")`), in every
    /// mode: for multi-buffer sockets, which take packets as chains.
    RedirectFrags,
    /// A user ELF (`xdp_prog`): must contain a map named `xsks_map`; the
    /// program is the named one, or the only XDP program in the file.
    Object { path: PathBuf, program: Option<String> },
}

impl ProgramSource {
    fn describe(&self) -> String {
        match self {
            ProgramSource::Redirect => "afxdp's redirect program".into(),
            ProgramSource::Metadata => "afxdp's RX-metadata redirect program (rxMetadata)".into(),
            ProgramSource::MetadataFrags => "afxdp's frags-aware RX-metadata redirect program (rxMetadata)".into(),
            ProgramSource::RedirectFrags => "afxdp's frags-aware (multi-buffer) redirect program".into(),
            ProgramSource::Object { path, program: None } => format!("XDP object {}", path.display()),
            ProgramSource::Object { path, program: Some(p) } => format!("program {p} of XDP object {}", path.display()),
        }
    }
}

// ---- libbpf log capture: libbpf reports verifier logs, ELF problems and
// the kernel's netlink messages through one process-wide print callback.
// Everything is captured for the error it explains (per thread: libbpf calls
// back on the calling thread); outside a capture it is dropped, or printed
// when AFXDP_DEBUG is set, never sprayed on the application's stderr.

thread_local! {
    static LIBBPF_LOG: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn debug_enabled() -> bool {
    std::env::var_os("AFXDP_DEBUG").is_some_and(|v| !v.is_empty() && v != "0")
}

fn libbpf_print(_level: libbpf_rs::PrintLevel, msg: String) {
    LIBBPF_LOG.with(|c| {
        if let Ok(mut slot) = c.try_borrow_mut() {
            if let Some(buf) = slot.as_mut().filter(|b| b.len() < 64 * 1024) {
                buf.push_str(&msg);
            }
        }
    });
    if debug_enabled() {
        eprint!("{msg}");
    }
}

/// Route libbpf's output through `libbpf_print` (once per process). Called
/// before any libbpf use; the callback replaces libbpf's default, which
/// writes warnings to stderr.
pub fn quiet_libbpf() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let level = if debug_enabled() { libbpf_rs::PrintLevel::Debug } else { libbpf_rs::PrintLevel::Warn };
        libbpf_rs::set_print(Some((level, libbpf_print)));
    });
}

/// Run `f` with libbpf's messages collected; returns them too.
fn with_libbpf_log<T>(f: impl FnOnce() -> T) -> (T, String) {
    quiet_libbpf();
    let outer = LIBBPF_LOG.with(|c| c.borrow_mut().replace(String::new()));
    let out = f();
    let log = LIBBPF_LOG.with(|c| {
        let mut slot = c.borrow_mut();
        let log = slot.take().unwrap_or_default();
        // A nested capture hands its text to the outer one as well.
        *slot = outer.map(|mut o| {
            o.push_str(&log);
            o
        });
        log
    });
    (out, log)
}

fn log_tail(log: &str) -> String {
    let log = log.trim();
    if log.is_empty() {
        return String::new();
    }
    const MAX: usize = 3000;
    let tail = if log.len() > MAX {
        let mut start = log.len() - MAX;
        while !log.is_char_boundary(start) {
            start += 1;
        }
        format!("…{}", &log[start..])
    } else {
        log.to_string()
    };
    format!("\nlibbpf said:\n{tail}")
}

fn bpf_error(err: &libbpf_rs::Error, what: String, log: &str) -> Error {
    let code = match err.kind() {
        libbpf_rs::ErrorKind::PermissionDenied => Code::Permission,
        _ => Code::Bpf,
    };
    let hint = if code == Code::Permission {
        "; loading XDP programs needs CAP_BPF + CAP_NET_ADMIN (or root) — unprivileged processes must use a pinned map or the Device Plugin"
    } else {
        ""
    };
    Error::new(code, format!("{what}: {err:#}{hint}{}", log_tail(log)))
}

// ---- query / attach / detach through libbpf (netlink) ----

fn query_opts() -> libbpf_sys::bpf_xdp_query_opts {
    libbpf_sys::bpf_xdp_query_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_xdp_query_opts>() as libbpf_sys::size_t,
        ..Default::default()
    }
}

/// How a program is attached; decides whether it outlives the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachKind {
    /// A bpf_link: detached by the kernel when the link's last fd closes,
    /// i.e. when this process exits, however it dies. What ports use.
    Link,
    /// Netlink (IFLA_XDP): stays attached after the process exits, until
    /// someone removes it. For `dp-serve`, whose program must outlive it.
    Netlink,
}

impl AttachKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AttachKind::Link => "bpf_link",
            AttachKind::Netlink => "netlink",
        }
    }
}

/// What XDP program (if any) runs on `ifindex` in the calling thread's
/// network namespace. When an offloaded program runs next to a native or
/// generic one, the latter is reported.
pub fn query(ifindex: u32) -> Result<Option<AttachedXdp>> {
    let mut opts = query_opts();
    // SAFETY: opts is a valid, sized bpf_xdp_query_opts.
    let (r, _log) = with_libbpf_log(|| unsafe { libbpf_sys::bpf_xdp_query(ifindex as i32, 0, &mut opts) });
    if r < 0 {
        let mut e = Error::sys(format!("query XDP program of ifindex {ifindex} (bpf_xdp_query)"), -r);
        if -r == libc::ENODEV || -r == libc::EINVAL {
            e.code = Code::NoSuchInterface;
            e.message = format!("no interface with index {ifindex} in this network namespace; list them with `ip link`");
        }
        return Err(e);
    }
    let found = if opts.drv_prog_id != 0 {
        Some(AttachedXdp { prog_id: opts.drv_prog_id, mode: AttachedMode::Native })
    } else if opts.skb_prog_id != 0 {
        Some(AttachedXdp { prog_id: opts.skb_prog_id, mode: AttachedMode::Generic })
    } else if opts.hw_prog_id != 0 {
        Some(AttachedXdp { prog_id: opts.hw_prog_id, mode: AttachedMode::Offload })
    } else {
        None
    };
    Ok(found)
}

/// A failed attach: the errno and what libbpf said (netlink: the kernel's
/// extack message).
pub(crate) struct AttachFailure {
    pub(crate) errno: i32,
    log: String,
}

/// Attach in one explicit mode: a bpf_link (returned), or netlink with
/// UPDATE_IF_NOEXIST (nothing to hold).
pub(crate) fn attach_once(
    ifindex: u32,
    prog_fd: &OwnedFd,
    mode: XdpMode,
    kind: AttachKind,
) -> std::result::Result<Option<OwnedFd>, AttachFailure> {
    match kind {
        AttachKind::Link => syscall::link_create_xdp(prog_fd.as_fd(), ifindex, mode.flag())
            .map(Some)
            .map_err(|errno| AttachFailure { errno, log: String::new() }),
        AttachKind::Netlink => {
            let opts = libbpf_sys::bpf_xdp_attach_opts {
                sz: std::mem::size_of::<libbpf_sys::bpf_xdp_attach_opts>() as libbpf_sys::size_t,
                ..Default::default()
            };
            let flags = XDP_FLAGS_UPDATE_IF_NOEXIST | mode.flag();
            // SAFETY: valid fd and sized opts.
            let (r, log) =
                with_libbpf_log(|| unsafe { libbpf_sys::bpf_xdp_attach(ifindex as i32, prog_fd.as_raw_fd(), flags, &opts) });
            if r < 0 {
                Err(AttachFailure { errno: -r, log })
            } else {
                Ok(None)
            }
        }
    }
}

/// Who holds the XDP program `a` on `dev`: a bpf_link of some process, or
/// a netlink attachment; with the way to remove it.
fn describe_holder(dev: &Netdev, a: &AttachedXdp) -> String {
    let name = &dev.name;
    let prog = format!("XDP program id {} is already attached in {} mode", a.prog_id, a.mode.as_str());
    let link = match syscall::find_xdp_link(dev.ifindex, a.prog_id) {
        Ok(link) => link,
        Err(errno) => {
            return format!(
                "{prog} (check it with `bpftool prog show id {}`; whether through a bpf_link or netlink could not be \
                 told: listing links failed with {}); `ip link set dev {name} {} off` removes a netlink one, a \
                 bpf_link goes away when the process holding it exits",
                a.prog_id,
                std::io::Error::from_raw_os_error(errno),
                a.mode.ip_keyword()
            )
        }
    };
    if let Some(link) = link {
        let holders = syscall::link_holders(link.id);
        let me = format!("pid {} ", std::process::id());
        let who = if holders.is_empty() {
            "a link pinned on a bpffs or held by a process this one cannot see".to_string()
        } else if holders.iter().any(|h| h.starts_with(&me)) {
            format!("this process ({}): another port or server of it uses the interface", holders.join(", "))
        } else {
            holders.join(", ")
        };
        return format!(
            "{prog} through bpf_link id {} held by {who}; a bpf_link goes away when its holder exits or closes it: \
             stop that process (or `bpftool link detach id {}`); check it with `bpftool link show id {}`",
            link.id, link.id, link.id
        );
    }
    format!(
        "{prog} (through netlink; check it with `bpftool prog show id {}`); \
         if nothing needs it, remove it with `ip link set dev {name} {} off`",
        a.prog_id,
        a.mode.ip_keyword()
    )
}

fn busy_error(dev: &Netdev, tried: XdpMode, errno: i32) -> Error {
    let name = &dev.name;
    let what = match query(dev.ifindex) {
        Ok(Some(a)) => describe_holder(dev, &a),
        _ => format!("another XDP program is already attached; see `ip link show dev {name}`, remove it with `ip link set dev {name} xdp off`"),
    };
    Error::with_errno(
        Code::Bpf,
        errno,
        format!(
            "cannot attach to {name} in {} mode: {what}. afxdp never replaces a program it did not attach; \
             alternatively load your program with the xdp_prog option, or use a pinned map / the Device Plugin",
            tried.as_str()
        ),
    )
}

fn attach_error(dev: &Netdev, mode: XdpMode, errno: i32) -> Error {
    let name = &dev.name;
    match errno {
        libc::EBUSY | libc::EEXIST => busy_error(dev, mode, errno),
        libc::EPERM | libc::EACCES => Error::with_errno(
            Code::Permission,
            errno,
            format!("attaching an XDP program to {name} was refused: it needs CAP_NET_ADMIN and CAP_BPF (or root)"),
        ),
        libc::EOPNOTSUPP => Error::with_errno(
            Code::NotSupported,
            errno,
            format!(
                "{name} (driver {}) does not support XDP in {} mode; use mode generic (or auto)",
                dev.driver.as_deref().unwrap_or("unknown"),
                mode.as_str()
            ),
        ),
        libc::ERANGE | libc::EINVAL if mode == XdpMode::Native => Error::with_errno(
            Code::Bpf,
            errno,
            format!(
                "{name} refused the XDP program in native mode ({}); with MTU {} the driver may need a smaller MTU \
                 (ip link set dev {name} mtu 1500), more queues, or mode generic",
                std::io::Error::from_raw_os_error(errno),
                dev.mtu
            ),
        ),
        libc::ENODEV => {
            Error::with_errno(Code::NoSuchInterface, errno, format!("interface {name} disappeared while attaching XDP"))
        }
        _ => {
            let mut e = Error::sys(format!("attach XDP program to {name} in {} mode", mode.as_str()), errno);
            if e.code == Code::System || e.code == Code::InvalidArgument {
                e.code = Code::Bpf;
            }
            e
        }
    }
}

fn failure_error(dev: &Netdev, mode: XdpMode, f: &AttachFailure) -> Error {
    let mut e = attach_error(dev, mode, f.errno);
    e.message.push_str(&log_tail(&f.log));
    e
}

/// Attach `prog_fd` in `mode`; returns the mode actually used and the link
/// (for `AttachKind::Link`). dp-serve attaches through this too (Netlink).
pub(crate) fn attach_fd(dev: &Netdev, prog_fd: &OwnedFd, mode: XdpMode, kind: AttachKind) -> Result<(XdpMode, Option<OwnedFd>)> {
    match mode {
        XdpMode::Native | XdpMode::Generic => {
            let link = attach_once(dev.ifindex, prog_fd, mode, kind).map_err(|f| failure_error(dev, mode, &f))?;
            Ok((mode, link))
        }
        XdpMode::Auto => match attach_once(dev.ifindex, prog_fd, XdpMode::Native, kind) {
            Ok(link) => Ok((XdpMode::Native, link)),
            // Someone else's program or no permission: generic would fail
            // the same way (or, worse, hide the reason).
            Err(f @ AttachFailure { errno: libc::EBUSY | libc::EEXIST | libc::EPERM | libc::EACCES | libc::ENODEV, .. }) => {
                Err(failure_error(dev, XdpMode::Native, &f))
            }
            // The native failure (and its kernel message) is expected here
            // and dropped unless generic fails too.
            Err(native) => match attach_once(dev.ifindex, prog_fd, XdpMode::Generic, kind) {
                Ok(link) => Ok((XdpMode::Generic, link)),
                Err(generic) => {
                    let mut e = failure_error(dev, XdpMode::Generic, &generic);
                    e.message = format!(
                        "{} (native mode was tried first and failed: {}){}",
                        e.message,
                        std::io::Error::from_raw_os_error(native.errno),
                        log_tail(&native.log)
                    );
                    Err(e)
                }
            },
        },
    }
}

// ---- network namespace identity ----

fn current_netns_id() -> Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata("/proc/thread-self/ns/net")
        .map_err(|e| Error::sys("stat /proc/thread-self/ns/net", e.raw_os_error().unwrap_or(libc::EIO)))?;
    Ok((m.dev(), m.ino()))
}

#[derive(Debug)]
struct NetnsRef {
    file: File,
    id: (u64, u64),
}

impl NetnsRef {
    fn current() -> Result<NetnsRef> {
        let file = File::open("/proc/thread-self/ns/net")
            .map_err(|e| Error::sys("open /proc/thread-self/ns/net", e.raw_os_error().unwrap_or(libc::EIO)))?;
        use std::os::unix::fs::MetadataExt;
        let m = file.metadata().map_err(|e| Error::sys("fstat(netns)", e.raw_os_error().unwrap_or(libc::EIO)))?;
        Ok(NetnsRef { file, id: (m.dev(), m.ino()) })
    }

    /// Enter this namespace if the calling thread is elsewhere.
    fn enter_if_needed(&self) -> Result<Option<NetnsGuard>> {
        if current_netns_id()? == self.id {
            return Ok(None);
        }
        NetnsGuard::enter(format!("/proc/thread-self/fd/{}", self.file.as_raw_fd())).map(Some)
    }
}

// ---- loading ----

pub(crate) struct Loaded {
    pub(crate) prog_fd: OwnedFd,
    pub(crate) map: XskMap,
    pub(crate) frags: bool,
    /// Bytes the program prepends to every redirected packet (the RX
    /// metadata prefix variant), which the receive path skips.
    pub(crate) rx_prefix: u32,
}

fn dup(fd: std::os::fd::BorrowedFd<'_>, what: &str) -> Result<OwnedFd> {
    fd.try_clone_to_owned().map_err(|e| Error::sys(format!("dup({what})"), e.raw_os_error().unwrap_or(libc::EIO)))
}

/// Take the program and `xsks_map` fds out of a loaded object.
fn extract(obj: &libbpf_rs::Object, prog_name: &str, origin: &str) -> Result<(OwnedFd, OwnedFd)> {
    let prog = obj
        .progs()
        .find(|p| p.name() == prog_name)
        .ok_or_else(|| Error::new(Code::Bpf, format!("{origin}: program {prog_name} missing after load")))?;
    let map = obj
        .maps()
        .find(|m| m.name() == XSKS_MAP)
        .ok_or_else(|| Error::new(Code::Bpf, format!("{origin}: map {XSKS_MAP} missing after load")))?;
    Ok((dup(prog.as_fd(), "XDP program fd")?, dup(map.as_fd(), "xsks_map fd")?))
}

/// `frags`: the frags-aware variant in every mode, for multi-buffer sockets
/// (an error if the kernel cannot load it).
pub(crate) fn load_redirect(dev: &Netdev, mode: XdpMode, frags: bool) -> Result<Loaded> {
    let entries = dev.max_queues.max(MIN_MAP_ENTRIES);
    // Generic mode linearises skbs for a plain program, so an XSK without
    // multi-buffer support still gets whole packets: frags only for drivers,
    // unless the sockets are multi-buffer (they take chains).
    let want_frags = frags || (dev.mtu > FRAGS_MTU && mode != XdpMode::Generic);
    let attempt = |frags: bool| -> (std::result::Result<libbpf_rs::Object, libbpf_rs::Error>, String) {
        with_libbpf_log(|| {
            let mut open = libbpf_rs::ObjectBuilder::default().open_memory(REDIRECT_OBJECT)?;
            for mut p in open.progs_mut() {
                let name = p.name().to_string_lossy().into_owned();
                p.set_autoload(name == if frags { REDIRECT_PROG_FRAGS } else { REDIRECT_PROG });
            }
            for mut m in open.maps_mut() {
                if m.name() == XSKS_MAP {
                    m.set_max_entries(entries)?;
                }
            }
            open.load()
        })
    };
    let (mut result, mut log) = attempt(want_frags);
    let mut frags = want_frags;
    if let (Err(e), true) = (&result, frags) {
        let mut e = bpf_error(e, "load afxdp's frags-aware XDP program (multi-buffer needs Linux >= 6.6)".into(), &log);
        if e.code == Code::Bpf {
            e.code = Code::NotSupported;
        }
        return Err(e);
    }
    if result.is_err() && want_frags {
        // Kernels before 5.18 know no frags-aware programs: use the plain one.
        (result, log) = attempt(false);
        frags = false;
    }
    let obj = result.map_err(|e| bpf_error(&e, "load afxdp's XDP redirect program".into(), &log))?;
    let (prog_fd, map_fd) = extract(&obj, if frags { REDIRECT_PROG_FRAGS } else { REDIRECT_PROG }, "redirect object")?;
    Ok(Loaded { prog_fd, map: XskMap::from_fd(map_fd)?, frags, rx_prefix: 0 })
}

/// Load bpf/meta.bpf.c bound to `dev` (prog_ifindex + BPF_F_XDP_DEV_BOUND_ONLY),
/// as the metadata kfuncs require. Errors name what is missing: the kfuncs
/// in the kernel (Linux >= 6.3, with BTF), or native mode.
pub(crate) fn load_meta(dev: &Netdev, mode: XdpMode, force_frags: bool) -> Result<Loaded> {
    if mode == XdpMode::Generic {
        return Err(Error::new(
            Code::NotSupported,
            format!(
                "rxMetadata needs native XDP: its program calls the XDP metadata kfuncs, which only a device-bound \
                 program may, and the kernel attaches device-bound programs in native mode only (mode=drv, or leave \
                 xdpMode auto); {} was asked for generic mode",
                dev.name
            ),
        ));
    }
    let entries = dev.max_queues.max(MIN_MAP_ENTRIES);
    let want_frags = force_frags || dev.mtu > FRAGS_MTU;
    let attempt = |name: &str| -> (std::result::Result<libbpf_rs::Object, libbpf_rs::Error>, String) {
        with_libbpf_log(|| {
            let mut open = libbpf_rs::ObjectBuilder::default().open_memory(META_OBJECT)?;
            for mut p in open.progs_mut() {
                let chosen = p.name().to_string_lossy() == name;
                p.set_autoload(chosen);
                if chosen {
                    p.set_ifindex(dev.ifindex);
                    // The frags sections' BPF_F_XDP_HAS_FRAGS is added by libbpf at load.
                    p.set_flags(BPF_F_XDP_DEV_BOUND_ONLY);
                }
            }
            for mut m in open.maps_mut() {
                if m.name() == XSKS_MAP {
                    m.set_max_entries(entries)?;
                }
            }
            open.load()
        })
    };
    // The metadata area first; then the prefix variant, for kernels whose
    // verifier refuses bpf_xdp_adjust_meta to XDP programs; frags-aware
    // variants first when the MTU wants them (kernels before 5.18 lack them).
    let mut order: Vec<(&str, bool, u32)> = Vec::new();
    for (plain, frags_name, prefix) in [(META_PROG, META_PROG_FRAGS, 0), (META_PREFIX_PROG, META_PREFIX_PROG_FRAGS, RX_META_LEN)]
    {
        if want_frags {
            order.push((frags_name, true, prefix));
        }
        order.push((plain, false, prefix));
    }
    let mut first_failure: Option<(libbpf_rs::Error, String)> = None;
    for (name, frags, rx_prefix) in order {
        let (result, log) = attempt(name);
        match result {
            Ok(obj) => {
                let (prog_fd, map_fd) = extract(&obj, name, "metadata object")?;
                return Ok(Loaded { prog_fd, map: XskMap::from_fd(map_fd)?, frags, rx_prefix });
            }
            Err(e) => {
                if first_failure.is_none() {
                    first_failure = Some((e, log));
                }
            }
        }
    }
    let (e, log) = first_failure.expect("at least one attempt");
    Err(meta_load_error(dev, &e, &log))
}

/// Why the metadata program did not load, with the requirement named.
fn meta_load_error(dev: &Netdev, err: &libbpf_rs::Error, log: &str) -> Error {
    let mut e = bpf_error(err, format!("load afxdp's RX-metadata XDP program for {}", dev.name), log);
    if e.code == Code::Permission {
        return e;
    }
    let missing = ["bpf_xdp_metadata_rx_timestamp", "bpf_xdp_metadata_rx_hash"]
        .into_iter()
        .find(|k| log.contains(k) && (log.contains("not found") || log.contains("failed to find")));
    e.code = Code::NotSupported;
    let need = match missing {
        Some(k) => format!("this kernel lacks the XDP RX metadata kfunc {k} (Linux >= 6.3 with BTF in /sys/kernel/btf/vmlinux)"),
        None => format!(
            "the kernel refused a device-bound XDP program for {} (driver {}): rxMetadata needs Linux >= 6.3, BTF, \
             and a driver that supports device-bound XDP",
            dev.name,
            dev.driver.as_deref().unwrap_or("unknown")
        ),
    };
    e.message = format!("rxMetadata is not supported here: {need}; {}", e.message);
    e
}

fn load_object(path: &Path, program: Option<&str>) -> Result<Loaded> {
    let p = path.display();
    if let Err(e) = std::fs::metadata(path) {
        return Err(Error::with_errno(
            Code::InvalidArgument,
            e.raw_os_error().unwrap_or(libc::ENOENT),
            format!("xdp_prog {p} cannot be read: {e}"),
        ));
    }
    let (result, log) = with_libbpf_log(|| -> Result<(libbpf_rs::Object, String, bool)> {
        let open = libbpf_rs::ObjectBuilder::default().open_file(path).map_err(|e| {
            bpf_error(&e, format!("open xdp_prog {p} (is it a BPF ELF object built with clang -target bpf?)"), "")
        })?;
        if !open.maps().any(|m| m.name() == XSKS_MAP) {
            let names: Vec<String> = open.maps().map(|m| m.name().to_string_lossy().into_owned()).collect();
            return Err(Error::new(
                Code::Bpf,
                format!(
                    "xdp_prog {p} has no map named {XSKS_MAP} (its maps: {}); afxdp inserts its sockets there: declare \
                     a BPF_MAP_TYPE_XSKMAP named {XSKS_MAP} (u32 key = queue id, u32 value) and redirect with \
                     bpf_redirect_map(&{XSKS_MAP}, ctx->rx_queue_index, XDP_PASS)",
                    if names.is_empty() { "none".to_string() } else { names.join(", ") }
                ),
            ));
        }
        let xdp: Vec<(String, bool)> = open
            .progs()
            .filter(|pr| pr.prog_type() == libbpf_rs::ProgramType::Xdp)
            .map(|pr| (pr.name().to_string_lossy().into_owned(), pr.section().to_string_lossy().starts_with("xdp.frags")))
            .collect();
        let names = || xdp.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
        let (chosen, frags) = match program {
            Some(want) => xdp.iter().find(|(n, _)| n == want).cloned().ok_or_else(|| {
                Error::new(
                    Code::Bpf,
                    format!(
                        "xdp_prog {p} has no XDP program named {want} (XDP programs in it: {})",
                        if xdp.is_empty() { "none".into() } else { names() }
                    ),
                )
            })?,
            None => match xdp.len() {
                0 => return Err(Error::new(Code::Bpf, format!("xdp_prog {p} contains no XDP program (SEC(\"xdp\"))"))),
                1 => xdp[0].clone(),
                _ => {
                    return Err(Error::new(
                        Code::Bpf,
                        format!("xdp_prog {p} contains several XDP programs ({}); name the one to attach", names()),
                    ))
                }
            },
        };
        let obj = open.load().map_err(|e| bpf_error(&e, format!("load xdp_prog {p}"), ""))?;
        Ok((obj, chosen, frags))
    });
    let (obj, chosen, frags) = result.map_err(|mut e| {
        e.message.push_str(&log_tail(&log));
        e
    })?;
    let (prog_fd, map_fd) = extract(&obj, &chosen, &format!("xdp_prog {p}"))?;
    let map = XskMap::from_fd(map_fd).map_err(|mut e| {
        e.message = format!("xdp_prog {p}: {}", e.message);
        e
    })?;
    Ok(Loaded { prog_fd, map, frags, rx_prefix: 0 })
}

// ---- XdpProgram ----

/// An XDP program this process attached to one interface. Dropping it (or
/// `detach`) removes it from the interface, but only if the interface still
/// runs this very program.
#[derive(Debug)]
pub struct XdpProgram {
    ifindex: u32,
    ifname: String,
    mode: XdpMode,
    prog_fd: OwnedFd,
    prog_id: u32,
    frags: bool,
    rx_prefix: u32,
    map: XskMap,
    source: ProgramSource,
    netns: NetnsRef,
    kind: AttachKind,
    state: Mutex<Attachment>,
}

/// Whether (and how) the program is still attached by us.
#[derive(Debug)]
enum Attachment {
    Netlink,
    /// Our bpf_link; closing it detaches.
    Link(OwnedFd),
    Detached,
}

impl XdpProgram {
    /// Load afxdp's redirect program and attach it to `ifindex` (in the
    /// calling thread's namespace). Fails, naming the program, if any XDP
    /// program is attached already.
    pub fn attach_redirect(ifindex: u32, mode: XdpMode) -> Result<(XdpProgram, XskMap)> {
        Self::attach(ifindex, mode, &ProgramSource::Redirect)
    }

    /// Load the user's `xdp_prog` ELF (must contain `xsks_map` and exactly one
    /// XDP program) and attach it.
    pub fn attach_object(path: impl AsRef<Path>, ifindex: u32, mode: XdpMode) -> Result<(XdpProgram, XskMap)> {
        Self::attach(ifindex, mode, &ProgramSource::Object { path: path.as_ref().to_path_buf(), program: None })
    }

    /// Like `attach_object`, choosing the XDP program by name.
    pub fn attach_object_named(
        path: impl AsRef<Path>,
        program: &str,
        ifindex: u32,
        mode: XdpMode,
    ) -> Result<(XdpProgram, XskMap)> {
        Self::attach(
            ifindex,
            mode,
            &ProgramSource::Object { path: path.as_ref().to_path_buf(), program: Some(program.to_string()) },
        )
    }

    /// Load and attach `source` through netlink (it outlives the process;
    /// see `attach_as`); returns the program and a handle on its `xsks_map`.
    pub fn attach(ifindex: u32, mode: XdpMode, source: &ProgramSource) -> Result<(XdpProgram, XskMap)> {
        Self::attach_as(ifindex, mode, source, AttachKind::Netlink)
    }

    /// Load and attach `source` as `kind`.
    pub fn attach_as(ifindex: u32, mode: XdpMode, source: &ProgramSource, kind: AttachKind) -> Result<(XdpProgram, XskMap)> {
        let dev = Netdev::by_index(ifindex)?;
        let netns = NetnsRef::current()?;
        let loaded = match source {
            ProgramSource::Redirect => load_redirect(&dev, mode, false)?,
            ProgramSource::RedirectFrags => load_redirect(&dev, mode, true)?,
            ProgramSource::Metadata => load_meta(&dev, mode, false)?,
            ProgramSource::MetadataFrags => load_meta(&dev, mode, true)?,
            ProgramSource::Object { path, program } => load_object(path, program.as_deref()).map_err(|e| e.with_path(path))?,
        };
        let prog_id = syscall::prog_info(loaded.prog_fd.as_fd())?.id;
        // A device-bound program cannot attach in generic mode (the kernel
        // says EINVAL); load_meta refused Generic already, Auto means native.
        let meta = matches!(source, ProgramSource::Metadata | ProgramSource::MetadataFrags);
        let mode = if meta { XdpMode::Native } else { mode };
        let (actual, link) = attach_fd(&dev, &loaded.prog_fd, mode, kind).map_err(|mut e| {
            if meta {
                e.message.push_str(&format!(
                    " (rxMetadata attaches a device-bound program, which needs native XDP in the driver of {})",
                    dev.name
                ));
            }
            e
        })?;
        let map = loaded.map.try_clone()?;
        let prog = XdpProgram {
            ifindex,
            ifname: dev.name.clone(),
            mode: actual,
            prog_fd: loaded.prog_fd,
            prog_id,
            frags: loaded.frags,
            rx_prefix: loaded.rx_prefix,
            map: loaded.map,
            source: source.clone(),
            netns,
            kind,
            state: Mutex::new(match link {
                Some(fd) => Attachment::Link(fd),
                None => Attachment::Netlink,
            }),
        };
        Ok((prog, map))
    }

    /// Attach `source` to `ifindex` through netlink (it outlives the
    /// process: dp-serve), or share it; see `attach_or_share_as`.
    pub fn attach_or_share(ifindex: u32, mode: XdpMode, source: &ProgramSource) -> Result<(SharedXdp, XskMap)> {
        Self::attach_or_share_as(ifindex, mode, source, AttachKind::Netlink)
    }

    /// Attach `source` to `ifindex` as `kind`, or share the program another
    /// port of this process already attached there (same namespace, same
    /// source, same kind, compatible mode). The program is detached when the
    /// last `SharedXdp` is dropped.
    pub fn attach_or_share_as(
        ifindex: u32,
        mode: XdpMode,
        source: &ProgramSource,
        kind: AttachKind,
    ) -> Result<(SharedXdp, XskMap)> {
        let key = (current_netns_id()?, ifindex);
        let mut reg = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pos) = reg.iter().position(|e| e.key == key) {
            let entry = &reg[pos];
            let prog = entry.prog.clone();
            // Still ours? (Someone may have removed it, or the interface was
            // recreated with the same index.) If not, replace the entry.
            let live = prog.is_attached().unwrap_or(false);
            if live {
                if prog.kind != kind {
                    return Err(Error::new(
                        Code::Bpf,
                        format!(
                            "{} already runs afxdp's XDP program attached by this process through {} (for another \
                             port or a server of it); one interface cannot also take a {} attachment: close that \
                             first",
                            prog.ifname,
                            prog.kind.as_str(),
                            kind.as_str()
                        ),
                    ));
                }
                if prog.source != *source {
                    return Err(Error::new(
                        Code::Bpf,
                        format!(
                            "{} already runs {} for another port of this process; all ports on one interface \
                             must use the same XDP program (requested: {})",
                            prog.ifname,
                            prog.source.describe(),
                            source.describe()
                        ),
                    ));
                }
                if mode != XdpMode::Auto && mode != prog.mode {
                    return Err(Error::new(
                        Code::InvalidArgument,
                        format!(
                            "{} already runs afxdp's XDP program in {} mode for another port of this process; \
                             open this port with mode {} or auto",
                            prog.ifname,
                            prog.mode.as_str(),
                            prog.mode.as_str()
                        ),
                    ));
                }
                let map = prog.map.try_clone()?;
                reg[pos].users += 1;
                return Ok((SharedXdp { prog, key }, map));
            }
            reg.remove(pos);
        }
        let (prog, map) = XdpProgram::attach_as(ifindex, mode, source, kind)?;
        let prog = Arc::new(prog);
        reg.push(Entry { key, prog: prog.clone(), users: 1 });
        Ok((SharedXdp { prog, key }, map))
    }

    /// The mode actually attached in (never `Auto`).
    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    /// The kernel's id of the attached program.
    pub fn prog_id(&self) -> u32 {
        self.prog_id
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// True if the frags-aware (multi-buffer) variant was attached.
    pub fn frags(&self) -> bool {
        self.frags
    }

    /// Bytes the program prepends to redirected packets (RX metadata as a
    /// prefix; 0: none, or in the metadata area).
    pub fn rx_prefix(&self) -> u32 {
        self.rx_prefix
    }

    pub fn source(&self) -> &ProgramSource {
        &self.source
    }

    /// The program's `xsks_map`.
    pub fn map(&self) -> &XskMap {
        &self.map
    }

    /// How it was attached.
    pub fn kind(&self) -> AttachKind {
        self.kind
    }

    /// Whether the interface still runs this program through our attachment.
    pub fn is_attached(&self) -> Result<bool> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match &*state {
            Attachment::Detached => Ok(false),
            // A link reports ifindex 0 once the kernel detached it (the
            // interface went away).
            Attachment::Link(fd) => Ok(syscall::link_info(fd.as_fd())?.ifindex != 0),
            Attachment::Netlink => {
                let _guard = self.netns.enter_if_needed()?;
                Ok(matches!(query(self.ifindex)?, Some(a) if a.prog_id == self.prog_id))
            }
        }
    }

    /// Remove the program from the interface if the interface still runs it.
    /// Ok(true): removed; Ok(false): it was no longer attached (someone else
    /// replaced or removed it, or the interface is gone) and nothing was
    /// touched. Idempotent.
    pub fn detach(&self) -> Result<bool> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match &*state {
            Attachment::Detached => Ok(false),
            Attachment::Link(fd) => {
                // Our own link can only ever remove our program; closing
                // the fd afterwards frees the (now defunct) link.
                let r = syscall::link_detach(fd.as_fd());
                match r {
                    Ok(()) => {
                        *state = Attachment::Detached;
                        Ok(true)
                    }
                    Err(libc::ENOLINK | libc::ENODEV) => {
                        *state = Attachment::Detached;
                        Ok(false)
                    }
                    Err(e) => Err(attach_error_detach(&self.ifname, e)),
                }
            }
            Attachment::Netlink => {
                let _guard = self.netns.enter_if_needed()?;
                match detach_netlink_if_ours(self.ifindex, &self.prog_fd, self.mode) {
                    0 => {
                        *state = Attachment::Detached;
                        Ok(true)
                    }
                    libc::EEXIST | libc::ENODEV => {
                        *state = Attachment::Detached;
                        Ok(false)
                    }
                    e => Err(attach_error_detach(&self.ifname, e)),
                }
            }
        }
    }
}

/// Netlink detach of `prog_fd` from `ifindex` (in the caller's netns), only
/// if it is still the program attached: REPLACE with it as the expected one,
/// so the kernel answers EEXIST instead of removing anyone else's. Returns
/// 0 or the errno.
pub(crate) fn detach_netlink_if_ours(ifindex: u32, prog_fd: &OwnedFd, mode: XdpMode) -> i32 {
    let opts = libbpf_sys::bpf_xdp_attach_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_xdp_attach_opts>() as libbpf_sys::size_t,
        old_prog_fd: prog_fd.as_raw_fd(),
        ..Default::default()
    };
    // SAFETY: sized opts, valid fd; prog_fd -1 = detach.
    let (r, _log) = with_libbpf_log(|| unsafe { libbpf_sys::bpf_xdp_detach(ifindex as i32, mode.flag(), &opts) });
    -r
}

fn attach_error_detach(ifname: &str, errno: i32) -> Error {
    let mut e = Error::sys(format!("detach afxdp's XDP program from {ifname}"), errno);
    if e.code == Code::System || e.code == Code::InvalidArgument {
        e.code = Code::Bpf;
    }
    if e.code == Code::Permission {
        e.message.push_str(": detaching needs CAP_NET_ADMIN");
    }
    e
}

impl Drop for XdpProgram {
    fn drop(&mut self) {
        let _ = self.detach();
    }
}

// ---- sharing within the process ----

type Key = ((u64, u64), u32);

struct Entry {
    key: Key,
    prog: Arc<XdpProgram>,
    users: usize,
}

static REGISTRY: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// One port's share of an XDP program attached by this process (see
/// `XdpProgram::attach_or_share`). The last share dropped detaches.
#[derive(Debug)]
pub struct SharedXdp {
    prog: Arc<XdpProgram>,
    key: Key,
}

impl SharedXdp {
    pub fn mode(&self) -> XdpMode {
        self.prog.mode
    }
    pub fn prog_id(&self) -> u32 {
        self.prog.prog_id
    }
    pub fn ifindex(&self) -> u32 {
        self.prog.ifindex
    }
    pub fn ifname(&self) -> &str {
        &self.prog.ifname
    }
    pub fn frags(&self) -> bool {
        self.prog.frags
    }
    pub fn rx_prefix(&self) -> u32 {
        self.prog.rx_prefix
    }
    pub fn source(&self) -> &ProgramSource {
        &self.prog.source
    }
    pub fn map(&self) -> &XskMap {
        &self.prog.map
    }
    pub fn is_attached(&self) -> Result<bool> {
        self.prog.is_attached()
    }
    pub fn kind(&self) -> AttachKind {
        self.prog.kind
    }
    /// How many shares of this program exist in the process.
    pub fn users(&self) -> usize {
        let reg = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
        reg.iter().find(|e| Arc::ptr_eq(&e.prog, &self.prog)).map(|e| e.users).unwrap_or(1)
    }
}

impl Drop for SharedXdp {
    fn drop(&mut self) {
        // Detach (via XdpProgram's Drop) while holding the lock, so that a
        // concurrent attach_or_share never sees a half-dead program.
        let mut reg = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pos) = reg.iter().position(|e| e.key == self.key && Arc::ptr_eq(&e.prog, &self.prog)) {
            reg[pos].users -= 1;
            if reg[pos].users == 0 {
                let entry = reg.remove(pos);
                let _ = entry.prog.detach();
            }
        }
        // If the entry had been replaced (our program was found no longer
        // attached), the last Arc's Drop runs a detach that is a no-op.
    }
}
