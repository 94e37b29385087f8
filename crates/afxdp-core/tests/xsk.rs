//! Privileged data-path tests on a veth lab: ports transmit to and receive
//! from an AF_PACKET peer in another namespace. They need root and fail
//! (never skip) without it. Every loop is bounded in time and count.

mod common;

use afxdp_core::bpf::{XdpMode, XdpProgram, XskMap};
use afxdp_core::netns::NetnsGuard;
use afxdp_core::packet::{test_frame, test_frame_seq, PacketSocket};
use afxdp_core::socket::{BindMode, RingSizes, XskSocket};
use afxdp_core::socket_set::{FrameCounts, SocketSet, SocketSetConfig};
use afxdp_core::umem::HugepagePolicy;
use afxdp_core::{Code, Result};
use common::{is_root, Lab};
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

fn lab(queues: u32) -> Lab {
    assert!(is_root(), "AF_XDP lab tests need root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF, CAP_SYS_ADMIN)");
    Lab::new(queues)
}

fn config(lab: &Lab) -> SocketSetConfig {
    lab.small_port_config(1024)
}

fn port_mac(lab: &Lab) -> [u8; 6] {
    lab.port_netdev().mac
}

/// Open a port without an XDP program (transmit only).
fn open_tx_port(lab: &Lab, cfg: &SocketSetConfig) -> Result<SocketSet> {
    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    SocketSet::open(cfg, &mut |_, _| Ok(()))
}

/// Attach the redirect program and open a port whose sockets are in its XSKMAP.
fn open_rx_port(lab: &Lab, cfg: &SocketSetConfig) -> (SocketSet, XdpProgram) {
    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    let (prog, map): (XdpProgram, XskMap) = XdpProgram::attach_redirect(cfg.ifindex, XdpMode::Auto).unwrap();
    let port = SocketSet::open(cfg, &mut |q, fd| {
        // SAFETY: fd belongs to the port being opened and outlives this call.
        map.insert(q, unsafe { BorrowedFd::borrow_raw(fd) })
    })
    .unwrap();
    (port, prog)
}

fn peer(lab: &Lab) -> PacketSocket {
    let _ns = NetnsGuard::enter(lab.peer_ns_path()).unwrap();
    PacketSocket::open(&lab.peer_if).unwrap()
}

fn check_sum(port: &SocketSet) {
    for u in 0..port.umem_count() {
        let f = port.frames(u);
        assert_eq!(f.sum(), f.total, "frame accounting does not add up: {f:?}");
    }
}

