//! XDP attach/detach, XSKMAP handling and pinned maps, on veth pairs in
//! private namespaces. Needs root; fails (never skips) without it.
//! Over 600 lines: one lab fixture shared by every attach/map case.

mod common;

use afxdp_core::bpf::syscall::{self, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_XSKMAP};
use afxdp_core::bpf::{query, AttachKind, AttachedMode, ProgramSource, XdpMode, XdpProgram, XskMap};
use afxdp_core::netdev::Netdev;
use afxdp_core::netns::NetnsGuard;
use afxdp_core::Code;
use common::{is_root, Lab};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

fn require_root() {
    assert!(is_root(), "these tests attach XDP programs and create namespaces: run them as root");
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A scratch directory, removed (recursively) on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(base: &str, tag: &str) -> TempDir {
        let p =
            PathBuf::from(base).join(format!("afxdp-test-{tag}-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A bpffs mounted on a fresh directory under /run; unmounted on drop.
struct Bpffs {
    dir: PathBuf,
}

impl Bpffs {
    fn mount() -> Bpffs {
        let dir = PathBuf::from(format!("/run/afxdp-test-bpffs-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("mount").args(["-t", "bpf", "bpf"]).arg(&dir).output().expect("run mount(8)");
        assert!(out.status.success(), "mount -t bpf: {}", String::from_utf8_lossy(&out.stderr));
        Bpffs { dir }
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).output();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Compile a small BPF C source with clang; returns the object path.
fn compile_bpf(dir: &Path, name: &str, src: &str) -> PathBuf {
    let c = dir.join(format!("{name}.bpf.c"));
    let o = dir.join(format!("{name}.bpf.o"));
    std::fs::write(&c, src).unwrap();
    let mut cmd = Command::new(std::env::var("CLANG").unwrap_or_else(|_| "clang".into()));
    cmd.args(["-O2", "-g", "-target", "bpf", "-c"]);
    let multiarch = PathBuf::from(format!("/usr/include/{}-linux-gnu", std::env::consts::ARCH));
    if multiarch.exists() {
        cmd.arg("-idirafter").arg(&multiarch);
    }
    let out = cmd.arg(&c).arg("-o").arg(&o).output().expect("run clang (apt-get install clang)");
    assert!(out.status.success(), "clang {name}: {}", String::from_utf8_lossy(&out.stderr));
    o
}

/// An XDP_PASS program with no maps at all.
const PASS_SRC: &str = r#"
#include <linux/bpf.h>
__attribute__((section("xdp"), used)) int foreign_pass(struct xdp_md *ctx) { return XDP_PASS; }
char _license[] __attribute__((section("license"), used)) = "GPL";
"#;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip(8)");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

fn port_ifindex(lab: &Lab) -> u32 {
    Netdev::lookup(&lab.port_if).unwrap().ifindex
}

#[test]
fn redirect_attaches_in_native_mode_and_detaches() {
    require_root();
    let lab = Lab::new(1);
    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    let ifindex = port_ifindex(&lab);
    assert_eq!(query(ifindex).unwrap(), None);

    let (prog, map) = XdpProgram::attach_redirect(ifindex, XdpMode::Native).unwrap();
    assert_eq!(prog.mode(), XdpMode::Native);
    assert!(!prog.frags(), "MTU 1500 uses the plain program");
    let q = query(ifindex).unwrap().expect("a program is attached");
    assert_eq!(q.prog_id, prog.prog_id());
    assert_eq!(q.mode, AttachedMode::Native);
    assert_eq!(map.name(), "xsks_map");
    assert_eq!(map.max_entries(), 64);
    assert_eq!(map.id(), prog.map().id());
    assert!(prog.is_attached().unwrap());

    assert!(prog.detach().unwrap(), "our own program is removed");
    assert_eq!(query(ifindex).unwrap(), None);
    assert!(!prog.detach().unwrap(), "second detach is a no-op");
    // The map stays usable (fd still open) after detach.
    assert_eq!(map.max_entries(), 64);
}

#[test]
fn redirect_attaches_in_generic_mode_and_drop_detaches() {
    require_root();
    let lab = Lab::new(1);
    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    let ifindex = port_ifindex(&lab);
    let (prog, _map) = XdpProgram::attach_redirect(ifindex, XdpMode::Generic).unwrap();
    assert_eq!(prog.mode(), XdpMode::Generic);
    assert_eq!(query(ifindex).unwrap().map(|a| (a.prog_id, a.mode)), Some((prog.prog_id(), AttachedMode::Generic)));
    drop(prog);
    assert_eq!(query(ifindex).unwrap(), None, "drop detaches");
}

#[test]
fn auto_mode_picks_native_on_veth() {
    require_root();
    let lab = Lab::new(1);
    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    let ifindex = port_ifindex(&lab);
    let (prog, _map) = XdpProgram::attach_redirect(ifindex, XdpMode::Auto).unwrap();
    assert_eq!(prog.mode(), XdpMode::Native);
    assert_eq!(query(ifindex).unwrap().unwrap().mode, AttachedMode::Native);
}

#[test]
fn map_is_sized_to_large_queue_counts_and_jumbo_mtu_uses_frags() {
    require_root();
    let lab = Lab::new(80);
    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    let dev = Netdev::lookup(&lab.port_if).unwrap();
    assert_eq!(dev.queue_count(), 80);
    let (prog, map) = XdpProgram::attach_redirect(dev.ifindex, XdpMode::Generic).unwrap();
    assert_eq!(map.max_entries(), 80, "more queues than 64: the map grows");
    assert!(!prog.frags());
    drop(prog);

    ip(&["link", "set", "dev", &lab.port_if, "mtu", "9000"]);
    for mode in [XdpMode::Generic, XdpMode::Native] {
        let (prog, _map) = XdpProgram::attach_redirect(dev.ifindex, mode).unwrap();
        // Native needs the frags-aware variant at MTU 9000; generic keeps
        // the plain one (the kernel linearises packets for it).
        assert_eq!(prog.frags(), mode == XdpMode::Native);
        assert_eq!(prog.mode(), mode);
        assert_eq!(query(dev.ifindex).unwrap().unwrap().prog_id, prog.prog_id());
    }
    assert_eq!(query(dev.ifindex).unwrap(), None);
}

#[test]
fn foreign_program_blocks_attach_and_survives_our_detach() {
    require_root();
    let lab = Lab::new(1);
    let tmp = TempDir::new("/tmp", "foreign");
    let foreign_obj = compile_bpf(&tmp.0, "pass", PASS_SRC);
    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    let ifindex = port_ifindex(&lab);
    let dev = &lab.port_if;

    // Our program first: an independent second attach must be refused,
    // naming the attached program and how to remove it.
    let (ours, _map) = XdpProgram::attach_redirect(ifindex, XdpMode::Native).unwrap();
    let err = XdpProgram::attach_redirect(ifindex, XdpMode::Native).unwrap_err();
    assert_eq!(err.code, Code::Bpf, "{}", err.message);
    assert_eq!(err.errno, Some(libc::EBUSY));
    assert!(err.message.contains(&format!("id {}", ours.prog_id())), "{}", err.message);
    assert!(err.message.contains(&format!("ip link set dev {dev} xdpdrv off")), "{}", err.message);
    // The other mode is refused as well (kernel: EEXIST).
    let err = XdpProgram::attach_redirect(ifindex, XdpMode::Generic).unwrap_err();
    assert_eq!(err.code, Code::Bpf, "{}", err.message);
    assert!(err.message.contains(&format!("id {}", ours.prog_id())), "{}", err.message);
    // Auto does not fall back to generic when native is busy.
    let err = XdpProgram::attach_redirect(ifindex, XdpMode::Auto).unwrap_err();
    assert_eq!(err.code, Code::Bpf, "{}", err.message);

    // Someone removes ours and attaches theirs behind our back.
    ip(&["link", "set", "dev", dev, "xdpdrv", "off"]);
    ip(&["link", "set", "dev", dev, "xdpdrv", "obj", foreign_obj.to_str().unwrap(), "sec", "xdp"]);
    let foreign = query(ifindex).unwrap().expect("foreign program attached");
    assert_ne!(foreign.prog_id, ours.prog_id());
    assert!(!ours.is_attached().unwrap());

    // Our detach and drop must leave it alone.
    assert!(!ours.detach().unwrap(), "not ours any more: nothing removed");
    assert_eq!(query(ifindex).unwrap(), Some(foreign));
    drop(ours);
    assert_eq!(query(ifindex).unwrap(), Some(foreign));

    // And it blocks us, shared or not, naming its id.
    for mode in [XdpMode::Native, XdpMode::Generic, XdpMode::Auto] {
        let err = XdpProgram::attach_redirect(ifindex, mode).unwrap_err();
        assert_eq!(err.code, Code::Bpf);
        assert!(err.message.contains(&format!("id {}", foreign.prog_id)), "{mode:?}: {}", err.message);
    }
    let err = XdpProgram::attach_or_share(ifindex, XdpMode::Auto, &ProgramSource::Redirect).unwrap_err();
    assert!(err.message.contains(&format!("id {}", foreign.prog_id)), "{}", err.message);
    assert_eq!(query(ifindex).unwrap(), Some(foreign));
    ip(&["link", "set", "dev", dev, "xdpdrv", "off"]);
    assert_eq!(query(ifindex).unwrap(), None);
}

/// Every bpf_link fd of this process is close-on-exec (flags from fdinfo).
fn link_fds_cloexec() -> Vec<bool> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let is_link = std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:bpf_link");
        if !is_link {
            continue;
        }
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", e.file_name().to_string_lossy())).unwrap_or_default();
        let flags = info.lines().find_map(|l| l.strip_prefix("flags:")).map(|f| u32::from_str_radix(f.trim(), 8).unwrap());
        out.push(flags.is_some_and(|f| f & libc::O_CLOEXEC as u32 != 0));
    }
    out
}

#[test]
fn link_attach_detaches_with_its_fd_and_is_close_on_exec() {
    require_root();
    let lab = Lab::new(1);
    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    let ifindex = port_ifindex(&lab);
    for mode in [XdpMode::Native, XdpMode::Generic, XdpMode::Auto] {
        let (prog, _map) = XdpProgram::attach_as(ifindex, mode, &ProgramSource::Redirect, AttachKind::Link).unwrap();
        assert_eq!(prog.kind(), AttachKind::Link);
        assert_eq!(query(ifindex).unwrap().map(|a| a.prog_id), Some(prog.prog_id()), "{mode:?}");
        assert!(prog.is_attached().unwrap());
        let flags = link_fds_cloexec();
        assert!(!flags.is_empty() && flags.iter().all(|&c| c), "link fds must be O_CLOEXEC: {flags:?}");
        // `ip link` cannot remove a link's program (the kernel refuses;
        // iproute2 may still exit 0): that is what protects it.
        let _ = Command::new("ip").args(["link", "set", "dev", &lab.port_if, "xdp", "off"]).output().unwrap();
        assert_eq!(query(ifindex).unwrap().map(|a| a.prog_id), Some(prog.prog_id()));
        if mode == XdpMode::Native {
            assert!(prog.detach().unwrap());
            assert!(!prog.is_attached().unwrap());
            assert!(!prog.detach().unwrap(), "second detach is a no-op");
            assert_eq!(query(ifindex).unwrap(), None);
        } else {
            drop(prog);
            assert_eq!(query(ifindex).unwrap(), None, "closing the link detaches");
        }
    }
}

#[test]
fn link_and_netlink_attachments_refuse_each_other_naming_the_holder() {
    require_root();
    let lab = Lab::new(1);
    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    let ifindex = port_ifindex(&lab);
    let dev = &lab.port_if;

    // A netlink program (e.g. left by dp-serve) blocks a link: the message
    // says netlink and how to remove it.
    let (nl, _m) = XdpProgram::attach_redirect(ifindex, XdpMode::Native).unwrap();
    for mode in [XdpMode::Native, XdpMode::Generic, XdpMode::Auto] {
        let err = XdpProgram::attach_as(ifindex, mode, &ProgramSource::Redirect, AttachKind::Link).unwrap_err();
        assert_eq!(err.code, Code::Bpf, "{}", err.message);
        assert!(matches!(err.errno, Some(libc::EBUSY) | Some(libc::EEXIST)), "{:?}", err.errno);
        assert!(err.message.contains(&format!("id {}", nl.prog_id())), "{}", err.message);
        assert!(err.message.contains("through netlink"), "{}", err.message);
        assert!(err.message.contains(&format!("ip link set dev {dev} xdpdrv off")), "{}", err.message);
    }
    drop(nl);
    assert_eq!(query(ifindex).unwrap(), None);

    // A link blocks netlink and another link: the message names the link
    // and the process holding it (this one).
    let (link, _m) = XdpProgram::attach_as(ifindex, XdpMode::Native, &ProgramSource::Redirect, AttachKind::Link).unwrap();
    let me = format!("pid {}", std::process::id());
    let err = XdpProgram::attach_redirect(ifindex, XdpMode::Native).unwrap_err();
    assert!(err.message.contains("through bpf_link id") && err.message.contains(&me), "{}", err.message);
    let err = XdpProgram::attach_as(ifindex, XdpMode::Auto, &ProgramSource::Redirect, AttachKind::Link).unwrap_err();
    assert!(err.message.contains("through bpf_link id") && err.message.contains(&me), "{}", err.message);
    assert_eq!(query(ifindex).unwrap().map(|a| a.prog_id), Some(link.prog_id()));
    drop(link);

    // Within the process, a share of another kind is refused.
    let (a, _) = XdpProgram::attach_or_share_as(ifindex, XdpMode::Native, &ProgramSource::Redirect, AttachKind::Link).unwrap();
    let err = XdpProgram::attach_or_share(ifindex, XdpMode::Native, &ProgramSource::Redirect).unwrap_err();
    assert!(err.message.contains("through bpf_link"), "{}", err.message);
    drop(a);
    assert_eq!(query(ifindex).unwrap(), None);
}

#[test]
fn shared_program_is_refcounted_per_interface() {
    require_root();
    let lab = Lab::new(2);
    let tmp = TempDir::new("/tmp", "share");
    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    let ifindex = port_ifindex(&lab);

    let (a, map_a) = XdpProgram::attach_or_share(ifindex, XdpMode::Native, &ProgramSource::Redirect).unwrap();
    let (b, map_b) = XdpProgram::attach_or_share(ifindex, XdpMode::Auto, &ProgramSource::Redirect).unwrap();
    assert_eq!(a.prog_id(), b.prog_id());
    assert_eq!(map_a.id(), map_b.id());
    assert_ne!(map_a.as_raw_fd(), map_b.as_raw_fd(), "each share has its own map fd");
    assert_eq!(a.users(), 2);
    assert_eq!(b.mode(), XdpMode::Native);

    // Incompatible requests are refused without touching the program.
    let err = XdpProgram::attach_or_share(ifindex, XdpMode::Generic, &ProgramSource::Redirect).unwrap_err();
    assert_eq!(err.code, Code::InvalidArgument, "{}", err.message);
    assert!(err.message.contains("native"), "{}", err.message);
    let other = ProgramSource::Object { path: tmp.0.join("x.o"), program: None };
    let err = XdpProgram::attach_or_share(ifindex, XdpMode::Auto, &other).unwrap_err();
    assert_eq!(err.code, Code::Bpf, "{}", err.message);
    assert!(err.message.contains("same XDP program"), "{}", err.message);
    assert_eq!(a.users(), 2);

    drop(a);
    assert_eq!(query(ifindex).unwrap().unwrap().prog_id, b.prog_id(), "still attached for the other port");
    assert_eq!(b.users(), 1);
    let id = b.prog_id();
    drop(b);
    assert_eq!(query(ifindex).unwrap(), None, "last share detaches");

    // A new share after that attaches a fresh program.
    let (c, _m) = XdpProgram::attach_or_share(ifindex, XdpMode::Auto, &ProgramSource::Redirect).unwrap();
    assert_ne!(c.prog_id(), id);
    assert_eq!(c.users(), 1);
}

#[test]
fn shared_entry_recovers_when_the_program_was_removed_externally() {
    require_root();
    let lab = Lab::new(1);
    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    let ifindex = port_ifindex(&lab);
    let (a, _) = XdpProgram::attach_or_share(ifindex, XdpMode::Native, &ProgramSource::Redirect).unwrap();
    ip(&["link", "set", "dev", &lab.port_if, "xdpdrv", "off"]);
    let (b, _) = XdpProgram::attach_or_share(ifindex, XdpMode::Native, &ProgramSource::Redirect).unwrap();
    assert_ne!(a.prog_id(), b.prog_id(), "a stale share is replaced by a fresh attach");
    assert!(b.is_attached().unwrap());
    drop(a); // must not detach b's program
    assert_eq!(query(ifindex).unwrap().unwrap().prog_id, b.prog_id());
    drop(b);
    assert_eq!(query(ifindex).unwrap(), None);
}

#[test]
fn detach_from_another_namespace_goes_back_to_the_right_one() {
    require_root();
    let lab = Lab::new(1);
    let (prog, ifindex) = {
        let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
        let ifindex = port_ifindex(&lab);
        (XdpProgram::attach_redirect(ifindex, XdpMode::Native).unwrap().0, ifindex)
    };
    // Back in the test's own namespace: detach must act on the lab's.
    assert!(prog.is_attached().unwrap());
    assert!(prog.detach().unwrap());
    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    assert_eq!(query(ifindex).unwrap(), None);
}

#[test]
fn attach_object_requires_xsks_map() {
    require_root();
    let lab = Lab::new(1);
    let tmp = TempDir::new("/tmp", "obj");
    let pass = compile_bpf(&tmp.0, "pass", PASS_SRC);
    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    let ifindex = port_ifindex(&lab);

    let err = XdpProgram::attach_object(&pass, ifindex, XdpMode::Native).unwrap_err();
    assert_eq!(err.code, Code::Bpf, "{}", err.message);
    assert!(err.message.contains("no map named xsks_map"), "{}", err.message);
    assert!(err.message.contains(pass.to_str().unwrap()), "{}", err.message);
    assert_eq!(query(ifindex).unwrap(), None, "nothing attached on failure");

    let missing = tmp.0.join("missing.o");
    let err = XdpProgram::attach_object(&missing, ifindex, XdpMode::Native).unwrap_err();
    assert_eq!(err.code, Code::InvalidArgument, "{}", err.message);

    // Our own object as a user ELF: two XDP programs, so one must be named.
    let ours = tmp.0.join("redirect.bpf.o");
    std::fs::write(&ours, afxdp_core::bpf::program::REDIRECT_OBJECT).unwrap();
    let err = XdpProgram::attach_object(&ours, ifindex, XdpMode::Native).unwrap_err();
    assert!(err.message.contains("several XDP programs"), "{}", err.message);
    let err = XdpProgram::attach_object_named(&ours, "nope", ifindex, XdpMode::Native).unwrap_err();
    assert!(err.message.contains("no XDP program named nope"), "{}", err.message);
    let (prog, map) = XdpProgram::attach_object_named(&ours, "afxdp_redirect", ifindex, XdpMode::Native).unwrap();
    assert_eq!(query(ifindex).unwrap().unwrap().prog_id, prog.prog_id());
    assert_eq!(map.name(), "xsks_map");
    drop(prog);
    assert_eq!(query(ifindex).unwrap(), None);
}

#[test]
fn from_fd_accepts_only_4_byte_xskmaps() {
    require_root();
    let array = syscall::map_create(BPF_MAP_TYPE_ARRAY, 4, 4, 4, "afxdp_t_array").unwrap();
    let err = XskMap::from_fd(array).unwrap_err();
    assert_eq!(err.code, Code::Bpf);
    assert!(err.message.contains("not an XSKMAP"), "{}", err.message);

    let wide = syscall::map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 4, "afxdp_t_wide").unwrap();
    assert!(XskMap::from_fd(wide).unwrap_err().message.contains("not an XSKMAP"));

    // Not a BPF object at all.
    // SAFETY: a plain syscall on live fds and buffers of the sizes passed; the result is checked.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    assert!(efd >= 0);
    // SAFETY: a fresh fd returned just above, owned by nobody else.
    let err = XskMap::from_fd(unsafe { OwnedFd::from_raw_fd(efd) }).unwrap_err();
    assert_eq!(err.code, Code::Bpf, "{}", err.message);

    let xsk = syscall::map_create(BPF_MAP_TYPE_XSKMAP, 4, 4, 8, "afxdp_t_xsk").unwrap();
    let map = XskMap::from_fd(xsk).unwrap();
    assert_eq!(map.max_entries(), 8);
    assert!(map.id() > 0);
    assert_eq!(map.name(), "afxdp_t_xsk");
}

#[test]
fn insert_explains_bad_queue_ids_and_bad_sockets() {
    require_root();
    let map = XskMap::from_fd(syscall::map_create(BPF_MAP_TYPE_XSKMAP, 4, 4, 4, "afxdp_t_ins").unwrap()).unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();

    let err = map.insert(4, udp.as_fd()).unwrap_err();
    assert_eq!(err.code, Code::QueueOutOfRange, "{}", err.message);
    assert_eq!(err.errno, Some(libc::E2BIG));
    assert!(err.message.contains("queue id 4 >= the map's max_entries 4"), "{}", err.message);

    let err = map.insert(0, udp.as_fd()).unwrap_err();
    assert_eq!(err.code, Code::Bpf, "{}", err.message);
    assert!(err.message.contains("AF_XDP socket"), "{}", err.message);

    // Not a socket at all (the map's own fd).
    let err = map.insert(1, map.as_fd()).unwrap_err();
    assert_eq!(err.code, Code::Bpf, "{}", err.message);
    assert_eq!(err.errno, Some(libc::ENOTSOCK));

    map.remove(0).unwrap();
    map.remove(3).unwrap();
    map.remove(100).unwrap();
}

#[test]
fn pin_and_open_pinned_errors_are_explained() {
    require_root();
    let tmp = TempDir::new("/run", "notbpffs");
    let map = XskMap::from_fd(syscall::map_create(BPF_MAP_TYPE_XSKMAP, 4, 4, 4, "afxdp_t_pin").unwrap()).unwrap();
    let err = map.pin(tmp.0.join("xsks_map")).unwrap_err();
    assert!(err.message.contains("mount -t bpf bpf"), "{}", err.message);

    let err = XskMap::open_pinned(tmp.0.join("nothing")).unwrap_err();
    assert_eq!(err.code, Code::DevicePlugin, "{}", err.message);
    assert!(err.message.contains("no pinned map at"), "{}", err.message);
    assert!(err.message.contains(tmp.0.to_str().unwrap()), "{}", err.message);

    let fs = Bpffs::mount();
    let array = syscall::map_create(BPF_MAP_TYPE_ARRAY, 4, 4, 4, "afxdp_t_parr").unwrap();
    syscall::obj_pin(array.as_fd(), &fs.dir.join("array")).unwrap();
    let err = XskMap::open_pinned(fs.dir.join("array")).unwrap_err();
    assert_eq!(err.code, Code::Bpf);
    assert!(err.message.contains("not an XSKMAP"), "{}", err.message);

    map.pin(fs.dir.join("xsks_map")).unwrap();
    let err = map.pin(fs.dir.join("xsks_map")).unwrap_err();
    assert!(err.message.contains("already exists"), "{}", err.message);
}

// ---- the unprivileged pinned-map path ----

const HELPER: &str = "unprivileged_pinned_map_helper";

/// Run the helper test below as uid/gid 65534 with only CAP_NET_RAW and
/// CAP_IPC_LOCK, inside the lab's namespace. Returns (success, output).
fn run_unprivileged(lab: &Lab, exe: &Path, pin: &Path, expect: &str, map_id: u32) -> (bool, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.port_ns, "setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(["--inh-caps=-all,+net_raw,+ipc_lock", "--ambient-caps=-all,+net_raw,+ipc_lock"])
        .args(["--bounding-set=-all,+net_raw,+ipc_lock"])
        .arg(exe)
        .args([HELPER, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("AFXDP_HELPER_PIN", pin)
        .env("AFXDP_HELPER_EXPECT", expect)
        .env("AFXDP_HELPER_IF", &lab.port_if)
        .env("AFXDP_HELPER_MAP_ID", map_id.to_string())
        .output()
        .expect("run ip netns exec … setpriv");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn pinned_map_reopens_and_works_unprivileged_after_chown() {
    require_root();
    let lab = Lab::new(1);
    let fs = Bpffs::mount();
    let pin = fs.dir.join("xsks_map");
    let (prog, map) = {
        let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
        XdpProgram::attach_redirect(port_ifindex(&lab), XdpMode::Native).unwrap()
    };
    map.pin(&pin).unwrap();
    let reopened = XskMap::open_pinned(&pin).unwrap();
    assert_eq!(reopened.id(), map.id());
    assert_eq!(reopened.max_entries(), map.max_entries());

    // The test binary, copied where uid 65534 can run it.
    let bin = TempDir::new("/run", "bin");
    std::fs::set_permissions(&bin.0, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let exe = bin.0.join("bpf-test");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    // Root-owned 0600 pin: refused with the permission explanation.
    let (ok, out) = run_unprivileged(&lab, &exe, &pin, "permission", map.id());
    assert!(ok && out.contains("HELPER-DONE permission") && out.contains("1 passed"), "helper output:\n{out}");

    // After chown: opens, inserts a bound XSK, reports queue ids out of range.
    std::os::unix::fs::chown(&pin, Some(65534), Some(65534)).unwrap();
    let (ok, out) = run_unprivileged(&lab, &exe, &pin, "ok", map.id());
    assert!(ok && out.contains("HELPER-DONE ok") && out.contains("1 passed"), "helper output:\n{out}");
    drop(prog);
}

/// Minimal bound AF_XDP socket (copy mode, RX ring only) on `ifname` queue 0,
/// created in the calling thread's namespace. Raw libc on purpose: this test
/// must not depend on the socket module.
fn bound_xsk(ifname: &str) -> (OwnedFd, *mut libc::c_void, usize) {
    let dev = Netdev::lookup(ifname).unwrap();
    // SAFETY: a plain syscall on live fds and buffers of the sizes passed; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket(AF_XDP): {}", std::io::Error::last_os_error());
    // SAFETY: a fresh fd returned just above, owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let len = 16 * 4096;
    // SAFETY: maps/unmaps a region this test owns; nothing else points into it.
    let area = unsafe {
        libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
    };
    assert_ne!(area, libc::MAP_FAILED);
    let reg =
        libc::xdp_umem_reg { addr: area as u64, len: len as u64, chunk_size: 4096, headroom: 0, flags: 0, tx_metadata_len: 0 };
    let set = |opt: libc::c_int, val: *const libc::c_void, size: usize| {
        // SAFETY: a plain syscall on live fds and buffers of the sizes passed; the result is checked.
        let r = unsafe { libc::setsockopt(fd.as_raw_fd(), libc::SOL_XDP, opt, val, size as libc::socklen_t) };
        assert_eq!(r, 0, "setsockopt({opt}): {}", std::io::Error::last_os_error());
    };
    set(libc::XDP_UMEM_REG, &reg as *const _ as *const libc::c_void, std::mem::size_of_val(&reg));
    let ring: u32 = 16;
    for opt in [libc::XDP_UMEM_FILL_RING, libc::XDP_UMEM_COMPLETION_RING, libc::XDP_RX_RING] {
        set(opt, &ring as *const u32 as *const libc::c_void, 4);
    }
    let sxdp = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: libc::XDP_COPY,
        sxdp_ifindex: dev.ifindex,
        sxdp_queue_id: 0,
        sxdp_shared_umem_fd: 0,
    };
    // SAFETY: a plain syscall on live fds and buffers of the sizes passed; the result is checked.
    let r = unsafe {
        libc::bind(fd.as_raw_fd(), &sxdp as *const _ as *const libc::sockaddr, std::mem::size_of_val(&sxdp) as libc::socklen_t)
    };
    assert_eq!(r, 0, "bind(AF_XDP, {ifname} queue 0): {}", std::io::Error::last_os_error());
    (fd, area, len)
}

/// Runs only inside `pinned_map_reopens_and_works_unprivileged_after_chown`.
#[test]
#[ignore = "helper: run by pinned_map_reopens_and_works_unprivileged_after_chown as an unprivileged child"]
fn unprivileged_pinned_map_helper() {
    let pin = std::env::var("AFXDP_HELPER_PIN").expect("run by the parent test only");
    let expect = std::env::var("AFXDP_HELPER_EXPECT").unwrap();
    // SAFETY: getuid-family calls cannot fail and touch no memory.
    assert_ne!(unsafe { libc::geteuid() }, 0, "the helper must run unprivileged");
    match expect.as_str() {
        "permission" => {
            let err = XskMap::open_pinned(&pin).unwrap_err();
            assert_eq!(err.code, Code::Permission, "{}", err.message);
            assert!(err.message.contains("read and write permission"), "{}", err.message);
            assert!(err.message.contains("5.19"), "{}", err.message);
        }
        "ok" => {
            let map = XskMap::open_pinned(&pin).unwrap();
            let id: u32 = std::env::var("AFXDP_HELPER_MAP_ID").unwrap().parse().unwrap();
            assert_eq!(map.id(), id);
            let (xsk, area, len) = bound_xsk(&std::env::var("AFXDP_HELPER_IF").unwrap());
            map.insert(0, xsk.as_fd()).unwrap();
            let err = map.insert(map.max_entries(), xsk.as_fd()).unwrap_err();
            assert_eq!(err.code, Code::QueueOutOfRange, "{}", err.message);
            map.remove(0).unwrap();
            drop(xsk);
            // SAFETY: maps/unmaps a region this test owns; nothing else points into it.
            unsafe { libc::munmap(area, len) };
            // Privileged operations stay refused.
            let err = syscall::map_create(BPF_MAP_TYPE_XSKMAP, 4, 4, 4, "nope").unwrap_err();
            assert_eq!(err.code, Code::Permission, "{}", err.message);
        }
        other => panic!("unknown AFXDP_HELPER_EXPECT {other}"),
    }
    println!("HELPER-DONE {expect}");
}
