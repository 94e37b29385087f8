//! File system calls std does not offer: statfs, mount/umount of a bpffs,
//! getrandom.

use super::{errno, SysResult};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `statfs`'s magic for a bpffs.
pub const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

fn cpath(p: &Path) -> SysResult<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| libc::EINVAL)
}

/// `f_type` of the file system holding `path`.
pub fn fs_type(path: &Path) -> SysResult<i64> {
    let c = cpath(path)?;
    // SAFETY: all-zero is a valid statfs.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid C string, st a writable statfs.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } < 0 {
        return Err(errno());
    }
    Ok(st.f_type as i64)
}

/// `mount -t bpf -o mode=0755 bpf <dir>`.
pub fn mount_bpffs(dir: &Path) -> SysResult<()> {
    let c = cpath(dir)?;
    // SAFETY: valid C strings; plain syscall.
    let r = unsafe { libc::mount(c"bpf".as_ptr(), c.as_ptr(), c"bpf".as_ptr(), 0, c"mode=0755".as_ptr().cast()) };
    if r < 0 {
        return Err(errno());
    }
    Ok(())
}

/// Unmount `dir`, lazily (MNT_DETACH) if it is busy; best effort.
pub fn unmount(dir: &Path) {
    let Ok(c) = cpath(dir) else { return };
    // SAFETY: valid C string; plain syscalls.
    unsafe {
        if libc::umount2(c.as_ptr(), 0) < 0 {
            libc::umount2(c.as_ptr(), libc::MNT_DETACH);
        }
    }
}

/// Fill `buf` from the kernel's random source (retrying EINTR and short reads).
pub fn getrandom(buf: &mut [u8]) -> SysResult<()> {
    let mut got = 0;
    for _ in 0..8 {
        // SAFETY: writing into the rest of `buf`, within its length.
        let n = unsafe { libc::getrandom(buf[got..].as_mut_ptr().cast(), buf.len() - got, 0) };
        if n > 0 {
            got += n as usize;
            if got == buf.len() {
                return Ok(());
            }
        } else if n < 0 && errno() != libc::EINTR {
            return Err(errno());
        }
    }
    Err(libc::EIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statfs_and_random() {
        assert_ne!(fs_type(Path::new("/")).unwrap(), 0);
        assert_eq!(fs_type(Path::new("/nonexistent-afxdp")), Err(libc::ENOENT));
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        getrandom(&mut a).unwrap();
        getrandom(&mut b).unwrap();
        assert_ne!(a, b);
    }
}
