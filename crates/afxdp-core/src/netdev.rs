//! What an interface is, as seen from the calling thread's network namespace.
//!
//! Everything here goes through ioctls on a socket created on the calling
//! thread, so it answers for the namespace that thread is in (a `NetnsGuard`
//! works). /sys/class/net is deliberately not used: it shows the namespace
//! of whoever mounted /sys, which is wrong after `setns`.
//!
//! Queue counts come from ETHTOOL_GCHANNELS; drivers without it fall back to
//! the allocated queue counts from rtnetlink (IFLA_NUM_RX/TX_QUEUES), again
//! on a socket created in the current namespace.

use crate::sys::{self, netlink};
use crate::{Code, Error, Result};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

const IFNAMSIZ: usize = 16;

const SIOCGIFNAME: libc::c_ulong = 0x8910;
const SIOCGIFFLAGS: libc::c_ulong = 0x8913;
const SIOCGIFMTU: libc::c_ulong = 0x8921;
const SIOCGIFHWADDR: libc::c_ulong = 0x8927;
const SIOCGIFINDEX: libc::c_ulong = 0x8933;
const SIOCETHTOOL: libc::c_ulong = 0x8946;

const ETHTOOL_GDRVINFO: u32 = 0x03;
const ETHTOOL_GLINK: u32 = 0x0a;
const ETHTOOL_GCHANNELS: u32 = 0x3c;

const IFF_UP: i16 = 0x1;
const IFF_RUNNING: i16 = 0x40;

#[repr(C)]
#[derive(Clone, Copy)]
union IfrU {
    ifindex: libc::c_int,
    mtu: libc::c_int,
    flags: libc::c_short,
    hwaddr: libc::sockaddr,
    data: *mut libc::c_void,
    _size: [u8; 24],
}

/// `struct ifreq`.
#[repr(C)]
#[derive(Clone, Copy)]
struct IfReq {
    name: [u8; IFNAMSIZ],
    u: IfrU,
}

impl IfReq {
    fn new(name: &str) -> IfReq {
        let mut r = IfReq { name: [0; IFNAMSIZ], u: IfrU { _size: [0; 24] } };
        r.name[..name.len()].copy_from_slice(name.as_bytes());
        r
    }
}

/// `struct ethtool_channels`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

/// `struct ethtool_drvinfo`.
#[repr(C)]
#[derive(Clone, Copy)]
struct EthtoolDrvinfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

/// `struct ethtool_value`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// Channel (queue) counts reported by ETHTOOL_GCHANNELS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Channels {
    pub rx: u32,
    pub tx: u32,
    pub other: u32,
    pub combined: u32,
    pub max_rx: u32,
    pub max_tx: u32,
    pub max_other: u32,
    pub max_combined: u32,
}

/// Where the queue counts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueSource {
    /// ETHTOOL_GCHANNELS.
    Ethtool,
    /// rtnetlink IFLA_NUM_RX_QUEUES / IFLA_NUM_TX_QUEUES (allocated queues).
    Netlink,
    /// Neither answered: assume one queue.
    Assumed,
}

/// A network interface in the calling thread's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netdev {
    pub name: String,
    pub ifindex: u32,
    /// Hardware address; all zeros for devices without one (loopback, tun).
    pub mac: [u8; 6],
    /// ARPHRD_* type of the hardware address (1 = Ethernet).
    pub hw_type: u16,
    pub mtu: u32,
    /// IFF_UP: administratively up.
    pub up: bool,
    /// IFF_RUNNING: up and with carrier (operationally up).
    pub running: bool,
    /// Link detected (ETHTOOL_GLINK), or `running` when the driver lacks it.
    pub carrier: bool,
    /// ETHTOOL_GCHANNELS, when the driver supports it.
    pub channels: Option<Channels>,
    /// RX/TX queues: from `channels` (rx + combined style counts), else from
    /// rtnetlink, else 1.
    pub rx_queues: u32,
    pub tx_queues: u32,
    /// Upper bound the queue counts can be raised to (`ethtool -L`).
    pub max_queues: u32,
    pub queue_source: QueueSource,
    /// Driver name (ETHTOOL_GDRVINFO), e.g. "veth", "ice", "mlx5_core".
    pub driver: Option<String>,
}

