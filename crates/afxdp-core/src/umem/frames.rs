//! Frame ownership: every UMEM frame belongs to exactly one party at a time.
//!
//! The kernel trusts whatever addresses we put on the fill and tx rings, so a
//! frame handed out twice means two packets silently sharing memory. Every
//! move is therefore checked against an owner byte per frame, and a bad
//! address from the application is an error, never a corruption. Free frames
//! sit on a stack of indexes so allocation is O(1) and reuses warm frames.
//!
//! Frames lent to the kernel (Fill, Tx) also remember which socket they
//! were lent through, so that when one port of a shared UMEM closes, what
//! its sockets held comes back to the pool (`reclaim`).

use crate::{Code, Error, Result};

/// Who holds a frame.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The pool: available for the fill ring or for `alloc`.
    Free = 0,
    /// Posted to a fill ring; the kernel may already have moved it onto an
    /// rx ring or hold it between the two.
    Fill = 1,
    /// Handed to the application (after rx or alloc).
    App = 2,
    /// Posted to a tx ring; possibly already on the completion ring.
    Tx = 3,
}

impl Owner {
    fn describe(self) -> &'static str {
        match self {
            Owner::Free => "the free pool (already released, or never handed out)",
            Owner::Fill => "the kernel (posted for receive)",
            Owner::App => "the application",
            Owner::Tx => "the kernel (posted for transmit, not yet completed)",
        }
    }
}

/// How many frames each owner holds; the four always sum to the total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OwnerCounts {
    pub free: u32,
    pub fill: u32,
    pub app: u32,
    pub tx: u32,
}

impl OwnerCounts {
    pub fn total(&self) -> u32 {
        self.free + self.fill + self.app + self.tx
    }
}

pub struct FramePool {
    frame_shift: u32,
    owner: Vec<Owner>,
    /// Indexes of Free frames; the top is handed out next.
    free: Vec<u32>,
    counts: [u32; 4],
    /// Per frame: the socket (UmemMember slot) a Fill or Tx frame was lent
    /// through; meaningless for Free and App frames.
    lender: Vec<u16>,
}

impl FramePool {
    /// `frame_count` frames of `frame_size` bytes (a power of two); the
    /// whole UMEM must stay below 4 GiB because addresses are u32 offsets.
    pub fn new(frame_count: u32, frame_size: u32) -> Result<FramePool> {
        if !frame_size.is_power_of_two() {
            return Err(Error::invalid(format!("frame size {frame_size} is not a power of two")));
        }
        if frame_count == 0 {
            return Err(Error::invalid("frame count must be at least 1"));
        }
        let bytes = frame_count as u64 * frame_size as u64;
        if bytes >= 1 << 32 {
            return Err(Error::invalid(format!(
                "UMEM of {frame_count} frames x {frame_size} bytes = {bytes} bytes; it must be below 4 GiB \
                 (frame addresses are 32-bit offsets): lower frame_count"
            )));
        }
        // Reverse so that frame 0 is handed out first (tidy, and predictable in tests).
        let free: Vec<u32> = (0..frame_count).rev().collect();
        Ok(FramePool {
            frame_shift: frame_size.trailing_zeros(),
            owner: vec![Owner::Free; frame_count as usize],
            free,
            counts: [frame_count, 0, 0, 0],
            lender: vec![0; frame_count as usize],
        })
    }

    pub fn frame_size(&self) -> u32 {
        1 << self.frame_shift
    }

    pub fn frame_count(&self) -> u32 {
        self.owner.len() as u32
    }

    pub fn counts(&self) -> OwnerCounts {
        let [free, fill, app, tx] = self.counts;
        OwnerCounts { free, fill, app, tx }
    }

    pub fn free_count(&self) -> u32 {
        self.counts[Owner::Free as usize]
    }

    /// Frame index of any address inside a frame (rx addresses carry the
    /// headroom offset), or None when out of range.
    #[inline]
    pub fn index_of(&self, addr: u64) -> Option<u32> {
        let idx = addr >> self.frame_shift;
        if idx < self.owner.len() as u64 {
            Some(idx as u32)
        } else {
            None
        }
    }

    /// Current owner of the frame containing `addr`.
    pub fn owner_of(&self, addr: u64) -> Option<Owner> {
        self.index_of(addr).map(|i| self.owner[i as usize])
    }

    /// Take up to `n` free frames for `to`, passing each frame's base
    /// address (its first byte) to `sink`. Returns how many were taken.
    #[inline]
    pub fn take(&mut self, to: Owner, n: u32, sink: impl FnMut(u32)) -> u32 {
        self.take_lent(to, 0, n, sink)
    }

    /// `take`, recording `lender` as the socket the frames go through.
    #[inline]
    pub fn take_lent(&mut self, to: Owner, lender: u16, n: u32, mut sink: impl FnMut(u32)) -> u32 {
        debug_assert!(to != Owner::Free);
        let n = n.min(self.free.len() as u32);
        for _ in 0..n {
            let idx = self.free.pop().expect("free stack shorter than its count");
            self.owner[idx as usize] = to;
            self.lender[idx as usize] = lender;
            sink(idx << self.frame_shift);
        }
        self.counts[Owner::Free as usize] -= n;
        self.counts[to as usize] += n;
        n
    }

