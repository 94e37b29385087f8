//! `DpServer`: the Device Plugin's UDS server and map pinning, on its own
//! threads, without Kubernetes. This file is the lifecycle (check, set up,
//! start, stop, status); the threads are in `serving`, the state they share
//! in `shared`, one client's handshake in `session`, the pins in `pins`.
//!
//! Faithful to the Device Plugin (dp-protocol.md §3) in everything a client
//! can observe, except where noted. Deviations, each also commented where
//! it is implemented:
//!
//! 1. *Peer credentials*: with `allowed_uids`, a client whose SO_PEERCRED
//!    uid is not listed is closed before anything is read, and does not use
//!    up the allocation (otherwise any local user could take the single
//!    accept away from the real client).
//! 2. *Listener closed at accept*: the Device Plugin keeps its listener
//!    open (never accepting again) until the session ends, so a second
//!    client hangs in the backlog; here the listener is closed and its file
//!    removed as soon as the one client is accepted, so a second client gets
//!    ECONNREFUSED (pod path) or ENOENT (host path) at once.
//! 3. *Records*: read with the Device Plugin's 64-byte buffer; a longer
//!    record is processed truncated to 64 bytes as the Device Plugin does,
//!    and logged. Nothing more is ever buffered.
//! 4. *Received fds are always closed* (the Device Plugin leaks the XSK fd of
//!    every `/config_busy_poll` and ignores fds on other records).
//! 5. *`/config_busy_poll` fixes*: the Device Plugin replies `_nak` and then
//!    falls through to a second reply when no fd came; closes silently on a
//!    non-integer argument; and closes after a setsockopt failure. Here each
//!    case is exactly one `/config_busy_poll_nak` and the session continues.
//!    The fd must also be an AF_XDP socket (SO_DOMAIN): the server applies
//!    CAP_NET_ADMIN-only options on the client's behalf and refuses to do so
//!    on arbitrary sockets. A wrong argument count is `/nak`, checked before
//!    the fd.
//! 6. *Interface names* are validated at start (see `validate_iface_name`)
//!    so no pod or pin path can escape its directory; the `/xsk_map_fd`
//!    allowlist is the configured devices, as in the Device Plugin.
//! 7. *Re-arm* (`sessions` != 1) is an afxdp extension. The next
//!    allocation's listener is created when the current client is accepted,
//!    so a client can run sessions back to back without racing the re-arm.
//!    Its accept deadline counts from when the server starts waiting on it.
//! 8. *Concurrent sessions*: each accepted client runs on its own thread
//!    (as each Device Plugin allocation has its own goroutine), at most
//!    `max_concurrent` at once; past that the next client is not accepted
//!    (it waits in the listen backlog) until a session ends, and that is
//!    logged. A silent or slow client never delays another's handshake.
//! 9. *Total session deadline*: besides the per-read deadline, a session
//!    ends `session_timeout` after its accept however steadily the client
//!    talks, so no client holds a session (or a concurrency slot) forever.
//! 10. *Programs outlive a crash* (see `program.rs`): attached through
//!     netlink and recorded; a restarted server adopts its own program (pods
//!     keep their map) and removes the stale sockets the dead one left; a
//!     program removed from under the server is re-attached within
//!     `check_interval`. A graceful stop detaches (as the CNI `DEL` does)
//!     unless `keep_programs`.