fn ioctl_socket() -> Result<OwnedFd> {
    // Any socket works for these ioctls (the kernel falls through to the
    // device ioctls); its namespace is the creating thread's. AF_UNIX needs
    // no protocol stack, so it works even where IPv4 is absent.
    sys::socket(libc::AF_UNIX, libc::SOCK_DGRAM, 0).map_err(|e| Error::sys("socket(AF_UNIX, SOCK_DGRAM) for interface ioctls", e))
}

fn ioctl(sock: &OwnedFd, req: libc::c_ulong, ifr: &mut IfReq) -> std::result::Result<(), i32> {
    // SAFETY: ifr is a valid struct ifreq; for SIOCETHTOOL its data pointer
    // was set by the caller to a live ethtool struct of the right type.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), req as _, ifr as *mut IfReq) };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
    } else {
        Ok(())
    }
}

fn ethtool<T>(sock: &OwnedFd, name: &str, cmd: &mut T) -> std::result::Result<(), i32> {
    let mut ifr = IfReq::new(name);
    ifr.u.data = cmd as *mut T as *mut libc::c_void;
    ioctl(sock, SIOCETHTOOL, &mut ifr)
}

fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() >= IFNAMSIZ || name.contains(['/', '\0']) || name.chars().any(char::is_whitespace) {
        return Err(Error::new(
            Code::InvalidArgument,
            format!(
                "'{name}' is not a valid interface name: it must be 1 to {} bytes without '/', NUL or whitespace",
                IFNAMSIZ - 1
            ),
        ));
    }
    Ok(())
}

fn no_such(name: &str) -> Error {
    Error::with_errno(
        Code::NoSuchInterface,
        libc::ENODEV,
        format!("no interface named {name} in this network namespace; list them with `ip link`"),
    )
}

impl Netdev {
    /// Look the interface up by name in the calling thread's namespace.
    pub fn lookup(name: &str) -> Result<Netdev> {
        validate_name(name)?;
        let sock = ioctl_socket()?;
        let mut ifr = IfReq::new(name);
        match ioctl(&sock, SIOCGIFINDEX, &mut ifr) {
            Ok(()) => {}
            Err(libc::ENODEV) | Err(libc::ENXIO) => return Err(no_such(name)),
            Err(e) => return Err(Error::sys(format!("ioctl(SIOCGIFINDEX, {name})"), e)),
        }
        // SAFETY: SIOCGIFINDEX filled the ifindex member.
        let ifindex = unsafe { ifr.u.ifindex } as u32;
        Netdev::describe(&sock, name, ifindex)
    }

