//! Probes for `afxdp doctor`: can this process create an AF_XDP socket,
//! and what does the kernel say about an interface (driver, queues, XDP
//! features). Nothing here changes any state; every fd is closed again.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use afxdp_core::netdev::{Netdev, QueueSource};
use afxdp_core::netns;
use napi_derive::napi;

use crate::error::{to_js, Result};

/// Outcome of `socket(AF_XDP, SOCK_RAW, 0)`.
#[napi(object)]
pub struct NativeAfXdpProbe {
    /// The socket was created (and closed again).
    pub ok: bool,
    /// errno when it failed: EAFNOSUPPORT = no AF_XDP in this kernel,
    /// EPERM/EACCES = no CAP_NET_RAW (or a seccomp/LSM denial).
    pub errno: i32,
    pub message: String,
}

/// Try to create an AF_XDP socket (in `netns` when given), close it at once.
#[napi]
pub fn probe_af_xdp_socket(netns: Option<String>) -> Result<NativeAfXdpProbe> {
    netns::within(netns.as_deref(), || {
        // SAFETY: plain syscall; the fd is owned and closed below.
        let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd >= 0 {
            // SAFETY: fresh fd we own.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
            return Ok(NativeAfXdpProbe { ok: true, errno: 0, message: String::new() });
        }
        let err = std::io::Error::last_os_error();
        Ok(NativeAfXdpProbe { ok: false, errno: err.raw_os_error().unwrap_or(0), message: err.to_string() })
    })
    .map_err(to_js)
}

/// What the kernel reports about one interface.
#[napi(object)]
pub struct NativeInterfaceProbe {
    pub name: String,
    pub ifindex: u32,
    pub mac: String,
    pub mtu: u32,
    pub up: bool,
    pub carrier: bool,
    /// ETHTOOL_GDRVINFO driver, if the driver answers.
    pub driver: Option<String>,
    pub rx_queues: u32,
    pub tx_queues: u32,
    /// What `ethtool -L` could raise the queue count to.
    pub max_queues: u32,
    /// "ethtool", "netlink" or "assumed".
    pub queue_source: String,
    /// The netdev genl family's NETDEV_A_DEV_XDP_FEATURES (kernel >= 6.3),
    /// as names: basic, redirect, ndo-xmit, xsk-zerocopy, hw-offload,
    /// rx-sg, ndo-xmit-sg. Null when the kernel cannot say.
    pub xdp_features: Option<Vec<String>>,
    /// NETDEV_A_DEV_XDP_ZC_MAX_SEGS, when reported.
    pub xdp_zc_max_segs: Option<u32>,
    /// Why `xdp_features` is null.
    pub xdp_features_error: Option<String>,
}

/// Look up `ifname` (in `netns` when given); throws ERR_AFXDP_NO_SUCH_INTERFACE.
#[napi]
pub fn probe_interface(ifname: String, netns: Option<String>) -> Result<NativeInterfaceProbe> {
    netns::within(netns.as_deref(), || {
        let dev = Netdev::lookup(&ifname)?;
        let (features, zc, feat_err) = match xdp_features(dev.ifindex) {
            Ok((f, z)) => (Some(feature_names(f)), z, None),
            Err(e) => (None, None, Some(e)),
        };
        Ok(NativeInterfaceProbe {
            name: dev.name.clone(),
            ifindex: dev.ifindex,
            mac: dev.mac_string(),
            mtu: dev.mtu,
            up: dev.up,
            carrier: dev.carrier,
            driver: dev.driver.clone(),
            rx_queues: dev.rx_queues,
            tx_queues: dev.tx_queues,
            max_queues: dev.max_queues,
            queue_source: match dev.queue_source {
                QueueSource::Ethtool => "ethtool",
                QueueSource::Netlink => "netlink",
                QueueSource::Assumed => "assumed",
            }
            .to_string(),
            xdp_features: features,
            xdp_zc_max_segs: zc,
            xdp_features_error: feat_err,
        })
    })
    .map_err(to_js)
}

const FEATURE_NAMES: [&str; 7] = ["basic", "redirect", "ndo-xmit", "xsk-zerocopy", "hw-offload", "rx-sg", "ndo-xmit-sg"];

fn feature_names(bits: u64) -> Vec<String> {
    FEATURE_NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1u64 << i) != 0)
        .map(|(_, n)| n.to_string())
        .collect()
}

