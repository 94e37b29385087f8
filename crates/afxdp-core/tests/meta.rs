//! afxdp's RX-metadata program (bpf/meta.bpf.c) and TX metadata UMEM
//! registration on a veth pair. Needs root; fails (never skips) without it.

mod common;

use afxdp_core::bpf::{query, AttachKind, ProgramSource, XdpMode, XdpProgram};
use afxdp_core::netdev::xdp_features;
use afxdp_core::netns::NetnsGuard;
use afxdp_core::socket::XskSocket;
use afxdp_core::umem::{TxMetadataReg, Umem, UmemConfig};
use afxdp_core::Code;
use common::{is_root, Lab};

fn require_root() {
    assert!(is_root(), "these tests attach XDP programs and create namespaces: run them as root");
}

#[test]
fn meta_program_is_device_bound_native_only() {
    require_root();
    let lab = Lab::new(1);
    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    let ifindex = lab.port_netdev().ifindex;
    for mode in [XdpMode::Auto, XdpMode::Native] {
        let (prog, _map) = XdpProgram::attach_as(ifindex, mode, &ProgramSource::Metadata, AttachKind::Link).unwrap();
        assert_eq!(prog.mode(), XdpMode::Native, "device-bound programs attach natively");
        assert_eq!(query(ifindex).unwrap().map(|a| a.prog_id), Some(prog.prog_id()));
        drop(prog);
        assert_eq!(query(ifindex).unwrap(), None);
    }
    let err = XdpProgram::attach_as(ifindex, XdpMode::Generic, &ProgramSource::Metadata, AttachKind::Link).unwrap_err();
    assert_eq!(err.code, Code::NotSupported, "{}", err.message);
    assert!(err.message.contains("native"), "{}", err.message);
    assert_eq!(query(ifindex).unwrap(), None);
}

#[test]
fn veth_reports_rx_metadata_features() {
    require_root();
    let lab = Lab::new(1);
    let _ns = NetnsGuard::enter(lab.port_ns_path()).unwrap();
    let f = xdp_features(lab.port_netdev().ifindex).expect("netdev netlink on this kernel");
    // veth implements all three kfuncs (drivers/net/veth.c veth_xdp_metadata_ops).
    for want in ["timestamp", "hash", "vlan-tag"] {
        assert!(f.rx_metadata_names().iter().any(|n| n == want), "{want} in {:?}", f.rx_metadata_names());
    }
    // ... and no AF_XDP TX metadata ops (no zero-copy at all).
    assert_eq!(f.xsk_names(), Vec::<String>::new(), "{f:?}");
}

#[test]
fn tx_metadata_umem_registers_with_the_flag_first() {
    require_root();
    for sw in [false, true] {
        let umem = Umem::new(&UmemConfig { frame_count: 64, tx_metadata: true, tx_sw_csum: sw, ..Default::default() }).unwrap();
        let sock = XskSocket::new().unwrap();
        sock.register_umem(&umem).unwrap();
        assert_eq!(umem.tx_metadata_reg(), Some(TxMetadataReg::Flag), "Linux >= 6.11 takes XDP_UMEM_TX_METADATA_LEN");
    }
    let umem = Umem::new(&UmemConfig { frame_count: 64, ..Default::default() }).unwrap();
    XskSocket::new().unwrap().register_umem(&umem).unwrap();
    assert_eq!(umem.tx_metadata_reg(), None);
    let err = Umem::new(&UmemConfig { frame_count: 64, tx_sw_csum: true, ..Default::default() }).err().unwrap();
    assert_eq!(err.code, Code::InvalidArgument);
}
