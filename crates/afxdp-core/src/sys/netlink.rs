//! Netlink framing: a socket with a receive deadline, requests built from
//! a header, a fixed payload and attributes, and replies cut into messages
//! and attributes. Used by `netdev` (rtnetlink link info, the generic
//! netlink "netdev" family).

use super::{owned, SysResult};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

pub const NETLINK_ROUTE: libc::c_int = 0;
pub const NETLINK_GENERIC: libc::c_int = 16;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
/// `struct nlmsghdr`.
const HEADER_LEN: usize = 16;
/// `struct nlattr`.
const ATTR_HEADER_LEN: usize = 4;

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A netlink socket of `protocol` in this thread's network namespace whose
/// receives give up after 1 s (a kernel that never answers must not hang us).
pub fn socket(protocol: libc::c_int) -> SysResult<OwnedFd> {
    // SAFETY: plain syscall; the result is checked by `owned`.
    let sock = owned(unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, protocol) })?;
    use std::os::fd::AsFd;
    super::set_socket_timeout(sock.as_fd(), libc::SO_RCVTIMEO, Duration::from_secs(1))?;
    Ok(sock)
}

/// One request message: header, then `payload` (e.g. `ifinfomsg` or the
/// genl header), then each attribute, each padded to 4 bytes.
pub fn request(ty: u16, seq: u32, payload: &[u8], attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut m = vec![0u8; HEADER_LEN];
    m.extend_from_slice(payload);
    m.resize(align4(m.len()), 0);
    for (aty, data) in attrs {
        m.extend_from_slice(&((ATTR_HEADER_LEN + data.len()) as u16).to_ne_bytes());
        m.extend_from_slice(&aty.to_ne_bytes());
        m.extend_from_slice(data);
        m.resize(align4(m.len()), 0);
    }
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m[4..6].copy_from_slice(&ty.to_ne_bytes());
    m[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    m
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

/// The messages in one datagram: (type, payload after the header). Stops at
/// the first malformed header.
pub fn messages(data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + HEADER_LEN <= data.len() {
        let (Some(len), Some(ty)) = (u32_at(data, off), u16_at(data, off + 4)) else { break };
        let len = len as usize;
        if len < HEADER_LEN || off + len > data.len() {
            break;
        }
        out.push((ty, &data[off + HEADER_LEN..off + len]));
        off += align4(len);
    }
    out
}

/// The attributes in `data`: (type without the nested/byte-order flags,
/// value). Stops at the first malformed one.
pub fn attributes(data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + ATTR_HEADER_LEN <= data.len() {
        let (Some(len), Some(ty)) = (u16_at(data, off), u16_at(data, off + 2)) else { break };
        let len = len as usize;
        if len < ATTR_HEADER_LEN || off + len > data.len() {
            break;
        }
        out.push((ty & 0x3fff, &data[off + ATTR_HEADER_LEN..off + len]));
        off += align4(len);
    }
    out
}

/// The errno an NLMSG_ERROR payload carries (0 = an ACK).
pub fn error_code(payload: &[u8]) -> i32 {
    u32_at(payload, 0).map_or(libc::EPROTO, |e| -(e as i32))
}

/// Send `request` and return the first reply message of type `want`
/// (its payload). An NLMSG_ERROR reply gives its errno; NLMSG_DONE or
/// nothing matching after a few datagrams gives ENOENT.
pub fn call(sock: BorrowedFd<'_>, request: &[u8], want: u16) -> SysResult<Vec<u8>> {
    // SAFETY: request is a live buffer of the given length.
    let sent = unsafe { libc::send(sock.as_raw_fd(), request.as_ptr().cast(), request.len(), 0) };
    if sent < 0 {
        return Err(super::errno());
    }
    let mut buf = vec![0u8; 64 * 1024];
    // One reply message (plus possibly NLMSG_DONE); bounded attempts.
    for _ in 0..4 {
        // SAFETY: buf is writable for its length; SO_RCVTIMEO bounds the wait.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(super::errno());
        }
        if (n as usize) < HEADER_LEN {
            return Err(libc::EPROTO);
        }
        for (ty, payload) in messages(&buf[..n as usize]) {
            match ty {
                NLMSG_ERROR => {
                    return Err(match error_code(payload) {
                        0 => libc::ENOENT,
                        e => e,
                    })
                }
                NLMSG_DONE => return Err(libc::ENOENT),
                t if t == want => return Ok(payload.to_vec()),
                _ => {}
            }
        }
    }
    Err(libc::ENOENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_round_trips() {
        let m = request(0x10, 7, &[3, 1, 0, 0], &[(2, b"netdev\0"), (1, &[1, 2])]);
        assert_eq!(m.len(), 16 + 4 + 12 + 8);
        let msgs = messages(&m);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].0, 0x10);
        let attrs = attributes(&msgs[0].1[4..]);
        assert_eq!(attrs, vec![(2, &b"netdev\0"[..]), (1, &[1u8, 2][..])]);
        assert_eq!(error_code(&(-libc::ENODEV).to_ne_bytes()), libc::ENODEV);
        // A cut message is dropped, not read past its end.
        assert!(messages(&m[..m.len() - 1]).is_empty());
    }
}
