//! The Device Plugin transport: SOCK_SEQPACKET records with SCM_RIGHTS fds.
//! No privileges needed. Every test holds SERIAL so that counting
//! /proc/self/fd (leak checks) is not disturbed by parallel tests.

use afxdp_core::dp::transport::{
    Cancel, PeerCred, SeqpacketClient, SeqpacketConn, SeqpacketListener, CLIENT_RECORD_LIMIT, SERVER_RECORD_LIMIT,
};
use afxdp_core::Code;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());
static SEQ: AtomicU32 = AtomicU32::new(0);

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let p = std::env::temp_dir().join(format!("afxdp-uds-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn memfd(name: &str) -> OwnedFd {
    let c = std::ffi::CString::new(name).unwrap();
    // SAFETY: a plain syscall on live fds and buffers of the sizes passed; the result is checked.
    let fd = unsafe { libc::memfd_create(c.as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0);
    // SAFETY: a fresh fd returned just above, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn dev_ino(fd: BorrowedFd<'_>) -> (u64, u64) {
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a plain syscall on live fds and buffers of the sizes passed; the result is checked.
    assert_eq!(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) }, 0);
    (st.st_dev, st.st_ino)
}

fn is_cloexec(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: a plain fcntl on a live fd.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) & libc::FD_CLOEXEC != 0 }
}

/// sendmsg with any number of fds (the library sends at most one).
fn send_raw(sock: BorrowedFd<'_>, bytes: &[u8], fds: &[RawFd]) {
    let mut iov = libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() };
    let payload = std::mem::size_of_val(fds) as u32;
    // SAFETY: CMSG_* macros are pure arithmetic (or stay within the buffer set up above).
    let mut cbuf = vec![0u64; unsafe { libc::CMSG_SPACE(payload) } as usize / 8 + 1];
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    // SAFETY: CMSG_* macros are pure arithmetic (or stay within the buffer set up above).
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(payload) } as _;
    // SAFETY: msg_control points at CMSG_SPACE(payload) bytes of an 8-aligned
    // buffer, so the first header and its fd payload are in bounds.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(payload) as _;
        std::ptr::copy_nonoverlapping(fds.as_ptr() as *const u8, libc::CMSG_DATA(c), payload as usize);
    }
    // SAFETY: a plain syscall on live fds and buffers of the sizes passed; the result is checked.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, 0) };
    assert_eq!(n as usize, bytes.len(), "sendmsg: {}", std::io::Error::last_os_error());
}

const T: Duration = Duration::from_secs(5);

#[test]
fn socketpair_round_trip_carries_the_same_file() {
    let _s = serial();
    let before = open_fds();
    {
        let (a, b) = SeqpacketConn::pair().unwrap();
        let file = memfd("afxdp-xskmap-stand-in");
        a.send(b"/fd_ack", Some(file.as_fd())).unwrap();
        let r = b.recv(T).unwrap().expect("a record, not EOF");
        assert_eq!(r.bytes, b"/fd_ack");
        assert!(!r.truncated && !r.fds_dropped);
        let got = r.fd.expect("fd attached");
        assert_ne!(got.as_raw_fd(), file.as_raw_fd());
        assert_eq!(dev_ino(got.as_fd()), dev_ino(file.as_fd()), "same open file");
        assert!(is_cloexec(got.as_fd()), "received fds are close-on-exec");

        // Records keep their boundaries and the fd stays with its record.
        b.send(b"/connect,pod-a", None).unwrap();
        b.send(b"/version", None).unwrap();
        assert_eq!(a.recv(T).unwrap().unwrap().bytes, b"/connect,pod-a");
        let v = a.recv(T).unwrap().unwrap();
        assert_eq!(v.bytes, b"/version");
        assert!(v.fd.is_none());
    }
    assert_eq!(open_fds(), before, "no fd leaked");
}

