//! Probes for `afxdp doctor`: can this process create an AF_XDP socket,
//! and what does the kernel say about an interface (driver, queues, XDP
//! features). Nothing here changes any state; every fd is closed again.

use afxdp_core::netdev::{self, Netdev, QueueSource};
use afxdp_core::{netns, sys};
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
        Ok(match sys::socket(libc::AF_XDP, libc::SOCK_RAW, 0) {
            // Dropping the fd closes it at once.
            Ok(_fd) => NativeAfXdpProbe { ok: true, errno: 0, message: String::new() },
            Err(errno) => NativeAfXdpProbe { ok: false, errno, message: std::io::Error::from_raw_os_error(errno).to_string() },
        })
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
    /// NETDEV_A_DEV_XDP_RX_METADATA_FEATURES as names (timestamp, hash,
    /// vlan-tag); null when the kernel cannot say.
    pub rx_metadata_features: Option<Vec<String>>,
    /// NETDEV_A_DEV_XSK_FEATURES as names (tx-timestamp, tx-checksum,
    /// tx-launch-time-fifo); null when the kernel cannot say.
    pub xsk_features: Option<Vec<String>>,
    /// Why `xdp_features` is null.
    pub xdp_features_error: Option<String>,
}

/// Look up `ifname` (in `netns` when given); throws ERR_AFXDP_NO_SUCH_INTERFACE.
#[napi]
pub fn probe_interface(ifname: String, netns: Option<String>) -> Result<NativeInterfaceProbe> {
    netns::within(netns.as_deref(), || {
        let dev = Netdev::lookup(&ifname)?;
        let (features, zc, feat_err, rx_meta, xsk) = match netdev::xdp_features(dev.ifindex) {
            Ok(f) => {
                (Some(f.names()), f.zc_max_segs, None, f.rx_metadata.map(|_| f.rx_metadata_names()), f.xsk.map(|_| f.xsk_names()))
            }
            Err(e) => (None, None, Some(e), None, None),
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
            rx_metadata_features: rx_meta,
            xsk_features: xsk,
        })
    })
    .map_err(to_js)
}
