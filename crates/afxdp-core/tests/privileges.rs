//! Errors users hit without enough privileges or locked memory. Each case
//! runs in a forked child that drops capabilities / lowers RLIMIT_MEMLOCK,
//! so the test process itself keeps root. Needs root; fails without it.

mod common;

use afxdp_core::socket::XskSocket;
use afxdp_core::umem::{HugepagePolicy, Umem, UmemConfig};
use afxdp_core::Code;

// linux/capability.h (libc does not export these).
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_IPC_LOCK: u32 = 14;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Remove `caps` from this thread's effective, permitted and inheritable sets.
fn drop_caps(caps: &[u32]) -> Result<(), String> {
    let mut hdr = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and two data structs as capget(2) requires for v3.
    if unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) } != 0 {
        return Err(format!("capget: {}", std::io::Error::last_os_error()));
    }
    for &c in caps {
        let (word, bit) = ((c / 32) as usize, 1u32 << (c % 32));
        data[word].effective &= !bit;
        data[word].permitted &= !bit;
        data[word].inheritable &= !bit;
    }
    // SAFETY: as above.
    if unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) } != 0 {
        return Err(format!("capset: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Run `f` in a forked child and return the line it reports.
fn in_child(f: fn() -> String) -> String {
    assert!(common::is_root(), "privilege tests need root (they drop capabilities in a child)");
    common::run_in_child(f)
}

#[test]
fn umem_over_rlimit_memlock_is_a_memlock_error_naming_the_limit() {
    let report = in_child(|| {
        if let Err(e) = drop_caps(&[CAP_IPC_LOCK]) {
            return e;
        }
        let lim = libc::rlimit { rlim_cur: 1 << 20, rlim_max: 1 << 20 };
        // SAFETY: plain syscall.
        if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) } != 0 {
            return format!("setrlimit: {}", std::io::Error::last_os_error());
        }
        // 16 MiB UMEM against a 1 MiB limit.
        let cfg = UmemConfig { frame_size: 4096, frame_count: 4096, hugepages: HugepagePolicy::Never, ..Default::default() };
        let result = Umem::new(&cfg).and_then(|umem| {
            let sock = XskSocket::new()?;
            sock.register_umem(&umem)
        });
        match result {
            Ok(()) => "registered despite the limit".into(),
            Err(e) => format!("{:?}|{}", e.code, e.message),
        }
    });
    let (code, message) = report.split_once('|').unwrap_or(("", &report));
    assert_eq!(code, format!("{:?}", Code::Memlock), "child reported: {report}");
    assert!(message.contains("1024 KiB"), "must name the current limit: {message}");
    assert!(message.contains("16384 KiB"), "must name the UMEM size: {message}");
    assert!(message.contains("ulimit -l") && message.contains("CAP_IPC_LOCK"), "must say the fix: {message}");
}

#[test]
fn socket_without_cap_net_raw_is_a_permission_error() {
    let report = in_child(|| {
        if let Err(e) = drop_caps(&[CAP_NET_RAW]) {
            return e;
        }
        match XskSocket::new() {
            Ok(_) => "socket created without CAP_NET_RAW".into(),
            Err(e) => format!("{:?}|{}", e.code, e.message),
        }
    });
    let (code, message) = report.split_once('|').unwrap_or(("", &report));
    assert_eq!(code, format!("{:?}", Code::Permission), "child reported: {report}");
    assert!(message.contains("CAP_NET_RAW"), "{message}");
}

#[test]
fn busy_poll_without_cap_net_admin_is_a_permission_error() {
    let report = in_child(|| {
        if let Err(e) = drop_caps(&[CAP_NET_ADMIN]) {
            return e;
        }
        let sock = match XskSocket::new() {
            Ok(s) => s,
            Err(e) => return format!("socket: {e}"),
        };
        match sock.set_busy_poll(20, 64) {
            Ok(()) => "busy poll enabled without CAP_NET_ADMIN".into(),
            Err(e) => format!("{:?}|{}", e.code, e.message),
        }
    });
    let (code, message) = report.split_once('|').unwrap_or(("", &report));
    assert_eq!(code, format!("{:?}", Code::Permission), "child reported: {report}");
    assert!(message.contains("CAP_NET_ADMIN"), "{message}");
}