use super::config::{validate_iface_name, DpConfig, UdsConfig, POD_SOCKET_NAME};
use super::faults::Fault;
use super::paths::{clear_stale_host_sockets, clear_stale_socket, io_err, mkdirs, Undo};
use super::pins::{setup_pins, PinTarget};
use super::program::{DpProgram, Origin};
use super::serving::{serve, watch};
use super::shared::{wake, DeviceStatus, Shared, State};
use crate::bpf::XdpMode;
use crate::sys;
use crate::{Error, Result};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One configured interface, as started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub iface: String,
    pub netns: Option<String>,
    pub ifindex: u32,
    /// Kernel id of the attached redirect program.
    pub program_id: u32,
    /// Kernel id of its XSKMAP (the map `/fd_ack` sends and the pin holds).
    pub map_id: u32,
    pub xdp_mode: XdpMode,
    /// `<pod_dir>/<iface>/afxdp.sock` (UDS mode with a pod dir).
    pub pod_socket_path: Option<PathBuf>,
    /// `<pin_dir>/<iface>/xsks_map` (pinned mode).
    pub pin_path: Option<PathBuf>,
    /// The program was found attached, left by an earlier server (a crash),
    /// and adopted with its map; false: this server attached it.
    pub adopted: bool,
    /// At the last check the interface ran the program.
    pub attached: bool,
    /// Times the program was found removed and attached again.
    pub reattached: u64,
    /// What the last check found wrong (program displaced, interface gone).
    pub problem: Option<String>,
}

/// A snapshot of the server.
#[derive(Debug, Clone)]
pub struct DpServerInfo {
    /// The host socket currently listening, if any.
    pub socket_path: Option<PathBuf>,
    pub listening: bool,
    pub devices: Vec<DeviceInfo>,
    /// The bpffs this server mounted (pinned mode), if it mounted one.
    pub bpffs_mounted: Option<PathBuf>,
    /// Sessions (accepted, allowed clients) that have ended.
    pub sessions_served: u64,
    /// Sessions running now.
    pub active_sessions: u64,
    /// Clients closed by the uid allowlist.
    pub rejected_peers: u64,
    /// Listeners created so far (allocations armed).
    pub allocations: u64,
    /// The server thread has exited (all allocations used, or stopped).
    pub finished: bool,
    pub stopped: bool,
    pub last_error: Option<String>,
}

// ---- cleanup bookkeeping ----

struct Device {
    info: DeviceInfo,
    program: Arc<DpProgram>,
}

/// What start() created, undone in reverse on stop (or on a failed start).
#[derive(Default)]
struct Resources {
    devices: Vec<Device>,
    undo: Vec<Undo>,
}

impl Resources {
    fn cleanup(&mut self) {
        while let Some(u) = self.undo.pop() {
            u.run();
        }
        // Detaches the programs (the last reference to each).
        self.devices.clear();
    }

    /// Leave the programs attached (and recorded) when they go: adopted ones
    /// after a failed start (they carry pods' traffic), or all with
    /// `keep_programs`.
    fn keep_programs(&mut self, only_adopted: bool) {
        for d in &mut self.devices {
            if !only_adopted || d.info.adopted {
                if let Some(p) = Arc::get_mut(&mut d.program) {
                    p.keep_attached();
                }
            }
        }
    }
}

impl Drop for Resources {
    fn drop(&mut self) {
        self.cleanup();
    }
}

// ---- the server ----

/// A running Device-Plugin-compatible server. `stop()` (or drop) stops the
/// thread and removes everything it attached, pinned, mounted and created.
pub struct DpServer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    watcher: Mutex<Option<JoinHandle<()>>>,
    keep_programs: bool,
    resources: Mutex<Option<Resources>>,
    devices: Vec<DeviceInfo>,
    bpffs_mounted: Option<PathBuf>,
}

impl std::fmt::Debug for DpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpServer").field("devices", &self.devices).finish_non_exhaustive()
    }
}

