//! An AF_PACKET raw socket on one interface: an independent traffic peer for
//! tests, the CLI demo and the benchmark (it shares no code path with XSK).

use crate::sys::{self, errno};
use crate::{Code, Error, Result};
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Frames per sendmmsg call (stack arrays, no allocation per batch).
const BATCH: usize = 64;
/// Largest frame we receive (MTU 9000 + header, rounded).
const MAX_FRAME: usize = 9216;

pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
    ifname: String,
}

fn set_int(fd: RawFd, level: libc::c_int, name: libc::c_int, v: libc::c_int) -> std::result::Result<(), i32> {
    sys::setsockopt(fd, level, name, &v)
}

impl PacketSocket {
    /// Open on `ifname` in the calling thread's network namespace.
    pub fn open(ifname: &str) -> Result<PacketSocket> {
        let cname = std::ffi::CString::new(ifname).map_err(|_| Error::invalid("interface name contains NUL"))?;
        // SAFETY: valid C string.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(Error::new(
                Code::NoSuchInterface,
                format!("interface {ifname} does not exist in this network namespace"),
            ));
        }
        // Protocol 0: receive nothing until bound, so no frames from other
        // interfaces slip in between socket() and bind().
        let fd = sys::socket(libc::AF_PACKET, libc::SOCK_RAW, 0).map_err(|e| {
            let mut err = Error::sys("socket(AF_PACKET)", e);
            if e == libc::EPERM {
                err.message.push_str(": AF_PACKET sockets need CAP_NET_RAW");
            }
            err
        })?;
        let raw = fd.as_raw_fd();
        // Large receive buffer: tests send bursts faster than they read.
        // SO_RCVBUFFORCE ignores rmem_max but needs CAP_NET_ADMIN.
        let buf = 32 << 20;
        if set_int(raw, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, buf).is_err() {
            let _ = set_int(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, buf);
        }
        // Our own transmissions must not show up as received traffic.
        set_int(raw, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, 1)
            .map_err(|e| Error::sys("setsockopt(PACKET_IGNORE_OUTGOING)", e))?;
        // SAFETY: all-zero sockaddr_ll is valid; fields set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: sll is a valid sockaddr_ll of the length passed.
        let rc = unsafe {
            libc::bind(raw, (&sll as *const libc::sockaddr_ll).cast(), size_of::<libc::sockaddr_ll>() as libc::socklen_t)
        };
        if rc != 0 {
            return Err(Error::sys(format!("bind(AF_PACKET, {ifname})"), errno()));
        }
        Ok(PacketSocket { fd, ifindex, ifname: ifname.to_string() })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The interface's MAC address (SIOCGIFHWADDR).
    pub fn mac(&self) -> Result<[u8; 6]> {
        // SAFETY: all-zero ifreq is valid.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in ifr.ifr_name.iter_mut().zip(self.ifname.bytes().take(libc::IFNAMSIZ - 1)) {
            *d = s as libc::c_char;
        }
        // SAFETY: ifr is a valid ifreq for this ioctl.
        if unsafe { libc::ioctl(self.fd(), libc::SIOCGIFHWADDR as _, &mut ifr) } != 0 {
            return Err(Error::last_os(format!("ioctl(SIOCGIFHWADDR, {})", self.ifname)));
        }
        // SAFETY: the kernel filled ifru_hwaddr.
        let sa = unsafe { ifr.ifr_ifru.ifru_hwaddr };
        let mut mac = [0u8; 6];
        for (d, s) in mac.iter_mut().zip(sa.sa_data.iter()) {
            *d = *s as u8;
        }
        Ok(mac)
    }

    /// Send one complete Ethernet frame.
    pub fn send(&self, frame: &[u8]) -> Result<()> {
        // SAFETY: frame is a valid buffer of its length.
        let rc = unsafe { libc::send(self.fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if rc < 0 {
            return Err(Error::last_os(format!("send(AF_PACKET, {}, {} bytes)", self.ifname, frame.len())));
        }
        Ok(())
    }

    /// Send frames with sendmmsg, up to 64 per system call; returns how
    /// many were sent (less than `frames.len()` only when the kernel pushes
    /// back with ENOBUFS/EAGAIN).
    pub fn send_batch(&self, frames: &[&[u8]]) -> Result<usize> {
        let mut sent = 0;
        while sent < frames.len() {
            let chunk = &frames[sent..frames.len().min(sent + BATCH)];
            // SAFETY: all-zero iovec/mmsghdr are valid; filled below.
            let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            for (i, f) in chunk.iter().enumerate() {
                iov[i] = libc::iovec { iov_base: f.as_ptr() as *mut libc::c_void, iov_len: f.len() };
                msgs[i].msg_hdr.msg_iov = &mut iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: msgs[..chunk.len()] point at live iovecs over live frames.
            let rc = unsafe { libc::sendmmsg(self.fd(), msgs.as_mut_ptr(), chunk.len() as libc::c_uint, 0) };
            if rc < 0 {
                let e = errno();
                if (e == libc::ENOBUFS || e == libc::EAGAIN) && sent > 0 {
                    break;
                }
                return Err(Error::sys(format!("sendmmsg(AF_PACKET, {})", self.ifname), e));
            }
            sent += rc as usize;
            if (rc as usize) < chunk.len() {
                break;
            }
        }
        Ok(sent)
    }

    /// Receive one frame into `buf`, waiting up to `timeout`. Ok(None) on
    /// timeout; frames longer than `buf` are truncated (the returned length
    /// is the frame's real length).
    pub fn recv(&self, buf: &mut [u8], timeout: Duration) -> Result<Option<usize>> {
        let deadline = Instant::now() + timeout;
        loop {
            // SAFETY: buf is writable for its length.
            let rc = unsafe { libc::recv(self.fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT | libc::MSG_TRUNC) };
            if rc >= 0 {
                return Ok(Some(rc as usize));
            }
            let e = errno();
            if e != libc::EAGAIN && e != libc::EINTR {
                return Err(Error::sys(format!("recv(AF_PACKET, {})", self.ifname), e));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            let _ = sys::poll_one(self.fd.as_fd(), libc::POLLIN, ms);
        }
    }

    /// Receive until `expected` frames satisfied `pred` or `timeout` passed;
    /// returns how many matched (frames that do not match are skipped and
    /// not counted). Never waits longer than `timeout`.
    pub fn recv_count_matching(&self, mut pred: impl FnMut(&[u8]) -> bool, expected: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; MAX_FRAME];
        let mut matched = 0;
        while matched < expected {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.recv(&mut buf, left) {
                Ok(Some(n)) => {
                    if pred(&buf[..n.min(buf.len())]) {
                        matched += 1;
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        matched
    }

    /// Discard everything queued; returns how many frames were dropped.
    pub fn drain(&self) -> usize {
        let mut buf = [0u8; 64];
        let mut n = 0;
        // Bounded: the receive buffer holds a finite number of frames.
        while n < 1_000_000 {
            match self.recv(&mut buf, Duration::ZERO) {
                Ok(Some(_)) => n += 1,
                _ => break,
            }
        }
        n
    }
}

/// Build a minimal Ethernet + IPv4 + UDP-like test frame of `len` bytes
/// (>= 60) carrying `seq` at offset 42; ethertype 0x88b5 (IEEE local
/// experimental) so no stack on the way reacts to it.
pub fn test_frame(dst: [u8; 6], src: [u8; 6], seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len.max(60)];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&TEST_ETHERTYPE.to_be_bytes());
    f[14..18].copy_from_slice(b"AFXD");
    f[42..46].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f.iter_mut().enumerate().skip(46) {
        *b = (i as u32 ^ seq) as u8;
    }
    f
}

/// Ethertype of `test_frame` (0x88b5, local experimental).
pub const TEST_ETHERTYPE: u16 = 0x88b5;

/// The sequence number of a `test_frame`, or None for any other frame.
pub fn test_frame_seq(f: &[u8]) -> Option<u32> {
    if f.len() < 46 || f[12..14] != TEST_ETHERTYPE.to_be_bytes() || &f[14..18] != b"AFXD" {
        return None;
    }
    Some(u32::from_be_bytes([f[42], f[43], f[44], f[45]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_frames_round_trip() {
        let f = test_frame([1; 6], [2; 6], 0xdead_beef, 64);
        assert_eq!(f.len(), 64);
        assert_eq!(test_frame_seq(&f), Some(0xdead_beef));
        assert_eq!(test_frame_seq(&f[..40]), None);
        assert_eq!(test_frame(*b"\0\0\0\0\0\0", [0; 6], 1, 10).len(), 60);
    }

    #[test]
    fn missing_interface_is_named() {
        let e = PacketSocket::open("afxdp-nope0").err().unwrap();
        assert_eq!(e.code, Code::NoSuchInterface);
        assert!(e.message.contains("afxdp-nope0"));
    }
}
