//! What a Device Plugin server serves and how: devices, UDS and pinned-map
//! settings, pod policy, deadlines, and the defaults the Device Plugin uses.

use super::faults::Fault;
use crate::bpf::XdpMode;
use crate::{Error, Result};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where a restarted server finds the records of the programs it adopts
/// (a tmpfs: cleared at boot, as programs are).
pub const DEFAULT_STATE_DIR: &str = "/run/afxdp/dp-serve";
/// The Device Plugin's default for accept and read deadlines (UdsTimeout
/// unset or 0, dp-protocol.md §5).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Sessions served at once by default (afxdp extension; see `max_concurrent`).
pub const DEFAULT_MAX_CONCURRENT: u32 = 64;
/// How often the server checks its programs are still attached.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Where pods see the Device Plugin's sockets and pins (§6.1).
pub const DEFAULT_POD_DIR: &str = "/tmp/afxdp_dp";
/// Host socket directory by default: the Device Plugin's
/// `/tmp/afxdp_dp/<deviceType with '/'→'_'>/` for a pool named `pool`.
pub const DEFAULT_HOST_DIR: &str = "/tmp/afxdp_dp/afxdp_pool";
/// File name of the pod-visible socket in `<pod_dir>/<iface>/`.
pub const POD_SOCKET_NAME: &str = "afxdp.sock";
/// File name of the pin in `<pin_dir>/<iface>/`.
pub const PIN_NAME: &str = "xsks_map";

/// One interface the server provides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpDevice {
    /// Interface name (validated: 1-15 bytes, no '/', ':', ',', whitespace
    /// or NUL, not `.`/`..`), so it can never escape its directory.
    pub iface: String,
    /// Network namespace to find it in (`/run/netns` name or a path);
    /// None = the server's own.
    pub netns: Option<String>,
}

impl DpDevice {
    pub fn new(iface: impl Into<String>) -> DpDevice {
        DpDevice { iface: iface.into(), netns: None }
    }

    pub fn in_netns(iface: impl Into<String>, netns: impl Into<String>) -> DpDevice {
        DpDevice { iface: iface.into(), netns: Some(netns.into()) }
    }
}

/// UDS mode settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdsConfig {
    /// Directory of the host socket `<host_dir>/<uuid-v4>.sock` (a new name
    /// per allocation, like the Device Plugin). Created with mode 0700 if
    /// missing, so only root reaches the host path; clients use the pod path.
    pub host_dir: PathBuf,
    /// Base of the pod-visible paths `<pod_dir>/<iface>/afxdp.sock`. Each is
    /// a hard link to the host socket (the same inode, as the Device
    /// Plugin's bind mount is): after the session the link stays and
    /// connecting to it gives ECONNREFUSED, exactly as inside a pod. Falls
    /// back to a symlink where a hard link is impossible (another file
    /// system; the client must then be able to reach `host_dir`); a dangling
    /// symlink gives ENOENT instead. Must not lie inside the pin directory
    /// (a bpffs refuses names with a '.'). None = host socket only.
    pub pod_dir: Option<PathBuf>,
    /// Mode of the socket file (the Device Plugin relies on an ACL; the
    /// socket file's owner is `DpConfig::owner_uid`/`owner_gid`).
    pub socket_mode: u32,
}

impl Default for UdsConfig {
    fn default() -> Self {
        UdsConfig { host_dir: DEFAULT_HOST_DIR.into(), pod_dir: Some(DEFAULT_POD_DIR.into()), socket_mode: 0o660 }
    }
}

/// Pinned-map mode settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinConfig {
    /// Where pins go: `<pin_dir>/<iface>/xsks_map`. If this is not a bpffs
    /// already, a bpffs is mounted on it (the directory is created if
    /// missing and must be empty), and unmounted on stop.
    pub pin_dir: PathBuf,
}

/// The verdict of a pod validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodVerdict {
    /// `/host_ok`, the session continues.
    Valid,
    /// `/host_nak`, then close.
    Invalid,
    /// The lookup itself failed (the Device Plugin: kubelet pod-resources
    /// error): `/error`, then `/host_nak`, then close.
    Error,
}

/// Which pod names `/connect,<pod>` may give (the Device Plugin asks the
/// kubelet; here it is pluggable).
#[derive(Clone, Default)]
pub enum PodPolicy {
    /// Every name is valid.
    #[default]
    Any,
    /// Only these names (after the protocol's space stripping).
    Names(Vec<String>),
    /// Ask a function.
    Custom(Arc<dyn Fn(&str) -> PodVerdict + Send + Sync>),
}

impl PodPolicy {
    pub fn check(&self, pod: &str) -> PodVerdict {
        match self {
            PodPolicy::Any => PodVerdict::Valid,
            PodPolicy::Names(names) => {
                if names.iter().any(|n| n == pod) {
                    PodVerdict::Valid
                } else {
                    PodVerdict::Invalid
                }
            }
            PodPolicy::Custom(f) => f(pod),
        }
    }
}

