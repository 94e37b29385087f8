//! How packets reach AF_XDP sockets: an XSKMAP plus the XDP program that
//! redirects into it.
//!
//! - `syscall`: raw bpf(2) (works unprivileged on kernels >= 5.19 for
//!   pinned/received maps);
//! - `xskmap`: `XskMap`, open from an fd (Device Plugin), a pin, or our
//!   program; insert/remove sockets by queue id;
//! - `program`: attach afxdp's redirect program or a user's `xdp_prog`
//!   (privileged), share it between ports of one interface, detach safely.

pub mod program;
pub mod syscall;
pub mod xskmap;

pub use program::{query, AttachKind, AttachedMode, AttachedXdp, ProgramSource, SharedXdp, XdpMode, XdpProgram};
pub use xskmap::XskMap;