#[test]
fn listener_and_client_over_a_path() {
    let _s = serial();
    let dir = TempDir::new();
    let path = dir.0.join("afxdp.sock");
    let before = open_fds();
    {
        let listener = SeqpacketListener::bind(&path, 0o600, Some((65534, 65534))).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!((meta.uid(), meta.gid()), (65534, 65534));

        let server = std::thread::spawn({
            let l = listener;
            move || {
                let (conn, cred) = l.accept(T).unwrap();
                assert_eq!(conn.record_limit(), SERVER_RECORD_LIMIT);
                let req = conn.recv(T).unwrap().unwrap();
                assert_eq!(req.bytes, b"/connect,mypod");
                let file = memfd("map");
                conn.send(b"/host_ok", None).unwrap();
                let req = conn.recv(T).unwrap().unwrap();
                assert_eq!(req.bytes, b"/xsk_map_fd,eth0");
                conn.send(b"/fd_ack", Some(file.as_fd())).unwrap();
                let id = dev_ino(file.as_fd());
                // EOF once the client is gone.
                assert!(conn.recv(T).unwrap().is_none());
                (cred, id, l)
            }
        });
        let client = SeqpacketClient::connect(&path, T).unwrap();
        assert_eq!(client.record_limit(), CLIENT_RECORD_LIMIT);
        client.send(b"/connect,mypod", None).unwrap();
        assert_eq!(client.recv(T).unwrap().unwrap().bytes, b"/host_ok");
        client.send(b"/xsk_map_fd,eth0", None).unwrap();
        let ack = client.recv(T).unwrap().unwrap();
        assert_eq!(ack.bytes, b"/fd_ack");
        let fd = ack.fd.expect("map fd");
        let server_cred = client.peer_cred().unwrap();
        drop(client);
        let (cred, id, listener): (PeerCred, _, SeqpacketListener) = server.join().unwrap();
        assert_eq!(dev_ino(fd.as_fd()), id);
        // SAFETY: getuid-family calls cannot fail and touch no memory.
        let me = PeerCred { pid: std::process::id() as i32, uid: unsafe { libc::geteuid() }, gid: unsafe { libc::getegid() } };
        assert_eq!(cred, me);
        assert_eq!(server_cred, me);
        assert_eq!(listener.path(), path);
        drop(listener);
        assert!(!path.exists(), "the listener removes its socket file");
    }
    assert_eq!(open_fds(), before, "no fd leaked");
}

#[test]
fn oversized_records_are_reported_as_truncated() {
    let _s = serial();
    let (a, mut b) = SeqpacketConn::pair().unwrap();
    b.set_record_limit(SERVER_RECORD_LIMIT);
    let long = vec![b'x'; 100];
    a.send(&long, None).unwrap();
    a.send(b"/fin", None).unwrap();
    let r = b.recv(T).unwrap().unwrap();
    assert!(r.truncated);
    assert_eq!(r.bytes.len(), SERVER_RECORD_LIMIT);
    // The tail is dropped, the next record is intact.
    let r = b.recv(T).unwrap().unwrap();
    assert_eq!(r.bytes, b"/fin");
    assert!(!r.truncated);
    // An explicit limit per call.
    a.send(b"/config_busy_poll,20,64", None).unwrap();
    let r = b.recv_with_limit(T, 8).unwrap().unwrap();
    assert!(r.truncated);
    assert_eq!(r.bytes, b"/config_");
}

#[test]
fn surplus_fds_are_closed_not_leaked() {
    let _s = serial();
    let (a, b) = SeqpacketConn::pair().unwrap();
    let files: Vec<OwnedFd> = (0..12).map(|i| memfd(&format!("f{i}"))).collect();
    let raw: Vec<RawFd> = files.iter().map(|f| f.as_raw_fd()).collect();
    let before = open_fds();

    // Three fds on one record: the first is kept, two are closed.
    send_raw(a.as_fd(), b"/fd_ack", &raw[..3]);
    let r = b.recv(T).unwrap().unwrap();
    assert!(r.fds_dropped);
    assert_eq!((r.fds_received, r.control_truncated), (3, false), "the real count");
    assert_eq!(dev_ino(r.fd.as_ref().unwrap().as_fd()), dev_ino(files[0].as_fd()));
    drop(r);
    assert_eq!(open_fds(), before);

    // Twelve fds: more than the control buffer holds (MSG_CTRUNC).
    send_raw(a.as_fd(), b"/fd_ack", &raw);
    let r = b.recv(T).unwrap().unwrap();
    assert!(r.fds_dropped);
    assert!(r.fd.is_some());
    assert_eq!((r.fds_received, r.control_truncated), (afxdp_core::dp::transport::MAX_FDS_PER_RECORD, true), "more than arrived");
    drop(r);
    assert_eq!(open_fds(), before);

    // 200 fds (a hostile peer): the same, nothing leaks.
    let many: Vec<OwnedFd> = (0..200).map(|i| memfd(&format!("m{i}"))).collect();
    let many_raw: Vec<RawFd> = many.iter().map(|f| f.as_raw_fd()).collect();
    let before_many = open_fds();
    send_raw(a.as_fd(), b"/fd_ack", &many_raw);
    let r = b.recv(T).unwrap().unwrap();
    assert!(r.control_truncated && r.fds_received >= 1);
    drop(r);
    assert_eq!(open_fds(), before_many);
    drop(many);

    // Fds on a truncated record are still collected and closed.
    send_raw(a.as_fd(), &[b'y'; 100], &raw[..2]);
    let r = b.recv_with_limit(T, 16).unwrap().unwrap();
    assert!(r.truncated && r.fds_dropped && r.fd.is_some());
    drop(r);
    assert_eq!(open_fds(), before);
}