fn check_config(config: &DpConfig) -> Result<()> {
    if config.devices.is_empty() {
        return Err(Error::invalid("the Device Plugin server needs at least one device"));
    }
    if config.uds.is_none() && config.pinned.is_none() {
        return Err(Error::invalid("enable UDS mode, pinned-map mode, or both"));
    }
    for (i, d) in config.devices.iter().enumerate() {
        validate_iface_name(&d.iface)?;
        if config.devices[..i].iter().any(|o| o.iface == d.iface) {
            return Err(Error::invalid(format!(
                "interface {} is listed twice; pod paths and pins are per interface name, so names must be unique",
                d.iface
            )));
        }
    }
    if let Some(uds) = &config.uds {
        // <host_dir>/<36-char uuid>.sock must fit sun_path (108 with NUL).
        let len = uds.host_dir.as_os_str().len() + 1 + 36 + 5;
        if len >= 108 {
            return Err(Error::invalid(format!(
                "host socket directory {} is too long: {len}-byte socket paths exceed sun_path (107)",
                uds.host_dir.display()
            )));
        }
        if let Some(pod) = &uds.pod_dir {
            for d in &config.devices {
                let p = pod.join(&d.iface).join(POD_SOCKET_NAME);
                if p.as_os_str().len() >= 108 {
                    return Err(Error::invalid(format!("pod socket path {} exceeds sun_path (107 bytes)", p.display())));
                }
            }
        }
    }
    if let (Some(UdsConfig { pod_dir: Some(pod), .. }), Some(pins)) = (&config.uds, &config.pinned) {
        if pod.starts_with(&pins.pin_dir) {
            return Err(Error::invalid(format!(
                "pod socket directory {} is inside the pin directory {} (a bpffs, which refuses file names \
                 with a '.' such as afxdp.sock): use separate directories",
                pod.display(),
                pins.pin_dir.display()
            )));
        }
    }
    if config.max_concurrent == 0 {
        return Err(Error::invalid("max_concurrent must be at least 1 (sessions served at once)"));
    }
    if config.fault != Fault::None && config.uds.is_none() {
        return Err(Error::invalid("fault modes apply to UDS mode only; enable uds"));
    }
    Ok(())
}

impl DpServer {
    /// Attach the redirect program to every device, pin and/or start
    /// listening, and serve on a thread. On error everything done so far is
    /// undone.
    pub fn start(config: DpConfig) -> Result<DpServer> {
        check_config(&config)?;
        let mut res = Resources::default();
        match Self::start_with(config, &mut res) {
            Ok(mut server) => {
                *server.resources.get_mut().unwrap_or_else(|p| p.into_inner()) = Some(std::mem::take(&mut res));
                Ok(server)
            }
            Err(e) => {
                // A failed start undoes what it did, but never takes an
                // adopted program (pods' traffic) away.
                res.keep_programs(true);
                Err(e)
            }
        }
    }

