//! Fault injection for the test Device Plugin server: each mode makes the
//! server misbehave in one documented, byte-exact way, so a client's error
//! handling can be tested against every failure the protocol allows (and a
//! few that other servers really produce). Selected with `DpConfig::fault`;
//! a mode applies to every session the server serves.
//!
//! Two failures need no server mode: "nothing listening" (connect to a path
//! where no socket exists, or to a socket file whose listener is gone) and
//! "a SOCK_STREAM listener" ([`StreamListener`]).

use crate::sys;
use crate::sys::unix::{self as sys_unix, UnixAddr};
use crate::{Error, Result};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The bytes `Fault::Garbage` sends instead of every reply: not ASCII text,
/// not valid UTF-8 (0xff, 0xfe, a lone continuation byte 0x80, a truncated
/// sequence 0xc3 0x28) and an inner NUL.
pub const GARBAGE: &[u8] = &[0xff, 0xfe, 0x00, 0x01, 0x80, 0xc3, 0x28, 0x7f];

/// Length of every reply under `Fault::OverlongRecord`: longer than a
/// DPDK-style 128-byte receive buffer, so a conforming client sees the
/// record truncated (MSG_TRUNC).
pub const OVERLONG_LEN: usize = 200;

/// Default delay of `Fault::Stall` when none is configured.
pub const DEFAULT_STALL: Duration = Duration::from_secs(5);

/// How the server misbehaves. `None` is the faithful Device Plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Behave like the Device Plugin (dp-protocol.md §3).
    #[default]
    None,
    /// Accept, read every record, never reply. The connection stays open
    /// until the client closes it, the read deadline passes, or the server
    /// stops.
    Silent,
    /// Read the first record, then close the connection without replying
    /// (whatever the record was).
    CloseAfterConnect,
    /// Answer the first record with `/host_nak` and close, whatever the pod.
    HostNak,
    /// Answer the first record with the two records `/error`, `/host_nak`
    /// and close (the Device Plugin's reply when the kubelet pod-resources
    /// call fails).
    ErrorThenHostNak,
    /// Normal handshake, but every `/xsk_map_fd,…` is answered `/fd_nak`
    /// (also for configured interfaces).
    FdNak,
    /// Every record, the first included, is answered `/nak`; the connection
    /// stays open until the client closes it (or deadline/stop).
    Nak,
    /// `/xsk_map_fd,<configured iface>` is answered `/fd_ack` with no
    /// SCM_RIGHTS control message (unknown interfaces still get `/fd_nak`).
    FdAckWithoutFd,
    /// Every reply is replaced by the 8 bytes of [`GARBAGE`] (an fd that
    /// would have been attached still is).
    Garbage,
    /// Every reply is sent as one record of [`OVERLONG_LEN`] (200) bytes:
    /// the normal reply followed by ASCII `x` up to 200 bytes (e.g.
    /// `/host_okxxx…`), so a client that prefix-matches (DPDK's `strncmp`)
    /// would accept it and only a truncation check catches it.
    OverlongRecord,
    /// Every reply is sent only after this delay (meant to be longer than
    /// the client's timeout); the delay ends early when the server stops.
    /// The normal reply follows the delay (if the client is still there).
    Stall(Duration),
    /// `/xsk_map_fd,<configured iface>` is answered `/fd_ack,<n>` with the
    /// fd attached, `<n>` being the fd's number in the server process (what
    /// CNDP's xskmap_load_send sends).
    FdAckWithSuffix,
    /// Every reply gets a trailing NUL byte (`/host_ok\0`, `0.1\0`, ...), as
    /// CNDP sends its strings with `sizeof`.
    TrailingNul,
}