#[test]
fn eof_is_distinct_from_an_empty_record() {
    let _s = serial();
    let (a, b) = SeqpacketConn::pair().unwrap();
    a.send(b"", None).unwrap();
    let r = b.recv(T).unwrap().expect("an empty record is not EOF while the peer is open");
    assert!(r.bytes.is_empty());
    a.send(b"/fin_ack", None).unwrap();
    drop(a);
    assert_eq!(b.recv(T).unwrap().unwrap().bytes, b"/fin_ack", "queued records come before EOF");
    assert!(b.recv(T).unwrap().is_none(), "EOF");
    assert!(b.recv(T).unwrap().is_none(), "EOF stays EOF");
    let err = b.send(b"/fin", None).unwrap_err();
    assert_eq!(err.code, Code::DevicePlugin);
    assert!(err.message.contains("closed"), "{}", err.message);
}

#[test]
fn receive_and_accept_time_out() {
    let _s = serial();
    let (_a, b) = SeqpacketConn::pair().unwrap();
    let t0 = Instant::now();
    let err = b.recv(Duration::from_millis(150)).unwrap_err();
    let took = t0.elapsed();
    assert_eq!(err.code, Code::DevicePlugin);
    assert_eq!(err.errno, Some(libc::ETIMEDOUT));
    assert!(took >= Duration::from_millis(150) && took < Duration::from_secs(3), "{took:?}");

    let dir = TempDir::new();
    let l = SeqpacketListener::bind(dir.0.join("s"), 0o600, None).unwrap();
    let t0 = Instant::now();
    let err = l.accept(Duration::from_millis(150)).unwrap_err();
    assert_eq!(err.errno, Some(libc::ETIMEDOUT));
    assert!(err.message.contains(dir.0.to_str().unwrap()), "{}", err.message);
    assert!(t0.elapsed() < Duration::from_secs(3));
}

#[test]
fn connect_errors_name_the_path_and_the_cause() {
    let _s = serial();
    let before = open_fds();
    let dir = TempDir::new();
    {
        // Nothing there.
        let missing = dir.0.join("missing.sock");
        let err = SeqpacketClient::connect(&missing, T).unwrap_err();
        assert_eq!(err.code, Code::DevicePlugin);
        assert_eq!(err.errno, Some(libc::ENOENT));
        assert!(err.message.contains(missing.to_str().unwrap()), "{}", err.message);

        // A socket file nobody listens on (the server went away).
        let stale = dir.0.join("stale.sock");
        drop(std::os::unix::net::UnixDatagram::bind(&stale).unwrap());
        let err = SeqpacketClient::connect(&stale, T).unwrap_err();
        assert_eq!(err.code, Code::DevicePlugin);
        assert_eq!(err.errno, Some(libc::ECONNREFUSED));
        assert!(err.message.contains(stale.to_str().unwrap()), "{}", err.message);

        // A SOCK_STREAM listener.
        let stream = dir.0.join("stream.sock");
        let _l = std::os::unix::net::UnixListener::bind(&stream).unwrap();
        let err = SeqpacketClient::connect(&stream, T).unwrap_err();
        assert_eq!(err.code, Code::DevicePlugin);
        assert_eq!(err.errno, Some(libc::EPROTOTYPE));
        assert!(err.message.contains(stream.to_str().unwrap()), "{}", err.message);
        assert!(err.message.contains("SOCK_SEQPACKET"), "{}", err.message);

        // bind refuses an existing path.
        let err = SeqpacketListener::bind(&stream, 0o600, None).unwrap_err();
        assert!(err.message.contains("already exists"), "{}", err.message);
        assert!(stream.exists(), "a failed bind leaves someone else's socket alone");
    }
    drop(dir);
    assert_eq!(open_fds(), before, "no fd leaked on error paths");
}

