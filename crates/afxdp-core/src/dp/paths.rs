//! File system bookkeeping of the Device Plugin server: directories it
//! creates (and removes again), pod-path links, socket names, and the check
//! that tells a stale socket file (its server died) from a live one.

use super::config::POD_SOCKET_NAME;
use super::transport::SeqpacketConn;
use crate::sys::fs as sys_fs;
use crate::{Error, Result};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Something start() created, undone in reverse on stop.
#[derive(Debug)]
pub(crate) enum Undo {
    File(PathBuf),
    Dir(PathBuf),
    Unmount(PathBuf),
}

impl Undo {
    pub fn run(self) {
        match self {
            Undo::File(p) => {
                let _ = std::fs::remove_file(p);
            }
            // Only empty directories go: never anything someone else put there.
            Undo::Dir(p) => {
                let _ = std::fs::remove_dir(p);
            }
            Undo::Unmount(p) => sys_fs::unmount(&p),
        }
    }
}

/// What is at a socket path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SocketFile {
    Missing,
    /// A socket file nobody listens on (connect: ECONNREFUSED): left by a
    /// server that died.
    Stale,
    /// A socket someone listens on (or answers in some other way).
    Live,
    /// Not a socket (a regular file, a directory, ...).
    Other,
}

/// (device, inode) of the files of every listening Unix socket in this
/// network namespace (/proc/net/unix lists each with the path it bound).
fn listening_files() -> Vec<(u64, u64)> {
    const SO_ACCEPTCON: u32 = 1 << 16;
    let Ok(text) = std::fs::read_to_string("/proc/net/unix") else { return Vec::new() };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let flags = u32::from_str_radix(f.get(3)?, 16).ok()?;
            // (A path with a run of spaces would come out with one: rare, and
            // then the connect below still tells.)
            let path = f.get(7..)?.join(" ");
            if flags & SO_ACCEPTCON == 0 || !path.starts_with('/') {
                return None;
            }
            let m = std::fs::metadata(&path).ok()?;
            Some((m.dev(), m.ino()))
        })
        .collect()
}

/// What is at `path`. A listener is first looked for in /proc/net/unix (no
/// connection made, so another server's one allocation is not used up);
/// otherwise a connect tells a stale file (ECONNREFUSED) from a listener in
/// another network namespace.
pub(crate) fn socket_file(path: &Path) -> SocketFile {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return SocketFile::Missing };
    if !meta.file_type().is_socket() {
        return SocketFile::Other;
    }
    if listening_files().contains(&(meta.dev(), meta.ino())) {
        return SocketFile::Live;
    }
    match SeqpacketConn::connect(path, Duration::from_millis(200)) {
        Ok(_) => SocketFile::Live,
        Err(e) if e.errno == Some(libc::ECONNREFUSED) => SocketFile::Stale,
        Err(_) => SocketFile::Live,
    }
}

/// Remove `path` if it is a stale socket; Ok(true) if removed. A live socket
/// or another kind of file is an error naming it (never removed).
pub(crate) fn clear_stale_socket(path: &Path, what: &str) -> Result<bool> {
    match socket_file(path) {
        SocketFile::Missing => Ok(false),
        SocketFile::Stale => {
            std::fs::remove_file(path).map_err(|e| io_err(format!("remove stale socket {}", path.display()), e))?;
            Ok(true)
        }
        SocketFile::Live => Err(Error::invalid(format!(
            "{what} {} is live: another server listens there; stop it, or use another directory",
            path.display()
        ))),
        SocketFile::Other => Err(Error::invalid(format!(
            "{what} {} already exists and is not a socket: remove it with rm if nothing needs it",
            path.display()
        ))),
    }
}

/// Host sockets (`<uuid>.sock`) in `dir` that are stale: removed. A live
/// one is an error naming it. Returns the paths removed.
pub(crate) fn clear_stale_host_sockets(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(removed) };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.len() != 41 || !name.ends_with(".sock") {
            continue;
        }
        let path = entry.path();
        if matches!(socket_file(&path), SocketFile::Other) {
            continue;
        }
        if clear_stale_socket(&path, "host socket")? {
            removed.push(path);
        }
    }
    Ok(removed)
}

