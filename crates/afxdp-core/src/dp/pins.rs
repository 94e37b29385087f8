//! Pinned-map mode (dp-protocol.md §6): each device's XSKMAP pinned on a
//! bpffs for clients that open it by path (DPDK `use_pinned_map`), owned by
//! the client uid.

use super::config::{PinConfig, PIN_NAME};
use super::paths::{chmod, chown, io_err, mkdirs, Undo};
use crate::bpf::XskMap;
use crate::sys::fs as sys_fs;
use crate::{Code, Error, Result};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// One device whose map gets pinned.
pub(super) struct PinTarget<'a> {
    pub iface: &'a str,
    pub map: &'a XskMap,
    /// The map an earlier server's program fed (its pin may be replaced).
    pub previous_map_id: Option<u32>,
}

fn is_bpffs(dir: &Path) -> Result<bool> {
    let t = sys_fs::fs_type(dir).map_err(|e| Error::sys(format!("statfs({})", dir.display()), e))?;
    Ok(t == sys_fs::BPF_FS_MAGIC)
}

fn mount_bpffs(dir: &Path) -> Result<()> {
    sys_fs::mount_bpffs(dir).map_err(|e| {
        let mut e = Error::sys(format!("mount -t bpf bpf {}", dir.display()), e);
        if e.code == Code::Permission {
            e.message.push_str(": mounting a bpffs needs CAP_SYS_ADMIN");
        }
        e
    })
}

/// Pin each device's XSKMAP at `<pin_dir>/<iface>/xsks_map`, mounting a
/// bpffs on `pin_dir` first if it is not one (it must then be empty).
/// Returns the directory it mounted, if any, and each device's pin path.
pub(super) fn setup_pins(
    cfg: &PinConfig,
    devices: &[PinTarget<'_>],
    owner: (Option<u32>, Option<u32>),
    undo: &mut Vec<Undo>,
    log: &mut Vec<String>,
) -> Result<(Option<PathBuf>, Vec<PathBuf>)> {
    let dir = &cfg.pin_dir;
    mkdirs(dir, 0o755, undo)?;
    let mut mounted = None;
    if !is_bpffs(dir)? {
        let mut entries = std::fs::read_dir(dir).map_err(|e| io_err(format!("read_dir({})", dir.display()), e))?;
        if entries.next().is_some() {
            return Err(Error::invalid(format!(
                "pin directory {} is not a bpffs and not empty: refusing to mount a bpffs over its contents; \
                 use an empty directory or an existing bpffs mount",
                dir.display()
            )));
        }
        mount_bpffs(dir)?;
        undo.push(Undo::Unmount(dir.clone()));
        mounted = Some(dir.clone());
    }
    let mut pins = Vec::new();
    for dev in devices {
        let d = dir.join(dev.iface);
        mkdirs(&d, 0o755, undo)?;
        let pin = d.join(PIN_NAME);
        let map = dev.map;
        let mut keep = false;
        if std::fs::symlink_metadata(&pin).is_ok() {
            // Left by an earlier server: the pin of the map we adopted is
            // kept; that server's pin of a map no program feeds any more is
            // replaced; anything else is not ours.
            let pinned =
                crate::bpf::syscall::obj_get(&pin, 0).and_then(|fd| crate::bpf::syscall::map_info(fd.as_fd())).map(|i| i.id).ok();
            if pinned == Some(map.id()) {
                keep = true;
            } else if pinned.is_some() && pinned == dev.previous_map_id {
                std::fs::remove_file(&pin).map_err(|e| io_err(format!("remove stale pin {}", pin.display()), e))?;
                log.push(format!("removed the stale pin {} (map id {})", pin.display(), pinned.unwrap_or_default()));
            } else {
                return Err(Error::invalid(format!(
                    "{} already exists and is not a pin this server or an earlier dp-serve for {} made: \
                     remove it with rm if nothing needs it",
                    pin.display(),
                    dev.iface
                )));
            }
        }
        if keep {
            log.push(format!("kept the pin {} of the adopted map id {}", pin.display(), map.id()));
        } else {
            map.pin(&pin)?;
        }
        undo.push(Undo::File(pin.clone()));
        // The pin is created 0600 root: hand it to the client uid so that
        // BPF_OBJ_GET (read-write) works with CAP_NET_RAW + CAP_IPC_LOCK only.
        chown(&pin, owner)?;
        if owner.1.is_some() {
            chmod(&pin, 0o660)?;
        }
        pins.push(pin);
    }
    Ok((mounted, pins))
}
