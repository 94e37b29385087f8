//! Descriptor options and multi-buffer chains (XDP_USE_SG, Linux >= 6.6).
//!
//! Every descriptor slot carries the `options` word of its `xdp_desc`. A
//! packet larger than one frame travels as a *chain*: consecutive slots,
//! `XDP_PKT_CONTD` set on every fragment but the last. The rules the burst
//! calls keep (docs/api.md "Multi-buffer chains"):
//!
//! - receive never ends a burst in the middle of a chain, unless the chain
//!   is longer than the whole burst: then the burst is full and its last
//!   slot carries `XDP_PKT_CONTD`, and the next receive continues the chain;
//! - transmit posts whole chains only (a prefix of the batch that ends on a
//!   chain's last fragment), so the kernel never holds half a packet; a
//!   batch must end on a last fragment;
//! - a dropped (unsent) remainder is whole chains too.
//!
//! Pure functions here, so the rules are unit-tested without a socket.

use crate::{Error, Result};

/// The fragment is followed by more of the same packet.
pub const XDP_PKT_CONTD: u32 = libc::XDP_PKT_CONTD;
/// The frame carries an `xsk_tx_metadata` before the packet (TX only;
/// its meaning belongs to the TX metadata code, passed through here).
pub const XDP_TX_METADATA: u32 = 1 << 1;
/// Option bits a tx descriptor may carry. The kernel counts a descriptor
/// with any other bit as invalid and never completes it, which would leak
/// its frame: such descriptors are refused before anything is posted.
pub const TX_OPTIONS_KNOWN: u32 = XDP_PKT_CONTD | XDP_TX_METADATA;
/// Most descriptors of one packet the kernel takes in copy mode
/// (MAX_SKB_FRAGS + 1 with the default CONFIG_MAX_SKB_FRAGS of 17; a longer
/// chain is dropped by the kernel). Zero-copy drivers report their own
/// limit (`xdp-zc-max-segs`).
pub const MAX_COPY_SEGS: u32 = 18;

#[inline]
pub fn contd(options: u32) -> bool {
    options & XDP_PKT_CONTD != 0
}

/// How many of `n` peeked rx descriptors (of a burst of at most `max`) to
/// deliver: all of them when the last ends a packet, else up to the end of
/// the last whole chain; a chain with no end among them is delivered only
/// when it fills the burst (it is longer than the burst), otherwise it
/// waits on the ring for its end. `contd(i)` reads descriptor `i`'s flag.
pub fn rx_cut(n: u32, max: u32, contd: impl Fn(u32) -> bool) -> u32 {
    if n == 0 || !contd(n - 1) {
        return n;
    }
    let mut i = n - 1;
    while i > 0 {
        if !contd(i - 1) {
            return i;
        }
        i -= 1;
    }
    if n >= max {
        n
    } else {
        0
    }
}

/// The longest prefix of `opts[..n]` that ends on a packet's last fragment
/// (0 when the first chain does not fit in `n`).
pub fn whole_chains(opts: &[u32], n: usize) -> usize {
    let mut k = n.min(opts.len());
    while k > 0 && contd(opts[k - 1]) {
        k -= 1;
    }
    k
}

/// Packets among descriptors: those that end a packet.
pub fn packets(opts: &[u32]) -> u64 {
    opts.iter().filter(|&&o| !contd(o)).count() as u64
}

