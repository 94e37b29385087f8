//! Queues on other threads (`lease`): a 2-queue port whose queue 1 is
//! transferred to a std::thread, which runs rx/tx bursts on it while this
//! thread runs bursts on queue 0; the port's own calls on a transferred
//! queue fail with ERR_AFXDP_TRANSFERRED, a token attaches once, a given
//! back queue is the port's again with its frame ledger exact; and closing
//! the port while another thread loops on bursts makes that thread's next
//! lock fail with ERR_AFXDP_CLOSED, never crash. Privileged (root); never
//! skips. Every loop is bounded in time and count.

mod common;

use afxdp_core::bpf::XdpMode;
use afxdp_core::lease::{Caller, QueueGuard, SharedQueue};
use afxdp_core::netns::NetnsGuard;
use afxdp_core::packet::PacketSocket;
use afxdp_core::port::{MapSource, OpenRequest, Port};
use afxdp_core::socket_set::{FrameCounts, SocketSet, SocketSetConfig};
use afxdp_core::umem::Umem;
use afxdp_core::{Code, Error};
use common::{is_root, Lab};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

fn lab() -> Lab {
    assert!(is_root(), "AF_XDP lab tests need root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF, CAP_SYS_ADMIN)");
    Lab::new(2)
}

/// Two queues, one UMEM each (the default): 1024 frames, each queue lends
/// the kernel 256 of them.
fn config(lab: &Lab) -> SocketSetConfig {
    SocketSetConfig { queue_count: 2, ..lab.small_port_config(1024) }
}

fn open(lab: &Lab) -> Port {
    Port::open(OpenRequest {
        netns: Some(lab.port_ns.clone()),
        sockets: config(lab),
        map: MapSource::Attach { xdp_prog: None, mode: XdpMode::Auto, rx_metadata: false },
        multi_buffer: Default::default(),
    })
    .unwrap()
}

fn peer(lab: &Lab) -> PacketSocket {
    let _ns = NetnsGuard::enter(lab.peer_ns_path()).unwrap();
    PacketSocket::open(&lab.peer_if).unwrap()
}

/// An IPv4/UDP frame (192.0.2.2:sport → 192.0.2.1:9) carrying "AFXU" and
/// `seq`: unlike the 0x88b5 test frames, its flow hash depends on the
/// source port, so the peer's frames spread over both queues of the veth.
fn udp_frame(dst: [u8; 6], src: [u8; 6], seq: u32, sport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (f.len() - 14) as u16;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[192, 0, 2, 2]);
    f[30..34].copy_from_slice(&[192, 0, 2, 1]);
    let mut sum: u32 = (14..34).step_by(2).map(|i| u16::from_be_bytes([f[i], f[i + 1]]) as u32).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    f[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&9u16.to_be_bytes());
    f[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
    f[42..46].copy_from_slice(b"AFXU");
    f[46..50].copy_from_slice(&seq.to_be_bytes());
    f
}

fn udp_seq(f: &[u8]) -> Option<u32> {
    if f.len() < 50 || f[12..14] != [0x08, 0x00] || f[23] != 17 || &f[42..46] != b"AFXU" {
        return None;
    }
    Some(u32::from_be_bytes([f[46], f[47], f[48], f[49]]))
}

/// One macswap burst on a locked queue: receive, swap the MACs in place,
/// send the same frames back, reap completions. Returns packets forwarded.
fn echo(g: &mut QueueGuard<'_>, umem: &Umem, addrs: &mut [u32; 64], lens: &mut [u32; 64]) -> usize {
    g.reap();
    let mut opts = [0u32; 64];
    let n = g.rx_burst(addrs, lens, &mut opts);
    for i in 0..n {
        common::swap_macs(umem.packet_mut(addrs[i], lens[i]).unwrap());
    }
    let mut posted = 0;
    let mut tries = 0;
    while posted < n && tries < 10_000 {
        posted += g.tx_burst(&addrs[posted..n], &lens[posted..n], &opts[posted..n]).unwrap();
        if posted < n {
            g.reap();
        }
        tries += 1;
    }
    assert_eq!(posted, n, "tx ring never drained");
    n
}

