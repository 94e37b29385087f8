//! One Device Plugin session (dp-protocol.md §3), on its own thread: the
//! handshake's state machine, record for record, with the fault modes.

use super::config::PodVerdict;
use super::faults::Fault;
use super::msg;
use super::shared::{Shared, Wake};
use super::transport::{PeerCred, Received, SeqpacketConn, SERVER_RECORD_LIMIT};
use crate::sys;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// After poll says ready, how long recv may wait if another reader raced us
/// (never happens: one thread per connection; a bound anyway).
const RACE_SLICE: Duration = Duration::from_millis(50);

pub(crate) struct Session<'a> {
    pub sh: &'a Shared,
    pub conn: Arc<SeqpacketConn>,
    pub cred: PeerCred,
    /// The session's total deadline, counted from accept (None = none).
    pub deadline: Option<Instant>,
}

/// How a record appears in the log.
fn shown(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

impl Session<'_> {
    /// One record (≤ 64 bytes), or None on EOF, deadline, error or stop.
    fn read(&self) -> Option<Received> {
        let per_read = self.sh.read_timeout.map(|t| Instant::now() + t);
        let deadline = match (per_read, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        loop {
            match self.sh.wait(Some(self.conn.as_fd()), deadline) {
                Wake::Stop => {
                    self.sh.log("server stopping: closing the session");
                    return None;
                }
                Wake::Timeout if self.deadline.is_some_and(|d| Instant::now() >= d) => {
                    self.sh.log(format!(
                        "session of pid {} reached its total deadline of {:?} (counted from accept): closing",
                        self.cred.pid,
                        self.sh.session_timeout.unwrap_or_default()
                    ));
                    return None;
                }
                Wake::Timeout => {
                    self.sh.log(format!(
                        "no request from pid {} within {:?}: closing (read deadline)",
                        self.cred.pid,
                        self.sh.read_timeout.unwrap_or_default()
                    ));
                    return None;
                }
                Wake::Ready => match self.conn.recv_with_limit(RACE_SLICE, SERVER_RECORD_LIMIT) {
                    Ok(None) => {
                        self.sh.log(format!("client pid {} closed the connection", self.cred.pid));
                        return None;
                    }
                    Ok(Some(r)) => {
                        // Deviation (3): processed truncated, as the Device Plugin does; logged.
                        let note = if r.truncated { " (longer than 64 bytes: truncated)" } else { "" };
                        let fd = if r.fd.is_some() { " + fd" } else { "" };
                        self.sh.log(format!("<- {}{fd}{note}", shown(&r.bytes)));
                        return Some(r);
                    }
                    Err(e) if e.errno == Some(libc::ETIMEDOUT) => continue,
                    Err(e) => {
                        self.sh.log(format!("read failed: {}", e.message));
                        return None;
                    }
                },
            }
        }
    }

    /// Send one reply, shaped by the fault mode. false = the session is over.
    fn reply(&self, msg: &[u8], fd: Option<BorrowedFd<'_>>) -> bool {
        if let Fault::Stall(delay) = self.sh.fault {
            self.sh.log(format!("stalling {delay:?} before replying {}", shown(msg)));
            if let Wake::Stop = self.sh.wait(None, Some(Instant::now() + delay)) {
                return false;
            }
        }
        let bytes = self.sh.fault.wire_bytes(msg);
        match self.conn.send(&bytes, fd) {
            Ok(()) => {
                let with = if fd.is_some() { " + fd" } else { "" };
                self.sh.log(format!("-> {}{with}", shown(&bytes)));
                true
            }
            Err(e) => {
                self.sh.log(format!("reply {} failed: {}", shown(&bytes), e.message));
                false
            }
        }
    }

    pub fn run(&self) {
        let Some(first) = self.read() else { return };
        // Deviation (4): any fd that came with it is closed right here.
        let Received { bytes, fd, .. } = first;
        drop(fd);
        let text = String::from_utf8_lossy(&bytes);
        match self.sh.fault {
            Fault::Silent => {
                while let Some(r) = self.read() {
                    drop(r);
                }
                return;
            }
            Fault::CloseAfterConnect => {
                self.sh.log("fault close-after-connect: closing without reply");
                return;
            }
            Fault::Nak => {
                if !self.reply(msg::NAK, None) {
                    return;
                }
                while let Some(r) = self.read() {
                    drop(r.fd);
                    if !self.reply(msg::NAK, None) {
                        return;
                    }
                }
                return;
            }
            _ => {}
        }
        if !text.contains(msg::CONNECT) {
            self.sh.log("first record has no /connect: closing without reply (as the Device Plugin does)");
            return;
        }
        match self.sh.fault {
            Fault::HostNak => {
                self.reply(msg::HOST_NAK, None);
                return;
            }
            Fault::ErrorThenHostNak => {
                let _ = self.reply(msg::ERROR, None) && self.reply(msg::HOST_NAK, None);
                return;
            }
            _ => {}
        }
        let parts: Vec<&str> = text.split(',').collect();
        if parts.len() != 2 || parts[0] != msg::CONNECT {
            self.sh.log("malformed /connect: /host_nak");
            self.reply(msg::HOST_NAK, None);
            return;
        }
        let pod = parts[1].replace(' ', "");
        match self.sh.pods.check(&pod) {
            PodVerdict::Valid => {
                self.sh.log(format!("pod {pod:?} validated"));
                if !self.reply(msg::HOST_OK, None) {
                    return;
                }
            }
            PodVerdict::Invalid => {
                self.sh.log(format!("pod {pod:?} not valid: /host_nak"));
                self.reply(msg::HOST_NAK, None);
                return;
            }
            PodVerdict::Error => {
                self.sh.log(format!("pod {pod:?}: validator error: /error, /host_nak"));
                let _ = self.reply(msg::ERROR, None) && self.reply(msg::HOST_NAK, None);
                return;
            }
        }
        // The connected loop, matched in the Device Plugin's order.
        while let Some(Received { bytes, fd, .. }) = self.read() {
            let text = String::from_utf8_lossy(&bytes);
            let go_on = if text.contains(msg::XSK_MAP_FD) {
                drop(fd);
                self.xsk_map_fd(&text)
            } else if text == msg::VERSION {
                drop(fd);
                self.reply(msg::VERSION_REPLY, None)
            } else if text.contains(msg::CONFIG_BUSY_POLL) {
                self.busy_poll(&text, fd)
            } else if text == msg::FIN {
                drop(fd);
                self.reply(msg::FIN_ACK, None);
                self.sh.log("session finished");
                return;
            } else {
                drop(fd);
                self.reply(msg::NAK, None)
            };
            if !go_on {
                return;
            }
        }
    }

    fn xsk_map_fd(&self, text: &str) -> bool {
        let stripped = text.replace(' ', "");
        let parts: Vec<&str> = stripped.split(',').collect();
        if parts.len() != 2 {
            return self.reply(msg::NAK, None);
        }
        // Hardening (6): only the configured interfaces (exact name).
        let Some((_, map)) = self.sh.maps.iter().find(|(name, _)| name == parts[1]) else {
            self.sh.log(format!("interface {:?} is not served here: /fd_nak", parts[1]));
            return self.reply(msg::FD_NAK, None);
        };
        match self.sh.fault {
            Fault::FdNak => self.reply(msg::FD_NAK, None),
            Fault::FdAckWithoutFd => self.reply(msg::FD_ACK, None),
            Fault::FdAckWithSuffix => {
                let m = format!("/fd_ack,{}", map.as_raw_fd());
                self.reply(m.as_bytes(), Some(map.as_fd()))
            }
            _ => self.reply(msg::FD_ACK, Some(map.as_fd())),
        }
    }

    /// Deviation (5): one reply in every case; the session continues.
    fn busy_poll(&self, text: &str, fd: Option<OwnedFd>) -> bool {
        let stripped = text.replace(' ', "");
        let parts: Vec<&str> = stripped.split(',').collect();
        if parts.len() != 3 {
            return self.reply(msg::NAK, None);
        }
        let Some(fd) = fd else {
            self.sh.log("/config_busy_poll without an fd: nak");
            return self.reply(msg::BUSY_POLL_NAK, None);
        };
        let (Ok(timeout), Ok(budget)) = (parts[1].parse::<i32>(), parts[2].parse::<i32>()) else {
            self.sh.log("/config_busy_poll arguments are not integers: nak");
            return self.reply(msg::BUSY_POLL_NAK, None);
        };
        match configure_busy_poll(fd.as_fd(), timeout, budget) {
            Ok(()) => {
                self.sh.log(format!("busy poll set: timeout {timeout} us, budget {budget}"));
                drop(fd);
                self.reply(msg::BUSY_POLL_ACK, None)
            }
            Err(e) => {
                self.sh.log(format!("busy poll refused: {e}"));
                drop(fd);
                self.reply(msg::BUSY_POLL_NAK, None)
            }
        }
    }
}

fn sockopt_int(fd: BorrowedFd<'_>, opt: libc::c_int, val: libc::c_int) -> std::result::Result<(), String> {
    sys::setsockopt_int(fd, libc::SOL_SOCKET, opt, val)
        .map_err(|e| format!("setsockopt({opt}, {val}): {}", std::io::Error::from_raw_os_error(e)))
}

/// What the Device Plugin's `Configure_busy_poll` does: SO_PREFER_BUSY_POLL
/// 1, SO_BUSY_POLL timeout, SO_BUSY_POLL_BUDGET budget; on failure, try to
/// reset to 0. Only on AF_XDP sockets (hardening, see deviation 5).
fn configure_busy_poll(fd: BorrowedFd<'_>, timeout: i32, budget: i32) -> std::result::Result<(), String> {
    let domain =
        sys::socket_domain(fd).map_err(|e| format!("the fd is not a socket: {}", std::io::Error::from_raw_os_error(e)))?;
    if domain != libc::AF_XDP {
        return Err(format!("the fd is a socket of family {domain}, not AF_XDP ({})", libc::AF_XDP));
    }
    let result = sockopt_int(fd, libc::SO_PREFER_BUSY_POLL, 1)
        .and_then(|_| sockopt_int(fd, libc::SO_BUSY_POLL, timeout))
        .and_then(|_| sockopt_int(fd, libc::SO_BUSY_POLL_BUDGET, budget));
    if result.is_err() {
        let _ = sockopt_int(fd, libc::SO_PREFER_BUSY_POLL, 0);
        let _ = sockopt_int(fd, libc::SO_BUSY_POLL, 0);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_poll_refuses_non_xdp_sockets() {
        let (a, _b) = SeqpacketConn::pair().unwrap();
        let e = configure_busy_poll(a.as_fd(), 20, 64).unwrap_err();
        assert!(e.contains("not AF_XDP"), "{e}");
    }
}