/// Reap completions until UMEM `u` is back to `want` (bounded by time).
fn settle(port: &mut SocketSet, u: usize, want: &FrameCounts) -> FrameCounts {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        for q in 0..port.queue_count() {
            if port.umem_of(q) == u {
                port.reap(q).unwrap();
            }
        }
        let now = port.frames(u);
        if now == *want || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Allocate `n` frames on queue `q`, write test frames (seq base..base+n),
/// and transmit them all. Returns the number posted (must be n).
fn send_from_port(port: &mut SocketSet, q: usize, dst: [u8; 6], src: [u8; 6], base: u32, n: u32, len: usize) -> u32 {
    let mut sent = 0u32;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut addrs = [0u32; 64];
    let mut lens = [0u32; 64];
    let opts = [0u32; 64];
    while sent < n && Instant::now() < deadline {
        let want = ((n - sent) as usize).min(64);
        let got = port.alloc(q, &mut addrs[..want]).unwrap();
        for i in 0..got {
            let frame = test_frame(dst, src, base + sent + i as u32, len);
            port.packet_mut(q, addrs[i], frame.len() as u32).unwrap().copy_from_slice(&frame);
            lens[i] = frame.len() as u32;
        }
        // Post everything allocated; a full tx ring posts a prefix.
        let mut posted = 0;
        let mut tries = 0;
        while posted < got && tries < 10_000 {
            posted += port.tx_burst(q, &addrs[posted..got], &lens[posted..got], &opts[posted..got]).unwrap();
            tries += 1;
        }
        assert_eq!(posted, got, "tx ring never drained");
        sent += got as u32;
    }
    sent
}

fn is_seq_in(lo: u32, hi: u32) -> impl Fn(&[u8]) -> bool {
    move |f| test_frame_seq(f).is_some_and(|s| s >= lo && s < hi)
}

#[test]
fn tx_reaches_the_peer_exactly_and_frames_come_back() {
    let lab = lab(1);
    let cfg = config(&lab);
    let mut port = open_tx_port(&lab, &cfg).unwrap();
    let peer = peer(&lab);
    let (pmac, qmac) = (port_mac(&lab), peer.mac().unwrap());
    assert_eq!(port.queue_count(), 1);
    assert_eq!(port.queue_id(0), 0);
    assert!(!port.zero_copy(0), "veth has no zero-copy AF_XDP");

    let initial = port.frames(0);
    check_sum(&port);
    assert_eq!(initial.total, 1024);
    // Half the fill ring (256) is lent to the kernel for receive.
    assert_eq!(initial.free, 768);
    assert_eq!(initial.fill_ring + initial.in_kernel, 256);

    const N: u32 = 3000; // more than the UMEM: frames must be recycled
    let sent = send_from_port(&mut port, 0, qmac, pmac, 0, N, 64);
    assert_eq!(sent, N);
    let got = peer.recv_count_matching(is_seq_in(0, N), N as usize, Duration::from_secs(10));
    assert_eq!(got, N as usize);
    // Exactly N: nothing extra arrives.
    assert_eq!(peer.recv_count_matching(|f| test_frame_seq(f).is_some(), 1, Duration::from_millis(200)), 0);

    let after = settle(&mut port, 0, &initial);
    assert_eq!(after, initial);
    let st = port.stats(0).unwrap();
    assert_eq!(st.tx_packets, N as u64);
    assert_eq!(st.tx_bytes, N as u64 * 64);
    assert_eq!(st.tx_completed, N as u64);
    assert_eq!(st.tx_invalid_descs, 0);
    assert_eq!(st.ring_anomalies, 0);
    assert_eq!(st.wakeup_errors, 0);
}

#[test]
fn frame_ownership_misuse_is_an_error() {
    let lab = lab(1);
    let cfg = config(&lab);
    let port = open_tx_port(&lab, &cfg).unwrap();
    let initial = port.frames(0);
    let mut a = [0u32; 4];
    assert_eq!(port.alloc(0, &mut a).unwrap(), 4);
    // Releasing twice, a kernel-owned frame, or an address outside the UMEM.
    port.release(0, &a[..1]).unwrap();
    assert_eq!(port.release(0, &a[..2]).unwrap_err().code, Code::FrameOwnership);
    let e = port.tx_burst(0, &[a[1], a[0]], &[60, 60], &[0, 0]).unwrap_err();
    assert_eq!(e.code, Code::FrameOwnership);
    assert!(e.message.contains(&format!("{:#x}", a[0])), "{}", e.message);
    assert_eq!(port.release(0, &[1 << 30]).unwrap_err().code, Code::FrameOwnership);
    // Length past the end of the frame: refused before anything moves.
    assert_eq!(port.tx_burst(0, &a[1..2], &[2048], &[0]).unwrap_err().code, Code::InvalidArgument);
    assert_eq!(port.tx_burst(0, &a[1..3], &[60], &[0]).unwrap_err().code, Code::InvalidArgument);
    assert_eq!(port.frames(0).app, 3, "failed calls must not move frames");
    check_sum(&port);
    port.release(0, &a[1..]).unwrap();
    assert_eq!(port.frames(0), initial);
    assert_eq!(port.check_queue(1).unwrap_err().code, Code::QueueOutOfRange);
}

#[test]
fn second_port_on_the_same_queue_is_queue_busy() {
    let lab = lab(1);
    let cfg = config(&lab);
    let _first = open_tx_port(&lab, &cfg).unwrap();
    let e = open_tx_port(&lab, &cfg).err().expect("second bind must fail");
    assert_eq!(e.code, Code::QueueBusy, "{e}");
    assert!(e.message.contains(&format!("{} queue 0", lab.port_if)), "{}", e.message);
    assert!(e.message.contains("start_queue"), "{}", e.message);
}

#[test]
fn queue_beyond_the_interface_is_out_of_range() {
    let lab = lab(1);
    let cfg = SocketSetConfig { start_queue: 3, ..config(&lab) };
    let e = open_tx_port(&lab, &cfg).err().expect("queue 3 of a 1-queue veth must fail");
    assert_eq!(e.code, Code::QueueOutOfRange, "{e}");
    assert!(e.message.contains("queue 3"), "{}", e.message);
}

#[test]
fn force_copy_binds_in_copy_mode_and_transmits() {
    let lab = lab(1);
    let cfg = SocketSetConfig { force_copy: true, ..config(&lab) };
    let mut port = open_tx_port(&lab, &cfg).unwrap();
    assert!(!port.zero_copy(0));
    let peer = peer(&lab);
    let (pmac, qmac) = (port_mac(&lab), peer.mac().unwrap());
    assert_eq!(send_from_port(&mut port, 0, qmac, pmac, 100, 200, 1514), 200);
    assert_eq!(peer.recv_count_matching(is_seq_in(100, 300), 200, Duration::from_secs(5)), 200);
}

#[test]
fn without_need_wakeup_every_burst_kicks() {
    let lab = lab(1);
    let cfg = SocketSetConfig { need_wakeup: false, ..config(&lab) };
    let mut port = open_tx_port(&lab, &cfg).unwrap();
    let peer = peer(&lab);
    let (pmac, qmac) = (port_mac(&lab), peer.mac().unwrap());
    assert_eq!(send_from_port(&mut port, 0, qmac, pmac, 0, 500, 60), 500);
    assert_eq!(peer.recv_count_matching(is_seq_in(0, 500), 500, Duration::from_secs(5)), 500);
    assert!(port.stats(0).unwrap().tx_kicks > 0);
}

#[test]
fn hugepage_and_ordinary_umems() {
    let lab = lab(1);
    // Ordinary pages.
    {
        let mut cfg = config(&lab);
        cfg.umem.hugepages = HugepagePolicy::Never;
        let port = open_tx_port(&lab, &cfg).unwrap();
        assert!(!port.hugepages());
    }
    // Hugepages: reserve some for the duration of the test.
    let _hp = common_hugepages::Reserve::at_least(64);
    let mut cfg = config(&lab);
    cfg.umem.hugepages = HugepagePolicy::Require;
    let mut port = open_tx_port(&lab, &cfg).unwrap();
    assert!(port.hugepages());
    let (p, len) = port.umem_area(0);
    assert_eq!(p as usize % (2 << 20), 0, "hugepage UMEM must be 2 MiB aligned");
    assert_eq!(len, 1024 * 2048);
    let peer = peer(&lab);
    let (pmac, qmac) = (port_mac(&lab), peer.mac().unwrap());
    assert_eq!(send_from_port(&mut port, 0, qmac, pmac, 0, 1500, 128), 1500);
    assert_eq!(peer.recv_count_matching(is_seq_in(0, 1500), 1500, Duration::from_secs(5)), 1500);
    drop(port);
}

#[test]
fn per_queue_and_shared_umems_over_two_queues() {
    let lab = lab(2);
    let base = SocketSetConfig { queue_count: 2, ..config(&lab) };
    {
        let port = open_tx_port(&lab, &base).unwrap();
        assert_eq!(port.umem_count(), 2);
        assert_eq!((port.umem_of(0), port.umem_of(1)), (0, 1));
        assert_eq!((port.queue_id(0), port.queue_id(1)), (0, 1));
    }
    let cfg = SocketSetConfig { shared_umem: true, ..base };
    let mut port = open_tx_port(&lab, &cfg).unwrap();
    assert_eq!(port.umem_count(), 1);
    assert_eq!((port.umem_of(0), port.umem_of(1)), (0, 0));
    assert_ne!(port.fd(0), port.fd(1));
    let initial = port.frames(0);
    check_sum(&port);
    // Each of the two queues lends at most a quarter of the shared UMEM.
    assert_eq!(initial.free, 512);

    let peer = peer(&lab);
    let (pmac, qmac) = (port_mac(&lab), peer.mac().unwrap());
    assert_eq!(send_from_port(&mut port, 0, qmac, pmac, 0, 1000, 60), 1000);
    assert_eq!(send_from_port(&mut port, 1, qmac, pmac, 1000, 1000, 60), 1000);
    assert_eq!(peer.recv_count_matching(is_seq_in(0, 2000), 2000, Duration::from_secs(10)), 2000);
    // A frame allocated through queue 0 can be sent on queue 1: one UMEM.
    let mut a = [0u32; 1];
    assert_eq!(port.alloc(0, &mut a).unwrap(), 1);
    let f = test_frame(qmac, pmac, 5000, 60);
    port.packet_mut(1, a[0], 60).unwrap().copy_from_slice(&f);
    assert_eq!(port.tx_burst(1, &a, &[60], &[0]).unwrap(), 1);
    assert_eq!(peer.recv_count_matching(is_seq_in(5000, 5001), 1, Duration::from_secs(5)), 1);
    assert_eq!(settle(&mut port, 0, &initial), initial);
    assert_eq!(port.stats(0).unwrap().tx_completed + port.stats(1).unwrap().tx_completed, 2001);
}

#[test]
fn a_second_socket_shares_the_umem_on_the_same_queue() {
    let lab = lab(1);
    let cfg = config(&lab);
    let port = open_tx_port(&lab, &cfg).unwrap();
    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    // Same (interface, queue): the owner's fill/completion rings are used.
    let mut s = XskSocket::new().unwrap();
    let rings = s.create_rings(&RingSizes { rx: 64, tx: 64, fill: None, comp: None }).unwrap();
    assert!(rings.fill.is_none() && rings.comp.is_none());
    s.bind(&cfg.ifname, cfg.ifindex, 0, BindMode::SharedWith(port.fd(0))).unwrap();
    assert_eq!(s.binding().unwrap().queue_id, 0);
    // The kernel refuses own fill/completion rings on the same queue.
    let mut t = XskSocket::new().unwrap();
    t.create_rings(&RingSizes { rx: 64, tx: 64, fill: Some(64), comp: Some(64) }).unwrap();
    let e = t.bind(&cfg.ifname, cfg.ifindex, 0, BindMode::SharedWith(port.fd(0))).unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument, "{e}");
}

