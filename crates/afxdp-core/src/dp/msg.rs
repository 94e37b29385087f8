//! Handshake records (dp-protocol.md §2), as bytes on the wire.

pub const CONNECT: &str = "/connect";
pub const HOST_OK: &[u8] = b"/host_ok";
pub const HOST_NAK: &[u8] = b"/host_nak";
pub const ERROR: &[u8] = b"/error";
pub const VERSION: &str = "/version";
/// The reply to `/version` (no leading slash).
pub const VERSION_REPLY: &[u8] = b"0.1";
pub const XSK_MAP_FD: &str = "/xsk_map_fd";
pub const FD_ACK: &[u8] = b"/fd_ack";
pub const FD_NAK: &[u8] = b"/fd_nak";
pub const CONFIG_BUSY_POLL: &str = "/config_busy_poll";
pub const BUSY_POLL_ACK: &[u8] = b"/config_busy_poll_ack";
pub const BUSY_POLL_NAK: &[u8] = b"/config_busy_poll_nak";
pub const FIN: &str = "/fin";
pub const FIN_ACK: &[u8] = b"/fin_ack";
pub const NAK: &[u8] = b"/nak";
