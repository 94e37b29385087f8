//! Does a port's UMEM fit the memory this process may use? Checked before
//! anything is mapped or attached: a UMEM is populated and pinned at once,
//! so one bigger than the memory left is not an allocation failure but the
//! OOM killer (SIGKILL), which used to leave the XDP program attached.
//!
//! Ordinary pages are compared with `MemAvailable` (/proc/meminfo) and with
//! what the process's memory cgroup still allows (v2: memory.max -
//! memory.current, v1: memory.limit_in_bytes - memory.usage_in_bytes, the
//! smallest along the path up to the mount); hugepages with the free 2 MiB
//! hugepages (the memory cgroup does not count them).

use super::area::HUGEPAGE_SIZE;
use super::HugepagePolicy;
use crate::{Code, Error, Result};
use std::path::{Path, PathBuf};

const FREE_HUGEPAGES: &str = "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages";

/// Memory a new mapping may take, as far as the system tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryLimits {
    /// MemAvailable in bytes.
    pub mem_available: Option<u64>,
    /// The tightest memory cgroup room (limit - usage) and that cgroup's
    /// directory.
    pub cgroup: Option<(u64, PathBuf)>,
    /// Free 2 MiB hugepages.
    pub free_hugepages: u64,
}

impl MemoryLimits {
    pub fn read() -> MemoryLimits {
        MemoryLimits {
            mem_available: mem_available(),
            cgroup: cgroup_room(),
            free_hugepages: read_u64(Path::new(FREE_HUGEPAGES)).unwrap_or(0),
        }
    }

    /// Ordinary-page room: the smaller of MemAvailable and the cgroup room.
    fn page_room(&self) -> Option<(u64, String)> {
        let mut best: Option<(u64, String)> = self.mem_available.map(|m| (m, "MemAvailable in /proc/meminfo".into()));
        if let Some((room, dir)) = &self.cgroup {
            if best.as_ref().is_none_or(|(b, _)| room < b) {
                best = Some((*room, format!("the memory cgroup {} (limit minus usage)", dir.display())));
            }
        }
        best
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// Check that `umems` UMEMs of `size` bytes each (one port) fit; `what`
/// names the port for the message.
pub fn check(what: &str, umems: u32, size: u64, policy: HugepagePolicy, limits: &MemoryLimits) -> Result<()> {
    if umems == 0 {
        return Ok(());
    }
    let total = size * umems as u64;
    let huge_each = size.div_ceil(HUGEPAGE_SIZE as u64);
    // How many UMEMs land in hugepages (UmemArea maps each separately;
    // with `auto` those that do not fit fall back to ordinary pages).
    let in_huge = match policy {
        HugepagePolicy::Never => 0,
        _ => (limits.free_hugepages / huge_each.max(1)).min(umems as u64),
    };
    if policy == HugepagePolicy::Require && in_huge < umems as u64 {
        let need = huge_each * umems as u64;
        return Err(Error::new(
            Code::NoMemory,
            format!(
                "{what} needs {umems} UMEM(s) of {} = {} in 2 MiB hugepages ({need} hugepages), but only {} are free: \
                 reserve more (`echo N > /proc/sys/vm/nr_hugepages` with N >= {need} plus what is in use), lower \
                 frameCount/queueCount, or use hugepages: auto",
                mib(size),
                mib(total),
                limits.free_hugepages
            ),
        ));
    }
    let in_pages = (umems as u64 - in_huge) * size;
    if in_pages == 0 {
        return Ok(());
    }
    if let Some((room, source)) = limits.page_room() {
        if in_pages > room {
            return Err(Error::new(
                Code::NoMemory,
                format!(
                    "{what} needs {umems} UMEM(s) of {} = {} ({} of them in ordinary pages), but only {} is available \
                     ({source}); a UMEM is populated and pinned at once, so this would end in the OOM killer: lower \
                     frameCount (or frameSize, or queueCount; sharedUmem uses one UMEM for all queues), free memory \
                     or raise the memory limit",
                    mib(size),
                    mib(total),
                    mib(in_pages),
                    mib(room)
                ),
            ));
        }
    }
    Ok(())
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo(&text)
}

fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A cgroup mount: its root inside the hierarchy, where it is mounted, v2 or not.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    root: String,
    point: PathBuf,
    v2: bool,
}

/// cgroup2 mounts and cgroup v1 mounts with the memory controller, from
/// /proc/self/mountinfo text.
fn parse_mounts(mountinfo: &str) -> Vec<Mount> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 5 || r.is_empty() {
            continue;
        }
        let unescape = |s: &str| s.replace("\\040", " ");
        let fstype = r[0];
        let v2 = fstype == "cgroup2";
        let v1_memory = fstype == "cgroup" && r.get(2).is_some_and(|o| o.split(',').any(|x| x == "memory"));
        if v2 || v1_memory {
            out.push(Mount { root: unescape(l[3]), point: PathBuf::from(unescape(l[4])), v2 });
        }
    }
    out
}

/// (v2, path) of this process's cgroups that matter: the unified one
/// ("0::/path") and the v1 memory one ("N:...memory...:/path").
fn parse_proc_cgroup(text: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        if id == "0" && ctrls.is_empty() {
            out.push((true, path.to_string()));
        } else if ctrls.split(',').any(|c| c == "memory") {
            out.push((false, path.to_string()));
        }
    }
    out
}

