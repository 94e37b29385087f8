//! Turning the kernel's terse errnos from XDP_UMEM_REG and bind() into
//! errors that say what is wrong and how to fix it.

use super::BindMode;
use crate::{Code, Error};

fn kib(bytes: u64) -> u64 {
    bytes.div_ceil(1024)
}

/// The soft RLIMIT_MEMLOCK in bytes, None when unlimited.
pub(crate) fn memlock_limit() -> Option<u64> {
    crate::sys::soft_rlimit(libc::RLIMIT_MEMLOCK)
}

/// RLIMIT_MEMLOCK refused a UMEM of `umem_bytes`, one of `umems` making
/// `port_bytes` in all: the limit must cover the port's total.
pub(crate) fn memlock_message(umem_bytes: u64, port_bytes: u64, umems: usize) -> String {
    let limit = match memlock_limit() {
        Some(l) => format!("{} KiB", kib(l)),
        None => "unlimited".to_string(),
    };
    let what = if umems > 1 {
        format!("this port's {umems} UMEMs of {} KiB each ({} KiB in all)", kib(umem_bytes), kib(port_bytes))
    } else {
        format!("a UMEM of {} KiB", kib(umem_bytes))
    };
    format!(
        "registering {what} exceeds the locked-memory limit RLIMIT_MEMLOCK \
         (currently {limit}; every UMEM of this user counts against it): raise it to at \
         least {} KiB plus what other UMEMs use, e.g. `ulimit -l unlimited` \
         (systemd/containerd: LimitMEMLOCK=infinity; docker: --ulimit memlock=-1), \
         or grant CAP_IPC_LOCK",
        kib(port_bytes)
    )
}

pub(super) fn umem_reg_error(errno: i32, umem_bytes: usize) -> Error {
    match errno {
        // xdp_umem_account_pages(): locked pages would exceed RLIMIT_MEMLOCK.
        libc::ENOBUFS => Error::with_errno(Code::Memlock, errno, memlock_message(umem_bytes as u64, umem_bytes as u64, 1)),
        libc::ENOMEM => Error::with_errno(
            Code::Memlock,
            errno,
            format!("the kernel could not pin a UMEM of {} KiB (out of memory): use a smaller UMEM", kib(umem_bytes as u64)),
        ),
        libc::EINVAL => Error::with_errno(
            Code::InvalidArgument,
            errno,
            format!(
                "XDP_UMEM_REG rejected the UMEM ({} bytes): the area must be page aligned, the frame size a \
                 power of two between 2048 and the page size, and headroom smaller than the frame",
                umem_bytes
            ),
        ),
        libc::EBUSY => Error::with_errno(Code::InvalidArgument, errno, "this socket already has a UMEM"),
        _ => Error::sys(format!("setsockopt(XDP_UMEM_REG, {umem_bytes} bytes)"), errno),
    }
}

/// Queues usable for an XSK with rx and tx rings on `ifname`, from
/// ETHTOOL_GCHANNELS; None when the driver does not report channels.
pub(crate) fn queue_count(ifname: &str) -> Option<u32> {
    let ch = crate::netdev::Netdev::lookup(ifname).ok()?.channels?;
    // An XSK with rx and tx rings needs the queue in both directions.
    let n = (ch.rx + ch.combined).min(ch.tx + ch.combined);
    (n > 0).then_some(n)
}

fn interface_exists(ifindex: u32) -> bool {
    crate::sys::ifindex_exists(ifindex)
}

pub(super) fn bind_error(errno: i32, ifname: &str, ifindex: u32, queue: u32, mode: BindMode) -> Error {
    let what = format!("bind(AF_XDP socket, {ifname} queue {queue})");
    if matches!(mode, BindMode::Owner { multi_buffer: true, .. })
        && matches!(errno, libc::EINVAL | libc::EOPNOTSUPP)
        && interface_exists(ifindex)
        && queue_count(ifname).is_none_or(|n| queue < n)
    {
        return Error::with_errno(
            Code::NotSupported,
            errno,
            format!(
                "{what} with XDP_USE_SG refused: multi-buffer AF_XDP (jumbo frames as chains of frames) needs Linux                  >= 6.6 and, in zero-copy mode, a driver that supports it (xdp-zc-max-segs > 1 in `afxdp doctor`);                  try force_copy=1, or multiBuffer 'off' with an MTU whose packets fit one frame"
            ),
        );
    }
    match errno {
        libc::EBUSY => Error::with_errno(
            Code::QueueBusy,
            errno,
            format!("another AF_XDP socket is bound to {ifname} queue {queue}; close it or choose another start_queue"),
        ),
        libc::ENODEV | libc::ENXIO | libc::EINVAL => {
            if !interface_exists(ifindex) {
                return Error::with_errno(
                    Code::NoSuchInterface,
                    errno,
                    format!("{what}: interface {ifname} (ifindex {ifindex}) does not exist in this network namespace"),
                );
            }
            if let Some(n) = queue_count(ifname) {
                if queue >= n {
                    return Error::with_errno(
                        Code::QueueOutOfRange,
                        errno,
                        format!(
                            "{ifname} has {n} queue(s) (0..{}); queue {queue} is out of range: lower \
                             start_queue/queue_count or add channels (ethtool -L {ifname} combined N)",
                            n - 1
                        ),
                    );
                }
            }
            let hint = match mode {
                BindMode::SharedWith(_) => {
                    "; sharing a UMEM with a socket on another queue needs own fill/completion rings (Linux >= 5.10)"
                }
                BindMode::Owner { .. } => "",
            };
            let mut e = Error::sys(&what, errno);
            e.message.push_str(hint);
            e
        }
        libc::EOPNOTSUPP => Error::with_errno(
            Code::NotSupported,
            errno,
            format!("{what}: the driver of {ifname} does not support this AF_XDP mode; try force_copy"),
        ),
        _ => Error::sys(what, errno),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memlock_error_names_limit_size_and_fixes() {
        let e = umem_reg_error(libc::ENOBUFS, 16 << 20);
        assert_eq!(e.code, Code::Memlock);
        assert!(e.message.contains("16384 KiB"), "{}", e.message);
        assert!(e.message.contains("RLIMIT_MEMLOCK") && e.message.contains("CAP_IPC_LOCK"));
        assert!(e.message.contains("LimitMEMLOCK=infinity"));
    }

    #[test]
    fn busy_names_interface_and_queue() {
        let e =
            bind_error(libc::EBUSY, "eth7", 99, 3, BindMode::Owner { need_wakeup: true, force_copy: false, multi_buffer: false });
        assert_eq!(e.code, Code::QueueBusy);
        assert!(e.message.contains("eth7 queue 3"), "{}", e.message);
    }

    #[test]
    fn missing_interface_is_reported_as_such() {
        let e = bind_error(libc::ENODEV, "nope0", 0x7fff_fff0, 0, BindMode::SharedWith(3));
        assert_eq!(e.code, Code::NoSuchInterface, "{}", e.message);
    }

    #[test]
    fn loopback_has_no_channel_report() {
        // lo implements no get_channels: the helper must say "unknown", not 0.
        assert_eq!(queue_count("lo"), None);
    }
}
