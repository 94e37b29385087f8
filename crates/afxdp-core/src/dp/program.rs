//! The redirect program of one served interface: attached through netlink so
//! that it outlives the server (pods keep their traffic while dp-serve is
//! down, as with the real Device Plugin), recorded so that a restarted server
//! can adopt it, and watched so that a program removed from under the server
//! (DPDK's `eth_dev_close`, `ip link set dev X xdp off`) is re-attached.
//!
//! Ownership is proven by a *record*, one file per (network namespace,
//! ifindex) in the state directory, holding the program and map ids the
//! server attached. The record is flock()ed while a server runs, so two
//! servers never serve one interface, and a record nobody holds was left by a
//! server that died. A program is adopted only if it is the recorded one and
//! still afxdp's redirect program; anything else (another tool's program, an
//! afxdp forwarder's bpf_link program) is never replaced or detached.

use crate::bpf::program::{attach_fd, attach_once, detach_netlink_if_ours, load_redirect, AttachKind, REDIRECT_PROG, XSKS_MAP};
use crate::bpf::syscall::{prog_info, ProgInfo};
use crate::bpf::{query, AttachedMode, XdpMode, XskMap};
use crate::netdev::Netdev;
use crate::netns::NetnsGuard;
use crate::{Code, Error, Result};
use libbpf_rs::libbpf_sys;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

fn attached_as(mode: AttachedMode) -> Option<XdpMode> {
    match mode {
        AttachedMode::Native => Some(XdpMode::Native),
        AttachedMode::Generic => Some(XdpMode::Generic),
        AttachedMode::Offload => None,
    }
}

/// How a device's program came to be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Loaded and attached by this server.
    Attached,
    /// Found attached, left by an earlier server that did not stop cleanly.
    Adopted,
}

/// What an earlier (or this) server recorded for one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Recorded {
    prog_id: u32,
    map_id: u32,
    pid: u32,
}

/// The locked record file of one interface.
struct Record {
    file: File,
    path: PathBuf,
    previous: Option<Recorded>,
}