    fn start_with(config: DpConfig, res: &mut Resources) -> Result<DpServer> {
        let owner = (config.owner_uid, config.owner_gid);
        let mut notes = Vec::new();
        for d in &config.devices {
            let program =
                DpProgram::start(&d.iface, d.netns.as_deref(), config.xdp_mode, &config.state_dir).map_err(|mut e| {
                    let ns = d.netns.as_deref().map(|n| format!(" in network namespace {n}")).unwrap_or_default();
                    e.message = format!("Device Plugin server, device {}{ns}: {}", d.iface, e.message);
                    e
                })?;
            res.devices.push(Device {
                info: DeviceInfo {
                    iface: d.iface.clone(),
                    netns: d.netns.clone(),
                    ifindex: program.ifindex,
                    program_id: program.prog_id,
                    map_id: program.map.id(),
                    xdp_mode: program.mode,
                    pod_socket_path: None,
                    pin_path: None,
                    adopted: program.origin == Origin::Adopted,
                    attached: true,
                    reattached: 0,
                    problem: None,
                },
                program: Arc::new(program),
            });
        }
        let bpffs_mounted = match &config.pinned {
            Some(pins) => {
                let targets: Vec<PinTarget<'_>> = res
                    .devices
                    .iter()
                    .map(|d| PinTarget { iface: &d.info.iface, map: &d.program.map, previous_map_id: d.program.previous_map_id })
                    .collect();
                let (mounted, paths) = setup_pins(pins, &targets, owner, &mut res.undo, &mut notes)?;
                for (dev, pin) in res.devices.iter_mut().zip(paths) {
                    dev.info.pin_path = Some(pin);
                }
                mounted
            }
            None => None,
        };
        let mut pod_links = Vec::new();
        if let Some(uds) = &config.uds {
            mkdirs(&uds.host_dir, 0o700, &mut res.undo)?;
            // Deviation (10): sockets a dead server left are removed; a
            // live one means another server uses the directory.
            for p in clear_stale_host_sockets(&uds.host_dir)? {
                notes.push(format!("removed the stale host socket {} (nobody listened)", p.display()));
            }
            if let Some(pod_dir) = &uds.pod_dir {
                for dev in &mut res.devices {
                    let d = pod_dir.join(&dev.info.iface);
                    mkdirs(&d, 0o755, &mut res.undo)?;
                    let link = d.join(POD_SOCKET_NAME);
                    if clear_stale_socket(&link, "pod socket path")? {
                        notes.push(format!("removed the stale pod socket path {} (nobody listened)", link.display()));
                    }
                    res.undo.push(Undo::File(link.clone()));
                    dev.info.pod_socket_path = Some(link.clone());
                    pod_links.push(link);
                }
            }
        }
        let mut maps = Vec::new();
        for dev in &res.devices {
            maps.push((dev.info.iface.clone(), dev.program.map.try_clone()?));
        }
        let shared = Arc::new(Shared {
            maps,
            uds: config.uds.clone(),
            pod_links,
            owner,
            allowed_uids: config.allowed_uids.clone(),
            pods: config.pods.clone(),
            accept_timeout: config.accept_timeout,
            read_timeout: config.read_timeout,
            session_timeout: config.session_timeout,
            sessions: config.sessions,
            max_concurrent: config.max_concurrent,
            fault: config.fault,
            stop: AtomicBool::new(false),
            wake: sys::eventfd().map_err(|e| Error::sys("eventfd", e))?,
            state: Mutex::new(State {
                devices: res.devices.iter().map(|_| DeviceStatus { attached: true, ..Default::default() }).collect(),
                ..State::default()
            }),
            changed: Condvar::new(),
            log: Mutex::new(VecDeque::new()),
            log_to_stderr: config.log_to_stderr,
            started: Instant::now(),
            conns: Mutex::new(Vec::new()),
        });
        for dev in &res.devices {
            let i = &dev.info;
            shared.log(format!(
                "device {}: program id {} ({} mode{}), XSKMAP id {}{}",
                i.iface,
                i.program_id,
                i.xdp_mode.as_str(),
                if i.adopted { ", adopted: left attached by an earlier dp-serve" } else { "" },
                i.map_id,
                i.pin_path.as_ref().map(|p| format!(", pinned at {}", p.display())).unwrap_or_default()
            ));
        }
        for n in notes {
            shared.log(n);
        }
        if config.fault != Fault::None {
            shared.log(format!("fault mode: {}", config.fault));
        }
        let thread = if config.uds.is_some() {
            // The first allocation is armed here, so the socket exists when
            // start() returns.
            let first = shared.arm()?;
            let sh = shared.clone();
            let handle = std::thread::Builder::new()
                .name("afxdp-dp".into())
                .spawn(move || serve(sh, first))
                .map_err(|e| io_err("spawn the Device Plugin server thread".into(), e))?;
            Some(handle)
        } else {
            shared.update(|s| s.finished = true);
            None
        };
        let watcher = match config.check_interval {
            Some(interval) => {
                let sh = shared.clone();
                let programs = res.devices.iter().map(|d| d.program.clone()).collect();
                let spawned = std::thread::Builder::new()
                    .name("afxdp-dp-watch".into())
                    .spawn(move || watch(sh, programs, interval))
                    .map_err(|e| io_err("spawn the Device Plugin watcher thread".into(), e));
                match spawned {
                    Ok(h) => Some(h),
                    Err(e) => {
                        shared.stop.store(true, Ordering::SeqCst);
                        wake(&shared);
                        if let Some(t) = thread {
                            let _ = t.join();
                        }
                        return Err(e);
                    }
                }
            }
            None => None,
        };
        let devices = res.devices.iter().map(|d| d.info.clone()).collect();
        Ok(DpServer {
            shared,
            thread: Mutex::new(thread),
            watcher: Mutex::new(watcher),
            keep_programs: config.keep_programs,
            resources: Mutex::new(None),
            devices,
            bpffs_mounted,
        })
    }