    /// Move one frame `from` → `to` (`from` must not be Free: free frames
    /// leave the pool only through `take`).
    #[inline]
    pub fn move_one(&mut self, addr: u64, from: Owner, to: Owner) -> Result<()> {
        debug_assert!(from != Owner::Free);
        let idx = match self.index_of(addr) {
            Some(i) => i,
            None => return Err(self.out_of_range(addr, from)),
        };
        let cur = self.owner[idx as usize];
        if cur != from {
            return Err(self.wrong_owner(addr, cur, from));
        }
        self.set(idx, from, to);
        Ok(())
    }

    /// Move every address of a batch `from` → `to`, or none of them: on the
    /// first bad address (out of range, wrong owner, or repeated within the
    /// batch) all earlier moves are undone and the error names the address.
    pub fn move_all(&mut self, addrs: &[u32], from: Owner, to: Owner) -> Result<()> {
        if from == Owner::Free || from == to {
            return Err(Error::invalid(format!("invalid frame move {from:?} -> {to:?}")));
        }
        for (i, &addr) in addrs.iter().enumerate() {
            let bad = match self.index_of(addr as u64) {
                None => Some(self.out_of_range(addr as u64, from)),
                Some(idx) => {
                    let cur = self.owner[idx as usize];
                    if cur == from {
                        self.set(idx, from, to);
                        None
                    } else if cur == to && addrs[..i].iter().any(|&a| self.index_of(a as u64) == Some(idx)) {
                        Some(Error::new(
                            Code::FrameOwnership,
                            format!("frame address {addr:#x} (frame {idx}) appears twice in one batch"),
                        ))
                    } else {
                        Some(self.wrong_owner(addr as u64, cur, from))
                    }
                }
            };
            if let Some(err) = bad {
                // Undo in reverse so the free stack pops exactly what was pushed.
                for &done in addrs[..i].iter().rev() {
                    let idx = self.index_of(done as u64).expect("checked above");
                    if to == Owner::Free {
                        self.free.pop();
                    }
                    self.owner[idx as usize] = from;
                    self.counts[to as usize] -= 1;
                    self.counts[from as usize] += 1;
                }
                return Err(err);
            }
        }
        Ok(())
    }

    /// `move_all`, recording `lender` as the socket the frames go through.
    pub fn move_all_lent(&mut self, addrs: &[u32], from: Owner, to: Owner, lender: u16) -> Result<()> {
        self.move_all(addrs, from, to)?;
        for &addr in addrs {
            let idx = self.index_of(addr as u64).expect("moved above");
            self.lender[idx as usize] = lender;
        }
        Ok(())
    }

    /// Every Fill or Tx frame lent through `lender` back to the pool, once
    /// that socket is closed (the kernel no longer has them); returns how
    /// many.
    pub fn reclaim(&mut self, lender: u16) -> u32 {
        let mut n = 0;
        for idx in 0..self.owner.len() as u32 {
            let cur = self.owner[idx as usize];
            if (cur == Owner::Fill || cur == Owner::Tx) && self.lender[idx as usize] == lender {
                self.set(idx, cur, Owner::Free);
                n += 1;
            }
        }
        n
    }

    #[inline]
    fn set(&mut self, idx: u32, from: Owner, to: Owner) {
        self.owner[idx as usize] = to;
        self.counts[from as usize] -= 1;
        self.counts[to as usize] += 1;
        if to == Owner::Free {
            self.free.push(idx);
        }
    }

    fn out_of_range(&self, addr: u64, expected: Owner) -> Error {
        let size = (self.owner.len() as u64) << self.frame_shift;
        Error::new(
            Code::FrameOwnership,
            format!(
                "frame address {addr:#x} is outside the UMEM ({size} bytes); expected a frame owned by {}",
                expected.describe()
            ),
        )
    }