    /// Look the interface up by index in the calling thread's namespace.
    pub fn by_index(ifindex: u32) -> Result<Netdev> {
        let sock = ioctl_socket()?;
        let mut ifr = IfReq::new("");
        ifr.u.ifindex = ifindex as libc::c_int;
        match ioctl(&sock, SIOCGIFNAME, &mut ifr) {
            Ok(()) => {}
            Err(libc::ENODEV) | Err(libc::ENXIO) => {
                return Err(Error::with_errno(
                    Code::NoSuchInterface,
                    libc::ENODEV,
                    format!("no interface with index {ifindex} in this network namespace; list them with `ip link`"),
                ))
            }
            Err(e) => return Err(Error::sys(format!("ioctl(SIOCGIFNAME, ifindex {ifindex})"), e)),
        }
        let end = ifr.name.iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ);
        let name = String::from_utf8_lossy(&ifr.name[..end]).into_owned();
        Netdev::describe(&sock, &name, ifindex)
    }

    fn describe(sock: &OwnedFd, name: &str, ifindex: u32) -> Result<Netdev> {
        // The interface can vanish between calls: report that as missing.
        let map = |what: &str, e: i32| {
            if e == libc::ENODEV || e == libc::ENXIO {
                no_such(name)
            } else {
                Error::sys(format!("ioctl({what}, {name})"), e)
            }
        };

        let mut ifr = IfReq::new(name);
        ioctl(sock, SIOCGIFMTU, &mut ifr).map_err(|e| map("SIOCGIFMTU", e))?;
        // SAFETY: filled by SIOCGIFMTU.
        let mtu = unsafe { ifr.u.mtu } as u32;

        let mut ifr = IfReq::new(name);
        ioctl(sock, SIOCGIFFLAGS, &mut ifr).map_err(|e| map("SIOCGIFFLAGS", e))?;
        // SAFETY: filled by SIOCGIFFLAGS (the short flags; IFF_LOWER_UP does not fit).
        let flags = unsafe { ifr.u.flags };

        let mut ifr = IfReq::new(name);
        ioctl(sock, SIOCGIFHWADDR, &mut ifr).map_err(|e| map("SIOCGIFHWADDR", e))?;
        // SAFETY: filled by SIOCGIFHWADDR.
        let hw = unsafe { ifr.u.hwaddr };
        let mut mac = [0u8; 6];
        for (m, b) in mac.iter_mut().zip(hw.sa_data.iter()) {
            *m = *b as u8;
        }

        let running = flags & IFF_RUNNING != 0;
        let mut link = EthtoolValue { cmd: ETHTOOL_GLINK, data: 0 };
        let carrier = match ethtool(sock, name, &mut link) {
            Ok(()) => link.data != 0,
            Err(_) => running,
        };

        let mut ch = EthtoolChannels { cmd: ETHTOOL_GCHANNELS, ..Default::default() };
        let channels = ethtool(sock, name, &mut ch).ok().map(|()| Channels {
            rx: ch.rx_count,
            tx: ch.tx_count,
            other: ch.other_count,
            combined: ch.combined_count,
            max_rx: ch.max_rx,
            max_tx: ch.max_tx,
            max_other: ch.max_other,
            max_combined: ch.max_combined,
        });

        let (rx_queues, tx_queues, max_queues, queue_source) = match channels {
            Some(c) if c.rx.max(c.combined) > 0 => (
                c.rx.max(c.combined),
                c.tx.max(c.combined),
                c.max_rx.max(c.max_tx).max(c.max_combined).max(c.rx.max(c.combined)),
                QueueSource::Ethtool,
            ),
            _ => match rtnl_queue_counts(ifindex) {
                Some((rx, tx)) if rx > 0 => (rx, tx.max(1), rx.max(tx), QueueSource::Netlink),
                _ => (1, 1, 1, QueueSource::Assumed),
            },
        };

        // SAFETY: all-zero is a valid EthtoolDrvinfo.
        let mut drv: EthtoolDrvinfo = unsafe { std::mem::zeroed() };
        drv.cmd = ETHTOOL_GDRVINFO;
        let driver = ethtool(sock, name, &mut drv).ok().and_then(|()| {
            let end = drv.driver.iter().position(|&b| b == 0).unwrap_or(drv.driver.len());
            (end > 0).then(|| String::from_utf8_lossy(&drv.driver[..end]).into_owned())
        });

        Ok(Netdev {
            name: name.to_string(),
            ifindex,
            mac,
            hw_type: hw.sa_family,
            mtu,
            up: flags & IFF_UP != 0,
            running,
            carrier,
            channels,
            rx_queues,
            tx_queues,
            max_queues,
            queue_source,
            driver,
        })
    }

    /// How many queues an XSK can bind to: max(rx, combined) channels, at
    /// least 1.
    pub fn queue_count(&self) -> u32 {
        self.rx_queues.max(1)
    }

    /// The MAC as `aa:bb:cc:dd:ee:ff`.
    pub fn mac_string(&self) -> String {
        self.mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
    }
}

// ---- rtnetlink fallback for queue counts ----

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const IFLA_NUM_TX_QUEUES: u16 = 31;
const IFLA_NUM_RX_QUEUES: u16 = 32;
/// `struct ifinfomsg`.
const IFINFOMSG_LEN: usize = 16;

/// (num_rx_queues, num_tx_queues) of `ifindex` via RTM_GETLINK, or None.
fn rtnl_queue_counts(ifindex: u32) -> Option<(u32, u32)> {
    let sock = netlink::socket(netlink::NETLINK_ROUTE).ok()?;
    // ifinfomsg: family AF_UNSPEC, type 0, index, flags 0, change 0.
    let mut ifinfo = [0u8; IFINFOMSG_LEN];
    ifinfo[4..8].copy_from_slice(&(ifindex as i32).to_ne_bytes());
    let reply = netlink::call(sock.as_fd(), &netlink::request(RTM_GETLINK, 1, &ifinfo, &[]), RTM_NEWLINK).ok()?;
    let u32_attr = |want: u16| {
        netlink::attributes(reply.get(IFINFOMSG_LEN..)?)
            .into_iter()
            .find(|(t, v)| *t == want && v.len() >= 4)
            .map(|(_, v)| u32::from_ne_bytes([v[0], v[1], v[2], v[3]]))
    };
    Some((u32_attr(IFLA_NUM_RX_QUEUES)?, u32_attr(IFLA_NUM_TX_QUEUES).unwrap_or(1)))
}