/// Reap on every queue until each UMEM is back to `want` (bounded).
fn settle(sockets: &SocketSet, want: &[FrameCounts]) -> Vec<FrameCounts> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut addrs = [0u32; 0];
        let mut lens = [0u32; 0];
        let mut opts = [0u32; 0];
        for q in 0..sockets.queue_count() {
            sockets.reap(q).unwrap();
            // An empty rx burst refills the fill ring.
            sockets.rx_burst(q, &mut addrs, &mut lens, &mut opts).unwrap();
        }
        let now: Vec<FrameCounts> = (0..sockets.umem_count()).map(|u| sockets.frames(u)).collect();
        for f in &now {
            assert_eq!(f.sum(), f.total, "{f:?}");
        }
        if now == want || Instant::now() > deadline {
            return now;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// The kernel's XDP_REDIRECT count per rx queue of the port's veth
/// (`ethtool -S`: rx_queue_<q>_xdp_redirect).
fn kernel_redirects(lab: &Lab, queues: usize) -> Vec<u64> {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.port_ns, "ethtool", "-S", &lab.port_if])
        .output()
        .expect("run ethtool(8)");
    assert!(out.status.success(), "ethtool -S: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    (0..queues)
        .map(|q| {
            let key = format!("rx_queue_{q}_xdp_redirect:");
            let line = text.lines().find(|l| l.trim().starts_with(&key)).unwrap_or_else(|| panic!("no {key} in {text}"));
            line.trim()[key.len()..].trim().parse().unwrap()
        })
        .collect()
}

fn code(r: Result<impl Sized, Error>) -> Code {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.code,
    }
}

/// What the thread serving queue 1 did.
struct Served {
    rx: u64,
    tx: u64,
    thread: ThreadId,
    /// The lock error that ended its loop, if one did.
    ended_by: Option<Error>,
    bursts: u64,
}

/// Attach `token` on a new thread and echo there until `stop` or a lock
/// error. Sends the lease once attached; counts bursts in `bursts`.
fn serve(
    sq: Arc<SharedQueue>,
    token: u64,
    stop: Arc<AtomicBool>,
    bursts: Arc<AtomicU64>,
    attached: mpsc::Sender<u64>,
) -> thread::JoinHandle<Served> {
    thread::spawn(move || {
        let lease = sq.attach(token).expect("attach with the transfer's token");
        let umem = sq.umem().unwrap();
        attached.send(lease).unwrap();
        let (mut rx, mut ended_by) = (0u64, None);
        let mut addrs = [0u32; 64];
        let mut lens = [0u32; 64];
        let deadline = Instant::now() + Duration::from_secs(30);
        while !stop.load(Ordering::Acquire) && Instant::now() < deadline {
            let mut g = match sq.lock(Caller::Lease(lease)) {
                Ok(g) => g,
                Err(e) => {
                    ended_by = Some(e);
                    break;
                }
            };
            let n = echo(&mut g, &umem, &mut addrs, &mut lens);
            drop(g);
            rx += n as u64;
            bursts.fetch_add(1, Ordering::Release);
            if n == 0 {
                thread::yield_now();
            }
        }
        if ended_by.is_none() {
            // Let the last transmissions complete before giving the queue back.
            let until = Instant::now() + Duration::from_millis(200);
            while Instant::now() < until {
                if sq.lock(Caller::Lease(lease)).unwrap().reap() == 0 {
                    thread::sleep(Duration::from_millis(5));
                }
            }
            assert!(sq.give_back(lease), "the lease was still the queue's holder");
        }
        Served { rx, tx: rx, thread: thread::current().id(), ended_by, bursts: bursts.load(Ordering::Acquire) }
    })
}