/// The directory of cgroup `path` under `mount`, if the mount shows it.
fn cgroup_dir(mount: &Mount, path: &str) -> Option<PathBuf> {
    let rel = if mount.root == "/" { path } else { path.strip_prefix(mount.root.as_str())? };
    let dir = mount.point.join(rel.trim_start_matches('/'));
    dir.is_dir().then_some(dir)
}

/// limit - usage of one cgroup directory, None when unlimited or unreadable.
fn room_of(dir: &Path, v2: bool) -> Option<u64> {
    if v2 {
        let max = std::fs::read_to_string(dir.join("memory.max")).ok()?;
        let max: u64 = max.trim().parse().ok()?; // "max" = unlimited
        let cur = read_u64(&dir.join("memory.current"))?;
        Some(max.saturating_sub(cur))
    } else {
        let limit = read_u64(&dir.join("memory.limit_in_bytes"))?;
        // v1 reports "unlimited" as a huge page-rounded number.
        if limit >= 1 << 62 {
            return None;
        }
        let usage = read_u64(&dir.join("memory.usage_in_bytes"))?;
        Some(limit.saturating_sub(usage))
    }
}

/// The tightest room of this process's memory cgroup and its ancestors.
fn cgroup_room() -> Option<(u64, PathBuf)> {
    let mounts = parse_mounts(&std::fs::read_to_string("/proc/self/mountinfo").ok()?);
    let groups = parse_proc_cgroup(&std::fs::read_to_string("/proc/self/cgroup").ok()?);
    let mut best: Option<(u64, PathBuf)> = None;
    for (v2, path) in groups {
        for mount in mounts.iter().filter(|m| m.v2 == v2) {
            let Some(mut dir) = cgroup_dir(mount, &path) else { continue };
            // Walk up to the mount point: a parent's limit binds too.
            loop {
                if let Some(room) = room_of(&dir, v2) {
                    if best.as_ref().is_none_or(|(b, _)| room < *b) {
                        best = Some((room, dir.clone()));
                    }
                }
                if dir == mount.point || !dir.pop() || !dir.starts_with(&mount.point) {
                    break;
                }
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(avail: u64, cg: Option<u64>, huge: u64) -> MemoryLimits {
        MemoryLimits {
            mem_available: Some(avail),
            cgroup: cg.map(|c| (c, PathBuf::from("/sys/fs/cgroup/memory/x"))),
            free_hugepages: huge,
        }
    }

    #[test]
    fn parses_meminfo_and_cgroup_files() {
        assert_eq!(parse_meminfo("MemTotal: 10 kB\nMemAvailable:    2048 kB\n"), Some(2 << 20));
        let mi = "30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid shared:9 - cgroup cgroup rw,memory\n\
                  31 25 0:27 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw,nsdelegate\n\
                  32 25 0:28 / /sys/fs/cgroup/cpu rw shared:11 - cgroup cgroup rw,cpu,cpuacct\n";
        let m = parse_mounts(mi);
        assert_eq!(m.len(), 2);
        assert!(!m[0].v2 && m[0].point == Path::new("/sys/fs/cgroup/memory"));
        assert!(m[1].v2);
        let pc = "12:memory:/afxdp-test-1\n4:cpu,cpuacct:/\n0::/user.slice\n";
        assert_eq!(parse_proc_cgroup(pc), vec![(false, "/afxdp-test-1".to_string()), (true, "/user.slice".to_string())]);
    }

    #[test]
    fn too_big_for_memory_or_cgroup_names_sizes_and_fix() {
        let gib = 1u64 << 30;
        check("port on eth0", 2, gib, HugepagePolicy::Never, &limits(4 * gib, None, 0)).unwrap();
        let e = check("port on eth0", 2, 2 * gib, HugepagePolicy::Never, &limits(8 * gib, Some(3 * gib), 0)).unwrap_err();
        assert_eq!(e.code, Code::NoMemory);
        assert!(e.message.contains("4096.0 MiB") && e.message.contains("3072.0 MiB"), "{}", e.message);
        assert!(e.message.contains("memory cgroup") && e.message.contains("lower frameCount"), "{}", e.message);
        let e = check("p", 1, 3 * gib, HugepagePolicy::Auto, &limits(2 * gib, None, 0)).unwrap_err();
        assert!(e.message.contains("MemAvailable"), "{}", e.message);
    }

    #[test]
    fn hugepages_are_compared_with_free_hugepages() {
        let mib16 = 16u64 << 20;
        // 2 x 16 MiB = 16 hugepages: fits 16 free ones whatever MemAvailable says.
        check("p", 2, mib16, HugepagePolicy::Require, &limits(0, None, 16)).unwrap();
        let e = check("p", 2, mib16, HugepagePolicy::Require, &limits(1 << 40, None, 15)).unwrap_err();
        assert_eq!(e.code, Code::NoMemory);
        assert!(e.message.contains("15 are free"), "{}", e.message);
        // Auto: one UMEM in hugepages, the other must fit ordinary memory.
        check("p", 2, mib16, HugepagePolicy::Auto, &limits(mib16, None, 8)).unwrap();
        check("p", 2, mib16, HugepagePolicy::Auto, &limits(mib16 - 1, None, 8)).unwrap_err();
    }
}