#[test]
fn busy_poll_can_be_enabled_as_root() {
    let lab = lab(1);
    let port = open_tx_port(&lab, &config(&lab)).unwrap();
    port.set_busy_poll(20, 64).unwrap();
    port.set_busy_poll(0, 0).unwrap();
}

#[test]
fn rx_delivers_exactly_what_the_peer_sent() {
    let lab = lab(1);
    let cfg = config(&lab);
    let (port, _prog) = open_rx_port(&lab, &cfg);
    let peer = peer(&lab);
    let (pmac, qmac) = (port_mac(&lab), peer.mac().unwrap());
    let initial = port.frames(0);

    const N: u32 = 2000; // more than lent to the fill ring: needs refills
    let frames: Vec<Vec<u8>> = (0..N).map(|s| test_frame(pmac, qmac, s, 60 + (s as usize % 200))).collect();
    let mut seen = vec![false; N as usize];
    let mut received = 0u32;
    let mut addrs = [0u32; 64];
    let mut lens = [0u32; 64];
    let mut opts = [0u32; 64];
    let mut next = 0usize;
    let deadline = Instant::now() + Duration::from_secs(20);
    while received < N && Instant::now() < deadline {
        // Keep at most 192 in flight (below the 256 lent frames).
        if next < frames.len() && next as u32 - received < 192 {
            let end = (next + 64).min(frames.len());
            let refs: Vec<&[u8]> = frames[next..end].iter().map(|f| f.as_slice()).collect();
            next += peer.send_batch(&refs).unwrap();
        }
        let n = port.rx_burst(0, &mut addrs, &mut lens, &mut opts).unwrap();
        for i in 0..n {
            let data = port.packet(0, addrs[i], lens[i]).unwrap();
            let seq = test_frame_seq(data).expect("a test frame") as usize;
            assert_eq!(data, frames[seq].as_slice(), "bytes of frame {seq}");
            assert!(!seen[seq], "frame {seq} received twice");
            seen[seq] = true;
            assert_eq!(addrs[i] % 2048, 256, "rx data starts after XDP_PACKET_HEADROOM");
        }
        port.release(0, &addrs[..n]).unwrap();
        received += n as u32;
        check_sum(&port);
    }
    let st = port.stats(0).unwrap();
    assert_eq!(received, N, "stats: {st:?}");
    assert_eq!(st.rx_packets, N as u64);
    assert_eq!((st.rx_dropped, st.rx_ring_full, st.rx_invalid_descs), (0, 0, 0));
    // Nothing more arrives, and frames are back where they started.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(port.rx_burst(0, &mut addrs, &mut lens, &mut opts).unwrap(), 0);
    assert_eq!(port.frames(0), initial);
}

