//! Waiting on a socket instead of spinning: `SocketSet::wait` reports POLLIN
//! only when the rx ring has packets and POLLOUT while the tx ring has room;
//! `rx_pending`/`tx_room`/`free_frames` read the rings without consuming.
//! Needs root; every wait is bounded.

mod common;

use afxdp_core::bpf::{XdpMode, XdpProgram, XskMap};
use afxdp_core::netdev::Netdev;
use afxdp_core::netns::NetnsGuard;
use afxdp_core::packet::{test_frame, PacketSocket};
use afxdp_core::socket_set::{SocketSet, SocketSetConfig};
use afxdp_core::umem::UmemConfig;
use common::{is_root, Lab};
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

fn open(lab: &Lab) -> (SocketSet, XdpProgram, [u8; 6]) {
    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    let dev = Netdev::lookup(&lab.port_if).unwrap();
    let cfg = SocketSetConfig {
        ifname: dev.name.clone(),
        ifindex: dev.ifindex,
        umem: UmemConfig { frame_size: 2048, frame_count: 1024, fill_size: 512, comp_size: 512, ..Default::default() },
        rx_size: 512,
        tx_size: 512,
        ..Default::default()
    };
    let (prog, map): (XdpProgram, XskMap) = XdpProgram::attach_redirect(cfg.ifindex, XdpMode::Auto).unwrap();
    let port = SocketSet::open(&cfg, &mut |q, fd| {
        // SAFETY: fd belongs to the port being opened and outlives this call.
        map.insert(q, unsafe { BorrowedFd::borrow_raw(fd) })
    })
    .unwrap();
    (port, prog, dev.mac)
}

#[test]
fn wait_sleeps_until_packets_arrive_and_reports_tx_room() {
    assert!(is_root(), "AF_XDP lab tests need root");
    let lab = Lab::new(1);
    let (port, _prog, pmac) = open(&lab);
    let peer = {
        let _ns = NetnsGuard::enter(lab.peer_ns_path()).unwrap();
        PacketSocket::open(&lab.peer_if).unwrap()
    };
    let qmac = peer.mac().unwrap();

    // Idle: a bounded wait times out, having slept (not spun) for it.
    let started = Instant::now();
    assert_eq!(port.wait(0, libc::POLLIN, 100).unwrap(), 0);
    assert!(started.elapsed() >= Duration::from_millis(90), "{:?}", started.elapsed());
    assert_eq!(port.rx_pending(0).unwrap(), 0);
    // An empty tx ring is writable at once, with all its slots free.
    assert_eq!(port.wait(0, libc::POLLOUT, 0).unwrap(), libc::POLLOUT);
    assert_eq!(port.tx_room(0).unwrap(), 512);

    let frames: Vec<Vec<u8>> = (0..10).map(|s| test_frame(pmac, qmac, s, 60)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    assert_eq!(peer.send_batch(&refs).unwrap(), 10);
    let ev = port.wait(0, libc::POLLIN, 2000).unwrap();
    assert_eq!(ev & libc::POLLIN, libc::POLLIN);
    // All ten are there (veth delivers synchronously); peeking consumed nothing.
    let deadline = Instant::now() + Duration::from_secs(2);
    while port.rx_pending(0).unwrap() < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(port.rx_pending(0).unwrap(), 10);
    let mut addrs = [0u32; 64];
    let mut lens = [0u32; 64];
    let mut opts = [0u32; 64];
    assert_eq!(port.rx_burst(0, &mut addrs, &mut lens, &mut opts).unwrap(), 10);
    assert_eq!(port.rx_pending(0).unwrap(), 0);
    assert_eq!(port.wait(0, libc::POLLIN, 0).unwrap(), 0);
    port.release(0, &addrs[..10]).unwrap();
    let free = port.free_frames(0).unwrap();
    assert_eq!(free, port.frames(0).free);
    assert!(port.wait(5, libc::POLLIN, 0).is_err(), "queue index out of range");
}

#[test]
fn a_socket_whose_interface_is_gone_polls_nothing_but_reports_enetdown() {
    assert!(is_root(), "AF_XDP lab tests need root");
    let lab = Lab::new(1);
    let (port, _prog, _mac) = open(&lab);
    assert_eq!(port.socket_error(0).unwrap(), None);
    let out = std::process::Command::new("ip").args(["-n", &lab.port_ns, "link", "del", &lab.port_if]).output().unwrap();
    assert!(out.status.success());
    // The kernel unbinds the socket: poll() reports no event (not even
    // POLLERR), so an event loop would wait forever ...
    assert_eq!(port.wait(0, libc::POLLIN | libc::POLLOUT, 50).unwrap(), 0);
    // ... but SO_ERROR says why, once.
    assert_eq!(port.socket_error(0).unwrap(), Some(libc::ENETDOWN));
    assert_eq!(port.socket_error(0).unwrap(), None);
}