/// Validate a tx batch before any frame moves: lengths fit their frames,
/// option bits are known, chains only on a multi-buffer socket, no chain
/// longer than `max_segs`, and the batch ends on a packet's last fragment.
pub fn check_tx(addrs: &[u32], lens: &[u32], opts: &[u32], frame_size: u32, multi_buffer: bool, max_segs: u32) -> Result<()> {
    if addrs.len() != lens.len() || addrs.len() != opts.len() {
        return Err(Error::invalid(format!(
            "tx_burst got {} addresses, {} lengths and {} options",
            addrs.len(),
            lens.len(),
            opts.len()
        )));
    }
    let fs = frame_size;
    let mut segs = 0u32;
    for (i, ((&a, &l), &o)) in addrs.iter().zip(lens).zip(opts).enumerate() {
        // The kernel silently drops (and never completes) descriptors
        // that leave their frame: that would leak the frame, so refuse.
        if l == 0 || (a & (fs - 1)) as u64 + l as u64 > fs as u64 {
            return Err(Error::invalid(format!(
                "tx_burst packet {i}: length {l} at address {a:#x} does not fit in its {fs}-byte frame"
            )));
        }
        if o & !TX_OPTIONS_KNOWN != 0 {
            return Err(Error::invalid(format!(
                "tx_burst slot {i}: options {o:#x} has bits the kernel does not know (known: XDP_PKT_CONTD = 1, \
                 XDP_TX_METADATA = 2); it would drop the descriptor and never return its frame"
            )));
        }
        if contd(o) {
            if !multi_buffer {
                return Err(Error::invalid(format!(
                    "tx_burst slot {i}: XDP_PKT_CONTD (a chained fragment) needs a multi-buffer port; open it with \
                     multiBuffer: 'on' (devarg multi_buffer=on, Linux >= 6.6)"
                )));
            }
            segs += 1;
            if segs >= max_segs {
                return Err(Error::invalid(format!(
                    "tx_burst slot {i}: a chain of more than {max_segs} fragments, the most this socket's kernel path \
                     takes in one packet"
                )));
            }
        } else {
            segs = 0;
        }
    }
    if segs > 0 {
        return Err(Error::invalid(format!(
            "tx_burst: the batch ends inside a chain (its last slot has XDP_PKT_CONTD); transmit a chain whole: the \
             kernel would hold its first {segs} fragment(s) until the rest came"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(opts: &[u32], max: u32) -> u32 {
        rx_cut(opts.len() as u32, max, |i| contd(opts[i as usize]))
    }

    #[test]
    fn receive_never_ends_mid_chain_unless_the_chain_exceeds_the_burst() {
        assert_eq!(cut(&[], 4), 0);
        assert_eq!(cut(&[0, 0, 0], 4), 3);
        // 3-fragment chains in a burst of 4: the second chain waits.
        assert_eq!(cut(&[1, 1, 0, 1], 4), 3);
        assert_eq!(cut(&[0, 1, 1, 0], 4), 4);
        assert_eq!(cut(&[0, 1, 1], 4), 1);
        // A chain longer than the burst fills it and continues next time.
        assert_eq!(cut(&[1, 1, 1, 1], 4), 4);
        // Its end arrives in the next burst: delivered up to the end.
        assert_eq!(cut(&[1, 0, 1, 1], 4), 2);
        // Only part of a chain published (not a full burst): wait.
        assert_eq!(cut(&[1, 1], 4), 0);
    }

    #[test]
    fn transmit_prefixes_are_whole_chains() {
        let o = [1, 0, 1, 1, 0, 0];
        assert_eq!(whole_chains(&o, 6), 6);
        assert_eq!(whole_chains(&o, 5), 5);
        assert_eq!(whole_chains(&o, 4), 2);
        assert_eq!(whole_chains(&o, 2), 2);
        assert_eq!(whole_chains(&o, 1), 0);
        assert_eq!(packets(&o), 3);
    }

    #[test]
    fn tx_checks() {
        let a = [256u32, 2048 + 256, 4096 + 256];
        let l = [60u32, 60, 60];
        assert!(check_tx(&a, &l, &[0, 0, 0], 2048, false, 18).is_ok());
        assert!(check_tx(&a, &l, &[1, 1, 0], 2048, true, 18).is_ok());
        assert!(check_tx(&a, &l, &[2, 2, 2], 2048, false, 18).is_ok(), "XDP_TX_METADATA passes through");
        let e = check_tx(&a, &l, &[1, 0, 0], 2048, false, 18).unwrap_err();
        assert!(e.message.contains("multiBuffer"), "{}", e.message);
        let e = check_tx(&a, &l, &[0, 4, 0], 2048, true, 18).unwrap_err();
        assert!(e.message.contains("slot 1"), "{}", e.message);
        let e = check_tx(&a, &l, &[0, 0, 1], 2048, true, 18).unwrap_err();
        assert!(e.message.contains("ends inside a chain"), "{}", e.message);
        let e = check_tx(&a, &l, &[1, 1, 0], 2048, true, 2).unwrap_err();
        assert!(e.message.contains("more than 2 fragments"), "{}", e.message);
        assert!(check_tx(&a, &l, &[0, 1, 0], 2048, true, 2).is_ok());
        assert!(check_tx(&a, &[60, 2048, 1], &[0, 0, 0], 2048, false, 18).is_err());
        assert!(check_tx(&a, &l, &[0, 0], 2048, false, 18).is_err());
    }
}
