//! The running server's threads: the acceptor (one allocation after the
//! other, each accepted client on a session thread of its own) and the
//! watcher that keeps each program attached. Deviation numbers refer to the
//! list in `server`'s module comment.

use super::paths::{chown, relink, show_paths, uuid_v4};
use super::program::{Check, DpProgram};
use super::session::Session;
use super::shared::{Shared, Wake};
use super::transport::{PeerCred, SeqpacketConn, SeqpacketListener};
use crate::Result;
use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// After poll says ready, how long accept may wait if another reader raced
/// us (never happens: one acceptor thread; a bound anyway).
const RACE_SLICE: Duration = Duration::from_millis(50);

impl Shared {
    /// Bind a fresh host socket for the next allocation and point every pod
    /// path at it.
    pub(super) fn arm(&self) -> Result<SeqpacketListener> {
        let uds = self.uds.as_ref().expect("arm only in UDS mode");
        let host = uds.host_dir.join(format!("{}.sock", uuid_v4()?));
        let listener = SeqpacketListener::bind(&host, uds.socket_mode, None)?;
        chown(&host, self.owner)?;
        for link in &self.pod_links {
            if !relink(&host, link)? {
                self.log(format!(
                    "{} is a symlink (no hard link possible across file systems): clients must be able to \
                     reach {} (created 0700: root only)",
                    link.display(),
                    uds.host_dir.display()
                ));
            }
        }
        self.update(|s| {
            s.socket = Some(host.clone());
            s.allocations += 1;
        });
        self.log(format!("listening at {} (pod paths: {})", host.display(), show_paths(&self.pod_links)));
        Ok(listener)
    }

    /// Accept the allocation's one client (skipping disallowed uids).
    fn accept(&self, listener: &SeqpacketListener) -> Option<(SeqpacketConn, PeerCred)> {
        let deadline = self.accept_timeout.map(|t| Instant::now() + t);
        let path = listener.path().display();
        loop {
            match self.wait(Some(listener.as_fd()), deadline) {
                Wake::Stop => return None,
                Wake::Timeout => {
                    self.log(format!(
                        "Listener timed out: no client connected to {path} within {:?}; removing the socket (as the Device Plugin does)",
                        self.accept_timeout.unwrap_or_default()
                    ));
                    return None;
                }
                Wake::Ready => match listener.accept(RACE_SLICE) {
                    Ok((conn, cred)) => match self.admit(conn, cred, listener) {
                        Some(client) => return Some(client),
                        None => continue,
                    },
                    Err(e) if e.errno == Some(libc::ETIMEDOUT) => continue,
                    Err(e) => {
                        self.log(format!("accept on {path} failed: {}", e.message));
                        self.update(|s| s.last_error = Some(e.message.clone()));
                        return None;
                    }
                },
            }
        }
    }

    /// Hardening (1): the SO_PEERCRED allowlist, checked before reading
    /// anything; a rejected peer does not consume the allocation.
    fn admit(&self, conn: SeqpacketConn, cred: PeerCred, listener: &SeqpacketListener) -> Option<(SeqpacketConn, PeerCred)> {
        if !self.uid_allowed(cred.uid) {
            self.log(format!(
                "rejected client pid {} uid {} gid {}: uid not in the allowlist {:?}; closed without reading",
                cred.pid,
                cred.uid,
                cred.gid,
                self.allowed_uids.as_deref().unwrap_or(&[])
            ));
            self.update(|s| s.rejected += 1);
            return None;
        }
        self.log(format!("accepted client pid {} uid {} gid {} on {}", cred.pid, cred.uid, cred.gid, listener.path().display()));
        Some((conn, cred))
    }

    /// Clients that connected to `listener` before the pod paths pointed at
    /// its successor (at most `max`): served too, rather than dropped with it.
    fn drain(&self, listener: &SeqpacketListener, max: u64, into: &mut VecDeque<(SeqpacketConn, PeerCred)>) {
        let mut taken = 0;
        while taken < max {
            let Ok((conn, cred)) = listener.accept(Duration::from_millis(1)) else { return };
            if let Some(client) = self.admit(conn, cred, listener) {
                into.push_back(client);
                taken += 1;
            }
        }
    }

    /// Wait for a free session slot (deviation 8). false = stopping.
    fn wait_slot(&self) -> bool {
        let mut logged = false;
        let mut s = self.state();
        while s.active >= self.max_concurrent as u64 {
            if self.stopping() {
                return false;
            }
            if !logged {
                logged = true;
                drop(s);
                self.log(format!(
                    "{} sessions running (the limit): the next client waits in the listen backlog until one ends",
                    self.max_concurrent
                ));
                s = self.state();
                continue;
            }
            s = self.changed.wait_timeout(s, Duration::from_millis(100)).unwrap_or_else(|p| p.into_inner()).0;
        }
        !self.stopping()
    }
}

