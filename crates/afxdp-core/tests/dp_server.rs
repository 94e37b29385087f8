//! The Device-Plugin-compatible server, driven by `dp::transport::SeqpacketClient` on
//! veth labs in private namespaces: the full handshake (and the XSKMAP it
//! hands out carrying packets), every fault mode byte for byte, the state
//! machine's edge cases, deadlines, one accept per allocation, re-arm, the
//! uid allowlist, pinned maps opened by an unprivileged uid, and cleanup;
//! concurrent sessions with a total deadline, and programs that outlive the
//! server (adopted after a restart, re-attached when removed, never another's).
//! Needs root; fails (never skips) without it. Every wait is bounded.
//! Over 600 lines: one lab fixture shared by every server behaviour above.

mod common;

use afxdp_core::bpf::syscall::{map_create, BPF_MAP_TYPE_XSKMAP};
use afxdp_core::bpf::{query, XskMap};
use afxdp_core::dp::faults::{GARBAGE, OVERLONG_LEN};
use afxdp_core::dp::transport::{Received, SeqpacketClient};
use afxdp_core::dp::{DpConfig, DpDevice, DpServer, Fault, PinConfig, PodPolicy, PodVerdict, StreamListener, UdsConfig};
use afxdp_core::netdev::Netdev;
use afxdp_core::netns::NetnsGuard;
use afxdp_core::packet::{test_frame, test_frame_seq, PacketSocket};
use afxdp_core::port::{MapSource, OpenRequest, Port};
use afxdp_core::socket_set::SocketSetConfig;
use afxdp_core::umem::UmemConfig;
use afxdp_core::Code;
use common::{is_root, Lab};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

static SEQ: AtomicU32 = AtomicU32::new(0);
const T: Duration = Duration::from_secs(5);

fn lab() -> Lab {
    assert!(is_root(), "Device Plugin server tests attach XDP programs and create namespaces: run them as root");
    Lab::new(1)
}

