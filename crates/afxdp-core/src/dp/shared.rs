//! The state a running Device Plugin server shares between its API
//! (`DpServer`), its acceptor and watcher threads (`serving`) and its
//! sessions: settings, status counters, the log, and the stop latch every
//! wait watches.

use super::config::{PodPolicy, UdsConfig};
use super::faults::Fault;
use super::transport::SeqpacketConn;
use crate::bpf::XskMap;
use crate::sys;
use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// Log lines kept.
const LOG_LINES: usize = 512;

/// What the watcher last found on one device.
#[derive(Debug, Clone, Default)]
pub(super) struct DeviceStatus {
    pub attached: bool,
    pub reattached: u64,
    pub problem: Option<String>,
}

#[derive(Default)]
pub(super) struct State {
    pub socket: Option<PathBuf>,
    pub served: u64,
    pub active: u64,
    pub devices: Vec<DeviceStatus>,
    pub rejected: u64,
    pub allocations: u64,
    pub finished: bool,
    pub last_error: Option<String>,
}

pub(super) struct Shared {
    pub maps: Vec<(String, XskMap)>,
    pub uds: Option<UdsConfig>,
    pub pod_links: Vec<PathBuf>,
    pub owner: (Option<u32>, Option<u32>),
    pub allowed_uids: Option<Vec<u32>>,
    pub pods: PodPolicy,
    pub accept_timeout: Option<Duration>,
    pub read_timeout: Option<Duration>,
    pub session_timeout: Option<Duration>,
    pub sessions: u32,
    pub max_concurrent: u32,
    pub fault: Fault,
    pub stop: AtomicBool,
    /// eventfd, written once by stop(); never read, so it stays readable.
    pub wake: OwnedFd,
    pub state: Mutex<State>,
    pub changed: Condvar,
    pub log: Mutex<VecDeque<String>>,
    pub log_to_stderr: bool,
    pub started: Instant,
    /// Live session connections, shut down on stop so that a session blocked
    /// in a send (a client that does not read) ends at once.
    pub conns: Mutex<Vec<Weak<SeqpacketConn>>>,
}

pub(super) enum Wake {
    Ready,
    Stop,
    Timeout,
}

impl Shared {
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state());
        self.changed.notify_all();
    }

    pub fn log(&self, line: impl AsRef<str>) {
        let t = self.started.elapsed();
        let line = format!("[{}.{:03}] {}", t.as_secs(), t.subsec_millis(), line.as_ref());
        if self.log_to_stderr {
            eprintln!("afxdp-dp {line}");
        }
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() == LOG_LINES {
            log.pop_front();
        }
        log.push_back(line);
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Wait until `fd` is readable (or hung up), the deadline passes, or
    /// the server is stopping. `fd` None: just sleep until deadline/stop.
    pub fn wait(&self, fd: Option<BorrowedFd<'_>>, deadline: Option<Instant>) -> Wake {
        loop {
            if self.stopping() {
                return Wake::Stop;
            }
            let ms = match deadline {
                None => -1,
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Wake::Timeout;
                    }
                    // Round up, so a sub-millisecond remainder still waits.
                    ((d - now).as_micros().div_ceil(1000)).min(i32::MAX as u128) as libc::c_int
                }
            };
            let mut pfds = [sys::pollfd(Some(self.wake.as_fd()), libc::POLLIN), sys::pollfd(fd, libc::POLLIN)];
            match sys::poll(&mut pfds, ms) {
                Ok(_) => {}
                Err(libc::EINTR) => continue,
                Err(e) => {
                    self.log(format!("poll failed: {}; stopping", std::io::Error::from_raw_os_error(e)));
                    return Wake::Stop;
                }
            }
            if pfds[0].revents != 0 {
                return Wake::Stop;
            }
            if pfds[1].revents != 0 {
                return Wake::Ready;
            }
        }
    }

    pub fn uid_allowed(&self, uid: u32) -> bool {
        self.allowed_uids.as_ref().is_none_or(|l| l.contains(&uid))
    }
}

/// Wake every thread of the server (the eventfd stays readable), and shut
/// down live sessions' connections (unblocks a send to a client that does
/// not read).
pub(super) fn wake(sh: &Shared) {
    sys::eventfd_signal(sh.wake.as_fd());
    for conn in sh.conns.lock().unwrap_or_else(|p| p.into_inner()).iter().filter_map(Weak::upgrade) {
        sys::shutdown(conn.as_fd());
    }
}