/// The acceptor thread: serve allocations until they are used up or stop,
/// each accepted client on its own session thread.
pub(super) fn serve(sh: Arc<Shared>, first: SeqpacketListener) {
    let mut listener = Some(first);
    // Allocations used so far (each listener armed, each drained client),
    // and drained clients waiting for a slot.
    let mut allocations: u64 = 1;
    let mut pending: VecDeque<(SeqpacketConn, PeerCred)> = VecDeque::new();
    let left = |n: u64| if sh.sessions == 0 { u64::MAX } else { (sh.sessions as u64).saturating_sub(n) };
    let mut sessions: Vec<std::thread::JoinHandle<()>> = Vec::new();
    loop {
        if !sh.wait_slot() {
            break;
        }
        let client = if let Some(c) = pending.pop_front() {
            Some(c)
        } else {
            let Some(current) = listener.take() else { break };
            let client = sh.accept(&current);
            // Deviation (7): arm the next allocation before serving this one.
            if left(allocations) > 0 && !sh.stopping() {
                match sh.arm() {
                    Ok(next) => {
                        listener = Some(next);
                        allocations += 1;
                    }
                    Err(e) => {
                        sh.log(format!("cannot re-arm: {}", e.message));
                        sh.update(|s| s.last_error = Some(e.message.clone()));
                    }
                }
                // Deviation (8): whoever connected before the pod paths were
                // re-linked is served too, as an allocation of its own. (With
                // one allocation, deviation 2: it is closed with the listener.)
                let before = pending.len();
                sh.drain(&current, left(allocations), &mut pending);
                allocations += (pending.len() - before) as u64;
            }
            // Deviation (2): the one accepted client ends this listener; its
            // drop removes the host socket file.
            drop(current);
            if listener.is_none() {
                sh.update(|s| s.socket = None);
            }
            client
        };
        if let Some((conn, cred)) = client {
            // Deviation (9): the total deadline counts from accept.
            let deadline = sh.session_timeout.map(|t| Instant::now() + t);
            let conn = Arc::new(conn);
            {
                let mut conns = sh.conns.lock().unwrap_or_else(|p| p.into_inner());
                conns.retain(|w| w.strong_count() > 0);
                conns.push(Arc::downgrade(&conn));
            }
            sh.update(|s| s.active += 1);
            let shc = sh.clone();
            let spawned = std::thread::Builder::new().name("afxdp-dp-session".into()).spawn(move || {
                Session { sh: &shc, conn, cred, deadline }.run();
                shc.update(|s| {
                    s.active -= 1;
                    s.served += 1;
                });
            });
            match spawned {
                Ok(h) => sessions.push(h),
                Err(e) => {
                    sh.log(format!("cannot start a session thread: {e}; client closed"));
                    sh.update(|s| s.active -= 1);
                }
            }
            // Reap the sessions that ended.
            let (done, running): (Vec<_>, Vec<_>) = sessions.into_iter().partition(|h| h.is_finished());
            for h in done {
                let _ = h.join();
            }
            sessions = running;
        }
        if sh.stopping() {
            break;
        }
    }
    drop(listener);
    drop(pending);
    sh.update(|s| s.socket = None);
    for h in sessions {
        let _ = h.join();
    }
    sh.update(|s| s.finished = true);
    sh.log("server thread finished");
}

/// The watcher thread (deviation 10): every `interval`, check each device
/// still runs its program; re-attach it when it is gone, report (never
/// replace) another program found in its place.
pub(super) fn watch(sh: Arc<Shared>, programs: Vec<Arc<DpProgram>>, interval: Duration) {
    loop {
        if let Wake::Stop = sh.wait(None, Some(Instant::now() + interval)) {
            return;
        }
        for (i, p) in programs.iter().enumerate() {
            let check = p.check();
            let before = sh.state().devices[i].clone();
            let problem = match &check {
                Check::Attached => None,
                Check::Reattached => {
                    sh.log(format!(
                        "device {}: program id {} had been removed from the interface (ip link ... xdp off, \
                         DPDK eth_dev_close?): re-attached it with the same XSKMAP",
                        p.iface, p.prog_id
                    ));
                    None
                }
                Check::Displaced(other) => Some(format!(
                    "program id {} was replaced by program id {other} on {}: its XSKMAP no longer gets packets; \
                     dp-serve does not replace another program (remove it with `ip link set dev {} xdp off` and \
                     dp-serve re-attaches within {interval:?})",
                    p.prog_id, p.iface, p.iface
                )),
                Check::Failed(why) => Some(format!("checking program id {} on {} failed: {why}", p.prog_id, p.iface)),
            };
            if problem.is_some() && problem != before.problem {
                sh.log(format!("device {}: {}", p.iface, problem.as_deref().unwrap_or_default()));
            }
            sh.update(|s| {
                let d = &mut s.devices[i];
                d.attached = matches!(check, Check::Attached | Check::Reattached);
                if check == Check::Reattached {
                    d.reattached += 1;
                }
                if problem.is_some() {
                    s.last_error = problem.clone();
                }
                s.devices[i].problem = problem;
            });
        }
    }
}
