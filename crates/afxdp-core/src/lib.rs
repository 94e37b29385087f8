//! afxdp-core: the AF_XDP engine behind the `afxdp` npm package.
//!
//! The modules follow the data path:
//! `netdev` (what the interface is) → `bpf` (how packets reach the socket:
//! our redirect program, the user's `xdp_prog`, or an XSKMAP handed over by
//! the Device Plugin through `dp::transport` or a pinned path) → `umem` (packet memory
//! and frame ownership) → `ring` (the four shared rings) → `socket` (one XSK
//! per interface queue) → `socket_set` (the queues of one port, batch
//! operations; each queue behind its own `lease`) → `port` (a socket set with its XSKMAP and program).
//! Raw syscalls sit behind `sys`; `dp` is the Device Plugin (transport,
//! session, server, pins). Nothing here depends on Node; `cargo test` exercises it alone.

pub mod bpf;
pub mod chain;
pub mod dp;
pub mod error;
pub mod lease;
pub mod limits;
pub mod netdev;
pub mod netns;
pub mod packet;
pub mod port;
pub mod queue;
pub mod ring;
pub mod socket;
pub mod socket_set;
pub mod sys;
pub mod umem;

pub use error::{Code, Error, Result};