// ---- generic netlink: the "netdev" family's DEV_GET (Linux >= 6.3) ----

/// What the kernel says an interface's XDP can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdpFeatures {
    /// NETDEV_A_DEV_XDP_FEATURES bits (see [`XdpFeatures::names`]).
    pub bits: u64,
    /// NETDEV_A_DEV_XDP_ZC_MAX_SEGS, when reported.
    pub zc_max_segs: Option<u32>,
    /// NETDEV_A_DEV_XDP_RX_METADATA_FEATURES (Linux >= 6.3): the metadata
    /// kfuncs the driver implements ([`XdpFeatures::rx_metadata_names`]).
    /// None: the kernel did not say.
    pub rx_metadata: Option<u64>,
    /// NETDEV_A_DEV_XSK_FEATURES (Linux >= 6.8): the AF_XDP TX metadata the
    /// driver honours in zero-copy mode ([`XdpFeatures::xsk_names`]).
    pub xsk: Option<u64>,
}

/// NETDEV_XDP_RX_METADATA_* bits, lowest first (include/uapi/linux/netdev.h).
pub const RX_METADATA_NAMES: [&str; 3] = ["timestamp", "hash", "vlan-tag"];
/// NETDEV_XSK_FLAGS_* bits, lowest first.
pub const XSK_FEATURE_NAMES: [&str; 3] = ["tx-timestamp", "tx-checksum", "tx-launch-time-fifo"];

fn bit_names(bits: u64, names: &[&str]) -> Vec<String> {
    names.iter().enumerate().filter(|(i, _)| bits & (1u64 << i) != 0).map(|(_, n)| n.to_string()).collect()
}

/// The names of the NETDEV_XDP_ACT_* bits, lowest first.
pub const XDP_FEATURE_NAMES: [&str; 7] = ["basic", "redirect", "ndo-xmit", "xsk-zerocopy", "hw-offload", "rx-sg", "ndo-xmit-sg"];

impl XdpFeatures {
    /// The set bits as names (`XDP_FEATURE_NAMES`).
    pub fn names(&self) -> Vec<String> {
        bit_names(self.bits, &XDP_FEATURE_NAMES)
    }

    /// The RX metadata the driver can give (`RX_METADATA_NAMES`); empty when
    /// none or unknown.
    pub fn rx_metadata_names(&self) -> Vec<String> {
        bit_names(self.rx_metadata.unwrap_or(0), &RX_METADATA_NAMES)
    }

    /// The AF_XDP TX metadata features (`XSK_FEATURE_NAMES`).
    pub fn xsk_names(&self) -> Vec<String> {
        bit_names(self.xsk.unwrap_or(0), &XSK_FEATURE_NAMES)
    }
}

const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const NETDEV_CMD_DEV_GET: u8 = 1;
const NETDEV_A_DEV_IFINDEX: u16 = 1;
const NETDEV_A_DEV_XDP_FEATURES: u16 = 3;
const NETDEV_A_DEV_XDP_ZC_MAX_SEGS: u16 = 4;
const NETDEV_A_DEV_XDP_RX_METADATA_FEATURES: u16 = 5;
const NETDEV_A_DEV_XSK_FEATURES: u16 = 6;
/// `struct genlmsghdr`.
const GENL_HEADER_LEN: usize = 4;

/// One generic netlink request with one attribute; the reply's attributes.
fn genl_call(
    sock: &OwnedFd,
    family: u16,
    cmd: u8,
    seq: u32,
    attr: (u16, &[u8]),
) -> std::result::Result<Vec<(u16, Vec<u8>)>, String> {
    let request = netlink::request(family, seq, &[cmd, 1, 0, 0], &[attr]);
    let reply = netlink::call(sock.as_fd(), &request, family).map_err(|e| std::io::Error::from_raw_os_error(e).to_string())?;
    let attrs = reply.get(GENL_HEADER_LEN..).ok_or("short netlink reply")?;
    Ok(netlink::attributes(attrs).into_iter().map(|(t, v)| (t, v.to_vec())).collect())
}

