//! One UMEM shared by two ports on two interfaces (XDP_SHARED_UMEM across
//! devices): packets received on one port leave through the other by the
//! same frame addresses, the ledger stays exact, and either port can close
//! first. Privileged (root); never skips. Every loop is bounded.

mod common;

use afxdp_core::bpf::{XdpMode, XdpProgram, XskMap};
use afxdp_core::netns::NetnsGuard;
use afxdp_core::packet::{test_frame, test_frame_seq, PacketSocket};
use afxdp_core::socket_set::{FrameCounts, SocketSet, SocketSetConfig, UmemJoin};
use afxdp_core::umem::UmemConfig;
use afxdp_core::{Code, Result};
use common::{is_root, Lab};
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

fn lab() -> Lab {
    assert!(is_root(), "AF_XDP lab tests need root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF, CAP_SYS_ADMIN)");
    Lab::new(1)
}

fn config(lab: &Lab) -> SocketSetConfig {
    lab.small_port_config(2048)
}

fn mac_of(lab: &Lab) -> [u8; 6] {
    lab.port_netdev().mac
}

/// Attach the redirect program and open a port (on `join`'s UMEM if given).
fn open(lab: &Lab, cfg: &SocketSetConfig, join: Option<UmemJoin<'_>>) -> Result<(SocketSet, XdpProgram)> {
    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    let (prog, map): (XdpProgram, XskMap) = XdpProgram::attach_redirect(cfg.ifindex, XdpMode::Auto)?;
    let port = SocketSet::open_joining(cfg, join, &mut |q, fd| {
        // SAFETY: fd belongs to the port being opened and outlives this call.
        map.insert(q, unsafe { BorrowedFd::borrow_raw(fd) })
    })?;
    Ok((port, prog))
}

fn peer(lab: &Lab) -> PacketSocket {
    let _ns = NetnsGuard::enter(lab.peer_ns_path()).unwrap();
    PacketSocket::open(&lab.peer_if).unwrap()
}

fn is_seq_in(lo: u32, hi: u32) -> impl Fn(&[u8]) -> bool {
    move |f| test_frame_seq(f).is_some_and(|s| s >= lo && s < hi)
}

