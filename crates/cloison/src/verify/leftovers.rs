//! One run at a time, and nothing left by a run that was killed. The lock is a file in
//! the runtime directory (`verify.lock`, flock: released by the kernel when the process
//! dies). Holding it, a run first removes what a killed run may have left: probe veth
//! pairs (by name), cloison's verify filters (by name and priority), the `clsact`
//! qdiscs a run recorded as its own in `verify-qdiscs` (when nothing else is attached to
//! them), and permanent neighbour entries whose MAC carries the probe prefix. The
//! namespaces need nothing: they die with the process that made them.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use netlink_packet_route::neighbour::NeighbourState;
use rtnetlink::Handle;

use super::VerifyError;
use super::host::{MAC_PREFIX, neighbour_of};
use crate::kernel::tc::{self, PRIORITY, Side};

const LOCK: &str = "verify.lock";
const QDISCS: &str = "verify-qdiscs";

/// The run lock, held until dropped.
pub struct Lock {
    _file: std::fs::File,
    dir: PathBuf,
}

impl Lock {
    /// Takes the lock in `runtime_dir`, or says another run holds it.
    pub fn take(runtime_dir: &Path) -> Result<Lock, VerifyError> {
        std::fs::create_dir_all(runtime_dir).map_err(|e| VerifyError::Lock {
            path: runtime_dir.to_owned(),
            detail: e.to_string(),
        })?;
        let path = runtime_dir.join(LOCK);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| VerifyError::Lock {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        // SAFETY: flock on a descriptor `file` owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            return Err(VerifyError::Busy(holder.trim().to_owned()));
        }
        let _ = file.set_len(0);
        let _ = writeln!(file, "{}", std::process::id());
        Ok(Lock {
            _file: file,
            dir: runtime_dir.to_owned(),
        })
    }

    /// Records that this run created a clsact qdisc on `iface` (to be removed by a later
    /// run if this one cannot).
    pub fn record_qdisc(&self, iface: &str) {
        let path = self.dir.join(QDISCS);
        let mut list = std::fs::read_to_string(&path).unwrap_or_default();
        if !list.lines().any(|l| l == iface) {
            list.push_str(iface);
            list.push('\n');
            let _ = std::fs::write(&path, list);
        }
    }

    /// This run removed its qdiscs itself.
    pub fn forget_qdiscs(&self) {
        let _ = std::fs::remove_file(self.dir.join(QDISCS));
    }
}

/// Removes what a killed run left; says what it removed.
pub async fn clean(h: &Handle, lock: &Lock) -> Result<Vec<String>, VerifyError> {
    let mut removed = Vec::new();
    let mut links = Vec::new();
    let mut all = h.link().get().execute();
    while let Some(l) = all
        .try_next()
        .await
        .map_err(|e| VerifyError::netlink("listing interfaces", e))?
    {
        let name = l
            .attributes
            .iter()
            .find_map(|a| match a {
                netlink_packet_route::link::LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            })
            .unwrap_or_default();
        links.push((l.header.index, name));
    }
    for (index, name) in &links {
        if name.starts_with("cloison-vh") || name.starts_with("cloison-vp") {
            if h.link().del(*index).execute().await.is_ok() {
                removed.push(format!("interface {name}"));
            }
            continue;
        }
        for side in [Side::Ingress, Side::Egress] {
            let filters = tc::filters(h, *index, side)
                .await
                .map_err(VerifyError::Tc)?;
            if filters.iter().any(|(p, ours)| *p == PRIORITY && *ours) {
                tc::del_filter(h, *index, name, side)
                    .await
                    .map_err(VerifyError::Tc)?;
                removed.push(format!("the verify filter on {name}"));
            }
        }
    }
    let recorded = std::fs::read_to_string(lock.dir.join(QDISCS)).unwrap_or_default();
    for iface in recorded.lines() {
        let Some((index, _)) = links.iter().find(|(_, n)| n == iface) else {
            continue;
        };
        let mut empty = true;
        for side in [Side::Ingress, Side::Egress] {
            empty &= tc::filters(h, *index, side)
                .await
                .map_err(VerifyError::Tc)?
                .is_empty();
        }
        if empty {
            tc::del_clsact(h, *index, iface)
                .await
                .map_err(VerifyError::Tc)?;
            removed.push(format!("the clsact qdisc on {iface}"));
        }
    }
    lock.forget_qdiscs();
    let mut stale = Vec::new();
    let mut entries = h.neighbours().get().execute();
    while let Some(n) = entries
        .try_next()
        .await
        .map_err(|e| VerifyError::netlink("listing neighbour entries", e))?
    {
        let (dst, mac) = neighbour_of(&n);
        if n.header.state == NeighbourState::Permanent && mac.is_some_and(|m| m[..3] == MAC_PREFIX)
        {
            stale.push((n, dst));
        }
    }
    for (n, dst) in stale {
        let what = dst.map(|d| d.to_string()).unwrap_or_default();
        h.neighbours()
            .del(n)
            .execute()
            .await
            .map_err(|e| VerifyError::netlink(format!("removing the neighbour entry {what}"), e))?;
        removed.push(format!("the neighbour entry {what}"));
    }
    Ok(removed)
}
