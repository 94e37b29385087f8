//! A veth lab for privileged integration tests: two fresh network
//! namespaces joined by a veth pair, removed again on drop. Needs root.
#![allow(dead_code)]

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
            "link", "add", &lab.port_if, "numtxqueues", &q, "numrxqueues", &q, "netns", &lab.port_ns,
            "type", "veth", "peer", "name", &lab.peer_if, "numtxqueues", &q, "numrxqueues", &q,
            "netns", &lab.peer_ns,
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
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting the namespaces deletes the veth pair with them.
        let _ = Command::new("ip").args(["netns", "del", &self.port_ns]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.peer_ns]).output();
    }
}