/// Reap on `port` until its view of UMEM 0 equals `want` (bounded).
fn settle(port: &mut SocketSet, want: &FrameCounts) -> FrameCounts {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        port.reap(0).unwrap();
        let now = port.frames(0);
        assert_eq!(now.sum(), now.total, "{now:?}");
        if now == *want || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Send `frames` from `from`, receive them on `rx` and transmit each
/// received frame unchanged but for its destination MAC on `tx` (None: back
/// out of `rx`), by address. Returns frames forwarded.
fn forward(
    from: &PacketSocket,
    frames: &[Vec<u8>],
    rx: &mut SocketSet,
    mut tx: Option<&mut SocketSet>,
    new_dst: [u8; 6],
) -> usize {
    let mut addrs = [0u32; 64];
    let mut lens = [0u32; 64];
    let mut opts = [0u32; 64];
    let (mut next, mut done) = (0usize, 0usize);
    let deadline = Instant::now() + Duration::from_secs(20);
    while done < frames.len() && Instant::now() < deadline {
        // Keep fewer in flight than either socket lends the kernel.
        if next < frames.len() && next - done < 128 {
            let end = (next + 32).min(frames.len());
            let refs: Vec<&[u8]> = frames[next..end].iter().map(|f| f.as_slice()).collect();
            next += from.send_batch(&refs).unwrap();
        }
        let n = rx.rx_burst(0, &mut addrs, &mut lens, &mut opts).unwrap();
        let tx: &mut SocketSet = match tx.as_deref_mut() {
            Some(other) => other,
            None => &mut *rx,
        };
        for &addr in &addrs[..n] {
            // The frame is written through the transmitting port: one memory.
            tx.packet_mut(0, addr, 6).unwrap().copy_from_slice(&new_dst);
        }
        let mut posted = 0;
        for _ in 0..10_000 {
            if posted == n {
                break;
            }
            posted += tx.tx_burst(0, &addrs[posted..n], &lens[posted..n], &opts[posted..n]).unwrap();
        }
        assert_eq!(posted, n, "tx ring never drained");
        done += n;
    }
    done
}

#[test]
fn two_interfaces_share_one_umem_and_forward_without_copying() {
    let (la, lb) = (lab(), lab());
    let (cfg_a, cfg_b) = (config(&la), config(&lb));
    let (mut a, prog_a) = open(&la, &cfg_a, None).unwrap();
    let (mut b, prog_b) = open(&lb, &cfg_b, Some(a.umem_join(0))).unwrap();
    assert!(b.joined() && !a.joined());
    assert_eq!(a.umem_area(0), b.umem_area(0), "one mapping");
    assert_eq!(b.umem_count(), 1);
    assert_eq!(a.umem_shared_with(0), vec![lb.port_if.clone()]);
    assert_eq!(b.umem_shared_with(0), vec![la.port_if.clone()]);
    assert_eq!(a.umem(0).sockets(), 2);
    // Each socket lends at most its share: half the UMEM split by two.
    let initial = a.frames(0);
    assert_eq!(initial.total, 2048);
    assert_eq!(initial.sum(), initial.total);
    assert_eq!(initial.free, 2048 - 256 - 256, "{initial:?}");
    let initial_b = b.frames(0);
    assert_eq!((initial_b.free, initial_b.total), (initial.free, initial.total));

    let (peer_a, peer_b) = (peer(&la), peer(&lb));
    let (mac_a, mac_pa, mac_pb) = (mac_of(&la), peer_a.mac().unwrap(), peer_b.mac().unwrap());
    const N: u32 = 1000;
    let frames: Vec<Vec<u8>> = (0..N).map(|s| test_frame(mac_a, mac_pa, s, 60 + (s as usize % 100))).collect();
    assert_eq!(forward(&peer_a, &frames, &mut a, Some(&mut b), mac_pb), N as usize);
    assert_eq!(peer_b.recv_count_matching(is_seq_in(0, N), N as usize, Duration::from_secs(10)), N as usize);
    assert_eq!((a.stats(0).unwrap().rx_packets, b.stats(0).unwrap().tx_packets), (N as u64, N as u64));
    assert_eq!(a.stats(0).unwrap().tx_packets, 0, "nothing left through A");
    // The ledger is one: exact from both sides once B's completions are in.
    assert_eq!(settle(&mut b, &initial_b), initial_b);
    assert_eq!(settle(&mut a, &initial), initial);
    assert_eq!(b.stats(0).unwrap().tx_completed, N as u64);

    // A closes first (its program too): B keeps receiving and sending, and
    // what A's socket had lent comes back to the pool.
    drop(a);
    drop(prog_a);
    let alone = b.frames(0);
    assert_eq!(alone.sum(), alone.total);
    assert_eq!(alone.free, 2048 - 256, "A's lent frames came back: {alone:?}");
    assert!(b.umem_shared_with(0).is_empty());
    let mac_b = mac_of(&lb);
    let back: Vec<Vec<u8>> = (N..N + 300).map(|s| test_frame(mac_b, mac_pb, s, 64)).collect();
    peer_b.drain();
    // B receives from its peer and sends the frames back to it.
    let forwarded = forward(&peer_b, &back, &mut b, None, mac_pb);
    assert_eq!(forwarded, 300);
    // The peer also sees its own 300 frames leave; count those addressed back to it.
    let seen = peer_b.recv_count_matching(|f| f[..6] == mac_pb && is_seq_in(N, N + 300)(f), 300, Duration::from_secs(10));
    assert_eq!(seen, 300);
    let after = settle(&mut b, &alone);
    assert_eq!(after, alone);
    drop(b);
    drop(prog_b);
}

#[test]
fn joining_needs_the_same_frame_settings() {
    let (la, lb) = (lab(), lab());
    let cfg_a = config(&la);
    let (a, _prog_a) = open(&la, &cfg_a, None).unwrap();
    for (name, umem) in [
        ("frame_count", UmemConfig { frame_count: 4096, ..cfg_a.umem.clone() }),
        ("frame_size", UmemConfig { frame_size: 4096, ..cfg_a.umem.clone() }),
        ("headroom", UmemConfig { headroom: 128, ..cfg_a.umem.clone() }),
    ] {
        let cfg_b = SocketSetConfig { umem, ..config(&lb) };
        let e = open(&lb, &cfg_b, Some(a.umem_join(0))).err().expect("a mismatch must be refused");
        assert_eq!(e.code, Code::InvalidArgument, "{e}");
        assert!(e.message.contains(name) && e.message.contains(&la.port_if), "{}", e.message);
    }
    // Fill and completion ring sizes are each socket's own.
    let cfg_b = SocketSetConfig { umem: UmemConfig { fill_size: 256, comp_size: 1024, ..cfg_a.umem.clone() }, ..config(&lb) };
    let (b, _prog_b) = open(&lb, &cfg_b, Some(a.umem_join(0))).unwrap();
    assert_eq!(b.frames(0).sum(), 2048);
}

#[test]
fn dropping_both_ports_frees_everything() {
    let (la, lb) = (lab(), lab());
    let (a, pa) = open(&la, &config(&la), None).unwrap();
    let (b, pb) = open(&lb, &config(&lb), Some(a.umem_join(0))).unwrap();
    let umem = a.umem(0).clone();
    // Each port, each of its sockets and each queue's lock slot (`lease`)
    // hold the UMEM, plus this test.
    assert_eq!(std::sync::Arc::strong_count(&umem), 7);
    drop((b, pb));
    assert_eq!(umem.sockets(), 1);
    assert_eq!(umem.owner_counts().fill, 256, "only A's frames stay lent");
    drop((a, pa));
    assert_eq!(std::sync::Arc::strong_count(&umem), 1, "the last holder unmaps the memory");
    assert_eq!(umem.sockets(), 0);
    assert_eq!(umem.owner_counts().free, 2048);
}