impl Record {
    fn lock(state_dir: &Path, netns_ino: u64, ifindex: u32, iface: &str) -> Result<Record> {
        std::fs::create_dir_all(state_dir).map_err(|e| {
            let mut err = Error::sys(format!("mkdir -p {}", state_dir.display()), e.raw_os_error().unwrap_or(libc::EIO));
            err.message.push_str(": the server records its programs there; choose a writable directory (state_dir, --state-dir)");
            err
        })?;
        let path = state_dir.join(format!("netns-{netns_ino}-ifindex-{ifindex}"));
        // A stopping server removes its record while holding the lock: retry
        // if the locked file is no longer the one at `path`.
        for _ in 0..3 {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(libc::O_CLOEXEC)
                .open(&path)
                .map_err(|e| Error::sys(format!("open {}", path.display()), e.raw_os_error().unwrap_or(libc::EIO)))?;
            let mut text = String::new();
            // SAFETY: flock on an fd we own.
            let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
            let _ = file.read_to_string(&mut text);
            let previous = parse_record(&text);
            if !locked {
                let pid = previous.map(|r| format!(" (pid {})", r.pid)).unwrap_or_default();
                return Err(Error::invalid(format!(
                    "{iface} is already served by another running afxdp dp-serve{pid}: its record {} is locked; \
                     stop that server first (one server per interface)",
                    path.display()
                )));
            }
            let same = match (file.metadata(), std::fs::metadata(&path)) {
                (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                _ => false,
            };
            if same {
                return Ok(Record { file, path, previous });
            }
        }
        Err(Error::invalid(format!("{} keeps being replaced: is another dp-serve starting and stopping?", path.display())))
    }

    fn write(&mut self, prog_id: u32, map_id: u32, iface: &str) -> Result<()> {
        let line = format!("{prog_id} {map_id} {} {iface}\n", std::process::id());
        // In place (not rename): the lock belongs to this inode.
        let r = self
            .file
            .set_len(0)
            .and_then(|_| self.file.rewind())
            .and_then(|_| self.file.write_all(line.as_bytes()))
            .and_then(|_| self.file.flush());
        r.map_err(|e| Error::sys(format!("write {}", self.path.display()), e.raw_os_error().unwrap_or(libc::EIO)))
    }

    /// Remove the record (graceful stop: nothing left to adopt).
    fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn parse_record(text: &str) -> Option<Recorded> {
    let mut it = text.split_whitespace();
    let prog_id = it.next()?.parse().ok()?;
    let map_id = it.next()?.parse().ok()?;
    let pid = it.next()?.parse().ok()?;
    Some(Recorded { prog_id, map_id, pid })
}

fn fd_from(r: libc::c_int, what: String) -> Result<OwnedFd> {
    if r < 0 {
        return Err(Error::sys(what, -r));
    }
    // SAFETY: libbpf returned a new fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// Take over the program `prog_id` and its `xsks_map`, if it is afxdp's
/// redirect program.
fn adopt(prog_id: u32) -> Result<(OwnedFd, XskMap)> {
    // SAFETY: plain libbpf call.
    let prog_fd = fd_from(unsafe { libbpf_sys::bpf_prog_get_fd_by_id(prog_id) }, format!("BPF_PROG_GET_FD_BY_ID {prog_id}"))?;
    let ProgInfo { name, map_ids, .. } = prog_info(prog_fd.as_fd())?;
    // Both variants' kernel names (15 bytes at most) start with the plain one's.
    if !name.starts_with(REDIRECT_PROG) {
        return Err(Error::new(Code::Bpf, format!("program id {prog_id} is {name:?}, not afxdp's redirect program")));
    }
    for id in map_ids {
        // SAFETY: plain libbpf call.
        let Ok(fd) = fd_from(unsafe { libbpf_sys::bpf_map_get_fd_by_id(id) }, format!("BPF_MAP_GET_FD_BY_ID {id}")) else {
            continue;
        };
        if let Ok(map) = XskMap::from_fd(fd) {
            if map.name() == XSKS_MAP {
                return Ok((prog_fd, map));
            }
        }
    }
    Err(Error::new(Code::Bpf, format!("program id {prog_id} ({name}) has no XSKMAP named {XSKS_MAP}")))
}

fn foreign_error(iface: &str, prog_id: u32, mode: AttachedMode, why: &str) -> Error {
    let kw = match mode {
        AttachedMode::Native => "xdpdrv",
        AttachedMode::Generic => "xdpgeneric",
        AttachedMode::Offload => "xdpoffload",
    };
    Error::with_errno(
        Code::Bpf,
        libc::EEXIST,
        format!(
            "cannot serve {iface}: XDP program id {prog_id} is already attached in {} mode and {why}. \
             dp-serve adopts only the program an earlier dp-serve attached and never replaces another one \
             (an afxdp forwarder's, or another tool's): check it with `bpftool prog show id {prog_id}`; \
             if nothing needs it, remove it with `ip link set dev {iface} {kw} off`",
            mode.as_str()
        ),
    )
}

/// The served program of one interface.
pub(crate) struct DpProgram {
    pub iface: String,
    pub ifindex: u32,
    /// The interface's namespace, held open so the watcher can enter it.
    netns: Option<File>,
    pub mode: XdpMode,
    prog_fd: OwnedFd,
    pub prog_id: u32,
    pub map: XskMap,
    pub origin: Origin,
    record: Option<Record>,
    /// Map id an earlier server recorded (to recognise its stale pin).
    pub previous_map_id: Option<u32>,
    /// Drop detaches (graceful stop). False: leave it attached and recorded.
    detach_on_drop: bool,
}

impl DpProgram {
    /// Attach afxdp's redirect program to `iface` (in `netns`), or adopt the
    /// one an earlier server recorded for it.
    pub fn start(iface: &str, netns: Option<&str>, mode: XdpMode, state_dir: &Path) -> Result<DpProgram> {
        let ns_file = match netns {
            None => None,
            Some(ns) => {
                let p = NetnsGuard::path_for(ns);
                Some(File::open(&p).map_err(|e| {
                    Error::sys(format!("open network namespace {}", p.display()), e.raw_os_error().unwrap_or(libc::EIO))
                })?)
            }
        };
        let _guard = match &ns_file {
            Some(f) => Some(NetnsGuard::enter(format!("/proc/self/fd/{}", f.as_raw_fd()))?),
            None => None,
        };
        let dev = Netdev::lookup(iface)?;
        let ino = std::fs::metadata("/proc/thread-self/ns/net")
            .map_err(|e| Error::sys("stat /proc/thread-self/ns/net", e.raw_os_error().unwrap_or(libc::EIO)))?
            .ino();
        let record = Record::lock(state_dir, ino, dev.ifindex, iface)?;
        let previous = record.previous;
        match Self::serve(iface, dev, ns_file, mode, record) {
            Ok(p) => Ok(p),
            Err((e, record)) => {
                // Nothing recorded before and nothing attached now: no file left.
                if previous.is_none() {
                    record.remove();
                }
                Err(e)
            }
        }
    }

    /// Attach or adopt, then record (the record is handed back on failure).
    fn serve(
        iface: &str,
        dev: Netdev,
        ns_file: Option<File>,
        mode: XdpMode,
        mut record: Record,
    ) -> std::result::Result<DpProgram, (Error, Record)> {
        let previous = record.previous;
        let found = match query(dev.ifindex) {
            Ok(f) => f,
            Err(e) => return Err((e, record)),
        };
        let (prog_fd, prog_id, map, mode, origin) = match Self::attach_or_adopt(iface, &dev, mode, previous, found) {
            Ok(c) => c,
            Err(e) => return Err((e, record)),
        };
        let mut program = DpProgram {
            iface: iface.to_string(),
            ifindex: dev.ifindex,
            netns: ns_file,
            mode,
            prog_fd,
            prog_id,
            map,
            origin,
            record: None,
            previous_map_id: previous.map(|r| r.map_id),
            detach_on_drop: origin == Origin::Attached,
        };
        // From here on, dropping `program` detaches what this server attached.
        if let Err(e) = record.write(prog_id, program.map.id(), iface) {
            return Err((e, record));
        }
        program.record = Some(record);
        program.detach_on_drop = true;
        Ok(program)
    }

    fn attach_or_adopt(
        iface: &str,
        dev: &Netdev,
        mode: XdpMode,
        previous: Option<Recorded>,
        found: Option<crate::bpf::AttachedXdp>,
    ) -> Result<(OwnedFd, u32, XskMap, XdpMode, Origin)> {
        Ok(match found {
            None => {
                let loaded = load_redirect(dev, mode, false)?;
                let id = prog_info(loaded.prog_fd.as_fd())?.id;
                // Netlink, not a bpf_link: the program must outlive dp-serve.
                let (used, _) = attach_fd(dev, &loaded.prog_fd, mode, AttachKind::Netlink)?;
                (loaded.prog_fd, id, loaded.map, used, Origin::Attached)
            }
            Some(a) => {
                let ours = previous.is_some_and(|r| r.prog_id == a.prog_id);
                if !ours {
                    let why = match previous {
                        Some(r) => format!("is not the program id {} the last dp-serve for it recorded", r.prog_id),
                        None => "was not attached by afxdp dp-serve".into(),
                    };
                    return Err(foreign_error(iface, a.prog_id, a.mode, &why));
                }
                let (fd, map) = adopt(a.prog_id)
                    .map_err(|e| foreign_error(iface, a.prog_id, a.mode, &format!("cannot be adopted ({})", e.message)))?;
                let used = attached_as(a.mode).ok_or_else(|| foreign_error(iface, a.prog_id, a.mode, "is offloaded"))?;
                if mode != XdpMode::Auto && mode != used {
                    return Err(Error::invalid(format!(
                        "{iface} runs the program an earlier dp-serve attached (id {}) in {} mode, but {} mode was asked: \
                         use mode auto or {} to adopt it, or stop pods using it and remove it with `ip link set dev {iface} xdp off`",
                        a.prog_id,
                        used.as_str(),
                        mode.as_str(),
                        used.as_str()
                    )));
                }
                (fd, a.prog_id, map, used, Origin::Adopted)
            }
        })
    }

    /// Leave the program attached and recorded when dropped: a failed start
    /// must not take an adopted program (and its pods' traffic) away, and a
    /// server may be told to keep its programs on stop.
    pub fn keep_attached(&mut self) {
        self.detach_on_drop = false;
    }

    fn enter(&self) -> Result<Option<NetnsGuard>> {
        match &self.netns {
            Some(f) => Ok(Some(NetnsGuard::enter(format!("/proc/self/fd/{}", f.as_raw_fd()))?)),
            None => Ok(None),
        }
    }

    /// Check the interface still runs the program; re-attach it (same
    /// program, same map) if the interface runs none.
    pub fn check(&self) -> Check {
        let guard = match self.enter() {
            Ok(g) => g,
            Err(e) => return Check::Failed(e.message),
        };
        let result = match query(self.ifindex) {
            Ok(Some(a)) if a.prog_id == self.prog_id => Check::Attached,
            Ok(Some(a)) => Check::Displaced(a.prog_id),
            Ok(None) => match attach_once(self.ifindex, &self.prog_fd, self.mode, AttachKind::Netlink) {
                Ok(_) => Check::Reattached,
                Err(f) => Check::Failed(format!(
                    "re-attaching program id {} failed: {}",
                    self.prog_id,
                    std::io::Error::from_raw_os_error(f.errno)
                )),
            },
            Err(e) => Check::Failed(e.message),
        };
        drop(guard);
        result
    }

    /// Detach the program if the interface still runs it (XDP_FLAGS_REPLACE
    /// with it as the expected one: never anyone else's).
    fn detach(&self) {
        let Ok(_guard) = self.enter() else { return };
        // Best effort: gone already (EEXIST, ENODEV) is fine.
        detach_netlink_if_ours(self.ifindex, &self.prog_fd, self.mode);
    }
}

/// What a periodic check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Check {
    Attached,
    /// It was gone and is attached again.
    Reattached,
    /// Another program (this id) runs there now: left alone.
    Displaced(u32),
    Failed(String),
}

impl Drop for DpProgram {
    /// Graceful stop: detach and drop the record. (A crash skips this: the
    /// program stays attached and the record lets the next server adopt it.)
    fn drop(&mut self) {
        if !self.detach_on_drop {
            return;
        }
        self.detach();
        if let Some(r) = self.record.take() {
            r.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse() {
        assert_eq!(parse_record("12 34 56 veth0\n"), Some(Recorded { prog_id: 12, map_id: 34, pid: 56 }));
        assert_eq!(parse_record(""), None);
        assert_eq!(parse_record("x 1 2"), None);
    }
}
