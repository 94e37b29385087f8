//! One socket's membership in a UMEM: counted while the socket lives, so
//! the fill policy (`Umem::fill_share`) splits half the frames among all
//! sockets drawing from the UMEM, whichever port they belong to. Its slot
//! marks the frames lent through the socket; dropped after the socket has
//! closed, the membership returns them to the pool (the UMEM may live on
//! in another port).

use super::Umem;
use std::sync::Arc;

pub struct UmemMember {
    umem: Arc<Umem>,
    slot: u16,
}

impl UmemMember {
    /// Count one socket of port `port_id` on interface `ifname`.
    pub fn join(umem: &Arc<Umem>, port_id: u64, ifname: &str) -> UmemMember {
        let mut members = umem.members.lock().unwrap_or_else(|p| p.into_inner());
        // The smallest free slot from 1 (0 marks frames taken without a socket).
        let slot = (1..=u16::MAX).find(|s| members.iter().all(|m| m.slot != *s)).expect("fewer than 65535 sockets");
        members.push(super::Membership { slot, port_id, ifname: ifname.to_string() });
        umem.members_changed(&members);
        drop(members);
        UmemMember { umem: umem.clone(), slot }
    }

    pub fn umem(&self) -> &Arc<Umem> {
        &self.umem
    }

    /// The lender id of frames this socket lends (see `FramePool::take_lent`).
    pub fn slot(&self) -> u16 {
        self.slot
    }
}

impl Drop for UmemMember {
    fn drop(&mut self) {
        self.umem.lock().frames_mut().reclaim(self.slot);
        let mut members = self.umem.members.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = members.iter().position(|m| m.slot == self.slot) {
            members.swap_remove(i);
        }
        self.umem.members_changed(&members);
    }
}
