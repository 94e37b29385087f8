//! Run code inside another network namespace on the calling thread.
//!
//! `setns(CLONE_NEWNET)` changes only the calling thread, so a process can
//! open a socket inside a namespace and come back: the socket stays bound to
//! the namespace it was created in. Tests, `afxdp demo` and ports opened with
//! a `netns` option use this; everything interface-related (ifindex lookup,
//! ioctls, netlink for XDP attach) must happen inside the guard.

use crate::{Error, Result};
use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use nix::sched::{setns, CloneFlags};

/// While alive, the current thread is in the target namespace; dropping it
/// returns the thread to the namespace it was in before.
pub struct NetnsGuard {
    previous: File,
}

impl NetnsGuard {
    /// `target` is a namespace file: `/run/netns/<name>` or `/proc/<pid>/ns/net`.
    pub fn enter(target: impl AsRef<Path>) -> Result<Self> {
        let target = target.as_ref();
        let previous = File::open("/proc/thread-self/ns/net")
            .map_err(|e| Error::sys("open /proc/thread-self/ns/net", e.raw_os_error().unwrap_or(libc::EIO)))?;
        let ns = File::open(target).map_err(|e| {
            Error::sys(format!("open network namespace {}", target.display()), e.raw_os_error().unwrap_or(libc::EIO))
        })?;
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| {
            let mut err = Error::sys(format!("setns({})", target.display()), e as i32);
            if e == nix::errno::Errno::EPERM {
                err.message.push_str(": entering a network namespace needs CAP_SYS_ADMIN");
            }
            err
        })?;
        Ok(NetnsGuard { previous })
    }

    /// Resolve a namespace given by name (`ip netns` style) or by path.
    pub fn path_for(name_or_path: &str) -> std::path::PathBuf {
        if name_or_path.contains('/') {
            name_or_path.into()
        } else {
            Path::new("/run/netns").join(name_or_path)
        }
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        // Failing to return would leave this thread in the wrong namespace for
        // everything that follows; there is no safe way to continue.
        if let Err(e) = setns(self.previous.as_fd(), CloneFlags::CLONE_NEWNET) {
            panic!("cannot return to the original network namespace: {e}");
        }
    }
}

/// Run `f` inside the namespace when one is given, else right here.
pub fn within<T>(netns: Option<&str>, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match netns {
        None => f(),
        Some(ns) => {
            let _guard = NetnsGuard::enter(NetnsGuard::path_for(ns))?;
            f()
        }
    }
}
