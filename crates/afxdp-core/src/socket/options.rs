//! Per-socket knobs and wakeups: XDP_OPTIONS, tx kicks, rx wakeups and
//! preferred busy polling.

use super::{getsockopt, setsockopt, XskSocket};
use crate::sys;
use crate::{Code, Error, Result};
use std::os::fd::AsFd;

/// What a tx kick achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// The kernel took the request (in copy mode it transmitted a batch).
    Done,
    /// The kernel could not make progress now (EAGAIN/EBUSY/ENOBUFS/EINTR:
    /// completion ring full, another sender, device queue full): reap
    /// completions and try again.
    Again,
}

impl XskSocket {
    /// XDP_OPTIONS: whether the kernel bound this socket in zero-copy mode.
    pub fn zero_copy(&self) -> Result<bool> {
        let mut opts = libc::xdp_options { flags: 0 };
        getsockopt(self.fd(), libc::SOL_XDP, libc::XDP_OPTIONS, &mut opts)
            .map_err(|e| Error::sys("getsockopt(XDP_OPTIONS)", e))?;
        Ok(opts.flags & libc::XDP_OPTIONS_ZEROCOPY != 0)
    }

    /// sendto(fd, NULL, 0, MSG_DONTWAIT): start transmission of the tx
    /// ring. In copy mode this transmits synchronously, at most a small
    /// batch per call (32 in current kernels), and answers EAGAIN if more is
    /// left. ENETDOWN (interface down) is not an error: the descriptors stay
    /// on the ring.
    pub fn kick_tx(&self) -> Result<Kick> {
        match sys::send_empty(self.fd(), libc::MSG_DONTWAIT) {
            Ok(()) | Err(libc::ENETDOWN) => Ok(Kick::Done),
            Err(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::EINTR) => Ok(Kick::Again),
            Err(e) => Err(Error::sys("sendto(AF_XDP tx kick)", e)),
        }
    }

    /// recvfrom(fd, NULL, 0, MSG_DONTWAIT): let the driver pick up fill
    /// ring entries (zero-copy need_wakeup) or busy-poll its NAPI context.
    pub fn wake_rx(&self) -> Result<()> {
        match sys::recv_empty(self.fd(), libc::MSG_DONTWAIT) {
            Ok(()) | Err(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::EINTR | libc::ENETDOWN) => Ok(()),
            Err(e) => Err(Error::sys("recvfrom(AF_XDP rx wakeup)", e)),
        }
    }

    /// poll() for `events` (POLLIN/POLLOUT) up to `timeout_ms`; true when ready.
    pub fn poll(&self, events: libc::c_short, timeout_ms: i32) -> Result<bool> {
        let revents = sys::poll_one(self.fd.as_fd(), events, timeout_ms).map_err(|e| Error::sys("poll(AF_XDP socket)", e))?;
        Ok(revents & events != 0)
    }

    /// The socket's pending error (SO_ERROR; reading clears it), e.g.
    /// ENETDOWN after its interface was unregistered. Such a socket is
    /// unbound and its poll() reports nothing at all, so event loops must
    /// ask.
    pub fn take_error(&self) -> Option<i32> {
        let mut err: libc::c_int = 0;
        match getsockopt(self.fd(), libc::SOL_SOCKET, libc::SO_ERROR, &mut err) {
            Ok(_) if err != 0 => Some(err),
            Ok(_) => None,
            Err(e) => Some(e),
        }
    }

    /// poll() for `events` up to `timeout_ms` (-1: no limit); returns the
    /// ready subset of `events` plus POLLERR/POLLHUP/POLLNVAL if the kernel
    /// reports them, or 0 on timeout or EINTR.
    pub fn wait(&self, events: libc::c_short, timeout_ms: i32) -> Result<libc::c_short> {
        let revents = sys::poll_one(self.fd.as_fd(), events, timeout_ms).map_err(|e| Error::sys("poll(AF_XDP socket)", e))?;
        Ok(revents & (events | libc::POLLERR | libc::POLLHUP | libc::POLLNVAL))
    }

    /// Preferred busy polling (Linux >= 5.11): the application's syscalls
    /// drive the driver's NAPI loop instead of interrupts. `timeout_us` 0
    /// turns it off. SO_PREFER_BUSY_POLL and a budget above the default need
    /// CAP_NET_ADMIN.
    pub fn set_busy_poll(&self, timeout_us: u32, budget: u32) -> Result<()> {
        if budget > u16::MAX as u32 {
            return Err(Error::invalid(format!("busy poll budget {budget} must be at most 65535")));
        }
        if timeout_us > i32::MAX as u32 {
            return Err(Error::invalid(format!("busy poll timeout {timeout_us} us is too large")));
        }
        let on = (timeout_us > 0) as libc::c_int;
        let steps: [(libc::c_int, &str, libc::c_int); 3] = [
            (libc::SO_PREFER_BUSY_POLL, "SO_PREFER_BUSY_POLL", on),
            (libc::SO_BUSY_POLL, "SO_BUSY_POLL", timeout_us as libc::c_int),
            (libc::SO_BUSY_POLL_BUDGET, "SO_BUSY_POLL_BUDGET", if on == 1 { budget as libc::c_int } else { 0 }),
        ];
        for (opt, name, val) in steps {
            if opt == libc::SO_BUSY_POLL_BUDGET && on == 0 {
                continue; // nothing to undo; 0 would be refused as a budget
            }
            setsockopt(self.fd(), libc::SOL_SOCKET, opt, &val).map_err(|e| match e {
                libc::EPERM | libc::EACCES => Error::with_errno(
                    Code::Permission,
                    e,
                    format!("setsockopt({name}={val}) was refused: preferred busy polling needs CAP_NET_ADMIN"),
                ),
                libc::ENOPROTOOPT | libc::EINVAL => Error::with_errno(
                    Code::NotSupported,
                    e,
                    format!(
                        "setsockopt({name}={val}) was refused: busy polling needs Linux >= 5.11 with CONFIG_NET_RX_BUSY_POLL"
                    ),
                ),
                _ => Error::sys(format!("setsockopt({name}={val})"), e),
            })?;
        }
        Ok(())
    }
}