impl Fault {
    /// Every mode's name, as accepted by `parse` and shown by `name`.
    pub const NAMES: &'static [&'static str] = &[
        "none",
        "silent",
        "close-after-connect",
        "host-nak",
        "error-then-host-nak",
        "fd-nak",
        "nak",
        "fd-ack-without-fd",
        "garbage",
        "overlong-record",
        "stall",
        "fd-ack-with-suffix",
        "trailing-nul",
    ];

    /// Parse a kebab-case mode name (`"host-nak"`, `"stall"`, ...);
    /// `stall` gets `stall_delay` (or [`DEFAULT_STALL`]).
    pub fn parse(name: &str, stall_delay: Option<Duration>) -> Result<Fault> {
        Ok(match name {
            "none" | "" => Fault::None,
            "silent" => Fault::Silent,
            "close-after-connect" => Fault::CloseAfterConnect,
            "host-nak" => Fault::HostNak,
            "error-then-host-nak" => Fault::ErrorThenHostNak,
            "fd-nak" => Fault::FdNak,
            "nak" => Fault::Nak,
            "fd-ack-without-fd" => Fault::FdAckWithoutFd,
            "garbage" => Fault::Garbage,
            "overlong-record" => Fault::OverlongRecord,
            "stall" => Fault::Stall(stall_delay.unwrap_or(DEFAULT_STALL)),
            "fd-ack-with-suffix" => Fault::FdAckWithSuffix,
            "trailing-nul" => Fault::TrailingNul,
            other => {
                return Err(Error::invalid(format!(
                    "unknown Device Plugin fault mode {other:?}; one of: {}",
                    Fault::NAMES.join(", ")
                )))
            }
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Silent => "silent",
            Fault::CloseAfterConnect => "close-after-connect",
            Fault::HostNak => "host-nak",
            Fault::ErrorThenHostNak => "error-then-host-nak",
            Fault::FdNak => "fd-nak",
            Fault::Nak => "nak",
            Fault::FdAckWithoutFd => "fd-ack-without-fd",
            Fault::Garbage => "garbage",
            Fault::OverlongRecord => "overlong-record",
            Fault::Stall(_) => "stall",
            Fault::FdAckWithSuffix => "fd-ack-with-suffix",
            Fault::TrailingNul => "trailing-nul",
        }
    }

    /// The bytes actually sent for a reply `msg` (the transforming modes:
    /// Garbage, OverlongRecord, TrailingNul; others send `msg` unchanged).
    pub fn wire_bytes(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            Fault::Garbage => GARBAGE.to_vec(),
            Fault::OverlongRecord => {
                let mut v = msg.to_vec();
                v.resize(OVERLONG_LEN.max(msg.len()), b'x');
                v
            }
            Fault::TrailingNul => {
                let mut v = msg.to_vec();
                v.push(0);
                v
            }
            _ => msg.to_vec(),
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Stall(d) => write!(f, "stall ({d:?})"),
            other => f.write_str(other.name()),
        }
    }
}

/// A SOCK_STREAM Unix listener bound at a path: the "wrong socket type"
/// server (a SEQPACKET client's connect fails with EPROTOTYPE). It never
/// accepts; the socket file is removed on drop.
#[derive(Debug)]
pub struct StreamListener {
    fd: OwnedFd,
    path: PathBuf,
}

impl StreamListener {
    pub fn bind(path: impl AsRef<Path>) -> Result<StreamListener> {
        let path = path.as_ref();
        let addr = UnixAddr::new(path)
            .ok_or_else(|| Error::invalid(format!("Unix socket path {} must be 1 to 107 bytes without NUL", path.display())))?;
        let fd = sys::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0).map_err(|e| Error::sys("socket(AF_UNIX, SOCK_STREAM)", e))?;
        sys_unix::bind(fd.as_fd(), &addr).map_err(|e| Error::sys(format!("bind({})", path.display()), e))?;
        let listener = StreamListener { fd, path: path.to_path_buf() };
        sys_unix::listen(listener.fd.as_fd(), 4).map_err(|e| Error::sys(format!("listen({})", path.display()), e))?;
        Ok(listener)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsFd for StreamListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for StreamListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in Fault::NAMES {
            let f = Fault::parse(name, Some(Duration::from_millis(7))).unwrap();
            assert_eq!(f.name(), *name);
        }
        assert_eq!(Fault::parse("stall", None).unwrap(), Fault::Stall(DEFAULT_STALL));
        let e = Fault::parse("bogus", None).unwrap_err();
        assert!(e.message.contains("host-nak"), "{}", e.message);
    }

    #[test]
    fn wire_bytes_transform() {
        assert_eq!(Fault::TrailingNul.wire_bytes(b"0.1"), b"0.1\0");
        assert_eq!(Fault::Garbage.wire_bytes(b"/host_ok"), GARBAGE);
        let long = Fault::OverlongRecord.wire_bytes(b"/host_ok");
        assert_eq!(long.len(), OVERLONG_LEN);
        assert!(long.starts_with(b"/host_okxx") && long.iter().skip(8).all(|&b| b == b'x'));
        assert_eq!(Fault::None.wire_bytes(b"/fin_ack"), b"/fin_ack");
    }
}