    fn wrong_owner(&self, addr: u64, cur: Owner, expected: Owner) -> Error {
        let idx = addr >> self.frame_shift;
        Error::new(
            Code::FrameOwnership,
            format!("frame address {addr:#x} (frame {idx}) is owned by {}, not by {}", cur.describe(), expected.describe()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_sum(p: &FramePool) {
        let c = p.counts();
        assert_eq!(c.total(), p.frame_count(), "{c:?}");
        assert_eq!(c.free as usize, p.free.len());
        for (o, n) in [(Owner::Free, c.free), (Owner::Fill, c.fill), (Owner::App, c.app), (Owner::Tx, c.tx)] {
            assert_eq!(p.owner.iter().filter(|&&x| x == o).count() as u32, n, "{o:?}");
        }
    }

    fn take_app(p: &mut FramePool, n: u32) -> Vec<u32> {
        let mut v = Vec::new();
        assert_eq!(p.take(Owner::App, n, |a| v.push(a)), n);
        v
    }

    #[test]
    fn validates_geometry() {
        assert!(FramePool::new(16, 3000).is_err());
        assert!(FramePool::new(0, 2048).is_err());
        assert!(FramePool::new(1 << 20, 4096).is_err()); // exactly 4 GiB
        assert!(FramePool::new((1 << 20) - 1, 4096).is_ok());
    }

    #[test]
    fn take_hands_out_distinct_frames_and_stops_when_empty() {
        let mut p = FramePool::new(8, 2048).unwrap();
        let a = take_app(&mut p, 5);
        assert_eq!(a, vec![0, 2048, 4096, 6144, 8192]);
        let mut rest = Vec::new();
        assert_eq!(p.take(Owner::Fill, 10, |x| rest.push(x)), 3);
        assert_eq!(p.take(Owner::Fill, 10, |_| panic!("empty pool handed out a frame")), 0);
        check_sum(&p);
        assert_eq!(p.counts(), OwnerCounts { free: 0, fill: 3, app: 5, tx: 0 });
    }

    #[test]
    fn reclaim_returns_only_what_one_lender_holds() {
        let mut p = FramePool::new(16, 2048).unwrap();
        p.take_lent(Owner::Fill, 1, 3, |_| {});
        p.take_lent(Owner::Fill, 2, 4, |_| {});
        let a = take_app(&mut p, 4);
        p.move_all_lent(&a[..2], Owner::App, Owner::Tx, 1).unwrap();
        p.move_all_lent(&a[2..], Owner::App, Owner::Tx, 2).unwrap();
        assert_eq!(p.reclaim(1), 5);
        check_sum(&p);
        assert_eq!(p.counts(), OwnerCounts { free: 16 - 4 - 2, fill: 4, app: 0, tx: 2 });
        assert_eq!(p.reclaim(1), 0);
        assert_eq!(p.reclaim(2), 6);
        assert_eq!(p.counts().free, 16);
        check_sum(&p);
    }

    #[test]
    fn release_of_unowned_address_is_an_error_naming_it() {
        let mut p = FramePool::new(4, 2048).unwrap();
        let a = take_app(&mut p, 1);
        p.move_all(&a, Owner::App, Owner::Free).unwrap();
        let e = p.move_all(&a, Owner::App, Owner::Free).unwrap_err();
        assert_eq!(e.code, Code::FrameOwnership);
        assert!(e.message.contains("0x0") && e.message.contains("free pool"), "{}", e.message);
        let e = p.move_all(&[4 * 2048], Owner::App, Owner::Free).unwrap_err();
        assert!(e.message.contains("outside the UMEM"), "{}", e.message);
        check_sum(&p);
    }

    #[test]
    fn batch_moves_are_all_or_nothing() {
        let mut p = FramePool::new(8, 2048).unwrap();
        let a = take_app(&mut p, 4);
        let mut fill = Vec::new();
        p.take(Owner::Fill, 1, |x| fill.push(x));
        let before = p.counts();
        let free_before = p.free.clone();
        // Third address is owned by the kernel: nothing may move.
        let batch = [a[0] + 300, a[1], fill[0] + 256, a[2]];
        let e = p.move_all(&batch, Owner::App, Owner::Free).unwrap_err();
        assert!(e.message.contains("posted for receive"), "{}", e.message);
        assert_eq!(p.counts(), before);
        assert_eq!(p.free, free_before);
        check_sum(&p);
        // A repeated address is caught, not double-freed.
        let e = p.move_all(&[a[0], a[1], a[0] + 64], Owner::App, Owner::Free).unwrap_err();
        assert!(e.message.contains("twice"), "{}", e.message);
        assert_eq!(p.counts(), before);
        check_sum(&p);
        // Addresses inside a frame map back to it.
        p.move_all(&[a[0] + 300, a[1] + 2047], Owner::App, Owner::Tx).unwrap();
        p.move_one(a[0] as u64 + 5, Owner::Tx, Owner::Free).unwrap();
        assert!(p.move_one(a[0] as u64, Owner::Tx, Owner::Free).is_err());
        check_sum(&p);
    }

    #[test]
    fn random_walk_keeps_counts_consistent() {
        // A deterministic pseudo-random sequence of legal and illegal moves.
        let mut p = FramePool::new(64, 4096).unwrap();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let owners = [Owner::Free, Owner::Fill, Owner::App, Owner::Tx];
        for _ in 0..20_000 {
            let r = rnd();
            match r % 3 {
                0 => {
                    let to = owners[1 + (r >> 8) as usize % 3];
                    p.take(to, (r >> 16) as u32 % 5, |_| {});
                }
                1 => {
                    let addr = (r >> 8) % (70 * 4096);
                    let from = owners[1 + (r >> 40) as usize % 3];
                    let to = owners[(r >> 50) as usize % 4];
                    if from != to {
                        let _ = p.move_one(addr, from, to);
                    }
                }
                _ => {
                    let batch: Vec<u32> = (0..(r % 6)).map(|_| (rnd() % (66 * 4096)) as u32).collect();
                    let from = owners[1 + (r >> 30) as usize % 3];
                    let to = owners[(r >> 45) as usize % 4];
                    let _ = p.move_all(&batch, from, to);
                }
            }
            check_sum(&p);
        }
    }
}
