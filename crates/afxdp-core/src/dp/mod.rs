//! A Device-Plugin-compatible server: the privileged half that lets
//! unprivileged afxdp (or DPDK `use_cni` / `use_pinned_map`) ports run
//! without Kubernetes. It attaches afxdp's redirect program to each
//! configured interface and hands out the XSKMAP the way the AF_XDP Device
//! Plugin does (docs: dp-protocol.md):
//!
//! - **UDS mode** (§1-§3): a SOCK_SEQPACKET listener per allocation, the
//!   handshake of §3 record for record, the XSKMAP fd as SCM_RIGHTS on
//!   `/fd_ack`;
//! - **pinned mode** (§6): the XSKMAP pinned at `<pin_dir>/<iface>/xsks_map`
//!   on a bpffs, owned by the client uid.
//!
//! Where it deliberately differs from the Device Plugin (hardening, a few
//! quirks fixed, concurrent sessions, programs that survive a crash) is
//! documented at each place and listed in [`server`]'s module comment. [`faults`] makes it misbehave on
//! purpose for client tests.

//!
//! Layout, by concept: [`config`] (what to serve), [`msg`] (the records),
//! [`transport`] (SOCK_SEQPACKET records with fds), `session` (one client's
//! handshake), [`server`] (lifecycle: start, stop, status) with `serving`
//! (its acceptor and watcher threads) and `shared` (their common state),
//! `pins` (bpffs pins), `paths` (socket files and directories), [`program`]
//! (the attached redirect program, adoptable after a crash).

pub mod config;
pub mod faults;
pub mod msg;
mod paths;
mod pins;
pub mod program;
pub mod server;
mod serving;
mod session;
mod shared;
pub mod transport;

pub use config::*;
pub use faults::{Fault, StreamListener};
pub use server::{DeviceInfo, DpServer, DpServerInfo};