#[test]
fn a_transferred_queue_runs_bursts_on_another_thread_with_exact_counts() {
    let lab = lab();
    let port = open(&lab);
    let sockets = port.sockets();
    assert_eq!(sockets.queue_count(), 2);
    assert_eq!(sockets.umem_count(), 2, "one UMEM per queue");
    let peer = peer(&lab);
    let (pmac, qmac) = (lab.port_netdev().mac, peer.mac().unwrap());
    let initial: Vec<FrameCounts> = (0..2).map(|u| sockets.frames(u)).collect();
    let mut addrs = [0u32; 64];
    let mut lens = [0u32; 64];
    let mut opts = [0u32; 64];

    // Hand queue 1 over: the port's own calls on it fail from now on, on
    // queue 0 they still work.
    let sq = sockets.shared_queue(1).unwrap().clone();
    assert!(sq.at_port());
    let token = sq.transfer().unwrap();
    assert!(!sq.at_port());
    assert_eq!(code(sockets.rx_burst(1, &mut addrs, &mut lens, &mut opts)), Code::Transferred);
    assert_eq!(code(sq.transfer()), Code::Transferred, "a queue in transit cannot be transferred again");
    assert_eq!(sockets.rx_burst(0, &mut addrs, &mut lens, &mut opts).unwrap(), 0);

    let stop = Arc::new(AtomicBool::new(false));
    let (attached_tx, attached_rx) = mpsc::channel();
    let server = serve(sq.clone(), token, stop.clone(), Arc::new(AtomicU64::new(0)), attached_tx);
    let lease = attached_rx.recv_timeout(Duration::from_secs(10)).expect("the thread attached queue 1");

    // A token attaches once; the port and a wrong lease stay locked out.
    assert_eq!(code(sq.attach(token)), Code::Transferred);
    let e = sockets.tx_burst(1, &[], &[], &[]).unwrap_err();
    assert_eq!(e.code, Code::Transferred);
    assert!(e.message.contains("transferred to another thread"), "{}", e.message);
    for r in [
        sockets.alloc(1, &mut addrs).map(|_| ()),
        sockets.reap(1).map(|_| ()),
        sockets.release(1, &[]),
        sockets.flush_tx(1).map(|_| ()),
    ] {
        assert_eq!(code(r), Code::Transferred);
    }
    assert_eq!(code(sq.lock(Caller::Lease(lease + 1_000_000)).map(|_| ())), Code::Transferred);
    assert_eq!(code(sq.lock(Caller::Port).map(|_| ())), Code::Transferred);
    // Reading (statistics, occupancy) works whoever holds the queue.
    sockets.stats(1).unwrap();
    assert!(!sq.give_back(lease + 1_000_000), "a stale lease gives nothing back");

    // Peer → both queues → back to the peer: this thread echoes queue 0,
    // the other thread queue 1. At most WINDOW frames in flight (below the
    // 256 each queue lends the kernel), so nothing drops.
    const N: u32 = 20_000;
    const WINDOW: u32 = 192;
    let umem0 = sockets.umem(sockets.umem_of(0)).clone();
    let mut seen = vec![false; N as usize];
    let (mut sent, mut back, mut rx0) = (0u32, 0u32, 0u64);
    let mut buf = [0u8; 2048];
    let mut last_progress = Instant::now();
    let mut iterations = 0u64;
    while back < N && last_progress.elapsed() < Duration::from_secs(3) && iterations < 50_000_000 {
        iterations += 1;
        if sent < N && sent - back < WINDOW {
            let k = (N - sent).min(WINDOW - (sent - back)).min(64);
            let batch: Vec<Vec<u8>> = (sent..sent + k).map(|s| udp_frame(pmac, qmac, s, 1000 + (s % 4096) as u16)).collect();
            let refs: Vec<&[u8]> = batch.iter().map(|f| f.as_slice()).collect();
            sent += peer.send_batch(&refs).unwrap() as u32;
        }
        rx0 += echo(&mut sockets.lock(0).unwrap(), &umem0, &mut addrs, &mut lens) as u64;
        while let Some(len) = peer.recv(&mut buf, Duration::ZERO).unwrap() {
            let f = &buf[..len.min(buf.len())];
            if let Some(seq) = udp_seq(f) {
                assert_eq!((&f[0..6], &f[6..12]), (&qmac[..], &pmac[..]), "MACs swapped");
                assert!(seq < N && !seen[seq as usize], "frame {seq} came back twice or was never sent");
                seen[seq as usize] = true;
                back += 1;
                last_progress = Instant::now();
            }
        }
    }
    // Nothing beyond N comes back.
    thread::sleep(Duration::from_millis(50));
    while let Some(len) = peer.recv(&mut buf, Duration::ZERO).unwrap() {
        assert!(udp_seq(&buf[..len.min(buf.len())]).is_none(), "an extra frame came back");
    }
    stop.store(true, Ordering::Release);
    let served = server.join().expect("the queue-1 thread did not panic");
    assert!(served.ended_by.is_none(), "{:?}", served.ended_by);
    assert_ne!(served.thread, thread::current().id());

    let (st0, st1) = (sockets.stats(0).unwrap(), sockets.stats(1).unwrap());
    eprintln!("lease: {back} of {N} back; queue 0 (this thread) {rx0}, queue 1 (its own thread) {}", served.rx);
    assert_eq!(back, N, "sent {sent}, queue 0 {rx0}, queue 1 {} ({st0:?} {st1:?})", served.rx);
    assert_eq!(rx0 + served.rx, N as u64);
    assert!(rx0 > 0 && served.rx > 0, "both queues carried traffic: {rx0} + {}", served.rx);
    // Each thread received exactly what the kernel redirected to its queue.
    assert_eq!(kernel_redirects(&lab, 2), vec![rx0, served.rx]);
    assert_eq!(st0.rx_packets, rx0);
    assert_eq!(st1.rx_packets, served.rx);
    assert_eq!((st0.tx_packets, st1.tx_packets), (rx0, served.tx));
    for st in [&st0, &st1] {
        assert_eq!((st.rx_dropped, st.rx_ring_full, st.tx_invalid_descs, st.ring_anomalies), (0, 0, 0, 0), "{st:?}");
    }

    // Given back: the port's calls on queue 1 work again, the old lease's
    // do not, and every frame is where it started.
    assert!(sq.at_port());
    assert_eq!(code(sq.lock(Caller::Lease(lease)).map(|_| ())), Code::Transferred);
    assert!(!sq.give_back(lease), "a finished lease gives nothing back twice");
    assert_eq!(sockets.rx_burst(1, &mut addrs, &mut lens, &mut opts).unwrap(), 0);
    assert_eq!(sockets.alloc(1, &mut addrs[..4]).unwrap(), 4);
    sockets.release(1, &addrs[..4]).unwrap();
    assert_eq!(settle(sockets, &initial), initial);

    // A transfer nobody attaches can be cancelled; its token is then dead.
    let token = sq.transfer().unwrap();
    assert!(sq.cancel_transfer());
    assert!(!sq.cancel_transfer());
    assert_eq!(code(sq.attach(token)), Code::Transferred);
    assert_eq!(sockets.reap(1).unwrap(), 0);
}

