//! One error type for the whole core. Every error carries a stable `code`
//! (the same strings the TypeScript facade exposes as `err.code`) and a
//! message that says what failed and how to fix it.

use std::fmt;

/// Stable error codes, shared with `lib/errors.ts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The interface does not exist (in this network namespace).
    NoSuchInterface,
    /// `start_queue + queue_count` exceeds the interface's queues.
    QueueOutOfRange,
    /// Another socket already holds this (interface, queue): EBUSY.
    QueueBusy,
    /// UMEM registration hit RLIMIT_MEMLOCK (the kernel says ENOBUFS).
    Memlock,
    /// A capability or file permission is missing; the message names it.
    Permission,
    /// A configuration value the kernel or the core rejects.
    InvalidArgument,
    /// The kernel or the interface lacks a feature.
    NotSupported,
    /// Loading, attaching or updating an XDP program or map failed.
    Bpf,
    /// A frame address handed back by the application is not one it owns.
    FrameOwnership,
    /// The object was closed.
    Closed,
    /// The queue is held by another thread (`lease`: transferred, or a
    /// handle that was given back).
    Transferred,
    /// Device Plugin protocol failure (Kubernetes mode).
    DevicePlugin,
    /// Not enough memory for what was asked (the UMEM exceeds the memory
    /// available to the process, or free hugepages).
    NoMemory,
    /// Any other system call failure; the message has errno and call.
    System,
}

impl Code {
    /// Every code, in declaration order: the list `lib/errors.ts` must match
    /// (the binding exports it; test/faults/port.test.ts compares).
    pub const ALL: [Code; 14] = [
        Code::NoSuchInterface,
        Code::QueueOutOfRange,
        Code::QueueBusy,
        Code::Memlock,
        Code::Permission,
        Code::InvalidArgument,
        Code::NotSupported,
        Code::Bpf,
        Code::FrameOwnership,
        Code::Closed,
        Code::Transferred,
        Code::DevicePlugin,
        Code::NoMemory,
        Code::System,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::NoSuchInterface => "ERR_AFXDP_NO_SUCH_INTERFACE",
            Code::QueueOutOfRange => "ERR_AFXDP_QUEUE_OUT_OF_RANGE",
            Code::QueueBusy => "ERR_AFXDP_QUEUE_BUSY",
            Code::Memlock => "ERR_AFXDP_MEMLOCK",
            Code::Permission => "ERR_AFXDP_PERMISSION",
            Code::InvalidArgument => "ERR_AFXDP_INVALID_ARGUMENT",
            Code::NotSupported => "ERR_AFXDP_NOT_SUPPORTED",
            Code::Bpf => "ERR_AFXDP_BPF",
            Code::FrameOwnership => "ERR_AFXDP_FRAME_OWNERSHIP",
            Code::Closed => "ERR_AFXDP_CLOSED",
            Code::Transferred => "ERR_AFXDP_TRANSFERRED",
            Code::DevicePlugin => "ERR_AFXDP_DEVICE_PLUGIN",
            Code::NoMemory => "ERR_AFXDP_NO_MEMORY",
            Code::System => "ERR_AFXDP_SYSTEM",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Error {
    pub code: Code,
    pub message: String,
    /// errno of the failing system call, when there was one.
    pub errno: Option<i32>,
    /// The file system path involved (pinned map, socket, XDP object).
    pub path: Option<String>,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error { code, message: message.into(), errno: None, path: None }
    }

    pub fn with_errno(code: Code, errno: i32, message: impl Into<String>) -> Self {
        Error { code, message: message.into(), errno: Some(errno), path: None }
    }

    /// The same error, naming the path involved.
    pub fn with_path(mut self, path: impl AsRef<std::path::Path>) -> Self {
        self.path = Some(path.as_ref().display().to_string());
        self
    }

    /// A failed system call whose errno has no more specific meaning:
    /// `what` names the call and its subject, e.g. "bind(veth1, queue 0)".
    pub fn sys(what: impl fmt::Display, errno: i32) -> Self {
        let code = match errno {
            libc::EPERM | libc::EACCES => Code::Permission,
            libc::ENODEV | libc::ENXIO => Code::NoSuchInterface,
            libc::EBUSY => Code::QueueBusy,
            libc::EOPNOTSUPP | libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT => Code::NotSupported,
            libc::EINVAL => Code::InvalidArgument,
            _ => Code::System,
        };
        let text = std::io::Error::from_raw_os_error(errno);
        Error::with_errno(code, errno, format!("{what} failed: {text}"))
    }

    /// `sys` with the errno of the last failing libc call.
    pub fn last_os(what: impl fmt::Display) -> Self {
        Error::sys(what, std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
    }

    pub fn closed(what: &str) -> Self {
        Error::new(Code::Closed, format!("{what} is closed; open a new one"))
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(Code::InvalidArgument, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<nix::errno::Errno> for Error {
    fn from(e: nix::errno::Errno) -> Self {
        Error::sys("system call", e as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_maps_to_code() {
        assert_eq!(Error::sys("bind", libc::EBUSY).code, Code::QueueBusy);
        assert_eq!(Error::sys("socket", libc::EPERM).code, Code::Permission);
        assert_eq!(Error::sys("x", libc::EIO).code, Code::System);
        assert!(Error::sys("bind(veth1)", libc::EBUSY).message.starts_with("bind(veth1) failed"));
    }

    #[test]
    fn code_list_is_complete_and_unique() {
        // The match makes a new variant a compile error here until it is
        // placed; ALL must list each variant at its position.
        fn position(c: Code) -> usize {
            match c {
                Code::NoSuchInterface => 0,
                Code::QueueOutOfRange => 1,
                Code::QueueBusy => 2,
                Code::Memlock => 3,
                Code::Permission => 4,
                Code::InvalidArgument => 5,
                Code::NotSupported => 6,
                Code::Bpf => 7,
                Code::FrameOwnership => 8,
                Code::Closed => 9,
                Code::Transferred => 10,
                Code::DevicePlugin => 11,
                Code::NoMemory => 12,
                Code::System => 13,
            }
        }
        for (i, c) in Code::ALL.iter().enumerate() {
            assert_eq!(position(*c), i, "{c:?}");
        }
        let mut names: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Code::ALL.len());
        assert!(names.iter().all(|n| n.starts_with("ERR_AFXDP_")));
    }

    #[test]
    fn path_is_kept() {
        let e = Error::sys("open", libc::ENOENT).with_path("/x/y");
        assert_eq!(e.path.as_deref(), Some("/x/y"));
        assert_eq!(e.errno, Some(libc::ENOENT));
    }
}
