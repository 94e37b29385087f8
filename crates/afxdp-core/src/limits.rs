//! Bounds on port settings: the one table every layer agrees on. The core
//! validates with these, the binding exports them (`limits()` in
//! crates/afxdp-node), and lib/config/limits.ts carries the same numbers so
//! configs parse without the addon; a test compares the two
//! (test/faults/port.test.ts).
//!
//! Where layers once differed, the smaller number won: 65535 queues (DPDK's
//! devargs are u16; no NIC has more), rings of at most 16384 descriptors
//! (the largest any driver's `ethtool -G` accepts; a bigger ring is memory
//! the kernel never fills) and bursts of 1024 (a burst never moves more
//! than a ring holds, and the descriptor area is queues × 3 × burst).

/// Highest queue id (DPDK's devargs are u16 too).
pub const MAX_QUEUE_ID: u32 = 65_535;
/// Most queues one port may open; the interface decides the real limit.
pub const MAX_QUEUE_COUNT: u32 = 65_535;
/// Ring sizes (rx, tx, fill, completion): powers of two in this range.
pub const RING_MIN_SIZE: u32 = 64;
pub const RING_MAX_SIZE: u32 = 16_384;
/// Frame sizes a UMEM may use.
pub const FRAME_SIZES: [u32; 2] = [2048, 4096];
/// Most frames of one UMEM.
pub const MAX_FRAME_COUNT: u32 = 1 << 20;
/// One UMEM stays below 4 GiB: frame addresses are 32-bit offsets (the
/// descriptors shared with JS are u32).
pub const MAX_UMEM_BYTES: u64 = (1 << 32) - 1;
/// XDP_PACKET_HEADROOM, reserved by the kernel in front of every packet.
pub const KERNEL_HEADROOM: u32 = 256;
/// Smallest packet room left in a frame after all headroom.
pub const MIN_FRAME_DATA: u32 = 64;
/// Most descriptors one burst call moves.
pub const MAX_BURST_SIZE: u32 = 1024;

/// The burst (descriptor slots per queue) must be 1..=MAX_BURST_SIZE.
pub fn check_burst_size(name: &str, v: u32) -> crate::Result<()> {
    if v == 0 || v > MAX_BURST_SIZE {
        return Err(crate::Error::invalid(format!("{name} {v} must be between 1 and {MAX_BURST_SIZE}")));
    }
    Ok(())
}

/// `name` = `v` must be a power of two within the ring bounds.
pub fn check_ring_size(name: &str, v: u32) -> crate::Result<()> {
    if !v.is_power_of_two() || !(RING_MIN_SIZE..=RING_MAX_SIZE).contains(&v) {
        return Err(crate::Error::invalid(format!(
            "{name} {v} must be a power of two between {RING_MIN_SIZE} and {RING_MAX_SIZE}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_use_the_table_bounds() {
        assert!(check_burst_size("burstSize", 1).is_ok());
        assert!(check_burst_size("burstSize", MAX_BURST_SIZE).is_ok());
        let e = check_burst_size("burstSize", MAX_BURST_SIZE + 1).unwrap_err();
        assert_eq!(e.code, crate::Code::InvalidArgument);
        assert!(e.message.contains("burstSize 1025 must be between 1 and 1024"), "{}", e.message);
        assert!(check_burst_size("burstSize", 0).is_err());
        assert!(check_ring_size("rx_size", RING_MAX_SIZE).is_ok());
        assert!(check_ring_size("rx_size", RING_MAX_SIZE * 2).is_err());
        assert!(check_ring_size("rx_size", 1000).is_err());
    }
}