pub(crate) fn io_err(what: String, e: std::io::Error) -> Error {
    Error::sys(what, e.raw_os_error().unwrap_or(libc::EIO))
}

pub(crate) fn chown(path: &Path, owner: (Option<u32>, Option<u32>)) -> Result<()> {
    if owner == (None, None) {
        return Ok(());
    }
    // None leaves that id unchanged.
    std::os::unix::fs::chown(path, owner.0, owner.1)
        .map_err(|e| io_err(format!("chown({}, {:?}:{:?})", path.display(), owner.0, owner.1), e))
}

pub(crate) fn chmod(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_err(format!("chmod({}, {mode:o})", path.display()), e))
}

/// Create `path` and missing parents: parents 0755, `path` itself
/// `leaf_mode` (set explicitly, whatever the umask). Every directory
/// created is recorded for removal.
pub(crate) fn mkdirs(path: &Path, leaf_mode: u32, undo: &mut Vec<Undo>) -> Result<()> {
    let mut missing = Vec::new();
    let mut p = Some(path);
    while let Some(dir) = p {
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => return Err(Error::invalid(format!("{} exists and is not a directory", dir.display()))),
            Err(_) => missing.push(dir.to_path_buf()),
        }
        p = dir.parent();
    }
    for dir in missing.iter().rev() {
        match std::fs::create_dir(dir) {
            Ok(()) => undo.push(Undo::Dir(dir.clone())),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(format!("mkdir({})", dir.display()), e)),
        }
        chmod(dir, if dir == path { leaf_mode } else { 0o755 })?;
    }
    Ok(())
}

/// Point `link` at `host` atomically: a hard link (same inode, as a bind
/// mount would give) or, where impossible, a symlink; renamed into place.
/// Ok(true) = hard link, Ok(false) = symlink.
pub(crate) fn relink(host: &Path, link: &Path) -> Result<bool> {
    let tmp = link.with_file_name(format!(".{POD_SOCKET_NAME}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let hard = std::fs::hard_link(host, &tmp).is_ok();
    if !hard {
        std::os::unix::fs::symlink(host, &tmp).map_err(|e| io_err(format!("link {} -> {}", tmp.display(), host.display()), e))?;
    }
    std::fs::rename(&tmp, link).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(format!("rename({}, {})", tmp.display(), link.display()), e)
    })?;
    Ok(hard)
}

/// A random RFC 4122 version-4 UUID, like the Device Plugin's socket names.
pub(crate) fn uuid_v4() -> Result<String> {
    let mut b = [0u8; 16];
    sys_fs::getrandom(&mut b).map_err(|e| Error::sys("getrandom", e))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

pub(crate) fn show_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "none".into();
    }
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        let u = uuid_v4().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
        assert_ne!(u, uuid_v4().unwrap());
    }

    #[test]
    fn stale_and_live_sockets() {
        let dir = std::env::temp_dir().join(format!("afxdp-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!("{}.sock", uuid_v4().unwrap()));
        let l = crate::dp::transport::SeqpacketListener::bind(&p, 0o600, None).unwrap();
        assert_eq!(socket_file(&p), SocketFile::Live);
        assert!(clear_stale_socket(&p, "host socket").unwrap_err().message.contains("is live"));
        // A listener gone without removing its file (a crash).
        let kept = dir.join("kept.sock");
        std::fs::hard_link(&p, &kept).unwrap();
        drop(l);
        assert_eq!(socket_file(&kept), SocketFile::Stale);
        std::fs::rename(&kept, &p).unwrap();
        assert_eq!(clear_stale_host_sockets(&dir).unwrap(), vec![p.clone()]);
        assert_eq!(socket_file(&p), SocketFile::Missing);
        std::fs::write(&p, b"").unwrap();
        assert!(clear_stale_socket(&p, "x").unwrap_err().message.contains("not a socket"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