// ---- generic netlink: the "netdev" family's DEV_GET ----

const NETLINK_GENERIC: i32 = 16;
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const NETDEV_CMD_DEV_GET: u8 = 1;
const NETDEV_A_DEV_IFINDEX: u16 = 1;
const NETDEV_A_DEV_XDP_FEATURES: u16 = 3;
const NETDEV_A_DEV_XDP_ZC_MAX_SEGS: u16 = 4;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn genl_request(family: u16, cmd: u8, seq: u32, attr_type: u16, attr: &[u8]) -> Vec<u8> {
    let attr_len = 4 + attr.len();
    let total = 16 + 4 + align4(attr_len);
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&(total as u32).to_ne_bytes());
    m.extend_from_slice(&family.to_ne_bytes());
    m.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[cmd, 1, 0, 0]);
    m.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    m.extend_from_slice(&attr_type.to_ne_bytes());
    m.extend_from_slice(attr);
    m.resize(total, 0);
    m
}

/// Send one request, read one reply; the reply's attributes (after the genl header).
fn genl_call(sock: &OwnedFd, request: &[u8]) -> std::result::Result<Vec<(u16, Vec<u8>)>, String> {
    // SAFETY: buffer valid for its length.
    let sent = unsafe { libc::send(sock.as_raw_fd(), request.as_ptr().cast(), request.len(), 0) };
    if sent < 0 {
        return Err(format!("netlink send: {}", std::io::Error::last_os_error()));
    }
    let mut buf = vec![0u8; 8192];
    // SAFETY: buffer valid for its length; SO_RCVTIMEO bounds the wait.
    let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(format!("netlink recv: {}", std::io::Error::last_os_error()));
    }
    let n = n as usize;
    if n < 16 {
        return Err("short netlink reply".into());
    }
    let len = (u32::from_ne_bytes(buf[0..4].try_into().unwrap()) as usize).min(n);
    let kind = u16::from_ne_bytes(buf[4..6].try_into().unwrap());
    if kind == NLMSG_ERROR {
        let errno = if len >= 20 { -i32::from_ne_bytes(buf[16..20].try_into().unwrap()) } else { 0 };
        return Err(std::io::Error::from_raw_os_error(errno).to_string());
    }
    let mut attrs = Vec::new();
    let mut off = 20;
    while off + 4 <= len {
        let alen = u16::from_ne_bytes(buf[off..off + 2].try_into().unwrap()) as usize;
        let atype = u16::from_ne_bytes(buf[off + 2..off + 4].try_into().unwrap()) & 0x3fff;
        if alen < 4 || off + alen > len {
            break;
        }
        attrs.push((atype, buf[off + 4..off + alen].to_vec()));
        off += align4(alen);
    }
    Ok(attrs)
}

fn xdp_features(ifindex: u32) -> std::result::Result<(u64, Option<u32>), String> {
    let sock = afxdp_core::netdev::netlink_socket(NETLINK_GENERIC)
        .map_err(|e| format!("socket(AF_NETLINK): {e}"))?;
    let family_attrs = genl_call(&sock, &genl_request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, CTRL_ATTR_FAMILY_NAME, b"netdev\0"))
        .map_err(|e| format!("the kernel has no netdev netlink family (needs Linux >= 6.3): {e}"))?;
    let family = family_attrs
        .iter()
        .find(|(t, v)| *t == CTRL_ATTR_FAMILY_ID && v.len() >= 2)
        .map(|(_, v)| u16::from_ne_bytes([v[0], v[1]]))
        .ok_or("no family id in the netlink reply")?;
    let attrs = genl_call(&sock, &genl_request(family, NETDEV_CMD_DEV_GET, 2, NETDEV_A_DEV_IFINDEX, &ifindex.to_ne_bytes()))?;
    let features = attrs
        .iter()
        .find(|(t, v)| *t == NETDEV_A_DEV_XDP_FEATURES && v.len() >= 8)
        .map(|(_, v)| u64::from_ne_bytes(v[0..8].try_into().unwrap()))
        .ok_or("the kernel did not report XDP features for this interface")?;
    let zc = attrs
        .iter()
        .find(|(t, v)| *t == NETDEV_A_DEV_XDP_ZC_MAX_SEGS && v.len() >= 4)
        .map(|(_, v)| u32::from_ne_bytes(v[0..4].try_into().unwrap()));
    Ok((features, zc))
}
