//! Interface lookup inside private namespaces, checked against ip(8).
//! Needs root; fails (never skips) without it.

mod common;

use afxdp_core::netdev::{Netdev, QueueSource};
use afxdp_core::netns::NetnsGuard;
use afxdp_core::Code;
use common::{is_root, Lab};
use std::process::Command;
use std::time::{Duration, Instant};

fn require_root() {
    assert!(is_root(), "these tests create network namespaces: run them as root");
}

/// `ip -n <ns> -j link show dev <dev>`, as raw JSON text.
fn ip_json(ns: &str, dev: &str) -> String {
    let out = Command::new("ip").args(["-n", ns, "-j", "link", "show", "dev", dev]).output().expect("run ip(8)");
    assert!(out.status.success(), "ip -j link show: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The value of `"key":` in ip's one-object JSON (numbers and strings only).
fn json_field(json: &str, key: &str) -> String {
    let pat = format!("\"{key}\":");
    let start = json.find(&pat).unwrap_or_else(|| panic!("no {key} in {json}")) + pat.len();
    let rest = &json[start..];
    if let Some(s) = rest.strip_prefix('"') {
        s[..s.find('"').unwrap()].to_string()
    } else {
        rest[..rest.find([',', '}']).unwrap()].trim().to_string()
    }
}

#[test]
fn lookup_matches_ip_link_in_the_namespace() {
    require_root();
    let lab = Lab::new(1);
    let json = ip_json(&lab.port_ns, &lab.port_if);
    let dev = {
        let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
        Netdev::lookup(&lab.port_if).unwrap()
    };
    assert_eq!(dev.name, lab.port_if);
    assert_eq!(dev.ifindex.to_string(), json_field(&json, "ifindex"));
    assert_eq!(dev.mtu.to_string(), json_field(&json, "mtu"));
    assert_eq!(dev.mac_string(), json_field(&json, "address"));
    assert_eq!(dev.hw_type, libc::ARPHRD_ETHER);
    assert!(dev.up && dev.running && dev.carrier, "{dev:?}");
    assert_eq!(dev.driver.as_deref(), Some("veth"));
    assert_eq!(dev.queue_count(), 1);
    assert_eq!(dev.queue_source, QueueSource::Ethtool);

    // by_index gives the same answer.
    let again = {
        let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
        Netdev::by_index(dev.ifindex).unwrap()
    };
    assert_eq!(again, dev);
}

#[test]
fn mtu_and_link_state_changes_are_seen() {
    require_root();
    let lab = Lab::new(1);
    let ip = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().unwrap();
        assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    ip(&["-n", &lab.port_ns, "link", "set", "dev", &lab.port_if, "mtu", "2000"]);
    ip(&["-n", &lab.peer_ns, "link", "set", "dev", &lab.peer_if, "down"]);
    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    let dev = Netdev::lookup(&lab.port_if).unwrap();
    assert_eq!(dev.mtu, 2000);
    assert!(dev.up, "still administratively up");
    assert!(!dev.carrier, "peer down: no carrier: {dev:?}");
    // IFF_RUNNING follows the carrier through the kernel's linkwatch work,
    // which runs asynchronously (up to ~1 s): poll, bounded.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut dev = dev;
    while dev.running && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        dev = Netdev::lookup(&lab.port_if).unwrap();
    }
    assert!(!dev.running, "no carrier: not running: {dev:?}");
}

#[test]
fn two_queue_veth_reports_two_queues() {
    require_root();
    let lab = Lab::new(2);
    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    let dev = Netdev::lookup(&lab.port_if).unwrap();
    assert_eq!(dev.queue_count(), 2, "{dev:?}");
    let ch = dev.channels.expect("veth answers ETHTOOL_GCHANNELS");
    assert_eq!((ch.rx, ch.tx, ch.max_rx, ch.max_tx), (2, 2, 2, 2));
    assert_eq!(dev.max_queues, 2);
}

#[test]
fn missing_interface_is_no_such_interface() {
    require_root();
    let lab = Lab::new(1);
    // The lab's interface exists only inside its namespace: looking it up
    // from here must fail (ioctls answer for the thread's namespace).
    let err = Netdev::lookup(&lab.port_if).unwrap_err();
    assert_eq!(err.code, Code::NoSuchInterface, "{}", err.message);
    assert!(err.message.contains(&lab.port_if), "{}", err.message);
    assert!(err.message.contains("ip link"), "{}", err.message);

    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    let err = Netdev::lookup("afxdpnosuch0").unwrap_err();
    assert_eq!(err.code, Code::NoSuchInterface);
    assert!(err.message.contains("no interface named afxdpnosuch0 in this network namespace"), "{}", err.message);
    let err = Netdev::by_index(999_999).unwrap_err();
    assert_eq!(err.code, Code::NoSuchInterface);

    let err = Netdev::lookup("a-name-that-is-too-long").unwrap_err();
    assert_eq!(err.code, Code::InvalidArgument);
}

#[test]
fn interfaces_without_channels_fall_back_to_netlink() {
    require_root();
    let lab = Lab::new(1);
    let out = Command::new("ip")
        .args(["-n", &lab.port_ns, "link", "add", "afxdpbr0", "numrxqueues", "3", "numtxqueues", "3", "type", "bridge"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    let dev = Netdev::lookup("afxdpbr0").unwrap();
    assert!(dev.channels.is_none(), "a bridge has no ETHTOOL_GCHANNELS: {dev:?}");
    assert_eq!(dev.queue_source, QueueSource::Netlink);
    assert_eq!(dev.queue_count(), 3);
    assert!(!dev.up);
}

/// The generic netlink "netdev" family answers for the thread's namespace:
/// a veth there does native XDP (basic, redirect), never hardware offload.
#[test]
fn xdp_features_of_a_veth_in_its_namespace() {
    require_root();
    let lab = Lab::new(1);
    let (dev, features) = {
        let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
        let dev = Netdev::lookup(&lab.port_if).unwrap();
        let features = afxdp_core::netdev::xdp_features(dev.ifindex);
        (dev, features)
    };
    let names = features.expect("Linux >= 6.3 reports XDP features").names();
    for want in ["basic", "redirect"] {
        assert!(names.iter().any(|n| n == want), "{} lacks {want}: {names:?}", dev.name);
    }
    assert!(!names.iter().any(|n| n == "hw-offload"), "{names:?}");
}