#[test]
fn closing_the_port_while_another_thread_runs_bursts_fails_its_next_lock_with_closed() {
    let lab = lab();
    let peer = peer(&lab);
    let (pmac, qmac) = (lab.port_netdev().mac, peer.mac().unwrap());
    // Each round closes the port after a different number of bursts on the
    // other thread, with traffic arriving meanwhile.
    for round in 0..5u64 {
        let port = open(&lab);
        let sq = port.sockets().shared_queue(1).unwrap().clone();
        let token = sq.transfer().unwrap();
        let bursts = Arc::new(AtomicU64::new(0));
        let (attached_tx, attached_rx) = mpsc::channel();
        let server = serve(sq.clone(), token, Arc::new(AtomicBool::new(false)), bursts.clone(), attached_tx);
        attached_rx.recv_timeout(Duration::from_secs(10)).expect("the thread attached queue 1");
        let want = 1000 + round * 700;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seq = 0u32;
        while bursts.load(Ordering::Acquire) < want && Instant::now() < deadline {
            let batch: Vec<Vec<u8>> = (seq..seq + 16).map(|s| udp_frame(pmac, qmac, s, 1000 + (s % 4096) as u16)).collect();
            let refs: Vec<&[u8]> = batch.iter().map(|f| f.as_slice()).collect();
            seq += peer.send_batch(&refs).unwrap() as u32;
            thread::sleep(Duration::from_micros(200));
        }
        assert!(
            bursts.load(Ordering::Acquire) >= want,
            "round {round}: the thread ran {} bursts",
            bursts.load(Ordering::Acquire)
        );

        // Close the port under the running thread: the socket closes once
        // its burst in progress ends; the UMEM stays mapped while the
        // thread holds it.
        drop(port);
        assert_eq!(code(sq.transfer()), Code::Closed);
        assert_eq!(code(sq.umem()), Code::Closed);

        let served = server.join().expect("the thread did not panic when its port closed");
        let e = served.ended_by.expect("the loop ended on a lock error, not its deadline");
        assert_eq!(e.code, Code::Closed, "{e}");
        eprintln!("lease: round {round}: the port closed after {} bursts on the other thread", served.bursts);
        assert!(e.message.contains("closed"), "{}", e.message);
        assert!(served.bursts >= want, "round {round}: {} bursts", served.bursts);
        assert_eq!(code(sq.lock(Caller::Port).map(|_| ())), Code::Closed);
        assert!(sq.close().is_none(), "closed once");
        peer.drain();
    }
}