impl fmt::Debug for PodPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PodPolicy::Any => f.write_str("Any"),
            PodPolicy::Names(n) => f.debug_tuple("Names").field(n).finish(),
            PodPolicy::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// Everything `DpServer::start` needs.
#[derive(Debug, Clone)]
pub struct DpConfig {
    pub devices: Vec<DpDevice>,
    /// How to attach the redirect program (the Device Plugin uses native).
    pub xdp_mode: XdpMode,
    /// UDS mode (None = off).
    pub uds: Option<UdsConfig>,
    /// Pinned-map mode (None = off).
    pub pinned: Option<PinConfig>,
    /// Owner given to socket files and pins (the Device Plugin pool's `uid`,
    /// applied there as an ACL). None = leave root's.
    pub owner_uid: Option<u32>,
    pub owner_gid: Option<u32>,
    /// SO_PEERCRED allowlist (afxdp hardening; the Device Plugin checks no
    /// credentials): a client whose uid is not listed is closed before
    /// anything is read. None = any uid that can open the socket file.
    pub allowed_uids: Option<Vec<u32>>,
    pub pods: PodPolicy,
    /// How long an allocation waits for its client (None = forever). Every
    /// allocation (every re-arm) gets a fresh deadline.
    pub accept_timeout: Option<Duration>,
    /// Deadline of each read, re-armed before every read (None = none).
    pub read_timeout: Option<Duration>,
    /// Total deadline of a session, counted from its accept (None = none):
    /// a client that keeps talking is still closed then.
    pub session_timeout: Option<Duration>,
    /// Sessions served at once (at least 1). Past it the next client is not
    /// accepted (it waits in the listen backlog) until a session ends.
    pub max_concurrent: u32,
    /// How often to check each program is still attached and re-attach it
    /// when it was removed (None = never).
    pub check_interval: Option<Duration>,
    /// Directory of the per-interface records that let a restarted server
    /// adopt the programs a crashed one left attached.
    pub state_dir: PathBuf,
    /// On stop, leave the programs attached (and recorded, for the next
    /// server to adopt) instead of detaching them.
    pub keep_programs: bool,
    /// Allocations to serve, one accepted client each: 1 = the Device
    /// Plugin (one allocation, then the socket is gone). afxdp extension:
    /// N > 1 re-arms a fresh listener (new host socket, pod paths re-linked)
    /// after each allocation ends; 0 = re-arm until stopped.
    pub sessions: u32,
    pub fault: Fault,
    /// Also print the server's log lines on stderr.
    pub log_to_stderr: bool,
}

impl DpConfig {
    /// UDS mode with the Device Plugin's defaults for `devices`.
    pub fn new(devices: Vec<DpDevice>) -> DpConfig {
        DpConfig {
            devices,
            xdp_mode: XdpMode::Auto,
            uds: Some(UdsConfig::default()),
            pinned: None,
            owner_uid: None,
            owner_gid: None,
            allowed_uids: None,
            pods: PodPolicy::Any,
            accept_timeout: Some(DEFAULT_TIMEOUT),
            read_timeout: Some(DEFAULT_TIMEOUT),
            session_timeout: Some(DEFAULT_TIMEOUT),
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            check_interval: Some(DEFAULT_CHECK_INTERVAL),
            state_dir: DEFAULT_STATE_DIR.into(),
            keep_programs: false,
            sessions: 1,
            fault: Fault::None,
            log_to_stderr: false,
        }
    }
}

/// Check that `name` is a valid Linux interface name (the kernel's
/// `dev_valid_name`) that is also safe as one path component and as one
/// protocol argument: 1-15 bytes, not `.` or `..`, no `/`, `:`, `,`,
/// whitespace or NUL.
pub fn validate_iface_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() >= 16
        || name == "."
        || name == ".."
        || name.bytes().any(|b| b == b'/' || b == b':' || b == b',' || b == 0 || b.is_ascii_whitespace());
    if bad {
        return Err(Error::invalid(format!(
            "interface name {name:?} is not usable: it must be 1 to 15 bytes, not '.' or '..', \
             without '/', ':', ',', whitespace or NUL"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iface_names_cannot_escape() {
        for ok in ["veth0", "eth0.100", "a", "x-y_z@1", "123456789012345"] {
            validate_iface_name(ok).unwrap();
        }
        for bad in ["", ".", "..", "../etc", "a/b", "a\0b", "a b", "a,b", "a:b", "1234567890123456", "tab\t"] {
            assert!(validate_iface_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn pod_policy() {
        assert_eq!(PodPolicy::Any.check("x"), PodVerdict::Valid);
        let p = PodPolicy::Names(vec!["a".into()]);
        assert_eq!(p.check("a"), PodVerdict::Valid);
        assert_eq!(p.check("b"), PodVerdict::Invalid);
        let c = PodPolicy::Custom(Arc::new(|n: &str| if n == "e" { PodVerdict::Error } else { PodVerdict::Valid }));
        assert_eq!(c.check("e"), PodVerdict::Error);
    }
}