#[test]
fn listener_does_not_remove_a_replaced_socket_file() {
    let _s = serial();
    let dir = TempDir::new();
    let path = dir.0.join("s");
    let l = SeqpacketListener::bind(&path, 0o600, None).unwrap();
    std::fs::remove_file(&path).unwrap();
    let other = std::os::unix::net::UnixListener::bind(&path).unwrap();
    drop(l);
    assert!(path.exists(), "someone else's socket file stays");
    drop(other);
}

/// Cancels `cancel` after `ms` on another thread.
fn cancel_after(cancel: &Arc<Cancel>, ms: u64) -> std::thread::JoinHandle<()> {
    let c = cancel.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(ms));
        c.cancel();
    })
}

#[test]
fn a_cancel_ends_recv_and_send_at_once() {
    let _s = serial();
    let (a, _b) = SeqpacketConn::pair().unwrap();
    let cancel = Arc::new(Cancel::new().unwrap());
    let th = cancel_after(&cancel, 100);
    let t0 = Instant::now();
    let e = a.recv_cancellable(Duration::from_secs(10), CLIENT_RECORD_LIMIT, Some(&cancel)).unwrap_err();
    th.join().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2), "took {:?}", t0.elapsed());
    assert_eq!(e.code, Code::Closed);
    assert_eq!(e.errno, Some(libc::ECANCELED));
    assert!(cancel.is_cancelled());

    // A peer that does not read: sends fill its buffer, then wait for room
    // at most the timeout, and a cancel ends that wait at once.
    let (c, _d) = SeqpacketConn::pair().unwrap();
    let never = Cancel::new().unwrap();
    let record = [0u8; 4096];
    let mut sent = 0;
    let e = loop {
        match c.send_cancellable(&record, None, Duration::from_millis(100), &never) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 100_000, "the buffer never filled");
    };
    assert_eq!(e.code, Code::DevicePlugin, "{}", e.message);
    assert!(e.message.contains("timed out"), "{}", e.message);
    let cancel = Arc::new(Cancel::new().unwrap());
    let th = cancel_after(&cancel, 100);
    let t0 = Instant::now();
    let e = c.send_cancellable(&record, None, Duration::from_secs(10), &cancel).unwrap_err();
    th.join().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2), "took {:?}", t0.elapsed());
    assert_eq!(e.code, Code::Closed);
}

#[test]
fn connect_to_a_full_backlog_is_bounded_and_cancellable() {
    let _s = serial();
    let dir = TempDir::new();
    let path = dir.0.join("full.sock");
    let listener = SeqpacketListener::bind(&path, 0o600, None).unwrap();
    // Nobody accepts: fill the backlog.
    let mut held = Vec::new();
    let full = loop {
        match SeqpacketConn::connect(&path, Duration::from_millis(20)) {
            Ok(c) => held.push(c),
            Err(e) => break e,
        }
        assert!(held.len() < 4096, "the backlog never filled");
    };
    assert_eq!(full.code, Code::DevicePlugin);
    assert_eq!(full.errno, Some(libc::ETIMEDOUT));
    assert!(full.message.contains("accept queue"), "{}", full.message);

    let t0 = Instant::now();
    let e = SeqpacketConn::connect(&path, Duration::from_millis(300)).unwrap_err();
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(e.errno, Some(libc::ETIMEDOUT));

    let cancel = Arc::new(Cancel::new().unwrap());
    let th = cancel_after(&cancel, 100);
    let t0 = Instant::now();
    let e = SeqpacketConn::connect_with(&path, Duration::from_secs(10), Some(&cancel)).unwrap_err();
    th.join().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2), "took {:?}", t0.elapsed());
    assert_eq!(e.code, Code::Closed);

    // Room again: a waiting connect gets through.
    let (_accepted, _) = listener.accept(T).unwrap();
    SeqpacketConn::connect(&path, Duration::from_secs(5)).unwrap();
}
