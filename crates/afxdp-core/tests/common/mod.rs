//! A veth lab for privileged integration tests: two fresh network
//! namespaces joined by a veth pair, removed again on drop. Needs root.
#![allow(dead_code)]

use afxdp_core::netdev::Netdev;
use afxdp_core::netns::NetnsGuard;
use afxdp_core::socket_set::SocketSetConfig;
use afxdp_core::umem::UmemConfig;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct Lab {
    /// Namespace holding `port_if` (the side afxdp binds to).
    pub port_ns: String,
    /// Namespace holding `peer_if` (the traffic source/sink).
    pub peer_ns: String,
    pub port_if: String,
    pub peer_if: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip(8)");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

fn sysctl_in(ns: &str, key: &str, value: &str) {
    ip(&["netns", "exec", ns, "sysctl", "-qw", &format!("{key}={value}")]);
}

static SEQ: AtomicU32 = AtomicU32::new(0);

pub fn is_root() -> bool {
    // SAFETY: getuid-family calls cannot fail and touch no memory.
    unsafe { libc::geteuid() == 0 }
}

impl Lab {
    /// `queues` sets numrxqueues/numtxqueues on both veth ends.
    pub fn new(queues: u32) -> Lab {
        let id = format!("{}{}", std::process::id() % 100000, SEQ.fetch_add(1, Ordering::Relaxed));
        let lab = Lab {
            port_ns: format!("afxc-p{id}"),
            peer_ns: format!("afxc-q{id}"),
            port_if: format!("afxp{id}"),
            peer_if: format!("afxq{id}"),
        };
        ip(&["netns", "add", &lab.port_ns]);
        ip(&["netns", "add", &lab.peer_ns]);
        let q = queues.to_string();
        ip(&[
            "link",
            "add",
            &lab.port_if,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "netns",
            &lab.port_ns,
            "type",
            "veth",
            "peer",
            "name",
            &lab.peer_if,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "netns",
            &lab.peer_ns,
        ]);
        for (ns, dev) in [(&lab.port_ns, &lab.port_if), (&lab.peer_ns, &lab.peer_if)] {
            // No IPv6 autoconf chatter: tests count packets exactly.
            sysctl_in(ns, &format!("net.ipv6.conf.{dev}.disable_ipv6"), "1");
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        lab
    }

    pub fn port_ns_path(&self) -> String {
        format!("/run/netns/{}", self.port_ns)
    }

    pub fn peer_ns_path(&self) -> String {
        format!("/run/netns/{}", self.peer_ns)
    }

    /// `port_if` as seen inside its namespace.
    pub fn port_netdev(&self) -> Netdev {
        let _ns = NetnsGuard::enter(self.port_ns_path()).unwrap();
        Netdev::lookup(&self.port_if).unwrap()
    }

    /// A small port config for `port_if`: 2 KiB frames, rings of 512.
    pub fn small_port_config(&self, frame_count: u32) -> SocketSetConfig {
        let dev = self.port_netdev();
        SocketSetConfig {
            ifname: dev.name,
            ifindex: dev.ifindex,
            umem: UmemConfig { frame_size: 2048, frame_count, fill_size: 512, comp_size: 512, ..Default::default() },
            rx_size: 512,
            tx_size: 512,
            ..Default::default()
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting the namespaces deletes the veth pair with them.
        let _ = Command::new("ip").args(["netns", "del", &self.port_ns]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.peer_ns]).output();
    }
}

/// Run `f` in a forked child and return the text it reports through a
/// pipe. The child drops every fd inherited from the (multi-threaded) test
/// process but the pipe (a copy of another test's listener held open there
/// would keep that socket connectable), never returns into the harness and
/// is killed if it overruns 20 s.
pub fn run_in_child(f: impl FnOnce() -> String) -> String {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    use std::time::{Duration, Instant};
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the child runs only `f` (malloc is fork-safe in glibc) and
    // leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: closing fd ranges in our own single-threaded child.
        unsafe {
            libc::syscall(libc::SYS_close_range, 3u32, (fds[1] - 1) as u32, 0u32);
            libc::syscall(libc::SYS_close_range, (fds[1] + 1) as u32, u32::MAX, 0u32);
        }
        let report = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| "child panicked".to_string());
        // SAFETY: writing a buffer to our pipe end, then leaving at once.
        unsafe {
            libc::write(fds[1], report.as_ptr().cast(), report.len());
            libc::_exit(0);
        }
    }
    // SAFETY: closing our copy of the write end; taking ownership of the read end.
    unsafe { libc::close(fds[1]) };
    // SAFETY: a fresh fd returned just above, owned by nobody else.
    let mut reader = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let mut p = libc::pollfd { fd: fds[0], events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, 100) } <= 0 {
            continue;
        }
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let mut status = 0;
    // SAFETY: our own child; kill it if it overran the deadline.
    unsafe {
        if libc::waitpid(pid, &mut status, libc::WNOHANG) == 0 {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, &mut status, 0);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Swap the destination and source MAC addresses of an Ethernet frame in place.
pub fn swap_macs(p: &mut [u8]) {
    let mut dst = [0u8; 6];
    dst.copy_from_slice(&p[0..6]);
    p.copy_within(6..12, 0);
    p[6..12].copy_from_slice(&dst);
}