    /// Stop serving and undo everything: close the listener and session,
    /// remove sockets, pod links and pins, unmount the bpffs it mounted,
    /// remove the directories it created (if empty), detach the programs.
    /// Idempotent; callable from any thread (from the server thread itself
    /// it only signals, and the thread exits right after).
    pub fn stop(&self) {
        if !self.shared.stop.swap(true, Ordering::SeqCst) {
            wake(&self.shared);
            self.shared.log("stop requested");
        }
        for slot in [&self.thread, &self.watcher] {
            let handle = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(h) = handle {
                if h.thread().id() != std::thread::current().id() {
                    let _ = h.join();
                }
            }
        }
        let mut res = self.resources.lock().unwrap_or_else(|p| p.into_inner()).take();
        if self.keep_programs {
            if let Some(r) = res.as_mut() {
                r.keep_programs(false);
            }
        }
        drop(res);
        self.shared.changed.notify_all();
    }

    pub fn is_stopped(&self) -> bool {
        self.shared.stopping()
    }

    pub fn info(&self) -> DpServerInfo {
        let s = self.shared.state();
        let devices = self
            .devices
            .iter()
            .zip(&s.devices)
            .map(|(d, st)| DeviceInfo {
                attached: st.attached,
                reattached: st.reattached,
                problem: st.problem.clone(),
                ..d.clone()
            })
            .collect();
        DpServerInfo {
            socket_path: s.socket.clone(),
            listening: s.socket.is_some(),
            devices,
            bpffs_mounted: self.bpffs_mounted.clone(),
            sessions_served: s.served,
            active_sessions: s.active,
            rejected_peers: s.rejected,
            allocations: s.allocations,
            finished: s.finished,
            stopped: self.shared.stopping(),
            last_error: s.last_error.clone(),
        }
    }

    /// Sessions (accepted, allowed clients) that have ended.
    pub fn sessions_served(&self) -> u64 {
        self.shared.state().served
    }

    /// The host socket currently listening.
    pub fn socket_path(&self) -> Option<PathBuf> {
        self.shared.state().socket.clone()
    }

    /// The devices as started (`info()` has their current status).
    pub fn devices(&self) -> &[DeviceInfo] {
        &self.devices
    }

    /// Wait until at least `n` sessions have ended, the server thread has
    /// finished, or `timeout` passed. Returns whether `n` were reached.
    pub fn wait_sessions(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.shared.state();
        loop {
            if s.served >= n {
                return true;
            }
            if s.finished || self.shared.stopping() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            s = self.shared.changed.wait_timeout(s, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Wait until the server thread has finished (all allocations used).
    pub fn wait_finished(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.shared.state();
        loop {
            if s.finished {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            s = self.shared.changed.wait_timeout(s, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// The server's recent log lines (the last 512).
    pub fn log(&self) -> Vec<String> {
        self.shared.log.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }
}

impl Drop for DpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::DpDevice;
    use super::*;

    #[test]
    fn config_checks() {
        let mut c = DpConfig::new(vec![DpDevice::new("../x")]);
        assert!(check_config(&c).is_err());
        c.devices = vec![DpDevice::new("a"), DpDevice::new("a")];
        assert!(check_config(&c).is_err());
        c.devices = vec![DpDevice::new("a")];
        c.max_concurrent = 0;
        assert!(check_config(&c).is_err());
        c.max_concurrent = 1;
        c.uds = None;
        assert!(check_config(&c).is_err());
    }
}