#[test]
fn full_rx_ring_is_counted_by_xdp_statistics() {
    let lab = lab(1);
    let mut cfg = config(&lab);
    cfg.rx_size = 64;
    let (port, _prog) = open_rx_port(&lab, &cfg);
    let peer = peer(&lab);
    let (pmac, qmac) = (port_mac(&lab), peer.mac().unwrap());
    let initial = port.frames(0);
    assert_eq!(port.stats(0).unwrap().rx_ring_full, 0);

    // 150 frames, nobody reading: 64 fit in the rx ring, the rest drop.
    let frames: Vec<Vec<u8>> = (0..150).map(|s| test_frame(pmac, qmac, s, 60)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    assert_eq!(peer.send_batch(&refs).unwrap(), 150);
    std::thread::sleep(Duration::from_millis(100));
    let st = port.stats(0).unwrap();
    assert_eq!(st.rx_ring_full + st.rx_dropped, 86, "{st:?}");
    assert!(st.rx_ring_full > 0);
    let f = port.frames(0);
    assert_eq!(f.rx_ring, 64, "{f:?}");
    assert_eq!(f.sum(), f.total);

    // Drain; every frame returns.
    let mut addrs = [0u32; 64];
    let mut lens = [0u32; 64];
    let mut opts = [0u32; 64];
    let n = port.rx_burst(0, &mut addrs, &mut lens, &mut opts).unwrap();
    assert_eq!(n, 64);
    port.release(0, &addrs[..n]).unwrap();
    port.rx_burst(0, &mut addrs, &mut lens, &mut opts).unwrap(); // refill
    let now = port.frames(0);
    assert_eq!((now.free, now.app, now.total), (initial.free, 0, initial.total), "{now:?}");
}

#[test]
fn rx_on_shared_umem_across_two_queues() {
    let lab = lab(2);
    let cfg = SocketSetConfig { queue_count: 2, shared_umem: true, ..config(&lab) };
    let (port, _prog) = open_rx_port(&lab, &cfg);
    let peer = peer(&lab);
    let (pmac, qmac) = (port_mac(&lab), peer.mac().unwrap());
    let initial = port.frames(0);
    let frames: Vec<Vec<u8>> = (0..200).map(|s| test_frame(pmac, qmac, s, 60)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    assert_eq!(peer.send_batch(&refs).unwrap(), 200);
    let mut got = [0usize; 2];
    let mut addrs = [0u32; 64];
    let mut lens = [0u32; 64];
    let mut opts = [0u32; 64];
    let deadline = Instant::now() + Duration::from_secs(5);
    while got[0] + got[1] < 200 && Instant::now() < deadline {
        for (q, count) in got.iter_mut().enumerate() {
            let n = port.rx_burst(q, &mut addrs, &mut lens, &mut opts).unwrap();
            // Frames of a shared UMEM can be released through either queue.
            port.release(1 - q, &addrs[..n]).unwrap();
            *count += n;
        }
    }
    assert_eq!(got[0] + got[1], 200, "per queue: {got:?}");
    for q in 0..2 {
        port.rx_burst(q, &mut addrs[..0], &mut lens[..0], &mut opts[..0]).unwrap();
    }
    assert_eq!(port.frames(0), initial);
}

#[test]
fn macswap_forwarding_of_100k_packets() {
    let lab = lab(1);
    let cfg = config(&lab);
    let (mut port, _prog) = open_rx_port(&lab, &cfg);
    let peer = peer(&lab);
    let (pmac, qmac) = (port_mac(&lab), peer.mac().unwrap());
    let initial = port.frames(0);

    const N: u32 = 100_000;
    const WINDOW: u32 = 192;
    let mut batch: Vec<Vec<u8>> = (0..64).map(|_| test_frame(pmac, qmac, 0, 64)).collect();
    let mut seen = vec![false; N as usize];
    let (mut sent, mut back, mut forwarded) = (0u32, 0u32, 0u64);
    let mut addrs = [0u32; 64];
    let mut lens = [0u32; 64];
    let mut opts = [0u32; 64];
    let mut buf = [0u8; 2048];
    let start = Instant::now();
    let mut last_progress = Instant::now();
    let mut iterations = 0u64;
    while back < N && last_progress.elapsed() < Duration::from_secs(2) && iterations < 50_000_000 {
        iterations += 1;
        // Peer: keep WINDOW frames in flight.
        if sent < N && sent - back < WINDOW {
            let k = (N - sent).min(WINDOW - (sent - back)).min(64) as usize;
            for (i, f) in batch[..k].iter_mut().enumerate() {
                f[42..46].copy_from_slice(&(sent + i as u32).to_be_bytes());
            }
            let refs: Vec<&[u8]> = batch[..k].iter().map(|f| f.as_slice()).collect();
            sent += peer.send_batch(&refs).unwrap() as u32;
        }
        // The socket set: receive, swap MACs in place, send the same frames back.
        let n = port.rx_burst(0, &mut addrs, &mut lens, &mut opts).unwrap();
        for i in 0..n {
            let p = port.packet_mut(0, addrs[i], lens[i]).unwrap();
            let mut dst = [0u8; 6];
            dst.copy_from_slice(&p[0..6]);
            p.copy_within(6..12, 0);
            p[6..12].copy_from_slice(&dst);
        }
        let mut posted = 0;
        let mut tries = 0;
        while posted < n && tries < 1000 {
            posted += port.tx_burst(0, &addrs[posted..n], &lens[posted..n], &opts[posted..n]).unwrap();
            tries += 1;
        }
        assert_eq!(posted, n, "tx ring never drained");
        forwarded += n as u64;
        // Peer: collect what came back.
        while let Some(len) = peer.recv(&mut buf, Duration::ZERO).unwrap() {
            let f = &buf[..len.min(buf.len())];
            if let Some(seq) = test_frame_seq(f) {
                assert_eq!((&f[0..6], &f[6..12]), (&qmac[..], &pmac[..]), "MACs swapped");
                assert!(!seen[seq as usize], "frame {seq} came back twice");
                seen[seq as usize] = true;
                back += 1;
                last_progress = Instant::now();
            }
        }
    }
    let st = port.stats(0).unwrap();
    let secs = start.elapsed().as_secs_f64();
    eprintln!("macswap: {back} packets round trip in {secs:.2}s ({:.0} pps)", back as f64 / secs);
    assert_eq!(back, N, "sent {sent}, forwarded {forwarded}, stats {st:?}");
    assert_eq!(forwarded, N as u64);
    assert_eq!((st.rx_dropped, st.rx_ring_full, st.tx_invalid_descs, st.ring_anomalies), (0, 0, 0, 0));
    // After draining, every frame is back: the free count is what it was.
    let after = settle(&mut port, 0, &initial);
    assert_eq!(after, initial);
}

/// Temporarily raise /proc/sys/vm/nr_hugepages; restore on drop.
mod common_hugepages {
    use std::fs;
    use std::sync::Mutex;

    const PATH: &str = "/proc/sys/vm/nr_hugepages";
    static LOCK: Mutex<()> = Mutex::new(());

    pub struct Reserve {
        old: u64,
        _guard: std::sync::MutexGuard<'static, ()>,
    }

    impl Reserve {
        pub fn at_least(extra: u64) -> Reserve {
            let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
            let old: u64 = fs::read_to_string(PATH).unwrap().trim().parse().unwrap();
            let reserve = Reserve { old, _guard: guard };
            fs::write(PATH, (old + extra).to_string()).unwrap();
            let now: u64 = fs::read_to_string(PATH).unwrap().trim().parse().unwrap();
            assert!(now >= old + extra, "the kernel could only reserve {now} of {} hugepages", old + extra);
            reserve
        }
    }

    impl Drop for Reserve {
        fn drop(&mut self) {
            let _ = fs::write(PATH, self.old.to_string());
        }
    }
}