/// A scratch directory, removed (recursively) on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(base: &str, tag: &str) -> TempDir {
        let p =
            PathBuf::from(base).join(format!("afxdp-dp-{tag}-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// UDS mode in `dir` (host sockets in dir/host, pod paths in dir/pod) for
/// the lab's port interface.
fn config(lab: &Lab, dir: &Path) -> DpConfig {
    let mut c = DpConfig::new(vec![DpDevice::in_netns(&lab.port_if, lab.port_ns_path())]);
    c.uds = Some(UdsConfig { host_dir: dir.join("host"), pod_dir: Some(dir.join("pod")), socket_mode: 0o660 });
    c.accept_timeout = Some(Duration::from_secs(20));
    c.read_timeout = Some(Duration::from_secs(20));
    c
}

fn pod_sock(lab: &Lab, dir: &Path) -> PathBuf {
    dir.join("pod").join(&lab.port_if).join("afxdp.sock")
}

fn connect(path: &Path) -> SeqpacketClient {
    SeqpacketClient::connect(path, T).unwrap_or_else(|e| panic!("connect {}: {}", path.display(), e.message))
}

fn recv(c: &SeqpacketClient) -> Received {
    c.recv(T).unwrap().expect("a reply, not EOF")
}

/// Send `req`, return the one reply (no fd expected unless asked).
fn ask(c: &SeqpacketClient, req: &[u8]) -> Received {
    c.send(req, None).unwrap();
    recv(c)
}

fn ask_text(c: &SeqpacketClient, req: &str) -> Vec<u8> {
    let r = ask(c, req.as_bytes());
    assert!(r.fd.is_none(), "no fd expected with the reply to {req}");
    assert!(!r.truncated);
    r.bytes
}

fn expect_eof(c: &SeqpacketClient) {
    match c.recv(T) {
        Ok(None) => {}
        Ok(Some(r)) => panic!("expected EOF, got {:?}", String::from_utf8_lossy(&r.bytes)),
        Err(e) => panic!("expected EOF, got error {}", e.message),
    }
}

/// Connecting to `path` is refused (nobody listens). A listener fd copied
/// into a child of this multi-threaded test process (any test's fork or
/// spawn) keeps a closed listener alive for a moment, so a connect that
/// succeeds is retried, boundedly.
fn assert_refused(path: &Path) -> afxdp_core::Error {
    for _ in 0..100 {
        match SeqpacketClient::connect(path, T) {
            Err(e) => {
                assert_eq!(e.errno, Some(libc::ECONNREFUSED), "{}", e.message);
                return e;
            }
            Ok(c) => {
                drop(c);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    panic!("{} still accepts connections", path.display());
}

fn handshake(c: &SeqpacketClient, pod: &str) {
    assert_eq!(ask_text(c, &format!("/connect,{pod}")), b"/host_ok");
}

fn prog_on(lab: &Lab, ifindex: u32) -> Option<u32> {
    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    query(ifindex).unwrap().map(|a| a.prog_id)
}

fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

fn getsockopt_int(fd: BorrowedFd<'_>, opt: libc::c_int) -> i32 {
    let mut v: libc::c_int = -1;
    let mut len = 4 as libc::socklen_t;
    // SAFETY: a plain syscall on live fds and buffers of the sizes passed; the result is checked.
    let r = unsafe { libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, opt, &mut v as *mut _ as *mut libc::c_void, &mut len) };
    assert_eq!(r, 0, "getsockopt({opt}): {}", std::io::Error::last_os_error());
    v
}

#[test]
fn full_session_hands_out_the_xskmap_and_the_socket_is_gone_after_one_accept() {
    let lab = lab();
    let dir = TempDir::new("/tmp", "full");
    let server = DpServer::start(config(&lab, &dir.0)).unwrap();
    let info = server.info();
    let dev = &info.devices[0];
    assert_eq!(prog_on(&lab, dev.ifindex), Some(dev.program_id), "the redirect program is attached");
    let host = info.socket_path.clone().expect("listening when start returns");
    assert!(host.starts_with(dir.0.join("host")) && host.to_str().unwrap().ends_with(".sock"));
    assert_eq!(std::fs::metadata(dir.0.join("host")).unwrap().mode() & 0o777, 0o700);
    let pod = pod_sock(&lab, &dir.0);
    assert_eq!(dev.pod_socket_path.as_deref(), Some(pod.as_path()));
    // The pod path is the host socket's inode (as a bind mount would be).
    assert_eq!(std::fs::metadata(&pod).unwrap().ino(), std::fs::metadata(&host).unwrap().ino());
    assert_eq!(std::fs::metadata(&host).unwrap().mode() & 0o777, 0o660);

    let c = connect(&pod);
    // Spaces in the argument are stripped (the Device Plugin's goclient sends "/connect, <name>").
    assert_eq!(ask_text(&c, "/connect, my pod"), b"/host_ok");
    // One accept: the listener and its host file are gone now; the pod path
    // stays, with nobody listening.
    assert!(!exists(&host), "host socket removed after the one accept");
    assert!(exists(&pod));
    assert_refused(&pod);
    let e = SeqpacketClient::connect(&host, T).unwrap_err();
    assert_eq!(e.errno, Some(libc::ENOENT), "{}", e.message);

    assert_eq!(ask_text(&c, "/version"), b"0.1");
    let r = ask(&c, format!("/xsk_map_fd,{}", lab.port_if).as_bytes());
    assert_eq!(r.bytes, b"/fd_ack");
    let map = XskMap::from_fd(r.fd.expect("the XSKMAP fd with /fd_ack")).unwrap();
    assert_eq!(map.id(), dev.map_id);
    assert_eq!(map.name(), "xsks_map");
    // Again (same map), with the goclient's space.
    let r = ask(&c, format!("/xsk_map_fd, {}", lab.port_if).as_bytes());
    assert_eq!(r.bytes, b"/fd_ack");
    assert_eq!(XskMap::from_fd(r.fd.unwrap()).unwrap().id(), dev.map_id);
    // Unknown interface, wrong shape, near misses.
    assert_eq!(ask_text(&c, "/xsk_map_fd,lo"), b"/fd_nak");
    assert_eq!(ask_text(&c, &format!("/xsk_map_fd,{}\n", lab.port_if)), b"/fd_nak");
    assert_eq!(ask_text(&c, "/xsk_map_fd"), b"/nak");
    assert_eq!(ask_text(&c, "/xsk_map_fd,a,b"), b"/nak");
    assert_eq!(ask_text(&c, "/version\n"), b"/nak");
    assert_eq!(ask_text(&c, "/fin\0"), b"/nak");
    assert_eq!(ask_text(&c, "/hello"), b"/nak");
    assert_eq!(ask_text(&c, ""), b"/nak");
    // A record over 64 bytes is processed truncated, as the Device Plugin
    // does: here the cut falls in trailing spaces, which are stripped.
    let long = format!("/xsk_map_fd,{}{}", lab.port_if, " ".repeat(80));
    let r = ask(&c, long.as_bytes());
    assert_eq!(r.bytes, b"/fd_ack");
    drop(r.fd);
    assert_eq!(ask_text(&c, "/fin"), b"/fin_ack");
    expect_eof(&c);
    assert!(server.wait_sessions(1, T));
    assert!(server.wait_finished(T), "one allocation only: the thread ends");
    let info = server.info();
    assert_eq!((info.sessions_served, info.allocations, info.listening), (1, 1, false));
    assert!(server.log().iter().any(|l| l.contains("truncated")), "{:#?}", server.log());

    // The program stays attached after the session (CNI DEL removes it in
    // Kubernetes); stop removes it and every file.
    assert_eq!(prog_on(&lab, dev.ifindex), Some(dev.program_id));
    server.stop();
    assert_eq!(prog_on(&lab, dev.ifindex), None);
    assert!(!exists(&pod) && !exists(&dir.0.join("pod")) && !exists(&dir.0.join("host")));
    server.stop(); // idempotent
}

/// The use_cni flow end to end: the received XSKMAP steers packets to a
/// port opened on it, and the server sets busy polling on the port's XSK.
#[test]
fn received_map_carries_packets_and_busy_poll_is_set_on_the_real_xsk() {
    let lab = lab();
    let dir = TempDir::new("/tmp", "cni");
    let server = DpServer::start(config(&lab, &dir.0)).unwrap();
    let c = connect(&pod_sock(&lab, &dir.0));
    handshake(&c, "pod");
    let r = ask(&c, format!("/xsk_map_fd,{}", lab.port_if).as_bytes());
    assert_eq!(r.bytes, b"/fd_ack");
    let map_fd = r.fd.unwrap();

    let mut port = Port::open(OpenRequest {
        netns: Some(lab.port_ns_path()),
        sockets: SocketSetConfig {
            ifname: lab.port_if.clone(),
            rx_size: 512,
            tx_size: 512,
            umem: UmemConfig { frame_size: 2048, frame_count: 1024, fill_size: 512, comp_size: 512, ..Default::default() },
            ..Default::default()
        },
        map: MapSource::Received(map_fd),
        multi_buffer: Default::default(),
    })
    .unwrap();
    assert!(port.program().is_none(), "use_cni: the port attaches nothing");
    // SAFETY: the port keeps this fd open for as long as the borrow is used.
    let xsk = unsafe { BorrowedFd::borrow_raw(port.sockets().fd(0)) };

    // Busy poll: wrong shape, no fd, non-integers, a non-XDP fd, then the XSK.
    assert_eq!(ask_text(&c, "/config_busy_poll,20"), b"/nak");
    assert_eq!(ask_text(&c, "/config_busy_poll,20,64"), b"/config_busy_poll_nak");
    c.send(b"/config_busy_poll,x,64", Some(xsk)).unwrap();
    assert_eq!(recv(&c).bytes, b"/config_busy_poll_nak");
    let (other, _peer) = SeqpacketClient::pair().unwrap();
    c.send(b"/config_busy_poll,20,64", Some(other.as_fd())).unwrap();
    assert_eq!(recv(&c).bytes, b"/config_busy_poll_nak");
    assert_eq!(getsockopt_int(xsk, libc::SO_BUSY_POLL), 0);
    c.send(b"/config_busy_poll, 25, 48", Some(xsk)).unwrap();
    assert_eq!(recv(&c).bytes, b"/config_busy_poll_ack");
    assert_eq!(getsockopt_int(xsk, libc::SO_PREFER_BUSY_POLL), 1);
    assert_eq!(getsockopt_int(xsk, libc::SO_BUSY_POLL), 25);
    // (SO_BUSY_POLL_BUDGET cannot be read back: getsockopt gives ENOPROTOOPT.)
    assert_eq!(ask_text(&c, "/fin"), b"/fin_ack");
    expect_eof(&c);
    // The session is over and our XSK is untouched by the server closing its copy.
    assert_eq!(getsockopt_int(xsk, libc::SO_BUSY_POLL), 25);

    let peer = {
        let _ns = NetnsGuard::enter(lab.peer_ns_path()).unwrap();
        PacketSocket::open(&lab.peer_if).unwrap()
    };
    let pmac = port.netdev().mac;
    let frames: Vec<Vec<u8>> = (0..32).map(|s| test_frame(pmac, peer.mac().unwrap(), s, 64)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    assert_eq!(peer.send_batch(&refs).unwrap(), 32);
    let (mut addrs, mut lens, mut opts) = ([0u32; 64], [0u32; 64], [0u32; 64]);
    let mut got = 0;
    let deadline = Instant::now() + T;
    while got < 32 && Instant::now() < deadline {
        let p = port.sockets_mut();
        let n = p.rx_burst(0, &mut addrs, &mut lens, &mut opts).unwrap();
        for i in 0..n {
            let seq = test_frame_seq(p.packet(0, addrs[i], lens[i]).unwrap()).expect("a test frame");
            assert!(seq < 32);
        }
        p.release(0, &addrs[..n]).unwrap();
        got += n;
        if n == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert_eq!(got, 32, "packets reach the port through the XSKMAP the server sent");
    drop(port);
    server.stop();
}

/// Run one client script against a fresh server with `fault`.
fn with_fault(lab: &Lab, fault: Fault, script: impl FnOnce(&SeqpacketClient, &DpServer)) {
    let dir = TempDir::new("/tmp", "fault");
    let mut cfg = config(lab, &dir.0);
    cfg.fault = fault;
    let server = DpServer::start(cfg).unwrap();
    let c = connect(&pod_sock(lab, &dir.0));
    script(&c, &server);
    let t = Instant::now();
    server.stop();
    assert!(t.elapsed() < Duration::from_secs(2), "stop wakes the session promptly ({fault})");
}

#[test]
fn every_fault_mode_sends_exactly_the_promised_bytes() {
    let lab = lab();
    let fd_req = format!("/xsk_map_fd,{}", lab.port_if);
    let fd_req = fd_req.as_str();

    with_fault(&lab, Fault::Silent, |c, _| {
        c.send(b"/connect,pod", None).unwrap();
        let e = c.recv(Duration::from_millis(300)).unwrap_err();
        assert_eq!(e.errno, Some(libc::ETIMEDOUT), "{}", e.message);
        c.send(b"/version", None).unwrap();
        assert_eq!(c.recv(Duration::from_millis(200)).unwrap_err().errno, Some(libc::ETIMEDOUT));
    });
    with_fault(&lab, Fault::CloseAfterConnect, |c, _| {
        c.send(b"/connect,pod", None).unwrap();
        expect_eof(c);
    });
    with_fault(&lab, Fault::HostNak, |c, _| {
        assert_eq!(ask_text(c, "/connect,pod"), b"/host_nak");
        expect_eof(c);
    });
    with_fault(&lab, Fault::ErrorThenHostNak, |c, _| {
        assert_eq!(ask_text(c, "/connect,pod"), b"/error");
        assert_eq!(recv(c).bytes, b"/host_nak");
        expect_eof(c);
    });
    with_fault(&lab, Fault::FdNak, |c, _| {
        handshake(c, "pod");
        assert_eq!(ask_text(c, fd_req), b"/fd_nak");
        assert_eq!(ask_text(c, "/fin"), b"/fin_ack");
        expect_eof(c);
    });
    with_fault(&lab, Fault::Nak, |c, _| {
        assert_eq!(ask_text(c, "/connect,pod"), b"/nak");
        assert_eq!(ask_text(c, "/version"), b"/nak");
        assert_eq!(ask_text(c, fd_req), b"/nak");
        assert_eq!(ask_text(c, "/fin"), b"/nak");
    });
    with_fault(&lab, Fault::FdAckWithoutFd, |c, _| {
        handshake(c, "pod");
        let r = ask(c, fd_req.as_bytes());
        assert_eq!(r.bytes, b"/fd_ack");
        assert!(r.fd.is_none() && !r.fds_dropped);
        assert_eq!(ask_text(c, "/xsk_map_fd,lo"), b"/fd_nak");
    });
    with_fault(&lab, Fault::Garbage, |c, _| {
        let r = ask(c, b"/connect,pod");
        assert_eq!(r.bytes, GARBAGE);
        assert_eq!(r.bytes, [0xff, 0xfe, 0x00, 0x01, 0x80, 0xc3, 0x28, 0x7f]);
    });
    with_fault(&lab, Fault::OverlongRecord, |c, _| {
        // A 128-byte client buffer sees it truncated ...
        let r = ask(c, b"/connect,pod");
        assert!(r.truncated, "200-byte record into a 128-byte buffer");
        assert_eq!(r.bytes.len(), 128);
        assert!(r.bytes.starts_with(b"/host_ok") && r.bytes[8..].iter().all(|&b| b == b'x'));
        // ... a larger buffer sees all 200 bytes.
        c.send(b"/version", None).unwrap();
        let r = c.recv_with_limit(T, 512).unwrap().unwrap();
        assert!(!r.truncated);
        assert_eq!(r.bytes.len(), OVERLONG_LEN);
        assert_eq!(&r.bytes[..3], b"0.1");
        assert!(r.bytes[3..].iter().all(|&b| b == b'x'));
    });
    with_fault(&lab, Fault::Stall(Duration::from_millis(800)), |c, _| {
        c.send(b"/connect,pod", None).unwrap();
        let t = Instant::now();
        assert_eq!(c.recv(Duration::from_millis(300)).unwrap_err().errno, Some(libc::ETIMEDOUT));
        let r = recv(c);
        assert_eq!(r.bytes, b"/host_ok");
        assert!(t.elapsed() >= Duration::from_millis(750), "{:?}", t.elapsed());
        // A stalled reply does not hold up stop().
        c.send(b"/version", None).unwrap();
    });
    with_fault(&lab, Fault::FdAckWithSuffix, |c, server| {
        handshake(c, "pod");
        let r = ask(c, fd_req.as_bytes());
        let text = String::from_utf8(r.bytes.clone()).unwrap();
        let n = text.strip_prefix("/fd_ack,").expect("/fd_ack,<n>");
        assert!(!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()), "{text}");
        let map = XskMap::from_fd(r.fd.expect("fd attached")).unwrap();
        assert_eq!(map.id(), server.devices()[0].map_id);
    });
    with_fault(&lab, Fault::TrailingNul, |c, server| {
        assert_eq!(ask_text(c, "/connect,pod"), b"/host_ok\0");
        assert_eq!(ask_text(c, "/version"), b"0.1\0");
        let r = ask(c, fd_req.as_bytes());
        assert_eq!(r.bytes, b"/fd_ack\0");
        assert_eq!(XskMap::from_fd(r.fd.unwrap()).unwrap().id(), server.devices()[0].map_id);
        assert_eq!(ask_text(c, "/fin"), b"/fin_ack\0");
        expect_eof(c);
    });
}

#[test]
fn handshake_state_machine_follows_the_device_plugin() {
    let lab = lab();
    let dir = TempDir::new("/tmp", "sm");
    let mut cfg = config(&lab, &dir.0);
    cfg.sessions = 0; // re-arm for every case
    cfg.pods = PodPolicy::Custom(Arc::new(|pod: &str| match pod {
        "good" | "goodpod" => PodVerdict::Valid,
        "broken" => PodVerdict::Error,
        _ => PodVerdict::Invalid,
    }));
    let server = DpServer::start(cfg).unwrap();
    let pod = pod_sock(&lab, &dir.0);
    let session = || connect(&pod);

    // First record without /connect: closed without a reply.
    let c = session();
    c.send(b"/version", None).unwrap();
    expect_eof(&c);
    // Contains /connect but malformed: /host_nak, close.
    for bad in ["/connect", "/connect,a,b", "/connect ,good", "x/connect,good"] {
        let c = session();
        assert_eq!(ask_text(&c, bad), b"/host_nak", "{bad}");
        expect_eof(&c);
    }
    // Validator: invalid, error (two records), valid with spaces stripped.
    let c = session();
    assert_eq!(ask_text(&c, "/connect,stranger"), b"/host_nak");
    expect_eof(&c);
    let c = session();
    assert_eq!(ask_text(&c, "/connect,broken"), b"/error");
    assert_eq!(recv(&c).bytes, b"/host_nak");
    expect_eof(&c);
    let c = session();
    assert_eq!(ask_text(&c, "/connect, good pod "), b"/host_ok");
    // An fd on an unrelated record is closed by the server, not kept.
    let (x, _y) = SeqpacketClient::pair().unwrap();
    c.send(b"/version", Some(x.as_fd())).unwrap();
    assert_eq!(recv(&c).bytes, b"0.1");
    drop(c); // client goes away without /fin: the session ends on EOF
    assert!(server.wait_sessions(8, T), "{:#?}", server.log());
    // Each session had its own host socket.
    let info = server.info();
    assert!(info.allocations >= 9 && info.listening, "{info:?}");
    server.stop();
    assert!(!exists(&pod));
}

#[test]
fn accept_and_read_deadlines_end_the_allocation() {
    let lab = lab();
    let dir = TempDir::new("/tmp", "deadline");
    let mut cfg = config(&lab, &dir.0);
    cfg.accept_timeout = Some(Duration::from_millis(300));
    let server = DpServer::start(cfg).unwrap();
    let host = server.socket_path().unwrap();
    assert!(server.wait_finished(T), "accept deadline ends the only allocation");
    assert!(!exists(&host));
    let e = assert_refused(&pod_sock(&lab, &dir.0));
    assert_eq!(e.code, Code::DevicePlugin);
    assert!(server.log().iter().any(|l| l.contains("Listener timed out")));
    assert_eq!(server.sessions_served(), 0);
    server.stop();

    let dir = TempDir::new("/tmp", "deadline2");
    let mut cfg = config(&lab, &dir.0);
    cfg.read_timeout = Some(Duration::from_millis(300));
    let server = DpServer::start(cfg).unwrap();
    let c = connect(&pod_sock(&lab, &dir.0));
    let t = Instant::now();
    expect_eof(&c); // nothing sent: closed after the read deadline
    assert!(t.elapsed() >= Duration::from_millis(250) && t.elapsed() < Duration::from_secs(3));
    // The deadline is per read: a slow but steady client is served.
    let dir = TempDir::new("/tmp", "deadline3");
    let mut cfg = config(&lab, &dir.0);
    cfg.read_timeout = Some(Duration::from_millis(400));
    drop(server);
    let server = DpServer::start(cfg).unwrap();
    let c = connect(&pod_sock(&lab, &dir.0));
    handshake(&c, "pod");
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(ask_text(&c, "/version"), b"0.1");
    }
    assert_eq!(ask_text(&c, "/fin"), b"/fin_ack");
    server.stop();
}

#[test]
fn second_client_is_refused_and_rearm_serves_sessions_back_to_back() {
    let lab = lab();
    let dir = TempDir::new("/tmp", "rearm");
    let server = DpServer::start(config(&lab, &dir.0)).unwrap();
    let pod = pod_sock(&lab, &dir.0);
    let c = connect(&pod);
    handshake(&c, "pod");
    // Only one client per allocation: a second one is refused at once.
    assert_refused(&pod);
    assert_eq!(ask_text(&c, "/fin"), b"/fin_ack");
    server.stop();

    let dir = TempDir::new("/tmp", "rearm2");
    let mut cfg = config(&lab, &dir.0);
    cfg.sessions = 3;
    let server = DpServer::start(cfg).unwrap();
    let pod = pod_sock(&lab, &dir.0);
    let mut hosts = Vec::new();
    for i in 0..3 {
        hosts.push(server.socket_path().unwrap());
        let c = connect(&pod);
        handshake(&c, &format!("pod{i}"));
        let r = ask(&c, format!("/xsk_map_fd,{}", lab.port_if).as_bytes());
        assert_eq!((r.bytes.as_slice(), r.fd.is_some()), (&b"/fd_ack"[..], true));
        assert_eq!(ask_text(&c, "/fin"), b"/fin_ack");
        expect_eof(&c);
    }
    hosts.sort();
    hosts.dedup();
    assert_eq!(hosts.len(), 3, "a new host socket per allocation");
    assert!(server.wait_finished(T));
    assert_eq!(server.info().sessions_served, 3);
    assert!(hosts.iter().all(|h| !exists(h)));
    assert_refused(&pod);
    server.stop();
}

/// Run `f` in a forked child as `uid`/`gid` and return the line it reports.
fn as_user(uid: u32, f: impl FnOnce() -> String) -> String {
    common::run_in_child(move || {
        // Raw syscalls: the child has one thread, so per-thread ids are the process's.
        // SAFETY: plain syscalls with valid arguments.
        unsafe {
            if libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) != 0
                || libc::syscall(libc::SYS_setresgid, uid, uid, uid) != 0
                || libc::syscall(libc::SYS_setresuid, uid, uid, uid) != 0
            {
                return format!("setresuid failed: {}", std::io::Error::last_os_error());
            }
        }
        f()
    })
}

#[test]
fn uid_allowlist_rejects_other_peers_before_reading() {
    let lab = lab();
    let dir = TempDir::new("/tmp", "uid");
    let mut cfg = config(&lab, &dir.0);
    cfg.owner_uid = Some(65534);
    cfg.allowed_uids = Some(vec![0]);
    let server = DpServer::start(cfg).unwrap();
    let pod = pod_sock(&lab, &dir.0);
    assert_eq!(std::fs::metadata(&pod).unwrap().uid(), 65534, "socket file handed to the client uid");

    // uid 65534 may open the socket file but is not on the allowlist.
    let pod2 = pod.clone();
    let report = as_user(65534, move || {
        let c = match SeqpacketClient::connect(&pod2, T) {
            Ok(c) => c,
            Err(e) => return format!("connect failed: {}", e.message),
        };
        let _ = c.send(b"/connect,pod", None); // may fail: the server closes at once
        match c.recv(T) {
            Ok(None) => "EOF".into(),
            Ok(Some(r)) => format!("reply {:?}", String::from_utf8_lossy(&r.bytes)),
            Err(e) => format!("error {}", e.message),
        }
    });
    assert_eq!(report, "EOF");
    assert_eq!(server.info().rejected_peers, 1);
    assert!(server.log().iter().any(|l| l.contains("rejected client") && l.contains("uid 65534")), "{:#?}", server.log());
    // The rejected peer did not use up the allocation: root still gets in.
    let c = connect(&pod);
    handshake(&c, "pod");
    assert_eq!(ask_text(&c, "/fin"), b"/fin_ack");
    server.stop();

    // The other way round: only 65534 allowed, which is served; root is not.
    let dir = TempDir::new("/tmp", "uid2");
    let mut cfg = config(&lab, &dir.0);
    cfg.owner_uid = Some(65534);
    cfg.allowed_uids = Some(vec![65534]);
    let server = DpServer::start(cfg).unwrap();
    let pod = pod_sock(&lab, &dir.0);
    let c = connect(&pod);
    let _ = c.send(b"/connect,pod", None);
    expect_eof(&c);
    let pod2 = pod.clone();
    let report = as_user(65534, move || {
        let c = match SeqpacketClient::connect(&pod2, T) {
            Ok(c) => c,
            Err(e) => return format!("connect failed: {}", e.message),
        };
        let mut out = String::new();
        for req in ["/connect,pod", "/version", "/fin"] {
            c.send(req.as_bytes(), None).unwrap();
            match c.recv(T) {
                Ok(Some(r)) => out.push_str(&format!("{} ", String::from_utf8_lossy(&r.bytes))),
                other => return format!("{out} then {other:?}"),
            }
        }
        out
    });
    assert_eq!(report, "/host_ok 0.1 /fin_ack ");
    assert!(server.wait_sessions(1, T));
    assert_eq!(server.info().rejected_peers, 1);
    server.stop();
}

// ---- pinned mode ----

const PIN_HELPER: &str = "dp_pinned_map_unprivileged_helper";

fn is_mountpoint(p: &Path) -> bool {
    let m = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let s = p.to_str().unwrap();
    m.lines().any(|l| l.split(' ').nth(4) == Some(s))
}

#[test]
fn pinned_map_is_mounted_owned_and_usable_unprivileged_and_stop_cleans_up() {
    let lab = lab();
    let base = PathBuf::from(format!("/run/afxdp-dp-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
    let mut cfg = DpConfig::new(vec![DpDevice::in_netns(&lab.port_if, lab.port_ns_path())]);
    cfg.uds = None;
    cfg.pinned = Some(PinConfig { pin_dir: base.clone() });
    cfg.owner_uid = Some(65534);
    let server = DpServer::start(cfg).unwrap();
    let info = server.info();
    assert_eq!(info.bpffs_mounted.as_deref(), Some(base.as_path()));
    assert!(is_mountpoint(&base));
    let pin = base.join(&lab.port_if).join("xsks_map");
    assert_eq!(info.devices[0].pin_path.as_deref(), Some(pin.as_path()));
    let meta = std::fs::metadata(&pin).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (65534, 0o600));
    assert_eq!(XskMap::open_pinned(&pin).unwrap().id(), info.devices[0].map_id);

    // uid 65534 with only CAP_NET_RAW + CAP_IPC_LOCK opens a port on the pin.
    let bin = TempDir::new("/run", "bin");
    let exe = bin.0.join("dp-test");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.port_ns, "setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(["--inh-caps=-all,+net_raw,+ipc_lock", "--ambient-caps=-all,+net_raw,+ipc_lock"])
        .args(["--bounding-set=-all,+net_raw,+ipc_lock"])
        .arg(&exe)
        .args([PIN_HELPER, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("AFXDP_HELPER_PIN", &pin)
        .env("AFXDP_HELPER_IF", &lab.port_if)
        .env("AFXDP_HELPER_MAP_ID", info.devices[0].map_id.to_string())
        .output()
        .expect("run ip netns exec … setpriv");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("HELPER-DONE") && text.contains("1 passed"), "helper:\n{text}");

    let ifindex = info.devices[0].ifindex;
    assert!(prog_on(&lab, ifindex).is_some());
    server.stop();
    assert!(!exists(&pin));
    assert!(!is_mountpoint(&base), "the bpffs it mounted is unmounted");
    assert!(!exists(&base), "the directory it created is removed");
    assert_eq!(prog_on(&lab, ifindex), None);
}

/// Runs only inside the test above, as uid 65534 with CAP_NET_RAW + CAP_IPC_LOCK.
#[test]
#[ignore = "helper: run by pinned_map_is_mounted_owned_and_usable_unprivileged_and_stop_cleans_up"]
fn dp_pinned_map_unprivileged_helper() {
    let pin = std::env::var("AFXDP_HELPER_PIN").expect("run by the parent test only");
    // SAFETY: getuid-family calls cannot fail and touch no memory.
    assert_ne!(unsafe { libc::geteuid() }, 0, "the helper must run unprivileged");
    let map = XskMap::open_pinned(&pin).unwrap();
    assert_eq!(map.id().to_string(), std::env::var("AFXDP_HELPER_MAP_ID").unwrap());
    // The unprivileged DPDK use_pinned_map flow: a port on the pinned map.
    let port = Port::open(OpenRequest {
        netns: None,
        sockets: SocketSetConfig {
            ifname: std::env::var("AFXDP_HELPER_IF").unwrap(),
            rx_size: 256,
            tx_size: 256,
            umem: UmemConfig { frame_size: 2048, frame_count: 512, fill_size: 256, comp_size: 256, ..Default::default() },
            ..Default::default()
        },
        map: MapSource::Pinned(pin.into()),
        multi_buffer: Default::default(),
    })
    .unwrap();
    assert!(port.program().is_none());
    // Privileged operations stay refused.
    assert_eq!(map_create(BPF_MAP_TYPE_XSKMAP, 4, 4, 4, "nope").unwrap_err().code, Code::Permission);
    println!("HELPER-DONE");
}

#[test]
fn both_modes_on_an_existing_bpffs_and_stop_from_another_thread() {
    let lab = lab();
    let dir = TempDir::new("/tmp", "both");
    let fs = PathBuf::from(format!("/run/afxdp-dp-fs-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&fs).unwrap();
    let out = Command::new("mount").args(["-t", "bpf", "bpf"]).arg(&fs).output().unwrap();
    assert!(out.status.success(), "mount -t bpf: {}", String::from_utf8_lossy(&out.stderr));

    let mut cfg = config(&lab, &dir.0);
    cfg.pinned = Some(PinConfig { pin_dir: fs.clone() });
    cfg.fault = Fault::Silent;
    cfg.read_timeout = Some(Duration::from_secs(30));
    let server = Arc::new(DpServer::start(cfg).unwrap());
    let info = server.info();
    assert_eq!(info.bpffs_mounted, None, "an existing bpffs is used as is");
    let pin = info.devices[0].pin_path.clone().unwrap();
    // The map behind the pin and behind the socket is the same.
    assert_eq!(XskMap::open_pinned(&pin).unwrap().id(), info.devices[0].map_id);

    // A session blocked in a 30 s read; stop() from another thread ends it at once.
    let c = connect(&pod_sock(&lab, &dir.0));
    c.send(b"/connect,pod", None).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let s2 = server.clone();
    let t = Instant::now();
    std::thread::spawn(move || s2.stop()).join().unwrap();
    assert!(t.elapsed() < Duration::from_secs(2), "stop took {:?}", t.elapsed());
    expect_eof(&c);
    assert!(server.info().stopped && server.info().finished);
    assert!(!exists(&pin) && !exists(&fs.join(&lab.port_if)));
    assert!(is_mountpoint(&fs), "a bpffs it did not mount stays mounted");
    assert_eq!(prog_on(&lab, info.devices[0].ifindex), None);
    server.stop();
    let _ = Command::new("umount").arg(&fs).output();
    let _ = std::fs::remove_dir(&fs);
}

#[test]
fn start_failures_leave_nothing_behind() {
    let lab = lab();
    let dir = TempDir::new("/tmp", "fail");
    // Missing interface: a coded error naming it; no directories created.
    let mut cfg = config(&lab, &dir.0);
    cfg.devices.push(DpDevice::in_netns("nosuchif0", lab.port_ns_path()));
    let e = DpServer::start(cfg).unwrap_err();
    assert_eq!(e.code, Code::NoSuchInterface, "{}", e.message);
    assert!(e.message.contains("nosuchif0"), "{}", e.message);
    let ifindex = {
        let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
        Netdev::lookup(&lab.port_if).unwrap().ifindex
    };
    assert_eq!(prog_on(&lab, ifindex), None, "the first device's program was detached again");
    assert!(!exists(&dir.0.join("host")) && !exists(&dir.0.join("pod")));

    // Stale pod socket path: refused, program detached, created dirs removed.
    let stale = pod_sock(&lab, &dir.0);
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(&stale, b"").unwrap();
    let e = DpServer::start(config(&lab, &dir.0)).unwrap_err();
    assert!(e.message.contains("already exists"), "{}", e.message);
    assert!(exists(&stale), "someone else's file is never removed");
    assert!(!exists(&dir.0.join("host")));
    assert_eq!(prog_on(&lab, ifindex), None);

    // A non-empty pin directory that is not a bpffs is not mounted over.
    let full = TempDir::new("/run", "full");
    std::fs::write(full.0.join("keep"), b"x").unwrap();
    let mut cfg = config(&lab, &dir.0.join("other"));
    cfg.pinned = Some(PinConfig { pin_dir: full.0.clone() });
    let e = DpServer::start(cfg).unwrap_err();
    assert!(e.message.contains("not a bpffs and not empty"), "{}", e.message);
    assert!(!is_mountpoint(&full.0) && exists(&full.0.join("keep")));

    // Names that could escape their directory are refused up front.
    let mut cfg = config(&lab, &dir.0);
    cfg.devices = vec![DpDevice::new("../../etc")];
    assert_eq!(DpServer::start(cfg).unwrap_err().code, Code::InvalidArgument);
}

#[test]
fn nothing_listening_and_stream_listeners_are_distinct_client_errors() {
    let dir = TempDir::new("/tmp", "stream");
    let e = SeqpacketClient::connect(dir.0.join("none.sock"), T).unwrap_err();
    assert_eq!((e.code, e.errno), (Code::DevicePlugin, Some(libc::ENOENT)));
    let s = StreamListener::bind(dir.0.join("stream.sock")).unwrap();
    let e = SeqpacketClient::connect(s.path(), T).unwrap_err();
    assert_eq!((e.code, e.errno), (Code::DevicePlugin, Some(libc::EPROTOTYPE)), "{}", e.message);
    assert!(e.message.contains("SOCK_SEQPACKET"), "{}", e.message);
    let p = s.path().to_path_buf();
    drop(s);
    assert!(!exists(&p));
}

/// Pod paths on another file system than the host socket are symlinks
/// (a socket cannot be hard-linked across file systems); a pod dir inside
/// the pin dir is refused up front (bpffs refuses names with a '.').
#[test]
fn pod_paths_across_file_systems_are_symlinks_and_bpffs_pod_dirs_are_refused() {
    let lab = lab();
    let dir = TempDir::new("/tmp", "xfs");
    let shm = TempDir::new("/dev/shm", "xfs-host");
    let mut cfg = config(&lab, &dir.0);
    cfg.uds.as_mut().unwrap().host_dir = shm.0.join("host");
    let server = DpServer::start(cfg).unwrap();
    let sock = pod_sock(&lab, &dir.0);
    assert!(std::fs::symlink_metadata(&sock).unwrap().file_type().is_symlink());
    assert!(server.log().iter().any(|l| l.contains("is a symlink")), "{:#?}", server.log());
    let c = connect(&sock);
    handshake(&c, "pod");
    assert_eq!(ask_text(&c, "/fin"), b"/fin_ack");
    // Dangling once the host socket is gone: ENOENT rather than ECONNREFUSED.
    assert_eq!(SeqpacketClient::connect(&sock, T).unwrap_err().errno, Some(libc::ENOENT));
    server.stop();
    assert!(!exists(&sock) && !exists(&shm.0.join("host")));

    let base = PathBuf::from("/run/afxdp-dp-never-created");
    let mut cfg = config(&lab, &dir.0);
    cfg.uds.as_mut().unwrap().pod_dir = Some(base.clone());
    cfg.pinned = Some(PinConfig { pin_dir: base.clone() });
    let e = DpServer::start(cfg).unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(e.message.contains("bpffs"), "{}", e.message);
    assert!(!exists(&base));
}

/// Deviations 8 and 9: sessions run concurrently, each with a total
/// deadline from accept. A silent client and a slow-but-steady one do not
/// delay a third client's handshake, and both are closed at the deadline.
#[test]
fn silent_and_slow_clients_never_delay_another_handshake() {
    let lab = lab();
    let dir = TempDir::new("/tmp", "concurrent");
    let mut cfg = config(&lab, &dir.0);
    cfg.sessions = 0;
    cfg.session_timeout = Some(Duration::from_millis(1500));
    let server = DpServer::start(cfg).unwrap();
    let pod = pod_sock(&lab, &dir.0);
    let t0 = Instant::now();
    let silent = connect(&pod);
    let slow = connect(&pod);
    handshake(&slow, "slow");
    let slow_thread = std::thread::spawn(move || {
        // /version every 300 ms: each read is well within the 20 s read deadline.
        let mut answered = 0;
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(300));
            if slow.send(b"/version", None).is_err() {
                break;
            }
            match slow.recv(T) {
                Ok(Some(r)) if r.bytes == b"0.1" => answered += 1,
                _ => break,
            }
        }
        answered
    });
    let t = Instant::now();
    let c = connect(&pod);
    handshake(&c, "third");
    let r = ask(&c, format!("/xsk_map_fd,{}", lab.port_if).as_bytes());
    assert_eq!((r.bytes.as_slice(), r.fd.is_some()), (&b"/fd_ack"[..], true));
    assert_eq!(ask_text(&c, "/fin"), b"/fin_ack");
    assert!(t.elapsed() < Duration::from_secs(1), "third handshake took {:?}", t.elapsed());
    assert!(server.info().active_sessions >= 2);
    expect_eof(&silent);
    let closed = t0.elapsed();
    assert!(closed >= Duration::from_millis(1400) && closed < Duration::from_secs(4), "silent closed after {closed:?}");
    let answered = slow_thread.join().unwrap();
    assert!((2..=6).contains(&answered), "the slow client was answered {answered} times, then closed at the deadline");
    assert!(server.wait_sessions(3, T));
    assert!(server.log().iter().any(|l| l.contains("total deadline")), "{:#?}", server.log());
    server.stop();
}

/// Deviation 8: at the concurrency limit the next client waits (unaccepted)
/// until a session ends, then is served.
#[test]
fn clients_past_the_concurrency_limit_wait_for_a_slot() {
    let lab = lab();
    let dir = TempDir::new("/tmp", "limit");
    let mut cfg = config(&lab, &dir.0);
    cfg.sessions = 0;
    cfg.max_concurrent = 1;
    let server = DpServer::start(cfg).unwrap();
    let pod = pod_sock(&lab, &dir.0);
    let first = connect(&pod);
    handshake(&first, "first");
    let second = connect(&pod);
    second.send(b"/connect,second", None).unwrap();
    assert!(second.recv(Duration::from_millis(300)).is_err(), "no reply while the only slot is taken");
    assert_eq!(ask_text(&first, "/fin"), b"/fin_ack");
    assert_eq!(recv(&second).bytes, b"/host_ok");
    assert!(server.log().iter().any(|l| l.contains("1 sessions running (the limit)")), "{:#?}", server.log());
    server.stop();
}

/// Deviation 10: a server that did not detach (a crash, or keep_programs)
/// leaves its program attached; the next one adopts it with its map, and
/// removes the stale socket files left behind.
#[test]
fn a_restarted_server_adopts_its_program_and_clears_stale_sockets() {
    let lab = lab();
    let dir = TempDir::new("/tmp", "adopt");
    let state = TempDir::new("/tmp", "state");
    let mut cfg = config(&lab, &dir.0);
    cfg.state_dir = state.0.clone();
    cfg.keep_programs = true;
    let first = DpServer::start(cfg.clone()).unwrap();
    let dev = first.info().devices[0].clone();
    assert!(!dev.adopted);
    let pod = pod_sock(&lab, &dir.0);
    // A listener that dies without removing its file, as after kill -9.
    let host = first.socket_path().unwrap();
    let stale_host = dir.0.join("host").join("00000000-0000-4000-8000-000000000000.sock");
    std::fs::hard_link(&host, &stale_host).unwrap();
    // The record is locked while the server runs: no second server.
    let e = DpServer::start(cfg.clone()).unwrap_err();
    assert!(e.message.contains("already served by another running afxdp dp-serve"), "{}", e.message);
    first.stop();
    assert_eq!(prog_on(&lab, dev.ifindex), Some(dev.program_id), "keep_programs leaves it attached");
    // Fake what kill -9 leaves: the pod path as a stale socket.
    std::fs::create_dir_all(pod.parent().unwrap()).unwrap();
    std::fs::hard_link(&stale_host, &pod).unwrap();
    assert_refused(&pod);

    cfg.keep_programs = false;
    let second = DpServer::start(cfg).unwrap();
    let d = second.info().devices[0].clone();
    assert!(d.adopted);
    assert_eq!((d.program_id, d.map_id), (dev.program_id, dev.map_id), "same program, same map");
    assert!(!exists(&stale_host), "the stale host socket was removed");
    let c = connect(&pod);
    handshake(&c, "pod");
    let r = ask(&c, format!("/xsk_map_fd,{}", lab.port_if).as_bytes());
    assert_eq!(XskMap::from_fd(r.fd.unwrap()).unwrap().id(), dev.map_id);
    assert_eq!(ask_text(&c, "/fin"), b"/fin_ack");
    assert!(second.log().iter().any(|l| l.contains("removed the stale")), "{:#?}", second.log());
    second.stop();
    assert_eq!(prog_on(&lab, dev.ifindex), None, "a graceful stop detaches the adopted program");
    assert_eq!(std::fs::read_dir(&state.0).unwrap().count(), 0, "no record left");
}

/// A program dp-serve did not attach (here: one an afxdp port attached) is
/// never adopted, replaced or detached: start fails naming it.
#[test]
fn a_program_dp_serve_did_not_attach_is_never_replaced() {
    let lab = lab();
    let dir = TempDir::new("/tmp", "foreign");
    let state = TempDir::new("/tmp", "state");
    let ifindex = {
        let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
        Netdev::lookup(&lab.port_if).unwrap().ifindex
    };
    let foreign = {
        let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
        afxdp_core::bpf::XdpProgram::attach_redirect(ifindex, afxdp_core::bpf::XdpMode::Auto).unwrap().0
    };
    let id = foreign.prog_id();
    let mut cfg = config(&lab, &dir.0);
    cfg.state_dir = state.0.clone();
    let e = DpServer::start(cfg).unwrap_err();
    assert_eq!(e.code, Code::Bpf, "{}", e.message);
    assert!(e.message.contains(&format!("program id {id} is already attached")), "{}", e.message);
    assert!(e.message.contains("was not attached by afxdp dp-serve"), "{}", e.message);
    assert_eq!(prog_on(&lab, ifindex), Some(id), "left alone");
    assert!(!exists(&dir.0.join("pod")) && !exists(&dir.0.join("host")));
    assert_eq!(std::fs::read_dir(&state.0).unwrap().count(), 0, "no record left");
    drop(foreign);
}

/// A program removed from under the server (DPDK's eth_dev_close, `ip link
/// set dev X xdp off`) is re-attached, same program and map, within the
/// check interval.
#[test]
fn a_removed_program_is_reattached() {
    let lab = lab();
    let dir = TempDir::new("/tmp", "removed");
    let mut cfg = config(&lab, &dir.0);
    cfg.check_interval = Some(Duration::from_millis(100));
    let server = DpServer::start(cfg).unwrap();
    let dev = server.info().devices[0].clone();
    let ip = |args: &[&str]| {
        let out = Command::new("ip").args(["-n", &lab.port_ns]).args(args).output().unwrap();
        assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    ip(&["link", "set", "dev", &lab.port_if, "xdp", "off"]);
    let t = Instant::now();
    while server.info().devices[0].reattached == 0 && t.elapsed() < T {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(t.elapsed() < Duration::from_secs(1), "re-attached after {:?}", t.elapsed());
    assert_eq!(prog_on(&lab, dev.ifindex), Some(dev.program_id), "the same program (and so the same map)");
    assert!(server.log().iter().any(|l| l.contains("re-attached")), "{:#?}", server.log());
    server.stop();
    assert_eq!(prog_on(&lab, dev.ifindex), None);
}

/// A socket file someone listens on is never removed: start fails naming it.
#[test]
fn a_live_socket_in_the_host_directory_is_an_error_naming_it() {
    let lab = lab();
    let other = Lab::new(1);
    let dir = TempDir::new("/tmp", "live");
    let first = DpServer::start(config(&lab, &dir.0)).unwrap();
    let live = first.socket_path().unwrap();
    // Another interface, the same host directory.
    let mut cfg = config(&other, &dir.0);
    cfg.uds.as_mut().unwrap().pod_dir = Some(dir.0.join("pod2"));
    let e = DpServer::start(cfg).unwrap_err();
    assert!(e.message.contains(&format!("host socket {} is live", live.display())), "{}", e.message);
    assert!(exists(&live));
    let ifindex = {
        let _ns = NetnsGuard::enter(other.port_ns_path()).unwrap();
        Netdev::lookup(&other.port_if).unwrap().ifindex
    };
    let _ns = NetnsGuard::enter(other.port_ns_path()).unwrap();
    assert_eq!(query(ifindex).unwrap(), None, "the failed start detached what it attached");
    drop(_ns);
    first.stop();
}

/// Pins a dead server left: the pin of the map it adopts is kept; the pin
/// of its recorded map once no program feeds it is replaced.
#[test]
fn pins_left_by_a_dead_server_are_kept_when_adopted_and_replaced_when_stale() {
    let lab = lab();
    let dir = TempDir::new("/tmp", "pins");
    let state = TempDir::new("/tmp", "state");
    let fs = PathBuf::from(format!("/run/afxdp-dp-fs-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&fs).unwrap();
    let out = Command::new("mount").args(["-t", "bpf", "bpf"]).arg(&fs).output().unwrap();
    assert!(out.status.success(), "mount -t bpf: {}", String::from_utf8_lossy(&out.stderr));
    let mut cfg = config(&lab, &dir.0);
    cfg.pinned = Some(PinConfig { pin_dir: fs.clone() });
    cfg.state_dir = state.0.clone();
    cfg.keep_programs = true;

    let first = DpServer::start(cfg.clone()).unwrap();
    let dev = first.info().devices[0].clone();
    let pin = dev.pin_path.clone().unwrap();
    let map = XskMap::open_pinned(&pin).unwrap();
    first.stop();
    // What kill -9 leaves: the program (kept) and the pin.
    std::fs::create_dir_all(pin.parent().unwrap()).unwrap();
    map.pin(&pin).unwrap();
    let second = DpServer::start(cfg.clone()).unwrap();
    let d = second.info().devices[0].clone();
    assert!(d.adopted);
    assert_eq!(XskMap::open_pinned(&pin).unwrap().id(), dev.map_id, "the adopted map's pin is kept");
    assert!(second.log().iter().any(|l| l.contains("kept the pin")), "{:#?}", second.log());
    second.stop();

    // Now the program is gone too (removed by hand): the recorded map's pin is stale.
    std::fs::create_dir_all(pin.parent().unwrap()).unwrap();
    map.pin(&pin).unwrap();
    let ip = Command::new("ip").args(["-n", &lab.port_ns, "link", "set", "dev", &lab.port_if, "xdp", "off"]).output().unwrap();
    assert!(ip.status.success());
    cfg.keep_programs = false;
    let third = DpServer::start(cfg).unwrap();
    let d = third.info().devices[0].clone();
    assert!(!d.adopted);
    assert_ne!(d.map_id, dev.map_id);
    assert_eq!(XskMap::open_pinned(&pin).unwrap().id(), d.map_id, "the stale pin was replaced");
    assert!(third.log().iter().any(|l| l.contains("removed the stale pin")), "{:#?}", third.log());
    third.stop();
    assert!(!exists(&pin));
    assert_eq!(prog_on(&lab, d.ifindex), None);
    let _ = Command::new("umount").arg(&fs).output();
    let _ = std::fs::remove_dir(&fs);
}

/// Another program in the place of the server's is reported, never replaced;
/// once it is gone the server's own is attached again.
#[test]
fn a_displacing_program_is_reported_not_replaced() {
    let lab = lab();
    let dir = TempDir::new("/tmp", "displaced");
    let mut cfg = config(&lab, &dir.0);
    cfg.check_interval = Some(Duration::from_millis(1500));
    let server = DpServer::start(cfg).unwrap();
    let dev = server.info().devices[0].clone();
    let out = Command::new("ip").args(["-n", &lab.port_ns, "link", "set", "dev", &lab.port_if, "xdp", "off"]).output().unwrap();
    assert!(out.status.success());
    let foreign = {
        let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
        afxdp_core::bpf::XdpProgram::attach_redirect(dev.ifindex, afxdp_core::bpf::XdpMode::Auto).unwrap().0
    };
    let t = Instant::now();
    while server.info().devices[0].problem.is_none() && t.elapsed() < T {
        std::thread::sleep(Duration::from_millis(20));
    }
    let info = server.info().devices[0].clone();
    let problem = info.problem.clone().unwrap_or_default();
    assert!(problem.contains(&format!("replaced by program id {}", foreign.prog_id())), "{problem}");
    assert!(!info.attached);
    assert_eq!(prog_on(&lab, dev.ifindex), Some(foreign.prog_id()), "left alone");
    drop(foreign);
    let t = Instant::now();
    while server.info().devices[0].reattached == 0 && t.elapsed() < T {
        std::thread::sleep(Duration::from_millis(20));
    }
    let info = server.info().devices[0].clone();
    assert_eq!((info.reattached, info.attached, info.problem), (1, true, None));
    assert_eq!(prog_on(&lab, dev.ifindex), Some(dev.program_id));
    server.stop();
}

/// A client that floods requests and never reads the replies blocks its
/// session in a send; stop() still returns at once.
#[test]
fn stop_is_prompt_even_with_a_session_blocked_in_a_send() {
    let lab = lab();
    let dir = TempDir::new("/tmp", "flood");
    let mut cfg = config(&lab, &dir.0);
    cfg.sessions = 0;
    let server = DpServer::start(cfg).unwrap();
    let c = Arc::new(connect(&pod_sock(&lab, &dir.0)));
    handshake(&c, "flood");
    let flood = {
        let c = c.clone();
        std::thread::spawn(move || {
            let t = Instant::now();
            let mut sent = 0;
            while t.elapsed() < Duration::from_secs(10) && c.send(b"/version", None).is_ok() {
                sent += 1;
            }
            sent
        })
    };
    // Let the replies fill the client's receive queue.
    std::thread::sleep(Duration::from_millis(1500));
    let t = Instant::now();
    server.stop();
    let took = t.elapsed();
    assert!(took < Duration::from_millis(500), "stop took {took:?}");
    let sent = flood.join().unwrap();
    assert!(sent > 100, "the client sent {sent} requests");
}