/// The XDP features of `ifindex` in this thread's network namespace, from
/// the generic netlink "netdev" family. Err: why the kernel cannot say (a
/// sentence for `afxdp doctor`).
pub fn xdp_features(ifindex: u32) -> std::result::Result<XdpFeatures, String> {
    let sock = netlink::socket(netlink::NETLINK_GENERIC)
        .map_err(|e| format!("socket(AF_NETLINK): {}", std::io::Error::from_raw_os_error(e)))?;
    let family_attrs = genl_call(&sock, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, (CTRL_ATTR_FAMILY_NAME, b"netdev\0"))
        .map_err(|e| format!("the kernel has no netdev netlink family (needs Linux >= 6.3): {e}"))?;
    let family = family_attrs
        .iter()
        .find(|(t, v)| *t == CTRL_ATTR_FAMILY_ID && v.len() >= 2)
        .map(|(_, v)| u16::from_ne_bytes([v[0], v[1]]))
        .ok_or("no family id in the netlink reply")?;
    let attrs = genl_call(&sock, family, NETDEV_CMD_DEV_GET, 2, (NETDEV_A_DEV_IFINDEX, &ifindex.to_ne_bytes()))?;
    let bits = attrs
        .iter()
        .find(|(t, v)| *t == NETDEV_A_DEV_XDP_FEATURES && v.len() >= 8)
        .map(|(_, v)| u64::from_ne_bytes([v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]]))
        .ok_or("the kernel did not report XDP features for this interface")?;
    let zc_max_segs = attrs
        .iter()
        .find(|(t, v)| *t == NETDEV_A_DEV_XDP_ZC_MAX_SEGS && v.len() >= 4)
        .map(|(_, v)| u32::from_ne_bytes([v[0], v[1], v[2], v[3]]));
    let u64_attr = |want: u16| {
        attrs
            .iter()
            .find(|(t, v)| *t == want && v.len() >= 8)
            .map(|(_, v)| u64::from_ne_bytes([v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]]))
    };
    Ok(XdpFeatures {
        bits,
        zc_max_segs,
        rx_metadata: u64_attr(NETDEV_A_DEV_XDP_RX_METADATA_FEATURES),
        xsk: u64_attr(NETDEV_A_DEV_XSK_FEATURES),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_sizes_match_the_uapi() {
        assert_eq!(std::mem::size_of::<IfReq>(), 40);
        assert_eq!(std::mem::size_of::<EthtoolChannels>(), 36);
        assert_eq!(std::mem::size_of::<EthtoolDrvinfo>(), 196);
    }

    #[test]
    fn bad_names_are_rejected_before_any_syscall() {
        for bad in ["", "0123456789abcdef", "a/b", "a b"] {
            let e = Netdev::lookup(bad).unwrap_err();
            assert_eq!(e.code, Code::InvalidArgument, "{bad:?}: {}", e.message);
        }
    }

    #[test]
    fn loopback_is_found() {
        let lo = Netdev::lookup("lo").expect("lo exists in every namespace");
        assert_eq!(lo.ifindex, 1);
        assert_eq!(lo.mac, [0; 6]);
        assert!(lo.queue_count() >= 1);
        assert_eq!(Netdev::by_index(lo.ifindex).unwrap().name, "lo");
    }

    #[test]
    fn rtnetlink_counts_loopback_queues() {
        let (rx, tx) = rtnl_queue_counts(1).expect("RTM_GETLINK answers for lo");
        assert!(rx >= 1 && tx >= 1, "{rx}/{tx}");
        assert_eq!(rtnl_queue_counts(u32::MAX >> 1), None, "no such ifindex");
    }

    #[test]
    fn xdp_features_of_loopback_or_a_reason() {
        match xdp_features(1) {
            // lo does generic XDP only: no zero-copy, never hw-offload.
            Ok(f) => assert!(!f.names().iter().any(|n| n == "hw-offload"), "{f:?}"),
            Err(why) => assert!(why.contains("netdev") || why.contains("XDP features"), "{why}"),
        }
        let err = xdp_features(u32::MAX >> 1).unwrap_err();
        assert!(!err.is_empty());
        let all = XdpFeatures { bits: 0b1001, zc_max_segs: None, rx_metadata: Some(0b101), xsk: Some(0b110) };
        assert_eq!(all.names(), vec!["basic", "xsk-zerocopy"]);
        assert_eq!(all.rx_metadata_names(), vec!["timestamp", "vlan-tag"]);
        assert_eq!(all.xsk_names(), vec!["tx-checksum", "tx-launch-time-fifo"]);
    }
}
